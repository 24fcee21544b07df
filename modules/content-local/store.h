/* SPDX-License-Identifier: Apache-2.0 */
/* The content store's state; its operations are the berth_content_v1_ops_t of abi/berth/content.h. */
#ifndef BERTH_CONTENT_STORE_H
#define BERTH_CONTENT_STORE_H

#include <pthread.h>
#include <stddef.h>

#include <berth/content.h>
#include <berth/module.h>

typedef struct cs {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    char *root;
    pthread_mutex_t lock; /* guards the locked refs */
    char **locked;
    size_t nlocked;
    /* fdatasyncs of ingests being written, on a thread of their own (store.c, sync_ahead) */
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    pthread_t sync_thread;
    int sync_started, sync_stop;
    int sync_fds[4];
    int nsync;
} cs_t;

int cs_open(cs_t *cs, const char *root, berth_error_t **err);
void cs_close(cs_t *cs);
int cs_valid_digest(const char *digest);
extern const berth_content_v1_ops_t cs_ops;

#endif
