/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image of a container: found in k8s.io as containerd's CRI finds it (a name normalized as docker does,
 * the image id = config digest or a unique prefix of it, or name@digest), then its manifest (the
 * linux/amd64 one of an index), its config (env, entrypoint, cmd, working dir, user, stop signal) and the
 * chain id of its layers, the parent of the container's snapshot.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "container.h"
#include "lib_crypto.h" /* opened on first use */

#define BLOB_MAX (4 << 20)

/* ---- references -------------------------------------------------------------------------------------- */

void
ctr_image_normalize(const char *ref, char *out, size_t len)
{
    const char *slash = strchr(ref, '/');
    int has_domain = 0;
    if (slash != NULL) {
        size_t n = (size_t)(slash - ref);
        has_domain = memchr(ref, '.', n) != NULL || memchr(ref, ':', n) != NULL ||
                     (n == 9 && strncmp(ref, "localhost", 9) == 0);
    }
    char name[1024];
    if (!has_domain)
        snprintf(name, sizeof(name), "docker.io/%s%s", slash == NULL ? "library/" : "", ref);
    else
        snprintf(name, sizeof(name), "%s", ref);
    /* a tag is a ':' after the last '/'; a digest is '@' */
    const char *last = strrchr(name, '/');
    int tagged = strchr(last ? last : name, ':') != NULL || strchr(name, '@') != NULL;
    snprintf(out, len, "%s%s", name, tagged ? "" : ":latest");
}

/* ---- blobs ------------------------------------------------------------------------------------------- */

static json_object *
read_json(cri_t *c, const char *digest, berth_error_t **err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (cri_content_read(c, digest, BLOB_MAX, &b, &n, err) < 0)
        return NULL;
    json_object *o = json_tokener_parse((const char *)b);
    free(b);
    if (o == NULL)
        c->api->error_make(err, BERTH_EDATALOSS, "blob %s: not JSON", digest);
    return o;
}

static const char *
jget_str(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int
is_index(const char *mt, json_object *o)
{
    if (mt != NULL && (strstr(mt, "image.index") || strstr(mt, "manifest.list")))
        return 1;
    json_object *m;
    return json_object_object_get_ex(o, "manifests", &m);
}

/* the manifest of an index for this machine: linux/amd64 (containerd's default platform matcher) */
static const char *
pick_manifest(json_object *index)
{
    json_object *ms = json_object_object_get(index, "manifests");
    const char *first = NULL;
    for (size_t i = 0; ms != NULL && i < json_object_array_length(ms); i++) {
        json_object *m = json_object_array_get_idx(ms, i),
                    *p = json_object_object_get(m, "platform");
        const char *d = jget_str(m, "digest");
        if (first == NULL)
            first = d;
        const char *os = jget_str(p, "os"), *arch = jget_str(p, "architecture");
        if (os != NULL && arch != NULL && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0)
            return d;
    }
    return first;
}

/* The manifest's config digest and (if asked) the config itself. */
static int
manifest_config(cri_t *c, const char *target, const char *media_type, char **config_digest,
                char **manifest_digest, berth_error_t **err)
{
    json_object *m = read_json(c, target, err);
    if (m == NULL)
        return -1;
    if (is_index(media_type, m)) {
        const char *d = pick_manifest(m);
        if (d == NULL) {
            json_object_put(m);
            return c->api->error_make(err, BERTH_ENOTFOUND, "index %s: no manifest for linux/amd64",
                                      target);
        }
        char *dd = strdup(d);
        json_object_put(m);
        m = read_json(c, dd, err);
        if (manifest_digest)
            *manifest_digest = dd;
        else
            free(dd);
        if (m == NULL)
            return -1;
    } else if (manifest_digest) {
        *manifest_digest = strdup(target);
    }
    const char *cd = jget_str(json_object_object_get(m, "config"), "digest");
    if (cd == NULL) {
        json_object_put(m);
        return c->api->error_make(err, BERTH_EDATALOSS, "manifest of %s: no config", target);
    }
    *config_digest = strdup(cd);
    json_object_put(m);
    return 0;
}

static char **
strv_from(json_object *a)
{
    if (a == NULL || !json_object_is_type(a, json_type_array))
        return NULL;
    size_t n = json_object_array_length(a);
    char **v = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = (char *)json_object_get_string(json_object_array_get_idx(a, i));
    return v;
}

/* chainID(L0) = diffID0; chainID(Ln) = sha256(chainID(Ln-1) + " " + diffIDn) */
static char *
chain_id(json_object *diff_ids)
{
    size_t n = diff_ids ? json_object_array_length(diff_ids) : 0;
    if (n == 0)
        return strdup("");
    char cur[80];
    snprintf(cur, sizeof(cur), "%s",
             json_object_get_string(json_object_array_get_idx(diff_ids, 0)));
    for (size_t i = 1; i < n; i++) {
        char buf[200];
        int len = snprintf(buf, sizeof(buf), "%s %s", cur,
                           json_object_get_string(json_object_array_get_idx(diff_ids, i)));
        unsigned char md[32];
        unsigned int mdlen = 0;
        libcrypto.EVP_Digest(buf, (size_t)len, md, &mdlen, libcrypto.EVP_sha256(), NULL);
        char *p = cur + snprintf(cur, sizeof(cur), "sha256:");
        for (unsigned j = 0; j < mdlen; j++)
            p += sprintf(p, "%02x", md[j]);
    }
    return strdup(cur);
}

static int
load(cri_t *c, const Containerd__Services__Images__V1__Image *rec, ctr_image_t *out,
     berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    if (rec->target == NULL)
        return c->api->error_make(err, BERTH_EDATALOSS, "image %s: no target", rec->name);
    char *cfgd = NULL, *mand = NULL;
    if (manifest_config(c, rec->target->digest, rec->target->media_type, &cfgd, &mand, err) < 0)
        return -1;
    json_object *cfg = read_json(c, cfgd, err);
    if (cfg == NULL) {
        free(cfgd);
        free(mand);
        return -1;
    }
    out->name = strdup(rec->name);
    out->id = cfgd;
    char repo[1024];
    snprintf(repo, sizeof(repo), "%s", rec->name);
    char *at = strchr(repo, '@');
    if (at != NULL)
        *at = '\0';
    else {
        char *slash = strrchr(repo, '/'), *colon = strrchr(slash ? slash : repo, ':');
        if (colon != NULL)
            *colon = '\0';
    }
    size_t rl = strlen(repo) + strlen(rec->target->digest) + 2;
    out->repo_digest = malloc(rl);
    snprintf(out->repo_digest, rl, "%s@%s", repo, rec->target->digest);
    free(mand);
    out->json = cfg;
    json_object *cc = json_object_object_get(cfg, "config");
    out->cfg.env = strv_from(json_object_object_get(cc, "Env"));
    out->cfg.entrypoint = strv_from(json_object_object_get(cc, "Entrypoint"));
    out->cfg.cmd = strv_from(json_object_object_get(cc, "Cmd"));
    out->cfg.working_dir = jget_str(cc, "WorkingDir");
    out->cfg.user = jget_str(cc, "User");
    out->cfg.stop_signal = jget_str(cc, "StopSignal");
    out->chain_id =
        chain_id(json_object_object_get(json_object_object_get(cfg, "rootfs"), "diff_ids"));
    return 0;
}

void
ctr_image_free(ctr_image_t *im)
{
    if (im == NULL)
        return;
    free(im->name);
    free(im->id);
    free(im->chain_id);
    free(im->repo_digest);
    free(im->cfg.env);
    free(im->cfg.entrypoint);
    free(im->cfg.cmd);
    if (im->json)
        json_object_put(im->json);
    memset(im, 0, sizeof(*im));
}

static int
get_record(cri_t *c, const char *name, Containerd__Services__Images__V1__GetImageResponse **out)
{
    Containerd__Services__Images__V1__GetImageRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
    req.name = (char *)name;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_IMAGES, "Get", &req.base,
                      &containerd__services__images__v1__get_image_response__descriptor,
                      (ProtobufCMessage **)out, NULL, &e);
    c->api->error_free(e);
    return rc == 0 && (*out)->image != NULL ? 0 : -1;
}

static int
is_hex(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s))
            return 0;
    return 1;
}

int
ctr_image_resolve(cri_t *c, const char *ref, ctr_image_t *out, berth_error_t **err)
{
    memset(out, 0, sizeof(*out));
    if (ref == NULL || *ref == '\0')
        return c->api->error_make(err, BERTH_EINVAL, "image: no reference given");
    int lrc = libcrypto_load(c->api, err); /* chain ids */
    if (lrc < 0)
        return lrc;
    Containerd__Services__Images__V1__GetImageResponse *g = NULL;
    char norm[1024];
    ctr_image_normalize(ref, norm, sizeof(norm));
    if (get_record(c, ref, &g) < 0) {
        if (g != NULL)
            protobuf_c_message_free_unpacked(&g->base, NULL);
        g = NULL;
        if (strcmp(norm, ref) != 0 && get_record(c, norm, &g) < 0) {
            if (g != NULL)
                protobuf_c_message_free_unpacked(&g->base, NULL);
            g = NULL;
        }
    }
    if (g != NULL) {
        int rc = load(c, g->image, out, err);
        protobuf_c_message_free_unpacked(&g->base, NULL);
        return rc;
    }
    /* an id (sha256:<hex> or a prefix of the hex): every image's config, as containerd's CRI image store
     * indexes them */
    const char *hex = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    if (!is_hex(hex))
        return c->api->error_make(err, BERTH_ENOTFOUND, "image \"%s\": not found", ref);
    Containerd__Services__Images__V1__ListImagesRequest lr =
        CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
    Containerd__Services__Images__V1__ListImagesResponse *l = NULL;
    if (cri_call(c, CRI_SVC_IMAGES, "List", &lr.base,
                 &containerd__services__images__v1__list_images_response__descriptor,
                 (ProtobufCMessage **)&l, NULL, err) < 0)
        return -1;
    const Containerd__Services__Images__V1__Image *found = NULL;
    char found_id[80] = "";
    int ambiguous = 0;
    for (size_t i = 0; i < l->n_images; i++) {
        const Containerd__Services__Images__V1__Image *im = l->images[i];
        char *cd = NULL;
        berth_error_t *e = NULL;
        if (im->target == NULL ||
            manifest_config(c, im->target->digest, im->target->media_type, &cd, NULL, &e) < 0) {
            c->api->error_free(e);
            continue;
        }
        if (strncmp(cd + 7, hex, strlen(hex)) == 0) {
            if (found != NULL && strcmp(found_id, cd) != 0)
                ambiguous = 1;
            found = im;
            snprintf(found_id, sizeof(found_id), "%s", cd);
        }
        free(cd);
    }
    int rc;
    if (found == NULL)
        rc = c->api->error_make(err, BERTH_ENOTFOUND, "image \"%s\": not found", ref);
    else if (ambiguous)
        rc = c->api->error_make(err, BERTH_EINVAL, "image \"%s\": the prefix names several images",
                                ref);
    else
        rc = load(c, found, out, err);
    protobuf_c_message_free_unpacked(&l->base, NULL);
    return rc;
}
