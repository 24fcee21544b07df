/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every RPC handler of cri.h, weakly, as Unimplemented: the part that implements a method defines it
 * strongly and the linker takes that one. What is still a stub answers with the method's name.
 */
#include "cri.h"

#define CRI_STUB(name)                                                                             \
    __attribute__((weak)) int cri_rpc_##name(void *user, const char *namespace_,                   \
                                             const uint8_t *req, size_t req_len, uint8_t **resp,   \
                                             size_t *resp_len, berth_error_t **err)                \
    {                                                                                              \
        cri_t *c = user;                                                                           \
        (void)namespace_, (void)req, (void)req_len, (void)resp, (void)resp_len;                    \
        return c->api->error_make(err, BERTH_ENOTIMPL, "%s: not implemented by berth yet", #name); \
    }
CRI_HANDLERS(CRI_STUB)

/* the parts' entry points, until each lands */
__attribute__((weak)) int
cri_store_open(cri_t *c, berth_error_t **err)
{
    (void)c, (void)err;
    return 0;
}

__attribute__((weak)) void
cri_store_close(cri_t *c)
{
    (void)c;
}

__attribute__((weak)) int
cri_events_start(cri_t *c, berth_error_t **err)
{
    (void)c, (void)err;
    return 0;
}

__attribute__((weak)) void
cri_events_stop(cri_t *c)
{
    (void)c;
}

__attribute__((weak)) int
cri_events_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                const uint8_t *req, size_t req_len, berth_error_t **err)
{
    cri_t *c = instance;
    (void)sapi, (void)st, (void)req, (void)req_len;
    return c->api->error_make(err, BERTH_ENOTIMPL,
                              "GetContainerEvents: not implemented by berth yet");
}

__attribute__((weak)) void
cri_events_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    (void)instance, (void)sapi, (void)st;
}

__attribute__((weak)) int
cri_stream_server_start(cri_t *c, berth_error_t **err)
{
    (void)c, (void)err;
    return 0;
}

__attribute__((weak)) void
cri_stream_server_stop(cri_t *c)
{
    (void)c;
}
