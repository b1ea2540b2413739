/** @file
 * libsiterec — delta log: an append-only per-disk log of changed blocks.
 *
 * A log file has a header (format version, disk id and size, block size, first
 * sequence number) followed by records, each carrying a sequence number, the disk
 * offset and length, the data (or a "zero" marker for all-zero data), and a
 * checksum; a sealed log ends with a seal record that counts and chains the
 * records before it. The exact bytes are in doc/formats.md.
 *
 * Filling a log:
 *  - journal: siterec_dlog_append() for each write as it happens; the file is
 *    crash-consistent at every record, keeps the write order, and a record is
 *    durable once siterec_dlog_sync() returned (or at once with
 *    SITEREC_DLOG_SYNC_EACH);
 *  - from a tracker: siterec_dlog_append_frozen() reads the frozen epoch's extents
 *    from a quiesced or snapshotted source.
 * Then seal, or rotate: seal and go on in a new file with the next sequence number,
 * so writes continue while the sealed log ships.
 *
 * Reading verifies every checksum. In an unsealed log a record cut short by a
 * crash at the tail (a torn tail) ends the log and is reported; damage anywhere
 * else, and any damage in a sealed log, is SITEREC_ECORRUPT.
 *
 * Records are sector-granular: offsets and lengths are multiples of 512 bytes.
 *
 * Optional encryption: AES-256-GCM of each record's data with a caller's 32-byte
 * key, the record's header authenticated with it; a wrong key is reported at open
 * (SITEREC_EAUTH) and tampering at the record (SITEREC_EAUTH).
 */
#ifndef SITEREC_DLOG_H
#define SITEREC_DLOG_H

#include "common.h"
#include "tracker.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Writer of one log file. One thread at a time. */
typedef struct siterec_dlog siterec_dlog;
/** Sequential reader of one log file. One thread at a time. */
typedef struct siterec_dlog_reader siterec_dlog_reader;

#define SITEREC_DLOG_SECTOR 512u /**< records cover whole 512-byte sectors */
/** Largest data length of one record. Longer appends are split. */
#define SITEREC_DLOG_MAX_RECORD 4194304u
#define SITEREC_DLOG_KEY_SIZE 32u /**< bytes of an AES-256-GCM log key */

/** Writer flags (siterec_dlog_options.flags). */
#define SITEREC_DLOG_SYNC_EACH 0x1u   /**< fdatasync after every append */
#define SITEREC_DLOG_DETECT_ZERO 0x2u /**< store all-zero data of append() as zero records */

#define SITEREC_DLOG_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of a delta log (create, reopen, read, apply). */
typedef struct siterec_dlog_options {
	unsigned int version;     /**< SITEREC_DLOG_OPTIONS_VERSION */
	uint32_t flags;           /**< SITEREC_DLOG_* */
	uint64_t disk_size;       /**< writer: size of the disk the log belongs to (required) */
	uint8_t disk_id[16];      /**< writer: identifier of the disk (any 16 bytes) */
	uint32_t block_size;      /**< writer: tracking granularity recorded in the header; 0 = 4096 */
	uint32_t buffer_size;     /**< writer: append buffer; 0 = 1 MiB */
	uint64_t first_seq;       /**< writer: sequence number of the first record; 0 = 1 */
	const uint8_t *key;       /**< AES-256-GCM key of SITEREC_DLOG_KEY_SIZE bytes, or NULL */
	size_t key_size;          /**< 0 or SITEREC_DLOG_KEY_SIZE */
} siterec_dlog_options;

#define SITEREC_DLOG_OPTIONS_INIT { SITEREC_DLOG_OPTIONS_VERSION, 0, 0, {0}, 0, 0, 0, NULL, 0 } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_dlog_options_init(siterec_dlog_options *opts, unsigned int version);

/**
 * Create a new log file at path (SITEREC_EEXISTS if it exists). The header is
 * written and synced, and the directory synced, before this returns. disk_size
 * must be a multiple of 512 (SITEREC_EALIGN). @since 0.1
 */
SITEREC_API int siterec_dlog_create(siterec_dlog **out, const char *path,
                                    const siterec_dlog_options *opts);

/**
 * Reopen an unsealed log to go on appending after a crash: the records are
 * verified, a torn tail is cut off (the file truncated after the last whole
 * record), and appending continues with the next sequence number. Only flags,
 * buffer_size, key and key_size of opts are used (the rest comes from the file).
 * torn_out (may be NULL) is set to 1 when a tail was cut. Errors: SITEREC_ESTATE
 * (log is sealed), SITEREC_ECORRUPT, SITEREC_EAUTH (wrong key), SITEREC_EBUSY (a
 * writer has it open). @since 0.1
 */
SITEREC_API int siterec_dlog_reopen(siterec_dlog **out, const char *path,
                                    const siterec_dlog_options *opts, int *torn_out);

/**
 * Append one write of `length` bytes (multiple of 512, > 0) at disk `offset`
 * (multiple of 512, inside the disk). Writes longer than SITEREC_DLOG_MAX_RECORD
 * become several records. seq_out (may be NULL) gets the sequence number of the
 * (last) record. The record is buffered: durable after siterec_dlog_sync().
 * Errors: SITEREC_EINVAL, SITEREC_EALIGN, SITEREC_ERANGE, SITEREC_ESTATE (sealed),
 * SITEREC_EIO/ENOSPC (the log is then unusable; reopen it). @since 0.1
 */
SITEREC_API int siterec_dlog_append(siterec_dlog *log, uint64_t offset, const void *data,
                                    size_t length, uint64_t *seq_out);

/** Append a record saying [offset, offset+length) is now all zeros (no data stored). @since 0.1 */
SITEREC_API int siterec_dlog_append_zero(siterec_dlog *log, uint64_t offset, uint64_t length,
                                         uint64_t *seq_out);

/**
 * Append the frozen epoch of a tracker (siterec_tracker_switch() done, its disk
 * size equal to the log's): each extent is read through `read` in pieces of at
 * most SITEREC_DLOG_MAX_RECORD; all-zero pieces become zero records. The tracker's
 * frozen set is left as it is (commit it once the log has shipped). Extents of a
 * tracker with block size < 512 are widened to sectors. @since 0.1
 */
SITEREC_API int siterec_dlog_append_frozen(siterec_dlog *log, siterec_tracker *tracker,
                                           siterec_read_fn read, void *read_payload);

/** Same, reading the source with pread() on fd. @since 0.1 */
SITEREC_API int siterec_dlog_append_frozen_fd(siterec_dlog *log, siterec_tracker *tracker, int fd);

/** Write buffered records and fdatasync the file. @since 0.1 */
SITEREC_API int siterec_dlog_sync(siterec_dlog *log);

/**
 * Write the seal record and sync. Afterwards appends fail with SITEREC_ESTATE;
 * the handle must still be freed. @since 0.1
 */
SITEREC_API int siterec_dlog_seal(siterec_dlog *log);

/**
 * Seal the current file and go on in a new one at next_path (created like
 * siterec_dlog_create(), same disk, key and flags), numbering on from the last
 * sequence. On failure to create next_path the current log is still sealed and the
 * handle refuses appends; a rotate on a handle whose file is already sealed just
 * opens next_path. @since 0.1
 */
SITEREC_API int siterec_dlog_rotate(siterec_dlog *log, const char *next_path);

/** Sequence number the next record will get. @since 0.1 */
SITEREC_API uint64_t siterec_dlog_next_seq(const siterec_dlog *log);

/**
 * Close the file and free the handle. Buffered records are written (not synced)
 * first; an unsealed log stays unsealed and can be reopened. NULL accepted. @since 0.1
 */
SITEREC_API void siterec_dlog_free(siterec_dlog *log);

/* ---- Reading ------------------------------------------------------------- */

#define SITEREC_DLOG_INFO_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Header facts and reading progress of a delta log (siterec_dlog_reader_info()). */
typedef struct siterec_dlog_info {
	unsigned int version;     /**< set by the caller: SITEREC_DLOG_INFO_VERSION */
	uint32_t format_version;  /**< of the file */
	uint64_t disk_size; /**< bytes of the disk the log describes */
	uint8_t disk_id[16]; /**< id of that disk (as given when the log was created) */
	uint32_t block_size; /**< bytes of the blocks the log was made from (tracker granularity) */
	uint32_t encrypted;       /**< 1 when payloads are AES-256-GCM encrypted */
	uint64_t first_seq;       /**< sequence of the first record the header promises */
	uint64_t last_seq;        /**< of the last record read so far (first_seq - 1 if none);
	                               once sealed, the seal's: the last sequence number the
	                               log covers (for a coalesced log, its inputs' last) */
	uint64_t records;         /**< records read so far (not counting the seal) */
	uint64_t data_bytes;      /**< disk bytes covered by those records */
	uint64_t file_bytes;      /**< size of the valid part of the file read so far */
	uint32_t sealed;          /**< 1 once the seal record was read and checked */
	uint32_t torn;            /**< 1 if the reader stopped at a torn tail */
} siterec_dlog_info;

/** One record as returned by siterec_dlog_reader_next(). */
typedef struct siterec_dlog_record {
	uint64_t seq; /**< the record's sequence number */
	uint64_t offset;          /**< disk offset in bytes */
	uint64_t length;          /**< disk bytes covered */
	uint32_t zero;            /**< 1: the range is all zeros and data is NULL */
	uint32_t reserved; /**< 0 */
	const void *data;         /**< length bytes, valid until the next reader call */
} siterec_dlog_record;

/**
 * Open a log for reading. Only key and key_size of opts are used (opts may be NULL
 * for an unencrypted log). The header is checked here: SITEREC_ECORRUPT (bad
 * magic or checksum), SITEREC_EVERSION (newer format), SITEREC_EAUTH (wrong or
 * missing key), SITEREC_EINVAL (a key for an unencrypted log). @since 0.1
 */
SITEREC_API int siterec_dlog_reader_open(siterec_dlog_reader **out, const char *path,
                                         const siterec_dlog_options *opts);

/**
 * Read the next record into rec. Returns 1 when a record was read, 0 at the end of
 * the log (sealed end, end of an unsealed file, or a torn tail: see
 * siterec_dlog_reader_info()), or a negative code: SITEREC_ECORRUPT (damage other
 * than a torn tail, or the seal does not match the records), SITEREC_EAUTH
 * (decryption failed: tampering). @since 0.1
 */
SITEREC_API int siterec_dlog_reader_next(siterec_dlog_reader *r, siterec_dlog_record *rec);

/** Header facts and what was read so far (caller sets info->version). @since 0.1 */
SITEREC_API int siterec_dlog_reader_info(siterec_dlog_reader *r, siterec_dlog_info *info);

/** NULL accepted. @since 0.1 */
SITEREC_API void siterec_dlog_reader_free(siterec_dlog_reader *r);

/**
 * Read and check a whole log; fill info (may be NULL). Returns 0 for a log that
 * is whole (sealed, or unsealed without a torn tail), SITEREC_ETRUNCATED for an
 * unsealed log with a torn tail (info says where the valid part ends), or the
 * reader's error. @since 0.1
 */
SITEREC_API int siterec_dlog_verify(const char *path, const siterec_dlog_options *opts,
                                    siterec_dlog_info *info);

/* ---- Coalesce and apply -------------------------------------------------- */

#define SITEREC_DLOG_APPLY_ALLOW_TORN 0x1u  /**< apply an unsealed log's whole records up to a torn tail */
#define SITEREC_DLOG_APPLY_REQUIRE_SEALED 0x2u /**< refuse unsealed logs (SITEREC_ESTATE) */
#define SITEREC_DLOG_APPLY_NO_SYNC 0x4u  /**< apply_fd: skip the final fdatasync */

/**
 * Merge sealed or unsealed-but-whole logs of one disk (same disk id and size,
 * same key), given in any order, into a new sealed log at output_path: every byte
 * changed by any record appears once with its final content (the record with the
 * highest sequence number wins), in ascending offset order, adjacent ranges
 * joined up to SITEREC_DLOG_MAX_RECORD, all-zero data as zero records. The output
 * covers the inputs' whole sequence range (first_seq = lowest, its records
 * numbered from there; its seal carries the highest: siterec_dlog_info.last_seq).
 * out_opts gives flags, buffer and key of the output (may be
 * NULL: unencrypted); in_opts the key of the inputs (may be NULL). Inputs must
 * not overlap in sequence numbers (SITEREC_EINVAL). Inputs are verified completely
 * before the output is created. @since 0.1
 */
SITEREC_API int siterec_dlog_coalesce(const char *const *input_paths, size_t n_inputs,
                                      const char *output_path,
                                      const siterec_dlog_options *in_opts,
                                      const siterec_dlog_options *out_opts);

/**
 * Apply a log to a replica through `write` (and nothing else). The whole log is
 * verified before the first write, so a damaged log changes nothing. Applying the
 * same log again gives the same image (records are absolute). Unsealed logs are
 * applied when whole; with a torn tail only with SITEREC_DLOG_APPLY_ALLOW_TORN
 * (else SITEREC_ETRUNCATED). `flags`: SITEREC_DLOG_APPLY_*. applied_seq (may be
 * NULL) receives the last sequence number applied. @since 0.1
 */
SITEREC_API int siterec_dlog_apply(const char *path, const siterec_dlog_options *opts,
                                   uint32_t flags, siterec_write_fn write, void *write_payload,
                                   uint64_t *applied_seq);

/**
 * Same onto a raw replica image open for writing at fd (size >= the log's disk
 * size): pwrite for data records, zeroes (hole punching where the file system
 * allows) for zero records, then fdatasync unless SITEREC_DLOG_APPLY_NO_SYNC. @since 0.1
 */
SITEREC_API int siterec_dlog_apply_fd(const char *path, const siterec_dlog_options *opts,
                                      uint32_t flags, int fd, uint64_t *applied_seq);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_DLOG_H */
