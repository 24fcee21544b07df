/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying a layer: see apply.h. libarchive only reads (reader 1 decompresses, reader 2 parses the tar out of
 * reader 1's output, which is hashed on the way); every write is ours, relative to a directory fd that was
 * resolved inside the root, so nothing a layer says can reach outside it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: EVP leaves per-thread state on pool threads */
#include "apply.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib_archive.h" /* libarchive and libcrypto: opened on first use */
#include "lib_crypto.h"

#define RATIO_GRACE (1u << 20) /* tiny layers compress absurdly well; judge ratios after 1 MiB */
#define IN_BUF (1u << 20)
#define OPAQUE ".wh..wh..opq"
#define WH_PREFIX ".wh."

/* The paths this layer wrote: an opaque marker hides only what lower layers had. */
typedef struct pathset {
    char **slots;
    size_t cap, n;
} pathset_t;

typedef struct dir_time {
    char *path;
    struct timespec ts[2];
} dir_time_t;

typedef struct applier {
    const berth_core_api_t *api;
    berth_error_t **err;
    const layer_apply_opts_t *opts;
    int root;
    /* input */
    layer_read_fn read;
    void *user;
    unsigned char *in;
    struct archive *raw, *tar;
    SHA256_CTX sha;
    uint64_t compressed, decompressed;
    int input_rc; /* set when the source or a bound stopped the stream */
    /* output */
    char parent_path[4096]; /* the cached parent's path, with parent_fd */
    int parent_fd;
    pathset_t written;
    dir_time_t *dirs;
    size_t n_dirs;
} applier_t;

/* ---- small helpers --------------------------------------------------------------------------------- */

static uint64_t
hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int
pathset_has(const pathset_t *ps, const char *p)
{
    if (ps->cap == 0)
        return 0;
    for (size_t i = hash_str(p) & (ps->cap - 1); ps->slots[i]; i = (i + 1) & (ps->cap - 1))
        if (strcmp(ps->slots[i], p) == 0)
            return 1;
    return 0;
}

static void pathset_add(pathset_t *ps, const char *p);

static void
pathset_grow(pathset_t *ps)
{
    pathset_t bigger = {calloc(ps->cap ? ps->cap * 2 : 256, sizeof(char *)),
                        ps->cap ? ps->cap * 2 : 256, 0};
    for (size_t i = 0; i < ps->cap; i++)
        if (ps->slots[i]) {
            pathset_add(&bigger, ps->slots[i]);
            free(ps->slots[i]);
        }
    free(ps->slots);
    *ps = bigger;
}

static void
pathset_add(pathset_t *ps, const char *p)
{
    if (pathset_has(ps, p))
        return;
    if ((ps->n + 1) * 2 > ps->cap)
        pathset_grow(ps);
    size_t i = hash_str(p) & (ps->cap - 1);
    while (ps->slots[i])
        i = (i + 1) & (ps->cap - 1);
    ps->slots[i] = strdup(p);
    ps->n++;
}

static void
pathset_free(pathset_t *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        free(ps->slots[i]);
    free(ps->slots);
}

static int
fail(applier_t *a, int code, const char *name, const char *what)
{
    return a->api->error_make(a->err, code, "layer entry %s: %s", name, what);
}

static int
fail_errno(applier_t *a, const char *name, const char *op)
{
    return a->api->error_make(a->err, BERTH_EIO, "layer entry %s: %s: %s", name, op,
                              strerror(errno));
}

/* "./a//b/" -> "a/b"; -1 for names with ".." or a leading "/" (never clamped: refused). */
static int
clean_name(const char *in, char *out, size_t len)
{
    if (in[0] == '/')
        return -1;
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o + n + 2 > len)
                return -1;
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = end;
    }
    out[o] = '\0';
    return 0;
}

/* ---- resolving inside the root ----------------------------------------------------------------------- */

static int
open_in_root(applier_t *a, const char *rel, unsigned long extra_resolve)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve};
    return (int)syscall(SYS_openat2, a->root, rel[0] ? rel : ".", &how, sizeof(how));
}

/* The directory `rel` inside the root, created (0755, as containerd does) where missing. */
static int
make_dirs(applier_t *a, const char *rel, const char *entry)
{
    char prefix[4096];
    int fd = open_in_root(a, "", 0);
    for (const char *p = rel; fd >= 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(p - rel), rel);
        const char *base = strrchr(prefix, '/');
        int next = open_in_root(a, prefix, 0);
        if (next < 0 && errno == ENOENT &&
            (mkdirat(fd, base ? base + 1 : prefix, 0755) == 0 || errno == EEXIST))
            next = open_in_root(a, prefix, 0);
        close(fd);
        fd = next;
        if (*p == '\0')
            break;
    }
    if (fd < 0)
        fail_errno(a, entry, "parent directory");
    return fd;
}

/* The entry's parent directory fd (cached: entries of one directory come together). */
static int
parent_of(applier_t *a, const char *parent, const char *entry, int create)
{
    if (a->parent_fd >= 0 && strcmp(a->parent_path, parent) == 0)
        return a->parent_fd;
    int fd = open_in_root(a, parent, 0);
    if (fd < 0 && errno == ENOENT && create)
        fd = make_dirs(a, parent, entry);
    else if (fd < 0 && (errno != ENOENT || create))
        return fail_errno(a, entry, "parent directory"), -1;
    if (fd < 0)
        return -1;
    if (a->parent_fd >= 0)
        close(a->parent_fd);
    a->parent_fd = fd;
    snprintf(a->parent_path, sizeof(a->parent_path), "%s", parent);
    return fd;
}

static void
forget_parent(applier_t *a)
{
    if (a->parent_fd >= 0)
        close(a->parent_fd);
    a->parent_fd = -1;
}

/* rm -rf of name in dirfd, never following a symlink. */
static int
remove_all(int at, const char *name)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(at, name, 0);
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = remove_all(dirfd(d), de->d_name);
    closedir(d);
    return rc == 0 ? unlinkat(at, name, AT_REMOVEDIR) : rc;
}

/* ---- metadata, always on an opened fd ----------------------------------------------------------------- */

static int
set_xattrs(applier_t *a, int fd, struct archive_entry *e, const char *name)
{
    const char *key;
    const void *value;
    size_t size;
    libarchive.archive_entry_xattr_reset(e);
    while (libarchive.archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
        if (fsetxattr(fd, key, value, size, 0) == 0 || errno == EOPNOTSUPP)
            continue;
        return fail_errno(a, name, key);
    }
    return 0;
}

static void
entry_times(struct archive_entry *e, struct timespec ts[2])
{
    ts[1] = (struct timespec){libarchive.archive_entry_mtime(e),
                              libarchive.archive_entry_mtime_nsec(e)};
    ts[0] = libarchive.archive_entry_atime_is_set(e)
                ? (struct timespec){libarchive.archive_entry_atime(e),
                                    libarchive.archive_entry_atime_nsec(e)}
                : ts[1];
}

/* Owner before mode, so setuid and setgid bits survive the chown. */
static int
set_meta_fd(applier_t *a, int fd, struct archive_entry *e, const char *name, int times)
{
    struct timespec ts[2];
    entry_times(e, ts);
    if (fchown(fd, (uid_t)libarchive.archive_entry_uid(e), (gid_t)libarchive.archive_entry_gid(e)) <
        0)
        return fail_errno(a, name, "chown");
    if (fchmod(fd, libarchive.archive_entry_perm(e)) < 0)
        return fail_errno(a, name, "chmod");
    if (set_xattrs(a, fd, e, name) != 0)
        return BERTH_EIO;
    if (times && futimens(fd, ts) < 0)
        return fail_errno(a, name, "times");
    return 0;
}

/* Devices and FIFOs cannot be opened for metadata without side effects: an O_PATH fd and its /proc link
 * name the very inode just made, so nothing swapped in between can redirect the change. */
static int
set_meta_path_fd(applier_t *a, int pfd, const char *base, struct archive_entry *e, const char *name)
{
    int fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(a, name, "open");
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    struct timespec ts[2];
    entry_times(e, ts);
    int rc = 0;
    if (chown(proc, (uid_t)libarchive.archive_entry_uid(e),
              (gid_t)libarchive.archive_entry_gid(e)) < 0 ||
        chmod(proc, libarchive.archive_entry_perm(e)) < 0 || utimensat(AT_FDCWD, proc, ts, 0) < 0)
        rc = fail_errno(a, name, "metadata");
    close(fd);
    return rc;
}

/* ---- entry kinds ---------------------------------------------------------------------------------- */

static int
replace_existing(applier_t *a, int pfd, const char *base, const char *name, int keep_dir)
{
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : fail_errno(a, name, "stat");
    if (keep_dir && S_ISDIR(st.st_mode))
        return 1;
    return remove_all(pfd, base) == 0 ? 0 : fail_errno(a, name, "replace");
}

static int
write_dir(applier_t *a, int pfd, const char *base, const char *name, struct archive_entry *e)
{
    int rc = replace_existing(a, pfd, base, name, 1);
    if (rc < 0)
        return rc;
    if (rc == 0 && mkdirat(pfd, base, 0700) < 0)
        return fail_errno(a, name, "mkdir");
    int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(a, name, "open");
    rc = set_meta_fd(a, fd, e, name, 0);
    close(fd);
    /* children change a directory's times: they are set once the whole layer is in */
    a->dirs = realloc(a->dirs, (a->n_dirs + 1) * sizeof(*a->dirs));
    a->dirs[a->n_dirs].path = strdup(name);
    entry_times(e, a->dirs[a->n_dirs++].ts);
    return rc;
}

static int
copy_data(applier_t *a, int fd, const char *name)
{
    static __thread char buf[256 * 1024];
    la_ssize_t n;
    while ((n = libarchive.archive_read_data(a->tar, buf, sizeof(buf))) > 0)
        for (la_ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                return fail_errno(a, name, "write");
            off += w;
        }
    return n == 0 ? 0 : BERTH_EINVAL; /* the stream's error is reported by the caller */
}

static int
write_file(applier_t *a, int pfd, const char *base, const char *name, struct archive_entry *e)
{
    int rc = replace_existing(a, pfd, base, name, 0);
    if (rc < 0)
        return rc;
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_errno(a, name, "create");
    rc = copy_data(a, fd, name);
    if (rc == 0)
        rc = set_meta_fd(a, fd, e, name, 1);
    close(fd);
    return rc;
}

static int
write_symlink(applier_t *a, int pfd, const char *base, const char *name, struct archive_entry *e)
{
    int rc = replace_existing(a, pfd, base, name, 0);
    if (rc < 0)
        return rc;
    const char *target = libarchive.archive_entry_symlink(e);
    if (target == NULL || symlinkat(target, pfd, base) < 0)
        return fail_errno(a, name, "symlink");
    struct timespec ts[2];
    entry_times(e, ts);
    if (fchownat(pfd, base, (uid_t)libarchive.archive_entry_uid(e),
                 (gid_t)libarchive.archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return fail_errno(a, name, "symlink metadata");
    return 0;
}

/* The hardlink's target is resolved inside the root; its last component is never followed. */
static int
write_hardlink(applier_t *a, int pfd, const char *base, const char *name, const char *link)
{
    char target[4096];
    if (clean_name(link, target, sizeof(target)) < 0 || target[0] == '\0')
        return fail(a, BERTH_EINVAL, name, "hardlink target leaves the root");
    char *slash = strrchr(target, '/');
    const char *tbase = slash ? slash + 1 : target;
    if (slash)
        *slash = '\0';
    int tfd = open_in_root(a, slash ? target : "", 0);
    if (tfd < 0)
        return a->api->error_make(a->err, BERTH_EINVAL, "layer entry %s: hardlink target %s: %s",
                                  name, link, strerror(errno));
    int rc = replace_existing(a, pfd, base, name, 0);
    if (rc == 0 && linkat(tfd, tbase, pfd, base, 0) < 0)
        rc = a->api->error_make(a->err, errno == ENOENT ? BERTH_EINVAL : BERTH_EIO,
                                "layer entry %s: hardlink to %s: %s", name, link, strerror(errno));
    close(tfd);
    return rc;
}

static int
write_node(applier_t *a, int pfd, const char *base, const char *name, struct archive_entry *e)
{
    mode_t type = libarchive.archive_entry_filetype(e);
    if ((type == AE_IFCHR || type == AE_IFBLK) && !a->opts->allow_devices)
        return fail(a, BERTH_EINVAL, name, "device nodes are not allowed (allow_device_nodes)");
    int rc = replace_existing(a, pfd, base, name, 0);
    if (rc < 0)
        return rc;
    dev_t dev =
        makedev(libarchive.archive_entry_rdevmajor(e), libarchive.archive_entry_rdevminor(e));
    if (mknodat(pfd, base, type | 0600, type == AE_IFIFO ? 0 : dev) < 0)
        return fail_errno(a, name, "mknod");
    return set_meta_path_fd(a, pfd, base, e, name);
}

/* ---- whiteouts ------------------------------------------------------------------------------------ */

static int
whiteout_char_device(applier_t *a, int pfd, const char *base, const char *name,
                     struct archive_entry *e)
{
    if (remove_all(pfd, base) < 0 || mknodat(pfd, base, S_IFCHR | 0, makedev(0, 0)) < 0)
        return fail_errno(a, name, "overlay whiteout");
    if (fchownat(pfd, base, (uid_t)libarchive.archive_entry_uid(e),
                 (gid_t)libarchive.archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
        return fail_errno(a, name, "overlay whiteout owner");
    return 0;
}

/* Empties a directory of what lower layers put there (what this layer wrote stays). */
static int
opaque_clear(applier_t *a, int pfd, const char *dir, const char *name)
{
    int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return fail_errno(a, name, "opaque directory");
    }
    struct dirent *de;
    char child[4400];
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s%s%s", dir, dir[0] ? "/" : "", de->d_name);
        if (!pathset_has(&a->written, child) && remove_all(dirfd(d), de->d_name) < 0)
            rc = fail_errno(a, name, "opaque directory");
    }
    closedir(d);
    return rc;
}

static int
apply_opaque(applier_t *a, const char *parent, const char *name)
{
    int pfd = parent_of(a, parent, name, 1);
    if (pfd < 0)
        return BERTH_EIO;
    if (!a->opts->overlay_whiteouts)
        return opaque_clear(a, pfd, parent, name);
    int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) == 0
                 ? 0
                 : fail_errno(a, name, "opaque xattr");
    if (fd >= 0)
        close(fd);
    return rc;
}

static int
apply_whiteout(applier_t *a, const char *parent, const char *base, const char *name,
               struct archive_entry *e)
{
    if (strcmp(base, OPAQUE) == 0)
        return apply_opaque(a, parent, name);
    const char *target = base + strlen(WH_PREFIX);
    if (target[0] == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return fail(a, BERTH_EINVAL, name, "whiteout of an invalid name");
    int pfd = parent_of(a, parent, name, a->opts->overlay_whiteouts);
    if (pfd < 0 && !a->opts->overlay_whiteouts) { /* nothing there to hide */
        if (a->err && *a->err) {
            a->api->error_free(*a->err);
            *a->err = NULL;
        }
        return 0;
    }
    if (pfd < 0)
        return BERTH_EIO;
    if (a->opts->overlay_whiteouts)
        return whiteout_char_device(a, pfd, target, name, e);
    return remove_all(pfd, target) == 0 ? 0 : fail_errno(a, name, "whiteout");
}

/* ---- one entry ------------------------------------------------------------------------------------ */

static int
apply_entry(applier_t *a, struct archive_entry *e)
{
    const char *raw = libarchive.archive_entry_pathname(e);
    char name[4096];
    if (raw == NULL || clean_name(raw, name, sizeof(name)) < 0)
        return fail(a, BERTH_EINVAL, raw ? raw : "(unnamed)", "path leaves the root");
    mode_t type = libarchive.archive_entry_filetype(e);
    const char *link = libarchive.archive_entry_hardlink(e);
    if (name[0] == '\0')
        return type == AE_IFDIR && link == NULL
                   ? 0
                   : fail(a, BERTH_EINVAL, raw, "only a directory may name the root");
    size_t nl = strlen(name);
    if (a->parent_fd >= 0 && strncmp(a->parent_path, name, nl) == 0 &&
        (a->parent_path[nl] == '\0' || a->parent_path[nl] == '/'))
        forget_parent(a); /* this entry may replace the cached directory or one above it */
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", name);
    char *slash = strrchr(parent, '/');
    const char *base = slash ? name + (slash - parent) + 1 : name;
    if (slash)
        *slash = '\0';
    else
        parent[0] = '\0';
    if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0)
        return apply_whiteout(a, parent, base, name, e);
    int pfd = parent_of(a, parent, name, 1);
    if (pfd < 0)
        return BERTH_EIO;
    pathset_add(&a->written, name);
    int rc;
    if (link)
        rc = write_hardlink(a, pfd, base, name, link);
    else if (type == AE_IFDIR)
        rc = write_dir(a, pfd, base, name, e);
    else if (type == AE_IFREG)
        rc = write_file(a, pfd, base, name, e);
    else if (type == AE_IFLNK)
        rc = write_symlink(a, pfd, base, name, e);
    else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
        rc = write_node(a, pfd, base, name, e);
    else
        rc = 0; /* sockets and unknown kinds are left out, as containerd does */
    return rc;
}

/* ---- the stream: source -> reader 1 (decompress) -> hash, bounds -> reader 2 (tar) ----------------- */

static la_ssize_t
read_compressed(struct archive *ar, void *user, const void **buf)
{
    (void)ar;
    applier_t *a = user;
    size_t got = 0;
    if (a->read(a->user, a->in, IN_BUF, &got, a->err) != 0) {
        a->input_rc = a->err && *a->err ? (*a->err)->code : BERTH_EIO;
        return -1;
    }
    a->compressed += got;
    *buf = a->in;
    return (la_ssize_t)got;
}

static int
over_bounds(applier_t *a)
{
    const layer_apply_opts_t *o = a->opts;
    if (o->max_bytes && a->decompressed > o->max_bytes)
        return a->api->error_make(a->err, BERTH_ERESOURCE,
                                  "layer decompresses to more than %llu bytes (max_layer_bytes)",
                                  (unsigned long long)o->max_bytes);
    if (o->max_ratio && a->decompressed > RATIO_GRACE &&
        a->decompressed / (a->compressed ? a->compressed : 1) > o->max_ratio)
        return a->api->error_make(a->err, BERTH_ERESOURCE,
                                  "layer decompresses more than %llu times its size "
                                  "(max_compression_ratio): a compression bomb?",
                                  (unsigned long long)o->max_ratio);
    return 0;
}

static la_ssize_t
read_tar(struct archive *ar, void *user, const void **buf)
{
    (void)ar;
    applier_t *a = user;
    static __thread unsigned char out[256 * 1024];
    if (a->input_rc)
        return -1;
    la_ssize_t n = libarchive.archive_read_data(a->raw, out, sizeof(out));
    if (n < 0) {
        if (!a->input_rc)
            a->input_rc =
                a->api->error_make(a->err, BERTH_EINVAL, "layer is truncated or corrupt: %s",
                                   libarchive.archive_error_string(a->raw));
        return -1;
    }
    a->decompressed += (uint64_t)n;
    libcrypto.SHA256_Update(&a->sha, out, (size_t)n);
    if ((a->input_rc = over_bounds(a)) != 0)
        return -1;
    *buf = out;
    return n;
}

static int
open_stream(applier_t *a)
{
    struct archive_entry *raw_entry;
    a->raw = libarchive.archive_read_new();
    libarchive.archive_read_support_filter_all(a->raw);
    libarchive.archive_read_support_format_raw(a->raw);
    if (libarchive.archive_read_open(a->raw, a, NULL, read_compressed, NULL) != ARCHIVE_OK ||
        libarchive.archive_read_next_header(a->raw, &raw_entry) != ARCHIVE_OK)
        return a->input_rc ? a->input_rc
                           : a->api->error_make(a->err, BERTH_EINVAL, "layer is not readable: %s",
                                                libarchive.archive_error_string(a->raw));
    a->tar = libarchive.archive_read_new();
    libarchive.archive_read_support_format_tar(a->tar);
    libarchive.archive_read_support_format_gnutar(a->tar);
    if (libarchive.archive_read_open(a->tar, a, NULL, read_tar, NULL) != ARCHIVE_OK)
        return a->input_rc ? a->input_rc
                           : a->api->error_make(a->err, BERTH_EINVAL, "layer is not a tar: %s",
                                                libarchive.archive_error_string(a->tar));
    return 0;
}

/* What follows the tar's end is part of the diffID too. */
static int
drain(applier_t *a)
{
    const void *buf;
    la_ssize_t n;
    while ((n = read_tar(a->tar, a, &buf)) > 0)
        ;
    return n == 0 ? 0 : a->input_rc;
}

static int
stream_error(applier_t *a, const char *what)
{
    if (a->input_rc)
        return a->input_rc;
    if (a->err && *a->err)
        return (*a->err)->code;
    return a->api->error_make(a->err, BERTH_EINVAL, "layer is truncated or corrupt%s%s: %s",
                              what ? " at " : "", what ? what : "",
                              libarchive.archive_error_string(a->tar));
}

static int
apply_entries(applier_t *a, layer_apply_result_t *res)
{
    struct archive_entry *e;
    int r;
    while ((r = libarchive.archive_read_next_header(a->tar, &e)) == ARCHIVE_OK ||
           r == ARCHIVE_WARN) {
        res->entries++;
        const char *name = libarchive.archive_entry_pathname(e);
        if (apply_entry(a, e) != 0)
            return a->err && *a->err ? (*a->err)->code : stream_error(a, name);
    }
    return r == ARCHIVE_EOF ? drain(a) : stream_error(a, NULL);
}

static void
set_dir_times(applier_t *a)
{
    for (size_t i = a->n_dirs; i-- > 0;) {
        struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS};
        int fd = (int)syscall(SYS_openat2, a->root, a->dirs[i].path, &how, sizeof(how));
        if (fd >= 0) {
            futimens(fd, a->dirs[i].ts);
            close(fd);
        }
        free(a->dirs[i].path);
    }
    free(a->dirs);
}

static void
finish_digest(applier_t *a, layer_apply_result_t *res)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    libcrypto.SHA256_Final(md, &a->sha);
    strcpy(res->diff_id, "sha256:");
    for (unsigned i = 0; i < sizeof(md); i++)
        snprintf(res->diff_id + 7 + 2 * i, 3, "%02x", md[i]);
    res->size = a->decompressed;
}

int
layer_apply(const berth_core_api_t *api, int root_fd, layer_read_fn read, void *user,
            const layer_apply_opts_t *opts, layer_apply_result_t *res, berth_error_t **err)
{
    applier_t a = {.api = api,
                   .err = err,
                   .opts = opts,
                   .root = root_fd,
                   .read = read,
                   .user = user,
                   .parent_fd = -1};
    *res = (layer_apply_result_t){0};
    int rc = libarchive_load(api, err);
    if (rc == 0)
        rc = libcrypto_load(api, err);
    if (rc < 0)
        return rc;
    a.in = malloc(IN_BUF);
    libcrypto.SHA256_Init(&a.sha);
    rc = open_stream(&a);
    if (rc == 0)
        rc = apply_entries(&a, res);
    set_dir_times(&a);
    if (rc == 0)
        finish_digest(&a, res);
    forget_parent(&a);
    pathset_free(&a.written);
    if (a.tar)
        libarchive.archive_read_free(a.tar);
    if (a.raw)
        libarchive.archive_read_free(a.raw);
    free(a.in);
    return rc;
}
