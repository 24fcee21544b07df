/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Seccomp profiles for CRI containers: RuntimeDefault is containerd 1.6's default profile for x86-64 (its
 * syscall lists, argument rules and capability-dependent additions, written here as tables), and Localhost
 * profiles are JSON files in the OCI linux.seccomp format (docker's additions read too: "name", "archMap",
 * "includes"/"excludes").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include <json-c/json.h>

#include "cri.h"

/* ---- the default profile's facts ------------------------------------------------------------------ */

/* Allowed whatever the capabilities. */
static const char *const allow_always[] = {"accept",
                                           "accept4",
                                           "access",
                                           "adjtimex",
                                           "alarm",
                                           "bind",
                                           "brk",
                                           "capget",
                                           "capset",
                                           "chdir",
                                           "chmod",
                                           "chown",
                                           "chown32",
                                           "clock_adjtime",
                                           "clock_adjtime64",
                                           "clock_getres",
                                           "clock_getres_time64",
                                           "clock_gettime",
                                           "clock_gettime64",
                                           "clock_nanosleep",
                                           "clock_nanosleep_time64",
                                           "close",
                                           "close_range",
                                           "connect",
                                           "copy_file_range",
                                           "creat",
                                           "dup",
                                           "dup2",
                                           "dup3",
                                           "epoll_create",
                                           "epoll_create1",
                                           "epoll_ctl",
                                           "epoll_ctl_old",
                                           "epoll_pwait",
                                           "epoll_pwait2",
                                           "epoll_wait",
                                           "epoll_wait_old",
                                           "eventfd",
                                           "eventfd2",
                                           "execve",
                                           "execveat",
                                           "exit",
                                           "exit_group",
                                           "faccessat",
                                           "faccessat2",
                                           "fadvise64",
                                           "fadvise64_64",
                                           "fallocate",
                                           "fanotify_mark",
                                           "fchdir",
                                           "fchmod",
                                           "fchmodat",
                                           "fchown",
                                           "fchown32",
                                           "fchownat",
                                           "fcntl",
                                           "fcntl64",
                                           "fdatasync",
                                           "fgetxattr",
                                           "flistxattr",
                                           "flock",
                                           "fork",
                                           "fremovexattr",
                                           "fsetxattr",
                                           "fstat",
                                           "fstat64",
                                           "fstatat64",
                                           "fstatfs",
                                           "fstatfs64",
                                           "fsync",
                                           "ftruncate",
                                           "ftruncate64",
                                           "futex",
                                           "futex_time64",
                                           "futex_waitv",
                                           "futimesat",
                                           "getcpu",
                                           "getcwd",
                                           "getdents",
                                           "getdents64",
                                           "getegid",
                                           "getegid32",
                                           "geteuid",
                                           "geteuid32",
                                           "getgid",
                                           "getgid32",
                                           "getgroups",
                                           "getgroups32",
                                           "getitimer",
                                           "getpeername",
                                           "getpgid",
                                           "getpgrp",
                                           "getpid",
                                           "getppid",
                                           "getpriority",
                                           "getrandom",
                                           "getresgid",
                                           "getresgid32",
                                           "getresuid",
                                           "getresuid32",
                                           "getrlimit",
                                           "get_robust_list",
                                           "getrusage",
                                           "getsid",
                                           "getsockname",
                                           "getsockopt",
                                           "get_thread_area",
                                           "gettid",
                                           "gettimeofday",
                                           "getuid",
                                           "getuid32",
                                           "getxattr",
                                           "inotify_add_watch",
                                           "inotify_init",
                                           "inotify_init1",
                                           "inotify_rm_watch",
                                           "io_cancel",
                                           "ioctl",
                                           "io_destroy",
                                           "io_getevents",
                                           "io_pgetevents",
                                           "io_pgetevents_time64",
                                           "ioprio_get",
                                           "ioprio_set",
                                           "io_setup",
                                           "io_submit",
                                           "io_uring_enter",
                                           "io_uring_register",
                                           "io_uring_setup",
                                           "ipc",
                                           "kill",
                                           "landlock_add_rule",
                                           "landlock_create_ruleset",
                                           "landlock_restrict_self",
                                           "lchown",
                                           "lchown32",
                                           "lgetxattr",
                                           "link",
                                           "linkat",
                                           "listen",
                                           "listxattr",
                                           "llistxattr",
                                           "_llseek",
                                           "lremovexattr",
                                           "lseek",
                                           "lsetxattr",
                                           "lstat",
                                           "lstat64",
                                           "madvise",
                                           "membarrier",
                                           "memfd_create",
                                           "memfd_secret",
                                           "mincore",
                                           "mkdir",
                                           "mkdirat",
                                           "mknod",
                                           "mknodat",
                                           "mlock",
                                           "mlock2",
                                           "mlockall",
                                           "mmap",
                                           "mmap2",
                                           "mprotect",
                                           "mq_getsetattr",
                                           "mq_notify",
                                           "mq_open",
                                           "mq_timedreceive",
                                           "mq_timedreceive_time64",
                                           "mq_timedsend",
                                           "mq_timedsend_time64",
                                           "mq_unlink",
                                           "mremap",
                                           "msgctl",
                                           "msgget",
                                           "msgrcv",
                                           "msgsnd",
                                           "msync",
                                           "munlock",
                                           "munlockall",
                                           "munmap",
                                           "nanosleep",
                                           "newfstatat",
                                           "_newselect",
                                           "open",
                                           "openat",
                                           "openat2",
                                           "pause",
                                           "pidfd_open",
                                           "pidfd_send_signal",
                                           "pipe",
                                           "pipe2",
                                           "pkey_alloc",
                                           "pkey_free",
                                           "pkey_mprotect",
                                           "poll",
                                           "ppoll",
                                           "ppoll_time64",
                                           "prctl",
                                           "pread64",
                                           "preadv",
                                           "preadv2",
                                           "prlimit64",
                                           "process_mrelease",
                                           "pselect6",
                                           "pselect6_time64",
                                           "pwrite64",
                                           "pwritev",
                                           "pwritev2",
                                           "read",
                                           "readahead",
                                           "readlink",
                                           "readlinkat",
                                           "readv",
                                           "recv",
                                           "recvfrom",
                                           "recvmmsg",
                                           "recvmmsg_time64",
                                           "recvmsg",
                                           "remap_file_pages",
                                           "removexattr",
                                           "rename",
                                           "renameat",
                                           "renameat2",
                                           "restart_syscall",
                                           "rmdir",
                                           "rseq",
                                           "rt_sigaction",
                                           "rt_sigpending",
                                           "rt_sigprocmask",
                                           "rt_sigqueueinfo",
                                           "rt_sigreturn",
                                           "rt_sigsuspend",
                                           "rt_sigtimedwait",
                                           "rt_sigtimedwait_time64",
                                           "rt_tgsigqueueinfo",
                                           "sched_getaffinity",
                                           "sched_getattr",
                                           "sched_getparam",
                                           "sched_get_priority_max",
                                           "sched_get_priority_min",
                                           "sched_getscheduler",
                                           "sched_rr_get_interval",
                                           "sched_rr_get_interval_time64",
                                           "sched_setaffinity",
                                           "sched_setattr",
                                           "sched_setparam",
                                           "sched_setscheduler",
                                           "sched_yield",
                                           "seccomp",
                                           "select",
                                           "semctl",
                                           "semget",
                                           "semop",
                                           "semtimedop",
                                           "semtimedop_time64",
                                           "send",
                                           "sendfile",
                                           "sendfile64",
                                           "sendmmsg",
                                           "sendmsg",
                                           "sendto",
                                           "setfsgid",
                                           "setfsgid32",
                                           "setfsuid",
                                           "setfsuid32",
                                           "setgid",
                                           "setgid32",
                                           "setgroups",
                                           "setgroups32",
                                           "setitimer",
                                           "setpgid",
                                           "setpriority",
                                           "setregid",
                                           "setregid32",
                                           "setresgid",
                                           "setresgid32",
                                           "setresuid",
                                           "setresuid32",
                                           "setreuid",
                                           "setreuid32",
                                           "setrlimit",
                                           "set_robust_list",
                                           "setsid",
                                           "setsockopt",
                                           "set_thread_area",
                                           "set_tid_address",
                                           "setuid",
                                           "setuid32",
                                           "setxattr",
                                           "shmat",
                                           "shmctl",
                                           "shmdt",
                                           "shmget",
                                           "shutdown",
                                           "sigaltstack",
                                           "signalfd",
                                           "signalfd4",
                                           "sigprocmask",
                                           "sigreturn",
                                           "socket",
                                           "socketcall",
                                           "socketpair",
                                           "splice",
                                           "stat",
                                           "stat64",
                                           "statfs",
                                           "statfs64",
                                           "statx",
                                           "symlink",
                                           "symlinkat",
                                           "sync",
                                           "sync_file_range",
                                           "syncfs",
                                           "sysinfo",
                                           "tee",
                                           "tgkill",
                                           "time",
                                           "timer_create",
                                           "timer_delete",
                                           "timer_getoverrun",
                                           "timer_gettime",
                                           "timer_gettime64",
                                           "timer_settime",
                                           "timer_settime64",
                                           "timerfd_create",
                                           "timerfd_gettime",
                                           "timerfd_gettime64",
                                           "timerfd_settime",
                                           "timerfd_settime64",
                                           "times",
                                           "tkill",
                                           "truncate",
                                           "truncate64",
                                           "ugetrlimit",
                                           "umask",
                                           "uname",
                                           "unlink",
                                           "unlinkat",
                                           "utime",
                                           "utimensat",
                                           "utimensat_time64",
                                           "utimes",
                                           "vfork",
                                           "vmsplice",
                                           "wait4",
                                           "waitid",
                                           "waitpid",
                                           "write",
                                           "writev",
                                           NULL};

/* personality(2) with these personas only: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and
 * 0xffffffff (the query) */
static const uint64_t personas[] = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};

/* amd64's own */
static const char *const allow_amd64[] = {"arch_prctl", "modify_ldt", NULL};

/* Allowed when the bounding set holds a capability (the order is containerd's). */
typedef struct cap_rule {
    const char *cap;
    const char *const *names;
} cap_rule_t;

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
static const cap_rule_t cap_rules[] = {
    {"CAP_DAC_READ_SEARCH", NAMES("open_by_handle_at")},
    {"CAP_SYS_ADMIN",
     NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
           "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
           "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname",
           "sethostname", "setns", "syslog", "umount", "umount2", "unshare")},
    {"CAP_SYS_BOOT", NAMES("reboot")},
    {"CAP_SYS_CHROOT", NAMES("chroot")},
    {"CAP_SYS_MODULE", NAMES("delete_module", "init_module", "finit_module")},
    {"CAP_SYS_PACCT", NAMES("acct")},
    {"CAP_SYS_PTRACE", NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                             "process_vm_writev", "ptrace")},
    {"CAP_SYS_RAWIO", NAMES("iopl", "ioperm")},
    {"CAP_SYS_TIME", NAMES("settimeofday", "stime", "clock_settime", "clock_settime64")},
    {"CAP_SYS_TTY_CONFIG", NAMES("vhangup")},
    {"CAP_SYS_NICE", NAMES("get_mempolicy", "mbind", "set_mempolicy")},
    {"CAP_SYSLOG", NAMES("syslog")},
    {"CAP_BPF", NAMES("bpf")},
    {"CAP_PERFMON", NAMES("perf_event_open")},
};

/* Without CAP_SYS_ADMIN, clone(2) only without namespace flags: CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER |
 * NEWPID | NEWNET | NEWCGROUP masked equal to 0 (argument 0 on x86); clone3 answers ENOSYS so libcs fall
 * back to clone (moby/moby#42681). */
#define CLONE_NS_FLAGS 0x7E020000ULL

/* ---- building it ------------------------------------------------------------------------------------ */

static json_object *
names_array(const char *const *names)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; names[i]; i++)
        json_object_array_add(a, json_object_new_string(names[i]));
    return a;
}

static json_object *
rule(json_object *names, const char *action, json_object *args)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "names", names);
    json_object_object_add(r, "action", json_object_new_string(action));
    json_object_object_add(r, "args", args ? args : json_object_new_array());
    return r;
}

static json_object *
arg(unsigned index, uint64_t value, uint64_t value_two, const char *op)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "index", json_object_new_int(index));
    json_object_object_add(a, "value", json_object_new_uint64(value));
    json_object_object_add(a, "valueTwo", json_object_new_uint64(value_two));
    json_object_object_add(a, "op", json_object_new_string(op));
    return a;
}

static int
has_cap(const char *const *caps, const char *cap)
{
    /* "CAP_SYS_ADMIN", "SYS_ADMIN" (CRI's spelling) or any case */
    for (size_t i = 0; caps && caps[i]; i++) {
        const char *c = caps[i];
        if (strncasecmp(c, "CAP_", 4) == 0)
            c += 4;
        if (strcasecmp(c, cap + 4) == 0)
            return 1;
    }
    return 0;
}

/* containerd allows ptrace to everyone from kernel 4.8 (before, ptrace could bypass seccomp) */
static int
kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

json_object *
cri_seccomp_default(const char *const *caps)
{
    json_object *syscalls = json_object_new_array();
    json_object_array_add(syscalls, rule(names_array(allow_always), "SCMP_ACT_ALLOW", NULL));
    for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++) {
        json_object *args = json_object_new_array();
        json_object_array_add(args, arg(0, personas[i], 0, "SCMP_CMP_EQ"));
        json_object_array_add(syscalls,
                              rule(names_array(NAMES("personality")), "SCMP_ACT_ALLOW", args));
    }
    if (kernel_at_least(4, 8))
        json_object_array_add(syscalls, rule(names_array(NAMES("ptrace")), "SCMP_ACT_ALLOW", NULL));
    json_object_array_add(syscalls, rule(names_array(allow_amd64), "SCMP_ACT_ALLOW", NULL));
    /* containerd walks the bounding set in its order; the set of rules is what matters, so walk the
     * table and keep containerd's rule order for each capability */
    for (size_t i = 0; caps && caps[i]; i++)
        for (size_t k = 0; k < sizeof(cap_rules) / sizeof(cap_rules[0]); k++)
            if (has_cap((const char *const[]){caps[i], NULL}, cap_rules[k].cap))
                json_object_array_add(
                    syscalls, rule(names_array(cap_rules[k].names), "SCMP_ACT_ALLOW", NULL));
    if (!has_cap(caps, "CAP_SYS_ADMIN")) {
        json_object *args = json_object_new_array();
        json_object_array_add(args, arg(0, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"));
        json_object_array_add(syscalls, rule(names_array(NAMES("clone")), "SCMP_ACT_ALLOW", args));
        json_object *clone3 = rule(names_array(NAMES("clone3")), "SCMP_ACT_ERRNO", NULL);
        json_object_object_add(clone3, "errnoRet", json_object_new_int(ENOSYS));
        json_object_array_add(syscalls, clone3);
    }
    json_object *s = json_object_new_object();
    json_object_object_add(s, "defaultAction", json_object_new_string("SCMP_ACT_ERRNO"));
    json_object_object_add(
        s, "architectures",
        names_array(NAMES("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")));
    json_object_object_add(s, "syscalls", syscalls);
    return s;
}

/* ---- Localhost profiles ------------------------------------------------------------------------------ */

static int
fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return BERTH_EINVAL;
}

static json_object *
member(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void
copy_member(json_object *to, json_object *from, const char *key)
{
    json_object *v = member(from, key);
    if (v)
        json_object_object_add(to, key, json_object_get(v));
}

/* docker's "arches" conditions name Go's GOARCH or libseccomp's; this is amd64 */
static int
arch_matches(json_object *arches)
{
    for (size_t i = 0; i < json_object_array_length(arches); i++) {
        const char *a = json_object_get_string(json_object_array_get_idx(arches, i));
        if (a && (strcmp(a, "amd64") == 0 || strcmp(a, "x86_64") == 0 ||
                  strcmp(a, "SCMP_ARCH_X86_64") == 0))
            return 1;
    }
    return 0;
}

/* docker's includes/excludes: arches and minKernel are known here; a capability condition is not (the
 * profile is read before the capabilities are), so a rule that needs one is left out (denied, the safe
 * side) and a rule excluded by one is kept. */
static int
rule_applies(json_object *r)
{
    json_object *inc = member(r, "includes"), *exc = member(r, "excludes");
    json_object *v;
    if (inc) {
        if ((v = member(inc, "arches")) && json_object_array_length(v) > 0 && !arch_matches(v))
            return 0;
        if ((v = member(inc, "caps")) && json_object_array_length(v) > 0)
            return 0;
        const char *k = json_object_get_string(member(inc, "minKernel"));
        int ma, mi;
        if (k && *k && sscanf(k, "%d.%d", &ma, &mi) == 2 && !kernel_at_least(ma, mi))
            return 0;
    }
    if (exc && (v = member(exc, "arches")) && json_object_array_length(v) > 0 && arch_matches(v))
        return 0;
    return 1;
}

static int
convert_rule(json_object *r, size_t i, json_object *out, char *why, size_t len)
{
    if (!json_object_is_type(r, json_type_object))
        return fail(why, len, "syscalls[%zu]: not an object", i);
    if (!rule_applies(r))
        return 0;
    json_object *names = member(r, "names"), *name = member(r, "name");
    json_object *o = json_object_new_object();
    if (names && json_object_is_type(names, json_type_array)) {
        json_object_object_add(o, "names", json_object_get(names));
    } else if (name && json_object_is_type(name, json_type_string)) {
        json_object *a = json_object_new_array();
        json_object_array_add(a, json_object_get(name));
        json_object_object_add(o, "names", a);
    } else {
        json_object_put(o);
        return fail(why, len, "syscalls[%zu]: no names", i);
    }
    if (!json_object_is_type(member(r, "action"), json_type_string)) {
        json_object_put(o);
        return fail(why, len, "syscalls[%zu]: no action", i);
    }
    copy_member(o, r, "action");
    copy_member(o, r, "errnoRet");
    copy_member(o, r, "args");
    json_object_array_add(out, o);
    return 0;
}

/* docker's archMap: every architecture with its sub-architectures */
static json_object *
architectures_of(json_object *p)
{
    json_object *a = member(p, "architectures"), *map = member(p, "archMap");
    if (a || map == NULL || !json_object_is_type(map, json_type_array))
        return a ? json_object_get(a) : NULL;
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(map); i++) {
        json_object *m = json_object_array_get_idx(map, i);
        json_object *arch = member(m, "architecture"), *subs = member(m, "subArchitectures");
        if (arch)
            json_object_array_add(out, json_object_get(arch));
        for (size_t k = 0; subs && k < json_object_array_length(subs); k++)
            json_object_array_add(out, json_object_get(json_object_array_get_idx(subs, k)));
    }
    return out;
}

int
cri_seccomp_localhost(const char *path, json_object **out, char *why, size_t len)
{
    *out = NULL;
    json_object *p = json_object_from_file(path);
    if (p == NULL) { /* json-c's last error ends in a newline: not in a gRPC message */
        const char *e = json_util_get_last_err();
        return fail(why, len, "seccomp profile %s: %.*s", path, e ? (int)strcspn(e, "\n") : 10,
                    e ? e : "unreadable");
    }
    int rc = 0;
    json_object *s = NULL;
    if (!json_object_is_type(p, json_type_object) ||
        !json_object_is_type(member(p, "defaultAction"), json_type_string)) {
        rc = fail(why, len, "seccomp profile %s: not a profile (no defaultAction)", path);
        goto out;
    }
    s = json_object_new_object();
    copy_member(s, p, "defaultAction");
    copy_member(s, p, "defaultErrnoRet");
    json_object *arches = architectures_of(p);
    if (arches)
        json_object_object_add(s, "architectures", arches);
    copy_member(s, p, "flags");
    copy_member(s, p, "listenerPath");
    copy_member(s, p, "listenerMetadata");
    json_object *rules = member(p, "syscalls");
    if (rules && !json_object_is_type(rules, json_type_array)) {
        rc = fail(why, len, "seccomp profile %s: syscalls is not an array", path);
        goto out;
    }
    json_object *conv = json_object_new_array();
    json_object_object_add(s, "syscalls", conv);
    char sub[200];
    for (size_t i = 0; rules && i < json_object_array_length(rules); i++)
        if (convert_rule(json_object_array_get_idx(rules, i), i, conv, sub, sizeof(sub)) < 0) {
            rc = fail(why, len, "seccomp profile %s: %s", path, sub);
            goto out;
        }
out:
    json_object_put(p);
    if (rc < 0)
        json_object_put(s);
    else
        *out = s;
    return rc;
}
