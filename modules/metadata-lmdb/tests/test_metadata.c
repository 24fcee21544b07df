/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metadata store through its C service API (abi/berth/metadata.h): the real metadata-lmdb.so, loaded by
 * its descriptor, with the core's real function table, on a real LMDB file in a temp dir.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <berth/metadata.h>
#include <berth/module.h>

#include "config.h" /* the core's config parser: to hand the module a real config section */

extern const berth_core_api_t berth__core_api;

static const berth_core_api_t *api = &berth__core_api;
static char dir[64];
static void *handle;
static const berth_plugin_reg_t *reg;
static const berth_metadata_v1_ops_t *ops;
static void *md;
static berth_error_t *err;

static void
open_store(void)
{
    berth_init_ctx_t ic = {
        .size = sizeof(ic), .api = api, .uri = "io.containerd.metadata.v1.lmdb", .root = dir};
    cr_assert_eq(reg->init(&ic, &md, &err), 0, "%s", err ? err->message : "");
}

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/berth-md-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    handle = dlopen(METADATA_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_metadata_lmdb");
    cr_assert(entry != NULL);
    reg = entry()->plugins[0];
    cr_assert_str_eq(reg->type, BERTH_METADATA_TYPE);
    ops = reg->ops;
    open_store();
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void
teardown(void)
{
    reg->fini(md);
    api->error_free(err);
    err = NULL;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    dlclose(handle);
}

TestSuite(metadata, .init = setup, .fini = teardown);

static void
expect_error(int rc, int code, const char *message)
{
    cr_assert_eq(rc, code, "rc %d, wanted %d (%s)", rc, code, err ? err->message : "");
    cr_assert(err != NULL);
    if (message)
        cr_expect(strstr(err->message, message) != NULL, "`%s` lacks `%s`", err->message, message);
    api->error_free(err);
    err = NULL;
}

static int
count_ns(void *user, const char *ns, const berth_kv_t *labels)
{
    char *seen = user;
    strcat(seen, ns);
    strcat(seen, ";");
    return 0;
}

Test(metadata, namespaces_lifecycle)
{
    berth_kv_t *labels = api->kv_new();
    api->kv_set(labels, "a", "1");
    cr_assert_eq(ops->namespace_create(md, "team", labels, &err), 0);
    expect_error(ops->namespace_create(md, "team", NULL, &err), BERTH_EEXIST,
                 "namespace \"team\": already exists");
    expect_error(ops->namespace_create(md, "bad/ns", NULL, &err), BERTH_EINVAL,
                 "identifier \"bad/ns\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
    cr_assert_eq(ops->namespace_set_label(md, "team", "b", "2", &err), 0);
    cr_assert_eq(ops->namespace_set_label(md, "team", "a", "", &err), 0);
    berth_kv_t *got = api->kv_new();
    cr_assert_eq(ops->namespace_labels(md, "team", got, &err), 0);
    cr_expect_eq(api->kv_size(got), 1);
    cr_expect_str_eq(api->kv_get(got, "b"), "2");
    cr_assert_eq(ops->namespace_create(md, "alpha", NULL, &err), 0);
    char seen[128] = "";
    cr_assert_eq(ops->namespace_list(md, count_ns, seen, &err), 0);
    cr_expect_str_eq(seen, "alpha;team;");
    cr_assert_eq(ops->namespace_delete(md, "alpha", &err), 0);
    expect_error(ops->namespace_delete(md, "alpha", &err), BERTH_ENOTFOUND,
                 "namespace \"alpha\": not found");
    api->kv_free(labels);
    api->kv_free(got);
}

Test(metadata, records_survive_a_restart)
{
    cr_assert_eq(ops->namespace_create(md, "kept", NULL, &err), 0);
    cr_assert_eq(ops->lease_create(md, "kept", "l1", NULL, NULL, &err), 0);
    reg->fini(md);
    open_store();
    char seen[64] = "";
    ops->namespace_list(md, count_ns, seen, &err);
    cr_expect_str_eq(seen, "kept;");
    expect_error(ops->lease_create(md, "kept", "l1", NULL, NULL, &err), BERTH_EEXIST,
                 "lease \"l1\": already exists");
}

static int
list_lease(void *user, const berth_lease_t *l)
{
    strcat(user, l->id);
    strcat(user, api->kv_get(l->labels, "x") ? "+x;" : ";");
    return 0;
}

static int
list_resource(void *user, const char *type, const char *id)
{
    strcat(user, type);
    strcat(user, "=");
    strcat(user, id);
    strcat(user, ";");
    return 0;
}

Test(metadata, leases_and_resources)
{
    static const char digest[] =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    berth_kv_t *labels = api->kv_new();
    api->kv_set(labels, "x", "y");
    int64_t created = 0;
    cr_assert_eq(ops->lease_create(md, "ns1", "b", labels, &created, &err), 0);
    cr_expect_gt(created, 0);
    cr_assert_eq(ops->lease_create(md, "ns1", "a", NULL, NULL, &err), 0);
    expect_error(ops->lease_create(md, "ns1", "", NULL, NULL, &err), BERTH_EINVAL,
                 "lease id must be provided");
    char seen[256] = "";
    cr_assert_eq(ops->lease_list(md, "ns1", list_lease, seen, &err), 0);
    cr_expect_str_eq(seen, "a;b+x;");
    cr_assert_eq(ops->lease_add_resource(md, "ns1", "a", "content", digest, &err), 0);
    cr_assert_eq(ops->lease_add_resource(md, "ns1", "a", "snapshots/overlayfs", "key1", &err), 0);
    cr_assert_eq(ops->lease_add_resource(md, "ns1", "a", "ingests", "ref1", &err), 0);
    expect_error(ops->lease_add_resource(md, "ns1", "a", "content", "nodigest", &err), BERTH_EINVAL,
                 "invalid content resource id nodigest");
    expect_error(ops->lease_add_resource(md, "ns1", "a", "images", "x", &err), BERTH_ENOTIMPL,
                 "resource type images not supported yet");
    expect_error(ops->lease_add_resource(md, "ns1", "zz", "ingests", "x", &err), BERTH_ENOTFOUND,
                 "lease \"zz\": not found");
    seen[0] = '\0';
    cr_assert_eq(ops->lease_list_resources(md, "ns1", "a", list_resource, seen, &err), 0);
    cr_expect(strstr(seen, "content=sha256:0123") && strstr(seen, "snapshots/overlayfs=key1;") &&
                  strstr(seen, "ingests=ref1;"),
              "%s", seen);
    cr_assert_eq(ops->lease_delete_resource(md, "ns1", "a", "ingests", "ref1", &err), 0);
    cr_assert_eq(ops->lease_delete(md, "ns1", "a", &err), 0);
    expect_error(ops->lease_delete(md, "ns1", "a", &err), BERTH_ENOTFOUND,
                 "lease \"a\": not found");
    /* a lease in another namespace is invisible here */
    seen[0] = '\0';
    cr_assert_eq(ops->lease_list(md, "ns2", list_lease, seen, &err), 0);
    cr_expect_str_eq(seen, "");
    api->kv_free(labels);
}

Test(metadata, oversized_labels_are_refused_and_nothing_is_lost)
{
    static char big[5000];
    memset(big, 'v', sizeof(big) - 1);
    cr_assert_eq(ops->namespace_create(md, "keep", NULL, &err), 0);
    cr_assert_eq(ops->namespace_set_label(md, "keep", "k", "v", &err), 0);
    cr_expect_eq(ops->namespace_set_label(md, "keep", "big", big, &err), BERTH_EINVAL);
    api->error_free(err);
    err = NULL;
    berth_kv_t *got = api->kv_new();
    ops->namespace_labels(md, "keep", got, &err);
    cr_expect_eq(api->kv_size(got), 1);
    api->kv_free(got);
}

static int
count_lease(void *user, const berth_lease_t *lease)
{
    (*(int *)user)++;
    return 0;
}

/* Reads while the map grows under them: each list must see a whole store (the leases made so far). */
typedef struct reader {
    volatile int stop;
    int lists, failures;
} reader_t;

static void *
read_leases(void *arg)
{
    reader_t *r = arg;
    while (!r->stop) {
        int n = 0;
        berth_error_t *e = NULL;
        if (ops->lease_list(md, "full", count_lease, &n, &e) < 0) {
            r->failures++;
            api->error_free(e);
        }
        r->lists++;
    }
    return NULL;
}

static off_t
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

Test(metadata, a_full_map_grows_and_the_records_stay)
{
    reg->fini(md);
    /* the smallest map the module accepts, filled with leases far beyond it */
    berth__config_t cfg;
    cr_assert_eq(berth__config_load_string(
                     &cfg, "t.yaml",
                     "plugins:\n  io.containerd.metadata.v1.lmdb:\n    map_size: 1048576\n", &err),
                 0);
    const berth_config_node_t *section =
        berth__map_get(berth__map_get(cfg.tree, "plugins"), "io.containerd.metadata.v1.lmdb");
    char small[96], file[128];
    snprintf(small, sizeof(small), "%s/small", dir);
    snprintf(file, sizeof(file), "%s/meta.mdb", small);
    cr_assert_eq(mkdir(small, 0700), 0);
    berth_init_ctx_t ic = {.size = sizeof(ic),
                           .api = api,
                           .uri = "io.containerd.metadata.v1.lmdb",
                           .root = small,
                           .config = section};
    cr_assert_eq(reg->init(&ic, &md, &err), 0, "%s", err ? err->message : "");
    reader_t r = {0};
    pthread_t readers[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&readers[i], NULL, read_leases, &r);
    berth_kv_t *labels = api->kv_new();
    static char value[3000];
    memset(value, 'x', sizeof(value) - 1);
    api->kv_set(labels, "pad", value);
    enum { LEASES = 1200 }; /* a page each: some 5 MiB, two doublings at least */
    char id[32];
    for (int i = 0; i < LEASES; i++) {
        snprintf(id, sizeof(id), "lease-%d", i);
        cr_assert_eq(ops->lease_create(md, "full", id, labels, NULL, &err), 0, "%s: %s", id,
                     err ? err->message : "");
    }
    r.stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(readers[i], NULL);
    cr_expect_eq(r.failures, 0, "%d of %d lists failed while the map grew", r.failures, r.lists);
    cr_expect_gt(file_size(file), 2 << 20, "meta.mdb is %lld bytes", (long long)file_size(file));
    /* reopened with the same small map_size: everything is there, and it still grows */
    reg->fini(md);
    cr_assert_eq(reg->init(&ic, &md, &err), 0, "%s", err ? err->message : "");
    int n = 0;
    cr_assert_eq(ops->lease_list(md, "full", count_lease, &n, &err), 0);
    cr_expect_eq(n, LEASES);
    for (int i = LEASES; i < LEASES + 400; i++) {
        snprintf(id, sizeof(id), "lease-%d", i);
        cr_assert_eq(ops->lease_create(md, "full", id, labels, NULL, &err), 0, "%s: %s", id,
                     err ? err->message : "");
    }
    n = 0;
    cr_assert_eq(ops->lease_list(md, "full", count_lease, &n, &err), 0);
    cr_expect_eq(n, LEASES + 400);
    char seen[64] = "";
    cr_assert_eq(ops->namespace_list(md, count_ns, seen, &err), 0);
    cr_expect_str_eq(seen, "full;");
    api->kv_free(labels);
    berth__config_free(&cfg);
}

/* ---- images and containers: containerd's messages, built with the generated code ------------------ */

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

static const char target_digest[] =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

static uint8_t *
image_bytes(const char *name, const char *digest, size_t *len)
{
    Containerd__Types__Descriptor target = CONTAINERD__TYPES__DESCRIPTOR__INIT;
    target.media_type = "application/vnd.oci.image.index.v1+json";
    target.digest = (char *)digest;
    target.size = 123;
    Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
    img.name = (char *)name;
    img.target = &target;
    *len = containerd__services__images__v1__image__get_packed_size(&img);
    uint8_t *out = malloc(*len);
    containerd__services__images__v1__image__pack(&img, out);
    return out;
}

static int
count_bytes(void *user, const uint8_t *data, size_t len)
{
    (*(int *)user)++;
    return 0;
}

Test(metadata, images_are_stored_validated_and_stamped)
{
    size_t len;
    uint8_t *img = image_bytes("docker.io/library/busybox:latest", target_digest, &len);
    cr_assert_eq(ops->image_create(md, "ns1", img, len, &err), 0, "%s", err ? err->message : "");
    expect_error(ops->image_create(md, "ns1", img, len, &err), BERTH_EEXIST,
                 "image \"docker.io/library/busybox:latest\": already exists");
    uint8_t *got;
    size_t got_len;
    cr_assert_eq(
        ops->image_get(md, "ns1", "docker.io/library/busybox:latest", &got, &got_len, &err), 0);
    Containerd__Services__Images__V1__Image *back =
        containerd__services__images__v1__image__unpack(NULL, got_len, got);
    cr_assert(back != NULL);
    cr_expect_str_eq(back->target->digest, target_digest);
    cr_expect(back->created_at && back->created_at->seconds > 0);
    int64_t created = back->created_at->seconds;
    containerd__services__images__v1__image__free_unpacked(back, NULL);
    api->free(got);
    cr_assert_eq(ops->image_update(md, "ns1", img, len, &err), 0);
    cr_assert_eq(
        ops->image_get(md, "ns1", "docker.io/library/busybox:latest", &got, &got_len, &err), 0);
    back = containerd__services__images__v1__image__unpack(NULL, got_len, got);
    cr_expect_eq(back->created_at->seconds, created, "an update must keep created_at");
    containerd__services__images__v1__image__free_unpacked(back, NULL);
    api->free(got);
    free(img);
    img = image_bytes("bad", "sha256:nope", &len);
    expect_error(ops->image_create(md, "ns1", img, len, &err), BERTH_EINVAL,
                 "image.Target.Digest sha256:nope: invalid");
    expect_error(ops->image_update(md, "ns1", img, len, &err), BERTH_EINVAL,
                 "image.Target.Digest sha256:nope: invalid");
    free(img);
    img = image_bytes("ghost", target_digest, &len);
    expect_error(ops->image_update(md, "ns1", img, len, &err), BERTH_ENOTFOUND,
                 "image \"ghost\": not found");
    free(img);
    int n = 0;
    cr_assert_eq(ops->image_list(md, "ns1", count_bytes, &n, &err), 0);
    cr_expect_eq(n, 1);
    expect_error(ops->namespace_delete(md, "ns1", &err), BERTH_EPRECONDITION,
                 "namespace \"ns1\" must be empty, but it still has images");
    cr_assert_eq(ops->image_delete(md, "ns1", "docker.io/library/busybox:latest", &err), 0);
    expect_error(ops->image_delete(md, "ns1", "docker.io/library/busybox:latest", &err),
                 BERTH_ENOTFOUND, "image \"docker.io/library/busybox:latest\": not found");
    cr_assert_eq(ops->namespace_delete(md, "ns1", &err), 0);
}

static void
no_removal(void *user, const char *digest)
{
    strcat(user, digest);
}

static void
snapshot_removed(void *user, const char *ns, const char *sn, const char *key)
{
    strcat(user, "snap:");
    strcat(user, key);
}

Test(metadata, an_image_roots_its_target)
{
    size_t len;
    uint8_t *img = image_bytes("img", target_digest, &len);
    cr_assert_eq(ops->content_put(md, "ns1", target_digest, 123, NULL, &err), 0);
    cr_assert_eq(ops->image_create(md, "ns1", img, len, &err), 0);
    char removed[512] = "";
    berth_gc_removed_t hooks = {sizeof(hooks), removed, no_removal, snapshot_removed};
    cr_assert_eq(ops->gc_collect(md, 0, &hooks, &err), 0);
    cr_expect_str_eq(removed, "", "the image's target was collected");
    cr_assert_eq(ops->image_delete(md, "ns1", "img", &err), 0);
    cr_assert_eq(ops->gc_collect(md, 0, &hooks, &err), 0);
    cr_expect_str_eq(removed, target_digest);
    free(img);
}

Test(metadata, containers_need_a_runtime_and_a_spec)
{
    Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
    spec.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
    Containerd__Services__Containers__V1__Container__Runtime runtime =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
    runtime.name = "io.containerd.runc.v2";
    Containerd__Services__Containers__V1__Container c =
        CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
    c.id = "web";
    c.spec = &spec;
    uint8_t buf[1024];
    size_t len = containerd__services__containers__v1__container__pack(&c, buf);
    expect_error(ops->container_create(md, "ns1", buf, len, &err), BERTH_EINVAL,
                 "container.Runtime.Name must be set");
    c.runtime = &runtime;
    c.snapshot_key = "web";
    len = containerd__services__containers__v1__container__pack(&c, buf);
    expect_error(ops->container_create(md, "ns1", buf, len, &err), BERTH_EINVAL,
                 "container.Snapshotter must be set if container.SnapshotKey is set");
    c.snapshotter = "overlayfs";
    len = containerd__services__containers__v1__container__pack(&c, buf);
    cr_assert_eq(ops->container_create(md, "ns1", buf, len, &err), 0, "%s",
                 err ? err->message : "");
    expect_error(ops->container_create(md, "ns1", buf, len, &err), BERTH_EEXIST,
                 "container \"web\": already exists");
    expect_error(ops->namespace_delete(md, "ns1", &err), BERTH_EPRECONDITION,
                 "still has containers");
    cr_assert_eq(ops->container_delete(md, "ns1", "web", &err), 0);
    c.id = "bad/id";
    len = containerd__services__containers__v1__container__pack(&c, buf);
    expect_error(ops->container_create(md, "ns1", buf, len, &err), BERTH_EINVAL, NULL);
}

#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

static void
put_snapshot(const char *key, const char *parent, const char *label_key, const char *label_value)
{
    Containerd__Services__Snapshots__V1__Info info =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
    Containerd__Services__Snapshots__V1__Info__LabelsEntry label =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__LABELS_ENTRY__INIT;
    Containerd__Services__Snapshots__V1__Info__LabelsEntry *labels[] = {&label};
    info.name = (char *)key;
    info.parent = (char *)parent;
    if (label_key) {
        label.key = (char *)label_key;
        label.value = (char *)label_value;
        info.labels = labels;
        info.n_labels = 1;
    }
    uint8_t buf[512];
    size_t len = containerd__services__snapshots__v1__info__pack(&info, buf);
    cr_assert_eq(ops->snapshot_create(md, "ns1", "overlayfs", buf, len, &err), 0, "%s",
                 err ? err->message : "");
}

Test(metadata, snapshots_keep_parents_and_follow_gc_references)
{
    put_snapshot("base", "", NULL, NULL);
    put_snapshot("mid", "base", NULL, NULL);
    put_snapshot("top", "mid", "containerd.io/gc.root", "x");
    put_snapshot("stray", "", NULL, NULL);
    put_snapshot("pinned", "", NULL, NULL);
    expect_error(ops->snapshot_delete(md, "ns1", "overlayfs", "base", &err), BERTH_EPRECONDITION,
                 "cannot remove snapshot with child");
    berth_kv_t *labels = api->kv_new();
    static const char blob[] =
        "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    api->kv_set(labels, "containerd.io/gc.root", "x");
    api->kv_set(labels, "containerd.io/gc.ref.snapshot.overlayfs", "pinned");
    cr_assert_eq(ops->content_put(md, "ns1", blob, 1, labels, &err), 0);
    char removed[512] = "";
    berth_gc_removed_t hooks = {sizeof(hooks), removed, no_removal, snapshot_removed};
    cr_assert_eq(ops->gc_collect(md, 0, &hooks, &err), 0);
    cr_expect_str_eq(removed, "snap:stray", "only the unreferenced snapshot goes");
    uint8_t *got;
    size_t len;
    cr_assert_eq(ops->snapshot_get(md, "ns1", "overlayfs", "base", &got, &len, &err), 0);
    api->free(got);
    expect_error(ops->namespace_delete(md, "ns1", &err), BERTH_EPRECONDITION, "snapshots");
    api->kv_free(labels);
}

Test(metadata, snapshot_commit_replaces_the_key_in_one_transaction)
{
    put_snapshot("extract-1", "", NULL, NULL);
    put_snapshot("taken", "", NULL, NULL);
    Containerd__Services__Snapshots__V1__Info info =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__INFO__INIT;
    info.name = "taken";
    info.kind = CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED;
    uint8_t buf[512], *got;
    size_t len = containerd__services__snapshots__v1__info__pack(&info, buf), glen;
    expect_error(ops->snapshot_commit(md, "ns1", "overlayfs", "extract-1", buf, len, &err),
                 BERTH_EEXIST, "already exists");
    cr_assert_eq(ops->snapshot_get(md, "ns1", "overlayfs", "extract-1", &got, &glen, &err), 0,
                 "a refused commit must keep the active record");
    api->free(got);
    info.name = "sha256:layer";
    len = containerd__services__snapshots__v1__info__pack(&info, buf);
    cr_assert_eq(ops->snapshot_commit(md, "ns1", "overlayfs", "extract-1", buf, len, &err), 0);
    expect_error(ops->snapshot_get(md, "ns1", "overlayfs", "extract-1", &got, &glen, &err),
                 BERTH_ENOTFOUND, "not found");
    cr_assert_eq(ops->snapshot_get(md, "ns1", "overlayfs", "sha256:layer", &got, &glen, &err), 0);
    api->free(got);
    expect_error(ops->snapshot_commit(md, "ns1", "overlayfs", "gone", buf, len, &err), BERTH_EEXIST,
                 "already exists");
}

static int
list_record(void *user, const char *key, const uint8_t *value, size_t len)
{
    char *seen = user;
    snprintf(seen + strlen(seen), 128 - strlen(seen), "%s=%.*s;", key, (int)len,
             (const char *)value);
    return 0;
}

/* Other modules' records: create-once, replace, list in key order per kind, and a namespace holding one
 * cannot be deleted; they survive a restart. */
Test(metadata, module_records)
{
    const uint8_t one[] = "one", two[] = "two";
    cr_assert_eq(ops->record_put(md, "vols", "volumes", "b", one, 3, BERTH_RECORD_CREATE, &err), 0);
    expect_error(ops->record_put(md, "vols", "volumes", "b", two, 3, BERTH_RECORD_CREATE, &err),
                 BERTH_EEXIST, "volumes \"b\": already exists");
    cr_assert_eq(ops->record_put(md, "vols", "volumes", "a", two, 3, 0, &err), 0);
    cr_assert_eq(ops->record_put(md, "vols", "other", "c", one, 3, 0, &err), 0);
    cr_assert_eq(ops->record_put(md, "vols", "volumes", "a", one, 3, 0, &err), 0); /* replaces */
    expect_error(ops->record_put(md, "vols", "volumes", "", one, 3, 0, &err), BERTH_EINVAL,
                 "1 to 255 bytes");
    expect_error(ops->record_put(md, "bad/ns", "volumes", "a", one, 3, 0, &err), BERTH_EINVAL,
                 "invalid");
    reg->fini(md);
    open_store();
    char seen[128] = "";
    cr_assert_eq(ops->record_list(md, "vols", "volumes", list_record, seen, &err), 0);
    cr_assert_str_eq(seen, "a=one;b=one;");
    uint8_t *v = NULL;
    size_t n = 0;
    cr_assert_eq(ops->record_get(md, "vols", "other", "c", &v, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(v, "one", 3), 0);
    api->free(v);
    expect_error(ops->record_get(md, "vols", "volumes", "c", &v, &n, &err), BERTH_ENOTFOUND,
                 "volumes \"c\": not found");
    expect_error(ops->namespace_delete(md, "vols", &err), BERTH_EPRECONDITION, "module records");
    cr_assert_eq(ops->record_delete(md, "vols", "volumes", "a", &err), 0);
    cr_assert_eq(ops->record_delete(md, "vols", "volumes", "b", &err), 0);
    cr_assert_eq(ops->record_delete(md, "vols", "other", "c", &err), 0);
    expect_error(ops->record_delete(md, "vols", "other", "c", &err), BERTH_ENOTFOUND, NULL);
    cr_assert_eq(ops->namespace_delete(md, "vols", &err), 0);
}
