/* SPDX-License-Identifier: Apache-2.0 */
/* containerd's identifier rule (pkg identifiers): namespaces, container ids, lease ids, snapshot keys. */
#ifndef BERTH_MODULES_IDENTIFIERS_H
#define BERTH_MODULES_IDENTIFIERS_H

#define IDENTIFIER_MAX 76
#define IDENTIFIER_PATTERN "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"

/* 1 when s matches IDENTIFIER_PATTERN and is at most IDENTIFIER_MAX bytes. */
int identifier_valid(const char *s);

#endif
