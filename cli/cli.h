/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `berth` CLI: one command table (main.c) drives parsing, --help, the man page and bash completion; the
 * handlers (images.c, containers.c, logs.c, misc.c) use libberth-client's public API only.
 */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <berth/client.h>

/* docker's exit status for the CLI's own errors */
#define CLI_EXIT 125

enum flag_type { F_BOOL, F_STR, F_INT, F_LIST };

struct flag {
    const char *name; /* long name, without "--" */
    char shrt;        /* 0: none */
    int type;         /* enum flag_type */
    const char *arg;  /* the value's name in help ("string", "list") */
    const char *def;  /* default shown in help and returned when unset (F_STR, F_INT) */
    const char *help;
};

struct fval {
    int set;
    const char *s;
    const char **list;
    size_t n;
};

struct ctx;
struct command {
    const char *group; /* "volume", "network", or NULL */
    const char *name;
    const char *synopsis; /* after "berth [group] name " */
    const char *summary;
    const struct flag *flags; /* ends with {0} */
    int (*fn)(struct ctx *);
    int min_args, max_args; /* max -1: unbounded */
    int stop_at_arg; /* flags end at the first argument (run, exec: the rest is the command) */
    const char
        *complete; /* what the arguments name: "container", "image", "volume", "network", "file" */
    int hidden;
};

struct globals {
    const char *address;
    const char *namespace_;
    const char *data_root;
};
extern struct globals g;

struct ctx {
    const struct command *cmd;
    struct fval *vals;
    int argc;
    char **argv;
    berth_client_t *client;
    berth_call_t call;
};

/* flag values by long name (abort on a name the command does not have: a programming error) */
int fbool(struct ctx *x, const char *name);
const char *fstr(struct ctx *x, const char *name);
long fint(struct ctx *x, const char *name);
const char **flist(struct ctx *x, const char *name, size_t *n);
int fset(struct ctx *x, const char *name);

berth_client_t *cli_client(struct ctx *x);
const berth_call_t *cli_call(struct ctx *x);
/* a call without timeout, for waits and streams */
const berth_call_t *cli_call_forever(struct ctx *x);

/* exactly one line "berth: ..." on stderr */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
__attribute__((noreturn)) void die_err(struct ctx *x, berth_error_t *e);
__attribute__((format(printf, 1, 2))) void warnx1(const char *fmt, ...);
void warn_err(struct ctx *x, berth_error_t *e);
void print_err(struct ctx *x, berth_error_t *e);

/* docker's names: "busybox" -> "docker.io/library/busybox:latest"; returns malloc'd */
char *normalize_image(const char *in);
/* the other way for display: "docker.io/library/busybox:latest" -> "busybox:latest" (pointer into in) */
const char *familiar_name(const char *full);
char *random_hex(size_t n);
void human_size(int64_t bytes, char *buf, size_t len);
void human_ago(int64_t then_ns, char *buf, size_t len); /* "5 seconds ago" */
void human_duration(int64_t ns, char *buf, size_t len); /* "5 seconds" */
int64_t now_ns(void);
void fmt_time(int64_t ns, char *buf, size_t len); /* RFC 3339 with nanoseconds, UTC */
const char *kv_get(const berth_kv_t *kv, size_t n, const char *key);
int parse_signal(const char *s);

/* aligned columns, as docker prints them */
struct table {
    size_t ncols, nrows, cap;
    char **cells;
};
void table_init(struct table *t, size_t ncols, ...);
void table_row(struct table *t, ...); /* ncols strings, copied */
void table_print(struct table *t, FILE *f);

/* logs: the CRI log of a container under the data root */
char *log_dir(const char *ns, const char *id);
char *log_path(const char *ns, const char *id);
char *log_uri(const char *ns, const char *id);
/* the file a log URI names ("file:///x?y" -> "/x"), malloc'd; NULL when it is not a file URI */
char *log_uri_path(const char *uri);
void log_dir_remove(const char *ns, const char *id);
/* copies the log at path to stdout/stderr; follows (until the container's task exits) when follow */
struct log_opts {
    long tail; /* -1: all */
    int timestamps;
    int follow;
    int64_t since_ns; /* only lines from this time on (start -a, attach); 0: all */
    int exit_status;  /* out: the container's status when following ended with its exit */
};
int log_show(struct ctx *x, const char *id, const char *path, const struct log_opts *o);

/* progress display of a pull, push or import */
struct progress;
struct progress *progress_new(int quiet, FILE *out);
void progress_fn(void *user, const berth_progress_t *p);
void progress_done(struct progress *pr);

/* JSON output */
struct json_object;
struct json_object *json_kv(const berth_kv_t *kv, size_t n);
void json_print(struct json_object *o, int pretty);

/* the handlers */
int cmd_pull(struct ctx *x);
int cmd_push(struct ctx *x);
int cmd_images(struct ctx *x);
int cmd_rmi(struct ctx *x);
int cmd_tag(struct ctx *x);
int cmd_import(struct ctx *x);
int cmd_export(struct ctx *x);
int cmd_run(struct ctx *x);
int cmd_create(struct ctx *x);
int cmd_start(struct ctx *x);
int cmd_stop(struct ctx *x);
int cmd_kill(struct ctx *x);
int cmd_rm(struct ctx *x);
int cmd_ps(struct ctx *x);
int cmd_logs(struct ctx *x);
int cmd_exec(struct ctx *x);
int cmd_attach(struct ctx *x);
int cmd_inspect(struct ctx *x);
int cmd_volume_create(struct ctx *x);
int cmd_volume_ls(struct ctx *x);
int cmd_volume_inspect(struct ctx *x);
int cmd_volume_rm(struct ctx *x);
int cmd_volume_prune(struct ctx *x);
int cmd_network_create(struct ctx *x);
int cmd_network_ls(struct ctx *x);
int cmd_network_inspect(struct ctx *x);
int cmd_network_rm(struct ctx *x);
int cmd_events(struct ctx *x);
int cmd_version(struct ctx *x);
int cmd_info(struct ctx *x);
int cmd_modules(struct ctx *x);
int cmd_reload(struct ctx *x);
int cmd_reap(struct ctx *x);

/* pulls ref with progress (used by run and create for a missing image) */
int image_pull(struct ctx *x, const char *ref, int quiet, int plain_http, const char *platform,
               FILE *out);
struct json_object *json_volume(const berth_volume_t *v);
struct json_object *json_network(const berth_network_t *n);
struct json_object *json_image(struct ctx *x, const berth_image_t *img);

#endif
