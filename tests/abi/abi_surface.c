/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every public ABI type, reachable from one exported function, so abidw/abidiff can see the whole
 * surface of abi/berth/ in this library's DWARF. Compared against tests/abi/berth-abi.xml in CI.
 */
#include <berth/config.h>
#include <berth/content.h>
#include <berth/diff.h>
#include <berth/error.h>
#include <berth/events.h>
#include <berth/gc.h>
#include <berth/grpc.h>
#include <berth/hooks.h>
#include <berth/log.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <berth/network.h>
#include <berth/runtime.h>
#include <berth/snapshot.h>
#include <berth/volume.h>

typedef struct berth_abi_surface_s {
    berth_module_desc_t *desc;
    berth_plugin_reg_t *reg;
    berth_core_api_t *api;
    berth_init_ctx_t *ic;
    berth_instance_t *instance;
    berth_plugin_info_t *info;
    berth_config_field_t *field;
    berth_error_t *error;
    berth_events_v1_ops_t *events;
    berth_event_t *event;
    berth_hook_container_create_t *hook_create;
    berth_hook_container_start_t *hook_start;
    berth_hook_container_update_t *hook_update;
    berth_hook_image_t *hook_image;
    berth_hook_generic_t *hook_generic;
    berth_hook_api_handlers_t *hook_api;
    berth_rpc_handler_t *rpc;
    berth_grpc_service_v1_t *grpc_service;
    berth_grpc_method_t *grpc_method;
    berth_grpc_stream_api_t *grpc_stream_api;
    berth_rpc_kind_t rpc_kind;
    berth_metadata_v1_ops_t *metadata;
    berth_lease_t *lease;
    berth_content_record_t *content_record;
    berth_content_v1_ops_t *content;
    berth_gc_v1_ops_t *gc;
    berth_snapshotter_ops_t *snapshotter;
    berth_mount_t *mount;
    berth_snapshot_ref_t *snapshot_ref;
    berth_gc_removed_t *gc_removed;
    berth_blob_info_t *blob_info;
    berth_ingest_status_t *ingest_status;
    berth_differ_v1_ops_t *differ;
    berth_descriptor_t *descriptor;
    berth_runtime_v1_ops_t *runtime;
    berth_task_state_t *task_state;
    berth_task_io_t *task_io;
    berth_task_status_t task_status;
    enum berth_errcode code;
    enum berth_log_level level;
    enum berth_config_kind kind;
    enum berth_config_type cfg_type;
    berth_hook_point_t point;
    berth_hook_mode_t mode;
    berth_hook_endpoint_t *hook_endpoint;
    berth_hook_volume_t *hook_volume;
    berth_network_v1_ops_t *network;
    berth_net_setup_t *net_setup;
    berth_net_result_t *net_result;
    berth_port_mapping_t *port_mapping;
    berth_volume_v1_ops_t *volume;
} berth_abi_surface_t;

BERTH_EXPORT void berth_abi_surface(berth_abi_surface_t *s);
BERTH_EXPORT void
berth_abi_surface(berth_abi_surface_t *s)
{
    (void)s;
}
