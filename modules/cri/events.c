/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exits and container events. The core subscribes to /tasks/exit and /tasks/oom in k8s.io (the runtime
 * module publishes them, loop thread): the store changes at once (so ContainerStatus and waiters agree),
 * the status record is written on a pool thread. Exit waiters (cri_exit_wait_*) serve Stop and ExecSync.
 * GetContainerEvents streams what cri_events_announce reports, with the pod's status and its containers'
 * statuses as kubelet's evented PLEG expects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "cri.h"
#include "events/task.pb-c.h"

struct cri_exit_waiter {
    cri_exit_waiter_t *next;
    cri_t *c;
    char *container_id, *exec_id; /* exec_id "" for the init process */
    int fired;
    uint32_t status;
    int64_t exited_ns;
};

typedef struct subscriber {
    struct subscriber *next;
    berth_grpc_stream_t *st;
} subscriber_t;

typedef struct oom_mark {
    struct oom_mark *next;
    char id[65];
} oom_mark_t;

typedef struct events {
    berth_subscription_t *sub;
    pthread_mutex_t lock; /* the waiters */
    pthread_cond_t cond;
    cri_exit_waiter_t *waiters;
    /* loop thread only */
    subscriber_t *subs;
    const berth_grpc_stream_api_t *sapi;
    oom_mark_t *ooms;
} events_t;

/* ---- exit waiters --------------------------------------------------------------------------------- */

cri_exit_waiter_t *
cri_exit_wait_register(cri_t *c, const char *container_id, const char *exec_id)
{
    events_t *e = c->ev;
    cri_exit_waiter_t *w = calloc(1, sizeof(*w));
    w->c = c;
    w->container_id = strdup(container_id);
    w->exec_id = strdup(exec_id ? exec_id : "");
    pthread_mutex_lock(&e->lock);
    w->next = e->waiters;
    e->waiters = w;
    pthread_mutex_unlock(&e->lock);
    return w;
}

int
cri_exit_wait(cri_exit_waiter_t *w, int64_t timeout_ms, uint32_t *status, int64_t *exited_ns)
{
    events_t *e = w->c->ev;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms >= 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000)
            until.tv_sec++, until.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&e->lock);
    while (!w->fired) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&e->cond, &e->lock);
        } else if (pthread_cond_timedwait(&e->cond, &e->lock, &until) == ETIMEDOUT && !w->fired) {
            rc = BERTH_ETIMEDOUT;
            break;
        }
    }
    if (rc == 0) {
        if (status)
            *status = w->status;
        if (exited_ns)
            *exited_ns = w->exited_ns;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void
cri_exit_wait_cancel(cri_exit_waiter_t *w)
{
    if (w == NULL)
        return;
    events_t *e = w->c->ev;
    pthread_mutex_lock(&e->lock);
    for (cri_exit_waiter_t **p = &e->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&e->lock);
    free(w->container_id);
    free(w->exec_id);
    free(w);
}

static void
waiters_fire(events_t *e, const char *container_id, const char *exec_id, uint32_t status,
             int64_t exited_ns)
{
    pthread_mutex_lock(&e->lock);
    for (cri_exit_waiter_t *w = e->waiters; w; w = w->next)
        if (!w->fired && strcmp(w->container_id, container_id) == 0 &&
            strcmp(w->exec_id, exec_id) == 0) {
            w->fired = 1;
            w->status = status;
            w->exited_ns = exited_ns;
        }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* ---- the store follows exits ------------------------------------------------------------------------ */

typedef struct save_work {
    uv_work_t req;
    cri_t *c;
    cri_container_t *k;
    cri_sandbox_t *s;
} save_work_t;

static void
save_run(uv_work_t *req)
{
    save_work_t *w = req->data;
    berth_error_t *err = NULL;
    int rc = w->k ? cri_container_status_save(w->c, w->k, &err)
                  : cri_sandbox_status_save(w->c, w->s, &err);
    if (rc < 0) {
        w->c->api->log(w->c->log, BERTH_LOG_WARN, "cri: %s \"%s\": status not saved: %s",
                       w->k ? "container" : "pod sandbox", w->k ? w->k->id : w->s->id,
                       err ? err->message : "?");
        w->c->api->error_free(err);
    }
    if (w->k) /* kubelet hears of it once it is durable */
        cri_events_announce(w->c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT,
                            w->k->id, w->k->sandbox_id);
}

static void
save_done(uv_work_t *req, int status)
{
    (void)status;
    save_work_t *w = req->data;
    cri_container_unref(w->k);
    cri_sandbox_unref(w->s);
    free(w);
}

static void
save_later(cri_t *c, cri_container_t *k, cri_sandbox_t *s)
{
    save_work_t *w = calloc(1, sizeof(*w));
    w->c = c;
    w->k = k;
    w->s = s;
    w->req.data = w;
    uv_queue_work(c->loop, &w->req, save_run, save_done);
}

static int
oom_take(events_t *e, const char *id)
{
    for (oom_mark_t **p = &e->ooms; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            oom_mark_t *m = *p;
            *p = m->next;
            free(m);
            return 1;
        }
    return 0;
}

static void
on_init_exit(cri_t *c, const char *id, uint32_t status, int64_t exited_ns)
{
    events_t *e = c->ev;
    int oom = oom_take(e, id);
    berth_error_t *err = NULL;
    cri_container_t *k = NULL;
    cri_sandbox_t *s = NULL;
    if (cri_container_find(c, id, &k, &err) == 0 && strcmp(k->id, id) == 0) {
        pthread_mutex_lock(&c->lock);
        k->state = CRI_CONTAINER_EXITED;
        k->pid = 0;
        k->exit_code = (int32_t)status;
        k->finished_ns = exited_ns;
        free(k->reason);
        k->reason = strdup(oom ? "OOMKilled" : status == 0 ? "Completed" : "Error");
        pthread_mutex_unlock(&c->lock);
        save_later(c, k, NULL);
        return;
    }
    c->api->error_free(err), err = NULL;
    cri_container_unref(k);
    if (cri_sandbox_find(c, id, &s, &err) == 0 && strcmp(s->id, id) == 0) {
        pthread_mutex_lock(&c->lock);
        s->state = CRI_SANDBOX_NOTREADY;
        s->pid = 0;
        pthread_mutex_unlock(&c->lock);
        save_later(c, NULL, s);
        return;
    }
    c->api->error_free(err);
    cri_sandbox_unref(s);
}

/* cri-gaps: an OOM event that arrives after the container's exit (events are not ordered across the
 * runtime's watches): the exited container's reason becomes OOMKilled, as containerd's TaskOOM handler sets
 * it whatever the state. 1 when so. */
static int
oom_after_exit(cri_t *c, const char *id)
{
    berth_error_t *err = NULL;
    cri_container_t *k = NULL;
    int done = 0;
    if (cri_container_find(c, id, &k, &err) == 0 && strcmp(k->id, id) == 0) {
        pthread_mutex_lock(&c->lock);
        if (k->state == CRI_CONTAINER_EXITED) {
            free(k->reason);
            k->reason = strdup("OOMKilled");
            done = 1;
        }
        pthread_mutex_unlock(&c->lock);
        if (done)
            save_later(c, k, NULL), k = NULL; /* it takes the reference */
    }
    c->api->error_free(err);
    cri_container_unref(k);
    return done;
}

static void
on_event(void *user, const berth_event_t *ev)
{
    cri_t *c = user;
    events_t *e = c->ev;
    if (strcmp(ev->topic, "/tasks/oom") == 0) {
        Containerd__Events__TaskOOM *m =
            containerd__events__task_oom__unpack(NULL, ev->data_len, ev->data);
        if (m && m->container_id && strlen(m->container_id) == 64 &&
            oom_after_exit(c, m->container_id)) {
            /* cri-gaps: the exit came first; the reason is set already */
        } else if (m && m->container_id && strlen(m->container_id) == 64) {
            oom_mark_t *o = calloc(1, sizeof(*o));
            memcpy(o->id, m->container_id, 65);
            o->next = e->ooms;
            e->ooms = o;
        }
        if (m)
            containerd__events__task_oom__free_unpacked(m, NULL);
        return;
    }
    Containerd__Events__TaskExit *m =
        containerd__events__task_exit__unpack(NULL, ev->data_len, ev->data);
    if (m == NULL || m->container_id == NULL) {
        if (m)
            containerd__events__task_exit__free_unpacked(m, NULL);
        return;
    }
    int64_t at =
        m->exited_at ? m->exited_at->seconds * 1000000000 + m->exited_at->nanos : cri_now_ns();
    int init = m->id == NULL || *m->id == '\0' || strcmp(m->id, m->container_id) == 0;
    waiters_fire(e, m->container_id, init ? "" : m->id, m->exit_status, at);
    if (init)
        on_init_exit(c, m->container_id, m->exit_status, at);
    containerd__events__task_exit__free_unpacked(m, NULL);
}

int
cri_events_start(cri_t *c, berth_error_t **err)
{
    events_t *e = calloc(1, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->ev = e;
    static const char *const filters[] = {"namespace==" CRI_NAMESPACE ",topic==\"/tasks/exit\"",
                                          "namespace==" CRI_NAMESPACE ",topic==\"/tasks/oom\"",
                                          NULL};
    if (c->evo->subscribe(c->events, filters, on_event, c, &e->sub, err) < 0)
        return c->api->error_wrap(err, "cri: the /tasks/exit subscription");
    return 0;
}

void
cri_events_stop(cri_t *c)
{
    events_t *e = c->ev;
    if (e == NULL)
        return;
    if (e->sub)
        c->evo->unsubscribe(c->events, e->sub);
    /* the transport closed every stream before fini; waiters are their callers' */
    while (e->ooms) {
        oom_mark_t *o = e->ooms;
        e->ooms = o->next;
        free(o);
    }
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
    c->ev = NULL;
}

/* ---- GetContainerEvents ------------------------------------------------------------------------------- */

int
cri_events_open(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st,
                const uint8_t *req, size_t req_len, berth_error_t **err)
{
    cri_t *c = instance;
    events_t *e = c->ev;
    Runtime__V1__GetEventsRequest *q = runtime__v1__get_events_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "GetContainerEvents: the request does not unpack");
    runtime__v1__get_events_request__free_unpacked(q, NULL);
    subscriber_t *s = calloc(1, sizeof(*s));
    s->st = st;
    s->next = e->subs;
    e->subs = s;
    e->sapi = sapi;
    return 0;
}

void
cri_events_closed(void *instance, const berth_grpc_stream_api_t *sapi, berth_grpc_stream_t *st)
{
    cri_t *c = instance;
    events_t *e = c->ev;
    (void)sapi;
    for (subscriber_t **p = &e->subs; *p; p = &(*p)->next)
        if ((*p)->st == st) {
            subscriber_t *s = *p;
            *p = s->next;
            free(s);
            return;
        }
}

typedef struct broadcast {
    cri_t *c;
    uint8_t *buf;
    size_t len;
} broadcast_t;

static void
broadcast_run(void *arg)
{
    broadcast_t *b = arg;
    events_t *e = b->c->ev;
    for (subscriber_t *s = e ? e->subs : NULL; s; s = s->next)
        if (e->sapi->pending(s->st) < (64u << 20)) /* a client that reads nothing loses events */
            e->sapi->send(s->st, b->buf, b->len);
    free(b->buf);
    free(b);
}

/* A ContainerStatus of k for the event, its parts borrowed from k. */
typedef struct ctr_status_buf {
    Runtime__V1__ContainerStatus st;
    char *reason, *message; /* copies: the exit handling replaces k's */
} ctr_status_buf_t;

static void
ctr_status_fill(cri_t *c, cri_container_t *k, ctr_status_buf_t *b)
{
    Runtime__V1__ContainerStatus *st = &b->st;
    runtime__v1__container_status__init(st);
    Runtime__V1__ContainerConfig *cfg = k->config;
    st->id = k->id;
    if (cfg) {
        st->metadata = cfg->metadata;
        st->image = cfg->image;
        /* map entries share one layout: the config's pack as the status's */
        st->n_labels = cfg->n_labels;
        st->labels = (Runtime__V1__ContainerStatus__LabelsEntry **)cfg->labels;
        st->n_annotations = cfg->n_annotations;
        st->annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)cfg->annotations;
    }
    st->image_ref = k->image_ref;
    st->image_id = k->image_ref;
    st->log_path = k->log_path;
    pthread_mutex_lock(&c->lock);
    st->state = (Runtime__V1__ContainerState)k->state;
    st->created_at = k->created_ns;
    st->started_at = k->started_ns;
    st->finished_at = k->finished_ns;
    st->exit_code = k->exit_code;
    st->reason = b->reason = strdup(k->reason);
    st->message = b->message = strdup(k->message);
    pthread_mutex_unlock(&c->lock);
}

typedef struct pod_ctrs {
    const char *sandbox_id;
    cri_container_t **v;
    size_t n;
} pod_ctrs_t;

static int
collect_ctr(void *user, cri_container_t *k)
{
    pod_ctrs_t *p = user;
    if (strcmp(k->sandbox_id, p->sandbox_id) == 0) {
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_ACQ_REL);
        p->v = realloc(p->v, (p->n + 1) * sizeof(*p->v));
        p->v[p->n++] = k;
    }
    return 0;
}

void
cri_events_announce(cri_t *c, Runtime__V1__ContainerEventType type, const char *container_id,
                    const char *sandbox_id)
{
    events_t *e = c->ev;
    if (e == NULL)
        return;
    Runtime__V1__ContainerEventResponse r = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
    r.container_id = (char *)container_id;
    r.container_event_type = type;
    r.created_at = cri_now_ns();
    cri_sandbox_t *s = NULL;
    berth_error_t *err = NULL;
    cri_pod_status_buf_t pb;
    if (sandbox_id && *sandbox_id && cri_sandbox_find(c, sandbox_id, &s, &err) == 0) {
        cri_pod_status_fill(c, s, &pb);
        r.pod_sandbox_status = &pb.st;
    }
    c->api->error_free(err);
    pod_ctrs_t pc = {.sandbox_id = sandbox_id ? sandbox_id : ""};
    if (s)
        cri_container_foreach(c, collect_ctr, &pc);
    ctr_status_buf_t *cs = calloc(pc.n + 1, sizeof(*cs));
    Runtime__V1__ContainerStatus **csp = calloc(pc.n + 1, sizeof(*csp));
    for (size_t i = 0; i < pc.n; i++) {
        ctr_status_fill(c, pc.v[i], &cs[i]);
        csp[i] = &cs[i].st;
    }
    r.containers_statuses = csp;
    r.n_containers_statuses = pc.n;
    broadcast_t *b = calloc(1, sizeof(*b));
    b->c = c;
    b->len = runtime__v1__container_event_response__get_packed_size(&r);
    b->buf = malloc(b->len ? b->len : 1);
    runtime__v1__container_event_response__pack(&r, b->buf);
    if (c->api->call_on_loop(broadcast_run, b) < 0) {
        free(b->buf);
        free(b);
    }
    for (size_t i = 0; i < pc.n; i++) {
        free(cs[i].reason);
        free(cs[i].message);
        cri_container_unref(pc.v[i]);
    }
    free(pc.v);
    free(cs);
    free(csp);
    if (s) {
        cri_pod_status_release(&pb);
        cri_sandbox_unref(s);
    }
}
