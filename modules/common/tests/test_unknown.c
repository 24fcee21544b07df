/* SPDX-License-Identifier: Apache-2.0 */
/* Reading containerd 2.x's fields from protobuf-c's unknown fields: varints, length-delimited fields,
 * Timestamps, the last occurrence winning, wrong wire types and malformed bytes refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "unknown.h"

static ProtobufCMessageUnknownField fields[4];
static ProtobufCMessage msg;

static void
with(unsigned n)
{
    memset(&msg, 0, sizeof(msg));
    msg.n_unknown_fields = n;
    msg.unknown_fields = fields;
}

static void
field(unsigned i, uint32_t tag, ProtobufCWireType wire, const char *bytes, size_t len)
{
    fields[i] = (ProtobufCMessageUnknownField){
        .tag = tag, .wire_type = wire, .len = len, .data = (uint8_t *)bytes};
}

Test(unknown, varint_absent_present_last_wins)
{
    uint64_t v = 7;
    with(0);
    cr_assert_eq(unknown_varint(&msg, 4, &v), 0);
    field(0, 4, PROTOBUF_C_WIRE_TYPE_VARINT, "\x01", 1);
    field(1, 4, PROTOBUF_C_WIRE_TYPE_VARINT, "\xac\x02", 2); /* 300 */
    with(2);
    cr_assert_eq(unknown_varint(&msg, 4, &v), 1);
    cr_assert_eq(v, 300);
    cr_assert_eq(unknown_varint(&msg, 5, &v), 0);
}

Test(unknown, wrong_wire_type_and_malformed)
{
    uint64_t v;
    const uint8_t *d;
    size_t n;
    field(0, 4, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, "\x01x", 2);
    field(1, 5, PROTOBUF_C_WIRE_TYPE_VARINT, "\x80", 1);            /* unterminated */
    field(2, 6, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, "\x05xy", 3); /* short */
    with(3);
    cr_assert_eq(unknown_varint(&msg, 4, &v), -1);
    cr_assert_eq(unknown_varint(&msg, 5, &v), -1);
    cr_assert_eq(unknown_bytes(&msg, 6, &d, &n), -1);
    cr_assert_eq(unknown_bytes(&msg, 5, &d, &n), -1);
}

Test(unknown, bytes)
{
    const uint8_t *d;
    size_t n;
    field(0, 11, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, "\x03sb1", 4);
    with(1);
    cr_assert_eq(unknown_bytes(&msg, 11, &d, &n), 1);
    cr_assert_eq(n, 3);
    cr_assert(memcmp(d, "sb1", 3) == 0);
}

Test(unknown, timestamp)
{
    int64_t s;
    int32_t ns;
    /* {seconds = 1700000000 (1), nanos = 5 (2)} */
    field(0, 6, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, "\x08\x08\x80\xe2\xcf\xaa\x06\x10\x05", 9);
    with(1);
    cr_assert_eq(unknown_timestamp(&msg, 6, &s, &ns), 1);
    cr_assert_eq(s, 1700000000);
    cr_assert_eq(ns, 5);
    field(0, 6, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, "\x02\x08\x80", 3);
    cr_assert_eq(unknown_timestamp(&msg, 6, &s, &ns), -1);
}

Test(unknown, next_walks_a_message)
{
    /* {1: "ab", 2: 150, 3: fixed32} */
    static const uint8_t buf[] = {0x0a, 0x02, 'a', 'b', 0x10, 0x96, 0x01, 0x1d, 1, 2, 3, 4};
    size_t off = 0, dl = 0;
    uint32_t tag;
    int wire;
    uint64_t v = 0;
    const uint8_t *d = NULL;
    cr_assert_eq(unknown_next(buf, sizeof(buf), &off, &tag, &wire, &v, &d, &dl), 1);
    cr_assert(tag == 1 && wire == 2 && dl == 2 && memcmp(d, "ab", 2) == 0);
    cr_assert_eq(unknown_next(buf, sizeof(buf), &off, &tag, &wire, &v, &d, &dl), 1);
    cr_assert(tag == 2 && wire == 0 && v == 150);
    cr_assert_eq(unknown_next(buf, sizeof(buf), &off, &tag, &wire, &v, &d, &dl), 1);
    cr_assert(tag == 3 && wire == 5 && dl == 4);
    cr_assert_eq(unknown_next(buf, sizeof(buf), &off, &tag, &wire, &v, &d, &dl), 0);
    off = 0;
    cr_assert_eq(unknown_next(buf, 3, &off, &tag, &wire, &v, &d, &dl), -1); /* cut short */
}
