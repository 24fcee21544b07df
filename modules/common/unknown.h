/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fields containerd 2.x's protos added after the 1.6 ones berth compiles: protobuf-c keeps a field it does
 * not know in the unpacked message's unknown_fields (tag, wire type, raw bytes), and re-packs it unchanged.
 * These helpers find such a field and decode it; the last occurrence wins, as protobuf's merge rule says.
 */
#ifndef BERTH_COMMON_UNKNOWN_H
#define BERTH_COMMON_UNKNOWN_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The last unknown field numbered `tag`, or NULL. */
const ProtobufCMessageUnknownField *unknown_field(const ProtobufCMessage *m, uint32_t tag);

/* A varint field (bool, int, enum): 1 and *v set when present and well formed, 0 when absent, -1 when
 * present with another wire type or malformed. */
int unknown_varint(const ProtobufCMessage *m, uint32_t tag, uint64_t *v);

/* A length-delimited field (string, bytes, message): 1 with *data and *len pointing into the message, 0 when
 * absent, -1 when present with another wire type. */
int unknown_bytes(const ProtobufCMessage *m, uint32_t tag, const uint8_t **data, size_t *len);

/* A google.protobuf.Timestamp field: 1 with *seconds and *nanos, 0 when absent, -1 when malformed. */
int unknown_timestamp(const ProtobufCMessage *m, uint32_t tag, int64_t *seconds, int32_t *nanos);

/* Decodes a varint at p (at most len bytes): bytes used, or 0 when malformed. */
size_t unknown_read_varint(const uint8_t *p, size_t len, uint64_t *v);

/* Encodes v as a varint into out (10 bytes at most): the bytes used. With it a service fills an unknown
 * field (tag, PROTOBUF_C_WIRE_TYPE_VARINT, these bytes) of a reply, which protobuf-c packs as is. */
size_t unknown_put_varint(uint8_t *out, uint64_t v);

/* Walks the fields of an encoded message: with *off the position, fills tag and wire type and for varints *v,
 * for length-delimited fields *data and *dlen (fixed32/64 set *data and *dlen too). 1 on a field, 0 at the end,
 * -1 when malformed. */
int unknown_next(const uint8_t *buf, size_t len, size_t *off, uint32_t *tag, int *wire, uint64_t *v,
                 const uint8_t **data, size_t *dlen);

#endif
