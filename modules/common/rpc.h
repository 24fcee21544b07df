/* SPDX-License-Identifier: Apache-2.0 */
/* What every gRPC service module writes the same way: packing a response, a namespaced unary method,
 * publishing an event. */
#ifndef BERTH_MODULES_RPC_H
#define BERTH_MODULES_RPC_H

#include <stdint.h>
#include <stdlib.h>

#include <berth/events.h>
#include <berth/grpc.h>
#include <berth/module.h>
#include <protobuf-c/protobuf-c.h>

/* The serialized message in a malloc'd buffer (the transport frees responses with free). */
static inline int
pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *out = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, *out);
    return 0;
}

/* Publishes m as a containerd event of `type` on `topic`. The call it reports has already succeeded, so an
 * event that cannot be published is dropped. */
static inline void
publish_message(const berth_core_api_t *api, const berth_events_v1_ops_t *ops, void *events,
                const char *ns, const char *topic, const char *type, const ProtobufCMessage *m)
{
    uint8_t *data;
    size_t len;
    pack(m, &data, &len);
    berth_error_t *err = NULL;
    if (ops->publish(events, 0, ns, topic, type, data, len, &err) < 0)
        api->error_free(err);
    free(data);
}

#define NS_UNARY(n, fn)                                                                \
    {                                                                                  \
        .name = n, .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_NAMESPACED, .unary = fn \
    }

#endif
