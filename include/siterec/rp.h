/** @file
 * libsiterec — recovery points: consistent multi-disk points of one protected VM,
 * kept in the storage target next to its replica disks, so that any host that
 * can open the target can list them and fail over from them.
 *
 * A point names, for each protected disk, a snapshot of its replica disk, plus
 * the cycle sequence (the point's id), the time of the cut (one consistent cut
 * across the VM's disks), its kind (crash-consistent, or app-consistent when the
 * caller's quiesce callback succeeded around the cut) and the extents the cycle
 * changed on each disk. A snapshot point's content is its snapshots. A log point
 * (version 2, n_logs > 0) also names delta logs kept in the store: its content of
 * disk i is disk i's snapshot with disk i's logs applied in sequence order. That
 * is how replication records a point as soon as a cycle's logs are shipped,
 * before they are applied to the replicas (the slow part: many small writes),
 * which it does later in larger batches. siterec_rp_read() and
 * siterec_rp_restore() give a point's content either way. Points are immutable
 * once added.
 *
 * In the target, a VM's catalogue is one document per point, "VM/points/ID" (ID
 * twenty decimal digits, so the store's name order is id order), written
 * create-only (doc/formats.md). Adding a point is the commit of a cycle: its
 * snapshots exist before its document does. Pruning deletes the document first
 * and the snapshots after, so a crash in between leaves unreferenced snapshots,
 * never a point without its snapshots; siterec_rp_prune() sweeps those too.
 *
 * The catalogue handle caches the list read at open (and refreshed by
 * siterec_rp_refresh()); siterec_rp_add() and siterec_rp_prune() keep it current.
 * Threading: one thread at a time per catalogue (and its store).
 */
#ifndef SITEREC_RP_H
#define SITEREC_RP_H

#include "common.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The recovery points of one VM in a target. */
typedef struct siterec_rp_catalog siterec_rp_catalog;

/** Kinds of recovery points. */
typedef enum siterec_rp_kind {
	SITEREC_RP_CRASH = 1,  /**< crash-consistent: the disks as a power cut would leave them */
	SITEREC_RP_APP = 2     /**< app-consistent: applications were quiesced around the cut */
} siterec_rp_kind;

/** One disk of a point. */
typedef struct siterec_rp_disk {
	const char *disk;               /**< replica disk name in the store */
	const char *snapshot;           /**< its snapshot taken at the cut */
	const siterec_extent *changed;  /**< extents the cycle changed, ascending, not overlapping */
	uint64_t n_changed;             /**< number of them; UINT64_MAX: unknown (whole disk) */
} siterec_rp_disk;

/**
 * A delta log shipped with a point (point version 2): the writes one replication
 * cycle made to one of the point's disks, coalesced (ascending, not
 * overlapping), kept in the store as a disk object (a page blob) whose size is
 * the log's length rounded up to 512 with zeros after it. Its layout belongs
 * to point version 2: a later point version that grows it will be read with the
 * stride of the version the caller sets.
 */
typedef struct siterec_rp_log {
	uint32_t disk_index;   /**< index into the point's disks */
	uint32_t reserved;     /**< 0 */
	uint64_t seq;          /**< the journal sequence of the cut that sealed it; ascending per disk */
	const char *object;    /**< store name of the disk object holding it ("VM/logs/..."; see rp_add) */
	uint64_t length;       /**< exact bytes of the log */
	int64_t sealed_ms;     /**< when it was sealed (ms since the epoch): every write in it was
	                            made before; 0 = unknown (then it counts as sealed at the point's cut) */
} siterec_rp_log;

#define SITEREC_RP_POINT_VERSION 2 /**< the version this header describes: set the struct's version field to it */

/**
 * A recovery point. As input of siterec_rp_add() the caller fills it; as output
 * of siterec_rp_get()/siterec_rp_find() the strings and arrays point into the
 * catalogue and stay valid until the next call that changes or refreshes it, or
 * siterec_rp_free(). The caller sets version in both cases.
 */
typedef struct siterec_rp_point {
	unsigned int version;       /**< SITEREC_RP_POINT_VERSION */
	uint32_t kind;              /**< siterec_rp_kind */
	uint64_t id;                /**< the cycle sequence: > every id in the catalogue */
	int64_t cut_time_ms;        /**< time of the cut, ms since the Unix epoch (UTC) */
	uint32_t n_disks;           /**< 1..256 */
	uint32_t reserved;          /**< 0 */
	const siterec_rp_disk *disks; /**< n_disks entries */
	/* version 2 */
	uint64_t n_logs;            /**< logs to apply on top of the snapshots (0: a snapshot point); at most 100,000 */
	const siterec_rp_log *logs; /**< ascending by (disk_index, seq) */
} siterec_rp_point;

#define SITEREC_RP_POINT_INIT { SITEREC_RP_POINT_VERSION, 0, 0, 0, 0, 0, NULL, 0, NULL } /**< a struct of the current version, with its defaults (C only) */

/**
 * Open the catalogue of VM vm_id (1..64 of [A-Za-z0-9._-], not starting with '.',
 * no "..": it begins the documents' store names) in store (which must outlive
 * it), reading every point: one listing, one read per point. A point document the
 * library cannot read, or a document under "VM/points/" whose name is not a
 * point's, fails the open with SITEREC_ECORRUPT (or SITEREC_EVERSION) naming it:
 * points are never skipped silently. Errors of the store pass through.
 * @since 0.1
 */
SITEREC_API int siterec_rp_open(siterec_rp_catalog **out, siterec_store *store, const char *vm_id);

/** NULL accepted. @since 0.1 */
SITEREC_API void siterec_rp_free(siterec_rp_catalog *cat);

/**
 * Read the catalogue again from the target (another host may have added or
 * pruned): one listing, and one read per point not cached yet (points are
 * immutable). On failure the cached list is unchanged. Errors as siterec_rp_open().
 * @since 0.1
 */
SITEREC_API int siterec_rp_refresh(siterec_rp_catalog *cat);

/**
 * Add a point (the commit of a cycle): its snapshots must exist (checked:
 * SITEREC_ENOTFOUND). The catalogue is refreshed first (as siterec_rp_refresh());
 * the id must be greater than every id in it (SITEREC_ECONFLICT otherwise, also
 * when another host added that id first: the document is created only if absent;
 * a store retry that finds the document this call wrote is not a conflict).
 * Logs (version 2): each object must exist with a size of at least its length
 * (SITEREC_ENOTFOUND), be named "VM/logs/..." for this catalogue's VM, and
 * appear once; disk_index < n_disks; (disk_index, seq) strictly ascending.
 * Changed extents are stored as given, except that more than 1,000,000 of one
 * disk, or more than fit in the point's document (4 MiB, the store's limit), are
 * merged into fewer, larger ones by closing the smallest gaps first (a superset:
 * never fewer bytes); siterec_rp_get() then returns the merged list.
 * Errors: SITEREC_EVERSION (point->version), SITEREC_EINVAL (kind, n_disks,
 * reserved, names or snapshot ids invalid, a disk named twice, extents empty,
 * overlapping or not ascending, time < 0). @since 0.1
 */
SITEREC_API int siterec_rp_add(siterec_rp_catalog *cat, const siterec_rp_point *point);

/** Number of points in the catalogue (as cached; indexes of siterec_rp_get() run oldest first). @since 0.1 */
SITEREC_API int siterec_rp_count(siterec_rp_catalog *cat, uint64_t *count);

/**
 * The index-th point (0 = oldest). SITEREC_ERANGE past the end, SITEREC_EVERSION
 * (point->version; also a version-1 point asked for a log point, whose
 * snapshots alone are not its content). @since 0.1
 */
SITEREC_API int siterec_rp_get(siterec_rp_catalog *cat, uint64_t index, siterec_rp_point *point);

/** The point with this id; SITEREC_ENOTFOUND. @since 0.1 */
SITEREC_API int siterec_rp_find(siterec_rp_catalog *cat, uint64_t id, siterec_rp_point *point);

/** How siterec_rp_select() chooses. */
typedef enum siterec_rp_select_how {
	SITEREC_RP_LATEST = 1,          /**< the newest point */
	SITEREC_RP_LATEST_APP = 2,      /**< the newest app-consistent point */
	SITEREC_RP_BY_ID = 3,           /**< the point whose id is arg */
	SITEREC_RP_AT_OR_BEFORE = 4     /**< the newest point whose cut is at or before arg (ms since the epoch) */
} siterec_rp_select_how;

/**
 * Choose a point among those cached; its id goes to id_out (SITEREC_RP_BY_ID: arg
 * is the id, converted to uint64_t). SITEREC_ENOTFOUND when none fits,
 * SITEREC_EINVAL for an unknown how. @since 0.1
 */
SITEREC_API int siterec_rp_select(siterec_rp_catalog *cat, uint32_t how, int64_t arg,
                                  uint64_t *id_out);

/**
 * Read length bytes at offset of disk disk_index of point id (its content), e.g.
 * to verify. For a log point the disk is first materialised whole into an
 * unlinked temporary file (in TMPDIR, else /tmp): its snapshot, then its logs;
 * the catalogue keeps the last one materialised, so reading a disk in pieces
 * costs one materialisation. Errors as siterec_store_read(), SITEREC_ENOTFOUND,
 * SITEREC_ERANGE (disk_index), SITEREC_ECORRUPT (a log that does not verify).
 * @since 0.1
 */
SITEREC_API int siterec_rp_read(siterec_rp_catalog *cat, uint64_t id, uint32_t disk_index,
                                void *buf, size_t length, uint64_t offset);

#define SITEREC_RP_RESTORE_ZEROS 0x1u  /**< also write the snapshot's unallocated ranges (zeros) */

/**
 * Write the content of disk disk_index of point id through write (e.g. a store
 * writer, a local file, a new disk): the snapshot's allocated ranges in
 * ascending order in pieces of at most 4 MiB (with SITEREC_RP_RESTORE_ZEROS its
 * unallocated ranges too, as zeros; without it the destination must read as
 * zeros there), then each log's records in sequence order (a later write of a
 * range overrides an earlier one: the destination must keep writes in order).
 * Each log is read whole from the store and verified before any of its records
 * is written (SITEREC_ECORRUPT). progress (may be NULL) gets bytes done of the
 * total. A non-zero return of write or progress stops with
 * SITEREC_EABORTED. Errors as siterec_rp_read(). @since 0.1
 */
SITEREC_API int siterec_rp_restore(siterec_rp_catalog *cat, uint64_t id, uint32_t disk_index,
                                   uint32_t flags, siterec_write_fn write, void *write_payload,
                                   siterec_progress_fn progress, void *progress_payload);

/**
 * Any point in time: write the content of disk disk_index as it was at time_ms
 * (ms since the epoch), at the granularity of the logs' seal times (the
 * replicator's checkpoints: replication.h), through write as
 * siterec_rp_restore() does. It is the first point Q whose cut is at or after
 * time_ms, with only those of Q's logs sealed at or before time_ms (a log with
 * sealed_ms 0 counts as sealed at Q's cut): Q's snapshot holds no write made after
 * the newest point cut at or before time_ms, and its logs hold every write since.
 * *at_ms (may be NULL) gets the instant actually restored: the seal time of the
 * newest log applied, or the cut of the point before Q when none. Errors:
 * SITEREC_ENOTFOUND (time_ms after the newest point's cut, or before the oldest
 * point's), and as siterec_rp_restore(). @since 0.1
 */
SITEREC_API int siterec_rp_restore_at(siterec_rp_catalog *cat, int64_t time_ms, uint32_t disk_index,
                                      uint32_t flags, siterec_write_fn write, void *write_payload,
                                      int64_t *at_ms);

/**
 * Retention: delete every point whose cut is older than now_ms - retention_ms,
 * except the newest point, which is always kept (failover needs one), and
 * except ids in keep (n_keep of them; e.g. a point a test failover is running
 * from). For each: its document, then its snapshots and logs. Then sweep the
 * snapshots of the catalogue's disks that no point references and that were
 * taken before the newest snapshot a point references (left by a crash between a
 * snapshot and its point, or between a prune's two steps; a snapshot taken for a
 * cycle not added yet is newer and left alone), and the log objects under
 * "VM/logs/" that no point references and whose seq (the name's 20 digits after
 * the last '/': "VM/logs/DISK/SEQ-TAG") is below the newest seq a point
 * references. A snapshot or log that a remaining point also references is not
 * deleted; one already gone is not an error. The
 * catalogue is refreshed first. On failure the call stops at the first error;
 * what was done stays done (a later prune finishes it). *pruned (may be NULL)
 * gets the number of points deleted, also on failure. @since 0.1
 */
SITEREC_API int siterec_rp_prune(siterec_rp_catalog *cat, int64_t now_ms, uint64_t retention_ms,
                                 const uint64_t *keep, size_t n_keep, uint64_t *pruned);

/**
 * Delete the points whose ids are listed (n_ids >= 1), the newest included
 * (a failover's commit keeps only the point it used): as siterec_rp_prune()
 * does, each one's document first, then the snapshots and logs that no
 * remaining point references, then the sweep of leftovers. An id not in the
 * catalogue is skipped. *deleted (may be NULL) gets the number of points
 * deleted, also on failure. Errors as siterec_rp_prune(), SITEREC_EINVAL (no
 * ids). @since 0.1
 */
SITEREC_API int siterec_rp_delete(siterec_rp_catalog *cat, const uint64_t *ids, size_t n_ids,
                                  uint64_t *deleted);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_RP_H */
