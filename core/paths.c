/* SPDX-License-Identifier: Apache-2.0 */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "error.h"
#include "util.h"

int
berth__mkdir_all(const char *path, unsigned mode, berth_error_t **err)
{
    if (path == NULL || path[0] == '\0')
        return berth__error_make(err, BERTH_EINVAL, "mkdir: empty path");
    struct stat
        existing; /* the common case at every start: one call instead of one per component */
    if (stat(path, &existing) == 0 && S_ISDIR(existing.st_mode))
        return 0;
    cleanup_free char *p = berth__xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) == 0) {
            /* umask must not weaken or widen what the caller asked for */
            if (chmod(p, mode) < 0)
                return berth__error_make(err, berth__error_from_errno(errno), "chmod `%s`: %s", p,
                                         strerror(errno));
        } else if (errno != EEXIST) {
            return berth__error_make(err, berth__error_from_errno(errno), "mkdir `%s`: %s", p,
                                     strerror(errno));
        } else {
            struct stat st;
            if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                return berth__error_make(err, BERTH_EEXIST,
                                         "mkdir `%s`: exists and is not a directory", p);
        }
        *s = saved;
        if (saved == '\0')
            break;
        while (s[1] == '/')
            s++;
        if (s[1] == '\0')
            break;
    }
    return 0;
}

int
berth__open_beneath(int dirfd, const char *rel, int flags, unsigned mode, berth_error_t **err)
{
    if (rel == NULL || rel[0] == '/')
        return berth__error_make(err, BERTH_EINVAL, "path `%s` must be relative",
                                 rel ? rel : "(null)");
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0) {
        int e = errno;
        if (e == EXDEV)
            return berth__error_make(err, BERTH_EINVAL, "path `%s` escapes its directory", rel);
        return berth__error_make(err, berth__error_from_errno(e), "open `%s`: %s", rel,
                                 strerror(e));
    }
    return (int)fd;
}

char *
berth__exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    return berth__xstrdup(buf[0] ? buf : "/");
}

int
berth__copy_file(const char *from, const char *to, berth_error_t **err)
{
    cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return berth__error_make(err, berth__error_from_errno(errno), "open %s: %s", from,
                                 strerror(errno));
    struct stat st;
    if (fstat(in, &st) < 0)
        return berth__error_make(err, BERTH_EIO, "stat %s: %s", from, strerror(errno));
    cleanup_close int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (out < 0)
        return berth__error_make(err, berth__error_from_errno(errno), "create %s: %s", to,
                                 strerror(errno));
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = sendfile(out, in, NULL, (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return berth__error_make(err, BERTH_EIO, "copy %s to %s: %s", from, to,
                                     n < 0 ? strerror(errno) : "file shrank");
        left -= n;
    }
    return 0;
}
