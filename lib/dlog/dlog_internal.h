/*
 * Delta log internals shared by the files of lib/dlog/. Not installed.
 * The byte layout is specified in doc/formats.md (section "Delta log").
 */
#ifndef SITEREC_DLOG_INTERNAL_H
#define SITEREC_DLOG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/gcm.h>

#include "internal.h"
#include "siterec/dlog.h"

/* ---- format constants (doc/formats.md) ---- */
#define DL_MAGIC "SRDLOG\r\n"          /* file magic, 8 bytes */
#define DL_FORMAT_VERSION 1u
#define DL_HEADER_SIZE 128u
#define DL_HEADER_MAX 65536u           /* largest header_size a reader accepts from any version */
#define DL_HDR_FLAG_ENCRYPTED 0x1u

#define DL_REC_MAGIC 0x636552D1u       /* bytes D1 52 65 63 ("\xd1Rec") */
#define DL_REC_HDR 64u
#define DL_TAG 16u                     /* GCM tag after an encrypted payload */
#define DL_TYPE_DATA 1u
#define DL_TYPE_ZERO 2u
#define DL_TYPE_SEAL 3u
#define DL_SEAL_PLAIN 40u              /* seal payload before encryption */
#define DL_SEAL_MARK "SRSEALED"        /* last 8 bytes of a plain seal payload */

/* Records of one file are numbered 0..DL_MAX_RECORDS-1 for the GCM nonce; the seal
 * takes index = record count, and DL_KEYCHECK_INDEX is the header's key check. */
#define DL_MAX_RECORDS 0xFFFFFFFEu
#define DL_KEYCHECK_INDEX 0xFFFFFFFFu

#define DL_DEFAULT_BUFFER (1u << 20)
#define DL_MIN_BUFFER 4096u
#define DL_MAX_BUFFER (1u << 30)
/* Reader buffer: holds the largest record (header + 4 MiB + tag) with room to
 * spare; reads are DL_READ_AHEAD bytes unless a record needs more. */
#define DL_READ_CHUNK (8u << 20)
#ifndef DL_READ_AHEAD
#define DL_READ_AHEAD (2u << 20)
#endif

/* ---- parsed file header ---- */
struct dl_header {
	uint32_t version;
	uint32_t header_size;
	uint32_t flags;
	uint32_t block_size;
	uint64_t disk_size;
	uint8_t disk_id[16];
	uint64_t first_seq;
	uint64_t created_ns;
	uint8_t salt[8];
	uint8_t key_check[16];
};

/* ---- parsed record header ---- */
struct dl_rec {
	uint16_t type;
	uint16_t flags;
	uint64_t seq;
	uint64_t offset;
	uint64_t length;
	uint32_t payload_len;
	uint8_t nonce[8];              /* nonce prefix (encrypted logs), else zeros */
	uint64_t checksum;
	uint64_t hcheck;
};

/* ---- encryption ---- */
struct dl_crypto {
	int on;
	mbedtls_gcm_context gcm;
	uint8_t bind[24];          /* the file's disk id and salt, authenticated with every record */
};

int sr_dlog_crypto_init(struct dl_crypto *c, const uint8_t *key);
void sr_dlog_crypto_free(struct dl_crypto *c);
/* Tie records to one file: its disk id and salt join every record's AAD, so a
 * record copied into another log under the same key fails authentication. */
void sr_dlog_crypto_bind(struct dl_crypto *c, const uint8_t disk_id[16], const uint8_t salt[8]);
/* Encrypt len bytes (in may equal out) and write the tag after out[len - 1]. */
int sr_dlog_encrypt(struct dl_crypto *c, const uint8_t prefix[8], uint32_t index,
                    const uint8_t aad[48], const uint8_t *in, uint8_t *out, size_t len);
/* Decrypt payload (ciphertext + tag, len = plaintext length); out may trail in by
 * >= 8 bytes or be separate. SITEREC_EAUTH on a bad tag. */
int sr_dlog_decrypt(struct dl_crypto *c, const uint8_t prefix[8], uint32_t index,
                    const uint8_t aad[48], const uint8_t *in, uint8_t *out, size_t len);
/* Key check of an encoded header (bytes 0..71 authenticated). */
int sr_dlog_key_check(struct dl_crypto *c, const uint8_t *hdr, uint8_t out[16]);
/* Constant-time comparison: 0 when equal. */
int sr_dlog_ct_cmp(const uint8_t *a, const uint8_t *b, size_t n);

/* ---- format (format.c) ---- */
void sr_dlog_header_encode(uint8_t out[DL_HEADER_SIZE], const struct dl_header *h);
/* Check and decode a header read from a file of file_size bytes (buf holds at least
 * min(file_size, DL_HEADER_MAX) bytes or DL_HEADER_SIZE when shorter). */
int sr_dlog_header_decode(const uint8_t *buf, size_t buf_len, uint64_t file_size,
                          struct dl_header *h, const char *path);

/* Encode a record header; fills r->hcheck and r->checksum from payload_hash. */
void sr_dlog_rec_encode(uint8_t out[DL_REC_HDR], struct dl_rec *r, uint64_t payload_hash);
/* Decode a record header: 0 when magic, header check and fields are sane for a log
 * of that disk size and encryption; else a short reason (no error set). */
const char *sr_dlog_rec_decode(const uint8_t *p, uint64_t disk_size, int encrypted,
                               struct dl_rec *r);
/* Record checksum from the header check and the payload. */
uint64_t sr_dlog_rec_checksum(uint64_t hcheck, const uint8_t *payload, size_t len);
static inline uint64_t sr_dlog_payload_hash(const uint8_t *payload, size_t len)
{
	return sr_hash64(payload, len);
}
uint64_t sr_dlog_checksum_combine(uint64_t hcheck, uint64_t payload_hash);
/* Fold one record checksum into the seal chain. */
uint64_t sr_dlog_chain(uint64_t chain, uint64_t checksum);
/* Data length of a record's plaintext (payload_len minus the tag). */
static inline uint32_t sr_dlog_plain_len(const struct dl_rec *r, int encrypted)
{
	return encrypted && r->payload_len ? r->payload_len - DL_TAG : r->payload_len;
}

/* Options: copy a caller's struct of any version over defaults, check the key. */
int sr_dlog_opts_copy(siterec_dlog_options *out, const siterec_dlog_options *in);
int sr_dlog_opts_key(const siterec_dlog_options *o);

/* ---- writer (writer.c) ---- */
enum { DL_W_OPEN = 0, DL_W_SEALED = 1, DL_W_BROKEN = 2 };

struct siterec_dlog {
	int fd;
	char *path;                    /* for messages */
	int state;
	uint32_t flags;
	uint32_t block_size;
	size_t buffer_size;
	uint64_t disk_size;
	uint8_t disk_id[16];
	uint64_t first_seq;
	uint64_t next_seq;
	uint64_t records;              /* in this file, not counting the seal */
	uint64_t data_bytes;
	uint64_t chain;
	uint64_t seal_seq;             /* 0: the seal gets the last record's seq */
	uint64_t file_off;             /* bytes handed to the kernel */
	uint8_t *buf;                  /* append buffer (buffer_size) */
	size_t buf_len;
	uint8_t *scratch;              /* ciphertext of large payloads, lazily */
	uint8_t nonce[8];              /* nonce prefix of this writing session */
	struct dl_crypto crypto;
};

struct dl_geom {
	uint64_t disk_size;
	uint8_t disk_id[16];
	uint32_t block_size;
	uint64_t first_seq;
};

/* Create a log file with the given geometry; opts gives flags, buffer and key. */
int sr_dlog_create_geom(siterec_dlog **out, const char *path, const struct dl_geom *g,
                        const siterec_dlog_options *opts);
/* Append one record (type DATA or ZERO) without the public validation. */
int sr_dlog_emit(siterec_dlog *w, uint16_t type, uint64_t offset, uint64_t length,
                 const uint8_t *data);
/* Validate an append's range against the writer (state, alignment, disk end). */
int sr_dlog_check_append(siterec_dlog *w, uint64_t offset, uint64_t length);
/* Write the buffered records to the file (no sync): the journal calls it after
 * every append so that a crash of the process loses no record. */
int sr_dlog_write_out(siterec_dlog *w);

/* ---- reader (reader.c) ---- */
struct siterec_dlog_reader {
	int fd;
	int own_fd;
	char *path;
	uint64_t file_size;
	struct dl_header h;
	int encrypted;
	struct dl_crypto crypto;
	uint8_t *buf;                  /* cap bytes */
	size_t cap;                    /* DL_READ_CHUNK, or the file size when smaller */
	uint64_t buf_off;
	size_t buf_len;
	uint64_t pos;                  /* file offset of the next record */
	uint64_t rec_pos;              /* file offset of the record last returned */
	uint64_t last_seq;
	uint64_t records;
	uint64_t data_bytes;
	uint64_t chain;
	uint64_t seal_seq;
	uint64_t max_end;              /* highest offset + length of the records read */
	int sealed;
	int torn;
	int done;
	int err;                       /* sticky error code */
};

/* Open a reader on an open fd (not closed by the reader unless own_fd). */
int sr_dlog_reader_open_fd(siterec_dlog_reader **out, int fd, int own_fd, const char *path,
                           const siterec_dlog_options *opts);
/* Start over at the first record. */
void sr_dlog_reader_rewind(siterec_dlog_reader *r);
/* Read all remaining records: 0 whole, SITEREC_ETRUNCATED torn, or an error. */
int sr_dlog_reader_drain(siterec_dlog_reader *r);
/* Decrypt (when encrypted) a record held at rec (header + payload, checksum already
 * verified) with nonce index `index`, and point *plain at its plaintext; decryption
 * overwrites the header. SITEREC_EAUTH with a message on a bad tag. */
int sr_dlog_open_payload(struct dl_crypto *c, int encrypted, uint32_t index, uint8_t *rec,
                         const struct dl_rec *h, const uint8_t **plain, const char *path,
                         uint64_t file_off);

#endif
