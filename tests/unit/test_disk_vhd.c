/* VHD images through the public disk API, checked against qemu-img / qemu-io as the
 * independent implementation: fixed and dynamic reads, fixed VHD creation and
 * writes, and damaged images (every failure a clear SITEREC_E* code, never a crash).
 * qemu's vpc driver always makes dynamic disks with 2 MiB blocks; other block sizes
 * are covered by images this file builds itself (and qemu reads them back). */
#include "helpers.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* ---- helpers ---------------------------------------------------------------- */

static int have_qemu = -1;

/* Run a shell command with its output silenced; the exit status (-1 if it died). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd) - 32);
	strcat(cmd, " >/dev/null 2>&1");
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Output of a command (stdout only) into a malloc'd string. */
static char *run_output(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 65536, n = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t r;
	while ((r = fread(s + n, 1, cap - 1 - n, p)) > 0)
		n += r;
	s[n] = '\0';
	pclose(p);
	return s;
}

static void need_qemu(void)
{
	if (have_qemu < 0)
		have_qemu = run("qemu-img --version") == 0 && run("qemu-io --version") == 0;
	if (!have_qemu) {
		print_message("qemu-img/qemu-io not installed: skipped\n");
		skip();
	}
}

static int is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* qemu-img before 9.2 sizes a VHD by its CHS geometry unless the creator app is one
 * it knows (Hyper-V's "win ", ...); Hyper-V and Azure use the footer's current size,
 * as this library does. This image spec makes qemu do the same for any creator. */
#define QEMU_VHD "driver=vpc,force_size_calc=current_size,file.filename="

/* qemu-img check: 0, or 63 when the format has no checks (vpc in qemu 7.x). */
static void qemu_check_ok(const char *vhd)
{
	int rc = run("qemu-img check --image-opts " QEMU_VHD "'%s'", vhd);
	assert_true(rc == 0 || rc == 63);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}
static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}

/* The spec's checksum: one's complement of the byte sum without the field. */
static uint32_t vhd_csum(const uint8_t *p, size_t len, size_t at)
{
	uint32_t s = 0;
	for (size_t i = 0; i < len; i++)
		if (i < at || i >= at + 4)
			s += p[i];
	return ~s;
}
static void fix_footer(uint8_t *f) { put_be32(f + 64, vhd_csum(f, 512, 64)); }
static void fix_header(uint8_t *h) { put_be32(h + 36, vhd_csum(h, 1024, 36)); }

/* Whole-image patching: edit the file's bytes in memory and write them back. */
struct img {
	uint8_t *b;
	size_t len;
};
static struct img img_load(const char *path)
{
	struct img m;
	m.b = th_read_file(path, &m.len);
	return m;
}
static void img_save(struct img *m, const char *path)
{
	th_write_file(path, m->b, m->len);
	free(m->b);
	m->b = NULL;
}
static uint8_t *img_footer(struct img *m) { return m->b + m->len - 512; }

static siterec_disk *open_fmt(const char *path, uint32_t format, uint32_t flags)
{
	siterec_disk_options o;
	assert_int_equal(siterec_disk_options_init(&o, SITEREC_DISK_OPTIONS_VERSION), 0);
	o.format = format;
	o.flags = flags;
	siterec_disk *d = NULL;
	int rc = siterec_disk_open(&d, path, &o);
	if (rc)
		print_message("open %s: %s\n", path, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_non_null(d);
	return d;
}

static int try_open(const char *path, uint32_t format, uint32_t flags, siterec_disk **out)
{
	siterec_disk_options o;
	assert_int_equal(siterec_disk_options_init(&o, SITEREC_DISK_OPTIONS_VERSION), 0);
	o.format = format;
	o.flags = flags;
	return siterec_disk_open(out, path, &o);
}

/* Open must fail with want, and leave no handle and a message. */
static void open_fails(const char *path, uint32_t format, int want, const char *needle)
{
	siterec_disk *d = (siterec_disk *)1;
	th_assert_err(try_open(path, format, 0, &d), want);
	assert_null(d);
	if (needle && !strstr(siterec_error_last()->message, needle)) {
		print_message("message \"%s\" lacks \"%s\"\n", siterec_error_last()->message, needle);
		fail();
	}
	/* the message names the file */
	assert_non_null(strstr(siterec_error_last()->message, path));
}

static siterec_disk_info get_info(siterec_disk *d)
{
	siterec_disk_info info;
	memset(&info, 0, sizeof(info));
	info.version = SITEREC_DISK_INFO_VERSION;
	assert_int_equal(siterec_disk_info_get(d, &info), 0);
	return info;
}

/* Whole virtual disk in odd-sized chunks (so reads straddle block edges). */
static uint8_t *read_all(siterec_disk *d, uint64_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	assert_non_null(b);
	uint64_t chunk = 3 * MiB + 4097, off = 0;
	while (off < size) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		int rc = siterec_disk_read(d, b + off, (size_t)n, off);
		if (rc)
			print_message("read at %llu: %s\n", (unsigned long long)off,
			              siterec_error_last()->message);
		assert_int_equal(rc, 0);
		off += n;
	}
	return b;
}

/* Library view == qemu-img convert's raw output, byte for byte. */
static void assert_same_as_qemu(siterec_disk *d, const char *dir, const char *vhd)
{
	char *raw = th_path(dir, "qemu.raw");
	unlink(raw);
	assert_int_equal(run("qemu-img convert -f vpc -O raw '%s' '%s'", vhd, raw), 0);
	size_t rlen;
	uint8_t *want = th_read_file(raw, &rlen);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.virtual_size, rlen);
	uint8_t *got = read_all(d, info.virtual_size);
	if (memcmp(got, want, rlen) != 0) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		print_message("first difference at %zu\n", i);
		fail();
	}
	free(got);
	free(want);
	unlink(raw);
	free(raw);
}

/* Walk block_status over the whole disk; returns the number of allocated bytes
 * and checks every unallocated run reads as zeros (sampled at its edges). */
static uint64_t walk_status(siterec_disk *d, uint64_t size, uint64_t step)
{
	uint64_t off = 0, alloc = 0;
	uint8_t *z = malloc(64 * KiB);
	assert_non_null(z);
	while (off < size) {
		uint64_t len = size - off < step ? size - off : step;
		uint64_t run = 0;
		int a = -1;
		assert_int_equal(siterec_disk_block_status(d, off, len, &run, &a), 0);
		assert_true(run > 0 && run <= len);
		assert_true(a == 0 || a == 1);
		if (a) {
			alloc += run;
		} else {
			uint64_t n = run < 64 * KiB ? run : 64 * KiB;
			assert_int_equal(siterec_disk_read(d, z, (size_t)n, off), 0);
			assert_true(is_zero(z, (size_t)n));
			assert_int_equal(siterec_disk_read(d, z, (size_t)n, off + run - n), 0);
			assert_true(is_zero(z, (size_t)n));
		}
		off += run;
	}
	free(z);
	return alloc;
}

/* Build a dynamic VHD by hand (any block size): footer copy, header at 512, BAT at
 * 1536, then the blocks flagged in `alloc` (bitmap all ones, th_fill data), footer.
 * want (virtual size bytes) receives the expected content. */
static void build_dynamic(const char *path, uint64_t vsize, uint32_t bs, const uint8_t *alloc,
                          uint8_t *want)
{
	uint64_t nblk = (vsize + bs - 1) / bs;
	uint64_t bat_bytes = (nblk * 4 + 511) / 512 * 512;
	uint32_t bitmap = (uint32_t)(((bs / 512 + 7) / 8 + 511) / 512 * 512);
	uint64_t nalloc = 0;
	for (uint64_t i = 0; i < nblk; i++)
		nalloc += alloc[i] != 0;
	uint64_t total = 1536 + bat_bytes + nalloc * (bitmap + bs) + 512;
	uint8_t *b = calloc(1, total);
	assert_non_null(b);
	uint8_t *f = b + total - 512;
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);
	put_be32(f + 12, 0x00010000);
	put_be64(f + 16, 512);
	memcpy(f + 28, "win ", 4); /* Hyper-V's: every qemu then takes the current size */
	memcpy(f + 36, "Wi2k", 4);
	put_be64(f + 40, vsize);
	put_be64(f + 48, vsize);
	put_be32(f + 56, 0x00100410); /* geometry is not used for the size */
	put_be32(f + 60, 3);
	for (int i = 0; i < 16; i++)
		f[68 + i] = (uint8_t)(0xA0 + i);
	fix_footer(f);
	memcpy(b, f, 512);
	uint8_t *h = b + 512;
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX);
	put_be64(h + 16, 1536);
	put_be32(h + 24, 0x00010000);
	put_be32(h + 28, (uint32_t)nblk);
	put_be32(h + 32, bs);
	fix_header(h);
	memset(b + 1536, 0xFF, bat_bytes);
	memset(want, 0, vsize);
	uint64_t pos = 1536 + bat_bytes;
	for (uint64_t i = 0; i < nblk; i++) {
		if (!alloc[i])
			continue;
		put_be32(b + 1536 + 4 * i, (uint32_t)(pos / 512));
		memset(b + pos, 0xFF, bitmap);
		th_fill(b + pos + bitmap, bs, 1000 + i);
		uint64_t n = vsize - i * bs < bs ? vsize - i * bs : bs;
		memcpy(want + i * bs, b + pos + bitmap, n);
		pos += bitmap + bs;
	}
	th_write_file(path, b, total);
	free(b);
}

static int setup(void **state)
{
	*state = th_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	th_tmpdir_remove(*state);
	return 0;
}

/* ---- fixed VHD made by qemu ---------------------------------------------------- */

static void test_fixed_qemu(void **state)
{
	need_qemu();
	const char *dir = *state;
	char *p = th_path(dir, "f.vhd");
	/* force_size: exactly 5 MiB + 1.5 KiB (not a whole MiB, not a block multiple) */
	uint64_t size = 5 * MiB + 1536;
	assert_int_equal(run("qemu-img create -f vpc -o subformat=fixed,force_size=on '%s' %llu", p,
	                     (unsigned long long)size), 0);
	assert_int_equal(run("qemu-io -f vpc -c 'write -P 0xAB 0 4096' -c 'write -P 0x5C 1234567 5000'"
	                     " -c 'write -P 0x17 %llu 1536' '%s'",
	                     (unsigned long long)(size - 1536), p), 0);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.format, SITEREC_DISK_FORMAT_VHD);
	assert_int_equal(info.kind, SITEREC_DISK_KIND_FIXED);
	assert_int_equal(info.logical_sector, 512);
	assert_int_equal(info.physical_sector, 512);
	assert_int_equal(info.block_size, 0);
	assert_int_equal(info.virtual_size, size);
	assert_int_equal(info.file_size, size + 512);
	assert_int_equal(info.writable, 0);
	assert_int_equal(info.chain_depth, 0);
	/* the unique id is the footer's */
	struct img m = img_load(p);
	assert_memory_equal(info.disk_id, img_footer(&m) + 68, 16);
	free(m.b);
	assert_same_as_qemu(d, dir, p);
	uint64_t run_len = 0;
	int a = -1;
	assert_int_equal(siterec_disk_block_status(d, 0, size, &run_len, &a), 0);
	assert_int_equal(run_len, size);
	assert_int_equal(a, 1);
	/* a read-only handle refuses writes */
	uint8_t x[512] = { 0 };
	th_assert_err(siterec_disk_write(d, x, sizeof(x), 0), SITEREC_ESTATE);
	/* reads past the end are the front end's ERANGE */
	th_assert_err(siterec_disk_read(d, x, sizeof(x), size - 511), SITEREC_ERANGE);
	siterec_disk_free(d);

	/* forced format works too, and so does writing in place */
	d = open_fmt(p, SITEREC_DISK_FORMAT_VHD, SITEREC_DISK_OPEN_WRITE);
	memset(x, 0xEE, sizeof(x));
	assert_int_equal(siterec_disk_write(d, x, 300, 777), 0);
	assert_int_equal(siterec_disk_flush(d), 0);
	siterec_disk_free(d);
	qemu_check_ok(p);
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	assert_same_as_qemu(d, dir, p);
	siterec_disk_free(d);
	free(p);
}

/* Without force_size qemu rounds to a CHS geometry and stores that as the size. */
static void test_fixed_qemu_chs_size(void **state)
{
	need_qemu();
	const char *dir = *state;
	char *p = th_path(dir, "chs.vhd");
	assert_int_equal(run("qemu-img create -f vpc -o subformat=fixed '%s' 10M", p), 0);
	assert_int_equal(run("qemu-io -f vpc -c 'write -P 0x42 4000000 100000' '%s'", p), 0);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.virtual_size, (uint64_t)th_file_size(p) - 512);
	assert_true(info.virtual_size >= 10 * MiB);
	assert_same_as_qemu(d, dir, p);
	siterec_disk_free(d);
	free(p);
}

/* ---- dynamic VHD made by qemu -------------------------------------------------- */

static void test_dynamic_qemu(void **state)
{
	need_qemu();
	const char *dir = *state;
	char *p = th_path(dir, "d.vhd");
	uint64_t size = 9 * MiB + 512 * KiB; /* 5 blocks, the last one half used */
	assert_int_equal(run("qemu-img create -f vpc -o subformat=dynamic,force_size=on '%s' %llu", p,
	                     (unsigned long long)size), 0);
	/* blocks 0, 2 and 4 (the tail) written; 1 and 3 stay holes */
	assert_int_equal(run("qemu-io -f vpc -c 'write -P 0xAB 1000 3000'"
	                     " -c 'write -P 0x3C %llu 70000' -c 'write -P 0x77 %llu 512' '%s'",
	                     (unsigned long long)(4 * MiB + 12345), (unsigned long long)(size - 512),
	                     p), 0);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.format, SITEREC_DISK_FORMAT_VHD);
	assert_int_equal(info.kind, SITEREC_DISK_KIND_DYNAMIC);
	assert_int_equal(info.block_size, 2 * MiB);
	assert_int_equal(info.virtual_size, size);
	assert_int_equal(info.logical_sector, 512);
	assert_int_equal(info.file_size, (uint64_t)th_file_size(p));
	struct img m = img_load(p);
	assert_memory_equal(info.disk_id, img_footer(&m) + 68, 16);
	free(m.b);
	assert_same_as_qemu(d, dir, p);

	/* allocation: blocks 0, 2, 4 (the tail block is 1.5 MiB of virtual disk) */
	uint64_t run_len = 0;
	int a = -1;
	assert_int_equal(siterec_disk_block_status(d, 0, size, &run_len, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run_len, 2 * MiB);
	assert_int_equal(siterec_disk_block_status(d, 2 * MiB, size - 2 * MiB, &run_len, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run_len, 2 * MiB);
	/* starting inside a block, limited by length */
	assert_int_equal(siterec_disk_block_status(d, 4 * MiB + 7, 1000, &run_len, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run_len, 1000);
	assert_int_equal(siterec_disk_block_status(d, 5 * MiB, size - 5 * MiB, &run_len, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run_len, 1 * MiB);
	assert_int_equal(siterec_disk_block_status(d, 6 * MiB + 3, size - 6 * MiB - 3, &run_len, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run_len, 2 * MiB - 3);
	assert_int_equal(siterec_disk_block_status(d, 8 * MiB, size - 8 * MiB, &run_len, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run_len, size - 8 * MiB);
	assert_int_equal(walk_status(d, size, size), 3 * 2 * MiB - 512 * KiB);
	assert_int_equal(walk_status(d, size, 777 * KiB + 3), 3 * 2 * MiB - 512 * KiB);

	/* dynamic VHD cannot be written */
	siterec_disk_free(d);
	d = (siterec_disk *)1;
	th_assert_err(try_open(p, SITEREC_DISK_FORMAT_AUTO, SITEREC_DISK_OPEN_WRITE, &d),
	              SITEREC_EUNSUPPORTED);
	assert_null(d);
	free(p);
}

static void test_dynamic_qemu_chs_and_empty(void **state)
{
	need_qemu();
	const char *dir = *state;
	char *p = th_path(dir, "c.vhd");
	assert_int_equal(run("qemu-img create -f vpc -o subformat=dynamic '%s' 7M", p), 0);
	assert_int_equal(run("qemu-io -f vpc -c 'write -P 0x99 3000000 3000000' '%s'", p), 0);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info info = get_info(d);
	assert_true(info.virtual_size >= 7 * MiB);
	assert_int_equal(info.virtual_size % 512, 0);
	assert_same_as_qemu(d, dir, p);
	siterec_disk_free(d);

	/* a fresh dynamic disk: nothing allocated, all zeros */
	char *e = th_path(dir, "empty.vhd");
	assert_int_equal(run("qemu-img create -f vpc -o subformat=dynamic,force_size=on '%s' 3M", e), 0);
	d = open_fmt(e, SITEREC_DISK_FORMAT_AUTO, 0);
	uint64_t run_len = 0;
	int a = -1;
	assert_int_equal(siterec_disk_block_status(d, 0, 3 * MiB, &run_len, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run_len, 3 * MiB);
	assert_same_as_qemu(d, dir, e);
	siterec_disk_free(d);
	free(e);
	free(p);
}

/* Over 4 GiB: block indexes and virtual offsets past 32 bits. Only the allocated
 * blocks and samples of the holes are read (the disk is 5 GiB). */
static void test_dynamic_large(void **state)
{
	need_qemu();
	const char *dir = *state;
	char *p = th_path(dir, "big.vhd");
	uint64_t size = 5 * GiB;
	assert_int_equal(run("qemu-img create -f vpc -o subformat=dynamic,force_size=on '%s' %llu", p,
	                     (unsigned long long)size), 0);
	const uint64_t offs[] = { 4 * GiB - 1000, 4 * GiB + 3 * MiB + 17, size - 4096 };
	const uint64_t lens[] = { 5000, 123456, 4096 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(run("qemu-io -f vpc -c 'write -P 0x%02x %llu %llu' '%s'", 0x31 + i,
		                     (unsigned long long)offs[i], (unsigned long long)lens[i], p), 0);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.virtual_size, size);
	assert_int_equal(info.kind, SITEREC_DISK_KIND_DYNAMIC);
	/* blocks: [4G-2M,4G), [4G,4G+2M) (straddle), [4G+2M,4G+4M), last block */
	assert_int_equal(walk_status(d, size, size), 4 * 2 * MiB);
	uint64_t run_len = 0;
	int a = -1;
	assert_int_equal(siterec_disk_block_status(d, 0, size, &run_len, &a), 0);
	assert_int_equal(a, 0);
	assert_int_equal(run_len, 4 * GiB - 2 * MiB);
	assert_int_equal(siterec_disk_block_status(d, run_len, size - run_len, &run_len, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(run_len, 3 * 2 * MiB);

	uint8_t *buf = malloc(256 * KiB);
	assert_non_null(buf);
	for (int i = 0; i < 3; i++) {
		/* the pattern, with zeros on both sides */
		uint64_t from = offs[i] - 100, n = lens[i] + 100 + (i == 2 ? 0 : 100);
		assert_int_equal(siterec_disk_read(d, buf, (size_t)n, from), 0);
		for (uint64_t k = 0; k < n; k++) {
			uint64_t o = from + k;
			uint8_t want = (o >= offs[i] && o < offs[i] + lens[i]) ? (uint8_t)(0x31 + i) : 0;
			if (buf[k] != want) {
				print_message("byte %llu: %02x, want %02x\n", (unsigned long long)o, buf[k], want);
				fail();
			}
		}
	}
	free(buf);
	siterec_disk_free(d);

	/* qemu agrees on the allocated part */
	char *raw = th_path(dir, "big.raw");
	assert_int_equal(run("qemu-img convert -f vpc -O raw '%s' '%s'", p, raw), 0);
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	uint8_t *x = malloc(8 * MiB), *y = malloc(8 * MiB);
	assert_non_null(x);
	assert_non_null(y);
	FILE *rf = fopen(raw, "rb");
	assert_non_null(rf);
	const uint64_t starts[] = { 4 * GiB - 2 * MiB, size - 2 * MiB };
	const uint64_t ns[] = { 6 * MiB, 2 * MiB };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(siterec_disk_read(d, x, (size_t)ns[i], starts[i]), 0);
		assert_int_equal(pread(fileno(rf), y, (size_t)ns[i], (off_t)starts[i]), (ssize_t)ns[i]);
		assert_memory_equal(x, y, ns[i]);
	}
	fclose(rf);
	free(x);
	free(y);
	siterec_disk_free(d);
	unlink(raw);
	free(raw);
	free(p);
}

/* ---- block sizes qemu does not make -------------------------------------------- */

static void test_dynamic_block_sizes(void **state)
{
	const char *dir = *state;
	char *p = th_path(dir, "bs.vhd");
	const uint32_t sizes[] = { 512, 2048, 4096, 64 * 1024, 1024 * 1024 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint32_t bs = sizes[s];
		uint64_t vsize = (uint64_t)bs * 9 + (bs > 512 ? bs / 2 : 0);
		uint64_t nblk = (vsize + bs - 1) / bs;
		uint8_t alloc[16] = { 0 };
		/* a mix: runs of both kinds, first and last allocated */
		const uint8_t pat[] = { 1, 1, 0, 1, 0, 0, 0, 1, 1, 1 };
		for (uint64_t i = 0; i < nblk; i++)
			alloc[i] = pat[i];
		uint8_t *want = malloc(vsize);
		assert_non_null(want);
		build_dynamic(p, vsize, bs, alloc, want);
		siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
		siterec_disk_info info = get_info(d);
		assert_int_equal(info.block_size, bs);
		assert_int_equal(info.virtual_size, vsize);
		assert_int_equal(info.kind, SITEREC_DISK_KIND_DYNAMIC);
		for (int i = 0; i < 16; i++)
			assert_int_equal(info.disk_id[i], 0xA0 + i);
		uint8_t *got = read_all(d, vsize);
		assert_memory_equal(got, want, vsize);
		/* every sector alone, too */
		for (uint64_t o = 0; o < vsize; o += 512) {
			uint8_t sec[512];
			assert_int_equal(siterec_disk_read(d, sec, 512, o), 0);
			assert_memory_equal(sec, want + o, 512);
		}
		free(got);
		/* runs merge consecutive blocks of one kind */
		uint64_t off = 0;
		size_t i = 0;
		while (off < vsize) {
			uint64_t run_len = 0;
			int a = -1;
			assert_int_equal(siterec_disk_block_status(d, off, vsize - off, &run_len, &a), 0);
			uint64_t b = off / bs, e = b;
			while (e < nblk && alloc[e] == alloc[b])
				e++;
			uint64_t end = e * bs < vsize ? e * bs : vsize;
			assert_int_equal(a, alloc[b]);
			assert_int_equal(run_len, end - off);
			off = end;
			i++;
		}
		assert_true(i >= 4);
		uint64_t nalloc = 0;
		for (uint64_t k = 0; k < nblk; k++)
			if (alloc[k])
				nalloc += (k + 1) * bs <= vsize ? bs : vsize - k * bs;
		assert_int_equal(walk_status(d, vsize, vsize), nalloc);
		siterec_disk_free(d);
		if (have_qemu < 0)
			have_qemu = run("qemu-img --version") == 0;
		if (have_qemu && bs >= 4096) {
			/* qemu reads these block sizes too: the same bytes. Not below 4 KiB: there
			 * the bitmap is under one byte and qemu rounds its size down to 0 instead
			 * of padding it to a sector as the spec says. */
			char *raw = th_path(dir, "bs.raw");
			unlink(raw);
			assert_int_equal(run("qemu-img convert -f vpc -O raw '%s' '%s'", p, raw), 0);
			size_t rlen;
			uint8_t *q = th_read_file(raw, &rlen);
			assert_int_equal(rlen, vsize);
			assert_memory_equal(q, want, vsize);
			free(q);
			free(raw);
		}
		free(want);
	}
	free(p);
}

/* ---- creating fixed VHDs ------------------------------------------------------- */

static void test_create(void **state)
{
	const char *dir = *state;
	char *p = th_path(dir, "new.vhd");
	siterec_disk_create_options co;
	assert_int_equal(siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION), 0);
	co.format = SITEREC_DISK_FORMAT_VHD;
	for (int i = 0; i < 16; i++)
		co.disk_id[i] = (uint8_t)(i * 17 + 1);
	siterec_disk *d = NULL;
	uint64_t asked = 3 * MiB + 1000;
	time_t before = time(NULL);
	assert_int_equal(siterec_disk_create(&d, p, asked, &co), 0);
	assert_non_null(d);
	siterec_disk_info info = get_info(d);
	assert_int_equal(info.format, SITEREC_DISK_FORMAT_VHD);
	assert_int_equal(info.kind, SITEREC_DISK_KIND_FIXED);
	assert_int_equal(info.virtual_size, 4 * MiB);
	assert_int_equal(info.file_size, 4 * MiB + 512);
	assert_int_equal(info.writable, 1);
	assert_memory_equal(info.disk_id, co.disk_id, 16);
	assert_int_equal(th_file_size(p), (long long)(4 * MiB + 512));

	/* writes at unaligned offsets, mirrored in memory */
	uint64_t size = 4 * MiB;
	uint8_t *mirror = calloc(1, size);
	assert_non_null(mirror);
	uint64_t rs = 7;
	for (int i = 0; i < 40; i++) {
		uint64_t off = th_rand(&rs) % size;
		uint64_t len = 1 + th_rand(&rs) % 70000;
		if (len > size - off)
			len = size - off;
		th_fill(mirror + off, (size_t)len, (uint64_t)i);
		assert_int_equal(siterec_disk_write(d, mirror + off, (size_t)len, off), 0);
	}
	/* the last byte and the first */
	mirror[size - 1] = 0xEF;
	assert_int_equal(siterec_disk_write(d, mirror + size - 1, 1, size - 1), 0);
	mirror[0] = 0xFE;
	assert_int_equal(siterec_disk_write_cb(mirror, 1, 0, d), 0);
	uint8_t x[16];
	th_assert_err(siterec_disk_write(d, x, 1, size), SITEREC_ERANGE);
	assert_int_equal(siterec_disk_flush(d), 0);
	uint8_t *got = read_all(d, size);
	assert_memory_equal(got, mirror, size);
	free(got);
	siterec_disk_free(d);

	/* the footer: cookie, checksum, id, type, sizes, geometry, creator, time */
	struct img m = img_load(p);
	assert_int_equal(m.len, size + 512);
	uint8_t *f = img_footer(&m);
	assert_memory_equal(f, "conectix", 8);
	assert_int_equal(get_be32(f + 64), vhd_csum(f, 512, 64));
	assert_int_equal(get_be32(f + 8), 2);
	assert_int_equal(get_be32(f + 12), 0x00010000);
	assert_true(get_be64(f + 16) == UINT64_MAX);
	assert_memory_equal(f + 28, "win ", 4);
	assert_memory_equal(f + 36, "Wi2k", 4);
	assert_int_equal(get_be64(f + 40), size);
	assert_int_equal(get_be64(f + 48), size);
	/* 8192 sectors: the spec's algorithm gives 120 cylinders, 4 heads, 17 sectors */
	assert_int_equal(get_be32(f + 56) >> 16, 120);
	assert_int_equal(f[58], 4);
	assert_int_equal(f[59], 17);
	assert_int_equal(get_be32(f + 60), 2);
	assert_memory_equal(f + 68, co.disk_id, 16);
	uint32_t ts = get_be32(f + 24);
	assert_true((time_t)ts + 946684800 >= before - 2);
	assert_true((time_t)ts + 946684800 <= time(NULL) + 2);
	for (size_t i = 84; i < 512; i++)
		assert_int_equal(f[i], 0);
	free(m.b);

	char *raw = th_path(dir, "mirror.raw");
	th_write_file(raw, mirror, size);
	if (have_qemu < 0)
		have_qemu = run("qemu-img --version") == 0;
	if (have_qemu) {
		qemu_check_ok(p);
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "qemu-img info --output=json --image-opts " QEMU_VHD "'%s'", p);
		char *js = run_output(cmd);
		assert_non_null(strstr(js, "\"virtual-size\": 4194304"));
		free(js);
		assert_int_equal(run("qemu-img compare --image-opts " QEMU_VHD "'%s' "
		                     "driver=raw,file.filename='%s'", p, raw), 0);
		/* a differing byte is seen (the comparison is real) */
		mirror[12345] ^= 1;
		th_write_file(raw, mirror, size);
		assert_int_equal(run("qemu-img compare --image-opts " QEMU_VHD "'%s' "
		                     "driver=raw,file.filename='%s'", p, raw), 1);
		mirror[12345] ^= 1;
	}

	/* reopen for writing and update in place */
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, SITEREC_DISK_OPEN_WRITE);
	info = get_info(d);
	assert_int_equal(info.writable, 1);
	assert_int_equal(info.virtual_size, size);
	th_fill(mirror + 2 * MiB - 100, 300, 4242);
	assert_int_equal(siterec_disk_write(d, mirror + 2 * MiB - 100, 300, 2 * MiB - 100), 0);
	assert_int_equal(siterec_disk_flush(d), 0);
	siterec_disk_free(d);
	th_write_file(raw, mirror, size);
	if (have_qemu) {
		assert_int_equal(run("qemu-img compare --image-opts " QEMU_VHD "'%s' "
		                     "driver=raw,file.filename='%s'", p, raw), 0);
		qemu_check_ok(p);
	}
	/* the footer is untouched by the writes */
	m = img_load(p);
	assert_int_equal(m.len, size + 512);
	assert_int_equal(get_be32(img_footer(&m) + 64), vhd_csum(img_footer(&m), 512, 64));
	free(m.b);

	/* exists already */
	d = (siterec_disk *)1;
	th_assert_err(siterec_disk_create(&d, p, MiB, &co), SITEREC_EEXISTS);
	free(mirror);
	free(raw);
	free(p);
}

/* Zero id asks for a random one; a whole MiB stays as is; geometry of big disks. */
static void test_create_ids_and_sizes(void **state)
{
	const char *dir = *state;
	siterec_disk_create_options co;
	assert_int_equal(siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION), 0);
	co.format = SITEREC_DISK_FORMAT_VHD;
	uint8_t ids[2][16];
	static const uint8_t zero[16];
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "r%d.vhd", i);
		char *p = th_path(dir, name);
		siterec_disk *d = NULL;
		assert_int_equal(siterec_disk_create(&d, p, 2 * MiB, &co), 0);
		siterec_disk_info info = get_info(d);
		assert_int_equal(info.virtual_size, 2 * MiB);
		memcpy(ids[i], info.disk_id, 16);
		assert_memory_not_equal(ids[i], zero, 16);
		siterec_disk_free(d);
		struct img m = img_load(p);
		assert_memory_equal(img_footer(&m) + 68, ids[i], 16);
		free(m.b);
		free(p);
	}
	assert_memory_not_equal(ids[0], ids[1], 16);

	/* geometry from the spec's algorithm, worked by hand for each branch: 17 sectors
	 * per track (4 and more heads), 31, 63, 255, and the cap */
	static const struct {
		uint64_t size;
		uint16_t cyl;
		uint8_t heads, spt;
	} geo[] = {
		{ 4 * MiB, 120, 4, 17 },        /* 8192 sectors */
		{ 100 * MiB, 1003, 12, 17 },    /* 204800 */
		{ 200 * MiB, 825, 16, 31 },     /* 409600 */
		{ 300 * MiB, 609, 16, 63 },     /* 614400 */
		{ GiB, 2080, 16, 63 },          /* 2097152 */
		{ 64 * GiB, 32896, 16, 255 },   /* 134217728 >= 65535*16*63 */
		{ 200 * GiB, 65535, 16, 255 },  /* over 65535*16*255: capped */
		{ 3 * 1024 * GiB, 65535, 16, 255 },
	};
	if (have_qemu < 0)
		have_qemu = run("qemu-img --version") == 0;
	for (size_t i = 0; i < sizeof(geo) / sizeof(geo[0]); i++) {
		uint64_t gs = geo[i].size;
		char *p = th_path(dir, "geo.vhd");
		siterec_disk *d = NULL;
		assert_int_equal(siterec_disk_create(&d, p, gs, &co), 0);
		uint8_t b[4096];
		memset(b, 0x5A, sizeof(b));
		assert_int_equal(siterec_disk_write(d, b, sizeof(b), gs - 4096), 0);
		memset(b, 0, sizeof(b));
		assert_int_equal(siterec_disk_read(d, b, 512, gs - 512), 0);
		assert_int_equal(b[511], 0x5A);
		assert_int_equal(get_info(d).virtual_size, gs);
		siterec_disk_free(d);
		int fd = open(p, O_RDONLY);
		assert_true(fd >= 0);
		uint8_t f[512];
		assert_int_equal(pread(fd, f, 512, (off_t)gs), 512);
		close(fd);
		assert_int_equal(get_be64(f + 40), gs);
		assert_int_equal(get_be64(f + 48), gs);
		assert_int_equal(get_be32(f + 64), vhd_csum(f, 512, 64));
		assert_int_equal(get_be32(f + 56) >> 16, geo[i].cyl);
		assert_int_equal(f[58], geo[i].heads);
		assert_int_equal(f[59], geo[i].spt);
		if (have_qemu && gs <= 64 * GiB) {
			char cmd[1024];
			snprintf(cmd, sizeof(cmd), "qemu-img info --output=json --image-opts " QEMU_VHD "'%s'",
			         p);
			char *js = run_output(cmd);
			char want[64];
			snprintf(want, sizeof(want), "\"virtual-size\": %llu", (unsigned long long)gs);
			assert_non_null(strstr(js, want));
			free(js);
			qemu_check_ok(p);
		}
		unlink(p);
		free(p);
	}
}

/* ---- damaged images ------------------------------------------------------------ */

/* A small dynamic disk (4 KiB blocks, 10 blocks, some allocated) to damage. */
static void make_small_dynamic(const char *p)
{
	uint8_t alloc[10] = { 1, 0, 1, 1, 0, 0, 0, 0, 0, 1 };
	uint8_t *want = malloc(40 * KiB);
	assert_non_null(want);
	build_dynamic(p, 40 * KiB, 4096, alloc, want);
	free(want);
}

static void test_bad_footer(void **state)
{
	const char *dir = *state;
	char *p = th_path(dir, "bad.vhd");
	uint8_t small[100] = { 0 };
	th_write_file(p, small, sizeof(small));
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "too small");
	th_write_file(p, small, 0);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "too small");

	/* a fixed VHD built from a created one */
	siterec_disk_create_options co;
	siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION);
	co.format = SITEREC_DISK_FORMAT_VHD;
	char *good = th_path(dir, "good.vhd");
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_create(&d, good, MiB, &co), 0);
	siterec_disk_free(d);
	struct img g = img_load(good);

	/* truncated: the footer is torn, no copy at 0 for a fixed disk */
	th_write_file(p, g.b, g.len - 100);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "cookie");
	/* a file that is no VHD is read as raw when detecting */
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	assert_int_equal(get_info(d).format, SITEREC_DISK_FORMAT_RAW);
	siterec_disk_free(d);

	/* one flipped bit anywhere in the footer: checksum */
	for (int off = 0; off < 512; off += 37) {
		th_write_file(p, g.b, g.len);
		th_flip_bit(p, g.len - 512 + (uint64_t)off, off % 8);
		siterec_disk *x = NULL;
		int rc = try_open(p, SITEREC_DISK_FORMAT_VHD, 0, &x);
		assert_int_equal(rc, SITEREC_EDISK);
		assert_null(x);
	}
	th_write_file(p, g.b, g.len);
	th_flip_bit(p, g.len - 512 + 40, 3);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "checksum");

	/* fields with a valid checksum that make no sense */
	struct {
		size_t off;
		int width;
		uint64_t val;
		int want;
		const char *needle;
	} cases[] = {
		{ 48, 8, MiB + 1, SITEREC_EDISK, "multiple of 512" },
		{ 48, 8, MiB + 512, SITEREC_EDISK, "current size" },
		{ 48, 8, UINT64_MAX - 511, SITEREC_EDISK, "current size" },
		{ 48, 8, 1ull << 63, SITEREC_EDISK, "current size" },
		{ 60, 4, 4, SITEREC_EUNSUPPORTED, "differencing" },
		{ 60, 4, 5, SITEREC_EDISK, "disk type" },
		{ 60, 4, 0, SITEREC_EDISK, "disk type" },
		{ 12, 4, 0x00020000, SITEREC_EDISK, "version" },
		/* a fixed disk claiming to be dynamic: no header where it points */
		{ 60, 4, 3, SITEREC_EDISK, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct img m = img_load(good);
		uint8_t *f = img_footer(&m);
		if (cases[i].width == 8)
			put_be64(f + cases[i].off, cases[i].val);
		else
			put_be32(f + cases[i].off, (uint32_t)cases[i].val);
		fix_footer(f);
		img_save(&m, p);
		open_fails(p, SITEREC_DISK_FORMAT_VHD, cases[i].want, cases[i].needle);
	}
	/* dynamic type with the data offset past the end */
	struct img m = img_load(good);
	put_be32(img_footer(&m) + 60, 3);
	put_be64(img_footer(&m) + 16, m.len - 100);
	fix_footer(img_footer(&m));
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "dynamic header");
	m = img_load(good);
	put_be32(img_footer(&m) + 60, 3);
	put_be64(img_footer(&m) + 16, UINT64_MAX - 10);
	fix_footer(img_footer(&m));
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "dynamic header");

	/* a zero-size fixed disk is only a footer: it opens, nothing can be read */
	m = img_load(good);
	uint8_t f0[512];
	memcpy(f0, img_footer(&m), 512);
	put_be64(f0 + 48, 0);
	fix_footer(f0);
	th_write_file(p, f0, 512);
	free(m.b);
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	assert_int_equal(get_info(d).virtual_size, 0);
	uint8_t b1[1];
	th_assert_err(siterec_disk_read(d, b1, 1, 0), SITEREC_ERANGE);
	siterec_disk_free(d);

	free(g.b);
	free(good);
	free(p);
}

static void test_bad_dynamic(void **state)
{
	const char *dir = *state;
	char *good = th_path(dir, "good.vhd");
	char *p = th_path(dir, "bad.vhd");
	make_small_dynamic(good);
	struct img g = img_load(good);
	/* layout of build_dynamic: header at 512, BAT at 1536 (one sector), blocks after */
	uint64_t bat = 1536;

	/* header fields */
	struct {
		size_t off;
		int width;
		uint64_t val;
		const char *needle;
	} cases[] = {
		{ 32, 4, 0, "block size" },
		{ 32, 4, 3 * 512, "block size" },
		{ 32, 4, 256, "block size" },
		{ 32, 4, 1u << 30, "block size" },
		{ 32, 4, 0x80000000u, "block size" },
		{ 28, 4, 9, "table entries" },
		{ 28, 4, 0, "table entries" },
		{ 16, 8, 1ull << 40, "block table" },
		{ 16, 8, UINT64_MAX - 2, "block table" },
		{ 16, 8, 0, NULL }, /* table at the footer copy: garbage entries, caught on read */
		{ 24, 4, 0x00020000, "version" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct img m = img_load(good);
		uint8_t *h = m.b + 512;
		if (cases[i].width == 8)
			put_be64(h + cases[i].off, cases[i].val);
		else
			put_be32(h + cases[i].off, (uint32_t)cases[i].val);
		fix_header(h);
		img_save(&m, p);
		if (!cases[i].needle) {
			siterec_disk *d = NULL;
			int rc = try_open(p, SITEREC_DISK_FORMAT_VHD, 0, &d);
			if (rc == 0) {
				uint8_t *b = malloc(40 * KiB);
				rc = siterec_disk_read(d, b, 40 * KiB, 0);
				assert_true(rc == 0 || rc == SITEREC_EDISK);
				free(b);
				siterec_disk_free(d);
			}
			continue;
		}
		open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, cases[i].needle);
	}
	/* header cookie and checksum */
	th_write_file(p, g.b, g.len);
	th_flip_bit(p, 512 + 2, 1);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "cxsparse");
	th_write_file(p, g.b, g.len);
	th_flip_bit(p, 512 + 30, 1);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "checksum");

	/* the disk too big for its table: current size raised in both footers */
	struct img m = img_load(good);
	put_be64(m.b + 48, 41 * KiB);
	fix_footer(m.b);
	memcpy(img_footer(&m), m.b, 512);
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "table entries");
	m = img_load(good);
	put_be64(m.b + 48, UINT64_MAX - 511);
	fix_footer(m.b);
	memcpy(img_footer(&m), m.b, 512);
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "table entries");

	/* a table no real disk has: 1 TiB of 512-byte blocks (8 GiB of entries), which
	 * must be refused before anything is allocated or read */
	m = img_load(good);
	put_be64(m.b + 48, 1ull << 40);
	fix_footer(m.b);
	memcpy(img_footer(&m), m.b, 512);
	put_be32(m.b + 512 + 28, 0xFFFFFFFFu);
	put_be32(m.b + 512 + 32, 512);
	fix_header(m.b + 512);
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "block table");

	/* differencing */
	m = img_load(good);
	put_be32(m.b + 60, 4);
	fix_footer(m.b);
	memcpy(img_footer(&m), m.b, 512);
	img_save(&m, p);
	open_fails(p, SITEREC_DISK_FORMAT_AUTO, SITEREC_EUNSUPPORTED, "differencing");

	/* end footer torn or damaged: the copy at 0 is used */
	th_write_file(p, g.b, g.len - 200);
	siterec_disk *d = open_fmt(p, SITEREC_DISK_FORMAT_VHD, 0);
	uint8_t *a = malloc(40 * KiB), *b = malloc(40 * KiB);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(siterec_disk_read(d, a, 40 * KiB, 0), 0);
	siterec_disk_free(d);
	d = open_fmt(good, SITEREC_DISK_FORMAT_AUTO, 0);
	assert_int_equal(siterec_disk_read(d, b, 40 * KiB, 0), 0);
	siterec_disk_free(d);
	assert_memory_equal(a, b, 40 * KiB);
	th_write_file(p, g.b, g.len);
	th_flip_bit(p, g.len - 512 + 50, 2);
	d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
	assert_int_equal(siterec_disk_read(d, a, 40 * KiB, 0), 0);
	assert_memory_equal(a, b, 40 * KiB);
	siterec_disk_free(d);
	/* ... but not when both are bad */
	th_flip_bit(p, 70, 2);
	open_fails(p, SITEREC_DISK_FORMAT_VHD, SITEREC_EDISK, "checksum");

	/* the last block cut off: opens, that block fails with EDISK, the rest reads */
	th_write_file(p, g.b, g.len - 512 - 1000);
	d = open_fmt(p, SITEREC_DISK_FORMAT_VHD, 0);
	assert_int_equal(siterec_disk_read(d, a, 36 * KiB, 0), 0);
	assert_memory_equal(a, b, 36 * KiB);
	th_assert_err(siterec_disk_read(d, a, 40 * KiB, 0), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, p));
	th_assert_err(siterec_disk_read(d, a, 1, 40 * KiB - 1), SITEREC_EDISK);
	uint64_t run_len = 0;
	int al = -1;
	th_assert_err(siterec_disk_block_status(d, 36 * KiB, 4 * KiB, &run_len, &al), SITEREC_EDISK);
	siterec_disk_free(d);

	/* BAT entries pointing past the end of the file */
	const uint32_t evil[] = { 0xFFFFFFFEu, (uint32_t)(g.len / 512), (uint32_t)(g.len / 512) - 1,
	                          0x7FFFFFFFu };
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		m = img_load(good);
		put_be32(m.b + bat + 4 * 2, evil[i]); /* block 2 (allocated) */
		put_be32(m.b + bat + 4 * 5, evil[i]); /* block 5 (was a hole) */
		img_save(&m, p);
		d = open_fmt(p, SITEREC_DISK_FORMAT_AUTO, 0);
		assert_int_equal(siterec_disk_read(d, a, 8 * KiB, 0), 0);
		assert_memory_equal(a, b, 8 * KiB);
		th_assert_err(siterec_disk_read(d, a, 8 * KiB, 4 * KiB), SITEREC_EDISK);
		assert_non_null(strstr(siterec_error_last()->message, "past the end"));
		th_assert_err(siterec_disk_read(d, a, 512, 20 * KiB + 512), SITEREC_EDISK);
		/* status: block 0 alone allocated and fine, then block 1 a hole, then the bad one */
		assert_int_equal(siterec_disk_block_status(d, 0, 40 * KiB, &run_len, &al), 0);
		assert_int_equal(run_len, 4 * KiB);
		assert_int_equal(al, 1);
		assert_int_equal(siterec_disk_block_status(d, 4 * KiB, 4 * KiB, &run_len, &al), 0);
		assert_int_equal(al, 0);
		th_assert_err(siterec_disk_block_status(d, 8 * KiB, 4 * KiB, &run_len, &al),
		              SITEREC_EDISK);
		assert_int_equal(siterec_disk_read(d, a, 4 * KiB, 36 * KiB), 0);
		assert_memory_equal(a, b + 36 * KiB, 4 * KiB);
		siterec_disk_free(d);
	}

	free(a);
	free(b);
	free(g.b);
	free(good);
	free(p);
}

/* The file shrinking under an open handle, and allocation failures at each step of
 * opening a dynamic disk: clean errors, nothing leaked. */
static int alloc_fail_at, alloc_live;
static void *fail_malloc(size_t n, void *payload)
{
	(void)payload;
	if (alloc_fail_at-- == 0)
		return NULL;
	void *p = malloc(n);
	if (p)
		alloc_live++;
	return p;
}
static void *fail_realloc(void *p, size_t n, void *payload)
{
	(void)payload;
	if (alloc_fail_at-- == 0)
		return NULL;
	if (!p && n)
		alloc_live++;
	return realloc(p, n);
}
static void counted_free(void *p, void *payload)
{
	(void)payload;
	if (p)
		alloc_live--;
	free(p);
}

static void test_io_and_alloc_failures(void **state)
{
	const char *dir = *state;
	char *p = th_path(dir, "shrink.vhd");
	siterec_disk_create_options co;
	siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION);
	co.format = SITEREC_DISK_FORMAT_VHD;
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_create(&d, p, MiB, &co), 0);
	th_truncate(p, 1000);
	uint8_t b[4096];
	assert_int_equal(siterec_disk_read(d, b, 1000, 0), 0);
	th_assert_err(siterec_disk_read(d, b, 4096, 512), SITEREC_EDISK);
	assert_non_null(strstr(siterec_error_last()->message, p));
	siterec_disk_free(d);

	char *q = th_path(dir, "alloc.vhd");
	make_small_dynamic(q);
	int opened = 0;
	for (int n = 0; n < 32 && !opened; n++) {
		siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, fail_malloc, fail_realloc,
		                        counted_free, NULL };
		alloc_fail_at = n;
		alloc_live = 0;
		assert_int_equal(siterec_set_allocator(&a), 0);
		d = NULL;
		int rc = try_open(q, SITEREC_DISK_FORMAT_AUTO, 0, &d);
		if (rc == 0) {
			opened = 1;
			assert_int_equal(siterec_disk_read(d, b, 4096, 36 * KiB), 0);
			siterec_disk_free(d);
		} else {
			assert_int_equal(rc, SITEREC_ENOMEM);
			assert_null(d);
		}
		assert_int_equal(alloc_live, 0);
		assert_int_equal(siterec_set_allocator(NULL), 0);
	}
	assert_true(opened);
	free(q);
	free(p);
}

/* Thousands of random byte changes on a small dynamic image (metadata-heavy):
 * every call answers 0 or a negative code with a message; ASan/valgrind watch
 * for out-of-bounds accesses. */
static void test_random_corruption(void **state)
{
	const char *dir = *state;
	char *p = th_path(dir, "rnd.vhd");
	make_small_dynamic(p);
	struct img g = img_load(p);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(64 * KiB);
	assert_non_null(buf);
	uint64_t rs = 12345;
	int opened = 0, iters = getenv("SITEREC_TEST_QUICK") ? 500 : 3000;
	for (int it = 0; it < iters; it++) {
		/* 1..8 changes, mostly in the footers, header and BAT */
		int nchg = 1 + (int)(th_rand(&rs) % 8);
		uint64_t offs[8];
		for (int k = 0; k < nchg; k++) {
			uint64_t r = th_rand(&rs), o;
			switch (r % 4) {
			case 0: o = (r >> 8) % 2048; break;                       /* footer copy, header */
			case 1: o = 1536 + (r >> 8) % 512; break;                 /* BAT */
			case 2: o = g.len - 512 + (r >> 8) % 512; break;          /* footer */
			default: o = (r >> 8) % g.len; break;
			}
			offs[k] = o;
			uint8_t v = (uint8_t)(th_rand(&rs) >> 13);
			if (v == g.b[o])
				v ^= 0x80;
			assert_int_equal(pwrite(fd, &v, 1, (off_t)o), 1);
		}
		/* half the time keep the checksums right, so the deeper checks run */
		if (it % 2) {
			uint8_t f[512], h[1024];
			assert_int_equal(pread(fd, f, 512, 0), 512);
			fix_footer(f);
			assert_int_equal(pwrite(fd, f, 512, 0), 512);
			assert_int_equal(pwrite(fd, f, 512, (off_t)(g.len - 512)), 512);
			assert_int_equal(pread(fd, h, 1024, 512), 1024);
			fix_header(h);
			assert_int_equal(pwrite(fd, h, 1024, 512), 1024);
		}
		siterec_disk *d = NULL;
		int rc = try_open(p, it % 3 ? SITEREC_DISK_FORMAT_VHD : SITEREC_DISK_FORMAT_AUTO, 0, &d);
		assert_true(rc <= 0);
		if (rc) {
			assert_null(d);
			assert_true(siterec_error_last()->message[0] != '\0');
		} else {
			opened++;
			siterec_disk_info info = get_info(d);
			uint64_t vs = info.virtual_size;
			uint64_t off = 0;
			/* status walk, bounded */
			for (int s = 0; s < 64 && off < vs; s++) {
				uint64_t run_len = 0;
				int al = -1;
				rc = siterec_disk_block_status(d, off, vs - off, &run_len, &al);
				assert_true(rc <= 0);
				if (rc)
					break;
				assert_true(run_len > 0 && run_len <= vs - off);
				off += run_len;
			}
			/* reads at the start, the end and a few random places */
			for (int r = 0; r < 6 && vs; r++) {
				uint64_t len = 1 + th_rand(&rs) % (64 * KiB);
				if (len > vs)
					len = vs;
				uint64_t o = r == 0 ? 0 : r == 1 ? vs - len : th_rand(&rs) % (vs - len + 1);
				rc = siterec_disk_read(d, buf, (size_t)len, o);
				assert_true(rc <= 0);
				if (rc)
					assert_true(siterec_error_last()->message[0] != '\0');
			}
			siterec_disk_free(d);
		}
		/* restore the pristine image */
		for (int k = 0; k < nchg; k++)
			assert_int_equal(pwrite(fd, g.b + offs[k], 1, (off_t)offs[k]), 1);
		if (it % 2) {
			assert_int_equal(pwrite(fd, g.b, 1536, 0), 1536);
			assert_int_equal(pwrite(fd, g.b + g.len - 512, 512, (off_t)(g.len - 512)), 512);
		}
	}
	print_message("random corruption: %d of %d damaged images still opened\n", opened, iters);
	close(fd);
	free(buf);
	free(g.b);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fixed_qemu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixed_qemu_chs_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_qemu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_qemu_chs_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_block_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_ids_and_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_footer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_dynamic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_io_and_alloc_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_corruption, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
