/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers the record files share: label maps to and from protobuf map entries, and writing a message. */
#ifndef BERTH_METADATA_RECORDS_H
#define BERTH_METADATA_RECORDS_H

#include <protobuf-c/protobuf-c.h>

#include "identifiers.h"
#include "store.h"

/* Every generated map-entry type has this shape. */
typedef struct md_map_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} md_map_entry_t;

/* Entries pointing into kv's strings (borrowed); free the array with md_entries_free. */
md_map_entry_t **md_entries_of(md_t *md, const berth_kv_t *kv, const ProtobufCMessageDescriptor *d,
                               size_t *n);
void md_entries_free(md_map_entry_t **e, size_t n);
void md_entries_to_kv(md_t *md, md_map_entry_t **e, size_t n, berth_kv_t *kv);
int md_put_message(md_t *md, MDB_txn *txn, const md_key_t *k, const ProtobufCMessage *m,
                   berth_error_t **err);

/* content_records.c */
int md_content_put(void *md, const char *ns, const char *digest, int64_t size,
                   const berth_kv_t *labels, berth_error_t **err);
int md_content_get(void *md, const char *ns, const char *digest, berth_content_record_t *out,
                   berth_kv_t *labels, berth_error_t **err);
int md_content_set_labels(void *md, const char *ns, const char *digest, const berth_kv_t *labels,
                          berth_error_t **err);
int md_content_delete(void *md, const char *ns, const char *digest, berth_error_t **err);
int md_content_list(void *md, const char *ns,
                    int (*cb)(void *user, const berth_content_record_t *rec), void *user,
                    berth_error_t **err);
int md_content_held(void *md, const char *digest, berth_error_t **err);
void md_content_sweep(void *md, char *const *digests, size_t n,
                      void (*remove)(void *user, const char *digest), void *user);
int md_content_list_all(void *md,
                        int (*cb)(void *user, const char *ns, const berth_content_record_t *rec),
                        void *user, berth_error_t **err);

/* object_records.c */
int md_image_create(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err);
int md_image_update(void *md, const char *ns, const uint8_t *d, size_t len, berth_error_t **err);
int md_image_get(void *md, const char *ns, const char *name, uint8_t **d, size_t *len,
                 berth_error_t **err);
int md_image_list(void *md, const char *ns, int (*cb)(void *, const uint8_t *, size_t), void *user,
                  berth_error_t **err);
int md_image_delete(void *md, const char *ns, const char *name, berth_error_t **err);
int md_container_create(void *md, const char *ns, const uint8_t *d, size_t len,
                        berth_error_t **err);
int md_container_update(void *md, const char *ns, const uint8_t *d, size_t len,
                        berth_error_t **err);
int md_container_get(void *md, const char *ns, const char *id, uint8_t **d, size_t *len,
                     berth_error_t **err);
int md_container_list(void *md, const char *ns, int (*cb)(void *, const uint8_t *, size_t),
                      void *user, berth_error_t **err);
int md_container_delete(void *md, const char *ns, const char *id, berth_error_t **err);
int md_snapshot_create(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                       berth_error_t **err);
int md_snapshot_update(void *md, const char *ns, const char *sn, const uint8_t *d, size_t len,
                       berth_error_t **err);
int md_snapshot_get(void *md, const char *ns, const char *sn, const char *key, uint8_t **d,
                    size_t *len, berth_error_t **err);
int md_snapshot_list(void *md, const char *ns, const char *sn,
                     int (*cb)(void *, const uint8_t *, size_t), void *user, berth_error_t **err);
int md_snapshot_commit(void *md, const char *ns, const char *sn, const char *key, const uint8_t *d,
                       size_t len, berth_error_t **err);
int md_snapshot_delete(void *md, const char *ns, const char *sn, const char *key,
                       berth_error_t **err);
int md_snapshot_remove(void *md, const char *ns, const char *sn, const char *key, unsigned flags,
                       berth_error_t **err);
int md_snapshot_store(void *md, const char *ns, const char *sn, const char *replaces,
                      const uint8_t *d, size_t len, const char *lease, unsigned flags,
                      berth_error_t **err);
const char *md_image_target(const uint8_t *data, size_t len, char *out, size_t outlen);

/* records.c: lists a resource in a lease inside the caller's transaction. */
int md_lease_add_in(md_t *md, MDB_txn *txn, const char *ns, const char *id, const char *type,
                    const char *resource, berth_error_t **err);

/* module_records.c */
int md_record_put(void *md, const char *ns, const char *kind, const char *key, const uint8_t *value,
                  size_t len, unsigned flags, berth_error_t **err);
int md_record_get(void *md, const char *ns, const char *kind, const char *key, uint8_t **value,
                  size_t *len, berth_error_t **err);
int md_record_list(void *md, const char *ns, const char *kind,
                   int (*cb)(void *user, const char *key, const uint8_t *value, size_t len),
                   void *user, berth_error_t **err);
int md_record_delete(void *md, const char *ns, const char *kind, const char *key,
                     berth_error_t **err);

/* gc_records.c */
int md_gc_collect(void *md, int64_t now_ns, const berth_gc_removed_t *removed, berth_error_t **err);
uint64_t md_gc_dirty(void *md);
int md_lease_holds(void *md, const char *ns, const char *type, const char *resource,
                   berth_error_t **err);

#endif
