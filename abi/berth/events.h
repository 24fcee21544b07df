/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event exchange service, type "io.containerd.event.v1" (the `events` module, id "exchange").
 *
 * Events are containerd's envelopes: a namespace, a topic ("/tasks/exit"), and a payload that is a
 * google.protobuf.Any (type URL + serialized message bytes). The exchange never decodes payloads.
 *
 * Threading: publish may be called from any thread (the loop or a thread-pool handler). Delivery to
 * subscribers always happens on the loop thread, in publish order. subscribe/unsubscribe are loop-thread only.
 *
 * Filters use containerd's filter syntax over the envelope fields `topic` and `namespace`:
 *   topic=="/tasks/exit"            namespace==default,topic~="^/images/"       topic!=/tasks/oom
 * Within one filter string, comma-separated clauses must all hold; an event is delivered when any one of
 * the filter strings matches (an empty list matches everything). `~=` is a POSIX extended regex.
 */
#ifndef BERTH_EVENTS_H
#define BERTH_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_EVENTS_TYPE "io.containerd.event.v1"

/* An event as delivered; every pointer is borrowed for the duration of the callback only. */
typedef struct berth_event_s {
    uint32_t struct_size;
    int64_t timestamp_ns; /* wall clock, set when published */
    const char *namespace_;
    const char *topic;
    const char *type_url; /* the Any's type URL, e.g. "containerd.events.TaskExit" */
    const uint8_t *data;  /* the Any's value bytes */
    size_t data_len;
} berth_event_t;

typedef void (*berth_event_cb)(void *user, const berth_event_t *ev);

typedef struct berth_subscription_s berth_subscription_t;

typedef struct berth_events_v1_ops_s {
    uint32_t struct_size;
    /* Copies everything it is given. Fails with BERTH_EINVAL on an empty or non-'/' topic or a bad
     * namespace. timestamp_ns 0 means "now" (Forward passes the original time). */
    int (*publish)(void *instance, int64_t timestamp_ns, const char *namespace_, const char *topic,
                   const char *type_url, const void *data, size_t data_len, berth_error_t **err);
    /* filters: NULL-terminated, may be NULL. Parse errors are BERTH_EINVAL naming the filter. */
    int (*subscribe)(void *instance, const char *const *filters, berth_event_cb cb, void *user,
                     berth_subscription_t **out, berth_error_t **err);
    /* After it returns the callback is never called again. */
    void (*unsubscribe)(void *instance, berth_subscription_t *sub);
} berth_events_v1_ops_t;

#ifdef __cplusplus
}
#endif
#endif /* BERTH_EVENTS_H */
