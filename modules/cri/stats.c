/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats (and the two metrics calls,
 * answered empty) from cgroups (cgstats.c), as containerd's CRI defines the figures: cpu usage and its rate
 * from the previous sample of the same container, memory working set = usage - inactive file, the writable
 * layer from the snapshotter's Usage, a pod's cgroup (its cgroup_parent), network and process count.
 */
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgstats.h"
#include "cri.h"
#include "services/snapshots/v1/snapshots.pb-c.h"

#define CG_ROOT "/sys/fs/cgroup"
#define MAX_IFS 8

/* ---- the cgroup hierarchy ------------------------------------------------------------------------------ */

static int cg_v2;
static pthread_once_t cg_once = PTHREAD_ONCE_INIT;

static void
cg_detect(void)
{
    cg_v2 = cri_cg_is_v2(CG_ROOT);
}

static cri_cg_t
cg_of(const cri_t *c)
{
    pthread_once(&cg_once, cg_detect);
    return (cri_cg_t){CG_ROOT, cg_v2, strcmp(c->cfg.cgroup_driver, "systemd") == 0};
}

/* A process's cgroup from /proc/<pid>/cgroup (v2: "0::/path"; v1: the memory controller's line), for a
 * record without a cgroupsPath. */
static int
cgroup_of_pid(uint32_t pid, int v2, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
    char *t = cri_read_text(path);
    int rc = BERTH_ENOTFOUND;
    for (char *line = t ? strtok(t, "\n") : NULL; line && rc < 0; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        *c2 = '\0';
        int hit = v2 ? strcmp(c1 + 1, "") == 0 : strstr(c1 + 1, "memory") != NULL;
        if (hit && strlen(c2 + 1) < len)
            snprintf(out, len, "%s", c2 + 1), rc = 0;
    }
    free(t);
    return rc;
}

/* ---- the previous samples (usage_nano_cores) --------------------------------------------------------- */

typedef struct sample {
    char key[80]; /* a container id, or "pod:<id>" */
    uint64_t cpu_ns;
    int64_t t_ns;
} sample_t;

static pthread_mutex_t samples_lock = PTHREAD_MUTEX_INITIALIZER;
static sample_t *samples;
static size_t n_samples, cap_samples;

/* The rate since this key's previous sample; the first time, since `since_ns` (the start), so a first
 * answer is the average so far rather than containerd's 0. */
static uint64_t
sample_rate(const char *key, uint64_t cpu_ns, int64_t t_ns, int64_t since_ns)
{
    uint64_t r = 0;
    pthread_mutex_lock(&samples_lock);
    size_t i = 0;
    while (i < n_samples && strcmp(samples[i].key, key) != 0)
        i++;
    if (i < n_samples) {
        r = cri_nano_cores(samples[i].cpu_ns, samples[i].t_ns, cpu_ns, t_ns);
    } else {
        if (since_ns > 0)
            r = cri_nano_cores(0, since_ns, cpu_ns, t_ns);
        if (n_samples == cap_samples) {
            size_t nc = cap_samples ? cap_samples * 2 : 16;
            sample_t *ns = realloc(samples, nc * sizeof(*ns));
            if (ns == NULL)
                goto out;
            samples = ns, cap_samples = nc;
        }
        snprintf(samples[n_samples].key, sizeof(samples[0].key), "%s", key);
        n_samples++;
    }
    samples[i].cpu_ns = cpu_ns, samples[i].t_ns = t_ns;
out:
    pthread_mutex_unlock(&samples_lock);
    return r;
}

/* Samples of what is gone are dropped (by the list calls, which see everything). */
static void
samples_prune(cri_t *c)
{
    pthread_mutex_lock(&samples_lock);
    for (size_t i = 0; i < n_samples;) {
        const char *key = samples[i].key;
        int pod = strncmp(key, "pod:", 4) == 0;
        int gone = 0;
        berth_error_t *e = NULL;
        if (pod) {
            cri_sandbox_t *s = NULL;
            gone = cri_sandbox_find(c, key + 4, &s, &e) < 0;
            cri_sandbox_unref(s);
        } else {
            cri_container_t *k = NULL;
            gone = cri_container_find(c, key, &k, &e) < 0;
            cri_container_unref(k);
        }
        c->api->error_free(e);
        if (gone)
            samples[i] = samples[--n_samples];
        else
            i++;
    }
    pthread_mutex_unlock(&samples_lock);
}

/* ---- messages ------------------------------------------------------------------------------------------- */

typedef struct u64s {
    Runtime__V1__UInt64Value v[8];
    int n;
} u64s_t;

static Runtime__V1__UInt64Value *
u64(u64s_t *a, uint64_t value)
{
    Runtime__V1__UInt64Value *v = &a->v[a->n++];
    runtime__v1__uint64_value__init(v);
    v->value = value;
    return v;
}

typedef struct usage {
    Runtime__V1__CpuUsage cpu;
    Runtime__V1__MemoryUsage mem;
    u64s_t vals;
} usage_t;

/* cpu and memory of a cgroup sample into u (NULL when the sample has none) */
static void
usage_fill(usage_t *u, const cri_cg_stats_t *cg, uint64_t nano_cores, int64_t now,
           Runtime__V1__CpuUsage **cpu, Runtime__V1__MemoryUsage **mem)
{
    runtime__v1__cpu_usage__init(&u->cpu);
    runtime__v1__memory_usage__init(&u->mem);
    *cpu = NULL, *mem = NULL;
    if (cg->has_cpu) {
        u->cpu.timestamp = now;
        u->cpu.usage_core_nano_seconds = u64(&u->vals, cg->cpu_ns);
        u->cpu.usage_nano_cores = u64(&u->vals, nano_cores);
        *cpu = &u->cpu;
    }
    if (cg->has_mem) {
        u->mem.timestamp = now;
        u->mem.working_set_bytes = u64(&u->vals, cg->working_set);
        u->mem.available_bytes = u64(&u->vals, cri_cg_available(cg));
        u->mem.usage_bytes = u64(&u->vals, cg->usage);
        u->mem.rss_bytes = u64(&u->vals, cg->rss);
        u->mem.page_faults = u64(&u->vals, cg->pgfault);
        u->mem.major_page_faults = u64(&u->vals, cg->pgmajfault);
        *mem = &u->mem;
    }
}

/* map<string,string> entries for a message of ours, pointing at the config's strings */
typedef struct kv_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} kv_entry_t;

static kv_entry_t **
entries(const ProtobufCMessageDescriptor *d, size_t n, void *const *from)
{
    if (n == 0)
        return NULL;
    kv_entry_t **v = calloc(n, sizeof(*v));
    kv_entry_t *e = calloc(n, sizeof(*e));
    if (v == NULL || e == NULL) {
        free(v), free(e);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const kv_entry_t *f = from[i];
        e[i] = (kv_entry_t){PROTOBUF_C_MESSAGE_INIT(d), f->key, f->value};
        v[i] = &e[i];
    }
    return v;
}

static void
entries_free(kv_entry_t **v, size_t n)
{
    if (v && n)
        free(v[0]);
    free(v);
}

/* the selector's pairs are all among the labels */
static int
labels_match(size_t n_sel, void *const *sel, size_t n_lab, void *const *lab)
{
    for (size_t i = 0; i < n_sel; i++) {
        const kv_entry_t *s = sel[i];
        int hit = 0;
        for (size_t k = 0; k < n_lab && !hit; k++) {
            const kv_entry_t *l = lab[k];
            hit = strcmp(l->key, s->key) == 0 && strcmp(l->value, s->value) == 0;
        }
        if (!hit)
            return 0;
    }
    return 1;
}

/* ---- a container ------------------------------------------------------------------------------------- */

typedef struct cstats {
    Runtime__V1__ContainerStats st;
    Runtime__V1__ContainerAttributes attr;
    usage_t u;
    Runtime__V1__FilesystemUsage fs;
    Runtime__V1__FilesystemIdentifier fs_id;
    u64s_t fs_vals;
    char *mountpoint;
    cri_container_t *k;          /* the strings above point into its config */
    cri_container_state_t state; /* k's mutable fields, read under c->lock */
    uint32_t pid;
    int64_t started_ns;
} cstats_t;

static void
cstats_free(cstats_t *x)
{
    if (x == NULL)
        return;
    entries_free((kv_entry_t **)x->attr.labels, x->attr.n_labels);
    entries_free((kv_entry_t **)x->attr.annotations, x->attr.n_annotations);
    free(x->mountpoint);
    cri_container_unref(x->k);
    free(x);
}

static int
container_cgroup(const cri_cg_t *g, const cstats_t *x, char *rel, size_t len)
{
    if (x->k->cgroup_path && *x->k->cgroup_path)
        return cri_cg_rel_path(g->systemd, x->k->cgroup_path, rel, len);
    return x->pid ? cgroup_of_pid(x->pid, g->v2, rel, len) : BERTH_ENOTFOUND;
}

/* the snapshotters' root beside ours: <daemon root>/io.containerd.snapshotter.v1.<name> */
static char *
snapshotter_root(const cri_t *c)
{
    char *r = strdup(c->cfg.root ? c->cfg.root : "");
    char *out = NULL;
    if (r &&
        asprintf(&out, "%s/io.containerd.snapshotter.v1.%s", dirname(r), c->cfg.snapshotter) < 0)
        out = NULL;
    free(r);
    return out;
}

static void
writable_layer(cri_t *c, cstats_t *x, int64_t now)
{
    Containerd__Services__Snapshots__V1__UsageRequest req =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__USAGE_REQUEST__INIT;
    req.snapshotter = c->cfg.snapshotter;
    req.key = x->k->id;
    ProtobufCMessage *out = NULL;
    berth_error_t *e = NULL;
    if (cri_call(c, CRI_SVC_SNAPSHOTS, "Usage", &req.base,
                 &containerd__services__snapshots__v1__usage_response__descriptor, &out, NULL,
                 &e) < 0) {
        c->api->error_free(e); /* no snapshot (yet, or any more): no writable layer figure */
        return;
    }
    const Containerd__Services__Snapshots__V1__UsageResponse *u = (const void *)out;
    runtime__v1__filesystem_usage__init(&x->fs);
    runtime__v1__filesystem_identifier__init(&x->fs_id);
    x->mountpoint = snapshotter_root(c);
    x->fs_id.mountpoint = x->mountpoint ? x->mountpoint : (char *)"";
    x->fs.timestamp = now;
    x->fs.fs_id = &x->fs_id;
    x->fs.used_bytes = u64(&x->fs_vals, u->size > 0 ? (uint64_t)u->size : 0);
    x->fs.inodes_used = u64(&x->fs_vals, u->inodes > 0 ? (uint64_t)u->inodes : 0);
    x->st.writable_layer = &x->fs;
    protobuf_c_message_free_unpacked(out, NULL);
}

/* Takes the reference k. */
static cstats_t *
container_stats(cri_t *c, cri_container_t *k)
{
    cstats_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        cri_container_unref(k);
        return NULL;
    }
    x->k = k;
    pthread_mutex_lock(&c->lock);
    x->state = k->state, x->pid = k->pid, x->started_ns = k->started_ns;
    pthread_mutex_unlock(&c->lock);
    runtime__v1__container_stats__init(&x->st);
    runtime__v1__container_attributes__init(&x->attr);
    x->st.attributes = &x->attr;
    x->attr.id = k->id;
    if (k->config) {
        x->attr.metadata = k->config->metadata;
        x->attr.labels =
            (void *)entries(&runtime__v1__container_attributes__labels_entry__descriptor,
                            k->config->n_labels, (void *const *)k->config->labels);
        x->attr.n_labels = x->attr.labels ? k->config->n_labels : 0;
        x->attr.annotations =
            (void *)entries(&runtime__v1__container_attributes__annotations_entry__descriptor,
                            k->config->n_annotations, (void *const *)k->config->annotations);
        x->attr.n_annotations = x->attr.annotations ? k->config->n_annotations : 0;
    }
    int64_t now = cri_now_ns();
    cri_cg_t g = cg_of(c);
    char rel[2048];
    cri_cg_stats_t cg;
    if (x->state == CRI_CONTAINER_RUNNING && container_cgroup(&g, x, rel, sizeof(rel)) == 0 &&
        cri_cg_read(&g, rel, &cg) == 0) {
        uint64_t rate = cg.has_cpu ? sample_rate(k->id, cg.cpu_ns, now, x->started_ns) : 0;
        usage_fill(&x->u, &cg, rate, now, &x->st.cpu, &x->st.memory);
    }
    writable_layer(c, x, now);
    return x;
}

int
cri_rpc_ContainerStats(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                       uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ContainerStatsRequest *r =
        runtime__v1__container_stats_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ContainerStats: the request does not unpack");
    cri_container_t *k = NULL;
    int rc = cri_container_find(c, r->container_id, &k, err);
    runtime__v1__container_stats_request__free_unpacked(r, NULL);
    if (rc < 0)
        return rc;
    cstats_t *x = container_stats(c, k);
    if (x == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "ContainerStats: out of memory");
    Runtime__V1__ContainerStatsResponse out = RUNTIME__V1__CONTAINER_STATS_RESPONSE__INIT;
    out.stats = &x->st;
    rc = cri_reply(c, &out.base, resp, resp_len);
    cstats_free(x);
    return rc;
}

/* ---- lists ------------------------------------------------------------------------------------------------ */

typedef struct clist {
    cri_t *c;
    const Runtime__V1__ContainerStatsFilter *f;
    const char *sandbox_id; /* the filter's pod, resolved; NULL: any */
    cstats_t **v;
    size_t n, cap;
} clist_t;

static int
clist_add(clist_t *l, cri_container_t *k)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        cstats_t **nv = realloc(l->v, nc * sizeof(*nv));
        if (nv == NULL)
            return 1;
        l->v = nv, l->cap = nc;
    }
    cri_container_t *ref = NULL;
    berth_error_t *e = NULL;
    if (cri_container_find(l->c, k->id, &ref, &e) < 0) { /* removed meanwhile */
        l->c->api->error_free(e);
        return 0;
    }
    cstats_t *x = container_stats(l->c, ref);
    if (x)
        l->v[l->n++] = x;
    return 0;
}

/* containerd lists the running containers only */
static int
clist_each(void *user, cri_container_t *k)
{
    clist_t *l = user;
    const Runtime__V1__ContainerStatsFilter *f = l->f;
    pthread_mutex_lock(&l->c->lock);
    cri_container_state_t state = k->state;
    pthread_mutex_unlock(&l->c->lock);
    if (state != CRI_CONTAINER_RUNNING)
        return 0;
    if (l->sandbox_id && strcmp(k->sandbox_id, l->sandbox_id) != 0)
        return 0;
    if (f && f->n_label_selector &&
        (k->config == NULL || !labels_match(f->n_label_selector, (void *const *)f->label_selector,
                                            k->config->n_labels, (void *const *)k->config->labels)))
        return 0;
    return clist_add(l, k);
}

static void
clist_free(clist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        cstats_free(l->v[i]);
    free(l->v);
}

/* The filter's pod resolved to its id ("" when it names none: nothing matches). */
static void
resolve_pod(cri_t *c, const char *want, char out[65])
{
    cri_sandbox_t *s = NULL;
    berth_error_t *e = NULL;
    out[0] = '\0';
    if (cri_sandbox_find(c, want, &s, &e) == 0)
        snprintf(out, 65, "%s", s->id);
    c->api->error_free(e);
    cri_sandbox_unref(s);
}

/* Running containers matching f (NULL: all), optionally of one pod only. */
static void
clist_collect(cri_t *c, const Runtime__V1__ContainerStatsFilter *f, const char *pod, clist_t *l)
{
    *l = (clist_t){.c = c, .f = f, .sandbox_id = pod};
    char pod_id[65];
    if (pod == NULL && f && *f->pod_sandbox_id) {
        resolve_pod(c, f->pod_sandbox_id, pod_id);
        if (!*pod_id)
            return;
        l->sandbox_id = pod_id;
    }
    if (f && *f->id) {
        cri_container_t *k = NULL;
        berth_error_t *e = NULL;
        if (cri_container_find(c, f->id, &k, &e) == 0)
            clist_each(l, k);
        c->api->error_free(e);
        cri_container_unref(k);
        l->sandbox_id = pod;
        return;
    }
    cri_container_foreach(c, clist_each, l);
    l->sandbox_id = pod; /* not pod_id's stack past here */
}

int
cri_rpc_ListContainerStats(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                           uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ListContainerStatsRequest *r =
        runtime__v1__list_container_stats_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "ListContainerStats: the request does not unpack");
    samples_prune(c);
    clist_t l;
    clist_collect(c, r->filter, NULL, &l);
    Runtime__V1__ContainerStats **msgs = calloc(l.n + 1, sizeof(*msgs));
    for (size_t i = 0; msgs && i < l.n; i++)
        msgs[i] = &l.v[i]->st;
    Runtime__V1__ListContainerStatsResponse out = RUNTIME__V1__LIST_CONTAINER_STATS_RESPONSE__INIT;
    out.n_stats = msgs ? l.n : 0;
    out.stats = msgs;
    int rc = cri_reply(c, &out.base, resp, resp_len);
    free(msgs);
    clist_free(&l);
    runtime__v1__list_container_stats_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- a pod ------------------------------------------------------------------------------------------------ */

typedef struct pstats {
    Runtime__V1__PodSandboxStats st;
    Runtime__V1__PodSandboxAttributes attr;
    Runtime__V1__LinuxPodSandboxStats lx;
    usage_t u;
    Runtime__V1__NetworkUsage net;
    Runtime__V1__NetworkInterfaceUsage ifs[MAX_IFS];
    Runtime__V1__NetworkInterfaceUsage *ifp[MAX_IFS];
    cri_netdev_t dev[MAX_IFS];
    u64s_t if_vals[MAX_IFS];
    Runtime__V1__ProcessUsage proc;
    u64s_t proc_vals;
    clist_t ctrs;
    Runtime__V1__ContainerStats **ctr_msgs;
    cri_sandbox_t *s;
    cri_sandbox_state_t state; /* s's mutable fields, read under c->lock */
    uint32_t pid;
} pstats_t;

static void
pstats_free(pstats_t *x)
{
    if (x == NULL)
        return;
    entries_free((kv_entry_t **)x->attr.labels, x->attr.n_labels);
    entries_free((kv_entry_t **)x->attr.annotations, x->attr.n_annotations);
    clist_free(&x->ctrs);
    free(x->ctr_msgs);
    cri_sandbox_unref(x->s);
    free(x);
}

/* The pod's cgroup: its cgroup_parent; without one, the pause's cgroup and its containers' summed. */
static int
pod_cgroup_stats(cri_t *c, const pstats_t *x, cri_cg_stats_t *out)
{
    const cri_sandbox_t *s = x->s;
    const clist_t *ctrs = &x->ctrs;
    cri_cg_t g = cg_of(c);
    char rel[2048];
    const char *parent = s->cgroup_parent ? s->cgroup_parent : "";
    if (*parent && cri_cg_parent_rel_path(g.systemd, parent, rel, sizeof(rel)) == 0)
        return cri_cg_read(&g, rel, out);
    memset(out, 0, sizeof(*out));
    out->limit = UINT64_MAX;
    cri_cg_stats_t one;
    int found = 0;
    if (x->pid && cgroup_of_pid(x->pid, g.v2, rel, sizeof(rel)) == 0 && strcmp(rel, "/") != 0 &&
        cri_cg_read(&g, rel, &one) == 0)
        cri_cg_add(out, &one), found = 1;
    for (size_t i = 0; i < ctrs->n; i++) {
        if (container_cgroup(&g, ctrs->v[i], rel, sizeof(rel)) == 0 &&
            cri_cg_read(&g, rel, &one) == 0)
            cri_cg_add(out, &one), found = 1;
    }
    return found ? 0 : BERTH_ENOTFOUND;
}

/* eth0 is the default interface (containerd's defaultIfName); the others are listed */
static void
pod_network(pstats_t *x, int64_t now)
{
    const cri_sandbox_t *s = x->s;
    if (s->netns_path == NULL || *s->netns_path == '\0' || x->pid == 0)
        return; /* host network: the host's figures are not the pod's */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/net/dev", x->pid);
    char *t = cri_read_text(path);
    if (t == NULL)
        return;
    size_t n = cri_netdev_parse(t, x->dev, MAX_IFS);
    free(t);
    runtime__v1__network_usage__init(&x->net);
    x->net.timestamp = now;
    size_t others = 0;
    for (size_t i = 0; i < n; i++) {
        Runtime__V1__NetworkInterfaceUsage *u = &x->ifs[i];
        runtime__v1__network_interface_usage__init(u);
        u->name = x->dev[i].name;
        u->rx_bytes = u64(&x->if_vals[i], x->dev[i].rx_bytes);
        u->rx_errors = u64(&x->if_vals[i], x->dev[i].rx_errors);
        u->tx_bytes = u64(&x->if_vals[i], x->dev[i].tx_bytes);
        u->tx_errors = u64(&x->if_vals[i], x->dev[i].tx_errors);
        if (strcmp(u->name, "eth0") == 0 && x->net.default_interface == NULL)
            x->net.default_interface = u;
        else
            x->ifp[others++] = u;
    }
    x->net.n_interfaces = others;
    x->net.interfaces = others ? x->ifp : NULL;
    x->lx.network = &x->net;
}

/* Takes the reference s. */
static pstats_t *
pod_stats(cri_t *c, cri_sandbox_t *s)
{
    pstats_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        cri_sandbox_unref(s);
        return NULL;
    }
    x->s = s;
    pthread_mutex_lock(&c->lock);
    x->state = s->state, x->pid = s->pid;
    pthread_mutex_unlock(&c->lock);
    runtime__v1__pod_sandbox_stats__init(&x->st);
    runtime__v1__pod_sandbox_attributes__init(&x->attr);
    runtime__v1__linux_pod_sandbox_stats__init(&x->lx);
    x->st.attributes = &x->attr;
    x->st.linux = &x->lx;
    x->attr.id = s->id;
    if (s->config) {
        x->attr.metadata = s->config->metadata;
        x->attr.labels =
            (void *)entries(&runtime__v1__pod_sandbox_attributes__labels_entry__descriptor,
                            s->config->n_labels, (void *const *)s->config->labels);
        x->attr.n_labels = x->attr.labels ? s->config->n_labels : 0;
        x->attr.annotations =
            (void *)entries(&runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                            s->config->n_annotations, (void *const *)s->config->annotations);
        x->attr.n_annotations = x->attr.annotations ? s->config->n_annotations : 0;
    }
    clist_collect(c, NULL, s->id, &x->ctrs);
    x->ctr_msgs = calloc(x->ctrs.n + 1, sizeof(*x->ctr_msgs));
    for (size_t i = 0; x->ctr_msgs && i < x->ctrs.n; i++)
        x->ctr_msgs[i] = &x->ctrs.v[i]->st;
    x->lx.n_containers = x->ctr_msgs ? x->ctrs.n : 0;
    x->lx.containers = x->ctr_msgs;

    int64_t now = cri_now_ns();
    cri_cg_stats_t cg;
    if (x->state == CRI_SANDBOX_READY && pod_cgroup_stats(c, x, &cg) == 0) {
        char key[80];
        snprintf(key, sizeof(key), "pod:%s", s->id);
        uint64_t rate = cg.has_cpu ? sample_rate(key, cg.cpu_ns, now, s->created_ns) : 0;
        usage_fill(&x->u, &cg, rate, now, &x->lx.cpu, &x->lx.memory);
        if (cg.has_pids) {
            runtime__v1__process_usage__init(&x->proc);
            x->proc.timestamp = now;
            x->proc.process_count = u64(&x->proc_vals, cg.pids);
            x->lx.process = &x->proc;
        }
    }
    pod_network(x, now);
    return x;
}

int
cri_rpc_PodSandboxStats(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                        uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__PodSandboxStatsRequest *r =
        runtime__v1__pod_sandbox_stats_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "PodSandboxStats: the request does not unpack");
    cri_sandbox_t *s = NULL;
    int rc = cri_sandbox_find(c, r->pod_sandbox_id, &s, err);
    runtime__v1__pod_sandbox_stats_request__free_unpacked(r, NULL);
    if (rc < 0)
        return rc;
    pstats_t *x = pod_stats(c, s);
    if (x == NULL)
        return c->api->error_make(err, BERTH_ENOMEM, "PodSandboxStats: out of memory");
    Runtime__V1__PodSandboxStatsResponse out = RUNTIME__V1__POD_SANDBOX_STATS_RESPONSE__INIT;
    out.stats = &x->st;
    rc = cri_reply(c, &out.base, resp, resp_len);
    pstats_free(x);
    return rc;
}

typedef struct plist {
    cri_t *c;
    const Runtime__V1__PodSandboxStatsFilter *f;
    pstats_t **v;
    size_t n, cap;
} plist_t;

static int
plist_each(void *user, cri_sandbox_t *s)
{
    plist_t *l = user;
    const Runtime__V1__PodSandboxStatsFilter *f = l->f;
    pthread_mutex_lock(&l->c->lock);
    cri_sandbox_state_t state = s->state;
    pthread_mutex_unlock(&l->c->lock);
    if (state != CRI_SANDBOX_READY)
        return 0;
    if (f && f->n_label_selector &&
        (s->config == NULL || !labels_match(f->n_label_selector, (void *const *)f->label_selector,
                                            s->config->n_labels, (void *const *)s->config->labels)))
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        pstats_t **nv = realloc(l->v, nc * sizeof(*nv));
        if (nv == NULL)
            return 1;
        l->v = nv, l->cap = nc;
    }
    cri_sandbox_t *ref = NULL;
    berth_error_t *e = NULL;
    if (cri_sandbox_find(l->c, s->id, &ref, &e) < 0) {
        l->c->api->error_free(e);
        return 0;
    }
    pstats_t *x = pod_stats(l->c, ref);
    if (x)
        l->v[l->n++] = x;
    return 0;
}

int
cri_rpc_ListPodSandboxStats(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                            uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ListPodSandboxStatsRequest *r =
        runtime__v1__list_pod_sandbox_stats_request__unpack(NULL, req_len, req);
    if (r == NULL)
        return c->api->error_make(err, BERTH_EINVAL,
                                  "ListPodSandboxStats: the request does not unpack");
    samples_prune(c);
    plist_t l = {.c = c, .f = r->filter};
    if (r->filter && *r->filter->id) {
        cri_sandbox_t *s = NULL;
        berth_error_t *e = NULL;
        if (cri_sandbox_find(c, r->filter->id, &s, &e) == 0)
            plist_each(&l, s);
        c->api->error_free(e);
        cri_sandbox_unref(s);
    } else {
        cri_sandbox_foreach(c, plist_each, &l);
    }
    Runtime__V1__PodSandboxStats **msgs = calloc(l.n + 1, sizeof(*msgs));
    for (size_t i = 0; msgs && i < l.n; i++)
        msgs[i] = &l.v[i]->st;
    Runtime__V1__ListPodSandboxStatsResponse out =
        RUNTIME__V1__LIST_POD_SANDBOX_STATS_RESPONSE__INIT;
    out.n_stats = msgs ? l.n : 0;
    out.stats = msgs;
    int rc = cri_reply(c, &out.base, resp, resp_len);
    free(msgs);
    for (size_t i = 0; i < l.n; i++)
        pstats_free(l.v[i]);
    free(l.v);
    runtime__v1__list_pod_sandbox_stats_request__free_unpacked(r, NULL);
    return rc;
}

/* ListMetricDescriptors and ListPodSandboxMetrics stay Unimplemented (stubs.c), as in containerd 1.6: kubelet
 * and critest then use the stats calls above; empty answers would claim metrics that never come. */
