/* Delta log from a tracker: append the frozen epoch's extents, read from the source. */
#include <string.h>

#include "dlog_internal.h"

struct frozen {
	siterec_dlog *w;
	siterec_read_fn read;
	void *payload;
	int fd;
	uint8_t *buf;              /* SITEREC_DLOG_MAX_RECORD */
	int rc;                    /* our error, message in msg */
	int cb_code;               /* the read callback's non-zero return */
	char msg[512];
};

/* Emit a piece as alternating data and zero runs at the log's block granularity:
 * never-written space inside a dirty extent (a sparse disk's initial copy) costs
 * a 64-byte record instead of its bytes. */
static int emit_piece(siterec_dlog *w, uint64_t off, uint64_t n, const uint8_t *buf)
{
	uint64_t g = w->block_size;
	uint64_t pos = 0;
	while (pos < n) {
		uint64_t step = n - pos < g ? n - pos : g;
		int zero = sr_is_zero(buf + pos, (size_t)step);
		uint64_t end = pos + step;
		while (end < n) {
			step = n - end < g ? n - end : g;
			if (sr_is_zero(buf + end, (size_t)step) != zero)
				break;
			end += step;
		}
		int rc = zero ? sr_dlog_emit(w, DL_TYPE_ZERO, off + pos, end - pos, NULL)
		              : sr_dlog_emit(w, DL_TYPE_DATA, off + pos, end - pos, buf + pos);
		if (rc)
			return rc;
		pos = end;
	}
	return 0;
}

static int frozen_extent(uint64_t offset, uint64_t length, void *payload)
{
	struct frozen *f = payload;
	siterec_dlog *w = f->w;
	/* widen to sectors (trackers finer than 512 bytes); the log's disk size is a
	 * multiple of 512, so this stays inside the disk */
	uint64_t start = offset & ~(uint64_t)(SITEREC_DLOG_SECTOR - 1);
	uint64_t end = offset + length;
	end = end > w->disk_size - (SITEREC_DLOG_SECTOR - 1)
	              ? w->disk_size
	              : (end + SITEREC_DLOG_SECTOR - 1) & ~(uint64_t)(SITEREC_DLOG_SECTOR - 1);
	int rc = 0;
	for (uint64_t off = start; off < end;) {
		uint64_t n = end - off;
		if (n > SITEREC_DLOG_MAX_RECORD)
			n = SITEREC_DLOG_MAX_RECORD;
		if (f->fd >= 0) {
			rc = sr_pread_full(f->fd, f->buf, (size_t)n, off);
			if (rc == SITEREC_ETRUNCATED)
				rc = sr_err(SITEREC_ERANGE, "source ends before offset %llu of the disk",
				            (unsigned long long)(off + n));
		} else {
			int cb = f->read(f->buf, (size_t)n, off, f->payload);
			if (cb) {
				f->cb_code = cb;
				return 1;
			}
		}
		if (rc == 0 && (rc = sr_dlog_check_append(w, off, n)) == 0)
			rc = emit_piece(w, off, n, f->buf);
		if (rc) {
			/* the tracker's iteration reports its own abort; keep ours */
			f->rc = rc;
			strncpy(f->msg, siterec_error_last()->message, sizeof(f->msg) - 1);
			return 1;
		}
		off += n;
	}
	return 0;
}

static int append_frozen(siterec_dlog *log, siterec_tracker *tracker, siterec_read_fn read,
                         void *read_payload, int fd)
{
	if (!log || !tracker)
		return sr_err(SITEREC_EINVAL, "delta log and tracker must not be NULL");
	int rc = sr_dlog_check_append(log, 0, 0);
	if (rc)
		return rc;
	siterec_tracker_stats st;
	memset(&st, 0, sizeof(st));
	st.version = SITEREC_TRACKER_STATS_VERSION;
	if ((rc = siterec_tracker_stats_get(tracker, &st)) != 0)
		return rc;
	if (st.disk_size != log->disk_size)
		return sr_err(SITEREC_EINVAL, "tracker disk size %llu differs from the log's %llu",
		              (unsigned long long)st.disk_size, (unsigned long long)log->disk_size);
	struct frozen f;
	memset(&f, 0, sizeof(f));
	f.w = log;
	f.read = read;
	f.payload = read_payload;
	f.fd = fd;
	f.buf = sr_malloc_aligned(SITEREC_DLOG_MAX_RECORD);
	if (!f.buf)
		return sr_err(SITEREC_ENOMEM, "out of memory for a read buffer");
	rc = siterec_tracker_foreach_frozen(tracker, frozen_extent, &f);
	sr_free_aligned(f.buf);
	if (f.cb_code)
		return sr_err_callback(f.cb_code, "delta log source read");
	if (f.rc)
		return sr_err(f.rc, "%s", f.msg);
	if (rc)
		return rc;
	if (log->flags & SITEREC_DLOG_SYNC_EACH)
		return siterec_dlog_sync(log);
	return 0;
}

SITEREC_API int siterec_dlog_append_frozen(siterec_dlog *log, siterec_tracker *tracker,
                                           siterec_read_fn read, void *read_payload)
{
	if (!read)
		return sr_err(SITEREC_EINVAL, "delta log append_frozen needs a read callback");
	return append_frozen(log, tracker, read, read_payload, -1);
}

SITEREC_API int siterec_dlog_append_frozen_fd(siterec_dlog *log, siterec_tracker *tracker, int fd)
{
	if (fd < 0)
		return sr_err(SITEREC_EINVAL, "delta log append_frozen_fd needs a file descriptor");
	return append_frozen(log, tracker, NULL, NULL, fd);
}
