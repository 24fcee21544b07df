/* SPDX-License-Identifier: Apache-2.0 */
/* grpc.so: the transport and the services it serves itself. */
#include "services.h"

static const berth_plugin_reg_t *const grpc_plugins[] = {
    &grpc_transport_plugin,
    &grpc_version_plugin,
    &grpc_introspection_plugin,
    &grpc_health_plugin,
    &grpc_events_plugin,
    &grpc_modules_plugin,
    NULL,
};

BERTH_MODULE(grpc, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "containerd's gRPC API over HTTP/2 on a unix socket",
             .plugins = grpc_plugins)
