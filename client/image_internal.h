/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Walking a stored image (manifest.c) and generating OCI specs (spec.c), for the library's other files. Not
 * installed.
 *
 * An image resolves as containerd's client does: Images.Get -> its target (an index or a manifest; from an
 * index the manifest of the client's platform, as containerd's default matcher) -> the manifest -> its config
 * and layers, read through Content.Read.
 */
#ifndef BERTH_CLIENT_IMAGE_INTERNAL_H
#define BERTH_CLIENT_IMAGE_INTERNAL_H

#include <stddef.h>

#include "berth/client.h"

typedef struct bc_image {
    char *name;
    berth_descriptor_t target;   /* what the image record points at */
    berth_descriptor_t manifest; /* the platform's manifest (== target when it is one) */
    berth_descriptor_t config;
    berth_descriptor_t *layers;
    size_t n_layers;
    char **diff_ids; /* rootfs.diff_ids of the config */
    size_t n_diff_ids;
    char *config_json; /* the config blob as stored */
    char *chain_id;    /* ChainID of every diff_id: the name of the unpacked image's top snapshot */
    int64_t size;      /* index (if any) + manifest + config + layers, as containerd's Image.Size */
} bc_image_t;

/* "linux/amd64" for the host's architecture (containerd's platforms.DefaultString) */
const char *bc_default_platform(void);
/* platform NULL: bc_default_platform() */
int bc_image_resolve(berth_client_t *c, const berth_call_t *call, const char *name,
                     const char *platform, bc_image_t **out, berth_error_t **err);
void bc_image_free(bc_image_t *img);

/* A whole blob from the content store (Content.Read's stream), NUL-terminated; *len may be NULL. */
int bc_blob_read(berth_client_t *c, const berth_call_t *call, const char *digest, char **data,
                 size_t *len, berth_error_t **err);

/* "sha256:<hex>" of data; out has room for 72 bytes */
void bc_sha256_digest(const void *data, size_t len, char out[72]);
/* The OCI ChainID of diff_ids[0..n) (identity for n == 1); caller frees; NULL when n == 0 or ENOMEM */
char *bc_chain_id(char *const *diff_ids, size_t n);

/* ---- spec generation (spec.c: pure, no daemon) ---- */

/* containerd's default Linux spec for namespace ns and container id, then image_config_json (the image's
 * config blob; NULL: none), then opts (NULL: none). rootfs_dir (NULL: none) is read for user and group
 * names; a name without it is an error. */
int bc_spec_build(const char *ns, const char *id, const char *image_config_json,
                  const berth_spec_opts_t *opts, const char *rootfs_dir, char **spec_json,
                  berth_error_t **err);
/* A process object for an exec: spec_json's process with opts' args, env, cwd, user and tty applied. */
int bc_spec_process_build(const char *spec_json, const berth_spec_opts_t *opts,
                          const char *rootfs_dir, char **process_json, berth_error_t **err);
/* 1 when user (or the image config's User, when user is NULL) needs /etc/passwd or /etc/group */
int bc_spec_user_needs_rootfs(const char *user);

/* ---- rootfs helpers (containers.c) ---- */

/* Mounts a read-only form of the snapshot's mounts at a temp dir (under fifo dir's sibling), calls fn, then
 * unmounts and removes the dir. */
typedef int (*bc_rootfs_fn)(void *arg, const char *rootfs, berth_error_t **err);
int bc_with_snapshot_rootfs(berth_client_t *c, const berth_call_t *call, const char *snapshotter,
                            const char *key, bc_rootfs_fn fn, void *arg, berth_error_t **err);

#endif /* BERTH_CLIENT_IMAGE_INTERNAL_H */
