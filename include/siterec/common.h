/** @file
 * libsiterec — core: version, errors, allocator and log hooks, global init.
 *
 * Conventions of the whole API (see doc/api.md):
 *  - functions return int: 0 (SITEREC_OK) on success, a negative SITEREC_E* code on
 *    failure; siterec_error_last() then holds the message of the calling thread;
 *  - handles are opaque; out-parameters come first; *_free() accepts NULL;
 *  - options structs start with `unsigned int version` and are initialised with
 *    siterec_X_options_init(&opts, SITEREC_X_OPTIONS_VERSION) (or the _INIT macro);
 *    the library accepts every version from 1 up to the one it was built with;
 *  - callbacks take `void *payload` last and return int: 0 goes on, anything else
 *    aborts the call, which returns SITEREC_EABORTED (the callback's value is kept
 *    in siterec_error_last()->callback_code).
 */
#ifndef SITEREC_COMMON_H
#define SITEREC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SITEREC_BUILDING_LIBRARY) && defined(__GNUC__)
#define SITEREC_API __attribute__((visibility("default")))
#else
#define SITEREC_API /**< marks the exported functions (default visibility) */
#endif

/* ---- Version ------------------------------------------------------------- */

#define SITEREC_VERSION_MAJOR 0 /**< major version of these headers */
#define SITEREC_VERSION_MINOR 1 /**< minor version of these headers */
#define SITEREC_VERSION_PATCH 0 /**< patch version of these headers */
#define SITEREC_VERSION_STRING "0.1.0" /**< "MAJOR.MINOR.PATCH" of these headers */
/** Single comparable number: major * 10000 + minor * 100 + patch. */
#define SITEREC_VERSION_NUMBER \
	(SITEREC_VERSION_MAJOR * 10000 + SITEREC_VERSION_MINOR * 100 + SITEREC_VERSION_PATCH)

/**
 * Version of the library actually loaded (may differ from the headers used to
 * build the caller). Any out-pointer may be NULL. Returns the version string,
 * static storage. Thread-safe. @since 0.1
 */
SITEREC_API const char *siterec_version(int *major, int *minor, int *patch);

/* ---- Errors -------------------------------------------------------------- */

/** Error codes. Values are ABI: never renumbered; retired ones stay reserved. */
typedef enum siterec_error_code {
	SITEREC_OK = 0,
	SITEREC_ERROR = -1,        /**< unclassified failure */
	SITEREC_EINVAL = -2,       /**< invalid argument (NULL, zero length, bad flag) */
	SITEREC_ENOMEM = -3,       /**< allocation failed */
	SITEREC_EIO = -4,          /**< operating-system I/O error (errno in os_error) */
	SITEREC_ENOTFOUND = -5,    /**< file, object or record does not exist */
	SITEREC_EEXISTS = -6,      /**< target already exists */
	SITEREC_ERANGE = -7,       /**< offset or length past the end of the disk */
	SITEREC_EALIGN = -8,       /**< offset or length not aligned as required */
	SITEREC_ECORRUPT = -9,     /**< data failed a checksum or is malformed */
	SITEREC_EVERSION = -10,    /**< unsupported format or options version */
	SITEREC_EAUTH = -11,       /**< authentication failed (wrong key, tampered data, credentials) */
	SITEREC_ESTATE = -12,      /**< operation not valid in the object's current state */
	SITEREC_EABORTED = -13,    /**< a callback returned non-zero */
	SITEREC_EUNSUPPORTED = -14,/**< feature not supported by this build or target */
	SITEREC_ECONFLICT = -15,   /**< concurrent modification (ETag mismatch) */
	SITEREC_ELEASE = -16,      /**< lease held by someone else, lost or expired */
	SITEREC_ENETWORK = -17,    /**< network failure */
	SITEREC_ETIMEOUT = -18,    /**< operation timed out */
	SITEREC_EBUSY = -19,       /**< resource in use */
	SITEREC_ENOSPC = -20,      /**< no space left on the device or target */
	SITEREC_ETRUNCATED = -21,  /**< data ends early (e.g. a torn log tail was found) */
	SITEREC_ERESYNC = -22,     /**< change tracking not trustworthy: a resync (hash scan) is needed */
	SITEREC_EDISK = -23,       /**< disk image problem (broken chain, unsupported layout) */
	SITEREC_ESTORAGE = -24,    /**< storage service returned an error (see http_status) */
	SITEREC_ECRITICAL = -25    /**< object is in a critical state (reason in the message) */
} siterec_error_code;

/**
 * Details of the last error raised on the calling thread. Fields stay valid until
 * the next failing library call on that thread. Never contains credentials.
 */
typedef struct siterec_error {
	int code;                 /**< the SITEREC_E* code returned */
	int http_status;          /**< storage errors: HTTP status, else 0 */
	int os_error;             /**< errno of the failing system call, else 0 */
	int callback_code;        /**< SITEREC_EABORTED: what the callback returned */
	const char *message;      /**< human-readable, never NULL */
	const char *service_code; /**< storage errors: service error code, else "" */
} siterec_error;

/**
 * The last error of the calling thread, or a static "no error" record (code 0).
 * Never NULL. Thread-local. @since 0.1
 */
SITEREC_API const siterec_error *siterec_error_last(void);

/** Forget the calling thread's last error. @since 0.1 */
SITEREC_API void siterec_error_clear(void);

/**
 * Static text for an error code ("invalid argument", ...); "unknown error" for a
 * value that is not a code. Thread-safe. @since 0.1
 */
SITEREC_API const char *siterec_strerror(int code);

/* ---- Global init --------------------------------------------------------- */

/**
 * Initialise global state (network stack, CPU feature dispatch). Reference-counted:
 * returns the new count (>= 1) or a negative code. Call before other functions;
 * pair each call with siterec_shutdown(). Thread-safe. @since 0.1
 */
SITEREC_API int siterec_init(void);

/** Drop one reference taken by siterec_init(); returns the remaining count. @since 0.1 */
SITEREC_API int siterec_shutdown(void);

/* ---- Allocator hook ------------------------------------------------------ */

#define SITEREC_ALLOCATOR_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Memory functions the library uses for everything it allocates. */
typedef struct siterec_allocator {
	unsigned int version;     /**< SITEREC_ALLOCATOR_VERSION */
	void *(*malloc_fn)(size_t size, void *payload); /**< like malloc(size) */
	void *(*realloc_fn)(void *ptr, size_t size, void *payload); /**< like realloc(ptr, size) */
	void (*free_fn)(void *ptr, void *payload); /**< like free(ptr) (NULL accepted) */
	void *payload; /**< passed to the three functions */
} siterec_allocator;

/**
 * Install an allocator (copied), or restore malloc/realloc/free with NULL.
 * All three functions are required. Only call while no handle is open: memory is
 * freed through the allocator that is current at free time. Not thread-safe with
 * other library calls. @since 0.1
 */
SITEREC_API int siterec_set_allocator(const siterec_allocator *allocator);

/**
 * Free memory the library allocated and handed to the caller (documented where it
 * happens, e.g. siterec_store_doc_get()). NULL accepted. @since 0.1
 */
SITEREC_API void siterec_free(void *ptr);

/* ---- Log hook ------------------------------------------------------------ */

/** Levels of the log hook's messages. */
typedef enum siterec_log_level {
	SITEREC_LOG_NONE = 0,
	SITEREC_LOG_ERROR = 1,
	SITEREC_LOG_WARN = 2,
	SITEREC_LOG_INFO = 3,
	SITEREC_LOG_DEBUG = 4,
	SITEREC_LOG_TRACE = 5
} siterec_log_level;

/**
 * Receives log lines (no trailing newline). May be called from any thread that
 * is inside a library call. The return value is reserved: return 0.
 */
typedef int (*siterec_log_fn)(int level, const char *message, void *payload);

/**
 * Send log lines of level <= max_level to fn (NULL: logging off, the default).
 * The library never prints on its own. Thread-safe. @since 0.1
 */
SITEREC_API int siterec_set_log(siterec_log_fn fn, int max_level, void *payload);

/* ---- Shared types -------------------------------------------------------- */

/** A byte range of a disk. */
typedef struct siterec_extent {
	uint64_t offset; /**< bytes from the start of the disk */
	uint64_t length; /**< bytes */
} siterec_extent;

/** Called for each extent of a set, in ascending offset order. */
typedef int (*siterec_extent_fn)(uint64_t offset, uint64_t length, void *payload);

/**
 * Reads `length` bytes at `offset` of a disk into buf. Returns 0 when all bytes
 * were read, non-zero to abort.
 */
typedef int (*siterec_read_fn)(void *buf, size_t length, uint64_t offset, void *payload);

/** Writes `length` bytes at `offset` of a disk. Returns 0 on success, non-zero to abort. */
typedef int (*siterec_write_fn)(const void *buf, size_t length, uint64_t offset, void *payload);

/** Progress of a long call: `done` of `total` units (bytes unless said). Non-zero cancels. */
typedef int (*siterec_progress_fn)(uint64_t done, uint64_t total, void *payload);

/**
 * Allocation status of the run of a source starting at `offset`: sets *run_length
 * (> 0, at most `length`) to bytes that are all allocated (*allocated = 1: may hold
 * data) or all unallocated (*allocated = 0: read as zeros). 0, or non-zero to abort.
 */
typedef int (*siterec_block_status_fn)(uint64_t offset, uint64_t length, uint64_t *run_length,
                                       int *allocated, void *payload);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_COMMON_H */
