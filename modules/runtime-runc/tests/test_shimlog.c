/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's log files (shimlog.c): file:// URIs, CRI lines, long lines, rotation; files in a temp dir. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shimlog.h"

/* 2026-12-01T17:00:00.123456789Z */
#define T0 (1796144400LL * 1000000000LL + 123456789LL)
#define STAMP "2026-12-01T17:00:00.123456789Z"

static char dir[64];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test-shimlog-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = malloc(1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static shimlog_t *
open_log(const char *query, char *path, size_t plen)
{
    char uri[512], msg[512];
    shimlog_cfg_t cfg;
    snprintf(path, plen, "%s/sub/dir/c.log", dir);
    snprintf(uri, sizeof(uri), "file://%s%s", path, query);
    cr_assert_eq(shimlog_parse(uri, &cfg, msg, sizeof(msg)), 1, "%s", msg);
    shimlog_t *l = shimlog_open(&cfg, msg, sizeof(msg));
    cr_assert_not_null(l, "%s", msg);
    return l;
}

TestSuite(shimlog, .init = setup, .fini = teardown);

Test(shimlog, timestamp_is_rfc3339_nano_utc)
{
    char ts[32];
    shimlog_timestamp(T0, ts);
    cr_assert_str_eq(ts, STAMP);
    shimlog_timestamp(1000000000LL * 86400 + 5, ts);
    cr_assert_str_eq(ts, "1970-01-02T00:00:00.000000005Z");
}

Test(shimlog, parse_uris)
{
    shimlog_cfg_t c;
    char msg[512] = "";
    cr_assert_eq(shimlog_parse("/run/berth/fifo/x/1-stdout", &c, msg, sizeof(msg)), 0);
    cr_assert_eq(shimlog_parse("", &c, msg, sizeof(msg)), 0);
    cr_assert_eq(shimlog_parse("relative/a://b", &c, msg, sizeof(msg)), 0);
    cr_assert_eq(shimlog_parse("file:///var/log/a%20b.log", &c, msg, sizeof(msg)), 1);
    cr_assert_str_eq(c.path, "/var/log/a b.log");
    cr_assert_eq(c.cri, 0);
    cr_assert_eq(c.max_size, 0);
    cr_assert_eq(shimlog_parse("file:///l?format=cri", &c, msg, sizeof(msg)), 1);
    cr_assert(c.cri && c.max_size == 10 * 1024 * 1024 && c.max_files == 3);
    cr_assert_eq(
        shimlog_parse("file:///l?format=cri&max-size=4096&max-files=5", &c, msg, sizeof(msg)), 1);
    cr_assert(c.cri && c.max_size == 4096 && c.max_files == 5);
    cr_assert_eq(
        shimlog_parse("file:///l?max-files=2&format=cri&max-size=2m", &c, msg, sizeof(msg)), 1);
    cr_assert(c.max_size == 2 * 1024 * 1024 && c.max_files == 2);
}

Test(shimlog, parse_refuses_bad_uris)
{
    const char *bad[] = {"file:///l?format=cri&max-size=abc",
                         "file:///l?format=cri&max-size=0",
                         "file:///l?format=cri&max-size=10x",
                         "file:///l?format=cri&max-files=0",
                         "file:///l?format=cri&max-files=-1",
                         "file:///l?format=json",
                         "file:///l?color=red",
                         "file:///l?max-size=10",
                         "file://host/l",
                         "file://",
                         "file:///",
                         "file:///dir/",
                         "file:///l%zz",
                         "file:///l#frag",
                         "binary:///usr/bin/logger",
                         "fluent://x/y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        shimlog_cfg_t c;
        char msg[512] = "";
        cr_assert_eq(shimlog_parse(bad[i], &c, msg, sizeof(msg)), -1, "%s accepted", bad[i]);
        cr_assert(strstr(msg, bad[i]) != NULL, "message \"%s\" does not name %s", msg, bad[i]);
    }
}

Test(shimlog, raw_appends_bytes_as_they_come)
{
    char path[256];
    shimlog_t *l = open_log("", path, sizeof(path));
    shimlog_write(l, 1, "out\n", 4, T0);
    shimlog_write(l, 2, "err no newline", 14, T0);
    shimlog_finish(l, 2, T0);
    shimlog_close(l);
    l = open_log("", path, sizeof(path)); /* appends, as containerd's shim */
    shimlog_write(l, 1, "more", 4, T0);
    shimlog_close(l);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, "out\nerr no newlinemore");
    free(got);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644);
    snprintf(path, sizeof(path), "%s/sub/dir", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0755);
}

Test(shimlog, cri_lines_tagged_and_split)
{
    char path[256];
    shimlog_t *l = open_log("?format=cri", path, sizeof(path));
    shimlog_write(l, 1, "one\ntw", 6, T0);
    shimlog_write(l, 2, "e1\n", 3, T0);
    shimlog_write(l, 1, "o\n\nthree", 8, T0);
    shimlog_finish(l, 1, T0); /* "three" had no newline at the end */
    shimlog_finish(l, 2, T0); /* nothing pending: no line */
    shimlog_close(l);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, STAMP " stdout F one\n" STAMP " stderr F e1\n" STAMP
                                " stdout F two\n" STAMP " stdout F \n" STAMP " stdout F three\n");
    free(got);
}

/* A line begun is in the file as soon as the shim has read all there is (attach and `logs -f` follow the
 * file), continued by P/F entries, and ended by an F (empty when nothing is left) when the stream ends. */
Test(shimlog, partial_line_goes_out_at_once)
{
    char path[256];
    shimlog_t *l = open_log("?format=cri", path, sizeof(path));
    shimlog_write(l, 1, "hel", 3, T0);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, "", "held until the reader has all there is");
    free(got);
    shimlog_partial(l, 1, T0);
    got = slurp(path, NULL);
    cr_assert_str_eq(got, STAMP " stdout P hel\n");
    free(got);
    shimlog_partial(l, 1, T0); /* nothing new: nothing written */
    shimlog_partial(l, 2, T0);
    shimlog_write(l, 1, "lo\nnext", 7, T0);
    shimlog_partial(l, 1, T0);
    shimlog_write(l, 2, "err", 3, T0);
    shimlog_partial(l, 2, T0);
    shimlog_write(l, 2, "\n", 1, T0);
    shimlog_finish(l, 2, T0); /* stderr's line ended: nothing more */
    shimlog_finish(l, 1, T0); /* stdout's went out as P: an empty F ends it */
    shimlog_finish(l, 1, T0); /* once */
    shimlog_close(l);
    got = slurp(path, NULL);
    cr_assert_str_eq(got,
                     STAMP " stdout P hel\n" STAMP " stdout F lo\n" STAMP " stdout P next\n" STAMP
                           " stderr P err\n" STAMP " stderr F \n" STAMP " stdout F \n");
    free(got);
}

Test(shimlog, long_lines_cut_into_partials)
{
    char path[256];
    shimlog_t *l = open_log("?format=cri", path, sizeof(path));
    size_t n = 2 * SHIMLOG_LINE_MAX + 100;
    char *line = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        line[i] = (char)('a' + i % 26);
    line[n] = '\n';
    /* in uneven chunks, as a pipe gives them */
    for (size_t off = 0; off <= n;) {
        size_t c = off + 5000 > n + 1 ? n + 1 - off : 5000;
        shimlog_write(l, 1, line + off, c, T0);
        off += c;
    }
    /* exactly 16 KiB and its newline is one F line */
    shimlog_write(l, 2, line, SHIMLOG_LINE_MAX, T0);
    shimlog_write(l, 2, "\n", 1, T0);
    shimlog_close(l);
    size_t len;
    char *got = slurp(path, &len);
    char *rec = got;
    const char *tags[] = {"stdout P ", "stdout P ", "stdout F ", "stderr F "};
    size_t sizes[] = {SHIMLOG_LINE_MAX, SHIMLOG_LINE_MAX, 100, SHIMLOG_LINE_MAX};
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(strncmp(rec, STAMP " ", 31), 0);
        cr_assert_eq(strncmp(rec + 31, tags[i], 9), 0, "record %d: %.40s", i, rec);
        char *nl = strchr(rec, '\n');
        cr_assert_not_null(nl);
        cr_assert_eq((size_t)(nl - rec - 40), sizes[i], "record %d has %zu bytes", i,
                     (size_t)(nl - rec - 40));
        size_t from = i == 3 ? 0 : off;
        cr_assert_eq(memcmp(rec + 40, line + from, sizes[i]), 0, "record %d's text", i);
        off += sizes[i];
        rec = nl + 1;
    }
    cr_assert_eq((size_t)(rec - got), len);
    free(got);
    free(line);
}

static long
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

Test(shimlog, rotates_before_passing_max_size)
{
    char path[256], p1[300], p2[300], p3[300];
    /* each record is 40 + 9 + 1 = 50 bytes: four fit in 200 */
    shimlog_t *l = open_log("?format=cri&max-size=200&max-files=3", path, sizeof(path));
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);
    char text[16];
    for (int i = 0; i < 14; i++) {
        snprintf(text, sizeof(text), "line-%04d\n", i);
        shimlog_write(l, 1, text, 10, T0);
    }
    shimlog_close(l);
    cr_assert_eq(file_size(path), 100); /* lines 12, 13 */
    cr_assert_eq(file_size(p1), 200);   /* 8..11 */
    cr_assert_eq(file_size(p2), 200);   /* 4..7; 0..3 dropped */
    cr_assert_eq(file_size(p3), -1);
    char *got = slurp(p2, NULL);
    cr_assert(strstr(got, "stdout F line-0004\n") == got + 31, "%s", got);
    cr_assert_null(strstr(got, "line-0003"));
    free(got);
    got = slurp(path, NULL);
    cr_assert_str_eq(got, STAMP " stdout F line-0012\n" STAMP " stdout F line-0013\n");
    free(got);
}

Test(shimlog, rotation_in_one_write_and_reopen_counts_the_existing_size)
{
    char path[256], p1[300];
    shimlog_t *l = open_log("?format=cri&max-size=120&max-files=2", path, sizeof(path));
    snprintf(p1, sizeof(p1), "%s.1", path);
    shimlog_write(l, 2, "aaaaaaaaa\n", 10, T0); /* 50 bytes */
    shimlog_close(l);
    l = open_log("?format=cri&max-size=120&max-files=2", path, sizeof(path));
    /* 50 more fit; the third record (150 > 120) starts a new file, within the same write */
    shimlog_write(l, 2, "bbbbbbbbb\nccccccccc\n", 20, T0);
    shimlog_close(l);
    cr_assert_eq(file_size(p1), 100);
    cr_assert_eq(file_size(path), 50);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, STAMP " stderr F ccccccccc\n");
    free(got);
}

Test(shimlog, one_file_only_is_truncated_on_rotation)
{
    char path[256], p1[300];
    shimlog_t *l = open_log("?format=cri&max-size=60&max-files=1", path, sizeof(path));
    snprintf(p1, sizeof(p1), "%s.1", path);
    shimlog_write(l, 1, "aaaaaaaaa\nbbbbbbbbb\n", 20, T0);
    shimlog_close(l);
    cr_assert_eq(file_size(p1), -1);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, STAMP " stdout F bbbbbbbbb\n");
    free(got);
}
