/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The walking differ's Diff: walks the lower and upper trees side by side (names sorted, one pass, O(entries)),
 * writes what was added or changed (with the parent directories of each change, as containerd's layers carry
 * them) and an OCI whiteout for what was removed, as a tar stream that is hashed (the diffID), gzipped
 * and written into the content store.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_CTX: EVP leaves per-thread state on pool threads */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib_archive.h" /* libarchive and libcrypto: opened on first use */
#include "lib_crypto.h"
#include "lib_z.h"

#include "images.h"

#define OCI_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_TAR_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

/* ---- the output: tar bytes -> SHA-256 (diffID) -> gzip -> content writer ---------------------------- */

typedef struct sink {
    differ_t *d;
    berth_content_writer_t *w;
    SHA256_CTX sha;
    z_stream z;
    int gzip;
    uint64_t size;
    berth_error_t *err;
    int rc;
} sink_t;

static int
sink_put(sink_t *s, const void *buf, size_t len)
{
    if (s->rc == 0)
        s->rc = s->d->cso->writer_write(s->w, buf, len, &s->err);
    return s->rc;
}

static int
sink_deflate(sink_t *s, const void *buf, size_t len, int flush)
{
    unsigned char out[64 * 1024];
    s->z.next_in = (unsigned char *)buf;
    s->z.avail_in = (uInt)len;
    do {
        s->z.next_out = out;
        s->z.avail_out = sizeof(out);
        if (libz.deflate(&s->z, flush) == Z_STREAM_ERROR)
            return s->rc = s->d->api->error_make(&s->err, BERTH_EINTERNAL, "gzip failed");
        if (sink_put(s, out, sizeof(out) - s->z.avail_out) != 0)
            return s->rc;
    } while (s->z.avail_out == 0);
    return 0;
}

static la_ssize_t
sink_write(struct archive *a, void *user, const void *buf, size_t len)
{
    (void)a;
    sink_t *s = user;
    libcrypto.SHA256_Update(&s->sha, buf, len);
    s->size += len;
    int rc = s->gzip ? sink_deflate(s, buf, len, Z_NO_FLUSH) : sink_put(s, buf, len);
    return rc == 0 ? (la_ssize_t)len : -1;
}

/* ---- comparing the two trees ----------------------------------------------------------------------- */

typedef struct walker {
    differ_t *d;
    struct archive *tar;
    int lower_root, upper_root;
    char path[4096];      /* current directory, relative ("" at the root) */
    size_t emitted_depth; /* how many leading components of path are in the tar already */
    size_t depth;
    struct {
        dev_t dev;
        ino_t ino;
        char *name;
    } * links;
    size_t n_links;
    int rc;
    berth_error_t **err;
} walker_t;

static int
names_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of dirfd/rel ("" the dir itself); *n 0 and NULL when it is not a directory. */
static char **
list_dir(int root, const char *rel, size_t *n)
{
    *n = 0;
    int fd = root < 0 ? -1
                      : openat(root, rel[0] ? rel : ".",
                               O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = realloc(names, (*n + 1) * sizeof(*names));
        names[(*n)++] = strdup(de->d_name);
    }
    closedir(dir);
    if (*n > 1)
        qsort(names, *n, sizeof(*names), names_cmp);
    return names;
}

static void
free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int
same_content(int lower, int upper, const char *rel, off_t size)
{
    int a = openat(lower, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int b = openat(upper, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int same = a >= 0 && b >= 0;
    char x[65536], y[65536];
    for (off_t done = 0; same && done < size;) {
        ssize_t n = read(a, x, sizeof(x));
        same = n > 0 && read(b, y, (size_t)n) == n && memcmp(x, y, (size_t)n) == 0;
        done += n > 0 ? n : 0;
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return same;
}

/* containerd's sameFile: the same metadata, and for files whose mtime has no sub-second part (a copy may
 * keep it) the same bytes. */
static int
unchanged(walker_t *w, const char *rel, const struct stat *lo, const struct stat *up)
{
    if (lo->st_mode != up->st_mode || lo->st_uid != up->st_uid || lo->st_gid != up->st_gid ||
        lo->st_rdev != up->st_rdev || lo->st_mtim.tv_sec != up->st_mtim.tv_sec ||
        lo->st_mtim.tv_nsec != up->st_mtim.tv_nsec)
        return 0;
    if (S_ISDIR(up->st_mode))
        return 1;
    if (lo->st_size != up->st_size)
        return 0;
    if (S_ISLNK(up->st_mode)) {
        char a[4096], b[4096];
        ssize_t na = readlinkat(w->lower_root, rel, a, sizeof(a));
        ssize_t nb = readlinkat(w->upper_root, rel, b, sizeof(b));
        return na == nb && na >= 0 && memcmp(a, b, (size_t)na) == 0;
    }
    if (S_ISREG(up->st_mode) && up->st_mtim.tv_nsec == 0)
        return same_content(w->lower_root, w->upper_root, rel, up->st_size);
    return 1;
}

/* ---- writing entries ------------------------------------------------------------------------------- */

static int
fail(walker_t *w, int code, const char *what, const char *rel)
{
    if (w->rc == 0)
        w->rc = w->d->api->error_make(w->err, code, "diff %s: %s: %s", rel, what,
                                      errno ? strerror(errno) : "failed");
    return w->rc;
}

/* Through an O_PATH fd's /proc link: opening a device node or FIFO for reading could block or act.
 * Symlinks carry no xattrs a layer keeps. overlay's own trusted.overlay.* stay out. */
static void
copy_xattrs(int root, const char *rel, const struct stat *st, struct archive_entry *e)
{
    char proc[64], list[8192], value[65536];
    int fd = S_ISLNK(st->st_mode) ? -1 : openat(root, rel, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = listxattr(proc, list, sizeof(list));
    for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(list + i) + 1) {
        ssize_t vn = getxattr(proc, list + i, value, sizeof(value));
        if (vn >= 0 && strncmp(list + i, "trusted.overlay.", 16) != 0)
            libarchive.archive_entry_xattr_add_entry(e, list + i, value, (size_t)vn);
    }
    close(fd);
}

static int
write_data(walker_t *w, const char *rel)
{
    int fd = openat(w->upper_root, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail(w, BERTH_EIO, "open", rel);
    char buf[128 * 1024];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (libarchive.archive_write_data(w->tar, buf, (size_t)n) != n)
            break;
    close(fd);
    return n == 0 ? 0 : fail(w, BERTH_EIO, "read", rel);
}

/* A hardlink to a file already in this layer, or NULL (and the file is remembered). */
static const char *
link_target(walker_t *w, const char *rel, const struct stat *st)
{
    if (!S_ISREG(st->st_mode) || st->st_nlink < 2)
        return NULL;
    for (size_t i = 0; i < w->n_links; i++)
        if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
            return w->links[i].name;
    w->links = realloc(w->links, (w->n_links + 1) * sizeof(*w->links));
    w->links[w->n_links].dev = st->st_dev;
    w->links[w->n_links].ino = st->st_ino;
    w->links[w->n_links++].name = strdup(rel);
    return NULL;
}

static int
emit(walker_t *w, const char *rel)
{
    struct stat st;
    if (fstatat(w->upper_root, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(w, BERTH_EIO, "stat", rel);
    if (S_ISSOCK(st.st_mode))
        return 0; /* containerd leaves sockets out */
    struct archive_entry *e = libarchive.archive_entry_new();
    libarchive.archive_entry_copy_stat(e, &st);
    libarchive.archive_entry_set_pathname(e, rel);
    libarchive.archive_entry_set_uname(e, "");
    libarchive.archive_entry_set_gname(e, "");
    const char *target = link_target(w, rel, &st);
    char lnk[4096];
    ssize_t n;
    if (target) {
        libarchive.archive_entry_set_hardlink(e, target);
        libarchive.archive_entry_set_size(e, 0);
    } else if (S_ISLNK(st.st_mode) &&
               (n = readlinkat(w->upper_root, rel, lnk, sizeof(lnk) - 1)) >= 0) {
        lnk[n] = '\0';
        libarchive.archive_entry_set_symlink(e, lnk);
    }
    copy_xattrs(w->upper_root, rel, &st, e);
    int rc = libarchive.archive_write_header(w->tar, e) == ARCHIVE_OK
                 ? 0
                 : fail(w, BERTH_EINTERNAL, "tar", rel);
    if (rc == 0 && target == NULL && S_ISREG(st.st_mode) && st.st_size > 0)
        rc = write_data(w, rel);
    libarchive.archive_entry_free(e);
    return rc;
}

/* Writes the directories above the current change that are not in the tar yet. */
static int
emit_parents(walker_t *w)
{
    char prefix[4096];
    size_t depth = 0;
    for (size_t i = 0; w->path[i] && w->rc == 0; i++) {
        if (w->path[i + 1] != '/' && w->path[i + 1] != '\0')
            continue;
        if (++depth <= w->emitted_depth)
            continue;
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(i + 1), w->path);
        emit(w, prefix);
    }
    w->emitted_depth = w->depth;
    return w->rc;
}

static int
whiteout(walker_t *w, const char *name)
{
    if (emit_parents(w) != 0)
        return w->rc;
    char wh[4200];
    snprintf(wh, sizeof(wh), "%s%s.wh.%s", w->path, w->path[0] ? "/" : "", name);
    struct archive_entry *e = libarchive.archive_entry_new();
    libarchive.archive_entry_set_pathname(e, wh);
    libarchive.archive_entry_set_filetype(e, AE_IFREG);
    libarchive.archive_entry_set_perm(e, 0);
    libarchive.archive_entry_set_size(e, 0);
    if (libarchive.archive_write_header(w->tar, e) != ARCHIVE_OK)
        fail(w, BERTH_EINTERNAL, "tar", wh);
    libarchive.archive_entry_free(e);
    return w->rc;
}

static int walk_dir(walker_t *w, int lower_is_dir);

static void
descend(walker_t *w, const char *name, int emitted, int lower_is_dir)
{
    size_t len = strlen(w->path);
    snprintf(w->path + len, sizeof(w->path) - len, "%s%s", len ? "/" : "", name);
    w->depth++;
    if (emitted)
        w->emitted_depth = w->depth;
    walk_dir(w, lower_is_dir);
    w->path[len] = '\0';
    w->depth--;
    if (w->emitted_depth > w->depth)
        w->emitted_depth = w->depth;
}

/* One name of the current directory, in the lower tree, the upper tree or both. */
static int
visit(walker_t *w, const char *name, int in_lower, int in_upper)
{
    if (!in_upper)
        return whiteout(w, name);
    char rel[4200];
    snprintf(rel, sizeof(rel), "%s%s%s", w->path, w->path[0] ? "/" : "", name);
    struct stat up, lo;
    if (fstatat(w->upper_root, rel, &up, AT_SYMLINK_NOFOLLOW) < 0)
        return fail(w, BERTH_EIO, "stat", rel);
    int have_lower = in_lower && fstatat(w->lower_root, rel, &lo, AT_SYMLINK_NOFOLLOW) == 0;
    int changed = !have_lower || !unchanged(w, rel, &lo, &up);
    if (changed && (emit_parents(w) != 0 || emit(w, rel) != 0))
        return w->rc;
    if (S_ISDIR(up.st_mode))
        descend(w, name, changed, have_lower && S_ISDIR(lo.st_mode));
    return w->rc;
}

static int
walk_dir(walker_t *w, int lower_is_dir)
{
    size_t nl = 0, nu = 0, i = 0, j = 0;
    char **lower = lower_is_dir ? list_dir(w->lower_root, w->path, &nl) : NULL;
    char **upper = list_dir(w->upper_root, w->path, &nu);
    while (w->rc == 0 && (i < nl || j < nu)) {
        int c = i == nl ? 1 : j == nu ? -1 : strcmp(lower[i], upper[j]);
        if (c < 0)
            visit(w, lower[i++], 1, 0);
        else if (c > 0)
            visit(w, upper[j++], 0, 1);
        else
            visit(w, upper[j++], 1, 1), i++;
    }
    free_names(lower, nl);
    free_names(upper, nu);
    return w->rc;
}

/* ---- the Diff call --------------------------------------------------------------------------------- */

static int
open_root(differ_t *d, const berth_mount_t *m, size_t n, mounted_t *mt, int *fd,
          berth_error_t **err)
{
    *fd = -1;
    mt->point[0] = '\0';
    if (n == 0)
        return 0; /* no lower: everything in upper is new */
    int rc = mounts_acquire(d, m, n, 1, mt, err);
    if (rc == 0 && (*fd = open(mt->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = d->api->error_make(err, BERTH_EIO, "open %s: %s", mt->root, strerror(errno));
        mounts_release(mt);
    }
    return rc;
}

static void
default_ref(char *out, size_t len)
{
    unsigned char b[8] = {0};
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        memset(b, 0, sizeof(b));
    snprintf(out, len, "diff-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7]);
}

/* Walks the trees into the sink; the tar's end and the gzip trailer included. */
static int
write_layer(walker_t *w, sink_t *s)
{
    w->tar = libarchive.archive_write_new();
    libarchive.archive_write_set_format_pax_restricted(w->tar);
    libarchive.archive_write_set_bytes_per_block(w->tar, 0);
    if (libarchive.archive_write_open2(w->tar, s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
        w->rc = w->d->api->error_make(w->err, BERTH_EINTERNAL, "tar: %s",
                                      libarchive.archive_error_string(w->tar));
    if (w->rc == 0)
        walk_dir(w, w->lower_root >= 0);
    if (libarchive.archive_write_close(w->tar) != ARCHIVE_OK && w->rc == 0)
        w->rc = s->rc ? s->rc
                      : w->d->api->error_make(w->err, BERTH_EINTERNAL, "tar: %s",
                                              libarchive.archive_error_string(w->tar));
    libarchive.archive_write_free(w->tar);
    if (w->rc == 0 && s->gzip)
        sink_deflate(s, NULL, 0, Z_FINISH);
    for (size_t i = 0; i < w->n_links; i++)
        free(w->links[i].name);
    free(w->links);
    if (w->rc == 0 && s->rc != 0) {
        w->rc = s->rc;
        *w->err = s->err;
        s->err = NULL;
    }
    return w->rc;
}

/* Commits the blob and gives the namespace its record, labelled with the diffID. */
static int
publish_blob(differ_t *d, const char *ns, sink_t *s, const berth_kv_t *labels,
             berth_descriptor_t *out, berth_error_t **err)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    libcrypto.SHA256_Final(md, &s->sha);
    char diff_id[BERTH_DIGEST_MAX] = "sha256:";
    for (unsigned i = 0; i < sizeof(md); i++)
        snprintf(diff_id + 7 + 2 * i, 3, "%02x", md[i]);
    int rc = d->cso->writer_commit(s->w, 0, "", out->digest, err);
    if (rc == BERTH_EEXIST) {
        d->api->error_free(*err);
        *err = NULL;
        rc = 0;
    }
    berth_blob_info_t info;
    if (rc == 0)
        rc = d->cso->info(d->cs, out->digest, &info, err);
    berth_kv_t *all = d->api->kv_new();
    for (size_t i = 0; labels && i < d->api->kv_size(labels); i++)
        d->api->kv_set(all, d->api->kv_key_at(labels, i), d->api->kv_value_at(labels, i));
    d->api->kv_set(all, "containerd.io/uncompressed", diff_id);
    const char *lease = d->api->call_lease();
    if (rc == 0 && lease[0]) /* before the record: no collection may find it unrooted */
        rc = d->mdo->lease_add_resource(d->md, ns, lease, "content", out->digest, err);
    if (rc == 0)
        rc = d->mdo->content_put(d->md, ns, out->digest, info.size, all, err);
    d->api->kv_free(all);
    out->size = info.size;
    return rc;
}

int
differ_diff(void *arg, const char *ns, const berth_mount_t *lower, size_t n_lower,
            const berth_mount_t *upper, size_t n_upper, const char *media_type, const char *ref,
            const berth_kv_t *labels, berth_descriptor_t *out, berth_error_t **err)
{
    differ_t *d = arg;
    if (media_type[0] == '\0')
        media_type = OCI_TAR_GZIP;
    if (strcmp(media_type, OCI_TAR) != 0 && strcmp(media_type, OCI_TAR_GZIP) != 0)
        return d->api->error_make(err, BERTH_ENOTIMPL, "unsupported diff media type: %s",
                                  media_type);
    if (n_upper == 0)
        return d->api->error_make(err, BERTH_EINVAL, "diff needs the upper mounts");
    int rc = libarchive_load(d->api, err);
    if (rc == 0)
        rc = libcrypto_load(d->api, err);
    if (rc == 0)
        rc = libz_load(d->api, err);
    if (rc < 0)
        return rc;
    mounted_t lo, up;
    walker_t w = {.d = d, .err = err};
    rc = open_root(d, lower, n_lower, &lo, &w.lower_root, err);
    if (rc == 0 && (rc = open_root(d, upper, n_upper, &up, &w.upper_root, err)) != 0) {
        close(w.lower_root);
        mounts_release(&lo);
    }
    if (rc != 0)
        return rc;
    char gen[64];
    if (ref == NULL || ref[0] == '\0')
        default_ref(gen, sizeof(gen)), ref = gen;
    sink_t s = {.d = d, .gzip = strcmp(media_type, OCI_TAR_GZIP) == 0};
    libcrypto.SHA256_Init(&s.sha);
    if (s.gzip)
        libz.deflateInit2_(&s.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                           Z_DEFAULT_STRATEGY, ZLIB_VERSION, (int)sizeof(z_stream));
    rc = d->cso->writer_open(d->cs, ref, 0, "", &s.w, err);
    if (rc == 0 && (rc = write_layer(&w, &s)) == 0)
        rc = publish_blob(d, ns, &s, labels, out, err);
    if (s.w && rc != 0)
        d->cso->ingest_abort(d->cs, ref, NULL);
    if (s.w)
        d->cso->writer_close(s.w);
    if (s.gzip)
        libz.deflateEnd(&s.z);
    if (s.err)
        d->api->error_free(s.err);
    if (w.lower_root >= 0)
        close(w.lower_root);
    close(w.upper_root);
    mounts_release(&lo);
    mounts_release(&up);
    snprintf(out->media_type, sizeof(out->media_type), "%s", media_type);
    out->annotations = NULL;
    return rc;
}
