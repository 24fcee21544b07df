/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Progress of a pull, push or import: on a terminal one line per object (short digest, state, bar,
 * bytes/total) redrawn in place; otherwise a plain line whenever an object's state changes; nothing when
 * quiet. The library calls progress_fn on a thread of the call's own, one call at a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct entry {
    char *name;
    char label[40];
    char state[24];
    int64_t cur, total;
};

struct progress {
    int mode; /* 0 quiet, 1 plain lines, 2 a terminal */
    FILE *out;
    pthread_mutex_t mu;
    struct entry *e;
    size_t n;
    size_t drawn;
    int64_t last_draw;
};

struct progress *
progress_new(int quiet, FILE *out)
{
    struct progress *p = calloc(1, sizeof *p);
    if (!p)
        die("out of memory");
    p->mode = quiet ? 0 : isatty(fileno(out)) ? 2 : 1;
    p->out = out;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

/* "layer-sha256:0123456789abcdef..." -> "layer 0123456789ab"; a reference stays as it is */
static void
short_label(const char *name, const berth_descriptor_t *d, char *buf, size_t len)
{
    const char *sha = strstr(name, "sha256:");
    if (!sha && d && d->digest[0] && strstr(name, d->digest))
        sha = strstr(d->digest, "sha256:");
    if (sha) {
        size_t kind = sha > name && sha[-1] == '-' ? (size_t)(sha - name - 1) : 0;
        snprintf(buf, len, "%.*s%s%.12s", (int)kind, name, kind ? " " : "", sha + 7);
    } else {
        snprintf(buf, len, "%s", name);
    }
}

static void
bar(const struct entry *e, char *buf, size_t len)
{
    char cur[16], tot[16];
    human_size(e->cur, cur, sizeof cur);
    if (e->total <= 0) {
        snprintf(buf, len, "%-38s %s", "", e->cur > 0 ? cur : "");
        return;
    }
    human_size(e->total, tot, sizeof tot);
    int64_t c = e->cur > e->total ? e->total : e->cur;
    int w = 36, fill = (int)(c * w / e->total);
    char b[40];
    for (int i = 0; i < w; i++)
        b[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    b[w] = 0;
    snprintf(buf, len, "[%s] %s/%s", b, cur, tot);
}

static void
redraw(struct progress *p)
{
    if (p->drawn)
        fprintf(p->out, "\033[%zuA", p->drawn);
    for (size_t i = 0; i < p->n; i++) {
        char b[96];
        bar(&p->e[i], b, sizeof b);
        fprintf(p->out, "\r\033[K%-28s %-12s %s\n", p->e[i].label, p->e[i].state, b);
    }
    p->drawn = p->n;
    fflush(p->out);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
progress_fn(void *user, const berth_progress_t *pr)
{
    struct progress *p = user;
    if (!p || !p->mode || !pr->name || !pr->name[0])
        return;
    pthread_mutex_lock(&p->mu);
    struct entry *e = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->e[i].name, pr->name))
            e = &p->e[i];
    if (!e) {
        p->e = realloc(p->e, (p->n + 1) * sizeof *p->e);
        if (!p->e)
            die("out of memory");
        e = &p->e[p->n++];
        memset(e, 0, sizeof *e);
        e->name = strdup(pr->name);
        short_label(pr->name, pr->desc, e->label, sizeof e->label);
    }
    const char *ev = pr->event && pr->event[0] ? pr->event : "waiting";
    int changed = strcmp(e->state, ev) != 0;
    snprintf(e->state, sizeof e->state, "%s", ev);
    if (pr->progress > 0 || changed)
        e->cur = pr->progress;
    if (pr->total > 0)
        e->total = pr->total;
    else if (pr->desc && pr->desc->size > 0)
        e->total = pr->desc->size;
    if (p->mode == 1 && changed) {
        char sz[16] = "";
        if (e->total > 0)
            human_size(e->total, sz, sizeof sz);
        fprintf(p->out, "%s: %s%s%s\n", e->label, e->state, sz[0] ? " " : "", sz);
        fflush(p->out);
    } else if (p->mode == 2) {
        int64_t now = mono_ms();
        if (changed || now - p->last_draw >= 100) {
            redraw(p);
            p->last_draw = now;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void
progress_done(struct progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->mode == 2 && p->n)
        redraw(p);
    for (size_t i = 0; i < p->n; i++)
        free(p->e[i].name);
    free(p->e);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
