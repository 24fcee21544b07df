/* SPDX-License-Identifier: Apache-2.0 */
/* The dependency graph as pure logic: order, ties, "*", cycles, and root causes of dep-unavailable. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "registry.h"

static berth__registry_t reg;

static int
fake_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    *instance = NULL;
    return 0;
}

static berth__plugin_t *
add(const char *type, const char *id, const char *const *requires)
{
    berth__plugin_t *p = berth__registry_add(&reg, NULL, type, id);
    p->reg.requires = requires;
    p->reg.init = fake_init;
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

static const char *
order_at(size_t i)
{
    cr_assert_lt(i, reg.norder);
    return reg.order[i]->uri;
}

TestSuite(graph, .init = setup, .fini = teardown);

Test(graph, ties_break_by_uri_then_config_position)
{
    add("t.x.c.v1", "c", NULL);
    add("t.x.a.v1", "a", NULL);
    berth__plugin_t *b = add("t.x.b.v1", "b", NULL);
    berth__graph_resolve(&reg);
    cr_expect_str_eq(order_at(0), "t.x.a.v1.a");
    cr_expect_str_eq(order_at(1), "t.x.b.v1.b");
    cr_expect_str_eq(order_at(2), "t.x.c.v1.c");
    b->config_position = 0; /* a config section moves b ahead of the unconfigured ones */
    berth__graph_resolve(&reg);
    cr_expect_str_eq(order_at(0), "t.x.b.v1.b");
}

Test(graph, dependencies_come_first_whatever_their_names)
{
    static const char *const needs_z[] = {"t.x.z.v1", NULL};
    add("t.x.a.v1", "a", needs_z);
    add("t.x.z.v1", "z1", NULL);
    add("t.x.z.v1", "z2", NULL);
    berth__graph_resolve(&reg);
    cr_assert_eq(reg.norder, 3);
    cr_expect_str_eq(order_at(0), "t.x.z.v1.z1");
    cr_expect_str_eq(order_at(1), "t.x.z.v1.z2");
    cr_expect_str_eq(order_at(2), "t.x.a.v1.a");
}

Test(graph, star_runs_after_all_others)
{
    static const char *const star[] = {"*", NULL};
    add("t.x.a.v1", "all", star);
    add("t.x.b.v1", "b", NULL);
    add("t.x.c.v1", "all2", star);
    add("t.x.d.v1", "d", NULL);
    berth__graph_resolve(&reg);
    cr_expect_str_eq(order_at(0), "t.x.b.v1.b");
    cr_expect_str_eq(order_at(1), "t.x.d.v1.d");
    cr_expect_str_eq(order_at(2), "t.x.a.v1.all");
    cr_expect_str_eq(order_at(3), "t.x.c.v1.all2");
}

Test(graph, cycle_is_reported_with_its_path)
{
    static const char *const a_needs[] = {"t.c.b.v1", NULL};
    static const char *const b_needs[] = {"t.c.c.v1", NULL};
    static const char *const c_needs[] = {"t.c.a.v1", NULL};
    static const char *const d_needs[] = {"t.c.a.v1", NULL};
    berth__plugin_t *a = add("t.c.a.v1", "a", a_needs);
    berth__plugin_t *b = add("t.c.b.v1", "b", b_needs);
    add("t.c.c.v1", "c", c_needs);
    berth__plugin_t *d = add("t.c.d.v1", "d", d_needs);
    add("t.c.e.v1", "e", NULL);
    berth__graph_resolve(&reg);
    cr_expect_eq(a->status, BERTH_ST_ERROR);
    cr_expect_eq(b->status, BERTH_ST_ERROR);
    cr_expect_str_eq(a->reason,
                     "dependency cycle: t.c.a.v1.a -> t.c.b.v1.b -> t.c.c.v1.c -> t.c.a.v1.a");
    cr_expect_eq(d->status, BERTH_ST_DEP_UNAVAILABLE);
    cr_expect(strstr(d->reason, "requires t.c.a.v1: t.c.a.v1.a: error: dependency cycle") != NULL,
              "%s", d->reason);
    cr_expect_eq(reg.norder, 2); /* d and e */
}

Test(graph, dep_unavailable_names_the_root_cause)
{
    static const char *const needs_a[] = {"t.r.a.v1", NULL};
    static const char *const needs_b[] = {"t.r.b.v1", NULL};
    berth__plugin_t *a = add("t.r.a.v1", "a", NULL);
    berth__plugin_t *b = add("t.r.b.v1", "b", needs_a);
    berth__plugin_t *c = add("t.r.c.v1", "c", needs_b);
    berth__graph_resolve(&reg);
    berth__plugin_set_status(a, BERTH_ST_ERROR, BERTH_EIO, "disk on fire");
    cr_expect_eq(berth__graph_check_deps(&reg, b, 1), -1);
    cr_expect_eq(berth__graph_check_deps(&reg, c, 1), -1);
    cr_expect_str_eq(b->reason, "requires t.r.a.v1: t.r.a.v1.a: error: disk on fire");
    cr_expect_str_eq(c->reason, "requires t.r.b.v1: t.r.a.v1.a: error: disk on fire");
}

Test(graph, one_healthy_provider_is_enough)
{
    static const char *const needs_s[] = {"t.s.snap.v1", NULL};
    berth__plugin_t *s1 = add("t.s.snap.v1", "btrfs", NULL);
    add("t.s.snap.v1", "overlay", NULL);
    berth__plugin_t *m = add("t.s.meta.v1", "m", needs_s);
    berth__graph_resolve(&reg);
    berth__plugin_set_status(s1, BERTH_ST_SKIP, BERTH_ESKIP, "not btrfs: skip plugin");
    reg.order[1]->status = BERTH_ST_OK;
    cr_expect_eq(berth__graph_check_deps(&reg, m, 1), 0);
}

Test(graph, after_names_a_plugin_by_uri)
{
    static const char *const after[] = {"t.a.z.v1.zz", NULL};
    berth__plugin_t *a = add("t.a.a.v1", "a", NULL);
    a->reg.after = after;
    add("t.a.z.v1", "zz", NULL);
    berth__graph_resolve(&reg);
    cr_expect_str_eq(order_at(0), "t.a.z.v1.zz");
    cr_expect_str_eq(order_at(1), "t.a.a.v1.a");
    static const char *const missing[] = {"t.a.q.v1.none", NULL};
    a->reg.after = missing;
    a->status = BERTH_ST_PENDING;
    berth__graph_resolve(&reg);
    cr_expect_eq(a->status, BERTH_ST_DEP_UNAVAILABLE);
    cr_expect(strstr(a->reason, "requires t.a.q.v1.none: no plugin provides it") != NULL, "%s",
              a->reason);
}

Test(graph, optional_requires_order_but_never_block)
{
    static const char *const maybe_n[] = {"t.o.meta.v1", "?t.o.net.v1", NULL};
    berth__plugin_t *t = add("t.o.a.v1", "tasks", maybe_n);
    add("t.o.meta.v1", "m", NULL);
    berth__plugin_t *n = add("t.o.net.v1", "cni", NULL);
    berth__graph_resolve(&reg);
    cr_assert_eq(reg.norder, 3);
    cr_expect_str_eq(order_at(2), "t.o.a.v1.tasks"); /* after its optional provider too */
    berth__plugin_set_status(n, BERTH_ST_ERROR, BERTH_EIO, "no plugins");
    reg.order[0]->status = BERTH_ST_OK;
    cr_expect_eq(berth__graph_check_deps(&reg, t, 1), 0);
    berth__registry_free(&reg);
    berth__registry_init(&reg, NULL, NULL);
    t = add("t.o.a.v1", "tasks", maybe_n); /* no provider at all */
    add("t.o.meta.v1", "m", NULL);
    berth__graph_resolve(&reg);
    reg.order[0]->status = BERTH_ST_OK;
    cr_expect_eq(berth__graph_check_deps(&reg, t, 1), 0);
    cr_expect_eq(t->status, BERTH_ST_PENDING);
}
