/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/snapcycle: Prepare + Commit + Remove cycles through containerd's Snapshots API over one HTTP/2
 * connection, one call at a time (what a client unpacking layers does), against any daemon.
 *   snapcycle SOCKET SNAPSHOTTER CYCLES
 * Prints "<cycles> cycles in <s> s: <cycles/s> cycles/s" and exits 1 if any call failed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

typedef struct client {
    int fd;
    nghttp2_session *ng;
    int done, status;
    const uint8_t *body;
    size_t body_len, body_off;
} client_t;

static ssize_t
send_cb(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *u)
{
    ssize_t w = send(((client_t *)u)->fd, d, n, MSG_NOSIGNAL);
    return w < 0 ? (errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE) : w;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
          const uint8_t *v, size_t vl, uint8_t flags, void *u)
{
    if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
        ((client_t *)u)->status = atoi((const char *)v);
    return 0;
}

static int
on_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
    ((client_t *)u)->done = 1;
    return 0;
}

static ssize_t
read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *u)
{
    client_t *c = u;
    size_t n = c->body_len - c->body_off < len ? c->body_len - c->body_off : len;
    memcpy(buf, c->body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == c->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static size_t
field(uint8_t *p, int num, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(num << 3 | 2);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* labels{"containerd.io/gc.root": "bench"}: without a root, GC (run after each Remove) may collect the
 * next cycle's snapshots before they are committed or removed. */
static size_t
gc_root_label(uint8_t *p)
{
    uint8_t entry[64];
    size_t n = field(entry, 1, "containerd.io/gc.root");
    n += field(entry + n, 2, "bench");
    p[0] = 4 << 3 | 2;
    p[1] = (uint8_t)n;
    memcpy(p + 2, entry, n);
    return n + 2;
}

/* One unary call; returns its grpc-status (-1 on transport failure). */
static int
call(client_t *c, const char *path, const uint8_t *msg, size_t len)
{
    uint8_t body[600];
    body[0] = 0;
    body[1] = body[2] = body[3] = 0;
    body[4] = (uint8_t)len;
    memcpy(body + 5, msg, len);
    c->body = body;
    c->body_len = len + 5;
    c->body_off = 0;
    c->done = 0;
    c->status = -1;
    nghttp2_nv h[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        {(uint8_t *)"containerd-namespace", (uint8_t *)"bench", 20, 5, 0},
    };
    nghttp2_data_provider prd = {.read_callback = read_body};
    nghttp2_submit_request(c->ng, NULL, h, 7, &prd, NULL);
    while (!c->done) {
        if (nghttp2_session_send(c->ng) != 0)
            return -1;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            return -1;
        uint8_t buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0 || nghttp2_session_mem_recv(c->ng, buf, (size_t)n) < 0)
            return -1;
    }
    return c->status;
}

/* Counts a failed call, naming the first one so a broken run says why. */
static int
check(int status, const char *what, const char *key)
{
    static int reported;
    if (status == 0)
        return 0;
    if (!reported++)
        fprintf(stderr, "snapcycle: %s %s: grpc-status %d\n", what, key, status);
    return 1;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: snapcycle SOCKET SNAPSHOTTER CYCLES\n");
        return 2;
    }
    client_t c = {.fd = socket(AF_UNIX, SOCK_STREAM, 0)};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    if (connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        return 2;
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_session_client_new(&c.ng, cbs, &c);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(c.ng, NGHTTP2_FLAG_NONE, NULL, 0);
    int cycles = atoi(argv[3]), failed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < cycles; i++) {
        char key[64], name[64];
        snprintf(key, sizeof(key), "bench-key-%d-%ld", i, (long)getpid());
        snprintf(name, sizeof(name), "bench-name-%d-%ld", i, (long)getpid());
        uint8_t m[300];
        size_t n = field(m, 1, argv[2]);
        n += field(m + n, 2, key);
        n += gc_root_label(m + n);
        failed += check(call(&c, "/containerd.services.snapshots.v1.Snapshots/Prepare", m, n),
                        "Prepare", key);
        n = field(m, 1, argv[2]);
        n += field(m + n, 2, name);
        n += field(m + n, 3, key);
        n += gc_root_label(m + n);
        failed += check(call(&c, "/containerd.services.snapshots.v1.Snapshots/Commit", m, n),
                        "Commit", name);
        n = field(m, 1, argv[2]);
        n += field(m + n, 2, name);
        failed += check(call(&c, "/containerd.services.snapshots.v1.Snapshots/Remove", m, n),
                        "Remove", name);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%d cycles in %.3f s: %.0f cycles/s%s\n", cycles, s, cycles / s,
           failed ? " (with failures)" : "");
    nghttp2_session_del(c.ng);
    close(c.fd);
    return failed ? 1 : 0;
}
