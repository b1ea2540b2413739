/* Journal: writes through the log to the disks, rotations requested from another
 * handle (a thread) or another process, replay of the sealed logs, the
 * hand-over when no writer runs, crashes at random instants, errors.
 * Public API only. Children of fork() never use cmocka: they report through
 * their exit status. No timing assertions: times only bound waits. */
#include "helpers.h"

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

#define ND 3
#define BLK 512u
#define WAIT_MS 60000u

static const char *const IDS[ND] = { "d0", "disk-1", "Disk_2.vhd" };
static const uint64_t SIZES[ND] = { 256 * 1024, 512 * 1024, 128 * 1024 };

/* ---- fixtures ---- */

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
	memcpy((uint8_t *)p + off, buf, len);
	return 0;
}

static int fd_write(const void *buf, size_t len, uint64_t off, void *p)
{
	return pwrite(*(const int *)p, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

static void mkdisks(siterec_journal_disk *d, siterec_write_fn fn, void **payloads)
{
	for (int i = 0; i < ND; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].id = IDS[i];
		d[i].size = SIZES[i];
		d[i].write = fn;
		d[i].write_payload = payloads ? payloads[i] : NULL;
	}
}

/* Open dir with the standard three disks; returns the code. */
static int jopen(siterec_journal **j, const char *dir, uint32_t flags, siterec_write_fn fn,
                 void **payloads)
{
	siterec_journal_disk d[ND];
	mkdisks(d, fn, payloads);
	siterec_journal_options o;
	if (siterec_journal_options_init(&o, SITEREC_JOURNAL_OPTIONS_VERSION) != 0)
		return -1000;
	o.flags = flags;
	o.n_disks = ND;
	o.disks = d;
	return siterec_journal_open(j, dir, &o);
}

static siterec_journal *jopen_ok(const char *dir, uint32_t flags, siterec_write_fn fn,
                                 void **payloads)
{
	siterec_journal *j = NULL;
	int rc = jopen(&j, dir, flags, fn, payloads);
	if (rc)
		fprintf(stderr, "journal open: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_non_null(j);
	return j;
}

static char *log_path(siterec_journal *j, uint32_t disk, uint64_t seq)
{
	char *p = malloc(4096);
	assert_non_null(p);
	assert_int_equal(siterec_journal_log_path(j, disk, seq, p, 4096), 0);
	return p;
}

static uint64_t active_seq(siterec_journal *j)
{
	uint64_t a = 0;
	assert_int_equal(siterec_journal_seqs(j, &a, NULL), 0);
	return a;
}

/* Apply log seq of every disk onto the replica images fds[] (sealed or not). */
static void replay_fd(siterec_journal *j, uint64_t seq, const int *fds, uint32_t flags)
{
	for (uint32_t i = 0; i < ND; i++) {
		char *p = log_path(j, i, seq);
		int rc = siterec_dlog_apply_fd(p, NULL, flags | SITEREC_DLOG_APPLY_NO_SYNC, fds[i], NULL);
		if (rc)
			fprintf(stderr, "apply %s: %s\n", p, siterec_error_last()->message);
		assert_int_equal(rc, 0);
		free(p);
	}
}

/* Sealed log of every disk verifies whole and sealed; returns disk 0's last record seq. */
static void check_sealed(siterec_journal *j, uint64_t seq)
{
	for (uint32_t i = 0; i < ND; i++) {
		char *p = log_path(j, i, seq);
		siterec_dlog_info info;
		memset(&info, 0, sizeof(info));
		info.version = SITEREC_DLOG_INFO_VERSION;
		int rc = siterec_dlog_verify(p, NULL, &info);
		if (rc)
			fprintf(stderr, "verify %s: %s\n", p, siterec_error_last()->message);
		assert_int_equal(rc, 0);
		assert_int_equal(info.sealed, 1);
		assert_int_equal(info.disk_size, SIZES[i]);
		free(p);
	}
}

static void wait_child(pid_t pid, int want_status)
{
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (want_status >= 0) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != want_status)
			fprintf(stderr, "child %d: status 0x%x\n", (int)pid, st);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), want_status);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the child writer (another process) ---- */

static volatile sig_atomic_t g_stop;
static void on_usr1(int s)
{
	(void)s;
	g_stop = 1;
}

/* Child: write to the three disks through the journal at dir, raw images in
 * dir/../raw0..2: round k writes counter k to sector 0 of disk 0, then 1, then 2,
 * each followed by a random write elsewhere. Until SIGUSR1 (then a clean close
 * and exit 0), or max_rounds when non-zero. Never returns. */
static void child_writer(const char *dir, const char *rawdir, uint64_t max_rounds)
{
	/* Resumes at the counter of raw disk 0: that round again, whole, so the
	 * counters in the logs stay a single run across writers (the log may be one
	 * write ahead of the disk when the previous writer was killed). */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	int fds[ND];
	void *pl[ND];
	for (int i = 0; i < ND; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s/raw%d", rawdir, i);
		fds[i] = open(name, O_RDWR);
		if (fds[i] < 0)
			_exit(20);
		pl[i] = &fds[i];
	}
	siterec_journal *j = NULL;
	if (jopen(&j, dir, SITEREC_JOURNAL_WRITER, fd_write, pl) != 0) {
		fprintf(stderr, "child open: %s\n", siterec_error_last()->message);
		_exit(21);
	}
	uint64_t rng = (uint64_t)getpid() * 7919u + 1, k0 = 0;
	uint8_t *buf = malloc(8 * BLK);
	if (!buf || pread(fds[0], &k0, 8, 0) != 8)
		_exit(22);
	for (uint64_t k = k0 ? k0 : 1; !g_stop && (!max_rounds || k <= max_rounds); k++) {
		for (uint32_t d = 0; d < ND; d++) {
			memset(buf, (int)(k & 0xff), BLK);
			memcpy(buf, &k, 8);
			if (siterec_journal_write(j, d, buf, BLK, 0) != 0)
				goto fail;
			size_t len = (size_t)(1 + th_rand(&rng) % 8) * BLK;
			uint64_t span = (SIZES[d] - BLK - len) / BLK;
			uint64_t off = BLK + (th_rand(&rng) % (span + 1)) * BLK;
			th_fill(buf, len, th_rand(&rng));
			if (th_rand(&rng) % 5 == 0)
				memset(buf, 0, len);
			if (siterec_journal_write(j, d, buf, len, off) != 0)
				goto fail;
		}
	}
	free(buf);
	siterec_journal_free(j);
	for (int i = 0; i < ND; i++)
		close(fds[i]);
	_exit(0);
fail:
	fprintf(stderr, "child write: %s\n", siterec_error_last()->message);
	_exit(23);
}

static pid_t spawn_writer(const char *dir, const char *rawdir, uint64_t max_rounds)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_writer(dir, rawdir, max_rounds);
	return pid;
}

/* Fresh test area: base/j (the journal, created), base/raw0..2 (zeroed disk
 * images for the child) and base/rep0..2 (replicas) open in rep[]. */
static char *setup_area(char **jdir, int *rep)
{
	char *base = th_tmpdir();
	*jdir = th_path(base, "j");
	siterec_journal *j = jopen_ok(*jdir, SITEREC_JOURNAL_CREATE, NULL, NULL);
	siterec_journal_free(j);
	for (int i = 0; i < ND; i++) {
		char name[16];
		snprintf(name, sizeof(name), "raw%d", i);
		char *p = th_path(base, name);
		close(th_make_file(p, SIZES[i]));
		free(p);
		snprintf(name, sizeof(name), "rep%d", i);
		p = th_path(base, name);
		rep[i] = th_make_file(p, SIZES[i]);
		free(p);
	}
	return base;
}

static void teardown_area(char *base, char *jdir, int *rep)
{
	for (int i = 0; i < ND; i++)
		close(rep[i]);
	free(jdir);
	th_tmpdir_remove(base);
}

static int64_t counter_of(int fd)
{
	uint64_t v = 0;
	assert_int_equal(pread(fd, &v, 8, 0), 8);
	return (int64_t)v;
}

/* The cut in the replicas is consistent: the counters written to disk 0, 1, 2
 * in turn satisfy c0 >= c1 >= c2 >= c0 - 1. Returns c0. */
static int64_t check_cut(const int *rep)
{
	int64_t c0 = counter_of(rep[0]), c1 = counter_of(rep[1]), c2 = counter_of(rep[2]);
	if (!(c0 >= c1 && c1 >= c2 && c2 >= c0 - 1))
		fprintf(stderr, "inconsistent cut: %lld %lld %lld\n", (long long)c0, (long long)c1,
		        (long long)c2);
	assert_true(c0 >= c1 && c1 >= c2 && c2 >= c0 - 1);
	return c0;
}

static void raw_equals_replica(const char *base)
{
	for (int i = 0; i < ND; i++) {
		char a[16], b[16];
		snprintf(a, sizeof(a), "raw%d", i);
		snprintf(b, sizeof(b), "rep%d", i);
		char *pa = th_path(base, a), *pb = th_path(base, b);
		assert_int_equal(th_files_equal(pa, pb), 0);
		free(pa);
		free(pb);
	}
}

/* ---- 1: rotations from a second handle (a thread), replay against a model ---- */

struct req_thread {
	siterec_journal *r;
	int n, rc[16];
	uint64_t sealed[16];
	int done;
};

static void *requester(void *arg)
{
	struct req_thread *t = arg;
	for (int i = 0; i < t->n; i++)
		t->rc[i] = siterec_journal_request_rotate(t->r, WAIT_MS, &t->sealed[i]);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int mem_apply(const void *buf, size_t len, uint64_t off, void *p)
{
	return mem_write(buf, len, off, p);
}

static void test_rotate_replay(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	uint8_t *model[ND];
	void *pl[ND];
	for (int i = 0; i < ND; i++)
		pl[i] = model[i] = calloc(1, SIZES[i]);
	siterec_journal *w = jopen_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE,
	                              mem_write, pl);
	siterec_journal *r = jopen_ok(dir, 0, NULL, NULL);
	assert_int_equal(active_seq(r), 1);

	enum { NROT = 8 };
	uint8_t *snap[NROT + 2][ND];
	memset(snap, 0, sizeof(snap));
	struct req_thread t;
	memset(&t, 0, sizeof(t));
	t.r = r;
	t.n = NROT;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, requester, &t), 0);

	uint64_t rng = 42, a_prev = 1;
	uint8_t *buf = malloc(16 * BLK), *old = malloc(16 * BLK);
	uint64_t writes = 0;
	while (!__atomic_load_n(&t.done, __ATOMIC_ACQUIRE) || writes < 200) {
		uint32_t d = (uint32_t)(th_rand(&rng) % ND);
		size_t len = (size_t)(1 + th_rand(&rng) % 16) * BLK;
		uint64_t off = (th_rand(&rng) % ((SIZES[d] - len) / BLK + 1)) * BLK;
		int use_poll = th_rand(&rng) % 23 == 0;
		th_fill(buf, len, th_rand(&rng));
		if (th_rand(&rng) % 7 == 0)
			memset(buf, 0, len);
		memcpy(old, model[d] + off, len);
		if (use_poll) {
			int rot = -1;
			assert_int_equal(siterec_journal_poll(w, &rot), 0);
			assert_true(rot == 0 || rot == 1);
		} else {
			assert_int_equal(siterec_journal_write(w, d, buf, len, off), 0);
			writes++;
		}
		uint64_t a = active_seq(r);
		if (a != a_prev) {
			/* the rotation ran at the start of that call: before the write's append */
			assert_int_equal(a, a_prev + 1);
			assert_true(a_prev <= NROT);
			for (int i = 0; i < ND; i++) {
				snap[a_prev][i] = malloc(SIZES[i]);
				memcpy(snap[a_prev][i], model[i], SIZES[i]);
			}
			if (!use_poll)
				memcpy(snap[a_prev][d] + off, old, len);
			a_prev = a;
		}
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	for (int i = 0; i < NROT; i++) {
		assert_int_equal(t.rc[i], 0);
		assert_int_equal(t.sealed[i], (uint64_t)i + 1);
	}
	assert_int_equal(active_seq(r), NROT + 1);
	uint64_t oldest = 0;
	assert_int_equal(siterec_journal_seqs(r, NULL, &oldest), 0);
	assert_int_equal(oldest, 1);

	/* replay: the sealed logs in order reproduce each cut exactly */
	uint8_t *rep[ND];
	for (int i = 0; i < ND; i++)
		rep[i] = calloc(1, SIZES[i]);
	for (uint64_t s = 1; s <= NROT; s++) {
		check_sealed(r, s);
		for (uint32_t i = 0; i < ND; i++) {
			char *p = log_path(r, i, s);
			assert_int_equal(siterec_dlog_apply(p, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED,
			                                    mem_apply, rep[i], NULL), 0);
			free(p);
			assert_non_null(snap[s][i]);
			assert_memory_equal(rep[i], snap[s][i], SIZES[i]);
		}
	}
	/* and the active log brings the replica to the model */
	assert_int_equal(siterec_journal_flush(w), 0);
	for (uint32_t i = 0; i < ND; i++) {
		char *p = log_path(r, i, NROT + 1);
		assert_int_equal(siterec_dlog_apply(p, NULL, 0, mem_apply, rep[i], NULL), 0);
		free(p);
		assert_memory_equal(rep[i], model[i], SIZES[i]);
	}
	/* the logs chain: each one starts where the previous one's seal ended */
	for (uint32_t i = 0; i < ND; i++) {
		uint64_t next = 1;
		for (uint64_t s = 1; s <= NROT + 1; s++) {
			char *p = log_path(r, i, s);
			siterec_dlog_info info;
			memset(&info, 0, sizeof(info));
			info.version = SITEREC_DLOG_INFO_VERSION;
			assert_int_equal(siterec_dlog_verify(p, NULL, &info), 0);
			assert_int_equal(info.first_seq, next);
			next = info.last_seq + 1;
			free(p);
		}
	}

	siterec_journal_free(w);
	siterec_journal_free(r);
	for (int s = 0; s < NROT + 2; s++)
		for (int i = 0; i < ND; i++)
			free(snap[s][i]);
	for (int i = 0; i < ND; i++) {
		free(model[i]);
		free(rep[i]);
	}
	free(buf);
	free(old);
	free(dir);
	th_tmpdir_remove(base);
}

/* ---- 2: a writer process, rotations requested from this one ---- */

static void test_two_processes(void **state)
{
	(void)state;
	char *jdir;
	int rep[ND];
	char *base = setup_area(&jdir, rep);
	pid_t pid = spawn_writer(jdir, base, 0);
	siterec_journal *r = jopen_ok(jdir, 0, NULL, NULL);
	uint64_t rng = 7;
	int64_t last = 0;
	for (uint64_t n = 1; n <= 12; n++) {
		usleep((useconds_t)(th_rand(&rng) % 5000));
		uint64_t sealed = 0;
		int rc = siterec_journal_request_rotate(r, WAIT_MS, &sealed);
		if (rc)
			fprintf(stderr, "request: %s\n", siterec_error_last()->message);
		assert_int_equal(rc, 0);
		assert_int_equal(sealed, n);
		check_sealed(r, sealed);
		replay_fd(r, sealed, rep, SITEREC_DLOG_APPLY_REQUIRE_SEALED);
		int64_t c0 = check_cut(rep);
		assert_true(c0 >= last);
		last = c0;
	}
	/* the writer leaves cleanly; the last rotation happens here */
	assert_int_equal(kill(pid, SIGUSR1), 0);
	wait_child(pid, 0);
	uint64_t sealed = 0;
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &sealed), 0);
	assert_int_equal(sealed, 13);
	check_sealed(r, sealed);
	replay_fd(r, sealed, rep, SITEREC_DLOG_APPLY_REQUIRE_SEALED);
	check_cut(rep);
	raw_equals_replica(base);
	/* release: sealed logs go, the active one stays */
	assert_int_equal(siterec_journal_release(r, 13), 0);
	uint64_t a = 0, o = 0;
	assert_int_equal(siterec_journal_seqs(r, &a, &o), 0);
	assert_int_equal(a, 14);
	assert_int_equal(o, 14);
	siterec_journal_free(r);
	teardown_area(base, jdir, rep);
}

/* ---- 3: idle writers ---- */

struct poller {
	siterec_journal *w;
	int stop, rotations, rc;
};

static void *poll_loop(void *arg)
{
	struct poller *p = arg;
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		int rot = 0;
		if ((p->rc = siterec_journal_poll(p->w, &rot)) != 0)
			break;
		p->rotations += rot;
		usleep(1000);
	}
	return NULL;
}

static void test_idle_writer(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	siterec_journal *w = jopen_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE, NULL,
	                              NULL);
	siterec_journal *r = jopen_ok(dir, 0, NULL, NULL);
	uint8_t blk[BLK];
	memset(blk, 0xab, sizeof(blk));
	assert_int_equal(siterec_journal_write(w, 1, blk, BLK, 4096), 0);

	/* a writer that only polls serves the request */
	struct poller p;
	memset(&p, 0, sizeof(p));
	p.w = w;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, poll_loop, &p), 0);
	uint64_t sealed = 0;
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &sealed), 0);
	assert_int_equal(sealed, 1);
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rotations, 1);
	check_sealed(r, 1);

	/* a writer that neither writes nor polls: time out, the request stays */
	th_assert_err(siterec_journal_request_rotate(r, 50, &sealed), SITEREC_ETIMEOUT);
	assert_int_equal(active_seq(r), 2);
	/* ... and its next write performs it, before appending */
	assert_int_equal(siterec_journal_write(w, 0, blk, BLK, 0), 0);
	assert_int_equal(active_seq(r), 3);
	check_sealed(r, 2);
	for (uint32_t i = 0; i < ND; i++) {
		char *pth = log_path(r, i, 2);
		siterec_dlog_info info;
		memset(&info, 0, sizeof(info));
		info.version = SITEREC_DLOG_INFO_VERSION;
		assert_int_equal(siterec_dlog_verify(pth, NULL, &info), 0);
		assert_int_equal(info.records, 0);
		free(pth);
	}
	int rot = -1;
	assert_int_equal(siterec_journal_poll(w, &rot), 0);
	assert_int_equal(rot, 0);
	/* a request on the writer's own handle rotates at once */
	assert_int_equal(siterec_journal_request_rotate(w, 0, &sealed), 0);
	assert_int_equal(sealed, 3);
	assert_int_equal(active_seq(r), 4);
	siterec_journal_free(w);
	siterec_journal_free(r);
	free(dir);
	th_tmpdir_remove(base);
}

/* ---- 4: no writer process ---- */

static void test_no_writer(void **state)
{
	(void)state;
	char *jdir;
	int rep[ND];
	char *base = setup_area(&jdir, rep);
	siterec_journal *r = jopen_ok(jdir, 0, NULL, NULL);

	/* never started: the requester rotates (an empty cut) */
	uint64_t sealed = 0;
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &sealed), 0);
	assert_int_equal(sealed, 1);
	check_sealed(r, 1);

	/* the writer wrote and exited */
	pid_t pid = spawn_writer(jdir, base, 300);
	wait_child(pid, 0);
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &sealed), 0);
	assert_int_equal(sealed, 2);
	check_sealed(r, 2);
	replay_fd(r, 2, rep, SITEREC_DLOG_APPLY_REQUIRE_SEALED);
	assert_int_equal(check_cut(rep), 300);
	raw_equals_replica(base);

	/* the writer is killed mid-writes; its log's tail is torn */
	pid = spawn_writer(jdir, base, 0);
	char *p0 = log_path(r, 0, 3);
	uint64_t deadline = now_ms() + WAIT_MS;
	while (th_file_size(p0) < 256 * 1024) {
		assert_true(now_ms() < deadline);
		usleep(1000);
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	wait_child(pid, -1);
	th_truncate(p0, (uint64_t)th_file_size(p0) - 100);
	assert_int_equal(siterec_dlog_verify(p0, NULL, NULL), SITEREC_ETRUNCATED);
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &sealed), 0);
	assert_int_equal(sealed, 3);
	check_sealed(r, 3);
	replay_fd(r, 3, rep, SITEREC_DLOG_APPLY_REQUIRE_SEALED);
	/* disk 0 lost its last record: one round behind at most, still a cut */
	check_cut(rep);
	/* log 4 numbers on from log 3's seal */
	for (uint32_t i = 0; i < ND; i++) {
		char *a = log_path(r, i, 3), *b = log_path(r, i, 4);
		siterec_dlog_info ia, ib;
		memset(&ia, 0, sizeof(ia));
		memset(&ib, 0, sizeof(ib));
		ia.version = ib.version = SITEREC_DLOG_INFO_VERSION;
		assert_int_equal(siterec_dlog_verify(a, NULL, &ia), 0);
		assert_int_equal(siterec_dlog_verify(b, NULL, &ib), 0);
		assert_int_equal(ib.sealed, 0);
		assert_int_equal(ib.first_seq, ia.last_seq + 1);
		free(a);
		free(b);
	}
	free(p0);
	siterec_journal_free(r);
	teardown_area(base, jdir, rep);
}

/* ---- 5: errors ---- */

static void test_errors(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	siterec_journal *j = NULL, *w, *r;
	siterec_journal_disk d[ND];
	siterec_journal_options o;

	/* arguments */
	th_assert_err(siterec_journal_options_init(NULL, 1), SITEREC_EINVAL);
	th_assert_err(siterec_journal_options_init(&o, 99), SITEREC_EVERSION);
	assert_int_equal(siterec_journal_options_init(&o, SITEREC_JOURNAL_OPTIONS_VERSION), 0);
	mkdisks(d, NULL, NULL);
	o.n_disks = ND;
	o.disks = d;
	o.flags = SITEREC_JOURNAL_CREATE;
	th_assert_err(siterec_journal_open(NULL, dir, &o), SITEREC_EINVAL);
	th_assert_err(siterec_journal_open(&j, NULL, &o), SITEREC_EINVAL);
	th_assert_err(siterec_journal_open(&j, dir, NULL), SITEREC_EINVAL);
	assert_null(j);
	o.version = 99;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EVERSION);
	o.version = SITEREC_JOURNAL_OPTIONS_VERSION;
	o.flags = 0x80;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL);
	o.flags = SITEREC_JOURNAL_CREATE;
	o.n_disks = 0;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL);
	o.n_disks = 65;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL);
	o.n_disks = ND;
	const char *bad_ids[] = { "", ".hidden", "a/b", "control", "writer.lock", "sp ace",
	                          "x2345678901234567890123456789012345678901234567890123456789012345" };
	for (size_t k = 0; k < sizeof(bad_ids) / sizeof(bad_ids[0]); k++) {
		d[1].id = bad_ids[k];
		th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL);
	}
	d[1].id = IDS[0];
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL); /* duplicate */
	d[1].id = IDS[1];
	d[2].size = 1000;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EALIGN);
	d[2].size = 0;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_EINVAL);
	d[2].size = SIZES[2];
	/* not there and not asked to create */
	th_assert_err(jopen(&j, dir, 0, NULL, NULL), SITEREC_ENOTFOUND);
	th_assert_err(jopen(&j, dir, SITEREC_JOURNAL_WRITER, NULL, NULL), SITEREC_ENOTFOUND);

	w = jopen_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE | SITEREC_JOURNAL_SYNC_EACH,
	             NULL, NULL);
	r = jopen_ok(dir, 0, NULL, NULL);

	/* a second writer, in this process or another */
	th_assert_err(jopen(&j, dir, SITEREC_JOURNAL_WRITER, NULL, NULL), SITEREC_EBUSY);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		siterec_journal *x = NULL;
		int busy = jopen(&x, dir, SITEREC_JOURNAL_WRITER, NULL, NULL) == SITEREC_EBUSY;
		/* the parent's handles (copies here; the locks stay the parent's) */
		siterec_journal_free(w);
		siterec_journal_free(r);
		_exit(busy ? 0 : 1);
	}
	wait_child(pid, 0);

	/* mismatching disks */
	mkdisks(d, NULL, NULL);
	d[1].size = SIZES[1] * 2;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, IDS[1]));
	d[1].size = SIZES[1];
	d[2].id = "other";
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_ECONFLICT);
	d[2].id = IDS[2];
	o.n_disks = 2;
	th_assert_err(siterec_journal_open(&j, dir, &o), SITEREC_ECONFLICT);
	o.n_disks = ND;

	/* writes */
	uint8_t blk[2 * BLK];
	memset(blk, 1, sizeof(blk));
	th_assert_err(siterec_journal_write(NULL, 0, blk, BLK, 0), SITEREC_EINVAL);
	th_assert_err(siterec_journal_write(r, 0, blk, BLK, 0), SITEREC_ESTATE);
	th_assert_err(siterec_journal_write(w, ND, blk, BLK, 0), SITEREC_EINVAL);
	th_assert_err(siterec_journal_write(w, 0, NULL, BLK, 0), SITEREC_EINVAL);
	th_assert_err(siterec_journal_write(w, 0, blk, 0, 0), SITEREC_EINVAL);
	th_assert_err(siterec_journal_write(w, 0, blk, 100, 0), SITEREC_EALIGN);
	th_assert_err(siterec_journal_write(w, 0, blk, BLK, 7), SITEREC_EALIGN);
	th_assert_err(siterec_journal_write(w, 2, blk, 2 * BLK, SIZES[2] - BLK), SITEREC_ERANGE);
	th_assert_err(siterec_journal_write(w, 2, blk, BLK, SIZES[2]), SITEREC_ERANGE);
	th_assert_err(siterec_journal_write(w, 2, blk, BLK, UINT64_MAX - 511), SITEREC_ERANGE);
	assert_int_equal(siterec_journal_write(w, 2, blk, BLK, SIZES[2] - BLK), 0);
	th_assert_err(siterec_journal_flush(r), SITEREC_ESTATE);
	th_assert_err(siterec_journal_poll(r, NULL), SITEREC_ESTATE);
	assert_int_equal(siterec_journal_flush(w), 0);
	assert_int_equal(siterec_journal_poll(w, NULL), 0);

	/* paths, release */
	char small[8];
	th_assert_err(siterec_journal_log_path(r, 0, 1, small, sizeof(small)), SITEREC_ERANGE);
	th_assert_err(siterec_journal_log_path(r, ND, 1, small, sizeof(small)), SITEREC_EINVAL);
	char *p1 = log_path(r, 0, 1);
	char *want = th_path(dir, "d0/00000000000000000001.dlog");
	assert_string_equal(p1, want);
	free(want);
	uint64_t s = 0;
	for (int k = 0; k < 3; k++)
		assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
	assert_int_equal(s, 3);
	th_assert_err(siterec_journal_release(r, 4), SITEREC_EINVAL);
	th_assert_err(siterec_journal_release(r, 5), SITEREC_EINVAL);
	assert_int_equal(siterec_journal_release(r, 2), 0);
	uint64_t a = 0, old = 0;
	assert_int_equal(siterec_journal_seqs(r, &a, &old), 0);
	assert_int_equal(a, 4);
	assert_int_equal(old, 3);
	for (uint32_t i = 0; i < ND; i++)
		for (uint64_t q = 1; q <= 4; q++) {
			char *p = log_path(r, i, q);
			assert_int_equal(access(p, F_OK) == 0, q >= 3);
			free(p);
		}
	free(p1);

	siterec_journal_free(w);
	siterec_journal_free(r);

	/* the control file (doc/formats.md): a damaged older slot is survived, two
	 * damaged slots are not */
	char *ctl = th_path(dir, "control");
	size_t clen = 0;
	uint8_t *cb = th_read_file(ctl, &clen);
	assert_int_equal(clen, 16384);
	uint64_t g0, g1;
	memcpy(&g0, cb + 16, 8);
	memcpy(&g1, cb + 8192 + 16, 8);
	free(cb);
	uint64_t older = g0 < g1 ? 0 : 8192;
	th_flip_bit(ctl, older + 40, 3);
	r = jopen_ok(dir, 0, NULL, NULL);
	assert_int_equal(active_seq(r), 4);
	siterec_journal_free(r);
	th_flip_bit(ctl, (8192 - older) + 40, 3);
	th_assert_err(jopen(&j, dir, 0, NULL, NULL), SITEREC_ECORRUPT);
	th_assert_err(jopen(&j, dir, SITEREC_JOURNAL_WRITER, NULL, NULL), SITEREC_ECORRUPT);
	th_truncate(ctl, 100);
	th_assert_err(jopen(&j, dir, 0, NULL, NULL), SITEREC_ECORRUPT);
	free(ctl);
	free(dir);
	th_tmpdir_remove(base);
}

static int failing_write(const void *buf, size_t len, uint64_t off, void *p)
{
	(void)buf; (void)len; (void)off;
	return *(int *)p;
}

static void test_callback_error(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	int code[ND] = { 0, 77, 0 };
	void *pl[ND] = { &code[0], &code[1], &code[2] };
	siterec_journal *w = jopen_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE,
	                              failing_write, pl);
	uint8_t blk[BLK] = { 0 };
	assert_int_equal(siterec_journal_write(w, 0, blk, BLK, 0), 0);
	th_assert_err(siterec_journal_write(w, 1, blk, BLK, 0), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 77);
	siterec_journal_free(w);
	free(dir);
	th_tmpdir_remove(base);
}

/* ---- 6: crashes at random instants, in rotations too ---- */

/* Child: request rotations in a loop (rotating itself once no writer runs). */
static void child_requester(const char *dir)
{
	siterec_journal *r = NULL;
	if (jopen(&r, dir, 0, NULL, NULL) != 0)
		_exit(30);
	for (;;) {
		uint64_t s;
		int rc = siterec_journal_request_rotate(r, WAIT_MS, &s);
		if (rc != 0 && rc != SITEREC_ETIMEOUT) {
			fprintf(stderr, "child request: %s\n", siterec_error_last()->message);
			_exit(31);
		}
	}
}

/* Counts the library's notes on recovery (information only: where the kills
 * land is random). */
static int g_completed, g_torn;
static int count_log(int level, const char *msg, void *payload)
{
	(void)level; (void)payload;
	g_completed += strstr(msg, "completing the rotation") != NULL;
	g_torn += strstr(msg, "torn tail") != NULL;
	return 0;
}

static void test_crash_in_rotation(void **state)
{
	(void)state;
	assert_int_equal(siterec_set_log(count_log, SITEREC_LOG_INFO, NULL), 0);
	char *jdir;
	int rep[ND];
	char *base = setup_area(&jdir, rep);
	uint64_t rng = 2024, applied = 0;
	const char *env = getenv("SITEREC_TEST_CRASH_ROUNDS");
	const int rounds = env && atoi(env) > 0 ? atoi(env) : 24;
	for (int round = 0; round < rounds; round++) {
		pid_t wp = spawn_writer(jdir, base, 0);
		pid_t rp = fork();
		assert_true(rp >= 0);
		if (rp == 0)
			child_requester(jdir);
		usleep((useconds_t)(2000 + th_rand(&rng) % 30000));
		/* kill the writer, the requester, or both in either order */
		int mode = (int)(th_rand(&rng) % 3);
		pid_t first = mode == 1 ? rp : wp, second = mode == 1 ? wp : rp;
		assert_int_equal(kill(first, SIGKILL), 0);
		if (mode == 2) /* the requester goes on alone a while, rotating itself */
			usleep((useconds_t)(th_rand(&rng) % 20000));
		assert_int_equal(kill(second, SIGKILL), 0);
		wait_child(wp, -1);
		wait_child(rp, -1);

		/* reopen as the writer: a consistent state, whatever the instant */
		siterec_journal *w = jopen_ok(jdir, SITEREC_JOURNAL_WRITER, NULL, NULL);
		uint64_t active = 0, oldest = 0;
		assert_int_equal(siterec_journal_seqs(w, &active, &oldest), 0);
		assert_true(oldest == applied + 1 || (applied == 0 && oldest == 1));
		for (uint32_t i = 0; i < ND; i++) {
			uint64_t next = 0;
			for (uint64_t s = oldest; s <= active + 1; s++) {
				char *p = log_path(w, i, s);
				if (s == active + 1) {
					assert_int_not_equal(access(p, F_OK), 0); /* nothing past the active */
					free(p);
					break;
				}
				siterec_dlog_info info;
				memset(&info, 0, sizeof(info));
				info.version = SITEREC_DLOG_INFO_VERSION;
				int rc = siterec_dlog_verify(p, NULL, &info);
				if (rc)
					fprintf(stderr, "round %d verify %s: %s\n", round, p,
					        siterec_error_last()->message);
				assert_int_equal(rc, 0);
				assert_int_equal(info.sealed, s < active);
				if (next)
					assert_int_equal(info.first_seq, next);
				next = info.last_seq + 1;
				free(p);
			}
		}
		/* every new cut replays consistently */
		for (uint64_t s = applied + 1; s < active; s++) {
			replay_fd(w, s, rep, SITEREC_DLOG_APPLY_REQUIRE_SEALED);
			check_cut(rep);
		}
		if (active > 1) {
			assert_int_equal(siterec_journal_release(w, active - 1), 0);
			applied = active - 1;
		}
		siterec_journal_free(w);
	}
	assert_true(applied > 0);
	printf("crash rounds: %d, rotations %llu, completed on reopen %d, torn tails %d\n", rounds,
	       (unsigned long long)applied, g_completed, g_torn);
	assert_int_equal(siterec_set_log(NULL, 0, NULL), 0);
	teardown_area(base, jdir, rep);
}

/* ---- 7: adding disks (SITEREC_JOURNAL_ADD_DISKS) ---- */

/* The standard three disks, then the ones a VM may get attached later. */
#define NX (ND + 2)
static const char *const XIDS[NX] = { "d0", "disk-1", "Disk_2.vhd", "added-3", "added_4" };
static const uint64_t XSIZES[NX] = { 256 * 1024, 512 * 1024, 128 * 1024, 64 * 1024, 192 * 1024 };

/* Open dir with the disks ids[0..n) (sizes from XSIZES); returns the code. */
static int jopen_ids(siterec_journal **j, const char *dir, uint32_t flags, const char *const *ids,
                     uint32_t n, siterec_write_fn fn, void **payloads)
{
	siterec_journal_disk d[NX];
	for (uint32_t i = 0; i < n; i++) {
		memset(&d[i], 0, sizeof(d[i]));
		d[i].id = ids[i];
		d[i].size = XSIZES[i];
		d[i].write = fn;
		d[i].write_payload = payloads ? payloads[i] : NULL;
	}
	siterec_journal_options o;
	if (siterec_journal_options_init(&o, SITEREC_JOURNAL_OPTIONS_VERSION) != 0)
		return -1000;
	o.flags = flags;
	o.n_disks = n;
	o.disks = d;
	return siterec_journal_open(j, dir, &o);
}

static int jopen_n(siterec_journal **j, const char *dir, uint32_t flags, uint32_t n)
{
	return jopen_ids(j, dir, flags, XIDS, n, NULL, NULL);
}

static siterec_journal *jopen_n_ok(const char *dir, uint32_t flags, uint32_t n,
                                   siterec_write_fn fn, void **payloads)
{
	siterec_journal *j = NULL;
	int rc = jopen_ids(&j, dir, flags, XIDS, n, fn, payloads);
	if (rc)
		fprintf(stderr, "journal open (%u disks): %s\n", n, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_non_null(j);
	return j;
}

/* Verify log seq of disk i (whole, of the right size); returns the code, info filled. */
static int log_info(siterec_journal *j, uint32_t i, uint64_t seq, siterec_dlog_info *info)
{
	char *p = log_path(j, i, seq);
	memset(info, 0, sizeof(*info));
	info->version = SITEREC_DLOG_INFO_VERSION;
	int rc = siterec_dlog_verify(p, NULL, info);
	if (rc == 0)
		assert_int_equal(info->disk_size, XSIZES[i]);
	free(p);
	return rc;
}

static int log_exists(siterec_journal *j, uint32_t i, uint64_t seq)
{
	char *p = log_path(j, i, seq);
	int r = access(p, F_OK) == 0;
	free(p);
	return r;
}

/* Log seq of every disk 0..n-1 is sealed with want[i] records (want NULL: any). */
static void check_sealed_n(siterec_journal *j, uint32_t n, uint64_t seq, const uint64_t *want)
{
	for (uint32_t i = 0; i < n; i++) {
		siterec_dlog_info info;
		int rc = log_info(j, i, seq, &info);
		if (rc)
			fprintf(stderr, "verify disk %u seq %llu: %s\n", i, (unsigned long long)seq,
			        siterec_error_last()->message);
		assert_int_equal(rc, 0);
		assert_int_equal(info.sealed, 1);
		if (want)
			assert_int_equal(info.records, want[i]);
	}
}

/* Disk i's active log seq is there, unsealed and empty (a freshly added disk). */
static void check_fresh(siterec_journal *j, uint32_t i, uint64_t seq)
{
	siterec_dlog_info info;
	assert_int_equal(log_info(j, i, seq, &info), 0);
	assert_int_equal(info.sealed, 0);
	assert_int_equal(info.records, 0);
}

/* k random writes (one record each: never all zero, at most 16 sectors) to the
 * disks 0..n-1 in turn; counted per disk in nrec. */
static void add_writes(siterec_journal *w, uint32_t n, int k, uint64_t *rng, uint64_t *nrec)
{
	uint8_t buf[16 * BLK];
	for (int x = 0; x < k; x++) {
		uint32_t d = (uint32_t)x % n;
		size_t len = (size_t)(1 + th_rand(rng) % 16) * BLK;
		uint64_t off = (th_rand(rng) % ((XSIZES[d] - len) / BLK + 1)) * BLK;
		th_fill(buf, len, th_rand(rng));
		buf[0] |= 1;
		assert_int_equal(siterec_journal_write(w, d, buf, len, off), 0);
		nrec[d]++;
	}
}

/* Rotate from requester r while the writer w only polls (a thread). */
static uint64_t rotate_polled(siterec_journal *r, siterec_journal *w)
{
	struct poller p;
	memset(&p, 0, sizeof(p));
	p.w = w;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, poll_loop, &p), 0);
	uint64_t sealed = 0;
	int rc = siterec_journal_request_rotate(r, WAIT_MS, &sealed);
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.rotations, 1);
	return sealed;
}

static void test_add_disk_writer(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	uint8_t *model[NX];
	void *pl[NX];
	for (int i = 0; i < NX; i++)
		pl[i] = model[i] = calloc(1, XSIZES[i]);
	uint64_t rng = 77, nrec[5][NX], s = 0, a = 0;
	memset(nrec, 0, sizeof(nrec));
	siterec_journal *x = NULL;

	/* history before the add: sequence 1 sealed, records in 2 */
	siterec_journal *w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE, ND,
	                                mem_write, pl);
	siterec_journal *old_r = jopen_n_ok(dir, 0, ND, NULL, NULL);
	add_writes(w, ND, 30, &rng, nrec[1]);
	assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
	assert_int_equal(s, 1);
	add_writes(w, ND, 12, &rng, nrec[2]);
	/* while it is the writer, nobody else adds */
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND + 1), SITEREC_EBUSY);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_ADD_DISKS, ND + 1),
	              SITEREC_EBUSY);
	assert_null(x);
	/* the VM's write path reopens its journal with the attached disk */
	siterec_journal_free(w);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_WRITER, ND + 1), SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, XIDS[ND]));
	w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_ADD_DISKS, ND + 1, mem_write, pl);
	assert_int_equal(active_seq(w), 2);
	check_fresh(w, ND, 2);
	assert_false(log_exists(w, ND, 1));

	/* handles and lists without the new disk are refused from now on */
	th_assert_err(siterec_journal_request_rotate(old_r, WAIT_MS, &s), SITEREC_ECONFLICT);
	th_assert_err(siterec_journal_seqs(old_r, &a, NULL), SITEREC_ECONFLICT);
	th_assert_err(siterec_journal_release(old_r, 1), SITEREC_ECONFLICT);
	siterec_journal_free(old_r);
	th_assert_err(jopen_n(&x, dir, 0, ND), SITEREC_ECONFLICT);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND), SITEREC_ECONFLICT);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND - 1), SITEREC_ECONFLICT);
	assert_null(x);
	/* the same list with the flag: no change (even with a writer there) */
	x = jopen_n_ok(dir, SITEREC_JOURNAL_ADD_DISKS, ND + 1, NULL, NULL);
	siterec_journal_free(x);
	siterec_journal *r = jopen_n_ok(dir, 0, ND + 1, NULL, NULL);

	/* writes to the new disk and the old ones; rotations by the requester */
	add_writes(w, ND + 1, 40, &rng, nrec[2]);
	assert_int_equal(rotate_polled(r, w), 2);
	th_assert_err(siterec_journal_write(w, ND + 1, model[0], BLK, 0), SITEREC_EINVAL);
	add_writes(w, ND + 1, 25, &rng, nrec[3]);
	assert_int_equal(rotate_polled(r, w), 3);
	assert_int_equal(active_seq(r), 4);

	/* the cuts: sealed logs of every disk with the records written before them */
	check_sealed_n(r, ND, 1, nrec[1]);
	check_sealed_n(r, ND + 1, 2, nrec[2]);
	check_sealed_n(r, ND + 1, 3, nrec[3]);
	for (uint32_t i = 0; i <= ND; i++)
		check_fresh(r, i, 4);
	/* replayed in order they give every disk's content, the new one's too */
	for (uint32_t i = 0; i <= ND; i++) {
		char name[16];
		snprintf(name, sizeof(name), "rep%u", i);
		char *rp = th_path(base, name);
		int fd = th_make_file(rp, XSIZES[i]);
		for (uint64_t q = i < ND ? 1 : 2; q <= 3; q++) {
			char *lp = log_path(r, i, q);
			int rc = siterec_dlog_apply_fd(lp, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED, fd, NULL);
			if (rc)
				fprintf(stderr, "apply %s: %s\n", lp, siterec_error_last()->message);
			assert_int_equal(rc, 0);
			free(lp);
		}
		uint8_t *got = malloc(XSIZES[i]);
		assert_int_equal(pread(fd, got, XSIZES[i], 0), (ssize_t)XSIZES[i]);
		assert_memory_equal(got, model[i], XSIZES[i]);
		free(got);
		close(fd);
		free(rp);
	}
	/* release covers the new disk's logs too */
	assert_int_equal(siterec_journal_release(r, 3), 0);
	uint64_t old = 0;
	assert_int_equal(siterec_journal_seqs(r, &a, &old), 0);
	assert_int_equal(a, 4);
	assert_int_equal(old, 4);
	siterec_journal_free(r);
	siterec_journal_free(w);
	for (int i = 0; i < NX; i++)
		free(model[i]);
	free(dir);
	th_tmpdir_remove(base);
}

/* The journal still has its three disks and no trace of the fourth. */
static void check_unchanged(const char *dir)
{
	siterec_journal *x = NULL;
	th_assert_err(jopen_n(&x, dir, 0, ND + 1), SITEREC_ECONFLICT);
	x = jopen_n_ok(dir, 0, ND, NULL, NULL);
	assert_int_equal(active_seq(x), 1);
	assert_false(log_exists(x, 0, 2));
	siterec_journal_free(x);
	char *p = th_path(dir, XIDS[ND]);
	assert_int_not_equal(access(p, F_OK), 0);
	free(p);
}

/* A child's end, once it reported through its pipe: it waits for the parent's
 * SIGKILL (valgrind leak-checks a process that exits, or even one that raises
 * SIGKILL itself), blocked on down, whose write end only the parent holds; if
 * the parent is gone (end of file), it raises SIGKILL. Never returns. */
static void child_wait_end(int down)
{
	char c;
	while (read(down, &c, 1) != 0) {
	}
	raise(SIGKILL);
	_exit(99); /* not reached */
}

/* Child: hold the journal as the writer, report through up (0 when open), end.
 * Never returns. */
static void child_hold_writer(const char *dir, int up, int down)
{
	siterec_journal *w = NULL;
	unsigned char code = jopen_n(&w, dir, SITEREC_JOURNAL_WRITER, ND) == 0 ? 0 : 1;
	if (write(up, &code, 1) != 1)
		code = 2;
	child_wait_end(down);
}

static void test_add_disk_requester(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	char *dir = th_path(base, "j");
	siterec_journal *x = NULL, *w, *r;
	uint64_t s = 0;

	/* another handle of this process is the writer */
	w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE, ND, NULL, NULL);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND + 1), SITEREC_EBUSY);
	assert_null(x);
	assert_non_null(strstr(siterec_error_last()->message, "writer"));
	x = jopen_n_ok(dir, SITEREC_JOURNAL_ADD_DISKS, ND, NULL, NULL); /* nothing to add */
	siterec_journal_free(x);
	siterec_journal_free(w);
	check_unchanged(dir);

	/* another process is the writer */
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		child_hold_writer(dir, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	unsigned char code = 9;
	assert_int_equal(read(up[0], &code, 1), 1);
	assert_int_equal(code, 0);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND + 1), SITEREC_EBUSY);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_ADD_DISKS, ND + 1),
	              SITEREC_EBUSY);
	assert_int_equal(kill(pid, SIGKILL), 0);
	wait_child(pid, -1);
	close(up[0]);
	close(down[1]);
	check_unchanged(dir);

	/* a list that differs before its new disks is no extension */
	const char *bad[NX] = { XIDS[0], XIDS[1], "other", XIDS[3], XIDS[4] };
	th_assert_err(jopen_ids(&x, dir, SITEREC_JOURNAL_ADD_DISKS, bad, ND + 1, NULL, NULL),
	              SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, "other"));
	check_unchanged(dir);

	/* no writer: a requester adds (two disks at once) */
	r = jopen_n_ok(dir, SITEREC_JOURNAL_ADD_DISKS, NX, NULL, NULL);
	check_fresh(r, ND, 1);
	check_fresh(r, ND + 1, 1);
	th_assert_err(jopen_n(&x, dir, 0, ND), SITEREC_ECONFLICT);
	th_assert_err(jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS, ND + 1), SITEREC_ECONFLICT);
	/* the requester's own rotation (no writer) seals them all */
	assert_int_equal(siterec_journal_request_rotate(r, WAIT_MS, &s), 0);
	assert_int_equal(s, 1);
	uint64_t zero[NX] = { 0 };
	check_sealed_n(r, NX, 1, zero);
	for (uint32_t i = 0; i < NX; i++)
		check_fresh(r, i, 2);
	/* a writer with the new list logs to all of them */
	w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER, NX, NULL, NULL);
	uint64_t rng = 5, nrec[NX] = { 0 };
	add_writes(w, NX, 3 * NX, &rng, nrec);
	assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
	assert_int_equal(s, 2);
	check_sealed_n(r, NX, 2, nrec);
	siterec_journal_free(w);
	siterec_journal_free(r);

	/* CREATE|ADD_DISKS on a new directory simply creates */
	char *dir2 = th_path(base, "j2");
	x = jopen_n_ok(dir2, SITEREC_JOURNAL_CREATE | SITEREC_JOURNAL_ADD_DISKS, ND + 1, NULL, NULL);
	siterec_journal_free(x);
	x = jopen_n_ok(dir2, 0, ND + 1, NULL, NULL);
	for (uint32_t i = 0; i <= ND; i++)
		check_fresh(x, i, 1);
	siterec_journal_free(x);
	th_assert_err(jopen_n(&x, dir2, 0, ND), SITEREC_ECONFLICT);
	free(dir2);
	free(dir);
	th_tmpdir_remove(base);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Child: report through up (a byte), open dir with the fourth disk and
 * ADD_DISKS (as the writer or not), report the outcome (1 added, 2 failed),
 * end. Never returns. */
static void child_add(const char *dir, int as_writer, int up, int down)
{
	unsigned char b = 0;
	if (write(up, &b, 1) != 1)
		b = 3;
	siterec_journal *x = NULL;
	int rc = jopen_n(&x, dir, SITEREC_JOURNAL_ADD_DISKS |
	                 (as_writer ? SITEREC_JOURNAL_WRITER : 0u), ND + 1);
	if (rc)
		fprintf(stderr, "child add: %s\n", siterec_error_last()->message);
	b = rc == 0 ? 1 : 2;
	if (write(up, &b, 1) != 1)
		b = 3;
	child_wait_end(down);
}

static void test_add_disk_crash(void **state)
{
	(void)state;
	char *base = th_tmpdir();
	const char *env = getenv("SITEREC_TEST_CRASH_ROUNDS");
	const int rounds = env && atoi(env) > 0 ? atoi(env) : 20;
	uint64_t rng = 31337, span_us = 0;
	int n_old = 0, n_new = 0, mid = 0, leftover = 0;
	/* round -1 is not killed: it measures how long an add takes here */
	for (int round = -1; round < rounds; round++) {
		char name[32];
		snprintf(name, sizeof(name), "j%d", round + 1);
		char *dir = th_path(base, name);
		uint64_t nrec[NX] = { 0 }, s = 0;
		/* some history: sequence 1 sealed, records in 2 */
		siterec_journal *w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE, ND,
		                                NULL, NULL);
		add_writes(w, ND, 6, &rng, nrec);
		assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
		memset(nrec, 0, sizeof(nrec));
		add_writes(w, ND, 6, &rng, nrec);
		siterec_journal_free(w);

		int up[2], down[2];
		assert_int_equal(pipe(up), 0);
		assert_int_equal(pipe(down), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(up[0]);
			close(down[1]);
			child_add(dir, round & 1, up[1], down[0]);
		}
		close(up[1]);
		close(down[0]);
		unsigned char b = 9;
		assert_int_equal(read(up[0], &b, 1), 1);
		uint64_t t0 = now_us();
		if (round >= 0) {
			usleep((useconds_t)(th_rand(&rng) % (span_us + 1)));
			assert_int_equal(kill(pid, SIGKILL), 0);
		}
		ssize_t got = read(up[0], &b, 1);
		if (round < 0) {
			assert_int_equal(got, 1);
			assert_int_equal(b, 1);
			/* kills spread over the add and a little past it */
			span_us = (now_us() - t0) * 3 / 2 + 50;
		} else {
			assert_true(got == 0 || (got == 1 && b == 1));
			mid += got == 0;
		}
		if (round < 0)
			assert_int_equal(kill(pid, SIGKILL), 0);
		wait_child(pid, -1);
		close(up[0]);
		close(down[1]);

		/* exactly one of the two lists opens: the old one or the new one */
		siterec_journal *xo = NULL, *xn = NULL;
		int rc_old = jopen_n(&xo, dir, 0, ND);
		int rc_new = jopen_n(&xn, dir, 0, ND + 1);
		siterec_journal_free(xo);
		siterec_journal_free(xn);
		assert_true(rc_old == 0 || rc_old == SITEREC_ECONFLICT);
		assert_true(rc_new == 0 || rc_new == SITEREC_ECONFLICT);
		assert_true((rc_old == 0) != (rc_new == 0));
		uint32_t n = rc_new == 0 ? ND + 1 : ND;
		n_new += rc_new == 0;
		n_old += rc_old == 0;

		/* a listed disk always has its active log; writes and a rotation work */
		w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER, n, NULL, NULL);
		assert_int_equal(active_seq(w), 2);
		if (n > ND)
			check_fresh(w, ND, 2);
		add_writes(w, n, 2 * (int)n, &rng, nrec);
		assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
		assert_int_equal(s, 2);
		check_sealed_n(w, n, 2, nrec);
		siterec_journal_free(w);
		if (n == ND) {
			/* the add goes through later, a leftover of the one cut short cleared */
			char *lp = th_path(dir, "added-3/00000000000000000002.dlog");
			leftover += access(lp, F_OK) == 0;
			free(lp);
			w = jopen_n_ok(dir, SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_ADD_DISKS, ND + 1, NULL,
			               NULL);
			check_fresh(w, ND, 3);
			assert_false(log_exists(w, ND, 2));
			memset(nrec, 0, sizeof(nrec));
			add_writes(w, ND + 1, 2 * (ND + 1), &rng, nrec);
			assert_int_equal(siterec_journal_request_rotate(w, 0, &s), 0);
			assert_int_equal(s, 3);
			check_sealed_n(w, ND + 1, 3, nrec);
			siterec_journal_free(w);
		}
		free(dir);
	}
	printf("add crash rounds: %d (add ~%llu us), old list %d (a log left in the new disk's "
	       "folder %d), new list %d, killed mid-add %d\n", rounds,
	       (unsigned long long)(span_us * 2 / 3), n_old, leftover, n_new, mid);
	th_tmpdir_remove(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotate_replay),
		cmocka_unit_test(test_two_processes),
		cmocka_unit_test(test_idle_writer),
		cmocka_unit_test(test_no_writer),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_crash_in_rotation),
		cmocka_unit_test(test_add_disk_writer),
		cmocka_unit_test(test_add_disk_requester),
		cmocka_unit_test(test_add_disk_crash),
	};
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
