/*
 * libsiterec — the deployment planner: from a churn profile (bytes written per
 * disk per fixed interval, over hours or days), what the Azure Site Recovery
 * Deployment Planner reports for Hyper-V to Azure: which VMs fit the replication
 * limits, the bandwidth needed for an RPO of 15, 30 and 60 minutes (90% and 100%
 * of the time), the storage for the replicas and the retention window, the time
 * of the initial replication, and the copy frequency each VM can sustain.
 *
 * Input. The tracker's activity record (doc/formats.md) only holds a bitmap of
 * the regions written since the last save, not bytes per interval, so it cannot
 * serve as a profile. The profile is instead a list of samples, given one by one
 * (siterec_planner_add_sample(): an application counting the bytes it passes to
 * siterec_tracker_mark() or siterec_journal_write() per interval can feed it
 * directly) or as a CSV file (siterec_planner_load_csv(), format in
 * doc/formats.md, "Churn profile (CSV)"). A sample is (timestamp, VM, disk, disk
 * size, bytes written in the interval starting at timestamp). Samples of one
 * disk in one interval add up; an interval without a sample of a disk counts as
 * 0 bytes written to it.
 *
 * Limits checked (defaults; each can be changed in the options), from Microsoft's
 * public documentation of Azure Site Recovery for Hyper-V to Azure:
 *  - disk size <= 4,095 GiB (4095 * 2^30 bytes): "Support matrix for disaster
 *    recovery of on-premises Hyper-V VMs to Azure", Azure VM requirements, "Data
 *    disk VHD size: up to 4,095 GB"; the Deployment Planner report marks a VM
 *    incompatible when "Disk size is greater than 4,095 GB" ("Analyze the Azure
 *    Site Recovery Deployment Planner report", Incompatible VMs). The smaller
 *    OS-disk limits (2,048 GB generation 1, 300 GB generation 2) are not checked:
 *    a profile does not say which disk is the OS disk.
 *  - disks per VM <= 17: the same support matrix, "Operating system disk count:
 *    1" and "Data disk count: 16 or less".
 *  - churn per VM <= 20 MB/s (20,000,000 bytes/s) and churn per disk <= 20 MB/s:
 *    the Deployment Planner report's "Azure Site Recovery limits" table (premium
 *    storage, 16 KB or larger I/O: 20 MB/s per VM, 1,684 GB per VM per day) and
 *    its incompatibility reason "Source VM average data churn exceeds the
 *    supported Site Recovery data churn limit of 20 MB/s", given per disk. (With
 *    equal defaults a disk over its limit also puts its VM over; both are named.)
 * Churn is compared with the limits as the planner does: percentile value (95th)
 * with the growth factor (30%) applied.
 *
 * Formulas. Δ is the sampling interval (options.interval_s, or the smallest gap
 * between two distinct timestamps; 60 s when there is only one), N the number of
 * intervals from the first timestamp to the last, c(k) the churn of the series
 * (a disk, a VM: the sum of its disks, or all VMs) in interval k in bytes/s
 * (bytes written / Δ), p the percentile, g the growth in percent. As in the ASR
 * Deployment Planner ("About the Azure Site Recovery Deployment Planner for
 * Hyper-V": "all the preceding tool calculations are performed assuming a 30%
 * growth factor ... and using a 95th percentile value of all the profiling
 * metrics"):
 *  - P = the p-th percentile of c(0..N-1), nearest rank: the value of rank
 *    ceil(p * N / 100) (at least 1) in ascending order ("churn p95");
 *  - planned churn: c'(k) = min(c(k), P) * (1 + g/100): the profile with values
 *    above the percentile taken as outliers and lowered to it, then grown;
 *  - bandwidth for an RPO of R seconds: take every run of m = min(N, max(1,
 *    ceil(R / Δ))) consecutive intervals (N - m + 1 windows) and its average
 *    a(j) of c'. With a bandwidth of at least max a(j), the upload backlog never
 *    holds more than R seconds of uploading, so every write is shipped within R:
 *    "RPO met 100% of the time" = max a(j) * 8 bits; "90% of the time" = the
 *    90th percentile (nearest rank) of the a(j) * 8. In Mbps (10^6 bit/s).
 *  - copy frequency sustainable at the given bandwidth B: the shortest of 30,
 *    300 and 900 s whose 100% bandwidth (R = that frequency) is <= B: each copy
 *    cycle's changes are then shipped before the next cycle. 0 when even 900 s
 *    needs more than B.
 *  - replica storage = the sum of the disk sizes (full-size replica disks);
 *    retention storage = mean churn (all bytes written / (N * Δ)) * (1 + g/100)
 *    * retention_s: the changes kept by the recovery points of the window;
 *  - initial replication time = replica storage * 8 / (B * 10^6) seconds (every
 *    disk copied whole over the whole bandwidth).
 * Totals apply the same formulas to all VMs together (the sum of their churn in
 * each interval: the link is shared); a VM's own figures assume it has the whole
 * bandwidth.
 *
 * Reports: JSON (siterec_planner_report_json()) and a self-contained HTML page
 * with an inline SVG chart of churn over time against the bandwidth line
 * (siterec_planner_report_html()); per-VM figures also through
 * siterec_planner_vm_get().
 *
 * Threading: one handle, one thread at a time.
 */
#ifndef SITEREC_PLANNER_H
#define SITEREC_PLANNER_H

#include "common.h"
#include "tracker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct siterec_planner siterec_planner;

/** Default limits (see the comment at the top for their sources). */
#define SITEREC_PLANNER_DISK_SIZE_LIMIT 4396972769280ull /**< 4,095 GiB */
#define SITEREC_PLANNER_DISK_COUNT_LIMIT 17u             /**< 1 OS disk + 16 data disks */
#define SITEREC_PLANNER_DISK_CHURN_LIMIT 20000000ull     /**< bytes/s per disk (20 MB/s) */
#define SITEREC_PLANNER_VM_CHURN_LIMIT 20000000ull       /**< bytes/s per VM (20 MB/s) */

/** growth_percent value for no growth at all (0 means the default, 30). */
#define SITEREC_PLANNER_GROWTH_NONE 0xFFFFFFFFu

/** Limits a VM or disk failed (siterec_planner_vm.failed; bits). */
#define SITEREC_PLANNER_LIMIT_DISK_CHURN 0x1u /**< a disk's planned churn is over the disk limit */
#define SITEREC_PLANNER_LIMIT_VM_CHURN 0x2u   /**< the VM's planned churn is over the VM limit */
#define SITEREC_PLANNER_LIMIT_DISK_SIZE 0x4u  /**< a disk is larger than the size limit */
#define SITEREC_PLANNER_LIMIT_DISK_COUNT 0x8u /**< the VM has more disks than the count limit */

#define SITEREC_PLANNER_OPTIONS_VERSION 1

/** Options of siterec_planner_open(). 0 in a field means its default. */
typedef struct siterec_planner_options {
	unsigned int version;      /**< SITEREC_PLANNER_OPTIONS_VERSION */
	uint32_t percentile;       /**< 1..100; 0 = 95 */
	uint32_t growth_percent;   /**< 1..1000; 0 = 30; SITEREC_PLANNER_GROWTH_NONE = 0% */
	uint32_t interval_s;       /**< sampling interval; 0 = inferred from the timestamps */
	double bandwidth_mbps;     /**< available bandwidth, Mbps (10^6 bit/s), > 0; 0 = 100 */
	uint64_t retention_s;      /**< recovery-point retention window; 0 = 86400 (24 h) */
	uint64_t disk_churn_limit; /**< bytes/s; 0 = SITEREC_PLANNER_DISK_CHURN_LIMIT */
	uint64_t vm_churn_limit;   /**< bytes/s; 0 = SITEREC_PLANNER_VM_CHURN_LIMIT */
	uint64_t disk_size_limit;  /**< bytes; 0 = SITEREC_PLANNER_DISK_SIZE_LIMIT */
	uint32_t disk_count_limit; /**< disks per VM; 0 = SITEREC_PLANNER_DISK_COUNT_LIMIT */
	uint32_t reserved;         /**< 0 */
} siterec_planner_options;

#define SITEREC_PLANNER_OPTIONS_INIT { SITEREC_PLANNER_OPTIONS_VERSION, 0, 0, 0, 0.0, 0, 0, 0, 0, 0, 0 }

/** Fill opts with defaults (all zero) for the given version. @since 0.1 */
SITEREC_API int siterec_planner_options_init(siterec_planner_options *opts, unsigned int version);

/**
 * Open an empty planner. opts may be NULL for defaults. Errors: SITEREC_EINVAL
 * (percentile over 100, growth over 1000%, bandwidth negative or not finite,
 * reserved not 0), SITEREC_EVERSION, SITEREC_ENOMEM. @since 0.1
 */
SITEREC_API int siterec_planner_open(siterec_planner **out, const siterec_planner_options *opts);

/** Free the planner and everything it holds. NULL accepted. @since 0.1 */
SITEREC_API void siterec_planner_free(siterec_planner *p);

/**
 * Add one sample: bytes_written bytes were written to disk `disk` (of
 * disk_size bytes) of VM `vm` in the interval starting at `timestamp` (seconds
 * since 1970-01-01 UTC). vm and disk: 1..128 bytes, none of them a control
 * character, a comma or a double quote (the strings are copied). A disk keeps
 * the size of its first sample. Errors: SITEREC_EINVAL (bad name, disk_size 0,
 * timestamp negative, a size different from the disk's earlier one),
 * SITEREC_ENOMEM; the planner is unchanged then. @since 0.1
 */
SITEREC_API int siterec_planner_add_sample(siterec_planner *p, int64_t timestamp, const char *vm,
                                           const char *disk, uint64_t disk_size,
                                           uint64_t bytes_written);

/**
 * Record one interval of a tracked disk's churn (the profile "recorded by the
 * tracker"): the tracker's live set is frozen (siterec_tracker_switch()), its
 * bytes become the sample of disk at timestamp (the end of the interval), and
 * the frozen set is dropped (siterec_tracker_commit()). Call it every interval
 * on a tracker the disk's write path marks, for hours before protecting the VM,
 * as the seed's planner profiles VMs before they are protected. The sample is the
 * bytes of distinct blocks written in the interval (the tracker's block size):
 * what a replication cycle of that interval would ship. Use a tracker of its own
 * (replication's frozen sets must not be dropped by it). On a failed add the
 * frozen set goes back into the live one (siterec_tracker_rollback()).
 * Errors: the tracker's (SITEREC_ESTATE when a frozen set is pending), then as
 * siterec_planner_add_sample(). @since 0.1
 */
SITEREC_API int siterec_planner_record_tracker(siterec_planner *p, int64_t timestamp, const char *vm,
                                               const char *disk, siterec_tracker *tracker);

/**
 * Add every sample of a CSV churn profile (doc/formats.md, "Churn profile
 * (CSV)"; at most 1 GiB). All or nothing: on any error no sample of the file is
 * kept. Errors: SITEREC_EINVAL naming the file and line of the first malformed row
 * (or a file over 1 GiB),
 * SITEREC_ENOTFOUND (no such file), SITEREC_EIO, SITEREC_ENOMEM. @since 0.1
 */
SITEREC_API int siterec_planner_load_csv(siterec_planner *p, const char *path);

/**
 * Number of VMs in the profile, in order of their first sample, into *count.
 * @since 0.1
 */
SITEREC_API int siterec_planner_vm_count(siterec_planner *p, uint32_t *count);

#define SITEREC_PLANNER_VM_VERSION 1
/** Index for siterec_planner_vm_get(): the totals over all VMs. */
#define SITEREC_PLANNER_TOTALS 0xFFFFFFFFu

/** One VM's results (or the totals). Rates in bytes/s, bandwidths in Mbps. */
typedef struct siterec_planner_vm {
	unsigned int version;       /**< set by the caller: SITEREC_PLANNER_VM_VERSION */
	uint32_t fits;              /**< 1: no limit failed (totals: every VM fits) */
	uint32_t failed;            /**< SITEREC_PLANNER_LIMIT_* bits (totals: of any VM) */
	uint32_t disks;             /**< number of disks (totals: of all VMs) */
	const char *name;           /**< VM name, owned by the planner (totals: "*") */
	double churn_mean;          /**< mean churn over the profile */
	double churn_peak;          /**< highest interval */
	double churn_percentile;    /**< the percentile value P ("churn p95") */
	double churn_planned;       /**< P with growth: what the limits are checked against */
	double rpo15_p90_mbps;      /**< bandwidth to meet an RPO of 15 min 90% of the time */
	double rpo15_p100_mbps;     /**< ... 100% of the time */
	double rpo30_p90_mbps;      /**< RPO of 30 min, 90% of the time */
	double rpo30_p100_mbps;     /**< RPO of 30 min, 100% of the time */
	double rpo60_p90_mbps;      /**< RPO of 60 min, 90% of the time */
	double rpo60_p100_mbps;     /**< RPO of 60 min, 100% of the time */
	uint64_t replica_bytes;     /**< storage for the replica disks */
	uint64_t retention_bytes;   /**< storage for the retention window's changes */
	double initial_replication_s; /**< initial replication at the options' bandwidth */
	uint32_t copy_frequency_s;  /**< 30, 300 or 900 sustainable at that bandwidth; 0: none */
	uint32_t reserved;          /**< 0 */
} siterec_planner_vm;

/**
 * Results for VM index (0 .. count-1) or SITEREC_PLANNER_TOTALS into *out,
 * whose version the caller sets. Computed from the samples so far; name stays
 * valid until the next add or load, or siterec_planner_free(). Errors:
 * SITEREC_ERANGE (no such index), SITEREC_ESTATE (no samples), SITEREC_EVERSION,
 * SITEREC_EINVAL (the profile spans more than 10,000,000 intervals),
 * SITEREC_ENOMEM. @since 0.1
 */
SITEREC_API int siterec_planner_vm_get(siterec_planner *p, uint32_t index, siterec_planner_vm *out);

/**
 * The whole report as JSON text (UTF-8, NUL-terminated) into *json and its
 * length (without the NUL) into *len (may be NULL); free with siterec_free().
 * Layout in doc/api.md, "Deployment planner". Errors as siterec_planner_vm_get().
 * @since 0.1
 */
SITEREC_API int siterec_planner_report_json(siterec_planner *p, char **json, size_t *len);

/**
 * The report as one self-contained HTML page (no script, no external resource):
 * the parameters, a table per VM and the totals, the failed limits, and an
 * inline SVG chart of the churn of every VM and of all VMs over time (Mbps)
 * against the bandwidth line. Into *html (free with siterec_free()) and *len
 * (may be NULL). Errors as siterec_planner_vm_get(). @since 0.1
 */
SITEREC_API int siterec_planner_report_html(siterec_planner *p, char **html, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_PLANNER_H */
