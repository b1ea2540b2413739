/* Recovery plans (failover.h, "recovery plans"): ordered groups of machines
 * failed over (or cleaned up, committed, ...) together, with actions between
 * the groups.
 *
 * The plan document (doc/formats.md, "Recovery plan") is parsed and checked
 * once, in siterec_plan_open(), into per-machine requests whose strings point
 * into the kept cJSON tree. A run is a cursor (group, stage before / machines /
 * after, next action) plus each machine's result, written to the local state
 * file with sr_file_replace() after every step and before any step whose
 * effect must survive a crash (an action being started, a pause); resume reads
 * it back and goes on from the cursor, so a run and a resume drive the same
 * loop. The machines of a group run on worker threads; only the calling thread
 * reports events and writes the state file. The library's failover calls are
 * the only thing the machines' operations use, so the plan layer holds no
 * target state of its own: what a machine still needs is decided from its
 * failover status (rules at machine_op()). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "siterec/failover.h"
#include "siterec/rp.h"

extern char **environ;

#define PL_DOC_MAX (16u << 20)
#define PL_STATE_MAX (4u << 20)
#define PL_MAX_GROUPS 64
#define PL_MAX_MACHINES 1000
#define PL_MAX_ACTIONS 64
#define PL_MAX_NICS 32
#define PL_MAX_NETWORKS 256
#define PL_MAX_SUBNETS 256
#define PL_MAX_FB_DISKS 64
#define PL_OUTPUT_MAX (64u * 1024)
#define PL_TERM_GRACE_MS 5000

static const size_t pl_opt_sizes[] = { 0, sizeof(siterec_plan_options) };

enum { ST_BEFORE = 0, ST_MACHINES = 1, ST_AFTER = 2 };
enum { MR_PENDING = 0, MR_DONE = 1, MR_FAILED = 2 };
enum { ACT_SCRIPT = 1, ACT_MANUAL = 2, ACT_CALLBACK = 3 };

static const char *const op_names[] = { NULL, "test", "cleanup", "planned", "unplanned",
	                                "commit", "failback", "cancel" };
#define N_OPS 8
static const char *const state_names[] = { "idle", "running", "paused", "done", "failed" };
static const char *const stage_names[] = { "before", "machines", "after" };

typedef struct pl_action {
	uint32_t type;
	uint32_t ops;          /* bit 1 << op; all when the plan gives no "ops" */
	uint32_t timeout_s;
	const char *name, *command, *text;
} pl_action;

typedef struct pl_group {
	const char *name;
	uint32_t first, n;     /* its machines: p->m[first .. first + n) */
	uint32_t n_before, n_after;
	pl_action *before, *after;
} pl_group;

typedef struct pl_machine {
	const char *vm;
	const char *state_dir;                 /* for the caller (replication callback); unused here */
	uint32_t group;
	int latest;                            /* point "latest": a common cut applies */
	int has_failback;
	siterec_failover_request req;
	siterec_failback_request fb;
	siterec_nic *nics;
	siterec_network_map *maps;
	const char **subnets;
	siterec_failback_disk *fb_disks;
} pl_machine;

typedef struct pl_run {
	uint32_t op, state, group, stage, action, action_started;
	int64_t started_ms, common_time_ms;
	char paused_at[128];
	char error[256];
	uint8_t *mres;                         /* MR_* per machine */
} pl_run;

struct siterec_plan {
	siterec_plan_options o;
	siterec_store_options so;              /* a copy; its strings owned */
	int have_so;
	char *url, *state_path;
	cJSON *doc;
	const char *name;
	int common_cut;
	uint32_t n_groups, n_machines, m_cap;
	pl_group *g;
	pl_machine *m;
	pl_run r;
	int resumed;                           /* the run is being resumed: machines check their status first */
	int stop;                              /* the event callback asked to stop */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_str(const char *s)
{
	return s ? sr_strdup(s) : NULL;
}

/* ---- the document ---- */

static const cJSON *item(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* Every key of object o is one of keys[] (NULL-terminated). */
static int keys_ok(const cJSON *o, const char *const *keys, const char *place)
{
	for (const cJSON *c = o->child; c; c = c->next) {
		size_t i = 0;
		while (keys[i] && strcmp(keys[i], c->string ? c->string : "") != 0)
			i++;
		if (!keys[i])
			return sr_err(SITEREC_EINVAL, "plan: %s: unknown field \"%.64s\"", place,
			              c->string ? c->string : "");
	}
	return 0;
}

/* [A-Za-z0-9._-], 1..64 (the plan's name and VM ids: they go into file and
 * document names); a VM id does not start with '.'. */
static int id_ok(const char *s, int vm)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64 || (vm && s[0] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Group and action names: 1..64 bytes, no control characters (they reach
 * scripts' environment and the caller's output). */
static int label_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* An optional string field: NULL when absent, EINVAL when not a string. */
static int opt_str(const cJSON *o, const char *k, const char *place, const char **out)
{
	const cJSON *n = item(o, k);
	*out = NULL;
	if (!n)
		return 0;
	if (!cJSON_IsString(n) || !n->valuestring[0])
		return sr_err(SITEREC_EINVAL, "plan: %s: \"%s\" is not a non-empty string", place, k);
	*out = n->valuestring;
	return 0;
}

static int dec_u64(const char *s, uint64_t *v)
{
	if (!s || !*s || strlen(s) > 19)
		return -1;
	uint64_t x = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		x = x * 10 + (uint64_t)(*c - '0');
	}
	*v = x;
	return 0;
}

static uint32_t op_index(const char *s)
{
	for (uint32_t i = 1; s && i < N_OPS; i++)
		if (strcmp(op_names[i], s) == 0)
			return i;
	return 0;
}

static const char *const machine_keys[] = { "vm", "name", "disk_dir", "format", "target", "size", "os",
	                                    "location", "nics", "networks", "test_network", "test_subnet",
	                                    "point", "failback", "state_dir", NULL };

/* The field k of a machine, else of the defaults. */
static const cJSON *mfield(const cJSON *m, const cJSON *d, const char *k)
{
	const cJSON *n = item(m, k);
	return n ? n : d ? item(d, k) : NULL;
}

static int parse_point(const cJSON *n, const char *place, pl_machine *pm)
{
	siterec_point_choice *c = &pm->req.point;
	uint64_t v;
	c->how = SITEREC_POINT_LATEST;
	if (!n)
		return 0;
	if (cJSON_IsString(n)) {
		const char *s = n->valuestring;
		if (!strcmp(s, "latest"))
			c->how = SITEREC_POINT_LATEST;
		else if (!strcmp(s, "processed"))
			c->how = SITEREC_POINT_LATEST_PROCESSED;
		else if (!strcmp(s, "app"))
			c->how = SITEREC_POINT_LATEST_APP;
		else if (dec_u64(s, &v) == 0 && v > 0) {
			c->how = SITEREC_POINT_ID;
			c->id = v;
		} else
			return sr_err(SITEREC_EINVAL, "plan: %s: \"point\" \"%.64s\" is not latest, processed, app, "
			              "an id or {\"time_ms\":\"MS\"}", place, s);
		return 0;
	}
	const cJSON *t = cJSON_IsObject(n) ? item(n, "time_ms") : NULL;
	static const char *const tk[] = { "time_ms", NULL };
	if (!t || !cJSON_IsString(t) || dec_u64(t->valuestring, &v) != 0 || v == 0 || v > INT64_MAX ||
	    keys_ok(n, tk, place))
		return sr_err(SITEREC_EINVAL, "plan: %s: \"point\" is not latest, processed, app, an id or "
		              "{\"time_ms\":\"MS\"} (ms as a decimal string)", place);
	c->how = SITEREC_POINT_TIME;
	c->time_ms = (int64_t)v;
	return 0;
}

static int parse_nics(const cJSON *n, const char *place, pl_machine *pm)
{
	if (!n)
		return 0;
	int cnt = cJSON_IsArray(n) ? cJSON_GetArraySize(n) : -1;
	if (cnt < 0 || cnt > PL_MAX_NICS)
		return sr_err(SITEREC_EINVAL, "plan: %s: \"nics\" is not an array of at most %d NICs", place,
		              PL_MAX_NICS);
	if (cnt && !(pm->nics = sr_calloc((size_t)cnt, sizeof(*pm->nics))))
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	static const char *const keys[] = { "network", "subnet", "ip", NULL };
	int i = 0, rc;
	char pl[200];
	for (const cJSON *e = n->child; e; e = e->next, i++) {
		snprintf(pl, sizeof(pl), "%s: nics[%d]", place, i);
		if (!cJSON_IsObject(e))
			return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pl);
		siterec_nic *x = &pm->nics[i];
		if ((rc = keys_ok(e, keys, pl)) || (rc = opt_str(e, "network", pl, &x->network)) ||
		    (rc = opt_str(e, "subnet", pl, &x->subnet)) || (rc = opt_str(e, "ip", pl, &x->ip)))
			return rc;
		if (!x->network)
			return sr_err(SITEREC_EINVAL, "plan: %s: \"network\" is required", pl);
	}
	pm->req.n_nics = (uint32_t)cnt;
	pm->req.nics = pm->nics;
	return 0;
}

static int parse_networks(const cJSON *n, const char *place, pl_machine *pm)
{
	if (!n)
		return 0;
	int cnt = cJSON_IsArray(n) ? cJSON_GetArraySize(n) : -1;
	if (cnt < 0 || cnt > PL_MAX_NETWORKS)
		return sr_err(SITEREC_EINVAL, "plan: %s: \"networks\" is not an array of at most %d maps", place,
		              PL_MAX_NETWORKS);
	size_t total = 0;
	for (const cJSON *e = n->child; e; e = e->next)
		total += (size_t)cJSON_GetArraySize(item(e, "subnets"));
	if (cnt && (!(pm->maps = sr_calloc((size_t)cnt, sizeof(*pm->maps))) ||
	            !(pm->subnets = sr_calloc(total ? total : 1, sizeof(*pm->subnets)))))
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	static const char *const keys[] = { "source", "target", "subnets", NULL };
	int i = 0, rc;
	size_t used = 0;
	char pl[200];
	for (const cJSON *e = n->child; e; e = e->next, i++) {
		snprintf(pl, sizeof(pl), "%s: networks[%d]", place, i);
		if (!cJSON_IsObject(e))
			return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pl);
		siterec_network_map *x = &pm->maps[i];
		if ((rc = keys_ok(e, keys, pl)) || (rc = opt_str(e, "source", pl, &x->source_network)) ||
		    (rc = opt_str(e, "target", pl, &x->target_network)))
			return rc;
		const cJSON *s = item(e, "subnets");
		int ns = cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
		if (!x->source_network || !x->target_network || ns < 1 || ns > PL_MAX_SUBNETS)
			return sr_err(SITEREC_EINVAL, "plan: %s: \"source\", \"target\" and \"subnets\" (1..%d names) "
			              "are required", pl, PL_MAX_SUBNETS);
		x->subnets = &pm->subnets[used];
		for (const cJSON *sn = s->child; sn; sn = sn->next) {
			if (!cJSON_IsString(sn) || !sn->valuestring[0])
				return sr_err(SITEREC_EINVAL, "plan: %s: a subnet is not a non-empty string", pl);
			pm->subnets[used++] = sn->valuestring;
		}
		x->n_subnets = (uint32_t)ns;
	}
	pm->req.n_networks = (uint32_t)cnt;
	pm->req.networks = pm->maps;
	return 0;
}

static int parse_failback(const cJSON *n, const char *place, pl_machine *pm)
{
	if (!n)
		return 0;
	char pl[200];
	snprintf(pl, sizeof(pl), "%s: failback", place);
	static const char *const keys[] = { "mode", "disks", "journal_dir", "alternate", "block_size",
		                            "vm_name", NULL };
	if (!cJSON_IsObject(n))
		return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pl);
	int rc = keys_ok(n, keys, pl);
	const char *mode = NULL;
	siterec_failback_request *q = &pm->fb;
	siterec_failback_request_init(q, SITEREC_FAILBACK_REQUEST_VERSION);
	if (rc || (rc = opt_str(n, "mode", pl, &mode)) || (rc = opt_str(n, "journal_dir", pl, &q->journal_dir)) ||
	    (rc = opt_str(n, "vm_name", pl, &q->vm_name)))
		return rc;
	if (mode && !strcmp(mode, "minimize-downtime"))
		q->mode = SITEREC_FAILBACK_MINIMIZE_DOWNTIME;
	else if (mode && !strcmp(mode, "full"))
		q->mode = SITEREC_FAILBACK_FULL;
	else
		return sr_err(SITEREC_EINVAL, "plan: %s: \"mode\" is not minimize-downtime or full", pl);
	const cJSON *a = item(n, "alternate"), *b = item(n, "block_size"), *d = item(n, "disks");
	if (a && !cJSON_IsBool(a))
		return sr_err(SITEREC_EINVAL, "plan: %s: \"alternate\" is not true or false", pl);
	if (cJSON_IsTrue(a))
		q->flags |= SITEREC_FAILBACK_ALTERNATE;
	if (b && (!cJSON_IsNumber(b) || b->valuedouble < 0 || b->valuedouble > (1 << 20) ||
	          b->valuedouble != (double)(uint32_t)b->valuedouble))
		return sr_err(SITEREC_EINVAL, "plan: %s: \"block_size\" is not a whole number up to 1 MiB", pl);
	q->block_size = b ? (uint32_t)b->valuedouble : 0;
	int cnt = cJSON_IsArray(d) ? cJSON_GetArraySize(d) : -1;
	if (cnt < 1 || cnt > PL_MAX_FB_DISKS)
		return sr_err(SITEREC_EINVAL, "plan: %s: \"disks\" is not an array of 1..%d disks", pl,
		              PL_MAX_FB_DISKS);
	if (!(pm->fb_disks = sr_calloc((size_t)cnt, sizeof(*pm->fb_disks))))
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	static const char *const dk[] = { "id", "path", NULL };
	int i = 0;
	char pd[240];
	for (const cJSON *e = d->child; e; e = e->next, i++) {
		snprintf(pd, sizeof(pd), "%s: disks[%d]", pl, i);
		if (!cJSON_IsObject(e))
			return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pd);
		if ((rc = keys_ok(e, dk, pd)) || (rc = opt_str(e, "id", pd, &pm->fb_disks[i].id)) ||
		    (rc = opt_str(e, "path", pd, &pm->fb_disks[i].path)))
			return rc;
		if (!pm->fb_disks[i].id || !pm->fb_disks[i].path)
			return sr_err(SITEREC_EINVAL, "plan: %s: \"id\" and \"path\" are required", pd);
	}
	q->n_disks = (uint32_t)cnt;
	q->disks = pm->fb_disks;
	pm->has_failback = 1;
	return 0;
}

/* The machine's request from its fields over the defaults d. */
static int parse_machine(const cJSON *m, const cJSON *d, const char *place, pl_machine *pm)
{
	siterec_failover_request *q = &pm->req;
	siterec_failover_request_init(q, SITEREC_FAILOVER_REQUEST_VERSION);
	static const struct { const char *k; size_t off; } strs[] = {
		{ "name", offsetof(siterec_failover_request, vm_name) },
		{ "disk_dir", offsetof(siterec_failover_request, disk_dir) },
		{ "size", offsetof(siterec_failover_request, vm_size) },
		{ "os", offsetof(siterec_failover_request, os_type) },
		{ "location", offsetof(siterec_failover_request, location) },
		{ "test_network", offsetof(siterec_failover_request, test_network) },
		{ "test_subnet", offsetof(siterec_failover_request, test_subnet) },
	};
	int rc;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *v = NULL;
		const cJSON *src = item(m, strs[i].k) ? m : d;
		if (src && (rc = opt_str(src, strs[i].k, place, &v)) != 0)
			return rc;
		memcpy((char *)q + strs[i].off, &v, sizeof(v));
	}
	const cJSON *src = item(m, "state_dir") ? m : d;
	if (src && (rc = opt_str(src, "state_dir", place, &pm->state_dir)) != 0)
		return rc;
	const cJSON *f = mfield(m, d, "format"), *t = mfield(m, d, "target");
	if (f && !(cJSON_IsString(f) && (!strcmp(f->valuestring, "vhd") || !strcmp(f->valuestring, "raw"))))
		return sr_err(SITEREC_EINVAL, "plan: %s: \"format\" is not vhd or raw", place);
	q->output = f && !strcmp(f->valuestring, "raw") ? SITEREC_OUTPUT_RAW : SITEREC_OUTPUT_VHD;
	if (t && !(cJSON_IsString(t) && (!strcmp(t->valuestring, "azure") || !strcmp(t->valuestring, "hyperv"))))
		return sr_err(SITEREC_EINVAL, "plan: %s: \"target\" is not azure or hyperv", place);
	q->target = t && !strcmp(t->valuestring, "hyperv") ? SITEREC_TARGET_HYPERV : SITEREC_TARGET_AZURE;
	if ((rc = parse_point(mfield(m, d, "point"), place, pm)) != 0 ||
	    (rc = parse_nics(mfield(m, d, "nics"), place, pm)) != 0 ||
	    (rc = parse_networks(mfield(m, d, "networks"), place, pm)) != 0 ||
	    (rc = parse_failback(mfield(m, d, "failback"), place, pm)) != 0)
		return rc;
	pm->latest = q->point.how == SITEREC_POINT_LATEST;
	return 0;
}

static int parse_actions(const cJSON *n, const char *place, const char *which, pl_action **out,
                         uint32_t *count)
{
	*out = NULL;
	*count = 0;
	if (!n)
		return 0;
	int cnt = cJSON_IsArray(n) ? cJSON_GetArraySize(n) : -1;
	if (cnt < 0 || cnt > PL_MAX_ACTIONS)
		return sr_err(SITEREC_EINVAL, "plan: %s: \"%s\" is not an array of at most %d actions", place, which,
		              PL_MAX_ACTIONS);
	if (cnt == 0)
		return 0;
	pl_action *a = sr_calloc((size_t)cnt, sizeof(*a));
	if (!a)
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	*out = a;
	*count = (uint32_t)cnt;
	static const char *const k_script[] = { "type", "name", "command", "timeout_s", "ops", NULL };
	static const char *const k_manual[] = { "type", "name", "text", "ops", NULL };
	static const char *const k_cb[] = { "type", "name", "ops", NULL };
	int i = 0, rc;
	char pl[160];
	for (const cJSON *e = n->child; e; e = e->next, i++, a++) {
		snprintf(pl, sizeof(pl), "%s.%s[%d]", place, which, i);
		const char *type = NULL;
		if (!cJSON_IsObject(e))
			return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pl);
		if ((rc = opt_str(e, "type", pl, &type)) != 0)
			return rc;
		if (type && !strcmp(type, "script"))
			a->type = ACT_SCRIPT;
		else if (type && !strcmp(type, "manual"))
			a->type = ACT_MANUAL;
		else if (type && !strcmp(type, "callback"))
			a->type = ACT_CALLBACK;
		else
			return sr_err(SITEREC_EINVAL, "plan: %s: \"type\" %s%.32s%s is not script, manual or callback",
			              pl, type ? "\"" : "", type ? type : "(missing)", type ? "\"" : "");
		if ((rc = keys_ok(e, a->type == ACT_SCRIPT ? k_script : a->type == ACT_MANUAL ? k_manual : k_cb,
		                  pl)) != 0 ||
		    (rc = opt_str(e, "name", pl, &a->name)) != 0 || (rc = opt_str(e, "command", pl, &a->command)) != 0)
			return rc;
		const cJSON *tx = item(e, "text");
		if (tx && !cJSON_IsString(tx))
			return sr_err(SITEREC_EINVAL, "plan: %s: \"text\" is not a string", pl);
		a->text = tx ? tx->valuestring : "";
		if (!label_ok(a->name))
			return sr_err(SITEREC_EINVAL, "plan: %s: \"name\" is required (1..64 characters, no control "
			              "characters)", pl);
		if (a->type == ACT_SCRIPT && !a->command)
			return sr_err(SITEREC_EINVAL, "plan: %s: a script needs \"command\"", pl);
		const cJSON *to = item(e, "timeout_s");
		if (to && (!cJSON_IsNumber(to) || to->valuedouble < 1 || to->valuedouble > 86400 ||
		           to->valuedouble != (double)(uint32_t)to->valuedouble))
			return sr_err(SITEREC_EINVAL, "plan: %s: \"timeout_s\" is not a whole number 1..86400", pl);
		a->timeout_s = to ? (uint32_t)to->valuedouble : 300;
		const cJSON *ops = item(e, "ops");
		if (!ops) {
			a->ops = ~0u;
			continue;
		}
		if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) < 1)
			return sr_err(SITEREC_EINVAL, "plan: %s: \"ops\" is not a non-empty array of operations", pl);
		for (const cJSON *o = ops->child; o; o = o->next) {
			uint32_t op = cJSON_IsString(o) ? op_index(o->valuestring) : 0;
			if (!op)
				return sr_err(SITEREC_EINVAL, "plan: %s: \"ops\": %s%.32s%s is not test, cleanup, planned, "
				              "unplanned, commit, failback or cancel", pl, cJSON_IsString(o) ? "\"" : "",
				              cJSON_IsString(o) ? o->valuestring : "a non-string", cJSON_IsString(o) ? "\"" : "");
			a->ops |= 1u << op;
		}
	}
	return 0;
}

static int parse_plan(siterec_plan *p)
{
	const cJSON *doc = p->doc;
	if (!cJSON_IsObject(doc))
		return sr_err(SITEREC_EINVAL, "plan: the document is not a JSON object");
	static const char *const top[] = { "format", "version", "name", "common_cut", "defaults", "groups", NULL };
	int rc = keys_ok(doc, top, "document");
	if (rc)
		return rc;
	const cJSON *fmt = item(doc, "format"), *ver = item(doc, "version"), *nm = item(doc, "name"),
	            *cc = item(doc, "common_cut"), *def = item(doc, "defaults"), *gs = item(doc, "groups");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "siterec-plan") != 0)
		return sr_err(SITEREC_EINVAL, "plan: document: \"format\" is not \"siterec-plan\"");
	if (!cJSON_IsNumber(ver))
		return sr_err(SITEREC_EINVAL, "plan: document: \"version\" is missing");
	if (ver->valuedouble != 1)
		return sr_err(SITEREC_EVERSION, "plan: document: version %g is not supported (1 is)", ver->valuedouble);
	if (!cJSON_IsString(nm) || !id_ok(nm->valuestring, 0))
		return sr_err(SITEREC_EINVAL, "plan: document: \"name\" is not 1..64 of [A-Za-z0-9._-]");
	p->name = nm->valuestring;
	if (cc && !cJSON_IsBool(cc))
		return sr_err(SITEREC_EINVAL, "plan: document: \"common_cut\" is not true or false");
	p->common_cut = cJSON_IsTrue(cc);
	if (def && (!cJSON_IsObject(def) || (rc = keys_ok(def, machine_keys + 1, "defaults")) != 0))
		return rc ? rc : sr_err(SITEREC_EINVAL, "plan: defaults: not an object");
	int ng = cJSON_IsArray(gs) ? cJSON_GetArraySize(gs) : -1;
	if (ng < 1 || ng > PL_MAX_GROUPS)
		return sr_err(SITEREC_EINVAL, "plan: document: \"groups\" is not an array of 1..%d groups",
		              PL_MAX_GROUPS);
	/* count the machines first: the limit before any allocation */
	size_t nm_total = 0;
	for (const cJSON *g = gs->child; g; g = g->next)
		nm_total += (size_t)cJSON_GetArraySize(item(g, "machines"));
	if (nm_total < 1 || nm_total > PL_MAX_MACHINES)
		return sr_err(SITEREC_EINVAL, "plan: document: %zu machines (a plan has 1..%d)", nm_total,
		              PL_MAX_MACHINES);
	if (!(p->g = sr_calloc((size_t)ng, sizeof(*p->g))) || !(p->m = sr_calloc(nm_total, sizeof(*p->m))))
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	p->n_groups = (uint32_t)ng;
	p->m_cap = (uint32_t)nm_total;
	static const char *const gkeys[] = { "name", "machines", "before", "after", NULL };
	uint32_t gi = 0, mi = 0;
	char pl[128];
	for (const cJSON *g = gs->child; g; g = g->next, gi++) {
		snprintf(pl, sizeof(pl), "groups[%u]", gi);
		pl_group *G = &p->g[gi];
		if (!cJSON_IsObject(g))
			return sr_err(SITEREC_EINVAL, "plan: %s: not an object", pl);
		if ((rc = keys_ok(g, gkeys, pl)) != 0)
			return rc;
		const cJSON *gn = item(g, "name"), *ms = item(g, "machines");
		if (!cJSON_IsString(gn) || !label_ok(gn->valuestring))
			return sr_err(SITEREC_EINVAL, "plan: %s: \"name\" is required (1..64 characters, no control "
			              "characters)", pl);
		G->name = gn->valuestring;
		for (uint32_t k = 0; k < gi; k++)
			if (!strcmp(p->g[k].name, G->name))
				return sr_err(SITEREC_EINVAL, "plan: %s: group name \"%s\" is also groups[%u]'s", pl, G->name, k);
		if (ms && !cJSON_IsArray(ms))
			return sr_err(SITEREC_EINVAL, "plan: %s: \"machines\" is not an array", pl);
		if ((rc = parse_actions(item(g, "before"), pl, "before", &G->before, &G->n_before)) != 0 ||
		    (rc = parse_actions(item(g, "after"), pl, "after", &G->after, &G->n_after)) != 0)
			return rc;
		G->first = mi;
		int k = 0;
		for (const cJSON *m = ms ? ms->child : NULL; m; m = m->next, k++, mi++) {
			char mp[160];
			snprintf(mp, sizeof(mp), "%s.machines[%d]", pl, k);
			if (!cJSON_IsObject(m))
				return sr_err(SITEREC_EINVAL, "plan: %s: not an object", mp);
			if ((rc = keys_ok(m, machine_keys, mp)) != 0)
				return rc;
			const cJSON *vm = item(m, "vm");
			if (!cJSON_IsString(vm) || !id_ok(vm->valuestring, 1))
				return sr_err(SITEREC_EINVAL, "plan: %s: \"vm\" is not a VM id (1..64 of [A-Za-z0-9._-])", mp);
			for (uint32_t j = 0; j < mi; j++)
				if (!strcmp(p->m[j].vm, vm->valuestring))
					return sr_err(SITEREC_EINVAL, "plan: %s: VM \"%s\" is in the plan twice (also in "
					              "groups[%u])", mp, vm->valuestring, p->m[j].group);
			p->m[mi].vm = vm->valuestring;
			p->m[mi].group = gi;
			if ((rc = parse_machine(m, def, mp, &p->m[mi])) != 0)
				return rc;
		}
		G->n = mi - G->first;
	}
	p->n_machines = mi;
	return 0;
}

/* ---- the state file ---- */

static int state_save(siterec_plan *p)
{
	const pl_run *r = &p->r;
	cJSON *o = cJSON_CreateObject(), *ms = cJSON_CreateObject();
	char b[24];
	if (o && ms) {
		cJSON_AddStringToObject(o, "format", "siterec-plan-state");
		cJSON_AddNumberToObject(o, "version", 1);
		cJSON_AddStringToObject(o, "plan", p->name);
		cJSON_AddStringToObject(o, "op", op_names[r->op]);
		cJSON_AddStringToObject(o, "state", state_names[r->state]);
		cJSON_AddNumberToObject(o, "group", r->group);
		cJSON_AddStringToObject(o, "stage", stage_names[r->stage]);
		cJSON_AddNumberToObject(o, "action", r->action);
		cJSON_AddBoolToObject(o, "action_started", r->action_started);
		snprintf(b, sizeof(b), "%" PRId64, r->common_time_ms);
		cJSON_AddStringToObject(o, "common_time_ms", b);
		snprintf(b, sizeof(b), "%" PRId64, r->started_ms);
		cJSON_AddStringToObject(o, "started_ms", b);
		cJSON_AddStringToObject(o, "paused_at", r->paused_at);
		cJSON_AddStringToObject(o, "error", r->error);
		for (uint32_t i = 0; i < p->n_machines; i++)
			if (r->mres[i] != MR_PENDING)
				cJSON_AddStringToObject(ms, p->m[i].vm, r->mres[i] == MR_DONE ? "done" : "failed");
		cJSON_AddItemToObject(o, "machines", ms);
		ms = NULL;
	}
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	cJSON_Delete(ms);
	if (!text)
		return sr_err(SITEREC_ENOMEM, "plan: out of memory writing the state");
	int rc = sr_file_replace(p->state_path, text, strlen(text));
	cJSON_free(text);
	return rc;
}

static uint32_t name_of(const char *const *names, uint32_t n, const cJSON *v)
{
	for (uint32_t i = 0; cJSON_IsString(v) && i < n; i++)
		if (names[i] && !strcmp(names[i], v->valuestring))
			return i;
	return UINT32_MAX;
}

static int state_load(siterec_plan *p)
{
	void *data = NULL;
	size_t len = 0;
	int rc = sr_file_read_all(p->state_path, PL_STATE_MAX, &data, &len);
	if (rc == SITEREC_ENOTFOUND) {
		siterec_error_clear();
		return 0;   /* no run recorded */
	}
	if (rc)
		return rc;
	cJSON *o = cJSON_ParseWithLength(data, len);
	sr_free(data);
	const cJSON *fmt = item(o, "format"), *ver = item(o, "version"), *nm = item(o, "plan");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "siterec-plan-state") != 0) {
		cJSON_Delete(o);
		return sr_err(SITEREC_ECORRUPT, "plan: %s is not a plan state file", p->state_path);
	}
	if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
		cJSON_Delete(o);
		return sr_err(SITEREC_EVERSION, "plan: %s: state version not supported", p->state_path);
	}
	if (!cJSON_IsString(nm) || strcmp(nm->valuestring, p->name) != 0) {
		rc = sr_err(SITEREC_ECONFLICT, "plan: %s holds a run of plan \"%.64s\", not \"%s\"", p->state_path,
		            cJSON_IsString(nm) ? nm->valuestring : "?", p->name);
		cJSON_Delete(o);
		return rc;
	}
	pl_run *r = &p->r;
	uint32_t op = name_of(op_names, N_OPS, item(o, "op")), st = name_of(state_names, 5, item(o, "state")),
	         sg = name_of(stage_names, 3, item(o, "stage"));
	const cJSON *g = item(o, "group"), *a = item(o, "action"), *ms = item(o, "machines");
	if (op == UINT32_MAX || op == 0 || st == UINT32_MAX || sg == UINT32_MAX || !cJSON_IsNumber(g) ||
	    !cJSON_IsNumber(a) || g->valuedouble < 0 || g->valuedouble > p->n_groups || a->valuedouble < 0 ||
	    a->valuedouble > PL_MAX_ACTIONS || !cJSON_IsObject(ms)) {
		cJSON_Delete(o);
		return sr_err(SITEREC_ECORRUPT, "plan: %s: the state is malformed", p->state_path);
	}
	r->op = op;
	r->state = st;
	r->stage = sg;
	r->group = (uint32_t)g->valuedouble;
	r->action = (uint32_t)a->valuedouble;
	r->action_started = cJSON_IsTrue(item(o, "action_started"));
	const cJSON *v;
	r->common_time_ms = cJSON_IsString(v = item(o, "common_time_ms")) ? strtoll(v->valuestring, NULL, 10) : 0;
	r->started_ms = cJSON_IsString(v = item(o, "started_ms")) ? strtoll(v->valuestring, NULL, 10) : 0;
	snprintf(r->paused_at, sizeof(r->paused_at), "%s",
	         cJSON_IsString(v = item(o, "paused_at")) ? v->valuestring : "");
	snprintf(r->error, sizeof(r->error), "%s", cJSON_IsString(v = item(o, "error")) ? v->valuestring : "");
	for (uint32_t i = 0; i < p->n_machines; i++) {
		v = item(ms, p->m[i].vm);   /* VMs the plan no longer has are ignored */
		r->mres[i] = cJSON_IsString(v) && !strcmp(v->valuestring, "done") ? MR_DONE
		             : cJSON_IsString(v) && !strcmp(v->valuestring, "failed") ? MR_FAILED : MR_PENDING;
	}
	cJSON_Delete(o);
	return 0;
}

/* ---- options, open, free ---- */

SITEREC_API int siterec_plan_options_init(siterec_plan_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, pl_opt_sizes, SITEREC_PLAN_OPTIONS_VERSION, "plan");
}

static void wipe_free(char *s)
{
	if (s) {
		volatile char *v = s;
		while (*v)
			*v++ = 0;
		sr_free(s);
	}
}

SITEREC_API void siterec_plan_free(siterec_plan *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; p->g && i < p->n_groups; i++) {
		sr_free(p->g[i].before);
		sr_free(p->g[i].after);
	}
	for (uint32_t i = 0; p->m && i < p->m_cap; i++) {
		sr_free(p->m[i].nics);
		sr_free(p->m[i].maps);
		sr_free(p->m[i].subnets);
		sr_free(p->m[i].fb_disks);
	}
	sr_free(p->g);
	sr_free(p->m);
	sr_free(p->r.mres);
	cJSON_Delete(p->doc);
	wipe_free((char *)p->so.account_key);
	wipe_free((char *)p->so.sas_token);
	sr_free((char *)p->so.ca_file);
	sr_free(p->url);
	sr_free(p->state_path);
	sr_free(p);
}

SITEREC_API int siterec_plan_open(siterec_plan **out, const char *json, size_t len,
                                  const siterec_plan_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "plan open: out is NULL");
	*out = NULL;
	if (!json || !len || !opts)
		return sr_err(SITEREC_EINVAL, "plan open: the document and the options are required");
	if (len > PL_DOC_MAX)
		return sr_err(SITEREC_EINVAL, "plan open: the document is over %u bytes", PL_DOC_MAX);
	siterec_plan *p = sr_calloc(1, sizeof(*p));
	if (!p)
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	siterec_plan_options_init(&p->o, SITEREC_PLAN_OPTIONS_VERSION);
	int rc = sr_options_copy(&p->o, opts, pl_opt_sizes, SITEREC_PLAN_OPTIONS_VERSION, "plan");
	if (rc == 0 && p->o.flags)
		rc = sr_err(SITEREC_EINVAL, "plan: unknown flags 0x%x", p->o.flags);
	else if (rc == 0 && (!p->o.url || !p->o.state_path || !p->o.state_path[0]))
		rc = sr_err(SITEREC_EINVAL, "plan: url and state_path are required");
	else if (rc == 0 && (!p->o.start || !p->o.remove))
		rc = sr_err(SITEREC_EINVAL, "plan: the start and remove callbacks are required");
	else if (rc == 0 && p->o.max_parallel > 64)
		rc = sr_err(SITEREC_EINVAL, "plan: max_parallel %u is over 64", p->o.max_parallel);
	if (rc == 0 && p->o.max_parallel == 0)
		p->o.max_parallel = 8;
	if (rc == 0 && p->o.store_opts) {   /* a copy: the caller's may go away; credentials owned */
		siterec_store_options_init(&p->so, SITEREC_STORE_OPTIONS_VERSION);
		static const size_t so_sizes[] = { 0, sizeof(siterec_store_options) };
		if ((rc = sr_options_copy(&p->so, p->o.store_opts, so_sizes, SITEREC_STORE_OPTIONS_VERSION,
		                          "plan: store")) == 0) {
			const char *k = p->so.account_key, *s = p->so.sas_token, *c = p->so.ca_file;
			p->so.account_key = p->so.sas_token = p->so.ca_file = NULL;
			if ((k && !(p->so.account_key = sr_strdup(k))) || (s && !(p->so.sas_token = sr_strdup(s))) ||
			    (c && !(p->so.ca_file = sr_strdup(c))))
				rc = sr_err(SITEREC_ENOMEM, "plan: out of memory");
			p->have_so = 1;
		}
	}
	if (rc == 0 && (!(p->url = dup_str(p->o.url)) || !(p->state_path = dup_str(p->o.state_path))))
		rc = sr_err(SITEREC_ENOMEM, "plan: out of memory");
	if (rc == 0) {
		p->o.url = p->url;
		p->o.state_path = p->state_path;
		p->o.store_opts = p->have_so ? &p->so : NULL;
		if (!(p->doc = cJSON_ParseWithLength(json, len)))
			rc = sr_err(SITEREC_EINVAL, "plan: the document is not JSON (near byte %td)",
			            cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : (ptrdiff_t)0);
	}
	if (rc == 0)
		rc = parse_plan(p);
	if (rc == 0 && !(p->r.mres = sr_calloc(p->n_machines, 1)))
		rc = sr_err(SITEREC_ENOMEM, "plan: out of memory");
	if (rc == 0)
		rc = state_load(p);
	if (rc) {
		siterec_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- events ---- */

static void emit(siterec_plan *p, uint32_t kind, uint32_t group, int error, const char *vm,
                 const char *action, const char *output, const char *message, uint64_t elapsed)
{
	if (!p->o.event)
		return;
	siterec_plan_event e;
	memset(&e, 0, sizeof(e));
	e.version = SITEREC_PLAN_EVENT_VERSION;
	e.kind = kind;
	e.op = p->r.op;
	e.group = group;
	e.error = error;
	e.group_name = p->g[group].name;
	e.vm_id = vm;
	e.action = action;
	e.output = output;
	e.message = message;
	e.elapsed_ms = elapsed;
	if (p->o.event(&e, p->o.event_payload) != 0)
		p->stop = 1;
}

/* The run fails: record what failed, then return code with that message. */
static int run_fail(siterec_plan *p, int code, const char *fmt, ...) SR_PRINTF(3, 4);
static int run_fail(siterec_plan *p, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->r.error, sizeof(p->r.error), fmt, ap);
	va_end(ap);
	p->r.state = SITEREC_PLAN_FAILED;
	char msg[sizeof(p->r.error)];
	memcpy(msg, p->r.error, sizeof(msg));
	if (state_save(p) != 0)
		sr_log(SITEREC_LOG_ERROR, "plan %s: cannot record the failure: %s", p->name,
		       siterec_error_last()->message);
	return sr_err(code, "%s", msg);
}

/* ---- script actions ---- */

static int env_has(const char *e, const char *name)
{
	size_t n = strlen(name);
	return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* The environment of the script: ours without SITEREC_PLAN*, plus those three. */
static char **script_env(const siterec_plan *p, const char *group, char *bufs[3])
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **envp = sr_calloc(n + 4, sizeof(*envp));
	if (!envp)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!env_has(environ[i], "SITEREC_PLAN") && !env_has(environ[i], "SITEREC_PLAN_OP") &&
		    !env_has(environ[i], "SITEREC_PLAN_GROUP"))
			envp[k++] = environ[i];
	const char *names[3] = { "SITEREC_PLAN", "SITEREC_PLAN_OP", "SITEREC_PLAN_GROUP" };
	const char *vals[3] = { p->name, op_names[p->r.op], group };
	for (int i = 0; i < 3; i++) {
		size_t len = strlen(names[i]) + strlen(vals[i]) + 2;
		if (!(bufs[i] = sr_malloc(len))) {
			for (int j = 0; j < i; j++)
				sr_free(bufs[j]);
			sr_free(envp);
			return NULL;
		}
		snprintf(bufs[i], len, "%s=%s", names[i], vals[i]);
		envp[k++] = bufs[i];
	}
	envp[k] = NULL;
	return envp;
}

typedef struct outbuf {
	char *d;
	size_t n, cap;
} outbuf;

/* Keep the last PL_OUTPUT_MAX bytes of what the script wrote. */
static void out_add(outbuf *o, const char *buf, size_t len)
{
	if (!o->d)
		return;
	if (len >= PL_OUTPUT_MAX) {
		memcpy(o->d, buf + len - PL_OUTPUT_MAX, PL_OUTPUT_MAX);
		o->n = PL_OUTPUT_MAX;
		return;
	}
	if (o->n + len > PL_OUTPUT_MAX) {
		size_t drop = o->n + len - PL_OUTPUT_MAX;
		memmove(o->d, o->d + drop, o->n - drop);
		o->n -= drop;
	}
	memcpy(o->d + o->n, buf, len);
	o->n += len;
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/* Wait up to ms for pid to exit (pidfd: poll it; else poll waitpid). 1 when it
 * exited (*status set), 0 when not yet. */
static int wait_exit(pid_t pid, int pidfd, int64_t ms, int *status)
{
	int64_t end = mono_ms() + ms;
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			return 1;   /* not our child any more: nothing to wait for */
		int64_t left = end - mono_ms();
		if (left <= 0)
			return 0;
		if (pidfd >= 0) {
			struct pollfd pf = { .fd = pidfd, .events = POLLIN };
			poll(&pf, 1, (int)left);
		} else {
			struct timespec ts = { 0, 20 * 1000000L };   /* no pidfd (old kernel): poll the child */
			nanosleep(&ts, NULL);
		}
	}
}

/* Run the action's command with /bin/sh -c in its own process group, output to
 * *out (NUL-terminated, the last 64 KiB). On timeout the group gets SIGTERM, then
 * SIGKILL after a grace period. */
static int run_script(siterec_plan *p, const pl_action *a, const char *group, char **out)
{
	*out = NULL;
	outbuf ob = { sr_malloc(PL_OUTPUT_MAX + 1), 0, PL_OUTPUT_MAX };
	if (!ob.d)
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	char *bufs[3] = { NULL, NULL, NULL };
	char **envp = script_env(p, group, bufs);
	int pfd[2] = { -1, -1 }, rc = 0;
	if (!envp) {
		sr_free(ob.d);
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int fa_ok = 0, at_ok = 0;
	pid_t pid = -1;
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "plan: action %s: pipe", a->name);
	}
	if (rc == 0) {
		fa_ok = posix_spawn_file_actions_init(&fa) == 0;
		at_ok = posix_spawnattr_init(&at) == 0;
		sigset_t none, all;
		sigemptyset(&none);
		sigfillset(&all);
		if (!fa_ok || !at_ok || posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
		    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1) || posix_spawn_file_actions_adddup2(&fa, pfd[1], 2) ||
		    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
		                                  POSIX_SPAWN_SETSIGDEF) ||
		    posix_spawnattr_setpgroup(&at, 0) || posix_spawnattr_setsigmask(&at, &none) ||
		    posix_spawnattr_setsigdefault(&at, &all))
			rc = sr_err(SITEREC_ENOMEM, "plan: action %s: cannot set up the script", a->name);
	}
	if (rc == 0) {
		char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)a->command, NULL };
		int e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
		if (e)
			rc = sr_err_os(sr_errno_code(e), e, "plan: action %s: cannot run /bin/sh", a->name);
	}
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	if (pfd[1] >= 0)
		close(pfd[1]);
	int status = 0, exited = 0, timed_out = 0;
	if (rc == 0) {
		int pidfd = pidfd_open_(pid);
		int64_t end = mono_ms() + (int64_t)a->timeout_s * 1000;
		int pipe_open = 1;
		char buf[4096];
		/* read the output until the shell exits (what it left running in the
		 * background may hold the pipe: we do not wait for that) or the time is up */
		while (!exited) {
			int64_t left = end - mono_ms();
			if (left <= 0) {
				timed_out = 1;
				break;
			}
			struct pollfd pf[2];
			int nf = 0;
			if (pipe_open)
				pf[nf++] = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
			if (pidfd >= 0)
				pf[nf++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
			int wait = pidfd >= 0 ? (int)(left > 60000 ? 60000 : left) : (int)(left > 50 ? 50 : left);
			if (nf == 0) {   /* output closed, no pidfd: wait for the exit alone */
				exited = wait_exit(pid, -1, wait, &status);
				continue;
			}
			int readable = 0;
			if (poll(pf, (nfds_t)nf, wait) > 0 && pipe_open)
				readable = (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
			if (readable) {
				ssize_t n = read(pfd[0], buf, sizeof(buf));
				if (n > 0)
					out_add(&ob, buf, (size_t)n);
				else if (n == 0)
					pipe_open = 0;
				else if (errno != EINTR && errno != EAGAIN)
					pipe_open = 0;
				if (n > 0 || (n < 0 && errno == EINTR))
					continue;   /* more may be waiting: read before checking the exit */
			}
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid || (w < 0 && errno != EINTR))
				exited = 1;
		}
		if (exited && pipe_open) {   /* what is still buffered in the pipe */
			fcntl(pfd[0], F_SETFL, O_NONBLOCK);
			ssize_t n;
			while ((n = read(pfd[0], buf, sizeof(buf))) > 0)
				out_add(&ob, buf, (size_t)n);
		}
		if (timed_out) {
			kill(-pid, SIGTERM);
			if (!wait_exit(pid, pidfd, PL_TERM_GRACE_MS, &status)) {
				kill(-pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
			}
			kill(-pid, SIGKILL);   /* what the shell left behind in its group */
			rc = sr_err(SITEREC_ETIMEOUT, "plan: action %s: the script ran over its %u s: killed", a->name,
			            a->timeout_s);
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			rc = WIFEXITED(status)
			     ? sr_err(SITEREC_EABORTED, "plan: action %s: the script exited with status %d", a->name,
			              WEXITSTATUS(status))
			     : sr_err(SITEREC_EABORTED, "plan: action %s: the script was killed by signal %d", a->name,
			              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		}
		if (pidfd >= 0)
			close(pidfd);
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	for (int i = 0; i < 3; i++)
		sr_free(bufs[i]);
	sr_free(envp);
	ob.d[ob.n] = '\0';
	*out = ob.d;
	return rc;
}

/* ---- actions ---- */

/* Run the actions of stage st of the current group from r.action on. 0 when
 * all ran; 1 when the run paused or stopped (r.state says which); else the error. */
static int run_actions(siterec_plan *p, const pl_action *acts, uint32_t n)
{
	pl_run *r = &p->r;
	const pl_group *G = &p->g[r->group];
	int rc;
	for (; r->action < n; r->action++) {
		const pl_action *a = &acts[r->action];
		if (!(a->ops & (1u << r->op)))
			continue;   /* not for this operation */
		if (a->type == ACT_MANUAL) {
			/* recorded as paused before it is reported: a crash in between
			 * leaves a paused run, and resume moves past it */
			r->state = SITEREC_PLAN_PAUSED;
			snprintf(r->paused_at, sizeof(r->paused_at), "%s", a->name);
			if ((rc = state_save(p)) != 0)
				return rc;
			sr_log(SITEREC_LOG_INFO, "plan %s: paused at %s: %s", p->name, a->name, a->text);
			emit(p, SITEREC_PLAN_EV_PAUSED, r->group, 0, NULL, a->name, NULL, a->text, 0);
			return 1;
		}
		/* "started" is recorded first; a crash during the action leaves it
		 * started, and resume runs it again (scripts must be idempotent) */
		r->action_started = 1;
		if ((rc = state_save(p)) != 0)
			return rc;
		int64_t t0 = mono_ms();
		char *out = NULL;
		int arc;
		if (a->type == ACT_SCRIPT) {
			arc = run_script(p, a, G->name, &out);
		} else if (!p->o.action) {
			arc = sr_err(SITEREC_EINVAL, "plan: action %s: a callback action, and no action callback was "
			             "given", a->name);
		} else {
			int cb = p->o.action(a->name, r->op, G->name, p->o.event_payload);
			arc = cb ? sr_err_callback(cb, "plan action") : 0;
		}
		char msg[256] = "";
		if (arc)
			snprintf(msg, sizeof(msg), "%s", siterec_error_last()->message);
		uint64_t el = (uint64_t)(mono_ms() - t0);
		sr_log(arc ? SITEREC_LOG_ERROR : SITEREC_LOG_INFO, "plan %s: action %s: %s", p->name, a->name,
		       arc ? msg : "done");
		if (arc) {
			r->action_started = 0;   /* failed, not under way: resume retries it */
			sr_err(arc, "%s", msg);   /* the event sees this action's error as the last error */
			emit(p, SITEREC_PLAN_EV_ACTION, r->group, arc, NULL, a->name, out, NULL, el);
			sr_free(out);
			return run_fail(p, arc, "group %s: action %s: %s", G->name, a->name, msg);
		}
		emit(p, SITEREC_PLAN_EV_ACTION, r->group, 0, NULL, a->name, out, NULL, el);
		sr_free(out);
		r->action_started = 0;
		r->action++;
		rc = state_save(p);
		r->action--;   /* the loop's increment follows */
		if (rc)
			return rc;
		if (p->stop) {
			r->action++;
			return 1;
		}
	}
	return 0;
}

/* ---- machines ---- */

typedef struct job {
	uint32_t m;
	int rc;
	uint64_t elapsed;
	char msg[256];
} job;

typedef struct pool {
	siterec_plan *p;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *jobs;
	uint32_t n_jobs, next;     /* next job to take */
	uint32_t *done;            /* finished, in order, not yet reported */
	uint32_t n_done, n_reported;
	uint32_t running_threads;
	int stop;
} pool;

static int fo_status(siterec_failover *fo, uint32_t type, siterec_failover_status *s)
{
	memset(s, 0, sizeof(*s));
	s->version = SITEREC_FAILOVER_STATUS_VERSION;
	return siterec_failover_status_get(fo, type, s);
}

/* One machine's operation, on a worker thread, through its own store and
 * failover handles.
 *
 * Already-done rules, applied when the run is resumed (a crash, a failure, a
 * pause may lie between this machine's operation and the record of its
 * result); siterec_failover_resume() has first finished whatever the crash
 * interrupted in the machine's slots:
 *  - TEST: a test failover failed over: done (it is the one this run made).
 *  - CLEANUP: no test failover left: done (SITEREC_ENOTFOUND of a cleanup that
 *    already ran).
 *  - PLANNED, UNPLANNED: a failover failed over or committed: done.
 *  - COMMIT: failback failed over: commit it; failback committed: done; else
 *    siterec_failover_commit() (0 when committed already).
 *  - FAILBACK: a failback failed over or committed: done.
 *  - CANCEL: a failback not committed: cancel it; else no failover left: done.
 * A fresh run applies no such rule: an operation that exists already fails
 * the machine (SITEREC_EEXISTS, ...), as the single-VM call would. */
static int machine_op(siterec_plan *p, const pl_machine *pm, int64_t common_ms)
{
	uint32_t op = p->r.op;
	int resumed = p->resumed;
	siterec_store *st = NULL;
	siterec_failover *fo = NULL;
	siterec_replication *repl = NULL;
	int rc = siterec_store_open(&st, p->o.url, p->o.store_opts);
	if (rc == 0 && op == SITEREC_PLAN_PLANNED) {
		int cb = p->o.replication(pm->vm, &repl, p->o.event_payload);
		if (cb || !repl)
			rc = cb ? sr_err_callback(cb, "plan replication") :
			     sr_err(SITEREC_EINVAL, "plan: the replication callback gave no handle for %s", pm->vm);
	}
	if (rc == 0) {
		siterec_failover_options fopts = SITEREC_FAILOVER_OPTIONS_INIT;
		fopts.store = st;
		fopts.vm_id = pm->vm;
		fopts.replication = repl;
		fopts.start = p->o.start;
		fopts.remove = p->o.remove;
		fopts.shutdown = p->o.shutdown;
		fopts.payload = p->o.payload;
		rc = siterec_failover_open(&fo, &fopts);
	}
	if (rc == 0 && resumed)
		rc = siterec_failover_resume(fo, NULL);
	siterec_failover_status s, fb;
	if (rc == 0 && (op == SITEREC_PLAN_COMMIT || op == SITEREC_PLAN_FAILBACK || op == SITEREC_PLAN_CANCEL))
		rc = fo_status(fo, SITEREC_FAILOVER_FAILBACK, &fb);
	if (rc == 0) {
		switch (op) {
		case SITEREC_PLAN_TEST: {
			if ((rc = fo_status(fo, SITEREC_FAILOVER_TEST, &s)) != 0)
				break;
			if (resumed && s.phase == SITEREC_FO_FAILED_OVER)
				break;
			siterec_failover_request q = pm->req;
			q.type = SITEREC_FAILOVER_TEST;
			if (common_ms && pm->latest) {
				q.point.how = SITEREC_POINT_TIME;
				q.point.time_ms = common_ms;
			}
			rc = siterec_failover_test(fo, &q);
			break;
		}
		case SITEREC_PLAN_CLEANUP:
			if ((rc = fo_status(fo, SITEREC_FAILOVER_TEST, &s)) != 0)
				break;
			if (resumed && s.type == 0)
				break;
			rc = siterec_failover_test_cleanup(fo);
			break;
		case SITEREC_PLAN_PLANNED:
		case SITEREC_PLAN_UNPLANNED: {
			if ((rc = fo_status(fo, SITEREC_FAILOVER_UNPLANNED, &s)) != 0)
				break;
			if (resumed && (s.phase == SITEREC_FO_FAILED_OVER || s.phase == SITEREC_FO_COMMITTED))
				break;
			siterec_failover_request q = pm->req;
			q.type = op == SITEREC_PLAN_PLANNED ? SITEREC_FAILOVER_PLANNED : SITEREC_FAILOVER_UNPLANNED;
			if (op == SITEREC_PLAN_UNPLANNED && common_ms && pm->latest) {
				q.point.how = SITEREC_POINT_TIME;
				q.point.time_ms = common_ms;
			}
			rc = siterec_failover_run(fo, &q);
			break;
		}
		case SITEREC_PLAN_COMMIT:
			if (fb.type && fb.phase == SITEREC_FO_FAILED_OVER)
				rc = siterec_failback_commit(fo);
			else if (!(resumed && fb.type && fb.phase == SITEREC_FO_COMMITTED))
				rc = siterec_failover_commit(fo);
			break;
		case SITEREC_PLAN_FAILBACK:
			if (resumed && fb.type && (fb.phase == SITEREC_FO_FAILED_OVER || fb.phase == SITEREC_FO_COMMITTED))
				break;
			rc = siterec_failback_run(fo, &pm->fb);
			break;
		case SITEREC_PLAN_CANCEL:
			if (fb.type && fb.phase != SITEREC_FO_COMMITTED && fb.phase != SITEREC_FO_REPROTECTING) {
				rc = siterec_failback_cancel(fo);
				break;
			}
			if ((rc = fo_status(fo, SITEREC_FAILOVER_UNPLANNED, &s)) != 0)
				break;
			if (resumed && s.type == 0)
				break;
			rc = siterec_failover_cancel(fo);
			break;
		default:
			rc = sr_err(SITEREC_EINVAL, "plan: operation %u", op);
		}
	}
	siterec_failover_free(fo);
	siterec_replication_free(repl);
	siterec_store_free(st);
	return rc;
}

static void *worker(void *arg)
{
	pool *pl = arg;
	siterec_plan *p = pl->p;
	pthread_mutex_lock(&pl->mu);
	while (!pl->stop && pl->next < pl->n_jobs) {
		job *j = &pl->jobs[pl->next++];
		int64_t common = p->r.common_time_ms;
		pthread_mutex_unlock(&pl->mu);
		int64_t t0 = mono_ms();
		j->rc = machine_op(p, &p->m[j->m], common);
		j->elapsed = (uint64_t)(mono_ms() - t0);
		if (j->rc)
			snprintf(j->msg, sizeof(j->msg), "%s", siterec_error_last()->message);
		pthread_mutex_lock(&pl->mu);
		pl->done[pl->n_done++] = (uint32_t)(j - pl->jobs);
		pthread_cond_signal(&pl->cv);
	}
	pl->running_threads--;
	pthread_cond_signal(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

/* Run the group's machines not done yet, max_parallel at once; report each
 * result on this thread as it comes and record it. 0 when all are done, 1 when
 * stopped by the event callback, else the run failed. */
static int run_machines(siterec_plan *p)
{
	pl_run *r = &p->r;
	const pl_group *G = &p->g[r->group];
	pool pl;
	memset(&pl, 0, sizeof(pl));
	pl.p = p;
	for (uint32_t i = 0; i < G->n; i++)
		if (r->mres[G->first + i] != MR_DONE)
			pl.n_jobs++;
	if (pl.n_jobs == 0)
		return 0;
	pl.jobs = sr_calloc(pl.n_jobs, sizeof(*pl.jobs));
	pl.done = sr_calloc(pl.n_jobs, sizeof(*pl.done));
	if (!pl.jobs || !pl.done) {
		sr_free(pl.jobs);
		sr_free(pl.done);
		return sr_err(SITEREC_ENOMEM, "plan: out of memory");
	}
	for (uint32_t i = 0, k = 0; i < G->n; i++)
		if (r->mres[G->first + i] != MR_DONE)
			pl.jobs[k++].m = G->first + i;
	uint32_t nt = pl.n_jobs < p->o.max_parallel ? pl.n_jobs : p->o.max_parallel;
	pthread_t th[64];
	uint32_t started = 0;
	int rc = 0;
	if (pthread_mutex_init(&pl.mu, NULL) != 0 || pthread_cond_init(&pl.cv, NULL) != 0) {
		sr_free(pl.jobs);
		sr_free(pl.done);
		return sr_err(SITEREC_ENOMEM, "plan: cannot create a mutex");
	}
	pthread_mutex_lock(&pl.mu);
	for (; started < nt; started++) {
		pl.running_threads++;
		if (pthread_create(&th[started], NULL, worker, &pl) != 0) {
			pl.running_threads--;
			break;
		}
	}
	pthread_mutex_unlock(&pl.mu);
	if (started == 0)
		rc = sr_err(SITEREC_ENOMEM, "plan: cannot start a worker thread");
	int first_rc = 0;
	char first_msg[640] = "";
	while (rc == 0) {
		pthread_mutex_lock(&pl.mu);
		while (pl.n_reported == pl.n_done && pl.running_threads > 0)
			pthread_cond_wait(&pl.cv, &pl.mu);
		if (pl.n_reported == pl.n_done) {   /* every worker left: nothing more will come */
			pthread_mutex_unlock(&pl.mu);
			break;
		}
		job *j = &pl.jobs[pl.done[pl.n_reported++]];
		pthread_mutex_unlock(&pl.mu);
		const pl_machine *pm = &p->m[j->m];
		r->mres[j->m] = j->rc ? MR_FAILED : MR_DONE;
		sr_log(j->rc ? SITEREC_LOG_ERROR : SITEREC_LOG_INFO, "plan %s: %s: %s", p->name, pm->vm,
		       j->rc ? j->msg : "done");
		if (j->rc && !first_rc) {
			first_rc = j->rc;
			snprintf(first_msg, sizeof(first_msg), "group %s: %s: %s", G->name, pm->vm, j->msg);
		}
		if (j->rc)
			sr_err(j->rc, "%s", j->msg);   /* the event's last error on this thread */
		emit(p, SITEREC_PLAN_EV_MACHINE, r->group, j->rc, pm->vm, NULL, NULL, NULL, j->elapsed);
		int src = state_save(p);
		if ((src || p->stop) && !pl.stop) {
			pthread_mutex_lock(&pl.mu);
			pl.stop = 1;   /* no new machine starts; those under way finish */
			pthread_mutex_unlock(&pl.mu);
		}
		if (src && !first_rc) {
			first_rc = src;
			snprintf(first_msg, sizeof(first_msg), "%s", siterec_error_last()->message);
		}
	}
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_cond_destroy(&pl.cv);
	pthread_mutex_destroy(&pl.mu);
	int all = pl.n_reported == pl.n_jobs;
	sr_free(pl.jobs);
	sr_free(pl.done);
	if (rc)
		return rc;
	if (first_rc)
		return run_fail(p, first_rc, "%s", first_msg);
	return all ? 0 : 1;
}

/* ---- the run ---- */

/* T = the oldest of the machines' newest point cuts (doc: the newest instant
 * every machine has reached). */
static int common_cut(siterec_plan *p, int64_t *t_out)
{
	*t_out = 0;
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, p->o.url, p->o.store_opts);
	int64_t t = INT64_MAX;
	for (uint32_t i = 0; rc == 0 && i < p->n_machines; i++) {
		siterec_rp_catalog *cat = NULL;
		uint64_t n = 0;
		siterec_rp_point pt = SITEREC_RP_POINT_INIT;
		if ((rc = siterec_rp_open(&cat, st, p->m[i].vm)) == 0 && (rc = siterec_rp_count(cat, &n)) == 0) {
			if (n == 0)
				rc = sr_err(SITEREC_ENOTFOUND, "plan: common cut: VM %s has no recovery point", p->m[i].vm);
			else if ((rc = siterec_rp_get(cat, n - 1, &pt)) == 0 && pt.cut_time_ms < t)
				t = pt.cut_time_ms;
		}
		siterec_rp_free(cat);
	}
	siterec_store_free(st);
	if (rc == 0)
		*t_out = t;
	return rc;
}

static int drive(siterec_plan *p, uint32_t *state)
{
	pl_run *r = &p->r;
	int rc = 0;
	p->stop = 0;
	while (rc == 0 && r->group < p->n_groups) {
		pl_group *G = &p->g[r->group];
		if (r->stage == ST_BEFORE && r->action == 0 && !r->action_started) {
			emit(p, SITEREC_PLAN_EV_GROUP, r->group, 0, NULL, NULL, NULL, NULL, 0);
			if (p->stop) {
				rc = 1;
				break;
			}
		}
		if (r->stage == ST_BEFORE) {
			if ((rc = run_actions(p, G->before, G->n_before)) != 0)
				break;
			r->stage = ST_MACHINES;
			r->action = 0;
			if ((rc = state_save(p)) != 0)
				break;
		}
		if (r->stage == ST_MACHINES) {
			if ((rc = run_machines(p)) != 0)
				break;
			r->stage = ST_AFTER;
			r->action = 0;
			if ((rc = state_save(p)) != 0)
				break;
			if (p->stop) {
				rc = 1;
				break;
			}
		}
		if ((rc = run_actions(p, G->after, G->n_after)) != 0)
			break;
		r->group++;
		r->stage = ST_BEFORE;
		r->action = 0;
		if ((rc = state_save(p)) != 0)
			break;
		if (p->stop && r->group < p->n_groups) {
			rc = 1;
			break;
		}
	}
	if (rc == 0) {
		r->state = SITEREC_PLAN_DONE;
		rc = state_save(p);
		sr_log(SITEREC_LOG_INFO, "plan %s: %s done", p->name, op_names[r->op]);
	}
	if (state)
		*state = r->state;
	if (rc == 1)   /* paused (0) or stopped by the event callback (EABORTED) */
		return r->state == SITEREC_PLAN_PAUSED ? 0
		       : sr_err(SITEREC_EABORTED, "plan %s: stopped by the event callback (resume it)", p->name);
	return rc;
}

SITEREC_API int siterec_plan_run(siterec_plan *p, uint32_t op, uint32_t *state)
{
	if (state)
		*state = p ? p->r.state : 0;
	if (!p)
		return sr_err(SITEREC_EINVAL, "plan run: handle is NULL");
	if (op < SITEREC_PLAN_TEST || op > SITEREC_PLAN_CANCEL)
		return sr_err(SITEREC_EINVAL, "plan run: operation %u is not a siterec_plan_op", op);
	if (p->r.state != SITEREC_PLAN_IDLE && p->r.state != SITEREC_PLAN_DONE)
		return sr_err(SITEREC_EBUSY, "plan %s: a %s run is %s: resume it", p->name, op_names[p->r.op],
		              state_names[p->r.state]);
	if (op == SITEREC_PLAN_PLANNED && (!p->o.replication || !p->o.shutdown))
		return sr_err(SITEREC_EINVAL, "plan %s: a planned failover needs the replication and shutdown "
		              "callbacks", p->name);
	for (uint32_t i = 0; op == SITEREC_PLAN_FAILBACK && i < p->n_machines; i++)
		if (!p->m[i].has_failback)
			return sr_err(SITEREC_EINVAL, "plan %s: VM %s has no \"failback\" section (nor the defaults)",
			              p->name, p->m[i].vm);
	int64_t t = 0;
	int any_latest = 0;
	for (uint32_t i = 0; i < p->n_machines; i++)
		any_latest |= p->m[i].latest;
	/* a planned failover fails over from its own last point: no common cut */
	if (p->common_cut && any_latest && (op == SITEREC_PLAN_TEST || op == SITEREC_PLAN_UNPLANNED)) {
		int rc = common_cut(p, &t);
		if (rc)
			return rc;
	}
	pl_run *r = &p->r;
	uint8_t *mres = r->mres;
	memset(mres, 0, p->n_machines);
	memset(r, 0, sizeof(*r));
	r->mres = mres;
	r->op = op;
	r->state = SITEREC_PLAN_RUNNING;
	r->started_ms = now_ms();
	r->common_time_ms = t;
	int rc = state_save(p);
	if (rc) {
		r->state = SITEREC_PLAN_IDLE;   /* nothing recorded: nothing runs */
		return rc;
	}
	sr_log(SITEREC_LOG_INFO, "plan %s: %s of %u machines in %u groups", p->name, op_names[op], p->n_machines,
	       p->n_groups);
	p->resumed = 0;
	return drive(p, state);
}

SITEREC_API int siterec_plan_resume(siterec_plan *p, uint32_t *state)
{
	if (state)
		*state = p ? p->r.state : 0;
	if (!p)
		return sr_err(SITEREC_EINVAL, "plan resume: handle is NULL");
	pl_run *r = &p->r;
	if (r->state == SITEREC_PLAN_IDLE)
		return sr_err(SITEREC_ENOTFOUND, "plan %s: no run is recorded", p->name);
	if (r->state == SITEREC_PLAN_DONE)
		return 0;
	if (r->op == SITEREC_PLAN_PLANNED && (!p->o.replication || !p->o.shutdown))
		return sr_err(SITEREC_EINVAL, "plan %s: a planned failover needs the replication and shutdown "
		              "callbacks", p->name);
	if (r->op == SITEREC_PLAN_FAILBACK)
		for (uint32_t i = 0; i < p->n_machines; i++)
			if (!p->m[i].has_failback)
				return sr_err(SITEREC_EINVAL, "plan %s: VM %s has no \"failback\" section", p->name,
				              p->m[i].vm);
	if (r->state == SITEREC_PLAN_PAUSED) {   /* past the manual action */
		r->action++;
		r->paused_at[0] = '\0';
	}
	r->state = SITEREC_PLAN_RUNNING;
	r->error[0] = '\0';
	int rc = state_save(p);
	if (rc)
		return rc;
	p->resumed = 1;
	return drive(p, state);
}

SITEREC_API int siterec_plan_status_get(siterec_plan *p, siterec_plan_status *status)
{
	if (!p || !status)
		return sr_err(SITEREC_EINVAL, "plan status: handle or status is NULL");
	if (status->version < 1)
		return sr_err(SITEREC_EVERSION, "plan status: version %u is not supported", status->version);
	siterec_plan_status s;
	memset(&s, 0, sizeof(s));
	s.version = SITEREC_PLAN_STATUS_VERSION;
	s.state = p->r.state;
	s.op = p->r.op;
	s.group = p->r.group < p->n_groups ? p->r.group : p->n_groups - 1;
	s.n_groups = p->n_groups;
	s.n_machines = p->n_machines;
	for (uint32_t i = 0; i < p->n_machines; i++) {
		s.machines_done += p->r.mres[i] == MR_DONE;
		s.machines_failed += p->r.mres[i] == MR_FAILED;
	}
	s.started_ms = p->r.started_ms;
	s.common_time_ms = p->r.common_time_ms;
	snprintf(s.paused_at, sizeof(s.paused_at), "%s", p->r.paused_at);
	snprintf(s.error, sizeof(s.error), "%s", p->r.error);
	memcpy(status, &s, sizeof(s));
	return 0;
}
