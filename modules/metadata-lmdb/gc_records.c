/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mark and sweep over one write transaction, namespace by namespace. Nodes are "c:<digest>" (content) and
 * "s:<snapshotter>/<key>" (snapshots). Roots: live leases and what they list, images' targets, containers'
 * snapshots, records labelled containerd.io/gc.root. Edges: containerd.io/gc.ref.content* and
 * containerd.io/gc.ref.snapshot.<snapshotter>* labels, and a snapshot's parent. Expired leases
 * (containerd.io/gc.expire in the past) go, with what only they protected.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include <stdio.h>
#include "records.h"

#define LABEL_ROOT "containerd.io/gc.root"
#define LABEL_REF_CONTENT "containerd.io/gc.ref.content"
#define LABEL_REF_SNAPSHOT "containerd.io/gc.ref.snapshot."
#define LABEL_EXPIRE "containerd.io/gc.expire"
#define LABEL_FLAT "containerd.io/gc.flat"

typedef struct digest_set {
    char **v;
    size_t n, cap;
} digest_set_t;

static int
set_has(const digest_set_t *s, const char *d)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], d) == 0)
            return 1;
    return 0;
}

static int
set_add(digest_set_t *s, const char *d)
{
    if (set_has(s, d))
        return 0;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof(char *));
    }
    s->v[s->n++] = strdup(d);
    return 1;
}

static void
set_free(digest_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* RFC 3339 ("2026-11-24T04:22:45Z", fractions and offsets allowed) to ns; 0 if it does not parse. */
static int64_t
parse_rfc3339(const char *s)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (rest == NULL)
        return 0;
    int64_t ns = 0, scale = 100000000;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            ns += (*rest - '0') * scale;
    int64_t offset = 0;
    if ((*rest == '+' || *rest == '-') && strlen(rest) >= 6) {
        offset = ((rest[1] - '0') * 10 + (rest[2] - '0')) * 3600 +
                 ((rest[4] - '0') * 10 + (rest[5] - '0')) * 60;
        if (*rest == '-')
            offset = -offset;
    }
    return ((int64_t)timegm(&tm) - offset) * 1000000000 + ns;
}

typedef struct gc_ns {
    md_t *md;
    MDB_txn *txn;
    const char *ns;
    int64_t now;
    digest_set_t live;    /* content reached so far */
    digest_set_t pending; /* reached, references not followed yet */
    digest_set_t expired; /* lease ids to delete */
    digest_set_t dead;    /* content records to delete */
} gc_ns_t;

static void
mark_node(gc_ns_t *g, const char *node, int follow)
{
    if (set_add(&g->live, node) && follow)
        set_add(&g->pending, node);
}

static void
mark(gc_ns_t *g, const char *digest, int follow)
{
    char node[300];
    snprintf(node, sizeof(node), "c:%s", digest);
    mark_node(g, node, follow);
}

static void
mark_snapshot(gc_ns_t *g, const char *snapshotter, size_t sn_len, const char *key, int follow)
{
    char node[1200];
    snprintf(node, sizeof(node), "s:%.*s/%s", (int)sn_len, snapshotter, key);
    mark_node(g, node, follow);
}

/* gc.ref.content* and gc.ref.snapshot.<snapshotter>[/...] labels of a record */
static void
mark_label_refs(gc_ns_t *g, md_map_entry_t **labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = labels[i]->key;
        if (strncmp(k, LABEL_REF_CONTENT, strlen(LABEL_REF_CONTENT)) == 0) {
            mark(g, labels[i]->value, 1);
        } else if (strncmp(k, LABEL_REF_SNAPSHOT, strlen(LABEL_REF_SNAPSHOT)) == 0) {
            const char *sn = k + strlen(LABEL_REF_SNAPSHOT);
            mark_snapshot(g, sn, strcspn(sn, "/"), labels[i]->value, 1);
        }
    }
}

static int
mark_lease_resources(gc_ns_t *g, const char *id, int follow)
{
    md_key_t prefix;
    md_key(&prefix, 'r', g->ns, id, "", NULL);
    MDB_cursor *c;
    if (mdb_cursor_open(g->txn, g->md->dbi, &c) != 0)
        return -1;
    MDB_val k = {prefix.len, prefix.data}, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && md_has_prefix(&k, &prefix);
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char rest[1200]; /* "<type>\0<resource>" */
        size_t n = k.mv_size - prefix.len;
        if (n >= sizeof(rest))
            continue;
        memcpy(rest, (char *)k.mv_data + prefix.len, n);
        rest[n] = '\0';
        const char *type = rest, *resource = rest + strlen(rest) + 1;
        if (strcmp(type, "content") == 0)
            mark(g, resource, follow);
        else if (strncmp(type, "snapshots/", 10) == 0)
            mark_snapshot(g, type + 10, strlen(type + 10), resource, follow);
    }
    mdb_cursor_close(c);
    return 0;
}

static int
visit_lease(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    Containerd__Services__Leases__V1__Lease *l =
        containerd__services__leases__v1__lease__unpack(NULL, v->mv_size, v->mv_data);
    if (l == NULL)
        return 0;
    int64_t expire = 0;
    int flat = 0;
    for (size_t i = 0; i < l->n_labels; i++) {
        if (strcmp(l->labels[i]->key, LABEL_EXPIRE) == 0)
            expire = parse_rfc3339(l->labels[i]->value);
        flat |= strcmp(l->labels[i]->key, LABEL_FLAT) == 0;
    }
    if (expire > 0 && expire < g->now)
        set_add(&g->expired, l->id);
    else
        mark_lease_resources(g, l->id, !flat);
    containerd__services__leases__v1__lease__free_unpacked(l, NULL);
    return 0;
}

static int
visit_image(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    char digest[128];
    if (md_image_target(v->mv_data, v->mv_size, digest, sizeof(digest)))
        mark(g, digest, 1);
    return 0;
}

static int
visit_content_root(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    Containerd__Services__Content__V1__Info *info =
        containerd__services__content__v1__info__unpack(NULL, v->mv_size, v->mv_data);
    if (info == NULL)
        return 0;
    for (size_t i = 0; i < info->n_labels; i++)
        if (strcmp(info->labels[i]->key, LABEL_ROOT) == 0)
            mark(g, info->digest, 1);
    containerd__services__content__v1__info__free_unpacked(info, NULL);
    return 0;
}

static void
follow_content(gc_ns_t *g, const char *digest)
{
    md_key_t k;
    md_key(&k, 'b', g->ns, digest, NULL);
    MDB_val key = {k.len, k.data}, val;
    if (mdb_get(g->txn, g->md->dbi, &key, &val) != 0)
        return;
    Containerd__Services__Content__V1__Info *info =
        containerd__services__content__v1__info__unpack(NULL, val.mv_size, val.mv_data);
    if (info) {
        mark_label_refs(g, (md_map_entry_t **)info->labels, info->n_labels);
        containerd__services__content__v1__info__free_unpacked(info, NULL);
    }
}

static void
follow_snapshot(gc_ns_t *g, const char *sn_key)
{
    const char *slash = strchr(sn_key, '/');
    if (slash == NULL)
        return;
    char sn[256];
    snprintf(sn, sizeof(sn), "%.*s", (int)(slash - sn_key), sn_key);
    md_key_t k;
    if (md_key(&k, 's', g->ns, sn, slash + 1, NULL) < 0)
        return;
    MDB_val key = {k.len, k.data}, val;
    if (mdb_get(g->txn, g->md->dbi, &key, &val) != 0)
        return;
    Containerd__Services__Snapshots__V1__Info *info =
        containerd__services__snapshots__v1__info__unpack(NULL, val.mv_size, val.mv_data);
    if (info) {
        mark_label_refs(g, (md_map_entry_t **)info->labels, info->n_labels);
        if (info->parent[0])
            mark_snapshot(g, sn, strlen(sn), info->parent, 1);
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    }
}

/* Follows the references of everything reached until nothing new turns up. */
static void
follow_refs(gc_ns_t *g)
{
    while (g->pending.n > 0) {
        char *node = g->pending.v[--g->pending.n];
        if (node[0] == 'c')
            follow_content(g, node + 2);
        else
            follow_snapshot(g, node + 2);
        free(node);
    }
}

static int
visit_content_sweep(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    const char *digest = (const char *)k->mv_data + 3 + strlen(g->ns); /* "b\0<ns>\0<digest>" */
    size_t n = k->mv_size - 3 - strlen(g->ns);
    char buf[256];
    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, digest, n);
    buf[n] = '\0';
    char node[300];
    snprintf(node, sizeof(node), "c:%s", buf);
    if (!set_has(&g->live, node))
        set_add(&g->dead, node);
    return 0;
}

/* "s\0<ns>\0<snapshotter>\0<key>" records: roots by label, and the dead. */
static int
snapshot_node(gc_ns_t *g, MDB_val *k, char *node, size_t len)
{
    size_t skip = 3 + strlen(g->ns);
    if (k->mv_size <= skip || k->mv_size - skip >= len - 3)
        return -1;
    const char *rest = (const char *)k->mv_data + skip;
    size_t n = k->mv_size - skip;
    memcpy(node, "s:", 2);
    memcpy(node + 2, rest, n);
    node[2 + n] = '\0';
    char *nul = memchr(node + 2, '\0', n);
    if (nul == NULL)
        return -1;
    *nul = '/';
    return 0;
}

static int
visit_snapshot_root(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    char node[1200];
    if (snapshot_node(g, k, node, sizeof(node)) < 0)
        return 0;
    Containerd__Services__Snapshots__V1__Info *info =
        containerd__services__snapshots__v1__info__unpack(NULL, v->mv_size, v->mv_data);
    for (size_t i = 0; info && i < info->n_labels; i++)
        if (strcmp(info->labels[i]->key, LABEL_ROOT) == 0)
            mark_node(g, node, 1);
    if (info)
        containerd__services__snapshots__v1__info__free_unpacked(info, NULL);
    return 0;
}

static int
visit_snapshot_sweep(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    char node[1200];
    if (snapshot_node(g, k, node, sizeof(node)) == 0 && !set_has(&g->live, node))
        set_add(&g->dead, node);
    return 0;
}

static int
visit_container(void *user, MDB_val *k, MDB_val *v)
{
    gc_ns_t *g = user;
    Containerd__Services__Containers__V1__Container *c =
        containerd__services__containers__v1__container__unpack(NULL, v->mv_size, v->mv_data);
    if (c == NULL)
        return 0;
    if (c->snapshotter[0] && c->snapshot_key[0])
        mark_snapshot(g, c->snapshotter, strlen(c->snapshotter), c->snapshot_key, 1);
    mark_label_refs(g, (md_map_entry_t **)c->labels, c->n_labels);
    containerd__services__containers__v1__container__free_unpacked(c, NULL);
    return 0;
}

static int
collect_namespace(md_t *md, MDB_txn *txn, const char *ns, int64_t now,
                  const berth_gc_removed_t *removed, berth_error_t **err)
{
    gc_ns_t g = {.md = md, .txn = txn, .ns = ns, .now = now};
    md_key_t leases, content, imgs, ctrs, snaps;
    md_key(&leases, 'l', ns, "", NULL);
    md_key(&content, 'b', ns, "", NULL);
    md_key(&imgs, 'i', ns, "", NULL);
    md_key(&ctrs, 'c', ns, "", NULL);
    md_key(&snaps, 's', ns, "", NULL);
    md_scan(txn, md->dbi, &leases, visit_lease, &g);
    md_scan(txn, md->dbi, &imgs, visit_image, &g);
    md_scan(txn, md->dbi, &ctrs, visit_container, &g);
    md_scan(txn, md->dbi, &content, visit_content_root, &g);
    md_scan(txn, md->dbi, &snaps, visit_snapshot_root, &g);
    follow_refs(&g);
    md_scan(txn, md->dbi, &content, visit_content_sweep, &g);
    md_scan(txn, md->dbi, &snaps, visit_snapshot_sweep, &g);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < g.expired.n; i++) {
        md_key_t k, res;
        md_key(&k, 'l', ns, g.expired.v[i], NULL);
        md_key(&res, 'r', ns, g.expired.v[i], "", NULL);
        MDB_val key = {k.len, k.data};
        rc = md_delete_prefix(md, txn, &res, err);
        if (rc == 0 && mdb_del(txn, md->dbi, &key, NULL) != 0)
            rc = md->api->error_make(err, BERTH_EINTERNAL, "gc: delete lease %s", g.expired.v[i]);
    }
    for (size_t i = 0; rc == 0 && i < g.dead.n; i++) {
        const char *node = g.dead.v[i];
        md_key_t k;
        char sn[256] = "";
        const char *key = NULL;
        if (node[0] == 'c') {
            md_key(&k, 'b', ns, node + 2, NULL);
        } else {
            const char *slash = strchr(node + 2, '/');
            snprintf(sn, sizeof(sn), "%.*s", (int)(slash - node - 2), node + 2);
            key = slash + 1;
            md_key(&k, 's', ns, sn, key, NULL);
        }
        MDB_val kv = {k.len, k.data};
        if (mdb_del(txn, md->dbi, &kv, NULL) != 0 || removed == NULL)
            continue;
        if (node[0] == 'c' && removed->content)
            removed->content(removed->user, node + 2);
        else if (node[0] == 's' && removed->snapshot)
            removed->snapshot(removed->user, ns, sn, key);
    }
    set_free(&g.live);
    set_free(&g.pending);
    set_free(&g.expired);
    set_free(&g.dead);
    return rc;
}

typedef struct ns_list {
    digest_set_t names;
} ns_list_t;

static int
collect_ns_name(void *user, MDB_val *k, MDB_val *v)
{
    ns_list_t *l = user;
    char buf[128];
    size_t n = k->mv_size - 2;
    if (n < sizeof(buf)) {
        memcpy(buf, (char *)k->mv_data + 2, n);
        buf[n] = '\0';
        set_add(&l->names, buf);
    }
    return 0;
}

int
md_gc_collect(void *arg, int64_t now_ns, const berth_gc_removed_t *removed, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    uint64_t seen = __atomic_load_n(&md->dirty, __ATOMIC_RELAXED);
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    ns_list_t l = {0};
    md_key_t prefix;
    md_key(&prefix, 'n', "", NULL);
    md_scan(txn, md->dbi, &prefix, collect_ns_name, &l);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.names.n; i++)
        rc = collect_namespace(md, txn, l.names.v[i], now_ns, removed, err);
    set_free(&l.names);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = md_commit(md, txn, err);
    if (rc == 0) /* deletions that raced with us stay counted */
        __atomic_sub_fetch(&md->dirty, seen, __ATOMIC_RELAXED);
    return rc;
}

uint64_t
md_gc_dirty(void *arg)
{
    md_t *md = arg;
    return __atomic_load_n(&md->dirty, __ATOMIC_RELAXED);
}

int
md_lease_holds(void *arg, const char *ns, const char *type, const char *resource,
               berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    md_key_t prefix;
    md_key(&prefix, 'l', ns, "", NULL);
    /* every lease of the namespace: a resource key is r\0<ns>\0<id>\0<type>\0<resource> */
    MDB_cursor *c;
    int held = 0;
    if (mdb_cursor_open(txn, md->dbi, &c) == 0) {
        MDB_val k = {prefix.len, prefix.data}, v;
        for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
             rc == 0 && md_has_prefix(&k, &prefix) && !held;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            char id[1024];
            size_t n = k.mv_size - prefix.len;
            if (n >= sizeof(id))
                continue;
            memcpy(id, (char *)k.mv_data + prefix.len, n);
            id[n] = '\0';
            md_key_t rk;
            if (md_key(&rk, 'r', ns, id, type, resource, NULL) == 0) {
                MDB_val key = {rk.len, rk.data}, val;
                held = mdb_get(txn, md->dbi, &key, &val) == 0;
            }
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return held;
}
