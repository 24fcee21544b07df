/* SPDX-License-Identifier: Apache-2.0 */
/* berth pull, push, images, rmi, tag, import, export */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

int
image_pull(struct ctx *x, const char *ref, int quiet, int plain_http, const char *platform,
           FILE *out)
{
    struct progress *pr = progress_new(quiet, out);
    berth_pull_opts_t o = {
        .platform = platform, .unpack = 1, .progress = progress_fn, .progress_user = pr};
    o.registry.plain_http = plain_http;
    berth_error_t *e = NULL;
    int rc = berth_image_pull(cli_client(x), cli_call_forever(x), ref, &o, NULL, &e);
    progress_done(pr);
    if (rc < 0)
        die_err(x, e);
    return 0;
}

int
cmd_pull(struct ctx *x)
{
    char *ref = normalize_image(x->argv[0]);
    image_pull(x, ref, fbool(x, "quiet"), fbool(x, "plain-http"), fstr(x, "platform"), stdout);
    printf("%s\n", ref);
    free(ref);
    return 0;
}

int
cmd_push(struct ctx *x)
{
    char *ref = normalize_image(x->argv[0]);
    struct progress *pr = progress_new(fbool(x, "quiet"), stdout);
    berth_push_opts_t o = {
        .platform = fstr(x, "platform"), .progress = progress_fn, .progress_user = pr};
    o.registry.plain_http = fbool(x, "plain-http");
    berth_error_t *e = NULL;
    int rc = berth_image_push(cli_client(x), cli_call_forever(x), ref, NULL, &o, &e);
    progress_done(pr);
    if (rc < 0)
        die_err(x, e);
    if (!fbool(x, "quiet"))
        printf("%s\n", ref);
    free(ref);
    return 0;
}

/* "docker.io/library/busybox:latest" -> repository "busybox", tag "latest" */
static void
split_name(const char *full, char *repo, size_t rlen, const char **tag)
{
    const char *f = familiar_name(full);
    const char *slash = strrchr(f, '/');
    const char *at = strchr(slash ? slash : f, '@');
    const char *colon = strrchr(slash ? slash : f, ':');
    const char *cut = at ? at : colon;
    *tag = at ? "<none>" : colon ? colon + 1 : "<none>";
    snprintf(repo, rlen, "%.*s", cut ? (int)(cut - f) : (int)strlen(f), f);
}

int
cmd_images(struct ctx *x)
{
    berth_image_t *imgs = NULL;
    size_t n = 0;
    berth_error_t *e = NULL;
    berth_client_t *c = cli_client(x);
    if (berth_image_list(c, cli_call(x), NULL, 0, &imgs, &n, &e) < 0)
        die_err(x, e);
    const char *fmt = fstr(x, "format");
    int json = fmt && !strcmp(fmt, "json");
    if (fmt && !json && strcmp(fmt, "table"))
        die("unknown --format \"%s\": table or json", fmt);
    struct table t;
    if (!fbool(x, "quiet") && !json)
        table_init(&t, 5, "REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED");
    for (size_t i = 0; i < n; i++) {
        if (fbool(x, "quiet")) {
            printf("%s\n", imgs[i].name);
            continue;
        }
        int64_t size = 0;
        if (berth_image_size(c, cli_call(x), imgs[i].name, &size, &e) < 0) {
            berth_error_free(e); /* a half-pulled image: show it without a size */
            e = NULL;
            size = -1;
        }
        char repo[512], sz[16] = "N/A", ago[64], dg[80];
        const char *tag;
        split_name(imgs[i].name, repo, sizeof repo, &tag);
        if (size >= 0)
            human_size(size, sz, sizeof sz);
        human_ago(imgs[i].created_at_ns, ago, sizeof ago);
        snprintf(dg, sizeof dg, "%s", imgs[i].target.digest);
        if (!fbool(x, "no-trunc") && !strncmp(dg, "sha256:", 7))
            dg[7 + 12] = 0;
        if (json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "Name", json_object_new_string(imgs[i].name));
            json_object_object_add(o, "Repository", json_object_new_string(repo));
            json_object_object_add(o, "Tag", json_object_new_string(tag));
            json_object_object_add(o, "Digest", json_object_new_string(imgs[i].target.digest));
            json_object_object_add(o, "MediaType",
                                   json_object_new_string(imgs[i].target.media_type));
            json_object_object_add(o, "Size", json_object_new_int64(size));
            json_object_object_add(o, "CreatedSince", json_object_new_string(ago));
            json_object_object_add(o, "Labels", json_kv(imgs[i].labels, imgs[i].n_labels));
            json_print(o, 0);
        } else {
            table_row(&t, repo, tag, dg, sz, ago);
        }
    }
    if (!fbool(x, "quiet") && !json)
        table_print(&t, stdout);
    berth_images_free(imgs, n);
    return 0;
}

int
cmd_rmi(struct ctx *x)
{
    int rc = 0;
    for (int i = 0; i < x->argc; i++) {
        char *ref = normalize_image(x->argv[i]);
        berth_error_t *e = NULL;
        if (berth_image_remove(cli_client(x), cli_call(x), ref, 0, &e) < 0) {
            if (!(fbool(x, "force") && e->code == BERTH_ENOTFOUND)) {
                print_err(x, e);
                rc = 1;
            }
            berth_error_free(e);
        } else {
            printf("Untagged: %s\n", ref);
        }
        free(ref);
    }
    return rc;
}

int
cmd_tag(struct ctx *x)
{
    char *src = normalize_image(x->argv[0]), *dst = normalize_image(x->argv[1]);
    berth_error_t *e = NULL;
    if (berth_image_tag(cli_client(x), cli_call(x), src, dst, 1, &e) < 0)
        die_err(x, e);
    free(src);
    free(dst);
    return 0;
}

int
cmd_import(struct ctx *x)
{
    const char *file = x->argv[0];
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0)
        die("open %s: %m", file);
    struct progress *pr = progress_new(fbool(x, "quiet"), stdout);
    berth_import_opts_t o = {.base_name = fstr(x, "base-name"),
                             .all_platforms = fbool(x, "all-platforms"),
                             .platform = fstr(x, "platform"),
                             .unpack = 1,
                             .progress = progress_fn,
                             .progress_user = pr};
    berth_image_t *imgs = NULL;
    size_t n = 0;
    berth_error_t *e = NULL;
    int rc = berth_image_import(cli_client(x), cli_call_forever(x), fd, &o, &imgs, &n, &e);
    progress_done(pr);
    if (rc < 0)
        die_err(x, e);
    for (size_t i = 0; i < n; i++)
        printf(fbool(x, "quiet") ? "%s\n" : "Loaded image: %s\n", imgs[i].name);
    berth_images_free(imgs, n);
    if (fd != STDIN_FILENO)
        close(fd);
    return 0;
}

int
cmd_export(struct ctx *x)
{
    const char *out = fstr(x, "output");
    int fd = STDOUT_FILENO;
    if (out && strcmp(out, "-")) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            die("open %s: %m", out);
    } else if (isatty(STDOUT_FILENO)) {
        die("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
    }
    char **names = calloc((size_t)x->argc, sizeof *names);
    if (!names)
        die("out of memory");
    for (int i = 0; i < x->argc; i++)
        names[i] = normalize_image(x->argv[i]);
    berth_export_opts_t o = {.platform = fstr(x, "platform"),
                             .all_platforms = fbool(x, "all-platforms")};
    berth_error_t *e = NULL;
    if (berth_image_export(cli_client(x), cli_call_forever(x), (const char *const *)names,
                           (size_t)x->argc, fd, &o, &e) < 0) {
        if (fd != STDOUT_FILENO)
            unlink(out);
        die_err(x, e);
    }
    for (int i = 0; i < x->argc; i++)
        free(names[i]);
    free(names);
    if (fd != STDOUT_FILENO && close(fd) < 0)
        die("write %s: %m", out);
    return 0;
}
