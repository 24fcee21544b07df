/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io.berth.volume.v1.local: named volumes under <root>/<namespace>/<name>/_data (a directory, or a tmpfs
 * mounted there) or binds of host paths inside the allow-list, with their records (Volume messages) in the
 * metadata store, kind "volumes".
 *
 * Crash rule: create makes the backing directory (and mounts the tmpfs) first and puts the record last;
 * remove deletes the record first, unmounts, renames the directory to <ns>/.removing-<n> and removes it
 * last. The collector (a thread started at init) removes what a kill -9 left: directories without a
 * record and every .removing-* (names starting with '.' are never volumes).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <berth/hooks.h>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "identifiers.h"
#include "mountspec.h"
#include "options.h"
#include "rpc.h"
#include "volumes.h"

_Static_assert(BERTH_VOLUME_NAME_MAX == 255, "mountspec.c's NAME_MAX_BYTES");

typedef Berth__Services__Volumes__V1__Volume__LabelsEntry label_pb_t;
typedef Berth__Services__Volumes__V1__Volume__OptionsEntry option_pb_t;

static int
code_of(berth_error_t **err, int dflt)
{
    return err && *err ? (*err)->code : dflt;
}

/* ---- names and paths ---------------------------------------------------------------------------- */

static int
check_names(vol_t *v, const char *ns, const char *name, berth_error_t **err)
{
    char why[512];
    if (ns == NULL || !identifier_valid(ns))
        return v->api->error_make(err, BERTH_EINVAL, "namespace \"%s\": invalid", ns ? ns : "");
    if (mountspec_volume_name_check(name, why, sizeof(why)) < 0)
        return v->api->error_make(err, BERTH_EINVAL, "%s", why);
    return 0;
}

/* <root>/<ns>/<name> (the volume's directory) */
static void
vol_dir(const vol_t *v, const char *ns, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", v->root, ns, name);
}

static void
vol_data(const vol_t *v, const char *ns, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s/_data", v->root, ns, name);
}

/* 1 when path is a mount point (another device than its parent's) */
static int
is_mounted(const char *path)
{
    struct stat st, parent;
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s/..", path);
    return lstat(path, &st) == 0 && stat(up, &parent) == 0 && st.st_dev != parent.st_dev;
}

/* Unmounts everything on path (lazily when busy). */
static void
unmount_all(vol_t *v, const char *path)
{
    for (int i = 0; i < 16 && is_mounted(path); i++) {
        if (umount2(path, UMOUNT_NOFOLLOW) < 0 && umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
            v->api->log(v->log, BERTH_LOG_WARN, "volumes: unmount %s: %s", path, strerror(errno));
            return;
        }
    }
}

/* ---- walking a tree: its size, its removal (never following symlinks nor leaving the filesystem) --- */

static __thread uint64_t walk_bytes;
static __thread int walk_failed;
static __thread volatile int *walk_stop;

static int
size_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)flag, (void)ftw;
    walk_bytes += (uint64_t)st->st_blocks * 512u;
    return 0;
}

static uint64_t
tree_size(const char *path)
{
    walk_bytes = 0;
    if (nftw(path, size_one, 32, FTW_PHYS | FTW_MOUNT) < 0)
        return 0;
    return walk_bytes;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        walk_failed = errno;
    return walk_stop != NULL && *walk_stop ? 1 : 0;
}

/* rm -rf; 0, or -1 with errno */
static int
tree_remove(const char *path, volatile int *stop)
{
    walk_failed = 0;
    walk_stop = stop;
    int rc = nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    walk_stop = NULL;
    if (rc < 0 && errno == ENOENT)
        return 0;
    if (rc != 0 || walk_failed) {
        errno = walk_failed ? walk_failed : errno;
        return -1;
    }
    return 0;
}

/* ---- records ------------------------------------------------------------------------------------ */

volume_pb_t *
vol_record(vol_t *v, const char *ns, const char *name, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    berth_error_t *e = NULL;
    if (v->mdo->record_get(v->md, ns, VOL_KIND, name, &data, &len, &e) < 0) {
        int code = e->code;
        v->api->error_free(e);
        if (code == BERTH_ENOTFOUND)
            v->api->error_make(err, BERTH_ENOTFOUND, "volume \"%s\": not found", name);
        else
            v->api->error_make(err, code, "volume \"%s\": reading its record failed", name);
        return NULL;
    }
    volume_pb_t *rec = berth__services__volumes__v1__volume__unpack(NULL, len, data);
    v->api->free(data);
    if (rec == NULL)
        v->api->error_make(err, BERTH_EDATALOSS, "volume \"%s\": record does not decode", name);
    return rec;
}

typedef struct listing {
    vol_t *v;
    int (*cb)(void *user, volume_pb_t *rec);
    void *user;
} listing_t;

static int
list_one(void *user, const char *key, const uint8_t *value, size_t len)
{
    listing_t *l = user;
    volume_pb_t *rec = berth__services__volumes__v1__volume__unpack(NULL, len, value);
    if (rec == NULL) {
        l->v->api->log(l->v->log, BERTH_LOG_WARN, "volumes: record %s does not decode", key);
        return 0;
    }
    int stop = l->cb(l->user, rec);
    berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
    return stop;
}

int
vol_record_list(vol_t *v, const char *ns, int (*cb)(void *user, volume_pb_t *rec), void *user,
                berth_error_t **err)
{
    listing_t l = {v, cb, user};
    return v->mdo->record_list(v->md, ns, VOL_KIND, list_one, &l, err);
}

static const char *
record_option(const volume_pb_t *rec, const char *key)
{
    for (size_t i = 0; i < rec->n_options; i++)
        if (strcmp(rec->options[i]->key, key) == 0)
            return rec->options[i]->value;
    return NULL;
}

/* the record's options as parallel arrays for volopts_parse */
static int
record_opts(vol_t *v, const volume_pb_t *rec, volopts_t *o, berth_error_t **err)
{
    const char *keys[16], *values[16];
    size_t n = rec->n_options < 16 ? rec->n_options : 16;
    for (size_t i = 0; i < n; i++) {
        keys[i] = rec->options[i]->key;
        values[i] = rec->options[i]->value;
    }
    char why[512];
    if (volopts_parse(n, keys, values, o, why, sizeof(why)) < 0)
        return v->api->error_make(err, BERTH_EDATALOSS, "volume \"%s\": stored options: %s",
                                  rec->name, why);
    return 0;
}

/* Same options: the same keys with the same values ("type" "" is no type). */
static int
same_options(vol_t *v, const volume_pb_t *rec, const berth_kv_t *opts)
{
    size_t n = v->api->kv_size(opts);
    if (n != rec->n_options)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *have = record_option(rec, v->api->kv_key_at(opts, i));
        if (have == NULL || strcmp(have, v->api->kv_value_at(opts, i)) != 0)
            return 0;
    }
    return 1;
}

static int
record_put(vol_t *v, const char *ns, const char *name, const berth_kv_t *labels,
           const berth_kv_t *opts, const char *mountpoint, berth_error_t **err)
{
    volume_pb_t rec = BERTH__SERVICES__VOLUMES__V1__VOLUME__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    rec.name = (char *)name;
    rec.driver = VOL_DRIVER;
    rec.mountpoint = (char *)mountpoint;
    rec.created_at = &ts;
    size_t nl = v->api->kv_size(labels), no = v->api->kv_size(opts);
    label_pb_t *li = calloc(nl + 1, sizeof(*li)), **lp = calloc(nl + 1, sizeof(*lp));
    option_pb_t *oi = calloc(no + 1, sizeof(*oi)), **op = calloc(no + 1, sizeof(*op));
    for (size_t i = 0; i < nl; i++) {
        berth__services__volumes__v1__volume__labels_entry__init(&li[i]);
        li[i].key = (char *)v->api->kv_key_at(labels, i);
        li[i].value = (char *)v->api->kv_value_at(labels, i);
        lp[i] = &li[i];
    }
    for (size_t i = 0; i < no; i++) {
        berth__services__volumes__v1__volume__options_entry__init(&oi[i]);
        oi[i].key = (char *)v->api->kv_key_at(opts, i);
        oi[i].value = (char *)v->api->kv_value_at(opts, i);
        op[i] = &oi[i];
    }
    rec.labels = lp;
    rec.n_labels = nl;
    rec.options = op;
    rec.n_options = no;
    uint8_t *data;
    size_t len;
    pack(&rec.base, &data, &len);
    int rc = v->mdo->record_put(v->md, ns, VOL_KIND, name, data, len, BERTH_RECORD_CREATE, err);
    free(data);
    free(li);
    free(lp);
    free(oi);
    free(op);
    return rc;
}

/* ---- references: the containers whose io.berth.volumes label names a volume --------------------- */

struct vol_refs {
    size_t n;
    char **ids;
    mountspec_t *specs;
};

static int
refs_one(void *user, const uint8_t *data, size_t len)
{
    vol_refs_t *r = user;
    Containerd__Services__Containers__V1__Container *c =
        containerd__services__containers__v1__container__unpack(NULL, len, data);
    if (c == NULL)
        return 0;
    for (size_t i = 0; i < c->n_labels; i++) {
        if (strcmp(c->labels[i]->key, MOUNTSPEC_LABEL) != 0)
            continue;
        mountspec_t ms;
        /* an unparsable label mounts nothing (task create refuses it), so it references nothing */
        if (mountspec_parse(c->labels[i]->value, &ms, NULL, 0) == 0 && ms.n > 0) {
            r->ids = realloc(r->ids, (r->n + 1) * sizeof(*r->ids));
            r->specs = realloc(r->specs, (r->n + 1) * sizeof(*r->specs));
            r->ids[r->n] = strdup(c->id);
            r->specs[r->n++] = ms;
        } else {
            mountspec_free(&ms);
        }
    }
    containerd__services__containers__v1__container__free_unpacked(c, NULL);
    return 0;
}

int
vol_refs_load(vol_t *v, const char *ns, vol_refs_t **out, berth_error_t **err)
{
    vol_refs_t *r = calloc(1, sizeof(*r));
    if (v->mdo->container_list(v->md, ns, refs_one, r, err) < 0) {
        vol_refs_free(r);
        return code_of(err, BERTH_EUNKNOWN);
    }
    *out = r;
    return 0;
}

size_t
vol_refs_of(const vol_refs_t *refs, const char *name, char ***ids)
{
    size_t n = 0;
    *ids = calloc(refs->n + 1, sizeof(**ids));
    for (size_t i = 0; i < refs->n; i++) {
        for (size_t j = 0; j < refs->specs[i].n; j++) {
            const mountspec_entry_t *e = &refs->specs[i].entries[j];
            if (e->kind == MOUNTSPEC_VOLUME && strcmp(e->source, name) == 0) {
                (*ids)[n++] = refs->ids[i];
                break;
            }
        }
    }
    return n;
}

void
vol_refs_free(vol_refs_t *refs)
{
    if (refs == NULL)
        return;
    for (size_t i = 0; i < refs->n; i++) {
        free(refs->ids[i]);
        mountspec_free(&refs->specs[i]);
    }
    free(refs->ids);
    free(refs->specs);
    free(refs);
}

/* ---- the allow-list ------------------------------------------------------------------------------ */

/* "/srv/a, /srv/b" or "(empty)" */
static void
allow_text(const vol_t *v, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < v->n_allow && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", v->allow[i]);
    if (v->n_allow == 0)
        snprintf(buf, len, "(empty)");
}

/* 1 when `real` is `dir` or beneath it (a path component boundary, not a string prefix) */
static int
beneath(const char *real, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    return strncmp(real, dir, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int
vol_bind_allowed(void *vol, const char *host_path, char **resolved, berth_error_t **err)
{
    vol_t *v = vol;
    char real[PATH_MAX], list[2048];
    *resolved = NULL;
    if (host_path == NULL || host_path[0] != '/')
        return v->api->error_make(err, BERTH_EINVAL, "bind source \"%s\" is not an absolute path",
                                  host_path ? host_path : "");
    if (v->n_allow == 0)
        return v->api->error_make(err, BERTH_EPERM,
                                  "bind source \"%s\": binds are refused (the allow-list, config "
                                  "key bind_allow of plugin %s.%s, is empty)",
                                  host_path, BERTH_VOLUME_TYPE, VOL_DRIVER);
    if (realpath(host_path, real) == NULL)
        return v->api->error_make(err, errno == ENOENT ? BERTH_ENOTFOUND : BERTH_EINVAL,
                                  "bind source \"%s\": %s", host_path, strerror(errno));
    for (size_t i = 0; i < v->n_allow; i++) {
        char dir[PATH_MAX];
        /* the allowed directory's own real path: an allow-list entry may itself be a symlink */
        if (realpath(v->allow[i], dir) == NULL)
            continue;
        if (beneath(real, dir)) {
            *resolved = v->api->strdup(real);
            return 0;
        }
    }
    allow_text(v, list, sizeof(list));
    char really[PATH_MAX + 16] = "";
    if (strcmp(real, host_path) != 0) /* a symlink or "//": say where it really leads */
        snprintf(really, sizeof(really), " (really \"%s\")", real);
    return v->api->error_make(err, BERTH_EPERM,
                              "bind source \"%s\"%s is not inside the allow-list (bind_allow: %s)",
                              host_path, really, list);
}

/* A test's deliberate crash (BERTH_TEST_VOLUMES_CRASH=create|remove, read at init): berthd dies by SIGKILL
 * between a create's backing directory and its record, or between a removal's record and its directory,
 * so the crash rule and the collector are checked at exactly those points, not by chance. */
static void
crash_point(const vol_t *v, const char *where)
{
    if (v->crash[0] != '\0' && strcmp(v->crash, where) == 0) {
        v->api->log(v->log, BERTH_LOG_WARN, "volumes: BERTH_TEST_VOLUMES_CRASH=%s: killing berthd",
                    where);
        raise(SIGKILL);
    }
}

/* ---- create ------------------------------------------------------------------------------------- */

static berth_kv_t *
kv_copy(vol_t *v, const berth_kv_t *from)
{
    berth_kv_t *kv = v->api->kv_new();
    for (size_t i = 0; from != NULL && i < v->api->kv_size(from); i++)
        v->api->kv_set(kv, v->api->kv_key_at(from, i), v->api->kv_value_at(from, i));
    return kv;
}

static int
opts_of_kv(vol_t *v, const char *name, const berth_kv_t *opts, volopts_t *o, berth_error_t **err)
{
    size_t n = v->api->kv_size(opts);
    const char *keys[16], *values[16];
    if (n > 16)
        return v->api->error_make(err, BERTH_EINVAL, "volume \"%s\": too many options (%zu)", name,
                                  n);
    for (size_t i = 0; i < n; i++) {
        keys[i] = v->api->kv_key_at(opts, i);
        values[i] = v->api->kv_value_at(opts, i);
    }
    char why[512];
    if (volopts_parse(n, keys, values, o, why, sizeof(why)) < 0)
        return v->api->error_make(err, BERTH_EINVAL, "volume \"%s\": %s", name, why);
    return 0;
}

static int
mount_tmpfs(vol_t *v, const char *name, const char *data, const volopts_t *o, berth_error_t **err)
{
    if (mount("tmpfs", data, "tmpfs", MS_NOSUID | MS_NODEV, o->tmpfs_data) < 0)
        return v->api->error_make(err, BERTH_EIO, "volume \"%s\": mount tmpfs (%s) on %s: %s", name,
                                  o->tmpfs_data, data, strerror(errno));
    return 0;
}

/* Removes a volume's directory that has no record (a crash's leftover); the caller holds the lock. */
static void
drop_leftover(vol_t *v, const char *ns, const char *name)
{
    char dir[PATH_MAX], data[PATH_MAX];
    vol_dir(v, ns, name, dir, sizeof(dir));
    vol_data(v, ns, name, data, sizeof(data));
    struct stat st;
    if (lstat(dir, &st) < 0)
        return;
    unmount_all(v, data);
    if (tree_remove(dir, NULL) < 0)
        v->api->log(v->log, BERTH_LOG_WARN, "volumes: leftover %s: %s", dir, strerror(errno));
    else
        v->api->log(v->log, BERTH_LOG_INFO, "volumes: removed leftover %s (no record)", dir);
}

/* The backing directory (and tmpfs) of a new volume; *mountpoint is malloc'd. */
static int
make_backing(vol_t *v, const char *ns, const char *name, const volopts_t *o, char **mountpoint,
             berth_error_t **err)
{
    char data[PATH_MAX];
    if (o->type == VOL_BIND)
        return vol_bind_allowed(v, o->device, mountpoint, err);
    drop_leftover(v, ns, name);
    vol_data(v, ns, name, data, sizeof(data));
    if (v->api->mkdir_all(data, 0755, err) < 0)
        return v->api->error_wrap(err, "volume \"%s\"", name);
    if (o->type == VOL_TMPFS && mount_tmpfs(v, name, data, o, err) < 0) {
        drop_leftover(v, ns, name); /* the directory made for it, not to be left behind */
        return code_of(err, BERTH_EIO);
    }
    *mountpoint = v->api->strdup(data);
    return 0;
}

/* Undoes make_backing after the record could not be written. */
static void
undo_backing(vol_t *v, const char *ns, const char *name, const volopts_t *o)
{
    if (o->type != VOL_BIND)
        drop_leftover(v, ns, name);
}

/* create with the lock held */
static int
create_locked(vol_t *v, const char *ns, const char *name, const berth_kv_t *labels_in,
              const berth_kv_t *options_in, int *created, berth_error_t **err)
{
    const berth_core_api_t *api = v->api;
    berth_kv_t *labels = kv_copy(v, labels_in), *opts = kv_copy(v, options_in);
    berth_hook_volume_t p = {
        .struct_size = sizeof(p), .namespace_ = ns, .id = name, .options = opts, .labels = labels};
    volopts_t o;
    volume_pb_t *have = NULL;
    char *mountpoint = NULL;
    *created = 0;
    int rc = api->hook_invoke(BERTH_HOOK_VOLUME_PRE_CREATE, &p, err);
    if (rc < 0) {
        api->error_wrap(err, "volume \"%s\"", name);
        goto out;
    }
    /* "type" "" is a directory as no type is: stored without it, so both compare equal */
    const char *t = api->kv_get(opts, "type");
    if (t != NULL && t[0] == '\0')
        api->kv_unset(opts, "type");
    if ((rc = opts_of_kv(v, name, opts, &o, err)) < 0)
        goto out;
    berth_error_t *e = NULL;
    if ((have = vol_record(v, ns, name, &e)) != NULL) {
        if (!same_options(v, have, opts))
            rc =
                api->error_make(err, BERTH_EEXIST, "volume \"%s\" exists with other options", name);
        goto out;
    }
    if (e->code != BERTH_ENOTFOUND) {
        *err = e;
        rc = e->code;
        goto out;
    }
    api->error_free(e);
    if ((rc = make_backing(v, ns, name, &o, &mountpoint, err)) < 0)
        goto out;
    crash_point(v, "create");
    if ((rc = record_put(v, ns, name, labels, opts, mountpoint, err)) < 0) {
        undo_backing(v, ns, name, &o);
        goto out;
    }
    *created = 1;
    api->log(v->log, BERTH_LOG_INFO, "volumes: created %s/%s at %s", ns, name, mountpoint);
out:
    if (have)
        berth__services__volumes__v1__volume__free_unpacked(have, NULL);
    api->free(mountpoint);
    api->kv_free(labels);
    api->kv_free(opts);
    return rc;
}

static int
vol_create(void *vol, const char *ns, const char *name, const berth_kv_t *labels,
           const berth_kv_t *options, int *created, berth_error_t **err)
{
    vol_t *v = vol;
    int dummy;
    if (created == NULL)
        created = &dummy;
    *created = 0;
    if (check_names(v, ns, name, err) < 0)
        return BERTH_EINVAL;
    pthread_mutex_lock(&v->lock);
    int rc = create_locked(v, ns, name, labels, options, created, err);
    pthread_mutex_unlock(&v->lock);
    return rc;
}

/* ---- mount_source -------------------------------------------------------------------------------- */

/* The host path of an existing volume, its tmpfs mounted; the lock is held. */
static int
source_locked(vol_t *v, const char *ns, const volume_pb_t *rec, char **path, berth_error_t **err)
{
    volopts_t o;
    char data[PATH_MAX];
    if (record_opts(v, rec, &o, err) < 0)
        return code_of(err, BERTH_EDATALOSS);
    if (o.type == VOL_BIND) {
        /* checked again: the allow-list or a symlink may have changed since create */
        if (vol_bind_allowed(v, o.device, path, err) < 0)
            return v->api->error_wrap(err, "volume \"%s\"", rec->name);
        return 0;
    }
    vol_data(v, ns, rec->name, data, sizeof(data));
    if (v->api->mkdir_all(data, 0755, err) < 0)
        return v->api->error_wrap(err, "volume \"%s\"", rec->name);
    /* after a reboot the record is there and the tmpfs is not */
    if (o.type == VOL_TMPFS && !is_mounted(data) && mount_tmpfs(v, rec->name, data, &o, err) < 0)
        return code_of(err, BERTH_EIO);
    *path = v->api->strdup(data);
    return 0;
}

static int
vol_mount_source(void *vol, const char *ns, const char *name, char **path, berth_error_t **err)
{
    vol_t *v = vol;
    *path = NULL;
    if (check_names(v, ns, name, err) < 0)
        return BERTH_EINVAL;
    pthread_mutex_lock(&v->lock);
    int rc = 0, created;
    berth_error_t *e = NULL;
    volume_pb_t *rec = vol_record(v, ns, name, &e);
    if (rec == NULL && e->code == BERTH_ENOTFOUND) {
        v->api->error_free(e);
        e = NULL;
        if ((rc = create_locked(v, ns, name, NULL, NULL, &created, err)) == 0)
            rec = vol_record(v, ns, name, err);
        if (rc == 0 && rec == NULL)
            rc = code_of(err, BERTH_EUNKNOWN);
    } else if (rec == NULL) {
        *err = e;
        rc = e->code;
    }
    if (rc == 0)
        rc = source_locked(v, ns, rec, path, err);
    pthread_mutex_unlock(&v->lock);
    if (rec)
        berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
    return rc;
}

/* ---- remove -------------------------------------------------------------------------------------- */

static int
in_use(vol_t *v, const char *ns, const char *name, berth_error_t **err)
{
    vol_refs_t *refs;
    char **ids;
    if (vol_refs_load(v, ns, &refs, err) < 0)
        return code_of(err, BERTH_EUNKNOWN);
    size_t n = vol_refs_of(refs, name, &ids);
    int rc = 0;
    if (n > 0) {
        char list[1024];
        size_t used = 0;
        for (size_t i = 0; i < n && used < sizeof(list); i++)
            used +=
                (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", ids[i]);
        rc = v->api->error_make(err, BERTH_EPRECONDITION,
                                "volume \"%s\" is in use by container%s %s (remove %s first, or "
                                "force)",
                                name, n > 1 ? "s" : "", list, n > 1 ? "them" : "it");
    }
    free(ids);
    vol_refs_free(refs);
    return rc;
}

/* Record gone, tmpfs unmounted: the directory moves aside (to be removed without the lock). */
static int
set_aside(vol_t *v, const char *ns, const char *name, char *aside, size_t len)
{
    char dir[PATH_MAX], data[PATH_MAX];
    vol_dir(v, ns, name, dir, sizeof(dir));
    vol_data(v, ns, name, data, sizeof(data));
    unmount_all(v, data);
    snprintf(aside, len, "%s/%s/.removing-%ld-%lu", v->root, ns, (long)getpid(), ++v->removals);
    if (rename(dir, aside) < 0) {
        if (errno != ENOENT)
            v->api->log(v->log, BERTH_LOG_WARN, "volumes: set aside %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int
vol_remove_measured(vol_t *v, const char *ns, const char *name, int force, uint64_t *freed,
                    berth_error_t **err)
{
    if (freed)
        *freed = 0;
    if (check_names(v, ns, name, err) < 0)
        return BERTH_EINVAL;
    pthread_mutex_lock(&v->lock);
    volopts_t o = {0};
    char aside[PATH_MAX], data[PATH_MAX];
    int rc = 0, moved = 0;
    volume_pb_t *rec = vol_record(v, ns, name, err);
    if (rec == NULL)
        rc = code_of(err, BERTH_ENOTFOUND);
    if (rc == 0 && !force)
        rc = in_use(v, ns, name, err);
    if (rc == 0 && record_opts(v, rec, &o, err) < 0)
        o.type = VOL_DIR; /* undecodable options: still removable */
    if (rc == 0 && freed && o.type != VOL_BIND) {
        vol_data(v, ns, name, data, sizeof(data));
        *freed = tree_size(data);
    }
    if (rc == 0)
        rc = v->mdo->record_delete(v->md, ns, VOL_KIND, name, err);
    if (rc == 0)
        crash_point(v, "remove");
    if (rc == 0 && o.type != VOL_BIND)
        moved = set_aside(v, ns, name, aside, sizeof(aside)) == 0;
    pthread_mutex_unlock(&v->lock);
    if (rc == 0)
        v->api->log(v->log, BERTH_LOG_INFO, "volumes: removed %s/%s%s", ns, name,
                    force ? " (forced)" : "");
    if (moved && tree_remove(aside, NULL) < 0)
        v->api->log(v->log, BERTH_LOG_WARN, "volumes: remove %s: %s (collected at next start)",
                    aside, strerror(errno));
    if (rec)
        berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
    return rc;
}

static int
vol_remove(void *vol, const char *ns, const char *name, int force, berth_error_t **err)
{
    return vol_remove_measured(vol, ns, name, force, NULL, err);
}

/* ---- the start-up collector ---------------------------------------------------------------------- */

/* One entry of <root>/<ns>: garbage when set aside, or when no record (of a dir or tmpfs) is there. */
static void
collect_entry(vol_t *v, const char *ns, const char *entry)
{
    char path[PATH_MAX], data[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/%s/%s", v->root, ns, entry);
    char mine[64];
    /* this process's own removals are under way in their callers */
    int n = snprintf(mine, sizeof(mine), ".removing-%ld-", (long)getpid());
    if (strncmp(entry, mine, (size_t)n) == 0)
        return;
    if (entry[0] == '.') {
        snprintf(data, sizeof(data), "%s/_data", path);
        unmount_all(v, data);
        if (tree_remove(path, &v->closing) < 0)
            v->api->log(v->log, BERTH_LOG_WARN, "volumes: collect %s: %s", path, strerror(errno));
        else
            v->api->log(v->log, BERTH_LOG_INFO, "volumes: collected %s (an interrupted removal)",
                        path);
        return;
    }
    pthread_mutex_lock(&v->lock);
    berth_error_t *e = NULL;
    volume_pb_t *rec = vol_record(v, ns, entry, &e);
    volopts_t o;
    int garbage = 0;
    if (rec == NULL) {
        garbage = e->code == BERTH_ENOTFOUND; /* other errors: keep it, better safe */
        v->api->error_free(e);
    } else if (record_opts(v, rec, &o, &e) == 0) {
        garbage = o.type == VOL_BIND; /* a bind has no directory here */
    } else {
        v->api->error_free(e);
    }
    if (garbage)
        drop_leftover(v, ns, entry);
    if (rec)
        berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
    pthread_mutex_unlock(&v->lock);
}

static void
collect_ns(vol_t *v, const char *ns)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", v->root, ns);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; !v->closing && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        collect_entry(v, ns, e->d_name);
    }
    closedir(d);
}

static void *
collector_main(void *arg)
{
    vol_t *v = arg;
    DIR *d = opendir(v->root);
    for (struct dirent *e; d != NULL && !v->closing && (e = readdir(d)) != NULL;) {
        if (identifier_valid(e->d_name) && e->d_type == DT_DIR)
            collect_ns(v, e->d_name);
    }
    if (d)
        closedir(d);
    return NULL;
}

/* ---- the plugin ---------------------------------------------------------------------------------- */

static int
load_allow(vol_t *v, berth_init_ctx_t *ic, berth_error_t **err)
{
    const berth_config_node_t *list = ic->api->map_get(ic->config, "bind_allow");
    size_t n = ic->api->list_size(list);
    v->allow = calloc(n + 1, sizeof(*v->allow));
    for (size_t i = 0; i < n; i++) {
        const char *s = ic->api->scalar(ic->api->list_at(list, i));
        if (s == NULL || s[0] != '/')
            return ic->api->error_make(err, BERTH_EINVAL,
                                       "bind_allow: \"%s\" is not an absolute path", s ? s : "");
        v->allow[v->n_allow] = strdup(s);
        /* "/srv/a/" and "/srv/a" are one directory */
        size_t len = strlen(s);
        while (len > 1 && v->allow[v->n_allow][len - 1] == '/')
            v->allow[v->n_allow][--len] = '\0';
        v->n_allow++;
    }
    return 0;
}

void
vol_fini(void *instance)
{
    vol_t *v = instance;
    if (v == NULL)
        return;
    v->closing = 1;
    if (v->collector_started)
        pthread_join(v->collector, NULL);
    for (size_t i = 0; i < v->n_allow; i++)
        free(v->allow[i]);
    free(v->allow);
    free(v->root);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

int
vol_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0)
        return code_of(err, BERTH_EUNKNOWN);
    vol_t *v = calloc(1, sizeof(*v));
    v->api = ic->api;
    v->log = ic->log;
    v->md = md.instance;
    v->mdo = md.ops;
    v->root = strdup(ic->root);
    pthread_mutex_init(&v->lock, NULL);
    const char *crash = getenv("BERTH_TEST_VOLUMES_CRASH");
    snprintf(v->crash, sizeof(v->crash), "%s", crash ? crash : "");
    if (load_allow(v, ic, err) < 0) {
        vol_fini(v);
        return code_of(err, BERTH_EINVAL);
    }
    /* what a kill -9 left goes in the background; create and remove wait on the lock per entry */
    v->collector_started = pthread_create(&v->collector, NULL, collector_main, v) == 0;
    if (!v->collector_started)
        ic->api->log(ic->log, BERTH_LOG_WARN, "volumes: no collector thread: leftovers stay");
    char allow[2048];
    allow_text(v, allow, sizeof(allow));
    ic->api->export_set(ic, "bind_allow", allow);
    *instance = v;
    return 0;
}

const berth_volume_v1_ops_t vol_ops = {
    .struct_size = sizeof(berth_volume_v1_ops_t),
    .create = vol_create,
    .mount_source = vol_mount_source,
    .bind_allowed = vol_bind_allowed,
    .remove = vol_remove,
};
