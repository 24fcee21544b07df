/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RuntimeDefault seccomp profile (containerd 1.6's) and Localhost profiles. The profile is compiled
 * by libseccomp as runc would and loaded into a child, which then tries syscalls: what containerd's
 * profile denies must fail with the filter's errno, what it allows must reach the kernel.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cri.h"

/* The filter's default errno in these tests: not one the probed syscalls give by themselves, so a
 * denial by the filter is told from a refusal by the kernel. */
#define DENIED EHWPOISON

static const char *const ops[] = {"",
                                  "SCMP_CMP_NE",
                                  "SCMP_CMP_LT",
                                  "SCMP_CMP_LE",
                                  "SCMP_CMP_EQ",
                                  "SCMP_CMP_GE",
                                  "SCMP_CMP_GT",
                                  "SCMP_CMP_MASKED_EQ"};

static uint32_t
action_of(json_object *o, const char *key_action, const char *key_errno)
{
    json_object *a = NULL, *e = NULL;
    json_object_object_get_ex(o, key_action, &a);
    const char *s = json_object_get_string(a);
    cr_assert(s != NULL, "no %s", key_action);
    if (strcmp(s, "SCMP_ACT_ALLOW") == 0)
        return SCMP_ACT_ALLOW;
    cr_assert_str_eq(s, "SCMP_ACT_ERRNO", "unexpected action %s", s);
    if (json_object_object_get_ex(o, key_errno, &e))
        return SCMP_ACT_ERRNO(json_object_get_int(e));
    return SCMP_ACT_ERRNO(DENIED);
}

static uint32_t
arch_token(const char *name)
{
    char low[32];
    size_t n = 0;
    cr_assert(strncmp(name, "SCMP_ARCH_", 10) == 0, "architecture %s", name);
    for (const char *p = name + 10; *p && n < sizeof(low) - 1; p++)
        low[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    low[n] = '\0';
    uint32_t t = seccomp_arch_resolve_name(low);
    cr_assert(t != 0, "libseccomp does not know %s", name);
    return t;
}

static void
add_rule(scmp_filter_ctx ctx, json_object *r)
{
    json_object *names, *args = NULL;
    cr_assert(json_object_object_get_ex(r, "names", &names));
    uint32_t act = action_of(r, "action", "errnoRet");
    json_object_object_get_ex(r, "args", &args);
    struct scmp_arg_cmp cmp[6];
    unsigned n = 0;
    for (size_t i = 0; args && i < json_object_array_length(args); i++) {
        json_object *a = json_object_array_get_idx(args, i), *v;
        cr_assert(n < 6);
        json_object_object_get_ex(a, "index", &v);
        cmp[n].arg = (unsigned)json_object_get_int(v);
        json_object_object_get_ex(a, "value", &v);
        cmp[n].datum_a = json_object_get_uint64(v);
        cmp[n].datum_b =
            json_object_object_get_ex(a, "valueTwo", &v) ? json_object_get_uint64(v) : 0;
        json_object_object_get_ex(a, "op", &v);
        cmp[n].op = 0;
        for (unsigned k = 1; k < sizeof(ops) / sizeof(ops[0]); k++)
            if (strcmp(json_object_get_string(v), ops[k]) == 0)
                cmp[n].op = k;
        cr_assert(cmp[n].op != 0, "op %s", json_object_get_string(v));
        n++;
    }
    for (size_t i = 0; i < json_object_array_length(names); i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(names, i));
        int nr = seccomp_syscall_resolve_name(name);
        cr_assert(nr != __NR_SCMP_ERROR, "libseccomp does not know syscall %s", name);
        int rc = seccomp_rule_add_array(ctx, act, nr, n, cmp);
        cr_assert(rc == 0, "libseccomp refuses the rule for %s: %s", name, strerror(-rc));
    }
}

/* The profile as runc hands it to libseccomp. */
static scmp_filter_ctx
compile(json_object *p)
{
    scmp_filter_ctx ctx = seccomp_init(action_of(p, "defaultAction", "defaultErrnoRet"));
    cr_assert(ctx != NULL);
    json_object *arches, *rules;
    cr_assert(json_object_object_get_ex(p, "architectures", &arches));
    for (size_t i = 0; i < json_object_array_length(arches); i++) {
        uint32_t t = arch_token(json_object_get_string(json_object_array_get_idx(arches, i)));
        int rc = seccomp_arch_add(ctx, t);
        cr_assert(rc == 0 || rc == -EEXIST, "arch_add: %s", strerror(-rc));
    }
    cr_assert(json_object_object_get_ex(p, "syscalls", &rules));
    for (size_t i = 0; i < json_object_array_length(rules); i++)
        add_rule(ctx, json_object_array_get_idx(rules, i));
    return ctx;
}

enum probe {
    P_GETPID,
    P_UNAME,
    P_PERSONA_QUERY,
    P_PERSONA_OTHER,
    P_MOUNT,
    P_UMOUNT,
    P_REBOOT,
    P_KEXEC,
    P_UNSHARE,
    P_CLONE_NEWNS,
    P_CLONE3,
    P_FORK,
    P_PTRACE,
    P_CHROOT,
    P_SETTIME,
    P_INIT_MODULE,
    P_OPEN_BY_HANDLE,
    P_COUNT
};

/* errno of each probe (0: it succeeded) */
static int
probe(enum probe p)
{
    long rc = 0;
    errno = 0;
    switch (p) {
    case P_GETPID:
        rc = syscall(SYS_getpid);
        break;
    case P_UNAME: {
        struct utsname u;
        rc = syscall(SYS_uname, &u);
        break;
    }
    case P_PERSONA_QUERY:
        rc = syscall(SYS_personality, 0xffffffffUL);
        break;
    case P_PERSONA_OTHER:
        rc = syscall(SYS_personality, (unsigned long)(PER_LINUX | ADDR_NO_RANDOMIZE));
        break;
    case P_MOUNT:
        rc = syscall(SYS_mount, "none", "/nonexistent-berth-test", "tmpfs", 0UL, NULL);
        break;
    case P_UMOUNT:
        rc = syscall(SYS_umount2, "/nonexistent-berth-test", 0);
        break;
    case P_REBOOT: /* a wrong magic: EINVAL when the kernel sees it */
        rc = syscall(SYS_reboot, 1, 2, 3, NULL);
        break;
    case P_KEXEC:
        rc = syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xffffffffUL);
        break;
    case P_UNSHARE: /* an invalid flag mix so nothing is unshared if the kernel sees it */
        rc = syscall(SYS_unshare, 0x80000000UL);
        break;
    case P_CLONE_NEWNS: {
        rc = syscall(SYS_clone, (unsigned long)(CLONE_NEWNS | SIGCHLD), NULL, NULL, NULL, 0UL);
        if (rc == 0)
            _exit(0);
        if (rc > 0)
            waitpid((pid_t)rc, NULL, 0), rc = 0;
        break;
    }
    case P_CLONE3:
        rc = syscall(SYS_clone3, NULL, 0UL);
        break;
    case P_FORK: {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid > 0)
            waitpid(pid, NULL, 0), rc = 0;
        else
            rc = -1;
        break;
    }
    case P_PTRACE: /* an unknown request: EIO or ESRCH from the kernel */
        rc = syscall(SYS_ptrace, 0x7fff, 0, NULL, NULL);
        break;
    case P_CHROOT:
        rc = syscall(SYS_chroot, "/nonexistent-berth-test");
        break;
    case P_SETTIME:
        rc = syscall(SYS_settimeofday, NULL, NULL);
        break;
    case P_INIT_MODULE:
        rc = syscall(SYS_init_module, NULL, 0UL, "");
        break;
    case P_OPEN_BY_HANDLE:
        rc = syscall(SYS_open_by_handle_at, -1, NULL, 0);
        break;
    case P_COUNT:
        break;
    }
    return rc < 0 ? errno : 0;
}

/* The profile loaded into a child; each probe's errno. */
static void
run_probes(json_object *profile, int res[P_COUNT])
{
    scmp_filter_ctx ctx = compile(profile);
    int fds[2];
    cr_assert(pipe(fds) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int out[P_COUNT];
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(ctx) < 0)
            _exit(2);
        for (int p = 0; p < P_COUNT; p++)
            out[p] = probe((enum probe)p);
        if (write(fds[1], out, sizeof(out)) != (ssize_t)sizeof(out))
            _exit(3);
        _exit(0);
    }
    close(fds[1]);
    seccomp_release(ctx);
    ssize_t n = read(fds[0], res, sizeof(int) * P_COUNT);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the probing child failed (status %d)", st);
    cr_assert_eq(n, (ssize_t)(sizeof(int) * P_COUNT));
}

#define DENIES(res, p) cr_expect_eq(res[p], DENIED, #p ": errno %d, not the filter's", res[p])
#define ALLOWS(res, p) cr_expect_neq(res[p], DENIED, #p ": denied by the filter")

Test(seccomp_default, no_capabilities_denies_what_containerd_denies)
{
    json_object *p = cri_seccomp_default(NULL);
    int res[P_COUNT];
    run_probes(p, res);
    cr_expect_eq(res[P_GETPID], 0);
    cr_expect_eq(res[P_UNAME], 0);
    cr_expect_eq(res[P_PERSONA_QUERY], 0);
    cr_expect_eq(res[P_FORK], 0);
    ALLOWS(res, P_PTRACE); /* containerd allows ptrace from kernel 4.8 */
    DENIES(res, P_PERSONA_OTHER);
    DENIES(res, P_MOUNT);
    DENIES(res, P_UMOUNT);
    DENIES(res, P_REBOOT);
    DENIES(res, P_KEXEC);
    DENIES(res, P_UNSHARE);
    DENIES(res, P_CLONE_NEWNS);
    DENIES(res, P_CHROOT);
    DENIES(res, P_SETTIME);
    DENIES(res, P_INIT_MODULE);
    DENIES(res, P_OPEN_BY_HANDLE);
    cr_expect_eq(res[P_CLONE3], ENOSYS, "clone3 must answer ENOSYS, not %d", res[P_CLONE3]);
    json_object_put(p);
}

Test(seccomp_default, capabilities_add_their_syscalls)
{
    const char *const caps[] = {
        "CAP_SYS_ADMIN",       "SYS_BOOT", "cap_sys_chroot", "CAP_SYS_TIME", "CAP_SYS_MODULE",
        "CAP_DAC_READ_SEARCH", NULL};
    json_object *p = cri_seccomp_default(caps);
    int res[P_COUNT];
    run_probes(p, res);
    ALLOWS(res, P_MOUNT);
    ALLOWS(res, P_UMOUNT);
    ALLOWS(res, P_REBOOT);
    ALLOWS(res, P_UNSHARE);
    ALLOWS(res, P_CLONE_NEWNS);
    ALLOWS(res, P_CHROOT);
    ALLOWS(res, P_SETTIME);
    ALLOWS(res, P_INIT_MODULE);
    ALLOWS(res, P_OPEN_BY_HANDLE);
    cr_expect_neq(res[P_CLONE3], ENOSYS, "with CAP_SYS_ADMIN clone3 is allowed");
    DENIES(res, P_KEXEC); /* never allowed: CAP_SYS_BOOT does not add it */
    DENIES(res, P_PERSONA_OTHER);
    json_object_put(p);
}

static int
rule_count_with(json_object *p, const char *name)
{
    json_object *rules;
    int n = 0;
    json_object_object_get_ex(p, "syscalls", &rules);
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        json_object *names;
        json_object_object_get_ex(json_object_array_get_idx(rules, i), "names", &names);
        for (size_t k = 0; k < json_object_array_length(names); k++)
            if (strcmp(json_object_get_string(json_object_array_get_idx(names, k)), name) == 0)
                n++;
    }
    return n;
}

Test(seccomp_default, shape_is_containerds)
{
    json_object *p = cri_seccomp_default(NULL), *v;
    cr_assert(json_object_object_get_ex(p, "defaultAction", &v));
    cr_expect_str_eq(json_object_get_string(v), "SCMP_ACT_ERRNO");
    cr_assert(json_object_object_get_ex(p, "architectures", &v));
    cr_expect_str_eq(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                     "[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]");
    cr_assert(json_object_object_get_ex(p, "syscalls", &v));
    json_object *first = json_object_array_get_idx(v, 0), *names;
    json_object_object_get_ex(first, "names", &names);
    cr_expect_eq(json_object_array_length(names), 349, "containerd 1.6 allows 349 names outright");
    cr_expect_eq(rule_count_with(p, "personality"), 5);
    cr_expect_eq(rule_count_with(p, "arch_prctl"), 1);
    cr_expect_eq(rule_count_with(p, "mount"), 0);
    cr_expect_eq(rule_count_with(p, "kexec_load"), 0);
    json_object_put(p);
    const char *const syslog[] = {"CAP_SYSLOG", "CAP_SYS_ADMIN", NULL};
    p = cri_seccomp_default(syslog);
    cr_expect_eq(rule_count_with(p, "syslog"), 2);
    cr_expect_eq(rule_count_with(p, "clone3"), 1,
                 "the ENOSYS rule is not there with CAP_SYS_ADMIN");
    json_object_put(p);
}

/* ---- Localhost ---- */

static char *
write_tmp(const char *text)
{
    char *path = strdup("/tmp/berth-seccomp-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(seccomp_localhost, oci_profile_is_kept)
{
    char *path = write_tmp(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
        "\"syscalls\":[{\"names\":[\"mount\",\"umount2\"],\"action\":\"SCMP_ACT_ERRNO\"},"
        "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,"
        "\"value\":262144,\"op\":\"SCMP_CMP_EQ\"}]}]}");
    json_object *p = NULL;
    char why[256] = "";
    cr_assert_eq(cri_seccomp_localhost(path, &p, why, sizeof(why)), 0, "%s", why);
    int res[P_COUNT];
    run_probes(p, res);
    DENIES(res, P_MOUNT);
    DENIES(res, P_UMOUNT);
    DENIES(res, P_PERSONA_OTHER);
    cr_expect_eq(res[P_PERSONA_QUERY], 0);
    ALLOWS(res, P_KEXEC);
    json_object_put(p);
    unlink(path);
    free(path);
}

Test(seccomp_localhost, docker_profile_is_converted)
{
    char *path = write_tmp(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\","
        "\"subArchitectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]}],"
        "\"syscalls\":[{\"name\":\"mount\",\"action\":\"SCMP_ACT_ERRNO\"},"
        "{\"names\":[\"chroot\"],\"action\":\"SCMP_ACT_ERRNO\",\"includes\":{\"arches\":[\"s390x\"]"
        "}},"
        "{\"names\":[\"reboot\"],\"action\":\"SCMP_ACT_ERRNO\",\"includes\":{\"caps\":[\"CAP_SYS_"
        "BOOT\"]}},"
        "{\"names\":[\"kexec_load\"],\"action\":\"SCMP_ACT_ERRNO\",\"excludes\":{\"arches\":["
        "\"arm64\"]}}]}");
    json_object *p = NULL, *v;
    char why[256] = "";
    cr_assert_eq(cri_seccomp_localhost(path, &p, why, sizeof(why)), 0, "%s", why);
    cr_assert(json_object_object_get_ex(p, "architectures", &v));
    cr_expect_eq(json_object_array_length(v), 3);
    cr_expect(!json_object_object_get_ex(p, "archMap", &v));
    int res[P_COUNT];
    run_probes(p, res);
    DENIES(res, P_MOUNT);  /* "name" */
    ALLOWS(res, P_CHROOT); /* for s390x only */
    ALLOWS(res, P_REBOOT); /* needs a capability it cannot know: left out */
    DENIES(res, P_KEXEC);  /* excluded on arm64 only */
    json_object_put(p);
    unlink(path);
    free(path);
}

Test(seccomp_localhost, errors_name_the_file)
{
    json_object *p = (json_object *)1;
    char why[256] = "";
    cr_expect_lt(cri_seccomp_localhost("/nonexistent/profile.json", &p, why, sizeof(why)), 0);
    cr_expect_null(p);
    cr_expect(strstr(why, "/nonexistent/profile.json") != NULL, "%s", why);
    const char *bad[] = {
        "[1,2]", "{\"syscalls\":[]}", "not json",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}",
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"action\":\"SCMP_ACT_ERRNO\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *path = write_tmp(bad[i]);
        why[0] = '\0';
        cr_expect_lt(cri_seccomp_localhost(path, &p, why, sizeof(why)), 0, "%s accepted", bad[i]);
        cr_expect(strstr(why, path) != NULL, "%s: %s", bad[i], why);
        unlink(path);
        free(path);
    }
}
