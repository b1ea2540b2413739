/** @file
 * libsiterec — storage: where replica disks, their snapshots and the replication's
 * small metadata documents live. One interface, targets chosen by URL:
 *
 *  - file:///DIR   a plain directory (the embedded default, and the secondary-site
 *                  case): one sparse file per replica disk, snapshots as reflinks
 *                  where the file system offers them, else copies of only the
 *                  extents changed since the previous snapshot; documents replaced
 *                  crash-safely; the lease a lock file with owner and expiry;
 *  - https://ACCOUNT.blob.core.windows.net/CONTAINER (and Azurite at
 *                  http://127.0.0.1:PORT/devstoreaccount1/CONTAINER, path style):
 *                  page blobs for disks (Put Page of at most 4 MiB, 512-aligned;
 *                  Clear Pages for zeros), block blobs for documents (If-Match),
 *                  blob snapshots, blob leases; Shared Key or SAS; requests in
 *                  flight through the libcurl multi interface; retries with
 *                  back-off on 408/429/500/503 and connection errors. Snapshot ids
 *                  are the service's timestamps with ':' written as '_'.
 *
 * Names are relative object names: 1 to 200 characters of [A-Za-z0-9._-/], not
 * starting with '/' or '.', no "..", no "//" (SITEREC_EINVAL otherwise). Disks and
 * documents share one name space. Disk offsets and lengths of writes are multiples
 * of 512 (page blob pages); disk sizes are rounded up to 512 at creation.
 *
 * Threading: one siterec_store per thread at a time; a store writer belongs to the
 * thread that uses its store. After fork() only one of the two processes may use
 * a store opened before it (the other opens its own): they would share its
 * kept-alive connections, and each could read the other's responses.
 */
#ifndef SITEREC_STORE_H
#define SITEREC_STORE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A storage target (file:// directory or Azure Blob container). */
typedef struct siterec_store siterec_store;
/** A queued writer on one disk of a store. */
typedef struct siterec_store_writer siterec_store_writer;

/** Store flags (siterec_store_options.flags). */
#define SITEREC_STORE_ALLOW_HTTP 0x1u   /**< allow plain http:// (loopback emulators only) */
#define SITEREC_STORE_CONTENT_MD5 0x2u  /**< send a transactional Content-MD5 with each page write */
#define SITEREC_STORE_CREATE 0x4u       /**< create the directory / container if missing */

#define SITEREC_STORE_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_store_open(): credentials, TLS, limits. */
typedef struct siterec_store_options {
	unsigned int version;        /**< SITEREC_STORE_OPTIONS_VERSION */
	uint32_t flags;              /**< SITEREC_STORE_* */
	const char *account_key;     /**< Azure Shared Key (base64), or NULL; copied, wiped on free */
	const char *sas_token;       /**< Azure SAS query string, or NULL; copied, wiped on free */
	const char *ca_file;         /**< PEM bundle of trusted CAs for HTTPS, or NULL (system) */
	uint32_t max_inflight;       /**< requests in flight; 0 = 8 */
	uint32_t timeout_ms;         /**< per request; 0 = 60000 */
	uint64_t bandwidth_limit;    /**< bytes/s sent by all requests of the store together; 0 = unlimited */
	uint32_t max_retries;        /**< retries of a failed request; 0 = 6 */
	uint32_t reserved; /**< 0 */
	siterec_progress_fn progress;  /**< bytes done of bytes to do, for every long call; non-zero cancels */
	void *progress_payload; /**< passed to progress */
} siterec_store_options;

#define SITEREC_STORE_OPTIONS_INIT { SITEREC_STORE_OPTIONS_VERSION, 0, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_store_options_init(siterec_store_options *opts, unsigned int version);

/**
 * Open the target at url (opts may be NULL). file:// URLs need an absolute path;
 * the directory must exist unless SITEREC_STORE_CREATE is given. Errors:
 * SITEREC_EINVAL (malformed URL), SITEREC_ENOTFOUND, SITEREC_EUNSUPPORTED (a scheme
 * or target this build does not serve), SITEREC_EIO. @since 0.1
 */
SITEREC_API int siterec_store_open(siterec_store **out, const char *url,
                                   const siterec_store_options *opts);

/**
 * NULL accepted. Credentials are wiped. One limit: libcurl keeps its own copies
 * of request URLs, which carry the SAS token, and frees them without wiping; a
 * SAS may therefore stay in freed heap memory of the process (a Shared Key
 * never does: only signatures travel). @since 0.1
 */
SITEREC_API void siterec_store_free(siterec_store *store);

/* ---- replica disks -------------------------------------------------------- */

/**
 * Create a replica disk of size bytes (rounded up to 512), all zeros.
 * SITEREC_EEXISTS when the name is taken. @since 0.1
 */
SITEREC_API int siterec_store_disk_create(siterec_store *store, const char *name, uint64_t size);

/** Size in bytes of a disk (or of one of its snapshots when snapshot != NULL). @since 0.1 */
SITEREC_API int siterec_store_disk_size(siterec_store *store, const char *name,
                                        const char *snapshot, uint64_t *size);

#define SITEREC_STORE_DELETE_SNAPSHOTS 0x1u /**< also delete the disk's snapshots */

/**
 * Delete a disk. A disk that has snapshots is only deleted with
 * SITEREC_STORE_DELETE_SNAPSHOTS (else SITEREC_EBUSY). A disk under someone
 * else's lease: SITEREC_ELEASE. @since 0.1
 */
SITEREC_API int siterec_store_disk_delete(siterec_store *store, const char *name, uint32_t flags,
                                          const char *lease_id);

/**
 * Read length bytes at offset of a disk, or of its snapshot when snapshot != NULL.
 * Errors: SITEREC_ENOTFOUND, SITEREC_ERANGE. @since 0.1
 */
SITEREC_API int siterec_store_read(siterec_store *store, const char *name, const char *snapshot,
                                   void *buf, size_t length, uint64_t offset);

/**
 * Call cb for the extents of [offset, offset+length) that may hold data (others
 * read as zeros), merged and in order; length 0 means to the end of the disk.
 * @since 0.1
 */
SITEREC_API int siterec_store_ranges(siterec_store *store, const char *name, const char *snapshot,
                                     uint64_t offset, uint64_t length, siterec_extent_fn cb,
                                     void *payload);

/**
 * Open a writer on a disk: writes are queued, adjacent ones coalesced up to
 * 4 MiB a request, all-zero ones sent as clears, up to max_inflight in flight.
 * lease_id: the lease the writer holds on the disk, or NULL when it is not leased.
 * @since 0.1
 */
SITEREC_API int siterec_store_writer_open(siterec_store_writer **out, siterec_store *store,
                                          const char *name, const char *lease_id);

/**
 * Queue a write of length bytes at offset (both multiples of 512, inside the disk;
 * the data is copied). May block while the queue is full. Errors: SITEREC_EALIGN,
 * SITEREC_ERANGE, and the error of an earlier write that failed. @since 0.1
 */
SITEREC_API int siterec_store_writer_write(siterec_store_writer *w, const void *buf, size_t length,
                                           uint64_t offset);

/** siterec_write_fn adaptor (payload: the writer): ship a delta log with siterec_dlog_apply(). @since 0.1 */
SITEREC_API int siterec_store_writer_write_cb(const void *buf, size_t length, uint64_t offset,
                                              void *writer);

/** Queue a clear of [offset, offset+length) to zeros (multiples of 512). @since 0.1 */
SITEREC_API int siterec_store_writer_zero(siterec_store_writer *w, uint64_t offset, uint64_t length);

/**
 * Send everything queued and wait; returns the first error of any write. After
 * success every write is durable on the target. The writer can go on afterwards.
 * @since 0.1
 */
SITEREC_API int siterec_store_writer_finish(siterec_store_writer *w);

/**
 * Let the writer merge writes separated by gaps of at most max_gap bytes (a
 * multiple of 512) into one request of at most 4 MiB, filling the gaps with the
 * disk's current content, read in one request per merged run: many small
 * scattered writes then cost two requests per run instead of one per write.
 * Writes (and zeros) must then come in ascending order without overlap
 * (SITEREC_EINVAL from one that goes back; it is not queued); merging stops at
 * a finish. Worth it where a request costs more than moving 2 x max_gap bytes
 * (Azure page blobs: 64 to 256 KiB); 0, the default, turns it off. A disk
 * written by someone else meanwhile in a gap would have that write undone:
 * use it on a disk the writer owns (leased). SITEREC_EINVAL for a bad max_gap
 * or a call after the first write. @since 0.1
 */
SITEREC_API int siterec_store_writer_set_merge(siterec_store_writer *w, uint64_t max_gap);

/** Free a writer; writes not finished are abandoned (may or may not have landed). NULL accepted. @since 0.1 */
SITEREC_API void siterec_store_writer_free(siterec_store_writer *w);

/* ---- resumable uploads ---------------------------------------------------- */

#define SITEREC_STORE_UPLOAD_RESUME 0x1u /**< continue this disk's recorded upload (or start one) */
#define SITEREC_STORE_UPLOAD_VHD 0x2u    /**< make the disk an attachable fixed VHD (see below) */

#define SITEREC_STORE_UPLOAD_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_store_upload(). */
typedef struct siterec_store_upload_options {
	unsigned int version;        /**< SITEREC_STORE_UPLOAD_OPTIONS_VERSION */
	uint32_t flags;              /**< SITEREC_STORE_UPLOAD_* */
	const char *source_id;       /**< names the source's content (e.g. path, size, mtime), at most 1024 bytes; NULL = "" */
	const char *lease_id;        /**< lease held on the disk, or NULL */
	uint64_t checkpoint_bytes;   /**< record progress after this many bytes read; 0 = 256 MiB */
} siterec_store_upload_options;

#define SITEREC_STORE_UPLOAD_OPTIONS_INIT { SITEREC_STORE_UPLOAD_OPTIONS_VERSION, 0, NULL, NULL, 0 } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_store_upload_options_init(siterec_store_upload_options *opts,
                                                  unsigned int version);

#define SITEREC_STORE_UPLOAD_STATS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** What an upload did (caller sets version). */
typedef struct siterec_store_upload_stats {
	unsigned int version;        /**< set by the caller: SITEREC_STORE_UPLOAD_STATS_VERSION */
	uint32_t already_complete;   /**< 1: the record said done; nothing was sent */
	uint64_t resumed_from;       /**< offset the upload started at (0 unless resumed) */
	uint64_t bytes_read;         /**< bytes read from the source by this call */
	uint64_t bytes_sent;         /**< bytes of data sent by this call (all-zero pages are not) */
} siterec_store_upload_stats;

/**
 * Upload a source of size bytes (1 .. 2^50; SITEREC_ERANGE above) as the new disk
 * `name`. Only runs that status reports allocated are read (status NULL: all),
 * all-zero 512-byte pages are not sent (the disk is fresh), up to the store's
 * max_inflight requests are in flight, and the store's progress callback sees the
 * source offset reached of size (non-zero cancels: SITEREC_EABORTED with its code;
 * the upload can be resumed). payload goes to read and status (siterec_disk_read_cb
 * and siterec_disk_block_status_cb with a siterec_disk * upload an image); a
 * non-zero return of either aborts the same way.
 *
 * The upload keeps a record in the document "NAME.upload" (so NAME has at most 193
 * characters; format in doc/formats.md), created before the disk and replaced with
 * If-Match whenever checkpoint_bytes have been read from the source since the last
 * one, once everything below the offset reached is durable; marked complete at the
 * end. After a crash, a cancel or a network failure, calling again with
 * SITEREC_STORE_UPLOAD_RESUME sends only what is past the recorded offset (a record
 * whose disk is missing starts over at 0); on a complete record it does nothing
 * (stats->already_complete). Without RESUME an existing disk or record is
 * SITEREC_EEXISTS; so is a disk without a record, also with RESUME. A record for
 * another source_id, size or VHD flag: SITEREC_ECONFLICT (so is a second uploader
 * racing on the same record: the one whose If-Match fails stops). A damaged record:
 * SITEREC_ECORRUPT (delete it to start over). The disk is created unleased: lease_id
 * is for resuming onto a disk the caller has leased since.
 *
 * SITEREC_STORE_UPLOAD_VHD: the disk gets a data part of size rounded up to a whole
 * MiB followed by a fixed VHD footer (Hyper-V creator; its disk id derived from
 * name, source_id and size, so every run writes the same), the shape Azure
 * attaches as a managed disk; siterec_store_disk_size() then reports data part +
 * 512. The footer is written last, before the record is marked complete.
 * stats may be NULL; it is filled on success and on failures after the arguments
 * were checked. @since 0.1
 */
SITEREC_API int siterec_store_upload(siterec_store *store, const char *name, uint64_t size,
                                     siterec_read_fn read, siterec_block_status_fn status,
                                     void *payload, const siterec_store_upload_options *opts,
                                     siterec_store_upload_stats *stats);

/* ---- snapshots ------------------------------------------------------------ */

/** Largest snapshot id, with its terminating NUL. */
#define SITEREC_STORE_ID_MAX 64

/**
 * Take a point-in-time snapshot of a disk (the basis of a recovery point); its id
 * (NUL-terminated; opaque: a decimal counter on file://, a timestamp on Azure) goes
 * to snapshot_out, which must hold SITEREC_STORE_ID_MAX bytes (SITEREC_EINVAL,
 * checked before anything is done). @since 0.1
 */
SITEREC_API int siterec_store_snapshot(siterec_store *store, const char *name, char *snapshot_out,
                                       size_t cap);

/** Delete one snapshot of a disk. @since 0.1 */
SITEREC_API int siterec_store_snapshot_delete(siterec_store *store, const char *name,
                                              const char *snapshot);

/* ---- metadata documents (compare-and-swap) -------------------------------- */

/** Largest ETag, with its terminating NUL. */
#define SITEREC_STORE_ETAG_MAX 96

/**
 * Store a small document (at most 4 MiB). if_match: NULL writes unconditionally;
 * "" (empty) only creates (SITEREC_ECONFLICT if it exists); an ETag replaces only
 * that version (SITEREC_ECONFLICT otherwise). The new ETag goes to etag_out (may
 * be NULL). Replacement is atomic: a reader sees the old or the new document.
 * @since 0.1
 */
SITEREC_API int siterec_store_doc_put(siterec_store *store, const char *name, const void *data,
                                      size_t length, const char *if_match, char *etag_out,
                                      size_t etag_cap);

/**
 * Read a document: *data (freed with siterec_free()) and *length; its ETag to
 * etag_out (may be NULL). SITEREC_ENOTFOUND when absent. @since 0.1
 */
SITEREC_API int siterec_store_doc_get(siterec_store *store, const char *name, void **data,
                                      size_t *length, char *etag_out, size_t etag_cap);

/** Delete a document (if_match as for put; NULL: unconditionally). @since 0.1 */
SITEREC_API int siterec_store_doc_delete(siterec_store *store, const char *name,
                                         const char *if_match);

/* ---- leases --------------------------------------------------------------- */

/** Largest lease id, with its terminating NUL. */
#define SITEREC_STORE_LEASE_MAX 64

/**
 * Take an exclusive writer lease on a disk for duration_s seconds (15..60), or 0
 * for no expiry, so that two agents never write one replica. proposed_id may be
 * NULL (a random id is made). The id goes to lease_out. SITEREC_ELEASE when someone
 * else holds an unexpired lease; SITEREC_EINVAL for a document (documents are
 * guarded by If-Match instead). Writers and deletes of a leased disk need its
 * lease id. @since 0.1
 */
SITEREC_API int siterec_store_lease_acquire(siterec_store *store, const char *name,
                                            uint32_t duration_s, const char *proposed_id,
                                            char *lease_out, size_t cap);

/** Renew a lease before it expires (SITEREC_ELEASE if it was lost). @since 0.1 */
SITEREC_API int siterec_store_lease_renew(siterec_store *store, const char *name,
                                          const char *lease_id);

/** Release a lease (SITEREC_ELEASE if lease_id does not hold it). @since 0.1 */
SITEREC_API int siterec_store_lease_release(siterec_store *store, const char *name,
                                            const char *lease_id);

/**
 * Break the lease on a disk at once, whoever holds it (a failover taking over
 * the replicas of a primary that may still be alive): the holder's next write,
 * renewal or release fails with SITEREC_ELEASE, and the disk can be leased
 * again at once. A disk with no active lease: success (nothing to break).
 * SITEREC_ENOTFOUND when the disk does not exist, SITEREC_EINVAL for a
 * document. @since 0.1
 */
SITEREC_API int siterec_store_lease_break(siterec_store *store, const char *name);

/* ---- listing -------------------------------------------------------------- */

/** Kinds of listed objects. */
typedef enum siterec_store_kind {
	SITEREC_STORE_KIND_DISK = 1,
	SITEREC_STORE_KIND_SNAPSHOT = 2,   /**< snapshot is set, name is its disk */
	SITEREC_STORE_KIND_DOC = 3
} siterec_store_kind;

/** One listed object: size in bytes; snapshot NULL except for snapshots. */
typedef int (*siterec_store_list_fn)(const char *name, int kind, uint64_t size,
                                     const char *snapshot, void *payload);

/** List what the target holds under prefix (NULL or "": everything), in name order; a disk's snapshots oldest first. @since 0.1 */
SITEREC_API int siterec_store_list(siterec_store *store, const char *prefix,
                                   siterec_store_list_fn cb, void *payload);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_STORE_H */
