/* SPDX-License-Identifier: Apache-2.0 */
/* containerd.services.diff.v1.Diff (io.containerd.grpc.v1.diff) over the walking differ. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images.h"
#include "unknown.h"

typedef Containerd__Types__Descriptor descriptor_pb_t;

typedef struct diff_svc {
    const berth_core_api_t *api;
    void *differ;
    const berth_differ_v1_ops_t *ops;
    const berth_logger_t *log;
} diff_svc_t;

static void
to_mounts(Containerd__Types__Mount **pb, size_t n, berth_mount_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (berth_mount_t){pb[i]->type, pb[i]->source, pb[i]->options, pb[i]->n_options};
}

static void
from_descriptor(const berth_core_api_t *api, const descriptor_pb_t *pb, berth_descriptor_t *out,
                berth_kv_t *annotations)
{
    snprintf(out->media_type, sizeof(out->media_type), "%s", pb->media_type);
    snprintf(out->digest, sizeof(out->digest), "%s", pb->digest);
    out->size = pb->size;
    for (size_t i = 0; i < pb->n_annotations; i++)
        api->kv_set(annotations, pb->annotations[i]->key, pb->annotations[i]->value);
    out->annotations = annotations;
}

/* Apply and Diff answer a single Descriptor; ApplyResponse numbers it 1, DiffResponse 3. */
static void
respond_descriptor(const berth_descriptor_t *d, int diff_response, uint8_t **resp, size_t *len)
{
    descriptor_pb_t pb = CONTAINERD__TYPES__DESCRIPTOR__INIT;
    pb.media_type = (char *)d->media_type;
    pb.digest = (char *)d->digest;
    pb.size = d->size;
    Containerd__Services__Diff__V1__ApplyResponse a =
        CONTAINERD__SERVICES__DIFF__V1__APPLY_RESPONSE__INIT;
    Containerd__Services__Diff__V1__DiffResponse r =
        CONTAINERD__SERVICES__DIFF__V1__DIFF_RESPONSE__INIT;
    a.applied = &pb;
    r.diff = &pb;
    const ProtobufCMessage *m = diff_response ? &r.base : &a.base;
    *len = protobuf_c_message_get_packed_size(m);
    *resp = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, *resp);
}

/* Where an applied layer's files landed: an overlay's upperdir, else the mount's source. */
static const char *
written_path(const Containerd__Types__Mount *m)
{
    for (size_t i = 0; strcmp(m->type, "overlay") == 0 && i < m->n_options; i++)
        if (strncmp(m->options[i], "upperdir=", 9) == 0)
            return m->options[i] + 9;
    return m->source;
}

/* containerd 2.x's ApplyRequest.sync_fs (field 4): syncfs(2) the filesystem the layer was applied to
 * before answering, so the unpacked files are durable when the client records the snapshot. */
static int
sync_target(diff_svc_t *s, Containerd__Types__Mount **mounts, size_t n, berth_error_t **err)
{
    for (size_t i = 0; i < n; i++) {
        const char *path = written_path(mounts[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return s->api->error_make(err, BERTH_EINTERNAL, "sync %s: %m", path);
        int rc = syncfs(fd);
        close(fd);
        if (rc != 0)
            return s->api->error_make(err, BERTH_EINTERNAL, "syncfs %s: %m", path);
        s->api->log(s->log, BERTH_LOG_DEBUG, "apply: synced the filesystem of %s", path);
    }
    return 0;
}

static int
apply_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    diff_svc_t *s = user;
    Containerd__Services__Diff__V1__ApplyRequest *r =
        containerd__services__diff__v1__apply_request__unpack(NULL, len, req);
    if (r == NULL || r->diff == NULL) {
        containerd__services__diff__v1__apply_request__free_unpacked(r, NULL);
        return s->api->error_make(err, BERTH_EINVAL, "request is not a valid ApplyRequest");
    }
    berth_kv_t *annotations = s->api->kv_new();
    berth_descriptor_t layer, applied;
    from_descriptor(s->api, r->diff, &layer, annotations);
    berth_mount_t *m = calloc(r->n_mounts + 1, sizeof(*m));
    to_mounts(r->mounts, r->n_mounts, m);
    uint64_t sync_fs = 0;
    int rc = unknown_varint(&r->base, 4, &sync_fs) < 0
                 ? s->api->error_make(err, BERTH_EINVAL, "request is not a valid ApplyRequest")
                 : 0;
    if (rc == 0)
        rc = s->ops->apply(s->differ, ns, &layer, m, r->n_mounts, &applied, err);
    if (rc == 0 && sync_fs)
        rc = sync_target(s, r->mounts, r->n_mounts, err);
    if (rc == 0)
        respond_descriptor(&applied, 0, resp, resp_len);
    free(m);
    s->api->kv_free(annotations);
    containerd__services__diff__v1__apply_request__free_unpacked(r, NULL);
    return rc;
}

static int
diff_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    diff_svc_t *s = user;
    Containerd__Services__Diff__V1__DiffRequest *r =
        containerd__services__diff__v1__diff_request__unpack(NULL, len, req);
    if (r == NULL)
        return s->api->error_make(err, BERTH_EINVAL, "request is not a valid DiffRequest");
    berth_mount_t *left = calloc(r->n_left + 1, sizeof(*left));
    berth_mount_t *right = calloc(r->n_right + 1, sizeof(*right));
    to_mounts(r->left, r->n_left, left);
    to_mounts(r->right, r->n_right, right);
    berth_kv_t *labels = s->api->kv_new();
    for (size_t i = 0; i < r->n_labels; i++)
        s->api->kv_set(labels, r->labels[i]->key, r->labels[i]->value);
    berth_descriptor_t out;
    int rc = s->ops->diff(s->differ, ns, left, r->n_left, right, r->n_right, r->media_type, r->ref,
                          labels, &out, err);
    if (rc == 0)
        respond_descriptor(&out, 1, resp, resp_len);
    s->api->kv_free(labels);
    free(left);
    free(right);
    containerd__services__diff__v1__diff_request__free_unpacked(r, NULL);
    return rc;
}

static const berth_grpc_method_t diff_methods[] = {
    {.name = "Apply", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_NAMESPACED, .unary = apply_call},
    {.name = "Diff", .kind = BERTH_RPC_UNARY, .flags = BERTH_RPC_NAMESPACED, .unary = diff_call},
};

const berth_grpc_service_v1_t diff_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.diff.v1.Diff",
    .methods = diff_methods,
    .n_methods = sizeof(diff_methods) / sizeof(diff_methods[0]),
};

/* The service fronts the differ plugin "walking" (any module may provide it). */
int
diff_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t d;
    if (ic->api->get(ic, BERTH_DIFFER_TYPE, "walking", &d, err) < 0)
        return err && *err ? (*err)->code : BERTH_EUNKNOWN;
    diff_svc_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->differ = d.instance;
    s->ops = d.ops;
    s->log = ic->log;
    *instance = s;
    return 0;
}
