/* Delta log: writing, reading, torn tails, damage, coalesce, apply, frozen epochs.
 * Public API only; the byte layout (doc/formats.md) is used to locate records and
 * to forge headers where a test needs a valid checksum on damaged contents. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MiB (1024ull * 1024)
#define HDR 128u
#define RHDR 64u

static const uint8_t DISK_ID[16] = { 'd', 'i', 's', 'k', '-', 'i', 'd', '-', '0', '1',
                                     '2', '3', '4', '5', '6', '7' };

static void mkopts(siterec_dlog_options *o, uint64_t disk)
{
	assert_int_equal(siterec_dlog_options_init(o, SITEREC_DLOG_OPTIONS_VERSION), 0);
	o->disk_size = disk;
	memcpy(o->disk_id, DISK_ID, 16);
}

static siterec_dlog *mklog(const char *path, uint64_t disk, uint32_t flags, uint64_t first_seq)
{
	siterec_dlog_options o;
	mkopts(&o, disk);
	o.flags = flags;
	o.first_seq = first_seq;
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, path, &o), 0);
	assert_non_null(w);
	return w;
}

static uint8_t *xbuf(size_t n, uint64_t seed)
{
	uint8_t *b = malloc(n ? n : 1);
	assert_non_null(b);
	th_fill(b, n, seed);
	return b;
}



static void copy_file(const char *src, const char *dst)
{
	size_t n;
	void *b = th_read_file(src, &n);
	th_write_file(dst, b, n);
	free(b);
}

/* File offsets of the records (seal included) by walking the layout. */
static size_t rec_positions(const char *path, uint64_t *pos, size_t max)
{
	size_t len;
	uint8_t *b = th_read_file(path, &len);
	size_t n = 0;
	uint64_t p = HDR;
	while (p + RHDR <= len && n < max) {
		uint32_t pl;
		memcpy(&pl, b + p + 32, 4);
		pos[n++] = p;
		p += RHDR + pl;
	}
	free(b);
	return n;
}

/* Recompute a record's header check and checksum after a test edited it. */
static void fix_record(uint8_t *rec)
{
	uint32_t pl;
	memcpy(&pl, rec + 32, 4);
	uint64_t hc = XXH3_64bits(rec, 48);
	memcpy(rec + 48, &hc, 8);
	uint64_t two[2] = { hc, XXH3_64bits(rec + RHDR, pl) };
	uint64_t ck = XXH3_64bits(two, 16);
	memcpy(rec + 56, &ck, 8);
}

struct rec_copy {
	uint64_t seq, off, len;
	int zero;
	uint64_t hash;
};

/* Read every record; returns the final reader_next code (0 or an error). */
static int read_all(const char *path, const siterec_dlog_options *o, struct rec_copy *out,
                    size_t max, size_t *n, siterec_dlog_info *info)
{
	siterec_dlog_reader *r = NULL;
	int rc = siterec_dlog_reader_open(&r, path, o);
	if (rc)
		return rc;
	siterec_dlog_record rec;
	*n = 0;
	while ((rc = siterec_dlog_reader_next(r, &rec)) == 1) {
		if (*n < max) {
			out[*n].seq = rec.seq;
			out[*n].off = rec.offset;
			out[*n].len = rec.length;
			out[*n].zero = (int)rec.zero;
			if (rec.zero)
				assert_null(rec.data);
			out[*n].hash = rec.zero ? 0 : XXH3_64bits(rec.data, (size_t)rec.length);
		}
		(*n)++;
	}
	if (info) {
		info->version = SITEREC_DLOG_INFO_VERSION;
		assert_int_equal(siterec_dlog_reader_info(r, info), 0);
	}
	siterec_dlog_reader_free(r);
	return rc;
}

/* ---- basic writing and reading ---- */

static void test_roundtrip(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "a.dlog");
	siterec_dlog *w = mklog(path, 64 * MiB, 0, 0);
	assert_int_equal(siterec_dlog_next_seq(w), 1);
	uint64_t offs[] = { 0, 4096, 8 * MiB, 64 * MiB - 512, 12345 * 512ull, 512 };
	size_t lens[] = { 4096, 512, MiB + 512, 512, 300 * 1024, 2 * MiB };
	uint64_t seq = 0;
	for (int i = 0; i < 6; i++) {
		uint8_t *d = xbuf(lens[i], (uint64_t)i + 1);
		assert_int_equal(siterec_dlog_append(w, offs[i], d, lens[i], &seq), 0);
		assert_int_equal(seq, (uint64_t)i + 1);
		free(d);
	}
	assert_int_equal(siterec_dlog_append_zero(w, 32 * MiB, 16 * MiB, &seq), 0);
	assert_int_equal(seq, 7);
	assert_int_equal(siterec_dlog_next_seq(w), 8);
	assert_int_equal(siterec_dlog_seal(w), 0);
	th_assert_err(siterec_dlog_seal(w), SITEREC_ESTATE);
	assert_int_equal(siterec_dlog_sync(w), 0);
	siterec_dlog_free(w);

	struct rec_copy rc[16];
	size_t n;
	siterec_dlog_info info;
	assert_int_equal(read_all(path, NULL, rc, 16, &n, &info), 0);
	assert_int_equal(n, 7);
	for (int i = 0; i < 6; i++) {
		uint8_t *d = xbuf(lens[i], (uint64_t)i + 1);
		assert_int_equal(rc[i].seq, (uint64_t)i + 1);
		assert_int_equal(rc[i].off, offs[i]);
		assert_int_equal(rc[i].len, lens[i]);
		assert_false(rc[i].zero);
		assert_true(rc[i].hash == XXH3_64bits(d, lens[i]));
		free(d);
	}
	assert_true(rc[6].zero);
	assert_int_equal(rc[6].len, 16 * MiB);
	assert_int_equal(info.format_version, 1);
	assert_int_equal(info.disk_size, 64 * MiB);
	assert_memory_equal(info.disk_id, DISK_ID, 16);
	assert_int_equal(info.block_size, 4096);
	assert_int_equal(info.encrypted, 0);
	assert_int_equal(info.first_seq, 1);
	assert_int_equal(info.last_seq, 7);
	assert_int_equal(info.records, 7);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.torn, 0);
	assert_int_equal(info.file_bytes, (uint64_t)th_file_size(path));
	uint64_t bytes = 16 * MiB;
	for (int i = 0; i < 6; i++)
		bytes += lens[i];
	assert_int_equal(info.data_bytes, bytes);

	siterec_dlog_info vi;
	vi.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(path, NULL, &vi), 0);
	assert_int_equal(vi.records, 7);
	assert_int_equal(siterec_dlog_verify(path, NULL, NULL), 0);

	/* reader after the end keeps returning 0 */
	siterec_dlog_reader *r;
	siterec_dlog_record rec;
	assert_int_equal(siterec_dlog_reader_open(&r, path, NULL), 0);
	while (siterec_dlog_reader_next(r, &rec) == 1)
		;
	assert_int_equal(siterec_dlog_reader_next(r, &rec), 0);
	siterec_dlog_reader_free(r);

	free(path);
	th_tmpdir_remove(dir);
}

static void test_seq_numbering(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "s.dlog");
	siterec_dlog *w = mklog(path, 16 * MiB, 0, 1000);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 7);
	uint64_t seq;
	for (uint64_t i = 0; i < 100; i++) {
		assert_int_equal(siterec_dlog_next_seq(w), 1000 + i);
		assert_int_equal(siterec_dlog_append(w, (i * 4096) % (16 * MiB), d, 4096, &seq), 0);
		assert_int_equal(seq, 1000 + i);
	}
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	siterec_dlog_free(w); /* unsealed, buffered records written */
	struct rec_copy rc[128];
	size_t n;
	siterec_dlog_info info;
	assert_int_equal(read_all(path, NULL, rc, 128, &n, &info), 0);
	assert_int_equal(n, 101);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rc[i].seq, 1000 + i);
	assert_int_equal(info.first_seq, 1000);
	assert_int_equal(info.last_seq, 1100);
	assert_int_equal(info.sealed, 0);
	assert_int_equal(info.torn, 0);
	assert_int_equal(siterec_dlog_verify(path, NULL, NULL), 0);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_split(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "split.dlog");
	siterec_dlog *w = mklog(path, 64 * MiB, 0, 0);
	size_t len = 2 * SITEREC_DLOG_MAX_RECORD + 1024;
	uint8_t *d = xbuf(len, 99);
	uint64_t seq;
	assert_int_equal(siterec_dlog_append(w, MiB, d, len, &seq), 0);
	assert_int_equal(seq, 3);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	siterec_dlog_reader *r;
	assert_int_equal(siterec_dlog_reader_open(&r, path, NULL), 0);
	siterec_dlog_record rec;
	uint64_t expect_off = MiB;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(siterec_dlog_reader_next(r, &rec), 1);
		assert_int_equal(rec.offset, expect_off);
		uint64_t want = i < 2 ? SITEREC_DLOG_MAX_RECORD : 1024;
		assert_int_equal(rec.length, want);
		assert_memory_equal(rec.data, d + (expect_off - MiB), (size_t)want);
		expect_off += want;
	}
	assert_int_equal(siterec_dlog_reader_next(r, &rec), 0);
	siterec_dlog_reader_free(r);
	free(d);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_zero_records(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p1 = th_path(dir, "z1.dlog"), *p2 = th_path(dir, "z2.dlog");
	uint8_t *zeros = calloc(1, 5 * MiB);
	uint8_t *d = xbuf(8192, 3);
	for (int pass = 0; pass < 2; pass++) {
		siterec_dlog *w = mklog(pass ? p2 : p1, 64 * MiB, pass ? SITEREC_DLOG_DETECT_ZERO : 0, 0);
		assert_int_equal(siterec_dlog_append(w, 0, zeros, 8192, NULL), 0);
		assert_int_equal(siterec_dlog_append(w, 8192, d, 8192, NULL), 0);
		/* 5 MiB of zeros: split in 4 MiB + 1 MiB */
		assert_int_equal(siterec_dlog_append(w, 16 * MiB, zeros, 5 * MiB, NULL), 0);
		assert_int_equal(siterec_dlog_append_zero(w, 40 * MiB, 24 * MiB, NULL), 0);
		assert_int_equal(siterec_dlog_seal(w), 0);
		siterec_dlog_free(w);
	}
	struct rec_copy rc[8];
	size_t n;
	assert_int_equal(read_all(p1, NULL, rc, 8, &n, NULL), 0);
	assert_int_equal(n, 5);
	assert_false(rc[0].zero);
	assert_false(rc[1].zero);
	assert_false(rc[2].zero);
	assert_false(rc[3].zero);
	assert_true(rc[4].zero);
	assert_int_equal(read_all(p2, NULL, rc, 8, &n, NULL), 0);
	assert_int_equal(n, 5);
	assert_true(rc[0].zero);
	assert_int_equal(rc[0].len, 8192);
	assert_false(rc[1].zero);
	assert_true(rc[2].zero);
	assert_int_equal(rc[2].len, SITEREC_DLOG_MAX_RECORD);
	assert_true(rc[3].zero);
	assert_int_equal(rc[3].len, MiB);
	assert_true(rc[4].zero);
	assert_int_equal(rc[4].off, 40 * MiB);
	assert_int_equal(rc[4].len, 24 * MiB);
	/* zero records store no data: the detecting log is much smaller */
	assert_true(th_file_size(p2) < 20000);
	assert_true(th_file_size(p1) > 5 * (long long)MiB);
	free(zeros);
	free(d);
	free(p1);
	free(p2);
	th_tmpdir_remove(dir);
}

/* Small buffer: the copy path, the direct-write path and flushes in between. */
static void test_buffer_paths(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "b.dlog");
	siterec_dlog_options o;
	mkopts(&o, 64 * MiB);
	o.buffer_size = 1; /* raised to the minimum */
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, path, &o), 0);
	uint64_t s = 5;
	size_t sizes[] = { 512, 4096, 3584, 1024 * 1024, 512, 256 * 1024, 255 * 1024, 4 * MiB,
	                   8192 };
	uint64_t off = 0;
	for (int i = 0; i < 9; i++) {
		uint8_t *d = xbuf(sizes[i], th_rand(&s));
		assert_int_equal(siterec_dlog_append(w, off, d, sizes[i], NULL), 0);
		off += sizes[i];
		free(d);
	}
	siterec_dlog_free(w);
	struct rec_copy rc[16];
	size_t n;
	assert_int_equal(read_all(path, NULL, rc, 16, &n, NULL), 0);
	assert_int_equal(n, 9);
	s = 5;
	off = 0;
	for (int i = 0; i < 9; i++) {
		uint8_t *d = xbuf(sizes[i], th_rand(&s));
		assert_int_equal(rc[i].off, off);
		assert_true(rc[i].hash == XXH3_64bits(d, sizes[i]));
		off += sizes[i];
		free(d);
	}
	o.buffer_size = 2u << 30;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_sync_each(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "se.dlog");
	siterec_dlog *w = mklog(path, 16 * MiB, SITEREC_DLOG_SYNC_EACH, 0);
	uint8_t d[512];
	th_fill(d, sizeof(d), 1);
	assert_int_equal(siterec_dlog_append(w, 0, d, 512, NULL), 0);
	/* synced: already in the file while the handle is open */
	assert_int_equal(th_file_size(path), HDR + RHDR + 512);
	assert_int_equal(siterec_dlog_append_zero(w, 512, 512, NULL), 0);
	assert_int_equal(th_file_size(path), HDR + 2 * RHDR + 512);
	siterec_dlog_free(w);

	free(path);
	path = th_path(dir, "buffered.dlog");
	w = mklog(path, 16 * MiB, 0, 0);
	assert_int_equal(siterec_dlog_append(w, 0, d, 512, NULL), 0);
	assert_int_equal(th_file_size(path), HDR); /* still buffered */
	assert_int_equal(siterec_dlog_sync(w), 0);
	assert_int_equal(th_file_size(path), HDR + RHDR + 512);
	siterec_dlog_free(w);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_rotate(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p1 = th_path(dir, "r1.dlog"), *p2 = th_path(dir, "r2.dlog"), *p3 = th_path(dir, "r3.dlog");
	siterec_dlog *w = mklog(p1, 16 * MiB, 0, 10);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 11);
	for (int i = 0; i < 5; i++)
		assert_int_equal(siterec_dlog_append(w, (uint64_t)i * 4096, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_rotate(w, p2), 0);
	assert_int_equal(siterec_dlog_next_seq(w), 15);
	uint64_t seq;
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, &seq), 0);
	assert_int_equal(seq, 15);
	/* rotating onto an existing file: the current log is sealed, appends refused */
	th_assert_err(siterec_dlog_rotate(w, p1), SITEREC_EEXISTS);
	th_assert_err(siterec_dlog_append(w, 0, d, 4096, NULL), SITEREC_ESTATE);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(p2, NULL, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.first_seq, 15);
	assert_int_equal(info.last_seq, 15);
	/* a later rotate opens the next file */
	assert_int_equal(siterec_dlog_rotate(w, p3), 0);
	assert_int_equal(siterec_dlog_append(w, 8192, d, 4096, &seq), 0);
	assert_int_equal(seq, 16);
	siterec_dlog_free(w);

	assert_int_equal(siterec_dlog_verify(p1, NULL, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.first_seq, 10);
	assert_int_equal(info.last_seq, 14);
	assert_int_equal(info.records, 5);
	assert_int_equal(siterec_dlog_verify(p3, NULL, &info), 0);
	assert_int_equal(info.sealed, 0);
	assert_int_equal(info.first_seq, 16);
	assert_int_equal(info.last_seq, 16);
	assert_memory_equal(info.disk_id, DISK_ID, 16);
	th_assert_err(siterec_dlog_rotate(NULL, p3), SITEREC_EINVAL);
	free(p1);
	free(p2);
	free(p3);
	th_tmpdir_remove(dir);
}

static void test_reopen(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "re.dlog");
	siterec_dlog *w = mklog(path, 16 * MiB, 0, 0);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 12);
	for (int i = 0; i < 3; i++)
		assert_int_equal(siterec_dlog_append(w, (uint64_t)i * 4096, d, 4096, NULL), 0);
	siterec_dlog_free(w);

	int torn = -1;
	siterec_dlog_options o;
	siterec_dlog_options_init(&o, SITEREC_DLOG_OPTIONS_VERSION);
	assert_int_equal(siterec_dlog_reopen(&w, path, &o, &torn), 0);
	assert_int_equal(torn, 0);
	assert_int_equal(siterec_dlog_next_seq(w), 4);
	/* one writer at a time */
	siterec_dlog *w2 = NULL;
	th_assert_err(siterec_dlog_reopen(&w2, path, NULL, NULL), SITEREC_EBUSY);
	assert_null(w2);
	uint64_t seq;
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, &seq), 0);
	assert_int_equal(seq, 4);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(path, NULL, &info), 0);
	assert_int_equal(info.records, 4);
	assert_int_equal(info.sealed, 1);
	/* sealed: no reopen */
	th_assert_err(siterec_dlog_reopen(&w, path, NULL, NULL), SITEREC_ESTATE);
	assert_null(w);
	char *missing = th_path(dir, "missing.dlog");
	th_assert_err(siterec_dlog_reopen(&w, missing, NULL, NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_dlog_reopen(NULL, path, NULL, NULL), SITEREC_EINVAL);
	free(missing);
	free(path);
	th_tmpdir_remove(dir);
}

/* A write error (here: the file size limit) makes the handle unusable; the file
 * keeps its whole records and a reopen cuts the partial one. */
static void test_write_error(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "full.dlog");
	siterec_dlog *w = mklog(path, 64 * MiB, 0, 0);
	uint8_t *d = xbuf(MiB, 1);
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_sync(w), 0);
	long long good = th_file_size(path);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)good + 100000;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = 0;
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = siterec_dlog_append(w, (uint64_t)i * MiB, d, MiB, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, SITEREC_EIO);
	assert_int_equal(siterec_error_last()->os_error, EFBIG);
	th_assert_err(siterec_dlog_append(w, 0, d, 512, NULL), SITEREC_ESTATE);
	th_assert_err(siterec_dlog_sync(w), SITEREC_ESTATE);
	th_assert_err(siterec_dlog_seal(w), SITEREC_ESTATE);
	th_assert_err(siterec_dlog_rotate(w, path), SITEREC_ESTATE);
	siterec_dlog_free(w);
	th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ETRUNCATED);
	int torn = 0;
	assert_int_equal(siterec_dlog_reopen(&w, path, NULL, &torn), 0);
	assert_int_equal(torn, 1);
	assert_int_equal(siterec_dlog_next_seq(w), 2);
	assert_int_equal(th_file_size(path), good);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	assert_int_equal(siterec_dlog_verify(path, NULL, NULL), 0);
	free(d);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- torn tails ---- */

static void check_torn(const char *path, uint64_t good_end, size_t good_records)
{
	struct rec_copy rc[16];
	size_t n;
	siterec_dlog_info info;
	assert_int_equal(read_all(path, NULL, rc, 16, &n, &info), 0);
	assert_int_equal(n, good_records);
	assert_int_equal(info.torn, 1);
	assert_int_equal(info.sealed, 0);
	assert_int_equal(info.file_bytes, good_end);
	assert_int_equal(info.records, good_records);
	info.version = SITEREC_DLOG_INFO_VERSION;
	th_assert_err(siterec_dlog_verify(path, NULL, &info), SITEREC_ETRUNCATED);
	assert_int_equal(info.torn, 1);
	assert_int_equal(info.file_bytes, good_end);
}

static void check_reopen_cuts(const char *path, uint64_t good_end, uint64_t next_seq)
{
	siterec_dlog *w = NULL;
	int torn = 0;
	assert_int_equal(siterec_dlog_reopen(&w, path, NULL, &torn), 0);
	assert_int_equal(torn, 1);
	assert_int_equal(th_file_size(path), (long long)good_end);
	assert_int_equal(siterec_dlog_next_seq(w), next_seq);
	uint8_t d[1024];
	th_fill(d, sizeof(d), 77);
	assert_int_equal(siterec_dlog_append(w, 0, d, sizeof(d), NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(path, NULL, &info), 0);
	assert_int_equal(info.last_seq, next_seq);
	assert_int_equal(info.sealed, 1);
}

static void test_torn_tail(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *orig = th_path(dir, "orig.dlog"), *cut = th_path(dir, "cut.dlog");
	siterec_dlog *w = mklog(orig, 16 * MiB, 0, 0);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 5);
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_append_zero(w, 8192, 8192, NULL), 0);
	assert_int_equal(siterec_dlog_append(w, 4096, d, 2048, NULL), 0);
	assert_int_equal(siterec_dlog_append(w, 65536, d, 1024, NULL), 0);
	siterec_dlog_free(w);
	uint64_t pos[8];
	assert_int_equal(rec_positions(orig, pos, 8), 4);
	uint64_t last = pos[3], size = (uint64_t)th_file_size(orig);
	assert_int_equal(size, last + RHDR + 1024);

	size_t len;
	uint8_t *img = th_read_file(orig, &len);
	/* cut at every byte inside the last record */
	for (uint64_t c = last + 1; c < size; c++) {
		th_write_file(cut, img, (size_t)c);
		check_torn(cut, last, 3);
		check_reopen_cuts(cut, last, 4);
	}
	/* cut exactly after the third record: whole, not torn */
	th_write_file(cut, img, (size_t)last);
	assert_int_equal(siterec_dlog_verify(cut, NULL, NULL), 0);

	/* zero-filled tail after the last whole record (file extended by a crash) */
	uint8_t *ext = calloc(1, len + 8192);
	memcpy(ext, img, len);
	th_write_file(cut, ext, len + 8192);
	check_torn(cut, size, 4);
	check_reopen_cuts(cut, size, 5);
	th_write_file(cut, ext, len + 8);
	check_torn(cut, size, 4);
	/* the last record's payload only partly written: zeros from a sector boundary on */
	memcpy(ext, img, len);
	uint64_t zfrom = (last + RHDR + 511) & ~511ull;
	memset(ext + zfrom, 0, len - zfrom);
	th_write_file(cut, ext, len);
	check_torn(cut, last, 3);
	check_reopen_cuts(cut, last, 4);
	/* the last record lost entirely: zeros where it should be */
	memcpy(ext, img, len);
	memset(ext + last, 0, len - last);
	th_write_file(cut, ext, len);
	check_torn(cut, last, 3);
	/* cut inside the seal of a sealed log: unsealed with a torn tail */
	unlink(cut);
	w = mklog(cut, 16 * MiB, 0, 0);
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	uint64_t ssize = (uint64_t)th_file_size(cut);
	th_truncate(cut, ssize - 10);
	check_torn(cut, HDR + RHDR + 4096, 1);
	free(ext);
	free(img);
	free(orig);
	free(cut);
	th_tmpdir_remove(dir);
}

/* ---- damage ---- */

static char *small_log(const char *dir, const char *name, int seal, int nrec)
{
	char *path = th_path(dir, name);
	siterec_dlog *w = mklog(path, 16 * MiB, 0, 0);
	for (int i = 0; i < nrec; i++) {
		uint8_t d[1024];
		th_fill(d, sizeof(d), (uint64_t)i + 100);
		if (i == 2)
			assert_int_equal(siterec_dlog_append_zero(w, MiB, MiB, NULL), 0);
		else
			assert_int_equal(siterec_dlog_append(w, (uint64_t)i * 4096, d, 512 * (size_t)(i % 2 + 1),
			                                     NULL),
			                 0);
	}
	if (seal)
		assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	return path;
}

static void test_bitflip_unsealed_middle(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "u.dlog", 0, 5);
	uint64_t pos[8];
	assert_int_equal(rec_positions(path, pos, 8), 5);
	/* every byte of the middle-ish record 1 (a data record) and record 3 */
	for (int r = 1; r <= 3; r += 2) {
		uint64_t end = pos[r + 1];
		for (uint64_t p = pos[r]; p < end; p++) {
			th_flip_bit(path, p, (int)(p % 8));
			th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
			th_flip_bit(path, p, (int)(p % 8));
		}
	}
	/* the zero record's header */
	for (uint64_t p = pos[2]; p < pos[3]; p++) {
		th_flip_bit(path, p, 3);
		th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
		th_flip_bit(path, p, 3);
	}
	assert_int_equal(siterec_dlog_verify(path, NULL, NULL), 0);
	/* the reader reports the damage and then stays failed */
	th_flip_bit(path, pos[1] + RHDR + 7, 1);
	siterec_dlog_reader *r;
	siterec_dlog_record rec;
	assert_int_equal(siterec_dlog_reader_open(&r, path, NULL), 0);
	assert_int_equal(siterec_dlog_reader_next(r, &rec), 1);
	th_assert_err(siterec_dlog_reader_next(r, &rec), SITEREC_ECORRUPT);
	th_assert_err(siterec_dlog_reader_next(r, &rec), SITEREC_ECORRUPT);
	siterec_dlog_reader_free(r);
	siterec_dlog *w = NULL;
	th_assert_err(siterec_dlog_reopen(&w, path, NULL, NULL), SITEREC_ECORRUPT);

	/* the file ends in zeros (all-zero data stored as data): still a damaged middle,
	 * because whole records follow it */
	char *zp = th_path(dir, "zt.dlog");
	w = mklog(zp, 16 * MiB, 0, 0);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 3);
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_append(w, 8192, d, 4096, NULL), 0);
	memset(d, 0, sizeof(d));
	assert_int_equal(siterec_dlog_append(w, 16384, d, 4096, NULL), 0);
	siterec_dlog_free(w);
	assert_int_equal(rec_positions(zp, pos, 8), 3);
	for (uint64_t p = pos[0]; p < pos[2]; p += 3) {
		th_flip_bit(zp, p, 6);
		th_assert_err(siterec_dlog_verify(zp, NULL, NULL), SITEREC_ECORRUPT);
		th_flip_bit(zp, p, 6);
	}
	/* damage in that last record's header: torn-looking zeros follow, nothing valid */
	th_flip_bit(zp, pos[2] + 9, 0);
	th_assert_err(siterec_dlog_verify(zp, NULL, NULL), SITEREC_ETRUNCATED);
	free(zp);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_bitflip_sealed_everywhere(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "s.dlog", 1, 5);
	uint64_t size = (uint64_t)th_file_size(path);
	/* every byte of the file, one bit each (header, record headers, payloads, seal) */
	for (uint64_t p = 0; p < size; p++) {
		int bit = (int)((p * 5) % 8);
		th_flip_bit(path, p, bit);
		int rc = siterec_dlog_verify(path, NULL, NULL);
		if (rc != SITEREC_ECORRUPT)
			fail_msg("flip at byte %llu bit %d: verify returned %d, expected ECORRUPT",
			         (unsigned long long)p, bit, rc);
		th_flip_bit(path, p, bit);
	}
	/* and all 8 bits of every byte of the seal */
	uint64_t pos[8];
	size_t n = rec_positions(path, pos, 8);
	assert_int_equal(n, 6);
	for (uint64_t p = pos[5]; p < size; p++)
		for (int bit = 0; bit < 8; bit++) {
			th_flip_bit(path, p, bit);
			th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
			th_flip_bit(path, p, bit);
		}
	assert_int_equal(siterec_dlog_verify(path, NULL, NULL), 0);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_records_removed_reordered(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "s.dlog", 1, 6);
	char *bad = th_path(dir, "bad.dlog");
	uint64_t pos[8];
	assert_int_equal(rec_positions(path, pos, 8), 7);
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint8_t *out = malloc(len * 2);
	/* remove one whole record (each in turn) */
	for (int r = 0; r < 6; r++) {
		size_t a = (size_t)pos[r], b = (size_t)pos[r + 1];
		memcpy(out, img, a);
		memcpy(out + a, img + b, len - b);
		th_write_file(bad, out, len - (b - a));
		th_assert_err(siterec_dlog_verify(bad, NULL, NULL), SITEREC_ECORRUPT);
	}
	/* remove the last record and the seal together: what is left is a whole unsealed
	 * log (why REQUIRE_SEALED exists) */
	th_write_file(bad, img, (size_t)pos[5]);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(bad, NULL, &info), 0);
	assert_int_equal(info.sealed, 0);
	/* duplicate a record */
	size_t a = (size_t)pos[3], b = (size_t)pos[4];
	memcpy(out, img, b);
	memcpy(out + b, img + a, b - a);
	memcpy(out + b + (b - a), img + b, len - b);
	th_write_file(bad, out, len + (b - a));
	th_assert_err(siterec_dlog_verify(bad, NULL, NULL), SITEREC_ECORRUPT);
	/* swap two records of the same size (1 and 3, 1024 bytes each) */
	assert_int_equal(pos[2] - pos[1], pos[4] - pos[3]);
	memcpy(out, img, len);
	memcpy(out + pos[1], img + pos[3], (size_t)(pos[2] - pos[1]));
	memcpy(out + pos[3], img + pos[1], (size_t)(pos[2] - pos[1]));
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_verify(bad, NULL, NULL), SITEREC_ECORRUPT);
	/* renumber the swapped records so the sequence is right again: the seal's
	 * chain still catches the reordering */
	uint64_t s1, s3;
	memcpy(&s1, img + pos[1] + 8, 8);
	memcpy(&s3, img + pos[3] + 8, 8);
	memcpy(out + pos[1] + 8, &s1, 8);
	memcpy(out + pos[3] + 8, &s3, 8);
	fix_record(out + pos[1]);
	fix_record(out + pos[3]);
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_verify(bad, NULL, NULL), SITEREC_ECORRUPT);
	free(img);
	free(out);
	free(bad);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_garbage_after_seal(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "g.dlog", 1, 3);
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint8_t *out = malloc(len + 4096);
	memcpy(out, img, len);
	th_fill(out + len, 4096, 9);
	for (size_t extra = 1; extra <= 4096; extra = extra * 3 + 1) {
		th_write_file(path, out, len + extra);
		th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
	}
	memset(out + len, 0, 4096);
	th_write_file(path, out, len + 4096);
	th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
	/* a copy of the seal appended */
	uint64_t pos[8];
	th_write_file(path, img, len);
	size_t n = rec_positions(path, pos, 8);
	memcpy(out + len, img + pos[n - 1], len - (size_t)pos[n - 1]);
	th_write_file(path, out, len + (len - (size_t)pos[n - 1]));
	th_assert_err(siterec_dlog_verify(path, NULL, NULL), SITEREC_ECORRUPT);
	free(out);
	free(img);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_header_checks(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "h.dlog", 1, 2);
	char *bad = th_path(dir, "bad.dlog");
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint8_t *out = malloc(len);
	siterec_dlog_reader *r = NULL;
	/* short files */
	for (size_t n = 0; n < HDR; n += 13) {
		th_write_file(bad, img, n);
		th_assert_err(siterec_dlog_reader_open(&r, bad, NULL), SITEREC_ECORRUPT);
		assert_null(r);
	}
	/* not a log */
	th_fill(out, len, 1);
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_reader_open(&r, bad, NULL), SITEREC_ECORRUPT);
	/* newer format version with a valid checksum: EVERSION */
	memcpy(out, img, len);
	uint32_t v = 2;
	memcpy(out + 8, &v, 4);
	uint64_t ck = XXH3_64bits(out, 120);
	memcpy(out + 120, &ck, 8);
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_reader_open(&r, bad, NULL), SITEREC_EVERSION);
	/* same without fixing the checksum: corrupt */
	memcpy(out, img, len);
	memcpy(out + 8, &v, 4);
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_reader_open(&r, bad, NULL), SITEREC_ECORRUPT);
	/* unknown header flag, valid checksum: EVERSION */
	memcpy(out, img, len);
	out[16] |= 0x80;
	ck = XXH3_64bits(out, 120);
	memcpy(out + 120, &ck, 8);
	th_write_file(bad, out, len);
	th_assert_err(siterec_dlog_reader_open(&r, bad, NULL), SITEREC_EVERSION);
	/* missing file */
	char *missing = th_path(dir, "nope.dlog");
	th_assert_err(siterec_dlog_reader_open(&r, missing, NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_dlog_verify(missing, NULL, NULL), SITEREC_ENOTFOUND);
	free(missing);
	free(out);
	free(img);
	free(bad);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = th_path(dir, "x.dlog");
	siterec_dlog_options o;
	mkopts(&o, 16 * MiB);
	siterec_dlog *w = NULL;
	th_assert_err(siterec_dlog_create(NULL, path, &o), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_create(&w, NULL, &o), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_create(&w, path, NULL), SITEREC_EINVAL);
	o.disk_size = 0;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	o.disk_size = 16 * MiB + 100;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EALIGN);
	o.disk_size = 16 * MiB;
	o.block_size = 3000;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	o.block_size = 256;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	o.block_size = 2u << 20;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	o.block_size = 0;
	o.flags = 0x100;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EINVAL);
	o.flags = 0;
	o.version = SITEREC_DLOG_OPTIONS_VERSION + 1;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EVERSION);
	o.version = 0;
	th_assert_err(siterec_dlog_create(&w, path, &o), SITEREC_EVERSION);
	o.version = SITEREC_DLOG_OPTIONS_VERSION;
	th_assert_err(siterec_dlog_options_init(NULL, 1), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_options_init(&o, 2), SITEREC_EVERSION);
	mkopts(&o, 16 * MiB);
	assert_null(w);
	assert_int_equal(th_file_size(path), -1); /* nothing left behind */

	assert_int_equal(siterec_dlog_create(&w, path, &o), 0);
	siterec_dlog *w2 = NULL;
	th_assert_err(siterec_dlog_create(&w2, path, &o), SITEREC_EEXISTS);
	assert_null(w2);
	uint8_t d[8192];
	th_fill(d, sizeof(d), 2);
	th_assert_err(siterec_dlog_append(NULL, 0, d, 512, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append(w, 0, NULL, 512, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append(w, 0, d, 0, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append(w, 1, d, 512, NULL), SITEREC_EALIGN);
	th_assert_err(siterec_dlog_append(w, 0, d, 511, NULL), SITEREC_EALIGN);
	th_assert_err(siterec_dlog_append(w, 4096, d, 1000, NULL), SITEREC_EALIGN);
	th_assert_err(siterec_dlog_append(w, 16 * MiB, d, 512, NULL), SITEREC_ERANGE);
	th_assert_err(siterec_dlog_append(w, 16 * MiB - 512, d, 1024, NULL), SITEREC_ERANGE);
	th_assert_err(siterec_dlog_append(w, UINT64_MAX - 511, d, 1024, NULL), SITEREC_ERANGE);
	th_assert_err(siterec_dlog_append_zero(NULL, 0, 512, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append_zero(w, 0, 0, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append_zero(w, 100, 512, NULL), SITEREC_EALIGN);
	th_assert_err(siterec_dlog_append_zero(w, 512, UINT64_MAX - 511, NULL), SITEREC_ERANGE);
	assert_int_equal(siterec_dlog_append(w, 16 * MiB - 512, d, 512, NULL), 0);
	th_assert_err(siterec_dlog_sync(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_seal(NULL), SITEREC_EINVAL);
	assert_int_equal(siterec_dlog_next_seq(NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	th_assert_err(siterec_dlog_append(w, 0, d, 512, NULL), SITEREC_ESTATE);
	th_assert_err(siterec_dlog_append_zero(w, 0, 512, NULL), SITEREC_ESTATE);
	siterec_dlog_free(w);
	siterec_dlog_free(NULL);

	siterec_dlog_reader *r = NULL;
	siterec_dlog_record rec;
	siterec_dlog_info info;
	th_assert_err(siterec_dlog_reader_open(NULL, path, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_reader_open(&r, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_reader_next(NULL, &rec), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_reader_info(NULL, &info), SITEREC_EINVAL);
	assert_int_equal(siterec_dlog_reader_open(&r, path, NULL), 0);
	th_assert_err(siterec_dlog_reader_next(r, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_reader_info(r, NULL), SITEREC_EINVAL);
	info.version = 0;
	th_assert_err(siterec_dlog_reader_info(r, &info), SITEREC_EVERSION);
	siterec_dlog_reader_free(r);
	siterec_dlog_reader_free(NULL);
	th_assert_err(siterec_dlog_verify(NULL, NULL, NULL), SITEREC_EINVAL);
	info.version = 0;
	th_assert_err(siterec_dlog_verify(path, NULL, &info), SITEREC_EVERSION);
	siterec_dlog_options bad;
	mkopts(&bad, 0);
	bad.version = 99;
	th_assert_err(siterec_dlog_verify(path, &bad, NULL), SITEREC_EVERSION);
	free(path);
	th_tmpdir_remove(dir);
}

/* ---- apply ---- */

struct mem_img {
	uint8_t *img;
	uint64_t size;
	int calls;
	int fail_at;   /* abort on this call (1-based), 0 = never */
};

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
	struct mem_img *m = p;
	m->calls++;
	if (m->fail_at && m->calls == m->fail_at)
		return 42;
	assert_true(off + len <= m->size);
	memcpy(m->img + off, buf, len);
	return 0;
}

/* Model of the disk: applying records in order. */
static void model_apply(uint8_t *img, uint64_t off, const uint8_t *d, uint64_t len)
{
	if (d)
		memcpy(img + off, d, (size_t)len);
	else
		memset(img + off, 0, (size_t)len);
}

static int apply_to_file(const char *log, const char *img, uint64_t size, uint32_t flags,
                         uint64_t *seq)
{
	int fd = open(img, O_RDWR);
	if (fd < 0)
		fd = th_make_file(img, size);
	int rc = siterec_dlog_apply_fd(log, NULL, flags, fd, seq);
	close(fd);
	return rc;
}

static void test_apply(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *log = th_path(dir, "a.dlog");
	char *i1 = th_path(dir, "i1.img"), *i2 = th_path(dir, "i2.img"), *i3 = th_path(dir, "i3.img");
	const uint64_t disk = 32 * MiB;
	uint8_t *model = calloc(1, disk);
	siterec_dlog *w = mklog(log, disk, SITEREC_DLOG_DETECT_ZERO, 50);
	uint64_t s = 1234;
	for (int i = 0; i < 300; i++) {
		uint64_t off = (th_rand(&s) % (disk / 512)) * 512;
		uint64_t len = ((th_rand(&s) % 64) + 1) * 512;
		if (i % 50 == 7)
			len = 5 * MiB;
		if (off + len > disk)
			off = disk - len;
		if (i % 10 == 3) {
			assert_int_equal(siterec_dlog_append_zero(w, off, len, NULL), 0);
			model_apply(model, off, NULL, len);
		} else {
			uint8_t *d = xbuf((size_t)len, th_rand(&s));
			if (i % 17 == 0)
				memset(d, 0, (size_t)len);
			assert_int_equal(siterec_dlog_append(w, off, d, (size_t)len, NULL), 0);
			model_apply(model, off, d, len);
			free(d);
		}
	}
	assert_int_equal(siterec_dlog_seal(w), 0);
	uint64_t last = siterec_dlog_next_seq(w) - 1;
	siterec_dlog_free(w);

	/* apply_fd onto a zeroed image; twice gives the same image */
	uint64_t seq = 0;
	assert_int_equal(apply_to_file(log, i1, disk, 0, &seq), 0);
	assert_int_equal(seq, last);
	size_t n;
	uint8_t *got = th_read_file(i1, &n);
	assert_int_equal(n, disk);
	assert_memory_equal(got, model, disk);
	free(got);
	copy_file(i1, i2);
	assert_int_equal(apply_to_file(log, i2, disk, SITEREC_DLOG_APPLY_NO_SYNC, NULL), 0);
	assert_int_equal(th_files_equal(i1, i2), 0);
	/* over an image with other contents: the log's ranges are exact */
	uint8_t *noise = xbuf(disk, 4);
	th_write_file(i3, noise, disk);
	assert_int_equal(apply_to_file(log, i3, disk, 0, NULL), 0);
	assert_int_equal(apply_to_file(log, i3, disk, 0, NULL), 0);
	/* the write callback gives the same as the fd */
	struct mem_img m = { noise, disk, 0, 0 };
	seq = 0;
	assert_int_equal(siterec_dlog_apply(log, NULL, 0, mem_write, &m, &seq), 0);
	assert_int_equal(seq, last);
	got = th_read_file(i3, &n);
	assert_memory_equal(got, noise, disk);
	free(got);
	struct mem_img m2 = { calloc(1, disk), disk, 0, 0 };
	assert_int_equal(siterec_dlog_apply(log, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED, mem_write,
	                                    &m2, NULL),
	                 0);
	assert_memory_equal(m2.img, model, disk);
	/* callback abort */
	struct mem_img m3 = { m2.img, disk, 0, 3 };
	th_assert_err(siterec_dlog_apply(log, NULL, 0, mem_write, &m3, NULL), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	/* bad arguments */
	th_assert_err(siterec_dlog_apply(log, NULL, 0, NULL, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_apply(NULL, NULL, 0, mem_write, &m2, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_apply(log, NULL, 0x80, mem_write, &m2, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_apply_fd(log, NULL, 0, -1, NULL), SITEREC_EINVAL);
	/* a replica smaller than the highest offset written */
	int fd = th_make_file(i3, disk / 2);
	th_assert_err(siterec_dlog_apply_fd(log, NULL, 0, fd, NULL), SITEREC_ERANGE);
	close(fd);
	assert_int_equal(th_file_size(i3), (long long)disk / 2);
	free(m2.img);
	free(noise);
	free(model);
	free(log);
	free(i1);
	free(i2);
	free(i3);
	th_tmpdir_remove(dir);
}

static void test_apply_damaged_and_flags(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 4 * MiB;
	char *log = small_log(dir, "d.dlog", 0, 5);
	char *img = th_path(dir, "d.img");
	uint64_t pos[8];
	assert_int_equal(rec_positions(log, pos, 8), 5);
	uint8_t *noise = xbuf(disk, 8);
	th_write_file(img, noise, disk);
	struct mem_img m = { calloc(1, disk), disk, 0, 0 };

	/* whole unsealed log: applies; REQUIRE_SEALED refuses */
	uint64_t seq = 0;
	assert_int_equal(siterec_dlog_apply(log, NULL, 0, mem_write, &m, &seq), 0);
	assert_int_equal(seq, 5);
	m.calls = 0;
	th_assert_err(siterec_dlog_apply(log, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED, mem_write, &m,
	                                 NULL),
	              SITEREC_ESTATE);
	assert_int_equal(m.calls, 0);

	/* damage in the middle: nothing is written */
	th_flip_bit(log, pos[3] + 20, 2);
	th_assert_err(siterec_dlog_apply(log, NULL, SITEREC_DLOG_APPLY_ALLOW_TORN, mem_write, &m, NULL),
	              SITEREC_ECORRUPT);
	assert_int_equal(m.calls, 0);
	th_assert_err(apply_to_file(log, img, disk, 0, NULL), SITEREC_ECORRUPT);
	size_t n;
	uint8_t *got = th_read_file(img, &n);
	assert_memory_equal(got, noise, disk);
	free(got);
	th_flip_bit(log, pos[3] + 20, 2);

	/* torn tail: refused unless ALLOW_TORN, which applies the whole records */
	th_truncate(log, pos[4] + 70);
	th_assert_err(siterec_dlog_apply(log, NULL, 0, mem_write, &m, NULL), SITEREC_ETRUNCATED);
	assert_int_equal(m.calls, 0);
	th_assert_err(siterec_dlog_apply(log, NULL, SITEREC_DLOG_APPLY_ALLOW_TORN |
	                                            SITEREC_DLOG_APPLY_REQUIRE_SEALED,
	                                 mem_write, &m, NULL),
	              SITEREC_ESTATE);
	assert_int_equal(m.calls, 0);
	seq = 0;
	assert_int_equal(siterec_dlog_apply(log, NULL, SITEREC_DLOG_APPLY_ALLOW_TORN, mem_write, &m,
	                                    &seq),
	                 0);
	assert_int_equal(seq, 4);
	assert_int_equal(m.calls, 4); /* three data records, a 1 MiB zero record in one write */
	free(m.img);
	free(noise);
	free(log);
	free(img);
	th_tmpdir_remove(dir);
}

/* ---- coalesce ---- */

struct wrec {
	uint64_t off, len;
};

static void test_coalesce(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 24 * MiB;
	char *logs[3], *out = th_path(dir, "out.dlog");
	uint8_t *model = calloc(1, disk);
	uint8_t *written = calloc(1, disk / 512);
	uint64_t s = 42, seq = 7;
	uint64_t in_bytes = 0;
	for (int l = 0; l < 3; l++) {
		char name[32];
		snprintf(name, sizeof(name), "in%d.dlog", l);
		logs[l] = th_path(dir, name);
		siterec_dlog *w = mklog(logs[l], disk, l == 1 ? SITEREC_DLOG_DETECT_ZERO : 0, seq);
		for (int i = 0; i < 400; i++) {
			/* hot region: many writes hit the same blocks */
			uint64_t range = i % 3 ? 2 * MiB : disk;
			uint64_t len = ((th_rand(&s) % 32) + 1) * 512;
			if (i % 97 == 5)
				len = 5 * MiB + 1024; /* split across records */
			uint64_t off = (th_rand(&s) % (range / 512)) * 512;
			if (off + len > disk)
				off = disk - len;
			if (i % 13 == 4) {
				assert_int_equal(siterec_dlog_append_zero(w, off, len, NULL), 0);
				model_apply(model, off, NULL, len);
			} else {
				uint8_t *d = xbuf((size_t)len, th_rand(&s));
				if (i % 23 == 0)
					memset(d, 0, (size_t)len);
				assert_int_equal(siterec_dlog_append(w, off, d, (size_t)len, NULL), 0);
				model_apply(model, off, d, len);
				free(d);
			}
			memset(written + off / 512, 1, (size_t)(len / 512));
			in_bytes += len;
		}
		seq = siterec_dlog_next_seq(w);
		if (l != 2)
			assert_int_equal(siterec_dlog_seal(w), 0);
		siterec_dlog_free(w);
	}
	/* inputs in any order; the last one unsealed but whole */
	const char *order[3] = { logs[2], logs[0], logs[1] };
	assert_int_equal(siterec_dlog_coalesce(order, 3, out, NULL, NULL), 0);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(out, NULL, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.first_seq, 7);
	assert_int_equal(info.last_seq, seq - 1);
	assert_true(info.data_bytes < in_bytes);

	/* records ascending, disjoint; every written byte exactly once */
	siterec_dlog_reader *r;
	siterec_dlog_record rec;
	assert_int_equal(siterec_dlog_reader_open(&r, out, NULL), 0);
	uint64_t prev_end = 0, covered = 0, expect_seq = 7;
	uint8_t *img = calloc(1, disk);
	while (siterec_dlog_reader_next(r, &rec) == 1) {
		assert_int_equal(rec.seq, expect_seq++);
		assert_true(rec.offset >= prev_end);
		if (!rec.zero) {
			assert_true(rec.length <= SITEREC_DLOG_MAX_RECORD);
			assert_false(rec.length % 512);
			memcpy(img + rec.offset, rec.data, (size_t)rec.length);
		}
		for (uint64_t b = rec.offset / 512; b < (rec.offset + rec.length) / 512; b++)
			assert_true(written[b]);
		prev_end = rec.offset + rec.length;
		covered += rec.length;
	}
	siterec_dlog_reader_free(r);
	uint64_t nwritten = 0;
	for (uint64_t b = 0; b < disk / 512; b++)
		nwritten += written[b];
	assert_int_equal(covered, nwritten * 512);
	assert_memory_equal(img, model, disk); /* zero records cover zeros of the model */

	/* apply the originals in order and the coalesced log: same image as the model */
	char *a = th_path(dir, "a.img"), *b = th_path(dir, "b.img");
	for (int l = 0; l < 3; l++)
		assert_int_equal(apply_to_file(logs[l], a, disk, SITEREC_DLOG_APPLY_NO_SYNC, NULL), 0);
	uint64_t aseq = 0;
	assert_int_equal(apply_to_file(out, b, disk, 0, &aseq), 0);
	assert_int_equal(aseq, seq - 1);
	assert_int_equal(th_files_equal(a, b), 0);
	size_t n;
	uint8_t *got = th_read_file(b, &n);
	assert_memory_equal(got, model, disk);
	free(got);
	assert_true(th_file_size(out) <
	            th_file_size(logs[0]) + th_file_size(logs[1]) + th_file_size(logs[2]));

	/* coalescing a coalesced log with nothing else is the identity on content */
	char *out2 = th_path(dir, "out2.dlog");
	const char *one[1] = { out };
	assert_int_equal(siterec_dlog_coalesce(one, 1, out2, NULL, NULL), 0);
	siterec_dlog_info i2;
	i2.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(out2, NULL, &i2), 0);
	assert_int_equal(i2.records, info.records);
	assert_int_equal(i2.last_seq, info.last_seq);

	/* errors: output exists, overlap, different disk, torn or damaged input */
	th_assert_err(siterec_dlog_coalesce(order, 3, out, NULL, NULL), SITEREC_EEXISTS);
	char *out3 = th_path(dir, "out3.dlog");
	const char *dup[2] = { logs[0], logs[0] };
	th_assert_err(siterec_dlog_coalesce(dup, 2, out3, NULL, NULL), SITEREC_EINVAL);
	const char *ov[2] = { logs[0], out };
	th_assert_err(siterec_dlog_coalesce(ov, 2, out3, NULL, NULL), SITEREC_EINVAL);
	char *other = th_path(dir, "other.dlog");
	siterec_dlog *w = mklog(other, disk * 2, 0, 100000);
	siterec_dlog_free(w);
	const char *od[2] = { logs[0], other };
	th_assert_err(siterec_dlog_coalesce(od, 2, out3, NULL, NULL), SITEREC_EINVAL);
	assert_int_equal(th_file_size(out3), -1);
	uint64_t lsize = (uint64_t)th_file_size(logs[2]);
	th_truncate(logs[2], lsize - 100);
	th_assert_err(siterec_dlog_coalesce(order, 3, out3, NULL, NULL), SITEREC_ETRUNCATED);
	assert_int_equal(th_file_size(out3), -1);
	th_flip_bit(logs[1], 1000, 1);
	th_assert_err(siterec_dlog_coalesce(&order[1], 2, out3, NULL, NULL), SITEREC_ECORRUPT);
	assert_int_equal(th_file_size(out3), -1);
	th_assert_err(siterec_dlog_coalesce(NULL, 1, out3, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_coalesce(order, 0, out3, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_coalesce(order, 3, NULL, NULL, NULL), SITEREC_EINVAL);

	for (int l = 0; l < 3; l++)
		free(logs[l]);
	free(img);
	free(model);
	free(written);
	free(out);
	free(out2);
	free(out3);
	free(other);
	free(a);
	free(b);
	th_tmpdir_remove(dir);
}

/* Many small overwrites of one long record: the long record is read in pieces. */
static void test_coalesce_fragmented(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 8 * MiB;
	char *l1 = th_path(dir, "l1.dlog"), *out = th_path(dir, "o.dlog");
	uint8_t *model = calloc(1, disk);
	siterec_dlog *w = mklog(l1, disk, 0, 0);
	uint8_t *big = xbuf(4 * MiB, 1);
	assert_int_equal(siterec_dlog_append(w, 0, big, 4 * MiB, NULL), 0);
	model_apply(model, 0, big, 4 * MiB);
	uint64_t s = 3;
	for (int i = 0; i < 500; i++) {
		uint64_t off = (th_rand(&s) % (4 * MiB / 512)) * 512;
		uint8_t d[512];
		th_fill(d, 512, th_rand(&s));
		assert_int_equal(siterec_dlog_append(w, off, d, 512, NULL), 0);
		model_apply(model, off, d, 512);
	}
	/* a zero write, then data over part of it */
	assert_int_equal(siterec_dlog_append_zero(w, 5 * MiB, MiB, NULL), 0);
	assert_int_equal(siterec_dlog_append(w, 5 * MiB + 4096, big, 4096, NULL), 0);
	model_apply(model, 5 * MiB + 4096, big, 4096);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	const char *in[1] = { l1 };
	assert_int_equal(siterec_dlog_coalesce(in, 1, out, NULL, NULL), 0);
	struct mem_img m = { calloc(1, disk), disk, 0, 0 };
	assert_int_equal(siterec_dlog_apply(out, NULL, 0, mem_write, &m, NULL), 0);
	assert_memory_equal(m.img, model, disk);
	struct rec_copy rc[16];
	size_t n;
	assert_int_equal(read_all(out, NULL, rc, 16, &n, NULL), 0);
	assert_int_equal(n, 4); /* 4 MiB data, zero, 4 KiB data, zero */
	assert_int_equal(rc[0].len, 4 * MiB);
	assert_true(rc[1].zero);
	assert_int_equal(rc[1].len, 4096);
	assert_false(rc[2].zero);
	assert_true(rc[3].zero);
	free(m.img);
	free(big);
	free(model);
	free(l1);
	free(out);
	th_tmpdir_remove(dir);
}

/* ---- from a tracker ---- */

struct src {
	int fd;
	int calls;
	int fail_at;
};

static int src_read(void *buf, size_t len, uint64_t off, void *p)
{
	struct src *s = p;
	s->calls++;
	if (s->fail_at && s->calls == s->fail_at)
		return 7;
	return pread(s->fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

/* A zero range inside an older data record splits it: the coalesced log then has
 * more records than sequence numbers covered, and must still verify and say which
 * range it covers (regression: it used to be written with a seal no reader took). */
static void test_coalesce_more_records_than_seqs(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *in = th_path(dir, "in.dlog"), *out = th_path(dir, "out.dlog");
	const uint64_t disk = MiB;
	siterec_dlog *w = mklog(in, disk, 0, 10);
	uint8_t *d = xbuf(1536, 5);
	assert_int_equal(siterec_dlog_append(w, 0, d, 1536, NULL), 0);
	assert_int_equal(siterec_dlog_append_zero(w, 512, 512, NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	const char *inputs[1] = { in };
	assert_int_equal(siterec_dlog_coalesce(inputs, 1, out, NULL, NULL), 0);
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	assert_int_equal(siterec_dlog_verify(out, NULL, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.records, 3); /* data, zero, data */
	assert_int_equal(info.first_seq, 10);
	assert_int_equal(info.last_seq, 11); /* covers the inputs' range, not the record count */
	uint64_t applied = 0;
	char *img = th_path(dir, "img");
	assert_int_equal(apply_to_file(out, img, disk, 0, &applied), 0);
	assert_int_equal(applied, 11);
	size_t n;
	uint8_t *got = th_read_file(img, &n);
	memset(d + 512, 0, 512);
	assert_memory_equal(got, d, 1536);
	free(got);
	free(d);
	free(img);
	free(in);
	free(out);
	th_tmpdir_remove(dir);
}

/* Logs without records (a rotation with no write in between, the journal's usual
 * idle case): alone or next to others, sealed or not, they coalesce into a log
 * that reads, verifies and applies as nothing. */
static void test_coalesce_empty(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *a = th_path(dir, "a.dlog"), *b = th_path(dir, "b.dlog"), *c = th_path(dir, "c.dlog");
	char *out = th_path(dir, "out.dlog"), *img = th_path(dir, "img");
	const uint64_t disk = MiB;
	siterec_dlog *w = mklog(a, disk, 0, 7);
	assert_int_equal(siterec_dlog_rotate(w, b), 0);   /* a: sealed, empty */
	siterec_dlog_free(w);                              /* b: unsealed, empty */
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	assert_int_equal(siterec_dlog_verify(a, NULL, &info), 0);
	const char *ab[2] = { a, b };
	assert_int_equal(siterec_dlog_coalesce(ab, 2, out, NULL, NULL), 0);
	assert_int_equal(siterec_dlog_verify(out, NULL, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(info.records, 0);
	uint64_t applied = 0;
	assert_int_equal(apply_to_file(out, img, disk, 0, &applied), 0);
	size_t n;
	uint8_t *got = th_read_file(img, &n), *zero = calloc(1, disk);
	assert_non_null(zero);
	assert_memory_equal(got, zero, disk);
	free(got);
	/* an empty log after one with data */
	uint8_t *d = xbuf(4096, 3);
	w = mklog(c, disk, 0, 1);
	assert_int_equal(siterec_dlog_append(w, 8192, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	unlink(out);
	const char *cb[2] = { c, b };
	assert_int_equal(siterec_dlog_coalesce(cb, 2, out, NULL, NULL), 0);
	assert_int_equal(siterec_dlog_verify(out, NULL, &info), 0);
	assert_int_equal(info.records, 1);
	free(d);
	free(zero);
	free(a);
	free(b);
	free(c);
	free(out);
	free(img);
	th_tmpdir_remove(dir);
}

static void test_append_frozen(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 32 * MiB + 4096;
	char *srcp = th_path(dir, "src.img"), *log = th_path(dir, "f.dlog"), *log2 = th_path(dir, "g.dlog");
	char *img = th_path(dir, "rep.img");
	uint8_t *content = xbuf(disk, 21);
	memset(content + 7 * MiB, 0, 5 * MiB); /* a zero region inside a marked extent */
	th_write_file(srcp, content, disk);
	int sfd = open(srcp, O_RDONLY);
	assert_true(sfd >= 0);

	siterec_tracker *t = NULL;
	assert_int_equal(siterec_tracker_open(&t, disk, NULL), 0);
	assert_int_equal(siterec_tracker_mark(t, 4096, 100), 0);
	assert_int_equal(siterec_tracker_mark(t, 7 * MiB, 9 * MiB), 0);
	assert_int_equal(siterec_tracker_mark(t, disk - 1000, 1000), 0);
	assert_int_equal(siterec_tracker_mark(t, 20 * MiB + 512, 512), 0);

	siterec_dlog *w = mklog(log, disk, 0, 0);
	th_assert_err(siterec_dlog_append_frozen_fd(w, t, sfd), SITEREC_ESTATE); /* nothing frozen */
	assert_int_equal(siterec_tracker_switch(t, NULL), 0);
	assert_int_equal(siterec_dlog_append_frozen_fd(w, t, sfd), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);

	/* the marked blocks equal the source, the rest is untouched */
	uint8_t *expect = calloc(1, disk);
	memcpy(expect + 4096, content + 4096, 4096);
	memcpy(expect + 7 * MiB, content + 7 * MiB, 9 * MiB);
	memcpy(expect + disk - 4096, content + disk - 4096, 4096);
	memcpy(expect + 20 * MiB, content + 20 * MiB, 4096);
	assert_int_equal(apply_to_file(log, img, disk, 0, NULL), 0);
	size_t n;
	uint8_t *got = th_read_file(img, &n);
	assert_memory_equal(got, expect, disk);
	free(got);
	struct rec_copy rc[32];
	assert_int_equal(read_all(log, NULL, rc, 32, &n, NULL), 0);
	int zeros = 0;
	uint64_t zero_bytes = 0, data_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		assert_true(rc[i].len <= SITEREC_DLOG_MAX_RECORD);
		zeros += rc[i].zero;
		if (rc[i].zero)
			zero_bytes += rc[i].len;
		else
			data_bytes += rc[i].len;
	}
	assert_true(zeros >= 1);
	/* zero blocks are found at block granularity, also inside a piece that holds
	 * data: exactly the 5 MiB zero region is stored without data */
	assert_int_equal(zero_bytes, 5 * MiB);
	assert_int_equal(data_bytes, 3 * 4096 + 4 * MiB);

	/* the callback variant gives the same records */
	struct src s = { sfd, 0, 0 };
	w = mklog(log2, disk, 0, 0);
	assert_int_equal(siterec_dlog_append_frozen(w, t, src_read, &s), 0);
	siterec_dlog_free(w);
	struct rec_copy rc2[32];
	size_t n2;
	assert_int_equal(read_all(log2, NULL, rc2, 32, &n2, NULL), 0);
	assert_int_equal(n2, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(rc2[i].off, rc[i].off);
		assert_int_equal(rc2[i].len, rc[i].len);
		assert_int_equal(rc2[i].zero, rc[i].zero);
		assert_true(rc2[i].hash == rc[i].hash);
	}
	unlink(log2);

	/* read callback abort, bad arguments, sealed log */
	s.calls = 0;
	s.fail_at = 2;
	w = mklog(log2, disk, 0, 0);
	th_assert_err(siterec_dlog_append_frozen(w, t, src_read, &s), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 7);
	th_assert_err(siterec_dlog_append_frozen(w, t, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append_frozen(NULL, t, src_read, &s), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append_frozen_fd(w, NULL, sfd), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_append_frozen_fd(w, t, -1), SITEREC_EINVAL);
	assert_int_equal(siterec_dlog_seal(w), 0);
	th_assert_err(siterec_dlog_append_frozen_fd(w, t, sfd), SITEREC_ESTATE);
	siterec_dlog_free(w);
	/* a source shorter than the disk */
	unlink(log2);
	w = mklog(log2, disk, 0, 0);
	char *shortp = th_path(dir, "short.img");
	int shfd = th_make_file(shortp, 10 * MiB);
	th_assert_err(siterec_dlog_append_frozen_fd(w, t, shfd), SITEREC_ERANGE);
	close(shfd);
	siterec_dlog_free(w);
	/* disk size mismatch */
	unlink(log2);
	w = mklog(log2, disk - 4096, 0, 0);
	th_assert_err(siterec_dlog_append_frozen_fd(w, t, sfd), SITEREC_EINVAL);
	siterec_dlog_free(w);
	/* the frozen set is left for the caller to commit */
	assert_int_equal(siterec_tracker_commit(t), 0);
	siterec_tracker_free(t);
	close(sfd);
	free(expect);
	free(content);
	free(srcp);
	free(log);
	free(log2);
	free(shortp);
	free(img);
	th_tmpdir_remove(dir);
}

/* Random damage (several bytes, cuts, inserted bytes): always a defined result,
 * never a crash (run under ASan/valgrind); apply of a damaged log writes nothing. */
static void test_random_damage(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = small_log(dir, "f.dlog", 1, 8);
	char *bad = th_path(dir, "bad.dlog");
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint8_t *out = malloc(len + 256);
	uint64_t s = 2024;
	for (int it = 0; it < 3000; it++) {
		memcpy(out, img, len);
		size_t n = len;
		int kind = (int)(th_rand(&s) % 4);
		if (kind == 0) { /* a few random bytes */
			int k = 1 + (int)(th_rand(&s) % 4);
			for (int j = 0; j < k; j++)
				out[th_rand(&s) % len] = (uint8_t)th_rand(&s);
		} else if (kind == 1) { /* cut */
			n = (size_t)(th_rand(&s) % len);
		} else if (kind == 2) { /* bytes inserted */
			size_t at = (size_t)(th_rand(&s) % len), k = 1 + (size_t)(th_rand(&s) % 200);
			memmove(out + at + k, out + at, len - at);
			th_fill(out + at, k, th_rand(&s));
			n = len + k;
		} else { /* a range zeroed */
			size_t at = (size_t)(th_rand(&s) % len), k = (size_t)(th_rand(&s) % 600);
			if (at + k > len)
				k = len - at;
			memset(out + at, 0, k);
		}
		th_write_file(bad, out, n);
		siterec_dlog_info info;
		info.version = SITEREC_DLOG_INFO_VERSION;
		int rc = siterec_dlog_verify(bad, NULL, &info);
		if (memcmp(out, img, n < len ? n : len) == 0 && n == len) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_true(rc == SITEREC_ECORRUPT || rc == SITEREC_ETRUNCATED || rc == SITEREC_EVERSION ||
		            rc == 0);
		if (rc == 0) {
			/* only a cut at a record boundary (dropping the seal) stays whole */
			assert_true(n < len);
			assert_int_equal(info.sealed, 0);
		}
		struct mem_img m = { NULL, 16 * MiB, 0, 0 };
		if (rc != 0 && rc != SITEREC_ETRUNCATED)
			assert_int_equal(siterec_dlog_apply(bad, NULL, 0, mem_write, &m, NULL), rc);
		assert_int_equal(m.calls, 0);
	}
	free(out);
	free(img);
	free(bad);
	free(path);
	th_tmpdir_remove(dir);
}

/* Everything goes through the caller's allocator and is given back. */
static long live_allocs;
static void *cnt_malloc(size_t n, void *p) { (void)p; live_allocs++; return malloc(n); }
static void *cnt_realloc(void *q, size_t n, void *p)
{
	(void)p;
	if (!q)
		live_allocs++;
	return realloc(q, n);
}
static void cnt_free(void *q, void *p) { (void)p; if (q) live_allocs--; free(q); }

static void test_allocator(void **state)
{
	(void)state;
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, cnt_malloc, cnt_realloc, cnt_free, NULL };
	assert_int_equal(siterec_set_allocator(&a), 0);
	live_allocs = 0;
	char *dir = th_tmpdir();
	char *p1 = th_path(dir, "1.dlog"), *p2 = th_path(dir, "2.dlog"), *p3 = th_path(dir, "3.dlog");
	siterec_dlog *w = mklog(p1, 16 * MiB, 0, 0);
	uint8_t *d = xbuf(MiB, 2);
	assert_int_equal(siterec_dlog_append(w, 0, d, MiB, NULL), 0);
	assert_int_equal(siterec_dlog_append(w, 4096, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_rotate(w, p2), 0);
	assert_int_equal(siterec_dlog_append_zero(w, 0, 8192, NULL), 0);
	siterec_dlog_free(w);
	assert_true(live_allocs == 0);
	assert_int_equal(siterec_dlog_reopen(&w, p2, NULL, NULL), 0);
	siterec_dlog_free(w);
	const char *in[2] = { p1, p2 };
	assert_int_equal(siterec_dlog_coalesce(in, 2, p3, NULL, NULL), 0);
	struct mem_img m = { calloc(1, 16 * MiB), 16 * MiB, 0, 0 };
	assert_int_equal(siterec_dlog_apply(p3, NULL, 0, mem_write, &m, NULL), 0);
	th_assert_err(siterec_dlog_coalesce(in, 2, p3, NULL, NULL), SITEREC_EEXISTS);
	assert_int_equal(siterec_dlog_verify(p3, NULL, NULL), 0);
	assert_true(live_allocs == 0);
	assert_int_equal(siterec_set_allocator(NULL), 0);
	free(m.img);
	free(d);
	free(p1);
	free(p2);
	free(p3);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_seq_numbering),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_zero_records),
		cmocka_unit_test(test_buffer_paths),
		cmocka_unit_test(test_sync_each),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_bitflip_unsealed_middle),
		cmocka_unit_test(test_bitflip_sealed_everywhere),
		cmocka_unit_test(test_records_removed_reordered),
		cmocka_unit_test(test_garbage_after_seal),
		cmocka_unit_test(test_header_checks),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_apply_damaged_and_flags),
		cmocka_unit_test(test_coalesce),
		cmocka_unit_test(test_coalesce_fragmented),
		cmocka_unit_test(test_coalesce_more_records_than_seqs),
		cmocka_unit_test(test_coalesce_empty),
		cmocka_unit_test(test_append_frozen),
		cmocka_unit_test(test_random_damage),
		cmocka_unit_test(test_allocator),
	};
	return cmocka_run_group_tests_name("dlog", tests, NULL, NULL);
}
