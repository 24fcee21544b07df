/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The gRPC transport's internals: one server (a unix-socket listener), connections (one nghttp2 server
 * session each) and streams (one call each). Everything here lives on the loop thread except the unary
 * handler that runs on a pool thread, which touches only its own `work` copy.
 */
#ifndef BERTH_GRPC_TRANSPORT_H
#define BERTH_GRPC_TRANSPORT_H

#include <pthread.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <berth/grpc.h>
#include <berth/module.h>

/* One io.containerd.grpc.v1 instance being served. A reload may finish it while calls are open
 * (BERTH_CHANGE_REMOVING): it then answers Unavailable until the reload either brings the service back as
 * a new record or drops its routes. Loop thread, except `working`. */
typedef struct service {
    char *name; /* "containerd.services.version.v1.Version" */
    void *instance;
    const berth_grpc_service_v1_t *ops;
    int removing; /* its plugin is being finished: routes answer Unavailable, calls are ended */
    int refs;     /* the routing table's (while routed), one per stream routed to it */
    int working;  /* unary calls on pool threads (under server.work_lock) */
} service_t;

typedef struct route {
    char *path; /* "/pkg.Service/Method"; NULL in a stream's copy */
    const berth_grpc_method_t *method;
    service_t *svc;
    void *instance;            /* svc->instance */
    berth_rpc_handler_t unary; /* after the api.handler-update hook */
} route_t;

typedef struct buf {
    uint8_t *data;
    size_t len, cap;
} buf_t;

typedef struct server server_t;
typedef struct conn conn_t;

struct berth_grpc_stream_s {
    conn_t *conn;
    int32_t id;
    char *path;
    char namespace_[80];
    char lease[256];
    int bad_namespace;      /* header present but too long to keep */
    int seen_namespace;     /* a containerd-namespace header came: later ones are ignored */
    int seen_lease;         /* likewise for containerd-lease */
    int grpc_content_type;  /* content-type starts with application/grpc */
    int compressed_allowed; /* a grpc-encoding was sent (we still refuse compressed bodies) */
    int64_t timeout_ms;     /* from grpc-timeout, -1 = none */
    const route_t
        *route; /* NULL, or &routed: a copy taken at dispatch, holding a ref on its service */
    route_t routed;
    buf_t in;        /* request bytes not yet framed into messages */
    int messages_in; /* complete request messages seen */
    buf_t unary_req; /* the unary request message */
    buf_t out;       /* framed response messages waiting for the data provider */
    size_t out_off;
    int response_started; /* HEADERS submitted */
    int finished;         /* status decided; trailers follow the data */
    int trailers_sent;
    int status; /* gRPC status code */
    char *status_message;
    int opened;  /* a stream handler's open ran; `closed` is owed */
    int in_work; /* a unary handler runs on the pool */
    int gone;    /* nghttp2 closed the stream */
    void *user;
    void (*part)(void *user, const uint8_t *msg, size_t have, size_t len); /* set_part_handler */
    uv_timer_t *deadline;
    struct berth_grpc_stream_s *next, *prev;
};
typedef struct berth_grpc_stream_s stream_t;

struct conn {
    server_t *srv;
    uv_pipe_t pipe;
    nghttp2_session *ng;
    stream_t *streams;
    int in_nghttp2; /* inside mem_recv: flushing must wait */
    int closing;
    int refs; /* the pipe, plus one per stream in pool work */
    struct conn *next, *prev;
};

struct server {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    uv_loop_t *loop;
    char *uri;
    uv_pipe_t listener;
    int listening;
    char *address;
    int64_t max_message;
    int64_t max_streams;
    route_t *routes;
    size_t nroutes;
    conn_t *conns;
    int closing;
    int refs;                   /* listener + connections */
    berth_ready_token_t *ready; /* held until the socket accepts */
    pthread_mutex_t work_lock;  /* counts handlers running on pool threads */
    pthread_cond_t work_done;
    int working;
    int hooks_run; /* api.handler-update ran: a reload re-runs it over fresh routes */
    /* services arrived since api.handler-update last ran (a plugin initialised on first use, or a
     * reload not over yet): it is owed over them before a call routes, as a reload's end would run it */
    int rehook_pending;
    /* extra_addresses: more sockets serving the same routes (the CRI's for kubelet, say) */
    struct extra_listener **extra;
    size_t n_extra;
};

typedef struct extra_listener {
    uv_pipe_t pipe; /* data: the server */
    char *address;
    int listening;
} extra_listener_t;

/* status.c */
int grpc_status_of(int berth_code);
/* The message as grpc-message wants it: the class suffix containerd's errdefs would add, then
 * percent-encoded. Caller frees. */
char *grpc_status_message(int berth_code, const char *message);
/* Percent-encodes everything outside 0x20..0x7e, and '%'. Caller frees. */
char *grpc_percent_encode(const char *s);
/* grpc-timeout ("10S", "4999949u") in milliseconds, rounded up; -1 if malformed. */
int64_t grpc_parse_timeout(const char *v, size_t len);

/* call.c */
void call_headers_done(stream_t *st);
int call_data(stream_t *st, const uint8_t *data, size_t len);
void call_end_of_input(stream_t *st);
void call_stream_gone(stream_t *st);
void call_finish(stream_t *st, int code, const char *message);
extern const berth_grpc_stream_api_t grpc_stream_api;
const route_t *routes_find(const server_t *srv, const char *path);
void service_unref(service_t *svc);
/* BERTH_CHANGE_REMOVING for one service: Unavailable from now on, its open streams ended (their `closed`
 * run now), its unary calls on the pool waited for. */
void calls_end_service(server_t *srv, service_t *svc);

/* server.c */
/* Runs api.handler-update again when services came since it last ran (rehook_pending). Loop thread. */
void server_rehook(server_t *srv);

/* transport.c */
/* Binds the socket (mode, owner); server_accept starts taking connections; server_stop ends it all. */
int server_listen(server_t *srv, int64_t uid, int64_t gid, int64_t mode, berth_error_t **err);
int server_accept(server_t *srv, berth_error_t **err);
void server_stop(server_t *srv);
void server_unref(server_t *srv);
void conn_flush(conn_t *c);
void conn_unref(conn_t *c);
void buf_append(buf_t *b, const void *data, size_t len);
void buf_free(buf_t *b);

#endif
