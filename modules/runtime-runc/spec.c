/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Spec checks (json-c for the document, libseccomp for syscall and architecture names) and the pre-start
 * hooks. Each check names the field it refused, as the client wrote it.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <seccomp.h>

#include "spec.h"

/* runc and the kernel's ids: uid_t is 32 bits, and (uid_t)-1 means "unchanged"; runc's own user handling
 * stops at INT32_MAX, so larger ids fail there obscurely. */
#define ID_MAX INT32_MAX

typedef struct check {
    const berth_core_api_t *api;
    berth_error_t **err;
} check_t;

static int __attribute__((format(printf, 2, 3))) invalid(const check_t *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return c->api->error_make(c->err, BERTH_EINVAL, "spec: %s", msg);
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int
is(json_object *o, json_type type)
{
    return o && json_object_is_type(o, type);
}

static const char *
string_of(json_object *o)
{
    return is(o, json_type_string) ? json_object_get_string(o) : NULL;
}

static json_object *
parse_object(const check_t *c, const char *text, const char *what)
{
    enum json_tokener_error je = json_tokener_success;
    json_object *o = text ? json_tokener_parse_verbose(text, &je) : NULL;
    if (o == NULL) {
        invalid(c, "%s is not JSON: %s", what, text ? json_tokener_error_desc(je) : "empty");
        return NULL;
    }
    if (!is(o, json_type_object)) {
        json_object_put(o);
        invalid(c, "%s is not a JSON object", what);
        return NULL;
    }
    return o;
}

/* ---- process ---------------------------------------------------------------------------------------- */

static int
check_number(const check_t *c, json_object *v, const char *name, int64_t max)
{
    if (v == NULL)
        return 0;
    if (!is(v, json_type_int))
        return invalid(c, "%s must be an integer", name);
    int64_t n = json_object_get_int64(v);
    if (n < 0 || n > max)
        return invalid(c, "%s %s is out of range (0 to %lld)", name, json_object_get_string(v),
                       (long long)max);
    return 0;
}

static int
check_user(const check_t *c, json_object *user, const char *where)
{
    char name[128];
    if (user == NULL)
        return 0;
    if (!is(user, json_type_object))
        return invalid(c, "%s.user must be an object", where);
    snprintf(name, sizeof(name), "%s.user.uid", where);
    if (check_number(c, member(user, "uid"), name, ID_MAX) < 0)
        return BERTH_EINVAL;
    snprintf(name, sizeof(name), "%s.user.gid", where);
    if (check_number(c, member(user, "gid"), name, ID_MAX) < 0)
        return BERTH_EINVAL;
    json_object *gids = member(user, "additionalGids");
    if (gids && !is(gids, json_type_array))
        return invalid(c, "%s.user.additionalGids must be an array", where);
    for (size_t i = 0; gids && i < json_object_array_length(gids); i++) {
        snprintf(name, sizeof(name), "%s.user.additionalGids[%zu]", where, i);
        if (check_number(c, json_object_array_get_idx(gids, i), name, ID_MAX) < 0)
            return BERTH_EINVAL;
    }
    return 0;
}

static int
check_process_object(const check_t *c, json_object *p, int terminal, const char *where)
{
    if (!is(p, json_type_object))
        return invalid(c, "%s is missing or not an object", where);
    json_object *args = member(p, "args");
    if (!is(args, json_type_array) || json_object_array_length(args) == 0)
        return invalid(c, "%s.args must name the program to run", where);
    for (size_t i = 0; i < json_object_array_length(args); i++)
        if (string_of(json_object_array_get_idx(args, i)) == NULL)
            return invalid(c, "%s.args[%zu] must be a string", where, i);
    const char *cwd = string_of(member(p, "cwd"));
    if (cwd == NULL || cwd[0] != '/')
        return invalid(c, "%s.cwd must be an absolute path", where);
    json_object *tty = member(p, "terminal");
    int wants = is(tty, json_type_boolean) && json_object_get_boolean(tty);
    if (wants != (terminal != 0))
        return invalid(c, "%s.terminal is %s but the client %s a terminal", where,
                       wants ? "true" : "false", terminal ? "asked for" : "did not ask for");
    return check_user(c, member(p, "user"), where);
}

/* ---- root and mounts ---------------------------------------------------------------------------------- */

static int
check_root(const check_t *c, json_object *spec, size_t n_mounts)
{
    const char *path = string_of(member(member(spec, "root"), "path"));
    if (path == NULL || path[0] == '\0')
        return invalid(c, "root.path is missing");
    if (path[0] == '/') {
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            return invalid(c, "root.path %s is not a directory", path);
        return 0;
    }
    /* the rootfs mounts go to <bundle>/rootfs, as in containerd's shim */
    if (strcmp(path, "rootfs") != 0 && strcmp(path, "rootfs/") != 0 &&
        strcmp(path, "./rootfs") != 0)
        return invalid(c, "root.path %s: a relative root must be \"rootfs\"", path);
    if (n_mounts == 0)
        return invalid(c, "root.path is \"rootfs\" but the task has no rootfs mounts");
    return 0;
}

static int
has_dotdot(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 1;
    return 0;
}

static int
check_mounts(const check_t *c, json_object *spec)
{
    json_object *mounts = member(spec, "mounts");
    if (mounts == NULL)
        return 0;
    if (!is(mounts, json_type_array))
        return invalid(c, "mounts must be an array");
    for (size_t i = 0; i < json_object_array_length(mounts); i++) {
        json_object *m = json_object_array_get_idx(mounts, i);
        const char *dest = string_of(member(m, "destination"));
        if (dest == NULL || dest[0] == '\0')
            return invalid(c, "mounts[%zu].destination is missing", i);
        if (dest[0] != '/')
            return invalid(c, "mounts[%zu].destination %s must be an absolute path", i, dest);
        if (has_dotdot(dest))
            return invalid(c, "mounts[%zu].destination %s must not hold \"..\"", i, dest);
        if (strlen(dest) >= 4096)
            return invalid(c, "mounts[%zu].destination is longer than PATH_MAX", i);
    }
    return 0;
}

static int
check_id_mappings(const check_t *c, json_object *linux_, const char *key)
{
    json_object *maps = member(linux_, key);
    if (maps && !is(maps, json_type_array))
        return invalid(c, "linux.%s must be an array", key);
    for (size_t i = 0; maps && i < json_object_array_length(maps); i++) {
        json_object *m = json_object_array_get_idx(maps, i);
        static const char *const fields[] = {"containerID", "hostID", "size"};
        for (int f = 0; f < 3; f++) {
            char name[96];
            snprintf(name, sizeof(name), "linux.%s[%zu].%s", key, i, fields[f]);
            if (check_number(c, member(m, fields[f]), name, UINT32_MAX) < 0)
                return BERTH_EINVAL;
        }
        int64_t end = json_object_get_int64(member(m, "containerID")) +
                      json_object_get_int64(member(m, "size"));
        if (end > (int64_t)UINT32_MAX + 1)
            return invalid(c, "linux.%s[%zu] runs past the last id", key, i);
    }
    return 0;
}

/* ---- seccomp ---------------------------------------------------------------------------------------- */

static int
known(const char *s, const char *const *names)
{
    for (int i = 0; s && names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return 1;
    return 0;
}

static const char *const seccomp_actions[] = {"SCMP_ACT_KILL",        "SCMP_ACT_KILL_PROCESS",
                                              "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                                              "SCMP_ACT_ERRNO",       "SCMP_ACT_TRACE",
                                              "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
                                              "SCMP_ACT_NOTIFY",      NULL};
static const char *const seccomp_ops[] = {"SCMP_CMP_NE",        "SCMP_CMP_LT", "SCMP_CMP_LE",
                                          "SCMP_CMP_EQ",        "SCMP_CMP_GE", "SCMP_CMP_GT",
                                          "SCMP_CMP_MASKED_EQ", NULL};

/* "SCMP_ARCH_X86_64" is libseccomp's "x86_64" */
static int
check_arch(const check_t *c, const char *arch, size_t i)
{
    char name[32];
    size_t n = 0;
    if (arch && strncmp(arch, "SCMP_ARCH_", 10) == 0)
        for (const char *p = arch + 10; *p && n < sizeof(name) - 1; p++)
            name[n++] = (char)tolower((unsigned char)*p);
    name[n] = '\0';
    if (n == 0 || seccomp_arch_resolve_name(name) == 0)
        return invalid(c, "linux.seccomp.architectures[%zu]: unknown architecture %s", i,
                       arch ? arch : "(not a string)");
    return 0;
}

static int
check_seccomp_args(const check_t *c, json_object *args, size_t i)
{
    if (args && !is(args, json_type_array))
        return invalid(c, "linux.seccomp.syscalls[%zu].args must be an array", i);
    for (size_t a = 0; args && a < json_object_array_length(args); a++) {
        json_object *arg = json_object_array_get_idx(args, a);
        char name[96];
        snprintf(name, sizeof(name), "linux.seccomp.syscalls[%zu].args[%zu].index", i, a);
        if (check_number(c, member(arg, "index"), name, 5) < 0)
            return BERTH_EINVAL;
        const char *op = string_of(member(arg, "op"));
        if (!known(op, seccomp_ops))
            return invalid(c, "linux.seccomp.syscalls[%zu].args[%zu]: unknown op %s", i, a,
                           op ? op : "(missing)");
    }
    return 0;
}

static int
check_syscall_rule(const check_t *c, json_object *rule, size_t i)
{
    json_object *names = member(rule, "names");
    if (!is(names, json_type_array))
        return invalid(c, "linux.seccomp.syscalls[%zu].names must be an array", i);
    for (size_t k = 0; k < json_object_array_length(names); k++) {
        const char *name = string_of(json_object_array_get_idx(names, k));
        if (name == NULL || seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
            return invalid(c, "linux.seccomp.syscalls[%zu]: unknown syscall %s", i,
                           name ? name : "(not a string)");
    }
    const char *action = string_of(member(rule, "action"));
    if (!known(action, seccomp_actions))
        return invalid(c, "linux.seccomp.syscalls[%zu]: unknown action %s", i,
                       action ? action : "(missing)");
    return check_seccomp_args(c, member(rule, "args"), i);
}

static int
check_seccomp(const check_t *c, json_object *seccomp)
{
    if (seccomp == NULL)
        return 0;
    if (!is(seccomp, json_type_object))
        return invalid(c, "linux.seccomp must be an object");
    const char *dflt = string_of(member(seccomp, "defaultAction"));
    if (!known(dflt, seccomp_actions))
        return invalid(c, "linux.seccomp.defaultAction: unknown action %s",
                       dflt ? dflt : "(missing)");
    json_object *arches = member(seccomp, "architectures");
    if (arches && !is(arches, json_type_array))
        return invalid(c, "linux.seccomp.architectures must be an array");
    for (size_t i = 0; arches && i < json_object_array_length(arches); i++)
        if (check_arch(c, string_of(json_object_array_get_idx(arches, i)), i) < 0)
            return BERTH_EINVAL;
    json_object *rules = member(seccomp, "syscalls");
    if (rules && !is(rules, json_type_array))
        return invalid(c, "linux.seccomp.syscalls must be an array");
    for (size_t i = 0; rules && i < json_object_array_length(rules); i++)
        if (check_syscall_rule(c, json_object_array_get_idx(rules, i), i) < 0)
            return BERTH_EINVAL;
    return 0;
}

static int
check_spec(const check_t *c, json_object *spec, const spec_task_t *t)
{
    json_object *linux_ = member(spec, "linux");
    if (check_process_object(c, member(spec, "process"), t->terminal, "process") < 0 ||
        check_root(c, spec, t->n_mounts) < 0 || check_mounts(c, spec) < 0)
        return BERTH_EINVAL;
    if (linux_ && !is(linux_, json_type_object))
        return invalid(c, "linux must be an object");
    if (check_id_mappings(c, linux_, "uidMappings") < 0 ||
        check_id_mappings(c, linux_, "gidMappings") < 0)
        return BERTH_EINVAL;
    return check_seccomp(c, member(linux_, "seccomp"));
}

/* ---- pre-start hooks ---------------------------------------------------------------------------------- */

typedef struct prestart {
    int priority;
    size_t order;
    json_object *hook;
} prestart_t;

typedef struct added {
    const berth_core_api_t *api;
    prestart_t *v;
    size_t n;
} added_t;

static json_object *
string_array(const char *const *v)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; v[i]; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

static int
add_prestart(berth_hook_container_start_t *self, int priority, const char *path,
             const char *const *argv, const char *const *env, berth_error_t **err)
{
    added_t *a = self->priv;
    if (path == NULL || path[0] != '/')
        return a->api->error_make(err, BERTH_EINVAL, "prestart hook %s: the path must be absolute",
                                  path ? path : "(null)");
    json_object *h = json_object_new_object();
    json_object_object_add(h, "path", json_object_new_string(path));
    if (argv)
        json_object_object_add(h, "args", string_array(argv));
    if (env)
        json_object_object_add(h, "env", string_array(env));
    prestart_t *grown = realloc(a->v, (a->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        json_object_put(h);
        return a->api->error_make(err, BERTH_ENOMEM, "prestart hook: out of memory");
    }
    a->v = grown;
    a->v[a->n] = (prestart_t){.priority = priority, .order = a->n, .hook = h};
    a->n++;
    return 0;
}

static int
by_priority(const void *x, const void *y)
{
    const prestart_t *a = x, *b = y;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The spec's own prestart hooks count as priority 0 - index; all run higher priority first. */
static void
merge_prestart(json_object *spec, added_t *a)
{
    json_object *hooks = member(spec, "hooks");
    if (!is(hooks, json_type_object)) {
        hooks = json_object_new_object();
        json_object_object_add(spec, "hooks", hooks);
    }
    json_object *old = member(hooks, "prestart");
    size_t n_old = is(old, json_type_array) ? json_object_array_length(old) : 0;
    prestart_t *all = calloc(n_old + a->n, sizeof(*all));
    for (size_t i = 0; i < n_old; i++)
        all[i] = (prestart_t){-(int)i, i, json_object_get(json_object_array_get_idx(old, i))};
    for (size_t i = 0; i < a->n; i++)
        all[n_old + i] = (prestart_t){a->v[i].priority, n_old + i, a->v[i].hook};
    qsort(all, n_old + a->n, sizeof(*all), by_priority);
    json_object *merged = json_object_new_array();
    for (size_t i = 0; i < n_old + a->n; i++)
        json_object_array_add(merged, all[i].hook);
    json_object_object_add(hooks, "prestart", merged);
    free(all);
    a->n = 0; /* the merged array owns them now */
}

static int
run_prestart_hooks(const berth_core_api_t *api, const spec_task_t *t, added_t *a,
                   berth_error_t **err)
{
    berth_hook_container_start_t p = {
        .struct_size = sizeof(p),
        .namespace_ = t->ns,
        .id = t->id,
        .bundle = t->bundle,
        .spec_json = t->spec_json,
        .add_prestart = add_prestart,
        .priv = a,
    };
    int rc = api->hook_invoke(BERTH_HOOK_CONTAINER_PRE_START, &p, err);
    return rc < 0 ? api->error_wrap(err, "container %s: pre-start", t->id) : 0;
}

int
spec_prepare(const berth_core_api_t *api, const spec_task_t *t, char **config, berth_error_t **err)
{
    check_t c = {api, err};
    *config = NULL;
    json_object *spec = parse_object(&c, t->spec_json, "the container's spec");
    if (spec == NULL)
        return BERTH_EINVAL;
    added_t a = {.api = api};
    int rc = check_spec(&c, spec, t);
    if (rc == 0)
        rc = run_prestart_hooks(api, t, &a, err);
    if (rc == 0 && a.n == 0)
        *config = strdup(t->spec_json);
    else if (rc == 0) {
        merge_prestart(spec, &a);
        *config = strdup(json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    for (size_t i = 0; i < a.n; i++)
        json_object_put(a.v[i].hook);
    free(a.v);
    json_object_put(spec);
    if (rc == 0 && *config == NULL)
        return api->error_make(err, BERTH_ENOMEM, "container %s: out of memory", t->id);
    return rc;
}

int
spec_check_process(const berth_core_api_t *api, const char *process_json, int terminal,
                   berth_error_t **err)
{
    check_t c = {api, err};
    json_object *p = parse_object(&c, process_json, "the exec process's spec");
    if (p == NULL)
        return BERTH_EINVAL;
    int rc = check_process_object(&c, p, terminal, "process");
    json_object_put(p);
    return rc;
}
