/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CNI 1.0 side of network-cni, free of berthd's core table so the unit tests link it alone: building
 * what each plugin of a conflist gets on stdin (name, cniVersion, prevResult, runtimeConfig for the
 * capabilities it declares), parsing results and errors, the bridge conflists berth makes, port JSON,
 * resolv.conf filtering, name and subnet checks, and running one plugin (cni_exec).
 */
#ifndef BERTH_NETWORK_CNI_H
#define BERTH_NETWORK_CNI_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define CNI_VERSION "1.0.0"
#define CNI_MAX_OUTPUT (1u << 20) /* a plugin's stdout or stderr beyond this is cut */

/* ---- configuration -------------------------------------------------------------------------------- */

/* 1 when name is [a-zA-Z0-9][a-zA-Z0-9_.-]* and at most 64 bytes. */
int cni_valid_name(const char *name);
/* Parses "a.b.c.d/n" or an IPv6 CIDR: 0 with the family (4 or 6), the network bytes (host bits must be
 * zero) and the prefix; -1 with a message in errbuf. */
int cni_parse_subnet(const char *cidr, int *family, uint8_t addr[16], int *prefix, char *errbuf,
                     size_t errlen);
/* The subnet's first host address as text ("10.89.0.1"), into out. */
int cni_first_host(const char *cidr, char *out, size_t outlen);
/* 1 when ip (no prefix) lies inside cidr. */
int cni_ip_in_subnet(const char *ip, const char *cidr);

typedef struct cni_bridge {
    const char *name;     /* network name */
    const char *bridge;   /* Linux bridge, <= 15 bytes */
    const char *subnet;   /* CIDR */
    const char *gateway;  /* NULL or "": the first host address */
    int masquerade;       /* ipMasq */
    int internal;         /* no default route, no masquerade */
    const char *data_dir; /* host-local's dataDir (leases) */
} cni_bridge_t;

/* The conflist berth makes for a bridge network: bridge (isGateway, ipMasq, hairpinMode, host-local IPAM,
 * capability ips), portmap (portMappings, snat), firewall. NULL with errbuf on bad fields. */
json_object *cni_bridge_conflist(const cni_bridge_t *b, char *errbuf, size_t errlen);
/* Checks a conflist text: JSON object with a "plugins" array of objects each with a "type", "name" equal
 * to name (set when absent), "cniVersion" (set to CNI_VERSION when absent). host-local IPAM without a
 * dataDir gets data_dir (never /var/lib/cni). Returns the parsed object or NULL with errbuf. */
json_object *cni_conflist_parse(const char *text, const char *name, const char *data_dir,
                                char *errbuf, size_t errlen);
/* For display: first plugin's type, its bridge, the first IPAM range's subnet and gateway ("" if none).
 * Pointers into conflist. */
void cni_conflist_summary(json_object *conflist, const char **driver, const char **bridge,
                          const char **subnet, const char **gateway);

/* The stdin of plugin `i` of conflist: the plugin's object with name and cniVersion, prevResult when
 * given, and runtimeConfig holding every entry of `rt` (an object: capability -> value) whose capability
 * the plugin declares true in "capabilities". Returns a new JSON text (free with free). */
char *cni_plugin_stdin(json_object *conflist, size_t i, json_object *prev_result, json_object *rt);

/* CNI_ARGS text "K=V;K=V" from parallel arrays. */
char *cni_args_string(const char *const *keys, const char *const *values, size_t n);

/* ---- results -------------------------------------------------------------------------------------- */

/* A plugin's error output {code,msg,details}: 0 with code and a "msg (details)" text (malloc'd), -1 if
 * the output is not an error object. */
int cni_parse_error(const char *out, int *code, char **message);

typedef struct cni_addr {
    char interface[64];
    char address[64];
    char gateway[64];
    char mac[32];
} cni_addr_t;

/* The addresses a result gives the container: each of "ips" with its interface (by index into
 * "interfaces", which must have a sandbox) or `dflt_if`. Returns how many were written (at most max). */
size_t cni_result_addresses(json_object *result, const char *dflt_if, cni_addr_t *out, size_t max);

/* ---- ports and DNS -------------------------------------------------------------------------------- */

typedef struct cni_port {
    const char *host_ip;
    uint16_t host_port, container_port;
    const char *protocol;
} cni_port_t;

/* CNI's portMappings value: [{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"..."}]. */
json_object *cni_ports_json(const cni_port_t *ports, size_t n);

/* A resolv.conf from servers/searches/options (each NULL-terminated or NULL). malloc'd text. */
char *cni_resolv_conf(const char *const *servers, const char *const *searches,
                      const char *const *options);
/* The host's resolv.conf text with the nameservers a container cannot reach (127.0.0.0/8, ::1) removed.
 * *kept says how many nameserver lines are left. malloc'd text. */
char *cni_resolv_filter(const char *text, int *kept);

/* ---- running a plugin ----------------------------------------------------------------------------- */

typedef struct cni_run {
    int exit_status;  /* waitpid status decoded: exit code, or 128+signal */
    int timed_out;    /* killed after the timeout */
    int spawn_errno;  /* posix_spawn failed */
    char *out, *errt; /* stdout and stderr, NUL-terminated, cut at CNI_MAX_OUTPUT */
    size_t out_len, err_len;
} cni_run_t;

/* Runs `path` with env (NULL-terminated) and `input` on stdin; every other fd closed, signals default,
 * a timeout in ms after which it is killed. 0 when it ran (see exit_status), -1 when it could not. */
int cni_exec(const char *path, char *const env[], const char *input, size_t input_len,
             int timeout_ms, cni_run_t *r);
void cni_run_free(cni_run_t *r);

/* The first plugin_dirs entry holding an executable `type` (no '/' allowed), into out. 0 or -1. */
int cni_find_plugin(const char *const *dirs, size_t n_dirs, const char *type, char *out,
                    size_t outlen);

#endif
