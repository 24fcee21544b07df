/* SPDX-License-Identifier: Apache-2.0 */
/* The services grpc.so serves itself, each an io.containerd.grpc.v1 plugin; and their shared helpers. */
#ifndef BERTH_GRPC_SERVICES_H
#define BERTH_GRPC_SERVICES_H

#include <protobuf-c/protobuf-c.h>

#include <berth/grpc.h>
#include <berth/module.h>

extern const berth_plugin_reg_t grpc_transport_plugin;
extern const berth_plugin_reg_t grpc_version_plugin;
extern const berth_plugin_reg_t grpc_introspection_plugin;
extern const berth_plugin_reg_t grpc_health_plugin;
extern const berth_plugin_reg_t grpc_events_plugin;
extern const berth_plugin_reg_t grpc_modules_plugin;

/* Serializes m into a fresh buffer for a unary response. */
int grpc_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);
/* A request that does not decode: InvalidArgument naming the message type. */
int grpc_bad_request(const berth_core_api_t *api, const ProtobufCMessageDescriptor *d,
                     berth_error_t **err);
/* Copies a NULL-terminated vector for a repeated string field (the copy is NULL-terminated too). */
char **grpc_strv_copy(const char *const *v, size_t *n);
/* The gRPC code for a BERTH_E* (status.c). */
int grpc_status_of(int berth_code);

#endif
