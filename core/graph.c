/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Dependency order. A plugin comes after every plugin whose type it requires ("*": after all others that
 * do not themselves require "*") and after each URI in its `after` list. Kahn's algorithm picks, among the
 * plugins whose dependencies are placed, the one with the lowest config position, then the lowest URI, so
 * the order never depends on readdir or link order. Cycles are reported with their path.
 */
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "registry.h"
#include "util.h"

typedef struct graph {
    berth__plugin_t **nodes;
    size_t n;
    unsigned char *edge; /* edge[a * n + b]: a must come after b */
    unsigned char *placed;
    size_t nrunning; /* reorder: nodes[0..nrunning) run already, in init order; they keep it */
} graph_t;

static int
requires_all(const berth__plugin_t *p)
{
    return p->reg.requires && p->reg.requires[0] && strcmp(p->reg.requires[0], "*") == 0;
}

int
berth__graph_depends(const berth__plugin_t *a, const berth__plugin_t *b)
{
    if (a == b)
        return 0;
    if (requires_all(a))
        return !requires_all(b);
    if (berth__requires_type(a->reg.requires, b->type))
        return 1;
    for (size_t i = 0; a->reg.after && a->reg.after[i]; i++)
        if (strcmp(a->reg.after[i], b->uri) == 0)
            return 1;
    return 0;
}

static int
before(const berth__plugin_t *a, const berth__plugin_t *b)
{
    if (a->config_position != b->config_position)
        return a->config_position < b->config_position;
    return strcmp(a->uri, b->uri) < 0;
}

static int
ready(const graph_t *g, size_t a)
{
    for (size_t b = 0; b < g->n; b++)
        if (g->edge[a * g->n + b] && !g->placed[b])
            return 0;
    return 1;
}

static void
kahn(berth__registry_t *reg, graph_t *g)
{
    for (;;) {
        ssize_t best = -1;
        for (size_t a = 0; a < g->n; a++)
            if (!g->placed[a] && ready(g, a) &&
                (best < 0 || (a < g->nrunning && (size_t)best >= g->nrunning) ||
                 ((a < g->nrunning) == ((size_t)best < g->nrunning) &&
                  (a < g->nrunning ? a < (size_t)best : before(g->nodes[a], g->nodes[best])))))
                best = (ssize_t)a;
        if (best < 0)
            return;
        g->placed[best] = 1;
        reg->order[reg->norder++] = g->nodes[best];
    }
}

/* Follows unplaced dependencies from an unplaced node until one repeats: that loop is a cycle. */
static void
break_cycle(graph_t *g)
{
    size_t *path = berth__xcalloc(g->n + 1, sizeof(size_t));
    unsigned char *seen = berth__xcalloc(g->n, 1);
    size_t len = 0, cur = 0;
    while (g->placed[cur])
        cur++;
    while (!seen[cur]) {
        seen[cur] = 1;
        path[len++] = cur;
        size_t next = 0;
        while (!(g->edge[cur * g->n + next] && !g->placed[next]))
            next++;
        cur = next;
    }
    size_t start = 0;
    while (path[start] != cur)
        start++;
    char *text = berth__xstrdup(g->nodes[cur]->uri);
    for (size_t i = start + 1; i <= len; i++) {
        char *t = berth__xasprintf("%s -> %s", text, g->nodes[i < len ? path[i] : cur]->uri);
        free(text);
        text = t;
    }
    for (size_t i = start; i < len; i++) {
        berth__plugin_set_status(g->nodes[path[i]], BERTH_ST_ERROR, BERTH_EPRECONDITION,
                                 "dependency cycle: %s", text);
        g->placed[path[i]] = 1; /* out of the running; its dependents fail their dependency check */
    }
    free(text);
    free(seen);
    free(path);
}

static int
all_placed(const graph_t *g)
{
    for (size_t a = 0; a < g->n; a++)
        if (!g->placed[a])
            return 0;
    return 1;
}

static void
order(berth__registry_t *reg, int with_running)
{
    graph_t g = {0};
    g.nodes = berth__xcalloc(reg->nplugins + 1, sizeof(*g.nodes));
    /* running plugins first, in their order, so ties keep them where they were */
    for (size_t i = 0; with_running && i < reg->norder; i++)
        if (reg->order[i]->status == BERTH_ST_OK)
            g.nodes[g.n++] = reg->order[i];
    g.nrunning = g.n;
    for (size_t i = 0; i < reg->nplugins; i++) /* deferred ones start later, in this order too */
        if (reg->plugins[i]->status == BERTH_ST_PENDING ||
            reg->plugins[i]->status == BERTH_ST_DEFERRED)
            g.nodes[g.n++] = reg->plugins[i];
    g.edge = berth__xcalloc(g.n * g.n + 1, 1);
    g.placed = berth__xcalloc(g.n + 1, 1);
    for (size_t a = 0; a < g.n; a++)
        for (size_t b = 0; b < g.n; b++)
            g.edge[a * g.n + b] = (unsigned char)berth__graph_depends(g.nodes[a], g.nodes[b]);
    free(reg->order);
    reg->order = berth__xcalloc(g.n + 1, sizeof(*reg->order));
    reg->norder = 0;
    kahn(reg, &g);
    while (!all_placed(&g)) {
        break_cycle(&g);
        kahn(reg, &g);
    }
    /* Statically hopeless plugins (nothing provides a required type) are marked now, in order. */
    for (size_t i = 0; i < reg->norder; i++)
        if (reg->order[i]->status == BERTH_ST_PENDING)
            berth__graph_check_deps(reg, reg->order[i], 0);
    free(g.nodes);
    free(g.edge);
    free(g.placed);
}

void
berth__graph_resolve(berth__registry_t *reg)
{
    order(reg, 0);
}

void
berth__graph_reorder(berth__registry_t *reg)
{
    order(reg, 1);
}

static int
usable(const berth__plugin_t *p, int at_init)
{
    /* a deferred provider counts: whoever needs it at its init has it started first (demand.c), and
     * a plugin that follows changes hears of it when it arrives */
    return p->status == BERTH_ST_OK || p->status == BERTH_ST_DEFERRED ||
           (!at_init && p->status == BERTH_ST_PENDING);
}

static void
mark_unavailable(berth__plugin_t *p, const char *what, const berth__plugin_t *cause)
{
    if (cause == NULL) {
        berth__plugin_set_status(p, BERTH_ST_DEP_UNAVAILABLE, BERTH_EPRECONDITION,
                                 "requires %s: no plugin provides it", what);
        return;
    }
    berth__plugin_set_status(p, BERTH_ST_DEP_UNAVAILABLE, BERTH_EPRECONDITION, "requires %s: %s",
                             what, cause->root_cause ? cause->root_cause : cause->uri);
    /* dependents quote the root cause, not the chain of dep-unavailable rows above it */
    free(p->root_cause);
    p->root_cause = berth__xstrdup(cause->root_cause ? cause->root_cause : p->reason);
}

int
berth__graph_check_deps(berth__registry_t *reg, berth__plugin_t *p, int at_init)
{
    if (requires_all(p))
        return 0;
    for (size_t i = 0; p->reg.requires && p->reg.requires[i]; i++) {
        const char *type = p->reg.requires[i];
        if (type[0] == '?') /* optional: whatever state its providers are in */
            continue;
        const berth__plugin_t *cause = NULL;
        int ok = 0;
        for (size_t j = 0; j < reg->nplugins && !ok; j++) {
            const berth__plugin_t *q = reg->plugins[j];
            if (strcmp(q->type, type) != 0)
                continue;
            ok = usable(q, at_init);
            if (cause == NULL ||
                (cause->status == BERTH_ST_DISABLED && q->status != BERTH_ST_DISABLED))
                cause = q;
        }
        if (!ok) {
            mark_unavailable(p, type, cause);
            return -1;
        }
    }
    for (size_t i = 0; p->reg.after && p->reg.after[i]; i++) {
        const berth__plugin_t *q = berth__registry_find(reg, p->reg.after[i]);
        if (q == NULL || !usable(q, at_init)) {
            mark_unavailable(p, p->reg.after[i], q);
            return -1;
        }
    }
    return 0;
}
