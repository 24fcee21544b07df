/* SPDX-License-Identifier: Apache-2.0 */
/* The gRPC services metadata-lmdb.so registers, and their helpers. */
#ifndef BERTH_METADATA_SERVICES_H
#define BERTH_METADATA_SERVICES_H

#include <protobuf-c/protobuf-c.h>

#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>

extern const berth_plugin_reg_t md_namespaces_plugin;
extern const berth_plugin_reg_t md_leases_plugin;
extern const berth_plugin_reg_t md_gc_plugin;

/* What a service handler holds: the metadata instance it was given at init. */
typedef struct md_service {
    const berth_core_api_t *api;
    void *md;
    const berth_metadata_v1_ops_t *ops;
    void *gc; /* leases only */
    const struct berth_gc_v1_ops_s *gc_ops;
} md_service_t;

int md_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err);
int md_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);

#endif
