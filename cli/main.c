/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berth: the command line of berthd. The command table below is the one source of the commands, their
 * flags and help: the parser, --help, `berth __gen man` (berth.1) and `berth __gen bash-completion` all
 * read it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0"
#endif

struct globals g;

static int cmd_gen(struct ctx *x);

/* ---- the command table ------------------------------------------------------------------------------ */

#define FORMAT_FLAG                                                    \
    {                                                                  \
        "format", 0, F_STR, "string", NULL,                            \
            "Output format: \"table\" or \"json\" (one object a line)" \
    }
#define QUIET_FLAG(what)                       \
    {                                          \
        "quiet", 'q', F_BOOL, NULL, NULL, what \
    }
#define PLAIN_HTTP_FLAG                                                                   \
    {                                                                                     \
        "plain-http", 0, F_BOOL, NULL, NULL, "Talk to the registry over http:// (no TLS)" \
    }
#define PLATFORM_FLAG                                                          \
    {                                                                          \
        "platform", 0, F_STR, "string", NULL, "The platform (\"linux/amd64\")" \
    }

/* run and create share these */
#define CREATE_FLAGS                                                                              \
    {"name",   0,    F_STR,                                                                       \
     "string", NULL, "The container's name (and id); default: 12 random hex digits"},             \
        {"interactive", 'i', F_BOOL, NULL, NULL, "Keep stdin open"},                              \
        {"tty", 't', F_BOOL, NULL, NULL, "Allocate a pseudo-terminal"},                           \
        {"env", 'e', F_LIST, "K=V", NULL, "Set an environment variable (repeatable)"},            \
        {"workdir", 'w', F_STR, "dir", NULL, "The working directory inside the container"},       \
        {"user", 'u', F_STR, "user[:group]", NULL, "The user (name or uid) and group to run as"}, \
        {"hostname", 'h', F_STR, "name", NULL, "The container's host name"},                      \
        {"network", 0,    F_STR,                                                                  \
         "name",    NULL, "Networks to join (\"name[,name]\", \"host\", \"none\")"},              \
        {"publish",         'p',  F_LIST,                                                         \
         "[ip:]hport:port", NULL, "Publish a container's port on the host (repeatable)"},         \
        {"volume",         'v',  F_LIST,                                                          \
         "src:/path[:ro]", NULL, "Mount a named volume or a host directory (repeatable)"},        \
        {"memory", 'm', F_STR, "bytes", NULL, "Memory limit (with a unit: b, k, m, g)"},          \
        {"cpus", 0, F_STR, "number", NULL, "CPU quota in CPUs (\"1.5\")"},                        \
        {"read-only", 0, F_BOOL, NULL, NULL, "Mount the container's root filesystem read-only"},  \
        {"privileged", 0,    F_BOOL,                                                              \
         NULL,         NULL, "Every capability, all devices allowed, nothing masked"},            \
        {"cap-add", 0, F_LIST, "cap", NULL, "Add a Linux capability (repeatable)"},               \
        {"cap-drop", 0, F_LIST, "cap", NULL, "Drop a Linux capability (repeatable)"},             \
        {"label", 'l', F_LIST, "K=V", NULL, "Set a label on the container (repeatable)"},         \
        {"entrypoint", 0, F_STR, "cmd", NULL, "Replace the image's entrypoint (\"\": none)"},     \
        {"runtime", 0, F_STR, "name", BERTH_CLIENT_DEFAULT_RUNTIME, "The runtime"},               \
        {"snapshotter", 0, F_STR, "name", BERTH_CLIENT_DEFAULT_SNAPSHOTTER, "The snapshotter"},   \
        {"pull",   0,         F_STR,                                                              \
         "policy", "missing", "Pull the image \"missing\", \"always\" or \"never\""},             \
        {"quiet", 'q', F_BOOL, NULL, NULL, "No pull progress"}, PLAIN_HTTP_FLAG

static const struct flag run_flags[] = {
    {"detach", 'd', F_BOOL, NULL, NULL, "Run in the background and print the container's id"},
    {"rm", 0, F_BOOL, NULL, NULL, "Remove the container (and its snapshot) when it exits"},
    CREATE_FLAGS,
    {0}};
static const struct flag create_flags[] = {CREATE_FLAGS, {0}};
static const struct flag pull_flags[] = {
    PLAIN_HTTP_FLAG, QUIET_FLAG("No progress, only the name"), PLATFORM_FLAG, {0}};
static const struct flag push_flags[] = {
    PLAIN_HTTP_FLAG, QUIET_FLAG("No progress"), PLATFORM_FLAG, {0}};
static const struct flag images_flags[] = {QUIET_FLAG("Only the names"),
                                           FORMAT_FLAG,
                                           {"no-trunc", 0, F_BOOL, NULL, NULL, "Full digests"},
                                           {0}};
static const struct flag rmi_flags[] = {
    {"force", 'f', F_BOOL, NULL, NULL, "No error for an image that does not exist"}, {0}};
static const struct flag no_flags[] = {{0}};
static const struct flag import_flags[] = {
    QUIET_FLAG("No progress, only the names"),
    {"base-name", 0, F_STR, "name", NULL, "Name images the archive does not name"},
    {"all-platforms", 0, F_BOOL, NULL, NULL, "Import every platform"},
    PLATFORM_FLAG,
    {0}};
static const struct flag export_flags[] = {
    {"output", 'o', F_STR, "file", NULL, "Write to a file instead of stdout"},
    {"all-platforms", 0, F_BOOL, NULL, NULL, "Export every platform"},
    PLATFORM_FLAG,
    {0}};
static const struct flag start_flags[] = {
    {"attach", 'a', F_BOOL, NULL, NULL, "Follow the output and exit with the container's status"},
    {0}};
static const struct flag stop_flags[] = {
    {"time", 't', F_INT, "seconds", "10",
     "Seconds to wait for the container to stop before SIGKILL"},
    {"signal", 's', F_STR, "signal", "SIGTERM", "The signal that asks it to stop"},
    {0}};
static const struct flag kill_flags[] = {
    {"signal", 's', F_STR, "signal", "SIGKILL", "The signal to send"}, {0}};
static const struct flag rm_flags[] = {
    {"force", 'f', F_BOOL, NULL, NULL, "Kill and remove a running container"}, {0}};
static const struct flag ps_flags[] = {
    {"all", 'a', F_BOOL, NULL, NULL, "Show every container (default: the running ones)"},
    QUIET_FLAG("Only the ids"),
    FORMAT_FLAG,
    {"no-trunc", 0, F_BOOL, NULL, NULL, "Do not truncate the output"},
    {0}};
static const struct flag logs_flags[] = {
    {"follow", 'f', F_BOOL, NULL, NULL, "Follow the log until the container exits"},
    {"tail", 'n', F_STR, "N", "all", "Only the last N lines"},
    {"timestamps", 't', F_BOOL, NULL, NULL, "Show each line's time"},
    {0}};
static const struct flag exec_flags[] = {
    {"detach", 'd', F_BOOL, NULL, NULL, "Run in the background"},
    {"interactive", 'i', F_BOOL, NULL, NULL, "Keep stdin open"},
    {"tty", 't', F_BOOL, NULL, NULL, "Allocate a pseudo-terminal"},
    {"env", 'e', F_LIST, "K=V", NULL, "Set an environment variable (repeatable)"},
    {"workdir", 'w', F_STR, "dir", NULL, "The working directory"},
    {"user", 'u', F_STR, "user[:group]", NULL, "The user to run as"},
    {0}};
static const struct flag attach_flags[] = {
    {"no-stdin", 0, F_BOOL, NULL, NULL, "Do not attach stdin"}, {0}};
static const struct flag inspect_flags[] = {
    {"type", 0, F_STR, "type", NULL, "Only this kind: container, image, volume, network"}, {0}};
static const struct flag vcreate_flags[] = {
    {"driver", 'd', F_STR, "name", "local", "The volume driver"},
    {"opt", 'o', F_LIST, "K=V", NULL, "A driver option (repeatable)"},
    {"label", 0, F_LIST, "K=V", NULL, "A label (repeatable)"},
    {0}};
static const struct flag vls_flags[] = {
    QUIET_FLAG("Only the names"),
    FORMAT_FLAG,
    {"filter", 'f', F_LIST, "filter", NULL, "containerd filter (\"labels.x==y\")"},
    {0}};
static const struct flag vrm_flags[] = {
    {"force", 'f', F_BOOL, NULL, NULL, "Remove a volume even when containers name it"}, {0}};
static const struct flag vprune_flags[] = {
    {"force", 'f', F_BOOL, NULL, NULL, "Do not ask (berth never asks)"},
    {"filter", 0, F_LIST, "filter", NULL, "containerd filter"},
    {0}};
static const struct flag ncreate_flags[] = {
    {"subnet", 0, F_STR, "cidr", NULL, "The subnet (\"10.232.0.0/24\")"},
    {"gateway", 0, F_STR, "ip", NULL, "The gateway address"},
    {"bridge", 0, F_STR, "name", NULL, "The Linux bridge's name"},
    {"internal", 0, F_BOOL, NULL, NULL, "No masquerade to the outside"},
    {"label", 0, F_LIST, "K=V", NULL, "A label (repeatable)"},
    {"config-file", 0, F_STR, "file", NULL, "A whole CNI conflist instead of a bridge"},
    {0}};
static const struct flag nls_flags[] = {QUIET_FLAG("Only the names"), FORMAT_FLAG, {0}};
static const struct flag events_flags[] = {
    {"filter", 'f', F_LIST, "filter", NULL, "containerd filter (topic==\"/tasks/exit\")"},
    FORMAT_FLAG,
    {0}};
static const struct flag fmt_flags[] = {FORMAT_FLAG, {0}};
static const struct flag modules_flags[] = {QUIET_FLAG("Only the ids"), FORMAT_FLAG, {0}};

static const struct command commands[] = {
    {NULL, "pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Pull an image from a registry", pull_flags,
     cmd_pull, 1, 1, 0, "image", 0},
    {NULL, "push", "[OPTIONS] NAME[:TAG]", "Push an image to a registry", push_flags, cmd_push, 1,
     1, 0, "image", 0},
    {NULL, "images", "[OPTIONS]", "List images", images_flags, cmd_images, 0, 0, 0, NULL, 0},
    {NULL, "rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove images", rmi_flags, cmd_rmi, 1, -1, 0,
     "image", 0},
    {NULL, "tag", "SOURCE TARGET", "Give an image another name", no_flags, cmd_tag, 2, 2, 0,
     "image", 0},
    {NULL, "import", "[OPTIONS] FILE|-", "Import images from an OCI or docker archive",
     import_flags, cmd_import, 1, 1, 0, "file", 0},
    {NULL, "export", "[OPTIONS] IMAGE [IMAGE...]", "Write images to an OCI archive", export_flags,
     cmd_export, 1, -1, 0, "image", 0},
    {NULL, "run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a container", run_flags,
     cmd_run, 1, -1, 1, "image", 0},
    {NULL, "create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a container", create_flags,
     cmd_create, 1, -1, 1, "image", 0},
    {NULL, "start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start containers", start_flags,
     cmd_start, 1, -1, 0, "container", 0},
    {NULL, "stop", "[OPTIONS] CONTAINER [CONTAINER...]",
     "Stop containers (the signal, then SIGKILL after the timeout)", stop_flags, cmd_stop, 1, -1, 0,
     "container", 0},
    {NULL, "kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Send a signal to containers", kill_flags,
     cmd_kill, 1, -1, 0, "container", 0},
    {NULL, "rm", "[OPTIONS] CONTAINER [CONTAINER...]",
     "Remove containers, their snapshots and logs", rm_flags, cmd_rm, 1, -1, 0, "container", 0},
    {NULL, "ps", "[OPTIONS]", "List containers", ps_flags, cmd_ps, 0, 0, 0, NULL, 0},
    {NULL, "logs", "[OPTIONS] CONTAINER", "Show a detached container's output", logs_flags,
     cmd_logs, 1, 1, 0, "container", 0},
    {NULL, "exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", "Run a command in a running container",
     exec_flags, cmd_exec, 2, -1, 1, "container", 0},
    {NULL, "attach", "[OPTIONS] CONTAINER",
     "Attach to a detached container's stdin and output (run -dit)", attach_flags, cmd_attach, 1, 1,
     0, "container", 0},
    {NULL, "inspect", "[OPTIONS] NAME [NAME...]",
     "Show containers, images, volumes or networks as JSON", inspect_flags, cmd_inspect, 1, -1, 0,
     "container", 0},
    {"volume", "create", "[OPTIONS] [NAME]", "Create a volume", vcreate_flags, cmd_volume_create, 0,
     1, 0, NULL, 0},
    {"volume", "ls", "[OPTIONS]", "List volumes", vls_flags, cmd_volume_ls, 0, 0, 0, NULL, 0},
    {"volume", "inspect", "NAME [NAME...]", "Show volumes as JSON", no_flags, cmd_volume_inspect, 1,
     -1, 0, "volume", 0},
    {"volume", "rm", "[OPTIONS] NAME [NAME...]", "Remove volumes", vrm_flags, cmd_volume_rm, 1, -1,
     0, "volume", 0},
    {"volume", "prune", "[OPTIONS]", "Remove the volumes no container names", vprune_flags,
     cmd_volume_prune, 0, 0, 0, NULL, 0},
    {"network", "create", "[OPTIONS] NAME", "Create a bridge network", ncreate_flags,
     cmd_network_create, 1, 1, 0, NULL, 0},
    {"network", "ls", "[OPTIONS]", "List networks", nls_flags, cmd_network_ls, 0, 0, 0, NULL, 0},
    {"network", "inspect", "NAME [NAME...]", "Show networks as JSON", no_flags, cmd_network_inspect,
     1, -1, 0, "network", 0},
    {"network", "rm", "NAME [NAME...]", "Remove networks", no_flags, cmd_network_rm, 1, -1, 0,
     "network", 0},
    {NULL, "events", "[OPTIONS]", "Print the daemon's events as they happen", events_flags,
     cmd_events, 0, 0, 0, NULL, 0},
    {NULL, "version", "[OPTIONS]", "Show the client's and the daemon's versions", fmt_flags,
     cmd_version, 0, 0, 0, NULL, 0},
    {NULL, "info", "[OPTIONS]", "Show what the daemon runs", fmt_flags, cmd_info, 0, 0, 0, NULL, 0},
    {NULL, "modules", "[OPTIONS]", "List berthd's modules", modules_flags, cmd_modules, 0, 0, 0,
     NULL, 0},
    {NULL, "reload", "[OPTIONS]", "Make berthd re-read its config and apply the difference",
     no_flags, cmd_reload, 0, 0, 0, NULL, 0},
    {NULL, "__gen", "man|bash-completion|commands", "Generate the man page or the completion",
     no_flags, cmd_gen, 1, 1, 0, NULL, 1},
    {NULL, "__reap", "CONTAINER", "Wait for a run -d --rm container and remove it", no_flags,
     cmd_reap, 1, 1, 0, NULL, 1},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct flag global_flags[] = {
    {"address", 0, F_STR, "path", NULL,
     "berthd's socket (env BERTH_ADDRESS; default " BERTH_CLIENT_DEFAULT_ADDRESS ")"},
    {"namespace", 'n', F_STR, "name", NULL,
     "The namespace (env BERTH_NAMESPACE; default \"default\")"},
    {"data-root", 0, F_STR, "dir", NULL,
     "Where the CLI keeps containers' logs (env BERTH_DATA_ROOT; default /var/lib/berth/cli)"},
    {0}};

/* ---- errors ------------------------------------------------------------------------------------------ */

static void
vline(const char *fmt, va_list ap)
{
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fflush(stdout);
    fprintf(stderr, "berth: %s\n", buf);
}

void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
    exit(CLI_EXIT);
}

void
warnx1(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

/* A daemon that is not there reads "cannot connect to berthd at PATH: no such file". */
void
print_err(struct ctx *x, berth_error_t *e)
{
    const char *msg = e && e->message ? e->message : "unknown error";
    /* the library's own connect failure names the socket; a server's Unavailable (a registry that is not
     * there) is the server's message */
    if (e && e->code == BERTH_EUNAVAILABLE && x && x->client &&
        strstr(msg, berth_client_address(x->client))) {
        const char *cause = strrchr(msg, ':');
        char low[256];
        snprintf(low, sizeof low, "%s", cause ? cause + 2 : msg);
        if (low[0] >= 'A' && low[0] <= 'Z')
            low[0] = (char)(low[0] - 'A' + 'a');
        if (strstr(low, "no such file or directory"))
            strcpy(low, "no such file");
        warnx1("cannot connect to berthd at %s: %s", berth_client_address(x->client), low);
        return;
    }
    warnx1("%s", msg);
}

void
warn_err(struct ctx *x, berth_error_t *e)
{
    print_err(x, e);
    berth_error_free(e);
}

void
die_err(struct ctx *x, berth_error_t *e)
{
    print_err(x, e);
    berth_error_free(e);
    exit(CLI_EXIT);
}

/* ---- flags ------------------------------------------------------------------------------------------- */

static int
flag_index(const struct flag *f, const char *name)
{
    for (int i = 0; f[i].name; i++)
        if (!strcmp(f[i].name, name))
            return i;
    return -1;
}

static struct fval *
val(struct ctx *x, const char *name)
{
    int i = flag_index(x->cmd->flags, name);
    if (i < 0) {
        fprintf(stderr, "berth: internal: command %s has no flag %s\n", x->cmd->name, name);
        abort();
    }
    return &x->vals[i];
}

int
fbool(struct ctx *x, const char *name)
{
    return val(x, name)->set;
}

int
fset(struct ctx *x, const char *name)
{
    return val(x, name)->set;
}

const char *
fstr(struct ctx *x, const char *name)
{
    struct fval *v = val(x, name);
    return v->set ? v->s : x->cmd->flags[flag_index(x->cmd->flags, name)].def;
}

long
fint(struct ctx *x, const char *name)
{
    const char *s = fstr(x, name);
    if (!s)
        return 0;
    char *end;
    long n = strtol(s, &end, 10);
    if (!*s || *end)
        die("invalid value \"%s\" for --%s: not a number", s, name);
    return n;
}

const char **
flist(struct ctx *x, const char *name, size_t *n)
{
    struct fval *v = val(x, name);
    *n = v->n;
    return v->list;
}

static void
store(struct fval *v, const struct flag *f, const char *value)
{
    v->set = 1;
    if (f->type == F_LIST) {
        v->list = realloc(v->list, (v->n + 1) * sizeof *v->list);
        if (!v->list)
            die("out of memory");
        v->list[v->n++] = value;
    } else {
        v->s = value;
    }
}

static void usage(const struct command *c, FILE *f);

/* Parses one flag at argv[*i] against f (values in v); 1 when it was one of f's, 0 when not. */
static int
parse_flag(const struct flag *f, struct fval *v, int argc, char **argv, int *i, const char *cmdname)
{
    const char *a = argv[*i];
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        for (int k = 0; f[k].name; k++) {
            if (strlen(f[k].name) != len || strncmp(f[k].name, name, len))
                continue;
            if (f[k].type == F_BOOL) {
                if (eq && strcmp(eq + 1, "true") && strcmp(eq + 1, "false"))
                    die("invalid value \"%s\" for --%s: true or false", eq + 1, f[k].name);
                if (!eq || !strcmp(eq + 1, "true"))
                    v[k].set = 1;
                return 1;
            }
            if (eq) {
                store(&v[k], &f[k], eq + 1);
            } else {
                if (*i + 1 >= argc)
                    die("flag needs an argument: --%s (see 'berth %s --help')", f[k].name, cmdname);
                store(&v[k], &f[k], argv[++*i]);
            }
            return 1;
        }
        return 0;
    }
    /* short flags, combinable: -dit, -e K=V, -eK=V */
    for (const char *p = a + 1; *p; p++) {
        int k;
        for (k = 0; f[k].name && f[k].shrt != *p; k++)
            ;
        if (!f[k].name) {
            if (p == a + 1)
                return 0;
            die("unknown shorthand flag: '%c' in %s (see 'berth %s --help')", *p, a, cmdname);
        }
        if (f[k].type == F_BOOL) {
            v[k].set = 1;
            continue;
        }
        if (p[1]) {
            store(&v[k], &f[k], p[1] == '=' ? p + 2 : p + 1);
        } else {
            if (*i + 1 >= argc)
                die("flag needs an argument: '%c' in %s (see 'berth %s --help')", *p, a, cmdname);
            store(&v[k], &f[k], argv[++*i]);
        }
        return 1;
    }
    return 1;
}

static struct fval gvals[4];

static void
apply_globals(void)
{
    g.address = gvals[0].set ? gvals[0].s : getenv("BERTH_ADDRESS");
    if (!g.address || !*g.address)
        g.address = BERTH_CLIENT_DEFAULT_ADDRESS;
    g.namespace_ = gvals[1].set ? gvals[1].s : getenv("BERTH_NAMESPACE");
    if (!g.namespace_ || !*g.namespace_)
        g.namespace_ = "default";
    const char *root = gvals[2].set ? gvals[2].s : getenv("BERTH_DATA_ROOT");
    if (!root || !*root)
        root = "/var/lib/berth/cli";
    if (root[0] != '/') { /* the shim needs an absolute path in the log URI */
        char *cwd = getcwd(NULL, 0), *abs;
        if (!cwd || asprintf(&abs, "%s/%s", cwd, root) < 0)
            die("out of memory");
        free(cwd);
        root = abs;
    }
    g.data_root = root;
}

/* ---- help ---------------------------------------------------------------------------------------------- */

static void
flag_lines(const struct flag *f, FILE *out)
{
    for (int k = 0; f[k].name; k++) {
        char left[80];
        int n = f[k].shrt ? snprintf(left, sizeof left, "-%c, --%s", f[k].shrt, f[k].name)
                          : snprintf(left, sizeof left, "    --%s", f[k].name);
        if (f[k].arg)
            snprintf(left + n, sizeof left - (size_t)n, " %s", f[k].arg);
        fprintf(out, "  %-34s %s", left, f[k].help);
        if (f[k].def)
            fprintf(out, " (default \"%s\")", f[k].def);
        fputc('\n', out);
    }
}

static void
full_name(const struct command *c, char *buf, size_t len)
{
    if (c->group)
        snprintf(buf, len, "%s %s", c->group, c->name);
    else
        snprintf(buf, len, "%s", c->name);
}

static void
usage(const struct command *c, FILE *f)
{
    char name[64];
    full_name(c, name, sizeof name);
    fprintf(f, "Usage: berth %s %s\n\n%s\n\nOptions:\n", name, c->synopsis, c->summary);
    flag_lines(c->flags, f);
    fprintf(f, "      --help                         Show this help\n");
    fprintf(f, "\nGlobal options (before or after the command):\n");
    flag_lines(global_flags, f);
}

static void
main_usage(FILE *f)
{
    fprintf(
        f,
        "Usage: berth [OPTIONS] COMMAND [ARG...]\n\n"
        "berth is the command line of berthd, a container daemon that speaks containerd's API.\n\n"
        "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (commands[i].hidden || commands[i].group)
            continue;
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "  %-10s %s\n  %-10s %s\n", "volume",
            "Manage volumes (create, ls, inspect, rm, prune)", "network",
            "Manage networks (create, ls, inspect, rm)");
    fprintf(f, "\nGlobal options:\n");
    flag_lines(global_flags, f);
    fprintf(f, "  -h, --help                         Show this help\n"
               "\nRun 'berth COMMAND --help' for a command's options.\n");
}

static void
group_usage(const char *group, FILE *f)
{
    fprintf(f, "Usage: berth %s COMMAND\n\nCommands:\n", group);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (commands[i].group && !strcmp(commands[i].group, group))
            fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'berth %s COMMAND --help' for a command's options.\n", group);
}

/* ---- generation: the man page, bash completion, the command list ------------------------------------ */

static void
roff(const char *s, FILE *f)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static void
man_flags(const struct flag *f, FILE *o)
{
    for (int k = 0; f[k].name; k++) {
        fputs(".TP\n", o);
        if (f[k].shrt)
            fprintf(o, "\\fB\\-%c\\fR, ", f[k].shrt);
        fputs("\\fB\\-\\-", o);
        roff(f[k].name, o);
        fputs("\\fR", o);
        if (f[k].arg) {
            fputs(" \\fI", o);
            roff(f[k].arg, o);
            fputs("\\fR", o);
        }
        fputc('\n', o);
        roff(f[k].help, o);
        if (f[k].def) {
            fputs(" (default: ", o);
            roff(f[k].def, o);
            fputs(")", o);
        }
        fputc('\n', o);
    }
}

static void
gen_man(FILE *o)
{
    fprintf(o,
            ".\\\" SPDX-License-Identifier: Apache-2.0\n"
            ".\\\" Generated by `berth __gen man` from the command table in cli/main.c.\n"
            ".TH BERTH 1 \"\" \"berth %s\" \"User Commands\"\n"
            ".SH NAME\nberth \\- the command line of berthd, a container daemon\n"
            ".SH SYNOPSIS\n\\fBberth\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARG\\fR...]\n"
            ".SH DESCRIPTION\n\\fBberth\\fR pulls, pushes and imports images, runs containers and "
            "manages volumes and networks on \\fBberthd\\fR(8), over containerd's gRPC API on the "
            "daemon's unix socket. Its commands and flags follow docker's and nerdctl's.\n"
            ".SH GLOBAL OPTIONS\n",
            BERTH_VERSION);
    man_flags(global_flags, o);
    fputs(".SH COMMANDS\n", o);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        if (c->hidden)
            continue;
        char name[64];
        full_name(c, name, sizeof name);
        fputs(".SS \"", o);
        roff(name, o);
        fputs("\"\n\\fBberth ", o);
        roff(name, o);
        fputs("\\fR ", o);
        roff(c->synopsis, o);
        fputs("\n.PP\n", o);
        roff(c->summary, o);
        fputs(".\n", o);
        if (c->flags[0].name) {
            fputs(".RS\n", o);
            man_flags(c->flags, o);
            fputs(".RE\n", o);
        }
    }
    fputs(
        ".SH ENVIRONMENT\n"
        ".TP\n\\fBBERTH_ADDRESS\\fR\nberthd's socket, when \\fB\\-\\-address\\fR is not given.\n"
        ".TP\n\\fBBERTH_NAMESPACE\\fR\nThe namespace, when \\fB\\-\\-namespace\\fR is not given.\n"
        ".TP\n\\fBBERTH_DATA_ROOT\\fR\nThe CLI's data root, when \\fB\\-\\-data\\-root\\fR is not "
        "given.\n"
        ".TP\n\\fBBERTH_FIFO_DIR\\fR\nWhere the FIFOs of a task's IO are made (default "
        "/run/berth/fifo).\n"
        ".SH FILES\n"
        ".TP\n\\fI/var/lib/berth/cli/containers/NAMESPACE/ID/ID.log\\fR\n"
        "A detached container's output in CRI's log format, rotated at 10 MiB into ID.log.1 and "
        "ID.log.2.\n"
        ".SH EXIT STATUS\n"
        "\\fBrun\\fR, \\fBexec\\fR, \\fBstart \\-a\\fR and \\fBattach\\fR exit with the "
        "container's status "
        "(128+N when signal N killed it). Otherwise 0 on success, 125 when berth itself failed (a "
        "bad flag, "
        "an unknown image, no daemon), 1 when one of several names failed.\n"
        ".SH EXAMPLES\n.nf\n"
        "berth pull \\-\\-plain\\-http 127.0.0.1:5000/busybox\n"
        "berth run \\-\\-rm \\-it busybox sh\n"
        "berth run \\-d \\-\\-name web \\-p 127.0.0.1:8080:80 \\-v data:/www:ro busybox httpd \\-f "
        "\\-h /www\n"
        "berth logs \\-f web\n"
        "berth rm \\-f web\n"
        ".fi\n"
        ".SH SEE ALSO\n\\fBberthd\\fR(8), \\fBctr\\fR(8), \\fBdocker\\fR(1)\n",
        o);
}

static void
flag_words(const struct flag *f, FILE *o)
{
    for (int k = 0; f[k].name; k++) {
        fprintf(o, " --%s", f[k].name);
        if (f[k].shrt)
            fprintf(o, " -%c", f[k].shrt);
    }
}

static void
gen_bash(FILE *o)
{
    fputs(
        "# SPDX-License-Identifier: Apache-2.0\n"
        "# bash completion for berth, generated by `berth __gen bash-completion` from cli/main.c\n"
        "_berth_names() {\n"
        "    case $1 in\n"
        "    container) berth ps -a -q 2>/dev/null ;;\n"
        "    image) berth images -q 2>/dev/null ;;\n"
        "    volume) berth volume ls -q 2>/dev/null ;;\n"
        "    network) berth network ls -q 2>/dev/null ;;\n"
        "    esac\n"
        "}\n"
        "_berth() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} i w cmd='' sub='' words flags kind=''\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        w=${COMP_WORDS[i]}\n"
        "        case $w in\n"
        "        --address|--namespace|-n|--data-root) ((i++)); continue ;;\n"
        "        -*) continue ;;\n"
        "        esac\n"
        "        if [ -z \"$cmd\" ]; then cmd=$w; elif [ -z \"$sub\" ] && { [ \"$cmd\" = volume ] "
        "|| "
        "[ \"$cmd\" = network ]; }; then sub=$w; fi\n"
        "    done\n"
        "    if [ -z \"$cmd\" ]; then\n"
        "        words='",
        o);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!commands[i].hidden && !commands[i].group)
            fprintf(o, "%s ", commands[i].name);
    fputs("volume network'\n", o);
    fputs("        COMPREPLY=($(compgen -W \"$words --address --namespace --data-root --help\" -- "
          "\"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    case $cmd in\n"
          "    volume|network)\n"
          "        if [ -z \"$sub\" ]; then\n"
          "            case $cmd in\n",
          o);
    for (const char *grp = "volume"; grp; grp = !strcmp(grp, "volume") ? "network" : NULL) {
        fprintf(o, "            %s) words='", grp);
        for (size_t i = 0; i < N_COMMANDS; i++)
            if (commands[i].group && !strcmp(commands[i].group, grp))
                fprintf(o, "%s ", commands[i].name);
        fputs("' ;;\n", o);
    }
    fputs("            esac\n"
          "            COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
          "            return\n"
          "        fi\n"
          "        cmd=\"$cmd-$sub\" ;;\n"
          "    esac\n"
          "    case $cmd in\n",
          o);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        if (c->hidden)
            continue;
        fprintf(o, "    %s%s%s) flags='", c->group ? c->group : "", c->group ? "-" : "", c->name);
        flag_words(c->flags, o);
        fprintf(o, " --help'; kind='%s' ;;\n", c->complete ? c->complete : "");
    }
    fputs("    *) return ;;\n"
          "    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
          "    elif [ \"$kind\" = file ]; then\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    elif [ -n \"$kind\" ]; then\n"
          "        COMPREPLY=($(compgen -W \"$(_berth_names $kind)\" -- \"$cur\"))\n"
          "    fi\n"
          "}\n"
          "complete -F _berth berth\n",
          o);
}

static int
cmd_gen(struct ctx *x)
{
    const char *what = x->argv[0];
    if (!strcmp(what, "man")) {
        gen_man(stdout);
    } else if (!strcmp(what, "bash-completion")) {
        gen_bash(stdout);
    } else if (!strcmp(what, "commands")) {
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (commands[i].hidden)
                continue;
            char name[64];
            full_name(&commands[i], name, sizeof name);
            printf("%s\n", name);
        }
    } else {
        die("__gen: unknown \"%s\": man, bash-completion or commands", what);
    }
    return fflush(stdout) ? CLI_EXIT : 0;
}

/* ---- the client ---------------------------------------------------------------------------------------- */

berth_client_t *
cli_client(struct ctx *x)
{
    if (!x->client) {
        berth_client_options_t o = {.namespace_ = g.namespace_};
        berth_error_t *e = NULL;
        if (berth_client_new(g.address, &o, &x->client, &e) < 0)
            die_err(x, e);
    }
    return x->client;
}

const berth_call_t *
cli_call(struct ctx *x)
{
    x->call.namespace_ = g.namespace_;
    x->call.timeout_ms = 0;
    return &x->call;
}

const berth_call_t *
cli_call_forever(struct ctx *x)
{
    static __thread berth_call_t c;
    (void)x;
    c.namespace_ = g.namespace_;
    c.timeout_ms = -1;
    return &c;
}

/* ---- main ---------------------------------------------------------------------------------------------- */

static const struct command *
find_command(const char *group, const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const struct command *c = &commands[i];
        if (!strcmp(c->name, name) &&
            ((!group && !c->group) || (group && c->group && !strcmp(group, c->group))))
            return c;
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    int i = 1;
    /* globals before the command */
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            main_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("berth version %s\n", BERTH_VERSION);
            return 0;
        }
        if (!parse_flag(global_flags, gvals, argc, argv, &i, "berth"))
            die("unknown flag: %s (see 'berth --help')", argv[i]);
    }
    if (i >= argc) {
        main_usage(stderr);
        return CLI_EXIT;
    }
    const char *group = NULL;
    if (!strcmp(argv[i], "volume") || !strcmp(argv[i], "network")) {
        group = argv[i++];
        if (i >= argc || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            group_usage(group, i >= argc ? stderr : stdout);
            return i >= argc ? CLI_EXIT : 0;
        }
    }
    const struct command *c = find_command(group, argv[i]);
    if (!c) {
        if (group)
            die("unknown command: \"%s %s\" (see 'berth %s --help')", group, argv[i], group);
        die("unknown command: \"%s\" (see 'berth --help')", argv[i]);
    }
    i++;
    /* static: what a command leaves when it exits early (die, --help) stays reachable */
    static struct ctx x;
    x.cmd = c;
    size_t nf = 0;
    while (c->flags[nf].name)
        nf++;
    x.vals = calloc(nf + 1, sizeof *x.vals);
    x.argv = calloc((size_t)argc + 1, sizeof *x.argv);
    if (!x.vals || !x.argv)
        die("out of memory");
    int has_h = 0;
    for (size_t k = 0; k < nf; k++)
        has_h |= c->flags[k].shrt == 'h';
    char full[64];
    full_name(c, full, sizeof full);
    int flags_done = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || !a[1]) {
            x.argv[x.argc++] = argv[i];
            if (c->stop_at_arg)
                flags_done = 1;
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = 1;
            continue;
        }
        if (!strcmp(a, "--help") || (!has_h && !strcmp(a, "-h"))) {
            usage(c, stdout);
            return 0;
        }
        if (parse_flag(c->flags, x.vals, argc, argv, &i, full))
            continue;
        if (parse_flag(global_flags, gvals, argc, argv, &i, full))
            continue;
        die("unknown flag: %s (see 'berth %s --help')", a, full);
    }
    apply_globals();
    if (x.argc < c->min_args)
        die("\"berth %s\" requires %s%d argument%s (usage: berth %s %s)", full,
            c->max_args == c->min_args ? "exactly " : "at least ", c->min_args,
            c->min_args == 1 ? "" : "s", full, c->synopsis);
    if (c->max_args >= 0 && x.argc > c->max_args)
        die("\"berth %s\" accepts %s %d argument%s (usage: berth %s %s)", full,
            c->max_args == c->min_args ? "exactly" : "at most", c->max_args,
            c->max_args == 1 ? "" : "s", full, c->synopsis);
    int rc = c->fn(&x);
    if (fflush(stdout) && rc == 0)
        rc = CLI_EXIT;
    if (x.client)
        berth_client_free(x.client);
    for (size_t k = 0; k < nf; k++)
        free(x.vals[k].list);
    free(x.vals);
    free(x.argv);
    return rc;
}
