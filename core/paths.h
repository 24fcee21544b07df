/* SPDX-License-Identifier: Apache-2.0 */
/* Path helpers with the safety rules of brief §7: created modes are explicit, client paths stay beneath. */
#ifndef BERTH_CORE_PATHS_H
#define BERTH_CORE_PATHS_H

#include <berth/error.h>

/* mkdir -p; components it creates get `mode`; an existing non-directory is BERTH_EEXIST. */
int berth__mkdir_all(const char *path, unsigned mode, berth_error_t **err);
/* Opens `rel` beneath `dirfd`: no "..", no absolute path, no symlink leaving the directory. */
int berth__open_beneath(int dirfd, const char *rel, int flags, unsigned mode, berth_error_t **err);
/* Directory of the running executable (from /proc/self/exe); caller frees. */
char *berth__exe_dir(void);
/* Copies a regular file (mode 0700), replacing `to`. */
int berth__copy_file(const char *from, const char *to, berth_error_t **err);

#endif
