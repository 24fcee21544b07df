/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.c: manifests, indexes and configs as containerd reads them, and containerd's platform parser,
 * normaliser and default matcher (cases from github.com/containerd/platforms' tests).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "transfer.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int
parse(const char *mt, const char *json, oci_manifest_t *m, int *code)
{
    berth_error_t *err = NULL;
    int rc = manifest_parse(api, mt, (const uint8_t *)json, strlen(json), m, &err);
    *code = rc;
    if (err)
        api->error_free(err);
    return rc;
}

Test(manifest, oci_manifest)
{
    const char *j =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
        "\",\"size\":12},"
        "\"layers\":[{\"mediaType\":\"application/"
        "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2
        "\",\"size\":100,\"annotations\":{\"a\":\"b\"}},"
        "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3
        "\",\"size\":0}]}";
    oci_manifest_t m;
    int code;
    cr_assert_eq(parse("application/vnd.oci.image.manifest.v1+json", j, &m, &code), 0);
    cr_expect_eq(m.is_index, 0);
    cr_expect_str_eq(m.config.digest, D1);
    cr_expect_eq(m.config.size, 12);
    cr_assert_eq(m.n_children, 2);
    cr_expect_str_eq(m.children[0].desc.digest, D2);
    cr_expect_eq(m.children[0].desc.size, 100);
    cr_assert_not_null(m.children[0].desc.annotations);
    cr_expect_str_eq(api->kv_get(m.children[0].desc.annotations, "a"), "b");
    cr_expect_str_eq(m.children[1].desc.media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    cr_expect(media_is_layer(m.children[1].desc.media_type));
    manifest_free(&m);
}

Test(manifest, docker_list_with_platforms_and_sniffing)
{
    const char *j =
        "{\"schemaVersion\":2,\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.list.v2+json\","
        "\"manifests\":[{\"mediaType\":\"application/"
        "vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D1
        "\",\"size\":5,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}}"
        ","
        "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D2
        "\",\"size\":6}]}";
    oci_manifest_t m;
    int code;
    /* served with a generic type: the document's mediaType says what it is */
    cr_assert_eq(parse("application/json", j, &m, &code), 0);
    cr_expect_eq(m.is_index, 1);
    cr_assert_eq(m.n_children, 2);
    cr_expect_eq(m.children[0].has_platform, 1);
    cr_expect_str_eq(m.children[0].platform.arch, "arm");
    cr_expect_str_eq(m.children[0].platform.variant, "v6");
    cr_expect_eq(m.children[1].has_platform, 0);
    manifest_free(&m);
    /* no mediaType at all: "manifests" makes it an index */
    cr_assert_eq(parse(NULL, "{\"manifests\":[]}", &m, &code), 0);
    cr_expect_eq(m.is_index, 1);
    cr_expect_eq(m.n_children, 0);
    manifest_free(&m);
}

Test(manifest, malformed_refused)
{
    oci_manifest_t m;
    int code;
    const char *mt = "application/vnd.oci.image.manifest.v1+json";
    cr_expect_eq(parse(mt, "{", &m, &code), BERTH_EINVAL);
    cr_expect_eq(parse(mt, "[]", &m, &code), BERTH_EINVAL);
    cr_expect_eq(parse(mt, "{\"layers\":[]}", &m, &code), BERTH_EINVAL); /* no config */
    cr_expect_eq(
        parse(mt, "{\"config\":{\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}", &m, &code),
        BERTH_EINVAL);
    cr_expect_eq(
        parse(mt, "{\"config\":{\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}", &m, &code),
        BERTH_EINVAL);
    cr_expect_eq(
        parse(mt, "{\"config\":{\"digest\":\"" D1 "\",\"size\":\"1\"},\"layers\":[]}", &m, &code),
        BERTH_EINVAL);
    cr_expect_eq(
        parse(mt, "{\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":{}}", &m, &code),
        BERTH_EINVAL);
    cr_expect_eq(parse(mt,
                       "{\"config\":{\"digest\":\"" D1
                       "\",\"size\":1},\"layers\":[{\"digest\":\"md5:ab\","
                       "\"size\":1}]}",
                       &m, &code),
                 BERTH_EINVAL);
    /* an index served as a manifest */
    cr_expect_eq(
        parse(mt, "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}",
              &m, &code),
        BERTH_EINVAL);
}

Test(manifest, config_diff_ids_and_platform)
{
    const char *j = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
                    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
    char(*ids)[BERTH_DIGEST_MAX];
    size_t n;
    berth_error_t *err = NULL;
    cr_assert_eq(config_diff_ids(api, (const uint8_t *)j, strlen(j), &ids, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(ids[0], D1);
    cr_expect_str_eq(ids[1], D2);
    free(ids);
    oci_platform_t p;
    cr_assert_eq(config_platform(api, (const uint8_t *)j, strlen(j), &p, &err), 0);
    cr_expect_str_eq(p.arch, "arm64");
    cr_expect_str_eq(p.variant, "v8");
    const char *bad = "{\"rootfs\":{\"diff_ids\":[\"nope\"]}}";
    cr_expect_eq(config_diff_ids(api, (const uint8_t *)bad, strlen(bad), &ids, &n, &err),
                 BERTH_EINVAL);
    api->error_free(err);
}

static oci_platform_t
P(const char *spec)
{
    oci_platform_t p;
    berth_error_t *err = NULL;
    int rc = platform_parse(api, spec, &p, &err);
    cr_assert_eq(rc, 0, "parse %s: %s", spec, err ? "error" : "");
    return p;
}

static void
expect_platform(const char *spec, const char *os, const char *arch, const char *var)
{
    oci_platform_t p = P(spec);
    cr_expect_str_eq(p.os, os, "%s: os %s", spec, p.os);
    cr_expect_str_eq(p.arch, arch, "%s: arch %s", spec, p.arch);
    cr_expect_str_eq(p.variant, var, "%s: variant %s", spec, p.variant);
}

Test(platform, parse_and_normalise)
{
    expect_platform("linux/amd64", "linux", "amd64", "");
    expect_platform("linux/x86_64", "linux", "amd64", "");
    expect_platform("linux/amd64/v1", "linux", "amd64", "");
    expect_platform("linux/amd64/v3", "linux", "amd64", "v3");
    expect_platform("linux/aarch64", "linux", "arm64", "");
    expect_platform("linux/arm64/v8", "linux", "arm64", "v8"); /* Parse keeps v8 for arm64 */
    expect_platform("linux/arm64/8", "linux", "arm64", "v8");
    expect_platform("linux/arm", "linux", "arm", ""); /* v7 is dropped with two parts */
    expect_platform("linux/arm/7", "linux", "arm", "v7");
    expect_platform("linux/arm/6", "linux", "arm", "v6");
    expect_platform("linux/armhf", "linux", "arm", ""); /* v7, dropped as above */
    expect_platform("linux/armel", "linux", "arm", "v6");
    expect_platform("Linux/ARM64", "linux", "arm64", "");
    expect_platform("macos/arm64", "darwin", "arm64", "");
    expect_platform("arm64", "linux", "arm64", "");
    expect_platform("linux", "linux", P("linux").arch, "");
    oci_platform_t p;
    berth_error_t *err = NULL;
    cr_expect_eq(platform_parse(api, "linux/*", &p, &err), BERTH_EINVAL);
    api->error_free(err), err = NULL;
    cr_expect_eq(platform_parse(api, "linux/amd64/v2/x", &p, &err), BERTH_EINVAL);
    api->error_free(err), err = NULL;
    cr_expect_eq(platform_parse(api, "nonsense", &p, &err), BERTH_EINVAL);
    api->error_free(err), err = NULL;
    cr_expect_eq(platform_parse(api, "linux//", &p, &err), BERTH_EINVAL);
    api->error_free(err);
}

static int
rank(const char *want, const char *os, const char *arch, const char *var)
{
    oci_platform_t w = P(want), h = {{0}, {0}, {0}};
    strcpy(h.os, os);
    strcpy(h.arch, arch);
    strcpy(h.variant, var);
    return platform_rank(&w, &h);
}

Test(platform, matcher_fallbacks)
{
    /* arm: own variant first, then older ones down to v5; never newer */
    cr_expect_eq(rank("linux/arm/v7", "linux", "arm", "v7"), 0);
    cr_expect_eq(rank("linux/arm/v7", "linux", "arm", "v6"), 1);
    cr_expect_eq(rank("linux/arm/v7", "linux", "arm", "v5"), 2);
    cr_expect_eq(rank("linux/arm/v7", "linux", "arm", ""), 0); /* arm without variant is v7 */
    cr_expect_eq(rank("linux/arm/v6", "linux", "arm", "v7"), -1);
    cr_expect_eq(rank("linux/arm/v5", "linux", "arm", "v6"), -1);
    cr_expect_eq(rank("linux/arm/v8", "linux", "arm", "v7"), 1);
    /* arm64 runs arm64 first, then arm v8 > v7 > v6 > v5 */
    cr_expect_eq(rank("linux/arm64", "linux", "arm64", ""), 0);
    cr_expect_eq(rank("linux/arm64", "linux", "arm64", "v8"), 0);
    cr_expect_eq(rank("linux/arm64", "linux", "arm", "v8"), 1);
    cr_expect_eq(rank("linux/arm64", "linux", "arm", "v7"), 2);
    cr_expect_eq(rank("linux/arm64", "linux", "arm", "v5"), 4);
    cr_expect_eq(rank("linux/arm64", "linux", "arm64", "v8.1"), -1);
    cr_expect_eq(rank("linux/arm64/v8.2", "linux", "arm64", "v8.1"), 1);
    cr_expect_eq(rank("linux/arm64/v9", "linux", "arm64", "v8.5"), 1);
    cr_expect_eq(rank("linux/arm64/v9", "linux", "arm64", "v8"), 6);
    /* amd64 variants: v3 runs v3, v2, v1 (plain), then 386 */
    cr_expect_eq(rank("linux/amd64/v3", "linux", "amd64", "v3"), 0);
    cr_expect_eq(rank("linux/amd64/v3", "linux", "amd64", "v2"), 1);
    cr_expect_eq(rank("linux/amd64/v3", "linux", "amd64", ""), 2);
    cr_expect_eq(rank("linux/amd64/v3", "linux", "386", ""), 3);
    cr_expect_eq(rank("linux/amd64", "linux", "amd64", "v2"), -1);
    cr_expect_eq(rank("linux/amd64", "linux", "x86_64", ""), 0);
    cr_expect_eq(rank("linux/amd64", "linux", "386", ""), 1);
    /* other os or arch */
    cr_expect_eq(rank("linux/amd64", "windows", "amd64", ""), -1);
    cr_expect_eq(rank("linux/amd64", "linux", "arm64", ""), -1);
    cr_expect_eq(rank("linux/riscv64", "linux", "riscv64", ""), 0);
}

Test(platform, exact_match_for_image_store_filters)
{
    oci_platform_t a = P("linux/arm64/v8"), b = {"linux", "aarch64", ""},
                   c = {"linux", "arm", "v7"};
    cr_expect(platform_match(&a, &b));
    cr_expect(!platform_match(&a, &c));
    oci_platform_t d = P("linux/arm"), e = {"linux", "arm", "7"};
    cr_expect(platform_match(&d, &e));
}
