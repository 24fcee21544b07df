/* SPDX-License-Identifier: Apache-2.0 */
/* berth volume, network, events, version, info, modules, reload */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0"
#endif

static int
want_json(struct ctx *x)
{
    const char *fmt = fstr(x, "format");
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "table"))
        die("unknown --format \"%s\": table or json", fmt);
    return fmt && !strcmp(fmt, "json");
}

static json_object *
json_strs(char **s, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(s[i]));
    return a;
}

static berth_kv_t *
kv_list(const char **l, size_t n)
{
    berth_kv_t *kv = calloc(n + 1, sizeof *kv);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(l[i], '=');
        if (!eq || eq == l[i])
            die("invalid \"%s\": expected KEY=VALUE", l[i]);
        kv[i].key = strndup(l[i], (size_t)(eq - l[i]));
        kv[i].value = strdup(eq + 1);
    }
    return kv;
}

json_object *
json_image(struct ctx *x, const berth_image_t *img)
{
    json_object *o = json_object_new_object(), *t = json_object_new_object();
    char ts[64];
    json_object_object_add(o, "Name", json_object_new_string(img->name));
    json_object_object_add(t, "MediaType", json_object_new_string(img->target.media_type));
    json_object_object_add(t, "Digest", json_object_new_string(img->target.digest));
    json_object_object_add(t, "Size", json_object_new_int64(img->target.size));
    json_object_object_add(o, "Target", t);
    fmt_time(img->created_at_ns, ts, sizeof ts);
    json_object_object_add(o, "Created", json_object_new_string(ts));
    json_object_object_add(o, "Labels", json_kv(img->labels, img->n_labels));
    int64_t size = 0;
    berth_error_t *e = NULL;
    if (berth_image_size(cli_client(x), cli_call(x), img->name, &size, &e) == 0)
        json_object_object_add(o, "Size", json_object_new_int64(size));
    else
        berth_error_free(e);
    char *cfg = NULL;
    if (berth_image_config(cli_client(x), cli_call(x), img->name, &cfg, &e) == 0) {
        json_object_object_add(o, "Config", json_tokener_parse(cfg));
        berth_free(cfg);
    } else {
        berth_error_free(e);
    }
    return o;
}

json_object *
json_volume(const berth_volume_t *v)
{
    json_object *o = json_object_new_object();
    char ts[64];
    json_object_object_add(o, "Name", json_object_new_string(v->name));
    json_object_object_add(o, "Driver", json_object_new_string(v->driver));
    json_object_object_add(o, "Mountpoint", json_object_new_string(v->mountpoint));
    fmt_time(v->created_at_ns, ts, sizeof ts);
    json_object_object_add(o, "CreatedAt", json_object_new_string(ts));
    json_object_object_add(o, "Labels", json_kv(v->labels, v->n_labels));
    json_object_object_add(o, "Options", json_kv(v->options, v->n_options));
    json_object_object_add(o, "Containers", json_strs(v->containers, v->n_containers));
    return o;
}

json_object *
json_network(const berth_network_t *n)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "Name", json_object_new_string(n->name));
    json_object_object_add(o, "Driver", json_object_new_string(n->driver));
    json_object_object_add(o, "Source", json_object_new_string(n->source));
    json_object_object_add(o, "Bridge", json_object_new_string(n->bridge));
    json_object_object_add(o, "Subnet", json_object_new_string(n->subnet));
    json_object_object_add(o, "Gateway", json_object_new_string(n->gateway));
    json_object_object_add(o, "Labels", json_kv(n->labels, n->n_labels));
    json_object_object_add(o, "Conflist", n->conflist[0] ? json_tokener_parse(n->conflist) : NULL);
    return o;
}

/* ---- volumes ------------------------------------------------------------------------------------------ */

int
cmd_volume_create(struct ctx *x)
{
    size_t no, nl;
    const char **ol = flist(x, "opt", &no), **ll = flist(x, "label", &nl);
    if (strcmp(fstr(x, "driver"), "local"))
        die("unknown volume driver \"%s\": berth has \"local\" only", fstr(x, "driver"));
    berth_kv_t *opts = kv_list(ol, no), *labels = kv_list(ll, nl);
    char *name = x->argc ? strdup(x->argv[0]) : random_hex(64);
    berth_error_t *e = NULL;
    if (berth_volume_create(cli_client(x), cli_call(x), name, opts, no, labels, nl, NULL, NULL,
                            &e) < 0)
        die_err(x, e);
    printf("%s\n", name);
    berth_kv_free(opts, no);
    berth_kv_free(labels, nl);
    free(name);
    return 0;
}

int
cmd_volume_ls(struct ctx *x)
{
    size_t nf, n = 0;
    const char **f = flist(x, "filter", &nf);
    berth_volume_t *v = NULL;
    berth_error_t *e = NULL;
    int json = want_json(x), quiet = fbool(x, "quiet");
    if (berth_volume_list(cli_client(x), cli_call(x), f, nf, &v, &n, &e) < 0)
        die_err(x, e);
    struct table t;
    if (!json && !quiet)
        table_init(&t, 3, "DRIVER", "VOLUME NAME", "MOUNTPOINT");
    for (size_t i = 0; i < n; i++) {
        if (quiet)
            printf("%s\n", v[i].name);
        else if (json)
            json_print(json_volume(&v[i]), 0);
        else
            table_row(&t, v[i].driver, v[i].name, v[i].mountpoint);
    }
    if (!json && !quiet)
        table_print(&t, stdout);
    berth_volumes_free(v, n);
    return 0;
}

int
cmd_volume_inspect(struct ctx *x)
{
    json_object *arr = json_object_new_array();
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        berth_volume_t *v = NULL;
        berth_error_t *e = NULL;
        if (berth_volume_get(cli_client(x), cli_call(x), x->argv[i], &v, &e) < 0) {
            warn_err(x, e);
            rc = 1;
            continue;
        }
        json_object_array_add(arr, json_volume(v));
        berth_volume_free(v);
    }
    json_print(arr, 1);
    return rc;
}

int
cmd_volume_rm(struct ctx *x)
{
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        berth_error_t *e = NULL;
        if (berth_volume_remove(cli_client(x), cli_call(x), x->argv[i], fbool(x, "force"), &e) <
            0) {
            warn_err(x, e);
            rc = 1;
        } else {
            printf("%s\n", x->argv[i]);
        }
    }
    return rc;
}

int
cmd_volume_prune(struct ctx *x)
{
    size_t nf, n = 0;
    const char **f = flist(x, "filter", &nf);
    char **removed = NULL;
    uint64_t reclaimed = 0;
    berth_error_t *e = NULL;
    if (berth_volume_prune(cli_client(x), cli_call(x), f, nf, &removed, &n, &reclaimed, &e) < 0)
        die_err(x, e);
    if (n)
        printf("Deleted Volumes:\n");
    for (size_t i = 0; i < n; i++) {
        printf("%s\n", removed[i]);
        berth_free(removed[i]);
    }
    berth_free(removed);
    char sz[16];
    human_size((int64_t)reclaimed, sz, sizeof sz);
    printf("%sTotal reclaimed space: %s\n", n ? "\n" : "", sz);
    return 0;
}

/* ---- networks ----------------------------------------------------------------------------------------- */

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        die("open %s: %m", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

int
cmd_network_create(struct ctx *x)
{
    size_t nl;
    const char **ll = flist(x, "label", &nl);
    berth_kv_t *labels = kv_list(ll, nl);
    char *conf = fstr(x, "config-file") ? read_file(fstr(x, "config-file")) : NULL;
    berth_network_opts_t o = {.conflist = conf,
                              .subnet = fstr(x, "subnet"),
                              .gateway = fstr(x, "gateway"),
                              .bridge = fstr(x, "bridge"),
                              .internal = fbool(x, "internal"),
                              .labels = labels,
                              .n_labels = nl};
    berth_network_t *n = NULL;
    berth_error_t *e = NULL;
    if (berth_network_create(cli_client(x), cli_call(x), x->argv[0], &o, &n, &e) < 0)
        die_err(x, e);
    printf("%s\n", n && n->name[0] ? n->name : x->argv[0]);
    berth_network_free(n);
    berth_kv_free(labels, nl);
    free(conf);
    return 0;
}

int
cmd_network_ls(struct ctx *x)
{
    berth_network_t *nw = NULL;
    size_t n = 0;
    berth_error_t *e = NULL;
    int json = want_json(x), quiet = fbool(x, "quiet");
    if (berth_network_list(cli_client(x), cli_call(x), NULL, 0, &nw, &n, &e) < 0)
        die_err(x, e);
    struct table t;
    if (!json && !quiet)
        table_init(&t, 5, "NAME", "DRIVER", "SUBNET", "GATEWAY", "BRIDGE");
    for (size_t i = 0; i < n; i++) {
        if (quiet)
            printf("%s\n", nw[i].name);
        else if (json)
            json_print(json_network(&nw[i]), 0);
        else
            table_row(&t, nw[i].name, nw[i].driver, nw[i].subnet, nw[i].gateway, nw[i].bridge);
    }
    if (!json && !quiet)
        table_print(&t, stdout);
    berth_networks_free(nw, n);
    return 0;
}

int
cmd_network_inspect(struct ctx *x)
{
    json_object *arr = json_object_new_array();
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        berth_network_t *n = NULL;
        berth_error_t *e = NULL;
        if (berth_network_get(cli_client(x), cli_call(x), x->argv[i], &n, &e) < 0) {
            warn_err(x, e);
            rc = 1;
            continue;
        }
        json_object_array_add(arr, json_network(n));
        berth_network_free(n);
    }
    json_print(arr, 1);
    return rc;
}

int
cmd_network_rm(struct ctx *x)
{
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        berth_error_t *e = NULL;
        if (berth_network_remove(cli_client(x), cli_call(x), x->argv[i], &e) < 0) {
            warn_err(x, e);
            rc = 1;
        } else {
            printf("%s\n", x->argv[i]);
        }
    }
    return rc;
}

/* ---- events, version, info, modules -------------------------------------------------------------------- */

static int
on_event(void *user, const berth_event_t *ev)
{
    int json = *(int *)user;
    if (json) {
        json_object *o = json_object_new_object();
        char ts[64];
        fmt_time(ev->timestamp_ns, ts, sizeof ts);
        json_object_object_add(o, "Timestamp", json_object_new_string(ts));
        json_object_object_add(o, "Namespace", json_object_new_string(ev->namespace_));
        json_object_object_add(o, "Topic", json_object_new_string(ev->topic));
        json_object_object_add(o, "Event", ev->json ? json_tokener_parse(ev->json) : NULL);
        json_print(o, 0);
    } else {
        time_t s = (time_t)(ev->timestamp_ns / 1000000000);
        struct tm tm;
        char day[40];
        gmtime_r(&s, &tm);
        strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%s.%09lld +0000 UTC %s %s %s\n", day, (long long)(ev->timestamp_ns % 1000000000),
               ev->namespace_, ev->topic, ev->json ? ev->json : ev->type_url);
    }
    fflush(stdout);
    return 0;
}

int
cmd_events(struct ctx *x)
{
    size_t nf;
    const char **f = flist(x, "filter", &nf);
    int json = want_json(x);
    berth_error_t *e = NULL;
    if (berth_events_subscribe(cli_client(x), cli_call_forever(x), f, nf, on_event, &json, &e) < 0)
        die_err(x, e);
    return 0;
}

int
cmd_version(struct ctx *x)
{
    char *v = NULL, *r = NULL;
    berth_error_t *e = NULL;
    int json = want_json(x);
    if (!json)
        printf("Client:\n Version:  %s\n", BERTH_VERSION);
    if (berth_version(cli_client(x), cli_call(x), &v, &r, &e) < 0) {
        fflush(stdout);
        die_err(x, e);
    }
    if (json) {
        json_object *o = json_object_new_object(), *c = json_object_new_object(),
                    *s = json_object_new_object();
        json_object_object_add(c, "Version", json_object_new_string(BERTH_VERSION));
        json_object_object_add(s, "Version", json_object_new_string(v));
        json_object_object_add(s, "Revision", json_object_new_string(r));
        json_object_object_add(o, "Client", c);
        json_object_object_add(o, "Server", s);
        json_print(o, 0);
    } else {
        printf("\nServer:\n Version:  %s\n Revision: %s\n", v, r);
    }
    berth_free(v);
    berth_free(r);
    return 0;
}

int
cmd_info(struct ctx *x)
{
    berth_client_t *c = cli_client(x);
    char *v = NULL, *r = NULL;
    berth_error_t *e = NULL;
    if (berth_version(c, cli_call(x), &v, &r, &e) < 0)
        die_err(x, e);
    berth_plugin_t *p = NULL;
    size_t np = 0, nn = 0, nc = 0, ni = 0, nt = 0;
    if (berth_plugins(c, cli_call(x), NULL, 0, &p, &np, &e) < 0)
        die_err(x, e);
    berth_network_t *nw = NULL;
    if (berth_network_list(c, cli_call(x), NULL, 0, &nw, &nn, &e) < 0) {
        berth_error_free(e); /* containerd has no networks service */
        e = NULL;
        nn = 0;
    }
    berth_container_t *cts = NULL;
    berth_task_info_t *tasks = NULL;
    berth_image_t *imgs = NULL;
    if (berth_container_list(c, cli_call(x), NULL, 0, &cts, &nc, &e) < 0 ||
        berth_task_list(c, cli_call(x), &tasks, &nt, &e) < 0 ||
        berth_image_list(c, cli_call(x), NULL, 0, &imgs, &ni, &e) < 0)
        die_err(x, e);
    size_t running = 0, failed = 0;
    for (size_t i = 0; i < nt; i++)
        running += !strcmp(tasks[i].status, "running");
    for (size_t i = 0; i < np; i++)
        failed += p[i].init_error[0] != 0;
    int json = want_json(x);
    json_object *o = json_object_new_object(), *snaps = json_object_new_array(),
                *nets = json_object_new_array();
    for (size_t i = 0; i < np; i++)
        if (!strcmp(p[i].type, "io.containerd.snapshotter.v1") && !p[i].init_error[0])
            json_object_array_add(snaps, json_object_new_string(p[i].id));
    for (size_t i = 0; i < nn; i++)
        json_object_array_add(nets, json_object_new_string(nw[i].name));
    if (json) {
        json_object_object_add(o, "ServerVersion", json_object_new_string(v));
        json_object_object_add(o, "Revision", json_object_new_string(r));
        json_object_object_add(o, "Address", json_object_new_string(berth_client_address(c)));
        json_object_object_add(o, "Namespace", json_object_new_string(g.namespace_));
        json_object_object_add(o, "Containers", json_object_new_int64((int64_t)nc));
        json_object_object_add(o, "ContainersRunning", json_object_new_int64((int64_t)running));
        json_object_object_add(o, "Images", json_object_new_int64((int64_t)ni));
        json_object_object_add(o, "Plugins", json_object_new_int64((int64_t)np));
        json_object_object_add(o, "PluginsFailed", json_object_new_int64((int64_t)failed));
        json_object_object_add(o, "Snapshotters", snaps);
        json_object_object_add(o, "Networks", nets);
        json_object_object_add(o, "DataRoot", json_object_new_string(g.data_root));
        json_print(o, 0);
    } else {
        printf("Server Version: %s\nRevision: %s\nAddress: %s\nNamespace: %s\n", v, r,
               berth_client_address(c), g.namespace_);
        printf("Containers: %zu\n Running: %zu\n Stopped: %zu\nImages: %zu\n", nc, running,
               nc - running, ni);
        printf("Plugins: %zu (%zu failed)\nSnapshotters:", np, failed);
        for (size_t i = 0; i < json_object_array_length(snaps); i++)
            printf(" %s", json_object_get_string(json_object_array_get_idx(snaps, i)));
        printf("\nNetworks:");
        for (size_t i = 0; i < nn; i++)
            printf(" %s", nw[i].name);
        printf("\nCLI Data Root: %s\n", g.data_root);
        json_object_put(o);
    }
    berth_free(v);
    berth_free(r);
    berth_plugins_free(p, np);
    berth_networks_free(nw, nn);
    berth_containers_free(cts, nc);
    for (size_t i = 0; i < nt; i++)
        berth_task_info_free(&tasks[i]);
    berth_free(tasks);
    berth_images_free(imgs, ni);
    return 0;
}

int
cmd_modules(struct ctx *x)
{
    berth_module_t *m = NULL;
    size_t n = 0;
    berth_error_t *e = NULL;
    int json = want_json(x), quiet = fbool(x, "quiet");
    if (berth_modules(cli_client(x), cli_call(x), &m, &n, &e) < 0)
        die_err(x, e);
    struct table t;
    if (!json && !quiet)
        table_init(&t, 5, "TYPE", "ID", "VERSION", "STATUS", "FILE");
    for (size_t i = 0; i < n; i++) {
        if (quiet) {
            printf("%s\n", m[i].id);
        } else if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "URI", json_object_new_string(m[i].uri));
            json_object_object_add(o, "Type", json_object_new_string(m[i].type));
            json_object_object_add(o, "ID", json_object_new_string(m[i].id));
            json_object_object_add(o, "File", json_object_new_string(m[i].file));
            json_object_object_add(o, "Module", json_object_new_string(m[i].module));
            json_object_object_add(o, "Version", json_object_new_string(m[i].version));
            json_object_object_add(o, "ABI", json_object_new_string(m[i].abi));
            json_object_object_add(o, "Status", json_object_new_string(m[i].status));
            json_object_object_add(o, "Reason", json_object_new_string(m[i].reason));
            json_object_object_add(o, "InitOrder", json_object_new_int(m[i].init_order));
            json_object_object_add(o, "Requires", json_strs(m[i].requires, m[i].n_requires));
            json_object_object_add(o, "Exports", json_kv(m[i].exports, m[i].n_exports));
            json_print(o, 0);
        } else {
            table_row(&t, m[i].type, m[i].id, m[i].version, m[i].status, m[i].file);
        }
    }
    if (!json && !quiet)
        table_print(&t, stdout);
    berth_modules_free(m, n);
    return 0;
}

static void
print_changes(const char *what, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%s %s\n", what, v[i]);
}

/* berth reload: Modules.Reload, one line per change (as `berthd reload` prints them) */
int
cmd_reload(struct ctx *x)
{
    berth_modules_reload_t r;
    berth_error_t *e = NULL;
    if (berth_modules_reload(cli_client(x), cli_call_forever(x), &r, &e) < 0)
        die_err(x, e);
    print_changes("enabled", r.enabled, r.n_enabled);
    print_changes("disabled", r.disabled, r.n_disabled);
    print_changes("reloaded", r.reloaded, r.n_reloaded);
    print_changes("failed", r.failed, r.n_failed);
    print_changes("restart-needed", r.restart_needed, r.n_restart_needed);
    if (r.message[0] != '\0')
        printf("%s\n", r.message);
    int rc = r.n_failed > 0 ? 1 : 0;
    berth_modules_reload_free(&r);
    return rc;
}
