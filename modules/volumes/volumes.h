/* SPDX-License-Identifier: Apache-2.0 */
/* The volumes module's inside: the volume plugin (volume.c) and the Volumes service (service.c). */
#ifndef BERTH_VOLUMES_VOLUMES_H
#define BERTH_VOLUMES_VOLUMES_H

#include <pthread.h>
#include <stdint.h>

#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <berth/volume.h>

#include "berth/services/volumes/v1/volumes.pb-c.h"

#define VOL_KIND "volumes"
#define VOL_DRIVER "local"

typedef Berth__Services__Volumes__V1__Volume volume_pb_t;

typedef struct vol {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    char *root;   /* the plugin's root: <root>/<ns>/<name>/_data */
    char **allow; /* bind_allow as configured (absolute, cleaned) */
    size_t n_allow;
    /* create, remove, mount_source and the collector: one at a time (each is short; the bytes of a
     * removed volume go after the lock is dropped) */
    pthread_mutex_t lock;
    pthread_t collector;
    int collector_started;
    volatile int closing;
    unsigned long removals; /* names the .removing-* dirs */
    char crash[16];         /* BERTH_TEST_VOLUMES_CRASH (volume.c) */
} vol_t;

/* Which containers of a namespace name which volumes (their io.berth.volumes labels). */
typedef struct vol_refs vol_refs_t;
int vol_refs_load(vol_t *v, const char *ns, vol_refs_t **out, berth_error_t **err);
/* The ids of the containers naming `name` (borrowed from refs; *ids is malloc'd, free it). */
size_t vol_refs_of(const vol_refs_t *refs, const char *name, char ***ids);
void vol_refs_free(vol_refs_t *refs);

/* The stored record (free with berth__services__volumes__v1__volume__free_unpacked); NotFound. */
volume_pb_t *vol_record(vol_t *v, const char *ns, const char *name, berth_error_t **err);
/* Every record of the namespace in name order; cb gets an unpacked record it must not keep. */
int vol_record_list(vol_t *v, const char *ns, int (*cb)(void *user, volume_pb_t *rec), void *user,
                    berth_error_t **err);
/* Remove with the bytes it freed (directories and tmpfs). */
int vol_remove_measured(vol_t *v, const char *ns, const char *name, int force, uint64_t *freed,
                        berth_error_t **err);

int vol_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err);
void vol_fini(void *instance);
extern const berth_volume_v1_ops_t vol_ops;

int volumes_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err);
extern const berth_grpc_service_v1_t volumes_service;

#endif
