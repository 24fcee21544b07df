/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mark and sweep over one write transaction, namespace by namespace: roots are live leases' content and
 * content labelled containerd.io/gc.root; containerd.io/gc.ref.content* labels lead to more content.
 * Expired leases (containerd.io/gc.expire in the past) go, with what only they protected.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "records.h"

#define LABEL_ROOT "containerd.io/gc.root"
#define LABEL_REF_CONTENT "containerd.io/gc.ref.content"
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

static int
scan(MDB_txn *txn, MDB_dbi dbi, const md_key_t *prefix,
     int (*each)(void *user, MDB_val *k, MDB_val *v), void *user)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, dbi, &c) != 0)
        return -1;
    MDB_val k = {prefix->len, (void *)prefix->data}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0 && md_has_prefix(&k, prefix); rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (each(user, &k, &v) != 0)
            break;
    mdb_cursor_close(c);
    return 0;
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
mark(gc_ns_t *g, const char *digest, int follow)
{
    if (set_add(&g->live, digest) && follow)
        set_add(&g->pending, digest);
}

static int
mark_lease_resources(gc_ns_t *g, const char *id, int follow)
{
    md_key_t prefix;
    md_key(&prefix, 'r', g->ns, id, "content", "", NULL);
    MDB_cursor *c;
    if (mdb_cursor_open(g->txn, g->md->dbi, &c) != 0)
        return -1;
    MDB_val k = {prefix.len, prefix.data}, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && md_has_prefix(&k, &prefix);
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char digest[256];
        size_t n = k.mv_size - prefix.len;
        if (n >= sizeof(digest))
            continue;
        memcpy(digest, (char *)k.mv_data + prefix.len, n);
        digest[n] = '\0';
        mark(g, digest, follow);
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

/* Follows gc.ref.content* labels of everything reached until nothing new turns up. */
static void
follow_refs(gc_ns_t *g)
{
    while (g->pending.n > 0) {
        char *digest = g->pending.v[--g->pending.n];
        md_key_t k;
        md_key(&k, 'b', g->ns, digest, NULL);
        MDB_val key = {k.len, k.data}, val;
        if (mdb_get(g->txn, g->md->dbi, &key, &val) == 0) {
            Containerd__Services__Content__V1__Info *info =
                containerd__services__content__v1__info__unpack(NULL, val.mv_size, val.mv_data);
            for (size_t i = 0; info && i < info->n_labels; i++)
                if (strncmp(info->labels[i]->key, LABEL_REF_CONTENT, strlen(LABEL_REF_CONTENT)) ==
                    0)
                    mark(g, info->labels[i]->value, 1);
            if (info)
                containerd__services__content__v1__info__free_unpacked(info, NULL);
        }
        free(digest);
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
    if (!set_has(&g->live, buf))
        set_add(&g->dead, buf);
    return 0;
}

static int
collect_namespace(md_t *md, MDB_txn *txn, const char *ns, int64_t now,
                  void (*removed)(void *, const char *), void *user, berth_error_t **err)
{
    gc_ns_t g = {.md = md, .txn = txn, .ns = ns, .now = now};
    md_key_t leases, content, imgs;
    md_key(&leases, 'l', ns, "", NULL);
    md_key(&content, 'b', ns, "", NULL);
    md_key(&imgs, 'i', ns, "", NULL);
    scan(txn, md->dbi, &leases, visit_lease, &g);
    scan(txn, md->dbi, &imgs, visit_image, &g);
    scan(txn, md->dbi, &content, visit_content_root, &g);
    follow_refs(&g);
    scan(txn, md->dbi, &content, visit_content_sweep, &g);
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
        md_key_t k;
        md_key(&k, 'b', ns, g.dead.v[i], NULL);
        MDB_val key = {k.len, k.data};
        if (mdb_del(txn, md->dbi, &key, NULL) == 0 && removed)
            removed(user, g.dead.v[i]);
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
md_gc_collect(void *arg, int64_t now_ns, void (*removed)(void *user, const char *digest),
              void *user, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    uint64_t seen = __atomic_load_n(&md->dirty, __ATOMIC_RELAXED);
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    ns_list_t l = {0};
    md_key_t prefix;
    md_key(&prefix, 'n', "", NULL);
    scan(txn, md->dbi, &prefix, collect_ns_name, &l);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l.names.n; i++)
        rc = collect_namespace(md, txn, l.names.v[i], now_ns, removed, user, err);
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
