/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The streaming server's parts (stream.c: server, URLs, transports; stream_exec.c: exec and attach;
 * stream_pf.c: port-forward). Everything here runs on the loop thread unless it says otherwise.
 */
#ifndef BERTH_CRI_STREAM_INT_H
#define BERTH_CRI_STREAM_INT_H

#include <uv.h>
#include "lib_wslay.h" /* opened on first use, by a WebSocket upgrade */

#include "cri.h"
#include "stream_proto.h"

typedef enum sreq_kind { SREQ_EXEC, SREQ_ATTACH, SREQ_PORTFORWARD } sreq_kind_t;

/* A validated Exec/Attach/PortForward request kept under its single-use token. */
typedef struct sreq {
    struct sreq *next;
    char token[33];
    sreq_kind_t kind;
    char id[65]; /* the container (exec, attach) or the pod (port-forward) */
    char **cmd;  /* exec: NULL-terminated */
    int in, out, err, tty;
    int32_t *ports;
    size_t n_ports;
    uint64_t expires_ms; /* uv_hrtime()/1e6 based */
} sreq_t;

void sreq_free(sreq_t *r);

/* remotecommand channels (the WebSocket channel numbers) */
enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_ERROR = 3, CH_RESIZE = 4, CH_COUNT = 5 };

typedef struct sconn sconn_t;
typedef struct rcs rcs_t; /* stream_exec.c: an exec or attach session */
typedef struct pfs pfs_t; /* stream_pf.c: the port-forward pairs of a connection */
typedef struct pfpair pfpair_t;

struct sconn {
    sconn_t *next, *prev;
    cri_stream_server_t *srv;
    cri_t *c;
    uv_tcp_t tcp;
    int handles; /* open uv handles of this connection (tcp, the sessions'); freed at 0 with refs 0 */
    int refs;    /* work in flight */
    int closing, ended;
    sbuf_t in;
    enum { MODE_HEAD, MODE_SPDY, MODE_WS } mode;
    sreq_t *req;
    rc_proto_t proto;
    /* SPDY */
    spdy_zlib_t z;
    int z_ok;
    int tunnel; /* SPDY inside WebSocket binary messages (SPDY/3.1+portforward.k8s.io) */
    sbuf_t tin; /* the tunnel's SPDY bytes not parsed yet */
    uint32_t last_sid;
    uint32_t ch_sid[CH_COUNT]; /* remotecommand: the stream of each channel, 0 none */
    sbuf_t resize;             /* a resize stream's unparsed JSON */
    /* WebSocket */
    wslay_event_context_ptr ws;
    ws_proto_t wsp;
    rcs_t *rcs;
    pfs_t *pfs;
};

/* stream.c: output of the sessions */
void sconn_ref(sconn_t *k);
void sconn_unref(sconn_t *k);
void
sconn_handle_closed(uv_handle_t *h); /* a session handle's close callback: h->data is the sconn */
void rc_send(sconn_t *k, int ch, const void *p, size_t n);
/* The end of an exec/attach: the status on the error channel, the outputs closed, the connection ended. */
void rc_end(sconn_t *k, int exit_code, const char *msg);
/* port-forward over SPDY */
void pf_spdy_data(sconn_t *k, uint32_t sid, const void *p, size_t n, int fin);
void spdy_send_rst(sconn_t *k, uint32_t sid, uint32_t status);
void sconn_end(sconn_t *k);

/* stream_exec.c */
void rcs_start(sconn_t *k);
void rcs_stdin(sconn_t *k, const uint8_t *p, size_t n);
void rcs_stdin_eof(sconn_t *k);
void rcs_resize(sconn_t *k, unsigned w, unsigned h);
void rcs_gone(sconn_t *k); /* the client went away: stop, free what is ours */
void rcs_free(rcs_t *s);   /* with the connection */

/* stream_pf.c */
void pfs_stream(sconn_t *k, uint32_t sid, const char *type, const char *port,
                const char *request_id, int fin);
void pfs_data(sconn_t *k, uint32_t sid, const uint8_t *p, size_t n, int fin);
void pfs_reset(sconn_t *k, uint32_t sid);
void pfs_gone(sconn_t *k);
void pfs_free(pfs_t *p);

/* Runs work(arg) on a pool thread, then done(arg) on the loop; the connection is held meanwhile. */
void stream_work(sconn_t *k, void (*work)(void *arg), void (*done)(void *arg), void *arg);

#endif /* BERTH_CRI_STREAM_INT_H */
