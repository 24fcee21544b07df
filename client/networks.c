/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth.services.networks.v1.Networks (berthd only): create, get, list, remove, endpoints.
 */
#include <string.h>

#include "store_int.h"
#include "berth/services/networks/v1/networks.pb-c.h"

#define NETWORKS "/berth.services.networks.v1.Networks/"

typedef Berth__Services__Networks__V1__Network network_pb_t;

static void
network_clear(berth_network_t *n)
{
    free(n->name);
    free(n->source);
    free(n->driver);
    free(n->bridge);
    free(n->subnet);
    free(n->gateway);
    free(n->conflist);
    berth_kv_free(n->labels, n->n_labels);
    memset(n, 0, sizeof(*n));
}

BC_EXPORT void
berth_network_free(berth_network_t *n)
{
    if (n)
        network_clear(n);
    free(n);
}

BC_EXPORT void
berth_networks_free(berth_network_t *n, size_t count)
{
    for (size_t i = 0; n && i < count; i++)
        network_clear(&n[i]);
    free(n);
}

static int
network_from_pb(const network_pb_t *pb, berth_network_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = bc_strdup(pb->name);
    out->source = bc_strdup(pb->source);
    out->driver = bc_strdup(pb->driver);
    out->bridge = bc_strdup(pb->bridge);
    out->subnet = bc_strdup(pb->subnet);
    out->gateway = bc_strdup(pb->gateway);
    out->conflist = bc_strdup(pb->conflist);
    if (!out->name || !out->source || !out->driver || !out->bridge || !out->subnet ||
        !out->gateway || !out->conflist ||
        bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels) < 0) {
        network_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

static int
network_out(const network_pb_t *pb, const char *name, berth_network_t **out, berth_error_t **err)
{
    if (pb == NULL)
        return bc_error(err, BERTH_ENOTFOUND, "network \"%s\": not found", name);
    berth_network_t *n = calloc(1, sizeof(*n));
    if (n == NULL || network_from_pb(pb, n) < 0) {
        free(n);
        return bc_error(err, BERTH_ENOMEM, "network \"%s\": out of memory", name);
    }
    *out = n;
    return 0;
}

BC_EXPORT int
berth_network_create(berth_client_t *c, const berth_call_t *call, const char *name,
                     const berth_network_opts_t *opts, berth_network_t **out, berth_error_t **err)
{
    static const berth_network_opts_t none = {0};
    if (out)
        *out = NULL;
    if (name == NULL || !name[0])
        return bc_error(err, BERTH_EINVAL, "network create: a name is required");
    if (opts == NULL)
        opts = &none;
    Berth__Services__Networks__V1__CreateNetworkRequest req =
        BERTH__SERVICES__NETWORKS__V1__CREATE_NETWORK_REQUEST__INIT;
    Berth__Services__Networks__V1__CreateNetworkRequest__LabelsEntry *le, **lp;
    if (BC_MAP_FROM_KV(Berth__Services__Networks__V1__CreateNetworkRequest__LabelsEntry,
                       BERTH__SERVICES__NETWORKS__V1__CREATE_NETWORK_REQUEST__LABELS_ENTRY__INIT,
                       opts->labels, opts->n_labels, le, lp) < 0) {
        free(le);
        free(lp);
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    }
    req.name = (char *)name;
    if (opts->conflist)
        req.conflist = (char *)opts->conflist;
    if (opts->subnet)
        req.subnet = (char *)opts->subnet;
    if (opts->gateway)
        req.gateway = (char *)opts->gateway;
    if (opts->bridge)
        req.bridge = (char *)opts->bridge;
    req.internal = opts->internal != 0;
    req.labels = lp;
    req.n_labels = opts->n_labels;
    Berth__Services__Networks__V1__CreateNetworkResponse *resp = NULL;
    int rc = bc_unary(c, call, NETWORKS "Create", &req.base,
                      &berth__services__networks__v1__create_network_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    free(le);
    free(lp);
    if (rc < 0)
        return rc;
    if (out)
        rc = network_out(resp->network, name, out, err);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_network_get(berth_client_t *c, const berth_call_t *call, const char *name,
                  berth_network_t **out, berth_error_t **err)
{
    if (name == NULL || out == NULL)
        return bc_error(err, BERTH_EINVAL, "network get: a name and an out pointer are required");
    *out = NULL;
    Berth__Services__Networks__V1__GetNetworkRequest req =
        BERTH__SERVICES__NETWORKS__V1__GET_NETWORK_REQUEST__INIT;
    req.name = (char *)name;
    Berth__Services__Networks__V1__GetNetworkResponse *resp = NULL;
    int rc = bc_unary(c, call, NETWORKS "Get", &req.base,
                      &berth__services__networks__v1__get_network_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    rc = network_out(resp->network, name, out, err);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_network_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                   size_t n_filters, berth_network_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "network list: out pointers are required");
    *out = NULL;
    *n = 0;
    Berth__Services__Networks__V1__ListNetworksRequest req =
        BERTH__SERVICES__NETWORKS__V1__LIST_NETWORKS_REQUEST__INIT;
    req.filters = (char **)filters;
    req.n_filters = n_filters;
    Berth__Services__Networks__V1__ListNetworksResponse *resp = NULL;
    int rc = bc_unary(c, call, NETWORKS "List", &req.base,
                      &berth__services__networks__v1__list_networks_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_network_t *v = resp->n_networks ? calloc(resp->n_networks, sizeof(*v)) : NULL;
    size_t k = 0;
    if (resp->n_networks && v == NULL)
        rc = BERTH_ENOMEM;
    for (; rc == 0 && k < resp->n_networks; k++)
        rc = network_from_pb(resp->networks[k], &v[k]);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        berth_networks_free(v, k);
        return bc_error(err, BERTH_ENOMEM, "network list: out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}

BC_EXPORT int
berth_network_remove(berth_client_t *c, const berth_call_t *call, const char *name,
                     berth_error_t **err)
{
    if (name == NULL || !name[0])
        return bc_error(err, BERTH_EINVAL, "network remove: a name is required");
    Berth__Services__Networks__V1__RemoveNetworkRequest req =
        BERTH__SERVICES__NETWORKS__V1__REMOVE_NETWORK_REQUEST__INIT;
    req.name = (char *)name;
    return bc_unary(c, call, NETWORKS "Remove", &req.base, NULL, NULL, err);
}

static void
endpoint_clear(berth_endpoint_t *e)
{
    free(e->namespace_);
    free(e->container_id);
    free(e->network);
    free(e->interface);
    free(e->gateway);
    free(e->mac);
    free(e->netns);
    bc_strv_free(e->addresses, e->n_addresses);
    memset(e, 0, sizeof(*e));
}

BC_EXPORT void
berth_endpoints_free(berth_endpoint_t *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        endpoint_clear(&e[i]);
    free(e);
}

static int
endpoint_from_pb(const Berth__Services__Networks__V1__Endpoint *pb, berth_endpoint_t *out)
{
    memset(out, 0, sizeof(*out));
    out->namespace_ = bc_strdup(pb->namespace_);
    out->container_id = bc_strdup(pb->container_id);
    out->network = bc_strdup(pb->network);
    out->interface = bc_strdup(pb->interface);
    out->gateway = bc_strdup(pb->gateway);
    out->mac = bc_strdup(pb->mac);
    out->netns = bc_strdup(pb->netns);
    if (!out->namespace_ || !out->container_id || !out->network || !out->interface ||
        !out->gateway || !out->mac || !out->netns ||
        bc_strv_dup(pb->addresses, pb->n_addresses, &out->addresses) < 0) {
        endpoint_clear(out);
        return BERTH_ENOMEM;
    }
    out->n_addresses = pb->n_addresses;
    return 0;
}

BC_EXPORT int
berth_network_endpoints(berth_client_t *c, const berth_call_t *call, const char *network,
                        berth_endpoint_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "network endpoints: out pointers are required");
    *out = NULL;
    *n = 0;
    Berth__Services__Networks__V1__ListEndpointsRequest req =
        BERTH__SERVICES__NETWORKS__V1__LIST_ENDPOINTS_REQUEST__INIT;
    if (network)
        req.network = (char *)network;
    Berth__Services__Networks__V1__ListEndpointsResponse *resp = NULL;
    int rc = bc_unary(c, call, NETWORKS "Endpoints", &req.base,
                      &berth__services__networks__v1__list_endpoints_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_endpoint_t *v = resp->n_endpoints ? calloc(resp->n_endpoints, sizeof(*v)) : NULL;
    size_t k = 0;
    if (resp->n_endpoints && v == NULL)
        rc = BERTH_ENOMEM;
    for (; rc == 0 && k < resp->n_endpoints; k++)
        rc = endpoint_from_pb(resp->endpoints[k], &v[k]);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        berth_endpoints_free(v, k);
        return bc_error(err, BERTH_ENOMEM, "network endpoints: out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}
