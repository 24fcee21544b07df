/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth.services.volumes.v1.Volumes (io.containerd.grpc.v1.volumes): Create, Get, List (containerd's
 * filters over name, driver, mountpoint, labels.*, options.*, dangling), Remove and Prune over the volume
 * plugin of this module. A volume's containers are computed from the container records on each call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/grpc.h>

#include "filters.h"
#include "rpc.h"
#include "volumes.h"

typedef struct svc {
    const berth_core_api_t *api;
    vol_t *vol;
} svc_t;

static int
bad(svc_t *s, const char *what, berth_error_t **err)
{
    return s->api->error_make(err, BERTH_EINVAL, "request is not a valid %s", what);
}

static int
code_of(berth_error_t **err, int dflt)
{
    return err && *err ? (*err)->code : dflt;
}

/* ---- a volume with its containers ------------------------------------------------------------------ */

/* Packs `wrap` (a response whose field points at rec) after filling rec's containers from refs. */
static void
pack_with_refs(volume_pb_t *rec, const vol_refs_t *refs, const ProtobufCMessage *wrap,
               uint8_t **resp, size_t *len)
{
    char **ids;
    rec->n_containers = vol_refs_of(refs, rec->name, &ids);
    rec->containers = ids;
    pack(wrap, resp, len);
    rec->containers = NULL;
    rec->n_containers = 0;
    free(ids);
}

static int
respond_volume(svc_t *s, const char *ns, const char *name, int create, int created, uint8_t **resp,
               size_t *len, berth_error_t **err)
{
    volume_pb_t *rec = vol_record(s->vol, ns, name, err);
    if (rec == NULL)
        return code_of(err, BERTH_ENOTFOUND);
    vol_refs_t *refs;
    if (vol_refs_load(s->vol, ns, &refs, err) < 0) {
        berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
        return code_of(err, BERTH_EUNKNOWN);
    }
    if (create) {
        Berth__Services__Volumes__V1__CreateVolumeResponse out =
            BERTH__SERVICES__VOLUMES__V1__CREATE_VOLUME_RESPONSE__INIT;
        out.volume = rec;
        out.created = created != 0;
        pack_with_refs(rec, refs, &out.base, resp, len);
    } else {
        Berth__Services__Volumes__V1__GetVolumeResponse out =
            BERTH__SERVICES__VOLUMES__V1__GET_VOLUME_RESPONSE__INIT;
        out.volume = rec;
        pack_with_refs(rec, refs, &out.base, resp, len);
    }
    vol_refs_free(refs);
    berth__services__volumes__v1__volume__free_unpacked(rec, NULL);
    return 0;
}

/* ---- Create, Get, Remove --------------------------------------------------------------------------- */

static berth_kv_t *
map_kv(svc_t *s, Berth__Services__Volumes__V1__CreateVolumeRequest__LabelsEntry **entries, size_t n)
{
    berth_kv_t *kv = s->api->kv_new();
    for (size_t i = 0; i < n; i++)
        s->api->kv_set(kv, entries[i]->key, entries[i]->value);
    return kv;
}

static int
create_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Volumes__V1__CreateVolumeRequest *r =
        berth__services__volumes__v1__create_volume_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "CreateVolumeRequest", err);
    berth_kv_t *labels = map_kv(s, r->labels, r->n_labels);
    /* the options entries have the labels entries' layout (string key, string value) */
    berth_kv_t *opts =
        map_kv(s, (Berth__Services__Volumes__V1__CreateVolumeRequest__LabelsEntry **)r->options,
               r->n_options);
    int created = 0;
    int rc = vol_ops.create(s->vol, ns, r->name, labels, opts, &created, err);
    if (rc == 0)
        rc = respond_volume(s, ns, r->name, 1, created, resp, resp_len, err);
    s->api->kv_free(labels);
    s->api->kv_free(opts);
    berth__services__volumes__v1__create_volume_request__free_unpacked(r, NULL);
    return rc;
}

static int
get_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
         size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Volumes__V1__GetVolumeRequest *r =
        berth__services__volumes__v1__get_volume_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "GetVolumeRequest", err);
    int rc = respond_volume(s, ns, r->name, 0, 0, resp, resp_len, err);
    berth__services__volumes__v1__get_volume_request__free_unpacked(r, NULL);
    return rc;
}

static int
remove_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
            size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Volumes__V1__RemoveVolumeRequest *r =
        berth__services__volumes__v1__remove_volume_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "RemoveVolumeRequest", err);
    int rc = vol_ops.remove(s->vol, ns, r->name, r->force, err);
    berth__services__volumes__v1__remove_volume_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- List and Prune: filters over records and their references ------------------------------------ */

typedef struct candidate {
    volume_pb_t *rec;
    size_t n_refs;
} candidate_t;

static const char *
kv_field(void *entries, size_t n, const char *key)
{
    Berth__Services__Volumes__V1__Volume__LabelsEntry **e = entries;
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i]->key, key) == 0)
            return e[i]->value;
    return NULL;
}

static const char *
volume_field(void *object, const char *const *path, int npath)
{
    candidate_t *c = object;
    volume_pb_t *v = c->rec;
    if (npath == 1 && strcmp(path[0], "name") == 0)
        return v->name;
    if (npath == 1 && strcmp(path[0], "driver") == 0)
        return v->driver;
    if (npath == 1 && strcmp(path[0], "mountpoint") == 0)
        return v->mountpoint;
    if (npath == 1 && strcmp(path[0], "dangling") == 0)
        return c->n_refs == 0 ? "true" : "false";
    if (npath == 2 && strcmp(path[0], "labels") == 0)
        return kv_field(v->labels, v->n_labels, path[1]);
    if (npath == 2 && strcmp(path[0], "options") == 0)
        return kv_field(v->options, v->n_options, path[1]);
    return NULL;
}

typedef struct selection {
    filters_t *filters;
    vol_refs_t *refs;
    volume_pb_t **items;
    size_t n;
} selection_t;

static int
select_one(void *user, volume_pb_t *rec)
{
    selection_t *sel = user;
    char **ids;
    candidate_t c = {rec, vol_refs_of(sel->refs, rec->name, &ids)};
    if (filters_match(sel->filters, volume_field, &c)) {
        /* kept past the callback: a copy through pack/unpack */
        uint8_t *data;
        size_t len;
        pack(&rec->base, &data, &len);
        sel->items = realloc(sel->items, (sel->n + 1) * sizeof(*sel->items));
        sel->items[sel->n++] = berth__services__volumes__v1__volume__unpack(NULL, len, data);
        free(data);
    }
    free(ids);
    return 0;
}

static int
select_volumes(svc_t *s, const char *ns, char **filters, size_t n_filters, selection_t *sel,
               berth_error_t **err)
{
    char msg[512];
    memset(sel, 0, sizeof(*sel));
    if (filters_parse_n((const char *const *)filters, n_filters, &sel->filters, msg, sizeof(msg)) <
        0)
        return s->api->error_make(err, BERTH_EINVAL, "%s", msg);
    if (vol_refs_load(s->vol, ns, &sel->refs, err) < 0)
        return code_of(err, BERTH_EUNKNOWN);
    return vol_record_list(s->vol, ns, select_one, sel, err);
}

static void
selection_free(selection_t *sel)
{
    for (size_t i = 0; i < sel->n; i++)
        berth__services__volumes__v1__volume__free_unpacked(sel->items[i], NULL);
    free(sel->items);
    vol_refs_free(sel->refs);
    filters_free(sel->filters);
}

static int
list_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
          size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Volumes__V1__ListVolumesRequest *r =
        berth__services__volumes__v1__list_volumes_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "ListVolumesRequest", err);
    selection_t sel;
    int rc = select_volumes(s, ns, r->filters, r->n_filters, &sel, err);
    if (rc == 0) {
        char ***ids = calloc(sel.n + 1, sizeof(*ids));
        for (size_t i = 0; i < sel.n; i++) {
            sel.items[i]->n_containers = vol_refs_of(sel.refs, sel.items[i]->name, &ids[i]);
            sel.items[i]->containers = ids[i];
        }
        Berth__Services__Volumes__V1__ListVolumesResponse out =
            BERTH__SERVICES__VOLUMES__V1__LIST_VOLUMES_RESPONSE__INIT;
        out.volumes = sel.items;
        out.n_volumes = sel.n;
        pack(&out.base, resp, resp_len);
        for (size_t i = 0; i < sel.n; i++) {
            sel.items[i]->containers = NULL; /* borrowed from refs */
            sel.items[i]->n_containers = 0;
            free(ids[i]);
        }
        free(ids);
    }
    selection_free(&sel);
    berth__services__volumes__v1__list_volumes_request__free_unpacked(r, NULL);
    return rc;
}

static int
prune_call(void *user, const char *ns, const uint8_t *req, size_t len, uint8_t **resp,
           size_t *resp_len, berth_error_t **err)
{
    svc_t *s = user;
    Berth__Services__Volumes__V1__PruneVolumesRequest *r =
        berth__services__volumes__v1__prune_volumes_request__unpack(NULL, len, req);
    if (r == NULL)
        return bad(s, "PruneVolumesRequest", err);
    selection_t sel;
    int rc = select_volumes(s, ns, r->filters, r->n_filters, &sel, err);
    Berth__Services__Volumes__V1__PruneVolumesResponse out =
        BERTH__SERVICES__VOLUMES__V1__PRUNE_VOLUMES_RESPONSE__INIT;
    char **removed = calloc(sel.n + 1, sizeof(*removed));
    for (size_t i = 0; rc == 0 && i < sel.n; i++) {
        char **ids;
        size_t n = vol_refs_of(sel.refs, sel.items[i]->name, &ids);
        free(ids);
        if (n > 0)
            continue;
        uint64_t freed = 0;
        berth_error_t *e = NULL;
        /* not forced: a container that came since the listing keeps its volume */
        if (vol_remove_measured(s->vol, ns, sel.items[i]->name, 0, &freed, &e) == 0) {
            removed[out.n_removed++] = sel.items[i]->name;
            out.space_reclaimed += freed;
        } else {
            s->api->error_free(e);
        }
    }
    if (rc == 0) {
        out.removed = removed;
        pack(&out.base, resp, resp_len);
    }
    free(removed);
    selection_free(&sel);
    berth__services__volumes__v1__prune_volumes_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- the plugin ------------------------------------------------------------------------------------ */

static const berth_grpc_method_t volumes_methods[] = {
    NS_UNARY("Create", create_call), NS_UNARY("Get", get_call),     NS_UNARY("List", list_call),
    NS_UNARY("Remove", remove_call), NS_UNARY("Prune", prune_call),
};

const berth_grpc_service_v1_t volumes_service = {
    .struct_size = sizeof(berth_grpc_service_v1_t),
    .name = "berth.services.volumes.v1.Volumes",
    .methods = volumes_methods,
    .n_methods = sizeof(volumes_methods) / sizeof(volumes_methods[0]),
};

int
volumes_service_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    berth_instance_t vol;
    if (ic->api->get(ic, BERTH_VOLUME_TYPE, VOL_DRIVER, &vol, err) < 0)
        return code_of(err, BERTH_EUNKNOWN);
    svc_t *s = calloc(1, sizeof(*s));
    s->api = ic->api;
    s->vol = vol.instance; /* this module's own plugin: its inside is known here */
    *instance = s;
    return 0;
}
