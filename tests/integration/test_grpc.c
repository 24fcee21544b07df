/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The grpc module against real clients: Debian's ctr (version, plugins ls, events), and grpcc for what ctr
 * cannot send (Publish, broken frames, compressed and oversized messages, many streams), on a real socket.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "run.h"

static test_dirs_t dirs;
static char sock[400], errlog[400], scratch[400];
static pid_t daemon_pid;

static void
setup(void)
{
    dirs_make(&dirs);
    snprintf(sock, sizeof(sock), "%s/berthd.sock", dirs.state);
    snprintf(errlog, sizeof(errlog), "%s/stderr", dirs.base);
    snprintf(scratch, sizeof(scratch), "%s/out", dirs.base);
    daemon_pid = 0;
}

static void
teardown(void)
{
    if (daemon_pid > 0)
        stop_berthd(daemon_pid, SIGKILL, 5);
    dirs_remove(&dirs);
}

TestSuite(grpc, .init = setup, .fini = teardown);

/* berthd with the built-in modules plus, optionally, one fixture scenario dir. */
static void
start(const char *scenario, const char *set)
{
    char dirs_set[600];
    snprintf(dirs_set, sizeof(dirs_set), "module_dirs=[\"%s/%s\"]", FX_DIR,
             scenario ? scenario : "none");
    const char *argv[] = {
        "--root", dirs.root, "--state", dirs.state, "--set", dirs_set, set ? "--set" : NULL,
        set,      NULL};
    int status = 0;
    daemon_pid = start_berthd(MODULE_DIR, argv, errlog, 30, &status);
    char *log = read_file(errlog);
    cr_assert_gt(daemon_pid, 0, "berthd did not start (exit %d):\n%s", status, log);
    free(log);
}

static int
stop(void)
{
    int rc = stop_berthd(daemon_pid, SIGTERM, 30);
    daemon_pid = 0;
    return rc;
}

static run_result_t
ctr(const char *a, const char *b, const char *c)
{
    const char *argv[] = {CTR, "--address", sock, a, b, c, NULL};
    return run_prog(argv, 30);
}

/* grpcc with up to 8 arguments after the method path. */
static int
grpcc(const char *path, const char *const *args)
{
    const char *argv[16] = {GRPCC, sock, path};
    size_t n = 3;
    for (size_t i = 0; args && args[i] && n < 15; i++)
        argv[n++] = args[i];
    run_result_t r = run_prog(argv, 60);
    int status = r.status;
    if (status != 0)
        cr_log_warn("grpcc %s: %s%s", path, r.out, r.err);
    run_free(&r);
    return status;
}

static void
expect_alive(void)
{
    run_result_t r = ctr("version", NULL, NULL);
    cr_expect_eq(r.status, 0, "berthd stopped answering: %s", r.err);
    run_free(&r);
}

Test(grpc, ctr_version_and_a_stable_uuid)
{
    start(NULL, NULL);
    run_result_t r = ctr("version", NULL, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "Version:  1.6.20+berth") != NULL, "%s", r.out);
    char *uuid = line_with(r.out, "UUID: ");
    cr_assert(uuid != NULL, "%s", r.out);
    run_free(&r);
    cr_expect_eq(stop(), 0);
    start(NULL, NULL);
    r = ctr("version", NULL, NULL);
    cr_expect(strstr(r.out, uuid) != NULL, "UUID changed across a restart: was %s, now\n%s", uuid,
              r.out);
    free(uuid);
    run_free(&r);
    cr_expect_eq(stop(), 0);
}

Test(grpc, socket_is_0660)
{
    start(NULL, NULL);
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_expect(S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0660);
    cr_expect_eq(stop(), 0);
    cr_expect_neq(access(sock, F_OK), 0, "the socket should be gone after a clean stop");
}

static void
expect_ctr_row(const char *out, const char *needle, const char *status)
{
    char *line = line_with(out, needle);
    cr_assert(line != NULL, "no row with %s in:\n%s", needle, out);
    cr_expect(strstr(line, status) != NULL, "`%s` lacks %s", line, status);
    free(line);
}

Test(grpc, ctr_plugins_ls_shows_status_and_reason)
{
    start("graph", NULL);
    run_result_t r = ctr("plugins", "ls", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    expect_ctr_row(r.out, "io.berth.transport.v1", " ok");
    expect_ctr_row(r.out, "exchange", " ok");
    expect_ctr_row(r.out, "test.graph.fail.v1", "error");
    expect_ctr_row(r.out, "test.graph.skip.v1", "skip");
    expect_ctr_row(r.out, "test.graph.failuser.v1", "error");
    run_free(&r);
    r = ctr("plugins", "ls", "-d");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "test.graph.fail.v1.fail failed on purpose") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "dep-unavailable: requires test.graph.fail.v1") != NULL, "%s", r.out);
    run_free(&r);
    r = ctr("plugins", "ls", "type==io.containerd.grpc.v1");
    cr_expect(strstr(r.out, "version") != NULL && strstr(r.out, "exchange") == NULL, "%s", r.out);
    run_free(&r);
    cr_expect_eq(stop(), 0);
}

static pid_t
ctr_events(const char *filter)
{
    const char *argv[] = {CTR, "--address", sock, "events", filter, NULL};
    pid_t pid = spawn_to_file(argv, scratch);
    usleep(300 * 1000); /* subscribed */
    return pid;
}

Test(grpc, ctr_events_sees_what_a_module_publishes)
{
    start("publisher", NULL);
    pid_t pid = ctr_events(NULL);
    usleep(500 * 1000);
    kill(pid, SIGTERM);
    wait_exit(pid, 10);
    char *out = read_file(scratch);
    cr_expect(strstr(out, "default /test/tick {\"id\":\"tick\"}") != NULL, "%s", out);
    free(out);
    cr_expect_eq(stop(), 0);
}

Test(grpc, published_events_reach_filtered_subscribers)
{
    start(NULL, NULL);
    pid_t pid = ctr_events("topic==\"/test/rpc\"");
    const char *rpc[] = {"--publish", "/test/rpc", "containerd.events.ContainerCreate", "\n\002c1",
                         NULL};
    const char *other[] = {"--publish", "/test/other", "containerd.events.ContainerCreate",
                           "\n\002c2", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Publish", rpc), 0);
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Publish", other), 0);
    usleep(300 * 1000);
    kill(pid, SIGTERM);
    wait_exit(pid, 10);
    char *out = read_file(scratch);
    cr_expect(strstr(out, "default /test/rpc {\"id\":\"c1\"}") != NULL, "%s", out);
    cr_expect(strstr(out, "/test/other") == NULL, "%s", out);
    free(out);
    cr_expect_eq(stop(), 0);
}

Test(grpc, errors_carry_containerds_codes)
{
    start(NULL, NULL);
    const char *unimpl[] = {"--expect", "12", NULL};
    cr_expect_eq(grpcc("/containerd.services.nope.v1.Nope/List", unimpl), 0);
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Nope", unimpl), 0);
    const char *bad_ns[] = {"--ns", "bad/ns", "--publish", "/t", "x", "y", "--expect", "3", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Publish", bad_ns), 0);
    const char *no_ns[] = {"--ns", "", "--publish", "/t", "x", "y", "--expect", "9", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Publish", no_ns), 0);
    const char *bad_topic[] = {"--publish", "no-slash", "x", "y", "--expect", "3", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Publish", bad_topic), 0);
    const char *deadline[] = {"--timeout", "200m", "--expect", "4", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Subscribe", deadline), 0);
    const char *health[] = {NULL};
    cr_expect_eq(grpcc("/grpc.health.v1.Health/Check", health), 0);
    cr_expect_eq(stop(), 0);
}

/* Writes bytes on a fresh connection and waits for berthd to hang up. Returns bytes read back. */
static ssize_t
raw_exchange(const void *data, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[4096];
    ssize_t total = 0, n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += n;
    cr_expect_eq(n, 0, "berthd should close the connection");
    close(fd);
    return total;
}

Test(grpc, hostile_clients_get_an_error_or_a_close)
{
    start(NULL, "plugins.io.berth.transport.v1.grpc.max_message_size=4096");
    static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_exchange(garbage, sizeof(garbage) - 1);
    /* preface, empty SETTINGS, then a HEADERS frame announcing 1 MiB: over SETTINGS_MAX_FRAME_SIZE */
    static const unsigned char big_frame[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                             "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                             "\x10\x00\x00\x01\x04\x00\x00\x00\x01"
                                             "0123456789";
    cr_expect_gt(raw_exchange(big_frame, sizeof(big_frame) - 1), 0, "expected a GOAWAY");
    const char *big[] = {"--size", "8000", "--expect", "8", NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", big), 0);
    const char *lying[] = {"--declared-len", "100000", "--expect", "8", NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", lying), 0);
    const char *zipped[] = {"--compressed", "--expect", "13", NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", zipped), 0);
    const char *many[] = {"--streams", "1000", NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", many), 0);
    const char *many_subs[] = {"--streams", "200", "--timeout", "300m", "--expect", "4", NULL};
    cr_expect_eq(grpcc("/containerd.services.events.v1.Events/Subscribe", many_subs), 0);
    pid_t pid = ctr_events(NULL);
    kill(pid, SIGKILL); /* a client that dies mid-stream */
    wait_exit(pid, 10);
    expect_alive();
    cr_expect_eq(stop(), 0,
                 "berthd did not stop cleanly (a leak or a crash under ASan shows here)");
}

Test(grpc, shutdown_tells_subscribers_unavailable)
{
    start(NULL, NULL);
    pid_t pid = ctr_events(NULL);
    cr_expect_eq(stop(), 0);
    cr_expect_eq(wait_exit(pid, 10), 1);
    char *out = read_file(scratch);
    cr_expect(strstr(out, "code = Unavailable desc = server shutting down") != NULL, "%s", out);
    free(out);
}

Test(grpc, modules_service_lists_files_and_reasons)
{
    start("graph", NULL);
    const char *argv[] = {GRPCC, sock, "/berth.services.modules.v1.Modules/List", NULL};
    run_result_t r = run_prog(argv, 30);
    cr_expect_eq(r.status, 0, "%s", r.out);
    cr_expect(strstr(r.out, "fx_fail.so") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "test.graph.fail.v1.fail failed on purpose") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "dep-unavailable") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "1.0") != NULL, "the module ABI version is missing: %s", r.out);
    run_free(&r);
    const char *filtered[] = {
        GRPCC, sock, "/berth.services.modules.v1.Modules/List", "--hex", "0a0a7374617475733d3d6f6b",
        NULL}; /* filters: ["status==ok"] */
    r = run_prog(filtered, 30);
    cr_expect(strstr(r.out, "fx_base.so") != NULL && strstr(r.out, "failed on purpose") == NULL,
              "%s", r.out);
    run_free(&r);
    cr_expect_eq(stop(), 0);
}

Test(grpc, a_module_wraps_a_handler_through_the_hook)
{
    start("wrap", NULL);
    const char *denied[] = {"--ns", "forbidden", "--expect", "7", NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", denied), 0);
    const char *allowed[] = {NULL};
    cr_expect_eq(grpcc("/containerd.services.version.v1.Version/Version", allowed), 0);
    expect_alive();
    cr_expect_eq(stop(), 0);
}

static run_result_t
ctr_v(const char *const *args)
{
    const char *argv[16] = {CTR, "--address", sock};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    return run_prog(argv, 30);
}

static void
ctr_ok(const char *const *args, const char *expect_out)
{
    run_result_t r = ctr_v(args);
    cr_expect_eq(r.status, 0, "ctr %s %s: %s", args[0], args[1] ? args[1] : "", r.err);
    if (expect_out)
        cr_expect(strstr(r.out, expect_out) != NULL, "ctr %s %s: expected `%s` in:\n%s", args[0],
                  args[1] ? args[1] : "", expect_out, r.out);
    run_free(&r);
}

static void
ctr_fails(const char *const *args, const char *expect_err)
{
    run_result_t r = ctr_v(args);
    cr_expect_neq(r.status, 0, "ctr %s %s should fail", args[0], args[1] ? args[1] : "");
    cr_expect(strstr(r.err, expect_err) != NULL, "expected `%s` in:\n%s", expect_err, r.err);
    run_free(&r);
}

Test(grpc, ctr_namespaces_create_ls_label_rm)
{
    start(NULL, NULL);
    ctr_ok((const char *[]){"namespaces", "create", "team", "a=b", NULL}, NULL);
    ctr_fails((const char *[]){"namespaces", "create", "team", NULL},
              "namespace \"team\": already exists");
    ctr_ok((const char *[]){"namespaces", "ls", NULL}, "team a=b");
    ctr_ok((const char *[]){"namespaces", "label", "team", "c=d", NULL}, NULL);
    ctr_ok((const char *[]){"namespaces", "ls", NULL}, "a=b,c=d");
    ctr_ok((const char *[]){"namespaces", "label", "team", "a=", NULL}, NULL);
    ctr_ok((const char *[]){"namespaces", "ls", "-q", NULL}, "team");
    ctr_fails((const char *[]){"namespaces", "create", "bad/ns", NULL}, "invalid argument");
    ctr_ok((const char *[]){"namespaces", "rm", "team", NULL}, "team");
    /* ctr ignores NotFound on rm, as with containerd; the status itself is checked with grpcc */
    ctr_ok((const char *[]){"namespaces", "rm", "team", NULL}, NULL);
    const char *gone[] = {"--hex", "0a047465616d", "--expect", "5",
                          NULL}; /* DeleteNamespaceRequest{"team"} */
    cr_expect_eq(grpcc("/containerd.services.namespaces.v1.Namespaces/Delete", gone), 0);
    run_result_t r = ctr_v((const char *[]){"namespaces", "ls", "-q", NULL});
    cr_expect(strstr(r.out, "team") == NULL, "%s", r.out);
    run_free(&r);
    /* the records live in LMDB: they survive a restart */
    ctr_ok((const char *[]){"namespaces", "create", "kept", NULL}, NULL);
    cr_expect_eq(stop(), 0);
    start(NULL, NULL);
    ctr_ok((const char *[]){"namespaces", "ls", "-q", NULL}, "kept");
    cr_expect_eq(stop(), 0);
}

/* grpcc's output, for a check on the response bytes. */
static char *
grpcc_out(const char *path, const char *const *args)
{
    const char *argv[16] = {GRPCC, sock, path};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    run_result_t r = run_prog(argv, 60);
    cr_expect_eq(r.status, 0, "grpcc %s: %s%s", path, r.out, r.err);
    char *out = strdup(r.out ? r.out : "");
    run_free(&r);
    return out;
}

/* containerd's client prepends a containerd-namespace (and -lease) value each time one is set on a
 * context that has one, and containerd goes by the first value: so does berthd. */
Test(grpc, repeated_namespace_and_lease_headers_first_wins)
{
    start(NULL, NULL);
    /* Leases.Create{id: "L1"}, sent with namespace "first" and then "second" */
    const char *create[] = {"--ns",  "first",    "--header", "containerd-namespace=second",
                            "--hex", "0a024c31", NULL};
    cr_expect_eq(grpcc("/containerd.services.leases.v1.Leases/Create", create), 0);
    ctr_ok((const char *[]){"-n", "first", "leases", "ls", "-q", NULL}, "L1");
    run_result_t r = ctr_v((const char *[]){"-n", "second", "leases", "ls", "-q", NULL});
    cr_expect(strstr(r.out, "L1") == NULL, "the lease went to the second namespace:\n%s", r.out);
    run_free(&r);
    /* Snapshots.Prepare{snapshotter: "overlayfs", key: "k1"} under leases L2 (first) and L1 */
    ctr_ok((const char *[]){"-n", "first", "leases", "create", "--id", "L2", NULL}, "L2");
    const char *prepare[] = {"--ns",     "first",
                             "--header", "containerd-lease=L2",
                             "--header", "containerd-lease=L1",
                             "--hex",    "0a096f7665726c6179667312026b31",
                             NULL};
    cr_expect_eq(grpcc("/containerd.services.snapshots.v1.Snapshots/Prepare", prepare), 0);
    /* Leases.ListResources{id} */
    char *in_l2 = grpcc_out("/containerd.services.leases.v1.Leases/ListResources",
                            (const char *[]){"--ns", "first", "--hex", "0a024c32", NULL});
    char *in_l1 = grpcc_out("/containerd.services.leases.v1.Leases/ListResources",
                            (const char *[]){"--ns", "first", "--hex", "0a024c31", NULL});
    cr_expect(strstr(in_l2, "k1") != NULL && strstr(in_l2, "snapshots/overlayfs") != NULL,
              "the snapshot is not in the first lease:\n%s", in_l2);
    cr_expect(strstr(in_l1, "k1") == NULL, "the snapshot went to the second lease:\n%s", in_l1);
    free(in_l2);
    free(in_l1);
    ctr_ok((const char *[]){"-n", "first", "snapshots", "rm", "k1", NULL}, NULL);
    cr_expect_eq(stop(), 0);
}

Test(grpc, ctr_leases_create_ls_rm)
{
    start(NULL, NULL);
    ctr_ok((const char *[]){"-n", "team", "leases", "create", "--id", "L1", NULL}, "L1");
    ctr_fails((const char *[]){"-n", "team", "leases", "create", "--id", "L1", NULL},
              "lease \"L1\": already exists");
    ctr_ok((const char *[]){"-n", "team", "leases", "create", NULL}, NULL);
    ctr_ok((const char *[]){"-n", "team", "leases", "ls", NULL}, "containerd.io/gc.expire=");
    ctr_ok((const char *[]){"-n", "team", "leases", "ls", "-q", NULL}, "L1");
    ctr_ok((const char *[]){"-n", "other", "leases", "ls", "-q", NULL}, NULL);
    ctr_ok((const char *[]){"-n", "team", "leases", "rm", "L1", NULL}, NULL);
    ctr_fails((const char *[]){"-n", "team", "leases", "rm", "L1", NULL},
              "lease \"L1\": not found");
    run_result_t r = ctr_v((const char *[]){"-n", "team", "leases", "ls", "-q", NULL});
    cr_expect(strstr(r.out, "L1") == NULL, "%s", r.out);
    run_free(&r);
    cr_expect_eq(stop(), 0);
}

/* ctr content ingest reads stdin: run it through sh with a file redirected in. */
static run_result_t
ctr_sh(const char *fmt, const char *arg)
{
    char cmd[2048], inner[1600];
    snprintf(inner, sizeof(inner), fmt, arg);
    snprintf(cmd, sizeof(cmd), "%s --address %s %s", CTR, sock, inner);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return run_prog(argv, 60);
}

Test(grpc, ctr_content_ingest_ls_get_label_rm)
{
    start(NULL, NULL);
    char blob[400];
    snprintf(blob, sizeof(blob), "%s/blob", dirs.base);
    FILE *f = fopen(blob, "w");
    for (int i = 0; i < 300000; i++)
        fprintf(f, "line %d of a blob that spans several write messages\n", i);
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "sha256sum %s | cut -c1-64", blob);
    FILE *p = popen(cmd, "r");
    char hex[80] = "", digest[90];
    cr_assert(fgets(hex, sizeof(hex), p) != NULL);
    pclose(p);
    hex[64] = '\0';
    snprintf(digest, sizeof(digest), "sha256:%s", hex);

    run_result_t r = ctr_sh("content ingest myref < %s", blob);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
    ctr_ok((const char *[]){"content", "ls", NULL}, digest);
    r = ctr_sh("content get %s | sha256sum", digest);
    cr_expect(strncmp(r.out, hex, 64) == 0, "content get gave %s", r.out);
    run_free(&r);
    ctr_ok((const char *[]){"content", "label", digest, "team=berth", NULL}, NULL);
    ctr_ok((const char *[]){"content", "ls", NULL}, "team=berth");
    r = ctr_v((const char *[]){"-n", "other", "content", "ls", "-q", NULL});
    cr_expect(strstr(r.out, hex) == NULL, "another namespace sees the blob:\n%s", r.out);
    run_free(&r);

    /* a wrong expected digest: nothing is published, the error says why */
    r = ctr_sh("content ingest --expected-digest "
               "sha256:0000000000000000000000000000000000000000000000000000000000000000 bad < %s",
               blob);
    cr_expect_neq(r.status, 0);
    cr_expect(strstr(r.err, "unexpected commit digest") != NULL, "%s", r.err);
    run_free(&r);
    ctr_ok((const char *[]){"content", "active", NULL}, "bad");

    /* shared policy: the same bytes in another namespace link the stored blob */
    char expect_arg[200];
    snprintf(expect_arg, sizeof(expect_arg),
             "-n other content ingest --expected-digest %s again < %%s", digest);
    r = ctr_sh(expect_arg, blob);
    run_free(&r);
    ctr_ok((const char *[]){"-n", "other", "content", "ls", "-q", NULL}, digest);
    /* a root there, or the collector that follows the rm below takes it (no lease, no root: garbage) */
    ctr_ok((const char *[]){"-n", "other", "content", "label", digest, "containerd.io/gc.root=test",
                            NULL},
           NULL);

    ctr_ok((const char *[]){"content", "rm", digest, NULL}, NULL);
    r = ctr_v((const char *[]){"content", "ls", "-q", NULL});
    cr_expect(strstr(r.out, hex) == NULL, "%s", r.out);
    run_free(&r);
    r = ctr_sh("-n other content get %s | sha256sum", digest);
    cr_expect(strncmp(r.out, hex, 64) == 0, "the other namespace lost the blob: %s %s", r.out,
              r.err);
    run_free(&r);
    cr_expect_eq(stop(), 0);
}

/* Ingests `text` as a blob; fills digest. */
static void
ingest_text(const char *name, const char *text, char digest[90])
{
    char path[400], cmd[600];
    snprintf(path, sizeof(path), "%s/%s", dirs.base, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "sha256sum %s | cut -c1-64", path);
    FILE *p = popen(cmd, "r");
    char hex[80] = "";
    cr_assert(fgets(hex, sizeof(hex), p) != NULL);
    pclose(p);
    hex[64] = '\0';
    snprintf(digest, 90, "sha256:%s", hex);
    char arg[500];
    snprintf(arg, sizeof(arg), "content ingest %s < %s", name, path);
    run_result_t r = ctr_sh("%s", arg);
    cr_assert_eq(r.status, 0, "%s", r.err);
    run_free(&r);
}

static int
count_lines(const char *text, const char *with)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, with)) != NULL; p += strlen(with))
        n++;
    return n;
}

static int
leases_in(const char *ns)
{
    run_result_t r = ctr_v((const char *[]){"-n", ns, "leases", "ls", "-q", NULL});
    cr_expect_eq(r.status, 0, "%s", r.err);
    int n = count_lines(r.out, "lease-");
    run_free(&r);
    return n;
}

/* The smallest map_size, then some 6.5 MiB of lease labels: the map grows (three doublings at least),
 * every write lands, and a restart with the same setting finds all of it and grows on. */
Test(grpc, a_tiny_metadata_map_grows_and_survives_a_restart)
{
    const char *tiny = "plugins.\"io.containerd.metadata.v1.lmdb\".map_size=1048576";
    start(NULL, tiny);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "pad=$(head -c 4000 /dev/zero | tr '\\0' x); for i in $(seq 1 160); do "
             "%s --address %s -n big leases create --id lease-$i a=$pad b=$pad c=$pad d=$pad "
             "e=$pad f=$pad g=$pad h=$pad i=$pad j=$pad >/dev/null || exit 1; done",
             CTR, sock);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    run_result_t r = run_prog(argv, 240);
    cr_assert_eq(r.status, 0, "creating leases failed: %s", r.err);
    run_free(&r);
    cr_expect_eq(leases_in("big"), 160);
    char *log = read_file(errlog);
    cr_expect_geq(count_lines(log, "map grown from"), 3, "berthd's log:\n%s", log);
    cr_expect(strstr(log, "map grown from 1048576 to 2097152 bytes") != NULL, "%s", log);
    free(log);
    cr_expect_eq(stop(), 0);
    start(NULL, tiny);
    cr_expect_eq(leases_in("big"), 160, "leases lost across the restart");
    ctr_ok((const char *[]){"-n", "big", "leases", "create", "--id", "lease-after", NULL}, NULL);
    cr_expect_eq(leases_in("big"), 161);
    cr_expect_eq(stop(), 0);
}

/* AddResourceRequest{id, resource{id: digest, type: "content"}}, hand-encoded for grpcc. */
static void
lease_add_content(const char *lease, const char *digest)
{
    unsigned char res[200], msg[300];
    size_t dl = strlen(digest), rn = 0, mn = 0;
    res[rn++] = 0x0a, res[rn++] = (unsigned char)dl;
    memcpy(res + rn, digest, dl), rn += dl;
    res[rn++] = 0x12, res[rn++] = 7;
    memcpy(res + rn, "content", 7), rn += 7;
    msg[mn++] = 0x0a, msg[mn++] = (unsigned char)strlen(lease);
    memcpy(msg + mn, lease, strlen(lease)), mn += strlen(lease);
    msg[mn++] = 0x12, msg[mn++] = (unsigned char)rn;
    memcpy(msg + mn, res, rn), mn += rn;
    char hex[700];
    for (size_t i = 0; i < mn; i++)
        sprintf(hex + 2 * i, "%02x", msg[i]);
    const char *args[] = {"--hex", hex, NULL};
    cr_assert_eq(grpcc("/containerd.services.leases.v1.Leases/AddResource", args), 0);
}

static int
listed(const char *digest)
{
    run_result_t r = ctr_v((const char *[]){"content", "ls", "-q", NULL});
    int found = strstr(r.out, digest) != NULL;
    run_free(&r);
    return found;
}

Test(grpc, gc_keeps_roots_references_and_leases)
{
    start(NULL, NULL);
    char a[90], b[90], c[90], d[90], e[90];
    ingest_text("a", "nothing holds me\n", a);
    ingest_text("b", "a root\n", b);
    ingest_text("c", "referenced by the root\n", c);
    ingest_text("d", "held by a lease\n", d);
    ingest_text("e", "held by a lease that expires\n", e);
    char ref_label[200];
    snprintf(ref_label, sizeof(ref_label), "containerd.io/gc.ref.content.child=%s", c);
    ctr_ok((const char *[]){"content", "label", b, "containerd.io/gc.root=yes", ref_label, NULL},
           NULL);
    ctr_ok((const char *[]){"leases", "create", "--id", "keep", NULL}, NULL);
    ctr_ok((const char *[]){"leases", "create", "--id", "brief", "--expires", "1s", NULL}, NULL);
    ctr_ok((const char *[]){"leases", "create", "--id", "trigger", NULL}, NULL);
    lease_add_content("keep", d);
    lease_add_content("brief", e);
    cr_expect(listed(a));
    sleep(2); /* "brief" expires */
    ctr_ok((const char *[]){"leases", "rm", "--sync", "trigger", NULL}, NULL);
    cr_expect(!listed(a), "a blob nothing holds survived a collection");
    cr_expect(!listed(e), "a blob of an expired lease survived a collection");
    cr_expect(listed(b) && listed(c) && listed(d), "a held blob was collected");
    run_result_t r = ctr_v((const char *[]){"leases", "ls", "-q", NULL});
    cr_expect(strstr(r.out, "brief") == NULL && strstr(r.out, "keep") != NULL, "%s", r.out);
    run_free(&r);
    ctr_ok((const char *[]){"leases", "rm", "--sync", "keep", NULL}, NULL);
    cr_expect(!listed(d), "a blob outlived its lease");
    cr_expect(listed(b) && listed(c));
    /* the bytes went with the records: blobs left on disk are exactly b and c */
    char cmd[500];
    snprintf(cmd, sizeof(cmd), "ls %s/io.containerd.content.v1.content/blobs/sha256 | wc -l",
             dirs.root);
    FILE *p = popen(cmd, "r");
    char n[16] = "";
    cr_assert(fgets(n, sizeof(n), p) != NULL);
    pclose(p);
    cr_expect_eq(atoi(n), 2, "blobs on disk: %s", n);
    cr_expect_eq(stop(), 0);
}

/* Runs the mount command `ctr snapshots mounts` prints for key at target. */
static void
mount_snapshot(const char *target, const char *key)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && eval \"$(%s --address %s snapshots mounts %s %s)\"",
             target, CTR, sock, target, key);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    run_result_t r = run_prog(argv, 30);
    cr_assert_eq(r.status, 0, "mount %s: %s", key, r.err);
    run_free(&r);
}

static void
umount_snapshot(const char *target)
{
    const char *argv[] = {"/bin/umount", target, NULL};
    run_result_t r = run_prog(argv, 30);
    cr_expect_eq(r.status, 0, "umount %s: %s", target, r.err);
    run_free(&r);
}

Test(grpc, ctr_snapshots_on_overlayfs)
{
    /* no background collection here: a view carries no gc.root, and collecting is not this test's subject */
    start(NULL, "plugins.io.containerd.gc.v1.scheduler.schedule_delay_ms=0");
    char mnt[400], path[500];
    snprintf(mnt, sizeof(mnt), "%s/mnt", dirs.base);
    ctr_ok((const char *[]){"snapshots", "prepare", "base", NULL}, NULL);
    mount_snapshot(mnt, "base");
    snprintf(path, sizeof(path), "%s/a", mnt);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs("from the base layer\n", f);
    fclose(f);
    umount_snapshot(mnt);
    ctr_ok((const char *[]){"snapshots", "commit", "base-c", "base", NULL}, NULL);
    ctr_ok((const char *[]){"snapshots", "prepare", "child", "base-c", NULL}, NULL);
    mount_snapshot(mnt, "child");
    char *a = read_file(path);
    cr_expect_str_eq(a, "from the base layer\n");
    free(a);
    cr_expect_eq(unlink(path), 0); /* a whiteout in the upper layer */
    umount_snapshot(mnt);
    ctr_ok((const char *[]){"snapshots", "view", "look", "base-c", NULL}, NULL);
    mount_snapshot(mnt, "look");
    a = read_file(path);
    cr_expect_str_eq(a, "from the base layer\n",
                     "the committed layer must not see the child's delete");
    free(a);
    int fd = open(path, O_WRONLY | O_APPEND);
    cr_expect_lt(fd, 0, "a view must be read-only");
    if (fd >= 0)
        close(fd);
    umount_snapshot(mnt);
    ctr_ok((const char *[]){"snapshots", "ls", NULL}, "child  base-c Active");
    ctr_ok((const char *[]){"snapshots", "info", "child", NULL}, "\"Parent\": \"base-c\"");
    ctr_ok((const char *[]){"snapshots", "label", "child", "team=berth", NULL}, "team=berth");
    ctr_ok((const char *[]){"snapshots", "usage", "child", NULL}, "INODES");
    ctr_ok((const char *[]){"snapshots", "tree", NULL}, "\\_ child");
    ctr_fails((const char *[]){"snapshots", "rm", "base-c", NULL},
              "cannot remove snapshot with child");
    ctr_fails((const char *[]){"snapshots", "prepare", "child", NULL}, "already exists");
    ctr_fails((const char *[]){"snapshots", "prepare", "x", "nope", NULL}, "not found");
    ctr_fails((const char *[]){"snapshots", "commit", "look-c", "look", NULL}, "not active");
    ctr_fails((const char *[]){"snapshots", "--snapshotter", "nope", "ls", NULL},
              "snapshotter nope: not loaded");
    ctr_ok((const char *[]){"snapshots", "rm", "child", "look", "base-c", NULL}, NULL);
    run_result_t r = ctr_v((const char *[]){"snapshots", "ls", NULL});
    cr_expect(strstr(r.out, "base-c") == NULL, "%s", r.out);
    run_free(&r);
    /* the records live on: a restart keeps a snapshot */
    ctr_ok((const char *[]){"snapshots", "prepare", "kept", NULL}, NULL);
    cr_expect_eq(stop(), 0);
    start(NULL, NULL);
    ctr_ok((const char *[]){"snapshots", "ls", NULL}, "kept");
    cr_expect_eq(stop(), 0);
}
