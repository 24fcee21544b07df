/* SPDX-License-Identifier: Apache-2.0 */
/* Events/Subscribe: a server stream of Envelopes, each handed to the caller's function with its event
 * decoded as JSON when the library compiles its type (containerd's events protos). */
#include <stdlib.h>
#include <string.h>

#include "services/events/v1/events.pb-c.h"
#include "types/event.pb-c.h"

#include "internal.h"

/* The Any's value as JSON, or NULL for a type the library does not know. */
static char *
event_json(const Google__Protobuf__Any *any)
{
    if (any == NULL)
        return NULL;
    const ProtobufCMessageDescriptor *d = bc_descriptor_for(any->type_url);
    if (d == NULL)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (m == NULL)
        return NULL;
    char *json = bc_message_json(m);
    protobuf_c_message_free_unpacked(m, NULL);
    return json;
}

static int
deliver(const Containerd__Types__Envelope *env, berth_event_fn fn, void *user)
{
    const Google__Protobuf__Any *any = env->event;
    char *json = event_json(any);
    berth_event_t ev = {
        .timestamp_ns = bc_ts_ns(env->timestamp),
        .namespace_ = env->namespace_ ? env->namespace_ : "",
        .topic = env->topic ? env->topic : "",
        .type_url = any && any->type_url ? any->type_url : "",
        .value = any ? any->value.data : NULL,
        .len = any ? any->value.len : 0,
        .json = json,
    };
    int stop = fn(user, &ev);
    free(json);
    return stop;
}

BC_EXPORT int
berth_events_subscribe(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                       size_t n_filters, berth_event_fn fn, void *user, berth_error_t **err)
{
    Containerd__Services__Events__V1__SubscribeRequest req =
        CONTAINERD__SERVICES__EVENTS__V1__SUBSCRIBE_REQUEST__INIT;
    req.n_filters = n_filters;
    req.filters = (char **)filters;
    bc_stream_t *s;
    int r = bc_stream_open(c, call, "/containerd.services.events.v1.Events/Subscribe", &s, err);
    if (r < 0)
        return r;
    if ((r = bc_stream_send(s, &req.base, err)) < 0 || (r = bc_stream_close_send(s, err)) < 0) {
        bc_stream_free(s);
        return r;
    }
    for (;;) {
        ProtobufCMessage *m;
        r = bc_stream_recv(s, &containerd__types__envelope__descriptor, &m, err);
        if (r <= 0)
            break;
        int stop = deliver((Containerd__Types__Envelope *)m, fn, user);
        protobuf_c_message_free_unpacked(m, NULL);
        if (stop) {
            r = 0; /* bc_stream_free resets the stream: the server drops the subscription */
            break;
        }
    }
    bc_stream_free(s);
    return r;
}
