/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries opened on first use (lazylib.h): not mapped before the first load, usable after it through
 * their tables, and a missing library or function refused with Unavailable and a message naming it.
 * (Criterion maps libcrypto itself: "not mapped before" is checked on libarchive, which nothing here links.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "lazylib.h"
#include "lib_archive.h"
#include "lib_crypto.h"
#include "lib_curl.h"

extern const berth_core_api_t berth__core_api;
static const berth_core_api_t *api = &berth__core_api;
static berth_error_t *err;

static void
teardown(void)
{
    if (err)
        api->error_free(err);
    err = NULL;
}

static int
mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, name) != NULL;
    if (f)
        fclose(f);
    return found;
}

Test(lazylib, opens_on_first_use, .fini = teardown)
{
    cr_assert(!mapped("/libarchive.so"), "libarchive mapped before its first use");
    cr_assert_not(libarchive_loaded());
    cr_assert_eq(libarchive_load(api, &err), 0, "%s", err ? err->message : "");
    cr_assert(mapped("/libarchive.so"));
    cr_assert(libarchive_loaded());
    struct archive *a = libarchive.archive_read_new();
    cr_assert_not_null(a);
    cr_expect_eq(libarchive.archive_read_support_format_tar(a), ARCHIVE_OK);
    libarchive.archive_read_free(a);
    cr_assert_eq(libarchive_load(api, &err), 0, "a second load is a no-op");
}

Test(lazylib, functions_are_the_library_s, .fini = teardown)
{
    cr_assert_eq(libcrypto_load(api, &err), 0, "%s", err ? err->message : "");
    unsigned char md[SHA256_DIGEST_LENGTH];
    libcrypto.SHA256((const unsigned char *)"abc", 3, md);
    static const unsigned char want[4] = {0xba, 0x78, 0x16, 0xbf}; /* FIPS 180-2's "abc" */
    cr_expect_eq(memcmp(md, want, sizeof(want)), 0);
}

Test(lazylib, curl_is_initialised_by_its_load, .fini = teardown)
{
    cr_assert_eq(libcurl_load(api, &err), 0, "%s", err ? err->message : "");
    CURL *h = libcurl.curl_easy_init();
    cr_assert_not_null(h);
    libcurl.curl_easy_cleanup(h);
}

/* a library that is not installed */
#define ABSENT_SYMBOLS(X) X(deflate)
LAZYLIB_DECLARE(absentlib, ABSENT_SYMBOLS)
LAZYLIB_DEFINE(absentlib, "libberth-absent.so.0", ABSENT_SYMBOLS, NULL)

Test(lazylib, missing_library_is_unavailable, .fini = teardown)
{
    for (int i = 0; i < 2; i++) { /* the first failure is remembered, and reported again */
        cr_assert_eq(absentlib_load(api, &err), BERTH_EUNAVAILABLE);
        cr_assert_not_null(err);
        cr_expect_eq(err->code, BERTH_EUNAVAILABLE);
        cr_expect(strncmp(err->message, "libberth-absent.so.0: cannot open: ", 35) == 0, "%s",
                  err->message);
        teardown();
    }
    cr_expect_not(absentlib_loaded());
    cr_expect_eq(absentlib_load(NULL, NULL), BERTH_EUNAVAILABLE, "no api: the code alone");
}

/* a library without one of the functions: zlib asked for libarchive's */
#define WRONG_SYMBOLS(X) X(deflate) X(archive_read_new)
LAZYLIB_DECLARE(wronglib, WRONG_SYMBOLS)
LAZYLIB_DEFINE(wronglib, "libz.so.1", WRONG_SYMBOLS, NULL)

Test(lazylib, missing_function_is_unavailable, .fini = teardown)
{
    cr_assert_eq(wronglib_load(api, &err), BERTH_EUNAVAILABLE);
    cr_expect_str_eq(err->message, "libz.so.1: no function archive_read_new");
    cr_expect_not(wronglib_loaded());
}

/* on_open's refusal */
static const char *
refuse(void)
{
    return "initialisation failed";
}
#define REFUSED_SYMBOLS(X) X(deflate)
LAZYLIB_DECLARE(refusedlib, REFUSED_SYMBOLS)
LAZYLIB_DEFINE(refusedlib, "libz.so.1", REFUSED_SYMBOLS, refuse)

Test(lazylib, on_open_failure_is_unavailable, .fini = teardown)
{
    cr_assert_eq(refusedlib_load(api, &err), BERTH_EUNAVAILABLE);
    cr_expect_str_eq(err->message, "libz.so.1: initialisation failed");
}
