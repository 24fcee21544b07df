/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cri_call: a unary method of another module's containerd service, in process, in the k8s.io namespace,
 * as containerd's CRI calls its own services through its client. Streams (Tasks.Wait) are not callable
 * here: exits come from the /tasks/exit events (events.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri.h"

static const berth_grpc_method_t *
find_method(const berth_grpc_service_v1_t *ops, const char *method)
{
    for (size_t i = 0; ops && i < ops->n_methods; i++)
        if (strcmp(ops->methods[i].name, method) == 0)
            return &ops->methods[i];
    return NULL;
}

int
cri_call(cri_t *c, cri_svc_id_t svc, const char *method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, const char *lease,
         berth_error_t **err)
{
    const berth_core_api_t *api = c->api;
    if (out)
        *out = NULL;
    if ((int)svc < 0 || svc >= CRI_SVC_COUNT || c->svc[svc].ops == NULL)
        return api->error_make(err, BERTH_EINVAL, "service %d: not available", (int)svc);
    const berth_grpc_service_v1_t *ops = c->svc[svc].ops;
    const berth_grpc_method_t *m = find_method(ops, method);
    if (m == NULL || m->kind != BERTH_RPC_UNARY || m->unary == NULL)
        return api->error_make(err, BERTH_ENOTIMPL, "%s/%s: not callable in process", ops->name,
                               method);
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return api->error_make(err, BERTH_ENOMEM, "%s/%s: out of memory", ops->name, method);
    protobuf_c_message_pack(req, buf);
    /* the lease of the RPC this thread serves (if any) comes back after the call: the pointer itself,
     * which its transport keeps for the whole call (a copy in this frame would dangle once we return,
     * and the next call here would read it: a CRI init run inside an inline handler did) */
    const char *saved = api->call_lease();
    api->call_set_lease(lease && *lease ? lease : NULL);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = m->unary(c->svc[svc].instance, CRI_NAMESPACE, buf, len, &resp, &resp_len, err);
    api->call_set_lease(saved && saved[0] ? saved : NULL);
    free(buf);
    if (rc < 0) {
        api->free(resp);
        return rc;
    }
    if (out && out_desc) {
        *out = protobuf_c_message_unpack(out_desc, NULL, resp_len, resp ? resp : (uint8_t *)"");
        if (*out == NULL) {
            api->free(resp);
            return api->error_make(err, BERTH_EINTERNAL, "%s/%s: the answer does not unpack",
                                   ops->name, method);
        }
    }
    api->free(resp);
    return 0;
}
