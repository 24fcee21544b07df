/* SPDX-License-Identifier: Apache-2.0 */
/* Module manifests as pure logic: what `berthd modules --manifest` writes reads back the same, escapes
 * included, and text that is not a manifest is refused with a reason. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/grpc.h>

#include "manifest.h"

static int
no_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    (void)ic, (void)instance, (void)err;
    return 0;
}

static const berth_config_field_t schema[] = {
    {"path", BERTH_CFG_STRING, NULL, "a\ttab, a\nnewline and a \\ backslash"},
    {"size", BERTH_CFG_INT, "42", "how big"},
    {NULL, 0, NULL, NULL},
};
static const char *const reqs[] = {"io.containerd.metadata.v1", "?io.berth.network.v1", NULL};
static const char *const after[] = {"io.containerd.grpc.v1.tasks", NULL};
static const char *const start_if[] = {"state:*/*", "root:x y", NULL};
static const berth_grpc_service_v1_t service = {sizeof(service), "test.v1.Lazy", NULL, 0};

static const berth_plugin_reg_t store_reg = {.struct_size = sizeof(berth_plugin_reg_t),
                                             .type = "io.berth.test.v1",
                                             .id = "store",
                                             .requires = reqs,
                                             .after = after,
                                             .config = schema,
                                             .init = no_init,
                                             .flags =
                                                 BERTH_PLUGIN_ON_DEMAND | BERTH_PLUGIN_NO_RELOAD,
                                             .start_if = start_if};
static void
follow(void *instance, const berth_change_t *change)
{
    (void)instance, (void)change;
}

static const berth_plugin_reg_t svc_reg = {.struct_size = sizeof(berth_plugin_reg_t),
                                           .on_change = follow,
                                           .type = BERTH_GRPC_SERVICE_TYPE,
                                           .id = "lazy",
                                           .init = no_init,
                                           .ops = &service,
                                           .flags = BERTH_PLUGIN_ON_DEMAND};
static const berth_plugin_reg_t *const plugins[] = {&store_reg, &svc_reg, NULL};
static const berth_module_desc_t desc = {.magic = BERTH_MODULE_MAGIC,
                                         .abi_major = BERTH_ABI_MAJOR,
                                         .abi_minor = BERTH_ABI_MINOR,
                                         .struct_size = sizeof(berth_module_desc_t),
                                         .signature = BERTH_BUILD_SIGNATURE,
                                         .name = "lazy-test",
                                         .version = "1.2",
                                         .license = "Apache-2.0",
                                         .plugins = plugins};

static char *
written(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    berth__manifest_write(out, &desc);
    fclose(out);
    return text;
}

Test(manifest, what_is_written_reads_back_the_same)
{
    char *text = written();
    const char *why = NULL;
    berth__manifest_t *m = berth__manifest_parse(text, &why);
    cr_assert(m != NULL, "%s\n%s", why, text);
    cr_expect_str_eq(m->desc.name, "lazy-test");
    cr_expect_eq(m->desc.abi_minor, BERTH_ABI_MINOR);
    cr_expect_str_eq(m->desc.signature, BERTH_BUILD_SIGNATURE);
    cr_expect_str_eq(m->desc.version, "1.2");
    cr_expect_null(m->desc.origin, "NULL stays NULL");
    cr_assert_eq(m->nregs, 2);
    const berth_plugin_reg_t *r = &m->regs[0];
    cr_expect_str_eq(r->type, "io.berth.test.v1");
    cr_expect_eq(r->flags, BERTH_PLUGIN_ON_DEMAND | BERTH_PLUGIN_NO_RELOAD);
    cr_expect_null(r->init, "a manifest has no code");
    cr_expect_str_eq(r->requires[1], "?io.berth.network.v1");
    cr_expect_null(r->requires[2]);
    cr_expect_str_eq(r->after[0], "io.containerd.grpc.v1.tasks");
    cr_expect_str_eq(r->start_if[1], "root:x y");
    cr_expect_null(r->platforms);
    cr_expect_str_eq(r->config[0].doc, schema[0].doc, "escapes round-trip");
    cr_expect_null(r->config[0].default_yaml);
    cr_expect_str_eq(r->config[1].default_yaml, "42");
    cr_expect_null(r->config[2].key, "the schema ends with a NULL key");
    cr_expect_null(m->keys[0]);
    cr_expect_null(m->regs[0].on_change);
    cr_expect_not_null(m->regs[1].on_change, "a follower is known as one before it is opened");
    cr_expect_str_eq(m->keys[1], "test.v1.Lazy", "a service plugin's key is its service name");
    berth__manifest_free(m);
    free(text);
}

Test(manifest, refuses_what_is_not_one)
{
    const char *bad[] = {
        "",
        "berth-manifest 2\nend\n",
        "berth-manifest 1\nmodule\tx\t1\t6\tsig\n",                 /* no end */
        "berth-manifest 1\nmodule\tx\t1\t6\tsig\nend\n",            /* no plugin */
        "berth-manifest 1\nmodule\tx\t1\t6\tsig\nplugin\ta\nend\n", /* short plugin line */
        "berth-manifest 1\nmodule\tx\t1\t6\tsig\nbogus\ty\nend\n",  /* unknown record */
        "berth-manifest 1\nrequires\ta.b\nend\n",                   /* requires before any plugin */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        berth__manifest_t *m = berth__manifest_parse(bad[i], &why);
        cr_expect_null(m, "accepted:\n%s", bad[i]);
        cr_expect(why != NULL && why[0] != '\0', "no reason for:\n%s", bad[i]);
        berth__manifest_free(m);
    }
}

Test(manifest, an_elf_file_without_the_section_has_none)
{
    char *text = NULL;
    cr_expect_eq(berth__manifest_read("/proc/self/exe", &text), 0);
    cr_expect_null(text);
    cr_expect_eq(berth__manifest_read("/nonexistent/x.so", &text), -1);
}
