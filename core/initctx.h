/* SPDX-License-Identifier: Apache-2.0 */
/* The InitContext functions of the api table (module.h); implemented in initctx.c. */
#ifndef BERTH_CORE_INITCTX_H
#define BERTH_CORE_INITCTX_H

#include "registry.h"

int berth__ic_get(berth_init_ctx_t *ic, const char *type, const char *id, berth_instance_t *out,
                  berth_error_t **err);
int berth__ic_get_single(berth_init_ctx_t *ic, const char *type, berth_instance_t *out,
                         berth_error_t **err);
int berth__ic_foreach(berth_init_ctx_t *ic, const char *type,
                      int (*cb)(void *user, const berth_instance_t *inst), void *user);
int berth__ic_status(berth_init_ctx_t *ic, const char *uri, const char **status,
                     const char **reason);
int berth__ic_export_set(berth_init_ctx_t *ic, const char *key, const char *value);
int berth__ic_capability_add(berth_init_ctx_t *ic, const char *capability);
berth_ready_token_t *berth__ic_readiness_register(berth_init_ctx_t *ic);
void berth__ic_readiness_done(berth_ready_token_t *token);

#endif
