/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event exchange (io.containerd.event.v1.exchange): containerd's envelopes published from any thread
 * and delivered on the loop thread, in publish order, to every subscriber whose filters match.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <berth/events.h>
#include <berth/module.h>

#include "filters.h"
#include "identifiers.h"
#include "clock.h"

#define MAX_QUEUED 65536

typedef struct pending {
    int64_t timestamp_ns;
    char *namespace_, *topic, *type_url;
    uint8_t *data;
    size_t data_len;
    struct pending *next;
} pending_t;

struct berth_subscription_s {
    filters_t *filter;
    berth_event_cb cb;
    void *user;
    int dead;
    struct berth_subscription_s *next;
};

typedef struct exchange {
    const berth_core_api_t *api;
    const berth_logger_t *log;
    uv_async_t *async;
    pthread_mutex_t lock; /* guards the queue and `closed` */
    pending_t *head, *tail;
    size_t queued;
    int closed;
    berth_subscription_t *subs; /* loop thread only; newest first */
    int delivering;
} exchange_t;

static int
valid_topic(const char *topic)
{
    /* containerd's validateTopic: "/" first, no empty components, no trailing "/" */
    if (topic == NULL || topic[0] != '/' || topic[1] == '\0')
        return 0;
    for (const char *p = topic; *p; p++)
        if (*p == '/' && (p[1] == '/' || p[1] == '\0'))
            return 0;
    return 1;
}

static void
pending_free(pending_t *e)
{
    free(e->namespace_);
    free(e->topic);
    free(e->type_url);
    free(e->data);
    free(e);
}

static void
sweep_dead(exchange_t *x)
{
    berth_subscription_t **at = &x->subs;
    while (*at) {
        berth_subscription_t *s = *at;
        if (s->dead) {
            *at = s->next;
            filters_free(s->filter);
            free(s);
        } else {
            at = &s->next;
        }
    }
}

/* containerd's Envelope.Field: namespace and topic; the payload is opaque to the exchange */
static const char *
envelope_field(void *object, const char *const *path, int npath)
{
    const pending_t *e = object;
    if (npath != 1)
        return NULL;
    return strcmp(path[0], "namespace") == 0 ? e->namespace_
           : strcmp(path[0], "topic") == 0   ? e->topic
                                             : NULL;
}

static void
deliver(exchange_t *x, const pending_t *e)
{
    berth_event_t ev = {
        .struct_size = sizeof(ev),
        .timestamp_ns = e->timestamp_ns,
        .namespace_ = e->namespace_,
        .topic = e->topic,
        .type_url = e->type_url,
        .data = e->data,
        .data_len = e->data_len,
    };
    /* subscribers added by a callback are prepended, so this walk does not reach them */
    for (berth_subscription_t *s = x->subs; s; s = s->next)
        if (!s->dead && filters_match(s->filter, envelope_field, (void *)e))
            s->cb(s->user, &ev);
}

static void
drain(uv_async_t *async)
{
    exchange_t *x = async->data;
    pthread_mutex_lock(&x->lock);
    pending_t *e = x->head;
    x->head = x->tail = NULL;
    x->queued = 0;
    pthread_mutex_unlock(&x->lock);
    x->delivering++;
    while (e) {
        pending_t *next = e->next;
        deliver(x, e);
        pending_free(e);
        e = next;
    }
    x->delivering--;
    sweep_dead(x);
}

static char *
dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int
ex_publish(void *instance, int64_t timestamp_ns, const char *namespace_, const char *topic,
           const char *type_url, const void *data, size_t data_len, berth_error_t **err)
{
    exchange_t *x = instance;
    if (!valid_topic(topic))
        return x->api->error_make(err, BERTH_EINVAL,
                                  "topic %s: must start with '/' and have no empty "
                                  "components: invalid argument",
                                  topic ? topic : "(null)");
    if (!identifier_valid(namespace_))
        return x->api->error_make(err, BERTH_EINVAL,
                                  "namespace %s: invalid namespace name: invalid argument",
                                  namespace_ ? namespace_ : "(null)");
    pending_t *e = calloc(1, sizeof(*e));
    e->timestamp_ns = timestamp_ns ? timestamp_ns : clock_now_ns();
    e->namespace_ = dup_or_empty(namespace_);
    e->topic = dup_or_empty(topic);
    e->type_url = dup_or_empty(type_url);
    e->data = malloc(data_len ? data_len : 1);
    if (data_len)
        memcpy(e->data, data, data_len);
    e->data_len = data_len;
    pthread_mutex_lock(&x->lock);
    int rc = 0;
    if (x->closed)
        rc = x->api->error_make(err, BERTH_EUNAVAILABLE, "event exchange is shutting down");
    else if (x->queued >= MAX_QUEUED)
        rc = x->api->error_make(err, BERTH_ERESOURCE, "event queue full (%d events)", MAX_QUEUED);
    if (rc == 0) {
        if (x->tail)
            x->tail->next = e;
        else
            x->head = e;
        x->tail = e;
        x->queued++;
        uv_async_send(x->async);
    }
    pthread_mutex_unlock(&x->lock);
    if (rc < 0)
        pending_free(e);
    return rc;
}

static int
ex_subscribe(void *instance, const char *const *filters, berth_event_cb cb, void *user,
             berth_subscription_t **out, berth_error_t **err)
{
    exchange_t *x = instance;
    if (cb == NULL || out == NULL)
        return x->api->error_make(err, BERTH_EINVAL, "subscribe: no callback");
    filters_t *f = NULL;
    char msg[512];
    if (filters_parse(filters, &f, msg, sizeof(msg)) < 0)
        return x->api->error_make(err, BERTH_EINVAL, "%s: invalid argument", msg);
    berth_subscription_t *s = calloc(1, sizeof(*s));
    s->filter = f;
    s->cb = cb;
    s->user = user;
    s->next = x->subs;
    x->subs = s;
    *out = s;
    return 0;
}

static void
ex_unsubscribe(void *instance, berth_subscription_t *sub)
{
    exchange_t *x = instance;
    if (sub == NULL)
        return;
    sub->dead = 1;
    if (x->delivering == 0)
        sweep_dead(x);
}

static const berth_events_v1_ops_t exchange_ops = {
    .struct_size = sizeof(berth_events_v1_ops_t),
    .publish = ex_publish,
    .subscribe = ex_subscribe,
    .unsubscribe = ex_unsubscribe,
};

static void
free_handle(uv_handle_t *h)
{
    free(h);
}

static int
exchange_init(berth_init_ctx_t *ic, void **instance, berth_error_t **err)
{
    exchange_t *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return ic->api->error_make(err, BERTH_ENOMEM, "event exchange: out of memory");
    x->api = ic->api;
    x->log = ic->log;
    x->async = calloc(1, sizeof(*x->async));
    pthread_mutex_init(&x->lock, NULL);
    int rc = uv_async_init(ic->loop, x->async, drain);
    if (rc < 0) {
        free(x->async);
        free(x);
        return ic->api->error_make(err, BERTH_EINTERNAL, "event exchange: uv_async_init: %s",
                                   uv_strerror(rc));
    }
    x->async->data = x;
    *instance = x;
    return 0;
}

static void
exchange_fini(void *instance)
{
    exchange_t *x = instance;
    pthread_mutex_lock(&x->lock);
    x->closed = 1;
    pending_t *e = x->head;
    x->head = x->tail = NULL;
    pthread_mutex_unlock(&x->lock);
    while (e) {
        pending_t *next = e->next;
        pending_free(e);
        e = next;
    }
    for (berth_subscription_t *s = x->subs; s; s = s->next)
        s->dead = 1;
    x->delivering = 0;
    sweep_dead(x);
    uv_close((uv_handle_t *)x->async, free_handle);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

static const berth_plugin_reg_t exchange_plugin = {
    .struct_size = sizeof(berth_plugin_reg_t),
    .type = BERTH_EVENTS_TYPE,
    .id = "exchange",
    .init = exchange_init,
    .fini = exchange_fini,
    .ops = &exchange_ops,
};

static const berth_plugin_reg_t *const events_plugins[] = {&exchange_plugin, NULL};

BERTH_MODULE(events, .version = "0.1.0", .license = "Apache-2.0", .origin = "berth",
             .description = "in-process event exchange with containerd's filters",
             .plugins = events_plugins)
