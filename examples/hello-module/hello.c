/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hello: the smallest useful out-of-tree berth module. Build it against an installed berth:
 *   cc $(pkg-config --cflags berth-module) -shared -fPIC -o hello.so hello.c $(pkg-config --libs berth-module)
 * and load it with: berthd --set 'module_dirs=[/path/to/dir/with/hello.so]'
 */
#include <berth/module.h>

static const berth_core_api_t *api;

typedef struct hello {
    const berth_logger_t *log;
    const char *greeting;
} hello_t;

static hello_t the_hello;

/* daemon.pre-start is a veto point: returning an error would stop berthd from starting. */
static int
greet_at_start(void *user, berth_hook_point_t point, void *payload, berth_error_t **err)
{
    hello_t *h = user;
    api->log(h->log, BERTH_LOG_INFO, "%s from the hello module", h->greeting);
    return 0;
}

static int
hello_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    api = ic->api;
    the_hello.log = ic->log;
    the_hello.greeting = api->get_string(ic->config, "greeting", "hello");
    api->export_set(ic, "greeting", the_hello.greeting);
    if (api->hook_register(ic, BERTH_HOOK_DAEMON_PRE_START, 0, greet_at_start, &the_hello, err) < 0)
        return api->error_wrap(err, "register hook");
    *instance = &the_hello;
    return 0;
}

static void
hello_fini(void *instance)
{
    hello_t *h = instance;
    api->log(h->log, BERTH_LOG_INFO, "goodbye");
}

static const berth_config_field_t hello_config[] = {
    {"greeting", BERTH_CFG_STRING, "hello", "what the module says at daemon start"},
    {0},
};

static const berth_plugin_reg_t hello_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = "io.berth.hook.v1",
    .id = "hello",
    .config = hello_config,
    .init = hello_init,
    .fini = hello_fini,
};

static const berth_plugin_reg_t *const hello_plugins[] = {&hello_plugin, NULL};

BERTH_MODULE(hello, .version = "1.0.0", .license = "Apache-2.0", .origin = "berth examples",
             .description = "says hello at daemon start", .plugins = hello_plugins)
