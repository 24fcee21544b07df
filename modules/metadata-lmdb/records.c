/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces and leases as LMDB records: the berth_metadata_v1_ops_t of metadata.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "records.h"
#include "clock.h"

typedef Containerd__Services__Namespaces__V1__Namespace ns_pb_t;
typedef Containerd__Services__Leases__V1__Lease lease_pb_t;

md_map_entry_t **
md_entries_of(md_t *md, const berth_kv_t *kv, const ProtobufCMessageDescriptor *d, size_t *n)
{
    *n = md->api->kv_size(kv);
    md_map_entry_t **e = calloc(*n + 1, sizeof(*e));
    for (size_t i = 0; i < *n; i++) {
        e[i] = calloc(1, sizeof(md_map_entry_t));
        protobuf_c_message_init(d, e[i]);
        e[i]->key = (char *)md->api->kv_key_at(kv, i);
        e[i]->value = (char *)md->api->kv_value_at(kv, i);
    }
    return e;
}

void
md_entries_free(md_map_entry_t **e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i]);
    free(e);
}

void
md_entries_to_kv(md_t *md, md_map_entry_t **e, size_t n, berth_kv_t *kv)
{
    for (size_t i = 0; i < n; i++)
        md->api->kv_set(kv, e[i]->key, e[i]->value);
}

int
md_put_message(md_t *md, MDB_txn *txn, const md_key_t *k, const ProtobufCMessage *m,
               berth_error_t **err)
{
    MDB_val key = {k->len, (void *)k->data};
    MDB_val val = {protobuf_c_message_get_packed_size(m), NULL};
    int rc = mdb_put(txn, md->dbi, &key, &val, MDB_RESERVE);
    if (rc != 0)
        return md_fail(md, rc, "write", err);
    protobuf_c_message_pack(m, val.mv_data);
    return 0;
}

static int
key_error(md_t *md, berth_error_t **err)
{
    return md->api->error_make(
        err, BERTH_EINVAL, "name too long for a metadata key (%d bytes at most)", MD_KEY_MAX / 2);
}

/* ---- namespaces ---------------------------------------------------------------------------------- */

static int
check_namespace(md_t *md, const char *ns, berth_error_t **err)
{
    if (!identifier_valid(ns))
        return md->api->error_make(err, BERTH_EINVAL, "identifier \"%s\" must match %s",
                                   ns ? ns : "", IDENTIFIER_PATTERN);
    return 0;
}

/* Reads a namespace record into *out (NULL when absent). */
static int
ns_read(md_t *md, MDB_txn *txn, const char *ns, ns_pb_t **out, berth_error_t **err)
{
    md_key_t k;
    md_key(&k, 'n', ns, NULL);
    MDB_val key = {k.len, k.data}, val;
    *out = NULL;
    int rc = mdb_get(txn, md->dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return md_fail(md, rc, "read namespace", err);
    *out = containerd__services__namespaces__v1__namespace__unpack(NULL, val.mv_size, val.mv_data);
    if (*out == NULL)
        return md->api->error_make(err, BERTH_EDATALOSS, "namespace %s: record does not decode",
                                   ns);
    return 0;
}

static int
ns_write(md_t *md, MDB_txn *txn, const char *ns, const berth_kv_t *labels, berth_error_t **err)
{
    md_key_t k;
    md_key(&k, 'n', ns, NULL);
    ns_pb_t rec = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
    rec.name = (char *)ns;
    rec.labels = (Containerd__Services__Namespaces__V1__Namespace__LabelsEntry **)md_entries_of(
        md, labels, &containerd__services__namespaces__v1__namespace__labels_entry__descriptor,
        &rec.n_labels);
    int rc = md_put_message(md, txn, &k, &rec.base, err);
    md_entries_free((md_map_entry_t **)rec.labels, rec.n_labels);
    return rc;
}

static int
ns_create(void *arg, const char *ns, const berth_kv_t *labels, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (check_namespace(md, ns, err) < 0 ||
        md_check_labels(md, labels, "namespace.Labels", err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    ns_pb_t *have = NULL;
    int rc = ns_read(md, txn, ns, &have, err);
    if (rc == 0 && have != NULL)
        rc = md->api->error_make(err, BERTH_EEXIST, "namespace \"%s\": already exists", ns);
    if (rc == 0)
        rc = ns_write(md, txn, ns, labels, err);
    if (have)
        containerd__services__namespaces__v1__namespace__free_unpacked(have, NULL);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

static int
ns_labels(void *arg, const char *ns, berth_kv_t *labels, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (check_namespace(md, ns, err) < 0 || md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    ns_pb_t *have = NULL;
    int rc = ns_read(md, txn, ns, &have, err);
    mdb_txn_abort(txn);
    if (have) {
        md_entries_to_kv(md, (md_map_entry_t **)have->labels, have->n_labels, labels);
        containerd__services__namespaces__v1__namespace__free_unpacked(have, NULL);
    }
    return rc;
}

/* Read-modify-write of a namespace's labels; `edit` changes the kv. */
static int
ns_update(md_t *md, const char *ns, void (*edit)(md_t *md, berth_kv_t *kv, const void *arg),
          const void *arg, berth_error_t **err)
{
    MDB_txn *txn;
    if (check_namespace(md, ns, err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    ns_pb_t *have = NULL;
    berth_kv_t *kv = md->api->kv_new();
    int rc = ns_read(md, txn, ns, &have, err);
    if (have)
        md_entries_to_kv(md, (md_map_entry_t **)have->labels, have->n_labels, kv);
    edit(md, kv, arg);
    if (rc == 0)
        rc = md_check_labels(md, kv, "namespace.Labels", err);
    if (rc == 0)
        rc = ns_write(md, txn, ns, kv, err);
    if (have)
        containerd__services__namespaces__v1__namespace__free_unpacked(have, NULL);
    md->api->kv_free(kv);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

typedef struct label_edit {
    const char *key, *value;
} label_edit_t;

static void
set_one(md_t *md, berth_kv_t *kv, const void *arg)
{
    const label_edit_t *e = arg;
    if (e->value == NULL || e->value[0] == '\0')
        md->api->kv_unset(kv, e->key);
    else
        md->api->kv_set(kv, e->key, e->value);
}

static void
set_all(md_t *md, berth_kv_t *kv, const void *arg)
{
    const berth_kv_t *labels = arg;
    while (md->api->kv_size(kv) > 0)
        md->api->kv_unset(kv, md->api->kv_key_at(kv, 0));
    for (size_t i = 0; i < md->api->kv_size(labels); i++)
        md->api->kv_set(kv, md->api->kv_key_at(labels, i), md->api->kv_value_at(labels, i));
}

static int
ns_set_label(void *arg, const char *ns, const char *key, const char *value, berth_error_t **err)
{
    label_edit_t e = {key, value};
    return ns_update(arg, ns, set_one, &e, err);
}

static int
ns_set_labels(void *arg, const char *ns, const berth_kv_t *labels, berth_error_t **err)
{
    return ns_update(arg, ns, set_all, labels, err);
}

typedef struct ns_visit {
    md_t *md;
    int (*cb)(void *user, const char *ns, const berth_kv_t *labels);
    void *user;
} ns_visit_t;

static int
visit_namespace(void *user, MDB_val *k, MDB_val *v)
{
    ns_visit_t *nv = user;
    ns_pb_t *rec =
        containerd__services__namespaces__v1__namespace__unpack(NULL, v->mv_size, v->mv_data);
    if (rec == NULL)
        return 0;
    berth_kv_t *kv = nv->md->api->kv_new();
    md_entries_to_kv(nv->md, (md_map_entry_t **)rec->labels, rec->n_labels, kv);
    int stop = nv->cb(nv->user, rec->name, kv);
    nv->md->api->kv_free(kv);
    containerd__services__namespaces__v1__namespace__free_unpacked(rec, NULL);
    return stop;
}

static int
ns_list(void *arg, int (*cb)(void *user, const char *ns, const berth_kv_t *labels), void *user,
        berth_error_t **err)
{
    ns_visit_t nv = {arg, cb, user};
    md_key_t prefix;
    md_key(&prefix, 'n', "", NULL); /* "n\0" */
    return md_scan_read(arg, &prefix, visit_namespace, &nv, err);
}

/* What still lives in a namespace and keeps it from being deleted (containerd's listNs). */
static const struct {
    char kind;
    const char *what;
} ns_holders[] = {{'i', "images"},
                  {'b', "blobs"},
                  {'c', "containers"},
                  {'s', "snapshots"},
                  {'x', "module records (volumes, ...)"}};

static int
ns_delete(void *arg, const char *ns, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (check_namespace(md, ns, err) < 0 || md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    md_key_t k;
    md_key(&k, 'n', ns, NULL);
    MDB_val key = {k.len, k.data}, val;
    int rc = mdb_get(txn, md->dbi, &key, &val);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return md->api->error_make(err, BERTH_ENOTFOUND, "namespace \"%s\": not found", ns);
    }
    char held[128] = "";
    for (size_t i = 0; i < sizeof(ns_holders) / sizeof(ns_holders[0]); i++) {
        md_key_t p;
        md_key(&p, ns_holders[i].kind, ns, "", NULL);
        if (md_any_prefix(txn, md->dbi, &p))
            snprintf(held + strlen(held), sizeof(held) - strlen(held), "%s%s", held[0] ? ", " : "",
                     ns_holders[i].what);
    }
    if (held[0]) {
        mdb_txn_abort(txn);
        return md->api->error_make(err, BERTH_EPRECONDITION,
                                   "namespace \"%s\" must be empty, but it still has %s", ns, held);
    }
    md_key_t leases, resources;
    md_key(&leases, 'l', ns, "", NULL);
    md_key(&resources, 'r', ns, "", NULL);
    if (md_delete_prefix(md, txn, &leases, err) < 0 ||
        md_delete_prefix(md, txn, &resources, err) < 0 ||
        (rc = mdb_del(txn, md->dbi, &key, NULL)) != 0) {
        mdb_txn_abort(txn);
        return rc ? md_fail(md, rc, "delete namespace", err) : MD_ERR(err);
    }
    MD_MARK_DIRTY(md);
    return md_commit(md, txn, err);
}

/* ---- leases -------------------------------------------------------------------------------------- */

static int
lease_exists(md_t *md, MDB_txn *txn, const char *ns, const char *id, berth_error_t **err)
{
    md_key_t k;
    if (md_key(&k, 'l', ns, id, NULL) < 0)
        return key_error(md, err);
    MDB_val key = {k.len, k.data}, val;
    int rc = mdb_get(txn, md->dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return md->api->error_make(err, BERTH_ENOTFOUND, "lease \"%s\": not found", id);
    return rc == 0 ? 0 : md_fail(md, rc, "read lease", err);
}

static int
lease_create(void *arg, const char *ns, const char *id, const berth_kv_t *labels,
             int64_t *created_ns, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (id == NULL || id[0] == '\0')
        return md->api->error_make(err, BERTH_EINVAL, "lease id must be provided");
    md_key_t k;
    if (md_key(&k, 'l', ns, id, NULL) < 0)
        return key_error(md, err);
    if (check_namespace(md, ns, err) < 0 || md_check_labels(md, labels, "lease labels", err) < 0 ||
        md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    ns_pb_t *have = NULL;
    int rc = ns_read(md, txn, ns, &have, err);
    if (rc == 0 &&
        have == NULL) { /* as containerd's buckets, a lease brings its namespace into being */
        berth_kv_t *none = md->api->kv_new();
        rc = ns_write(md, txn, ns, none, err);
        md->api->kv_free(none);
    }
    if (have)
        containerd__services__namespaces__v1__namespace__free_unpacked(have, NULL);
    MDB_val key = {k.len, k.data}, val;
    if (rc == 0 && mdb_get(txn, md->dbi, &key, &val) == 0)
        rc = md->api->error_make(err, BERTH_EEXIST, "lease \"%s\": already exists", id);
    int64_t t = clock_now_ns();
    if (rc == 0) {
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = t / 1000000000;
        ts.nanos = (int32_t)(t % 1000000000);
        lease_pb_t rec = CONTAINERD__SERVICES__LEASES__V1__LEASE__INIT;
        rec.id = (char *)id;
        rec.created_at = &ts;
        rec.labels = (Containerd__Services__Leases__V1__Lease__LabelsEntry **)md_entries_of(
            md, labels, &containerd__services__leases__v1__lease__labels_entry__descriptor,
            &rec.n_labels);
        rc = md_put_message(md, txn, &k, &rec.base, err);
        md_entries_free((md_map_entry_t **)rec.labels, rec.n_labels);
    }
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (created_ns)
        *created_ns = t;
    return md_commit(md, txn, err);
}

static int
lease_delete(void *arg, const char *ns, const char *id, berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    int rc = lease_exists(md, txn, ns, id, err);
    md_key_t k, res;
    md_key(&k, 'l', ns, id, NULL);
    md_key(&res, 'r', ns, id, "", NULL);
    MDB_val key = {k.len, k.data};
    if (rc == 0)
        rc = md_delete_prefix(md, txn, &res, err);
    if (rc == 0 && (rc = mdb_del(txn, md->dbi, &key, NULL)) != 0)
        rc = md_fail(md, rc, "delete lease", err);
    if (rc == 0)
        MD_MARK_DIRTY(md);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

typedef struct lease_visit {
    md_t *md;
    int (*cb)(void *user, const berth_lease_t *lease);
    void *user;
} lease_visit_t;

static int
visit_lease_record(void *user, MDB_val *k, MDB_val *v)
{
    lease_visit_t *lv = user;
    lease_pb_t *rec = containerd__services__leases__v1__lease__unpack(NULL, v->mv_size, v->mv_data);
    if (rec == NULL)
        return 0;
    berth_kv_t *kv = lv->md->api->kv_new();
    md_entries_to_kv(lv->md, (md_map_entry_t **)rec->labels, rec->n_labels, kv);
    berth_lease_t l = {.id = rec->id, .created_ns = clock_ts_ns(rec->created_at), .labels = kv};
    int stop = lv->cb(lv->user, &l);
    lv->md->api->kv_free(kv);
    containerd__services__leases__v1__lease__free_unpacked(rec, NULL);
    return stop;
}

static int
lease_list(void *arg, const char *ns, int (*cb)(void *user, const berth_lease_t *lease), void *user,
           berth_error_t **err)
{
    lease_visit_t lv = {arg, cb, user};
    md_key_t prefix;
    md_key(&prefix, 'l', ns, "", NULL);
    return md_scan_read(arg, &prefix, visit_lease_record, &lv, err);
}

static int
valid_digest(const char *d)
{
    static const struct {
        const char *alg;
        size_t hex;
    } algs[] = {{"sha256:", 64}, {"sha384:", 96}, {"sha512:", 128}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(algs[i].alg);
        if (strncmp(d, algs[i].alg, n) != 0)
            continue;
        if (strlen(d + n) != algs[i].hex)
            return 0;
        for (const char *p = d + n; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return 0;
        return 1;
    }
    return 0;
}

/* containerd's parseLeaseResource */
static int
check_resource(md_t *md, const char *type, const char *resource, berth_error_t **err)
{
    if (strcmp(type, "content") == 0) {
        if (!valid_digest(resource))
            return md->api->error_make(err, BERTH_EINVAL, "invalid content resource id %s",
                                       resource);
        return 0;
    }
    if (strcmp(type, "ingests") == 0)
        return 0;
    if (strncmp(type, "snapshots/", 10) == 0 && type[10] && !strchr(type + 10, '/'))
        return 0;
    if (strncmp(type, "snapshots", 9) == 0)
        return md->api->error_make(err, BERTH_EINVAL, "invalid snapshot resource type %s", type);
    return md->api->error_make(err, BERTH_ENOTIMPL, "resource type %s not supported yet", type);
}

int
md_lease_add_in(md_t *md, MDB_txn *txn, const char *ns, const char *id, const char *type,
                const char *resource, berth_error_t **err)
{
    md_key_t k;
    if (check_resource(md, type, resource, err) < 0)
        return MD_ERR(err);
    if (md_key(&k, 'r', ns, id, type, resource, NULL) < 0)
        return key_error(md, err);
    int rc = lease_exists(md, txn, ns, id, err);
    MDB_val key = {k.len, k.data}, val = {0, ""};
    int lr = rc == 0 ? mdb_put(txn, md->dbi, &key, &val, 0) : 0;
    return rc < 0 ? rc : lr != 0 ? md_fail(md, lr, "lease resource", err) : 0;
}

static int
resource_change(md_t *md, const char *ns, const char *id, const char *type, const char *resource,
                int add, berth_error_t **err)
{
    MDB_txn *txn;
    md_key_t k;
    if (check_resource(md, type, resource, err) < 0)
        return MD_ERR(err);
    if (md_key(&k, 'r', ns, id, type, resource, NULL) < 0)
        return key_error(md, err);
    if (md_begin(md, 1, &txn, err) < 0)
        return MD_ERR(err);
    int rc = lease_exists(md, txn, ns, id, err);
    MDB_val key = {k.len, k.data}, val = {0, ""};
    int lr = rc == 0
                 ? (add ? mdb_put(txn, md->dbi, &key, &val, 0) : mdb_del(txn, md->dbi, &key, NULL))
                 : 0;
    if (rc == 0 && !add && lr == 0)
        MD_MARK_DIRTY(md);
    if (rc == 0 && lr != 0 && lr != MDB_NOTFOUND)
        rc = md_fail(md, lr, "lease resource", err);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return md_commit(md, txn, err);
}

static int
lease_add_resource(void *arg, const char *ns, const char *id, const char *type,
                   const char *resource, berth_error_t **err)
{
    return resource_change(arg, ns, id, type, resource, 1, err);
}

static int
lease_delete_resource(void *arg, const char *ns, const char *id, const char *type,
                      const char *resource, berth_error_t **err)
{
    return resource_change(arg, ns, id, type, resource, 0, err);
}

static int
lease_list_resources(void *arg, const char *ns, const char *id,
                     int (*cb)(void *user, const char *type, const char *resource), void *user,
                     berth_error_t **err)
{
    md_t *md = arg;
    MDB_txn *txn;
    MDB_cursor *c;
    if (md_begin(md, 0, &txn, err) < 0)
        return MD_ERR(err);
    int rc = lease_exists(md, txn, ns, id, err);
    if (rc < 0 || mdb_cursor_open(txn, md->dbi, &c) != 0) {
        mdb_txn_abort(txn);
        return rc < 0 ? rc : md->api->error_make(err, BERTH_EINTERNAL, "list resources: cursor");
    }
    md_key_t prefix;
    md_key(&prefix, 'r', ns, id, "", NULL);
    MDB_val k = {prefix.len, prefix.data}, v;
    int lr = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), stop = 0;
    for (; lr == 0 && !stop && md_has_prefix(&k, &prefix);
         lr = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char buf[MD_KEY_MAX + 1];
        size_t n = k.mv_size - prefix.len;
        memcpy(buf, (char *)k.mv_data + prefix.len, n);
        buf[n] = '\0';
        stop = cb(user, buf, buf + strlen(buf) + 1); /* "<type>\0<resource>" */
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return 0;
}

/* ---- writes that grow a full map and run again ---------------------------------------------------- */

static int
g_ns_create(void *md, const char *ns, const berth_kv_t *labels, berth_error_t **err)
{
    MD_GROWING(md, err, ns_create(md, ns, labels, err));
}

static int
g_ns_set_label(void *md, const char *ns, const char *key, const char *value, berth_error_t **err)
{
    MD_GROWING(md, err, ns_set_label(md, ns, key, value, err));
}

static int
g_ns_set_labels(void *md, const char *ns, const berth_kv_t *labels, berth_error_t **err)
{
    MD_GROWING(md, err, ns_set_labels(md, ns, labels, err));
}

static int
g_ns_delete(void *md, const char *ns, berth_error_t **err)
{
    MD_GROWING(md, err, ns_delete(md, ns, err));
}

static int
g_lease_create(void *md, const char *ns, const char *id, const berth_kv_t *labels,
               int64_t *created_ns, berth_error_t **err)
{
    MD_GROWING(md, err, lease_create(md, ns, id, labels, created_ns, err));
}

static int
g_lease_delete(void *md, const char *ns, const char *id, berth_error_t **err)
{
    MD_GROWING(md, err, lease_delete(md, ns, id, err));
}

static int
g_lease_add_resource(void *md, const char *ns, const char *id, const char *type,
                     const char *resource, berth_error_t **err)
{
    MD_GROWING(md, err, lease_add_resource(md, ns, id, type, resource, err));
}

static int
g_lease_delete_resource(void *md, const char *ns, const char *id, const char *type,
                        const char *resource, berth_error_t **err)
{
    MD_GROWING(md, err, lease_delete_resource(md, ns, id, type, resource, err));
}

static int
content_put_growing(void *md, const char *ns, const char *digest, int64_t size,
                    const berth_kv_t *labels, berth_error_t **err)
{
    MD_GROWING(md, err, md_content_put(md, ns, digest, size, labels, err));
}

static int
g_content_put(void *md, const char *ns, const char *digest, int64_t size, const berth_kv_t *labels,
              berth_error_t **err)
{
    md_t *m = md;
    pthread_rwlock_rdlock(&m->sweep_lock);
    int rc = content_put_growing(md, ns, digest, size, labels, err);
    pthread_rwlock_unlock(&m->sweep_lock);
    return rc;
}

/* The collector's removal of bytes no namespace holds, one digest at a time, with no content_put in
 * between a check and its removal. */
void
md_content_sweep(void *md, char *const *digests, size_t n,
                 void (*remove)(void *user, const char *digest), void *user)
{
    md_t *m = md;
    pthread_rwlock_wrlock(&m->sweep_lock);
    for (size_t i = 0; i < n; i++)
        if (md_content_held(md, digests[i], NULL) == 0)
            remove(user, digests[i]);
    pthread_rwlock_unlock(&m->sweep_lock);
}

static int
g_content_set_labels(void *md, const char *ns, const char *digest, const berth_kv_t *labels,
                     berth_error_t **err)
{
    MD_GROWING(md, err, md_content_set_labels(md, ns, digest, labels, err));
}

static int
g_content_delete(void *md, const char *ns, const char *digest, berth_error_t **err)
{
    MD_GROWING(md, err, md_content_delete(md, ns, digest, err));
}

/* A collection reports what it removes before its commit, so it does not run again: the map grows and
 * the next collection finds the same garbage. */
static int
g_gc_collect(void *md, int64_t now_ns, const berth_gc_removed_t *removed, berth_error_t **err)
{
    md_full_reset();
    int rc = md_gc_collect(md, now_ns, removed, err);
    if (rc < 0 && md_grow_if_full(md, err))
        return ((md_t *)md)
            ->api->error_make(err, BERTH_EUNAVAILABLE,
                              "garbage collection: metadata map grown, try again");
    return rc;
}

/* images, containers and snapshots share a signature per verb */
#define G_OBJECT(name, ...)                                                     \
    static int g_##name(void *md, const char *ns, const uint8_t *d, size_t len, \
                        berth_error_t **err)                                    \
    {                                                                           \
        MD_GROWING(md, err, md_##name(md, ns, d, len, err));                    \
    }
G_OBJECT(image_create)
G_OBJECT(image_update)
G_OBJECT(container_create)
G_OBJECT(container_update)

static int
g_image_delete(void *md, const char *ns, const char *name, berth_error_t **err)
{
    MD_GROWING(md, err, md_image_delete(md, ns, name, err));
}

static int
g_container_delete(void *md, const char *ns, const char *id, berth_error_t **err)
{
    MD_GROWING(md, err, md_container_delete(md, ns, id, err));
}

static int
g_snapshot_create(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                  berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_create(md, ns, sn, d, len, err));
}

static int
g_snapshot_update(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                  berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_update(md, ns, sn, d, len, err));
}

static int
g_snapshot_commit(void *md, const char *ns, const char *sn, const char *key, const uint8_t *d,
                  size_t len, berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_commit(md, ns, sn, key, d, len, err));
}

static int
g_snapshot_delete(void *md, const char *ns, const char *sn, const char *key, berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_delete(md, ns, sn, key, err));
}

static int
g_snapshot_store(void *md, const char *ns, const char *sn, const char *replaces, const uint8_t *d,
                 size_t len, const char *lease, unsigned flags, berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_store(md, ns, sn, replaces, d, len, lease, flags, err));
}

static int
g_snapshot_remove(void *md, const char *ns, const char *sn, const char *key, unsigned flags,
                  berth_error_t **err)
{
    MD_GROWING(md, err, md_snapshot_remove(md, ns, sn, key, flags, err));
}

const berth_metadata_v1_ops_t md_ops = {
    .struct_size = sizeof(berth_metadata_v1_ops_t),
    .namespace_create = g_ns_create,
    .namespace_labels = ns_labels,
    .namespace_set_label = g_ns_set_label,
    .namespace_set_labels = g_ns_set_labels,
    .namespace_list = ns_list,
    .namespace_delete = g_ns_delete,
    .lease_create = g_lease_create,
    .lease_delete = g_lease_delete,
    .lease_list = lease_list,
    .lease_add_resource = g_lease_add_resource,
    .lease_delete_resource = g_lease_delete_resource,
    .lease_list_resources = lease_list_resources,
    .content_put = g_content_put,
    .content_get = md_content_get,
    .content_set_labels = g_content_set_labels,
    .content_delete = g_content_delete,
    .content_list = md_content_list,
    .content_held = md_content_held,
    .gc_collect = g_gc_collect,
    .gc_dirty = md_gc_dirty,
    .lease_holds = md_lease_holds,
    .image_create = g_image_create,
    .image_update = g_image_update,
    .image_get = md_image_get,
    .image_list = md_image_list,
    .image_delete = g_image_delete,
    .container_create = g_container_create,
    .container_update = g_container_update,
    .container_get = md_container_get,
    .container_list = md_container_list,
    .container_delete = g_container_delete,
    .snapshot_create = g_snapshot_create,
    .snapshot_update = g_snapshot_update,
    .snapshot_get = md_snapshot_get,
    .snapshot_list = md_snapshot_list,
    .snapshot_delete = g_snapshot_delete,
    .snapshot_commit = g_snapshot_commit,
    .content_list_all = md_content_list_all,
    .snapshot_store = g_snapshot_store,
    .snapshot_remove = g_snapshot_remove,
    .sync = md_sync,
    .record_put = md_record_put,
    .record_get = md_record_get,
    .record_list = md_record_list,
    .record_delete = md_record_delete,
};
