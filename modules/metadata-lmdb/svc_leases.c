/* SPDX-License-Identifier: Apache-2.0 */
/* containerd.services.leases.v1.Leases over the metadata store; every call needs a namespace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "filters.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include <berth/gc.h>

#include "services.h"

typedef Containerd__Services__Leases__V1__Lease lease_pb_t;
typedef Containerd__Services__Leases__V1__Lease__LabelsEntry entry_t;

static int
bad_request(md_service_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

/* A Lease message that owns copies of everything; free with lease_pb_free. */
static lease_pb_t *
lease_pb_new(md_service_t *s, const berth_lease_t *l)
{
    lease_pb_t *pb = malloc(sizeof(*pb));
    containerd__services__leases__v1__lease__init(pb);
    pb->id = strdup(l->id);
    pb->created_at = malloc(sizeof(*pb->created_at));
    google__protobuf__timestamp__init(pb->created_at);
    pb->created_at->seconds = l->created_ns / 1000000000;
    pb->created_at->nanos = (int32_t)(l->created_ns % 1000000000);
    pb->n_labels = s->api->kv_size(l->labels);
    pb->labels = calloc(pb->n_labels + 1, sizeof(entry_t *));
    for (size_t i = 0; i < pb->n_labels; i++) {
        pb->labels[i] = malloc(sizeof(entry_t));
        containerd__services__leases__v1__lease__labels_entry__init(pb->labels[i]);
        pb->labels[i]->key = strdup(s->api->kv_key_at(l->labels, i));
        pb->labels[i]->value = strdup(s->api->kv_value_at(l->labels, i));
    }
    return pb;
}

static void
lease_pb_free(lease_pb_t *pb)
{
    protobuf_c_message_free_unpacked(&pb->base,
                                     NULL); /* frees what malloc made, as unpack's would */
}

static void
random_id(char *out, size_t len)
{
    unsigned char b[12];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        memset(b, 0, sizeof(b));
    for (size_t i = 0; i < sizeof(b) && 2 * i + 2 < len; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Leases__V1__CreateRequest *r =
        containerd__services__leases__v1__create_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "CreateRequest", err);
    char generated[32] = "";
    const char *id = r->id;
    if (id[0] == '\0') { /* "when the id is not set the service generates a random identifier" */
        random_id(generated, sizeof(generated));
        id = generated;
    }
    berth_kv_t *kv = s->api->kv_new();
    for (size_t i = 0; i < r->n_labels; i++)
        s->api->kv_set(kv, r->labels[i]->key, r->labels[i]->value);
    berth_lease_t l = {.id = id, .labels = kv};
    int rc = s->ops->lease_create(s->md, ns, id, kv, &l.created_ns, err);
    if (rc == 0) {
        Containerd__Services__Leases__V1__CreateResponse out =
            CONTAINERD__SERVICES__LEASES__V1__CREATE_RESPONSE__INIT;
        out.lease = lease_pb_new(s, &l);
        md_pack(&out.base, resp, resp_len);
        lease_pb_free(out.lease);
    }
    s->api->kv_free(kv);
    containerd__services__leases__v1__create_request__free_unpacked(r, NULL);
    return rc;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Leases__V1__DeleteRequest *r =
        containerd__services__leases__v1__delete_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "DeleteRequest", err);
    int rc = s->ops->lease_delete(s->md, ns, r->id, err);
    if (rc == 0 && r->sync && s->gc_ops) /* "delete and cleanup synchronously before returning" */
        rc = s->gc_ops->collect(s->gc, err);
    containerd__services__leases__v1__delete_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

typedef struct listing {
    md_service_t *s;
    filters_t *filters;
    lease_pb_t **items;
    size_t n;
} listing_t;

/* containerd's adaptLease: id, labels.<key> */
static const char *
lease_field(void *object, const char *const *path, int npath)
{
    const berth_lease_t *l = ((void **)object)[0];
    const berth_core_api_t *api = ((void **)object)[1];
    if (npath == 1 && strcmp(path[0], "id") == 0)
        return l->id;
    if (npath == 2 && strcmp(path[0], "labels") == 0)
        return api->kv_get(l->labels, path[1]);
    return NULL;
}

static int
collect(void *user, const berth_lease_t *l)
{
    listing_t *li = user;
    void *view[2] = {(void *)l, (void *)li->s->api};
    if (!filters_match(li->filters, lease_field, view))
        return 0;
    li->items = realloc(li->items, (li->n + 1) * sizeof(*li->items));
    li->items[li->n++] = lease_pb_new(li->s, l);
    return 0;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Leases__V1__ListRequest *r =
        containerd__services__leases__v1__list_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "ListRequest", err);
    listing_t l = {.s = s};
    char msg[512];
    int rc = filters_parse_n((const char *const *)r->filters, r->n_filters, &l.filters, msg,
                             sizeof(msg));
    containerd__services__leases__v1__list_request__free_unpacked(r, NULL);
    if (rc < 0)
        return s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    rc = s->ops->lease_list(s->md, ns, collect, &l, err);
    if (rc == 0) {
        Containerd__Services__Leases__V1__ListResponse out =
            CONTAINERD__SERVICES__LEASES__V1__LIST_RESPONSE__INIT;
        out.leases = l.items;
        out.n_leases = l.n;
        md_pack(&out.base, resp, resp_len);
    }
    for (size_t i = 0; i < l.n; i++)
        lease_pb_free(l.items[i]);
    free(l.items);
    filters_free(l.filters);
    return rc;
}

static int
resource_call(md_service_t *s, const char *ns, const uint8_t *req, size_t len, int add,
              uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    /* AddResourceRequest and DeleteResourceRequest are both {string id = 1; Resource resource = 2;} */
    Containerd__Services__Leases__V1__AddResourceRequest *r =
        containerd__services__leases__v1__add_resource_request__unpack(NULL, len, req);
    if (r == NULL || r->resource == NULL) {
        if (r)
            containerd__services__leases__v1__add_resource_request__free_unpacked(r, NULL);
        return bad_request(s, add ? "AddResourceRequest" : "DeleteResourceRequest", err);
    }
    int rc =
        add ? s->ops->lease_add_resource(s->md, ns, r->id, r->resource->type, r->resource->id, err)
            : s->ops->lease_delete_resource(s->md, ns, r->id, r->resource->type, r->resource->id,
                                            err);
    containerd__services__leases__v1__add_resource_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static int
add_resource_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                  size_t *resp_len, berth_error_t **err)
{
    return resource_call(user, ns, req, len, 1, resp, resp_len, err);
}

static int
delete_resource_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                     size_t *resp_len, berth_error_t **err)
{
    return resource_call(user, ns, req, len, 0, resp, resp_len, err);
}

typedef struct resources {
    Containerd__Services__Leases__V1__Resource **items;
    size_t n;
} resources_t;

static int
collect_resource(void *user, const char *type, const char *resource)
{
    resources_t *r = user;
    Containerd__Services__Leases__V1__Resource *pb = malloc(sizeof(*pb));
    containerd__services__leases__v1__resource__init(pb);
    pb->type = strdup(type);
    pb->id = strdup(resource);
    r->items = realloc(r->items, (r->n + 1) * sizeof(*r->items));
    r->items[r->n++] = pb;
    return 0;
}

static int
list_resources_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                    size_t *resp_len, berth_error_t **err)
{
    md_service_t *s = user;
    Containerd__Services__Leases__V1__ListResourcesRequest *r =
        containerd__services__leases__v1__list_resources_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "ListResourcesRequest", err);
    resources_t res = {0};
    int rc = s->ops->lease_list_resources(s->md, ns, r->id, collect_resource, &res, err);
    containerd__services__leases__v1__list_resources_request__free_unpacked(r, NULL);
    if (rc == 0) {
        Containerd__Services__Leases__V1__ListResourcesResponse out =
            CONTAINERD__SERVICES__LEASES__V1__LIST_RESOURCES_RESPONSE__INIT;
        out.resources = res.items;
        out.n_resources = res.n;
        md_pack(&out.base, resp, resp_len);
    }
    for (size_t i = 0; i < res.n; i++)
        protobuf_c_message_free_unpacked(&res.items[i]->base, NULL);
    free(res.items);
    return rc;
}

static const berth_grpc_method_t leases_methods[] = {
    {.name = "Create",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = create_call},
    {.name = "Delete",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = delete_call},
    {.name = "List", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_NAMESPACED, .unary = list_call},
    {.name = "AddResource",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = add_resource_call},
    {.name = "DeleteResource",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = delete_resource_call},
    {.name = "ListResources",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = list_resources_call},
};

static const berth_grpc_service_v1_t leases_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.leases.v1.Leases",
    .methods = leases_methods,
    .n_methods = 6,
};

static int
leases_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t gc;
    if (md_service_init(ic, instance, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    if (ic->api->get_single(ic, BERTH_GC_TYPE, &gc, err) < 0) {
        free(*instance);
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    }
    md_service_t *s = *instance;
    s->gc = gc.instance;
    s->gc_ops = gc.ops;
    return 0;
}

/* containerd's leases service requires the collector too: Delete with sync runs it */
static const char *const service_requires[] = {BERTH_METADATA_TYPE, BERTH_GC_TYPE, NULL};

const berth_plugin_reg_t md_leases_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "leases",
    .requires = service_requires,
    .init = leases_init,
    .fini = free,
    .ops = &leases_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};
