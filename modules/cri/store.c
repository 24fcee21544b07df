/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod and container store: in memory under cri_t.lock, persisted as containerd does it. The container
 * record (Containers service, namespace k8s.io) is the reference: created last, deleted first; its
 * extension holds the CRI config and the fields that never change (JSON). The mutable fields live in a
 * metadata record of kind "cri.status". cri_store_open rebuilds everything from both after a restart and
 * asks the Tasks service which processes still run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cri.h"
#include "services/containers/v1/containers.pb-c.h"
#include "services/tasks/v1/tasks.pb-c.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define SANDBOX_META_URL "github.com/containerd/containerd/pkg/cri/store/sandbox/Metadata"
#define CONTAINER_META_URL "github.com/containerd/containerd/pkg/cri/store/container/Metadata"

typedef struct store {
    char **names; /* reserved while a pod or container is being made: "<name>\t<id>" */
    size_t n_names;
    cri_sandbox_t **pods;
    size_t n_pods, cap_pods;
    cri_container_t **ctrs;
    size_t n_ctrs, cap_ctrs;
} store_t;

/* ---- small helpers ---------------------------------------------------------------------------------- */

int64_t
cri_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
cri_new_id(char out[65])
{
    unsigned char b[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof(b)) /* never expected: still unique enough with the time mixed in */
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(rand() ^ (cri_now_ns() >> (i % 8)));
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static char *
xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

static void
strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

cri_sandbox_t *
cri_sandbox_new(void)
{
    cri_sandbox_t *s = calloc(1, sizeof(*s));
    s->refs = 1;
    s->name = xstrdup("");
    s->runtime_handler = xstrdup("");
    s->netns_path = xstrdup("");
    s->ip = xstrdup("");
    s->extra_ips = calloc(1, sizeof(char *));
    s->cgroup_parent = xstrdup("");
    s->resolv_path = xstrdup("");
    s->hosts_path = xstrdup("");
    s->hostname_path = xstrdup("");
    s->state = CRI_SANDBOX_NOTREADY;
    return s;
}

cri_container_t *
cri_container_new(void)
{
    cri_container_t *k = calloc(1, sizeof(*k));
    k->refs = 1;
    k->name = xstrdup("");
    k->image_ref = xstrdup("");
    k->image_name = xstrdup("");
    k->log_path = xstrdup("");
    k->cgroup_path = xstrdup("");
    k->reason = xstrdup("");
    k->message = xstrdup("");
    return k;
}

void
cri_sandbox_unref(cri_sandbox_t *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(s->name);
    if (s->config)
        protobuf_c_message_free_unpacked(&s->config->base, NULL);
    free(s->runtime_handler);
    free(s->netns_path);
    free(s->ip);
    strv_free(s->extra_ips);
    free(s->cgroup_parent);
    free(s->resolv_path);
    free(s->hosts_path);
    free(s->hostname_path);
    free(s);
}

void
cri_container_unref(cri_container_t *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    free(k->name);
    if (k->config)
        protobuf_c_message_free_unpacked(&k->config->base, NULL);
    free(k->image_ref);
    free(k->image_name);
    free(k->log_path);
    free(k->cgroup_path);
    free(k->reason);
    free(k->message);
    free(k);
}

static void
ref(int *refs)
{
    __atomic_add_fetch(refs, 1, __ATOMIC_ACQ_REL);
}

/* ---- lookups ---------------------------------------------------------------------------------------- */

int
cri_sandbox_find(cri_t *c, const char *id, cri_sandbox_t **out, berth_error_t **err)
{
    *out = NULL;
    if (id == NULL || *id == '\0')
        return c->api->error_make(err, BERTH_EINVAL, "pod sandbox id: must not be empty");
    size_t len = strlen(id);
    int n = 0;
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    cri_sandbox_t *hit = NULL;
    for (size_t i = 0; st && i < st->n_pods; i++) {
        cri_sandbox_t *s = st->pods[i];
        if (strcmp(s->id, id) == 0 || strcmp(s->name, id) == 0) {
            hit = s, n = 1;
            break;
        }
        if (strncmp(s->id, id, len) == 0)
            hit = s, n++;
    }
    if (n == 1)
        ref(&hit->refs), *out = hit;
    pthread_mutex_unlock(&c->lock);
    if (n == 0)
        return c->api->error_make(err, BERTH_ENOTFOUND, "pod sandbox \"%s\": not found", id);
    if (n > 1)
        return c->api->error_make(err, BERTH_EINVAL, "pod sandbox \"%s\": ambiguous id prefix", id);
    return 0;
}

int
cri_container_find(cri_t *c, const char *id, cri_container_t **out, berth_error_t **err)
{
    *out = NULL;
    if (id == NULL || *id == '\0')
        return c->api->error_make(err, BERTH_EINVAL, "container id: must not be empty");
    size_t len = strlen(id);
    int n = 0;
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    cri_container_t *hit = NULL;
    for (size_t i = 0; st && i < st->n_ctrs; i++) {
        cri_container_t *k = st->ctrs[i];
        if (strcmp(k->id, id) == 0 || strcmp(k->name, id) == 0) {
            hit = k, n = 1;
            break;
        }
        if (strncmp(k->id, id, len) == 0)
            hit = k, n++;
    }
    if (n == 1)
        ref(&hit->refs), *out = hit;
    pthread_mutex_unlock(&c->lock);
    if (n == 0)
        return c->api->error_make(err, BERTH_ENOTFOUND, "container \"%s\": not found", id);
    if (n > 1)
        return c->api->error_make(err, BERTH_EINVAL, "container \"%s\": ambiguous id prefix", id);
    return 0;
}

/* A snapshot of the references, so callbacks run without the lock (they may call the store). */
void
cri_container_foreach(cri_t *c, int (*cb)(void *user, cri_container_t *k), void *user)
{
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    size_t n = st ? st->n_ctrs : 0;
    cri_container_t **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = st->ctrs[i], ref(&v[i]->refs);
    pthread_mutex_unlock(&c->lock);
    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        if (!stop)
            stop = cb(user, v[i]);
        cri_container_unref(v[i]);
    }
    free(v);
}

void
cri_sandbox_foreach(cri_t *c, int (*cb)(void *user, cri_sandbox_t *s), void *user)
{
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    size_t n = st ? st->n_pods : 0;
    cri_sandbox_t **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = st->pods[i], ref(&v[i]->refs);
    pthread_mutex_unlock(&c->lock);
    int stop = 0;
    for (size_t i = 0; i < n; i++) {
        if (!stop)
            stop = cb(user, v[i]);
        cri_sandbox_unref(v[i]);
    }
    free(v);
}

/* ---- adding and removing ---------------------------------------------------------------------------- */

int
cri_store_sandbox_add(cri_t *c, cri_sandbox_t *s, berth_error_t **err)
{
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; i < st->n_pods; i++) {
        cri_sandbox_t *o = st->pods[i];
        if (strcmp(o->id, s->id) == 0 || (s->name[0] && strcmp(o->name, s->name) == 0)) {
            char holder[65];
            snprintf(holder, sizeof(holder), "%s", o->id);
            pthread_mutex_unlock(&c->lock);
            return c->api->error_make(err, BERTH_EEXIST,
                                      "pod sandbox name \"%s\": already reserved for \"%s\"",
                                      s->name, holder);
        }
    }
    if (st->n_pods == st->cap_pods) {
        st->cap_pods = st->cap_pods ? 2 * st->cap_pods : 16;
        st->pods = realloc(st->pods, st->cap_pods * sizeof(*st->pods));
    }
    ref(&s->refs);
    st->pods[st->n_pods++] = s;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void
cri_store_sandbox_remove(cri_t *c, const char *id)
{
    cri_sandbox_t *gone = NULL;
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; st && i < st->n_pods; i++)
        if (strcmp(st->pods[i]->id, id) == 0) {
            gone = st->pods[i];
            st->pods[i] = st->pods[--st->n_pods];
            break;
        }
    pthread_mutex_unlock(&c->lock);
    cri_sandbox_unref(gone);
}

int
cri_store_container_add(cri_t *c, cri_container_t *k, berth_error_t **err)
{
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; i < st->n_ctrs; i++) {
        cri_container_t *o = st->ctrs[i];
        if (strcmp(o->id, k->id) == 0 || (k->name[0] && strcmp(o->name, k->name) == 0)) {
            char holder[65];
            snprintf(holder, sizeof(holder), "%s", o->id);
            pthread_mutex_unlock(&c->lock);
            return c->api->error_make(err, BERTH_EEXIST,
                                      "container name \"%s\": already reserved for \"%s\"", k->name,
                                      holder);
        }
    }
    if (st->n_ctrs == st->cap_ctrs) {
        st->cap_ctrs = st->cap_ctrs ? 2 * st->cap_ctrs : 16;
        st->ctrs = realloc(st->ctrs, st->cap_ctrs * sizeof(*st->ctrs));
    }
    ref(&k->refs);
    st->ctrs[st->n_ctrs++] = k;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void
cri_store_container_remove(cri_t *c, const char *id)
{
    cri_container_t *gone = NULL;
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; st && i < st->n_ctrs; i++)
        if (strcmp(st->ctrs[i]->id, id) == 0) {
            gone = st->ctrs[i];
            st->ctrs[i] = st->ctrs[--st->n_ctrs];
            break;
        }
    pthread_mutex_unlock(&c->lock);
    cri_container_unref(gone);
}

int
cri_store_reserve_name(cri_t *c, const char *name, const char *id, berth_error_t **err)
{
    size_t len = strlen(name);
    char holder[65] = "";
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; !holder[0] && i < st->n_names; i++)
        if (strncmp(st->names[i], name, len) == 0 && st->names[i][len] == '\t')
            snprintf(holder, sizeof(holder), "%s", st->names[i] + len + 1);
    for (size_t i = 0; !holder[0] && i < st->n_pods; i++)
        if (strcmp(st->pods[i]->name, name) == 0)
            snprintf(holder, sizeof(holder), "%s", st->pods[i]->id);
    for (size_t i = 0; !holder[0] && i < st->n_ctrs; i++)
        if (strcmp(st->ctrs[i]->name, name) == 0)
            snprintf(holder, sizeof(holder), "%s", st->ctrs[i]->id);
    if (!holder[0]) {
        st->names = realloc(st->names, (st->n_names + 1) * sizeof(char *));
        char *e = malloc(len + 66);
        snprintf(e, len + 66, "%s\t%s", name, id);
        st->names[st->n_names++] = e;
    }
    pthread_mutex_unlock(&c->lock);
    if (holder[0])
        return c->api->error_make(err, BERTH_EEXIST, "name \"%s\" is reserved for \"%s\"", name,
                                  holder);
    return 0;
}

void
cri_store_release_name(cri_t *c, const char *name)
{
    size_t len = strlen(name);
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; i < st->n_names; i++)
        if (strncmp(st->names[i], name, len) == 0 && st->names[i][len] == '\t') {
            free(st->names[i]);
            st->names[i] = st->names[--st->n_names];
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

/* ---- the extension: hex of the CRI config plus our fields, as JSON ----------------------------------- */

static void
add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}

static const char *
get_str(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

static int64_t
get_i64(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static void
add_msg(json_object *o, const char *k, const ProtobufCMessage *m)
{
    if (m == NULL)
        return;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    protobuf_c_message_pack(m, b);
    char *hex = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    hex[2 * n] = '\0';
    add_str(o, k, hex);
    free(hex);
    free(b);
}

static ProtobufCMessage *
get_msg(json_object *o, const char *k, const ProtobufCMessageDescriptor *d)
{
    const char *hex = get_str(o, k);
    size_t n = strlen(hex) / 2;
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(b);
            return NULL;
        }
        b[i] = (uint8_t)v;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, b);
    free(b);
    return m;
}

static char *
sandbox_meta_json(const cri_sandbox_t *s)
{
    json_object *o = json_object_new_object();
    add_str(o, "version", "v1");
    add_str(o, "id", s->id);
    add_str(o, "name", s->name);
    add_msg(o, "config", s->config ? &s->config->base : NULL);
    add_str(o, "runtime_handler", s->runtime_handler);
    json_object_object_add(o, "created_ns", json_object_new_int64(s->created_ns));
    add_str(o, "netns_path", s->netns_path);
    add_str(o, "ip", s->ip);
    json_object *ips = json_object_new_array();
    for (size_t i = 0; s->extra_ips && s->extra_ips[i]; i++)
        json_object_array_add(ips, json_object_new_string(s->extra_ips[i]));
    json_object_object_add(o, "extra_ips", ips);
    add_str(o, "cgroup_parent", s->cgroup_parent);
    add_str(o, "resolv_path", s->resolv_path);
    add_str(o, "hosts_path", s->hosts_path);
    add_str(o, "hostname_path", s->hostname_path);
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static json_object *
parse_json(const uint8_t *b, size_t n)
{
    char *t = malloc(n + 1);
    if (n)
        memcpy(t, b, n);
    t[n] = '\0';
    json_object *o = json_tokener_parse(t);
    free(t);
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static cri_sandbox_t *
sandbox_from_json(const uint8_t *b, size_t n)
{
    json_object *o = parse_json(b, n);
    if (o == NULL)
        return NULL;
    cri_sandbox_t *s = cri_sandbox_new();
    snprintf(s->id, sizeof(s->id), "%s", get_str(o, "id"));
    set_str(&s->name, get_str(o, "name"));
    s->config = (Runtime__V1__PodSandboxConfig *)get_msg(
        o, "config", &runtime__v1__pod_sandbox_config__descriptor);
    set_str(&s->runtime_handler, get_str(o, "runtime_handler"));
    s->created_ns = get_i64(o, "created_ns");
    set_str(&s->netns_path, get_str(o, "netns_path"));
    set_str(&s->ip, get_str(o, "ip"));
    json_object *ips;
    if (json_object_object_get_ex(o, "extra_ips", &ips) &&
        json_object_is_type(ips, json_type_array)) {
        size_t m = json_object_array_length(ips);
        free(s->extra_ips);
        s->extra_ips = calloc(m + 1, sizeof(char *));
        for (size_t i = 0; i < m; i++)
            s->extra_ips[i] = xstrdup(json_object_get_string(json_object_array_get_idx(ips, i)));
    }
    set_str(&s->cgroup_parent, get_str(o, "cgroup_parent"));
    set_str(&s->resolv_path, get_str(o, "resolv_path"));
    set_str(&s->hosts_path, get_str(o, "hosts_path"));
    set_str(&s->hostname_path, get_str(o, "hostname_path"));
    json_object_put(o);
    if (s->config == NULL || strlen(s->id) != 64) {
        cri_sandbox_unref(s);
        return NULL;
    }
    return s;
}

static cri_container_t *
container_from_json(const uint8_t *b, size_t n)
{
    json_object *o = parse_json(b, n);
    if (o == NULL)
        return NULL;
    cri_container_t *k = cri_container_new();
    snprintf(k->id, sizeof(k->id), "%s", get_str(o, "id"));
    snprintf(k->sandbox_id, sizeof(k->sandbox_id), "%s", get_str(o, "sandbox_id"));
    set_str(&k->name, get_str(o, "name"));
    k->config = (Runtime__V1__ContainerConfig *)get_msg(o, "config",
                                                        &runtime__v1__container_config__descriptor);
    set_str(&k->image_ref, get_str(o, "image_ref"));
    set_str(&k->image_name, get_str(o, "image_name"));
    set_str(&k->log_path, get_str(o, "log_path"));
    set_str(&k->cgroup_path, get_str(o, "cgroup_path"));
    k->created_ns = get_i64(o, "created_ns");
    json_object_put(o);
    if (k->config == NULL || strlen(k->id) != 64) {
        cri_container_unref(k);
        return NULL;
    }
    return k;
}

/* cfg: the CRI config to record (k->config, or the one an update is about to make k's) */
static char *
container_meta_json_with(const cri_container_t *k, const Runtime__V1__ContainerConfig *cfg)
{
    json_object *o = json_object_new_object();
    add_str(o, "version", "v1");
    add_str(o, "id", k->id);
    add_str(o, "sandbox_id", k->sandbox_id);
    add_str(o, "name", k->name);
    add_msg(o, "config", cfg ? &cfg->base : NULL);
    add_str(o, "image_ref", k->image_ref);
    add_str(o, "image_name", k->image_name);
    add_str(o, "log_path", k->log_path);
    add_str(o, "cgroup_path", k->cgroup_path);
    json_object_object_add(o, "created_ns", json_object_new_int64(k->created_ns));
    char *out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static char *
container_meta_json(const cri_container_t *k)
{
    return container_meta_json_with(k, k->config);
}

/* ---- the containerd records --------------------------------------------------------------------------- */

typedef Containerd__Services__Containers__V1__Container ctr_rec_t;
typedef Containerd__Services__Containers__V1__Container__LabelsEntry label_t;
/* every protobuf-c map<string,string> entry has this layout */
typedef struct map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} map_entry_t;

static void
labels_add(label_t ***v, size_t *n, const char *k, const char *val)
{
    if (strlen(k) + strlen(val) >
        BERTH_LABEL_MAX) /* containerd's limit: such a label is left out */
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i]->key, k) == 0)
            return;
    label_t *l = malloc(sizeof(*l));
    containerd__services__containers__v1__container__labels_entry__init(l);
    l->key = (char *)k;
    l->value = (char *)val;
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = l;
}

static int
record_create(cri_t *c, const char *id, const char *kind, void *const *cfg_labels,
              size_t n_cfg_labels, const char *ext_key, const char *ext_url, const char *ext_json,
              const char *spec_json, const char *snapshotter, const char *snapshot_key,
              const char *image, berth_error_t **err)
{
    ctr_rec_t rec = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    Containerd__Services__Containers__V1__Container__Runtime rt =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
    Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT, ext = GOOGLE__PROTOBUF__ANY__INIT;
    Containerd__Services__Containers__V1__Container__ExtensionsEntry ee =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__EXTENSIONS_ENTRY__INIT;
    Containerd__Services__Containers__V1__Container__ExtensionsEntry *eep = &ee;
    label_t **labels = NULL;
    size_t n_labels = 0;
    labels_add(&labels, &n_labels, CRI_LABEL_KIND, kind);
    for (size_t i = 0; i < n_cfg_labels; i++)
        labels_add(&labels, &n_labels, ((const map_entry_t *)cfg_labels[i])->key,
                   ((const map_entry_t *)cfg_labels[i])->value);
    rec.id = (char *)id;
    rec.labels = labels;
    rec.n_labels = n_labels;
    rec.image = (char *)(image ? image : "");
    rt.name = CRI_RUNTIME_NAME;
    rec.runtime = &rt;
    if (spec_json == NULL)
        spec_json = "{}";
    spec.type_url = SPEC_TYPE_URL;
    spec.value.data = (uint8_t *)spec_json;
    spec.value.len = strlen(spec_json);
    rec.spec = &spec;
    rec.snapshotter = (char *)(snapshot_key && *snapshot_key && snapshotter ? snapshotter : "");
    rec.snapshot_key = (char *)(snapshot_key ? snapshot_key : "");
    ext.type_url = (char *)ext_url;
    ext.value.data = (uint8_t *)ext_json;
    ext.value.len = strlen(ext_json);
    ee.key = (char *)ext_key;
    ee.value = &ext;
    rec.extensions = &eep;
    rec.n_extensions = 1;
    Containerd__Services__Containers__V1__CreateContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
    req.container = &rec;
    int rc = cri_call(c, CRI_SVC_CONTAINERS, "Create", &req.base, NULL, NULL, NULL, err);
    for (size_t i = 0; i < n_labels; i++)
        free(labels[i]);
    free(labels);
    return rc;
}

int
cri_sandbox_record_create(cri_t *c, const cri_sandbox_t *s, const char *spec_json,
                          const char *snapshotter, const char *snapshot_key, const char *image,
                          berth_error_t **err)
{
    char *meta = sandbox_meta_json(s);
    int rc = record_create(c, s->id, "sandbox", s->config ? (void *const *)s->config->labels : NULL,
                           s->config ? s->config->n_labels : 0, CRI_EXT_SANDBOX, SANDBOX_META_URL,
                           meta, spec_json, snapshotter, snapshot_key, image, err);
    free(meta);
    return rc;
}

int
cri_container_record_create(cri_t *c, const cri_container_t *k, const char *spec_json,
                            const char *snapshotter, const char *snapshot_key, berth_error_t **err)
{
    char *meta = container_meta_json(k);
    int rc =
        record_create(c, k->id, "container", k->config ? (void *const *)k->config->labels : NULL,
                      k->config ? k->config->n_labels : 0, CRI_EXT_CONTAINER, CONTAINER_META_URL,
                      meta, spec_json, snapshotter, snapshot_key, k->image_name, err);
    free(meta);
    return rc;
}

int
cri_container_record_update(cri_t *c, const cri_container_t *k,
                            const Runtime__V1__ContainerConfig *cfg, const char *spec_json,
                            berth_error_t **err)
{
    ctr_rec_t rec = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT, ext = GOOGLE__PROTOBUF__ANY__INIT;
    Containerd__Services__Containers__V1__Container__ExtensionsEntry ee =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__EXTENSIONS_ENTRY__INIT;
    Containerd__Services__Containers__V1__Container__ExtensionsEntry *eep = &ee;
    char *meta = container_meta_json_with(k, cfg ? cfg : k->config);
    char *paths[2];
    size_t n_paths = 0;
    rec.id = (char *)k->id;
    if (spec_json != NULL) {
        spec.type_url = SPEC_TYPE_URL;
        spec.value.data = (uint8_t *)spec_json;
        spec.value.len = strlen(spec_json);
        rec.spec = &spec;
        paths[n_paths++] = "spec";
    }
    ext.type_url = CONTAINER_META_URL;
    ext.value.data = (uint8_t *)meta;
    ext.value.len = strlen(meta);
    ee.key = CRI_EXT_CONTAINER;
    ee.value = &ext;
    rec.extensions = &eep;
    rec.n_extensions = 1;
    paths[n_paths++] = "extensions";
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.paths = paths;
    mask.n_paths = n_paths;
    Containerd__Services__Containers__V1__UpdateContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__UPDATE_CONTAINER_REQUEST__INIT;
    req.container = &rec;
    req.update_mask = &mask;
    int rc = cri_call(c, CRI_SVC_CONTAINERS, "Update", &req.base, NULL, NULL, NULL, err);
    free(meta);
    return rc;
}

int
cri_record_delete(cri_t *c, const char *id, berth_error_t **err)
{
    Containerd__Services__Containers__V1__DeleteContainerRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
    req.id = (char *)id;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_CONTAINERS, "Delete", &req.base, NULL, NULL, NULL, &e);
    if (rc < 0 && rc != BERTH_ENOTFOUND) {
        if (err)
            *err = e;
        else
            c->api->error_free(e);
        return rc;
    }
    c->api->error_free(e);
    e = NULL;
    rc = c->mdo->record_delete(c->md, CRI_NAMESPACE, CRI_STATUS_KIND, id, &e);
    c->api->error_free(e); /* the status record is secondary: garbage at worst, removed at start */
    return 0;
}

/* ---- the status records ------------------------------------------------------------------------------- */

static int
status_put(cri_t *c, const char *id, json_object *o, berth_error_t **err)
{
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    int rc = c->mdo->record_put(c->md, CRI_NAMESPACE, CRI_STATUS_KIND, id, (const uint8_t *)t,
                                strlen(t), 0, err);
    json_object_put(o);
    return rc;
}

int
cri_sandbox_status_save(cri_t *c, cri_sandbox_t *s, berth_error_t **err)
{
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&c->lock);
    add_str(o, "kind", "sandbox");
    json_object_object_add(o, "state", json_object_new_int(s->state));
    json_object_object_add(o, "pid", json_object_new_int64(s->pid));
    pthread_mutex_unlock(&c->lock);
    return status_put(c, s->id, o, err);
}

int
cri_container_status_save(cri_t *c, cri_container_t *k, berth_error_t **err)
{
    json_object *o = json_object_new_object();
    pthread_mutex_lock(&c->lock);
    add_str(o, "kind", "container");
    json_object_object_add(o, "state", json_object_new_int(k->state));
    json_object_object_add(o, "pid", json_object_new_int64(k->pid));
    json_object_object_add(o, "started_ns", json_object_new_int64(k->started_ns));
    json_object_object_add(o, "finished_ns", json_object_new_int64(k->finished_ns));
    json_object_object_add(o, "exit_code", json_object_new_int(k->exit_code));
    add_str(o, "reason", k->reason);
    add_str(o, "message", k->message);
    pthread_mutex_unlock(&c->lock);
    return status_put(c, k->id, o, err);
}

/* ---- rebuilding at start ------------------------------------------------------------------------------ */

typedef struct task_info {
    int found;   /* the runtime knows the task */
    int running; /* created, running or paused */
    uint32_t pid, exit_status;
    int64_t exited_ns;
} task_info_t;

static void
task_get(cri_t *c, const char *id, task_info_t *ti)
{
    memset(ti, 0, sizeof(*ti));
    Containerd__Services__Tasks__V1__GetRequest req =
        CONTAINERD__SERVICES__TASKS__V1__GET_REQUEST__INIT;
    req.container_id = (char *)id;
    req.exec_id = "";
    ProtobufCMessage *out = NULL;
    berth_error_t *e = NULL;
    if (cri_call(c, CRI_SVC_TASKS, "Get", &req.base,
                 &containerd__services__tasks__v1__get_response__descriptor, &out, NULL, &e) < 0) {
        c->api->error_free(e);
        return;
    }
    Containerd__Services__Tasks__V1__GetResponse *r = (void *)out;
    if (r->process) {
        ti->found = 1;
        ti->pid = r->process->pid;
        ti->exit_status = r->process->exit_status;
        ti->running = r->process->status == CONTAINERD__V1__TYPES__STATUS__RUNNING ||
                      r->process->status == CONTAINERD__V1__TYPES__STATUS__PAUSED ||
                      r->process->status == CONTAINERD__V1__TYPES__STATUS__PAUSING ||
                      r->process->status == CONTAINERD__V1__TYPES__STATUS__CREATED;
        if (r->process->exited_at)
            ti->exited_ns =
                r->process->exited_at->seconds * 1000000000 + r->process->exited_at->nanos;
    }
    protobuf_c_message_free_unpacked(out, NULL);
}

static json_object *
status_get(cri_t *c, const char *id)
{
    uint8_t *v = NULL;
    size_t n = 0;
    berth_error_t *e = NULL;
    if (c->mdo->record_get(c->md, CRI_NAMESPACE, CRI_STATUS_KIND, id, &v, &n, &e) < 0) {
        c->api->error_free(e);
        return NULL;
    }
    json_object *o = parse_json(v, n);
    c->api->free(v);
    return o;
}

static void
sandbox_restore(cri_t *c, cri_sandbox_t *s)
{
    json_object *o = status_get(c, s->id);
    cri_sandbox_state_t state = o ? (cri_sandbox_state_t)get_i64(o, "state") : CRI_SANDBOX_NOTREADY;
    s->pid = o ? (uint32_t)get_i64(o, "pid") : 0;
    if (o)
        json_object_put(o);
    task_info_t ti;
    task_get(c, s->id, &ti);
    /* READY only while the pause still runs; an exit while berthd was down reads as NOTREADY */
    s->state = state == CRI_SANDBOX_READY && ti.running ? CRI_SANDBOX_READY : CRI_SANDBOX_NOTREADY;
    s->pid = ti.running ? ti.pid : 0;
    if (s->state != state) {
        berth_error_t *e = NULL;
        if (cri_sandbox_status_save(c, s, &e) < 0)
            c->api->error_free(e);
    }
}

static void
container_restore(cri_t *c, cri_container_t *k)
{
    json_object *o = status_get(c, k->id);
    if (o) {
        k->state = (cri_container_state_t)get_i64(o, "state");
        k->pid = (uint32_t)get_i64(o, "pid");
        k->started_ns = get_i64(o, "started_ns");
        k->finished_ns = get_i64(o, "finished_ns");
        k->exit_code = (int32_t)get_i64(o, "exit_code");
        set_str(&k->reason, get_str(o, "reason"));
        set_str(&k->message, get_str(o, "message"));
        json_object_put(o);
    } else {
        k->state = CRI_CONTAINER_CREATED;
    }
    if (k->state != CRI_CONTAINER_RUNNING)
        return;
    task_info_t ti;
    task_get(c, k->id, &ti);
    if (ti.running) {
        k->pid = ti.pid;
        return;
    }
    /* it ended while berthd was down: what the runtime still knows, else containerd's 255/Unknown */
    k->state = CRI_CONTAINER_EXITED;
    k->pid = 0;
    if (ti.found && ti.exited_ns) {
        k->exit_code = (int32_t)ti.exit_status;
        k->finished_ns = ti.exited_ns;
        set_str(&k->reason, ti.exit_status == 0 ? "Completed" : "Error");
    } else {
        k->exit_code = 255;
        k->finished_ns = cri_now_ns();
        set_str(&k->reason, "Unknown");
    }
    berth_error_t *e = NULL;
    if (cri_container_status_save(c, k, &e) < 0)
        c->api->error_free(e);
}

static const Google__Protobuf__Any *
extension(const ctr_rec_t *r, const char *key)
{
    for (size_t i = 0; i < r->n_extensions; i++)
        if (strcmp(r->extensions[i]->key, key) == 0)
            return r->extensions[i]->value;
    return NULL;
}

static const char *
label(const ctr_rec_t *r, const char *key)
{
    for (size_t i = 0; i < r->n_labels; i++)
        if (strcmp(r->labels[i]->key, key) == 0)
            return r->labels[i]->value;
    return NULL;
}

static void
load_record(cri_t *c, const ctr_rec_t *r)
{
    const char *kind = label(r, CRI_LABEL_KIND);
    if (kind == NULL)
        return; /* not ours (ctr run -n k8s.io ...) */
    int is_pod = strcmp(kind, "sandbox") == 0;
    const Google__Protobuf__Any *x = extension(r, is_pod ? CRI_EXT_SANDBOX : CRI_EXT_CONTAINER);
    berth_error_t *e = NULL;
    if (x == NULL) {
        c->api->log(c->log, BERTH_LOG_WARN, "cri: %s \"%s\": no CRI metadata, left alone", kind,
                    r->id);
        return;
    }
    if (is_pod) {
        cri_sandbox_t *s = sandbox_from_json(x->value.data, x->value.len);
        if (s == NULL) {
            c->api->log(c->log, BERTH_LOG_WARN, "cri: pod sandbox \"%s\": bad metadata, left alone",
                        r->id);
            return;
        }
        sandbox_restore(c, s);
        if (cri_store_sandbox_add(c, s, &e) < 0) {
            c->api->log(c->log, BERTH_LOG_WARN, "cri: %s", e->message);
            c->api->error_free(e);
        }
        cri_sandbox_unref(s);
    } else {
        cri_container_t *k = container_from_json(x->value.data, x->value.len);
        if (k == NULL) {
            c->api->log(c->log, BERTH_LOG_WARN, "cri: container \"%s\": bad metadata, left alone",
                        r->id);
            return;
        }
        container_restore(c, k);
        if (cri_store_container_add(c, k, &e) < 0) {
            c->api->log(c->log, BERTH_LOG_WARN, "cri: %s", e->message);
            c->api->error_free(e);
        }
        cri_container_unref(k);
    }
}

static int
id_known(cri_t *c, const char *id)
{
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    store_t *st = c->store;
    for (size_t i = 0; !hit && i < st->n_pods; i++)
        hit = strcmp(st->pods[i]->id, id) == 0;
    for (size_t i = 0; !hit && i < st->n_ctrs; i++)
        hit = strcmp(st->ctrs[i]->id, id) == 0;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

typedef struct keys {
    char **v;
    size_t n;
} keys_t;

static int
collect_key(void *user, const char *key, const uint8_t *value, size_t len)
{
    (void)value, (void)len;
    keys_t *k = user;
    k->v = realloc(k->v, (k->n + 1) * sizeof(char *));
    k->v[k->n++] = strdup(key);
    return 0;
}

static int
collect_endpoint(void *user, const char *ns, const char *id)
{
    if (strcmp(ns, CRI_NAMESPACE) == 0)
        collect_key(user, id, NULL, 0);
    return 0;
}

/* <state>/sandboxes/<id> of a pod that is not there (a crash while it was made): its shm mount and files. */
static void
remove_sandbox_dirs(cri_t *c)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/sandboxes", c->cfg.state);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 64 || id_known(c, e->d_name))
            continue;
        static const char *const names[] = {"hostname", "hosts", "resolv.conf", NULL};
        char p[sizeof(dir) + 300];
        snprintf(p, sizeof(p), "%s/%s/shm", dir, e->d_name);
        while (umount2(p, MNT_DETACH) == 0)
            ;
        rmdir(p);
        for (int i = 0; names[i]; i++) {
            snprintf(p, sizeof(p), "%s/%s/%s", dir, e->d_name, names[i]);
            unlink(p);
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (rmdir(p) == 0)
            c->api->log(c->log, BERTH_LOG_INFO,
                        "cri: files of pod \"%s\" without a record: removed", e->d_name);
    }
    closedir(d);
}

/* What a crash between two steps left: status records and network endpoints nobody refers to. */
static void
remove_garbage(cri_t *c)
{
    remove_sandbox_dirs(c);
    cri_gc_create_leftovers(c);
    keys_t ks = {0};
    berth_error_t *e = NULL;
    if (c->mdo->record_list(c->md, CRI_NAMESPACE, CRI_STATUS_KIND, collect_key, &ks, &e) < 0)
        c->api->error_free(e), e = NULL;
    for (size_t i = 0; i < ks.n; i++) {
        if (!id_known(c, ks.v[i])) {
            c->api->log(c->log, BERTH_LOG_INFO, "cri: status of \"%s\" without a record: removed",
                        ks.v[i]);
            if (c->mdo->record_delete(c->md, CRI_NAMESPACE, CRI_STATUS_KIND, ks.v[i], &e) < 0)
                c->api->error_free(e), e = NULL;
        }
        free(ks.v[i]);
    }
    free(ks.v);
    if (c->neto == NULL)
        return;
    keys_t eps = {0};
    if (c->neto->list(c->net, collect_endpoint, &eps, &e) < 0)
        c->api->error_free(e), e = NULL;
    for (size_t i = 0; i < eps.n; i++) {
        int pod = 0;
        pthread_mutex_lock(&c->lock);
        store_t *st = c->store;
        for (size_t j = 0; j < st->n_pods; j++)
            if (strcmp(st->pods[j]->id, eps.v[i]) == 0)
                pod = 1;
        pthread_mutex_unlock(&c->lock);
        if (!pod) {
            c->api->log(c->log, BERTH_LOG_INFO, "cri: network of \"%s\" without a pod: torn down",
                        eps.v[i]);
            if (c->neto->teardown(c->net, CRI_NAMESPACE, eps.v[i], &e) < 0) {
                c->api->log(c->log, BERTH_LOG_WARN, "cri: %s", e->message);
                c->api->error_free(e), e = NULL;
            }
        }
        free(eps.v[i]);
    }
    free(eps.v);
}

int
cri_store_open(cri_t *c, berth_error_t **err)
{
    c->store = calloc(1, sizeof(store_t));
    Containerd__Services__Containers__V1__ListContainersRequest req =
        CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    if (cri_call(c, CRI_SVC_CONTAINERS, "List", &req.base,
                 &containerd__services__containers__v1__list_containers_response__descriptor, &out,
                 NULL, err) < 0)
        return c->api->error_wrap(err, "cri: the store");
    Containerd__Services__Containers__V1__ListContainersResponse *r = (void *)out;
    for (size_t i = 0; i < r->n_containers; i++)
        load_record(c, r->containers[i]);
    protobuf_c_message_free_unpacked(out, NULL);
    remove_garbage(c);
    store_t *st = c->store;
    c->api->log(c->log, BERTH_LOG_INFO, "cri: %zu pod sandboxes and %zu containers found",
                st->n_pods, st->n_ctrs);
    return 0;
}

void
cri_store_close(cri_t *c)
{
    store_t *st = c->store;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_pods; i++)
        cri_sandbox_unref(st->pods[i]);
    for (size_t i = 0; i < st->n_ctrs; i++)
        cri_container_unref(st->ctrs[i]);
    for (size_t i = 0; i < st->n_names; i++)
        free(st->names[i]);
    free(st->names);
    free(st->pods);
    free(st->ctrs);
    free(st);
    c->store = NULL;
}
