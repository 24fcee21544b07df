/* SPDX-License-Identifier: Apache-2.0 */
#ifndef BERTH_CRI_USERFILES_H
#define BERTH_CRI_USERFILES_H
#include <stddef.h>

/* Copies etc/passwd and etc/group of the snapshot whose one mount is (type, source, options) into dir/passwd
 * and dir/group, looked up through its layers as overlayfs would (the first regular file, top layer first; a
 * whiteout or an opaque etc ends the search: no file). A bind's source is one layer; an overlay's upperdir
 * and lowerdirs are the layers. -1 when the mount or the layers hold what this does not follow (another
 * kind of mount, an option that changes lookups, a symlink or a non-directory etc): mount it then. */
int cri_user_files_from_layers(const char *type, const char *source, const char *const *options,
                               size_t n_options, const char *dir);

#endif
