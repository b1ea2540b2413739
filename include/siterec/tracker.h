/** @file
 * libsiterec — change tracking: which blocks of a disk changed.
 *
 * A tracker belongs to one disk. The write path calls siterec_tracker_mark()
 * before it issues each write, from any thread, without locks. The replication
 * side freezes the current dirty set with siterec_tracker_switch() (writes made
 * afterwards land in the next epoch), ships the frozen extents, and then either
 * commits them (shipped) or rolls them back (shipping failed: the extents are
 * merged back into the current set).
 *
 * Memory is a two-level bitmap: a directory of leaf pointers, one leaf of 4 KiB
 * per 32768 blocks, allocated on the first mark in its range. A clean disk costs
 * only the directory (4 TiB at 4 KiB blocks: 256 KiB per set), and the cost grows
 * with the dirty ranges.
 *
 * Persistence (when options.state_path is set) survives a crash without a full
 * resync: siterec_tracker_save() writes both sets crash-safely, and an activity
 * record (a coarse bitmap of regions with writes in flight, written and synced
 * before the first mark of a region returns) lets an unclean reopen add only those
 * regions. When no trustworthy record exists, the tracker says so
 * (SITEREC_TRACKER_UNTRUSTED) and the caller falls back to a hash scan.
 *
 * The hash scan (siterec_hashmap) finds changed blocks of a disk nobody tracked
 * by comparing XXH3-128 block hashes with a saved map.
 *
 * File formats: doc/formats.md.
 */
#ifndef SITEREC_TRACKER_H
#define SITEREC_TRACKER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A dirty-block tracker of one disk. */
typedef struct siterec_tracker siterec_tracker;

/** Smallest, default and largest tracking granularity, in bytes (powers of two). */
#define SITEREC_TRACKER_BLOCK_MIN 512u
#define SITEREC_TRACKER_BLOCK_DEFAULT 4096u /**< default tracking block (bytes) */
#define SITEREC_TRACKER_BLOCK_MAX 1048576u /**< largest tracking block (bytes) */
/** Default size of one activity-record region. */
#define SITEREC_TRACKER_ACTIVITY_DEFAULT 67108864u

/** What an opened tracker knows about the disk's changes (siterec_tracker_stats.state). */
typedef enum siterec_tracker_state {
	SITEREC_TRACKER_FRESH = 1,     /**< no earlier state: nothing known before this open */
	SITEREC_TRACKER_CLEAN = 2,     /**< earlier state loaded after a clean close */
	SITEREC_TRACKER_RECOVERED = 3, /**< unclean stop: loaded state plus in-flight regions */
	SITEREC_TRACKER_UNTRUSTED = 4  /**< earlier state lost or corrupt: resync (hash scan) needed */
} siterec_tracker_state;

#define SITEREC_TRACKER_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_tracker_open(). */
typedef struct siterec_tracker_options {
	unsigned int version;     /**< SITEREC_TRACKER_OPTIONS_VERSION */
	uint32_t block_size;      /**< tracking granularity, power of two 512..1 MiB; 0 = 4 KiB */
	uint64_t activity_region; /**< activity-record region size, power of two >= block_size; 0 = 64 MiB */
	const char *state_path;   /**< persisted state file (the activity record is
	                               state_path + ".act"); NULL: memory only */
	uint32_t flags;           /**< reserved, 0 */
	uint32_t reserved; /**< 0 */
} siterec_tracker_options;

#define SITEREC_TRACKER_OPTIONS_INIT { SITEREC_TRACKER_OPTIONS_VERSION, 0, 0, NULL, 0, 0 } /**< a struct of the current version, with its defaults (C only) */

/** Fill opts with defaults for the given version. @since 0.1 */
SITEREC_API int siterec_tracker_options_init(siterec_tracker_options *opts, unsigned int version);

/**
 * Open a tracker for a disk of disk_size bytes (> 0; need not be a multiple of the
 * block size). opts may be NULL for defaults. With a state_path, earlier state is
 * loaded: see siterec_tracker_state. A frozen set that was saved comes back
 * frozen (stats.has_frozen = 1): ship and commit it, or roll it back, before the
 * next switch. A saved state for a different disk size or block size is refused
 * with SITEREC_EINVAL (no file is changed).
 * Errors: SITEREC_EINVAL, SITEREC_EVERSION, SITEREC_ENOMEM, SITEREC_EIO. @since 0.1
 */
SITEREC_API int siterec_tracker_open(siterec_tracker **out, uint64_t disk_size,
                                     const siterec_tracker_options *opts);

/**
 * Free the tracker. Without siterec_tracker_close() first, the persisted state is
 * left as after a crash (the next open reports SITEREC_TRACKER_RECOVERED). NULL is
 * accepted. No mark may be running. @since 0.1
 */
SITEREC_API void siterec_tracker_free(siterec_tracker *t);

/**
 * Record that [offset, offset+length) is about to be written. Call before the
 * write reaches the disk. Unaligned ranges are widened to whole blocks.
 * Thread-safe and lock-free with respect to other marks, switch and save; the
 * first mark of an activity region since the last save writes and syncs the
 * activity record (persistent trackers only), serialised by a mutex.
 * Errors: SITEREC_EINVAL (length 0), SITEREC_ERANGE (past the disk end),
 * SITEREC_ENOMEM (a leaf could not be allocated; nothing was lost that had been
 * marked before), SITEREC_EIO, SITEREC_ESTATE (tracker closed). @since 0.1
 */
SITEREC_API int siterec_tracker_mark(siterec_tracker *t, uint64_t offset, uint64_t length);

/**
 * Freeze the current dirty set and start a new, empty one, atomically with
 * respect to concurrent marks: each mark lands wholly in one of the two sets.
 * epoch_out (may be NULL) receives the number of the frozen epoch (1, 2, ...).
 * Errors: SITEREC_ESTATE when a frozen set is still pending (commit or roll it
 * back first). @since 0.1
 */
SITEREC_API int siterec_tracker_switch(siterec_tracker *t, uint64_t *epoch_out);

/**
 * Call cb for the frozen set's extents: sorted by offset, adjacent blocks merged,
 * the last extent clipped to the disk size. Errors: SITEREC_ESTATE (nothing
 * frozen), SITEREC_EABORTED. @since 0.1
 */
SITEREC_API int siterec_tracker_foreach_frozen(siterec_tracker *t, siterec_extent_fn cb,
                                               void *payload);

/**
 * Same for the current (live) set. Marks racing with the call may or may not be
 * seen. @since 0.1
 */
SITEREC_API int siterec_tracker_foreach_dirty(siterec_tracker *t, siterec_extent_fn cb,
                                              void *payload);

/** The frozen set was shipped: drop it. SITEREC_ESTATE when nothing is frozen. @since 0.1 */
SITEREC_API int siterec_tracker_commit(siterec_tracker *t);

/**
 * Shipping the frozen set failed: merge it back into the current set so that the
 * next cycle ships it again. SITEREC_ESTATE when nothing is frozen. @since 0.1
 */
SITEREC_API int siterec_tracker_rollback(siterec_tracker *t);

/**
 * Mark the whole disk dirty (e.g. after a resync decision). Thread-safe like mark. @since 0.1
 */
SITEREC_API int siterec_tracker_mark_all(siterec_tracker *t);

/**
 * Persist both sets crash-safely and reset the activity record. Safe to call
 * while other threads mark. SITEREC_EINVAL for a memory-only tracker. @since 0.1
 */
SITEREC_API int siterec_tracker_save(siterec_tracker *t);

/**
 * Clean shutdown: save, then record that no write is in flight, so the next open
 * reports SITEREC_TRACKER_CLEAN. Afterwards only siterec_tracker_free() is valid.
 * No mark may be running. Memory-only trackers just stop accepting marks. @since 0.1
 */
SITEREC_API int siterec_tracker_close(siterec_tracker *t);

#define SITEREC_TRACKER_STATS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Counters of a tracker (siterec_tracker_stats_get()). */
typedef struct siterec_tracker_stats {
	unsigned int version;   /**< set by the caller: SITEREC_TRACKER_STATS_VERSION */
	uint32_t block_size; /**< bytes per tracked block */
	uint64_t disk_size; /**< bytes of the disk */
	uint64_t epoch;         /**< number of the current (live) epoch, from 1 */
	uint64_t dirty_bytes;   /**< bytes of blocks marked in the live set */
	uint64_t frozen_bytes;  /**< bytes of blocks in the frozen set (0 when none) */
	uint64_t memory_bytes;  /**< heap used by the tracker's bitmaps */
	uint32_t state;         /**< siterec_tracker_state found at open */
	uint32_t has_frozen;    /**< 1 while a frozen set is pending */
} siterec_tracker_stats;

/**
 * Fill stats (caller sets stats->version; fields beyond that version are not
 * touched; SITEREC_EVERSION for a version this library does not know). Counts
 * racing with marks are approximate. @since 0.1
 */
SITEREC_API int siterec_tracker_stats_get(siterec_tracker *t, siterec_tracker_stats *stats);

/* ---- Hash scan ----------------------------------------------------------- */

/** Block hashes of a disk (hash scan). */
typedef struct siterec_hashmap siterec_hashmap;

/**
 * A new map for a disk of disk_size bytes and block_size blocks (power of two,
 * 512..1 MiB): every block "unknown", so a first scan reports all of it as changed.
 * Errors: SITEREC_EINVAL (disk_size 0, bad block size), SITEREC_ENOMEM. @since 0.1
 */
SITEREC_API int siterec_hashmap_new(siterec_hashmap **out, uint64_t disk_size, uint32_t block_size);

/**
 * Load a map saved by siterec_hashmap_save(). SITEREC_ECORRUPT/EVERSION on bad files,
 * SITEREC_ENOTFOUND when absent. @since 0.1
 */
SITEREC_API int siterec_hashmap_load(siterec_hashmap **out, const char *path);

/** Save crash-safely (temporary file, fsync, rename, directory fsync). @since 0.1 */
SITEREC_API int siterec_hashmap_save(const siterec_hashmap *map, const char *path);

/** NULL accepted. @since 0.1 */
SITEREC_API void siterec_hashmap_free(siterec_hashmap *map);

/** Geometry of a map; any out-pointer may be NULL. @since 0.1 */
SITEREC_API int siterec_hashmap_info(const siterec_hashmap *map, uint64_t *disk_size,
                                     uint32_t *block_size, uint64_t *known_blocks);

/** Scan flags. */
#define SITEREC_HASHSCAN_UPDATE 0x1u  /**< store the hashes read into the map */

#define SITEREC_HASHSCAN_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of a hash scan. */
typedef struct siterec_hashscan_options {
	unsigned int version;   /**< SITEREC_HASHSCAN_OPTIONS_VERSION */
	uint32_t flags;         /**< SITEREC_HASHSCAN_* */
	uint32_t threads;       /**< hashing threads for the fd scan; 0 = one per CPU (max 8); at most 64 */
	uint32_t reserved; /**< 0 */
	siterec_progress_fn progress;  /**< bytes scanned of the disk size; may be NULL */
	void *progress_payload; /**< passed to progress */
} siterec_hashscan_options;

#define SITEREC_HASHSCAN_OPTIONS_INIT { SITEREC_HASHSCAN_OPTIONS_VERSION, 0, 0, 0, NULL, NULL } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_hashscan_options_init(siterec_hashscan_options *opts, unsigned int version);

/**
 * Read the whole disk through `read` (in large sequential chunks) and call
 * `changed` (may be NULL) for every run of blocks whose XXH3-128 hash differs from
 * the map or is unknown, merged and in offset order. With SITEREC_HASHSCAN_UPDATE
 * the map then holds the disk's hashes. All callbacks run on the calling thread.
 * If the scan fails with SITEREC_HASHSCAN_UPDATE, the map stays usable: every
 * block whose change was not reported to `changed` keeps its old hash or becomes
 * unknown, so the next scan reports it again.
 * Errors: SITEREC_EINVAL, SITEREC_EVERSION (options), SITEREC_EABORTED (a
 * callback returned non-zero), SITEREC_ENOMEM. @since 0.1
 */
SITEREC_API int siterec_hashmap_scan(siterec_hashmap *map, siterec_read_fn read, void *read_payload,
                                     const siterec_hashscan_options *opts,
                                     siterec_extent_fn changed, void *changed_payload);

/**
 * Same over a file descriptor (raw image or block device, at least disk_size
 * bytes, open for reading), using several hashing threads. `changed` still runs
 * on the calling thread, in order. The fd's file offset is not used or changed.
 * Errors: as siterec_hashmap_scan, plus SITEREC_EINVAL (bad fd, not a regular
 * file or block device), SITEREC_ETRUNCATED (shorter than the map's disk size),
 * SITEREC_EIO (read error). @since 0.1
 */
SITEREC_API int siterec_hashmap_scan_fd(siterec_hashmap *map, int fd,
                                        const siterec_hashscan_options *opts,
                                        siterec_extent_fn changed, void *changed_payload);

/**
 * Compare two maps of the same geometry (checksums computed on both sides, e.g.
 * source and replica for failback): call `changed` for each run of blocks whose
 * hashes differ or are unknown in either map. SITEREC_EINVAL on geometry
 * mismatch. @since 0.1
 */
SITEREC_API int siterec_hashmap_diff(const siterec_hashmap *a, const siterec_hashmap *b,
                                     siterec_extent_fn changed, void *payload);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_TRACKER_H */
