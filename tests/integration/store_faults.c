/* Drives the Azure backend through the public API only, behind tests/integration/
 * faultproxy.py: a deterministic mix of writes onto a 64 MiB disk, then the whole
 * disk read back and compared with an in-memory model, a snapshot, and a document
 * round trip. Exit 0 only if everything matches.
 *
 *   store_faults URL SEED      URL: http://127.0.0.1:PORT/devstoreaccount1/CONTAINER
 */
#include <siterec/siterec.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define DISK_SIZE (64 * MiB)

/* Azurite's well-known development key */
static const char *const KEY =
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static uint64_t rng_state;

static uint64_t rnd(void)  /* splitmix64: the same mix for the same seed everywhere */
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd();
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "store_faults: %s: %s (%d): %s\n", what, siterec_strerror(rc), rc,
	        siterec_error_last()->message ? siterec_error_last()->message : "");
	return 1;
}

static uint8_t *model, *tmp;
static unsigned n_writes, n_zeros;

static int put(siterec_store_writer *w, uint64_t off, size_t len, int zeros)
{
	if (zeros)
		memset(tmp, 0, len);
	else
		fill(tmp, len);
	int rc = siterec_store_writer_write(w, tmp, len, off);
	if (rc)
		return fail("write", rc);
	/* the caller's buffer is copied: scribbling on it must not matter */
	memcpy(model + off, tmp, len);
	memset(tmp, 0xEE, len);
	n_writes++;
	return 0;
}

static int zero(siterec_store_writer *w, uint64_t off, uint64_t len)
{
	int rc = siterec_store_writer_zero(w, off, len);
	if (rc)
		return fail("zero", rc);
	memset(model + off, 0, len);
	n_zeros++;
	return 0;
}

/* A run of adjacent writes from off: the front end coalesces it past 4 MiB. */
static int run(siterec_store_writer *w, uint64_t off, uint64_t total)
{
	while (total) {
		size_t len = (size_t)(1 + rnd() % 16) * 4 * KiB;
		if (len > total)
			len = (size_t)total;
		if (put(w, off, len, 0))
			return 1;
		off += len;
		total -= len;
	}
	return 0;
}

static int compare(siterec_store *st, const char *snap, const uint8_t *want, const char *what)
{
	uint8_t *got = malloc(DISK_SIZE);
	if (!got)
		return 1;
	memset(got, 0x55, DISK_SIZE);
	int rc = siterec_store_read(st, "d", snap, got, DISK_SIZE, 0);
	if (rc) {
		free(got);
		return fail(what, rc);
	}
	int bad = 0;
	for (uint64_t i = 0; i < DISK_SIZE; i += 512)
		if (memcmp(got + i, want + i, 512) != 0) {
			if (bad < 5)
				fprintf(stderr, "store_faults: %s: sector at %llu differs\n", what,
				        (unsigned long long)i);
			bad++;
		}
	free(got);
	if (bad)
		fprintf(stderr, "store_faults: %s: %d sectors differ\n", what, bad);
	return bad != 0;
}

static int writes(siterec_store *st)
{
	siterec_store_writer *w = NULL;
	int rc = siterec_store_writer_open(&w, st, "d", NULL);
	if (rc)
		return fail("writer open", rc);
	int bad = 0;
	for (int round = 0; round < 3 && !bad; round++) {
		/* scattered small writes, some all zeros (sent as clears), some overlapping */
		for (int i = 0; i < 20 && !bad; i++) {
			size_t len = (size_t)(1 + rnd() % 16) * 4 * KiB;
			uint64_t off = (rnd() % ((DISK_SIZE - len) / 512)) * 512;
			bad = put(w, off, len, rnd() % 8 == 0);
		}
		/* a multi-MiB run (coalesced into several 4 MiB Put Pages), 512-aligned, not 4 KiB */
		if (!bad) {
			uint64_t total = (5 + rnd() % 5) * MiB + (rnd() % 8) * 512;
			uint64_t off = (rnd() % ((DISK_SIZE - total) / 512)) * 512;
			bad = run(w, off, total);
		}
		/* explicit zero ranges, one large */
		if (!bad) {
			uint64_t len = (1 + rnd() % 64) * 512, off = (rnd() % ((DISK_SIZE - len) / 512)) * 512;
			bad = zero(w, off, len);
		}
		if (!bad && round == 1)
			bad = zero(w, 40 * MiB + 512, 6 * MiB);
	}
	if (!bad && (rc = siterec_store_writer_finish(w)))
		bad = fail("finish", rc);
	siterec_store_writer_free(w);
	return bad;
}

static int docs(siterec_store *st, const char *seed)
{
	char etag[SITEREC_STORE_ETAG_MAX], etag2[SITEREC_STORE_ETAG_MAX];
	char doc[256];
	int n = snprintf(doc, sizeof(doc), "{\"seed\":\"%s\",\"v\":1}", seed);
	int rc = siterec_store_doc_put(st, "meta/state.json", doc, (size_t)n, "", etag, sizeof(etag));
	if (rc)
		return fail("doc create", rc);
	n = snprintf(doc, sizeof(doc), "{\"seed\":\"%s\",\"v\":2}", seed);
	rc = siterec_store_doc_put(st, "meta/state.json", doc, (size_t)n, etag, etag, sizeof(etag));
	if (rc)
		return fail("doc replace", rc);
	void *data = NULL;
	size_t len = 0;
	rc = siterec_store_doc_get(st, "meta/state.json", &data, &len, etag2, sizeof(etag2));
	if (rc)
		return fail("doc get", rc);
	int bad = len != (size_t)n || memcmp(data, doc, len) != 0 || strcmp(etag, etag2) != 0;
	siterec_free(data);
	if (bad)
		fprintf(stderr, "store_faults: document or ETag differs after round trip\n");
	return bad;
}

/* One request (the first, at offset 0 of disk "backoff") is answered 503 with
 * Retry-After: 2 by the proxy: the 48 requests queued after it must not wait
 * for its retry (store_faults.sh checks the arrival order), and all land. */
static int backoff(siterec_store *st)
{
	const uint64_t ext = 64 * 1024, n = 48;
	siterec_store_writer *w = NULL;
	int rc = siterec_store_disk_create(st, "backoff", (n + 1) * 2 * ext);
	if (rc)
		return fail("backoff disk create", rc);
	if ((rc = siterec_store_writer_open(&w, st, "backoff", NULL)))
		return fail("backoff writer open", rc);
	uint8_t *want = malloc((n + 1) * ext), *got = malloc(ext);
	int bad = !want || !got;
	if (!bad)
		fill(want, (n + 1) * ext);
	for (uint64_t i = 0; !bad && i <= n; i++)
		if ((rc = siterec_store_writer_write(w, want + i * ext, ext, i * 2 * ext)))
			bad = fail("backoff write", rc);
	if (!bad && (rc = siterec_store_writer_finish(w)))
		bad = fail("backoff finish", rc);
	for (uint64_t i = 0; !bad && i <= n; i++) {
		if ((rc = siterec_store_read(st, "backoff", NULL, got, ext, i * 2 * ext)))
			bad = fail("backoff read", rc);
		else if (memcmp(got, want + i * ext, ext) != 0)
			bad = fail("backoff: data differs", SITEREC_ECORRUPT);
	}
	siterec_store_writer_free(w);
	free(want);
	free(got);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: store_faults URL SEED\n");
		return 2;
	}
	rng_state = strtoull(argv[2], NULL, 10);
	model = calloc(1, DISK_SIZE);
	tmp = malloc(4 * MiB);
	if (!model || !tmp || siterec_init() < 1)
		return 1;
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_ALLOW_HTTP | SITEREC_STORE_CREATE | SITEREC_STORE_CONTENT_MD5;
	o.account_key = KEY;
	o.max_retries = 10;
	o.timeout_ms = 10000;
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, argv[1], &o);
	int bad = rc ? fail("open", rc) : 0;
	if (!bad && (rc = siterec_store_disk_create(st, "d", DISK_SIZE)))
		bad = fail("disk create", rc);
	if (!bad)
		bad = writes(st);
	if (!bad)
		bad = compare(st, NULL, model, "read back");
	/* a snapshot keeps the image while the disk moves on */
	char snap[SITEREC_STORE_ID_MAX];
	uint8_t *before = NULL;
	if (!bad && (rc = siterec_store_snapshot(st, "d", snap, sizeof(snap))))
		bad = fail("snapshot", rc);
	if (!bad && !(before = malloc(DISK_SIZE)))
		bad = 1;
	if (!bad) {
		memcpy(before, model, DISK_SIZE);
		bad = writes(st);
	}
	if (!bad)
		bad = compare(st, NULL, model, "read back after snapshot");
	if (!bad)
		bad = compare(st, snap, before, "read snapshot");
	if (!bad)
		bad = docs(st, argv[2]);
	if (!bad)
		bad = backoff(st);
	if (!bad)
		printf("store_faults: seed %s: %u writes, %u zero ranges, snapshot %s: all match\n",
		       argv[2], n_writes, n_zeros, snap);
	free(before);
	siterec_store_free(st);
	siterec_shutdown();
	free(model);
	free(tmp);
	return bad;
}
