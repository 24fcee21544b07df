/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Module manifests. The text is line-based, one record per line, fields separated by tabs, each field
 * escaped (\\, \t, \n) and "\-" standing for NULL:
 *   berth-manifest 1
 *   module <name> <abi major> <abi minor> <build signature>
 *   info <version> <license> <origin> <description>
 *   plugin <type> <id> <flags> <key>           then, for that plugin, any of:
 *   requires|after|platforms|start_if <item>...
 *   follows                                     (it sets on_change)
 *   config <key> <type> <default> <doc>
 *   end
 * Reading it costs a few preads: the ELF header, the section headers, their names, the section itself.
 */
#include "manifest.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/grpc.h>

#include "util.h"

#define MANIFEST_MAX (1u << 20)
#define SECTIONS_MAX 4096

/* ---- reading the section ------------------------------------------------------------------------- */

static int
read_at(int fd, void *buf, size_t len, off_t off)
{
    ssize_t n = pread(fd, buf, len, off);
    return n == (ssize_t)len ? 0 : -1;
}

static int
find_section(int fd, char **text)
{
    Elf64_Ehdr eh;
    if (read_at(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
        eh.e_shnum == 0 || eh.e_shnum > SECTIONS_MAX || eh.e_shstrndx >= eh.e_shnum)
        return 0;
    size_t shlen = (size_t)eh.e_shnum * sizeof(Elf64_Shdr);
    cleanup_free Elf64_Shdr *sh = berth__xmalloc(shlen);
    if (read_at(fd, sh, shlen, (off_t)eh.e_shoff) < 0)
        return -1;
    const Elf64_Shdr *names = &sh[eh.e_shstrndx];
    if (names->sh_size == 0 || names->sh_size > MANIFEST_MAX)
        return 0;
    cleanup_free char *strtab = berth__xmalloc(names->sh_size + 1);
    if (read_at(fd, strtab, names->sh_size, (off_t)names->sh_offset) < 0)
        return -1;
    strtab[names->sh_size] = '\0';
    for (size_t i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_name >= names->sh_size ||
            strcmp(strtab + sh[i].sh_name, BERTH_MANIFEST_SECTION) != 0)
            continue;
        if (sh[i].sh_type == SHT_NOBITS || sh[i].sh_size == 0 || sh[i].sh_size > MANIFEST_MAX)
            return 0;
        char *t = berth__xmalloc(sh[i].sh_size + 1);
        if (read_at(fd, t, sh[i].sh_size, (off_t)sh[i].sh_offset) < 0) {
            free(t);
            return -1;
        }
        t[sh[i].sh_size] = '\0';
        *text = t;
        return 1;
    }
    return 0;
}

int
berth__manifest_read(const char *path, char **text)
{
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = find_section(fd, text);
    close(fd);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------------- */

static void
put_field(FILE *out, const char *s)
{
    fputc('\t', out);
    if (s == NULL) {
        fputs("\\-", out);
        return;
    }
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\t')
            fputs("\\t", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void
put_list(FILE *out, const char *tag, const char *const *v)
{
    if (v == NULL || v[0] == NULL)
        return;
    fputs(tag, out);
    for (size_t i = 0; v[i]; i++)
        put_field(out, v[i]);
    fputc('\n', out);
}

const char *
berth__manifest_key_of(const berth_plugin_reg_t *r)
{
    if (r->type == NULL || strcmp(r->type, BERTH_GRPC_SERVICE_TYPE) != 0 || r->ops == NULL)
        return NULL;
    const berth_grpc_service_v1_t *svc = r->ops;
    return svc->struct_size >= offsetof(berth_grpc_service_v1_t, methods) ? svc->name : NULL;
}

void
berth__manifest_write(FILE *out, const berth_module_desc_t *d)
{
    char num[64];
    fputs("berth-manifest 1\nmodule", out);
    put_field(out, d->name);
    snprintf(num, sizeof(num), "%u", (unsigned)d->abi_major);
    put_field(out, num);
    snprintf(num, sizeof(num), "%u", (unsigned)d->abi_minor);
    put_field(out, num);
    put_field(out, d->signature);
    fputs("\ninfo", out);
    put_field(out, d->version);
    put_field(out, d->license);
    put_field(out, d->origin);
    put_field(out, d->description);
    fputc('\n', out);
    for (size_t i = 0; d->plugins[i]; i++) {
        berth_plugin_reg_t r = {0};
        memcpy(&r, d->plugins[i],
               d->plugins[i]->struct_size < sizeof(r) ? d->plugins[i]->struct_size : sizeof(r));
        fputs("plugin", out);
        put_field(out, r.type);
        put_field(out, r.id);
        snprintf(num, sizeof(num), "%u", (unsigned)r.flags);
        put_field(out, num);
        put_field(out, berth__manifest_key_of(&r));
        fputc('\n', out);
        put_list(out, "requires", r.requires);
        put_list(out, "after", r.after);
        put_list(out, "platforms", r.platforms);
        put_list(out, "start_if", r.start_if);
        if (r.on_change != NULL)
            fputs("follows\n", out);
        for (const berth_config_field_t *f = r.config; f && f->key; f++) {
            fputs("config", out);
            put_field(out, f->key);
            snprintf(num, sizeof(num), "%d", f->type);
            put_field(out, num);
            put_field(out, f->default_yaml);
            put_field(out, f->doc);
            fputc('\n', out);
        }
    }
    fputs("end\n", out);
}

/* ---- parsing ------------------------------------------------------------------------------------- */

static void *
keep(berth__manifest_t *m, void *p)
{
    m->strings = berth__xrealloc(m->strings, (m->nstrings + 1) * sizeof(*m->strings));
    m->strings[m->nstrings++] = p;
    return p;
}

/* Splits one line into unescaped fields (NULL for "\-"); returns how many, at most max. */
static size_t
split(berth__manifest_t *m, char *line, char **fields, size_t max)
{
    size_t n = 0;
    for (char *s = line; s && n < max;) {
        char *tab = strchr(s, '\t');
        if (tab)
            *tab = '\0';
        if (strcmp(s, "\\-") == 0) {
            fields[n++] = NULL;
        } else {
            char *f = keep(m, berth__xmalloc(strlen(s) + 1)), *w = f;
            for (const char *r = s; *r; r++) {
                if (*r == '\\' && r[1]) {
                    r++;
                    *w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
                } else {
                    *w++ = *r;
                }
            }
            *w = '\0';
            fields[n++] = f;
        }
        s = tab ? tab + 1 : NULL;
    }
    return n;
}

static const char *const *
make_list(berth__manifest_t *m, char **fields, size_t n)
{
    const char **v = keep(m, berth__xcalloc(n + 1, sizeof(*v)));
    for (size_t i = 0; i < n; i++)
        v[i] = fields[i] ? fields[i] : "";
    return v;
}

/* Stands in for the on_change of a plugin the manifest says follows changes, until its module is opened
 * (the core only tells running plugins, and a running plugin has its real registration). */
static void
follows_placeholder(void *instance, const berth_change_t *change)
{
    (void)instance;
    (void)change;
}

static const char *
parse_line(berth__manifest_t *m, char *line, berth_config_field_t **cfg, size_t *ncfg)
{
    char *f[64];
    char *tab = strchr(line, '\t');
    if (tab == NULL && strcmp(line, "follows") == 0 && m->nregs > 0) {
        m->regs[m->nregs - 1].on_change = follows_placeholder;
        return "";
    }
    if (tab == NULL)
        return strcmp(line, "end") == 0 ? NULL : "a line without fields";
    *tab = '\0';
    const char *tag = line;
    size_t n = split(m, tab + 1, f, 64);
    berth_plugin_reg_t *r = m->nregs ? &m->regs[m->nregs - 1] : NULL;
    if (strcmp(tag, "module") == 0 && n == 4 && f[0] && f[1] && f[2]) {
        m->desc.name = f[0];
        m->desc.abi_major = (uint16_t)strtoul(f[1], NULL, 10);
        m->desc.abi_minor = (uint16_t)strtoul(f[2], NULL, 10);
        m->desc.signature = f[3];
    } else if (strcmp(tag, "info") == 0 && n == 4) {
        m->desc.version = f[0];
        m->desc.license = f[1];
        m->desc.origin = f[2];
        m->desc.description = f[3];
    } else if (strcmp(tag, "plugin") == 0 && n == 4 && f[0] && f[1] && f[2]) {
        m->regs = berth__xrealloc(m->regs, (m->nregs + 1) * sizeof(*m->regs));
        m->keys = berth__xrealloc(m->keys, (m->nregs + 1) * sizeof(*m->keys));
        m->regs[m->nregs] = (berth_plugin_reg_t){.struct_size = sizeof(berth_plugin_reg_t),
                                                 .type = f[0],
                                                 .id = f[1],
                                                 .flags = (uint32_t)strtoul(f[2], NULL, 10)};
        m->keys[m->nregs++] = f[3];
        *cfg = NULL;
        *ncfg = 0;
    } else if (r && strcmp(tag, "requires") == 0) {
        r->requires = make_list(m, f, n);
    } else if (r && strcmp(tag, "after") == 0) {
        r->after = make_list(m, f, n);
    } else if (r && strcmp(tag, "platforms") == 0) {
        r->platforms = make_list(m, f, n);
    } else if (r && strcmp(tag, "start_if") == 0) {
        r->start_if = make_list(m, f, n);
    } else if (r && strcmp(tag, "config") == 0 && n == 4 && f[0] && f[1]) {
        /* the schema array grows with a NULL entry at its end; earlier copies stay owned by m */
        berth_config_field_t *c = keep(m, berth__xcalloc(*ncfg + 2, sizeof(*c)));
        if (*ncfg)
            memcpy(c, *cfg, *ncfg * sizeof(*c));
        c[(*ncfg)++] = (berth_config_field_t){f[0], atoi(f[1]), f[2], f[3]};
        *cfg = c;
        r->config = c;
    } else {
        return "an unknown or malformed line";
    }
    return "";
}

berth__manifest_t *
berth__manifest_parse(const char *text, const char **why)
{
    static const char magic[] = "berth-manifest 1\n";
    if (strncmp(text, magic, sizeof(magic) - 1) != 0) {
        *why = "not a version 1 manifest";
        return NULL;
    }
    berth__manifest_t *m = berth__xcalloc(1, sizeof(*m));
    cleanup_free char *copy = berth__xstrdup(text + sizeof(magic) - 1);
    berth_config_field_t *cfg = NULL;
    size_t ncfg = 0;
    const char *problem = "it has no end line";
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        problem = parse_line(m, line, &cfg, &ncfg);
        if (problem == NULL || problem[0] != '\0')
            break;
        problem = "it has no end line";
    }
    if (problem == NULL && (m->desc.name == NULL || m->nregs == 0))
        problem = "it names no module or no plugin";
    if (problem != NULL) {
        *why = problem;
        berth__manifest_free(m);
        return NULL;
    }
    m->desc.magic = BERTH_MODULE_MAGIC;
    m->desc.struct_size = sizeof(m->desc);
    return m;
}

void
berth__manifest_free(berth__manifest_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nstrings; i++)
        free(m->strings[i]);
    free(m->strings);
    free(m->regs);
    free(m->keys);
    free(m);
}
