/* Disk layer front end: argument checks, format detection, dispatch to backends. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk_internal.h"

static const size_t disk_opt_sizes[] = { 0, sizeof(siterec_disk_options) };
static const size_t create_opt_sizes[] = { 0, sizeof(siterec_disk_create_options) };
#define DEFAULT_MAX_CHAIN 16u

SITEREC_API int siterec_disk_options_init(siterec_disk_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, disk_opt_sizes, SITEREC_DISK_OPTIONS_VERSION, "disk");
}

SITEREC_API int siterec_disk_create_options_init(siterec_disk_create_options *opts,
                                                 unsigned int version)
{
	return sr_options_init(opts, version, create_opt_sizes, SITEREC_DISK_CREATE_OPTIONS_VERSION,
	                       "disk create");
}

int sr_disk_detect(int fd, uint64_t file_size, uint32_t *format)
{
	uint8_t b[512];
	*format = SITEREC_DISK_FORMAT_RAW;
	if (file_size >= 8) {
		int rc = sr_pread_full(fd, b, 8, 0);
		if (rc)
			return rc;
		if (memcmp(b, "vhdxfile", 8) == 0) {
			*format = SITEREC_DISK_FORMAT_VHDX;
			return 0;
		}
		/* a dynamic VHD has a footer copy at 0; a fixed one only at the end */
		if (memcmp(b, "conectix", 8) == 0) {
			*format = SITEREC_DISK_FORMAT_VHD;
			return 0;
		}
	}
	if (file_size >= 512) {
		int rc = sr_pread_full(fd, b, 512, file_size - 512);
		if (rc)
			return rc;
		if (memcmp(b, "conectix", 8) == 0)
			*format = SITEREC_DISK_FORMAT_VHD;
	}
	return 0;
}

uint32_t sr_disk_generation_hint(siterec_disk *d)
{
	uint32_t ls = d->info.logical_sector ? d->info.logical_sector : 512;
	if (d->info.virtual_size < 2ull * ls || ls > 4096)
		return 0;
	uint8_t s[8192];
	if (d->ops->read(d, s, 2 * ls, 0) != 0) {
		siterec_error_clear(); /* a hint only: an unreadable start is "unknown" */
		return 0;
	}
	if (s[510] != 0x55 || s[511] != 0xAA)
		return 0;
	/* GPT: protective MBR entry of type 0xEE and "EFI PART" at LBA 1 */
	int protective = 0, used = 0;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = s + 446 + 16 * i;
		if (e[4] == 0xEE)
			protective = 1;
		if (e[4] != 0)
			used = 1;
	}
	if (protective && memcmp(s + ls, "EFI PART", 8) == 0)
		return 2;
	return used ? 1 : 0;
}

static int block_device_size(int fd, uint64_t *size)
{
	uint64_t n = 0;
	if (ioctl(fd, BLKGETSIZE64, &n) != 0) {
		int e = errno;
		return sr_err_os(SITEREC_EIO, e, "cannot get the size of the block device");
	}
	*size = n;
	return 0;
}

/* Open a file and run the backend for its format. */
static int disk_open(siterec_disk **out, const char *path, const siterec_disk_options *o,
                     uint32_t depth)
{
	*out = NULL;
	int writable = (o->flags & SITEREC_DISK_OPEN_WRITE) != 0;
	/* O_NONBLOCK: a FIFO named by a hostile parent locator must not hang the
	 * open; it is refused below, and the flag cleared for regular files */
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot open disk image %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return sr_err_os(SITEREC_EIO, e, "cannot stat %s", path);
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	uint64_t fsize = (uint64_t)st.st_size;
	int rc = 0;
	if (S_ISBLK(st.st_mode))
		rc = block_device_size(fd, &fsize);
	else if (!S_ISREG(st.st_mode))
		rc = sr_err(SITEREC_EINVAL, "%s is neither a file nor a block device", path);
	siterec_disk *d = rc ? NULL : sr_calloc(1, sizeof(*d));
	if (!rc && !d)
		rc = sr_err(SITEREC_ENOMEM, "out of memory opening %s", path);
	if (!rc && !(d->path = sr_strdup(path)))
		rc = sr_err(SITEREC_ENOMEM, "out of memory opening %s", path);
	if (rc) {
		if (d)
			sr_free(d);
		close(fd);
		return rc;
	}
	d->fd = fd;
	d->info.file_size = fsize;
	d->info.writable = (uint32_t)writable;
	uint32_t format = o->format;
	if (format == SITEREC_DISK_FORMAT_AUTO)
		rc = sr_disk_detect(fd, fsize, &format);
	if (rc == 0) {
		switch (format) {
		case SITEREC_DISK_FORMAT_RAW: rc = sr_disk_open_raw(d, o); break;
		case SITEREC_DISK_FORMAT_VHD: rc = sr_disk_open_vhd(d, o); break;
		case SITEREC_DISK_FORMAT_VHDX: rc = sr_disk_open_vhdx(d, o, depth); break;
		default: rc = sr_err(SITEREC_EINVAL, "unknown disk format %u", format);
		}
	}
	if (rc == 0 && writable && !d->ops->write) {
		rc = sr_err(SITEREC_EUNSUPPORTED, "%s: %s images cannot be written by this library",
		            path, d->ops->name);
		d->ops->close(d);
	}
	if (rc) {
		siterec_disk_free(d->parent);
		close(fd);
		sr_free(d->path);
		sr_free(d);
		return rc;
	}
	d->info.format = format;
	d->info.generation_hint = sr_disk_generation_hint(d);
	*out = d;
	return 0;
}

SITEREC_API int siterec_disk_open(siterec_disk **out, const char *path,
                                  const siterec_disk_options *opts)
{
	if (out)
		*out = NULL;
	if (!out || !path || !*path)
		return sr_err(SITEREC_EINVAL, "disk open needs an out-pointer and a path");
	siterec_disk_options o;
	siterec_disk_options_init(&o, SITEREC_DISK_OPTIONS_VERSION);
	int rc = sr_options_copy(&o, opts, disk_opt_sizes, SITEREC_DISK_OPTIONS_VERSION, "disk");
	if (rc)
		return rc;
	if (o.flags & ~(SITEREC_DISK_OPEN_WRITE | SITEREC_DISK_REPLAY_LOG))
		return sr_err(SITEREC_EINVAL, "unknown disk open flags 0x%x", o.flags);
	if (o.format > SITEREC_DISK_FORMAT_VHDX)
		return sr_err(SITEREC_EINVAL, "unknown disk format %u", o.format);
	if ((o.flags & SITEREC_DISK_OPEN_WRITE) && (o.flags & SITEREC_DISK_REPLAY_LOG))
		return sr_err(SITEREC_EINVAL, "a replayed VHDX log gives a read-only view: "
		                              "SITEREC_DISK_REPLAY_LOG excludes SITEREC_DISK_OPEN_WRITE");
	if (o.max_chain == 0)
		o.max_chain = DEFAULT_MAX_CHAIN;
	return disk_open(out, path, &o, 0);
}

int sr_disk_open_parent(siterec_disk **out, const char *path, const siterec_disk_options *opts,
                        uint32_t depth)
{
	if (depth > opts->max_chain)
		return sr_err(SITEREC_EDISK, "differencing chain deeper than %u levels at %s",
		              opts->max_chain, path);
	siterec_disk_options o = *opts;
	o.format = SITEREC_DISK_FORMAT_AUTO;
	o.flags &= ~SITEREC_DISK_OPEN_WRITE;
	int rc = disk_open(out, path, &o, depth);
	if (rc && rc != SITEREC_EDISK)
		return sr_err(SITEREC_EDISK, "cannot open parent %s: %s", path,
		              siterec_error_last()->message);
	return rc;
}

SITEREC_API void siterec_disk_free(siterec_disk *d)
{
	if (!d)
		return;
	if (d->ops && d->ops->close)
		d->ops->close(d);
	siterec_disk_free(d->parent);
	if (d->fd >= 0)
		close(d->fd);
	sr_free(d->path);
	sr_free(d);
}

SITEREC_API int siterec_disk_info_get(siterec_disk *d, siterec_disk_info *info)
{
	if (!d || !info)
		return sr_err(SITEREC_EINVAL, "disk info needs a disk and an info struct");
	unsigned int v = info->version;
	if (v < 1 || v > SITEREC_DISK_INFO_VERSION)
		return sr_err(SITEREC_EVERSION, "disk info version %u not supported (1..%u)", v,
		              SITEREC_DISK_INFO_VERSION);
	*info = d->info;
	info->version = v;
	return 0;
}

/* Common range check of read, write and status. */
static int check_range(siterec_disk *d, const void *buf, uint64_t length, uint64_t offset,
                       const char *what)
{
	if (!d || !buf)
		return sr_err(SITEREC_EINVAL, "disk %s needs a disk and a buffer", what);
	if (length == 0)
		return sr_err(SITEREC_EINVAL, "disk %s of zero bytes", what);
	if (offset > d->info.virtual_size || length > d->info.virtual_size - offset)
		return sr_err(SITEREC_ERANGE, "%s: %s of %llu bytes at %llu passes the disk end %llu",
		              d->path, what, (unsigned long long)length, (unsigned long long)offset,
		              (unsigned long long)d->info.virtual_size);
	return 0;
}

SITEREC_API int siterec_disk_read(siterec_disk *d, void *buf, size_t length, uint64_t offset)
{
	int rc = check_range(d, buf, length, offset, "read");
	return rc ? rc : d->ops->read(d, buf, length, offset);
}

SITEREC_API int siterec_disk_read_cb(void *buf, size_t length, uint64_t offset, void *disk)
{
	return siterec_disk_read(disk, buf, length, offset);
}

SITEREC_API int siterec_disk_block_status(siterec_disk *d, uint64_t offset, uint64_t length,
                                          uint64_t *run_length, int *allocated)
{
	int rc = check_range(d, run_length, length, offset, "block status");
	if (rc)
		return rc;
	if (!allocated)
		return sr_err(SITEREC_EINVAL, "disk block status needs an out-pointer");
	return d->ops->status(d, offset, length, run_length, allocated);
}

SITEREC_API int siterec_disk_block_status_cb(uint64_t offset, uint64_t length, uint64_t *run_length,
                                             int *allocated, void *disk)
{
	return siterec_disk_block_status(disk, offset, length, run_length, allocated);
}

SITEREC_API int siterec_disk_write(siterec_disk *d, const void *buf, size_t length,
                                   uint64_t offset)
{
	int rc = check_range(d, buf, length, offset, "write");
	if (rc)
		return rc;
	if (!d->info.writable)
		return sr_err(SITEREC_ESTATE, "%s is open read-only (SITEREC_DISK_OPEN_WRITE)", d->path);
	return d->ops->write(d, buf, length, offset);
}

SITEREC_API int siterec_disk_write_cb(const void *buf, size_t length, uint64_t offset, void *disk)
{
	return siterec_disk_write(disk, buf, length, offset);
}

SITEREC_API int siterec_disk_flush(siterec_disk *d)
{
	if (!d)
		return sr_err(SITEREC_EINVAL, "disk flush needs a disk");
	if (!d->info.writable)
		return 0;
	if (fdatasync(d->fd) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "fdatasync of %s failed", d->path);
	}
	return 0;
}

SITEREC_API int siterec_disk_create(siterec_disk **out, const char *path, uint64_t size,
                                    const siterec_disk_create_options *opts)
{
	if (out)
		*out = NULL;
	if (!out || !path || !*path)
		return sr_err(SITEREC_EINVAL, "disk create needs an out-pointer and a path");
	siterec_disk_create_options o;
	siterec_disk_create_options_init(&o, SITEREC_DISK_CREATE_OPTIONS_VERSION);
	int rc = sr_options_copy(&o, opts, create_opt_sizes, SITEREC_DISK_CREATE_OPTIONS_VERSION,
	                         "disk create");
	if (rc)
		return rc;
	if (o.flags)
		return sr_err(SITEREC_EINVAL, "disk create flags must be 0");
	if (o.format == SITEREC_DISK_FORMAT_AUTO)
		o.format = SITEREC_DISK_FORMAT_RAW;
	if (o.format != SITEREC_DISK_FORMAT_RAW && o.format != SITEREC_DISK_FORMAT_VHD)
		return sr_err(SITEREC_EUNSUPPORTED, "disk create writes raw or fixed VHD images only "
		                                    "(format %u asked)", o.format);
	/* VHD's current-size field and the CHS cap bound fixed disks near 2040 GiB in
	 * Hyper-V; Azure's limit is far above what a u64 of MiB can overflow to. */
	const uint64_t max = 1ull << 50; /* 1 PiB */
	if (size == 0 || size > max)
		return sr_err(SITEREC_EINVAL, "disk size %llu out of range 1..%llu",
		              (unsigned long long)size, (unsigned long long)max);
	uint64_t vsize = size;
	if (o.format == SITEREC_DISK_FORMAT_VHD)
		vsize = (size + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	static const uint8_t zero_id[16];
	if (o.format == SITEREC_DISK_FORMAT_VHD && memcmp(o.disk_id, zero_id, 16) == 0 &&
	    (rc = sr_random_bytes(o.disk_id, 16)) != 0)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot create disk image %s", path);
	}
	if (o.format == SITEREC_DISK_FORMAT_VHD) {
		rc = sr_disk_create_vhd_fixed(fd, vsize, o.disk_id);
	} else if (ftruncate(fd, (off_t)vsize) != 0 || fdatasync(fd) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot size %s to %llu bytes", path,
		               (unsigned long long)vsize);
	}
	if (rc == 0)
		rc = sr_fsync_dir_of(path);
	close(fd);
	if (rc) {
		unlink(path);
		return rc;
	}
	siterec_disk_options oo;
	siterec_disk_options_init(&oo, SITEREC_DISK_OPTIONS_VERSION);
	oo.format = o.format;
	oo.flags = SITEREC_DISK_OPEN_WRITE;
	return siterec_disk_open(out, path, &oo);
}
