/* SPDX-License-Identifier: Apache-2.0 */
/* containerd's filter syntax over envelopes: parsing, errors and matching. */
#include <criterion/criterion.h>
#include <string.h>

#include "filters.h"

static char errbuf[512];

typedef struct envelope {
    const char *ns, *topic;
} envelope_t;

/* containerd's Envelope.Field: namespace and topic; payload fields are unknown here */
static const char *
envelope_field(void *object, const char *const *path, int npath)
{
    envelope_t *e = object;
    if (npath != 1)
        return NULL;
    return strcmp(path[0], "namespace") == 0 ? e->ns
           : strcmp(path[0], "topic") == 0   ? e->topic
                                             : NULL;
}

static int
envelope_match(const filters_t *f, const char *ns, const char *topic)
{
    envelope_t e = {ns, topic};
    return filters_match(f, envelope_field, &e);
}

static int
matches(const char *filter, const char *ns, const char *topic)
{
    const char *filters[] = {filter, NULL};
    filters_t *f = NULL;
    cr_assert_eq(filters_parse(filters, &f, errbuf, sizeof(errbuf)), 0, "%s: %s", filter, errbuf);
    int m = envelope_match(f, ns, topic);
    filters_free(f);
    return m;
}

static void
parse_fails(const char *filter, const char *message)
{
    const char *filters[] = {filter, NULL};
    filters_t *f = NULL;
    cr_assert_eq(filters_parse(filters, &f, errbuf, sizeof(errbuf)), -1, "accepted %s", filter);
    cr_expect_null(f);
    cr_expect_str_eq(errbuf, message);
}

Test(filters, equality_on_topic_and_namespace)
{
    cr_expect(matches("topic==\"/tasks/exit\"", "default", "/tasks/exit"));
    cr_expect_not(matches("topic==\"/tasks/exit\"", "default", "/tasks/start"));
    cr_expect(matches("namespace==default", "default", "/x"));
    cr_expect_not(matches("namespace==default", "k8s.io", "/x"));
    cr_expect(matches("namespace==k8s.io", "k8s.io", "/x"));
}

Test(filters, conjunction_and_disjunction)
{
    cr_expect(matches("namespace==default,topic==\"/a\"", "default", "/a"));
    cr_expect_not(matches("namespace==default,topic==\"/a\"", "default", "/b"));
    const char *any[] = {"topic==\"/a\"", "topic==\"/b\"", NULL};
    filters_t *f = NULL;
    cr_assert_eq(filters_parse(any, &f, errbuf, sizeof(errbuf)), 0);
    cr_expect(envelope_match(f, "ns", "/a"));
    cr_expect(envelope_match(f, "ns", "/b"));
    cr_expect_not(envelope_match(f, "ns", "/c"));
    filters_free(f);
}

Test(filters, not_equal_regex_and_presence)
{
    cr_expect(matches("topic!=\"/a\"", "ns", "/b"));
    cr_expect_not(matches("topic!=\"/a\"", "ns", "/a"));
    cr_expect(matches("topic~=\"^/images/\"", "ns", "/images/create"));
    cr_expect_not(matches("topic~=\"^/images/\"", "ns", "/tasks/create"));
    cr_expect(matches("topic~=/^.tasks.(exit|oom)$/", "ns", "/tasks/oom"));
    cr_expect(matches("topic~=|exit|", "ns", "/tasks/exit"));
    cr_expect(matches("topic", "ns", "/a"));
    cr_expect_not(matches("event.id", "ns", "/a")); /* payload fields are unknown to the exchange */
    cr_expect(matches(" namespace == default ", "default", "/a"));
}

Test(filters, empty_list_and_empty_string_match_everything)
{
    filters_t *f = (filters_t *)1;
    cr_assert_eq(filters_parse(NULL, &f, errbuf, sizeof(errbuf)), 0);
    cr_expect_null(f);
    cr_expect(envelope_match(NULL, "a", "/b"));
    cr_expect(matches("", "ns", "/x"));
}

Test(filters, quoted_escapes)
{
    cr_expect(matches("topic==\"/a\\x2fb\"", "ns", "/a/b"));
    cr_expect(matches("topic==\"/\\u00e9\"", "ns", "/\xc3\xa9"));
    cr_expect(matches("\"topic\"==\"/q\\\"\"", "ns", "/q\""));
}

Test(filters, errors_name_the_input_and_position)
{
    parse_fails("topic==", "filters: parse error: [topic==]: expected value or quoted");
    parse_fails("topic==/tasks/exit",
                "filters: parse error: [topic== >|/|< tasks/exit]: invalid quote encountered");
    parse_fails("topic=\"/a\"", "filters: parse error: [topic >|=|< \"/a\"]: unsupported operator");
    parse_fails("topic==\"/a",
                "filters: parse error: [topic== >|\"|< /a]: quoted literal not terminated");
    parse_fails("topic==\"/a\" x",
                "filters: parse error: [topic==\"/a\"  >|x|< ]: unexpected input");
    parse_fails(",", "filters: parse error: [ >|,|< ]: expected field or quoted");
    parse_fails("topic~=\"(\"", "filters: parse error: [topic~=\"(\"]: invalid regular expression");
    parse_fails("topic==\"\\q\"",
                "filters: parse error: [topic== >|\"|< \\q\"]: illegal escape sequence");
}

Test(filters, bounds)
{
    static char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    parse_fails(big, "filters: filter longer than 4096 bytes");
    const char *many[70];
    for (int i = 0; i < 69; i++)
        many[i] = "topic";
    many[69] = NULL;
    filters_t *f = NULL;
    cr_expect_eq(filters_parse(many, &f, errbuf, sizeof(errbuf)), -1);
    cr_expect_str_eq(errbuf, "filters: more than 64 filters");
}

Test(filters, regexes_that_would_explode_are_refused)
{
    parse_fails("topic~=\"a++\"",
                "filters: parse error: [topic~=\"a++\"]: invalid nested repetition operator");
    parse_fails("topic~=\"a*{2}\"",
                "filters: parse error: [topic~=\"a*{2}\"]: invalid nested repetition operator");
    parse_fails("topic~=\"a{1001}\"",
                "filters: parse error: [topic~=\"a{1001}\"]: invalid repeat count");
    parse_fails("topic~=\"(a{600}){600}\"",
                "filters: parse error: [topic~=\"(a{600}){600}\"]: invalid repeat count");
    /* a backslash does not escape the ']' of a bracket expression (the fuzzer's find) */
    parse_fails("topic~=[\\]++",
                "filters: parse error: [topic~=[\\]++]: invalid nested repetition operator");
    cr_expect(matches("topic~=\"^/t[+*]+s.*?x?$\"", "ns", "/t+*sx"));
    cr_expect(matches("topic~=\"a\\\\++\"", "ns", "a++"));
}
