/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd.services.content.v1.Content: the namespace's view from the metadata module, the bytes from the
 * content store. Disk and LMDB work runs on the thread pool; streams (List, Read, Write) hop to the pool
 * for each step and back to the loop to send, one step at a time per stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/content.h>
#include <berth/metadata.h>

#include "rpc.h"
#include "filters.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "svc.h"
#include "clock.h"

#define READ_CHUNK (1 << 20)
#define READ_BACKLOG (4 << 20)   /* queued response bytes before Read waits for the client */
#define WRITE_BACKLOG (64 << 20) /* queued request bytes before Write gives up on the client */

typedef Containerd__Services__Content__V1__Info info_pb_t;

/* An Info message owning copies of everything (free with protobuf_c_message_free_unpacked). */
Containerd__Services__Content__V1__Info *
content_info_pb_new(svc_t *s, const char *digest, const berth_content_record_t *r)
{
    info_pb_t *pb = malloc(sizeof(*pb));
    containerd__services__content__v1__info__init(pb);
    pb->digest = strdup(digest);
    pb->size = r->size;
    pb->created_at = malloc(sizeof(*pb->created_at));
    pb->updated_at = malloc(sizeof(*pb->updated_at));
    clock_set_ts(pb->created_at, r->created_ns);
    clock_set_ts(pb->updated_at, r->updated_ns);
    pb->n_labels = s->api->kv_size(r->labels);
    pb->labels = calloc(pb->n_labels + 1, sizeof(*pb->labels));
    for (size_t i = 0; i < pb->n_labels; i++) {
        pb->labels[i] = malloc(sizeof(*pb->labels[i]));
        containerd__services__content__v1__info__labels_entry__init(pb->labels[i]);
        pb->labels[i]->key = strdup(s->api->kv_key_at(r->labels, i));
        pb->labels[i]->value = strdup(s->api->kv_value_at(r->labels, i));
    }
    return pb;
}

static int
bad_request(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static int
check_digest(svc_t *s, const char *digest, berth_error_t **err)
{
    if (!cs_valid_digest(digest))
        return s->api->error_make(err, BERTH_EINVAL,
                                  "invalid digest %s: want sha256:<64 hex digits>", digest);
    return 0;
}

/* The namespace's record of a blob, as an InfoResponse/UpdateResponse (both {Info info = 1;}). */
static int
respond_info(svc_t *s, const char *ns, const char *digest, const ProtobufCMessageDescriptor *d,
             uint8_t **resp, size_t *len, berth_error_t **err)
{
    berth_kv_t *labels = s->api->kv_new();
    berth_content_record_t rec;
    int rc = s->mdo->content_get(s->md, ns, digest, &rec, labels, err);
    if (rc == 0) {
        struct {
            ProtobufCMessage base;
            info_pb_t *info;
        } out = {PROTOBUF_C_MESSAGE_INIT(d), content_info_pb_new(s, digest, &rec)};
        pack(&out.base, resp, len);
        protobuf_c_message_free_unpacked(&out.info->base, NULL);
    }
    s->api->kv_free(labels);
    return rc;
}

static int
info_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__InfoRequest *r =
        containerd__services__content__v1__info_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "InfoRequest", err);
    int rc = check_digest(s, r->digest, err);
    if (rc == 0)
        rc = respond_info(s, ns, r->digest,
                          &containerd__services__content__v1__info_response__descriptor, resp,
                          resp_len, err);
    containerd__services__content__v1__info_request__free_unpacked(r, NULL);
    return rc;
}

/* containerd: field paths "labels" (replace all) and "labels.<key>"; no mask replaces the labels. */
static int
update_labels(svc_t *s, const char *ns, const Containerd__Services__Content__V1__UpdateRequest *r,
              berth_error_t **err)
{
    const info_pb_t *in = r->info;
    berth_kv_t *want = s->api->kv_new(), *now = s->api->kv_new();
    for (size_t i = 0; i < in->n_labels; i++)
        s->api->kv_set(want, in->labels[i]->key, in->labels[i]->value);
    berth_content_record_t rec;
    int rc = s->mdo->content_get(s->md, ns, in->digest, &rec, now, err);
    int replace = r->update_mask == NULL || r->update_mask->n_paths == 0;
    for (size_t i = 0; rc == 0 && !replace && i < r->update_mask->n_paths; i++) {
        const char *p = r->update_mask->paths[i];
        if (strcmp(p, "labels") == 0) {
            replace = 1;
        } else if (strncmp(p, "labels.", 7) == 0) {
            const char *v = s->api->kv_get(want, p + 7);
            if (v && v[0])
                s->api->kv_set(now, p + 7, v);
            else
                s->api->kv_unset(now, p + 7);
        } else {
            rc = s->api->error_make(err, BERTH_EINVAL, "cannot update %s field on content info %s",
                                    p, in->digest);
        }
    }
    if (rc == 0)
        rc = s->mdo->content_set_labels(s->md, ns, in->digest, replace ? want : now, err);
    s->api->kv_free(want);
    s->api->kv_free(now);
    return rc;
}

static int
update_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__UpdateRequest *r =
        containerd__services__content__v1__update_request__unpack(NULL, len, req);
    if (r == NULL || r->info == NULL) {
        if (r)
            containerd__services__content__v1__update_request__free_unpacked(r, NULL);
        return bad_request(s, "UpdateRequest", err);
    }
    int rc = check_digest(s, r->info->digest, err);
    if (rc == 0)
        rc = update_labels(s, ns, r, err);
    if (rc == 0)
        rc = respond_info(s, ns, r->info->digest,
                          &containerd__services__content__v1__update_response__descriptor, resp,
                          resp_len, err);
    containerd__services__content__v1__update_request__free_unpacked(r, NULL);
    return rc;
}

static int
delete_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__DeleteContentRequest *r =
        containerd__services__content__v1__delete_content_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "DeleteContentRequest", err);
    int rc = check_digest(s, r->digest, err);
    if (rc == 0)
        rc = s->mdo->content_delete(s->md, ns, r->digest, err);
    /* the last namespace let go: the bytes go too (garbage collection will take this over) */
    if (rc == 0 && s->mdo->content_held(s->md, r->digest, NULL) == 0)
        s->cso->remove(s->cs, r->digest, NULL);
    containerd__services__content__v1__delete_content_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- ingests: refs are kept per namespace as "<ns>/<ref>" in the store ----------------------------- */

static void
store_ref(char *out, size_t len, const char *ns, const char *ref)
{
    snprintf(out, len, "%s/%s", ns, ref);
}

static Containerd__Services__Content__V1__Status *
status_pb_new(const berth_ingest_status_t *st, size_t ns_len)
{
    Containerd__Services__Content__V1__Status *pb = malloc(sizeof(*pb));
    containerd__services__content__v1__status__init(pb);
    pb->started_at = malloc(sizeof(*pb->started_at));
    pb->updated_at = malloc(sizeof(*pb->updated_at));
    clock_set_ts(pb->started_at, st->started_ns);
    clock_set_ts(pb->updated_at, st->updated_ns);
    pb->ref = strdup(st->ref + ns_len + 1);
    pb->offset = st->offset;
    pb->total = st->total;
    pb->expected = strdup(st->expected);
    return pb;
}

static int
status_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__StatusRequest *r =
        containerd__services__content__v1__status_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "StatusRequest", err);
    char ref[1024];
    store_ref(ref, sizeof(ref), ns, r->ref);
    berth_ingest_status_t st;
    int rc = s->cso->ingest_status(s->cs, ref, &st, err);
    if (rc == 0) {
        Containerd__Services__Content__V1__StatusResponse out =
            CONTAINERD__SERVICES__CONTENT__V1__STATUS_RESPONSE__INIT;
        out.status = status_pb_new(&st, strlen(ns));
        pack(&out.base, resp, resp_len);
        protobuf_c_message_free_unpacked(&out.status->base, NULL);
    } else if (rc == BERTH_ENOTFOUND) {
        s->api->error_free(*err);
        *err = NULL;
        rc = s->api->error_make(err, BERTH_ENOTFOUND, "ref %s: not found", r->ref);
    }
    containerd__services__content__v1__status_request__free_unpacked(r, NULL);
    return rc;
}

typedef struct statuses {
    const char *ns;
    filters_t *filters;
    Containerd__Services__Content__V1__Status **items;
    size_t n;
} statuses_t;

static const char *
status_field(void *object, const char *const *path, int npath)
{
    const char *ref = object;
    return npath == 1 && strcmp(path[0], "ref") == 0 ? ref : NULL;
}

static int
collect_status(void *user, const berth_ingest_status_t *st)
{
    statuses_t *l = user;
    size_t nl = strlen(l->ns);
    if (strncmp(st->ref, l->ns, nl) != 0 || st->ref[nl] != '/')
        return 0;
    if (!filters_match(l->filters, status_field, (void *)(st->ref + nl + 1)))
        return 0;
    l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n++] = status_pb_new(st, nl);
    return 0;
}

static int
list_statuses_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
                   size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__ListStatusesRequest *r =
        containerd__services__content__v1__list_statuses_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "ListStatusesRequest", err);
    statuses_t l = {.ns = ns};
    char msg[512];
    int rc = filters_parse_n((const char *const *)r->filters, r->n_filters, &l.filters, msg,
                             sizeof(msg));
    containerd__services__content__v1__list_statuses_request__free_unpacked(r, NULL);
    if (rc < 0)
        return s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    rc = s->cso->ingest_list(s->cs, collect_status, &l, err);
    if (rc == 0) {
        Containerd__Services__Content__V1__ListStatusesResponse out =
            CONTAINERD__SERVICES__CONTENT__V1__LIST_STATUSES_RESPONSE__INIT;
        out.statuses = l.items;
        out.n_statuses = l.n;
        pack(&out.base, resp, resp_len);
    }
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.items[i]->base, NULL);
    free(l.items);
    filters_free(l.filters);
    return rc;
}

static int
abort_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Containerd__Services__Content__V1__AbortRequest *r =
        containerd__services__content__v1__abort_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad_request(s, "AbortRequest", err);
    char ref[1024];
    store_ref(ref, sizeof(ref), ns, r->ref);
    svc_release_wait_t rw;
    svc_release_begin_wait(s, &rw);
    int rc = s->cso->ingest_abort(s->cs, ref, err);
    /* its stream may have ended a moment ago */
    while (rc == BERTH_EUNAVAILABLE && svc_release_wait(s, ref, &rw)) {
        if (err && *err)
            s->api->error_free(*err);
        if (err)
            *err = NULL;
        rc = s->cso->ingest_abort(s->cs, ref, err);
    }
    containerd__services__content__v1__abort_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- the table ------------------------------------------------------------------------------------ */

static const berth_grpc_method_t content_methods[] = {
    NS_UNARY("Info", info_call),
    NS_UNARY("Update", update_call),
    {.name = "List",
     .kind = BERTH_RPC_SERVER_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = content_list_open,
     .closed = content_stream_closed},
    NS_UNARY("Delete", delete_call),
    {.name = "Read",
     .kind = BERTH_RPC_SERVER_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = content_read_open,
     .closed = content_stream_closed},
    NS_UNARY("Status", status_call),
    NS_UNARY("ListStatuses", list_statuses_call),
    {.name = "Write",
     .kind = BERTH_RPC_BIDI_STREAM,
     .flags = BERTH_RPC_NAMESPACED,
     .open = content_write_open,
     .message = content_write_message,
     .end_of_input = content_write_end,
     .closed = content_stream_closed},
    NS_UNARY("Abort", abort_call),
};

const berth_grpc_service_v1_t content_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "containerd.services.content.v1.Content",
    .methods = content_methods,
    .n_methods = sizeof(content_methods) / sizeof(content_methods[0]),
};
