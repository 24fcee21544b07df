/* SPDX-License-Identifier: Apache-2.0 */
/* Namespaces, plugins (Introspection), the server's identity, and berthd's modules. */
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "services/introspection/v1/introspection.pb-c.h"
#include "services/namespaces/v1/namespace.pb-c.h"

#include "internal.h"

/* ---- namespaces ------------------------------------------------------------------------------------- */

BC_EXPORT int
berth_namespace_create(berth_client_t *c, const berth_call_t *call, const char *name,
                       const berth_kv_t *labels, size_t n_labels, berth_error_t **err)
{
    Containerd__Services__Namespaces__V1__Namespace ns =
        CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
    ns.name = (char *)name;
    ns.n_labels = n_labels;
    ns.labels = (Containerd__Services__Namespaces__V1__Namespace__LabelsEntry **)bc_map_from_kv(
        &containerd__services__namespaces__v1__namespace__labels_entry__descriptor, labels,
        n_labels);
    if (n_labels && ns.labels == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    Containerd__Services__Namespaces__V1__CreateNamespaceRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__CREATE_NAMESPACE_REQUEST__INIT;
    req.namespace_ = &ns;
    int r = bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/Create", &req.base,
                     NULL, NULL, err);
    free(ns.labels);
    return r;
}

BC_EXPORT int
berth_namespace_list(berth_client_t *c, const berth_call_t *call, char ***names, size_t *n,
                     berth_error_t **err)
{
    *names = NULL;
    *n = 0;
    Containerd__Services__Namespaces__V1__ListNamespacesRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__LIST_NAMESPACES_REQUEST__INIT;
    ProtobufCMessage *resp;
    int r = bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/List", &req.base,
                     &containerd__services__namespaces__v1__list_namespaces_response__descriptor,
                     &resp, err);
    if (r < 0)
        return r;
    Containerd__Services__Namespaces__V1__ListNamespacesResponse *l = (void *)resp;
    char **out = calloc(l->n_namespaces + 1, sizeof(char *));
    for (size_t i = 0; out && i < l->n_namespaces; i++)
        if ((out[i] = bc_strdup(l->namespaces[i]->name)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            out = NULL;
        }
    size_t count = l->n_namespaces;
    protobuf_c_message_free_unpacked(resp, NULL);
    if (out == NULL)
        return bc_error(err, BERTH_ENOMEM, "out of memory");
    *names = out;
    *n = count;
    return 0;
}

BC_EXPORT int
berth_namespace_delete(berth_client_t *c, const berth_call_t *call, const char *name,
                       berth_error_t **err)
{
    Containerd__Services__Namespaces__V1__DeleteNamespaceRequest req =
        CONTAINERD__SERVICES__NAMESPACES__V1__DELETE_NAMESPACE_REQUEST__INIT;
    req.name = (char *)name;
    return bc_unary(c, call, "/containerd.services.namespaces.v1.Namespaces/Delete", &req.base,
                    NULL, NULL, err);
}
