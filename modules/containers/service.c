/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.containers.v1.Containers (io.containerd.grpc.v1.containers): container records in the
 * metadata store with containerd's filters and field paths, /containers/ events, and the container hooks:
 * pre-create may change a container before it is stored, pre-update may change an update, post-update may
 * refuse the merged result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/events.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>

#include "rpc.h"
#include "filters.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"

typedef Containerd__Services__Containers__V1__Container container_pb_t;
typedef Containerd__Services__Containers__V1__Container__LabelsEntry label_pb_t;

typedef struct svc {
    const berth_core_api_t *api;
    uv_loop_t *loop;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *events;
    const berth_events_v1_ops_t *events_ops;
} svc_t;

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static int
code_of(berth_error_t **err, int dflt)
{
    return err && *err ? (*err)->code : dflt;
}

static container_pb_t *
load(svc_t *s, const char *ns, const char *id, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    if (s->mdo->container_get(s->md, ns, id, &data, &len, err) < 0)
        return NULL;
    container_pb_t *c = containerd__services__containers__v1__container__unpack(NULL, len, data);
    s->api->free(data);
    if (c == NULL)
        s->api->error_make(err, BERTH_EDATALOSS, "container %s: record does not decode", id);
    return c;
}

static int
store(svc_t *s, const char *ns, const container_pb_t *c, int create, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    pack(&c->base, &data, &len);
    int rc = create ? s->mdo->container_create(s->md, ns, data, len, err)
                    : s->mdo->container_update(s->md, ns, data, len, err);
    free(data);
    return rc;
}

/* Get, Create and Update all answer {Container container = 1;}. */
static int
respond(svc_t *s, const char *ns, const char *id, uint8_t **resp, size_t *len, berth_error_t **err)
{
    container_pb_t *c = load(s, ns, id, err);
    if (c == NULL)
        return code_of(err, BERTH_ENOTFOUND);
    Containerd__Services__Containers__V1__GetContainerResponse out =
        CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_RESPONSE__INIT;
    out.container = c;
    pack(&out.base, resp, len);
    containerd__services__containers__v1__container__free_unpacked(c, NULL);
    return 0;
}

/* ---- events ---------------------------------------------------------------------------------------- */

static void
publish(svc_t *s, const char *ns, const char *topic, const char *type, const ProtobufCMessage *m)
{
    publish_message(s->api, s->events_ops, s->events, ns, topic, type, m);
}

static void
publish_create(svc_t *s, const char *ns, const container_pb_t *c)
{
    Containerd__Events__ContainerCreate ev = CONTAINERD__EVENTS__CONTAINER_CREATE__INIT;
    Containerd__Events__ContainerCreate__Runtime rt =
        CONTAINERD__EVENTS__CONTAINER_CREATE__RUNTIME__INIT;
    ev.id = c->id;
    ev.image = c->image;
    if (c->runtime) {
        rt.name = c->runtime->name;
        rt.options = c->runtime->options;
        ev.runtime = &rt;
    }
    publish(s, ns, "/containers/create", "containerd.events.ContainerCreate", &ev.base);
}

static void
publish_update(svc_t *s, const char *ns, const container_pb_t *c)
{
    Containerd__Events__ContainerUpdate ev = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
    ev.id = c->id;
    ev.image = c->image;
    ev.snapshot_key = c->snapshot_key;
    ev.n_labels = c->n_labels;
    ev.labels = (Containerd__Events__ContainerUpdate__LabelsEntry **)c->labels;
    publish(s, ns, "/containers/update", "containerd.events.ContainerUpdate", &ev.base);
}

/* ---- labels as a kv, and back ---------------------------------------------------------------------- */

static berth_kv_t *
labels_kv(svc_t *s, const container_pb_t *c)
{
    berth_kv_t *kv = s->api->kv_new();
    for (size_t i = 0; i < c->n_labels; i++)
        s->api->kv_set(kv, c->labels[i]->key, c->labels[i]->value);
    return kv;
}

/* Points c's labels at the kv's strings (owned by the kv, and by `items`: free both after use). */
static label_pb_t *
labels_from_kv(svc_t *s, container_pb_t *c, const berth_kv_t *kv, label_pb_t ***ptrs)
{
    size_t n = s->api->kv_size(kv);
    label_pb_t *items = calloc(n + 1, sizeof(*items));
    *ptrs = calloc(n + 1, sizeof(**ptrs));
    for (size_t i = 0; i < n; i++) {
        containerd__services__containers__v1__container__labels_entry__init(&items[i]);
        items[i].key = (char *)s->api->kv_key_at(kv, i);
        items[i].value = (char *)s->api->kv_value_at(kv, i);
        (*ptrs)[i] = &items[i];
    }
    c->labels = *ptrs;
    c->n_labels = n;
    return items;
}

/* ---- Get, List, ListStream ------------------------------------------------------------------------- */

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Containers__V1__GetContainerRequest *r =
        containerd__services__containers__v1__get_container_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "GetContainerRequest", err);
    int rc = respond(s, ns, r->id, resp, resp_len, err);
    containerd__services__containers__v1__get_container_request__free_unpacked(r, NULL);
    return rc;
}

/* containerd's container fields for filters: id, image, runtime.name, snapshotter, labels.<key> */
static const char *
container_field(void *object, const char *const *path, int npath)
{
    const container_pb_t *c = object;
    if (npath == 1 && strcmp(path[0], "id") == 0)
        return c->id;
    if (npath == 1 && strcmp(path[0], "image") == 0)
        return c->image;
    if (npath == 1 && strcmp(path[0], "snapshotter") == 0)
        return c->snapshotter;
    if (npath == 2 && strcmp(path[0], "runtime") == 0 && strcmp(path[1], "name") == 0 && c->runtime)
        return c->runtime->name;
    for (size_t i = 0; npath == 2 && strcmp(path[0], "labels") == 0 && i < c->n_labels; i++)
        if (strcmp(c->labels[i]->key, path[1]) == 0)
            return c->labels[i]->value;
    return NULL;
}

typedef struct listing {
    uv_work_t work;
    svc_t *svc;
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
    char ns[80];
    filters_t *filters;
    container_pb_t **items;
    size_t n;
    int rc, closed;
    berth_error_t *err;
} listing_t;

static int
collect(void *user, const uint8_t *data, size_t len)
{
    listing_t *l = user;
    container_pb_t *c = containerd__services__containers__v1__container__unpack(NULL, len, data);
    if (c && filters_match(l->filters, container_field, c)) {
        l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
        l->items[l->n++] = c;
    } else if (c) {
        containerd__services__containers__v1__container__free_unpacked(c, NULL);
    }
    return 0;
}

static listing_t *
listing_new(svc_t *s, const char *ns, char **filters, size_t n_filters, berth_error_t **err)
{
    listing_t *l = calloc(1, sizeof(*l));
    char msg[512];
    if (filters_parse_n((const char *const *)filters, n_filters, &l->filters, msg, sizeof(msg)) <
        0) {
        free(l);
        s->api->error_make(err, BERTH_EINVAL, "%s", msg);
        return NULL;
    }
    l->svc = s;
    snprintf(l->ns, sizeof(l->ns), "%s", ns);
    return l;
}

static void
listing_free(listing_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        containerd__services__containers__v1__container__free_unpacked(l->items[i], NULL);
    free(l->items);
    filters_free(l->filters);
    if (l->err)
        l->svc->api->error_free(l->err);
    free(l);
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Containers__V1__ListContainersRequest *r =
        containerd__services__containers__v1__list_containers_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListContainersRequest", err);
    listing_t *l = listing_new(s, ns, r->filters, r->n_filters, err);
    containerd__services__containers__v1__list_containers_request__free_unpacked(r, NULL);
    if (l == NULL)
        return BERTH_EINVAL;
    int rc = s->mdo->container_list(s->md, ns, collect, l, err);
    if (rc == 0) {
        Containerd__Services__Containers__V1__ListContainersResponse out =
            CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_RESPONSE__INIT;
        out.containers = l->items;
        out.n_containers = l->n;
        pack(&out.base, resp, resp_len);
    }
    listing_free(l);
    return rc;
}

static void
stream_run(uv_work_t *req)
{
    listing_t *l = req->data;
    l->rc = l->svc->mdo->container_list(l->svc->md, l->ns, collect, l, &l->err);
}

static void
stream_done(uv_work_t *req, int status)
{
    listing_t *l = req->data;
    for (size_t i = 0; !l->closed && l->rc == 0 && i < l->n; i++) {
        Containerd__Services__Containers__V1__ListContainerMessage m =
            CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINER_MESSAGE__INIT;
        m.container = l->items[i];
        uint8_t *data;
        size_t len;
        pack(&m.base, &data, &len);
        l->sapi->send(l->st, data, len);
        free(data);
    }
    if (!l->closed) {
        l->sapi->set_user(l->st, NULL);
        l->sapi->finish(l->st, l->rc, l->err ? l->err->message : NULL);
    }
    listing_free(l);
}

static int
stream_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
            const uint8_t *req, size_t req_len, berth_error_t **err)
{
    svc_t *s = instance;
    Containerd__Services__Containers__V1__ListContainersRequest *r =
        containerd__services__containers__v1__list_containers_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return bad(s, "ListContainersRequest", err);
    listing_t *l = listing_new(s, sapi->namespace_(st), r->filters, r->n_filters, err);
    containerd__services__containers__v1__list_containers_request__free_unpacked(r, NULL);
    if (l == NULL)
        return BERTH_EINVAL;
    l->sapi = sapi;
    l->st = st;
    l->work.data = l;
    sapi->set_user(st, l);
    uv_queue_work(s->loop, &l->work, stream_run, stream_done);
    return 0;
}

static void
stream_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    listing_t *l = sapi->get_user(st);
    if (l)
        l->closed = 1; /* stream_done frees it */
}

/* ---- Create: the pre-create hook may change what is stored ----------------------------------------- */

static char *
dup_or_empty(const berth_core_api_t *api, const char *s)
{
    return api->strdup(s ? s : "");
}

/* Takes a hook's string back into the message (the message owns malloc'd strings). */
static void
take_string(const berth_core_api_t *api, char **field, char *from_hook)
{
    if (strcmp(*field, from_hook) != 0) {
        if (*field != protobuf_c_empty_string)
            free(*field);
        *field = strdup(from_hook);
    }
    api->free(from_hook);
}

static void
take_spec(const berth_core_api_t *api, container_pb_t *c, char *spec_json)
{
    if (spec_json && c->spec &&
        (c->spec->value.len != strlen(spec_json) ||
         memcmp(c->spec->value.data, spec_json, c->spec->value.len) != 0)) {
        free(c->spec->value.data);
        c->spec->value.len = strlen(spec_json);
        c->spec->value.data = (uint8_t *)strdup(spec_json);
    }
    api->free(spec_json);
}

static int
pre_create(svc_t *s, const char *ns, container_pb_t *c, berth_kv_t *labels, berth_error_t **err)
{
    const berth_core_api_t *api = s->api;
    berth_hook_container_create_t p = {
        .struct_size = sizeof(p),
        .namespace_ = ns,
        .id = c->id,
        .image = dup_or_empty(api, c->image),
        .runtime = dup_or_empty(api, c->runtime ? c->runtime->name : ""),
        .snapshotter = dup_or_empty(api, c->snapshotter),
        .snapshot_key = dup_or_empty(api, c->snapshot_key),
        .labels = labels,
    };
    if (c->spec) {
        p.spec_json = api->malloc(c->spec->value.len + 1);
        memcpy(p.spec_json, c->spec->value.data, c->spec->value.len);
        p.spec_json[c->spec->value.len] = '\0';
    }
    int rc = api->hook_invoke(BERTH_HOOK_CONTAINER_PRE_CREATE, &p, err);
    take_string(api, &c->image, p.image);
    take_string(api, &c->snapshotter, p.snapshotter);
    take_string(api, &c->snapshot_key, p.snapshot_key);
    if (c->runtime)
        take_string(api, &c->runtime->name, p.runtime);
    else
        api->free(p.runtime);
    take_spec(api, c, p.spec_json);
    return rc;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Containers__V1__CreateContainerRequest *r =
        containerd__services__containers__v1__create_container_request__unpack(NULL, len, req);
    if (r == NULL || r->container == NULL) {
        containerd__services__containers__v1__create_container_request__free_unpacked(r, NULL);
        return bad(s, "CreateContainerRequest", err);
    }
    container_pb_t *c = r->container;
    berth_kv_t *labels = labels_kv(s, c);
    size_t n_old = c->n_labels;
    label_pb_t **old = c->labels, **ptrs = NULL, *items = NULL;
    int rc = pre_create(s, ns, c, labels, err);
    if (rc != 0)
        s->api->error_wrap(err, "container %s", c->id);
    if (rc == 0) {
        items = labels_from_kv(s, c, labels, &ptrs);
        rc = store(s, ns, c, 1, err);
        c->labels = old; /* the request owns the old ones, for free_unpacked */
        c->n_labels = n_old;
    }
    if (rc == 0 && (rc = respond(s, ns, c->id, resp, resp_len, err)) == 0)
        publish_create(s, ns, c);
    free(items);
    free(ptrs);
    s->api->kv_free(labels);
    containerd__services__containers__v1__create_container_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Update: containerd's field paths, then the update hooks --------------------------------------- */

#define SWAP(a, b)              \
    do {                        \
        __typeof__(a) t_ = (a); \
        (a) = (b);              \
        (b) = t_;               \
    } while (0)

static void
set_label(svc_t *s, berth_kv_t *labels, const container_pb_t *from, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < from->n_labels; i++)
        if (strcmp(from->labels[i]->key, key) == 0)
            v = from->labels[i]->value;
    if (v && v[0])
        s->api->kv_set(labels, key, v);
    else
        s->api->kv_unset(labels, key);
}

static int
merge_path(svc_t *s, container_pb_t *have, container_pb_t *req, const char *p, berth_kv_t *labels,
           berth_error_t **err)
{
    if (strncmp(p, "labels.", 7) == 0) {
        set_label(s, labels, req, p + 7);
    } else if (strcmp(p, "labels") == 0) {
        while (s->api->kv_size(labels) > 0)
            s->api->kv_unset(labels, s->api->kv_key_at(labels, 0));
        for (size_t i = 0; i < req->n_labels; i++)
            s->api->kv_set(labels, req->labels[i]->key, req->labels[i]->value);
    } else if (strcmp(p, "spec") == 0) {
        SWAP(have->spec, req->spec);
    } else if (strcmp(p, "image") == 0) {
        SWAP(have->image, req->image);
    } else if (strcmp(p, "snapshotkey") == 0) {
        SWAP(have->snapshot_key, req->snapshot_key);
    } else if (strcmp(p, "extensions") == 0 || strncmp(p, "extensions.", 11) == 0) {
        SWAP(have->extensions, req->extensions);
        SWAP(have->n_extensions, req->n_extensions);
    } else {
        return s->api->error_make(err, BERTH_EINVAL, "cannot update %s field on container %s", p,
                                  have->id);
    }
    return 0;
}

static int
merge(svc_t *s, container_pb_t *have, container_pb_t *req, const Google__Protobuf__FieldMask *mask,
      berth_kv_t *labels, berth_error_t **err)
{
    static const char *const everything[] = {"labels", "spec", "extensions", "image",
                                             "snapshotkey"};
    if (mask && mask->n_paths > 0) {
        for (size_t i = 0; i < mask->n_paths; i++)
            if (merge_path(s, have, req, mask->paths[i], labels, err) != 0)
                return BERTH_EINVAL;
        return 0;
    }
    if (strcmp(have->snapshotter, req->snapshotter) != 0)
        return s->api->error_make(err, BERTH_EINVAL, "container.Snapshotter field is immutable");
    if (req->runtime == NULL || strcmp(have->runtime->name, req->runtime->name) != 0)
        return s->api->error_make(err, BERTH_EINVAL, "container.Runtime.Name field is immutable");
    for (size_t i = 0; i < sizeof(everything) / sizeof(everything[0]); i++)
        merge_path(s, have, req, everything[i], labels, err);
    return 0;
}

static int
update_hooks(svc_t *s, const char *ns, const char *id, berth_kv_t *labels, berth_error_t **err)
{
    berth_hook_container_update_t p = {
        .struct_size = sizeof(p), .namespace_ = ns, .id = id, .labels = labels};
    int rc = s->api->hook_invoke(BERTH_HOOK_CONTAINER_PRE_UPDATE, &p, err);
    if (rc == 0)
        rc = s->api->hook_invoke(BERTH_HOOK_CONTAINER_POST_UPDATE, &p, err);
    s->api->free(p.resources_json); /* a handler may have set it; containers carry no resources */
    return rc != 0 ? s->api->error_wrap(err, "container %s", id) : 0;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Containers__V1__UpdateContainerRequest *r =
        containerd__services__containers__v1__update_container_request__unpack(NULL, len, req);
    if (r == NULL || r->container == NULL) {
        containerd__services__containers__v1__update_container_request__free_unpacked(r, NULL);
        return bad(s, "UpdateContainerRequest", err);
    }
    container_pb_t *have = load(s, ns, r->container->id, err);
    int rc = have ? 0 : code_of(err, BERTH_ENOTFOUND);
    berth_kv_t *labels = have ? labels_kv(s, have) : NULL;
    if (rc == 0)
        rc = merge(s, have, r->container, r->update_mask, labels, err);
    if (rc == 0)
        rc = update_hooks(s, ns, have->id, labels, err);
    label_pb_t **ptrs = NULL, *items = NULL, **old = have ? have->labels : NULL;
    size_t n_old = have ? have->n_labels : 0;
    if (rc == 0) {
        items = labels_from_kv(s, have, labels, &ptrs);
        rc = store(s, ns, have, 0, err);
        if (rc == 0 && (rc = respond(s, ns, have->id, resp, resp_len, err)) == 0)
            publish_update(s, ns, have);
        have->labels = old;
        have->n_labels = n_old;
    }
    free(items);
    free(ptrs);
    if (labels)
        s->api->kv_free(labels);
    if (have)
        containerd__services__containers__v1__container__free_unpacked(have, NULL);
    containerd__services__containers__v1__update_container_request__free_unpacked(r, NULL);
    return rc;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Containers__V1__DeleteContainerRequest *r =
        containerd__services__containers__v1__delete_container_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "DeleteContainerRequest", err);
    int rc = s->mdo->container_delete(s->md, ns, r->id, err);
    if (rc == 0) {
        Containerd__Events__ContainerDelete ev = CONTAINERD__EVENTS__CONTAINER_DELETE__INIT;
        ev.id = r->id;
        publish(s, ns, "/containers/delete", "containerd.events.ContainerDelete", &ev.base);
    }
    containerd__services__containers__v1__delete_container_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- the plugin ------------------------------------------------------------------------------------ */

static const berth_grpc_method_t containers_methods[] = {
    NS_UNARY("Get", get_call),
    NS_UNARY("List", list_call),
    {.name = "ListStream",
     .kind = BERTH_RPC_SERVER_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = stream_open,
     .closed = stream_closed},
    NS_UNARY("Create", create_call),
    NS_UNARY("Update", update_call),
    NS_UNARY("Delete", delete_call),
};

static const berth_grpc_service_v1_t containers_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.containers.v1.Containers",
    .methods = containers_methods,
    .n_methods = sizeof(containers_methods) / sizeof(containers_methods[0]),
};

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md, ev;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0 ||
        ic->api->get_single(ic, BERTH_EVENTS_TYPE, &ev, err) < 0)
        return code_of(err, BERTH_EUNKNOWN);
    svc_t *s = calloc(1, sizeof(*s));
    *s = (svc_t){ic->api, ic->loop, md.instance, md.ops, ev.instance, ev.ops};
    *instance = s;
    return 0;
}

static const char *const service_requires[] = {BERTH_METADATA_TYPE, BERTH_EVENTS_TYPE, NULL};

static const berth_plugin_reg_t service_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "containers",
    .requires = service_requires,
    .init = service_init,
    .fini = free,
    .ops = &containers_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};

static const berth_plugin_reg_t *const containers_plugins[] = {&service_plugin, NULL};

BERTH_MODULE(containers, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description =
                 "containerd's Containers service over metadata records, with the container "
                 "hooks",
             .plugins = containers_plugins)
