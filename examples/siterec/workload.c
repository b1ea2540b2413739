/* siterec workload: a simulated VM writing random blocks into raw disk images
 * through the journaled write path (journal.h), as the writer of the journal at
 * DIR. Writes are random data at random 4 KiB-aligned offsets of a random disk,
 * paced by a token bucket to --rate, and siterec_journal_poll() is called about
 * every 100 ms so that rotations requested by another process (a replicator) are
 * served while idle. Runs until --seconds or --writes is reached, or SIGINT /
 * SIGTERM; then flushes the journal and exits 0 with a summary line on stdout. */
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

#include "cli.h"

#define MAX_DISKS 64
#define ALIGN 4096u
#define POLL_S 0.1

typedef struct wl_disk {
	char *id, *path;
	uint64_t size;
	int fd;
	siterec_disk *img;   /* writes go through the disk layer: raw or fixed VHD */
} wl_disk;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int workload_usage(void)
{
	fprintf(stderr,
	        "usage: siterec workload DIR --disk ID:PATH:SIZE_MiB [--disk ...] [--rate MBPS]\n"
	        "                        [--seconds N | --writes N] [--block KiB] [--seed S] [--create]\n"
	        "DIR: the journal (created with --create); PATH: a raw image (created or extended\n"
	        "to SIZE_MiB with --create) or a fixed VHD of at least SIZE_MiB; --rate: MB/s\n"
	        "(10^6 bytes; default: unpaced);\n"
	        "--block: KiB per write, a multiple of 4 (default 4); without --seconds or\n"
	        "--writes it runs until SIGINT or SIGTERM\n");
	return 2;
}

/* ID:PATH:SIZE_MiB; PATH may contain ':' (ID cannot, SIZE cannot). */
static int parse_disk(char *arg, wl_disk *d)
{
	char *c1 = strchr(arg, ':'), *c2 = strrchr(arg, ':');
	uint64_t mib;
	if (!c1 || c2 == c1 || c1 == arg || c2 == c1 + 1 || cli_parse_u64(c2 + 1, &mib) || !mib ||
	    mib > (1ull << 24)) {
		fprintf(stderr, "siterec: --disk '%s' is not ID:PATH:SIZE_MiB\n", arg);
		return -1;
	}
	*c1 = *c2 = 0;
	d->id = arg;
	d->path = c1 + 1;
	d->size = mib << 20;
	d->fd = -1;
	return 0;
}

static int disk_write(const void *buf, size_t length, uint64_t offset, void *payload)
{
	wl_disk *d = payload;
	if (siterec_disk_write(d->img, buf, length, offset)) {
		fprintf(stderr, "siterec: %s: write: %s\n", d->path, siterec_error_last()->message);
		return 1;
	}
	return 0;
}

/* The image through the disk layer, for writing; its virtual size must hold the disk. */
static int open_disk(wl_disk *d)
{
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.flags = SITEREC_DISK_OPEN_WRITE;
	siterec_disk_info info = { .version = SITEREC_DISK_INFO_VERSION };
	if (siterec_disk_open(&d->img, d->path, &o) || siterec_disk_info_get(d->img, &info)) {
		cli_fail(d->path);
		return -1;
	}
	if (info.virtual_size < d->size) {
		fprintf(stderr, "siterec: %s: %" PRIu64 " bytes, smaller than the disk (%" PRIu64 ")\n", d->path,
		        info.virtual_size, d->size);
		return -1;
	}
	return 0;
}

/* Open (with create: create or extend) an image of at least d->size bytes. */
static int open_image(wl_disk *d, int create)
{
	struct stat sb;
	d->fd = open(d->path, O_RDWR | (create ? O_CREAT : 0), 0644);
	if (d->fd < 0 || fstat(d->fd, &sb) != 0) {
		fprintf(stderr, "siterec: %s: %s\n", d->path, strerror(errno));
		return -1;
	}
	if ((uint64_t)sb.st_size >= d->size)
		return open_disk(d);
	if (!create) {
		fprintf(stderr, "siterec: %s: %lld bytes, smaller than the disk (%" PRIu64
		        "); --create extends it\n", d->path, (long long)sb.st_size, d->size);
		return -1;
	}
	if (ftruncate(d->fd, (off_t)d->size) != 0) {
		fprintf(stderr, "siterec: %s: %s\n", d->path, strerror(errno));
		return -1;
	}
	return open_disk(d);
}

/* splitmix64 */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap */
}

typedef struct wl_opts {
	const char *dir;
	wl_disk disks[MAX_DISKS];
	uint32_t n_disks;
	double rate;        /* bytes/s, 0: unpaced */
	double seconds;     /* 0: no limit */
	uint64_t writes;    /* 0: no limit */
	uint64_t block;     /* bytes */
	uint64_t seed;
	int create;
} wl_opts;

static int parse_args(int argc, char **argv, wl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->block = ALIGN;
	o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	int have_seconds = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		char *end;
		if (!strcmp(a, "--create")) {
			o->create = 1;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (o->dir)
				return workload_usage();
			o->dir = a;
			continue;
		}
		if (!v)
			return workload_usage();
		i++;
		if (!strcmp(a, "--disk")) {
			if (o->n_disks == MAX_DISKS || parse_disk(argv[i], &o->disks[o->n_disks]))
				return workload_usage();
			o->n_disks++;
		} else if (!strcmp(a, "--rate")) {
			o->rate = strtod(v, &end) * 1e6;
			if (*end || end == v || !(o->rate > 0) || o->rate > 1e12)
				return workload_usage();
		} else if (!strcmp(a, "--seconds")) {
			o->seconds = strtod(v, &end);
			if (*end || end == v || !(o->seconds > 0) || o->seconds > 1e9)
				return workload_usage();
			have_seconds = 1;
		} else if (!strcmp(a, "--writes")) {
			if (cli_parse_u64(v, &o->writes) || !o->writes)
				return workload_usage();
		} else if (!strcmp(a, "--block")) {
			if (cli_parse_u64(v, &n) || !n || n % 4 || n > 64 * 1024)
				return workload_usage();
			o->block = n << 10;
		} else if (!strcmp(a, "--seed")) {
			if (cli_parse_u64(v, &o->seed))
				return workload_usage();
		} else {
			return workload_usage();
		}
	}
	if (!o->dir || !o->n_disks || (have_seconds && o->writes))
		return workload_usage();
	for (uint32_t k = 0; k < o->n_disks; k++)
		if (o->disks[k].size < o->block) {
			fprintf(stderr, "siterec: disk %s is smaller than the block\n", o->disks[k].id);
			return workload_usage();
		}
	return 0;
}

typedef struct wl_stats {
	uint64_t writes, bytes;
	double elapsed;
} wl_stats;

/* The write loop: paced writes and idle polls until a limit or a signal. */
static int run(siterec_journal *j, const wl_opts *o, uint8_t *buf, wl_stats *st)
{
	uint64_t rng = o->seed;
	double t0 = cli_now(), last_poll = t0, last_fill = t0, last_print = t0;
	double burst = o->rate * POLL_S > (double)o->block ? o->rate * POLL_S : (double)o->block;
	double tokens = (double)o->block;
	while (!stop) {
		double now = cli_now();
		if ((o->seconds && now - t0 >= o->seconds) || (o->writes && st->writes >= o->writes))
			break;
		if (now - last_poll >= POLL_S) {
			if (siterec_journal_poll(j, NULL))
				return cli_fail("journal poll");
			last_poll = now;
		}
		if (now - last_print >= 1.0) {
			fprintf(stderr, "\r%" PRIu64 " writes  %.2f MB/s ", st->writes,
			        (double)st->bytes / 1e6 / (now - t0));
			last_print = now;
		}
		if (o->rate > 0) {
			tokens += (now - last_fill) * o->rate;
			last_fill = now;
			if (tokens > burst)
				tokens = burst;
			if (tokens < (double)o->block) {
				double wait = ((double)o->block - tokens) / o->rate;
				double until_poll = last_poll + POLL_S - now;
				if (wait > until_poll)
					wait = until_poll;
				if (o->seconds && wait > t0 + o->seconds - now)
					wait = t0 + o->seconds - now;
				sleep_s(wait > 0.001 ? wait : 0.001);
				continue;
			}
			tokens -= (double)o->block;
		}
		uint32_t k = (uint32_t)(next_rand(&rng) % o->n_disks);
		uint64_t slots = (o->disks[k].size - o->block) / ALIGN + 1;
		uint64_t off = next_rand(&rng) % slots * ALIGN;
		for (uint64_t i = 0; i < o->block; i += 8) {
			uint64_t r = next_rand(&rng);
			memcpy(buf + i, &r, 8);
		}
		if (siterec_journal_write(j, k, buf, o->block, off))
			return cli_fail("journal write");
		st->writes++;
		st->bytes += o->block;
	}
	st->elapsed = cli_now() - t0;
	return 0;
}

int cmd_workload(int argc, char **argv)
{
	wl_opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	siterec_journal_disk jd[MAX_DISKS];
	for (uint32_t k = 0; k < o.n_disks; k++)
		jd[k] = (siterec_journal_disk){ .id = o.disks[k].id, .size = o.disks[k].size,
		                                .write = disk_write, .write_payload = &o.disks[k] };
	siterec_journal_options jo;
	siterec_journal_options_init(&jo, SITEREC_JOURNAL_OPTIONS_VERSION);
	jo.flags = SITEREC_JOURNAL_WRITER | (o.create ? SITEREC_JOURNAL_CREATE : 0);
	jo.n_disks = o.n_disks;
	jo.disks = jd;
	siterec_journal *j = NULL;
	uint8_t *buf = NULL;
	if (siterec_journal_open(&j, o.dir, &jo)) {
		if (siterec_error_last()->code == SITEREC_EBUSY)
			fprintf(stderr, "siterec: %s: another process is the journal's writer\n", o.dir);
		else if (siterec_error_last()->code == SITEREC_ENOTFOUND && !o.create)
			fprintf(stderr, "siterec: %s: no journal there (--create makes one)\n", o.dir);
		return cli_fail(o.dir);
	}
	for (uint32_t k = 0; k < o.n_disks; k++)
		if (open_image(&o.disks[k], o.create)) {
			rc = 2;
			goto out;
		}
	buf = malloc(o.block);
	if (!buf) {
		rc = 2;
		goto out;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a signal cuts a nap short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "workload: writing %s (%u disks), seed %" PRIu64 "\n", o.dir, o.n_disks, o.seed);
	uint64_t seq0 = 0, seq1 = 0;
	wl_stats st = { 0 };
	if (siterec_journal_seqs(j, &seq0, NULL) || (rc = run(j, &o, buf, &st)) ||
	    siterec_journal_flush(j) || siterec_journal_seqs(j, &seq1, NULL)) {
		if (!rc)
			rc = cli_fail(o.dir);
		goto out;
	}
	for (uint32_t k = 0; k < o.n_disks; k++)
		if (siterec_disk_flush(o.disks[k].img)) {
			rc = cli_fail(o.disks[k].path);
			goto out;
		}
	fprintf(stderr, "\n");
	printf("workload: %" PRIu64 " writes, %" PRIu64 " bytes in %.1f s, %.2f MB/s, %" PRIu64
	       " rotations served (seed %" PRIu64 ")\n",
	       st.writes, st.bytes, st.elapsed, st.elapsed > 0 ? (double)st.bytes / 1e6 / st.elapsed : 0.0,
	       seq1 - seq0, o.seed);
out:
	siterec_journal_free(j);
	for (uint32_t k = 0; k < o.n_disks; k++)
		if (o.disks[k].fd >= 0)
			close(o.disks[k].fd);
	for (uint32_t k = 0; k < o.n_disks; k++)
		siterec_disk_free(o.disks[k].img);
	free(buf);
	return rc;
}
