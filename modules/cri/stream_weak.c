/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Weak stand-ins for what the streaming server uses from the core (call.c, store.c, events.c), so the
 * module loads without them: each answers "not there"; the real, strong definitions replace them at link
 * time. And where a container's stdin FIFO is (container.c makes it).
 */
#include <stdio.h>

#include <sys/stat.h>

#include "container.h"
#include "cri.h"

__attribute__((weak)) int
cri_call(cri_t *c, cri_svc_id_t svc, const char *method, const ProtobufCMessage *req,
         const ProtobufCMessageDescriptor *out_desc, ProtobufCMessage **out, const char *lease,
         berth_error_t **err)
{
    (void)svc, (void)req, (void)out_desc, (void)out, (void)lease;
    return c->api->error_make(err, BERTH_ENOTIMPL, "%s: in-process calls are not there yet",
                              method);
}

__attribute__((weak)) int
cri_sandbox_find(cri_t *c, const char *id, cri_sandbox_t **out, berth_error_t **err)
{
    *out = NULL;
    return c->api->error_make(err, BERTH_ENOTFOUND, "pod sandbox %s: not found", id);
}

__attribute__((weak)) void
cri_sandbox_unref(cri_sandbox_t *s)
{
    (void)s;
}

__attribute__((weak)) int
cri_container_find(cri_t *c, const char *id, cri_container_t **out, berth_error_t **err)
{
    *out = NULL;
    return c->api->error_make(err, BERTH_ENOTFOUND, "container %s: not found", id);
}

__attribute__((weak)) void
cri_container_unref(cri_container_t *k)
{
    (void)k;
}

__attribute__((weak)) cri_exit_waiter_t *
cri_exit_wait_register(cri_t *c, const char *container_id, const char *exec_id)
{
    (void)c, (void)container_id, (void)exec_id;
    return NULL;
}

__attribute__((weak)) int
cri_exit_wait(cri_exit_waiter_t *w, int64_t timeout_ms, uint32_t *status, int64_t *exited_ns)
{
    (void)w, (void)timeout_ms, (void)exited_ns;
    *status = 255;
    return BERTH_ENOTIMPL;
}

__attribute__((weak)) void
cri_exit_wait_cancel(cri_exit_waiter_t *w)
{
    (void)w;
}

/* Where container.c's StartContainer makes the FIFO (make_stdin): <its state dir>/stdin. Weak, so
 * container.c may define the one answer itself. */
__attribute__((weak)) int
cri_container_stdin_path(cri_t *c, const char *container_id, char *out, size_t out_len)
{
    char dir[4096];
    struct stat st;
    snprintf(out, out_len, "%s/stdin", ctr_state_dir(c, container_id, dir, sizeof(dir)));
    if (stat(out, &st) < 0 || !S_ISFIFO(st.st_mode))
        return BERTH_ENOTFOUND;
    return 0;
}
