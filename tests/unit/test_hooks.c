/* SPDX-License-Identifier: Apache-2.0 */
/* Hook dispatch as pure logic: ordering, and what each mode does with a handler's error. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "registry.h"

static berth__registry_t reg;
static char calls[256];

static berth_init_ctx_t *
ctx_of(const char *type, int config_position, int init_order)
{
    berth__plugin_t *p = berth__registry_add(&reg, NULL, type, "h");
    p->config_position = config_position;
    p->init_order = init_order;
    p->ic.plugin = p;
    p->ic.reg = &reg;
    return &p->ic.pub;
}

static int
record(void *user, berth_hook_point_t point, void *payload, berth_error_t **err)
{
    strcat(calls, (const char *)user);
    return 0;
}

static int
refuse(void *user, berth_hook_point_t point, void *payload, berth_error_t **err)
{
    strcat(calls, (const char *)user);
    return berth__error_make(err, BERTH_EPRECONDITION, "no %s today", (const char *)user);
}

static void
setup(void)
{
    berth__registry_init(&reg, NULL, NULL);
    calls[0] = '\0';
}

static void
teardown(void)
{
    berth__hooks_reset();
    berth__registry_free(&reg);
}

TestSuite(hooks, .init = setup, .fini = teardown);

Test(hooks, priority_then_config_order_then_init_order)
{
    berth_init_ctx_t *a = ctx_of("t.h.a.v1", INT32_MAX, 1);
    berth_init_ctx_t *b = ctx_of("t.h.b.v1", 0, 2);
    berth_init_ctx_t *c = ctx_of("t.h.c.v1", INT32_MAX, 3);
    cr_assert_eq(berth__hook_register(a, BERTH_HOOK_CONTAINER_PRE_CREATE, 0, record, "a", NULL), 0);
    cr_assert_eq(berth__hook_register(c, BERTH_HOOK_CONTAINER_PRE_CREATE, 0, record, "c", NULL), 0);
    cr_assert_eq(berth__hook_register(b, BERTH_HOOK_CONTAINER_PRE_CREATE, 0, record, "b", NULL), 0);
    cr_assert_eq(berth__hook_register(c, BERTH_HOOK_CONTAINER_PRE_CREATE, 9, record, "C", NULL), 0);
    cr_assert_eq(berth__hook_invoke(BERTH_HOOK_CONTAINER_PRE_CREATE, NULL, NULL), 0);
    cr_expect_str_eq(calls, "Cbac");
}

Test(hooks, veto_stops_and_reports)
{
    berth_init_ctx_t *a = ctx_of("t.h.a.v1", INT32_MAX, 1);
    berth__hook_register(a, BERTH_HOOK_CONTAINER_POST_UPDATE, 3, record, "1", NULL);
    berth__hook_register(a, BERTH_HOOK_CONTAINER_POST_UPDATE, 2, refuse, "2", NULL);
    berth__hook_register(a, BERTH_HOOK_CONTAINER_POST_UPDATE, 1, record, "3", NULL);
    berth_error_t *err = NULL;
    int rc = berth__hook_invoke(BERTH_HOOK_CONTAINER_POST_UPDATE, NULL, &err);
    cr_expect_eq(rc, BERTH_EPRECONDITION);
    cr_expect_str_eq(calls, "12");
    cr_assert(err != NULL);
    cr_expect_str_eq(err->message, "container.post-update hook of t.h.a.v1.h: no 2 today");
    berth__error_free(err);
}

Test(hooks, advisory_and_post_errors_are_logged_not_returned)
{
    berth_init_ctx_t *a = ctx_of("t.h.a.v1", INT32_MAX, 1);
    berth__hook_register(a, BERTH_HOOK_DAEMON_PRE_STOP, 2, refuse, "x", NULL);
    berth__hook_register(a, BERTH_HOOK_DAEMON_PRE_STOP, 1, record, "y", NULL);
    cr_expect_eq(berth__hook_invoke(BERTH_HOOK_DAEMON_PRE_STOP, NULL, NULL), 0);
    cr_expect_str_eq(calls, "xy");
    cr_expect_eq(reg.plugins[0]->hook_failures, 1);
}

Test(hooks, modes_are_fixed_per_point)
{
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_DAEMON_PRE_START), BERTH_HOOK_VETO);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_DAEMON_PRE_STOP), BERTH_HOOK_ADVISORY);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_CONTAINER_PRE_CREATE), BERTH_HOOK_MUTATING);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_IMAGE_POST_PULL), BERTH_HOOK_VETO);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_API_HANDLER_UPDATE), BERTH_HOOK_MUTATING);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_ENDPOINT_PRE_CREATE), BERTH_HOOK_MUTATING);
    cr_expect_eq(berth__hook_mode(BERTH_HOOK_VOLUME_PRE_CREATE), BERTH_HOOK_MUTATING);
    cr_expect_eq(berth__hook_register(NULL, BERTH_HOOK_POINT_COUNT, 0, record, "", NULL),
                 BERTH_EINVAL);
}

Test(hooks, forget_drops_a_plugins_handlers)
{
    berth_init_ctx_t *a = ctx_of("t.h.a.v1", INT32_MAX, 1);
    berth_init_ctx_t *b = ctx_of("t.h.b.v1", INT32_MAX, 2);
    berth__hook_register(a, BERTH_HOOK_VOLUME_PRE_CREATE, 0, record, "a", NULL);
    berth__hook_register(b, BERTH_HOOK_VOLUME_PRE_CREATE, 0, record, "b", NULL);
    berth__hook_forget(reg.plugins[0]);
    berth__hook_invoke(BERTH_HOOK_VOLUME_PRE_CREATE, NULL, NULL);
    cr_expect_str_eq(calls, "b");
}
