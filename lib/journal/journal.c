/* Journal (include/siterec/journal.h): the writing side of replication and the
 * hand-over of its delta logs to a replicator, possibly in another process.
 *
 * Files (doc/formats.md, "Journal"):
 *   DIR/control       two 8 KiB slots updated in place, alternately; the valid
 *                     slot with the higher generation is the state
 *   DIR/writer.lock   flock(LOCK_EX) by the writer for its lifetime, and by a
 *                     requester while it rotates in the writer's absence
 *   DIR/DISK/SEQ.dlog delta logs
 *
 * Invariant the crash rule rests on: while the control file says SEQ is active,
 * no record is ever appended to any SEQ+1 log (the writer appends there only
 * once the control file says SEQ+1, durably). So a rotation SEQ -> SEQ+1 is
 * started once some disk's SEQ log is sealed, and completing it (seal every SEQ
 * still open, create every SEQ+1 afresh, record SEQ+1) is always safe; a
 * requester rotating in the writer's absence runs exactly that completion.
 *
 * DIR itself is flocked (LOCK_EX) by a creator, and by a requester (rotating or
 * adding disks) from just before it tries writer.lock until it let go of it: a
 * writer that finds writer.lock taken tells a requester's short hold (DIR
 * locked: wait) from another writer (DIR free: SITEREC_EBUSY).
 *
 * Adding disks (SITEREC_JOURNAL_ADD_DISKS), under writer.lock: each new disk's
 * folder and empty active log first, durably, then the control file names them
 * (one slot update). A crash before that leaves the old list and an unused
 * folder, cleared by the next add of that disk; the list never names a disk
 * without its active log. Handles with the old list fail with SITEREC_ECONFLICT
 * from then on, so no rotation ever leaves a disk out.
 *
 * Lock order: the handle's rwlock, DIR, writer.lock, then the control file's
 * flock (held only around a read-modify-write of a slot). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "siterec/journal.h"
#include "../dlog/dlog_internal.h"

#define JR_MAGIC "SRJRNCTL"
#define JR_VERSION 1u
#define JR_SLOT 8192u
#define JR_FILE_SIZE (2u * JR_SLOT)
#define JR_OFF_GEN 16u
#define JR_OFF_DISKS 64u
#define JR_DISK_REC 72u
#define JR_OFF_SUM (JR_SLOT - 8u)
#define JR_ID_MAX 64u
#define JR_MAX_DISKS 64u
#define JR_SEQ_DIGITS 20
#define JR_DEFAULT_TIMEOUT_MS 10000u
#define JR_POLL_NS 2000000ull           /* requester: control file polled every 2 ms */
#define JR_WRITER_WAIT_MS 60000ull      /* writer open: longest wait for a rotating requester */
#define JR_FLAGS (SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE | SITEREC_JOURNAL_SYNC_EACH | \
                  SITEREC_JOURNAL_ADD_DISKS)

static const size_t jr_opt_sizes[] = { 0, sizeof(siterec_journal_options) };

/* Decoded control state. */
struct jr_ctl {
	uint64_t gen, requested, done, active;
	uint32_t n;
	char id[JR_MAX_DISKS][JR_ID_MAX + 1];
	uint64_t size[JR_MAX_DISKS];
};

struct jr_disk {
	char id[JR_ID_MAX + 1];
	uint64_t size;
	siterec_write_fn write;
	void *write_payload;
	siterec_dlog *log;                /* writer: the active log */
	pthread_mutex_t mu;               /* dlog appends are not thread-safe */
};

struct siterec_journal {
	char *dir;
	uint32_t flags;
	uint32_t n;
	struct jr_disk *disks;
	int ctl_fd;
	int lock_fd;                      /* DIR/writer.lock */
	int dir_fd;                       /* DIR: flock by creators and rotating requesters */
	int writer;
	const uint8_t *map;               /* writer: the control file, read-only, shared */
	uint64_t seen[2];                 /* raw generation words last read (atomic) */
	uint64_t active;                  /* writer: the active sequence */
	int broken;                       /* writer: a rotation failed half way (atomic) */
	int locks_init;
	pthread_rwlock_t rw;              /* writes: read mode; rotation: write mode */
};

SITEREC_API int siterec_journal_options_init(siterec_journal_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, jr_opt_sizes, SITEREC_JOURNAL_OPTIONS_VERSION,
	                       "journal");
}

/* ---- small helpers ---- */

static uint64_t jr_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void jr_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* dir/name, or dir/disk/SEQ.dlog when name is NULL; sr_malloc'd, NULL when out of memory. */
static char *jr_path(const siterec_journal *j, const char *name, uint32_t disk, uint64_t seq)
{
	size_t cap = strlen(j->dir) + JR_ID_MAX + JR_SEQ_DIGITS + 16;
	char *p = sr_malloc(cap);
	if (!p)
		return NULL;
	if (name)
		snprintf(p, cap, "%s/%s", j->dir, name);
	else
		snprintf(p, cap, "%s/%s/%0*llu.dlog", j->dir, j->disks[disk].id, JR_SEQ_DIGITS,
		         (unsigned long long)seq);
	return p;
}

static int jr_oom(void)
{
	return sr_err(SITEREC_ENOMEM, "out of memory");
}

/* flock with EINTR retried: 0 when taken, 1 when LOCK_NB found it held, or an error. */
static int jr_flock(int fd, int op, const char *what, const char *dir)
{
	for (;;) {
		if (flock(fd, op) == 0)
			return 0;
		int e = errno;
		if (e == EWOULDBLOCK && (op & LOCK_NB))
			return 1;
		if (e != EINTR)
			return sr_err_os(SITEREC_EIO, e, "journal %s: cannot lock %s", dir, what);
	}
}

static int jr_id_ok(const char *id)
{
	size_t n = strnlen(id, JR_ID_MAX + 1);
	if (n < 1 || n > JR_ID_MAX || id[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	/* the journal's own files live next to the disks' folders */
	return strcmp(id, "control") && strcmp(id, "control.tmp") && strcmp(id, "writer.lock");
}

/* "SEQ.dlog" with SEQ twenty digits: 1 and *seq, else 0. */
static int jr_parse_log_name(const char *name, uint64_t *seq)
{
	if (strlen(name) != JR_SEQ_DIGITS + 5 || strcmp(name + JR_SEQ_DIGITS, ".dlog") != 0)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < JR_SEQ_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		uint64_t d = (uint64_t)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*seq = v;
	return 1;
}

/* ---- the control file ---- */

static void ctl_encode(uint8_t *slot, const struct jr_ctl *c)
{
	memset(slot, 0, JR_SLOT);
	memcpy(slot, JR_MAGIC, 8);
	sr_put_le32(slot + 8, JR_VERSION);
	sr_put_le32(slot + 12, (uint32_t)(c->gen & 1));
	sr_put_le64(slot + 16, c->gen);
	sr_put_le64(slot + 24, c->requested);
	sr_put_le64(slot + 32, c->done);
	sr_put_le64(slot + 40, c->active);
	sr_put_le32(slot + 48, c->n);
	sr_put_le32(slot + 52, JR_SLOT);
	for (uint32_t i = 0; i < c->n; i++) {
		uint8_t *d = slot + JR_OFF_DISKS + i * JR_DISK_REC;
		memcpy(d, c->id[i], strlen(c->id[i]));
		sr_put_le64(d + JR_ID_MAX, c->size[i]);
	}
	sr_put_le64(slot + JR_OFF_SUM, sr_hash64(slot, JR_OFF_SUM));
}

/* 0: a valid slot decoded into c; 1: not valid (why in *why); SITEREC_EVERSION
 * (error set) for a whole slot of a newer format. */
static int ctl_decode(const uint8_t *slot, unsigned idx, struct jr_ctl *c, const char **why,
                      const char *path)
{
	if (memcmp(slot, JR_MAGIC, 8) != 0) {
		*why = "bad magic";
		return 1;
	}
	if (sr_get_le64(slot + JR_OFF_SUM) != sr_hash64(slot, JR_OFF_SUM)) {
		*why = "checksum mismatch";
		return 1;
	}
	uint32_t v = sr_get_le32(slot + 8);
	if (v != JR_VERSION)
		return sr_err(SITEREC_EVERSION, "%s: journal control format version %u not supported "
		              "(this library reads version %u)", path, v, JR_VERSION);
	c->gen = sr_get_le64(slot + 16);
	c->requested = sr_get_le64(slot + 24);
	c->done = sr_get_le64(slot + 32);
	c->active = sr_get_le64(slot + 40);
	c->n = sr_get_le32(slot + 48);
	if (sr_get_le32(slot + 12) != idx || (c->gen & 1) != idx || sr_get_le32(slot + 52) != JR_SLOT) {
		*why = "slot index, generation or slot size inconsistent";
		return 1;
	}
	if (c->n < 1 || c->n > JR_MAX_DISKS || c->active < 1 || c->done > c->requested) {
		*why = "disk count, active sequence or counters out of range";
		return 1;
	}
	for (uint32_t i = 0; i < c->n; i++) {
		const uint8_t *d = slot + JR_OFF_DISKS + i * JR_DISK_REC;
		memcpy(c->id[i], d, JR_ID_MAX);
		c->id[i][JR_ID_MAX] = '\0';
		c->size[i] = sr_get_le64(d + JR_ID_MAX);
		if (!jr_id_ok(c->id[i]) || c->size[i] == 0 || c->size[i] % 512) {
			*why = "a disk entry is invalid";
			return 1;
		}
	}
	return 0;
}

/* Read both slots (pread) and decode the newest valid one. Remembers the raw
 * generation words it saw, for the writer's fast check. */
static int ctl_read(siterec_journal *j, struct jr_ctl *c)
{
	uint8_t *buf = sr_malloc(JR_FILE_SIZE);
	struct jr_ctl *other = sr_malloc(sizeof(*other));
	char *path = jr_path(j, "control", 0, 0);
	int rc = 0;
	if (!buf || !other || !path) {
		rc = jr_oom();
		goto out;
	}
	if ((rc = sr_pread_full(j->ctl_fd, buf, JR_FILE_SIZE, 0)) != 0)
		goto out;
	uint64_t raw[2];
	memcpy(&raw[0], buf + JR_OFF_GEN, 8);
	memcpy(&raw[1], buf + JR_SLOT + JR_OFF_GEN, 8);
	const char *why0 = "", *why1 = "";
	int r0 = ctl_decode(buf, 0, c, &why0, path);
	int r1 = ctl_decode(buf + JR_SLOT, 1, other, &why1, path);
	if (r0 < 0 || r1 < 0) {
		/* a newer format in the newest whole slot wins over an older valid one */
		rc = r0 < 0 ? r0 : r1;
		goto out;
	}
	if (r0 && r1) {
		rc = sr_err(SITEREC_ECORRUPT, "%s: journal control file damaged (slot 0: %s; slot 1: %s)",
		            path, why0, why1);
		goto out;
	}
	if (r0 || (!r1 && other->gen > c->gen))
		memcpy(c, other, sizeof(*c));
	__atomic_store_n(&j->seen[0], raw[0], __ATOMIC_RELAXED);
	__atomic_store_n(&j->seen[1], raw[1], __ATOMIC_RELAXED);
out:
	sr_free(buf);
	sr_free(other);
	sr_free(path);
	return rc;
}

/* The handle's disks against the journal's (c): 0 when the same; 1 when they
 * are c's followed by new ones and extend is set; else SITEREC_ECONFLICT naming
 * the first difference. */
static int jr_compare_disks(const siterec_journal *j, const struct jr_ctl *c, int extend)
{
	uint32_t common = c->n < j->n ? c->n : j->n;
	for (uint32_t i = 0; i < common; i++)
		if (strcmp(c->id[i], j->disks[i].id) != 0 || c->size[i] != j->disks[i].size)
			return sr_err(SITEREC_ECONFLICT, "journal %s: disk %u is '%s' of %llu bytes, "
			              "opened as '%s' of %llu bytes", j->dir, i, c->id[i],
			              (unsigned long long)c->size[i], j->disks[i].id,
			              (unsigned long long)j->disks[i].size);
	if (c->n > j->n)
		return sr_err(SITEREC_ECONFLICT, "journal %s has %u disks, opened with %u (disks are "
		              "never removed; one added since this handle opened needs a reopen with "
		              "the new list)", j->dir, c->n, j->n);
	if (c->n < j->n && !extend)
		return sr_err(SITEREC_ECONFLICT, "journal %s has %u disks, opened with %u (disk '%s' "
		              "and on are new: SITEREC_JOURNAL_ADD_DISKS adds them)", j->dir, c->n,
		              j->n, j->disks[c->n].id);
	return c->n < j->n;
}

enum jr_op { JR_OP_REQUEST, JR_OP_ROTATED, JR_OP_ADD };

/* Read-modify-write of the control file under its flock: the new state goes to
 * the slot of the next generation (never the one holding the newest state) and
 * is fdatasynced before this returns. JR_OP_REQUEST bumps requested (new value
 * to *value); JR_OP_ROTATED records that *value (the old active sequence) was
 * sealed: active = *value + 1, done = requested. JR_OP_ADD records the handle's
 * disks, an extension of the journal's, whose logs *value (the active sequence)
 * exist. A handle whose disks are not the journal's (added since it opened) is
 * refused with SITEREC_ECONFLICT: its rotation would leave disks out. */
static int ctl_update(siterec_journal *j, enum jr_op op, uint64_t *value)
{
	struct jr_ctl *c = sr_malloc(sizeof(*c));
	uint8_t *slot = sr_malloc(JR_SLOT);
	int rc = 0;
	if (!c || !slot) {
		rc = jr_oom();
		goto out;
	}
	while (flock(j->ctl_fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			int e = errno;
			rc = sr_err_os(SITEREC_EIO, e, "%s: cannot lock the journal control file", j->dir);
			goto out;
		}
	}
	if ((rc = ctl_read(j, c)) != 0)
		goto unlock;
	if ((rc = jr_compare_disks(j, c, op == JR_OP_ADD)) < 0)
		goto unlock;
	if (op == JR_OP_ADD) {
		if (rc == 0 || c->active != *value) {
			/* impossible under writer.lock: another process added or rotated */
			rc = sr_err(SITEREC_ECONFLICT, "%s: journal changed while disks were added "
			            "(sequence %llu active, expected %llu)", j->dir,
			            (unsigned long long)c->active, (unsigned long long)*value);
			goto unlock;
		}
		rc = 0;
		for (uint32_t i = c->n; i < j->n; i++) {
			memset(c->id[i], 0, sizeof(c->id[i]));
			memcpy(c->id[i], j->disks[i].id, strlen(j->disks[i].id));
			c->size[i] = j->disks[i].size;
		}
		c->n = j->n;
	} else if (op == JR_OP_REQUEST) {
		c->requested++;
		*value = c->requested;
	} else {
		if (c->active != *value) {
			rc = sr_err(SITEREC_ECONFLICT, "%s: journal control file says sequence %llu is "
			            "active, expected %llu", j->dir, (unsigned long long)c->active,
			            (unsigned long long)*value);
			goto unlock;
		}
		c->active = *value + 1;
		c->done = c->requested;
	}
	c->gen++;
	ctl_encode(slot, c);
	if ((rc = sr_pwrite_full(j->ctl_fd, slot, JR_SLOT, (c->gen & 1) * JR_SLOT)) != 0)
		goto unlock;
	if (fdatasync(j->ctl_fd) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "%s: fdatasync of the journal control file failed",
		               j->dir);
		goto unlock;
	}
	/* this handle's own update is not news for its fast check */
	uint64_t raw;
	memcpy(&raw, slot + JR_OFF_GEN, 8);
	__atomic_store_n(&j->seen[c->gen & 1], raw, __ATOMIC_RELAXED);
unlock:
	flock(j->ctl_fd, LOCK_UN);
out:
	sr_free(c);
	sr_free(slot);
	return rc;
}

/* Cheap check of the writer: did any slot's generation word change since the
 * last read? Two loads from the shared mapping. */
static inline int ctl_changed(siterec_journal *j)
{
	uint64_t a = __atomic_load_n((const uint64_t *)(const void *)(j->map + JR_OFF_GEN),
	                             __ATOMIC_RELAXED);
	uint64_t b = __atomic_load_n((const uint64_t *)(const void *)(j->map + JR_SLOT + JR_OFF_GEN),
	                             __ATOMIC_RELAXED);
	return a != __atomic_load_n(&j->seen[0], __ATOMIC_RELAXED) ||
	       b != __atomic_load_n(&j->seen[1], __ATOMIC_RELAXED);
}

/* ---- rotation ---- */

static void jr_dlog_opts(const siterec_journal *j, uint32_t i, siterec_dlog_options *o)
{
	siterec_dlog_options_init(o, SITEREC_DLOG_OPTIONS_VERSION);
	o->flags = (j->flags & SITEREC_JOURNAL_SYNC_EACH) ? SITEREC_DLOG_SYNC_EACH : 0;
	o->disk_size = j->disks[i].size;
	sr_hash128(j->disks[i].id, strlen(j->disks[i].id), o->disk_id);
	o->first_seq = 1;
}

/* Remove a leftover next log before (re)creating it: while the control file
 * names the previous sequence it holds no record (the invariant at the top). One
 * that does hold records means the control file went back in time (a damaged
 * newest slot): refuse rather than lose them. */
static int jr_unlink_unused(const char *path, const char *why)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		int e = errno;
		return e == ENOENT ? 0 : sr_err_os(sr_errno_code(e), e, "cannot stat %s", path);
	}
	siterec_dlog_info info;
	memset(&info, 0, sizeof(info));
	info.version = SITEREC_DLOG_INFO_VERSION;
	int rc = siterec_dlog_verify(path, NULL, &info);
	if ((rc == 0 || rc == SITEREC_ETRUNCATED) && info.records > 0)
		return sr_err(SITEREC_ECORRUPT, "%s holds %llu records although %s: control file "
		              "out of step", path, (unsigned long long)info.records, why);
	if (unlink(path) != 0 && errno != ENOENT) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot remove the unused log %s", path);
	}
	return 0;
}

static int jr_unlink_next(const char *path)
{
	return jr_unlink_unused(path, "the journal control file names the sequence before it active");
}

/* Complete (or perform) rotation c->active -> c->active + 1 without a writer:
 * the caller holds writer.lock. Per disk: an unsealed active log is reopened
 * (a torn tail cut off) and rotated; a sealed one gets its successor created
 * afresh, numbering on from its seal. Then the control file records it. */
static int jr_rotate_offline(siterec_journal *j, const struct jr_ctl *c)
{
	uint64_t a = c->active;
	/* a handle opened before disks were added would leave them out of the cut */
	int rc = jr_compare_disks(j, c, 0);
	for (uint32_t i = 0; i < j->n && rc == 0; i++) {
		char *p = jr_path(j, NULL, i, a), *q = jr_path(j, NULL, i, a + 1);
		siterec_dlog_options o;
		jr_dlog_opts(j, i, &o);
		siterec_dlog *w = NULL;
		int torn = 0;
		if (!p || !q) {
			rc = jr_oom();
		} else if ((rc = siterec_dlog_reopen(&w, p, &o, &torn)) == 0) {
			if (torn)
				sr_log(SITEREC_LOG_WARN, "%s: torn tail cut off", p);
			if ((rc = jr_unlink_next(q)) == 0)
				rc = siterec_dlog_rotate(w, q);
			siterec_dlog_free(w);
		} else if (rc == SITEREC_ESTATE) {
			siterec_dlog_info info;
			memset(&info, 0, sizeof(info));
			info.version = SITEREC_DLOG_INFO_VERSION;
			int vrc = siterec_dlog_verify(p, &o, &info);
			if (vrc != 0 || !info.sealed) {
				rc = vrc ? vrc : rc;
			} else if ((rc = jr_unlink_next(q)) == 0) {
				o.disk_size = info.disk_size;
				memcpy(o.disk_id, info.disk_id, 16);
				o.block_size = info.block_size;
				o.first_seq = info.last_seq + 1;
				if ((rc = siterec_dlog_create(&w, q, &o)) == 0)
					siterec_dlog_free(w);
			}
		}
		sr_free(p);
		sr_free(q);
	}
	if (rc == 0)
		rc = ctl_update(j, JR_OP_ROTATED, &a);
	return rc;
}

/* The writer's rotation; the caller holds the rwlock in write mode. */
static int jr_rotate_online(siterec_journal *j)
{
	if (__atomic_load_n(&j->broken, __ATOMIC_RELAXED))
		return sr_err(SITEREC_ESTATE, "journal %s: a rotation failed half way; reopen the "
		              "journal to complete it", j->dir);
	int rc = 0;
	/* every record before the cut durable before any log is sealed */
	for (uint32_t i = 0; i < j->n && rc == 0; i++)
		rc = siterec_dlog_sync(j->disks[i].log);
	if (rc)
		return rc;
	uint64_t a = j->active;
	for (uint32_t i = 0; i < j->n && rc == 0; i++) {
		char *q = jr_path(j, NULL, i, a + 1);
		if (!q)
			rc = jr_oom();
		else if ((rc = jr_unlink_next(q)) == 0)
			rc = siterec_dlog_rotate(j->disks[i].log, q);
		sr_free(q);
	}
	if (rc == 0)
		rc = ctl_update(j, JR_OP_ROTATED, &a);
	if (rc) {
		__atomic_store_n(&j->broken, 1, __ATOMIC_RELAXED);
		return rc;
	}
	j->active = a + 1;
	return 0;
}

/* Writer: read the control file and rotate when a request is pending. The
 * caller holds the rwlock in write mode. */
static int jr_serve(siterec_journal *j, int *rotated)
{
	struct jr_ctl *c = sr_malloc(sizeof(*c));
	if (!c)
		return jr_oom();
	int rc = ctl_read(j, c);
	if (rc == 0 && c->requested > c->done) {
		rc = jr_rotate_online(j);
		if (rc == 0 && rotated)
			*rotated = 1;
	}
	sr_free(c);
	return rc;
}

/* ---- open / free ---- */

static int jr_check_opts(const char *dir, const siterec_journal_options *o)
{
	if (!dir || !dir[0])
		return sr_err(SITEREC_EINVAL, "journal directory is NULL or empty");
	if (o->flags & ~JR_FLAGS)
		return sr_err(SITEREC_EINVAL, "journal flags 0x%x unknown", o->flags & ~JR_FLAGS);
	if (o->n_disks < 1 || o->n_disks > JR_MAX_DISKS)
		return sr_err(SITEREC_EINVAL, "journal n_disks %u out of range (1..%u)", o->n_disks,
		              JR_MAX_DISKS);
	if (!o->disks)
		return sr_err(SITEREC_EINVAL, "journal disks is NULL");
	for (uint32_t i = 0; i < o->n_disks; i++) {
		const siterec_journal_disk *d = &o->disks[i];
		if (!d->id || !jr_id_ok(d->id))
			return sr_err(SITEREC_EINVAL, "journal disk %u id '%.*s' invalid: 1..64 of "
			              "[A-Za-z0-9._-], not starting with '.', not control, control.tmp "
			              "or writer.lock", i, 80, d->id ? d->id : "(null)");
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(o->disks[k].id, d->id) == 0)
				return sr_err(SITEREC_EINVAL, "journal disk id '%s' given twice", d->id);
		if (d->size == 0)
			return sr_err(SITEREC_EINVAL, "journal disk '%s' has size 0", d->id);
		if (d->size % 512)
			return sr_err(SITEREC_EALIGN, "journal disk '%s' size %llu is not a multiple of 512",
			              d->id, (unsigned long long)d->size);
	}
	return 0;
}

static int jr_open_file(int *fd, const char *path, int flags, const char *what)
{
	*fd = open(path, flags | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int e = errno;
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : sr_errno_code(e), e,
		                 "cannot open the journal %s %s", what, path);
	}
	return 0;
}

static int jr_foreach_log(siterec_journal *j, uint32_t i,
                          int (*fn)(siterec_journal *, uint32_t, uint64_t, void *), void *arg);

/* A leftover log in the folder of a disk being added (an add cut short by a
 * crash, at this or an earlier sequence): never written to, as the disk was in
 * no control file; removed so the disk's logs start at the active sequence. */
static int jr_clear_cb(siterec_journal *j, uint32_t disk, uint64_t seq, void *arg)
{
	(void)arg;
	char *p = jr_path(j, NULL, disk, seq);
	if (!p)
		return jr_oom();
	int rc = jr_unlink_unused(p, "its disk is not in the journal control file");
	sr_free(p);
	return rc;
}

/* Disk i's folder and its empty log `seq`. Adding to a journal (add): the
 * folder synced into DIR, and any log left by an add a crash cut short cleared
 * first; creating one: a leftover `seq` log replaced. */
static int jr_disk_start(siterec_journal *j, uint32_t i, uint64_t seq, int add)
{
	char *d = jr_path(j, j->disks[i].id, 0, 0), *p = jr_path(j, NULL, i, seq);
	siterec_dlog_options o;
	siterec_dlog *w = NULL;
	int rc = 0;
	jr_dlog_opts(j, i, &o);
	if (!d || !p) {
		rc = jr_oom();
	} else if (mkdir(d, 0700) != 0 && errno != EEXIST) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot create the journal disk folder %s", d);
	} else if ((rc = add ? sr_fsync_dir_of(d) : jr_unlink_next(p)) == 0 &&
	           (!add || (rc = jr_foreach_log(j, i, jr_clear_cb, NULL)) == 0) &&
	           (rc = siterec_dlog_create(&w, p, &o)) == 0) {
		siterec_dlog_free(w);
		if (add)
			sr_log(SITEREC_LOG_INFO, "journal %s: adding disk '%s' at sequence %llu", j->dir,
			       j->disks[i].id, (unsigned long long)seq);
	}
	sr_free(d);
	sr_free(p);
	return rc;
}

/* New journal: every disk's folder and first log, then the control file (its
 * presence marks a complete journal; a crash before leaves it to redo). The
 * caller holds the directory's flock. */
static int jr_create_layout(siterec_journal *j)
{
	int rc = 0;
	for (uint32_t i = 0; i < j->n && rc == 0; i++)
		rc = jr_disk_start(j, i, 1, 0);
	if (rc)
		return rc;
	struct jr_ctl *c = sr_calloc(1, sizeof(*c));
	uint8_t *buf = sr_malloc(JR_FILE_SIZE);
	char *path = jr_path(j, "control", 0, 0);
	if (!c || !buf || !path) {
		rc = jr_oom();
	} else {
		c->active = 1;
		c->n = j->n;
		for (uint32_t i = 0; i < j->n; i++) {
			memcpy(c->id[i], j->disks[i].id, sizeof(c->id[i]));
			c->size[i] = j->disks[i].size;
		}
		/* both slots valid from the start: generations 0 and 1 */
		ctl_encode(buf, c);
		c->gen = 1;
		ctl_encode(buf + JR_SLOT, c);
		rc = sr_file_replace(path, buf, JR_FILE_SIZE);
	}
	sr_free(c);
	sr_free(buf);
	sr_free(path);
	return rc;
}


/* Add the handle's disks past c->n to the journal; the caller holds writer.lock,
 * so the active sequence cannot move. Each new disk's folder (DIR synced) and
 * empty active log (synced with its folder) exist before the control file names
 * the disk: a crash at any instant leaves the old list or the new one, never a
 * listed disk without its active log. c is re-read on success. */
static int jr_add_disks(siterec_journal *j, struct jr_ctl *c)
{
	uint64_t a = c->active;
	int rc = 0;
	for (uint32_t i = c->n; i < j->n && rc == 0; i++)
		rc = jr_disk_start(j, i, a, 1);
	if (rc == 0 && (rc = ctl_update(j, JR_OP_ADD, &a)) == 0)
		rc = ctl_read(j, c);
	return rc;
}

/* A requester adding disks: only while no process is the writer, holding
 * writer.lock (DIR first, as a rotating requester does, so a writer opening
 * meanwhile waits instead of failing). */
static int jr_add_as_requester(siterec_journal *j, struct jr_ctl *c)
{
	int rc = jr_flock(j->dir_fd, LOCK_EX, "the directory", j->dir);
	if (rc)
		return rc;
	rc = jr_flock(j->lock_fd, LOCK_EX | LOCK_NB, "writer.lock", j->dir);
	if (rc == 1) {
		rc = sr_err(SITEREC_EBUSY, "journal %s: adding disks needs the writer lock, and a "
		            "writer holds it (the writer adds them, reopening with "
		            "SITEREC_JOURNAL_ADD_DISKS and the new list)", j->dir);
	} else if (rc == 0) {
		/* another process may have added them since the first read */
		if ((rc = ctl_read(j, c)) == 0 && (rc = jr_compare_disks(j, c, 1)) == 1)
			rc = jr_add_disks(j, c);
		flock(j->lock_fd, LOCK_UN);
	}
	flock(j->dir_fd, LOCK_UN);
	return rc;
}

/* Open DIR/control into j->ctl_fd, creating the journal first when asked. */
static int jr_open_control(siterec_journal *j)
{
	char *path = jr_path(j, "control", 0, 0);
	if (!path)
		return jr_oom();
	int rc = jr_open_file(&j->ctl_fd, path, O_RDWR, "control file");
	if (rc == SITEREC_ENOTFOUND && (j->flags & SITEREC_JOURNAL_CREATE)) {
		/* creators serialise on the directory's flock, then look again */
		if ((rc = jr_flock(j->dir_fd, LOCK_EX, "the directory", j->dir)) == 0) {
			rc = jr_open_file(&j->ctl_fd, path, O_RDWR, "control file");
			if (rc == SITEREC_ENOTFOUND && (rc = jr_create_layout(j)) == 0)
				rc = jr_open_file(&j->ctl_fd, path, O_RDWR, "control file");
			flock(j->dir_fd, LOCK_UN);
		}
	}
	struct stat st;
	if (rc == 0 && fstat(j->ctl_fd, &st) != 0) {
		int e = errno;
		rc = sr_err_os(SITEREC_EIO, e, "cannot stat %s", path);
	} else if (rc == 0 && st.st_size != JR_FILE_SIZE) {
		rc = sr_err(SITEREC_ECORRUPT, "%s: journal control file is %lld bytes, not %u", path,
		            (long long)st.st_size, JR_FILE_SIZE);
	}
	sr_free(path);
	return rc;
}

static void jr_free_logs(siterec_journal *j)
{
	for (uint32_t i = 0; i < j->n; i++) {
		siterec_dlog_free(j->disks[i].log);
		j->disks[i].log = NULL;
	}
}

/* Writer, holding writer.lock: finish a rotation a crash interrupted, reopen
 * the active logs, and serve a request made while no writer ran. */
static int jr_writer_start(siterec_journal *j, struct jr_ctl *c)
{
	int rc = 0, started = 0;
	for (uint32_t i = 0; i < j->n && rc == 0; i++) {
		char *p = jr_path(j, NULL, i, c->active);
		siterec_dlog_options o;
		int torn = 0;
		jr_dlog_opts(j, i, &o);
		if (!p)
			rc = jr_oom();
		else if ((rc = siterec_dlog_reopen(&j->disks[i].log, p, &o, &torn)) == SITEREC_ESTATE)
			started = 1, rc = 0; /* sealed: a rotation was under way */
		else if (rc == 0 && torn)
			sr_log(SITEREC_LOG_WARN, "%s: torn tail cut off", p);
		sr_free(p);
	}
	if (rc == 0 && started) {
		jr_free_logs(j);
		sr_log(SITEREC_LOG_INFO, "journal %s: completing the rotation of sequence %llu", j->dir,
		       (unsigned long long)c->active);
		if ((rc = jr_rotate_offline(j, c)) == 0 && (rc = ctl_read(j, c)) == 0)
			return jr_writer_start(j, c);
	}
	if (rc) {
		jr_free_logs(j);
		return rc;
	}
	j->active = c->active;
	j->map = mmap(NULL, JR_FILE_SIZE, PROT_READ, MAP_SHARED, j->ctl_fd, 0);
	if (j->map == MAP_FAILED) {
		int e = errno;
		j->map = NULL;
		return sr_err_os(SITEREC_EIO, e, "journal %s: cannot map the control file", j->dir);
	}
	if (c->requested > c->done)
		return jr_rotate_online(j);
	return 0;
}

SITEREC_API void siterec_journal_free(siterec_journal *j)
{
	if (!j)
		return;
	if (j->disks) {
		jr_free_logs(j);
		for (uint32_t i = 0; i < j->n && j->locks_init; i++)
			pthread_mutex_destroy(&j->disks[i].mu);
	}
	if (j->locks_init)
		pthread_rwlock_destroy(&j->rw);
	if (j->map)
		munmap((void *)j->map, JR_FILE_SIZE);
	if (j->ctl_fd >= 0)
		close(j->ctl_fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* drops writer.lock */
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	sr_free(j->disks);
	sr_free(j->dir);
	sr_free(j);
}

static int jr_new(siterec_journal **out, const char *dir, const siterec_journal_options *o)
{
	siterec_journal *j = sr_calloc(1, sizeof(*j));
	if (!j)
		return jr_oom();
	j->ctl_fd = j->lock_fd = j->dir_fd = -1;
	j->flags = o->flags;
	j->writer = (o->flags & SITEREC_JOURNAL_WRITER) != 0;
	j->n = o->n_disks;
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	j->dir = sr_malloc(dl + 1);
	j->disks = sr_calloc(j->n, sizeof(*j->disks));
	if (!j->dir || !j->disks) {
		siterec_journal_free(j);
		return jr_oom();
	}
	memcpy(j->dir, dir, dl);
	j->dir[dl] = '\0';
	for (uint32_t i = 0; i < j->n; i++) {
		snprintf(j->disks[i].id, sizeof(j->disks[i].id), "%s", o->disks[i].id);
		j->disks[i].size = o->disks[i].size;
		j->disks[i].write = o->disks[i].write;
		j->disks[i].write_payload = o->disks[i].write_payload;
	}
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* a rotation must not starve behind a steady stream of writes */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&j->rw, &attr);
	pthread_rwlockattr_destroy(&attr);
	for (uint32_t i = 0; i < j->n; i++)
		pthread_mutex_init(&j->disks[i].mu, NULL);
	j->locks_init = 1;
	*out = j;
	return 0;
}

/* writer.lock for the writer: a requester's short hold is waited out (up to
 * JR_WRITER_WAIT_MS), another writer is SITEREC_EBUSY. */
static int jr_take_writer_lock(siterec_journal *j)
{
	uint64_t deadline = jr_now_ns() + JR_WRITER_WAIT_MS * 1000000ull;
	for (;;) {
		int rc = jr_flock(j->lock_fd, LOCK_EX | LOCK_NB, "writer.lock", j->dir);
		if (rc <= 0)
			return rc;
		if ((rc = jr_flock(j->dir_fd, LOCK_SH | LOCK_NB, "the directory", j->dir)) < 0)
			return rc;
		if (rc == 0) {
			flock(j->dir_fd, LOCK_UN);
			return sr_err(SITEREC_EBUSY, "journal %s is open for writing by another process "
			              "or handle", j->dir);
		}
		if (jr_now_ns() >= deadline)
			return sr_err(SITEREC_EBUSY, "journal %s: a requester has held writer.lock for "
			              "%llu ms", j->dir, JR_WRITER_WAIT_MS);
		jr_sleep_ns(JR_POLL_NS);
	}
}

SITEREC_API int siterec_journal_open(siterec_journal **out, const char *dir,
                                     const siterec_journal_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "journal out pointer is NULL");
	*out = NULL;
	if (!opts)
		return sr_err(SITEREC_EINVAL, "journal options are NULL (disks are required)");
	siterec_journal_options o = SITEREC_JOURNAL_OPTIONS_INIT;
	int rc = sr_options_copy(&o, opts, jr_opt_sizes, SITEREC_JOURNAL_OPTIONS_VERSION, "journal");
	if (rc || (rc = jr_check_opts(dir, &o)) != 0)
		return rc;
	siterec_journal *j = NULL;
	if ((rc = jr_new(&j, dir, &o)) != 0)
		return rc;
	struct jr_ctl *c = sr_malloc(sizeof(*c));
	char *lock = jr_path(j, "writer.lock", 0, 0);
	if (!c || !lock) {
		rc = jr_oom();
		goto fail;
	}
	if ((o.flags & SITEREC_JOURNAL_CREATE) && mkdir(j->dir, 0700) != 0 && errno != EEXIST) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot create the journal directory %s", j->dir);
		goto fail;
	}
	if ((rc = jr_open_file(&j->dir_fd, j->dir, O_RDONLY | O_DIRECTORY, "directory")) != 0 ||
	    (rc = jr_open_control(j)) != 0 ||
	    (rc = jr_open_file(&j->lock_fd, lock, O_RDWR | O_CREAT, "lock file")) != 0 ||
	    (j->writer && (rc = jr_take_writer_lock(j)) != 0))
		goto fail;
	if ((rc = ctl_read(j, c)) != 0)
		goto fail;
	rc = jr_compare_disks(j, c, (o.flags & SITEREC_JOURNAL_ADD_DISKS) != 0);
	if (rc == 1)
		rc = j->writer ? jr_add_disks(j, c) : jr_add_as_requester(j, c);
	if (rc)
		goto fail;
	if (j->writer && (rc = jr_writer_start(j, c)) != 0)
		goto fail;
	sr_free(c);
	sr_free(lock);
	*out = j;
	return 0;
fail:
	sr_free(c);
	sr_free(lock);
	siterec_journal_free(j);
	return rc;
}

/* ---- writer side ---- */

static int jr_need_writer(const siterec_journal *j, const char *what)
{
	if (!j)
		return sr_err(SITEREC_EINVAL, "%s: journal handle is NULL", what);
	if (!j->writer)
		return sr_err(SITEREC_ESTATE, "%s: journal %s is not open as the writer", what, j->dir);
	return 0;
}

/* Serve a pending request, taking the rwlock in write mode. */
static int jr_serve_locked(siterec_journal *j, int *rotated)
{
	pthread_rwlock_wrlock(&j->rw);
	int rc = jr_serve(j, rotated);
	pthread_rwlock_unlock(&j->rw);
	return rc;
}

SITEREC_API int siterec_journal_write(siterec_journal *j, uint32_t disk_index, const void *buf,
                                      size_t length, uint64_t offset)
{
	int rc = jr_need_writer(j, "journal write");
	if (rc)
		return rc;
	if (disk_index >= j->n)
		return sr_err(SITEREC_EINVAL, "journal write: disk index %u out of range (%u disks)",
		              disk_index, j->n);
	if (!buf || length == 0)
		return sr_err(SITEREC_EINVAL, "journal write: NULL buffer or zero length");
	struct jr_disk *d = &j->disks[disk_index];
	if (length % 512 || offset % 512)
		return sr_err(SITEREC_EALIGN, "journal write: offset %llu or length %zu of disk '%s' is "
		              "not a multiple of 512", (unsigned long long)offset, length, d->id);
	if (offset > d->size || length > d->size - offset)
		return sr_err(SITEREC_ERANGE, "journal write: %zu bytes at %llu past the end of disk "
		              "'%s' (%llu bytes)", length, (unsigned long long)offset, d->id,
		              (unsigned long long)d->size);
	if (SR_UNLIKELY(ctl_changed(j))) {
		rc = jr_serve_locked(j, NULL);
		if (rc && !__atomic_load_n(&j->broken, __ATOMIC_RELAXED)) {
			/* the hand-over failed, not the write: the request stays for the next check */
			sr_log(SITEREC_LOG_WARN, "journal %s: rotation check failed: %s", j->dir,
			       siterec_error_last()->message);
		} else if (rc) {
			return rc;
		}
	}
	pthread_rwlock_rdlock(&j->rw);
	if (__atomic_load_n(&j->broken, __ATOMIC_RELAXED)) {
		pthread_rwlock_unlock(&j->rw);
		return sr_err(SITEREC_ESTATE, "journal %s: a rotation failed half way; reopen the "
		              "journal to complete it", j->dir);
	}
	pthread_mutex_lock(&d->mu);
	rc = siterec_dlog_append(d->log, offset, buf, length, NULL);
	/* in the file before the disk sees it: a crash of the process loses no write the
	 * disk got (SITEREC_DLOG_SYNC_EACH already wrote and synced it) */
	if (rc == 0)
		rc = sr_dlog_write_out(d->log);
	pthread_mutex_unlock(&d->mu);
	pthread_rwlock_unlock(&j->rw);
	if (rc)
		return rc;
	if (d->write && (rc = d->write(buf, length, offset, d->write_payload)) != 0)
		return sr_err_callback(rc, "journal disk write callback");
	return 0;
}

SITEREC_API int siterec_journal_flush(siterec_journal *j)
{
	int rc = jr_need_writer(j, "journal flush");
	if (rc)
		return rc;
	pthread_rwlock_rdlock(&j->rw);
	for (uint32_t i = 0; i < j->n && rc == 0; i++) {
		pthread_mutex_lock(&j->disks[i].mu);
		rc = siterec_dlog_sync(j->disks[i].log);
		pthread_mutex_unlock(&j->disks[i].mu);
	}
	pthread_rwlock_unlock(&j->rw);
	return rc;
}

SITEREC_API int siterec_journal_poll(siterec_journal *j, int *rotated)
{
	if (rotated)
		*rotated = 0;
	int rc = jr_need_writer(j, "journal poll");
	if (rc)
		return rc;
	return jr_serve_locked(j, rotated);
}

/* ---- replicating side ---- */

SITEREC_API int siterec_journal_request_rotate(siterec_journal *j, uint32_t timeout_ms,
                                               uint64_t *sealed_seq)
{
	if (!j)
		return sr_err(SITEREC_EINVAL, "journal request: handle is NULL");
	uint64_t mine = 0;
	int rc = ctl_update(j, JR_OP_REQUEST, &mine);
	if (rc)
		return rc;
	if (j->writer) {
		if ((rc = jr_serve_locked(j, NULL)) == 0 && sealed_seq)
			*sealed_seq = j->active - 1;
		return rc;
	}
	struct jr_ctl *c = sr_malloc(sizeof(*c));
	if (!c)
		return jr_oom();
	uint64_t deadline = jr_now_ns() + (uint64_t)(timeout_ms ? timeout_ms : JR_DEFAULT_TIMEOUT_MS) *
	                                         1000000ull;
	for (;;) {
		if ((rc = jr_flock(j->dir_fd, LOCK_EX, "the directory", j->dir)) != 0)
			break;
		rc = jr_flock(j->lock_fd, LOCK_EX | LOCK_NB, "writer.lock", j->dir);
		if (rc == 0) {
			/* no writer: rotate here, unless one served the request before leaving */
			rc = ctl_read(j, c);
			if (rc == 0 && c->done < mine && (rc = jr_rotate_offline(j, c)) == 0)
				rc = ctl_read(j, c);
			flock(j->lock_fd, LOCK_UN);
			flock(j->dir_fd, LOCK_UN);
			break;
		}
		flock(j->dir_fd, LOCK_UN);
		if (rc < 0 || (rc = ctl_read(j, c)) != 0 || c->done >= mine)
			break;
		if (jr_now_ns() >= deadline) {
			rc = sr_err(SITEREC_ETIMEOUT, "journal %s: the writer did not rotate within %u ms "
			            "(the request stays: it rotates at its next write or poll)", j->dir,
			            timeout_ms ? timeout_ms : JR_DEFAULT_TIMEOUT_MS);
			break;
		}
		jr_sleep_ns(JR_POLL_NS);
	}
	if (rc == 0 && sealed_seq)
		*sealed_seq = c->active - 1;
	sr_free(c);
	return rc;
}

SITEREC_API int siterec_journal_log_path(siterec_journal *j, uint32_t disk_index, uint64_t seq,
                                         char *buf, size_t cap)
{
	if (!j || !buf)
		return sr_err(SITEREC_EINVAL, "journal log path: NULL handle or buffer");
	if (disk_index >= j->n)
		return sr_err(SITEREC_EINVAL, "journal log path: disk index %u out of range (%u disks)",
		              disk_index, j->n);
	int n = snprintf(buf, cap, "%s/%s/%0*llu.dlog", j->dir, j->disks[disk_index].id,
	                 JR_SEQ_DIGITS, (unsigned long long)seq);
	if (n < 0 || (size_t)n >= cap)
		return sr_err(SITEREC_ERANGE, "journal log path: %d bytes do not fit in %zu", n + 1, cap);
	return 0;
}

/* Call fn for every log file of disk i (any order); stops at a non-zero return. */
static int jr_foreach_log(siterec_journal *j, uint32_t i,
                          int (*fn)(siterec_journal *, uint32_t, uint64_t, void *), void *arg)
{
	char *d = jr_path(j, j->disks[i].id, 0, 0);
	if (!d)
		return jr_oom();
	DIR *dp = opendir(d);
	if (!dp) {
		int e = errno;
		int rc = sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : sr_errno_code(e), e,
		                   "cannot list the journal disk folder %s", d);
		sr_free(d);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	uint64_t seq;
	while (rc == 0 && (de = readdir(dp)) != NULL)
		if (jr_parse_log_name(de->d_name, &seq))
			rc = fn(j, i, seq, arg);
	closedir(dp);
	sr_free(d);
	return rc;
}

static int jr_min_cb(siterec_journal *j, uint32_t disk, uint64_t seq, void *arg)
{
	uint64_t *m = arg;
	if (seq < *m)
		*m = seq;
	return 0;
}

/* The active sequence the control file names now. */
static int jr_read_active(siterec_journal *j, const char *what, uint64_t *active)
{
	if (!j)
		return sr_err(SITEREC_EINVAL, "%s: journal handle is NULL", what);
	struct jr_ctl *c = sr_malloc(sizeof(*c));
	if (!c)
		return jr_oom();
	int rc = ctl_read(j, c);
	/* a handle opened before disks were added would skip their logs */
	if (rc == 0 && (rc = jr_compare_disks(j, c, 0)) == 0)
		*active = c->active;
	sr_free(c);
	return rc;
}

SITEREC_API int siterec_journal_seqs(siterec_journal *j, uint64_t *active_seq, uint64_t *oldest_seq)
{
	uint64_t active = 0;
	int rc = jr_read_active(j, "journal seqs", &active);
	uint64_t oldest = active;
	for (uint32_t i = 0; rc == 0 && oldest_seq && i < j->n; i++)
		rc = jr_foreach_log(j, i, jr_min_cb, &oldest);
	if (rc == 0 && active_seq)
		*active_seq = active;
	if (rc == 0 && oldest_seq)
		*oldest_seq = oldest;
	return rc;
}

static int jr_release_cb(siterec_journal *j, uint32_t disk, uint64_t seq, void *arg)
{
	if (seq > *(const uint64_t *)arg)
		return 0;
	char *p = jr_path(j, NULL, disk, seq);
	if (!p)
		return jr_oom();
	int rc = 0;
	if (unlink(p) != 0 && errno != ENOENT) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot remove the released log %s", p);
	}
	sr_free(p);
	return rc;
}

SITEREC_API int siterec_journal_release(siterec_journal *j, uint64_t seq)
{
	uint64_t active = 0;
	int rc = jr_read_active(j, "journal release", &active);
	if (rc == 0 && seq >= active)
		rc = sr_err(SITEREC_EINVAL, "journal release: sequence %llu is not sealed (%llu is "
		            "active)", (unsigned long long)seq, (unsigned long long)active);
	for (uint32_t i = 0; rc == 0 && i < j->n; i++) {
		char *p = jr_path(j, NULL, i, 0);
		if (!p)
			rc = jr_oom();
		else if ((rc = jr_foreach_log(j, i, jr_release_cb, &seq)) == 0)
			rc = sr_fsync_dir_of(p);
		sr_free(p);
	}
	return rc;
}
