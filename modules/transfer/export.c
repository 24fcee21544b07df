/* SPDX-License-Identifier: Apache-2.0 */
/* ImageStore -> ImageExportStream: an OCI archive written to the export stream. */
#include "transfer.h"

int
xfer_export(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
            const struct Containerd__Types__Transfer__ImageExportStream *dst, berth_error_t **err)
{
    return j->x->api->error_make(err, BERTH_ENOTIMPL, "export: not implemented");
}
