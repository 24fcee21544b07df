/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup statistics for the CRI stats calls (cgstats.c): where a container's or a pod's cgroup is, for the
 * cgroupfs and systemd drivers and cgroup v1 and v2, and what its files say. Pure parts are separate so
 * the unit tests run them on text and on a cgroup tree of their own.
 */
#ifndef BERTH_CRI_CGSTATS_H
#define BERTH_CRI_CGSTATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cri_cg {
    const char *root; /* "/sys/fs/cgroup" */
    int v2;           /* the unified hierarchy is mounted at root */
    int systemd;      /* cgroupsPath is "<slice>:<prefix>:<name>", cgroup parents are slice names */
} cri_cg_t;

/* 1 when root is a cgroup2 mount (v2 unified), 0 otherwise. */
int cri_cg_is_v2(const char *root);

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice" ("-.slice" -> "/"), as systemd and runc do. */
int cri_cg_expand_slice(const char *slice, char *out, size_t len);
/* The cgroup of a container's linux.cgroupsPath relative to the hierarchy's root ("/a/b"). systemd:
 * "<slice>:<prefix>:<name>" -> <expanded slice>/<prefix>-<name>.scope (a name ending in .slice is used
 * as is; an empty slice is system.slice). */
int cri_cg_rel_path(int systemd, const char *cgroups_path, char *out, size_t len);
/* The cgroup of a pod's cgroup_parent: a path (cgroupfs) or a slice name (systemd). */
int cri_cg_parent_rel_path(int systemd, const char *parent, char *out, size_t len);
/* The directory of a relative cgroup for a v1 controller ("memory", "cpuacct", "pids"), or the unified
 * directory for v2 (controller ignored). */
int cri_cg_dir(const cri_cg_t *g, const char *rel, const char *controller, char *out, size_t len);

/* "key value" lines (memory.stat, cpu.stat): 0 and *out when key is there. */
int cri_cg_kv(const char *text, const char *key, uint64_t *out);

typedef struct cri_cg_stats {
    int has_cpu, has_mem, has_pids;
    uint64_t cpu_ns; /* cumulative, all cores */
    uint64_t usage, working_set, rss, pgfault, pgmajfault;
    uint64_t limit; /* UINT64_MAX: none */
    uint64_t pids;
} cri_cg_stats_t;

/* Memory from the files' text (pure): v1 memory.usage_in_bytes, memory.limit_in_bytes, memory.stat; v2
 * memory.current, memory.max, memory.stat. Any may be NULL (missing). */
void cri_cg_memory_v1(const char *usage, const char *limit, const char *stat, cri_cg_stats_t *st);
void cri_cg_memory_v2(const char *current, const char *max, const char *stat, cri_cg_stats_t *st);
/* limit - working set; 0 when there is no limit (containerd's rule: above 2^62 is none). */
uint64_t cri_cg_available(const cri_cg_stats_t *st);

/* The cgroup's cpu, memory and pids; 0 when any part was read, BERTH_ENOTFOUND when the cgroup is not
 * there (the container does not run). */
int cri_cg_read(const cri_cg_t *g, const char *rel, cri_cg_stats_t *out);
/* Sums b into a (a pod without a parent cgroup: its containers' cgroups). */
void cri_cg_add(cri_cg_stats_t *a, const cri_cg_stats_t *b);

/* The rate: core-nanoseconds per second between two samples (ns of cpu, ns of wall time); 0 when the
 * interval is not positive or the counter went back (a restart). */
uint64_t cri_nano_cores(uint64_t prev_cpu_ns, int64_t prev_t_ns, uint64_t cpu_ns, int64_t t_ns);

typedef struct cri_netdev {
    char name[32];
    uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
} cri_netdev_t;
/* /proc/<pid>/net/dev's text: up to max interfaces (lo left out); their number. */
size_t cri_netdev_parse(const char *text, cri_netdev_t *out, size_t max);

/* A whole small file (cgroup files, /proc): malloc'd text or NULL. */
char *cri_read_text(const char *path);

#endif /* BERTH_CRI_CGSTATS_H */
