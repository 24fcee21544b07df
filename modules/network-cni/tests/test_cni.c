/* SPDX-License-Identifier: Apache-2.0 */
/* network-cni's pure logic: names, subnets, conflists, plugin stdin, results, errors, ports, resolv.conf,
 * and running a plugin (cni_exec) with its environment, stdin, output bound and timeout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cni.h"

static json_object *
parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    cr_assert(o != NULL, "not JSON: %s", text);
    return o;
}

static const char *
path_str(json_object *o, const char *a, const char *b)
{
    json_object *v = NULL, *w = NULL;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b == NULL)
        return json_object_get_string(v);
    return json_object_object_get_ex(v, b, &w) ? json_object_get_string(w) : NULL;
}

Test(cni, names)
{
    cr_expect(cni_valid_name("berth"));
    cr_expect(cni_valid_name("a.b_c-9"));
    cr_expect(!cni_valid_name(""));
    cr_expect(!cni_valid_name("-x"));
    cr_expect(!cni_valid_name(".x"));
    cr_expect(!cni_valid_name("a/b"));
    cr_expect(!cni_valid_name("a b"));
    char long_name[70];
    memset(long_name, 'a', 65);
    long_name[65] = 0;
    cr_expect(!cni_valid_name(long_name));
    long_name[64] = 0;
    cr_expect(cni_valid_name(long_name));
}

Test(cni, subnets)
{
    int fam, prefix;
    uint8_t a[16];
    char e[256], gw[64];
    cr_expect_eq(cni_parse_subnet("10.89.0.0/16", &fam, a, &prefix, e, sizeof(e)), 0);
    cr_expect_eq(fam, 4);
    cr_expect_eq(prefix, 16);
    cr_expect_eq(cni_parse_subnet("fd00:89::/64", &fam, a, &prefix, e, sizeof(e)), 0);
    cr_expect_eq(fam, 6);
    cr_expect_eq(cni_parse_subnet("10.89.0.1/16", &fam, a, &prefix, e, sizeof(e)), -1);
    cr_expect(strstr(e, "host bits") != NULL, "%s", e);
    cr_expect_eq(cni_parse_subnet("10.89.0.0/31", &fam, a, &prefix, e, sizeof(e)), -1);
    cr_expect_eq(cni_parse_subnet("10.89.0.0", &fam, a, &prefix, e, sizeof(e)), -1);
    cr_expect(strstr(e, "not a CIDR") != NULL, "%s", e);
    cr_expect_eq(cni_parse_subnet("x/8", &fam, a, &prefix, e, sizeof(e)), -1);
    cr_expect_eq(cni_parse_subnet("10.0.0.0/8x", &fam, a, &prefix, e, sizeof(e)), -1);
    cr_expect_eq(cni_first_host("10.89.0.0/16", gw, sizeof(gw)), 0);
    cr_expect_str_eq(gw, "10.89.0.1");
    cr_expect_eq(cni_first_host("fd00:89::/64", gw, sizeof(gw)), 0);
    cr_expect_str_eq(gw, "fd00:89::1");
    cr_expect(cni_ip_in_subnet("10.89.255.3", "10.89.0.0/16"));
    cr_expect(!cni_ip_in_subnet("10.90.0.3", "10.89.0.0/16"));
}

Test(cni, the_default_bridge_conflist)
{
    char e[256];
    cni_bridge_t b = {.name = "berth",
                      .bridge = "berth0",
                      .subnet = "10.89.0.0/16",
                      .masquerade = 1,
                      .data_dir = "/run/x/ipam"};
    json_object *c = cni_bridge_conflist(&b, e, sizeof(e));
    cr_assert(c != NULL, "%s", e);
    cr_expect_str_eq(path_str(c, "name", NULL), "berth");
    cr_expect_str_eq(path_str(c, "cniVersion", NULL), "1.0.0");
    json_object *plugins;
    json_object_object_get_ex(c, "plugins", &plugins);
    cr_assert_eq(json_object_array_length(plugins), 3);
    json_object *br = json_object_array_get_idx(plugins, 0);
    cr_expect_str_eq(path_str(br, "type", NULL), "bridge");
    cr_expect_str_eq(path_str(br, "bridge", NULL), "berth0");
    cr_expect_str_eq(path_str(br, "isGateway", NULL), "true");
    cr_expect_str_eq(path_str(br, "ipMasq", NULL), "true");
    cr_expect_str_eq(path_str(br, "hairpinMode", NULL), "true");
    cr_expect_str_eq(path_str(br, "ipam", "type"), "host-local");
    cr_expect_str_eq(path_str(br, "ipam", "dataDir"), "/run/x/ipam");
    const char *d, *bb, *s, *g;
    cni_conflist_summary(c, &d, &bb, &s, &g);
    cr_expect_str_eq(d, "bridge");
    cr_expect_str_eq(bb, "berth0");
    cr_expect_str_eq(s, "10.89.0.0/16");
    cr_expect_str_eq(g, "10.89.0.1");
    json_object *pm = json_object_array_get_idx(plugins, 1);
    cr_expect_str_eq(path_str(pm, "type", NULL), "portmap");
    cr_expect_str_eq(path_str(pm, "capabilities", "portMappings"), "true");
    cr_expect_str_eq(path_str(pm, "snat", NULL), "true");
    cr_expect_str_eq(path_str(json_object_array_get_idx(plugins, 2), "type", NULL), "firewall");
    json_object_put(c);

    b.internal = 1;
    c = cni_bridge_conflist(&b, e, sizeof(e));
    br = json_object_array_get_idx(json_object_object_get(c, "plugins"), 0);
    cr_expect_str_eq(path_str(br, "ipMasq", NULL), "false");
    cr_expect_null(path_str(br, "ipam", "routes"), "an internal network has no default route");
    json_object_put(c);

    b.internal = 0;
    b.no_firewall = 1;
    c = cni_bridge_conflist(&b, e, sizeof(e));
    cr_expect_eq(json_object_array_length(json_object_object_get(c, "plugins")), 2);
    cr_expect(strstr(json_object_to_json_string(c), "firewall") == NULL);
    json_object_put(c);
    b.no_firewall = 0;
    b.gateway = "10.88.0.1";
    cr_expect_null(cni_bridge_conflist(&b, e, sizeof(e)));
    cr_expect(strstr(e, "not an address in subnet") != NULL, "%s", e);
    b.gateway = NULL;
    b.bridge = "sixteen-bytes-xx";
    cr_expect_null(cni_bridge_conflist(&b, e, sizeof(e)));
    cr_expect(strstr(e, "1..15 bytes") != NULL, "%s", e);
}

Test(cni, conflist_parse)
{
    char e[256];
    json_object *c = cni_conflist_parse(
        "{\"plugins\":[{\"type\":\"bridge\",\"ipam\":{\"type\":\"host-local\"}},"
        "{\"type\":\"x\",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"/keep\"}}]}",
        "n1", "/run/ipam", e, sizeof(e));
    cr_assert(c != NULL, "%s", e);
    cr_expect_str_eq(path_str(c, "name", NULL), "n1");
    cr_expect_str_eq(path_str(c, "cniVersion", NULL), "1.0.0");
    json_object *plugins = json_object_object_get(c, "plugins");
    cr_expect_str_eq(path_str(json_object_array_get_idx(plugins, 0), "ipam", "dataDir"),
                     "/run/ipam", "host-local's leases stay out of /var/lib/cni");
    cr_expect_str_eq(path_str(json_object_array_get_idx(plugins, 1), "ipam", "dataDir"), "/keep");
    json_object_put(c);
    cr_expect_null(cni_conflist_parse("{", "n1", NULL, e, sizeof(e)));
    cr_expect(strstr(e, "not valid JSON") != NULL, "%s", e);
    cr_expect_null(cni_conflist_parse("[]", "n1", NULL, e, sizeof(e)));
    cr_expect_null(cni_conflist_parse("{\"plugins\":[]}", "n1", NULL, e, sizeof(e)));
    cr_expect_null(
        cni_conflist_parse("{\"name\":\"n2\",\"plugins\":[{\"type\":\"a\"}]}", "n1", NULL, e, 256));
    cr_expect(strstr(e, "differs") != NULL, "%s", e);
    cr_expect_null(cni_conflist_parse("{\"plugins\":[{\"type\":\"../../bin/sh\"}]}", "n1", NULL, e,
                                      sizeof(e)));
    cr_expect_null(cni_conflist_parse("{\"plugins\":[{}]}", "n1", NULL, e, sizeof(e)));
}

Test(cni, plugin_stdin_gets_name_version_prev_result_and_declared_capabilities_only)
{
    json_object *c = parse("{\"cniVersion\":\"0.4.0\",\"name\":\"net\",\"plugins\":["
                           "{\"type\":\"bridge\",\"capabilities\":{\"ips\":true}},"
                           "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true,"
                           "\"ips\":false}}]}");
    json_object *rt =
        parse("{\"portMappings\":[{\"hostPort\":8080}],\"ips\":[\"10.1.0.9/24\"],\"mac\":\"x\"}");
    json_object *prev = parse("{\"ips\":[{\"address\":\"10.1.0.9/24\"}]}");
    char *s0 = cni_plugin_stdin(c, 0, NULL, rt);
    json_object *p0 = parse(s0);
    cr_expect_str_eq(path_str(p0, "name", NULL), "net");
    cr_expect_str_eq(path_str(p0, "cniVersion", NULL), "0.4.0");
    cr_expect_str_eq(path_str(p0, "type", NULL), "bridge");
    cr_expect_null(path_str(p0, "prevResult", NULL));
    json_object *rc0 = json_object_object_get(p0, "runtimeConfig");
    cr_assert(rc0 != NULL, "%s", s0);
    cr_expect_eq(json_object_object_length(rc0), 1, "%s", s0);
    cr_expect(json_object_object_get(rc0, "ips") != NULL);
    char *s1 = cni_plugin_stdin(c, 1, prev, rt);
    json_object *p1 = parse(s1);
    cr_expect(json_object_object_get(p1, "prevResult") != NULL, "%s", s1);
    json_object *rc1 = json_object_object_get(p1, "runtimeConfig");
    cr_expect_eq(json_object_object_length(rc1), 1, "%s", s1);
    cr_expect(json_object_object_get(rc1, "portMappings") != NULL, "%s", s1);
    /* no capabilities declared, or none given: no runtimeConfig at all */
    char *s2 = cni_plugin_stdin(c, 0, NULL, NULL);
    cr_expect(strstr(s2, "runtimeConfig") == NULL, "%s", s2);
    json_object *empty = parse("{}");
    char *s3 = cni_plugin_stdin(c, 1, NULL, empty);
    cr_expect(strstr(s3, "runtimeConfig") == NULL, "%s", s3);
    free(s0), free(s1), free(s2), free(s3);
    json_object_put(p0), json_object_put(p1), json_object_put(c), json_object_put(rt);
    json_object_put(prev), json_object_put(empty);
}

Test(cni, args_string)
{
    const char *k[] = {"IgnoreUnknown", "IP"}, *v[] = {"1", "10.0.0.5"};
    char *s = cni_args_string(k, v, 2);
    cr_expect_str_eq(s, "IgnoreUnknown=1;IP=10.0.0.5");
    free(s);
    s = cni_args_string(k, v, 0);
    cr_expect_str_eq(s, "");
    free(s);
}

Test(cni, errors)
{
    int code;
    char *msg;
    cr_assert_eq(cni_parse_error("{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"bad config\","
                                 "\"details\":\"no bridge\"}",
                                 &code, &msg),
                 0);
    cr_expect_eq(code, 7);
    cr_expect_str_eq(msg, "bad config (no bridge)");
    free(msg);
    cr_assert_eq(cni_parse_error("{\"code\":11,\"msg\":\"try again\"}", &code, &msg), 0);
    cr_expect_str_eq(msg, "try again");
    free(msg);
    cr_expect_eq(cni_parse_error("panic: runtime error", &code, &msg), -1);
    cr_expect_eq(cni_parse_error("{\"msg\":\"no code\"}", &code, &msg), -1);
    cr_expect_eq(cni_parse_error("", &code, &msg), -1);
}

Test(cni, result_addresses_are_the_containers)
{
    json_object *r =
        parse("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"berth0\",\"mac\":\"11:11:11:"
              "11:11:11\"},"
              "{\"name\":\"veth1\",\"mac\":\"22:22:22:22:22:22\"},"
              "{\"name\":\"eth0\",\"mac\":\"33:33:33:33:33:33\",\"sandbox\":\"/run/netns/x\"}],"
              "\"ips\":[{\"address\":\"10.89.0.1/16\",\"interface\":0},"
              "{\"address\":\"10.89.0.5/16\",\"gateway\":\"10.89.0.1\",\"interface\":2},"
              "{\"address\":\"fd00::5/64\",\"interface\":2}]}");
    cni_addr_t a[4];
    size_t n = cni_result_addresses(r, "ethX", a, 4);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(a[0].address, "10.89.0.5/16");
    cr_expect_str_eq(a[0].gateway, "10.89.0.1");
    cr_expect_str_eq(a[0].interface, "eth0");
    cr_expect_str_eq(a[0].mac, "33:33:33:33:33:33");
    cr_expect_str_eq(a[1].address, "fd00::5/64");
    cr_expect_str_eq(a[1].gateway, "");
    cr_expect_eq(cni_result_addresses(r, "eth0", a, 1), 1, "bounded by max");
    json_object_put(r);
    /* no interfaces: the default name */
    r = parse("{\"ips\":[{\"address\":\"10.0.0.2/24\"}]}");
    cr_assert_eq(cni_result_addresses(r, "eth3", a, 4), 1);
    cr_expect_str_eq(a[0].interface, "eth3");
    json_object_put(r);
    cr_expect_eq(cni_result_addresses(NULL, "eth0", a, 4), 0);
}

Test(cni, ports_json)
{
    cni_port_t p[] = {{"127.0.0.1", 8080, 80, "tcp"}, {NULL, 5353, 53, "udp"}, {"", 1, 2, NULL}};
    json_object *a = cni_ports_json(p, 3);
    cr_expect_str_eq(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                     "[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\",\"hostIP\":"
                     "\"127.0.0.1\"},{\"hostPort\":5353,\"containerPort\":53,\"protocol\":\"udp\"},"
                     "{\"hostPort\":1,\"containerPort\":2,\"protocol\":\"tcp\"}]");
    json_object_put(a);
}

Test(cni, resolv_conf)
{
    int kept;
    char *s = cni_resolv_filter("# generated\nnameserver 127.0.0.53\nnameserver ::1\n"
                                "nameserver 192.0.2.1\n  nameserver 127.1.2.3\nsearch a.test\n"
                                "options edns0",
                                &kept);
    cr_expect_str_eq(s, "# generated\nnameserver 192.0.2.1\nsearch a.test\noptions edns0\n");
    cr_expect_eq(kept, 1);
    free(s);
    s = cni_resolv_filter("nameserver 127.0.0.53\n", &kept);
    cr_expect_eq(kept, 0);
    cr_expect_str_eq(s, "");
    free(s);
    const char *sv[] = {"192.0.2.1", "192.0.2.2", NULL}, *se[] = {"a.test", "b.test", NULL},
               *op[] = {"ndots:2", NULL};
    s = cni_resolv_conf(sv, se, op);
    cr_expect_str_eq(s, "nameserver 192.0.2.1\nnameserver 192.0.2.2\nsearch a.test b.test\n"
                        "options ndots:2\n");
    free(s);
    s = cni_resolv_conf(sv, NULL, NULL);
    cr_expect_str_eq(s, "nameserver 192.0.2.1\nnameserver 192.0.2.2\n");
    free(s);
}

static char *const env[] = {"CNI_COMMAND=ADD", "CNI_IFNAME=eth0", "PATH=/usr/bin:/bin", NULL};

Test(cni, exec_passes_stdin_env_and_output)
{
    cni_run_t r;
    cr_assert_eq(cni_exec("/bin/cat", env, "{\"a\":1}", 7, 5000, &r), 0);
    cr_expect_eq(r.exit_status, 0);
    cr_expect_str_eq(r.out, "{\"a\":1}");
    cni_run_free(&r);
    cr_assert_eq(cni_exec("/usr/bin/env", env, "", 0, 5000, &r), 0);
    cr_expect_str_eq(r.out, "CNI_COMMAND=ADD\nCNI_IFNAME=eth0\nPATH=/usr/bin:/bin\n");
    cni_run_free(&r);
    cr_assert_eq(cni_exec("/bin/false", env, "x", 1, 5000, &r), 0);
    cr_expect_eq(r.exit_status, 1);
    cni_run_free(&r);
    cr_expect_eq(cni_exec("/nonexistent/plugin", env, "", 0, 5000, &r), -1);
    cr_expect_neq(r.spawn_errno, 0);
}

Test(cni, exec_closes_other_fds)
{
    int fd = dup(2); /* not close-on-exec: the child must still not get it */
    cni_run_t r;
    FILE *f = fopen("/tmp/berth-cni-fds.sh", "w");
    fprintf(f, "#!/bin/sh\n[ -e /proc/$$/fd/%d ] && echo open || echo closed\n", fd);
    fclose(f);
    chmod("/tmp/berth-cni-fds.sh", 0755);
    cr_assert_eq(cni_exec("/tmp/berth-cni-fds.sh", env, "", 0, 5000, &r), 0);
    cr_expect_str_eq(r.out, "closed\n", "the plugin got fd %d", fd);
    cni_run_free(&r);
    unlink("/tmp/berth-cni-fds.sh");
    close(fd);
}

Test(cni, exec_kills_on_timeout_and_bounds_output)
{
    FILE *f = fopen("/tmp/berth-cni-slow.sh", "w");
    fprintf(f, "#!/bin/sh\necho started\nexec sleep 10\n");
    fclose(f);
    chmod("/tmp/berth-cni-slow.sh", 0755);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cni_run_t r;
    cr_assert_eq(cni_exec("/tmp/berth-cni-slow.sh", env, "", 0, 300, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_expect(r.timed_out);
    cr_expect_eq(r.exit_status, 128 + 9);
    cr_expect_lt(b.tv_sec - a.tv_sec, 3);
    cni_run_free(&r);
    unlink("/tmp/berth-cni-slow.sh");
    /* a flood of output is cut at CNI_MAX_OUTPUT and the plugin still ends */
    f = fopen("/tmp/berth-cni-flood.sh", "w");
    fprintf(f, "#!/bin/sh\nexec head -c 3000000 /dev/zero\n");
    fclose(f);
    chmod("/tmp/berth-cni-flood.sh", 0755);
    cr_assert_eq(cni_exec("/tmp/berth-cni-flood.sh", env, "", 0, 5000, &r), 0);
    cr_expect_eq(r.out_len, CNI_MAX_OUTPUT);
    cr_expect_eq(r.exit_status, 0);
    cni_run_free(&r);
    unlink("/tmp/berth-cni-flood.sh");
    /* a plugin that exits without reading a large stdin does not hurt (no SIGPIPE) */
    static char big[1 << 20];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(cni_exec("/bin/true", env, big, sizeof(big), 5000, &r), 0);
    cr_expect_eq(r.exit_status, 0);
    cni_run_free(&r);
}

Test(cni, find_plugin)
{
    const char *dirs[] = {"/nonexistent", "/bin"};
    char out[256];
    cr_expect_eq(cni_find_plugin(dirs, 2, "true", out, sizeof(out)), 0);
    cr_expect_str_eq(out, "/bin/true");
    cr_expect_eq(cni_find_plugin(dirs, 2, "../bin/true", out, sizeof(out)), -1);
    cr_expect_eq(cni_find_plugin(dirs, 2, "no-such-plugin", out, sizeof(out)), -1);
    cr_expect_eq(cni_find_plugin(dirs, 2, "", out, sizeof(out)), -1);
}
