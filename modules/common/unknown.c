/* SPDX-License-Identifier: Apache-2.0 */
#include "unknown.h"

const ProtobufCMessageUnknownField *
unknown_field(const ProtobufCMessage *m, uint32_t tag)
{
    const ProtobufCMessageUnknownField *found = NULL;
    for (unsigned i = 0; m && i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == tag)
            found = &m->unknown_fields[i];
    return found;
}

size_t
unknown_read_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

size_t
unknown_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        out[n++] = (uint8_t)(v | 0x80);
    out[n++] = (uint8_t)v;
    return n;
}

int
unknown_varint(const ProtobufCMessage *m, uint32_t tag, uint64_t *v)
{
    const ProtobufCMessageUnknownField *f = unknown_field(m, tag);
    if (f == NULL)
        return 0;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_VARINT)
        return -1;
    return unknown_read_varint(f->data, f->len, v) == f->len ? 1 : -1;
}

/* protobuf-c keeps a length-delimited unknown field's data with its length prefix. */
int
unknown_bytes(const ProtobufCMessage *m, uint32_t tag, const uint8_t **data, size_t *len)
{
    const ProtobufCMessageUnknownField *f = unknown_field(m, tag);
    if (f == NULL)
        return 0;
    if (f->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
        return -1;
    uint64_t n;
    size_t used = unknown_read_varint(f->data, f->len, &n);
    if (used == 0 || n != f->len - used)
        return -1;
    *data = f->data + used;
    *len = (size_t)n;
    return 1;
}

int
unknown_next(const uint8_t *buf, size_t len, size_t *off, uint32_t *tag, int *wire, uint64_t *v,
             const uint8_t **data, size_t *dlen)
{
    if (*off >= len)
        return 0;
    uint64_t key, n;
    size_t used = unknown_read_varint(buf + *off, len - *off, &key);
    if (used == 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    *off += used;
    *tag = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case PROTOBUF_C_WIRE_TYPE_VARINT:
        used = unknown_read_varint(buf + *off, len - *off, v);
        if (used == 0)
            return -1;
        *off += used;
        return 1;
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
        used = unknown_read_varint(buf + *off, len - *off, &n);
        if (used == 0 || n > len - *off - used)
            return -1;
        *data = buf + *off + used;
        *dlen = (size_t)n;
        *off += used + (size_t)n;
        return 1;
    case PROTOBUF_C_WIRE_TYPE_64BIT:
    case PROTOBUF_C_WIRE_TYPE_32BIT:
        n = *wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
        if (n > len - *off)
            return -1;
        *data = buf + *off;
        *dlen = (size_t)n;
        *off += (size_t)n;
        return 1;
    default:
        return -1;
    }
}

int
unknown_timestamp(const ProtobufCMessage *m, uint32_t tag, int64_t *seconds, int32_t *nanos)
{
    const uint8_t *d;
    size_t dl, off = 0;
    int rc = unknown_bytes(m, tag, &d, &dl);
    if (rc <= 0)
        return rc;
    *seconds = 0;
    *nanos = 0;
    uint32_t t;
    int w;
    uint64_t v;
    const uint8_t *x;
    size_t xl;
    while ((rc = unknown_next(d, dl, &off, &t, &w, &v, &x, &xl)) == 1) {
        if (t == 1 && w == PROTOBUF_C_WIRE_TYPE_VARINT)
            *seconds = (int64_t)v;
        else if (t == 2 && w == PROTOBUF_C_WIRE_TYPE_VARINT)
            *nanos = (int32_t)v;
    }
    return rc < 0 ? -1 : 1;
}
