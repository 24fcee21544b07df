/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.images.v1.Images (io.containerd.grpc.v1.images): image records in the metadata store,
 * containerd's filters and field paths, /images/ events, and the image.post-pull hook, which sees every
 * new record and every target change before it is stored and may refuse it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "filters.h"
#include "unknown.h"
#include "images.h"

typedef Containerd__Services__Images__V1__Image image_pb_t;
typedef Containerd__Services__Images__V1__Image__LabelsEntry label_pb_t;

static int
bad(images_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

/* The stored record (NotFound as containerd words it when there is none). */
static image_pb_t *
load(images_t *s, const char *ns, const char *name, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    if (s->mdo->image_get(s->md, ns, name, &data, &len, err) < 0)
        return NULL;
    image_pb_t *img = containerd__services__images__v1__image__unpack(NULL, len, data);
    s->api->free(data);
    if (img == NULL)
        s->api->error_make(err, BERTH_EDATALOSS, "image %s: record does not decode", name);
    return img;
}

static int
code_of(berth_error_t **err, int dflt)
{
    return err && *err ? (*err)->code : dflt;
}

/* ---- events ---------------------------------------------------------------------------------------- */

static void
publish(images_t *s, const char *ns, const char *topic, const image_pb_t *img)
{
    if (s->events == NULL)
        return;
    if (strcmp(topic, "/images/delete") == 0) {
        Containerd__Services__Images__V1__ImageDelete ev =
            CONTAINERD__SERVICES__IMAGES__V1__IMAGE_DELETE__INIT;
        ev.name = img->name;
        publish_message(s->api, s->events_ops, s->events, ns, topic,
                        "containerd.services.images.v1.ImageDelete", &ev.base);
        return;
    }
    /* ImageCreate and ImageUpdate are both {name = 1; map labels = 2;}, as Image's first fields */
    Containerd__Services__Images__V1__ImageCreate ev =
        CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
    ev.name = img->name;
    ev.n_labels = img->n_labels;
    ev.labels = (Containerd__Services__Images__V1__ImageCreate__LabelsEntry **)img->labels;
    publish_message(s->api, s->events_ops, s->events, ns, topic,
                    strcmp(topic, "/images/create") == 0
                        ? "containerd.services.images.v1.ImageCreate"
                        : "containerd.services.images.v1.ImageUpdate",
                    &ev.base);
}

/* ---- the target --------------------------------------------------------------------------------------- */

#define MANIFEST_MAX (4 * 1024 * 1024) /* containerd's remotes/docker MaxManifestSize */

static int
is_manifest_type(const char *mt)
{
    return strcmp(mt, "application/vnd.oci.image.manifest.v1+json") == 0 ||
           strcmp(mt, "application/vnd.oci.image.index.v1+json") == 0 ||
           strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json") == 0 ||
           strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0;
}

/* A manifest or index over 4 MiB is refused before anything reads it (GHSA-5j5w-g665-5m35's neighbour:
 * hostile documents stay small). */
static int
check_target(images_t *s, const image_pb_t *img, berth_error_t **err)
{
    const Containerd__Types__Descriptor *t = img->target;
    if (t && is_manifest_type(t->media_type) && t->size > MANIFEST_MAX)
        return s->api->error_make(err, BERTH_EINVAL,
                                  "image %s: target %s is %lld bytes, over the 4 MiB a manifest or "
                                  "index may have",
                                  img->name, t->digest, (long long)t->size);
    return 0;
}

/* ---- the post-pull hook ---------------------------------------------------------------------------- */

static int
post_pull(images_t *s, const char *ns, const image_pb_t *img, berth_error_t **err)
{
    berth_hook_image_t payload = {
        .struct_size = sizeof(payload),
        .namespace_ = ns,
        .name = img->name,
        .target_digest = img->target ? img->target->digest : "",
        .target_media_type = img->target ? img->target->media_type : "",
        .target_size = img->target ? img->target->size : 0,
    };
    return s->api->hook_invoke(BERTH_HOOK_IMAGE_POST_PULL, &payload, err);
}

static int
same_target(const image_pb_t *a, const image_pb_t *b)
{
    if (a->target == NULL || b->target == NULL)
        return a->target == b->target;
    return strcmp(a->target->digest, b->target->digest) == 0 &&
           strcmp(a->target->media_type, b->target->media_type) == 0 &&
           a->target->size == b->target->size;
}

/* ---- Get, List ------------------------------------------------------------------------------------- */

static int
respond_image(images_t *s, const char *ns, const char *name, uint8_t **resp, size_t *len,
              berth_error_t **err)
{
    image_pb_t *img = load(s, ns, name, err);
    if (img == NULL)
        return code_of(err, BERTH_ENOTFOUND);
    /* Get, Create and Update responses are all {Image image = 1;} */
    Containerd__Services__Images__V1__GetImageResponse out =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_RESPONSE__INIT;
    out.image = img;
    pack(&out.base, resp, len);
    containerd__services__images__v1__image__free_unpacked(img, NULL);
    return 0;
}

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    images_t *s = user;
    Containerd__Services__Images__V1__GetImageRequest *r =
        containerd__services__images__v1__get_image_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "GetImageRequest", err);
    int rc = respond_image(s, ns, r->name, resp, resp_len, err);
    containerd__services__images__v1__get_image_request__free_unpacked(r, NULL);
    return rc;
}

static const char *
label_of(const image_pb_t *img, const char *key)
{
    for (size_t i = 0; i < img->n_labels; i++)
        if (strcmp(img->labels[i]->key, key) == 0)
            return img->labels[i]->value;
    return NULL;
}

/* containerd's image fields for filters: name, target.digest, target.mediatype, labels.<key> */
static const char *
image_field(void *object, const char *const *path, int npath)
{
    const image_pb_t *img = object;
    if (npath == 1 && strcmp(path[0], "name") == 0)
        return img->name;
    if (npath == 2 && strcmp(path[0], "target") == 0 && img->target) {
        if (strcmp(path[1], "digest") == 0)
            return img->target->digest;
        if (strcmp(path[1], "mediatype") == 0)
            return img->target->media_type;
    }
    if (npath == 2 && strcmp(path[0], "labels") == 0)
        return label_of(img, path[1]);
    return NULL;
}

typedef struct listing {
    filters_t *filters;
    image_pb_t **items;
    size_t n;
} listing_t;

static int
list_one(void *user, const uint8_t *data, size_t len)
{
    listing_t *l = user;
    image_pb_t *img = containerd__services__images__v1__image__unpack(NULL, len, data);
    if (img == NULL)
        return 0;
    if (!filters_match(l->filters, image_field, img)) {
        containerd__services__images__v1__image__free_unpacked(img, NULL);
        return 0;
    }
    l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n++] = img;
    return 0;
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    images_t *s = user;
    Containerd__Services__Images__V1__ListImagesRequest *r =
        containerd__services__images__v1__list_images_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListImagesRequest", err);
    listing_t l = {0};
    char msg[512];
    int rc = 0;
    if (filters_parse_n((const char *const *)r->filters, r->n_filters, &l.filters, msg,
                        sizeof(msg)) < 0)
        rc = s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    if (rc == 0)
        rc = s->mdo->image_list(s->md, ns, list_one, &l, err);
    if (rc == 0) {
        Containerd__Services__Images__V1__ListImagesResponse out =
            CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_RESPONSE__INIT;
        out.images = l.items;
        out.n_images = l.n;
        pack(&out.base, resp, resp_len);
    }
    for (size_t i = 0; i < l.n; i++)
        containerd__services__images__v1__image__free_unpacked(l.items[i], NULL);
    free(l.items);
    filters_free(l.filters);
    containerd__services__images__v1__list_images_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Create, Update, Delete ------------------------------------------------------------------------ */

static int
store(images_t *s, const char *ns, const image_pb_t *img, int create, berth_error_t **err)
{
    uint8_t *data;
    size_t len;
    pack(&img->base, &data, &len);
    int rc = create ? s->mdo->image_create(s->md, ns, data, len, err)
                    : s->mdo->image_update(s->md, ns, data, len, err);
    free(data);
    return rc;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    images_t *s = user;
    Containerd__Services__Images__V1__CreateImageRequest *r =
        containerd__services__images__v1__create_image_request__unpack(NULL, len, req);
    if (r == NULL || r->image == NULL) {
        containerd__services__images__v1__create_image_request__free_unpacked(r, NULL);
        return bad(s, "CreateImageRequest", err);
    }
    image_pb_t *have = r->image->name[0] ? load(s, ns, r->image->name, NULL) : NULL;
    int rc = 0;
    if (have)
        rc = s->api->error_make(err, BERTH_EEXIST, "image \"%s\": already exists", r->image->name);
    if (rc == 0)
        rc = check_target(s, r->image, err);
    if (rc == 0 && r->image->target && (rc = post_pull(s, ns, r->image, err)) != 0)
        s->api->error_wrap(err, "image %s", r->image->name);
    if (rc == 0)
        rc = store(s, ns, r->image, 1, err);
    if (rc == 0)
        rc = respond_image(s, ns, r->image->name, resp, resp_len, err);
    if (rc == 0)
        publish(s, ns, "/images/create", r->image);
    if (have)
        containerd__services__images__v1__image__free_unpacked(have, NULL);
    containerd__services__images__v1__create_image_request__free_unpacked(r, NULL);
    return rc;
}

static void
set_label(images_t *s, berth_kv_t *labels, const image_pb_t *from, const char *key)
{
    const char *v = label_of(from, key);
    if (v && v[0])
        s->api->kv_set(labels, key, v);
    else
        s->api->kv_unset(labels, key);
}

/* Applies the field paths of an update onto the stored record (containerd's metadata rules): labels,
 * labels.<key>, target; no paths replace both. */
static int
merge(images_t *s, image_pb_t *have, const image_pb_t *req, const Google__Protobuf__FieldMask *mask,
      berth_kv_t *labels, berth_error_t **err)
{
    for (size_t i = 0; i < have->n_labels; i++)
        s->api->kv_set(labels, have->labels[i]->key, have->labels[i]->value);
    int all = mask == NULL || mask->n_paths == 0, all_labels = all, target = all;
    for (size_t i = 0; !all && i < mask->n_paths; i++) {
        const char *p = mask->paths[i];
        if (strncmp(p, "labels.", 7) == 0)
            set_label(s, labels, req, p + 7);
        else if (strcmp(p, "labels") == 0)
            all_labels = 1;
        else if (strcmp(p, "target") == 0)
            target = 1;
        else
            return s->api->error_make(err, BERTH_EINVAL, "cannot update %s field on image %s", p,
                                      req->name);
    }
    if (all_labels) {
        while (s->api->kv_size(labels) > 0)
            s->api->kv_unset(labels, s->api->kv_key_at(labels, 0));
        for (size_t i = 0; i < req->n_labels; i++)
            s->api->kv_set(labels, req->labels[i]->key, req->labels[i]->value);
    }
    if (target)
        have->target = req->target;
    return 0;
}

static int
update_stored(images_t *s, const char *ns, image_pb_t *img, const berth_kv_t *labels,
              berth_error_t **err)
{
    size_t n = s->api->kv_size(labels);
    label_pb_t *items = calloc(n + 1, sizeof(*items)), **ptrs = calloc(n + 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        containerd__services__images__v1__image__labels_entry__init(&items[i]);
        items[i].key = (char *)s->api->kv_key_at(labels, i);
        items[i].value = (char *)s->api->kv_value_at(labels, i);
        ptrs[i] = &items[i];
    }
    size_t old_n = img->n_labels;
    label_pb_t **old = img->labels;
    img->labels = ptrs;
    img->n_labels = n;
    int rc = store(s, ns, img, 0, err);
    img->labels = old;
    img->n_labels = old_n;
    free(items);
    free(ptrs);
    return rc;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    images_t *s = user;
    Containerd__Services__Images__V1__UpdateImageRequest *r =
        containerd__services__images__v1__update_image_request__unpack(NULL, len, req);
    if (r == NULL || r->image == NULL) {
        containerd__services__images__v1__update_image_request__free_unpacked(r, NULL);
        return bad(s, "UpdateImageRequest", err);
    }
    image_pb_t *have = load(s, ns, r->image->name, err);
    int rc = have ? 0 : code_of(err, BERTH_ENOTFOUND);
    berth_kv_t *labels = s->api->kv_new();
    Containerd__Types__Descriptor *old_target = have ? have->target : NULL;
    image_pb_t before = {.target = old_target};
    if (rc == 0)
        rc = merge(s, have, r->image, r->update_mask, labels, err);
    if (rc == 0)
        rc = check_target(s, have, err);
    if (rc == 0 && !same_target(&before, have) && (rc = post_pull(s, ns, have, err)) != 0)
        s->api->error_wrap(err, "image %s", have->name);
    if (rc == 0)
        rc = update_stored(s, ns, have, labels, err);
    if (rc == 0)
        rc = respond_image(s, ns, r->image->name, resp, resp_len, err);
    if (rc == 0)
        publish(s, ns, "/images/update", r->image);
    if (have) {
        have->target = old_target; /* merge may have borrowed the request's */
        containerd__services__images__v1__image__free_unpacked(have, NULL);
    }
    s->api->kv_free(labels);
    containerd__services__images__v1__update_image_request__free_unpacked(r, NULL);
    return rc;
}

/* containerd 2.x's DeleteImageRequest.target (field 3): delete only while the record's target digest is
 * that one, else NotFound in containerd's words. An empty digest means no condition, as containerd's. */
static int
check_delete_target(images_t *s, const char *ns,
                    const Containerd__Services__Images__V1__DeleteImageRequest *r,
                    berth_error_t **err)
{
    const uint8_t *d;
    size_t dl;
    int has = unknown_bytes(&r->base, 3, &d, &dl);
    if (has < 0)
        return bad(s, "DeleteImageRequest", err);
    if (has == 0)
        return 0;
    Containerd__Types__Descriptor *want = containerd__types__descriptor__unpack(NULL, dl, d);
    if (want == NULL)
        return bad(s, "DeleteImageRequest", err);
    int rc = 0;
    if (want->digest[0]) {
        image_pb_t *have = load(s, ns, r->name, err);
        if (have == NULL)
            rc = code_of(err, BERTH_ENOTFOUND);
        else if (have->target == NULL || strcmp(have->target->digest, want->digest) != 0)
            rc = s->api->error_make(err, BERTH_ENOTFOUND,
                                    "image \"%s\" has target %s, not %s: not found", r->name,
                                    have->target ? have->target->digest : "", want->digest);
        if (have)
            containerd__services__images__v1__image__free_unpacked(have, NULL);
    }
    containerd__types__descriptor__free_unpacked(want, NULL);
    return rc;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    images_t *s = user;
    Containerd__Services__Images__V1__DeleteImageRequest *r =
        containerd__services__images__v1__delete_image_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "DeleteImageRequest", err);
    int rc = check_delete_target(s, ns, r, err);
    if (rc == 0)
        rc = s->mdo->image_delete(s->md, ns, r->name, err);
    if (rc == 0) {
        image_pb_t gone = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        gone.name = r->name;
        publish(s, ns, "/images/delete", &gone);
    }
    /* "sync: delete and cleanup synchronously before returning" */
    if (rc == 0 && r->sync && s->gc)
        rc = s->gc_ops->collect(s->gc, err);
    containerd__services__images__v1__delete_image_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static const berth_grpc_method_t images_methods[] = {
    NS_UNARY("Get", get_call),       NS_UNARY("List", list_call),
    NS_UNARY("Create", create_call), NS_UNARY("Update", update_call),
    NS_UNARY("Delete", delete_call),
};

const berth_grpc_service_v1_t images_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.images.v1.Images",
    .methods = images_methods,
    .n_methods = sizeof(images_methods) / sizeof(images_methods[0]),
};
