/* Failover orchestration (failover.h): a persisted state machine per slot.
 *
 * Each slot's document ("VM/failover-test", "VM/failover") is the whole state
 * of its operation, kept as a cJSON tree and replaced with If-Match after every
 * step, before the next one runs; advance() drives a slot from whatever phase
 * it is in, so a call and a resume after a crash run the same code. Every step
 * is idempotent: a disk is made again from scratch until it is recorded done,
 * a VM callback may be called twice, deleting what is gone is not an error.
 * Document format: doc/formats.md, "Failover". */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "orch_internal.h"
#include "siterec/disk.h"
#include "../store/store_internal.h"
#include "../replication/repl_internal.h"
#include "../rp/rp_internal.h"

static const size_t fo_opt_sizes[] = { 0, sizeof(siterec_failover_options) };
static const size_t fo_req_sizes[] = { 0, sizeof(siterec_failover_request) };

/* ---- names ---- */

const char *const fo_phase_names[] = { "none", "starting", "materialising", "starting-vm", "failed-over",
	                               "changing", "committing", "committed", "cancelling", "syncing",
	                               "shutting-down", "delta", "reprotecting" };
const char *const fo_type_names[] = { NULL, "test", "planned", "unplanned", "failback" };
#define N_PHASES (sizeof(fo_phase_names) / sizeof(fo_phase_names[0]))

SITEREC_API const char *siterec_failover_phase_name(uint32_t phase)
{
	return phase < N_PHASES ? fo_phase_names[phase] : NULL;
}

static uint32_t name_index(const char *const *names, size_t n, const char *s)
{
	for (uint32_t i = 0; s && i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return i;
	return 0;
}

uint32_t phase_of(const cJSON *doc)
{
	return name_index(fo_phase_names, N_PHASES, j_str(doc, "phase"));
}

uint32_t type_of(const cJSON *doc)
{
	return name_index(fo_type_names, 5, j_str(doc, "type"));
}

/* Names the caller gives for the target: printable, no quotes or backslash (they
 * go into ARM template expressions), 1..64 bytes. */
int name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '\\')
			return 0;
	}
	return 1;
}

/* ---- options, open, free ---- */

SITEREC_API int siterec_failover_options_init(siterec_failover_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, fo_opt_sizes, SITEREC_FAILOVER_OPTIONS_VERSION, "failover");
}

SITEREC_API int siterec_failover_request_init(siterec_failover_request *req, unsigned int version)
{
	return sr_options_init(req, version, fo_req_sizes, SITEREC_FAILOVER_REQUEST_VERSION, "failover request");
}

SITEREC_API void siterec_failover_free(siterec_failover *f)
{
	if (!f)
		return;
	siterec_rp_free(f->cat);
	for (int k = 0; k < 3; k++)
		cJSON_Delete(f->s[k].doc);
	sr_free(f);
}

SITEREC_API int siterec_failover_open(siterec_failover **out, const siterec_failover_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "failover open: out is NULL");
	*out = NULL;
	if (!opts)
		return sr_err(SITEREC_EINVAL, "failover open: options are NULL (store, vm_id and callbacks are required)");
	siterec_failover *f = sr_calloc(1, sizeof(*f));
	if (!f)
		return sr_err(SITEREC_ENOMEM, "failover: out of memory");
	siterec_failover_options_init(&f->o, SITEREC_FAILOVER_OPTIONS_VERSION);
	int rc = sr_options_copy(&f->o, opts, fo_opt_sizes, SITEREC_FAILOVER_OPTIONS_VERSION, "failover");
	if (rc == 0 && f->o.flags)
		rc = sr_err(SITEREC_EINVAL, "failover: unknown flags 0x%x", f->o.flags);
	else if (rc == 0 && (!f->o.store || !f->o.vm_id))
		rc = sr_err(SITEREC_EINVAL, "failover: store and vm_id are required");
	else if (rc == 0 && (!f->o.start || !f->o.remove))
		rc = sr_err(SITEREC_EINVAL, "failover: the start and remove callbacks are required");
	else if (rc == 0 && strlen(f->o.vm_id) >= sizeof(f->vm))
		rc = sr_err(SITEREC_EINVAL, "failover: VM id too long");
	sr_repl_view *v = rc ? NULL : sr_calloc(1, sizeof(*v));
	if (rc == 0 && !v)
		rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
	if (rc == 0)
		rc = sr_repl_view_read(f->o.store, f->o.vm_id, v);   /* protected here? */
	sr_free(v);
	if (rc == 0) {
		snprintf(f->vm, sizeof(f->vm), "%s", f->o.vm_id);
		f->o.vm_id = f->vm;
		f->file_target = strcmp(f->o.store->ops->name, "file") == 0;
		snprintf(f->s[SLOT_TEST].name, sizeof(f->s[0].name), "%s/failover-test", f->vm);
		snprintf(f->s[SLOT_FO].name, sizeof(f->s[1].name), "%s/failover", f->vm);
		snprintf(f->s[SLOT_FB].name, sizeof(f->s[2].name), "%s/failback", f->vm);
		rc = siterec_rp_open(&f->cat, f->o.store, f->vm);
	}
	if (rc) {
		siterec_failover_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* ---- the slots' documents ---- */

int slot_load(siterec_failover *f, int k)
{
	slot *s = &f->s[k];
	cJSON_Delete(s->doc);
	s->doc = NULL;
	s->etag[0] = '\0';
	void *data = NULL;
	size_t len = 0;
	int rc = siterec_store_doc_get(f->o.store, s->name, &data, &len, s->etag, sizeof(s->etag));
	if (rc == SITEREC_ENOTFOUND) {
		siterec_error_clear();
		s->etag[0] = '\0';
		return 0;
	}
	if (rc)
		return rc;
	s->doc = len <= FO_DOC_MAX ? cJSON_ParseWithLength(data, len) : NULL;
	siterec_free(data);
	const char *fmt = j_str(s->doc, "format"), *vm = j_str(s->doc, "vm");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(s->doc, "version");
	if (!fmt || strcmp(fmt, "siterec-failover") != 0 || !vm || strcmp(vm, f->vm) != 0 ||
	    !type_of(s->doc) || !phase_of(s->doc) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s->doc, "disks")) ||
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(s->doc, "request"))) {
		cJSON_Delete(s->doc);
		s->doc = NULL;
		return sr_err(SITEREC_ECORRUPT, "failover: state document %s is damaged", s->name);
	}
	if (!cJSON_IsNumber(ver) || ver->valuedouble != FO_FORMAT) {
		cJSON_Delete(s->doc);
		s->doc = NULL;
		return sr_err(SITEREC_EVERSION, "failover: state document %s is not of version %d", s->name,
		              FO_FORMAT);
	}
	return 0;
}

/* Write the slot's document: generation + 1, If-Match on what we read (create-only
 * for a new one), so two hosts driving one operation cannot both go on. */
int slot_save(siterec_failover *f, int k)
{
	slot *s = &f->s[k];
	j_set_u64(s->doc, "generation", j_u64(s->doc, "generation") + 1);
	char *text = cJSON_PrintUnformatted(s->doc);
	if (!text)
		return sr_err(SITEREC_ENOMEM, "failover: out of memory writing %s", s->name);
	int rc = siterec_store_doc_put(f->o.store, s->name, text, strlen(text), s->etag, s->etag, sizeof(s->etag));
	cJSON_free(text);
	if (rc == SITEREC_ECONFLICT)
		return sr_err(SITEREC_ECONFLICT, "failover: %s was changed by another host or process meanwhile; "
		              "open it again to see where it stands", s->name);
	return rc;
}

void set_phase(cJSON *doc, uint32_t phase)
{
	j_set_str(doc, "phase", fo_phase_names[phase]);
}

/* ---- the request ---- */

static int choice_ok(const siterec_point_choice *c)
{
	if (!c || c->how < SITEREC_POINT_LATEST || c->how > SITEREC_POINT_TIME || c->reserved)
		return sr_err(SITEREC_EINVAL, "failover: the point choice is not one of siterec_point_how");
	if (c->how == SITEREC_POINT_TIME && c->time_ms <= 0)
		return sr_err(SITEREC_EINVAL, "failover: a point in time needs time_ms > 0");
	return 0;
}

static void choice_put(cJSON *doc, const siterec_point_choice *c)
{
	cJSON *p = cJSON_CreateObject();
	if (!p)
		return;
	j_set_num(p, "how", c->how);
	j_set_u64(p, "id", c->id);
	j_set_i64(p, "time_ms", c->time_ms);
	j_put(doc, "point", p);
}

static const siterec_network_map *map_find(const siterec_failover_request *q, const char *net)
{
	for (uint32_t i = 0; i < q->n_networks; i++)
		if (strcmp(q->networks[i].source_network, net) == 0)
			return &q->networks[i];
	return NULL;
}

/* Validate req and turn it into the document's "request" (with the NICs mapped). */
static int request_json(siterec_failover *f, const siterec_failover_request *req_in, uint32_t type,
                        cJSON **out)
{
	siterec_failover_request q;
	siterec_failover_request_init(&q, SITEREC_FAILOVER_REQUEST_VERSION);
	int rc = sr_options_copy(&q, req_in, fo_req_sizes, SITEREC_FAILOVER_REQUEST_VERSION, "failover request");
	if (rc)
		return rc;
	if (type != SITEREC_FAILOVER_PLANNED && (rc = choice_ok(&q.point)) != 0)
		return rc;
	if (q.target == 0)
		q.target = SITEREC_TARGET_AZURE;
	if (q.output == 0)
		q.output = SITEREC_OUTPUT_VHD;
	if (q.target != SITEREC_TARGET_AZURE && q.target != SITEREC_TARGET_HYPERV)
		return sr_err(SITEREC_EINVAL, "failover: target %u is not AZURE or HYPERV", q.target);
	if (q.output != SITEREC_OUTPUT_RAW && q.output != SITEREC_OUTPUT_VHD)
		return sr_err(SITEREC_EINVAL, "failover: output %u is not RAW or VHD", q.output);
	if (q.disk_dir && (!q.disk_dir[0] || strlen(q.disk_dir) > 4000))
		return sr_err(SITEREC_EINVAL, "failover: disk_dir is empty or longer than 4000 bytes");
	if (!q.disk_dir && f->file_target)
		return sr_err(SITEREC_EINVAL, "failover: a file:// target needs disk_dir (the disks are made as files)");
	const char *names[] = { q.vm_name, q.vm_size, q.os_type, q.location, q.test_network, q.test_subnet };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && !name_ok(names[i]))
			return sr_err(SITEREC_EINVAL, "failover: \"%.80s\" is not a valid name (1..64 printable "
			              "characters, no quotes or backslash)", names[i]);
	if (q.os_type && strcmp(q.os_type, "Windows") != 0 && strcmp(q.os_type, "Linux") != 0)
		return sr_err(SITEREC_EINVAL, "failover: os_type must be \"Windows\" or \"Linux\"");
	if (q.n_nics > FO_MAX_NICS || (q.n_nics && !q.nics))
		return sr_err(SITEREC_EINVAL, "failover: %u NICs (at most %d, nics not NULL)", q.n_nics, FO_MAX_NICS);
	if (q.n_networks > FO_MAX_NETWORKS || (q.n_networks && !q.networks))
		return sr_err(SITEREC_EINVAL, "failover: %u network map entries (at most %d, networks not NULL)",
		              q.n_networks, FO_MAX_NETWORKS);
	for (uint32_t i = 0; i < q.n_networks; i++) {
		const siterec_network_map *m = &q.networks[i];
		if (!name_ok(m->source_network) || !name_ok(m->target_network) || m->reserved ||
		    m->n_subnets < 1 || m->n_subnets > FO_MAX_SUBNETS || !m->subnets)
			return sr_err(SITEREC_EINVAL, "failover: network map entry %u needs valid source and "
			              "target names and 1..%d subnets", i, FO_MAX_SUBNETS);
		for (uint32_t j = 0; j < m->n_subnets; j++)
			if (!name_ok(m->subnets[j]))
				return sr_err(SITEREC_EINVAL, "failover: network map entry %u: subnet %u is not a "
				              "valid name", i, j);
	}
	cJSON *o = cJSON_CreateObject(), *nics = cJSON_CreateArray();
	if (!o || !nics) {
		cJSON_Delete(o);
		cJSON_Delete(nics);
		return sr_err(SITEREC_ENOMEM, "failover: out of memory");
	}
	cJSON_AddItemToObject(o, "nics", nics);
	for (uint32_t i = 0; i < q.n_nics; i++) {
		const siterec_nic *n = &q.nics[i];
		if (!name_ok(n->network) || (n->subnet && !name_ok(n->subnet)) || (n->ip && !name_ok(n->ip))) {
			cJSON_Delete(o);
			return sr_err(SITEREC_EINVAL, "failover: NIC %u needs a valid network name (subnet and ip "
			              "valid names or NULL)", i);
		}
		const char *net, *sub;
		if (type == SITEREC_FAILOVER_TEST && q.test_network) {
			net = q.test_network;
			sub = q.test_subnet ? q.test_subnet : "default";
		} else {
			const siterec_network_map *m = map_find(&q, n->network);
			if (!m) {
				cJSON_Delete(o);
				return sr_err(SITEREC_EINVAL, "failover: NIC %u is on network %s, which the network "
				              "mapping does not name", i, n->network);
			}
			net = m->target_network;
			sub = m->subnets[0];
			for (uint32_t j = 0; n->subnet && j < m->n_subnets; j++)
				if (strcmp(m->subnets[j], n->subnet) == 0)
					sub = m->subnets[j];   /* the same subnet name when the target has it */
		}
		cJSON *e = cJSON_CreateObject();
		if (e)
			cJSON_AddItemToArray(nics, e);
		j_set_str(e, "network", net);
		j_set_str(e, "subnet", sub);
		j_set_str(e, "ip", type == SITEREC_FAILOVER_TEST ? NULL : n->ip);  /* a drill must not take the production address */
	}
	j_set_num(o, "target", q.target);
	j_set_num(o, "output", q.output);
	j_set_str(o, "disk_dir", q.disk_dir);
	j_set_str(o, "vm_name", q.vm_name);
	j_set_str(o, "vm_size", q.vm_size ? q.vm_size : "Standard_D2s_v3");
	j_set_str(o, "os_type", q.os_type ? q.os_type : "Windows");
	j_set_str(o, "location", q.location);
	*out = o;
	return 0;
}

void guid(char *out, size_t cap)
{
	uint8_t b[16] = { 0 };
	if (sr_random_bytes(b, sizeof(b)) != 0) {   /* never fails in practice; the time is unique enough */
		siterec_error_clear();
		uint64_t t = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(b, &t, sizeof(t));
	}
	snprintf(out, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

cJSON *doc_new(const siterec_failover *f, uint32_t type)
{
	cJSON *d = cJSON_CreateObject();
	if (!d)
		return NULL;
	j_set_str(d, "format", "siterec-failover");
	j_set_num(d, "version", FO_FORMAT);
	j_set_str(d, "vm", f->vm);
	j_set_u64(d, "generation", 0);
	j_set_str(d, "type", fo_type_names[type]);
	set_phase(d, SITEREC_FO_STARTING);
	j_set_i64(d, "started_ms", now_ms());
	cJSON_AddItemToObject(d, "disks", cJSON_CreateArray());
	return d;
}

int slot_create(siterec_failover *f, int k, cJSON *doc)
{
	slot *s = &f->s[k];
	cJSON_Delete(s->doc);
	s->doc = doc;
	s->etag[0] = '\0';   /* create-only */
	int rc = slot_save(f, k);
	if (rc == SITEREC_ECONFLICT)
		rc = sr_err(SITEREC_EEXISTS, "failover: VM %s has a %s operation already (another host started "
		            "one meanwhile)", f->vm, k == SLOT_TEST ? "test failover" : k == SLOT_FB ? "failback"
		            : "failover");
	if (rc) {
		cJSON_Delete(s->doc);
		s->doc = NULL;
	}
	return rc;
}

static int choose(siterec_failover *f, const cJSON *c, uint64_t limit, uint64_t *id, int64_t *time_ms);

static int op_create(siterec_failover *f, int k, uint32_t type, const siterec_failover_request *req)
{
	if (!req)
		return sr_err(SITEREC_EINVAL, "failover: the request is NULL");
	cJSON *rq = NULL, *d = NULL;
	int rc = request_json(f, req, type, &rq);
	if (rc)
		return rc;
	if (type != SITEREC_FAILOVER_PLANNED) {
		/* a choice no point fits fails here, before anything is recorded or taken
		 * over (the fence may narrow it later; then the operation stays to cancel) */
		cJSON *c = cJSON_CreateObject();
		uint64_t id = 0;
		int64_t t = 0;
		if (!c)
			rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
		else
			choice_put(c, &req->point);
		if (rc == 0)
			rc = choose(f, cJSON_GetObjectItemCaseSensitive(c, "point"), UINT64_MAX, &id, &t);
		cJSON_Delete(c);
		if (rc) {
			cJSON_Delete(rq);
			return rc;
		}
	}
	sr_repl_view *v = sr_calloc(1, sizeof(*v));
	if (!v || !(d = doc_new(f, type)))
		rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
	if (rc == 0)
		rc = sr_repl_view_read(f->o.store, f->vm, v);
	if (rc) {
		cJSON_Delete(rq);
		cJSON_Delete(d);
		sr_free(v);
		return rc;
	}
	char name[160];
	const char *given = j_str(rq, "vm_name");
	if (given)
		snprintf(name, sizeof(name), "%s", given);
	else
		snprintf(name, sizeof(name), "%.64s%s", v->vm_name, type == SITEREC_FAILOVER_TEST ? "-test" : "");
	j_set_str(d, "vm_name", name);
	j_set_num(d, "source_generation", v->vm_generation);
	cJSON_AddItemToObject(d, "request", rq);
	siterec_point_choice c = req->point;
	if (type == SITEREC_FAILOVER_PLANNED)
		c = (siterec_point_choice){ SITEREC_POINT_LATEST, 0, 0, 0 };
	choice_put(d, &c);
	char lease[SITEREC_STORE_LEASE_MAX];
	guid(lease, sizeof(lease));
	j_set_str(d, "lease", type == SITEREC_FAILOVER_TEST ? "" : lease);
	sr_free(v);
	return slot_create(f, k, d);
}

/* ---- the target VM ---- */

typedef struct vm_desc {
	siterec_failover_vm vm;
	siterec_failover_disk *disks;
	siterec_failover_nic *nics;
	char **locs;
	uint32_t n_locs;
	char *arm;
} vm_desc;

static void vm_desc_free(vm_desc *d)
{
	for (uint32_t i = 0; d->locs && i < d->n_locs; i++)
		sr_free(d->locs[i]);
	sr_free(d->locs);
	sr_free(d->disks);
	sr_free(d->nics);
	cJSON_free(d->arm);
	memset(d, 0, sizeof(*d));
}

static int blob_output(const cJSON *doc)
{
	return j_str(cJSON_GetObjectItemCaseSensitive(doc, "request"), "disk_dir") == NULL;
}

/* Store name (blob output) or path (disk_dir) of disk id's output. */
static void output_name(const siterec_failover *f, const cJSON *doc, const char *id, char *buf, size_t cap)
{
	const cJSON *rq = cJSON_GetObjectItemCaseSensitive(doc, "request");
	const char *dir = j_str(rq, "disk_dir");
	if (!dir)
		snprintf(buf, cap, "%s/%s/%s", f->vm, type_of(doc) == SITEREC_FAILOVER_TEST ? "test-disks"
		         : "failover-disks", id);
	else
		snprintf(buf, cap, "%s/%s%s.%s", dir, id, type_of(doc) == SITEREC_FAILOVER_TEST ? "-test" : "",
		         j_num(rq, "output") == SITEREC_OUTPUT_RAW ? "raw" : "vhd");
}

static char *arm_build(const siterec_failover_vm *vm, const char *location);

static int vm_build(siterec_failover *f, int k, vm_desc *d)
{
	memset(d, 0, sizeof(*d));
	const cJSON *doc = f->s[k].doc, *rq = cJSON_GetObjectItemCaseSensitive(doc, "request");
	const cJSON *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks"),
	            *nics = cJSON_GetObjectItemCaseSensitive(rq, "nics");
	uint32_t nd = (uint32_t)cJSON_GetArraySize(disks), nn = (uint32_t)cJSON_GetArraySize(nics);
	d->disks = sr_calloc(nd ? nd : 1, sizeof(*d->disks));
	d->nics = sr_calloc(nn ? nn : 1, sizeof(*d->nics));
	d->locs = sr_calloc(nd ? nd : 1, sizeof(char *));
	if (!d->disks || !d->nics || !d->locs) {
		vm_desc_free(d);
		return sr_err(SITEREC_ENOMEM, "failover: out of memory");
	}
	uint32_t target = j_num(rq, "target"), src_gen = j_num(doc, "source_generation");
	siterec_failover_vm *vm = &d->vm;
	vm->version = 1;
	vm->type = type_of(doc);
	vm->vm_id = f->vm;
	vm->name = j_str(doc, "vm_name");
	vm->source_generation = src_gen;
	vm->generation = target == SITEREC_TARGET_AZURE ? 1 : src_gen;
	vm->firmware = vm->generation == 2 ? SITEREC_FIRMWARE_UEFI : SITEREC_FIRMWARE_BIOS;
	vm->isolated = vm->type == SITEREC_FAILOVER_TEST;
	vm->point_id = j_u64(doc, "point_id");
	vm->point_time_ms = j_i64(doc, "point_time_ms");
	vm->vm_size = j_str(rq, "vm_size");
	vm->os_type = j_str(rq, "os_type");
	/* the OS disk first, then the data disks in the VM's order on LUN 0, 1, ... */
	uint32_t lun = 0;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < nd; i++) {
			const cJSON *e = cJSON_GetArrayItem(disks, (int)i);
			uint32_t role = j_num(e, "role");
			if ((pass == 0) != (role == SITEREC_DISK_ROLE_OS))
				continue;
			siterec_failover_disk *x = &d->disks[vm->n_disks++];
			x->id = j_str(e, "id");
			x->size = j_u64(e, "size");
			x->role = role;
			x->lun = role == SITEREC_DISK_ROLE_OS ? 0 : lun++;
			const char *obj = j_str(e, "object");
			if (blob_output(doc)) {
				char *url = NULL;
				int rc = sr_store_object_url(f->o.store, obj, &url);
				if (rc) {
					vm_desc_free(d);
					return rc;
				}
				d->locs[d->n_locs++] = url;
				x->location = url;
			} else {
				x->location = obj;
			}
		}
	for (uint32_t i = 0; i < nn; i++) {
		const cJSON *e = cJSON_GetArrayItem(nics, (int)i);
		d->nics[i].network = j_str(e, "network");
		d->nics[i].subnet = j_str(e, "subnet");
		d->nics[i].ip = j_str(e, "ip");
	}
	vm->n_nics = nn;
	vm->disks = d->disks;
	vm->nics = d->nics;
	if (target == SITEREC_TARGET_AZURE && blob_output(doc)) {
		if (!(d->arm = arm_build(vm, j_str(rq, "location")))) {
			vm_desc_free(d);
			return sr_err(SITEREC_ENOMEM, "failover: out of memory building the ARM template");
		}
		vm->arm_template = d->arm;
	}
	return 0;
}

/* ---- the ARM template ---- */

static cJSON *arm_res(cJSON *res, const char *type, const char *api, const char *name, const char *loc)
{
	cJSON *r = cJSON_CreateObject();
	if (!r)
		return NULL;
	cJSON_AddItemToArray(res, r);
	j_set_str(r, "type", type);
	j_set_str(r, "apiVersion", api);
	j_set_str(r, "name", name);
	j_set_str(r, "location", loc);
	return r;
}

static char *arm_build(const siterec_failover_vm *vm, const char *location)
{
	cJSON *t = cJSON_CreateObject();
	if (!t)
		return NULL;
	const char *loc = location ? location : "[resourceGroup().location]";
	j_set_str(t, "$schema", "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#");
	j_set_str(t, "contentVersion", "1.0.0.0");
	cJSON *par = cJSON_AddObjectToObject(t, "parameters");
	cJSON *sa = cJSON_AddObjectToObject(par, "storageAccountId");
	j_set_str(sa, "type", "string");
	cJSON *meta = cJSON_AddObjectToObject(sa, "metadata");
	j_set_str(meta, "description", "Resource id of the storage account that holds the disks' VHD blobs");
	cJSON *res = cJSON_AddArrayToObject(t, "resources");
	cJSON *deps = cJSON_CreateArray(), *data = cJSON_CreateArray(), *osd = cJSON_CreateObject(),
	      *nics = cJSON_CreateArray();
	char name[256], expr[512];
	for (uint32_t i = 0; i < vm->n_disks; i++) {
		const siterec_failover_disk *x = &vm->disks[i];
		snprintf(name, sizeof(name), "%s-%s", vm->name, x->id);
		cJSON *r = arm_res(res, "Microsoft.Compute/disks", "2023-04-02", name, loc);
		cJSON *sku = cJSON_AddObjectToObject(r, "sku");
		j_set_str(sku, "name", "Standard_LRS");
		cJSON *p = cJSON_AddObjectToObject(r, "properties");
		if (x->role == SITEREC_DISK_ROLE_OS)
			j_set_str(p, "osType", vm->os_type);
		j_set_str(p, "hyperVGeneration", vm->generation == 2 ? "V2" : "V1");
		cJSON *cd = cJSON_AddObjectToObject(p, "creationData");
		j_set_str(cd, "createOption", "Import");
		j_set_str(cd, "sourceUri", x->location);
		j_set_str(cd, "storageAccountId", "[parameters('storageAccountId')]");
		snprintf(expr, sizeof(expr), "[resourceId('Microsoft.Compute/disks', '%s')]", name);
		cJSON_AddItemToArray(deps, cJSON_CreateString(expr));
		cJSON *att = x->role == SITEREC_DISK_ROLE_OS ? osd : cJSON_CreateObject();
		if (att != osd)
			cJSON_AddItemToArray(data, att);
		if (x->role == SITEREC_DISK_ROLE_OS)
			j_set_str(att, "osType", vm->os_type);
		else
			j_set_num(att, "lun", x->lun);
		j_set_str(att, "createOption", "Attach");
		cJSON *md = cJSON_AddObjectToObject(att, "managedDisk");
		j_set_str(md, "id", expr);
	}
	for (uint32_t i = 0; i < vm->n_nics; i++) {
		const siterec_failover_nic *n = &vm->nics[i];
		snprintf(name, sizeof(name), "%s-nic%u", vm->name, i);
		cJSON *r = arm_res(res, "Microsoft.Network/networkInterfaces", "2023-04-01", name, loc);
		cJSON *p = cJSON_AddObjectToObject(r, "properties");
		cJSON *ipc = cJSON_AddArrayToObject(p, "ipConfigurations");
		cJSON *c = cJSON_CreateObject();
		cJSON_AddItemToArray(ipc, c);
		j_set_str(c, "name", "ipconfig1");
		cJSON *cp = cJSON_AddObjectToObject(c, "properties");
		snprintf(expr, sizeof(expr), "[resourceId('Microsoft.Network/virtualNetworks/subnets', '%s', '%s')]",
		         n->network, n->subnet);
		cJSON *sub = cJSON_AddObjectToObject(cp, "subnet");
		j_set_str(sub, "id", expr);
		j_set_str(cp, "privateIPAllocationMethod", n->ip ? "Static" : "Dynamic");
		if (n->ip)
			j_set_str(cp, "privateIPAddress", n->ip);
		snprintf(expr, sizeof(expr), "[resourceId('Microsoft.Network/networkInterfaces', '%s')]", name);
		cJSON_AddItemToArray(deps, cJSON_CreateString(expr));
		cJSON *ref = cJSON_CreateObject();
		cJSON_AddItemToArray(nics, ref);
		j_set_str(ref, "id", expr);
		cJSON *rp = cJSON_AddObjectToObject(ref, "properties");
		j_set_bool(rp, "primary", i == 0);
	}
	cJSON *v = arm_res(res, "Microsoft.Compute/virtualMachines", "2023-03-01", vm->name, loc);
	cJSON_AddItemToObject(v, "dependsOn", deps);
	cJSON *p = cJSON_AddObjectToObject(v, "properties");
	cJSON *hw = cJSON_AddObjectToObject(p, "hardwareProfile");
	j_set_str(hw, "vmSize", vm->vm_size);
	cJSON *sp = cJSON_AddObjectToObject(p, "storageProfile");
	cJSON_AddItemToObject(sp, "osDisk", osd);
	cJSON_AddItemToObject(sp, "dataDisks", data);
	cJSON *np = cJSON_AddObjectToObject(p, "networkProfile");
	cJSON_AddItemToObject(np, "networkInterfaces", nics);
	cJSON *tags = cJSON_AddObjectToObject(v, "tags");
	j_set_str(tags, "siterec-vm", vm->vm_id);
	char num[24];
	snprintf(num, sizeof(num), "%" PRIu64, vm->point_id);
	j_set_str(tags, "siterec-point", num);
	snprintf(num, sizeof(num), "%u", vm->source_generation);
	j_set_str(tags, "siterec-source-generation", num);
	char *out = cJSON_Print(t);
	cJSON_Delete(t);
	return out;
}

SITEREC_API int siterec_failover_arm_template(siterec_failover *f, uint32_t type, char **json)
{
	if (!f || !json)
		return sr_err(SITEREC_EINVAL, "failover ARM template: handle or json is NULL");
	*json = NULL;
	if (type < SITEREC_FAILOVER_TEST || type > SITEREC_FAILOVER_UNPLANNED)
		return sr_err(SITEREC_EINVAL, "failover ARM template: type %u is not a failover type", type);
	int k = type == SITEREC_FAILOVER_TEST ? SLOT_TEST : SLOT_FO, rc = slot_load(f, k);
	if (rc)
		return rc;
	const cJSON *doc = f->s[k].doc;
	if (!doc)
		return sr_err(SITEREC_ENOTFOUND, "failover ARM template: VM %s has no such operation", f->vm);
	uint32_t ph = phase_of(doc);
	if (ph < SITEREC_FO_STARTING_VM || ph == SITEREC_FO_CHANGING || ph == SITEREC_FO_CANCELLING)
		return sr_err(SITEREC_ESTATE, "failover ARM template: the disks are not made (phase %s)",
		              fo_phase_names[ph]);
	if (j_num(cJSON_GetObjectItemCaseSensitive(doc, "request"), "target") != SITEREC_TARGET_AZURE ||
	    !blob_output(doc))
		return sr_err(SITEREC_EUNSUPPORTED, "failover ARM template: only for an Azure target with the "
		              "disks as blobs");
	vm_desc d;
	if ((rc = vm_build(f, k, &d)) != 0)
		return rc;
	size_t n = strlen(d.arm) + 1;
	*json = sr_malloc(n);
	if (*json)
		memcpy(*json, d.arm, n);
	vm_desc_free(&d);
	return *json ? 0 : sr_err(SITEREC_ENOMEM, "failover: out of memory");
}

/* ---- steps ---- */

int cb_fail(int cb, const char *what, const siterec_failover *f)
{
	int rc = sr_err_callback(cb, what);
	sr_log(SITEREC_LOG_WARN, "failover of %s: %s failed (%d); the operation stays recorded: resume, "
	       "or cancel it", f->vm, what, cb);
	return rc;
}

int vm_call(siterec_failover *f, int k, int start)
{
	vm_desc d;
	int rc = vm_build(f, k, &d);
	if (rc)
		return rc;
	int cb = start ? f->o.start(&d.vm, f->o.payload) : f->o.remove(&d.vm, f->o.payload);
	vm_desc_free(&d);
	return cb ? cb_fail(cb, start ? "the start callback" : "the remove callback", f) : 0;
}

static int newest_id(siterec_failover *f, uint64_t limit, uint32_t kind, uint64_t *id)
{
	uint64_t n = 0;
	int rc = siterec_rp_count(f->cat, &n);
	*id = 0;
	for (uint64_t i = n; rc == 0 && i-- > 0;) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		if ((rc = siterec_rp_get(f->cat, i, &p)) != 0)
			break;
		if (p.id <= limit && (!kind || p.kind == kind)) {
			*id = p.id;
			break;
		}
	}
	return rc;
}

/* Take the VM over from its replicator (planned, unplanned): replication state to
 * FAILED_OVER, the replicas' leases broken and taken, the fence recorded. */
static int take_over(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc;
	sr_repl_view *v = sr_calloc(1, sizeof(*v));
	if (!v)
		return sr_err(SITEREC_ENOMEM, "failover: out of memory");
	int rc = sr_repl_view_read(f->o.store, f->vm, v);
	if (rc == 0 && v->state != SITEREC_REPL_FAILED_OVER) {
		j_set_num(doc, "repl_state_before", v->state);   /* a cancel puts it back */
		if ((rc = slot_save(f, k)) == 0) {
			char why[200];
			snprintf(why, sizeof(why), "%s failover to %.64s", fo_type_names[type_of(doc)], j_str(doc, "vm_name"));
			rc = sr_repl_view_set_state(f->o.store, f->vm, v->generation, SITEREC_REPL_FAILED_OVER, why);
		}
	}
	const char *lease = j_str(doc, "lease");
	if (rc == 0)
		sr_log(SITEREC_LOG_INFO, "failover of %s: replication stopped (state failed-over); taking the "
		       "replicas' leases", f->vm);
	for (uint32_t i = 0; rc == 0 && i < v->n_disks; i++) {
		char got[SITEREC_STORE_LEASE_MAX];
		rc = siterec_store_lease_acquire(f->o.store, v->disks[i].replica, 0, lease, got, sizeof(got));
		if (rc == SITEREC_ELEASE) {   /* the replicator's: break it (it may still be alive) */
			siterec_error_clear();
			if ((rc = siterec_store_lease_break(f->o.store, v->disks[i].replica)) == 0)
				rc = siterec_store_lease_acquire(f->o.store, v->disks[i].replica, 0, lease, got, sizeof(got));
		}
		if (rc == SITEREC_ENOTFOUND) {   /* a disk added whose replica was never made */
			siterec_error_clear();
			rc = 0;
		}
	}
	sr_free(v);
	uint64_t fence = 0;
	if (rc == 0 && (rc = siterec_rp_refresh(f->cat)) == 0 && (rc = newest_id(f, UINT64_MAX, 0, &fence)) == 0 &&
	    fence == 0)
		rc = sr_err(SITEREC_ENOTFOUND, "failover: VM %s has no recovery point yet", f->vm);
	if (rc == 0) {
		j_set_u64(doc, "fence_id", fence);
		j_set_bool(doc, "taken_over", 1);
		rc = slot_save(f, k);
	}
	return rc;
}

/* The point the choice names, among points <= limit; *time_ms: its cut, or the
 * instant asked for. */
static int choose(siterec_failover *f, const cJSON *c, uint64_t limit, uint64_t *id, int64_t *time_ms)
{
	uint32_t how = j_num(c, "how");
	int rc = siterec_rp_refresh(f->cat);
	*id = 0;
	if (rc)
		return rc;
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	if (how == SITEREC_POINT_LATEST || how == SITEREC_POINT_LATEST_APP) {
		rc = newest_id(f, limit, how == SITEREC_POINT_LATEST_APP ? SITEREC_RP_APP : 0, id);
	} else if (how == SITEREC_POINT_LATEST_PROCESSED) {
		sr_repl_view *v = sr_calloc(1, sizeof(*v));
		rc = v ? sr_repl_view_read(f->o.store, f->vm, v) : sr_err(SITEREC_ENOMEM, "failover: out of memory");
		if (rc == 0 && v->applied_point <= limit && siterec_rp_find(f->cat, v->applied_point, &p) == 0)
			*id = v->applied_point;
		siterec_error_clear();
		sr_free(v);
	} else if (how == SITEREC_POINT_ID) {
		uint64_t want = j_u64(c, "id");
		if (want <= limit && siterec_rp_find(f->cat, want, &p) == 0)
			*id = want;
		siterec_error_clear();
	} else {   /* a point in time: the first point cut at or after it, with one before it */
		int64_t t = j_i64(c, "time_ms");
		uint64_t n = 0, prev_ok = 0;
		rc = siterec_rp_count(f->cat, &n);
		for (uint64_t i = 0; rc == 0 && i < n; i++) {
			if ((rc = siterec_rp_get(f->cat, i, &p)) != 0 || p.id > limit)
				break;
			if (p.cut_time_ms >= t) {
				if (prev_ok || p.cut_time_ms == t)
					*id = p.id;
				break;
			}
			prev_ok = 1;
		}
		*time_ms = t;
		if (rc == 0 && !*id)
			return sr_err(SITEREC_ENOTFOUND, "failover: VM %s: no recovery point covers that instant "
			              "(before the oldest point, or after the newest%s)", f->vm,
			              limit != UINT64_MAX ? " one the failover took over" : "");
		return rc;
	}
	if (rc == 0 && !*id)
		return sr_err(SITEREC_ENOTFOUND, "failover: VM %s: no recovery point fits the choice (%s)", f->vm,
		              how == SITEREC_POINT_LATEST_APP ? "no app-consistent point"
		              : how == SITEREC_POINT_LATEST_PROCESSED ? "the processed point is gone"
		              : how == SITEREC_POINT_ID ? "no such id" : "no point");
	if (rc == 0 && (rc = siterec_rp_find(f->cat, *id, &p)) == 0)
		*time_ms = p.cut_time_ms;
	return rc;
}

static int step_start(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc;
	uint32_t type = type_of(doc);
	int rc = 0;
	if (type == SITEREC_FAILOVER_PLANNED && !j_u64(doc, "final_point")) {
		if (!f->o.replication || !f->o.shutdown)
			return sr_err(SITEREC_ESTATE, "failover: the planned failover of %s has not shipped its last "
			              "writes: it needs the source's replication handle and shutdown callback "
			              "(or cancel it)", f->vm);
		if (!j_true(doc, "shutdown_called")) {
			j_set_bool(doc, "shutdown_called", 1);
			j_set_i64(doc, "shutdown_ms", now_ms());
			if ((rc = slot_save(f, k)) != 0)
				return rc;
		}
		sr_log(SITEREC_LOG_INFO, "failover of %s: shutting the source VM down", f->vm);
		int cb = f->o.shutdown(f->vm, f->o.payload);
		if (cb)
			return cb_fail(cb, "the shutdown callback", f);
		sr_log(SITEREC_LOG_INFO, "failover of %s: source off; shipping its last writes", f->vm);
		/* the source is off: one cycle ships every write it made */
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		if ((rc = siterec_replication_cycle(f->o.replication, &res)) != 0)
			return rc;
		uint64_t last = 0;
		if ((rc = siterec_rp_refresh(f->cat)) || (rc = newest_id(f, UINT64_MAX, 0, &last)))
			return rc;
		j_set_u64(doc, "final_point", last);
		if ((rc = slot_save(f, k)) != 0)
			return rc;
	}
	if (type != SITEREC_FAILOVER_TEST && !j_true(doc, "taken_over") && (rc = take_over(f, k)) != 0)
		return rc;
	uint64_t limit = type == SITEREC_FAILOVER_TEST ? UINT64_MAX : j_u64(doc, "fence_id"), id = 0;
	int64_t t = 0;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "point");
	if (type == SITEREC_FAILOVER_PLANNED) {
		id = j_u64(doc, "final_point");
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		if ((rc = siterec_rp_find(f->cat, id, &p)) != 0)
			return rc;
		t = p.cut_time_ms;
	} else if ((rc = choose(f, c, limit, &id, &t)) != 0) {
		return rc;
	}
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	sr_repl_view *v = sr_calloc(1, sizeof(*v));
	if (!v)
		return sr_err(SITEREC_ENOMEM, "failover: out of memory");
	if ((rc = siterec_rp_find(f->cat, id, &p)) == 0)
		rc = sr_repl_view_read(f->o.store, f->vm, v);
	/* the processed point is the replicas' base snapshots: copied as they are, no log
	 * to apply (when the replicator moved on meanwhile, the point's own content) */
	int plain = rc == 0 && j_num(c, "how") == SITEREC_POINT_LATEST_PROCESSED && v->applied_point == id;
	cJSON *disks = cJSON_CreateArray();
	if (rc == 0 && !disks)
		rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
	for (uint32_t j = 0; rc == 0 && j < p.n_disks; j++) {
		const sr_repl_disk *rd = NULL;
		for (uint32_t i = 0; i < v->n_disks; i++)
			if (strcmp(v->disks[i].replica, p.disks[j].disk) == 0)
				rd = &v->disks[i];
		if (!rd) {
			rc = sr_err(SITEREC_ECORRUPT, "failover: point %" PRIu64 " names disk %s, which the "
			            "replication state of %s does not", id, p.disks[j].disk, f->vm);
			break;
		}
		char obj[4200];
		output_name(f, doc, rd->id, obj, sizeof(obj));
		cJSON *e = cJSON_CreateObject();
		if (!e) {
			rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
			break;
		}
		cJSON_AddItemToArray(disks, e);
		j_set_str(e, "id", rd->id);
		j_set_str(e, "replica", rd->replica);
		j_set_bool(e, "plain", plain && rd->base[0]);
		j_set_str(e, "snapshot", plain && rd->base[0] ? rd->base : p.disks[j].snapshot);
		j_set_num(e, "index", j);
		j_set_u64(e, "size", rd->size);
		j_set_num(e, "role", rd->role);
		j_set_str(e, "object", obj);
		j_set_bool(e, "done", 0);
	}
	sr_free(v);
	if (rc) {
		cJSON_Delete(disks);
		return rc;
	}
	sr_log(SITEREC_LOG_INFO, "failover of %s: recovery point %" PRIu64 " (%u disk(s))", f->vm, id, p.n_disks);
	j_put(doc, "disks", disks);
	j_set_u64(doc, "point_id", id);
	j_set_i64(doc, "point_time_ms", t);
	set_phase(doc, SITEREC_FO_MATERIALISING);
	return slot_save(f, k);
}

/* Restore writes: a blob writer is finished before a write goes back (a later
 * log over an earlier one must land after it); a file output is clipped to the
 * disk (a replica on Azure carries a VHD footer past it). */
typedef struct out_ctx {
	siterec_store_writer *w;
	siterec_disk *disk;
	uint64_t size, hi, bytes;
	int err;             /* a write's own failure (restore reports it as EABORTED) */
	char msg[512];
} out_ctx;

static int out_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	out_ctx *c = payload;
	int rc = 0;
	c->bytes += len;
	if (c->w) {
		if (off < c->hi)
			rc = siterec_store_writer_finish(c->w);
		c->hi = off + len;
		if (rc == 0)
			rc = siterec_store_writer_write(c->w, buf, len, off);
	} else if (off < c->size) {
		if (len > c->size - off)
			len = (size_t)(c->size - off);
		rc = siterec_disk_write(c->disk, buf, len, off);
	}
	if (rc) {
		c->err = rc;
		snprintf(c->msg, sizeof(c->msg), "%s", siterec_error_last()->message);
	}
	return rc;
}

static int materialise(siterec_failover *f, int k, cJSON *e, uint64_t *bytes, int64_t *at_ms)
{
	const cJSON *doc = f->s[k].doc, *rq = cJSON_GetObjectItemCaseSensitive(doc, "request");
	const char *obj = j_str(e, "object"), *replica = j_str(e, "replica"), *snap = j_str(e, "snapshot");
	uint64_t size = j_u64(e, "size");
	out_ctx c = { .size = size };
	int rc = 0;
	if (blob_output(doc)) {
		uint64_t bsize = 0;
		rc = siterec_store_disk_delete(f->o.store, obj, SITEREC_STORE_DELETE_SNAPSHOTS, NULL);
		if (rc == SITEREC_ENOTFOUND) {
			siterec_error_clear();
			rc = 0;
		}
		if (rc == 0)
			rc = siterec_store_disk_size(f->o.store, replica, snap, &bsize);
		if (rc == 0)
			rc = siterec_store_disk_create(f->o.store, obj, bsize);
		if (rc == 0)
			rc = siterec_store_writer_open(&c.w, f->o.store, obj, NULL);
	} else {
		const char *dir = j_str(rq, "disk_dir");
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return sr_err_os(sr_errno_code(errno), errno, "failover: cannot create disk_dir %s", dir);
		if (unlink(obj) != 0 && errno != ENOENT)
			return sr_err_os(sr_errno_code(errno), errno, "failover: cannot remove %s", obj);
		siterec_disk_create_options dco;
		siterec_disk_create_options_init(&dco, SITEREC_DISK_CREATE_OPTIONS_VERSION);
		dco.format = j_num(rq, "output") == SITEREC_OUTPUT_RAW ? SITEREC_DISK_FORMAT_RAW : SITEREC_DISK_FORMAT_VHD;
		rc = siterec_disk_create(&c.disk, obj, size, &dco);
	}
	if (rc == 0) {
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(doc, "point");
		uint32_t idx = j_num(e, "index");
		if (j_true(e, "plain"))
			rc = sr_rp_restore_snapshot(f->cat, replica, snap, out_write, &c, f->o.progress,
			                            f->o.progress_payload);
		else if (j_num(ch, "how") == SITEREC_POINT_TIME)
			rc = siterec_rp_restore_at(f->cat, j_i64(ch, "time_ms"), idx, 0, out_write, &c, at_ms);
		else
			rc = siterec_rp_restore(f->cat, j_u64(doc, "point_id"), idx, 0, out_write, &c,
			                        f->o.progress, f->o.progress_payload);
		if (rc == SITEREC_EABORTED && c.err)
			rc = sr_err(c.err, "%s", c.msg);   /* the write's own error, not "aborted" */
	}
	if (rc == 0 && c.w)
		rc = siterec_store_writer_finish(c.w);
	if (rc == 0 && c.disk)
		rc = siterec_disk_flush(c.disk);
	siterec_store_writer_free(c.w);
	siterec_disk_free(c.disk);
	*bytes = c.bytes;
	return rc;
}

static int step_disks(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc, *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks");
	int rc = 0;
	int64_t at = 0;
	for (int i = 0; rc == 0 && i < cJSON_GetArraySize(disks); i++) {
		cJSON *e = cJSON_GetArrayItem(disks, i);
		if (j_true(e, "done"))
			continue;
		uint64_t bytes = 0;
		int64_t at_i = 0;
		if ((rc = materialise(f, k, e, &bytes, &at_i)) != 0)
			break;
		at = at_i > at ? at_i : at;
		sr_log(SITEREC_LOG_INFO, "failover of %s: disk %s made: %s (%" PRIu64 " bytes written)", f->vm,
		       j_str(e, "id"), j_str(e, "object"), bytes);
		j_set_bool(e, "done", 1);
		j_set_u64(doc, "bytes_written", j_u64(doc, "bytes_written") + bytes);
		if (at && j_num(cJSON_GetObjectItemCaseSensitive(doc, "point"), "how") == SITEREC_POINT_TIME &&
		    at > j_i64(doc, "restored_ms"))
			j_set_i64(doc, "restored_ms", at);   /* the instant actually restored */
		rc = slot_save(f, k);
	}
	if (rc == 0) {
		if (j_i64(doc, "restored_ms"))
			j_set_i64(doc, "point_time_ms", j_i64(doc, "restored_ms"));
		set_phase(doc, SITEREC_FO_STARTING_VM);
		j_set_bool(doc, "vm_called", 1);   /* from here a VM may exist: cancel removes it */
		rc = slot_save(f, k);
	}
	return rc;
}

static int step_vm(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc;
	sr_log(SITEREC_LOG_INFO, "failover of %s: starting the target VM %s", f->vm, j_str(doc, "vm_name"));
	int rc = vm_call(f, k, 1);
	if (rc == 0) {
		j_set_i64(doc, "vm_started_ms", now_ms());
		set_phase(doc, SITEREC_FO_FAILED_OVER);
		rc = slot_save(f, k);
	}
	return rc;
}

/* Remove the VM (when one may exist) and every disk output. */
int undo_outputs(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc, *disks = cJSON_GetObjectItemCaseSensitive(doc, "disks");
	int rc = 0;
	if (j_true(doc, "vm_called")) {
		sr_log(SITEREC_LOG_INFO, "failover of %s: removing the target VM %s", f->vm, j_str(doc, "vm_name"));
		if ((rc = vm_call(f, k, 0)) != 0)
			return rc;
		j_set_bool(doc, "vm_called", 0);
		if ((rc = slot_save(f, k)) != 0)
			return rc;
	}
	for (int i = 0; rc == 0 && i < cJSON_GetArraySize(disks); i++) {
		const char *obj = j_str(cJSON_GetArrayItem(disks, i), "object");
		if (blob_output(doc)) {
			rc = siterec_store_disk_delete(f->o.store, obj, SITEREC_STORE_DELETE_SNAPSHOTS, NULL);
			if (rc == SITEREC_ENOTFOUND) {
				siterec_error_clear();
				rc = 0;
			}
		} else if (unlink(obj) != 0 && errno != ENOENT) {
			rc = sr_err_os(sr_errno_code(errno), errno, "failover: cannot remove %s", obj);
		}
	}
	return rc;
}

static int step_change(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc;
	int rc = undo_outputs(f, k);
	if (rc == 0) {
		j_put(doc, "disks", cJSON_CreateArray());
		j_set_u64(doc, "point_id", 0);
		j_set_i64(doc, "point_time_ms", 0);
		j_set_i64(doc, "restored_ms", 0);
		j_set_i64(doc, "vm_started_ms", 0);
		set_phase(doc, SITEREC_FO_STARTING);
		rc = slot_save(f, k);
	}
	return rc;
}

static int step_commit(siterec_failover *f, int k)
{
	cJSON *doc = f->s[k].doc;
	uint64_t keep = j_u64(doc, "point_id"), n = 0, m = 0;
	int rc = siterec_rp_refresh(f->cat);
	if (rc == 0)
		rc = siterec_rp_count(f->cat, &n);
	uint64_t *ids = rc || !n ? NULL : sr_calloc((size_t)n, sizeof(uint64_t));
	if (rc == 0 && n && !ids)
		rc = sr_err(SITEREC_ENOMEM, "failover: out of memory");
	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		if ((rc = siterec_rp_get(f->cat, i, &p)) == 0 && p.id != keep)
			ids[m++] = p.id;
	}
	if (rc == 0 && m) {
		sr_log(SITEREC_LOG_INFO, "failover of %s: commit: deleting the %" PRIu64 " other point(s)", f->vm, m);
		rc = siterec_rp_delete(f->cat, ids, (size_t)m, NULL);
	}
	sr_free(ids);
	if (rc == 0) {
		set_phase(doc, SITEREC_FO_COMMITTED);
		j_set_i64(doc, "committed_ms", now_ms());
		rc = slot_save(f, k);
	}
	return rc;
}

static int step_cancel(siterec_failover *f, int k)
{
	slot *s = &f->s[k];
	cJSON *doc = s->doc;
	int rc = undo_outputs(f, k);
	if (rc == 0 && j_true(doc, "taken_over")) {
		sr_repl_view *v = sr_calloc(1, sizeof(*v));
		rc = v ? sr_repl_view_read(f->o.store, f->vm, v) : sr_err(SITEREC_ENOMEM, "failover: out of memory");
		for (uint32_t i = 0; rc == 0 && i < v->n_disks; i++) {
			rc = siterec_store_lease_release(f->o.store, v->disks[i].replica, j_str(doc, "lease"));
			if (rc == SITEREC_ELEASE || rc == SITEREC_ENOTFOUND) {   /* released already */
				siterec_error_clear();
				rc = 0;
			}
		}
		if (rc == 0 && v->state == SITEREC_REPL_FAILED_OVER) {
			uint32_t before = j_num(doc, "repl_state_before");
			sr_log(SITEREC_LOG_INFO, "failover of %s: cancelled; replication may go on", f->vm);
			rc = sr_repl_view_set_state(f->o.store, f->vm, v->generation,
			                            before ? before : SITEREC_REPL_PROTECTED, "");
		}
		sr_free(v);
	} else if (rc == 0 && type_of(doc) != SITEREC_FAILOVER_TEST && cJSON_IsNumber(
	                   cJSON_GetObjectItemCaseSensitive(doc, "repl_state_before"))) {
		/* cut short between recording the state before and taking over: put it back if moved */
		sr_repl_view *v = sr_calloc(1, sizeof(*v));
		rc = v ? sr_repl_view_read(f->o.store, f->vm, v) : sr_err(SITEREC_ENOMEM, "failover: out of memory");
		if (rc == 0 && v->state == SITEREC_REPL_FAILED_OVER)
			rc = sr_repl_view_set_state(f->o.store, f->vm, v->generation,
			                            j_num(doc, "repl_state_before"), "");
		sr_free(v);
	}
	if (rc == 0) {
		rc = siterec_store_doc_delete(f->o.store, s->name, s->etag);
		if (rc == SITEREC_ECONFLICT)
			rc = sr_err(SITEREC_ECONFLICT, "failover: %s was changed by another host meanwhile", s->name);
	}
	if (rc == 0) {
		cJSON_Delete(s->doc);
		s->doc = NULL;
		s->etag[0] = '\0';
	}
	return rc;
}

/* Drive slot k from its phase to a stable one (failed over, committed, gone). */
static int advance(siterec_failover *f, int k)
{
	for (;;) {
		if (!f->s[k].doc)
			return 0;
		int rc;
		if (k == SLOT_FB) {
			int stable = 0;
			if ((rc = fb_step(f, phase_of(f->s[k].doc), &stable)) != 0 || stable)
				return rc;
			continue;
		}
		switch (phase_of(f->s[k].doc)) {
		case SITEREC_FO_STARTING: rc = step_start(f, k); break;
		case SITEREC_FO_MATERIALISING: rc = step_disks(f, k); break;
		case SITEREC_FO_STARTING_VM: rc = step_vm(f, k); break;
		case SITEREC_FO_CHANGING: rc = step_change(f, k); break;
		case SITEREC_FO_COMMITTING: rc = step_commit(f, k); break;
		case SITEREC_FO_CANCELLING: rc = step_cancel(f, k); break;
		default: return 0;
		}
		if (rc)
			return rc;
	}
}

/* ---- the calls ---- */

int check_f(const siterec_failover *f, const char *what)
{
	return f ? 0 : sr_err(SITEREC_EINVAL, "%s: handle is NULL", what);
}

SITEREC_API int siterec_failover_test(siterec_failover *f, const siterec_failover_request *req)
{
	int rc = check_f(f, "test failover");
	if (rc || (rc = slot_load(f, SLOT_TEST)) != 0)
		return rc;
	if (req && req->type != 0 && req->type != SITEREC_FAILOVER_TEST)
		return sr_err(SITEREC_EINVAL, "test failover: request type %u is not TEST", req->type);
	if (f->s[SLOT_TEST].doc)
		return sr_err(SITEREC_EEXISTS, "test failover: VM %s has a test failover already (%s): clean it "
		              "up first", f->vm, fo_phase_names[phase_of(f->s[SLOT_TEST].doc)]);
	if ((rc = op_create(f, SLOT_TEST, SITEREC_FAILOVER_TEST, req)) != 0)
		return rc;
	return advance(f, SLOT_TEST);
}

/* Cancel (a test failover: clean up) slot k: record the phase, then drive it. */
static int cancel_slot(siterec_failover *f, int k, const char *what)
{
	int rc = check_f(f, what);
	if (rc || (rc = slot_load(f, k)) != 0)
		return rc;
	if (!f->s[k].doc)
		return sr_err(SITEREC_ENOTFOUND, "%s: VM %s has no %s", what, f->vm,
		              k == SLOT_TEST ? "test failover" : "failover");
	uint32_t ph = phase_of(f->s[k].doc);
	if (ph == SITEREC_FO_COMMITTING || ph == SITEREC_FO_COMMITTED)
		return sr_err(SITEREC_ESTATE, "%s: the failover of %s is %s: it cannot be cancelled", what, f->vm,
		              fo_phase_names[ph]);
	if (ph != SITEREC_FO_CANCELLING) {
		set_phase(f->s[k].doc, SITEREC_FO_CANCELLING);
		if ((rc = slot_save(f, k)) != 0)
			return rc;
	}
	return advance(f, k);
}

SITEREC_API int siterec_failover_test_cleanup(siterec_failover *f)
{
	return cancel_slot(f, SLOT_TEST, "test failover cleanup");
}

SITEREC_API int siterec_failover_run(siterec_failover *f, const siterec_failover_request *req)
{
	int rc = check_f(f, "failover");
	if (rc)
		return rc;
	if (!req)
		return sr_err(SITEREC_EINVAL, "failover: the request is NULL");
	if (req->version < 1)
		return sr_err(SITEREC_EVERSION, "failover: request version %u is not supported", req->version);
	uint32_t type = req->type;
	if (type != SITEREC_FAILOVER_PLANNED && type != SITEREC_FAILOVER_UNPLANNED)
		return sr_err(SITEREC_EINVAL, "failover: type %u is not PLANNED or UNPLANNED (a test failover is "
		              "siterec_failover_test)", type);
	if (type == SITEREC_FAILOVER_PLANNED && (!f->o.replication || !f->o.shutdown))
		return sr_err(SITEREC_EINVAL, "failover: a planned failover needs the source's replication "
		              "handle and the shutdown callback in the options");
	if ((rc = slot_load(f, SLOT_FO)) != 0)
		return rc;
	if (f->s[SLOT_FO].doc)
		return sr_err(SITEREC_EEXISTS, "failover: VM %s has a %s failover already (%s): %s", f->vm,
		              fo_type_names[type_of(f->s[SLOT_FO].doc)], fo_phase_names[phase_of(f->s[SLOT_FO].doc)],
		              phase_of(f->s[SLOT_FO].doc) == SITEREC_FO_COMMITTED ? "it is committed"
		              : "resume, commit or cancel it first");
	if ((rc = op_create(f, SLOT_FO, type, req)) != 0)
		return rc;
	return advance(f, SLOT_FO);
}

#define PH(p) (1u << (p))

/* Load the failover slot and check it is in one of the phases allowed (a PH() mask). */
static int fo_in(siterec_failover *f, const char *what, uint32_t allowed)
{
	int rc = slot_load(f, SLOT_FO);
	if (rc)
		return rc;
	if (!f->s[SLOT_FO].doc)
		return sr_err(SITEREC_ENOTFOUND, "%s: VM %s has no failover", what, f->vm);
	uint32_t ph = phase_of(f->s[SLOT_FO].doc);
	if (!(allowed & PH(ph)))
		return sr_err(SITEREC_ESTATE, "%s: the failover of %s is %s", what, f->vm, fo_phase_names[ph]);
	return 0;
}

SITEREC_API int siterec_failover_change_point(siterec_failover *f, const siterec_point_choice *point)
{
	int rc = check_f(f, "change point");
	if (rc || (rc = choice_ok(point)) != 0 ||
	    (rc = fo_in(f, "change point", PH(SITEREC_FO_FAILED_OVER) | PH(SITEREC_FO_CHANGING) |
	                                  PH(SITEREC_FO_STARTING))) != 0)
		return rc;
	cJSON *doc = f->s[SLOT_FO].doc;
	choice_put(doc, point);
	set_phase(doc, SITEREC_FO_CHANGING);
	if ((rc = slot_save(f, SLOT_FO)) != 0)
		return rc;
	return advance(f, SLOT_FO);
}

SITEREC_API int siterec_failover_commit(siterec_failover *f)
{
	int rc = check_f(f, "commit");
	if (rc || (rc = slot_load(f, SLOT_FO)) != 0)
		return rc;
	if (f->s[SLOT_FO].doc && phase_of(f->s[SLOT_FO].doc) == SITEREC_FO_COMMITTED)
		return 0;   /* done already (a script may commit twice) */
	if ((rc = fo_in(f, "commit", PH(SITEREC_FO_FAILED_OVER) | PH(SITEREC_FO_COMMITTING))) != 0)
		return rc;
	set_phase(f->s[SLOT_FO].doc, SITEREC_FO_COMMITTING);
	if ((rc = slot_save(f, SLOT_FO)) != 0)
		return rc;
	return advance(f, SLOT_FO);
}

SITEREC_API int siterec_failover_cancel(siterec_failover *f)
{
	return cancel_slot(f, SLOT_FO, "cancel");
}

SITEREC_API int siterec_failover_resume(siterec_failover *f, uint32_t *resumed)
{
	int rc = check_f(f, "failover resume");
	if (resumed)
		*resumed = 0;
	for (int k = 0; rc == 0 && k < 3; k++) {
		if ((rc = slot_load(f, k)) != 0 || !f->s[k].doc)
			continue;
		uint32_t ph = phase_of(f->s[k].doc);
		if (ph == SITEREC_FO_FAILED_OVER || ph == SITEREC_FO_COMMITTED)
			continue;
		rc = advance(f, k);
		if (rc == 0 && resumed)
			(*resumed)++;
	}
	return rc;
}

SITEREC_API int siterec_failover_status_get(siterec_failover *f, uint32_t type, siterec_failover_status *st)
{
	if (!f || !st)
		return sr_err(SITEREC_EINVAL, "failover status: handle or status is NULL");
	if (st->version < 1)
		return sr_err(SITEREC_EVERSION, "failover status: version %u is not supported", st->version);
	if (type < SITEREC_FAILOVER_TEST || type > SITEREC_FAILOVER_FAILBACK)
		return sr_err(SITEREC_EINVAL, "failover status: type %u is not a failover type", type);
	int k = type == SITEREC_FAILOVER_TEST ? SLOT_TEST : type == SITEREC_FAILOVER_FAILBACK ? SLOT_FB : SLOT_FO;
	int rc = slot_load(f, k);
	if (rc)
		return rc;
	const cJSON *doc = f->s[k].doc;
	siterec_failover_status s;
	memset(&s, 0, sizeof(s));
	s.version = SITEREC_FAILOVER_STATUS_VERSION;
	if (doc) {
		s.type = type_of(doc);
		s.phase = phase_of(doc);
		s.n_disks = (uint32_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "disks"));
		s.generation = j_u64(doc, "generation");
		s.point_id = j_u64(doc, "point_id");
		s.point_time_ms = j_i64(doc, "point_time_ms");
		s.fence_id = j_u64(doc, "fence_id");
		s.bytes_written = j_u64(doc, "bytes_written");
		s.started_ms = j_i64(doc, "started_ms");
		s.shutdown_ms = j_i64(doc, "shutdown_ms");
		s.vm_started_ms = j_i64(doc, "vm_started_ms");
		snprintf(s.vm_name, sizeof(s.vm_name), "%s", j_str(doc, "vm_name") ? j_str(doc, "vm_name") : "");
		s.bytes_differing = j_u64(doc, "bytes_differing");
		s.bytes_delta = j_u64(doc, "bytes_delta");
	}
	memcpy(st, &s, sizeof(s));
	return 0;
}
