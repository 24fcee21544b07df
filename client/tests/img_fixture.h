/* SPDX-License-Identifier: Apache-2.0 */
/* Fixtures of the image, transfer and store tests: the busybox test image (tests/fixtures/images), a
 * plain-HTTP registry (Debian's docker-registry) on 127.0.0.1, a berthd configured for them. */
#ifndef BERTH_CLIENT_TEST_IMG_FIXTURE_H
#define BERTH_CLIENT_TEST_IMG_FIXTURE_H

#include "common.h"

typedef struct imgfx {
    char dir[256];     /* mktemp dir of the fixture: images, registry, network conf */
    char oci_tar[320]; /* busybox-oci.tar */
    char docker_tar[320];
    char blobs[320];   /* busybox-oci/blobs/sha256 */
    char manifest[80]; /* sha256:... of the image's manifest */
    char config[80];
    char layer[80];
    char diff_id[80];
    char reg_dir[320];
    int reg_port; /* 0: no registry */
    char reg[64]; /* 127.0.0.1:PORT */
} imgfx_t;

/* The name the fixture's archives carry. */
#define FX_IMAGE "docker.io/library/berth-busybox:latest"

/* Runs a shell command; fails the test unless it exits 0. */
void fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exit status of a shell command. */
int fx_sh_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Builds the busybox image under a new temp dir. */
void fx_images(imgfx_t *f);
/* Starts the registry (env: "NAME=VALUE ..." for registry.sh, may be NULL), pushes nothing. */
void fx_registry_start(imgfx_t *f, const char *env);
/* Starts the registry and pushes the fixture to REG/test/busybox:1 (skopeo). */
void fx_registry(imgfx_t *f);
/* Starts berthd for these tests (network-cni with the test's own bridge and 10.232.x subnet, conf dir
 * in the fixture's dir). */
void fx_daemon(imgfx_t *f, bct_daemon_t *d);
/* Stops the registry and removes the fixture's dir. */
void fx_cleanup(imgfx_t *f);

/* The file's bytes (NUL-terminated); fails the test when it cannot be read. */
char *fx_read(const char *path, size_t *len);
/* Imports the fixture's OCI tar (no unpack); returns nothing, fails the test on error. */
void fx_import(berth_client_t *c, const imgfx_t *f);

/* The harness the image, store and volume/network tests share: one fixture, one berthd, one client. */
extern imgfx_t fx;
extern bct_daemon_t daemon_;
extern berth_client_t *cl;
void fx_setup_plain(void);    /* the busybox image built, berthd started */
void fx_setup_registry(void); /* the same and a registry holding the image */
void fx_setup_empty(void);    /* an empty fixture dir, berthd started */
void fx_teardown(void);

/* Asserts a call returned 0; needs `berth_error_t *err` in scope. */
#define OK(expr)                                                                 \
    do {                                                                         \
        int rc_ = (expr);                                                        \
        cr_assert_eq(rc_, 0, "%s: %d %s", #expr, rc_, err ? err->message : "?"); \
    } while (0)

/* The value of key in kv, or NULL. */
const char *fx_kv(const berth_kv_t *kv, size_t n, const char *key);

#endif
