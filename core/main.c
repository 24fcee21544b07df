/* SPDX-License-Identifier: Apache-2.0 */
/* berthd's command line. Flags follow containerd's names; commands: run (default), modules, config,
 * reload. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "reload_cmd.h"
#include "util.h"

static void
usage(FILE *out)
{
    fputs(
        "usage: berthd [flags]                      run the daemon\n"
        "       berthd modules [--probe] [--init]   resolve and list every plugin\n"
        "       berthd modules --running            list the running daemon's plugin table\n"
        "       berthd modules --manifest FILE      print a module's manifest (for its ELF "
        "section)\n"
        "       berthd reload                       make the running daemon re-read its config\n"
        "       berthd config default|dump|check    print the default or effective config, or "
        "check it\n"
        "flags:\n"
        "  -c, --config FILE       config file (default: the built-in config/berthd.yaml)\n"
        "      --root DIR          persistent data directory\n"
        "      --state DIR         runtime state directory\n"
        "  -l, --log-level LEVEL   error, warn, info, debug or trace\n"
        "      --set KEY.PATH=VAL  override any config value (repeatable; VAL is YAML)\n"
        "      --ready-fd N        write READY=1 and a newline to fd N once ready, then close it\n"
        "      --probe             (modules) load each module in a child process first\n"
        "      --init              (modules) also run every plugin's init and fini\n"
        "      --running           (modules) ask the running daemon (implied by --address)\n"
        "      --address SOCK      (reload, modules) the running daemon's socket (default: the\n"
        "                          transport's address in the config, else <state>/berthd.sock)\n"
        "  -v, --version           print the version\n"
        "environment: BERTH_MODULE_DIR replaces the built-in module directory;\n"
        "             NOTIFY_SOCKET receives READY=1 (sd_notify)\n",
        out);
}

enum {
    OPT_ROOT = 256,
    OPT_STATE,
    OPT_SET,
    OPT_READY_FD,
    OPT_PROBE,
    OPT_INIT,
    OPT_ADDRESS,
    OPT_RUNNING,
    OPT_MANIFEST
};

/* reload and modules --running: the running daemon's socket, and whether to ask it */
static const char *address_flag;
static int running_flag;
static const char *manifest_flag; /* modules --manifest FILE */

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"root", required_argument, NULL, OPT_ROOT},
    {"state", required_argument, NULL, OPT_STATE},
    {"log-level", required_argument, NULL, 'l'},
    {"set", required_argument, NULL, OPT_SET},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {"probe", no_argument, NULL, OPT_PROBE},
    {"init", no_argument, NULL, OPT_INIT},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"running", no_argument, NULL, OPT_RUNNING},
    {"manifest", required_argument, NULL, OPT_MANIFEST},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {NULL, 0, NULL, 0},
};

static int
parse_fd(const char *s, int *fd)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1 << 20)
        return -1;
    *fd = (int)v;
    return 0;
}

static int
parse_flags(int argc, char **argv, berth__opts_t *o)
{
    int c;
    while ((c = getopt_long(argc, argv, "c:l:hv", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case OPT_ROOT:
            o->root = optarg;
            break;
        case OPT_STATE:
            o->state = optarg;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case OPT_SET:
            berth__strv_push(&o->sets, optarg);
            break;
        case OPT_PROBE:
            o->probe = 1;
            break;
        case OPT_INIT:
            o->init = 1;
            break;
        case OPT_ADDRESS:
            address_flag = optarg;
            running_flag = 1;
            break;
        case OPT_RUNNING:
            running_flag = 1;
            break;
        case OPT_MANIFEST:
            manifest_flag = optarg;
            break;
        case OPT_READY_FD:
            if (parse_fd(optarg, &o->ready_fd) < 0) {
                fprintf(stderr, "berthd: --ready-fd: `%s` is not a file descriptor number\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'v':
            printf("berthd %s (module ABI %d.%d)\n", BERTH_VERSION_STRING, BERTH_ABI_MAJOR,
                   BERTH_ABI_MINOR);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

int
main(int argc, char **argv)
{
    berth__opts_t o = {.ready_fd = -1, .builtin_dir = getenv("BERTH_MODULE_DIR")};
    int rc = parse_flags(argc, argv, &o);
    if (rc < 0) {
        const char *cmd = optind < argc ? argv[optind] : NULL;
        berth__remote_opts_t remote = {.config_path = o.config_path,
                                       .sets = o.sets,
                                       .state = o.state,
                                       .address = address_flag};
        if (cmd == NULL) {
            o.daemon = 1;
            rc = berth__daemon_run(&o);
        } else if (strcmp(cmd, "modules") == 0 && optind + 1 == argc && manifest_flag) {
            rc = berth__cmd_manifest(manifest_flag);
        } else if (strcmp(cmd, "modules") == 0 && optind + 1 == argc && running_flag) {
            rc = berth__cmd_modules_running(&remote);
        } else if (strcmp(cmd, "modules") == 0 && optind + 1 == argc) {
            rc = berth__cmd_modules(&o);
        } else if (strcmp(cmd, "reload") == 0 && optind + 1 == argc) {
            rc = berth__cmd_reload(&remote);
        } else if (strcmp(cmd, "config") == 0 && optind + 2 == argc) {
            rc = berth__cmd_config(&o, argv[optind + 1]);
        } else {
            fprintf(stderr, "berthd: unknown command `%s`\n", cmd);
            usage(stderr);
            rc = 2;
        }
    }
    berth__strv_free(o.sets);
    return rc;
}
