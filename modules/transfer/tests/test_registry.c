/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client's pure logic: references, WWW-Authenticate, Retry-After, the hosts configuration. */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"
#include "registry.h"
#include "registry_int.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;

Test(refs, placeholder)
{
    reg_ref_t r;
    berth_error_t *err = NULL;
    cr_assert_eq(reg_ref_parse(api, "busybox", &r, &err), 0);
    cr_expect_str_eq(r.name, "docker.io/library/busybox:latest");
}
