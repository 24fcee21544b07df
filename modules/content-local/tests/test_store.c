/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content store through its C service API (abi/berth/content.h): the real content-local.so, the core's
 * real function table, real files in a temp dir.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/content.h>
#include <berth/module.h>

extern const berth_core_api_t berth__core_api;

/* The core's table, but InitContext calls (this test makes no real InitContext) are no-ops. */
static berth_core_api_t test_api;
static const berth_core_api_t *api = &test_api;

static int
no_export(berth_init_ctx_t *ic, const char *key, const char *value)
{
    return 0;
}
static char dir[64];
static void *handle;
static const berth_plugin_reg_t *reg;
static const berth_content_v1_ops_t *ops;
static void *cs;
static berth_error_t *err;

/* sha256("hello world") */
static const char hello_digest[] =
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

static void
open_store(void)
{
    berth_init_ctx_t ic = {
        .size = sizeof(ic), .api = api, .uri = "io.containerd.content.v1.content", .root = dir};
    cr_assert_eq(reg->init(&ic, &cs, &err), 0, "%s", err ? err->message : "");
}

static void
setup(void)
{
    test_api = berth__core_api;
    test_api.export_set = no_export;
    snprintf(dir, sizeof(dir), "/tmp/berth-cs-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    handle = dlopen(CONTENT_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_content_local");
    cr_assert(entry != NULL);
    reg = entry()->plugins[0];
    ops = reg->ops;
    open_store();
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    chmod(path, 0700);
    return remove(path);
}

static void
teardown(void)
{
    reg->fini(cs);
    api->error_free(err);
    err = NULL;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    dlclose(handle);
}

TestSuite(store, .init = setup, .fini = teardown);

static void
expect_code(int rc, int code, const char *fragment)
{
    cr_assert_eq(rc, code, "rc %d, wanted %d: %s", rc, code, err ? err->message : "");
    if (fragment)
        cr_expect(strstr(err->message, fragment) != NULL, "%s", err->message);
    api->error_free(err);
    err = NULL;
}

static berth_content_writer_t *
writer(const char *ref, int64_t total, const char *expected)
{
    berth_content_writer_t *w = NULL;
    cr_assert_eq(ops->writer_open(cs, ref, total, expected, &w, &err), 0, "%s",
                 err ? err->message : "");
    return w;
}

Test(store, write_commit_read)
{
    berth_content_writer_t *w = writer("r1", 11, NULL);
    cr_assert_eq(ops->writer_write(w, "hello ", 6, &err), 0);
    cr_assert_eq(ops->writer_write(w, "world", 5, &err), 0);
    char digest[BERTH_DIGEST_MAX];
    cr_assert_eq(ops->writer_commit(w, 11, hello_digest, digest, &err), 0, "%s",
                 err ? err->message : "");
    ops->writer_close(w);
    cr_expect_str_eq(digest, hello_digest);
    berth_blob_info_t info;
    cr_assert_eq(ops->info(cs, hello_digest, &info, &err), 0);
    cr_expect_eq(info.size, 11);
    char buf[16] = "";
    size_t got = 0;
    cr_assert_eq(ops->read_at(cs, hello_digest, 6, buf, sizeof(buf), &got, &err), 0);
    cr_expect_eq(got, 5);
    cr_expect(memcmp(buf, "world", 5) == 0);
    expect_code(ops->read_at(cs, hello_digest, 12, buf, 1, &got, &err), BERTH_ERANGE,
                "the blob is 11 bytes");
    expect_code(ops->writer_open(cs, "r2", 0, hello_digest, &w, &err), BERTH_EEXIST,
                "already exists");
    berth_ingest_status_t st;
    expect_code(ops->ingest_status(cs, "r1", &st, &err), BERTH_ENOTFOUND, NULL);
}

Test(store, mismatches_publish_nothing_and_keep_the_ingest)
{
    berth_content_writer_t *w = writer("bad", 0, NULL);
    cr_assert_eq(ops->writer_write(w, "hello world", 11, &err), 0);
    char digest[BERTH_DIGEST_MAX];
    expect_code(ops->writer_commit(w, 12, NULL, digest, &err), BERTH_EPRECONDITION,
                "unexpected commit size 11");
    expect_code(ops->writer_commit(
                    w, 11,
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                    digest, &err),
                BERTH_EPRECONDITION, "unexpected commit digest");
    berth_blob_info_t info;
    expect_code(ops->info(cs, hello_digest, &info, &err), BERTH_ENOTFOUND, NULL);
    cr_assert_eq(ops->writer_commit(w, 11, NULL, digest, &err), 0);
    cr_expect_str_eq(digest, hello_digest);
    ops->writer_close(w);
}

Test(store, a_live_ref_is_locked)
{
    berth_content_writer_t *w = writer("locked", 0, NULL), *other = NULL;
    expect_code(ops->writer_open(cs, "locked", 0, NULL, &other, &err), BERTH_EUNAVAILABLE,
                "locked");
    expect_code(ops->ingest_abort(cs, "locked", &err), BERTH_EUNAVAILABLE, NULL);
    ops->writer_close(w);
    other = writer("locked", 0, NULL);
    ops->writer_close(other);
    cr_assert_eq(ops->ingest_abort(cs, "locked", &err), 0);
    expect_code(ops->ingest_abort(cs, "locked", &err), BERTH_ENOTFOUND, NULL);
}

static int
count_ingest(void *user, const berth_ingest_status_t *st)
{
    (*(int *)user)++;
    return 0;
}

Test(store, resume_after_close_and_truncate)
{
    berth_content_writer_t *w = writer("resume", 11, NULL);
    cr_assert_eq(ops->writer_write(w, "hello ", 6, &err), 0);
    ops->writer_close(w);
    int n = 0;
    ops->ingest_list(cs, count_ingest, &n, &err);
    cr_expect_eq(n, 1);
    berth_ingest_status_t st;
    cr_assert_eq(ops->ingest_status(cs, "resume", &st, &err), 0);
    cr_expect_eq(st.offset, 6);
    cr_expect_eq(st.total, 11);
    w = writer("resume", 11, NULL);
    ops->writer_status(w, &st);
    cr_expect_eq(st.offset, 6);
    cr_assert_eq(ops->writer_write(w, "world", 5, &err), 0);
    char digest[BERTH_DIGEST_MAX];
    cr_assert_eq(ops->writer_commit(w, 11, NULL, digest, &err), 0);
    cr_expect_str_eq(digest, hello_digest);
    ops->writer_close(w);

    w = writer("again", 0, NULL);
    cr_assert_eq(ops->writer_write(w, "garbage", 7, &err), 0);
    cr_assert_eq(ops->writer_truncate(w, 0, &err), 0);
    expect_code(ops->writer_truncate(w, 3, &err), BERTH_ENOTIMPL, NULL);
    cr_assert_eq(ops->writer_write(w, "hello world", 11, &err), 0);
    expect_code(ops->writer_commit(w, 11, NULL, digest, &err), BERTH_EEXIST, "already exists");
    ops->writer_close(w);
}

/* A writer killed mid-ingest (no close: the saved hash is behind the data) resumes with the right digest. */
Test(store, resume_after_a_crash)
{
    static char chunk[1 << 20];
    memset(chunk, 'z', sizeof(chunk));
    pid_t pid = fork();
    if (pid == 0) {
        berth_content_writer_t *w = NULL;
        if (ops->writer_open(cs, "crash", 0, NULL, &w, NULL) != 0)
            _exit(1);
        for (int i = 0; i < 20; i++) /* 20 MiB: the hash state is saved at 16 MiB */
            ops->writer_write(w, chunk, sizeof(chunk), NULL);
        _exit(0); /* no close */
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    berth_content_writer_t *w = writer("crash", 0, NULL);
    berth_ingest_status_t st;
    ops->writer_status(w, &st);
    cr_expect_eq(st.offset, 20 << 20);
    char digest[BERTH_DIGEST_MAX];
    cr_assert_eq(ops->writer_commit(w, 20 << 20, NULL, digest, &err), 0);
    ops->writer_close(w);
    /* sha256 of 20 MiB of 'z', as sha256sum and Python's hashlib compute it */
    cr_expect_str_eq(digest,
                     "sha256:a4f4fcd59893b84d118d1b80a3d3e2c3eb60c3e41e9fbfbee6d76ac532215109");
}

/* The two halves of a write: the digest follows the hashing half, the offset the disk half; a commit
 * before the disk caught up refuses, and a saved hash state never claims bytes the data file lacks. */
Test(store, hash_runs_ahead_of_the_disk)
{
    berth_content_writer_t *w = writer("halves", 0, NULL);
    char digest[BERTH_DIGEST_MAX];
    ops->writer_digest(w, digest);
    cr_expect_str_eq(digest,
                     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ops->writer_hash(w, "hello ", 6);
    ops->writer_hash(w, "world", 5);
    ops->writer_digest(w, digest);
    cr_expect_str_eq(digest, hello_digest);
    berth_ingest_status_t st;
    ops->writer_status(w, &st);
    cr_expect_eq(st.offset, 0);
    expect_code(ops->writer_commit(w, 0, NULL, digest, &err), BERTH_EINTERNAL, "hashed");
    cr_assert_eq(ops->writer_append(w, "hello ", 6, &err), 0);
    ops->writer_close(w); /* 11 hashed, 6 on disk: the state is not saved as covering 11 */

    w = writer("halves", 0, NULL);
    ops->writer_status(w, &st);
    cr_expect_eq(st.offset, 6);
    cr_assert_eq(ops->writer_write(w, "world", 5, &err), 0);
    cr_assert_eq(ops->writer_commit(w, 11, hello_digest, digest, &err), 0, "%s",
                 err ? err->message : "");
    ops->writer_close(w);
}
