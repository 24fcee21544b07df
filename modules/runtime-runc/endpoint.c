/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Labels to endpoint and mounts, in the order that leaves nothing behind: every label parsed and every host
 * bind checked against the allow-list first (bad input: nothing made), then the endpoint (the network
 * module undoes its own partial work), then the volumes' sources (named volumes are made on first use and
 * outlive the container by design), then the spec edits. Whatever fails after the endpoint was set up tears
 * it down again (the caller does so for the runtime's create and the pre-start hooks).
 */
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "mountspec.h"

endpoint_ctx_t *
endpoint_ctx_new(berth_init_ctx_t *ic)
{
    const berth_core_api_t *api = ic->api;
    endpoint_ctx_t *e = calloc(1, sizeof(*e));
    e->api = api;
    e->log = ic->log;
    pthread_rwlock_init(&e->gate, NULL);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    berth_instance_t inst;
    berth_error_t *err = NULL;
    /* optional: without the module its labels are refused at task create, naming it */
    if (api->get_single(ic, BERTH_NETWORK_TYPE, &inst, &err) == 0) {
        e->net = inst.instance;
        e->neto = inst.ops;
    }
    api->error_free(err);
    err = NULL;
    if (api->get_single(ic, BERTH_VOLUME_TYPE, &inst, &err) == 0) {
        e->vol = inst.instance;
        e->volo = inst.ops;
    }
    api->error_free(err);
    return e;
}

void
endpoint_ctx_free(endpoint_ctx_t *e)
{
    if (e == NULL)
        return;
    e->closing = 1;
    /* the runtime's fini comes after ours: the pass must not use it past this point (a stop right after
     * start only; the pass takes as long as its teardowns) */
    pthread_mutex_lock(&e->mu);
    while (e->running)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    if (e->reconciling)
        return; /* reconcile_done frees it */
    pthread_rwlock_destroy(&e->gate);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

void
endpoint_enter(endpoint_ctx_t *e)
{
    pthread_rwlock_rdlock(&e->gate);
}

void
endpoint_leave(endpoint_ctx_t *e)
{
    pthread_rwlock_unlock(&e->gate);
}

/* ---- task create -------------------------------------------------------------------------------------- */

typedef struct plan {
    attach_net_t net;
    mountspec_t vols;
    char **sources; /* per volume entry: the host path to bind (api->strdup'd) */
    json_object *spec;
    berth_net_result_t res;
    int has_res;
} plan_t;

static int
missing_module(endpoint_ctx_t *e, const char *label, const char *module, const char *type,
               berth_error_t **err)
{
    return e->api->error_make(err, BERTH_EPRECONDITION,
                              "label %s: the %s module (%s) is not loaded", label, module, type);
}

/* Everything that can be refused without making anything. */
static int
plan_parse(endpoint_ctx_t *e, const endpoint_labels_t *l, const char *spec_json, plan_t *p,
           berth_error_t **err)
{
    char msg[1024];
    if (attach_net_parse(l->network, l->ports, &p->net, msg, sizeof(msg)) < 0)
        return e->api->error_make(err, BERTH_EINVAL, "%s", msg);
    if (l->volumes && mountspec_parse(l->volumes, &p->vols, msg, sizeof(msg)) < 0)
        return e->api->error_make(err, BERTH_EINVAL, "label %s: %s", MOUNTSPEC_LABEL, msg);
    if (p->net.mode == ATTACH_NET_CNI && e->net == NULL)
        return missing_module(e, ATTACH_LABEL_NETWORK, "network-cni", BERTH_NETWORK_TYPE, err);
    if (p->vols.n > 0 && e->vol == NULL)
        return missing_module(e, MOUNTSPEC_LABEL, "volumes", BERTH_VOLUME_TYPE, err);
    if (p->net.mode == ATTACH_NET_NONE && p->vols.n == 0)
        return 0;
    p->spec = attach_spec_parse(spec_json, msg, sizeof(msg));
    return p->spec ? 0 : e->api->error_make(err, BERTH_EINVAL, "%s", msg);
}

/* Host binds: the allow-list decides before anything is made. */
static int
plan_binds(endpoint_ctx_t *e, plan_t *p, berth_error_t **err)
{
    p->sources = calloc(p->vols.n + 1, sizeof(*p->sources));
    for (size_t i = 0; i < p->vols.n; i++) {
        mountspec_entry_t *m = &p->vols.entries[i];
        if (m->kind == MOUNTSPEC_BIND &&
            e->volo->bind_allowed(e->vol, m->source, &p->sources[i], err) < 0)
            return e->api->error_wrap(err, "label %s", MOUNTSPEC_LABEL);
    }
    return 0;
}

static int
plan_volumes(endpoint_ctx_t *e, const char *ns, plan_t *p, berth_error_t **err)
{
    for (size_t i = 0; i < p->vols.n; i++) {
        mountspec_entry_t *m = &p->vols.entries[i];
        if (m->kind == MOUNTSPEC_VOLUME &&
            e->volo->mount_source(e->vol, ns, m->source, &p->sources[i], err) < 0)
            return e->api->error_wrap(err, "label %s: volume %s", MOUNTSPEC_LABEL, m->source);
    }
    return 0;
}

/* The hostname the endpoint wrote, so the spec's matches the container's /etc/hostname. */
static void
read_hostname(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\r\n \t")] = '\0';
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
plan_network(endpoint_ctx_t *e, const char *ns, const char *id, plan_t *p, berth_error_t **err)
{
    berth_net_setup_t req = {
        .struct_size = sizeof(req),
        .namespace_ = ns,
        .id = id,
        .networks = (const char *const *)p->net.networks,
        .n_networks = p->net.n_networks,
        .ports = p->net.ports,
        .n_ports = p->net.n_ports,
        .hostname = attach_spec_hostname(p->spec),
    };
    p->res.struct_size = sizeof(p->res);
    double t0 = now_ms();
    if (e->neto->setup(e->net, &req, &p->res, err) < 0)
        return (*err)->code;
    p->has_res = 1;
    attach_spec_join(p->spec, p->res.netns_path);
    attach_spec_bind(p->spec, p->res.resolv_conf_path, "/etc/resolv.conf", 0);
    attach_spec_bind(p->spec, p->res.hosts_path, "/etc/hosts", 0);
    attach_spec_bind(p->spec, p->res.hostname_path, "/etc/hostname", 0);
    char hostname[256];
    read_hostname(p->res.hostname_path, hostname, sizeof(hostname));
    attach_spec_set_hostname(p->spec, hostname[0] ? hostname : NULL);
    e->api->log(e->log, BERTH_LOG_INFO,
                "task %s/%s: endpoint set up on %zu network(s), %zu port(s) in %.1f ms", ns, id,
                p->net.n_networks, p->net.n_ports, now_ms() - t0);
    return 0;
}

static void
plan_free(endpoint_ctx_t *e, plan_t *p)
{
    attach_net_free(&p->net);
    for (size_t i = 0; p->sources && i < p->vols.n; i++)
        e->api->free(p->sources[i]);
    free(p->sources);
    mountspec_free(&p->vols);
    if (p->spec)
        json_object_put(p->spec);
    if (p->has_res)
        e->neto->result_free(e->net, &p->res);
}

int
endpoint_prepare(endpoint_ctx_t *e, const char *ns, const char *id, const endpoint_labels_t *l,
                 const char *spec_json, char **spec_out, int *attached, berth_error_t **err)
{
    plan_t p = {0};
    *attached = 0;
    *spec_out = NULL;
    int rc = plan_parse(e, l, spec_json, &p, err);
    if (rc == 0 && p.spec == NULL) { /* nothing asked for: the spec as it is */
        plan_free(e, &p);
        *spec_out = strdup(spec_json);
        return 0;
    }
    if (rc == 0 && p.vols.n > 0)
        rc = plan_binds(e, &p, err);
    if (rc == 0 && p.net.mode == ATTACH_NET_HOST)
        attach_spec_host(p.spec);
    if (rc == 0 && p.net.mode == ATTACH_NET_CNI && (rc = plan_network(e, ns, id, &p, err)) == 0)
        *attached = 1;
    if (rc == 0)
        rc = plan_volumes(e, ns, &p, err);
    for (size_t i = 0; rc == 0 && i < p.vols.n; i++)
        attach_spec_bind(p.spec, p.sources[i], p.vols.entries[i].destination,
                         p.vols.entries[i].readonly);
    if (rc == 0)
        *spec_out = attach_spec_text(p.spec);
    plan_free(e, &p);
    if (rc < 0 && *attached) {
        endpoint_undo(e, ns, id);
        *attached = 0;
    }
    return rc;
}

void
endpoint_undo(endpoint_ctx_t *e, const char *ns, const char *id)
{
    if (e->net == NULL)
        return;
    berth_error_t *err = NULL;
    double t0 = now_ms();
    if (e->neto->teardown(e->net, ns, id, &err) < 0) {
        e->api->log(e->log, BERTH_LOG_ERROR,
                    "task %s/%s: endpoint teardown failed (retried at start-up): %s", ns, id,
                    err ? err->message : "unknown error");
        e->api->error_free(err);
        return;
    }
    e->api->log(e->log, BERTH_LOG_DEBUG, "task %s/%s: endpoint teardown (if any) in %.1f ms", ns,
                id, now_ms() - t0);
}

/* ---- start-up --------------------------------------------------------------------------------------- */

typedef struct gone {
    char *ns, *id;
} gone_t;

typedef struct reconcile {
    endpoint_ctx_t *e;
    void *rt;
    const berth_runtime_v1_ops_t *rto;
    berth_ready_token_t *token;
    gone_t *v;
    size_t n;
    uv_work_t work;
} reconcile_t;

static int
collect(void *user, const char *ns, const char *id)
{
    reconcile_t *r = user;
    gone_t *grown = realloc(r->v, (r->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return 1;
    r->v = grown;
    r->v[r->n++] = (gone_t){strdup(ns), strdup(id)};
    return 0;
}

static void
reconcile_run(uv_work_t *w)
{
    reconcile_t *r = w->data;
    endpoint_ctx_t *e = r->e;
    berth_error_t *err = NULL;
    pthread_rwlock_wrlock(&e->gate);
    if (e->neto->list(e->net, collect, r, &err) < 0) {
        e->api->log(e->log, BERTH_LOG_ERROR, "endpoints: cannot list them: %s",
                    err ? err->message : "unknown error");
        e->api->error_free(err);
    }
    size_t kept = 0, removed = 0;
    for (size_t i = 0; i < r->n; i++) {
        berth_task_state_t st;
        err = NULL;
        int rc = r->rto->state(r->rt, r->v[i].ns, r->v[i].id, "", &st, &err);
        e->api->error_free(err);
        if (rc != BERTH_ENOTFOUND) { /* running, stopped, or not known for sure: kept */
            kept++;
            continue;
        }
        e->api->log(e->log, BERTH_LOG_WARN, "task %s/%s: gone; tearing its endpoint down",
                    r->v[i].ns, r->v[i].id);
        endpoint_undo(e, r->v[i].ns, r->v[i].id);
        removed++;
    }
    pthread_rwlock_unlock(&e->gate);
    e->api->log(e->log, BERTH_LOG_INFO, "endpoints: %zu kept, %zu of gone tasks torn down", kept,
                removed);
    pthread_mutex_lock(&e->mu);
    e->running = 0;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static void
reconcile_done(uv_work_t *w, int status)
{
    (void)status;
    reconcile_t *r = w->data;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].ns);
        free(r->v[i].id);
    }
    free(r->v);
    r->e->api->readiness_done(r->token);
    r->e->reconciling = 0;
    if (r->e->closing)
        endpoint_ctx_free(r->e);
    free(r);
}

static int
found_one(void *user, const char *ns, const char *id)
{
    (void)ns, (void)id;
    *(int *)user = 1;
    return 1; /* one is enough */
}

void
endpoint_reconcile(endpoint_ctx_t *e, berth_init_ctx_t *ic, void *rt,
                   const berth_runtime_v1_ops_t *rto)
{
    if (e->net == NULL)
        return;
    /* No endpoint recorded (the usual start): nothing to reconcile, and no pool work, which would start
     * libuv's pool threads for nothing. A look at a directory or two, here on the loop; the pass itself
     * lists them again under the gate. */
    int any = 0;
    berth_error_t *err = NULL;
    if (e->neto->list(e->net, found_one, &any, &err) == 0 && !any) {
        e->api->log(e->log, BERTH_LOG_DEBUG, "endpoints: none recorded, nothing to reconcile");
        return;
    }
    e->api->error_free(err);
    reconcile_t *r = calloc(1, sizeof(*r));
    *r = (reconcile_t){.e = e, .rt = rt, .rto = rto, .token = e->api->readiness_register(ic)};
    r->work.data = r;
    e->reconciling = 1;
    e->running = 1;
    uv_queue_work(ic->loop, &r->work, reconcile_run, reconcile_done);
}
