/*
 * VHDX backend (read only): fixed, dynamic and differencing images per
 * [MS-VHDX]. The BAT is cached in memory; reads coalesce blocks that are
 * contiguous in the file into one pread. An unapplied log is either refused or,
 * with SITEREC_DISK_REPLAY_LOG, replayed into an in-memory overlay that every
 * file read (structures and payload alike) goes through; the file is never
 * modified.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk_internal.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)

#define HDR1_OFF (64 * KiB)
#define HDR2_OFF (128 * KiB)
#define HDR_SIZE (4 * KiB)
#define RGN1_OFF (192 * KiB)
#define RGN2_OFF (256 * KiB)
#define RGN_SIZE (64 * KiB)
#define META_TABLE_SIZE (64 * KiB)
#define MAX_TABLE_ENTRIES 2047u
#define LOG_SECTOR 4096u
/* Bigger logs exist in theory; refusing them keeps a hostile header from making
 * us allocate gigabytes. Hyper-V uses 1 MiB. */
#define MAX_LOG_LENGTH (256 * MiB)
#define MAX_LOCATOR_SIZE (1 * MiB)
#define MAX_VIRTUAL_SIZE (64ull * 1024 * 1024 * MiB) /* 64 TiB */

enum {
	PB_NOT_PRESENT = 0,
	PB_UNDEFINED = 1,
	PB_ZERO = 2,
	PB_UNMAPPED = 3,
	PB_FULLY_PRESENT = 6,
	PB_PARTIALLY_PRESENT = 7,
	SB_PRESENT = 6,
};

/* GUIDs in their on-disk byte order (first three fields little-endian). */
static const uint8_t GUID_BAT[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
                                      0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
static const uint8_t GUID_META[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
                                       0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
static const uint8_t GUID_FILE_PARAMS[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
                                              0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
static const uint8_t GUID_VSIZE[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
                                        0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
static const uint8_t GUID_DISK_ID[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
                                          0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
static const uint8_t GUID_LSEC[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
                                       0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
static const uint8_t GUID_PSEC[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
                                       0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
static const uint8_t GUID_PARENT_LOC[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
                                             0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
static const uint8_t GUID_LOC_VHDX[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
                                           0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

/* ---- CRC-32C (Castagnoli), reflected, table driven ---- */

static uint32_t crc32c_table[256];
static int crc32c_ready;

static void crc32c_init(void)
{
	/* idempotent and race-benign: every thread computes the same table */
	if (__atomic_load_n(&crc32c_ready, __ATOMIC_ACQUIRE))
		return;
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
		crc32c_table[i] = c;
	}
	__atomic_store_n(&crc32c_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc32c_sw(uint32_t c, const uint8_t *p, size_t n)
{
	while (n--)
		c = crc32c_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2 has a CRC-32C instruction: 8 bytes per step. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
		p += 8;
		n -= 8;
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *p++);
	return c;
}
#define HAVE_CRC32C_HW 1
#endif

static uint32_t crc32c_update(uint32_t c, const uint8_t *p, size_t n)
{
#ifdef HAVE_CRC32C_HW
	static int hw = -1;
	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (hw)
		return crc32c_hw(c, p, n);
#endif
	return crc32c_sw(c, p, n);
}

/* CRC-32C of buf (len >= skip_at + 4) with the 4 checksum bytes at skip_at taken as zero. */
static uint32_t crc32c_skip(const uint8_t *buf, size_t len, size_t skip_at)
{
	static const uint8_t zero4[4];
	crc32c_init();
	uint32_t c = 0xFFFFFFFFu;
	c = crc32c_update(c, buf, skip_at);
	c = crc32c_update(c, zero4, 4);
	c = crc32c_update(c, buf + skip_at + 4, len - skip_at - 4);
	return c ^ 0xFFFFFFFFu;
}

/* ---- state ---- */

struct ovl {          /* one replayed log write: data, or zeros when data is NULL */
	uint64_t off;
	uint64_t len;
	uint8_t *data;
};

struct vhdx {
	uint32_t block_size;
	uint32_t lsec;
	uint32_t chunk_ratio;
	int has_parent;
	uint64_t vsize;
	uint64_t nblocks;
	uint64_t nbat;
	uint64_t *bat;
	uint64_t eff_size;   /* file size, extended by replayed log writes */
	uint8_t data_write_guid[16];
	struct ovl *ovl;
	size_t novl;
	uint8_t **sbm;       /* cached sector bitmaps, one per chunk, loaded lazily */
	uint64_t nsbm;
};

/* Images being opened by this thread, innermost first: a parent equal to one of
 * them is a loop in the chain. */
struct open_frame {
	dev_t dev;
	ino_t ino;
	struct open_frame *up;
};
static _Thread_local struct open_frame *tl_open_stack;

static void vhdx_free_state(struct vhdx *x)
{
	if (!x)
		return;
	sr_free(x->bat);
	for (size_t i = 0; i < x->novl; i++)
		sr_free(x->ovl[i].data);
	sr_free(x->ovl);
	if (x->sbm) {
		for (uint64_t i = 0; i < x->nsbm; i++)
			sr_free(x->sbm[i]);
		sr_free(x->sbm);
	}
	sr_free(x);
}

static int is_zero16(const uint8_t *g)
{
	static const uint8_t z[16];
	return memcmp(g, z, 16) == 0;
}

/* Read file bytes as the replayed view sees them: the file, zeros past its end
 * (up to eff_size), then the log overlay on top. */
static int file_read(siterec_disk *d, struct vhdx *x, void *buf, size_t len, uint64_t off)
{
	uint64_t fsz = d->info.file_size;
	size_t in_file = off >= fsz ? 0 : (fsz - off < len ? (size_t)(fsz - off) : len);
	if (in_file) {
		int rc = sr_pread_full(d->fd, buf, in_file, off);
		if (rc == SITEREC_ETRUNCATED)
			return sr_err(SITEREC_EDISK, "%s: file shrank while reading at %llu", d->path,
			              (unsigned long long)off);
		if (rc)
			return rc;
	}
	if (in_file < len)
		memset((uint8_t *)buf + in_file, 0, len - in_file);
	uint64_t end = off + len;
	for (size_t i = 0; i < x->novl; i++) {
		const struct ovl *o = &x->ovl[i];
		uint64_t oend = o->off + o->len;
		if (o->off >= end || oend <= off)
			continue;
		uint64_t s = o->off > off ? o->off : off;
		uint64_t e = oend < end ? oend : end;
		uint8_t *dst = (uint8_t *)buf + (s - off);
		if (o->data)
			memcpy(dst, o->data + (s - o->off), (size_t)(e - s));
		else
			memset(dst, 0, (size_t)(e - s));
	}
	return 0;
}

/* A structure [off, off+len) must lie inside the (replayed) file. */
static int struct_read(siterec_disk *d, struct vhdx *x, void *buf, size_t len, uint64_t off,
                       const char *what)
{
	if (off > x->eff_size || len > x->eff_size - off)
		return sr_err(SITEREC_EDISK, "%s: VHDX %s at %llu (%zu bytes) lies past the end of the "
		              "file (%llu bytes)", d->path, what, (unsigned long long)off, len,
		              (unsigned long long)x->eff_size);
	return file_read(d, x, buf, len, off);
}

/* ---- headers ---- */

struct hdr {
	uint64_t seq;
	uint8_t file_write_guid[16];
	uint8_t data_write_guid[16];
	uint8_t log_guid[16];
	uint32_t log_length;
	uint64_t log_offset;
};

/* 0 valid, else a short reason. */
static const char *hdr_parse(const uint8_t *b, struct hdr *h)
{
	if (memcmp(b, "head", 4) != 0)
		return "bad signature";
	if (sr_get_le32(b + 4) != crc32c_skip(b, HDR_SIZE, 4))
		return "checksum mismatch";
	h->seq = sr_get_le64(b + 8);
	memcpy(h->file_write_guid, b + 16, 16);
	memcpy(h->data_write_guid, b + 32, 16);
	memcpy(h->log_guid, b + 48, 16);
	uint16_t log_version = sr_get_le16(b + 64);
	uint16_t version = sr_get_le16(b + 66);
	h->log_length = sr_get_le32(b + 68);
	h->log_offset = sr_get_le64(b + 72);
	if (version != 1)
		return "unsupported version";
	if (log_version != 0)
		return "unsupported log version";
	return NULL;
}

static int read_headers(siterec_disk *d, struct vhdx *x, struct hdr *cur)
{
	uint8_t *b = sr_malloc(HDR_SIZE);
	if (!b)
		return sr_err(SITEREC_ENOMEM, "out of memory reading %s", d->path);
	struct hdr h[2];
	const char *why[2];
	int rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		rc = struct_read(d, x, b, HDR_SIZE, i ? HDR2_OFF : HDR1_OFF, "header");
		if (rc == 0)
			why[i] = hdr_parse(b, &h[i]);
	}
	sr_free(b);
	if (rc)
		return rc;
	if (why[0] && why[1])
		return sr_err(SITEREC_EDISK, "%s: both VHDX headers are invalid (first: %s; second: %s)",
		              d->path, why[0], why[1]);
	/* the valid one with the higher sequence number is current */
	int pick = why[0] ? 1 : why[1] ? 0 : (h[1].seq > h[0].seq ? 1 : 0);
	*cur = h[pick];
	return 0;
}

/* ---- log ---- */

struct log_slot {
	uint8_t valid;
	uint8_t has_pred;
	uint64_t seq;
	uint32_t len;   /* entry length */
	uint32_t tail;
};

/* Copy n bytes of the circular log at pos (wrapping). */
static void log_copy(const uint8_t *log, uint32_t log_len, uint32_t pos, uint8_t *dst, uint32_t n)
{
	uint32_t first = log_len - pos < n ? log_len - pos : n;
	memcpy(dst, log + pos, first);
	if (first < n)
		memcpy(dst + first, log, n - first);
}

/* Check the entry at pos; fill slot. ent is scratch of log_len bytes. */
static void log_check_entry(const uint8_t *log, uint32_t log_len, uint32_t pos,
                            const uint8_t *guid, uint8_t *ent, struct log_slot *s)
{
	s->valid = 0;
	const uint8_t *h = log + pos;
	if (memcmp(h, "loge", 4) != 0)
		return;
	uint32_t len = sr_get_le32(h + 8);
	uint32_t tail = sr_get_le32(h + 12);
	uint64_t seq = sr_get_le64(h + 16);
	uint32_t ndesc = sr_get_le32(h + 24);
	if (len < LOG_SECTOR || len % LOG_SECTOR || len > log_len || tail % LOG_SECTOR ||
	    tail >= log_len || memcmp(h + 32, guid, 16) != 0 || seq == 0)
		return;
	/* descriptor area: 64-byte header + 32 bytes per descriptor, in 4 KiB sectors */
	uint64_t darea = ((64ull + 32ull * ndesc + LOG_SECTOR - 1) / LOG_SECTOR) * LOG_SECTOR;
	if (darea > len)
		return;
	log_copy(log, log_len, pos, ent, len);
	if (sr_get_le32(ent + 4) != crc32c_skip(ent, len, 4))
		return;
	uint64_t ndata = 0;
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *dd = ent + 64 + 32ull * i;
		if (sr_get_le64(dd + 24) != seq)
			return;
		if (memcmp(dd, "desc", 4) == 0) {
			uint64_t fo = sr_get_le64(dd + 16);
			if (fo % LOG_SECTOR || fo > UINT64_MAX - LOG_SECTOR)
				return;
			uint64_t at = darea + ndata * LOG_SECTOR;
			if (at + LOG_SECTOR > len)
				return;
			const uint8_t *ds = ent + at;
			if (memcmp(ds, "data", 4) != 0 || sr_get_le32(ds + 4) != (uint32_t)(seq >> 32) ||
			    sr_get_le32(ds + 4092) != (uint32_t)seq)
				return;
			ndata++;
		} else if (memcmp(dd, "zero", 4) == 0) {
			uint64_t zl = sr_get_le64(dd + 8), zo = sr_get_le64(dd + 16);
			if (zl % LOG_SECTOR || zo % LOG_SECTOR || zl > UINT64_MAX - zo)
				return;
		} else {
			return;
		}
	}
	s->valid = 1;
	s->seq = seq;
	s->len = len;
	s->tail = tail;
}

static int ovl_add(siterec_disk *d, struct vhdx *x, uint64_t off, uint64_t len, uint8_t *data)
{
	if (len == 0) {
		sr_free(data);
		return 0;
	}
	struct ovl *n = sr_realloc(x->ovl, (x->novl + 1) * sizeof(*n));
	if (!n) {
		sr_free(data);
		return sr_err(SITEREC_ENOMEM, "out of memory replaying the log of %s", d->path);
	}
	x->ovl = n;
	n[x->novl].off = off;
	n[x->novl].len = len;
	n[x->novl].data = data;
	x->novl++;
	if (off + len > x->eff_size)
		x->eff_size = off + len;
	return 0;
}

/* Turn one validated entry into overlay writes. */
static int log_apply_entry(siterec_disk *d, struct vhdx *x, const uint8_t *ent)
{
	uint32_t ndesc = sr_get_le32(ent + 24);
	uint64_t darea = ((64ull + 32ull * ndesc + LOG_SECTOR - 1) / LOG_SECTOR) * LOG_SECTOR;
	uint64_t ndata = 0;
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *dd = ent + 64 + 32ull * i;
		int rc;
		if (memcmp(dd, "desc", 4) == 0) {
			const uint8_t *ds = ent + darea + ndata * LOG_SECTOR;
			uint8_t *sec = sr_malloc(LOG_SECTOR);
			if (!sec)
				return sr_err(SITEREC_ENOMEM, "out of memory replaying the log of %s", d->path);
			/* the sector's first 8 and last 4 bytes live in the descriptor, where
			 * the data sector keeps its signature and sequence number */
			memcpy(sec, dd + 8, 8);
			memcpy(sec + 8, ds + 8, 4084);
			memcpy(sec + 4092, dd + 4, 4);
			rc = ovl_add(d, x, sr_get_le64(dd + 16), LOG_SECTOR, sec);
			ndata++;
		} else {
			rc = ovl_add(d, x, sr_get_le64(dd + 16), sr_get_le64(dd + 8), NULL);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Find the active sequence of the log and replay it into the overlay (or refuse). */
static int log_load(siterec_disk *d, struct vhdx *x, const struct hdr *h, uint32_t flags,
                    int *replayed)
{
	*replayed = 0;
	if (is_zero16(h->log_guid))
		return 0;
	uint32_t ll = h->log_length;
	uint64_t lo = h->log_offset;
	if (ll == 0 || ll % MiB || lo % MiB || lo < MiB)
		return sr_err(SITEREC_EDISK, "%s: VHDX log at %llu of %u bytes is malformed", d->path,
		              (unsigned long long)lo, ll);
	if (ll > MAX_LOG_LENGTH)
		return sr_err(SITEREC_EDISK, "%s: VHDX log of %u bytes is larger than supported",
		              d->path, ll);
	uint8_t *log = sr_malloc(ll), *ent = sr_malloc(ll);
	uint32_t nslots = ll / LOG_SECTOR;
	struct log_slot *sl = sr_calloc(nslots, sizeof(*sl));
	int rc = 0;
	if (!log || !ent || !sl) {
		rc = sr_err(SITEREC_ENOMEM, "out of memory reading the log of %s", d->path);
		goto out;
	}
	rc = struct_read(d, x, log, ll, lo, "log");
	if (rc)
		goto out;
	for (uint32_t i = 0; i < nslots; i++)
		log_check_entry(log, ll, i * LOG_SECTOR, h->log_guid, ent, &sl[i]);
	/* successor of each valid entry; an entry with a predecessor starts no sequence */
	for (uint32_t i = 0; i < nslots; i++) {
		if (!sl[i].valid)
			continue;
		uint32_t nx = (uint32_t)(((uint64_t)i * LOG_SECTOR + sl[i].len) % ll) / LOG_SECTOR;
		if (sl[nx].valid && sl[nx].seq == sl[i].seq + 1)
			sl[nx].has_pred = 1;
	}
	/* the active sequence: the one whose newest entry has the highest sequence
	 * number and whose tail lies inside the sequence */
	int found = 0;
	uint32_t best_tail = 0, best_head = 0;
	uint64_t best_seq = 0;
	for (uint32_t i = 0; i < nslots; i++) {
		if (!sl[i].valid || sl[i].has_pred)
			continue;
		uint32_t cur = i, steps = 0;
		for (;;) {
			uint32_t nx = (uint32_t)(((uint64_t)cur * LOG_SECTOR + sl[cur].len) % ll) / LOG_SECTOR;
			if (++steps >= nslots || !sl[nx].valid || sl[nx].seq != sl[cur].seq + 1 || nx == i)
				break;
			cur = nx;
		}
		/* the head's tail must be one of the entries from i to cur */
		uint32_t tslot = sl[cur].tail / LOG_SECTOR, p = i;
		int in_seq = 0;
		for (uint32_t k = 0; k <= steps && k < nslots; k++) {
			if (p == tslot) {
				in_seq = 1;
				break;
			}
			if (p == cur)
				break;
			p = (uint32_t)(((uint64_t)p * LOG_SECTOR + sl[p].len) % ll) / LOG_SECTOR;
		}
		if (in_seq && (!found || sl[cur].seq > best_seq)) {
			found = 1;
			best_seq = sl[cur].seq;
			best_tail = tslot;
			best_head = cur;
		}
	}
	if (!found)
		goto out; /* nothing to replay: an empty (or fully applied) log */
	if (!(flags & SITEREC_DISK_REPLAY_LOG)) {
		rc = sr_err(SITEREC_EDISK, "%s: the VHDX log has unapplied entries and must be replayed "
		            "(open with SITEREC_DISK_REPLAY_LOG for a read-only replayed view, or let "
		            "Hyper-V mount the disk once)", d->path);
		goto out;
	}
	for (uint32_t p = best_tail;;) {
		log_copy(log, ll, p * LOG_SECTOR, ent, sl[p].len);
		rc = log_apply_entry(d, x, ent);
		if (rc || p == best_head)
			break;
		p = (uint32_t)(((uint64_t)p * LOG_SECTOR + sl[p].len) % ll) / LOG_SECTOR;
	}
	if (rc == 0)
		*replayed = 1;
out:
	sr_free(log);
	sr_free(ent);
	sr_free(sl);
	return rc;
}

/* ---- region table ---- */

struct regions {
	uint64_t bat_off, meta_off;
	uint32_t bat_len, meta_len;
};

static const char *rgn_parse(const uint8_t *b, struct regions *r)
{
	if (memcmp(b, "regi", 4) != 0)
		return "bad signature";
	if (sr_get_le32(b + 4) != crc32c_skip(b, RGN_SIZE, 4))
		return "checksum mismatch";
	uint32_t n = sr_get_le32(b + 8);
	if (n > MAX_TABLE_ENTRIES)
		return "too many entries";
	int have_bat = 0, have_meta = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = b + 16 + 32ull * i;
		uint64_t off = sr_get_le64(e + 16);
		uint32_t len = sr_get_le32(e + 24);
		int required = sr_get_le32(e + 28) & 1;
		int is_bat = memcmp(e, GUID_BAT, 16) == 0, is_meta = memcmp(e, GUID_META, 16) == 0;
		if (!is_bat && !is_meta) {
			if (required)
				return "unknown required region";
			continue;
		}
		if (off % MiB || off < MiB || len % MiB || len == 0)
			return "misaligned region";
		if ((is_bat && have_bat) || (is_meta && have_meta))
			return "duplicate region";
		if (is_bat) {
			have_bat = 1;
			r->bat_off = off;
			r->bat_len = len;
		} else {
			have_meta = 1;
			r->meta_off = off;
			r->meta_len = len;
		}
	}
	if (!have_bat || !have_meta)
		return "BAT or metadata region missing";
	return NULL;
}

static int read_regions(siterec_disk *d, struct vhdx *x, struct regions *r)
{
	uint8_t *b = sr_malloc(RGN_SIZE);
	if (!b)
		return sr_err(SITEREC_ENOMEM, "out of memory reading %s", d->path);
	const char *why[2] = { NULL, NULL };
	int rc = 0;
	for (int i = 0; i < 2; i++) {
		rc = struct_read(d, x, b, RGN_SIZE, i ? RGN2_OFF : RGN1_OFF, "region table");
		if (rc)
			break;
		why[i] = rgn_parse(b, r);
		if (!why[i])
			break; /* the first valid copy wins: both are written identically */
	}
	sr_free(b);
	if (rc)
		return rc;
	if (why[0] && why[1])
		return sr_err(SITEREC_EDISK, "%s: both VHDX region tables are invalid (first: %s; "
		              "second: %s)", d->path, why[0], why[1]);
	return 0;
}

/* ---- metadata ---- */

struct meta {
	uint32_t block_size, flags, lsec, psec;
	uint64_t vsize;
	uint8_t disk_id[16];
	uint8_t *locator;       /* parent locator item (owned), or NULL */
	uint32_t locator_len;
	unsigned seen;
};

enum { M_FP = 1, M_VS = 2, M_ID = 4, M_LS = 8, M_PS = 16, M_PL = 32 };

static int read_metadata(siterec_disk *d, struct vhdx *x, const struct regions *r, struct meta *m)
{
	memset(m, 0, sizeof(*m));
	if (r->meta_len < META_TABLE_SIZE)
		return sr_err(SITEREC_EDISK, "%s: VHDX metadata region too small", d->path);
	uint8_t *t = sr_malloc(META_TABLE_SIZE);
	if (!t)
		return sr_err(SITEREC_ENOMEM, "out of memory reading %s", d->path);
	int rc = struct_read(d, x, t, META_TABLE_SIZE, r->meta_off, "metadata table");
	if (rc)
		goto out;
	if (memcmp(t, "metadata", 8) != 0) {
		rc = sr_err(SITEREC_EDISK, "%s: bad VHDX metadata table signature", d->path);
		goto out;
	}
	uint16_t n = sr_get_le16(t + 10);
	if (n > MAX_TABLE_ENTRIES) {
		rc = sr_err(SITEREC_EDISK, "%s: VHDX metadata table has %u entries (at most %u)",
		            d->path, n, MAX_TABLE_ENTRIES);
		goto out;
	}
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		const uint8_t *e = t + 32 + 32ull * i;
		uint32_t off = sr_get_le32(e + 16), len = sr_get_le32(e + 20);
		uint32_t fl = sr_get_le32(e + 24);
		int required = (fl >> 2) & 1;
		struct { const uint8_t *g; unsigned bit; uint32_t len; } known[] = {
			{ GUID_FILE_PARAMS, M_FP, 8 }, { GUID_VSIZE, M_VS, 8 }, { GUID_DISK_ID, M_ID, 16 },
			{ GUID_LSEC, M_LS, 4 }, { GUID_PSEC, M_PS, 4 }, { GUID_PARENT_LOC, M_PL, 0 },
		};
		unsigned bit = 0;
		uint32_t want = 0;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (memcmp(e, known[k].g, 16) == 0) {
				bit = known[k].bit;
				want = known[k].len;
			}
		if (!bit) {
			if (required)
				rc = sr_err(SITEREC_EDISK, "%s: VHDX metadata item %u is required but unknown",
				            d->path, i);
			continue;
		}
		if (m->seen & bit) {
			rc = sr_err(SITEREC_EDISK, "%s: duplicate VHDX metadata item %u", d->path, i);
			break;
		}
		if (len == 0 || (want && len < want) || off < META_TABLE_SIZE || off > r->meta_len ||
		    len > r->meta_len - off) {
			rc = sr_err(SITEREC_EDISK, "%s: VHDX metadata item %u (offset %u, %u bytes) lies "
			            "outside the metadata region", d->path, i, off, len);
			break;
		}
		m->seen |= bit;
		uint8_t v[16];
		if (bit == M_PL) {
			if (len > MAX_LOCATOR_SIZE) {
				rc = sr_err(SITEREC_EDISK, "%s: VHDX parent locator of %u bytes is too large",
				            d->path, len);
				break;
			}
			m->locator = sr_malloc(len);
			if (!m->locator) {
				rc = sr_err(SITEREC_ENOMEM, "out of memory reading %s", d->path);
				break;
			}
			m->locator_len = len;
			rc = struct_read(d, x, m->locator, len, r->meta_off + off, "parent locator");
			continue;
		}
		rc = struct_read(d, x, v, want, r->meta_off + off, "metadata item");
		if (rc)
			break;
		switch (bit) {
		case M_FP: m->block_size = sr_get_le32(v); m->flags = sr_get_le32(v + 4); break;
		case M_VS: m->vsize = sr_get_le64(v); break;
		case M_ID: memcpy(m->disk_id, v, 16); break;
		case M_LS: m->lsec = sr_get_le32(v); break;
		case M_PS: m->psec = sr_get_le32(v); break;
		default: break;
		}
	}
out:
	sr_free(t);
	if (rc) {
		sr_free(m->locator);
		m->locator = NULL;
	}
	return rc;
}

/* ---- parent locator ---- */

/* UTF-16LE (len bytes) to a new UTF-8 string; NULL on malformed input. */
static char *utf16_to_utf8(const uint8_t *p, uint32_t len)
{
	if (len % 2)
		return NULL;
	char *s = sr_malloc((size_t)len / 2 * 3 + 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (uint32_t i = 0; i < len; i += 2) {
		uint32_t c = sr_get_le16(p + i);
		if (c >= 0xD800 && c < 0xDC00) {
			if (i + 4 > len)
				goto bad;
			uint32_t c2 = sr_get_le16(p + i + 2);
			if (c2 < 0xDC00 || c2 >= 0xE000)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
			i += 2;
		} else if (c >= 0xDC00 && c < 0xE000) {
			goto bad;
		}
		if (c == 0)
			goto bad;
		if (c < 0x80) {
			s[o++] = (char)c;
		} else if (c < 0x800) {
			s[o++] = (char)(0xC0 | (c >> 6));
			s[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			s[o++] = (char)(0xE0 | (c >> 12));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			/* 4 UTF-8 bytes from 4 UTF-16 bytes: fits the 3-per-unit budget */
			s[o++] = (char)(0xF0 | (c >> 18));
			s[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	s[o] = '\0';
	return s;
bad:
	sr_free(s);
	return NULL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (braces optional) to on-disk bytes. */
static int parse_guid(const char *s, uint8_t g[16])
{
	size_t n = strlen(s);
	if (n == 38 && s[0] == '{' && s[37] == '}') {
		s++;
		n = 36;
	}
	if (n != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return -1;
	uint8_t raw[16];
	int k = 0;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			continue;
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		raw[k++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	/* text order is big-endian; the first three fields are stored little-endian */
	static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
	for (int i = 0; i < 16; i++)
		g[i] = raw[order[i]];
	return 0;
}

struct locator {
	uint8_t linkage[16], linkage2[16];
	int have_linkage2;
	char *relative, *absolute, *volume;
};

static void locator_free(struct locator *l)
{
	sr_free(l->relative);
	sr_free(l->absolute);
	sr_free(l->volume);
}

static int parse_locator(siterec_disk *d, const uint8_t *p, uint32_t len, struct locator *l)
{
	memset(l, 0, sizeof(*l));
	if (len < 20)
		return sr_err(SITEREC_EDISK, "%s: VHDX parent locator is truncated", d->path);
	if (memcmp(p, GUID_LOC_VHDX, 16) != 0)
		return sr_err(SITEREC_EDISK, "%s: VHDX parent locator has an unknown type", d->path);
	uint32_t n = sr_get_le16(p + 18);
	if (20ull + 12ull * n > len)
		return sr_err(SITEREC_EDISK, "%s: VHDX parent locator entries overrun the item", d->path);
	int have_linkage = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + 20 + 12ull * i;
		uint32_t ko = sr_get_le32(e), vo = sr_get_le32(e + 4);
		uint32_t kl = sr_get_le16(e + 8), vl = sr_get_le16(e + 10);
		if (kl == 0 || vl == 0 || ko > len || kl > len - ko || vo > len || vl > len - vo)
			return sr_err(SITEREC_EDISK, "%s: VHDX parent locator entry %u is out of bounds",
			              d->path, i);
		char *k = utf16_to_utf8(p + ko, kl), *v = utf16_to_utf8(p + vo, vl);
		if (!k || !v) {
			sr_free(k);
			sr_free(v);
			return sr_err(SITEREC_EDISK, "%s: VHDX parent locator entry %u is not valid UTF-16",
			              d->path, i);
		}
		char **slot = NULL;
		int bad = 0;
		if (strcmp(k, "parent_linkage") == 0) {
			bad = parse_guid(v, l->linkage) != 0;
			have_linkage = 1;
		} else if (strcmp(k, "parent_linkage2") == 0) {
			bad = parse_guid(v, l->linkage2) != 0;
			l->have_linkage2 = 1;
		} else if (strcmp(k, "relative_path") == 0) {
			slot = &l->relative;
		} else if (strcmp(k, "absolute_win32_path") == 0) {
			slot = &l->absolute;
		} else if (strcmp(k, "volume_path") == 0) {
			slot = &l->volume;
		}
		sr_free(k);
		if (slot && !*slot) {
			*slot = v;
			v = NULL;
		}
		sr_free(v);
		if (bad)
			return sr_err(SITEREC_EDISK, "%s: VHDX parent locator has a malformed parent_linkage",
			              d->path);
	}
	if (!have_linkage)
		return sr_err(SITEREC_EDISK, "%s: VHDX parent locator has no parent_linkage", d->path);
	if (!l->relative && !l->absolute && !l->volume)
		return sr_err(SITEREC_EDISK, "%s: VHDX parent locator names no parent path", d->path);
	return 0;
}

/* dir of child + "/" + rel (rel already with '/' separators). */
static char *join_dir(const char *child, const char *rel)
{
	const char *slash = strrchr(child, '/');
	size_t dl = slash ? (size_t)(slash - child) : 1;
	const char *dir = slash ? child : ".";
	if (slash && dl == 0)
		dl = 1; /* the child is in "/" */
	size_t rl = strlen(rel);
	char *s = sr_malloc(dl + rl + 2);
	if (!s)
		return NULL;
	memcpy(s, dir, dl);
	s[dl] = '/';
	memcpy(s + dl + 1, rel, rl + 1);
	return s;
}

static void backslashes_to_slashes(char *s)
{
	for (; *s; s++)
		if (*s == '\\')
			*s = '/';
}

/* Candidate paths, in order (the rule):
 *  1. relative_path, relative to the child's directory ("\" becomes "/", a
 *     leading ".\" is dropped);
 *  2. absolute_win32_path, then volume_path: as-is when it is a POSIX absolute
 *     path; otherwise (drive letters, \\?\Volume{..}\ names mean nothing here)
 *     its last component next to the child.
 * The first candidate that exists is opened. */
static char *find_parent_path(siterec_disk *d, struct locator *l, char *tried, size_t tried_len)
{
	const char *src[3] = { l->relative, l->absolute, l->volume };
	size_t tl = 0;
	tried[0] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!src[i])
			continue;
		char *t = sr_strdup(src[i]);
		if (!t)
			return NULL;
		backslashes_to_slashes(t);
		char *cand;
		if (i == 0) {
			const char *r = t;
			while (r[0] == '.' && r[1] == '/')
				r += 2;
			cand = r[0] == '/' ? sr_strdup(r) : join_dir(d->path, r);
		} else if (t[0] == '/' && t[1] != '/') {
			cand = sr_strdup(t);
		} else {
			const char *base = strrchr(t, '/');
			base = base ? base + 1 : t;
			if (strlen(base) > 2 && base[1] == ':')
				base += 2; /* "C:name" */
			cand = *base ? join_dir(d->path, base) : NULL;
		}
		sr_free(t);
		if (!cand)
			continue;
		if (access(cand, F_OK) == 0)
			return cand;
		if (tl + strlen(cand) + 3 < tried_len) {
			tl += (size_t)snprintf(tried + tl, tried_len - tl, "%s%s", tl ? ", " : "", cand);
		}
		sr_free(cand);
	}
	return NULL;
}

static const struct sr_disk_ops vhdx_ops;

static int open_parent(siterec_disk *d, struct vhdx *x, const struct meta *m,
                       const siterec_disk_options *opts, uint32_t depth)
{
	if (!m->locator)
		return sr_err(SITEREC_EDISK, "%s: differencing VHDX without a parent locator", d->path);
	struct locator l;
	int rc = parse_locator(d, m->locator, m->locator_len, &l);
	if (rc) {
		locator_free(&l);
		return rc;
	}
	char tried[1024];
	char *pp = find_parent_path(d, &l, tried, sizeof(tried));
	if (!pp) {
		locator_free(&l);
		return sr_err(SITEREC_EDISK, "%s: parent disk not found (tried: %s)", d->path,
		              tried[0] ? tried : "nothing usable in the locator");
	}
	struct stat st;
	if (stat(pp, &st) == 0) {
		for (struct open_frame *f = tl_open_stack; f; f = f->up)
			if (f->dev == st.st_dev && f->ino == st.st_ino) {
				rc = sr_err(SITEREC_EDISK, "%s: loop in parent chain (parent %s is already "
				            "in the chain)", d->path, pp);
				goto out;
			}
	}
	rc = sr_disk_open_parent(&d->parent, pp, opts, depth + 1);
	if (rc)
		goto out;
	siterec_disk *p = d->parent;
	if (p->ops != &vhdx_ops) {
		rc = sr_err(SITEREC_EDISK, "%s: parent %s is not a VHDX image", d->path, pp);
		goto out;
	}
	const struct vhdx *px = p->priv;
	if (memcmp(px->data_write_guid, l.linkage, 16) != 0 &&
	    !(l.have_linkage2 && memcmp(px->data_write_guid, l.linkage2, 16) == 0)) {
		rc = sr_err(SITEREC_EDISK, "%s: parent id mismatch: %s has changed since the "
		            "differencing disk was made (DataWriteGuid differs from parent_linkage)",
		            d->path, pp);
		goto out;
	}
	if (p->info.logical_sector != x->lsec) {
		rc = sr_err(SITEREC_EDISK, "%s: parent %s has another logical sector size", d->path, pp);
		goto out;
	}
	d->info.chain_depth = p->info.chain_depth + 1;
out:
	if (rc) {
		siterec_disk_free(d->parent);
		d->parent = NULL;
	}
	sr_free(pp);
	locator_free(&l);
	return rc;
}

/* ---- reading ---- */

static inline uint64_t bat_payload(const struct vhdx *x, uint64_t blk)
{
	return x->bat[blk + blk / x->chunk_ratio];
}

#define BAT_OFF(e) ((e) & ~(uint64_t)(MiB - 1))

/* The sector bitmap of the chunk holding block blk (cached). */
static int get_bitmap(siterec_disk *d, struct vhdx *x, uint64_t blk, const uint8_t **out)
{
	uint64_t c = blk / x->chunk_ratio;
	if (!x->sbm[c]) {
		uint64_t idx = c * (x->chunk_ratio + 1ull) + x->chunk_ratio;
		uint64_t e = x->bat[idx];
		if ((e & 7) != SB_PRESENT)
			return sr_err(SITEREC_EDISK, "%s: VHDX block %llu is partially present but its "
			              "sector bitmap is not", d->path, (unsigned long long)blk);
		uint64_t fo = BAT_OFF(e);
		if (fo > x->eff_size || MiB > x->eff_size - fo)
			return sr_err(SITEREC_EDISK, "%s: VHDX sector bitmap entry %llu points past the "
			              "end of the file", d->path, (unsigned long long)idx);
		uint8_t *b = sr_malloc(MiB);
		if (!b)
			return sr_err(SITEREC_ENOMEM, "out of memory reading %s", d->path);
		int rc = file_read(d, x, b, MiB, fo);
		if (rc) {
			sr_free(b);
			return rc;
		}
		x->sbm[c] = b;
	}
	*out = x->sbm[c];
	return 0;
}

/* Parent read; past the parent's end reads zeros. */
static int parent_read(siterec_disk *d, void *buf, size_t len, uint64_t off)
{
	siterec_disk *p = d->parent;
	uint64_t ps = p->info.virtual_size;
	size_t n = off >= ps ? 0 : (ps - off < len ? (size_t)(ps - off) : len);
	if (n) {
		int rc = p->ops->read(p, buf, n, off);
		if (rc)
			return rc;
	}
	if (n < len)
		memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

static int payload_check(siterec_disk *d, struct vhdx *x, uint64_t blk, uint64_t fo,
                         uint64_t end_in_block)
{
	if (fo > x->eff_size || end_in_block > x->eff_size - fo)
		return sr_err(SITEREC_EDISK, "%s: VHDX BAT entry of block %llu points past the end of "
		              "the file (offset %llu, file %llu bytes)", d->path,
		              (unsigned long long)blk, (unsigned long long)fo,
		              (unsigned long long)x->eff_size);
	return 0;
}

/* A partially present block: per-sector runs from this file or the parent. */
static int read_partial(siterec_disk *d, struct vhdx *x, uint64_t blk, uint8_t *buf, size_t n,
                        uint64_t off)
{
	uint64_t fo = BAT_OFF(bat_payload(x, blk));
	const uint8_t *bm = NULL;
	int rc = get_bitmap(d, x, blk, &bm);
	if (rc)
		return rc;
	uint64_t bs = x->block_size, in = off - blk * bs;
	uint64_t chunk_first = (blk / x->chunk_ratio) * x->chunk_ratio * bs;
	size_t done = 0;
	while (done < n) {
		uint64_t pos = off + done;
		uint64_t s = (pos - chunk_first) / x->lsec;
		int bit = (bm[s >> 3] >> (s & 7)) & 1;
		/* extend over sectors with the same bit */
		uint64_t e = (s + 1) * x->lsec + chunk_first;
		while (e < off + n) {
			uint64_t s2 = (e - chunk_first) / x->lsec;
			if (((bm[s2 >> 3] >> (s2 & 7)) & 1) != bit)
				break;
			e += x->lsec;
		}
		size_t run = (size_t)((e < off + n ? e : off + n) - pos);
		if (bit) {
			uint64_t bo = in + done;
			rc = payload_check(d, x, blk, fo, bo + run);
			if (rc == 0)
				rc = file_read(d, x, buf + done, run, fo + bo);
		} else {
			rc = parent_read(d, buf + done, run, pos);
		}
		if (rc)
			return rc;
		done += run;
	}
	return 0;
}

enum { C_FILE, C_PARENT, C_ZERO, C_PARTIAL };

/* Class of block blk, or -1 for a state invalid here (no error set). */
static int block_class(const struct vhdx *x, uint64_t blk, uint64_t *fo)
{
	uint64_t e = bat_payload(x, blk);
	*fo = BAT_OFF(e);
	switch (e & 7) {
	case PB_FULLY_PRESENT: return C_FILE;
	case PB_NOT_PRESENT: return x->has_parent ? C_PARENT : C_ZERO;
	case PB_ZERO: case PB_UNMAPPED: case PB_UNDEFINED: return C_ZERO;
	case PB_PARTIALLY_PRESENT: return x->has_parent ? C_PARTIAL : -1;
	default: return -1;
	}
}

static int bad_state(siterec_disk *d, const struct vhdx *x, uint64_t blk)
{
	return sr_err(SITEREC_EDISK, "%s: VHDX BAT entry of block %llu has state %u, invalid in "
	              "a %s disk", d->path, (unsigned long long)blk,
	              (unsigned)(bat_payload(x, blk) & 7), x->has_parent ? "differencing" : "dynamic");
}

static int vhdx_read(siterec_disk *d, void *vbuf, size_t len, uint64_t off)
{
	struct vhdx *x = d->priv;
	uint8_t *buf = vbuf;
	uint64_t bs = x->block_size;
	while (len) {
		uint64_t blk = off / bs, in = off % bs;
		uint64_t fo;
		int cls = block_class(x, blk, &fo), rc = 0;
		if (cls < 0)
			return bad_state(d, x, blk);
		size_t n = (size_t)(bs - in < len ? bs - in : len);
		if (cls == C_PARTIAL) {
			rc = read_partial(d, x, blk, buf, n, off);
		} else {
			/* coalesce following blocks of the same class (file: contiguous too) */
			uint64_t b = blk;
			while (n < len) {
				uint64_t fo2;
				int c2 = block_class(x, b + 1, &fo2);
				if (c2 != cls ||
				    (cls == C_FILE && fo2 != fo + (b + 1 - blk) * bs))
					break;
				b++;
				n += (size_t)(bs < len - n ? bs : len - n);
			}
			if (cls == C_FILE) {
				rc = payload_check(d, x, blk, fo, in + n);
				if (rc == 0)
					rc = file_read(d, x, buf, n, fo + in);
			} else if (cls == C_PARENT) {
				rc = parent_read(d, buf, n, off);
			} else {
				memset(buf, 0, n);
			}
		}
		if (rc)
			return rc;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int vhdx_status(siterec_disk *d, uint64_t off, uint64_t len, uint64_t *run, int *allocated)
{
	struct vhdx *x = d->priv;
	uint64_t bs = x->block_size, blk = off / bs;
	uint64_t fo;
	int cls = block_class(x, blk, &fo);
	if (cls < 0)
		return bad_state(d, x, blk);
	/* partially present blocks count as allocated: their data may be here */
	int want = cls == C_PARTIAL ? C_FILE : cls;
	uint64_t n = bs - off % bs < len ? bs - off % bs : len;
	while (n < len) {
		uint64_t fo2;
		int c2 = block_class(x, blk + 1, &fo2);
		if (c2 < 0 || (c2 == C_PARTIAL ? C_FILE : c2) != want)
			break;
		blk++;
		n += bs < len - n ? bs : len - n;
	}
	if (want == C_PARENT) {
		siterec_disk *p = d->parent;
		if (off >= p->info.virtual_size) {
			*run = n;
			*allocated = 0;
			return 0;
		}
		uint64_t pn = p->info.virtual_size - off < n ? p->info.virtual_size - off : n;
		return p->ops->status(p, off, pn, run, allocated);
	}
	*run = n;
	*allocated = want == C_FILE;
	return 0;
}

static void vhdx_close(siterec_disk *d)
{
	vhdx_free_state(d->priv);
	d->priv = NULL;
}

static const struct sr_disk_ops vhdx_ops = {
	.name = "VHDX",
	.read = vhdx_read,
	.status = vhdx_status,
	.write = NULL,
	.close = vhdx_close,
};

/* ---- open ---- */

static int check_params(siterec_disk *d, const struct meta *m)
{
	const unsigned need = M_FP | M_VS | M_ID | M_LS | M_PS;
	if ((m->seen & need) != need)
		return sr_err(SITEREC_EDISK, "%s: VHDX metadata lacks a required item", d->path);
	if (!sr_is_pow2(m->block_size) || m->block_size < MiB || m->block_size > 256 * MiB)
		return sr_err(SITEREC_EDISK, "%s: VHDX block size %u is not a power of two between "
		              "1 MiB and 256 MiB", d->path, m->block_size);
	if (m->lsec != 512 && m->lsec != 4096)
		return sr_err(SITEREC_EDISK, "%s: VHDX logical sector size %u is not 512 or 4096",
		              d->path, m->lsec);
	if (m->psec != 512 && m->psec != 4096)
		return sr_err(SITEREC_EDISK, "%s: VHDX physical sector size %u is not 512 or 4096",
		              d->path, m->psec);
	if (m->vsize == 0 || m->vsize > MAX_VIRTUAL_SIZE || m->vsize % m->lsec)
		return sr_err(SITEREC_EDISK, "%s: VHDX virtual size %llu is zero, above 64 TiB or not "
		              "a multiple of the logical sector", d->path, (unsigned long long)m->vsize);
	if (m->flags & ~3u)
		return sr_err(SITEREC_EDISK, "%s: VHDX file parameters have unknown flags 0x%x",
		              d->path, m->flags);
	return 0;
}

static int read_bat(siterec_disk *d, struct vhdx *x, const struct regions *r)
{
	x->chunk_ratio = (uint32_t)(((1ull << 23) * x->lsec) / x->block_size);
	x->nblocks = (x->vsize + x->block_size - 1) / x->block_size;
	x->nsbm = (x->nblocks + x->chunk_ratio - 1) / x->chunk_ratio;
	/* the BAT holds, after the last payload entry, the bitmap entry of a
	 * differencing disk's last chunk; a dynamic one may stop at the payload */
	x->nbat = x->has_parent ? x->nsbm * (x->chunk_ratio + 1ull)
	                        : x->nblocks + (x->nblocks - 1) / x->chunk_ratio;
	if (x->nbat > r->bat_len / 8)
		return sr_err(SITEREC_EDISK, "%s: VHDX BAT region (%u bytes) is too small for %llu "
		              "entries", d->path, r->bat_len, (unsigned long long)x->nbat);
	x->bat = sr_malloc((size_t)x->nbat * 8);
	if (x->has_parent)
		x->sbm = sr_calloc((size_t)x->nsbm, sizeof(*x->sbm));
	if (!x->bat || (x->has_parent && !x->sbm))
		return sr_err(SITEREC_ENOMEM, "out of memory for the BAT of %s", d->path);
	int rc = struct_read(d, x, x->bat, (size_t)x->nbat * 8, r->bat_off, "BAT");
	/* decode in place: entry i's bytes are read before entry i is stored */
	uint8_t *raw = (uint8_t *)x->bat;
	if (rc == 0)
		for (uint64_t i = 0; i < x->nbat; i++)
			x->bat[i] = sr_get_le64(raw + 8 * i);
	return rc;
}

int sr_disk_open_vhdx(siterec_disk *d, const siterec_disk_options *opts, uint32_t depth)
{
	struct vhdx *x = sr_calloc(1, sizeof(*x));
	if (!x)
		return sr_err(SITEREC_ENOMEM, "out of memory opening %s", d->path);
	x->eff_size = d->info.file_size;
	struct open_frame frame = { 0, 0, tl_open_stack };
	struct stat st;
	if (fstat(d->fd, &st) == 0) {
		frame.dev = st.st_dev;
		frame.ino = st.st_ino;
	}
	tl_open_stack = &frame;

	struct meta m;
	memset(&m, 0, sizeof(m));
	uint8_t id[8];
	struct hdr h;
	struct regions r;
	memset(&r, 0, sizeof(r));
	int replayed = 0;
	int rc = struct_read(d, x, id, 8, 0, "file identifier");
	if (rc == 0 && memcmp(id, "vhdxfile", 8) != 0)
		rc = sr_err(SITEREC_EDISK, "%s: not a VHDX file (no \"vhdxfile\" identifier)", d->path);
	if (rc == 0)
		rc = read_headers(d, x, &h);
	if (rc == 0) {
		memcpy(x->data_write_guid, h.data_write_guid, 16);
		rc = log_load(d, x, &h, opts->flags, &replayed);
	}
	if (rc == 0)
		rc = read_regions(d, x, &r);
	if (rc == 0)
		rc = read_metadata(d, x, &r, &m);
	if (rc == 0)
		rc = check_params(d, &m);
	if (rc == 0) {
		x->block_size = m.block_size;
		x->lsec = m.lsec;
		x->vsize = m.vsize;
		x->has_parent = (m.flags & 2u) != 0;
		rc = read_bat(d, x, &r);
	}
	if (rc == 0) {
		d->info.kind = x->has_parent ? SITEREC_DISK_KIND_DIFFERENCING
		               : (m.flags & 1u) ? SITEREC_DISK_KIND_FIXED : SITEREC_DISK_KIND_DYNAMIC;
		d->info.logical_sector = m.lsec;
		d->info.physical_sector = m.psec;
		d->info.block_size = m.block_size;
		d->info.virtual_size = m.vsize;
		memcpy(d->info.disk_id, m.disk_id, 16);
		d->info.log_replayed = (uint32_t)replayed;
		d->info.chain_depth = 0;
		if (x->has_parent)
			rc = open_parent(d, x, &m, opts, depth);
	}
	sr_free(m.locator);
	tl_open_stack = frame.up;
	if (rc) {
		vhdx_free_state(x);
		return rc;
	}
	d->priv = x;
	d->ops = &vhdx_ops;
	return 0;
}
