/** @file
 * libsiterec — the journal: the writing side of replication, for a VM's I/O path
 * (a hypervisor, a block device daemon), and its hand-over of delta logs to the
 * replicating side, which may be another process.
 *
 * A journal is a directory, one per protected VM:
 *
 *   DIR/control            the hand-over: requested and done rotation counters,
 *                          the current log sequence (doc/formats.md "Journal")
 *   DIR/writer.lock        held (flock) by the process that has the journal open
 *                          for writing
 *   DIR/DISK/SEQ.dlog      each disk's delta logs (SEQ twenty decimal digits);
 *                          the highest SEQ is the active one, the others sealed
 *
 * Every write of the VM goes through siterec_journal_write(): it is appended to
 * the disk's active log (and, when the journal was given one, written to the disk
 * through the disk's write callback), never waiting for shipping.
 *
 * A rotation seals the active logs of ALL disks at one instant relative to the
 * writes (no write straddles it: one consistent cut across the VM's disks) and
 * starts SEQ+1 for each. The replicating side asks for one with
 * siterec_journal_request_rotate() on its own handle: the writer performs it at
 * its next write or siterec_journal_poll() call, whichever comes first; when no
 * process holds the journal for writing (the writer is gone, or not started),
 * the requester performs it itself. Either way it returns the sequence that was
 * sealed, whose logs (one per disk) the replicator may then ship and delete.
 *
 * Crash safety: after a crash of the writer or of a requester at any instant,
 * every disk has SEQ active, or SEQ sealed and SEQ+1 active (a rotation cut
 * short is completed by the next process that opens as the writer or rotates).
 * The protocol and the control file: doc/formats.md, "Journal".
 *
 * Threading: writes may come from any thread of the writer process
 * (siterec_journal_write, siterec_journal_flush and siterec_journal_poll are
 * thread-safe on one handle); everything else one thread at a time.
 */
#ifndef SITEREC_JOURNAL_H
#define SITEREC_JOURNAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A VM's journal (writer or replicating side). */
typedef struct siterec_journal siterec_journal;

/** One disk of a journal. */
typedef struct siterec_journal_disk {
	const char *id;            /**< 1..64 of [A-Za-z0-9._-], not starting with '.', unique, and
	                                not control, control.tmp or writer.lock (the journal's files) */
	uint64_t size;             /**< bytes, a multiple of 512 */
	siterec_write_fn write;    /**< writer side: where writes go after the log, or NULL */
	void *write_payload; /**< passed to write */
} siterec_journal_disk;

#define SITEREC_JOURNAL_WRITER 0x1u  /**< open as the writing side (exclusive, flock) */
#define SITEREC_JOURNAL_CREATE 0x2u  /**< create DIR and its files when missing */
#define SITEREC_JOURNAL_SYNC_EACH 0x4u /**< make every write's log record durable before returning */
#define SITEREC_JOURNAL_ADD_DISKS 0x8u /**< the disks may extend the journal's: see siterec_journal_open() */

#define SITEREC_JOURNAL_OPTIONS_VERSION 1 /**< the version this header describes: set the struct's version field to it */

/** Options of siterec_journal_open(). */
typedef struct siterec_journal_options {
	unsigned int version;           /**< SITEREC_JOURNAL_OPTIONS_VERSION */
	uint32_t flags;                 /**< SITEREC_JOURNAL_* */
	uint32_t n_disks;               /**< 1..64 */
	uint32_t reserved; /**< 0 */
	const siterec_journal_disk *disks; /**< n_disks entries, in the journal's order */
} siterec_journal_options;

#define SITEREC_JOURNAL_OPTIONS_INIT { SITEREC_JOURNAL_OPTIONS_VERSION, 0, 0, 0, NULL } /**< a struct of the current version, with its defaults (C only) */

/** @since 0.1 */
SITEREC_API int siterec_journal_options_init(siterec_journal_options *opts, unsigned int version);

/**
 * Open the journal at dir. The disks (ids and sizes) must match those it was
 * created with (SITEREC_ECONFLICT naming the difference). With
 * SITEREC_JOURNAL_ADD_DISKS they may be those disks followed by new ones (a disk
 * attached to the VM): the new ones are recorded in the control file, crash-
 * safely, and log from the active sequence on (their SEQ.dlog is created with
 * it), so every later rotation cuts them with the others. Adding needs the
 * writer's lock: as the writer, or as a requester while no process is the
 * writer (else SITEREC_EBUSY: the VM's write path adds them, reopening its
 * journal with the new list). A handle opened with fewer disks than the journal
 * has (one opened before the add, or without the flag) fails with
 * SITEREC_ECONFLICT as before. As the writer
 * (SITEREC_JOURNAL_WRITER): SITEREC_EBUSY when another process or handle is
 * the writer (a requester rotating meanwhile is waited for); an active log left
 * unsealed by a crash is reopened (a torn tail cut off) and appending goes on; a
 * rotation a crash cut short is completed, and one requested while no writer ran
 * is performed now. Errors also: SITEREC_ENOTFOUND (no journal at dir and no
 * SITEREC_JOURNAL_CREATE), SITEREC_ECORRUPT (both control slots damaged, or logs
 * out of step with it), SITEREC_EVERSION, SITEREC_EINVAL/EALIGN (options).
 * @since 0.1
 */
SITEREC_API int siterec_journal_open(siterec_journal **out, const char *dir,
                                     const siterec_journal_options *opts);

/** Close (the active logs stay unsealed, records written but not synced). NULL accepted. @since 0.1 */
SITEREC_API void siterec_journal_free(siterec_journal *j);

/**
 * Writer side: log a write of length bytes at offset (multiples of 512, inside
 * the disk) of disk disk_index, then pass it to the disk's write callback. The
 * record is written to the log file (not synced, unless SITEREC_JOURNAL_SYNC_EACH)
 * before the callback runs, so a crash of the process loses no write the disk got.
 * A rotation requested meanwhile is performed first (checking costs two memory
 * loads). Thread-safe. Errors: SITEREC_ESTATE (not the writer, or a rotation
 * failed half way: reopen), SITEREC_EINVAL, SITEREC_EALIGN, SITEREC_ERANGE, the
 * log's errors, SITEREC_EABORTED (the callback's). @since 0.1
 */
SITEREC_API int siterec_journal_write(siterec_journal *j, uint32_t disk_index, const void *buf,
                                      size_t length, uint64_t offset);

/** Writer side: make every logged write durable (fdatasync of the active logs). Thread-safe. @since 0.1 */
SITEREC_API int siterec_journal_flush(siterec_journal *j);

/**
 * Writer side: perform a requested rotation, if any, without a write (call it
 * from the writer's idle loop, every second or so). *rotated (may be NULL) is 1
 * when one was performed. Thread-safe. @since 0.1
 */
SITEREC_API int siterec_journal_poll(siterec_journal *j, int *rotated);

/**
 * Replicating side: ask for a rotation and wait for it, up to timeout_ms (0:
 * 10000): performed by the writer, or here when no process is the writer (on the
 * writer's own handle: at once). The sealed sequence goes to *sealed_seq (may be
 * NULL): DIR/DISK/SEALED.dlog of every disk is complete and sealed, cut after
 * this call began (a later rotation may already have sealed more: then the
 * newest sealed one). SITEREC_ETIMEOUT when a writer holds the journal but did
 * not rotate in time (the request stays: it happens at its next write or poll).
 * @since 0.1
 */
SITEREC_API int siterec_journal_request_rotate(siterec_journal *j, uint32_t timeout_ms,
                                               uint64_t *sealed_seq);

/**
 * Path of the log of disk disk_index with sequence seq (it may not exist), into
 * buf of cap bytes (SITEREC_ERANGE if too small). @since 0.1
 */
SITEREC_API int siterec_journal_log_path(siterec_journal *j, uint32_t disk_index, uint64_t seq,
                                         char *buf, size_t cap);

/**
 * The sequence of the active logs, and the oldest one still present (sealed logs
 * not yet removed; the active one when none). Either pointer may be NULL. @since 0.1
 */
SITEREC_API int siterec_journal_seqs(siterec_journal *j, uint64_t *active_seq, uint64_t *oldest_seq);

/**
 * Replicating side: delete the sealed logs of every disk up to and including seq
 * once they are shipped (never the active ones: SITEREC_EINVAL). @since 0.1
 */
SITEREC_API int siterec_journal_release(siterec_journal *j, uint64_t seq);

#ifdef __cplusplus
}
#endif

#endif /* SITEREC_JOURNAL_H */
