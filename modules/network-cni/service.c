/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth.services.networks.v1.Networks (io.containerd.grpc.v1.networks): the networks of network-cni
 * (Create, Get, List with containerd's filters, Remove) and the endpoints attached to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/grpc.h>

#include "berth/services/networks/v1/networks.pb-c.h"
#include "filters.h"
#include "net.h"
#include "rpc.h"

typedef Berth__Services__Networks__V1__Network network_pb_t;
typedef Berth__Services__Networks__V1__Network__LabelsEntry label_pb_t;

typedef struct svc {
    const berth_core_api_t *api;
    net_t *net;
} svc_t;

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

/* A network as its message; strings point into nw (keep it alive until packed). free_pb after. */
static network_pb_t *
to_pb(const network_t *nw)
{
    network_pb_t *m = calloc(1, sizeof(*m));
    berth__services__networks__v1__network__init(m);
    m->name = nw->name;
    m->source = (char *)nw->source;
    m->conflist = (char *)json_object_to_json_string_ext(
        nw->conflist, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    const char *d, *b, *sn, *g;
    cni_conflist_summary(nw->conflist, &d, &b, &sn, &g);
    m->driver = (char *)d, m->bridge = (char *)b, m->subnet = (char *)sn, m->gateway = (char *)g;
    size_t nl = nw->labels ? (size_t)json_object_object_length(nw->labels) : 0;
    m->labels = calloc(nl + 1, sizeof(*m->labels));
    if (nw->labels) {
        json_object_object_foreach(nw->labels, k, v)
        {
            label_pb_t *l = calloc(1, sizeof(*l));
            berth__services__networks__v1__network__labels_entry__init(l);
            l->key = k;
            l->value = (char *)json_object_get_string(v);
            m->labels[m->n_labels++] = l;
        }
    }
    return m;
}

static void
free_pb(network_pb_t *m)
{
    for (size_t i = 0; m && i < m->n_labels; i++)
        free(m->labels[i]);
    if (m)
        free(m->labels);
    free(m);
}

static int
find(svc_t *s, const char *name, network_t **all, size_t *n, size_t *idx, berth_error_t **err)
{
    net_list_networks(s->net, all, n);
    for (*idx = 0; *idx < *n; (*idx)++)
        if (strcmp((*all)[*idx].name, name) == 0)
            return 0;
    return s->api->error_make(err, BERTH_ENOTFOUND, "network \"%s\": not found", name);
}

static void
free_all(network_t *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        network_free(&all[i]);
    free(all);
}

/* Get and Create both answer {Network network = 1;}. */
static int
respond(svc_t *s, const char *name, uint8_t **resp, size_t *len, berth_error_t **err)
{
    network_t *all;
    size_t n, i;
    int rc = find(s, name, &all, &n, &i, err);
    if (rc == 0) {
        Berth__Services__Networks__V1__GetNetworkResponse out =
            BERTH__SERVICES__NETWORKS__V1__GET_NETWORK_RESPONSE__INIT;
        out.network = to_pb(&all[i]);
        pack(&out.base, resp, len);
        free_pb(out.network);
    }
    free_all(all, n);
    return rc;
}

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Networks__V1__GetNetworkRequest *r =
        berth__services__networks__v1__get_network_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "GetNetworkRequest", err);
    int rc = respond(s, r->name, resp, resp_len, err);
    berth__services__networks__v1__get_network_request__free_unpacked(r, NULL);
    return rc;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    const berth_core_api_t *api = s->api;
    Berth__Services__Networks__V1__CreateNetworkRequest *r =
        berth__services__networks__v1__create_network_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "CreateNetworkRequest", err);
    int rc = 0;
    char errbuf[256], br[16];
    json_object *c = NULL;
    if (!cni_valid_name(r->name))
        rc =
            api->error_make(err, BERTH_EINVAL,
                            "network name \"%s\" is not valid: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most "
                            "64 bytes",
                            r->name);
    else if (r->conflist && *r->conflist) {
        if (!(c = cni_conflist_parse(r->conflist, r->name, s->net->ipam_dir, errbuf,
                                     sizeof(errbuf))))
            rc = api->error_make(err, BERTH_EINVAL, "network \"%s\": %s", r->name, errbuf);
    } else {
        snprintf(br, sizeof(br), "br-%.12s", r->name);
        cni_bridge_t b = {.name = r->name,
                          .bridge = r->bridge && *r->bridge ? r->bridge : br,
                          .subnet = r->subnet,
                          .gateway = r->gateway,
                          .masquerade = 1,
                          .internal = r->internal,
                          .data_dir = s->net->ipam_dir};
        if (!r->subnet || !*r->subnet)
            rc = api->error_make(err, BERTH_EINVAL,
                                 "network \"%s\": a bridge network needs a subnet (or give a "
                                 "conflist)",
                                 r->name);
        else if (!(c = cni_bridge_conflist(&b, errbuf, sizeof(errbuf))))
            rc = api->error_make(err, BERTH_EINVAL, "network \"%s\": %s", r->name, errbuf);
    }
    if (rc == 0 && net_check_versions(s->net, c, err) < 0) {
        rc = (*err)->code;
        json_object_put(c);
    }
    if (rc == 0) {
        json_object *labels = json_object_new_object();
        for (size_t i = 0; i < r->n_labels; i++)
            json_object_object_add(labels, r->labels[i]->key,
                                   json_object_new_string(r->labels[i]->value));
        rc = net_create_network(s->net, r->name, c, labels, err);
        if (rc == 0)
            rc = respond(s, r->name, resp, resp_len, err);
    }
    berth__services__networks__v1__create_network_request__free_unpacked(r, NULL);
    return rc;
}

static const char *
network_field(void *object, const char *const *path, int npath)
{
    network_pb_t *m = object;
    if (npath == 1 && strcmp(path[0], "name") == 0)
        return m->name;
    if (npath == 1 && strcmp(path[0], "source") == 0)
        return m->source;
    if (npath == 1 && strcmp(path[0], "driver") == 0)
        return m->driver;
    for (size_t i = 0; npath == 2 && strcmp(path[0], "labels") == 0 && i < m->n_labels; i++)
        if (strcmp(m->labels[i]->key, path[1]) == 0)
            return m->labels[i]->value;
    return NULL;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Networks__V1__ListNetworksRequest *r =
        berth__services__networks__v1__list_networks_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListNetworksRequest", err);
    filters_t *f = NULL;
    char errbuf[512];
    int rc = 0;
    if (filters_parse_n((const char *const *)r->filters, r->n_filters, &f, errbuf, sizeof(errbuf)) <
        0)
        rc = s->api->error_make(err, BERTH_EINVAL, "%s", errbuf);
    network_t *all = NULL;
    size_t n = 0;
    if (rc == 0) {
        net_list_networks(s->net, &all, &n);
        Berth__Services__Networks__V1__ListNetworksResponse out =
            BERTH__SERVICES__NETWORKS__V1__LIST_NETWORKS_RESPONSE__INIT;
        out.networks = calloc(n + 1, sizeof(*out.networks));
        for (size_t i = 0; i < n; i++) {
            network_pb_t *m = to_pb(&all[i]);
            if (filters_match(f, network_field, m))
                out.networks[out.n_networks++] = m;
            else
                free_pb(m);
        }
        pack(&out.base, resp, resp_len);
        for (size_t i = 0; i < out.n_networks; i++)
            free_pb(out.networks[i]);
        free(out.networks);
        free_all(all, n);
    }
    filters_free(f);
    berth__services__networks__v1__list_networks_request__free_unpacked(r, NULL);
    return rc;
}

static int
remove_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Networks__V1__RemoveNetworkRequest *r =
        berth__services__networks__v1__remove_network_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "RemoveNetworkRequest", err);
    int rc = net_remove_network(s->net, r->name, err);
    berth__services__networks__v1__remove_network_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

typedef struct eps {
    const char *network;
    Berth__Services__Networks__V1__ListEndpointsResponse out;
} eps_t;

static char *
jstr(json_object *o, const char *key)
{
    json_object *v;
    return strdup(json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "");
}

static int
add_endpoints(void *user, json_object *rec)
{
    eps_t *e = user;
    json_object *nets, *ports = NULL;
    if (!json_object_object_get_ex(rec, "networks", &nets))
        return 0;
    json_object_object_get_ex(rec, "ports", &ports);
    for (size_t i = 0; i < json_object_array_length(nets); i++) {
        json_object *ne = json_object_array_get_idx(nets, i), *res = NULL;
        char *name = jstr(ne, "name");
        if (*e->network && strcmp(name, e->network) != 0) {
            free(name);
            continue;
        }
        Berth__Services__Networks__V1__Endpoint *ep = calloc(1, sizeof(*ep));
        berth__services__networks__v1__endpoint__init(ep);
        ep->namespace_ = jstr(rec, "namespace");
        ep->container_id = jstr(rec, "id");
        ep->network = name;
        ep->interface = jstr(ne, "ifname");
        ep->netns = jstr(rec, "netns");
        json_object_object_get_ex(ne, "result", &res);
        cni_addr_t a[16];
        size_t k = cni_result_addresses(res, ep->interface, a, 16);
        ep->addresses = calloc(k + 1, sizeof(char *));
        for (size_t j = 0; j < k; j++)
            ep->addresses[ep->n_addresses++] = strdup(a[j].address);
        ep->gateway = strdup(k ? a[0].gateway : "");
        ep->mac = strdup(k ? a[0].mac : "");
        size_t np = ports ? json_object_array_length(ports) : 0;
        ep->ports = calloc(np + 1, sizeof(*ep->ports));
        for (size_t j = 0; j < np; j++) {
            json_object *pm = json_object_array_get_idx(ports, j), *v;
            Berth__Services__Networks__V1__PortMapping *m = calloc(1, sizeof(*m));
            berth__services__networks__v1__port_mapping__init(m);
            m->host_ip = jstr(pm, "hostIP");
            m->protocol = jstr(pm, "protocol");
            m->host_port =
                json_object_object_get_ex(pm, "hostPort", &v) ? json_object_get_int(v) : 0;
            m->container_port =
                json_object_object_get_ex(pm, "containerPort", &v) ? json_object_get_int(v) : 0;
            ep->ports[ep->n_ports++] = m;
        }
        e->out.endpoints = realloc(e->out.endpoints, (e->out.n_endpoints + 1) * sizeof(ep));
        e->out.endpoints[e->out.n_endpoints++] = ep;
    }
    return 0;
}

static int
endpoints_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
               size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Networks__V1__ListEndpointsRequest *r =
        berth__services__networks__v1__list_endpoints_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListEndpointsRequest", err);
    eps_t e = {r->network ? r->network : "",
               BERTH__SERVICES__NETWORKS__V1__LIST_ENDPOINTS_RESPONSE__INIT};
    int rc = 0;
    if (*e.network) {
        json_object *c = net_conflist(s->net, e.network);
        if (c == NULL)
            rc = s->api->error_make(err, BERTH_ENOTFOUND, "network \"%s\": not found", e.network);
        json_object_put(c);
    }
    if (rc == 0) {
        ep_foreach_record(s->net, add_endpoints, &e);
        pack(&e.out.base, resp, resp_len);
    }
    /* the response owns nothing of the request: free it through protobuf-c */
    for (size_t i = 0; i < e.out.n_endpoints; i++)
        protobuf_c_message_free_unpacked(&e.out.endpoints[i]->base, NULL);
    free(e.out.endpoints);
    berth__services__networks__v1__list_endpoints_request__free_unpacked(r, NULL);
    return rc;
}

static const berth_grpc_method_t networks_methods[] = {
    {.name = "Create", .kind = BERTH_RPC_UNARY, .unary = create_call},
    {.name = "Get", .kind = BERTH_RPC_UNARY, .unary = get_call},
    {.name = "List", .kind = BERTH_RPC_UNARY, .unary = list_call},
    {.name = "Remove", .kind = BERTH_RPC_UNARY, .unary = remove_call},
    {.name = "Endpoints", .kind = BERTH_RPC_UNARY, .unary = endpoints_call},
};

static const berth_grpc_service_v1_t networks_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "berth.services.networks.v1.Networks",
    .methods = networks_methods,
    .n_methods = sizeof(networks_methods) / sizeof(networks_methods[0]),
};

static int
service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t in;
    if (ic->api->get(ic, BERTH_NETWORK_TYPE, "cni", &in, err) < 0)
        return (*err)->code;
    svc_t *s = calloc(1, sizeof(*s));
    *s = (svc_t){ic->api, in.instance};
    *instance = s;
    return 0;
}

static const char *const service_requires[] = {BERTH_NETWORK_TYPE, NULL};

const berth_plugin_reg_t networks_service_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "networks",
    .requires = service_requires,
    .init = service_init,
    .fini = free,
    .ops = &networks_service,
    .flags = BERTH_PLUGIN_ON_DEMAND,
};
