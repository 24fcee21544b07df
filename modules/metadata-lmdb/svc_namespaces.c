/* SPDX-License-Identifier: Apache-2.0 */
/* containerd.services.namespaces.v1.Namespaces over the metadata store, with containerd's semantics. */
#include <stdlib.h>
#include <string.h>

#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "services.h"

typedef Containerd__Services__Namespaces__V1__Namespace ns_pb_t;
typedef Containerd__Services__Namespaces__V1__Namespace__LabelsEntry entry_t;

int
md_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, *out);
    return 0;
}

int
md_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t md;
    if (ic->api->get_single(ic, BERTH_METADATA_TYPE, &md, err) < 0)
        return -1;
    md_service_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->md = md.instance;
    s->ops = md.ops;
    *instance = s;
    return 0;
}

static int
bad_request(md_service_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static berth_kv_t *
kv_of(md_service_t *s, entry_t **e, size_t n)
{
    berth_kv_t *kv = s->api->kv_new();
    for (size_t i = 0; i < n; i++)
        s->api->kv_set(kv, e[i]->key, e[i]->value);
    return kv;
}

/* Fills a Namespace message from a name and labels; free with ns_pb_clear. */
static void
ns_pb_fill(md_service_t *s, ns_pb_t *pb, const char *name, const berth_kv_t *kv)
{
    containerd__services__namespaces__v1__namespace__init(pb);
    pb->name = (char *)name;
    pb->n_labels = s->api->kv_size(kv);
    pb->labels = calloc(pb->n_labels + 1, sizeof(entry_t *));
    for (size_t i = 0; i < pb->n_labels; i++) {
        pb->labels[i] = malloc(sizeof(entry_t));
        containerd__services__namespaces__v1__namespace__labels_entry__init(pb->labels[i]);
        pb->labels[i]->key = (char *)s->api->kv_key_at(kv, i);
        pb->labels[i]->value = (char *)s->api->kv_value_at(kv, i);
    }
}

static void
ns_pb_clear(ns_pb_t *pb)
{
    for (size_t i = 0; i < pb->n_labels; i++)
        free(pb->labels[i]);
    free(pb->labels);
}

/* The namespace as stored now, as a response's `namespace` field. */
static int
respond_namespace(md_service_t *s, const char *name, const ProtobufCMessageDescriptor *d,
                  uint8_t **resp, size_t *len, berth_error_t **err)
{
    berth_kv_t *kv = s->api->kv_new();
    int rc = s->ops->namespace_labels(s->md, name, kv, err);
    if (rc == 0) {
        ns_pb_t pb;
        ns_pb_fill(s, &pb, name, kv);
        /* Get/Create/UpdateNamespaceResponse all are {Namespace namespace = 1;} */
        struct {
            ProtobufCMessage base;
            ns_pb_t *namespace_;
        } out = {PROTOBUF_C_MESSAGE_INIT(d), &pb};
        md_pack(&out.base, resp, len);
        ns_pb_clear(&pb);
    }
    s->api->kv_free(kv);
    return rc;
}

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Namespaces__V1__GetNamespaceRequest *r =
        containerd__services__namespaces__v1__get_namespace_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "GetNamespaceRequest", err);
    int rc = respond_namespace(
        s, r->name, &containerd__services__namespaces__v1__get_namespace_response__descriptor, resp,
        resp_len, err);
    containerd__services__namespaces__v1__get_namespace_request__free_unpacked(r, NULL);
    return rc;
}

typedef struct listing {
    md_service_t *s;
    ns_pb_t **items;
    size_t n;
} listing_t;

static int
collect(void *user, const char *name, const berth_kv_t *labels)
{
    listing_t *l = user;
    ns_pb_t *pb = malloc(sizeof(*pb));
    ns_pb_fill(l->s, pb, strdup(name), labels);
    for (size_t i = 0; i < pb->n_labels;
         i++) { /* own the strings: the kv goes away after this call */
        pb->labels[i]->key = strdup(pb->labels[i]->key);
        pb->labels[i]->value = strdup(pb->labels[i]->value);
    }
    l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n++] = pb;
    return 0;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    listing_t l = {.s = s};
    int rc = s->ops->namespace_list(s->md, collect, &l, err);
    Containerd__Services__Namespaces__V1__ListNamespacesResponse out =
        CONTAINERD__SERVICES__NAMESPACES__V1__LIST_NAMESPACES_RESPONSE__INIT;
    out.namespaces = l.items;
    out.n_namespaces = l.n;
    if (rc == 0)
        md_pack(&out.base, resp, resp_len);
    for (size_t i = 0; i < l.n; i++) {
        for (size_t j = 0; j < l.items[i]->n_labels; j++) {
            free(l.items[i]->labels[j]->key);
            free(l.items[i]->labels[j]->value);
        }
        free(l.items[i]->name);
        ns_pb_clear(l.items[i]);
        free(l.items[i]);
    }
    free(l.items);
    return rc;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Namespaces__V1__CreateNamespaceRequest *r =
        containerd__services__namespaces__v1__create_namespace_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "CreateNamespaceRequest", err);
    const char *name = r->namespace_ ? r->namespace_->name : "";
    berth_kv_t *kv =
        r->namespace_ ? kv_of(s, r->namespace_->labels, r->namespace_->n_labels) : s->api->kv_new();
    int rc = s->ops->namespace_create(s->md, name, kv, err);
    if (rc == 0)
        rc = respond_namespace(
            s, name, &containerd__services__namespaces__v1__create_namespace_response__descriptor,
            resp, resp_len, err);
    s->api->kv_free(kv);
    containerd__services__namespaces__v1__create_namespace_request__free_unpacked(r, NULL);
    return rc;
}

/* With a mask only "labels.<key>" paths are allowed; without one the labels are replaced. */
static int
apply_update(md_service_t *s, const Containerd__Services__Namespaces__V1__UpdateNamespaceRequest *r,
             berth_error_t **err)
{
    const char *name = r->namespace_->name;
    berth_kv_t *kv = kv_of(s, r->namespace_->labels, r->namespace_->n_labels);
    int rc = 0;
    if (r->update_mask && r->update_mask->n_paths > 0) {
        for (size_t i = 0; rc == 0 && i < r->update_mask->n_paths; i++) {
            const char *path = r->update_mask->paths[i];
            if (strncmp(path, "labels.", 7) != 0) {
                rc = s->api->error_make(err, BERTH_EINVAL, "cannot update \"%s\" field", path);
                break;
            }
            const char *v = s->api->kv_get(kv, path + 7);
            rc = s->ops->namespace_set_label(s->md, name, path + 7, v ? v : "", err);
        }
    } else {
        rc = s->ops->namespace_set_labels(s->md, name, kv, err);
    }
    s->api->kv_free(kv);
    return rc;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Namespaces__V1__UpdateNamespaceRequest *r =
        containerd__services__namespaces__v1__update_namespace_request__unpack(NULL, len, req);
    if (r == NULL || r->namespace_ == NULL) {
        if (r)
            containerd__services__namespaces__v1__update_namespace_request__free_unpacked(r, NULL);
        return bad_request(s, "UpdateNamespaceRequest", err);
    }
    int rc = apply_update(s, r, err);
    if (rc == 0)
        rc = respond_namespace(
            s, r->namespace_->name,
            &containerd__services__namespaces__v1__update_namespace_response__descriptor, resp,
            resp_len, err);
    containerd__services__namespaces__v1__update_namespace_request__free_unpacked(r, NULL);
    return rc;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Namespaces__V1__DeleteNamespaceRequest *r =
        containerd__services__namespaces__v1__delete_namespace_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "DeleteNamespaceRequest", err);
    int rc = s->ops->namespace_delete(s->md, r->name, err);
    containerd__services__namespaces__v1__delete_namespace_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static const berth_grpc_method_t namespaces_methods[] = {
    {.name = "Get", .kind = BERTH_RPC_UNARY, .unary = get_call},
    {.name = "List", .kind = BERTH_RPC_UNARY, .unary = list_call},
    {.name = "Create", .kind = BERTH_RPC_UNARY, .unary = create_call},
    {.name = "Update", .kind = BERTH_RPC_UNARY, .unary = update_call},
    {.name = "Delete", .kind = BERTH_RPC_UNARY, .unary = delete_call},
};

static const berth_grpc_service_v1_t namespaces_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.namespaces.v1.Namespaces",
    .methods = namespaces_methods,
    .n_methods = 5,
};

static const char *const service_requires[] = {BERTH_METADATA_TYPE, NULL};

const berth_plugin_reg_t md_namespaces_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "namespaces",
    .requires = service_requires,
    .init = md_service_init,
    .fini = free,
    .ops = &namespaces_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};
