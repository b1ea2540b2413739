/* Hash scan: maps, scans through a callback and an fd, diff, save/load, errors. */
#include "helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ---- */

/* A disk in memory, read through siterec_read_fn. */
struct mdisk {
	uint8_t *data;
	uint64_t size;
	int calls;
	int fail_at;   /* fail the call with this index (1-based); 0: never */
	int fail_code;
};

static int mem_read(void *buf, size_t len, uint64_t off, void *p)
{
	struct mdisk *d = p;
	d->calls++;
	if (d->fail_at && d->calls == d->fail_at)
		return d->fail_code;
	assert_true(off + len <= d->size);
	memcpy(buf, d->data + off, len);
	return 0;
}

static struct mdisk *mdisk_new(uint64_t size, uint64_t seed)
{
	struct mdisk *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->data = malloc(size);
	assert_non_null(d->data);
	d->size = size;
	th_fill(d->data, size, seed);
	return d;
}

static void mdisk_free(struct mdisk *d)
{
	free(d->data);
	free(d);
}

/* Rewrite block b of the disk (whole or partial last block). */
static void mdisk_touch(struct mdisk *d, uint64_t b, uint32_t bs, uint64_t seed)
{
	uint64_t off = b * bs;
	uint64_t len = d->size - off < bs ? d->size - off : bs;
	th_fill(d->data + off, (size_t)len, seed);
}

#define MAX_EXT 4096
struct extents {
	siterec_extent e[MAX_EXT];
	int n;
	int abort_at;  /* return abort_code on call number abort_at (1-based); 0: never */
	int abort_code;
};

static int collect(uint64_t off, uint64_t len, void *p)
{
	struct extents *x = p;
	if (x->abort_at && x->n + 1 == x->abort_at)
		return x->abort_code;
	assert_true(x->n < MAX_EXT);
	assert_true(len > 0);
	/* in order and fully merged: never touching the previous extent */
	if (x->n)
		assert_true(x->e[x->n - 1].offset + x->e[x->n - 1].length < off);
	x->e[x->n].offset = off;
	x->e[x->n].length = len;
	x->n++;
	return 0;
}

static void extents_reset(struct extents *x) { memset(x, 0, sizeof(*x)); }

static void assert_extents(const struct extents *x, const siterec_extent *want, int n)
{
	assert_int_equal(x->n, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(x->e[i].offset, want[i].offset);
		assert_int_equal(x->e[i].length, want[i].length);
	}
}

static void assert_same_extents(const struct extents *a, const struct extents *b)
{
	assert_extents(a, b->e, b->n);
}

/* Expected extents for a set of changed blocks (sorted, unique). */
static int expected_runs(const uint64_t *blocks, int nb, uint32_t bs, uint64_t disk,
                         siterec_extent *out)
{
	int n = 0;
	for (int i = 0; i < nb; i++) {
		uint64_t off = blocks[i] * bs;
		uint64_t end = off + bs > disk ? disk : off + bs;
		if (n && out[n - 1].offset + out[n - 1].length == off)
			out[n - 1].length = end - out[n - 1].offset;
		else
			out[n++] = (siterec_extent){ off, end - off };
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Write the disk to a file and return an O_RDONLY fd; *path_out is malloc'd. */
static int write_disk(const char *dir, const char *name, const struct mdisk *d, char **path_out)
{
	char *path = th_path(dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d->data, d->size), (ssize_t)d->size);
	close(fd);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	if (path_out)
		*path_out = path;
	else
		free(path);
	return fd;
}

static siterec_hashscan_options opts_with(uint32_t flags, uint32_t threads)
{
	siterec_hashscan_options o;
	assert_int_equal(siterec_hashscan_options_init(&o, SITEREC_HASHSCAN_OPTIONS_VERSION), 0);
	o.flags = flags;
	o.threads = threads;
	return o;
}

static uint64_t known_of(const siterec_hashmap *m)
{
	uint64_t k = 0;
	assert_int_equal(siterec_hashmap_info(m, NULL, NULL, &k), 0);
	return k;
}

/* ---- tests ---- */

static void test_new_info(void **state)
{
	(void)state;
	siterec_hashmap *m = NULL;
	assert_int_equal(siterec_hashmap_new(&m, 10000, 4096), 0);
	assert_non_null(m);
	uint64_t ds = 0, kb = 99;
	uint32_t bs = 0;
	assert_int_equal(siterec_hashmap_info(m, &ds, &bs, &kb), 0);
	assert_int_equal(ds, 10000);
	assert_int_equal(bs, 4096);
	assert_int_equal(kb, 0);
	assert_int_equal(siterec_hashmap_info(m, NULL, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_info(m, &ds, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_info(m, NULL, &bs, NULL), 0);
	siterec_hashmap_free(m);
	siterec_hashmap_free(NULL);

	/* every allowed block size */
	for (uint32_t b = 512; b <= 1048576; b *= 2) {
		assert_int_equal(siterec_hashmap_new(&m, 1, b), 0);
		siterec_hashmap_free(m);
	}

	siterec_hashscan_options o = SITEREC_HASHSCAN_OPTIONS_INIT;
	assert_int_equal(o.version, SITEREC_HASHSCAN_OPTIONS_VERSION);
	memset(&o, 0xff, sizeof(o));
	assert_int_equal(siterec_hashscan_options_init(&o, 1), 0);
	assert_int_equal(o.version, 1);
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.threads, 0);
	assert_null(o.progress);
	assert_null(o.progress_payload);
}

static void test_bad_input(void **state)
{
	(void)state;
	siterec_hashmap *m = (siterec_hashmap *)0x1;
	th_assert_err(siterec_hashmap_new(NULL, 4096, 4096), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_new(&m, 0, 4096), SITEREC_EINVAL);
	assert_null(m);
	const uint32_t bad_bs[] = { 0, 1, 256, 3000, 4097, 2097152, 0x80000000u };
	for (size_t i = 0; i < sizeof(bad_bs) / sizeof(bad_bs[0]); i++)
		th_assert_err(siterec_hashmap_new(&m, 1 << 20, bad_bs[i]), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_info(NULL, NULL, NULL, NULL), SITEREC_EINVAL);

	siterec_hashscan_options o;
	th_assert_err(siterec_hashscan_options_init(NULL, 1), SITEREC_EINVAL);
	th_assert_err(siterec_hashscan_options_init(&o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_hashscan_options_init(&o, SITEREC_HASHSCAN_OPTIONS_VERSION + 1),
	              SITEREC_EVERSION);

	struct mdisk *d = mdisk_new(64 * 1024 + 100, 1);
	assert_int_equal(siterec_hashmap_new(&m, d->size, 4096), 0);
	th_assert_err(siterec_hashmap_scan(NULL, mem_read, d, NULL, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_scan(m, NULL, d, NULL, NULL, NULL), SITEREC_EINVAL);
	o = opts_with(0, 0);
	o.version = 0;
	th_assert_err(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), SITEREC_EVERSION);
	o.version = 99;
	th_assert_err(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), SITEREC_EVERSION);
	th_assert_err(siterec_hashmap_scan_fd(m, 0, &o, NULL, NULL), SITEREC_EVERSION);
	o = opts_with(0x80, 0);
	th_assert_err(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), SITEREC_EINVAL);
	assert_int_equal(d->calls, 0);

	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	th_assert_err(siterec_hashmap_scan_fd(NULL, fd, NULL, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_scan_fd(m, -1, NULL, NULL, NULL), SITEREC_EINVAL);
	/* a closed fd */
	int dead = dup(fd);
	close(dead);
	th_assert_err(siterec_hashmap_scan_fd(m, dead, NULL, NULL, NULL), SITEREC_EINVAL);
	/* a directory */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	th_assert_err(siterec_hashmap_scan_fd(m, dfd, NULL, NULL, NULL), SITEREC_EINVAL);
	close(dfd);
	/* write-only */
	char *p = th_path(dir, "disk");
	int wfd = open(p, O_WRONLY);
	assert_true(wfd >= 0);
	th_assert_err(siterec_hashmap_scan_fd(m, wfd, NULL, NULL, NULL), SITEREC_EINVAL);
	close(wfd);
	/* shorter than the map's disk: refused before any read, for every thread count */
	th_truncate(p, d->size - 1);
	for (uint32_t t = 1; t <= 4; t *= 2) {
		o = opts_with(SITEREC_HASHSCAN_UPDATE, t);
		th_assert_err(siterec_hashmap_scan_fd(m, fd, &o, NULL, NULL), SITEREC_ETRUNCATED);
	}
	th_truncate(p, 0);
	th_assert_err(siterec_hashmap_scan_fd(m, fd, NULL, NULL, NULL), SITEREC_ETRUNCATED);
	assert_int_equal(known_of(m), 0);
	/* longer is fine: the map covers the first disk_size bytes */
	th_truncate(p, d->size + 12345);
	assert_int_equal(siterec_hashmap_scan_fd(m, fd, NULL, NULL, NULL), 0);
	close(fd);

	th_assert_err(siterec_hashmap_save(NULL, p), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_save(m, NULL), SITEREC_EINVAL);
	siterec_hashmap *l = (siterec_hashmap *)0x1;
	th_assert_err(siterec_hashmap_load(NULL, p), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_load(&l, NULL), SITEREC_EINVAL);
	assert_null(l);
	char *missing = th_path(dir, "missing.map");
	th_assert_err(siterec_hashmap_load(&l, missing), SITEREC_ENOTFOUND);
	char *nodir = th_path(dir, "no/such/dir.map");
	assert_true(siterec_hashmap_save(m, nodir) < 0);
	assert_true(siterec_error_last()->message[0] != '\0');

	th_assert_err(siterec_hashmap_diff(NULL, m, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_hashmap_diff(m, NULL, NULL, NULL), SITEREC_EINVAL);

	free(missing);
	free(nodir);
	free(p);
	th_tmpdir_remove(dir);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

static void test_first_scan_and_update(void **state)
{
	(void)state;
	/* several read chunks, and a partial last block */
	const uint64_t size = (20ull << 20) + 1000;
	struct mdisk *d = mdisk_new(size, 2);
	siterec_hashmap *m;
	assert_int_equal(siterec_hashmap_new(&m, size, 4096), 0);
	struct extents *x = calloc(1, sizeof(*x));
	siterec_extent all = { 0, size };

	/* a fresh map knows nothing: all of it changed, and without UPDATE it stays so */
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
	assert_extents(x, &all, 1);
	assert_true(d->calls > 1);
	assert_int_equal(known_of(m), 0);

	/* UPDATE: reported once more, then the map knows every block */
	siterec_hashscan_options o = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &o, collect, x), 0);
	assert_extents(x, &all, 1);
	assert_int_equal(known_of(m), (size + 4095) / 4096);

	/* nothing changed since */
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
	assert_int_equal(x->n, 0);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &o, collect, x), 0);
	assert_int_equal(x->n, 0);
	/* NULL changed callback is allowed */
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), 0);

	free(x);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

/* Scattered changes (first block, adjacent blocks, runs across read-chunk
 * boundaries of both scans, last partial block): exact extents from the callback
 * scan and from the fd scan with 1, 2 and 4 threads. */
static void test_exact_extents(void **state)
{
	(void)state;
	const uint32_t bs = 4096;
	const uint64_t size = (12ull << 20) + 1000; /* 3073 blocks, last one 1000 bytes */
	const uint64_t last = size / bs;
	struct mdisk *d = mdisk_new(size, 3);
	siterec_hashmap *m;
	assert_int_equal(siterec_hashmap_new(&m, size, bs), 0);
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &up, NULL, NULL), 0);

	/* runs straddling 1, 4 and 8 MiB boundaries (read chunks are such sizes) */
	uint64_t blocks[] = { 0, 5, 6, 7, 100, 255, 256, 1000, 1023, 1024, 2047, 2048, 2049, 3000,
	                      last };
	int nb = (int)(sizeof(blocks) / sizeof(blocks[0]));
	for (int i = 0; i < nb; i++)
		mdisk_touch(d, blocks[i], bs, 1000 + (uint64_t)i);
	siterec_extent want[16];
	int nw = expected_runs(blocks, nb, bs, size, want);
	assert_int_equal(nw, 9);
	assert_int_equal(want[nw - 1].offset, last * bs);
	assert_int_equal(want[nw - 1].length, 1000);

	struct extents *x = calloc(1, sizeof(*x));
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
	assert_extents(x, want, nw);

	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	assert_int_equal(lseek(fd, 123, SEEK_SET), 123);
	for (uint32_t t = 1; t <= 4; t *= 2) {
		siterec_hashscan_options o = opts_with(0, t);
		extents_reset(x);
		assert_int_equal(siterec_hashmap_scan_fd(m, fd, &o, collect, x), 0);
		assert_extents(x, want, nw);
	}
	/* the fd's offset is left alone */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 123);

	/* one changed byte in the middle of a block is found */
	d->data[777 * bs + 1234] ^= 0x40;
	int fd2 = write_disk(dir, "disk2", d, NULL);
	siterec_hashscan_options o4 = opts_with(SITEREC_HASHSCAN_UPDATE, 4);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan_fd(m, fd2, &o4, collect, x), 0);
	assert_int_equal(x->n, nw + 1);
	assert_int_equal(known_of(m), last + 1);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
	assert_int_equal(x->n, 0);

	close(fd);
	close(fd2);
	th_tmpdir_remove(dir);
	free(x);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

/* Random changes at every block size class: callback scan, fd scan with 1, 2, 4
 * threads and the expected runs agree; maps built both ways are identical. */
static void check_random(uint32_t bs, uint64_t size, int nchanges, uint64_t seed)
{
	struct mdisk *d = mdisk_new(size, seed);
	uint64_t nblocks = (size + bs - 1) / bs;
	siterec_hashmap *m;
	assert_int_equal(siterec_hashmap_new(&m, size, bs), 0);
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &up, NULL, NULL), 0);
	assert_int_equal(known_of(m), nblocks);

	uint64_t *blocks = calloc((size_t)nchanges, sizeof(uint64_t));
	uint64_t r = seed;
	for (int i = 0; i < nchanges; i++)
		blocks[i] = th_rand(&r) % nblocks;
	qsort(blocks, (size_t)nchanges, sizeof(uint64_t), cmp_u64);
	int nb = 0;
	for (int i = 0; i < nchanges; i++)
		if (nb == 0 || blocks[nb - 1] != blocks[i])
			blocks[nb++] = blocks[i];
	for (int i = 0; i < nb; i++)
		mdisk_touch(d, blocks[i], bs, seed * 7919 + (uint64_t)i);
	siterec_extent *want = calloc((size_t)nb, sizeof(*want));
	int nw = expected_runs(blocks, nb, bs, size, want);

	struct extents *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y));
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
	assert_extents(x, want, nw);

	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	for (uint32_t t = 1; t <= 4; t *= 2) {
		siterec_hashscan_options o = opts_with(0, t);
		extents_reset(y);
		assert_int_equal(siterec_hashmap_scan_fd(m, fd, &o, collect, y), 0);
		assert_same_extents(y, x);
	}

	/* maps built from scratch by each scan kind are equal, and equal files */
	siterec_hashmap *a, *b;
	assert_int_equal(siterec_hashmap_new(&a, size, bs), 0);
	assert_int_equal(siterec_hashmap_new(&b, size, bs), 0);
	assert_int_equal(siterec_hashmap_scan(a, mem_read, d, &up, NULL, NULL), 0);
	siterec_hashscan_options up4 = opts_with(SITEREC_HASHSCAN_UPDATE, 4);
	assert_int_equal(siterec_hashmap_scan_fd(b, fd, &up4, NULL, NULL), 0);
	extents_reset(y);
	assert_int_equal(siterec_hashmap_diff(a, b, collect, y), 0);
	assert_int_equal(y->n, 0);
	char *pa = th_path(dir, "a.map"), *pb = th_path(dir, "b.map");
	assert_int_equal(siterec_hashmap_save(a, pa), 0);
	assert_int_equal(siterec_hashmap_save(b, pb), 0);
	assert_int_equal(th_files_equal(pa, pb), 0);
	/* and the old map differs from them exactly where the disk changed */
	extents_reset(y);
	assert_int_equal(siterec_hashmap_diff(m, a, collect, y), 0);
	assert_extents(y, want, nw);

	close(fd);
	free(pa);
	free(pb);
	th_tmpdir_remove(dir);
	siterec_hashmap_free(a);
	siterec_hashmap_free(b);
	free(x);
	free(y);
	free(want);
	free(blocks);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

static void test_block_sizes(void **state)
{
	(void)state;
	check_random(512, (11ull << 20) + 77, 600, 11);
	check_random(4096, (9ull << 20) + 4095, 200, 12);
	check_random(4096, 8ull << 20, 50, 13);         /* exact multiple of the chunk */
	check_random(1048576, (10ull << 20) + 1, 4, 14);  /* last block is one byte */
	check_random(1048576, 1048576, 1, 15);          /* a single block */
	check_random(512, 100, 1, 16);                  /* smaller than one block */
}

static void test_diff(void **state)
{
	(void)state;
	const uint32_t bs = 4096;
	const uint64_t size = 100 * 4096 + 10;
	struct mdisk *d = mdisk_new(size, 21);
	siterec_hashmap *a, *b, *c;
	assert_int_equal(siterec_hashmap_new(&a, size, bs), 0);
	assert_int_equal(siterec_hashmap_new(&b, size, bs), 0);
	struct extents *x = calloc(1, sizeof(*x));
	siterec_extent all = { 0, size };

	/* unknown on either side counts as changed */
	assert_int_equal(siterec_hashmap_diff(a, b, collect, x), 0);
	assert_extents(x, &all, 1);
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	assert_int_equal(siterec_hashmap_scan(a, mem_read, d, &up, NULL, NULL), 0);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_diff(a, b, collect, x), 0);
	assert_extents(x, &all, 1);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_diff(b, a, collect, x), 0);
	assert_extents(x, &all, 1);

	assert_int_equal(siterec_hashmap_scan(b, mem_read, d, &up, NULL, NULL), 0);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_diff(a, b, collect, x), 0);
	assert_int_equal(x->n, 0);
	assert_int_equal(siterec_hashmap_diff(a, a, NULL, NULL), 0);

	uint64_t blocks[] = { 0, 1, 63, 64, 65, 99, 100 };
	for (int i = 0; i < 7; i++)
		mdisk_touch(d, blocks[i], bs, 500 + (uint64_t)i);
	assert_int_equal(siterec_hashmap_scan(b, mem_read, d, &up, NULL, NULL), 0);
	siterec_extent want[8];
	int nw = expected_runs(blocks, 7, bs, size, want);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_diff(a, b, collect, x), 0);
	assert_extents(x, want, nw);

	/* a callback abort */
	extents_reset(x);
	x->abort_at = 2;
	x->abort_code = 42;
	th_assert_err(siterec_hashmap_diff(a, b, collect, x), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	assert_int_equal(x->n, 1);

	/* geometry mismatch */
	assert_int_equal(siterec_hashmap_new(&c, size, 512), 0);
	th_assert_err(siterec_hashmap_diff(a, c, collect, x), SITEREC_EINVAL);
	siterec_hashmap_free(c);
	assert_int_equal(siterec_hashmap_new(&c, size + 1, bs), 0);
	th_assert_err(siterec_hashmap_diff(c, a, collect, x), SITEREC_EINVAL);
	siterec_hashmap_free(c);

	free(x);
	siterec_hashmap_free(a);
	siterec_hashmap_free(b);
	mdisk_free(d);
}

static void test_save_load(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "disk.map");
	const uint64_t size = (5ull << 20) + 513;
	const uint32_t bs = 4096;
	const uint64_t nblocks = (size + bs - 1) / bs;
	struct mdisk *d = mdisk_new(size, 31);
	siterec_hashmap *m, *l;
	struct extents *x = calloc(1, sizeof(*x));

	/* a fresh map */
	assert_int_equal(siterec_hashmap_new(&m, size, bs), 0);
	assert_int_equal(siterec_hashmap_save(m, path), 0);
	assert_int_equal(th_file_size(path), 40 + (nblocks + 7) / 8 + 16 * nblocks + 8);
	assert_int_equal(siterec_hashmap_load(&l, path), 0);
	uint64_t ds = 0, kb = 1;
	uint32_t lbs = 0;
	assert_int_equal(siterec_hashmap_info(l, &ds, &lbs, &kb), 0);
	assert_int_equal(ds, size);
	assert_int_equal(lbs, bs);
	assert_int_equal(kb, 0);
	siterec_hashmap_free(l);

	/* a full one: the loaded map sees no change on the same disk */
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &up, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_save(m, path), 0); /* replaces the old file */
	assert_int_equal(siterec_hashmap_load(&l, path), 0);
	assert_int_equal(known_of(l), nblocks);
	assert_int_equal(siterec_hashmap_diff(m, l, collect, x), 0);
	assert_int_equal(x->n, 0);
	assert_int_equal(siterec_hashmap_scan(l, mem_read, d, NULL, collect, x), 0);
	assert_int_equal(x->n, 0);
	mdisk_touch(d, 3, bs, 99);
	assert_int_equal(siterec_hashmap_scan(l, mem_read, d, NULL, collect, x), 0);
	assert_int_equal(x->n, 1);
	assert_int_equal(x->e[0].offset, 3 * bs);
	siterec_hashmap_free(l);

	/* a partly known map (an UPDATE scan aborted by `changed`) keeps its known bits */
	siterec_hashmap *p;
	assert_int_equal(siterec_hashmap_load(&p, path), 0);
	mdisk_touch(d, 1000, bs, 98);
	extents_reset(x);
	x->abort_at = 1;
	x->abort_code = 6;
	th_assert_err(siterec_hashmap_scan(p, mem_read, d, &up, collect, x), SITEREC_EABORTED);
	assert_int_equal(known_of(p), nblocks - 1); /* block 3 undone, 1000 never reached */
	char *pp = th_path(dir, "partial.map");
	assert_int_equal(siterec_hashmap_save(p, pp), 0);
	assert_int_equal(siterec_hashmap_load(&l, pp), 0);
	assert_int_equal(known_of(l), nblocks - 1);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_diff(p, l, collect, x), 0);
	assert_int_equal(x->n, 1); /* only the unknown block */
	assert_int_equal(x->e[0].offset, 3 * bs);
	assert_int_equal(x->e[0].length, bs);
	extents_reset(x);
	assert_int_equal(siterec_hashmap_scan(l, mem_read, d, NULL, collect, x), 0);
	assert_int_equal(x->n, 2);
	assert_int_equal(x->e[0].offset, 3 * bs);
	assert_int_equal(x->e[1].offset, 1000 * bs);
	siterec_hashmap_free(l);
	siterec_hashmap_free(p);
	free(pp);

	char *p2 = th_path(dir, "copy.map");
	assert_int_equal(siterec_hashmap_save(m, p2), 0);
	assert_int_equal(th_files_equal(path, p2), 0);
	/* no temporary file is left behind */
	char *tmp = th_path(dir, "disk.map.tmp");
	assert_int_equal(th_file_size(tmp), -1);

	free(tmp);
	free(p2);
	free(x);
	siterec_hashmap_free(m);
	mdisk_free(d);
	free(path);
	th_tmpdir_remove(dir);
}

/* Rewrite a saved file with one change and expect load to fail with `want`. */
static void expect_load_fail(const char *good, const char *bad, int want)
{
	siterec_hashmap *l = (siterec_hashmap *)0x1;
	th_assert_err(siterec_hashmap_load(&l, bad), want);
	assert_null(l);
	(void)good;
}

static void copy_file(const char *from, const char *to)
{
	long long n = th_file_size(from);
	assert_true(n > 0);
	uint8_t *buf = malloc((size_t)n);
	int fd = open(from, O_RDONLY);
	assert_int_equal(read(fd, buf, (size_t)n), n);
	close(fd);
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write(fd, buf, (size_t)n), n);
	close(fd);
	free(buf);
}

static void put_byte(const char *path, uint64_t off, uint8_t v)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 1, (off_t)off), 1);
	close(fd);
}

static void test_corrupt_files(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *good = th_path(dir, "good.map"), *bad = th_path(dir, "bad.map");
	const uint64_t size = 1000 * 512 + 3; /* 1001 blocks: padding bits in the bitmap */
	struct mdisk *d = mdisk_new(size, 41);
	siterec_hashmap *m;
	assert_int_equal(siterec_hashmap_new(&m, size, 512), 0);
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &up, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_save(m, good), 0);
	long long len = th_file_size(good);
	assert_int_equal(len, 40 + 126 + 16 * 1001 + 8);

	/* a bit flip anywhere: header fields, bitmap, hashes, checksum */
	const uint64_t offs[] = { 0, 7, 16, 20, 24, 32, 36, 40, 100, 165, 166, 5000,
	                          (uint64_t)len - 9, (uint64_t)len - 8, (uint64_t)len - 1 };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		copy_file(good, bad);
		th_flip_bit(bad, offs[i], (int)(i % 8));
		expect_load_fail(good, bad, SITEREC_ECORRUPT);
	}
	/* wrong magic */
	copy_file(good, bad);
	put_byte(bad, 0, 'X');
	expect_load_fail(good, bad, SITEREC_ECORRUPT);
	assert_non_null(strstr(siterec_error_last()->message, "magic"));
	/* truncation, down to nothing */
	const long long cuts[] = { len - 1, len - 8, len - 100, 48, 40, 39, 8, 5, 0 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		copy_file(good, bad);
		th_truncate(bad, (uint64_t)cuts[i]);
		expect_load_fail(good, bad, SITEREC_ECORRUPT);
	}
	copy_file(good, bad);
	th_truncate(bad, (uint64_t)len - 100);
	expect_load_fail(good, bad, SITEREC_ECORRUPT);
	assert_non_null(strstr(siterec_error_last()->message, "truncated"));
	/* trailing garbage */
	copy_file(good, bad);
	th_truncate(bad, (uint64_t)len + 1);
	expect_load_fail(good, bad, SITEREC_ECORRUPT);
	/* a future format version is refused as such (version is LE32 at offset 8) */
	copy_file(good, bad);
	put_byte(bad, 8, 2);
	expect_load_fail(good, bad, SITEREC_EVERSION);
	put_byte(bad, 8, 0);
	put_byte(bad, 11, 1);
	expect_load_fail(good, bad, SITEREC_EVERSION);
	/* version 0 never existed */
	copy_file(good, bad);
	put_byte(bad, 8, 0);
	expect_load_fail(good, bad, SITEREC_ECORRUPT);
	/* not a map at all */
	int fd = write_disk(dir, "bad.map", d, NULL);
	close(fd);
	expect_load_fail(good, bad, SITEREC_ECORRUPT);
	/* the good file still loads */
	siterec_hashmap *l;
	assert_int_equal(siterec_hashmap_load(&l, good), 0);
	assert_int_equal(known_of(l), 1001);
	siterec_hashmap_free(l);

	mdisk_free(d);
	siterec_hashmap_free(m);
	free(good);
	free(bad);
	th_tmpdir_remove(dir);
}

struct prog {
	int calls;
	int abort_at;
	int abort_code;
	uint64_t last;
	uint64_t total;
};

static int on_progress(uint64_t done, uint64_t total, void *p)
{
	struct prog *g = p;
	g->calls++;
	assert_true(done > g->last);
	assert_true(done <= total);
	g->last = done;
	g->total = total;
	return g->abort_at && g->calls == g->abort_at ? g->abort_code : 0;
}

static void test_progress(void **state)
{
	(void)state;
	const uint64_t size = (17ull << 20) + 5;
	struct mdisk *d = mdisk_new(size, 51);
	siterec_hashmap *m;
	assert_int_equal(siterec_hashmap_new(&m, size, 4096), 0);
	struct prog g = { 0 };
	siterec_hashscan_options o = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	o.progress = on_progress;
	o.progress_payload = &g;
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), 0);
	assert_true(g.calls >= 2);
	assert_int_equal(g.last, size);
	assert_int_equal(g.total, size);

	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	for (uint32_t t = 1; t <= 4; t *= 2) {
		memset(&g, 0, sizeof(g));
		o.threads = t;
		assert_int_equal(siterec_hashmap_scan_fd(m, fd, &o, NULL, NULL), 0);
		assert_true(g.calls >= 2);
		assert_int_equal(g.last, size);
		assert_int_equal(g.total, size);
	}
	close(fd);
	th_tmpdir_remove(dir);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

/* Every callback can abort: SITEREC_EABORTED with its code kept. After an
 * aborted UPDATE scan, the map still reports every change not delivered. */
static void test_callbacks_abort(void **state)
{
	(void)state;
	const uint32_t bs = 4096;
	const uint64_t size = 24ull << 20; /* several read chunks of any size 1..8 MiB */
	const uint64_t nblocks = size / bs;
	struct mdisk *d = mdisk_new(size, 61);
	char *dir = th_tmpdir();
	siterec_hashmap *m;
	siterec_hashscan_options up = opts_with(SITEREC_HASHSCAN_UPDATE, 0);
	struct extents *x = calloc(1, sizeof(*x));
	struct prog g = { 0 };

	/* read callback */
	assert_int_equal(siterec_hashmap_new(&m, size, bs), 0);
	d->fail_at = 2;
	d->fail_code = -77;
	th_assert_err(siterec_hashmap_scan(m, mem_read, d, &up, collect, x), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, -77);
	/* the first chunk was one open run: committed but not delivered, so undone */
	assert_int_equal(x->n, 0);
	assert_int_equal(known_of(m), 0);
	d->fail_at = 0;
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &up, NULL, NULL), 0);
	assert_int_equal(known_of(m), nblocks);

	/* changed callback: abort on the 2nd of 4 runs, in each scan kind */
	uint64_t blocks[] = { 10, 3000, 3001, 4500, 6000 };
	for (int i = 0; i < 5; i++)
		mdisk_touch(d, blocks[i], bs, 700 + (uint64_t)i);
	siterec_extent want[5];
	int nw = expected_runs(blocks, 5, bs, size, want);
	assert_int_equal(nw, 4);
	int fd = write_disk(dir, "disk", d, NULL);
	for (int kind = 0; kind < 4; kind++) {
		siterec_hashmap *c;
		char *mp = th_path(dir, "m.map");
		assert_int_equal(siterec_hashmap_save(m, mp), 0);
		assert_int_equal(siterec_hashmap_load(&c, mp), 0);
		free(mp);
		extents_reset(x);
		x->abort_at = 2;
		x->abort_code = 9;
		siterec_hashscan_options o = up;
		o.threads = kind == 0 ? 0 : (uint32_t)1 << (kind - 1); /* 1, 2, 4 */
		int rc = kind == 0 ? siterec_hashmap_scan(c, mem_read, d, &o, collect, x)
		                   : siterec_hashmap_scan_fd(c, fd, &o, collect, x);
		assert_int_equal(rc, SITEREC_EABORTED);
		assert_int_equal(siterec_error_last()->callback_code, 9);
		assert_int_equal(x->n, 1);
		/* the first run was delivered and is now known; the rest is reported again */
		extents_reset(x);
		assert_int_equal(siterec_hashmap_scan(c, mem_read, d, NULL, collect, x), 0);
		assert_extents(x, want + 1, nw - 1);
		siterec_hashmap_free(c);
	}

	/* progress callback, every scan kind, aborting at the 2nd call */
	for (int kind = 0; kind < 4; kind++) {
		siterec_hashmap *c;
		assert_int_equal(siterec_hashmap_new(&c, size, bs), 0);
		memset(&g, 0, sizeof(g));
		g.abort_at = 2;
		g.abort_code = 1234;
		siterec_hashscan_options o = up;
		o.progress = on_progress;
		o.progress_payload = &g;
		o.threads = kind == 0 ? 0 : (uint32_t)1 << (kind - 1);
		extents_reset(x);
		int rc = kind == 0 ? siterec_hashmap_scan(c, mem_read, d, &o, collect, x)
		                   : siterec_hashmap_scan_fd(c, fd, &o, collect, x);
		assert_int_equal(rc, SITEREC_EABORTED);
		assert_int_equal(siterec_error_last()->callback_code, 1234);
		assert_int_equal(g.calls, 2);
		/* one open run from the start, never delivered: nothing is known */
		assert_int_equal(x->n, 0);
		assert_int_equal(known_of(c), 0);
		siterec_hashmap_free(c);
	}

	/* progress abort after a delivered run: what was delivered stays known */
	{
		siterec_hashmap *c;
		assert_int_equal(siterec_hashmap_new(&c, size, bs), 0);
		assert_int_equal(siterec_hashmap_scan(c, mem_read, d, &up, NULL, NULL), 0);
		for (int i = 0; i < 5; i++)
			mdisk_touch(d, blocks[i], bs, 800 + (uint64_t)i);
		memset(&g, 0, sizeof(g));
		g.abort_at = 2; /* after 16 MiB: runs at blocks 10 and 3000 were seen */
		g.abort_code = 5;
		siterec_hashscan_options o = up;
		o.progress = on_progress;
		o.progress_payload = &g;
		extents_reset(x);
		th_assert_err(siterec_hashmap_scan(c, mem_read, d, &o, collect, x), SITEREC_EABORTED);
		assert_int_equal(siterec_error_last()->callback_code, 5);
		assert_int_equal(x->n, 1); /* block 10; the 3000 run was still open */
		extents_reset(x);
		assert_int_equal(siterec_hashmap_scan(c, mem_read, d, NULL, collect, x), 0);
		assert_extents(x, want + 1, nw - 1);
		siterec_hashmap_free(c);
	}

	/* read callback failing in the middle, after runs were delivered */
	{
		siterec_hashmap *c;
		assert_int_equal(siterec_hashmap_new(&c, size, bs), 0);
		assert_int_equal(siterec_hashmap_scan(c, mem_read, d, &up, NULL, NULL), 0);
		for (int i = 0; i < 5; i++)
			mdisk_touch(d, blocks[i], bs, 900 + (uint64_t)i);
		d->calls = 0;
		d->fail_at = 3;
		d->fail_code = 3;
		extents_reset(x);
		th_assert_err(siterec_hashmap_scan(c, mem_read, d, &up, collect, x), SITEREC_EABORTED);
		assert_int_equal(siterec_error_last()->callback_code, 3);
		assert_int_equal(x->n, 1);
		d->fail_at = 0;
		extents_reset(x);
		assert_int_equal(siterec_hashmap_scan(c, mem_read, d, NULL, collect, x), 0);
		assert_extents(x, want + 1, nw - 1);
		siterec_hashmap_free(c);
	}

	close(fd);
	free(x);
	th_tmpdir_remove(dir);
	siterec_hashmap_free(m);
	mdisk_free(d);
}

/* The file shrinks while it is scanned (truncated from the progress callback):
 * the read that hits the end fails cleanly with SITEREC_ETRUNCATED. */
struct shrink {
	const char *path;
	int calls;
};

static int shrink_progress(uint64_t done, uint64_t total, void *p)
{
	(void)done;
	(void)total;
	struct shrink *k = p;
	if (++k->calls == 1)
		th_truncate(k->path, 4096);
	return 0;
}

static void test_fd_shrinks(void **state)
{
	(void)state;
	const uint64_t size = 64ull << 20;
	struct mdisk *d = mdisk_new(size, 91);
	char *dir = th_tmpdir();
	for (uint32_t t = 1; t <= 4; t *= 2) {
		char *path;
		int fd = write_disk(dir, "disk", d, &path);
		siterec_hashmap *m;
		assert_int_equal(siterec_hashmap_new(&m, size, 4096), 0);
		struct shrink k = { path, 0 };
		siterec_hashscan_options o = opts_with(SITEREC_HASHSCAN_UPDATE, t);
		o.progress = shrink_progress;
		o.progress_payload = &k;
		struct extents *x = calloc(1, sizeof(*x));
		th_assert_err(siterec_hashmap_scan_fd(m, fd, &o, collect, x), SITEREC_ETRUNCATED);
		assert_int_equal(x->n, 0);
		assert_int_equal(known_of(m), 0);
		free(x);
		siterec_hashmap_free(m);
		close(fd);
		free(path);
	}
	th_tmpdir_remove(dir);
	mdisk_free(d);
}

/* Thread counts beyond the chunk count or the cap, and the default. */
static void test_thread_counts(void **state)
{
	(void)state;
	const uint64_t size = (13ull << 20) + 100;
	struct mdisk *d = mdisk_new(size, 71);
	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	const uint32_t counts[] = { 0, 1, 3, 8, 64, 1000 };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		siterec_hashmap *m;
		assert_int_equal(siterec_hashmap_new(&m, size, 512), 0);
		siterec_hashscan_options o = opts_with(SITEREC_HASHSCAN_UPDATE, counts[i]);
		assert_int_equal(siterec_hashmap_scan_fd(m, fd, &o, NULL, NULL), 0);
		assert_int_equal(known_of(m), (size + 511) / 512);
		struct extents *x = calloc(1, sizeof(*x));
		assert_int_equal(siterec_hashmap_scan(m, mem_read, d, NULL, collect, x), 0);
		assert_int_equal(x->n, 0);
		free(x);
		siterec_hashmap_free(m);
	}
	close(fd);
	th_tmpdir_remove(dir);
	mdisk_free(d);
}

/* The caller's allocator sees every allocation, and everything is given back. */
static int n_alloc, n_freed;
static void *cnt_malloc(size_t n, void *p) { (void)p; n_alloc++; return malloc(n); }
static void *cnt_realloc(void *q, size_t n, void *p) { (void)p; if (!q) n_alloc++; return realloc(q, n); }
static void cnt_free(void *q, void *p) { (void)p; if (q) n_freed++; free(q); }

static void test_allocator(void **state)
{
	(void)state;
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, cnt_malloc, cnt_realloc, cnt_free, NULL };
	const uint64_t size = (2ull << 20) + 1;
	struct mdisk *d = mdisk_new(size, 81);
	char *dir = th_tmpdir();
	int fd = write_disk(dir, "disk", d, NULL);
	char *path = th_path(dir, "m.map");
	assert_int_equal(siterec_set_allocator(&a), 0);
	n_alloc = n_freed = 0;
	siterec_hashmap *m, *l;
	assert_int_equal(siterec_hashmap_new(&m, size, 4096), 0);
	siterec_hashscan_options o = opts_with(SITEREC_HASHSCAN_UPDATE, 2);
	assert_int_equal(siterec_hashmap_scan_fd(m, fd, &o, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_scan(m, mem_read, d, &o, NULL, NULL), 0);
	assert_int_equal(siterec_hashmap_save(m, path), 0);
	assert_int_equal(siterec_hashmap_load(&l, path), 0);
	siterec_hashmap_free(l);
	siterec_hashmap_free(m);
	assert_int_equal(siterec_set_allocator(NULL), 0);
	assert_true(n_alloc > 0);
	assert_int_equal(n_alloc, n_freed);
	close(fd);
	free(path);
	th_tmpdir_remove(dir);
	mdisk_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_info),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_first_scan_and_update),
		cmocka_unit_test(test_exact_extents),
		cmocka_unit_test(test_block_sizes),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_callbacks_abort),
		cmocka_unit_test(test_fd_shrinks),
		cmocka_unit_test(test_thread_counts),
		cmocka_unit_test(test_allocator),
	};
	return cmocka_run_group_tests_name("hashscan", tests, NULL, NULL);
}
