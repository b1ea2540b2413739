/* Failover (failover.h) through the public API, on both targets: test failover
 * and cleanup beside running replication, unplanned failover to an older point,
 * change of point, commit; planned failover with no data loss; cancel and a
 * point in time; the old primary fenced (split-brain); kills at random instants
 * with resume; bad input. */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <dirent.h>
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
#define N_DISKS 2

static const uint64_t sizes[N_DISKS] = { 2 * MiB, 4 * MiB };
static const char *const ids[N_DISKS] = { "os", "data" };

TH_AZURITE_GROUP(g, "test_failover")

/* ---- the source VM: two raw disks written through the journal ---- */

typedef struct fx {
	char *dir, *state_dir, *out_dir, *hv_dir;
	char *path[N_DISKS];
	int fd[N_DISKS];
	siterec_vm_disk disks[N_DISKS];
	siterec_vm vm;
	siterec_store *st;
	siterec_journal *jw;
	pthread_t poller;
	int stop;          /* poller: atomic accesses */
	pthread_t writer;
	int writing;       /* background writer runs: atomic */
	int azure;
	uint64_t rng;
	unsigned writes_done;  /* by the background writer */
} fx;

static int disk_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	int fd = *(int *)payload;
	return pwrite(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

static void *poll_main(void *arg)
{
	fx *f = arg;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		siterec_journal_poll(f->jw, NULL);
		usleep(300);
	}
	return NULL;
}

/* One random write of 512 B .. 32 KiB through journal j (disks in fixture order). */
static void fx_write1_j(siterec_journal *j, uint64_t *rng)
{
	static __thread uint8_t buf[32 * KiB];
	uint32_t d = (uint32_t)(th_rand(rng) % N_DISKS);
	uint64_t len = 512 * (1 + th_rand(rng) % 64);
	uint64_t off = 512 * (th_rand(rng) % ((sizes[d] - len) / 512 + 1));
	th_fill(buf, len, th_rand(rng));
	int rc = siterec_journal_write(j, d, buf, len, off);
	if (rc)
		fprintf(stderr, "journal write: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
}

static void fx_write1(fx *f, uint64_t *rng)
{
	fx_write1_j(f->jw, rng);
}

static void fx_writes(fx *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fx_write1(f, &f->rng);
}

static void *writer_main(void *arg)
{
	fx *f = arg;
	uint64_t rng = 0xfeed;
	while (__atomic_load_n(&f->writing, __ATOMIC_ACQUIRE)) {
		fx_write1(f, &rng);
		f->writes_done++;
		usleep(200);
	}
	return NULL;
}

static void must(int rc, const char *what)
{
	if (rc)
		fprintf(stderr, "%s: %s\n", what, siterec_error_last()->message);
	assert_int_equal(rc, 0);
}

static void fx_journal(fx *f)
{
	siterec_journal_disk jd[N_DISKS];
	for (int i = 0; i < N_DISKS; i++)
		jd[i] = (siterec_journal_disk){ .id = ids[i], .size = sizes[i], .write = disk_write,
		                                .write_payload = &f->fd[i] };
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER;
	jo.n_disks = N_DISKS;
	jo.disks = jd;
	char *jdir = th_path(f->state_dir, "journal");
	must(siterec_journal_open(&f->jw, jdir, &jo), "journal open");
	free(jdir);
	__atomic_store_n(&f->stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&f->poller, NULL, poll_main, f), 0);
}

static void fx_journal_close(fx *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
	pthread_join(f->poller, NULL);
	siterec_journal_free(f->jw);
	f->jw = NULL;
}

static siterec_replication_options repl_opts(fx *f, uint32_t flags)
{
	siterec_replication_options o = SITEREC_REPLICATION_OPTIONS_INIT;
	o.flags = flags;
	o.state_dir = f->state_dir;
	o.store = f->st;
	o.interval_s = 30;
	return o;
}

/* A protected VM after its initial replication; the replication handle to *r. */
static void fx_setup(fx *f, int azure, const char *name, siterec_replication **r)
{
	memset(f, 0, sizeof(*f));
	f->azure = azure;
	f->rng = 0xabc + (uint64_t)azure;
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/%s-%s", g.dir, name, azure ? "az" : "file");
	th_sh("mkdir -p '%s/hv'", sub);
	f->dir = strdup(sub);
	f->state_dir = th_path(f->dir, "state");
	f->out_dir = th_path(f->dir, "out");
	f->hv_dir = th_path(f->dir, "hv");
	for (int i = 0; i < N_DISKS; i++) {
		char leaf[32];
		snprintf(leaf, sizeof(leaf), "%s.raw", ids[i]);
		f->path[i] = th_path(f->dir, leaf);
		f->fd[i] = th_make_file(f->path[i], sizes[i]);
		uint8_t *b = malloc(256 * KiB);
		assert_non_null(b);
		th_fill(b, 256 * KiB, 10 + (uint64_t)i);
		assert_int_equal(pwrite(f->fd[i], b, 256 * KiB, 0), (ssize_t)(256 * KiB));
		free(b);
		f->disks[i] = (siterec_vm_disk){ .id = ids[i], .path = f->path[i],
		                                 .role = i ? SITEREC_DISK_ROLE_DATA : SITEREC_DISK_ROLE_OS };
	}
	f->vm = (siterec_vm){ .version = SITEREC_VM_VERSION, .generation = 2, .id = "vm-1", .name = "web",
	                      .n_disks = N_DISKS, .disks = f->disks };
	snprintf(sub, sizeof(sub), "fo%s%s", name, azure ? "az" : "file");
	f->st = th_store_open(&g, azure, sub);
	siterec_replication_options o = repl_opts(f, SITEREC_REPLICATION_PROTECT);
	must(siterec_replication_open(r, &f->vm, &o), "protect");
	fx_journal(f);
	must(siterec_replication_initial(*r), "initial");
}

static void fx_teardown(fx *f)
{
	if (f->jw)
		fx_journal_close(f);
	siterec_store_free(f->st);
	for (int i = 0; i < N_DISKS; i++) {
		close(f->fd[i]);
		free(f->path[i]);
	}
	free(f->state_dir);
	free(f->out_dir);
	free(f->hv_dir);
	free(f->dir);
}

/* The sources' content now. */
typedef struct copy { uint8_t *d[N_DISKS]; } copy;

static copy take_copy(fx *f)
{
	copy c;
	for (int i = 0; i < N_DISKS; i++) {
		assert_non_null(c.d[i] = malloc(sizes[i]));
		assert_int_equal(pread(f->fd[i], c.d[i], sizes[i], 0), (ssize_t)sizes[i]);
	}
	return c;
}

static void free_copy(copy *c)
{
	for (int i = 0; i < N_DISKS; i++)
		free(c->d[i]);
}

/* A cycle whose point holds the sources as they are now (no write meanwhile). */
static uint64_t cycle_copy(fx *f, siterec_replication *r, copy *c)
{
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	assert_true(res.point_id > 0);
	*c = take_copy(f);
	return res.point_id;
}

/* ---- the target's hypervisor: a directory of VM files ---- */

typedef struct hv {
	const char *dir;
	int starts, removes, shutdowns;
	uint32_t isolated, generation, firmware, n_disks, n_nics;
	uint64_t point_id;
	char net[80], subnet[80], name[160], loc0[4200];
	int fail_start;
	char *arm;
	fx *source;           /* the shutdown callback stops its writer */
	struct foside *fo;    /* the failed-over VM's write path, stopped by its shutdown */
	uint32_t last_type, last_gen, last_fw;
} hv;

/* The VM on the failed-over side writing its disks (files or blobs) through a
 * journal, so that failback can ship only its writes. */
typedef struct foside {
	fx *f;
	siterec_journal *jw;
	char *jdir;
	siterec_disk *disk[N_DISKS];          /* file outputs */
	siterec_store_writer *w[N_DISKS];     /* blob outputs */
	pthread_t writer;
	int writing;                          /* atomic */
	unsigned writes;
	uint64_t rng;
} foside;

/* The marker of a VM: on-premises ones (failback) apart from the target's. */
static void vm_file(const hv *h, const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", h->dir, name);
}

static void vm_file_of(const hv *h, const siterec_failover_vm *vm, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s%s", h->dir, vm->name, vm->type == SITEREC_FAILOVER_FAILBACK ? "@onprem" : "");
}

static int hv_start(const siterec_failover_vm *vm, void *payload)
{
	hv *h = payload;
	h->starts++;
	if (h->fail_start)
		return -7;
	h->isolated = vm->isolated;
	h->generation = vm->generation;
	h->firmware = vm->firmware;
	h->n_disks = vm->n_disks;
	h->n_nics = vm->n_nics;
	h->point_id = vm->point_id;
	snprintf(h->name, sizeof(h->name), "%s", vm->name);
	snprintf(h->loc0, sizeof(h->loc0), "%s", vm->disks[0].location);
	if (vm->n_nics) {
		snprintf(h->net, sizeof(h->net), "%s", vm->nics[0].network);
		snprintf(h->subnet, sizeof(h->subnet), "%s", vm->nics[0].subnet);
	}
	free(h->arm);
	h->arm = vm->arm_template ? strdup(vm->arm_template) : NULL;
	h->last_type = vm->type;
	h->last_gen = vm->generation;
	h->last_fw = vm->firmware;
	char p[4300];
	vm_file_of(h, vm, p, sizeof(p));
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int hv_remove(const siterec_failover_vm *vm, void *payload)
{
	hv *h = payload;
	h->removes++;
	char p[4300];
	vm_file_of(h, vm, p, sizeof(p));
	return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}

static int fo_write_cb(const void *buf, size_t len, uint64_t off, void *payload)
{
	void **target = payload;   /* [0]: disk or NULL, [1]: writer */
	if (target[0])
		return siterec_disk_write(target[0], buf, len, off);
	int rc = siterec_store_writer_write(target[1], buf, len, off);
	return rc ? rc : siterec_store_writer_finish(target[1]);
}

static void *fo_main(void *arg)
{
	foside *s = arg;
	while (__atomic_load_n(&s->writing, __ATOMIC_ACQUIRE)) {
		fx_write1_j(s->jw, &s->rng);
		s->writes++;
		usleep(300);
	}
	return NULL;
}

static void *fo_targets[N_DISKS][2];

/* Open the failed-over VM's write path on the failover's disks; start = 1: a
 * thread keeps writing until fo_stop. */
static void fo_start(foside *s, fx *f, int start)
{
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->rng = 0x5eed;
	s->jdir = th_path(f->dir, "fojournal");
	siterec_journal_disk jd[N_DISKS];
	for (int i = 0; i < N_DISKS; i++) {
		if (f->azure) {
			char name[128];
			snprintf(name, sizeof(name), "vm-1/failover-disks/%s", ids[i]);
			must(siterec_store_writer_open(&s->w[i], f->st, name, NULL), "failover disk writer");
		} else {
			char leaf[64];
			snprintf(leaf, sizeof(leaf), "%s.vhd", ids[i]);
			char *p = th_path(f->out_dir, leaf);
			siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
			o.flags = SITEREC_DISK_OPEN_WRITE;
			must(siterec_disk_open(&s->disk[i], p, &o), "failover disk open");
			free(p);
		}
		fo_targets[i][0] = s->disk[i];
		fo_targets[i][1] = s->w[i];
		jd[i] = (siterec_journal_disk){ .id = ids[i], .size = sizes[i], .write = fo_write_cb,
		                                .write_payload = fo_targets[i] };
	}
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE;
	jo.n_disks = N_DISKS;
	jo.disks = jd;
	must(siterec_journal_open(&s->jw, s->jdir, &jo), "failed-over journal");
	if (start) {
		__atomic_store_n(&s->writing, 1, __ATOMIC_RELEASE);
		assert_int_equal(pthread_create(&s->writer, NULL, fo_main, s), 0);
	}
}

/* The failed-over VM shuts down: its writes stop, its write path closes. */
static void fo_stop(foside *s)
{
	if (__atomic_exchange_n(&s->writing, 0, __ATOMIC_ACQ_REL))
		pthread_join(s->writer, NULL);
	siterec_journal_free(s->jw);
	s->jw = NULL;
	for (int i = 0; i < N_DISKS; i++) {
		if (s->w[i])
			must(siterec_store_writer_finish(s->w[i]), "failover disk writer finish");
		siterec_store_writer_free(s->w[i]);
		siterec_disk_free(s->disk[i]);
		s->w[i] = NULL;
		s->disk[i] = NULL;
	}
}

static void fo_free(foside *s)
{
	fo_stop(s);
	free(s->jdir);
}

static int hv_shutdown(const char *vm_id, void *payload)
{
	hv *h = payload;
	h->shutdowns++;
	if (strcmp(vm_id, "vm-1") != 0) {   /* the failed-over VM (failback): stopped, not deleted */
		assert_non_null(h->fo);
		fo_stop(h->fo);
		char p[4300];
		vm_file(h, vm_id, p, sizeof(p));
		return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
	}
	if (__atomic_exchange_n(&h->source->writing, 0, __ATOMIC_ACQ_REL))
		pthread_join(h->source->writer, NULL);
	return 0;
}

static int vm_exists(const hv *h, const char *name)
{
	char p[4300];
	vm_file(h, name, p, sizeof(p));
	return access(p, F_OK) == 0;
}

static siterec_failover *fo_open(fx *f, siterec_store *st, hv *h, siterec_replication *r)
{
	siterec_failover_options o = SITEREC_FAILOVER_OPTIONS_INIT;
	o.store = st;
	o.vm_id = "vm-1";
	o.start = hv_start;
	o.remove = hv_remove;
	o.shutdown = hv_shutdown;
	o.replication = r;
	o.payload = h;
	siterec_failover *fo = NULL;
	must(siterec_failover_open(&fo, &o), "failover open");
	(void)f;
	return fo;
}

static const char *const subnets_prod[] = { "front", "back" };
static const siterec_network_map nmap[] = {
	{ .source_network = "corp", .target_network = "vnet-dr", .n_subnets = 2, .subnets = subnets_prod },
};
static const siterec_nic nics[] = { { .network = "corp", .subnet = "back", .ip = "10.0.0.5" } };

static siterec_failover_request request(fx *f, uint32_t type, uint32_t how, uint64_t id)
{
	siterec_failover_request q = SITEREC_FAILOVER_REQUEST_INIT;
	q.type = type;
	q.point.how = how;
	q.point.id = id;
	q.disk_dir = f->azure ? NULL : f->out_dir;
	q.n_nics = 1;
	q.nics = nics;
	q.n_networks = 1;
	q.networks = nmap;
	q.test_network = type == SITEREC_FAILOVER_TEST ? "vnet-drill" : NULL;
	q.os_type = "Linux";
	return q;
}

/* The failover's disks (test or failover ones) equal copy c. */
static void check_outputs(fx *f, int test, const copy *c)
{
	uint8_t *buf = malloc(4 * MiB);
	assert_non_null(buf);
	for (int i = 0; i < N_DISKS; i++) {
		if (f->azure) {
			char name[128];
			snprintf(name, sizeof(name), "vm-1/%s/%s", test ? "test-disks" : "failover-disks", ids[i]);
			must(siterec_store_read(f->st, name, NULL, buf, sizes[i], 0), "read a failover disk");
		} else {
			char leaf[64];
			snprintf(leaf, sizeof(leaf), "%s%s.vhd", ids[i], test ? "-test" : "");
			char *p = th_path(f->out_dir, leaf);
			int fd = open(p, O_RDONLY);
			assert_true(fd >= 0);
			assert_int_equal(pread(fd, buf, sizes[i], 0), (ssize_t)sizes[i]);
			close(fd);
			/* a fixed VHD: the data part (a whole MiB), then the footer */
			assert_int_equal(th_file_size(p), (long long)(sizes[i] + 512));
			free(p);
		}
		if (memcmp(buf, c->d[i], sizes[i]) != 0)
			fail_msg("%s disk %s differs from the expected content", test ? "test" : "failover", ids[i]);
	}
	free(buf);
}

static int outputs_gone(fx *f, int test)
{
	for (int i = 0; i < N_DISKS; i++) {
		if (f->azure) {
			char name[128];
			uint64_t sz;
			snprintf(name, sizeof(name), "vm-1/%s/%s", test ? "test-disks" : "failover-disks", ids[i]);
			if (siterec_store_disk_size(f->st, name, NULL, &sz) != SITEREC_ENOTFOUND)
				return 0;
		} else {
			char leaf[64];
			snprintf(leaf, sizeof(leaf), "%s%s.vhd", ids[i], test ? "-test" : "");
			char *p = th_path(f->out_dir, leaf);
			int there = access(p, F_OK) == 0;
			free(p);
			if (there)
				return 0;
		}
	}
	return 1;
}

static uint32_t phase(siterec_failover *fo, uint32_t type)
{
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, type, &s), "failover status");
	return s.phase;
}

static uint64_t n_points(siterec_store *st)
{
	siterec_rp_catalog *cat = NULL;
	uint64_t n = 0;
	must(siterec_rp_open(&cat, st, "vm-1"), "rp open");
	must(siterec_rp_count(cat, &n), "rp count");
	siterec_rp_free(cat);
	return n;
}

static uint32_t repl_state(fx *f)
{
	siterec_replication *r = NULL;
	siterec_replication_options o = repl_opts(f, 0);
	int rc = siterec_replication_open(&r, &f->vm, &o);
	siterec_replication_free(r);
	return rc == SITEREC_ESTATE ? SITEREC_REPL_FAILED_OVER : rc == 0 ? SITEREC_REPL_PROTECTED : 0;
}

/* ---- the main flow ---- */

static void flow(int azure)
{
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, azure, "flow", &r);
	hv h = { .dir = f.hv_dir, .source = &f };
	copy c1, c2, c3;
	fx_writes(&f, 30);
	uint64_t p1 = cycle_copy(&f, r, &c1);
	fx_writes(&f, 30);
	uint64_t p2 = cycle_copy(&f, r, &c2);
	assert_true(p2 > p1);

	/* test failover from the latest processed point (the replicas' snapshots, once
	 * the shipped logs are applied), beside replication */
	uint64_t waiting = 1;
	must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, &waiting), "apply");
	assert_int_equal(waiting, 0);
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_TEST, SITEREC_POINT_LATEST_PROCESSED, 0);
	must(siterec_failover_test(fo, &q), "test failover");
	assert_int_equal(phase(fo, SITEREC_FAILOVER_TEST), SITEREC_FO_FAILED_OVER);
	assert_int_equal(h.isolated, 1);
	assert_string_equal(h.name, "web-test");
	assert_string_equal(h.net, "vnet-drill");
	assert_int_equal(h.point_id, p2);
	assert_int_equal(h.generation, 1);   /* generation 2 runs as 1 on Azure */
	assert_int_equal(h.firmware, SITEREC_FIRMWARE_BIOS);
	assert_true(vm_exists(&h, "web-test"));
	check_outputs(&f, 1, &c2);
	if (azure) {
		assert_non_null(h.arm);
		cJSON *t = cJSON_Parse(h.arm);
		assert_non_null(t);
		assert_non_null(strstr(h.arm, "/vm-1/test-disks/os"));
		assert_non_null(strstr(h.arm, "\"hyperVGeneration\":\t\"V1\""));
		cJSON_Delete(t);
		assert_true(strncmp(h.loc0, "http://127.0.0.1:", 17) == 0);
		char *arm = NULL;
		must(siterec_failover_arm_template(fo, SITEREC_FAILOVER_TEST, &arm), "arm template");
		assert_string_equal(arm, h.arm);
		siterec_free(arm);
	} else {
		assert_null(h.arm);
		th_assert_err(siterec_failover_arm_template(fo, SITEREC_FAILOVER_TEST, &(char *){ NULL }),
		              SITEREC_EUNSUPPORTED);
	}
	/* a second drill is refused; replication goes on undisturbed */
	th_assert_err(siterec_failover_test(fo, &q), SITEREC_EEXISTS);
	fx_writes(&f, 30);
	uint64_t p3 = cycle_copy(&f, r, &c3);
	check_outputs(&f, 1, &c2);
	must(siterec_failover_test_cleanup(fo), "test cleanup");
	assert_false(vm_exists(&h, "web-test"));
	assert_true(outputs_gone(&f, 1));
	assert_int_equal(phase(fo, SITEREC_FAILOVER_TEST), SITEREC_FO_NONE);
	th_assert_err(siterec_failover_test_cleanup(fo), SITEREC_ENOTFOUND);
	siterec_failover_free(fo);

	/* unplanned failover to an older point, from another host (its own store handle) */
	char cname[64];
	snprintf(cname, sizeof(cname), "foflow%s", azure ? "az" : "file");
	siterec_store *st2 = th_store_open(&g, azure, cname);
	fo = fo_open(&f, st2, &h, NULL);
	q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_ID, p1);
	must(siterec_failover_run(fo, &q), "unplanned failover");
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_FAILED_OVER);
	assert_int_equal(h.isolated, 0);
	assert_string_equal(h.name, "web");
	assert_string_equal(h.net, "vnet-dr");
	assert_string_equal(h.subnet, "back");   /* the same subnet name */
	check_outputs(&f, 0, &c1);
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EEXISTS);
	/* the old primary is fenced: its next cycle fails, it cannot reopen */
	fx_writes(&f, 10);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	int rc = siterec_replication_cycle(r, &res);
	assert_true(rc == SITEREC_ELEASE || rc == SITEREC_ECONFLICT);
	/* nor can it resync the replicas from its side */
	rc = siterec_replication_resync(r, &res);
	assert_true(rc == SITEREC_ELEASE || rc == SITEREC_ECONFLICT);
	siterec_replication_free(r);
	r = NULL;
	assert_int_equal(repl_state(&f), SITEREC_REPL_FAILED_OVER);
	/* a point the old primary may have added after the take-over is never chosen */
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, SITEREC_FAILOVER_UNPLANNED, &s), "status");
	assert_int_equal(s.fence_id, p3);
	siterec_point_choice ch = { .how = SITEREC_POINT_LATEST };
	must(siterec_failover_change_point(fo, &ch), "change point");
	assert_int_equal(h.point_id, p3);
	check_outputs(&f, 0, &c3);
	assert_true(vm_exists(&h, "web"));
	ch = (siterec_point_choice){ .how = SITEREC_POINT_ID, .id = p3 + 1000 };
	th_assert_err(siterec_failover_change_point(fo, &ch), SITEREC_ENOTFOUND);
	/* the failed change left the failover without a VM: resume it onto a valid point */
	ch = (siterec_point_choice){ .how = SITEREC_POINT_ID, .id = p2 };
	must(siterec_failover_change_point(fo, &ch), "change point back");
	check_outputs(&f, 0, &c2);
	must(siterec_failover_commit(fo), "commit");
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_COMMITTED);
	assert_int_equal(n_points(f.st), 1);
	must(siterec_failover_commit(fo), "commit again");
	th_assert_err(siterec_failover_cancel(fo), SITEREC_ESTATE);
	th_assert_err(siterec_failover_change_point(fo, &ch), SITEREC_ESTATE);
	assert_int_equal(repl_state(&f), SITEREC_REPL_FAILED_OVER);
	siterec_failover_free(fo);
	siterec_store_free(st2);
	free(h.arm);
	free_copy(&c1);
	free_copy(&c2);
	free_copy(&c3);
	fx_teardown(&f);
}

static void flow_file(void **state) { (void)state; flow(0); }
static void flow_azure(void **state) { (void)state; flow(1); }

/* ---- planned failover: no data loss ---- */

static void planned(int azure)
{
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, azure, "planned", &r);
	hv h = { .dir = f.hv_dir, .source = &f };
	fx_writes(&f, 20);
	must(siterec_replication_cycle(r, NULL), "cycle");
	/* the VM keeps writing until the shutdown callback stops it */
	__atomic_store_n(&f.writing, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&f.writer, NULL, writer_main, &f), 0);
	usleep(100 * 1000);
	siterec_failover *fo = fo_open(&f, f.st, &h, r);
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_PLANNED, 0, 0);
	must(siterec_failover_run(fo, &q), "planned failover");
	assert_int_equal(h.shutdowns, 1);
	assert_true(f.writes_done > 0);
	copy c = take_copy(&f);   /* the source after shutdown */
	check_outputs(&f, 0, &c);
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, SITEREC_FAILOVER_PLANNED, &s), "status");
	assert_int_equal(s.type, SITEREC_FAILOVER_PLANNED);
	assert_true(s.shutdown_ms > 0 && s.vm_started_ms >= s.shutdown_ms);
	assert_int_equal(s.point_id, s.fence_id);
	siterec_replication_free(r);
	must(siterec_failover_commit(fo), "commit");
	siterec_failover_free(fo);
	free_copy(&c);
	free(h.arm);
	fx_teardown(&f);
}

static void planned_file(void **state) { (void)state; planned(0); }
static void planned_azure(void **state) { (void)state; planned(1); }

/* ---- cancel, then replication goes on; a point in time ---- */

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cancel_and_time(void **state)
{
	(void)state;
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, 0, "cancel", &r);
	hv h = { .dir = f.hv_dir, .source = &f };
	copy c0, c1, c2;
	fx_writes(&f, 20);
	cycle_copy(&f, r, &c0);
	/* a checkpoint between two points: the instant after it is restorable */
	fx_writes(&f, 20);
	usleep(20 * 1000);
	must(siterec_replication_checkpoint(r, NULL), "checkpoint");
	c1 = take_copy(&f);
	usleep(20 * 1000);
	int64_t t1 = wall_ms();
	usleep(20 * 1000);
	fx_writes(&f, 20);
	cycle_copy(&f, r, &c2);
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_TIME, 0);
	q.point.time_ms = t1;
	q.output = SITEREC_OUTPUT_VHD;
	must(siterec_failover_run(fo, &q), "failover to an instant");
	check_outputs(&f, 0, &c1);
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, SITEREC_FAILOVER_UNPLANNED, &s), "status");
	assert_true(s.point_time_ms > 0 && s.point_time_ms <= t1);
	/* cancel: the VM and disks go, replication takes up where it stood */
	siterec_replication_free(r);
	must(siterec_failover_cancel(fo), "cancel");
	assert_false(vm_exists(&h, "web"));
	assert_true(outputs_gone(&f, 0));
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_NONE);
	th_assert_err(siterec_failover_cancel(fo), SITEREC_ENOTFOUND);
	siterec_replication_options o = repl_opts(&f, 0);
	must(siterec_replication_open(&r, &f.vm, &o), "replication after cancel");
	fx_writes(&f, 10);
	copy c3;
	uint64_t p = cycle_copy(&f, r, &c3);
	assert_true(p > 0);
	siterec_replication_free(r);
	/* after a failed start callback, resume starts the VM */
	h.fail_start = 1;
	q.point = (siterec_point_choice){ .how = SITEREC_POINT_LATEST_APP };
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_ENOTFOUND);   /* no app-consistent point */
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_NONE);
	q.point = (siterec_point_choice){ .how = SITEREC_POINT_LATEST_PROCESSED };
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, -7);
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_STARTING_VM);
	h.fail_start = 0;
	uint32_t n = 0;
	must(siterec_failover_resume(fo, &n), "resume");
	assert_int_equal(n, 1);
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_FAILED_OVER);
	assert_true(vm_exists(&h, "web"));
	must(siterec_failover_resume(fo, &n), "resume with nothing to do");
	assert_int_equal(n, 0);
	must(siterec_failover_cancel(fo), "cancel");
	siterec_failover_free(fo);
	free_copy(&c0);
	free_copy(&c1);
	free_copy(&c2);
	free_copy(&c3);
	fx_teardown(&f);
}

/* ---- the latest app-consistent point ---- */

static int quiesce_ok(int freeze, void *payload)
{
	(void)freeze;
	(*(int *)payload)++;
	return 0;
}

static void app_point(void **state)
{
	(void)state;
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, 0, "app", &r);
	siterec_replication_free(r);
	int calls = 0;
	siterec_replication_options o = repl_opts(&f, 0);
	o.app_every_s = 3600;
	o.quiesce = quiesce_ok;
	o.quiesce_payload = &calls;
	must(siterec_replication_open(&r, &f.vm, &o), "reopen with quiesce");
	hv h = { .dir = f.hv_dir, .source = &f };
	copy ca, cc;
	fx_writes(&f, 20);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	assert_int_equal(res.kind, SITEREC_RP_APP);   /* the first one is due at once */
	assert_true(calls >= 2);
	uint64_t p_app = res.point_id;
	ca = take_copy(&f);
	fx_writes(&f, 20);
	uint64_t p_crash = cycle_copy(&f, r, &cc);
	assert_true(p_crash > p_app);
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_TEST, SITEREC_POINT_LATEST_APP, 0);
	q.output = SITEREC_OUTPUT_RAW;
	must(siterec_failover_test(fo, &q), "test failover, latest app-consistent");
	assert_int_equal(h.point_id, p_app);
	for (int i = 0; i < N_DISKS; i++) {   /* raw files: exactly the disk */
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "%s-test.raw", ids[i]);
		char *path = th_path(f.out_dir, leaf);
		assert_int_equal(th_file_size(path), (long long)sizes[i]);
		size_t len = 0;
		uint8_t *b = th_read_file(path, &len);
		assert_memory_equal(b, ca.d[i], sizes[i]);
		free(b);
		free(path);
	}
	must(siterec_failover_test_cleanup(fo), "cleanup");
	siterec_failover_free(fo);
	siterec_replication_free(r);
	free_copy(&ca);
	free_copy(&cc);
	free(h.arm);
	fx_teardown(&f);
}

/* ---- kills at random instants, then resume ---- */

#define KILLS 50

static void crash_child(fx *f, unsigned seed)
{
	hv h = { .dir = f->hv_dir, .source = f };
	siterec_store *st = th_store_open(&g, 0, "focrashfile");   /* its own store */
	siterec_failover *fo = fo_open(f, st, &h, NULL);
	siterec_failover_request qt = request(f, SITEREC_FAILOVER_TEST, SITEREC_POINT_LATEST, 0);
	siterec_failover_request qu = request(f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_LATEST, 0);
	siterec_point_choice ch = { .how = SITEREC_POINT_LATEST };
	(void)seed;
	if (siterec_failover_test(fo, &qt) || siterec_failover_run(fo, &qu) ||
	    siterec_failover_test_cleanup(fo) || siterec_failover_change_point(fo, &ch) ||
	    siterec_failover_cancel(fo))
		_exit(2);
	raise(SIGKILL);   /* as a crash would: no exit handlers, nothing flushed */
}

static void crash(void **state)
{
	(void)state;
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, 0, "crash", &r);
	hv h = { .dir = f.hv_dir, .source = &f };
	copy c;
	fx_writes(&f, 40);
	cycle_copy(&f, r, &c);
	siterec_replication_free(r);
	fx_journal_close(&f);
	/* how long one whole sequence takes, to spread the kills over it */
	int64_t t0 = wall_ms();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(&f, 0);
	int wst = 0;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFSIGNALED(wst));   /* the sequence ran to its end */
	int64_t span = wall_ms() - t0 + 1;
	uint64_t rng = 99;
	unsigned kills = 0, mid = 0;
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);
	while (kills < KILLS) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(&f, kills);
		usleep((useconds_t)(th_rand(&rng) % (uint64_t)(span * 1000)));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &wst, 0), pid);
		if (WIFEXITED(wst))
			fail_msg("the crash child failed before its kill (exit %d)", WEXITSTATUS(wst));
		kills++;
		/* resume, then every operation is in a stable state, with what it says */
		uint32_t n = 0;
		must(siterec_failover_resume(fo, &n), "resume after a kill");
		mid += n > 0;
		uint32_t pt = phase(fo, SITEREC_FAILOVER_TEST), pf = phase(fo, SITEREC_FAILOVER_UNPLANNED);
		assert_true(pt == SITEREC_FO_NONE || pt == SITEREC_FO_FAILED_OVER);
		assert_true(pf == SITEREC_FO_NONE || pf == SITEREC_FO_FAILED_OVER);
		assert_int_equal(vm_exists(&h, "web-test"), pt == SITEREC_FO_FAILED_OVER);
		assert_int_equal(vm_exists(&h, "web"), pf == SITEREC_FO_FAILED_OVER);
		if (pt == SITEREC_FO_FAILED_OVER) {
			check_outputs(&f, 1, &c);
			must(siterec_failover_test_cleanup(fo), "cleanup");
		}
		assert_true(outputs_gone(&f, 1));
		if (pf == SITEREC_FO_FAILED_OVER) {
			check_outputs(&f, 0, &c);
			assert_int_equal(repl_state(&f), SITEREC_REPL_FAILED_OVER);
			must(siterec_failover_cancel(fo), "cancel");
		}
		assert_true(outputs_gone(&f, 0));
		assert_int_equal(repl_state(&f), SITEREC_REPL_PROTECTED);   /* leases free, state back */
		assert_false(vm_exists(&h, "web-test"));
		assert_false(vm_exists(&h, "web"));
	}
	fprintf(stderr, "crash: %u kills, %u of them inside an operation (a sequence takes %lld ms)\n", kills,
	        mid, (long long)span);
	assert_true(mid > 0);   /* some kills did land inside an operation */
	siterec_failover_free(fo);
	free_copy(&c);
	free(h.arm);
	fx_teardown(&f);
}

/* ---- failback, reprotect, and failover again ---- */

/* The failover's disks as they are now. */
static copy fo_copy(fx *f)
{
	copy c;
	for (int i = 0; i < N_DISKS; i++) {
		assert_non_null(c.d[i] = malloc(sizes[i]));
		if (f->azure) {
			char name[128];
			snprintf(name, sizeof(name), "vm-1/failover-disks/%s", ids[i]);
			must(siterec_store_read(f->st, name, NULL, c.d[i], sizes[i], 0), "read a failover disk");
		} else {
			char leaf[64];
			snprintf(leaf, sizeof(leaf), "%s.vhd", ids[i]);
			char *p = th_path(f->out_dir, leaf);
			int fd = open(p, O_RDONLY);
			assert_true(fd >= 0);
			assert_int_equal(pread(fd, c.d[i], sizes[i], 0), (ssize_t)sizes[i]);
			close(fd);
			free(p);
		}
	}
	return c;
}

/* Each image (raw, or fixed VHD: data first) holds c. */
static void check_paths(char *const *paths, const copy *c, const char *what)
{
	for (int i = 0; i < N_DISKS; i++) {
		uint8_t *b = malloc(sizes[i]);
		assert_non_null(b);
		int fd = open(paths[i], O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, b, sizes[i], 0), (ssize_t)sizes[i]);
		close(fd);
		if (memcmp(b, c->d[i], sizes[i]) != 0)
			fail_msg("%s: %s differs from the failed-over disk", what, paths[i]);
		free(b);
	}
}

/* Point the fixture's VM (and its write path) at other images. */
static void fx_repoint(fx *f, char *const *paths)
{
	for (int i = 0; i < N_DISKS; i++) {
		close(f->fd[i]);
		free(f->path[i]);
		f->path[i] = strdup(paths[i]);
		assert_true((f->fd[i] = open(paths[i], O_RDWR)) >= 0);
		f->disks[i].path = f->path[i];
	}
}

static void e2e(int azure, uint32_t mode, int alternate)
{
	fx f;
	siterec_replication *r = NULL;
	char tag[64];
	snprintf(tag, sizeof(tag), "e2e%u%s", mode, alternate ? "alt" : "");
	fx_setup(&f, azure, tag, &r);
	foside side;
	hv h = { .dir = f.hv_dir, .source = &f, .fo = &side };
	copy c1, c2;
	fx_writes(&f, 30);
	uint64_t p1 = cycle_copy(&f, r, &c1);
	fx_writes(&f, 30);
	cycle_copy(&f, r, &c2);
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);

	/* a drill, then the disaster: an older point, changed to the latest, committed */
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_TEST, SITEREC_POINT_LATEST, 0);
	must(siterec_failover_test(fo, &q), "test failover");
	check_outputs(&f, 1, &c2);
	must(siterec_failover_test_cleanup(fo), "test cleanup");
	q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_ID, p1);
	must(siterec_failover_run(fo, &q), "unplanned failover");
	check_outputs(&f, 0, &c1);
	siterec_point_choice ch = { .how = SITEREC_POINT_LATEST };
	must(siterec_failover_change_point(fo, &ch), "change point");
	check_outputs(&f, 0, &c2);
	siterec_failback_request early = SITEREC_FAILBACK_REQUEST_INIT;
	early.mode = SITEREC_FAILBACK_FULL;
	th_assert_err(siterec_failback_run(fo, &early), SITEREC_ESTATE);   /* not committed yet */
	must(siterec_failover_commit(fo), "commit");
	th_assert_err(siterec_failback_commit(fo), SITEREC_ENOTFOUND);
	siterec_replication_free(r);
	fx_journal_close(&f);   /* the primary site is down */

	/* the failed-over VM works, and keeps working during the failback's comparison */
	fo_start(&side, &f, 0);
	for (int i = 0; i < 60; i++)
		fx_write1_j(side.jw, &side.rng);
	__atomic_store_n(&side.writing, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&side.writer, NULL, fo_main, &side), 0);
	usleep(30 * 1000);
	char *paths[N_DISKS];
	siterec_failback_disk fbd[N_DISKS];
	for (int i = 0; i < N_DISKS; i++) {
		char leaf[64];
		snprintf(leaf, sizeof(leaf), "back-%s.%s", ids[i], i ? "raw" : "vhd");
		paths[i] = alternate ? th_path(f.dir, leaf) : strdup(f.path[i]);
		fbd[i] = (siterec_failback_disk){ .id = ids[1 - i], .path = NULL };
	}
	for (int i = 0; i < N_DISKS; i++)   /* any order */
		fbd[i].path = paths[1 - i];
	siterec_failback_request b = SITEREC_FAILBACK_REQUEST_INIT;
	b.mode = mode;
	b.flags = alternate ? SITEREC_FAILBACK_ALTERNATE : 0;
	b.n_disks = N_DISKS;
	b.disks = fbd;
	b.journal_dir = side.jdir;
	if (!azure && mode == SITEREC_FAILBACK_MINIMIZE_DOWNTIME) {   /* bad requests change nothing */
		siterec_failback_request x = b;
		th_assert_err(siterec_failback_run(fo, NULL), SITEREC_EINVAL);
		x.mode = 9;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EINVAL);
		x = b;
		x.block_size = 1000;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EINVAL);
		x = b;
		x.n_disks = 1;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EINVAL);
		siterec_failback_disk twice[N_DISKS] = { fbd[0], fbd[0] };
		x = b;
		x.disks = twice;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EINVAL);
		x = b;
		x.flags = SITEREC_FAILBACK_ALTERNATE;   /* the originals exist */
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EEXISTS);
		siterec_failback_disk gone[N_DISKS] = { fbd[0], { ids[0], "/nonexistent/disk.raw" } };
		x = b;
		x.disks = gone;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_ENOTFOUND);
		x = b;
		x.version = 0;
		th_assert_err(siterec_failback_run(fo, &x), SITEREC_EVERSION);
		assert_int_equal(phase(fo, SITEREC_FAILOVER_FAILBACK), SITEREC_FO_NONE);
		th_assert_err(siterec_failback_cancel(fo), SITEREC_ENOTFOUND);
		th_assert_err(siterec_failover_reprotect(fo), SITEREC_ENOTFOUND);
	}
	must(siterec_failback_run(fo, &b), "failback");
	assert_true(side.writes > 0);
	copy cf = fo_copy(&f);   /* the failed-over disks after its shutdown */
	check_paths(paths, &cf, "failback");
	assert_int_equal(h.last_type, SITEREC_FAILOVER_FAILBACK);
	assert_int_equal(h.last_gen, 2);   /* generation 2 again */
	assert_int_equal(h.last_fw, SITEREC_FIRMWARE_UEFI);
	assert_true(vm_exists(&h, "web@onprem"));
	assert_false(vm_exists(&h, "web"));   /* shut down */
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	must(siterec_failover_status_get(fo, SITEREC_FAILOVER_FAILBACK, &s), "failback status");
	assert_int_equal(s.phase, SITEREC_FO_FAILED_OVER);
	assert_true(s.shutdown_ms > 0 && s.vm_started_ms >= s.shutdown_ms);
	if (mode == SITEREC_FAILBACK_FULL) {
		assert_int_equal(s.bytes_delta, sizes[0] + sizes[1]);
		assert_int_equal(s.bytes_differing, 0);
	} else {
		assert_true(s.bytes_differing > 0 && s.bytes_differing < sizes[0] + sizes[1]);
		/* the writes made during the comparison come from the journal in the downtime phase */
		assert_true(s.bytes_delta > 0 && s.bytes_delta < s.bytes_differing);
	}
	th_assert_err(siterec_failback_run(fo, &b), SITEREC_EEXISTS);
	th_assert_err(siterec_failover_reprotect(fo), SITEREC_ESTATE);
	must(siterec_failback_commit(fo), "failback commit");
	assert_true(outputs_gone(&f, 0));
	must(siterec_failback_commit(fo), "failback commit again");
	th_assert_err(siterec_failback_cancel(fo), SITEREC_ESTATE);

	/* reprotect: replication takes up again, copying only what differs */
	must(siterec_failover_reprotect(fo), "reprotect");
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_NONE);
	assert_int_equal(phase(fo, SITEREC_FAILOVER_FAILBACK), SITEREC_FO_NONE);
	fx_repoint(&f, paths);
	siterec_replication_options o = repl_opts(&f, 0);
	must(siterec_replication_open(&r, &f.vm, &o), "replication after reprotect");
	fx_journal(&f);
	siterec_replication_status rs = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	must(siterec_replication_status_get(r, &rs), "replication status");
	assert_int_equal(rs.state, SITEREC_REPL_RESYNC);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_resync(r, &res), "resync");
	assert_true(res.bytes_shipped > 0 && res.bytes_shipped < sizes[0] + sizes[1]);
	fx_writes(&f, 20);
	copy c3;
	cycle_copy(&f, r, &c3);
	/* and a failover again gives the disks as they are now */
	q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_LATEST, 0);
	must(siterec_failover_run(fo, &q), "failover again");
	check_outputs(&f, 0, &c3);
	must(siterec_failover_cancel(fo), "cancel");
	siterec_replication_free(r);
	siterec_failover_free(fo);
	fo_free(&side);
	for (int i = 0; i < N_DISKS; i++)
		free(paths[i]);
	free_copy(&c1);
	free_copy(&c2);
	free_copy(&c3);
	free_copy(&cf);
	free(h.arm);
	fx_teardown(&f);
}

static void e2e_file_minimize(void **state) { (void)state; e2e(0, SITEREC_FAILBACK_MINIMIZE_DOWNTIME, 0); }
static void e2e_file_full_alt(void **state) { (void)state; e2e(0, SITEREC_FAILBACK_FULL, 1); }
static void e2e_azure_minimize_alt(void **state) { (void)state; e2e(1, SITEREC_FAILBACK_MINIMIZE_DOWNTIME, 1); }
static void e2e_azure_full(void **state) { (void)state; e2e(1, SITEREC_FAILBACK_FULL, 0); }

/* Kills at random instants inside failbacks (scanned) and their cancels. */
static void fb_child(fx *f, siterec_failback_request *b)
{
	foside side;
	memset(&side, 0, sizeof(side));
	hv h = { .dir = f->hv_dir, .source = f, .fo = &side };
	siterec_store *st = th_store_open(&g, 0, "fofbcrashfile");
	siterec_failover *fo = fo_open(f, st, &h, NULL);
	if (siterec_failback_run(fo, b) || siterec_failback_cancel(fo))
		_exit(2);
	raise(SIGKILL);
}

static void fb_crash(void **state)
{
	(void)state;
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, 0, "fbcrash", &r);
	foside side;
	memset(&side, 0, sizeof(side));
	hv h = { .dir = f.hv_dir, .source = &f, .fo = &side };
	copy c;
	fx_writes(&f, 40);
	cycle_copy(&f, r, &c);
	siterec_failover *fo = fo_open(&f, f.st, &h, NULL);
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_LATEST, 0);
	must(siterec_failover_run(fo, &q), "failover");
	must(siterec_failover_commit(fo), "commit");
	siterec_replication_free(r);
	fx_journal_close(&f);
	/* the failed-over side changed its disks: the failback has something to copy */
	fo_start(&side, &f, 0);
	for (int i = 0; i < 40; i++)
		fx_write1_j(side.jw, &side.rng);
	fo_stop(&side);
	copy cf = fo_copy(&f);
	siterec_failback_disk fbd[N_DISKS];
	for (int i = 0; i < N_DISKS; i++)
		fbd[i] = (siterec_failback_disk){ .id = ids[i], .path = f.path[i] };
	siterec_failback_request b = SITEREC_FAILBACK_REQUEST_INIT;
	b.mode = SITEREC_FAILBACK_MINIMIZE_DOWNTIME;
	b.n_disks = N_DISKS;
	b.disks = fbd;
	int64_t t0 = wall_ms();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		fb_child(&f, &b);
	int wst = 0;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFSIGNALED(wst));
	int64_t span = wall_ms() - t0 + 1;
	assert_true(vm_exists(&h, "web"));   /* the cancel started it again */
	uint64_t rng = 7;
	unsigned mid = 0;
	for (unsigned kills = 0; kills < KILLS; kills++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			fb_child(&f, &b);
		usleep((useconds_t)(th_rand(&rng) % (uint64_t)(span * 1000)));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &wst, 0), pid);
		if (WIFEXITED(wst))
			fail_msg("the failback child failed before its kill (exit %d)", WEXITSTATUS(wst));
		uint32_t n = 0;
		must(siterec_failover_resume(fo, &n), "resume after a kill");
		mid += n > 0;
		uint32_t ph = phase(fo, SITEREC_FAILOVER_FAILBACK);
		assert_true(ph == SITEREC_FO_NONE || ph == SITEREC_FO_FAILED_OVER);
		assert_int_equal(vm_exists(&h, "web@onprem"), ph == SITEREC_FO_FAILED_OVER);
		if (ph == SITEREC_FO_FAILED_OVER) {
			char *paths[N_DISKS] = { f.path[0], f.path[1] };
			check_paths(paths, &cf, "failback after a kill");
			assert_false(vm_exists(&h, "web"));
			must(siterec_failback_cancel(fo), "failback cancel");
		}
		assert_false(vm_exists(&h, "web@onprem"));
		assert_true(vm_exists(&h, "web"));
		assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_COMMITTED);
	}
	fprintf(stderr, "failback crash: %u kills, %u of them inside an operation (a sequence takes %lld ms)\n",
	        KILLS, mid, (long long)span);
	assert_true(mid > 0);
	siterec_failover_free(fo);
	fo_free(&side);
	free_copy(&c);
	free_copy(&cf);
	free(h.arm);
	fx_teardown(&f);
}

/* ---- bad input ---- */

static void errors(void **state)
{
	(void)state;
	fx f;
	siterec_replication *r = NULL;
	fx_setup(&f, 0, "errors", &r);
	hv h = { .dir = f.hv_dir, .source = &f };
	siterec_failover_options o = SITEREC_FAILOVER_OPTIONS_INIT;
	siterec_failover *fo = NULL;
	th_assert_err(siterec_failover_open(NULL, &o), SITEREC_EINVAL);
	th_assert_err(siterec_failover_open(&fo, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_failover_open(&fo, &o), SITEREC_EINVAL);
	o.store = f.st;
	o.vm_id = "vm-1";
	th_assert_err(siterec_failover_open(&fo, &o), SITEREC_EINVAL);   /* no callbacks */
	o.start = hv_start;
	o.remove = hv_remove;
	o.payload = &h;
	o.vm_id = "nobody";
	th_assert_err(siterec_failover_open(&fo, &o), SITEREC_ENOTFOUND);
	o.vm_id = "../x";
	th_assert_err(siterec_failover_open(&fo, &o), SITEREC_EINVAL);
	o.vm_id = "vm-1";
	o.version = 99;
	th_assert_err(siterec_failover_open(&fo, &o), SITEREC_EVERSION);
	o.version = SITEREC_FAILOVER_OPTIONS_VERSION;
	must(siterec_failover_open(&fo, &o), "open");
	siterec_failover_request q = request(&f, SITEREC_FAILOVER_UNPLANNED, SITEREC_POINT_LATEST, 0);
	/* the request */
	th_assert_err(siterec_failover_run(fo, NULL), SITEREC_EINVAL);
	q.type = 9;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.type = SITEREC_FAILOVER_PLANNED;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);   /* no replication handle */
	q.type = SITEREC_FAILOVER_UNPLANNED;
	q.point.how = 77;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.point.how = SITEREC_POINT_TIME;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);   /* no time */
	q.point.how = SITEREC_POINT_LATEST;
	q.disk_dir = NULL;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);   /* a file target needs files */
	q.disk_dir = f.out_dir;
	q.vm_name = "bad'name";
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.vm_name = NULL;
	q.os_type = "BeOS";
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.os_type = NULL;
	siterec_nic lost = { .network = "lab" };
	q.nics = &lost;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);   /* network not mapped */
	q.nics = nics;
	q.n_networks = 0;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.n_networks = 1;
	q.output = 5;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.output = 0;
	q.target = 8;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EINVAL);
	q.target = 0;
	q.version = 0;
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_EVERSION);
	q.version = SITEREC_FAILOVER_REQUEST_VERSION;
	q.point = (siterec_point_choice){ .how = SITEREC_POINT_ID, .id = 12345 };
	th_assert_err(siterec_failover_run(fo, &q), SITEREC_ENOTFOUND);
	/* no point fits: nothing recorded, nothing taken over */
	assert_int_equal(phase(fo, SITEREC_FAILOVER_UNPLANNED), SITEREC_FO_NONE);
	must(siterec_replication_cycle(r, NULL), "replication goes on");   /* not fenced */
	q.type = SITEREC_FAILOVER_TEST;
	th_assert_err(siterec_failover_test(fo, &q), SITEREC_ENOTFOUND);
	assert_int_equal(phase(fo, SITEREC_FAILOVER_TEST), SITEREC_FO_NONE);
	q.type = SITEREC_FAILOVER_UNPLANNED;
	/* calls without an operation, or on a wrong type */
	siterec_point_choice ch = { .how = SITEREC_POINT_LATEST };
	th_assert_err(siterec_failover_change_point(fo, &ch), SITEREC_ENOTFOUND);
	th_assert_err(siterec_failover_change_point(fo, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_failover_commit(fo), SITEREC_ENOTFOUND);
	th_assert_err(siterec_failover_cancel(fo), SITEREC_ENOTFOUND);
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	th_assert_err(siterec_failover_status_get(fo, 0, &s), SITEREC_EINVAL);
	th_assert_err(siterec_failover_status_get(NULL, 1, &s), SITEREC_EINVAL);
	s.version = 0;
	th_assert_err(siterec_failover_status_get(fo, 1, &s), SITEREC_EVERSION);
	q.type = SITEREC_FAILOVER_UNPLANNED;
	th_assert_err(siterec_failover_test(fo, &q), SITEREC_EINVAL);
	th_assert_err(siterec_failover_test(NULL, &q), SITEREC_EINVAL);
	assert_string_equal(siterec_failover_phase_name(SITEREC_FO_CANCELLING), "cancelling");
	assert_null(siterec_failover_phase_name(42));
	assert_string_equal(siterec_replication_state_name(SITEREC_REPL_FAILED_OVER), "failed-over");
	/* a damaged state document is reported, never acted on */
	const char junk[] = "{\"format\":\"siterec-failover\",\"version\":1}";
	must(siterec_store_doc_put(f.st, "vm-1/failover", junk, sizeof(junk) - 1, NULL, NULL, 0), "put junk");
	th_assert_err(siterec_failover_cancel(fo), SITEREC_ECORRUPT);
	th_assert_err(siterec_failover_resume(fo, NULL), SITEREC_ECORRUPT);
	must(siterec_store_doc_delete(f.st, "vm-1/failover", NULL), "delete junk");
	siterec_failover_free(fo);
	siterec_failover_free(NULL);
	siterec_replication_free(r);
	fx_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errors),
		cmocka_unit_test(flow_file),
		cmocka_unit_test(flow_azure),
		cmocka_unit_test(planned_file),
		cmocka_unit_test(planned_azure),
		cmocka_unit_test(cancel_and_time),
		cmocka_unit_test(app_point),
		cmocka_unit_test(crash),
		cmocka_unit_test(e2e_file_minimize),
		cmocka_unit_test(e2e_file_full_alt),
		cmocka_unit_test(e2e_azure_minimize_alt),
		cmocka_unit_test(e2e_azure_full),
		cmocka_unit_test(fb_crash),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
