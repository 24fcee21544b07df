/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regtool: the transfer module's registry client (modules/transfer/registry.h) on the command line, for
 * tests/scripts/registry_client.sh and manual checks. It links the client directly, no daemon.
 *
 *   regtool [opts] resolve REF                      prints "<media type> <digest> <size>"
 *   regtool [opts] manifest REF [DIGEST]            the manifest (resolved, or by digest) to stdout
 *   regtool [opts] fetch REF DIGEST OUT [--offset N] [--size N]
 *                                                   downloads a blob of REF's manifest (its size from the
 *                                                   manifest unless --size); with --offset, OUT's first N
 *                                                   bytes are kept and only the rest is asked for. Then
 *                                                   verifies the digest: exit 3 "digest mismatch" if not
 *   regtool [opts] fetch-all REF DIR                the manifest's config and layers at once (as many in
 *                                                   flight as max_concurrent_downloads) into DIR/<hex>,
 *                                                   each verified: exit 3 on a mismatch
 *   regtool [opts] push-blob REF FILE [--chunk N] [--mount-from REPO]
 *                                                   prints "exists", "mounted" or "pushed"
 *   regtool [opts] push-manifest REF FILE MEDIATYPE PUTs FILE under REF's tag (or digest)
 *   regtool htpasswd USER PASSWORD                  "USER:<bcrypt>" line for a registry htpasswd file
 * opts: --config FILE (a berthd config: plugins."io.containerd.transfer.v1.local".registries ...),
 *       --user USER:PASSWORD (answers 401s through the credentials callback), --scheme http|https,
 *       --header "Name: value", -v (debug log)
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "config.h"
#include "log.h"
#include "registry.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;

#define TRANSFER_URI "io.containerd.transfer.v1.local"

static const char *opt_config, *opt_user, *opt_scheme;
static const char *opt_headers[16];
static size_t n_headers;
static berth__config_t cfgfile;
static reg_config_t regcfg;

static int
die_err(const char *what, berth_error_t *err)
{
    fprintf(stderr, "regtool: %s: %s (%s)\n", what, err ? err->message : "failed",
            err ? api->error_name(err->code) : "");
    api->error_free(err);
    return 1;
}

static int
creds(void *user, const char *host, const char *reference, const char *const *www, size_t n,
      char **username, char **secret, berth_error_t **err)
{
    (void)user;
    (void)www;
    (void)n;
    (void)err;
    fprintf(stderr, "regtool: credentials asked for %s (%s)\n", host, reference);
    if (opt_user == NULL)
        return 0;
    const char *colon = strchr(opt_user, ':');
    if (colon == NULL) {
        *secret = strdup(opt_user); /* an identity token */
        return 0;
    }
    *username = strndup(opt_user, (size_t)(colon - opt_user));
    *secret = strdup(colon + 1);
    return 0;
}

static int
load_config(void)
{
    berth_error_t *err = NULL;
    reg_config_t dflt = {0};
    if (opt_config == NULL) {
        if (reg_config_load(api, NULL, &regcfg, &err) < 0)
            return die_err("config", err);
        (void)dflt;
        return 0;
    }
    if (berth__config_load(&cfgfile, opt_config, &err) < 0)
        return die_err(opt_config, err);
    const berth_config_node_t *plugins = api->map_get(cfgfile.tree, "plugins");
    if (reg_config_load(api, api->map_get(plugins, TRANSFER_URI), &regcfg, &err) < 0)
        return die_err(opt_config, err);
    return 0;
}

static int
client(const char *ref, reg_ref_t *r, reg_client_t **c)
{
    berth_error_t *err = NULL;
    if (reg_ref_parse(api, ref, r, &err) < 0)
        return die_err("reference", err);
    reg_client_opts_t o = {.config = &regcfg,
                           .ref = r,
                           .creds = creds,
                           .headers = opt_headers,
                           .n_headers = n_headers,
                           .default_scheme = opt_scheme};
    if (reg_client_new(api, &o, c, &err) < 0)
        return die_err("client", err);
    return 0;
}

static int
cmd_resolve(const char *ref)
{
    reg_ref_t r;
    reg_client_t *c;
    berth_error_t *err = NULL;
    if (client(ref, &r, &c))
        return 1;
    berth_descriptor_t d;
    int rc = reg_resolve(c, &d, &err);
    reg_client_free(c);
    if (rc < 0)
        return die_err("resolve", err);
    printf("%s %s %" PRId64 "\n", d.media_type, d.digest, d.size);
    return 0;
}

static int
get_manifest(reg_client_t *c, const char *digest, uint8_t **data, size_t *len,
             berth_descriptor_t *d)
{
    berth_error_t *err = NULL;
    memset(d, 0, sizeof *d);
    if (digest) {
        snprintf(d->digest, sizeof d->digest, "%s", digest);
    } else if (reg_resolve(c, d, &err) < 0) {
        return die_err("resolve", err);
    }
    if (reg_fetch_manifest(c, d, data, len, &err) < 0)
        return die_err("manifest", err);
    return 0;
}

static int
cmd_manifest(const char *ref, const char *digest)
{
    reg_ref_t r;
    reg_client_t *c;
    if (client(ref, &r, &c))
        return 1;
    uint8_t *data = NULL;
    size_t len = 0;
    berth_descriptor_t d;
    int rc = get_manifest(c, digest, &data, &len, &d);
    reg_client_free(c);
    if (rc)
        return rc;
    fwrite(data, 1, len, stdout);
    free(data);
    return 0;
}

/* The size of blob `digest` in the manifest (config or a layer); -1 when absent. */
static int64_t
size_in_manifest(const uint8_t *data, size_t len, const char *digest)
{
    json_object *root = json_tokener_parse((const char *)data), *v, *arr;
    int64_t size = -1;
    (void)len;
    if (root && json_object_object_get_ex(root, "config", &v)) {
        json_object *dg, *sz;
        if (json_object_object_get_ex(v, "digest", &dg) &&
            strcmp(json_object_get_string(dg), digest) == 0 &&
            json_object_object_get_ex(v, "size", &sz))
            size = json_object_get_int64(sz);
    }
    if (size < 0 && root && json_object_object_get_ex(root, "layers", &arr))
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *l = json_object_array_get_idx(arr, i), *dg, *sz;
            if (json_object_object_get_ex(l, "digest", &dg) &&
                strcmp(json_object_get_string(dg), digest) == 0 &&
                json_object_object_get_ex(l, "size", &sz))
                size = json_object_get_int64(sz);
        }
    json_object_put(root);
    return size;
}

typedef struct sink {
    int fd;
    int64_t written;
    int restarts;
    int rc;
    berth_error_t *err;
} sink_t;

static int
sink_restart(void *user, berth_error_t **err)
{
    sink_t *s = user;
    s->restarts++;
    fprintf(stderr, "regtool: the server ignored the Range: starting over\n");
    if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0)
        return api->error_make(err, BERTH_EIO, "truncate: %s", strerror(errno));
    s->written = 0;
    return 0;
}

static int
sink_data(void *user, const void *buf, size_t len, berth_error_t **err)
{
    sink_t *s = user;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(s->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return api->error_make(err, BERTH_EIO, "write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
        s->written += n;
    }
    return 0;
}

static void
sink_done(void *user, int rc, berth_error_t *err)
{
    sink_t *s = user;
    s->rc = rc;
    s->err = err;
}

static int
file_digest(const char *path, char out[BERTH_DIGEST_MAX], int64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[65536], md[32];
    size_t n;
    *size = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        *size += (int64_t)n;
    }
    fclose(f);
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int
cmd_fetch(const char *ref, const char *digest, const char *out, int64_t offset, int64_t size)
{
    reg_ref_t r;
    reg_client_t *c;
    if (client(ref, &r, &c))
        return 1;
    if (size < 0) {
        uint8_t *m = NULL;
        size_t mlen = 0;
        berth_descriptor_t md;
        if (get_manifest(c, NULL, &m, &mlen, &md)) {
            reg_client_free(c);
            return 1;
        }
        size = size_in_manifest(m, mlen, digest);
        free(m);
        if (size < 0) {
            fprintf(stderr, "regtool: %s is not in %s's manifest (give --size)\n", digest, ref);
            reg_client_free(c);
            return 1;
        }
    }
    sink_t s = {.fd = open(out, O_WRONLY | O_CREAT | (offset ? 0 : O_TRUNC), 0644)};
    if (s.fd < 0 ||
        (offset && (ftruncate(s.fd, offset) < 0 || lseek(s.fd, offset, SEEK_SET) < 0))) {
        fprintf(stderr, "regtool: %s: %s\n", out, strerror(errno));
        reg_client_free(c);
        return 1;
    }
    reg_blob_job_t job = {.offset = offset,
                          .restart = sink_restart,
                          .data = sink_data,
                          .done = sink_done,
                          .user = &s};
    snprintf(job.desc.digest, sizeof job.desc.digest, "%s", digest);
    job.desc.size = size;
    berth_error_t *err = NULL;
    int rc = reg_fetch_blobs(c, &job, 1, &err);
    reg_client_free(c);
    close(s.fd);
    api->error_free(s.err);
    if (rc < 0)
        return die_err("fetch", err);
    char got[BERTH_DIGEST_MAX];
    int64_t have = 0;
    file_digest(out, got, &have);
    fprintf(stderr, "regtool: fetched %" PRId64 " bytes (%d restarts)\n", s.written, s.restarts);
    if (strcmp(got, digest) != 0) {
        fprintf(stderr, "regtool: digest mismatch: expected %s, got %s\n", digest, got);
        return 3;
    }
    printf("ok %s %" PRId64 "\n", digest, have);
    return 0;
}

/* The config and layer descriptors of a manifest; n of them (at most max). */
static size_t
manifest_blobs(const uint8_t *data, berth_descriptor_t *out, size_t max)
{
    json_object *root = json_tokener_parse((const char *)data), *v, *arr;
    size_t n = 0;
    json_object *items[65];
    size_t ni = 0;
    if (root && json_object_object_get_ex(root, "config", &v))
        items[ni++] = v;
    if (root && json_object_object_get_ex(root, "layers", &arr))
        for (size_t i = 0; i < json_object_array_length(arr) && ni < 65; i++)
            items[ni++] = json_object_array_get_idx(arr, i);
    for (size_t i = 0; i < ni && n < max; i++) {
        json_object *dg, *sz;
        if (json_object_object_get_ex(items[i], "digest", &dg) &&
            json_object_object_get_ex(items[i], "size", &sz)) {
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n].digest, sizeof out[n].digest, "%s", json_object_get_string(dg));
            out[n].size = json_object_get_int64(sz);
            n++;
        }
    }
    json_object_put(root);
    return n;
}

static int
cmd_fetch_all(const char *ref, const char *dir)
{
    reg_ref_t r;
    reg_client_t *c;
    if (client(ref, &r, &c))
        return 1;
    uint8_t *m = NULL;
    size_t mlen = 0;
    berth_descriptor_t md, descs[64];
    if (get_manifest(c, NULL, &m, &mlen, &md)) {
        reg_client_free(c);
        return 1;
    }
    size_t n = manifest_blobs(m, descs, 64);
    free(m);
    reg_blob_job_t jobs[64];
    sink_t sinks[64];
    char paths[64][512];
    memset(jobs, 0, sizeof jobs);
    memset(sinks, 0, sizeof sinks);
    for (size_t i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/%s", dir, strchr(descs[i].digest, ':') + 1);
        sinks[i].fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        jobs[i] = (reg_blob_job_t){.desc = descs[i],
                                   .restart = sink_restart,
                                   .data = sink_data,
                                   .done = sink_done,
                                   .user = &sinks[i]};
    }
    berth_error_t *err = NULL;
    int rc = reg_fetch_blobs(c, jobs, n, &err);
    reg_client_free(c);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        close(sinks[i].fd);
        api->error_free(sinks[i].err);
        char got[BERTH_DIGEST_MAX];
        int64_t have = 0;
        file_digest(paths[i], got, &have);
        if (rc == 0 && strcmp(got, descs[i].digest) != 0) {
            fprintf(stderr, "regtool: digest mismatch: expected %s, got %s\n", descs[i].digest,
                    got);
            bad = 1;
        }
    }
    if (rc < 0)
        return die_err("fetch", err);
    if (bad)
        return 3;
    printf("ok %zu blobs\n", n);
    return 0;
}

static int
file_read(void *user, int64_t offset, void *buf, size_t len, size_t *got, berth_error_t **err)
{
    int fd = *(int *)user;
    ssize_t n = pread(fd, buf, len, offset);
    if (n < 0)
        return api->error_make(err, BERTH_EIO, "read: %s", strerror(errno));
    *got = (size_t)n;
    return 0;
}

static int
cmd_push_blob(const char *ref, const char *file, int64_t chunk, const char *mount_from)
{
    reg_ref_t r;
    reg_client_t *c;
    berth_descriptor_t d = {.media_type = "application/octet-stream"};
    if (file_digest(file, d.digest, &d.size) < 0) {
        fprintf(stderr, "regtool: %s: %s\n", file, strerror(errno));
        return 1;
    }
    if (client(ref, &r, &c))
        return 1;
    berth_error_t *err = NULL;
    int rc;
    if (mount_from) {
        rc = reg_blob_mount(c, &d, mount_from, &err);
        if (rc == 1) {
            printf("mounted %s\n", d.digest);
            reg_client_free(c);
            return 0;
        }
        if (rc < 0) {
            reg_client_free(c);
            return die_err("mount", err);
        }
        fprintf(stderr, "regtool: not mounted, uploading\n");
    } else if ((rc = reg_blob_exists(c, &d, &err)) != 0) {
        reg_client_free(c);
        if (rc < 0)
            return die_err("exists", err);
        printf("exists %s\n", d.digest);
        return 0;
    }
    int fd = open(file, O_RDONLY);
    rc = reg_push_blob(c, &d, file_read, &fd, chunk, &err);
    close(fd);
    reg_client_free(c);
    if (rc < 0)
        return die_err("push", err);
    printf("pushed %s\n", d.digest);
    return 0;
}

static int
cmd_push_manifest(const char *ref, const char *file, const char *media_type)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "regtool: %s: %s\n", file, strerror(errno));
        return 1;
    }
    static uint8_t buf[4 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    reg_ref_t r;
    reg_client_t *c;
    if (client(ref, &r, &c))
        return 1;
    berth_error_t *err = NULL;
    int rc = reg_push_manifest(c, r.digest[0] ? r.digest : r.tag, media_type, buf, len, &err);
    reg_client_free(c);
    if (rc < 0)
        return die_err("push manifest", err);
    printf("pushed %s\n", r.name);
    return 0;
}

static int
cmd_htpasswd(const char *user, const char *password)
{
    char *salt = crypt_gensalt_ra("$2b$", 10, NULL, 0);
    struct crypt_data cd = {0};
    char *hash = salt ? crypt_r(password, salt, &cd) : NULL;
    free(salt);
    if (hash == NULL || hash[0] != '$') {
        fprintf(stderr, "regtool: bcrypt is not available from crypt(3)\n");
        return 1;
    }
    printf("%s:%s\n", user, hash);
    return 0;
}

static int
usage(void)
{
    fprintf(stderr, "usage: regtool [--config FILE] [--user U:P] [--scheme http|https] "
                    "[--header H] [-v] resolve REF | manifest REF [DIGEST] | fetch REF DIGEST OUT "
                    "[--offset N] [--size N] | fetch-all REF DIR | push-blob REF FILE [--chunk N] "
                    "[--mount-from REPO] | "
                    "push-manifest REF FILE MEDIATYPE | htpasswd USER PASSWORD\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *pos[8];
    size_t npos = 0;
    int64_t offset = 0, size = -1, chunk = 0;
    const char *mount_from = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--config") == 0 && has)
            opt_config = argv[++i];
        else if (strcmp(a, "--user") == 0 && has)
            opt_user = argv[++i];
        else if (strcmp(a, "--scheme") == 0 && has)
            opt_scheme = argv[++i];
        else if (strcmp(a, "--header") == 0 && has && n_headers < 16)
            opt_headers[n_headers++] = argv[++i];
        else if (strcmp(a, "--offset") == 0 && has)
            offset = strtoll(argv[++i], NULL, 10);
        else if (strcmp(a, "--size") == 0 && has)
            size = strtoll(argv[++i], NULL, 10);
        else if (strcmp(a, "--chunk") == 0 && has)
            chunk = strtoll(argv[++i], NULL, 10);
        else if (strcmp(a, "--mount-from") == 0 && has)
            mount_from = argv[++i];
        else if (strcmp(a, "-v") == 0)
            berth__log_setup(BERTH_LOG_DEBUG, 0);
        else if (a[0] == '-' && a[1] == '-')
            return usage();
        else if (npos < 8)
            pos[npos++] = a;
    }
    if (npos == 0)
        return usage();
    const char *cmd = pos[0];
    if (strcmp(cmd, "htpasswd") == 0 && npos == 3)
        return cmd_htpasswd(pos[1], pos[2]);
    if (load_config())
        return 1;
    int rc;
    if (strcmp(cmd, "resolve") == 0 && npos == 2)
        rc = cmd_resolve(pos[1]);
    else if (strcmp(cmd, "manifest") == 0 && (npos == 2 || npos == 3))
        rc = cmd_manifest(pos[1], npos == 3 ? pos[2] : NULL);
    else if (strcmp(cmd, "fetch") == 0 && npos == 4)
        rc = cmd_fetch(pos[1], pos[2], pos[3], offset, size);
    else if (strcmp(cmd, "fetch-all") == 0 && npos == 3)
        rc = cmd_fetch_all(pos[1], pos[2]);
    else if (strcmp(cmd, "push-blob") == 0 && npos == 3)
        rc = cmd_push_blob(pos[1], pos[2], chunk, mount_from);
    else if (strcmp(cmd, "push-manifest") == 0 && npos == 4)
        rc = cmd_push_manifest(pos[1], pos[2], pos[3]);
    else
        rc = usage();
    reg_config_free(&regcfg);
    if (opt_config)
        berth__config_free(&cfgfile);
    return rc;
}
