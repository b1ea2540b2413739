/* Delta log encryption (AES-256-GCM): roundtrip, keys, tampering, ciphertext on
 * disk, coalesce and apply of encrypted logs, nonces across reopen. Public API
 * only; doc/formats.md's layout is used to forge checksums on tampered records. */
#include "helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MiB (1024ull * 1024)
#define HDR 128u
#define RHDR 64u
#define TAG 16u

static uint8_t KEY[32], KEY2[32];

static void mkopts(siterec_dlog_options *o, uint64_t disk, const uint8_t *key)
{
	assert_int_equal(siterec_dlog_options_init(o, SITEREC_DLOG_OPTIONS_VERSION), 0);
	o->disk_size = disk;
	memset(o->disk_id, 0xA5, 16);
	o->key = key;
	o->key_size = key ? SITEREC_DLOG_KEY_SIZE : 0;
}

static siterec_dlog_options kopts(const uint8_t *key)
{
	siterec_dlog_options o;
	mkopts(&o, 0, key);
	return o;
}



static size_t rec_positions(const uint8_t *b, size_t len, uint64_t *pos, size_t max)
{
	size_t n = 0;
	uint64_t p = HDR;
	while (p + RHDR <= len && n < max) {
		uint32_t pl;
		memcpy(&pl, b + p + 32, 4);
		pos[n++] = p;
		p += RHDR + pl;
	}
	return n;
}

/* Header check and checksum after an edit: what an attacker without the key can do. */
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

struct mem_img {
	uint8_t *img;
	uint64_t size;
};

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
	struct mem_img *m = p;
	assert_true(off + len <= m->size);
	memcpy(m->img + off, buf, len);
	return 0;
}

/* A log of recognisable text-like data (so leaks of plaintext are findable). */
static char *enc_log(const char *dir, const char *name, const uint8_t *key, uint8_t *model,
                     uint64_t disk, int seal)
{
	char *path = th_path(dir, name);
	siterec_dlog_options o;
	mkopts(&o, disk, key);
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, path, &o), 0);
	uint8_t *d = malloc(6 * MiB);
	for (size_t i = 0; i < 6 * MiB; i++)
		d[i] = (uint8_t)("PLAINTEXT-SECRET-"[i % 17]);
	size_t lens[] = { 4096, 512, 6 * MiB, 300 * 1024, 1024 };
	uint64_t offs[] = { 0, 8192, MiB, 10 * MiB, 4096 };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(siterec_dlog_append(w, offs[i], d, lens[i], NULL), 0);
		if (model)
			memcpy(model + offs[i], d, lens[i]);
	}
	assert_int_equal(siterec_dlog_append_zero(w, 2 * MiB, MiB, NULL), 0);
	if (model)
		memset(model + 2 * MiB, 0, MiB);
	if (seal)
		assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	free(d);
	return path;
}

static void test_roundtrip(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 16 * MiB;
	uint8_t *model = calloc(1, disk);
	char *path = enc_log(dir, "e.dlog", KEY, model, disk, 1);
	siterec_dlog_options o = kopts(KEY);
	siterec_dlog_reader *r = NULL;
	assert_int_equal(siterec_dlog_reader_open(&r, path, &o), 0);
	siterec_dlog_record rec;
	uint8_t *img = calloc(1, disk);
	int n = 0;
	while (siterec_dlog_reader_next(r, &rec) == 1) {
		n++;
		if (rec.zero)
			memset(img + rec.offset, 0, (size_t)rec.length);
		else
			memcpy(img + rec.offset, rec.data, (size_t)rec.length);
	}
	assert_int_equal(n, 7); /* 6 MiB split in two */
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_reader_info(r, &info), 0);
	assert_int_equal(info.encrypted, 1);
	assert_int_equal(info.sealed, 1);
	siterec_dlog_reader_free(r);
	assert_memory_equal(img, model, disk);
	assert_int_equal(siterec_dlog_verify(path, &o, NULL), 0);

	/* apply through both paths */
	struct mem_img m = { calloc(1, disk), disk };
	assert_int_equal(siterec_dlog_apply(path, &o, SITEREC_DLOG_APPLY_REQUIRE_SEALED, mem_write, &m,
	                                    NULL),
	                 0);
	assert_memory_equal(m.img, model, disk);
	char *ip = th_path(dir, "e.img");
	int fd = th_make_file(ip, disk);
	uint64_t seq = 0;
	assert_int_equal(siterec_dlog_apply_fd(path, &o, 0, fd, &seq), 0);
	assert_int_equal(seq, 7);
	close(fd);
	size_t len;
	uint8_t *got = th_read_file(ip, &len);
	assert_memory_equal(got, model, disk);
	free(got);
	free(ip);
	free(m.img);
	free(img);
	free(model);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_keys(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = enc_log(dir, "k.dlog", KEY, NULL, 16 * MiB, 1);
	siterec_dlog_options wrong = kopts(KEY2), none = kopts(NULL), good = kopts(KEY);
	siterec_dlog_reader *r = NULL;
	th_assert_err(siterec_dlog_reader_open(&r, path, &wrong), SITEREC_EAUTH);
	assert_null(r);
	th_assert_err(siterec_dlog_reader_open(&r, path, &none), SITEREC_EAUTH);
	th_assert_err(siterec_dlog_reader_open(&r, path, NULL), SITEREC_EAUTH);
	th_assert_err(siterec_dlog_verify(path, &wrong, NULL), SITEREC_EAUTH);
	struct mem_img m = { calloc(1, 16 * MiB), 16 * MiB };
	th_assert_err(siterec_dlog_apply(path, &wrong, 0, mem_write, &m, NULL), SITEREC_EAUTH);
	th_assert_err(siterec_dlog_apply(path, NULL, 0, mem_write, &m, NULL), SITEREC_EAUTH);
	/* the key never appears in the message */
	const char *msg = siterec_error_last()->message;
	assert_null(memmem(msg, strlen(msg), KEY, 4));
	siterec_dlog *w = NULL;
	th_assert_err(siterec_dlog_reopen(&w, path, &wrong, NULL), SITEREC_EAUTH);

	/* a key for an unencrypted log */
	char *plain = th_path(dir, "p.dlog");
	siterec_dlog_options po;
	mkopts(&po, 16 * MiB, NULL);
	assert_int_equal(siterec_dlog_create(&w, plain, &po), 0);
	siterec_dlog_free(w);
	th_assert_err(siterec_dlog_reader_open(&r, plain, &good), SITEREC_EINVAL);
	th_assert_err(siterec_dlog_verify(plain, &good, NULL), SITEREC_EINVAL);

	/* key_size must be 0 or 32, with a key exactly when 32 */
	char *x = th_path(dir, "x.dlog");
	siterec_dlog_options bad;
	mkopts(&bad, 16 * MiB, KEY);
	bad.key_size = 16;
	th_assert_err(siterec_dlog_create(&w, x, &bad), SITEREC_EINVAL);
	bad.key_size = 0;
	th_assert_err(siterec_dlog_create(&w, x, &bad), SITEREC_EINVAL);
	bad.key = NULL;
	bad.key_size = 32;
	th_assert_err(siterec_dlog_create(&w, x, &bad), SITEREC_EINVAL);
	bad.key_size = 64;
	th_assert_err(siterec_dlog_reader_open(&r, path, &bad), SITEREC_EINVAL);
	assert_int_equal(th_file_size(x), -1);
	free(m.img);
	free(x);
	free(plain);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_ciphertext_on_disk(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = enc_log(dir, "c.dlog", KEY, NULL, 16 * MiB, 1);
	size_t len;
	uint8_t *b = th_read_file(path, &len);
	assert_true(len > 6 * MiB);
	assert_null(memmem(b, len, "PLAINTEXT", 9));
	assert_null(memmem(b, len, "SECRET", 6));
	assert_null(memmem(b, len, KEY, 8));
	/* the same plaintext under the same key in another file differs (random salt) */
	char *p2 = enc_log(dir, "c2.dlog", KEY, NULL, 16 * MiB, 1);
	size_t len2;
	uint8_t *b2 = th_read_file(p2, &len2);
	assert_int_equal(len, len2);
	assert_memory_not_equal(b + HDR + RHDR, b2 + HDR + RHDR, 4096);
	free(b);
	free(b2);
	free(p2);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_tamper(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = enc_log(dir, "t.dlog", KEY, NULL, 16 * MiB, 1);
	char *bad = th_path(dir, "bad.dlog");
	siterec_dlog_options o = kopts(KEY);
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint8_t *out = malloc(len + 4096);
	uint64_t pos[16];
	size_t n = rec_positions(img, len, pos, 16);
	assert_int_equal(n, 8); /* 7 records and the seal */

	/* payload byte changed, checksums fixed: the tag catches it (seal included) */
	for (int r = 0; r < 8; r++) {
		if (r == 6)
			continue; /* the zero record has no payload */
		memcpy(out, img, len);
		out[pos[r] + RHDR + 3] ^= 0x10;
		fix_record(out + pos[r]);
		th_write_file(bad, out, len);
		th_assert_err(siterec_dlog_verify(bad, &o, NULL), SITEREC_EAUTH);
	}
	/* header fields changed, checksums fixed: data moved to another offset, or
	 * another nonce prefix, is detected */
	const int field[3] = { 16, 16, 40 };
	const uint64_t delta[3] = { 512, 4096, 1 };
	for (int i = 0; i < 3; i++) {
		memcpy(out, img, len);
		uint64_t v;
		memcpy(&v, out + pos[0] + field[i], 8);
		v += delta[i];
		memcpy(out + pos[0] + field[i], &v, 8);
		fix_record(out + pos[0]);
		th_write_file(bad, out, len);
		th_assert_err(siterec_dlog_verify(bad, &o, NULL), SITEREC_EAUTH);
	}
	/* records swapped and renumbered (equal sizes): nonce index and AAD differ */
	char *eq = th_path(dir, "eq.dlog");
	siterec_dlog_options wo;
	mkopts(&wo, 16 * MiB, KEY);
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, eq, &wo), 0);
	uint8_t d[4096];
	for (int i = 0; i < 3; i++) {
		th_fill(d, sizeof(d), (uint64_t)i);
		assert_int_equal(siterec_dlog_append(w, (uint64_t)i * 4096, d, 4096, NULL), 0);
	}
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	size_t elen;
	uint8_t *e = th_read_file(eq, &elen);
	uint64_t ep[8];
	assert_int_equal(rec_positions(e, elen, ep, 8), 4);
	uint8_t *sw = malloc(elen);
	memcpy(sw, e, elen);
	size_t rs = (size_t)(ep[1] - ep[0]);
	memcpy(sw + ep[0], e + ep[2], rs);
	memcpy(sw + ep[2], e + ep[0], rs);
	uint64_t s0, s2;
	memcpy(&s0, e + ep[0] + 8, 8);
	memcpy(&s2, e + ep[2] + 8, 8);
	memcpy(sw + ep[0] + 8, &s0, 8);
	memcpy(sw + ep[2] + 8, &s2, 8);
	fix_record(sw + ep[0]);
	fix_record(sw + ep[2]);
	th_write_file(bad, sw, elen);
	th_assert_err(siterec_dlog_verify(bad, &o, NULL), SITEREC_EAUTH);
	/* the last record dropped and the seal's header renumbered: its tag fails */
	size_t cut = (size_t)ep[2];
	memcpy(sw, e, cut);
	memcpy(sw + cut, e + ep[3], elen - (size_t)ep[3]);
	uint64_t sseq = 2;
	memcpy(sw + cut + 8, &sseq, 8);
	fix_record(sw + cut);
	th_write_file(bad, sw, cut + (elen - (size_t)ep[3]));
	th_assert_err(siterec_dlog_verify(bad, &o, NULL), SITEREC_EAUTH);

	/* plain bit flips anywhere: corrupt or auth failure, never success */
	for (size_t p = 0; p < elen; p += 7) {
		int bit = (int)(p % 8);
		th_flip_bit(eq, p, bit);
		int rc = siterec_dlog_verify(eq, &o, NULL);
		if (rc != SITEREC_ECORRUPT && rc != SITEREC_EAUTH)
			fail_msg("flip at %zu: %d", p, rc);
		th_flip_bit(eq, p, bit);
	}
	assert_int_equal(siterec_dlog_verify(eq, &o, NULL), 0);
	free(sw);
	free(e);
	free(eq);
	free(out);
	free(img);
	free(bad);
	free(path);
	th_tmpdir_remove(dir);
}

static void test_coalesce_encrypted(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	const uint64_t disk = 16 * MiB;
	uint8_t *model = calloc(1, disk);
	char *p1 = th_path(dir, "1.dlog"), *p2 = th_path(dir, "2.dlog");
	siterec_dlog_options o;
	mkopts(&o, disk, KEY);
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, p1, &o), 0);
	uint64_t s = 9;
	for (int i = 0; i < 200; i++) {
		if (i == 100)
			assert_int_equal(siterec_dlog_rotate(w, p2), 0);
		uint64_t off = (th_rand(&s) % (2 * MiB / 512)) * 512;
		size_t len = (size_t)((th_rand(&s) % 16) + 1) * 512;
		uint8_t d[8192];
		th_fill(d, len, th_rand(&s));
		assert_int_equal(siterec_dlog_append(w, off, d, len, NULL), 0);
		memcpy(model + off, d, len);
	}
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	const char *in[2] = { p2, p1 };
	siterec_dlog_options ko = kopts(KEY), ko2 = kopts(KEY2);
	/* encrypted with another key, and unencrypted */
	char *o1 = th_path(dir, "o1.dlog"), *o2 = th_path(dir, "o2.dlog"), *o3 = th_path(dir, "o3.dlog");
	assert_int_equal(siterec_dlog_coalesce(in, 2, o1, &ko, &ko2), 0);
	assert_int_equal(siterec_dlog_coalesce(in, 2, o2, &ko, NULL), 0);
	th_assert_err(siterec_dlog_coalesce(in, 2, o3, NULL, NULL), SITEREC_EAUTH);
	th_assert_err(siterec_dlog_coalesce(in, 2, o3, &ko2, NULL), SITEREC_EAUTH);
	assert_int_equal(th_file_size(o3), -1);
	struct mem_img m1 = { calloc(1, disk), disk }, m2 = { calloc(1, disk), disk };
	assert_int_equal(siterec_dlog_apply(o1, &ko2, SITEREC_DLOG_APPLY_REQUIRE_SEALED, mem_write, &m1,
	                                    NULL),
	                 0);
	assert_int_equal(siterec_dlog_apply(o2, NULL, 0, mem_write, &m2, NULL), 0);
	assert_memory_equal(m1.img, model, disk);
	assert_memory_equal(m2.img, model, disk);
	th_assert_err(siterec_dlog_verify(o1, &ko, NULL), SITEREC_EAUTH);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(o1, &ko2, &info), 0);
	assert_int_equal(info.encrypted, 1);
	assert_int_equal(info.first_seq, 1);
	assert_int_equal(info.last_seq, 200);
	free(m1.img);
	free(m2.img);
	free(model);
	free(p1);
	free(p2);
	free(o1);
	free(o2);
	free(o3);
	th_tmpdir_remove(dir);
}

/* After a crash the next writer must not reuse the cut record's nonce. */
static void test_reopen_encrypted(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *path = enc_log(dir, "r.dlog", KEY, NULL, 16 * MiB, 0);
	size_t len;
	uint8_t *img = th_read_file(path, &len);
	uint64_t pos[16];
	size_t n = rec_positions(img, len, pos, 16);
	assert_int_equal(n, 7);
	/* tear the last record (the zero record is last: tear the data one before) */
	th_truncate(path, pos[6] - 100);
	siterec_dlog_options o = kopts(KEY);
	siterec_dlog *w = NULL;
	int torn = 0;
	assert_int_equal(siterec_dlog_reopen(&w, path, &o, &torn), 0);
	assert_int_equal(torn, 1);
	assert_int_equal(siterec_dlog_next_seq(w), 6);
	uint8_t d[1024];
	th_fill(d, sizeof(d), 1);
	assert_int_equal(siterec_dlog_append(w, 0, d, sizeof(d), NULL), 0);
	assert_int_equal(siterec_dlog_seal(w), 0);
	siterec_dlog_free(w);
	size_t len2;
	uint8_t *img2 = th_read_file(path, &len2);
	/* records of the first session share its nonce prefix; the new one differs */
	assert_memory_equal(img2 + pos[0] + 40, img2 + pos[4] + 40, 8);
	assert_memory_not_equal(img2 + pos[0] + 40, img2 + pos[5] + 40, 8);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(path, &o, &info), 0);
	assert_int_equal(info.records, 6);
	assert_int_equal(info.sealed, 1);
	struct mem_img m = { calloc(1, 16 * MiB), 16 * MiB };
	assert_int_equal(siterec_dlog_apply(path, &o, 0, mem_write, &m, NULL), 0);
	assert_memory_equal(m.img, d, sizeof(d));
	free(m.img);
	free(img);
	free(img2);
	free(path);
	th_tmpdir_remove(dir);
}

/* A record copied whole (with its valid checksum) into another disk's log under the
 * same key, at the same position and sequence number, fails authentication: the
 * AAD binds each record to its file's disk id and salt. */
static void test_record_transplant(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *pa = th_path(dir, "a.dlog"), *pb = th_path(dir, "b.dlog");
	uint8_t data[512];
	const char *paths[2] = { pa, pb };
	for (int i = 0; i < 2; i++) {
		siterec_dlog_options o = kopts(KEY);
		o.disk_size = MiB;
		memset(o.disk_id, i ? 0xBB : 0xAA, 16);
		siterec_dlog *w = NULL;
		assert_int_equal(siterec_dlog_create(&w, paths[i], &o), 0);
		memset(data, i ? 0x22 : 0x11, sizeof(data));
		assert_int_equal(siterec_dlog_append(w, 0, data, sizeof(data), NULL), 0);
		assert_int_equal(siterec_dlog_sync(w), 0);
		siterec_dlog_free(w); /* unsealed: no chain to give the swap away */
	}
	size_t la, lb;
	uint8_t *a = th_read_file(pa, &la), *b = th_read_file(pb, &lb);
	assert_int_equal(la, lb);
	memcpy(b + HDR, a + HDR, RHDR + sizeof(data) + TAG);
	th_write_file(pb, b, lb);
	siterec_dlog_options o = kopts(KEY);
	assert_int_equal(siterec_dlog_verify(pa, &o, NULL), 0);
	th_assert_err(siterec_dlog_verify(pb, &o, NULL), SITEREC_EAUTH);
	free(a);
	free(b);
	free(pa);
	free(pb);
	th_tmpdir_remove(dir);
}

static void test_rotate_encrypted(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *p1 = th_path(dir, "a.dlog"), *p2 = th_path(dir, "b.dlog");
	siterec_dlog_options o;
	mkopts(&o, 16 * MiB, KEY);
	siterec_dlog *w = NULL;
	assert_int_equal(siterec_dlog_create(&w, p1, &o), 0);
	uint8_t d[4096];
	th_fill(d, sizeof(d), 5);
	assert_int_equal(siterec_dlog_append(w, 0, d, 4096, NULL), 0);
	assert_int_equal(siterec_dlog_rotate(w, p2), 0);
	assert_int_equal(siterec_dlog_append(w, 4096, d, 4096, NULL), 0);
	siterec_dlog_free(w);
	siterec_dlog_options ko = kopts(KEY), ko2 = kopts(KEY2);
	siterec_dlog_info info;
	info.version = SITEREC_DLOG_INFO_VERSION;
	assert_int_equal(siterec_dlog_verify(p1, &ko, &info), 0);
	assert_int_equal(info.sealed, 1);
	assert_int_equal(siterec_dlog_verify(p2, &ko, &info), 0);
	assert_int_equal(info.encrypted, 1);
	assert_int_equal(info.first_seq, 2);
	th_assert_err(siterec_dlog_verify(p2, &ko2, NULL), SITEREC_EAUTH);
	free(p1);
	free(p2);
	th_tmpdir_remove(dir);
}

int main(void)
{
	th_fill(KEY, sizeof(KEY), 1001);
	th_fill(KEY2, sizeof(KEY2), 1002);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_ciphertext_on_disk),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_coalesce_encrypted),
		cmocka_unit_test(test_reopen_encrypted),
		cmocka_unit_test(test_rotate_encrypted),
		cmocka_unit_test(test_record_transplant),
	};
	return cmocka_run_group_tests_name("dlog_crypto", tests, NULL, NULL);
}
