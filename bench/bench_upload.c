/*
 * Upload of changed extents to an Azure Blob page blob through a store writer:
 * the library's side of bench/upload.sh, whose peer is bench/upload_sdk.mjs (the
 * official @azure/storage-blob SDK doing the same Put Page requests).
 *   bench_upload URL [TOTAL_MIB [EXTENT_KIB [INFLIGHT [ACCOUNT_KEY]]]]
 * URL is the container, e.g. http://127.0.0.1:PORT/devstoreaccount1/bench.
 * Defaults: 1024 MiB in 4096 KiB extents, 8 requests in flight, Azurite's
 * well-known devstoreaccount1 key. The extents are every other extent-sized slot
 * of a disk twice the total, so no two are adjacent and none is coalesced: one
 * extent, one Put Page, as the SDK sends them. The data is random (generated
 * before timing starts) and no Content-MD5 is sent.
 * Prints one line: "WALL_S CPU_S BYTES MB_PER_S USER_S", CPU being this process's
 * user + system time (getrusage) around the upload only (writer open .. finish),
 * USER_S the user part of it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <siterec/siterec.h>
#include <siterec/store.h>

#define POOL (64u << 20) /* random data the extents are taken from */

static const char azurite_key[] =
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds so far; the user part to *user */
static double cpu_seconds(double *user)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	return *user + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* xorshift64*: fast, and never yields an all-zero 512-byte page in practice */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545F4914F6CDD1Dull;
		memcpy(p + i, &v, 8);
	}
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_upload: %s: %s (%d)\n", what, siterec_error_last()->message, rc);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_upload URL [TOTAL_MIB [EXTENT_KIB [INFLIGHT [KEY]]]]\n");
		return 2;
	}
	const char *url = argv[1];
	uint64_t total = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024) << 20;
	size_t ext = (size_t)(argc > 3 ? strtoull(argv[3], NULL, 10) : 4096) << 10;
	uint32_t inflight = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 8;
	const char *key = argc > 5 ? argv[5] : azurite_key;
	if (total == 0 || ext == 0 || ext % 512 || ext > (4u << 20) || ext > POOL ||
	    total % ext || inflight == 0) {
		fprintf(stderr, "bench_upload: sizes must be > 0, extents 512-aligned, <= 4 MiB, "
		                "dividing the total\n");
		return 2;
	}
	uint64_t n = total / ext;

	if (siterec_init() < 0)
		return 1;
	uint8_t *pool = malloc(POOL);
	if (!pool)
		return 1;
	fill_random(pool, POOL, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));

	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_ALLOW_HTTP | SITEREC_STORE_CREATE;
	o.account_key = key;
	o.max_inflight = inflight;
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url, &o);
	if (rc)
		return fail("open", rc);
	char name[64];
	snprintf(name, sizeof name, "bench-upload-%ld-%ld", (long)getpid(), (long)time(NULL));
	rc = siterec_store_disk_create(st, name, total * 2);
	if (rc)
		return fail("disk create", rc);

	double u0, u1, c0 = cpu_seconds(&u0), t0 = now();
	siterec_store_writer *w = NULL;
	rc = siterec_store_writer_open(&w, st, name, NULL);
	if (rc)
		return fail("writer open", rc);
	size_t per_pool = POOL / ext;
	for (uint64_t i = 0; i < n; i++) {
		rc = siterec_store_writer_write(w, pool + (i % per_pool) * ext, ext, i * 2 * ext);
		if (rc)
			return fail("write", rc);
	}
	rc = siterec_store_writer_finish(w);
	if (rc)
		return fail("finish", rc);
	siterec_store_writer_free(w);
	double t1 = now(), c1 = cpu_seconds(&u1);

	/* the sink of bench/upload.sh's loopback run keeps nothing: a failed delete is no error */
	(void)siterec_store_disk_delete(st, name, SITEREC_STORE_DELETE_SNAPSHOTS, NULL);
	siterec_store_free(st);
	free(pool);
	siterec_shutdown();
	printf("%.4f %.4f %" PRIu64 " %.1f %.4f\n", t1 - t0, c1 - c0, total,
	       (double)total / (t1 - t0) / 1e6, u1 - u0);
	return 0;
}
