/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blobs and ingests on disk:
 *   <root>/blobs/sha256/<hex>                 published blobs, read-only (0444)
 *   <root>/ingest/<sha256(ref)>/ref           the ref (a corrupt or foreign one is refused)
 *   <root>/ingest/<sha256(ref)>/data          bytes so far
 *   <root>/ingest/<sha256(ref)>/total         expected total, if given
 *   <root>/ingest/<sha256(ref)>/expected      expected digest, if given
 *   <root>/ingest/<sha256(ref)>/hash          SHA-256 state and the offset it covers
 *   <root>/ingest/<sha256(ref)>/started       start time, ns since the epoch (file times are too coarse)
 * The hash state is saved every 16 MiB and on close, so a resumed ingest hashes only the bytes after the
 * saved offset (containerd re-reads the whole prefix). Publishing is write, fsync, rename, fsync of the dir
 * (containerd 1.6 fsyncs the data file too, not the dir); writeback of the data starts every 8 MiB while the
 * ingest is written, so the commit's fsync waits for the last few MiB only.
 * A writer's hashing may run ahead of its disk writes (writer_hash, writer_append): a state snapshot waits
 * until the disk has the bytes it covers before it is saved, so a saved state never claims more than the
 * data file holds.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lib_crypto.h" /* SHA256_CTX: the digest whose state can be saved and resumed */

#define SAVE_EVERY (16 << 20)
#define WRITEBACK_EVERY (8 << 20) /* bytes after which the disk is told to start writing them */
#define SYNC_EVERY (16 << 20)     /* bytes after which an fdatasync of the ingest runs meanwhile */
#define DIRECT_ALIGN 4096         /* offset, address and length alignment of an O_DIRECT write */
#define HASH_MAGIC 0x31534842u    /* "BHS1" */

typedef struct hash_state {
    uint32_t magic;
    uint32_t size; /* sizeof(SHA256_CTX) when written */
    int64_t offset;
    SHA256_CTX sha;
} hash_state_t;

struct berth_content_writer_s {
    cs_t *cs;
    char *ref;
    char dir[4096];
    int64_t total;
    char expected[BERTH_DIGEST_MAX];
    int64_t started_ns;
    /* the hashing half */
    SHA256_CTX sha;
    int64_t hashed, snapped_at, updated_ns;
    /* the disk half */
    int fd;
    int dfd; /* the data file opened O_DIRECT for aligned appends, -1 when the filesystem refuses it */
    int64_t offset, saved_at, written_back, synced_ahead;
    /* a hash state taken by the hashing half, saved by the disk half once the data file covers it */
    pthread_mutex_t snap_lock;
    hash_state_t snap;
    int has_snap;
};

static int
fail_errno(cs_t *cs, berth_error_t **err, const char *what, const char *path)
{
    int e = errno;
    int code = e == ENOENT                  ? BERTH_ENOTFOUND
               : e == ENOSPC || e == EDQUOT ? BERTH_ERESOURCE
                                            : BERTH_EIO;
    return cs->api->error_make(err, code, "%s %s: %s", what, path, strerror(e));
}

static void
hex_of(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

int
cs_valid_digest(const char *digest)
{
    if (strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
        return 0;
    for (const char *p = digest + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int
blob_path(cs_t *cs, const char *digest, char *path, size_t len, berth_error_t **err)
{
    if (!cs_valid_digest(digest))
        return cs->api->error_make(err, BERTH_EINVAL,
                                   "invalid digest %s: want sha256:<64 hex digits>", digest);
    snprintf(path, len, "%s/blobs/sha256/%s", cs->root, digest + 7);
    return 0;
}

static void
ingest_dir(cs_t *cs, const char *ref, char *out, size_t len)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256_CTX ctx; /* not SHA256(): its EVP path leaves per-thread state on pool threads */
    libcrypto.SHA256_Init(&ctx);
    libcrypto.SHA256_Update(&ctx, ref, strlen(ref));
    libcrypto.SHA256_Final(d, &ctx);
    hex_of(d, sizeof(d), hex);
    snprintf(out, len, "%s/ingest/%s", cs->root, hex);
}

static int64_t
mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Small files of an ingest dir: "ref", "total", "expected". */
static int
write_small(const char *dir, const char *name, const char *value)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

static int
read_small(const char *dir, const char *name, char *out, size_t len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    out[0] = '\0';
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return n >= 0 ? 0 : -1;
}

/* The ingest's start time: its "started" file, else (older ingests) its ref file's mtime. */
static int64_t
started_of_dir(const char *dir)
{
    char buf[64], path[4200];
    struct stat st;
    if (read_small(dir, "started", buf, sizeof(buf)) == 0 && buf[0])
        return atoll(buf);
    snprintf(path, sizeof(path), "%s/ref", dir);
    return stat(path, &st) == 0 ? mtime_ns(&st) : 0;
}

/* ---- locks: in memory, so a restart or a dead client frees them ------------------------------------ */

static int
lock_ref(cs_t *cs, const char *ref)
{
    pthread_mutex_lock(&cs->lock);
    for (size_t i = 0; i < cs->nlocked; i++)
        if (strcmp(cs->locked[i], ref) == 0) {
            pthread_mutex_unlock(&cs->lock);
            return -1;
        }
    cs->locked = realloc(cs->locked, (cs->nlocked + 1) * sizeof(char *));
    cs->locked[cs->nlocked++] = strdup(ref);
    pthread_mutex_unlock(&cs->lock);
    return 0;
}

static void
unlock_ref(cs_t *cs, const char *ref)
{
    pthread_mutex_lock(&cs->lock);
    for (size_t i = 0; i < cs->nlocked; i++)
        if (strcmp(cs->locked[i], ref) == 0) {
            free(cs->locked[i]);
            cs->locked[i] = cs->locked[--cs->nlocked];
            break;
        }
    pthread_mutex_unlock(&cs->lock);
}

static int
is_locked(cs_t *cs, const char *ref)
{
    pthread_mutex_lock(&cs->lock);
    int found = 0;
    for (size_t i = 0; i < cs->nlocked && !found; i++)
        found = strcmp(cs->locked[i], ref) == 0;
    pthread_mutex_unlock(&cs->lock);
    return found;
}

/* ---- blobs ---------------------------------------------------------------------------------------- */

static int
cs_info(void *arg, const char *digest, berth_blob_info_t *out, berth_error_t **err)
{
    cs_t *cs = arg;
    char path[4096];
    struct stat st;
    if (blob_path(cs, digest, path, sizeof(path), err) < 0)
        return BERTH_EINVAL;
    if (stat(path, &st) < 0)
        return errno == ENOENT
                   ? cs->api->error_make(err, BERTH_ENOTFOUND, "content %s: not found", digest)
                   : fail_errno(cs, err, "stat", path);
    snprintf(out->digest, sizeof(out->digest), "%s", digest);
    out->size = st.st_size;
    out->created_ns = out->updated_ns = mtime_ns(&st);
    return 0;
}

static int
cs_read_at(void *arg, const char *digest, int64_t offset, void *buf, size_t len, size_t *got,
           berth_error_t **err)
{
    cs_t *cs = arg;
    char path[4096];
    if (blob_path(cs, digest, path, sizeof(path), err) < 0)
        return BERTH_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? cs->api->error_make(err, BERTH_ENOTFOUND, "content %s: not found", digest)
                   : fail_errno(cs, err, "open", path);
    struct stat st;
    fstat(fd, &st);
    if (offset < 0 || offset > st.st_size) {
        close(fd);
        return cs->api->error_make(err, BERTH_ERANGE,
                                   "read of %s at offset %lld: the blob is %lld bytes", digest,
                                   (long long)offset, (long long)st.st_size);
    }
    ssize_t n = pread(fd, buf, len, offset);
    close(fd);
    if (n < 0)
        return fail_errno(cs, err, "read", path);
    *got = (size_t)n;
    return 0;
}

static int
cs_remove(void *arg, const char *digest, berth_error_t **err)
{
    cs_t *cs = arg;
    char path[4096];
    if (blob_path(cs, digest, path, sizeof(path), err) < 0)
        return BERTH_EINVAL;
    if (unlink(path) < 0)
        return errno == ENOENT
                   ? cs->api->error_make(err, BERTH_ENOTFOUND, "content %s: not found", digest)
                   : fail_errno(cs, err, "remove", path);
    return 0;
}

static int
cs_walk(void *arg, int (*cb)(void *user, const berth_blob_info_t *info), void *user,
        berth_error_t **err)
{
    cs_t *cs = arg;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/blobs/sha256", cs->root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return fail_errno(cs, err, "open", dir);
    struct dirent *e;
    int stop = 0;
    while (!stop && (e = readdir(d)) != NULL) {
        berth_blob_info_t info;
        char digest[BERTH_DIGEST_MAX];
        snprintf(digest, sizeof(digest), "sha256:%.64s", e->d_name);
        if (strlen(e->d_name) == 64 && cs_info(cs, digest, &info, NULL) == 0)
            stop = cb(user, &info);
    }
    closedir(d);
    return 0;
}

/* ---- writers -------------------------------------------------------------------------------------- */

static void
save_state(berth_content_writer_t *w, const hash_state_t *hs)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/hash", w->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, hs, sizeof(*hs)) == (ssize_t)sizeof(*hs))
            w->saved_at = hs->offset;
        close(fd);
    }
}

/* Saves the current state; only when nothing hashes or writes concurrently. */
static void
save_hash(berth_content_writer_t *w)
{
    hash_state_t hs = {HASH_MAGIC, sizeof(SHA256_CTX), w->hashed, w->sha};
    save_state(w, &hs);
}

/* Disk half: saves the pending snapshot once the data file covers it. */
static void
save_snapshot(berth_content_writer_t *w)
{
    hash_state_t hs;
    int due = 0;
    pthread_mutex_lock(&w->snap_lock);
    if (w->has_snap && w->snap.offset <= w->offset) {
        hs = w->snap;
        w->has_snap = 0;
        due = 1;
    }
    pthread_mutex_unlock(&w->snap_lock);
    if (due)
        save_state(w, &hs);
}

/* The hash of data[0, size): from the saved state when it is usable, hashing only what follows it. */
static int
restore_hash(berth_content_writer_t *w, int64_t size)
{
    hash_state_t hs;
    char path[4200];
    snprintf(path, sizeof(path), "%s/hash", w->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int64_t from = 0;
    libcrypto.SHA256_Init(&w->sha);
    if (fd >= 0) {
        if (read(fd, &hs, sizeof(hs)) == (ssize_t)sizeof(hs) && hs.magic == HASH_MAGIC &&
            hs.size == sizeof(SHA256_CTX) && hs.offset >= 0 && hs.offset <= size) {
            w->sha = hs.sha;
            from = hs.offset;
        }
        close(fd);
    }
    size_t chunk = 1 << 20;
    unsigned char *buf = from < size ? malloc(chunk) : NULL;
    for (int64_t at = from; at < size;) {
        ssize_t n = pread(w->fd, buf, chunk, at);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        libcrypto.SHA256_Update(&w->sha, buf, (size_t)n);
        at += n;
    }
    free(buf);
    w->offset = w->hashed = w->saved_at = w->snapped_at = w->written_back = w->synced_ahead = size;
    return 0;
}

static int
open_ingest(cs_t *cs, berth_content_writer_t *w, int64_t total, const char *expected,
            berth_error_t **err)
{
    char have[4096];
    struct stat st;
    int fresh = stat(w->dir, &st) < 0;
    if (!fresh && (read_small(w->dir, "ref", have, sizeof(have)) < 0 || strcmp(have, w->ref) != 0))
        return cs->api->error_make(err, BERTH_EDATALOSS,
                                   "ingest of ref %s is corrupt (its ref file says %s)", w->ref,
                                   have);
    if (fresh && (mkdir(w->dir, 0700) < 0 || write_small(w->dir, "ref", w->ref) < 0))
        return fail_errno(cs, err, "create ingest", w->dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/data", w->dir);
    w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (w->fd < 0 || fstat(w->fd, &st) < 0)
        return fail_errno(cs, err, "open", path);
    w->dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
    char buf[64];
    if (read_small(w->dir, "total", buf, sizeof(buf)) == 0 && buf[0])
        w->total = atoll(buf);
    if (total > 0 && w->total > 0 && total != w->total)
        return cs->api->error_make(err, BERTH_EINVAL,
                                   "provided total differs from status: %lld != %lld",
                                   (long long)total, (long long)w->total);
    if (total > 0 && w->total == 0) {
        w->total = total;
        snprintf(buf, sizeof(buf), "%lld", (long long)total);
        write_small(w->dir, "total", buf);
    }
    read_small(w->dir, "expected", w->expected, sizeof(w->expected));
    if (expected && expected[0] && !w->expected[0]) {
        snprintf(w->expected, sizeof(w->expected), "%s", expected);
        write_small(w->dir, "expected", expected);
    }
    w->started_ns = started_of_dir(w->dir);
    if (fresh || w->started_ns == 0) {
        w->started_ns = clock_now_ns();
        snprintf(buf, sizeof(buf), "%lld", (long long)w->started_ns);
        write_small(w->dir, "started", buf);
    }
    /* a resumed ingest's data mtime is its last write's time (writer_close sets it) */
    w->updated_ns = fresh || st.st_size == 0 ? w->started_ns : mtime_ns(&st);
    if (restore_hash(w, st.st_size) < 0)
        return fail_errno(cs, err, "read", path);
    return 0;
}

static void
writer_free(berth_content_writer_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->dfd >= 0)
        close(w->dfd);
    pthread_mutex_destroy(&w->snap_lock);
    unlock_ref(w->cs, w->ref);
    free(w->ref);
    free(w);
}

static int
cs_writer_open(void *arg, const char *ref, int64_t total, const char *expected,
               berth_content_writer_t **out, berth_error_t **err)
{
    cs_t *cs = arg;
    if (ref == NULL || ref[0] == '\0')
        return cs->api->error_make(err, BERTH_EINVAL, "ref must not be empty");
    int rc = libcrypto_load(cs->api, err);
    if (rc < 0)
        return rc;
    if (expected && expected[0]) {
        berth_blob_info_t info;
        if (!cs_valid_digest(expected))
            return cs->api->error_make(err, BERTH_EINVAL, "invalid expected digest %s", expected);
        if (cs_info(cs, expected, &info, NULL) == 0)
            return cs->api->error_make(err, BERTH_EEXIST, "content %s: already exists", expected);
    }
    if (lock_ref(cs, ref) < 0)
        return cs->api->error_make(err, BERTH_EUNAVAILABLE,
                                   "ref %s locked: another writer holds it", ref);
    berth_content_writer_t *w = calloc(1, sizeof(*w));
    w->cs = cs;
    w->fd = w->dfd = -1;
    w->ref = strdup(ref);
    pthread_mutex_init(&w->snap_lock, NULL);
    ingest_dir(cs, ref, w->dir, sizeof(w->dir));
    rc = open_ingest(cs, w, total, expected, err);
    if (rc < 0) {
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int
cs_writer_status(berth_content_writer_t *w, berth_ingest_status_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->ref, sizeof(out->ref), "%s", w->ref);
    out->offset = w->offset;
    out->total = w->total;
    snprintf(out->expected, sizeof(out->expected), "%s", w->expected);
    out->started_ns = w->started_ns;
    out->updated_ns = w->updated_ns;
    return 0;
}

static void
cs_writer_hash(berth_content_writer_t *w, const void *data, size_t len)
{
    libcrypto.SHA256_Update(&w->sha, data, len);
    w->hashed += (int64_t)len;
    w->updated_ns = clock_now_ns();
    if (w->hashed - w->snapped_at >= SAVE_EVERY) {
        pthread_mutex_lock(&w->snap_lock);
        w->snap = (hash_state_t){HASH_MAGIC, sizeof(SHA256_CTX), w->hashed, w->sha};
        w->has_snap = 1;
        pthread_mutex_unlock(&w->snap_lock);
        w->snapped_at = w->hashed;
    }
}

/* The thread of sync_ahead: fdatasyncs the descriptors queued, in order. */
static void *
sync_main(void *arg)
{
    cs_t *cs = arg;
    pthread_mutex_lock(&cs->sync_lock);
    for (;;) {
        while (cs->nsync == 0 && !cs->sync_stop)
            pthread_cond_wait(&cs->sync_cond, &cs->sync_lock);
        if (cs->nsync == 0)
            break;
        int fd = cs->sync_fds[0];
        memmove(cs->sync_fds, cs->sync_fds + 1, --cs->nsync * sizeof(int));
        pthread_mutex_unlock(&cs->sync_lock);
        fdatasync(fd);
        close(fd);
        pthread_mutex_lock(&cs->sync_lock);
    }
    pthread_mutex_unlock(&cs->sync_lock);
    return NULL;
}

/* Has the ingest's bytes so far made durable while more arrive: the commit's fsync, the durability point,
 * then waits for the last few MiB only, not for the device to take in the whole blob (the disk cache
 * flush of a VM's virtual disk costs ~100 ms per 200 MiB). Best effort: a full queue skips one. */
static void
sync_ahead(cs_t *cs, int fd)
{
    pthread_mutex_lock(&cs->sync_lock);
    if (!cs->sync_started && !cs->sync_stop)
        cs->sync_started = pthread_create(&cs->sync_thread, NULL, sync_main, cs) == 0;
    int d = -1;
    if (cs->sync_started && !cs->sync_stop &&
        cs->nsync < (int)(sizeof(cs->sync_fds) / sizeof(cs->sync_fds[0])) &&
        (d = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
        cs->sync_fds[cs->nsync++] = d;
        pthread_cond_signal(&cs->sync_cond);
    }
    pthread_mutex_unlock(&cs->sync_lock);
}

/* Writes len bytes at `at`: aligned whole blocks through the O_DIRECT descriptor (the page cache would
 * cost a fresh page and a copy per 4 KiB, on the CPU the client needs; the commit's fsync stays the
 * durability point either way), the rest through the page cache. */
static ssize_t
write_at(berth_content_writer_t *w, const char *data, size_t len, int64_t at)
{
    size_t direct = 0;
    if (w->dfd >= 0 && at % DIRECT_ALIGN == 0 && (uintptr_t)data % DIRECT_ALIGN == 0)
        direct = len & ~(size_t)(DIRECT_ALIGN - 1);
    int fd = direct ? w->dfd : w->fd;
    ssize_t n = pwrite(fd, data, direct ? direct : len, at);
    if (n < 0 && errno == EINVAL &&
        direct) { /* the filesystem will not: the page cache from now on */
        close(w->dfd);
        w->dfd = -1;
        n = pwrite(w->fd, data, len, at);
    }
    return n;
}

static int
cs_writer_append(berth_content_writer_t *w, const void *data, size_t len, berth_error_t **err)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = write_at(w, (const char *)data + done, len - done, w->offset + (int64_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail_errno(w->cs, err, "write ingest", w->ref);
        done += (size_t)n;
    }
    w->offset += (int64_t)len;
    save_snapshot(w);
    /* the commit's fsync is the durability point; starting the writeback of what went through the page
     * cache now, while the client still sends, leaves that fsync the last few MiB instead of the blob */
    if (w->offset - w->written_back >= WRITEBACK_EVERY) {
        sync_file_range(w->fd, w->written_back, w->offset - w->written_back, SYNC_FILE_RANGE_WRITE);
        w->written_back = w->offset;
    }
    if (w->offset - w->synced_ahead >= SYNC_EVERY) {
        sync_ahead(w->cs, w->fd);
        w->synced_ahead = w->offset;
    }
    return 0;
}

static int
cs_writer_write(berth_content_writer_t *w, const void *data, size_t len, berth_error_t **err)
{
    cs_writer_hash(w, data, len);
    return cs_writer_append(w, data, len, err);
}

static int
cs_writer_truncate(berth_content_writer_t *w, int64_t size, berth_error_t **err)
{
    if (size != 0)
        return w->cs->api->error_make(err, BERTH_ENOTIMPL, "truncate to %lld: only 0 is supported",
                                      (long long)size);
    if (ftruncate(w->fd, 0) < 0)
        return fail_errno(w->cs, err, "truncate", w->ref);
    libcrypto.SHA256_Init(&w->sha);
    w->offset = w->hashed = w->snapped_at = w->written_back = w->synced_ahead = 0;
    w->has_snap = 0;
    w->updated_ns = clock_now_ns();
    save_hash(w);
    return 0;
}

static void
remove_ingest(const char *dir)
{
    static const char *const files[] = {"data", "ref", "total", "expected", "hash", "started"};
    char path[4200];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void
cs_writer_digest(berth_content_writer_t *w, char digest[BERTH_DIGEST_MAX])
{
    SHA256_CTX copy = w->sha;
    unsigned char d[SHA256_DIGEST_LENGTH];
    libcrypto.SHA256_Final(d, &copy);
    memcpy(digest, "sha256:", 7);
    hex_of(d, sizeof(d), digest + 7);
}

static int
cs_writer_commit(berth_content_writer_t *w, int64_t size, const char *expected,
                 char digest[BERTH_DIGEST_MAX], berth_error_t **err)
{
    cs_t *cs = w->cs;
    if (fsync(w->fd) < 0)
        return fail_errno(cs, err, "fsync ingest", w->ref);
    if (w->hashed != w->offset)
        return cs->api->error_make(err, BERTH_EINTERNAL,
                                   "commit of %s: %lld bytes hashed, %lld written", w->ref,
                                   (long long)w->hashed, (long long)w->offset);
    if (size > 0 && size != w->offset)
        return cs->api->error_make(err, BERTH_EPRECONDITION,
                                   "unexpected commit size %lld, expected %lld",
                                   (long long)w->offset, (long long)size);
    cs_writer_digest(w, digest);
    const char *want = expected && expected[0] ? expected : w->expected;
    if (want[0] && strcmp(want, digest) != 0)
        return cs->api->error_make(err, BERTH_EPRECONDITION,
                                   "unexpected commit digest %s, expected %s", digest, want);
    char target[4096], data[4200], blobs[4096];
    blob_path(cs, digest, target, sizeof(target), NULL);
    snprintf(data, sizeof(data), "%s/data", w->dir);
    if (access(target, F_OK) == 0) {
        remove_ingest(w->dir);
        return cs->api->error_make(err, BERTH_EEXIST, "content %s: already exists", digest);
    }
    if (fchmod(w->fd, 0444) < 0 || rename(data, target) < 0)
        return fail_errno(cs, err, "publish", target);
    snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", cs->root);
    int dfd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename survives a power cut too */
        fsync(dfd);
        close(dfd);
    }
    remove_ingest(w->dir);
    return 0;
}

static void
cs_writer_close(berth_content_writer_t *w)
{
    struct stat st;
    if (w->fd >= 0 && stat(w->dir, &st) == 0) {
        save_snapshot(w);
        if (w->hashed == w->offset && w->offset != w->saved_at)
            save_hash(w);
        /* the data file's mtime is the ingest's updated time when it is resumed or listed: make it
         * the last write's, not the moment the disk caught up */
        struct timespec ts[2] = {{0, UTIME_OMIT},
                                 {w->updated_ns / 1000000000, w->updated_ns % 1000000000}};
        futimens(w->fd, ts);
    }
    writer_free(w);
}

/* ---- ingests -------------------------------------------------------------------------------------- */

static int
status_of_dir(const char *dir, berth_ingest_status_t *out)
{
    memset(out, 0, sizeof(*out));
    if (read_small(dir, "ref", out->ref, sizeof(out->ref)) < 0)
        return -1;
    char buf[64], path[4200];
    if (read_small(dir, "total", buf, sizeof(buf)) == 0)
        out->total = atoll(buf);
    read_small(dir, "expected", out->expected, sizeof(out->expected));
    struct stat st;
    out->started_ns = out->updated_ns = started_of_dir(dir);
    snprintf(path, sizeof(path), "%s/data", dir);
    if (stat(path, &st) == 0) {
        out->offset = st.st_size;
        if (st.st_size > 0)
            out->updated_ns = mtime_ns(&st);
    }
    return 0;
}

static int
cs_ingest_status(void *arg, const char *ref, berth_ingest_status_t *out, berth_error_t **err)
{
    cs_t *cs = arg;
    char dir[4096];
    int rc = libcrypto_load(cs->api, err); /* ingests are found by the SHA-256 of their ref */
    if (rc < 0)
        return rc;
    ingest_dir(cs, ref, dir, sizeof(dir));
    if (status_of_dir(dir, out) < 0 || strcmp(out->ref, ref) != 0)
        return cs->api->error_make(err, BERTH_ENOTFOUND, "ref %s: not found", ref);
    return 0;
}

static int
cs_ingest_list(void *arg, int (*cb)(void *user, const berth_ingest_status_t *st), void *user,
               berth_error_t **err)
{
    cs_t *cs = arg;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/ingest", cs->root);
    DIR *d = opendir(dir);
    if (d == NULL)
        return fail_errno(cs, err, "open", dir);
    struct dirent *e;
    int stop = 0;
    while (!stop && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4400];
        berth_ingest_status_t st;
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        if (status_of_dir(sub, &st) == 0)
            stop = cb(user, &st);
    }
    closedir(d);
    return 0;
}

static int
cs_ingest_abort(void *arg, const char *ref, berth_error_t **err)
{
    cs_t *cs = arg;
    char dir[4096];
    berth_ingest_status_t st;
    int rc = cs_ingest_status(cs, ref, &st, err);
    if (rc < 0)
        return rc;
    if (is_locked(cs, ref))
        return cs->api->error_make(err, BERTH_EUNAVAILABLE, "ref %s locked: a writer is using it",
                                   ref);
    ingest_dir(cs, ref, dir, sizeof(dir));
    remove_ingest(dir);
    return 0;
}

const berth_content_v1_ops_t cs_ops = {
    .struct_size = sizeof(berth_content_v1_ops_t),
    .info = cs_info,
    .read_at = cs_read_at,
    .remove = cs_remove,
    .walk = cs_walk,
    .writer_open = cs_writer_open,
    .writer_status = cs_writer_status,
    .writer_write = cs_writer_write,
    .writer_truncate = cs_writer_truncate,
    .writer_commit = cs_writer_commit,
    .writer_close = cs_writer_close,
    .ingest_status = cs_ingest_status,
    .ingest_list = cs_ingest_list,
    .ingest_abort = cs_ingest_abort,
    .writer_hash = cs_writer_hash,
    .writer_append = cs_writer_append,
    .writer_digest = cs_writer_digest,
};

int
cs_open(cs_t *cs, const char *root, berth_error_t **err)
{
    cs->root = strdup(root);
    pthread_mutex_init(&cs->lock, NULL);
    pthread_mutex_init(&cs->sync_lock, NULL);
    pthread_cond_init(&cs->sync_cond, NULL);
    char path[4096];
    snprintf(path, sizeof(path), "%s/blobs/sha256", root);
    if (cs->api->mkdir_all(path, 0700, err) < 0)
        return BERTH_EIO;
    snprintf(path, sizeof(path), "%s/ingest", root);
    if (cs->api->mkdir_all(path, 0700, err) < 0)
        return BERTH_EIO;
    return 0;
}

void
cs_close(cs_t *cs)
{
    for (size_t i = 0; i < cs->nlocked; i++)
        free(cs->locked[i]);
    free(cs->locked);
    pthread_mutex_lock(&cs->sync_lock);
    cs->sync_stop = 1; /* the thread syncs what is queued, then ends */
    pthread_cond_signal(&cs->sync_cond);
    pthread_mutex_unlock(&cs->sync_lock);
    if (cs->sync_started)
        pthread_join(cs->sync_thread, NULL);
    pthread_cond_destroy(&cs->sync_cond);
    pthread_mutex_destroy(&cs->sync_lock);
    pthread_mutex_destroy(&cs->lock);
    free(cs->root);
}
