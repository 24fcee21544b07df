/* SPDX-License-Identifier: Apache-2.0 */
#include "identifiers.h"

#include <string.h>

int
identifier_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > IDENTIFIER_MAX)
        return 0;
    int after_sep = 1; /* a separator may not start, end or repeat */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (after_sep || (c != '.' && c != '_' && c != '-')))
            return 0;
        after_sep = !alnum;
    }
    return !after_sep;
}
