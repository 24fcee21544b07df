/* SPDX-License-Identifier: Apache-2.0 */
/* InitContext lookups and readiness as pure logic over a registry built by hand. */
#include <criterion/criterion.h>
#include <string.h>

#include "error.h"
#include "initctx.h"
#include "registry.h"

static berth__registry_t reg;
static int instances[4];

static berth__plugin_t *
add_ok(const char *type, const char *id, int *instance)
{
    berth__plugin_t *p = berth__registry_add(&reg, NULL, type, id);
    p->status = BERTH_ST_OK;
    p->instance = instance;
    p->ic.plugin = p;
    p->ic.reg = &reg;
    reg.order = realloc(reg.order, (reg.norder + 1) * sizeof(*reg.order));
    reg.order[reg.norder++] = p;
    return p;
}

static void
setup(void)
{
    berth__registry_init(&reg, NULL, NULL);
}

static void
teardown(void)
{
    berth__registry_free(&reg);
}

TestSuite(initctx, .init = setup, .fini = teardown);

static int
count_cb(void *user, const berth_instance_t *inst)
{
    (*(int *)user)++;
    return 0;
}

Test(initctx, lookups_of_undeclared_types_are_refused)
{
    static const char *const needs_snap[] = {"t.snap.v1", NULL};
    add_ok("t.snap.v1", "a", &instances[0]);
    add_ok("t.other.v1", "b", &instances[1]);
    berth__plugin_t *user = add_ok("t.user.v1", "u", &instances[2]);
    user->reg.requires = needs_snap;
    berth_instance_t inst;
    berth_error_t *err = NULL;
    cr_expect_eq(berth__ic_get(&user->ic.pub, "t.snap.v1", "a", &inst, &err), 0);
    cr_expect_eq(inst.instance, &instances[0]);
    cr_expect_eq(berth__ic_get(&user->ic.pub, "t.other.v1", "b", &inst, &err), BERTH_EPRECONDITION);
    cr_expect_str_eq(err->message,
                     "plugin t.user.v1.u looked up type t.other.v1, which it does not list in "
                     "requires");
    berth__error_free(err);
    err = NULL;
    cr_expect_eq(berth__ic_get_single(&user->ic.pub, "t.other.v1", &inst, NULL),
                 BERTH_EPRECONDITION);
    int n = 0;
    cr_expect_eq(berth__ic_foreach(&user->ic.pub, "t.other.v1", count_cb, &n), BERTH_EPRECONDITION);
    cr_expect_eq(n, 0);
}

Test(initctx, get_single_and_foreach_see_healthy_instances_only)
{
    static const char *const star[] = {"*", NULL};
    add_ok("t.snap.v1", "a", &instances[0]);
    berth__plugin_t *broken = add_ok("t.snap.v1", "b", &instances[1]);
    berth__plugin_set_status(broken, BERTH_ST_ERROR, BERTH_EIO, "broken");
    berth__plugin_t *user = add_ok("t.user.v1", "u", &instances[2]);
    user->reg.requires = star;
    berth_instance_t inst;
    cr_expect_eq(berth__ic_get_single(&user->ic.pub, "t.snap.v1", &inst, NULL), 0);
    cr_expect_str_eq(inst.id, "a");
    int n = 0;
    cr_expect_eq(berth__ic_foreach(&user->ic.pub, "t.snap.v1", count_cb, &n), 1);
    cr_expect_eq(n, 1);
    berth_error_t *err = NULL;
    cr_expect_eq(berth__ic_get(&user->ic.pub, "t.snap.v1", "b", &inst, &err), BERTH_ENOTFOUND);
    cr_expect_str_eq(err->message, "plugin t.snap.v1.b: error: broken");
    berth__error_free(err);
    err = NULL;
    add_ok("t.snap.v1", "c", &instances[3]);
    cr_expect_eq(berth__ic_get_single(&user->ic.pub, "t.snap.v1", &inst, &err), BERTH_EMULTI);
    cr_expect(strstr(err->message, "t.snap.v1.a, t.snap.v1.c") != NULL, "%s", err->message);
    berth__error_free(err);
    err = NULL;
    cr_expect_eq(berth__ic_get_single(&user->ic.pub, "t.none.v1", &inst, &err), BERTH_ENOTFOUND);
    berth__error_free(err);
}

Test(initctx, exports_and_capabilities)
{
    berth__plugin_t *p = add_ok("t.snap.v1", "a", &instances[0]);
    cr_expect_eq(berth__ic_export_set(&p->ic.pub, "root", "/x"), 0);
    cr_expect_eq(berth__ic_export_set(&p->ic.pub, "root", "/y"), 0);
    cr_expect_eq(berth__ic_capability_add(&p->ic.pub, "remap-ids"), 0);
    cr_expect_eq(berth__ic_capability_add(&p->ic.pub, "remap-ids"), 0);
    cr_expect_eq(berth__ic_export_set(&p->ic.pub, "", "v"), BERTH_EINVAL);
    cr_expect_str_eq(p->export_values[0], "/y");
    cr_expect_null(p->export_keys[1]);
    cr_expect_null(p->capabilities[1]);
}

static int ready_calls;

static void
on_ready(berth__registry_t *r)
{
    ready_calls++;
}

Test(initctx, ready_waits_for_every_token)
{
    berth__plugin_t *p = add_ok("t.slow.v1", "a", &instances[0]);
    reg.on_ready = on_ready;
    berth_ready_token_t *t1 = berth__ic_readiness_register(&p->ic.pub);
    berth_ready_token_t *t2 = berth__ic_readiness_register(&p->ic.pub);
    cr_expect_eq(p->ready_tokens, 2);
    berth__ic_readiness_done(t1);
    cr_expect_eq(ready_calls, 0);
    berth__ic_readiness_done(t2);
    cr_expect_eq(ready_calls, 1);
}
