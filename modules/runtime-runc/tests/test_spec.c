/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The spec checks and the prestart merge, with the core's real error functions; the hook registry is
 * replaced by a double that adds the hooks each test asks for.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <berth/module.h>

#include "spec.h"

extern const berth_core_api_t berth__core_api;

typedef struct wanted {
    int priority;
    const char *path;
} wanted_t;

static wanted_t hooks_to_add[8];
static int hook_fails;
static berth_core_api_t api;

static int
fake_invoke(berth_hook_point_t point, void *payload, berth_error_t **err)
{
    berth_hook_container_start_t *p = payload;
    cr_assert_eq(point, BERTH_HOOK_CONTAINER_PRE_START);
    if (hook_fails)
        return api.error_make(err, BERTH_EPRECONDITION, "the hook said no");
    for (int i = 0; hooks_to_add[i].path; i++) {
        const char *const argv[] = {hooks_to_add[i].path, "arg", NULL};
        int rc =
            p->add_prestart(p, hooks_to_add[i].priority, hooks_to_add[i].path, argv, NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void
setup(void)
{
    api = berth__core_api;
    api.hook_invoke = fake_invoke;
    memset(hooks_to_add, 0, sizeof(hooks_to_add));
    hook_fails = 0;
}

TestSuite(spec, .init = setup);

/* A spec like ctr's, with `extra` spliced into the top-level object and `process` extra fields. */
static char *
make_spec(const char *process_extra, const char *extra)
{
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\","
                       "\"user\":{\"uid\":0,\"gid\":0}%s},\"root\":{\"path\":\"rootfs\"},"
                       "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"}]%s}",
                       process_extra, extra) > 0);
    return s;
}

static int
prepare(const char *json, int terminal, size_t n_mounts, char **config, berth_error_t **err)
{
    spec_task_t t = {"default", "c1", "/run/bundle/c1", json, n_mounts, terminal};
    return spec_prepare(&api, &t, config, err);
}

static void
expect_invalid(const char *json, const char *message)
{
    char *config = NULL;
    berth_error_t *err = NULL;
    int rc = prepare(json, 0, 1, &config, &err);
    cr_assert_eq(rc, BERTH_EINVAL, "%s: got %d", message, rc);
    cr_assert_not_null(err);
    cr_expect(strstr(err->message, message) != NULL, "want \"%s\" in \"%s\"", message,
              err->message);
    cr_expect_null(config);
    api.error_free(err);
}

Test(spec, a_good_spec_without_hooks_is_written_as_sent)
{
    char *json = make_spec("", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(prepare(json, 0, 1, &config, &err), 0);
    cr_expect_str_eq(config, json);
    free(config);
    free(json);
}

Test(spec, not_json_or_not_an_object)
{
    expect_invalid("{\"process\":", "not JSON");
    expect_invalid("[1,2]", "not a JSON object");
}

Test(spec, ids_out_of_range)
{
    char *s;
    s = make_spec(",\"user\":{\"uid\":2147483648,\"gid\":0}", "");
    expect_invalid(s, "process.user.uid 2147483648 is out of range");
    free(s);
    s = make_spec(",\"user\":{\"uid\":0,\"gid\":-5}", "");
    expect_invalid(s, "process.user.gid -5 is out of range");
    free(s);
    s = make_spec(",\"user\":{\"uid\":1.5}", "");
    expect_invalid(s, "process.user.uid must be an integer");
    free(s);
    s = make_spec(",\"user\":{\"uid\":0,\"gid\":0,\"additionalGids\":[1,99999999999]}", "");
    expect_invalid(s, "additionalGids[1] 99999999999 is out of range");
    free(s);
}

Test(spec, the_largest_id_is_accepted)
{
    char *json = make_spec(",\"user\":{\"uid\":2147483647,\"gid\":2147483647}", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(json, 0, 1, &config, &err), 0);
    free(config);
    free(json);
}

Test(spec, process_basics)
{
    expect_invalid("{\"process\":{\"args\":[],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}",
                   "process.args must name the program");
    expect_invalid(
        "{\"process\":{\"args\":[\"sh\"],\"cwd\":\"tmp\"},\"root\":{\"path\":\"rootfs\"}}",
        "process.cwd must be an absolute path");
    expect_invalid("{\"root\":{\"path\":\"rootfs\"}}", "process is missing");
}

Test(spec, terminal_must_match_the_request)
{
    char *json = make_spec(",\"terminal\":true", "");
    expect_invalid(json, "process.terminal is true but the client did not ask for a terminal");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(json, 1, 1, &config, &err), 0);
    free(config);
    free(json);
}

Test(spec, root_must_be_there)
{
    expect_invalid("{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"}}", "root.path is missing");
    expect_invalid("{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},\"root\":{\"path\":\"other\"}}",
                   "a relative root must be \"rootfs\"");
    expect_invalid("{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},\"root\":{\"path\":\"/"
                   "nonexistent/rootfs\"}}",
                   "root.path /nonexistent/rootfs is not a directory");
    char *json = make_spec("", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(json, 0, 0, &config, &err), BERTH_EINVAL);
    cr_expect(strstr(err->message, "no rootfs mounts") != NULL);
    api.error_free(err);
    free(json);
}

Test(spec, mount_destinations)
{
    const char *head =
        "{\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"},";
    char s[512];
    snprintf(s, sizeof(s), "%s\"mounts\":[{\"destination\":\"rel/dir\"}]}", head);
    expect_invalid(s, "mounts[0].destination rel/dir must be an absolute path");
    snprintf(s, sizeof(s),
             "%s\"mounts\":[{\"destination\":\"/a\"},{\"destination\":\"/a/../../etc\"}]}", head);
    expect_invalid(s, "mounts[1].destination /a/../../etc must not hold \"..\"");
    snprintf(s, sizeof(s), "%s\"mounts\":[{\"type\":\"tmpfs\"}]}", head);
    expect_invalid(s, "mounts[0].destination is missing");
    snprintf(s, sizeof(s), "%s\"mounts\":[{\"destination\":\"/a..b/c..\"}]}", head);
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(s, 0, 1, &config, &err), 0, "dots inside a name are fine");
    free(config);
}

static void
expect_seccomp_invalid(const char *seccomp, const char *message)
{
    char extra[1024];
    snprintf(extra, sizeof(extra), ",\"linux\":{\"seccomp\":%s}", seccomp);
    char *s = make_spec("", extra);
    expect_invalid(s, message);
    free(s);
}

Test(spec, seccomp_names_go_through_libseccomp)
{
    expect_seccomp_invalid(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\","
        "\"nosuch_call\"],\"action\":\"SCMP_ACT_ERRNO\"}]}",
        "linux.seccomp.syscalls[0]: unknown syscall nosuch_call");
    expect_seccomp_invalid("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_"
                           "X86_64\",\"SCMP_ARCH_Z80\"]}",
                           "linux.seccomp.architectures[1]: unknown architecture SCMP_ARCH_Z80");
    expect_seccomp_invalid("{\"defaultAction\":\"SCMP_ACT_MAYBE\"}",
                           "linux.seccomp.defaultAction: unknown action SCMP_ACT_MAYBE");
    expect_seccomp_invalid(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":6,\"op\":\"SCMP_CMP_EQ\"}]}]}",
        "args[0].index 6 is out of range");
    expect_seccomp_invalid(
        "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"op\":\"SCMP_CMP_ABOUT\"}]}]}",
        "unknown op SCMP_CMP_ABOUT");
}

Test(spec, a_good_seccomp_profile_passes)
{
    char *s = make_spec(
        "", ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\","
            "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],"
            "\"syscalls\":[{\"names\":[\"read\",\"write\",\"clone3\",\"arm_fadvise64_64\"],"
            "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":1,\"value\":2,"
            "\"op\":\"SCMP_CMP_MASKED_EQ\"}]}]}}");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(s, 0, 1, &config, &err), 0, "%s", err ? err->message : "");
    free(config);
    free(s);
}

Test(spec, id_mappings_may_not_run_past_the_last_id)
{
    char *s = make_spec("", ",\"linux\":{\"uidMappings\":[{\"containerID\":4294967295,\"hostID\":0,"
                            "\"size\":2}]}");
    expect_invalid(s, "linux.uidMappings[0] runs past the last id");
    free(s);
}

/* the order runc will run them in, as paths */
static void
expect_prestart(const char *config, const char *const *paths)
{
    json_object *spec = json_tokener_parse(config);
    json_object *hooks, *prestart;
    cr_assert(json_object_object_get_ex(spec, "hooks", &hooks));
    cr_assert(json_object_object_get_ex(hooks, "prestart", &prestart));
    size_t n = 0;
    while (paths[n])
        n++;
    cr_assert_eq(json_object_array_length(prestart), n);
    for (size_t i = 0; i < n; i++) {
        json_object *path;
        json_object_object_get_ex(json_object_array_get_idx(prestart, i), "path", &path);
        cr_expect_str_eq(json_object_get_string(path), paths[i], "prestart[%zu]", i);
    }
    json_object_put(spec);
}

Test(spec, prestart_hooks_merge_by_priority)
{
    /* the spec's own count as 0 - index: /own0 is 0, /own1 is -1; ties keep the spec's first */
    hooks_to_add[0] = (wanted_t){5, "/five"};
    hooks_to_add[1] = (wanted_t){-1, "/minus-one"};
    hooks_to_add[2] = (wanted_t){0, "/zero"};
    char *json =
        make_spec("", ",\"hooks\":{\"prestart\":[{\"path\":\"/own0\"},{\"path\":\"/own1\"}],"
                      "\"poststop\":[{\"path\":\"/stop\"}]}");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(prepare(json, 0, 1, &config, &err), 0);
    const char *const order[] = {"/five", "/own0", "/zero", "/own1", "/minus-one", NULL};
    expect_prestart(config, order);
    cr_expect(strstr(config, "\"poststop\":[{\"path\":\"/stop\"}]") != NULL, "%s", config);
    cr_expect(strstr(config, "\"args\":[\"/five\",\"arg\"]") != NULL, "%s", config);
    free(config);
    free(json);
}

Test(spec, prestart_hooks_without_any_in_the_spec)
{
    hooks_to_add[0] = (wanted_t){-100, "/low"};
    hooks_to_add[1] = (wanted_t){10, "/high"};
    char *json = make_spec("", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(prepare(json, 0, 1, &config, &err), 0);
    const char *const order[] = {"/high", "/low", NULL};
    expect_prestart(config, order);
    free(config);
    free(json);
}

Test(spec, a_hook_error_aborts)
{
    hook_fails = 1;
    char *json = make_spec("", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(json, 0, 1, &config, &err), BERTH_EPRECONDITION);
    cr_expect(strstr(err->message, "the hook said no") != NULL);
    cr_expect_null(config);
    api.error_free(err);
    free(json);
}

Test(spec, a_relative_hook_path_is_refused)
{
    hooks_to_add[0] = (wanted_t){1, "bin/hook"};
    char *json = make_spec("", "");
    char *config = NULL;
    berth_error_t *err = NULL;
    cr_expect_eq(prepare(json, 0, 1, &config, &err), BERTH_EINVAL);
    cr_expect(strstr(err->message, "the path must be absolute") != NULL);
    api.error_free(err);
    free(json);
}

Test(spec, exec_process_checks)
{
    berth_error_t *err = NULL;
    cr_expect_eq(
        spec_check_process(&api, "{\"args\":[\"ls\"],\"cwd\":\"/\",\"terminal\":true}", 1, &err),
        0);
    cr_expect_eq(spec_check_process(&api, "{\"args\":[\"ls\"],\"cwd\":\"/\",\"user\":{\"uid\":-1}}",
                                    0, &err),
                 BERTH_EINVAL);
    cr_expect(strstr(err->message, "process.user.uid -1 is out of range") != NULL);
    api.error_free(err);
}
