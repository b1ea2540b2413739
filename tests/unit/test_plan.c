/* Recovery plans (failover.h, "recovery plans") through the public API: a plan
 * of 3 groups and 10 VMs with script, callback and manual actions (run, pause,
 * resume), group order and parallel machines, test failover then cleanup,
 * unplanned failover at a common cut then commit, a failing machine retried,
 * script timeout, bad documents, a plan on Azurite, and kills at random
 * instants inside plan runs, each followed by a resume. */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define MAX_VMS 100

TH_AZURITE_GROUP(g, "test_plan")

static void must(int rc, const char *what)
{
	if (rc)
		fprintf(stderr, "%s: %s\n", what, siterec_error_last()->message);
	assert_int_equal(rc, 0);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a farm of protected VMs: one 1 MiB disk each, several points ---- */

typedef struct farm {
	char *dir;                 /* under g.dir */
	char url[4400];
	siterec_store_options so;
	int azure, n;
	char id[MAX_VMS][16];
	char *out[MAX_VMS];        /* disk_dir of each machine */
	char *hv;                  /* the target hypervisor: a marker file per VM */
} farm;

static void farm_setup(farm *f, int azure, const char *name, int n, int rounds)
{
	memset(f, 0, sizeof(*f));
	f->azure = azure;
	f->n = n;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/%s", g.dir, name);
	th_sh("mkdir -p '%s/hv' '%s/out'", sub, sub);
	f->dir = strdup(sub);
	f->hv = th_path(f->dir, "hv");
	siterec_store_options_init(&f->so, SITEREC_STORE_OPTIONS_VERSION);
	f->so.flags = SITEREC_STORE_CREATE;
	if (azure) {
		f->so.flags |= SITEREC_STORE_ALLOW_HTTP;
		f->so.account_key = TH_AZURITE_KEY;
		f->so.max_retries = 2;
		snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/devstoreaccount1/pl%s", g.port, name);
	} else {
		snprintf(f->url, sizeof(f->url), "file://%s/target", f->dir);
	}
	siterec_store *st = NULL;
	must(siterec_store_open(&st, f->url, &f->so), "store open");
	siterec_replication *r[MAX_VMS];
	char *paths[MAX_VMS], *states[MAX_VMS];
	for (int i = 0; i < n; i++) {
		snprintf(f->id[i], sizeof(f->id[i]), "vm-%02d", i);
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "%s.raw", f->id[i]);
		paths[i] = th_path(f->dir, leaf);
		int fd = th_make_file(paths[i], 1 * MiB);
		uint8_t b[64 * KiB];
		th_fill(b, sizeof(b), 100 + (uint64_t)i);
		assert_int_equal(pwrite(fd, b, sizeof(b), 0), (ssize_t)sizeof(b));
		close(fd);
		snprintf(leaf, sizeof(leaf), "%s-state", f->id[i]);
		states[i] = th_path(f->dir, leaf);
		snprintf(leaf, sizeof(leaf), "out/%s", f->id[i]);
		f->out[i] = th_path(f->dir, leaf);
		siterec_vm_disk d = { .id = "os", .path = paths[i], .role = SITEREC_DISK_ROLE_OS };
		siterec_vm vm = { .version = SITEREC_VM_VERSION, .generation = 2, .id = f->id[i], .name = f->id[i],
		                  .n_disks = 1, .disks = &d };
		siterec_replication_options o = SITEREC_REPLICATION_OPTIONS_INIT;
		o.flags = SITEREC_REPLICATION_PROTECT;
		o.state_dir = states[i];
		o.store = st;
		o.interval_s = 30;
		must(siterec_replication_open(&r[i], &vm, &o), "protect");
		must(siterec_replication_initial(r[i]), "initial");
	}
	/* rounds of one cycle per VM: the newest cuts interleave, so every VM has a
	 * point before the oldest newest cut (a common cut fits all of them) */
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < n; i++) {
			siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
			must(siterec_replication_cycle(r[i], &res), "cycle");
		}
	for (int i = 0; i < n; i++) {
		siterec_replication_free(r[i]);
		free(paths[i]);
		free(states[i]);
	}
	siterec_store_free(st);
}

static void farm_teardown(farm *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->out[i]);
	free(f->hv);
	free(f->dir);
}

/* ---- the target's hypervisor, thread-safe: a marker file per started VM ---- */

typedef struct hv {
	const char *dir;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned seq;                  /* event counter: ordering without clocks */
	unsigned start_seq[MAX_VMS], end_seq[MAX_VMS];
	int inflight, max_inflight;
	int barrier;                   /* the first `barrier` starts wait for each other */
	int arrived;
	char fail_vm[16];              /* the start of this VM fails */
	int starts, removes;
} hv;

static void hv_init(hv *h, const char *dir)
{
	memset(h, 0, sizeof(*h));
	h->dir = dir;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
}

static void hv_destroy(hv *h)
{
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
}

static int vm_index(const char *vm_id)
{
	return atoi(vm_id + 3);   /* "vm-NN" */
}

static int hv_start(const siterec_failover_vm *vm, void *payload)
{
	hv *h = payload;
	int i = vm_index(vm->vm_id), rc = 0;
	pthread_mutex_lock(&h->mu);
	h->starts++;
	h->start_seq[i] = ++h->seq;
	if (++h->inflight > h->max_inflight)
		h->max_inflight = h->inflight;
	if (h->arrived < h->barrier) {
		/* proves parallelism: the first starts wait until they are all in
		 * flight together; a serial run would wait out the deadline */
		h->arrived++;
		pthread_cond_broadcast(&h->cv);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 30;
		while (h->arrived < h->barrier && rc == 0)
			if (pthread_cond_timedwait(&h->cv, &h->mu, &dl) == ETIMEDOUT)
				rc = -9;
	}
	if (!strcmp(h->fail_vm, vm->vm_id))
		rc = -7;
	pthread_mutex_unlock(&h->mu);
	if (rc == 0) {
		char p[4300];
		snprintf(p, sizeof(p), "%s/%s", h->dir, vm->name);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			rc = -1;
		else
			close(fd);
	}
	pthread_mutex_lock(&h->mu);
	h->inflight--;
	h->end_seq[i] = ++h->seq;
	pthread_mutex_unlock(&h->mu);
	return rc;
}

static int hv_remove(const siterec_failover_vm *vm, void *payload)
{
	hv *h = payload;
	pthread_mutex_lock(&h->mu);
	h->removes++;
	pthread_mutex_unlock(&h->mu);
	char p[4300];
	snprintf(p, sizeof(p), "%s/%s", h->dir, vm->name);
	return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}

static int vm_exists(const farm *f, int i, const char *suffix)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/%s%s", f->hv, f->id[i], suffix);
	return access(p, F_OK) == 0;
}

/* ---- events and actions, recorded ---- */

#define MAX_EV 256

typedef struct ev {
	uint32_t kind, group, op;
	int error;
	char vm[16], action[64], msg[256];
	char *output;
	unsigned seq;
} ev;

typedef struct rec {
	hv *h;
	ev e[MAX_EV];
	int n;
	int stop_at_machine;           /* return non-zero at the nth MACHINE event (1-based) */
	int machines_seen;
	int callbacks;
	char cb_group[64];
	uint32_t cb_op;
	int cb_fail;
} rec;

static int on_event(const siterec_plan_event *e, void *payload)
{
	rec *r = payload;
	assert_int_equal(e->version, SITEREC_PLAN_EVENT_VERSION);
	if (r->n < MAX_EV) {
		ev *x = &r->e[r->n++];
		x->kind = e->kind;
		x->group = e->group;
		x->op = e->op;
		x->error = e->error;
		snprintf(x->vm, sizeof(x->vm), "%s", e->vm_id ? e->vm_id : "");
		snprintf(x->action, sizeof(x->action), "%s", e->action ? e->action : "");
		snprintf(x->msg, sizeof(x->msg), "%s", e->error ? siterec_error_last()->message
		                                      : e->message ? e->message : "");
		x->output = e->output ? strdup(e->output) : NULL;
		pthread_mutex_lock(&r->h->mu);
		x->seq = ++r->h->seq;
		pthread_mutex_unlock(&r->h->mu);
	}
	if (e->kind == SITEREC_PLAN_EV_MACHINE && ++r->machines_seen == r->stop_at_machine)
		return 1;
	return 0;
}

static void rec_clear(rec *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->e[i].output);
	r->n = 0;
	r->machines_seen = 0;
}

static const ev *find_ev(const rec *r, uint32_t kind, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (r->e[i].kind == kind && (!name || !strcmp(r->e[i].action, name) || !strcmp(r->e[i].vm, name)))
			return &r->e[i];
	return NULL;
}

static int on_action(const char *action, uint32_t op, const char *group, void *payload)
{
	rec *r = payload;
	r->callbacks++;
	r->cb_op = op;
	snprintf(r->cb_group, sizeof(r->cb_group), "%s", group);
	(void)action;
	return r->cb_fail;
}

/* A plan test's farm, hypervisor and event record; and their end. */
static void fixture(farm *f, hv *h, rec *r, int azure, const char *name, int n, int rounds)
{
	farm_setup(f, azure, name, n, rounds);
	hv_init(h, f->hv);
	memset(r, 0, sizeof(*r));
	r->h = h;
}

static void fixture_end(farm *f, hv *h, rec *r, cJSON *d, char *state_path)
{
	rec_clear(r);
	cJSON_Delete(d);
	free(state_path);
	hv_destroy(h);
	farm_teardown(f);
}

/* ---- plan documents ---- */

/* groups[gi] holds machines [first[gi], first[gi + 1]) of f. */
static cJSON *plan_json(const farm *f, const char *name, int n_groups, const int *first)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "format", "siterec-plan");
	cJSON_AddNumberToObject(d, "version", 1);
	cJSON_AddStringToObject(d, "name", name);
	cJSON *def = cJSON_AddObjectToObject(d, "defaults");
	cJSON_AddStringToObject(def, "os", "Linux");
	cJSON_AddStringToObject(def, "format", "raw");
	cJSON_AddStringToObject(def, "point", "latest");
	cJSON *nic = cJSON_CreateObject();
	cJSON_AddStringToObject(nic, "network", "corp");
	cJSON_AddStringToObject(nic, "subnet", "back");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(def, "nics"), nic);
	cJSON *map = cJSON_CreateObject();
	cJSON_AddStringToObject(map, "source", "corp");
	cJSON_AddStringToObject(map, "target", "vnet-dr");
	const char *sn[] = { "front", "back" };
	cJSON_AddItemToObject(map, "subnets", cJSON_CreateStringArray(sn, 2));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(def, "networks"), map);
	cJSON_AddStringToObject(def, "test_network", "vnet-drill");
	cJSON *gs = cJSON_AddArrayToObject(d, "groups");
	for (int k = 0; k < n_groups; k++) {
		cJSON *grp = cJSON_CreateObject();
		char gn[16];
		snprintf(gn, sizeof(gn), "g%d", k + 1);
		cJSON_AddStringToObject(grp, "name", gn);
		cJSON *ms = cJSON_AddArrayToObject(grp, "machines");
		for (int i = first[k]; i < first[k + 1]; i++) {
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "vm", f->id[i]);
			if (!f->azure)
				cJSON_AddStringToObject(m, "disk_dir", f->out[i]);
			cJSON_AddItemToArray(ms, m);
		}
		cJSON_AddItemToArray(gs, grp);
	}
	return d;
}

static cJSON *group_of(cJSON *d, int k)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(d, "groups"), k);
}

static void add_action(cJSON *grp, const char *where, const char *type, const char *name, const char *field,
                       const char *value, const char *op_filter)
{
	cJSON *arr = cJSON_GetObjectItem(grp, where);
	if (!arr)
		arr = cJSON_AddArrayToObject(grp, where);
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "type", type);
	cJSON_AddStringToObject(a, "name", name);
	if (field)
		cJSON_AddStringToObject(a, field, value);
	if (op_filter)
		cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "ops"), cJSON_CreateString(op_filter));
	cJSON_AddItemToArray(arr, a);
}

static int plan_open_json(siterec_plan **p, cJSON *d, const siterec_plan_options *o)
{
	char *s = cJSON_PrintUnformatted(d);
	assert_non_null(s);
	int rc = siterec_plan_open(p, s, strlen(s), o);
	free(s);
	return rc;
}

static siterec_plan_options popts(const farm *f, hv *h, rec *r, const char *state_path, uint32_t parallel)
{
	siterec_plan_options o;
	must(siterec_plan_options_init(&o, SITEREC_PLAN_OPTIONS_VERSION), "options init");
	o.url = f->url;
	o.store_opts = &f->so;
	o.state_path = state_path;
	o.max_parallel = parallel;
	o.start = hv_start;
	o.remove = hv_remove;
	o.payload = h;
	o.action = on_action;
	o.event = on_event;
	o.event_payload = r;
	return o;
}

static siterec_plan_status pstatus(siterec_plan *p)
{
	siterec_plan_status s = { .version = SITEREC_PLAN_STATUS_VERSION };
	must(siterec_plan_status_get(p, &s), "plan status");
	return s;
}

/* A machine's failover status, through its own handle. */
static siterec_failover_status vm_status(const farm *f, hv *h, int i, uint32_t type)
{
	siterec_store *st = NULL;
	must(siterec_store_open(&st, f->url, &f->so), "store open");
	siterec_failover_options o = SITEREC_FAILOVER_OPTIONS_INIT;
	o.store = st;
	o.vm_id = f->id[i];
	o.start = hv_start;
	o.remove = hv_remove;
	o.payload = h;
	siterec_failover *fo = NULL;
	must(siterec_failover_open(&fo, &o), "failover open");
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, type, &s), "failover status");
	siterec_failover_free(fo);
	siterec_store_free(st);
	return s;
}

/* The oldest of the VMs' newest cuts, read from their catalogues. */
static int64_t min_newest_cut(const farm *f)
{
	siterec_store *st = NULL;
	must(siterec_store_open(&st, f->url, &f->so), "store open");
	int64_t t = INT64_MAX;
	for (int i = 0; i < f->n; i++) {
		siterec_rp_catalog *cat = NULL;
		uint64_t n = 0;
		siterec_rp_point pt = SITEREC_RP_POINT_INIT;
		must(siterec_rp_open(&cat, st, f->id[i]), "rp open");
		must(siterec_rp_count(cat, &n), "rp count");
		assert_true(n >= 2);
		must(siterec_rp_get(cat, n - 1, &pt), "rp get");
		if (pt.cut_time_ms < t)
			t = pt.cut_time_ms;
		siterec_rp_free(cat);
	}
	siterec_store_free(st);
	return t;
}

/* A machine restored at common instant t: its point_time_ms (the instant
 * actually restored) is t, or the newest point cut or checkpoint (log seal) of
 * its catalogue at or before t. */
static void check_cut(const farm *f, int i, int64_t got, int64_t t)
{
	if (got == t)
		return;
	siterec_store *st = NULL;
	must(siterec_store_open(&st, f->url, &f->so), "store open");
	siterec_rp_catalog *cat = NULL;
	uint64_t n = 0;
	must(siterec_rp_open(&cat, st, f->id[i]), "rp open");
	must(siterec_rp_count(cat, &n), "rp count");
	int64_t best = 0;
	for (uint64_t k = 0; k < n; k++) {
		siterec_rp_point pt = SITEREC_RP_POINT_INIT;
		must(siterec_rp_get(cat, k, &pt), "rp get");
		if (pt.cut_time_ms <= t && pt.cut_time_ms > best)
			best = pt.cut_time_ms;
		for (uint64_t q = 0; q < pt.n_logs; q++)
			if (pt.logs[q].sealed_ms <= t && pt.logs[q].sealed_ms > best)
				best = pt.logs[q].sealed_ms;
	}
	siterec_rp_free(cat);
	siterec_store_free(st);
	if (got != best)
		fail_msg("%s: restored at %lld, not the common cut %lld nor its newest point before it (%lld)",
		         f->id[i], (long long)got, (long long)t, (long long)best);
}

/* ---- bad documents, limits, state-file conflicts ---- */

static void expect_bad(const char *json, const char *words)
{
	siterec_plan_options o = SITEREC_PLAN_OPTIONS_INIT;
	o.url = "file:///nonexistent";
	o.state_path = "/nonexistent/state.json";
	o.start = hv_start;
	o.remove = hv_remove;
	siterec_plan *p = (siterec_plan *)1;
	th_assert_err(siterec_plan_open(&p, json, strlen(json), &o), SITEREC_EINVAL);
	assert_null(p);
	if (!strstr(siterec_error_last()->message, words))
		fail_msg("message \"%s\" lacks \"%s\"", siterec_error_last()->message, words);
}

#define HEAD "{\"format\":\"siterec-plan\",\"version\":1,\"name\":\"p1\","

static void bad_documents(void **state)
{
	(void)state;
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\",\"nmae\":\"x\"}]}]}",
	           "groups[0].machines[0]: unknown field \"nmae\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}]},"
	           "{\"name\":\"b\",\"machines\":[{\"vm\":\"v2\"},{\"vm\":\"v1\"}]}]}",
	           "groups[1].machines[1]: VM \"v1\" is in the plan twice");
	expect_bad(HEAD "\"groups\":[]}", "1..64 groups");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[]}]}", "0 machines");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}],"
	           "\"before\":[{\"type\":\"script\",\"name\":\"s\",\"command\":\"true\",\"ops\":[\"tset\"]}]}]}",
	           "groups[0].before[0]: \"ops\": \"tset\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}],"
	           "\"after\":[{\"type\":\"email\",\"name\":\"s\"}]}]}", "groups[0].after[0]: \"type\" \"email\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}],"
	           "\"after\":[{\"type\":\"manual\",\"name\":\"s\",\"command\":\"x\"}]}]}",
	           "groups[0].after[0]: unknown field \"command\"");
	expect_bad(HEAD "\"bogus\":1,\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}]}]}",
	           "document: unknown field \"bogus\"");
	expect_bad(HEAD "\"defaults\":{\"vm\":\"x\"},\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}]}]}",
	           "defaults: unknown field \"vm\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\",\"point\":\"yesterday\"}]}]}",
	           "\"point\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\",\"nics\":[{\"subnet\":\"s\"}]}]}]}",
	           "groups[0].machines[0]: nics[0]: \"network\" is required");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\",\"failback\":{\"mode\":\"fast\","
	           "\"disks\":[{\"id\":\"os\",\"path\":\"/x\"}]}}]}]}", "failback: \"mode\"");
	expect_bad(HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"../etc\"}]}]}", "\"vm\" is not a VM id");
	expect_bad("{\"format\":\"siterec-plan\",\"version\":1,\"name\":\"bad name!\",\"groups\":[]}", "\"name\"");
	expect_bad("[1,2", "not JSON");
	expect_bad("{\"format\":\"other\",\"version\":1}", "\"format\"");
	/* version 2: not understood */
	siterec_plan_options o = SITEREC_PLAN_OPTIONS_INIT;
	o.url = "file:///nonexistent";
	o.state_path = "/nonexistent/state.json";
	o.start = hv_start;
	o.remove = hv_remove;
	siterec_plan *p = NULL;
	const char *v2 = "{\"format\":\"siterec-plan\",\"version\":2,\"name\":\"p\",\"groups\":[]}";
	th_assert_err(siterec_plan_open(&p, v2, strlen(v2), &o), SITEREC_EVERSION);
	/* more than 1000 machines; 100 machines in 7 groups are fine */
	farm f;
	memset(&f, 0, sizeof(f));
	f.azure = 1;   /* no disk_dir in the document */
	for (int big = 0; big < 2; big++) {
		int nm = big ? 1001 : 100, ng = big ? 1 : 7;
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "format", "siterec-plan");
		cJSON_AddNumberToObject(d, "version", 1);
		cJSON_AddStringToObject(d, "name", "big");
		cJSON *gs = cJSON_AddArrayToObject(d, "groups");
		for (int k = 0; k < ng; k++) {
			cJSON *grp = cJSON_CreateObject();
			char gn[16];
			snprintf(gn, sizeof(gn), "g%d", k);
			cJSON_AddStringToObject(grp, "name", gn);
			cJSON *ms = cJSON_AddArrayToObject(grp, "machines");
			for (int i = k * nm / ng; i < (k + 1) * nm / ng; i++) {
				cJSON *m = cJSON_CreateObject();
				char id[16];
				snprintf(id, sizeof(id), "m%04d", i);
				cJSON_AddStringToObject(m, "vm", id);
				cJSON_AddItemToArray(ms, m);
			}
			cJSON_AddItemToArray(gs, grp);
		}
		if (big) {
			th_assert_err(plan_open_json(&p, d, &o), SITEREC_EINVAL);
			assert_non_null(strstr(siterec_error_last()->message, "1001 machines"));
		} else {
			must(plan_open_json(&p, d, &o), "open a plan of 100 machines");
			siterec_plan_status s = pstatus(p);
			assert_int_equal(s.n_machines, 100);
			assert_int_equal(s.n_groups, 7);
			assert_int_equal(s.state, SITEREC_PLAN_IDLE);
			th_assert_err(siterec_plan_run(p, 0, NULL), SITEREC_EINVAL);
			th_assert_err(siterec_plan_run(p, 8, NULL), SITEREC_EINVAL);
			th_assert_err(siterec_plan_resume(p, NULL), SITEREC_ENOTFOUND);
			siterec_plan_free(p);
		}
		cJSON_Delete(d);
	}
	/* bad options */
	const char *ok = HEAD "\"groups\":[{\"name\":\"a\",\"machines\":[{\"vm\":\"v1\"}]}]}";
	th_assert_err(siterec_plan_open(NULL, ok, strlen(ok), &o), SITEREC_EINVAL);
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), NULL), SITEREC_EINVAL);
	o.max_parallel = 65;
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), &o), SITEREC_EINVAL);
	o.max_parallel = 0;
	o.state_path = NULL;
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), &o), SITEREC_EINVAL);
	o.version = 0;
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), &o), SITEREC_EVERSION);
	/* a state file of another plan, and a corrupt one */
	char *dir = th_tmpdir(), *sp = th_path(dir, "state.json");
	siterec_plan_options_init(&o, SITEREC_PLAN_OPTIONS_VERSION);
	o.url = "file:///nonexistent";
	o.state_path = sp;
	o.start = hv_start;
	o.remove = hv_remove;
	const char *other = "{\"format\":\"siterec-plan-state\",\"version\":1,\"plan\":\"p2\",\"op\":\"test\","
	                    "\"state\":\"running\",\"group\":0,\"stage\":\"before\",\"action\":0,\"machines\":{}}";
	th_write_file(sp, other, strlen(other));
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), &o), SITEREC_ECONFLICT);
	th_write_file(sp, "{\"format\":\"siterec-plan-state\"", 30);
	th_assert_err(siterec_plan_open(&p, ok, strlen(ok), &o), SITEREC_ECORRUPT);
	const char *same = "{\"format\":\"siterec-plan-state\",\"version\":1,\"plan\":\"p1\",\"op\":\"test\","
	                   "\"state\":\"running\",\"group\":0,\"stage\":\"before\",\"action\":0,\"machines\":{}}";
	th_write_file(sp, same, strlen(same));
	must(siterec_plan_open(&p, ok, strlen(ok), &o), "open with its state");
	siterec_plan_status s = pstatus(p);
	assert_int_equal(s.state, SITEREC_PLAN_RUNNING);
	assert_int_equal(s.op, SITEREC_PLAN_TEST);
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_TEST, NULL), SITEREC_EBUSY);
	th_assert_err(siterec_plan_status_get(p, NULL), SITEREC_EINVAL);
	siterec_plan_free(p);
	siterec_plan_free(NULL);
	free(sp);
	th_tmpdir_remove(dir);
}

/* ---- the whole flow on 10 VMs ---- */

static void flow(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 0, "flow", 10, 2);
	const int first[] = { 0, 3, 6, 10 };
	cJSON *d = plan_json(&f, "flow", 3, first);
	cJSON_AddTrueToObject(d, "common_cut");
	char *marker = th_path(f.dir, "cleanup-ran");
	char cmd[4600];
	add_action(group_of(d, 0), "before", "script", "prep", "command",
	           "echo prep-$SITEREC_PLAN-$SITEREC_PLAN_OP-$SITEREC_PLAN_GROUP; echo to-stderr >&2", NULL);
	snprintf(cmd, sizeof(cmd), "echo $SITEREC_PLAN_OP > '%s'", marker);
	add_action(group_of(d, 0), "after", "script", "only-cleanup", "command", cmd, "cleanup");
	add_action(group_of(d, 1), "after", "manual", "check-db", "text", "Check the database, then resume", "test");
	add_action(group_of(d, 2), "before", "callback", "notify", NULL, NULL, NULL);
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 4);
	siterec_plan *p = NULL;
	must(plan_open_json(&p, d, &o), "plan open");

	/* TEST: runs up to the manual action and pauses */
	h.barrier = 2;
	uint32_t st = 99;
	must(siterec_plan_run(p, SITEREC_PLAN_TEST, &st), "plan run test");
	assert_int_equal(st, SITEREC_PLAN_PAUSED);
	siterec_plan_status s = pstatus(p);
	assert_int_equal(s.state, SITEREC_PLAN_PAUSED);
	assert_string_equal(s.paused_at, "check-db");
	assert_int_equal(s.group, 1);
	assert_int_equal(s.machines_done, 6);
	assert_true(s.common_time_ms > 0);
	assert_int_equal(s.common_time_ms, min_newest_cut(&f));
	const ev *e = find_ev(&r, SITEREC_PLAN_EV_PAUSED, "check-db");
	assert_non_null(e);
	assert_string_equal(e->msg, "Check the database, then resume");
	e = find_ev(&r, SITEREC_PLAN_EV_ACTION, "prep");
	assert_non_null(e);
	assert_int_equal(e->error, 0);
	assert_non_null(e->output);
	assert_non_null(strstr(e->output, "prep-flow-test-g1\n"));
	assert_non_null(strstr(e->output, "to-stderr\n"));
	assert_null(find_ev(&r, SITEREC_PLAN_EV_ACTION, "only-cleanup"));   /* filtered out */
	assert_int_equal(access(marker, F_OK), -1);
	assert_true(h.max_inflight >= 2);   /* the barrier: two starts in flight at once */
	/* a new run while this one is paused: refused; the same handle reopened sees it */
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_TEST, NULL), SITEREC_EBUSY);
	siterec_plan_free(p);
	must(plan_open_json(&p, d, &o), "plan reopen");
	assert_int_equal(pstatus(p).state, SITEREC_PLAN_PAUSED);
	must(siterec_plan_resume(p, &st), "plan resume");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	s = pstatus(p);
	assert_int_equal(s.machines_done, 10);
	assert_int_equal(s.machines_failed, 0);
	assert_int_equal(r.callbacks, 1);
	assert_string_equal(r.cb_group, "g3");
	assert_int_equal(r.cb_op, SITEREC_PLAN_TEST);
	/* order: every machine of a group ended before the next group's first start */
	for (int k = 0; k < 2; k++)
		for (int i = first[k]; i < first[k + 1]; i++)
			for (int j = first[k + 1]; j < first[k + 2]; j++)
				assert_true(h.end_seq[i] < h.start_seq[j]);
	/* the events: a group event before its machines, every machine reported on this thread */
	int machines = 0;
	unsigned g2_seq = 0, g1_last = 0;
	for (int i = 0; i < r.n; i++) {
		if (r.e[i].kind == SITEREC_PLAN_EV_MACHINE) {
			machines++;
			assert_int_equal(r.e[i].error, 0);
			if (r.e[i].group == 0 && r.e[i].seq > g1_last)
				g1_last = r.e[i].seq;
		}
		if (r.e[i].kind == SITEREC_PLAN_EV_GROUP && r.e[i].group == 1 && !g2_seq)
			g2_seq = r.e[i].seq;
	}
	assert_int_equal(machines, 10);
	assert_true(g1_last > 0 && g1_last < g2_seq);
	int64_t t = s.common_time_ms;
	for (int i = 0; i < 10; i++) {
		assert_true(vm_exists(&f, i, "-test"));
		siterec_failover_status fs = vm_status(&f, &h, i, SITEREC_FAILOVER_TEST);
		assert_int_equal(fs.phase, SITEREC_FO_FAILED_OVER);
		check_cut(&f, i, fs.point_time_ms, t);
	}
	/* DONE: resume is a no-op */
	must(siterec_plan_resume(p, &st), "resume a done run");
	assert_int_equal(st, SITEREC_PLAN_DONE);

	/* CLEANUP: the filtered script runs now; the manual action is for tests only */
	rec_clear(&r);
	h.barrier = 0;
	must(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st), "plan run cleanup");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	assert_null(find_ev(&r, SITEREC_PLAN_EV_PAUSED, NULL));
	assert_non_null(find_ev(&r, SITEREC_PLAN_EV_ACTION, "only-cleanup"));
	size_t ml = 0;
	char *mtext = th_read_file(marker, &ml);
	assert_int_equal(ml, 8);
	assert_memory_equal(mtext, "cleanup\n", 8);
	free(mtext);
	for (int i = 0; i < 10; i++) {
		assert_false(vm_exists(&f, i, "-test"));
		assert_int_equal(vm_status(&f, &h, i, SITEREC_FAILOVER_TEST).phase, SITEREC_FO_NONE);
	}

	/* UNPLANNED at a common cut, stopped by the event callback after 2 machines, resumed */
	rec_clear(&r);
	r.stop_at_machine = 2;
	int64_t t_want = min_newest_cut(&f);   /* before: a failover may add points */
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_UNPLANNED, &st), SITEREC_EABORTED);
	assert_int_equal(st, SITEREC_PLAN_RUNNING);
	s = pstatus(p);
	assert_true(s.machines_done >= 2 && s.machines_done < 10);
	r.stop_at_machine = 0;
	must(siterec_plan_resume(p, &st), "resume unplanned");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	s = pstatus(p);
	assert_int_equal(s.machines_done, 10);
	assert_int_equal(s.common_time_ms, t_want);
	for (int i = 0; i < 10; i++) {
		assert_true(vm_exists(&f, i, ""));
		siterec_failover_status fs = vm_status(&f, &h, i, SITEREC_FAILOVER_UNPLANNED);
		assert_int_equal(fs.phase, SITEREC_FO_FAILED_OVER);
		check_cut(&f, i, fs.point_time_ms, s.common_time_ms);
	}
	/* COMMIT */
	must(siterec_plan_run(p, SITEREC_PLAN_COMMIT, &st), "plan run commit");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 10; i++)
		assert_int_equal(vm_status(&f, &h, i, SITEREC_FAILOVER_UNPLANNED).phase, SITEREC_FO_COMMITTED);
	siterec_plan_free(p);
	free(marker);
	fixture_end(&f, &h, &r, d, sp);
}

/* ---- a machine fails, then is retried; a script times out; a callback fails ---- */

static void failures(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 0, "fail", 4, 1);
	const int first[] = { 0, 3, 4 };
	cJSON *d = plan_json(&f, "fail", 2, first);
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 2);
	siterec_plan *p = NULL;
	must(plan_open_json(&p, d, &o), "plan open");
	snprintf(h.fail_vm, sizeof(h.fail_vm), "vm-01");
	uint32_t st = 0;
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_TEST, &st), SITEREC_EABORTED);
	assert_int_equal(st, SITEREC_PLAN_FAILED);
	siterec_plan_status s = pstatus(p);
	assert_int_equal(s.state, SITEREC_PLAN_FAILED);
	assert_int_equal(s.group, 0);
	assert_int_equal(s.machines_done, 2);    /* the rest of its group finished */
	assert_int_equal(s.machines_failed, 1);
	assert_non_null(strstr(s.error, "vm-01"));
	assert_non_null(strstr(siterec_error_last()->message, "vm-01"));
	const ev *e = find_ev(&r, SITEREC_PLAN_EV_MACHINE, "vm-01");
	assert_non_null(e);
	assert_int_equal(e->error, SITEREC_EABORTED);
	assert_false(vm_exists(&f, 3, "-test"));   /* group 2 did not start */
	/* fixed: resume retries it and goes on */
	h.fail_vm[0] = '\0';
	must(siterec_plan_resume(p, &st), "resume after the fix");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	s = pstatus(p);
	assert_int_equal(s.machines_done, 4);
	assert_int_equal(s.machines_failed, 0);
	for (int i = 0; i < 4; i++)
		assert_true(vm_exists(&f, i, "-test"));
	/* a TEST run while the drills exist: each machine fails with EEXISTS */
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_TEST, &st), SITEREC_EEXISTS);
	siterec_plan_free(p);
	unlink(sp);
	cJSON_Delete(d);

	/* a script over its time is killed with its process group; a failing callback */
	d = plan_json(&f, "fail", 2, first);
	char *pidf = th_path(f.dir, "bg.pid"), cmd[4600];
	snprintf(cmd, sizeof(cmd), "echo started; sleep 60 & echo $! > '%s'; wait", pidf);
	cJSON *grp = group_of(d, 0);
	add_action(grp, "before", "script", "slow", "command", cmd, NULL);
	cJSON_AddNumberToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(grp, "before"), 0), "timeout_s", 1);
	must(plan_open_json(&p, d, &o), "plan open");
	rec_clear(&r);
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st), SITEREC_ETIMEOUT);
	assert_int_equal(st, SITEREC_PLAN_FAILED);
	e = find_ev(&r, SITEREC_PLAN_EV_ACTION, "slow");
	assert_non_null(e);
	assert_int_equal(e->error, SITEREC_ETIMEOUT);
	assert_non_null(e->output);
	assert_non_null(strstr(e->output, "started"));
	size_t l = 0;
	char *pid_text = th_read_file(pidf, &l);
	pid_text[l] = '\0';
	pid_t bg = (pid_t)atoi(pid_text);
	free(pid_text);
	assert_true(bg > 0);
	/* the background sleep is gone (or a zombie awaiting its reaper) */
	char procf[64], stat_text[512] = "";
	snprintf(procf, sizeof(procf), "/proc/%d/stat", (int)bg);
	FILE *pf = fopen(procf, "r");
	if (pf) {
		if (!fgets(stat_text, sizeof(stat_text), pf))
			stat_text[0] = '\0';
		fclose(pf);
		char *rp = strrchr(stat_text, ')');
		assert_true(rp && (rp[2] == 'Z' || rp[2] == 'X'));
	}
	assert_int_equal(pstatus(p).machines_done, 0);
	assert_non_null(strstr(pstatus(p).error, "slow"));
	siterec_plan_free(p);
	unlink(sp);
	cJSON_Delete(d);

	d = plan_json(&f, "fail", 2, first);
	add_action(group_of(d, 1), "after", "callback", "hook", NULL, NULL, NULL);
	must(plan_open_json(&p, d, &o), "plan open");
	r.cb_fail = 5;
	th_assert_err(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st), SITEREC_EABORTED);
	assert_int_equal(pstatus(p).machines_done, 4);              /* the drills were cleaned up */
	r.cb_fail = 0;
	must(siterec_plan_resume(p, &st), "resume past the callback");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 4; i++)
		assert_false(vm_exists(&f, i, "-test"));
	siterec_plan_free(p);
	free(pidf);
	fixture_end(&f, &h, &r, d, sp);
}

/* ---- on Azurite: blobs for disks ---- */

static void azure(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 1, "az", 3, 1);
	const int first[] = { 0, 1, 3 };
	cJSON *d = plan_json(&f, "az", 2, first);
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 2);
	siterec_plan *p = NULL;
	must(plan_open_json(&p, d, &o), "plan open");
	uint32_t st = 0;
	must(siterec_plan_run(p, SITEREC_PLAN_TEST, &st), "azure test");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 3; i++) {
		assert_true(vm_exists(&f, i, "-test"));
		assert_int_equal(vm_status(&f, &h, i, SITEREC_FAILOVER_TEST).phase, SITEREC_FO_FAILED_OVER);
	}
	must(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st), "azure cleanup");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 3; i++) {
		assert_false(vm_exists(&f, i, "-test"));
		assert_int_equal(vm_status(&f, &h, i, SITEREC_FAILOVER_TEST).phase, SITEREC_FO_NONE);
	}
	siterec_plan_free(p);
	fixture_end(&f, &h, &r, d, sp);
}

/* ---- kills at random instants inside plan runs, then resume ---- */

#define KILLS 50

/* The child: the test failover and its cleanup of the whole plan, then a crash. */
static void crash_child(const farm *f, cJSON *d, const char *sp)
{
	hv h;
	hv_init(&h, f->hv);
	rec r;
	memset(&r, 0, sizeof(r));
	r.h = &h;
	siterec_plan_options o = popts(f, &h, &r, sp, 3);
	o.event = NULL;
	siterec_plan *p = NULL;
	uint32_t st = 0;
	if (plan_open_json(&p, d, &o) || siterec_plan_run(p, SITEREC_PLAN_TEST, &st) || st != SITEREC_PLAN_DONE ||
	    siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st) || st != SITEREC_PLAN_DONE)
		_exit(2);
	raise(SIGKILL);   /* as a crash would: no exit handlers, nothing flushed */
}

static void crash(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 0, "crash", 6, 1);
	const int first[] = { 0, 2, 4, 6 };
	cJSON *d = plan_json(&f, "crash", 3, first);
	char *log = th_path(f.dir, "script.log"), cmd[4600];
	snprintf(cmd, sizeof(cmd), "echo $SITEREC_PLAN_OP-$SITEREC_PLAN_GROUP >> '%s'", log);
	add_action(group_of(d, 1), "before", "script", "between", "command", cmd, NULL);
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 3);
	o.event = NULL;
	/* how long a whole child takes, to spread the kills over it */
	int64_t t0 = wall_ms();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(&f, d, sp);
	int wst = 0;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFSIGNALED(wst));   /* it ran to its end */
	int64_t span = wall_ms() - t0 + 1;
	uint64_t rng = 4242;
	unsigned kills = 0, mid = 0;
	while (kills < KILLS) {
		unlink(sp);   /* each child starts a fresh run */
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(&f, d, sp);
		usleep((useconds_t)(th_rand(&rng) % (uint64_t)(span * 1000)));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &wst, 0), pid);
		if (WIFEXITED(wst))
			fail_msg("the crash child failed before its kill (exit %d)", WEXITSTATUS(wst));
		kills++;
		siterec_plan *p = NULL;
		must(plan_open_json(&p, d, &o), "plan open after a kill");
		siterec_plan_status s = pstatus(p);
		uint32_t st = s.state;
		if (s.state == SITEREC_PLAN_RUNNING) {
			mid++;
			must(siterec_plan_resume(p, &st), "plan resume after a kill");
			assert_int_equal(st, SITEREC_PLAN_DONE);
		}
		assert_true(st == SITEREC_PLAN_DONE || st == SITEREC_PLAN_IDLE);
		/* every machine as the finished run says: drills exist exactly after a TEST run */
		int drills = s.op == SITEREC_PLAN_TEST;
		for (int i = 0; i < f.n; i++) {
			uint32_t ph = vm_status(&f, &h, i, SITEREC_FAILOVER_TEST).phase;
			if (st == SITEREC_PLAN_IDLE) {   /* killed before the run was recorded: nothing began */
				assert_int_equal(ph, SITEREC_FO_NONE);
				assert_false(vm_exists(&f, i, "-test"));
				continue;
			}
			assert_int_equal(ph, drills ? SITEREC_FO_FAILED_OVER : SITEREC_FO_NONE);
			assert_int_equal(vm_exists(&f, i, "-test"), drills);
		}
		if (drills) {   /* back to no drill for the next child */
			uint32_t st2 = 0;
			must(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st2), "cleanup after a kill");
			assert_int_equal(st2, SITEREC_PLAN_DONE);
			for (int i = 0; i < f.n; i++)
				assert_false(vm_exists(&f, i, "-test"));
		}
		siterec_plan_free(p);
	}
	fprintf(stderr, "crash: %u kills, %u of them inside a run (a child takes %lld ms)\n", kills, mid,
	        (long long)span);
	assert_true(mid > 0);
	size_t l = 0;
	char *text = th_read_file(log, &l);
	text[l] = '\0';   /* th_read_file leaves a spare byte */
	assert_non_null(strstr(text, "test-g2\n"));
	assert_non_null(strstr(text, "cleanup-g2\n"));
	free(text);
	free(log);
	fixture_end(&f, &h, &r, d, sp);
}

/* ---- planned failover, commit, failback and its commit through a plan ---- */

static const farm *cur_farm;                 /* for the replication callback */
static siterec_store *repl_stores[MAX_VMS];  /* the handles' stores, freed at the end */

/* The source host's replication handle of a VM (the plan frees it). */
static int repl_cb(const char *vm_id, siterec_replication **out, void *payload)
{
	(void)payload;
	int i = vm_index(vm_id);
	char leaf[64];
	snprintf(leaf, sizeof(leaf), "%s.raw", vm_id);
	char *path = th_path(cur_farm->dir, leaf);
	snprintf(leaf, sizeof(leaf), "%s-state", vm_id);
	char *state = th_path(cur_farm->dir, leaf);
	int rc = repl_stores[i] ? 0 : siterec_store_open(&repl_stores[i], cur_farm->url, &cur_farm->so);
	siterec_vm_disk d = { .id = "os", .path = path, .role = SITEREC_DISK_ROLE_OS };
	siterec_vm vm = { .version = SITEREC_VM_VERSION, .generation = 2, .id = vm_id, .name = vm_id,
	                  .n_disks = 1, .disks = &d };
	siterec_replication_options o = SITEREC_REPLICATION_OPTIONS_INIT;
	o.state_dir = state;
	o.store = repl_stores[i];
	o.interval_s = 30;
	if (rc == 0)
		rc = siterec_replication_open(out, &vm, &o);
	free(path);
	free(state);
	return rc ? -1 : 0;
}

static int shutdowns;   /* atomic */

static int hv_shutdown(const char *vm_id, void *payload)
{
	(void)vm_id;
	(void)payload;
	__atomic_add_fetch(&shutdowns, 1, __ATOMIC_RELAXED);
	return 0;
}

static void planned_failback(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 0, "pfb", 3, 1);
	cur_farm = &f;
	const int first[] = { 0, 1, 3 };
	cJSON *d = plan_json(&f, "pfb", 2, first);
	/* every machine fails back into its own image (scanned: no journal) */
	cJSON *gs = cJSON_GetObjectItem(d, "groups"), *grp;
	cJSON_ArrayForEach(grp, gs) {
		cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItem(grp, "machines")) {
			const char *vm = cJSON_GetObjectItem(m, "vm")->valuestring;
			char leaf[64];
			snprintf(leaf, sizeof(leaf), "%s.raw", vm);
			char *path = th_path(f.dir, leaf);
			cJSON *fb = cJSON_AddObjectToObject(m, "failback");
			cJSON_AddStringToObject(fb, "mode", "minimize-downtime");
			cJSON *dk = cJSON_CreateObject();
			cJSON_AddStringToObject(dk, "id", "os");
			cJSON_AddStringToObject(dk, "path", path);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(fb, "disks"), dk);
			free(path);
		}
	}
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 2);
	o.replication = repl_cb;
	o.shutdown = hv_shutdown;
	siterec_plan *p = NULL;
	must(plan_open_json(&p, d, &o), "plan open");
	uint32_t st = 0;
	must(siterec_plan_run(p, SITEREC_PLAN_PLANNED, &st), "plan run planned");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	assert_int_equal(__atomic_load_n(&shutdowns, __ATOMIC_RELAXED), 3);   /* each source shut down */
	for (int i = 0; i < 3; i++) {
		siterec_failover_status s = vm_status(&f, &h, i, SITEREC_FAILOVER_PLANNED);
		assert_int_equal(s.type, SITEREC_FAILOVER_PLANNED);
		assert_int_equal(s.phase, SITEREC_FO_FAILED_OVER);
		assert_int_equal(s.point_id, s.fence_id);   /* the point of the last cycle */
	}
	must(siterec_plan_run(p, SITEREC_PLAN_COMMIT, &st), "plan run commit");
	/* the failed-over VMs change their disks */
	for (int i = 0; i < 3; i++) {
		char *p2 = th_path(f.out[i], "os.raw");
		int fd = open(p2, O_WRONLY);
		assert_true(fd >= 0);
		uint8_t b[8 * KiB];
		th_fill(b, sizeof(b), 900 + (uint64_t)i);
		assert_int_equal(pwrite(fd, b, sizeof(b), (off_t)(256 * KiB)), (ssize_t)sizeof(b));
		close(fd);
		free(p2);
	}
	must(siterec_plan_run(p, SITEREC_PLAN_FAILBACK, &st), "plan run failback");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 3; i++) {
		siterec_failover_status s = vm_status(&f, &h, i, SITEREC_FAILOVER_FAILBACK);
		assert_int_equal(s.phase, SITEREC_FO_FAILED_OVER);
		assert_true(s.bytes_differing >= 8 * KiB && s.bytes_differing < MiB);
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "%s.raw", f.id[i]);
		char *onprem = th_path(f.dir, leaf), *failed = th_path(f.out[i], "os.raw");
		assert_int_equal(th_files_equal(onprem, failed), 0);
		free(onprem);
		free(failed);
	}
	must(siterec_plan_run(p, SITEREC_PLAN_COMMIT, &st), "plan run commit of the failbacks");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vm_status(&f, &h, i, SITEREC_FAILOVER_FAILBACK).phase, SITEREC_FO_COMMITTED);
		char *failed = th_path(f.out[i], "os.raw");
		assert_int_not_equal(access(failed, F_OK), 0);   /* the failed-over disks are gone */
		free(failed);
	}
	siterec_plan_free(p);
	for (int i = 0; i < MAX_VMS; i++) {
		siterec_store_free(repl_stores[i]);
		repl_stores[i] = NULL;
	}
	fixture_end(&f, &h, &r, d, sp);
}

/* ---- the seed service's limits: 100 machines in 7 groups, run for real ---- */

static void hundred(void **state)
{
	(void)state;
	farm f;
	hv h;
	rec r;
	fixture(&f, &h, &r, 0, "hundred", 100, 1);
	const int first[] = { 0, 15, 30, 45, 60, 75, 90, 100 };
	cJSON *d = plan_json(&f, "hundred", 7, first);
	char *sp = th_path(f.dir, "plan-state.json");
	siterec_plan_options o = popts(&f, &h, &r, sp, 8);
	siterec_plan *p = NULL;
	must(plan_open_json(&p, d, &o), "plan open");
	uint32_t st = 0;
	must(siterec_plan_run(p, SITEREC_PLAN_TEST, &st), "plan run test");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	siterec_plan_status s = pstatus(p);
	assert_int_equal(s.n_groups, 7);
	assert_int_equal(s.n_machines, 100);
	assert_int_equal(s.machines_done, 100);
	for (int i = 0; i < 100; i++)
		assert_true(vm_exists(&f, i, "-test"));
	/* groups in order: every start of group k+1 after every end of group k */
	for (int k = 0; k + 1 < 7; k++)
		for (int i = first[k]; i < first[k + 1]; i++)
			for (int j = first[k + 1]; j < first[k + 2]; j++)
				assert_true(h.end_seq[i] < h.start_seq[j]);
	rec_clear(&r);
	must(siterec_plan_run(p, SITEREC_PLAN_CLEANUP, &st), "plan run cleanup");
	assert_int_equal(st, SITEREC_PLAN_DONE);
	for (int i = 0; i < 100; i++)
		assert_false(vm_exists(&f, i, "-test"));
	siterec_plan_free(p);
	fixture_end(&f, &h, &r, d, sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_documents),
		cmocka_unit_test(flow),
		cmocka_unit_test(failures),
		cmocka_unit_test(azure),
		cmocka_unit_test(crash),
		cmocka_unit_test(planned_failback),
		cmocka_unit_test(hundred),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
