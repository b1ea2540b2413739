/* Storage layer: the bandwidth limit is one token bucket over every request of a
 * store (all writers, all requests in flight), on the file:// target and on
 * Azurite. Elapsed time is checked only from below: a limiter that lets bytes go
 * faster than the limit is wrong, and a slow or busy machine can only make the
 * upload take longer, never shorter, so the check cannot fail from noise. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MiB (1024ull * 1024)

TH_AZURITE_GROUP(g, "test_store_limits")

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open the target (0: file://, 1: Azurite) with a bandwidth limit. */
static siterec_store *open_target(int azure, uint64_t limit, const char *tag)
{
	char url[4400];
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_CREATE;
	o.bandwidth_limit = limit;
	o.max_inflight = 8;
	if (azure) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/devstoreaccount1/limits-%s", g.port, tag);
		o.flags |= SITEREC_STORE_ALLOW_HTTP;
		o.account_key = TH_AZURITE_KEY;
	} else {
		snprintf(url, sizeof(url), "file://%s/limits-%s", g.dir, tag);
	}
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url, &o);
	if (rc)
		fprintf(stderr, "open %s: %s\n", url, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return st;
}

/* Two writers on two disks of one store, 4 requests of 2 MiB each (8 in flight
 * allowed): 16 MiB at 8 MiB/s take at least 14 MiB / 8 MiB/s = 1.75 s (the first
 * request goes at once). A per-request or per-connection limit would let the 8
 * requests run side by side in about 0.25 s. Then the data reads back whole. */
static void run_limit(int azure)
{
	const uint64_t limit = 8 * MiB, chunk = 2 * MiB;
	siterec_store *st = open_target(azure, limit, "agg");
	uint8_t *buf = malloc(chunk * 4);
	assert_non_null(buf);
	th_fill(buf, chunk * 4, 42);
	const char *names[2] = { "d0", "d1" };
	siterec_store_writer *w[2] = { NULL, NULL };
	for (int d = 0; d < 2; d++) {
		assert_int_equal(siterec_store_disk_create(st, names[d], 16 * MiB), 0);
		assert_int_equal(siterec_store_writer_open(&w[d], st, names[d], NULL), 0);
	}
	double t0 = now_s();
	/* non-adjacent extents: each write is a request of its own */
	for (int i = 0; i < 4; i++)
		for (int d = 0; d < 2; d++)
			assert_int_equal(siterec_store_writer_write(w[d], buf + i * chunk, chunk,
			                                            (uint64_t)i * 2 * chunk), 0);
	for (int d = 0; d < 2; d++)
		assert_int_equal(siterec_store_writer_finish(w[d]), 0);
	double took = now_s() - t0;
	double floor_s = (double)(8 * chunk - chunk) / (double)limit;
	fprintf(stderr, "%s: 16 MiB at 8 MiB/s took %.2f s (at least %.2f s expected)\n",
	        azure ? "azure" : "file", took, floor_s);
	assert_true(took >= floor_s * 0.97);
	uint8_t *back = malloc(chunk);
	assert_non_null(back);
	for (int d = 0; d < 2; d++) {
		for (int i = 0; i < 4; i++) {
			assert_int_equal(siterec_store_read(st, names[d], NULL, back, chunk,
			                                    (uint64_t)i * 2 * chunk), 0);
			assert_memory_equal(back, buf + i * chunk, chunk);
		}
		siterec_store_writer_free(w[d]);
	}
	free(back);
	free(buf);
	siterec_store_free(st);
}

static void test_limit_file(void **state)
{
	(void)state;
	run_limit(0);
}

static void test_limit_azure(void **state)
{
	(void)state;
	run_limit(1);
}

/* Without a limit nothing waits: the same upload on the same store type works
 * (and the limiter's clock never blocks a store that has none). */
static void test_no_limit(void **state)
{
	(void)state;
	for (int azure = 0; azure < 2; azure++) {
		siterec_store *st = open_target(azure, 0, "none");
		uint8_t *buf = malloc(MiB);
		assert_non_null(buf);
		th_fill(buf, MiB, 7);
		siterec_store_writer *w = NULL;
		assert_int_equal(siterec_store_disk_create(st, "d", 4 * MiB), 0);
		assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
		assert_int_equal(siterec_store_writer_write(w, buf, MiB, 2 * MiB), 0);
		assert_int_equal(siterec_store_writer_finish(w), 0);
		memset(buf, 0, MiB);
		assert_int_equal(siterec_store_read(st, "d", NULL, buf, MiB, 2 * MiB), 0);
		uint8_t *want = malloc(MiB);
		assert_non_null(want);
		th_fill(want, MiB, 7);
		assert_memory_equal(buf, want, MiB);
		free(want);
		free(buf);
		siterec_store_writer_free(w);
		siterec_store_free(st);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_file),
		cmocka_unit_test(test_limit_azure),
		cmocka_unit_test(test_no_limit),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
