/* SPDX-License-Identifier: Apache-2.0 */
/* Driver options: what each type takes, and nothing else (see options.h). */
#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int
errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* digits with an optional k/m/g suffix; `what` names the value in errors */
static int
number_parse(const char *s, int base, int suffix, uint64_t max, const char *what, uint64_t *out,
             char *errbuf, size_t errlen)
{
    if (s == NULL || s[0] == '\0')
        return errf(errbuf, errlen, "%s is empty", what);
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p < '0' + base; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / (uint64_t)base)
            return errf(errbuf, errlen, "%s \"%s\" is too large", what, s);
        v = v * (uint64_t)base + (uint64_t)(*p - '0');
    }
    if (p == s)
        return errf(errbuf, errlen, "%s \"%s\" is not a number", what, s);
    unsigned shift = 0;
    if (suffix && *p != '\0') {
        switch (*p) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            shift = 99;
        }
        p++;
    }
    if (*p != '\0' || shift == 99)
        return errf(errbuf, errlen, "%s \"%s\" is not a number%s", what, s,
                    suffix      ? " (with an optional k, m or g suffix)"
                    : base == 8 ? " (octal)"
                                : "");
    if (shift > 0 && v > (UINT64_MAX >> shift))
        return errf(errbuf, errlen, "%s \"%s\" is too large", what, s);
    v <<= shift;
    if (v > max)
        return errf(errbuf, errlen, "%s \"%s\" is too large", what, s);
    *out = v;
    return 0;
}

int
volsize_parse(const char *s, uint64_t *out, char *errbuf, size_t errlen)
{
    if (number_parse(s, 10, 1, UINT64_MAX, "size", out, errbuf, errlen) < 0)
        return -1;
    if (*out == 0)
        return errf(errbuf, errlen, "size \"%s\" must be more than 0", s);
    return 0;
}

/* "mode=0755,uid=1000": only the keys that cannot weaken the host, values checked */
static int
tmpfs_o_parse(const char *o, volopts_t *v, char *errbuf, size_t errlen)
{
    static const char *const allowed = "mode, uid, gid, nr_inodes";
    char buf[512];
    if (strlen(o) >= sizeof(buf))
        return errf(errbuf, errlen, "option o is too long");
    snprintf(buf, sizeof(buf), "%s", o);
    size_t used = strlen(v->tmpfs_data);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL)
            return errf(errbuf, errlen,
                        "option o: \"%s\" is not allowed (allowed: %s, as key=value)", item,
                        allowed);
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        uint64_t n;
        char what[64];
        snprintf(what, sizeof(what), "option o: %s", key);
        int rc;
        if (strcmp(key, "mode") == 0)
            rc = number_parse(val, 8, 0, 07777, what, &n, errbuf, errlen);
        else if (strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0)
            rc = number_parse(val, 10, 0, UINT32_MAX - 1, what, &n, errbuf, errlen);
        else if (strcmp(key, "nr_inodes") == 0)
            rc = number_parse(val, 10, 1, UINT64_MAX, what, &n, errbuf, errlen);
        else if (strcmp(key, "size") == 0)
            return errf(errbuf, errlen, "option o: size is not allowed here (use the option size)");
        else
            return errf(errbuf, errlen, "option o: \"%s\" is not allowed (allowed: %s)", key,
                        allowed);
        if (rc < 0)
            return -1;
        int w = snprintf(v->tmpfs_data + used, sizeof(v->tmpfs_data) - used, "%s%s=%s",
                         used ? "," : "", key, val);
        if (w < 0 || (size_t)w >= sizeof(v->tmpfs_data) - used)
            return errf(errbuf, errlen, "option o is too long");
        used += (size_t)w;
    }
    return 0;
}

static const char *
lookup(size_t n, const char *const *keys, const char *const *values, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return values[i];
    return NULL;
}

int
volopts_parse(size_t n, const char *const *keys, const char *const *values, volopts_t *out,
              char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i];
        if (strcmp(k, "type") != 0 && strcmp(k, "size") != 0 && strcmp(k, "device") != 0 &&
            strcmp(k, "o") != 0)
            return errf(errbuf, errlen, "unknown option \"%s\" (known: type, size, device, o)", k);
    }
    const char *type = lookup(n, keys, values, "type");
    const char *size = lookup(n, keys, values, "size");
    const char *device = lookup(n, keys, values, "device");
    const char *o = lookup(n, keys, values, "o");
    if (type == NULL || type[0] == '\0')
        out->type = VOL_DIR;
    else if (strcmp(type, "tmpfs") == 0)
        out->type = VOL_TMPFS;
    else if (strcmp(type, "bind") == 0)
        out->type = VOL_BIND;
    else
        return errf(errbuf, errlen,
                    "option type \"%s\" is unknown (known: \"\" for a directory, "
                    "tmpfs, bind)",
                    type);
    const char *tname = out->type == VOL_DIR ? "directory" : type;
    if (size != NULL && out->type != VOL_TMPFS)
        return errf(errbuf, errlen, "option size is for type tmpfs only (this volume is a %s)",
                    tname);
    if (o != NULL && out->type != VOL_TMPFS)
        return errf(errbuf, errlen, "option o is for type tmpfs only (this volume is a %s)", tname);
    if (device != NULL && out->type != VOL_BIND)
        return errf(errbuf, errlen, "option device is for type bind only (this volume is a %s)",
                    tname);
    if (out->type == VOL_BIND) {
        if (device == NULL || device[0] == '\0')
            return errf(errbuf, errlen, "type bind needs option device (the host path)");
        if (device[0] != '/')
            return errf(errbuf, errlen, "option device \"%s\" is not an absolute path", device);
        out->device = device;
    }
    if (out->type == VOL_TMPFS) {
        if (size != NULL && volsize_parse(size, &out->size, errbuf, errlen) < 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", errbuf);
            return errf(errbuf, errlen, "option %s", why);
        }
        if (out->size > 0)
            snprintf(out->tmpfs_data, sizeof(out->tmpfs_data), "size=%llu",
                     (unsigned long long)out->size);
        if (o != NULL && tmpfs_o_parse(o, out, errbuf, errlen) < 0)
            return -1;
    }
    return 0;
}
