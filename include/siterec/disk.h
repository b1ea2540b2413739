/** @file
 * libsiterec — disk images: read VHDX and VHD, write the fixed VHD Azure attaches.
 *
 * One handle over several formats, detected from the file or forced:
 *  - raw images (read and write);
 *  - VHD fixed (read and write: the data, then a 512-byte footer), VHD dynamic
 *    (read only);
 *  - VHDX fixed, dynamic and differencing (read only; the parent is found through
 *    the parent locator, relative path first, then absolute, through chains of
 *    several levels). Writing a dynamic or differencing VHDX is not supported
 *    (SITEREC_EUNSUPPORTED).
 * Unallocated blocks read as zeros and are reported by siterec_disk_block_status()
 * so callers can skip them. A VHDX whose log holds entries that were never
 * applied is refused (SITEREC_EDISK, saying so) unless SITEREC_DISK_REPLAY_LOG
 * is given, in which case the log is replayed into an in-memory overlay: the view
 * is consistent and the file is not changed.
 *
 * A replica disk that Azure can attach is a fixed VHD whose data part is a whole
 * number of MiB: siterec_disk_create() with SITEREC_DISK_FORMAT_VHD rounds the size
 * up accordingly and writes a footer with geometry, checksum, unique id and time.
 *
 * One handle, one thread at a time.
 */
#ifndef SITEREC_DISK_H
#define SITEREC_DISK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An open disk image (disk.h). */
typedef struct siterec_disk siterec_disk;

/** Container formats (siterec_disk_options.format, siterec_disk_info.format). */
typedef enum siterec_disk_format {
	SITEREC_DISK_FORMAT_AUTO = 0, /**< detect from the file (open only) */
	SITEREC_DISK_FORMAT_RAW = 1,
	SITEREC_DISK_FORMAT_VHD = 2,
	SITEREC_DISK_FORMAT_VHDX = 3
} siterec_disk_format;

/** Allocation kinds (siterec_disk_info.kind). */
typedef enum siterec_disk_kind {
	SITEREC_DISK_KIND_FIXED = 1,       /**< raw images count as fixed */
	SITEREC_DISK_KIND_DYNAMIC = 2,
	SITEREC_DISK_KIND_DIFFERENCING = 3
} siterec_disk_kind;

/** Open flags. */
#define SITEREC_DISK_OPEN_WRITE 0x1u  /**< open for writing (raw and fixed VHD only) */
#define SITEREC_DISK_REPLAY_LOG 0x2u  /**< VHDX: replay an unapplied log into a read-only view */

#define SITEREC_DISK_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_disk_open(). */
typedef struct siterec_disk_options {
	unsigned int version;     /**< SITEREC_DISK_OPTIONS_VERSION */
	uint32_t format;          /**< siterec_disk_format; AUTO detects */
	uint32_t flags;           /**< SITEREC_DISK_OPEN_WRITE, SITEREC_DISK_REPLAY_LOG */
	uint32_t max_chain;       /**< deepest differencing chain accepted; 0 = 16 */
} siterec_disk_options;

#define SITEREC_DISK_OPTIONS_INIT { SITEREC_DISK_OPTIONS_VERSION, 0, 0, 0 } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_disk_options_init(siterec_disk_options *opts, unsigned int version);

/**
 * Open the image at path (opts may be NULL: detect, read only). A file that is no
 * VHD or VHDX is read as raw when detecting. Errors: SITEREC_ENOTFOUND,
 * SITEREC_EDISK (damaged or unsupported image, broken or looping parent chain,
 * parent id mismatch, unapplied VHDX log; the message says which),
 * SITEREC_EUNSUPPORTED (write access to a format that cannot be written),
 * SITEREC_EVERSION, SITEREC_EIO. @since 0.1
 */
SITEREC_API int siterec_disk_open(siterec_disk **out, const char *path,
                                  const siterec_disk_options *opts);

/** Close the image (and its parents). NULL accepted. @since 0.1 */
SITEREC_API void siterec_disk_free(siterec_disk *disk);

#define SITEREC_DISK_INFO_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Facts about an image (siterec_disk_info_get()). */
typedef struct siterec_disk_info {
	unsigned int version;       /**< set by the caller: SITEREC_DISK_INFO_VERSION */
	uint32_t format;            /**< siterec_disk_format */
	uint32_t kind;              /**< siterec_disk_kind */
	uint32_t logical_sector;    /**< bytes (512 or 4096) */
	uint32_t physical_sector;   /**< bytes */
	uint32_t block_size;        /**< allocation unit of dynamic/differencing formats, else 0 */
	uint64_t virtual_size;      /**< bytes the guest sees */
	uint64_t file_size;         /**< bytes of this file (not counting parents) */
	uint8_t disk_id[16];        /**< VHDX: virtual disk id; VHD: footer unique id; raw: zeros */
	uint32_t generation_hint;   /**< 0 unknown, 1 (MBR boot layout) or 2 (GPT/UEFI layout) */
	uint32_t chain_depth;       /**< 0, or number of parents of a differencing disk */
	uint32_t log_replayed;      /**< 1 when an unapplied VHDX log was replayed into the view */
	uint32_t writable;          /**< 1 when open for writing */
} siterec_disk_info;

/** Facts about the image (caller sets info->version). @since 0.1 */
SITEREC_API int siterec_disk_info_get(siterec_disk *disk, siterec_disk_info *info);

/**
 * Read length bytes at offset of the virtual disk into buf (any offset and length
 * inside the disk). Unallocated ranges read as zeros (or from the parent).
 * Errors: SITEREC_ERANGE, SITEREC_EINVAL, SITEREC_EDISK (an allocation table
 * entry points outside the file), SITEREC_EIO. @since 0.1
 */
SITEREC_API int siterec_disk_read(siterec_disk *disk, void *buf, size_t length, uint64_t offset);

/**
 * The same with the siterec_read_fn signature, payload being the siterec_disk *,
 * to feed the hash scan or a delta log directly. @since 0.1
 */
SITEREC_API int siterec_disk_read_cb(void *buf, size_t length, uint64_t offset, void *disk);

/**
 * Allocation status of the run starting at offset: *run_length (> 0, at most
 * length) bytes that are all allocated (*allocated = 1: data in this image or a
 * parent, may still be zeros) or all unallocated (*allocated = 0: read as zeros,
 * skip them). Raw and fixed images report everything allocated, except holes of a
 * sparse raw file (SEEK_DATA/SEEK_HOLE). @since 0.1
 */
SITEREC_API int siterec_disk_block_status(siterec_disk *disk, uint64_t offset, uint64_t length,
                                          uint64_t *run_length, int *allocated);

/** siterec_block_status_fn adaptor (payload: the disk), e.g. for siterec_store_upload(). @since 0.1 */
SITEREC_API int siterec_disk_block_status_cb(uint64_t offset, uint64_t length, uint64_t *run_length,
                                             int *allocated, void *disk);

/**
 * Write into an image opened with SITEREC_DISK_OPEN_WRITE (raw or fixed VHD) at
 * any offset inside the virtual size (the failback path writes into an existing
 * disk). Errors: SITEREC_ESTATE (read only), SITEREC_ERANGE, SITEREC_EIO,
 * SITEREC_ENOSPC. @since 0.1
 */
SITEREC_API int siterec_disk_write(siterec_disk *disk, const void *buf, size_t length,
                                   uint64_t offset);

/** siterec_write_fn adaptor of siterec_disk_write (payload: the disk). @since 0.1 */
SITEREC_API int siterec_disk_write_cb(const void *buf, size_t length, uint64_t offset, void *disk);

/** fdatasync what was written. @since 0.1 */
SITEREC_API int siterec_disk_flush(siterec_disk *disk);

#define SITEREC_DISK_CREATE_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_disk_create(). */
typedef struct siterec_disk_create_options {
	unsigned int version;     /**< SITEREC_DISK_CREATE_OPTIONS_VERSION */
	uint32_t format;          /**< SITEREC_DISK_FORMAT_RAW (or 0) or SITEREC_DISK_FORMAT_VHD (fixed) */
	uint8_t disk_id[16];      /**< VHD unique id; all zeros: a random one */
	uint32_t flags;           /**< reserved, 0 */
	uint32_t reserved; /**< 0 */
} siterec_disk_create_options;

#define SITEREC_DISK_CREATE_OPTIONS_INIT { SITEREC_DISK_CREATE_OPTIONS_VERSION, 0, {0}, 0, 0 } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_disk_create_options_init(siterec_disk_create_options *opts,
                                                 unsigned int version);

/**
 * Create a new sparse image of `size` bytes at path (SITEREC_EEXISTS if it exists)
 * and open it for writing. RAW: exactly size bytes. VHD: a fixed VHD whose data
 * part is size rounded up to a whole MiB (Azure's rule), then the footer; the
 * virtual size reported is the rounded size. @since 0.1
 */
SITEREC_API int siterec_disk_create(siterec_disk **out, const char *path, uint64_t size,
                                    const siterec_disk_create_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_DISK_H */
