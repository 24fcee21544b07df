/* SPDX-License-Identifier: Apache-2.0 */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
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
