/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image names as containerd's transfer ImageStore gives them (core/transfer/image/imagestore.go), and the
 * ImageStore -> ImageStore transfer (core/transfer/local/tag.go): the source image's target stored under
 * the destination's names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transfer.h"
#include "types/transfer/imagestore.pb-c.h"

#define REF_SOURCE "io.containerd.import.ref-source"
#define ANN_IMAGE_NAME "io.containerd.image.name"
#define ANN_REF_NAME "org.opencontainers.image.ref.name"
#define NAME_MAX_LEN 4096

typedef Containerd__Types__Transfer__ImageStore store_pb_t;
typedef Containerd__Types__Transfer__ImageReference ref_pb_t;

/* archive.isImagePrefix: s is prefix, or prefix followed by '/', ':' or '@' */
static int
is_image_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return 0;
    return s[n] == '\0' || s[n] == '/' || s[n] == ':' || s[n] == '@';
}

/* archive.refTranslator: a full reference stays (when check_prefix, only under the prefix); a bare one
 * ("latest") becomes prefix:ref. "" when it does not qualify. */
static void
translate(const char *prefix, int check_prefix, const char *ref, char *out, size_t len)
{
    out[0] = '\0';
    if (prefix[0] == '\0')
        return;
    if (strpbrk(ref, "/:@")) {
        if (!check_prefix || is_image_prefix(ref, prefix))
            snprintf(out, len, "%s", ref);
        return;
    }
    snprintf(out, len, "%s:%s", prefix, ref);
}

/* imagestore.go's imageName: the containerd name annotation when the translation keeps it, else the OCI
 * ref name translated. */
static void
annotated_name(const berth_core_api_t *api, const berth_kv_t *ann, const ref_pb_t *r, char *out,
               size_t len)
{
    out[0] = '\0';
    const char *name = ann ? api->kv_get(ann, ANN_IMAGE_NAME) : NULL;
    char t[NAME_MAX_LEN];
    if (name && name[0]) {
        translate(r->name, !r->allow_overwrite, name, t, sizeof(t));
        if (strcmp(t, name) == 0)
            snprintf(out, len, "%s", name);
        return;
    }
    name = ann ? api->kv_get(ann, ANN_REF_NAME) : NULL;
    if (name && name[0])
        translate(r->name, !r->allow_overwrite, name, out, len);
}

typedef struct names_s {
    char (*v)[NAME_MAX_LEN];
    int *extra; /* labelled as an extra reference */
    size_t n;
} names_t;

static void
names_add(names_t *ns, const char *name, int extra)
{
    ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
    ns->extra = realloc(ns->extra, (ns->n + 1) * sizeof(*ns->extra));
    snprintf(ns->v[ns->n], NAME_MAX_LEN, "%s", name);
    ns->extra[ns->n++] = extra;
}

static int
collect(const berth_core_api_t *api, const store_pb_t *is, const berth_descriptor_t *desc,
        names_t *out, berth_error_t **err)
{
    const char *src = desc->annotations ? api->kv_get(desc->annotations, REF_SOURCE) : NULL;
    char name[NAME_MAX_LEN];
    if (src) {
        if (strcmp(src, "annotation") != 0)
            return api->error_make(err, BERTH_EINVAL, "ref source not supported: invalid argument");
        for (size_t i = 0; i < is->n_extra_references; i++) {
            const ref_pb_t *r = is->extra_references[i];
            if (!r->is_prefix)
                continue;
            annotated_name(api, desc->annotations, r, name, sizeof(name));
            char dname[NAME_MAX_LEN];
            snprintf(dname, sizeof(dname), "%s@%s", r->name, desc->digest);
            if (name[0] == '\0') {
                if (r->add_digest)
                    names_add(out, dname, 1);
                continue;
            }
            names_add(out, name, 1);
            if (r->add_digest && !r->skip_named_digest)
                names_add(out, dname, 1);
        }
        return 0;
    }
    if (is->name[0])
        names_add(out, is->name, 0);
    for (size_t i = 0; i < is->n_extra_references; i++) {
        const ref_pb_t *r = is->extra_references[i];
        if (r->is_prefix && !r->add_digest)
            continue;
        if (r->add_digest)
            snprintf(name, sizeof(name), "%s@%s", r->name, desc->digest);
        else
            snprintf(name, sizeof(name), "%s", r->name);
        names_add(out, name, 1);
    }
    return 0;
}

/* The labels of an image: the store's, and for an extra reference of a named store the back reference
 * containerd adds (gc.bref.image, and a gc.expire of now, exactly as containerd writes them). */
static berth_kv_t *
labels_of(const berth_core_api_t *api, const store_pb_t *is, int extra)
{
    berth_kv_t *kv = api->kv_new();
    for (size_t i = 0; i < is->n_labels; i++)
        api->kv_set(kv, is->labels[i]->key, is->labels[i]->value);
    if (extra && is->name[0]) {
        char now[64];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
        api->kv_set(kv, "containerd.io/gc.bref.image", is->name);
        api->kv_set(kv, "containerd.io/gc.expire", now);
    }
    return kv;
}

int
imagestore_store(xjob_t *j, const store_pb_t *is, const berth_descriptor_t *desc,
                 berth_error_t **err)
{
    const berth_core_api_t *api = j->x->api;
    names_t names = {0};
    int rc = collect(api, is, desc, &names, err);
    if (rc == 0 && names.n == 0)
        rc = api->error_make(err, BERTH_ENOTFOUND, "no image name found: not found");
    /* the stored target carries no ref-source annotation (containerd deletes it before storing) */
    berth_descriptor_t target = *desc;
    target.annotations = NULL;
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        berth_kv_t *labels = labels_of(api, is, names.extra[i]);
        rc = store_image_put(j, names.v[i], &target, labels, err);
        api->kv_free(labels);
        if (rc == 0)
            job_progress(j, "saved", names.v[i], NULL, 0, 0, 0, &target);
    }
    free(names.v);
    free(names.extra);
    return rc;
}

int
xfer_tag(xjob_t *j, const struct Containerd__Types__Transfer__ImageStore *src,
         const struct Containerd__Types__Transfer__ImageStore *dst, berth_error_t **err)
{
    berth_descriptor_t target;
    if (store_image_get(j, src->name, &target, err) < 0)
        return (*err)->code;
    return imagestore_store(j, dst, &target, err);
}
