/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a CreateContainer cut short by a crash leaves, removed at start (after the store is loaded).
 * CreateContainer takes a lease "cri-create-<id>", prepares the snapshot <id> under it and makes the
 * container's files in <state>/containers/<id>, then writes the record and drops the lease. A crash
 * before the record leaves the lease holding a snapshot nobody names: the lease kept it from any garbage
 * collection for ever. A crash after the record but before the lease went leaves only the lease.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "container.h"
#include "fsutil.h"

#define CREATE_LEASE_PREFIX "cri-create-"

static int
container_known(cri_t *c, const char *id)
{
    cri_container_t *k = NULL;
    berth_error_t *e = NULL;
    int hit = cri_container_find(c, id, &k, &e) == 0 && strcmp(k->id, id) == 0;
    c->api->error_free(e);
    cri_container_unref(k);
    return hit;
}

/* <state>/containers/<id>: its rootfs mount point first (CreateContainer mounts the snapshot there a
 * moment, read-only, to copy /etc/passwd and /etc/group), so nothing below a mount is touched. */
static void
remove_ctr_dir(cri_t *c, const char *id)
{
    char dir[PATH_MAX], root[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/containers/%s", c->cfg.state, id);
    snprintf(root, sizeof(root), "%s/rootfs", dir);
    while (umount2(root, MNT_DETACH) == 0)
        ;
    fs_remove_tree(dir);
}

static void
drop(cri_t *c, const char *svc_what, const char *id, int rc, berth_error_t *e)
{
    if (rc < 0 && rc != BERTH_ENOTFOUND)
        c->api->log(c->log, BERTH_LOG_WARN, "cri: %s of container \"%s\": %s", svc_what, id,
                    e && e->message ? e->message : "?");
    c->api->error_free(e);
}

void
cri_gc_create_leftovers(cri_t *c)
{
    Containerd__Services__Leases__V1__ListRequest req =
        CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    berth_error_t *e = NULL;
    if (cri_call(c, CRI_SVC_LEASES, "List", &req.base,
                 &containerd__services__leases__v1__list_response__descriptor, &out, NULL,
                 &e) < 0) {
        drop(c, "leases", "*", -1, e);
        return;
    }
    Containerd__Services__Leases__V1__ListResponse *r = (void *)out;
    for (size_t i = 0; i < r->n_leases; i++) {
        const char *lease = r->leases[i]->id;
        if (lease == NULL || strncmp(lease, CREATE_LEASE_PREFIX, strlen(CREATE_LEASE_PREFIX)) != 0)
            continue;
        const char *id = lease + strlen(CREATE_LEASE_PREFIX);
        if (strlen(id) != 64 || strchr(id, '/') != NULL)
            continue;
        if (!container_known(
                c, id)) { /* the snapshot and files first, the lease that held them last */
            Containerd__Services__Snapshots__V1__RemoveSnapshotRequest rs =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
            rs.snapshotter = c->cfg.snapshotter;
            rs.key = (char *)id;
            e = NULL;
            int rc = cri_call(c, CRI_SVC_SNAPSHOTS, "Remove", &rs.base, NULL, NULL, NULL, &e);
            drop(c, "snapshot", id, rc, e);
            if (rc < 0 && rc != BERTH_ENOTFOUND)
                continue; /* the lease keeps it: tried again at the next start */
            remove_ctr_dir(c, id);
            c->api->log(c->log, BERTH_LOG_INFO,
                        "cri: container \"%s\" cut short by a crash while being made: its snapshot "
                        "and files removed",
                        id);
        }
        Containerd__Services__Leases__V1__DeleteRequest d =
            CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        d.id = (char *)lease;
        e = NULL;
        drop(c, "lease", id, cri_call(c, CRI_SVC_LEASES, "Delete", &d.base, NULL, NULL, NULL, &e),
             e);
    }
    protobuf_c_message_free_unpacked(out, NULL);
    /* the files of a container whose record went (RemoveContainer cut short after it) */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/containers", c->cfg.state);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 64 || container_known(c, de->d_name))
            continue;
        remove_ctr_dir(c, de->d_name);
        c->api->log(c->log, BERTH_LOG_INFO,
                    "cri: files of container \"%s\" without a record: removed", de->d_name);
    }
    closedir(d);
}
