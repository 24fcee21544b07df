/* SPDX-License-Identifier: Apache-2.0 */
/* CNI conflists, plugin stdin, results and errors, ports, resolv.conf: pure functions (see cni.h). */
#include "cni.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cni_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
            return 0;
    return 1;
}

int
cni_parse_subnet(const char *cidr, int *family, uint8_t addr[16], int *prefix, char *errbuf,
                 size_t errlen)
{
    char ip[64];
    const char *slash = cidr ? strchr(cidr, '/') : NULL;
    if (slash == NULL || (size_t)(slash - cidr) >= sizeof(ip)) {
        snprintf(errbuf, errlen, "subnet \"%s\" is not a CIDR (address/prefix)", cidr ? cidr : "");
        return -1;
    }
    memcpy(ip, cidr, slash - cidr);
    ip[slash - cidr] = 0;
    memset(addr, 0, 16);
    int bits;
    if (inet_pton(AF_INET, ip, addr) == 1)
        *family = 4, bits = 32;
    else if (inet_pton(AF_INET6, ip, addr) == 1)
        *family = 6, bits = 128;
    else {
        snprintf(errbuf, errlen, "subnet \"%s\": \"%s\" is not an IP address", cidr, ip);
        return -1;
    }
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (slash[1] == 0 || *end || p < 1 || p > bits - 2) {
        snprintf(errbuf, errlen, "subnet \"%s\": prefix must be 1..%d", cidr, bits - 2);
        return -1;
    }
    for (int b = (int)p; b < bits; b++)
        if (addr[b / 8] & (0x80 >> (b % 8))) {
            snprintf(errbuf, errlen, "subnet \"%s\": address has host bits set", cidr);
            return -1;
        }
    *prefix = (int)p;
    return 0;
}

int
cni_first_host(const char *cidr, char *out, size_t outlen)
{
    int fam, prefix;
    uint8_t a[16];
    char e[128];
    if (cni_parse_subnet(cidr, &fam, a, &prefix, e, sizeof(e)) < 0)
        return -1;
    int last = fam == 4 ? 3 : 15;
    a[last] |= 1;
    return inet_ntop(fam == 4 ? AF_INET : AF_INET6, a, out, outlen) ? 0 : -1;
}

int
cni_ip_in_subnet(const char *ip, const char *cidr)
{
    int fam, prefix;
    uint8_t net[16], a[16] = {0};
    char e[128];
    if (cni_parse_subnet(cidr, &fam, net, &prefix, e, sizeof(e)) < 0 ||
        inet_pton(fam == 4 ? AF_INET : AF_INET6, ip, a) != 1)
        return 0;
    for (int b = 0; b < prefix; b++)
        if ((a[b / 8] ^ net[b / 8]) & (0x80 >> (b % 8)))
            return 0;
    return 1;
}

static json_object *
caps(const char *a, const char *b)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, a, json_object_new_boolean(1));
    if (b)
        json_object_object_add(c, b, json_object_new_boolean(1));
    return c;
}

json_object *
cni_bridge_conflist(const cni_bridge_t *b, char *errbuf, size_t errlen)
{
    int fam, prefix;
    uint8_t a[16];
    char gw[64];
    if (!b->bridge || !*b->bridge || strlen(b->bridge) > 15 || strchr(b->bridge, '/') ||
        strchr(b->bridge, ' ')) {
        snprintf(errbuf, errlen, "bridge name \"%s\" must be 1..15 bytes without '/' or spaces",
                 b->bridge ? b->bridge : "");
        return NULL;
    }
    if (cni_parse_subnet(b->subnet, &fam, a, &prefix, errbuf, errlen) < 0)
        return NULL;
    if (b->gateway && *b->gateway) {
        if (!cni_ip_in_subnet(b->gateway, b->subnet)) {
            snprintf(errbuf, errlen, "gateway \"%s\" is not an address in subnet %s", b->gateway,
                     b->subnet);
            return NULL;
        }
        snprintf(gw, sizeof(gw), "%s", b->gateway);
    } else
        cni_first_host(b->subnet, gw, sizeof(gw));

    json_object *range = json_object_new_object();
    json_object_object_add(range, "subnet", json_object_new_string(b->subnet));
    json_object_object_add(range, "gateway", json_object_new_string(gw));
    json_object *set = json_object_new_array();
    json_object_array_add(set, range);
    json_object *ranges = json_object_new_array();
    json_object_array_add(ranges, set);
    json_object *ipam = json_object_new_object();
    json_object_object_add(ipam, "type", json_object_new_string("host-local"));
    json_object_object_add(ipam, "ranges", ranges);
    if (!b->internal) {
        json_object *route = json_object_new_object();
        json_object_object_add(route, "dst",
                               json_object_new_string(fam == 4 ? "0.0.0.0/0" : "::/0"));
        json_object *routes = json_object_new_array();
        json_object_array_add(routes, route);
        json_object_object_add(ipam, "routes", routes);
    }
    if (b->data_dir)
        json_object_object_add(ipam, "dataDir", json_object_new_string(b->data_dir));

    json_object *br = json_object_new_object();
    json_object_object_add(br, "type", json_object_new_string("bridge"));
    json_object_object_add(br, "bridge", json_object_new_string(b->bridge));
    json_object_object_add(br, "isGateway", json_object_new_boolean(1));
    json_object_object_add(br, "ipMasq", json_object_new_boolean(b->masquerade && !b->internal));
    json_object_object_add(br, "hairpinMode", json_object_new_boolean(1));
    json_object_object_add(br, "capabilities", caps("ips", NULL));
    json_object_object_add(br, "ipam", ipam);

    json_object *pm = json_object_new_object();
    json_object_object_add(pm, "type", json_object_new_string("portmap"));
    json_object_object_add(pm, "capabilities", caps("portMappings", NULL));
    json_object_object_add(pm, "snat", json_object_new_boolean(1));

    json_object *fw = json_object_new_object();
    json_object_object_add(fw, "type", json_object_new_string("firewall"));

    json_object *plugins = json_object_new_array();
    json_object_array_add(plugins, br);
    json_object_array_add(plugins, pm);
    json_object_array_add(plugins, fw);
    json_object *c = json_object_new_object();
    json_object_object_add(c, "cniVersion", json_object_new_string(CNI_VERSION));
    json_object_object_add(c, "name", json_object_new_string(b->name));
    json_object_object_add(c, "plugins", plugins);
    return c;
}

static const char *
str_of(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

json_object *
cni_conflist_parse(const char *text, const char *name, const char *data_dir, char *errbuf,
                   size_t errlen)
{
    enum json_tokener_error jerr;
    json_object *c = json_tokener_parse_verbose(text ? text : "", &jerr);
    if (c == NULL) {
        snprintf(errbuf, errlen, "conflist is not valid JSON: %s", json_tokener_error_desc(jerr));
        return NULL;
    }
    json_object *plugins;
    if (!json_object_is_type(c, json_type_object) ||
        !json_object_object_get_ex(c, "plugins", &plugins) ||
        !json_object_is_type(plugins, json_type_array) || json_object_array_length(plugins) == 0) {
        snprintf(errbuf, errlen, "conflist must be an object with a non-empty \"plugins\" array");
        goto bad;
    }
    const char *n = str_of(c, "name");
    if (n && *n && strcmp(n, name) != 0) {
        snprintf(errbuf, errlen, "conflist name \"%s\" differs from the network name \"%s\"", n,
                 name);
        goto bad;
    }
    json_object_object_add(c, "name", json_object_new_string(name));
    if (!str_of(c, "cniVersion"))
        json_object_object_add(c, "cniVersion", json_object_new_string(CNI_VERSION));
    for (size_t i = 0; i < json_object_array_length(plugins); i++) {
        json_object *p = json_object_array_get_idx(plugins, i);
        const char *type = str_of(p, "type");
        if (!type || !*type || strchr(type, '/') || strstr(type, "..")) {
            snprintf(errbuf, errlen, "conflist plugin %zu has no valid \"type\"", i);
            goto bad;
        }
        json_object *ipam;
        if (data_dir && json_object_object_get_ex(p, "ipam", &ipam) &&
            json_object_is_type(ipam, json_type_object)) {
            const char *it = str_of(ipam, "type");
            if (it && strcmp(it, "host-local") == 0 && !str_of(ipam, "dataDir"))
                json_object_object_add(ipam, "dataDir", json_object_new_string(data_dir));
        }
    }
    return c;
bad:
    json_object_put(c);
    return NULL;
}

void
cni_conflist_summary(json_object *conflist, const char **driver, const char **bridge,
                     const char **subnet, const char **gateway)
{
    *driver = *bridge = *subnet = *gateway = "";
    json_object *plugins, *ipam, *v;
    if (!json_object_object_get_ex(conflist, "plugins", &plugins))
        return;
    json_object *p = json_object_array_get_idx(plugins, 0);
    const char *s;
    if ((s = str_of(p, "type")))
        *driver = s;
    if ((s = str_of(p, "bridge")))
        *bridge = s;
    if (!json_object_object_get_ex(p, "ipam", &ipam))
        return;
    json_object *range = NULL;
    if (json_object_object_get_ex(ipam, "ranges", &v))
        range = json_object_array_get_idx(json_object_array_get_idx(v, 0), 0);
    else
        range = ipam;
    if ((s = str_of(range, "subnet")))
        *subnet = s;
    if ((s = str_of(range, "gateway")))
        *gateway = s;
}

char *
cni_plugin_stdin(json_object *conflist, size_t i, json_object *prev_result, json_object *rt)
{
    json_object *plugins, *caps_o;
    json_object_object_get_ex(conflist, "plugins", &plugins);
    json_object *p = NULL;
    json_object_deep_copy(json_object_array_get_idx(plugins, i), &p, NULL);
    json_object_object_add(p, "name", json_object_new_string(str_of(conflist, "name")));
    json_object_object_add(p, "cniVersion",
                           json_object_new_string(str_of(conflist, "cniVersion")
                                                      ? str_of(conflist, "cniVersion")
                                                      : CNI_VERSION));
    if (prev_result)
        json_object_object_add(p, "prevResult", json_object_get(prev_result));
    if (rt && json_object_object_get_ex(p, "capabilities", &caps_o)) {
        json_object *out = json_object_new_object();
        json_object_object_foreach(rt, key, val)
        {
            json_object *on;
            if (json_object_object_get_ex(caps_o, key, &on) && json_object_get_boolean(on))
                json_object_object_add(out, key, json_object_get(val));
        }
        if (json_object_object_length(out) > 0)
            json_object_object_add(p, "runtimeConfig", out);
        else
            json_object_put(out);
    }
    char *text = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
    json_object_put(p);
    return text;
}

char *
cni_args_string(const char *const *keys, const char *const *values, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(keys[i]) + strlen(values[i]) + 2;
    char *s = calloc(1, len), *w = s;
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s%s=%s", i ? ";" : "", keys[i], values[i]);
    return s;
}

int
cni_parse_error(const char *out, int *code, char **message)
{
    json_object *o = out ? json_tokener_parse(out) : NULL, *c;
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "code", &c)) {
        json_object_put(o);
        return -1;
    }
    *code = json_object_get_int(c);
    const char *msg = str_of(o, "msg"), *details = str_of(o, "details");
    if (details && *details) {
        if (asprintf(message, "%s (%s)", msg ? msg : "", details) < 0)
            *message = NULL;
    } else
        *message = strdup(msg ? msg : "");
    json_object_put(o);
    return 0;
}

size_t
cni_result_addresses(json_object *result, const char *dflt_if, cni_addr_t *out, size_t max)
{
    json_object *ips, *ifs = NULL, *idx;
    size_t n = 0;
    if (!result || !json_object_object_get_ex(result, "ips", &ips))
        return 0;
    json_object_object_get_ex(result, "interfaces", &ifs);
    for (size_t i = 0; i < json_object_array_length(ips) && n < max; i++) {
        json_object *ip = json_object_array_get_idx(ips, i);
        const char *a = str_of(ip, "address");
        if (!a)
            continue;
        cni_addr_t *o = &out[n];
        memset(o, 0, sizeof(*o));
        snprintf(o->interface, sizeof(o->interface), "%s", dflt_if);
        if (json_object_object_get_ex(ip, "interface", &idx) && ifs) {
            json_object *itf = json_object_array_get_idx(ifs, json_object_get_int(idx));
            const char *sb = str_of(itf, "sandbox");
            if (!sb || !*sb)
                continue; /* a host-side address (the bridge's), not the container's */
            if (str_of(itf, "name"))
                snprintf(o->interface, sizeof(o->interface), "%s", str_of(itf, "name"));
            if (str_of(itf, "mac"))
                snprintf(o->mac, sizeof(o->mac), "%s", str_of(itf, "mac"));
        }
        snprintf(o->address, sizeof(o->address), "%s", a);
        if (str_of(ip, "gateway"))
            snprintf(o->gateway, sizeof(o->gateway), "%s", str_of(ip, "gateway"));
        n++;
    }
    return n;
}

json_object *
cni_ports_json(const cni_port_t *ports, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "hostPort", json_object_new_int(ports[i].host_port));
        json_object_object_add(m, "containerPort", json_object_new_int(ports[i].container_port));
        json_object_object_add(m, "protocol",
                               json_object_new_string(ports[i].protocol && *ports[i].protocol
                                                          ? ports[i].protocol
                                                          : "tcp"));
        if (ports[i].host_ip && *ports[i].host_ip)
            json_object_object_add(m, "hostIP", json_object_new_string(ports[i].host_ip));
        json_object_array_add(a, m);
    }
    return a;
}

static void
append(char **buf, size_t *len, const char *fmt, const char *a, const char *b)
{
    char *line;
    int n = asprintf(&line, fmt, a, b);
    if (n < 0)
        return;
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, line, n + 1);
    *len += n;
    free(line);
}

char *
cni_resolv_conf(const char *const *servers, const char *const *searches, const char *const *options)
{
    char *buf = strdup("");
    size_t len = 0;
    for (size_t i = 0; servers && servers[i]; i++)
        append(&buf, &len, "nameserver %s%s\n", servers[i], "");
    for (size_t i = 0; searches && searches[i]; i++)
        append(&buf, &len, i == 0 ? "search %s%s" : " %s%s", searches[i], "");
    if (searches && searches[0])
        append(&buf, &len, "%s%s\n", "", "");
    for (size_t i = 0; options && options[i]; i++)
        append(&buf, &len, i == 0 ? "options %s%s" : " %s%s", options[i], "");
    if (options && options[0])
        append(&buf, &len, "%s%s\n", "", "");
    return buf;
}

static int
loopback_server(const char *s)
{
    return strncmp(s, "127.", 4) == 0 || strcmp(s, "::1") == 0 || strcmp(s, "0:0:0:0:0:0:0:1") == 0;
}

char *
cni_resolv_filter(const char *text, int *kept)
{
    char *buf = strdup("");
    size_t len = 0;
    *kept = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024], server[256];
        snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), p);
        int is_ns = sscanf(line, " nameserver %255s", server) == 1;
        if (!is_ns || !loopback_server(server)) {
            append(&buf, &len, "%s%s\n", line, "");
            *kept += is_ns;
        }
        p += n + (nl ? 1 : 0);
    }
    return buf;
}
