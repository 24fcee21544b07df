/* SPDX-License-Identifier: Apache-2.0 */
/* network-cni's pure logic: conflists, plugin stdin, results, errors, ports, resolv.conf, exec. */
#include <criterion/criterion.h>
#include <string.h>

#include "cni.h"

Test(cni, names)
{
    cr_expect(cni_valid_name("berth"));
    cr_expect(!cni_valid_name(""));
}
