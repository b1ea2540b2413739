/* Failback of one disk, minimize downtime against full download on the same
 * pair (failover.h), through the public API on a file:// target:
 *   protect a VM with one SIZE_MIB disk of data, fail it over (unplanned, committed),
 *   change PERCENT % of its 4 KiB blocks on the failed-over side through the
 *   failed-over VM's journal, then
 *   1. failback minimize downtime: checksums while the VM runs, the journal's last
 *      writes in the downtime phase;
 *   2. (cancelled, then) failback full download of the same pair.
 * Prints each one's downtime phase (shutdown callback to the on-premises VM
 * started) and bytes written to the on-premises disk, the ratio of the bytes
 * to the differing bytes, and the downtime ratio. Never asserts a time; exits
 * non-zero when a step fails or the on-premises disk does not end equal.
 *
 * Usage: bench_failback [SIZE_MIB [PERCENT [DIR]]]   (default 2048, 1, $TMPDIR) */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <siterec/siterec.h>

#define BLOCK 4096u

static void die(const char *what)
{
	fprintf(stderr, "bench_failback: %s: %s\n", what, siterec_error_last()->message);
	exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int on_start(const siterec_failover_vm *vm, void *p) { (void)vm; (void)p; return 0; }
static int on_remove(const siterec_failover_vm *vm, void *p) { (void)vm; (void)p; return 0; }

typedef struct side {
	siterec_journal *jw;   /* the failed-over VM's write path; closed by its shutdown */
	pthread_t poller;      /* serves rotations while the VM is idle, as a VM's I/O loop would */
	int stop;              /* atomic */
} side;

static void *poll_main(void *arg)
{
	side *s = arg;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		siterec_journal_poll(s->jw, NULL);
		usleep(1000);
	}
	return NULL;
}

static int on_shutdown(const char *vm, void *payload)
{
	side *s = payload;
	(void)vm;
	if (!s->jw)
		return 0;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_join(s->poller, NULL);
	siterec_journal_free(s->jw);
	s->jw = NULL;
	return 0;
}

static int disk_write(const void *buf, size_t len, uint64_t off, void *disk)
{
	return siterec_disk_write(disk, buf, len, off);
}

static double secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int files_equal(const char *a, const char *b, uint64_t size)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	static uint8_t x[1 << 20], y[1 << 20];
	int eq = fa >= 0 && fb >= 0;
	for (uint64_t off = 0; eq && off < size; off += sizeof(x))
		eq = pread(fa, x, sizeof(x), (off_t)off) == (ssize_t)sizeof(x) &&
		     pread(fb, y, sizeof(y), (off_t)off) == (ssize_t)sizeof(y) && memcmp(x, y, sizeof(x)) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return eq;
}

int main(int argc, char **argv)
{
	uint64_t size = (argc > 1 ? strtoull(argv[1], NULL, 10) : 2048) << 20;
	double pct = argc > 2 ? atof(argv[2]) : 1.0;
	const char *tmp = argc > 3 ? argv[3] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (size < (1u << 20) || pct <= 0 || pct > 50) {
		fprintf(stderr, "usage: bench_failback [SIZE_MIB [PERCENT [DIR]]]\n");
		return 2;
	}
	char dir[4096], path[4200], url[4300], state[4200], out[4200], jdir[4200], fo_disk[4300];
	snprintf(dir, sizeof(dir), "%s/siterec-fbbench-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/os.raw", dir);
	snprintf(url, sizeof(url), "file://%s/target", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(jdir, sizeof(jdir), "%s/fojournal", dir);
	snprintf(fo_disk, sizeof(fo_disk), "%s/os.vhd", out);
	siterec_init();

	/* the source disk: data everywhere */
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	static uint64_t buf[(1 << 20) / 8];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (uint64_t off = 0; fd >= 0 && off < size; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = rnd(&seed);
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf)) {
			perror("write");
			return 1;
		}
	}
	close(fd);

	/* protect, fail over, commit */
	siterec_store *st;
	siterec_store_options so = SITEREC_STORE_OPTIONS_INIT;
	so.flags = SITEREC_STORE_CREATE;
	if (siterec_store_open(&st, url, &so))
		die("store");
	siterec_vm_disk vd = { .id = "os", .path = path, .role = SITEREC_DISK_ROLE_OS };
	siterec_vm vm = { SITEREC_VM_VERSION, 2, "bench", "bench", 1, 0, &vd };
	siterec_replication_options ro = SITEREC_REPLICATION_OPTIONS_INIT;
	ro.flags = SITEREC_REPLICATION_PROTECT;
	ro.state_dir = state;
	ro.store = st;
	ro.interval_s = 30;
	siterec_replication *r;
	if (siterec_replication_open(&r, &vm, &ro) || siterec_replication_initial(r))
		die("protect");
	siterec_replication_free(r);
	side sd = { NULL };
	siterec_failover_options fo_o = SITEREC_FAILOVER_OPTIONS_INIT;
	fo_o.store = st;
	fo_o.vm_id = "bench";
	fo_o.start = on_start;
	fo_o.remove = on_remove;
	fo_o.shutdown = on_shutdown;
	fo_o.payload = &sd;
	siterec_failover *fo;
	if (siterec_failover_open(&fo, &fo_o))
		die("failover open");
	siterec_failover_request q = SITEREC_FAILOVER_REQUEST_INIT;
	q.type = SITEREC_FAILOVER_UNPLANNED;
	q.point.how = SITEREC_POINT_LATEST;
	q.disk_dir = out;
	if (siterec_failover_run(fo, &q) || siterec_failover_commit(fo))
		die("failover");

	/* the failed-over VM changes pct % of its 4 KiB blocks through its journal */
	siterec_disk *fod;
	siterec_disk_options dw = SITEREC_DISK_OPTIONS_INIT;
	dw.flags = SITEREC_DISK_OPEN_WRITE;
	if (siterec_disk_open(&fod, fo_disk, &dw))
		die("failover disk");
	siterec_journal_disk jd = { .id = "os", .size = size, .write = disk_write, .write_payload = fod };
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER | SITEREC_JOURNAL_CREATE;
	jo.n_disks = 1;
	jo.disks = &jd;
	if (siterec_journal_open(&sd.jw, jdir, &jo))
		die("failed-over journal");
	uint64_t blocks = size / BLOCK, n = (uint64_t)((double)blocks * pct / 100.0), distinct = 0;
	uint8_t *hit = calloc(blocks, 1);
	uint8_t blk[BLOCK];
	for (uint64_t i = 0; i < n; i++) {
		uint64_t b = rnd(&seed) % blocks;
		for (size_t k = 0; k < BLOCK; k += 8) {
			uint64_t v = rnd(&seed);
			memcpy(blk + k, &v, 8);
		}
		if (siterec_journal_write(sd.jw, 0, blk, BLOCK, b * BLOCK))
			die("journal write");
		distinct += !hit[b];
		hit[b] = 1;
	}
	free(hit);
	uint64_t differing = distinct * BLOCK;
	if (pthread_create(&sd.poller, NULL, poll_main, &sd) != 0) {
		fprintf(stderr, "bench_failback: pthread_create failed\n");
		return 1;
	}

	/* 1. minimize downtime */
	siterec_failback_disk fbd = { "os", path };
	siterec_failback_request b = SITEREC_FAILBACK_REQUEST_INIT;
	b.mode = SITEREC_FAILBACK_MINIMIZE_DOWNTIME;
	b.n_disks = 1;
	b.disks = &fbd;
	b.journal_dir = jdir;
	double t0 = secs();
	if (siterec_failback_run(fo, &b))
		die("failback minimize downtime");
	double total_min = secs() - t0;
	siterec_failover_status s1 = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	if (siterec_failover_status_get(fo, SITEREC_FAILOVER_FAILBACK, &s1))
		die("status");
	int ok = files_equal(path, fo_disk, size);

	/* 2. full download of the same pair */
	if (siterec_failback_cancel(fo))
		die("failback cancel");
	b.mode = SITEREC_FAILBACK_FULL;
	b.journal_dir = NULL;
	t0 = secs();
	if (siterec_failback_run(fo, &b))
		die("failback full");
	double total_full = secs() - t0;
	siterec_failover_status s2 = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	if (siterec_failover_status_get(fo, SITEREC_FAILOVER_FAILBACK, &s2))
		die("status");
	ok = ok && files_equal(path, fo_disk, size);

	double dt_min = (double)(s1.vm_started_ms - s1.shutdown_ms) / 1000.0;
	double dt_full = (double)(s2.vm_started_ms - s2.shutdown_ms) / 1000.0;
	uint64_t moved_min = s1.bytes_differing + s1.bytes_delta;
	printf("failback of a %" PRIu64 " MiB disk, %.2f%% of its 4 KiB blocks changed on the failed-over side "
	       "(%" PRIu64 " differing bytes)\n", size >> 20, pct, differing);
	printf("minimize downtime: downtime phase %.3f s, bytes written %" PRIu64 " (checksum phase %" PRIu64
	       ", downtime phase %" PRIu64 "), whole failback %.2f s\n", dt_min, moved_min, s1.bytes_differing,
	       s1.bytes_delta, total_min);
	printf("full download:     downtime phase %.3f s, bytes written %" PRIu64 ", whole failback %.2f s\n",
	       dt_full, s2.bytes_delta, total_full);
	printf("ratio: bytes written / differing bytes = %.3f (goal <= 1.05); downtime minimize / full = %.3f; "
	       "minimize downtime phase %.3f s (goal <= 1 s)\n", (double)moved_min / (double)differing,
	       dt_full > 0 ? dt_min / dt_full : 0.0, dt_min);
	siterec_failover_free(fo);
	siterec_disk_free(fod);
	siterec_store_free(st);
	siterec_shutdown();
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_failback: could not remove %s\n", dir);
	if (!ok) {
		fprintf(stderr, "bench_failback: the on-premises disk does not equal the failed-over disk\n");
		return 1;
	}
	return 0;
}
