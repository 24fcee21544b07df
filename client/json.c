/* SPDX-License-Identifier: Apache-2.0 */
#include "internal.h"

char *
bc_message_json(const ProtobufCMessage *msg)
{
    (void)msg;
    return NULL;
}

const ProtobufCMessageDescriptor *
bc_descriptor_for(const char *type_url)
{
    (void)type_url;
    return NULL;
}
