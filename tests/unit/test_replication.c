/* Replication (include/siterec/replication.h) through the public API, on a file://
 * directory and on a real Azurite started by the group setup. A VM of four disks:
 * an OS disk that is a dynamic VHDX made by qemu-img/qemu-io (read, never
 * written), a sparse raw data disk and an in-memory data disk (both written by a
 * simulated VM through the journal writer, whose idle loop is a poller thread),
 * and an excluded disk whose read callback fails the test. Writes before and
 * during the initial copy (from the progress callback: the fuzzy copy then the
 * logs merged); cycles with and without writes; every point's snapshots equal
 * the sources at its cut; app-consistent points through a quiesce callback (a
 * failing freeze gives a crash point); retention; crash-resume of initial and
 * cycles in forked children killed at random instants (25 rounds per target,
 * SITEREC_TEST_CRASH_ROUNDS overrides: scripts/stress_replication.sh);
 * fencing by leases (a second opener refused, takeover after a free and after
 * the leases expired, the lost lease refused; SITEREC_TEST_LEASE_S=15 and one
 * sleep of 16 s); continuous mode (no point without writes); errors. No timing
 * assertions. */
#include "helpers.h"

#ifndef REPL_PART
#define REPL_PART 1
#endif

#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)

#define OS_SIZE (4 * MiB)
#define DATA_SIZE (8 * MiB)
#define MEM_SIZE (1 * MiB)
#define N_PROT 3

TH_AZURITE_GROUP(g, "test_replication")

/* ---- the simulated VM ---- */

typedef struct vm_fixture {
	char *dir;                 /* scratch directory */
	char *os_path, *data_path, *state_dir;
	int data_fd;
	uint8_t *mem;              /* the in-memory data disk */
	uint8_t *os_content;       /* what the VHDX reads as (never written) */
	siterec_vm_disk disks[4];
	siterec_vm vm;
	siterec_store *st;
	siterec_journal *jw;       /* the VM's write path */
	pthread_t poller;
	int stop;  /* read by the poller thread: atomic accesses only */
	uint64_t rng;
	/* writes from the progress callback during the initial copy */
	int write_in_progress;
	uint64_t cut_active;       /* journal sequence while no rotation happened */
	unsigned progress_writes;
	/* crash child: its status pipe (see child_end) */
	int status_fd;
	/* crash child: end after this many progress calls (0: never) */
	unsigned exit_after, calls;
} vm_fixture;

static int mem_read(void *buf, size_t len, uint64_t off, void *payload)
{
	vm_fixture *f = payload;
	memcpy(buf, f->mem + off, len);
	return 0;
}

static int mem_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	vm_fixture *f = payload;
	memcpy(f->mem + off, buf, len);
	return 0;
}

static int data_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	vm_fixture *f = payload;
	return pwrite(f->data_fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

static int excluded_read(void *buf, size_t len, uint64_t off, void *payload)
{
	fail_msg("the excluded disk was read (%zu bytes at %llu)", len, (unsigned long long)off);
	return -1;
}

static void *poll_main(void *arg)
{
	vm_fixture *f = arg;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		siterec_journal_poll(f->jw, NULL);
		usleep(300);
	}
	return NULL;
}

/* n random writes of 512 B .. 64 KiB to the data disks (index 1 raw, 2 memory),
 * some of them zeros. */
static void vm_writes(vm_fixture *f, unsigned n)
{
	static uint8_t buf[64 * KiB];
	for (unsigned i = 0; i < n; i++) {
		uint32_t disk = 1 + (uint32_t)(th_rand(&f->rng) % 2);
		uint64_t size = disk == 1 ? DATA_SIZE : MEM_SIZE;
		uint64_t len = 512 * (1 + th_rand(&f->rng) % 128);
		uint64_t off = 512 * (th_rand(&f->rng) % ((size - len) / 512 + 1));
		if (th_rand(&f->rng) % 5 == 0)
			memset(buf, 0, len);
		else
			th_fill(buf, len, th_rand(&f->rng));
		int rc = siterec_journal_write(f->jw, disk, buf, len, off);
		if (rc)
			fprintf(stderr, "journal write: %s\n", siterec_error_last()->message);
		assert_int_equal(rc, 0);
	}
}

/* The sources' content now: [0] OS, [1] raw data, [2] memory. */
typedef struct copy { uint8_t *d[N_PROT]; } copy;
static const uint64_t sizes[N_PROT] = { OS_SIZE, DATA_SIZE, MEM_SIZE };

static copy take_copy(vm_fixture *f)
{
	copy c;
	for (int i = 0; i < N_PROT; i++)
		assert_non_null(c.d[i] = malloc(sizes[i]));
	memcpy(c.d[0], f->os_content, OS_SIZE);
	assert_int_equal(pread(f->data_fd, c.d[1], DATA_SIZE, 0), (ssize_t)DATA_SIZE);
	memcpy(c.d[2], f->mem, MEM_SIZE);
	return c;
}

static void free_copy(copy *c)
{
	for (int i = 0; i < N_PROT; i++)
		free(c->d[i]);
}

/* Every disk of point id equals the copy. */
static void check_point(siterec_store *st, const char *vm, uint64_t id, const copy *c)
{
	siterec_rp_catalog *cat = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, vm), 0);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	assert_int_equal(siterec_rp_find(cat, id, &p), 0);
	assert_true(p.n_disks >= N_PROT);  /* a disk added later comes last */
	uint8_t *buf = malloc(DATA_SIZE);
	assert_non_null(buf);
	for (uint32_t k = 0; k < N_PROT; k++) {
		int rc = siterec_rp_read(cat, id, k, buf, sizes[k], 0);
		if (rc)
			fprintf(stderr, "rp_read: %s\n", siterec_error_last()->message);
		assert_int_equal(rc, 0);
		if (memcmp(buf, c->d[k], sizes[k]) != 0)
			fail_msg("point %llu disk %u differs from the source at its cut", (unsigned long long)id, k);
	}
	free(buf);
	siterec_rp_free(cat);
}

/* Every replica disk (the live ones, not a point) equals the copy. */
static void check_replicas(siterec_store *st, const char *vm, const copy *c)
{
	static const char *const ids[N_PROT] = { "os", "data", "mem" };
	uint8_t *buf = malloc(DATA_SIZE);
	assert_non_null(buf);
	for (uint32_t k = 0; k < N_PROT; k++) {
		char name[128];
		snprintf(name, sizeof(name), "%s/disks/%s", vm, ids[k]);
		int rc = siterec_store_read(st, name, NULL, buf, sizes[k], 0);
		if (rc)
			fprintf(stderr, "replica read: %s\n", siterec_error_last()->message);
		assert_int_equal(rc, 0);
		if (memcmp(buf, c->d[k], sizes[k]) != 0)
			fail_msg("replica %s differs from the source", name);
	}
	free(buf);
}

/* Files left in STATE_DIR/shipped (local copies of shipped logs not applied). */
static unsigned kept_files(const vm_fixture *f)
{
	char *dir = th_path(f->state_dir, "shipped");
	DIR *d = opendir(dir);
	unsigned n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	free(dir);
	return n;
}

/* A crash child ends here: its code goes up the status pipe, then it dies by
 * SIGKILL, as a crashed host would. Not _exit: under valgrind a forked copy's
 * exit would be leak-checked, and everything of the parent it holds would count. */
static void child_end(vm_fixture *f, unsigned char code)
{
	if (write(f->status_fd, &code, 1) != 1)
		code = 0;
	raise(SIGKILL);
	_exit(code);  /* not reached */
}

static int progress_cb(uint64_t done, uint64_t total, void *payload)
{
	vm_fixture *f = payload;
	f->calls++;
	if (f->exit_after && f->calls >= f->exit_after)
		child_end(f, 9);  /* a crash mid-way */
	if (f->write_in_progress && f->progress_writes < 40) {
		/* only before the cut: once the journal rotated, writes belong to the next point */
		uint64_t active = 0;
		assert_int_equal(siterec_journal_seqs(f->jw, &active, NULL), 0);
		if (active == f->cut_active) {
			vm_writes(f, 4);
			f->progress_writes += 4;
		}
	}
	return 0;
}

static void vm_setup(vm_fixture *f, int azure, const char *name, int vhdx_os)
{
	memset(f, 0, sizeof(*f));
	f->rng = 0x1234567 + (uint64_t)azure;
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/%s-%s", g.dir, name, azure ? "az" : "file");
	th_sh("mkdir -p '%s'", sub);
	f->dir = strdup(sub);
	f->state_dir = th_path(f->dir, "state");
	f->os_path = th_path(f->dir, vhdx_os ? "os.vhdx" : "os.raw");
	f->data_path = th_path(f->dir, "data.raw");
	assert_non_null(f->os_content = calloc(1, OS_SIZE));
	if (vhdx_os) {
		th_sh("qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M '%s' 4M", f->os_path);
		th_sh("qemu-io -f vhdx -c 'write -P 0x55 0 1M' -c 'write -P 0xa7 3M 512k' '%s' >/dev/null",
		   f->os_path);
		memset(f->os_content, 0x55, MiB);
		memset(f->os_content + 3 * MiB, 0xa7, 512 * KiB);
	} else {
		th_fill(f->os_content, OS_SIZE, 77);
		th_write_file(f->os_path, f->os_content, OS_SIZE);
	}
	/* sparse raw data disk: four 512 KiB runs of data, holes between */
	f->data_fd = th_make_file(f->data_path, DATA_SIZE);
	uint8_t *run = malloc(512 * KiB);
	assert_non_null(run);
	for (int i = 0; i < 4; i++) {
		th_fill(run, 512 * KiB, 100 + (uint64_t)i);
		assert_int_equal(pwrite(f->data_fd, run, 512 * KiB, (off_t)(i * 2 * MiB)), (ssize_t)(512 * KiB));
	}
	free(run);
	assert_non_null(f->mem = malloc(MEM_SIZE));
	th_fill(f->mem, MEM_SIZE, 55);

	f->disks[0] = (siterec_vm_disk){ .id = "os", .path = f->os_path, .role = SITEREC_DISK_ROLE_OS };
	f->disks[1] = (siterec_vm_disk){ .id = "data", .path = f->data_path, .role = SITEREC_DISK_ROLE_DATA };
	f->disks[2] = (siterec_vm_disk){ .id = "scratch", .read = excluded_read, .size = MiB,
	                                 .role = SITEREC_DISK_ROLE_DATA, .flags = SITEREC_VM_DISK_EXCLUDED };
	f->disks[3] = (siterec_vm_disk){ .id = "mem", .read = mem_read, .read_payload = f, .size = MEM_SIZE,
	                                 .role = SITEREC_DISK_ROLE_DATA };
	f->vm = (siterec_vm){ .version = SITEREC_VM_VERSION, .generation = 2, .id = "vm-1", .name = "web 1",
	                      .n_disks = 4, .disks = f->disks };
	snprintf(sub, sizeof(sub), "repl%s%s", name, azure ? "az" : "file");
	f->st = th_store_open(&g, azure, sub);
}

/* The VM's write path: protected disks in the VM's order (the excluded one left out). */
static void vm_start_writer(vm_fixture *f)
{
	siterec_journal_disk jd[N_PROT] = {
		{ .id = "os", .size = OS_SIZE },
		{ .id = "data", .size = DATA_SIZE, .write = data_write, .write_payload = f },
		{ .id = "mem", .size = MEM_SIZE, .write = mem_write, .write_payload = f },
	};
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER;
	jo.n_disks = N_PROT;
	jo.disks = jd;
	char *jdir = th_path(f->state_dir, "journal");
	int rc = siterec_journal_open(&f->jw, jdir, &jo);
	if (rc)
		fprintf(stderr, "journal open: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	free(jdir);
	__atomic_store_n(&f->stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&f->poller, NULL, poll_main, f), 0);
}

static void vm_teardown(vm_fixture *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
	pthread_join(f->poller, NULL);
	siterec_journal_free(f->jw);
	siterec_store_free(f->st);
	close(f->data_fd);
	free(f->mem);
	free(f->os_content);
	free(f->os_path);
	free(f->data_path);
	free(f->state_dir);
	free(f->dir);
}

static siterec_replication_options repl_opts(vm_fixture *f, uint32_t flags)
{
	siterec_replication_options o = SITEREC_REPLICATION_OPTIONS_INIT;
	o.flags = flags;
	o.state_dir = f->state_dir;
	o.store = f->st;
	o.progress = progress_cb;
	o.progress_payload = f;
	return o;
}

static siterec_replication *repl_open(vm_fixture *f, const siterec_replication_options *o)
{
	siterec_replication *r = NULL;
	int rc = siterec_replication_open(&r, &f->vm, o);
	if (rc)
		fprintf(stderr, "replication open: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return r;
}

static void must(int rc, const char *what)
{
	if (rc)
		fprintf(stderr, "%s: %s\n", what, siterec_error_last()->message);
	assert_int_equal(rc, 0);
}

/* ---- quiesce ---- */

typedef struct quiesce_log { int freezes, thaws, fail; int order_ok; } quiesce_log;

static int quiesce_cb(int freeze, void *payload)
{
	quiesce_log *q = payload;
	if (freeze) {
		q->freezes++;
		if (q->thaws != q->freezes - 1)
			q->order_ok = 0;
		return q->fail ? -5 : 0;
	}
	q->thaws++;
	if (q->thaws != q->freezes)
		q->order_ok = 0;
	return 0;
}

/* ---- the main flow ---- */

static void flow(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "flow", 1);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);

	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_INITIAL);
	assert_int_equal(s.points, 0);

	/* writes before and during the initial copy */
	vm_writes(&f, 30);
	must(siterec_replication_status_get(r, &s), "status");
	assert_true(s.pending_bytes > 0);
	th_assert_err(siterec_replication_cycle(r, NULL), SITEREC_ESTATE);
	assert_int_equal(siterec_journal_seqs(f.jw, &f.cut_active, NULL), 0);
	f.write_in_progress = 1;
	must(siterec_replication_initial(r), "initial");
	f.write_in_progress = 0;
	assert_true(f.progress_writes > 0);
	copy c0 = take_copy(&f);
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_PROTECTED);
	assert_int_equal(s.points, 1);
	uint64_t first = s.last_point_id;
	check_point(f.st, "vm-1", first, &c0);
	must(siterec_replication_initial(r), "initial again (nothing to do)");

	/* cycles with writes; every point equals the sources at its cut */
	copy cs[5];
	uint64_t ids[5], gen = s.generation;
	for (int i = 0; i < 5; i++) {
		if (i != 3)
			vm_writes(&f, 20 + 10 * (unsigned)i);
		cs[i] = take_copy(&f);
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		must(siterec_replication_cycle(r, &res), "cycle");
		assert_int_equal(res.kind, SITEREC_RP_CRASH);
		assert_true(res.point_id > (i ? ids[i - 1] : first));
		ids[i] = res.point_id;
		if (i == 3)
			assert_int_equal(res.bytes_shipped, 0);  /* nothing written: still a point */
		must(siterec_replication_status_get(r, &s), "status");
		assert_true(s.generation > gen);
		gen = s.generation;
		assert_int_equal(s.last_point_id, ids[i]);
		assert_int_equal(s.points, (uint64_t)i + 2);
	}
	for (int i = 0; i < 5; i++)
		check_point(f.st, "vm-1", ids[i], &cs[i]);
	check_point(f.st, "vm-1", first, &c0);
	assert_true(s.bytes_shipped > 0);

	/* shipped, not applied: the replicas are still the first point */
	assert_int_equal(s.applied_point_id, first);
	assert_true(s.waiting_bytes > 0);
	assert_true(kept_files(&f) > 0);
	uint64_t waiting = 0;
	must(siterec_replication_apply(r, 0, 0, &waiting), "apply, not due yet");
	assert_int_equal(waiting, s.waiting_bytes);
	check_replicas(f.st, "vm-1", &c0);
	th_assert_err(siterec_replication_apply(r, 0, 0x100, NULL), SITEREC_EINVAL);
	/* applied in slices of 1 ms until nothing waits */
	unsigned slices = 0;
	do
		must(siterec_replication_apply(r, 1, SITEREC_APPLY_NOW, &waiting), "apply slice");
	while (waiting && ++slices < 100000);
	assert_int_equal(waiting, 0);
	check_replicas(f.st, "vm-1", &cs[4]);
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.applied_point_id, ids[4]);
	assert_int_equal(s.waiting_bytes, 0);
	assert_int_equal(kept_files(&f), 0);
	for (int i = 0; i < 5; i++)  /* older points keep their own base */
		check_point(f.st, "vm-1", ids[i], &cs[i]);

	/* a host without the local copies (the VM moved): they come from the target */
	vm_writes(&f, 15);
	copy cm = take_copy(&f);
	siterec_cycle_result rm = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &rm), "cycle");
	assert_true(kept_files(&f) > 0);
	th_sh("rm -f %s/shipped/*", f.state_dir);
	assert_int_equal(kept_files(&f), 0);
	must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, &waiting), "apply from the target");
	assert_int_equal(waiting, 0);
	check_replicas(f.st, "vm-1", &cm);
	check_point(f.st, "vm-1", rm.point_id, &cm);
	free_copy(&cm);

	/* app-consistent points through a quiesce callback: a failing freeze first
	 * (a crash point, no thaw; the app point stays due), then a good one */
	siterec_replication_free(r);
	quiesce_log q = { .order_ok = 1, .fail = 1 };
	o = repl_opts(&f, 0);
	o.app_every_s = 3600;
	o.quiesce = quiesce_cb;
	o.quiesce_payload = &q;
	r = repl_open(&f, &o);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle with a failing freeze");
	assert_int_equal(res.kind, SITEREC_RP_CRASH);
	assert_int_equal(q.freezes, 1);
	assert_int_equal(q.thaws, 0);
	q = (quiesce_log){ .order_ok = 1 };
	vm_writes(&f, 10);
	copy ca = take_copy(&f);
	must(siterec_replication_cycle(r, &res), "app cycle");
	assert_int_equal(res.kind, SITEREC_RP_APP);
	assert_int_equal(q.freezes, 1);
	assert_int_equal(q.thaws, 1);
	assert_true(q.order_ok);
	check_point(f.st, "vm-1", res.point_id, &ca);
	/* not due again within the hour: crash-consistent, no freeze */
	must(siterec_replication_cycle(r, &res), "cycle");
	assert_int_equal(res.kind, SITEREC_RP_CRASH);
	assert_int_equal(q.freezes, 1);
	siterec_replication_free(r);

	/* retention: 1 s, then every point but the new one is older */
	o = repl_opts(&f, 0);
	o.retention_s = 1;
	r = repl_open(&f, &o);
	sleep(2);
	vm_writes(&f, 5);
	copy cr = take_copy(&f);
	must(siterec_replication_cycle(r, &res), "cycle with retention");
	assert_true(res.points_pruned >= 8);
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.points, 1);
	assert_int_equal(s.last_point_id, res.point_id);
	check_point(f.st, "vm-1", res.point_id, &cr);

	/* the state document and its local copy */
	void *doc = NULL;
	size_t len = 0;
	must(siterec_store_doc_get(f.st, "vm-1/replication", &doc, &len, NULL, 0), "doc get");
	assert_non_null(strstr((const char *)doc, "\"state\":\"protected\""));
	siterec_free(doc);
	char *local = th_path(f.state_dir, "state.json");
	size_t llen = 0;
	void *ldoc = th_read_file(local, &llen);
	assert_non_null(strstr((const char *)ldoc, "\"generation\""));
	free(ldoc);
	free(local);

	siterec_replication_free(r);
	free_copy(&c0);
	for (int i = 0; i < 5; i++)
		free_copy(&cs[i]);
	free_copy(&ca);
	free_copy(&cr);
	vm_teardown(&f);
}

static void flow_file(void **state) { (void)state; flow(0); }
static void flow_azure(void **state) { (void)state; flow(1); }

/* ---- crash-resume ---- */

/* A child opens its own store and handle and runs initial (when pending) then a
 * cycle; it dies from its progress callback after a random number of calls, or
 * by SIGKILL from the parent after a random delay. */
static void crash_child(vm_fixture *f, int azure, unsigned exit_after)
{
	char sub[128];
	snprintf(sub, sizeof(sub), "repl%s%s", "crash", azure ? "az" : "file");
	siterec_store_options so = SITEREC_STORE_OPTIONS_INIT;
	char url[4400];
	if (azure) {
		so.flags = SITEREC_STORE_ALLOW_HTTP;
		so.account_key = TH_AZURITE_KEY;
		so.max_retries = 2;
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/devstoreaccount1/%s", g.port, sub);
	} else {
		snprintf(url, sizeof(url), "file://%s/%s", g.dir, sub);
	}
	siterec_store *st = NULL;
	if (siterec_store_open(&st, url, &so))
		child_end(f, 3);
	siterec_replication_options o = SITEREC_REPLICATION_OPTIONS_INIT;
	o.state_dir = f->state_dir;
	o.store = st;
	o.progress = progress_cb;
	o.progress_payload = f;
	f->exit_after = exit_after;
	f->calls = 0;
	f->write_in_progress = 0;
	siterec_replication *r = NULL;
	if (siterec_replication_open(&r, &f->vm, &o) || siterec_replication_initial(r) ||
	    siterec_replication_cycle(r, NULL) || siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, NULL))
		child_end(f, 4);
	siterec_replication_free(r);
	siterec_store_free(st);
	child_end(f, 0);
}

static void crash(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "crash", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	siterec_replication *r = repl_open(&f, &o);
	siterec_replication_free(r);
	vm_start_writer(&f);
	uint64_t seed = 0xc0ffee + (uint64_t)azure, last_id = 0;
	int killed = 0, cut_short = 0, rounds = 25;
	const char *env = getenv("SITEREC_TEST_CRASH_ROUNDS");
	if (env && atoi(env) > 0)
		rounds = atoi(env);
	for (int round = 0; round < rounds; round++) {
		vm_writes(&f, 10 + (unsigned)(th_rand(&seed) % 30));
		copy c = take_copy(&f);
		unsigned exit_after = round % 2 == 0 ? 1 + (unsigned)(th_rand(&seed) % 6) : 0;
		unsigned delay_us = (unsigned)(th_rand(&seed) % 40000);
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			f.status_fd = pfd[1];
			crash_child(&f, azure, exit_after);
		}
		close(pfd[1]);
		if (!exit_after) {
			usleep(delay_us);
			kill(pid, SIGKILL);
		}
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		/* the child's own report: none when our SIGKILL came first */
		unsigned char code = 255;
		ssize_t got = read(pfd[0], &code, 1);
		close(pfd[0]);
		if (got != 1)
			killed++;
		else if (code == 9)
			cut_short++;
		else
			assert_int_equal(code, 0);
		/* the parent resumes: initial if pending, then a cycle; the newest
		 * point is the sources now (no write since the copy) */
		o = repl_opts(&f, 0);
		r = repl_open(&f, &o);
		must(siterec_replication_initial(r), "initial after a crash");
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		must(siterec_replication_cycle(r, &res), "cycle after a crash");
		assert_true(res.point_id > last_id);
		last_id = res.point_id;
		check_point(f.st, "vm-1", res.point_id, &c);
		uint64_t waiting = 1;
		must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, &waiting), "apply after a crash");
		assert_int_equal(waiting, 0);
		check_replicas(f.st, "vm-1", &c);
		siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
		must(siterec_replication_status_get(r, &s), "status");
		assert_int_equal(s.state, SITEREC_REPL_PROTECTED);
		assert_int_equal(s.last_point_id, res.point_id);
		siterec_replication_free(r);
		free_copy(&c);
	}
	/* how many died mid-way depends on the timing: reported, not asserted */
	fprintf(stderr, "crash rounds (%s): %d killed, %d cut short from the progress callback, of %d\n",
	        azure ? "azure" : "file", killed, cut_short, rounds);
	vm_teardown(&f);
}

static void crash_file(void **state) { (void)state; crash(0); }
static void crash_azure(void **state) { (void)state; crash(1); }

/* ---- fencing ---- */

/* Phase 1: A protects and holds the VM; B (another replicator, same state_dir as
 * a cluster node would see it) is refused; after A's free B takes over and its
 * cycle converges; then A2 opens with a 15 s lease and stays idle. */
typedef struct fence_ctx { vm_fixture f; siterec_replication *a2; copy c; } fence_ctx;

static void fence_phase1(fence_ctx *x, int azure)
{
	vm_fixture *f = &x->f;
	vm_setup(f, azure, "fence", 0);
	siterec_replication_options o = repl_opts(f, SITEREC_REPLICATION_PROTECT);
	siterec_replication *a = repl_open(f, &o);
	vm_start_writer(f);
	vm_writes(f, 20);
	must(siterec_replication_initial(a), "initial");
	must(siterec_replication_keepalive(a), "keepalive");
	siterec_replication_options ro = repl_opts(f, 0);
	siterec_replication *b = NULL;
	th_assert_err(siterec_replication_open(&b, &f->vm, &ro), SITEREC_ELEASE);
	assert_null(b);
	assert_non_null(strstr(siterec_error_last()->message, "another replicator"));
	vm_writes(f, 20);
	must(siterec_replication_cycle(a, NULL), "cycle of the holder");
	siterec_replication_free(a);
	/* B takes over */
	b = repl_open(f, &ro);
	vm_writes(f, 20);
	copy c = take_copy(f);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(b, &res), "cycle after the takeover");
	check_point(f->st, "vm-1", res.point_id, &c);
	free_copy(&c);
	siterec_replication_free(b);
	th_assert_err(siterec_replication_keepalive(NULL), SITEREC_EINVAL);
	/* A2 with a short lease, left without renewal */
	x->a2 = repl_open(f, &ro);
}

/* Phase 2 (A2's leases expired): B takes over; A2 fails with SITEREC_ELEASE and
 * writes nothing; B's points stay consistent. */
static void fence_phase2(fence_ctx *x)
{
	vm_fixture *f = &x->f;
	siterec_replication_options ro = repl_opts(f, 0);
	siterec_replication *b = repl_open(f, &ro);
	vm_writes(f, 20);
	th_assert_err(siterec_replication_cycle(x->a2, NULL), SITEREC_ELEASE);
	assert_non_null(strstr(siterec_error_last()->message, "lost"));
	th_assert_err(siterec_replication_keepalive(x->a2), SITEREC_ELEASE);
	th_assert_err(siterec_replication_initial(x->a2), SITEREC_ELEASE);
	copy c = take_copy(f);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(b, &res), "cycle of the new holder");
	check_point(f->st, "vm-1", res.point_id, &c);
	th_assert_err(siterec_replication_cycle(x->a2, NULL), SITEREC_ELEASE);
	siterec_replication_free(x->a2);   /* its release fails quietly: B keeps the VM */
	must(siterec_replication_keepalive(b), "keepalive of the new holder");
	vm_writes(f, 10);
	free_copy(&c);
	c = take_copy(f);
	must(siterec_replication_cycle(b, &res), "cycle of the new holder");
	check_point(f->st, "vm-1", res.point_id, &c);
	free_copy(&c);
	siterec_replication_free(b);
	vm_teardown(f);
}

static void fence(void **state)
{
	(void)state;
	static fence_ctx x[2];
	setenv("SITEREC_TEST_LEASE_S", "15", 1);
	fence_phase1(&x[0], 0);
	fence_phase1(&x[1], 1);
	sleep(16);   /* the leases of both A2 expire (a host that stopped renewing) */
	fence_phase2(&x[0]);
	fence_phase2(&x[1]);
	unsetenv("SITEREC_TEST_LEASE_S");
}

/* ---- continuous mode ---- */

static void continuous(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "cont", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	o.interval_s = SITEREC_POLICY_CONTINUOUS;
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	must(siterec_replication_initial(r), "initial");
	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	must(siterec_replication_status_get(r, &s), "status");
	uint64_t points = s.points, gen = s.generation;
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION, .point_id = 77 };
	for (int i = 0; i < 3; i++) {   /* nothing written: no point */
		must(siterec_replication_cycle(r, &res), "idle continuous cycle");
		assert_int_equal(res.point_id, 0);
		assert_int_equal(res.kind, 0);
	}
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.points, points);
	assert_int_equal(s.generation, gen);
	for (int i = 0; i < 3; i++) {   /* writes: each call ships them and adds a point */
		vm_writes(&f, 15);
		copy c = take_copy(&f);
		must(siterec_replication_cycle(r, &res), "continuous cycle");
		assert_true(res.point_id > 0);
		assert_true(res.bytes_shipped > 0);
		check_point(f.st, "vm-1", res.point_id, &c);
		free_copy(&c);
		must(siterec_replication_cycle(r, &res), "idle continuous cycle");
		assert_int_equal(res.point_id, 0);
	}
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.points, points + 3);
	siterec_replication_free(r);
	/* reopened: still nothing to ship */
	o = repl_opts(&f, 0);
	o.interval_s = SITEREC_POLICY_CONTINUOUS;
	r = repl_open(&f, &o);
	must(siterec_replication_cycle(r, &res), "idle continuous cycle after a reopen");
	assert_int_equal(res.point_id, 0);
	siterec_replication_free(r);
	vm_teardown(&f);
}

static void continuous_file(void **state) { (void)state; continuous(0); }
static void continuous_azure(void **state) { (void)state; continuous(1); }

/* ---- errors ---- */

static void errors(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "err", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	siterec_replication *r = NULL;

	/* not protected yet */
	siterec_replication_options ro = repl_opts(&f, 0);
	th_assert_err(siterec_replication_open(&r, &f.vm, &ro), SITEREC_ENOTFOUND);
	assert_null(r);

	/* bad VMs */
	siterec_vm_disk d[4];
	memcpy(d, f.disks, sizeof(d));
	siterec_vm vm = f.vm;
	vm.disks = d;
	d[0].flags = SITEREC_VM_DISK_EXCLUDED;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, "OS disk"));
	d[0].flags = 0;
	d[1].role = SITEREC_DISK_ROLE_OS;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	d[1].role = SITEREC_DISK_ROLE_DATA;
	d[0].role = SITEREC_DISK_ROLE_DATA;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	d[0].role = SITEREC_DISK_ROLE_OS;
	d[3].id = "data";
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	d[3].id = "bad/id";
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	d[3].id = "mem";
	d[3].size = 1000;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	d[3].size = MEM_SIZE;
	vm.id = ".hidden";
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	vm.id = "vm-1";
	vm.n_disks = 0;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EINVAL);
	vm.n_disks = 4;
	vm.version = 2;
	th_assert_err(siterec_replication_open(&r, &vm, &o), SITEREC_EVERSION);
	vm.version = SITEREC_VM_VERSION;
	th_assert_err(siterec_replication_open(&r, NULL, &o), SITEREC_EINVAL);

	/* bad options */
	siterec_replication_options bo = o;
	bo.interval_s = 17;
	th_assert_err(siterec_replication_open(&r, &f.vm, &bo), SITEREC_EINVAL);
	bo = o;
	bo.store = NULL;
	th_assert_err(siterec_replication_open(&r, &f.vm, &bo), SITEREC_EINVAL);
	bo = o;
	bo.state_dir = NULL;
	th_assert_err(siterec_replication_open(&r, &f.vm, &bo), SITEREC_EINVAL);
	bo = o;
	bo.flags = 0x80;
	th_assert_err(siterec_replication_open(&r, &f.vm, &bo), SITEREC_EINVAL);
	bo = o;
	bo.version = 99;
	th_assert_err(siterec_replication_open(&r, &f.vm, &bo), SITEREC_EVERSION);
	th_assert_err(siterec_replication_open(&r, &f.vm, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_replication_open(NULL, &f.vm, &o), SITEREC_EINVAL);
	th_assert_err(siterec_replication_options_init(&bo, 0), SITEREC_EVERSION);
	must(siterec_replication_options_init(&bo, 1), "options init");
	assert_int_equal(bo.interval_s, 300);

	/* protect; twice is EEXISTS */
	r = repl_open(&f, &o);
	th_assert_err(siterec_replication_cycle(r, NULL), SITEREC_ESTATE);
	siterec_replication *r2 = NULL;
	th_assert_err(siterec_replication_open(&r2, &f.vm, &o), SITEREC_EEXISTS);
	assert_null(r2);
	siterec_replication_free(r);
	siterec_replication_free(NULL);

	/* reopen with a resized, a removed or an added disk */
	memcpy(d, f.disks, sizeof(d));
	vm = f.vm;
	vm.disks = d;
	d[3].size = 2 * MEM_SIZE;
	th_assert_err(siterec_replication_open(&r, &vm, &ro), SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, "resized"));
	d[3].size = MEM_SIZE;
	vm.n_disks = 3;
	th_assert_err(siterec_replication_open(&r, &vm, &ro), SITEREC_ECONFLICT);
	siterec_vm_disk d5[5];
	memcpy(d5, f.disks, sizeof(f.disks));
	d5[4] = (siterec_vm_disk){ .id = "new", .read = mem_read, .read_payload = &f, .size = MEM_SIZE,
	                           .role = SITEREC_DISK_ROLE_DATA };
	vm.disks = d5;   /* (adding a disk: the add_disk test) */
	d5[2].flags = 0;
	vm.n_disks = 4;
	th_assert_err(siterec_replication_open(&r, &vm, &ro), SITEREC_ECONFLICT);

	/* status and NULL handles */
	r = repl_open(&f, &ro);
	siterec_replication_status s = { .version = 0 };
	th_assert_err(siterec_replication_status_get(r, &s), SITEREC_EVERSION);
	th_assert_err(siterec_replication_status_get(r, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_replication_initial(NULL), SITEREC_EINVAL);
	th_assert_err(siterec_replication_cycle(NULL, NULL), SITEREC_EINVAL);
	siterec_replication_free(r);

	/* a state document of a newer version, and a damaged one */
	void *doc = NULL;
	size_t len = 0;
	char etag[SITEREC_STORE_ETAG_MAX];
	must(siterec_store_doc_get(f.st, "vm-1/replication", &doc, &len, etag, sizeof(etag)), "doc get");
	char *text = calloc(1, len + 1);
	assert_non_null(text);
	memcpy(text, doc, len);
	siterec_free(doc);
	char *v = strstr(text, "\"version\":2");
	assert_non_null(v);
	v[10] = '3';
	must(siterec_store_doc_put(f.st, "vm-1/replication", text, len, NULL, NULL, 0), "doc put");
	th_assert_err(siterec_replication_open(&r, &f.vm, &ro), SITEREC_EVERSION);
	must(siterec_store_doc_put(f.st, "vm-1/replication", "{\"format\":1}", 12, NULL, NULL, 0), "doc put");
	th_assert_err(siterec_replication_open(&r, &f.vm, &ro), SITEREC_ECORRUPT);
	assert_null(r);
	free(text);
	vm_teardown(&f);
}

/* ---- resync ---- */

/* 64 KiB blocks where a replica differs from the copy (what a resync must write). */
static uint64_t differing_bytes(siterec_store *st, const char *vm, const copy *c)
{
	static const char *const ids[N_PROT] = { "os", "data", "mem" };
	uint8_t *buf = malloc(DATA_SIZE);
	assert_non_null(buf);
	uint64_t n = 0;
	for (uint32_t k = 0; k < N_PROT; k++) {
		char name[128];
		snprintf(name, sizeof(name), "%s/disks/%s", vm, ids[k]);
		assert_int_equal(siterec_store_read(st, name, NULL, buf, sizes[k], 0), 0);
		for (uint64_t off = 0; off < sizes[k]; off += 64 * KiB)
			if (memcmp(buf + off, c->d[k] + off, 64 * KiB) != 0)
				n += 64 * KiB;
	}
	free(buf);
	return n;
}

static void resync_child(vm_fixture *f, int azure, int fd)
{
	siterec_replication_options o = repl_opts(f, 0);
	o.progress = NULL;
	/* its own store: the parent's connections must not be shared across fork */
	o.store = th_store_open(&g, azure, azure ? "replresyncaz" : "replresyncfile");
	siterec_replication *r = NULL;
	f->status_fd = fd;
	if (siterec_replication_open(&r, &f->vm, &o) || siterec_replication_resync(r, NULL))
		child_end(f, 4);
	siterec_replication_free(r);
	siterec_store_free(o.store);
	child_end(f, 0);
}

static void resync(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "resync", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	must(siterec_replication_initial(r), "initial");
	vm_writes(&f, 20);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, NULL), "apply");
	uint64_t before = res.point_id;
	copy cb = take_copy(&f);

	/* a sealed log of the data disk is lost: the next cycle asks for a resync */
	vm_writes(&f, 25);
	uint64_t sealed = 0;
	must(siterec_journal_request_rotate(f.jw, 0, &sealed), "rotate");
	char path[4200];
	must(siterec_journal_log_path(f.jw, 1, sealed, path, sizeof(path)), "log path");
	assert_int_equal(unlink(path), 0);
	/* and writes that bypassed the journal (tracking lost for them) */
	uint8_t blk[8 * KiB];
	th_fill(blk, sizeof(blk), 991);
	assert_int_equal(pwrite(f.data_fd, blk, sizeof(blk), 5 * MiB + 4096), (ssize_t)sizeof(blk));
	memcpy(f.mem + 300 * KiB, blk, 4 * KiB);
	vm_writes(&f, 5);
	th_assert_err(siterec_replication_cycle(r, &res), SITEREC_ERESYNC);
	assert_non_null(strstr(siterec_error_last()->message, "missing"));
	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_RESYNC);
	assert_string_equal(siterec_replication_state_name(s.state), "resync");
	assert_null(siterec_replication_state_name(99));
	assert_non_null(strstr(s.reason, "missing"));
	th_assert_err(siterec_replication_cycle(r, &res), SITEREC_ERESYNC);
	th_assert_err(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, NULL), SITEREC_ESTATE);

	/* killed mid-way a few times: the state stays RESYNC, the next one finishes */
	siterec_replication_free(r);
	uint64_t seed = 0x5eed + (uint64_t)azure;
	for (int round = 0; round < 4; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			resync_child(&f, azure, pfd[1]);
		}
		close(pfd[1]);
		usleep((useconds_t)(th_rand(&seed) % 30000));
		kill(pid, SIGKILL);
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		close(pfd[0]);
	}
	o = repl_opts(&f, 0);
	r = repl_open(&f, &o);
	copy c = take_copy(&f);
	uint64_t differ = differing_bytes(f.st, "vm-1", &c);
	assert_true(differ > 0);
	must(siterec_replication_resync(r, &res), "resync");
	assert_true(res.point_id > before);
	/* only the differing blocks went (no write since the copy: the journal adds none) */
	assert_int_equal(res.bytes_shipped, differ);
	check_point(f.st, "vm-1", res.point_id, &c);
	check_replicas(f.st, "vm-1", &c);
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_PROTECTED);
	assert_string_equal(s.reason, "");
	assert_int_equal(s.applied_point_id, res.point_id);
	check_point(f.st, "vm-1", before, &cb);  /* earlier points stay valid */
	siterec_replication_free(r);
	free_copy(&c);
	free_copy(&cb);
	vm_teardown(&f);
}

static void resync_file(void **state) { (void)state; resync(0); }
static void resync_azure(void **state) { (void)state; resync(1); }

/* ---- the policy loop ---- */

typedef struct follow_ctx {
	vm_fixture *f;
	long az_pid;          /* Azurite, stopped for a while to cause retries (0: file target) */
	int az_stopped;       /* 1 stopped, 2 continued */
	unsigned points, applied, retries, resyncs, lost;
	uint64_t last_point;
	int order_ok;
	time_t deadline;
} follow_ctx;

static int follow_cb(const siterec_follow_event *ev, void *payload)
{
	follow_ctx *x = payload;
	if (ev->version != SITEREC_FOLLOW_EVENT_VERSION)
		x->order_ok = 0;
	switch (ev->kind) {
	case SITEREC_FOLLOW_POINT:
		if (ev->point_id <= x->last_point || ev->cycle.point_id != ev->point_id)
			x->order_ok = 0;
		x->last_point = ev->point_id;
		x->points++;
		if (x->points == 3 && !x->lost) {
			/* lose a sealed log: the loop must resync by itself */
			uint64_t sealed = 0;
			char path[4200];
			vm_writes(x->f, 10);
			assert_int_equal(siterec_journal_request_rotate(x->f->jw, 0, &sealed), 0);
			assert_int_equal(siterec_journal_log_path(x->f->jw, 2, sealed, path, sizeof(path)), 0);
			assert_int_equal(unlink(path), 0);
			x->lost = 1;
		}
		if (x->points == 6 && x->az_pid && !x->az_stopped) {
			kill((pid_t)x->az_pid, SIGSTOP);
			x->az_stopped = 1;
		}
		break;
	case SITEREC_FOLLOW_APPLIED:
		x->applied++;
		break;
	case SITEREC_FOLLOW_RETRY:
		if (ev->delay_ms < 1000 || ev->error == 0)
			x->order_ok = 0;
		x->retries++;
		if (x->az_stopped == 1) {
			kill((pid_t)x->az_pid, SIGCONT);
			x->az_stopped = 2;
		}
		break;
	case SITEREC_FOLLOW_RESYNC:
		if (ev->error != SITEREC_ERESYNC)
			x->order_ok = 0;
		x->resyncs++;
		break;
	case SITEREC_FOLLOW_TICK:
		break;
	default:
		x->order_ok = 0;
	}
	if (x->points < 12)
		vm_writes(x->f, 2);
	int done = x->points >= 12 && x->applied >= 1 && x->resyncs == 1 && (!x->az_pid || x->retries >= 1);
	return done || time(NULL) > x->deadline;
}

static void follow(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "follow", 0);
	siterec_store *st = f.st;
	if (azure) {
		/* short timeouts, few retries: a stopped server fails a step within seconds */
		siterec_store_options so = SITEREC_STORE_OPTIONS_INIT;
		so.flags = SITEREC_STORE_ALLOW_HTTP;
		so.account_key = TH_AZURITE_KEY;
		so.max_retries = 1;
		so.timeout_ms = 1500;
		char url[256];
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/devstoreaccount1/replfollowaz", g.port);
		must(siterec_store_open(&st, url, &so), "store open");
	}
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	o.store = st;
	o.progress = NULL;
	o.interval_s = SITEREC_POLICY_CONTINUOUS;
	o.apply_delay_s = 1;
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	vm_writes(&f, 10);
	follow_ctx x = { .f = &f, .az_pid = azure ? g.pid : 0, .order_ok = 1, .deadline = time(NULL) + 120 };
	th_assert_err(siterec_replication_follow(r, NULL, NULL), SITEREC_EINVAL);
	int rc = siterec_replication_follow(r, follow_cb, &x);
	if (rc)
		fprintf(stderr, "follow: %s\n", siterec_error_last()->message);
	if (x.az_stopped == 1)
		kill((pid_t)g.pid, SIGCONT);
	assert_int_equal(rc, 0);
	fprintf(stderr, "follow (%s): %u points, %u applied, %u retries, %u resyncs\n", azure ? "azure" : "file",
	        x.points, x.applied, x.retries, x.resyncs);
	assert_true(time(NULL) <= x.deadline);
	assert_true(x.order_ok);
	assert_int_equal(x.resyncs, 1);
	/* the writes stopped: one more cycle and apply, and every replica is its source */
	copy c = take_copy(&f);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, NULL), "apply");
	check_point(st, "vm-1", res.point_id ? res.point_id : x.last_point, &c);
	check_replicas(st, "vm-1", &c);
	siterec_replication_free(r);
	if (st != f.st)
		siterec_store_free(st);
	free_copy(&c);
	vm_teardown(&f);
}

static void follow_file(void **state) { (void)state; follow(0); }
static void follow_azure(void **state) { (void)state; follow(1); }

/* A VM recorded critical (as a failure the retries cannot fix leaves it): cycles
 * and the loop refuse; a resync, once the cause is fixed, brings it back. */
static void critical(void **state)
{
	(void)state;
	vm_fixture f;
	vm_setup(&f, 0, "critical", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	o.progress = NULL;
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	must(siterec_replication_initial(r), "initial");
	siterec_replication_free(r);
	void *doc = NULL;
	size_t len = 0;
	must(siterec_store_doc_get(f.st, "vm-1/replication", &doc, &len, NULL, 0), "doc get");
	char *text = calloc(1, len + 64);
	assert_non_null(text);
	memcpy(text, doc, len);
	siterec_free(doc);
	char *st = strstr(text, "\"state\":\"protected\",\"reason\":\"\"");
	assert_non_null(st);
	const char *crit = "\"state\":\"critical\",\"reason\":\"disk os: broken chain\"";
	memmove(st + strlen(crit), st + strlen("\"state\":\"protected\",\"reason\":\"\""),
	        strlen(st) - strlen("\"state\":\"protected\",\"reason\":\"\"") + 1);
	memcpy(st, crit, strlen(crit));
	must(siterec_store_doc_put(f.st, "vm-1/replication", text, strlen(text), NULL, NULL, 0), "doc put");
	free(text);
	o = repl_opts(&f, 0);
	o.progress = NULL;
	r = repl_open(&f, &o);
	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_CRITICAL);
	assert_string_equal(s.reason, "disk os: broken chain");
	th_assert_err(siterec_replication_cycle(r, NULL), SITEREC_ECRITICAL);
	th_assert_err(siterec_replication_follow(r, follow_cb, &(follow_ctx){ .f = &f }), SITEREC_ECRITICAL);
	vm_writes(&f, 10);
	copy c = take_copy(&f);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_resync(r, &res), "resync");
	check_point(f.st, "vm-1", res.point_id, &c);
	must(siterec_replication_status_get(r, &s), "status");
	assert_int_equal(s.state, SITEREC_REPL_PROTECTED);
	must(siterec_replication_cycle(r, NULL), "cycle");
	siterec_replication_free(r);
	free_copy(&c);
	vm_teardown(&f);
}

/* ---- checkpoints: any point in time ---- */

static int mem_out(const void *buf, size_t len, uint64_t off, void *payload)
{
	memcpy((uint8_t *)payload + off, buf, len);
	return 0;
}

/* Disk k as of time t (siterec_rp_restore_at) equals c; *at gets the instant. */
static void check_at(siterec_store *st, int64_t t, const copy *c, int64_t *at)
{
	siterec_rp_catalog *cat = NULL;
	assert_int_equal(siterec_rp_open(&cat, st, "vm-1"), 0);
	/* an Azure replica is a fixed VHD: its footer (after the data, rounded up to
	 * a MiB) comes too */
	uint8_t *buf = malloc(DATA_SIZE + 2 * MiB);
	assert_non_null(buf);
	for (uint32_t k = 0; k < N_PROT; k++) {
		memset(buf, 0, DATA_SIZE + 2 * MiB);
		int rc = siterec_rp_restore_at(cat, t, k, SITEREC_RP_RESTORE_ZEROS, mem_out, buf, at);
		if (rc)
			fprintf(stderr, "restore_at: %s\n", siterec_error_last()->message);
		assert_int_equal(rc, 0);
		if (memcmp(buf, c->d[k], sizes[k]) != 0)
			fail_msg("disk %u at %lld differs from the source then", k, (long long)t);
	}
	free(buf);
	siterec_rp_free(cat);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void checkpoints(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "ckpt", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	o.progress = NULL;
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	must(siterec_replication_initial(r), "initial");
	copy c0 = take_copy(&f);
	usleep(20000);
	int64_t t0 = wall_ms();
	usleep(20000);
	/* three checkpoints with writes before each, then a point */
	copy cc[3];
	int64_t tc[3];
	uint64_t bytes = 1;
	for (int i = 0; i < 3; i++) {
		vm_writes(&f, 15);
		cc[i] = take_copy(&f);
		must(siterec_replication_checkpoint(r, &bytes), "checkpoint");
		assert_true(bytes > 0);
		usleep(20000);
		tc[i] = wall_ms();   /* after checkpoint i, before the next writes */
		usleep(20000);
	}
	must(siterec_replication_checkpoint(r, &bytes), "checkpoint with nothing written");
	assert_int_equal(bytes, 0);
	vm_writes(&f, 15);
	copy cq = take_copy(&f);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	check_point(f.st, "vm-1", res.point_id, &cq);
	/* any point in time, at the checkpoints' granularity */
	int64_t at = 0;
	check_at(f.st, t0, &c0, &at);
	for (int i = 0; i < 3; i++) {
		check_at(f.st, tc[i], &cc[i], &at);
		assert_true(at <= tc[i] && at > (i ? tc[i - 1] : t0));
	}
	check_at(f.st, res.cut_time_ms, &cq, &at);
	siterec_rp_catalog *cat = NULL;
	must(siterec_rp_open(&cat, f.st, "vm-1"), "rp open");
	uint8_t b[512];
	th_assert_err(siterec_rp_restore_at(cat, res.cut_time_ms + 1, 0, 0, mem_out, b, NULL), SITEREC_ENOTFOUND);
	siterec_rp_free(cat);
	/* the batch applies the checkpoints too */
	must(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, NULL), "apply");
	check_replicas(f.st, "vm-1", &cq);
	siterec_replication_free(r);
	free_copy(&c0);
	free_copy(&cq);
	for (int i = 0; i < 3; i++)
		free_copy(&cc[i]);
	vm_teardown(&f);
}

static void checkpoints_file(void **state) { (void)state; checkpoints(0); }
static void checkpoints_azure(void **state) { (void)state; checkpoints(1); }

/* ---- a disk added to a protected VM ---- */

static int extra_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	memcpy((uint8_t *)payload + off, buf, len);
	return 0;
}

static int extra_read(void *buf, size_t len, uint64_t off, void *payload)
{
	memcpy(buf, (const uint8_t *)payload + off, len);
	return 0;
}

static void add_disk(int azure)
{
	vm_fixture f;
	vm_setup(&f, azure, "adddisk", 0);
	siterec_replication_options o = repl_opts(&f, SITEREC_REPLICATION_PROTECT);
	o.progress = NULL;
	siterec_replication *r = repl_open(&f, &o);
	vm_start_writer(&f);
	must(siterec_replication_initial(r), "initial");
	vm_writes(&f, 10);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	must(siterec_replication_cycle(r, &res), "cycle");
	copy c1 = take_copy(&f);
	uint64_t p1 = res.point_id;

	/* the VM gets a fifth disk (in memory): described to the replication
	 * while the write path still has the old journal: refused, nothing changed */
	const uint64_t xsize = 2 * MiB;
	uint8_t *extra = malloc(xsize);
	assert_non_null(extra);
	th_fill(extra, xsize, 4242);
	siterec_vm_disk disks[5];
	memcpy(disks, f.disks, sizeof(f.disks));
	disks[4] = (siterec_vm_disk){ .id = "extra", .read = extra_read, .read_payload = extra, .size = xsize,
	                              .role = SITEREC_DISK_ROLE_DATA };
	siterec_vm vm5 = f.vm;
	vm5.n_disks = 5;
	vm5.disks = disks;
	siterec_replication_free(r);
	siterec_replication *r5 = NULL;
	o = repl_opts(&f, 0);
	o.progress = NULL;
	th_assert_err(siterec_replication_open(&r5, &vm5, &o), SITEREC_EBUSY);
	assert_non_null(strstr(siterec_error_last()->message, "write path"));
	/* the write path adds it (reopens its journal with the new list) */
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
	pthread_join(f.poller, NULL);
	siterec_journal_free(f.jw);
	siterec_journal_disk jd[4] = {
		{ .id = "os", .size = OS_SIZE },
		{ .id = "data", .size = DATA_SIZE, .write = data_write, .write_payload = &f },
		{ .id = "mem", .size = MEM_SIZE, .write = mem_write, .write_payload = &f },
		{ .id = "extra", .size = xsize, .write = extra_write, .write_payload = extra },
	};
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_ADD_DISKS;
	jo.n_disks = 4;
	jo.disks = jd;
	char *jdir = th_path(f.state_dir, "journal");
	must(siterec_journal_open(&f.jw, jdir, &jo), "journal add");
	free(jdir);
	__atomic_store_n(&f.stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&f.poller, NULL, poll_main, &f), 0);
	uint8_t blk[8192];
	th_fill(blk, sizeof(blk), 7);
	must(siterec_journal_write(f.jw, 3, blk, sizeof(blk), 64 * KiB), "write to the new disk");

	r5 = NULL;
	int rc = siterec_replication_open(&r5, &vm5, &o);
	if (rc)
		fprintf(stderr, "open with a disk added: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	/* the others go on while it is not copied: points of 3 disks */
	vm_writes(&f, 10);
	copy c2 = take_copy(&f);
	must(siterec_replication_cycle(r5, &res), "cycle before the copy");
	check_point(f.st, "vm-1", res.point_id, &c2);
	/* its initial copy (the VM writes to it meanwhile), then it joins at a cut */
	must(siterec_replication_initial(r5), "initial of the added disk");
	th_fill(blk, sizeof(blk), 8);
	must(siterec_journal_write(f.jw, 3, blk, sizeof(blk), xsize - sizeof(blk)), "write to the new disk");
	vm_writes(&f, 10);
	copy c3 = take_copy(&f);
	uint8_t *x3 = malloc(xsize);
	assert_non_null(x3);
	memcpy(x3, extra, xsize);
	must(siterec_replication_cycle(r5, &res), "cycle that joins it");
	check_point(f.st, "vm-1", res.point_id, &c3);
	siterec_rp_catalog *cat = NULL;
	must(siterec_rp_open(&cat, f.st, "vm-1"), "rp open");
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	must(siterec_rp_find(cat, res.point_id, &p), "find");
	assert_int_equal(p.n_disks, 4);
	assert_string_equal(p.disks[3].disk, "vm-1/disks/extra");
	uint8_t *got = malloc(xsize);
	assert_non_null(got);
	must(siterec_rp_read(cat, res.point_id, 3, got, xsize, 0), "read the new disk");
	assert_memory_equal(got, x3, xsize);
	/* a later log point carries it like the others */
	th_fill(blk, sizeof(blk), 9);
	must(siterec_journal_write(f.jw, 3, blk, sizeof(blk), MiB), "write to the new disk");
	vm_writes(&f, 5);
	copy c4 = take_copy(&f);
	must(siterec_replication_cycle(r5, &res), "cycle");
	check_point(f.st, "vm-1", res.point_id, &c4);
	must(siterec_rp_refresh(cat), "refresh");
	must(siterec_rp_read(cat, res.point_id, 3, got, xsize, 0), "read the new disk");
	assert_memory_equal(got, extra, xsize);
	must(siterec_replication_apply(r5, 0, SITEREC_APPLY_NOW, NULL), "apply");
	check_replicas(f.st, "vm-1", &c4);
	must(siterec_store_read(f.st, "vm-1/disks/extra", NULL, got, xsize, 0), "replica read");
	assert_memory_equal(got, extra, xsize);
	check_point(f.st, "vm-1", p1, &c1);   /* points from before keep their 3 disks */
	siterec_rp_free(cat);
	siterec_replication_free(r5);
	free(got);
	free(x3);
	free(extra);
	free_copy(&c1);
	free_copy(&c2);
	free_copy(&c3);
	free_copy(&c4);
	vm_teardown(&f);
}

static void add_disk_file(void **state) { (void)state; add_disk(0); }
static void add_disk_azure(void **state) { (void)state; add_disk(1); }

static void errors_file(void **state) { (void)state; errors(0); }
static void errors_azure(void **state) { (void)state; errors(1); }

int main(void)
{
	if (system("qemu-img --version >/dev/null 2>&1 && qemu-io --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_replication: qemu-img/qemu-io (qemu-utils) are required\n");
		return 1;
	}
	/* two programs from this file (REPL_PART 2: test_replication_more), so that
	 * each stays within the suite's time limit under valgrind */
	const struct CMUnitTest part1[] = {
		cmocka_unit_test(errors_file), cmocka_unit_test(errors_azure),
		cmocka_unit_test(flow_file),   cmocka_unit_test(flow_azure),
		cmocka_unit_test(crash_file),  cmocka_unit_test(crash_azure),
		cmocka_unit_test(continuous_file), cmocka_unit_test(continuous_azure),
		cmocka_unit_test(fence),
	};
	const struct CMUnitTest part2[] = {
		cmocka_unit_test(resync_file), cmocka_unit_test(resync_azure),
		cmocka_unit_test(follow_file), cmocka_unit_test(follow_azure),
		cmocka_unit_test(critical),
		cmocka_unit_test(checkpoints_file), cmocka_unit_test(checkpoints_azure),
		cmocka_unit_test(add_disk_file), cmocka_unit_test(add_disk_azure),
	};
	if (REPL_PART == 2)
		return cmocka_run_group_tests(part2, group_setup, group_teardown);
	return cmocka_run_group_tests(part1, group_setup, group_teardown);
}
