/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content store service, type "io.containerd.content.v1" (module content-local, id "content"): blobs
 * addressed by digest, shared on disk by every namespace, and ingests (resumable writes) by ref. Namespace
 * visibility and labels are the metadata module's (metadata.h); this store only keeps bytes.
 *
 * Calls are synchronous and may block on disk: use them from pool threads. A writer is used by one thread at
 * a time. Digests are "sha256:<64 hex>".
 */
#ifndef BERTH_CONTENT_H
#define BERTH_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_CONTENT_TYPE "io.containerd.content.v1"
#define BERTH_DIGEST_MAX 80 /* "sha256:" + 64 hex + NUL, with room */

typedef struct berth_blob_info_s {
    char digest[BERTH_DIGEST_MAX];
    int64_t size;
    int64_t created_ns, updated_ns;
} berth_blob_info_t;

typedef struct berth_ingest_status_s {
    char ref[512];
    int64_t offset, total;
    char expected[BERTH_DIGEST_MAX];
    int64_t started_ns, updated_ns;
} berth_ingest_status_t;

typedef struct berth_content_writer_s berth_content_writer_t;

typedef struct berth_content_v1_ops_s {
    uint32_t struct_size;
    int (*info)(void *cs, const char *digest, berth_blob_info_t *out, berth_error_t **err);
    /* Reads up to len bytes at offset; *got 0 at the end. OutOfRange when offset is past the end. */
    int (*read_at)(void *cs, const char *digest, int64_t offset, void *buf, size_t len, size_t *got,
                   berth_error_t **err);
    int (*remove)(void *cs, const char *digest, berth_error_t **err);
    int (*walk)(void *cs, int (*cb)(void *user, const berth_blob_info_t *info), void *user,
                berth_error_t **err);

    /* Opens (or resumes) the ingest `ref` and locks it: a second open of a live ref is Unavailable.
     * expected: "" or the digest the blob must have; if that blob is stored already: AlreadyExists. */
    int (*writer_open)(void *cs, const char *ref, int64_t total, const char *expected,
                       berth_content_writer_t **out, berth_error_t **err);
    int (*writer_status)(berth_content_writer_t *w, berth_ingest_status_t *out);
    /* Appends at the current offset. */
    int (*writer_write)(berth_content_writer_t *w, const void *data, size_t len,
                        berth_error_t **err);
    /* Only 0 is supported: start over. */
    int (*writer_truncate)(berth_content_writer_t *w, int64_t size, berth_error_t **err);
    /* Verifies size (if > 0) and digest (if given), publishes atomically, fills digest (the blob's).
     * FailedPrecondition on a mismatch (nothing published, the ingest stays); AlreadyExists if stored. */
    int (*writer_commit)(berth_content_writer_t *w, int64_t size, const char *expected,
                         char digest[BERTH_DIGEST_MAX], berth_error_t **err);
    /* Unlocks and frees the writer; an uncommitted ingest stays on disk to be resumed. */
    void (*writer_close)(berth_content_writer_t *w);

    int (*ingest_status)(void *cs, const char *ref, berth_ingest_status_t *out,
                         berth_error_t **err);
    int (*ingest_list)(void *cs, int (*cb)(void *user, const berth_ingest_status_t *st), void *user,
                       berth_error_t **err);
    int (*ingest_abort)(void *cs, const char *ref, berth_error_t **err);

    /* writer_write in two halves, for a caller that answers a write before its bytes reach the disk:
     * writer_hash takes the next bytes into the digest (and stamps the update time), writer_append writes
     * them at the disk offset. Each half sees the bytes in order and is used by one thread at a time; the
     * two may run at once on different threads. The ingest's offset (status, commit) is the disk's. */
    void (*writer_hash)(berth_content_writer_t *w, const void *data, size_t len);
    int (*writer_append)(berth_content_writer_t *w, const void *data, size_t len,
                         berth_error_t **err);
    /* The digest of the bytes hashed so far ("sha256:e3b0..." before any). */
    void (*writer_digest)(berth_content_writer_t *w, char digest[BERTH_DIGEST_MAX]);
} berth_content_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_CONTENT_H */
