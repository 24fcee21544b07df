/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Tasks service's use of the network and volume modules: at task create, a container's labels
 * (io.berth.network, io.berth.ports, io.berth.volumes) become an endpoint and bind mounts in its spec; at
 * task delete the endpoint is torn down; at start-up every endpoint whose task is gone is torn down.
 * Both modules are optional: a label asking for one that is not loaded is FailedPrecondition naming it.
 */
#ifndef BERTH_RUNTIME_ENDPOINT_H
#define BERTH_RUNTIME_ENDPOINT_H

#include <pthread.h>

#include <berth/module.h>
#include <berth/network.h>
#include <berth/runtime.h>
#include <berth/volume.h>

typedef struct endpoint_ctx {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *net; /* NULL when no network module is loaded */
    const berth_network_v1_ops_t *neto;
    void *vol; /* NULL when no volume module is loaded */
    const berth_volume_v1_ops_t *volo;
    /* creates hold it for reading from setup until the runtime has the task; the start-up pass holds it
     * for writing, so it never takes an endpoint whose task is about to exist for a gone one */
    pthread_rwlock_t gate;
    int closing, reconciling; /* loop thread: who frees the context */
    /* the start-up pass's pool job is running: fini waits for it, as it uses the runtime */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
} endpoint_ctx_t;

typedef struct endpoint_labels {
    const char *network, *ports, *volumes; /* NULL when absent */
} endpoint_labels_t;

endpoint_ctx_t *endpoint_ctx_new(berth_init_ctx_t *ic);
/* Frees it now, or when the start-up pass ends (loop thread). */
void endpoint_ctx_free(endpoint_ctx_t *e);

/*
 * Reads the labels, sets up what they ask for and edits the spec: *spec_out (malloc'd) is what the runtime
 * gets. Every label is checked before anything is made. *attached = 1 when an endpoint was set up: the
 * caller calls endpoint_undo if the task is not created after all. Call between endpoint_enter and
 * endpoint_leave, from a pool thread.
 */
int endpoint_prepare(endpoint_ctx_t *e, const char *ns, const char *id, const endpoint_labels_t *l,
                     const char *spec_json, char **spec_out, int *attached, berth_error_t **err);
void endpoint_enter(endpoint_ctx_t *e);
void endpoint_leave(endpoint_ctx_t *e);

/* Tears the endpoint of (ns, id) down; idempotent; a failure is logged (the start-up pass retries). */
void endpoint_undo(endpoint_ctx_t *e, const char *ns, const char *id);

/* Queues the start-up pass (loop thread; the runtime found its tasks again already): every endpoint whose
 * task no longer exists is torn down. berthd's readiness waits for it. */
void endpoint_reconcile(endpoint_ctx_t *e, berth_init_ctx_t *ic, void *rt,
                        const berth_runtime_v1_ops_t *rto);

#endif
