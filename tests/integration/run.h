/* SPDX-License-Identifier: Apache-2.0 */
/* Test helpers: run berthd as a child process, capture its output, start and stop it as a daemon. */
#ifndef BERTH_TEST_RUN_H
#define BERTH_TEST_RUN_H

#include <stddef.h>
#include <sys/types.h>

typedef struct run_result {
    int status; /* exit code, or 128 + signal */
    char *out;  /* stdout */
    char *err;  /* stderr */
} run_result_t;

/* A temp root for one test: <tmp>/root, <tmp>/state, plus helpers to build file paths in it. */
typedef struct test_dirs {
    char base[256];
    char root[300];
    char state[300];
    char empty[300]; /* an empty directory, used as BERTH_MODULE_DIR */
} test_dirs_t;

void dirs_make(test_dirs_t *d);
void dirs_remove(test_dirs_t *d);

/* argv is NULL-terminated, without argv[0]. BERTH_MODULE_DIR is set to module_dir (NULL: unset). */
run_result_t run_berthd(const char *module_dir, const char *const *argv, int timeout_s);
void run_free(run_result_t *r);

/* Starts berthd with --ready-fd; returns its pid once it said READY=1, or -pid if it exited / never
 * became ready within timeout_s (then *status has its exit status). stderr goes to errfile. */
pid_t start_berthd(const char *module_dir, const char *const *argv, const char *errfile,
                   int timeout_s, int *status);
/* Sends sig, waits up to timeout_s; returns the exit status (128 + signal when killed), -1 on timeout. */
int stop_berthd(pid_t pid, int sig, int timeout_s);
int wait_exit(pid_t pid, int timeout_s);

/* Runs any program (argv[0] is its path); output captured like run_berthd. */
run_result_t run_prog(const char *const *argv, int timeout_s);
/* Starts a program with stdout and stderr appended to outfile; returns its pid. */
pid_t spawn_to_file(const char *const *argv, const char *outfile);

char *read_file(const char *path);
/* Number of times needle occurs in hay. */
int count_of(const char *hay, const char *needle);
/* The first of `expected` not found in `text` after the one before it, or NULL when all are, in order. */
const char *missing_in_order(const char *text, const char *const *expected, size_t n);
/* Line of `text` containing `needle`, copied (caller frees), or NULL. */
char *line_with(const char *text, const char *needle);

#endif
