/* SPDX-License-Identifier: Apache-2.0 */
/*
 * protobuf-c messages as JSON, by protobuf's JSON mapping (what Go's protojson prints, compact): field names
 * in lowerCamelCase, fields at their default left out, 64-bit integers as strings, enums by name, bytes as
 * base64, maps as objects, Timestamps as RFC 3339, Durations as "1.5s", Any as {"@type": url, ...fields}
 * when the library compiles the type, else {"@type": url, "value": base64}.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "berth/services/modules/v1/modules.pb-c.h"
#include "events/container.pb-c.h"
#include "events/content.pb-c.h"
#include "events/image.pb-c.h"
#include "events/namespace.pb-c.h"
#include "events/snapshot.pb-c.h"
#include "events/task.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "types/transfer/imagestore.pb-c.h"
#include "types/transfer/importexport.pb-c.h"
#include "types/transfer/progress.pb-c.h"
#include "types/transfer/registry.pb-c.h"
#include "types/transfer/streaming.pb-c.h"

#include "internal.h"

/* The types an Any may name that the library decodes: containerd's events, transfer's types. */
static const ProtobufCMessageDescriptor *const known[] = {
    &containerd__events__container_create__descriptor,
    &containerd__events__container_update__descriptor,
    &containerd__events__container_delete__descriptor,
    &containerd__events__content_create__descriptor,
    &containerd__events__content_delete__descriptor,
    &containerd__services__images__v1__image_create__descriptor,
    &containerd__services__images__v1__image_update__descriptor,
    &containerd__services__images__v1__image_delete__descriptor,
    &containerd__events__namespace_create__descriptor,
    &containerd__events__namespace_update__descriptor,
    &containerd__events__namespace_delete__descriptor,
    &containerd__events__snapshot_prepare__descriptor,
    &containerd__events__snapshot_commit__descriptor,
    &containerd__events__snapshot_remove__descriptor,
    &containerd__events__task_create__descriptor,
    &containerd__events__task_start__descriptor,
    &containerd__events__task_delete__descriptor,
    &containerd__events__task_io__descriptor,
    &containerd__events__task_exit__descriptor,
    &containerd__events__task_oom__descriptor,
    &containerd__events__task_exec_added__descriptor,
    &containerd__events__task_exec_started__descriptor,
    &containerd__events__task_paused__descriptor,
    &containerd__events__task_resumed__descriptor,
    &containerd__events__task_checkpointed__descriptor,
    &containerd__types__transfer__image_store__descriptor,
    &containerd__types__transfer__unpack_configuration__descriptor,
    &containerd__types__transfer__image_reference__descriptor,
    &containerd__types__transfer__image_import_stream__descriptor,
    &containerd__types__transfer__image_export_stream__descriptor,
    &containerd__types__transfer__progress__descriptor,
    &containerd__types__transfer__ociregistry__descriptor,
    &containerd__types__transfer__registry_resolver__descriptor,
    &containerd__types__transfer__auth_request__descriptor,
    &containerd__types__transfer__auth_response__descriptor,
    &containerd__types__transfer__data__descriptor,
    &containerd__types__transfer__window_update__descriptor,
    &containerd__types__transfer__read_stream__descriptor,
    &containerd__types__transfer__write_stream__descriptor,
    &google__protobuf__empty__descriptor,
    &google__protobuf__timestamp__descriptor,
    &berth__services__modules__v1__reloaded__descriptor, /* /berth/reload */
};

const ProtobufCMessageDescriptor *
bc_descriptor_for(const char *type_url)
{
    if (type_url == NULL)
        return NULL;
    /* "types.googleapis.com/containerd.events.TaskExit" and "containerd.events.TaskExit" alike */
    const char *slash = strrchr(type_url, '/');
    const char *name = slash ? slash + 1 : type_url;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(known[i]->name, name) == 0)
            return known[i];
    return NULL;
}

static json_object *message_json(const ProtobufCMessage *m);

static json_object *
base64_json(const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (n + 2) / 3 * 4;
    char *out = malloc(olen + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    json_object *j = json_object_new_string_len(out, (int)o);
    free(out);
    return j;
}

static json_object *
timestamp_json(const Google__Protobuf__Timestamp *ts)
{
    time_t t = (time_t)ts->seconds;
    struct tm tm;
    char buf[64], frac[16] = "";
    if (gmtime_r(&t, &tm) == NULL)
        return json_object_new_string("");
    int32_t ns = ts->nanos;
    /* Go's protojson: 0, 3, 6 or 9 fractional digits, as few as the value needs */
    if (ns % 1000000 == 0 && ns)
        snprintf(frac, sizeof(frac), ".%03d", ns / 1000000);
    else if (ns % 1000 == 0 && ns)
        snprintf(frac, sizeof(frac), ".%06d", ns / 1000);
    else if (ns)
        snprintf(frac, sizeof(frac), ".%09d", ns);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return json_object_new_string(buf);
}

/* google.protobuf.Duration {seconds 1, nanos 2} */
static json_object *
duration_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int64_t sec = 0;
    int32_t nanos = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *p = (const char *)m + d->fields[i].offset;
        if (d->fields[i].id == 1)
            memcpy(&sec, p, sizeof(sec));
        else if (d->fields[i].id == 2)
            memcpy(&nanos, p, sizeof(nanos));
    }
    char buf[64];
    int neg = sec < 0 || nanos < 0;
    uint64_t s = (uint64_t)(sec < 0 ? -sec : sec);
    int32_t n = nanos < 0 ? -nanos : nanos;
    if (n)
        snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%09ds", neg ? "-" : "", s, n);
    else
        snprintf(buf, sizeof(buf), "%s%" PRIu64 "s", neg ? "-" : "", s);
    if (n) {                          /* trim to 3, 6 or 9 digits */
        size_t len = strlen(buf) - 1; /* before 's' */
        int trim = n % 1000000 == 0 ? 6 : n % 1000 == 0 ? 3 : 0;
        buf[len - (size_t)trim] = 's';
        buf[len - (size_t)trim + 1] = 0;
    }
    return json_object_new_string(buf);
}

static json_object *
any_json(const Google__Protobuf__Any *any)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "@type", json_object_new_string(any->type_url ? any->type_url : ""));
    const ProtobufCMessageDescriptor *d = bc_descriptor_for(any->type_url);
    ProtobufCMessage *inner =
        d ? protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data) : NULL;
    if (inner == NULL) {
        json_object_object_add(o, "value", base64_json(any->value.data, any->value.len));
        return o;
    }
    json_object *fields = message_json(inner);
    protobuf_c_message_free_unpacked(inner, NULL);
    if (json_object_is_type(fields, json_type_object)) {
        json_object_object_foreach(fields, k, v) json_object_object_add(o, k, json_object_get(v));
        json_object_put(fields);
    } else /* a well-known type with a scalar form (Timestamp): under "value", as protojson */
        json_object_object_add(o, "value", fields);
    return o;
}

static char *
camel(const char *name)
{
    char *out = malloc(strlen(name) + 1), *o = out;
    if (out == NULL)
        return NULL;
    int up = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        *o++ = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        up = 0;
    }
    *o = 0;
    return out;
}

static size_t
elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

/* One value of field f at p, as JSON. */
static json_object *
value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_object_new_int(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_object_new_int64(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof(buf), "%" PRId64, *(const int64_t *)p);
        return json_object_new_string(buf);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof(buf), "%" PRIu64, *(const uint64_t *)p);
        return json_object_new_string(buf);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
        if (isnan(v))
            return json_object_new_string("NaN");
        if (isinf(v))
            return json_object_new_string(v > 0 ? "Infinity" : "-Infinity");
        return json_object_new_double(v);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_object_new_string(ev->name) : json_object_new_int(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_object_new_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return base64_json(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? message_json(m) : json_object_new_object();
    }
    }
    return NULL;
}

/* proto3's rule: a field without presence is left out at its default. */
static int
is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, elem_size(f->type)) == 0;
    }
    }
}

static int
is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->name);
    return d->n_fields == 2 && n > 5 && strcmp(d->name + n - 5, "Entry") == 0 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

/* A map's key as JSON object keys are: a string */
static char *
map_key(const ProtobufCMessage *e)
{
    const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
    const void *p = (const char *)e + kf->offset;
    if (kf->type == PROTOBUF_C_TYPE_STRING)
        return strdup(*(char *const *)p ? *(char *const *)p : "");
    json_object *j = value_json(kf, p);
    const char *s = json_object_get_type(j) == json_type_string ? json_object_get_string(j)
                                                                : json_object_to_json_string(j);
    char *out = strdup(s);
    json_object_put(j);
    return out;
}

/* Whether field f is set in m, and where its value (or array) is. */
static int
field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
        (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE))
        return *(void *const *)p != NULL;
    return !is_default(f, p);
}

static json_object *
field_json(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return value_json(f, p);
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(const char *const *)p;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && is_map_entry(f->descriptor)) {
        json_object *o = json_object_new_object();
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
            char *k = map_key(e);
            const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
            if (k)
                json_object_object_add(o, k, value_json(vf, (const char *)e + vf->offset));
            free(k);
        }
        return o;
    }
    json_object *a = json_object_new_array();
    size_t es = elem_size(f->type);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, value_json(f, arr + i * es));
    return a;
}

static json_object *
message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (strcmp(d->name, "google.protobuf.Timestamp") == 0)
        return timestamp_json((const Google__Protobuf__Timestamp *)m);
    if (strcmp(d->name, "google.protobuf.Duration") == 0)
        return duration_json(m);
    if (strcmp(d->name, "google.protobuf.Any") == 0)
        return any_json((const Google__Protobuf__Any *)m);
    json_object *o = json_object_new_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!field_present(m, f))
            continue;
        char *name = camel(f->name);
        if (name)
            json_object_object_add(o, name, field_json(m, f));
        free(name);
    }
    return o;
}

char *
bc_message_json(const ProtobufCMessage *msg)
{
    if (msg == NULL)
        return strdup("null");
    json_object *j = message_json(msg);
    if (j == NULL)
        return NULL;
    const char *s =
        json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *out = s ? strdup(s) : NULL;
    json_object_put(j);
    return out;
}
