/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.events.v1.Events over the event exchange: Publish (namespace from the call),
 * Forward (namespace and time from the envelope) and Subscribe, a server stream that never ends on its own
 * (ctr's `events` treats the end of the stream as an error).
 */
#include <stdlib.h>
#include <string.h>

#include <berth/events.h>

#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "services.h"

typedef struct events_svc {
    const berth_core_api_t *api;
    void *exchange;
    const berth_events_v1_ops_t *ops;
} events_svc_t;

static int
publish_any(events_svc_t *x, int64_t ts, const char *ns, const char *topic,
            const Google__Protobuf__Any *ev, berth_error_t **err)
{
    if (ev == NULL)
        return x->api->error_make(err, BERTH_EINVAL, "event cannot be nil");
    return x->ops->publish(x->exchange, ts, ns, topic, ev->type_url, ev->value.data, ev->value.len,
                           err);
}

static int
publish_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    events_svc_t *x = user;
    Containerd__Services__Events__V1__PublishRequest *r =
        containerd__services__events__v1__publish_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(
            x->api, &containerd__services__events__v1__publish_request__descriptor, err);
    int rc = publish_any(x, 0, ns, r->topic, r->event, err);
    containerd__services__events__v1__publish_request__free_unpacked(r, NULL);
    *resp = NULL; /* google.protobuf.Empty */
    *resp_len = 0;
    return rc;
}

static int
forward_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
             size_t *resp_len, berth_error_t **err)
{
    events_svc_t *x = user;
    Containerd__Services__Events__V1__ForwardRequest *r =
        containerd__services__events__v1__forward_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(
            x->api, &containerd__services__events__v1__forward_request__descriptor, err);
    int rc;
    const Containerd__Services__Events__V1__Envelope *e = r->envelope;
    if (e == NULL) {
        rc = x->api->error_make(err, BERTH_EINVAL, "envelope cannot be nil");
    } else {
        int64_t ts = e->timestamp ? e->timestamp->seconds * 1000000000 + e->timestamp->nanos : 0;
        rc = publish_any(x, ts, e->namespace_, e->topic, e->event, err);
    }
    containerd__services__events__v1__forward_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- Subscribe ------------------------------------------------------------------------------------ */

typedef struct subscriber {
    events_svc_t *svc;
    const berth_grpc_stream_api_t *sapi;
    berth_grpc_stream_t *st;
    berth_subscription_t *sub;
} subscriber_t;

static void
forward_event(void *user, const berth_event_t *ev)
{
    subscriber_t *s = user;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = ev->timestamp_ns / 1000000000;
    ts.nanos = (int32_t)(ev->timestamp_ns % 1000000000);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = (char *)ev->type_url;
    any.value.data = (uint8_t *)ev->data;
    any.value.len = ev->data_len;
    Containerd__Services__Events__V1__Envelope env =
        CONTAINERD__SERVICES__EVENTS__V1__ENVELOPE__INIT;
    env.timestamp = &ts;
    env.namespace_ = (char *)ev->namespace_;
    env.topic = (char *)ev->topic;
    env.event = &any;
    uint8_t *buf;
    size_t len;
    if (grpc_pack(&env.base, &buf, &len) == 0) {
        s->sapi->send(s->st, buf, len);
        free(buf);
    }
}

static int
subscribe_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
               const uint8_t *req, size_t len, berth_error_t **err)
{
    events_svc_t *x = instance;
    Containerd__Services__Events__V1__SubscribeRequest *r =
        containerd__services__events__v1__subscribe_request__unpack(NULL, len, req);
    if (r == NULL)
        return grpc_bad_request(
            x->api, &containerd__services__events__v1__subscribe_request__descriptor, err);
    /* NULL-terminated copy of the filters for the exchange */
    const char **filters = calloc(r->n_filters + 1, sizeof(char *));
    for (size_t i = 0; i < r->n_filters; i++)
        filters[i] = r->filters[i];
    subscriber_t *s = calloc(1, sizeof(*s));
    s->svc = x;
    s->sapi = sapi;
    s->st = st;
    int rc = x->ops->subscribe(x->exchange, filters, forward_event, s, &s->sub, err);
    free(filters);
    containerd__services__events__v1__subscribe_request__free_unpacked(r, NULL);
    if (rc < 0) {
        free(s);
        return rc;
    }
    sapi->set_user(st, s);
    return 0;
}

static void
subscribe_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    events_svc_t *x = instance;
    subscriber_t *s = sapi->get_user(st);
    if (s == NULL)
        return;
    x->ops->unsubscribe(x->exchange, s->sub);
    free(s);
}

static const berth_grpc_method_t events_methods[] = {
    {.name = "Publish",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_INLINE | BERTH_RPC_NAMESPACED,
     .unary = publish_call},
    {.name = "Forward", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_INLINE, .unary = forward_call},
    {.name = "Subscribe",
     .kind = BERTH_RPC_SERVER_STREAM,
     .open = subscribe_open,
     .closed = subscribe_closed},
};

static const berth_grpc_service_v1_t events_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.events.v1.Events",
    .methods = events_methods,
    .n_methods = 3,
};

static int
events_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t exchange;
    if (ic->api->get_single(ic, BERTH_EVENTS_TYPE, &exchange, err) < 0)
        return -1;
    events_svc_t *x = calloc(1, sizeof(*x));
    x->api = ic->api;
    x->exchange = exchange.instance;
    x->ops = exchange.ops;
    *instance = x;
    return 0;
}

static const char *const events_requires[] = {BERTH_EVENTS_TYPE, NULL};

const berth_plugin_reg_t grpc_events_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_GRPC_SERVICE_TYPE,
    .id = "events",
    .requires = events_requires,
    .init = events_init,
    .fini = free,
    .ops = &events_service,
};
