/* SPDX-License-Identifier: Apache-2.0 */
/* What every gRPC service module writes the same way: packing a response, a namespaced unary method. */
#ifndef BERTH_MODULES_RPC_H
#define BERTH_MODULES_RPC_H

#include <stdint.h>
#include <stdlib.h>

#include <berth/grpc.h>
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

#define NS_UNARY(n, fn)                                                                \
    {                                                                                  \
        .name = n, .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_NAMESPACED, .unary = fn \
    }

#endif
