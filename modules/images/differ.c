/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The walking differ's Apply (io.containerd.differ.v1.walking): the layer blob streams from the content
 * store through apply.c onto the mounted snapshot; the diffID is checked when the layer names one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "images.h"

static const char *const layer_media_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    NULL,
};

static int
known_layer_type(const char *media_type)
{
    for (size_t i = 0; layer_media_types[i]; i++)
        if (strcmp(media_type, layer_media_types[i]) == 0)
            return 1;
    return 0;
}

typedef struct blob_reader {
    differ_t *d;
    const char *digest;
    int64_t offset;
} blob_reader_t;

static int
read_blob(void *user, void *buf, size_t len, size_t *got, berth_error_t **err)
{
    blob_reader_t *r = user;
    int rc = r->d->cso->read_at(r->d->cs, r->digest, r->offset, buf, len, got, err);
    if (rc == BERTH_ERANGE) { /* exactly at the end */
        if (err && *err) {
            r->d->api->error_free(*err);
            *err = NULL;
        }
        *got = 0;
        return 0;
    }
    r->offset += (int64_t)*got;
    return rc;
}

/* The diffID the layer must have: its descriptor's annotation, else the blob's label, else none. */
static void
expected_diff_id(differ_t *d, const char *ns, const berth_descriptor_t *layer, char *out,
                 size_t len)
{
    const char *v = layer->annotations
                        ? d->api->kv_get(layer->annotations, "containerd.io/uncompressed")
                        : NULL;
    out[0] = '\0';
    if (v) {
        snprintf(out, len, "%s", v);
        return;
    }
    berth_kv_t *labels = d->api->kv_new();
    berth_content_record_t rec;
    if (d->mdo->content_get(d->md, ns, layer->digest, &rec, labels, NULL) == 0 &&
        (v = d->api->kv_get(labels, "containerd.io/uncompressed")) != NULL)
        snprintf(out, len, "%s", v);
    d->api->kv_free(labels);
}

static int
apply_into(differ_t *d, const char *root, const berth_descriptor_t *layer,
           layer_apply_result_t *res, berth_error_t **err)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return d->api->error_make(err, BERTH_EIO, "open %s: %s", root, strerror(errno));
    blob_reader_t r = {d, layer->digest, 0};
    int rc = layer_apply(d->api, fd, read_blob, &r, &d->limits, res, err);
    close(fd);
    if (rc != 0)
        d->api->error_wrap(err, "apply layer %s", layer->digest);
    return rc;
}

int
differ_apply(void *arg, const char *ns, const berth_descriptor_t *layer, const berth_mount_t *m,
             size_t n, berth_descriptor_t *applied, berth_error_t **err)
{
    differ_t *d = arg;
    if (!known_layer_type(layer->media_type))
        return d->api->error_make(err, BERTH_ENOTIMPL, "unsupported layer media type %s",
                                  layer->media_type);
    berth_content_record_t rec;
    if (d->mdo->content_get(d->md, ns, layer->digest, &rec, NULL, err) < 0)
        return d->api->error_wrap(err, "layer");
    char want[BERTH_DIGEST_MAX + 16];
    expected_diff_id(d, ns, layer, want, sizeof(want));
    mounted_t mt;
    int rc = mounts_acquire(d, m, n, 0, &mt, err);
    if (rc != 0)
        return rc;
    layer_apply_result_t res = {0};
    rc = apply_into(d, mt.root, layer, &res, err);
    mounts_release(&mt);
    if (rc == 0 && want[0] && strcmp(want, res.diff_id) != 0)
        rc = d->api->error_make(err, BERTH_EPRECONDITION,
                                "layer %s: wrong diff id: the layer unpacks to %s, %s was expected",
                                layer->digest, res.diff_id, want);
    if (rc == 0) {
        *applied = (berth_descriptor_t){.media_type = "application/vnd.oci.image.layer.v1.tar",
                                        .size = (int64_t)res.size};
        snprintf(applied->digest, sizeof(applied->digest), "%s", res.diff_id);
    }
    return rc;
}
