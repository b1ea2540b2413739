/* Raw images: the virtual disk is the file. */
#include <errno.h>
#include <unistd.h>

#include "disk_internal.h"

static int raw_read(siterec_disk *d, void *buf, size_t len, uint64_t off)
{
	return sr_pread_full(d->fd, buf, len, off);
}

static int raw_write(siterec_disk *d, const void *buf, size_t len, uint64_t off)
{
	return sr_pwrite_full(d->fd, buf, len, off);
}

/* Holes of a sparse file are unallocated; SEEK_DATA/SEEK_HOLE answer without
 * reading. File systems without them report everything as data. */
static int raw_status(siterec_disk *d, uint64_t off, uint64_t len, uint64_t *run, int *allocated)
{
	uint64_t end = off + len;
	off_t data = lseek(d->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) { /* no data after off: a hole to the end */
			*allocated = 0;
			*run = len;
			return 0;
		}
		*allocated = 1; /* EINVAL: not supported here */
		*run = len;
		return 0;
	}
	if ((uint64_t)data > off) {
		*allocated = 0;
		*run = ((uint64_t)data < end ? (uint64_t)data : end) - off;
		return 0;
	}
	off_t hole = lseek(d->fd, (off_t)off, SEEK_HOLE);
	uint64_t h = hole < 0 ? end : (uint64_t)hole;
	*allocated = 1;
	*run = (h < end ? h : end) - off;
	if (*run == 0)
		*run = len < 512 ? len : 512; /* defensive: always make progress */
	return 0;
}

static void raw_close(siterec_disk *d)
{
	(void)d;
}

static const struct sr_disk_ops raw_ops = { "raw", raw_read, raw_status, raw_write, raw_close };

int sr_disk_open_raw(siterec_disk *d, const siterec_disk_options *opts)
{
	(void)opts;
	d->ops = &raw_ops;
	d->info.kind = SITEREC_DISK_KIND_FIXED;
	d->info.logical_sector = 512;
	d->info.physical_sector = 4096;
	d->info.virtual_size = d->info.file_size;
	if (d->info.virtual_size == 0)
		return sr_err(SITEREC_EDISK, "%s is empty: a raw image needs at least one byte", d->path);
	return 0;
}
