/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry client's pure logic: reference parsing and docker's normalisation, WWW-Authenticate
 * challenges, Retry-After, loopback hosts, and the hosts configuration (registries:) with its errors.
 * The network side is tests/scripts/registry_client.sh's.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "lib_curl.h"
#include "registry.h"
#include "registry_int.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;
static berth_error_t *err;

static void
teardown(void)
{
    api->error_free(err);
    err = NULL;
}

/* ---- references ---------------------------------------------------------------------------------- */

TestSuite(refs, .fini = teardown);

static void
ref_ok(const char *in, const char *host, const char *repo, const char *tag, const char *digest,
       const char *name)
{
    reg_ref_t r;
    cr_assert_eq(reg_ref_parse(api, in, &r, &err), 0, "%s: %s", in, err ? err->message : "");
    cr_expect_str_eq(r.host, host, "%s", in);
    cr_expect_str_eq(r.repo, repo, "%s", in);
    cr_expect_str_eq(r.tag, tag, "%s", in);
    cr_expect_str_eq(r.digest, digest, "%s", in);
    cr_expect_str_eq(r.name, name, "%s", in);
}

static void
ref_bad(const char *in, const char *message)
{
    reg_ref_t r;
    cr_assert_lt(reg_ref_parse(api, in, &r, &err), 0, "accepted \"%s\"", in);
    cr_expect_eq(err->code, BERTH_EINVAL);
    cr_expect_str_eq(err->message, message);
    teardown();
}

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

Test(refs, docker_normalisation)
{
    ref_ok("busybox", "docker.io", "library/busybox", "latest", "",
           "docker.io/library/busybox:latest");
    ref_ok("busybox:1.36", "docker.io", "library/busybox", "1.36", "",
           "docker.io/library/busybox:1.36");
    ref_ok("user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest");
    ref_ok("docker.io/busybox", "docker.io", "library/busybox", "latest", "",
           "docker.io/library/busybox:latest");
    ref_ok("index.docker.io/library/busybox:x", "docker.io", "library/busybox", "x", "",
           "docker.io/library/busybox:x");
}

Test(refs, hosts_are_told_apart_as_docker_does)
{
    ref_ok("localhost/app", "localhost", "app", "latest", "", "localhost/app:latest");
    ref_ok("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", "", "localhost:5000/a/b:t");
    ref_ok("127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000", "test/busybox", "1", "",
           "127.0.0.1:5000/test/busybox:1");
    ref_ok("ghcr.io/org/img", "ghcr.io", "org/img", "latest", "", "ghcr.io/org/img:latest");
    ref_ok("[::1]:5000/x", "[::1]:5000", "x", "latest", "", "[::1]:5000/x:latest");
    /* a first component without '.', ':' and not localhost is a path component */
    ref_ok("myregistry/app", "docker.io", "myregistry/app", "latest", "",
           "docker.io/myregistry/app:latest");
    /* an upper-case first component can only be a host */
    ref_ok("MyHost/app", "MyHost", "app", "latest", "", "MyHost/app:latest");
}

Test(refs, digests_and_tags)
{
    ref_ok("busybox@" D64, "docker.io", "library/busybox", "", D64,
           "docker.io/library/busybox@" D64);
    ref_ok("r.io/a:v1@" D64, "r.io", "a", "v1", D64, "r.io/a:v1@" D64);
    ref_ok("r.io:443/a_b/c-d/e.f__g:T_1.x-y", "r.io:443", "a_b/c-d/e.f__g", "T_1.x-y", "",
           "r.io:443/a_b/c-d/e.f__g:T_1.x-y");
}

Test(refs, malformed)
{
    ref_bad("Busybox", "reference \"Busybox\": repository name must be lowercase");
    ref_bad("r.io/Foo", "reference \"r.io/Foo\": repository name must be lowercase");
    ref_bad("busybox:", "reference \"busybox:\": invalid reference format");
    ref_bad("busybox:-x", "reference \"busybox:-x\": invalid reference format");
    ref_bad("busybox@sha256:abc", "reference \"busybox@sha256:abc\": invalid reference format");
    ref_bad("a//b", "reference \"a//b\": invalid reference format");
    ref_bad("a/b/", "reference \"a/b/\": invalid reference format");
    ref_bad("-a", "reference \"-a\": invalid reference format");
    ref_bad("a..b", "reference \"a..b\": invalid reference format");
    ref_bad("a___b", "reference \"a___b\": invalid reference format");
    ref_bad("r.io:x/a", "reference \"r.io:x/a\": invalid reference format");
    ref_bad("", "reference \"\": repository name must have at least one component");
    char long_name[300];
    memset(long_name, 'a', 260);
    long_name[260] = '\0';
    reg_ref_t r;
    cr_expect_lt(reg_ref_parse(api, long_name, &r, &err), 0);
}

/* ---- WWW-Authenticate ---------------------------------------------------------------------------- */

Test(challenges, bearer_with_quoted_params)
{
    reg_challenge_t c[4];
    size_t n = reg_parse_challenges(
        "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
        "scope=\"repository:library/busybox:pull\"",
        c, 4);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(c[0].scheme, "bearer");
    cr_expect_str_eq(c[0].realm, "https://auth.docker.io/token");
    cr_expect_str_eq(c[0].service, "registry.docker.io");
    cr_expect_str_eq(c[0].scope, "repository:library/busybox:pull");
    reg_challenges_free(c, n);
}

Test(challenges, several_with_commas_in_quotes_and_escapes)
{
    reg_challenge_t c[4];
    size_t n = reg_parse_challenges(
        "Basic realm=\"a, b\", Bearer realm=\"https://x/t\", scope=\"repository:a:pull,push "
        "repository:b:pull\", service=svc, error=\"invalid_token\" , NEGOTIATE",
        c, 4);
    cr_assert_eq(n, 3);
    cr_expect_str_eq(c[0].scheme, "basic");
    cr_expect_str_eq(c[0].realm, "a, b");
    cr_expect_str_eq(c[1].scheme, "bearer");
    cr_expect_str_eq(c[1].realm, "https://x/t");
    cr_expect_str_eq(c[1].scope, "repository:a:pull,push repository:b:pull");
    cr_expect_str_eq(c[1].service, "svc");
    cr_expect_str_eq(c[1].error, "invalid_token");
    cr_expect_str_eq(c[2].scheme, "negotiate");
    cr_expect_null(c[2].realm);
    reg_challenges_free(c, n);

    n = reg_parse_challenges("Basic realm=\"say \\\"hi\\\"\"", c, 4);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(c[0].realm, "say \"hi\"");
    reg_challenges_free(c, n);
}

Test(challenges, case_spacing_and_garbage)
{
    reg_challenge_t c[2];
    size_t n = reg_parse_challenges("  bEaReR   Realm = \"r\" ,  Service=s  ", c, 2);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(c[0].scheme, "bearer");
    cr_expect_str_eq(c[0].realm, "r");
    cr_expect_str_eq(c[0].service, "s");
    reg_challenges_free(c, n);
    cr_expect_eq(reg_parse_challenges("", c, 2), 0);
    cr_expect_eq(reg_parse_challenges(NULL, c, 2), 0);
    cr_expect_eq(reg_parse_challenges("Bearer realm=\"unterminated", c, 2), 0);
    /* at most max */
    n = reg_parse_challenges("Basic, Bearer, Digest", c, 2);
    cr_expect_eq(n, 2);
    reg_challenges_free(c, n);
}

/* ---- Retry-After, loopback ----------------------------------------------------------------------- */

Test(retry_after, seconds_and_dates)
{
    time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    /* dates are read by curl_getdate: libcurl opens with the first registry client, here by hand */
    cr_assert_eq(libcurl_load(api, &err), 0, "%s", err ? err->message : "");
    cr_expect_eq(reg_parse_retry_after("3", now), 3000);
    cr_expect_eq(reg_parse_retry_after(" 0 ", now), 0);
    cr_expect_eq(reg_parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), 10000);
    cr_expect_eq(reg_parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    cr_expect_eq(reg_parse_retry_after(NULL, now), -1);
    cr_expect_eq(reg_parse_retry_after("", now), -1);
    cr_expect_eq(reg_parse_retry_after("soon", now), -1);
    cr_expect_eq(reg_parse_retry_after("3x", now), -1);
    cr_expect_eq(reg_parse_retry_after("999999999", now), 86400LL * 1000);
}

Test(loopback, as_containerd)
{
    cr_expect(reg_host_is_loopback("localhost"));
    cr_expect(reg_host_is_loopback("localhost:5000"));
    cr_expect(reg_host_is_loopback("127.0.0.1:5000"));
    cr_expect(reg_host_is_loopback("127.1.2.3"));
    cr_expect(reg_host_is_loopback("[::1]:5000"));
    cr_expect(reg_host_is_loopback("::1"));
    cr_expect_not(reg_host_is_loopback("10.0.0.1:5000"));
    cr_expect_not(reg_host_is_loopback("docker.io"));
    cr_expect_not(reg_host_is_loopback("localhost.example.com"));
}

/* ---- the hosts configuration --------------------------------------------------------------------- */

static berth__config_t cfg;
static reg_config_t rc;

static void
cfg_teardown(void)
{
    reg_config_free(&rc);
    berth__config_free(&cfg);
    teardown();
}

TestSuite(hosts, .fini = cfg_teardown);

static int
load(const char *plugin_yaml)
{
    char text[8192];
    snprintf(text, sizeof text, "plugins:\n  io.containerd.transfer.v1.local:\n%s", plugin_yaml);
    cr_assert_eq(berth__config_load_string(&cfg, "t.yaml", text, &err), 0, "%s",
                 err ? err->message : "");
    const berth_config_node_t *plugins = api->map_get(cfg.tree, "plugins");
    return reg_config_load(api, api->map_get(plugins, "io.containerd.transfer.v1.local"), &rc,
                           &err);
}

static void
load_fails(const char *plugin_yaml, const char *message)
{
    cr_assert_lt(load(plugin_yaml), 0, "accepted:\n%s", plugin_yaml);
    cr_expect_eq(err->code, BERTH_EINVAL);
    cr_expect_str_eq(err->message, message);
}

Test(hosts, defaults)
{
    cr_assert_eq(reg_config_load(api, NULL, &rc, &err), 0);
    cr_expect_eq(rc.n_hosts, 0);
    cr_expect_eq(rc.max_concurrent_downloads, 3);
    cr_expect_eq(rc.max_concurrent_uploads, 3);
    cr_expect_eq(rc.connect_timeout_ms, 30000);
    cr_expect_eq(rc.retries, 5);
    cr_expect_eq(rc.manifest_limit, 4 << 20);
    cr_expect_null(reg_config_host(&rc, "docker.io"));
}

Test(hosts, full)
{
    cr_assert_eq(load("    max_concurrent_downloads: 5\n"
                      "    retries: 2\n"
                      "    connect_timeout_ms: 500\n"
                      "    registries:\n"
                      "      docker.io:\n"
                      "        server: https://registry-1.docker.io\n"
                      "        auth: {username: u, password: p}\n"
                      "        header: {X-A: one, X-B: [two, three]}\n"
                      "        mirrors:\n"
                      "          - url: https://m1.example/v2/proxy\n"
                      "            override_path: true\n"
                      "            capabilities: [pull]\n"
                      "            ca: /etc/ca.pem\n"
                      "            client_cert: /c.pem\n"
                      "            client_key: /k.pem\n"
                      "          - url: http://m2.example:5000\n"
                      "            skip_verify: true\n"
                      "            auth: {token: tok}\n"
                      "      _default:\n"
                      "        capabilities: [pull, resolve]\n"),
                 0, "%s", err ? err->message : "");
    cr_expect_eq(rc.max_concurrent_downloads, 5);
    cr_expect_eq(rc.retries, 2);
    cr_expect_eq(rc.connect_timeout_ms, 500);
    const reg_host_t *h = reg_config_host(&rc, "docker.io");
    cr_assert_not_null(h);
    cr_expect_str_eq(h->upstream.url, "https://registry-1.docker.io");
    cr_expect_eq(h->upstream.caps, REG_CAP_PULL | REG_CAP_RESOLVE | REG_CAP_PUSH);
    cr_expect_str_eq(h->upstream.username, "u");
    cr_expect_str_eq(h->upstream.password, "p");
    cr_assert_eq(h->upstream.n_headers, 3);
    cr_expect_str_eq(h->upstream.headers[0], "X-A: one");
    cr_expect_str_eq(h->upstream.headers[2], "X-B: three");
    cr_assert_eq(h->n_mirrors, 2);
    cr_expect_str_eq(h->mirrors[0].url, "https://m1.example/v2/proxy");
    cr_expect(h->mirrors[0].override_path);
    cr_expect_eq(h->mirrors[0].caps, REG_CAP_PULL);
    cr_expect_str_eq(h->mirrors[0].ca_file, "/etc/ca.pem");
    cr_expect_str_eq(h->mirrors[0].client_cert, "/c.pem");
    cr_expect_str_eq(h->mirrors[0].client_key, "/k.pem");
    cr_expect_eq(h->mirrors[1].caps, REG_CAP_PULL | REG_CAP_RESOLVE);
    cr_expect(h->mirrors[1].skip_verify);
    cr_expect_str_eq(h->mirrors[1].token, "tok");
    /* an unlisted host takes _default */
    const reg_host_t *d = reg_config_host(&rc, "quay.io");
    cr_assert_not_null(d);
    cr_expect_str_eq(d->name, "_default");
    cr_expect_null(d->upstream.url);
    cr_expect_eq(d->upstream.caps, REG_CAP_PULL | REG_CAP_RESOLVE);
}

Test(hosts, errors_name_the_key)
{
    load_fails("    registries: [a]\n", "registries: expected a map of registry hosts");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        server: ftp://x\n",
               "registries.r.io.server: expected an http:// or https:// URL, got \"ftp://x\"");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        colour: red\n",
               "registries.r.io.colour: unknown key");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        capabilities: [pull, fly]\n",
               "registries.r.io.capabilities[1]: \"fly\" is not one of pull, resolve, push");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        mirrors:\n          - url: https://m\n"
               "          - capabilities: [pull]\n",
               "registries.r.io.mirrors[1].url: expected an http:// or https:// URL, got \"\"");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        auth: {username: u}\n",
               "registries.r.io.auth.password: required with username");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        mirrors:\n          - url: https://m\n"
               "            server: https://x\n",
               "registries.r.io.mirrors[0].server: unknown key");
    teardown();
    berth__config_free(&cfg);
    load_fails("    registries:\n      r.io:\n        header: {X-A: [a, {b: c}]}\n",
               "registries.r.io.header.X-A: expected a string or a list of strings");
    teardown();
    berth__config_free(&cfg);
    load_fails("    retries: -1\n", "retries: must be at least 0");
    teardown();
    berth__config_free(&cfg);
    load_fails("    max_concurrent_downloads: 0\n", "max_concurrent_downloads: must be at least 1");
}

Test(hosts, wrong_types_carry_the_position)
{
    cr_assert_lt(load("    registries:\n      r.io:\n        skip_verify: maybe\n"), 0);
    cr_expect_str_eq(err->message,
                     "registries.r.io: t.yaml:5:22: skip_verify: expected true or false, got "
                     "\"maybe\"");
}
