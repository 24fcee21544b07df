/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network labels and the spec edits of attach.h. Every refusal names the label, the entry (1-based,
 * as written) and what was wrong, so a user fixes the label without reading code.
 */
#include "attach.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label lists ------------------------------------------------------------------------------------- */

static int __attribute__((format(printf, 3, 4)))
fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errbuf && errlen)
        vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The comma-separated entries of a label, blanks around each removed (malloc'd strings, NULL-ended). */
static char **
split(const char *value, size_t *n)
{
    size_t cap = 1;
    for (const char *p = value; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap + 1, sizeof(*v));
    const char *p = value;
    *n = 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        v[(*n)++] = strndup(p, len);
        if (end == NULL)
            break;
        p = end + 1;
    }
    return v;
}

static void
strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int
blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- io.berth.network --------------------------------------------------------------------------------- */

/* Network names as the network module takes them (CNI's rule for a network name, the length of ours). */
static int
name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

static int
parse_networks(const char *value, attach_net_t *out, char *errbuf, size_t errlen)
{
    const char *L = ATTACH_LABEL_NETWORK;
    if (blank(value))
        return fail(errbuf, errlen, "label %s is empty (give network names, host or none)", L);
    size_t n;
    char **v = split(value, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int special = strcmp(v[i], "host") == 0 || strcmp(v[i], "none") == 0;
        if (v[i][0] == '\0')
            rc = fail(errbuf, errlen, "label %s: entry %zu is empty", L, i + 1);
        else if (special && n > 1)
            rc = fail(errbuf, errlen, "label %s: \"%s\" cannot be combined with other networks", L,
                      v[i]);
        else if (!special && !name_ok(v[i]))
            rc = fail(errbuf, errlen,
                      "label %s: entry %zu \"%s\" is not a network name (1 to 64 of "
                      "[A-Za-z0-9_.-], starting with a letter or digit)",
                      L, i + 1, v[i]);
        for (size_t j = 0; j < i && rc == 0; j++)
            if (strcmp(v[i], v[j]) == 0)
                rc = fail(errbuf, errlen, "label %s: network \"%s\" is named twice", L, v[i]);
    }
    if (rc == 0 && strcmp(v[0], "host") == 0)
        out->mode = ATTACH_NET_HOST;
    else if (rc == 0 && strcmp(v[0], "none") != 0) {
        out->mode = ATTACH_NET_CNI;
        out->networks = v;
        out->n_networks = n;
        return 0;
    }
    strv_free(v, n);
    return rc;
}

/* ---- io.berth.ports ------------------------------------------------------------------------------------ */

static int
port_of(const char *s, uint16_t *out)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Splits "[ip:]host:container" (ip may be "[v6]") into its parts, in place. */
static int
split_port_parts(char *s, char **ip, char **host, char **container)
{
    *ip = NULL;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        *close = '\0';
        *ip = s + 1;
        s = close + 2;
    }
    char *c1 = strchr(s, ':');
    if (c1 == NULL)
        return -1;
    char *c2 = strchr(c1 + 1, ':');
    if (c2 && *ip)
        return -1;
    if (c2 && strchr(c2 + 1, ':'))
        return -1;
    *c1 = '\0';
    if (c2) {
        *c2 = '\0';
        *ip = s;
        *host = c1 + 1;
        *container = c2 + 1;
    } else {
        *host = s;
        *container = c1 + 1;
    }
    return 0;
}

static int
ip_ok(const char *ip)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1;
}

#define PORTS_FORM "[hostIP:]hostPort:containerPort[/tcp|udp]"

static int
parse_port(const char *entry, size_t i, berth_port_mapping_t *pm, char *errbuf, size_t errlen)
{
    const char *L = ATTACH_LABEL_PORTS;
    char *s = strdup(entry), *ip = NULL, *host = NULL, *container = NULL;
    const char *proto = "tcp";
    char *slash = strrchr(s, '/');
    int rc = 0;
    if (slash) {
        *slash = '\0';
        proto = slash + 1;
    }
    if (entry[0] == '\0')
        rc = fail(errbuf, errlen, "label %s: entry %zu is empty", L, i);
    else if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
        rc = fail(errbuf, errlen, "label %s: entry %zu \"%s\": protocol \"%s\" is not tcp or udp",
                  L, i, entry, proto);
    else if (split_port_parts(s, &ip, &host, &container) < 0)
        rc = fail(errbuf, errlen, "label %s: entry %zu \"%s\" is not %s", L, i, entry, PORTS_FORM);
    else if (ip && ip[0] && !ip_ok(ip))
        rc = fail(errbuf, errlen, "label %s: entry %zu \"%s\": host IP \"%s\" is not an address", L,
                  i, entry, ip);
    else if (port_of(host, &pm->host_port) < 0)
        rc = fail(errbuf, errlen,
                  "label %s: entry %zu \"%s\": host port \"%s\" is not a number from 1 to 65535", L,
                  i, entry, host);
    else if (port_of(container, &pm->container_port) < 0)
        rc = fail(errbuf, errlen,
                  "label %s: entry %zu \"%s\": container port \"%s\" is not a number from 1 to "
                  "65535",
                  L, i, entry, container);
    if (rc == 0) {
        pm->host_ip = ip && ip[0] ? strdup(ip) : NULL;
        pm->protocol = strdup(proto);
    }
    free(s);
    return rc;
}

/* Two entries taking the same host port: the second would fail in the kernel, later and obscurely. */
static int
clash(const berth_port_mapping_t *a, const berth_port_mapping_t *b)
{
    if (a->host_port != b->host_port || strcmp(a->protocol, b->protocol) != 0)
        return 0;
    return a->host_ip == NULL || b->host_ip == NULL || strcmp(a->host_ip, b->host_ip) == 0;
}

static int
parse_ports(const char *value, attach_net_t *out, char *errbuf, size_t errlen)
{
    size_t n;
    char **v = split(value, &n);
    out->ports = calloc(n, sizeof(*out->ports));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = parse_port(v[i], i + 1, &out->ports[i], errbuf, errlen);
        if (rc == 0)
            out->n_ports++;
        for (size_t j = 0; j < i && rc == 0; j++)
            if (clash(&out->ports[j], &out->ports[i]))
                rc = fail(errbuf, errlen,
                          "label %s: entry %zu \"%s\": host port %u/%s is taken by "
                          "entry %zu",
                          ATTACH_LABEL_PORTS, i + 1, v[i], out->ports[i].host_port,
                          out->ports[i].protocol, j + 1);
    }
    strv_free(v, n);
    return rc;
}

int
attach_net_parse(const char *network, const char *ports, attach_net_t *out, char *errbuf,
                 size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (network && parse_networks(network, out, errbuf, errlen) < 0)
        return -1;
    if (ports == NULL || blank(ports))
        return 0;
    if (out->mode != ATTACH_NET_CNI)
        return fail(errbuf, errlen,
                    "label %s needs networks: io.berth.network is %s, so no port can be published",
                    ATTACH_LABEL_PORTS,
                    out->mode == ATTACH_NET_HOST ? "host (the container uses the host's ports)"
                                                 : "none or absent");
    return parse_ports(ports, out, errbuf, errlen);
}

void
attach_net_free(attach_net_t *n)
{
    strv_free(n->networks, n->n_networks);
    for (size_t i = 0; i < n->n_ports; i++) {
        free((char *)n->ports[i].host_ip);
        free((char *)n->ports[i].protocol);
    }
    free(n->ports);
    memset(n, 0, sizeof(*n));
}

/* ---- spec edits ---------------------------------------------------------------------------------------- */

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* o[key] as an object/array of `type`, made (replacing anything else there) when missing. */
static json_object *
ensure(json_object *o, const char *key, json_type type)
{
    json_object *v = member(o, key);
    if (v && json_object_is_type(v, type))
        return v;
    v = type == json_type_array ? json_object_new_array() : json_object_new_object();
    json_object_object_add(o, key, v);
    return v;
}

static json_object *
find_namespace(json_object *spec, const char *type, size_t *idx)
{
    json_object *nss = member(member(spec, "linux"), "namespaces");
    for (size_t i = 0;
         nss && json_object_is_type(nss, json_type_array) && i < json_object_array_length(nss);
         i++) {
        json_object *e = json_object_array_get_idx(nss, i);
        const char *t = json_object_get_string(member(e, "type"));
        if (t && strcmp(t, type) == 0) {
            if (idx)
                *idx = i;
            return e;
        }
    }
    return NULL;
}

const char *
attach_spec_hostname(json_object *spec)
{
    json_object *h = member(spec, "hostname");
    const char *s =
        h && json_object_is_type(h, json_type_string) ? json_object_get_string(h) : NULL;
    return s && s[0] ? s : NULL;
}

int
attach_spec_set_hostname(json_object *spec, const char *hostname)
{
    json_object *uts = find_namespace(spec, "uts", NULL);
    if (attach_spec_hostname(spec) || hostname == NULL || uts == NULL || member(uts, "path"))
        return 0;
    json_object_object_add(spec, "hostname", json_object_new_string(hostname));
    return 1;
}

void
attach_spec_bind(json_object *spec, const char *source, const char *dest, int readonly)
{
    json_object *mounts = ensure(spec, "mounts", json_type_array);
    /* a later mount at the same place would hide ours, an earlier one is hidden: one entry either way */
    for (size_t i = json_object_array_length(mounts); i-- > 0;) {
        const char *d =
            json_object_get_string(member(json_object_array_get_idx(mounts, i), "destination"));
        if (d && strcmp(d, dest) == 0)
            json_object_array_del_idx(mounts, i, 1);
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "destination", json_object_new_string(dest));
    json_object_object_add(m, "type", json_object_new_string("bind"));
    json_object_object_add(m, "source", json_object_new_string(source));
    json_object *opts = json_object_new_array();
    json_object_array_add(opts, json_object_new_string("rbind"));
    json_object_array_add(opts, json_object_new_string(readonly ? "ro" : "rw"));
    json_object_object_add(m, "options", opts);
    json_object_array_add(mounts, m);
}

void
attach_spec_host(json_object *spec)
{
    size_t i;
    if (find_namespace(spec, "network", &i))
        json_object_array_del_idx(member(member(spec, "linux"), "namespaces"), i, 1);
    attach_spec_bind(spec, "/etc/resolv.conf", "/etc/resolv.conf", 1);
    attach_spec_bind(spec, "/etc/hosts", "/etc/hosts", 1);
}

void
attach_spec_join(json_object *spec, const char *netns_path)
{
    json_object *e = find_namespace(spec, "network", NULL);
    if (e == NULL) {
        json_object *nss =
            ensure(ensure(spec, "linux", json_type_object), "namespaces", json_type_array);
        e = json_object_new_object();
        json_object_object_add(e, "type", json_object_new_string("network"));
        json_object_array_add(nss, e);
    }
    json_object_object_add(e, "path", json_object_new_string(netns_path));
}

json_object *
attach_spec_parse(const char *text, char *errbuf, size_t errlen)
{
    enum json_tokener_error je = json_tokener_success;
    json_object *o = text ? json_tokener_parse_verbose(text, &je) : NULL;
    if (o && json_object_is_type(o, json_type_object))
        return o;
    fail(errbuf, errlen, "spec: the container's spec is not a JSON object%s%s", o ? "" : ": ",
         o ? "" : json_tokener_error_desc(je));
    json_object_put(o);
    return NULL;
}

char *
attach_spec_text(json_object *spec)
{
    return strdup(json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
}
