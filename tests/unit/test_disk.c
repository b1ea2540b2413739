/* Disk front end and raw images: argument checks, detection, create, read/write,
 * block status of sparse files, generation hint, read/write callback adaptors. */
#include "helpers.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024ull * 1024)

static siterec_disk *open_disk(const char *path, uint32_t format, uint32_t flags)
{
	siterec_disk_options o;
	assert_int_equal(siterec_disk_options_init(&o, SITEREC_DISK_OPTIONS_VERSION), 0);
	o.format = format;
	o.flags = flags;
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_open(&d, path, &o), 0);
	assert_non_null(d);
	return d;
}

static void test_bad_input(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p = th_path(dir, "raw.img");
	siterec_disk *d = (siterec_disk *)0x1;
	th_assert_err(siterec_disk_open(&d, "/nonexistent/x.img", NULL), SITEREC_ENOTFOUND);
	assert_null(d);
	th_assert_err(siterec_disk_open(NULL, p, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_disk_open(&d, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_disk_open(&d, "", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_disk_open(&d, dir, NULL), SITEREC_EINVAL); /* a directory */
	char *fifo = th_path(dir, "fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	th_assert_err(siterec_disk_open(&d, fifo, NULL), SITEREC_EINVAL); /* refused, not hung */
	unlink(fifo);
	free(fifo);
	close(th_make_file(p, 0));
	th_assert_err(siterec_disk_open(&d, p, NULL), SITEREC_EDISK); /* empty file */
	close(th_make_file(p, MiB));

	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.flags = 0x100;
	th_assert_err(siterec_disk_open(&d, p, &o), SITEREC_EINVAL);
	o.flags = SITEREC_DISK_OPEN_WRITE | SITEREC_DISK_REPLAY_LOG;
	th_assert_err(siterec_disk_open(&d, p, &o), SITEREC_EINVAL);
	o.flags = 0;
	o.format = 9;
	th_assert_err(siterec_disk_open(&d, p, &o), SITEREC_EINVAL);
	o.format = 0;
	o.version = 77;
	th_assert_err(siterec_disk_open(&d, p, &o), SITEREC_EVERSION);
	th_assert_err(siterec_disk_options_init(&o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_disk_options_init(NULL, 1), SITEREC_EINVAL);

	/* a raw file forced as VHD or VHDX is not silently accepted */
	o.version = SITEREC_DISK_OPTIONS_VERSION;
	o.format = SITEREC_DISK_FORMAT_VHD;
	assert_true(siterec_disk_open(&d, p, &o) < 0);
	o.format = SITEREC_DISK_FORMAT_VHDX;
	assert_true(siterec_disk_open(&d, p, &o) < 0);
	assert_null(d);

	d = open_disk(p, 0, 0);
	uint8_t buf[4096];
	th_assert_err(siterec_disk_read(d, buf, 0, 0), SITEREC_EINVAL);
	th_assert_err(siterec_disk_read(d, NULL, 16, 0), SITEREC_EINVAL);
	th_assert_err(siterec_disk_read(NULL, buf, 16, 0), SITEREC_EINVAL);
	th_assert_err(siterec_disk_read(d, buf, 16, MiB - 8), SITEREC_ERANGE);
	th_assert_err(siterec_disk_read(d, buf, 16, UINT64_MAX - 4), SITEREC_ERANGE);
	th_assert_err(siterec_disk_write(d, buf, 16, 0), SITEREC_ESTATE); /* read only */
	uint64_t run;
	int alloc;
	th_assert_err(siterec_disk_block_status(d, 0, 0, &run, &alloc), SITEREC_EINVAL);
	th_assert_err(siterec_disk_block_status(d, 0, 16, NULL, &alloc), SITEREC_EINVAL);
	th_assert_err(siterec_disk_block_status(d, 0, 16, &run, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_disk_block_status(d, MiB, 1, &run, &alloc), SITEREC_ERANGE);
	siterec_disk_info in = { .version = 0 };
	th_assert_err(siterec_disk_info_get(d, &in), SITEREC_EVERSION);
	th_assert_err(siterec_disk_info_get(d, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_disk_flush(NULL), SITEREC_EINVAL);
	assert_int_equal(siterec_disk_flush(d), 0); /* read only: nothing to flush */
	siterec_disk_free(d);
	siterec_disk_free(NULL);

	/* create */
	siterec_disk_create_options co = SITEREC_DISK_CREATE_OPTIONS_INIT;
	th_assert_err(siterec_disk_create(&d, p, MiB, &co), SITEREC_EEXISTS);
	char *q = th_path(dir, "new.img");
	th_assert_err(siterec_disk_create(&d, q, 0, &co), SITEREC_EINVAL);
	th_assert_err(siterec_disk_create(&d, q, UINT64_MAX, &co), SITEREC_EINVAL);
	co.format = SITEREC_DISK_FORMAT_VHDX;
	th_assert_err(siterec_disk_create(&d, q, MiB, &co), SITEREC_EUNSUPPORTED);
	co.format = SITEREC_DISK_FORMAT_RAW;
	co.flags = 1;
	th_assert_err(siterec_disk_create(&d, q, MiB, &co), SITEREC_EINVAL);
	co.flags = 0;
	co.version = 5;
	th_assert_err(siterec_disk_create(&d, q, MiB, &co), SITEREC_EVERSION);
	th_assert_err(siterec_disk_create(NULL, q, MiB, NULL), SITEREC_EINVAL);
	assert_int_equal(th_file_size(q), -1); /* nothing left behind */
	free(q);
	free(p);
	th_tmpdir_remove(dir);
}

static void test_raw_create_rw(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p = th_path(dir, "r.img");
	const uint64_t size = 3 * MiB + 1000; /* not a multiple of anything */
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_create(&d, p, size, NULL), 0);
	siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
	assert_int_equal(siterec_disk_info_get(d, &in), 0);
	assert_int_equal(in.format, SITEREC_DISK_FORMAT_RAW);
	assert_int_equal(in.kind, SITEREC_DISK_KIND_FIXED);
	assert_int_equal(in.virtual_size, size);
	assert_int_equal(in.writable, 1);
	assert_int_equal(in.generation_hint, 0);
	assert_int_equal(th_file_size(p), (long long)size);

	uint8_t *data = malloc(size), *back = malloc(size);
	th_fill(data, size, 3);
	/* unaligned writes in pieces, through the write_fn adaptor as well */
	assert_int_equal(siterec_disk_write(d, data, 777, 0), 0);
	assert_int_equal(siterec_disk_write_cb(data + 777, size - 777 - 5, 777, d), 0);
	assert_int_equal(siterec_disk_write(d, data + size - 5, 5, size - 5), 0);
	th_assert_err(siterec_disk_write(d, data, 6, size - 5), SITEREC_ERANGE);
	assert_int_equal(siterec_disk_flush(d), 0);
	assert_int_equal(siterec_disk_read_cb(back, size, 0, d), 0);
	assert_memory_equal(back, data, size);
	siterec_disk_free(d);

	/* reopen for in-place update */
	d = open_disk(p, 0, SITEREC_DISK_OPEN_WRITE);
	memset(data + 12345, 0xEE, 4096);
	assert_int_equal(siterec_disk_write(d, data + 12345, 4096, 12345), 0);
	siterec_disk_free(d);
	d = open_disk(p, SITEREC_DISK_FORMAT_RAW, 0);
	assert_int_equal(siterec_disk_read(d, back, size, 0), 0);
	assert_memory_equal(back, data, size);
	siterec_disk_free(d);
	free(data);
	free(back);
	free(p);
	th_tmpdir_remove(dir);
}

static void test_raw_sparse_status(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p = th_path(dir, "s.img");
	int fd = th_make_file(p, 64 * MiB);
	uint8_t blk[65536];
	th_fill(blk, sizeof(blk), 9);
	assert_int_equal(pwrite(fd, blk, sizeof(blk), 10 * MiB), (ssize_t)sizeof(blk));
	assert_int_equal(pwrite(fd, blk, sizeof(blk), 64 * MiB - sizeof(blk)), (ssize_t)sizeof(blk));
	fsync(fd);
	close(fd);
	siterec_disk *d = open_disk(p, 0, 0);
	/* walk the disk: allocated bytes cover the two writes and little else
	 * (file systems allocate in their own block size) */
	uint64_t off = 0, allocated = 0, runs = 0;
	int saw_hole = 0;
	while (off < 64 * MiB) {
		uint64_t run;
		int a;
		assert_int_equal(siterec_disk_block_status(d, off, 64 * MiB - off, &run, &a), 0);
		assert_true(run > 0 && run <= 64 * MiB - off);
		if (a)
			allocated += run;
		else {
			saw_hole = 1;
			uint8_t z[4096];
			assert_int_equal(siterec_disk_read(d, z, run < 4096 ? run : 4096, off), 0);
			for (size_t i = 0; i < (run < 4096 ? run : 4096); i++)
				assert_int_equal(z[i], 0);
		}
		off += run;
		runs++;
	}
	assert_true(saw_hole);
	assert_true(allocated >= 2 * sizeof(blk));
	assert_true(allocated < 8 * MiB);
	/* a run never exceeds the length asked */
	uint64_t run;
	int a;
	assert_int_equal(siterec_disk_block_status(d, 10 * MiB, 100, &run, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run, 100);
	siterec_disk_free(d);
	free(p);
	th_tmpdir_remove(dir);
}

static void test_generation_hint(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p = th_path(dir, "g.img");
	uint8_t s[1024];
	memset(s, 0, sizeof(s));
	s[510] = 0x55;
	s[511] = 0xAA;
	s[446 + 4] = 0x07; /* one NTFS partition: BIOS/MBR layout */
	int fd = th_make_file(p, MiB);
	assert_int_equal(pwrite(fd, s, sizeof(s), 0), (ssize_t)sizeof(s));
	close(fd);
	siterec_disk *d = open_disk(p, 0, 0);
	siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
	assert_int_equal(siterec_disk_info_get(d, &in), 0);
	assert_int_equal(in.generation_hint, 1);
	siterec_disk_free(d);

	s[446 + 4] = 0xEE; /* protective MBR */
	memcpy(s + 512, "EFI PART", 8);
	fd = open(p, O_WRONLY);
	assert_int_equal(pwrite(fd, s, sizeof(s), 0), (ssize_t)sizeof(s));
	close(fd);
	d = open_disk(p, 0, 0);
	assert_int_equal(siterec_disk_info_get(d, &in), 0);
	assert_int_equal(in.generation_hint, 2);
	siterec_disk_free(d);

	memset(s + 512, 0, 8); /* protective entry without a GPT header: not GPT */
	fd = open(p, O_WRONLY);
	assert_int_equal(pwrite(fd, s, sizeof(s), 0), (ssize_t)sizeof(s));
	close(fd);
	d = open_disk(p, 0, 0);
	assert_int_equal(siterec_disk_info_get(d, &in), 0);
	assert_int_equal(in.generation_hint, 1);
	siterec_disk_free(d);
	free(p);
	th_tmpdir_remove(dir);
}

/* A disk image feeds the tracker-driven delta log through the read adaptor. */
static void test_read_cb_feeds_dlog(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p = th_path(dir, "src.img"), *lp = th_path(dir, "x.sdl"), *rp = th_path(dir, "rep.img");
	const uint64_t size = 8 * MiB;
	uint8_t *data = malloc(size);
	th_fill(data, size, 11);
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_create(&d, p, size, NULL), 0);
	assert_int_equal(siterec_disk_write(d, data, size, 0), 0);
	siterec_tracker *t = NULL;
	assert_int_equal(siterec_tracker_open(&t, size, NULL), 0);
	assert_int_equal(siterec_tracker_mark(t, MiB, 3 * MiB), 0);
	assert_int_equal(siterec_tracker_switch(t, NULL), 0);
	siterec_dlog_options lo = SITEREC_DLOG_OPTIONS_INIT;
	lo.disk_size = size;
	siterec_dlog *log = NULL;
	assert_int_equal(siterec_dlog_create(&log, lp, &lo), 0);
	assert_int_equal(siterec_dlog_append_frozen(log, t, siterec_disk_read_cb, d), 0);
	assert_int_equal(siterec_dlog_seal(log), 0);
	siterec_dlog_free(log);
	siterec_disk *r = NULL;
	assert_int_equal(siterec_disk_create(&r, rp, size, NULL), 0);
	assert_int_equal(siterec_dlog_apply(lp, NULL, 0, siterec_disk_write_cb, r, NULL), 0);
	uint8_t *back = malloc(size);
	assert_int_equal(siterec_disk_read(r, back, size, 0), 0);
	assert_memory_equal(back + MiB, data + MiB, 3 * MiB);
	for (uint64_t i = 0; i < MiB; i++)
		assert_int_equal(back[i], 0);
	siterec_disk_free(r);
	siterec_disk_free(d);
	siterec_tracker_free(t);
	free(back);
	free(data);
	free(p);
	free(lp);
	free(rp);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_raw_create_rw),
		cmocka_unit_test(test_raw_sparse_status),
		cmocka_unit_test(test_generation_hint),
		cmocka_unit_test(test_read_cb_feeds_dlog),
	};
	return cmocka_run_group_tests_name("disk", tests, NULL, NULL);
}
