/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Labels to endpoint and mounts (endpoint.c) against doubles of the network and volume modules that record
 * every call: bad input makes nothing, a module that is not loaded is named, the allow-list decides before
 * the endpoint is made, a failure after the endpoint was made tears it down (once), and the spec runc gets.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/module.h>

#include "endpoint.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;

static char calls[2048];       /* "setup(c1,berth,1 ports) teardown(c1) ..." */
static int fail_mount_source;  /* mount_source answers Internal */
static char hostname_file[64]; /* what the endpoint "wrote" as /etc/hostname */
static berth_net_setup_t seen;
static berth_port_mapping_t seen_port;
static char seen_host_ip[64],
    seen_protocol[8]; /* the request's strings are borrowed for the call */

static void
note(const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(calls);
    snprintf(calls + n, sizeof(calls) - n, fmt, a, b);
}

static int
fake_setup(void *net, const berth_net_setup_t *req, berth_net_result_t *out, berth_error_t **err)
{
    (void)net;
    (void)err;
    seen = *req;
    if (req->n_ports) {
        seen_port = req->ports[0];
        snprintf(seen_host_ip, sizeof(seen_host_ip), "%s", seen_port.host_ip);
        snprintf(seen_protocol, sizeof(seen_protocol), "%s", seen_port.protocol);
    }
    note("setup(%s,%s) ", req->id, req->networks[0]);
    out->netns_path = strdup("/run/t/netns/default/c1");
    out->resolv_conf_path = strdup("/run/t/c1.d/resolv.conf");
    out->hosts_path = strdup("/run/t/c1.d/hosts");
    out->hostname_path = strdup(hostname_file);
    return 0;
}

static int
fake_teardown(void *net, const char *ns, const char *id, berth_error_t **err)
{
    (void)net;
    (void)err;
    note("teardown(%s/%s) ", ns, id);
    return 0;
}

static void
fake_result_free(void *net, berth_net_result_t *r)
{
    (void)net;
    free(r->netns_path);
    free(r->resolv_conf_path);
    free(r->hosts_path);
    free(r->hostname_path);
}

static int
fake_mount_source(void *vol, const char *ns, const char *name, char **path, berth_error_t **err)
{
    (void)vol;
    note("mount_source(%s/%s) ", ns, name);
    if (fail_mount_source)
        return api->error_make(err, BERTH_EINTERNAL, "tmpfs: no memory");
    char p[256];
    snprintf(p, sizeof(p), "/var/lib/t/volumes/%s/%s/_data", ns, name);
    *path = api->strdup(p);
    return 0;
}

static int
fake_bind_allowed(void *vol, const char *host_path, char **resolved, berth_error_t **err)
{
    (void)vol;
    note("bind_allowed(%s%s) ", host_path, "");
    if (strncmp(host_path, "/srv/", 5) != 0)
        return api->error_make(err, BERTH_EPERM, "%s is outside the allow-list [/srv]", host_path);
    *resolved = api->strdup(host_path);
    return 0;
}

static const berth_network_v1_ops_t net_ops = {.struct_size = sizeof(net_ops),
                                               .setup = fake_setup,
                                               .teardown = fake_teardown,
                                               .result_free = fake_result_free};
static const berth_volume_v1_ops_t vol_ops = {.struct_size = sizeof(vol_ops),
                                              .mount_source = fake_mount_source,
                                              .bind_allowed = fake_bind_allowed};
static int instance_dummy;
static endpoint_ctx_t ctx;

static void
setup_ctx(void)
{
    memset(calls, 0, sizeof(calls));
    fail_mount_source = 0;
    ctx = (endpoint_ctx_t){.api = api,
                           .net = &instance_dummy,
                           .neto = &net_ops,
                           .vol = &instance_dummy,
                           .volo = &vol_ops};
    pthread_rwlock_init(&ctx.gate, NULL);
    snprintf(hostname_file, sizeof(hostname_file), "/tmp/berth-test-hostname-%d", (int)getpid());
    FILE *f = fopen(hostname_file, "w");
    cr_assert_not_null(f);
    fputs("c1\n", f);
    fclose(f);
}

static void
teardown_ctx(void)
{
    unlink(hostname_file);
    pthread_rwlock_destroy(&ctx.gate);
}

TestSuite(endpoint, .init = setup_ctx, .fini = teardown_ctx);

static const char *SPEC = "{\"process\":{\"args\":[\"sh\"]},\"root\":{\"path\":\"rootfs\"},"
                          "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"}],"
                          "\"linux\":{\"namespaces\":[{\"type\":\"uts\"},{\"type\":\"network\"}]}}";

static int
prepare(const char *network, const char *ports, const char *volumes, char **out, int *attached,
        berth_error_t **err)
{
    endpoint_labels_t l = {network, ports, volumes};
    return endpoint_prepare(&ctx, "default", "c1", &l, SPEC, out, attached, err);
}

static void
refused(const char *network, const char *ports, const char *volumes, int code, const char *words,
        const char *want_calls)
{
    char *out = NULL;
    int attached = 7;
    berth_error_t *err = NULL;
    int rc = prepare(network, ports, volumes, &out, &attached, &err);
    cr_assert_eq(rc, code, "%s %s %s: rc %d", network, ports, volumes, rc);
    cr_assert_not_null(err);
    cr_assert(strstr(err->message, words), "\"%s\" lacks \"%s\"", err->message, words);
    cr_assert_null(out);
    cr_assert_eq(attached, 0);
    cr_assert_str_eq(calls, want_calls, "calls: %s", calls);
    api->error_free(err);
}

Test(endpoint, no_labels_pass_the_spec_through)
{
    char *out = NULL;
    int attached = 1;
    cr_assert_eq(prepare(NULL, NULL, NULL, &out, &attached, NULL), 0);
    cr_assert_str_eq(out, SPEC);
    cr_assert_eq(attached, 0);
    cr_assert_str_eq(calls, "");
    free(out);
}

Test(endpoint, bad_input_makes_nothing)
{
    refused("berth", "80", NULL, BERTH_EINVAL, "label io.berth.ports: entry 1", "");
    refused("berth", NULL, "a:b:c:d", BERTH_EINVAL, "label io.berth.volumes", "");
    refused(NULL, "8080:80", NULL, BERTH_EINVAL, "needs networks", "");
    /* the allow-list decides before the endpoint is made */
    refused("berth", NULL, "v1:/data,/etc:/host-etc", BERTH_EPERM,
            "label io.berth.volumes: /etc is outside the allow-list", "bind_allowed(/etc) ");
}

Test(endpoint, modules_not_loaded_are_named)
{
    ctx.net = NULL;
    refused("berth", NULL, NULL, BERTH_EPRECONDITION,
            "label io.berth.network: the network-cni module (io.berth.network.v1) is not loaded",
            "");
    ctx.vol = NULL;
    refused("none", NULL, "v1:/data", BERTH_EPRECONDITION,
            "label io.berth.volumes: the volumes module (io.berth.volume.v1) is not loaded", "");
    char *out = NULL;
    int attached;
    cr_assert_eq(prepare("host", NULL, NULL, &out, &attached, NULL), 0, "host needs no module");
    free(out);
}

Test(endpoint, a_failure_after_setup_tears_the_endpoint_down)
{
    fail_mount_source = 1;
    refused("berth", NULL, "v1:/data", BERTH_EINTERNAL, "volume v1: tmpfs: no memory",
            "setup(c1,berth) mount_source(default/v1) teardown(default/c1) ");
}

static json_object *
mount_at(json_object *spec, const char *dest)
{
    json_object *mounts = json_object_object_get(spec, "mounts");
    for (size_t i = 0; i < json_object_array_length(mounts); i++) {
        json_object *m = json_object_array_get_idx(mounts, i);
        if (strcmp(json_object_get_string(json_object_object_get(m, "destination")), dest) == 0)
            return m;
    }
    return NULL;
}

static const char *
source_at(json_object *spec, const char *dest)
{
    json_object *m = mount_at(spec, dest);
    return m ? json_object_get_string(json_object_object_get(m, "source")) : NULL;
}

Test(endpoint, networked_spec)
{
    char *out = NULL;
    int attached = 0;
    berth_error_t *err = NULL;
    int rc = prepare("berth", "127.0.0.1:8080:80/udp", "v1:/data:ro,/srv/cfg:/cfg", &out, &attached,
                     &err);
    cr_assert_eq(rc, 0, "%s", err ? err->message : "");
    cr_assert_eq(attached, 1);
    cr_assert_str_eq(calls, "bind_allowed(/srv/cfg) setup(c1,berth) mount_source(default/v1) ");
    cr_assert_eq(seen.n_networks, 1);
    cr_assert_eq(seen.n_ports, 1);
    cr_assert_str_eq(seen_host_ip, "127.0.0.1");
    cr_assert_eq(seen_port.host_port, 8080);
    cr_assert_str_eq(seen_protocol, "udp");
    cr_assert_null(seen.hostname, "the spec has none: the module picks it");
    json_object *s = json_tokener_parse(out);
    json_object *nss = json_object_object_get(json_object_object_get(s, "linux"), "namespaces");
    cr_assert_str_eq(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(nss, 1), "path")),
        "/run/t/netns/default/c1");
    cr_assert_str_eq(source_at(s, "/etc/resolv.conf"), "/run/t/c1.d/resolv.conf");
    cr_assert_str_eq(source_at(s, "/etc/hosts"), "/run/t/c1.d/hosts");
    cr_assert_str_eq(source_at(s, "/etc/hostname"), hostname_file);
    cr_assert_str_eq(source_at(s, "/data"), "/var/lib/t/volumes/default/v1/_data");
    cr_assert_str_eq(source_at(s, "/cfg"), "/srv/cfg");
    cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(
                         json_object_object_get(mount_at(s, "/data"), "options"), 1)),
                     "ro");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(s, "hostname")), "c1",
                     "the spec's hostname is the endpoint's /etc/hostname");
    json_object_put(s);
    free(out);
}

Test(endpoint, host_network)
{
    char *out = NULL;
    int attached = 1;
    cr_assert_eq(prepare("host", NULL, NULL, &out, &attached, NULL), 0);
    cr_assert_eq(attached, 0);
    cr_assert_str_eq(calls, "", "the host's netns needs no endpoint");
    cr_assert(strstr(out, "\"type\":\"network\"") == NULL, "%s", out);
    cr_assert(strstr(out, "\"source\":\"/etc/resolv.conf\"") != NULL, "%s", out);
    free(out);
}

Test(endpoint, undo_is_quiet_without_the_module)
{
    ctx.net = NULL;
    endpoint_undo(&ctx, "default", "c1");
    cr_assert_str_eq(calls, "");
    ctx.net = &instance_dummy;
    endpoint_undo(&ctx, "default", "c1");
    cr_assert_str_eq(calls, "teardown(default/c1) ");
}
