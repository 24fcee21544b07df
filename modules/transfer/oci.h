/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI and Docker image JSON as import and export read and write it (json-c): media types, descriptors,
 * index children, the collector's labels on parents (containerd's images.ChildGCLabels), and an image's
 * manifest, config and platform.
 */
#ifndef BERTH_TRANSFER_OCI_H
#define BERTH_TRANSFER_OCI_H

#include <json-c/json.h>

#include "transfer.h"

struct Containerd__Types__Platform;

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define ANN_IMAGE_NAME "io.containerd.image.name"
#define ANN_REF_NAME "org.opencontainers.image.ref.name"
/* the most bytes of an index, manifest or config read into memory */
#define OCI_JSON_LIMIT (20 << 20)
#define OCI_MANIFEST_LIMIT (4 << 20)

/* A descriptor with its platform; desc.annotations (may be NULL) is owned (oci_desc_clear frees it). */
typedef struct oci_desc_s {
    berth_descriptor_t desc;
    int has_platform;
    oci_platform_t platform;
} oci_desc_t;

int oci_is_index(const char *media_type);
int oci_is_manifest(const char *media_type);
int oci_is_layer(const char *media_type);

/* The string at key, "" when absent or not a string. */
const char *oci_json_str(json_object *o, const char *key);
/* The tag of a normalised reference (containerd's ociReferenceName), or the reference itself. */
const char *oci_ref_name(const char *name);
/* {"mediaType","digest","size"} */
json_object *oci_json_desc(const char *media_type, const char *digest, int64_t size);
/* Stores o serialized compactly as a blob of media_type; fills d. */
int oci_json_put(xjob_t *j, json_object *o, const char *media_type, berth_descriptor_t *d,
                 berth_error_t **err);
/* A descriptor object (mediaType, digest, size, annotations, platform) into d; InvalidArgument. */
int oci_desc_parse(const berth_core_api_t *api, json_object *o, oci_desc_t *d, berth_error_t **err);
void oci_desc_clear(const berth_core_api_t *api, oci_desc_t *d);
void oci_descs_free(const berth_core_api_t *api, oci_desc_t *v, size_t n);
void oci_platform_from_pb(const struct Containerd__Types__Platform *pb, oci_platform_t *out);

/* The manifests of an index blob of the namespace. */
int oci_index_children(xjob_t *j, const berth_descriptor_t *index, oci_desc_t **out, size_t *n,
                       berth_error_t **err);
/* Labels the parent blob containerd.io/gc.ref.content.m.<i> (manifests) or .<i> (others) for each kid. */
int oci_label_children(xjob_t *j, const char *parent, const oci_desc_t *kids, size_t n,
                       berth_error_t **err);

typedef struct oci_image_s {
    berth_descriptor_t config;
    oci_manifest_t manifest; /* children: the layers */
    oci_platform_t platform; /* from the config */
} oci_image_t;

/* Reads a manifest and its config (both must be in the namespace). */
int oci_image_load(xjob_t *j, const berth_descriptor_t *manifest, oci_image_t *out,
                   berth_error_t **err);
void oci_image_free(oci_image_t *img);
/* Labels a manifest blob for its config and layers (gc.ref.content.config, .l.<i>). */
int oci_label_manifest(xjob_t *j, const berth_descriptor_t *manifest, berth_error_t **err);

#endif
