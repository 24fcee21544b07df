/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image store of a transfer: blobs written straight into the content store with the namespace's
 * records kept as content-local's Write does (the blob joins the job's lease before its record exists, so
 * no collection in between takes it), images through the Images service.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transfer.h"
#include "services/images/v1/images.pb-c.h"

/* how long a blob another writer of the same ref holds is waited for (a concurrent pull of it) */
#define LOCKED_WAIT_MS (10 * 60 * 1000)

static int
ns_holds(xjob_t *j, const char *digest)
{
    xfer_t *x = j->x;
    berth_content_record_t rec;
    berth_error_t *ignored = NULL;
    int rc = x->mdo->content_get(x->md, j->ns, digest, &rec, NULL, &ignored);
    if (ignored)
        x->api->error_free(ignored);
    return rc == 0;
}

/* The blob joins the lease, then the namespace (with labels, NULL keeps the record's). */
int
store_blob_record(xjob_t *j, const char *digest, int64_t size, const berth_kv_t *labels,
                  berth_error_t **err)
{
    xfer_t *x = j->x;
    int rc = x->mdo->lease_add_resource(x->md, j->ns, j->lease, "content", digest, err);
    if (rc == 0)
        rc = x->mdo->content_put(x->md, j->ns, digest, size, labels, err);
    return rc;
}

static void
clear(xfer_t *x, berth_error_t **err)
{
    if (err && *err) {
        x->api->error_free(*err);
        *err = NULL;
    }
}

/* The content store has the bytes (another namespace's, or a writer that just finished): adopt them. */
static int
adopt(xjob_t *j, const berth_descriptor_t *d, berth_error_t **err)
{
    xfer_t *x = j->x;
    berth_blob_info_t info;
    int rc = x->cso->info(x->cs, d->digest, &info, err);
    if (rc < 0)
        return rc;
    if (d->size > 0 && info.size != d->size)
        return x->api->error_make(err, BERTH_EPRECONDITION,
                                  "content %s: stored with size %lld, the descriptor says %lld",
                                  d->digest, (long long)info.size, (long long)d->size);
    if (store_blob_record(j, d->digest, info.size, NULL, err) < 0)
        return (*err)->code;
    /* bytes no namespace held may be the collector's, checked as unheld just before our record and
     * removed since: then they are written again (the record stays; the commit fills it) */
    if (x->cso->info(x->cs, d->digest, &info, NULL) < 0)
        return 0;
    return 1;
}

int
store_blob_open(xjob_t *j, const berth_descriptor_t *d, berth_content_writer_t **w, int64_t *have,
                berth_error_t **err)
{
    xfer_t *x = j->x;
    *w = NULL;
    *have = 0;
    /* the lease first, then the look: a collection (one transaction) either ran before the lease named
     * the blob, and the look sees its record gone, or after, and the lease keeps it */
    if (x->mdo->lease_add_resource(x->md, j->ns, j->lease, "content", d->digest, err) < 0)
        return (*err)->code;
    if (ns_holds(j, d->digest))
        return 1;
    berth_blob_info_t info;
    int rc;
    if (x->cso->info(x->cs, d->digest, &info, NULL) == 0 && (rc = adopt(j, d, err)) != 0)
        return rc;
    char key[BERTH_DIGEST_MAX + 32], ref[sizeof(key) + 256];
    descriptor_ref_key(d, key, sizeof(key));
    snprintf(ref, sizeof(ref), "%s/%s", j->ns, key); /* content-local's ingest naming: <ns>/<ref> */
    rc = x->mdo->lease_add_resource(x->md, j->ns, j->lease, "ingests", key, err);
    for (int waited = 0; rc == 0; waited += 50) {
        rc = x->cso->writer_open(x->cs, ref, d->size, d->digest, w, err);
        if (rc == BERTH_EEXIST) { /* committed meanwhile by someone else */
            clear(x, err);
            if ((rc = adopt(j, d, err)) != 0)
                return rc;
            continue; /* and gone again: write it */
        }
        if (rc != BERTH_EUNAVAILABLE || waited >= LOCKED_WAIT_MS)
            break;
        clear(x, err); /* another writer has the ref: wait for it to commit or let go */
        usleep(50 * 1000);
        rc = 0;
    }
    if (rc < 0)
        return rc;
    berth_ingest_status_t st;
    x->cso->writer_status(*w, &st);
    *have = st.offset;
    return 0;
}

int
store_blob_commit(xjob_t *j, berth_content_writer_t *w, const berth_descriptor_t *d,
                  const berth_kv_t *labels, berth_error_t **err)
{
    xfer_t *x = j->x;
    berth_ingest_status_t st;
    x->cso->writer_status(w, &st);
    char digest[BERTH_DIGEST_MAX];
    int rc = x->cso->writer_commit(w, d->size, d->digest, digest, err);
    x->cso->writer_close(w);
    if (rc == BERTH_EPRECONDITION) { /* the bytes are wrong: drop them, a retry starts over */
        berth_error_t *ignored = NULL;
        if (x->cso->ingest_abort(x->cs, st.ref, &ignored) < 0)
            x->api->error_free(ignored);
        return rc;
    }
    if (rc == BERTH_EEXIST) { /* another namespace committed it first */
        clear(x, err);
        rc = 0;
    }
    if (rc < 0)
        return rc;
    return store_blob_record(j, d->digest, d->size, labels, err);
}

int
store_blob_put(xjob_t *j, const berth_descriptor_t *d, const uint8_t *data, size_t len,
               const berth_kv_t *labels, berth_error_t **err)
{
    xfer_t *x = j->x;
    if (d->size >= 0 && (size_t)d->size != len)
        return x->api->error_make(err, BERTH_EPRECONDITION, "content %s: %zu bytes, expected %lld",
                                  d->digest, len, (long long)d->size);
    berth_content_writer_t *w;
    int64_t have;
    int rc = store_blob_open(j, d, &w, &have, err);
    if (rc == 1) { /* held already: only the labels are new */
        for (size_t i = 0; labels && i < x->api->kv_size(labels) && rc >= 0; i++)
            rc = store_blob_label(j, d->digest, x->api->kv_key_at(labels, i),
                                  x->api->kv_value_at(labels, i), err);
        return rc < 0 ? rc : 0;
    }
    if (rc < 0)
        return rc;
    if (have > 0 && (rc = x->cso->writer_truncate(w, 0, err)) < 0) {
        x->cso->writer_close(w);
        return rc;
    }
    if ((rc = x->cso->writer_write(w, data, len, err)) < 0) {
        x->cso->writer_close(w);
        return rc;
    }
    return store_blob_commit(j, w, d, labels, err);
}

int
store_blob_read(xjob_t *j, const char *digest, int64_t limit, uint8_t **data, size_t *len,
                berth_error_t **err)
{
    xfer_t *x = j->x;
    berth_content_record_t rec;
    *data = NULL;
    *len = 0;
    /* what the transfer reads, it may go on to label or name: the blob joins the lease before the look
     * (as in store_blob_open), so no collection takes it in between */
    if (x->mdo->lease_add_resource(x->md, j->ns, j->lease, "content", digest, err) < 0 ||
        x->mdo->content_get(x->md, j->ns, digest, &rec, NULL, err) < 0)
        return (*err)->code;
    if (limit > 0 && rec.size > limit)
        return x->api->error_make(err, BERTH_ERESOURCE,
                                  "content %s: %lld bytes, over the limit of %lld", digest,
                                  (long long)rec.size, (long long)limit);
    uint8_t *buf = malloc(rec.size > 0 ? (size_t)rec.size : 1);
    size_t at = 0;
    while (at < (size_t)rec.size) {
        size_t got = 0;
        int rc =
            x->cso->read_at(x->cs, digest, (int64_t)at, buf + at, (size_t)rec.size - at, &got, err);
        if (rc == 0 && got == 0)
            rc = x->api->error_make(err, BERTH_EDATALOSS, "content %s: shorter than %lld", digest,
                                    (long long)rec.size);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        at += got;
    }
    *data = buf;
    *len = at;
    return 0;
}

int
store_blob_label(xjob_t *j, const char *digest, const char *key, const char *value,
                 berth_error_t **err)
{
    xfer_t *x = j->x;
    berth_kv_t *labels = x->api->kv_new();
    berth_content_record_t rec;
    int rc = x->mdo->content_get(x->md, j->ns, digest, &rec, labels, err);
    if (rc == 0) {
        if (value)
            x->api->kv_set(labels, key, value);
        else
            x->api->kv_unset(labels, key);
        rc = x->mdo->content_set_labels(x->md, j->ns, digest, labels, err);
    }
    x->api->kv_free(labels);
    return rc;
}

/* ---- images ---------------------------------------------------------------------------------------- */

typedef Containerd__Services__Images__V1__Image image_pb_t;

int
store_image_put(xjob_t *j, const char *name, const berth_descriptor_t *target,
                const berth_kv_t *labels, berth_error_t **err)
{
    xfer_t *x = j->x;
    const berth_core_api_t *api = x->api;
    Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
    d.media_type = (char *)target->media_type;
    d.digest = (char *)target->digest;
    d.size = target->size;
    image_pb_t img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
    img.name = (char *)name;
    img.target = &d;
    size_t n = labels ? api->kv_size(labels) : 0;
    Containerd__Services__Images__V1__Image__LabelsEntry *ents = calloc(n + 1, sizeof(*ents));
    Containerd__Services__Images__V1__Image__LabelsEntry **entp = calloc(n + 1, sizeof(*entp));
    for (size_t i = 0; i < n; i++) {
        containerd__services__images__v1__image__labels_entry__init(&ents[i]);
        ents[i].key = (char *)api->kv_key_at(labels, i);
        ents[i].value = (char *)api->kv_value_at(labels, i);
        entp[i] = &ents[i];
    }
    img.labels = entp;
    img.n_labels = n;
    Containerd__Services__Images__V1__CreateImageRequest creq =
        CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
    creq.image = &img;
    int rc = svc_call(j, x->images, x->images_svc, "Create", &creq.base, NULL, NULL, err);
    if (rc == BERTH_EEXIST) { /* containerd's image store: an existing name is updated */
        clear(x, err);
        Containerd__Services__Images__V1__UpdateImageRequest ureq =
            CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        ureq.image = &img;
        rc = svc_call(j, x->images, x->images_svc, "Update", &ureq.base, NULL, NULL, err);
    }
    free(ents);
    free(entp);
    return rc;
}

int
store_image_get(xjob_t *j, const char *name, berth_descriptor_t *target, berth_error_t **err)
{
    xfer_t *x = j->x;
    Containerd__Services__Images__V1__GetImageRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
    req.name = (char *)name;
    uint8_t *resp = NULL;
    size_t len = 0;
    int rc = svc_call(j, x->images, x->images_svc, "Get", &req.base, &resp, &len, err);
    if (rc < 0)
        return rc;
    Containerd__Services__Images__V1__GetImageResponse *r =
        containerd__services__images__v1__get_image_response__unpack(NULL, len, resp);
    free(resp);
    if (r == NULL || r->image == NULL || r->image->target == NULL) {
        if (r)
            containerd__services__images__v1__get_image_response__free_unpacked(r, NULL);
        return x->api->error_make(err, BERTH_ENOTFOUND, "image \"%s\": not found", name);
    }
    memset(target, 0, sizeof(*target));
    snprintf(target->media_type, sizeof(target->media_type), "%s", r->image->target->media_type);
    snprintf(target->digest, sizeof(target->digest), "%s", r->image->target->digest);
    target->size = r->image->target->size;
    containerd__services__images__v1__get_image_response__free_unpacked(r, NULL);
    return 0;
}
