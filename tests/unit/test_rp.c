/* Recovery points (include/siterec/rp.h) through the public API, every case run
 * against two targets: a file:// directory and a real Azurite started by the
 * group setup. Points of several disks (crash and app, changed extents, one
 * unknown) seen again from a second store handle; selection; reads of a point's
 * snapshots while the live disks moved on; ids that do not increase and two
 * handles racing for one id; retention with keep ids, shared snapshots and the
 * sweep of unreferenced ones; damaged documents; a point of 2,000,000 extents;
 * bad arguments. */
#include "helpers.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define UNKNOWN UINT64_MAX

TH_AZURITE_GROUP(g, "test_rp")

/* ---- fixtures ---- */

/* Write 64 KiB of pattern `seed` at off of a disk. */
static void put(siterec_store *st, const char *disk, uint64_t off, uint64_t seed)
{
	static uint8_t buf[64 * KiB];
	siterec_store_writer *w = NULL;
	th_fill(buf, sizeof(buf), seed);
	assert_int_equal(siterec_store_writer_open(&w, st, disk, NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), off), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
}

/* The 64 KiB at off of point id's disk i (or of the live disk when cat is NULL) hold pattern seed. */
static void expect(siterec_rp_catalog *cat, siterec_store *st, const char *disk, uint64_t id,
                   uint32_t i, uint64_t off, uint64_t seed)
{
	static uint8_t got[64 * KiB], want[64 * KiB];
	th_fill(want, sizeof(want), seed);
	if (cat)
		assert_int_equal(siterec_rp_read(cat, id, i, got, sizeof(got), off), 0);
	else
		assert_int_equal(siterec_store_read(st, disk, NULL, got, sizeof(got), off), 0);
	assert_memory_equal(got, want, sizeof(got));
}

/* Write pattern seed at 0 of a disk, then snapshot it into snap. */
static void cycle(siterec_store *st, const char *disk, uint64_t seed, char *snap)
{
	put(st, disk, 0, seed);
	assert_int_equal(siterec_store_snapshot(st, disk, snap, SITEREC_STORE_ID_MAX), 0);
}

static int add(siterec_rp_catalog *cat, uint64_t id, uint32_t kind, int64_t cut, uint32_t n,
               const siterec_rp_disk *disks)
{
	siterec_rp_point p = { SITEREC_RP_POINT_VERSION, kind, id, cut, n, 0, disks, 0, NULL };
	return siterec_rp_add(cat, &p);
}

static void same_disk(const siterec_rp_disk *a, const siterec_rp_disk *b)
{
	assert_string_equal(a->disk, b->disk);
	assert_string_equal(a->snapshot, b->snapshot);
	assert_true(a->n_changed == b->n_changed);
	if (a->n_changed != UNKNOWN && a->n_changed)
		assert_memory_equal(a->changed, b->changed, a->n_changed * sizeof(siterec_extent));
}

static void same_point(const siterec_rp_point *a, const siterec_rp_point *b)
{
	assert_true(a->id == b->id);
	assert_int_equal(a->kind, b->kind);
	assert_true(a->cut_time_ms == b->cut_time_ms);
	assert_int_equal(a->n_disks, b->n_disks);
	for (uint32_t i = 0; i < a->n_disks; i++)
		same_disk(&a->disks[i], &b->disks[i]);
}

/* Point index of cat equals point index of other. */
static void same_at(siterec_rp_catalog *cat, siterec_rp_catalog *other, uint64_t index)
{
	siterec_rp_point a = SITEREC_RP_POINT_INIT, b = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_get(cat, index, &a), 0);
	assert_int_equal(siterec_rp_get(other, index, &b), 0);
	same_point(&a, &b);
}

static uint64_t count(siterec_rp_catalog *cat)
{
	uint64_t n = 0;
	assert_int_equal(siterec_rp_count(cat, &n), 0);
	return n;
}

static uint64_t select_id(siterec_rp_catalog *cat, uint32_t how, int64_t arg)
{
	uint64_t id = 0;
	assert_int_equal(siterec_rp_select(cat, how, arg, &id), 0);
	return id;
}

/* ---- points, a second handle, selection, reads ---- */

static void run_points(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-points");
	const char *d0 = "vm1/d0", *d1 = "vm1/d1";
	char s[4][2][SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, d0, 1 * MiB), 0);
	assert_int_equal(siterec_store_disk_create(st, d1, 2 * MiB), 0);
	siterec_rp_catalog *cat = NULL, *empty = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vm1"), 0);
	assert_int_equal(count(cat), 0);
	uint64_t id;
	th_assert_err(siterec_rp_select(cat, SITEREC_RP_LATEST, 0, &id), SITEREC_ENOTFOUND);

	/* cycle 1: crash-consistent, a few extents */
	cycle(st, d0, 1, s[0][0]);
	cycle(st, d1, 101, s[0][1]);
	const siterec_extent e1a[] = { { 0, 64 * KiB } };
	const siterec_extent e1b[] = { { 0, 4 * KiB }, { 64 * KiB, 512 }, { 65 * KiB, 3 * KiB } };
	siterec_rp_disk p1[] = { { d0, s[0][0], e1a, 1 }, { d1, s[0][1], e1b, 3 } };
	assert_int_equal(add(cat, 10, SITEREC_RP_CRASH, 1000, 2, p1), 0);
	/* cycle 2: app-consistent; d0 unknown (whole disk), d1 extents past 2^53 */
	cycle(st, d0, 2, s[1][0]);
	cycle(st, d1, 102, s[1][1]);
	const siterec_extent e2b[] = { { (1ull << 60) + 512, 512 },
	                               { (1ull << 60) + 4096, 4096 },
	                               { UINT64_MAX - 1023, 1023 } };
	siterec_rp_disk p2[] = { { d0, s[1][0], NULL, UNKNOWN }, { d1, s[1][1], e2b, 3 } };
	assert_int_equal(add(cat, 11, SITEREC_RP_APP, 2000, 2, p2), 0);
	/* cycle 3: d0 unchanged (no extents), ids need not be consecutive */
	cycle(st, d0, 3, s[2][0]);
	cycle(st, d1, 103, s[2][1]);
	const siterec_extent e3b[] = { { 0, 64 * KiB } };
	siterec_rp_disk p3[] = { { d1, s[2][1], e3b, 1 }, { d0, s[2][0], NULL, 0 } };
	assert_int_equal(add(cat, 20, SITEREC_RP_CRASH, 3000, 2, p3), 0);
	/* the live disks move on */
	put(st, d0, 0, 4);
	put(st, d1, 0, 104);

	/* the points as added */
	assert_int_equal(count(cat), 3);
	const siterec_rp_disk *want[3] = { p1, p2, p3 };
	const uint64_t ids[3] = { 10, 11, 20 };
	for (uint64_t i = 0; i < 3; i++) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		assert_int_equal(siterec_rp_get(cat, i, &p), 0);
		assert_true(p.id == ids[i]);
		assert_int_equal(p.kind, i == 1 ? SITEREC_RP_APP : SITEREC_RP_CRASH);
		assert_true(p.cut_time_ms == (int64_t)(1000 * (i + 1)));
		assert_int_equal(p.n_disks, 2);
		for (uint32_t d = 0; d < 2; d++)
			same_disk(&p.disks[d], &want[i][d]);
		assert_null(p.disks[0].n_changed == UNKNOWN ? p.disks[0].changed : NULL);
	}
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	th_assert_err(siterec_rp_get(cat, 3, &p), SITEREC_ERANGE);
	assert_int_equal(siterec_rp_find(cat, 11, &p), 0);
	assert_int_equal(p.kind, SITEREC_RP_APP);
	th_assert_err(siterec_rp_find(cat, 12, &p), SITEREC_ENOTFOUND);

	/* a second store handle sees the same catalogue */
	siterec_store *st2 = th_store_open(&g, azure, "rp-points");
	siterec_rp_catalog *cat2 = NULL;
	assert_int_equal(siterec_rp_open(&cat2, st2, "vm1"), 0);
	assert_int_equal(count(cat2), 3);
	for (uint64_t i = 0; i < 3; i++)
		same_at(cat, cat2, i);

	/* selection */
	assert_true(select_id(cat2, SITEREC_RP_LATEST, 0) == 20);
	assert_true(select_id(cat2, SITEREC_RP_LATEST_APP, 0) == 11);
	assert_true(select_id(cat2, SITEREC_RP_BY_ID, 11) == 11);
	th_assert_err(siterec_rp_select(cat2, SITEREC_RP_BY_ID, 12, &id), SITEREC_ENOTFOUND);
	assert_true(select_id(cat2, SITEREC_RP_AT_OR_BEFORE, 2500) == 11);
	assert_true(select_id(cat2, SITEREC_RP_AT_OR_BEFORE, 3000) == 20);
	assert_true(select_id(cat2, SITEREC_RP_AT_OR_BEFORE, INT64_MAX) == 20);
	assert_true(select_id(cat2, SITEREC_RP_AT_OR_BEFORE, 1000) == 10);
	th_assert_err(siterec_rp_select(cat2, SITEREC_RP_AT_OR_BEFORE, 999, &id), SITEREC_ENOTFOUND);
	th_assert_err(siterec_rp_select(cat2, SITEREC_RP_AT_OR_BEFORE, -1, &id), SITEREC_ENOTFOUND);

	/* each point reads its cut, the live disk the newest writes */
	for (int h = 0; h < 2; h++) {
		siterec_rp_catalog *c = h ? cat2 : cat;
		for (uint32_t i = 0; i < 3; i++) {
			expect(c, NULL, NULL, ids[i], i == 2 ? 1 : 0, 0, 1 + i);
			expect(c, NULL, NULL, ids[i], i == 2 ? 0 : 1, 0, 101 + i);
		}
	}
	expect(NULL, st, d0, 0, 0, 0, 4);
	expect(NULL, st2, d1, 0, 0, 0, 104);
	uint8_t buf[512];
	th_assert_err(siterec_rp_read(cat, 20, 2, buf, sizeof(buf), 0), SITEREC_ERANGE);
	th_assert_err(siterec_rp_read(cat, 12, 0, buf, sizeof(buf), 0), SITEREC_ENOTFOUND);
	th_assert_err(siterec_rp_read(cat, 10, 0, buf, sizeof(buf), 1 * MiB), SITEREC_ERANGE);

	/* ids must increase; snapshots must exist */
	th_assert_err(add(cat, 20, SITEREC_RP_CRASH, 4000, 2, p3), SITEREC_ECONFLICT);
	th_assert_err(add(cat, 15, SITEREC_RP_CRASH, 4000, 2, p3), SITEREC_ECONFLICT);
	const char *gone = azure ? "2001-01-01T00_00_00.0000000Z" : "999999";
	siterec_rp_disk missing[] = { { d0, gone, NULL, UNKNOWN } };
	th_assert_err(add(cat, 21, SITEREC_RP_CRASH, 4000, 1, missing), SITEREC_ENOTFOUND);
	siterec_rp_disk nodisk[] = { { "vm1/nosuch", s[2][0], NULL, UNKNOWN } };
	th_assert_err(add(cat, 21, SITEREC_RP_CRASH, 4000, 1, nodisk), SITEREC_ENOTFOUND);
	assert_int_equal(count(cat), 3);

	/* cycle 4 through the first handle: the second sees it after a refresh */
	cycle(st, d0, 5, s[3][0]);
	siterec_rp_disk p4[] = { { d0, s[3][0], NULL, UNKNOWN } };
	assert_int_equal(add(cat, 21, SITEREC_RP_APP, 4000, 1, p4), 0);
	assert_int_equal(count(cat2), 3);
	assert_int_equal(siterec_rp_refresh(cat2), 0);
	assert_int_equal(count(cat2), 4);
	same_at(cat, cat2, 3);
	assert_true(select_id(cat2, SITEREC_RP_LATEST_APP, 0) == 21);
	expect(cat2, NULL, NULL, 21, 0, 0, 5);
	/* the stale handle cannot add that id again */
	th_assert_err(add(cat2, 21, SITEREC_RP_CRASH, 5000, 1, p4), SITEREC_ECONFLICT);

	/* another VM: its own, empty catalogue */
	assert_int_equal(siterec_rp_open(&empty, st, "vm1.b"), 0);
	assert_int_equal(count(empty), 0);
	th_assert_err(siterec_rp_select(empty, SITEREC_RP_LATEST_APP, 0, &id), SITEREC_ENOTFOUND);
	th_assert_err(siterec_rp_select(empty, SITEREC_RP_AT_OR_BEFORE, INT64_MAX, &id),
	              SITEREC_ENOTFOUND);
	siterec_rp_free(empty);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st2);
	siterec_store_free(st);
}

/* ---- two handles racing for the same ids ---- */

#define RACE_ROUNDS 12

typedef struct racer {
	siterec_rp_catalog *cat;
	pthread_barrier_t *bar;
	const siterec_rp_disk *disks;
	int rc[RACE_ROUNDS];
} racer;

static void *race_main(void *arg)
{
	racer *r = arg;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		pthread_barrier_wait(r->bar);
		r->rc[i] = add(r->cat, (uint64_t)i + 1, SITEREC_RP_CRASH, 1000 + i, 1, r->disks);
	}
	return NULL;
}

static void run_race(int azure)
{
	siterec_store *st[2];
	siterec_rp_catalog *cat[2];
	char snap[SITEREC_STORE_ID_MAX];
	st[0] = th_store_open(&g, azure, "rp-race");
	st[1] = th_store_open(&g, azure, "rp-race");
	assert_int_equal(siterec_store_disk_create(st[0], "vmr/d0", 64 * KiB), 0);
	cycle(st[0], "vmr/d0", 1, snap);
	siterec_rp_disk disks[] = { { "vmr/d0", snap, NULL, UNKNOWN } };
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	racer r[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(siterec_rp_open(&cat[i], st[i], "vmr"), 0);
		r[i] = (racer){ cat[i], &bar, disks, { 0 } };
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	int wins[2] = { 0, 0 };
	for (int i = 0; i < RACE_ROUNDS; i++) {
		/* exactly one of the two added each id; the other was told so */
		assert_true((r[0].rc[i] == 0 && r[1].rc[i] == SITEREC_ECONFLICT) ||
		            (r[1].rc[i] == 0 && r[0].rc[i] == SITEREC_ECONFLICT));
		wins[r[0].rc[i] == 0 ? 0 : 1]++;
	}
	fprintf(stderr, "%s: handle 0 won %d rounds, handle 1 %d\n", azure ? "azurite" : "file",
	        wins[0], wins[1]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(siterec_rp_refresh(cat[i]), 0);
		assert_int_equal(count(cat[i]), RACE_ROUNDS);
	}
	for (uint64_t i = 0; i < RACE_ROUNDS; i++)
		same_at(cat[0], cat[1], i);
	for (int i = 0; i < 2; i++) {
		siterec_rp_free(cat[i]);
		siterec_store_free(st[i]);
	}
}

/* ---- retention and the sweep ---- */

typedef struct snaps {
	char id[16][SITEREC_STORE_ID_MAX];
	size_t n;
	const char *disk;
} snaps;

static int snaps_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	snaps *s = payload;
	(void)size;
	if (kind == SITEREC_STORE_KIND_SNAPSHOT && strcmp(name, s->disk) == 0) {
		assert_true(s->n < 16);
		snprintf(s->id[s->n++], SITEREC_STORE_ID_MAX, "%s", snap);
	}
	return 0;
}

/* The disk's snapshots are exactly the n given, in this order (oldest first). */
static void expect_snaps(siterec_store *st, const char *disk, size_t n, const char *const *ids)
{
	snaps s = { .disk = disk };
	assert_int_equal(siterec_store_list(st, disk, snaps_cb, &s), 0);
	for (size_t i = 0; i < s.n; i++)
		fprintf(stderr, "  %s@%s%s\n", disk, s.id[i], i < n && strcmp(s.id[i], ids[i]) ? " (!)" : "");
	assert_int_equal(s.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(s.id[i], ids[i]);
}

static int docs_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	(void)name; (void)size; (void)snap;
	*(int *)payload += kind == SITEREC_STORE_KIND_DOC;
	return 0;
}

static void expect_ids(siterec_rp_catalog *cat, size_t n, const uint64_t *ids)
{
	assert_int_equal(count(cat), n);
	for (size_t i = 0; i < n; i++) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		assert_int_equal(siterec_rp_get(cat, i, &p), 0);
		assert_true(p.id == ids[i]);
	}
}

static void run_prune(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-prune");
	const char *d0 = "vmp/d0", *d1 = "vmp/d1";
	char s0[7][SITEREC_STORE_ID_MAX], s1[7][SITEREC_STORE_ID_MAX];
	char old0[SITEREC_STORE_ID_MAX], new0[SITEREC_STORE_ID_MAX], new1[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, d0, 256 * KiB), 0);
	assert_int_equal(siterec_store_disk_create(st, d1, 256 * KiB), 0);
	siterec_rp_catalog *cat = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vmp"), 0);
	uint64_t pruned = 99;
	/* nothing to prune in an empty catalogue */
	assert_int_equal(siterec_rp_prune(cat, 10000, 0, NULL, 0, &pruned), 0);
	assert_true(pruned == 0);
	/* points 1..6 cut at 1000..6000 */
	for (int i = 1; i <= 6; i++) {
		if (i == 2)  /* a snapshot taken for a cycle that never became a point */
			cycle(st, d0, 50, old0);
		cycle(st, d0, (uint64_t)i, s0[i]);
		if (i == 5) {  /* d1 did not change: point 5 reuses point 4's snapshot */
			memcpy(s1[5], s1[4], sizeof(s1[5]));
		} else {
			cycle(st, d1, 100 + (uint64_t)i, s1[i]);
		}
		siterec_rp_disk d[] = { { d0, s0[i], NULL, UNKNOWN }, { d1, s1[i], NULL, UNKNOWN } };
		assert_int_equal(add(cat, (uint64_t)i, i % 2 ? SITEREC_RP_CRASH : SITEREC_RP_APP,
		                     1000 * i, 2, d), 0);
	}
	/* snapshots for the next cycle, not added yet: newer than every point's */
	cycle(st, d0, 60, new0);
	cycle(st, d1, 160, new1);

	/* keep 4.5 s before now = 10 s: points 1-4 are old; 2 is kept by id */
	const uint64_t keep[] = { 2, 999 };
	assert_int_equal(siterec_rp_prune(cat, 10000, 5500, keep, 2, &pruned), 0);
	assert_true(pruned == 3);
	const uint64_t left[] = { 2, 5, 6 };
	expect_ids(cat, 3, left);
	int docs = 0;
	assert_int_equal(siterec_store_list(st, "vmp/points/", docs_cb, &docs), 0);
	assert_int_equal(docs, 3);
	/* d0: 1, 3, 4 deleted with their points, the old leftover swept, the new one kept */
	const char *w0[] = { s0[2], s0[5], s0[6], new0 };
	expect_snaps(st, d0, 4, w0);
	/* d1: point 4's snapshot stays, point 5 references it */
	const char *w1[] = { s1[2], s1[4], s1[6], new1 };
	expect_snaps(st, d1, 4, w1);
	expect(cat, NULL, NULL, 5, 1, 0, 104);
	expect(cat, NULL, NULL, 2, 0, 0, 2);
	siterec_store *st2 = th_store_open(&g, azure, "rp-prune");
	siterec_rp_catalog *cat2 = NULL;
	assert_int_equal(siterec_rp_open(&cat2, st2, "vmp"), 0);
	expect_ids(cat2, 3, left);

	/* a crash after a prune deleted point 2's document (its snapshots are left),
	 * and point 5's snapshot of d0 already gone: the next prune copes */
	char name[64];
	snprintf(name, sizeof(name), "vmp/points/%020llu", 2ull);
	assert_int_equal(siterec_store_doc_delete(st, name, NULL), 0);
	assert_int_equal(siterec_store_snapshot_delete(st, d0, s0[5]), 0);
	/* retention 0: everything but the newest, which always stays */
	assert_int_equal(siterec_rp_prune(cat2, 10000, 0, NULL, 0, &pruned), 0);
	assert_true(pruned == 1);
	const uint64_t last[] = { 6 };
	expect_ids(cat2, 1, last);
	const char *x0[] = { s0[6], new0 }, *x1[] = { s1[6], new1 };
	expect_snaps(st, d0, 2, x0);
	expect_snaps(st, d1, 2, x1);
	/* the first handle learns of it at its next call that reads the target */
	assert_int_equal(siterec_rp_prune(cat, INT64_MAX, 0, NULL, 0, NULL), 0);
	expect_ids(cat, 1, last);
	expect(cat, NULL, NULL, 6, 0, 0, 6);
	expect(cat, NULL, NULL, 6, 1, 0, 106);
	/* not old yet: nothing happens */
	assert_int_equal(siterec_rp_prune(cat, 6000, 0, NULL, 0, &pruned), 0);
	assert_true(pruned == 0);
	th_assert_err(siterec_rp_prune(cat, 6000, 0, NULL, 1, &pruned), SITEREC_EINVAL);
	th_assert_err(siterec_rp_prune(NULL, 6000, 0, NULL, 0, &pruned), SITEREC_EINVAL);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st2);
	siterec_store_free(st);
}

/* ---- damaged documents ---- */

#define BAD_ID "00000000000000000007"
#define BAD_NAME "vmc/points/" BAD_ID

/* A valid document of point 7 with `field` (the key up to its value) given value. */
static const char *const fields[] = { "format", "version", "vm", "id", "kind", "cut_time_ms",
                                      "disks" };

static char *doc_with(const char *snap, const char *field, const char *value)
{
	const char *vals[] = { "\"siterec-rp\"", "1", "\"vmc\"", "\"7\"", "\"crash\"", "\"7000\"",
	                       NULL };
	char disks[512];
	snprintf(disks, sizeof(disks), "[{\"disk\":\"vmc/d0\",\"snapshot\":\"%s\",\"changed\":\"0:200\"}]",
	         snap);
	size_t cap = 4096 + (value ? strlen(value) : 0);
	char *doc = malloc(cap);
	assert_non_null(doc);
	size_t n = (size_t)snprintf(doc, cap, "{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		const char *v = vals[i] ? vals[i] : disks;
		if (field && strcmp(field, fields[i]) == 0)
			v = value;
		if (v)
			n += (size_t)snprintf(doc + n, cap - n, "%s\"%s\":%s", n > 1 ? "," : "", fields[i], v);
	}
	snprintf(doc + n, cap - n, "}");
	return doc;
}

/* "[{K:V,...}]" of the n keys k with values v, field's value replaced (NULL: left out). */
static void array_of_one(char *d, size_t cap, const char *const *k, const char *const *v, int n,
                         const char *field, const char *value)
{
	size_t len = (size_t)snprintf(d, cap, "[{");
	for (int i = 0; i < n; i++) {
		const char *x = strcmp(k[i], field) == 0 ? value : v[i];
		if (x)
			len += (size_t)snprintf(d + len, cap - len, "%s\"%s\":%s", len > 2 ? "," : "", k[i], x);
	}
	snprintf(d + len, cap - len, "}]");
}

/* The disk list of the valid document with one disk's field replaced. */
static char *disk_with(const char *snap, const char *disk, const char *field, const char *value)
{
	char d[4096];
	const char *k[] = { "disk", "snapshot", "changed" };
	char sq[128];
	snprintf(sq, sizeof(sq), "\"%s\"", snap);
	const char *v[] = { disk, sq, "\"0:200\"" };
	array_of_one(d, sizeof(d), k, v, 3, field, value);
	return doc_with(snap, "disks", d);
}

/* The valid document as version `version` with member "logs" (NULL: none). */
static char *doc_logs(const char *snap, const char *version, const char *logs)
{
	char *d = doc_with(snap, "version", version);
	size_t n = strlen(d), cap = n + (logs ? strlen(logs) : 0) + 16;
	d = realloc(d, cap);
	assert_non_null(d);
	if (logs)
		snprintf(d + n - 1, cap - (n - 1), ",\"logs\":%s}", logs);
	return d;
}

#define LOG_OK "{\"disk_index\":0,\"seq\":\"5\",\"object\":\"vmc/logs/d0/x\",\"length\":\"100\"}"

/* A version-2 document of one log whose field is replaced (sealed_ms: absent
 * unless given, as documents written before it). */
static char *log_with(const char *snap, const char *field, const char *value)
{
	char d[4096];
	const char *k[] = { "disk_index", "seq", "object", "length", "sealed_ms" };
	const char *v[] = { "0", "\"5\"", "\"vmc/logs/d0/x\"", "\"100\"", NULL };
	array_of_one(d, sizeof(d), k, v, 5, field, value);
	return doc_logs(snap, "2", d);
}

/* Put doc (len bytes) under name; opening the catalogue fails with want naming it,
 * and so does a refresh of an open catalogue, whose points stay as they were. */
static void expect_bad(siterec_store *st, siterec_rp_catalog *cat, const char *name,
                       const void *doc, size_t len, int want)
{
	assert_int_equal(siterec_store_doc_put(st, name, doc, len, NULL, NULL, 0), 0);
	siterec_rp_catalog *c = (siterec_rp_catalog *)1;
	int rc = siterec_rp_open(&c, st, "vmc");
	if (rc != want)
		fprintf(stderr, "document %.*s: open returned %d (%s)\n", (int)(len > 300 ? 300 : len),
		        (const char *)doc, rc, siterec_error_last()->message);
	th_assert_err(rc, want);
	assert_null(c);
	assert_non_null(strstr(siterec_error_last()->message, name));
	th_assert_err(siterec_rp_refresh(cat), want);
	assert_int_equal(count(cat), 1);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_get(cat, 0, &p), 0);
	assert_true(p.id == 5);
	assert_int_equal(siterec_store_doc_delete(st, name, NULL), 0);
}

static void expect_bad_str(siterec_store *st, siterec_rp_catalog *cat, char *doc, int want)
{
	expect_bad(st, cat, BAD_NAME, doc, strlen(doc), want);
	free(doc);
}

static void run_corrupt(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-corrupt");
	char snap[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, "vmc/d0", 64 * KiB), 0);
	cycle(st, "vmc/d0", 1, snap);
	siterec_rp_catalog *cat = NULL, *c = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vmc"), 0);
	siterec_rp_disk d[] = { { "vmc/d0", snap, NULL, UNKNOWN } };
	assert_int_equal(add(cat, 5, SITEREC_RP_CRASH, 5000, 1, d), 0);

	/* the template is valid: point 7 reads back */
	char *doc = doc_with(snap, NULL, NULL);
	assert_int_equal(siterec_store_doc_put(st, BAD_NAME, doc, strlen(doc), NULL, NULL, 0), 0);
	assert_int_equal(siterec_rp_open(&c, st, "vmc"), 0);
	assert_int_equal(count(c), 2);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_find(c, 7, &p), 0);
	assert_true(p.cut_time_ms == 7000 && p.n_disks == 1 && p.disks[0].n_changed == 1);
	assert_true(p.disks[0].changed[0].offset == 0 && p.disks[0].changed[0].length == 0x200);
	siterec_rp_free(c);
	assert_int_equal(siterec_store_doc_delete(st, BAD_NAME, NULL), 0);

	/* every truncation of it */
	size_t len = strlen(doc);
	for (size_t n = 0; n < len; n += azure ? 3 : 1)
		expect_bad(st, cat, BAD_NAME, doc, n, SITEREC_ECORRUPT);
	free(doc);

	/* not JSON, or not an object */
	const char *junk[] = { "garbage", "{", "}", "null", "[]", "42", "\"x\"", "{\"format\":",
	                       "{\"a\":1}", "\xff\xfe\x00\x01" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++)
		expect_bad(st, cat, BAD_NAME, junk[i], strlen(junk[i]), SITEREC_ECORRUPT);
	/* a NUL inside */
	doc = doc_with(snap, NULL, NULL);
	doc[12] = 0;
	expect_bad(st, cat, BAD_NAME, doc, len, SITEREC_ECORRUPT);
	free(doc);

	/* each field missing, of a wrong type, or out of range */
	const struct { const char *field, *value; int want; } cases[] = {
		{ "format", NULL, SITEREC_ECORRUPT },       { "format", "\"siterec-upload\"", SITEREC_ECORRUPT },
		{ "format", "1", SITEREC_ECORRUPT },         { "version", NULL, SITEREC_ECORRUPT },
		{ "version", "\"1\"", SITEREC_ECORRUPT },    { "version", "0", SITEREC_ECORRUPT },
		{ "version", "-1", SITEREC_ECORRUPT },       { "version", "1.5", SITEREC_ECORRUPT },
		{ "version", "1e400", SITEREC_ECORRUPT },    { "version", "true", SITEREC_ECORRUPT },
		{ "version", "2", SITEREC_ECORRUPT },        /* a log point's version without logs */
		{ "version", "3", SITEREC_EVERSION },        { "version", "99", SITEREC_EVERSION },
		{ "vm", "\"vmd\"", SITEREC_ECORRUPT },       { "vm", "[]", SITEREC_ECORRUPT },
		{ "id", "7", SITEREC_ECORRUPT },             { "id", "\"8\"", SITEREC_ECORRUPT },
		{ "id", "\"07\"", SITEREC_ECORRUPT },        { "id", "\"-7\"", SITEREC_ECORRUPT },
		{ "id", "\"18446744073709551623\"", SITEREC_ECORRUPT },
		{ "id", "\"99999999999999999999999999999999999999\"", SITEREC_ECORRUPT },
		{ "kind", "\"weird\"", SITEREC_ECORRUPT },  { "kind", "1", SITEREC_ECORRUPT },
		{ "kind", NULL, SITEREC_ECORRUPT },
		{ "cut_time_ms", "7000", SITEREC_ECORRUPT }, { "cut_time_ms", "\"-1\"", SITEREC_ECORRUPT },
		{ "cut_time_ms", "\"9223372036854775808\"", SITEREC_ECORRUPT },
		{ "cut_time_ms", "\"1e3\"", SITEREC_ECORRUPT },
		{ "disks", NULL, SITEREC_ECORRUPT },         { "disks", "{}", SITEREC_ECORRUPT },
		{ "disks", "[]", SITEREC_ECORRUPT },         { "disks", "[1]", SITEREC_ECORRUPT },
		{ "disks", "[null]", SITEREC_ECORRUPT },     { "disks", "\"vmc/d0\"", SITEREC_ECORRUPT },
		{ "disks", "[[]]", SITEREC_ECORRUPT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		expect_bad_str(st, cat, doc_with(snap, cases[i].field, cases[i].value), cases[i].want);

	/* a disk's fields */
	const struct { const char *field, *value; } dcases[] = {
		{ "disk", NULL }, { "disk", "5" }, { "disk", "\"\"" }, { "disk", "\"../x\"" },
		{ "disk", "\"/abs\"" }, { "disk", "\"a//b\"" }, { "disk", "\"sp ace\"" },
		{ "disk", "\"quo\\\"te\"" },
		{ "snapshot", NULL }, { "snapshot", "\"\"" }, { "snapshot", "\"a/b\"" },
		{ "snapshot", "\".x\"" }, { "snapshot", "7" },
		{ "snapshot", "\"0123456789012345678901234567890123456789012345678901234567890123\"" },
		{ "changed", NULL }, { "changed", "5" }, { "changed", "null" }, { "changed", "[\"0\",\"1\"]" },
		{ "changed", "\"ALL\"" }, { "changed", "\"0:0\"" }, { "changed", "\"0:1,\"" },
		{ "changed", "\",0:1\"" }, { "changed", "\"0:1;2:3\"" }, { "changed", "\"0:A\"" },
		{ "changed", "\"-1:1\"" }, { "changed", "\"0\"" }, { "changed", "\"0:\"" },
		{ "changed", "\":1\"" }, { "changed", "\"0:1:2\"" }, { "changed", "\" 0:1\"" },
		{ "changed", "\"ffffffffffffffff:1\"" }, { "changed", "\"10000000000000000:1\"" },
		{ "changed", "\"0:ffffffffffffffff,0:1\"" }, { "changed", "\"1:ffffffffffffffff\"" },
		{ "changed", "\"00000000000000000:1\"" },
	};
	for (size_t i = 0; i < sizeof(dcases) / sizeof(*dcases); i++)
		expect_bad_str(st, cat, disk_with(snap, "\"vmc/d0\"", dcases[i].field, dcases[i].value),
		               SITEREC_ECORRUPT);
	/* logs: a valid one reads back */
	doc = doc_logs(snap, "2", "[" LOG_OK "]");
	assert_int_equal(siterec_store_doc_put(st, BAD_NAME, doc, strlen(doc), NULL, NULL, 0), 0);
	free(doc);
	assert_int_equal(siterec_rp_open(&c, st, "vmc"), 0);
	assert_int_equal(siterec_rp_find(c, 7, &p), 0);
	assert_true(p.n_logs == 1 && p.logs[0].disk_index == 0 && p.logs[0].seq == 5 &&
	            p.logs[0].length == 100 && p.logs[0].reserved == 0 && p.logs[0].sealed_ms == 0);
	assert_string_equal(p.logs[0].object, "vmc/logs/d0/x");
	siterec_rp_free(c);
	assert_int_equal(siterec_store_doc_delete(st, BAD_NAME, NULL), 0);
	/* and its seal time, up to the largest */
	doc = log_with(snap, "sealed_ms", "\"9223372036854775807\"");
	assert_int_equal(siterec_store_doc_put(st, BAD_NAME, doc, strlen(doc), NULL, NULL, 0), 0);
	free(doc);
	assert_int_equal(siterec_rp_open(&c, st, "vmc"), 0);
	assert_int_equal(siterec_rp_find(c, 7, &p), 0);
	assert_true(p.n_logs == 1 && p.logs[0].sealed_ms == INT64_MAX);
	siterec_rp_free(c);
	assert_int_equal(siterec_store_doc_delete(st, BAD_NAME, NULL), 0);
	/* logs damaged, missing from a version 2 document, or in a version 1 one */
	const char *lists[] = { NULL, "[]", "{}", "[1]", "[null]", "\"x\"", "[[]]",
	                        "[" LOG_OK "," LOG_OK "]",
	                        "[" LOG_OK ",{\"disk_index\":0,\"seq\":\"4\",\"object\":\"vmc/logs/d0/y\",\"length\":\"1\"}]",
	                        "[" LOG_OK ",{\"disk_index\":0,\"seq\":\"5\",\"object\":\"vmc/logs/d0/y\",\"length\":\"1\"}]",
	                        "[" LOG_OK ",{\"disk_index\":0,\"seq\":\"6\",\"object\":\"vmc/logs/d0/x\",\"length\":\"1\"}]" };
	for (size_t i = 0; i < sizeof(lists) / sizeof(*lists); i++)
		expect_bad_str(st, cat, doc_logs(snap, "2", lists[i]), SITEREC_ECORRUPT);
	expect_bad_str(st, cat, doc_logs(snap, "1", "[" LOG_OK "]"), SITEREC_ECORRUPT);
	const struct { const char *field, *value; } lcases[] = {
		{ "disk_index", NULL }, { "disk_index", "1" }, { "disk_index", "-1" },
		{ "disk_index", "0.5" }, { "disk_index", "\"0\"" }, { "disk_index", "256" },
		{ "seq", NULL }, { "seq", "5" }, { "seq", "\"05\"" }, { "seq", "\"-5\"" }, { "seq", "\"\"" },
		{ "seq", "\"18446744073709551616\"" },
		{ "object", NULL }, { "object", "5" }, { "object", "\"vmd/logs/d0/x\"" },
		{ "object", "\"vmc/logs/\"" }, { "object", "\"vmc/logs/../x\"" },
		{ "object", "\"vmc/logs//x\"" }, { "object", "\"vmc/points/x\"" },
		{ "length", NULL }, { "length", "\"0\"" }, { "length", "100" }, { "length", "\"1e3\"" },
		{ "sealed_ms", "5" }, { "sealed_ms", "null" }, { "sealed_ms", "\"\"" },
		{ "sealed_ms", "\"-1\"" }, { "sealed_ms", "\"05\"" }, { "sealed_ms", "\"1e3\"" },
		{ "sealed_ms", "\"9223372036854775808\"" },
	};
	for (size_t i = 0; i < sizeof(lcases) / sizeof(*lcases); i++)
		expect_bad_str(st, cat, log_with(snap, lcases[i].field, lcases[i].value), SITEREC_ECORRUPT);

	/* a disk named twice; 257 disks */
	char two[1024];
	snprintf(two, sizeof(two), "[{\"disk\":\"vmc/d0\",\"snapshot\":\"%s\",\"changed\":\"all\"},"
	         "{\"disk\":\"vmc/d0\",\"snapshot\":\"%s\",\"changed\":\"all\"}]", snap, snap);
	expect_bad_str(st, cat, doc_with(snap, "disks", two), SITEREC_ECORRUPT);
	size_t cap = 257 * 200 + 16, n = 0;
	char *many = malloc(cap);
	assert_non_null(many);
	for (int i = 0; i < 257; i++)
		n += (size_t)snprintf(many + n, cap - n, "%s{\"disk\":\"vmc/d%d\",\"snapshot\":\"%s\","
		                      "\"changed\":\"all\"}", i ? "," : "[", i, snap);
	snprintf(many + n, cap - n, "]");
	expect_bad_str(st, cat, doc_with(snap, "disks", many), SITEREC_ECORRUPT);
	free(many);

	/* nesting far past any parser's stack, and a document of exactly 4 MiB */
	size_t deep = 4 * MiB;
	char *bomb = malloc(deep);
	assert_non_null(bomb);
	memset(bomb, '[', deep);
	expect_bad(st, cat, BAD_NAME, bomb, deep, SITEREC_ECORRUPT);
	for (size_t i = 0; i + 5 <= deep; i += 5)
		memcpy(bomb + i, "{\"a\":", 5);
	expect_bad(st, cat, BAD_NAME, bomb, deep, SITEREC_ECORRUPT);
	free(bomb);

	/* names under VM/points/ that are not a point's */
	const char *names[] = { "vmc/points/abc", "vmc/points/0000000000000000007",
	                        "vmc/points/000000000000000000007", "vmc/points/99999999999999999999",
	                        "vmc/points/0000000000000000000x", "vmc/points/x/00000000000000000007" };
	doc = doc_with(snap, NULL, NULL);
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		expect_bad(st, cat, names[i], doc, strlen(doc), SITEREC_ECORRUPT);
	free(doc);

	/* all gone again: the catalogue opens */
	assert_int_equal(siterec_rp_open(&c, st, "vmc"), 0);
	assert_int_equal(count(c), 1);
	siterec_rp_free(c);
	siterec_rp_free(cat);
	siterec_store_free(st);
}

/* ---- a point of 2,000,000 changed extents ---- */

/* Extents of merged cover every byte of the n of orig; merged is ascending and
 * not overlapping. Returns the bytes of merged. */
static uint64_t expect_cover(const siterec_extent *orig, uint64_t n, const siterec_extent *merged,
                             uint64_t m)
{
	uint64_t j = 0, bytes = 0;
	for (uint64_t i = 0; i < m; i++) {
		assert_true(merged[i].length > 0);
		assert_true(i == 0 || merged[i].offset > merged[i - 1].offset + merged[i - 1].length - 1);
		bytes += merged[i].length;
	}
	for (uint64_t i = 0; i < n; i++) {
		while (j < m && merged[j].offset + merged[j].length <= orig[i].offset)
			j++;
		assert_true(j < m);
		assert_true(merged[j].offset <= orig[i].offset);
		assert_true(merged[j].offset + merged[j].length >= orig[i].offset + orig[i].length);
	}
	return bytes;
}

/* n extents: sector-aligned lengths of 512 B to 8 KiB, gaps of 512 B to 64 KiB
 * (some 0: adjacent extents), from start. */
static siterec_extent *make_extents(uint64_t n, uint64_t start, uint64_t seed)
{
	siterec_extent *e = malloc(n * sizeof(*e));
	assert_non_null(e);
	uint64_t s = seed, end = start;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = th_rand(&s);
		uint64_t gap = (r % 5 == 0) ? 0 : 512 * (1 + (r >> 8) % 128);
		e[i].offset = end + (i ? gap : 0);
		e[i].length = 512 * (1 + (r >> 24) % 16);
		end = e[i].offset + e[i].length;
	}
	return e;
}

static void run_many(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-many");
	char snap[4][SITEREC_STORE_ID_MAX];
	const char *names[4] = { "vmm/d0", "vmm/d1", "vmm/d2", "vmm/d3" };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(siterec_store_disk_create(st, names[i], 64 * KiB), 0);
		cycle(st, names[i], (uint64_t)i, snap[i]);
	}
	siterec_rp_catalog *cat = NULL, *cat2 = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vmm"), 0);
	/* one disk of 2,000,000 extents next to one of 1,000 (these fit as they are) */
	const uint64_t big = 2000000, small = 1000;
	siterec_extent *e0 = make_extents(big, 1 << 20, 1), *e1 = make_extents(small, 0, 2);
	siterec_rp_disk d[] = { { names[0], snap[0], e0, big }, { names[1], snap[1], e1, small } };
	assert_int_equal(add(cat, 1, SITEREC_RP_CRASH, 1000, 2, d), 0);
	/* four disks of 600,000 each: the document as a whole must fit */
	const uint64_t quarter = 600000;
	siterec_extent *eq[4];
	siterec_rp_disk dq[4];
	for (int i = 0; i < 4; i++) {
		eq[i] = make_extents(quarter, (uint64_t)i << 40, 10 + (uint64_t)i);
		dq[i] = (siterec_rp_disk){ names[i], snap[i], eq[i], quarter };
	}
	assert_int_equal(add(cat, 2, SITEREC_RP_APP, 2000, 4, dq), 0);

	siterec_store *st2 = th_store_open(&g, azure, "rp-many");
	assert_int_equal(siterec_rp_open(&cat2, st2, "vmm"), 0);
	assert_int_equal(count(cat2), 2);
	same_at(cat, cat2, 0);
	same_at(cat, cat2, 1);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_find(cat2, 1, &p), 0);
	uint64_t orig_bytes = 0;
	for (uint64_t i = 0; i < big; i++)
		orig_bytes += e0[i].length;
	assert_true(p.disks[0].n_changed <= 1000000 && p.disks[0].n_changed > 1000);
	uint64_t bytes = expect_cover(e0, big, p.disks[0].changed, p.disks[0].n_changed);
	fprintf(stderr, "%s: 2000000 extents (%llu bytes) stored as %llu (%llu bytes)\n",
	        azure ? "azurite" : "file", (unsigned long long)orig_bytes,
	        (unsigned long long)p.disks[0].n_changed, (unsigned long long)bytes);
	assert_true(bytes >= orig_bytes);
	assert_int_equal(p.disks[1].n_changed, small);
	assert_memory_equal(p.disks[1].changed, e1, small * sizeof(*e1));
	assert_int_equal(siterec_rp_find(cat2, 2, &p), 0);
	for (int i = 0; i < 4; i++) {
		assert_true(p.disks[i].n_changed < quarter && p.disks[i].n_changed > 1000);
		expect_cover(eq[i], quarter, p.disks[i].changed, p.disks[i].n_changed);
	}
	/* both documents within the store's limit */
	for (uint64_t id = 1; id <= 2; id++) {
		char name[64];
		void *data = NULL;
		size_t len = 0;
		snprintf(name, sizeof(name), "vmm/points/%020llu", (unsigned long long)id);
		assert_int_equal(siterec_store_doc_get(st, name, &data, &len, NULL, 0), 0);
		fprintf(stderr, "%s: %zu bytes\n", name, len);
		assert_true(len <= 4 * MiB && len > 3 * MiB);
		siterec_free(data);
	}
	for (int i = 0; i < 4; i++)
		free(eq[i]);
	free(e0);
	free(e1);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st2);
	siterec_store_free(st);
}

/* ---- log points: content, restore, versions, validation ---- */

/* One write of a delta log: seed 0 writes zeros (a zero record). */
typedef struct log_op {
	uint64_t off, len, seed;
} log_op;

/* Write a sealed delta log of the n ops (first sequence first_seq, a disk of
 * disk_size bytes), apply them to want (may be NULL), and upload its bytes as
 * the store disk object `object`, its length rounded up to 512. flip: damage
 * one byte in the middle first. Returns the log's length. */
static uint64_t make_log(siterec_store *st, const char *object, uint64_t disk_size,
                         uint64_t first_seq, const log_op *ops, size_t n, uint8_t *want, int flip)
{
	char *path = th_path(g.dir, "rp-log.tmp");
	siterec_dlog_options o;
	siterec_dlog *log = NULL;
	assert_int_equal(siterec_dlog_options_init(&o, SITEREC_DLOG_OPTIONS_VERSION), 0);
	o.disk_size = disk_size;
	o.first_seq = first_seq;
	assert_int_equal(siterec_dlog_create(&log, path, &o), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t *data = malloc(ops[i].len);
		assert_non_null(data);
		if (ops[i].seed) {
			th_fill(data, ops[i].len, ops[i].seed);
			assert_int_equal(siterec_dlog_append(log, ops[i].off, data, ops[i].len, NULL), 0);
		} else {
			memset(data, 0, ops[i].len);
			assert_int_equal(siterec_dlog_append_zero(log, ops[i].off, ops[i].len, NULL), 0);
		}
		if (want)
			memcpy(want + ops[i].off, data, ops[i].len);
		free(data);
	}
	assert_int_equal(siterec_dlog_seal(log), 0);
	siterec_dlog_free(log);
	if (flip) {
		th_flip_bit(path, (uint64_t)th_file_size(path) / 2, 3);
		th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
	}
	size_t len = 0;
	uint8_t *bytes = th_read_file(path, &len);
	size_t padded = (len + 511) / 512 * 512;
	uint8_t *buf = calloc(1, padded);
	assert_non_null(buf);
	memcpy(buf, bytes, len);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_disk_create(st, object, len), 0);
	assert_int_equal(siterec_store_writer_open(&w, st, object, NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, padded, 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	free(buf);
	free(bytes);
	unlink(path);
	free(path);
	return len;
}

static int add_logs(siterec_rp_catalog *cat, uint64_t id, int64_t cut, uint32_t n,
                    const siterec_rp_disk *disks, uint64_t n_logs, const siterec_rp_log *logs)
{
	siterec_rp_point p = { SITEREC_RP_POINT_VERSION, SITEREC_RP_CRASH, id, cut, n, 0, disks,
	                       n_logs, logs };
	return siterec_rp_add(cat, &p);
}

/* A restore destination in memory; abort_at: fail that write (1 = the first) with 7. */
typedef struct mem_dst {
	uint8_t *buf;
	uint64_t size, writes, abort_at;
	size_t max_piece;
} mem_dst;

static int mem_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	mem_dst *m = payload;
	assert_true(off <= m->size && len <= m->size - off);
	if (++m->writes == m->abort_at)
		return 7;
	memcpy(m->buf + off, buf, len);
	m->max_piece = len > m->max_piece ? len : m->max_piece;
	return 0;
}

/* Progress seen: done never goes back nor past total; abort_at: fail that call with 9. */
typedef struct prog {
	uint64_t done, total, calls, abort_at;
} prog;

static int prog_cb(uint64_t done, uint64_t total, void *payload)
{
	prog *p = payload;
	assert_true(done >= p->done && done <= total);
	assert_true(p->calls == 0 || total == p->total);
	p->done = done;
	p->total = total;
	return ++p->calls == p->abort_at ? 9 : 0;
}

/* Restore disk i of point id into a buffer of size bytes filled with fill first. */
static int restore_mem(siterec_rp_catalog *cat, uint64_t id, uint32_t i, uint32_t flags,
                       uint8_t *buf, uint64_t size, int fill, mem_dst *m, prog *pr)
{
	memset(buf, fill, size);
	*m = (mem_dst){ buf, size, 0, m->abort_at, 0 };
	*pr = (prog){ 0, 0, 0, pr->abort_at };
	return siterec_rp_restore(cat, id, i, flags, mem_write, m, prog_cb, pr);
}

/* Disk i of point id reads as want (size bytes): whole, in pieces, and restored
 * with and without SITEREC_RP_RESTORE_ZEROS; without, only the snapshot's
 * ranges (snap_ranges, of the snapshot disk@snap) and the logs are written. */
static void expect_content(siterec_rp_catalog *cat, siterec_store *st, uint64_t id, uint32_t i,
                           const uint8_t *want, uint64_t size, const char *disk,
                           const char *snap, int has_logs)
{
	uint8_t *got = malloc(size);
	assert_non_null(got);
	assert_int_equal(siterec_rp_read(cat, id, i, got, size, 0), 0);
	assert_memory_equal(got, want, size);
	const uint64_t at[] = { 0, 60 * KiB, 92 * KiB, 124 * KiB, size - 4 * KiB };
	for (size_t k = 0; k < sizeof(at) / sizeof(*at); k++) {
		assert_int_equal(siterec_rp_read(cat, id, i, got, 4 * KiB, at[k]), 0);
		assert_memory_equal(got, want + at[k], 4 * KiB);
	}
	uint8_t b[512];
	th_assert_err(siterec_rp_read(cat, id, i, b, sizeof(b), size), SITEREC_ERANGE);
	mem_dst m = { 0 };
	prog pr = { 0 };
	/* every byte written with ZEROS */
	assert_int_equal(restore_mem(cat, id, i, SITEREC_RP_RESTORE_ZEROS, got, size, 0xee, &m, &pr), 0);
	assert_memory_equal(got, want, size);
	assert_true(pr.done == pr.total && pr.calls >= 1 && m.max_piece <= 4 * MiB);
	/* without: zeros stay where the snapshot has none and no log writes */
	assert_int_equal(restore_mem(cat, id, i, 0, got, size, 0, &m, &pr), 0);
	assert_memory_equal(got, want, size);
	assert_true(pr.done == pr.total);
	if (!has_logs) {  /* outside the snapshot's ranges nothing was written */
		th_extents r = { 0 };
		uint64_t end = 0;
		assert_int_equal(siterec_store_ranges(st, disk, snap, 0, 0, th_extent_cb, &r), 0);
		assert_int_equal(restore_mem(cat, id, i, 0, got, size, 0xee, &m, &pr), 0);
		for (size_t k = 0; k <= r.n && k < TH_EXTENTS_MAX; k++) {
			uint64_t off = k < r.n ? r.off[k] : size;
			for (uint64_t x = end; x < off; x++)
				assert_int_equal(got[x], 0xee);
			if (k < r.n)
				end = r.off[k] + r.len[k];
		}
		assert_true(pr.total < size);
	}
	free(got);
}

/* siterec_rp_point as a caller built against version 1 has it */
typedef struct point_v1 {
	unsigned int version;
	uint32_t kind;
	uint64_t id;
	int64_t cut_time_ms;
	uint32_t n_disks, reserved;
	const siterec_rp_disk *disks;
} point_v1;
_Static_assert(sizeof(point_v1) == offsetof(siterec_rp_point, n_logs), "version 1 prefix");

#define L5 "vml/logs/d0/00000000000000000005-abcd1234"
#define L7 "vml/logs/d0/00000000000000000007-abcd1234"
#define L9 "vml/logs/d0/00000000000000000009-abcd1234"

static void run_logs(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-logs");
	const char *d0 = "vml/d0", *d1 = "vml/d1";
	const uint64_t z0 = 256 * KiB, z1 = 128 * KiB;
	char s0[SITEREC_STORE_ID_MAX], s1[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, d0, z0), 0);
	assert_int_equal(siterec_store_disk_create(st, d1, z1), 0);
	put(st, d0, 64 * KiB, 1);
	assert_int_equal(siterec_store_snapshot(st, d0, s0, sizeof(s0)), 0);
	cycle(st, d1, 101, s1);
	put(st, d0, 0, 2);  /* the live disk moves on */
	uint8_t *snap0 = calloc(1, z0), *want0 = calloc(1, z0), *want1 = calloc(1, z1);
	assert_true(snap0 && want0 && want1);
	th_fill(snap0 + 64 * KiB, 64 * KiB, 1);
	memcpy(want0, snap0, z0);
	th_fill(want1, 64 * KiB, 101);
	/* log 5: over the snapshot's data and past it, then zeros over part of it;
	 * log 7: over log 5 (the later wins) and the disk's last sectors */
	const log_op a[] = { { 96 * KiB, 64 * KiB, 11 }, { 64 * KiB, 4 * KiB, 0 } };
	const log_op b[] = { { 120 * KiB, 16 * KiB, 12 }, { z0 - 6 * KiB, 6 * KiB, 13 } };
	uint64_t la = make_log(st, L5, z0, 5, a, 2, want0, 0);
	uint64_t lb = make_log(st, L7, z0, 7, b, 2, want0, 0);

	siterec_rp_catalog *cat = NULL, *cat2 = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vml"), 0);
	siterec_rp_disk dd[] = { { d0, s0, NULL, UNKNOWN }, { d1, s1, NULL, UNKNOWN } };
	assert_int_equal(add(cat, 1, SITEREC_RP_CRASH, 1000, 2, dd), 0);
	const siterec_rp_log logs[] = { { 0, 0, 5, L5, la, 0 }, { 0, 0, 7, L7, lb, 0 } };
	assert_int_equal(add_logs(cat, 2, 2000, 2, dd, 2, logs), 0);

	/* the snapshot point reads its snapshots, the log point snapshots + logs */
	expect_content(cat, st, 1, 0, snap0, z0, d0, s0, 0);
	expect_content(cat, st, 1, 1, want1, z1, d1, s1, 0);
	expect_content(cat, st, 2, 0, want0, z0, d0, s0, 1);
	expect_content(cat, st, 2, 1, want1, z1, d1, s1, 0);  /* a disk without logs */
	expect_content(cat, st, 2, 0, want0, z0, d0, s0, 1);  /* again after another disk */

	/* the documents: version 1 for the snapshot point, 2 with the logs */
	void *doc = NULL;
	size_t len = 0;
	char entry[256];
	assert_int_equal(siterec_store_doc_get(st, "vml/points/00000000000000000001", &doc, &len,
	                                       NULL, 0), 0);
	assert_non_null(memmem(doc, len, "\"version\":1,", 12));
	assert_null(memmem(doc, len, "logs", 4));
	siterec_free(doc);
	assert_int_equal(siterec_store_doc_get(st, "vml/points/00000000000000000002", &doc, &len,
	                                       NULL, 0), 0);
	assert_non_null(memmem(doc, len, "\"version\":2,", 12));
	snprintf(entry, sizeof(entry), "],\"logs\":[{\"disk_index\":0,\"seq\":\"5\",\"object\":\"" L5
	         "\",\"length\":\"%llu\",\"sealed_ms\":\"0\"},{\"disk_index\":0,\"seq\":\"7\",",
	         (unsigned long long)la);
	assert_non_null(memmem(doc, len, entry, strlen(entry)));
	siterec_free(doc);

	/* a version-1 struct (only its size allocated): snapshot points only */
	point_v1 *v1 = malloc(sizeof(*v1));
	assert_non_null(v1);
	v1->version = 1;
	assert_int_equal(siterec_rp_get(cat, 0, (siterec_rp_point *)v1), 0);
	assert_true(v1->id == 1 && v1->n_disks == 2);
	th_assert_err(siterec_rp_get(cat, 1, (siterec_rp_point *)v1), SITEREC_EVERSION);
	assert_non_null(strstr(siterec_error_last()->message, "version 2"));
	th_assert_err(siterec_rp_find(cat, 2, (siterec_rp_point *)v1), SITEREC_EVERSION);
	/* a version-2 one gets the logs; a second handle reads the same */
	siterec_rp_point p = SITEREC_RP_POINT_INIT, q = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_find(cat, 1, &p), 0);
	assert_true(p.n_logs == 0 && p.logs == NULL);
	siterec_store *st2 = th_store_open(&g, azure, "rp-logs");
	assert_int_equal(siterec_rp_open(&cat2, st2, "vml"), 0);
	assert_int_equal(siterec_rp_find(cat, 2, &p), 0);
	assert_int_equal(siterec_rp_find(cat2, 2, &q), 0);
	same_point(&p, &q);
	assert_true(p.n_logs == 2 && q.n_logs == 2);
	for (int k = 0; k < 2; k++) {
		assert_true(q.logs[k].disk_index == 0 && q.logs[k].reserved == 0);
		assert_true(q.logs[k].seq == logs[k].seq && q.logs[k].length == logs[k].length);
		assert_string_equal(q.logs[k].object, logs[k].object);
		assert_ptr_not_equal(q.logs[k].object, logs[k].object);  /* copies */
	}
	expect_content(cat2, st2, 2, 0, want0, z0, d0, s0, 1);

	/* callbacks that abort */
	uint8_t *got = malloc(z0);
	assert_non_null(got);
	mem_dst m = { .abort_at = 1 };
	prog pr = { 0 };
	th_assert_err(restore_mem(cat, 2, 0, 0, got, z0, 0, &m, &pr), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 7);
	m.abort_at = 0;
	assert_int_equal(restore_mem(cat, 2, 0, 0, got, z0, 0, &m, &pr), 0);
	m.abort_at = m.writes;  /* the last write: one of log 7's */
	th_assert_err(restore_mem(cat, 2, 0, 0, got, z0, 0, &m, &pr), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 7);
	m.abort_at = 0;
	pr.abort_at = 1;
	th_assert_err(restore_mem(cat, 2, 0, 0, got, z0, 0, &m, &pr), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 9);
	pr.abort_at = 0;
	th_assert_err(siterec_rp_restore(cat, 2, 2, 0, mem_write, &m, NULL, NULL), SITEREC_ERANGE);
	th_assert_err(siterec_rp_restore(cat, 3, 0, 0, mem_write, &m, NULL, NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_rp_restore(cat, 2, 0, 0, NULL, &m, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_restore(cat, 2, 0, 2, mem_write, &m, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_restore(NULL, 2, 0, 0, mem_write, &m, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_read(cat, 2, 0, NULL, 512, 0), SITEREC_EINVAL);

	/* a damaged log: verified before any of its records is written */
	const log_op c[] = { { 0, 32 * KiB, 21 } };
	uint64_t lc = make_log(st, L9, z0, 9, c, 1, NULL, 1);
	const siterec_rp_log bad[] = { { 0, 0, 9, L9, lc, 0 } };
	assert_int_equal(add_logs(cat, 3, 3000, 2, dd, 1, bad), 0);
	th_assert_err(restore_mem(cat, 3, 0, SITEREC_RP_RESTORE_ZEROS, got, z0, 0xee, &m, &pr),
	              SITEREC_ECORRUPT);
	assert_non_null(strstr(siterec_error_last()->message, L9));
	assert_memory_equal(got, snap0, z0);  /* the snapshot, nothing of the log */
	th_assert_err(siterec_rp_read(cat, 3, 0, got, 512, 0), SITEREC_ECORRUPT);
	expect_content(cat, st, 3, 1, want1, z1, d1, s1, 0);
	expect_content(cat, st, 2, 0, want0, z0, d0, s0, 1);

	/* validation of logs at add (the objects of point 2 exist) */
	const siterec_rp_log nosuch[] = { { 0, 0, 11, "vml/logs/d0/00000000000000000011-abcd1234", 100, 0 } };
	th_assert_err(add_logs(cat, 4, 4000, 2, dd, 1, nosuch), SITEREC_ENOTFOUND);
	const siterec_rp_log too_long[] = { { 0, 0, 5, L5, (la + 511) / 512 * 512 + 1, 0 } };
	th_assert_err(add_logs(cat, 4, 4000, 2, dd, 1, too_long), SITEREC_ENOTFOUND);
	const siterec_rp_log bad_logs[][2] = {
		{ { 0, 0, 7, L7, lb, 0 }, { 0, 0, 5, L5, la, 0 } },      /* seq going back */
		{ { 0, 0, 5, L5, la, 0 }, { 0, 0, 5, L7, lb, 0 } },      /* seq equal */
		{ { 1, 0, 5, L5, la, 0 }, { 0, 0, 7, L7, lb, 0 } },      /* disk going back */
		{ { 0, 0, 5, L5, la, 0 }, { 1, 0, 6, L5, la, 0 } },      /* an object twice */
		{ { 0, 0, 5, "vmx/logs/d0/00000000000000000005-abcd1234", 10, 0 } },
		{ { 0, 0, 5, "vml/logsd0/00000000000000000005-abcd1234", 10, 0 } },
		{ { 0, 0, 5, "vml/logs/", 10, 0 } },
		{ { 0, 0, 5, "vml/logs/../d0", 10, 0 } },
		{ { 0, 0, 5, "vml/points/00000000000000000001", 10, 0 } },
		{ { 0, 0, 5, "vml/d0", 10, 0 } },
		{ { 0, 0, 5, NULL, 10, 0 } },
		{ { 2, 0, 5, L5, la, 0 } },                            /* no disk 2 */
		{ { 0, 1, 5, L5, la, 0 } },                            /* reserved */
		{ { 0, 0, 5, L5, 0, 0 } },                             /* empty */
	};
	for (size_t k = 0; k < sizeof(bad_logs) / sizeof(*bad_logs); k++)
		th_assert_err(add_logs(cat, 4, 4000, 2, dd, bad_logs[k][1].object ? 2 : 1, bad_logs[k]),
		              SITEREC_EINVAL);
	th_assert_err(add_logs(cat, 4, 4000, 2, dd, 1, NULL), SITEREC_EINVAL);
	th_assert_err(add_logs(cat, 4, 4000, 2, dd, 100001, logs), SITEREC_EINVAL);
	assert_int_equal(count(cat), 3);
	/* a version-1 struct's bytes past its end are never read: a snapshot point */
	*v1 = (point_v1){ 1, SITEREC_RP_APP, 4, 4000, 2, 0, dd };
	assert_int_equal(siterec_rp_add(cat, (const siterec_rp_point *)v1), 0);
	assert_int_equal(siterec_rp_find(cat, 4, (siterec_rp_point *)v1), 0);
	assert_true(v1->kind == SITEREC_RP_APP);
	expect_content(cat, st, 4, 0, snap0, z0, d0, s0, 0);
	free(v1);
	free(got);
	free(snap0);
	free(want0);
	free(want1);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st2);
	siterec_store_free(st);
}

/* ---- any point in time (siterec_rp_restore_at) ---- */

/* Restore disk i at time t, with and without SITEREC_RP_RESTORE_ZEROS (into
 * zeros then), as want (size bytes); *at_ms is want_at. */
static void expect_at(siterec_rp_catalog *cat, int64_t t, uint32_t i, const uint8_t *want,
                      uint64_t size, int64_t want_at)
{
	uint8_t *got = malloc(size);
	assert_non_null(got);
	for (int zeros = 0; zeros < 2; zeros++) {
		mem_dst m = { got, size, 0, 0, 0 };
		int64_t at = -7;
		memset(got, zeros ? 0xee : 0, size);
		assert_int_equal(siterec_rp_restore_at(cat, t, i, zeros ? SITEREC_RP_RESTORE_ZEROS : 0,
		                                       mem_write, &m, &at), 0);
		assert_memory_equal(got, want, size);
		if (at != want_at)
			fprintf(stderr, "restore at %lld of disk %u: at %lld, want %lld\n", (long long)t, i,
			        (long long)at, (long long)want_at);
		assert_true(at == want_at);
		assert_true(m.max_piece <= 4 * MiB);
	}
	free(got);
}

static uint8_t *copy_of(const uint8_t *b, uint64_t size)
{
	uint8_t *c = malloc(size);
	assert_non_null(c);
	memcpy(c, b, size);
	return c;
}

#define TL(n) "vmt/logs/d/000000000000000000" n "-aa"

static void run_at(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-at");
	const char *d0 = "vmt/d0", *d1 = "vmt/d1";
	const uint64_t z0 = 256 * KiB, z1 = 128 * KiB;
	char sp[SITEREC_STORE_ID_MAX], sq[SITEREC_STORE_ID_MAX], s1[SITEREC_STORE_ID_MAX],
	     sr[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, d0, z0), 0);
	assert_int_equal(siterec_store_disk_create(st, d1, z1), 0);
	/* P (cut 1000): d0's snapshot; Q (cut 2000): d0's next snapshot, with three
	 * logs sealed at 1100, 1200, 1300 over overlapping ranges, and d1 with a log
	 * sealed at 1150 then one of unknown seal time; R (cut 3000): a snapshot point */
	uint8_t *snp = calloc(1, z0), *snq = calloc(1, z0), *snr = calloc(1, z0), *sn1 = calloc(1, z1);
	assert_true(snp && snq && snr && sn1);
	cycle(st, d0, 1, sp);
	th_fill(snp, 64 * KiB, 1);
	put(st, d0, 64 * KiB, 2);
	assert_int_equal(siterec_store_snapshot(st, d0, sq, sizeof(sq)), 0);
	memcpy(snq, snp, z0);
	th_fill(snq + 64 * KiB, 64 * KiB, 2);
	cycle(st, d1, 101, s1);
	th_fill(sn1, 64 * KiB, 101);
	put(st, d0, 128 * KiB, 3);
	assert_int_equal(siterec_store_snapshot(st, d0, sr, sizeof(sr)), 0);
	memcpy(snr, snq, z0);
	th_fill(snr + 128 * KiB, 64 * KiB, 3);

	const log_op o1[] = { { 32 * KiB, 64 * KiB, 11 } };
	const log_op o2[] = { { 64 * KiB, 64 * KiB, 12 } };
	const log_op o3[] = { { 80 * KiB, 16 * KiB, 13 }, { 0, 4 * KiB, 0 } };
	const log_op o8[] = { { 0, 32 * KiB, 21 } };
	const log_op o9[] = { { 16 * KiB, 32 * KiB, 22 } };
	uint8_t *w1 = copy_of(snq, z0), *w2, *w3, *v8 = copy_of(sn1, z1), *v9;
	uint64_t l1 = make_log(st, TL("05"), z0, 5, o1, 1, w1, 0);
	w2 = copy_of(w1, z0);
	uint64_t l2 = make_log(st, TL("06"), z0, 6, o2, 1, w2, 0);
	w3 = copy_of(w2, z0);
	uint64_t l3 = make_log(st, TL("07"), z0, 7, o3, 2, w3, 0);
	uint64_t l8 = make_log(st, TL("08"), z1, 8, o8, 1, v8, 0);
	v9 = copy_of(v8, z1);
	uint64_t l9 = make_log(st, TL("09"), z1, 9, o9, 1, v9, 0);

	siterec_rp_catalog *cat = NULL, *cat2 = NULL;
	uint8_t b[512];
	mem_dst m = { b, sizeof(b), 0, 0, 0 };
	int64_t at = 0;
	assert_int_equal(siterec_rp_open(&cat, st, "vmt"), 0);
	th_assert_err(siterec_rp_restore_at(cat, 0, 0, 0, mem_write, &m, &at), SITEREC_ENOTFOUND);
	siterec_rp_disk dp[] = { { d0, sp, NULL, UNKNOWN } }, dr[] = { { d0, sr, NULL, UNKNOWN } };
	siterec_rp_disk dq[] = { { d0, sq, NULL, UNKNOWN }, { d1, s1, NULL, UNKNOWN } };
	siterec_rp_log lq[] = { { 0, 0, 5, TL("05"), l1, 1100 }, { 0, 0, 6, TL("06"), l2, 1200 },
	                        { 0, 0, 7, TL("07"), l3, 1300 }, { 1, 0, 8, TL("08"), l8, 1150 },
	                        { 1, 0, 9, TL("09"), l9, 0 } };
	assert_int_equal(add(cat, 1, SITEREC_RP_CRASH, 1000, 1, dp), 0);
	/* a negative seal time is refused */
	lq[1].sealed_ms = -1;
	th_assert_err(add_logs(cat, 2, 2000, 2, dq, 5, lq), SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, "sealed_ms"));
	lq[1].sealed_ms = 1200;
	assert_int_equal(add_logs(cat, 2, 2000, 2, dq, 5, lq), 0);
	assert_int_equal(add(cat, 3, SITEREC_RP_CRASH, 3000, 1, dr), 0);

	/* the seal times: in the document, the cache, and another handle's read */
	void *doc = NULL;
	size_t len = 0;
	assert_int_equal(siterec_store_doc_get(st, "vmt/points/00000000000000000002", &doc, &len,
	                                       NULL, 0), 0);
	assert_non_null(memmem(doc, len, "\"seq\":\"6\",\"object\":\"" TL("06") "\",", 50));
	assert_non_null(memmem(doc, len, ",\"sealed_ms\":\"1200\"}", 20));
	assert_non_null(memmem(doc, len, ",\"sealed_ms\":\"0\"}]}", 19));
	siterec_free(doc);
	siterec_store *st2 = th_store_open(&g, azure, "rp-at");
	assert_int_equal(siterec_rp_open(&cat2, st2, "vmt"), 0);
	for (int h = 0; h < 2; h++) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		assert_int_equal(siterec_rp_get(h ? cat2 : cat, 1, &p), 0);
		assert_true(p.id == 2 && p.n_logs == 5);
		for (int k = 0; k < 5; k++)
			assert_true(p.logs[k].sealed_ms == lq[k].sealed_ms);
		assert_int_equal(siterec_rp_find(h ? cat2 : cat, 3, &p), 0);
		assert_true(p.n_logs == 0);
	}

	for (int h = 0; h < 2; h++) {
		siterec_rp_catalog *c = h ? cat2 : cat;
		/* at P's cut: P itself */
		expect_at(c, 1000, 0, snp, z0, 1000);
		/* after it: Q's snapshot and the logs sealed by then */
		expect_at(c, 1001, 0, snq, z0, 1000);
		expect_at(c, 1099, 0, snq, z0, 1000);
		expect_at(c, 1100, 0, w1, z0, 1100);
		expect_at(c, 1150, 0, w1, z0, 1100);
		expect_at(c, 1200, 0, w2, z0, 1200);
		expect_at(c, 1300, 0, w3, z0, 1300);
		expect_at(c, 1500, 0, w3, z0, 1300);
		expect_at(c, 1999, 0, w3, z0, 1300);
		expect_at(c, 2000, 0, w3, z0, 1300);
		/* d1: the log of unknown seal time only at Q's cut */
		expect_at(c, 1001, 1, sn1, z1, 1000);
		expect_at(c, 1150, 1, v8, z1, 1150);
		expect_at(c, 1999, 1, v8, z1, 1150);
		expect_at(c, 2000, 1, v9, z1, 2000);
		/* after Q's cut: R, a snapshot point */
		expect_at(c, 2001, 0, snr, z0, 2000);
		expect_at(c, 3000, 0, snr, z0, 3000);
		/* P and R have one disk */
		th_assert_err(siterec_rp_restore_at(c, 1000, 1, 0, mem_write, &m, &at), SITEREC_ERANGE);
		th_assert_err(siterec_rp_restore_at(c, 2500, 1, 0, mem_write, &m, &at), SITEREC_ERANGE);
		/* after the newest cut, before the oldest */
		const int64_t none[] = { 3001, INT64_MAX, 999, 0, -1, INT64_MIN };
		for (size_t k = 0; k < sizeof(none) / sizeof(*none); k++) {
			at = 42;
			th_assert_err(siterec_rp_restore_at(c, none[k], 0, 0, mem_write, &m, &at),
			              SITEREC_ENOTFOUND);
			assert_true(at == 42);
		}
		assert_true(m.writes == 0);
	}
	/* the whole point is unchanged by the filter; at_ms may be NULL */
	expect_content(cat, st, 2, 0, w3, z0, d0, sq, 1);
	expect_content(cat, st, 2, 1, v9, z1, d1, s1, 1);
	uint8_t *got = malloc(z0);
	assert_non_null(got);
	mem_dst mg = { got, z0, 0, 0, 0 };
	memset(got, 0, z0);
	assert_int_equal(siterec_rp_restore_at(cat, 1200, 0, 0, mem_write, &mg, NULL), 0);
	assert_memory_equal(got, w2, z0);
	/* callbacks and arguments */
	mg = (mem_dst){ got, z0, 0, 1, 0 };
	th_assert_err(siterec_rp_restore_at(cat, 1200, 0, 0, mem_write, &mg, &at), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 7);
	th_assert_err(siterec_rp_restore_at(NULL, 1200, 0, 0, mem_write, &m, &at), SITEREC_EINVAL);
	th_assert_err(siterec_rp_restore_at(cat, 1200, 0, 0, NULL, &m, &at), SITEREC_EINVAL);
	th_assert_err(siterec_rp_restore_at(cat, 1200, 0, 2, mem_write, &m, &at), SITEREC_EINVAL);
	th_assert_err(siterec_rp_restore_at(cat, 1200, 2, 0, mem_write, &m, &at), SITEREC_ERANGE);

	free(got);
	free(snp);
	free(snq);
	free(snr);
	free(sn1);
	free(w1);
	free(w2);
	free(w3);
	free(v8);
	free(v9);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st2);
	siterec_store_free(st);
}

/* ---- pruning log points and sweeping their objects ---- */

static int names_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	char *all = payload;
	(void)size;
	(void)snap;
	if (kind == SITEREC_STORE_KIND_DISK) {
		assert_true(strlen(all) + strlen(name) + 2 < 4096);
		strcat(strcat(all, name), " ");
	}
	return 0;
}

/* The disk objects under prefix are exactly want (names in order, each followed by ' '). */
static void expect_objects(siterec_store *st, const char *prefix, const char *want)
{
	char all[4096] = "";
	assert_int_equal(siterec_store_list(st, prefix, names_cb, all), 0);
	fprintf(stderr, "  %s: %s\n", prefix, all);
	assert_string_equal(all, want);
}

#define QL(n) "vmq/logs/d0/000000000000000000" n "-aa"

static void run_log_prune(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-log-prune");
	const char *d0 = "vmq/d0";
	char sa[SITEREC_STORE_ID_MAX], sb[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, d0, 64 * KiB), 0);
	cycle(st, d0, 1, sa);
	cycle(st, d0, 2, sb);
	/* log objects (their content does not matter here), names that are no log's,
	 * and another VM's */
	const char *objs[] = { QL("03"), QL("05"), QL("06"), QL("08"), QL("20"),
	                       "vmq/logs/d0/junk", "vmq/logs/d0/00000000000000000001",
	                       "vmq/logs/d0/00000000000000000002-", "vmq2/logs/d0/00000000000000000001-aa" };
	for (size_t i = 0; i < sizeof(objs) / sizeof(*objs); i++)
		assert_int_equal(siterec_store_disk_create(st, objs[i], 512), 0);
	siterec_rp_catalog *cat = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vmq"), 0);
	siterec_rp_disk da[] = { { d0, sa, NULL, UNKNOWN } }, db[] = { { d0, sb, NULL, UNKNOWN } };
	const siterec_rp_log l1[] = { { 0, 0, 5, QL("05"), 100, 0 } };
	const siterec_rp_log l2[] = { { 0, 0, 5, QL("05"), 100, 0 }, { 0, 0, 6, QL("06"), 100, 0 } };
	const siterec_rp_log l3[] = { { 0, 0, 8, QL("08"), 100, 0 } };
	assert_int_equal(add_logs(cat, 1, 1000, 1, da, 1, l1), 0);
	assert_int_equal(add_logs(cat, 2, 2000, 1, da, 2, l2), 0);
	assert_int_equal(add_logs(cat, 3, 3000, 1, db, 1, l3), 0);

	/* point 1 goes; its log stays (point 2 has it too); the orphan of seq 3 is
	 * swept, the one of seq 20 (a cycle not added yet) and names that are no
	 * log's stay */
	uint64_t pruned = 99;
	assert_int_equal(siterec_rp_prune(cat, 10000, 8500, NULL, 0, &pruned), 0);
	assert_true(pruned == 1);
	const uint64_t left[] = { 2, 3 };
	expect_ids(cat, 2, left);
	expect_objects(st, "vmq/logs/", "vmq/logs/d0/00000000000000000001 "
	               "vmq/logs/d0/00000000000000000002- " QL("05") " " QL("06") " " QL("08") " "
	               QL("20") " vmq/logs/d0/junk ");
	/* point 2 goes, one of its logs already gone (a crash mid-prune) */
	assert_int_equal(siterec_store_disk_delete(st, QL("06"), 0, NULL), 0);
	assert_int_equal(siterec_rp_prune(cat, 10000, 0, NULL, 0, &pruned), 0);
	assert_true(pruned == 1);
	expect_ids(cat, 1, left + 1);
	expect_objects(st, "vmq/logs/", "vmq/logs/d0/00000000000000000001 "
	               "vmq/logs/d0/00000000000000000002- " QL("08") " " QL("20") " vmq/logs/d0/junk ");
	expect_objects(st, "vmq2/", "vmq2/logs/d0/00000000000000000001-aa ");
	const char *snaps_left[] = { sb };
	expect_snaps(st, d0, 1, snaps_left);
	/* a second handle agrees */
	siterec_rp_catalog *cat2 = NULL;
	assert_int_equal(siterec_rp_open(&cat2, st, "vmq"), 0);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_get(cat2, 0, &p), 0);
	assert_true(p.id == 3 && p.n_logs == 1 && p.logs[0].seq == 8);
	siterec_rp_free(cat2);
	siterec_rp_free(cat);
	siterec_store_free(st);
}

/* ---- bad arguments ---- */

static void run_args(int azure)
{
	siterec_store *st = th_store_open(&g, azure, "rp-args");
	char snap[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_disk_create(st, "vma/d0", 64 * KiB), 0);
	assert_int_equal(siterec_store_disk_create(st, "vma/d1", 64 * KiB), 0);
	cycle(st, "vma/d0", 1, snap);
	siterec_rp_catalog *cat = (siterec_rp_catalog *)1;
	th_assert_err(siterec_rp_open(NULL, st, "vma"), SITEREC_EINVAL);
	th_assert_err(siterec_rp_open(&cat, NULL, "vma"), SITEREC_EINVAL);
	assert_null(cat);
	char long_id[80];
	memset(long_id, 'a', 65);
	long_id[65] = 0;
	const char *bad_vm[] = { NULL, "", ".x", "a/b", "a b", "a..b", "x\"y", "é", long_id };
	for (size_t i = 0; i < sizeof(bad_vm) / sizeof(*bad_vm); i++)
		th_assert_err(siterec_rp_open(&cat, st, bad_vm[i]), SITEREC_EINVAL);
	long_id[64] = 0;  /* 64 characters: fine */
	assert_int_equal(siterec_rp_open(&cat, st, long_id), 0);
	siterec_rp_free(cat);
	siterec_rp_free(NULL);
	assert_int_equal(siterec_rp_open(&cat, st, "vma"), 0);

	const siterec_extent asc[] = { { 0, 512 }, { 512, 512 }, { 4096, 512 } };
	const siterec_extent back[] = { { 4096, 512 }, { 0, 512 } };
	const siterec_extent overlap[] = { { 0, 1024 }, { 512, 512 } };
	const siterec_extent empty[] = { { 0, 512 }, { 1024, 0 } };
	const siterec_extent wrap[] = { { UINT64_MAX - 511, 1024 } };
	siterec_rp_disk ok[] = { { "vma/d0", snap, asc, 3 } };
	siterec_rp_point p = { SITEREC_RP_POINT_VERSION, SITEREC_RP_CRASH, 1, 1000, 1, 0, ok, 0, NULL };
	const siterec_rp_disk bad_disks[][2] = {
		{ { NULL, snap, NULL, UNKNOWN } },
		{ { "/vma/d0", snap, NULL, UNKNOWN } },
		{ { "vma/../d0", snap, NULL, UNKNOWN } },
		{ { "vma/d0", NULL, NULL, UNKNOWN } },
		{ { "vma/d0", "", NULL, UNKNOWN } },
		{ { "vma/d0", "a/b", NULL, UNKNOWN } },
		{ { "vma/d0", snap, NULL, 1 } },
		{ { "vma/d0", snap, back, 2 } },
		{ { "vma/d0", snap, overlap, 2 } },
		{ { "vma/d0", snap, empty, 2 } },
		{ { "vma/d0", snap, wrap, 1 } },
		{ { "vma/d0", snap, NULL, UNKNOWN }, { "vma/d0", snap, NULL, UNKNOWN } },
	};
	for (size_t i = 0; i < sizeof(bad_disks) / sizeof(*bad_disks); i++) {
		siterec_rp_point q = p;
		q.disks = bad_disks[i];
		q.n_disks = bad_disks[i][1].disk ? 2 : 1;
		th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	}
	siterec_rp_point q = p;
	th_assert_err(siterec_rp_add(NULL, &q), SITEREC_EINVAL);
	th_assert_err(siterec_rp_add(cat, NULL), SITEREC_EINVAL);
	q.n_disks = 0;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q.n_disks = 257;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q = p;
	q.disks = NULL;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q = p;
	q.kind = 0;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q.kind = 3;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q = p;
	q.cut_time_ms = -1;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q = p;
	q.reserved = 1;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EINVAL);
	q = p;
	q.version = 0;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EVERSION);
	q.version = SITEREC_RP_POINT_VERSION + 1;
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_EVERSION);
	assert_int_equal(count(cat), 0);
	/* nothing of the above reached the target */
	int docs = 0;
	assert_int_equal(siterec_store_list(st, "vma/points/", docs_cb, &docs), 0);
	assert_int_equal(docs, 0);
	assert_int_equal(siterec_rp_add(cat, &p), 0);

	/* the readers */
	uint64_t n, id;
	uint8_t buf[512];
	siterec_rp_point out = SITEREC_RP_POINT_INIT;
	th_assert_err(siterec_rp_count(NULL, &n), SITEREC_EINVAL);
	th_assert_err(siterec_rp_count(cat, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_get(NULL, 0, &out), SITEREC_EINVAL);
	th_assert_err(siterec_rp_get(cat, 0, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_find(NULL, 1, &out), SITEREC_EINVAL);
	th_assert_err(siterec_rp_find(cat, 1, NULL), SITEREC_EINVAL);
	out.version = 0;
	th_assert_err(siterec_rp_get(cat, 0, &out), SITEREC_EVERSION);
	out.version = SITEREC_RP_POINT_VERSION + 1;
	th_assert_err(siterec_rp_find(cat, 1, &out), SITEREC_EVERSION);
	th_assert_err(siterec_rp_select(NULL, SITEREC_RP_LATEST, 0, &id), SITEREC_EINVAL);
	th_assert_err(siterec_rp_select(cat, SITEREC_RP_LATEST, 0, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_rp_select(cat, 0, 0, &id), SITEREC_EINVAL);
	th_assert_err(siterec_rp_select(cat, 5, 0, &id), SITEREC_EINVAL);
	th_assert_err(siterec_rp_read(NULL, 1, 0, buf, sizeof(buf), 0), SITEREC_EINVAL);
	th_assert_err(siterec_rp_read(cat, 1, 0, NULL, sizeof(buf), 0), SITEREC_EINVAL);
	th_assert_err(siterec_rp_refresh(NULL), SITEREC_EINVAL);
	assert_int_equal(siterec_rp_read(cat, 1, 0, buf, sizeof(buf), 0), 0);

	/* the largest id and time there are, read back exactly by another handle */
	q = p;
	q.id = UINT64_MAX;
	q.cut_time_ms = INT64_MAX;
	assert_int_equal(siterec_rp_add(cat, &q), 0);
	th_assert_err(siterec_rp_add(cat, &q), SITEREC_ECONFLICT);
	siterec_rp_catalog *c2 = NULL;
	assert_int_equal(siterec_rp_open(&c2, st, "vma"), 0);
	assert_int_equal(count(c2), 2);
	same_at(cat, c2, 1);
	out.version = SITEREC_RP_POINT_VERSION;
	assert_int_equal(siterec_rp_find(c2, UINT64_MAX, &out), 0);
	assert_true(out.cut_time_ms == INT64_MAX);
	assert_true(select_id(c2, SITEREC_RP_AT_OR_BEFORE, INT64_MAX) == UINT64_MAX);
	assert_true(select_id(c2, SITEREC_RP_BY_ID, -1) == UINT64_MAX);
	siterec_rp_free(c2);
	siterec_rp_free(cat);
	siterec_store_free(st);
}

#define BOTH(fn)                                                                   \
	static void fn##_file(void **state) { (void)state; run_##fn(0); }              \
	static void fn##_azure(void **state) { (void)state; run_##fn(1); }

BOTH(points)
BOTH(race)
BOTH(prune)
BOTH(corrupt)
BOTH(many)
BOTH(args)
BOTH(logs)
BOTH(log_prune)
BOTH(at)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(points_file),  cmocka_unit_test(points_azure),
		cmocka_unit_test(race_file),    cmocka_unit_test(race_azure),
		cmocka_unit_test(prune_file),   cmocka_unit_test(prune_azure),
		cmocka_unit_test(corrupt_file), cmocka_unit_test(corrupt_azure),
		cmocka_unit_test(many_file),    cmocka_unit_test(many_azure),
		cmocka_unit_test(args_file),    cmocka_unit_test(args_azure),
		cmocka_unit_test(logs_file),    cmocka_unit_test(logs_azure),
		cmocka_unit_test(log_prune_file), cmocka_unit_test(log_prune_azure),
		cmocka_unit_test(at_file),      cmocka_unit_test(at_azure),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
