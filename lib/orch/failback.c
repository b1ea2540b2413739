/* Failback and reprotect (failover.h): the third slot, "VM/failback", driven
 * by fb_step() from advance() in failover.c, so a call and a resume run the
 * same steps. Phases: starting (checks, the failed-over journal cut twice),
 * syncing (minimize downtime: checksums of both sides, differing blocks
 * copied, per disk), shutting-down (the shutdown callback, the last cut),
 * delta (the journal's logs since the cut applied, or both disks compared
 * again, or a full copy, per disk), starting-vm, failed-over (not committed),
 * committing, committed, cancelling, reprotecting. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch_internal.h"
#include "siterec/disk.h"
#include "siterec/dlog.h"
#include "siterec/journal.h"
#include "siterec/tracker.h"
#include "../replication/repl_internal.h"

#define FB_COPY_CHUNK (4u << 20)
#define FB_ROTATE_TIMEOUT_MS 30000

static const size_t fb_req_sizes[] = { 0, sizeof(siterec_failback_request) };

SITEREC_API int siterec_failback_request_init(siterec_failback_request *req, unsigned int version)
{
	return sr_options_init(req, version, fb_req_sizes, SITEREC_FAILBACK_REQUEST_VERSION, "failback request");
}

static int64_t fb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cJSON *fo_doc(siterec_failover *f)
{
	return f->s[SLOT_FO].doc;
}

/* ---- the two sides of a disk ---- */

/* The failed-over disk (read) and the on-premises one (written). */
typedef struct sides {
	siterec_disk *src;        /* failover output as a file, or NULL (a blob) */
	siterec_store *st;        /* ... the blob's store */
	const char *blob;
	siterec_disk *dst;
	uint64_t size;
	int src_fd, dst_fd;       /* for the threaded hash scan (files), else -1 */
} sides;

static int src_read(void *buf, size_t len, uint64_t off, void *payload)
{
	sides *x = payload;
	return x->src ? siterec_disk_read(x->src, buf, len, off)
	              : siterec_store_read(x->st, x->blob, NULL, buf, len, off);
}

static void sides_close(sides *x)
{
	siterec_disk_free(x->src);
	siterec_disk_free(x->dst);
	if (x->src_fd >= 0)
		close(x->src_fd);
	if (x->dst_fd >= 0)
		close(x->dst_fd);
	memset(x, 0, sizeof(*x));
	x->src_fd = x->dst_fd = -1;
}

static int sides_open(siterec_failover *f, const cJSON *e, sides *x)
{
	memset(x, 0, sizeof(*x));
	x->src_fd = x->dst_fd = -1;
	x->size = j_u64(e, "size");
	const char *src = j_str(e, "source"), *dst = j_str(e, "path");
	int rc = 0;
	siterec_disk_options wo;
	siterec_disk_options_init(&wo, SITEREC_DISK_OPTIONS_VERSION);
	wo.flags = SITEREC_DISK_OPEN_WRITE;
	if (j_true(e, "blob")) {
		x->st = f->o.store;
		x->blob = src;
	} else {
		rc = siterec_disk_open(&x->src, src, NULL);
	}
	if (rc == 0)
		rc = siterec_disk_open(&x->dst, dst, &wo);
	/* raw and fixed VHD hold the data from offset 0: the threaded fd scan reads them */
	siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
	if (rc == 0 && x->src && siterec_disk_info_get(x->src, &in) == 0 && in.kind == SITEREC_DISK_KIND_FIXED &&
	    in.format != SITEREC_DISK_FORMAT_VHDX)
		x->src_fd = open(src, O_RDONLY | O_CLOEXEC);
	if (rc == 0 && siterec_disk_info_get(x->dst, &in) == 0 && in.virtual_size < x->size)
		rc = sr_err(SITEREC_EINVAL, "failback: %s holds %" PRIu64 " bytes, the disk needs %" PRIu64, dst,
		            in.virtual_size, x->size);
	if (rc == 0)
		x->dst_fd = open(dst, O_RDONLY | O_CLOEXEC);
	if (rc)
		sides_close(x);
	return rc;
}

static int scan(siterec_hashmap *m, int fd, siterec_read_fn read, void *payload)
{
	siterec_hashscan_options o;
	siterec_hashscan_options_init(&o, SITEREC_HASHSCAN_OPTIONS_VERSION);
	o.flags = SITEREC_HASHSCAN_UPDATE;
	return fd >= 0 ? siterec_hashmap_scan_fd(m, fd, &o, NULL, NULL) : siterec_hashmap_scan(m, read, payload, &o, NULL, NULL);
}

typedef struct copy_ctx {
	sides *x;
	uint8_t *buf;
	uint64_t bytes;
} copy_ctx;

static int copy_extent(uint64_t off, uint64_t len, void *payload)
{
	copy_ctx *c = payload;
	if (off >= c->x->size)
		return 0;
	if (len > c->x->size - off)
		len = c->x->size - off;
	while (len) {
		size_t n = len < FB_COPY_CHUNK ? (size_t)len : FB_COPY_CHUNK;
		int rc = src_read(c->buf, n, off, c->x);
		if (rc == 0)
			rc = siterec_disk_write(c->x->dst, c->buf, n, off);
		if (rc)
			return rc;
		c->bytes += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Checksum both sides, copy what differs; *bytes: the differing bytes copied. */
static int compare_copy(siterec_failover *f, const cJSON *e, uint32_t block, uint64_t *bytes)
{
	sides x;
	int rc = sides_open(f, e, &x);
	if (rc)
		return rc;
	siterec_hashmap *a = NULL, *b = NULL;
	copy_ctx c = { .x = &x, .buf = sr_malloc(FB_COPY_CHUNK) };
	if (!c.buf)
		rc = sr_err(SITEREC_ENOMEM, "failback: out of memory");
	if (rc == 0 && (rc = siterec_hashmap_new(&a, x.size, block)) == 0)
		rc = siterec_hashmap_new(&b, x.size, block);
	/* the on-premises side hashes its disk, the failed-over side its own */
	if (rc == 0)
		rc = scan(a, x.dst_fd, siterec_disk_read_cb, x.dst);
	if (rc == 0)
		rc = scan(b, x.src_fd, src_read, &x);
	/* extents come from the diff callback: a copy error passes through as EABORTED */
	if (rc == 0 && (rc = siterec_hashmap_diff(a, b, copy_extent, &c)) == SITEREC_EABORTED &&
	    siterec_error_last()->callback_code)
		rc = siterec_error_last()->callback_code;
	if (rc == 0)
		rc = siterec_disk_flush(x.dst);
	siterec_hashmap_free(a);
	siterec_hashmap_free(b);
	sr_free(c.buf);
	sides_close(&x);
	*bytes = c.bytes;
	return rc;
}

static int copy_all(siterec_failover *f, const cJSON *e, uint64_t *bytes)
{
	sides x;
	int rc = sides_open(f, e, &x);
	if (rc)
		return rc;
	copy_ctx c = { .x = &x, .buf = sr_malloc(FB_COPY_CHUNK) };
	rc = c.buf ? copy_extent(0, x.size, &c) : sr_err(SITEREC_ENOMEM, "failback: out of memory");
	if (rc == 0)
		rc = siterec_disk_flush(x.dst);
	sr_free(c.buf);
	sides_close(&x);
	*bytes = c.bytes;
	return rc;
}

/* ---- the failed-over VM's journal ---- */

/* Open it as a requester with the failover's disks in the order of the VM
 * description the start callback saw (OS first). */
static int journal_of(siterec_failover *f, siterec_journal **j)
{
	const cJSON *disks = cJSON_GetObjectItemCaseSensitive(f->s[SLOT_FB].doc, "disks");
	uint32_t n = (uint32_t)cJSON_GetArraySize(disks);
	siterec_journal_disk *jd = sr_calloc(n ? n : 1, sizeof(*jd));
	if (!jd)
		return sr_err(SITEREC_ENOMEM, "failback: out of memory");
	for (uint32_t i = 0; i < n; i++) {
		const cJSON *e = cJSON_GetArrayItem(disks, (int)i);
		uint32_t at = j_num(e, "jindex");
		jd[at].id = j_str(e, "id");
		jd[at].size = j_u64(e, "size");
	}
	siterec_journal_options o;
	siterec_journal_options_init(&o, SITEREC_JOURNAL_OPTIONS_VERSION);
	o.n_disks = n;
	o.disks = jd;
	int rc = siterec_journal_open(j, j_str(cJSON_GetObjectItemCaseSensitive(f->s[SLOT_FB].doc, "request"),
	                                       "journal_dir"), &o);
	sr_free(jd);
	return rc;
}

static int journal_cut(siterec_failover *f, uint64_t *sealed)
{
	siterec_journal *j = NULL;
	int rc = journal_of(f, &j);
	if (rc == 0)
		rc = siterec_journal_request_rotate(j, FB_ROTATE_TIMEOUT_MS, sealed);
	siterec_journal_free(j);
	return rc;
}

/* Apply the disk's journal logs after s0 up to s2 to the on-premises disk. */
static int apply_logs(siterec_failover *f, const cJSON *e, uint64_t *bytes)
{
	cJSON *doc = f->s[SLOT_FB].doc;
	siterec_journal *j = NULL;
	sides x;
	int rc = journal_of(f, &j);
	if (rc)
		return rc;
	if ((rc = sides_open(f, e, &x)) != 0) {
		siterec_journal_free(j);
		return rc;
	}
	uint64_t s0 = j_u64(doc, "s0"), s2 = j_u64(doc, "s2");
	for (uint64_t seq = s0 + 1; rc == 0 && seq <= s2; seq++) {
		char path[4200];
		struct stat sb;
		if ((rc = siterec_journal_log_path(j, j_num(e, "jindex"), seq, path, sizeof(path))) != 0)
			break;
		if (stat(path, &sb) != 0) {
			rc = sr_err_os(SITEREC_ERESYNC, errno, "failback: the failed-over journal lost %s: its writes "
			               "cannot be tracked; cancel and fail back without journal_dir (scanned)", path);
			break;
		}
		*bytes += (uint64_t)sb.st_size;
		rc = siterec_dlog_apply(path, NULL, 0, siterec_disk_write_cb, x.dst, NULL);
	}
	if (rc == 0)
		rc = siterec_disk_flush(x.dst);
	sides_close(&x);
	siterec_journal_free(j);
	return rc;
}

/* ---- the on-premises VM ---- */

static int onprem_call(siterec_failover *f, int start)
{
	const cJSON *doc = f->s[SLOT_FB].doc, *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks");
	uint32_t n = (uint32_t)cJSON_GetArraySize(disks), gen = j_num(doc, "source_generation"), lun = 0;
	siterec_failover_disk *d = sr_calloc(n ? n : 1, sizeof(*d));
	if (!d)
		return sr_err(SITEREC_ENOMEM, "failback: out of memory");
	siterec_failover_vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.version = 1;
	vm.type = SITEREC_FAILOVER_FAILBACK;
	vm.vm_id = f->vm;
	vm.name = j_str(doc, "vm_name");
	vm.generation = vm.source_generation = gen;   /* back to what it was */
	vm.firmware = gen == 2 ? SITEREC_FIRMWARE_UEFI : SITEREC_FIRMWARE_BIOS;
	vm.point_id = j_u64(doc, "point_id");
	vm.point_time_ms = j_i64(doc, "point_time_ms");
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < n; i++) {
			const cJSON *e = cJSON_GetArrayItem(disks, (int)i);
			uint32_t role = j_num(e, "role");
			if ((pass == 0) != (role == SITEREC_DISK_ROLE_OS))
				continue;
			siterec_failover_disk *x = &d[vm.n_disks++];
			x->id = j_str(e, "id");
			x->location = j_str(e, "path");
			x->size = j_u64(e, "size");
			x->role = role;
			x->lun = role == SITEREC_DISK_ROLE_OS ? 0 : lun++;
		}
	vm.disks = d;
	int cb = start ? f->o.start(&vm, f->o.payload) : f->o.remove(&vm, f->o.payload);
	sr_free(d);
	return cb ? cb_fail(cb, start ? "the start callback (on-premises VM)" : "the remove callback "
	                    "(on-premises VM)", f) : 0;
}

/* ---- the request ---- */

static int fb_create(siterec_failover *f, const siterec_failback_request *in)
{
	siterec_failback_request q;
	siterec_failback_request_init(&q, SITEREC_FAILBACK_REQUEST_VERSION);
	int rc = sr_options_copy(&q, in, fb_req_sizes, SITEREC_FAILBACK_REQUEST_VERSION, "failback request");
	if (rc)
		return rc;
	if (q.mode != SITEREC_FAILBACK_MINIMIZE_DOWNTIME && q.mode != SITEREC_FAILBACK_FULL)
		return sr_err(SITEREC_EINVAL, "failback: mode %u is not MINIMIZE_DOWNTIME or FULL", q.mode);
	if (q.flags & ~SITEREC_FAILBACK_ALTERNATE)
		return sr_err(SITEREC_EINVAL, "failback: unknown flags 0x%x", q.flags & ~SITEREC_FAILBACK_ALTERNATE);
	if (q.block_size == 0)
		q.block_size = 4096;
	if (q.block_size < 512 || q.block_size > (1u << 20) || (q.block_size & (q.block_size - 1)))
		return sr_err(SITEREC_EINVAL, "failback: block_size %u is not a power of two in 512..1 MiB", q.block_size);
	if (q.reserved || (q.n_disks && !q.disks))
		return sr_err(SITEREC_EINVAL, "failback: reserved is not 0, or disks is NULL");
	if (q.vm_name && !name_ok(q.vm_name))
		return sr_err(SITEREC_EINVAL, "failback: vm_name is not a valid name");
	if (q.journal_dir && (!q.journal_dir[0] || strlen(q.journal_dir) > 4000))
		return sr_err(SITEREC_EINVAL, "failback: journal_dir is empty or too long");
	const cJSON *fdisks = cJSON_GetObjectItemCaseSensitive(fo_doc(f), "disks");
	uint32_t n = (uint32_t)cJSON_GetArraySize(fdisks);
	if (q.n_disks != n)
		return sr_err(SITEREC_EINVAL, "failback: %u disk(s) given, the failover has %u", q.n_disks, n);
	cJSON *d = doc_new(f, SITEREC_FAILOVER_FAILBACK), *disks = cJSON_CreateArray(), *rq = cJSON_CreateObject();
	if (!d || !disks || !rq) {
		cJSON_Delete(d);
		cJSON_Delete(disks);
		cJSON_Delete(rq);
		return sr_err(SITEREC_ENOMEM, "failback: out of memory");
	}
	cJSON_ReplaceItemInObjectCaseSensitive(d, "disks", disks);
	cJSON_AddItemToObject(d, "request", rq);
	j_set_num(rq, "mode", q.mode);
	j_set_num(rq, "flags", q.flags);
	j_set_num(rq, "block_size", q.block_size);
	j_set_str(rq, "journal_dir", q.journal_dir);
	const cJSON *fo = fo_doc(f);
	sr_repl_view *v = sr_calloc(1, sizeof(*v));
	if (!v || (rc = sr_repl_view_read(f->o.store, f->vm, v)) != 0) {
		rc = v ? rc : sr_err(SITEREC_ENOMEM, "failback: out of memory");
		sr_free(v);
		cJSON_Delete(d);
		return rc;
	}
	j_set_str(d, "vm_name", q.vm_name ? q.vm_name : v->vm_name);
	sr_free(v);
	j_set_str(d, "failed_over_vm", j_str(fo, "vm_name"));
	j_set_num(d, "source_generation", j_num(fo, "source_generation"));
	j_set_u64(d, "point_id", j_u64(fo, "point_id"));
	j_set_i64(d, "point_time_ms", j_i64(fo, "point_time_ms"));
	int blob = j_str(cJSON_GetObjectItemCaseSensitive(fo, "request"), "disk_dir") == NULL;
	/* journal order: the VM description's, OS disk first */
	uint32_t jat = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++)
		for (uint32_t i = 0; i < n && rc == 0; i++) {
			const cJSON *fe = cJSON_GetArrayItem(fdisks, (int)i);
			if ((pass == 0) != (j_num(fe, "role") == SITEREC_DISK_ROLE_OS))
				continue;
			const siterec_failback_disk *g = NULL;
			for (uint32_t k = 0; k < q.n_disks; k++) {
				if (!q.disks[k].id || !q.disks[k].path || !q.disks[k].path[0] || strlen(q.disks[k].path) > 4000) {
					rc = sr_err(SITEREC_EINVAL, "failback: disk %u lacks an id or a path", k);
					break;
				}
				if (strcmp(q.disks[k].id, j_str(fe, "id")) == 0) {
					if (g) {
						rc = sr_err(SITEREC_EINVAL, "failback: disk %s is given twice", g->id);
						break;
					}
					g = &q.disks[k];
				}
			}
			if (rc == 0 && !g)
				rc = sr_err(SITEREC_EINVAL, "failback: disk %s of the failover is not given", j_str(fe, "id"));
			if (rc)
				break;
			struct stat sb;
			int exists = stat(g->path, &sb) == 0;
			if ((q.flags & SITEREC_FAILBACK_ALTERNATE) && exists)
				rc = sr_err(SITEREC_EEXISTS, "failback: %s exists (an alternate location is a new file)", g->path);
			else if (!(q.flags & SITEREC_FAILBACK_ALTERNATE) && !exists)
				rc = sr_err(SITEREC_ENOTFOUND, "failback: %s does not exist (SITEREC_FAILBACK_ALTERNATE "
				            "makes new files)", g->path);
			if (rc)
				break;
			cJSON *e = cJSON_CreateObject();
			cJSON_AddItemToArray(disks, e);
			j_set_str(e, "id", j_str(fe, "id"));
			j_set_str(e, "path", g->path);
			j_set_str(e, "source", j_str(fe, "object"));
			j_set_bool(e, "blob", blob);
			j_set_u64(e, "size", j_u64(fe, "size"));
			j_set_num(e, "role", j_num(fe, "role"));
			j_set_num(e, "jindex", jat++);
			j_set_bool(e, "create", (q.flags & SITEREC_FAILBACK_ALTERNATE) != 0);
			j_set_bool(e, "synced", 0);
			j_set_bool(e, "done", 0);
		}
	if (rc) {
		cJSON_Delete(d);
		return rc;
	}
	return slot_create(f, SLOT_FB, d);
}

/* ---- the steps ---- */

static int fb_save_phase(siterec_failover *f, uint32_t ph)
{
	set_phase(f->s[SLOT_FB].doc, ph);
	return slot_save(f, SLOT_FB);
}

static int step_start(siterec_failover *f)
{
	cJSON *doc = f->s[SLOT_FB].doc, *rq = cJSON_GetObjectItemCaseSensitive(doc, "request");
	cJSON *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks");
	int rc = 0;
	/* alternate location: the new files, made once (recorded before, so a crash re-makes them) */
	for (int i = 0; rc == 0 && i < cJSON_GetArraySize(disks); i++) {
		cJSON *e = cJSON_GetArrayItem(disks, i);
		if (!j_true(e, "create"))
			continue;
		const char *p = j_str(e, "path");
		size_t n = strlen(p);
		siterec_disk_create_options co;
		siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION);
		co.format = n > 4 && strcmp(p + n - 4, ".vhd") == 0 ? SITEREC_DISK_FORMAT_VHD : SITEREC_DISK_FORMAT_RAW;
		siterec_disk *dk = NULL;
		if (unlink(p) != 0 && errno != ENOENT)
			rc = sr_err_os(sr_errno_code(errno), errno, "failback: cannot replace %s", p);
		if (rc == 0)
			rc = siterec_disk_create(&dk, p, j_u64(e, "size"), &co);
		if (rc == 0)
			rc = siterec_disk_flush(dk);
		siterec_disk_free(dk);
		if (rc == 0) {
			j_set_bool(e, "create", 0);
			rc = slot_save(f, SLOT_FB);
		}
	}
	if (rc)
		return rc;
	/* tracked: two cuts before the comparison; the logs after the first one are the delta */
	if (j_str(rq, "journal_dir") && j_num(rq, "mode") == SITEREC_FAILBACK_MINIMIZE_DOWNTIME &&
	    !j_u64(doc, "s0")) {
		uint64_t s0 = 0, s1 = 0;
		if ((rc = journal_cut(f, &s0)) != 0 || (rc = journal_cut(f, &s1)) != 0)
			return rc;
		j_set_u64(doc, "s0", s0);
	}
	sr_log(SITEREC_LOG_INFO, "failback of %s: %s", f->vm, j_num(rq, "mode") == SITEREC_FAILBACK_FULL
	       ? "full download" : "comparing checksums while the failed-over VM runs");
	return fb_save_phase(f, j_num(rq, "mode") == SITEREC_FAILBACK_FULL ? SITEREC_FO_SHUTTING_DOWN
	                     : SITEREC_FO_SYNCING);
}

typedef int (*disk_op)(siterec_failover *f, const cJSON *e, uint64_t *bytes);

/* op on every disk not yet flagged, each one recorded (flag, bytes into counter) once done. */
static int each_disk(siterec_failover *f, const char *flag, const char *counter, disk_op op, const char *what)
{
	cJSON *doc = f->s[SLOT_FB].doc, *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks");
	int rc = 0;
	for (int i = 0; rc == 0 && i < cJSON_GetArraySize(disks); i++) {
		cJSON *e = cJSON_GetArrayItem(disks, i);
		if (j_true(e, flag))
			continue;
		uint64_t bytes = 0;
		if ((rc = op(f, e, &bytes)) != 0)
			break;
		sr_log(SITEREC_LOG_INFO, "failback of %s: disk %s: %" PRIu64 " bytes %s", f->vm, j_str(e, "id"),
		       bytes, what);
		j_set_bool(e, flag, 1);
		j_set_u64(doc, counter, j_u64(doc, counter) + bytes);
		j_set_u64(doc, "bytes_written", j_u64(doc, "bytes_written") + bytes);
		rc = slot_save(f, SLOT_FB);
	}
	return rc;
}

static int sync_disk(siterec_failover *f, const cJSON *e, uint64_t *bytes)
{
	return compare_copy(f, e, j_num(cJSON_GetObjectItemCaseSensitive(f->s[SLOT_FB].doc, "request"),
	                                "block_size"), bytes);
}

static int step_sync(siterec_failover *f)
{
	int rc = each_disk(f, "synced", "bytes_differing", sync_disk, "differing, copied");
	return rc ? rc : fb_save_phase(f, SITEREC_FO_SHUTTING_DOWN);
}

static int step_shutdown(siterec_failover *f)
{
	cJSON *doc = f->s[SLOT_FB].doc;
	int rc;
	if (!j_true(doc, "shutdown_called")) {
		j_set_bool(doc, "shutdown_called", 1);
		j_set_i64(doc, "shutdown_ms", fb_now());
		if ((rc = slot_save(f, SLOT_FB)) != 0)
			return rc;
	}
	sr_log(SITEREC_LOG_INFO, "failback of %s: downtime begins: shutting the failed-over VM %s down", f->vm,
	       j_str(doc, "failed_over_vm"));
	int cb = f->o.shutdown(j_str(doc, "failed_over_vm"), f->o.payload);
	if (cb)
		return cb_fail(cb, "the shutdown callback (failed-over VM)", f);
	if (j_u64(doc, "s0")) {
		uint64_t s2 = 0;
		if ((rc = journal_cut(f, &s2)) != 0)
			return rc;
		j_set_u64(doc, "s2", s2);
	}
	return fb_save_phase(f, SITEREC_FO_DELTA);
}

static int step_delta(siterec_failover *f)
{
	cJSON *doc = f->s[SLOT_FB].doc;
	disk_op op = j_num(cJSON_GetObjectItemCaseSensitive(doc, "request"), "mode") == SITEREC_FAILBACK_FULL
	             ? copy_all : j_u64(doc, "s0") ? apply_logs : sync_disk;
	int rc = each_disk(f, "done", "bytes_delta", op, "copied in the downtime phase");
	if (rc == 0) {
		j_set_bool(doc, "vm_called", 1);
		rc = fb_save_phase(f, SITEREC_FO_STARTING_VM);
	}
	return rc;
}

static int step_vm(siterec_failover *f)
{
	cJSON *doc = f->s[SLOT_FB].doc;
	sr_log(SITEREC_LOG_INFO, "failback of %s: starting the on-premises VM %s", f->vm, j_str(doc, "vm_name"));
	int rc = onprem_call(f, 1);
	if (rc == 0) {
		j_set_i64(doc, "vm_started_ms", fb_now());
		rc = fb_save_phase(f, SITEREC_FO_FAILED_OVER);
	}
	return rc;
}

static int step_commit(siterec_failover *f)
{
	int rc = slot_load(f, SLOT_FO);
	if (rc == 0 && fo_doc(f)) {   /* the failed-over VM and its disks go */
		sr_log(SITEREC_LOG_INFO, "failback of %s: commit: removing the failed-over VM and its disks", f->vm);
		rc = undo_outputs(f, SLOT_FO);
	}
	if (rc == 0) {
		j_set_i64(f->s[SLOT_FB].doc, "committed_ms", fb_now());
		rc = fb_save_phase(f, SITEREC_FO_COMMITTED);
	}
	return rc;
}

static int step_cancel(siterec_failover *f)
{
	slot *s = &f->s[SLOT_FB];
	int rc = 0;
	if (j_true(s->doc, "vm_called")) {
		if ((rc = onprem_call(f, 0)) != 0)
			return rc;
		j_set_bool(s->doc, "vm_called", 0);
		if ((rc = slot_save(f, SLOT_FB)) != 0)
			return rc;
	}
	if (j_true(s->doc, "shutdown_called")) {   /* the failed-over VM runs again */
		if ((rc = slot_load(f, SLOT_FO)) != 0)
			return rc;
		if (fo_doc(f) && (rc = vm_call(f, SLOT_FO, 1)) != 0)
			return rc;
	}
	rc = siterec_store_doc_delete(f->o.store, s->name, s->etag);
	if (rc == 0) {
		sr_log(SITEREC_LOG_INFO, "failback of %s: cancelled", f->vm);
		cJSON_Delete(s->doc);
		s->doc = NULL;
		s->etag[0] = '\0';
	}
	return rc;
}

static int step_reprotect(siterec_failover *f)
{
	int rc = slot_load(f, SLOT_FO);
	sr_repl_view *v = rc ? NULL : sr_calloc(1, sizeof(*v));
	if (rc == 0 && !v)
		rc = sr_err(SITEREC_ENOMEM, "reprotect: out of memory");
	if (rc == 0)
		rc = sr_repl_view_read(f->o.store, f->vm, v);
	const char *lease = fo_doc(f) ? j_str(fo_doc(f), "lease") : NULL;
	for (uint32_t i = 0; rc == 0 && lease && lease[0] && i < v->n_disks; i++) {
		rc = siterec_store_lease_release(f->o.store, v->disks[i].replica, lease);
		if (rc == SITEREC_ELEASE || rc == SITEREC_ENOTFOUND) {   /* released already */
			siterec_error_clear();
			rc = 0;
		}
	}
	if (rc == 0 && v->state == SITEREC_REPL_FAILED_OVER)
		rc = sr_repl_view_set_state(f->o.store, f->vm, v->generation, SITEREC_REPL_RESYNC,
		                            "reprotect after failback: each replica is compared with its disk");
	sr_free(v);
	if (rc == 0 && fo_doc(f)) {
		rc = siterec_store_doc_delete(f->o.store, f->s[SLOT_FO].name, f->s[SLOT_FO].etag);
		if (rc == 0) {
			cJSON_Delete(f->s[SLOT_FO].doc);
			f->s[SLOT_FO].doc = NULL;
		}
	}
	slot *s = &f->s[SLOT_FB];
	if (rc == 0 && (rc = siterec_store_doc_delete(f->o.store, s->name, s->etag)) == 0) {
		sr_log(SITEREC_LOG_INFO, "reprotect of %s: replication may resume (resync)", f->vm);
		cJSON_Delete(s->doc);
		s->doc = NULL;
		s->etag[0] = '\0';
	}
	return rc;
}

int fb_step(siterec_failover *f, uint32_t ph, int *stable)
{
	*stable = 0;
	switch (ph) {
	case SITEREC_FO_STARTING: return step_start(f);
	case SITEREC_FO_SYNCING: return step_sync(f);
	case SITEREC_FO_SHUTTING_DOWN: return step_shutdown(f);
	case SITEREC_FO_DELTA: return step_delta(f);
	case SITEREC_FO_STARTING_VM: return step_vm(f);
	case SITEREC_FO_COMMITTING: return step_commit(f);
	case SITEREC_FO_CANCELLING: return step_cancel(f);
	case SITEREC_FO_REPROTECTING: return step_reprotect(f);
	default:
		*stable = 1;
		return 0;
	}
}

/* ---- the calls ---- */

/* Load the failback slot; 0 when it is in one of the allowed phases (a bit mask). */
static int fb_in(siterec_failover *f, const char *what, uint32_t allowed)
{
	int rc = check_f(f, what);
	if (rc || (rc = slot_load(f, SLOT_FB)) != 0)
		return rc;
	if (!f->s[SLOT_FB].doc)
		return sr_err(SITEREC_ENOTFOUND, "%s: VM %s has no failback", what, f->vm);
	uint32_t ph = phase_of(f->s[SLOT_FB].doc);
	if (!(allowed & (1u << ph)))
		return sr_err(SITEREC_ESTATE, "%s: the failback of %s is %s", what, f->vm, fo_phase_names[ph]);
	return 0;
}

static int fb_drive(siterec_failover *f, uint32_t ph)
{
	int rc = 0, stable = 0;
	if (phase_of(f->s[SLOT_FB].doc) != ph)
		rc = fb_save_phase(f, ph);
	while (rc == 0 && f->s[SLOT_FB].doc && !stable)
		rc = fb_step(f, phase_of(f->s[SLOT_FB].doc), &stable);
	return rc;
}

SITEREC_API int siterec_failback_run(siterec_failover *f, const siterec_failback_request *req)
{
	int rc = check_f(f, "failback");
	if (rc)
		return rc;
	if (!req)
		return sr_err(SITEREC_EINVAL, "failback: the request is NULL");
	if (!f->o.shutdown)
		return sr_err(SITEREC_EINVAL, "failback: the shutdown callback (of the failed-over VM) is required");
	if ((rc = slot_load(f, SLOT_FB)) != 0 || (rc = slot_load(f, SLOT_FO)) != 0)
		return rc;
	if (f->s[SLOT_FB].doc)
		return sr_err(SITEREC_EEXISTS, "failback: VM %s has a failback already (%s): resume, commit or "
		              "cancel it", f->vm, fo_phase_names[phase_of(f->s[SLOT_FB].doc)]);
	if (!fo_doc(f) || phase_of(fo_doc(f)) != SITEREC_FO_COMMITTED)
		return sr_err(SITEREC_ESTATE, "failback: VM %s has no committed failover (%s)", f->vm,
		              fo_doc(f) ? fo_phase_names[phase_of(fo_doc(f))] : "none");
	if ((rc = fb_create(f, req)) != 0)
		return rc;
	return fb_drive(f, SITEREC_FO_STARTING);
}

SITEREC_API int siterec_failback_commit(siterec_failover *f)
{
	int rc = fb_in(f, "failback commit", 1u << SITEREC_FO_FAILED_OVER | 1u << SITEREC_FO_COMMITTING |
	               1u << SITEREC_FO_COMMITTED);
	if (rc || phase_of(f->s[SLOT_FB].doc) == SITEREC_FO_COMMITTED)
		return rc;   /* committed already: done */
	return fb_drive(f, SITEREC_FO_COMMITTING);
}

SITEREC_API int siterec_failback_cancel(siterec_failover *f)
{
	int rc = fb_in(f, "failback cancel", ~(1u << SITEREC_FO_COMMITTING | 1u << SITEREC_FO_COMMITTED |
	                                       1u << SITEREC_FO_REPROTECTING));
	return rc ? rc : fb_drive(f, SITEREC_FO_CANCELLING);
}

SITEREC_API int siterec_failover_reprotect(siterec_failover *f)
{
	int rc = fb_in(f, "reprotect", 1u << SITEREC_FO_COMMITTED | 1u << SITEREC_FO_REPROTECTING);
	return rc ? rc : fb_drive(f, SITEREC_FO_REPROTECTING);
}
