/* SPDX-License-Identifier: Apache-2.0 */
#include "img_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int
vsh(const char *fmt, va_list ap)
{
    char cmd[4096];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void
fx_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char cmd[4096];
    va_list ap2;
    va_copy(ap2, ap);
    vsnprintf(cmd, sizeof(cmd), fmt, ap2);
    va_end(ap2);
    int st = vsh(fmt, ap);
    va_end(ap);
    cr_assert_eq(st, 0, "`%s` exited %d", cmd, st);
}

int
fx_sh_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = vsh(fmt, ap);
    va_end(ap);
    return st;
}

char *
fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n, "read %s", path);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* the first "sha256:<64 hex>" after `after` in text */
static void
digest_after(const char *text, const char *after, char *out)
{
    const char *p = after ? strstr(text, after) : text;
    cr_assert(p, "no %s in %s", after, text);
    p = strstr(p, "sha256:");
    cr_assert(p, "no digest after %s", after ? after : "the start");
    snprintf(out, 72, "%.71s", p);
}

void
fx_images(imgfx_t *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/berth-client-img-XXXXXX");
    cr_assert(mkdtemp(f->dir), "mkdtemp");
    fx_sh("sh %s/tests/fixtures/images/build-image.sh busybox %s/fx >/dev/null", SOURCE_DIR,
          f->dir);
    snprintf(f->oci_tar, sizeof(f->oci_tar), "%s/fx/busybox-oci.tar", f->dir);
    snprintf(f->docker_tar, sizeof(f->docker_tar), "%s/fx/busybox-docker.tar", f->dir);
    snprintf(f->blobs, sizeof(f->blobs), "%s/fx/busybox-oci/blobs/sha256", f->dir);
    char path[600];
    snprintf(path, sizeof(path), "%s/fx/busybox-oci/index.json", f->dir);
    char *index = fx_read(path, NULL);
    digest_after(index, NULL, f->manifest);
    free(index);
    snprintf(path, sizeof(path), "%s/%s", f->blobs, f->manifest + 7);
    char *m = fx_read(path, NULL);
    digest_after(m, "\"config\"", f->config);
    digest_after(m, "\"layers\"", f->layer);
    free(m);
    snprintf(path, sizeof(path), "%s/%s", f->blobs, f->config + 7);
    char *cfg = fx_read(path, NULL);
    digest_after(cfg, "\"diff_ids\"", f->diff_id);
    free(cfg);
}

void
fx_registry_start(imgfx_t *f, const char *env)
{
    snprintf(f->reg_dir, sizeof(f->reg_dir), "%s/registry", f->dir);
    int port = 20000 + (int)(getpid() % 20000);
    for (int i = 0; i < 8 && !f->reg_port; i++, port++) {
        if (fx_sh_status(
                "env %s sh %s/tests/fixtures/images/registry.sh start %s %d >%s.start 2>&1",
                env ? env : "", SOURCE_DIR, f->reg_dir, port, f->reg_dir) == 0)
            f->reg_port = port;
        else
            fx_sh_status("rm -rf %s", f->reg_dir);
    }
    cr_assert(f->reg_port, "the registry did not start");
    snprintf(f->reg, sizeof(f->reg), "127.0.0.1:%d", f->reg_port);
}

void
fx_registry(imgfx_t *f)
{
    fx_registry_start(f, NULL);
    fx_sh("sh %s/tests/fixtures/images/build-image.sh push-registry %s/fx/busybox-oci %s "
          "test/busybox:1",
          SOURCE_DIR, f->dir, f->reg);
}

void
fx_daemon(imgfx_t *f, bct_daemon_t *d)
{
    /* berth's network module with a bridge, a subnet and a conf dir of the test's own */
    int k = (int)(getpid() % 200) + 20;
    char set[1024];
    snprintf(set, sizeof(set),
             "plugins={io.berth.network.v1.cni: {conf_dir: %s/net.d, default_network: {bridge: "
             "bd%d, subnet: 10.232.%d.0/24}}}",
             f->dir, (int)(getpid() % 100000), k);
    bct_start(d, set);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Unmounts what a failed test left mounted under the fixture's dir (deepest first). */
static void
umount_under(const char *dir)
{
    for (int round = 0; round < 8; round++) {
        FILE *m = fopen("/proc/self/mounts", "r");
        char line[8192], last[4096] = "";
        size_t n = strlen(dir);
        while (m && fgets(line, sizeof(line), m)) {
            char src[4096], target[4096];
            if (sscanf(line, "%4095s %4095s", src, target) == 2 && strncmp(target, dir, n) == 0 &&
                (target[n] == '/' || target[n] == '\0'))
                snprintf(last, sizeof(last), "%s", target);
        }
        if (m)
            fclose(m);
        if (!last[0] || umount2(last, MNT_DETACH) < 0)
            return;
    }
}

void
fx_cleanup(imgfx_t *f)
{
    if (f->dir[0])
        umount_under(f->dir);
    if (f->reg_port)
        fx_sh_status("sh %s/tests/fixtures/images/registry.sh stop %s >/dev/null 2>&1", SOURCE_DIR,
                     f->reg_dir);
    f->reg_port = 0;
    if (f->dir[0])
        nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    f->dir[0] = '\0';
}

void
fx_import(berth_client_t *c, const imgfx_t *f)
{
    int fd = open(f->oci_tar, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    berth_error_t *err = NULL;
    int rc = berth_image_import(c, NULL, fd, NULL, NULL, NULL, &err);
    close(fd);
    cr_assert_eq(rc, 0, "import: %s", err ? err->message : "?");
}

const char *
fx_kv(const berth_kv_t *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

imgfx_t fx;
bct_daemon_t daemon_;
berth_client_t *cl;

void
fx_setup_plain(void)
{
    fx_images(&fx);
    fx_daemon(&fx, &daemon_);
    cl = bct_client(&daemon_, NULL);
}

void
fx_setup_registry(void)
{
    fx_images(&fx);
    fx_registry(&fx);
    fx_daemon(&fx, &daemon_);
    cl = bct_client(&daemon_, NULL);
}

void
fx_setup_empty(void)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/berth-client-vn-XXXXXX");
    cr_assert(mkdtemp(fx.dir));
    fx_daemon(&fx, &daemon_);
    cl = bct_client(&daemon_, NULL);
}

void
fx_teardown(void)
{
    berth_client_free(cl);
    cl = NULL;
    bct_stop(&daemon_);
    fx_cleanup(&fx);
}
