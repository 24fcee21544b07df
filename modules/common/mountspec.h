/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container label io.berth.volumes: comma-separated entries, each
 *     name:/container/path[:ro|:rw]        a named volume (the first part has no '/')
 *     /host/path:/container/path[:ro|:rw]  a bind of a host path (the allow-list decides at task create)
 * and the volume-name rule of abi/berth/volume.h. Shared by the volumes module (references) and the runtime
 * (bind mounts at task create); plain C, no module API, so both link it.
 */
#ifndef BERTH_MODULES_MOUNTSPEC_H
#define BERTH_MODULES_MOUNTSPEC_H

#include <stddef.h>

#define MOUNTSPEC_LABEL "io.berth.volumes"

typedef enum mountspec_kind {
    MOUNTSPEC_VOLUME = 1, /* source is a volume name */
    MOUNTSPEC_BIND =
        2 /* source is an absolute host path (as written; the allow-list resolves it) */
} mountspec_kind_t;

typedef struct mountspec_entry {
    mountspec_kind_t kind;
    char *source;
    char *
        destination; /* absolute, cleaned: no "//", no trailing '/', no "." components; never "/" */
    int readonly;    /* 1 for ":ro"; ":rw" and no mode give 0 */
} mountspec_entry_t;

typedef struct mountspec {
    size_t n;
    mountspec_entry_t *entries;
} mountspec_t;

/*
 * Parses a label value into *out (zeroed first; free with mountspec_free, also after an error). 0, or -1
 * with errbuf naming the bad entry and why, e.g.
 *     entry 2 "data:tmp": destination "tmp" is not an absolute path
 * An empty or all-blank value gives 0 entries. Blanks around entries are ignored. Refused: empty entries or
 * parts, more than three parts, a mode other than ro/rw, a relative host path or destination, destination
 * "/" or with a ".." component, a bad volume name, two entries with the same (cleaned) destination.
 */
int mountspec_parse(const char *value, mountspec_t *out, char *errbuf, size_t errlen);
void mountspec_free(mountspec_t *ms);

/* 1 when the label value names volume `name` (a valid value only; an invalid one names nothing). */
int mountspec_names_volume(const char *value, const char *name);

/*
 * The volume-name rule (abi/berth/volume.h): 1..BERTH_VOLUME_NAME_MAX bytes of [A-Za-z0-9_.-], not starting
 * with '.' or '-'. 0, or -1 with errbuf saying why, e.g.
 *     volume name ".." is invalid: it must not start with '.' or '-'
 */
int mountspec_volume_name_check(const char *name, char *errbuf, size_t errlen);

#endif
