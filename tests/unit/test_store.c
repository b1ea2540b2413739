/* Storage layer through the public API, on the file:// target: URLs and options,
 * names, disks, the writer, snapshots (isolation, chains, space), documents with
 * compare-and-swap, leases (also between processes, their expiry and breaking),
 * listing, progress, the merging writer. */
#include "helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)

static char *url_of(const char *dir)
{
	char *u = malloc(strlen(dir) + 8);
	assert_non_null(u);
	sprintf(u, "file://%s", dir);
	return u;
}

static siterec_store *open_store(const char *dir)
{
	char *u = url_of(dir);
	siterec_store *st = NULL;
	assert_int_equal(siterec_store_open(&st, u, NULL), 0);
	assert_non_null(st);
	free(u);
	return st;
}

/* Allocated bytes of everything under dir (st_blocks). */
static uint64_t du(const char *dir)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "du -s -B1 '%s'", dir);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	unsigned long long v = 0;
	assert_int_equal(fscanf(f, "%llu", &v), 1);
	pclose(f);
	return v;
}

static void test_open(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = (siterec_store *)0x1;
	th_assert_err(siterec_store_open(NULL, "file:///tmp", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, NULL, NULL), SITEREC_EINVAL);
	assert_null(st);
	th_assert_err(siterec_store_open(&st, "", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "ftp://x/y", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "file://relative/dir", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "file://", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "file:///tmp/a%20b", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "/tmp", NULL), SITEREC_EINVAL);
	/* Azure URLs are served (tests/unit/test_store_azure.c); "c" is no valid container
	 * name (3..63 chars), so these fail before any request */
	th_assert_err(siterec_store_open(&st, "https://acct.blob.core.windows.net/c", NULL),
	              SITEREC_EINVAL);
	th_assert_err(siterec_store_open(&st, "http://127.0.0.1:10000/devstoreaccount1/c", NULL),
	              SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, "SITEREC_STORE_ALLOW_HTTP"));
	siterec_store_options o;
	assert_int_equal(siterec_store_options_init(&o, SITEREC_STORE_OPTIONS_VERSION), 0);
	th_assert_err(siterec_store_options_init(&o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_store_options_init(&o, 99), SITEREC_EVERSION);
	th_assert_err(siterec_store_options_init(NULL, 1), SITEREC_EINVAL);
	o.flags = SITEREC_STORE_ALLOW_HTTP;
	o.account_key = "c2VjcmV0LWtleS1tdXN0LW5vdC1sZWFr";
	th_assert_err(siterec_store_open(&st, "http://127.0.0.1:10000/devstoreaccount1/c", &o),
	              SITEREC_EINVAL);
	assert_null(strstr(siterec_error_last()->message, "c2VjcmV0"));
	o.flags = 0x100;
	th_assert_err(siterec_store_open(&st, "file:///tmp", &o), SITEREC_EINVAL);
	o.version = 7;
	o.flags = 0;
	th_assert_err(siterec_store_open(&st, "file:///tmp", &o), SITEREC_EVERSION);

	/* missing directory: ENOTFOUND, or created with SITEREC_STORE_CREATE */
	char *sub = th_path(dir, "a/b/c");
	char *u = url_of(sub);
	th_assert_err(siterec_store_open(&st, u, NULL), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_options_init(&o, 1), 0);
	o.flags = SITEREC_STORE_CREATE;
	o.account_key = "a2V5";
	o.sas_token = "sv=2020&sig=x";
	assert_int_equal(siterec_store_open(&st, u, &o), 0);
	siterec_store_free(st);
	struct stat s;
	assert_int_equal(stat(sub, &s), 0);
	assert_true(S_ISDIR(s.st_mode));
	/* file://localhost/ form, trailing slash */
	char *u2 = malloc(strlen(dir) + 40);
	sprintf(u2, "file://localhost%s/", dir);
	assert_int_equal(siterec_store_open(&st, u2, NULL), 0);
	siterec_store_free(st);
	siterec_store_free(NULL);
	/* a plain file is not a target */
	char *f = th_path(dir, "plain");
	th_write_file(f, "x", 1);
	char *u3 = url_of(f);
	th_assert_err(siterec_store_open(&st, u3, NULL), SITEREC_EINVAL);
	free(u3); free(f); free(u2); free(u); free(sub);
	th_tmpdir_remove(dir);
}

static void test_names_and_disks(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	static const char *bad[] = { "", "/a", ".a", "a/../b", "a//b", "a b", "a%b", "é", "a\\b", NULL };
	for (int i = 0; bad[i]; i++)
		th_assert_err(siterec_store_disk_create(st, bad[i], 512), SITEREC_EINVAL);
	char long_name[202];
	memset(long_name, 'x', 201);
	long_name[201] = 0;
	th_assert_err(siterec_store_disk_create(st, long_name, 512), SITEREC_EINVAL);
	long_name[200] = 0;
	assert_int_equal(siterec_store_disk_create(st, long_name, 512), 0);
	th_assert_err(siterec_store_disk_create(st, NULL, 512), SITEREC_EINVAL);
	th_assert_err(siterec_store_disk_create(NULL, "a", 512), SITEREC_EINVAL);
	th_assert_err(siterec_store_disk_create(st, "a", 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_disk_create(st, "a", UINT64_MAX), SITEREC_ERANGE);

	assert_int_equal(siterec_store_disk_create(st, "vm1/disk-0.vhd", 1000), 0);
	assert_int_equal(siterec_store_disk_create(st, "vm1", 4096), 0); /* "a" and "a/b" coexist */
	th_assert_err(siterec_store_disk_create(st, "vm1/disk-0.vhd", 512), SITEREC_EEXISTS);
	uint64_t size = 0;
	assert_int_equal(siterec_store_disk_size(st, "vm1/disk-0.vhd", NULL, &size), 0);
	assert_int_equal(size, 1024); /* rounded up to 512 */
	th_assert_err(siterec_store_disk_size(st, "nope", NULL, &size), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_disk_size(st, "vm1", NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_disk_size(st, "vm1", "1", &size), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_disk_size(st, "vm1", "../x", &size), SITEREC_EINVAL);
	/* fresh disk reads as zeros */
	uint8_t buf[1024];
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(siterec_store_read(st, "vm1/disk-0.vhd", NULL, buf, 1024, 0), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], 0);
	th_assert_err(siterec_store_read(st, "vm1/disk-0.vhd", NULL, buf, 1024, 512), SITEREC_ERANGE);
	th_assert_err(siterec_store_read(st, "vm1/disk-0.vhd", NULL, buf, 1, UINT64_MAX), SITEREC_ERANGE);
	th_assert_err(siterec_store_read(st, "vm1/disk-0.vhd", NULL, NULL, 1, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_read(st, "nope", NULL, buf, 1, 0), SITEREC_ENOTFOUND);
	/* documents share the name space */
	th_assert_err(siterec_store_doc_put(st, "vm1", "x", 1, NULL, NULL, 0), SITEREC_EEXISTS);
	assert_int_equal(siterec_store_doc_put(st, "cfg", "x", 1, NULL, NULL, 0), 0);
	th_assert_err(siterec_store_disk_create(st, "cfg", 512), SITEREC_EEXISTS);

	assert_int_equal(siterec_store_disk_delete(st, "vm1", 0, NULL), 0);
	th_assert_err(siterec_store_disk_delete(st, "vm1", 0, NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_disk_delete(st, "vm1/disk-0.vhd", 0x8, NULL), SITEREC_EINVAL);
	assert_int_equal(siterec_store_disk_size(st, "vm1/disk-0.vhd", NULL, &size), 0);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

static int collect_cb(uint64_t off, uint64_t len, void *payload)
{
	siterec_extent *e = payload;
	while (e->length)
		e++;
	e->offset = off;
	e->length = len;
	return 0;
}

static void test_writer(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 16 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	siterec_store_writer *w = NULL;
	th_assert_err(siterec_store_writer_open(&w, st, "nope", NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_writer_open(NULL, st, "d", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_open(&w, NULL, "d", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_open(&w, st, "d", "no-such-lease"), SITEREC_ELEASE);
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	uint8_t *model = calloc(1, size);
	uint8_t *buf = malloc(size);
	th_fill(buf, 8 * MiB, 1);
	th_assert_err(siterec_store_writer_write(w, buf, 100, 0), SITEREC_EALIGN);
	th_assert_err(siterec_store_writer_write(w, buf, 512, 100), SITEREC_EALIGN);
	th_assert_err(siterec_store_writer_write(w, buf, 1024, size - 512), SITEREC_ERANGE);
	th_assert_err(siterec_store_writer_write(w, buf, 512, UINT64_MAX - 511), SITEREC_ERANGE);
	th_assert_err(siterec_store_writer_zero(w, size, 512), SITEREC_ERANGE);
	th_assert_err(siterec_store_writer_write(w, NULL, 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_write(NULL, buf, 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_finish(NULL), SITEREC_EINVAL);
	/* many small adjacent writes (coalesced), a large one, zero data, a clear */
	for (uint64_t i = 0; i < 2048; i++) {
		assert_int_equal(siterec_store_writer_write(w, buf + i * 512, 512, MiB + i * 512), 0);
		memcpy(model + MiB + i * 512, buf + i * 512, 512);
	}
	assert_int_equal(siterec_store_writer_write(w, buf, 6 * MiB, 4 * MiB), 0);
	memcpy(model + 4 * MiB, buf, 6 * MiB);
	memset(buf + 8 * MiB, 0, 2 * MiB);
	assert_int_equal(siterec_store_writer_write(w, buf + 8 * MiB, 2 * MiB, 5 * MiB), 0);
	memset(model + 5 * MiB, 0, 2 * MiB);
	assert_int_equal(siterec_store_writer_zero(w, 9 * MiB, MiB), 0);
	memset(model + 9 * MiB, 0, MiB);
	assert_int_equal(siterec_store_writer_zero(w, 0, 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0); /* nothing queued: fine */
	assert_int_equal(siterec_store_read(st, "d", NULL, buf, size, 0), 0);
	assert_memory_equal(buf, model, size);
	/* zero writes became holes */
	siterec_extent ex[16];
	memset(ex, 0, sizeof(ex));
	assert_int_equal(siterec_store_ranges(st, "d", NULL, 0, 0, collect_cb, ex), 0);
	assert_int_equal(ex[0].offset, MiB);
	assert_int_equal(ex[0].length, MiB);
	assert_int_equal(ex[1].offset, 4 * MiB);
	assert_int_equal(ex[1].length, MiB);
	assert_int_equal(ex[2].offset, 7 * MiB);
	assert_int_equal(ex[2].length, 2 * MiB);
	assert_int_equal(ex[3].length, 0);
	memset(ex, 0, sizeof(ex));
	assert_int_equal(siterec_store_ranges(st, "d", NULL, MiB + 512 * KiB, MiB, collect_cb, ex), 0);
	assert_int_equal(ex[0].offset, MiB + 512 * KiB);
	assert_int_equal(ex[0].length, 512 * KiB);
	assert_int_equal(ex[1].length, 0);
	th_assert_err(siterec_store_ranges(st, "d", NULL, 0, size + 512, collect_cb, ex), SITEREC_ERANGE);
	th_assert_err(siterec_store_ranges(st, "d", NULL, 0, 0, NULL, ex), SITEREC_EINVAL);
	siterec_store_writer_free(w);
	siterec_store_writer_free(NULL);
	free(model);
	free(buf);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

static void test_write_cb_dlog(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *lp = th_path(dir, "x.dlog");
	char *sd = th_path(dir, "store");
	assert_int_equal(mkdir(sd, 0755), 0);
	const uint64_t size = 4 * MiB;
	siterec_dlog_options lo;
	assert_int_equal(siterec_dlog_options_init(&lo, SITEREC_DLOG_OPTIONS_VERSION), 0);
	lo.disk_size = size;
	siterec_dlog *log = NULL;
	assert_int_equal(siterec_dlog_create(&log, lp, &lo), 0);
	uint8_t *data = malloc(size), *model = calloc(1, size), *back = malloc(size);
	th_fill(data, size, 7);
	assert_int_equal(siterec_dlog_append(log, 0, data, MiB, NULL), 0);
	assert_int_equal(siterec_dlog_append(log, 2 * MiB, data + 2 * MiB, 512 * KiB, NULL), 0);
	assert_int_equal(siterec_dlog_append_zero(log, 0, 64 * KiB, NULL), 0);
	assert_int_equal(siterec_dlog_seal(log), 0);
	siterec_dlog_free(log);
	memcpy(model, data, MiB);
	memcpy(model + 2 * MiB, data + 2 * MiB, 512 * KiB);
	memset(model, 0, 64 * KiB);
	siterec_store *st = open_store(sd);
	assert_int_equal(siterec_store_disk_create(st, "r", size), 0);
	siterec_store_writer *w;
	assert_int_equal(siterec_store_writer_open(&w, st, "r", NULL), 0);
	assert_int_equal(siterec_dlog_apply(lp, NULL, 0, siterec_store_writer_write_cb, w, NULL), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "r", NULL, back, size, 0), 0);
	assert_memory_equal(back, model, size);
	siterec_store_free(st);
	free(data); free(model); free(back); free(lp); free(sd);
	th_tmpdir_remove(dir);
}

static void write_model(siterec_store *st, const char *name, uint8_t *model, uint64_t off,
                        uint64_t len, uint64_t seed)
{
	siterec_store_writer *w;
	assert_int_equal(siterec_store_writer_open(&w, st, name, NULL), 0);
	th_fill(model + off, len, seed);
	assert_int_equal(siterec_store_writer_write(w, model + off, len, off), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
}

static void check_snap(siterec_store *st, const char *name, const char *snap, const uint8_t *model,
                       uint64_t size)
{
	uint8_t *b = malloc(size);
	assert_int_equal(siterec_store_read(st, name, snap, b, size, 0), 0);
	assert_memory_equal(b, model, size);
	/* unaligned pieces across chunk edges as well */
	assert_int_equal(siterec_store_read(st, name, snap, b, 70000, 65000), 0);
	assert_memory_equal(b, model + 65000, 70000);
	free(b);
}

static void test_snapshots(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 8 * MiB + 1536; /* partial last chunk */
	assert_int_equal(siterec_store_disk_create(st, "vm/d0", size), 0);
	enum { N = 5 };
	uint8_t *models[N];
	char ids[N][SITEREC_STORE_ID_MAX];
	uint8_t *live = calloc(1, size);
	write_model(st, "vm/d0", live, MiB, 2 * MiB, 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(siterec_store_snapshot(st, "vm/d0", ids[i], sizeof(ids[i])), 0);
		models[i] = malloc(size);
		memcpy(models[i], live, size);
		write_model(st, "vm/d0", live, (uint64_t)i * 512 * KiB + 4096, 300 * KiB, 10 + (uint64_t)i);
		if (i == 2)
			write_model(st, "vm/d0", live, size - 1536, 1536, 99);
	}
	for (int i = 1; i < N; i++)
		assert_true(strtoull(ids[i], NULL, 10) > strtoull(ids[i - 1], NULL, 10));
	for (int i = 0; i < N; i++)
		check_snap(st, "vm/d0", ids[i], models[i], size);
	check_snap(st, "vm/d0", NULL, live, size);
	uint64_t ssz;
	assert_int_equal(siterec_store_disk_size(st, "vm/d0", ids[0], &ssz), 0);
	assert_int_equal(ssz, size);
	/* ranges of a snapshot: only chunks with data */
	siterec_extent ex[16];
	memset(ex, 0, sizeof(ex));
	assert_int_equal(siterec_store_ranges(st, "vm/d0", ids[0], 0, 0, collect_cb, ex), 0);
	assert_int_equal(ex[0].offset, MiB);
	assert_int_equal(ex[0].length, 2 * MiB);
	assert_int_equal(ex[1].length, 0);

	/* delete in the middle, then the oldest, then the newest: the rest intact */
	assert_int_equal(siterec_store_snapshot_delete(st, "vm/d0", ids[2]), 0);
	th_assert_err(siterec_store_snapshot_delete(st, "vm/d0", ids[2]), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_read(st, "vm/d0", ids[2], live, 512, 0), SITEREC_ENOTFOUND);
	for (int i = 0; i < N; i++)
		if (i != 2)
			check_snap(st, "vm/d0", ids[i], models[i], size);
	assert_int_equal(siterec_store_snapshot_delete(st, "vm/d0", ids[0]), 0);
	assert_int_equal(siterec_store_snapshot_delete(st, "vm/d0", ids[4]), 0);
	check_snap(st, "vm/d0", ids[1], models[1], size);
	check_snap(st, "vm/d0", ids[3], models[3], size);
	/* after deleting the newest, a new snapshot still holds everything since ids[3] */
	char nid[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_snapshot(st, "vm/d0", nid, sizeof(nid)), 0);
	assert_true(strtoull(nid, NULL, 10) > strtoull(ids[4], NULL, 10)); /* never reused */
	check_snap(st, "vm/d0", nid, live, size);
	check_snap(st, "vm/d0", ids[3], models[3], size);

	/* bad input */
	char small[1];
	th_assert_err(siterec_store_snapshot(st, "vm/d0", small, sizeof(small)), SITEREC_EINVAL);
	th_assert_err(siterec_store_snapshot(st, "vm/d0", NULL, 64), SITEREC_EINVAL);
	th_assert_err(siterec_store_snapshot(st, "none", nid, sizeof(nid)), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_snapshot_delete(st, "vm/d0", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_snapshot_delete(st, "vm/d0", "abc"), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_read(st, "vm/d0", "77", live, 512, 0), SITEREC_ENOTFOUND);
	/* delete with snapshots */
	th_assert_err(siterec_store_disk_delete(st, "vm/d0", 0, NULL), SITEREC_EBUSY);
	assert_int_equal(siterec_store_disk_delete(st, "vm/d0", SITEREC_STORE_DELETE_SNAPSHOTS, NULL), 0);
	th_assert_err(siterec_store_read(st, "vm/d0", nid, live, 512, 0), SITEREC_ENOTFOUND);
	for (int i = 0; i < N; i++)
		free(models[i]);
	free(live);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* Without reflinks, a snapshot after changing 1% of the disk costs about 1% more space. */
static void test_snapshot_space(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 64 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "big", size), 0);
	uint8_t *live = calloc(1, size);
	write_model(st, "big", live, 0, size, 3); /* fully allocated */
	char id[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_snapshot(st, "big", id, sizeof(id)), 0);
	uint64_t before = du(dir);
	/* ~1%: 10 scattered 64 KiB pieces */
	for (int i = 0; i < 10; i++)
		write_model(st, "big", live, (uint64_t)i * 6 * MiB + 8192, 64 * KiB, 100 + (uint64_t)i);
	assert_int_equal(siterec_store_snapshot(st, "big", id, sizeof(id)), 0);
	uint64_t after = du(dir);
	/* each piece straddles two chunks: 20 chunks = 1.25 MiB; a full copy would be 64 MiB
	 * (with reflinks the growth is smaller still) */
	assert_true(after - before <= 2 * MiB);
	check_snap(st, "big", id, live, size);
	free(live);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

static int cancel_at;
static int progress_calls;
static int progress_cb(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	assert_true(done <= total);
	return ++progress_calls == cancel_at ? 42 : 0;
}

static void test_progress_cancel(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *u = url_of(dir);
	siterec_store_options o;
	siterec_store_options_init(&o, 1);
	o.progress = progress_cb;
	siterec_store *st;
	assert_int_equal(siterec_store_open(&st, u, &o), 0);
	assert_int_equal(siterec_store_disk_create(st, "d", 4 * MiB), 0);
	uint8_t *live = calloc(1, 4 * MiB);
	cancel_at = 0;
	write_model(st, "d", live, 0, 4 * MiB, 5);
	assert_true(progress_calls >= 2);
	progress_calls = 0;
	cancel_at = 10;
	char id[SITEREC_STORE_ID_MAX];
	th_assert_err(siterec_store_snapshot(st, "d", id, sizeof(id)), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	/* nothing half-made is left: a snapshot now works and the list has one */
	cancel_at = 0;
	assert_int_equal(siterec_store_snapshot(st, "d", id, sizeof(id)), 0);
	check_snap(st, "d", id, live, 4 * MiB);
	/* cancel the writer's finish */
	progress_calls = 0;
	cancel_at = 1;
	siterec_store_writer *w;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, live, 512, 0), 0);
	th_assert_err(siterec_store_writer_finish(w), SITEREC_EABORTED);
	siterec_store_writer_free(w);
	free(live);
	free(u);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

static void test_docs(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	char e1[SITEREC_STORE_ETAG_MAX], e2[SITEREC_STORE_ETAG_MAX], e3[SITEREC_STORE_ETAG_MAX];
	void *data = (void *)0x1;
	size_t len = 0;
	th_assert_err(siterec_store_doc_get(st, "plan/a.json", &data, &len, NULL, 0), SITEREC_ENOTFOUND);
	assert_null(data);
	th_assert_err(siterec_store_doc_put(st, "plan/a.json", "x", 1, "1-00", NULL, 0), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_put(st, "plan/a.json", "one", 3, "", e1, sizeof(e1)), 0);
	th_assert_err(siterec_store_doc_put(st, "plan/a.json", "two", 3, "", NULL, 0), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_put(st, "plan/a.json", "one", 3, e1, e2, sizeof(e2)), 0);
	assert_string_not_equal(e1, e2); /* equal content, new ETag */
	th_assert_err(siterec_store_doc_put(st, "plan/a.json", "two", 3, e1, NULL, 0), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_put(st, "plan/a.json", "three", 5, NULL, e3, sizeof(e3)), 0);
	assert_string_not_equal(e2, e3);
	char eg[SITEREC_STORE_ETAG_MAX];
	assert_int_equal(siterec_store_doc_get(st, "plan/a.json", &data, &len, eg, sizeof(eg)), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "three", 5);
	assert_string_equal(eg, e3);
	siterec_free(data);
	char tiny[4];
	th_assert_err(siterec_store_doc_get(st, "plan/a.json", &data, &len, tiny, sizeof(tiny)),
	              SITEREC_EINVAL);
	/* empty document */
	assert_int_equal(siterec_store_doc_put(st, "empty", NULL, 0, NULL, NULL, 0), 0);
	assert_int_equal(siterec_store_doc_get(st, "empty", &data, &len, NULL, 0), 0);
	assert_int_equal(len, 0);
	siterec_free(data);
	/* a leftover temporary file (crash during a replace) changes nothing */
	char *tmp = th_path(dir, "docs/plan%a.json/doc.tmp");
	th_write_file(tmp, "garbage", 7);
	assert_int_equal(siterec_store_doc_get(st, "plan/a.json", &data, &len, eg, sizeof(eg)), 0);
	assert_memory_equal(data, "three", 5);
	siterec_free(data);
	assert_int_equal(siterec_store_doc_put(st, "plan/a.json", "four", 4, e3, e1, sizeof(e1)), 0);
	/* delete */
	th_assert_err(siterec_store_doc_delete(st, "plan/a.json", e3), SITEREC_ECONFLICT);
	th_assert_err(siterec_store_doc_delete(st, "plan/a.json", ""), SITEREC_ECONFLICT);
	assert_int_equal(siterec_store_doc_delete(st, "plan/a.json", e1), 0);
	th_assert_err(siterec_store_doc_delete(st, "plan/a.json", NULL), SITEREC_ENOTFOUND);
	th_assert_err(siterec_store_doc_get(st, "plan/a.json", &data, &len, NULL, 0), SITEREC_ENOTFOUND);
	/* re-created with the same content: an ETag never seen before */
	assert_int_equal(siterec_store_doc_put(st, "plan/a.json", "one", 3, "", e2, sizeof(e2)), 0);
	assert_string_not_equal(e1, e2);
	/* bad input */
	th_assert_err(siterec_store_doc_put(st, "x", NULL, 3, NULL, NULL, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_put(st, "x", "a", (4u << 20) + 1, NULL, NULL, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_put(st, "x", "a", 1, NULL, e1, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_get(st, "x", NULL, &len, NULL, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_get(st, "x", &data, NULL, NULL, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_get(NULL, "x", &data, &len, NULL, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_doc_delete(st, "../x", NULL), SITEREC_EINVAL);
	free(tmp);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

static void test_leases(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	char l1[SITEREC_STORE_LEASE_MAX], l2[SITEREC_STORE_LEASE_MAX];
	th_assert_err(siterec_store_lease_acquire(st, "d", 0, NULL, l1, sizeof(l1)), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	th_assert_err(siterec_store_lease_acquire(st, "d", 10, NULL, l1, sizeof(l1)), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_acquire(st, "d", 61, NULL, l1, sizeof(l1)), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_acquire(st, "d", 0, "bad/id", l1, sizeof(l1)), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_acquire(st, "d", 0, NULL, NULL, 64), SITEREC_EINVAL);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, NULL, l1, sizeof(l1)), 0);
	assert_true(strlen(l1) > 8);
	th_assert_err(siterec_store_lease_acquire(st, "d", 0, NULL, l2, sizeof(l2)), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_acquire(st, "d", 0, "other", l2, sizeof(l2)), SITEREC_ELEASE);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 0, l1, l2, sizeof(l2)), 0); /* same id again */
	assert_string_equal(l1, l2);
	assert_int_equal(siterec_store_lease_renew(st, "d", l1), 0);
	th_assert_err(siterec_store_lease_renew(st, "d", "other"), SITEREC_ELEASE);
	/* writes need the lease */
	siterec_store_writer *w;
	th_assert_err(siterec_store_writer_open(&w, st, "d", NULL), SITEREC_ELEASE);
	th_assert_err(siterec_store_writer_open(&w, st, "d", "other"), SITEREC_ELEASE);
	assert_int_equal(siterec_store_writer_open(&w, st, "d", l1), 0);
	uint8_t b[512];
	memset(b, 7, sizeof(b));
	assert_int_equal(siterec_store_writer_write(w, b, 512, 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	th_assert_err(siterec_store_disk_delete(st, "d", 0, NULL), SITEREC_ELEASE);
	/* a lease released under a writer makes its finish fail */
	th_assert_err(siterec_store_lease_release(st, "d", "other"), SITEREC_ELEASE);
	assert_int_equal(siterec_store_lease_release(st, "d", l1), 0);
	assert_int_equal(siterec_store_writer_write(w, b, 512, 512), 0);
	th_assert_err(siterec_store_writer_finish(w), SITEREC_ELEASE);
	siterec_store_writer_free(w);
	th_assert_err(siterec_store_lease_release(st, "d", l1), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_renew(st, "d", l1), SITEREC_ELEASE);
	/* documents are not leased (If-Match guards them) */
	assert_int_equal(siterec_store_doc_put(st, "doc", "a", 1, NULL, NULL, 0), 0);
	th_assert_err(siterec_store_lease_acquire(st, "doc", 0, "mine", l2, sizeof(l2)), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_acquire(st, "nothing", 0, "mine", l2, sizeof(l2)),
	              SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_doc_put(st, "doc", "b", 1, NULL, NULL, 0), 0);
	assert_int_equal(siterec_store_doc_delete(st, "doc", NULL), 0);

	/* two processes: the child holds an infinite lease, the parent cannot take it */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		siterec_store *cs = open_store(dir);
		char cl[SITEREC_STORE_LEASE_MAX];
		int rc = siterec_store_lease_acquire(cs, "d", 0, "child", cl, sizeof(cl));
		siterec_store_free(cs);
		siterec_store_free(st); /* the parent's copies: valgrind checks the child too */
		free(dir);
		_exit(rc == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	th_assert_err(siterec_store_lease_acquire(st, "d", 15, NULL, l1, sizeof(l1)), SITEREC_ELEASE);
	assert_non_null(strstr(siterec_error_last()->message, ":")); /* names the owner host:pid */
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, "child"), 0);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* A failover breaks the lease of a holder that may still be alive: the holder's
 * renewal, release and writes fail (a writer opened before the break too, and
 * none of its data lands), and another holder leases the disk at once. */
static void test_lease_break(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	char la[SITEREC_STORE_LEASE_MAX], lb[SITEREC_STORE_LEASE_MAX];
	uint8_t b[512], got[512], zero[512];
	memset(zero, 0, sizeof(zero));
	th_assert_err(siterec_store_lease_break(NULL, "d"), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_break(st, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_break(st, "../d"), SITEREC_EINVAL);
	th_assert_err(siterec_store_lease_break(st, "d"), SITEREC_ENOTFOUND);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	/* nothing to break */
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, "holder-a", la, sizeof(la)), 0);
	siterec_store_writer *wa = NULL, *w = NULL;
	assert_int_equal(siterec_store_writer_open(&wa, st, "d", la), 0);
	memset(b, 1, sizeof(b));
	assert_int_equal(siterec_store_writer_write(wa, b, sizeof(b), 0), 0);
	assert_int_equal(siterec_store_writer_finish(wa), 0);
	/* another process breaks it: the holder is fenced at once */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		siterec_store *cs = open_store(dir);
		int rc = siterec_store_lease_break(cs, "d");
		siterec_store_free(cs);
		siterec_store_writer_free(wa); /* the parent's copies: valgrind checks the child too */
		siterec_store_free(st);
		free(dir);
		_exit(rc == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	th_assert_err(siterec_store_lease_renew(st, "d", la), SITEREC_ELEASE);
	memset(b, 2, sizeof(b));
	assert_int_equal(siterec_store_writer_write(wa, b, sizeof(b), 512), 0);
	th_assert_err(siterec_store_writer_finish(wa), SITEREC_ELEASE);
	siterec_store_writer_free(wa);
	th_assert_err(siterec_store_writer_open(&w, st, "d", la), SITEREC_ELEASE);
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 512), 0);
	assert_memory_equal(got, zero, sizeof(got));
	/* B takes it at once with its own id and writes; A stays out */
	assert_int_equal(siterec_store_lease_acquire(st, "d", 60, "holder-b", lb, sizeof(lb)), 0);
	assert_string_equal(lb, "holder-b");
	th_assert_err(siterec_store_lease_release(st, "d", la), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_renew(st, "d", la), SITEREC_ELEASE);
	assert_int_equal(siterec_store_writer_open(&w, st, "d", lb), 0);
	memset(b, 3, sizeof(b));
	assert_int_equal(siterec_store_writer_write(w, b, sizeof(b), 512), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 512), 0);
	assert_memory_equal(got, b, sizeof(got));
	/* a break right after acquire also fences a release; an infinite lease breaks too */
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	th_assert_err(siterec_store_lease_release(st, "d", lb), SITEREC_ELEASE);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 0, NULL, la, sizeof(la)), 0);
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);
	assert_int_equal(siterec_store_lease_break(st, "d"), 0);  /* broken already */
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, NULL), 0);
	/* documents are not leased */
	assert_int_equal(siterec_store_doc_put(st, "doc", "a", 1, NULL, NULL, 0), 0);
	th_assert_err(siterec_store_lease_break(st, "doc"), SITEREC_EINVAL);
	assert_int_equal(siterec_store_doc_delete(st, "doc", NULL), 0);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* One writer kept open across snapshots and deletes: its cached chunk record must
 * notice every replacement (file systems reuse a freed inode number at once), so
 * ids are never reused and no change is lost to the next snapshot. */
static void test_snapshot_ids_one_writer(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 4 * MiB;
	uint8_t *model = calloc(1, size), *got = malloc(size);
	assert_non_null(model);
	assert_non_null(got);
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	char seen[12][SITEREC_STORE_ID_MAX];
	for (int i = 0; i < 12; i++) {
		uint64_t off = (uint64_t)(i % 4) * MiB + (uint64_t)i * 4096;
		th_fill(model + off, 4096, 100 + (uint64_t)i);
		assert_int_equal(siterec_store_writer_write(w, model + off, 4096, off), 0);
		assert_int_equal(siterec_store_writer_finish(w), 0);
		assert_int_equal(siterec_store_snapshot(st, "d", seen[i], sizeof(seen[i])), 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
		assert_int_equal(siterec_store_read(st, "d", seen[i], got, size, 0), 0);
		assert_memory_equal(got, model, size);
		/* every other one deleted at once: its files go, their inodes are free */
		if (i % 2 == 0)
			assert_int_equal(siterec_store_snapshot_delete(st, "d", seen[i]), 0);
	}
	siterec_store_writer_free(w);
	free(model);
	free(got);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* More snapshots than a delta chain may be deep: each one reads back whole. */
static void test_snapshot_long_chain(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 2 * MiB;
	const int n = 150;
	uint8_t *model = calloc(1, size), *got = malloc(size);
	assert_non_null(model);
	assert_non_null(got);
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	char (*ids)[SITEREC_STORE_ID_MAX] = calloc((size_t)n, SITEREC_STORE_ID_MAX);
	uint8_t *at = malloc(size * 3);  /* the model at snapshots 0, 70 and n-1 */
	assert_non_null(ids);
	assert_non_null(at);
	for (int i = 0; i < n; i++) {
		siterec_store_writer *w = NULL;
		uint64_t off = (uint64_t)(i * 7919) % (size / 512) * 512 / 4096 * 4096;
		th_fill(model + off, 4096, 7 + (uint64_t)i);
		assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
		assert_int_equal(siterec_store_writer_write(w, model + off, 4096, off), 0);
		assert_int_equal(siterec_store_writer_finish(w), 0);
		siterec_store_writer_free(w);
		assert_int_equal(siterec_store_snapshot(st, "d", ids[i], SITEREC_STORE_ID_MAX), 0);
		if (i == 0 || i == 70 || i == n - 1)
			memcpy(at + (i == 0 ? 0 : i == 70 ? size : 2 * size), model, size);
	}
	const int probe[3] = { 0, 70, n - 1 };
	for (int k = 0; k < 3; k++) {
		assert_int_equal(siterec_store_read(st, "d", ids[probe[k]], got, size, 0), 0);
		assert_memory_equal(got, at + (size_t)k * size, size);
	}
	/* every snapshot is readable (none past a chain limit) */
	for (int i = 0; i < n; i++)
		assert_int_equal(siterec_store_read(st, "d", ids[i], got, 4096, 0), 0);
	/* deleting the oldest ones folds them into their children: the rest still read */
	for (int i = 0; i < 80; i++)
		assert_int_equal(siterec_store_snapshot_delete(st, "d", ids[i]), 0);
	assert_int_equal(siterec_store_read(st, "d", ids[n - 1], got, size, 0), 0);
	assert_memory_equal(got, at + 2 * size, size);
	free(ids);
	free(at);
	free(model);
	free(got);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* A 15 s lease runs out (the one sleep of this program): see th_lease_expiry.
 * Fenced: each write checks the lease under the disk lock before its data lands. */
static void test_lease_expiry(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	assert_int_equal(siterec_store_disk_create(st, "d", MiB), 0);
	th_lease_expiry(st, "first", "second", 16);
	assert_int_equal(siterec_store_disk_delete(st, "d", 0, NULL), 0);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

typedef struct lrec {
	char text[4096];
} lrec;

static int list_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	lrec *r = payload;
	char line[512];
	snprintf(line, sizeof(line), "%s %d %llu %s\n", name, kind, (unsigned long long)size,
	         snap ? snap : "-");
	strcat(r->text, line);
	return 0;
}

static int list_stop(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	(void)name; (void)kind; (void)size; (void)snap; (void)payload;
	return 5;
}

static void test_list(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	assert_int_equal(siterec_store_disk_create(st, "vm2/b", 1024), 0);
	assert_int_equal(siterec_store_disk_create(st, "vm1/a", 512), 0);
	assert_int_equal(siterec_store_doc_put(st, "vm1/plan", "abc", 3, NULL, NULL, 0), 0);
	assert_int_equal(siterec_store_doc_put(st, "zz", "", 0, NULL, NULL, 0), 0);
	char id[SITEREC_STORE_ID_MAX];
	assert_int_equal(siterec_store_snapshot(st, "vm1/a", id, sizeof(id)), 0);
	assert_int_equal(siterec_store_snapshot(st, "vm1/a", id, sizeof(id)), 0);
	lrec r = { "" };
	assert_int_equal(siterec_store_list(st, NULL, list_cb, &r), 0);
	assert_string_equal(r.text, "vm1/a 1 512 -\nvm1/a 2 512 1\nvm1/a 2 512 2\nvm1/plan 3 3 -\n"
	                            "vm2/b 1 1024 -\nzz 3 0 -\n");
	r.text[0] = 0;
	assert_int_equal(siterec_store_list(st, "vm1/", list_cb, &r), 0);
	assert_string_equal(r.text, "vm1/a 1 512 -\nvm1/a 2 512 1\nvm1/a 2 512 2\nvm1/plan 3 3 -\n");
	r.text[0] = 0;
	assert_int_equal(siterec_store_list(st, "nothing", list_cb, &r), 0);
	assert_string_equal(r.text, "");
	th_assert_err(siterec_store_list(st, "", list_stop, NULL), SITEREC_EABORTED);
	th_assert_err(siterec_store_list(st, "", NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_store_list(NULL, "", list_cb, &r), SITEREC_EINVAL);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

/* Merging writer: queue one write (data from model's future content, or a zero
 * when zero != 0) and apply it to model. */
static void mw_write(siterec_store_writer *w, uint8_t *model, uint64_t off, uint64_t len,
                     uint64_t seed, int zero)
{
	if (zero) {
		assert_int_equal(siterec_store_writer_zero(w, off, len), 0);
		memset(model + off, 0, len);
		return;
	}
	th_fill(model + off, len, seed);
	assert_int_equal(siterec_store_writer_write(w, model + off, len, off), 0);
}

/* Scattered small writes with small gaps over a disk of old content: the gaps
 * keep it, the writes land, whatever the merged runs look like. */
static void test_writer_merge(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	siterec_store *st = open_store(dir);
	const uint64_t size = 16 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "m", size), 0);
	uint8_t *model = malloc(size), *back = malloc(size), *zeros = calloc(1, 4 * KiB);
	assert_non_null(model);
	assert_non_null(back);
	write_model(st, "m", model, 0, size, 1);  /* old content everywhere */

	siterec_store_writer *w;
	assert_int_equal(siterec_store_writer_open(&w, st, "m", NULL), 0);
	th_assert_err(siterec_store_writer_set_merge(NULL, 512), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_set_merge(w, 100), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_set_merge(w, 4 * MiB + 512), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_set_merge(w, UINT64_MAX), SITEREC_EINVAL);
	assert_int_equal(siterec_store_writer_set_merge(w, 4 * MiB), 0);
	assert_int_equal(siterec_store_writer_set_merge(w, 0), 0);
	assert_int_equal(siterec_store_writer_set_merge(w, 64 * KiB), 0);

	/* run A: 4 KiB writes, gaps of 0.5 to 8 KiB, with zeros inside: an explicit
	 * zero, an all-zero buffer, and a write with a 64 KiB zero run inside */
	uint64_t off = 0, seed = 100;
	for (int i = 0; i < 64; i++) {
		if (i == 20) {
			assert_int_equal(siterec_store_writer_write(w, zeros, 4 * KiB, off), 0);
			memset(model + off, 0, 4 * KiB);
		} else if (i == 30) {
			th_fill(model + off, 128 * KiB, seed++);
			memset(model + off + 32 * KiB, 0, 64 * KiB);
			assert_int_equal(siterec_store_writer_write(w, model + off, 128 * KiB, off), 0);
			off += 124 * KiB;
		} else {
			mw_write(w, model, off, 4 * KiB, seed++, i == 10);
		}
		off += 4 * KiB + 512 * (1 + (uint64_t)i % 16);
	}
	/* set_merge after the first write */
	th_assert_err(siterec_store_writer_set_merge(w, 512), SITEREC_EINVAL);
	/* going back, or overlapping the last write: refused, not queued */
	uint8_t junk[8192];
	memset(junk, 0x5a, sizeof(junk));
	uint64_t last = off - 512 * (1 + 63 % 16) - 4 * KiB;  /* the last write's offset */
	th_assert_err(siterec_store_writer_write(w, junk, 4096, 0), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_write(w, junk, 8192, last), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_write(w, junk, 512, last + 3584), SITEREC_EINVAL);
	th_assert_err(siterec_store_writer_zero(w, 8192, 4096), SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, "ascending"));

	/* a gap wider than max_gap, then run B: 4 KiB every 8 KiB over 5 MiB, past
	 * the 4 MiB a request may carry */
	off += 64 * KiB + 512;
	for (int i = 0; i < 640; i++, off += 8 * KiB)
		mw_write(w, model, off, 4 * KiB, seed++, 0);
	/* a long clear stays a clear; a write after it; a short zero then a write
	 * past a gap (the zero becomes data); a write longer than 4 MiB past a gap */
	off += 4 * KiB;
	mw_write(w, model, off, 2 * MiB, 0, 1);
	off += 2 * MiB + 4 * KiB;
	mw_write(w, model, off, 4 * KiB, seed++, 0);
	off += 8 * KiB;
	mw_write(w, model, off, 8 * KiB, 0, 1);
	off += 12 * KiB;
	mw_write(w, model, off, 4 * KiB, seed++, 0);
	off += 8 * KiB;
	assert_true(off + 5 * MiB + 8 * KiB <= size);
	mw_write(w, model, off, 5 * MiB, seed++, 0);
	mw_write(w, model, size - 4 * KiB, 4 * KiB, seed++, 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	assert_int_equal(siterec_store_read(st, "m", NULL, back, size, 0), 0);
	assert_memory_equal(back, model, size);

	/* after a finish the order starts over */
	mw_write(w, model, 4 * KiB, 4 * KiB, seed++, 0);
	mw_write(w, model, 12 * KiB, 4 * KiB, seed++, 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "m", NULL, back, size, 0), 0);
	assert_memory_equal(back, model, size);

	/* it merges: on a fresh (sparse) disk the gaps of a merged run are written
	 * (zeros read back), so 64 writes in two runs leave two extents, where a
	 * writer without merging leaves one per write */
	for (int merge = 1; merge >= 0; merge--) {
		const char *name = merge ? "h1" : "h0";
		assert_int_equal(siterec_store_disk_create(st, name, 8 * MiB), 0);
		assert_int_equal(siterec_store_writer_open(&w, st, name, NULL), 0);
		if (merge)
			assert_int_equal(siterec_store_writer_set_merge(w, 64 * KiB), 0);
		memset(model, 0, 8 * MiB);
		for (int i = 0; i < 64; i++)
			mw_write(w, model, (i < 32 ? 0 : MiB) + (uint64_t)i * 64 * KiB, 4 * KiB, seed++, 0);
		assert_int_equal(siterec_store_writer_finish(w), 0);
		siterec_store_writer_free(w);
		assert_int_equal(siterec_store_read(st, name, NULL, back, 8 * MiB, 0), 0);
		assert_memory_equal(back, model, 8 * MiB);
		th_check_merged(st, name, merge);
	}
	free(model);
	free(back);
	free(zeros);
	siterec_store_free(st);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_names_and_disks),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_merge),
		cmocka_unit_test(test_write_cb_dlog),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_snapshot_space),
		cmocka_unit_test(test_progress_cancel),
		cmocka_unit_test(test_docs),
		cmocka_unit_test(test_leases),
		cmocka_unit_test(test_lease_expiry),
		cmocka_unit_test(test_lease_break),
		cmocka_unit_test(test_snapshot_ids_one_writer),
		cmocka_unit_test(test_snapshot_long_chain),
		cmocka_unit_test(test_list),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
