/* SPDX-License-Identifier: Apache-2.0 */
/* berthd's commands: run the daemon, list modules, print or check the config. */
#ifndef BERTH_CORE_DAEMON_H
#define BERTH_CORE_DAEMON_H

#include "registry.h"

typedef struct berth__opts {
    const char *config_path; /* --config; NULL = built-in default */
    const char *root;        /* --root */
    const char *state;       /* --state */
    const char *log_level;   /* --log-level */
    char **sets;             /* --set key.path=value, in order */
    int ready_fd;            /* --ready-fd, -1 = none */
    int probe;               /* modules --probe */
    int init;                /* modules --init */
    const char *builtin_dir; /* BERTH_MODULE_DIR override of the built-in module dir (tests) */
    int daemon;              /* running the daemon: probes' findings are kept in <state> */
} berth__opts_t;

/* Loads the config and applies --set and flags (flags win). */
int berth__config_from_opts(berth__config_t *cfg, const berth__opts_t *o, berth_error_t **err);
/* Loads modules, applies plugin --set, validates every plugin section, orders the graph. */
int berth__prepare_registry(berth__registry_t *reg, const berth__opts_t *o, berth_error_t **err);

/* Takes the root lock (<root>/berthd.lock); fd >= 0 on success, else *err names the holder. */
int berth__lock_root(const char *root, berth_error_t **err);

int berth__daemon_run(const berth__opts_t *o);
int berth__cmd_modules(const berth__opts_t *o);
int berth__cmd_config(const berth__opts_t *o, const char *what);
/* `berthd modules --manifest FILE`: the module's manifest on stdout when one of its plugins is
 * BERTH_PLUGIN_ON_DEMAND, nothing when none is (it is opened at start anyway); 1 when it fails its checks. */
int berth__cmd_manifest(const char *path);

#endif
