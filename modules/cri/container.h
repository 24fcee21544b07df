/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the containers part's files share (container.c, exec_sync.c, ctrimage.c, callstream.c): not part of
 * the module's contract (cri.h); cri.h's functions are used as declared there.
 */
#ifndef BERTH_CRI_CONTAINER_H
#define BERTH_CRI_CONTAINER_H

#include "cri.h"
#include "services/containers/v1/containers.pb-c.h"
#include "services/content/v1/content.pb-c.h"
#include "services/images/v1/images.pb-c.h"
#include "services/leases/v1/leases.pb-c.h"
#include "services/snapshots/v1/snapshots.pb-c.h"
#include "services/tasks/v1/tasks.pb-c.h"

/* callstream.c: a server stream of another module's service, each message to cb on the loop thread (a
 * non-zero return drops the rest); waits up to timeout_ms for its end. */
int cri_call_server_stream(cri_t *c, cri_svc_id_t svc, const char *method,
                           const ProtobufCMessage *req,
                           int (*cb)(void *user, const uint8_t *msg, size_t len), void *user,
                           int64_t timeout_ms, berth_error_t **err);
/* callstream.c: a whole blob of the content store (Content.Read), NUL-terminated, at most max bytes. */
int cri_content_read(cri_t *c, const char *digest, size_t max, uint8_t **out, size_t *out_len,
                     berth_error_t **err);

/* ctrimage.c: an image of k8s.io found by name (normalized as docker does), id (the config digest, or a
 * unique prefix of its hex) or name@digest, with what a container needs of its config. */
typedef struct ctr_image {
    char *name;             /* the image record's name */
    char *id;               /* sha256:<config> */
    char *chain_id;         /* sha256:<chain id of the layers>: the parent snapshot */
    char *repo_digest;      /* repo@sha256:<manifest> */
    cri_image_config_t cfg; /* strings owned here */
    void *json;             /* the config's json_object, which owns cfg's strings */
} ctr_image_t;
int ctr_image_resolve(cri_t *c, const char *ref, ctr_image_t *out, berth_error_t **err);
void ctr_image_free(ctr_image_t *im);
/* docker.io/library/busybox:latest from busybox; out must hold 512 bytes */
void ctr_image_normalize(const char *ref, char *out, size_t len);

/* container.c */
const char *ctr_state_dir(cri_t *c, const char *id, char *out,
                          size_t len); /* <state>/containers/<id> */
int ctr_task_kill(cri_t *c, const char *id, const char *exec_id, uint32_t sig, int all,
                  berth_error_t **err);

#endif
