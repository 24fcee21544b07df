/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Images and transfers through libberth-client against a real berthd: pull (unpacked, with per-layer
 * progress) from Debian's docker-registry on 127.0.0.1, a missing image, push and pull back, import of
 * the OCI and docker archives from an fd with progress, export and re-import, tag, list with filters,
 * remove.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img_fixture.h"

/* ---- progress: every event recorded, and a check that no two callbacks overlap ----------------------- */

typedef struct seen_s {
    pthread_mutex_t lock;
    int inside, overlapped;
    pthread_t caller;
    int other_thread;
    char log[64 * 1024];
    size_t len;
    int n;
} seen_t;

static void
on_progress(void *user, const berth_progress_t *p)
{
    seen_t *s = user;
    if (__atomic_fetch_add(&s->inside, 1, __ATOMIC_SEQ_CST) != 0)
        s->overlapped = 1;
    pthread_mutex_lock(&s->lock);
    if (!pthread_equal(pthread_self(), s->caller))
        s->other_thread = 1;
    int w = snprintf(s->log + s->len, sizeof(s->log) - s->len, "%s %s %lld/%lld%s%s\n", p->event,
                     p->name, (long long)p->progress, (long long)p->total,
                     p->n_parents ? " parent " : "", p->n_parents ? p->parents[0] : "");
    if (w > 0 && (size_t)w < sizeof(s->log) - s->len)
        s->len += (size_t)w;
    s->n++;
    pthread_mutex_unlock(&s->lock);
    usleep(1000); /* a slow consumer: a second callback at once would show */
    __atomic_fetch_sub(&s->inside, 1, __ATOMIC_SEQ_CST);
}

static void
seen_init(seen_t *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->caller = pthread_self();
}

/* ---- pull -------------------------------------------------------------------------------------------- */

Test(images, pull_unpacks_with_layer_progress, .init = fx_setup_registry, .fini = fx_teardown,
     .timeout = 120)
{
    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/busybox:1", fx.reg);
    seen_t s;
    seen_init(&s);
    berth_pull_opts_t o = {.unpack = 1, .progress = on_progress, .progress_user = &s};
    o.registry.plain_http = 1;
    berth_image_t *img = NULL;
    berth_error_t *err = NULL;
    int rc = berth_image_pull(cl, NULL, ref, &o, &img, &err);
    cr_assert_eq(rc, 0, "pull: %s", err ? err->message : "?");
    cr_assert_str_eq(img->name, ref);
    cr_assert_str_eq(img->target.digest, fx.manifest);
    cr_assert_gt(img->target.size, 0);
    berth_image_free(img);

    /* per-layer events on a thread of the call's own, never two at once */
    char layer_key[120];
    snprintf(layer_key, sizeof(layer_key), "layer-%s", fx.layer);
    cr_assert_gt(s.n, 0, "no progress event");
    cr_assert(strstr(s.log, layer_key), "no event names the layer %s:\n%s", layer_key, s.log);
    char complete[200];
    snprintf(complete, sizeof(complete), "complete %s", layer_key);
    cr_assert(strstr(s.log, complete), "the layer never completed:\n%s", s.log);
    cr_assert(s.other_thread, "progress ran on the caller's thread");
    cr_assert_not(s.overlapped, "two progress callbacks at once");

    /* unpacked: the layer's chain id (its diff id, one layer) is a committed snapshot */
    berth_snapshot_info_t *si = NULL;
    rc = berth_snapshot_stat(cl, NULL, NULL, fx.diff_id, &si, &err);
    cr_assert_eq(rc, 0, "snapshot %s: %s", fx.diff_id, err ? err->message : "?");
    cr_assert_str_eq(si->kind, "committed");
    berth_snapshot_infos_free(si, 1);
}

Test(images, pull_without_unpack_leaves_no_snapshot, .init = fx_setup_registry, .fini = fx_teardown,
     .timeout = 120)
{
    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/busybox:1", fx.reg);
    berth_pull_opts_t o = {0};
    o.registry.plain_http = 1;
    berth_error_t *err = NULL;
    int rc = berth_image_pull(cl, NULL, ref, &o, NULL, &err);
    cr_assert_eq(rc, 0, "pull: %s", err ? err->message : "?");
    berth_snapshot_info_t *si = NULL;
    rc = berth_snapshot_stat(cl, NULL, NULL, fx.diff_id, &si, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "a snapshot without unpack");
    berth_error_free(err);
}

Test(images, pull_missing_is_not_found, .init = fx_setup_registry, .fini = fx_teardown,
     .timeout = 120)
{
    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/nothere:1", fx.reg);
    berth_pull_opts_t o = {.unpack = 1};
    o.registry.plain_http = 1;
    berth_image_t *img = NULL;
    berth_error_t *err = NULL;
    int rc = berth_image_pull(cl, NULL, ref, &o, &img, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "pull of a missing image: %d %s", rc,
                 err ? err->message : "");
    cr_assert_null(img);
    cr_assert(err && err->code == BERTH_ENOTFOUND);
    char want[240];
    snprintf(want, sizeof(want), "pull \"%s\": ", ref);
    cr_assert(strncmp(err->message, want, strlen(want)) == 0, "message: %s", err->message);
    cr_assert(strstr(err->message, "not found"), "message: %s", err->message);
    berth_error_free(err);
    /* nothing stored under the name */
    rc = berth_image_get(cl, NULL, ref, &img, NULL);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
}

/* ---- push -------------------------------------------------------------------------------------------- */

Test(images, push_then_pull_back, .init = fx_setup_registry, .fini = fx_teardown, .timeout = 120)
{
    fx_import(cl, &fx);
    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/pushed:2", fx.reg);
    seen_t s;
    seen_init(&s);
    berth_push_opts_t o = {.progress = on_progress, .progress_user = &s};
    o.registry.plain_http = 1;
    berth_error_t *err = NULL;
    int rc = berth_image_push(cl, NULL, FX_IMAGE, ref, &o, &err);
    cr_assert_eq(rc, 0, "push: %s", err ? err->message : "?");
    cr_assert_gt(s.n, 0, "no push progress");
    cr_assert_not(s.overlapped);
    /* the registry has it (its own HTTP API) */
    cr_assert_eq(fx_sh_status("curl -fsS -o /dev/null -H 'Accept: "
                              "application/vnd.oci.image.manifest.v1+json' "
                              "http://%s/v2/test/pushed/manifests/%s",
                              fx.reg, fx.manifest),
                 0, "the registry does not have the pushed manifest");
    /* and it comes back with the same digest */
    rc = berth_image_remove(cl, NULL, FX_IMAGE, 1, &err);
    cr_assert_eq(rc, 0, "remove: %s", err ? err->message : "?");
    berth_pull_opts_t po = {0};
    po.registry.plain_http = 1;
    berth_image_t *img = NULL;
    rc = berth_image_pull(cl, NULL, ref, &po, &img, &err);
    cr_assert_eq(rc, 0, "pull back: %s", err ? err->message : "?");
    cr_assert_str_eq(img->target.digest, fx.manifest);
    berth_image_free(img);
}

Test(images, push_of_unknown_image_is_not_found, .init = fx_setup_registry, .fini = fx_teardown,
     .timeout = 60)
{
    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/none:1", fx.reg);
    berth_push_opts_t o = {0};
    o.registry.plain_http = 1;
    berth_error_t *err = NULL;
    int rc = berth_image_push(cl, NULL, "docker.io/library/nothing:here", ref, &o, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "%d %s", rc, err ? err->message : "");
    cr_assert(strstr(err->message, "push \""), "%s", err->message);
    berth_error_free(err);
}

/* ---- import and export ------------------------------------------------------------------------------- */

/* The image's manifest digest: the OCI archive's as it is; a docker archive's is converted (another). */
static void
import_file(const char *path, int unpack, const char *manifest)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    seen_t s;
    seen_init(&s);
    berth_import_opts_t o = {.unpack = unpack, .progress = on_progress, .progress_user = &s};
    berth_image_t *imgs = NULL;
    size_t n = 0;
    berth_error_t *err = NULL;
    int rc = berth_image_import(cl, NULL, fd, &o, &imgs, &n, &err);
    close(fd);
    cr_assert_eq(rc, 0, "import %s: %s", path, err ? err->message : "?");
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(imgs[i].name, FX_IMAGE) == 0) {
            found = 1;
            if (manifest)
                cr_assert_str_eq(imgs[i].target.digest, manifest, "%s", path);
            cr_assert(strncmp(imgs[i].target.digest, "sha256:", 7) == 0);
            cr_assert_gt(imgs[i].target.size, 0);
        }
    cr_assert(found, "%s: %s not among the %zu imported images", path, FX_IMAGE, n);
    berth_images_free(imgs, n);
    cr_assert(strstr(s.log, "saved " FX_IMAGE), "no saved event:\n%s", s.log);
    cr_assert(s.other_thread);
    cr_assert_not(s.overlapped);
    berth_snapshot_info_t *si = NULL;
    rc = berth_snapshot_stat(cl, NULL, NULL, fx.diff_id, &si, NULL);
    cr_assert_eq(rc, unpack ? 0 : BERTH_ENOTFOUND, "unpack %d: snapshot %d", unpack, rc);
    berth_snapshot_infos_free(si, si ? 1 : 0);
}

Test(images, import_oci_archive, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 120)
{
    import_file(fx.oci_tar, 1, fx.manifest);
}

Test(images, import_docker_archive, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 120)
{
    import_file(fx.docker_tar, 0, NULL);
}

Test(images, import_of_garbage_fails, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/garbage.tar", fx.dir);
    fx_sh("head -c 100000 /dev/urandom >%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    berth_error_t *err = NULL;
    berth_image_t *imgs = NULL;
    size_t n = 0;
    int rc = berth_image_import(cl, NULL, fd, NULL, &imgs, &n, &err);
    close(fd);
    cr_assert_lt(rc, 0, "garbage imported");
    cr_assert(strncmp(err->message, "import: ", 8) == 0, "%s", err->message);
    cr_assert_eq(n, 0);
    berth_error_free(err);
    err = NULL;
    /* an fd that cannot be read: our side's error, not the server's */
    rc = berth_image_import(cl, NULL, 9999, NULL, NULL, NULL, &err);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err->message, "read the archive"), "%s", err->message);
    berth_error_free(err);
}

Test(images, export_and_reimport, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 120)
{
    fx_import(cl, &fx);
    char path[400];
    snprintf(path, sizeof(path), "%s/export.tar", fx.dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    const char *names[] = {FX_IMAGE};
    berth_error_t *err = NULL;
    int rc = berth_image_export(cl, NULL, names, 1, fd, NULL, &err);
    close(fd);
    cr_assert_eq(rc, 0, "export: %s", err ? err->message : "?");
    /* a whole tar: index.json, the layout, every blob */
    fx_sh("tar -tf %s | grep -qx index.json", path);
    fx_sh("tar -tf %s | grep -qx blobs/sha256/%s", path, fx.layer + 7);
    fx_sh("tar -tf %s | grep -qx manifest.json", path);
    fx_sh("tar -xOf %s blobs/sha256/%s | sha256sum | grep -q ^%s", path, fx.layer + 7,
          fx.layer + 7);

    rc = berth_image_remove(cl, NULL, FX_IMAGE, 1, &err);
    cr_assert_eq(rc, 0, "remove: %s", err ? err->message : "?");
    import_file(path, 0, fx.manifest);

    /* an fd that cannot be written: our side's error, and the daemon is not left waiting */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    rc = berth_image_export(cl, NULL, names, 1, fd, NULL, &err);
    close(fd);
    cr_assert_eq(rc, BERTH_EIO, "%d %s", rc, err ? err->message : "");
    cr_assert(strstr(err->message, "write the archive"), "%s", err->message);
    berth_error_free(err);
    err = NULL;
    berth_image_t *img = NULL;
    rc = berth_image_get(cl, NULL, FX_IMAGE, &img, &err);
    cr_assert_eq(rc, 0, "the daemon answers after a failed export");
    berth_image_free(img);

    /* an unknown image */
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    const char *none[] = {"docker.io/library/nothing:here"};
    rc = berth_image_export(cl, NULL, none, 1, fd, NULL, &err);
    close(fd);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "%d %s", rc, err ? err->message : "");
    cr_assert(strstr(err->message, "export \"docker.io/library/nothing:here\""), "%s",
              err->message);
    berth_error_free(err);
}

Test(images, export_big_image, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 240)
{
    /* many windows' worth of bytes: the framing's credit goes round many times */
    fx_sh("sh %s/tests/fixtures/images/build-image.sh big %s/big 20 >/dev/null", SOURCE_DIR,
          fx.dir);
    char path[400];
    snprintf(path, sizeof(path), "%s/big/big-oci.tar", fx.dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    berth_error_t *err = NULL;
    int rc = berth_image_import(cl, NULL, fd, NULL, NULL, NULL, &err);
    close(fd);
    cr_assert_eq(rc, 0, "import big: %s", err ? err->message : "?");
    snprintf(path, sizeof(path), "%s/big-export.tar", fx.dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *names[] = {"docker.io/library/berth-big:latest"};
    rc = berth_image_export(cl, NULL, names, 1, fd, NULL, &err);
    close(fd);
    cr_assert_eq(rc, 0, "export big: %s", err ? err->message : "?");
    /* every layer arrived whole */
    fx_sh("cd %s && mkdir x && tar -xf big-export.tar -C x && cd x/blobs/sha256 && "
          "for f in *; do echo \"$f  $f\"; done | sha256sum -c --quiet",
          fx.dir);
}

/* ---- get, list, tag, remove -------------------------------------------------------------------------- */

static size_t
count_list(const char *filter)
{
    berth_image_t *v = NULL;
    size_t n = 0;
    berth_error_t *err = NULL;
    const char *f[] = {filter};
    int rc = berth_image_list(cl, NULL, filter ? f : NULL, filter ? 1 : 0, &v, &n, &err);
    cr_assert_eq(rc, 0, "list %s: %s", filter ? filter : "", err ? err->message : "?");
    berth_images_free(v, n);
    return n;
}

Test(images, tag_list_remove, .init = fx_setup_plain, .fini = fx_teardown, .timeout = 60)
{
    fx_import(cl, &fx);
    berth_error_t *err = NULL;
    berth_image_t *img = NULL;
    int rc = berth_image_get(cl, NULL, FX_IMAGE, &img, &err);
    cr_assert_eq(rc, 0, "get: %s", err ? err->message : "?");
    cr_assert_str_eq(img->target.digest, fx.manifest);
    cr_assert_gt(img->created_at_ns, 0);
    berth_image_free(img);

    rc = berth_image_tag(cl, NULL, FX_IMAGE, "example.com/x/copy:1", 0, &err);
    cr_assert_eq(rc, 0, "tag: %s", err ? err->message : "?");
    rc = berth_image_get(cl, NULL, "example.com/x/copy:1", &img, &err);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(img->target.digest, fx.manifest);
    berth_image_free(img);

    /* an existing target: AlreadyExists without force */
    rc = berth_image_tag(cl, NULL, FX_IMAGE, "example.com/x/copy:1", 0, &err);
    cr_assert_eq(rc, BERTH_EEXIST, "%d", rc);
    cr_assert(strstr(err->message, "example.com/x/copy:1"), "%s", err->message);
    berth_error_free(err);
    err = NULL;
    /* force replaces it: point copy:1 at another image first, then force it back */
    rc = berth_image_tag(cl, NULL, "example.com/x/copy:1", "example.com/x/other:1", 0, &err);
    cr_assert_eq(rc, 0);
    rc = berth_image_tag(cl, NULL, FX_IMAGE, "example.com/x/copy:1", 1, &err);
    cr_assert_eq(rc, 0, "forced tag: %s", err ? err->message : "?");
    rc = berth_image_tag(cl, NULL, "docker.io/library/none:1", "example.com/x/z:1", 1, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
    err = NULL;

    cr_assert_eq(count_list(NULL), 3);
    cr_assert_eq(count_list("name==example.com/x/copy:1"), 1);
    cr_assert_eq(count_list("name~=example.com/x/"), 2);
    cr_assert_eq(count_list("name==nothing"), 0);

    rc = berth_image_remove(cl, NULL, "example.com/x/copy:1", 0, &err);
    cr_assert_eq(rc, 0, "remove: %s", err ? err->message : "?");
    rc = berth_image_get(cl, NULL, "example.com/x/copy:1", &img, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    cr_assert(strstr(err->message, "example.com/x/copy:1"), "%s", err->message);
    berth_error_free(err);
    err = NULL;
    rc = berth_image_remove(cl, NULL, "example.com/x/copy:1", 0, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
    cr_assert_eq(count_list(NULL), 2);
}

/* ---- registry credentials (Basic auth): the auth stream answers the daemon's AuthRequests --------- */

#include <crypt.h>

Test(images, credentials_through_the_auth_stream, .init = fx_setup_plain, .fini = fx_teardown,
     .timeout = 120)
{
    char path[400], env[500];
    snprintf(path, sizeof(path), "%s/htpasswd", fx.dir);
    char *salt = crypt_gensalt("$2b$", 10, NULL, 0);
    cr_assert(salt, "bcrypt salt");
    char *hash = crypt("secret", salt);
    cr_assert(hash && hash[0] == '$', "bcrypt");
    FILE *f = fopen(path, "w");
    fprintf(f, "alice:%s\n", hash);
    fclose(f);
    snprintf(env, sizeof(env), "REGISTRY_HTPASSWD=%s", path);
    fx_registry_start(&fx, env);
    fx_import(cl, &fx);

    char ref[200];
    snprintf(ref, sizeof(ref), "%s/test/private:1", fx.reg);
    berth_push_opts_t po = {0};
    po.registry.plain_http = 1;
    berth_error_t *err = NULL;
    /* without credentials: refused */
    int rc = berth_image_push(cl, NULL, FX_IMAGE, ref, &po, &err);
    cr_assert_lt(rc, 0, "a push without credentials passed");
    berth_error_free(err);
    err = NULL;
    po.registry.username = "alice";
    po.registry.secret = "wrong";
    rc = berth_image_push(cl, NULL, FX_IMAGE, ref, &po, &err);
    cr_assert_lt(rc, 0, "a push with a wrong password passed");
    berth_error_free(err);
    err = NULL;
    po.registry.secret = "secret";
    rc = berth_image_push(cl, NULL, FX_IMAGE, ref, &po, &err);
    cr_assert_eq(rc, 0, "push with credentials: %s", err ? err->message : "?");

    rc = berth_image_remove(cl, NULL, FX_IMAGE, 1, &err);
    cr_assert_eq(rc, 0);
    berth_pull_opts_t o = {.unpack = 1};
    o.registry.plain_http = 1;
    rc = berth_image_pull(cl, NULL, ref, &o, NULL, &err);
    cr_assert_lt(rc, 0, "a pull without credentials passed");
    berth_error_free(err);
    err = NULL;
    o.registry.username = "alice";
    o.registry.secret = "secret";
    berth_image_t *img = NULL;
    rc = berth_image_pull(cl, NULL, ref, &o, &img, &err);
    cr_assert_eq(rc, 0, "pull with credentials: %s", err ? err->message : "?");
    cr_assert_str_eq(img->target.digest, fx.manifest);
    berth_image_free(img);
}

/* ---- one client, transfers on several threads at once ------------------------------------------------ */

typedef struct par_s {
    const char *path;
    const char *ns;
    int rc;
    size_t n;
    char msg[512];
} par_t;

static void *
par_import(void *arg)
{
    par_t *p = arg;
    int fd = open(p->path, O_RDONLY | O_CLOEXEC);
    berth_call_t call = {.namespace_ = p->ns};
    berth_image_t *imgs = NULL;
    berth_error_t *err = NULL;
    p->rc = berth_image_import(cl, &call, fd, NULL, &imgs, &p->n, &err);
    close(fd);
    snprintf(p->msg, sizeof(p->msg), "%s", err ? err->message : "");
    berth_error_free(err);
    berth_images_free(imgs, p->n);
    return NULL;
}

Test(images, concurrent_imports_on_one_client, .init = fx_setup_plain, .fini = fx_teardown,
     .timeout = 120)
{
    par_t p[4] = {{.path = fx.oci_tar, .ns = "ns-a"},
                  {.path = fx.docker_tar, .ns = "ns-b"},
                  {.path = fx.oci_tar, .ns = "ns-c"},
                  {.path = fx.docker_tar, .ns = "default"}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, par_import, &p[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(p[i].rc, 0, "import %d in %s: %s", i, p[i].ns, p[i].msg);
        cr_assert_gt(p[i].n, 0, "import %d: no image", i);
        /* each namespace got its own record, none leaked into another */
        berth_call_t call = {.namespace_ = p[i].ns};
        berth_image_t *img = NULL;
        int rc = berth_image_get(cl, &call, FX_IMAGE, &img, NULL);
        cr_assert_eq(rc, 0, "%s: no image", p[i].ns);
        berth_image_free(img);
    }
    berth_call_t other = {.namespace_ = "ns-empty"};
    berth_image_t *img = NULL;
    cr_assert_eq(berth_image_get(cl, &other, FX_IMAGE, &img, NULL), BERTH_ENOTFOUND);
}
