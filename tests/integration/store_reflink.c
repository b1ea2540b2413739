/* The file:// target's reflink snapshots, through the public API, on a directory of
 * a file system with FICLONE (store_reflink.sh makes a loop-mounted btrfs): one
 * writer kept open across three snapshots, every snapshot read back against an
 * in-memory model, a reflinked snapshot's holes kept (ranges), deletes. That the
 * reflink path was taken, not the fallback copy, is checked right after each
 * snapshot on the documented layout (doc/formats.md, "Directory target"): its
 * ID.idx says full (flags bit 0), and FIEMAP shows every extent of its ID.data
 * shared (a copy never shares). Prints one line per check; exit 0 only if all pass.
 *
 *   store_reflink DIR      DIR: an empty directory on a reflink-capable file system
 */
#include <siterec/siterec.h>

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)
/* a partial last 64 KiB chunk, and an end that is no multiple of the 4 KiB block */
#define SIZE (16 * MiB + 1536)

static const char *root;
static int fails, checks;

static int expect(int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf(ok ? "ok: " : "FAIL: ");
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fails += !ok;
	checks++;
	return ok;
}

/* A store call that must return want. */
static int call(int rc, int want, const char *what)
{
	const char *msg = rc && rc != want ? siterec_error_last()->message : NULL;
	return expect(rc == want, "%s: %s, expected %s%s%s", what, siterec_strerror(rc),
	              siterec_strerror(want), msg ? ": " : "", msg ? msg : "");
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Writes through the open writer: fresh data (seed != 0) or a clear (seed 0). */
typedef struct piece {
	uint64_t off, len, seed;
} piece;

static const piece before_s1[] = { { 1 * MiB, 2 * MiB, 1 }, { 5 * MiB + 512, 512, 2 },
                                   { SIZE - 1536, 1536, 3 } };
static const piece before_s2[] = { { 2 * MiB, 64 * KiB, 4 }, { 8 * MiB, MiB, 5 },
                                   { 1 * MiB, 128 * KiB, 0 }, { SIZE - 512, 512, 6 } };
static const piece after_s2[] = { { 12 * MiB, 512 * KiB, 7 }, { 8 * MiB, MiB, 0 },
                                  { 1 * MiB + 4 * KiB, 4 * KiB, 8 } };
static const piece before_s4[] = { { 3 * MiB - 512, 1024, 9 } };
#define APPLY(w, model, pieces) apply(w, model, pieces, sizeof(pieces) / sizeof(pieces[0]))

/* Send pieces through w and finish; the same into the model. */
static void apply(siterec_store_writer *w, uint8_t *model, const piece *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char what[96];
		snprintf(what, sizeof(what), "%s [%llu, +%llu)", p[i].seed ? "write" : "zero",
		         (unsigned long long)p[i].off, (unsigned long long)p[i].len);
		uint8_t *m = model + p[i].off;
		if (p[i].seed) {
			fill(m, (size_t)p[i].len, p[i].seed);
			call(siterec_store_writer_write(w, m, (size_t)p[i].len, p[i].off), 0, what);
		} else {
			memset(m, 0, (size_t)p[i].len);
			call(siterec_store_writer_zero(w, p[i].off, p[i].len), 0, what);
		}
	}
	call(siterec_store_writer_finish(w), 0, "finish");
}

static void compare(siterec_store *st, const char *snap, const uint8_t *want, const char *what)
{
	uint8_t *got = malloc(SIZE);
	if (!got) {
		expect(0, "%s: out of memory", what);
		return;
	}
	memset(got, 0xEE, SIZE);
	int rc = siterec_store_read(st, "d0", snap, got, SIZE, 0);
	uint64_t bad = 0, first = 0;
	for (uint64_t i = 0; !rc && i < SIZE; i += 512)
		if (memcmp(got + i, want + i, 512) != 0 && !bad++)
			first = i;
	/* a piece across chunk edges, at odd offsets */
	if (!rc)
		rc = siterec_store_read(st, "d0", snap, got, 200000, 2 * MiB - 70001);
	if (!rc && memcmp(got, want + 2 * MiB - 70001, 200000) != 0)
		bad++;
	expect(!rc && !bad, "%s: read back (%s, %llu sectors differ, the first at %llu)", what,
	       siterec_strerror(rc), (unsigned long long)bad, (unsigned long long)first);
	free(got);
}

static uint32_t le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Right after taking snapshot id: its index says full, and its data file's extents
 * are all shared (with the disk's). */
static void reflinked(const char *id)
{
	char p[4200];
	uint8_t hdr[44];
	snprintf(p, sizeof(p), "%s/disks/d0/snapshots/%s.idx", root, id);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	int got = fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr);
	if (fd >= 0)
		close(fd);
	expect(got && memcmp(hdr, "SRSNAP01", 8) == 0 && (le32(hdr + 40) & 1),
	       "snapshot %s recorded as a full (reflink) snapshot (flags %u)", id,
	       got ? le32(hdr + 40) : 0);

	snprintf(p, sizeof(p), "%s/disks/d0/snapshots/%s.data", root, id);
	enum { N = 64 };
	struct fiemap *fm = calloc(1, sizeof(*fm) + N * sizeof(struct fiemap_extent));
	unsigned extents = 0, shared = 0;
	fd = fm ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	int rc = fd < 0 ? -1 : 0;
	uint64_t start = 0;
	while (!rc) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
			rc = -1;
			break;
		}
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			const struct fiemap_extent *e = &fm->fm_extents[i];
			extents++;
			shared += (e->fe_flags & FIEMAP_EXTENT_SHARED) != 0;
			start = e->fe_logical + e->fe_length;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				rc = 1;
		}
		if (fm->fm_mapped_extents < N)
			rc = 1;
	}
	if (fd >= 0)
		close(fd);
	free(fm);
	expect(rc == 1 && extents > 0 && shared == extents,
	       "snapshot %s data shares its blocks: %u of %u extents shared (FIEMAP)", id, shared,
	       extents);
}

static int snapshot(siterec_store *st, char *id)
{
	int rc = siterec_store_snapshot(st, "d0", id, SITEREC_STORE_ID_MAX);
	if (!call(rc, 0, "snapshot"))
		return -1;
	reflinked(id);
	return 0;
}

/* Extents as text: "OFF+LEN " each. */
static int ranges_text(uint64_t off, uint64_t len, void *payload)
{
	char *t = payload;
	size_t n = strlen(t);
	snprintf(t + n, 512 - n, "%llu+%llu ", (unsigned long long)off, (unsigned long long)len);
	return 0;
}

static int count_snaps(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	(void)name; (void)size; (void)snap;
	*(int *)payload += kind == SITEREC_STORE_KIND_SNAPSHOT;
	return 0;
}

static int run(siterec_store *st, uint8_t *live, uint8_t *m1, uint8_t *m2)
{
	siterec_store_writer *w = NULL;
	char s1[SITEREC_STORE_ID_MAX], s2[SITEREC_STORE_ID_MAX], s3[SITEREC_STORE_ID_MAX],
	     s4[SITEREC_STORE_ID_MAX];
	if (!call(siterec_store_disk_create(st, "d0", SIZE), 0, "disk create") ||
	    !call(siterec_store_writer_open(&w, st, "d0", NULL), 0, "writer open"))
		return 1;
	APPLY(w, live, before_s1);
	if (snapshot(st, s1))
		goto out;
	memcpy(m1, live, SIZE);

	/* the writer goes on across the snapshot: the live disk moves, s1 stays */
	APPLY(w, live, before_s2);
	if (snapshot(st, s2))
		goto out;
	memcpy(m2, live, SIZE);
	APPLY(w, live, after_s2);

	compare(st, s1, m1, "snapshot 1");
	compare(st, s2, m2, "snapshot 2");
	compare(st, NULL, live, "live disk");
	uint64_t size = 0;
	call(siterec_store_disk_size(st, "d0", s1, &size), 0, "snapshot size");
	expect(size == SIZE, "snapshot size %llu", (unsigned long long)size);
	/* a reflink keeps the holes: ranges of s1 are the 64 KiB chunks with data */
	char text[512] = "";
	const char *want = "1048576+2097152 5242880+65536 16777216+1536 ";
	call(siterec_store_ranges(st, "d0", s1, 0, 0, ranges_text, text), 0, "ranges of snapshot 1");
	expect(strcmp(text, want) == 0, "ranges of snapshot 1: %s(expected %s)", text, want);

	/* delete the oldest: the others and the disk unchanged; a new one after it */
	call(siterec_store_snapshot_delete(st, "d0", s1), 0, "delete snapshot 1");
	uint8_t b[512];
	call(siterec_store_read(st, "d0", s1, b, sizeof(b), 0), SITEREC_ENOTFOUND,
	     "read deleted snapshot 1");
	compare(st, s2, m2, "snapshot 2 after deleting 1");
	compare(st, NULL, live, "live disk after deleting 1");
	if (snapshot(st, s3))
		goto out;
	expect(strtoull(s3, NULL, 10) > strtoull(s2, NULL, 10), "snapshot ids increase: %s, %s", s2, s3);
	compare(st, s3, live, "snapshot 3");
	/* the newest deleted: a later write and snapshot are still complete */
	call(siterec_store_snapshot_delete(st, "d0", s3), 0, "delete snapshot 3");
	APPLY(w, live, before_s4);
	if (snapshot(st, s4))
		goto out;
	expect(strtoull(s4, NULL, 10) > strtoull(s3, NULL, 10), "the deleted %s not reused: %s", s3, s4);
	compare(st, s4, live, "snapshot 4");
	compare(st, s2, m2, "snapshot 2 at the end");
	int snaps = 0;
	call(siterec_store_list(st, NULL, count_snaps, &snaps), 0, "list");
	expect(snaps == 2, "%d snapshots listed, expected 2", snaps);
	call(siterec_store_disk_delete(st, "d0", 0, NULL), SITEREC_EBUSY, "delete disk with snapshots");
out:
	siterec_store_writer_free(w);
	call(siterec_store_disk_delete(st, "d0", SITEREC_STORE_DELETE_SNAPSHOTS, NULL), 0,
	     "delete disk and snapshots");
	return fails != 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: store_reflink DIR\n");
		return 2;
	}
	root = argv[1];
	char url[4200];
	snprintf(url, sizeof(url), "file://%s", root);
	uint8_t *live = calloc(1, SIZE), *m1 = malloc(SIZE), *m2 = malloc(SIZE);
	siterec_store *st = NULL;
	int bad = 1;
	if (live && m1 && m2 && siterec_init() >= 1 &&
	    call(siterec_store_open(&st, url, NULL), 0, "open"))
		bad = run(st, live, m1, m2);
	printf("store_reflink: %d of %d checks failed\n", fails, checks);
	siterec_store_free(st);
	siterec_shutdown();
	free(live);
	free(m1);
	free(m2);
	return bad;
}
