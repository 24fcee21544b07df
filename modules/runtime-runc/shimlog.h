/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log files berth-shim writes for a process whose stdout/stderr is a file:// URI (docs/logging.md):
 * "file:///path" appends raw output (as containerd's shim), "file:///path?format=cri&max-size=B&max-files=N"
 * writes CRI log lines ("<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n") and rotates by size.
 * Plain C and POSIX only: linked into berth-shim, the runtime module (to refuse a bad URI at create) and
 * the unit test.
 */
#ifndef BERTH_SHIMLOG_H
#define BERTH_SHIMLOG_H

#include <stddef.h>

#define SHIMLOG_LINE_MAX 16384                    /* longer lines are cut into P pieces */
#define SHIMLOG_DEFAULT_SIZE (10LL * 1024 * 1024) /* format=cri without max-size */
#define SHIMLOG_DEFAULT_FILES 3                   /* format=cri without max-files */

typedef struct shimlog_cfg {
    char path[4096];
    int cri;            /* CRI lines; 0: raw bytes appended */
    long long max_size; /* bytes per file before rotating; 0: never (raw) */
    int max_files;      /* the live file plus max_files-1 rotated ones */
} shimlog_cfg_t;

/* 1: a file:// URI, cfg filled; 0: not a URI (a FIFO or file path, handled as before);
 * -1: refused (unknown scheme, bad query), msg names the URI and says why. */
int shimlog_parse(const char *s, shimlog_cfg_t *cfg, char *msg, size_t len);

typedef struct shimlog shimlog_t;

/* Makes the file's directories (0755) and opens it (0644, O_APPEND); NULL with msg on failure. */
shimlog_t *shimlog_open(const shimlog_cfg_t *cfg, char *msg, size_t len);
/* Output of stream 1 (stdout) or 2 (stderr), read at now_ns (UTC, ns since the epoch). */
void shimlog_write(shimlog_t *l, int stream, const char *data, size_t n, long long now_ns);
/* The reader has nothing more of the stream for now (a read shorter than its buffer): a line begun goes out
 * at once as a P entry, continued later by P/F entries, so a follower (CRI attach, `berth logs -f`) sees
 * output such as `echo -n` without waiting for the newline. */
void shimlog_partial(shimlog_t *l, int stream, long long now_ns);
/* The stream ended: a line without its newline goes out as F (an empty F when it went out as P). */
void shimlog_finish(shimlog_t *l, int stream, long long now_ns);
void shimlog_close(shimlog_t *l);

/* "2026-12-01T17:00:00.123456789Z" (30 bytes and a NUL) */
void shimlog_timestamp(long long ns, char out[32]);

#endif
