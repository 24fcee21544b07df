/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transfer module (io.containerd.transfer.v1.local, and the Transfer and Streaming gRPC services in front
 * of it): image distribution in the daemon, as containerd 2.x's. Internal header shared by its files.
 *
 * The worker is a client of berth's other services, in process: blobs go straight into the content store
 * (content.h) with their records in the metadata store (metadata.h); images and snapshots go through the
 * Images and Snapshots services' own unary handlers (svc_call), so hooks, events, validation, leases and
 * crash ordering are theirs; layers are applied by the differ (diff.h).
 *
 * A transfer runs on the pool thread of its Transfer call, for as long as it takes, under a lease of its own
 * (expiring, so a crash leaves garbage the collector takes, never a half-pulled image with a record).
 */
#ifndef BERTH_TRANSFER_H
#define BERTH_TRANSFER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <berth/content.h>
#include <berth/diff.h>
#include <berth/grpc.h>
#include <berth/metadata.h>
#include <berth/module.h>
#include <protobuf-c/protobuf-c.h>

#include "registry.h"
#include "streams.h"

/* ---- the module instance (module.c) ------------------------------------------------------------------ */

typedef struct xfer_s {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    void *cs;
    const berth_content_v1_ops_t *cso;
    void *md;
    const berth_metadata_v1_ops_t *mdo;
    void *differ;
    const berth_differ_v1_ops_t *dfo;
    /* in-process services (plugin instances and their method tables) */
    void *images;
    const berth_grpc_service_v1_t *images_svc;
    void *snapshots;
    const berth_grpc_service_v1_t *snapshots_svc;
    streams_t *streams;
    reg_config_t reg;
    char default_snapshotter[64]; /* "overlayfs" */
    int max_concurrent_unpacks;   /* layers applied at once (1: in order, as containerd) */
} xfer_t;

/* ---- one transfer (job.c) ----------------------------------------------------------------------------- */

typedef struct xjob_s {
    xfer_t *x;
    char ns[256];
    char lease[128]; /* the job's own lease ("transfer-<random>", expires after 24 h) */
    int lease_owned; /* 0 when the call brought its own lease (containerd-lease), which then holds */
    xstream_t *progress; /* NULL when the client asked for none */
    pthread_mutex_t progress_lock;
} xjob_t;

/* Creates the job's lease (and takes the progress stream when named); job_end deletes the lease, so what
 * the transfer stored is held by its image record (or nothing, and the collector takes it). */
int job_begin(xfer_t *x, const char *ns, const char *progress_stream, xjob_t *j,
              berth_error_t **err);
void job_end(xjob_t *j);

/* A Progress event on the progress stream (containerd.types.transfer.Progress); a no-op without one.
 * Events as containerd's: "resolving", "resolved", "waiting", "downloading" (progress/total bytes),
 * "unpacking", "complete", "exists", "already exists", "pushing", "mounted", "saved". */
void job_progress(xjob_t *j, const char *event, const char *name, const char *const *parents,
                  size_t n_parents, int64_t progress, int64_t total,
                  const berth_descriptor_t *desc);

/* Calls method `method` of the in-process service `svc` (x->images_svc, x->snapshots_svc) for namespace
 * ns within the job's lease: req is packed, *resp (malloc'd, may be NULL) is the packed answer. */
int svc_call(xjob_t *j, void *instance, const berth_grpc_service_v1_t *svc, const char *method,
             const ProtobufCMessage *req, uint8_t **resp, size_t *resp_len, berth_error_t **err);

/* ---- the image store (store.c) ----------------------------------------------------------------------- */

/* Opens (or resumes) the ingest for d under the job's lease: 1 when the namespace already holds the blob
 * (nothing to write; *w NULL), 0 with *w and *have (bytes already in the ingest, for a Range resume). A blob
 * another namespace holds is adopted without copying bytes (the content store's shared policy). */
int store_blob_open(xjob_t *j, const berth_descriptor_t *d, berth_content_writer_t **w,
                    int64_t *have, berth_error_t **err);
/* Commits with d's size and digest (a mismatch: FailedPrecondition, nothing committed, the ingest aborted),
 * then writes the namespace's record with labels (may be NULL) and adds it to the job's lease. Closes w. */
int store_blob_commit(xjob_t *j, berth_content_writer_t *w, const berth_descriptor_t *d,
                      const berth_kv_t *labels, berth_error_t **err);
/* A whole small blob (manifest, index, config) in one call; verifies the digest. */
int store_blob_put(xjob_t *j, const berth_descriptor_t *d, const uint8_t *data, size_t len,
                   const berth_kv_t *labels, berth_error_t **err);
/* Reads a whole blob of the namespace (refusing more than limit bytes); the blob joins the job's lease
 * first. */
int store_blob_read(xjob_t *j, const char *digest, int64_t limit, uint8_t **data, size_t *len,
                    berth_error_t **err);
/* Sets (value non-NULL) or removes one label of a blob record of the namespace. */
int store_blob_label(xjob_t *j, const char *digest, const char *key, const char *value,
                     berth_error_t **err);
/* Images.Create, or Images.Update when the name exists (containerd's image store does that): fires
 * image.post-pull through the Images service, publishes its events. labels may be NULL. */
int store_image_put(xjob_t *j, const char *name, const berth_descriptor_t *target,
                    const berth_kv_t *labels, berth_error_t **err);
/* The blob (committed by the caller into the content store) joins the job's lease, then the namespace with
 * labels (NULL keeps a record's labels). */
int store_blob_record(xjob_t *j, const char *digest, int64_t size, const berth_kv_t *labels,
                      berth_error_t **err);
/* The target of image `name`; NotFound naming it. */
int store_image_get(xjob_t *j, const char *name, berth_descriptor_t *target, berth_error_t **err);

/* ---- image names (tag.c) ------------------------------------------------------------------------------ */

struct Containerd__Types__Transfer__ImageStore;
/* containerd's transfer image store's Store (core/transfer/image/imagestore.go): creates or updates (store_
 * image_put) the images the ImageStore names for desc: its name with its labels, and its extra_references
 * (prefix, add_digest rules); a descriptor annotated io.containerd.import.ref-source=annotation (an
 * imported index's children) is named from its io.containerd.image.name / org.opencontainers.image.ref.name
 * annotations instead. Sends a "saved" progress event per image. NotFound "no image name found" when the
 * store names none for desc (an import skips such a descriptor). */
int imagestore_store(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *is,
                     const berth_descriptor_t *desc, berth_error_t **err);

/* ---- manifests and platforms (manifest.c) ------------------------------------------------------------ */

typedef struct oci_platform_s {
    char os[32], arch[32], variant[32];
} oci_platform_t;

/* "linux/arm/v7" -> platform, normalised as containerd's platforms.Normalize ("aarch64" -> arm64, ...). */
int platform_parse(const berth_core_api_t *api, const char *spec, oci_platform_t *out,
                   berth_error_t **err);
void platform_host(oci_platform_t *out);
/* containerd's default matcher: same os, same arch, and a variant the wanted one can run (arm/v7 runs v6
 * and v5; amd64 runs plain amd64 ...); a lower rank is a better match, -1 no match. */
int platform_rank(const oci_platform_t *want, const oci_platform_t *have);
/* containerd's platforms.Normalize, and NewMatcher(want).Match(have) (both normalised, then equal: what an
 * ImageStore's platform list filters with). */
void platform_normalize(oci_platform_t *p);
int platform_match(const oci_platform_t *want, const oci_platform_t *have);

typedef struct oci_child_s {
    berth_descriptor_t desc;
    int has_platform;
    oci_platform_t platform;
} oci_child_t;

/* The parsed pieces of a manifest or index (OCI and Docker v2 schema 2 media types). */
typedef struct oci_manifest_s {
    int is_index;
    berth_descriptor_t config; /* manifests */
    oci_child_t *children;     /* index: manifests; manifest: layers (no platform) */
    size_t n_children;
    const berth_core_api_t *api; /* frees the descriptors' annotations (kv) in manifest_free */
} oci_manifest_t;

/* InvalidArgument naming the field for a malformed manifest. */
int manifest_parse(const berth_core_api_t *api, const char *media_type, const uint8_t *data,
                   size_t len, oci_manifest_t *out, berth_error_t **err);
void manifest_free(oci_manifest_t *m);
/* The diff_ids of an image config (rootfs.diff_ids), n of them (malloc'd array of digests). */
int config_diff_ids(const berth_core_api_t *api, const uint8_t *data, size_t len,
                    char (**ids)[BERTH_DIGEST_MAX], size_t *n, berth_error_t **err);
/* The platform an image config declares (os, architecture, variant; not normalised). */
int config_platform(const berth_core_api_t *api, const uint8_t *data, size_t len,
                    oci_platform_t *out, berth_error_t **err);
/* Media type classes as containerd's images package; digest syntax ("sha256:<64 hex>", sha384, sha512). */
int media_is_index(const char *mt);
int media_is_manifest(const char *mt);
int media_is_layer(const char *mt);
int media_is_config(const char *mt);
int digest_valid(const char *d);
/* containerd's remotes.MakeRefKey: "<kind>-<digest>", the ingest ref of a blob by what it is */
void descriptor_ref_key(const berth_descriptor_t *d, char *out, size_t cap);

/* ---- unpack (unpack.c): layers applied as they arrive ------------------------------------------------- */

typedef struct unpacker_s unpacker_t;
/* Starts unpacking an image's layers (in manifest order, diff_ids from its config) into snapshotter, on a
 * thread of its own: layer i is applied once unpack_ready(i) was called for it and every layer below it is
 * applied. Layers whose chain is already committed are skipped. */
int unpack_start(xjob_t *j, const char *snapshotter, const berth_descriptor_t *config,
                 const oci_manifest_t *manifest, unpacker_t **out, berth_error_t **err);
void unpack_ready(unpacker_t *u, size_t layer);
/* Tells the unpacker the download failed (it stops before the next layer). */
void unpack_cancel(unpacker_t *u);
/* Waits for the last layer, labels the config blob containerd.io/gc.ref.snapshot.<snapshotter> = chain id
 * (so the image holds its snapshots), frees u. */
int unpack_finish(unpacker_t *u, berth_error_t **err);

/* ---- the remote side of pull and push (remote.c) ----------------------------------------------------- */

struct Containerd__Types__Transfer__OCIRegistry;

/* A registry client for an OCIRegistry: its reference parsed, its resolver's headers and default scheme,
 * credentials asked for on its auth stream (AuthRequest/AuthResponse, as containerd's credCallback). */
typedef struct remote_s {
    xjob_t *j;
    reg_ref_t ref;
    char reference[1024];
    char auth_stream[256];
    xstream_t *auth;
    char **headers;
    size_t n_headers;
    reg_client_t *client;
} remote_t;

int remote_open(xjob_t *j, const struct Containerd__Types__Transfer__OCIRegistry *reg, remote_t *r,
                berth_error_t **err);
void remote_close(remote_t *r);

/* The top chain id of an unpacker's image ("" without layers). */
const char *unpack_chain_id(const unpacker_t *u);

/* ---- operations (one file each) ----------------------------------------------------------------------- */

struct Containerd__Types__Transfer__OCIRegistry;
struct Containerd__Types__Transfer__ImageStore;
struct Containerd__Types__Transfer__ImageImportStream;
struct Containerd__Types__Transfer__ImageExportStream;

/* registry -> image store (pull.c) */
int xfer_pull(xjob_t *j, const struct Containerd__Types__Transfer__OCIRegistry *src,
              const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err);
/* image store -> registry (push.c) */
int xfer_push(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
              const struct Containerd__Types__Transfer__OCIRegistry *dst, berth_error_t **err);
/* import stream -> image store (import.c) */
int xfer_import(xjob_t *j, const struct Containerd__Types__Transfer__ImageImportStream *src,
                const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err);
/* image store -> export stream (export.c) */
int xfer_export(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
                const struct Containerd__Types__Transfer__ImageExportStream *dst,
                berth_error_t **err);
/* image store -> image store (tag.c) */
int xfer_tag(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
             const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err);

#endif
