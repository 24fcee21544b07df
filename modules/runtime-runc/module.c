/* SPDX-License-Identifier: Apache-2.0 */
/* The runtime-runc module: the task runtime (runtime.c) and containerd's Tasks service (tasks.c). */
#include <berth/module.h>

extern const berth_plugin_reg_t runtime_plugin;
extern const berth_plugin_reg_t tasks_plugin;

static const berth_plugin_reg_t *const runtime_plugins[] = {&runtime_plugin, &tasks_plugin, NULL};

BERTH_MODULE(runtime_runc, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "runc tasks through berth-shim, and containerd's Tasks service",
             .plugins = runtime_plugins)
