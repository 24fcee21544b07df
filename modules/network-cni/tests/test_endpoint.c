/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoints through the ABI (abi/berth/network.h): the real network-cni.so, loaded by its descriptor, with
 * the core's real function table (its hook_invoke replaced by the test's handler), on real network
 * namespaces with Debian's CNI plugins. Each test has its own bridges and a 10.231.x.0/24 subnet, and
 * checks that teardown leaves no veth, netns mount, IPAM lease or iptables rule behind.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <berth/module.h>
#include <berth/network.h>

#include "config.h"

extern const berth_core_api_t berth__core_api;

static berth_core_api_t api_copy;
static const berth_core_api_t *api = &api_copy;
static char dir[64], state[128], root[128], br1[16], br2[16], br3[16];
static int k; /* third octet of this run's subnets: k, k+1, k+2 */
static void *handle;
static const berth_plugin_reg_t *reg;
static const berth_network_v1_ops_t *ops;
static void *net;
static berth_error_t *err;
static berth__config_t cfg;
static char hook_log[4096];

/* Runs a shell command, returns its stdout (static buffer). */
static const char *
sh(const char *fmt, ...)
{
    static char out[65536];
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
    out[n] = 0;
    if (p)
        pclose(p);
    return out;
}

/* The endpoint.pre-create handler: logs, vetoes "veto*" on the network "second", gives "static*" an
 * address on tnet through CNI_ARGS. */
static int
test_hook(berth_hook_point_t point, void *payload, berth_error_t **e)
{
    if (point != BERTH_HOOK_ENDPOINT_PRE_CREATE)
        return 0;
    berth_hook_endpoint_t *h = payload;
    size_t len = strlen(hook_log);
    snprintf(hook_log + len, sizeof(hook_log) - len, "%s/%s %s %s %s;", h->namespace_, h->id,
             h->network, h->ifname, h->ports_json);
    if (strncmp(h->id, "veto", 4) == 0 && strcmp(h->network, "second") == 0)
        return berth__core_api.error_make(e, BERTH_EPRECONDITION, "vetoed %s", h->id);
    if (strncmp(h->id, "capip", 5) == 0 && strcmp(h->network, "tnet") == 0) {
        char v[64];
        snprintf(v, sizeof(v), "[\"10.231.%d.88/24\"]", k);
        api->kv_set(h->capabilities, "ips", v);
    }
    if (strncmp(h->id, "capbad", 6) == 0)
        api->kv_set(h->capabilities, "ips", "[not json");
    if (strncmp(h->id, "static", 6) == 0 && strcmp(h->network, "tnet") == 0) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.231.%d.77", k);
        api->kv_set(h->options, "IgnoreUnknown", "1");
        api->kv_set(h->options, "IP", ip);
    }
    return 0;
}

/* fx_endpointhook's handler, when a test loaded it: hook_register keeps it, hook_invoke calls it */
static berth_hook_fn fx_fn;
static void *fx_user;

static int
keep_hook(berth_init_ctx_t *ic, berth_hook_point_t point, int priority, berth_hook_fn fn,
          void *user, berth_error_t **e)
{
    cr_assert_eq(point, BERTH_HOOK_ENDPOINT_PRE_CREATE);
    fx_fn = fn;
    fx_user = user;
    return 0;
}

static int
invoke(berth_hook_point_t point, void *payload, berth_error_t **e)
{
    return fx_fn ? fx_fn(fx_user, point, payload, e) : test_hook(point, payload, e);
}

/* the InitContext here has only its public part: nothing to export into */
static int
no_export(berth_init_ctx_t *ic, const char *key, const char *value)
{
    return 0;
}

/* Starts the module on the test's root, state and config (as berthd would, again after a restart). */
static void
start_module(void)
{
    berth_init_ctx_t ic = {
        .size = sizeof(ic),
        .api = api,
        .uri = "io.berth.network.v1.cni",
        .root = root,
        .state = state,
        .config = berth__map_get(berth__map_get(cfg.tree, "plugins"), "io.berth.network.v1.cni")};
    cr_assert_eq(reg->init(&ic, &net, &err), 0, "%s", err ? err->message : "");
}

/* berthd stops and starts again: the module's fini, then a new instance on the same dirs. */
static void
restart_module(void)
{
    reg->fini(net);
    net = NULL;
    start_module();
}

static void
setup(void)
{
    api_copy = berth__core_api;
    api_copy.hook_invoke = invoke;
    api_copy.hook_register = keep_hook;
    fx_fn = NULL;
    api_copy.export_set = no_export;
    hook_log[0] = 0;
    int pid = getpid();
    k = 20 + (pid % 50) * 4;
    snprintf(br1, sizeof(br1), "bt%d", pid % 100000);
    snprintf(br2, sizeof(br2), "bu%d", pid % 100000);
    snprintf(br3, sizeof(br3), "bv%d", pid % 100000);
    snprintf(dir, sizeof(dir), "/tmp/berth-net-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(root, sizeof(root), "%s/root", dir);
    sh("mkdir -p %s %s %s/plugins && printf '#!/bin/sh\\nexec sleep 5\\n' > %s/plugins/sleepy && "
       "chmod +x %s/plugins/sleepy",
       state, root, dir, dir, dir);
    /* killer: kill -9 of whoever runs its ADD (berthd dying in the middle of a chain) */
    sh("printf '#!/bin/sh\\n[ \"$CNI_COMMAND\" = ADD ] && kill -9 $PPID\\nexit 0\\n' > "
       "%s/plugins/killer && chmod +x %s/plugins/killer",
       dir, dir);
    char yaml[4096];
    snprintf(
        yaml, sizeof(yaml),
        "plugins:\n"
        "  io.berth.network.v1.cni:\n"
        "    plugin_dirs: [%s/plugins, /usr/lib/cni]\n"
        "    conf_dir: %s/net.d\n"
        "    plugin_timeout_ms: 1000\n"
        "    default_network: {name: tnet, bridge: %s, subnet: 10.231.%d.0/24}\n"
        "    dns: {servers: [192.0.2.53], searches: [example.test]}\n"
        "    networks:\n"
        "      second: {bridge: %s, subnet: 10.231.%d.0/24}\n"
        "      broken:\n"
        "        conflist: '{\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"%s\",\"ipam\":"
        "{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"10.231.%d.0/24\"}]]}},"
        "{\"type\":\"tuning\",\"sysctl\":{\"net.core.nosuchthing\":\"1\"}}]}'\n"
        "      slow: {conflist: '{\"plugins\":[{\"type\":\"sleepy\"}]}'}\n"
        "      crashnet:\n"
        "        conflist: '{\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"%s\",\"ipMasq\":true,"
        "\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":"
        "\"10.231.%d.0/24\"}]]}},{\"type\":\"firewall\"},{\"type\":\"killer\"}]}'\n",
        dir, dir, br1, k, br2, k + 1, br3, k + 2, br3, k + 2);
    cr_assert_eq(berth__config_load_string(&cfg, "t.yaml", yaml, &err), 0, "%s",
                 err ? err->message : "");
    handle = dlopen(NETWORK_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_network_cni");
    cr_assert(entry != NULL);
    reg = entry()->plugins[0];
    cr_assert_str_eq(reg->type, BERTH_NETWORK_TYPE);
    ops = reg->ops;
    start_module();
}

static void
teardown(void)
{
    if (net)
        reg->fini(net);
    net = NULL;
    api->error_free(err);
    err = NULL;
    berth__config_free(&cfg);
    sh("for b in %s %s %s; do ip link del $b 2>/dev/null; done; umount -l %s/netns 2>/dev/null; "
       "rm -rf %s",
       br1, br2, br3, state, dir);
    dlclose(handle);
}

TestSuite(endpoint, .init = setup, .fini = teardown, .timeout = 120);

static void
expect_error(int rc, int code, const char *message)
{
    cr_assert_eq(rc, code, "rc %d, wanted %d (%s)", rc, code, err ? err->message : "");
    cr_assert(err != NULL);
    if (message)
        cr_expect(strstr(err->message, message) != NULL, "`%s` lacks `%s`", err->message, message);
    api->error_free(err);
    err = NULL;
}

static int
do_setup(const char *id, const char *const *nets, size_t n, const berth_port_mapping_t *ports,
         size_t np, berth_net_result_t *out)
{
    berth_net_setup_t req = {.struct_size = sizeof(req),
                             .namespace_ = "testns",
                             .id = id,
                             .networks = nets,
                             .n_networks = n,
                             .ports = ports,
                             .n_ports = np};
    out->struct_size = sizeof(*out);
    return ops->setup(net, &req, out, &err);
}

/* Nothing of the endpoint is left: record, netns file and mount, veths on the bridges, leases, rules. */
static void
expect_gone(const char *id, const char *ip)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/endpoints/testns/%s.json", state, id);
    cr_expect(access(path, F_OK) != 0, "record %s left", path);
    snprintf(path, sizeof(path), "%s/netns/testns/%s", state, id);
    cr_expect(access(path, F_OK) != 0, "netns file %s left", path);
    cr_expect(strstr(sh("cat /proc/self/mountinfo"), path) == NULL, "netns mount %s left", path);
    for (int b = 0; b < 3; b++) {
        const char *br = b == 0 ? br1 : b == 1 ? br2 : br3;
        cr_expect_str_eq(sh("ip -o link show master %s 2>/dev/null", br), "", "veth left on %s",
                         br);
    }
    if (ip && *ip) {
        cr_expect_str_eq(sh("ls %s/ipam/*/ 2>/dev/null | grep -Fx '%s'", state, ip), "",
                         "lease of %s left", ip);
        cr_expect_str_eq(sh("iptables-save 2>/dev/null | grep -F '%s/32'", ip), "",
                         "iptables rule for %s left", ip);
    }
}

static void
addr_only(const char *cidr, char *ip, size_t len)
{
    snprintf(ip, len, "%s", cidr);
    char *slash = strchr(ip, '/');
    if (slash)
        *slash = 0;
}

Test(endpoint, setup_gives_an_address_and_teardown_leaves_nothing)
{
    const char *nets[] = {"tnet"};
    berth_port_mapping_t ports[] = {
        {.host_ip = "127.0.0.1", .host_port = 30000 + k, .container_port = 80, .protocol = "tcp"}};
    berth_net_result_t r;
    cr_assert_eq(do_setup("web1", nets, 1, ports, 1, &r), 0, "%s", err ? err->message : "");
    cr_assert_eq(r.n_addresses, 1);
    char ip[64], want[32];
    addr_only(r.addresses[0].address, ip, sizeof(ip));
    snprintf(want, sizeof(want), "10.231.%d.", k);
    cr_expect(strncmp(ip, want, strlen(want)) == 0, "address %s not in 10.231.%d.0/24", ip, k);
    cr_expect_str_eq(r.addresses[0].interface, "eth0");
    cr_expect_str_eq(r.addresses[0].network, "tnet");
    snprintf(want, sizeof(want), "10.231.%d.1", k);
    cr_expect_str_eq(r.addresses[0].gateway, want);
    /* the namespace: eth0 with the address, lo up */
    const char *links = sh("nsenter --net=%s ip -o addr show", r.netns_path);
    cr_expect(strstr(links, "eth0") && strstr(links, ip), "netns addresses: %s", links);
    cr_expect(strstr(links, "lo    inet 127.0.0.1") != NULL, "lo not up: %s", links);
    cr_expect(strstr(sh("nsenter --net=%s ip -o link show lo", r.netns_path), "UP") != NULL);
    /* the files */
    cr_expect(strstr(sh("cat %s", r.resolv_conf_path), "nameserver 192.0.2.53") != NULL);
    cr_expect(strstr(sh("cat %s", r.hosts_path), ip) != NULL);
    cr_expect_str_eq(sh("cat %s", r.hostname_path), "web1\n");
    /* the port: portmap's DNAT names the container's address */
    char dport[32];
    snprintf(dport, sizeof(dport), "--dport %d", 30000 + k);
    const char *nat = sh("iptables-save -t nat | grep -F -- '%s'", dport);
    cr_expect(strstr(nat, ip) != NULL, "no DNAT to %s: %s", ip, nat);
    /* the hook saw the network, the interface and the ports */
    cr_expect(strstr(hook_log, "testns/web1 tnet eth0 [{\"hostPort\":") != NULL, "%s", hook_log);
    /* status, list, check */
    berth_net_result_t st = {.struct_size = sizeof(st)};
    cr_assert_eq(ops->status(net, "testns", "web1", &st, &err), 0);
    cr_expect_str_eq(st.addresses[0].address, r.addresses[0].address);
    ops->result_free(net, &st);
    expect_error(do_setup("web1", nets, 1, NULL, 0, &st), BERTH_EEXIST, "already exists");
    char *reason = NULL;
    cr_expect_eq(ops->ready(net, &reason), 1);

    cr_assert_eq(ops->teardown(net, "testns", "web1", &err), 0, "%s", err ? err->message : "");
    expect_gone("web1", ip);
    cr_expect_str_eq(sh("iptables-save -t nat | grep -F -- '%s'", dport), "");
    /* again: nothing to do */
    cr_assert_eq(ops->teardown(net, "testns", "web1", &err), 0);
    expect_error(ops->status(net, "testns", "web1", &st, &err), BERTH_ENOTFOUND, "not found");
    ops->result_free(net, &r);
}

Test(endpoint, two_networks_and_a_static_address_through_the_hook)
{
    const char *nets[] = {"tnet", "second"};
    berth_net_result_t r;
    cr_assert_eq(do_setup("static1", nets, 2, NULL, 0, &r), 0, "%s", err ? err->message : "");
    cr_assert_eq(r.n_addresses, 2);
    char want[32];
    snprintf(want, sizeof(want), "10.231.%d.77/24", k);
    cr_expect_str_eq(r.addresses[0].address, want);
    cr_expect_str_eq(r.addresses[1].interface, "eth1");
    cr_expect_str_eq(r.addresses[1].network, "second");
    /* CHECK: not on an endpoint with ports, Debian's portmap 1.1.1 then looks for an IPv6 chain */
    cr_expect_eq(ops->check(net, "testns", "static1", &err), 0, "%s", err ? err->message : "");
    char ip0[64], ip1[64];
    addr_only(r.addresses[0].address, ip0, sizeof(ip0));
    addr_only(r.addresses[1].address, ip1, sizeof(ip1));
    cr_assert_eq(ops->teardown(net, "testns", "static1", &err), 0, "%s", err ? err->message : "");
    expect_gone("static1", ip0);
    expect_gone("static1", ip1);
    ops->result_free(net, &r);
}

Test(endpoint, a_veto_leaves_nothing)
{
    const char *nets[] = {"tnet", "second"};
    berth_net_result_t r;
    expect_error(do_setup("veto1", nets, 2, NULL, 0, &r), BERTH_EPRECONDITION, "vetoed veto1");
    /* tnet's ADD ran before the veto of "second": it was undone */
    cr_expect(strstr(hook_log, "veto1 tnet eth0") != NULL, "%s", hook_log);
    expect_gone("veto1", NULL);
    cr_expect_str_eq(sh("ls %s/ipam/tnet/ 2>/dev/null | grep -F 10.231.", state), "", "lease left");
}

Test(endpoint, a_plugin_error_is_reported_and_undone)
{
    const char *nets[] = {"broken"};
    berth_net_result_t r;
    int rc = do_setup("bad1", nets, 1, NULL, 0, &r);
    cr_assert_eq(rc, BERTH_EPRECONDITION, "rc %d: %s", rc, err ? err->message : "");
    cr_expect(strstr(err->message, "network \"broken\": cni plugin tuning ADD") != NULL, "%s",
              err->message);
    api->error_free(err);
    err = NULL;
    expect_gone("bad1", NULL);
    cr_expect_str_eq(sh("ls %s/ipam/broken/ 2>/dev/null | grep -F 10.231.", state), "",
                     "lease left");
}

Test(endpoint, a_slow_plugin_is_killed)
{
    const char *nets[] = {"slow"};
    berth_net_result_t r;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    expect_error(do_setup("slow1", nets, 1, NULL, 0, &r), BERTH_ETIMEDOUT, "killed after 1000 ms");
    clock_gettime(CLOCK_MONOTONIC, &b);
    /* ADD killed after 1 s, then the undo's DEL killed after 1 s */
    cr_expect_lt(b.tv_sec - a.tv_sec, 4);
    cr_expect_str_eq(sh("pgrep -f '^sleep 5$' -P %d", getpid()), "");
}

Test(endpoint, bad_requests)
{
    const char *nets[] = {"nosuch"};
    berth_net_result_t r;
    expect_error(do_setup("x1", nets, 1, NULL, 0, &r), BERTH_ENOTFOUND,
                 "network \"nosuch\": not found");
    expect_gone("x1", NULL);
    const char *good[] = {"tnet"};
    expect_error(do_setup("../x", good, 1, NULL, 0, &r), BERTH_EINVAL, "invalid");
    expect_error(do_setup("x2", good, 0, NULL, 0, &r), BERTH_EINVAL, "networks");
    berth_net_setup_t req = {.struct_size = sizeof(req),
                             .namespace_ = "testns",
                             .id = "x4",
                             .networks = good,
                             .n_networks = 1,
                             .hostname = "bad host\nname"};
    expect_error(ops->setup(net, &req, &r, &err), BERTH_EINVAL, "hostname");
    expect_gone("x4", NULL);
    berth_port_mapping_t bad = {.host_port = 80, .container_port = 80, .protocol = "sctp"};
    expect_error(do_setup("x3", good, 1, &bad, 1, &r), BERTH_EINVAL, "tcp or udp");
}

static int
count(void *user, const char *ns, const char *id)
{
    strcat(user, id);
    strcat(user, ";");
    return 0;
}

Test(endpoint, records_survive_a_restart_and_teardown_finishes_them)
{
    const char *nets[] = {"tnet"};
    berth_net_result_t r;
    cr_assert_eq(do_setup("live1", nets, 1, NULL, 0, &r), 0, "%s", err ? err->message : "");
    char ip[64];
    addr_only(r.addresses[0].address, ip, sizeof(ip));
    /* berthd restarts: a new instance finds the endpoint, its netns still mounted */
    restart_module();
    char seen[256] = "";
    cr_assert_eq(ops->list(net, count, seen, &err), 0);
    cr_expect_str_eq(seen, "live1;");
    berth_net_result_t st = {.struct_size = sizeof(st)};
    cr_assert_eq(ops->status(net, "testns", "live1", &st, &err), 0);
    cr_expect_str_eq(st.addresses[0].address, r.addresses[0].address);
    cr_expect(strstr(sh("nsenter --net=%s ip -o addr show eth0", st.netns_path), ip) != NULL);
    ops->result_free(net, &st);
    cr_assert_eq(ops->teardown(net, "testns", "live1", &err), 0, "%s", err ? err->message : "");
    expect_gone("live1", ip);
    ops->result_free(net, &r);
}

/* tests/fixtures/fx_endpointhook.c, the handler the runtime's end-to-end test uses: it logs each call to
 * <its state>/endpoint.log, vetoes "veto*" and gives "static*" its static_ip on its static_network. */
Test(endpoint, the_fixture_hook_logs_vetoes_and_gives_a_static_address)
{
    void *fx = dlopen(FX_ENDPOINTHOOK_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(fx != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(fx, "berth_module_v1_fx_endpointhook");
    const berth_plugin_reg_t *freg = entry()->plugins[0];
    char yaml[512], fxstate[256], logpath[300];
    snprintf(yaml, sizeof(yaml),
             "plugins:\n  test.endpoint.v1.hook:\n    static_ip: 10.231.%d.99\n    static_network: "
             "tnet\n",
             k);
    berth__config_t fcfg;
    cr_assert_eq(berth__config_load_string(&fcfg, "fx.yaml", yaml, &err), 0);
    snprintf(fxstate, sizeof(fxstate), "%s/fx", dir);
    mkdir(fxstate, 0700);
    berth_init_ctx_t ic = {
        .size = sizeof(ic),
        .api = api,
        .uri = "test.endpoint.v1.hook",
        .root = fxstate,
        .state = fxstate,
        .config = berth__map_get(berth__map_get(fcfg.tree, "plugins"), "test.endpoint.v1.hook")};
    void *inst;
    cr_assert_eq(freg->init(&ic, &inst, &err), 0, "%s", err ? err->message : "");
    cr_assert(fx_fn != NULL, "the fixture registered no endpoint.pre-create handler");

    const char *nets[] = {"tnet"};
    berth_port_mapping_t ports[] = {{.host_port = 31000 + k, .container_port = 8080}};
    berth_net_result_t r;
    cr_assert_eq(do_setup("static-fx", nets, 1, ports, 1, &r), 0, "%s", err ? err->message : "");
    char want[32];
    snprintf(want, sizeof(want), "10.231.%d.99/24", k);
    cr_expect_str_eq(r.addresses[0].address, want);
    ops->result_free(net, &r);
    cr_assert_eq(ops->teardown(net, "testns", "static-fx", &err), 0);
    snprintf(want, sizeof(want), "10.231.%d.99", k);
    expect_gone("static-fx", want);
    expect_error(do_setup("veto-fx", nets, 1, NULL, 0, &r), BERTH_EPRECONDITION,
                 "endpoint hook: container veto-fx may not join network tnet");
    expect_gone("veto-fx", NULL);
    snprintf(logpath, sizeof(logpath), "%s/endpoint.log", fxstate);
    char expect_log[512];
    snprintf(expect_log, sizeof(expect_log),
             "testns static-fx tnet eth0 "
             "[{\"hostPort\":%d,\"containerPort\":8080,\"protocol\":\"tcp\"}]\n"
             "testns veto-fx tnet eth0 []\n",
             31000 + k);
    cr_expect_str_eq(sh("cat %s", logpath), expect_log);
    freg->fini(inst);
    berth__config_free(&fcfg);
    fx_fn = NULL;
    dlclose(fx);
}

/* The namespace vanished under a live record (someone unmounted it): teardown still DELs (an empty
 * CNI_NETNS), releases the lease and removes the record. Debian's bridge plugin then skips its masquerade
 * rule (it learns the addresses inside the namespace): that one rule is what is left, and removed here. */
Test(endpoint, teardown_without_the_netns)
{
    const char *nets[] = {"tnet"};
    berth_net_result_t r;
    cr_assert_eq(do_setup("gone1", nets, 1, NULL, 0, &r), 0, "%s", err ? err->message : "");
    char ip[64];
    addr_only(r.addresses[0].address, ip, sizeof(ip));
    sh("umount %s && rm -f %s", r.netns_path, r.netns_path);
    cr_assert_eq(ops->teardown(net, "testns", "gone1", &err), 0, "%s", err ? err->message : "");
    cr_expect_str_eq(sh("ls %s/ipam/tnet/ | grep -Fx '%s'", state, ip), "", "lease of %s left", ip);
    cr_expect_str_eq(sh("iptables-save -t filter | grep -F '%s/32'", ip), "", "firewall rule left");
    char path[512];
    snprintf(path, sizeof(path), "%s/endpoints/testns/gone1.json", state);
    cr_expect(access(path, F_OK) != 0, "record left");
    /* the bridge plugin's masquerade rule and chain, by their comment */
    char chain[64];
    snprintf(chain, sizeof(chain), "%s",
             sh("iptables-save -t nat | grep -F -- '-A POSTROUTING -s %s/32' | grep -F gone1 | "
                "grep -oE 'CNI-[0-9a-f]{24}' | head -1",
                ip));
    chain[strcspn(chain, "\n")] = 0;
    cr_expect_neq(chain[0], 0, "the bridge plugin's masquerade rule is gone: update this test");
    if (chain[0])
        sh("iptables -t nat -D POSTROUTING -s %s/32 -m comment --comment 'name: \"tnet\" id: "
           "\"gone1\"' -j %s; iptables -t nat -F %s; iptables -t nat -X %s",
           ip, chain, chain, chain);
    ops->result_free(net, &r);
}

typedef struct par {
    char id[32];
    int rc;
    char addr[64];
    char msg[256];
} par_t;

static void *
par_setup(void *arg)
{
    par_t *p = arg;
    const char *nets[] = {"tnet"};
    berth_net_setup_t req = {.struct_size = sizeof(req),
                             .namespace_ = "testns",
                             .id = p->id,
                             .networks = nets,
                             .n_networks = 1};
    berth_net_result_t r = {.struct_size = sizeof(r)};
    berth_error_t *e = NULL;
    p->rc = ops->setup(net, &req, &r, &e);
    if (p->rc == 0)
        snprintf(p->addr, sizeof(p->addr), "%s", r.addresses[0].address);
    else
        snprintf(p->msg, sizeof(p->msg), "%s", e->message);
    api->error_free(e);
    if (p->rc == 0)
        ops->result_free(net, &r);
    return NULL;
}

/* Endpoints set up at once: distinct addresses; the same id twice at once: one wins, the other gets
 * AlreadyExists (operations on one endpoint are serialized); all torn down, nothing left. */
Test(endpoint, parallel_setups)
{
    enum { N = 5 };
    par_t p[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        snprintf(p[i].id, sizeof(p[i].id), i < N - 1 ? "par%d" : "par0", i);
        pthread_create(&t[i], NULL, par_setup, &p[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int ok = 0, exists = 0;
    for (int i = 0; i < N; i++) {
        ok += p[i].rc == 0;
        exists += p[i].rc == BERTH_EEXIST;
        cr_expect(p[i].rc == 0 || p[i].rc == BERTH_EEXIST, "%s: %d %s", p[i].id, p[i].rc, p[i].msg);
        for (int j = 0; j < i; j++)
            cr_expect(p[i].rc || p[j].rc || strcmp(p[i].addr, p[j].addr) != 0,
                      "%s and %s both got %s", p[i].id, p[j].id, p[i].addr);
    }
    cr_expect_eq(ok, N - 1);
    cr_expect_eq(exists, 1);
    for (int i = 0; i < N - 1; i++)
        cr_assert_eq(ops->teardown(net, "testns", p[i].id, &err), 0, "%s", err ? err->message : "");
    for (int i = 0; i < N; i++) {
        char ip[64] = "";
        if (p[i].rc == 0)
            addr_only(p[i].addr, ip, sizeof(ip));
        expect_gone(p[i].id, ip);
    }
}

/* berthd killed with -9 in the middle of a chain (after bridge and firewall ADD, at the third plugin):
 * the record journaled what ran; the next instance lists the endpoint and its teardown removes it all. */
Test(endpoint, a_kill_in_the_middle_of_a_chain_is_finished_by_teardown)
{
    pid_t child = fork();
    if (child == 0) {
        const char *nets[] = {"crashnet"};
        berth_net_result_t r;
        do_setup("crash1", nets, 1, NULL, 0, &r);
        _exit(0); /* not reached: the killer plugin kills this process */
    }
    int st = 0;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == 9, "the setup was not killed (status %d)", st);
    char net_prefix[32];
    snprintf(net_prefix, sizeof(net_prefix), "10.231.%d.", k + 2);
    /* what the crash left: a lease, a veth, rules */
    cr_assert_neq(sh("ls %s/ipam/crashnet/ | grep -F %s", state, net_prefix)[0], 0,
                  "no lease made");
    cr_expect_neq(sh("iptables-save | grep -F %s", net_prefix)[0], 0, "no rule made");
    /* a restart: the endpoint is listed, not ready; teardown finishes it */
    restart_module();
    char seen[256] = "";
    cr_assert_eq(ops->list(net, count, seen, &err), 0);
    cr_expect_str_eq(seen, "crash1;");
    berth_net_result_t r = {.struct_size = sizeof(r)};
    expect_error(ops->status(net, "testns", "crash1", &r, &err), BERTH_ENOTFOUND, "not found");
    cr_assert_eq(ops->teardown(net, "testns", "crash1", &err), 0, "%s", err ? err->message : "");
    expect_gone("crash1", NULL);
    cr_expect_str_eq(sh("ls %s/ipam/crashnet/ | grep -F %s", state, net_prefix), "", "lease left");
    cr_expect_str_eq(sh("iptables-save | grep -F %s", net_prefix), "", "rules left");
}

/* A capability the hook adds reaches the plugins that declare it as runtimeConfig: "ips" gives host-local
 * the address; a value that is not JSON is refused and nothing is left. */
Test(endpoint, a_capability_from_the_hook)
{
    const char *nets[] = {"tnet"};
    berth_net_result_t r;
    cr_assert_eq(do_setup("capip1", nets, 1, NULL, 0, &r), 0, "%s", err ? err->message : "");
    char want[32];
    snprintf(want, sizeof(want), "10.231.%d.88/24", k);
    cr_expect_str_eq(r.addresses[0].address, want);
    ops->result_free(net, &r);
    cr_assert_eq(ops->teardown(net, "testns", "capip1", &err), 0);
    snprintf(want, sizeof(want), "10.231.%d.88", k);
    expect_gone("capip1", want);
    expect_error(do_setup("capbad1", nets, 1, NULL, 0, &r), BERTH_EINVAL,
                 "capability \"ips\" is not JSON");
    expect_gone("capbad1", NULL);
}
