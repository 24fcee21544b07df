/* SPDX-License-Identifier: Apache-2.0 */
/* ImageImportStream -> ImageStore: an OCI or Docker archive read from the import stream. */
#include "transfer.h"

int
xfer_import(xjob_t *j, const struct Containerd__Types__Transfer__ImageImportStream *src,
            const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    return j->x->api->error_make(err, BERTH_ENOTIMPL, "import: not implemented");
}
