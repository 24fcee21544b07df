/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thin wrappers over containerd's Snapshots, Content and Leases services, and berth_mount_all (what `ctr
 * snapshots mount` prints, done with mount(2)).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "services/content/v1/content.pb-c.h"
#include "services/leases/v1/leases.pb-c.h"
#include "services/snapshots/v1/snapshots.pb-c.h"
#include "types/mount.pb-c.h"

#define SNAPSHOTS "/containerd.services.snapshots.v1.Snapshots/"
#define CONTENT "/containerd.services.content.v1.Content/"
#define LEASES "/containerd.services.leases.v1.Leases/"

typedef Containerd__Services__Snapshots__V1__Info snap_info_pb_t;

/* ---- a server stream: one request, each response to `each` ----------------------------------------- */

typedef int (*each_fn)(void *user, const ProtobufCMessage *m, berth_error_t **err);

static int
server_stream(berth_client_t *c, const berth_call_t *call, const char *method,
              const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc, each_fn each,
              void *user, berth_error_t **err)
{
    bc_stream_t *s = NULL;
    berth_call_t lc = bc_long_call(call);
    int rc = bc_stream_open(c, &lc, method, &s, err);
    if (rc < 0)
        return rc;
    if ((rc = bc_stream_send(s, req, err)) == 0)
        rc = bc_stream_close_send(s, err);
    while (rc == 0) {
        ProtobufCMessage *m = NULL;
        int got = bc_stream_recv(s, desc, &m, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        rc = each(user, m, err);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    bc_stream_free(s);
    return rc;
}

/* ---- mounts ------------------------------------------------------------------------------------------ */

static void
mount_clear(berth_mount_t *m)
{
    free(m->type);
    free(m->source);
    free(m->target);
    bc_strv_free(m->options, m->n_options);
}

BC_EXPORT void
berth_mounts_free(berth_mount_t *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        mount_clear(&m[i]);
    free(m);
}

static int
mounts_from_pb(Containerd__Types__Mount **pb, size_t n, berth_mount_t **out, size_t *n_out,
               berth_error_t **err)
{
    if (out)
        *out = NULL;
    if (n_out)
        *n_out = 0;
    if (out == NULL || n == 0)
        return 0;
    berth_mount_t *v = calloc(n, sizeof(*v));
    if (v == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        v[i].type = bc_strdup(pb[i]->type);
        v[i].source = bc_strdup(pb[i]->source);
        v[i].target = bc_strdup(pb[i]->target);
        v[i].n_options = pb[i]->n_options;
        if (!v[i].type || !v[i].source || !v[i].target ||
            bc_strv_dup(pb[i]->options, pb[i]->n_options, &v[i].options) < 0) {
            v[i].n_options = 0;
            berth_mounts_free(v, i + 1);
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        }
    }
    *out = v;
    if (n_out)
        *n_out = n;
    return 0;
}

/* mount(2) flags of containerd's mount options (mount_linux.go parseMountOptions) */
static const struct {
    const char *name;
    int clear;
    unsigned long flag;
} mount_flags[] = {
    {"async", 1, MS_SYNCHRONOUS},
    {"atime", 1, MS_NOATIME},
    {"bind", 0, MS_BIND},
    {"defaults", 0, 0},
    {"dev", 1, MS_NODEV},
    {"diratime", 1, MS_NODIRATIME},
    {"dirsync", 0, MS_DIRSYNC},
    {"exec", 1, MS_NOEXEC},
    {"mand", 0, MS_MANDLOCK},
    {"noatime", 0, MS_NOATIME},
    {"nodev", 0, MS_NODEV},
    {"nodiratime", 0, MS_NODIRATIME},
    {"noexec", 0, MS_NOEXEC},
    {"nomand", 1, MS_MANDLOCK},
    {"norelatime", 1, MS_RELATIME},
    {"nostrictatime", 1, MS_STRICTATIME},
    {"nosuid", 0, MS_NOSUID},
    {"rbind", 0, MS_BIND | MS_REC},
    {"relatime", 0, MS_RELATIME},
    {"remount", 0, MS_REMOUNT},
    {"ro", 0, MS_RDONLY},
    {"rw", 1, MS_RDONLY},
    {"strictatime", 0, MS_STRICTATIME},
    {"suid", 1, MS_NOSUID},
    {"sync", 0, MS_SYNCHRONOUS},
};

/* flags, and the other options joined with commas into data */
static int
parse_options(const berth_mount_t *m, unsigned long *flags, char *data, size_t size)
{
    size_t len = 0;
    *flags = 0;
    data[0] = '\0';
    for (size_t i = 0; i < m->n_options; i++) {
        const char *o = m->options[i];
        size_t k = 0, nf = sizeof(mount_flags) / sizeof(*mount_flags);
        while (k < nf && strcmp(mount_flags[k].name, o) != 0)
            k++;
        if (k < nf) {
            if (mount_flags[k].clear)
                *flags &= ~mount_flags[k].flag;
            else
                *flags |= mount_flags[k].flag;
            continue;
        }
        int n = snprintf(data + len, size - len, "%s%s", len ? "," : "", o);
        if (n < 0 || (size_t)n >= size - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

static int
mount_one(const berth_mount_t *m, const char *target, berth_error_t **err)
{
    char data[4096];
    unsigned long flags;
    if (parse_options(m, &flags, data, sizeof(data)) < 0)
        return bc_error(err, BERTH_EINVAL, "mount %s at %s: options longer than a page", m->type,
                        target);
    int bind = (flags & MS_BIND) || strcmp(m->type, "bind") == 0 || strcmp(m->type, "rbind") == 0;
    if (strcmp(m->type, "rbind") == 0)
        flags |= MS_REC;
    if (bind)
        flags |= MS_BIND;
    /* a bind takes its other flags only from a remount (mount(2)) */
    unsigned long first = bind ? flags & (MS_BIND | MS_REC) : flags;
    if (mount(m->source, target, bind ? NULL : m->type, first, bind ? NULL : data) < 0)
        return bc_error(err, BERTH_EIO, "mount %s %s at %s: %s", m->type, m->source, target,
                        strerror(errno));
    if (bind && (flags & ~(MS_BIND | MS_REC)) &&
        mount(NULL, target, NULL, (flags & ~MS_REC) | MS_REMOUNT, NULL) < 0) {
        int e = errno;
        umount2(target, MNT_DETACH);
        return bc_error(err, BERTH_EIO, "remount %s at %s: %s", m->source, target, strerror(e));
    }
    return 0;
}

BC_EXPORT int
berth_mount_all(const berth_mount_t *mounts, size_t n, const char *target, berth_error_t **err)
{
    if (target == NULL || !target[0])
        return bc_error(err, BERTH_EINVAL, "mount: a target is required");
    for (size_t i = 0; i < n; i++) {
        int rc = mount_one(&mounts[i], target, err);
        if (rc < 0) {
            while (i-- > 0) /* containerd's mount.All leaves nothing half done either */
                umount2(target, MNT_DETACH);
            return rc;
        }
    }
    return 0;
}

/* ---- snapshots --------------------------------------------------------------------------------------- */

static const char *
snapshotter_or_default(const char *s)
{
    return s && s[0] ? s : BERTH_CLIENT_DEFAULT_SNAPSHOTTER;
}

static void
snap_info_clear(berth_snapshot_info_t *s)
{
    free(s->name);
    free(s->parent);
    free(s->kind);
    berth_kv_free(s->labels, s->n_labels);
}

BC_EXPORT void
berth_snapshot_infos_free(berth_snapshot_info_t *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        snap_info_clear(&s[i]);
    free(s);
}

static const char *
kind_name(int k)
{
    switch (k) {
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__VIEW:
        return "view";
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE:
        return "active";
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED:
        return "committed";
    default:
        return "unknown";
    }
}

static int
snap_info_from_pb(const snap_info_pb_t *pb, berth_snapshot_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = bc_strdup(pb->name);
    out->parent = bc_strdup(pb->parent);
    out->kind = bc_strdup(kind_name(pb->kind));
    out->created_at_ns = bc_ts_ns(pb->created_at);
    out->updated_at_ns = bc_ts_ns(pb->updated_at);
    if (!out->name || !out->parent || !out->kind ||
        bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels) < 0) {
        snap_info_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

BC_EXPORT int
berth_snapshot_prepare(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                       const char *key, const char *parent, const berth_kv_t *labels,
                       size_t n_labels, berth_mount_t **mounts, size_t *n_mounts,
                       berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry *ents, **ptrs;
    if (key == NULL || !key[0])
        return bc_error(err, BERTH_EINVAL, "prepare snapshot: a key is required");
    if (BC_MAP_FROM_KV(
            Containerd__Services__Snapshots__V1__PrepareSnapshotRequest__LabelsEntry,
            CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__LABELS_ENTRY__INIT,
            labels, n_labels, ents, ptrs) < 0) {
        free(ents);
        free(ptrs);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    req.parent = (char *)(parent ? parent : "");
    req.labels = ptrs;
    req.n_labels = n_labels;
    Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *resp = NULL;
    int rc = bc_unary(c, call, SNAPSHOTS "Prepare", &req.base,
                      &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    free(ents);
    free(ptrs);
    if (rc == 0)
        rc = mounts_from_pb(resp->mounts, resp->n_mounts, mounts, n_mounts, err);
    if (resp)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_snapshot_view(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                    const char *key, const char *parent, berth_mount_t **mounts, size_t *n_mounts,
                    berth_error_t **err)
{
    if (key == NULL || !key[0])
        return bc_error(err, BERTH_EINVAL, "view snapshot: a key is required");
    Containerd__Services__Snapshots__V1__ViewSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__VIEW_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    req.parent = (char *)(parent ? parent : "");
    Containerd__Services__Snapshots__V1__ViewSnapshotResponse *resp = NULL;
    int rc = bc_unary(c, call, SNAPSHOTS "View", &req.base,
                      &containerd__services__snapshots__v1__view_snapshot_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc == 0)
        rc = mounts_from_pb(resp->mounts, resp->n_mounts, mounts, n_mounts, err);
    if (resp)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_snapshot_mounts(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                      const char *key, berth_mount_t **mounts, size_t *n_mounts,
                      berth_error_t **err)
{
    if (key == NULL || !key[0])
        return bc_error(err, BERTH_EINVAL, "snapshot mounts: a key is required");
    Containerd__Services__Snapshots__V1__MountsRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    Containerd__Services__Snapshots__V1__MountsResponse *resp = NULL;
    int rc = bc_unary(c, call, SNAPSHOTS "Mounts", &req.base,
                      &containerd__services__snapshots__v1__mounts_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc == 0)
        rc = mounts_from_pb(resp->mounts, resp->n_mounts, mounts, n_mounts, err);
    if (resp)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_snapshot_commit(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                      const char *name, const char *key, berth_error_t **err)
{
    if (name == NULL || key == NULL || !name[0] || !key[0])
        return bc_error(err, BERTH_EINVAL, "commit snapshot: a name and a key are required");
    Containerd__Services__Snapshots__V1__CommitSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.name = (char *)name;
    req.key = (char *)key;
    return bc_unary(c, call, SNAPSHOTS "Commit", &req.base, NULL, NULL, err);
}

BC_EXPORT int
berth_snapshot_remove(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                      const char *key, berth_error_t **err)
{
    if (key == NULL || !key[0])
        return bc_error(err, BERTH_EINVAL, "remove snapshot: a key is required");
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    return bc_unary(c, call, SNAPSHOTS "Remove", &req.base, NULL, NULL, err);
}

BC_EXPORT int
berth_snapshot_stat(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                    const char *key, berth_snapshot_info_t **out, berth_error_t **err)
{
    if (key == NULL || !key[0] || out == NULL)
        return bc_error(err, BERTH_EINVAL, "stat snapshot: a key and an out pointer are required");
    *out = NULL;
    Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    Containerd__Services__Snapshots__V1__StatSnapshotResponse *resp = NULL;
    int rc = bc_unary(c, call, SNAPSHOTS "Stat", &req.base,
                      &containerd__services__snapshots__v1__stat_snapshot_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_snapshot_info_t *s = calloc(1, sizeof(*s));
    if (resp->info == NULL)
        rc = bc_error(err, BERTH_ENOTFOUND, "snapshot \"%s\": not found", key);
    else if (s == NULL || snap_info_from_pb(resp->info, s) < 0)
        rc = bc_error(err, BERTH_ENOMEM, "out of memory");
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Makes room for one more of n elements of elem bytes in *v (capacity *cap, doubled as needed). */
static int
grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, c * elem);
    if (p == NULL)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

typedef struct snap_list_s {
    berth_snapshot_info_t *v;
    size_t n, cap;
} snap_list_t;

static int
snap_list_each(void *user, const ProtobufCMessage *m, berth_error_t **err)
{
    snap_list_t *l = user;
    const Containerd__Services__Snapshots__V1__ListSnapshotsResponse *r = (const void *)m;
    for (size_t i = 0; i < r->n_info; i++) {
        if (grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v)) < 0)
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        if (snap_info_from_pb(r->info[i], &l->v[l->n]) < 0)
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        l->n++;
    }
    return 0;
}

BC_EXPORT int
berth_snapshot_list(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                    berth_snapshot_info_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "list snapshots: out pointers are required");
    *out = NULL;
    *n = 0;
    Containerd__Services__Snapshots__V1__ListSnapshotsRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    snap_list_t l = {0};
    int rc =
        server_stream(c, call, SNAPSHOTS "List", &req.base,
                      &containerd__services__snapshots__v1__list_snapshots_response__descriptor,
                      snap_list_each, &l, err);
    if (rc < 0) {
        berth_snapshot_infos_free(l.v, l.n);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

BC_EXPORT int
berth_snapshot_usage(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                     const char *key, int64_t *size, int64_t *inodes, berth_error_t **err)
{
    if (key == NULL || !key[0])
        return bc_error(err, BERTH_EINVAL, "snapshot usage: a key is required");
    Containerd__Services__Snapshots__V1__UsageRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_REQUEST__INIT;
    req.snapshotter = (char *)snapshotter_or_default(snapshotter);
    req.key = (char *)key;
    Containerd__Services__Snapshots__V1__UsageResponse *resp = NULL;
    int rc = bc_unary(c, call, SNAPSHOTS "Usage", &req.base,
                      &containerd__services__snapshots__v1__usage_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    if (size)
        *size = resp->size;
    if (inodes)
        *inodes = resp->inodes;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

/* ---- content ----------------------------------------------------------------------------------------- */

static void
content_info_clear(berth_content_info_t *i)
{
    free(i->digest);
    berth_kv_free(i->labels, i->n_labels);
}

BC_EXPORT void
berth_content_infos_free(berth_content_info_t *i, size_t n)
{
    for (size_t k = 0; i && k < n; k++)
        content_info_clear(&i[k]);
    free(i);
}

static int
content_info_from_pb(const Containerd__Services__Content__V1__Info *pb, berth_content_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->digest = bc_strdup(pb->digest);
    out->size = pb->size;
    out->created_at_ns = bc_ts_ns(pb->created_at);
    out->updated_at_ns = bc_ts_ns(pb->updated_at);
    if (out->digest == NULL ||
        bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels) < 0) {
        content_info_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

BC_EXPORT int
berth_content_info(berth_client_t *c, const berth_call_t *call, const char *digest,
                   berth_content_info_t **out, berth_error_t **err)
{
    if (digest == NULL || !digest[0] || out == NULL)
        return bc_error(err, BERTH_EINVAL,
                        "content info: a digest and an out pointer are required");
    *out = NULL;
    Containerd__Services__Content__V1__InfoRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
    req.digest = (char *)digest;
    Containerd__Services__Content__V1__InfoResponse *resp = NULL;
    int rc = bc_unary(c, call, CONTENT "Info", &req.base,
                      &containerd__services__content__v1__info_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_content_info_t *i = calloc(1, sizeof(*i));
    if (resp->info == NULL)
        rc = bc_error(err, BERTH_ENOTFOUND, "content %s: not found", digest);
    else if (i == NULL || content_info_from_pb(resp->info, i) < 0)
        rc = bc_error(err, BERTH_ENOMEM, "out of memory");
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        free(i);
        return rc;
    }
    *out = i;
    return 0;
}

typedef struct content_list_s {
    berth_content_info_t *v;
    size_t n, cap;
} content_list_t;

static int
content_list_each(void *user, const ProtobufCMessage *m, berth_error_t **err)
{
    content_list_t *l = user;
    const Containerd__Services__Content__V1__ListContentResponse *r = (const void *)m;
    for (size_t i = 0; i < r->n_info; i++) {
        if (grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v)) < 0)
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        if (content_info_from_pb(r->info[i], &l->v[l->n]) < 0)
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        l->n++;
    }
    return 0;
}

BC_EXPORT int
berth_content_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                   size_t n_filters, berth_content_info_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "list content: out pointers are required");
    *out = NULL;
    *n = 0;
    Containerd__Services__Content__V1__ListContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__LIST_CONTENT_REQUEST__INIT;
    req.filters = (char **)filters;
    req.n_filters = n_filters;
    content_list_t l = {0};
    int rc = server_stream(c, call, CONTENT "List", &req.base,
                           &containerd__services__content__v1__list_content_response__descriptor,
                           content_list_each, &l, err);
    if (rc < 0) {
        berth_content_infos_free(l.v, l.n);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

typedef struct content_read_s {
    int fd;
    char *data;
    size_t len, cap;
    const char *digest;
} content_read_t;

static int
content_read_each(void *user, const ProtobufCMessage *m, berth_error_t **err)
{
    content_read_t *r = user;
    const Containerd__Services__Content__V1__ReadContentResponse *resp = (const void *)m;
    const uint8_t *p = resp->data.data;
    size_t len = resp->data.len;
    if (r->fd >= 0) {
        while (len > 0) {
            ssize_t n = write(r->fd, p, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return bc_error(err, BERTH_EIO, "content %s: write: %s", r->digest,
                                strerror(errno));
            p += n;
            len -= (size_t)n;
        }
        return 0;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 64 * 1024;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *d = realloc(r->data, cap);
        if (d == NULL)
            return bc_error(err, BERTH_ENOMEM, "content %s: out of memory", r->digest);
        r->data = d;
        r->cap = cap;
    }
    memcpy(r->data + r->len, p, len);
    r->len += len;
    r->data[r->len] = '\0';
    return 0;
}

BC_EXPORT int
berth_content_read(berth_client_t *c, const berth_call_t *call, const char *digest, int fd,
                   char **data, size_t *len, berth_error_t **err)
{
    if (digest == NULL || !digest[0] || (fd < 0 && (data == NULL || len == NULL)))
        return bc_error(err, BERTH_EINVAL,
                        "read content: a digest and an fd or a buffer are required");
    if (fd < 0) {
        *data = NULL;
        *len = 0;
    }
    Containerd__Services__Content__V1__ReadContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
    req.digest = (char *)digest;
    content_read_t r = {.fd = fd, .digest = digest};
    int rc = server_stream(c, call, CONTENT "Read", &req.base,
                           &containerd__services__content__v1__read_content_response__descriptor,
                           content_read_each, &r, err);
    if (rc < 0) {
        free(r.data);
        return rc;
    }
    if (fd < 0) {
        if (r.data == NULL && (r.data = calloc(1, 1)) == NULL)
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        *data = r.data;
        *len = r.len;
    }
    return 0;
}

BC_EXPORT int
berth_content_delete(berth_client_t *c, const berth_call_t *call, const char *digest,
                     berth_error_t **err)
{
    if (digest == NULL || !digest[0])
        return bc_error(err, BERTH_EINVAL, "delete content: a digest is required");
    Containerd__Services__Content__V1__DeleteContentRequest req =
        CONTAINERD__SERVICES__CONTENT__V1__DELETE_CONTENT_REQUEST__INIT;
    req.digest = (char *)digest;
    return bc_unary(c, call, CONTENT "Delete", &req.base, NULL, NULL, err);
}

/* ---- leases ------------------------------------------------------------------------------------------ */

static void
lease_clear(berth_lease_t *l)
{
    free(l->id);
    berth_kv_free(l->labels, l->n_labels);
}

BC_EXPORT void
berth_leases_free(berth_lease_t *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        lease_clear(&l[i]);
    free(l);
}

static int
lease_from_pb(const Containerd__Services__Leases__V1__Lease *pb, berth_lease_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = bc_strdup(pb->id);
    out->created_at_ns = bc_ts_ns(pb->created_at);
    if (out->id == NULL ||
        bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels) < 0) {
        lease_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

BC_EXPORT int
berth_lease_create(berth_client_t *c, const berth_call_t *call, const char *id, int expire_s,
                   berth_lease_t **out, berth_error_t **err)
{
    char rid[40], expire[40];
    if (out)
        *out = NULL;
    if (id == NULL || !id[0]) { /* containerd's leases.WithRandomID: a time and random bytes */
        uint8_t r[4] = {0};
        if (getrandom(r, sizeof(r), 0) < 0)
            memset(r, 0, sizeof(r));
        snprintf(rid, sizeof(rid), "%lld-%02x%02x%02x%02x", (long long)time(NULL), r[0], r[1], r[2],
                 r[3]);
        id = rid;
    }
    Containerd__Services__Leases__V1__CreateRequest req =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
    Containerd__Services__Leases__V1__CreateRequest__LabelsEntry
        ent = CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT,
        *ents[1] = {&ent};
    req.id = (char *)id;
    if (expire_s > 0) { /* leases.WithExpiration: an RFC 3339 time in the gc.expire label */
        time_t t = time(NULL) + expire_s;
        struct tm tm;
        strftime(expire, sizeof(expire), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        ent.key = "containerd.io/gc.expire";
        ent.value = expire;
        req.labels = ents;
        req.n_labels = 1;
    }
    Containerd__Services__Leases__V1__CreateResponse *resp = NULL;
    int rc = bc_unary(c, call, LEASES "Create", &req.base,
                      &containerd__services__leases__v1__create_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    if (out) {
        berth_lease_t *l = calloc(1, sizeof(*l));
        Containerd__Services__Leases__V1__Lease none =
            CONTAINERD__SERVICES__LEASES__V1__LEASE__INIT;
        none.id = (char *)id;
        if (l == NULL || lease_from_pb(resp->lease ? resp->lease : &none, l) < 0) {
            free(l);
            rc = bc_error(err, BERTH_ENOMEM, "out of memory");
        } else {
            *out = l;
        }
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_lease_list(berth_client_t *c, const berth_call_t *call, berth_lease_t **out, size_t *n,
                 berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "list leases: out pointers are required");
    *out = NULL;
    *n = 0;
    Containerd__Services__Leases__V1__ListRequest req =
        CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
    Containerd__Services__Leases__V1__ListResponse *resp = NULL;
    int rc = bc_unary(c, call, LEASES "List", &req.base,
                      &containerd__services__leases__v1__list_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_lease_t *v = resp->n_leases ? calloc(resp->n_leases, sizeof(*v)) : NULL;
    size_t k = 0;
    if (resp->n_leases && v == NULL)
        rc = BERTH_ENOMEM;
    for (; rc == 0 && k < resp->n_leases; k++)
        rc = lease_from_pb(resp->leases[k], &v[k]);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        berth_leases_free(v, k);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}

BC_EXPORT int
berth_lease_delete(berth_client_t *c, const berth_call_t *call, const char *id, int sync,
                   berth_error_t **err)
{
    if (id == NULL || !id[0])
        return bc_error(err, BERTH_EINVAL, "delete lease: an id is required");
    Containerd__Services__Leases__V1__DeleteRequest req =
        CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
    req.id = (char *)id;
    req.sync = sync != 0;
    return bc_unary(c, call, LEASES "Delete", &req.base, NULL, NULL, err);
}

BC_EXPORT int
berth_lease_add_resource(berth_client_t *c, const berth_call_t *call, const char *lease,
                         const char *id, const char *type, berth_error_t **err)
{
    if (lease == NULL || id == NULL || type == NULL || !lease[0] || !id[0] || !type[0])
        return bc_error(err, BERTH_EINVAL,
                        "lease resource: a lease, an id and a type are required");
    Containerd__Services__Leases__V1__Resource r = CONTAINERD__SERVICES__LEASES__V1__RESOURCE__INIT;
    r.id = (char *)id;
    r.type = (char *)type;
    Containerd__Services__Leases__V1__AddResourceRequest req =
        CONTAINERD__SERVICES__LEASES__V1__ADD_RESOURCE_REQUEST__INIT;
    req.id = (char *)lease;
    req.resource = &r;
    return bc_unary(c, call, LEASES "AddResource", &req.base, NULL, NULL, err);
}
