/* SPDX-License-Identifier: Apache-2.0 */
/* libberth-client's seed flow: pull, a container on a new snapshot with a generated spec, its task with
 * output to our stdout and stderr, wait (5 s at most, then kill), delete. The exit status is the task's.
 * usage: berth-client-example [--plain-http] REF [ARG...]    (address: $BERTH_ADDRESS) */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <berth/client.h>

static int
fail(const char *what, berth_error_t *err)
{
    fprintf(stderr, "berth-client-example: %s: %s\n", what, err ? err->message : "?");
    berth_error_free(err);
    return 1;
}

int
main(int argc, char **argv)
{
    int plain = argc > 1 && !strcmp(argv[1], "--plain-http"), rc = 0;
    if (argc < 2 + plain) {
        fprintf(stderr, "usage: %s [--plain-http] REF [ARG...]\n", argv[0]);
        return 2;
    }
    const char *ref = argv[1 + plain], *id = "berth-example";
    berth_client_t *c = NULL;
    berth_error_t *err = NULL;
    if (berth_client_new(NULL, NULL, &c, &err) < 0)
        return fail("client", err);

    berth_pull_opts_t pull = {.unpack = 1, .registry = {.plain_http = plain}};
    if (berth_image_pull(c, NULL, ref, &pull, NULL, &err) < 0)
        return fail("pull", err);

    berth_spec_opts_t spec = {.args = (const char *const *)argv + 2 + plain,
                              .n_args = (size_t)(argc - 2 - plain)};
    berth_container_opts_t ct = {.image = ref, .snapshot = BERTH_SNAPSHOT_NEW, .spec_opts = &spec};
    if (berth_container_create(c, NULL, id, &ct, NULL, &err) < 0)
        return fail("create container", err);

    berth_io_opts_t io = {.out = {.kind = BERTH_STREAM_FD, .fd = 1},
                          .err = {.kind = BERTH_STREAM_FD, .fd = 2}};
    berth_io_t *tio = NULL;
    berth_exit_t ex = {0};
    berth_call_t five_s = {.timeout_ms = 5000};
    if (berth_task_create(c, NULL, id, &io, &tio, NULL, &err) < 0 ||
        berth_task_start(c, NULL, id, NULL, NULL, &err) < 0) {
        rc = fail("task", err);
    } else if (berth_task_wait(c, &five_s, id, NULL, &ex, &err) == BERTH_ETIMEDOUT) {
        berth_error_free(err); /* still running: kill every process, then its exit comes */
        if (berth_task_kill(c, NULL, id, NULL, SIGKILL, 1, &err) < 0 ||
            berth_task_wait(c, NULL, id, NULL, &ex, &err) < 0)
            rc = fail("kill", err);
    }
    berth_io_wait(tio); /* the output has all arrived */
    berth_io_free(tio);
    berth_task_delete(c, NULL, id, NULL, NULL, NULL);
    if (berth_container_delete(c, NULL, id, 1, &err) < 0)
        rc = fail("delete", err);
    berth_client_free(c);
    return rc ? rc : (int)ex.status;
}
