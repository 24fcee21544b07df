/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One transfer: its lease (containerd's withLease: the call's own lease when it names one, else a new one
 * that expires after 24 hours and is deleted at the end), its progress stream, and calls into the Images
 * and Snapshots services in process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "transfer.h"
#include "types/transfer/progress.pb-c.h"

#define LEASE_TTL_S (24 * 60 * 60)
/* the client registers its streams before it calls Transfer: this only covers a slow registration */
#define STREAM_WAIT_MS 10000

static int
lease_new(xjob_t *j, berth_error_t **err)
{
    xfer_t *x = j->x;
    uint8_t rnd[12];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return x->api->error_make(err, BERTH_EINTERNAL, "no random bytes for a lease id");
    int n = snprintf(j->lease, sizeof(j->lease), "transfer-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        n += snprintf(j->lease + n, sizeof(j->lease) - (size_t)n, "%02x", rnd[i]);
    char expire[64];
    time_t t = time(NULL) + LEASE_TTL_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(expire, sizeof(expire), "%Y-%m-%dT%H:%M:%SZ", &tm);
    berth_kv_t *labels = x->api->kv_new();
    x->api->kv_set(labels, "containerd.io/gc.expire", expire);
    int64_t created;
    int rc = x->mdo->lease_create(x->md, j->ns, j->lease, labels, &created, err);
    x->api->kv_free(labels);
    if (rc == 0)
        j->lease_owned = 1;
    return rc;
}

int
job_begin(xfer_t *x, const char *ns, const char *progress_stream, xjob_t *j, berth_error_t **err)
{
    memset(j, 0, sizeof(*j));
    j->x = x;
    pthread_mutex_init(&j->progress_lock, NULL);
    snprintf(j->ns, sizeof(j->ns), "%s", ns);
    if (progress_stream && progress_stream[0] &&
        streams_take(x->streams, ns, progress_stream, STREAM_WAIT_MS, &j->progress, err) < 0) {
        pthread_mutex_destroy(&j->progress_lock);
        return x->api->error_wrap(err, "progress stream \"%s\"", progress_stream);
    }
    const char *call = x->api->call_lease();
    int rc = 0;
    if (call && call[0])
        snprintf(j->lease, sizeof(j->lease), "%s", call);
    else
        rc = lease_new(j, err);
    if (rc < 0) {
        if (j->progress) {
            xstream_close(j->progress);
            xstream_release(j->progress);
        }
        pthread_mutex_destroy(&j->progress_lock);
    }
    return rc;
}

void
job_end(xjob_t *j)
{
    xfer_t *x = j->x;
    if (j->progress) {
        xstream_close(j->progress);
        xstream_release(j->progress);
        j->progress = NULL;
    }
    if (j->lease_owned) {
        berth_error_t *err = NULL;
        if (x->mdo->lease_delete(x->md, j->ns, j->lease, &err) < 0) {
            x->api->log(x->log, BERTH_LOG_WARN, "transfer: lease %s: %s (it expires in 24 h)",
                        j->lease, err ? err->message : "?");
            x->api->error_free(err);
        }
    }
    pthread_mutex_destroy(&j->progress_lock);
}

void
job_progress(xjob_t *j, const char *event, const char *name, const char *const *parents,
             size_t n_parents, int64_t progress, int64_t total, const berth_descriptor_t *desc)
{
    if (j->progress == NULL)
        return;
    const berth_core_api_t *api = j->x->api;
    Containerd__Types__Transfer__Progress p = CONTAINERD__TYPES__TRANSFER__PROGRESS__INIT;
    Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
    Containerd__Types__Descriptor__AnnotationsEntry *ents = NULL, **entp = NULL;
    p.event = (char *)event;
    p.name = (char *)(name ? name : "");
    p.parents = (char **)parents;
    p.n_parents = n_parents;
    p.progress = progress;
    p.total = total;
    if (desc) {
        d.media_type = (char *)desc->media_type;
        d.digest = (char *)desc->digest;
        d.size = desc->size;
        size_t n = desc->annotations ? api->kv_size(desc->annotations) : 0;
        if (n) {
            ents = calloc(n, sizeof(*ents));
            entp = calloc(n, sizeof(*entp));
            for (size_t i = 0; i < n; i++) {
                containerd__types__descriptor__annotations_entry__init(&ents[i]);
                ents[i].key = (char *)api->kv_key_at(desc->annotations, i);
                ents[i].value = (char *)api->kv_value_at(desc->annotations, i);
                entp[i] = &ents[i];
            }
            d.annotations = entp;
            d.n_annotations = n;
        }
        p.desc = &d;
    }
    size_t len = containerd__types__transfer__progress__get_packed_size(&p);
    uint8_t *buf = malloc(len ? len : 1);
    containerd__types__transfer__progress__pack(&p, buf);
    berth_error_t *err = NULL;
    pthread_mutex_lock(&j->progress_lock);
    int rc = xstream_send(j->progress, "containerd.types.transfer.Progress", buf, len, &err);
    pthread_mutex_unlock(&j->progress_lock);
    if (rc < 0) { /* as containerd's: the transfer goes on without its audience */
        api->log(j->x->log, BERTH_LOG_DEBUG, "transfer: progress %s/%s not sent: %s", event,
                 name ? name : "", err ? err->message : "?");
        api->error_free(err);
    }
    free(buf);
    free(ents);
    free(entp);
}

int
svc_call(xjob_t *j, void *instance, const berth_grpc_service_v1_t *svc, const char *method,
         const ProtobufCMessage *req, uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    const berth_grpc_method_t *m = NULL;
    for (size_t i = 0; svc && i < svc->n_methods; i++)
        if (strcmp(svc->methods[i].name, method) == 0 && svc->methods[i].kind == BERTH_RPC_UNARY)
            m = &svc->methods[i];
    if (m == NULL || m->unary == NULL)
        return api->error_make(err, BERTH_ENOTIMPL, "%s/%s: not implemented", svc ? svc->name : "?",
                               method);
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    protobuf_c_message_pack(req, buf);
    /* the pointer itself comes back after the call: a copy in this frame would dangle once we return */
    const char *saved = api->call_lease();
    api->call_set_lease(j->lease);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = m->unary(instance, j->ns, buf, len, &out, &out_len, err);
    api->call_set_lease(saved && saved[0] ? saved : NULL);
    free(buf);
    if (rc < 0) {
        free(out);
        return rc;
    }
    if (resp) {
        *resp = out;
        *resp_len = out_len;
    } else {
        free(out);
    }
    return 0;
}
