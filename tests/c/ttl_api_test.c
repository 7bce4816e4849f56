/* SPDX-License-Identifier: Apache-2.0 */
/* A plain-C test of kvcore/ttl.h: every function, NULL handles, bad enum values, size queries. */
#include <stdio.h>
#include <string.h>

#include "kvcore/kvcore.h"

#include "check.h"

static uint64_t fake_now = 5000000000u;
static uint64_t read_fake_clock(void* user) {
    CHECK(user == &fake_now);
    return *(uint64_t*)user;
}
static void advance_ms(uint64_t ms) { fake_now += ms * 1000000u; }

static int loader_calls = 0;
static kvc_status loader(void* user, const char* ns, const char* key, kvc_ttl_value* out) {
    static const uint8_t value[] = "loaded";
    ++loader_calls;
    CHECK(user == &loader_calls);
    CHECK(strcmp(ns, "prod") == 0);
    CHECK_STATUS(kvc_ttl_value_set(NULL, value, 6), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_value_set(out, NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_value_set(out, value, 6), KVC_OK);
    return strcmp(key, "fails") == 0 ? KVC_ERR_IO : KVC_OK;
}

static kvc_ttl_cache* make_cache(uint64_t max_entries) {
    kvc_ttl_options* o = NULL;
    kvc_ttl_cache* c = NULL;
    CHECK_STATUS(kvc_ttl_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_ttl_ms(o, 1000), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_negative_ttl_ms(o, 100), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_max_entries(o, max_entries), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_eviction_policy(o, KVC_EVICTION_LRU), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_cleanup_interval_ms(o, 0), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_clock(o, read_fake_clock, &fake_now), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_component(o, "metrics_cache"), KVC_OK);
    CHECK_STATUS(kvc_ttl_create(o, &c), KVC_OK);
    kvc_ttl_options_destroy(o); /* copied by create */
    return c;
}

static void test_options(void) {
    kvc_ttl_options* o = NULL;
    kvc_ttl_cache* c = NULL;
    const uint32_t bad_raw = 42;
    kvc_eviction_policy bad;
    memcpy(&bad, &bad_raw, sizeof bad);

    CHECK_STATUS(kvc_ttl_options_create(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_ttl_ms(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_negative_ttl_ms(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_max_entries(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_eviction_policy(NULL, KVC_EVICTION_LRU), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_cleanup_interval_ms(NULL, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_clock(NULL, read_fake_clock, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_component(NULL, "x"), KVC_ERR_INVALID_ARGUMENT);
    kvc_ttl_options_destroy(NULL);

    CHECK_STATUS(kvc_ttl_options_create(&o), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_ttl_ms(o, 0), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "ttl") != NULL);
    CHECK_STATUS(kvc_ttl_options_set_negative_ttl_ms(o, KVC_TTL_MAX_MS + 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_cleanup_interval_ms(o, KVC_TTL_MAX_CLEANUP_INTERVAL_MS + 1),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_eviction_policy(o, bad), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "42") != NULL);
    CHECK_STATUS(kvc_ttl_options_set_component(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_component(o, "no spaces"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_clock(o, NULL, NULL), KVC_OK); /* the default clock */
    CHECK_STATUS(kvc_ttl_options_set_cleanup_interval_ms(o, 50), KVC_OK);

    CHECK_STATUS(kvc_ttl_create(o, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_create(o, &c), KVC_OK); /* with a cleanup thread, joined by destroy */
    kvc_ttl_destroy(c);
    c = NULL;
    CHECK_STATUS(kvc_ttl_create(NULL, &c), KVC_OK); /* defaults */
    kvc_ttl_destroy(c);
    kvc_ttl_destroy(NULL);

    /* Every offered policy builds; an unknown value is refused by the setter. */
    CHECK_STATUS(kvc_ttl_options_set_eviction_policy(o, (kvc_eviction_policy)3), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_options_set_eviction_policy(o, KVC_EVICTION_ARC), KVC_OK);
    CHECK_STATUS(kvc_ttl_options_set_max_entries(o, 10), KVC_OK);
    c = NULL;
    CHECK_STATUS(kvc_ttl_create(o, &c), KVC_OK);
    kvc_ttl_destroy(c);
    CHECK_STATUS(kvc_ttl_options_set_max_entries(o, 0), KVC_OK);
    c = NULL;
    CHECK_STATUS(kvc_ttl_create(o, &c), KVC_OK);
    kvc_ttl_destroy(c);
    kvc_ttl_options_destroy(o);
}

static void test_get_set(void) {
    kvc_ttl_cache* c = make_cache(100);
    uint8_t buf[16];
    size_t len = 99;
    uint32_t valid = 9;
    uint64_t removed = 9;
    const uint8_t v[] = {'m', 'e', 't', 'r', 'i', 'c', 's'};

    CHECK_STATUS(kvc_ttl_set(NULL, "a", "b", v, 7, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_set(c, NULL, "b", v, 7, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(kvc_last_error_message(), "ns is NULL") != NULL);
    CHECK_STATUS(kvc_ttl_set(c, "a", NULL, v, 7, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_set(c, "a", "b", NULL, 7, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get(NULL, "a", "b", buf, sizeof buf, &len, &valid), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get(c, "a", NULL, buf, sizeof buf, &len, &valid), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get(c, "a", "b", NULL, 4, &len, &valid), KVC_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(kvc_ttl_set(c, "a:b", "c", v, 7, 1), KVC_OK);
    CHECK_STATUS(kvc_ttl_set(c, "a", "b:c", NULL, 0, 0), KVC_OK); /* an empty cached failure */
    CHECK_STATUS(kvc_ttl_get(c, "a:b", "c", NULL, 0, &len, &valid), KVC_OK); /* size query */
    CHECK(len == 7 && valid == 1);
    CHECK_STATUS(kvc_ttl_get(c, "a:b", "c", buf, 3, &len, &valid), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 7);
    CHECK_STATUS(kvc_ttl_get(c, "a:b", "c", buf, sizeof buf, &len, NULL), KVC_OK);
    CHECK(len == 7 && memcmp(buf, v, 7) == 0);
    CHECK_STATUS(kvc_ttl_get(c, "a", "b:c", buf, sizeof buf, &len, &valid), KVC_OK); /* negative hit */
    CHECK(len == 0 && valid == 0);
    CHECK_STATUS(kvc_ttl_get(c, "a", "bc", buf, sizeof buf, &len, &valid), KVC_ERR_NOT_FOUND);
    CHECK(len == 0 && valid == 0);
    CHECK(kvc_ttl_size(c) == 2);
    CHECK(kvc_ttl_size(NULL) == 0);

    advance_ms(100); /* the failure's negative TTL is over, the value's TTL is not */
    CHECK(kvc_ttl_size(c) == 1);
    CHECK_STATUS(kvc_ttl_cleanup(NULL, &removed), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_cleanup(c, &removed), KVC_OK);
    CHECK(removed == 1);
    CHECK_STATUS(kvc_ttl_cleanup(c, NULL), KVC_OK);

    CHECK_STATUS(kvc_ttl_invalidate(NULL, "a:b", "c"), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_invalidate(c, "a:b", NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_invalidate(c, "a:b", "c"), KVC_OK);
    CHECK_STATUS(kvc_ttl_invalidate(c, "a:b", "c"), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_ttl_set(c, "x", "y", v, 7, 1), KVC_OK);
    CHECK_STATUS(kvc_ttl_clear(NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_clear(c), KVC_OK);
    CHECK(kvc_ttl_size(c) == 0);
    kvc_ttl_destroy(c);
}

static void test_loads(void) {
    kvc_ttl_cache* c = make_cache(0);
    kvc_ttl_ticket* ticket = NULL;
    uint8_t buf[16];
    size_t len = 99;
    uint32_t valid = 9;
    const uint8_t v[] = {1, 2, 3, 4};

    loader_calls = 0;
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "m", NULL, NULL, buf, sizeof buf, &len, &valid),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get_or_load(NULL, "prod", "m", loader, &loader_calls, buf, sizeof buf, &len, &valid),
                 KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "m", loader, &loader_calls, buf, sizeof buf, &len, &valid), KVC_OK);
    CHECK(len == 6 && valid == 1 && memcmp(buf, "loaded", 6) == 0);
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "m", loader, &loader_calls, NULL, 0, &len, &valid), KVC_OK);
    CHECK(len == 6 && valid == 1 && loader_calls == 1);
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "fails", loader, &loader_calls, buf, sizeof buf, &len, &valid),
                 KVC_OK);
    CHECK(len == 6 && valid == 0 && loader_calls == 2); /* the failure keeps the loader's bytes */
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "fails", loader, &loader_calls, buf, sizeof buf, &len, &valid),
                 KVC_OK);
    CHECK(valid == 0 && loader_calls == 2);
    advance_ms(100);
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "fails", loader, &loader_calls, buf, sizeof buf, &len, &valid),
                 KVC_OK);
    CHECK(loader_calls == 3);

    /* two-phase */
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", "k", buf, sizeof buf, &len, &valid, NULL), KVC_ERR_INVALID_ARGUMENT);
    ticket = (kvc_ttl_ticket*)buf; /* begin_load clears it even when it fails */
    CHECK_STATUS(kvc_ttl_begin_load(NULL, "ns", "k", buf, sizeof buf, &len, &valid, &ticket), KVC_ERR_INVALID_ARGUMENT);
    CHECK(ticket == NULL);
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", NULL, buf, sizeof buf, &len, &valid, &ticket), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", "k", buf, sizeof buf, &len, &valid, &ticket), KVC_OK);
    CHECK(ticket != NULL && len == 0 && valid == 0);
    CHECK_STATUS(kvc_ttl_ticket_finish(NULL, v, 4, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_ticket_finish(ticket, NULL, 4, 1), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_ticket_finish(ticket, v, 4, 1), KVC_OK);
    CHECK_STATUS(kvc_ttl_ticket_finish(ticket, v, 4, 1), KVC_ERR_INVALID_STATE);
    kvc_ttl_ticket_destroy(ticket);
    kvc_ttl_ticket_destroy(NULL);
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", "k", buf, 2, &len, &valid, &ticket), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK(ticket == NULL && len == 4 && valid == 1);
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", "k", buf, sizeof buf, &len, &valid, &ticket), KVC_OK);
    CHECK(ticket == NULL && len == 4 && valid == 1 && memcmp(buf, v, 4) == 0);
    /* an abandoned ticket is a failed load */
    CHECK_STATUS(kvc_ttl_begin_load(c, "ns", "gone", NULL, 0, &len, &valid, &ticket), KVC_OK);
    CHECK(ticket != NULL);
    kvc_ttl_ticket_destroy(ticket);
    CHECK_STATUS(kvc_ttl_get(c, "ns", "gone", buf, sizeof buf, &len, &valid), KVC_OK);
    CHECK(valid == 0 && len == 0);
    kvc_ttl_destroy(c);
}

static void test_entries_and_stats(void) {
    kvc_ttl_cache* c = make_cache(1);
    kvc_ttl_entries* all = NULL;
    kvc_stats* stats = NULL;
    char text[8];
    uint8_t value[8];
    size_t len = 99;
    uint32_t valid = 9;
    uint64_t age = 9, left = 9;
    const uint8_t v[] = {'v', '1'};

    CHECK_STATUS(kvc_ttl_set(c, "old", "x", v, 2, 1), KVC_OK);
    CHECK_STATUS(kvc_ttl_set(c, "prod", "llama", v, 2, 1), KVC_OK); /* evicts old/x: max_entries 1 */
    advance_ms(250);
    CHECK_STATUS(kvc_ttl_get_all(NULL, &all), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get_all(c, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get_all(c, &all), KVC_OK);
    CHECK_STATUS(kvc_ttl_clear(c), KVC_OK); /* the copy stays */
    CHECK(kvc_ttl_entries_count(all) == 1);
    CHECK(kvc_ttl_entries_count(NULL) == 0);

    CHECK_STATUS(kvc_ttl_entries_namespace(NULL, 0, text, sizeof text, &len), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_entries_namespace(all, 1, text, sizeof text, &len), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_ttl_entries_namespace(all, 0, NULL, 0, &len), KVC_OK);
    CHECK(len == 4);
    CHECK_STATUS(kvc_ttl_entries_namespace(all, 0, text, 4, &len), KVC_ERR_BUFFER_TOO_SMALL); /* no room for NUL */
    CHECK_STATUS(kvc_ttl_entries_namespace(all, 0, text, 5, &len), KVC_OK);
    CHECK(strcmp(text, "prod") == 0);
    CHECK_STATUS(kvc_ttl_entries_key(NULL, 0, text, sizeof text, &len), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_entries_key(all, 7, text, sizeof text, &len), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_ttl_entries_key(all, 0, NULL, 0, &len), KVC_OK);
    CHECK(len == 5);
    CHECK_STATUS(kvc_ttl_entries_key(all, 0, text, sizeof text, NULL), KVC_OK);
    CHECK(strcmp(text, "llama") == 0);
    CHECK_STATUS(kvc_ttl_entries_value(NULL, 0, value, sizeof value, &len, &valid), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_entries_value(all, 1, value, sizeof value, &len, &valid), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_ttl_entries_value(all, 0, NULL, 0, &len, &valid), KVC_OK);
    CHECK(len == 2 && valid == 1);
    CHECK_STATUS(kvc_ttl_entries_value(all, 0, value, 1, &len, &valid), KVC_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(kvc_ttl_entries_value(all, 0, value, sizeof value, &len, &valid), KVC_OK);
    CHECK(len == 2 && memcmp(value, v, 2) == 0);
    CHECK_STATUS(kvc_ttl_entries_times(NULL, 0, &age, &left), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_entries_times(all, 1, &age, &left), KVC_ERR_OUT_OF_RANGE);
    CHECK_STATUS(kvc_ttl_entries_times(all, 0, &age, &left), KVC_OK);
    CHECK(age == 250 && left == 750);
    CHECK_STATUS(kvc_ttl_entries_times(all, 0, NULL, NULL), KVC_OK);
    kvc_ttl_entries_destroy(all);
    kvc_ttl_entries_destroy(NULL);

    CHECK_STATUS(kvc_ttl_set(c, "ns", "failed", NULL, 0, 0), KVC_OK);
    CHECK_STATUS(kvc_ttl_get(c, "ns", "failed", NULL, 0, &len, &valid), KVC_OK);
    advance_ms(100);
    CHECK_STATUS(kvc_ttl_get(c, "ns", "failed", NULL, 0, &len, &valid), KVC_ERR_NOT_FOUND); /* expired */
    CHECK_STATUS(kvc_ttl_snapshot(NULL, &stats), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_snapshot(c, NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_snapshot(c, &stats), KVC_OK);
    CHECK(strcmp(kvc_stats_component(stats), "metrics_cache") == 0);
    CHECK(kvc_stats_evictions(stats) == 1);
    CHECK(kvc_stats_negative_hits(stats) == 1);
    CHECK(kvc_stats_misses(stats) == 1);
    CHECK(kvc_stats_expirations(stats) == 1);
    CHECK(kvc_stats_loads(stats) == 0);
    CHECK(kvc_stats_load_failures(stats) == 0);
    CHECK(kvc_stats_insertions(stats) == 3);
    CHECK(kvc_stats_bytes_in_use(stats) == 0);
    CHECK(kvc_stats_negative_hits(NULL) == 0);
    CHECK(kvc_stats_loads(NULL) == 0);
    CHECK(kvc_stats_load_failures(NULL) == 0);
    CHECK(kvc_stats_expirations(NULL) == 0);
    kvc_stats_destroy(stats);
    kvc_ttl_destroy(c);
}

static void test_load_stats(void) {
    kvc_ttl_cache* c = make_cache(0);
    kvc_stats* stats = NULL;
    size_t len = 0;
    uint32_t valid = 0;
    loader_calls = 0;
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "fails", loader, &loader_calls, NULL, 0, &len, &valid), KVC_OK);
    CHECK_STATUS(kvc_ttl_get_or_load(c, "prod", "ok", loader, &loader_calls, NULL, 0, &len, &valid), KVC_OK);
    CHECK_STATUS(kvc_ttl_snapshot(c, &stats), KVC_OK);
    CHECK(kvc_stats_loads(stats) == 2);
    CHECK(kvc_stats_load_failures(stats) == 1);
    kvc_stats_destroy(stats);
    kvc_ttl_destroy(c);
}

/* The bindings' forms: results of unknown size as one-entry copies, counted once. */
static void test_entry_forms(void) {
    kvc_ttl_cache* c = make_cache(0);
    kvc_ttl_entries* e = NULL;
    kvc_ttl_ticket* t = NULL;
    kvc_stats* stats = NULL;
    uint8_t buf[8];
    size_t len = 0;
    uint32_t valid = 9;
    uint64_t age = 0, left = 0;
    CHECK_STATUS(kvc_ttl_get_entry(c, "ns", "k", &e), KVC_ERR_NOT_FOUND);
    CHECK(e == NULL);
    CHECK_STATUS(kvc_ttl_get_entry(NULL, "ns", "k", &e), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_get_entry(c, "ns", "k", NULL), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_set(c, "ns", "k", (const uint8_t*)"a longer value than buf", 23, 1), KVC_OK);
    advance_ms(10);
    CHECK_STATUS(kvc_ttl_get_entry(c, "ns", "k", &e), KVC_OK);
    CHECK(kvc_ttl_entries_count(e) == 1);
    CHECK_STATUS(kvc_ttl_entries_value(e, 0, NULL, 0, &len, &valid), KVC_OK);
    CHECK(len == 23 && valid == 1);
    CHECK_STATUS(kvc_ttl_entries_times(e, 0, &age, &left), KVC_OK);
    CHECK(age == 10 && left == 990);
    kvc_ttl_entries_destroy(e);

    /* begin_load_entry: a hit is a copy and no ticket; a miss is a ticket and no copy. */
    CHECK_STATUS(kvc_ttl_begin_load_entry(c, "ns", "k", &e, &t), KVC_OK);
    CHECK(e != NULL && t == NULL);
    kvc_ttl_entries_destroy(e);
    CHECK_STATUS(kvc_ttl_begin_load_entry(c, "ns", "new", &e, &t), KVC_OK);
    CHECK(e == NULL && t != NULL);
    CHECK_STATUS(kvc_ttl_ticket_finish(t, (const uint8_t*)"v", 1, 0), KVC_OK);
    kvc_ttl_ticket_destroy(t);
    CHECK_STATUS(kvc_ttl_begin_load_entry(c, "ns", "new", &e, &t), KVC_OK);
    CHECK(e != NULL && t == NULL);
    CHECK_STATUS(kvc_ttl_entries_value(e, 0, buf, sizeof buf, &len, &valid), KVC_OK);
    CHECK(len == 1 && buf[0] == 'v' && valid == 0); /* the cached failure */
    kvc_ttl_entries_destroy(e);
    CHECK_STATUS(kvc_ttl_begin_load_entry(c, "ns", "x", NULL, &t), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_ttl_begin_load_entry(c, "ns", "x", &e, NULL), KVC_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(kvc_ttl_snapshot(c, &stats), KVC_OK);
    CHECK(kvc_stats_hits(stats) == 2);          /* get_entry and begin_load_entry of "k" */
    CHECK(kvc_stats_misses(stats) == 2);        /* the first get_entry, the "new" ticket */
    CHECK(kvc_stats_negative_hits(stats) == 1); /* the cached failure */
    kvc_stats_destroy(stats);
    kvc_ttl_destroy(c);
}

int main(void) {
    test_options();
    test_get_set();
    test_loads();
    test_entries_and_stats();
    test_load_stats();
    test_entry_forms();
    printf("ttl c api: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
