/* VHD backend (Microsoft "Virtual Hard Disk Image Format Specification"):
 * fixed disks read and written, dynamic disks read, differencing refused.
 *
 * Every field is big-endian. Fixed: the data, then a 512-byte footer. Dynamic: a
 * footer copy at 0, a 1024-byte dynamic header, a block allocation table (BAT) of
 * u32 sector offsets, blocks of (sector bitmap padded to 512 bytes, data), and the
 * footer at the end. Nothing read from the file is trusted: every offset and size is
 * checked with overflow-safe arithmetic before use. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disk_internal.h"

#define VHD_SECTOR 512u
#define VHD_FOOTER_SIZE 512u
#define VHD_DYN_HEADER_SIZE 1024u
#define VHD_UNALLOCATED 0xFFFFFFFFu
#define VHD_TYPE_FIXED 2u
#define VHD_TYPE_DYNAMIC 3u
#define VHD_TYPE_DIFF 4u
/* Hyper-V uses 2 MiB (512 KiB for some differencing disks); anything above this is
 * damage rather than a real layout, and it bounds the per-block arithmetic. */
#define VHD_MAX_BLOCK (256u << 20)
/* The in-memory table is at most this big (64 Mi entries: 128 PiB of 2 MiB blocks);
 * a bigger one comes from a damaged header, not from a disk anyone made. */
#define VHD_MAX_TABLE_BYTES (256u << 20)
/* Seconds from the Unix epoch to the VHD one, 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_OFFSET 946684800ull

/* Footer field offsets. */
enum {
	F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16, F_TIMESTAMP = 24,
	F_CREATOR_APP = 28, F_CREATOR_VER = 32, F_CREATOR_OS = 36, F_ORIG_SIZE = 40,
	F_CUR_SIZE = 48, F_GEOMETRY = 56, F_TYPE = 60, F_CHECKSUM = 64, F_UNIQUE_ID = 68,
	F_SAVED_STATE = 84
};
/* Dynamic header field offsets. */
enum {
	H_COOKIE = 0, H_DATA_OFFSET = 8, H_TABLE_OFFSET = 16, H_VERSION = 24, H_MAX_ENTRIES = 28,
	H_BLOCK_SIZE = 32, H_CHECKSUM = 36
};

struct vhd {
	uint32_t *bat;         /* host-order copy of the entries covering the disk */
	uint64_t entries;      /* entries in bat (blocks of the virtual size) */
	uint32_t block_size;   /* bytes of data per block */
	uint32_t block_shift;  /* log2(block_size) */
	uint32_t bitmap_size;  /* sector bitmap in front of each block, padded to 512 */
	uint64_t data_end;     /* no block data may lie at or past this file offset */
};

/* ---- big-endian fields (the rest of the library is little-endian) ---- */
static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}
static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
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

/* One's complement of the byte sum, the checksum field counted as zero. */
static uint32_t vhd_checksum(const uint8_t *p, size_t len, size_t csum_off)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++)
		if (i < csum_off || i >= csum_off + 4)
			sum += p[i];
	return ~sum;
}

/* Why a footer is unusable, or NULL when its cookie and checksum hold. */
static const char *footer_problem(const uint8_t *f)
{
	if (memcmp(f + F_COOKIE, "conectix", 8) != 0)
		return "no \"conectix\" cookie";
	if (vhd_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM) != get_be32(f + F_CHECKSUM))
		return "checksum mismatch";
	return NULL;
}

/* CHS geometry from the specification's algorithm (appendix "CHS calculation"). */
static void vhd_geometry(uint64_t size, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
	uint64_t total = size / VHD_SECTOR;
	uint64_t s, h, cth;
	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		s = 255;
		h = 16;
		cth = total / s;
	} else {
		s = 17;
		cth = total / s;
		h = (cth + 1023) / 1024;
		if (h < 4)
			h = 4;
		if (cth >= h * 1024 || h > 16) {
			s = 31;
			h = 16;
			cth = total / s;
		}
		if (cth >= h * 1024) {
			s = 63;
			h = 16;
			cth = total / s;
		}
	}
	*cyl = (uint16_t)(cth / h);
	*heads = (uint8_t)h;
	*spt = (uint8_t)s;
}

/* pread/pwrite of exactly len bytes, the failure naming the image and what was read
 * (sr_pread_full's message would not name the file). */
static int vhd_pread(int fd, const char *path, const char *what, void *buf, size_t len,
                     uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			return sr_err_os(sr_errno_code(e), e, "%s: reading %s (%zu bytes at %llu) failed",
			                 path, what, len, (unsigned long long)off);
		}
		if (n == 0)
			return sr_err(SITEREC_EDISK, "%s: reading %s: the file ends at %llu", path, what,
			              (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int vhd_pwrite(int fd, const char *path, const char *what, const void *buf, size_t len,
                      uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			return sr_err_os(sr_errno_code(e), e, "%s: writing %s (%zu bytes at %llu) failed",
			                 path, what, len, (unsigned long long)off);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* ---- fixed disks: the data starts at 0 ---- */

static int fixed_read(siterec_disk *d, void *buf, size_t len, uint64_t off)
{
	return vhd_pread(d->fd, d->path, "disk data", buf, len, off);
}

static int fixed_write(siterec_disk *d, const void *buf, size_t len, uint64_t off)
{
	/* the front end keeps off+len inside the data part: the footer is never touched */
	return vhd_pwrite(d->fd, d->path, "disk data", buf, len, off);
}

static int fixed_status(siterec_disk *d, uint64_t off, uint64_t len, uint64_t *run,
                        int *allocated)
{
	(void)d;
	(void)off;
	*run = len;
	*allocated = 1;
	return 0;
}

static void vhd_close(siterec_disk *d)
{
	struct vhd *v = d->priv;
	if (v) {
		sr_free(v->bat);
		sr_free(v);
	}
	d->priv = NULL;
}

static const struct sr_disk_ops fixed_ops = {
	"fixed VHD", fixed_read, fixed_status, fixed_write, vhd_close
};

/* ---- dynamic disks ---- */

/* File offset of the data of block b, or UINT64_MAX when unallocated. Fails when
 * `need` bytes from byte `in_block` of the block would pass the end of the data. */
static int block_data_offset(siterec_disk *d, const struct vhd *v, uint64_t b, uint64_t in_block,
                             uint64_t need, uint64_t *file_off)
{
	uint32_t e = v->bat[b];
	if (e == VHD_UNALLOCATED) {
		*file_off = UINT64_MAX;
		return 0;
	}
	/* e < 2^32, so e*512 + bitmap + block stays far below 2^64 */
	uint64_t start = (uint64_t)e * VHD_SECTOR + v->bitmap_size;
	if (start + in_block + need > v->data_end)
		return sr_err(SITEREC_EDISK,
		              "%s: damaged VHD: block %llu at file offset %llu (BAT entry 0x%08x) "
		              "extends past the end of the file data (%llu)",
		              d->path, (unsigned long long)b, (unsigned long long)e * VHD_SECTOR,
		              (unsigned)e, (unsigned long long)v->data_end);
	*file_off = start + in_block;
	return 0;
}

/* The sector bitmap is not consulted: in a dynamic (not differencing) disk every
 * sector of an allocated block is data, which is how Windows and qemu read it. */
static int dyn_read(siterec_disk *d, void *buf, size_t len, uint64_t off)
{
	struct vhd *v = d->priv;
	uint8_t *p = buf;
	while (len) {
		uint64_t b = off >> v->block_shift;
		uint64_t in_block = off & (v->block_size - 1);
		uint64_t n = v->block_size - in_block;
		if (n > len)
			n = len;
		uint64_t foff = UINT64_MAX;
		int rc = block_data_offset(d, v, b, in_block, n, &foff);
		if (rc)
			return rc;
		if (foff == UINT64_MAX) {
			memset(p, 0, (size_t)n);
		} else if ((rc = vhd_pread(d->fd, d->path, "block data", p, (size_t)n, foff)) != 0) {
			return rc;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int dyn_status(siterec_disk *d, uint64_t off, uint64_t len, uint64_t *run, int *allocated)
{
	struct vhd *v = d->priv;
	uint64_t end = off + len; /* the front end keeps this inside the virtual size */
	uint64_t b = off >> v->block_shift;
	int first = v->bat[b] != VHD_UNALLOCATED;
	uint64_t pos = off;
	while (pos < end) {
		b = pos >> v->block_shift;
		if ((v->bat[b] != VHD_UNALLOCATED) != first)
			break;
		uint64_t next = (b + 1) << v->block_shift;
		uint64_t in_block = pos - (b << v->block_shift);
		uint64_t stop = next < end ? next : end;
		if (first) {
			/* a run called allocated must be readable: say so now, not on the read */
			uint64_t foff = 0;
			int rc = block_data_offset(d, v, b, in_block, stop - pos, &foff);
			if (rc)
				return rc;
		}
		pos = stop;
	}
	*run = pos - off;
	*allocated = first;
	return 0;
}

static const struct sr_disk_ops dynamic_ops = {
	"dynamic VHD", dyn_read, dyn_status, NULL, vhd_close
};

/* Check the dynamic header at footer's data offset and load the BAT. */
static int open_dynamic(siterec_disk *d, const uint8_t *footer, uint64_t vsize, uint64_t data_end)
{
	const char *path = d->path;
	uint64_t fsize = d->info.file_size;
	uint64_t hoff = get_be64(footer + F_DATA_OFFSET);
	if (hoff > fsize || fsize - hoff < VHD_DYN_HEADER_SIZE)
		return sr_err(SITEREC_EDISK,
		              "%s: damaged VHD: dynamic header offset %llu lies outside the file "
		              "(%llu bytes)", path, (unsigned long long)hoff, (unsigned long long)fsize);
	uint8_t h[VHD_DYN_HEADER_SIZE];
	int rc = vhd_pread(d->fd, path, "the VHD dynamic header", h, sizeof(h), hoff);
	if (rc)
		return rc;
	if (memcmp(h + H_COOKIE, "cxsparse", 8) != 0)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: no \"cxsparse\" cookie in the dynamic "
		              "header at %llu", path, (unsigned long long)hoff);
	if (vhd_checksum(h, sizeof(h), H_CHECKSUM) != get_be32(h + H_CHECKSUM))
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: dynamic header checksum mismatch "
		              "(stored 0x%08x, computed 0x%08x)", path, (unsigned)get_be32(h + H_CHECKSUM),
		              (unsigned)vhd_checksum(h, sizeof(h), H_CHECKSUM));
	uint32_t hver = get_be32(h + H_VERSION);
	if ((hver >> 16) != 1)
		return sr_err(SITEREC_EDISK, "%s: unsupported VHD dynamic header version 0x%08x",
		              path, (unsigned)hver);
	uint32_t bs = get_be32(h + H_BLOCK_SIZE);
	if (!sr_is_pow2(bs) || bs < VHD_SECTOR || bs > VHD_MAX_BLOCK)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: block size %u is not a power of two "
		              "between 512 and %u", path, (unsigned)bs, VHD_MAX_BLOCK);
	uint32_t max_entries = get_be32(h + H_MAX_ENTRIES);
	/* blocks needed to cover the virtual size, without overflowing */
	uint64_t need = vsize / bs + (vsize % bs != 0);
	if (need > max_entries)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: %u table entries of %u bytes cannot "
		              "hold the disk size %llu", path, (unsigned)max_entries, (unsigned)bs,
		              (unsigned long long)vsize);
	uint64_t toff = get_be64(h + H_TABLE_OFFSET);
	uint64_t tbytes = need * 4; /* need <= 2^32 */
	if (tbytes > VHD_MAX_TABLE_BYTES)
		return sr_err(SITEREC_EDISK, "%s: unsupported VHD: %llu blocks of %u bytes need a block "
		              "table of %llu bytes (at most %u)", path, (unsigned long long)need,
		              (unsigned)bs, (unsigned long long)tbytes, VHD_MAX_TABLE_BYTES);
	if (toff > fsize || fsize - toff < tbytes)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: block table of %llu bytes at %llu passes "
		              "the end of the file (%llu bytes)", path, (unsigned long long)tbytes,
		              (unsigned long long)toff, (unsigned long long)fsize);

	struct vhd *v = sr_calloc(1, sizeof(*v));
	/* tbytes is bounded by the file size (checked above), so this is a real table */
	uint32_t *bat = need ? sr_malloc((size_t)tbytes) : NULL;
	if (!v || (need && !bat)) {
		sr_free(v);
		sr_free(bat);
		return sr_err(SITEREC_ENOMEM, "%s: out of memory for a VHD block table of %llu bytes",
		              path, (unsigned long long)tbytes);
	}
	if (need && (rc = vhd_pread(d->fd, path, "the VHD block table", bat, (size_t)tbytes,
	                            toff)) != 0) {
		sr_free(v);
		sr_free(bat);
		return rc;
	}
	/* swap once so the read path indexes host-order entries */
	for (uint64_t i = 0; i < need; i++)
		bat[i] = get_be32((const uint8_t *)&bat[i]);
	v->bat = bat;
	v->entries = need;
	v->block_size = bs;
	v->block_shift = (uint32_t)__builtin_ctz(bs);
	/* one bit per sector, padded to a whole sector */
	uint32_t bits = bs / VHD_SECTOR;
	v->bitmap_size = ((bits / 8 + VHD_SECTOR - 1) / VHD_SECTOR) * VHD_SECTOR;
	if (v->bitmap_size == 0)
		v->bitmap_size = VHD_SECTOR;
	v->data_end = data_end;
	d->priv = v;
	d->ops = &dynamic_ops;
	d->info.kind = SITEREC_DISK_KIND_DYNAMIC;
	d->info.block_size = bs;
	return 0;
}

int sr_disk_open_vhd(siterec_disk *d, const siterec_disk_options *opts)
{
	(void)opts;
	const char *path = d->path;
	uint64_t fsize = d->info.file_size;
	if (fsize < VHD_FOOTER_SIZE)
		return sr_err(SITEREC_EDISK, "%s: not a VHD: %llu bytes is too small for the 512-byte "
		              "footer", path, (unsigned long long)fsize);
	uint8_t f[VHD_FOOTER_SIZE];
	int rc = vhd_pread(d->fd, path, "the VHD footer", f, sizeof(f), fsize - VHD_FOOTER_SIZE);
	if (rc)
		return rc;
	const char *why = footer_problem(f);
	uint64_t data_end = fsize - VHD_FOOTER_SIZE;
	if (why) {
		/* A dynamic disk keeps a copy at 0: a torn or damaged end footer (crash while
		 * a block was appended) leaves that copy as the authority. */
		uint8_t c[VHD_FOOTER_SIZE];
		if (fsize >= 2 * VHD_FOOTER_SIZE &&
		    (rc = vhd_pread(d->fd, path, "the VHD footer copy", c, sizeof(c), 0)) != 0)
			return rc;
		if (fsize < 2 * VHD_FOOTER_SIZE || footer_problem(c) ||
		    get_be32(c + F_TYPE) == VHD_TYPE_FIXED)
			return sr_err(SITEREC_EDISK, "%s: not a usable VHD: the footer at the end of the "
			              "file has %s and there is no valid footer copy at offset 0", path,
			              why);
		memcpy(f, c, sizeof(f));
		data_end = fsize;
	}
	uint32_t ver = get_be32(f + F_VERSION);
	if ((ver >> 16) != 1)
		return sr_err(SITEREC_EDISK, "%s: unsupported VHD file format version 0x%08x", path,
		              (unsigned)ver);
	uint32_t type = get_be32(f + F_TYPE);
	if (type == VHD_TYPE_DIFF)
		return sr_err(SITEREC_EUNSUPPORTED, "%s: differencing VHD images are not supported "
		              "(only fixed and dynamic VHD)", path);
	if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: unknown disk type %u", path,
		              (unsigned)type);
	uint64_t vsize = get_be64(f + F_CUR_SIZE);
	if (vsize % VHD_SECTOR)
		return sr_err(SITEREC_EDISK, "%s: damaged VHD: current size %llu is not a multiple of "
		              "512", path, (unsigned long long)vsize);

	d->info.logical_sector = VHD_SECTOR;
	d->info.physical_sector = VHD_SECTOR;
	d->info.virtual_size = vsize;
	memcpy(d->info.disk_id, f + F_UNIQUE_ID, 16);
	if (type == VHD_TYPE_FIXED) {
		if (vsize > fsize - VHD_FOOTER_SIZE)
			return sr_err(SITEREC_EDISK, "%s: damaged VHD: current size %llu needs %llu bytes "
			              "of data but the file holds %llu", path, (unsigned long long)vsize,
			              (unsigned long long)vsize, (unsigned long long)(fsize - VHD_FOOTER_SIZE));
		d->ops = &fixed_ops;
		d->info.kind = SITEREC_DISK_KIND_FIXED;
		d->info.block_size = 0;
		return 0;
	}
	return open_dynamic(d, f, vsize, data_end);
}

int sr_vhd_fixed_footer(uint64_t size, const uint8_t disk_id[16], uint8_t f[512])
{
	if (size % VHD_SECTOR || size > UINT64_MAX - VHD_FOOTER_SIZE || size > INT64_MAX - 512)
		return sr_err(SITEREC_EINVAL, "fixed VHD size %llu is not a valid whole number of "
		              "sectors", (unsigned long long)size);
	memset(f, 0, VHD_FOOTER_SIZE);
	memcpy(f + F_COOKIE, "conectix", 8);
	put_be32(f + F_FEATURES, 2); /* the "reserved" bit the spec says is always set */
	put_be32(f + F_VERSION, 0x00010000);
	put_be64(f + F_DATA_OFFSET, UINT64_MAX);
	time_t now = time(NULL);
	uint64_t t = now > (time_t)VHD_EPOCH_OFFSET ? (uint64_t)now - VHD_EPOCH_OFFSET : 0;
	put_be32(f + F_TIMESTAMP, (uint32_t)t);
	/* Hyper-V's creator tag. The disk is sized by current_size, as Hyper-V, Azure
	 * and qemu >= 9.2 read it; qemu before 9.2 (Debian 12's 7.2) trusts current_size
	 * only for creators it knows and otherwise derives a smaller size from the CHS
	 * geometry, silently cutting the tail off. These are Hyper-V/Azure disks, so
	 * they say so, and every qemu reads them whole. */
	memcpy(f + F_CREATOR_APP, "win ", 4);
	put_be32(f + F_CREATOR_VER, ((uint32_t)SITEREC_VERSION_MAJOR << 16) | SITEREC_VERSION_MINOR);
	memcpy(f + F_CREATOR_OS, "Wi2k", 4);
	put_be64(f + F_ORIG_SIZE, size);
	put_be64(f + F_CUR_SIZE, size);
	uint16_t cyl;
	uint8_t heads, spt;
	vhd_geometry(size, &cyl, &heads, &spt);
	put_be16(f + F_GEOMETRY, cyl);
	f[F_GEOMETRY + 2] = heads;
	f[F_GEOMETRY + 3] = spt;
	put_be32(f + F_TYPE, VHD_TYPE_FIXED);
	memcpy(f + F_UNIQUE_ID, disk_id, 16);
	f[F_SAVED_STATE] = 0;
	put_be32(f + F_CHECKSUM, vhd_checksum(f, VHD_FOOTER_SIZE, F_CHECKSUM));
	return 0;
}

int sr_disk_create_vhd_fixed(int fd, uint64_t size, const uint8_t disk_id[16])
{
	uint8_t f[VHD_FOOTER_SIZE];
	int rc = sr_vhd_fixed_footer(size, disk_id, f);
	if (rc)
		return rc;
	/* sparse data part: Azure uploads skip the holes */
	if (ftruncate(fd, (off_t)(size + VHD_FOOTER_SIZE)) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot size a fixed VHD to %llu bytes",
		                 (unsigned long long)(size + VHD_FOOTER_SIZE));
	}
	if ((rc = vhd_pwrite(fd, "new fixed VHD", "the footer", f, sizeof(f), size)) != 0)
		return rc;
	if (fdatasync(fd) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "fdatasync of a new fixed VHD failed");
	}
	return 0;
}
