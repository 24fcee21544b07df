/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The streaming server's wire protocols as pure logic (stream_proto.h): SPDY/3 frames and header
 * blocks, the HTTP request head, the WebSocket channel subprotocols, remotecommand's status.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "lib_crypto.h" /* opened on first use: the WebSocket handshake and base64 */
#include "stream_proto.h"

/* ---- sbuf --------------------------------------------------------------------------------------- */

void
sbuf_put(sbuf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void
sbuf_u32(sbuf_t *b, uint32_t v)
{
    uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
    sbuf_put(b, x, 4);
}

void
sbuf_consume(sbuf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void
sbuf_free(sbuf_t *b)
{
    free(b->p);
    *b = (sbuf_t){0};
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- SPDY/3 frames ------------------------------------------------------------------------------ */

ssize_t
spdy_frame_parse(const uint8_t *buf, size_t len, spdy_frame_t *f, const char **why)
{
    if (len < 8)
        return 0;
    size_t flen = (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
    if (len < 8 + flen)
        return 0;
    const uint8_t *p = buf + 8;
    *f = (spdy_frame_t){.flags = buf[4]};
    if (!(buf[0] & 0x80)) { /* data */
        f->type = SPDY_DATA;
        f->stream_id = get32(buf) & 0x7fffffff;
        f->data = p;
        f->len = flen;
        return (ssize_t)(8 + flen);
    }
    unsigned version = (buf[0] & 0x7f) << 8 | buf[1];
    if (version != 3) {
        *why = "not SPDY version 3";
        return -1;
    }
    f->type = buf[2] << 8 | buf[3];
    size_t need = 0;
    switch (f->type) {
    case SPDY_SYN_STREAM:
        need = 10;
        break;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        need = 4;
        break;
    case SPDY_RST_STREAM:
    case SPDY_GOAWAY:
    case SPDY_WINDOW_UPDATE:
        need = 8;
        break;
    case SPDY_PING:
        need = 4;
        break;
    default: /* SETTINGS and the rest: skipped whole by the caller */
        f->data = p;
        f->len = flen;
        return (ssize_t)(8 + flen);
    }
    if (flen < need) {
        *why = "control frame too short";
        return -1;
    }
    switch (f->type) {
    case SPDY_SYN_STREAM:
        f->stream_id = get32(p) & 0x7fffffff;
        f->data = p + 10;
        f->len = flen - 10;
        break;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        f->stream_id = get32(p) & 0x7fffffff;
        f->data = p + 4;
        f->len = flen - 4;
        break;
    case SPDY_RST_STREAM:
    case SPDY_WINDOW_UPDATE:
        f->stream_id = get32(p) & 0x7fffffff;
        f->value = get32(p + 4) & (f->type == SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
        break;
    case SPDY_GOAWAY:
        f->value = get32(p) & 0x7fffffff;
        break;
    case SPDY_PING:
        f->value = get32(p);
        break;
    }
    return (ssize_t)(8 + flen);
}

static void
put_control(sbuf_t *out, int type, uint8_t flags, size_t len)
{
    uint8_t h[8] = {0x80, 3, type >> 8, type, flags, len >> 16, len >> 8, len};
    sbuf_put(out, h, 8);
}

void
spdy_put_data(sbuf_t *out, uint32_t stream_id, uint8_t flags, const void *p, size_t n)
{
    sbuf_u32(out, stream_id & 0x7fffffff);
    uint8_t h[4] = {flags, n >> 16, n >> 8, n};
    sbuf_put(out, h, 4);
    sbuf_put(out, p, n);
}

void
spdy_put_rst(sbuf_t *out, uint32_t stream_id, uint32_t status)
{
    put_control(out, SPDY_RST_STREAM, 0, 8);
    sbuf_u32(out, stream_id & 0x7fffffff);
    sbuf_u32(out, status);
}

void
spdy_put_ping(sbuf_t *out, uint32_t id)
{
    put_control(out, SPDY_PING, 0, 4);
    sbuf_u32(out, id);
}

void
spdy_put_goaway(sbuf_t *out, uint32_t last_good, uint32_t status)
{
    put_control(out, SPDY_GOAWAY, 0, 8);
    sbuf_u32(out, last_good & 0x7fffffff);
    sbuf_u32(out, status);
}

/* ---- SPDY/3 header blocks ------------------------------------------------------------------------ */

/* The SPDY/3 dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): these words, each after its 32-bit
 * length, then the text below as it is. */
static const char *const dict_words[] = {"options",
                                         "head",
                                         "post",
                                         "put",
                                         "delete",
                                         "trace",
                                         "accept",
                                         "accept-charset",
                                         "accept-encoding",
                                         "accept-language",
                                         "accept-ranges",
                                         "age",
                                         "allow",
                                         "authorization",
                                         "cache-control",
                                         "connection",
                                         "content-base",
                                         "content-encoding",
                                         "content-language",
                                         "content-length",
                                         "content-location",
                                         "content-md5",
                                         "content-range",
                                         "content-type",
                                         "date",
                                         "etag",
                                         "expect",
                                         "expires",
                                         "from",
                                         "host",
                                         "if-match",
                                         "if-modified-since",
                                         "if-none-match",
                                         "if-range",
                                         "if-unmodified-since",
                                         "last-modified",
                                         "location",
                                         "max-forwards",
                                         "pragma",
                                         "proxy-authenticate",
                                         "proxy-authorization",
                                         "range",
                                         "referer",
                                         "retry-after",
                                         "server",
                                         "te",
                                         "trailer",
                                         "transfer-encoding",
                                         "upgrade",
                                         "user-agent",
                                         "vary",
                                         "via",
                                         "warning",
                                         "www-authenticate",
                                         "method",
                                         "get",
                                         "status",
                                         "200 OK",
                                         "version",
                                         "HTTP/1.1",
                                         "url",
                                         "public",
                                         "set-cookie",
                                         "keep-alive",
                                         "origin",
                                         NULL};
static const char dict_text[] =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service "
    "UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, "
    "Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/"
    "xhtml+xml,text/plain,text/"
    "javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset="
    "iso-8859-1,utf-,*,enq=0.";

static uint8_t dict_bytes[1500];
static size_t dict_len;
static pthread_once_t dict_once = PTHREAD_ONCE_INIT;

static void
dict_build(void)
{
    size_t n = 0;
    for (const char *const *w = dict_words; *w; w++) {
        size_t l = strlen(*w);
        uint8_t h[4] = {0, 0, 0, l};
        memcpy(dict_bytes + n, h, 4);
        memcpy(dict_bytes + n + 4, *w, l);
        n += 4 + l;
    }
    memcpy(dict_bytes + n, dict_text,
           sizeof(dict_text) - 1); /* no NUL at the end, as spdystream's */
    dict_len = n + sizeof(dict_text) - 1;
}

const uint8_t *
spdy_dictionary(size_t *len)
{
    pthread_once(&dict_once, dict_build);
    *len = dict_len;
    return dict_bytes;
}

int
spdy_zlib_init(spdy_zlib_t *z)
{
    *z = (spdy_zlib_t){0};
    if (libz_load(NULL, NULL) < 0)
        return -1;
    size_t dl;
    const uint8_t *d = spdy_dictionary(&dl);
    if (libz.inflateInit_(&z->in, ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK)
        return -1;
    z->in_ok = 1;
    if (libz.deflateInit_(&z->out, Z_BEST_COMPRESSION, ZLIB_VERSION, (int)sizeof(z_stream)) != Z_OK)
        return -1;
    z->out_ok = 1;
    if (libz.deflateSetDictionary(&z->out, d, (uInt)dl) != Z_OK)
        return -1;
    return 0;
}

void
spdy_zlib_free(spdy_zlib_t *z)
{
    if (z->in_ok)
        libz.inflateEnd(&z->in);
    if (z->out_ok)
        libz.deflateEnd(&z->out);
    z->in_ok = z->out_ok = 0;
}

static int
inflate_block(spdy_zlib_t *z, const uint8_t *block, size_t len, sbuf_t *plain)
{
    z->in.next_in = (Bytef *)block;
    z->in.avail_in = (uInt)len;
    for (;;) {
        uint8_t tmp[4096];
        z->in.next_out = tmp;
        z->in.avail_out = sizeof(tmp);
        int rc = libz.inflate(&z->in, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT) {
            size_t dl;
            const uint8_t *d = spdy_dictionary(&dl);
            if (libz.inflateSetDictionary(&z->in, d, (uInt)dl) != Z_OK)
                return -1;
            rc = Z_OK;
        }
        sbuf_put(plain, tmp, sizeof(tmp) - z->in.avail_out);
        if (plain->len > (1u << 20))
            return -1;
        if (rc == Z_BUF_ERROR && z->in.avail_in == 0)
            return 0;
        if (rc != Z_OK && rc != Z_STREAM_END)
            return -1;
        if (z->in.avail_in == 0 && z->in.avail_out != 0)
            return 0;
    }
}

int
spdy_headers_decode(spdy_zlib_t *z, const uint8_t *block, size_t len, spdy_headers_t *h,
                    const char **why)
{
    sbuf_t plain = {0};
    *h = (spdy_headers_t){0};
    if (inflate_block(z, block, len, &plain) < 0) {
        *why = "header block: bad compressed data";
        goto bad;
    }
    const uint8_t *p = plain.p, *end = plain.p + plain.len;
    if (end - p < 4) {
        *why = "header block: too short";
        goto bad;
    }
    uint32_t n = get32(p);
    p += 4;
    if (n > 1024) {
        *why = "header block: too many headers";
        goto bad;
    }
    h->names = calloc(n + 1, sizeof(char *));
    h->values = calloc(n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        char *s[2];
        for (int k = 0; k < 2; k++) {
            if (end - p < 4 || (size_t)(end - p - 4) < get32(p)) {
                *why = "header block: truncated";
                if (k == 1)
                    free(s[0]);
                goto bad;
            }
            uint32_t l = get32(p);
            s[k] = strndup((const char *)p + 4, l); /* strndup stops at a NUL: the first value */
            p += 4 + l;
        }
        h->names[i] = s[0];
        h->values[i] = s[1];
        h->n++;
    }
    sbuf_free(&plain);
    return 0;
bad:
    sbuf_free(&plain);
    spdy_headers_free(h);
    return -1;
}

const char *
spdy_headers_get(const spdy_headers_t *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

void
spdy_headers_free(spdy_headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->names[i]);
        free(h->values[i]);
    }
    free(h->names);
    free(h->values);
    *h = (spdy_headers_t){0};
}

static int
deflate_block(spdy_zlib_t *z, const char *const *names, const char *const *values, size_t n,
              sbuf_t *out)
{
    sbuf_t plain = {0};
    sbuf_u32(&plain, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        sbuf_u32(&plain, (uint32_t)l);
        for (size_t k = 0; k < l; k++) {
            char ch = (char)tolower((unsigned char)names[i][k]);
            sbuf_put(&plain, &ch, 1);
        }
        sbuf_u32(&plain, (uint32_t)strlen(values[i]));
        sbuf_put(&plain, values[i], strlen(values[i]));
    }
    z->out.next_in = plain.p;
    z->out.avail_in = (uInt)plain.len;
    int rc = Z_OK;
    do {
        uint8_t tmp[4096];
        z->out.next_out = tmp;
        z->out.avail_out = sizeof(tmp);
        rc = libz.deflate(&z->out, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            break;
        sbuf_put(out, tmp, sizeof(tmp) - z->out.avail_out);
    } while (z->out.avail_out == 0);
    sbuf_free(&plain);
    return rc == Z_OK || rc == Z_BUF_ERROR ? 0 : -1;
}

static int
put_headers_frame(sbuf_t *out, spdy_zlib_t *z, int type, uint32_t stream_id, uint8_t flags,
                  const char *const *names, const char *const *values, size_t n)
{
    sbuf_t block = {0};
    if (deflate_block(z, names, values, n, &block) < 0) {
        sbuf_free(&block);
        return -1;
    }
    size_t fixed = type == SPDY_SYN_STREAM ? 10 : 4;
    put_control(out, type, flags, fixed + block.len);
    sbuf_u32(out, stream_id & 0x7fffffff);
    if (type == SPDY_SYN_STREAM) {
        uint8_t assoc_prio[6] = {0};
        sbuf_put(out, assoc_prio, 6);
    }
    sbuf_put(out, block.p, block.len);
    sbuf_free(&block);
    return 0;
}

int
spdy_put_syn_stream(sbuf_t *out, spdy_zlib_t *z, uint32_t stream_id, uint8_t flags,
                    const char *const *names, const char *const *values, size_t n)
{
    return put_headers_frame(out, z, SPDY_SYN_STREAM, stream_id, flags, names, values, n);
}

int
spdy_put_syn_reply(sbuf_t *out, spdy_zlib_t *z, uint32_t stream_id, uint8_t flags,
                   const char *const *names, const char *const *values, size_t n)
{
    return put_headers_frame(out, z, SPDY_SYN_REPLY, stream_id, flags, names, values, n);
}

/* ---- HTTP request head --------------------------------------------------------------------------- */

#define HTTP_MAX_HEAD 16384

static char *
trim(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return strndup(s, n);
}

ssize_t
http_req_parse(const char *buf, size_t len, http_req_t *r)
{
    *r = (http_req_t){0};
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > HTTP_MAX_HEAD ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *line = buf, *eol = memchr(line, '\n', head);
    const char *sp1 = memchr(line, ' ', (size_t)(eol - line));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    r->method = strndup(line, (size_t)(sp1 - line));
    const char *target = sp1 + 1, *q = memchr(target, '?', (size_t)(sp2 - target));
    r->path = strndup(target, (size_t)((q ? q : sp2) - target));
    r->query = q ? strndup(q + 1, (size_t)(sp2 - q - 1)) : strdup("");
    size_t cap = 16;
    r->names = calloc(cap, sizeof(char *));
    r->values = calloc(cap, sizeof(char *));
    for (line = eol + 1; line < end + 2; line = eol + 1) {
        eol = memchr(line, '\n', (size_t)(buf + head - line));
        if (eol == NULL || eol - line <= 1)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL) {
            http_req_free(r);
            return -1;
        }
        if (r->n + 1 >= cap) {
            cap *= 2;
            r->names = realloc(r->names, cap * sizeof(char *));
            r->values = realloc(r->values, cap * sizeof(char *));
        }
        char *name = trim(line, (size_t)(colon - line));
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        r->names[r->n] = name;
        r->values[r->n] = trim(colon + 1, (size_t)(eol - colon - 1));
        r->n++;
    }
    return (ssize_t)head;
}

const char *
http_req_header(const http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

size_t
http_req_tokens(const http_req_t *r, const char *name, char **out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n && k < max; i++) {
        if (strcasecmp(r->names[i], name) != 0)
            continue;
        const char *s = r->values[i];
        while (*s && k < max) {
            const char *comma = strchr(s, ',');
            size_t l = comma ? (size_t)(comma - s) : strlen(s);
            char *t = trim(s, l);
            if (*t)
                out[k++] = t;
            else
                free(t);
            s += l + (comma ? 1 : 0);
        }
    }
    return k;
}

void
http_req_free(http_req_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->method);
    free(r->path);
    free(r->query);
    *r = (http_req_t){0};
}

/* ---- remotecommand ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    rc_proto_t v;
} spdy_protos[] = {
    {"v4.channel.k8s.io", RC_V4},
    {"v3.channel.k8s.io", RC_V3},
    {"v2.channel.k8s.io", RC_V2},
    {"channel.k8s.io", RC_V1},
};

int
rc_spdy_negotiate(char *const *client, size_t n, const char **chosen)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(spdy_protos) / sizeof(spdy_protos[0]); k++)
            if (strcmp(client[i], spdy_protos[k].name) == 0) {
                *chosen = spdy_protos[k].name;
                return spdy_protos[k].v;
            }
    return 0;
}

char *
rc_status(rc_proto_t proto, int exit_code, const char *msg)
{
    if (proto < RC_V4) /* v1..v3: the error's text; nothing on success */
        return strdup(msg ? msg : exit_code ? "command terminated with non-zero exit code" : "");
    json_object *st = json_object_new_object();
    json_object_object_add(st, "metadata", json_object_new_object());
    if (msg == NULL && exit_code == 0) {
        json_object_object_add(st, "status", json_object_new_string("Success"));
    } else if (msg == NULL) {
        char m[96], code[16];
        snprintf(
            m, sizeof(m),
            "command terminated with non-zero exit code: error executing command [], exit code "
            "%d",
            exit_code);
        snprintf(code, sizeof(code), "%d", exit_code);
        json_object_object_add(st, "status", json_object_new_string("Failure"));
        json_object_object_add(st, "message", json_object_new_string(m));
        json_object_object_add(st, "reason", json_object_new_string("NonZeroExitCode"));
        json_object *cause = json_object_new_object();
        json_object_object_add(cause, "reason", json_object_new_string("ExitCode"));
        json_object_object_add(cause, "message", json_object_new_string(code));
        json_object *causes = json_object_new_array();
        json_object_array_add(causes, cause);
        json_object *details = json_object_new_object();
        json_object_object_add(details, "causes", causes);
        json_object_object_add(st, "details", details);
    } else {
        json_object_object_add(st, "status", json_object_new_string("Failure"));
        json_object_object_add(st, "message", json_object_new_string(msg));
        json_object_object_add(st, "reason", json_object_new_string("InternalError"));
        json_object_object_add(st, "code", json_object_new_int(500));
    }
    char *s = strdup(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
    json_object_put(st);
    return s;
}

ssize_t
rc_resize_parse(const char *buf, size_t len,
                void (*cb)(void *user, unsigned width, unsigned height), void *user)
{
    size_t off = 0;
    while (off < len) {
        while (off < len && isspace((unsigned char)buf[off]))
            off++;
        if (off == len)
            break;
        json_tokener *tok = json_tokener_new();
        json_object *o = json_tokener_parse_ex(tok, buf + off, (int)(len - off));
        enum json_tokener_error e = json_tokener_get_error(tok);
        size_t used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (o == NULL) {
            if (e == json_tokener_continue)
                break; /* an incomplete object: more to come */
            return -1;
        }
        json_object *w, *h;
        if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "Width", &w) &&
            json_object_object_get_ex(o, "Height", &h))
            cb(user, (unsigned)json_object_get_int(w), (unsigned)json_object_get_int(h));
        json_object_put(o);
        off += used;
    }
    return (ssize_t)off;
}

/* ---- WebSocket ----------------------------------------------------------------------------------- */

int
ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    if (libcrypto_load(NULL, NULL) < 0)
        return -1;
    char in[128];
    int n = snprintf(in, sizeof(in), "%s%s", key, guid);
    if (n < 0 || (size_t)n >= sizeof(in))
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (libcrypto.EVP_Digest(in, (size_t)n, md, &mdlen, libcrypto.EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return -1;
    return libcrypto.EVP_EncodeBlock((unsigned char *)out, md, 20) == 28 ? 0 : -1;
}

static const struct {
    const char *name;
    rc_proto_t v;
    int base64;
} ws_protos[] = {
    {"v5.channel.k8s.io", RC_V5, 0},        {"v4.channel.k8s.io", RC_V4, 0},
    {"v4.base64.channel.k8s.io", RC_V4, 1}, {"channel.k8s.io", RC_V1, 0},
    {"base64.channel.k8s.io", RC_V1, 1},
};

int
ws_negotiate(char *const *client, size_t n, ws_proto_t *out)
{
    if (n == 0) { /* kubelet's "" entry: binary, the v1 status */
        *out = (ws_proto_t){"", RC_V1, 0};
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof(ws_protos) / sizeof(ws_protos[0]); k++)
            if (strcmp(client[i], ws_protos[k].name) == 0) {
                *out = (ws_proto_t){ws_protos[k].name, ws_protos[k].v, ws_protos[k].base64};
                return 0;
            }
    return -1;
}

uint8_t *
ws_channel_encode(const ws_proto_t *p, int channel, const void *data, size_t n, size_t *out_len)
{
    if (!p->base64) {
        uint8_t *m = malloc(n + 1);
        m[0] = (uint8_t)channel;
        if (n)
            memcpy(m + 1, data, n);
        *out_len = n + 1;
        return m;
    }
    if (libcrypto_load(NULL, NULL) < 0) { /* (a WebSocket accepted: ws_accept_key opened it) */
        *out_len = 0;
        return NULL;
    }
    uint8_t *m = malloc(1 + 4 * ((n + 2) / 3) + 1);
    m[0] = (uint8_t)('0' + channel);
    int l = libcrypto.EVP_EncodeBlock(m + 1, data, (int)n);
    *out_len = 1 + (size_t)l;
    return m;
}

int
ws_channel_decode(const ws_proto_t *p, const uint8_t *msg, size_t n, int *channel, uint8_t **data,
                  size_t *data_len)
{
    if (n == 0)
        return -1;
    if (!p->base64) {
        *channel = msg[0];
        *data_len = n - 1;
        *data = malloc(n);
        memcpy(*data, msg + 1, n - 1);
        return 0;
    }
    if (msg[0] < '0' || msg[0] > '9' || (n - 1) % 4 != 0 || libcrypto_load(NULL, NULL) < 0)
        return -1;
    *channel = msg[0] - '0';
    *data = malloc(3 * ((n - 1) / 4) + 1);
    int l = n > 1 ? libcrypto.EVP_DecodeBlock(*data, msg + 1, (int)(n - 1)) : 0;
    if (l < 0) {
        free(*data);
        return -1;
    }
    /* EVP_DecodeBlock counts the padding's bytes: drop them */
    if (n > 1 && msg[n - 1] == '=')
        l--;
    if (n > 2 && msg[n - 2] == '=')
        l--;
    *data_len = (size_t)l;
    return 0;
}
