/* Storage layer on the Azure Blob target, through the public API, against a real
 * Azurite started by the group setup (scripts/azurite.sh): containers, page-blob
 * disks, the writer, ranges, snapshots, documents with compare-and-swap, leases
 * (their expiry and breaking), listing, authentication errors, a delta log applied onto
 * a blob, and the merging writer. */
#include "helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)

TH_AZURITE_GROUP(az, "test_store_azure")

static char *url_of(const char *container)
{
	static char u[256];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/devstoreaccount1/%s", az.port, container);
	return u;
}

static siterec_store *open_az(const char *container, uint32_t flags)
{
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_ALLOW_HTTP | flags;
	o.account_key = TH_AZURITE_KEY;
	o.max_retries = 2;
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url_of(container), &o);
	if (rc)
		fprintf(stderr, "open: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return st;
}

static void test_open(void **state)
{
	(void)state;
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_ALLOW_HTTP;
	o.account_key = TH_AZURITE_KEY;
	o.max_retries = 1;
	siterec_store *st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("nosuch"), &o), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_error_last()->http_status, 404);
	assert_null(st);
	st = open_az("open1", SITEREC_STORE_CREATE);
	siterec_store_free(st);
	st = open_az("open1", SITEREC_STORE_CREATE);  /* already there: fine */
	siterec_store_free(st);
	st = open_az("open1", 0);
	siterec_store_free(st);
	/* malformed Azure URLs */
	char u[256];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/devstoreaccount1", az.port);
	th_assert_err(siterec_store_open(&st, u, &o), SITEREC_EINVAL);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/devstoreaccount1/Upper", az.port);
	th_assert_err(siterec_store_open(&st, u, &o), SITEREC_EINVAL);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/devstoreaccount1/cont?sv=1", az.port);
	th_assert_err(siterec_store_open(&st, u, &o), SITEREC_EINVAL);
	assert_null(strstr(siterec_error_last()->message, "sv=1"));
}

static void test_wrong_key(void **state)
{
	(void)state;
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_ALLOW_HTTP;
	o.account_key = "c2VjcmV0LWtleS1tdXN0LW5vdC1sZWFrLXNlY3JldC1rZXk=";
	o.max_retries = 1;
	siterec_store *st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("open1"), &o), SITEREC_EAUTH);
	assert_int_equal(siterec_error_last()->http_status, 403);
	assert_non_null(strstr(siterec_error_last()->message, "authentication failed"));
	assert_null(strstr(siterec_error_last()->message, "c2VjcmV0"));
	assert_null(st);
	/* a key that is not base64 */
	o.account_key = "not base64!";
	th_assert_err(siterec_store_open(&st, url_of("open1"), &o), SITEREC_EINVAL);
}

static void test_disk_basic(void **state)
{
	(void)state;
	siterec_store *st = open_az("disks", SITEREC_STORE_CREATE);
	uint64_t size = 0;
	assert_int_equal(siterec_store_disk_create(st, "vm1/disk0", 10 * MiB + 1), 0);
	assert_int_equal(siterec_store_disk_size(st, "vm1/disk0", NULL, &size), 0);
	assert_int_equal(size, 10 * MiB + 512);
	th_assert_err(siterec_store_disk_create(st, "vm1/disk0", MiB), SITEREC_EEXISTS);
	th_assert_err(siterec_store_disk_size(st, "vm1/none", NULL, &size), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_error_last()->http_status, 404);
	/* a fresh disk reads as zeros and has no ranges */
	uint8_t *buf = malloc(MiB);
	assert_non_null(buf);
	memset(buf, 0xAA, MiB);
	assert_int_equal(siterec_store_read(st, "vm1/disk0", NULL, buf, MiB, 0), 0);
	for (size_t i = 0; i < MiB; i++)
		assert_int_equal(buf[i], 0);
	th_assert_err(siterec_store_read(st, "vm1/disk0", NULL, buf, 1024, 10 * MiB), SITEREC_ERANGE);
	free(buf);
	assert_int_equal(siterec_store_disk_delete(st, "vm1/disk0", 0, NULL), 0);
	th_assert_err(siterec_store_disk_size(st, "vm1/disk0", NULL, &size), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_disk_delete(st, "vm1/disk0", 0, NULL), SITEREC_ENOTFOUND);
	siterec_store_free(st);
}

typedef struct ext_list {
	uint64_t off[64], len[64];
	int n;
} ext_list;

static int collect(uint64_t off, uint64_t len, void *p)
{
	ext_list *l = p;
	assert_true(l->n < 64);
	l->off[l->n] = off;
	l->len[l->n++] = len;
	return 0;
}

static void check_read(siterec_store *st, const char *name, const char *snap, const uint8_t *model,
                       uint64_t size)
{
	uint8_t *got = malloc(size);
	assert_non_null(got);
	assert_int_equal(siterec_store_read(st, name, snap, got, size, 0), 0);
	assert_memory_equal(got, model, size);
	free(got);
}

/* Many writes, some adjacent (coalesced), some all-zero (sent as clears), one of
 * 9 MiB (split in requests of at most 4 MiB by the writer by construction). */
static void test_writer(void **state)
{
	(void)state;
	siterec_store *st = open_az("writer", SITEREC_STORE_CREATE | SITEREC_STORE_CONTENT_MD5);
	const uint64_t size = 32 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	uint8_t *model = calloc(1, size);
	uint8_t *data = malloc(9 * MiB);
	assert_non_null(model);
	assert_non_null(data);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	uint64_t seed = 7;
	/* scattered small writes, adjacent pairs */
	for (int i = 0; i < 40; i++) {
		uint64_t off = (th_rand(&seed) % (size / 512 - 64)) * 512;
		size_t len = (size_t)(1 + th_rand(&seed) % 16) * 512;
		th_fill(data, len, seed);
		assert_int_equal(siterec_store_writer_write(w, data, len, off), 0);
		memcpy(model + off, data, len);
		th_fill(data, len, seed + 1);
		assert_int_equal(siterec_store_writer_write(w, data, len, off + len), 0);
		memcpy(model + off + len, data, len);
	}
	/* a 9 MiB contiguous run at an odd sector */
	th_fill(data, 9 * MiB, 99);
	assert_int_equal(siterec_store_writer_write(w, data, 9 * MiB, 20 * MiB + 512), 0);
	memcpy(model + 20 * MiB + 512, data, 9 * MiB);
	/* zeros over written data: both a zero buffer and an explicit clear */
	memset(data, 0, 64 * KiB);
	assert_int_equal(siterec_store_writer_write(w, data, 64 * KiB, 21 * MiB), 0);
	memset(model + 21 * MiB, 0, 64 * KiB);
	assert_int_equal(siterec_store_writer_zero(w, 25 * MiB, 2 * MiB), 0);
	memset(model + 25 * MiB, 0, 2 * MiB);
	/* rewrites of one range, non-adjacent so each is its own request in flight: the last wins */
	for (int i = 0; i < 24; i++) {
		uint64_t off = (i & 1) ? 30 * MiB : 30 * MiB + 8192;
		th_fill(data, 4096, 1000 + (uint64_t)i);
		assert_int_equal(siterec_store_writer_write(w, data, 4096, off), 0);
		memcpy(model + off, data, 4096);
	}
	/* errors of the front end still apply */
	th_assert_err(siterec_store_writer_write(w, data, 100, 0), SITEREC_EALIGN);
	th_assert_err(siterec_store_writer_write(w, data, 512, size), SITEREC_ERANGE);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	/* the writer goes on after finish */
	th_fill(data, 4096, 5);
	assert_int_equal(siterec_store_writer_write(w, data, 4096, size - 4096), 0);
	memcpy(model + size - 4096, data, 4096);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	check_read(st, "d", NULL, model, size);

	/* ranges cover every non-zero byte, are merged, ordered, inside the disk */
	ext_list l = { .n = 0 };
	assert_int_equal(siterec_store_ranges(st, "d", NULL, 0, 0, collect, &l), 0);
	assert_true(l.n > 0);
	uint64_t prev_end = 0;
	for (int i = 0; i < l.n; i++) {
		assert_true(l.off[i] >= prev_end);
		if (i)
			assert_true(l.off[i] > prev_end);  /* merged: never adjacent */
		for (uint64_t b = prev_end; b < l.off[i]; b++)
			assert_int_equal(model[b], 0);
		prev_end = l.off[i] + l.len[i];
	}
	assert_true(prev_end <= size);
	for (uint64_t b = prev_end; b < size; b++)
		assert_int_equal(model[b], 0);
	/* a sub-span is clipped */
	ext_list l2 = { .n = 0 };
	assert_int_equal(siterec_store_ranges(st, "d", NULL, 20 * MiB + 1024, 512 * KiB, collect, &l2), 0);
	assert_int_equal(l2.n, 1);
	assert_int_equal(l2.off[0], 20 * MiB + 1024);
	assert_int_equal(l2.len[0], 512 * KiB);
	th_assert_err(siterec_store_ranges(st, "d", NULL, size, 512, collect, &l2), SITEREC_ERANGE);
	free(model);
	free(data);
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, NULL), 0);
	siterec_store_free(st);
}

static void test_snapshots(void **state)
{
	(void)state;
	siterec_store *st = open_az("snaps", SITEREC_STORE_CREATE);
	const uint64_t size = MiB;
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	uint8_t *v1 = calloc(1, size), *v2 = calloc(1, size);
	assert_non_null(v1);
	assert_non_null(v2);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	th_fill(v1, 64 * KiB, 1);
	assert_int_equal(siterec_store_writer_write(w, v1, 64 * KiB, 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	char snap[SITEREC_STORE_ID_MAX], snap2[SITEREC_STORE_ID_MAX];
	th_assert_err(siterec_store_snapshot(st, "d", snap, 10), SITEREC_EINVAL);
	assert_int_equal(siterec_store_snapshot(st, "d", snap, sizeof(snap)), 0);
	assert_true(strlen(snap) > 0);
	/* write after the snapshot: the snapshot keeps the old data */
	memcpy(v2, v1, size);
	th_fill(v2 + 32 * KiB, 64 * KiB, 2);
	assert_int_equal(siterec_store_writer_write(w, v2 + 32 * KiB, 64 * KiB, 32 * KiB), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	check_read(st, "d", snap, v1, size);
	check_read(st, "d", NULL, v2, size);
	uint64_t sz = 0;
	assert_int_equal(siterec_store_disk_size(st, "d", snap, &sz), 0);
	assert_int_equal(sz, size);
	ext_list l = { .n = 0 };
	assert_int_equal(siterec_store_ranges(st, "d", snap, 0, 0, collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.off[0], 0);
	assert_int_equal(l.len[0], 64 * KiB);
	assert_int_equal(siterec_store_snapshot(st, "d", snap2, sizeof(snap2)), 0);
	assert_string_not_equal(snap, snap2);
	/* a disk with snapshots is only deleted with the flag */
	th_assert_err(siterec_store_disk_delete(st, "d", 0, NULL), SITEREC_EBUSY);
	assert_int_equal(siterec_error_last()->http_status, 409);
	assert_int_equal(siterec_store_snapshot_delete(st, "d", snap), 0);
	th_assert_err(siterec_store_disk_size(st, "d", snap, &sz), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_disk_size(st, "d", snap2, &sz), 0);
	th_assert_err(siterec_store_read(st, "d", "2020-01-01T00_00_00.0000000Z", v1, 512, 0),
	              SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_disk_delete(st, "d", SITEREC_STORE_DELETE_SNAPSHOTS, NULL), 0);
	th_assert_err(siterec_store_disk_size(st, "d", snap2, &sz), SITEREC_ENOTFOUND);
	free(v1);
	free(v2);
	siterec_store_free(st);
}

static void test_docs(void **state)
{
	(void)state;
	siterec_store *st = open_az("docs", SITEREC_STORE_CREATE);
	char e1[SITEREC_STORE_ETAG_MAX], e2[SITEREC_STORE_ETAG_MAX], e3[SITEREC_STORE_ETAG_MAX];
	void *data = NULL;
	size_t len = 0;
	th_assert_err(siterec_store_doc_get(st, "m.json", &data, &len, e1, sizeof(e1)), SITEREC_ENOTFOUND);
	/* "" only creates */
	assert_int_equal(siterec_store_doc_put(st, "m.json", "one", 3, "", e1, sizeof(e1)), 0);
	assert_true(strlen(e1) > 0);
	th_assert_err(siterec_store_doc_put(st, "m.json", "two", 3, "", NULL, 0), SITEREC_ECONFLICT);
	/* an ETag replaces only that version */
	assert_int_equal(siterec_store_doc_put(st, "m.json", "two", 3, e1, e2, sizeof(e2)), 0);
	assert_string_not_equal(e1, e2);
	th_assert_err(siterec_store_doc_put(st, "m.json", "three", 5, e1, NULL, 0), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_get(st, "m.json", &data, &len, e3, sizeof(e3)), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "two", 3);
	assert_string_equal(e3, e2);
	siterec_free(data);
	/* NULL writes unconditionally; empty documents work */
	assert_int_equal(siterec_store_doc_put(st, "m.json", NULL, 0, NULL, e3, sizeof(e3)), 0);
	assert_int_equal(siterec_store_doc_get(st, "m.json", &data, &len, NULL, 0), 0);
	assert_int_equal(len, 0);
	siterec_free(data);
	/* a big one (4 MiB, the limit) */
	size_t big = 4 * MiB;
	uint8_t *b = malloc(big);
	assert_non_null(b);
	th_fill(b, big, 3);
	assert_int_equal(siterec_store_doc_put(st, "big", b, big, NULL, NULL, 0), 0);
	assert_int_equal(siterec_store_doc_get(st, "big", &data, &len, NULL, 0), 0);
	assert_int_equal(len, big);
	assert_memory_equal(data, b, big);
	siterec_free(data);
	free(b);
	/* a small ETag buffer */
	char tiny[2];
	th_assert_err(siterec_store_doc_get(st, "m.json", &data, &len, tiny, sizeof(tiny)), SITEREC_EINVAL);
	assert_null(data);
	/* conditions on a missing document conflict (as on file://) */
	th_assert_err(siterec_store_doc_put(st, "other", "x", 1, e1, NULL, 0), SITEREC_ECONFLICT);
	th_assert_err(siterec_store_doc_delete(st, "other", e1), SITEREC_ECONFLICT);
	th_assert_err(siterec_store_doc_delete(st, "other", ""), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_doc_delete(st, "m.json", ""), SITEREC_ECONFLICT);
	/* delete with a stale ETag, then the right one */
	th_assert_err(siterec_store_doc_delete(st, "m.json", e1), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_delete(st, "m.json", e3), 0);
	th_assert_err(siterec_store_doc_delete(st, "m.json", NULL), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_doc_delete(st, "big", NULL), 0);
	/* leases are for disks */
	assert_int_equal(siterec_store_doc_put(st, "m.json", "x", 1, NULL, NULL, 0), 0);
	char lease[SITEREC_STORE_LEASE_MAX];
	th_assert_err(siterec_store_lease_acquire(st, "m.json", 0, NULL, lease, sizeof(lease)),
	              SITEREC_EINVAL);
	siterec_store_free(st);
}

static void test_leases(void **state)
{
	(void)state;
	siterec_store *st = open_az("leases", SITEREC_STORE_CREATE);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	char l1[SITEREC_STORE_LEASE_MAX], l2[SITEREC_STORE_LEASE_MAX];
	assert_int_equal(siterec_store_lease_acquire(st, "d", 0, NULL, l1, sizeof(l1)), 0);
	assert_int_equal(strlen(l1), 36);
	th_assert_err(siterec_store_lease_acquire(st, "d", 15, NULL, l2, sizeof(l2)), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_acquire(st, "d", 15, "not-a-guid", l2, sizeof(l2)),
	              SITEREC_EINVAL);
	assert_int_equal(siterec_store_lease_renew(st, "d", l1), 0);
	/* writing without (or with a wrong) lease fails; with it works */
	uint8_t buf[4096];
	th_fill(buf, sizeof(buf), 4);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), 0), 0);
	th_assert_err(siterec_store_writer_finish(w), SITEREC_ELEASE);
	assert_int_equal(siterec_error_last()->http_status, 412);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_writer_open(&w, st, "d", l1), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	uint8_t got[4096];
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 0), 0);
	assert_memory_equal(got, buf, sizeof(buf));
	th_assert_err(siterec_store_disk_delete(st, "d", 0, NULL), SITEREC_ELEASE);
	const char *other = "11111111-2222-4333-8444-555555555555";
	th_assert_err(siterec_store_lease_release(st, "d", other), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_renew(st, "d", other), SITEREC_ELEASE);
	assert_int_equal(siterec_store_lease_release(st, "d", l1), 0);
	/* a proposed GUID is taken as the id */
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, other, l2, sizeof(l2)), 0);
	assert_string_equal(l2, other);
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, other), 0);
	th_assert_err(siterec_store_lease_acquire(st, "gone", 0, NULL, l2, sizeof(l2)), SITEREC_ENOTFOUND);
	siterec_store_free(st);
}

/* A 15 s blob lease runs out (the one sleep of this program): see th_lease_expiry.
 * Fenced: the service refuses each write of a lost lease. */
static void test_lease_expiry(void **state)
{
	(void)state;
	siterec_store *st = open_az("leasexp", SITEREC_STORE_CREATE);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	th_lease_expiry(st, "aaaaaaaa-1111-4111-8111-111111111111",
	                "bbbbbbbb-2222-4222-8222-222222222222", 17);
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, NULL), 0);
	siterec_store_free(st);
}

/* A failover breaks the lease of a holder that may still be alive (break period
 * 0): the holder's renewal and writes fail (a writer opened before the break
 * too, and none of its data lands), and another holder leases the disk at once. */
static void test_lease_break(void **state)
{
	(void)state;
	siterec_store *st = open_az("leasebrk", SITEREC_STORE_CREATE);
	const char *a = "aaaaaaaa-3333-4333-8333-333333333333";
	const char *b = "bbbbbbbb-4444-4444-8444-444444444444";
	char la[SITEREC_STORE_LEASE_MAX], lb[SITEREC_STORE_LEASE_MAX];
	uint8_t buf[4096], got[4096], zero[4096];
	memset(zero, 0, sizeof(zero));
	th_assert_err(siterec_store_lease_break(NULL, "d"), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_break(st, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_break(st, "d"), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	/* nothing to break (the service answers 409 LeaseNotPresentWithLeaseOperation) */
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, a, la, sizeof(la)), 0);
	siterec_store_writer *wa = NULL, *w = NULL;
	assert_int_equal(siterec_store_writer_open(&wa, st, "d", la), 0);
	th_fill(buf, sizeof(buf), 11);
	assert_int_equal(siterec_store_writer_write(wa, buf, sizeof(buf), 0), 0);
	assert_int_equal(siterec_store_writer_finish(wa), 0);
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	th_assert_err(siterec_store_lease_renew(st, "d", la), SITEREC_ELEASE);
	/* the writer opened before the break, and one opened after, are fenced */
	th_fill(buf, sizeof(buf), 12);
	assert_int_equal(siterec_store_writer_write(wa, buf, sizeof(buf), 4096), 0);
	th_assert_err(siterec_store_writer_finish(wa), SITEREC_ELEASE);
	siterec_store_writer_free(wa);
	int rc = siterec_store_writer_open(&w, st, "d", la);
	if (rc == 0) {
		assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), 4096), 0);
		th_assert_err(siterec_store_writer_finish(w), SITEREC_ELEASE);
		siterec_store_writer_free(w);
	} else {
		th_assert_err(rc, SITEREC_ELEASE);
	}
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 4096), 0);
	assert_memory_equal(got, zero, sizeof(got));
	/* B takes it at once with its own id and writes; A stays out */
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, b, lb, sizeof(lb)), 0);
	assert_string_equal(lb, b);
	th_assert_err(siterec_store_lease_renew(st, "d", la), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_release(st, "d", la), SITEREC_ELEASE);
	assert_int_equal(siterec_store_writer_open(&w, st, "d", lb), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), 4096), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 4096), 0);
	assert_memory_equal(got, buf, sizeof(got));
	/* a release right after the break fails too (nobody has leased it since) */
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	th_assert_err(siterec_store_lease_release(st, "d", lb), SITEREC_ELEASE);
	/* an infinite lease breaks too; breaking a broken lease is harmless */
	assert_int_equal(siterec_store_lease_acquire(st, "d", 0, NULL, la, sizeof(la)), 0);
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	th_assert_err(siterec_store_lease_renew(st, "d", la), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_release(st, "d", la), SITEREC_ELEASE);
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, NULL), 0);
	/* documents are not leased */
	assert_int_equal(siterec_store_doc_put(st, "m.json", "x", 1, NULL, NULL, 0), 0);
	th_assert_err(siterec_store_lease_break(st, "m.json"), SITEREC_EINVAL);
	assert_int_equal(siterec_store_doc_delete(st, "m.json", NULL), 0);
	siterec_store_free(st);
}

typedef struct seen {
	char names[32][64];
	int kinds[32];
	uint64_t sizes[32];
	int n;
} seen;

static int on_obj(const char *name, int kind, uint64_t size, const char *snap, void *p)
{
	seen *s = p;
	assert_true(s->n < 32);
	assert_true((kind == SITEREC_STORE_KIND_SNAPSHOT) == (snap != NULL));
	snprintf(s->names[s->n], 64, "%s", name);
	s->kinds[s->n] = kind;
	s->sizes[s->n++] = size;
	return 0;
}

static int stop_cb(const char *name, int kind, uint64_t size, const char *snap, void *p)
{
	(void)name; (void)kind; (void)size; (void)snap; (void)p;
	return 42;
}

static void test_list(void **state)
{
	(void)state;
	siterec_store *st = open_az("listing", SITEREC_STORE_CREATE);
	assert_int_equal(siterec_store_disk_create(st, "vm1/a", MiB), 0);
	assert_int_equal(siterec_store_disk_create(st, "vm1/b", 2 * MiB), 0);
	assert_int_equal(siterec_store_disk_create(st, "vm2/a", MiB), 0);
	assert_int_equal(siterec_store_doc_put(st, "vm1/meta.json", "{}", 2, NULL, NULL, 0), 0);
	char snap[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_snapshot(st, "vm1/b", snap, sizeof(snap)), 0);
	seen s = { .n = 0 };
	assert_int_equal(siterec_store_list(st, "vm1/", on_obj, &s), 0);
	assert_int_equal(s.n, 4);
	int disks = 0, snaps = 0, docs = 0;
	for (int i = 0; i < s.n; i++) {
		assert_int_equal(strncmp(s.names[i], "vm1/", 4), 0);
		if (i)
			assert_true(strcmp(s.names[i - 1], s.names[i]) <= 0);
		disks += s.kinds[i] == SITEREC_STORE_KIND_DISK;
		snaps += s.kinds[i] == SITEREC_STORE_KIND_SNAPSHOT;
		docs += s.kinds[i] == SITEREC_STORE_KIND_DOC;
		if (s.kinds[i] == SITEREC_STORE_KIND_SNAPSHOT) {
			assert_string_equal(s.names[i], "vm1/b");
			assert_int_equal(s.sizes[i], 2 * MiB);
		}
	}
	assert_int_equal(disks, 2);
	assert_int_equal(snaps, 1);
	assert_int_equal(docs, 1);
	seen all = { .n = 0 };
	assert_int_equal(siterec_store_list(st, NULL, on_obj, &all), 0);
	assert_int_equal(all.n, 5);
	th_assert_err(siterec_store_list(st, "", stop_cb, NULL), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	siterec_store_free(st);
}

/* The merging writer on a page blob: scattered 4 KiB writes with small gaps over
 * old content (a zero inside, runs past 4 MiB, a gap wider than max_gap, a write
 * going back refused), then on a fresh blob the gaps of merged runs show as
 * written pages: 64 writes leave 2 page ranges (one per merged run), against
 * one per write without merging. */
static void test_writer_merge(void **state)
{
	(void)state;
	siterec_store *st = open_az("merge", SITEREC_STORE_CREATE);
	const uint64_t size = 8 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "m", size), 0);
	uint8_t *model = malloc(size);
	assert_non_null(model);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "m", NULL), 0);
	th_fill(model, size, 1);  /* old content everywhere */
	assert_int_equal(siterec_store_writer_write(w, model, size, 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);

	assert_int_equal(siterec_store_writer_open(&w, st, "m", NULL), 0);
	th_assert_err(siterec_store_writer_set_merge(w, 1000), SITEREC_EINVAL);
	assert_int_equal(siterec_store_writer_set_merge(w, 64 * KiB), 0);
	uint64_t off = 0, seed = 100;
	/* 4 KiB every 8 KiB over 5 MiB: two runs, the first one full */
	for (int i = 0; i < 640; i++, off += 8 * KiB) {
		if (i == 100) {
			assert_int_equal(siterec_store_writer_zero(w, off, 4 * KiB), 0);
			memset(model + off, 0, 4 * KiB);
			continue;
		}
		th_fill(model + off, 4 * KiB, seed++);
		assert_int_equal(siterec_store_writer_write(w, model + off, 4 * KiB, off), 0);
	}
	th_assert_err(siterec_store_writer_set_merge(w, 512), SITEREC_EINVAL);
	uint8_t junk[4096];
	memset(junk, 0x5a, sizeof(junk));
	th_assert_err(siterec_store_writer_write(w, junk, 4096, 0), SITEREC_EINVAL);
	/* past a gap wider than max_gap */
	off += 128 * KiB;
	for (int i = 0; i < 16; i++, off += 6 * KiB) {
		th_fill(model + off, 4 * KiB, seed++);
		assert_int_equal(siterec_store_writer_write(w, model + off, 4 * KiB, off), 0);
	}
	assert_true(off <= size);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	check_read(st, "m", NULL, model, size);

	for (int merge = 1; merge >= 0; merge--) {
		const char *name = merge ? "h1" : "h0";
		assert_int_equal(siterec_store_disk_create(st, name, size), 0);
		assert_int_equal(siterec_store_writer_open(&w, st, name, NULL), 0);
		if (merge)
			assert_int_equal(siterec_store_writer_set_merge(w, 64 * KiB), 0);
		memset(model, 0, size);
		for (int i = 0; i < 64; i++) {
			uint64_t o = (i < 32 ? 0 : MiB) + (uint64_t)i * 64 * KiB;
			th_fill(model + o, 4 * KiB, seed++);
			assert_int_equal(siterec_store_writer_write(w, model + o, 4 * KiB, o), 0);
		}
		assert_int_equal(siterec_store_writer_finish(w), 0);
		siterec_store_writer_free(w);
		check_read(st, name, NULL, model, size);
		th_check_merged(st, name, merge);
	}
	free(model);
	siterec_store_free(st);
}

/* A delta log shipped onto a page blob with siterec_dlog_apply. */
static void test_dlog_apply(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "d.log");
	const uint64_t size = 8 * MiB;
	siterec_dlog *log = NULL;
	siterec_dlog_options lo = SITEREC_DLOG_OPTIONS_INIT;
	lo.disk_size = size;
	assert_int_equal(siterec_dlog_create(&log, path, &lo), 0);
	uint8_t *model = calloc(1, size), *buf = malloc(MiB);
	assert_non_null(model);
	assert_non_null(buf);
	uint64_t seed = 11;
	for (int i = 0; i < 30; i++) {
		uint64_t off = (th_rand(&seed) % (size / 4096 - 64)) * 4096;
		size_t len = (size_t)(1 + th_rand(&seed) % 32) * 4096;
		th_fill(buf, len, seed);
		assert_int_equal(siterec_dlog_append(log, off, buf, len, NULL), 0);
		memcpy(model + off, buf, len);
	}
	assert_int_equal(siterec_dlog_append_zero(log, 4 * MiB, 256 * KiB, NULL), 0);
	memset(model + 4 * MiB, 0, 256 * KiB);
	assert_int_equal(siterec_dlog_seal(log), 0);
	siterec_dlog_free(log);

	siterec_store *st = open_az("dlog", SITEREC_STORE_CREATE);
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	uint64_t seq = 0;
	int rc = siterec_dlog_apply(path, NULL, 0, siterec_store_writer_write_cb, w, &seq);
	if (rc)
		fprintf(stderr, "apply: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	check_read(st, "d", NULL, model, size);
	siterec_store_free(st);
	free(model);
	free(buf);
	free(path);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_disk_basic),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_merge),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_docs),
		cmocka_unit_test(test_leases),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_lease_break),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_dlog_apply),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
