/* SPDX-License-Identifier: Apache-2.0 */
/* The io.berth.volumes label: entries, modes, cleaning, and each refusal with its message. */
#include <criterion/criterion.h>
#include <string.h>

#include "mountspec.h"

static char errbuf[512];

static mountspec_t
parse_ok(const char *value)
{
    mountspec_t ms;
    cr_assert_eq(mountspec_parse(value, &ms, errbuf, sizeof(errbuf)), 0, "%s: %s", value, errbuf);
    return ms;
}

/* refused, and the message holds `want` */
static void
parse_bad(const char *value, const char *want)
{
    mountspec_t ms;
    errbuf[0] = '\0';
    cr_assert_eq(mountspec_parse(value, &ms, errbuf, sizeof(errbuf)), -1, "%s: accepted", value);
    cr_assert(strstr(errbuf, want) != NULL, "%s: error \"%s\" lacks \"%s\"", value, errbuf, want);
    mountspec_free(&ms);
}

Test(mountspec, volumes_and_binds)
{
    mountspec_t ms = parse_ok("data:/data,/srv/www:/var/www:ro, cache:/cache:rw ");
    cr_assert_eq(ms.n, 3);
    cr_assert_eq(ms.entries[0].kind, MOUNTSPEC_VOLUME);
    cr_assert_str_eq(ms.entries[0].source, "data");
    cr_assert_str_eq(ms.entries[0].destination, "/data");
    cr_assert_eq(ms.entries[0].readonly, 0);
    cr_assert_eq(ms.entries[1].kind, MOUNTSPEC_BIND);
    cr_assert_str_eq(ms.entries[1].source, "/srv/www");
    cr_assert_str_eq(ms.entries[1].destination, "/var/www");
    cr_assert_eq(ms.entries[1].readonly, 1);
    cr_assert_eq(ms.entries[2].kind, MOUNTSPEC_VOLUME);
    cr_assert_str_eq(ms.entries[2].source, "cache");
    cr_assert_eq(ms.entries[2].readonly, 0);
    mountspec_free(&ms);
}

Test(mountspec, empty_value_has_no_entries)
{
    mountspec_t ms = parse_ok("");
    cr_assert_eq(ms.n, 0);
    mountspec_free(&ms);
    ms = parse_ok("  ");
    cr_assert_eq(ms.n, 0);
    mountspec_free(&ms);
    ms = parse_ok(NULL);
    cr_assert_eq(ms.n, 0);
    mountspec_free(&ms);
}

Test(mountspec, paths_are_cleaned)
{
    mountspec_t ms = parse_ok("v:/a//b/./c/,//srv//x/:/y");
    cr_assert_str_eq(ms.entries[0].destination, "/a/b/c");
    cr_assert_str_eq(ms.entries[1].source, "/srv/x");
    cr_assert_str_eq(ms.entries[1].destination, "/y");
    mountspec_free(&ms);
}

Test(mountspec, refusals_name_the_entry)
{
    parse_bad("data:/data,,x:/x", "entry 2 is empty");
    parse_bad("data:/data,", "entry 2 is empty");
    parse_bad("data", "entry 1 \"data\": no destination");
    parse_bad(":/data", "empty source");
    parse_bad("data:", "empty destination");
    parse_bad("data:/data:", "empty mode");
    parse_bad("data:/data:rx", "mode \"rx\" is neither ro nor rw");
    parse_bad("data:/data:ro:x", "too many ':'");
    parse_bad("ok:/a,data:data",
              "entry 2 \"data:data\": destination \"data\" is not an absolute path");
    parse_bad("data:/", "destination must not be \"/\"");
    parse_bad("data://", "destination must not be \"/\"");
    parse_bad("data:/a/../b", "destination has a \"..\" component");
    parse_bad("srv/x:/x", "host path \"srv/x\" is not an absolute path");
    parse_bad("/srv/../etc:/x", "host path has a \"..\" component");
    parse_bad("a:/data,b:/data/", "entry 2: destination \"/data\" is also entry 1's");
    parse_bad("a:/data,/srv:/data:ro", "also entry 1's");
}

Test(mountspec, bad_volume_names_in_entries)
{
    parse_bad("..:/x", "volume name \"..\" is invalid: it must not start with '.' or '-'");
    parse_bad(".hidden:/x", "must not start with '.' or '-'");
    parse_bad("-x:/x", "must not start with '.' or '-'");
    parse_bad("a b:/x", "character ' '");
    parse_bad("a$b:/x", "character '$'");
    char long_entry[300 + 8];
    memset(long_entry, 'a', 300);
    strcpy(long_entry + 300, ":/x");
    parse_bad(long_entry, "is 300 bytes long: at most 255");
}

Test(mountspec, volume_name_rule)
{
    cr_assert_eq(mountspec_volume_name_check("data", errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(mountspec_volume_name_check("a.b_c-9", errbuf, sizeof(errbuf)), 0);
    cr_assert_eq(mountspec_volume_name_check("x..y", errbuf, sizeof(errbuf)), 0);
    char n[257];
    memset(n, 'a', 256);
    n[255] = '\0';
    cr_assert_eq(mountspec_volume_name_check(n, errbuf, sizeof(errbuf)), 0, "255 bytes: %s",
                 errbuf);
    n[255] = 'a';
    n[256] = '\0';
    cr_assert_eq(mountspec_volume_name_check(n, errbuf, sizeof(errbuf)), -1);
    cr_assert(strstr(errbuf, "256 bytes long: at most 255") != NULL, "%s", errbuf);
    cr_assert(strlen(errbuf) < 160, "a long name is quoted short: %s", errbuf);

    cr_assert_eq(mountspec_volume_name_check("", errbuf, sizeof(errbuf)), -1);
    cr_assert_str_eq(errbuf, "volume name is empty");
    cr_assert_eq(mountspec_volume_name_check(NULL, errbuf, sizeof(errbuf)), -1);
    cr_assert_eq(mountspec_volume_name_check("..", errbuf, sizeof(errbuf)), -1);
    cr_assert_eq(mountspec_volume_name_check(".", errbuf, sizeof(errbuf)), -1);
    cr_assert_eq(mountspec_volume_name_check("/", errbuf, sizeof(errbuf)), -1);
    cr_assert(strstr(errbuf, "character '/'") != NULL, "%s", errbuf);
    cr_assert_eq(mountspec_volume_name_check("a/b", errbuf, sizeof(errbuf)), -1);
    cr_assert_eq(mountspec_volume_name_check("caf\xc3\xa9", errbuf, sizeof(errbuf)), -1);
    cr_assert(strstr(errbuf, "byte 0xc3") != NULL, "%s", errbuf);
}

Test(mountspec, names_volume)
{
    cr_assert_eq(mountspec_names_volume("data:/data,/srv/x:/x", "data"), 1);
    cr_assert_eq(mountspec_names_volume("data:/data,/srv/x:/x", "x"), 0);
    cr_assert_eq(mountspec_names_volume("/data:/data", "data"), 0);
    cr_assert_eq(mountspec_names_volume("data:/data,bad", "data"), 0);
    cr_assert_eq(mountspec_names_volume(NULL, "data"), 0);
}
