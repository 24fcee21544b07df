/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by images.c, transfer.c, store.c, volumes.c and networks.c: conversions between the public structs
 * and protobuf-c messages. Not installed.
 */
#ifndef BERTH_CLIENT_STORE_INT_H
#define BERTH_CLIENT_STORE_INT_H

#include <stdlib.h>

#include "internal.h"
#include "services/images/v1/images.pb-c.h"
#include "types/descriptor.pb-c.h"

/* A request's map<string,string> from a berth_kv_t array: `ents` and `ptrs` are calloc'ed (free both);
 * the strings stay the caller's. Evaluates to 0, or BERTH_ENOMEM. */
#define BC_MAP_FROM_KV(EntryType, INIT, kv, n, ents, ptrs) \
    ({                                                     \
        int rc_ = 0;                                       \
        (ents) = NULL;                                     \
        (ptrs) = NULL;                                     \
        if ((n) > 0) {                                     \
            (ents) = calloc((n), sizeof(EntryType));       \
            (ptrs) = calloc((n), sizeof(EntryType *));     \
            if ((ents) == NULL || (ptrs) == NULL) {        \
                rc_ = BERTH_ENOMEM;                        \
            } else {                                       \
                for (size_t i_ = 0; i_ < (n); i_++) {      \
                    EntryType e_ = INIT;                   \
                    (ents)[i_] = e_;                       \
                    (ents)[i_].key = (kv)[i_].key;         \
                    (ents)[i_].value = (kv)[i_].value;     \
                    (ptrs)[i_] = &(ents)[i_];              \
                }                                          \
            }                                              \
        }                                                  \
        rc_;                                               \
    })

/* A call with the caller's namespace and no timeout unless the caller set one: pulls, pushes and streams
 * run as long as they need (the client's default timeout is for unary calls). */
berth_call_t bc_long_call(const berth_call_t *call);

/* images.c */
int bc_descriptor_from_pb(const Containerd__Types__Descriptor *d, berth_descriptor_t *out);
void bc_descriptor_clear(berth_descriptor_t *d);
/* A new berth_image_t from the message; NULL on ENOMEM. */
int bc_image_from_pb(const Containerd__Services__Images__V1__Image *pb, berth_image_t *out);
void bc_image_clear(berth_image_t *img);

/* a strings array's copy (each bc_strdup'ed); NULL with n 0 */
int bc_strv_dup(char *const *v, size_t n, char ***out);
void bc_strv_free(char **v, size_t n);

#endif /* BERTH_CLIENT_STORE_INT_H */
