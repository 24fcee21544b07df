/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata service, type "io.containerd.metadata.v1" (module metadata-lmdb, id "lmdb"): the records
 * containerd keeps in its bolt database, per namespace, here in one LMDB environment. Later modules (content,
 * images, snapshotters, runtime) keep their records and ownership through it; this first version holds
 * namespaces and leases.
 *
 * Every call is synchronous, thread-safe and may block on disk: call it from a pool thread (the gRPC
 * handlers of the module run there). Each call is one LMDB transaction: it happens entirely or not at all.
 * Errors follow containerd's words: `namespace "x": not found`, `lease "y": already exists`, ...
 * Label maps are berth_kv_t (hooks.h), created and read through the core table's kv_* functions.
 */
#ifndef BERTH_METADATA_H
#define BERTH_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_METADATA_TYPE "io.containerd.metadata.v1"
/* A label key and value together may not exceed this (containerd's labels.Validate). */
#define BERTH_LABEL_MAX 4096
/* snapshot_store flag: durability may wait for the next transaction (see there). */
#define BERTH_METADATA_DEFERRED 1u
/* record_put flag: fail with AlreadyExists instead of replacing. */
#define BERTH_RECORD_CREATE 1u

typedef struct berth_lease_s {
    const char *id;
    int64_t created_ns; /* wall clock, nanoseconds since the epoch */
    const berth_kv_t *labels;
} berth_lease_t;

/* A blob as one namespace sees it (containerd's content.Info). */
typedef struct berth_content_record_s {
    const char *digest;
    int64_t size;
    int64_t created_ns, updated_ns;
    const berth_kv_t *labels;
} berth_content_record_t;

/* What a collection removed, told to whoever runs it. */
typedef struct berth_gc_removed_s {
    uint32_t struct_size;
    void *user;
    void (*content)(void *user, const char *digest);
    void (*snapshot)(void *user, const char *ns, const char *snapshotter, const char *key);
} berth_gc_removed_t;

typedef struct berth_metadata_v1_ops_s {
    uint32_t struct_size;

    /* Namespaces. Names follow containerd's identifier rule (InvalidArgument otherwise). */
    int (*namespace_create)(void *md, const char *ns, const berth_kv_t *labels,
                            berth_error_t **err);
    /* Fills labels (a caller-made kv). A namespace that does not exist reads as empty, as containerd's. */
    int (*namespace_labels)(void *md, const char *ns, berth_kv_t *labels, berth_error_t **err);
    /* Sets one label; an empty value removes it. Creates the namespace if needed (containerd does too). */
    int (*namespace_set_label)(void *md, const char *ns, const char *key, const char *value,
                               berth_error_t **err);
    /* Replaces every label. */
    int (*namespace_set_labels)(void *md, const char *ns, const berth_kv_t *labels,
                                berth_error_t **err);
    /* Calls cb for each namespace in name order; cb returning non-zero stops. */
    int (*namespace_list)(void *md, int (*cb)(void *user, const char *ns, const berth_kv_t *labels),
                          void *user, berth_error_t **err);
    /* FailedPrecondition while the namespace still holds leases or other records; NotFound if absent. */
    int (*namespace_delete)(void *md, const char *ns, berth_error_t **err);

    /* Leases, per namespace. */
    int (*lease_create)(void *md, const char *ns, const char *id, const berth_kv_t *labels,
                        int64_t *created_ns, berth_error_t **err);
    int (*lease_delete)(void *md, const char *ns, const char *id, berth_error_t **err);
    int (*lease_list)(void *md, const char *ns, int (*cb)(void *user, const berth_lease_t *lease),
                      void *user, berth_error_t **err);
    /* Resource types as containerd's: "content" (id a digest), "ingests", "snapshots/<snapshotter>". */
    int (*lease_add_resource)(void *md, const char *ns, const char *id, const char *type,
                              const char *resource, berth_error_t **err);
    int (*lease_delete_resource)(void *md, const char *ns, const char *id, const char *type,
                                 const char *resource, berth_error_t **err);
    int (*lease_list_resources)(void *md, const char *ns, const char *id,
                                int (*cb)(void *user, const char *type, const char *resource),
                                void *user, berth_error_t **err);

    /* Content ownership: which blobs a namespace holds, with its own labels. The bytes live in the
     * content store; a blob is shared on disk and visible in every namespace that holds a record. */
    /* Creates the record, or refreshes its size and labels (labels NULL: keep them). */
    int (*content_put)(void *md, const char *ns, const char *digest, int64_t size,
                       const berth_kv_t *labels, berth_error_t **err);
    /* NotFound when the namespace holds no such blob; labels (caller-made) are filled. */
    int (*content_get)(void *md, const char *ns, const char *digest, berth_content_record_t *out,
                       berth_kv_t *labels, berth_error_t **err);
    int (*content_set_labels)(void *md, const char *ns, const char *digest,
                              const berth_kv_t *labels, berth_error_t **err);
    int (*content_delete)(void *md, const char *ns, const char *digest, berth_error_t **err);
    int (*content_list)(void *md, const char *ns,
                        int (*cb)(void *user, const berth_content_record_t *rec), void *user,
                        berth_error_t **err);
    /* 1 when any namespace holds the blob, 0 when none, negative on error. */
    int (*content_held)(void *md, const char *digest, berth_error_t **err);

    /* Garbage collection, containerd's model (docs/garbage-collection.md): roots are leases that have not
     * expired (containerd.io/gc.expire) with what they list, images (their target), containers (their
     * snapshot), and content or snapshots labelled containerd.io/gc.root; containerd.io/gc.ref.content* and
     * containerd.io/gc.ref.snapshot.<snapshotter>* labels and snapshot parents reach further; a lease
     * labelled containerd.io/gc.flat protects only what it lists. One transaction removes every content
     * and snapshot record no root reaches, and every expired lease; `removed` hears of each removed record
     * (the collector then removes the bytes and snapshots their stores no longer need). */
    int (*gc_collect)(void *md, int64_t now_ns, const berth_gc_removed_t *removed,
                      berth_error_t **err);
    /* Deletions since the last collection (what a scheduler watches). */
    uint64_t (*gc_dirty)(void *md);
    /* 1 when a lease of the namespace lists the resource, 0 when none. */
    int (*lease_holds)(void *md, const char *ns, const char *type, const char *resource,
                       berth_error_t **err);

    /* Images and containers, stored as containerd's own messages (containerd.services.images.v1.Image,
     * containerd.services.containers.v1.Container), serialized: the services that own them encode and
     * decode; the store validates as containerd's metadata does (names, labels, target, runtime, spec),
     * stamps created_at/updated_at, and roots garbage collection in them (an image holds its target).
     * get returns a serialized copy the caller frees with api->free. */
    int (*image_create)(void *md, const char *ns, const uint8_t *image, size_t len,
                        berth_error_t **err);
    int (*image_update)(void *md, const char *ns, const uint8_t *image, size_t len,
                        berth_error_t **err);
    int (*image_get)(void *md, const char *ns, const char *name, uint8_t **image, size_t *len,
                     berth_error_t **err);
    int (*image_list)(void *md, const char *ns,
                      int (*cb)(void *user, const uint8_t *image, size_t len), void *user,
                      berth_error_t **err);
    int (*image_delete)(void *md, const char *ns, const char *name, berth_error_t **err);
    int (*container_create)(void *md, const char *ns, const uint8_t *container, size_t len,
                            berth_error_t **err);
    int (*container_update)(void *md, const char *ns, const uint8_t *container, size_t len,
                            berth_error_t **err);
    int (*container_get)(void *md, const char *ns, const char *id, uint8_t **container, size_t *len,
                         berth_error_t **err);
    int (*container_list)(void *md, const char *ns,
                          int (*cb)(void *user, const uint8_t *container, size_t len), void *user,
                          berth_error_t **err);
    int (*container_delete)(void *md, const char *ns, const char *id, berth_error_t **err);

    /* Snapshot ownership per namespace and snapshotter, as containerd's snapshots.v1.Info message (name,
     * parent, kind, labels; times stamped here). delete refuses a snapshot that has children
     * (FailedPrecondition), as containerd's metadata snapshotter does. */
    int (*snapshot_create)(void *md, const char *ns, const char *snapshotter, const uint8_t *info,
                           size_t len, berth_error_t **err);
    int (*snapshot_update)(void *md, const char *ns, const char *snapshotter, const uint8_t *info,
                           size_t len, berth_error_t **err);
    int (*snapshot_get)(void *md, const char *ns, const char *snapshotter, const char *key,
                        uint8_t **info, size_t *len, berth_error_t **err);
    int (*snapshot_list)(void *md, const char *ns, const char *snapshotter,
                         int (*cb)(void *user, const uint8_t *info, size_t len), void *user,
                         berth_error_t **err);
    int (*snapshot_delete)(void *md, const char *ns, const char *snapshotter, const char *key,
                           berth_error_t **err);
    /* A commit in one transaction: the record `key` goes and the committed record `info` (its name, kind
     * committed) comes; AlreadyExists when the name is taken, NotFound when the key is gone. */
    int (*snapshot_commit)(void *md, const char *ns, const char *snapshotter, const char *key,
                           const uint8_t *info, size_t len, berth_error_t **err);

    /* Every namespace's content records, namespace by namespace (start-up reconciliation with the
     * content store); cb returning non-zero stops. */
    int (*content_list_all)(void *md,
                            int (*cb)(void *user, const char *ns,
                                      const berth_content_record_t *rec),
                            void *user, berth_error_t **err);

    /* A snapshot's one durable step (ABI minor 1): creates record `info` (with `replaces` set, a commit as
     * snapshot_commit) after checking, in the same transaction, that its parent is a committed record
     * (NotFound, InvalidArgument), and lists it in lease `lease` (when not NULL or "") as
     * "snapshots/<snapshotter>". With BERTH_METADATA_DEFERRED in flags, a system crash (not a process
     * crash) may undo this transaction until a later one returns: for a record whose loss leaves only
     * garbage, it saves a disk flush. */
    int (*snapshot_store)(void *md, const char *ns, const char *snapshotter, const char *replaces,
                          const uint8_t *info, size_t len, const char *lease, unsigned flags,
                          berth_error_t **err);
    /* snapshot_delete with flags: with BERTH_METADATA_DEFERRED the deletion may be undone by a system
     * crash until a later transaction or sync returns, so the caller removes the storage only then. */
    int (*snapshot_remove)(void *md, const char *ns, const char *snapshotter, const char *key,
                           unsigned flags, berth_error_t **err);
    /* Makes every transaction that has returned durable (one disk flush). */
    int (*sync)(void *md, berth_error_t **err);

    /* Records of other modules (ABI minor 3): opaque values (the caller serializes) under (namespace,
     * kind, key); kind names the record type ("volumes"), key its name (1..255 bytes, no NUL). A
     * namespace holding any cannot be deleted. Not roots or objects of garbage collection. */
    /* Writes the record, creating the namespace if needed. With BERTH_RECORD_CREATE, AlreadyExists when
     * the key is taken (checked in the same transaction). */
    int (*record_put)(void *md, const char *ns, const char *kind, const char *key,
                      const uint8_t *value, size_t len, unsigned flags, berth_error_t **err);
    /* NotFound when absent; *value is the caller's to free with api->free. */
    int (*record_get)(void *md, const char *ns, const char *kind, const char *key, uint8_t **value,
                      size_t *len, berth_error_t **err);
    /* In key order; cb returning non-zero stops. */
    int (*record_list)(void *md, const char *ns, const char *kind,
                       int (*cb)(void *user, const char *key, const uint8_t *value, size_t len),
                       void *user, berth_error_t **err);
    /* NotFound when absent. */
    int (*record_delete)(void *md, const char *ns, const char *kind, const char *key,
                         berth_error_t **err);
} berth_metadata_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_METADATA_H */
