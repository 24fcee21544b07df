/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image's etc/passwd and etc/group for CreateContainer (user names, supplementary groups), read from the
 * snapshot's layer directories as overlayfs would find them, without mounting the snapshot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "userfiles.h"

/* A mount and its lazy unmount cost CreateContainer most of its time (the unmount waits for the kernel's RCU
 * grace periods, long on a busy machine); the files are found in the layers as overlayfs would find them.
 * Layer dirs, top first, from the snapshot's one mount: a bind's source, or overlay's upperdir then its
 * lowerdirs. 0 when the mount is one of these, its dirs in `buf`. */
static int
snapshot_layers(const char *type, const char *source, const char *const *options, size_t n_options,
                char **dirs, size_t max, size_t *n, char *buf, size_t len)
{
    *n = 0;
    if (strcmp(type, "bind") == 0 || strcmp(type, "rbind") == 0) {
        snprintf(buf, len, "%s", source);
        dirs[(*n)++] = buf;
        return 0;
    }
    if (strcmp(type, "overlay") != 0)
        return -1;
    const char *upper = NULL, *lower = NULL;
    for (size_t i = 0; i < n_options; i++) {
        if (strncmp(options[i], "upperdir=", 9) == 0)
            upper = options[i] + 9;
        else if (strncmp(options[i], "lowerdir=", 9) == 0)
            lower = options[i] + 9;
        else if (strncmp(options[i], "workdir=", 8) != 0 && strcmp(options[i], "rw") != 0 &&
                 strcmp(options[i], "ro") != 0)
            return -1; /* an option that may change lookups (userxattr, redirect_dir, ...) */
    }
    if (lower == NULL || strchr(lower, '\\') != NULL)
        return -1; /* escaped colons: leave those to the kernel */
    snprintf(buf, len, "%s%s%s", upper ? upper : "", upper ? ":" : "", lower);
    for (char *p = buf; *n < max;) {
        dirs[(*n)++] = p;
        char *colon = strchr(p, ':');
        if (colon == NULL)
            break;
        *colon = '\0';
        p = colon + 1;
    }
    return 0;
}

static int
whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* overlayfs's lookup of etc/<name> through the layers: the first regular file wins; a whiteout of either
 * part or an opaque etc ends the search (nothing). -1 when the layers hold what this does not follow (a
 * symlink, a non-directory etc): the caller mounts then. */
static int
layered_copy(const char *const *dirs, size_t n, const char *name, const char *to)
{
    char p[4400], v[4];
    struct stat st;
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/etc", dirs[i]);
        if (lstat(p, &st) < 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        if (whiteout(&st))
            return 0;
        if (!S_ISDIR(st.st_mode))
            return -1;
        snprintf(p, sizeof(p), "%s/etc/%s", dirs[i], name);
        if (lstat(p, &st) == 0) {
            if (whiteout(&st))
                return 0;
            if (!S_ISREG(st.st_mode))
                return -1;
            int in = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            char buf[65536];
            ssize_t got;
            size_t total = 0;
            while (out >= 0 && (got = read(in, buf, sizeof(buf))) > 0 && total < (4u << 20)) {
                if (write(out, buf, (size_t)got) != got)
                    break;
                total += (size_t)got;
            }
            if (out >= 0)
                close(out);
            if (in >= 0)
                close(in);
            return in < 0 ? -1 : 0;
        }
        if (errno != ENOENT)
            return -1;
        snprintf(p, sizeof(p), "%s/etc", dirs[i]);
        if (getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y')
            return 0;
    }
    return 0;
}

int
cri_user_files_from_layers(const char *type, const char *source, const char *const *options,
                           size_t n_options, const char *dir)
{
    char *layers[128], buf[65536], pw[4200], gr[4200];
    size_t nl = 0;
    if (type == NULL || source == NULL ||
        snapshot_layers(type, source, options, n_options, layers, 128, &nl, buf, sizeof(buf)) < 0 ||
        nl == 0 || nl == 128)
        return -1;
    snprintf(pw, sizeof(pw), "%s/passwd", dir);
    snprintf(gr, sizeof(gr), "%s/group", dir);
    if (layered_copy((const char *const *)layers, nl, "passwd", pw) < 0 ||
        layered_copy((const char *const *)layers, nl, "group", gr) < 0) {
        unlink(pw);
        unlink(gr);
        return -1;
    }
    return 0;
}
