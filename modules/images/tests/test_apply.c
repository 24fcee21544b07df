/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layer applier against hostile and ordinary layers, built in memory with libarchive's writer.
 * Every test applies into <host>/root while <host>/outside/passwd (0400, "secret") sits beside it; every
 * test ends by checking that file is untouched. Symlinks that "point out" aim at that file's real absolute
 * path, so a walker that followed them outside would change it, and one that clamps them lands inside.
 * Names follow containerd's archive TestBreakouts where a case comes from there.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "apply.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;

static char host[64], root[128], outside[128];
static int root_fd = -1;
static berth_error_t *err;

/* ---- building layers ------------------------------------------------------------------------------ */

typedef struct ent {
    char type; /* d dir, f file, l symlink, h hardlink, c char device, p fifo */
    const char *name;
    const char *arg; /* file content, link target */
    int mode;
} ent_t;

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
} buf_t;

static la_ssize_t
buf_write(struct archive *a, void *user, const void *data, size_t n)
{
    buf_t *b = user;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return (la_ssize_t)n;
}

static void
add_entry(struct archive *a, const ent_t *e)
{
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_mtime(ae, 1000000000, 0);
    archive_entry_set_perm(ae, e->mode ? e->mode : (e->type == 'd' ? 0755 : 0644));
    size_t size = 0;
    switch (e->type) {
    case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
    case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e->arg);
        break;
    case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e->arg);
        break;
    case 'c':
        archive_entry_set_filetype(ae, AE_IFCHR);
        archive_entry_set_rdev(ae, makedev(1, 3));
        break;
    case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    default:
        archive_entry_set_filetype(ae, AE_IFREG);
        size = e->arg ? strlen(e->arg) : 0;
    }
    archive_entry_set_size(ae, (la_int64_t)size);
    cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK, "%s", archive_error_string(a));
    if (size)
        archive_write_data(a, e->arg, size);
    archive_entry_free(ae);
}

/* A tar of the entries (NULL name ends the list). */
static buf_t
tar_of(const ent_t *ents)
{
    buf_t b = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open2(a, &b, NULL, buf_write, NULL, NULL);
    for (const ent_t *e = ents; e->name; e++)
        add_entry(a, e);
    archive_write_close(a);
    archive_write_free(a);
    return b;
}

/* The bytes compressed with filter (ARCHIVE_FILTER_GZIP / _ZSTD) through libarchive's raw writer. */
static buf_t
compress_with(const buf_t *in, int filter)
{
    buf_t b = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_raw(a);
    archive_write_add_filter(a, filter);
    archive_write_set_bytes_per_block(a, 0); /* no zero padding after the compressed stream */
    archive_write_open2(a, &b, NULL, buf_write, NULL, NULL);
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_size(ae, (la_int64_t)in->len);
    archive_write_header(a, ae);
    archive_write_data(a, in->data, in->len);
    archive_entry_free(ae);
    archive_write_close(a);
    archive_write_free(a);
    return b;
}

/* ---- applying ------------------------------------------------------------------------------------- */

typedef struct reader {
    const buf_t *b;
    size_t off;
} reader_t;

static int
read_buf(void *user, void *out, size_t len, size_t *got, berth_error_t **e)
{
    reader_t *r = user;
    size_t n = r->b->len - r->off < len ? r->b->len - r->off : len;
    memcpy(out, r->b->data + r->off, n);
    r->off += n;
    *got = n;
    return 0;
}

static layer_apply_opts_t opts;
static layer_apply_result_t res;

static int
apply_buf(const buf_t *b)
{
    reader_t r = {b, 0};
    if (err) {
        api->error_free(err);
        err = NULL;
    }
    return layer_apply(api, root_fd, read_buf, &r, &opts, &res, &err);
}

static int
apply(const ent_t *ents)
{
    buf_t b = tar_of(ents);
    int rc = apply_buf(&b);
    free(b.data);
    return rc;
}

static void
expect_refused(const ent_t *ents, int code, const char *words)
{
    int rc = apply(ents);
    cr_expect_eq(rc, code, "expected %s, got %d (%s)", api->error_name(code), rc,
                 err ? err->message : "no error");
    if (err && words)
        cr_expect(strstr(err->message, words), "message \"%s\" lacks \"%s\"", err->message, words);
}

static void
expect_applied(const ent_t *ents)
{
    int rc = apply(ents);
    cr_assert_eq(rc, 0, "apply failed: %s", err ? err->message : "");
}

/* ---- checks --------------------------------------------------------------------------------------- */

static char *
slurp(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char content[4096];
    size_t n = fread(content, 1, sizeof(content) - 1, f);
    content[n] = '\0';
    fclose(f);
    return content;
}

static struct stat
lstat_in(const char *rel)
{
    struct stat st = {0};
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    cr_assert_eq(lstat(path, &st), 0, "%s: %s", rel, strerror(errno));
    return st;
}

static int
exists_in(const char *rel)
{
    struct stat st;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return lstat(path, &st) == 0;
}

static void
expect_outside_untouched(void)
{
    char path[256], content[64] = "";
    snprintf(path, sizeof(path), "%s/passwd", outside);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "the file outside the root is gone");
    cr_expect_eq(st.st_mode & 07777, 0400, "the file outside changed mode to %o",
                 st.st_mode & 07777);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t n = fread(content, 1, sizeof(content) - 1, f);
    content[n] = '\0';
    fclose(f);
    cr_expect_str_eq(content, "secret", "the file outside the root was written");
    DIR *d = opendir(outside);
    int entries = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        entries += de->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(entries, 1, "something was created outside the root");
}

/* ---- fixture -------------------------------------------------------------------------------------- */

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void
setup(void)
{
    snprintf(host, sizeof(host), "/tmp/berth-apply-XXXXXX");
    cr_assert(mkdtemp(host));
    snprintf(root, sizeof(root), "%s/root", host);
    snprintf(outside, sizeof(outside), "%s/outside", host);
    mkdir(root, 0755);
    mkdir(outside, 0755);
    char path[256];
    snprintf(path, sizeof(path), "%s/passwd", outside);
    FILE *f = fopen(path, "w");
    fputs("secret", f);
    fclose(f);
    chmod(path, 0400);
    root_fd = open(root, O_RDONLY | O_DIRECTORY);
    opts = (layer_apply_opts_t){.allow_devices = 1};
    err = NULL;
}

static void
teardown(void)
{
    expect_outside_untouched();
    close(root_fd);
    if (err)
        api->error_free(err);
    nftw(host, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(apply, .init = setup, .fini = teardown);

/* The absolute path of the outside dir as seen from inside the root: what clamped symlinks reach. */
static const char *
clamped_outside(void)
{
    return outside + 1; /* "tmp/berth-apply-XXXXXX/outside" */
}

/* Directory entries for <root>/tmp/berth-apply-XXXXXX/outside, so clamped writes have somewhere to land. */
static void
with_clamp_target(ent_t *ents)
{
    static char d1[64], d2[128];
    snprintf(d1, sizeof(d1), "%s", host + 1);
    snprintf(d2, sizeof(d2), "%s", clamped_outside());
    ents[0] = (ent_t){'d', "tmp"};
    ents[1] = (ent_t){'d', d1};
    ents[2] = (ent_t){'d', d2};
}

/* ---- symlinks: followed, but clamped inside the root ---------------------------------------------- */

Test(apply, SymlinkAbsolute)
{
    ent_t e[8] = {{0}};
    with_clamp_target(e);
    e[3] = (ent_t){'l', "localetc", outside};
    e[4] = (ent_t){'f', "localetc/passwd", "pwned"};
    expect_applied(e);
    char rel[256];
    snprintf(rel, sizeof(rel), "%s/passwd", clamped_outside());
    cr_expect_str_eq(slurp(rel), "pwned", "the write did not land inside the root");
}

Test(apply, SymlinkUpAndOut)
{
    ent_t e[] = {{'d', "etc"},
                 {'d', "dummy"},
                 {'l', "localetc", "dummy/../../../etc"},
                 {'f', "localetc/unbroken", "unbroken"},
                 {0}};
    expect_applied(e);
    cr_expect_str_eq(slurp("etc/unbroken"), "unbroken");
}

Test(apply, SymlinkMultipleAbsolute)
{
    ent_t e[8] = {{0}};
    with_clamp_target(e);
    e[3] = (ent_t){'d', "dummy"};
    e[4] = (ent_t){'l', "dummy/etc", outside};
    e[5] = (ent_t){'l', "localetc", "/dummy/etc"};
    e[6] = (ent_t){'f', "localetc/passwd", "pwned"};
    expect_applied(e);
    char rel[256];
    snprintf(rel, sizeof(rel), "%s/passwd", clamped_outside());
    cr_expect_str_eq(slurp(rel), "pwned");
}

Test(apply, SymlinkMultipleRelative)
{
    ent_t e[] = {{'d', "etc"},
                 {'d', "dummy"},
                 {'l', "dummy/etc", "../../../../etc"},
                 {'l', "localetc", "./dummy/etc"},
                 {'f', "localetc/unbroken", "unbroken"},
                 {0}};
    expect_applied(e);
    cr_expect_str_eq(slurp("etc/unbroken"), "unbroken");
}

Test(apply, SymlinkEmptyFile)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/emptied", "notempty"},
                 {'l', "localetc", "/etc"},
                 {'f', "localetc/emptied", ""},
                 {0}};
    expect_applied(e);
    cr_expect_str_eq(slurp("etc/emptied"), "");
}

Test(apply, SymlinkParentDirectory)
{
    ent_t e[] = {{'d', "etc"}, {'l', "..", "/etc/"}, {0}};
    expect_refused(e, BERTH_EINVAL, "leaves the root");
}

Test(apply, SymlinkEmptyFilename)
{
    ent_t e[] = {{'d', "etc"}, {'l', "./", "/etc/"}, {0}};
    expect_refused(e, BERTH_EINVAL, "only a directory may name the root");
}

Test(apply, SymlinkNamedDotReplacesNoRoot)
{
    ent_t e[] = {{'l', ".", "/"}, {0}}; /* CVE-2021-29136 */
    expect_refused(e, BERTH_EINVAL, "root");
}

Test(apply, SymlinkParentRelative)
{
    ent_t e[] = {{'d', "etc"}, {'l', "localetc/sub/..", "/etc/"}, {0}};
    expect_refused(e, BERTH_EINVAL, "leaves the root");
}

Test(apply, SymlinkSlashEnded)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'d', "localetc/", 0, 0770},
                 {'h', "localetc/localpasswd", "etc/passwd"},
                 {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("localetc/localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, SymlinkOverrideDirectory)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {'d', "localetc"}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'l', "localetc", outside}, {'h', "localetc/localpasswd", "etc/passwd"}, {0}};
    /* the symlink replaces the directory; the hardlink's parent then resolves inside the root, where
     * the clamped target does not exist */
    int rc = apply(e);
    cr_expect(rc == 0 || rc == BERTH_EIO, "%s", err ? err->message : "");
    cr_expect(S_ISLNK(lstat_in("localetc").st_mode));
}

Test(apply, SymlinkOverrideDirectoryRelative)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {'d', "localetc"}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'l', "localetc", "../../etc"}, {'h', "localetc/localpasswd", "etc/passwd"}, {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("etc/localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

/* ---- hardlinks ------------------------------------------------------------------------------------ */

Test(apply, HardlinkRelative)
{
    ent_t e[] = {{'d', "etc", 0, 0770},
                 {'f', "etc/passwd", "inside"},
                 {'d', "breakouts"},
                 {'l', "breakouts/d1", "../../etc"},
                 {'h', "breakouts/mypasswd", "breakouts/d1/passwd"},
                 {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("breakouts/mypasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, HardlinkDownAndOut)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'d', "breakouts"},
                 {'d', "downandout"},
                 {'l', "breakouts/d1", "../downandout/../../etc"},
                 {'h', "breakouts/mypasswd", "breakouts/d1/passwd"},
                 {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("breakouts/mypasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, HardlinkAbsolute)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'l', "localetc", "/etc"},
                 {'h', "localpasswd", "localetc/passwd"},
                 {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, HardlinkRelativeLong)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'l', "localetc", "../../../../../../../etc"},
                 {'h', "localpasswd", "localetc/passwd"},
                 {0}};
    expect_applied(e);
    cr_expect_eq(lstat_in("localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, HardlinkRelativeUpAndOut)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'l', "localetc", "upandout/../../../etc"},
                 {'h', "localpasswd", "localetc/passwd"},
                 {0}};
    /* "upandout" does not exist: resolving through it fails inside the root, nothing escapes */
    int rc = apply(e);
    cr_expect(rc == 0 || rc == BERTH_EINVAL, "%s", err ? err->message : "");
}

Test(apply, HardlinkDirectRelative)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'h', "localpasswd", "../../../../../etc/passwd"},
                 {0}};
    expect_refused(e, BERTH_EINVAL, "hardlink target leaves the root");
}

Test(apply, HardlinkDirectAbsolute)
{
    char target[256];
    snprintf(target, sizeof(target), "%s/passwd", outside);
    ent_t e[] = {{'h', "localpasswd", target}, {0}};
    expect_refused(e, BERTH_EINVAL, "hardlink target leaves the root");
}

Test(apply, HardlinkSymlinkBeforeCreateTarget)
{
    ent_t e[] = {{'d', "etc"},
                 {'l', "localpasswd", "/etc/passwd"},
                 {'h', "localpasswd-dup", "localpasswd"},
                 {'f', "etc/passwd", "after"},
                 {0}};
    expect_applied(e);
    /* the hardlink is to the symlink itself (inside a container it resolves to the later file) */
    cr_expect(S_ISLNK(lstat_in("localpasswd-dup").st_mode));
    cr_expect_eq(lstat_in("localpasswd-dup").st_ino, lstat_in("localpasswd").st_ino);
    cr_expect_str_eq(slurp("etc/passwd"), "after");
}

Test(apply, HardlinkSymlinkRelative)
{
    ent_t e[] = {{'d', "etc"},
                 {'f', "etc/passwd", "inside"},
                 {'l', "passwdlink", "../../../../../etc/passwd"},
                 {'h', "localpasswd", "passwdlink"},
                 {0}};
    expect_applied(e);
    cr_expect(S_ISLNK(lstat_in("localpasswd").st_mode), "the hardlink must be to the symlink");
    cr_expect_eq(lstat_in("localpasswd").st_ino, lstat_in("passwdlink").st_ino);
}

Test(apply, HardlinkSymlinkAbsolute)
{
    char target[256];
    snprintf(target, sizeof(target), "%s/passwd", outside);
    ent_t e[] = {{'l', "passwdlink", target}, {'h', "localpasswd", "passwdlink"}, {0}};
    expect_applied(e);
    cr_expect(S_ISLNK(lstat_in("localpasswd").st_mode), "the hardlink must be to the symlink");
}

Test(apply, HardlinkSymlinkChmod)
{
    /* CVE-2021-32760: a later entry's mode must not reach the host file through the symlink */
    char target[256];
    snprintf(target, sizeof(target), "%s/passwd", outside);
    ent_t e[] = {{'l', "passwdlink", target},
                 {'h', "localpasswd", "passwdlink"},
                 {'f', "localpasswd", "new", 0777},
                 {'d', "passwdlink", 0, 0777},
                 {0}};
    expect_applied(e);
    cr_expect(S_ISREG(lstat_in("localpasswd").st_mode));
    cr_expect(S_ISDIR(lstat_in("passwdlink").st_mode));
}

/* ---- directories over symlinks -------------------------------------------------------------------- */

Test(apply, DirectoryOverrideSymlink)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {'l', "localetc", outside}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'d', "localetc"}, {'h', "localetc/localpasswd", "etc/passwd"}, {0}};
    expect_applied(e);
    cr_expect(S_ISDIR(lstat_in("localetc").st_mode));
    cr_expect_eq(lstat_in("localetc/localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
}

Test(apply, DirectoryOverrideSymlinkAndHardlink)
{
    ent_t lower[] = {{'d', "etc"},
                     {'f', "etc/passwd", "inside"},
                     {'l', "localetc", "/etc"},
                     {'h', "localetc/localpasswd", "etc/passwd"},
                     {0}};
    expect_applied(lower);
    ent_t e[] = {{'d', "localetc"}, {'f', "localetc/localpasswd", "different"}, {0}};
    expect_applied(e);
    cr_expect_neq(lstat_in("localetc/localpasswd").st_ino, lstat_in("etc/passwd").st_ino);
    cr_expect_str_eq(slurp("etc/passwd"), "inside");
}

/* ---- whiteouts ------------------------------------------------------------------------------------ */

Test(apply, WhiteoutRootParent)
{
    ent_t e[] = {{'f', ".wh...", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "whiteout");
}

Test(apply, WhiteoutParent)
{
    ent_t e[] = {{'d', "etc"}, {'f', "etc/.wh...", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "whiteout");
}

Test(apply, WhiteoutRoot)
{
    ent_t e[] = {{'f', ".wh..", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "whiteout");
}

Test(apply, WhiteoutCurrentDirectory)
{
    ent_t e[] = {{'d', "etc"}, {'f', "etc/.wh..", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "whiteout");
}

Test(apply, WhiteoutBareIsInvalid)
{
    ent_t e[] = {{'f', ".wh.", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "whiteout");
}

Test(apply, WhiteoutSymlink)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {'l', "localetc", outside}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', ".wh.localetc", ""}, {0}};
    expect_applied(e);
    cr_expect(!exists_in("localetc"), "the symlink itself goes");
    cr_expect_str_eq(slurp("etc/passwd"), "inside");
}

Test(apply, WhiteoutSymlinkPath)
{
    ent_t lower[] = {{'l', "localetc", outside}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', "localetc/.wh.passwd", ""}, {0}};
    expect_applied(e); /* resolves inside the root, where there is nothing to remove */
}

Test(apply, WhiteoutDirectoryName)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', ".wh.etc/passwd", ""}, {0}};
    expect_applied(e); /* ".wh.etc" is a directory name here, not a whiteout */
    cr_expect_str_eq(slurp("etc/passwd"), "inside");
    cr_expect(S_ISDIR(lstat_in(".wh.etc").st_mode));
}

Test(apply, WhiteoutDeadSymlinkParent)
{
    ent_t lower[] = {
        {'d', "etc"}, {'f', "etc/passwd", "inside"}, {'l', "localetc", "/notexist"}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', "localetc/.wh.passwd", ""}, {0}};
    expect_applied(e);
    cr_expect_str_eq(slurp("etc/passwd"), "inside");
}

Test(apply, WhiteoutRelativePath)
{
    ent_t lower[] = {{'d', "etc"}, {'f', "etc/passwd", "inside"}, {'d', "dummy"}, {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', "dummy/../.wh.etc", ""}, {0}};
    expect_refused(e, BERTH_EINVAL, "leaves the root");
    cr_expect_str_eq(slurp("etc/passwd"), "inside");
}

Test(apply, whiteouts_remove_lower_files_and_opaque_keeps_this_layers)
{
    ent_t lower[] = {{'d', "a"},
                     {'f', "a/gone", "1"},
                     {'f', "a/kept", "1"},
                     {'d', "o"},
                     {'f', "o/lower", "1"},
                     {'d', "o/sub"},
                     {'f', "o/sub/deep", "1"},
                     {0}};
    expect_applied(lower);
    ent_t e[] = {{'f', "a/.wh.gone", ""},     {'d', "o"},           {'f', "o/early", "2"},
                 {'f', "o/.wh..wh..opq", ""}, {'f', "o/late", "2"}, {0}};
    expect_applied(e);
    cr_expect(!exists_in("a/gone"));
    cr_expect_str_eq(slurp("a/kept"), "1");
    cr_expect(!exists_in("o/lower") && !exists_in("o/sub"),
              "opaque must hide the lower dir's content");
    cr_expect_str_eq(slurp("o/early"), "2");
    cr_expect_str_eq(slurp("o/late"), "2");
}

Test(apply, overlay_whiteouts_are_devices_and_xattrs)
{
    opts.overlay_whiteouts = 1;
    ent_t e[] = {{'d', "a"}, {'f', "a/.wh.gone", ""}, {'d', "o"}, {'f', "o/.wh..wh..opq", ""}, {0}};
    expect_applied(e);
    struct stat st = lstat_in("a/gone");
    cr_expect(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
              "a whiteout is a 0/0 char device");
    char path[256], v[8] = "";
    snprintf(path, sizeof(path), "%s/o", root);
    cr_expect_eq(getxattr(path, "trusted.overlay.opaque", v, sizeof(v)), 1);
    cr_expect_eq(v[0], 'y');
}

/* ---- names ---------------------------------------------------------------------------------------- */

Test(apply, dotdot_names_are_refused)
{
    ent_t e[] = {{'f', "../outside/passwd", "pwned"}, {0}};
    expect_refused(e, BERTH_EINVAL, "path leaves the root");
}

Test(apply, absolute_names_are_refused)
{
    char name[256];
    snprintf(name, sizeof(name), "%s/passwd", outside);
    ent_t e[] = {{'f', name, "pwned"}, {0}};
    expect_refused(e, BERTH_EINVAL, "path leaves the root");
}

Test(apply, duplicate_entries_the_later_wins)
{
    ent_t e[] = {{'f', "a", "one"}, {'f', "a", "two"}, {'d', "d"}, {'f', "d", "file now"}, {0}};
    expect_applied(e);
    cr_expect_str_eq(slurp("a"), "two");
    cr_expect_str_eq(slurp("d"), "file now");
}

Test(apply, devices_only_when_allowed)
{
    ent_t e[] = {{'c', "null", 0, 0666}, {0}};
    opts.allow_devices = 0;
    expect_refused(e, BERTH_EINVAL, "device nodes are not allowed");
    cr_expect(!exists_in("null"));
    opts.allow_devices = 1;
    expect_applied(e);
    struct stat st = lstat_in("null");
    cr_expect(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    cr_expect_eq(st.st_mode & 07777, 0666);
}

/* ---- streams -------------------------------------------------------------------------------------- */

static void
sha256_hex(const buf_t *b, char out[BERTH_DIGEST_MAX])
{
    unsigned char md[32];
    unsigned int n;
    EVP_Digest(b->data, b->len, md, &n, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static void
expect_layer_applies(int filter)
{
    ent_t e[] = {{'d', "bin"}, {'f', "bin/tool", "#!/bin/sh\n"}, {0}};
    buf_t tar = tar_of(e);
    buf_t layer = filter == ARCHIVE_FILTER_NONE ? tar : compress_with(&tar, filter);
    cr_assert_eq(apply_buf(&layer), 0, "%s", err ? err->message : "");
    char want[BERTH_DIGEST_MAX];
    sha256_hex(&tar, want);
    cr_expect_str_eq(res.diff_id, want, "the diffID is the sha256 of the uncompressed tar");
    cr_expect_eq(res.size, tar.len);
    cr_expect_str_eq(slurp("bin/tool"), "#!/bin/sh\n");
    if (layer.data != tar.data)
        free(layer.data);
    free(tar.data);
}

Test(apply, gzip_zstd_and_plain_layers)
{
    expect_layer_applies(ARCHIVE_FILTER_NONE);
    expect_layer_applies(ARCHIVE_FILTER_GZIP);
    expect_layer_applies(ARCHIVE_FILTER_ZSTD);
}

static buf_t
zeros_layer(size_t mib)
{
    char *zeros = calloc(1, mib << 20);
    memset(zeros, 'z', mib << 20);
    zeros[(mib << 20) - 1] = '\0';
    ent_t e[] = {{'f', "bomb", zeros}, {0}};
    buf_t tar = tar_of(e);
    free(zeros);
    buf_t gz = compress_with(&tar, ARCHIVE_FILTER_GZIP);
    free(tar.data);
    return gz;
}

Test(apply, a_gzip_bomb_is_bounded_by_size)
{
    buf_t gz = zeros_layer(24);
    opts.max_bytes = 8u << 20;
    cr_expect_eq(apply_buf(&gz), BERTH_ERESOURCE, "%s", err ? err->message : "applied");
    cr_expect(err && strstr(err->message, "max_layer_bytes"));
    free(gz.data);
}

Test(apply, a_gzip_bomb_is_bounded_by_ratio)
{
    buf_t gz = zeros_layer(24);
    opts.max_ratio = 100;
    cr_expect_eq(apply_buf(&gz), BERTH_ERESOURCE, "%s", err ? err->message : "applied");
    cr_expect(err && strstr(err->message, "max_compression_ratio"));
    free(gz.data);
}

Test(apply, truncated_layers_are_invalid)
{
    static char content[300000];
    for (size_t i = 0; i < sizeof(content) - 1; i++)
        content[i] = (char)('a' + (i * 7919) % 26);
    ent_t e[] = {{'f', "big", content}, {'f', "after", "x"}, {0}};
    buf_t tar = tar_of(e);
    buf_t gz = compress_with(&tar, ARCHIVE_FILTER_GZIP);
    buf_t cut = {gz.data, gz.len / 2, gz.len};
    cr_expect_eq(apply_buf(&cut), BERTH_EINVAL, "%s", err ? err->message : "applied");
    cr_expect(err && strstr(err->message, "truncated"), "%s", err ? err->message : "");
    buf_t cut_tar = {tar.data, tar.len / 2, tar.len};
    cr_expect_eq(apply_buf(&cut_tar), BERTH_EINVAL, "%s", err ? err->message : "applied");
    free(gz.data);
    free(tar.data);
}

/* ---- what a layer carries ------------------------------------------------------------------------- */

Test(apply, ownership_modes_xattrs_links_fifos_and_times)
{
    buf_t b = {0};
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open2(a, &b, NULL, buf_write, NULL, NULL);
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, "d");
    archive_entry_set_filetype(ae, AE_IFDIR);
    archive_entry_set_perm(ae, 0750);
    archive_entry_set_uid(ae, 1234);
    archive_entry_set_gid(ae, 5678);
    archive_entry_set_mtime(ae, 1111111111, 0);
    archive_write_header(a, ae);
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, "d/suid");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 04755);
    archive_entry_set_uid(ae, 1000);
    archive_entry_set_gid(ae, 1000);
    archive_entry_set_mtime(ae, 1222222222, 500);
    archive_entry_set_size(ae, 2);
    archive_entry_xattr_add_entry(ae, "user.berth", "yes", 3);
    archive_write_header(a, ae);
    archive_write_data(a, "hi", 2);
    archive_entry_free(ae);
    archive_write_close(a);
    archive_write_free(a);
    cr_assert_eq(apply_buf(&b), 0, "%s", err ? err->message : "");
    free(b.data);
    struct stat d = lstat_in("d");
    cr_expect(d.st_uid == 1234 && d.st_gid == 5678 && (d.st_mode & 07777) == 0750);
    cr_expect_eq(d.st_mtim.tv_sec, 1111111111, "directory times are set after its children");
    ent_t more[] = {{'h', "d/link", "d/suid"}, {'p', "d/fifo", 0, 0640}, {0}};
    expect_applied(more);
    struct stat st = lstat_in("d/suid");
    cr_expect_eq(st.st_mode & 07777, 04755, "setuid kept after chown: %o", st.st_mode & 07777);
    cr_expect(st.st_uid == 1000 && st.st_gid == 1000);
    cr_expect(st.st_mtim.tv_sec == 1222222222 && st.st_mtim.tv_nsec == 500);
    cr_expect_eq(lstat_in("d/link").st_ino, st.st_ino);
    cr_expect(S_ISFIFO(lstat_in("d/fifo").st_mode));
    char path[256], v[8] = "";
    snprintf(path, sizeof(path), "%s/d/suid", root);
    ssize_t n = getxattr(path, "user.berth", v, sizeof(v));
    if (n >= 0 || errno != ENOTSUP)
        cr_expect(n == 3 && memcmp(v, "yes", 3) == 0, "xattr not kept");
}
