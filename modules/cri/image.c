/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ImageService: ListImages, ImageStatus, PullImage, RemoveImage, ImageFsInfo, over the Images and
 * Transfer services of k8s.io. As containerd's CRI, an image is every record whose target resolves to
 * one config: its id (sha256:<config digest>), repo tags (name:tag) and repo digests (name@sha256:...);
 * a pull writes all three records, labelled io.cri-containerd.image=managed. Manifests and configs are
 * read from the content store's blobs (Content.Read is a stream, not callable in process).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cri.h"
#include "lib_crypto.h" /* opened on first use; SHA256_CTX: EVP keeps per-thread state on pool threads */
#include "services/images/v1/images.pb-c.h"
#include "services/transfer/v1/transfer.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/registry.pb-c.h"

#define MANAGED_LABEL "io.cri-containerd.image"
#define BLOB_MAX (64u << 20)

#if defined(__x86_64__)
#define HOST_ARCH "amd64"
#elif defined(__aarch64__)
#define HOST_ARCH "arm64"
#else
#define HOST_ARCH "unknown"
#endif

/* ---- names ---------------------------------------------------------------------------------------- */

char *
cri_image_normalize(const char *ref)
{
    const char *slash = strchr(ref, '/');
    int has_host = slash && (memchr(ref, '.', (size_t)(slash - ref)) ||
                             memchr(ref, ':', (size_t)(slash - ref)) ||
                             (slash - ref == 9 && strncmp(ref, "localhost", 9) == 0));
    const char *last = strrchr(ref, '/');
    last = last ? last + 1 : ref;
    int tagged = strchr(last, ':') != NULL || strchr(ref, '@') != NULL;
    char *out = NULL;
    if (asprintf(&out, "%s%s%s%s", has_host ? "" : "docker.io/",
                 !has_host && !slash ? "library/" : "", ref, tagged ? "" : ":latest") < 0)
        return NULL;
    return out;
}

static int
is_id(const char *s)
{
    return strncmp(s, "sha256:", 7) == 0;
}

/* ---- blobs ---------------------------------------------------------------------------------------- */

static char *
blob_read(cri_t *c, const char *digest, size_t *len)
{
    if (!is_id(digest) || strchr(digest + 7, '/'))
        return NULL;
    char root[PATH_MAX], path[PATH_MAX + 128];
    snprintf(root, sizeof(root), "%s", c->cfg.root);
    snprintf(path, sizeof(path), "%s/io.containerd.content.v1.content/blobs/sha256/%s",
             dirname(root), digest + 7);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > BLOB_MAX) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r;
    while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static json_object *
blob_json(cri_t *c, const char *digest)
{
    char *b = blob_read(c, digest, NULL);
    if (b == NULL)
        return NULL;
    json_object *o = json_tokener_parse(b);
    free(b);
    return o;
}

static const char *
jstr(json_object *o, const char *k)
{
    json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static void
chain_next(const char *parent, const char *diff, char out[72])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s %s", parent, diff);
    SHA256_CTX h;
    libcrypto.SHA256_Init(&h);
    libcrypto.SHA256_Update(&h, buf, (size_t)n);
    libcrypto.SHA256_Final(md, &h);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* target (an index or a manifest) -> the platform manifest, its config, size, chain id. */
static cri_image_t *
resolve(cri_t *c, const char *target_digest, const char *media_type, int64_t target_size)
{
    if (libcrypto_load(c->api, NULL) < 0) /* chain ids (the callers reported why) */
        return NULL;
    char manifest[80];
    snprintf(manifest, sizeof(manifest), "%s", target_digest);
    uint64_t size = 0;
    json_object *m = blob_json(c, manifest);
    json_object *v;
    if (m && json_object_object_get_ex(m, "manifests", &v) &&
        json_object_is_type(v,
                            json_type_array)) { /* an index: the host's platform, else the first */
        size += (uint64_t)target_size;
        json_object *pick = NULL;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *d = json_object_array_get_idx(v, i), *p;
            const char *os = NULL, *arch = NULL;
            if (json_object_object_get_ex(d, "platform", &p))
                os = jstr(p, "os"), arch = jstr(p, "architecture");
            if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, HOST_ARCH) == 0) {
                pick = d;
                break;
            }
            if (pick == NULL && !os)
                pick = d;
        }
        const char *d = pick ? jstr(pick, "digest") : NULL;
        if (d == NULL) {
            json_object_put(m);
            return NULL;
        }
        json_object *sz;
        if (json_object_object_get_ex(pick, "size", &sz))
            size += (uint64_t)json_object_get_int64(sz);
        snprintf(manifest, sizeof(manifest), "%s", d);
        json_object_put(m);
        m = blob_json(c, manifest);
    } else {
        size += (uint64_t)target_size;
    }
    (void)media_type;
    json_object *cfgd;
    const char *cfg_digest = NULL;
    if (m && json_object_object_get_ex(m, "config", &cfgd))
        cfg_digest = jstr(cfgd, "digest");
    if (cfg_digest == NULL) {
        if (m)
            json_object_put(m);
        return NULL;
    }
    cri_image_t *img = calloc(1, sizeof(*img));
    img->id = strdup(cfg_digest);
    img->manifest = strdup(manifest);
    json_object *sz;
    if (json_object_object_get_ex(cfgd, "size", &sz))
        size += (uint64_t)json_object_get_int64(sz);
    json_object *layers;
    if (json_object_object_get_ex(m, "layers", &layers) &&
        json_object_is_type(layers, json_type_array))
        for (size_t i = 0; i < json_object_array_length(layers); i++)
            if (json_object_object_get_ex(json_object_array_get_idx(layers, i), "size", &sz))
                size += (uint64_t)json_object_get_int64(sz);
    json_object_put(m);
    img->size = size;
    size_t cl = 0;
    img->config_json = blob_read(c, img->id, &cl);
    if (img->config_json == NULL)
        img->config_json = strdup("{}");
    json_object *cfg = json_tokener_parse(img->config_json), *rootfs, *diffs;
    char chain[72] = "";
    if (cfg && json_object_object_get_ex(cfg, "rootfs", &rootfs) &&
        json_object_object_get_ex(rootfs, "diff_ids", &diffs) &&
        json_object_is_type(diffs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(diffs); i++) {
            const char *d = json_object_get_string(json_object_array_get_idx(diffs, i));
            if (d == NULL)
                break;
            if (i == 0)
                snprintf(chain, sizeof(chain), "%s", d);
            else
                chain_next(chain, d, chain);
        }
    }
    if (cfg)
        json_object_put(cfg);
    img->chain_id = strdup(chain);
    img->tags = calloc(1, sizeof(char *));
    img->digests = calloc(1, sizeof(char *));
    return img;
}

void
cri_image_free(cri_image_t *img)
{
    if (img == NULL)
        return;
    free(img->id);
    free(img->manifest);
    for (size_t i = 0; img->tags && img->tags[i]; i++)
        free(img->tags[i]);
    free(img->tags);
    for (size_t i = 0; img->digests && img->digests[i]; i++)
        free(img->digests[i]);
    free(img->digests);
    free(img->config_json);
    free(img->chain_id);
    free(img);
}

static void
strv_add(char ***v, const char *s)
{
    size_t n = 0;
    while ((*v)[n])
        if (strcmp((*v)[n++], s) == 0)
            return;
    *v = realloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = strdup(s);
    (*v)[n + 1] = NULL;
}

/* ---- every image of k8s.io, grouped by id --------------------------------------------------------- */

typedef struct image_set {
    cri_image_t **v;
    size_t n;
} image_set_t;

static void
set_free(image_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        cri_image_free(s->v[i]);
    free(s->v);
}

static int
load_images(cri_t *c, image_set_t *set, berth_error_t **err)
{
    memset(set, 0, sizeof(*set));
    if (libcrypto_load(c->api, err) < 0) /* chain ids */
        return -1;
    Containerd__Services__Images__V1__ListImagesRequest req =
        CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    if (cri_call(c, CRI_SVC_IMAGES, "List", &req.base,
                 &containerd__services__images__v1__list_images_response__descriptor, &out, NULL,
                 err) < 0)
        return -1;
    Containerd__Services__Images__V1__ListImagesResponse *r = (void *)out;
    for (size_t i = 0; i < r->n_images; i++) {
        Containerd__Services__Images__V1__Image *im = r->images[i];
        if (im->target == NULL || im->target->digest == NULL)
            continue;
        cri_image_t *got = resolve(c, im->target->digest, im->target->media_type, im->target->size);
        if (got == NULL)
            continue; /* content missing (a pull under way, or garbage): not an image yet */
        cri_image_t *grp = NULL;
        for (size_t j = 0; grp == NULL && j < set->n; j++)
            if (strcmp(set->v[j]->id, got->id) == 0)
                grp = set->v[j];
        if (grp == NULL) {
            set->v = realloc(set->v, (set->n + 1) * sizeof(*set->v));
            set->v[set->n++] = grp = got;
        } else {
            cri_image_free(got);
        }
        const char *name = im->name;
        if (is_id(name))
            continue;
        if (strchr(name, '@'))
            strv_add(&grp->digests, name);
        else
            strv_add(&grp->tags, name);
    }
    protobuf_c_message_free_unpacked(out, NULL);
    return 0;
}

static int
image_matches(const cri_image_t *img, const char *ref, const char *norm)
{
    if (is_id(ref))
        return strncmp(img->id, ref, strlen(ref)) == 0 && strlen(ref) > 7;
    if (strspn(ref, "0123456789abcdef") == strlen(ref) && strlen(ref) >= 12) /* a bare id prefix */
        return strncmp(img->id + 7, ref, strlen(ref)) == 0;
    for (size_t i = 0; img->tags[i]; i++)
        if (strcmp(img->tags[i], norm) == 0 || strcmp(img->tags[i], ref) == 0)
            return 1;
    for (size_t i = 0; img->digests[i]; i++)
        if (strcmp(img->digests[i], norm) == 0 || strcmp(img->digests[i], ref) == 0)
            return 1;
    return 0;
}

int
cri_image_find(cri_t *c, const char *ref, cri_image_t **out, berth_error_t **err)
{
    *out = NULL;
    if (ref == NULL || *ref == '\0')
        return c->api->error_make(err, BERTH_EINVAL, "image: a name or id is required");
    char why[600];
    if (cri_validate_image_ref(ref, why, sizeof(why)) < 0)
        return c->api->error_make(err, BERTH_EINVAL, "%s", why);
    image_set_t set;
    if (load_images(c, &set, err) < 0)
        return -1;
    char *norm = cri_image_normalize(ref);
    for (size_t i = 0; *out == NULL && i < set.n; i++)
        if (image_matches(set.v[i], ref, norm ? norm : ref)) {
            *out = set.v[i];
            set.v[i] = set.v[--set.n];
        }
    free(norm);
    set_free(&set);
    if (*out == NULL)
        return c->api->error_make(err, BERTH_ENOTFOUND, "image \"%s\": not found", ref);
    return 0;
}

/* ---- the CRI Image message ------------------------------------------------------------------------ */

typedef struct image_msg {
    Runtime__V1__Image im;
    Runtime__V1__Int64Value uid;
    Runtime__V1__ImageSpec spec;
    char *username;
} image_msg_t;

static void
image_msg_fill(const cri_image_t *img, image_msg_t *m)
{
    runtime__v1__image__init(&m->im);
    runtime__v1__int64_value__init(&m->uid);
    runtime__v1__image_spec__init(&m->spec);
    m->username = NULL;
    m->im.id = img->id;
    size_t n = 0;
    while (img->tags[n])
        n++;
    m->im.repo_tags = img->tags;
    m->im.n_repo_tags = n;
    n = 0;
    while (img->digests[n])
        n++;
    m->im.repo_digests = img->digests;
    m->im.n_repo_digests = n;
    m->im.size = img->size;
    m->spec.image = img->id;
    m->im.spec = &m->spec;
    /* the config's User: "uid", "name", "uid:gid", "name:group" */
    json_object *cfg = json_tokener_parse(img->config_json), *cc;
    const char *user =
        cfg && json_object_object_get_ex(cfg, "config", &cc) ? jstr(cc, "User") : NULL;
    if (user && *user) {
        char *u = strdup(user), *colon = strchr(u, ':');
        if (colon)
            *colon = '\0';
        char *end = NULL;
        long long v = strtoll(u, &end, 10);
        if (*u && end && *end == '\0') {
            m->uid.value = v;
            m->im.uid = &m->uid;
            free(u);
        } else {
            m->username = u;
        }
    }
    m->im.username = m->username ? m->username : "";
    if (cfg)
        json_object_put(cfg);
}

/* ---- RPCs ----------------------------------------------------------------------------------------- */

int
cri_rpc_ListImages(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                   uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ListImagesRequest *q =
        runtime__v1__list_images_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ListImages: the request does not unpack");
    image_set_t set;
    if (load_images(c, &set, err) < 0) {
        runtime__v1__list_images_request__free_unpacked(q, NULL);
        return -1;
    }
    const char *want =
        q->filter && q->filter->image && q->filter->image->image && *q->filter->image->image
            ? q->filter->image->image
            : NULL;
    char *norm = want ? cri_image_normalize(want) : NULL;
    image_msg_t *ms = calloc(set.n + 1, sizeof(*ms));
    Runtime__V1__Image **mp = calloc(set.n + 1, sizeof(*mp));
    size_t n = 0;
    for (size_t i = 0; i < set.n; i++) {
        if (want && !image_matches(set.v[i], want, norm ? norm : want))
            continue;
        image_msg_fill(set.v[i], &ms[n]);
        mp[n] = &ms[n].im;
        n++;
    }
    Runtime__V1__ListImagesResponse r = RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT;
    r.images = mp;
    r.n_images = n;
    int rc = cri_reply(c, &r.base, resp, resp_len);
    for (size_t i = 0; i < n; i++)
        free(ms[i].username);
    free(ms);
    free(mp);
    free(norm);
    set_free(&set);
    runtime__v1__list_images_request__free_unpacked(q, NULL);
    return rc;
}

int
cri_rpc_ImageStatus(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                    uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ImageStatusRequest *q =
        runtime__v1__image_status_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ImageStatus: the request does not unpack");
    const char *ref = q->image && q->image->image ? q->image->image : "";
    cri_image_t *img = NULL;
    berth_error_t *e = NULL;
    int rc = cri_image_find(c, ref, &img, &e);
    Runtime__V1__ImageStatusResponse r = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
    if (rc == BERTH_ENOTFOUND) { /* CRI: no image and no error */
        c->api->error_free(e);
        runtime__v1__image_status_request__free_unpacked(q, NULL);
        return cri_reply(c, &r.base, resp, resp_len);
    }
    if (rc < 0) {
        *err = e;
        runtime__v1__image_status_request__free_unpacked(q, NULL);
        return rc;
    }
    image_msg_t m;
    image_msg_fill(img, &m);
    r.image = &m.im;
    Runtime__V1__ImageStatusResponse__InfoEntry ie =
        RUNTIME__V1__IMAGE_STATUS_RESPONSE__INFO_ENTRY__INIT;
    Runtime__V1__ImageStatusResponse__InfoEntry *iep = &ie;
    char *info = NULL;
    if (q->verbose) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "chainID", json_object_new_string(img->chain_id));
        json_object_object_add(o, "manifest", json_object_new_string(img->manifest));
        json_object *cfg = json_tokener_parse(img->config_json);
        json_object_object_add(o, "imageSpec", cfg ? cfg : json_object_new_object());
        info = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        ie.key = "info";
        ie.value = info;
        r.info = &iep;
        r.n_info = 1;
    }
    rc = cri_reply(c, &r.base, resp, resp_len);
    free(info);
    free(m.username);
    cri_image_free(img);
    runtime__v1__image_status_request__free_unpacked(q, NULL);
    return rc;
}

/* Images.Create, or Update when the name exists (a re-pull moves a tag). */
static int
image_record_put(cri_t *c, const char *name, const Containerd__Types__Descriptor *target,
                 berth_error_t **err)
{
    Containerd__Services__Images__V1__Image im = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
    Containerd__Services__Images__V1__Image__LabelsEntry l =
        CONTAINERD__SERVICES__IMAGES__V1__IMAGE__LABELS_ENTRY__INIT;
    Containerd__Services__Images__V1__Image__LabelsEntry *lp = &l;
    l.key = MANAGED_LABEL;
    l.value = "managed";
    im.name = (char *)name;
    im.labels = &lp;
    im.n_labels = 1;
    im.target = (Containerd__Types__Descriptor *)target;
    Containerd__Services__Images__V1__CreateImageRequest cr =
        CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
    cr.image = &im;
    berth_error_t *e = NULL;
    int rc = cri_call(c, CRI_SVC_IMAGES, "Create", &cr.base, NULL, NULL, NULL, &e);
    if (rc != BERTH_EEXIST) {
        if (rc < 0)
            *err = e;
        return rc;
    }
    c->api->error_free(e);
    Containerd__Services__Images__V1__UpdateImageRequest ur =
        CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
    ur.image = &im;
    return cri_call(c, CRI_SVC_IMAGES, "Update", &ur.base, NULL, NULL, NULL, err);
}

static char *
basic_auth(const char *user, const char *pass)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *plain = NULL;
    if (asprintf(&plain, "%s:%s", user, pass) < 0)
        return NULL;
    size_t n = strlen(plain);
    char *out = malloc(4 * ((n + 2) / 3) + 8), *o = out;
    strcpy(o, "Basic "), o += 6;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)plain[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)plain[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)plain[i + 2];
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    free(plain);
    return out;
}

/* The request's credentials as an Authorization header the resolver sends (Basic or a registry
 * token); NULL: anonymous. An identity token needs the token exchange: not supported yet. */
static char *
auth_header(const Runtime__V1__AuthConfig *a)
{
    if (a == NULL)
        return NULL;
    char *h = NULL;
    if (a->registry_token && *a->registry_token) {
        if (asprintf(&h, "Bearer %s", a->registry_token) < 0)
            return NULL;
        return h;
    }
    if (a->auth && *a->auth) {
        if (asprintf(&h, "Basic %s", a->auth) < 0)
            return NULL;
        return h;
    }
    if (a->username && *a->username)
        return basic_auth(a->username, a->password ? a->password : "");
    return NULL;
}

static int
pull(cri_t *c, const char *ref, const Runtime__V1__AuthConfig *auth, berth_error_t **err)
{
    Containerd__Types__Transfer__RegistryResolver res =
        CONTAINERD__TYPES__TRANSFER__REGISTRY_RESOLVER__INIT;
    Containerd__Types__Transfer__RegistryResolver__HeadersEntry he =
        CONTAINERD__TYPES__TRANSFER__REGISTRY_RESOLVER__HEADERS_ENTRY__INIT;
    Containerd__Types__Transfer__RegistryResolver__HeadersEntry *hep = &he;
    char *hdr = auth_header(auth);
    if (hdr) {
        he.key = "Authorization";
        he.value = hdr;
        res.headers = &hep;
        res.n_headers = 1;
    }
    Containerd__Types__Transfer__OCIRegistry src = CONTAINERD__TYPES__TRANSFER__OCIREGISTRY__INIT;
    src.reference = (char *)ref;
    src.resolver = &res;
    Containerd__Types__Platform plat = CONTAINERD__TYPES__PLATFORM__INIT;
    plat.os = "linux";
    plat.architecture = HOST_ARCH;
    Containerd__Types__Platform *platp = &plat;
    Containerd__Types__Transfer__UnpackConfiguration up =
        CONTAINERD__TYPES__TRANSFER__UNPACK_CONFIGURATION__INIT;
    up.platform = &plat;
    up.snapshotter = c->cfg.snapshotter;
    Containerd__Types__Transfer__UnpackConfiguration *upp = &up;
    Containerd__Types__Transfer__ImageStore dst = CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__INIT;
    dst.name = (char *)ref;
    dst.platforms = &platp;
    dst.n_platforms = 1;
    dst.unpacks = &upp;
    dst.n_unpacks = 1;
    Containerd__Types__Transfer__ImageStore__LabelsEntry l =
        CONTAINERD__TYPES__TRANSFER__IMAGE_STORE__LABELS_ENTRY__INIT;
    Containerd__Types__Transfer__ImageStore__LabelsEntry *lp = &l;
    l.key = MANAGED_LABEL;
    l.value = "managed";
    dst.labels = &lp;
    dst.n_labels = 1;
    size_t sl = containerd__types__transfer__ociregistry__get_packed_size(&src);
    size_t dl = containerd__types__transfer__image_store__get_packed_size(&dst);
    uint8_t *sb = malloc(sl + 1), *db = malloc(dl + 1);
    containerd__types__transfer__ociregistry__pack(&src, sb);
    containerd__types__transfer__image_store__pack(&dst, db);
    Google__Protobuf__Any sa = GOOGLE__PROTOBUF__ANY__INIT, da = GOOGLE__PROTOBUF__ANY__INIT;
    sa.type_url = "containerd.types.transfer.OCIRegistry";
    sa.value = (ProtobufCBinaryData){sl, sb};
    da.type_url = "containerd.types.transfer.ImageStore";
    da.value = (ProtobufCBinaryData){dl, db};
    Containerd__Services__Transfer__V1__TransferRequest tr =
        CONTAINERD__SERVICES__TRANSFER__V1__TRANSFER_REQUEST__INIT;
    tr.source = &sa;
    tr.destination = &da;
    int rc = cri_call(c, CRI_SVC_TRANSFER, "Transfer", &tr.base, NULL, NULL, NULL, err);
    free(sb);
    free(db);
    free(hdr);
    return rc;
}

int
cri_image_pull(cri_t *c, const char *ref, const Runtime__V1__AuthConfig *auth, char **image_id,
               berth_error_t **err)
{
    *image_id = NULL;
    char *norm = ref && *ref ? cri_image_normalize(ref) : NULL;
    int rc;
    if (norm == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "PullImage: an image name is required");
    if ((rc = libcrypto_load(c->api, err)) < 0) { /* chain ids */
        free(norm);
        return rc;
    }
    char why[600];
    if (cri_validate_image_ref(ref, why, sizeof(why)) < 0) {
        free(norm);
        return c->api->error_make(err, BERTH_EINVAL, "PullImage: %s", why);
    }
    if ((rc = pull(c, norm, auth, err)) < 0) {
        c->api->error_wrap(err, "pull %s", norm);
        free(norm);
        return rc;
    }
    /* the records of the id and the repo digest, as containerd's CRI keeps them */
    Containerd__Services__Images__V1__GetImageRequest g =
        CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
    g.name = norm;
    ProtobufCMessage *out = NULL;
    if ((rc = cri_call(c, CRI_SVC_IMAGES, "Get", &g.base,
                       &containerd__services__images__v1__get_image_response__descriptor, &out,
                       NULL, err)) < 0) {
        free(norm);
        return rc;
    }
    Containerd__Services__Images__V1__Image *im =
        ((Containerd__Services__Images__V1__GetImageResponse *)out)->image;
    cri_image_t *img =
        im && im->target ? resolve(c, im->target->digest, im->target->media_type, im->target->size)
                         : NULL;
    if (img == NULL) {
        protobuf_c_message_free_unpacked(out, NULL);
        rc = c->api->error_make(err, BERTH_EINTERNAL, "pull %s: the image's config is not stored",
                                norm);
        free(norm);
        return rc;
    }
    if ((rc = image_record_put(c, norm, im->target, err)) == 0 &&
        (rc = image_record_put(c, img->id, im->target, err)) == 0 && !strchr(norm, '@')) {
        char *repo = strdup(norm), *colon = strrchr(repo, ':');
        if (colon && !strchr(colon, '/'))
            *colon = '\0';
        char *dref = NULL;
        if (asprintf(&dref, "%s@%s", repo, im->target->digest) > 0) {
            rc = image_record_put(c, dref, im->target, err);
            free(dref);
        }
        free(repo);
    }
    protobuf_c_message_free_unpacked(out, NULL);
    if (rc == 0) {
        c->api->log(c->log, BERTH_LOG_INFO, "cri: pulled %s: %s", norm, img->id);
        *image_id = strdup(img->id);
    }
    cri_image_free(img);
    free(norm);
    return rc;
}

int
cri_rpc_PullImage(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                  uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__PullImageRequest *q = runtime__v1__pull_image_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "PullImage: the request does not unpack");
    char *id = NULL;
    int rc =
        cri_image_pull(c, q->image && q->image->image ? q->image->image : "", q->auth, &id, err);
    if (rc == 0) {
        Runtime__V1__PullImageResponse r = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
        r.image_ref = id;
        rc = cri_reply(c, &r.base, resp, resp_len);
    }
    free(id);
    runtime__v1__pull_image_request__free_unpacked(q, NULL);
    return rc;
}

int
cri_rpc_RemoveImage(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                    uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__RemoveImageRequest *q =
        runtime__v1__remove_image_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "RemoveImage: the request does not unpack");
    const char *ref = q->image && q->image->image ? q->image->image : "";
    cri_image_t *img = NULL;
    berth_error_t *e = NULL;
    int rc = cri_image_find(c, ref, &img, &e);
    if (rc == BERTH_ENOTFOUND) { /* CRI: removing what is not there succeeds */
        c->api->error_free(e);
        rc = 0;
    } else if (rc < 0) {
        *err = e;
    } else {
        /* every name of it: tags, digests, then the id (the record that names it last) */
        for (int pass = 0; rc == 0 && pass < 3; pass++) {
            char *idv[] = {img->id, NULL};
            char **names = pass == 0 ? img->tags : pass == 1 ? img->digests : idv;
            for (size_t i = 0; rc == 0 && names[i]; i++) {
                Containerd__Services__Images__V1__DeleteImageRequest d =
                    CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
                d.name = names[i];
                rc = cri_call(c, CRI_SVC_IMAGES, "Delete", &d.base, NULL, NULL, NULL, &e);
                if (rc == BERTH_ENOTFOUND) {
                    c->api->error_free(e), e = NULL;
                    rc = 0;
                } else if (rc < 0) {
                    *err = e;
                }
            }
        }
        cri_image_free(img);
    }
    runtime__v1__remove_image_request__free_unpacked(q, NULL);
    if (rc < 0)
        return rc;
    Runtime__V1__RemoveImageResponse r = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
    return cri_reply(c, &r.base, resp, resp_len);
}

static __thread uint64_t fs_bytes, fs_inodes;

static int
fs_walk(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path, (void)flag, (void)ftw;
    fs_bytes += (uint64_t)st->st_blocks * 512;
    fs_inodes++;
    return 0;
}

int
cri_rpc_ImageFsInfo(void *user, const char *namespace_, const uint8_t *req, size_t req_len,
                    uint8_t **resp, size_t *resp_len, berth_error_t **err)
{
    cri_t *c = user;
    (void)namespace_;
    Runtime__V1__ImageFsInfoRequest *q =
        runtime__v1__image_fs_info_request__unpack(NULL, req_len, req);
    if (q == NULL)
        return c->api->error_make(err, BERTH_EINVAL, "ImageFsInfo: the request does not unpack");
    runtime__v1__image_fs_info_request__free_unpacked(q, NULL);
    char root[PATH_MAX], dir[PATH_MAX + 128];
    snprintf(root, sizeof(root), "%s", c->cfg.root);
    snprintf(dir, sizeof(dir), "%s/io.containerd.snapshotter.v1.%s", dirname(root),
             c->cfg.snapshotter);
    fs_bytes = fs_inodes = 0;
    nftw(dir, fs_walk, 32, FTW_PHYS | FTW_MOUNT);
    Runtime__V1__FilesystemIdentifier id = RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT;
    id.mountpoint = dir;
    Runtime__V1__UInt64Value used = RUNTIME__V1__UINT64_VALUE__INIT,
                             inodes = RUNTIME__V1__UINT64_VALUE__INIT;
    used.value = fs_bytes;
    inodes.value = fs_inodes;
    Runtime__V1__FilesystemUsage u = RUNTIME__V1__FILESYSTEM_USAGE__INIT;
    u.timestamp = cri_now_ns();
    u.fs_id = &id;
    u.used_bytes = &used;
    u.inodes_used = &inodes;
    Runtime__V1__FilesystemUsage *up = &u;
    Runtime__V1__ImageFsInfoResponse r = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
    r.image_filesystems = &up;
    r.n_image_filesystems = 1;
    r.container_filesystems = &up;
    r.n_container_filesystems = 1;
    return cri_reply(c, &r.base, resp, resp_len);
}
