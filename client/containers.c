/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers as containerd's client makes them (NewContainer with WithNewSnapshot / WithNewSnapshotView /
 * WithSnapshot / WithRemappedSnapshot, WithNewSpec, labels, runtime): the snapshot first, the record last,
 * the snapshot removed again when the record fails. Also the public spec functions (they may need a
 * mounted view of the rootfs for user names) and the snapshot helpers they share.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "image_internal.h"
#include "internal.h"
#include "services/containers/v1/containers.pb-c.h"
#include "services/leases/v1/leases.pb-c.h"
#include "services/snapshots/v1/snapshots.pb-c.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define SNAP(m) "/containerd.services.snapshots.v1.Snapshots/" m
#define CTRS(m) "/containerd.services.containers.v1.Containers/" m

__thread const char *bc_thread_lease;

/* ---- a lease around a multi-call operation (containerd's client.WithLease): the garbage collector keeps
 * what the calls make (an active snapshot before the container record names it) until it ends ---- */

typedef struct {
    char id[96];
    const char *prev;
} op_lease_t;

static int
lease_begin(berth_client_t *c, const berth_call_t *call, op_lease_t *l, berth_error_t **err)
{
    static unsigned long seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(l->id, sizeof l->id, "berth-client-%d-%ld%09ld-%lu", getpid(), (long)ts.tv_sec,
             ts.tv_nsec, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    /* an hour, as a bound on what a crash leaves (containerd's default is a day) */
    char expire[64];
    time_t t = ts.tv_sec + 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(expire, sizeof expire, "%Y-%m-%dT%H:%M:%SZ", &tm);
    Containerd__Services__Leases__V1__CreateRequest__LabelsEntry e =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT;
    e.key = "containerd.io/gc.expire", e.value = expire;
    Containerd__Services__Leases__V1__CreateRequest__LabelsEntry *ep = &e;
    Containerd__Services__Leases__V1__CreateRequest req =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
    req.id = l->id, req.labels = &ep, req.n_labels = 1;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, "/containerd.services.leases.v1.Leases/Create", &req.base,
                      &containerd__services__leases__v1__create_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "create lease");
    protobuf_c_message_free_unpacked(resp, NULL);
    l->prev = bc_thread_lease;
    bc_thread_lease = l->id;
    return 0;
}

static void
lease_end(berth_client_t *c, const berth_call_t *call, op_lease_t *l)
{
    bc_thread_lease = l->prev;
    Containerd__Services__Leases__V1__DeleteRequest req =
        CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
    req.id = l->id;
    (void)bc_unary(c, call, "/containerd.services.leases.v1.Leases/Delete", &req.base, NULL, NULL,
                   NULL);
}

/* ---- snapshots (the transport directly: the public berth_snapshot_* live elsewhere) ---- */

typedef struct {
    Containerd__Types__Mount **m;
    size_t n;
    ProtobufCMessage *owner;
} mounts_t;

static void
mounts_clear(mounts_t *m)
{
    if (m->owner)
        protobuf_c_message_free_unpacked(m->owner, NULL);
    memset(m, 0, sizeof *m);
}

/* Prepare (view 0) or View (view 1) key on parent; mounts (may be NULL) get the result */
static int
snap_make(berth_client_t *c, const berth_call_t *call, const char *sn, const char *key,
          const char *parent, int view, mounts_t *mounts, berth_error_t **err)
{
    ProtobufCMessage *resp = NULL;
    int rc;
    if (view) {
        Containerd__Services__Snapshots__V1__ViewSnapshotRequest r =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__VIEW_SNAPSHOT_REQUEST__INIT;
        r.snapshotter = (char *)sn, r.key = (char *)key, r.parent = (char *)parent;
        rc = bc_unary(c, call, SNAP("View"), &r.base,
                      &containerd__services__snapshots__v1__view_snapshot_response__descriptor,
                      &resp, err);
    } else {
        Containerd__Services__Snapshots__V1__PrepareSnapshotRequest r =
            CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
        r.snapshotter = (char *)sn, r.key = (char *)key, r.parent = (char *)parent;
        rc = bc_unary(c, call, SNAP("Prepare"), &r.base,
                      &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                      &resp, err);
    }
    if (rc < 0)
        return bc_error_wrap(err, rc, "%s snapshot \"%s\" on \"%s\"", view ? "view" : "prepare",
                             key, parent);
    /* Prepare's and View's responses have the same shape */
    Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)resp;
    if (mounts) {
        mounts->m = pr->mounts, mounts->n = pr->n_mounts, mounts->owner = resp;
    } else {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return 0;
}

static int
snap_mounts(berth_client_t *c, const berth_call_t *call, const char *sn, const char *key,
            mounts_t *mounts, berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__MountsRequest r =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
    r.snapshotter = (char *)sn, r.key = (char *)key;
    ProtobufCMessage *resp = NULL;
    int rc =
        bc_unary(c, call, SNAP("Mounts"), &r.base,
                 &containerd__services__snapshots__v1__mounts_response__descriptor, &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "mounts of snapshot \"%s\"", key);
    Containerd__Services__Snapshots__V1__MountsResponse *mr = (void *)resp;
    mounts->m = mr->mounts, mounts->n = mr->n_mounts, mounts->owner = resp;
    return 0;
}

static int
snap_remove(berth_client_t *c, const berth_call_t *call, const char *sn, const char *key,
            berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest r =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
    r.snapshotter = (char *)sn, r.key = (char *)key;
    int rc = bc_unary(c, call, SNAP("Remove"), &r.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "remove snapshot \"%s\"", key) : 0;
}

static int
snap_commit(berth_client_t *c, const berth_call_t *call, const char *sn, const char *name,
            const char *key, berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__CommitSnapshotRequest r =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
    r.snapshotter = (char *)sn, r.name = (char *)name, r.key = (char *)key;
    int rc = bc_unary(c, call, SNAP("Commit"), &r.base, NULL, NULL, err);
    return rc < 0 ? bc_error_wrap(err, rc, "commit snapshot \"%s\" as \"%s\"", key, name) : 0;
}

static int
snap_exists(berth_client_t *c, const berth_call_t *call, const char *sn, const char *key,
            berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__StatSnapshotRequest r =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
    r.snapshotter = (char *)sn, r.key = (char *)key;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, SNAP("Stat"), &r.base,
                      &containerd__services__snapshots__v1__stat_snapshot_response__descriptor,
                      &resp, err);
    if (rc == BERTH_ENOTFOUND) {
        if (err && *err) {
            berth_error_free(*err);
            *err = NULL;
        }
        return 0;
    }
    if (rc < 0)
        return rc;
    protobuf_c_message_free_unpacked(resp, NULL);
    return 1;
}

/* ---- mounting a snapshot here (mount(2), as containerd's mount.All) ---- */

static unsigned long
mount_flag(const char *o, int *clear)
{
    static const struct {
        const char *name;
        unsigned long flag;
        int clear;
    } t[] = {
        {"ro", MS_RDONLY, 0},           {"rw", MS_RDONLY, 1},       {"bind", MS_BIND, 0},
        {"rbind", MS_BIND | MS_REC, 0}, {"nosuid", MS_NOSUID, 0},   {"nodev", MS_NODEV, 0},
        {"noexec", MS_NOEXEC, 0},       {"suid", MS_NOSUID, 1},     {"dev", MS_NODEV, 1},
        {"exec", MS_NOEXEC, 1},         {"noatime", MS_NOATIME, 0}, {"relatime", MS_RELATIME, 0}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(o, t[i].name)) {
            *clear = t[i].clear;
            return t[i].flag;
        }
    return 0;
}

static int
mount_one(const Containerd__Types__Mount *m, const char *target, int readonly, berth_error_t **err)
{
    unsigned long flags = readonly ? MS_RDONLY : 0;
    char data[8192] = "", lower[8192] = "", upper[PATH_MAX] = "";
    int is_overlay = !strcmp(m->type, "overlay");
    for (size_t i = 0; i < m->n_options; i++) {
        const char *o = m->options[i];
        int clear = 0;
        unsigned long f = mount_flag(o, &clear);
        if (f) {
            flags = clear ? flags & ~f : flags | f;
            continue;
        }
        if (is_overlay && readonly && !strncmp(o, "upperdir=", 9)) {
            snprintf(upper, sizeof upper, "%s", o + 9);
            continue;
        }
        if (is_overlay && readonly && !strncmp(o, "workdir=", 8))
            continue;
        if (is_overlay && readonly && !strncmp(o, "lowerdir=", 9)) {
            snprintf(lower, sizeof lower, "%s", o + 9);
            continue;
        }
        size_t l = strlen(data);
        snprintf(data + l, sizeof data - l, "%s%s", l ? "," : "", o);
    }
    if (readonly)
        flags |= MS_RDONLY;
    if (is_overlay && readonly) {
        /* containerd's readonlyOverlay: the upper dir becomes the top lower dir, no work dir */
        size_t l = strlen(data);
        snprintf(data + l, sizeof data - l, "%slowerdir=%s%s%s", l ? "," : "", upper,
                 *upper && *lower ? ":" : "", lower);
    }
    const char *type = m->type;
    if (flags & MS_BIND)
        type = NULL;
    /* a bind mount takes read-only only by a remount */
    unsigned long first = (flags & MS_BIND) ? flags & ~(unsigned long)MS_RDONLY : flags;
    if (mount(m->source, target, type, first, (flags & MS_BIND) ? NULL : data) < 0)
        return bc_error(err, BERTH_EIO, "mount %s (%s, %s) at %s: %s", m->source, m->type,
                        (flags & MS_BIND) ? "bind" : data, target, strerror(errno));
    if ((flags & MS_BIND) && (flags & MS_RDONLY) &&
        mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        int e = errno;
        umount2(target, MNT_DETACH);
        return bc_error(err, BERTH_EIO, "remount %s read-only: %s", target, strerror(e));
    }
    return 0;
}

static int
with_mounts(const mounts_t *mounts, int readonly, bc_rootfs_fn fn, void *arg, berth_error_t **err)
{
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/berth-rootfs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return bc_error(err, BERTH_EIO, "mkdtemp %s: %s", dir, strerror(errno));
    int rc = 0;
    size_t done = 0;
    for (; done < mounts->n && rc == 0; done++)
        rc = mount_one(mounts->m[done], dir, readonly, err);
    if (rc == 0)
        rc = fn(arg, dir, err);
    else
        done--;
    while (done-- > 0)
        umount2(dir, MNT_DETACH);
    rmdir(dir);
    return rc;
}

int
bc_with_snapshot_rootfs(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                        const char *key, bc_rootfs_fn fn, void *arg, berth_error_t **err)
{
    mounts_t m = {0};
    int rc = snap_mounts(c, call, snapshotter, key, &m, err);
    if (rc == 0)
        rc = with_mounts(&m, 1, fn, arg, err);
    mounts_clear(&m);
    return rc;
}

/* ---- remapped snapshots (containerd's WithRemappedSnapshot / remapRootFS) ---- */

static uint32_t remap_uid, remap_gid; /* nftw has no user argument; guarded by remap_mu */
static pthread_mutex_t remap_mu = PTHREAD_MUTEX_INITIALIZER;

static int
shift_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)flag, (void)f;
    return lchown(path, st->st_uid + remap_uid, st->st_gid + remap_gid) < 0 ? -1 : 0;
}

static int
shift_tree(void *arg, const char *root, berth_error_t **err)
{
    (void)arg;
    if (nftw(root, shift_one, 64, FTW_PHYS | FTW_MOUNT) != 0)
        return bc_error(err, BERTH_EIO, "shift ownership under %s: %s", root, strerror(errno));
    return 0;
}

/* The committed "<chainID>-<uid>-<gid>" parent, made once: prepare on the image, shift every file's
 * owner by uid/gid, commit. *parent_out is its name. */
static int
remapped_parent(berth_client_t *c, const berth_call_t *call, const char *sn, const char *chain,
                uint32_t uid, uint32_t gid, char **parent_out, berth_error_t **err)
{
    char *name = NULL, *key = NULL;
    if (asprintf(&name, "%s-%u-%u", chain, uid, gid) < 0)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    int rc = snap_exists(c, call, sn, name, err);
    if (rc != 0) {
        if (rc > 0) {
            *parent_out = name;
            return 0;
        }
        free(name);
        return rc;
    }
    if (asprintf(&key, "%s-remap", name) < 0) {
        free(name);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    mounts_t m = {0};
    rc = snap_make(c, call, sn, key, chain, 0, &m, err);
    if (rc == 0) {
        pthread_mutex_lock(&remap_mu);
        remap_uid = uid, remap_gid = gid;
        rc = with_mounts(&m, 0, shift_tree, NULL, err);
        pthread_mutex_unlock(&remap_mu);
        mounts_clear(&m);
        if (rc == 0)
            rc = snap_commit(c, call, sn, name, key, err);
        if (rc < 0)
            snap_remove(c, call, sn, key, NULL);
    }
    free(key);
    if (rc < 0) {
        free(name);
        return rc;
    }
    *parent_out = name;
    return 0;
}

/* ---- spec generation (public) ---- */

typedef struct {
    const char *ns, *id, *config;
    const berth_spec_opts_t *opts;
    char **out;
} spec_job_t;

static int
spec_in_rootfs(void *arg, const char *rootfs, berth_error_t **err)
{
    spec_job_t *j = arg;
    return bc_spec_build(j->ns, j->id, j->config, j->opts, rootfs, j->out, err);
}

static const char *
image_user(const char *config_json, char *buf, size_t sz)
{
    json_object *j = json_tokener_parse(config_json), *cfg = NULL, *u = NULL;
    buf[0] = '\0';
    if (j && json_object_object_get_ex(j, "config", &cfg) &&
        json_object_object_get_ex(cfg, "User", &u))
        snprintf(buf, sz, "%s", json_object_get_string(u));
    json_object_put(j);
    return buf;
}

/* rootfs: dir, or else a snapshot (sn, key) to mount when a user name needs it */
static int
spec_generate(berth_client_t *c, const berth_call_t *call, const char *id, const char *config,
              const berth_spec_opts_t *opts, const char *rootfs, const char *sn, const char *key,
              char **spec_json, berth_error_t **err)
{
    char ubuf[512];
    const char *user = opts && opts->user ? opts->user
                       : config           ? image_user(config, ubuf, sizeof ubuf)
                                          : NULL;
    spec_job_t j = {bc_namespace(c, call), id, config, opts, spec_json};
    if (rootfs || !bc_spec_user_needs_rootfs(user) || !sn || !key)
        return bc_spec_build(j.ns, id, config, opts, rootfs, spec_json, err);
    return bc_with_snapshot_rootfs(c, call, sn, key, spec_in_rootfs, &j, err);
}

BC_EXPORT int
berth_spec_generate(berth_client_t *c, const berth_call_t *call, const char *id, const char *image,
                    const berth_spec_opts_t *opts, const char *rootfs_dir, char **spec_json,
                    berth_error_t **err)
{
    bc_image_t *img = NULL;
    int rc = 0;
    if (image && *image && (rc = bc_image_resolve(c, call, image, NULL, &img, err)) < 0)
        return rc;
    const char *config = img ? img->config_json : NULL;
    char ubuf[512];
    const char *user = opts && opts->user ? opts->user
                       : config           ? image_user(config, ubuf, sizeof ubuf)
                                          : NULL;
    if (!rootfs_dir && img && bc_spec_user_needs_rootfs(user) && *img->chain_id) {
        /* a temporary view of the image's rootfs for /etc/passwd and /etc/group */
        char key[256];
        snprintf(key, sizeof key, "berth-spec-%s-%d-%ld", id, getpid(), (long)random());
        op_lease_t l;
        rc = lease_begin(c, call, &l, err);
        if (rc == 0)
            rc = snap_make(c, call, BERTH_CLIENT_DEFAULT_SNAPSHOTTER, key, img->chain_id, 1, NULL,
                           err);
        if (rc == 0) {
            rc = spec_generate(c, call, id, config, opts, NULL, BERTH_CLIENT_DEFAULT_SNAPSHOTTER,
                               key, spec_json, err);
            snap_remove(c, call, BERTH_CLIENT_DEFAULT_SNAPSHOTTER, key, NULL);
        }
        if (bc_thread_lease == l.id)
            lease_end(c, call, &l);
    } else {
        rc = spec_generate(c, call, id, config, opts, rootfs_dir, NULL, NULL, spec_json, err);
    }
    bc_image_free(img);
    return rc;
}

/* ---- containers ---- */

static int
kv_copy(berth_kv_t **out, size_t *n, void **entries, size_t ne)
{
    return bc_kv_from_map(entries, ne, out, n);
}

static int
container_from_pb(const Containerd__Services__Containers__V1__Container *p, berth_container_t *ct)
{
    memset(ct, 0, sizeof *ct);
    ct->id = bc_strdup(p->id);
    ct->image = bc_strdup(p->image);
    ct->runtime = bc_strdup(p->runtime ? p->runtime->name : "");
    ct->snapshotter = bc_strdup(p->snapshotter);
    ct->snapshot_key = bc_strdup(p->snapshot_key);
    if (p->spec && p->spec->value.len) {
        ct->spec_json = malloc(p->spec->value.len + 1);
        if (ct->spec_json) {
            memcpy(ct->spec_json, p->spec->value.data, p->spec->value.len);
            ct->spec_json[p->spec->value.len] = '\0';
        }
    } else {
        ct->spec_json = bc_strdup("");
    }
    ct->created_at_ns = bc_ts_ns(p->created_at);
    ct->updated_at_ns = bc_ts_ns(p->updated_at);
    int rc = kv_copy(&ct->labels, &ct->n_labels, (void **)p->labels, p->n_labels);
    if (rc < 0 || !ct->id || !ct->image || !ct->runtime || !ct->snapshotter || !ct->snapshot_key ||
        !ct->spec_json)
        return BERTH_ENOMEM;
    return 0;
}

static void
container_clear(berth_container_t *ct)
{
    free(ct->id);
    free(ct->image);
    free(ct->runtime);
    free(ct->snapshotter);
    free(ct->snapshot_key);
    free(ct->spec_json);
    berth_kv_free(ct->labels, ct->n_labels);
}

BC_EXPORT void
berth_container_free(berth_container_t *ct)
{
    if (!ct)
        return;
    container_clear(ct);
    free(ct);
}

BC_EXPORT void
berth_containers_free(berth_container_t *cts, size_t n)
{
    for (size_t i = 0; cts && i < n; i++)
        container_clear(&cts[i]);
    free(cts);
}

typedef Containerd__Services__Containers__V1__Container__LabelsEntry label_entry_t;

/* the labels of the record: opts' then berth's attachment labels */
static label_entry_t **
make_labels(const berth_container_opts_t *o, size_t *n)
{
    size_t cap = o->n_labels + 3;
    /* one block: the pointers, then the entries (free_labels frees it) */
    label_entry_t **ptrs = calloc(1, (cap + 1) * sizeof *ptrs + cap * sizeof(label_entry_t));
    if (!ptrs)
        return NULL;
    label_entry_t *ents = (label_entry_t *)(ptrs + cap + 1);
    size_t k = 0;
    const char *extra[3][2] = {{"io.berth.network", o->network},
                               {"io.berth.ports", o->ports},
                               {"io.berth.volumes", o->volumes}};
    for (size_t i = 0; i < o->n_labels; i++) {
        int overridden = 0;
        for (int e = 0; e < 3; e++)
            overridden |= extra[e][1] && !strcmp(o->labels[i].key, extra[e][0]);
        if (overridden)
            continue;
        ents[k] =
            (label_entry_t)CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
        ents[k].key = o->labels[i].key,
        ents[k].value = o->labels[i].value ? o->labels[i].value : "";
        ptrs[k] = &ents[k];
        k++;
    }
    for (int e = 0; e < 3; e++)
        if (extra[e][1] && *extra[e][1]) {
            ents[k] =
                (label_entry_t)CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
            ents[k].key = (char *)extra[e][0], ents[k].value = (char *)extra[e][1];
            ptrs[k] = &ents[k];
            k++;
        }
    *n = k;
    return ptrs;
}

static void
free_labels(label_entry_t **ptrs)
{
    free(ptrs);
}

static int
create_record(berth_client_t *c, const berth_call_t *call, const char *id,
              const berth_container_opts_t *o, const char *sn, const char *key, const char *spec,
              berth_container_t **out, berth_error_t **err)
{
    Containerd__Services__Containers__V1__Container ct =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    Containerd__Services__Containers__V1__Container__Runtime rt =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
    Google__Protobuf__Any spec_any = GOOGLE__PROTOBUF__ANY__INIT,
                          rt_any = GOOGLE__PROTOBUF__ANY__INIT;
    ct.id = (char *)id;
    ct.image = (char *)(o->image ? o->image : "");
    rt.name = (char *)(o->runtime && *o->runtime ? o->runtime : BERTH_CLIENT_DEFAULT_RUNTIME);
    if (o->runtime_options_type && *o->runtime_options_type) {
        rt_any.type_url = (char *)o->runtime_options_type;
        rt_any.value.data = (uint8_t *)o->runtime_options;
        rt_any.value.len = o->runtime_options_len;
        rt.options = &rt_any;
    }
    ct.runtime = &rt;
    if (spec) {
        spec_any.type_url = SPEC_TYPE_URL;
        spec_any.value.data = (uint8_t *)spec;
        spec_any.value.len = strlen(spec);
        ct.spec = &spec_any;
    }
    ct.snapshotter = (char *)(sn ? sn : "");
    ct.snapshot_key = (char *)(key ? key : "");
    ct.labels = make_labels(o, &ct.n_labels);
    if (!ct.labels)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    Containerd__Services__Containers__V1__CreateContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
    req.container = &ct;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, CTRS("Create"), &req.base,
                      &containerd__services__containers__v1__create_container_response__descriptor,
                      &resp, err);
    free_labels(ct.labels);
    if (rc < 0)
        return bc_error_wrap(err, rc, "create container \"%s\"", id);
    Containerd__Services__Containers__V1__CreateContainerResponse *r = (void *)resp;
    if (out && r->container) {
        berth_container_t *res = calloc(1, sizeof *res);
        if (!res || container_from_pb(r->container, res) < 0) {
            berth_container_free(res);
            protobuf_c_message_free_unpacked(resp, NULL);
            return bc_error(err, BERTH_ENOMEM, "out of memory");
        }
        *out = res;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static int
container_create(berth_client_t *c, const berth_call_t *call, const char *id,
                 const berth_container_opts_t *o, berth_container_t **out, berth_error_t **err)
{
    if (!id || !*id)
        return bc_error(err, BERTH_EINVAL, "container id is empty");
    berth_container_opts_t none = {0};
    if (!o)
        o = &none;
    const char *sn =
        o->snapshotter && *o->snapshotter ? o->snapshotter : BERTH_CLIENT_DEFAULT_SNAPSHOTTER;
    const char *key = o->snapshot_key && *o->snapshot_key ? o->snapshot_key : id;
    int mode = o->snapshot;
    bc_image_t *img = NULL;
    char *parent = NULL, *spec = NULL;
    int made_snapshot = 0, rc = 0;
    int need_image = o->image && *o->image &&
                     (mode == BERTH_SNAPSHOT_NEW || mode == BERTH_SNAPSHOT_VIEW || !o->spec_json);
    if ((mode == BERTH_SNAPSHOT_NEW || mode == BERTH_SNAPSHOT_VIEW) && !(o->image && *o->image))
        return bc_error(err, BERTH_EINVAL, "container \"%s\": a new snapshot needs an image", id);
    if (need_image && (rc = bc_image_resolve(c, call, o->image, NULL, &img, err)) < 0)
        goto out;

    if (mode == BERTH_SNAPSHOT_NEW || mode == BERTH_SNAPSHOT_VIEW) {
        if (o->remap)
            rc = remapped_parent(c, call, sn, img->chain_id, o->remap_uid, o->remap_gid, &parent,
                                 err);
        if (rc == 0)
            rc = snap_make(c, call, sn, key, parent ? parent : img->chain_id,
                           mode == BERTH_SNAPSHOT_VIEW, NULL, err);
        if (rc < 0)
            goto out;
        made_snapshot = 1;
    }
    if (mode == BERTH_SNAPSHOT_EXISTING) { /* containerd's WithSnapshot: it must be there */
        rc = snap_exists(c, call, sn, key, err);
        if (rc == 0)
            rc = bc_error(err, BERTH_ENOTFOUND, "container \"%s\": snapshot \"%s\" not found", id,
                          key);
        if (rc < 0)
            goto out;
        rc = 0;
    }
    int has_snap = mode != BERTH_SNAPSHOT_NONE;
    if (!o->spec_json) {
        rc = spec_generate(c, call, id, img ? img->config_json : NULL, o->spec_opts, NULL,
                           has_snap ? sn : NULL, has_snap ? key : NULL, &spec, err);
        if (rc < 0)
            goto out;
    }
    rc = create_record(c, call, id, o, has_snap ? sn : NULL, has_snap ? key : NULL,
                       o->spec_json ? o->spec_json : spec, out, err);
out:
    if (rc < 0 && made_snapshot)
        snap_remove(c, call, sn, key, NULL);
    free(parent);
    free(spec);
    bc_image_free(img);
    return rc;
}

BC_EXPORT int
berth_container_create(berth_client_t *c, const berth_call_t *call, const char *id,
                       const berth_container_opts_t *o, berth_container_t **out,
                       berth_error_t **err)
{
    if (!o || (o->snapshot != BERTH_SNAPSHOT_NEW && o->snapshot != BERTH_SNAPSHOT_VIEW) ||
        (call && call->lease && *call->lease)) /* the caller's lease already keeps the snapshot */
        return container_create(c, call, id, o, out, err);
    /* the new snapshot lives on a lease until the record names it */
    op_lease_t l;
    int rc = lease_begin(c, call, &l, err);
    if (rc < 0)
        return rc;
    rc = container_create(c, call, id, o, out, err);
    lease_end(c, call, &l);
    return rc;
}

static int
get_pb(berth_client_t *c, const berth_call_t *call, const char *id, ProtobufCMessage **resp,
       berth_error_t **err)
{
    Containerd__Services__Containers__V1__GetContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
    req.id = (char *)id;
    int rc = bc_unary(c, call, CTRS("Get"), &req.base,
                      &containerd__services__containers__v1__get_container_response__descriptor,
                      resp, err);
    return rc < 0 ? bc_error_wrap(err, rc, "container \"%s\"", id) : 0;
}

BC_EXPORT int
berth_container_load(berth_client_t *c, const berth_call_t *call, const char *id,
                     berth_container_t **out, berth_error_t **err)
{
    ProtobufCMessage *resp = NULL;
    int rc = get_pb(c, call, id, &resp, err);
    if (rc < 0)
        return rc;
    Containerd__Services__Containers__V1__GetContainerResponse *r = (void *)resp;
    berth_container_t *ct = calloc(1, sizeof *ct);
    if (!ct || !r->container || container_from_pb(r->container, ct) < 0) {
        berth_container_free(ct);
        protobuf_c_message_free_unpacked(resp, NULL);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    *out = ct;
    return 0;
}

BC_EXPORT int
berth_container_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                     size_t n_filters, berth_container_t **out, size_t *n, berth_error_t **err)
{
    Containerd__Services__Containers__V1__ListContainersRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
    req.filters = (char **)filters, req.n_filters = n_filters;
    ProtobufCMessage *resp = NULL;
    int rc = bc_unary(c, call, CTRS("List"), &req.base,
                      &containerd__services__containers__v1__list_containers_response__descriptor,
                      &resp, err);
    if (rc < 0)
        return bc_error_wrap(err, rc, "list containers");
    Containerd__Services__Containers__V1__ListContainersResponse *r = (void *)resp;
    berth_container_t *v = calloc(r->n_containers ? r->n_containers : 1, sizeof *v);
    size_t k = 0;
    for (; v && k < r->n_containers; k++)
        if (container_from_pb(r->containers[k], &v[k]) < 0) {
            berth_containers_free(v, k + 1);
            v = NULL;
        }
    protobuf_c_message_free_unpacked(resp, NULL);
    if (!v)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    *out = v;
    *n = k;
    return 0;
}

BC_EXPORT int
berth_container_set_labels(berth_client_t *c, const berth_call_t *call, const char *id,
                           const berth_kv_t *labels, size_t n_labels, berth_error_t **err)
{
    Containerd__Services__Containers__V1__Container ct =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    ct.id = (char *)id;
    label_entry_t *ents = calloc(n_labels + 1, sizeof *ents);
    label_entry_t **ptrs = calloc(n_labels + 1, sizeof *ptrs);
    char **paths = calloc(n_labels + 1, sizeof *paths);
    int rc = 0;
    if (!ents || !ptrs || !paths) {
        rc = bc_error(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_labels; i++) {
        if (asprintf(&paths[i], "labels.%s", labels[i].key) < 0) {
            rc = bc_error(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (!labels[i].value)
            continue; /* in the mask, absent from the record: removed */
        ents[k] =
            (label_entry_t)CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
        ents[k].key = labels[i].key, ents[k].value = labels[i].value;
        ptrs[k] = &ents[k];
        k++;
    }
    ct.labels = ptrs, ct.n_labels = k;
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths, mask.n_paths = n_labels;
    Containerd__Services__Containers__V1__UpdateContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__UPDATE_CONTAINER_REQUEST__INIT;
    req.container = &ct, req.update_mask = &mask;
    ProtobufCMessage *resp = NULL;
    rc = bc_unary(c, call, CTRS("Update"), &req.base,
                  &containerd__services__containers__v1__update_container_response__descriptor,
                  &resp, err);
    if (rc < 0)
        rc = bc_error_wrap(err, rc, "update labels of container \"%s\"", id);
    else
        protobuf_c_message_free_unpacked(resp, NULL);
out:
    for (size_t i = 0; paths && i < n_labels; i++)
        free(paths[i]);
    free(paths);
    free(ptrs);
    free(ents);
    return rc;
}

BC_EXPORT int
berth_container_delete(berth_client_t *c, const berth_call_t *call, const char *id,
                       int cleanup_snapshot, berth_error_t **err)
{
    ProtobufCMessage *resp = NULL;
    int rc = get_pb(c, call, id, &resp, err);
    if (rc < 0)
        return rc;
    Containerd__Services__Containers__V1__GetContainerResponse *r = (void *)resp;
    char *sn = bc_strdup(r->container ? r->container->snapshotter : "");
    char *key = bc_strdup(r->container ? r->container->snapshot_key : "");
    protobuf_c_message_free_unpacked(resp, NULL);
    Containerd__Services__Containers__V1__DeleteContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
    req.id = (char *)id;
    rc = bc_unary(c, call, CTRS("Delete"), &req.base, NULL, NULL, err);
    if (rc < 0)
        rc = bc_error_wrap(err, rc, "delete container \"%s\"", id);
    else if (cleanup_snapshot && sn && key && *sn && *key) {
        rc = snap_remove(c, call, sn, key, err);
        if (rc == BERTH_ENOTFOUND) { /* already gone: what was asked */
            if (err && *err) {
                berth_error_free(*err);
                *err = NULL;
            }
            rc = 0;
        }
    }
    free(sn);
    free(key);
    return rc;
}

/* ---- exec process specs (public) ---- */

typedef struct {
    const char *spec;
    const berth_spec_opts_t *opts;
    char **out;
} proc_job_t;

static int
proc_in_rootfs(void *arg, const char *rootfs, berth_error_t **err)
{
    proc_job_t *j = arg;
    return bc_spec_process_build(j->spec, j->opts, rootfs, j->out, err);
}

BC_EXPORT int
berth_spec_process(berth_client_t *c, const berth_call_t *call, const char *id,
                   const berth_spec_opts_t *opts, char **process_json, berth_error_t **err)
{
    berth_container_t *ct = NULL;
    int rc = berth_container_load(c, call, id, &ct, err);
    if (rc < 0)
        return rc;
    proc_job_t j = {ct->spec_json, opts, process_json};
    if (opts && bc_spec_user_needs_rootfs(opts->user) && *ct->snapshotter && *ct->snapshot_key)
        rc = bc_with_snapshot_rootfs(c, call, ct->snapshotter, ct->snapshot_key, proc_in_rootfs, &j,
                                     err);
    else
        rc = bc_spec_process_build(ct->spec_json, opts, NULL, process_json, err);
    berth_container_free(ct);
    return rc;
}
