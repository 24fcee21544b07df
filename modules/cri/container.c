/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CRI's containers: CreateContainer, StartContainer, StopContainer, RemoveContainer, ListContainers,
 * ContainerStatus, UpdateContainerResources and ReopenContainerLog, as containerd 1.6's CRI does them
 * (pkg/cri/server/container_*.go) over containerd's services of the other modules (cri_call).
 *
 * Crash rule: the snapshot is made before the container record, and the record is deleted before the
 * snapshot; a kill -9 in between leaves an unreferenced snapshot (the collector's), never a record naming
 * a missing snapshot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "container.h"
#include "mountopts.h"
#include "userfiles.h"
#include "fsutil.h"

#define SPEC_PROCESS_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define SPEC_RESOURCES_URL "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
#define START_ERROR_EXIT 128
#define KILL_WAIT_MS 60000

/* ---- small helpers ------------------------------------------------------------------------------------ */

const char *
ctr_state_dir(cri_t *c, const char *id, char *out, size_t len)
{
    snprintf(out, len, "%s/containers/%s", c->cfg.state, id);
    return out;
}

static void
drop_err(cri_t *c, berth_error_t **e)
{
    c->api->error_free(*e);
    *e = NULL;
}

static int64_t
now_ns(void)
{
    return cri_now_ns();
}

/* Operations on one container that must not overlap (start, stop, remove): containerd's status flags. */
typedef struct busy {
    char id[65];
    struct busy *next;
} busy_t;
static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static busy_t *busy_list;

static int
busy_take(const char *id)
{
    pthread_mutex_lock(&busy_mu);
    for (busy_t *b = busy_list; b; b = b->next)
        if (strcmp(b->id, id) == 0) {
            pthread_mutex_unlock(&busy_mu);
            return -1;
        }
    busy_t *b = calloc(1, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->next = busy_list;
    busy_list = b;
    pthread_mutex_unlock(&busy_mu);
    return 0;
}

static void
busy_give(const char *id)
{
    pthread_mutex_lock(&busy_mu);
    for (busy_t **p = &busy_list; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            busy_t *b = *p;
            *p = b->next;
            free(b);
            break;
        }
    pthread_mutex_unlock(&busy_mu);
}

/* stdin FIFOs held open by berthd while stdin_once is false, so the process never reads EOF */
typedef struct stdin_hold {
    char id[65];
    int fd;
    struct stdin_hold *next;
} stdin_hold_t;
static stdin_hold_t *stdin_holds;

static void
stdin_hold(const char *id, int fd)
{
    stdin_hold_t *h = calloc(1, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", id);
    h->fd = fd;
    pthread_mutex_lock(&busy_mu);
    h->next = stdin_holds;
    stdin_holds = h;
    pthread_mutex_unlock(&busy_mu);
}

static void
stdin_release(const char *id)
{
    pthread_mutex_lock(&busy_mu);
    for (stdin_hold_t **p = &stdin_holds; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            stdin_hold_t *h = *p;
            *p = h->next;
            close(h->fd);
            free(h);
            break;
        }
    pthread_mutex_unlock(&busy_mu);
}

void
cri_container_stdin_done(cri_t *c, const char *id)
{
    (void)c;
    stdin_release(id);
}

static const char *
state_name(cri_container_state_t s)
{
    return runtime__v1__container_state__descriptor.values[s].name;
}

/* ---- containerd calls --------------------------------------------------------------------------------- */

int
ctr_task_kill(cri_t *c, const char *id, const char *exec_id, uint32_t sig, int all,
              berth_error_t **err)
{
    Containerd__Services__Tasks__V1__KillRequest req =
        CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
    req.container_id = (char *)id;
    req.exec_id = (char *)(exec_id ? exec_id : "");
    req.signal = sig;
    req.all = all;
    return cri_call(c, CRI_SVC_TASKS, "Kill", &req.base, NULL, NULL, NULL, err);
}

static int
task_delete(cri_t *c, const char *id, berth_error_t **err)
{
    Containerd__Services__Tasks__V1__DeleteTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
    req.container_id = (char *)id;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_TASKS, "Delete", &req.base, NULL, NULL, NULL, &e);
    if (rc == BERTH_ENOTFOUND)
        rc = 0;
    if (rc < 0 && err != NULL)
        *err = e, e = NULL;
    c->api->error_free(e);
    return rc;
}

static int
snapshot_remove(cri_t *c, const char *key, berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = (char *)key;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_SNAPSHOTS, "Remove", &req.base, NULL, NULL, NULL, &e);
    if (rc == BERTH_ENOTFOUND)
        rc = 0;
    if (rc < 0 && err != NULL)
        *err = e, e = NULL;
    c->api->error_free(e);
    return rc;
}

static int
lease_create(cri_t *c, const char *id, berth_error_t **err)
{
    Containerd__Services__Leases__V1__CreateRequest req =
        CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
    req.id = (char *)id;
    return cri_call(c, CRI_SVC_LEASES, "Create", &req.base, NULL, NULL, NULL, err);
}

static void
lease_delete(cri_t *c, const char *id)
{
    Containerd__Services__Leases__V1__DeleteRequest req =
        CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
    req.id = (char *)id;
    berth_error_t *e = NULL;
    cri_call(c, CRI_SVC_LEASES, "Delete", &req.base, NULL, NULL, NULL, &e);
    c->api->error_free(e);
}

static int
snapshot_mounts(cri_t *c, const char *key,
                Containerd__Services__Snapshots__V1__MountsResponse **out, berth_error_t **err)
{
    Containerd__Services__Snapshots__V1__MountsRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__MOUNTS_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = (char *)key;
    return cri_call(c, CRI_SVC_SNAPSHOTS, "Mounts", &req.base,
                    &containerd__services__snapshots__v1__mounts_response__descriptor,
                    (ProtobufCMessage **)out, NULL, err);
}

/* The container record's OCI spec (Containers.Get), parsed. */
json_object *ctr_record_spec(cri_t *c, const char *id, berth_error_t **err);
json_object *
ctr_record_spec(cri_t *c, const char *id, berth_error_t **err)
{
    Containerd__Services__Containers__V1__GetContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
    req.id = (char *)id;
    Containerd__Services__Containers__V1__GetContainerResponse *r = NULL;
    if (cri_call(c, CRI_SVC_CONTAINERS, "Get", &req.base,
                 &containerd__services__containers__v1__get_container_response__descriptor,
                 (ProtobufCMessage **)&r, NULL, err) < 0)
        return NULL;
    json_object *spec = NULL;
    if (r->container != NULL && r->container->spec != NULL) {
        char *t =
            strndup((const char *)r->container->spec->value.data, r->container->spec->value.len);
        spec = json_tokener_parse(t);
        free(t);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (spec == NULL)
        c->api->error_make(err, BERTH_EDATALOSS, "container \"%s\": its record has no spec", id);
    return spec;
}

/* ---- the rootfs's /etc/passwd and /etc/group (for user names), copied out of a read-only mount -------- */

static void
copy_beneath(cri_t *c, int rootfd, const char *rel, const char *to)
{
    berth_error_t *e = NULL;
    int in = c->api->open_beneath(rootfd, rel, O_RDONLY, 0, &e);
    c->api->error_free(e);
    if (in < 0)
        return;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char buf[65536];
    ssize_t n;
    size_t total = 0;
    while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0 && total < (4u << 20)) {
        if (write(out, buf, (size_t)n) != n)
            break;
        total += (size_t)n;
    }
    if (out >= 0)
        close(out);
    close(in);
}

/* etc/passwd and etc/group of the snapshot into dir, read from its layers (userfiles.c); -1: mount it. */
static int
copy_user_files_direct(const char *dir, Containerd__Types__Mount **mounts, size_t n)
{
    if (n != 1)
        return -1;
    return cri_user_files_from_layers(mounts[0]->type, mounts[0]->source,
                                      (const char *const *)mounts[0]->options, mounts[0]->n_options,
                                      dir);
}

/* Mounts the snapshot's mounts read-only on dir/rootfs and copies etc/passwd and etc/group next to it.
 * A failure leaves them out: numeric users still work, names then fail as unknown. */
static void
copy_user_files(cri_t *c, const char *dir, Containerd__Types__Mount **mounts, size_t n)
{
    if (n != 1)
        return; /* containerd's snapshotters give one mount (overlay or bind) */
    if (copy_user_files_direct(dir, mounts, n) == 0)
        return;
    char root[4200], pw[4200], gr[4200];
    snprintf(root, sizeof(root), "%s/rootfs", dir);
    snprintf(pw, sizeof(pw), "%s/passwd", dir);
    snprintf(gr, sizeof(gr), "%s/group", dir);
    mkdir(root, 0700);
    berth_mount_t m = {mounts[0]->type, mounts[0]->source, mounts[0]->options,
                       mounts[0]->n_options};
    char why[256];
    if (mountopts_mount(&m, root, MS_RDONLY, why, sizeof(why)) < 0) {
        c->api->log(c->log, BERTH_LOG_WARN, "cri: rootfs of %s for its users: %s", dir, why);
        rmdir(root);
        return;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        copy_beneath(c, fd, "etc/passwd", pw);
        copy_beneath(c, fd, "etc/group", gr);
        close(fd);
    }
    umount2(root, MNT_DETACH);
    rmdir(root);
}

/* ---- CreateContainer ---------------------------------------------------------------------------------- */

static char *
container_name(const Runtime__V1__ContainerConfig *cfg, const Runtime__V1__PodSandboxConfig *pod)
{
    const Runtime__V1__PodSandboxMetadata *pm = pod ? pod->metadata : NULL;
    char *out = NULL;
    if (asprintf(&out, "%s_%s_%s_%s_%u", cfg->metadata->name, pm ? pm->name : "",
                 pm ? pm->namespace_ : "", pm ? pm->uid : "", cfg->metadata->attempt) < 0)
        return NULL;
    return out;
}

static char *
cgroup_path(cri_t *c, const cri_sandbox_t *s, const Runtime__V1__PodSandboxConfig *pod,
            const char *id)
{
    const char *parent = s->cgroup_parent && *s->cgroup_parent ? s->cgroup_parent
                         : pod && pod->linux && pod->linux->cgroup_parent
                             ? pod->linux->cgroup_parent
                             : "";
    char *out = NULL;
    if (*parent == '\0')
        return strdup("");
    size_t pl = strlen(parent);
    if (strcmp(c->cfg.cgroup_driver, "systemd") == 0 ||
        (pl > 6 && strcmp(parent + pl - 6, ".slice") == 0)) {
        const char *slash = strrchr(parent, '/');
        if (asprintf(&out, "%s:cri-berth:%s", slash ? slash + 1 : parent, id) < 0)
            return NULL;
    } else if (asprintf(&out, "%s%s%s", parent, parent[pl - 1] == '/' ? "" : "/", id) < 0) {
        return NULL;
    }
    return out;
}

/* a deep copy of a message (the request's memory goes with the request) */
static ProtobufCMessage *
msg_copy(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    protobuf_c_message_pack(m, b);
    ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
    free(b);
    return out;
}

typedef struct create_state {
    char id[65];
    char *name;
    int reserved, leased, snapshot, record, dir;
    char lease[96];
    char dir_path[4096];
} create_state_t;

static void
create_undo(cri_t *c, create_state_t *cs)
{
    berth_error_t *e = NULL;
    if (cs->record && cri_record_delete(c, cs->id, &e) < 0)
        drop_err(c, &e);
    if (cs->snapshot && snapshot_remove(c, cs->id, &e) < 0)
        drop_err(c, &e);
    if (cs->leased)
        lease_delete(c, cs->lease);
    if (cs->dir)
        fs_remove_tree(cs->dir_path);
    if (cs->reserved)
        cri_store_release_name(c, cs->name);
}

/* The pre-create hook: handlers see the OCI spec (env, mounts, annotations) and the labels, may change
 * them or veto. */
/* The labels a handler left become the config's (the kind label is the record's, not the config's). */
static void
labels_from_kv(const berth_core_api_t *api, berth_kv_t *kv, Runtime__V1__ContainerConfig *cfg)
{
    for (size_t i = 0; i < cfg->n_labels; i++)
        protobuf_c_message_free_unpacked(&cfg->labels[i]->base, NULL);
    free(cfg->labels);
    size_t n = api->kv_size(kv), m = 0;
    cfg->labels = calloc(n ? n : 1, sizeof(*cfg->labels));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(api->kv_key_at(kv, i), CRI_LABEL_KIND) == 0)
            continue;
        Runtime__V1__ContainerConfig__LabelsEntry *e = malloc(sizeof(*e));
        runtime__v1__container_config__labels_entry__init(e);
        e->key = strdup(api->kv_key_at(kv, i));
        e->value = strdup(api->kv_value_at(kv, i));
        cfg->labels[m++] = e;
    }
    cfg->n_labels = m;
}

static int
fire_hook(cri_t *c, const char *id, const char *image, char **spec,
          Runtime__V1__ContainerConfig *cfg, berth_error_t **err)
{
    const berth_core_api_t *api = c->api;
    berth_hook_container_create_t p = {.struct_size = sizeof(p)};
    p.namespace_ = CRI_NAMESPACE;
    p.id = id;
    p.image = api->strdup(image);
    p.runtime = api->strdup(CRI_RUNTIME_NAME);
    p.snapshotter = api->strdup(c->cfg.snapshotter);
    p.snapshot_key = api->strdup(id);
    p.spec_json = api->strdup(*spec);
    p.labels = api->kv_new();
    for (size_t i = 0; i < cfg->n_labels; i++)
        api->kv_set(p.labels, cfg->labels[i]->key, cfg->labels[i]->value);
    api->kv_set(p.labels, CRI_LABEL_KIND, "container");
    int rc = api->hook_invoke(BERTH_HOOK_CRI_PRE_CREATE_CONTAINER, &p, err);
    if (rc == 0 && p.spec_json != NULL && strcmp(p.spec_json, *spec) != 0) {
        json_object *j = json_tokener_parse(p.spec_json);
        if (j == NULL) {
            rc = api->error_make(err, BERTH_EINVAL,
                                 "container \"%s\": a pre-create hook left a spec that is not JSON",
                                 id);
        } else {
            json_object_put(j);
            free(*spec);
            *spec = strdup(p.spec_json);
        }
    }
    if (rc == 0)
        labels_from_kv(api, p.labels, cfg);
    api->free(p.image);
    api->free(p.runtime);
    api->free(p.snapshotter);
    api->free(p.snapshot_key);
    api->free(p.spec_json);
    api->kv_free(p.labels);
    return rc;
}

static int
prepare_snapshot(cri_t *c, create_state_t *cs, const char *parent,
                 Containerd__Services__Snapshots__V1__PrepareSnapshotResponse **out,
                 berth_error_t **err)
{
    snprintf(cs->lease, sizeof(cs->lease), "cri-create-%s", cs->id);
    if (lease_create(c, cs->lease, err) < 0)
        return -1;
    cs->leased = 1;
    Containerd__Services__Snapshots__V1__PrepareSnapshotRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = cs->id;
    req.parent = (char *)parent;
    if (cri_call(c, CRI_SVC_SNAPSHOTS, "Prepare", &req.base,
                 &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
                 (ProtobufCMessage **)out, cs->lease, err) < 0)
        return -1;
    cs->snapshot = 1;
    return 0;
}

static int
create(cri_t *c, const Runtime__V1__CreateContainerRequest *r, cri_sandbox_t *s, create_state_t *cs,
       berth_error_t **err)
{
    const Runtime__V1__ContainerConfig *cfg = r->config;
    const Runtime__V1__PodSandboxConfig *pod = r->sandbox_config ? r->sandbox_config : s->config;
    cri_new_id(cs->id);
    if ((cs->name = container_name(cfg, pod)) == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "container name: out of memory");
    if (cri_store_reserve_name(c, cs->name, cs->id, err) < 0)
        return -1;
    cs->reserved = 1;

    ctr_image_t im;
    if (ctr_image_resolve(c, cfg->image->image, &im, err) < 0)
        return c->api->error_wrap(err, "container %s: image \"%s\"", cfg->metadata->name,
                                  cfg->image->image);
    int rc = -1;
    char *spec = NULL, *cg = NULL;
    Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *snap = NULL;
    ctr_state_dir(c, cs->id, cs->dir_path, sizeof(cs->dir_path));
    berth_error_t *e = NULL;
    if (c->api->mkdir_all(cs->dir_path, 0700, err) < 0)
        goto out;
    cs->dir = 1;
    if (prepare_snapshot(c, cs, im.chain_id, &snap, err) < 0)
        goto out;
    copy_user_files(c, cs->dir_path, snap->mounts, snap->n_mounts);
    (void)e;

    char pw[4200], gr[4200], shm[4200];
    snprintf(pw, sizeof(pw), "%s/passwd", cs->dir_path);
    snprintf(gr, sizeof(gr), "%s/group", cs->dir_path);
    snprintf(shm, sizeof(shm), "%s/sandboxes/%s/shm", c->cfg.state, s->id);
    cg = cgroup_path(c, s, pod, cs->id);
    uint32_t target_pid = 0;
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        cfg->linux ? cfg->linux->security_context : NULL;
    if (sc && sc->namespace_options &&
        sc->namespace_options->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
        cri_container_t *t = NULL;
        if (cri_container_find(c, sc->namespace_options->target_id, &t, err) < 0)
            goto out;
        target_pid = t->pid;
        cri_container_unref(t);
    }
    cri_container_spec_opts_t o = {
        .id = cs->id,
        .sandbox = s,
        .image_name = im.name,
        .cgroup_path = cg,
        .rootfs_owner_passwd = pw,
        .rootfs_owner_group = gr,
        .shm_path = shm,
        .target_pid = target_pid,
        .seccomp_profile_root = c->cfg.root,
    };
    char why[1024] = "";
    int src = cri_spec_container(cfg, pod, &im.cfg, &o, &spec, why, sizeof(why));
    if (src < 0) {
        c->api->error_make(err, src, "container %s: spec: %s", cfg->metadata->name, why);
        goto out;
    }
    Runtime__V1__ContainerConfig *own = (Runtime__V1__ContainerConfig *)msg_copy(&cfg->base);
    if (fire_hook(c, cs->id, im.name, &spec, own, err) < 0) {
        protobuf_c_message_free_unpacked(&own->base, NULL);
        goto out;
    }

    cri_container_t *k = cri_container_new();
    snprintf(k->id, sizeof(k->id), "%s", cs->id);
    snprintf(k->sandbox_id, sizeof(k->sandbox_id), "%s", s->id);
    free(k->name), k->name = strdup(cs->name);
    k->config = own;
    free(k->image_ref), k->image_ref = strdup(im.id);
    free(k->image_name), k->image_name = strdup(im.name);
    const char *dir = pod && pod->log_directory ? pod->log_directory : "";
    free(k->log_path);
    if (*dir && cfg->log_path && *cfg->log_path) {
        if (asprintf(&k->log_path, "%s/%s", dir, cfg->log_path) < 0)
            k->log_path = strdup("");
    } else {
        k->log_path = strdup("");
    }
    free(k->cgroup_path), k->cgroup_path = strdup(cg ? cg : "");
    k->state = CRI_CONTAINER_CREATED;
    k->created_ns = now_ns();
    if (cri_container_record_create(c, k, spec, c->cfg.snapshotter, cs->id, err) < 0) {
        cri_container_unref(k);
        goto out;
    }
    cs->record = 1;
    /* no status record yet: a container without one is CREATED when berthd restarts (store.c's
     * container_restore), so CreateContainer spends no transaction (two disk flushes) saying so */
    if (cri_store_container_add(c, k, err) < 0) {
        cri_container_unref(k);
        goto out;
    }
    cri_container_unref(k);
    rc = 0;
out:
    if (snap)
        protobuf_c_message_free_unpacked(&snap->base, NULL);
    free(spec);
    free(cg);
    ctr_image_free(&im);
    return rc;
}

/* What CreateContainer refuses before it makes anything (validate.c): a bad image reference, absurd
 * resources, a group without a user. */
static int
create_validate(cri_t *c, const Runtime__V1__CreateContainerRequest *r, berth_error_t **err)
{
    const Runtime__V1__ContainerConfig *cfg = r->config;
    char why[600];
    int rc;
    if ((rc = cri_validate_image_ref(cfg->image->image, why, sizeof(why))) < 0)
        return c->api->error_make(err, rc, "container %s: %s", cfg->metadata->name, why);
    char what[300];
    snprintf(what, sizeof(what), "%s", cfg->metadata->name);
    if (cfg->linux &&
        (rc = cri_validate_resources(cfg->linux->resources, what, why, sizeof(why))) < 0)
        return c->api->error_make(err, rc, "container %s", why);
    const Runtime__V1__LinuxContainerSecurityContext *sc =
        cfg->linux ? cfg->linux->security_context : NULL;
    if (sc && sc->run_as_group && !sc->run_as_user &&
        !(sc->run_as_username && *sc->run_as_username))
        return c->api->error_make(err, BERTH_EINVAL,
                                  "container %s: run_as_group is set without run_as_user",
                                  cfg->metadata->name);
    return 0;
}

/* The log file must stay under the pod's log directory (the request's pod config, else the stored). */
static int
create_validate_log(cri_t *c, const Runtime__V1__CreateContainerRequest *r, const cri_sandbox_t *s,
                    berth_error_t **err)
{
    const Runtime__V1__PodSandboxConfig *pod = r->sandbox_config ? r->sandbox_config : s->config;
    char why[600];
    int rc = cri_validate_log_path(pod ? pod->log_directory : NULL, r->config->log_path, why,
                                   sizeof(why));
    if (rc < 0)
        return c->api->error_make(err, rc, "container %s: %s", r->config->metadata->name, why);
    return 0;
}

int
cri_rpc_CreateContainer(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                        uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__CreateContainerRequest *r =
        runtime__v1__create_container_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "CreateContainer: a malformed request");
    int rc;
    cri_sandbox_t *s = NULL;
    if (r->config == NULL || r->config->metadata == NULL || !r->config->metadata->name ||
        !*r->config->metadata->name) {
        rc = c->api->error_make(err, BERTH_EINVAL,
                                "CreateContainer: config.metadata.name is required");
        goto done;
    }
    if (r->config->image == NULL || !r->config->image->image || !*r->config->image->image) {
        rc = c->api->error_make(err, BERTH_EINVAL, "container %s: config.image is required",
                                r->config->metadata->name);
        goto done;
    }
    if ((rc = create_validate(c, r, err)) < 0)
        goto done;
    if ((rc = cri_sandbox_find(c, r->pod_sandbox_id, &s, err)) < 0)
        goto done;
    if ((rc = create_validate_log(c, r, s, err)) < 0)
        goto done;
    pthread_mutex_lock(&c->lock);
    int ready = s->state == CRI_SANDBOX_READY;
    pthread_mutex_unlock(&c->lock);
    if (!ready) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                "pod sandbox \"%s\": not ready, no container can be created in it",
                                s->id);
        goto done;
    }
    create_state_t cs = {0};
    rc = create(c, r, s, &cs, err);
    if (rc < 0) {
        create_undo(c, &cs);
    } else {
        cri_store_release_name(c, cs.name);
        lease_delete(c, cs.lease); /* the record holds the snapshot now */
        cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT, cs.id,
                            s->id);
        Runtime__V1__CreateContainerResponse out = RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT;
        out.container_id = cs.id;
        cri_reply(c, &out.base, resp, resp_len);
    }
    free(cs.name);
done:
    cri_sandbox_unref(s);
    runtime__v1__create_container_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- StartContainer ----------------------------------------------------------------------------------- */

static int
make_stdin(cri_t *c, const cri_container_t *k, char *path, size_t len, berth_error_t **err)
{
    char dir[4096];
    ctr_state_dir(c, k->id, dir, sizeof(dir));
    if (c->api->mkdir_all(dir, 0700, err) < 0)
        return -1;
    snprintf(path, len, "%s/stdin", dir);
    unlink(path);
    if (mkfifo(path, 0600) < 0)
        return c->api->error_make(err, BERTH_EIO, "container \"%s\": stdin fifo: %s", k->id,
                                  strerror(errno));
    /* berthd holds it open (read-write never blocks): the process sees EOF only when it is closed */
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return c->api->error_make(err, BERTH_EIO, "container \"%s\": stdin fifo: %s", k->id,
                                  strerror(errno));
    stdin_hold(k->id, fd);
    return 0;
}

/* Where the container's output goes: kubelet's log file, or, for a client that named none (critest does
 * so), a CRI-format file of berthd's own in the container's state dir, so an attach still has it to follow.
 * That one is bounded: two files of 10 MiB. */
const char *
cri_container_output_path(cri_t *c, const cri_container_t *k, char *out, size_t len)
{
    char dir[4096];
    if (k->log_path && *k->log_path)
        snprintf(out, len, "%s", k->log_path);
    else
        snprintf(out, len, "%s/output.log", ctr_state_dir(c, k->id, dir, sizeof(dir)));
    return out;
}

static int
output_uri(cri_t *c, const cri_container_t *k, char *uri, size_t len, berth_error_t **err)
{
    char path[4200], dir[4096];
    cri_container_output_path(c, k, path, sizeof(path));
    if (k->log_path && *k->log_path) {
        snprintf(uri, len, "file://%s?format=cri", path);
        return 0;
    }
    if (c->api->mkdir_all(ctr_state_dir(c, k->id, dir, sizeof(dir)), 0700, err) < 0)
        return -1;
    snprintf(uri, len, "file://%s?format=cri&max-size=10485760&max-files=2", path);
    return 0;
}

static int
start(cri_t *c, cri_container_t *k, berth_error_t **err)
{
    const Runtime__V1__ContainerConfig *cfg = k->config;
    Containerd__Services__Snapshots__V1__MountsResponse *m = NULL;
    if (snapshot_mounts(c, k->id, &m, err) < 0)
        return -1;
    char uri[4400] = "", in[4200] = "";
    if (output_uri(c, k, uri, sizeof(uri), err) < 0) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return -1;
    }
    if (cfg->stdin && make_stdin(c, k, in, sizeof(in), err) < 0) {
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return -1;
    }
    Containerd__Services__Tasks__V1__CreateTaskRequest req =
        CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
    req.container_id = k->id;
    req.rootfs = m->mounts;
    req.n_rootfs = m->n_mounts;
    req.stdin = in;
    req.stdout = uri;
    req.stderr = cfg->tty ? "" : uri;
    req.terminal = cfg->tty;
    Containerd__Services__Tasks__V1__CreateTaskResponse *cr = NULL;
    int rc = cri_call(c, CRI_SVC_TASKS, "Create", &req.base,
                      &containerd__services__tasks__v1__create_task_response__descriptor,
                      (ProtobufCMessage **)&cr, NULL, err);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    if (rc < 0)
        return rc;
    uint32_t pid = cr->pid;
    protobuf_c_message_free_unpacked(&cr->base, NULL);
    Containerd__Services__Tasks__V1__StartRequest st =
        CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
    st.container_id = k->id;
    st.exec_id = "";
    if ((rc = cri_call(c, CRI_SVC_TASKS, "Start", &st.base, NULL, NULL, NULL, err)) < 0) {
        berth_error_t *e = NULL;
        ctr_task_kill(c, k->id, "", SIGKILL, 1, &e);
        drop_err(c, &e);
        task_delete(c, k->id, NULL);
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    /* an exit already seen (a process that ended at once) keeps EXITED */
    if (k->state == CRI_CONTAINER_CREATED) {
        k->state = CRI_CONTAINER_RUNNING;
        k->pid = pid;
    }
    k->started_ns = now_ns();
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int
cri_rpc_StartContainer(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__StartContainerRequest *r =
        runtime__v1__start_container_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "StartContainer: a malformed request");
    cri_container_t *k = NULL;
    cri_sandbox_t *s = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err), taken = 0;
    if (rc < 0)
        goto done;
    if (busy_take(k->id) < 0) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                "container \"%s\": another operation is under way", k->id);
        goto done;
    }
    taken = 1;
    pthread_mutex_lock(&c->lock);
    cri_container_state_t state = k->state;
    pthread_mutex_unlock(&c->lock);
    if (state != CRI_CONTAINER_CREATED) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "container \"%s\" is in %s state", k->id,
                                state_name(state));
        goto done;
    }
    if ((rc = cri_sandbox_find(c, k->sandbox_id, &s, err)) < 0)
        goto done;
    pthread_mutex_lock(&c->lock);
    int ready = s->state == CRI_SANDBOX_READY;
    pthread_mutex_unlock(&c->lock);
    if (!ready) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                "container \"%s\": pod sandbox \"%s\" is not ready", k->id, s->id);
        goto done;
    }
    rc = start(c, k, err);
    berth_error_t *e = NULL;
    if (rc < 0) {
        /* containerd: a container that failed to start is EXITED with 128 and StartError */
        pthread_mutex_lock(&c->lock);
        k->state = CRI_CONTAINER_EXITED;
        k->finished_ns = now_ns();
        k->exit_code = START_ERROR_EXIT;
        free(k->reason), k->reason = strdup("StartError");
        free(k->message),
            k->message = strdup(err && *err && (*err)->message ? (*err)->message : "");
        pthread_mutex_unlock(&c->lock);
        stdin_release(k->id);
    }
    if (cri_container_status_save(c, k, &e) < 0)
        drop_err(c, &e);
    if (rc == 0) {
        cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT, k->id,
                            k->sandbox_id);
        Runtime__V1__StartContainerResponse out = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
        cri_reply(c, &out.base, resp, resp_len);
    }
done:
    if (taken)
        busy_give(k->id);
    cri_sandbox_unref(s);
    cri_container_unref(k);
    runtime__v1__start_container_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- StopContainer ------------------------------------------------------------------------------------ */

static int
signal_number(const char *name)
{
    static const struct {
        const char *n;
        int s;
    } sigs[] = {
        {"HUP", SIGHUP},     {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
        {"USR1", SIGUSR1},   {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
        {"WINCH", SIGWINCH}, {"PWR", SIGPWR},
    };
    if (name == NULL || *name == '\0')
        return 0;
    if (strncmp(name, "SIGNAL_", 7) == 0) /* runtime.v1.Signal's value names: SIGNAL_SIGTERM */
        name += 7;
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    char *end;
    long v = strtol(name, &end, 10);
    if (*end == '\0' && v > 0 && v < 65)
        return (int)v;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (strcasecmp(sigs[i].n, name) == 0)
            return sigs[i].s;
    return 0;
}

/* The stop signal: the config's (CRI 1.33+), else the image's STOPSIGNAL, else SIGTERM. */
static int
stop_signal(cri_t *c, const cri_container_t *k)
{
    const Runtime__V1__ContainerConfig *cfg = k->config;
    if (cfg && cfg->stop_signal != RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &runtime__v1__signal__descriptor, cfg->stop_signal);
        int s = v ? signal_number(v->name) : 0;
        if (s > 0)
            return s;
    }
    ctr_image_t im;
    berth_error_t *e = NULL;
    int sig = SIGTERM;
    if (ctr_image_resolve(c, k->image_ref, &im, &e) == 0) {
        int s = signal_number(im.cfg.stop_signal);
        if (s > 0)
            sig = s;
        ctr_image_free(&im);
    }
    c->api->error_free(e);
    return sig;
}

static int
is_running(cri_t *c, cri_container_t *k)
{
    pthread_mutex_lock(&c->lock);
    int r = k->state == CRI_CONTAINER_RUNNING;
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* Waits for the exit the core's subscription records; a kill that finds no process means it is gone
 * or going, so the state is polled a little too. */
static int
wait_exited(cri_t *c, cri_container_t *k, cri_exit_waiter_t *w, int64_t ms)
{
    int64_t step = 100, waited = 0;
    while (is_running(c, k)) {
        if (ms >= 0 && waited >= ms)
            return BERTH_ETIMEDOUT;
        int64_t t = ms < 0 ? step : (ms - waited < step ? ms - waited : step);
        if (cri_exit_wait(w, t, NULL, NULL) == 0) {
            /* fired: the store's state follows on the same event */
            for (int i = 0; i < 50 && is_running(c, k); i++)
                usleep(2000);
            return 0;
        }
        waited += t;
    }
    return 0;
}

static int
stop(cri_t *c, cri_container_t *k, int64_t timeout_s, berth_error_t **err)
{
    if (!is_running(c, k))
        return 0;
    cri_exit_waiter_t *w = cri_exit_wait_register(c, k->id, "");
    int rc = 0;
    berth_error_t *e = NULL;
    if (timeout_s > 0 && is_running(c, k)) {
        int sig = stop_signal(c, k);
        if (ctr_task_kill(c, k->id, "", (uint32_t)sig, 0, &e) < 0)
            drop_err(c, &e);
        if (wait_exited(c, k, w, timeout_s * 1000) == 0)
            goto out;
    }
    if (is_running(c, k)) {
        if (ctr_task_kill(c, k->id, "", SIGKILL, 1, &e) < 0)
            drop_err(c, &e);
        if (wait_exited(c, k, w, KILL_WAIT_MS) < 0)
            rc = c->api->error_make(err, BERTH_ETIMEDOUT,
                                    "container \"%s\": still running %d s after SIGKILL", k->id,
                                    KILL_WAIT_MS / 1000);
    }
out:
    cri_exit_wait_cancel(w);
    stdin_release(k->id);
    return rc;
}

int
cri_rpc_StopContainer(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                      uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__StopContainerRequest *r =
        runtime__v1__stop_container_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "StopContainer: a malformed request");
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err);
    if (rc == 0)
        rc = stop(c, k, r->timeout, err);
    if (rc == 0) {
        Runtime__V1__StopContainerResponse out = RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT;
        cri_reply(c, &out.base, resp, resp_len);
    }
    cri_container_unref(k);
    runtime__v1__stop_container_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- RemoveContainer ---------------------------------------------------------------------------------- */

int
cri_rpc_RemoveContainer(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                        uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__RemoveContainerRequest *r =
        runtime__v1__remove_container_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "RemoveContainer: a malformed request");
    cri_container_t *k = NULL;
    berth_error_t *e = NULL;
    int rc = 0, taken = 0;
    if ((rc = cri_container_find(c, r->container_id, &k, &e)) == BERTH_ENOTFOUND) {
        /* idempotent: what is not there is removed */
        drop_err(c, &e);
        rc = 0;
        goto reply;
    }
    if (rc < 0) { /* no id, an ambiguous prefix: nothing was removed, say so */
        *err = e;
        goto done;
    }
    if (busy_take(k->id) < 0) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                "container \"%s\": another operation is under way", k->id);
        goto done;
    }
    taken = 1;
    if ((rc = stop(c, k, 0, err)) < 0)
        goto done;
    if ((rc = task_delete(c, k->id, err)) < 0)
        goto done;
    /* the record first, the snapshot it names after */
    if ((rc = cri_record_delete(c, k->id, err)) < 0)
        goto done;
    cri_store_container_remove(c, k->id);
    if (snapshot_remove(c, k->id, &e) < 0) {
        c->api->log(c->log, BERTH_LOG_WARN, "cri: container %s: snapshot: %s", k->id,
                    e && e->message ? e->message : "?");
        drop_err(c, &e);
    }
    char dir[4096];
    fs_remove_tree(ctr_state_dir(c, k->id, dir, sizeof(dir)));
    cri_events_announce(c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT, k->id,
                        k->sandbox_id);
reply:;
    Runtime__V1__RemoveContainerResponse out = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
    cri_reply(c, &out.base, resp, resp_len);
done:
    if (taken)
        busy_give(k->id);
    cri_container_unref(k);
    runtime__v1__remove_container_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- ListContainers ----------------------------------------------------------------------------------- */

typedef struct ids {
    char (*v)[65];
    size_t n, cap;
} ids_t;

static int
collect_id(void *user, cri_container_t *k)
{
    ids_t *ids = user;
    if (ids->n == ids->cap) {
        ids->cap = ids->cap ? 2 * ids->cap : 16;
        ids->v = realloc(ids->v, ids->cap * sizeof(*ids->v));
    }
    snprintf(ids->v[ids->n++], 65, "%s", k->id);
    return 0;
}

/* every container, each with a reference (cri_container_unref each, free the array) */
static cri_container_t **
all_containers(cri_t *c, size_t *n)
{
    ids_t ids = {0};
    cri_container_foreach(c, collect_id, &ids);
    cri_container_t **out = calloc(ids.n + 1, sizeof(*out));
    *n = 0;
    for (size_t i = 0; i < ids.n; i++) {
        berth_error_t *e = NULL;
        if (cri_container_find(c, ids.v[i], &out[*n], &e) == 0)
            (*n)++;
        else
            c->api->error_free(e);
    }
    free(ids.v);
    return out;
}

static int
labels_match(const Runtime__V1__ContainerConfig *cfg, size_t n,
             Runtime__V1__ContainerFilter__LabelSelectorEntry **sel)
{
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (size_t j = 0; cfg && j < cfg->n_labels && !ok; j++)
            ok = strcmp(cfg->labels[j]->key, sel[i]->key) == 0 &&
                 strcmp(cfg->labels[j]->value, sel[i]->value) == 0;
        if (!ok)
            return 0;
    }
    return 1;
}

static int
prefix_of(const char *want, const char *id)
{
    return want == NULL || *want == '\0' || strncmp(id, want, strlen(want)) == 0;
}

int
cri_rpc_ListContainers(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ListContainersRequest *r =
        runtime__v1__list_containers_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ListContainers: a malformed request");
    const Runtime__V1__ContainerFilter *f = r->filter;
    size_t n = 0;
    cri_container_t **ks = all_containers(c, &n);
    Runtime__V1__Container *items = calloc(n + 1, sizeof(*items));
    Runtime__V1__Container **ptrs = calloc(n + 1, sizeof(*ptrs));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        cri_container_t *k = ks[i];
        pthread_mutex_lock(&c->lock);
        cri_container_state_t state = k->state;
        pthread_mutex_unlock(&c->lock);
        if (f != NULL) {
            if (!prefix_of(f->id, k->id) || !prefix_of(f->pod_sandbox_id, k->sandbox_id))
                continue;
            if (f->state != NULL && f->state->state != (Runtime__V1__ContainerState)state)
                continue;
            if (!labels_match(k->config, f->n_label_selector, f->label_selector))
                continue;
        }
        Runtime__V1__Container *it = &items[m];
        runtime__v1__container__init(it);
        it->id = k->id;
        it->pod_sandbox_id = k->sandbox_id;
        it->metadata = k->config ? k->config->metadata : NULL;
        it->image = k->config ? k->config->image : NULL;
        it->image_ref = k->image_ref;
        it->image_id = k->image_ref;
        it->state = (Runtime__V1__ContainerState)state;
        it->created_at = k->created_ns;
        if (k->config) {
            it->n_labels = k->config->n_labels;
            it->labels = (Runtime__V1__Container__LabelsEntry **)k->config->labels;
            it->n_annotations = k->config->n_annotations;
            it->annotations = (Runtime__V1__Container__AnnotationsEntry **)k->config->annotations;
        }
        ptrs[m++] = it;
    }
    Runtime__V1__ListContainersResponse out = RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT;
    out.containers = ptrs;
    out.n_containers = m;
    cri_reply(c, &out.base, resp, resp_len);
    free(items);
    free(ptrs);
    for (size_t i = 0; i < n; i++)
        cri_container_unref(ks[i]);
    free(ks);
    runtime__v1__list_containers_request__free_unpacked(r, NULL);
    return 0;
}

/* ---- ContainerStatus ---------------------------------------------------------------------------------- */

/* A protobuf-c message as Go's encoding/json writes the CRI's generated structs (containerd's verbose
 * "config"): fields by their proto names, empty ones left out (omitempty), enums as numbers, maps as
 * objects. */
static json_object *pb_json(const ProtobufCMessage *m);

static json_object *
pb_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int32_t *)p ? json_object_new_int(*(const int32_t *)p) : NULL;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return *(const uint32_t *)p ? json_object_new_int64(*(const uint32_t *)p) : NULL;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return *(const int64_t *)p ? json_object_new_int64(*(const int64_t *)p) : NULL;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p ? json_object_new_uint64(*(const uint64_t *)p) : NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p != 0 ? json_object_new_double(*(const float *)p) : NULL;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p != 0 ? json_object_new_double(*(const double *)p) : NULL;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p ? json_object_new_boolean(1) : NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *v = *(char *const *)p;
        return v && *v ? json_object_new_string(v) : NULL;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *v = *(ProtobufCMessage *const *)p;
        return v ? pb_json(v) : NULL;
    }
    default: /* bytes: none in the CRI's configs */
        return NULL;
    }
}

static int
is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);
    return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

static json_object *
pb_json(const ProtobufCMessage *m)
{
    json_object *o = json_object_new_object();
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        json_object *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            void *const *items = *(void *const *)base;
            int map = f->type == PROTOBUF_C_TYPE_MESSAGE &&
                      is_map_entry((const ProtobufCMessageDescriptor *)f->descriptor);
            if (n == 0)
                continue;
            v = map ? json_object_new_object() : json_object_new_array();
            for (size_t j = 0; j < n; j++) {
                if (map) {
                    const ProtobufCMessage *e = ((ProtobufCMessage *const *)items)[j];
                    const char *ek =
                        *(char *const *)((const char *)e + e->descriptor->fields[0].offset);
                    json_object *ev = pb_value(&e->descriptor->fields[1],
                                               (const char *)e + e->descriptor->fields[1].offset);
                    json_object_object_add(v, ek ? ek : "", ev ? ev : json_object_new_string(""));
                    continue;
                }
                size_t sz =
                    f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
                        ? sizeof(void *)
                    : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
                            f->type == PROTOBUF_C_TYPE_SFIXED64 ||
                            f->type == PROTOBUF_C_TYPE_UINT64 ||
                            f->type == PROTOBUF_C_TYPE_FIXED64 || f->type == PROTOBUF_C_TYPE_DOUBLE
                        ? 8
                    : f->type == PROTOBUF_C_TYPE_BOOL ? sizeof(protobuf_c_boolean)
                                                      : 4;
                json_object *ev = pb_value(f, (const char *)items + j * sz);
                /* in a list a zero stays (Go keeps it) */
                json_object_array_add(v, ev ? ev : json_object_new_int(0));
            }
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                   f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset &&
                   !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset)) {
            continue;
        } else {
            v = pb_value(f, base);
        }
        if (v != NULL)
            json_object_object_add(o, f->name, v);
    }
    return o;
}

/* containerd's ContainerInfo (the "info" key of a verbose status), from the record's spec */
static char *
verbose_info(cri_t *c, cri_container_t *k, uint32_t pid, json_object *spec)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sandboxID", json_object_new_string(k->sandbox_id));
    json_object_object_add(o, "pid", json_object_new_int64(pid));
    json_object_object_add(o, "removing", json_object_new_boolean(0));
    json_object_object_add(o, "snapshotKey", json_object_new_string(k->id));
    json_object_object_add(o, "snapshotter", json_object_new_string(c->cfg.snapshotter));
    json_object_object_add(o, "runtimeType", json_object_new_string(CRI_RUNTIME_NAME));
    json_object_object_add(o, "runtimeOptions", NULL);
    pthread_mutex_lock(&c->lock); /* the config's resources change under it */
    json_object *cfg = k->config ? pb_json(&k->config->base) : NULL;
    pthread_mutex_unlock(&c->lock);
    json_object_object_add(o, "config", cfg);
    json_object_object_add(o, "runtimeSpec", spec ? json_object_get(spec) : NULL);
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* toCRIContainerUser: the process's uid, gid and additional gids as the spec has them */
static void
user_from_spec(json_object *spec, Runtime__V1__ContainerUser *u,
               Runtime__V1__LinuxContainerUser *lu)
{
    json_object *proc = spec ? json_object_object_get(spec, "process") : NULL;
    json_object *us = proc ? json_object_object_get(proc, "user") : NULL;
    if (us == NULL)
        return; /* an empty ContainerUser, as containerd's when the spec has no process */
    lu->uid = json_object_get_int64(json_object_object_get(us, "uid"));
    lu->gid = json_object_get_int64(json_object_object_get(us, "gid"));
    json_object *g = json_object_object_get(us, "additionalGids");
    size_t n = g && json_object_is_type(g, json_type_array) ? json_object_array_length(g) : 0;
    lu->supplemental_groups = n ? calloc(n, sizeof(int64_t)) : NULL;
    for (size_t i = 0; i < n; i++)
        lu->supplemental_groups[i] = json_object_get_int64(json_object_array_get_idx(g, i));
    lu->n_supplemental_groups = n;
    u->linux = lu;
}

/* The stop signal a status shows: the config's, else the image's STOPSIGNAL, else SIGTERM. */
static Runtime__V1__Signal
status_stop_signal(const cri_container_t *k, const cri_image_t *ci)
{
    if (k->config && k->config->stop_signal != RUNTIME__V1__SIGNAL__SIGNAL_RUNTIME_DEFAULT)
        return k->config->stop_signal;
    int sig = 0;
    json_object *ic = ci && ci->config_json ? json_tokener_parse(ci->config_json) : NULL, *ss;
    json_object *cc = ic ? json_object_object_get(ic, "config") : NULL;
    if (cc && json_object_object_get_ex(cc, "StopSignal", &ss))
        sig = signal_number(json_object_get_string(ss));
    json_object_put(ic);
    if (sig <= 0)
        sig = SIGTERM;
    char name[32];
    snprintf(name, sizeof(name), "SIGNAL_SIG%s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "TERM");
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value_by_name(&runtime__v1__signal__descriptor, name);
    return v ? (Runtime__V1__Signal)v->value : RUNTIME__V1__SIGNAL__SIGNAL_SIGTERM;
}

int
cri_rpc_ContainerStatus(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                        uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ContainerStatusRequest *r =
        runtime__v1__container_status_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ContainerStatus: a malformed request");
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err);
    if (rc < 0)
        goto done;
    const Runtime__V1__ContainerConfig *cfg = k->config;
    Runtime__V1__ContainerStatus st = RUNTIME__V1__CONTAINER_STATUS__INIT;
    Runtime__V1__ImageSpec img = RUNTIME__V1__IMAGE_SPEC__INIT;
    Runtime__V1__ContainerResources res = RUNTIME__V1__CONTAINER_RESOURCES__INIT;
    Runtime__V1__ContainerUser cu = RUNTIME__V1__CONTAINER_USER__INIT;
    Runtime__V1__LinuxContainerUser lu = RUNTIME__V1__LINUX_CONTAINER_USER__INIT;
    Runtime__V1__LinuxContainerResources *lres = NULL;
    st.id = k->id;
    st.metadata = cfg ? cfg->metadata : NULL;
    pthread_mutex_lock(&c->lock);
    st.state = (Runtime__V1__ContainerState)k->state;
    st.created_at = k->created_ns;
    st.started_at = k->started_ns;
    st.finished_at = k->finished_ns;
    st.exit_code = k->exit_code;
    char *reason = strdup(k->reason ? k->reason : ""),
         *message = strdup(k->message ? k->message : "");
    uint32_t pid = k->pid;
    if (cfg && cfg->linux && cfg->linux->resources) /* UpdateContainerResources swaps it */
        lres = (Runtime__V1__LinuxContainerResources *)msg_copy(&cfg->linux->resources->base);
    pthread_mutex_unlock(&c->lock);
    /* containerd 1.6: an exit without a reason reads Completed (0) or Error */
    if (st.state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED && *reason == '\0') {
        free(reason);
        reason = strdup(st.exit_code == 0 ? "Completed" : "Error");
    }
    st.reason = reason;
    st.message = message;
    /* containerd: image = the image's first repo tag (else the config's), image_ref = its first repo
     * digest (else its id), image_id = its id */
    cri_image_t *ci = NULL;
    berth_error_t *e = NULL;
    if (cri_image_find(c, k->image_ref, &ci, &e) < 0)
        drop_err(c, &e);
    img.image = ci && ci->tags && ci->tags[0]            ? ci->tags[0]
                : cfg && cfg->image && cfg->image->image ? cfg->image->image
                                                         : k->image_name;
    st.image = &img;
    st.image_ref = ci && ci->digests && ci->digests[0] ? ci->digests[0] : k->image_ref;
    st.image_id = k->image_ref;
    if (cfg) {
        st.n_labels = cfg->n_labels;
        st.labels = (Runtime__V1__ContainerStatus__LabelsEntry **)cfg->labels;
        st.n_annotations = cfg->n_annotations;
        st.annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)cfg->annotations;
        st.n_mounts = cfg->n_mounts;
        st.mounts = cfg->mounts;
    }
    if (lres) {
        res.linux = lres;
        st.resources = &res;
    }
    st.log_path = k->log_path;
    json_object *spec = ctr_record_spec(c, k->id, &e);
    if (spec == NULL)
        drop_err(c, &e);
    user_from_spec(spec, &cu, &lu);
    st.user = &cu;
    st.stop_signal = status_stop_signal(k, ci);
    Runtime__V1__ContainerStatusResponse out = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT;
    out.status = &st;
    Runtime__V1__ContainerStatusResponse__InfoEntry info =
        RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INFO_ENTRY__INIT;
    Runtime__V1__ContainerStatusResponse__InfoEntry *infop = &info;
    char *v = NULL;
    if (r->verbose) {
        v = verbose_info(c, k, pid, spec);
        info.key = "info";
        info.value = v;
        out.info = &infop;
        out.n_info = 1;
    }
    cri_reply(c, &out.base, resp, resp_len);
    free(v);
    free(reason);
    free(message);
    free(lu.supplemental_groups);
    json_object_put(spec);
    cri_image_free(ci);
    if (lres)
        protobuf_c_message_free_unpacked(&lres->base, NULL);
done:
    cri_container_unref(k);
    runtime__v1__container_status_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- UpdateContainerResources ------------------------------------------------------------------------- */

/* containerd's WithResources on the record's spec: each field the request gives replaces the spec's
 * (cri_spec_resources leaves out what it does not give), hugepage limits are appended, unified keys added. */
static void
merge_json(json_object *into, json_object *from)
{
    json_object_object_foreach(from, key, val)
    {
        json_object *have = json_object_object_get(into, key);
        if (have != NULL && json_object_is_type(have, json_type_object) &&
            json_object_is_type(val, json_type_object)) {
            merge_json(have, val);
        } else if (have != NULL && json_object_is_type(have, json_type_array) &&
                   json_object_is_type(val, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(val); i++)
                json_object_array_add(have, json_object_get(json_object_array_get_idx(val, i)));
        } else {
            json_object_object_add(into, key, json_object_get(val));
        }
    }
}

/* The record's spec text (malloc'd) as it is, and the spec with lr merged into linux.resources. */
static int
spec_with_resources(cri_t *c, const char *id, const Runtime__V1__LinuxContainerResources *lr,
                    char **old_text, char **new_text, berth_error_t **err)
{
    Containerd__Services__Containers__V1__GetContainerRequest g =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
    g.id = (char *)id;
    Containerd__Services__Containers__V1__GetContainerResponse *r = NULL;
    if (cri_call(c, CRI_SVC_CONTAINERS, "Get", &g.base,
                 &containerd__services__containers__v1__get_container_response__descriptor,
                 (ProtobufCMessage **)&r, NULL, err) < 0)
        return -1;
    const Containerd__Services__Containers__V1__Container *rec = r->container;
    *old_text = rec && rec->spec
                    ? strndup((const char *)rec->spec->value.data, rec->spec->value.len)
                    : NULL;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    json_object *spec = *old_text ? json_tokener_parse(*old_text) : NULL;
    if (spec == NULL || !json_object_is_type(spec, json_type_object)) {
        json_object_put(spec);
        free(*old_text), *old_text = NULL;
        return c->api->error_make(err, BERTH_EDATALOSS, "container \"%s\": its record has no spec",
                                  id);
    }
    char *rj = cri_spec_resources(lr);
    json_object *res = json_tokener_parse(rj);
    free(rj);
    json_object *lin = json_object_object_get(spec, "linux"), *have = NULL;
    if (lin == NULL) {
        lin = json_object_new_object();
        json_object_object_add(spec, "linux", lin);
    }
    if (!json_object_object_get_ex(lin, "resources", &have) || have == NULL) {
        have = json_object_new_object();
        json_object_object_add(lin, "resources", have);
    }
    if (res != NULL)
        merge_json(have, res);
    *new_text = strdup(json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN));
    json_object_put(res);
    json_object_put(spec);
    return 0;
}

/* The linux.resources of a spec's text, as Tasks.Update takes them (containerd: getResources(newSpec)). */
static char *
spec_resources_text(const char *spec_text)
{
    json_object *spec = json_tokener_parse(spec_text), *res = NULL;
    json_object *lin = spec ? json_object_object_get(spec, "linux") : NULL;
    char *out = NULL;
    if (lin && json_object_object_get_ex(lin, "resources", &res) && res)
        out = strdup(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
    json_object_put(spec);
    return out ? out : strdup("{}");
}

/* The CRI config with lr merged into its resources as the spec has them: protobuf's own merge (the old
 * resources' encoding followed by the request's: what the request gives replaces, hugepage limits are
 * appended), a unified key given twice keeping the request's value. A new message (free_unpacked). */
static Runtime__V1__ContainerConfig *
config_with_resources(const Runtime__V1__ContainerConfig *cfg,
                      const Runtime__V1__LinuxContainerResources *lr)
{
    Runtime__V1__ContainerConfig *out = (Runtime__V1__ContainerConfig *)msg_copy(&cfg->base);
    if (out == NULL)
        return NULL;
    const Runtime__V1__LinuxContainerResources *old = out->linux ? out->linux->resources : NULL;
    size_t n1 = old ? protobuf_c_message_get_packed_size(&old->base) : 0;
    size_t n2 = protobuf_c_message_get_packed_size(&lr->base);
    uint8_t *b = malloc(n1 + n2 + 1);
    if (old)
        protobuf_c_message_pack(&old->base, b);
    protobuf_c_message_pack(&lr->base, b + n1);
    Runtime__V1__LinuxContainerResources *m =
        runtime__v1__linux_container_resources__unpack(NULL, n1 + n2, b);
    free(b);
    if (m == NULL) {
        protobuf_c_message_free_unpacked(&out->base, NULL);
        return NULL;
    }
    for (size_t i = 0; i < m->n_unified; i++)
        for (size_t j = i + 1; j < m->n_unified; j++)
            if (strcmp(m->unified[i]->key, m->unified[j]->key) == 0) {
                /* the later one wins: drop the earlier */
                protobuf_c_message_free_unpacked(&m->unified[i]->base, NULL);
                memmove(&m->unified[i], &m->unified[i + 1],
                        (m->n_unified - i - 1) * sizeof(*m->unified));
                m->n_unified--, i--;
                break;
            }
    if (out->linux == NULL) {
        out->linux = calloc(1, sizeof(*out->linux));
        runtime__v1__linux_container_config__init(out->linux);
    }
    if (out->linux->resources)
        protobuf_c_message_free_unpacked(&out->linux->resources->base, NULL);
    out->linux->resources = m;
    return out;
}

/* Operations on one container are serialized (busy_take): an update waits for a start under way, so the
 * task it makes has the new spec or is updated itself (containerd's Status.UpdateSync). */
static int
busy_wait_take(const char *id)
{
    for (int i = 0; i < 1000; i++) {
        if (busy_take(id) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int
task_update(cri_t *c, const char *id, const char *spec_text, berth_error_t **err)
{
    char *json = spec_resources_text(spec_text);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = SPEC_RESOURCES_URL;
    any.value.data = (uint8_t *)json;
    any.value.len = strlen(json);
    Containerd__Services__Tasks__V1__UpdateTaskRequest u =
        CONTAINERD__SERVICES__TASKS__V1__UPDATE_TASK_REQUEST__INIT;
    u.container_id = (char *)id;
    u.resources = &any;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_TASKS, "Update", &u.base, NULL, NULL, NULL, &e);
    free(json);
    if (rc == BERTH_ENOTFOUND) /* the task ended already: the spec is what counts */
        rc = 0;
    if (rc < 0)
        *err = e, e = NULL;
    c->api->error_free(e);
    return rc;
}

/* containerd's updateContainerResources: the record's spec (and here the CRI config in its extension,
 * which ContainerStatus and a berthd restart read) first, then the running task; a task update that fails
 * puts the old record back. A container not running has only its record changed: its task, when made,
 * takes the spec. */
static int
update_resources(cri_t *c, cri_container_t *k, const Runtime__V1__LinuxContainerResources *lr,
                 berth_error_t **err)
{
    char *old_spec = NULL, *new_spec = NULL;
    if (spec_with_resources(c, k->id, lr, &old_spec, &new_spec, err) < 0)
        return -1;
    Runtime__V1__ContainerConfig *ncfg = k->config ? config_with_resources(k->config, lr) : NULL;
    int rc = cri_container_record_update(c, k, ncfg, new_spec, err);
    if (rc == 0 && is_running(c, k) && (rc = task_update(c, k->id, new_spec, err)) < 0) {
        berth_error_t *e = NULL;
        if (cri_container_record_update(c, k, NULL, old_spec, &e) < 0) {
            c->api->log(c->log, BERTH_LOG_WARN, "cri: container %s: putting the old spec back: %s",
                        k->id, e && e->message ? e->message : "?");
            drop_err(c, &e);
        }
    }
    if (rc == 0 && ncfg != NULL) {
        /* the old resources may be read by a status being made (under the lock): swapped and freed
         * under it */
        pthread_mutex_lock(&c->lock);
        if (k->config->linux == NULL) {
            k->config->linux = calloc(1, sizeof(*k->config->linux));
            runtime__v1__linux_container_config__init(k->config->linux);
        }
        Runtime__V1__LinuxContainerResources *old = k->config->linux->resources;
        k->config->linux->resources = ncfg->linux->resources;
        ncfg->linux->resources = old;
        pthread_mutex_unlock(&c->lock);
    }
    if (ncfg != NULL)
        protobuf_c_message_free_unpacked(&ncfg->base, NULL);
    free(old_spec);
    free(new_spec);
    return rc;
}

int
cri_rpc_UpdateContainerResources(void *user, const char *namespace_, const uint8_t *req,
                                 size_t req_len, uint8_t **resp, size_t *resp_len,
                                 berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__UpdateContainerResourcesRequest *r =
        runtime__v1__update_container_resources_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "UpdateContainerResources: a malformed request");
    char why[512]; /* refused before the container is looked at (validate.c) */
    int bad = cri_validate_resources(r->linux, r->container_id, why, sizeof(why));
    if (bad < 0) {
        runtime__v1__update_container_resources_request__free_unpacked(r, NULL);
        return c->api->error_make(err, bad, "container %s", why);
    }
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err), taken = 0;
    if (rc < 0)
        goto done;
    if (busy_wait_take(k->id) < 0) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION,
                                "container \"%s\": another operation is under way", k->id);
        goto done;
    }
    taken = 1;
    if (r->linux != NULL && (rc = update_resources(c, k, r->linux, err)) < 0) {
        c->api->error_wrap(err, "container \"%s\": update resources", k->id);
        goto done;
    }
    Runtime__V1__UpdateContainerResourcesResponse out =
        RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT;
    cri_reply(c, &out.base, resp, resp_len);
done:
    if (taken)
        busy_give(k->id);
    cri_container_unref(k);
    runtime__v1__update_container_resources_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}

/* ---- ReopenContainerLog ------------------------------------------------------------------------------- */

int
cri_rpc_ReopenContainerLog(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                           uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ReopenContainerLogRequest *r =
        runtime__v1__reopen_container_log_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ReopenContainerLog: a malformed request");
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err);
    if (rc < 0)
        goto done;
    if (!is_running(c, k)) {
        rc = c->api->error_make(err, BERTH_EPRECONDITION, "container \"%s\" is not running", k->id);
        goto done;
    }
    /* the shim writes the log; when kubelet moved it away, its next write finds the path naming another
     * file (shimlog.c) and goes there: the new file is made here, so it exists when this answers */
    if (k->log_path && *k->log_path) {
        int fd = open(k->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
            rc = c->api->error_make(err, BERTH_EIO, "container \"%s\": log %s: %s", k->id,
                                    k->log_path, strerror(errno));
            goto done;
        }
        close(fd);
    }
    Runtime__V1__ReopenContainerLogResponse out = RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT;
    cri_reply(c, &out.base, resp, resp_len);
done:
    cri_container_unref(k);
    runtime__v1__reopen_container_log_request__free_unpacked(r, NULL);
    return rc < 0 ? rc : 0;
}
