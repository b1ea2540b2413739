/* Replication: protect a VM's disks into a store and keep recovery points there
 * (include/siterec/replication.h). Built only on the public layers below (journal,
 * dlog, store, rp, disk) plus the store's backend name (an Azure target gets
 * VHD-shaped replicas).
 *
 * State: the document "VM/replication" (doc/formats.md "Replication state"),
 * replaced with If-Match at every step, and a local copy STATE_DIR/state.json.
 * Every step is idempotent from what the state records: uploads resume, logs
 * are absolute (applying one twice is harmless) and are released only once the
 * state records them applied, a point's id is above every id present. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "siterec/disk.h"
#include "siterec/dlog.h"
#include "siterec/journal.h"
#include "siterec/replication.h"
#include "siterec/rp.h"
#include "siterec/tracker.h"
#include "../store/store_internal.h"
#include "repl_internal.h"

#define REPL_FORMAT 2            /* 2: log shipping (applied_seq, base snapshots) */
#define REPL_MAX_DISKS 64
#define REPL_ID_MAX 64
#define REPL_DOC_MAX (1u << 20)
#define REPL_LEASE_S 60          /* writer lease on each replica disk */
#define REPL_IDLE_RENEW_S 10     /* an idle continuous cycle renews at most this often */
#define DL_EMPTY_ACTIVE 128      /* an unsealed delta log without a record: its header */

#define REPL_APPLY_DELAY_S 120   /* default options.apply_delay_s */
#define REPL_PRUNE_EVERY_MS 30000
#define REPL_LOG_TAG 8           /* hex digits of the lease id that tag this handle's log objects */

static const size_t repl_opt_sizes[] = { 0, offsetof(siterec_replication_options, apply_delay_s),
                                         sizeof(siterec_replication_options) };

typedef struct repl_disk {
	char *id;
	char *path;
	siterec_read_fn read;
	void *read_payload;
	uint64_t size;        /* bytes, a multiple of 512 */
	uint32_t role;
	uint32_t excluded;
	uint32_t copied;      /* initial copy done (state) */
	uint32_t leased;      /* this handle holds the writer lease on the replica */
	char name[REPL_ID_MAX * 2 + 16];  /* "VM/disks/DISK" */
	char base[SITEREC_STORE_ID_MAX];  /* snapshot of the replica at applied_seq (state); "" until
	                                     the disk joined the points (its first cut) */
	uint64_t first_seq;   /* its journal logs begin here (a disk added after protection), else 0 */
} repl_disk;

typedef struct repl_state {
	uint64_t generation;
	uint32_t state;
	char protection[33];
	uint64_t first_seq;
	uint64_t last_applied;   /* journal logs up to here are shipped (and released) */
	uint64_t applied_seq;    /* the replicas hold every shipped log up to here */
	uint64_t applied_point;  /* ... that is, this point's content; base snapshots in the disks */
	int64_t applied_cut_ms;  /* its cut */
	uint64_t cycle;
	int64_t created_ms;
	int64_t last_cut_ms;
	int64_t last_app_ms;
	uint64_t bytes_shipped;
	char reason[256];
} repl_state;

struct siterec_replication {
	siterec_replication_options opts;
	char *state_dir;
	char *vm_id;
	char *vm_name;
	uint32_t vm_generation;
	int azure;
	uint32_t n;              /* disks in state order: protected ones first are journal order */
	repl_disk *disks;
	uint32_t n_prot;
	uint32_t *prot;          /* indexes into disks of the protected disks, journal order */
	siterec_journal *jr;
	siterec_rp_catalog *cat;
	repl_state st;
	char etag[SITEREC_STORE_ETAG_MAX];
	char doc_name[REPL_ID_MAX + 16];
	char lease_id[SITEREC_STORE_LEASE_MAX];  /* this handle's lease id (a GUID) */
	uint32_t lease_s;        /* lease duration */
	int lease_lost;          /* a renewal failed: the handle never writes again */
	int64_t renewed_ms;      /* last renewal of every lease */
	struct apply_batch *batch;  /* siterec_replication_apply() in progress, or NULL */
	siterec_rp_log *pend;    /* checkpoints shipped since the last point (state "pending") */
	uint64_t n_pend;
	uint32_t added;          /* disks state_load() appended from the VM description */
	int64_t pruned_ms;       /* last retention prune */
};

SITEREC_API int siterec_replication_options_init(siterec_replication_options *opts,
                                                 unsigned int version)
{
	int rc = sr_options_init(opts, version, repl_opt_sizes, SITEREC_REPLICATION_OPTIONS_VERSION,
	                         "replication");
	if (rc == 0)
		opts->interval_s = 300;
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > REPL_ID_MAX || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return strstr(s, "..") == NULL;
}

SITEREC_API const char *siterec_replication_state_name(uint32_t s)
{
	switch (s) {
	case SITEREC_REPL_INITIAL: return "initial";
	case SITEREC_REPL_PROTECTED: return "protected";
	case SITEREC_REPL_RESYNC: return "resync";
	case SITEREC_REPL_CRITICAL: return "critical";
	case SITEREC_REPL_FAILED_OVER: return "failed-over";
	default: return NULL;
	}
}

static uint32_t state_parse(const char *s)
{
	for (uint32_t v = SITEREC_REPL_INITIAL; s && v <= SITEREC_REPL_FAILED_OVER; v++)
		if (strcmp(s, siterec_replication_state_name(v)) == 0)
			return v;
	return 0;
}

static void disks_free(repl_disk *d, uint32_t n)
{
	for (uint32_t i = 0; d && i < n; i++) {
		sr_free(d[i].id);
		sr_free(d[i].path);
	}
	sr_free(d);
}

static void leases_release(siterec_replication *r);
static void batch_free(struct apply_batch *b);
static void logs_free(siterec_rp_log *logs, uint64_t n);
static int classify(siterec_replication *r, int rc);
static int nothing_written(siterec_replication *r);

SITEREC_API void siterec_replication_free(siterec_replication *r)
{
	if (!r)
		return;
	batch_free(r->batch);
	logs_free(r->pend, r->n_pend);
	leases_release(r);
	siterec_rp_free(r->cat);
	siterec_journal_free(r->jr);
	disks_free(r->disks, r->n);
	sr_free(r->prot);
	sr_free(r->state_dir);
	sr_free(r->vm_id);
	sr_free(r->vm_name);
	sr_free(r);
}

/* ---- the VM description ---- */

/* Size of a disk as replicated: an image's virtual size, or the caller's size. */
static int disk_size_of(const siterec_vm_disk *d, uint64_t *size)
{
	if (!d->path) {
		if (!d->read)
			return sr_err(SITEREC_EINVAL, "replication: disk %s has neither a path nor a read callback", d->id);
		if (!d->size || d->size % 512)
			return sr_err(SITEREC_EINVAL, "replication: disk %s: size %" PRIu64 " is not a non-zero multiple of 512",
			              d->id, d->size);
		*size = d->size;
		return 0;
	}
	siterec_disk *img = NULL;
	int rc = siterec_disk_open(&img, d->path, NULL);
	if (rc)
		return rc;
	siterec_disk_info info = { .version = SITEREC_DISK_INFO_VERSION };
	rc = siterec_disk_info_get(img, &info);
	siterec_disk_free(img);
	if (rc)
		return rc;
	if (!info.virtual_size || info.virtual_size % 512)
		return sr_err(SITEREC_EINVAL, "replication: disk %s: image %s has a size of %" PRIu64
		              " bytes, not a non-zero multiple of 512", d->id, d->path, info.virtual_size);
	*size = info.virtual_size;
	return 0;
}

/* Check a VM description; fills r->disks (in the VM's order). */
static int vm_load(siterec_replication *r, const siterec_vm *vm)
{
	if (!vm)
		return sr_err(SITEREC_EINVAL, "replication: the VM description is NULL");
	if (vm->version < 1 || vm->version > SITEREC_VM_VERSION)
		return sr_err(SITEREC_EVERSION, "replication: VM description version %u is not supported (1..%u)",
		              vm->version, SITEREC_VM_VERSION);
	if (!id_ok(vm->id))
		return sr_err(SITEREC_EINVAL, "replication: VM id must be 1..64 of [A-Za-z0-9._-], not starting with '.'");
	if (vm->generation != 1 && vm->generation != 2)
		return sr_err(SITEREC_EINVAL, "replication: VM %s: generation %u is not 1 or 2", vm->id, vm->generation);
	if (vm->n_disks < 1 || vm->n_disks > REPL_MAX_DISKS || !vm->disks)
		return sr_err(SITEREC_EINVAL, "replication: VM %s: %u disks (1..64 required)", vm->id, vm->n_disks);
	uint32_t n_os = 0, n_prot = 0;
	for (uint32_t i = 0; i < vm->n_disks; i++) {
		const siterec_vm_disk *d = &vm->disks[i];
		if (!id_ok(d->id))
			return sr_err(SITEREC_EINVAL, "replication: VM %s: disk %u: id must be 1..64 of [A-Za-z0-9._-], not starting with '.'",
			              vm->id, i);
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(vm->disks[k].id, d->id) == 0)
				return sr_err(SITEREC_EINVAL, "replication: VM %s: disk id %s appears twice", vm->id, d->id);
		if (d->role != SITEREC_DISK_ROLE_OS && d->role != SITEREC_DISK_ROLE_DATA)
			return sr_err(SITEREC_EINVAL, "replication: VM %s: disk %s: role %u is not OS or data", vm->id, d->id, d->role);
		if (d->flags & ~SITEREC_VM_DISK_EXCLUDED)
			return sr_err(SITEREC_EINVAL, "replication: VM %s: disk %s: unknown flags 0x%x", vm->id, d->id, d->flags);
		if (d->role == SITEREC_DISK_ROLE_OS) {
			n_os++;
			if (d->flags & SITEREC_VM_DISK_EXCLUDED)
				return sr_err(SITEREC_EINVAL, "replication: VM %s: the OS disk %s cannot be excluded", vm->id, d->id);
		}
		if (!(d->flags & SITEREC_VM_DISK_EXCLUDED))
			n_prot++;
	}
	if (n_os != 1)
		return sr_err(SITEREC_EINVAL, "replication: VM %s has %u OS disks (exactly one required)", vm->id, n_os);
	if (!(r->vm_id = sr_strdup(vm->id)) || (vm->name && !(r->vm_name = sr_strdup(vm->name))) ||
	    !(r->disks = sr_calloc(vm->n_disks, sizeof(repl_disk))) ||
	    !(r->prot = sr_calloc(n_prot, sizeof(uint32_t))))
		return sr_err(SITEREC_ENOMEM, "replication: out of memory");
	r->vm_generation = vm->generation;
	r->n = vm->n_disks;
	for (uint32_t i = 0; i < vm->n_disks; i++) {
		const siterec_vm_disk *d = &vm->disks[i];
		repl_disk *rd = &r->disks[i];
		if (!(rd->id = sr_strdup(d->id)) || (d->path && !(rd->path = sr_strdup(d->path))))
			return sr_err(SITEREC_ENOMEM, "replication: out of memory");
		rd->read = d->read;
		rd->read_payload = d->read_payload;
		rd->role = d->role;
		rd->excluded = (d->flags & SITEREC_VM_DISK_EXCLUDED) != 0;
		snprintf(rd->name, sizeof(rd->name), "%s/disks/%s", vm->id, d->id);
		int rc;
		if (rd->excluded)   /* never read: its size is what the caller says */
			rd->size = (d->size + 511) / 512 * 512;
		else if ((rc = disk_size_of(d, &rd->size)) != 0)
			return rc;
		else
			r->prot[r->n_prot++] = i;
	}
	return 0;
}

/* ---- the state document ---- */

/* 64-bit values are decimal strings (JSON numbers are doubles). */
static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	cJSON_AddItemToObject(o, key, cJSON_CreateString(buf));
}

static cJSON *state_json(const siterec_replication *r, const repl_state *s)
{
	cJSON *o = cJSON_CreateObject(), *disks = cJSON_CreateArray();
	if (!o || !disks) {
		cJSON_Delete(o);
		cJSON_Delete(disks);
		return NULL;
	}
	cJSON_AddItemToObject(o, "format", cJSON_CreateString("siterec-replication"));
	cJSON_AddItemToObject(o, "version", cJSON_CreateNumber(REPL_FORMAT));
	cJSON_AddItemToObject(o, "vm", cJSON_CreateString(r->vm_id));
	cJSON_AddItemToObject(o, "name", r->vm_name ? cJSON_CreateString(r->vm_name) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "vm_generation", cJSON_CreateNumber(r->vm_generation));
	add_u64(o, "generation", (uint64_t)s->generation);
	cJSON_AddItemToObject(o, "protection", cJSON_CreateString(s->protection));
	cJSON_AddItemToObject(o, "state", cJSON_CreateString(siterec_replication_state_name(s->state)));
	cJSON_AddItemToObject(o, "reason", cJSON_CreateString(s->reason));
	add_u64(o, "first_seq", (uint64_t)s->first_seq);
	add_u64(o, "last_applied_seq", (uint64_t)s->last_applied);
	add_u64(o, "applied_seq", s->applied_seq);
	add_u64(o, "applied_point", s->applied_point);
	add_u64(o, "applied_cut_ms", (uint64_t)s->applied_cut_ms);
	add_u64(o, "cycle", (uint64_t)s->cycle);
	add_u64(o, "created_ms", (uint64_t)s->created_ms);
	add_u64(o, "last_cut_ms", (uint64_t)s->last_cut_ms);
	add_u64(o, "last_app_ms", (uint64_t)s->last_app_ms);
	add_u64(o, "bytes_shipped", (uint64_t)s->bytes_shipped);
	cJSON_AddItemToObject(o, "interval_s", cJSON_CreateNumber(r->opts.interval_s));
	cJSON *pend = cJSON_AddArrayToObject(o, "pending");
	for (uint64_t k = 0; pend && k < r->n_pend; k++) {
		const siterec_rp_log *l = &r->pend[k];
		cJSON *e = cJSON_CreateObject();
		if (!e || !cJSON_AddItemToArray(pend, e)) {
			cJSON_Delete(e);
			pend = NULL;
			break;
		}
		cJSON_AddItemToObject(e, "disk", cJSON_CreateNumber(l->disk_index));
		add_u64(e, "seq", l->seq);
		cJSON_AddItemToObject(e, "object", cJSON_CreateString(l->object));
		add_u64(e, "length", l->length);
		add_u64(e, "sealed_ms", (uint64_t)l->sealed_ms);
	}
	if (!pend) {
		cJSON_Delete(o);
		cJSON_Delete(disks);
		return NULL;
	}
	cJSON_AddItemToObject(o, "disks", disks);
	for (uint32_t i = 0; i < r->n; i++) {
		const repl_disk *d = &r->disks[i];
		cJSON *e = cJSON_CreateObject();
		if (!e) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddItemToArray(disks, e);
		cJSON_AddItemToObject(e, "id", cJSON_CreateString(d->id));
		add_u64(e, "size", d->size);
		cJSON_AddItemToObject(e, "role", cJSON_CreateString(d->role == SITEREC_DISK_ROLE_OS ? "os" : "data"));
		cJSON_AddItemToObject(e, "excluded", cJSON_CreateBool(d->excluded));
		cJSON_AddItemToObject(e, "copied", cJSON_CreateBool(d->copied));
		cJSON_AddItemToObject(e, "base", cJSON_CreateString(d->base));
		add_u64(e, "first_seq", d->first_seq);
	}
	return o;
}

/* Write state s (generation = s->generation + 1) with If-Match on our ETag ("" to
 * create), then the local copy. r->st becomes s on success. */
static int state_put(siterec_replication *r, const repl_state *s_in, int create)
{
	repl_state s = *s_in;
	s.generation++;
	cJSON *o = state_json(r, &s);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!text)
		return sr_err(SITEREC_ENOMEM, "replication: out of memory writing the state of %s", r->vm_id);
	char etag[SITEREC_STORE_ETAG_MAX];
	int rc = siterec_store_doc_put(r->opts.store, r->doc_name, text, strlen(text),
	                               create ? "" : r->etag, etag, sizeof(etag));
	if (rc == SITEREC_ECONFLICT)
		rc = create ? sr_err(SITEREC_EEXISTS, "replication: VM %s is protected already (%s exists)",
		                     r->vm_id, r->doc_name)
		            : sr_err(SITEREC_ECONFLICT, "replication: the state of VM %s was changed by another "
		                     "host or process (generation past %" PRIu64 "): open it again",
		                     r->vm_id, s_in->generation);
	if (rc == 0) {
		memcpy(r->etag, etag, sizeof(etag));
		r->st = s;
		char path[4200];
		snprintf(path, sizeof(path), "%s/state.json", r->state_dir);
		rc = sr_file_replace(path, text, strlen(text));
	}
	cJSON_free(text);
	return rc;
}

static int json_u64(const cJSON *o, const char *key, uint64_t *v)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
	const char *t = cJSON_IsString(n) ? n->valuestring : NULL;
	size_t len = t ? strlen(t) : 0;
	if (len < 1 || len > 20 || (len > 1 && t[0] == '0') || strspn(t, "0123456789") != len)
		return -1;
	errno = 0;
	unsigned long long x = strtoull(t, NULL, 10);
	if (errno)
		return -1;
	*v = x;
	return 0;
}

static int json_i64(const cJSON *o, const char *key, int64_t *v)
{
	uint64_t u;
	if (json_u64(o, key, &u) || u > INT64_MAX)
		return -1;
	*v = (int64_t)u;
	return 0;
}

static int state_bad(const siterec_replication *r, const char *why)
{
	return sr_err(SITEREC_ECORRUPT, "replication: state document %s is damaged: %s", r->doc_name, why);
}

/* Read the state document into r->st and the disks' copied flags; check the VM
 * description against it (reopen). */
static int state_load(siterec_replication *r, int check_vm)
{
	void *data = NULL;
	size_t len = 0;
	char etag[SITEREC_STORE_ETAG_MAX];
	int rc = siterec_store_doc_get(r->opts.store, r->doc_name, &data, &len, etag, sizeof(etag));
	if (rc == SITEREC_ENOTFOUND)
		return sr_err(SITEREC_ENOTFOUND, "replication: VM %s is not protected in this target (no %s)",
		              r->vm_id, r->doc_name);
	if (rc)
		return rc;
	cJSON *o = cJSON_ParseWithLength(data, len);
	siterec_free(data);
	repl_state s;
	memset(&s, 0, sizeof(s));
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format"),
	            *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
	const cJSON *disks = cJSON_GetObjectItemCaseSensitive(o, "disks");
	const cJSON *vm = cJSON_GetObjectItemCaseSensitive(o, "vm"),
	            *prot = cJSON_GetObjectItemCaseSensitive(o, "protection"),
	            *st = cJSON_GetObjectItemCaseSensitive(o, "state"),
	            *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
	if (!cJSON_IsObject(o))
		rc = state_bad(r, "not a JSON object");
	else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "siterec-replication") != 0)
		rc = state_bad(r, "\"format\" is not \"siterec-replication\"");
	else if (!cJSON_IsNumber(ver) || !(ver->valuedouble >= 1 && ver->valuedouble <= 0x1p53) ||
	         ver->valuedouble != (double)(uint64_t)ver->valuedouble)
		rc = state_bad(r, "no valid \"version\"");
	else if (ver->valuedouble != REPL_FORMAT)
		rc = sr_err(SITEREC_EVERSION, "replication: state document %s has version %.0f; this library "
		            "reads version %d%s", r->doc_name, ver->valuedouble, REPL_FORMAT,
		            ver->valuedouble < REPL_FORMAT ? " (from before log shipping: protect the VM again)" : "");
	else if (!cJSON_IsString(vm) || strcmp(vm->valuestring, r->vm_id) != 0)
		rc = state_bad(r, "\"vm\" does not name this VM");
	else if (!cJSON_IsString(prot) || strlen(prot->valuestring) >= sizeof(s.protection) ||
	         !prot->valuestring[0])
		rc = state_bad(r, "no valid \"protection\"");
	else if (!cJSON_IsString(st) || !(s.state = state_parse(st->valuestring)))
		rc = state_bad(r, "no valid \"state\"");
	else if (json_u64(o, "generation", &s.generation) || json_u64(o, "first_seq", &s.first_seq) ||
	         json_u64(o, "last_applied_seq", &s.last_applied) || json_u64(o, "cycle", &s.cycle) ||
	         json_u64(o, "applied_seq", &s.applied_seq) || json_u64(o, "applied_point", &s.applied_point) ||
	         json_i64(o, "applied_cut_ms", &s.applied_cut_ms) ||
	         json_i64(o, "created_ms", &s.created_ms) || json_i64(o, "last_cut_ms", &s.last_cut_ms) ||
	         json_i64(o, "last_app_ms", &s.last_app_ms) ||
	         json_u64(o, "bytes_shipped", &s.bytes_shipped))
		rc = state_bad(r, "a counter is missing or out of range");
	else if (!cJSON_IsArray(disks) || cJSON_GetArraySize(disks) < 1 ||
	         cJSON_GetArraySize(disks) > REPL_MAX_DISKS)
		rc = state_bad(r, "no valid \"disks\" array");
	if (rc == 0) {
		snprintf(s.protection, sizeof(s.protection), "%s", prot->valuestring);
		if (cJSON_IsString(reason))
			snprintf(s.reason, sizeof(s.reason), "%s", reason->valuestring);
	}
	/* The disks, in the state's order (the journal's order for protected ones);
	 * reopening with disks the state lacks appends them (r->added). */
	uint32_t n = rc ? 0 : (uint32_t)cJSON_GetArraySize(disks), cap = n + (check_vm ? r->n : 0);
	repl_disk *nd = rc ? NULL : sr_calloc(cap, sizeof(repl_disk));
	uint32_t *np = rc ? NULL : sr_calloc(cap, sizeof(uint32_t)), n_prot = 0;
	if (rc == 0 && (!nd || !np))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		const cJSON *e = cJSON_GetArrayItem(disks, (int)i);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"),
		            *ex = cJSON_GetObjectItemCaseSensitive(e, "excluded"),
		            *cp = cJSON_GetObjectItemCaseSensitive(e, "copied"),
		            *base = cJSON_GetObjectItemCaseSensitive(e, "base");
		uint64_t size, first;
		if (!cJSON_IsString(id) || !id_ok(id->valuestring) || json_u64(e, "size", &size) ||
		    !cJSON_IsBool(ex) || !cJSON_IsBool(cp) || !cJSON_IsString(base) ||
		    strlen(base->valuestring) >= SITEREC_STORE_ID_MAX || json_u64(e, "first_seq", &first)) {
			rc = state_bad(r, "a disk entry lacks id, size, excluded, copied, base or first_seq");
			break;
		}
		const repl_disk *vd = NULL;
		for (uint32_t k = 0; k < r->n; k++)
			if (strcmp(r->disks[k].id, id->valuestring) == 0)
				vd = &r->disks[k];
		if (!vd) {
			rc = sr_err(SITEREC_ECONFLICT, "replication: VM %s: disk %s is protected but missing from the "
			            "VM description (removing disks is not supported)", r->vm_id, id->valuestring);
			break;
		}
		if (check_vm && (uint32_t)cJSON_IsTrue(ex) != vd->excluded) {
			rc = sr_err(SITEREC_ECONFLICT, "replication: VM %s: disk %s was protected %s exclusion",
			            r->vm_id, vd->id, cJSON_IsTrue(ex) ? "with" : "without");
			break;
		}
		if (check_vm && !vd->excluded && size != vd->size) {
			rc = sr_err(SITEREC_ECONFLICT, "replication: VM %s: disk %s was resized from %" PRIu64
			            " to %" PRIu64 " bytes since it was protected", r->vm_id, vd->id, size, vd->size);
			break;
		}
		nd[i] = *vd;
		if (!(nd[i].id = sr_strdup(vd->id)) || (vd->path && !(nd[i].path = sr_strdup(vd->path)))) {
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
			break;
		}
		nd[i].copied = cJSON_IsTrue(cp);
		nd[i].first_seq = first;
		snprintf(nd[i].base, sizeof(nd[i].base), "%s", base->valuestring);
		if (!nd[i].excluded)
			np[n_prot++] = i;
	}
	uint32_t added = 0;
	for (uint32_t k = 0; rc == 0 && check_vm && k < r->n; k++) {
		uint32_t i = 0;
		while (i < n && strcmp(nd[i].id, r->disks[k].id) != 0)
			i++;
		if (i < n)
			continue;
		/* a disk attached since: its own initial copy, the others go on */
		nd[n + added] = r->disks[k];
		nd[n + added].path = NULL;
		if (!(nd[n + added].id = sr_strdup(r->disks[k].id)) ||
		    (r->disks[k].path && !(nd[n + added].path = sr_strdup(r->disks[k].path)))) {
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
			added++;
			break;
		}
		nd[n + added].copied = 0;
		nd[n + added].base[0] = '\0';
		if (!nd[n + added].excluded)
			np[n_prot++] = n + added;
		added++;
	}
	/* checkpoints shipped since the last point */
	const cJSON *pend = cJSON_GetObjectItemCaseSensitive(o, "pending");
	uint64_t n_pend = cJSON_IsArray(pend) ? (uint64_t)cJSON_GetArraySize(pend) : 0;
	siterec_rp_log *pl = NULL;
	if (rc == 0 && !cJSON_IsArray(pend))
		rc = state_bad(r, "no \"pending\" array");
	if (rc == 0 && n_pend && !(pl = sr_calloc((size_t)n_pend, sizeof(*pl))))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	for (uint64_t k = 0; rc == 0 && k < n_pend; k++) {
		const cJSON *e = cJSON_GetArrayItem(pend, (int)k);
		const cJSON *dk = cJSON_GetObjectItemCaseSensitive(e, "disk"),
		            *ob = cJSON_GetObjectItemCaseSensitive(e, "object");
		if (!cJSON_IsNumber(dk) || dk->valuedouble < 0 || dk->valuedouble >= n_prot ||
		    dk->valuedouble != (double)(uint32_t)dk->valuedouble || !cJSON_IsString(ob) ||
		    json_u64(e, "seq", &pl[k].seq) || json_u64(e, "length", &pl[k].length) ||
		    json_i64(e, "sealed_ms", &pl[k].sealed_ms))
			rc = state_bad(r, "a \"pending\" entry lacks disk, seq, object, length or sealed_ms");
		else if (!(pl[k].object = sr_strdup(ob->valuestring)))
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
		else
			pl[k].disk_index = (uint32_t)dk->valuedouble;
	}
	cJSON_Delete(o);
	if (rc) {
		logs_free(pl, n_pend);
		disks_free(nd, n + added);
		sr_free(np);
		return rc;
	}
	n += added;
	r->added = added;
	logs_free(r->pend, r->n_pend);
	r->pend = pl;
	r->n_pend = n_pend;
	disks_free(r->disks, r->n);
	sr_free(r->prot);
	r->disks = nd;
	r->n = n;
	r->prot = np;
	r->n_prot = n_prot;
	r->st = s;
	memcpy(r->etag, etag, sizeof(etag));
	return 0;
}

/* ---- open ---- */

static int journal_open(siterec_replication *r, uint32_t flags)
{
	siterec_journal_disk jd[REPL_MAX_DISKS];
	memset(jd, 0, sizeof(jd));
	for (uint32_t i = 0; i < r->n_prot; i++) {
		jd[i].id = r->disks[r->prot[i]].id;
		jd[i].size = r->disks[r->prot[i]].size;
	}
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = flags;
	jo.n_disks = r->n_prot;
	jo.disks = jd;
	char path[4200];
	snprintf(path, sizeof(path), "%s/journal", r->state_dir);
	return siterec_journal_open(&r->jr, path, &jo);
}

/* Record the disks state_load() appended: each logs from the first journal
 * sequence that has its log (the active one when it was added just now). */
static int disks_added(siterec_replication *r)
{
	uint64_t active = 0;
	int rc = siterec_journal_seqs(r->jr, &active, NULL);
	for (uint32_t i = 0; rc == 0 && i < r->n_prot; i++) {
		repl_disk *d = &r->disks[r->prot[i]];
		if (d->copied || d->first_seq)
			continue;
		d->first_seq = active;
		char path[4200];
		struct stat sb;
		for (uint64_t q = r->st.last_applied + 1; q < active; q++)
			if (siterec_journal_log_path(r->jr, i, q, path, sizeof(path)) == 0 && stat(path, &sb) == 0) {
				d->first_seq = q;
				break;
			}
		siterec_error_clear();
		sr_log(SITEREC_LOG_INFO, "replication: VM %s: disk %s added (its logs from sequence %" PRIu64 ")",
		       r->vm_id, d->id, d->first_seq);
	}
	if (rc == 0)
		rc = state_put(r, &r->st, 0);
	if (rc == 0)
		r->added = 0;
	return rc;
}

/* Protected disks (a prefix: added ones come last) that are in the points. */
static uint32_t joined(const siterec_replication *r)
{
	uint32_t n = 0;
	while (n < r->n_prot && r->disks[r->prot[n]].base[0])
		n++;
	return n;
}

/* ---- fencing: a writer lease on every replica disk ---- */

/* SITEREC_TEST_LEASE_S (15..60) shortens the lease: a test knob, not an interface. */
static uint32_t lease_duration(void)
{
	const char *e = getenv("SITEREC_TEST_LEASE_S");
	if (e && *e) {
		char *end = NULL;
		unsigned long v = strtoul(e, &end, 10);
		if (end && !*end && v >= 15 && v <= 60)
			return (uint32_t)v;
	}
	return REPL_LEASE_S;
}

/* Start time of process pid (field 22 of /proc/PID/stat), 0 when unknown. */
static uint64_t proc_start(long pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	unsigned long long v = 0;
	/* after ") ": state, then fields 4..21, then starttime */
	if (s && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                &v) == 1)
		return v;
	return 0;
}

/* This process's pid namespace ("pid:[INODE]"): pids compare only inside one. */
static void pid_ns(char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/ns/pid", buf, cap - 1);
	if (n <= 0 || memchr(buf, ' ', (size_t)n))
		n = 0;
	buf[n] = '\0';
	if (!n)
		snprintf(buf, cap, "-");
}

static void owner_path(const siterec_replication *r, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/lease-owner", r->state_dir);
}

/* STATE_DIR/lease-owner (doc/formats.md): which process of which host holds the
 * leases. A handle opening on the same host after that process died (a crash, a
 * kill) takes its lease id over instead of waiting for the leases to expire. */
static void owner_write(siterec_replication *r)
{
	char host[256] = "", ns[128], path[4200], text[800];
	gethostname(host, sizeof(host) - 1);
	pid_ns(ns, sizeof(ns));
	long pid = (long)getpid();
	int n = snprintf(text, sizeof(text), "siterec-lease-owner 1\nhost %s\npidns %s\npid %ld\nstart %" PRIu64
	                 "\nlease %s\n", host, ns, pid, proc_start(pid), r->lease_id);
	owner_path(r, path, sizeof(path));
	if (sr_file_replace(path, text, (size_t)n) != 0)
		sr_log(SITEREC_LOG_WARN, "replication: VM %s: cannot record the lease owner in %s", r->vm_id, path);
}

/* The lease id recorded by a process of this host that is gone, to *id; 0 if any. */
static int owner_dead_lease(const siterec_replication *r, char *id, size_t cap)
{
	char path[4200], host[256] = "", fhost[256], flease[SITEREC_STORE_LEASE_MAX], ns[128], fns[128];
	owner_path(r, path, sizeof(path));
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long pid = 0;
	unsigned long long start = 0;
	int ok = fscanf(f, "siterec-lease-owner 1 host %255s pidns %127s pid %ld start %llu lease %63s", fhost,
	                fns, &pid, &start, flease) == 5;
	fclose(f);
	gethostname(host, sizeof(host) - 1);
	pid_ns(ns, sizeof(ns));
	/* only a process this one can see: same host name, same pid namespace (known) */
	if (!ok || pid <= 0 || strcmp(host, fhost) != 0 || strcmp(ns, "-") == 0 || strcmp(ns, fns) != 0 ||
	    pid == (long)getpid())
		return -1;
	int alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
	if (alive && start && proc_start(pid) != start)
		alive = 0;   /* the pid was reused */
	if (alive || strlen(flease) >= cap)
		return -1;
	memcpy(id, flease, strlen(flease) + 1);
	return 0;
}

static int refuse_abort(uint64_t off, uint64_t len, uint64_t *run, int *allocated, void *payload)
{
	(void)off; (void)len; (void)run; (void)allocated; (void)payload;
	return 1;
}

static int refuse_read(void *buf, size_t len, uint64_t off, void *payload)
{
	(void)buf; (void)len; (void)off; (void)payload;
	return 1;
}

static void upload_opts(const siterec_replication *r, const repl_disk *d, char *source_id, size_t cap,
                        siterec_store_upload_options *uo)
{
	snprintf(source_id, cap, "%s/%s/%s", r->vm_id, d->id, r->st.protection);
	*uo = (siterec_store_upload_options)SITEREC_STORE_UPLOAD_OPTIONS_INIT;
	uo->flags = SITEREC_STORE_UPLOAD_RESUME | (r->azure ? SITEREC_STORE_UPLOAD_VHD : 0);
	uo->source_id = source_id;
}

/* Create the replica of d as its upload would (record, then the empty disk) and
 * stop before anything is read: the upload resumes under the lease. */
static int replica_create(siterec_replication *r, const repl_disk *d)
{
	char source_id[256];
	siterec_store_upload_options uo;
	upload_opts(r, d, source_id, sizeof(source_id), &uo);
	siterec_store *st = r->opts.store;
	siterec_progress_fn pf = st->opts.progress;
	st->opts.progress = NULL;   /* the caller's would see a call for nothing */
	int rc = siterec_store_upload(st, d->name, d->size, refuse_read, refuse_abort, NULL, &uo, NULL);
	st->opts.progress = pf;
	if (rc == SITEREC_EABORTED) {
		siterec_error_clear();
		rc = 0;
	}
	return rc;
}

static void leases_release(siterec_replication *r)
{
	int any = 0;
	for (uint32_t i = 0; r->disks && i < r->n; i++)
		if (r->disks[i].leased) {
			any = 1;
			siterec_store_lease_release(r->opts.store, r->disks[i].name, r->lease_id);
			r->disks[i].leased = 0;
		}
	if (!any)
		return;
	siterec_error_clear();
	char path[4200], id[SITEREC_STORE_LEASE_MAX];
	owner_path(r, path, sizeof(path));
	FILE *f = fopen(path, "re");
	int ours = 0;
	if (f) {
		char line[128];
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "lease %63s", id) == 1 && strcmp(id, r->lease_id) == 0)
				ours = 1;
		fclose(f);
	}
	if (ours)
		unlink(path);
}

/* Take the lease on every protected replica (creating a replica not there yet). */
static int leases_take(siterec_replication *r)
{
	uint8_t rnd[16];
	int rc = sr_random_bytes(rnd, sizeof(rnd));
	if (rc)
		return rc;
	snprintf(r->lease_id, sizeof(r->lease_id),
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
	         rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11], rnd[12],
	         rnd[13], rnd[14], rnd[15]);
	r->lease_s = lease_duration();
	int adopted = owner_dead_lease(r, r->lease_id, sizeof(r->lease_id)) == 0;
	/* the owner file first (a kill after an acquire must leave our id behind);
	 * the previous one is put back if the leases cannot be taken */
	char opath[4200];
	owner_path(r, opath, sizeof(opath));
	void *prev = NULL;
	size_t prev_len = 0;
	if (sr_file_read_all(opath, 4096, &prev, &prev_len) != 0) {
		siterec_error_clear();
		prev = NULL;
	}
	owner_write(r);
	char got[SITEREC_STORE_LEASE_MAX];
	for (uint32_t i = 0; rc == 0 && i < r->n_prot; i++) {
		repl_disk *d = &r->disks[r->prot[i]];
		rc = siterec_store_lease_acquire(r->opts.store, d->name, r->lease_s, r->lease_id, got, sizeof(got));
		if (rc == SITEREC_ENOTFOUND && !d->copied && (rc = replica_create(r, d)) == 0)
			rc = siterec_store_lease_acquire(r->opts.store, d->name, r->lease_s, r->lease_id, got,
			                                 sizeof(got));
		if (rc == SITEREC_ELEASE)
			rc = sr_err(SITEREC_ELEASE, "replication: VM %s is replicated by another replicator (it "
			            "holds the lease on the replica %s): only one host replicates a VM at a time; "
			            "try again once it stopped or its lease expired (%u s after its last renewal)",
			            r->vm_id, d->name, r->lease_s);
		if (rc == 0)
			d->leased = 1;
	}
	if (rc) {
		leases_release(r);
		if (prev)
			sr_file_replace(opath, prev, prev_len);
		else
			unlink(opath);
		sr_free(prev);
		return rc;
	}
	sr_free(prev);
	if (adopted)
		sr_log(SITEREC_LOG_INFO, "replication: VM %s: took over the leases of a replicator of this host "
		       "that is gone", r->vm_id);
	r->renewed_ms = now_ms();
	return 0;
}

/* Renew every lease; a lost one makes the handle refuse from now on. */
static int leases_renew(siterec_replication *r, const char *what)
{
	for (uint32_t i = 0; !r->lease_lost && i < r->n_prot; i++) {
		repl_disk *d = &r->disks[r->prot[i]];
		int rc = siterec_store_lease_renew(r->opts.store, d->name, r->lease_id);
		if (rc == SITEREC_ELEASE)
			r->lease_lost = 1;
		else if (rc)
			return rc;
	}
	if (r->lease_lost)
		return sr_err(SITEREC_ELEASE, "replication %s: VM %s: this handle lost its lease on the replicas "
		              "(not renewed within %u s, and another replicator may hold the VM now): nothing "
		              "was written; free the handle and open the VM again", what, r->vm_id, r->lease_s);
	r->renewed_ms = now_ms();
	return 0;
}

/* Renew when a third of the lease time has gone by: called inside long uploads
 * and applies, which may outlast a lease (the service then refuses the writes). */
static int leases_renew_due(siterec_replication *r, const char *what)
{
	if (now_ms() - r->renewed_ms < (int64_t)r->lease_s * 1000 / 3)
		return 0;
	return leases_renew(r, what);
}

SITEREC_API int siterec_replication_keepalive(siterec_replication *r)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication keepalive: handle is NULL");
	return leases_renew(r, "keepalive");
}

SITEREC_API int siterec_replication_open(siterec_replication **out, const siterec_vm *vm,
                                         const siterec_replication_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "replication open: out is NULL");
	*out = NULL;
	if (!opts)
		return sr_err(SITEREC_EINVAL, "replication open: options are NULL (state_dir and store are required)");
	siterec_replication *r = sr_calloc(1, sizeof(*r));
	if (!r)
		return sr_err(SITEREC_ENOMEM, "replication: out of memory");
	siterec_replication_options *o = &r->opts;
	siterec_replication_options_init(o, SITEREC_REPLICATION_OPTIONS_VERSION);
	int rc = sr_options_copy(o, opts, repl_opt_sizes, SITEREC_REPLICATION_OPTIONS_VERSION, "replication");
	if (rc == 0 && (o->flags & ~SITEREC_REPLICATION_PROTECT))
		rc = sr_err(SITEREC_EINVAL, "replication: unknown flags 0x%x", o->flags & ~SITEREC_REPLICATION_PROTECT);
	else if (rc == 0 && (!o->state_dir || !o->state_dir[0] || strlen(o->state_dir) > 4000))
		rc = sr_err(SITEREC_EINVAL, "replication: state_dir is required (at most 4000 bytes)");
	else if (rc == 0 && !o->store)
		rc = sr_err(SITEREC_EINVAL, "replication: store is required");
	else if (rc == 0 && o->interval_s != SITEREC_POLICY_CONTINUOUS && o->interval_s != 30 &&
	         o->interval_s != 300 && o->interval_s != 900)
		rc = sr_err(SITEREC_EINVAL, "replication: interval_s %u is not 30, 300, 900 or 0 (continuous)",
		            o->interval_s);
	if (rc == 0 && !(r->state_dir = sr_strdup(o->state_dir)))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0) {
		o->state_dir = r->state_dir;
		if (o->retention_s == 0)
			o->retention_s = 86400;
		r->azure = strcmp(o->store->ops->name, "azure") == 0;
		rc = vm_load(r, vm);
	}
	if (rc == 0)
		snprintf(r->doc_name, sizeof(r->doc_name), "%s/replication", r->vm_id);
	if (rc == 0 && (o->flags & SITEREC_REPLICATION_PROTECT)) {
		/* the journal first: the VM's writes are logged from now on */
		if (mkdir(r->state_dir, 0700) != 0 && errno != EEXIST)
			rc = sr_err_os(sr_errno_code(errno), errno, "replication: cannot create state_dir %s",
			               r->state_dir);
		if (rc == 0)
			rc = journal_open(r, SITEREC_JOURNAL_CREATE);
		uint64_t oldest = 0;
		if (rc == 0)
			rc = siterec_journal_seqs(r->jr, NULL, &oldest);
		uint8_t rnd[16];
		if (rc == 0)
			rc = sr_random_bytes(rnd, sizeof(rnd));
		if (rc == 0) {
			repl_state s;
			memset(&s, 0, sizeof(s));
			s.state = SITEREC_REPL_INITIAL;
			for (int i = 0; i < 16; i++)
				snprintf(s.protection + 2 * i, 3, "%02x", rnd[i]);
			s.first_seq = oldest;
			s.last_applied = oldest - 1;
			s.created_ms = now_ms();
			rc = state_put(r, &s, 1);
		}
	} else if (rc == 0) {
		if ((rc = state_load(r, 1)) == 0 && r->st.state == SITEREC_REPL_FAILED_OVER)
			rc = sr_err(SITEREC_ESTATE, "replication: VM %s has failed over (%s): replication stays "
			            "stopped until the failover is cancelled, or the VM fails back and is "
			            "protected again", r->vm_id, r->st.reason);
		if (rc == 0)
			rc = journal_open(r, r->added ? SITEREC_JOURNAL_ADD_DISKS : 0);
		if (rc == SITEREC_EBUSY)
			rc = sr_err(SITEREC_EBUSY, "replication: VM %s: %u disk(s) to add, and the VM's write path "
			            "holds the journal with the old disks: it must add them first (reopen its "
			            "journal with the new list and SITEREC_JOURNAL_ADD_DISKS)", r->vm_id, r->added);
		if (rc == 0 && r->added)
			rc = disks_added(r);
	}
	if (rc == 0)
		rc = siterec_rp_open(&r->cat, o->store, r->vm_id);
	if (rc == 0)
		rc = leases_take(r);
	if (rc) {
		siterec_replication_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- shipping logs ---- */

typedef struct ship_ctx {
	siterec_replication *r;
	siterec_store_writer *w;
	int has_data;          /* the disk's logs hold records to apply */
	siterec_extent *ext;
	size_t n_ext, cap_ext;
	uint64_t bytes;        /* non-zero data sent */
	uint64_t done, total;  /* progress over all disks */
} ship_ctx;

/* Append [off, off+len) to c's extents (ascending: a log coalesced). */
static int extent_add(ship_ctx *c, uint64_t off, uint64_t len)
{
	if (c->n_ext && c->ext[c->n_ext - 1].offset + c->ext[c->n_ext - 1].length == off) {
		c->ext[c->n_ext - 1].length += len;
	} else if (c->n_ext && off < c->ext[c->n_ext - 1].offset + c->ext[c->n_ext - 1].length) {
		return sr_err(SITEREC_ECORRUPT, "replication: a coalesced log is not in ascending order");
	} else {
		siterec_extent *e = sr_grow(c->ext, &c->cap_ext, c->n_ext, sizeof(*e), 64);
		if (!e)
			return sr_err(SITEREC_ENOMEM, "replication: out of memory for extents");
		c->ext = e;
		c->ext[c->n_ext].offset = off;
		c->ext[c->n_ext++].length = len;
	}
	return 0;
}

static int ship_progress(ship_ctx *c, uint64_t len)
{
	c->done += len;
	if (c->r->opts.progress) {
		int p = c->r->opts.progress(c->done, c->total, c->r->opts.progress_payload);
		if (p)
			return sr_err_callback(p, "replication progress callback");
	}
	return 0;
}

static int ship_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	ship_ctx *c = payload;
	int rc = leases_renew_due(c->r, "apply");
	if (rc == 0)
		rc = siterec_store_writer_write_cb(buf, len, off, c->w);
	if (rc)
		return rc;
	if (!sr_is_zero(buf, len))
		c->bytes += len;
	if ((rc = extent_add(c, off, len)) != 0)
		return rc;
	return ship_progress(c, len);
}

static void ship_path(const siterec_replication *r, uint32_t pi, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/ship-%u.dlog", r->state_dir, pi);
}

/* Coalesce the sealed logs from..to of protected disk pi into STATE_DIR/ship-PI.dlog;
 * its data bytes are added to *total; *has_data 0 when no log has a record. */
static int coalesce_disk(siterec_replication *r, uint32_t pi, uint64_t from, uint64_t to,
                         uint64_t *total, int *has_data)
{
	size_t n = (size_t)(to - from + 1);
	char **paths = sr_calloc(n, sizeof(char *));
	int rc = paths ? 0 : sr_err(SITEREC_ENOMEM, "replication: out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!(paths[i] = sr_malloc(4200)))
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
		else if ((rc = siterec_journal_log_path(r->jr, pi, from + i, paths[i], 4200)) == 0 &&
		         access(paths[i], R_OK) != 0)
			rc = sr_err(SITEREC_ERESYNC, "replication: VM %s: log %" PRIu64 " of disk %s is missing "
			            "(%s): the replica cannot be brought up to date without a resync",
			            r->vm_id, from + i, r->disks[r->prot[pi]].id, paths[i]);
	}
	/* Logs without a record (no write in those cycles) are left out: nothing to
	 * ship, and coalescing only empty logs is not needed. One record read each. */
	int any = 0;
	for (size_t i = 0; rc == 0 && !any && i < n; i++) {
		siterec_dlog_reader *rd = NULL;
		siterec_dlog_record rec;
		if ((rc = siterec_dlog_reader_open(&rd, paths[i], NULL)) == 0 &&
		    (rc = siterec_dlog_reader_next(rd, &rec)) > 0) {
			any = 1;
			rc = 0;
		}
		siterec_dlog_reader_free(rd);
	}
	char out[4200];
	ship_path(r, pi, out, sizeof(out));
	if (rc == 0) {
		unlink(out);
		*has_data = any;
	}
	if (rc == 0 && any)
		rc = siterec_dlog_coalesce((const char *const *)paths, n, out, NULL, NULL);
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	if (rc == 0 && any && (rc = siterec_dlog_verify(out, NULL, &info)) == 0)
		*total += info.data_bytes;
	if (rc == SITEREC_ECORRUPT || rc == SITEREC_ETRUNCATED)
		rc = sr_err(SITEREC_ERESYNC, "replication: VM %s: a log of disk %s (%" PRIu64 "..%" PRIu64
		            ") is damaged (%s): the replica cannot be brought up to date without a resync",
		            r->vm_id, r->disks[r->prot[pi]].id, from, to, siterec_error_last()->message);
	for (size_t i = 0; paths && i < n; i++)
		sr_free(paths[i]);
	sr_free(paths);
	return rc;
}

/* Apply the coalesced log of protected disk pi to its replica; extents to c. */
static int apply_disk(siterec_replication *r, uint32_t pi, ship_ctx *c)
{
	char path[4200];
	ship_path(r, pi, path, sizeof(path));
	int rc = leases_renew(r, "cycle");
	if (rc == 0)
		rc = siterec_store_writer_open(&c->w, r->opts.store, r->disks[r->prot[pi]].name, r->lease_id);
	if (rc == 0)
		rc = siterec_dlog_apply(path, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED, ship_write, c, NULL);
	if (rc == 0)
		rc = siterec_store_writer_finish(c->w);
	siterec_store_writer_free(c->w);
	c->w = NULL;
	if (rc == 0)
		unlink(path);
	return rc;
}

/* ---- shipping logs as objects (log points) ---- */

/* "VM/logs/DISK/SEQ-TAG": TAG from this handle's lease id, so that a stale
 * replicator never overwrites an object a newer one's point names. */
static void log_object(const siterec_replication *r, uint32_t pi, uint64_t seq, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/logs/%s/%020" PRIu64 "-%.*s", r->vm_id, r->disks[r->prot[pi]].id, seq,
	         REPL_LOG_TAG, r->lease_id);
}

/* STATE_DIR/shipped/DISK@SEQ-TAG.dlog: the local copy of a log object, kept
 * until applied ('@' is not in ids). */
static void kept_path(const siterec_replication *r, const char *object, char *buf, size_t cap)
{
	const char *rest = object + strlen(r->vm_id) + strlen("/logs/");
	const char *slash = strrchr(rest, '/');
	int dl = slash ? (int)(slash - rest) : 0;
	snprintf(buf, cap, "%s/shipped/%.*s@%s.dlog", r->state_dir, dl, rest, slash ? slash + 1 : rest);
}

static uint64_t round512(uint64_t n)
{
	return (n + 511) / 512 * 512;
}

/* Upload the file at path as the disk object `object` (its length rounded up
 * to 512, zeros after it); an object left by an earlier try is replaced. */
static int object_put_file(siterec_replication *r, const char *path, const char *object, uint64_t *len_out,
                           ship_ctx *c)
{
	siterec_store *st = r->opts.store;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return sr_err_os(sr_errno_code(e), e, "replication: cannot read %s", path);
	}
	uint64_t len = (uint64_t)sb.st_size;
	int rc = siterec_store_disk_create(st, object, round512(len));
	if (rc == SITEREC_EEXISTS) {
		siterec_error_clear();
		if ((rc = siterec_store_disk_delete(st, object, SITEREC_STORE_DELETE_SNAPSHOTS, NULL)) == 0)
			rc = siterec_store_disk_create(st, object, round512(len));
	}
	siterec_store_writer *w = NULL;
	size_t cap = SR_STORE_MAX_REQUEST;
	uint8_t *buf = rc ? NULL : sr_malloc(cap);
	if (rc == 0 && !buf)
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0)
		rc = siterec_store_writer_open(&w, st, object, NULL);
	for (uint64_t off = 0; rc == 0 && off < len; off += cap) {
		size_t n = len - off < cap ? (size_t)(len - off) : cap;
		size_t padded = (size_t)round512(n);
		if ((rc = leases_renew_due(r, "ship")) == 0 && (rc = sr_pread_full(fd, buf, n, off)) == 0) {
			memset(buf + n, 0, padded - n);
			rc = siterec_store_writer_write(w, buf, padded, off);
		}
		if (rc == 0)
			rc = ship_progress(c, n);
	}
	if (rc == 0)
		rc = siterec_store_writer_finish(w);
	siterec_store_writer_free(w);
	sr_free(buf);
	close(fd);
	*len_out = len;
	return rc;
}

/* The changed extents of a coalesced log, into c. */
static int log_extents(const char *path, ship_ctx *c)
{
	siterec_dlog_reader *rd = NULL;
	siterec_dlog_record rec;
	int rc = siterec_dlog_reader_open(&rd, path, NULL);
	while (rc == 0 && (rc = siterec_dlog_reader_next(rd, &rec)) > 0)
		rc = extent_add(c, rec.offset, rec.length);
	siterec_dlog_reader_free(rd);
	return rc;
}

/* Ship disk pi's sealed logs from..to: coalesced into one log, uploaded as an
 * object, kept locally until applied. lg->object (caller frees) is NULL when no
 * log had a record. */
static int ship_disk(siterec_replication *r, uint32_t pi, uint64_t from, uint64_t to, ship_ctx *c,
                     siterec_rp_log *lg)
{
	uint64_t data = 0;
	int has_data = 0;
	char path[4200], object[512], kept[4400];
	int rc = coalesce_disk(r, pi, from, to, &data, &has_data);
	if (rc || !has_data)
		return rc;
	ship_path(r, pi, path, sizeof(path));
	log_object(r, pi, to, object, sizeof(object));
	kept_path(r, object, kept, sizeof(kept));
	uint64_t len = 0;
	if ((rc = log_extents(path, c)) == 0 && (rc = object_put_file(r, path, object, &len, c)) == 0) {
		char dir[4300];
		snprintf(dir, sizeof(dir), "%s/shipped", r->state_dir);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			rc = sr_err_os(sr_errno_code(errno), errno, "replication: cannot create %s", dir);
		if (rc == 0 && rename(path, kept) != 0)
			rc = sr_err_os(sr_errno_code(errno), errno, "replication: cannot keep %s as %s", path, kept);
	}
	if (rc == 0 && !(lg->object = sr_strdup(object)))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0) {
		lg->disk_index = pi;
		lg->seq = to;
		lg->length = len;
		c->bytes += len;
	}
	return rc;
}

static void logs_free(siterec_rp_log *logs, uint64_t n)
{
	for (uint64_t i = 0; logs && i < n; i++)
		sr_free((char *)logs[i].object);
	sr_free(logs);
}

/* The logs a point after applied_seq names: those of the newest point p (if
 * any) above applied_seq, then the new ones (one per disk at most, NULL object
 * when none), ordered by disk then seq. Copies the strings. */
static int point_logs(const siterec_replication *r, uint32_t n_disks, const siterec_rp_point *p,
                      const siterec_rp_log *fresh, siterec_rp_log **out, uint64_t *n_out)
{
	uint64_t n = 0, cap = (p ? p->n_logs : 0) + (fresh ? r->n_pend : 0) + r->n_prot;
	siterec_rp_log *logs = sr_calloc((size_t)cap + 1, sizeof(*logs));
	if (!logs)
		return sr_err(SITEREC_ENOMEM, "replication: out of memory");
	int rc = 0;
	for (uint32_t pi = 0; rc == 0 && pi < n_disks; pi++) {
		/* the newest point's, the checkpoints' (when making a point), the new
		 * one; a checkpoint a point added by a run that died already names is
		 * not named twice */
		uint64_t above = r->st.applied_seq;
		for (int src = 0; src < 2; src++) {
			const siterec_rp_log *ls = src ? r->pend : (p ? p->logs : NULL);
			uint64_t nl = src ? (fresh ? r->n_pend : 0) : (p ? p->n_logs : 0);
			for (uint64_t k = 0; rc == 0 && k < nl; k++) {
				const siterec_rp_log *l = &ls[k];
				if (l->disk_index != pi || l->seq <= above)
					continue;
				above = l->seq;
				logs[n] = *l;
				if (!(logs[n++].object = sr_strdup(l->object)))
					rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
			}
		}
		if (rc == 0 && fresh && fresh[pi].object && fresh[pi].seq > above) {
			logs[n] = fresh[pi];
			if (!(logs[n++].object = sr_strdup(fresh[pi].object)))
				rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
		}
	}
	if (rc) {
		logs_free(logs, n);
		return rc;
	}
	*out = logs;
	*n_out = n;
	return 0;
}

/* The newest point (version 2 view) into *p; 0 with *have = 0 when none. */
static int newest_point(siterec_replication *r, siterec_rp_point *p, int *have)
{
	uint64_t count = 0;
	*have = 0;
	int rc = siterec_rp_count(r->cat, &count);
	if (rc == 0 && count > 0 && (rc = siterec_rp_get(r->cat, count - 1, p)) == 0)
		*have = 1;
	for (uint32_t i = 0; rc == 0 && *have && i < p->n_disks; i++)
		if (i >= r->n_prot || strcmp(p->disks[i].disk, r->disks[r->prot[i]].name) != 0)
			rc = sr_err(SITEREC_ECORRUPT, "replication: VM %s: point %" PRIu64 " disk %u is %s, not the "
			            "protected disk in that place", r->vm_id, p->id, i, p->disks[i].disk);
	return rc;
}

/* Rotate the journal, the quiesce callback around it when an app-consistent
 * point is due (*kind); the sealed sequence to *sealed. */
static int cut_rotate(siterec_replication *r, int app_ok, uint32_t *kind, uint64_t *sealed)
{
	*kind = SITEREC_RP_CRASH;
	int64_t t0 = now_ms();
	int frozen = 0;
	if (app_ok && r->opts.app_every_s && r->opts.quiesce &&
	    (r->st.last_app_ms == 0 || t0 - r->st.last_app_ms >= (int64_t)r->opts.app_every_s * 1000)) {
		int q = r->opts.quiesce(1, r->opts.quiesce_payload);
		if (q == 0) {
			frozen = 1;
			*kind = SITEREC_RP_APP;
		} else {
			sr_log(SITEREC_LOG_WARN, "replication: VM %s: quiesce freeze failed (%d): the point will be "
			       "crash-consistent", r->vm_id, q);
		}
	}
	int rc = siterec_journal_request_rotate(r->jr, 0, sealed);
	if (frozen) {
		int q = r->opts.quiesce(0, r->opts.quiesce_payload);
		if (q)
			sr_log(SITEREC_LOG_WARN, "replication: VM %s: quiesce thaw returned %d", r->vm_id, q);
	}
	return rc;
}

/* Journal logs up to this sequence may go once `sealed` is recorded: all of
 * them, but for a disk that has not joined the points (being added), whose
 * logs since it was added are applied when it joins. */
static uint64_t release_to(const siterec_replication *r, uint64_t sealed, uint32_t n_join)
{
	uint64_t to = sealed;
	for (uint32_t i = n_join; i < r->n_prot; i++) {
		uint64_t f = r->disks[r->prot[i]].first_seq;
		if (f && f - 1 < to)
			to = f - 1;
	}
	return to;
}

/* Ship the logs from..sealed of the joined disks [0, n) as log objects (fresh[i],
 * sealed at sealed_ms); progress over their journal files' bytes. */
static int ship_disks(siterec_replication *r, uint32_t n, uint64_t from, uint64_t sealed, int64_t sealed_ms,
                      ship_ctx *cs, siterec_rp_log *fresh, uint64_t *bytes)
{
	uint64_t total = 0, done = 0;
	for (uint32_t i = 0; i < n; i++) {
		char path[4200];
		struct stat sb;
		for (uint64_t q = from; q <= sealed; q++)
			if (siterec_journal_log_path(r->jr, i, q, path, sizeof(path)) == 0 && stat(path, &sb) == 0)
				total += (uint64_t)sb.st_size;
		siterec_error_clear();
	}
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && sealed >= from && i < n; i++) {
		cs[i].r = r;
		cs[i].done = done;
		cs[i].total = total;
		rc = ship_disk(r, i, from, sealed, &cs[i], &fresh[i]);
		fresh[i].sealed_ms = sealed_ms;
		done = cs[i].done;
		*bytes += cs[i].bytes;
	}
	return rc;
}

/* Bring the protected disks [lo, hi) to the cut `sealed` by applying their logs
 * to the replicas directly, and snapshot them (snaps[i]): the first point, a
 * resync, disks added since joining the points. Each disk's logs start at its
 * first not applied: last_applied + 1 with `all`, else those since it was added. */
static int join_disks(siterec_replication *r, uint32_t lo, uint32_t hi, int all, uint64_t sealed, ship_ctx *cs,
                      char (*snaps)[SITEREC_STORE_ID_MAX], uint64_t *bytes)
{
	uint64_t total = 0, done = 0;
	int rc = 0;
	for (uint32_t i = lo; rc == 0 && i < hi; i++) {
		uint64_t from = r->disks[r->prot[i]].first_seq;
		if (all && from < r->st.last_applied + 1)
			from = r->st.last_applied + 1;
		if (sealed >= from)
			rc = coalesce_disk(r, i, from, sealed, &total, &cs[i].has_data);
	}
	for (uint32_t i = lo; rc == 0 && i < hi; i++) {
		if (!cs[i].has_data)
			continue;
		cs[i].r = r;
		cs[i].done = done;
		cs[i].total = total;
		rc = apply_disk(r, i, &cs[i]);
		done = cs[i].done;
		*bytes += cs[i].bytes;
	}
	for (uint32_t i = lo; rc == 0 && i < hi; i++)
		rc = siterec_store_snapshot(r->opts.store, r->disks[r->prot[i]].name, snaps[i], SITEREC_STORE_ID_MAX);
	return rc;
}

/* Rotate; ship the joined disks' logs not shipped yet (initial: apply every
 * disk's to its replica and snapshot it, a snapshot point); join the disks
 * added and copied since; add the point, record the state, release the logs,
 * prune (not for the first point). */
static int do_cut(siterec_replication *r, int initial, siterec_cycle_result *res)
{
	uint32_t kind = SITEREC_RP_CRASH;
	uint64_t sealed = 0;
	int rc = cut_rotate(r, !initial, &kind, &sealed);
	if (rc)
		return rc;
	int64_t cut = now_ms();
	uint64_t from = r->st.last_applied + 1;
	uint32_t n_join = initial ? 0 : joined(r), n_after = n_join;
	while (n_after < r->n_prot && r->disks[r->prot[n_after]].copied)
		n_after++;   /* copied since they were added: they join at this cut */
	ship_ctx *cs = sr_calloc(r->n_prot, sizeof(ship_ctx));
	siterec_rp_disk *pd = sr_calloc(r->n_prot, sizeof(siterec_rp_disk));
	char (*snaps)[SITEREC_STORE_ID_MAX] = sr_calloc(r->n_prot, SITEREC_STORE_ID_MAX);
	siterec_rp_log *fresh = sr_calloc(r->n_prot, sizeof(siterec_rp_log)), *logs = NULL;
	uint64_t n_logs = 0, bytes = 0;
	if (!cs || !pd || !snaps || !fresh)
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0 && initial)
		rc = join_disks(r, 0, n_after, 1, sealed, cs, snaps, &bytes);
	if (rc == 0 && !initial) {
		/* each joined disk's logs go as one object; the point names them on
		 * top of the replicas' last applied snapshots */
		rc = ship_disks(r, n_join, from, sealed, cut, cs, fresh, &bytes);
		for (uint32_t i = 0; i < n_join; i++)
			snprintf(snaps[i], SITEREC_STORE_ID_MAX, "%s", r->disks[r->prot[i]].base);
		if (rc == 0 && n_after > n_join)
			rc = join_disks(r, n_join, n_after, 0, sealed, cs, snaps, &bytes);
	}
	uint64_t id = r->st.cycle + 1;
	siterec_rp_point last = SITEREC_RP_POINT_INIT;
	int have = 0;
	if (rc == 0 && (rc = newest_point(r, &last, &have)) == 0 && have && last.id >= id)
		id = last.id + 1;   /* a point added by a run that died before recording it: go past it */
	if (rc == 0 && !initial)
		rc = point_logs(r, n_join, have ? &last : NULL, fresh, &logs, &n_logs);
	if (rc == 0) {
		for (uint32_t i = 0; i < n_after; i++) {
			pd[i].disk = r->disks[r->prot[i]].name;
			pd[i].snapshot = snaps[i];
			pd[i].changed = cs[i].ext;
			pd[i].n_changed = initial || i >= n_join ? UINT64_MAX : cs[i].n_ext;
		}
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		p.kind = kind;
		p.id = id;
		p.cut_time_ms = cut;
		p.n_disks = n_after;
		p.disks = pd;
		p.n_logs = n_logs;
		p.logs = logs;
		rc = siterec_rp_add(r->cat, &p);
	}
	if (rc == 0) {
		repl_state s = r->st;
		s.state = SITEREC_REPL_PROTECTED;
		s.reason[0] = '\0';
		if (sealed >= from)
			s.last_applied = sealed;
		s.cycle = id;
		s.last_cut_ms = cut;
		if (kind == SITEREC_RP_APP)
			s.last_app_ms = cut;
		s.bytes_shipped += bytes;
		if (initial) {
			s.applied_seq = s.last_applied;
			s.applied_point = id;
			s.applied_cut_ms = cut;
		}
		for (uint32_t i = initial ? 0 : n_join; i < n_after; i++)
			snprintf(r->disks[r->prot[i]].base, SITEREC_STORE_ID_MAX, "%s", snaps[i]);
		logs_free(r->pend, r->n_pend);   /* the point names the checkpoints */
		r->pend = NULL;
		r->n_pend = 0;
		rc = state_put(r, &s, 0);
	}
	if (rc == 0 && sealed >= from)
		rc = siterec_journal_release(r->jr, release_to(r, sealed, n_after));
	/* retention: at most every 30 s (a continuous cycle every second or two
	 * would list the target each time for nothing) */
	uint64_t pruned = 0;
	if (rc == 0 && !initial && now_ms() - r->pruned_ms >= REPL_PRUNE_EVERY_MS) {
		rc = siterec_rp_prune(r->cat, now_ms(), r->opts.retention_s * 1000, NULL, 0, &pruned);
		if (rc == 0)
			r->pruned_ms = now_ms();
	}
	if (rc == 0 && res) {
		res->kind = kind;
		res->point_id = id;
		res->cut_time_ms = cut;
		res->bytes_shipped = bytes;
		res->points_pruned = pruned;
	}
	for (uint32_t i = 0; cs && i < r->n_prot; i++)
		sr_free(cs[i].ext);
	for (uint32_t i = 0; fresh && i < r->n_prot; i++)
		sr_free((char *)fresh[i].object);
	sr_free(fresh);
	logs_free(logs, n_logs);
	sr_free(cs);
	sr_free(pd);
	sr_free(snaps);
	return rc;
}

/* ---- applying shipped logs (siterec_replication_apply) ---- */

#define REPL_MERGE_GAP (256u * 1024)  /* Azure: a request costs more than moving 2 x this */

typedef struct apply_batch {
	uint64_t point_id;       /* the replicas are brought to this point's content */
	int64_t cut_ms;
	uint64_t to_seq;         /* its newest log */
	siterec_rp_log *logs;    /* its logs above applied_seq (owned) */
	uint64_t n_logs;
	uint32_t disk;           /* protected disk being applied */
	siterec_dlog_reader *rd; /* on that disk's batch log, NULL before it is prepared */
	siterec_store_writer *w;
	char path[4200];         /* the batch log (unlinked after if it is a coalesced one) */
	int coalesced;
} apply_batch;

static void batch_free(apply_batch *b)
{
	if (!b)
		return;
	siterec_dlog_reader_free(b->rd);
	siterec_store_writer_free(b->w);
	if (b->coalesced)
		unlink(b->path);
	logs_free(b->logs, b->n_logs);
	sr_free(b);
}

/* The local copy of a log object, fetched from the target when this host does
 * not have it (another host shipped it) or it does not verify. */
static int kept_fetch(siterec_replication *r, const siterec_rp_log *l, char *path, size_t cap)
{
	kept_path(r, l->object, path, cap);
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	if (siterec_dlog_verify(path, NULL, &info) == 0 && info.sealed)
		return 0;
	siterec_error_clear();
	char dir[4300], tmp[4400];
	snprintf(dir, sizeof(dir), "%s/shipped", r->state_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sr_err_os(sr_errno_code(errno), errno, "replication: cannot create %s", dir);
	snprintf(tmp, sizeof(tmp), "%s.part", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return sr_err_os(sr_errno_code(errno), errno, "replication: cannot create %s", tmp);
	size_t bcap = SR_STORE_MAX_REQUEST;
	uint8_t *buf = sr_malloc(bcap);
	int rc = buf ? 0 : sr_err(SITEREC_ENOMEM, "replication: out of memory");
	for (uint64_t off = 0; rc == 0 && off < l->length; off += bcap) {
		size_t n = l->length - off < bcap ? (size_t)(l->length - off) : bcap;
		if ((rc = siterec_store_read(r->opts.store, l->object, NULL, buf, n, off)) == 0)
			rc = sr_pwrite_full(fd, buf, n, off);
	}
	sr_free(buf);
	if (close(fd) != 0 && rc == 0)
		rc = sr_err_os(SITEREC_EIO, errno, "replication: cannot write %s", tmp);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = sr_err_os(sr_errno_code(errno), errno, "replication: cannot rename %s", tmp);
	if (rc)
		unlink(tmp);
	return rc;
}

/* Prepare disk b->disk: its logs of the batch local, coalesced into one when
 * several; reader and writer open. *none = 1 when the disk has no log. */
static int batch_prepare(siterec_replication *r, apply_batch *b, int *none)
{
	uint32_t pi = b->disk;
	uint64_t n = 0;
	for (uint64_t k = 0; k < b->n_logs; k++)
		n += b->logs[k].disk_index == pi;
	*none = n == 0;
	if (n == 0)
		return 0;
	char **paths = sr_calloc((size_t)n, sizeof(char *));
	int rc = paths ? 0 : sr_err(SITEREC_ENOMEM, "replication: out of memory");
	uint64_t i = 0;
	for (uint64_t k = 0; rc == 0 && k < b->n_logs; k++) {
		if (b->logs[k].disk_index != pi)
			continue;
		if (!(paths[i] = sr_malloc(4400)))
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
		else
			rc = kept_fetch(r, &b->logs[k], paths[i], 4400);
		i++;
	}
	if (rc == 0 && n == 1) {
		snprintf(b->path, sizeof(b->path), "%s", paths[0]);
		b->coalesced = 0;
	} else if (rc == 0) {
		snprintf(b->path, sizeof(b->path), "%s/apply-%u.dlog", r->state_dir, pi);
		unlink(b->path);
		b->coalesced = 1;
		rc = siterec_dlog_coalesce((const char *const *)paths, (size_t)n, b->path, NULL, NULL);
	}
	for (uint64_t k = 0; paths && k < n; k++)
		sr_free(paths[k]);
	sr_free(paths);
	if (rc == 0)
		rc = siterec_dlog_reader_open(&b->rd, b->path, NULL);
	if (rc == 0)
		rc = siterec_store_writer_open(&b->w, r->opts.store, r->disks[r->prot[pi]].name, r->lease_id);
	if (rc == 0 && r->azure)
		rc = siterec_store_writer_set_merge(b->w, REPL_MERGE_GAP);
	return rc;
}

/* Done with disk b->disk: everything written, files closed. */
static int batch_disk_done(apply_batch *b)
{
	int rc = b->w ? siterec_store_writer_finish(b->w) : 0;
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	if (rc == 0 && b->rd && (rc = siterec_dlog_reader_info(b->rd, &info)) == 0 && !info.sealed)
		rc = sr_err(SITEREC_ECORRUPT, "replication: %s is not sealed", b->path);
	siterec_dlog_reader_free(b->rd);
	siterec_store_writer_free(b->w);
	b->rd = NULL;
	b->w = NULL;
	if (rc == 0 && b->coalesced)
		unlink(b->path);
	b->coalesced = 0;
	return rc;
}

/* The batch is applied: snapshot the replicas, record them as the base, drop
 * the local copies of the logs applied. */
static int batch_commit(siterec_replication *r, apply_batch *b)
{
	int rc = 0;
	uint32_t n_join = joined(r);   /* a disk being added has no base yet */
	char (*snaps)[SITEREC_STORE_ID_MAX] = sr_calloc(r->n_prot, SITEREC_STORE_ID_MAX);
	if (!snaps)
		return sr_err(SITEREC_ENOMEM, "replication: out of memory");
	for (uint32_t i = 0; rc == 0 && i < n_join; i++)
		rc = siterec_store_snapshot(r->opts.store, r->disks[r->prot[i]].name, snaps[i], SITEREC_STORE_ID_MAX);
	if (rc == 0) {
		repl_state s = r->st;
		s.applied_seq = b->to_seq;
		s.applied_point = b->point_id;
		s.applied_cut_ms = b->cut_ms;
		for (uint32_t i = 0; i < n_join; i++)
			snprintf(r->disks[r->prot[i]].base, SITEREC_STORE_ID_MAX, "%s", snaps[i]);
		rc = state_put(r, &s, 0);
	}
	sr_free(snaps);
	for (uint64_t k = 0; rc == 0 && k < b->n_logs; k++) {
		char path[4400];
		kept_path(r, b->logs[k].object, path, sizeof(path));
		unlink(path);
	}
	return rc;
}

/* Bytes of the newest point's logs above applied_seq; the batch to start, if
 * asked for, into *out. */
static int batch_plan(siterec_replication *r, int start, uint64_t *waiting, apply_batch **out)
{
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	int have = 0;
	*waiting = 0;
	int rc = newest_point(r, &p, &have);
	if (rc || !have)
		return rc;
	uint64_t to = 0;
	for (uint64_t k = 0; k < p.n_logs; k++)
		if (p.logs[k].seq > r->st.applied_seq) {
			*waiting += p.logs[k].length;
			to = p.logs[k].seq > to ? p.logs[k].seq : to;
		}
	if (!start || *waiting == 0)
		return 0;
	apply_batch *b = sr_calloc(1, sizeof(*b));
	if (!b)
		return sr_err(SITEREC_ENOMEM, "replication: out of memory");
	b->point_id = p.id;
	b->cut_ms = p.cut_time_ms;
	b->to_seq = to;
	if ((rc = point_logs(r, p.n_disks, &p, NULL, &b->logs, &b->n_logs)) != 0) {
		sr_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

SITEREC_API int siterec_replication_apply(siterec_replication *r, uint32_t budget_ms, uint32_t flags,
                                          uint64_t *waiting)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication apply: handle is NULL");
	if (flags & ~SITEREC_APPLY_NOW)
		return sr_err(SITEREC_EINVAL, "replication apply: unknown flags 0x%x", flags & ~SITEREC_APPLY_NOW);
	int64_t t0 = now_ms();
	int rc = leases_renew_due(r, "apply");
	if (rc == 0 && r->lease_lost)
		rc = leases_renew(r, "apply");
	if (rc)
		return rc;
	if (r->st.state != SITEREC_REPL_PROTECTED)
		return sr_err(SITEREC_ESTATE, "replication apply: VM %s is in state %s: %s", r->vm_id,
		              siterec_replication_state_name(r->st.state),
		              r->st.state == SITEREC_REPL_INITIAL ? "run the initial replication first" : r->st.reason);
	uint64_t left = 0;
	if (!r->batch) {
		uint32_t delay = r->opts.apply_delay_s ? r->opts.apply_delay_s : REPL_APPLY_DELAY_S;
		int start = (flags & SITEREC_APPLY_NOW) || t0 - r->st.applied_cut_ms >= (int64_t)delay * 1000;
		rc = batch_plan(r, start, &left, &r->batch);
	}
	while (rc == 0 && r->batch) {
		apply_batch *b = r->batch;
		if (b->disk >= r->n_prot) {
			if ((rc = batch_commit(r, b)) == 0) {
				batch_free(b);
				r->batch = NULL;
				rc = batch_plan(r, 0, &left, &r->batch);
			}
			break;
		}
		int none = 0;
		if (!b->rd && (rc = batch_prepare(r, b, &none)) == 0 && none) {
			b->disk++;
			continue;
		}
		siterec_dlog_record rec;
		uint64_t k = 0;
		int paused = 0;
		while (rc == 0 && (rc = siterec_dlog_reader_next(b->rd, &rec)) > 0) {
			rc = rec.zero ? siterec_store_writer_zero(b->w, rec.offset, rec.length)
			              : siterec_store_writer_write(b->w, rec.data, (size_t)rec.length, rec.offset);
			if (rc == 0 && ++k % 8 == 0 && (rc = leases_renew_due(r, "apply")) == 0 && budget_ms &&
			    now_ms() - t0 >= (int64_t)budget_ms) {
				paused = 1;
				break;
			}
		}
		if (rc == 0 && paused) {
			rc = siterec_store_writer_finish(b->w);
			left = 1;
			break;
		}
		if (rc == 0 && (rc = batch_disk_done(b)) == 0)
			b->disk++;
		if (rc == 0 && budget_ms && now_ms() - t0 >= (int64_t)budget_ms) {
			left = 1;
			break;
		}
	}
	if (rc) {
		/* start over at the next call: applying twice is harmless */
		batch_free(r->batch);
		r->batch = NULL;
		return rc;
	}
	if (waiting) {
		if ((rc = batch_plan(r, 0, &left, NULL)) != 0)
			return rc;
		*waiting = left;
	}
	return 0;
}

/* ---- initial replication ---- */

typedef struct init_progress {
	siterec_replication *r;
	siterec_progress_fn store_fn;
	void *store_payload;
	uint64_t base, total;
} init_progress;

static int init_progress_cb(uint64_t done, uint64_t total, void *payload)
{
	init_progress *p = payload;
	int rc = leases_renew_due(p->r, "initial copy");
	if (rc == 0 && p->store_fn)
		rc = p->store_fn(done, total, p->store_payload);
	if (rc == 0 && p->r->opts.progress)
		rc = p->r->opts.progress(p->base + done, p->total, p->r->opts.progress_payload);
	return rc;
}

static int copy_disk(siterec_replication *r, repl_disk *d, init_progress *ip)
{
	siterec_disk *img = NULL;
	int rc = d->path ? siterec_disk_open(&img, d->path, NULL) : 0;
	if (rc)
		return rc;
	char source_id[256];
	siterec_store_upload_options uo;
	upload_opts(r, d, source_id, sizeof(source_id), &uo);
	uo.lease_id = r->lease_id;
	siterec_store *st = r->opts.store;
	ip->store_fn = st->opts.progress;
	ip->store_payload = st->opts.progress_payload;
	st->opts.progress = init_progress_cb;
	st->opts.progress_payload = ip;
	rc = img ? siterec_store_upload(st, d->name, d->size, siterec_disk_read_cb,
	                                siterec_disk_block_status_cb, img, &uo, NULL)
	         : siterec_store_upload(st, d->name, d->size, d->read, NULL, d->read_payload, &uo, NULL);
	st->opts.progress = ip->store_fn;
	st->opts.progress_payload = ip->store_payload;
	siterec_disk_free(img);
	return rc;
}

SITEREC_API int siterec_replication_initial(siterec_replication *r)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication initial: handle is NULL");
	int rc = leases_renew(r, "initial");
	if (rc == 0)
		rc = state_load(r, 0);
	if (rc)
		return rc;
	uint32_t n_copied = 0;
	while (n_copied < r->n_prot && r->disks[r->prot[n_copied]].copied)
		n_copied++;
	if (r->st.state == SITEREC_REPL_PROTECTED && n_copied == r->n_prot)
		return 0;
	if (r->st.state != SITEREC_REPL_INITIAL && r->st.state != SITEREC_REPL_PROTECTED)
		return sr_err(r->st.state == SITEREC_REPL_RESYNC ? SITEREC_ERESYNC : SITEREC_ECRITICAL,
		              "replication initial: VM %s is in state %s (%s): run a resync", r->vm_id,
		              siterec_replication_state_name(r->st.state), r->st.reason);
	/* protected already: only disks added since are copied; they join the
	 * points at the next cycle (the others go on meanwhile) */
	int added_only = r->st.state == SITEREC_REPL_PROTECTED;
	init_progress ip = { .r = r };
	for (uint32_t i = 0; i < r->n_prot; i++)
		if (!added_only || !r->disks[r->prot[i]].copied)
			ip.total += r->disks[r->prot[i]].size;
	for (uint32_t i = 0; i < r->n_prot; i++) {
		repl_disk *d = &r->disks[r->prot[i]];
		if (added_only && d->copied)
			continue;
		if (!d->copied) {
			if ((rc = leases_renew(r, "initial")) != 0 || (rc = copy_disk(r, d, &ip)) != 0)
				return rc == SITEREC_EDISK || rc == SITEREC_EAUTH ? classify(r, rc) : rc;
			d->copied = 1;
			if ((rc = state_put(r, &r->st, 0)) != 0) {
				d->copied = 0;
				return rc;
			}
		}
		ip.base += d->size;
	}
	return added_only ? 0 : classify(r, do_cut(r, 1, NULL));
}

/* The journal's logs up to sealed are consumed (shipped, or superseded by a
 * resync): recorded, then released up to `release`. */
static int consumed(siterec_replication *r, uint64_t sealed, uint64_t bytes, uint64_t release)
{
	repl_state s = r->st;
	s.last_applied = sealed;
	s.bytes_shipped += bytes;
	int rc = state_put(r, &s, 0);
	return rc ? rc : siterec_journal_release(r->jr, release);
}

SITEREC_API int siterec_replication_checkpoint(siterec_replication *r, uint64_t *bytes_shipped)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication checkpoint: handle is NULL");
	if (bytes_shipped)
		*bytes_shipped = 0;
	if (r->st.state == SITEREC_REPL_PROTECTED && !r->lease_lost && nothing_written(r))
		return leases_renew_due(r, "checkpoint");
	int rc = r->lease_lost ? leases_renew(r, "checkpoint") : leases_renew_due(r, "checkpoint");
	if (rc)
		return rc;
	if (r->st.state != SITEREC_REPL_PROTECTED)
		return sr_err(r->st.state == SITEREC_REPL_INITIAL ? SITEREC_ESTATE
		              : r->st.state == SITEREC_REPL_RESYNC ? SITEREC_ERESYNC : SITEREC_ECRITICAL,
		              "replication checkpoint: VM %s is in state %s%s%s", r->vm_id, siterec_replication_state_name(r->st.state),
		              r->st.reason[0] ? ": " : "", r->st.reason);
	uint32_t kind, n_join = joined(r);
	uint64_t sealed = 0, from = r->st.last_applied + 1, bytes = 0;
	rc = cut_rotate(r, 0, &kind, &sealed);
	int64_t at = now_ms();
	ship_ctx *cs = sr_calloc(r->n_prot, sizeof(ship_ctx));
	siterec_rp_log *fresh = sr_calloc(r->n_prot, sizeof(siterec_rp_log));
	if (rc == 0 && (!cs || !fresh))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0)
		rc = ship_disks(r, n_join, from, sealed, at, cs, fresh, &bytes);
	uint64_t n_new = 0;
	for (uint32_t i = 0; fresh && i < n_join; i++)
		n_new += fresh[i].object != NULL;
	if (rc == 0 && n_new) {
		/* recorded in the state: the next point names them */
		siterec_rp_log *pl = sr_realloc(r->pend, (size_t)(r->n_pend + n_new) * sizeof(*pl));
		if (!pl)
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
		for (uint32_t i = 0; rc == 0 && i < n_join; i++)
			if (fresh[i].object) {
				pl[r->n_pend++] = fresh[i];
				fresh[i].object = NULL;
			}
		if (pl)
			r->pend = pl;
	}
	if (rc == 0)
		rc = consumed(r, sealed, bytes, release_to(r, sealed, n_join));
	for (uint32_t i = 0; cs && i < r->n_prot; i++)
		sr_free(cs[i].ext);
	for (uint32_t i = 0; fresh && i < r->n_prot; i++)
		sr_free((char *)fresh[i].object);
	sr_free(fresh);
	sr_free(cs);
	if (rc == 0 && bytes_shipped)
		*bytes_shipped = bytes;
	return classify(r, rc);
}

/* ---- resync, critical state ---- */

/* Record state st with reason (the message of the error being handled). */
static int state_mark(siterec_replication *r, uint32_t st, const char *reason)
{
	repl_state s = r->st;
	s.state = st;
	snprintf(s.reason, sizeof(s.reason), "%s", reason);
	return state_put(r, &s, 0);
}

/* A failure that needs a resync or an operator moves the VM to RESYNC or
 * CRITICAL (when the target can record it) and comes back as ERESYNC or ECRITICAL. */
static int classify(siterec_replication *r, int rc)
{
	if (rc != SITEREC_ERESYNC && rc != SITEREC_EAUTH && rc != SITEREC_EDISK)
		return rc;
	char reason[256];
	snprintf(reason, sizeof(reason), "%s", siterec_error_last()->message);
	uint32_t st = rc == SITEREC_ERESYNC ? SITEREC_REPL_RESYNC : SITEREC_REPL_CRITICAL;
	if (state_mark(r, st, reason) != 0)
		sr_log(SITEREC_LOG_WARN, "replication: VM %s: could not record the %s state: %s", r->vm_id,
		       siterec_replication_state_name(st), siterec_error_last()->message);
	return sr_err(st == SITEREC_REPL_RESYNC ? SITEREC_ERESYNC : SITEREC_ECRITICAL,
	              "replication: VM %s is %s: %s", r->vm_id, siterec_replication_state_name(st), reason);
}

#define REPL_RESYNC_BLOCK (64u * 1024)

typedef struct resync_ctx {
	siterec_replication *r;
	repl_disk *d;
	siterec_disk *img;
	siterec_store_writer *w;
	uint8_t *buf;
	uint64_t bytes;
} resync_ctx;

static int replica_read(void *buf, size_t len, uint64_t off, void *payload)
{
	resync_ctx *c = payload;
	int rc = leases_renew_due(c->r, "resync");
	return rc ? rc : siterec_store_read(c->r->opts.store, c->d->name, NULL, buf, len, off);
}

static int source_read(resync_ctx *c, void *buf, size_t len, uint64_t off)
{
	if (c->img)
		return siterec_disk_read(c->img, buf, len, off);
	int rc = c->d->read(buf, len, off, c->d->read_payload);
	return rc ? sr_err_callback(rc, "replication: disk read callback") : 0;
}

static int source_read_cb(void *buf, size_t len, uint64_t off, void *payload)
{
	return source_read(payload, buf, len, off);
}

/* A run of blocks that differ: copy it from the source to the replica. */
static int resync_changed(uint64_t off, uint64_t len, void *payload)
{
	resync_ctx *c = payload;
	int rc = 0;
	for (uint64_t done = 0; rc == 0 && done < len;) {
		size_t n = len - done < SR_STORE_MAX_REQUEST ? (size_t)(len - done) : SR_STORE_MAX_REQUEST;
		if ((rc = leases_renew_due(c->r, "resync")) == 0 && (rc = source_read(c, c->buf, n, off + done)) == 0)
			rc = siterec_store_writer_write(c->w, c->buf, n, off + done);
		done += n;
		c->bytes += n;
	}
	return rc;
}

/* Hash the replica of protected disk pi, scan its source against it, write what differs. */
static int resync_disk(siterec_replication *r, uint32_t pi, uint64_t *bytes)
{
	resync_ctx c = { .r = r, .d = &r->disks[r->prot[pi]] };
	siterec_hashmap *map = NULL;
	siterec_hashscan_options ho = SITEREC_HASHSCAN_OPTIONS_INIT;
	ho.flags = SITEREC_HASHSCAN_UPDATE;
	int rc = siterec_hashmap_new(&map, c.d->size, REPL_RESYNC_BLOCK);
	if (rc == 0)
		rc = siterec_hashmap_scan(map, replica_read, &c, &ho, NULL, NULL);
	if (rc == 0 && c.d->path)
		rc = siterec_disk_open(&c.img, c.d->path, NULL);
	if (rc == 0 && !(c.buf = sr_malloc(SR_STORE_MAX_REQUEST)))
		rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	if (rc == 0)
		rc = siterec_store_writer_open(&c.w, r->opts.store, c.d->name, r->lease_id);
	if (rc == 0 && r->azure)
		rc = siterec_store_writer_set_merge(c.w, REPL_MERGE_GAP);
	ho.flags = 0;
	if (rc == 0)
		rc = siterec_hashmap_scan(map, source_read_cb, &c, &ho, resync_changed, &c);
	if (rc == 0)
		rc = siterec_store_writer_finish(c.w);
	siterec_store_writer_free(c.w);
	siterec_disk_free(c.img);
	siterec_hashmap_free(map);
	sr_free(c.buf);
	*bytes += c.bytes;
	return rc;
}

/* Drop the local copies of shipped logs (a resync supersedes them). */
static void kept_clear(siterec_replication *r)
{
	char dir[4300];
	snprintf(dir, sizeof(dir), "%s/shipped", r->state_dir);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char path[4600];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

SITEREC_API int siterec_replication_resync(siterec_replication *r, siterec_cycle_result *result)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication resync: handle is NULL");
	if (result && result->version < 1)
		return sr_err(SITEREC_EVERSION, "replication resync: result version %u is not supported",
		              result->version);
	int rc = leases_renew(r, "resync");
	if (rc == 0)
		rc = state_load(r, 0);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < r->n_prot; i++)
		if (!r->disks[r->prot[i]].copied)
			return sr_err(SITEREC_ESTATE, "replication resync: VM %s: the initial copy of disk %s is not "
			              "done: run the initial replication", r->vm_id, r->disks[r->prot[i]].id);
	batch_free(r->batch);
	r->batch = NULL;
	if (r->st.state != SITEREC_REPL_RESYNC &&
	    (rc = state_mark(r, SITEREC_REPL_RESYNC, "resync requested by the caller")) != 0)
		return rc;
	/* the cut: the sources are read after it, the writes after it come from the journal */
	uint64_t sealed = 0, bytes = 0;
	rc = siterec_journal_request_rotate(r->jr, 0, &sealed);
	for (uint32_t i = 0; rc == 0 && i < r->n_prot; i++)
		rc = resync_disk(r, i, &bytes);
	if (rc == 0)
		rc = consumed(r, sealed, bytes, sealed);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	if (rc == 0)
		rc = do_cut(r, 1, &res);
	if (rc == 0) {
		kept_clear(r);
		if (result) {
			result->kind = res.kind;
			result->point_id = res.point_id;
			result->cut_time_ms = res.cut_time_ms;
			result->bytes_shipped = bytes + res.bytes_shipped;
			result->points_pruned = 0;
		}
	}
	return classify(r, rc);
}

/* ---- cycles and status ---- */

/* Continuous mode: 1 when the journal holds nothing to ship since the last
 * applied log (local checks only: sealed logs without a record, an active log
 * that is still its bare header). */
static int nothing_written(siterec_replication *r)
{
	if (r->n_pend)
		return 0;   /* checkpoints shipped since the last point: a point must name them */
	uint32_t n_join = joined(r);
	if (n_join < r->n_prot && r->disks[r->prot[n_join]].copied)
		return 0;   /* a disk added and copied joins at the next cycle */
	uint64_t active = 0;
	if (siterec_journal_seqs(r->jr, &active, NULL) != 0) {
		siterec_error_clear();
		return 0;
	}
	char path[4200];
	for (uint32_t i = 0; i < n_join; i++)
		for (uint64_t seq = r->st.last_applied + 1; seq <= active; seq++) {
			if (siterec_journal_log_path(r->jr, i, seq, path, sizeof(path)) != 0) {
				siterec_error_clear();
				return 0;
			}
			if (seq == active) {
				struct stat sb;
				if (stat(path, &sb) != 0 || sb.st_size > DL_EMPTY_ACTIVE)
					return 0;
				continue;
			}
			siterec_dlog_reader *rd = NULL;
			siterec_dlog_record rec;
			int rc = siterec_dlog_reader_open(&rd, path, NULL);
			if (rc == 0)
				rc = siterec_dlog_reader_next(rd, &rec);
			siterec_dlog_reader_free(rd);
			if (rc != 0) {   /* a record, or something to look at in a full cycle */
				siterec_error_clear();
				return 0;
			}
		}
	return 1;
}

SITEREC_API int siterec_replication_cycle(siterec_replication *r, siterec_cycle_result *result)
{
	if (!r)
		return sr_err(SITEREC_EINVAL, "replication cycle: handle is NULL");
	if (result && result->version < 1)
		return sr_err(SITEREC_EVERSION, "replication cycle: result version %u is not supported",
		              result->version);
	if (r->opts.interval_s == SITEREC_POLICY_CONTINUOUS && r->st.state == SITEREC_REPL_PROTECTED &&
	    !r->lease_lost && nothing_written(r)) {
		/* nothing to ship: no point, no request (but the leases kept alive) */
		int rc = 0;
		if (now_ms() - r->renewed_ms >= REPL_IDLE_RENEW_S * 1000)
			rc = leases_renew(r, "cycle");
		if (rc == 0 && result) {
			result->kind = 0;
			result->point_id = 0;
			result->cut_time_ms = 0;
			result->bytes_shipped = 0;
			result->points_pruned = 0;
		}
		return rc;
	}
	/* no state read: this handle alone writes it while it holds the leases (and
	 * If-Match fences the rest); a cycle is a handful of requests */
	int rc = r->lease_lost ? leases_renew(r, "cycle") : leases_renew_due(r, "cycle");
	if (rc)
		return rc;
	if (r->st.state == SITEREC_REPL_RESYNC || r->st.state == SITEREC_REPL_CRITICAL)
		return sr_err(r->st.state == SITEREC_REPL_RESYNC ? SITEREC_ERESYNC : SITEREC_ECRITICAL,
		              "replication cycle: VM %s is in state %s (%s): run a resync", r->vm_id,
		              siterec_replication_state_name(r->st.state), r->st.reason);
	if (r->st.state != SITEREC_REPL_PROTECTED)
		return sr_err(SITEREC_ESTATE, "replication cycle: VM %s is in state %s: run the initial "
		              "replication first", r->vm_id, siterec_replication_state_name(r->st.state));
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	rc = classify(r, do_cut(r, 0, &res));
	if (rc == 0 && result) {
		result->kind = res.kind;
		result->point_id = res.point_id;
		result->cut_time_ms = res.cut_time_ms;
		result->bytes_shipped = res.bytes_shipped;
		result->points_pruned = res.points_pruned;
	}
	return rc;
}

/* ---- the policy loop ---- */

static int retryable(int rc)
{
	return rc == SITEREC_ENETWORK || rc == SITEREC_ETIMEOUT || rc == SITEREC_ESTORAGE ||
	       rc == SITEREC_EIO || rc == SITEREC_EBUSY || rc == SITEREC_ENOSPC;
}

static int follow_emit(siterec_follow_fn fn, void *payload, uint32_t kind, int error, uint32_t delay_ms,
                       uint64_t point_id, const siterec_cycle_result *cycle)
{
	siterec_follow_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.version = SITEREC_FOLLOW_EVENT_VERSION;
	ev.kind = kind;
	ev.error = error;
	ev.delay_ms = delay_ms;
	ev.point_id = point_id;
	ev.cycle.version = SITEREC_CYCLE_RESULT_VERSION;
	if (cycle)
		ev.cycle = *cycle;
	return fn(&ev, payload);
}

/* Wait until t_ms (wall clock), applying when a batch is due and renewing the
 * leases; 1 when fn asked to stop, else 0 or an error. min_apply_ms: at least
 * one apply slice this long, even past t_ms. */
static int follow_wait(siterec_replication *r, int64_t t_ms, uint32_t min_apply_ms, int64_t *ckpt,
                       siterec_follow_fn fn, void *payload)
{
	int applied = 0;
	for (;;) {
		int64_t now = now_ms(), left = t_ms - now;
		if (left <= 0 && (applied || !min_apply_ms))
			return 0;
		if (r->opts.checkpoint_s && now >= *ckpt) {
			int rc = siterec_replication_checkpoint(r, NULL);
			if (rc)
				return rc;
			*ckpt = now + (int64_t)r->opts.checkpoint_s * 1000;
			continue;
		}
		if (r->opts.checkpoint_s && *ckpt < t_ms && *ckpt - now < left)
			left = *ckpt - now;   /* the slice ends by the next checkpoint */
		int64_t budget = left > 1000 ? 1000 : left;
		if (!applied && budget < (int64_t)min_apply_ms)
			budget = min_apply_ms;
		uint64_t before = r->st.applied_point, waiting = 0;
		int rc = siterec_replication_apply(r, (uint32_t)(budget > 0 ? budget : 1), 0, &waiting);
		if (rc)
			return rc;
		applied = 1;
		if (r->st.applied_point != before &&
		    follow_emit(fn, payload, SITEREC_FOLLOW_APPLIED, 0, 0, r->st.applied_point, NULL))
			return 1;
		if (follow_emit(fn, payload, SITEREC_FOLLOW_TICK, 0, 0, 0, NULL))
			return 1;
		if (now_ms() - now >= 50)   /* it worked: go on at once */
			continue;
		left = t_ms - now_ms();
		if (r->opts.checkpoint_s && *ckpt - now_ms() < left)
			left = *ckpt - now_ms();
		if (left <= 0)
			continue;
		if (now_ms() - r->renewed_ms >= REPL_IDLE_RENEW_S * 1000 && (rc = leases_renew(r, "follow")) != 0)
			return rc;
		struct timespec ts = { 0, (long)((left > 500 ? 500 : left) * 1000000) };
		nanosleep(&ts, NULL);
	}
}

SITEREC_API int siterec_replication_follow(siterec_replication *r, siterec_follow_fn fn, void *payload)
{
	if (!r || !fn)
		return sr_err(SITEREC_EINVAL, "replication follow: handle or callback is NULL");
	uint32_t backoff_ms = 0;
	int64_t next = 0, ckpt = 0;   /* the next cycle's tick, the next checkpoint */
	int need_resync = 0;
	for (;;) {
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		int rc = 0, stop = 0;
		int64_t t0 = now_ms();
		uint32_t n_copied = 0;
		while (rc == 0 && n_copied < r->n_prot && r->disks[r->prot[n_copied]].copied)
			n_copied++;
		if (rc == 0 && r->st.state == SITEREC_REPL_PROTECTED && n_copied < r->n_prot) {
			rc = siterec_replication_initial(r);   /* disks added: copied, they join next cycle */
		} else if (rc == 0 && r->st.state == SITEREC_REPL_INITIAL) {
			if ((rc = siterec_replication_initial(r)) == 0) {
				res.point_id = r->st.cycle;
				res.cut_time_ms = r->st.last_cut_ms;
				res.kind = SITEREC_RP_CRASH;
				stop = follow_emit(fn, payload, SITEREC_FOLLOW_POINT, 0, 0, res.point_id, &res);
				next = t0 + (int64_t)r->opts.interval_s * 1000;
			}
		} else if (rc == 0 && r->st.state == SITEREC_REPL_CRITICAL) {
			return sr_err(SITEREC_ECRITICAL, "replication follow: VM %s is critical (%s): fix the "
			              "cause, then run a resync", r->vm_id, r->st.reason);
		} else if (rc == 0 && (need_resync || r->st.state == SITEREC_REPL_RESYNC)) {
			sr_err(SITEREC_ERESYNC, "%s", r->st.reason[0] ? r->st.reason : "a log was lost or damaged");
			if (follow_emit(fn, payload, SITEREC_FOLLOW_RESYNC, SITEREC_ERESYNC, 0, 0, NULL))
				return 0;
			if ((rc = siterec_replication_resync(r, &res)) == 0) {
				need_resync = 0;
				stop = follow_emit(fn, payload, SITEREC_FOLLOW_POINT, 0, 0, res.point_id, &res);
				next = t0 + (int64_t)r->opts.interval_s * 1000;
			}
		} else if (rc == 0) {
			/* between ticks: apply, keep the leases */
			if (ckpt == 0)
				ckpt = now_ms() + (int64_t)r->opts.checkpoint_s * 1000;
			int w = follow_wait(r, next, r->opts.interval_s ? 0 : 300, &ckpt, fn, payload);
			if (w == 1)
				return 0;
			rc = w;
			t0 = now_ms();
			if (rc == 0 && (rc = siterec_replication_cycle(r, &res)) == 0) {
				if (res.point_id)
					stop = follow_emit(fn, payload, SITEREC_FOLLOW_POINT, 0, 0, res.point_id, &res);
				next = r->opts.interval_s ? t0 + (int64_t)r->opts.interval_s * 1000
				                          : now_ms() + (res.point_id ? 0 : 500);
				ckpt = now_ms() + (int64_t)r->opts.checkpoint_s * 1000;
			}
		}
		if (stop)
			return 0;
		if (rc == 0) {
			backoff_ms = 0;
			continue;
		}
		if (rc == SITEREC_ERESYNC && !need_resync) {
			need_resync = 1;   /* the next turn runs it */
			continue;
		}
		if (!retryable(rc) && rc != SITEREC_ERESYNC)
			return rc;
		backoff_ms = backoff_ms ? (backoff_ms >= 30000 ? 60000 : backoff_ms * 2) : 1000;
		if (follow_emit(fn, payload, SITEREC_FOLLOW_RETRY, rc, backoff_ms, 0, NULL))
			return 0;
		for (int64_t until = now_ms() + backoff_ms; now_ms() < until;) {
			int64_t left = until - now_ms();
			struct timespec ts = { 0, (long)((left > 500 ? 500 : left) * 1000000) };
			nanosleep(&ts, NULL);
			if (follow_emit(fn, payload, SITEREC_FOLLOW_TICK, 0, 0, 0, NULL))
				return 0;
			if (now_ms() - r->renewed_ms >= REPL_IDLE_RENEW_S * 1000 && leases_renew(r, "follow") != 0 &&
			    r->lease_lost)
				return sr_err(SITEREC_ELEASE, "%s", siterec_error_last()->message);
		}
	}
}

SITEREC_API int siterec_replication_status_get(siterec_replication *r,
                                               siterec_replication_status *status)
{
	if (!r || !status)
		return sr_err(SITEREC_EINVAL, "replication status: handle or status is NULL");
	if (status->version < 1 || status->version > SITEREC_REPLICATION_STATUS_VERSION)
		return sr_err(SITEREC_EVERSION, "replication status: version %u is not supported (1..%d)",
		              status->version, SITEREC_REPLICATION_STATUS_VERSION);
	int rc = state_load(r, 0);
	uint64_t count = 0, active = 0;
	if (rc == 0 && (rc = siterec_rp_refresh(r->cat)) == 0)
		rc = siterec_rp_count(r->cat, &count);
	siterec_rp_point last = SITEREC_RP_POINT_INIT;
	if (rc == 0 && count > 0)
		rc = siterec_rp_get(r->cat, count - 1, &last);
	if (rc == 0)
		rc = siterec_journal_seqs(r->jr, &active, NULL);
	if (rc)
		return rc;
	uint64_t pending = 0;
	char path[4200];
	for (uint32_t i = 0; i < r->n_prot; i++)
		for (uint64_t seq = r->st.last_applied + 1; seq <= active; seq++) {
			struct stat sb;
			if (siterec_journal_log_path(r->jr, i, seq, path, sizeof(path)) == 0 &&
			    stat(path, &sb) == 0)
				pending += (uint64_t)sb.st_size;
		}
	status->state = r->st.state;
	status->generation = r->st.generation;
	status->last_point_id = count ? last.id : 0;
	status->last_point_time_ms = count ? last.cut_time_ms : 0;
	status->points = count;
	status->bytes_shipped = r->st.bytes_shipped;
	status->pending_bytes = pending;
	if (status->version >= 2) {
		uint64_t waiting = 0;
		if ((rc = batch_plan(r, 0, &waiting, NULL)) != 0)
			return rc;
		status->applied_point_id = r->st.applied_point;
		status->waiting_bytes = waiting;
	}
	snprintf(status->reason, sizeof(status->reason), "%s",
	         r->st.state >= SITEREC_REPL_RESYNC ? r->st.reason : "");
	return 0;
}

/* ---- for the failover layer (repl_internal.h) ---- */

static int view_get(siterec_store *st, const char *vm_id, cJSON **doc, char *etag, size_t cap, char *name,
                    size_t name_cap)
{
	if (!id_ok(vm_id))
		return sr_err(SITEREC_EINVAL, "VM id must be 1..64 of [A-Za-z0-9._-], not starting with '.'");
	snprintf(name, name_cap, "%s/replication", vm_id);
	void *data = NULL;
	size_t len = 0;
	int rc = siterec_store_doc_get(st, name, &data, &len, etag, cap);
	if (rc == SITEREC_ENOTFOUND)
		return sr_err(SITEREC_ENOTFOUND, "VM %s is not protected in this target (no %s)", vm_id, name);
	if (rc)
		return rc;
	*doc = cJSON_ParseWithLength(data, len);
	siterec_free(data);
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(*doc, "format"),
	            *ver = cJSON_GetObjectItemCaseSensitive(*doc, "version");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "siterec-replication") != 0) {
		cJSON_Delete(*doc);
		*doc = NULL;
		return sr_err(SITEREC_ECORRUPT, "replication: state document %s is damaged", name);
	}
	if (!cJSON_IsNumber(ver) || ver->valuedouble != REPL_FORMAT) {
		cJSON_Delete(*doc);
		*doc = NULL;
		return sr_err(SITEREC_EVERSION, "replication: state document %s is not of version %d", name,
		              REPL_FORMAT);
	}
	return 0;
}

int sr_repl_view_read(siterec_store *st, const char *vm_id, sr_repl_view *v)
{
	memset(v, 0, sizeof(*v));
	cJSON *o = NULL;
	char name[REPL_ID_MAX + 16];
	int rc = view_get(st, vm_id, &o, v->etag, sizeof(v->etag), name, sizeof(name));
	if (rc)
		return rc;
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state"),
	            *reason = cJSON_GetObjectItemCaseSensitive(o, "reason"),
	            *vname = cJSON_GetObjectItemCaseSensitive(o, "name"),
	            *gen = cJSON_GetObjectItemCaseSensitive(o, "vm_generation"),
	            *disks = cJSON_GetObjectItemCaseSensitive(o, "disks");
	if (!cJSON_IsString(state) || !(v->state = state_parse(state->valuestring)) ||
	    json_u64(o, "generation", &v->generation) || json_u64(o, "applied_point", &v->applied_point) ||
	    !cJSON_IsNumber(gen) || (gen->valuedouble != 1 && gen->valuedouble != 2) ||
	    !cJSON_IsArray(disks) || cJSON_GetArraySize(disks) < 1 || cJSON_GetArraySize(disks) > REPL_MAX_DISKS)
		rc = sr_err(SITEREC_ECORRUPT, "replication: state document %s is damaged", name);
	if (rc == 0) {
		v->vm_generation = (uint32_t)gen->valuedouble;
		snprintf(v->vm_name, sizeof(v->vm_name), "%s", cJSON_IsString(vname) ? vname->valuestring : vm_id);
		if (cJSON_IsString(reason))
			snprintf(v->reason, sizeof(v->reason), "%s", reason->valuestring);
	}
	for (int i = 0; rc == 0 && i < cJSON_GetArraySize(disks); i++) {
		const cJSON *e = cJSON_GetArrayItem(disks, i);
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"),
		            *role = cJSON_GetObjectItemCaseSensitive(e, "role"),
		            *ex = cJSON_GetObjectItemCaseSensitive(e, "excluded"),
		            *base = cJSON_GetObjectItemCaseSensitive(e, "base");
		sr_repl_disk *d = &v->disks[v->n_disks];
		if (!cJSON_IsString(id) || !id_ok(id->valuestring) || json_u64(e, "size", &d->size) ||
		    !cJSON_IsString(role) || !cJSON_IsBool(ex)) {
			rc = sr_err(SITEREC_ECORRUPT, "replication: state document %s is damaged (a disk)", name);
			break;
		}
		if (cJSON_IsTrue(ex))
			continue;
		snprintf(d->id, sizeof(d->id), "%s", id->valuestring);
		snprintf(d->replica, sizeof(d->replica), "%s/disks/%s", vm_id, id->valuestring);
		if (cJSON_IsString(base))
			snprintf(d->base, sizeof(d->base), "%s", base->valuestring);
		d->role = strcmp(role->valuestring, "os") == 0 ? SITEREC_DISK_ROLE_OS : SITEREC_DISK_ROLE_DATA;
		v->n_disks++;
	}
	cJSON_Delete(o);
	return rc;
}

int sr_repl_view_set_state(siterec_store *st, const char *vm_id, uint64_t generation, uint32_t state,
                           const char *reason)
{
	cJSON *o = NULL;
	char name[REPL_ID_MAX + 16], etag[SITEREC_STORE_ETAG_MAX];
	int rc = view_get(st, vm_id, &o, etag, sizeof(etag), name, sizeof(name));
	if (rc)
		return rc;
	uint64_t gen = 0;
	if (json_u64(o, "generation", &gen))
		rc = sr_err(SITEREC_ECORRUPT, "replication: state document %s is damaged", name);
	else if (gen != generation)
		rc = sr_err(SITEREC_ECONFLICT, "replication: the state of VM %s moved on (generation %" PRIu64
		            ", expected %" PRIu64 ")", vm_id, gen, generation);
	char *text = NULL;
	if (rc == 0) {
		char g[24];
		snprintf(g, sizeof(g), "%" PRIu64, gen + 1);
		cJSON_ReplaceItemInObjectCaseSensitive(o, "generation", cJSON_CreateString(g));
		cJSON_ReplaceItemInObjectCaseSensitive(o, "state", cJSON_CreateString(siterec_replication_state_name(state)));
		cJSON_ReplaceItemInObjectCaseSensitive(o, "reason", cJSON_CreateString(reason ? reason : ""));
		if (!(text = cJSON_PrintUnformatted(o)))
			rc = sr_err(SITEREC_ENOMEM, "replication: out of memory");
	}
	if (rc == 0)
		rc = siterec_store_doc_put(st, name, text, strlen(text), etag, NULL, 0);
	if (rc == SITEREC_ECONFLICT)
		rc = sr_err(SITEREC_ECONFLICT, "replication: the state of VM %s changed meanwhile", vm_id);
	cJSON_free(text);
	cJSON_Delete(o);
	return rc;
}
