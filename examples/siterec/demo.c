/*
 * siterec demo: the local data path of libsiterec from end to end.
 *
 *   source disk --(tracked, journaled writes)--> delta logs --> replica disk
 *
 * 1. initial replication: the tracker marks the whole disk, the frozen epoch is
 *    read into a log and applied to an empty replica;
 * 2. cycle 1, journal mode: every write is marked, written, and appended to the
 *    journal; half way the journal rotates (writes go on into the next log while
 *    the sealed one "ships"); the two logs are coalesced and applied;
 * 3. cycle 2, tracker mode: writes are only marked; at the cut the epoch switches
 *    and the frozen extents are read from the source into a log and applied;
 * 4. the replica is checked against the source with the hash scan and byte by byte.
 * Exit status 0 only if the replica equals the source.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

struct demo {
	char dir[512];
	uint64_t size;
	int writes;
	int encrypt;
	uint8_t key[32];
	siterec_dlog_options lopt;
	int src, rep;
	siterec_tracker *trk;
	uint64_t rng;
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill(struct demo *d, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = next_rand(&d->rng);
		memcpy(buf + i, &v, 8);
	}
}

static void path_of(const struct demo *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->dir, name);
}

static long long file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* A guest write: mark before writing (the tracker's contract), write, journal. */
static int guest_write(struct demo *d, siterec_dlog *journal, uint64_t off, const void *buf,
                       size_t len)
{
	if (siterec_tracker_mark(d->trk, off, len))
		return cli_fail("mark");
	if (pwrite(d->src, buf, len, (off_t)off) != (ssize_t)len) {
		perror("source write");
		return 2;
	}
	if (journal && siterec_dlog_append(journal, off, buf, len, NULL))
		return cli_fail("journal append");
	return 0;
}

/* Random writes of 4..64 KiB at 4 KiB-aligned offsets; a few rewrite the same block. */
static int guest_burst(struct demo *d, siterec_dlog *journal, int n, uint64_t *bytes)
{
	static uint8_t buf[65536];
	for (int i = 0; i < n; i++) {
		size_t len = 4096u * (1 + next_rand(&d->rng) % 16);
		uint64_t off = (next_rand(&d->rng) % ((d->size - len) / 4096)) * 4096;
		if (i % 10 == 9)
			off = 0; /* hot block: many writes, shipped once after coalescing */
		if (i % 7 == 3)
			memset(buf, 0, len); /* the guest zeroes a range (trim-like) */
		else
			fill(d, buf, len);
		int rc = guest_write(d, journal, off, buf, len);
		if (rc)
			return rc;
		*bytes += len;
	}
	return 0;
}

static int apply(struct demo *d, const char *log)
{
	uint64_t seq = 0;
	if (siterec_dlog_apply_fd(log, &d->lopt, SITEREC_DLOG_APPLY_REQUIRE_SEALED, d->rep, &seq))
		return cli_fail("apply");
	return 0;
}

/* Frozen epoch of the tracker -> a sealed log -> applied to the replica -> commit. */
static int ship_frozen(struct demo *d, const char *name, uint64_t *log_bytes)
{
	char p[600];
	path_of(d, name, p, sizeof(p));
	siterec_dlog *log;
	if (siterec_dlog_create(&log, p, &d->lopt))
		return cli_fail("create log");
	int rc = siterec_dlog_append_frozen_fd(log, d->trk, d->src);
	if (rc == 0)
		rc = siterec_dlog_seal(log);
	siterec_dlog_free(log);
	if (rc)
		return cli_fail("log from tracker");
	if ((rc = apply(d, p)))
		return rc;
	if (siterec_tracker_commit(d->trk))
		return cli_fail("commit");
	*log_bytes = (uint64_t)file_size(p);
	return 0;
}

static int count_extent(uint64_t off, uint64_t len, void *payload)
{
	(void)off;
	((uint64_t *)payload)[0]++;
	((uint64_t *)payload)[1] += len;
	return 0;
}

static int verify(struct demo *d)
{
	/* checksums on both sides, as the resync and failback paths do */
	siterec_hashmap *m;
	if (siterec_hashmap_new(&m, d->size, 65536))
		return cli_fail("hash map");
	siterec_hashscan_options ho;
	siterec_hashscan_options_init(&ho, SITEREC_HASHSCAN_OPTIONS_VERSION);
	ho.flags = SITEREC_HASHSCAN_UPDATE;
	uint64_t diff[2] = { 0, 0 };
	int rc = siterec_hashmap_scan_fd(m, d->rep, &ho, NULL, NULL);
	ho.flags = 0;
	if (rc == 0)
		rc = siterec_hashmap_scan_fd(m, d->src, &ho, count_extent, diff);
	siterec_hashmap_free(m);
	if (rc)
		return cli_fail("hash scan");
	printf("  hash scan: %llu differing extents (%llu bytes)\n", (unsigned long long)diff[0],
	       (unsigned long long)diff[1]);

	/* and byte by byte, independently of the library */
	static uint8_t a[1 << 20], b[1 << 20];
	uint64_t mismatch = 0;
	for (uint64_t off = 0; off < d->size; off += sizeof(a)) {
		size_t n = (size_t)(d->size - off < sizeof(a) ? d->size - off : sizeof(a));
		if (pread(d->src, a, n, (off_t)off) != (ssize_t)n || pread(d->rep, b, n, (off_t)off) != (ssize_t)n) {
			perror("compare read");
			return 2;
		}
		if (memcmp(a, b, n))
			mismatch++;
	}
	printf("  byte compare: %s\n", mismatch ? "DIFFERENT" : "identical");
	return (diff[0] || mismatch) ? 1 : 0;
}

static int run(struct demo *d)
{
	char p[600], p2[600], pc[600];
	int rc;
	uint64_t log_bytes = 0, written = 0;

	path_of(d, "source.img", p, sizeof(p));
	d->src = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	path_of(d, "replica.img", p, sizeof(p));
	d->rep = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (d->src < 0 || d->rep < 0 || ftruncate(d->src, (off_t)d->size) ||
	    ftruncate(d->rep, (off_t)d->size)) {
		perror("create images");
		return 2;
	}
	/* the VM's disk before protection: some data, the rest never written */
	static uint8_t buf[1 << 20];
	for (uint64_t off = 0; off < d->size / 2; off += 4 * sizeof(buf)) {
		fill(d, buf, sizeof(buf));
		if (pwrite(d->src, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf)) {
			perror("seed source");
			return 2;
		}
	}

	siterec_tracker_options to;
	siterec_tracker_options_init(&to, SITEREC_TRACKER_OPTIONS_VERSION);
	path_of(d, "source.trk", p, sizeof(p));
	to.state_path = p;
	if (siterec_tracker_open(&d->trk, d->size, &to))
		return cli_fail("tracker");
	printf("protecting a %llu MiB disk in %s%s\n", (unsigned long long)(d->size >> 20), d->dir,
	       d->encrypt ? " (logs AES-256-GCM encrypted)" : "");

	/* 1. initial replication */
	double t0 = cli_now();
	if (siterec_tracker_mark_all(d->trk) || siterec_tracker_switch(d->trk, NULL))
		return cli_fail("initial epoch");
	if ((rc = ship_frozen(d, "initial.sdl", &log_bytes)))
		return rc;
	printf("1. initial replication: %llu MiB log (zero ranges not stored) in %.2f s\n",
	       (unsigned long long)(log_bytes >> 20), cli_now() - t0);

	/* 2. journal mode with rotation */
	path_of(d, "journal-1.sdl", p, sizeof(p));
	path_of(d, "journal-2.sdl", p2, sizeof(p2));
	path_of(d, "cycle-1.sdl", pc, sizeof(pc));
	siterec_dlog *j;
	if (siterec_dlog_create(&j, p, &d->lopt))
		return cli_fail("journal");
	if ((rc = guest_burst(d, j, d->writes / 2, &written)))
		return rc;
	uint64_t cut;
	if (siterec_dlog_rotate(j, p2) || siterec_tracker_switch(d->trk, &cut))
		return cli_fail("rotate");
	if ((rc = guest_burst(d, j, d->writes - d->writes / 2, &written)))
		return rc;
	if (siterec_dlog_seal(j))
		return cli_fail("seal");
	siterec_dlog_free(j);
	const char *logs[2] = { p, p2 };
	if (siterec_dlog_coalesce(logs, 2, pc, &d->lopt, &d->lopt))
		return cli_fail("coalesce");
	if ((rc = apply(d, pc)))
		return rc;
	/* the journal shipped everything the tracker saw in both epochs */
	if (siterec_tracker_commit(d->trk) || siterec_tracker_switch(d->trk, NULL) ||
	    siterec_tracker_commit(d->trk))
		return cli_fail("tracker commit");
	printf("2. journal cycle: %d writes, %llu KiB written, journals %lld + %lld KiB, "
	       "coalesced %lld KiB\n", d->writes, (unsigned long long)(written >> 10),
	       file_size(p) >> 10, file_size(p2) >> 10, file_size(pc) >> 10);

	/* 3. tracker mode */
	written = 0;
	if ((rc = guest_burst(d, NULL, d->writes, &written)))
		return rc;
	siterec_tracker_stats st = { .version = SITEREC_TRACKER_STATS_VERSION };
	siterec_tracker_stats_get(d->trk, &st);
	if (siterec_tracker_switch(d->trk, NULL))
		return cli_fail("switch");
	if ((rc = ship_frozen(d, "cycle-2.sdl", &log_bytes)))
		return rc;
	printf("3. tracked cycle: %d writes, %llu KiB dirty at %u B blocks, log %llu KiB, "
	       "tracker memory %llu KiB\n", d->writes, (unsigned long long)(st.dirty_bytes >> 10),
	       st.block_size, (unsigned long long)(log_bytes >> 10),
	       (unsigned long long)(st.memory_bytes >> 10));
	if (siterec_tracker_close(d->trk))
		return cli_fail("tracker close");

	printf("4. verify replica against source\n");
	rc = verify(d);
	printf(rc == 0 ? "replica is consistent with the source\n" : "REPLICA DIFFERS FROM SOURCE\n");
	return rc;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d;
	memset(&d, 0, sizeof(d));
	d.size = 256ull << 20;
	d.writes = 2000;
	d.rng = 0x5157E5EC0DEull;
	d.src = d.rep = -1;
	const char *dir = NULL;
	int keep = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			d.size = strtoull(argv[++i], NULL, 10) << 20;
		else if (!strcmp(argv[i], "--writes") && i + 1 < argc)
			d.writes = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--encrypt"))
			d.encrypt = 1;
		else if (!strcmp(argv[i], "--keep"))
			keep = 1;
		else {
			fprintf(stderr, "usage: siterec demo [--dir DIR] [--size MiB] [--writes N] "
			                "[--encrypt] [--keep]\n");
			return 2;
		}
	}
	if (d.size < (1u << 20) || d.writes < 2) {
		fprintf(stderr, "siterec demo: --size must be >= 1 MiB and --writes >= 2\n");
		return 2;
	}
	if (dir) {
		snprintf(d.dir, sizeof(d.dir), "%s", dir);
		if (mkdir(d.dir, 0755) && errno != EEXIST) {
			perror(d.dir);
			return 2;
		}
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(d.dir, sizeof(d.dir), "%s/siterec-demo-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(d.dir)) {
			perror("mkdtemp");
			return 2;
		}
	}
	siterec_dlog_options_init(&d.lopt, SITEREC_DLOG_OPTIONS_VERSION);
	d.lopt.disk_size = d.size;
	d.lopt.flags = SITEREC_DLOG_DETECT_ZERO;
	memcpy(d.lopt.disk_id, "siterec-demo-vm0", 16);
	if (d.encrypt) {
		fill(&d, d.key, sizeof(d.key));
		d.lopt.key = d.key;
		d.lopt.key_size = sizeof(d.key);
	}
	int rc = run(&d);
	siterec_tracker_free(d.trk);
	if (d.src >= 0)
		close(d.src);
	if (d.rep >= 0)
		close(d.rep);
	if (!keep && !dir) {
		static const char *const names[] = { "source.img", "replica.img", "source.trk",
			"source.trk.act", "initial.sdl", "journal-1.sdl", "journal-2.sdl", "cycle-1.sdl",
			"cycle-2.sdl" };
		char p[600];
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			path_of(&d, names[i], p, sizeof(p));
			unlink(p);
		}
		if (rmdir(d.dir) != 0)
			fprintf(stderr, "siterec demo: left files in %s\n", d.dir);
	} else {
		printf("files kept in %s\n", d.dir);
	}
	return rc;
}
