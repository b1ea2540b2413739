/** @file
 * libsiterec — failover: bring a protected VM up on the target side from a
 * recovery point, as a drill (test failover) or for real (planned or unplanned
 * failover), then commit or cancel it.
 *
 * The library owns the order of the steps, the data movement and the state;
 * everything that touches a real host is a callback of the caller: shut the
 * source VM down, create and start the target VM, stop and delete it.
 *
 * Operations. A VM has two slots in its target, each a state document replaced
 * with If-Match (doc/formats.md, "Failover"): "VM/failover-test" for a test
 * failover, "VM/failover" for a planned or unplanned one, so a drill never
 * blocks a real failover. Every step is recorded in the slot's document before
 * it runs; after a crash at any instant, siterec_failover_resume() (from this
 * host or another that opens the same target) finishes the operation, or
 * finishes rolling it back when a cancel was under way. Nothing starts by
 * itself: only a call starts an operation.
 *
 *  - Test failover (siterec_failover_test): the disks of the chosen point are
 *    materialised as new, separate disks (never the live replicas), the target
 *    VM is created with the isolated flag set, and replication goes on
 *    undisturbed. siterec_failover_test_cleanup() deletes the VM (callback) and
 *    exactly the disks the test made. A second test failover of the same VM
 *    while one exists: SITEREC_EEXISTS.
 *  - Planned failover (siterec_failover_run, SITEREC_FAILOVER_PLANNED), on the
 *    source host with its replication handle: the shutdown callback stops the
 *    source VM, a last cycle ships every write it made, and the VM fails over
 *    from that point: no data is lost.
 *  - Unplanned failover (SITEREC_FAILOVER_UNPLANNED), from any host: from the
 *    point the caller chooses (siterec_point_choice).
 *  A planned or unplanned failover first takes the VM over from its
 *  replicator: the replication state document goes to SITEREC_REPL_FAILED_OVER
 *  (its generation + 1, so a replicator's next state write fails with
 *  SITEREC_ECONFLICT), and the writer leases on the replicas are broken and
 *  taken by the failover (a replicator's next write or renewal fails with
 *  SITEREC_ELEASE; siterec_replication_open() refuses a failed-over VM with
 *  SITEREC_ESTATE). The newest point at that instant is the fence: a point an
 *  old primary still adds after it (it may, until it notices, at most one
 *  lease period) is never chosen, and commit deletes it. Until committed, the
 *  point can be changed (the VM is deleted and made again from the other
 *  point) or the failover cancelled (the VM and disks deleted, the replicas'
 *  leases released and the state back to protected: replication can go on
 *  from where it stood). Commit deletes every other point.
 *
 * Disks. On an Azure target with no disk_dir, the failover's disks are page
 * blobs in the same container, "VM/test-disks/DISK" or "VM/failover-disks/DISK", each an
 * attachable fixed VHD the size of its replica. With disk_dir (required on a
 * file:// target), they are files DISK_DIR/DISK.raw or DISK_DIR/DISK.vhd (a
 * fixed VHD, disk.h), as the caller chooses; DISK-test.raw or DISK-test.vhd for
 * a test failover. Disk sizes are those protected.
 *
 * Generation and boot layout (the seed's rule: a generation 2 VM runs as
 * generation 1 on Azure and becomes generation 2 again on failback):
 *  - target SITEREC_TARGET_AZURE: the VM is generation 1: BIOS firmware, the OS
 *    disk as the boot disk (IDE 0:0, the ARM template's osDisk), the data disks
 *    on SCSI LUN 0, 1, ... in the VM's order; the disks are fixed VHDs whose
 *    data part is a whole number of MiB. The source generation is recorded, so
 *    a failback knows to restore it.
 *  - target SITEREC_TARGET_HYPERV (a secondary Hyper-V site): the generation is
 *    kept: generation 2 boots UEFI from SCSI 0:0, generation 1 BIOS from IDE 0:0.
 *  siterec_failover_vm.generation and .firmware tell the create callback which.
 *
 * Networks: each of the VM's NICs names its source network and subnet; a map
 * entry turns a source network into a target network with its subnets: the NIC
 * gets the target subnet of the same name as its source subnet when the target
 * network has one, else the entry's first subnet. A NIC whose network has no
 * entry: SITEREC_EINVAL. A test failover connects every NIC to
 * test_network / its first subnet instead when given, else to the mapped
 * network, and always sets the isolated flag.
 *
 * Threading: one thread at a time per handle. Callbacks run on the calling thread.
 */
#ifndef SITEREC_FAILOVER_H
#define SITEREC_FAILOVER_H

#include "common.h"
#include "store.h"
#include "replication.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The failover side of one protected VM in a target: its failover, test failover and failback slots. */
typedef struct siterec_failover siterec_failover;

/** Kinds of failover; also the slot a function works on. */
typedef enum siterec_failover_type {
	SITEREC_FAILOVER_TEST = 1,       /**< a drill: isolated, replication undisturbed */
	SITEREC_FAILOVER_PLANNED = 2,    /**< source shut down first: no data loss */
	SITEREC_FAILOVER_UNPLANNED = 3,  /**< the source is gone: from a chosen point */
	SITEREC_FAILOVER_FAILBACK = 4    /**< back to the on-premises side (siterec_failback_run) */
} siterec_failover_type;

/** How the recovery point is chosen. */
typedef enum siterec_point_how {
	SITEREC_POINT_LATEST = 1,            /**< the newest point: every log shipped, applied to the new disks */
	SITEREC_POINT_LATEST_PROCESSED = 2,  /**< the newest point the replicas hold (no log left to apply: fastest) */
	SITEREC_POINT_LATEST_APP = 3,        /**< the newest app-consistent point */
	SITEREC_POINT_ID = 4,                /**< the point whose id is id */
	SITEREC_POINT_TIME = 5               /**< the disks as they were at time_ms (any point in time, rp.h) */
} siterec_point_how;

/** A choice of recovery point. */
typedef struct siterec_point_choice {
	uint32_t how;           /**< siterec_point_how */
	uint32_t reserved;      /**< 0 */
	uint64_t id;            /**< SITEREC_POINT_ID */
	int64_t time_ms;        /**< SITEREC_POINT_TIME: ms since the epoch */
} siterec_point_choice;

/** Where the target VM runs. */
typedef enum siterec_target_kind {
	SITEREC_TARGET_AZURE = 1,    /**< generation 1, fixed VHD disks, an ARM template */
	SITEREC_TARGET_HYPERV = 2    /**< a secondary site: generation kept */
} siterec_target_kind;

/** Disk files produced with disk_dir. */
typedef enum siterec_disk_output {
	SITEREC_OUTPUT_RAW = 1,      /**< DISK.raw */
	SITEREC_OUTPUT_VHD = 2       /**< DISK.vhd, a fixed VHD */
} siterec_disk_output;

/** One NIC of the source VM. */
typedef struct siterec_nic {
	const char *network;     /**< source network (virtual switch / VM network) name */
	const char *subnet;      /**< its subnet name, or NULL */
	const char *ip;          /**< static IP to keep on the target, or NULL (dynamic) */
} siterec_nic;

/** Network mapping: one source network to a target network. */
typedef struct siterec_network_map {
	const char *source_network; /**< a network of the source VMs */
	const char *target_network; /**< the network it maps to on the target */
	uint32_t n_subnets;              /**< >= 1 */
	uint32_t reserved;               /**< 0 */
	const char *const *subnets;      /**< the target network's subnets; [0] is the default */
} siterec_network_map;

#define SITEREC_FAILOVER_REQUEST_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/**
 * What to fail over to. Every string is copied into the operation's state
 * (so a resume from another host has it); names are 1..64 characters, any
 * UTF-8 except control characters and quotes.
 */
typedef struct siterec_failover_request {
	unsigned int version;            /**< SITEREC_FAILOVER_REQUEST_VERSION */
	uint32_t type;                   /**< siterec_failover_type (siterec_failover_run: PLANNED or UNPLANNED) */
	siterec_point_choice point;      /**< ignored by a planned failover (its last point) */
	uint32_t target;                 /**< siterec_target_kind; 0 = AZURE */
	uint32_t output;                 /**< siterec_disk_output with disk_dir; 0 = VHD */
	const char *disk_dir;            /**< directory for the disk files (created), or NULL (Azure: blobs) */
	const char *vm_name;             /**< target VM name; NULL = the VM's name (its id when none),
	                                      with "-test" appended for a test failover */
	const char *vm_size;             /**< Azure size, NULL = "Standard_D2s_v3" */
	const char *os_type;             /**< "Windows" or "Linux"; NULL = "Windows" */
	const char *location;            /**< Azure region for the template; NULL = the resource group's */
	uint32_t n_nics; /**< NICs of the source VM (at most 32) */
	uint32_t n_networks; /**< network map entries (at most 256) */
	const siterec_nic *nics; /**< n_nics entries */
	const siterec_network_map *networks; /**< n_networks entries */
	const char *test_network;        /**< test failover: the isolated network, or NULL */
	const char *test_subnet;         /**< its subnet, or NULL (then "default") */
} siterec_failover_request;

/** A struct of the current version, with its defaults (C only) */
#define SITEREC_FAILOVER_REQUEST_INIT \
	{ SITEREC_FAILOVER_REQUEST_VERSION, 0, { 0, 0, 0, 0 }, 0, 0, NULL, NULL, NULL, NULL, NULL, 0, 0, \
	  NULL, NULL, NULL, NULL }

/** @since 0.1 */
SITEREC_API int siterec_failover_request_init(siterec_failover_request *req, unsigned int version);

/** One disk of the target VM, as the create callback sees it. */
typedef struct siterec_failover_disk {
	const char *id;          /**< the source disk's id */
	const char *location;    /**< the blob's URL, or the file's path */
	uint64_t size;           /**< bytes the VM sees (the protected size) */
	uint32_t role;           /**< siterec_vm_disk_role */
	uint32_t lun;            /**< OS disk 0 (its controller), data disks 0, 1, ... */
} siterec_failover_disk;

/** One NIC of the target VM: mapped. */
typedef struct siterec_failover_nic {
	const char *network; /**< the target network */
	const char *subnet; /**< its subnet */
	const char *ip;          /**< or NULL */
} siterec_failover_nic;

#define SITEREC_FIRMWARE_BIOS 1u /**< boots BIOS (generation 1) */
#define SITEREC_FIRMWARE_UEFI 2u /**< boots UEFI (generation 2) */

/** The target VM to create (valid during the callback only). */
typedef struct siterec_failover_vm {
	unsigned int version;          /**< 1 */
	uint32_t type;                 /**< siterec_failover_type */
	const char *vm_id;             /**< the protected VM */
	const char *name;              /**< the target VM's name */
	uint32_t generation;           /**< 1 or 2 (rules at the top of this header) */
	uint32_t source_generation; /**< the protected VM's generation */
	uint32_t firmware;             /**< SITEREC_FIRMWARE_* */
	uint32_t isolated;             /**< 1: test failover, keep it off the production network */
	uint64_t point_id;             /**< the point the disks hold */
	int64_t point_time_ms;         /**< its cut (SITEREC_POINT_TIME: the instant restored) */
	uint32_t n_disks; /**< entries of disks */
	uint32_t n_nics; /**< entries of nics */
	const siterec_failover_disk *disks;   /**< the OS disk first */
	const siterec_failover_nic *nics; /**< the NICs, mapped to the target networks */
	const char *vm_size; /**< Azure VM size */
	const char *os_type; /**< "Windows" or "Linux" */
	const char *arm_template;      /**< SITEREC_TARGET_AZURE: a deployable ARM template (JSON), else NULL */
} siterec_failover_vm;

/** Create and start the target VM. May be called again for the same VM after a crash: an existing VM is success. */
typedef int (*siterec_vm_start_fn)(const siterec_failover_vm *vm, void *payload);
/** Stop and delete the target VM (not its disks). A VM that does not exist is success. */
typedef int (*siterec_vm_remove_fn)(const siterec_failover_vm *vm, void *payload);
/**
 * Shut a VM down and return once it is off and wrote its last write: the source
 * VM (vm_id: the protected VM's id) in a planned failover, the failed-over VM
 * (vm_id: its name on the target) in a failback. A VM that is off is success.
 */
typedef int (*siterec_vm_shutdown_fn)(const char *vm_id, void *payload);

#define SITEREC_FAILOVER_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_failover_open(): the target, the VM and the host callbacks. */
typedef struct siterec_failover_options {
	unsigned int version;            /**< SITEREC_FAILOVER_OPTIONS_VERSION */
	uint32_t flags;                  /**< 0 */
	siterec_store *store;            /**< the target holding the VM's replicas and points; must outlive the handle */
	const char *vm_id; /**< the protected VM */
	siterec_replication *replication;/**< planned failover: the source's replication handle, else NULL */
	siterec_vm_start_fn start;       /**< required */
	siterec_vm_remove_fn remove;     /**< required */
	siterec_vm_shutdown_fn shutdown; /**< planned failover: required */
	void *payload;                   /**< passed to the three callbacks */
	siterec_progress_fn progress;    /**< bytes of disk materialised of the total, or NULL */
	void *progress_payload; /**< passed to progress */
} siterec_failover_options;

/** A struct of the current version, with its defaults (C only) */
#define SITEREC_FAILOVER_OPTIONS_INIT \
	{ SITEREC_FAILOVER_OPTIONS_VERSION, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/** @since 0.1 */
SITEREC_API int siterec_failover_options_init(siterec_failover_options *opts, unsigned int version);

/**
 * Open the failover side of VM vm_id in store: reads its slots. Does not start
 * or resume anything. SITEREC_ENOTFOUND when the VM was never protected there
 * (no replication state document), the store's errors. @since 0.1
 */
SITEREC_API int siterec_failover_open(siterec_failover **out, const siterec_failover_options *opts);

/** NULL accepted. Does not release what an operation holds (a failed-over VM keeps its leases). @since 0.1 */
SITEREC_API void siterec_failover_free(siterec_failover *f);

/**
 * Start a test failover (req->type TEST or 0) and run it until the target VM is
 * started. SITEREC_EEXISTS when a test failover exists, SITEREC_ENOTFOUND when
 * no point fits the choice, SITEREC_EINVAL (request), SITEREC_EABORTED (a
 * callback: the operation stays recorded; resume or clean it up). @since 0.1
 */
SITEREC_API int siterec_failover_test(siterec_failover *f, const siterec_failover_request *req);

/** Delete the test failover's VM and disks, then its record. SITEREC_ENOTFOUND when there is none. @since 0.1 */
SITEREC_API int siterec_failover_test_cleanup(siterec_failover *f);

/**
 * Planned or unplanned failover (req->type), run until the target VM is started
 * (state SITEREC_FO_FAILED_OVER, not committed). Planned: needs the replication
 * handle and the shutdown callback in the options (SITEREC_EINVAL); the shutdown
 * is called, then replication cycles until a point holds every write (the
 * handle is spent afterwards: free it). SITEREC_EEXISTS when a failover exists
 * (resume, commit or cancel it first). @since 0.1
 */
SITEREC_API int siterec_failover_run(siterec_failover *f, const siterec_failover_request *req);

/**
 * Change the point of a failover not committed yet: the VM is removed, its
 * disks made again from the new point, the VM started again. SITEREC_ESTATE
 * when committed or when no failover is failed over. @since 0.1
 */
SITEREC_API int siterec_failover_change_point(siterec_failover *f, const siterec_point_choice *point);

/**
 * Commit the failover: every point but the one used is deleted (with its
 * snapshots and logs) and the operation is final. SITEREC_ESTATE when there is
 * no failed-over VM. @since 0.1
 */
SITEREC_API int siterec_failover_commit(siterec_failover *f);

/**
 * Cancel a failover not committed (type PLANNED/UNPLANNED slot): remove the VM,
 * delete its disks, release the replicas and put replication back where it
 * stood (SITEREC_REPL_PROTECTED: siterec_replication_open() works again).
 * SITEREC_ESTATE once committed, SITEREC_ENOTFOUND when there is none. @since 0.1
 */
SITEREC_API int siterec_failover_cancel(siterec_failover *f);

/**
 * Finish whatever operation a crash interrupted, in both slots: an operation
 * being started goes on to its target VM started, a cleanup, cancel, change or
 * commit goes on to its end. A planned failover cut short before its last point
 * needs the replication handle and shutdown callback in the options (else
 * SITEREC_ESTATE; cancel it instead). *resumed (may be NULL) gets how many
 * operations it advanced (0: nothing was interrupted). @since 0.1
 */
SITEREC_API int siterec_failover_resume(siterec_failover *f, uint32_t *resumed);

/** Phases of an operation. */
typedef enum siterec_failover_phase {
	SITEREC_FO_NONE = 0,            /**< no operation in this slot */
	SITEREC_FO_STARTING = 1,        /**< taking over, choosing the point (planned: shutting down, last cycle) */
	SITEREC_FO_MATERIALISING = 2,   /**< making the disks */
	SITEREC_FO_STARTING_VM = 3,     /**< the start callback */
	SITEREC_FO_FAILED_OVER = 4,     /**< the target VM runs; not committed (test: the drill runs) */
	SITEREC_FO_CHANGING = 5,        /**< changing the point: removing the VM and disks */
	SITEREC_FO_COMMITTING = 6,      /**< deleting the other points */
	SITEREC_FO_COMMITTED = 7,       /**< final */
	SITEREC_FO_CANCELLING = 8,      /**< cancel or test cleanup: removing the VM and disks */
	SITEREC_FO_SYNCING = 9,         /**< failback: copying what differs while the failed-over VM runs */
	SITEREC_FO_SHUTTING_DOWN = 10,  /**< failback: the downtime begins (shutdown callback, last cut) */
	SITEREC_FO_DELTA = 11,          /**< failback: copying the last changes */
	SITEREC_FO_REPROTECTING = 12    /**< failback committed, reprotect under way */
} siterec_failover_phase;

/** Name of a phase ("none", "starting", ..., as the state document writes it); NULL otherwise. @since 0.1 */
SITEREC_API const char *siterec_failover_phase_name(uint32_t phase);

#define SITEREC_FAILOVER_STATUS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Where an operation stands (caller sets version). */
typedef struct siterec_failover_status {
	unsigned int version;         /**< SITEREC_FAILOVER_STATUS_VERSION */
	uint32_t type;                /**< siterec_failover_type, 0 when the slot is empty */
	uint32_t phase;               /**< siterec_failover_phase */
	uint32_t n_disks; /**< disks of the operation */
	uint64_t generation;          /**< of the slot's document */
	uint64_t point_id;            /**< the point used (0 before it is chosen) */
	int64_t point_time_ms;        /**< its cut, or the instant restored */
	uint64_t fence_id;            /**< planned/unplanned: the newest point when the VM was taken over */
	uint64_t bytes_written;       /**< disk bytes materialised (all point changes included) */
	int64_t started_ms;           /**< when the operation began */
	int64_t shutdown_ms;          /**< planned: when the shutdown callback was called, else 0 */
	int64_t vm_started_ms;        /**< when the start callback returned, else 0 */
	char vm_name[128]; /**< the target VM (failback: the on-premises VM) */
	uint64_t bytes_differing;     /**< failback, minimize downtime: bytes the checksums found differing */
	uint64_t bytes_delta;         /**< failback: bytes written in the downtime phase */
} siterec_failover_status;

/**
 * The slot's state, read from the target (another host may have moved it).
 * type: SITEREC_FAILOVER_TEST for the test slot, PLANNED or UNPLANNED for the
 * failover, FAILBACK for the failback. For a planned failover and a failback,
 * vm_started_ms - shutdown_ms is the downtime phase. @since 0.1
 */
SITEREC_API int siterec_failover_status_get(siterec_failover *f, uint32_t type,
                                            siterec_failover_status *status);

/**
 * The target VM's description of a slot's operation as a deployable ARM
 * template (JSON: managed disks imported from the disks' VHD blob URLs, with
 * hyperVGeneration V1, NICs in the mapped subnets, the VM attaching them),
 * into *json (free with siterec_free()). SITEREC_ESTATE before the disks are
 * made, SITEREC_EUNSUPPORTED for a Hyper-V target or disk files. @since 0.1
 */
SITEREC_API int siterec_failover_arm_template(siterec_failover *f, uint32_t type, char **json);

/* ---- failback and reprotect ------------------------------------------------
 *
 * After a committed failover the VM runs on the target side; a failback is a
 * planned failover in the other direction, into the on-premises disks (the
 * original images, raw or fixed VHD, written in place) or into new files (an
 * alternate location), then the on-premises VM is started through the start
 * callback (type SITEREC_FAILOVER_FAILBACK, the source generation restored:
 * generation 2 boots UEFI from SCSI 0:0 again; it creates the VM when it does
 * not exist). Its state is a third slot, "VM/failback", persisted as the
 * others; siterec_failover_resume() finishes it.
 *
 *  - SITEREC_FAILBACK_MINIMIZE_DOWNTIME: while the failed-over VM keeps
 *    running, each on-premises disk and its failed-over disk are checksummed
 *    (XXH3-128 per block_size block: the failed-over side computes its own, so
 *    only checksums and differing blocks cross) and the differing blocks copied;
 *    then the downtime phase: the shutdown callback stops the failed-over VM and
 *    only the writes it made since the comparison are copied. Tracked: when the
 *    failed-over VM's write path writes through a journal (journal.h) at
 *    journal_dir, opened with the failover's disks (ids and protected sizes,
 *    any order) before its first write, those writes are read from the journal
 *    (two rotations before the comparison; the downtime phase rotates once more
 *    and copies the logs since). Scanned: without journal_dir, the downtime
 *    phase checksums both disks again and copies what differs.
 *  - SITEREC_FAILBACK_FULL: shutdown first, then every disk copied whole.
 *
 * siterec_failback_commit() removes the failed-over VM (remove callback) and
 * its disks; siterec_failback_cancel() before that removes the on-premises VM
 * when it was started and starts the failed-over VM again. Then
 * siterec_failover_reprotect() hands the VM back to replication: the failover's
 * leases are released, the replication state goes to SITEREC_REPL_RESYNC, and
 * the slots' documents are deleted; the caller opens replication and runs
 * siterec_replication_resync(), which compares each replica with the disk that
 * came back and writes only the blocks that differ (no full copy).
 */

/** Failback modes. */
typedef enum siterec_failback_mode {
	SITEREC_FAILBACK_MINIMIZE_DOWNTIME = 1,
	SITEREC_FAILBACK_FULL = 2
} siterec_failback_mode;

/** Where a disk fails back to. */
typedef struct siterec_failback_disk {
	const char *id;          /**< a disk of the failover (the protected disk's id) */
	const char *path;        /**< the on-premises image (raw or fixed VHD, at least the protected size) */
} siterec_failback_disk;

#define SITEREC_FAILBACK_ALTERNATE 0x1u  /**< the paths are new files, created (a fixed VHD when the name
                                              ends in .vhd, else raw); SITEREC_EEXISTS if one exists */

#define SITEREC_FAILBACK_REQUEST_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** What to fail back to (siterec_failback_run()). */
typedef struct siterec_failback_request {
	unsigned int version;            /**< SITEREC_FAILBACK_REQUEST_VERSION */
	uint32_t mode;                   /**< siterec_failback_mode */
	uint32_t flags;                  /**< SITEREC_FAILBACK_* */
	uint32_t block_size;             /**< checksum block, a power of two 512..1 MiB; 0 = 4096 */
	uint32_t n_disks;                /**< every disk of the failover, once */
	uint32_t reserved;               /**< 0 */
	const siterec_failback_disk *disks; /**< n_disks entries */
	const char *journal_dir;         /**< the failed-over VM's journal, or NULL (scanned) */
	const char *vm_name;             /**< the on-premises VM's name; NULL = the protected VM's name */
} siterec_failback_request;

#define SITEREC_FAILBACK_REQUEST_INIT { SITEREC_FAILBACK_REQUEST_VERSION, 0, 0, 0, 0, 0, NULL, NULL, NULL } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_failback_request_init(siterec_failback_request *req, unsigned int version);

/**
 * Fail back a committed failover (SITEREC_ESTATE otherwise), until the
 * on-premises VM is started. Needs the shutdown callback in the options
 * (SITEREC_EINVAL). SITEREC_EEXISTS when a failback exists, SITEREC_EINVAL
 * (request: a disk missing or named twice, a path too short, bad mode or block
 * size), SITEREC_EUNSUPPORTED (an image that cannot be written: VHDX, dynamic VHD),
 * SITEREC_EABORTED (a callback; the failback stays recorded: resume or cancel it).
 * @since 0.1
 */
SITEREC_API int siterec_failback_run(siterec_failover *f, const siterec_failback_request *req);

/** Commit the failback: the failed-over VM and its disks are deleted. SITEREC_ESTATE before it ran. @since 0.1 */
SITEREC_API int siterec_failback_commit(siterec_failover *f);

/**
 * Cancel a failback not committed: the on-premises VM is removed when it was
 * started, the failed-over VM started again when it was shut down, the record
 * deleted (the on-premises disks keep what was copied: a later failback copies
 * only what differs). SITEREC_ESTATE once committed. @since 0.1
 */
SITEREC_API int siterec_failback_cancel(siterec_failover *f);

/**
 * After a committed failback: give the VM back to replication (see above).
 * SITEREC_ESTATE before the failback is committed. @since 0.1
 */
SITEREC_API int siterec_failover_reprotect(siterec_failover *f);

/* ---- recovery plans -----------------------------------------------------------
 *
 * A plan (a JSON document: doc/formats.md, "Recovery plan") lists machines (VM
 * ids protected in one target) in ordered groups, at most 1000 machines and 64
 * groups. A run applies one operation to all of them: the groups in order, the
 * machines of a group in parallel (up to max_parallel at once, each on its own
 * thread with its own store handle and failover handle), with the group's
 * actions before and after it: a script (/bin/sh -c COMMAND, with a timeout,
 * its output captured), a callback, or a manual action that pauses the run
 * until siterec_plan_resume(). An action may name the operations it runs for;
 * the shutdown of source machines is part of a planned failover only. Each
 * machine's request (disks, networks, point, failback disks) comes from the
 * plan document: per machine, over the plan's defaults.
 *
 * Multi-VM consistency: with "common_cut" in the plan, a failover whose point
 * is "latest" restores every machine at one common instant (SITEREC_POINT_TIME):
 * the newest point cut that every machine of the plan has reached, each machine
 * at its newest point or checkpoint at or before it.
 *
 * The run's state is a local file (state_path), replaced durably after every
 * step: a run cut short by a crash is finished by siterec_plan_resume() (the
 * machines' own operations resume through siterec_failover_resume()). A
 * machine that fails fails the run once the other machines of its group
 * finished (state SITEREC_PLAN_FAILED, the error returned); resume retries it.
 */

/** A recovery plan and the state of its run. */
typedef struct siterec_plan siterec_plan;

/** What a plan run does to each machine. */
typedef enum siterec_plan_op {
	SITEREC_PLAN_TEST = 1,           /**< test failover */
	SITEREC_PLAN_CLEANUP = 2,        /**< test failover cleanup */
	SITEREC_PLAN_PLANNED = 3,        /**< planned failover */
	SITEREC_PLAN_UNPLANNED = 4,      /**< unplanned failover */
	SITEREC_PLAN_COMMIT = 5,         /**< commit the failovers (or the failbacks, when they ran) */
	SITEREC_PLAN_FAILBACK = 6,       /**< failback */
	SITEREC_PLAN_CANCEL = 7          /**< cancel the failovers (or failbacks) not committed */
} siterec_plan_op;

/** States of a plan run. */
typedef enum siterec_plan_state {
	SITEREC_PLAN_IDLE = 0,           /**< no run recorded */
	SITEREC_PLAN_RUNNING = 1,        /**< under way (or cut short by a crash: resume it) */
	SITEREC_PLAN_PAUSED = 2,         /**< waiting at a manual action: resume it */
	SITEREC_PLAN_DONE = 3,
	SITEREC_PLAN_FAILED = 4          /**< a machine or an action failed: resume retries it */
} siterec_plan_state;

/** What a run reports. */
typedef enum siterec_plan_event_kind {
	SITEREC_PLAN_EV_GROUP = 1,       /**< a group starts */
	SITEREC_PLAN_EV_MACHINE = 2,     /**< a machine's operation ended (error 0 or its failure) */
	SITEREC_PLAN_EV_ACTION = 3,      /**< an action ended (error 0 or its failure; output for a script) */
	SITEREC_PLAN_EV_PAUSED = 4       /**< a manual action: the run pauses (message: its text) */
} siterec_plan_event_kind;

#define SITEREC_PLAN_EVENT_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** An event of a plan run. */
typedef struct siterec_plan_event {
	unsigned int version;        /**< SITEREC_PLAN_EVENT_VERSION (set by the library) */
	uint32_t kind;               /**< siterec_plan_event_kind */
	uint32_t op;                 /**< siterec_plan_op */
	uint32_t group;              /**< index of the group */
	int error;                   /**< 0 or the failure (siterec_error_last() on the reporting thread says why) */
	uint32_t reserved; /**< 0 */
	const char *group_name; /**< the group's name */
	const char *vm_id;           /**< MACHINE */
	const char *action;          /**< ACTION, PAUSED: its name */
	const char *output;          /**< ACTION of a script: stdout and stderr, at most 64 KiB (the end), else NULL */
	const char *message;         /**< PAUSED: the manual action's text; else NULL */
	uint64_t elapsed_ms;         /**< MACHINE, ACTION: how long it took */
} siterec_plan_event;

/** Events are reported on the thread that called run or resume; return non-zero to stop the run after this step (resume later). */
typedef int (*siterec_plan_event_fn)(const siterec_plan_event *event, void *payload);
/** A "callback" action: name as in the plan; non-zero fails the action. Called on the run's thread. */
typedef int (*siterec_plan_action_fn)(const char *action, uint32_t op, const char *group, void *payload);
/** Planned failover: the replication handle of vm_id on this (source) host, into *out; the plan frees it. Called on a worker thread. */
typedef int (*siterec_plan_replication_fn)(const char *vm_id, siterec_replication **out, void *payload);

#define SITEREC_PLAN_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_plan_open(). */
typedef struct siterec_plan_options {
	unsigned int version;                    /**< SITEREC_PLAN_OPTIONS_VERSION */
	uint32_t flags;                          /**< 0 */
	const char *url;                         /**< the target holding the plan's VMs (siterec_store_open) */
	const siterec_store_options *store_opts; /**< its options and credentials (NULL: defaults); copied */
	const char *state_path;                  /**< local file of the run's state (required) */
	uint32_t max_parallel;                   /**< machines of a group at once; 0 = 8, at most 64 */
	uint32_t reserved;                       /**< 0 */
	siterec_vm_start_fn start;               /**< as in siterec_failover_options; called from worker */
	siterec_vm_remove_fn remove;             /**< threads, at the same time for several machines: */
	siterec_vm_shutdown_fn shutdown;         /**< they must be thread-safe */
	void *payload; /**< passed to start, remove and shutdown */
	siterec_plan_replication_fn replication; /**< planned failover (and its resume): required then */
	siterec_plan_action_fn action;           /**< "callback" actions; NULL fails them */
	siterec_plan_event_fn event;             /**< or NULL */
	void *event_payload;                     /**< for action, replication and event */
} siterec_plan_options;

/** A struct of the current version, with its defaults (C only) */
#define SITEREC_PLAN_OPTIONS_INIT \
	{ SITEREC_PLAN_OPTIONS_VERSION, 0, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/** @since 0.1 */
SITEREC_API int siterec_plan_options_init(siterec_plan_options *opts, unsigned int version);

/**
 * Parse and check a plan document (json, len bytes; copied) and read the run's
 * state file when it exists (a run of the same plan name; another plan's:
 * SITEREC_ECONFLICT). SITEREC_EINVAL (a bad document: the message names the
 * place; a machine twice; too many machines or groups), SITEREC_EVERSION,
 * SITEREC_ECORRUPT (the state file). Opens nothing in the target. @since 0.1
 */
SITEREC_API int siterec_plan_open(siterec_plan **out, const char *json, size_t len,
                                  const siterec_plan_options *opts);

/** NULL accepted. @since 0.1 */
SITEREC_API void siterec_plan_free(siterec_plan *p);

/**
 * Start a run of op (siterec_plan_op) and drive it until it is done, paused,
 * failed or stopped by the event callback; *state (may be NULL) gets the
 * siterec_plan_state it stopped in. SITEREC_EBUSY when a run of the plan is
 * recorded and not done (resume it). Returns 0 when done or paused (check
 * *state), else the first failure. @since 0.1
 */
SITEREC_API int siterec_plan_run(siterec_plan *p, uint32_t op, uint32_t *state);

/**
 * Go on with the recorded run: past a manual action, after a crash, or
 * retrying what failed. SITEREC_ENOTFOUND when no run is recorded; a done run:
 * 0 at once. As siterec_plan_run() otherwise. @since 0.1
 */
SITEREC_API int siterec_plan_resume(siterec_plan *p, uint32_t *state);

#define SITEREC_PLAN_STATUS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Where a plan run stands (siterec_plan_status_get()). */
typedef struct siterec_plan_status {
	unsigned int version;        /**< SITEREC_PLAN_STATUS_VERSION */
	uint32_t state;              /**< siterec_plan_state */
	uint32_t op;                 /**< of the run, 0 when none */
	uint32_t group;              /**< the group under way (or paused at, or failed in) */
	uint32_t n_groups; /**< groups of the plan */
	uint32_t n_machines; /**< machines of the plan */
	uint32_t machines_done;      /**< in this run */
	uint32_t machines_failed; /**< in this run */
	int64_t started_ms; /**< when the run began (ms since the epoch) */
	int64_t common_time_ms;      /**< a common-cut run: the instant chosen, else 0 */
	char paused_at[128];         /**< PAUSED: the manual action's name */
	char error[256];             /**< FAILED: what failed */
} siterec_plan_status;

/** The run's state (as recorded). @since 0.1 */
SITEREC_API int siterec_plan_status_get(siterec_plan *p, siterec_plan_status *status);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_FAILOVER_H */
