/*
 * VHDX reading through the public API: images made by qemu-img/qemu-io compared
 * byte for byte with `qemu-img convert -O raw`; differencing chains, crafted logs
 * and damaged files made by the test-only writer (vhdx_writer.c).
 */
#include "helpers.h"
#include "vhdx_writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MB (1024ull * 1024ull)

static int have_qemu(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = system("qemu-img --version >/dev/null 2>&1 && "
		                "qemu-io --version >/dev/null 2>&1") == 0;
	return cached;
}

#define NEED_QEMU() do { if (!have_qemu()) skip(); } while (0)

static siterec_disk *open_ok(const char *path, uint32_t format, uint32_t flags)
{
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.format = format;
	o.flags = flags;
	siterec_disk *d = NULL;
	int rc = siterec_disk_open(&d, path, &o);
	if (rc)
		fprintf(stderr, "open %s: %d %s\n", path, rc, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return d;
}

static int open_rc(const char *path, uint32_t flags, uint32_t max_chain)
{
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.flags = flags;
	o.max_chain = max_chain;
	siterec_disk *d = NULL;
	int rc = siterec_disk_open(&d, path, &o);
	if (rc == 0)
		siterec_disk_free(d);
	else
		assert_null(d);
	return rc;
}

static void get_info(siterec_disk *d, siterec_disk_info *in)
{
	memset(in, 0, sizeof(*in));
	in->version = SITEREC_DISK_INFO_VERSION;
	assert_int_equal(siterec_disk_info_get(d, in), 0);
}

/* Whole-disk compare against an expected buffer, in odd-sized pieces so that
 * reads straddle block and sector boundaries. */
static void compare_buf(siterec_disk *d, const uint8_t *want, uint64_t size)
{
	size_t chunk = 3 * MB + 4096 + 17;
	uint8_t *b = malloc(chunk);
	assert_non_null(b);
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		assert_int_equal(siterec_disk_read(d, b, n, off), 0);
		assert_memory_equal(b, want + off, n);
	}
	/* random small reads */
	uint64_t s = 42;
	for (int i = 0; i < 200; i++) {
		uint64_t off = th_rand(&s) % size;
		size_t n = (size_t)(th_rand(&s) % 70000) + 1;
		if (n > size - off)
			n = (size_t)(size - off);
		assert_int_equal(siterec_disk_read(d, b, n, off), 0);
		assert_memory_equal(b, want + off, n);
	}
	free(b);
}

struct wr { uint8_t pat; uint64_t off, len; };

/* qemu-img create + qemu-io writes + convert to raw. */
static void qemu_image(const char *vhdx, const char *raw, const char *subformat,
                       const char *block_size, const char *size, const struct wr *w, int nw)
{
	th_sh("qemu-img create -q -f vhdx -o subformat=%s,block_size=%s '%s' %s", subformat,
	   block_size, vhdx, size);
	if (nw) {
		char cmd[4096];
		int n = snprintf(cmd, sizeof(cmd), "qemu-io -f vhdx");
		for (int i = 0; i < nw; i++)
			n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " -c 'write -P 0x%02x %llu %llu'",
			              w[i].pat, (unsigned long long)w[i].off, (unsigned long long)w[i].len);
		snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s' >/dev/null", vhdx);
		th_sh("%s", cmd);
	}
	if (raw)
		th_sh("qemu-img convert -f vhdx -O raw '%s' '%s'", vhdx, raw);
}

static void check_against_raw(const char *vhdx, const char *raw, uint32_t want_kind,
                              uint32_t want_bs, int all_allocated)
{
	size_t rl;
	uint8_t *want = th_read_file(raw, &rl);
	siterec_disk *d = open_ok(vhdx, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info in;
	get_info(d, &in);
	assert_int_equal(in.format, SITEREC_DISK_FORMAT_VHDX);
	assert_int_equal(in.kind, want_kind);
	assert_int_equal(in.block_size, want_bs);
	assert_int_equal(in.logical_sector, 512);
	assert_int_equal(in.virtual_size, rl);
	assert_int_equal(in.chain_depth, 0);
	assert_int_equal(in.log_replayed, 0);
	assert_int_equal(in.writable, 0);
	compare_buf(d, want, rl);
	/* block status: unallocated runs really are zeros, runs tile the disk */
	uint64_t off = 0;
	while (off < rl) {
		uint64_t run = 0;
		int a = -1;
		assert_int_equal(siterec_disk_block_status(d, off, rl - off, &run, &a), 0);
		assert_true(run > 0 && run <= rl - off);
		if (!a) {
			for (uint64_t i = 0; i < run; i++)
				assert_int_equal(want[off + i], 0);
		}
		if (all_allocated)
			assert_int_equal(a, 1);
		off += run;
	}
	siterec_disk_free(d);
	free(want);
}

static const struct wr scattered[] = {
	{ 0x11, 0, 4096 }, { 0x22, 512 * 1024 + 512, 3 * MB }, { 0x33, 7 * MB - 512, 1024 },
	{ 0x44, 10 * MB + 4096, 65536 }, { 0x55, 13 * MB - 8192, 8192 },
};

/* qemu's fixed images mark never-written blocks ZERO unless block_state_zero=off,
 * which makes every block FULLY_PRESENT: only then is all of the disk allocated. */
static void dyn_case(const char *bs, uint32_t bsv, const char *subformat, uint32_t kind)
{
	char *dir = th_tmpdir();
	char *v = th_path(dir, "d.vhdx"), *r = th_path(dir, "d.raw");
	/* 13 MiB: not a multiple of 2 MiB nor of 32 MiB */
	qemu_image(v, r, subformat, bs, "13M", scattered, 5);
	check_against_raw(v, r, kind, bsv, strstr(subformat, "block_state_zero=off") != NULL);
	free(v);
	free(r);
	th_tmpdir_remove(dir);
}

static void test_dynamic_1m(void **st) { (void)st; NEED_QEMU(); dyn_case("1M", (uint32_t)MB, "dynamic", SITEREC_DISK_KIND_DYNAMIC); }
static void test_dynamic_2m(void **st) { (void)st; NEED_QEMU(); dyn_case("2M", 2 * (uint32_t)MB, "dynamic", SITEREC_DISK_KIND_DYNAMIC); }
static void test_dynamic_32m(void **st) { (void)st; NEED_QEMU(); dyn_case("32M", 32 * (uint32_t)MB, "dynamic", SITEREC_DISK_KIND_DYNAMIC); }
static void test_fixed_1m(void **st) { (void)st; NEED_QEMU(); dyn_case("1M", (uint32_t)MB, "fixed", SITEREC_DISK_KIND_FIXED); }
static void test_fixed_2m(void **st) { (void)st; NEED_QEMU(); dyn_case("2M", 2 * (uint32_t)MB, "fixed,block_state_zero=off", SITEREC_DISK_KIND_FIXED); }
static void test_fixed_32m(void **st) { (void)st; NEED_QEMU(); dyn_case("32M", 32 * (uint32_t)MB, "fixed", SITEREC_DISK_KIND_FIXED); }

static void test_empty_and_odd_size(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	char *v = th_path(dir, "e.vhdx"), *r = th_path(dir, "e.raw");
	/* no writes at all; size a few sectors past a block */
	qemu_image(v, r, "dynamic", "1M", "3146240", NULL, 0); /* 3 MiB + 1536 */
	check_against_raw(v, r, SITEREC_DISK_KIND_DYNAMIC, (uint32_t)MB, 0);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_VHDX, 0);
	uint64_t run;
	int a;
	assert_int_equal(siterec_disk_block_status(d, 0, 3146240, &run, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run, 3146240);
	siterec_disk_free(d);
	free(v);
	free(r);
	th_tmpdir_remove(dir);
}

/* A sparse disk over 4 GiB: offsets past 32 bits, writes near the end. */
static void test_large_sparse(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	char *v = th_path(dir, "l.vhdx");
	const uint64_t size = 5 * 1024 * MB + 512 * 3;
	char sz[32];
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	struct wr w[] = { { 0x71, 4096 * MB + 12345 * 512, 137 * 512 },
	                  { 0x72, size - 2 * MB - 1536, 2 * MB + 1536 },
	                  { 0x73, 100 * MB, 512 } };
	qemu_image(v, NULL, "dynamic", "32M", sz, w, 3);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info in;
	get_info(d, &in);
	assert_int_equal(in.virtual_size, size);
	uint8_t *b = malloc(3 * MB);
	assert_non_null(b);
	for (int i = 0; i < 3; i++) {
		/* the written range and a margin before and after */
		uint64_t off = w[i].off >= 4096 ? w[i].off - 4096 : 0;
		uint64_t end = w[i].off + w[i].len + 4096 > size ? size : w[i].off + w[i].len + 4096;
		size_t n = (size_t)(end - off);
		assert_true(n <= 3 * MB);
		assert_int_equal(siterec_disk_read(d, b, n, off), 0);
		for (size_t k = 0; k < n; k++) {
			uint64_t p = off + k;
			/* later writes win; w[0] and w[2] do not overlap others */
			uint8_t e = 0;
			for (int j = 0; j < 3; j++)
				if (p >= w[j].off && p < w[j].off + w[j].len)
					e = w[j].pat;
			if (b[k] != e)
				fail_msg("byte %llu: %02x, want %02x", (unsigned long long)p, b[k], e);
		}
	}
	/* the status walk finds exactly the allocated blocks (32 MiB each) */
	uint64_t off = 0, alloc = 0;
	int runs = 0;
	while (off < size) {
		uint64_t run;
		int a;
		assert_int_equal(siterec_disk_block_status(d, off, size - off, &run, &a), 0);
		if (a)
			alloc += run;
		off += run;
		runs++;
	}
	assert_true(runs <= 8);
	assert_true(alloc >= 3 * 32 * MB && alloc <= 5 * 32 * MB);
	free(b);
	siterec_disk_free(d);
	free(v);
	th_tmpdir_remove(dir);
}

/* Writer-made dynamic disk with 4096-byte logical sectors (qemu cannot). */
static void test_logical_4096(void **st)
{
	(void)st;
	char *dir = th_tmpdir();
	char *v = th_path(dir, "s4k.vhdx");
	uint64_t size = 9 * MB + 4096 * 3;
	struct vw_params p = { .virtual_size = size, .block_size = 2 * (uint32_t)MB,
	                       .logical_sector = 4096 };
	vw *w = vw_new(&p);
	uint8_t *want = calloc(1, size);
	assert_non_null(want);
	th_fill(want + 4096, 3 * MB, 1);
	th_fill(want + size - 8192, 8192, 2);
	vw_write(w, 4096, want + 4096, 3 * MB);
	vw_write(w, size - 8192, want + size - 8192, 8192);
	vw_save(w, v);
	vw_free(w);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_VHDX, 0);
	siterec_disk_info in;
	get_info(d, &in);
	assert_int_equal(in.logical_sector, 4096);
	assert_int_equal(in.physical_sector, 4096);
	assert_int_equal(in.kind, SITEREC_DISK_KIND_DYNAMIC);
	compare_buf(d, want, size);
	siterec_disk_free(d);
	free(want);
	free(v);
	th_tmpdir_remove(dir);
}

/* ---- differencing ---- */

struct chain {
	char *dir, *base, *mid, *top;
	uint8_t *want_base, *want_mid, *want_top;
	uint64_t size;
};

/* base (qemu, dynamic 1 MiB blocks) <- mid <- top (writer). */
static void make_chain(struct chain *c, int levels)
{
	memset(c, 0, sizeof(*c));
	c->dir = th_tmpdir();
	c->base = th_path(c->dir, "base.vhdx");
	c->mid = th_path(c->dir, "mid.vhdx");
	c->top = th_path(c->dir, "top.vhdx");
	char *raw = th_path(c->dir, "base.raw");
	c->size = 8 * MB;
	struct wr w[] = { { 0xB1, 0, 8 * MB }, { 0xB2, 3 * MB + 512, 4096 } };
	qemu_image(c->base, raw, "dynamic", "1M", "8M", w, 2);
	size_t rl;
	c->want_base = th_read_file(raw, &rl);
	assert_int_equal(rl, c->size);
	unlink(raw);
	free(raw);
	struct vw_layout bl;
	vw_layout(c->base, &bl);

	/* mid: block 1 fully, sectors in block 3 (partial), block 5 forced ZERO */
	struct vw_params p = { .virtual_size = c->size, .parent_linkage = bl.data_write_guid,
	                       .relative_path = ".\\base.vhdx",
	                       .absolute_win32_path = "C:\\vms\\base.vhdx" };
	vw *m = vw_new(&p);
	c->want_mid = malloc(c->size);
	assert_non_null(c->want_mid);
	memcpy(c->want_mid, c->want_base, c->size);
	uint8_t *buf = malloc(MB);
	assert_non_null(buf);
	th_fill(buf, MB, 10);
	vw_write(m, 1 * MB, buf, MB);
	memcpy(c->want_mid + 1 * MB, buf, MB);
	th_fill(buf, 5 * 512, 11);
	vw_write(m, 3 * MB + 5 * 512, buf, 5 * 512);
	memcpy(c->want_mid + 3 * MB + 5 * 512, buf, 5 * 512);
	th_fill(buf, 512, 12);
	vw_write(m, 3 * MB + 100 * 512, buf, 512);
	memcpy(c->want_mid + 3 * MB + 100 * 512, buf, 512);
	vw_set_block_state(m, 5, VW_ZERO);
	memset(c->want_mid + 5 * MB, 0, MB);
	vw_save(m, c->mid);

	if (levels >= 3) {
		struct vw_params q = { .virtual_size = c->size, .parent_linkage = vw_guid(m),
		                       .relative_path = "mid.vhdx" };
		vw *t = vw_new(&q);
		c->want_top = malloc(c->size);
		assert_non_null(c->want_top);
		memcpy(c->want_top, c->want_mid, c->size);
		/* overlaps mid's partial block, and a new partial block 6 */
		th_fill(buf, 8 * 512, 20);
		vw_write(t, 3 * MB + 2 * 512, buf, 8 * 512);
		memcpy(c->want_top + 3 * MB + 2 * 512, buf, 8 * 512);
		th_fill(buf, 512, 21);
		vw_write(t, 6 * MB + 2047 * 512, buf, 512);
		memcpy(c->want_top + 6 * MB + 2047 * 512, buf, 512);
		vw_save(t, c->top);
		vw_free(t);
	}
	vw_free(m);
	free(buf);
}

static void free_chain(struct chain *c)
{
	free(c->base);
	free(c->mid);
	free(c->top);
	free(c->want_base);
	free(c->want_mid);
	free(c->want_top);
	th_tmpdir_remove(c->dir);
}

static void test_differencing(void **st)
{
	(void)st;
	NEED_QEMU();
	struct chain c;
	make_chain(&c, 3);
	siterec_disk *d = open_ok(c.mid, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info in;
	get_info(d, &in);
	assert_int_equal(in.kind, SITEREC_DISK_KIND_DIFFERENCING);
	assert_int_equal(in.chain_depth, 1);
	compare_buf(d, c.want_mid, c.size);
	/* status: block 5 is ZERO here (unallocated) although the parent has data */
	uint64_t run;
	int a;
	assert_int_equal(siterec_disk_block_status(d, 5 * MB, 3 * MB, &run, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run, MB);
	assert_int_equal(siterec_disk_block_status(d, 0, c.size, &run, &a), 0);
	assert_int_equal(a, 1);
	siterec_disk_free(d);

	d = open_ok(c.top, SITEREC_DISK_FORMAT_VHDX, 0);
	get_info(d, &in);
	assert_int_equal(in.chain_depth, 2);
	compare_buf(d, c.want_top, c.size);
	siterec_disk_free(d);
	free_chain(&c);
}

/* Status through a chain whose base is sparse. */
static void test_differencing_status(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	char *base = th_path(dir, "b.vhdx"), *child = th_path(dir, "c.vhdx");
	struct wr w[] = { { 0x42, 2 * MB, MB } };
	qemu_image(base, NULL, "dynamic", "1M", "6M", w, 1);
	struct vw_layout bl;
	vw_layout(base, &bl);
	struct vw_params p = { .virtual_size = 6 * MB, .parent_linkage = bl.data_write_guid,
	                       .relative_path = "b.vhdx" };
	vw *v = vw_new(&p);
	uint8_t s[512];
	memset(s, 0x43, sizeof(s));
	vw_write(v, 4 * MB + 512, s, 512);
	vw_save(v, child);
	vw_free(v);
	siterec_disk *d = open_ok(child, SITEREC_DISK_FORMAT_AUTO, 0);
	struct { uint64_t off; int a; uint64_t run; } want[] = {
		{ 0, 0, 2 * MB }, { 2 * MB, 1, MB }, { 3 * MB, 0, MB }, { 4 * MB, 1, MB }, { 5 * MB, 0, MB },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t run;
		int a;
		assert_int_equal(siterec_disk_block_status(d, want[i].off, 6 * MB - want[i].off, &run, &a), 0);
		assert_int_equal(a, want[i].a);
		assert_int_equal(run, want[i].run);
	}
	uint8_t b[1024];
	assert_int_equal(siterec_disk_read(d, b, 1024, 4 * MB), 0);
	for (int i = 0; i < 512; i++)
		assert_int_equal(b[i], 0);
	assert_memory_equal(b + 512, s, 512);
	siterec_disk_free(d);
	free(base);
	free(child);
	th_tmpdir_remove(dir);
}

static void test_parent_by_absolute_basename(void **st)
{
	(void)st;
	NEED_QEMU();
	struct chain c;
	make_chain(&c, 2);
	/* rewrite mid with a broken relative path: the Windows absolute path's
	 * last component, next to the child, is the fallback */
	struct vw_layout bl;
	vw_layout(c.base, &bl);
	struct vw_params p = { .virtual_size = c.size, .parent_linkage = bl.data_write_guid,
	                       .relative_path = "..\\elsewhere\\base.vhdx",
	                       .absolute_win32_path = "C:\\vms\\base.vhdx" };
	vw *m = vw_new(&p);
	vw_save(m, c.mid);
	vw_free(m);
	siterec_disk *d = open_ok(c.mid, SITEREC_DISK_FORMAT_AUTO, 0);
	compare_buf(d, c.want_base, c.size);
	siterec_disk_free(d);
	free_chain(&c);
}

static void test_parent_missing(void **st)
{
	(void)st;
	NEED_QEMU();
	struct chain c;
	make_chain(&c, 3);
	unlink(c.base);
	th_assert_err(open_rc(c.mid, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "not found"));
	th_assert_err(open_rc(c.top, 0, 0), SITEREC_EDISK);
	free_chain(&c);
}

static void test_parent_id_mismatch(void **st)
{
	(void)st;
	NEED_QEMU();
	struct chain c;
	make_chain(&c, 2);
	/* the base changes after the child was made: a new DataWriteGuid */
	uint8_t g[16];
	th_fill(g, 16, 999);
	struct vw_layout bl;
	vw_layout(c.base, &bl);
	vw_patch_header(c.base, bl.current, 32, g, 16);
	th_assert_err(open_rc(c.mid, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "parent id mismatch"));
	free_chain(&c);
}

static void test_parent_loop(void **st)
{
	(void)st;
	char *dir = th_tmpdir();
	char *a = th_path(dir, "a.vhdx"), *b = th_path(dir, "b.vhdx");
	uint8_t ga[16], gb[16];
	th_fill(ga, 16, 1);
	th_fill(gb, 16, 2);
	struct vw_params pa = { .virtual_size = 4 * MB, .parent_linkage = gb,
	                        .relative_path = ".\\b.vhdx", .data_write_guid = ga };
	struct vw_params pb = { .virtual_size = 4 * MB, .parent_linkage = ga,
	                        .relative_path = ".\\a.vhdx", .data_write_guid = gb };
	vw *wa = vw_new(&pa), *wb = vw_new(&pb);
	vw_save(wa, a);
	vw_save(wb, b);
	vw_free(wa);
	vw_free(wb);
	th_assert_err(open_rc(a, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "loop"));
	/* a self-loop */
	struct vw_params ps = { .virtual_size = 4 * MB, .parent_linkage = ga,
	                        .relative_path = "a.vhdx", .data_write_guid = ga };
	vw *ws = vw_new(&ps);
	vw_save(ws, a);
	vw_free(ws);
	th_assert_err(open_rc(a, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "loop"));
	free(a);
	free(b);
	th_tmpdir_remove(dir);
}

static void test_chain_too_deep(void **st)
{
	(void)st;
	NEED_QEMU();
	struct chain c;
	make_chain(&c, 3);
	th_assert_err(open_rc(c.top, 0, 1), SITEREC_EDISK);
	assert_int_equal(open_rc(c.top, 0, 2), 0);
	assert_int_equal(open_rc(c.mid, 0, 1), 0);
	free_chain(&c);
}

/* ---- damaged images ---- */

static char *small_image(const char *dir, const char *name, uint8_t **want)
{
	char *v = th_path(dir, name), *r = th_path(dir, "small.raw");
	struct wr w[] = { { 0x61, 0, MB + 4096 }, { 0x62, 3 * MB, 512 }, { 0x63, 6 * MB, MB } };
	qemu_image(v, r, "dynamic", "1M", "8M", w, 3);
	size_t n;
	*want = th_read_file(r, &n);
	assert_int_equal(n, 8 * MB);
	unlink(r);
	free(r);
	return v;
}

static void patch_file(const char *path, uint64_t off, const void *b, size_t n)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void read_file_at(const char *path, uint64_t off, void *b, size_t n)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void test_damaged_headers(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "h.vhdx", &want);
	uint8_t x = 0x5A;
	/* one header damaged: the other is used */
	patch_file(v, 64 * 1024 + 200, &x, 1);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, 0);
	compare_buf(d, want, 8 * MB);
	siterec_disk_free(d);
	/* both */
	patch_file(v, 128 * 1024 + 200, &x, 1);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "header"));
	free(v);
	free(want);
	v = small_image(dir, "r.vhdx", &want);
	/* region tables: one, then both */
	patch_file(v, 192 * 1024 + 20, &x, 1);
	assert_int_equal(open_rc(v, 0, 0), 0);
	patch_file(v, 256 * 1024 + 20, &x, 1);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "region"));
	/* not a VHDX at all when forced */
	patch_file(v, 0, "notvhdx!", 8);
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.format = SITEREC_DISK_FORMAT_VHDX;
	siterec_disk *dd = NULL;
	th_assert_err(siterec_disk_open(&dd, v, &o), SITEREC_EDISK);
	free(v);
	free(want);
	th_tmpdir_remove(dir);
}

/* Rewrite both region tables through fn, checksums fixed. */
static void edit_regions(const char *path, void (*fn)(uint8_t *))
{
	uint8_t *r = malloc(64 * 1024);
	assert_non_null(r);
	read_file_at(path, 192 * 1024, r, 64 * 1024);
	fn(r);
	memset(r + 4, 0, 4);
	uint32_t c = vw_crc32c(r, 64 * 1024);
	uint8_t cb[4] = { (uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24) };
	memcpy(r + 4, cb, 4);
	patch_file(path, 192 * 1024, r, 64 * 1024);
	patch_file(path, 256 * 1024, r, 64 * 1024);
	free(r);
}

static void add_unknown_region(uint8_t *r, int required)
{
	uint32_t n = r[8];
	uint8_t *e = r + 16 + 32 * n;
	memset(e, 0xEE, 16);
	memset(e + 16, 0, 16);
	e[18] = 0x50; /* 5 MiB */
	e[26] = 0x10; /* 1 MiB */
	e[28] = (uint8_t)required;
	r[8] = (uint8_t)(n + 1);
}
static void add_required_region(uint8_t *r) { add_unknown_region(r, 1); }
static void add_optional_region(uint8_t *r) { add_unknown_region(r, 0); }

static void test_unknown_required(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "u.vhdx", &want);
	edit_regions(v, add_optional_region);
	assert_int_equal(open_rc(v, 0, 0), 0);
	edit_regions(v, add_required_region);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	free(v);
	free(want);

	/* metadata: an unknown item, optional then required */
	v = small_image(dir, "m.vhdx", &want);
	struct vw_layout l;
	vw_layout(v, &l);
	uint8_t t[64];
	read_file_at(v, l.meta_off, t, 32);
	uint16_t n = (uint16_t)(t[10] | t[11] << 8);
	uint8_t e[32] = { 0 };
	memset(e, 0xDD, 16);
	e[17] = 0x00;
	e[18] = 0x01; /* offset 64 KiB */
	e[20] = 4;
	patch_file(v, l.meta_off + 32 + 32ull * n, e, 32);
	uint8_t cnt[2] = { (uint8_t)(n + 1), 0 };
	patch_file(v, l.meta_off + 10, cnt, 2);
	assert_int_equal(open_rc(v, 0, 0), 0);
	e[24] = 4; /* IsRequired */
	patch_file(v, l.meta_off + 32 + 32ull * n, e, 32);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "required"));
	free(v);
	free(want);
	th_tmpdir_remove(dir);
}

/* Offsets of the items of the metadata table, by first GUID byte. */
static uint64_t meta_item_off(const char *path, uint8_t guid0)
{
	struct vw_layout l;
	vw_layout(path, &l);
	uint8_t t[32 * 64];
	read_file_at(path, l.meta_off, t, sizeof(t));
	uint16_t n = (uint16_t)(t[10] | t[11] << 8);
	for (int i = 0; i < n && i < 60; i++) {
		const uint8_t *e = t + 32 + 32 * i;
		if (e[0] == guid0)
			return l.meta_off + (e[16] | e[17] << 8 | (uint32_t)e[18] << 16 | (uint32_t)e[19] << 24);
	}
	fail_msg("metadata item not found");
	return 0;
}

static void test_bad_parameters(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "p.vhdx", &want);
	uint64_t fp = meta_item_off(v, 0x37), vs = meta_item_off(v, 0x24), ls = meta_item_off(v, 0x1d);
	uint8_t orig[8];
	struct { uint64_t at; uint8_t b[8]; size_t n; } bad[] = {
		{ fp, { 0, 0, 0x30, 0 }, 4 },        /* block size 3 MiB */
		{ fp, { 0, 0, 0x08, 0 }, 4 },        /* 512 KiB */
		{ fp, { 0, 0, 0, 0x20 }, 4 },        /* 512 MiB */
		{ vs, { 0 }, 8 },                    /* virtual size 0 */
		{ vs, { 1, 2, 0, 0, 0, 0, 0, 0 }, 8 },   /* not a multiple of 512 */
		{ vs, { 0, 0, 0, 0, 0, 0x41, 0, 0 }, 8 }, /* > 64 TiB */
		{ ls, { 0, 1, 0, 0 }, 4 },           /* logical sector 256 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		read_file_at(v, bad[i].at, orig, bad[i].n);
		patch_file(v, bad[i].at, bad[i].b, bad[i].n);
		th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
		patch_file(v, bad[i].at, orig, bad[i].n);
		assert_int_equal(open_rc(v, 0, 0), 0);
	}
	/* a metadata item offset beyond the region */
	struct vw_layout l;
	vw_layout(v, &l);
	uint8_t off[4] = { 0, 0, 0x20, 0 }; /* 2 MiB */
	patch_file(v, l.meta_off + 32 + 16, off, 4);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	free(v);
	free(want);

	/* a BAT region too small for the disk: grow the virtual size */
	v = small_image(dir, "b.vhdx", &want);
	vs = meta_item_off(v, 0x24);
	uint8_t big[8] = { 0, 0, 0, 0, 0x40, 0, 0, 0 }; /* 256 GiB: 262144 entries > 1 MiB/8 */
	patch_file(v, vs, big, 8);
	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "BAT"));
	free(v);
	free(want);
	th_tmpdir_remove(dir);
}

static void test_bat_past_eof(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "e.vhdx", &want);
	struct vw_layout l;
	vw_layout(v, &l);
	/* block 6 (written) now points 1 TiB in */
	uint8_t e[8];
	uint64_t ent = (1ull << 40) | 6;
	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)(ent >> 8 * i);
	patch_file(v, l.bat_off + 8 * 6, e, 8);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, 0);
	uint8_t b[4096];
	th_assert_err(siterec_disk_read(d, b, sizeof(b), 6 * MB + 4096), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "past the end"));
	/* a read spanning it fails too, others still work */
	uint8_t *big = malloc(3 * MB);
	assert_non_null(big);
	th_assert_err(siterec_disk_read(d, big, 3 * MB, 5 * MB), SITEREC_EDISK);
	assert_int_equal(siterec_disk_read(d, b, sizeof(b), 0), 0);
	assert_memory_equal(b, want, sizeof(b));
	/* invalid state 4 in a dynamic disk */
	ent = 4;
	for (int i = 0; i < 8; i++)
		e[i] = (uint8_t)(ent >> 8 * i);
	siterec_disk_free(d);
	patch_file(v, l.bat_off + 8 * 2, e, 8);
	d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, 0);
	th_assert_err(siterec_disk_read(d, b, sizeof(b), 2 * MB), SITEREC_EDISK);
	uint64_t run;
	int a;
	th_assert_err(siterec_disk_block_status(d, 2 * MB, MB, &run, &a), SITEREC_EDISK);
	siterec_disk_free(d);
	free(big);
	free(v);
	free(want);
	th_tmpdir_remove(dir);
}

/* ---- log ---- */

static void test_log(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "log.vhdx", &want);
	struct vw_layout l;
	vw_layout(v, &l);
	uint8_t bat0[8];
	read_file_at(v, l.bat_off, bat0, 8);
	uint64_t e0 = 0;
	for (int i = 7; i >= 0; i--)
		e0 = e0 << 8 | bat0[i];
	assert_int_equal(e0 & 7, 6);
	uint64_t p0 = e0 & ~(MB - 1);

	/* a LogGuid with an empty log: nothing to replay */
	uint8_t guid[16];
	th_fill(guid, 16, 77);
	vw_patch_header(v, 0, 48, guid, 16);
	vw_patch_header(v, 1, 48, guid, 16);
	siterec_disk *d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info in;
	get_info(d, &in);
	assert_int_equal(in.log_replayed, 0);
	siterec_disk_free(d);

	/* entry: a data sector into block 0's payload at +8 KiB, zeros over its
	 * first 4 KiB, and a BAT sector making block 7 share block 0's payload */
	uint8_t data[4096], batsec[4096];
	th_fill(data, sizeof(data), 5);
	read_file_at(v, l.bat_off, batsec, sizeof(batsec));
	uint64_t ne = p0 | 6;
	for (int i = 0; i < 8; i++)
		batsec[8 * 7 + i] = (uint8_t)(ne >> 8 * i);
	struct vw_log_desc ds[] = {
		{ p0 + 8192, data, 0 },
		{ p0, NULL, 4096 },
		{ l.bat_off, batsec, 0 },
	};
	vw_add_log_entry(v, guid, 10, 0, ds, 3);
	size_t before_len;
	uint8_t *before = th_read_file(v, &before_len);

	th_assert_err(open_rc(v, 0, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, "log"));
	assert_non_null(strstr(siterec_error_last()->message, "SITEREC_DISK_REPLAY_LOG"));

	memcpy(want + 8192, data, 4096);
	memset(want, 0, 4096);
	memcpy(want + 7 * MB, want, MB);
	d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, SITEREC_DISK_REPLAY_LOG);
	get_info(d, &in);
	assert_int_equal(in.log_replayed, 1);
	compare_buf(d, want, 8 * MB);
	uint64_t run;
	int a;
	assert_int_equal(siterec_disk_block_status(d, 7 * MB, MB, &run, &a), 0);
	assert_int_equal(a, 1);
	siterec_disk_free(d);

	/* the file is untouched */
	size_t after_len;
	uint8_t *after = th_read_file(v, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(after);

	/* a newer entry (seq 11) right after, tail pointing at the first: both replay */
	uint8_t data2[4096];
	th_fill(data2, sizeof(data2), 6);
	struct vw_log_desc ds2[] = { { p0 + 12288, data2, 0 } };
	uint32_t first_len = 4096 + 2 * 4096; /* descriptor sector + two data sectors */
	vw_add_log_entry(v, guid, 11, first_len, ds2, 1);
	/* the helper sets tail = its own offset; that is a valid sequence of one
	 * entry, newer than the first, so only it replays */
	d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, SITEREC_DISK_REPLAY_LOG);
	uint8_t b[4096];
	assert_int_equal(siterec_disk_read(d, b, 4096, 12288), 0);
	assert_memory_equal(b, data2, 4096);
	assert_int_equal(siterec_disk_read(d, b, 4096, 8192), 0);
	assert_memory_not_equal(b, data, 4096); /* first entry not replayed */
	siterec_disk_free(d);

	/* a corrupted entry is not valid: nothing to replay then */
	uint8_t x = 0xFF;
	patch_file(v, l.log_off + first_len + 100, &x, 1);
	d = open_ok(v, SITEREC_DISK_FORMAT_AUTO, SITEREC_DISK_REPLAY_LOG);
	get_info(d, &in);
	assert_int_equal(in.log_replayed, 1); /* the first entry (seq 10) is the active one again */
	assert_int_equal(siterec_disk_read(d, b, 4096, 8192), 0);
	assert_memory_equal(b, data, 4096);
	siterec_disk_free(d);

	free(before);
	free(v);
	free(want);
	th_tmpdir_remove(dir);
}

/* ---- random corruption: never a crash, always 0 or a negative code ---- */

static void exercise(const char *path, uint32_t flags)
{
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.format = SITEREC_DISK_FORMAT_VHDX;
	o.flags = flags;
	siterec_disk *d = NULL;
	int rc = siterec_disk_open(&d, path, &o);
	assert_true(rc <= 0);
	if (rc)
		return;
	siterec_disk_info in;
	get_info(d, &in);
	static uint8_t b[2 * 1024 * 1024];
	uint64_t n = in.virtual_size < sizeof(b) ? in.virtual_size : sizeof(b);
	assert_true(siterec_disk_read(d, b, (size_t)n, 0) <= 0);
	if (in.virtual_size > 6 * MB)
		assert_true(siterec_disk_read(d, b, MB, 5 * MB + 512) <= 0);
	uint64_t off = 0;
	for (int i = 0; i < 16 && off < in.virtual_size; i++) {
		uint64_t run = 0;
		int a;
		if (siterec_disk_block_status(d, off, in.virtual_size - off, &run, &a) != 0)
			break;
		off += run;
	}
	siterec_disk_free(d);
}

static void test_random_corruption(void **st)
{
	(void)st;
	NEED_QEMU();
	char *dir = th_tmpdir();
	uint8_t *want;
	char *v = small_image(dir, "c.vhdx", &want);
	free(want);
	struct vw_layout l;
	vw_layout(v, &l);
	int fd = open(v, O_RDWR);
	assert_true(fd >= 0);
	const char *it = getenv("SITEREC_VHDX_CORRUPT_ITERS");
	int iters = it ? atoi(it) : 2000;
	uint64_t s = 12345;
	for (int i = 0; i < iters; i++) {
		uint64_t at[8];
		uint8_t old[8];
		int k = 1 + (int)(th_rand(&s) % 8);
		for (int j = 0; j < k; j++) {
			uint64_t r = th_rand(&s);
			switch (r % 4) {
			case 0: at[j] = (r >> 8) % (2 * MB); break;           /* headers, regions, log */
			case 1: at[j] = 64 * 1024 + (r >> 8) % 4096; break;   /* header 1 */
			case 2: at[j] = l.meta_off + (r >> 8) % (64 * 1024 + 256); break;
			default: at[j] = l.bat_off + (r >> 8) % 256; break;
			}
			assert_int_equal(pread(fd, &old[j], 1, (off_t)at[j]), 1);
			uint8_t nv = (uint8_t)(old[j] ^ (1u << ((r >> 40) % 8)));
			if ((r >> 50) % 4 == 0)
				nv = (uint8_t)(r >> 52);
			assert_int_equal(pwrite(fd, &nv, 1, (off_t)at[j]), 1);
		}
		exercise(v, i % 2 ? SITEREC_DISK_REPLAY_LOG : 0);
		for (int j = k - 1; j >= 0; j--)
			assert_int_equal(pwrite(fd, &old[j], 1, (off_t)at[j]), 1);
	}
	close(fd);
	free(v);
	th_tmpdir_remove(dir);
}

/* Inputs that crashed or misbehaved under the fuzzer, kept as regressions. */
static void test_fuzz_regressions(void **st)
{
	(void)st;
	/* (see tests/fuzz/corpus/vhdx; none recorded yet besides truncations) */
	char *dir = th_tmpdir();
	char *v = th_path(dir, "t.vhdx");
	/* truncated files of every interesting length */
	uint64_t lens[] = { 8, 100, 64 * 1024, 64 * 1024 + 4096, 192 * 1024, 320 * 1024, 1 * MB,
	                    3 * MB + 100 };
	struct vw_params p = { .virtual_size = 4 * MB };
	vw *w = vw_new(&p);
	uint8_t s[512];
	memset(s, 1, sizeof(s));
	vw_write(w, 0, s, sizeof(s));
	vw_save(w, v);
	vw_free(w);
	size_t n;
	uint8_t *full = th_read_file(v, &n);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		th_write_file(v, full, lens[i] < n ? (size_t)lens[i] : n);
		exercise(v, 0);
		exercise(v, SITEREC_DISK_REPLAY_LOG);
	}
	free(full);
	free(v);
	th_tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dynamic_1m),
		cmocka_unit_test(test_dynamic_2m),
		cmocka_unit_test(test_dynamic_32m),
		cmocka_unit_test(test_fixed_1m),
		cmocka_unit_test(test_fixed_2m),
		cmocka_unit_test(test_fixed_32m),
		cmocka_unit_test(test_empty_and_odd_size),
		cmocka_unit_test(test_large_sparse),
		cmocka_unit_test(test_logical_4096),
		cmocka_unit_test(test_differencing),
		cmocka_unit_test(test_differencing_status),
		cmocka_unit_test(test_parent_by_absolute_basename),
		cmocka_unit_test(test_parent_missing),
		cmocka_unit_test(test_parent_id_mismatch),
		cmocka_unit_test(test_parent_loop),
		cmocka_unit_test(test_chain_too_deep),
		cmocka_unit_test(test_damaged_headers),
		cmocka_unit_test(test_unknown_required),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_bat_past_eof),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_random_corruption),
		cmocka_unit_test(test_fuzz_regressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
