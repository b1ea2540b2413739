/* Delta log reader: header check, record-by-record verification in large reads,
 * seal check, and the torn-tail decision. Also siterec_dlog_verify(). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlog_internal.h"

/* Make [pos, pos + n) available in the buffer (n <= r->cap, pos + n <= file
 * size). A record cut by the end of what was read is completed by reading on
 * after it (or, when the buffer is full, after moving it to the front), so
 * nothing is read twice and moves are rare. */
static int r_fill(siterec_dlog_reader *r, uint64_t pos, size_t n)
{
	uint64_t end = r->buf_off + r->buf_len;
	if (pos >= r->buf_off && pos + n <= end)
		return 0;
	uint64_t want = n > DL_READ_AHEAD ? n : DL_READ_AHEAD;
	if (want > r->file_size - pos)
		want = r->file_size - pos;
	size_t at; /* where in buf the byte at `pos` goes */
	size_t keep = 0;
	if (pos >= r->buf_off && pos < end) {
		keep = (size_t)(end - pos);
		at = (size_t)(pos - r->buf_off);
		if (at + want > r->cap) {
			if (want > r->cap)
				want = r->cap;
			memmove(r->buf, r->buf + at, keep);
			at = 0;
		}
	} else {
		at = 0;
		if (want > r->cap)
			want = r->cap;
	}
	r->buf_len = 0; /* stale until the read succeeds */
	int rc = sr_pread_full(r->fd, r->buf + at + keep, (size_t)want - keep, pos + keep);
	if (rc == SITEREC_ETRUNCATED)
		return sr_err(SITEREC_EIO, "%s: delta log shrank while being read", r->path);
	if (rc)
		return rc;
	r->buf_off = pos - at;
	r->buf_len = at + (size_t)want;
	return 0;
}

static uint8_t *r_at(siterec_dlog_reader *r, uint64_t pos)
{
	return r->buf + (pos - r->buf_off);
}

int sr_dlog_open_payload(struct dl_crypto *c, int encrypted, uint32_t index, uint8_t *rec,
                         const struct dl_rec *h, const uint8_t **plain, const char *path,
                         uint64_t file_off)
{
	if (!encrypted) {
		*plain = rec + DL_REC_HDR;
		return 0;
	}
	uint8_t aad[48];
	memcpy(aad, rec, sizeof(aad));
	/* Decrypt towards the start of the record (output trails input by 64 bytes, as
	 * mbedTLS allows): no second buffer, no copy. */
	int rc = sr_dlog_decrypt(c, h->nonce, index, aad, rec + DL_REC_HDR, rec,
	                         sr_dlog_plain_len(h, 1));
	if (rc == SITEREC_EAUTH)
		return sr_err(SITEREC_EAUTH,
		              "%s: record seq %llu at offset %llu failed authentication (tampered)",
		              path, (unsigned long long)h->seq, (unsigned long long)file_off);
	if (rc)
		return rc;
	*plain = rec;
	return 0;
}

/* Is there a valid record (header, checksum, plausible seq) at an 8-byte step at or
 * after `start`? 1 yes, 0 no, < 0 I/O error. */
static int scan_forward(siterec_dlog_reader *r, uint64_t start)
{
	uint64_t max_seq = r->last_seq + 1 + (r->file_size - r->pos) / DL_REC_HDR;
	for (uint64_t q = start; q + DL_REC_HDR <= r->file_size; q += 8) {
		int rc = r_fill(r, q, DL_REC_HDR);
		if (rc)
			return rc;
		const uint8_t *p = r_at(r, q);
		if (sr_get_le32(p) != DL_REC_MAGIC)
			continue;
		struct dl_rec h;
		if (sr_dlog_rec_decode(p, r->h.disk_size, r->encrypted, &h) != NULL)
			continue;
		/* a later record, or the seal (its seq is the last record's; a coalesced
		 * log's seal may be far ahead) */
		if (h.type == DL_TYPE_SEAL ? h.seq != r->last_seq
		                           : h.seq <= r->last_seq || h.seq > max_seq)
			continue;
		uint64_t size = DL_REC_HDR + (uint64_t)h.payload_len;
		if (q + size > r->file_size)
			continue;
		if ((rc = r_fill(r, q, (size_t)size)) != 0)
			return rc;
		p = r_at(r, q);
		if (sr_dlog_rec_checksum(h.hcheck, p + DL_REC_HDR, h.payload_len) == h.checksum)
			return 1;
	}
	return 0;
}

/* Does [pos, EOF) end in zeros the way an unfinished write leaves it: all of it
 * zero, or zeros from a 512-byte boundary of the file to the end? 1 yes, 0 no. */
static int zero_tail(siterec_dlog_reader *r, uint64_t pos)
{
	uint64_t end = r->file_size;
	uint64_t z = end; /* start of the trailing zero run */
	while (z > pos) {
		uint64_t from = z - pos > r->cap ? z - r->cap : pos;
		int rc = sr_pread_full(r->fd, r->buf, (size_t)(z - from), from);
		r->buf_len = 0;
		if (rc)
			return rc == SITEREC_ETRUNCATED
			               ? sr_err(SITEREC_EIO, "%s: delta log shrank while being read", r->path)
			               : rc;
		if (sr_is_zero(r->buf, (size_t)(z - from))) {
			z = from;
			continue;
		}
		size_t i = (size_t)(z - from);
		while (i > 0 && r->buf[i - 1] == 0)
			i--;
		z = from + i;
		break;
	}
	if (z <= pos)
		return 1;
	uint64_t boundary = (z + 511) & ~(uint64_t)511;
	return boundary < end;
}

/* The record at r->pos is bad. Torn tail (return 0, r->torn) or corruption. */
static int r_damage(siterec_dlog_reader *r, int incomplete, uint64_t next, const char *why)
{
	uint64_t pos = r->pos;
	if (!incomplete) {
		/* next: where to look for later records (past a bad record whose header is
		 * intact, so its own payload is not mistaken for records) */
		int rc = scan_forward(r, next);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return sr_err(SITEREC_ECORRUPT,
			              "%s: damaged record at offset %llu (%s), valid records follow",
			              r->path, (unsigned long long)pos, why);
		rc = zero_tail(r, pos);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return sr_err(SITEREC_ECORRUPT,
			              "%s: damaged record at offset %llu (%s), not a torn write", r->path,
			              (unsigned long long)pos, why);
	}
	r->torn = 1;
	r->done = 1;
	return 0;
}

static int r_seal(siterec_dlog_reader *r, const struct dl_rec *h, uint8_t *p, uint64_t size)
{
	uint64_t pos = r->pos;
	if (h->seq != r->last_seq)
		return sr_err(SITEREC_ECORRUPT,
		              "%s: seal at offset %llu has sequence number %llu, not the last record's %llu",
		              r->path, (unsigned long long)pos, (unsigned long long)h->seq,
		              (unsigned long long)r->last_seq);
	/* covering up to first_seq - 1 is an empty range: a log without records */
	if (h->offset != 0 && h->offset + 1 < r->h.first_seq)
		return sr_err(SITEREC_ECORRUPT,
		              "%s: seal at offset %llu says the log covers up to sequence %llu, "
		              "before its first %llu", r->path, (unsigned long long)pos,
		              (unsigned long long)h->offset, (unsigned long long)r->h.first_seq);
	const uint8_t *plain;
	int rc = sr_dlog_open_payload(&r->crypto, r->encrypted, (uint32_t)r->records, p, h, &plain,
	                              r->path, pos);
	if (rc)
		return rc;
	uint64_t count = sr_get_le64(plain), bytes = sr_get_le64(plain + 8);
	uint64_t first = sr_get_le64(plain + 16), chain = sr_get_le64(plain + 24);
	if (count != r->records || bytes != r->data_bytes || first != r->h.first_seq ||
	    chain != r->chain || memcmp(plain + 32, DL_SEAL_MARK, 8) != 0)
		return sr_err(SITEREC_ECORRUPT,
		              "%s: seal does not match the records (seal: %llu records, %llu bytes; "
		              "read: %llu records, %llu bytes%s): records missing, reordered or repeated",
		              r->path, (unsigned long long)count, (unsigned long long)bytes,
		              (unsigned long long)r->records, (unsigned long long)r->data_bytes,
		              chain != r->chain ? ", chain differs" : "");
	if (pos + size != r->file_size)
		return sr_err(SITEREC_ECORRUPT, "%s: %llu bytes follow the seal at offset %llu", r->path,
		              (unsigned long long)(r->file_size - pos - size), (unsigned long long)pos);
	r->sealed = 1;
	r->done = 1;
	r->seal_seq = h->offset ? h->offset : h->seq;
	r->rec_pos = pos;
	r->pos = pos + size;
	return 0;
}

static int r_next(siterec_dlog_reader *r, siterec_dlog_record *rec)
{
	uint64_t pos = r->pos;
	if (pos == r->file_size) {
		r->done = 1;
		return 0;
	}
	uint64_t avail = r->file_size - pos;
	if (avail < DL_REC_HDR)
		return r_damage(r, 1, 0, "record header cut short");
	int rc = r_fill(r, pos, DL_REC_HDR);
	if (rc)
		return rc;
	struct dl_rec h;
	const char *why = sr_dlog_rec_decode(r_at(r, pos), r->h.disk_size, r->encrypted, &h);
	if (why)
		return r_damage(r, 0, pos + 8, why);
	uint64_t size = DL_REC_HDR + (uint64_t)h.payload_len;
	if (avail < size)
		return r_damage(r, 1, 0, "record cut short");
	if ((rc = r_fill(r, pos, (size_t)size)) != 0)
		return rc;
	uint8_t *p = r_at(r, pos);
	if (sr_dlog_rec_checksum(h.hcheck, p + DL_REC_HDR, h.payload_len) != h.checksum)
		return r_damage(r, 0, pos + size, "record checksum mismatch");
	if (h.type == DL_TYPE_SEAL)
		return r_seal(r, &h, p, size);
	if (h.seq != r->last_seq + 1)
		return sr_err(SITEREC_ECORRUPT,
		              "%s: record at offset %llu has sequence number %llu, expected %llu "
		              "(records missing or out of order)",
		              r->path, (unsigned long long)pos, (unsigned long long)h.seq,
		              (unsigned long long)(r->last_seq + 1));
	if (r->records >= DL_MAX_RECORDS)
		return sr_err(SITEREC_ECORRUPT, "%s: more than %u records", r->path, DL_MAX_RECORDS);
	const uint8_t *plain = NULL;
	if (h.type == DL_TYPE_DATA &&
	    (rc = sr_dlog_open_payload(&r->crypto, r->encrypted, (uint32_t)r->records, p, &h, &plain,
	                               r->path, pos)) != 0)
		return rc;
	rec->seq = h.seq;
	rec->offset = h.offset;
	rec->length = h.length;
	rec->zero = h.type == DL_TYPE_ZERO;
	rec->reserved = 0;
	rec->data = plain;
	r->records++;
	r->data_bytes += h.length;
	r->chain = sr_dlog_chain(r->chain, h.checksum);
	r->last_seq = h.seq;
	if (h.offset + h.length > r->max_end)
		r->max_end = h.offset + h.length;
	r->rec_pos = pos;
	r->pos = pos + size;
	return 1;
}

SITEREC_API int siterec_dlog_reader_next(siterec_dlog_reader *r, siterec_dlog_record *rec)
{
	if (!r || !rec)
		return sr_err(SITEREC_EINVAL, "delta log reader and record must not be NULL");
	if (r->err)
		return sr_err(r->err, "%s: reading stopped at offset %llu by an earlier error (%s)",
		              r->path, (unsigned long long)r->pos, siterec_strerror(r->err));
	if (r->done)
		return 0;
	int rc = r_next(r, rec);
	if (rc < 0)
		r->err = rc;
	return rc;
}

int sr_dlog_reader_drain(siterec_dlog_reader *r)
{
	siterec_dlog_record rec;
	int rc;
	while ((rc = siterec_dlog_reader_next(r, &rec)) == 1)
		;
	if (rc < 0)
		return rc;
	if (r->torn)
		return sr_err(SITEREC_ETRUNCATED,
		              "%s: torn tail: %llu bytes after the last whole record at offset %llu",
		              r->path, (unsigned long long)(r->file_size - r->pos),
		              (unsigned long long)r->pos);
	return 0;
}

void sr_dlog_reader_rewind(siterec_dlog_reader *r)
{
	r->buf_len = 0; /* decryption rewrote the buffer in place */
	r->pos = r->h.header_size;
	r->rec_pos = 0;
	r->last_seq = r->h.first_seq - 1;
	r->records = r->data_bytes = r->chain = r->seal_seq = r->max_end = 0;
	r->sealed = r->torn = r->done = r->err = 0;
}

int sr_dlog_reader_open_fd(siterec_dlog_reader **out, int fd, int own_fd, const char *path,
                           const siterec_dlog_options *opts)
{
	*out = NULL;
	siterec_dlog_options o;
	int rc = sr_dlog_opts_copy(&o, opts);
	siterec_dlog_reader *r = NULL;
	if (rc)
		goto fail;
	r = sr_calloc(1, sizeof(*r));
	if (!r) {
		rc = sr_err(SITEREC_ENOMEM, "out of memory for a delta log reader");
		goto fail;
	}
	r->fd = fd;
	r->own_fd = own_fd;
	r->path = sr_strdup(path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		rc = sr_err_os(SITEREC_EIO, e, "cannot stat %s", path);
		goto fail;
	}
	r->file_size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	/* no read is ever longer than the file: small logs get a small buffer */
	r->cap = r->file_size < DL_READ_CHUNK ? (size_t)r->file_size : DL_READ_CHUNK;
	if (r->cap < DL_HEADER_SIZE)
		r->cap = DL_HEADER_SIZE;
	r->buf = sr_malloc_aligned(r->cap);
	if (!r->path || !r->buf) {
		rc = sr_err(SITEREC_ENOMEM, "out of memory for a delta log reader");
		goto fail;
	}
	uint64_t want = r->file_size < DL_HEADER_MAX ? r->file_size : DL_HEADER_MAX;
	if (want > r->cap)
		want = r->cap;
	if (want && (rc = r_fill(r, 0, (size_t)want)) != 0)
		goto fail;
	if ((rc = sr_dlog_header_decode(r->buf, r->buf_len, r->file_size, &r->h, path)) != 0)
		goto fail;
	r->encrypted = (r->h.flags & DL_HDR_FLAG_ENCRYPTED) != 0;
	if (r->encrypted && !o.key) {
		rc = sr_err(SITEREC_EAUTH, "%s: delta log is encrypted and no key was given", path);
		goto fail;
	}
	if (!r->encrypted && o.key) {
		rc = sr_err(SITEREC_EINVAL, "%s: delta log is not encrypted but a key was given", path);
		goto fail;
	}
	if (r->encrypted) {
		uint8_t kc[16];
		if ((rc = sr_dlog_crypto_init(&r->crypto, o.key)) != 0 ||
		    (rc = sr_dlog_key_check(&r->crypto, r->buf, kc)) != 0)
			goto fail;
		sr_dlog_crypto_bind(&r->crypto, r->h.disk_id, r->h.salt);
		if (sr_dlog_ct_cmp(kc, r->h.key_check, 16) != 0) {
			rc = sr_err(SITEREC_EAUTH, "%s: wrong key for this encrypted delta log", path);
			goto fail;
		}
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sr_dlog_reader_rewind(r);
	*out = r;
	return 0;
fail:
	if (r)
		siterec_dlog_reader_free(r);
	else if (own_fd)
		close(fd);
	return rc;
}

SITEREC_API int siterec_dlog_reader_open(siterec_dlog_reader **out, const char *path,
                                         const siterec_dlog_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "delta log reader out pointer is NULL");
	*out = NULL;
	if (!path)
		return sr_err(SITEREC_EINVAL, "delta log path is NULL");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : SITEREC_EIO, e,
		                 "cannot open delta log %s", path);
	}
	return sr_dlog_reader_open_fd(out, fd, 1, path, opts);
}

SITEREC_API int siterec_dlog_reader_info(siterec_dlog_reader *r, siterec_dlog_info *info)
{
	if (!r || !info)
		return sr_err(SITEREC_EINVAL, "delta log reader and info must not be NULL");
	if (info->version < 1)
		return sr_err(SITEREC_EVERSION, "delta log info version %u not supported (1..%u)",
		              info->version, SITEREC_DLOG_INFO_VERSION);
	/* Version 1 is every field; a newer caller's extra fields are left alone. */
	info->format_version = r->h.version;
	info->disk_size = r->h.disk_size;
	memcpy(info->disk_id, r->h.disk_id, 16);
	info->block_size = r->h.block_size;
	info->encrypted = (uint32_t)r->encrypted;
	info->first_seq = r->h.first_seq;
	info->last_seq = r->sealed ? r->seal_seq : r->last_seq;
	info->records = r->records;
	info->data_bytes = r->data_bytes;
	info->file_bytes = r->pos;
	info->sealed = (uint32_t)r->sealed;
	info->torn = (uint32_t)r->torn;
	return 0;
}

SITEREC_API void siterec_dlog_reader_free(siterec_dlog_reader *r)
{
	if (!r)
		return;
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	sr_free_aligned(r->buf);
	sr_dlog_crypto_free(&r->crypto);
	sr_free(r->path);
	sr_free(r);
}

SITEREC_API int siterec_dlog_verify(const char *path, const siterec_dlog_options *opts,
                                    siterec_dlog_info *info)
{
	if (!path)
		return sr_err(SITEREC_EINVAL, "delta log path is NULL");
	if (info && info->version < 1)
		return sr_err(SITEREC_EVERSION, "delta log info version %u not supported (1..%u)",
		              info->version, SITEREC_DLOG_INFO_VERSION);
	siterec_dlog_reader *r;
	int rc = siterec_dlog_reader_open(&r, path, opts);
	if (rc)
		return rc;
	rc = sr_dlog_reader_drain(r);
	if (info)
		(void)siterec_dlog_reader_info(r, info);
	siterec_dlog_reader_free(r);
	return rc;
}
