/* SPDX-License-Identifier: Apache-2.0 */
/* File-system chores several modules share. */
#ifndef BERTH_COMMON_FSUTIL_H
#define BERTH_COMMON_FSUTIL_H

/* Removes path and everything below it (symlinks as links, never followed). 0, or -1 with errno. */
int fs_remove_tree(const char *path);

#endif
