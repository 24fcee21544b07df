/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real events.so, loaded through its descriptor and driven through its ops on a real libuv loop. The
 * core's function table is replaced by a small stand-in (only what the exchange calls).
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/events.h>
#include <berth/module.h>

static int
fake_error_make(berth_error_t **err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        *err = calloc(1, sizeof(**err));
        (*err)->code = code;
        if (vasprintf(&(*err)->message, fmt, ap) < 0)
            abort();
        va_end(ap);
    }
    return code;
}

static void
fake_error_free(berth_error_t *err)
{
    if (err)
        free(err->message);
    free(err);
}

static const berth_core_api_t fake_api = {
    .size = sizeof(berth_core_api_t),
    .error_make = fake_error_make,
    .error_free = fake_error_free,
};

static uv_loop_t loop;
static void *handle;
static const berth_plugin_reg_t *reg;
static const berth_events_v1_ops_t *ops;
static void *x;

static void
setup(void)
{
    uv_loop_init(&loop);
    handle = dlopen(EVENTS_SO, RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "%s", dlerror());
    const berth_module_desc_t *(*entry)(void) =
        (const berth_module_desc_t *(*)(void))dlsym(handle, "berth_module_v1_events");
    cr_assert(entry != NULL);
    reg = entry()->plugins[0];
    cr_assert_str_eq(reg->type, "io.containerd.event.v1");
    cr_assert_str_eq(reg->id, "exchange");
    ops = reg->ops;
    berth_init_ctx_t ic = {.size = sizeof(ic), .api = &fake_api, .loop = &loop, .uri = "t"};
    berth_error_t *err = NULL;
    cr_assert_eq(reg->init(&ic, &x, &err), 0);
}

static void
teardown(void)
{
    reg->fini(x);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    dlclose(handle);
}

typedef struct seen {
    char log[1024];
    int count;
    pthread_t thread;
} seen_t;

static void
record(void *user, const berth_event_t *ev)
{
    seen_t *s = user;
    s->count++;
    s->thread = pthread_self();
    snprintf(s->log + strlen(s->log), sizeof(s->log) - strlen(s->log), "%s %s %.*s;",
             ev->namespace_, ev->topic, (int)ev->data_len, (const char *)ev->data);
}

static void
publish(const char *ns, const char *topic, const char *data)
{
    berth_error_t *err = NULL;
    int rc = ops->publish(x, 0, ns, topic, "t.Event", data, strlen(data), &err);
    cr_assert_eq(rc, 0, "%s", err ? err->message : "");
}

static berth_subscription_t *
subscribe(const char *const *filters, seen_t *s)
{
    berth_subscription_t *sub = NULL;
    berth_error_t *err = NULL;
    cr_assert_eq(ops->subscribe(x, filters, record, s, &sub, &err), 0, "%s",
                 err ? err->message : "");
    return sub;
}

static void
pump(void)
{
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

TestSuite(exchange, .init = setup, .fini = teardown);

Test(exchange, delivers_in_publish_order_on_the_loop)
{
    seen_t all = {0};
    subscribe(NULL, &all);
    publish("default", "/a", "1");
    publish("default", "/b", "2");
    publish("k8s.io", "/a", "3");
    cr_expect_eq(all.count, 0, "delivery must wait for the loop");
    pump();
    cr_expect_str_eq(all.log, "default /a 1;default /b 2;k8s.io /a 3;");
}

Test(exchange, filters_select)
{
    seen_t ns = {0}, topic = {0}, either = {0};
    const char *f_ns[] = {"namespace==k8s.io", NULL};
    const char *f_topic[] = {"topic~=\"^/tasks/\"", NULL};
    const char *f_either[] = {"topic==\"/a\"", "namespace==k8s.io,topic==\"/tasks/exit\"", NULL};
    subscribe(f_ns, &ns);
    subscribe(f_topic, &topic);
    subscribe(f_either, &either);
    publish("default", "/a", "1");
    publish("k8s.io", "/tasks/exit", "2");
    publish("default", "/tasks/exit", "3");
    pump();
    cr_expect_str_eq(ns.log, "k8s.io /tasks/exit 2;");
    cr_expect_str_eq(topic.log, "k8s.io /tasks/exit 2;default /tasks/exit 3;");
    cr_expect_str_eq(either.log, "default /a 1;k8s.io /tasks/exit 2;");
}

Test(exchange, bad_input_is_refused)
{
    berth_error_t *err = NULL;
    cr_expect_eq(ops->publish(x, 0, "default", "tasks/exit", "t", "", 0, &err), BERTH_EINVAL);
    cr_expect(strstr(err->message, "topic tasks/exit") != NULL, "%s", err->message);
    fake_error_free(err);
    err = NULL;
    cr_expect_eq(ops->publish(x, 0, "default", "/a//b", "t", "", 0, &err), BERTH_EINVAL);
    fake_error_free(err);
    err = NULL;
    cr_expect_eq(ops->publish(x, 0, "bad/ns", "/a", "t", "", 0, &err), BERTH_EINVAL);
    cr_expect(strstr(err->message, "namespace bad/ns") != NULL, "%s", err->message);
    fake_error_free(err);
    err = NULL;
    const char *bad[] = {"topic==", NULL};
    berth_subscription_t *sub = NULL;
    seen_t s = {0};
    cr_expect_eq(ops->subscribe(x, bad, record, &s, &sub, &err), BERTH_EINVAL);
    cr_expect(strstr(err->message, "filters: parse error: [topic==]") != NULL, "%s", err->message);
    fake_error_free(err);
}

static void *
publisher(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        publish("default", "/from/thread", "t");
    return NULL;
}

Test(exchange, publish_from_another_thread_is_delivered_on_the_loop)
{
    seen_t s = {0};
    subscribe(NULL, &s);
    pthread_t t;
    pthread_create(&t, NULL, publisher, NULL);
    pthread_join(t, NULL);
    pump();
    cr_expect_eq(s.count, 100);
    cr_expect(pthread_equal(s.thread, pthread_self()));
}

static berth_subscription_t *self_sub;

static void
unsubscribe_self(void *user, const berth_event_t *ev)
{
    record(user, ev);
    ops->unsubscribe(x, self_sub);
}

Test(exchange, unsubscribe_inside_a_callback)
{
    seen_t once = {0}, other = {0};
    subscribe(NULL, &other);
    berth_error_t *err = NULL;
    cr_assert_eq(ops->subscribe(x, NULL, unsubscribe_self, &once, &self_sub, &err), 0);
    publish("default", "/a", "1");
    publish("default", "/b", "2");
    pump();
    cr_expect_eq(once.count, 1);
    cr_expect_eq(other.count, 2);
}

Test(exchange, unsubscribed_gets_nothing)
{
    seen_t s = {0};
    berth_subscription_t *sub = subscribe(NULL, &s);
    ops->unsubscribe(x, sub);
    publish("default", "/a", "1");
    pump();
    cr_expect_eq(s.count, 0);
}
