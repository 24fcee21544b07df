/* SPDX-License-Identifier: Apache-2.0 */
/* network-cni's instance, shared by the network plugin (module.c, endpoint.c) and its gRPC service. */
#ifndef BERTH_NETWORK_CNI_NET_H
#define BERTH_NETWORK_CNI_NET_H

#include <pthread.h>

#include <berth/module.h>
#include <berth/network.h>

#include "cni.h"

/* One network: its conflist (owned) and where it came from. */
typedef struct network {
    char *name;
    const char *source; /* "default", "config", "file", "api" */
    json_object *conflist;
    json_object *labels; /* object of strings; may be NULL */
} network_t;

typedef struct busy_key busy_key_t;

typedef struct net {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    char *root, *state;
    char *ipam_dir;  /* <state>/ipam: host-local's dataDir for berth's networks */
    char *netns_dir; /* <state>/netns: a shared mount point holding the namespaces */
    char *ep_dir;    /* <state>/endpoints: the records, one per endpoint */
    char *api_dir;   /* <root>/networks: networks made through the API */
    char **plugin_dirs;
    size_t n_plugin_dirs;
    char *cni_path; /* plugin_dirs joined with ':' (CNI_PATH) */
    int timeout_ms;
    int loopback_plugin; /* also run the CNI loopback plugin (lo is up by ioctl anyway) */
    char *default_name;
    /* DNS for resolv.conf from config; NULL-terminated, NULL when none */
    char **dns_servers, **dns_searches, **dns_options;

    pthread_rwlock_t nets_lock; /* networks */
    network_t *nets;
    size_t n_nets;

    pthread_mutex_t busy_mu; /* endpoints being worked on, one at a time per (ns, id) */
    pthread_cond_t busy_cv;
    busy_key_t *busy;
    int netns_shared; /* netns_dir was made a shared mount point (busy_mu) */
} net_t;

/* module.c: networks */
/* A copy of the network's conflist (json_object_put it), or NULL when unknown. */
json_object *net_conflist(net_t *n, const char *name);
/* Fills *out with copies (free with network_free) of every network, name order. */
int net_list_networks(net_t *n, network_t **out, size_t *count);
void network_free(network_t *nw);
int net_create_network(net_t *n, const char *name, json_object *conflist, json_object *labels,
                       berth_error_t **err);
int net_remove_network(net_t *n, const char *name, berth_error_t **err);
int net_plugin_path(net_t *n, const char *type, char *out, size_t outlen);

/* endpoint.c: the ops */
int ep_setup(void *net, const berth_net_setup_t *req, berth_net_result_t *out, berth_error_t **err);
int ep_teardown(void *net, const char *ns, const char *id, berth_error_t **err);
int ep_status(void *net, const char *ns, const char *id, berth_net_result_t *out,
              berth_error_t **err);
int ep_check(void *net, const char *ns, const char *id, berth_error_t **err);
int ep_list(void *net, int (*cb)(void *user, const char *ns, const char *id), void *user,
            berth_error_t **err);
void ep_result_free(void *net, berth_net_result_t *r);
int ep_init_dirs(net_t *n, berth_error_t **err);
/* At fini: unmounts the netns dir when no namespace is left in it. */
void ep_fini_dirs(net_t *n);
/* Writes path through <path>.tmp and a rename (after an fsync with sync): a reader sees the old or the new
 * text, never a part. 0 or -errno. */
int net_write_atomic(const char *path, const char *text, unsigned mode, int sync);
/* CNI VERSION: every plugin of conflist found and supporting its cniVersion; InvalidArgument if not. */
int net_check_versions(net_t *n, json_object *conflist, berth_error_t **err);
/* Every endpoint record (parsed), for the service: cb gets the record; non-zero stops. */
int ep_foreach_record(net_t *n, int (*cb)(void *user, json_object *rec), void *user);

/* service.c */
extern const berth_plugin_reg_t networks_service_plugin;

#endif
