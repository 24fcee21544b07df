/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Images: get, list, remove, tag (containerd.services.images.v1.Images), and the conversions transfer.c
 * shares. Size and config (manifest walking) live with the container code.
 */
#include <string.h>

#include "store_int.h"

#define IMAGES "/containerd.services.images.v1.Images/"

berth_call_t
bc_long_call(const berth_call_t *call)
{
    berth_call_t lc = {.namespace_ = call ? call->namespace_ : NULL,
                       .timeout_ms = -1,
                       .lease = call ? call->lease : NULL};
    if (call && call->timeout_ms != 0)
        lc.timeout_ms = call->timeout_ms;
    return lc;
}

int
bc_strv_dup(char *const *v, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **r = calloc(n, sizeof(*r));
    if (r == NULL)
        return BERTH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if ((r[i] = bc_strdup(v[i])) == NULL) {
            bc_strv_free(r, i);
            return BERTH_ENOMEM;
        }
    *out = r;
    return 0;
}

void
bc_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void
bc_descriptor_clear(berth_descriptor_t *d)
{
    free(d->media_type);
    free(d->digest);
    memset(d, 0, sizeof(*d));
}

int
bc_descriptor_from_pb(const Containerd__Types__Descriptor *d, berth_descriptor_t *out)
{
    memset(out, 0, sizeof(*out));
    out->media_type = bc_strdup(d ? d->media_type : NULL);
    out->digest = bc_strdup(d ? d->digest : NULL);
    out->size = d ? d->size : 0;
    if (out->media_type == NULL || out->digest == NULL) {
        bc_descriptor_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

void
bc_image_clear(berth_image_t *img)
{
    if (img == NULL)
        return;
    free(img->name);
    bc_descriptor_clear(&img->target);
    berth_kv_free(img->labels, img->n_labels);
    memset(img, 0, sizeof(*img));
}

int
bc_image_from_pb(const Containerd__Services__Images__V1__Image *pb, berth_image_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = bc_strdup(pb->name);
    int rc = out->name ? bc_descriptor_from_pb(pb->target, &out->target) : BERTH_ENOMEM;
    if (rc == 0)
        rc = bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels);
    if (rc < 0) {
        bc_image_clear(out);
        return BERTH_ENOMEM;
    }
    out->created_at_ns = bc_ts_ns(pb->created_at);
    out->updated_at_ns = bc_ts_ns(pb->updated_at);
    return 0;
}

BC_EXPORT void
berth_image_free(berth_image_t *img)
{
    bc_image_clear(img);
    free(img);
}

BC_EXPORT void
berth_images_free(berth_image_t *imgs, size_t n)
{
    for (size_t i = 0; imgs && i < n; i++)
        bc_image_clear(&imgs[i]);
    free(imgs);
}

/* The Get response's image as a new berth_image_t. */
static int
image_out(const Containerd__Services__Images__V1__Image *pb, const char *name, berth_image_t **out,
          berth_error_t **err)
{
    if (pb == NULL)
        return bc_error(err, BERTH_ENOTFOUND, "image \"%s\": not found", name);
    berth_image_t *img = calloc(1, sizeof(*img));
    if (img == NULL || bc_image_from_pb(pb, img) < 0) {
        free(img);
        return bc_error(err, BERTH_ENOMEM, "image \"%s\": out of memory", name);
    }
    *out = img;
    return 0;
}

/* Images.Get; *resp is the caller's to free. */
static int
get_pb(berth_client_t *c, const berth_call_t *call, const char *name,
       Containerd__Services__Images__V1__GetImageResponse **resp, berth_error_t **err)
{
    Containerd__Services__Images__V1__GetImageRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
    req.name = (char *)name;
    *resp = NULL;
    return bc_unary(c, call, IMAGES "Get", &req.base,
                    &containerd__services__images__v1__get_image_response__descriptor,
                    (ProtobufCMessage **)resp, err);
}

BC_EXPORT int
berth_image_get(berth_client_t *c, const berth_call_t *call, const char *name, berth_image_t **out,
                berth_error_t **err)
{
    if (name == NULL || out == NULL)
        return bc_error(err, BERTH_EINVAL, "image get: a name and an out pointer are required");
    *out = NULL;
    Containerd__Services__Images__V1__GetImageResponse *resp;
    int rc = get_pb(c, call, name, &resp, err);
    if (rc < 0)
        return rc;
    rc = image_out(resp->image, name, out, err);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_image_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                 size_t n_filters, berth_image_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "image list: out pointers are required");
    *out = NULL;
    *n = 0;
    Containerd__Services__Images__V1__ListImagesRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
    req.filters = (char **)filters;
    req.n_filters = n_filters;
    Containerd__Services__Images__V1__ListImagesResponse *resp = NULL;
    int rc = bc_unary(c, call, IMAGES "List", &req.base,
                      &containerd__services__images__v1__list_images_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_image_t *v = resp->n_images ? calloc(resp->n_images, sizeof(*v)) : NULL;
    if (resp->n_images && v == NULL)
        rc = BERTH_ENOMEM;
    size_t k = 0;
    for (; rc == 0 && k < resp->n_images; k++)
        rc = bc_image_from_pb(resp->images[k], &v[k]);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        berth_images_free(v, k);
        return bc_error(err, BERTH_ENOMEM, "image list: out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}

BC_EXPORT int
berth_image_remove(berth_client_t *c, const berth_call_t *call, const char *name, int sync,
                   berth_error_t **err)
{
    if (name == NULL)
        return bc_error(err, BERTH_EINVAL, "image remove: a name is required");
    Containerd__Services__Images__V1__DeleteImageRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
    req.name = (char *)name;
    req.sync = sync != 0;
    return bc_unary(c, call, IMAGES "Delete", &req.base, NULL, NULL, err);
}

/* Images.Create or (replace) Images.Update of `img` */
static int
put_image(berth_client_t *c, const berth_call_t *call, Containerd__Services__Images__V1__Image *img,
          int update, berth_error_t **err)
{
    ProtobufCMessage *resp = NULL;
    int rc;
    if (update) {
        Containerd__Services__Images__V1__UpdateImageRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        req.image = img;
        rc = bc_unary(c, call, IMAGES "Update", &req.base,
                      &containerd__services__images__v1__update_image_response__descriptor, &resp,
                      err);
    } else {
        Containerd__Services__Images__V1__CreateImageRequest req =
            CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
        req.image = img;
        rc = bc_unary(c, call, IMAGES "Create", &req.base,
                      &containerd__services__images__v1__create_image_response__descriptor, &resp,
                      err);
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

BC_EXPORT int
berth_image_tag(berth_client_t *c, const berth_call_t *call, const char *src, const char *dst,
                int force, berth_error_t **err)
{
    if (src == NULL || dst == NULL || !dst[0])
        return bc_error(err, BERTH_EINVAL, "image tag: a source and a target name are required");
    Containerd__Services__Images__V1__GetImageResponse *resp;
    int rc = get_pb(c, call, src, &resp, err);
    if (rc < 0)
        return rc;
    if (resp->image == NULL) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        return bc_error(err, BERTH_ENOTFOUND, "image \"%s\": not found", src);
    }
    /* dst: src's record under the new name (target and labels, as ctr's tag) */
    Containerd__Services__Images__V1__Image img = *resp->image;
    img.name = (char *)dst;
    img.created_at = img.updated_at = NULL;
    rc = put_image(c, call, &img, 0, err);
    if (rc == BERTH_EEXIST && force) {
        berth_error_free(err ? *err : NULL);
        if (err)
            *err = NULL;
        rc = put_image(c, call, &img, 1, err);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0)
        return bc_error_wrap(err, rc, "tag \"%s\" as \"%s\"", src, dst);
    return 0;
}
