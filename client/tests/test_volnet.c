/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd's own services through libberth-client: volumes (create, idempotent create, get, list with
 * filters, prune, remove, NotFound) and networks (create with the test's own bridge and 10.232.x subnet,
 * get, list, filters, endpoints, remove).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img_fixture.h"

/* ---- volumes ----------------------------------------------------------------------------------------- */

static size_t
count_volumes(const char *filter)
{
    berth_volume_t *v = NULL;
    size_t n = 0;
    berth_error_t *err = NULL;
    const char *f[] = {filter};
    OK(berth_volume_list(cl, NULL, filter ? f : NULL, filter ? 1 : 0, &v, &n, &err));
    berth_volumes_free(v, n);
    return n;
}

Test(volnet, volumes, .init = fx_setup_empty, .fini = fx_teardown, .timeout = 60)
{
    berth_error_t *err = NULL;
    berth_kv_t labels[] = {{"team", "blue"}};
    berth_volume_t *v = NULL;
    int created = -1;
    OK(berth_volume_create(cl, NULL, "data1", NULL, 0, labels, 1, &v, &created, &err));
    cr_assert_eq(created, 1);
    cr_assert_str_eq(v->name, "data1");
    cr_assert_str_eq(v->driver, "local");
    cr_assert_str_eq(fx_kv(v->labels, v->n_labels, "team"), "blue");
    struct stat st;
    cr_assert_eq(stat(v->mountpoint, &st), 0, "mountpoint %s", v->mountpoint);
    cr_assert(S_ISDIR(st.st_mode));
    berth_volume_free(v);
    /* the same again: no new volume */
    OK(berth_volume_create(cl, NULL, "data1", NULL, 0, labels, 1, NULL, &created, &err));
    cr_assert_eq(created, 0);
    berth_kv_t opts[] = {{"type", "tmpfs"}, {"size", "1m"}};
    OK(berth_volume_create(cl, NULL, "scratch", opts, 2, NULL, 0, &v, &created, &err));
    cr_assert_eq(created, 1);
    cr_assert_str_eq(fx_kv(v->options, v->n_options, "type"), "tmpfs");
    berth_volume_free(v);

    OK(berth_volume_get(cl, NULL, "data1", &v, &err));
    cr_assert_str_eq(v->name, "data1");
    cr_assert_eq(v->n_containers, 0);
    berth_volume_free(v);
    int rc = berth_volume_get(cl, NULL, "nothere", &v, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    cr_assert(strstr(err->message, "nothere"), "%s", err->message);
    berth_error_free(err);
    err = NULL;

    cr_assert_eq(count_volumes(NULL), 2);
    cr_assert_eq(count_volumes("labels.team==blue"), 1);
    cr_assert_eq(count_volumes("name==scratch"), 1);
    cr_assert_eq(count_volumes("name==none"), 0);

    rc = berth_volume_remove(cl, NULL, "unknown-volume", 0, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND, "remove of an unknown volume: %d", rc);
    cr_assert(strstr(err->message, "unknown-volume"), "%s", err->message);
    berth_error_free(err);
    err = NULL;

    /* prune what the filter selects (no container uses either) */
    const char *pf[] = {"name==scratch"};
    char **removed = NULL;
    size_t nr = 0;
    uint64_t reclaimed = 0;
    OK(berth_volume_prune(cl, NULL, pf, 1, &removed, &nr, &reclaimed, &err));
    cr_assert_eq(nr, 1);
    cr_assert_str_eq(removed[0], "scratch");
    for (size_t i = 0; i < nr; i++)
        berth_free(removed[i]);
    berth_free(removed);
    cr_assert_eq(count_volumes(NULL), 1);

    OK(berth_volume_remove(cl, NULL, "data1", 0, &err));
    cr_assert_eq(count_volumes(NULL), 0);
    rc = berth_volume_create(cl, NULL, "bad/name", NULL, 0, NULL, 0, NULL, NULL, &err);
    cr_assert_eq(rc, BERTH_EINVAL);
    berth_error_free(err);
}

/* ---- networks ---------------------------------------------------------------------------------------- */

static size_t
count_networks(const char *filter, const char *name)
{
    berth_network_t *v = NULL;
    size_t n = 0, hits = 0;
    berth_error_t *err = NULL;
    const char *f[] = {filter};
    OK(berth_network_list(cl, NULL, filter ? f : NULL, filter ? 1 : 0, &v, &n, &err));
    for (size_t i = 0; i < n; i++)
        hits += strcmp(v[i].name, name) == 0;
    berth_networks_free(v, n);
    return hits;
}

Test(volnet, networks, .init = fx_setup_empty, .fini = fx_teardown, .timeout = 60)
{
    int tag = (int)(getpid() % 100000), k = (int)(getpid() % 200) + 20;
    char name[64], bridge[32], subnet[64], gw[64];
    snprintf(name, sizeof(name), "clientnet%d", tag);
    snprintf(bridge, sizeof(bridge), "bc%d", tag);
    snprintf(subnet, sizeof(subnet), "10.232.%d.0/24", k + 1);
    snprintf(gw, sizeof(gw), "10.232.%d.1", k + 1);
    berth_kv_t labels[] = {{"purpose", "client-test"}};
    berth_network_opts_t o = {.subnet = subnet, .bridge = bridge, .labels = labels, .n_labels = 1};
    berth_error_t *err = NULL;
    berth_network_t *net = NULL;
    OK(berth_network_create(cl, NULL, name, &o, &net, &err));
    cr_assert_str_eq(net->name, name);
    cr_assert_str_eq(net->source, "api");
    cr_assert_str_eq(net->driver, "bridge");
    cr_assert_str_eq(net->bridge, bridge);
    cr_assert_str_eq(net->subnet, subnet);
    cr_assert_str_eq(net->gateway, gw);
    cr_assert(strstr(net->conflist, bridge), "%s", net->conflist);
    berth_network_free(net);

    int rc = berth_network_create(cl, NULL, name, &o, NULL, &err);
    cr_assert_eq(rc, BERTH_EEXIST);
    berth_error_free(err);
    err = NULL;
    berth_network_opts_t bad = {.subnet = "10.232.999.0/24", .bridge = bridge};
    rc = berth_network_create(cl, NULL, "clientbad", &bad, NULL, &err);
    cr_assert_eq(rc, BERTH_EINVAL);
    berth_error_free(err);
    err = NULL;

    OK(berth_network_get(cl, NULL, name, &net, &err));
    cr_assert_str_eq(fx_kv(net->labels, net->n_labels, "purpose"), "client-test");
    berth_network_free(net);
    cr_assert_eq(count_networks(NULL, name), 1);
    cr_assert_eq(count_networks("labels.purpose==client-test", name), 1);
    cr_assert_eq(count_networks("source==config", name), 0);

    berth_endpoint_t *eps = NULL;
    size_t neps = 9;
    OK(berth_network_endpoints(cl, NULL, name, &eps, &neps, &err));
    cr_assert_eq(neps, 0);
    berth_endpoints_free(eps, neps);

    OK(berth_network_remove(cl, NULL, name, &err));
    rc = berth_network_get(cl, NULL, name, &net, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    cr_assert(strstr(err->message, name), "%s", err->message);
    berth_error_free(err);
    err = NULL;
    cr_assert_eq(count_networks(NULL, name), 0);
    rc = berth_network_remove(cl, NULL, name, &err);
    cr_assert_eq(rc, BERTH_ENOTFOUND);
    berth_error_free(err);
}
