/*
 * Hash scan: find the changed blocks of a disk nobody tracked by comparing the
 * XXH3-128 hash of every block with a map of earlier hashes.
 *
 * A scan reads the disk in large chunks, hashes each block of a chunk into a
 * per-chunk result (new hashes plus a bitmap of blocks whose hash differs from
 * the map), and then "emits" the chunk on the calling thread: merges its changed
 * blocks into runs, calls `changed` for finished runs and, with UPDATE, copies
 * the new hashes into the map. The fd scan does the read-and-hash part on worker
 * threads, several chunks ahead of the emitter; only the emitter touches the
 * known bitmap and writes hash slots, and it writes only slots of the chunk it
 * emits, while workers read only slots of chunks not yet emitted, so the map
 * needs no lock.
 *
 * Failure with UPDATE: a run's hashes are committed when the run is appended
 * and the run is delivered to `changed` later, so the committed-but-undelivered
 * blocks are always exactly the open run. On any failure those blocks are marked
 * unknown: the map never claims to know a change the caller was not told about.
 *
 * File format: doc/formats.md, "Hash map file".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "siterec/tracker.h"

#define HASH_LEN 16u
/* Chunk of one read callback call: large, so that callbacks doing real I/O
 * (network, image formats) see few big requests. */
#define CB_CHUNK (8u << 20)
/* fd scan: a worker reads and hashes FD_CHUNK at a time, with one pread. On a
 * cached image 4 MiB chunks ran 1.8x faster than 256 KiB ones, larger gained
 * nothing, and reading a chunk in L2-sized pieces did not help either. pread
 * rather than mmap: mmap saves the copy and was faster, but a media error or a
 * concurrent truncate would be SIGBUS in the caller's process instead of an
 * error code. */
#define FD_CHUNK (4u << 20)
#define MAX_THREADS 64u
#define DEFAULT_THREADS 8

/* File format (doc/formats.md). */
#define MAP_MAGIC "SRHSHMAP"
#define MAP_VERSION 1u
#define MAP_HDR_LEN 40u
#define MAP_SUM_LEN 8u

struct siterec_hashmap {
	uint64_t disk_size;
	uint64_t nblocks;
	uint64_t known_count;
	uint32_t block_size;
	unsigned int shift;  /* log2(block_size) */
	uint64_t *known;     /* bit i of word i/64: block i's hash is valid */
	uint8_t *hashes;     /* HASH_LEN bytes per block, as sr_hash128 writes them */
	void *hash_mem;      /* the allocation holding hashes (a loaded file's buffer) */
};

/* ---- known bitmap ---- */

static inline int known_get(const siterec_hashmap *m, uint64_t b)
{
	return (int)((m->known[b >> 6] >> (b & 63)) & 1u);
}

/* Up to 64 bits of the known bitmap starting at bit `start` (n >= 1). */
static uint64_t known_bits(const siterec_hashmap *m, uint64_t start, unsigned int n)
{
	uint64_t w = start >> 6;
	unsigned int sh = (unsigned int)(start & 63);
	uint64_t v = m->known[w] >> sh;
	if (sh && sh + n > 64)
		v |= m->known[w + 1] << (64 - sh);
	return n == 64 ? v : v & ((1ull << n) - 1);
}

static inline uint64_t bits_mask(unsigned int n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }

/* Set or clear bits [a, b) and keep known_count right. */
static void known_set_range(siterec_hashmap *m, uint64_t a, uint64_t b, int on)
{
	while (a < b) {
		unsigned int sh = (unsigned int)(a & 63);
		unsigned int n = (unsigned int)(b - a < 64 - sh ? b - a : 64 - sh);
		uint64_t mask = bits_mask(n) << sh;
		uint64_t *w = &m->known[a >> 6];
		uint64_t flip = on ? mask & ~*w : mask & *w;
		uint64_t cnt = (uint64_t)__builtin_popcountll(flip);
		if (on) {
			*w |= mask;
			m->known_count += cnt;
		} else {
			*w &= ~mask;
			m->known_count -= cnt;
		}
		a += n;
	}
}

/* ---- map lifetime ---- */

static int check_geometry(uint64_t disk_size, uint32_t block_size)
{
	if (disk_size == 0)
		return sr_err(SITEREC_EINVAL, "hash map disk size is 0");
	if (!sr_is_pow2(block_size) || block_size < SITEREC_TRACKER_BLOCK_MIN ||
	    block_size > SITEREC_TRACKER_BLOCK_MAX)
		return sr_err(SITEREC_EINVAL,
		              "hash map block size %u is not a power of two in 512..1048576",
		              block_size);
	return 0;
}

/* A map of that geometry. With `hashes` (inside the allocation hash_mem, which
 * the map then owns, also on failure) the slots are those bytes, else zeros. */
static int map_alloc(siterec_hashmap **out, uint64_t disk_size, uint32_t block_size,
                     uint8_t *hashes, void *hash_mem)
{
	siterec_hashmap *m = sr_calloc(1, sizeof(*m));
	if (!m) {
		sr_free(hash_mem);
		return sr_err(SITEREC_ENOMEM, "out of memory for a hash map");
	}
	m->hashes = hashes;
	m->hash_mem = hash_mem;
	m->disk_size = disk_size;
	m->block_size = block_size;
	m->shift = (unsigned int)__builtin_ctz(block_size);
	m->nblocks = (disk_size >> m->shift) + ((disk_size & (block_size - 1)) != 0);
	if (m->nblocks > SIZE_MAX / HASH_LEN) {
		siterec_hashmap_free(m);
		return sr_err(SITEREC_ENOMEM, "hash map of %llu blocks does not fit in memory",
		              (unsigned long long)m->nblocks);
	}
	m->known = sr_calloc((size_t)((m->nblocks + 63) / 64), sizeof(uint64_t));
	if (!m->hashes)
		m->hashes = m->hash_mem = sr_calloc((size_t)m->nblocks, HASH_LEN);
	if (!m->known || !m->hashes) {
		siterec_hashmap_free(m);
		return sr_err(SITEREC_ENOMEM, "out of memory for a hash map of %llu blocks",
		              (unsigned long long)m->nblocks);
	}
	*out = m;
	return 0;
}

SITEREC_API int siterec_hashmap_new(siterec_hashmap **out, uint64_t disk_size, uint32_t block_size)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "hash map out-pointer is NULL");
	*out = NULL;
	int rc = check_geometry(disk_size, block_size);
	return rc ? rc : map_alloc(out, disk_size, block_size, NULL, NULL);
}

SITEREC_API void siterec_hashmap_free(siterec_hashmap *map)
{
	if (!map)
		return;
	sr_free(map->known);
	sr_free(map->hash_mem);
	sr_free(map);
}

SITEREC_API int siterec_hashmap_info(const siterec_hashmap *map, uint64_t *disk_size,
                                     uint32_t *block_size, uint64_t *known_blocks)
{
	if (!map)
		return sr_err(SITEREC_EINVAL, "hash map is NULL");
	if (disk_size)
		*disk_size = map->disk_size;
	if (block_size)
		*block_size = map->block_size;
	if (known_blocks)
		*known_blocks = map->known_count;
	return 0;
}

/* ---- save / load ---- */

static size_t bitmap_bytes(uint64_t nblocks) { return (size_t)((nblocks + 7) / 8); }

/* File length for a geometry, or 0 when it cannot be represented. */
static size_t file_len(uint64_t nblocks)
{
	if (nblocks > (SIZE_MAX - MAP_HDR_LEN - MAP_SUM_LEN) / (HASH_LEN + 1))
		return 0;
	return MAP_HDR_LEN + bitmap_bytes(nblocks) + (size_t)nblocks * HASH_LEN + MAP_SUM_LEN;
}

SITEREC_API int siterec_hashmap_save(const siterec_hashmap *map, const char *path)
{
	if (!map || !path)
		return sr_err(SITEREC_EINVAL, "hash map save: %s is NULL", map ? "path" : "map");
	size_t len = file_len(map->nblocks);
	uint8_t *buf = len ? sr_malloc(len) : NULL;
	if (!buf)
		return sr_err(SITEREC_ENOMEM, "out of memory saving a hash map to %s", path);
	uint8_t *p = buf;
	memcpy(p, MAP_MAGIC, 8);
	sr_put_le32(p + 8, MAP_VERSION);
	sr_put_le32(p + 12, 0); /* flags */
	sr_put_le64(p + 16, map->disk_size);
	sr_put_le64(p + 24, map->nblocks);
	sr_put_le32(p + 32, map->block_size);
	sr_put_le32(p + 36, 0); /* reserved */
	p += MAP_HDR_LEN;
	size_t bm = bitmap_bytes(map->nblocks);
	for (size_t i = 0; i < bm; i++)
		p[i] = (uint8_t)(map->known[i / 8] >> (8 * (i % 8)));
	p += bm;
	/* unknown blocks are written as zeros so that equal maps give equal files */
	for (uint64_t b = 0; b < map->nblocks; b++, p += HASH_LEN) {
		if (known_get(map, b))
			memcpy(p, map->hashes + b * HASH_LEN, HASH_LEN);
		else
			memset(p, 0, HASH_LEN);
	}
	sr_put_le64(p, sr_hash64(buf, len - MAP_SUM_LEN));
	int rc = sr_file_replace(path, buf, len);
	sr_free(buf);
	return rc;
}

/* Check the header of a file of flen bytes; *want gets its expected length. */
static int header_check(const uint8_t *h, uint64_t flen, const char *path, size_t *want)
{
	if (flen < 8 || memcmp(h, MAP_MAGIC, 8) != 0)
		return sr_err(SITEREC_ECORRUPT, "%s is not a hash map file (bad magic)", path);
	if (flen < MAP_HDR_LEN + MAP_SUM_LEN)
		return sr_err(SITEREC_ECORRUPT, "hash map %s is truncated (%llu bytes)", path,
		              (unsigned long long)flen);
	uint32_t version = sr_get_le32(h + 8);
	if (version == 0)
		return sr_err(SITEREC_ECORRUPT, "hash map %s has format version 0", path);
	if (version > MAP_VERSION)
		return sr_err(SITEREC_EVERSION,
		              "hash map %s has format version %u; this library reads up to %u", path,
		              version, MAP_VERSION);
	uint64_t disk_size = sr_get_le64(h + 16);
	uint64_t nblocks = sr_get_le64(h + 24);
	uint32_t block_size = sr_get_le32(h + 32);
	int geom_ok = disk_size != 0 && sr_is_pow2(block_size) &&
	              block_size >= SITEREC_TRACKER_BLOCK_MIN &&
	              block_size <= SITEREC_TRACKER_BLOCK_MAX &&
	              nblocks == disk_size / block_size + (disk_size % block_size != 0);
	*want = geom_ok ? file_len(nblocks) : 0;
	if (!*want)
		return sr_err(SITEREC_ECORRUPT,
		              "hash map %s has a corrupt header (disk %llu bytes, block %u, %llu blocks)",
		              path, (unsigned long long)disk_size, block_size,
		              (unsigned long long)nblocks);
	if (flen < *want)
		return sr_err(SITEREC_ECORRUPT, "hash map %s is truncated (%llu of %zu bytes)", path,
		              (unsigned long long)flen, *want);
	if (flen > *want)
		return sr_err(SITEREC_ECORRUPT, "hash map %s has %llu bytes after its end", path,
		              (unsigned long long)(flen - *want));
	return 0;
}

/* Check the body of a whole file (header already checked) and build the map,
 * which takes buf over: its hash slots stay where the file put them. */
static int map_decode(siterec_hashmap **out, uint8_t *buf, size_t len, const char *path)
{
	if (sr_hash64(buf, len - MAP_SUM_LEN) != sr_get_le64(buf + len - MAP_SUM_LEN)) {
		sr_free(buf);
		return sr_err(SITEREC_ECORRUPT, "hash map %s: checksum mismatch", path);
	}
	uint32_t flags = sr_get_le32(buf + 12);
	uint64_t disk_size = sr_get_le64(buf + 16);
	uint64_t nblocks = sr_get_le64(buf + 24);
	uint32_t block_size = sr_get_le32(buf + 32);
	uint32_t reserved = sr_get_le32(buf + 36);
	const uint8_t *bm = buf + MAP_HDR_LEN;
	size_t bmlen = bitmap_bytes(nblocks);
	int rc = 0;
	if (flags != 0)
		rc = sr_err(SITEREC_EVERSION, "hash map %s uses unknown flags 0x%x", path, flags);
	else if (reserved != 0)
		rc = sr_err(SITEREC_ECORRUPT, "hash map %s: reserved header field is not 0", path);
	else if ((nblocks & 7) && (bm[bmlen - 1] >> (nblocks & 7)) != 0)
		rc = sr_err(SITEREC_ECORRUPT, "hash map %s: known bits set past the last block", path);
	if (rc) {
		sr_free(buf);
		return rc;
	}
	siterec_hashmap *m;
	rc = map_alloc(&m, disk_size, block_size, buf + MAP_HDR_LEN + bmlen, buf);
	if (rc)
		return rc;
	for (size_t i = 0; i < bmlen; i++)
		m->known[i / 8] |= (uint64_t)bm[i] << (8 * (i % 8));
	for (uint64_t w = 0; w < (nblocks + 63) / 64; w++)
		m->known_count += (uint64_t)__builtin_popcountll(m->known[w]);
	*out = m;
	return 0;
}

SITEREC_API int siterec_hashmap_load(siterec_hashmap **out, const char *path)
{
	if (out)
		*out = NULL;
	if (!out || !path)
		return sr_err(SITEREC_EINVAL, "hash map load: %s is NULL", out ? "path" : "out-pointer");
	/* The header decides the length, so a wrong file (a disk image, say) is
	 * refused without reading it, and exactly the expected bytes are read. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot open hash map %s", path);
	}
	struct stat st;
	uint8_t hdr[MAP_HDR_LEN];
	size_t want = 0;
	uint8_t *buf = NULL;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		rc = sr_err_os(SITEREC_EIO, e, "cannot stat hash map %s", path);
	}
	uint64_t flen = rc ? 0 : (uint64_t)st.st_size;
	if (rc == 0)
		rc = sr_pread_full(fd, hdr, flen < MAP_HDR_LEN ? (size_t)flen : MAP_HDR_LEN, 0);
	if (rc == 0)
		rc = header_check(hdr, flen, path, &want);
	if (rc == 0 && !(buf = sr_malloc(want)))
		rc = sr_err(SITEREC_ENOMEM, "out of memory loading hash map %s (%zu bytes)", path, want);
	if (rc == 0)
		rc = sr_pread_full(fd, buf, want, 0);
	close(fd);
	if (rc) {
		sr_free(buf);
		return rc;
	}
	/* the header is read again from buf: the checksum covers that copy */
	rc = header_check(buf, want, path, &want);
	if (rc) {
		sr_free(buf);
		return rc;
	}
	return map_decode(out, buf, want, path);
}

/* ---- runs of changed blocks ---- */

struct runs {
	const siterec_hashmap *map;
	siterec_extent_fn fn;
	void *payload;
	int open;
	uint64_t start, end; /* blocks [start, end) */
};

/* Deliver the open run. On failure it stays open (the caller may undo it). */
static int run_flush(struct runs *r)
{
	if (!r->open)
		return 0;
	if (r->fn) {
		uint64_t off = r->start << r->map->shift;
		uint64_t end = r->end << r->map->shift;
		if (end > r->map->disk_size || end < off) /* clip the partial last block */
			end = r->map->disk_size;
		int cb = r->fn(off, end - off, r->payload);
		if (cb)
			return sr_err_callback(cb, "changed-extent");
	}
	r->open = 0;
	return 0;
}

/* Add blocks [a, b), a at or after the open run's end. */
static int run_add(struct runs *r, uint64_t a, uint64_t b)
{
	if (r->open && r->end == a) {
		r->end = b;
		return 0;
	}
	int rc = run_flush(r);
	if (rc)
		return rc;
	r->open = 1;
	r->start = a;
	r->end = b;
	return 0;
}

/* ---- scanning ---- */

struct scan {
	siterec_hashmap *map;
	int update;
	struct runs runs;
	siterec_progress_fn progress;
	void *progress_payload;
	uint64_t chunk_bytes;
	uint32_t chunk_blocks;
	uint64_t nchunks;
};

/* Bytes of chunk c (the last one may be short). */
static size_t chunk_len(const struct scan *s, uint64_t c)
{
	uint64_t off = c * s->chunk_bytes;
	uint64_t left = s->map->disk_size - off;
	return (size_t)(left < s->chunk_bytes ? left : s->chunk_bytes);
}

/* Hash chunk c (`bytes` in buf). Bit i of `diff` is set when block i's hash
 * differs from the map's slot (known or not: the emitter checks that). Reads
 * only the chunk's own hash slots, so workers can run it concurrently. */
static void chunk_hash(const struct scan *s, uint64_t c, const uint8_t *buf, size_t bytes,
                       uint8_t *hashes, uint64_t *diff)
{
	const siterec_hashmap *m = s->map;
	uint32_t nblk = (uint32_t)((bytes + m->block_size - 1) >> m->shift);
	const uint8_t *old = m->hashes + (c * s->chunk_blocks) * HASH_LEN;
	memset(diff, 0, ((nblk + 63) / 64) * sizeof(uint64_t));
	for (uint32_t i = 0; i < nblk; i++) {
		size_t off = (size_t)i << m->shift;
		size_t len = bytes - off < m->block_size ? bytes - off : m->block_size;
		uint8_t *h = hashes + (size_t)i * HASH_LEN;
		sr_hash128(buf + off, len, h);
		if (memcmp(h, old + (size_t)i * HASH_LEN, HASH_LEN) != 0)
			diff[i >> 6] |= 1ull << (i & 63);
	}
}


/* Calling thread: merge chunk c's changed blocks into runs and (UPDATE) commit
 * their hashes, then report progress. */
static int chunk_emit(struct scan *s, uint64_t c, const uint8_t *hashes, const uint64_t *diff)
{
	siterec_hashmap *m = s->map;
	size_t bytes = chunk_len(s, c);
	uint32_t nblk = (uint32_t)((bytes + m->block_size - 1) >> m->shift);
	uint64_t first = c * s->chunk_blocks;
	for (uint32_t base = 0; base < nblk; base += 64) {
		unsigned int n = nblk - base < 64 ? nblk - base : 64;
		uint64_t ch = (diff[base >> 6] | ~known_bits(m, first + base, n)) & bits_mask(n);
		while (ch) {
			unsigned int a = (unsigned int)__builtin_ctzll(ch);
			uint64_t rest = ~(ch >> a);
			unsigned int len = rest ? (unsigned int)__builtin_ctzll(rest) : 64 - a;
			uint64_t ga = first + base + a;
			int rc = run_add(&s->runs, ga, ga + len);
			if (rc)
				return rc;
			if (s->update) {
				memcpy(m->hashes + ga * HASH_LEN, hashes + (size_t)(base + a) * HASH_LEN,
				       (size_t)len * HASH_LEN);
				known_set_range(m, ga, ga + len, 1);
			}
			ch &= ~(bits_mask(len) << a);
		}
	}
	if (s->progress) {
		int cb = s->progress(c * s->chunk_bytes + bytes, m->disk_size, s->progress_payload);
		if (cb)
			return sr_err_callback(cb, "progress");
	}
	return 0;
}

/* After a failure: the open run was committed but not delivered. */
static void scan_undo(struct scan *s)
{
	if (s->update && s->runs.open)
		known_set_range(s->map, s->runs.start, s->runs.end, 0);
	s->runs.open = 0;
}

static int scan_setup(struct scan *s, siterec_hashmap *map, const siterec_hashscan_options *opts,
                      siterec_hashscan_options *o, siterec_extent_fn changed, void *payload,
                      uint64_t chunk)
{
	static const size_t sizes[] = { 0, sizeof(siterec_hashscan_options) };
	if (!map)
		return sr_err(SITEREC_EINVAL, "hash map is NULL");
	memset(o, 0, sizeof(*o));
	o->version = SITEREC_HASHSCAN_OPTIONS_VERSION;
	int rc = sr_options_copy(o, opts, sizes, SITEREC_HASHSCAN_OPTIONS_VERSION, "hash scan");
	if (rc)
		return rc;
	if (o->flags & ~SITEREC_HASHSCAN_UPDATE)
		return sr_err(SITEREC_EINVAL, "unknown hash scan flags 0x%x", o->flags);
	memset(s, 0, sizeof(*s));
	s->map = map;
	s->update = (o->flags & SITEREC_HASHSCAN_UPDATE) != 0;
	s->runs.map = map;
	s->runs.fn = changed;
	s->runs.payload = payload;
	s->progress = o->progress;
	s->progress_payload = o->progress_payload;
	/* chunks hold whole blocks; block_size <= chunk, both powers of two */
	s->chunk_bytes = chunk > map->block_size ? chunk : map->block_size;
	s->chunk_blocks = (uint32_t)(s->chunk_bytes >> map->shift);
	s->nchunks = (map->disk_size + s->chunk_bytes - 1) / s->chunk_bytes;
	return 0;
}

/* Produces the hashes and diff bits of chunk c, raising the error itself on
 * failure. */
typedef int (*chunk_fn)(void *ctx, const struct scan *s, uint64_t c, uint8_t *hashes,
                        uint64_t *diff);

/* One thread: produce and emit chunk after chunk. */
static int scan_serial(struct scan *s, chunk_fn produce, void *ctx)
{
	uint8_t *hashes = sr_malloc((size_t)s->chunk_blocks * HASH_LEN);
	uint64_t *diff = sr_malloc(((s->chunk_blocks + 63) / 64) * sizeof(uint64_t));
	int rc = 0;
	if (!hashes || !diff)
		rc = sr_err(SITEREC_ENOMEM, "out of memory for hash scan results");
	for (uint64_t c = 0; rc == 0 && c < s->nchunks; c++) {
		rc = produce(ctx, s, c, hashes, diff);
		if (rc == 0)
			rc = chunk_emit(s, c, hashes, diff);
	}
	if (rc == 0)
		rc = run_flush(&s->runs);
	if (rc)
		scan_undo(s);
	sr_free(hashes);
	sr_free(diff);
	return rc;
}

struct cb_reader {
	siterec_read_fn fn;
	void *payload;
	uint8_t *buf; /* chunk_bytes */
};

static int chunk_from_cb(void *ctx, const struct scan *s, uint64_t c, uint8_t *hashes,
                         uint64_t *diff)
{
	struct cb_reader *r = ctx;
	size_t len = chunk_len(s, c);
	int cb = r->fn(r->buf, len, c * s->chunk_bytes, r->payload);
	if (cb)
		return sr_err_callback(cb, "read");
	chunk_hash(s, c, r->buf, len, hashes, diff);
	return 0;
}

SITEREC_API int siterec_hashmap_scan(siterec_hashmap *map, siterec_read_fn read, void *read_payload,
                                     const siterec_hashscan_options *opts,
                                     siterec_extent_fn changed, void *changed_payload)
{
	struct scan s;
	siterec_hashscan_options o;
	int rc = scan_setup(&s, map, opts, &o, changed, changed_payload, CB_CHUNK);
	if (rc)
		return rc;
	if (!read)
		return sr_err(SITEREC_EINVAL, "hash scan read callback is NULL");
	struct cb_reader r = { read, read_payload, sr_malloc_aligned((size_t)s.chunk_bytes) };
	if (!r.buf)
		return sr_err(SITEREC_ENOMEM, "out of memory for a hash scan buffer");
	rc = scan_serial(&s, chunk_from_cb, &r);
	sr_free_aligned(r.buf);
	return rc;
}

/* ---- fd scan ---- */

/* Read len bytes at off. Returns 0, an errno, or -1 at end of file. Raises no
 * error: workers are not the calling thread, whose last error is the one the
 * caller sees. The request is rounded up to 512 bytes so that an O_DIRECT fd can
 * read a disk whose size is not sector-aligned (buf has room: chunks are whole
 * blocks). */
static int fd_read(int fd, uint8_t *buf, size_t len, uint64_t off, uint64_t *fail_off)
{
	size_t want = (len + 511) & ~(size_t)511;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, want - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*fail_off = off + got;
			return n < 0 ? errno : -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static int fd_read_err(int err, uint64_t off, uint64_t disk_size)
{
	if (err < 0)
		return sr_err(SITEREC_ETRUNCATED,
		              "hash scan: file ends at %llu, before the disk size %llu",
		              (unsigned long long)off, (unsigned long long)disk_size);
	return sr_err_os(err == EBADF ? SITEREC_EINVAL : SITEREC_EIO, err,
	                 "hash scan: read at offset %llu failed", (unsigned long long)off);
}

/* Read chunk c into buf (chunk_bytes) and hash it. Returns fd_read's result;
 * raises no error (see fd_read). */
static int fd_chunk(const struct scan *s, int fd, uint64_t c, uint8_t *buf, uint8_t *hashes,
                    uint64_t *diff, uint64_t *fail_off)
{
	size_t len = chunk_len(s, c);
	int err = fd_read(fd, buf, len, c * s->chunk_bytes, fail_off);
	if (err)
		return err;
	chunk_hash(s, c, buf, len, hashes, diff);
	return 0;
}

struct fd_reader {
	int fd;
	uint8_t *buf; /* chunk_bytes */
};

static int chunk_from_fd(void *ctx, const struct scan *s, uint64_t c, uint8_t *hashes,
                         uint64_t *diff)
{
	struct fd_reader *r = ctx;
	uint64_t at = 0;
	int err = fd_chunk(s, r->fd, c, r->buf, hashes, diff, &at);
	return err ? fd_read_err(err, at, s->map->disk_size) : 0;
}

/* Result of one chunk, in a ring of slots shared by workers and the emitter. */
struct slot {
	uint64_t chunk; /* valid when done */
	int done;
	int err;        /* fd_read's result */
	uint64_t err_off;
	uint8_t *hashes;
	uint64_t *diff;
};

struct pool {
	struct scan *s;
	int fd;
	pthread_mutex_t lock;
	pthread_cond_t work_cv; /* workers: a slot was freed, or stop */
	pthread_cond_t done_cv; /* emitter: a chunk was finished */
	uint64_t next;          /* next chunk to claim */
	uint64_t consumed;      /* chunks emitted; chunk c may use slot c % nslots once c < consumed + nslots */
	int stop;
	uint32_t nslots;
	struct slot *slots;
};

struct worker {
	struct pool *pool;
	uint8_t *buf;
	pthread_t tid;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	struct scan *s = p->s;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stop && p->next < s->nchunks && p->next >= p->consumed + p->nslots)
			pthread_cond_wait(&p->work_cv, &p->lock);
		if (p->stop || p->next >= s->nchunks) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		uint64_t c = p->next++;
		pthread_mutex_unlock(&p->lock);

		struct slot *sl = &p->slots[c % p->nslots];
		sl->err = fd_chunk(s, p->fd, c, w->buf, sl->hashes, sl->diff, &sl->err_off);

		pthread_mutex_lock(&p->lock);
		sl->chunk = c;
		sl->done = 1;
		pthread_cond_signal(&p->done_cv);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Emit chunks in order as the workers finish them. */
static int pool_emit(struct pool *p)
{
	struct scan *s = p->s;
	for (uint64_t c = 0; c < s->nchunks; c++) {
		struct slot *sl = &p->slots[c % p->nslots];
		pthread_mutex_lock(&p->lock);
		while (!(sl->done && sl->chunk == c))
			pthread_cond_wait(&p->done_cv, &p->lock);
		pthread_mutex_unlock(&p->lock);
		int rc = sl->err ? fd_read_err(sl->err, sl->err_off, s->map->disk_size)
		                 : chunk_emit(s, c, sl->hashes, sl->diff);
		if (rc)
			return rc;
		pthread_mutex_lock(&p->lock);
		sl->done = 0;
		p->consumed = c + 1;
		pthread_cond_broadcast(&p->work_cv);
		pthread_mutex_unlock(&p->lock);
	}
	return run_flush(&s->runs);
}

/* Several threads. Returns 1 (nothing done, no error set) when no worker thread
 * could be started, so that the caller falls back to the serial scan. */
static int scan_threads(struct scan *s, int fd, uint32_t nthreads)
{
	struct pool p;
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.fd = fd;
	/* two result slots per worker: workers keep going while the emitter is busy */
	p.nslots = 2 * nthreads;
	p.slots = sr_calloc(p.nslots, sizeof(*p.slots));
	struct worker *w = sr_calloc(nthreads, sizeof(*w));
	int rc = 0;
	if (!p.slots || !w)
		rc = sr_err(SITEREC_ENOMEM, "out of memory for hash scan threads");
	for (uint32_t i = 0; rc == 0 && i < p.nslots; i++) {
		p.slots[i].hashes = sr_malloc((size_t)s->chunk_blocks * HASH_LEN);
		p.slots[i].diff = sr_malloc(((s->chunk_blocks + 63) / 64) * sizeof(uint64_t));
		if (!p.slots[i].hashes || !p.slots[i].diff)
			rc = sr_err(SITEREC_ENOMEM, "out of memory for hash scan results");
	}
	for (uint32_t i = 0; rc == 0 && i < nthreads; i++) {
		w[i].pool = &p;
		w[i].buf = sr_malloc_aligned((size_t)s->chunk_bytes);
		if (!w[i].buf)
			rc = sr_err(SITEREC_ENOMEM, "out of memory for hash scan buffers");
	}
	uint32_t started = 0;
	if (rc == 0) {
		pthread_mutex_init(&p.lock, NULL);
		pthread_cond_init(&p.work_cv, NULL);
		pthread_cond_init(&p.done_cv, NULL);
		/* xxhash picks its SIMD variant on the first call, writing a global:
		 * make that call here so that workers only read it */
		uint8_t warm[HASH_LEN] = { 0 };
		sr_hash128(warm, 0, warm);
		/* the caller's signal handlers must not run on library threads */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		for (; started < nthreads; started++)
			if (pthread_create(&w[started].tid, NULL, worker_main, &w[started]) != 0)
				break;
		pthread_sigmask(SIG_SETMASK, &old, NULL);

		rc = started ? pool_emit(&p) : 1;

		pthread_mutex_lock(&p.lock);
		p.stop = 1;
		pthread_cond_broadcast(&p.work_cv);
		pthread_mutex_unlock(&p.lock);
		for (uint32_t i = 0; i < started; i++)
			pthread_join(w[i].tid, NULL);
		pthread_mutex_destroy(&p.lock);
		pthread_cond_destroy(&p.work_cv);
		pthread_cond_destroy(&p.done_cv);
		if (rc < 0)
			scan_undo(s);
	}
	for (uint32_t i = 0; p.slots && i < p.nslots; i++) {
		sr_free(p.slots[i].hashes);
		sr_free(p.slots[i].diff);
	}
	for (uint32_t i = 0; w && i < nthreads; i++)
		sr_free_aligned(w[i].buf);
	sr_free(p.slots);
	sr_free(w);
	return rc;
}

/* Size of what fd holds: a regular file or a block device. */
static int fd_size(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		return sr_err_os(e == EBADF ? SITEREC_EINVAL : SITEREC_EIO, e,
		                 "hash scan: cannot stat fd %d", fd);
	}
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) != 0) {
			int e = errno;
			return sr_err_os(SITEREC_EIO, e, "hash scan: cannot get the size of block device fd %d", fd);
		}
	} else {
		return sr_err(SITEREC_EINVAL, "hash scan: fd %d is neither a regular file nor a block device",
		              fd);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_WRONLY)
		return sr_err(SITEREC_EINVAL, "hash scan: fd %d is open write-only", fd);
	return 0;
}

SITEREC_API int siterec_hashmap_scan_fd(siterec_hashmap *map, int fd,
                                        const siterec_hashscan_options *opts,
                                        siterec_extent_fn changed, void *changed_payload)
{
	struct scan s;
	siterec_hashscan_options o;
	int rc = scan_setup(&s, map, opts, &o, changed, changed_payload, FD_CHUNK);
	if (rc)
		return rc;
	if (fd < 0)
		return sr_err(SITEREC_EINVAL, "hash scan: invalid fd %d", fd);
	uint64_t size;
	rc = fd_size(fd, &size);
	if (rc)
		return rc;
	if (size < map->disk_size)
		return sr_err(SITEREC_ETRUNCATED,
		              "hash scan: fd %d holds %llu bytes, less than the map's disk size %llu",
		              fd, (unsigned long long)size, (unsigned long long)map->disk_size);

	uint32_t n = o.threads;
	if (n == 0) {
		int cpus = sr_cpu_count();
		n = cpus < DEFAULT_THREADS ? (uint32_t)cpus : DEFAULT_THREADS;
	}
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	if (n > s.nchunks)
		n = (uint32_t)s.nchunks;
	if (n > 1) {
		rc = scan_threads(&s, fd, n);
		if (rc != 1)
			return rc;
	}
	struct fd_reader r = { fd, sr_malloc_aligned((size_t)s.chunk_bytes) };
	if (!r.buf)
		return sr_err(SITEREC_ENOMEM, "out of memory for a hash scan buffer");
	rc = scan_serial(&s, chunk_from_fd, &r);
	sr_free_aligned(r.buf);
	return rc;
}

SITEREC_API int siterec_hashscan_options_init(siterec_hashscan_options *opts, unsigned int version)
{
	static const size_t sizes[] = { 0, sizeof(siterec_hashscan_options) };
	return sr_options_init(opts, version, sizes, SITEREC_HASHSCAN_OPTIONS_VERSION, "hash scan");
}

/* ---- diff ---- */

SITEREC_API int siterec_hashmap_diff(const siterec_hashmap *a, const siterec_hashmap *b,
                                     siterec_extent_fn changed, void *payload)
{
	if (!a || !b)
		return sr_err(SITEREC_EINVAL, "hash map diff: map %s is NULL", a ? "b" : "a");
	if (a->disk_size != b->disk_size || a->block_size != b->block_size)
		return sr_err(SITEREC_EINVAL,
		              "hash map diff: geometries differ (disk %llu/%llu bytes, block %u/%u)",
		              (unsigned long long)a->disk_size, (unsigned long long)b->disk_size,
		              a->block_size, b->block_size);
	struct runs r = { a, changed, payload, 0, 0, 0 };
	for (uint64_t base = 0; base < a->nblocks; base += 64) {
		unsigned int n = a->nblocks - base < 64 ? (unsigned int)(a->nblocks - base) : 64;
		uint64_t both = known_bits(a, base, n) & known_bits(b, base, n);
		for (unsigned int i = 0; i < n; i++) {
			uint64_t blk = base + i;
			if (((both >> i) & 1) &&
			    memcmp(a->hashes + blk * HASH_LEN, b->hashes + blk * HASH_LEN, HASH_LEN) == 0)
				continue;
			int rc = run_add(&r, blk, blk + 1);
			if (rc)
				return rc;
		}
	}
	return run_flush(&r);
}
