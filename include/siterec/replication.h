/** @file
 * libsiterec — replication: protect a VM's disks into a storage target and keep
 * consistent recovery points there on a policy.
 *
 * A protected VM has, locally, a state directory (state_dir) holding its journal
 * (journal.h: the VM's write path logs every write there) and a copy of the
 * replication state; and, in the target, one replica disk per protected disk
 * ("VM/disks/DISK"), the recovery points (rp.h, "VM/points/ID") and the
 * replication state document ("VM/replication", JSON, doc/formats.md), replaced
 * with If-Match, so another host can see where replication stands.
 *
 * The flow, as the seed service does it:
 *  1. siterec_replication_open() with SITEREC_REPLICATION_PROTECT: the journal is
 *     created first (the VM's writes are logged from now on), then the state.
 *  2. siterec_replication_initial(): every protected disk is copied to its
 *     replica (siterec_store_upload: allocated runs only, all-zero pages skipped,
 *     resumable after a crash or a restart: it does not start over), while the
 *     VM keeps writing. Then the journal is rotated and every log since
 *     protection began is applied to the replicas, so they converge to the
 *     consistent state of that cut; the first recovery point is recorded.
 *  3. siterec_replication_cycle(), on the policy's tick (the caller runs the
 *     loop; the library has no thread of its own): the journal is rotated (one
 *     consistent cut across disks), each disk's sealed logs are coalesced into
 *     one log, shipped to the target as an object ("VM/logs/DISK/SEQ-TAG") in a
 *     few large requests, and a recovery point is added at once: a log point
 *     (rp.h), whose content is the replicas' last applied snapshot plus the logs
 *     shipped since. Then the journal's logs are released (a coalesced copy is
 *     kept in STATE_DIR/shipped until applied) and points past the retention
 *     window pruned. The VM's writes never wait for any of this.
 *  4. siterec_replication_apply(), between cycles: the logs shipped since the
 *     last apply are coalesced into one batch per disk and applied to the
 *     replicas (neighbouring writes merged into large requests), in slices of
 *     the caller's time budget; a finished batch snapshots every replica (the
 *     base of the points that follow). Applying is the costly part with many
 *     small writes (one request per scattered extent), so it is done late, in
 *     large batches (options.apply_delay_s): a block written many times is sent
 *     once, and dense regions go whole. The RPO depends only on shipping.
 * Every step is recorded before the next begins; after a crash at any instant,
 * opening again and calling the same function resumes (applying a log twice is
 * harmless: it holds whole writes). The state document carries a generation
 * number, +1 at each change, that a stale writer cannot go back behind (its
 * If-Match fails: SITEREC_ECONFLICT).
 *
 * Fencing: only one host replicates a VM at a time. siterec_replication_open()
 * takes a 60 s writer lease (store.h) on every protected replica disk, creating
 * a replica that does not exist yet (empty, as its upload would) to lease it,
 * with one random lease id per handle; every write to a replica names it. The
 * leases are renewed at the start of every siterec_replication_initial() and
 * siterec_replication_cycle() call and before each disk is copied or applied,
 * and released by siterec_replication_free(). Between cycles (interval 300 or
 * 900 s) call siterec_replication_keepalive() at least every 30 s. Another
 * handle (another host) opening the VM while the leases are held gets
 * SITEREC_ELEASE; it can take over once they are released or have expired (60 s
 * without renewal: the holder crashed or hung), and its cycles converge as after
 * a crash. A process of the same host that died leaves its lease id in
 * STATE_DIR/lease-owner: a handle opened there afterwards takes that lease over
 * at once instead of waiting for the expiry. A handle whose lease was lost
 * fails every call with SITEREC_ELEASE and writes nothing more (free it and open
 * again). The state document's If-Match stays a second fence. The environment
 * variable SITEREC_TEST_LEASE_S (15..60) shortens the lease: a test knob only.
 *
 * The VM's write path opens the journal at STATE_DIR/journal with
 * SITEREC_JOURNAL_WRITER and the protected (not excluded) disks, in the VM's
 * order, ids as in the VM description and sizes rounded up to 512: every write
 * of the VM goes through siterec_journal_write() (any thread, any process).
 * On an Azure target each replica is an attachable fixed VHD (the data part
 * rounded up to a whole MiB, then the footer).
 *
 * Threading: one thread at a time per handle.
 */
#ifndef SITEREC_REPLICATION_H
#define SITEREC_REPLICATION_H

#include "common.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The replication of one protected VM. */
typedef struct siterec_replication siterec_replication;

/** Role of a VM disk. */
typedef enum siterec_vm_disk_role {
	SITEREC_DISK_ROLE_OS = 1,    /**< the OS disk: never excluded */
	SITEREC_DISK_ROLE_DATA = 2
} siterec_vm_disk_role;

#define SITEREC_VM_DISK_EXCLUDED 0x1u  /**< never read, logged or shipped */

/** One disk of a VM, as the caller describes it. */
typedef struct siterec_vm_disk {
	const char *id;           /**< 1..64 of [A-Za-z0-9._-], unique in the VM; names its replica */
	const char *path;         /**< image to read (raw, VHD, VHDX: disk.h), or NULL to use read */
	siterec_read_fn read;     /**< when path is NULL: reads the disk */
	void *read_payload; /**< passed to read */
	uint64_t size;            /**< when path is NULL: bytes (a multiple of 512) */
	uint32_t role;            /**< siterec_vm_disk_role */
	uint32_t flags;           /**< SITEREC_VM_DISK_* */
} siterec_vm_disk;

#define SITEREC_VM_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** A VM to protect. */
typedef struct siterec_vm {
	unsigned int version;     /**< SITEREC_VM_VERSION */
	uint32_t generation;      /**< 1 or 2 (Hyper-V generation) */
	const char *id;           /**< 1..64 of [A-Za-z0-9._-], not starting with '.' */
	const char *name;         /**< display name, any UTF-8, or NULL */
	uint32_t n_disks;         /**< 1..64, exactly one SITEREC_DISK_ROLE_OS */
	uint32_t reserved; /**< 0 */
	const siterec_vm_disk *disks; /**< n_disks entries, in the VM's order */
} siterec_vm;

#define SITEREC_POLICY_CONTINUOUS 0u   /**< interval_s 0: cycles back to back, a point only when something was written */

#define SITEREC_REPLICATION_PROTECT 0x1u  /**< create the protection (SITEREC_EEXISTS if it exists) */

/**
 * Quiesce callback for app-consistent points: called with freeze = 1 just before
 * the cut and freeze = 0 just after it; a non-zero return from the freeze makes
 * the point crash-consistent (the cycle goes on).
 */
typedef int (*siterec_quiesce_fn)(int freeze, void *payload);

#define SITEREC_REPLICATION_OPTIONS_VERSION 2 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_replication_open(): the policy, the state directory, the target. */
typedef struct siterec_replication_options {
	unsigned int version;          /**< SITEREC_REPLICATION_OPTIONS_VERSION */
	uint32_t flags;                /**< SITEREC_REPLICATION_* */
	const char *state_dir;         /**< local directory (journal and state copy); created when protecting */
	siterec_store *store;          /**< the target; must outlive the handle */
	uint32_t interval_s;           /**< copy frequency: 30, 300 or 900, or SITEREC_POLICY_CONTINUOUS */
	uint32_t app_every_s;          /**< an app-consistent point every this many seconds; 0 = never */
	uint64_t retention_s;          /**< recovery points older than this are pruned; 0 = 86400 */
	siterec_quiesce_fn quiesce;    /**< or NULL */
	void *quiesce_payload; /**< passed to quiesce */
	siterec_progress_fn progress;  /**< bytes done of bytes to do in initial replication and cycles */
	void *progress_payload; /**< passed to progress */
	/* version 2 */
	uint32_t apply_delay_s;        /**< siterec_replication_apply() starts a batch once the oldest
	                                    write not applied is this old; 0 = 120 */
	uint32_t checkpoint_s;         /**< siterec_replication_follow() ships a checkpoint this often
	                                    between points (any point in time at this granularity;
	                                    a smaller RPO too); 0 = none */
} siterec_replication_options;

/** A struct of the current version, with its defaults (C only) */
#define SITEREC_REPLICATION_OPTIONS_INIT \
	{ SITEREC_REPLICATION_OPTIONS_VERSION, 0, NULL, NULL, 300, 0, 0, NULL, NULL, NULL, NULL, 0, 0 }

/** @since 0.1 */
SITEREC_API int siterec_replication_options_init(siterec_replication_options *opts,
                                                 unsigned int version);

/**
 * Protect a VM (SITEREC_REPLICATION_PROTECT) or open its protection again. The VM
 * description must match what was protected, except that new disks may be added
 * (a disk attached to the VM): they are appended to the protection (state and
 * journal: the VM's write path adds them to its journal first, reopening it with
 * SITEREC_JOURNAL_ADD_DISKS, else SITEREC_EBUSY), each gets its own initial copy
 * with siterec_replication_initial() while the others' cycles go on, and joins
 * the points at the first cycle after its copy (its logs since it was added are
 * applied to its replica then); points before have fewer disks. Errors: SITEREC_EINVAL
 * (an excluded OS disk, no or two OS disks, bad ids, bad policy), SITEREC_EEXISTS,
 * SITEREC_ENOTFOUND (not protected), SITEREC_ECONFLICT (a disk removed or resized),
 * the store's errors, SITEREC_ELEASE when another replicator (another host or
 * handle) holds the VM: the handle takes a writer lease on every protected
 * replica disk (see "Fencing" at the top), held until siterec_replication_free().
 * @since 0.1
 */
SITEREC_API int siterec_replication_open(siterec_replication **out, const siterec_vm *vm,
                                         const siterec_replication_options *opts);

/** Releases the handle's leases (errors ignored: a lost lease stays lost). NULL accepted. @since 0.1 */
SITEREC_API void siterec_replication_free(siterec_replication *r);

/**
 * Renew the handle's leases on the replicas: call at least every 30 s while no
 * initial or cycle call runs (they renew themselves). SITEREC_ELEASE when a
 * lease was lost (the handle is then unusable: free it and open again), the
 * store's errors. @since 0.1
 */
SITEREC_API int siterec_replication_keepalive(siterec_replication *r);

/**
 * Run (or resume) the initial replication of every disk that still needs one,
 * then record the first recovery point (disks added to a protected VM: only
 * their copies; they join at the next cycle). Returns at once when there is
 * nothing to do. @since 0.1
 */
SITEREC_API int siterec_replication_initial(siterec_replication *r);

/** Replication states. */
typedef enum siterec_replication_state {
	SITEREC_REPL_INITIAL = 1,       /**< initial replication pending or running */
	SITEREC_REPL_PROTECTED = 2,     /**< delta cycles */
	SITEREC_REPL_RESYNC = 3,        /**< a resync is needed (log lost, tracking lost) */
	SITEREC_REPL_CRITICAL = 4,      /**< a fatal failure; reason in the status */
	SITEREC_REPL_FAILED_OVER = 5    /**< failed over (failover.h): replication stays stopped and
	                                     siterec_replication_open() refuses the VM (SITEREC_ESTATE)
	                                     until the failover is cancelled, or failback and reprotect */
} siterec_replication_state;

/**
 * The name of a siterec_replication_state, as the state document writes it
 * ("initial", "protected", "resync", "critical", "failed-over"); NULL for another value.
 * @since 0.1
 */
SITEREC_API const char *siterec_replication_state_name(uint32_t state);

#define SITEREC_CYCLE_RESULT_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** What a cycle did (caller sets version). */
typedef struct siterec_cycle_result {
	unsigned int version;        /**< SITEREC_CYCLE_RESULT_VERSION */
	uint32_t kind;               /**< siterec_rp_kind of the point added, 0 if none */
	uint64_t point_id;           /**< id of the point added (0 if none) */
	int64_t cut_time_ms;         /**< its cut */
	uint64_t bytes_shipped;      /**< log bytes sent to the target */
	uint64_t points_pruned; /**< points deleted by retention in this cycle */
} siterec_cycle_result;

/**
 * One delta cycle (see the top of this header; it ships, it does not apply:
 * siterec_replication_apply() does); result may be NULL. Requires the
 * initial replication done (SITEREC_ESTATE otherwise). SITEREC_ELEASE when the
 * handle lost its leases (nothing is written). SITEREC_ERESYNC when a journal
 * log is missing or damaged: the VM is then in SITEREC_REPL_RESYNC until
 * siterec_replication_resync(); SITEREC_ECRITICAL when authentication was
 * refused or a source could not be read as an image (SITEREC_REPL_CRITICAL,
 * recorded when the target lets it be), and in that state. With a 30, 300 or 900 s interval
 * and nothing written since the last point, a point is still added (an RPO is
 * measured from points). With SITEREC_POLICY_CONTINUOUS the caller calls it back
 * to back: each call ships whatever was written since the previous one and adds
 * a point; with nothing written it returns 0 at once, without a point
 * (result->point_id and kind 0) and without a request to the target except a
 * lease renewal at most every 10 s. @since 0.1
 */
SITEREC_API int siterec_replication_cycle(siterec_replication *r, siterec_cycle_result *result);

/**
 * A checkpoint between points: the journal is rotated and each disk's sealed logs
 * are shipped as one log object, recorded in the state; the next point names
 * them, each with its seal time, so that siterec_rp_restore_at() can bring a
 * disk back to any checkpoint (any point in time, at the checkpoint interval's
 * granularity, for as long as the points naming them are retained), and the
 * next cycle has only the writes since to ship (the RPO of a 5 or 15 minute
 * policy then depends little on the churn). Nothing written: no log, no request
 * but the rotation. siterec_replication_follow() calls it every
 * options.checkpoint_s. Errors as siterec_replication_cycle(). @since 0.1
 */
SITEREC_API int siterec_replication_checkpoint(siterec_replication *r, uint64_t *bytes_shipped);

#define SITEREC_APPLY_NOW 0x1u  /**< start a batch whatever the age of what waits (e.g. before a failover or a verify) */

/**
 * Apply shipped logs to the replicas (see the top of this header). Works for
 * about budget_ms (0: until no batch is running) and returns; the next call
 * goes on where this one stopped (after a crash a batch starts over: applying
 * twice is harmless). A batch starts when the oldest write not applied is
 * apply_delay_s old, or at once with SITEREC_APPLY_NOW; it brings the replicas
 * to the newest point at its start, snapshots them and records them as the
 * base of the next points. *waiting (may be NULL) gets the bytes of shipped
 * logs not applied yet (0: the replicas hold the newest point). Renews the
 * leases as cycles do. Errors as siterec_replication_cycle(), SITEREC_EINVAL
 * (flags). @since 0.1
 */
SITEREC_API int siterec_replication_apply(siterec_replication *r, uint32_t budget_ms, uint32_t flags,
                                          uint64_t *waiting);

/**
 * Resync (the seed's resynchronization): bring every replica back to its
 * source when the logs cannot. A cycle that finds a journal log missing or
 * damaged moves the VM to SITEREC_REPL_RESYNC (reason in the status) and fails
 * with SITEREC_ERESYNC; the caller also calls this when it knows tracking was
 * lost (writes that bypassed the journal), and after fixing the cause of a
 * SITEREC_REPL_CRITICAL state. The journal is rotated (a cut); each protected
 * disk's replica is hashed (XXH3-128 of 64 KiB blocks, read from the target)
 * and its source scanned against those hashes: only the differing blocks are
 * written to the replica. Then the VM's writes made meanwhile are applied from
 * the journal and a snapshot point recorded, as after the initial replication
 * (result->bytes_shipped: the differing bytes written). The state stays RESYNC
 * until that point is recorded: after a crash, call it again (the comparison
 * starts over). Earlier points stay valid. Requires the initial replication
 * done (SITEREC_ESTATE). @since 0.1
 */
SITEREC_API int siterec_replication_resync(siterec_replication *r, siterec_cycle_result *result);

/** What siterec_replication_follow() reports. */
typedef enum siterec_follow_kind {
	SITEREC_FOLLOW_TICK = 1,      /**< at least every 500 ms while waiting: a chance to stop */
	SITEREC_FOLLOW_POINT = 2,     /**< a point was added (initial, cycle or resync): cycle */
	SITEREC_FOLLOW_APPLIED = 3,   /**< a batch was applied: the replicas hold point_id */
	SITEREC_FOLLOW_RETRY = 4,     /**< a step failed with error (siterec_error_last() says why);
	                                   the next try is in delay_ms */
	SITEREC_FOLLOW_RESYNC = 5     /**< a resync starts (error: why) */
} siterec_follow_kind;

#define SITEREC_FOLLOW_EVENT_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** An event of siterec_replication_follow(). */
typedef struct siterec_follow_event {
	unsigned int version;         /**< SITEREC_FOLLOW_EVENT_VERSION (set by the library) */
	uint32_t kind;                /**< siterec_follow_kind */
	int error;                    /**< RETRY, RESYNC: the error code */
	uint32_t delay_ms;            /**< RETRY: back-off before the next try */
	uint64_t point_id;            /**< POINT: the point added; APPLIED: the point the replicas hold */
	siterec_cycle_result cycle;   /**< POINT: what the step did */
} siterec_follow_event;

/** Return non-zero to stop siterec_replication_follow(). */
typedef int (*siterec_follow_fn)(const siterec_follow_event *event, void *payload);

/**
 * Run replication on the policy until fn returns non-zero: the initial
 * replication when pending, then a cycle every interval_s (continuous: back to
 * back, pausing 0.5 s after one that found nothing written), applying shipped
 * logs between cycles (siterec_replication_apply() slices that end by the next
 * tick; 300 ms between continuous cycles), keepalive, and a resync when a
 * cycle asks for one. Recoverable failures (SITEREC_ENETWORK, ETIMEOUT,
 * ESTORAGE, EIO, EBUSY, ENOSPC) are retried with exponential back-off from 1 s
 * up to 60 s, each retry reported; a success resets it. Returns 0 once fn
 * stopped it, else the failure that ends replication on this handle:
 * SITEREC_ECRITICAL (authentication refused or a source disk unreadable as an
 * image: the VM is put in SITEREC_REPL_CRITICAL with the reason, when the
 * target can still record it), SITEREC_ELEASE or SITEREC_ECONFLICT (another
 * replicator holds the VM now), SITEREC_EABORTED (a callback), or another error
 * no retry can fix (e.g. SITEREC_ECORRUPT from the catalogue). @since 0.1
 */
SITEREC_API int siterec_replication_follow(siterec_replication *r, siterec_follow_fn fn, void *payload);

#define SITEREC_REPLICATION_STATUS_VERSION 2 /**< the version this header describes: set the struct's version field to it */

/** Where replication stands (caller sets version). */
typedef struct siterec_replication_status {
	unsigned int version;         /**< SITEREC_REPLICATION_STATUS_VERSION */
	uint32_t state;               /**< siterec_replication_state */
	uint64_t generation;          /**< of the state document */
	uint64_t last_point_id;       /**< 0 when none */
	int64_t last_point_time_ms;   /**< cut of the newest point, 0 when none */
	uint64_t points;              /**< number of points kept */
	uint64_t bytes_shipped;       /**< in total since protection */
	uint64_t pending_bytes;       /**< logged and not yet shipped (the churn waiting): the size
	                                   of the journal's logs not shipped yet, headers included */
	char reason[256];             /**< for SITEREC_REPL_CRITICAL / RESYNC, else "" */
	/* version 2 */
	uint64_t applied_point_id;    /**< the newest point the replicas hold (applied) */
	uint64_t waiting_bytes;       /**< shipped log bytes not applied to the replicas yet */
} siterec_replication_status;

/** @since 0.1 */
SITEREC_API int siterec_replication_status_get(siterec_replication *r,
                                               siterec_replication_status *status);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_REPLICATION_H */
