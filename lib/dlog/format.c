/* Delta log: encoding and checking of the file header and record headers,
 * checksums, seal chain, options. Byte layout: doc/formats.md. */
#include <string.h>

#include "dlog_internal.h"

/* ---- file header ---- */

void sr_dlog_header_encode(uint8_t out[DL_HEADER_SIZE], const struct dl_header *h)
{
	memset(out, 0, DL_HEADER_SIZE);
	memcpy(out, DL_MAGIC, 8);
	sr_put_le32(out + 8, DL_FORMAT_VERSION);
	sr_put_le32(out + 12, DL_HEADER_SIZE);
	sr_put_le32(out + 16, h->flags);
	sr_put_le32(out + 20, h->block_size);
	sr_put_le64(out + 24, h->disk_size);
	memcpy(out + 32, h->disk_id, 16);
	sr_put_le64(out + 48, h->first_seq);
	sr_put_le64(out + 56, h->created_ns);
	memcpy(out + 64, h->salt, 8);
	memcpy(out + 72, h->key_check, 16);
	/* 88..119 reserved, zero */
	sr_put_le64(out + 120, sr_hash64(out, 120));
}

int sr_dlog_header_decode(const uint8_t *buf, size_t buf_len, uint64_t file_size,
                          struct dl_header *h, const char *path)
{
	if (file_size < 8 || buf_len < 8 || memcmp(buf, DL_MAGIC, 8) != 0)
		return sr_err(SITEREC_ECORRUPT, "%s is not a delta log (bad magic)", path);
	if (file_size < DL_HEADER_SIZE || buf_len < DL_HEADER_SIZE)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log header truncated (%llu bytes)", path,
		              (unsigned long long)file_size);
	/* Every version keeps magic, version, header_size and a trailing XXH3-64 in
	 * place, so a newer header can be told from a damaged one. */
	uint32_t version = sr_get_le32(buf + 8);
	uint32_t hsize = sr_get_le32(buf + 12);
	if (hsize < DL_HEADER_SIZE || hsize > DL_HEADER_MAX || hsize % 8 || hsize > file_size ||
	    hsize > buf_len)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log header size %u is invalid", path, hsize);
	if (sr_get_le64(buf + hsize - 8) != sr_hash64(buf, hsize - 8))
		return sr_err(SITEREC_ECORRUPT, "%s: delta log header checksum mismatch", path);
	if (version == 0)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log format version 0 is invalid", path);
	if (version > DL_FORMAT_VERSION)
		return sr_err(SITEREC_EVERSION,
		              "%s: delta log format version %u is newer than this library supports (%u)",
		              path, version, DL_FORMAT_VERSION);
	if (hsize != DL_HEADER_SIZE)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log header size %u, expected %u", path,
		              hsize, DL_HEADER_SIZE);
	memset(h, 0, sizeof(*h));
	h->version = version;
	h->header_size = hsize;
	h->flags = sr_get_le32(buf + 16);
	h->block_size = sr_get_le32(buf + 20);
	h->disk_size = sr_get_le64(buf + 24);
	memcpy(h->disk_id, buf + 32, 16);
	h->first_seq = sr_get_le64(buf + 48);
	h->created_ns = sr_get_le64(buf + 56);
	memcpy(h->salt, buf + 64, 8);
	memcpy(h->key_check, buf + 72, 16);
	if (h->flags & ~DL_HDR_FLAG_ENCRYPTED)
		return sr_err(SITEREC_EVERSION, "%s: delta log uses unknown header flags 0x%x", path,
		              h->flags & ~DL_HDR_FLAG_ENCRYPTED);
	if (!sr_is_zero(buf + 88, 32))
		return sr_err(SITEREC_EVERSION,
		              "%s: delta log header has reserved fields set (newer writer?)", path);
	if (!sr_is_pow2(h->block_size) || h->block_size < 512 || h->block_size > (1u << 20))
		return sr_err(SITEREC_ECORRUPT, "%s: delta log block size %u is invalid", path,
		              h->block_size);
	if (h->disk_size == 0 || h->disk_size % SITEREC_DLOG_SECTOR)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log disk size %llu is invalid", path,
		              (unsigned long long)h->disk_size);
	if (h->first_seq == 0)
		return sr_err(SITEREC_ECORRUPT, "%s: delta log first sequence number is 0", path);
	if (!(h->flags & DL_HDR_FLAG_ENCRYPTED) && !sr_is_zero(h->key_check, 16))
		return sr_err(SITEREC_ECORRUPT, "%s: unencrypted delta log has a key check", path);
	return 0;
}

/* ---- records ---- */

uint64_t sr_dlog_checksum_combine(uint64_t hcheck, uint64_t payload_hash)
{
	uint8_t b[16];
	sr_put_le64(b, hcheck);
	sr_put_le64(b + 8, payload_hash);
	return sr_hash64(b, sizeof(b));
}

uint64_t sr_dlog_rec_checksum(uint64_t hcheck, const uint8_t *payload, size_t len)
{
	return sr_dlog_checksum_combine(hcheck, sr_dlog_payload_hash(payload, len));
}

uint64_t sr_dlog_chain(uint64_t chain, uint64_t checksum)
{
	uint8_t b[16];
	sr_put_le64(b, chain);
	sr_put_le64(b + 8, checksum);
	return sr_hash64(b, sizeof(b));
}

void sr_dlog_rec_encode(uint8_t out[DL_REC_HDR], struct dl_rec *r, uint64_t payload_hash)
{
	sr_put_le32(out, DL_REC_MAGIC);
	sr_put_le16(out + 4, r->type);
	sr_put_le16(out + 6, r->flags);
	sr_put_le64(out + 8, r->seq);
	sr_put_le64(out + 16, r->offset);
	sr_put_le64(out + 24, r->length);
	sr_put_le32(out + 32, r->payload_len);
	sr_put_le32(out + 36, 0);
	memcpy(out + 40, r->nonce, 8);
	r->hcheck = sr_hash64(out, 48);
	sr_put_le64(out + 48, r->hcheck);
	r->checksum = sr_dlog_checksum_combine(r->hcheck, payload_hash);
	sr_put_le64(out + 56, r->checksum);
}

static int range_ok(uint64_t off, uint64_t len, uint64_t disk_size)
{
	return len > 0 && off % SITEREC_DLOG_SECTOR == 0 && len % SITEREC_DLOG_SECTOR == 0 &&
	       off <= disk_size && len <= disk_size - off;
}

const char *sr_dlog_rec_decode(const uint8_t *p, uint64_t disk_size, int encrypted,
                               struct dl_rec *r)
{
	if (sr_get_le32(p) != DL_REC_MAGIC)
		return "bad record magic";
	r->hcheck = sr_get_le64(p + 48);
	if (r->hcheck != sr_hash64(p, 48))
		return "record header check mismatch";
	r->type = sr_get_le16(p + 4);
	r->flags = sr_get_le16(p + 6);
	r->seq = sr_get_le64(p + 8);
	r->offset = sr_get_le64(p + 16);
	r->length = sr_get_le64(p + 24);
	r->payload_len = sr_get_le32(p + 32);
	memcpy(r->nonce, p + 40, 8);
	r->checksum = sr_get_le64(p + 56);
	if (r->flags != 0 || sr_get_le32(p + 36) != 0)
		return "unknown record flags";
	if (!encrypted && !sr_is_zero(r->nonce, 8))
		return "nonce set in an unencrypted log";
	uint32_t tag = encrypted ? DL_TAG : 0;
	switch (r->type) {
	case DL_TYPE_DATA:
		if (!range_ok(r->offset, r->length, disk_size) || r->length > SITEREC_DLOG_MAX_RECORD)
			return "data record range invalid";
		if (r->payload_len != r->length + tag)
			return "data record payload length mismatch";
		break;
	case DL_TYPE_ZERO:
		if (!range_ok(r->offset, r->length, disk_size))
			return "zero record range invalid";
		if (r->payload_len != 0)
			return "zero record has a payload";
		break;
	case DL_TYPE_SEAL:
		if (r->length != 0 || r->payload_len != DL_SEAL_PLAIN + tag)
			return "seal record fields invalid";
		break;
	default:
		return "unknown record type";
	}
	return NULL;
}

/* ---- options ---- */

static const size_t opt_sizes[] = { 0, sizeof(siterec_dlog_options) };

SITEREC_API int siterec_dlog_options_init(siterec_dlog_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, opt_sizes, SITEREC_DLOG_OPTIONS_VERSION, "delta log");
}

int sr_dlog_opts_copy(siterec_dlog_options *out, const siterec_dlog_options *in)
{
	memset(out, 0, sizeof(*out));
	out->version = SITEREC_DLOG_OPTIONS_VERSION;
	int rc = sr_options_copy(out, in, opt_sizes, SITEREC_DLOG_OPTIONS_VERSION, "delta log");
	if (rc)
		return rc;
	return sr_dlog_opts_key(out);
}

int sr_dlog_opts_key(const siterec_dlog_options *o)
{
	if (o->key_size == 0 && o->key == NULL)
		return 0;
	if (o->key_size == SITEREC_DLOG_KEY_SIZE && o->key != NULL)
		return 0;
	if (o->key_size == 0)
		return sr_err(SITEREC_EINVAL, "delta log key given with key_size 0 (must be %u)",
		              SITEREC_DLOG_KEY_SIZE);
	if (o->key == NULL && o->key_size == SITEREC_DLOG_KEY_SIZE)
		return sr_err(SITEREC_EINVAL, "delta log key_size is %u but key is NULL",
		              SITEREC_DLOG_KEY_SIZE);
	return sr_err(SITEREC_EINVAL, "delta log key_size %zu invalid: must be 0 or %u", o->key_size,
	              SITEREC_DLOG_KEY_SIZE);
}
