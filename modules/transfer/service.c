/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.transfer.v1.Transfer: one unary call per transfer, dispatched on the type URLs of its
 * source and destination as containerd's local transferrer (core/transfer/local/transfer.go) does. The
 * call's pool thread runs the whole transfer.
 */
#include <stdlib.h>
#include <string.h>

#include "lib_archive.h"
#include "lib_crypto.h"
#include "lib_curl.h"
#include "transfer.h"
#include "google/protobuf/empty.pb-c.h"
#include "services/transfer/v1/transfer.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"
#include "types/transfer/registry.pb-c.h"

#define T_REGISTRY "containerd.types.transfer.OCIRegistry"
#define T_STORE "containerd.types.transfer.ImageStore"
#define T_IMPORT "containerd.types.transfer.ImageImportStream"
#define T_EXPORT "containerd.types.transfer.ImageExportStream"

typedef Containerd__Types__Transfer__OCIRegistry registry_pb_t;
typedef Containerd__Types__Transfer__ImageStore store_pb_t;
typedef Containerd__Types__Transfer__ImageImportStream import_pb_t;
typedef Containerd__Types__Transfer__ImageExportStream export_pb_t;

/* typeurl accepts a "type.googleapis.com/" style prefix; containerd's own clients send none */
static const char *
bare_type(const char *url)
{
    const char *slash = strrchr(url, '/');
    return slash ? slash + 1 : url;
}

static int
is(const Google__Protobuf__Any *a, const char *type)
{
    return a && strcmp(bare_type(a->type_url), type) == 0;
}

/* An object of the request, decoded; InvalidArgument naming it when it does not decode. */
static void *
decode(const berth_core_api_t *api, const Google__Protobuf__Any *a,
       const ProtobufCMessageDescriptor *d, berth_error_t **err)
{
    void *m = protobuf_c_message_unpack(d, NULL, a->value.len, a->value.data);
    if (m == NULL)
        api->error_make(err, BERTH_EINVAL, "%s: does not decode", a->type_url);
    return m;
}

static int
unimplemented(const berth_core_api_t *api, const Google__Protobuf__Any *src,
              const Google__Protobuf__Any *dst, berth_error_t **err)
{
    return api->error_make(err, BERTH_ENOTIMPL, "unable to transfer from %s to %s: not implemented",
                           src ? src->type_url : "<nil>", dst ? dst->type_url : "<nil>");
}

/* ImageImportStream -> ImageExportStream: the bytes as they are (containerd's echo). */
static int
xfer_echo(xjob_t *j, const import_pb_t *src, const export_pb_t *dst, berth_error_t **err)
{
    xfer_t *x = j->x;
    xstream_t *in = NULL, *out = NULL;
    int rc = streams_take(x->streams, j->ns, src->stream, 10000, &in, err);
    if (rc == 0)
        rc = streams_take(x->streams, j->ns, dst->stream, 10000, &out, err);
    uint8_t *buf = malloc(32 * 1024);
    for (size_t got = 1; rc == 0 && got > 0;) {
        rc = xstream_read(in, buf, 32 * 1024, &got, err);
        if (rc == 0 && got > 0)
            rc = xstream_write(out, buf, got, err);
    }
    if (rc == 0)
        rc = xstream_write_end(out, 60000, err);
    free(buf);
    if (in) {
        xstream_close(in);
        xstream_release(in);
    }
    if (out) {
        xstream_close(out);
        xstream_release(out);
    }
    return rc;
}

/* The libraries an operation calls, opened by its first use (lazylib.h): libcrypto for digests, libarchive
 * for tar streams, libcurl for registries */
enum { NEEDS_ARCHIVE = 1, NEEDS_CURL = 2 };
static int
open_libs(const berth_core_api_t *api, int needs, berth_error_t **err)
{
    int rc = libcrypto_load(api, err);
    if (rc == 0 && (needs & NEEDS_ARCHIVE))
        rc = libarchive_load(api, err);
    if (rc == 0 && (needs & NEEDS_CURL))
        rc = libcurl_load(api, err);
    return rc;
}

#define DECODE(var, any, desc)                                 \
    do {                                                       \
        if ((var = decode(x->api, any, &(desc), err)) == NULL) \
            goto out;                                          \
    } while (0)

static int
dispatch(xjob_t *j, const Google__Protobuf__Any *src, const Google__Protobuf__Any *dst,
         berth_error_t **err)
{
    xfer_t *x = j->x;
    void *s = NULL, *d = NULL;
    int rc = BERTH_EINVAL;
    if (is(src, T_REGISTRY) && is(dst, T_STORE)) {
        DECODE(s, src, containerd__types__transfer__ociregistry__descriptor);
        DECODE(d, dst, containerd__types__transfer__image_store__descriptor);
        if ((rc = open_libs(x->api, NEEDS_CURL, err)) == 0)
            rc = xfer_pull(j, s, d, err);
    } else if (is(src, T_STORE) && is(dst, T_REGISTRY)) {
        DECODE(s, src, containerd__types__transfer__image_store__descriptor);
        DECODE(d, dst, containerd__types__transfer__ociregistry__descriptor);
        if ((rc = open_libs(x->api, NEEDS_CURL, err)) == 0)
            rc = xfer_push(j, s, d, err);
    } else if (is(src, T_STORE) && is(dst, T_EXPORT)) {
        DECODE(s, src, containerd__types__transfer__image_store__descriptor);
        DECODE(d, dst, containerd__types__transfer__image_export_stream__descriptor);
        if ((rc = open_libs(x->api, NEEDS_ARCHIVE, err)) == 0)
            rc = xfer_export(j, s, d, err);
    } else if (is(src, T_STORE) && is(dst, T_STORE)) {
        DECODE(s, src, containerd__types__transfer__image_store__descriptor);
        DECODE(d, dst, containerd__types__transfer__image_store__descriptor);
        if ((rc = open_libs(x->api, 0, err)) == 0)
            rc = xfer_tag(j, s, d, err);
    } else if (is(src, T_IMPORT) && is(dst, T_STORE)) {
        DECODE(s, src, containerd__types__transfer__image_import_stream__descriptor);
        DECODE(d, dst, containerd__types__transfer__image_store__descriptor);
        if ((rc = open_libs(x->api, NEEDS_ARCHIVE, err)) == 0)
            rc = xfer_import(j, s, d, err);
    } else if (is(src, T_IMPORT) && is(dst, T_EXPORT)) {
        DECODE(s, src, containerd__types__transfer__image_import_stream__descriptor);
        DECODE(d, dst, containerd__types__transfer__image_export_stream__descriptor);
        rc = xfer_echo(j, s, d, err);
    } else {
        rc = unimplemented(x->api, src, dst, err);
    }
out:
    if (s)
        protobuf_c_message_free_unpacked(s, NULL);
    if (d)
        protobuf_c_message_free_unpacked(d, NULL);
    return rc;
}

static int
transfer_call(void *user, const char *ns, const uint8_t *req, size_t req_len, uint8_t **resp,
              size_t *resp_len, berth_error_t **err)
{
    xfer_t *x = user;
    Containerd__Services__Transfer__V1__TransferRequest *r =
        containerd__services__transfer__v1__transfer_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return x->api->error_make(err, BERTH_EINVAL, "request is not a valid TransferRequest");
    int rc;
    if (r->source == NULL || r->destination == NULL) {
        rc = unimplemented(x->api, r->source, r->destination, err);
    } else {
        xjob_t j;
        const char *progress = r->options ? r->options->progress_stream : NULL;
        rc = job_begin(x, ns, progress, &j, err);
        if (rc == 0) {
            rc = dispatch(&j, r->source, r->destination, err);
            job_end(&j);
        }
    }
    containerd__services__transfer__v1__transfer_request__free_unpacked(r, NULL);
    /* OpenSSL (under libcurl's TLS) keeps per-thread state on this pool thread, which outlives nothing
     * that frees it: let go of it with the transfer */
    if (libcrypto_loaded())
        libcrypto.OPENSSL_thread_stop();
    if (rc < 0)
        return rc;
    Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
    *resp_len = google__protobuf__empty__get_packed_size(&e);
    *resp = malloc(1);
    return 0;
}

static const berth_grpc_method_t transfer_methods[] = {
    {.name = "Transfer",
     .kind = BERTH_RPC_UNARY,
     .flags = BERTH_RPC_NAMESPACED,
     .unary = transfer_call},
};

const berth_grpc_service_v1_t transfer_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.transfer.v1.Transfer",
    .methods = transfer_methods,
    .n_methods = 1,
};
