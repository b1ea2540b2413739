/*
 * Hash scan benchmark (driven by bench/hashscan.sh, which times the peers).
 *
 *   bench_hashscan make DIR SIZE_BYTES PERCENT SEED
 *       Writes DIR/A (random) and DIR/B (A with PERCENT % of its 4 KiB blocks,
 *       distinct and chosen at random, rewritten with other random data).
 *       Prints "changed_blocks=N changed_runs=R".
 *
 *   bench_hashscan run A B CHANGED_BLOCKS REPS [THREADS]
 *       The full job on the pair, as rsync does it: hash B into a map (scan_fd
 *       with UPDATE), then scan A against the map and count the changed extents.
 *       Also the steady-state case: load a saved map of B and scan A against it.
 *       Best of REPS. Prints one "key=value" line; exits 1 when the scan found
 *       fewer changed blocks than CHANGED_BLOCKS (a sanity check).
 *
 * Uses the public API only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <siterec/siterec.h>

#define BS 4096u

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: fast, and every seed gives a full-period stream */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t len, uint64_t *s)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rng_next(s);
		memcpy(p + i, &v, 8);
	}
	for (size_t i = len & ~(size_t)7; i < len; i++)
		p[i] = (uint8_t)rng_next(s);
}

static int write_all(int fd, const uint8_t *p, size_t len, const char *what)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "write %s: %s\n", what, strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cmd_make(const char *dir, uint64_t size, double pct, uint64_t seed)
{
	uint64_t nblocks = (size + BS - 1) / BS;
	uint64_t want = (uint64_t)((double)nblocks * pct / 100.0);
	if (want > nblocks)
		want = nblocks;
	uint8_t *pick = calloc((size_t)nblocks, 1);
	if (!pick)
		return 2;
	uint64_t s = seed, n = 0;
	while (n < want) {
		uint64_t b = rng_next(&s) % nblocks;
		if (!pick[b]) {
			pick[b] = 1;
			n++;
		}
	}
	uint64_t runs = 0;
	for (uint64_t b = 0; b < nblocks; b++)
		runs += pick[b] && (b == 0 || !pick[b - 1]);

	char pa[4096], pb[4096];
	snprintf(pa, sizeof(pa), "%s/A", dir);
	snprintf(pb, sizeof(pb), "%s/B", dir);
	int fa = open(pa, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int fb = open(pb, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fa < 0 || fb < 0) {
		fprintf(stderr, "cannot create %s or %s: %s\n", pa, pb, strerror(errno));
		return 2;
	}
	const size_t chunk = 8u << 20;
	uint8_t *buf = malloc(chunk);
	uint64_t sb = seed ^ 0x5555555555555555ull;
	int rc = 0;
	for (uint64_t off = 0; rc == 0 && off < size; off += chunk) {
		size_t len = size - off < chunk ? (size_t)(size - off) : chunk;
		fill(buf, len, &s);
		rc = write_all(fa, buf, len, pa);
		for (size_t o = 0; rc == 0 && o < len; o += BS) {
			if (pick[(off + o) / BS]) {
				size_t l = len - o < BS ? len - o : BS;
				fill(buf + o, l, &sb);
			}
		}
		if (rc == 0)
			rc = write_all(fb, buf, len, pb);
	}
	close(fa);
	close(fb);
	free(buf);
	free(pick);
	if (rc)
		return 2;
	printf("changed_blocks=%" PRIu64 " changed_runs=%" PRIu64 "\n", want, runs);
	return 0;
}

struct count {
	uint64_t runs;
	uint64_t bytes;
};

static int count_cb(uint64_t off, uint64_t len, void *p)
{
	(void)off;
	struct count *c = p;
	c->runs++;
	c->bytes += len;
	return 0;
}

static int fail(const char *what)
{
	const siterec_error *e = siterec_error_last();
	fprintf(stderr, "%s: %s (%s)\n", what, e->message, siterec_strerror(e->code));
	return 2;
}

static int cmd_run(const char *a, const char *b, uint64_t expect_blocks, int reps,
                   uint32_t threads)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	if (fa < 0 || fb < 0) {
		fprintf(stderr, "cannot open %s or %s: %s\n", a, b, strerror(errno));
		return 2;
	}
	off_t size = lseek(fb, 0, SEEK_END);
	char mappath[4200];
	snprintf(mappath, sizeof(mappath), "%s.map", b);

	siterec_hashscan_options up = SITEREC_HASHSCAN_OPTIONS_INIT, cmp = SITEREC_HASHSCAN_OPTIONS_INIT;
	up.flags = SITEREC_HASHSCAN_UPDATE;
	up.threads = cmp.threads = threads;
	double best_build = 1e30, best_scan = 1e30, best_pair = 1e30, best_saved = 1e30;
	struct count c = { 0, 0 };
	for (int r = 0; r < reps; r++) {
		siterec_hashmap *m;
		double t0 = now();
		if (siterec_hashmap_new(&m, (uint64_t)size, BS) != 0)
			return fail("hashmap_new");
		if (siterec_hashmap_scan_fd(m, fb, &up, NULL, NULL) != 0)
			return fail("scan B");
		double t1 = now();
		memset(&c, 0, sizeof(c));
		if (siterec_hashmap_scan_fd(m, fa, &cmp, count_cb, &c) != 0)
			return fail("scan A");
		double t2 = now();
		if (r == 0 && siterec_hashmap_save(m, mappath) != 0)
			return fail("save");
		siterec_hashmap_free(m);
		if (t1 - t0 < best_build)
			best_build = t1 - t0;
		if (t2 - t1 < best_scan)
			best_scan = t2 - t1;
		if (t2 - t0 < best_pair)
			best_pair = t2 - t0;

		/* steady state: the map of the other side was saved by an earlier cycle */
		double t3 = now();
		if (siterec_hashmap_load(&m, mappath) != 0)
			return fail("load");
		struct count c2 = { 0, 0 };
		if (siterec_hashmap_scan_fd(m, fa, &cmp, count_cb, &c2) != 0)
			return fail("scan A (saved map)");
		double t4 = now();
		siterec_hashmap_free(m);
		if (c2.runs != c.runs || c2.bytes != c.bytes) {
			fprintf(stderr, "scan against the saved map disagrees\n");
			return 1;
		}
		if (t4 - t3 < best_saved)
			best_saved = t4 - t3;
	}
	unlink(mappath);
	close(fa);
	close(fb);
	uint64_t blocks = (c.bytes + BS - 1) / BS;
	printf("pair_s=%.3f build_s=%.3f scan_s=%.3f saved_map_s=%.3f changed_runs=%" PRIu64
	       " changed_blocks=%" PRIu64 " gib_per_s=%.2f\n",
	       best_pair, best_build, best_scan, best_saved, c.runs, blocks,
	       2.0 * (double)size / best_pair / (1024.0 * 1024 * 1024));
	if (blocks < expect_blocks) {
		fprintf(stderr, "sanity check failed: found %" PRIu64 " changed blocks, %" PRIu64
		        " were changed\n", blocks, expect_blocks);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "make") == 0)
		return cmd_make(argv[2], strtoull(argv[3], NULL, 0), atof(argv[4]),
		                strtoull(argv[5], NULL, 0));
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "run") == 0)
		return cmd_run(argv[2], argv[3], strtoull(argv[4], NULL, 0), atoi(argv[5]),
		               argc == 7 ? (uint32_t)strtoul(argv[6], NULL, 0) : 0);
	fprintf(stderr,
	        "usage: %s make DIR SIZE_BYTES PERCENT SEED\n"
	        "       %s run A B CHANGED_BLOCKS REPS [THREADS]\n", argv[0], argv[0]);
	return 2;
}
