/* Delta log apply: verify the whole log, then write its records to a replica
 * through a callback or a file descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlog_internal.h"

#define DL_APPLY_FLAGS \
	(SITEREC_DLOG_APPLY_ALLOW_TORN | SITEREC_DLOG_APPLY_REQUIRE_SEALED | SITEREC_DLOG_APPLY_NO_SYNC)
#define DL_ZERO_CHUNK (1u << 20)

struct apply_ctx {
	siterec_write_fn write;
	void *payload;
	int fd;
	int no_punch;           /* hole punching unsupported on this fd */
	uint8_t *zeros;         /* DL_ZERO_CHUNK zero bytes, lazily */
};

static int write_zeros(struct apply_ctx *a, uint64_t off, uint64_t len)
{
	if (!a->zeros && !(a->zeros = sr_calloc(1, DL_ZERO_CHUNK)))
		return sr_err(SITEREC_ENOMEM, "out of memory for a zero buffer");
	while (len) {
		size_t n = len > DL_ZERO_CHUNK ? DL_ZERO_CHUNK : (size_t)len;
		int rc;
		if (a->fd >= 0) {
			if ((rc = sr_pwrite_full(a->fd, a->zeros, n, off)) != 0)
				return rc;
		} else if ((rc = a->write(a->zeros, n, off, a->payload)) != 0) {
			return sr_err_callback(rc, "delta log apply write");
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int apply_zero(struct apply_ctx *a, uint64_t off, uint64_t len)
{
	if (a->fd >= 0 && !a->no_punch) {
		if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		              (off_t)len) == 0)
			return 0;
		int e = errno;
		if (e != EOPNOTSUPP && e != ENOSYS && e != EINVAL && e != ENODEV && e != ENOTTY)
			return sr_err_os(e == ENOSPC ? SITEREC_ENOSPC : SITEREC_EIO, e,
			                 "punching a hole at %llu length %llu failed",
			                 (unsigned long long)off, (unsigned long long)len);
		a->no_punch = 1; /* not here: write zeros from now on */
	}
	return write_zeros(a, off, len);
}

static int apply_data(struct apply_ctx *a, const void *data, uint64_t off, uint64_t len)
{
	if (a->fd >= 0)
		return sr_pwrite_full(a->fd, data, (size_t)len, off);
	int rc = a->write(data, (size_t)len, off, a->payload);
	return rc ? sr_err_callback(rc, "delta log apply write") : 0;
}

/* Regular files and block devices must reach the highest offset written. */
static int check_target_size(int fd, uint64_t need)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		return sr_err_os(SITEREC_EIO, e, "cannot stat the replica");
	}
	uint64_t size;
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) != 0)
			return 0; /* size unknown: let the writes tell */
	} else {
		return 0;
	}
	if (size < need)
		return sr_err(SITEREC_ERANGE,
		              "replica is %llu bytes but the log writes up to offset %llu",
		              (unsigned long long)size, (unsigned long long)need);
	return 0;
}

static int apply_common(const char *path, const siterec_dlog_options *opts, uint32_t flags,
                        struct apply_ctx *a, uint64_t *applied_seq)
{
	if (!path)
		return sr_err(SITEREC_EINVAL, "delta log path is NULL");
	if (flags & ~DL_APPLY_FLAGS)
		return sr_err(SITEREC_EINVAL, "delta log apply flags 0x%x unknown",
		              flags & ~DL_APPLY_FLAGS);
	siterec_dlog_reader *r;
	int rc = siterec_dlog_reader_open(&r, path, opts);
	if (rc)
		return rc;
	/* Pass 1: the whole log is checked before anything is written. */
	rc = sr_dlog_reader_drain(r);
	if (rc != 0 && rc != SITEREC_ETRUNCATED)
		goto out;
	if ((flags & SITEREC_DLOG_APPLY_REQUIRE_SEALED) && !r->sealed) {
		rc = sr_err(SITEREC_ESTATE, "%s: delta log is not sealed%s", path,
		            r->torn ? " (it has a torn tail)" : "");
		goto out;
	}
	if (rc == SITEREC_ETRUNCATED && !(flags & SITEREC_DLOG_APPLY_ALLOW_TORN))
		goto out; /* message set by the drain */
	uint64_t records = r->records;
	if (a->fd >= 0 && (rc = check_target_size(a->fd, r->max_end)) != 0)
		goto out;
	/* Pass 2: read again (still checking) and write. */
	sr_dlog_reader_rewind(r);
	siterec_dlog_record rec;
	while ((rc = siterec_dlog_reader_next(r, &rec)) == 1) {
		rc = rec.zero ? apply_zero(a, rec.offset, rec.length)
		              : apply_data(a, rec.data, rec.offset, rec.length);
		if (rc)
			goto out;
	}
	if (rc < 0)
		goto out;
	if (r->records != records) {
		rc = sr_err(SITEREC_ECORRUPT, "%s: delta log changed while it was applied", path);
		goto out;
	}
	if (a->fd >= 0 && !(flags & SITEREC_DLOG_APPLY_NO_SYNC) && fdatasync(a->fd) != 0) {
		int e = errno;
		rc = sr_err_os(e == ENOSPC ? SITEREC_ENOSPC : SITEREC_EIO, e,
		               "fdatasync of the replica failed");
		goto out;
	}
	if (applied_seq)
		*applied_seq = r->sealed ? r->seal_seq : r->last_seq;
	rc = 0;
out:
	siterec_dlog_reader_free(r);
	sr_free(a->zeros);
	return rc;
}

SITEREC_API int siterec_dlog_apply(const char *path, const siterec_dlog_options *opts,
                                   uint32_t flags, siterec_write_fn write, void *write_payload,
                                   uint64_t *applied_seq)
{
	if (!write)
		return sr_err(SITEREC_EINVAL, "delta log apply needs a write callback");
	struct apply_ctx a = { write, write_payload, -1, 0, NULL };
	return apply_common(path, opts, flags, &a, applied_seq);
}

SITEREC_API int siterec_dlog_apply_fd(const char *path, const siterec_dlog_options *opts,
                                      uint32_t flags, int fd, uint64_t *applied_seq)
{
	if (fd < 0)
		return sr_err(SITEREC_EINVAL, "delta log apply needs a file descriptor");
	struct apply_ctx a = { NULL, NULL, fd, 0, NULL };
	return apply_common(path, opts, flags, &a, applied_seq);
}
