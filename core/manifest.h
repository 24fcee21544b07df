/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Module manifests (abi/berth/module.h, "On demand"): a module's descriptor as text, kept in the ELF section
 * ".berth.manifest" of its file, so the core learns its plugins without opening it.
 */
#ifndef BERTH_CORE_MANIFEST_H
#define BERTH_CORE_MANIFEST_H

#include <stdio.h>

#include <berth/module.h>

#define BERTH_MANIFEST_SECTION ".berth.manifest"

/* What a manifest says, parsed; owns every string and array its registrations point to. */
typedef struct berth__manifest {
    berth_module_desc_t desc; /* plugins is NULL: the registrations are below */
    berth_plugin_reg_t *regs;
    char **
        keys; /* parallel to regs: the gRPC service name of io.containerd.grpc.v1 plugins, or NULL */
    size_t nregs;
    char **strings; /* every string and array allocated for the above */
    size_t nstrings;
} berth__manifest_t;

/* Reads the section's text from an ELF file: 1 and *text (caller frees), 0 when it has none, -1 when the
 * file cannot be read as ELF (the loader then opens it as before and reports what dlopen says). */
int berth__manifest_read(const char *path, char **text);
/* Parses a manifest's text. NULL with *why set (static string) when it is not one this berthd reads. */
berth__manifest_t *berth__manifest_parse(const char *text, const char **why);
void berth__manifest_free(berth__manifest_t *m);
/* Writes the manifest of an open module's descriptor. */
void berth__manifest_write(FILE *out, const berth_module_desc_t *d);
/* The key api->demand matches for a registration: the service name of a gRPC service plugin. */
const char *berth__manifest_key_of(const berth_plugin_reg_t *r);

#endif
