/* SPDX-License-Identifier: Apache-2.0 */
/* The Content service's shared state and its stream handlers (svc_streams.c). */
#ifndef BERTH_CONTENT_SVC_H
#define BERTH_CONTENT_SVC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <berth/content.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>

#include "store.h"

typedef struct svc {
    const berth_core_api_t *api;
    uv_loop_t *loop;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *cs;
    const berth_content_v1_ops_t *cso;
    /* refs whose Write stream ended (the client closed it, or we finished it) while its writer may still
     * be locked: a new writer for one waits for the release instead of failing Unavailable */
    pthread_mutex_t rel_lock;
    pthread_cond_t rel_cond;
    char **releasing;
    size_t nreleasing;
    uint64_t rel_gen; /* writers let go so far */
} svc_t;

void svc_free(void *instance);
/* Retrying a writer (or an abort) of a ref found locked: svc_release_begin_wait before the first try,
 * then, while the lock stands, svc_release_wait says whether to try again (see svc_streams.c). */
typedef struct svc_release_wait_s {
    uint64_t gen;
    struct timespec grace, until;
} svc_release_wait_t;
void svc_release_begin_wait(svc_t *s, svc_release_wait_t *w);
int svc_release_wait(svc_t *s, const char *ref, svc_release_wait_t *w);

extern const berth_grpc_service_v1_t content_service;

struct Containerd__Services__Content__V1__Info;
struct Containerd__Services__Content__V1__Info *
content_info_pb_new(svc_t *s, const char *digest, const berth_content_record_t *r);

int content_list_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                      const uint8_t *req, size_t len, berth_error_t **err);
int content_read_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                      const uint8_t *req, size_t len, berth_error_t **err);
int content_write_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                       const uint8_t *req, size_t len, berth_error_t **err);
int content_write_message(void *instance, const berth_grpc_stream_api_t *sapi,
                          berth_grpc_stream_t *st, const uint8_t *msg, size_t len,
                          berth_error_t **err);
void content_write_end(void *instance, const berth_grpc_stream_api_t *sapi,
                       berth_grpc_stream_t *st);
void content_stream_closed(void *instance, const berth_grpc_stream_api_t *sapi,
                           berth_grpc_stream_t *st);

#endif
