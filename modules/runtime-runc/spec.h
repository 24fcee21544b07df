/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's OCI spec, checked before anything is made (so a bad spec is a clear InvalidArgument, never a
 * half-created container or one of runc's obscure messages), with the container.pre-start hooks' prestart
 * entries merged in.
 */
#ifndef BERTH_RUNTIME_SPEC_H
#define BERTH_RUNTIME_SPEC_H

#include <stddef.h>

#include <berth/module.h>

typedef struct spec_task {
    const char *ns, *id, *bundle;
    const char *spec_json;
    size_t n_mounts; /* rootfs mounts the client sent */
    int terminal;    /* the client asked for a terminal */
} spec_task_t;

/* Checks a task's spec and runs the pre-start hooks. *config is what to write as config.json (malloc'd). */
int spec_prepare(const berth_core_api_t *api, const spec_task_t *t, char **config,
                 berth_error_t **err);

/* Checks an exec process's spec (an OCI Process object). */
int spec_check_process(const berth_core_api_t *api, const char *process_json, int terminal,
                       berth_error_t **err);

#endif
