/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client: the OCI distribution API over libcurl, with containerd's host configuration
 * (hosts.toml's model in berth's YAML), Bearer and Basic auth, TLS per host, Range resume, retries.
 * Nothing here knows about namespaces, content stores or gRPC: callers bring sinks and sources.
 *
 * Every call blocks; call from pool threads. A reg_client_t is used by one thread at a time (the thread
 * that drives reg_fetch_blobs runs every callback of that call).
 */
#ifndef BERTH_TRANSFER_REGISTRY_H
#define BERTH_TRANSFER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <berth/config.h>
#include <berth/diff.h>
#include <berth/error.h>
#include <berth/module.h>

/* ---- references ------------------------------------------------------------------------------------ */

/* A parsed image reference, normalised as docker's: "busybox" is docker.io/library/busybox:latest. */
typedef struct reg_ref_s {
    char host
        [256]; /* "docker.io", "127.0.0.1:5000" (the registry namespace hosts config is keyed by) */
    char repo[512];                /* "library/busybox" */
    char tag[256];                 /* "" when only a digest was given */
    char digest[BERTH_DIGEST_MAX]; /* "" when none */
    char name[1024]; /* the normalised full name: "docker.io/library/busybox:latest" (or @digest) */
} reg_ref_t;

/* InvalidArgument naming what is wrong ("reference \"Foo\": repository name must be lowercase"). */
int reg_ref_parse(const berth_core_api_t *api, const char *ref, reg_ref_t *out,
                  berth_error_t **err);

/* ---- host configuration (the transfer plugin's `registries:` key; docs/registries.md) ------------------ */

#define REG_CAP_PULL 0x1u
#define REG_CAP_RESOLVE 0x2u
#define REG_CAP_PUSH 0x4u

/* One endpoint: a mirror or the upstream server. */
typedef struct reg_endpoint_s {
    char *url;     /* "https://mirror.example:5000" (scheme, host[:port], optional path prefix) */
    unsigned caps; /* REG_CAP_*; mirrors default to pull|resolve, the upstream to all */
    char *ca_file; /* extra CA bundle (added to the system's) or NULL */
    char *client_cert; /* client certificate and key (PEM) or NULL */
    char *client_key;
    int skip_verify;   /* TLS without verification (only when configured) */
    int override_path; /* url's path replaces "/v2" (containerd's override_path) */
    char *username;    /* static credentials for this endpoint, or NULL */
    char *password;
    char *token;    /* static identity/refresh token, or NULL */
    char **headers; /* "Name: value" extra headers, n_headers of them */
    size_t n_headers;
} reg_endpoint_t;

/* A registry namespace ("docker.io", "127.0.0.1:5000", or "_default"): mirrors in order, then the upstream. */
typedef struct reg_host_s {
    char *name;
    reg_endpoint_t *mirrors;
    size_t n_mirrors;
    reg_endpoint_t
        upstream; /* url defaults to https://<name> (docker.io: https://registry-1.docker.io) */
} reg_host_t;

typedef struct reg_config_s {
    reg_host_t *hosts;
    size_t n_hosts;
    int max_concurrent_downloads; /* default 3, as containerd */
    int max_concurrent_uploads;   /* default 3 */
    int64_t connect_timeout_ms;   /* default 30 s */
    int64_t low_speed_time_s; /* abort a transfer slower than low_speed_limit for this long; 30 */
    int64_t low_speed_limit;  /* bytes/s; default 1 */
    int retries;              /* per request, for 5xx/429 and cut connections; default 5 */
    int64_t manifest_limit;   /* bytes; default 4 MiB */
} reg_config_t;

/* Reads the plugin's config map (api->map_get(config, "registries") etc.); InvalidArgument naming the key. */
int reg_config_load(const berth_core_api_t *api, const berth_config_node_t *plugin_config,
                    reg_config_t *out, berth_error_t **err);
void reg_config_free(reg_config_t *cfg);

/* ---- the client ------------------------------------------------------------------------------------ */

typedef struct reg_client_s reg_client_t;

/* Credentials asked for when a registry answers 401 (and before, with the WWW-Authenticate challenges).
 * Fill *username and *secret (malloc'd; username NULL + secret = an identity token; both NULL = anonymous).
 * Return 0, or an error that ends the request. The transfer module answers this from the request's auth
 * stream; endpoints with static credentials never call it. */
typedef int (*reg_creds_fn)(void *user, const char *host, const char *reference,
                            const char *const *www_authenticate, size_t n, char **username,
                            char **secret, berth_error_t **err);

typedef struct reg_client_opts_s {
    const reg_config_t *config;
    const reg_ref_t *ref;
    reg_creds_fn creds; /* may be NULL */
    void *creds_user;
    const char *const
        *headers; /* extra "Name: value" headers from the request (RegistryResolver.headers) */
    size_t n_headers;
    const char
        *default_scheme; /* "http" or "https" (RegistryResolver.default_scheme); NULL: https, or
                                 * http for a host configured so or a loopback host without config */
    const berth_logger_t *log;
} reg_client_opts_t;

int reg_client_new(const berth_core_api_t *api, const reg_client_opts_t *opts, reg_client_t **out,
                   berth_error_t **err);
void reg_client_free(reg_client_t *c);

/* Resolves the reference (tag or digest) to the descriptor of its manifest or index, trying endpoints with
 * the resolve capability in order (a 404 or connection failure on a mirror falls through to the next and
 * finally the upstream; the last error is reported, NotFound as "<ref>: not found"). */
int reg_resolve(reg_client_t *c, berth_descriptor_t *out, berth_error_t **err);

/* Fetches a manifest or index by digest (or the resolved one) into *data (malloc'd), refusing more than
 * config->manifest_limit bytes; verifies size and digest. desc NULL: the descriptor reg_resolve found;
 * the data is malloc'd with libc's malloc (free()). */
int reg_fetch_manifest(reg_client_t *c, const berth_descriptor_t *desc, uint8_t **data, size_t *len,
                       berth_error_t **err);

/* One blob to download, resumable. The client asks for bytes from `offset` (Range: bytes=offset-); when
 * the server ignores the Range it calls restart and sends from 0. Cut connections, 5xx and 429 are retried
 * with backoff (Retry-After honoured), each retry asking only for the bytes not yet delivered. */
typedef struct reg_blob_job_s {
    berth_descriptor_t desc;
    int64_t offset;                                  /* bytes the caller already holds */
    int (*restart)(void *user, berth_error_t **err); /* start over at 0 */
    int (*data)(void *user, const void *buf, size_t len, berth_error_t **err); /* in order */
    /* once per job, after the last byte (rc 0, exactly desc.size bytes delivered in total) or on failure
     * (rc < 0, err owned by the callee). The caller verifies the digest. */
    void (*done)(void *user, int rc, berth_error_t *err);
    void *user;
} reg_blob_job_t;

/* Runs the jobs with at most config->max_concurrent_downloads at once on one curl multi handle (HTTP/2
 * where offered, connections reused), following redirects to blob storage. Returns when every job is done:
 * 0 when all succeeded, else the first failure (each job's own outcome went to its done). */
int reg_fetch_blobs(reg_client_t *c, reg_blob_job_t *jobs, size_t n, berth_error_t **err);

/* ---- push ------------------------------------------------------------------------------------------- */

/* Reads up to len bytes of the blob at offset into buf; *got 0 at the end. */
typedef int (*reg_read_fn)(void *user, int64_t offset, void *buf, size_t len, size_t *got,
                           berth_error_t **err);

/* 1 when the repository has the blob (HEAD), 0 when not. */
int reg_blob_exists(reg_client_t *c, const berth_descriptor_t *desc, berth_error_t **err);
/* Cross-repository mount from `from_repo` on the same registry: 1 mounted, 0 not (the caller uploads). */
int reg_blob_mount(reg_client_t *c, const berth_descriptor_t *desc, const char *from_repo,
                   berth_error_t **err);
/* Uploads the blob: monolithic when it is at most chunk_size (0 = always monolithic), else PATCH chunks of
 * chunk_size then the closing PUT with the digest. */
int reg_push_blob(reg_client_t *c, const berth_descriptor_t *desc, reg_read_fn read, void *user,
                  int64_t chunk_size, berth_error_t **err);
/* PUTs a manifest or index under `tag_or_digest` with its media type. */
int reg_push_manifest(reg_client_t *c, const char *tag_or_digest, const char *media_type,
                      const uint8_t *data, size_t len, berth_error_t **err);

#endif
