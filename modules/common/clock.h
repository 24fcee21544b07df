/* SPDX-License-Identifier: Apache-2.0 */
/* Wall-clock time in nanoseconds, and containerd's protobuf timestamps from and to it. */
#ifndef BERTH_MODULES_CLOCK_H
#define BERTH_MODULES_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* With a generated google/protobuf/timestamp.pb-c.h in scope (modules with protos), the conversions. */
#ifdef GOOGLE__PROTOBUF__TIMESTAMP__INIT
static inline void
clock_set_ts(Google__Protobuf__Timestamp *t, int64_t ns)
{
    google__protobuf__timestamp__init(t);
    t->seconds = ns / 1000000000;
    t->nanos = (int32_t)(ns % 1000000000);
}

static inline int64_t
clock_ts_ns(const Google__Protobuf__Timestamp *t)
{
    return t ? t->seconds * 1000000000 + t->nanos : 0;
}
#endif

#endif
