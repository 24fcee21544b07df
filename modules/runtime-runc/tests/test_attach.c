/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network labels (io.berth.network, io.berth.ports) and the spec edits that attach a container: what
 * is accepted, what each refusal says, and the JSON that runc gets.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"

static attach_net_t net;
static char msg[512];

static void
reset(void)
{
    memset(&net, 0, sizeof(net));
    msg[0] = '\0';
}

static void
release(void)
{
    attach_net_free(&net);
}

TestSuite(labels, .init = reset, .fini = release);

static void
refused(const char *network, const char *ports, const char *words)
{
    attach_net_free(&net);
    cr_assert_eq(attach_net_parse(network, ports, &net, msg, sizeof(msg)), -1,
                 "network %s ports %s was accepted", network, ports);
    cr_assert(strstr(msg, words), "network %s ports %s: \"%s\" lacks \"%s\"", network, ports, msg,
              words);
}

Test(labels, absent_means_none)
{
    cr_assert_eq(attach_net_parse(NULL, NULL, &net, msg, sizeof(msg)), 0);
    cr_assert_eq(net.mode, ATTACH_NET_NONE);
    cr_assert_eq(attach_net_parse("none", NULL, &net, msg, sizeof(msg)), 0);
    cr_assert_eq(net.mode, ATTACH_NET_NONE);
    cr_assert_eq(attach_net_parse(" host ", "", &net, msg, sizeof(msg)), 0);
    cr_assert_eq(net.mode, ATTACH_NET_HOST);
}

Test(labels, networks_in_order)
{
    cr_assert_eq(attach_net_parse("berth, back-end.2", NULL, &net, msg, sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(net.mode, ATTACH_NET_CNI);
    cr_assert_eq(net.n_networks, 2);
    cr_assert_str_eq(net.networks[0], "berth");
    cr_assert_str_eq(net.networks[1], "back-end.2");
}

Test(labels, bad_networks)
{
    refused("", NULL, "label io.berth.network is empty");
    refused("berth,", NULL, "entry 2 is empty");
    refused("host,berth", NULL, "\"host\" cannot be combined");
    refused("berth,none", NULL, "\"none\" cannot be combined");
    refused("berth,berth", NULL, "network \"berth\" is named twice");
    refused("../etc", NULL, "entry 1 \"../etc\" is not a network name");
    refused("a b", NULL, "is not a network name");
}

Test(labels, ports)
{
    cr_assert_eq(attach_net_parse("berth", "8080:80, 127.0.0.1:5353:53/udp,[::1]:9000:90/tcp", &net,
                                  msg, sizeof(msg)),
                 0, "%s", msg);
    cr_assert_eq(net.n_ports, 3);
    cr_assert_null(net.ports[0].host_ip);
    cr_assert_eq(net.ports[0].host_port, 8080);
    cr_assert_eq(net.ports[0].container_port, 80);
    cr_assert_str_eq(net.ports[0].protocol, "tcp");
    cr_assert_str_eq(net.ports[1].host_ip, "127.0.0.1");
    cr_assert_eq(net.ports[1].host_port, 5353);
    cr_assert_eq(net.ports[1].container_port, 53);
    cr_assert_str_eq(net.ports[1].protocol, "udp");
    cr_assert_str_eq(net.ports[2].host_ip, "::1");
    cr_assert_eq(net.ports[2].host_port, 9000);
}

Test(labels, same_port_other_protocol_or_address)
{
    cr_assert_eq(attach_net_parse("berth", "53:53/udp,53:53/tcp,127.0.0.1:80:80,127.0.0.2:80:80",
                                  &net, msg, sizeof(msg)),
                 0, "%s", msg);
    cr_assert_eq(net.n_ports, 4);
}

Test(labels, bad_ports)
{
    refused(NULL, "8080:80", "label io.berth.ports needs networks");
    refused("none", "8080:80", "none or absent");
    refused("host", "8080:80", "host");
    refused("berth", "80", "entry 1 \"80\" is not [hostIP:]hostPort:containerPort");
    refused("berth", "8080:80,", "entry 2 is empty");
    refused("berth", "8080:x", "container port \"x\" is not a number from 1 to 65535");
    refused("berth", "0:80", "host port \"0\" is not a number");
    refused("berth", "65536:80", "host port \"65536\"");
    refused("berth", "-1:80", "host port \"-1\"");
    refused("berth", "80:80/sctp", "protocol \"sctp\" is not tcp or udp");
    refused("berth", "1.2.3:80:80", "host IP \"1.2.3\" is not an address");
    refused("berth", "::1:80:80", "is not [hostIP:]hostPort");
    refused("berth", "[::1:80:80", "is not [hostIP:]hostPort");
    refused("berth", "a:b:c:d", "is not [hostIP:]hostPort");
    refused("berth", "8080:80,127.0.0.1:8080:81", "host port 8080/tcp is taken by entry 1");
}

/* ---- spec edits ---------------------------------------------------------------------------------------- */

static json_object *
ctr_spec(void)
{
    json_object *s = attach_spec_parse(
        "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"rootfs\"},"
        "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
        "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/x\"}],"
        "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},"
        "{\"type\":\"mount\"},{\"type\":\"network\"}]}}",
        msg, sizeof(msg));
    cr_assert_not_null(s, "%s", msg);
    return s;
}

static json_object *
at(json_object *o, const char *path)
{
    /* "a.b.3.c": keys and array indexes */
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); o && k;
         k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &o))
            return NULL;
    }
    return o;
}

static const char *
str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v ? json_object_get_string(v) : NULL;
}

static json_object *
mount_at(json_object *spec, const char *dest, int *count)
{
    json_object *mounts = at(spec, "mounts"), *found = NULL;
    *count = 0;
    for (size_t i = 0; i < json_object_array_length(mounts); i++) {
        json_object *m = json_object_array_get_idx(mounts, i);
        if (strcmp(str_at(m, "destination"), dest) == 0) {
            found = m;
            (*count)++;
        }
    }
    return found;
}

Test(spec, join_sets_the_path)
{
    json_object *s = ctr_spec();
    attach_spec_join(s, "/run/berth/netns/default-c1");
    cr_assert_eq(json_object_array_length(at(s, "linux.namespaces")), 5);
    cr_assert_str_eq(str_at(s, "linux.namespaces.4.type"), "network");
    cr_assert_str_eq(str_at(s, "linux.namespaces.4.path"), "/run/berth/netns/default-c1");
    json_object_put(s);
}

Test(spec, join_adds_a_missing_namespace)
{
    json_object *s = attach_spec_parse("{\"process\":{}}", msg, sizeof(msg));
    attach_spec_join(s, "/ns");
    cr_assert_str_eq(str_at(s, "linux.namespaces.0.type"), "network");
    cr_assert_str_eq(str_at(s, "linux.namespaces.0.path"), "/ns");
    json_object_put(s);
}

Test(spec, host_drops_the_netns_and_binds_host_files)
{
    json_object *s = ctr_spec();
    attach_spec_host(s);
    json_object *nss = at(s, "linux.namespaces");
    cr_assert_eq(json_object_array_length(nss), 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_neq(str_at(nss, (char[]){(char)('0' + i), 0}), "network");
    int n;
    json_object *m = mount_at(s, "/etc/hosts", &n);
    cr_assert_eq(n, 1, "the spec's own /etc/hosts mount is replaced, not doubled");
    cr_assert_str_eq(str_at(m, "source"), "/etc/hosts");
    cr_assert_str_eq(str_at(m, "options.1"), "ro");
    m = mount_at(s, "/etc/resolv.conf", &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(str_at(m, "type"), "bind");
    cr_assert_str_eq(str_at(m, "options.0"), "rbind");
    json_object_put(s);
}

Test(spec, bind_rw_and_ro)
{
    json_object *s = ctr_spec();
    attach_spec_bind(s, "/var/lib/berth/v/data", "/data", 0);
    attach_spec_bind(s, "/srv/cfg", "/cfg", 1);
    int n;
    json_object *m = mount_at(s, "/data", &n);
    cr_assert_str_eq(str_at(m, "source"), "/var/lib/berth/v/data");
    cr_assert_str_eq(str_at(m, "options.1"), "rw");
    cr_assert_str_eq(str_at(mount_at(s, "/cfg", &n), "options.1"), "ro");
    cr_assert_str_eq(str_at(s, "mounts.0.destination"), "/proc", "other mounts stay");
    json_object_put(s);
}

Test(spec, hostname_only_when_unset_with_own_uts)
{
    json_object *s = ctr_spec();
    cr_assert_null(attach_spec_hostname(s));
    cr_assert_eq(attach_spec_set_hostname(s, "c1"), 1);
    cr_assert_str_eq(attach_spec_hostname(s), "c1");
    cr_assert_eq(attach_spec_set_hostname(s, "other"), 0, "a hostname the spec has stays");
    cr_assert_str_eq(attach_spec_hostname(s), "c1");
    json_object_put(s);
    s = attach_spec_parse("{\"linux\":{\"namespaces\":[{\"type\":\"network\"}]}}", msg,
                          sizeof(msg));
    cr_assert_eq(attach_spec_set_hostname(s, "c1"), 0, "runc refuses a hostname without a UTS ns");
    cr_assert_null(attach_spec_hostname(s));
    json_object_put(s);
}

Test(spec, not_json)
{
    cr_assert_null(attach_spec_parse("{\"a\":", msg, sizeof(msg)));
    cr_assert(strstr(msg, "not a JSON object"), "%s", msg);
    cr_assert_null(attach_spec_parse("[1]", msg, sizeof(msg)));
}

Test(spec, text_round_trip)
{
    json_object *s = ctr_spec();
    attach_spec_join(s, "/run/x/ns");
    char *t = attach_spec_text(s);
    cr_assert(strstr(t, "\"path\":\"/run/x/ns\""), "%s", t);
    free(t);
    json_object_put(s);
}
