/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container networking, type "io.berth.network.v1" (module network-cni, id "cni"): CNI networks attached
 * to a container's network namespace. An endpoint is one container's attachment (named by containerd
 * namespace and container id) to one or more networks: the module creates the network namespace (bind-
 * mounted under its state dir), runs every network's CNI plugins (ADD), writes the container's
 * resolv.conf, hosts and hostname, and remembers the endpoint on disk, so it survives a berthd restart
 * while the container lives (live restore). teardown runs DEL and removes all of it; it is idempotent.
 *
 * Callers: the runtime module's Tasks service at task create and delete (container labels io.berth.network
 * and io.berth.ports), the CRI module for pods. The endpoint.pre-create hook (hooks.h) fires before each
 * network's ADD.
 *
 * Calls block (they run plugins): call them from pool threads. Thread-safe. Errors as containerd's words:
 * `network "x": not found`, InvalidArgument for bad input, FailedPrecondition for a CNI plugin's error
 * (its code and message in the text), DeadlineExceeded when a plugin ran past the module's timeout.
 */
#ifndef BERTH_NETWORK_H
#define BERTH_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_NETWORK_TYPE "io.berth.network.v1"
/* The network every install has (bridge berth0, host-local IPAM, masquerade, portmap). */
#define BERTH_NETWORK_DEFAULT "berth"

/* One published port (CNI's portMappings capability). */
typedef struct berth_port_mapping_s {
    const char *host_ip; /* NULL or "": every host address */
    uint16_t host_port;
    uint16_t container_port;
    const char *protocol; /* "tcp" or "udp"; NULL means tcp */
} berth_port_mapping_t;

/* What to attach. Strings are borrowed for the call. */
typedef struct berth_net_setup_s {
    uint32_t struct_size;
    const char *namespace_; /* containerd namespace */
    const char *id;         /* container (or pod sandbox) id: CNI_CONTAINERID */
    /* The networks, attached in order as eth0, eth1, ... At least one. */
    const char *const *networks;
    size_t n_networks;
    const berth_port_mapping_t *ports; /* given to every network whose plugins take portMappings */
    size_t n_ports;
    const berth_kv_t
        *cni_args;        /* extra CNI_ARGS (K8S_POD_NAME=..., IgnoreUnknown=1, ...); may be NULL */
    const char *hostname; /* NULL: the first 12 bytes of id */
    /* DNS for resolv.conf; each NULL-terminated, NULL for the host's (or the networks' CNI DNS result). */
    const char *const *dns_servers;
    const char *const *dns_searches;
    const char *const *dns_options;
} berth_net_setup_t;

/* One address the container got. */
typedef struct berth_net_address_s {
    char *network;   /* network name */
    char *interface; /* inside the container, e.g. "eth0" */
    char *address;   /* CIDR, e.g. "10.88.0.5/16" */
    char *gateway;   /* "" when none */
    char *mac;       /* "" when not known */
} berth_net_address_t;

/* An endpoint as set up. Filled by the module; release with result_free. */
typedef struct berth_net_result_s {
    uint32_t struct_size; /* set by the caller to sizeof(berth_net_result_t) */
    char *netns_path; /* the namespace the container joins (OCI linux.namespaces network path) */
    char *resolv_conf_path; /* files to bind-mount at /etc/resolv.conf, /etc/hosts, /etc/hostname */
    char *hosts_path;
    char *hostname_path;
    berth_net_address_t *addresses;
    size_t n_addresses;
    char *results_json; /* {"<network>": <the chain's CNI result>, ...} */
} berth_net_result_t;

typedef struct berth_network_v1_ops_s {
    uint32_t struct_size;
    /* Creates the endpoint. AlreadyExists when (namespace, id) has one. On any error, nothing is left:
     * networks already added are deleted again, the namespace is removed. */
    int (*setup)(void *net, const berth_net_setup_t *req, berth_net_result_t *out,
                 berth_error_t **err);
    /* Removes the endpoint: DEL of every network (last first), the namespace, the files, the record.
     * 0 when there is none (idempotent). */
    int (*teardown)(void *net, const char *ns, const char *id, berth_error_t **err);
    /* The endpoint as set up; NotFound when there is none. */
    int (*status)(void *net, const char *ns, const char *id, berth_net_result_t *out,
                  berth_error_t **err);
    /* CNI CHECK of every network of the endpoint. */
    int (*check)(void *net, const char *ns, const char *id, berth_error_t **err);
    /* Every endpoint (start-up reconciliation); cb returning non-zero stops. */
    int (*list)(void *net, int (*cb)(void *user, const char *ns, const char *id), void *user,
                berth_error_t **err);
    /* 1 when the default network can be set up (its plugins found), 0 with *reason (api->strdup'd, the
     * caller frees with api->free) when not: the CRI's NetworkReady condition. */
    int (*ready)(void *net, char **reason);
    void (*result_free)(void *net, berth_net_result_t *r);
    /* Added after the first version (check struct_size covers it before calling): makes the network
     * `name` from a CNI conflist (JSON text; its "name" set to name), kept across restarts as those the
     * Networks service makes; the same conflist again changes nothing, another one replaces it unless
     * endpoints use it (FailedPrecondition) or it is not one made this way (config, conf_dir). The CRI's
     * UpdateRuntimeConfig: the pod network from the pod CIDR. */
    int (*define)(void *net, const char *name, const char *conflist, berth_error_t **err);
} berth_network_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_NETWORK_H */
