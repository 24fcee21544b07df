/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's network and ports, as its labels ask for them (io.berth.network, io.berth.ports), and the
 * edits of its OCI spec that attach it: the network namespace to join or the host's, bind mounts of the
 * endpoint's resolv.conf, hosts and hostname, the hostname, and the binds of its volumes. Pure functions
 * (json-c and strings only), so every rule is unit-tested without a daemon.
 */
#ifndef BERTH_RUNTIME_ATTACH_H
#define BERTH_RUNTIME_ATTACH_H

#include <stddef.h>

#include <json-c/json.h>

#include <berth/network.h>

#define ATTACH_LABEL_NETWORK "io.berth.network"
#define ATTACH_LABEL_PORTS "io.berth.ports"

typedef enum attach_net_mode {
    ATTACH_NET_NONE = 0, /* the spec's own new netns: loopback only (the default) */
    ATTACH_NET_HOST = 1, /* the host's netns */
    ATTACH_NET_CNI = 2   /* the endpoint the network module sets up */
} attach_net_mode_t;

typedef struct attach_net {
    attach_net_mode_t mode;
    char **networks; /* ATTACH_NET_CNI: the names in label order, no duplicates */
    size_t n_networks;
    berth_port_mapping_t *ports; /* host_ip and protocol malloc'd, protocol always set */
    size_t n_ports;
} attach_net_t;

/*
 * Parses both labels (either may be NULL: absent) into *out (zeroed first; free with attach_net_free, also
 * after an error). 0, or -1 with errbuf naming the label, the bad entry and why, e.g.
 *     label io.berth.ports: entry 2 "80:x": container port "x" is not a number from 1 to 65535
 * Ports need networks: with `none`, `host` or no io.berth.network they are refused.
 */
int attach_net_parse(const char *network, const char *ports, attach_net_t *out, char *errbuf,
                     size_t errlen);
void attach_net_free(attach_net_t *n);

/* The spec's "hostname", NULL when unset or empty (borrowed from spec). */
const char *attach_spec_hostname(json_object *spec);

/* Sets "hostname" when the spec has none and a UTS namespace of its own (runc refuses a hostname in the
 * host's); 1 when set, 0 when left alone. */
int attach_spec_set_hostname(json_object *spec, const char *hostname);

/* Adds a bind mount (rbind, ro or rw) at dest, replacing any mount the spec had there. */
void attach_spec_bind(json_object *spec, const char *source, const char *dest, int readonly);

/* The host's netns, as ctr --net-host: no network namespace in linux.namespaces, and the host's
 * /etc/resolv.conf and /etc/hosts bound read-only. */
void attach_spec_host(json_object *spec);

/* Joins netns_path (the network namespace entry gets its path; added if the spec had none). */
void attach_spec_join(json_object *spec, const char *netns_path);

/* Parses a spec; NULL with errbuf set when it is not a JSON object. */
json_object *attach_spec_parse(const char *text, char *errbuf, size_t errlen);

/* The spec as text (malloc'd). */
char *attach_spec_text(json_object *spec);

#endif
