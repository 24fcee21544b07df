/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Manifests, indexes and image configs (OCI and Docker v2 schema 2) read with json-c, and platforms as
 * github.com/containerd/platforms parses, normalises and matches them: a wanted platform runs its own
 * variant first, then older ones (arm v8 > v7 > v6 > v5, amd64 v4 > v3 > v2 > v1 then 386, arm64 then arm).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "transfer.h"

/* ---- platforms --------------------------------------------------------------------------------------- */

static void
lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static void
set(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* containerd's normalizeOS and normalizeArch */
void
platform_normalize(oci_platform_t *p)
{
    char os[32], arch[32], var[32];
    lower_copy(os, sizeof os, p->os[0] ? p->os : "linux");
    if (strcmp(os, "macos") == 0)
        set(os, sizeof os, "darwin");
    lower_copy(arch, sizeof arch, p->arch);
    lower_copy(var, sizeof var, p->variant);
    if (strcmp(arch, "i386") == 0) {
        set(arch, sizeof arch, "386");
        var[0] = '\0';
    } else if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64") || !strcmp(arch, "amd64")) {
        set(arch, sizeof arch, "amd64");
        if (strcmp(var, "v1") == 0)
            var[0] = '\0';
    } else if (!strcmp(arch, "aarch64") || !strcmp(arch, "arm64")) {
        set(arch, sizeof arch, "arm64");
        if (!strcmp(var, "8") || !strcmp(var, "v8") || !strcmp(var, "v8.0"))
            var[0] = '\0';
        else if (!strcmp(var, "9") || !strcmp(var, "9.0") || !strcmp(var, "v9.0"))
            set(var, sizeof var, "v9");
    } else if (strcmp(arch, "armhf") == 0) {
        set(arch, sizeof arch, "arm");
        set(var, sizeof var, "v7");
    } else if (strcmp(arch, "armel") == 0) {
        set(arch, sizeof arch, "arm");
        set(var, sizeof var, "v6");
    } else if (strcmp(arch, "arm") == 0) {
        if (!var[0] || !strcmp(var, "7"))
            set(var, sizeof var, "v7");
        else if (!strcmp(var, "5") || !strcmp(var, "6") || !strcmp(var, "8")) {
            char v[3] = {'v', var[0], '\0'};
            set(var, sizeof var, v);
        }
    }
    set(p->os, sizeof p->os, os);
    set(p->arch, sizeof p->arch, arch);
    set(p->variant, sizeof p->variant, var);
}

static int
known_os(const char *s)
{
    static const char *const k[] = {
        "aix",   "android", "darwin", "dragonfly", "freebsd", "hurd",    "illumos", "ios", "js",
        "linux", "nacl",    "netbsd", "openbsd",   "plan9",   "solaris", "windows", "zos", NULL};
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], s) == 0)
            return 1;
    return 0;
}

static int
known_arch(const char *s)
{
    static const char *const k[] = {"386",         "amd64",   "amd64p32", "arm",      "armbe",
                                    "arm64",       "arm64be", "ppc64",    "ppc64le",  "loong64",
                                    "mips",        "mipsle",  "mips64",   "mips64le", "mips64p32",
                                    "mips64p32le", "ppc",     "riscv",    "riscv64",  "s390",
                                    "s390x",       "sparc",   "sparc64",  "wasm",     NULL};
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], s) == 0)
            return 1;
    return 0;
}

static int
valid_component(const char *s, int os)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && (os || *s != '.'))
            return 0;
    return 1;
}

static const char *
host_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__arm__)
    return "arm";
#elif defined(__i386__)
    return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

void
platform_host(oci_platform_t *out)
{
    memset(out, 0, sizeof *out);
    set(out->os, sizeof out->os, "linux");
    set(out->arch, sizeof out->arch, host_arch());
#if defined(__arm__)
    set(out->variant, sizeof out->variant, "v7");
#endif
}

/* containerd's platforms.Parse: "os", "arch", "os/arch", "os/arch/variant"; os version/features in
 * parentheses are not supported (windows only). */
int
platform_parse(const berth_core_api_t *api, const char *spec, oci_platform_t *out,
               berth_error_t **err)
{
    char buf[128], *parts[4];
    size_t n = 0;
    memset(out, 0, sizeof *out);
    if (strchr(spec, '*'))
        return api->error_make(err, BERTH_EINVAL,
                               "%s: wildcards not yet supported: invalid argument", spec);
    if (strlen(spec) >= sizeof buf)
        return api->error_make(err, BERTH_EINVAL,
                               "%s: cannot parse platform specifier: invalid argument", spec);
    strcpy(buf, spec);
    for (char *s = buf, *slash; n < 4; s = slash + 1) {
        parts[n++] = s;
        slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    if (n == 4 || strchr(parts[n - 1], '/'))
        return api->error_make(err, BERTH_EINVAL,
                               "\"%s\": cannot parse platform specifier: invalid argument", spec);
    for (size_t i = 0; i < n; i++)
        if (!valid_component(parts[i], i == 0))
            return api->error_make(err, BERTH_EINVAL,
                                   "\"%s\" is an invalid component of \"%s\": invalid argument",
                                   parts[i], spec);
    oci_platform_t p = {0};
    lower_copy(p.os, sizeof p.os, parts[0]);
    if (strcmp(p.os, "macos") == 0)
        set(p.os, sizeof p.os, "darwin");
    if (n == 1) {
        if (known_os(p.os)) {
            oci_platform_t h;
            platform_host(&h);
            set(p.arch, sizeof p.arch, h.arch);
            if (strcmp(h.arch, "arm") == 0 && strcmp(h.variant, "v7") != 0)
                set(p.variant, sizeof p.variant, h.variant);
            *out = p;
            return 0;
        }
        set(p.arch, sizeof p.arch, parts[0]);
        set(p.os, sizeof p.os, "linux");
        platform_normalize(&p);
        if (!strcmp(p.arch, "arm") && !strcmp(p.variant, "v7"))
            p.variant[0] = '\0';
        if (!known_arch(p.arch))
            return api->error_make(
                err, BERTH_EINVAL,
                "\"%s\": unknown operating system or architecture: invalid argument", spec);
        *out = p;
        return 0;
    }
    set(p.arch, sizeof p.arch, parts[1]);
    if (n == 3)
        set(p.variant, sizeof p.variant, parts[2]);
    char os[32];
    set(os, sizeof os, p.os);
    platform_normalize(&p);
    set(p.os, sizeof p.os, os); /* Parse normalises only the os it already lowered */
    if (n == 2 && !strcmp(p.arch, "arm") && !strcmp(p.variant, "v7"))
        p.variant[0] = '\0';
    if (n == 3 && !strcmp(p.arch, "arm64") && !p.variant[0])
        set(p.variant, sizeof p.variant, "v8");
    *out = p;
    return 0;
}

/* containerd's NewMatcher(want).Match(have): both normalised, then equal. */
int
platform_match(const oci_platform_t *want, const oci_platform_t *have)
{
    oci_platform_t a = *want, b = *have;
    platform_normalize(&a);
    platform_normalize(&b);
    return !strcmp(a.os, b.os) && !strcmp(a.arch, b.arch) && !strcmp(a.variant, b.variant);
}

/* containerd's platformVector: the platform, then what it can also run, best first. */
static size_t
platform_vector(const oci_platform_t *p, oci_platform_t *v, size_t cap)
{
    size_t n = 0;
    oci_platform_t q = *p;
#define PUSH(x)           \
    do {                  \
        if (n < cap)      \
            v[n++] = (x); \
    } while (0)
    if (!strcmp(p->arch, "amd64")) {
        PUSH(q);
        int ver = 0;
        if (p->variant[0] == 'v' && p->variant[1])
            ver = atoi(p->variant + 1);
        for (ver--; ver >= 1; ver--) {
            snprintf(q.variant, sizeof q.variant, "v%d", ver);
            PUSH(q);
        }
        q.variant[0] = '\0';
        set(q.arch, sizeof q.arch, "386");
        PUSH(q);
    } else if (!strcmp(p->arch, "arm")) {
        PUSH(q);
        int ver = 0;
        if (p->variant[0] == 'v' && p->variant[1])
            ver = atoi(p->variant + 1);
        if (ver > 5)
            for (ver--; ver >= 5; ver--) {
                snprintf(q.variant, sizeof q.variant, "v%d", ver);
                PUSH(q);
            }
    } else if (!strcmp(p->arch, "arm64")) {
        const char *var = p->variant[0] ? p->variant : "v8";
        /* arm64variantToVersion: v8.x runs v8.x..v8.0; v9.x runs v9.x..v9.0 then v8.(x+5 capped 9)..v8.0 */
        int major = 0, minor = 0;
        if (var[0] == 'v' && (var[1] == '8' || var[1] == '9') &&
            (var[2] == '\0' ||
             (var[2] == '.' && isdigit((unsigned char)var[3]) && var[4] == '\0'))) {
            major = var[1] - '0';
            minor = var[2] ? var[3] - '0' : 0;
        }
        if (major) {
            int majors[2] = {major, 8}, minors[2] = {minor, minor + 5 > 9 ? 9 : minor + 5};
            int nm = major == 9 ? 2 : 1;
            for (int i = 0; i < nm; i++)
                for (int m = minors[i]; m >= 0; m--) {
                    if (m == 0)
                        snprintf(q.variant, sizeof q.variant, "v%d", majors[i]);
                    else
                        snprintf(q.variant, sizeof q.variant, "v%d.%d", majors[i], m);
                    PUSH(q);
                }
        }
        oci_platform_t arm = *p;
        set(arm.arch, sizeof arm.arch, "arm");
        set(arm.variant, sizeof arm.variant, major ? "v8" : var);
        n += platform_vector(&arm, v + n, cap - n);
    } else {
        PUSH(q);
    }
#undef PUSH
    return n;
}

int
platform_rank(const oci_platform_t *want, const oci_platform_t *have)
{
    oci_platform_t w = *want, vec[32];
    platform_normalize(&w);
    size_t n = platform_vector(&w, vec, 32);
    for (size_t i = 0; i < n; i++)
        if (platform_match(&vec[i], have))
            return (int)i;
    return -1;
}

/* ---- manifests ------------------------------------------------------------------------------------- */

int
media_is_index(const char *mt)
{
    return !strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
           !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json");
}

int
media_is_manifest(const char *mt)
{
    return !strcmp(mt, "application/vnd.oci.image.manifest.v1+json") ||
           !strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json");
}

/* containerd's IsLayerType */
int
media_is_layer(const char *mt)
{
    return !strncmp(mt, "application/vnd.oci.image.layer.", 32) ||
           !strncmp(mt, "application/vnd.docker.image.rootfs.", 36) ||
           !strcmp(mt, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
}

int
media_is_config(const char *mt)
{
    return !strcmp(mt, "application/vnd.oci.image.config.v1+json") ||
           !strcmp(mt, "application/vnd.docker.container.image.v1+json") ||
           !strcmp(mt, "application/octet-stream");
}

/* "<alg>:<hex>", sha256 64 hex, sha384 96, sha512 128 */
int
digest_valid(const char *d)
{
    const char *colon = strchr(d, ':');
    if (!colon)
        return 0;
    size_t want;
    if (!strncmp(d, "sha256:", 7))
        want = 64;
    else if (!strncmp(d, "sha384:", 7))
        want = 96;
    else if (!strncmp(d, "sha512:", 7))
        want = 128;
    else
        return 0;
    const char *h = colon + 1;
    if (strlen(h) != want || strlen(d) >= BERTH_DIGEST_MAX)
        return 0;
    for (; *h; h++)
        if (!isdigit((unsigned char)*h) && !(*h >= 'a' && *h <= 'f'))
            return 0;
    return 1;
}

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int
bad(const berth_core_api_t *api, berth_error_t **err, const char *what, const char *field)
{
    return api->error_make(err, BERTH_EINVAL, "%s: invalid %s: invalid argument", what, field);
}

static int
parse_desc(const berth_core_api_t *api, json_object *o, const char *field, berth_descriptor_t *d,
           berth_error_t **err)
{
    memset(d, 0, sizeof *d);
    json_object *sz;
    const char *mt = jstr(o, "mediaType"), *dg = jstr(o, "digest");
    if (!json_object_is_type(o, json_type_object))
        return bad(api, err, field, "descriptor");
    if (!dg || !digest_valid(dg))
        return bad(api, err, field, "digest");
    if (!json_object_object_get_ex(o, "size", &sz) || !json_object_is_type(sz, json_type_int) ||
        json_object_get_int64(sz) < 0)
        return bad(api, err, field, "size");
    set(d->media_type, sizeof d->media_type, mt ? mt : "");
    set(d->digest, sizeof d->digest, dg);
    d->size = json_object_get_int64(sz);
    json_object *ann;
    if (json_object_object_get_ex(o, "annotations", &ann) &&
        json_object_is_type(ann, json_type_object) && json_object_object_length(ann) > 0) {
        berth_kv_t *kv = api->kv_new();
        if (!kv)
            return api->error_make(err, BERTH_ENOMEM, "out of memory");
        json_object_object_foreach(ann, k, v)
        {
            if (json_object_is_type(v, json_type_string))
                api->kv_set(kv, k, json_object_get_string(v));
        }
        d->annotations = kv;
    }
    return 0;
}

static void
parse_platform(json_object *o, oci_child_t *c)
{
    json_object *p;
    if (!json_object_object_get_ex(o, "platform", &p) || !json_object_is_type(p, json_type_object))
        return;
    const char *os = jstr(p, "os"), *arch = jstr(p, "architecture"), *var = jstr(p, "variant");
    c->has_platform = 1;
    set(c->platform.os, sizeof c->platform.os, os ? os : "");
    set(c->platform.arch, sizeof c->platform.arch, arch ? arch : "");
    set(c->platform.variant, sizeof c->platform.variant, var ? var : "");
}

void
manifest_free(oci_manifest_t *m)
{
    if (!m)
        return;
    if (m->api) {
        if (m->config.annotations)
            m->api->kv_free((berth_kv_t *)m->config.annotations);
        for (size_t i = 0; i < m->n_children; i++)
            if (m->children[i].desc.annotations)
                m->api->kv_free((berth_kv_t *)m->children[i].desc.annotations);
    }
    free(m->children);
    memset(m, 0, sizeof *m);
}

int
manifest_parse(const berth_core_api_t *api, const char *media_type, const uint8_t *data, size_t len,
               oci_manifest_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof *out);
    out->api = api;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return api->error_make(err, BERTH_ENOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return api->error_make(err, BERTH_EINVAL, "manifest: %s: invalid argument",
                               jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                            : "not a JSON object");
    }
    int rc = 0;
    const char *inner = jstr(root, "mediaType");
    json_object *list = NULL;
    int has_manifests = json_object_object_get_ex(root, "manifests", &list);
    int is_index;
    if (media_type && (media_is_index(media_type) || media_is_manifest(media_type)))
        is_index = media_is_index(media_type);
    else if (inner && (media_is_index(inner) || media_is_manifest(inner)))
        is_index = media_is_index(inner);
    else
        is_index = has_manifests;
    /* a document whose own mediaType contradicts how it was served is refused (OCI image-spec) */
    if (inner && media_type && media_type[0] &&
        (media_is_index(inner) || media_is_manifest(inner)) && media_is_index(inner) != is_index) {
        rc = bad(api, err, "manifest", "mediaType");
        goto out;
    }
    out->is_index = is_index;
    if (is_index) {
        if (!has_manifests || !json_object_is_type(list, json_type_array)) {
            rc = bad(api, err, "index", "manifests");
            goto out;
        }
    } else {
        json_object *cfg;
        if (!json_object_object_get_ex(root, "config", &cfg)) {
            rc = bad(api, err, "manifest", "config");
            goto out;
        }
        if ((rc = parse_desc(api, cfg, "manifest config", &out->config, err)) < 0)
            goto out;
        if (!json_object_object_get_ex(root, "layers", &list) ||
            !json_object_is_type(list, json_type_array)) {
            if (list) {
                rc = bad(api, err, "manifest", "layers");
                goto out;
            }
            list = NULL; /* a manifest without layers (artifacts) */
        }
    }
    size_t n = list ? json_object_array_length(list) : 0;
    if (n) {
        out->children = calloc(n, sizeof *out->children);
        if (!out->children) {
            rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(list, i);
        if ((rc = parse_desc(api, o, is_index ? "index manifests" : "manifest layers",
                             &out->children[i].desc, err)) < 0)
            goto out;
        out->n_children++;
        if (is_index)
            parse_platform(o, &out->children[i]);
    }
out:
    json_object_put(root);
    if (rc < 0)
        manifest_free(out);
    return rc;
}

static json_object *
parse_obj(const berth_core_api_t *api, const uint8_t *data, size_t len, berth_error_t **err)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        api->error_make(err, BERTH_ENOMEM, "out of memory");
        return NULL;
    }
    json_object *root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        api->error_make(err, BERTH_EINVAL, "unmarshal image config: %s: invalid argument",
                        jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                     : "not a JSON object");
        return NULL;
    }
    return root;
}

int
config_diff_ids(const berth_core_api_t *api, const uint8_t *data, size_t len,
                char (**ids)[BERTH_DIGEST_MAX], size_t *n, berth_error_t **err)
{
    *ids = NULL;
    *n = 0;
    json_object *root = parse_obj(api, data, len, err), *rootfs, *arr;
    if (!root)
        return BERTH_EINVAL;
    int rc = 0;
    if (!json_object_object_get_ex(root, "rootfs", &rootfs) ||
        !json_object_object_get_ex(rootfs, "diff_ids", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        /* no rootfs: no layers to unpack */
        json_object_put(root);
        return 0;
    }
    size_t m = json_object_array_length(arr);
    char(*v)[BERTH_DIGEST_MAX] = m ? calloc(m, BERTH_DIGEST_MAX) : NULL;
    if (m && !v) {
        rc = api->error_make(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
        if (!s || !digest_valid(s)) {
            free(v);
            rc = api->error_make(err, BERTH_EINVAL,
                                 "image config: invalid rootfs.diff_ids[%zu]: invalid argument", i);
            goto out;
        }
        set(v[i], BERTH_DIGEST_MAX, s);
    }
    *ids = v;
    *n = m;
out:
    json_object_put(root);
    return rc;
}

int
config_platform(const berth_core_api_t *api, const uint8_t *data, size_t len, oci_platform_t *out,
                berth_error_t **err)
{
    memset(out, 0, sizeof *out);
    json_object *root = parse_obj(api, data, len, err);
    if (!root)
        return BERTH_EINVAL;
    const char *os = jstr(root, "os"), *arch = jstr(root, "architecture"),
               *var = jstr(root, "variant");
    set(out->os, sizeof out->os, os ? os : "");
    set(out->arch, sizeof out->arch, arch ? arch : "");
    set(out->variant, sizeof out->variant, var ? var : "");
    json_object_put(root);
    return 0;
}

/* containerd's remotes.MakeRefKey: "<kind>-<digest>", the ingest ref of a blob by what it is */
void
descriptor_ref_key(const berth_descriptor_t *d, char *out, size_t cap)
{
    const char *mt = d->media_type, *kind = "unknown";
    if (media_is_manifest(mt))
        kind = "manifest";
    else if (media_is_index(mt))
        kind = "index";
    else if (media_is_layer(mt))
        kind = "layer";
    else if (media_is_config(mt))
        kind = "config";
    snprintf(out, cap, "%s-%s", kind, d->digest);
}
