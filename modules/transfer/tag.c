/* SPDX-License-Identifier: Apache-2.0 */
/* ImageStore -> ImageStore: a new name for a stored image. */
#include "transfer.h"

int
xfer_tag(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
         const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    return j->x->api->error_make(err, BERTH_ENOTIMPL, "tag: not implemented");
}
