/* Change tracker: marking, extents, epochs, concurrency, persistence, crashes.
 * Public API only (plus the documented file formats for the format tests). */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* header-only XXH3, to forge checksummed headers in the format tests */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

/* ---- helpers ---------------------------------------------------------------- */

struct exts {
	siterec_extent *v;
	size_t n, cap;
};

static int collect(uint64_t off, uint64_t len, void *p)
{
	struct exts *e = p;
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 64;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		assert_non_null(e->v);
	}
	e->v[e->n].offset = off;
	e->v[e->n].length = len;
	e->n++;
	return 0;
}

static void exts_reset(struct exts *e) { e->n = 0; }
static void exts_free(struct exts *e) { free(e->v); memset(e, 0, sizeof(*e)); }

static struct exts dirty(siterec_tracker *t)
{
	struct exts e = { NULL, 0, 0 };
	assert_int_equal(siterec_tracker_foreach_dirty(t, collect, &e), 0);
	return e;
}

static struct exts frozen(siterec_tracker *t)
{
	struct exts e = { NULL, 0, 0 };
	assert_int_equal(siterec_tracker_foreach_frozen(t, collect, &e), 0);
	return e;
}

static void assert_exts(const struct exts *e, const siterec_extent *want, size_t n)
{
	if (e->n != n) {
		for (size_t i = 0; i < e->n; i++)
			print_message("  got [%llu, +%llu)\n", (unsigned long long)e->v[i].offset,
			              (unsigned long long)e->v[i].length);
	}
	assert_int_equal(e->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(e->v[i].offset, want[i].offset);
		assert_int_equal(e->v[i].length, want[i].length);
	}
}

static void assert_exts_equal(const struct exts *a, const struct exts *b)
{
	assert_exts(a, b->v, b->n);
}

/* Extents must be sorted, non-empty, non-adjacent (merged), within the disk. */
static void assert_well_formed(const struct exts *e, uint64_t disk)
{
	for (size_t i = 0; i < e->n; i++) {
		assert_true(e->v[i].length > 0);
		assert_true(e->v[i].offset + e->v[i].length <= disk);
		if (i)
			assert_true(e->v[i].offset > e->v[i - 1].offset + e->v[i - 1].length);
	}
}

static siterec_tracker_stats stats(siterec_tracker *t)
{
	siterec_tracker_stats s;
	memset(&s, 0xAB, sizeof(s));
	s.version = SITEREC_TRACKER_STATS_VERSION;
	assert_int_equal(siterec_tracker_stats_get(t, &s), 0);
	return s;
}

static siterec_tracker *open_mem(uint64_t disk, uint32_t bs)
{
	siterec_tracker_options o = SITEREC_TRACKER_OPTIONS_INIT;
	o.block_size = bs;
	siterec_tracker *t = NULL;
	assert_int_equal(siterec_tracker_open(&t, disk, &o), 0);
	assert_non_null(t);
	return t;
}

static int open_persist(siterec_tracker **t, const char *path, uint64_t disk, uint32_t bs,
                        uint64_t region)
{
	siterec_tracker_options o;
	assert_int_equal(siterec_tracker_options_init(&o, SITEREC_TRACKER_OPTIONS_VERSION), 0);
	o.block_size = bs;
	o.activity_region = region;
	o.state_path = path;
	return siterec_tracker_open(t, disk, &o);
}

/* Is every byte of [off, off+len) covered by the extents? */
static int covered(const struct exts *e, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	for (size_t i = 0; i < e->n && off < end; i++) {
		uint64_t s = e->v[i].offset, x = s + e->v[i].length;
		if (x <= off)
			continue;
		if (s > off)
			return 0;
		off = x;
	}
	return off >= end;
}

static char *act_path_of(const char *state)
{
	size_t n = strlen(state) + 5;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s.act", state);
	return p;
}

static void copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	assert_non_null(a);
	assert_non_null(b);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		assert_int_equal(fwrite(buf, 1, n, b), n);
	fclose(a);
	fclose(b);
}



static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- options and argument checks ------------------------------------------- */

static void test_options(void **state)
{
	(void)state;
	siterec_tracker_options o;
	memset(&o, 0x5A, sizeof(o));
	assert_int_equal(siterec_tracker_options_init(&o, SITEREC_TRACKER_OPTIONS_VERSION), 0);
	assert_int_equal(o.version, SITEREC_TRACKER_OPTIONS_VERSION);
	assert_int_equal(o.block_size, 0);
	assert_int_equal(o.activity_region, 0);
	assert_null(o.state_path);
	assert_int_equal(o.flags, 0);
	th_assert_err(siterec_tracker_options_init(&o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_tracker_options_init(&o, SITEREC_TRACKER_OPTIONS_VERSION + 1),
	              SITEREC_EVERSION);
	th_assert_err(siterec_tracker_options_init(NULL, 1), SITEREC_EINVAL);

	/* NULL options: defaults */
	siterec_tracker *t = NULL;
	assert_int_equal(siterec_tracker_open(&t, 10 * MiB, NULL), 0);
	siterec_tracker_stats s = stats(t);
	assert_int_equal(s.block_size, SITEREC_TRACKER_BLOCK_DEFAULT);
	assert_int_equal(s.disk_size, 10 * MiB);
	assert_int_equal(s.epoch, 1);
	assert_int_equal(s.dirty_bytes, 0);
	assert_int_equal(s.frozen_bytes, 0);
	assert_int_equal(s.state, SITEREC_TRACKER_FRESH);
	assert_int_equal(s.has_frozen, 0);
	siterec_tracker_free(t);
	siterec_tracker_free(NULL);

	/* every valid block size */
	for (uint32_t bs = SITEREC_TRACKER_BLOCK_MIN; bs <= SITEREC_TRACKER_BLOCK_MAX; bs *= 2) {
		t = open_mem(5 * MiB + 3, bs);
		assert_int_equal(stats(t).block_size, bs);
		siterec_tracker_free(t);
	}
}

static void test_open_errors(void **state)
{
	(void)state;
	siterec_tracker *t = (siterec_tracker *)0x1;
	siterec_tracker_options o = SITEREC_TRACKER_OPTIONS_INIT;

	th_assert_err(siterec_tracker_open(NULL, MiB, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_open(&t, 0, NULL), SITEREC_EINVAL);
	assert_null(t);

	const uint32_t bad_bs[] = { 1, 256, 511, 513, 3000, 4095, 4097, 2 * 1048576, 0x80000000u };
	for (size_t i = 0; i < sizeof(bad_bs) / sizeof(bad_bs[0]); i++) {
		t = (siterec_tracker *)0x1;
		o.block_size = bad_bs[i];
		th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
		assert_null(t);
	}
	o.block_size = 0;

	o.block_size = 65536;
	o.activity_region = 32768; /* smaller than a block */
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
	o.activity_region = 3 * MiB; /* not a power of two */
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
	o.activity_region = 0;
	o.block_size = 0;

	o.flags = 1;
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
	o.flags = 0x80000000u;
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
	o.flags = 0;

	o.state_path = "";
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EINVAL);
	o.state_path = NULL;

	o.version = 0;
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EVERSION);
	o.version = SITEREC_TRACKER_OPTIONS_VERSION + 1;
	t = (siterec_tracker *)0x1;
	th_assert_err(siterec_tracker_open(&t, GiB, &o), SITEREC_EVERSION);
	assert_null(t);

	/* state path in a directory that does not exist: an I/O error, no handle */
	o.version = SITEREC_TRACKER_OPTIONS_VERSION;
	o.state_path = "/nonexistent-siterec-dir/state";
	t = (siterec_tracker *)0x1;
	int rc = siterec_tracker_open(&t, GiB, &o);
	assert_true(rc < 0);
	assert_int_equal(siterec_error_last()->code, rc);
	assert_null(t);
}

static void test_mark_errors(void **state)
{
	(void)state;
	const uint64_t disk = 10 * MiB + 100;
	siterec_tracker *t = open_mem(disk, 4096);
	th_assert_err(siterec_tracker_mark(NULL, 0, 1), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_mark(t, 0, 0), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_mark(t, disk, 1), SITEREC_ERANGE);
	th_assert_err(siterec_tracker_mark(t, disk - 1, 2), SITEREC_ERANGE);
	th_assert_err(siterec_tracker_mark(t, 0, disk + 1), SITEREC_ERANGE);
	th_assert_err(siterec_tracker_mark(t, UINT64_MAX, 1), SITEREC_ERANGE);
	/* offset + length wraps around */
	th_assert_err(siterec_tracker_mark(t, 4096, UINT64_MAX - 100), SITEREC_ERANGE);
	th_assert_err(siterec_tracker_mark(t, UINT64_MAX - 10, 100), SITEREC_ERANGE);
	th_assert_err(siterec_tracker_mark(t, 1, UINT64_MAX), SITEREC_ERANGE);
	assert_int_equal(stats(t).dirty_bytes, 0);
	/* the exact end is fine */
	assert_int_equal(siterec_tracker_mark(t, disk - 1, 1), 0);
	assert_int_equal(siterec_tracker_mark(t, 0, disk), 0);

	th_assert_err(siterec_tracker_mark_all(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_switch(NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_commit(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_rollback(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_save(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_close(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_foreach_dirty(NULL, collect, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_foreach_frozen(NULL, collect, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_foreach_dirty(t, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_foreach_frozen(t, NULL, NULL), SITEREC_EINVAL);
	siterec_tracker_stats s;
	s.version = SITEREC_TRACKER_STATS_VERSION;
	th_assert_err(siterec_tracker_stats_get(NULL, &s), SITEREC_EINVAL);
	th_assert_err(siterec_tracker_stats_get(t, NULL), SITEREC_EINVAL);
	s.version = 0;
	th_assert_err(siterec_tracker_stats_get(t, &s), SITEREC_EVERSION);
	s.version = SITEREC_TRACKER_STATS_VERSION + 1;
	th_assert_err(siterec_tracker_stats_get(t, &s), SITEREC_EVERSION);
	/* memory-only: nothing to save */
	th_assert_err(siterec_tracker_save(t), SITEREC_EINVAL);
	siterec_tracker_free(t);
}

/* ---- extents ---------------------------------------------------------------- */

static void test_widen_merge_clip(void **state)
{
	(void)state;
	/* 3 blocks, the last one 1808 bytes long */
	siterec_tracker *t = open_mem(10000, 4096);
	assert_int_equal(siterec_tracker_mark(t, 100, 1), 0);
	struct exts e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 4096 } }, 1);
	assert_int_equal(stats(t).dirty_bytes, 4096);

	assert_int_equal(siterec_tracker_mark(t, 9999, 1), 0);
	exts_free(&e);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 4096 }, { 8192, 1808 } }, 2);
	assert_int_equal(stats(t).dirty_bytes, 4096 + 1808);

	/* one byte either side of a boundary joins everything into one clipped extent */
	assert_int_equal(siterec_tracker_mark(t, 8191, 2), 0);
	exts_free(&e);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 10000 } }, 1);
	assert_int_equal(stats(t).dirty_bytes, 10000);
	exts_free(&e);
	siterec_tracker_free(t);

	/* adjacent marks merge across 64-block words and 32768-block leaves */
	const uint64_t bs = 512, leaf = 32768 * bs;
	t = open_mem(3 * leaf + 7, (uint32_t)bs);
	assert_int_equal(siterec_tracker_mark(t, 63 * bs, bs), 0);
	assert_int_equal(siterec_tracker_mark(t, 64 * bs, bs), 0);
	assert_int_equal(siterec_tracker_mark(t, leaf - bs, 1), 0);
	assert_int_equal(siterec_tracker_mark(t, leaf, 1), 0);
	assert_int_equal(siterec_tracker_mark(t, 2 * leaf - 100, 300), 0); /* spans a leaf edge */
	assert_int_equal(siterec_tracker_mark(t, 3 * leaf + 3, 4), 0);      /* last, partial */
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 63 * bs, 2 * bs }, { leaf - bs, 2 * bs },
	                                    { 2 * leaf - bs, 2 * bs }, { 3 * leaf, 7 } }, 4);
	assert_int_equal(stats(t).dirty_bytes, 6 * bs + 7);
	exts_free(&e);

	/* mark_all: the whole disk, one extent, clipped */
	assert_int_equal(siterec_tracker_mark_all(t), 0);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 3 * leaf + 7 } }, 1);
	assert_int_equal(stats(t).dirty_bytes, 3 * leaf + 7);
	exts_free(&e);
	siterec_tracker_free(t);

	/* a one-block disk smaller than a block */
	t = open_mem(1, 4096);
	assert_int_equal(siterec_tracker_mark(t, 0, 1), 0);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 1 } }, 1);
	assert_int_equal(stats(t).dirty_bytes, 1);
	exts_free(&e);
	siterec_tracker_free(t);
}

/* Random marks against a byte-per-block model. */
static void model_run(uint64_t disk, uint32_t bs, uint64_t seed, int nmarks, uint64_t maxlen)
{
	uint64_t nblocks = (disk + bs - 1) / bs;
	uint8_t *m = calloc(nblocks, 1);
	assert_non_null(m);
	siterec_tracker *t = open_mem(disk, bs);
	uint64_t rs = seed;
	for (int i = 0; i < nmarks; i++) {
		uint64_t off = th_rand(&rs) % disk;
		uint64_t len = 1 + th_rand(&rs) % maxlen;
		if (len > disk - off)
			len = disk - off;
		assert_int_equal(siterec_tracker_mark(t, off, len), 0);
		for (uint64_t b = off / bs; b <= (off + len - 1) / bs; b++)
			m[b] = 1;
	}
	struct exts want = { NULL, 0, 0 };
	uint64_t bytes = 0;
	for (uint64_t b = 0; b < nblocks;) {
		if (!m[b]) {
			b++;
			continue;
		}
		uint64_t s = b;
		while (b < nblocks && m[b])
			b++;
		uint64_t end = b * bs > disk ? disk : b * bs;
		collect(s * bs, end - s * bs, &want);
		bytes += end - s * bs;
	}
	struct exts got = dirty(t);
	assert_well_formed(&got, disk);
	assert_exts_equal(&got, &want);
	assert_int_equal(stats(t).dirty_bytes, bytes);
	exts_free(&got);
	exts_free(&want);
	free(m);
	siterec_tracker_free(t);
}

static void test_model(void **state)
{
	(void)state;
	model_run(5 * MiB + 1234, 4096, 1, 300, 40000);
	model_run(50 * MiB + 7, 512, 2, 2000, 9000);        /* several leaves, tail */
	model_run(64 * MiB, 512, 3, 50, 3 * 16 * MiB);      /* long ranges over leaves */
	model_run(3 * MiB, 1048576, 4, 10, 100);
	model_run(1ull << 40, 4096, 5, 500, 1ull << 30);    /* 1 TiB, sparse */
}

static int abort_after(uint64_t off, uint64_t len, void *p)
{
	(void)off;
	(void)len;
	int *n = p;
	return --(*n) == 0 ? 42 : 0;
}

static void test_callback_abort(void **state)
{
	(void)state;
	siterec_tracker *t = open_mem(GiB, 4096);
	for (int i = 0; i < 10; i++)
		assert_int_equal(siterec_tracker_mark(t, (uint64_t)i * MiB, 1), 0);
	int n = 3;
	th_assert_err(siterec_tracker_foreach_dirty(t, abort_after, &n), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	assert_int_equal(n, 0); /* stopped at the third extent */
	assert_int_equal(siterec_tracker_switch(t, NULL), 0);
	n = 10; /* the last extent aborts: the final flush path */
	th_assert_err(siterec_tracker_foreach_frozen(t, abort_after, &n), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	siterec_tracker_free(t);
}

/* ---- epochs ------------------------------------------------------------------ */

static void test_switch_commit_rollback(void **state)
{
	(void)state;
	siterec_tracker *t = open_mem(GiB, 4096);
	struct exts e = { NULL, 0, 0 };
	th_assert_err(siterec_tracker_commit(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_rollback(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_foreach_frozen(t, collect, &e), SITEREC_ESTATE);

	assert_int_equal(siterec_tracker_mark(t, 0, 8192), 0);
	assert_int_equal(siterec_tracker_mark(t, 200 * MiB, 4096), 0);
	uint64_t ep = 0;
	assert_int_equal(siterec_tracker_switch(t, &ep), 0);
	assert_int_equal(ep, 1);
	siterec_tracker_stats s = stats(t);
	assert_int_equal(s.epoch, 2);
	assert_int_equal(s.has_frozen, 1);
	assert_int_equal(s.frozen_bytes, 12288);
	assert_int_equal(s.dirty_bytes, 0);
	th_assert_err(siterec_tracker_switch(t, &ep), SITEREC_ESTATE);
	assert_int_equal(ep, 1);

	/* marks after the switch go to the new epoch only */
	assert_int_equal(siterec_tracker_mark(t, 4096, 4096), 0);   /* same leaf as frozen */
	assert_int_equal(siterec_tracker_mark(t, 500 * MiB, 4096), 0); /* a leaf only live has */
	e = frozen(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 8192 }, { 200 * MiB, 4096 } }, 2);
	exts_free(&e);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 4096, 4096 }, { 500 * MiB, 4096 } }, 2);
	exts_free(&e);

	/* commit drops the frozen set */
	assert_int_equal(siterec_tracker_commit(t), 0);
	s = stats(t);
	assert_int_equal(s.has_frozen, 0);
	assert_int_equal(s.frozen_bytes, 0);
	assert_int_equal(s.dirty_bytes, 8192);
	th_assert_err(siterec_tracker_commit(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_foreach_frozen(t, collect, &e), SITEREC_ESTATE);

	/* rollback merges the frozen set back (into leaves live has and has not) */
	assert_int_equal(siterec_tracker_switch(t, NULL), 0); /* epoch 2 frozen */
	assert_int_equal(siterec_tracker_mark(t, 0, 4096), 0);
	assert_int_equal(siterec_tracker_mark(t, 700 * MiB, 4096), 0);
	assert_int_equal(siterec_tracker_rollback(t), 0);
	s = stats(t);
	assert_int_equal(s.has_frozen, 0);
	assert_int_equal(s.epoch, 3);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 0, 8192 }, { 500 * MiB, 4096 }, { 700 * MiB, 4096 } },
	            3);
	exts_free(&e);
	th_assert_err(siterec_tracker_rollback(t), SITEREC_ESTATE);
	/* and the next switch ships it all */
	assert_int_equal(siterec_tracker_switch(t, &ep), 0);
	assert_int_equal(ep, 3);
	e = frozen(t);
	assert_int_equal(e.n, 3);
	exts_free(&e);
	assert_int_equal(siterec_tracker_commit(t), 0);
	assert_int_equal(stats(t).dirty_bytes, 0);
	siterec_tracker_free(t);
}

static void test_close_memory(void **state)
{
	(void)state;
	siterec_tracker *t = open_mem(GiB, 4096);
	assert_int_equal(siterec_tracker_mark(t, 0, 1), 0);
	assert_int_equal(siterec_tracker_close(t), 0);
	th_assert_err(siterec_tracker_mark(t, 0, 1), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_mark_all(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_switch(t, NULL), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_commit(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_rollback(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_save(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_close(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_foreach_dirty(t, collect, NULL), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_foreach_frozen(t, collect, NULL), SITEREC_ESTATE);
	assert_int_equal(stats(t).dirty_bytes, 4096); /* stats still answer */
	siterec_tracker_free(t);
}

/* ---- memory ------------------------------------------------------------------ */

static void test_memory(void **state)
{
	(void)state;
	siterec_tracker *t = open_mem(4 * TiB, 4096);
	uint64_t m0 = stats(t).memory_bytes;
	assert_true(m0 < 4 * MiB);
	assert_true(m0 >= 2 * 256 * KiB); /* two directories of 256 KiB */

	assert_int_equal(siterec_tracker_mark(t, 0, 1), 0);
	uint64_t m1 = stats(t).memory_bytes;
	assert_int_equal(m1, m0 + 4096);
	assert_int_equal(siterec_tracker_mark(t, 4096 * 100, 4096), 0); /* same leaf */
	assert_int_equal(stats(t).memory_bytes, m1);
	assert_int_equal(siterec_tracker_mark(t, 3 * TiB, 1), 0);
	assert_int_equal(siterec_tracker_mark(t, 4 * TiB - 1, 1), 0);
	assert_int_equal(stats(t).memory_bytes, m0 + 3 * 4096);
	/* a 1 GiB dirty range: 262144 blocks, 8 leaves */
	assert_int_equal(siterec_tracker_mark(t, TiB, GiB), 0);
	assert_int_equal(stats(t).memory_bytes, m0 + 11 * 4096);
	assert_int_equal(stats(t).dirty_bytes, GiB + 4 * 4096);

	/* freezing does not copy; commit gives the leaves back */
	assert_int_equal(siterec_tracker_switch(t, NULL), 0);
	assert_int_equal(stats(t).memory_bytes, m0 + 11 * 4096);
	assert_int_equal(siterec_tracker_commit(t), 0);
	assert_int_equal(stats(t).memory_bytes, m0);
	siterec_tracker_free(t);

	/* 4 TiB at 512-byte blocks: 2 MiB of directory per set */
	t = open_mem(4 * TiB, 512);
	assert_true(stats(t).memory_bytes <= 4 * MiB + 64 * KiB);
	siterec_tracker_free(t);
}

/* Allocation failures: open fails cleanly at every point; a failed leaf
 * allocation in mark loses nothing marked before. */
static atomic_int alloc_limited;
static atomic_int alloc_budget; /* allocations left while limited */
static void set_budget(int n) /* n < 0: unlimited */
{
	atomic_store(&alloc_budget, n);
	atomic_store(&alloc_limited, n >= 0);
}
static int alloc_ok(void)
{
	return !atomic_load(&alloc_limited) || atomic_fetch_sub(&alloc_budget, 1) > 0;
}
static void *lim_malloc(size_t n, void *p)
{
	(void)p;
	return alloc_ok() ? malloc(n) : NULL;
}
static void *lim_realloc(void *q, size_t n, void *p)
{
	(void)p;
	return alloc_ok() ? realloc(q, n) : NULL;
}
static void lim_free(void *q, void *p)
{
	(void)p;
	free(q);
}

static void test_alloc_failure(void **state)
{
	(void)state;
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, lim_malloc, lim_realloc, lim_free, NULL };
	assert_int_equal(siterec_set_allocator(&a), 0);

	siterec_tracker *t = open_mem(TiB, 4096);
	assert_int_equal(siterec_tracker_mark(t, 0, 4096), 0);
	set_budget(0);
	th_assert_err(siterec_tracker_mark(t, 512 * GiB, 4096), SITEREC_ENOMEM); /* new leaf */
	assert_int_equal(siterec_tracker_mark(t, 8192, 4096), 0);              /* same leaf */
	th_assert_err(siterec_tracker_mark_all(t), SITEREC_ENOMEM);
	assert_int_equal(siterec_tracker_switch(t, NULL), 0); /* needs no memory */
	assert_int_equal(siterec_tracker_rollback(t), 0);     /* neither */
	set_budget(-1);
	struct exts e = dirty(t);
	assert_true(covered(&e, 0, 4096));
	assert_true(covered(&e, 8192, 4096));
	exts_free(&e);
	siterec_tracker_free(t);

	/* persistent open with the k-th allocation failing, for every k */
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	int ok = 0;
	char *act = act_path_of(path);
	for (int k = 0; k < 200 && !ok; k++) {
		unlink(path);
		unlink(act);
		set_budget(k);
		t = (siterec_tracker *)0x1;
		int rc = open_persist(&t, path, GiB, 4096, MiB);
		set_budget(-1);
		if (rc == 0) {
			ok = 1;
			assert_int_equal(stats(t).state, SITEREC_TRACKER_FRESH);
			assert_int_equal(siterec_tracker_close(t), 0);
			siterec_tracker_free(t);
		} else {
			assert_int_equal(rc, SITEREC_ENOMEM);
			assert_null(t);
		}
	}
	assert_true(ok);
	assert_int_equal(siterec_set_allocator(NULL), 0);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- concurrency --------------------------------------------------------------- */

#define CC_THREADS 4
#define CC_MARKS 300000 /* per thread; each covers 3 blocks of its own */
#define CC_CHUNK 1500   /* marks between two waits for a new switch cycle */

struct cc_arg {
	siterec_tracker *t;
	int id;
	uint32_t bs;
	atomic_int *cycles;
	atomic_int *finished;
	int failures;
};

static void *cc_marker(void *p)
{
	struct cc_arg *a = p;
	int seen = atomic_load(a->cycles);
	for (uint64_t i = 0; i < CC_MARKS; i++) {
		uint64_t j = i * CC_THREADS + (uint64_t)a->id;
		/* 3-block marks: regularly straddle 64-block words and leaves */
		if (siterec_tracker_mark(a->t, j * 3 * a->bs + 1, 3 * a->bs - 2) != 0)
			a->failures++;
		if (i % CC_CHUNK == CC_CHUNK - 1) {
			/* let a switch happen between chunks, whatever the scheduler does,
			 * so that switches interleave with marking all along */
			while (atomic_load(a->cycles) == seen)
				sched_yield();
			seen = atomic_load(a->cycles);
		}
	}
	atomic_fetch_add(a->finished, 1);
	return NULL;
}

struct cc_found {
	uint8_t *count;   /* per block: in how many shipped sets */
	uint32_t *epoch;  /* per block: which one */
	uint32_t bs;
	uint32_t cur;
	struct exts tmp;
};

static void cc_record(struct cc_found *f, const struct exts *e)
{
	for (size_t i = 0; i < e->n; i++)
		for (uint64_t b = e->v[i].offset / f->bs; b < (e->v[i].offset + e->v[i].length) / f->bs;
		     b++) {
			f->count[b]++;
			f->epoch[b] = f->cur;
		}
}

/* 4 threads mark while the main thread switches, ships (or rolls back) and
 * commits: every mark must be found in exactly one shipped set or the final
 * live set, and wholly in that one. */
static void test_concurrent_switch(void **state)
{
	(void)state;
	const uint32_t bs = 512;
	const uint64_t nblocks = (uint64_t)CC_THREADS * CC_MARKS * 3;
	siterec_tracker *t = open_mem(nblocks * bs, bs);
	struct cc_found f = { calloc(nblocks, 1), calloc(nblocks, 4), bs, 0, { NULL, 0, 0 } };
	assert_non_null(f.count);
	assert_non_null(f.epoch);
	atomic_int cycles = 0, finished = 0;
	pthread_t th[CC_THREADS];
	struct cc_arg args[CC_THREADS];
	for (int i = 0; i < CC_THREADS; i++) {
		args[i] = (struct cc_arg){ t, i, bs, &cycles, &finished, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, cc_marker, &args[i]), 0);
	}
	int rollbacks = 0, cycle;
	for (cycle = 0; atomic_load(&finished) < CC_THREADS; cycle++) {
		uint64_t ep;
		assert_int_equal(siterec_tracker_switch(t, &ep), 0);
		exts_reset(&f.tmp);
		assert_int_equal(siterec_tracker_foreach_frozen(t, collect, &f.tmp), 0);
		assert_well_formed(&f.tmp, nblocks * bs);
		if (cycle % 4 == 3) {
			/* shipping "failed": the next cycle ships these again */
			assert_int_equal(siterec_tracker_rollback(t), 0);
			rollbacks++;
		} else {
			f.cur = (uint32_t)ep;
			cc_record(&f, &f.tmp);
			assert_int_equal(siterec_tracker_commit(t), 0);
		}
		atomic_fetch_add(&cycles, 1);
	}
	for (int i = 0; i < CC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	exts_reset(&f.tmp);
	assert_int_equal(siterec_tracker_foreach_dirty(t, collect, &f.tmp), 0);
	f.cur = UINT32_MAX;
	cc_record(&f, &f.tmp);
	for (uint64_t j = 0; j < nblocks / 3; j++) {
		for (int k = 0; k < 3; k++)
			assert_int_equal(f.count[3 * j + k], 1);
		assert_int_equal(f.epoch[3 * j], f.epoch[3 * j + 1]);
		assert_int_equal(f.epoch[3 * j], f.epoch[3 * j + 2]);
	}
	print_message("  %d switch cycles (%d rolled back) during %d x %d marks\n", cycle, rollbacks,
	              CC_THREADS, CC_MARKS);
	exts_free(&f.tmp);
	free(f.count);
	free(f.epoch);
	siterec_tracker_free(t);
}

#define SV_THREADS 3
#define SV_MARKS 600 /* per thread: distinct blocks; regions = blocks, so each is a sync */

struct sv_arg {
	siterec_tracker *t;
	int id;
	atomic_int *done;
	int failures;
};

static void *sv_marker(void *p)
{
	struct sv_arg *a = p;
	for (uint64_t i = 0; i < SV_MARKS; i++) {
		uint64_t b = (i * SV_THREADS + (uint64_t)a->id) * 2; /* every other block */
		if (siterec_tracker_mark(a->t, b * 4096, 4096) != 0)
			a->failures++;
	}
	atomic_fetch_add(a->done, 1);
	return NULL;
}

/* save() racing with marks: with one block per activity region, the state file
 * plus the activity record must hold exactly the marked blocks. */
static void test_save_concurrent(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	const uint64_t disk = (uint64_t)SV_THREADS * SV_MARKS * 2 * 4096 + 4096;
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, 4096), 0);
	atomic_int done = 0;
	pthread_t th[SV_THREADS];
	struct sv_arg args[SV_THREADS];
	for (int i = 0; i < SV_THREADS; i++) {
		args[i] = (struct sv_arg){ t, i, &done, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, sv_marker, &args[i]), 0);
	}
	int saves = 0;
	while (atomic_load(&done) < SV_THREADS) {
		assert_int_equal(siterec_tracker_save(t), 0);
		saves++;
	}
	for (int i = 0; i < SV_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	siterec_tracker_free(t); /* as a crash: no close */

	assert_int_equal(open_persist(&t, path, disk, 4096, 4096), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	struct exts e = dirty(t);
	assert_int_equal(e.n, (size_t)SV_THREADS * SV_MARKS);
	for (size_t i = 0; i < e.n; i++) {
		assert_int_equal(e.v[i].offset, i * 2 * 4096);
		assert_int_equal(e.v[i].length, 4096);
	}
	print_message("  %d saves during %d x %d marks\n", saves, SV_THREADS, SV_MARKS);
	exts_free(&e);
	siterec_tracker_free(t);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- persistence ------------------------------------------------------------------ */

static void test_fresh(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	char *act = act_path_of(path);
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, GiB, 0, 0), 0);
	siterec_tracker_stats s = stats(t);
	assert_int_equal(s.state, SITEREC_TRACKER_FRESH);
	assert_int_equal(s.block_size, 4096);
	assert_int_equal(s.epoch, 1);
	/* both files exist from the start, so a crash now is detected */
	assert_true(th_file_size(path) > 0);
	assert_true(th_file_size(act) > 0);
	assert_int_equal(th_file_size(act) % 8192, 0);
	siterec_tracker_free(t);

	/* a crash right after a fresh open: nothing was marked, nothing comes back */
	assert_int_equal(open_persist(&t, path, GiB, 0, 0), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	assert_int_equal(stats(t).dirty_bytes, 0);
	siterec_tracker_free(t);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

static void mark_random(siterec_tracker *t, uint64_t disk, uint64_t *rs, uint64_t maxlen)
{
	uint64_t off = th_rand(rs) % disk, len = 1 + th_rand(rs) % maxlen;
	if (len > disk - off)
		len = disk - off;
	assert_int_equal(siterec_tracker_mark(t, off, len), 0);
}

static void test_clean_reopen(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	const uint64_t disk = 3 * GiB + 5000;
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, 0), 0);
	uint64_t rs = 7;
	for (int i = 0; i < 300; i++)
		mark_random(t, disk, &rs, 200000);
	assert_int_equal(siterec_tracker_mark(t, disk - 1, 1), 0);
	/* a dense leaf (bitmap encoding) and a full one (one long run) */
	for (uint64_t b = 0; b < 32768; b += 2)
		assert_int_equal(siterec_tracker_mark(t, GiB + b * 4096, 4096), 0);
	assert_int_equal(siterec_tracker_mark(t, 2 * GiB, 32768 * 4096), 0);
	uint64_t ep;
	assert_int_equal(siterec_tracker_switch(t, &ep), 0);
	for (int i = 0; i < 100; i++)
		mark_random(t, disk, &rs, 9000);
	struct exts live0 = dirty(t), frozen0 = frozen(t);
	siterec_tracker_stats s0 = stats(t);
	assert_int_equal(siterec_tracker_close(t), 0);
	th_assert_err(siterec_tracker_mark(t, 0, 1), SITEREC_ESTATE);
	siterec_tracker_free(t);

	assert_int_equal(open_persist(&t, path, disk, 4096, 0), 0);
	siterec_tracker_stats s1 = stats(t);
	assert_int_equal(s1.state, SITEREC_TRACKER_CLEAN);
	assert_int_equal(s1.epoch, s0.epoch);
	assert_int_equal(s1.has_frozen, 1);
	assert_int_equal(s1.dirty_bytes, s0.dirty_bytes);
	assert_int_equal(s1.frozen_bytes, s0.frozen_bytes);
	struct exts live1 = dirty(t), frozen1 = frozen(t);
	assert_exts_equal(&live1, &live0);
	assert_exts_equal(&frozen1, &frozen0);
	/* the restored frozen epoch can be committed */
	assert_int_equal(siterec_tracker_commit(t), 0);
	assert_int_equal(siterec_tracker_switch(t, &ep), 0);
	assert_int_equal(ep, s0.epoch);
	assert_int_equal(siterec_tracker_close(t), 0);
	siterec_tracker_free(t);

	/* and once more: the committed epoch stays gone, the new one is frozen */
	assert_int_equal(open_persist(&t, path, disk, 4096, 0), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_CLEAN);
	assert_int_equal(stats(t).epoch, s0.epoch + 1);
	struct exts frozen2 = frozen(t);
	assert_exts_equal(&frozen2, &live0);
	assert_int_equal(stats(t).dirty_bytes, 0);
	siterec_tracker_free(t);

	exts_free(&live0);
	exts_free(&frozen0);
	exts_free(&live1);
	exts_free(&frozen1);
	exts_free(&frozen2);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_unclean_reopen(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	const uint64_t disk = 64 * MiB;
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(siterec_tracker_mark(t, 0, 4096), 0);
	assert_int_equal(siterec_tracker_mark(t, 5 * MiB + 100, 10), 0);
	assert_int_equal(siterec_tracker_save(t), 0);
	/* since the save: one mark inside a region, one across a region edge */
	assert_int_equal(siterec_tracker_mark(t, 10 * MiB + 8192, 4096), 0);
	assert_int_equal(siterec_tracker_mark(t, 20 * MiB - 4096, 8192), 0);
	siterec_tracker_free(t); /* no close: as after a crash */

	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	struct exts e = dirty(t);
	/* the saved blocks exactly, plus the whole regions touched since; nothing else */
	assert_exts(&e, (siterec_extent[]){ { 0, 4096 }, { 5 * MiB, 4096 }, { 10 * MiB, MiB },
	                                    { 19 * MiB, 2 * MiB } }, 4);
	assert_false(covered(&e, 30 * MiB, 4096));
	exts_free(&e);

	/* the recovered set survives another crash (it was saved at open) */
	siterec_tracker_free(t);
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	e = dirty(t);
	assert_int_equal(e.n, 4);
	exts_free(&e);

	/* a frozen set is saved and restored as frozen; a different activity region
	 * size in the next open is fine */
	assert_int_equal(siterec_tracker_switch(t, NULL), 0);
	assert_int_equal(siterec_tracker_mark(t, 40 * MiB, 1), 0);
	assert_int_equal(siterec_tracker_save(t), 0);
	assert_int_equal(siterec_tracker_mark(t, 50 * MiB, 1), 0);
	siterec_tracker_free(t);
	assert_int_equal(open_persist(&t, path, disk, 4096, 4 * MiB), 0);
	siterec_tracker_stats s = stats(t);
	assert_int_equal(s.state, SITEREC_TRACKER_RECOVERED);
	assert_int_equal(s.has_frozen, 1);
	e = frozen(t);
	assert_int_equal(e.n, 4);
	exts_free(&e);
	e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 40 * MiB, 4096 }, { 50 * MiB, MiB } }, 2);
	exts_free(&e);
	assert_int_equal(siterec_tracker_close(t), 0);
	siterec_tracker_free(t);
	assert_int_equal(open_persist(&t, path, disk, 4096, 4 * MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_CLEAN);
	siterec_tracker_free(t);
	free(path);
	th_tmpdir_remove(dir);
}

/* Open, mark, close: a clean pair of files to damage. */
static void make_clean(const char *path, uint64_t disk)
{
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(siterec_tracker_mark(t, (uint64_t)i * 3 * MiB, 12345), 0);
	assert_int_equal(siterec_tracker_close(t), 0);
	siterec_tracker_free(t);
}

static void expect_untrusted(const char *path, uint64_t disk)
{
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	siterec_tracker_stats s = stats(t);
	assert_int_equal(s.state, SITEREC_TRACKER_UNTRUSTED);
	assert_int_equal(s.dirty_bytes, 0);
	assert_int_equal(s.has_frozen, 0);
	/* usable: the caller hash-scans and marks */
	assert_int_equal(siterec_tracker_mark(t, 0, 1), 0);
	siterec_tracker_free(t);
	/* still untrusted after a crash before any save */
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_UNTRUSTED);
	/* a save makes it trustworthy again */
	assert_int_equal(siterec_tracker_mark(t, 4096, 1), 0);
	assert_int_equal(siterec_tracker_save(t), 0);
	siterec_tracker_free(t);
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	assert_int_equal(stats(t).dirty_bytes, 4096);
	assert_int_equal(siterec_tracker_close(t), 0);
	siterec_tracker_free(t);
}

static void test_untrusted(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	char *act = act_path_of(path);
	const uint64_t disk = 64 * MiB;

	/* a bit flip in the state file's body, then in its header */
	make_clean(path, disk);
	long long sz = th_file_size(path);
	th_flip_bit(path, (uint64_t)sz / 2 + 1, 3);
	expect_untrusted(path, disk);
	make_clean(path, disk);
	th_flip_bit(path, 17, 0); /* disk size field: caught by the header checksum */
	expect_untrusted(path, disk);
	make_clean(path, disk);
	th_flip_bit(path, (uint64_t)th_file_size(path) - 1, 7); /* file checksum */
	expect_untrusted(path, disk);
	/* truncated state file */
	make_clean(path, disk);
	th_truncate(path, (uint64_t)th_file_size(path) - 20);
	expect_untrusted(path, disk);
	make_clean(path, disk);
	th_truncate(path, 0);
	expect_untrusted(path, disk);
	/* missing activity record */
	make_clean(path, disk);
	assert_int_equal(unlink(act), 0);
	expect_untrusted(path, disk);
	/* missing state file */
	make_clean(path, disk);
	assert_int_equal(unlink(path), 0);
	expect_untrusted(path, disk);
	/* both activity slots damaged */
	make_clean(path, disk);
	sz = th_file_size(act);
	th_flip_bit(act, 70, 1);
	th_flip_bit(act, (uint64_t)sz / 2 + 70, 1);
	expect_untrusted(path, disk);
	/* activity record of the wrong length */
	make_clean(path, disk);
	th_truncate(act, 4096);
	expect_untrusted(path, disk);

	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

/* A torn activity write: the slot with the newest generation is damaged, so
 * the reader falls back to the other one (one generation older). */
static void test_torn_activity(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	char *act = act_path_of(path);
	const uint64_t disk = 64 * MiB;
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(siterec_tracker_mark(t, 3 * MiB, 1), 0);  /* region 3: a new slot */
	assert_int_equal(siterec_tracker_mark(t, 9 * MiB, 1), 0);  /* region 9: the next */
	siterec_tracker_free(t);

	size_t len;
	uint8_t *d = th_read_file(act, &len);
	size_t slot = len / 2;
	uint64_t g0 = le64(d + 32), g1 = le64(d + slot + 32);
	assert_int_equal(g0 > g1 ? g0 - g1 : g1 - g0, 1);
	size_t newest = g0 > g1 ? 0 : slot;
	d[newest + 64 + 1] ^= 0x10; /* in the bitmap: caught by the bitmap checksum */
	th_write_file(act, d, len);
	free(d);

	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	struct exts e = dirty(t);
	assert_exts(&e, (siterec_extent[]){ { 3 * MiB, MiB } }, 1);
	exts_free(&e);
	siterec_tracker_free(t);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_mismatch_and_version(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	char *act = act_path_of(path);
	char *path_copy = th_path(dir, "state.copy");
	char *act_copy = th_path(dir, "act.copy");
	const uint64_t disk = 64 * MiB;
	make_clean(path, disk);
	copy_file(path, path_copy);
	copy_file(act, act_copy);

	siterec_tracker *t = (siterec_tracker *)0x1;
	th_assert_err(open_persist(&t, path, disk + 4096, 4096, MiB), SITEREC_EINVAL);
	assert_null(t);
	th_assert_err(open_persist(&t, path, disk, 8192, MiB), SITEREC_EINVAL);
	th_assert_err(open_persist(&t, path, disk, 512, MiB), SITEREC_EINVAL);
	assert_int_equal(th_files_equal(path, path_copy), 0);
	assert_int_equal(th_files_equal(act, act_copy), 0);

	/* activity record of another disk (the state file is fine) */
	char *other = th_path(dir, "other");
	char *other_act = act_path_of(other);
	make_clean(other, 2 * disk);
	copy_file(other_act, act);
	th_assert_err(open_persist(&t, path, disk, 4096, MiB), SITEREC_EINVAL);
	copy_file(act_copy, act);

	/* a future state file format (header checksum made valid) */
	size_t len;
	uint8_t *d = th_read_file(path, &len);
	put_le32(d + 8, 2);
	put_le64(d + 56, XXH3_64bits(d, 56));
	th_write_file(path, d, len);
	free(d);
	th_assert_err(open_persist(&t, path, disk, 4096, MiB), SITEREC_EVERSION);
	assert_null(t);
	copy_file(path_copy, path);

	/* a future activity record format, in both slots */
	d = th_read_file(act, &len);
	for (size_t s = 0; s < 2; s++) {
		uint8_t *h = d + s * (len / 2);
		put_le32(h + 8, 2);
		put_le64(h + 56, XXH3_64bits(h, 56));
	}
	th_write_file(act, d, len);
	free(d);
	th_assert_err(open_persist(&t, path, disk, 4096, MiB), SITEREC_EVERSION);
	assert_int_equal(th_files_equal(path, path_copy), 0);
	copy_file(act_copy, act);

	/* untouched by all that: still a clean state */
	assert_int_equal(open_persist(&t, path, disk, 4096, MiB), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_CLEAN);
	assert_int_equal(stats(t).dirty_bytes, 20 * 16384);
	siterec_tracker_free(t);

	free(other);
	free(other_act);
	free(act_copy);
	free(path_copy);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_close_persistent(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, GiB, 4096, 0), 0);
	assert_int_equal(siterec_tracker_mark_all(t), 0);
	assert_int_equal(siterec_tracker_close(t), 0);
	th_assert_err(siterec_tracker_close(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_save(t), SITEREC_ESTATE);
	th_assert_err(siterec_tracker_mark(t, 0, 1), SITEREC_ESTATE);
	siterec_tracker_free(t);
	assert_int_equal(open_persist(&t, path, GiB, 4096, 0), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_CLEAN);
	assert_int_equal(stats(t).dirty_bytes, GiB);
	/* a fully dirty GiB costs little on disk: one run per leaf */
	assert_true(th_file_size(path) < 64 * 1024);
	siterec_tracker_free(t);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- crash: SIGKILL at a random moment ---------------------------------------------- */

#define CR_DISK (256 * MiB)
#define CR_REGION MiB

static void crash_child(const char *path, int fd)
{
	siterec_tracker *t = NULL;
	if (open_persist(&t, path, CR_DISK, 4096, CR_REGION) != 0)
		_exit(2);
	uint64_t rs = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
	for (uint64_t i = 1;; i++) {
		uint64_t rec[2];
		rec[0] = th_rand(&rs) % CR_DISK;
		rec[1] = 1 + th_rand(&rs) % (64 * KiB);
		if (rec[1] > CR_DISK - rec[0])
			rec[1] = CR_DISK - rec[0];
		if (siterec_tracker_mark(t, rec[0], rec[1]) != 0)
			_exit(3);
		/* reported only once mark() returned: from here the write may happen */
		if (write(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			_exit(4);
		if (i % 37 == 0 && siterec_tracker_save(t) != 0)
			_exit(5);
		if (i % 500 == 0) { /* now and then a fresh epoch, shipped */
			if (siterec_tracker_switch(t, NULL) != 0 || siterec_tracker_rollback(t) != 0)
				_exit(6);
		}
	}
}

static void test_crash_kill9(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "state");
	size_t cap = 1 << 16, n = 0;
	uint64_t *recs = malloc(cap * sizeof(uint64_t) * 2);
	assert_non_null(recs);
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	print_message("  crash test seed %llu\n", (unsigned long long)seed);
	for (int round = 0; round < 5; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(path, p[1]);
			_exit(1);
		}
		close(p[1]);
		/* read what the child reports for a random 30..330 ms, then kill it */
		struct timespec t0, now;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		long wait_ms = 30 + (long)(th_rand(&seed) % 300);
		uint8_t partial[16];
		size_t have = 0;
		int killed = 0;
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (!killed && el >= wait_ms) {
				kill(pid, SIGKILL);
				killed = 1;
			}
			struct pollfd pf = { p[0], POLLIN, 0 };
			if (poll(&pf, 1, killed ? -1 : 5) <= 0)
				continue;
			ssize_t r = read(p[0], partial + have, sizeof(partial) - have);
			if (r < 0 && errno == EINTR)
				continue;
			assert_true(r >= 0);
			if (r == 0)
				break; /* the child is gone and everything it wrote is read */
			have += (size_t)r;
			if (have == sizeof(partial)) {
				if (n == cap) {
					cap *= 2;
					recs = realloc(recs, cap * sizeof(uint64_t) * 2);
					assert_non_null(recs);
				}
				memcpy(&recs[2 * n], partial, 16);
				n++;
				have = 0;
			}
		}
		close(p[0]);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);

		siterec_tracker *t = NULL;
		assert_int_equal(open_persist(&t, path, CR_DISK, 4096, CR_REGION), 0);
		assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
		struct exts e = dirty(t);
		if (stats(t).has_frozen) { /* killed between switch and rollback */
			struct exts f = frozen(t);
			for (size_t i = 0; i < f.n; i++)
				collect(f.v[i].offset, f.v[i].length, &e);
			exts_free(&f);
			/* re-sort: simple insertion sort is fine for a test */
			for (size_t i = 1; i < e.n; i++)
				for (size_t j = i; j > 0 && e.v[j].offset < e.v[j - 1].offset; j--) {
					siterec_extent x = e.v[j];
					e.v[j] = e.v[j - 1];
					e.v[j - 1] = x;
				}
			assert_int_equal(siterec_tracker_rollback(t), 0);
		}
		/* every mark any child reported, in every round so far, is dirty */
		size_t missing = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t off = recs[2 * i] & ~4095ull;
			uint64_t end = recs[2 * i] + recs[2 * i + 1];
			if (!covered(&e, off, end - off))
				missing++;
		}
		print_message("  round %d: killed after %ld ms, %zu marks reported, %zu missing\n",
		              round, wait_ms, n, missing);
		assert_int_equal(missing, 0);
		exts_free(&e);
		siterec_tracker_free(t); /* leave it unclean for the next child */
	}
	free(recs);
	free(path);
	th_tmpdir_remove(dir);
}

/* A well-formed activity record whose region is smaller than the tracker's block
 * (not one this library writes, but a valid file): recovery marks the block that
 * holds each region (regression: it read past the directory, or dropped it). */
static void test_activity_region_below_block(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "t.trk");
	char *act = act_path_of(path);
	const uint64_t disk = MiB;
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, disk, 4096, 0), 0);
	assert_int_equal(siterec_tracker_save(t), 0);
	siterec_tracker_free(t); /* unclean */

	const uint64_t region = 512, nreg = disk / region, words = (nreg + 63) / 64;
	const size_t slot = 4096 * ((64 + 8 * words + 4095) / 4096);
	uint8_t *f = calloc(1, 2 * slot);
	assert_non_null(f);
	memcpy(f, "SRTRKACT", 8);
	uint32_t v32 = 1, hs = 64, bm = (uint32_t)(8 * words);
	uint64_t gen = 7;
	memcpy(f + 8, &v32, 4);
	memcpy(f + 12, &hs, 4);
	memcpy(f + 16, &disk, 8);
	memcpy(f + 24, &region, 8);
	memcpy(f + 32, &gen, 8);
	memcpy(f + 44, &bm, 4);
	uint64_t *bits = (uint64_t *)(void *)(f + 64);
	bits[0] |= 1ull << 1;                   /* bytes 512..1023: block 0 */
	bits[0] |= 1ull << 8;                   /* bytes 4096..4607: block 1 */
	bits[(nreg - 1) / 64] |= 1ull << ((nreg - 1) % 64); /* the last block */
	uint64_t c = XXH3_64bits(f + 64, 8 * words);
	memcpy(f + 48, &c, 8);
	c = XXH3_64bits(f, 56);
	memcpy(f + 56, &c, 8);
	th_write_file(act, f, 2 * slot);
	free(f);

	assert_int_equal(open_persist(&t, path, disk, 4096, 0), 0);
	assert_int_equal(stats(t).state, SITEREC_TRACKER_RECOVERED);
	struct exts e = dirty(t);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.v[0].offset, 0);
	assert_int_equal(e.v[0].length, 8192);
	assert_int_equal(e.v[1].offset, disk - 4096);
	assert_int_equal(e.v[1].length, 4096);
	exts_free(&e);
	siterec_tracker_free(t);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

/* State that cannot be read (here the activity record is a directory, so reading it
 * fails with EISDIR) fails the open with SITEREC_EIO and leaves the state file as
 * it was, instead of declaring the state lost and overwriting it. */
static void test_state_unreadable(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "t.trk");
	char *act = act_path_of(path);
	siterec_tracker *t = NULL;
	assert_int_equal(open_persist(&t, path, MiB, 4096, 0), 0);
	assert_int_equal(siterec_tracker_mark(t, 8192, 4096), 0);
	assert_int_equal(siterec_tracker_close(t), 0);
	siterec_tracker_free(t);
	size_t n0, n1;
	uint8_t *before = th_read_file(path, &n0);
	assert_int_equal(unlink(act), 0);
	assert_int_equal(mkdir(act, 0755), 0);
	t = (siterec_tracker *)0x1;
	th_assert_err(open_persist(&t, path, MiB, 4096, 0), SITEREC_EIO);
	assert_null(t);
	uint8_t *after = th_read_file(path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
	rmdir(act);
	free(act);
	free(path);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_mark_errors),
		cmocka_unit_test(test_widen_merge_clip),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_callback_abort),
		cmocka_unit_test(test_switch_commit_rollback),
		cmocka_unit_test(test_close_memory),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_concurrent_switch),
		cmocka_unit_test(test_save_concurrent),
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_clean_reopen),
		cmocka_unit_test(test_unclean_reopen),
		cmocka_unit_test(test_untrusted),
		cmocka_unit_test(test_torn_activity),
		cmocka_unit_test(test_mismatch_and_version),
		cmocka_unit_test(test_close_persistent),
		cmocka_unit_test(test_crash_kill9),
		cmocka_unit_test(test_activity_region_below_block),
		cmocka_unit_test(test_state_unreadable),
	};
	return cmocka_run_group_tests_name("tracker", tests, NULL, NULL);
}
