/* Test-only VHDX writer: see vhdx_writer.h. */
#include "vhdx_writer.h"
#include "helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MB (1024ull * 1024ull)

static const uint8_t G_BAT[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
                                   0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t G_META[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
                                    0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t G_FP[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
                                  0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t G_VS[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
                                  0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t G_ID[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
                                  0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
static const uint8_t G_LS[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
                                  0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t G_PS[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
                                  0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
static const uint8_t G_PL[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
                                  0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const uint8_t G_LOCTYPE[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
                                       0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

static void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

uint32_t vw_crc32c(const void *buf, size_t len)
{
	/* bitwise: slow but obviously right, and independent of the library's table */
	const uint8_t *p = buf;
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

struct vw {
	struct vw_params p;
	uint64_t nblocks;
	uint8_t **data;      /* per block, lazily */
	uint8_t **present;   /* per block, one byte per sector, lazily */
	int *forced;         /* forced state or -1 */
	uint8_t guid[16];
	char *rel, *abs;
	uint8_t linkage[16];
};

static unsigned vw_counter;

vw *vw_new(const struct vw_params *p)
{
	vw *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->p = *p;
	if (!w->p.block_size)
		w->p.block_size = (uint32_t)MB;
	if (!w->p.logical_sector)
		w->p.logical_sector = 512;
	if (!w->p.physical_sector)
		w->p.physical_sector = 4096;
	w->nblocks = (p->virtual_size + w->p.block_size - 1) / w->p.block_size;
	w->data = calloc(w->nblocks, sizeof(*w->data));
	w->present = calloc(w->nblocks, sizeof(*w->present));
	w->forced = malloc(w->nblocks * sizeof(int));
	assert_true(w->data && w->present && w->forced);
	for (uint64_t i = 0; i < w->nblocks; i++)
		w->forced[i] = -1;
	if (p->data_write_guid) {
		memcpy(w->guid, p->data_write_guid, 16);
	} else {
		th_fill(w->guid, 16, p->virtual_size ^ (0x1234567ull * ++vw_counter));
	}
	if (p->parent_linkage)
		memcpy(w->linkage, p->parent_linkage, 16);
	w->rel = p->relative_path ? strdup(p->relative_path) : NULL;
	w->abs = p->absolute_win32_path ? strdup(p->absolute_win32_path) : NULL;
	w->p.relative_path = w->rel;
	w->p.absolute_win32_path = w->abs;
	return w;
}

const uint8_t *vw_guid(const vw *w) { return w->guid; }

void vw_free(vw *w)
{
	if (!w)
		return;
	for (uint64_t i = 0; i < w->nblocks; i++) {
		free(w->data[i]);
		free(w->present[i]);
	}
	free(w->data);
	free(w->present);
	free(w->forced);
	free(w->rel);
	free(w->abs);
	free(w);
}

void vw_write(vw *w, uint64_t off, const void *data, size_t len)
{
	uint32_t ls = w->p.logical_sector, bs = w->p.block_size;
	assert_true(off % ls == 0 && len % ls == 0 && off + len <= w->p.virtual_size);
	const uint8_t *src = data;
	while (len) {
		uint64_t b = off / bs, in = off % bs;
		size_t n = bs - in < len ? (size_t)(bs - in) : len;
		if (!w->data[b]) {
			w->data[b] = calloc(1, bs);
			w->present[b] = calloc(1, bs / ls);
			assert_true(w->data[b] && w->present[b]);
		}
		memcpy(w->data[b] + in, src, n);
		memset(w->present[b] + in / ls, 1, n / ls);
		src += n;
		off += n;
		len -= n;
	}
}

void vw_set_block_state(vw *w, uint64_t blk, int state)
{
	assert_true(blk < w->nblocks);
	w->forced[blk] = state;
}

static void pw(int fd, const void *b, size_t n, uint64_t off)
{
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
}

/* UTF-8 (ASCII in practice) to UTF-16LE; returns bytes. */
static size_t to_utf16(uint8_t *dst, const char *s)
{
	size_t n = 0;
	for (; *s; s++, n += 2)
		le16(dst + n, (uint8_t)*s);
	return n;
}

static void guid_text(char *out, const uint8_t *g)
{
	sprintf(out, "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", rd32(g),
	        g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13], g[14],
	        g[15]);
}

static void write_header(int fd, int which, uint64_t seq, const uint8_t *dwg)
{
	uint8_t h[4096] = { 0 };
	memcpy(h, "head", 4);
	le64(h + 8, seq);
	th_fill(h + 16, 16, seq + 77); /* FileWriteGuid */
	memcpy(h + 32, dwg, 16);
	le16(h + 64, 0);
	le16(h + 66, 1);
	le32(h + 68, (uint32_t)MB);
	le64(h + 72, MB);
	le32(h + 4, vw_crc32c(h, sizeof(h)));
	pw(fd, h, sizeof(h), which ? 128 * 1024 : 64 * 1024);
}

void vw_save(vw *w, const char *path)
{
	uint32_t ls = w->p.logical_sector, bs = w->p.block_size;
	int diff = w->p.parent_linkage != NULL;
	uint64_t cr = ((1ull << 23) * ls) / bs;
	uint64_t nsbm = (w->nblocks + cr - 1) / cr;
	uint64_t nbat = diff ? nsbm * (cr + 1) : w->nblocks + (w->nblocks - 1) / cr;
	uint64_t bat_len = (nbat * 8 + MB - 1) / MB * MB;
	uint64_t bat_off = 3 * MB, meta_off = 2 * MB;
	uint64_t next = bat_off + bat_len;
	uint64_t *bat = calloc(nbat, 8);
	assert_non_null(bat);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);

	uint8_t id[512] = { 0 };
	memcpy(id, "vhdxfile", 8);
	to_utf16(id + 8, "vhdx_writer test");
	pw(fd, id, sizeof(id), 0);
	write_header(fd, 0, 1, w->guid);
	write_header(fd, 1, 2, w->guid);

	uint8_t *rg = calloc(1, 64 * 1024);
	assert_non_null(rg);
	memcpy(rg, "regi", 4);
	le32(rg + 8, 2);
	memcpy(rg + 16, G_BAT, 16);
	le64(rg + 32, bat_off);
	le32(rg + 40, (uint32_t)bat_len);
	le32(rg + 44, 1);
	memcpy(rg + 48, G_META, 16);
	le64(rg + 64, meta_off);
	le32(rg + 72, (uint32_t)MB);
	le32(rg + 76, 1);
	le32(rg + 4, vw_crc32c(rg, 64 * 1024));
	pw(fd, rg, 64 * 1024, 192 * 1024);
	pw(fd, rg, 64 * 1024, 256 * 1024);
	free(rg);

	/* metadata: table, then the items from 64 KiB on */
	uint8_t *md = calloc(1, MB);
	assert_non_null(md);
	memcpy(md, "metadata", 8);
	int n = 0;
	uint32_t at = 64 * 1024;
#define ITEM(g, len, flags) do { uint8_t *e_ = md + 32 + 32 * n++; memcpy(e_, g, 16); \
	le32(e_ + 16, at); le32(e_ + 20, len); le32(e_ + 24, flags); } while (0)
	ITEM(G_FP, 8, 4);
	le32(md + at, bs);
	le32(md + at + 4, (w->p.fixed ? 1u : 0u) | (diff ? 2u : 0u));
	at += 8;
	ITEM(G_VS, 8, 6);
	le64(md + at, w->p.virtual_size);
	at += 8;
	ITEM(G_ID, 16, 6);
	th_fill(md + at, 16, w->p.virtual_size + 5);
	at += 16;
	ITEM(G_LS, 4, 6);
	le32(md + at, ls);
	at += 4;
	ITEM(G_PS, 4, 6);
	le32(md + at, w->p.physical_sector);
	at += 4;
	if (diff) {
		/* locator: header, entries, then the UTF-16 strings */
		uint8_t *pl = md + at;
		const char *keys[3] = { "parent_linkage", "relative_path", "absolute_win32_path" };
		char gt[40];
		guid_text(gt, w->linkage);
		const char *vals[3] = { gt, w->rel, w->abs };
		int cnt = 0;
		memcpy(pl, G_LOCTYPE, 16);
		uint32_t sp = 20 + 12 * 3;
		for (int i = 0; i < 3; i++) {
			if (!vals[i])
				continue;
			uint8_t *e = pl + 20 + 12 * cnt++;
			size_t kl = to_utf16(pl + sp, keys[i]);
			le32(e, sp);
			le16(e + 8, (uint16_t)kl);
			sp += (uint32_t)kl;
			size_t vl = to_utf16(pl + sp, vals[i]);
			le32(e + 4, sp);
			le16(e + 10, (uint16_t)vl);
			sp += (uint32_t)vl;
		}
		le16(pl + 18, (uint16_t)cnt);
		ITEM(G_PL, sp, 4);
		at += sp;
	}
#undef ITEM
	le16(md + 10, (uint16_t)n);
	pw(fd, md, MB, meta_off);
	free(md);

	/* payload blocks in order, then sector bitmaps */
	uint8_t *zero = calloc(1, bs);
	assert_non_null(zero);
	for (uint64_t b = 0; b < w->nblocks; b++) {
		uint64_t nsec = bs / ls, valid = nsec;
		if ((b + 1) * bs > w->p.virtual_size)
			valid = (w->p.virtual_size - b * bs) / ls;
		uint64_t cnt = 0;
		for (uint64_t s = 0; w->present[b] && s < valid; s++)
			cnt += w->present[b][s];
		uint64_t state;
		if (w->p.fixed || (cnt && (cnt == valid || !diff)))
			state = VW_FULLY_PRESENT;
		else if (cnt)
			state = VW_PARTIALLY_PRESENT;
		else
			state = w->forced[b] >= 0 ? (uint64_t)w->forced[b] : VW_NOT_PRESENT;
		if (state == VW_FULLY_PRESENT || state == VW_PARTIALLY_PRESENT) {
			pw(fd, w->data[b] ? w->data[b] : zero, bs, next);
			bat[b + b / cr] = state | next;
			next += bs;
		} else {
			bat[b + b / cr] = state;
		}
	}
	if (diff) {
		uint8_t *bm = malloc(MB);
		assert_non_null(bm);
		for (uint64_t c = 0; c < nsbm; c++) {
			memset(bm, 0, MB);
			int any = 0;
			for (uint64_t b = c * cr; b < (c + 1) * cr && b < w->nblocks; b++) {
				if (!w->present[b])
					continue;
				for (uint64_t s = 0; s < bs / ls; s++)
					if (w->present[b][s]) {
						uint64_t bit = (b - c * cr) * (bs / ls) + s;
						bm[bit / 8] |= (uint8_t)(1u << (bit % 8));
						any = 1;
					}
			}
			if (!any)
				continue;
			pw(fd, bm, MB, next);
			bat[c * (cr + 1) + cr] = 6 | next;
			next += MB;
		}
		free(bm);
	}
	uint8_t *braw = calloc(1, bat_len);
	assert_non_null(braw);
	for (uint64_t i = 0; i < nbat; i++)
		le64(braw + 8 * i, bat[i]);
	pw(fd, braw, bat_len, bat_off);
	free(braw);
	free(bat);
	free(zero);
	assert_int_equal(ftruncate(fd, (off_t)next), 0);
	close(fd);
}

void vw_layout(const char *path, struct vw_layout *l)
{
	size_t len;
	uint8_t *f = th_read_file(path, &len);
	assert_true(len >= 320 * 1024);
	const uint8_t *h[2] = { f + 64 * 1024, f + 128 * 1024 };
	int ok[2];
	for (int i = 0; i < 2; i++) {
		uint8_t tmp[4096];
		memcpy(tmp, h[i], 4096);
		memset(tmp + 4, 0, 4);
		ok[i] = memcmp(h[i], "head", 4) == 0 && vw_crc32c(tmp, 4096) == rd32(h[i] + 4);
	}
	assert_true(ok[0] || ok[1]);
	int cur = !ok[0] ? 1 : !ok[1] ? 0 : (rd64(h[1] + 8) > rd64(h[0] + 8));
	l->current = cur;
	memcpy(l->data_write_guid, h[cur] + 32, 16);
	l->log_len = rd32(h[cur] + 68);
	l->log_off = rd64(h[cur] + 72);
	const uint8_t *r = f + 192 * 1024;
	for (uint32_t i = 0; i < rd32(r + 8); i++) {
		const uint8_t *e = r + 16 + 32 * i;
		if (memcmp(e, G_BAT, 16) == 0) {
			l->bat_off = rd64(e + 16);
			l->bat_len = rd32(e + 24);
		} else if (memcmp(e, G_META, 16) == 0) {
			l->meta_off = rd64(e + 16);
			l->meta_len = rd32(e + 24);
		}
	}
	free(f);
}

void vw_patch_header(const char *path, int which, size_t field_off, const void *bytes, size_t n)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t h[4096];
	off_t at = which ? 128 * 1024 : 64 * 1024;
	assert_int_equal(pread(fd, h, sizeof(h), at), (ssize_t)sizeof(h));
	memcpy(h + field_off, bytes, n);
	memset(h + 4, 0, 4);
	le32(h + 4, vw_crc32c(h, sizeof(h)));
	pw(fd, h, sizeof(h), (uint64_t)at);
	close(fd);
}

void vw_add_log_entry(const char *path, const uint8_t log_guid[16], uint64_t seq,
                      uint32_t entry_off, const struct vw_log_desc *d, int n)
{
	struct vw_layout l;
	vw_layout(path, &l);
	int ndata = 0;
	for (int i = 0; i < n; i++)
		ndata += d[i].data != NULL;
	uint32_t darea = (uint32_t)((64 + 32 * n + 4095) / 4096 * 4096);
	uint32_t len = darea + 4096u * (uint32_t)ndata;
	assert_true(entry_off + len <= l.log_len);
	uint8_t *e = calloc(1, len);
	assert_non_null(e);
	memcpy(e, "loge", 4);
	le32(e + 8, len);
	le32(e + 12, entry_off); /* tail: this entry starts the sequence */
	le64(e + 16, seq);
	le32(e + 24, (uint32_t)n);
	memcpy(e + 32, log_guid, 16);
	long long fsz = th_file_size(path);
	le64(e + 48, (uint64_t)fsz);
	le64(e + 56, (uint64_t)fsz);
	int k = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *dd = e + 64 + 32 * i;
		if (d[i].data) {
			memcpy(dd, "desc", 4);
			memcpy(dd + 4, d[i].data + 4092, 4);
			memcpy(dd + 8, d[i].data, 8);
			le64(dd + 16, d[i].file_offset);
			le64(dd + 24, seq);
			uint8_t *ds = e + darea + 4096 * k++;
			memcpy(ds, "data", 4);
			le32(ds + 4, (uint32_t)(seq >> 32));
			memcpy(ds + 8, d[i].data + 8, 4084);
			le32(ds + 4092, (uint32_t)seq);
		} else {
			memcpy(dd, "zero", 4);
			le64(dd + 8, d[i].zero_length);
			le64(dd + 16, d[i].file_offset);
			le64(dd + 24, seq);
		}
	}
	le32(e + 4, vw_crc32c(e, len));
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	pw(fd, e, len, l.log_off + entry_off);
	close(fd);
	free(e);
	vw_patch_header(path, 0, 48, log_guid, 16);
	vw_patch_header(path, 1, 48, log_guid, 16);
}
