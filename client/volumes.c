/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth.services.volumes.v1.Volumes (berthd only): create, get, list, remove, prune.
 */
#include <string.h>

#include "store_int.h"
#include "berth/services/volumes/v1/volumes.pb-c.h"

#define VOLUMES "/berth.services.volumes.v1.Volumes/"

typedef Berth__Services__Volumes__V1__Volume volume_pb_t;

static void
volume_clear(berth_volume_t *v)
{
    free(v->name);
    free(v->driver);
    free(v->mountpoint);
    berth_kv_free(v->labels, v->n_labels);
    berth_kv_free(v->options, v->n_options);
    bc_strv_free(v->containers, v->n_containers);
    memset(v, 0, sizeof(*v));
}

BC_EXPORT void
berth_volume_free(berth_volume_t *v)
{
    if (v)
        volume_clear(v);
    free(v);
}

BC_EXPORT void
berth_volumes_free(berth_volume_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        volume_clear(&v[i]);
    free(v);
}

static int
volume_from_pb(const volume_pb_t *pb, berth_volume_t *out)
{
    memset(out, 0, sizeof(*out));
    out->name = bc_strdup(pb->name);
    out->driver = bc_strdup(pb->driver);
    out->mountpoint = bc_strdup(pb->mountpoint);
    out->created_at_ns = bc_ts_ns(pb->created_at);
    int rc = out->name && out->driver && out->mountpoint ? 0 : BERTH_ENOMEM;
    if (rc == 0)
        rc = bc_kv_from_map((void **)pb->labels, pb->n_labels, &out->labels, &out->n_labels);
    if (rc == 0)
        rc = bc_kv_from_map((void **)pb->options, pb->n_options, &out->options, &out->n_options);
    if (rc == 0 && (rc = bc_strv_dup(pb->containers, pb->n_containers, &out->containers)) == 0)
        out->n_containers = pb->n_containers;
    if (rc < 0) {
        volume_clear(out);
        return BERTH_ENOMEM;
    }
    return 0;
}

/* A new berth_volume_t of the response's volume. */
static int
volume_out(const volume_pb_t *pb, const char *name, berth_volume_t **out, berth_error_t **err)
{
    if (pb == NULL)
        return bc_error(err, BERTH_ENOTFOUND, "volume \"%s\": not found", name);
    berth_volume_t *v = calloc(1, sizeof(*v));
    if (v == NULL || volume_from_pb(pb, v) < 0) {
        free(v);
        return bc_error(err, BERTH_ENOMEM, "volume \"%s\": out of memory", name);
    }
    *out = v;
    return 0;
}

BC_EXPORT int
berth_volume_create(berth_client_t *c, const berth_call_t *call, const char *name,
                    const berth_kv_t *options, size_t n_options, const berth_kv_t *labels,
                    size_t n_labels, berth_volume_t **out, int *created, berth_error_t **err)
{
    if (out)
        *out = NULL;
    Berth__Services__Volumes__V1__CreateVolumeRequest req =
        BERTH__SERVICES__VOLUMES__V1__CREATE_VOLUME_REQUEST__INIT;
    Berth__Services__Volumes__V1__CreateVolumeRequest__OptionsEntry *oe = NULL, **op = NULL;
    Berth__Services__Volumes__V1__CreateVolumeRequest__LabelsEntry *le = NULL, **lp = NULL;
    int rc =
        BC_MAP_FROM_KV(Berth__Services__Volumes__V1__CreateVolumeRequest__OptionsEntry,
                       BERTH__SERVICES__VOLUMES__V1__CREATE_VOLUME_REQUEST__OPTIONS_ENTRY__INIT,
                       options, n_options, oe, op);
    if (rc == 0)
        rc = BC_MAP_FROM_KV(Berth__Services__Volumes__V1__CreateVolumeRequest__LabelsEntry,
                            BERTH__SERVICES__VOLUMES__V1__CREATE_VOLUME_REQUEST__LABELS_ENTRY__INIT,
                            labels, n_labels, le, lp);
    Berth__Services__Volumes__V1__CreateVolumeResponse *resp = NULL;
    if (rc < 0) {
        rc = bc_error(err, BERTH_ENOMEM, "out of memory");
    } else {
        req.name = (char *)(name ? name : ""); /* "": the server picks a random name */
        req.options = op;
        req.n_options = n_options;
        req.labels = lp;
        req.n_labels = n_labels;
        rc = bc_unary(c, call, VOLUMES "Create", &req.base,
                      &berth__services__volumes__v1__create_volume_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    }
    free(oe);
    free(op);
    free(le);
    free(lp);
    if (rc < 0)
        return rc;
    if (created)
        *created = resp->created;
    if (out)
        rc = volume_out(resp->volume, name ? name : "", out, err);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_volume_get(berth_client_t *c, const berth_call_t *call, const char *name,
                 berth_volume_t **out, berth_error_t **err)
{
    if (name == NULL || out == NULL)
        return bc_error(err, BERTH_EINVAL, "volume get: a name and an out pointer are required");
    *out = NULL;
    Berth__Services__Volumes__V1__GetVolumeRequest req =
        BERTH__SERVICES__VOLUMES__V1__GET_VOLUME_REQUEST__INIT;
    req.name = (char *)name;
    Berth__Services__Volumes__V1__GetVolumeResponse *resp = NULL;
    int rc = bc_unary(c, call, VOLUMES "Get", &req.base,
                      &berth__services__volumes__v1__get_volume_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    rc = volume_out(resp->volume, name, out, err);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}

BC_EXPORT int
berth_volume_list(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                  size_t n_filters, berth_volume_t **out, size_t *n, berth_error_t **err)
{
    if (out == NULL || n == NULL)
        return bc_error(err, BERTH_EINVAL, "volume list: out pointers are required");
    *out = NULL;
    *n = 0;
    Berth__Services__Volumes__V1__ListVolumesRequest req =
        BERTH__SERVICES__VOLUMES__V1__LIST_VOLUMES_REQUEST__INIT;
    req.filters = (char **)filters;
    req.n_filters = n_filters;
    Berth__Services__Volumes__V1__ListVolumesResponse *resp = NULL;
    int rc = bc_unary(c, call, VOLUMES "List", &req.base,
                      &berth__services__volumes__v1__list_volumes_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    berth_volume_t *v = resp->n_volumes ? calloc(resp->n_volumes, sizeof(*v)) : NULL;
    size_t k = 0;
    if (resp->n_volumes && v == NULL)
        rc = BERTH_ENOMEM;
    for (; rc == 0 && k < resp->n_volumes; k++)
        rc = volume_from_pb(resp->volumes[k], &v[k]);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (rc < 0) {
        berth_volumes_free(v, k);
        return bc_error(err, BERTH_ENOMEM, "volume list: out of memory");
    }
    *out = v;
    *n = k;
    return 0;
}

BC_EXPORT int
berth_volume_remove(berth_client_t *c, const berth_call_t *call, const char *name, int force,
                    berth_error_t **err)
{
    if (name == NULL || !name[0])
        return bc_error(err, BERTH_EINVAL, "volume remove: a name is required");
    Berth__Services__Volumes__V1__RemoveVolumeRequest req =
        BERTH__SERVICES__VOLUMES__V1__REMOVE_VOLUME_REQUEST__INIT;
    req.name = (char *)name;
    req.force = force != 0;
    return bc_unary(c, call, VOLUMES "Remove", &req.base, NULL, NULL, err);
}

BC_EXPORT int
berth_volume_prune(berth_client_t *c, const berth_call_t *call, const char *const *filters,
                   size_t n_filters, char ***removed, size_t *n_removed, uint64_t *reclaimed,
                   berth_error_t **err)
{
    if (removed)
        *removed = NULL;
    if (n_removed)
        *n_removed = 0;
    Berth__Services__Volumes__V1__PruneVolumesRequest req =
        BERTH__SERVICES__VOLUMES__V1__PRUNE_VOLUMES_REQUEST__INIT;
    req.filters = (char **)filters;
    req.n_filters = n_filters;
    Berth__Services__Volumes__V1__PruneVolumesResponse *resp = NULL;
    int rc = bc_unary(c, call, VOLUMES "Prune", &req.base,
                      &berth__services__volumes__v1__prune_volumes_response__descriptor,
                      (ProtobufCMessage **)&resp, err);
    if (rc < 0)
        return rc;
    if (reclaimed)
        *reclaimed = resp->space_reclaimed;
    if (removed && n_removed) {
        if (bc_strv_dup(resp->removed, resp->n_removed, removed) < 0)
            rc = bc_error(err, BERTH_ENOMEM, "volume prune: out of memory");
        else
            *n_removed = resp->n_removed;
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}
