/* Delta log writer: create, reopen, append, sync, seal, rotate. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dlog_internal.h"

/* Payloads from this size on are written straight from the caller's buffer
 * (pwritev with the pending records) instead of being copied into the buffer. */
#define DL_BIG_PAYLOAD (256u << 10)

static int w_fail(siterec_dlog *w, int rc)
{
	w->state = DL_W_BROKEN;
	return rc;
}

/* Write all of iov at file_off, advancing file_off; on error the handle breaks
 * (the file may end in a partial record: reopen treats it as a torn tail). */
static int w_writev(siterec_dlog *w, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = pwritev(w->fd, iov, cnt, (off_t)w->file_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			int code = e == ENOSPC || e == EDQUOT ? SITEREC_ENOSPC : SITEREC_EIO;
			return w_fail(w, sr_err_os(code, e, "%s: write at offset %llu failed", w->path,
			                           (unsigned long long)w->file_off));
		}
		if (n == 0)
			return w_fail(w, sr_err(SITEREC_EIO, "%s: write at offset %llu wrote nothing",
			                        w->path, (unsigned long long)w->file_off));
		w->file_off += (uint64_t)n;
		size_t left = (size_t)n;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

static int w_flush(siterec_dlog *w)
{
	if (w->buf_len == 0)
		return 0;
	struct iovec iov = { w->buf, w->buf_len };
	int rc = w_writev(w, &iov, 1);
	if (rc == 0)
		w->buf_len = 0;
	return rc;
}

int sr_dlog_write_out(siterec_dlog *w)
{
	if (w->state == DL_W_BROKEN)
		return sr_err(SITEREC_ESTATE,
		              "%s: delta log handle unusable after a write error; reopen the log",
		              w->path);
	return w_flush(w);
}

static int w_datasync(siterec_dlog *w)
{
	if (fdatasync(w->fd) != 0) {
		int e = errno;
		int code = e == ENOSPC || e == EDQUOT ? SITEREC_ENOSPC : SITEREC_EIO;
		return w_fail(w, sr_err_os(code, e, "%s: fdatasync failed", w->path));
	}
	return 0;
}

int sr_dlog_emit(siterec_dlog *w, uint16_t type, uint64_t offset, uint64_t length,
                 const uint8_t *data)
{
	if (w->records >= DL_MAX_RECORDS)
		return sr_err(SITEREC_ESTATE, "%s: delta log is full (%u records): rotate it", w->path,
		              DL_MAX_RECORDS);
	int enc = w->crypto.on;
	struct dl_rec r;
	memset(&r, 0, sizeof(r));
	r.type = type;
	r.seq = w->next_seq;
	r.offset = offset;
	r.length = length;
	r.payload_len = type == DL_TYPE_DATA ? (uint32_t)length + (enc ? DL_TAG : 0) : 0;
	if (enc)
		memcpy(r.nonce, w->nonce, 8);
	uint32_t index = (uint32_t)w->records;
	size_t rec_size = DL_REC_HDR + r.payload_len;
	uint8_t aad[DL_REC_HDR];
	if (enc && r.payload_len)
		sr_dlog_rec_encode(aad, &r, 0); /* bytes 0..47 do not depend on the payload */
	int rc;

	if (r.payload_len < DL_BIG_PAYLOAD && rec_size <= w->buffer_size) {
		if (w->buf_len + rec_size > w->buffer_size && (rc = w_flush(w)) != 0)
			return rc;
		uint8_t *h = w->buf + w->buf_len;
		uint8_t *p = h + DL_REC_HDR;
		if (r.payload_len) {
			if (enc) {
				if ((rc = sr_dlog_encrypt(&w->crypto, w->nonce, index, aad, data, p,
				                          (size_t)length)) != 0)
					return rc;
			} else {
				memcpy(p, data, (size_t)length);
			}
		}
		sr_dlog_rec_encode(h, &r, sr_dlog_payload_hash(p, r.payload_len));
		w->buf_len += rec_size;
	} else {
		const uint8_t *src = data;
		if (enc) {
			if (!w->scratch &&
			    !(w->scratch = sr_malloc_aligned(SITEREC_DLOG_MAX_RECORD + DL_TAG)))
				return sr_err(SITEREC_ENOMEM, "out of memory for the encryption buffer");
			if ((rc = sr_dlog_encrypt(&w->crypto, w->nonce, index, aad, data, w->scratch,
			                          (size_t)length)) != 0)
				return rc;
			src = w->scratch;
		}
		uint64_t ph = sr_dlog_payload_hash(src, r.payload_len);
		if (w->buf_len + DL_REC_HDR > w->buffer_size && (rc = w_flush(w)) != 0)
			return rc;
		sr_dlog_rec_encode(w->buf + w->buf_len, &r, ph);
		w->buf_len += DL_REC_HDR;
		struct iovec iov[2] = { { w->buf, w->buf_len }, { (void *)src, r.payload_len } };
		if ((rc = w_writev(w, iov, 2)) != 0)
			return rc;
		w->buf_len = 0;
	}
	w->records++;
	w->data_bytes += length;
	w->chain = sr_dlog_chain(w->chain, r.checksum);
	w->next_seq++;
	return 0;
}

int sr_dlog_check_append(siterec_dlog *w, uint64_t offset, uint64_t length)
{
	if (w->state == DL_W_SEALED)
		return sr_err(SITEREC_ESTATE, "%s: delta log is sealed; appends are refused", w->path);
	if (w->state == DL_W_BROKEN)
		return sr_err(SITEREC_ESTATE,
		              "%s: delta log handle unusable after a write error; reopen the log",
		              w->path);
	if (offset % SITEREC_DLOG_SECTOR || length % SITEREC_DLOG_SECTOR)
		return sr_err(SITEREC_EALIGN,
		              "delta log append at %llu length %llu: not a multiple of %u bytes",
		              (unsigned long long)offset, (unsigned long long)length,
		              SITEREC_DLOG_SECTOR);
	if (offset > w->disk_size || length > w->disk_size - offset)
		return sr_err(SITEREC_ERANGE,
		              "delta log append at %llu length %llu: past the disk end %llu",
		              (unsigned long long)offset, (unsigned long long)length,
		              (unsigned long long)w->disk_size);
	return 0;
}

SITEREC_API int siterec_dlog_append(siterec_dlog *log, uint64_t offset, const void *data,
                                    size_t length, uint64_t *seq_out)
{
	if (!log)
		return sr_err(SITEREC_EINVAL, "delta log handle is NULL");
	if (!data || length == 0)
		return sr_err(SITEREC_EINVAL, "delta log append needs data and a length > 0");
	int rc = sr_dlog_check_append(log, offset, length);
	if (rc)
		return rc;
	uint64_t nrec = (length + SITEREC_DLOG_MAX_RECORD - 1) / SITEREC_DLOG_MAX_RECORD;
	if (log->records + nrec > DL_MAX_RECORDS)
		return sr_err(SITEREC_ESTATE, "%s: delta log is full (%u records): rotate it",
		              log->path, DL_MAX_RECORDS);
	const uint8_t *p = data;
	uint64_t done = 0;
	while (done < length) {
		uint64_t n = length - done;
		if (n > SITEREC_DLOG_MAX_RECORD)
			n = SITEREC_DLOG_MAX_RECORD;
		if ((log->flags & SITEREC_DLOG_DETECT_ZERO) && sr_is_zero(p + done, (size_t)n))
			rc = sr_dlog_emit(log, DL_TYPE_ZERO, offset + done, n, NULL);
		else
			rc = sr_dlog_emit(log, DL_TYPE_DATA, offset + done, n, p + done);
		if (rc)
			return rc;
		done += n;
	}
	if (seq_out)
		*seq_out = log->next_seq - 1;
	if (log->flags & SITEREC_DLOG_SYNC_EACH)
		return siterec_dlog_sync(log);
	return 0;
}

SITEREC_API int siterec_dlog_append_zero(siterec_dlog *log, uint64_t offset, uint64_t length,
                                         uint64_t *seq_out)
{
	if (!log)
		return sr_err(SITEREC_EINVAL, "delta log handle is NULL");
	if (length == 0)
		return sr_err(SITEREC_EINVAL, "delta log zero append needs a length > 0");
	int rc = sr_dlog_check_append(log, offset, length);
	if (rc == 0)
		rc = sr_dlog_emit(log, DL_TYPE_ZERO, offset, length, NULL);
	if (rc)
		return rc;
	if (seq_out)
		*seq_out = log->next_seq - 1;
	if (log->flags & SITEREC_DLOG_SYNC_EACH)
		return siterec_dlog_sync(log);
	return 0;
}

SITEREC_API int siterec_dlog_sync(siterec_dlog *log)
{
	if (!log)
		return sr_err(SITEREC_EINVAL, "delta log handle is NULL");
	if (log->state == DL_W_BROKEN)
		return sr_err(SITEREC_ESTATE,
		              "%s: delta log handle unusable after a write error; reopen the log",
		              log->path);
	if (log->state == DL_W_SEALED)
		return 0; /* the seal synced everything */
	int rc = w_flush(log);
	if (rc == 0)
		rc = w_datasync(log);
	return rc;
}

SITEREC_API int siterec_dlog_seal(siterec_dlog *log)
{
	if (!log)
		return sr_err(SITEREC_EINVAL, "delta log handle is NULL");
	if (log->state != DL_W_OPEN)
		return sr_err(SITEREC_ESTATE, "%s: delta log is %s", log->path,
		              log->state == DL_W_SEALED ? "already sealed"
		                                        : "unusable after a write error; reopen it");
	int enc = log->crypto.on;
	struct dl_rec r;
	memset(&r, 0, sizeof(r));
	r.type = DL_TYPE_SEAL;
	/* the seal numbers on from the records; the offset field carries the end of
	 * coverage when it differs (a coalesced log, whose records are renumbered and
	 * may be more or fewer than the sequence numbers it covers) */
	r.seq = log->next_seq - 1;
	r.offset = log->seal_seq;
	r.payload_len = DL_SEAL_PLAIN + (enc ? DL_TAG : 0);
	if (enc)
		memcpy(r.nonce, log->nonce, 8);
	uint8_t plain[DL_SEAL_PLAIN];
	sr_put_le64(plain, log->records);
	sr_put_le64(plain + 8, log->data_bytes);
	sr_put_le64(plain + 16, log->first_seq);
	sr_put_le64(plain + 24, log->chain);
	memcpy(plain + 32, DL_SEAL_MARK, 8);
	size_t rec_size = DL_REC_HDR + r.payload_len;
	int rc;
	if (log->buf_len + rec_size > log->buffer_size && (rc = w_flush(log)) != 0)
		return rc;
	uint8_t *h = log->buf + log->buf_len;
	uint8_t *p = h + DL_REC_HDR;
	if (enc) {
		uint8_t aad[DL_REC_HDR];
		sr_dlog_rec_encode(aad, &r, 0);
		if ((rc = sr_dlog_encrypt(&log->crypto, log->nonce, (uint32_t)log->records, aad, plain,
		                          p, DL_SEAL_PLAIN)) != 0)
			return w_fail(log, rc);
	} else {
		memcpy(p, plain, DL_SEAL_PLAIN);
	}
	sr_dlog_rec_encode(h, &r, sr_dlog_payload_hash(p, r.payload_len));
	log->buf_len += rec_size;
	if ((rc = w_flush(log)) != 0 || (rc = w_datasync(log)) != 0)
		return rc;
	log->state = DL_W_SEALED;
	return 0;
}

SITEREC_API uint64_t siterec_dlog_next_seq(const siterec_dlog *log)
{
	return log ? log->next_seq : 0;
}

static int check_writer_opts(const siterec_dlog_options *o, size_t *buffer_size)
{
	if (o->flags & ~(SITEREC_DLOG_SYNC_EACH | SITEREC_DLOG_DETECT_ZERO))
		return sr_err(SITEREC_EINVAL, "delta log flags 0x%x unknown",
		              o->flags & ~(SITEREC_DLOG_SYNC_EACH | SITEREC_DLOG_DETECT_ZERO));
	if (o->buffer_size > DL_MAX_BUFFER)
		return sr_err(SITEREC_EINVAL, "delta log buffer_size %u larger than %u", o->buffer_size,
		              DL_MAX_BUFFER);
	size_t b = o->buffer_size ? o->buffer_size : DL_DEFAULT_BUFFER;
	/* the buffer must at least hold a record header and a seal */
	*buffer_size = b < DL_MIN_BUFFER ? DL_MIN_BUFFER : b;
	return 0;
}

/* A writer handle without a file yet. */
static int w_new(siterec_dlog **out, const char *path, const siterec_dlog_options *o)
{
	size_t bsize = 0;
	int rc = check_writer_opts(o, &bsize);
	if (rc)
		return rc;
	siterec_dlog *w = sr_calloc(1, sizeof(*w));
	if (!w)
		return sr_err(SITEREC_ENOMEM, "out of memory for a delta log handle");
	w->fd = -1;
	w->flags = o->flags;
	w->buffer_size = bsize;
	w->path = sr_strdup(path);
	w->buf = sr_malloc_aligned(bsize);
	if (!w->path || !w->buf) {
		siterec_dlog_free(w);
		return sr_err(SITEREC_ENOMEM, "out of memory for a delta log buffer of %zu bytes", bsize);
	}
	if ((rc = sr_dlog_crypto_init(&w->crypto, o->key)) != 0) {
		siterec_dlog_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int lock_file(int fd, const char *path)
{
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			return sr_err(SITEREC_EBUSY, "%s: delta log is open for writing elsewhere", path);
		return sr_err_os(SITEREC_EIO, e, "%s: cannot lock the delta log", path);
	}
	return 0;
}

/* Create the file with its header, synced, directory synced. On failure nothing
 * is left behind. */
static int create_file(const char *path, const struct dl_geom *g, struct dl_crypto *c,
                       int *fd_out, uint8_t salt_out[8])
{
	struct dl_header h;
	memset(&h, 0, sizeof(h));
	h.flags = c->on ? DL_HDR_FLAG_ENCRYPTED : 0;
	h.block_size = g->block_size;
	h.disk_size = g->disk_size;
	memcpy(h.disk_id, g->disk_id, 16);
	h.first_seq = g->first_seq;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	h.created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	int rc = sr_random_bytes(h.salt, sizeof(h.salt));
	if (rc)
		return rc;
	uint8_t hdr[DL_HEADER_SIZE];
	sr_dlog_header_encode(hdr, &h);
	sr_dlog_crypto_bind(c, h.disk_id, h.salt);
	if (c->on) {
		if ((rc = sr_dlog_key_check(c, hdr, h.key_check)) != 0)
			return rc;
		sr_dlog_header_encode(hdr, &h);
	}
	/* 0600: the log holds disk contents */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		if (e == EEXIST)
			return sr_err(SITEREC_EEXISTS, "%s already exists", path);
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : e == ENOSPC ? SITEREC_ENOSPC : SITEREC_EIO,
		                 e, "cannot create delta log %s", path);
	}
	rc = lock_file(fd, path);
	if (rc == 0)
		rc = sr_pwrite_full(fd, hdr, sizeof(hdr), 0);
	if (rc == 0 && fdatasync(fd) != 0) {
		int e = errno;
		rc = sr_err_os(SITEREC_EIO, e, "%s: fdatasync failed", path);
	}
	if (rc == 0)
		rc = sr_fsync_dir_of(path);
	if (rc) {
		close(fd);
		unlink(path);
		return rc;
	}
	*fd_out = fd;
	memcpy(salt_out, h.salt, 8);
	return 0;
}

int sr_dlog_create_geom(siterec_dlog **out, const char *path, const struct dl_geom *g,
                        const siterec_dlog_options *o)
{
	siterec_dlog *w;
	int rc = w_new(&w, path, o);
	if (rc)
		return rc;
	w->disk_size = g->disk_size;
	memcpy(w->disk_id, g->disk_id, 16);
	w->block_size = g->block_size;
	w->first_seq = w->next_seq = g->first_seq;
	if ((rc = create_file(path, g, &w->crypto, &w->fd, w->nonce)) != 0) {
		siterec_dlog_free(w);
		return rc;
	}
	w->file_off = DL_HEADER_SIZE;
	*out = w;
	return 0;
}

SITEREC_API int siterec_dlog_create(siterec_dlog **out, const char *path,
                                    const siterec_dlog_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "delta log out pointer is NULL");
	*out = NULL;
	if (!path || !opts)
		return sr_err(SITEREC_EINVAL, "delta log create needs a path and options");
	siterec_dlog_options o;
	int rc = sr_dlog_opts_copy(&o, opts);
	if (rc)
		return rc;
	if (o.disk_size == 0)
		return sr_err(SITEREC_EINVAL, "delta log disk_size is 0");
	if (o.disk_size % SITEREC_DLOG_SECTOR)
		return sr_err(SITEREC_EALIGN, "delta log disk_size %llu is not a multiple of %u",
		              (unsigned long long)o.disk_size, SITEREC_DLOG_SECTOR);
	uint32_t bs = o.block_size ? o.block_size : 4096;
	if (!sr_is_pow2(bs) || bs < 512 || bs > (1u << 20))
		return sr_err(SITEREC_EINVAL,
		              "delta log block_size %u invalid: a power of two from 512 to 1 MiB",
		              o.block_size);
	struct dl_geom g;
	g.disk_size = o.disk_size;
	memcpy(g.disk_id, o.disk_id, 16);
	g.block_size = bs;
	g.first_seq = o.first_seq ? o.first_seq : 1;
	if (g.first_seq > UINT64_MAX - ((uint64_t)DL_MAX_RECORDS + 1))
		return sr_err(SITEREC_EINVAL, "delta log first_seq %llu too large",
		              (unsigned long long)g.first_seq);
	return sr_dlog_create_geom(out, path, &g, &o);
}

SITEREC_API int siterec_dlog_rotate(siterec_dlog *log, const char *next_path)
{
	if (!log || !next_path)
		return sr_err(SITEREC_EINVAL, "delta log rotate needs a handle and a next path");
	if (log->state == DL_W_BROKEN)
		return sr_err(SITEREC_ESTATE,
		              "%s: delta log handle unusable after a write error; reopen the log",
		              log->path);
	int rc;
	/* A handle sealed by an earlier seal or failed rotate just opens the next file. */
	if (log->state == DL_W_OPEN && (rc = siterec_dlog_seal(log)) != 0)
		return rc;
	if (log->next_seq > UINT64_MAX - ((uint64_t)DL_MAX_RECORDS + 1))
		return sr_err(SITEREC_ERANGE, "%s: sequence numbers exhausted", log->path);
	char *npath = sr_strdup(next_path);
	if (!npath)
		return sr_err(SITEREC_ENOMEM, "out of memory");
	struct dl_geom g;
	g.disk_size = log->disk_size;
	memcpy(g.disk_id, log->disk_id, 16);
	g.block_size = log->block_size;
	g.first_seq = log->next_seq;
	int fd;
	uint8_t salt[8];
	if ((rc = create_file(next_path, &g, &log->crypto, &fd, salt)) != 0) {
		sr_free(npath);
		return rc;
	}
	close(log->fd);
	sr_free(log->path);
	log->fd = fd;
	log->path = npath;
	memcpy(log->nonce, salt, 8);
	log->first_seq = log->next_seq;
	log->records = 0;
	log->data_bytes = 0;
	log->chain = 0;
	log->seal_seq = 0;
	log->file_off = DL_HEADER_SIZE;
	log->buf_len = 0;
	log->state = DL_W_OPEN;
	return 0;
}

SITEREC_API int siterec_dlog_reopen(siterec_dlog **out, const char *path,
                                    const siterec_dlog_options *opts, int *torn_out)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "delta log out pointer is NULL");
	*out = NULL;
	if (torn_out)
		*torn_out = 0;
	if (!path)
		return sr_err(SITEREC_EINVAL, "delta log path is NULL");
	siterec_dlog_options o;
	int rc = sr_dlog_opts_copy(&o, opts);
	if (rc)
		return rc;
	siterec_dlog *w;
	if ((rc = w_new(&w, path, &o)) != 0)
		return rc;
	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0) {
		int e = errno;
		siterec_dlog_free(w);
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : SITEREC_EIO, e,
		                 "cannot open delta log %s", path);
	}
	siterec_dlog_reader *r = NULL;
	if ((rc = lock_file(w->fd, path)) != 0 ||
	    (rc = sr_dlog_reader_open_fd(&r, w->fd, 0, path, &o)) != 0)
		goto fail;
	rc = sr_dlog_reader_drain(r);
	if (rc != 0 && rc != SITEREC_ETRUNCATED)
		goto fail;
	if (r->sealed) {
		rc = sr_err(SITEREC_ESTATE, "%s: delta log is sealed; create a new one to go on", path);
		goto fail;
	}
	if (r->torn) {
		if (ftruncate(w->fd, (off_t)r->pos) != 0 || fsync(w->fd) != 0) {
			int e = errno;
			rc = sr_err_os(SITEREC_EIO, e, "%s: cannot cut the torn tail at %llu", path,
			               (unsigned long long)r->pos);
			goto fail;
		}
		if (torn_out)
			*torn_out = 1;
	}
	if (r->records >= DL_MAX_RECORDS) {
		rc = sr_err(SITEREC_ESTATE, "%s: delta log is full: seal it and start a new one", path);
		goto fail;
	}
	w->disk_size = r->h.disk_size;
	memcpy(w->disk_id, r->h.disk_id, 16);
	w->block_size = r->h.block_size;
	w->first_seq = r->h.first_seq;
	w->next_seq = r->last_seq + 1;
	w->records = r->records;
	w->data_bytes = r->data_bytes;
	w->chain = r->chain;
	w->file_off = r->pos;
	sr_dlog_crypto_bind(&w->crypto, r->h.disk_id, r->h.salt);
	/* A fresh nonce prefix: a cut torn record may have used the next index already. */
	if (w->crypto.on && (rc = sr_random_bytes(w->nonce, sizeof(w->nonce))) != 0)
		goto fail;
	siterec_dlog_reader_free(r);
	*out = w;
	return 0;
fail:
	siterec_dlog_reader_free(r);
	siterec_dlog_free(w);
	return rc;
}

SITEREC_API void siterec_dlog_free(siterec_dlog *log)
{
	if (!log)
		return;
	if (log->state == DL_W_OPEN && log->fd >= 0)
		(void)w_flush(log); /* written, not synced: the header says so */
	if (log->fd >= 0)
		close(log->fd);
	sr_free_aligned(log->buf);
	sr_free_aligned(log->scratch);
	sr_dlog_crypto_free(&log->crypto);
	sr_free(log->path);
	sr_free(log);
}
