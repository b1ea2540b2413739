/*
 * Change tracking: a two-level dirty bitmap with lock-free marking, an epoch
 * switch, and crash-safe persistence (state file + activity record).
 *
 * Concurrency model (header rule 7: marks from any thread; every other call from
 * one thread at a time):
 *
 *  - A set is a directory of leaf pointers; leaves (4 KiB, 32768 blocks) are
 *    allocated on first use and published with a CAS. Bits are only ever set
 *    with atomic OR while a set is live, and only cleared once it is frozen and
 *    drained, so readers never see a bit disappear under a running mark.
 *
 *  - "Enter" protocol, used for the live set and for the activity generation:
 *      p = load(cur); in[p] += 1; if (load(cur) != p) { in[p] -= 1; retry }
 *    and the switcher does old = exchange(cur, new); wait until in[old] == 0.
 *    All of it is seq_cst: if a mark's re-check saw `old`, its increment came
 *    before the exchange, so the switcher sees it and waits; if the re-check saw
 *    `new`, the mark backs out before touching `old`. The counters are striped
 *    per thread (a thread always uses the same stripe for its inc and dec), so
 *    two writers on two cores do not bounce one cache line; waiting for every
 *    stripe to reach zero once is enough because a stripe's value is exactly the
 *    number of marks between their inc and dec on it.
 *
 *  - Only two set structs exist (live, and frozen-or-spare), and two activity
 *    generations; they are recycled, never freed while the tracker lives, so a
 *    delayed mark that still holds a stale pointer can at worst bump a counter
 *    and back out (or find the struct current again, which is then correct).
 *
 * Persistence: see tracker_load(), act_persist() and save_locked_out() below,
 * and doc/formats.md for the bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "siterec/tracker.h"

#define LEAF_SHIFT 15u                      /* 32768 blocks per leaf */
#define LEAF_BITS (1u << LEAF_SHIFT)
#define LEAF_WORDS (LEAF_BITS / 64u)        /* 512 */
#define LEAF_BYTES (LEAF_WORDS * 8u)        /* 4096 */
#define NSTRIPE 16u
#define CACHE_LINE 64

/* State file */
#define ST_MAGIC "SRTRKSTA"
#define ST_VERSION 1u
#define ST_HDR 64u
#define ST_FLAG_FROZEN 0x1u
#define ST_FLAG_UNTRUSTED 0x2u
#define ST_FLAGS_KNOWN (ST_FLAG_FROZEN | ST_FLAG_UNTRUSTED)
#define ST_REC_HDR 16u
#define ST_ENC_RUNS 1u
#define ST_ENC_BITMAP 2u

/* Activity record */
#define ACT_MAGIC "SRTRKACT"
#define ACT_VERSION 1u
#define ACT_HDR 64u
#define ACT_FLAG_CLEAN 0x1u
#define ACT_SLOT_ALIGN 4096u

typedef _Atomic uint64_t aword;

struct stripe {
	_Alignas(CACHE_LINE) atomic_long n;
};

struct tset {
	struct stripe in[NSTRIPE];   /* marks currently inside this set */
	_Atomic(aword *) *dir;       /* nleaves leaf pointers, NULL = clean leaf */
};

struct actgen {
	struct stripe in[NSTRIPE];   /* marks currently inside this generation */
	aword *bits;                 /* regions persisted for marks of this generation */
};

struct siterec_tracker {
	/* Read-mostly fields used by every mark: first cache line. The struct is
	 * page-aligned (sr_malloc_aligned) so the _Alignas below hold. */
	_Alignas(CACHE_LINE) _Atomic(struct tset *) live;
	_Atomic(struct actgen *) act_cur;    /* NULL for memory-only trackers */
	atomic_int closed;
	bool persistent;
	unsigned block_shift;
	unsigned region_shift;
	uint64_t disk_size;
	uint64_t nblocks;
	uint64_t nleaves;

	_Alignas(CACHE_LINE) atomic_size_t leaves;  /* leaves allocated, all sets */
	uint32_t block_size;
	uint32_t open_state;
	uint64_t epoch;              /* live epoch; the frozen one is epoch - 1 */
	struct tset *frozen;         /* control thread only */
	struct tset *spare;          /* cleared set used by the next switch */
	struct tset sets[2];

	/* persistence */
	char *state_path;
	char *act_path;
	uint64_t region_size;
	size_t act_words;            /* words of one activity bitmap */
	size_t slot_size;            /* bytes of one activity slot */
	uint8_t *slot_buf;           /* slot image being written (under act_lock) */
	int act_fd;
	bool act_lock_init;
	pthread_mutex_t act_lock;    /* serialises activity writes and the save flip */
	uint64_t act_seq;            /* generation of the newest slot written */
	struct actgen *act_pending;  /* old generation while a save runs (act_lock) */
	struct actgen gens[2];
};

/* ---- small helpers -------------------------------------------------------- */

static _Thread_local unsigned tl_stripe; /* 0 = not assigned yet, else index + 1 */
static atomic_uint stripe_next;

/* Spread threads round-robin over the stripes so that concurrent writers do
 * not share a counter cache line. */
static inline unsigned my_stripe(void)
{
	unsigned s = tl_stripe;
	if (SR_UNLIKELY(s == 0)) {
		s = atomic_fetch_add_explicit(&stripe_next, 1, memory_order_relaxed) % NSTRIPE + 1;
		tl_stripe = s;
	}
	return s - 1;
}

static void drain(struct stripe *in)
{
	for (unsigned i = 0; i < NSTRIPE; i++)
		while (atomic_load(&in[i].n) != 0)
			sched_yield();
}

static inline struct tset *enter_set(siterec_tracker *t, unsigned k)
{
	for (;;) {
		struct tset *s = atomic_load(&t->live);
		atomic_fetch_add(&s->in[k].n, 1);
		if (SR_LIKELY(atomic_load(&t->live) == s))
			return s;
		atomic_fetch_sub(&s->in[k].n, 1);
	}
}

static inline struct actgen *enter_gen(siterec_tracker *t, unsigned k)
{
	for (;;) {
		struct actgen *g = atomic_load(&t->act_cur);
		atomic_fetch_add(&g->in[k].n, 1);
		if (SR_LIKELY(atomic_load(&t->act_cur) == g))
			return g;
		atomic_fetch_sub(&g->in[k].n, 1);
	}
}

static inline void or_word(aword *w, uint64_t m)
{
	/* Plain load first: re-marking hot blocks then costs no locked instruction
	 * and no cache-line ownership transfer. */
	if ((atomic_load_explicit(w, memory_order_relaxed) & m) != m)
		atomic_fetch_or_explicit(w, m, memory_order_relaxed);
}

static inline bool test_bit(aword *bits, uint64_t i)
{
	return (atomic_load_explicit(&bits[i >> 6], memory_order_acquire) >> (i & 63)) & 1;
}

/* Bytes of the blocks [b, b + n) clipped to the disk end. */
static inline uint64_t blocks_end_bytes(const siterec_tracker *t, uint64_t end_blk)
{
	return end_blk >= t->nblocks ? t->disk_size : end_blk << t->block_shift;
}

/* ---- sets ----------------------------------------------------------------- */

static aword *leaf_get(siterec_tracker *t, struct tset *s, uint64_t li)
{
	aword *leaf = atomic_load_explicit(&s->dir[li], memory_order_acquire);
	if (SR_LIKELY(leaf != NULL))
		return leaf;
	aword *fresh = sr_calloc(LEAF_WORDS, sizeof(aword));
	if (!fresh)
		return NULL;
	aword *expected = NULL;
	if (atomic_compare_exchange_strong_explicit(&s->dir[li], &expected, fresh,
	                                            memory_order_acq_rel, memory_order_acquire)) {
		atomic_fetch_add_explicit(&t->leaves, 1, memory_order_relaxed);
		return fresh;
	}
	sr_free(fresh); /* another thread published this leaf first */
	return expected;
}

/* Set the bits of blocks [b0, b1] (inclusive) in set s. */
static int set_range(siterec_tracker *t, struct tset *s, uint64_t b0, uint64_t b1)
{
	for (uint64_t li = b0 >> LEAF_SHIFT; li <= b1 >> LEAF_SHIFT; li++) {
		aword *leaf = leaf_get(t, s, li);
		if (!leaf)
			return sr_err(SITEREC_ENOMEM, "out of memory allocating a tracker leaf");
		uint64_t base = li << LEAF_SHIFT;
		unsigned lo = b0 > base ? (unsigned)(b0 - base) : 0;
		unsigned hi = b1 - base < LEAF_BITS ? (unsigned)(b1 - base) : LEAF_BITS - 1;
		unsigned wlo = lo >> 6, whi = hi >> 6;
		for (unsigned w = wlo; w <= whi; w++) {
			uint64_t m = ~0ull;
			if (w == wlo)
				m &= ~0ull << (lo & 63);
			if (w == whi)
				m &= ~0ull >> (63 - (hi & 63));
			or_word(&leaf[w], m);
		}
	}
	return 0;
}

static void set_clear(siterec_tracker *t, struct tset *s)
{
	for (uint64_t li = 0; li < t->nleaves; li++) {
		aword *leaf = atomic_load_explicit(&s->dir[li], memory_order_relaxed);
		if (leaf) {
			atomic_store_explicit(&s->dir[li], NULL, memory_order_relaxed);
			sr_free(leaf);
			atomic_fetch_sub_explicit(&t->leaves, 1, memory_order_relaxed);
		}
	}
}

static uint64_t set_bytes(const siterec_tracker *t, struct tset *s)
{
	uint64_t n = 0;
	for (uint64_t li = 0; li < t->nleaves; li++) {
		aword *leaf = atomic_load_explicit(&s->dir[li], memory_order_acquire);
		if (!leaf)
			continue;
		for (unsigned w = 0; w < LEAF_WORDS; w++)
			n += (uint64_t)__builtin_popcountll(
				atomic_load_explicit(&leaf[w], memory_order_relaxed));
	}
	if (n == 0)
		return 0;
	uint64_t bytes = n << t->block_shift;
	/* the last block may stick out past the disk end */
	uint64_t last = t->nblocks - 1;
	uint64_t tail = t->disk_size & (t->block_size - 1);
	if (tail) {
		aword *leaf = atomic_load_explicit(&s->dir[last >> LEAF_SHIFT], memory_order_acquire);
		if (leaf && test_bit(leaf, last & (LEAF_BITS - 1)))
			bytes -= t->block_size - tail;
	}
	return bytes;
}

/* Copy a leaf (which may be changing under concurrent marks) into w. */
static void leaf_snapshot(aword *leaf, uint64_t *w)
{
	for (unsigned i = 0; i < LEAF_WORDS; i++)
		w[i] = atomic_load_explicit(&leaf[i], memory_order_relaxed);
}

/* Runs of set bits, in order. Runs are reported per word; consumers merge
 * adjacent ones (across words and leaves) with a run accumulator. */
typedef int (*run_fn)(uint64_t start, uint64_t n, void *ctx);

static int words_runs(const uint64_t *w, unsigned nwords, uint64_t base, run_fn fn, void *ctx)
{
	for (unsigned i = 0; i < nwords; i++) {
		uint64_t v = w[i];
		while (v) {
			unsigned s = (unsigned)__builtin_ctzll(v);
			uint64_t x = v >> s;
			unsigned n = ~x == 0 ? 64 - s : (unsigned)__builtin_ctzll(~x);
			int rc = fn(base + (uint64_t)i * 64 + s, n, ctx);
			if (rc)
				return rc;
			if (s + n >= 64)
				break;
			v &= ~0ull << (s + n);
		}
	}
	return 0;
}

struct run_acc {
	uint64_t start, end;
	int have;
};

/* Merge (start, n) into acc; when it does not touch acc, hand acc to flush first. */
static int acc_add(struct run_acc *acc, uint64_t start, uint64_t n,
                   int (*flush)(struct run_acc *, void *), void *ctx)
{
	if (acc->have && acc->end == start) {
		acc->end += n;
		return 0;
	}
	if (acc->have) {
		int rc = flush(acc, ctx);
		if (rc)
			return rc;
	}
	acc->start = start;
	acc->end = start + n;
	acc->have = 1;
	return 0;
}

struct foreach_ctx {
	siterec_tracker *t;
	siterec_extent_fn cb;
	void *payload;
	struct run_acc acc;
};

static int foreach_flush(struct run_acc *acc, void *p)
{
	struct foreach_ctx *c = p;
	uint64_t off = acc->start << c->t->block_shift;
	uint64_t end = blocks_end_bytes(c->t, acc->end);
	acc->have = 0;
	return c->cb(off, end - off, c->payload);
}

static int foreach_run(uint64_t start, uint64_t n, void *p)
{
	struct foreach_ctx *c = p;
	return acc_add(&c->acc, start, n, foreach_flush, c);
}

static int set_foreach(siterec_tracker *t, struct tset *s, siterec_extent_fn cb, void *payload)
{
	struct foreach_ctx c = { t, cb, payload, { 0, 0, 0 } };
	uint64_t w[LEAF_WORDS];
	int rc = 0;
	for (uint64_t li = 0; li < t->nleaves && rc == 0; li++) {
		aword *leaf = atomic_load_explicit(&s->dir[li], memory_order_acquire);
		if (!leaf)
			continue;
		leaf_snapshot(leaf, w);
		rc = words_runs(w, LEAF_WORDS, li << LEAF_SHIFT, foreach_run, &c);
	}
	if (rc == 0 && c.acc.have)
		rc = foreach_flush(&c.acc, &c);
	if (rc)
		return sr_err_callback(rc, "extent");
	return 0;
}

/* ---- options -------------------------------------------------------------- */

static const size_t opt_sizes[] = { 0, sizeof(siterec_tracker_options) };
static const size_t stats_sizes[] = { 0, sizeof(siterec_tracker_stats) };

SITEREC_API int siterec_tracker_options_init(siterec_tracker_options *opts, unsigned int version)
{
	/* zero means "default" for every field */
	return sr_options_init(opts, version, opt_sizes, SITEREC_TRACKER_OPTIONS_VERSION, "tracker");
}

static unsigned log2u64(uint64_t v)
{
	return (unsigned)__builtin_ctzll(v);
}

/* ---- state file ----------------------------------------------------------- */

struct obuf {
	uint8_t *p;
	size_t len, cap;
};

static int obuf_reserve(struct obuf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return sr_err(SITEREC_ENOMEM, "tracker state too large");
		cap *= 2;
	}
	uint8_t *p = sr_realloc(b->p, cap);
	if (!p)
		return sr_err(SITEREC_ENOMEM, "out of memory encoding tracker state");
	b->p = p;
	b->cap = cap;
	return 0;
}

struct enc_ctx {
	uint8_t *out;    /* run list destination (4 bytes per run) */
	uint64_t base;
	struct run_acc acc;
};

static int enc_flush(struct run_acc *acc, void *p)
{
	struct enc_ctx *c = p;
	sr_put_le16(c->out, (uint16_t)(acc->start - c->base));
	/* a full leaf is one run of 32768, which still fits 16 bits */
	sr_put_le16(c->out + 2, (uint16_t)(acc->end - acc->start));
	c->out += 4;
	acc->have = 0;
	return 0;
}

static int enc_run(uint64_t start, uint64_t n, void *p)
{
	struct enc_ctx *c = p;
	return acc_add(&c->acc, start, n, enc_flush, c);
}

/* Append the set's leaf records; *count receives their number. Each leaf is a
 * run list when that is smaller than its bitmap, so sparse sets stay small and
 * the worst case is bounded by the bitmap itself. */
static int encode_set(siterec_tracker *t, struct tset *s, struct obuf *b, uint64_t *count)
{
	uint64_t w[LEAF_WORDS];
	*count = 0;
	for (uint64_t li = 0; li < t->nleaves; li++) {
		aword *leaf = atomic_load_explicit(&s->dir[li], memory_order_acquire);
		if (!leaf)
			continue;
		leaf_snapshot(leaf, w);
		uint64_t runs = 0, carry = 0;
		for (unsigned i = 0; i < LEAF_WORDS; i++) {
			runs += (uint64_t)__builtin_popcountll(w[i] & ~((w[i] << 1) | carry));
			carry = w[i] >> 63;
		}
		if (runs == 0)
			continue;
		bool as_runs = runs * 4 < LEAF_BYTES;
		size_t payload = as_runs ? (size_t)runs * 4 : LEAF_BYTES;
		int rc = obuf_reserve(b, ST_REC_HDR + payload);
		if (rc)
			return rc;
		uint8_t *r = b->p + b->len;
		sr_put_le64(r, li);
		sr_put_le32(r + 8, as_runs ? ST_ENC_RUNS : ST_ENC_BITMAP);
		sr_put_le32(r + 12, as_runs ? (uint32_t)runs : LEAF_BYTES);
		if (as_runs) {
			struct enc_ctx c = { r + ST_REC_HDR, li << LEAF_SHIFT, { 0, 0, 0 } };
			words_runs(w, LEAF_WORDS, li << LEAF_SHIFT, enc_run, &c);
			if (c.acc.have)
				enc_flush(&c.acc, &c);
		} else {
			for (unsigned i = 0; i < LEAF_WORDS; i++)
				sr_put_le64(r + ST_REC_HDR + i * 8, w[i]);
		}
		b->len += ST_REC_HDR + payload;
		(*count)++;
	}
	return 0;
}

static int state_write(siterec_tracker *t, bool untrusted)
{
	struct obuf b = { NULL, 0, 0 };
	int rc = obuf_reserve(&b, ST_HDR);
	if (rc)
		return rc;
	b.len = ST_HDR;
	uint64_t nlive = 0, nfrozen = 0;
	rc = encode_set(t, atomic_load(&t->live), &b, &nlive);
	if (rc == 0 && t->frozen)
		rc = encode_set(t, t->frozen, &b, &nfrozen);
	if (rc == 0)
		rc = obuf_reserve(&b, 8);
	if (rc) {
		sr_free(b.p);
		return rc;
	}
	uint8_t *h = b.p;
	memset(h, 0, ST_HDR);
	memcpy(h, ST_MAGIC, 8);
	sr_put_le32(h + 8, ST_VERSION);
	sr_put_le32(h + 12, ST_HDR);
	sr_put_le64(h + 16, t->disk_size);
	sr_put_le32(h + 24, t->block_size);
	sr_put_le32(h + 28, (t->frozen ? ST_FLAG_FROZEN : 0) | (untrusted ? ST_FLAG_UNTRUSTED : 0));
	sr_put_le64(h + 32, t->epoch);
	sr_put_le64(h + 40, nlive);
	sr_put_le64(h + 48, nfrozen);
	sr_put_le64(h + 56, sr_hash64(h, 56));
	sr_put_le64(b.p + b.len, sr_hash64(b.p, b.len));
	b.len += 8;
	rc = sr_file_replace(t->state_path, b.p, b.len);
	sr_free(b.p);
	return rc;
}

/* Outcome of looking at one persisted file. Negative values are errors to return. */
enum { FS_MISSING = 0, FS_BAD = 1, FS_GOOD = 2 };

struct st_info {
	uint32_t flags;
	uint64_t epoch;
	uint64_t nlive, nfrozen;
};

static int state_check(siterec_tracker *t, const uint8_t *d, size_t len, struct st_info *info)
{
	if (len < ST_HDR + 8 || memcmp(d, ST_MAGIC, 8) != 0)
		return FS_BAD;
	if (sr_get_le64(d + 56) != sr_hash64(d, 56))
		return FS_BAD;
	uint32_t ver = sr_get_le32(d + 8);
	if (ver != ST_VERSION)
		return sr_err(SITEREC_EVERSION, "tracker state file %s has format version %u (this "
		              "library reads %u)", t->state_path, ver, ST_VERSION);
	info->flags = sr_get_le32(d + 28);
	if (info->flags & ~ST_FLAGS_KNOWN)
		return sr_err(SITEREC_EVERSION, "tracker state file %s uses unknown flags 0x%x",
		              t->state_path, info->flags & ~ST_FLAGS_KNOWN);
	uint64_t disk = sr_get_le64(d + 16);
	uint32_t bs = sr_get_le32(d + 24);
	if (disk != t->disk_size || bs != t->block_size)
		return sr_err(SITEREC_EINVAL, "tracker state file %s is for a disk of %llu bytes "
		              "with %u-byte blocks, not %llu bytes with %u-byte blocks", t->state_path,
		              (unsigned long long)disk, bs, (unsigned long long)t->disk_size,
		              t->block_size);
	if (sr_get_le32(d + 12) != ST_HDR)
		return FS_BAD;
	if (sr_get_le64(d + len - 8) != sr_hash64(d, len - 8))
		return FS_BAD;
	info->epoch = sr_get_le64(d + 32);
	info->nlive = sr_get_le64(d + 40);
	info->nfrozen = sr_get_le64(d + 48);
	if (info->epoch < 1 || ((info->flags & ST_FLAG_FROZEN) && info->epoch < 2) ||
	    (!(info->flags & ST_FLAG_FROZEN) && info->nfrozen))
		return FS_BAD;
	return FS_GOOD;
}

/* Decode count leaf records at *pos into set s. FS_BAD on anything malformed. */
static int decode_set(siterec_tracker *t, struct tset *s, const uint8_t *d, size_t end,
                      size_t *pos, uint64_t count)
{
	uint64_t prev = 0;
	for (uint64_t k = 0; k < count; k++) {
		if (end - *pos < ST_REC_HDR)
			return FS_BAD;
		const uint8_t *r = d + *pos;
		uint64_t li = sr_get_le64(r);
		uint32_t enc = sr_get_le32(r + 8), n = sr_get_le32(r + 12);
		if (li >= t->nleaves || (k > 0 && li <= prev))
			return FS_BAD;
		prev = li;
		uint64_t base = li << LEAF_SHIFT;
		uint64_t limit = t->nblocks - base < LEAF_BITS ? t->nblocks - base : LEAF_BITS;
		size_t payload;
		if (enc == ST_ENC_RUNS) {
			if (n == 0 || n > LEAF_BITS / 2)
				return FS_BAD;
			payload = (size_t)n * 4;
		} else if (enc == ST_ENC_BITMAP) {
			if (n != LEAF_BYTES)
				return FS_BAD;
			payload = LEAF_BYTES;
		} else {
			return FS_BAD;
		}
		if (end - *pos - ST_REC_HDR < payload)
			return FS_BAD;
		const uint8_t *p = r + ST_REC_HDR;
		aword *leaf = leaf_get(t, s, li);
		if (!leaf)
			return sr_err(SITEREC_ENOMEM, "out of memory loading tracker state");
		if (enc == ST_ENC_RUNS) {
			uint64_t last_end = 0;
			for (uint32_t i = 0; i < n; i++) {
				uint64_t st = sr_get_le16(p + 4 * i), len = sr_get_le16(p + 4 * i + 2);
				if (len == 0 || st < last_end || st + len > limit)
					return FS_BAD;
				last_end = st + len;
				if (set_range(t, s, base + st, base + st + len - 1))
					return SITEREC_ENOMEM;
			}
		} else {
			for (unsigned i = 0; i < LEAF_WORDS; i++) {
				uint64_t v = sr_get_le64(p + 8 * i);
				/* no bit may name a block past the disk end */
				uint64_t first = (uint64_t)i * 64;
				if (first >= limit ? v != 0 : (limit - first < 64 && (v >> (limit - first))))
					return FS_BAD;
				atomic_store_explicit(&leaf[i], v, memory_order_relaxed);
			}
		}
		*pos += ST_REC_HDR + payload;
	}
	return FS_GOOD;
}

/* ---- activity record ------------------------------------------------------ */

static size_t act_bitmap_words(uint64_t disk_size, uint64_t region)
{
	uint64_t nreg = disk_size / region + (disk_size % region != 0);
	return (size_t)((nreg + 63) / 64);
}

static size_t act_slot_size(size_t words)
{
	size_t n = ACT_HDR + words * 8;
	return (n + ACT_SLOT_ALIGN - 1) & ~(size_t)(ACT_SLOT_ALIGN - 1);
}

/* Fill t->slot_buf: generation seq, flags, bitmap = a | b | regions [r0, r1]
 * (a, b may be NULL; r0 > r1 adds nothing). */
static void act_encode(siterec_tracker *t, uint64_t seq, uint32_t flags, struct actgen *a,
                       struct actgen *b, uint64_t r0, uint64_t r1)
{
	uint8_t *s = t->slot_buf;
	uint8_t *bm = s + ACT_HDR;
	memset(s, 0, t->slot_size);
	for (size_t i = 0; i < t->act_words; i++) {
		uint64_t v = 0;
		if (a)
			v |= atomic_load_explicit(&a->bits[i], memory_order_relaxed);
		if (b)
			v |= atomic_load_explicit(&b->bits[i], memory_order_relaxed);
		sr_put_le64(bm + 8 * i, v);
	}
	for (uint64_t r = r0; r <= r1 && r0 <= r1; r++)
		bm[r >> 3] |= (uint8_t)(1u << (r & 7));
	memcpy(s, ACT_MAGIC, 8);
	sr_put_le32(s + 8, ACT_VERSION);
	sr_put_le32(s + 12, ACT_HDR);
	sr_put_le64(s + 16, t->disk_size);
	sr_put_le64(s + 24, t->region_size);
	sr_put_le64(s + 32, seq);
	sr_put_le32(s + 40, flags);
	sr_put_le32(s + 44, (uint32_t)(t->act_words * 8));
	sr_put_le64(s + 48, sr_hash64(bm, t->act_words * 8));
	sr_put_le64(s + 56, sr_hash64(s, 56));
}

/* Write the encoded slot as generation act_seq + 1 into the slot that does not
 * hold the newest valid generation, and sync it: a torn write leaves the other
 * slot, which a reader then picks. Caller holds act_lock. */
static int act_commit_slot(siterec_tracker *t)
{
	uint64_t seq = t->act_seq + 1;
	int rc = sr_pwrite_full(t->act_fd, t->slot_buf, t->slot_size, (seq & 1) * t->slot_size);
	if (rc)
		return rc;
	if (fdatasync(t->act_fd) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "fdatasync of %s failed", t->act_path);
	}
	t->act_seq = seq;
	return 0;
}

struct act_info {
	uint64_t seq;
	uint64_t region;
	uint32_t flags;
	const uint8_t *bitmap;
	size_t words;
};

/* Validate one slot. FS_GOOD, FS_BAD, or an error for a readable but foreign header. */
static int act_slot_check(siterec_tracker *t, const uint8_t *s, size_t slot, struct act_info *ai)
{
	if (memcmp(s, ACT_MAGIC, 8) != 0 || sr_get_le64(s + 56) != sr_hash64(s, 56))
		return FS_BAD;
	uint32_t ver = sr_get_le32(s + 8);
	if (ver != ACT_VERSION)
		return sr_err(SITEREC_EVERSION, "activity record %s has format version %u (this "
		              "library reads %u)", t->act_path, ver, ACT_VERSION);
	uint64_t disk = sr_get_le64(s + 16);
	if (disk != t->disk_size)
		return sr_err(SITEREC_EINVAL, "activity record %s is for a disk of %llu bytes, not %llu",
		              t->act_path, (unsigned long long)disk,
		              (unsigned long long)t->disk_size);
	uint64_t region = sr_get_le64(s + 24);
	uint32_t bmbytes = sr_get_le32(s + 44);
	if (sr_get_le32(s + 12) != ACT_HDR || !sr_is_pow2(region) || region < SITEREC_TRACKER_BLOCK_MIN)
		return FS_BAD;
	size_t words = act_bitmap_words(disk, region);
	if ((uint64_t)bmbytes != (uint64_t)words * 8 || ACT_HDR + (size_t)bmbytes > slot)
		return FS_BAD;
	if (sr_get_le64(s + 48) != sr_hash64(s + ACT_HDR, bmbytes))
		return FS_BAD;
	ai->seq = sr_get_le64(s + 32);
	ai->region = region;
	ai->flags = sr_get_le32(s + 40);
	ai->bitmap = s + ACT_HDR;
	ai->words = words;
	return FS_GOOD;
}

static int act_check(siterec_tracker *t, const uint8_t *d, size_t len, struct act_info *ai)
{
	if (len == 0 || len % (2 * ACT_SLOT_ALIGN) != 0)
		return FS_BAD;
	size_t slot = len / 2;
	struct act_info s[2];
	int ok[2];
	for (int i = 0; i < 2; i++) {
		ok[i] = act_slot_check(t, d + (size_t)i * slot, slot, &s[i]);
		if (ok[i] < 0)
			return ok[i];
	}
	/* the newest valid generation wins; the other slot is the one a torn write
	 * may have hit */
	int pick = -1;
	for (int i = 0; i < 2; i++)
		if (ok[i] == FS_GOOD && (pick < 0 || s[i].seq > s[pick].seq))
			pick = i;
	if (pick < 0)
		return FS_BAD;
	*ai = s[pick];
	return FS_GOOD;
}

/* Create the activity record afresh (unclean, no region) and keep it open. */
static int act_create(siterec_tracker *t)
{
	uint64_t seq = t->act_seq + 1;
	uint8_t *file = sr_calloc(2, t->slot_size);
	if (!file)
		return sr_err(SITEREC_ENOMEM, "out of memory creating the activity record");
	act_encode(t, seq, 0, NULL, NULL, 1, 0);
	memcpy(file + (seq & 1) * t->slot_size, t->slot_buf, t->slot_size);
	int rc = sr_file_replace(t->act_path, file, 2 * t->slot_size);
	sr_free(file);
	if (rc)
		return rc;
	t->act_seq = seq;
	t->act_fd = open(t->act_path, O_RDWR | O_CLOEXEC);
	if (t->act_fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot open %s", t->act_path);
	}
	return 0;
}

/* Slow path of a mark: make regions [r0, r1] durable in the activity record
 * before the mark may return (the caller writes the disk after that). */
static int act_persist(siterec_tracker *t, struct actgen *g, uint64_t r0, uint64_t r1)
{
	pthread_mutex_lock(&t->act_lock);
	struct actgen *cur = atomic_load(&t->act_cur), *pend = t->act_pending;
	/* A region is already durable when its bit is set in the current or the
	 * pending generation: both are in the newest slot until a save has made
	 * the pending one redundant. */
	bool need = false;
	for (uint64_t r = r0; r <= r1 && !need; r++)
		need = !test_bit(cur->bits, r) && !(pend && test_bit(pend->bits, r));
	int rc = 0;
	if (need) {
		act_encode(t, t->act_seq + 1, 0, cur, pend, r0, r1);
		rc = act_commit_slot(t);
	}
	if (rc == 0) /* only now: a set bit means "durable" to the lock-free check */
		for (uint64_t r = r0; r <= r1; r++)
			atomic_fetch_or_explicit(&g->bits[r >> 6], 1ull << (r & 63),
			                         memory_order_release);
	pthread_mutex_unlock(&t->act_lock);
	return rc;
}

/* ---- open / free ---------------------------------------------------------- */

static int tracker_alloc(siterec_tracker *t, bool persistent)
{
	for (int i = 0; i < 2; i++) {
		t->sets[i].dir = sr_calloc((size_t)t->nleaves, sizeof(*t->sets[i].dir));
		if (!t->sets[i].dir)
			return sr_err(SITEREC_ENOMEM, "out of memory for a tracker directory of %llu "
			              "leaves", (unsigned long long)t->nleaves);
	}
	if (!persistent)
		return 0;
	for (int i = 0; i < 2; i++) {
		t->gens[i].bits = sr_calloc(t->act_words, sizeof(aword));
		if (!t->gens[i].bits)
			return sr_err(SITEREC_ENOMEM, "out of memory for the activity bitmap");
	}
	t->slot_buf = sr_malloc(t->slot_size);
	if (!t->slot_buf)
		return sr_err(SITEREC_ENOMEM, "out of memory for the activity bitmap");
	return 0;
}

static char *path_cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = sr_malloc(la + lb + 1);
	if (p) {
		memcpy(p, a, la);
		memcpy(p + la, b, lb + 1);
	}
	return p;
}

/* Read a persisted file: FS_MISSING, FS_BAD (unreadable) with *d NULL, or FS_GOOD with
 * the bytes; errors that are not about the file (ENOMEM) are returned. */
static int read_file(const char *path, size_t max_len, uint8_t **d, size_t *len)
{
	*d = NULL;
	*len = 0;
	struct stat st;
	if (stat(path, &st) != 0) { /* checked first so a missing file sets no error */
		if (errno == ENOENT)
			return FS_MISSING;
		/* unreadable is not damaged: fail the open and leave the files alone,
		 * rather than declare the state lost and overwrite it */
		int e = errno;
		return sr_err_os(SITEREC_EIO, e, "cannot read tracker state %s", path);
	}
	void *p;
	int rc = sr_file_read_all(path, max_len, &p, len);
	if (rc == SITEREC_ENOTFOUND)
		return FS_MISSING;
	if (rc == SITEREC_ECORRUPT || rc == SITEREC_ETRUNCATED) /* too long or shrinking: damaged */
		return FS_BAD;
	if (rc)
		return rc; /* ENOMEM, EIO (permissions, media): the state may be fine */
	*d = p;
	return FS_GOOD;
}

static size_t sat_mul(uint64_t a, uint64_t b)
{
	if (a && b > SIZE_MAX / a)
		return SIZE_MAX;
	return (size_t)(a * b);
}

/* Add the blocks of every region set in an activity bitmap to the live set. */
static int add_regions(siterec_tracker *t, const struct act_info *ai)
{
	unsigned rshift = log2u64(ai->region);
	uint64_t nreg = t->disk_size / ai->region + (t->disk_size % ai->region != 0);
	struct tset *live = atomic_load(&t->live);
	for (size_t i = 0; i < ai->words; i++) {
		uint64_t v = sr_get_le64(ai->bitmap + 8 * i);
		while (v) {
			uint64_t r = (uint64_t)i * 64 + (unsigned)__builtin_ctzll(v);
			v &= v - 1;
			if (r >= nreg)
				break;
			uint64_t b0 = (r << rshift) >> t->block_shift;
			/* the block holding the region's last byte: a region smaller than a
			 * block (a foreign but well-formed record) still marks its block */
			uint64_t b1 = r + 1 >= nreg ? t->nblocks - 1
			                            : ((((r + 1) << rshift) - 1) >> t->block_shift);
			if (b1 > t->nblocks - 1)
				b1 = t->nblocks - 1;
			int rc = set_range(t, live, b0, b1);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Load the earlier state (see siterec_tracker_state), then leave the files so
 * that a crash from now on is detected: state file first (it must hold what the
 * activity record is about to forget), then a fresh unclean activity record. */
static int tracker_load(siterec_tracker *t)
{
	uint8_t *sd = NULL, *ad = NULL;
	size_t slen = 0, alen = 0;
	struct st_info si = { 0, 1, 0, 0 };
	struct act_info ai = { 0, 0, 0, NULL, 0 };
	size_t smax = sat_mul(2 * t->nleaves, ST_REC_HDR + LEAF_BYTES);
	smax = smax > SIZE_MAX - ST_HDR - 8 ? SIZE_MAX : smax + ST_HDR + 8;
	size_t amax = sat_mul(2, act_slot_size(act_bitmap_words(t->disk_size,
	                                                        SITEREC_TRACKER_BLOCK_MIN)));
	int sres = read_file(t->state_path, smax, &sd, &slen);
	int ares = sres < 0 ? sres : read_file(t->act_path, amax, &ad, &alen);
	int rc = 0;
	if (sres < 0 || ares < 0) {
		rc = sres < 0 ? sres : ares;
		goto out;
	}
	if (sres == FS_GOOD)
		sres = state_check(t, sd, slen, &si);
	if (sres >= 0 && ares == FS_GOOD)
		ares = act_check(t, ad, alen, &ai);
	if (sres < 0 || ares < 0) { /* foreign geometry or format: change nothing */
		rc = sres < 0 ? sres : ares;
		goto out;
	}

	if (sres == FS_MISSING && ares == FS_MISSING)
		t->open_state = SITEREC_TRACKER_FRESH;
	else if (sres != FS_GOOD || ares != FS_GOOD || (si.flags & ST_FLAG_UNTRUSTED))
		t->open_state = SITEREC_TRACKER_UNTRUSTED;
	else
		t->open_state = (ai.flags & ACT_FLAG_CLEAN) ? SITEREC_TRACKER_CLEAN
		                                             : SITEREC_TRACKER_RECOVERED;
	if (ares == FS_GOOD)
		t->act_seq = ai.seq;

	if (t->open_state == SITEREC_TRACKER_CLEAN || t->open_state == SITEREC_TRACKER_RECOVERED) {
		size_t pos = ST_HDR, end = slen - 8;
		bool frozen = si.flags & ST_FLAG_FROZEN;
		int d = decode_set(t, &t->sets[0], sd, end, &pos, si.nlive);
		if (d == FS_GOOD)
			d = decode_set(t, &t->sets[1], sd, end, &pos, si.nfrozen);
		if (d == FS_GOOD && pos != end)
			d = FS_BAD;
		if (d < 0) {
			rc = d;
			goto out;
		}
		if (d == FS_BAD) { /* checksummed but malformed: trust nothing */
			set_clear(t, &t->sets[0]);
			set_clear(t, &t->sets[1]);
			t->open_state = SITEREC_TRACKER_UNTRUSTED;
		} else {
			t->epoch = si.epoch;
			if (frozen) {
				t->frozen = &t->sets[1];
				t->spare = NULL;
			}
		}
	}
	if (t->open_state == SITEREC_TRACKER_RECOVERED) {
		rc = add_regions(t, &ai);
		if (rc)
			goto out;
	}
	if (t->open_state == SITEREC_TRACKER_UNTRUSTED && sres == FS_GOOD)
		t->epoch = si.epoch >= 1 ? si.epoch : 1;

	/* CLEAN: the state file is exactly what we loaded; everything else gets a
	 * new one (UNTRUSTED keeps saying so until a save, even across a crash). */
	if (t->open_state != SITEREC_TRACKER_CLEAN)
		rc = state_write(t, t->open_state == SITEREC_TRACKER_UNTRUSTED);
	if (rc == 0)
		rc = act_create(t);
out:
	sr_free(sd);
	sr_free(ad);
	return rc;
}

SITEREC_API void siterec_tracker_free(siterec_tracker *t)
{
	if (!t)
		return;
	for (int i = 0; i < 2; i++) {
		if (t->sets[i].dir) {
			set_clear(t, &t->sets[i]);
			sr_free(t->sets[i].dir);
		}
		sr_free(t->gens[i].bits);
	}
	if (t->act_fd >= 0)
		close(t->act_fd);
	if (t->act_lock_init)
		pthread_mutex_destroy(&t->act_lock);
	sr_free(t->slot_buf);
	sr_free(t->state_path);
	sr_free(t->act_path);
	sr_free_aligned(t);
}

SITEREC_API int siterec_tracker_open(siterec_tracker **out, uint64_t disk_size,
                                     const siterec_tracker_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "tracker_open: out is NULL");
	*out = NULL;
	siterec_tracker_options o;
	memset(&o, 0, sizeof(o));
	o.version = SITEREC_TRACKER_OPTIONS_VERSION;
	int rc = sr_options_copy(&o, opts, opt_sizes, SITEREC_TRACKER_OPTIONS_VERSION, "tracker");
	if (rc)
		return rc;
	if (disk_size == 0)
		return sr_err(SITEREC_EINVAL, "tracker_open: disk size is 0");
	if (o.flags != 0)
		return sr_err(SITEREC_EINVAL, "tracker_open: unknown flags 0x%x", o.flags);
	uint32_t bs = o.block_size ? o.block_size : SITEREC_TRACKER_BLOCK_DEFAULT;
	if (!sr_is_pow2(bs) || bs < SITEREC_TRACKER_BLOCK_MIN || bs > SITEREC_TRACKER_BLOCK_MAX)
		return sr_err(SITEREC_EINVAL, "tracker_open: block size %u is not a power of two "
		              "in %u..%u", bs, SITEREC_TRACKER_BLOCK_MIN, SITEREC_TRACKER_BLOCK_MAX);
	uint64_t region = o.activity_region ? o.activity_region : SITEREC_TRACKER_ACTIVITY_DEFAULT;
	if (!sr_is_pow2(region) || region < bs)
		return sr_err(SITEREC_EINVAL, "tracker_open: activity region %llu is not a power of "
		              "two >= the block size %u", (unsigned long long)region, bs);
	if (o.state_path && !o.state_path[0])
		return sr_err(SITEREC_EINVAL, "tracker_open: state_path is empty");

	siterec_tracker *t = sr_malloc_aligned(sizeof(*t));
	if (!t)
		return sr_err(SITEREC_ENOMEM, "out of memory for a tracker");
	memset(t, 0, sizeof(*t));
	t->act_fd = -1;
	t->disk_size = disk_size;
	t->block_size = bs;
	t->block_shift = log2u64(bs);
	t->nblocks = (disk_size >> t->block_shift) + ((disk_size & (bs - 1)) != 0);
	t->nleaves = (t->nblocks + LEAF_BITS - 1) >> LEAF_SHIFT;
	t->epoch = 1;
	t->open_state = SITEREC_TRACKER_FRESH;
	t->region_size = region;
	t->region_shift = log2u64(region);
	bool persistent = o.state_path != NULL;
	t->persistent = persistent;
	if (persistent) {
		t->act_words = act_bitmap_words(disk_size, region);
		t->slot_size = act_slot_size(t->act_words);
		if (t->act_words > UINT32_MAX / 8) { /* the record stores its size in 32 bits */
			sr_free_aligned(t);
			return sr_err(SITEREC_EINVAL, "tracker_open: activity region %llu is too small "
			              "for a disk of %llu bytes", (unsigned long long)region,
			              (unsigned long long)disk_size);
		}
	}
	if (t->nleaves > SIZE_MAX / sizeof(void *)) {
		sr_free_aligned(t);
		return sr_err(SITEREC_ENOMEM, "tracker directory for %llu bytes does not fit in memory",
		              (unsigned long long)disk_size);
	}
	rc = tracker_alloc(t, persistent);
	if (rc == 0 && persistent) {
		t->state_path = sr_strdup(o.state_path);
		t->act_path = path_cat(o.state_path, ".act");
		if (!t->state_path || !t->act_path)
			rc = sr_err(SITEREC_ENOMEM, "out of memory");
		else if (pthread_mutex_init(&t->act_lock, NULL) != 0)
			rc = sr_err(SITEREC_ENOMEM, "cannot create the activity mutex");
		else
			t->act_lock_init = true;
	}
	atomic_store(&t->live, &t->sets[0]);
	t->spare = &t->sets[1];
	if (rc == 0 && persistent) {
		atomic_store(&t->act_cur, &t->gens[0]);
		rc = tracker_load(t);
	}
	if (rc) {
		siterec_tracker_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* ---- marking -------------------------------------------------------------- */

/* Mark blocks [b0, b1]; the byte range [off, last] decides the regions. */
static int mark_blocks(siterec_tracker *t, uint64_t b0, uint64_t b1, uint64_t off, uint64_t last)
{
	unsigned k = my_stripe();
	struct actgen *g = NULL;
	int rc = 0;
	if (t->persistent) {
		/* Write-ahead: the regions are durable before the bits are set (and so
		 * before the caller's write). Marks of this generation are waited for by
		 * save() before it snapshots the sets. */
		g = enter_gen(t, k);
		uint64_t r0 = off >> t->region_shift, r1 = last >> t->region_shift;
		for (uint64_t r = r0; r <= r1; r++) {
			if (SR_UNLIKELY(!test_bit(g->bits, r))) {
				rc = act_persist(t, g, r, r1);
				break;
			}
		}
		if (rc) {
			atomic_fetch_sub(&g->in[k].n, 1);
			return rc;
		}
	}
	struct tset *s = enter_set(t, k);
	if (SR_LIKELY(b0 == b1)) {
		aword *leaf = atomic_load_explicit(&s->dir[b0 >> LEAF_SHIFT], memory_order_acquire);
		if (SR_UNLIKELY(!leaf))
			leaf = leaf_get(t, s, b0 >> LEAF_SHIFT);
		if (SR_LIKELY(leaf != NULL))
			or_word(&leaf[(b0 >> 6) & (LEAF_WORDS - 1)], 1ull << (b0 & 63));
		else
			rc = sr_err(SITEREC_ENOMEM, "out of memory allocating a tracker leaf");
	} else {
		rc = set_range(t, s, b0, b1);
	}
	atomic_fetch_sub(&s->in[k].n, 1);
	if (g)
		atomic_fetch_sub(&g->in[k].n, 1);
	return rc;
}

SITEREC_API int siterec_tracker_mark(siterec_tracker *t, uint64_t offset, uint64_t length)
{
	if (SR_UNLIKELY(!t))
		return sr_err(SITEREC_EINVAL, "tracker_mark: tracker is NULL");
	if (SR_UNLIKELY(atomic_load_explicit(&t->closed, memory_order_relaxed)))
		return sr_err(SITEREC_ESTATE, "tracker_mark: tracker is closed");
	if (SR_UNLIKELY(length == 0))
		return sr_err(SITEREC_EINVAL, "tracker_mark: length is 0");
	if (SR_UNLIKELY(offset >= t->disk_size || length > t->disk_size - offset))
		return sr_err(SITEREC_ERANGE, "tracker_mark: [%llu, +%llu) is past the disk end %llu",
		              (unsigned long long)offset, (unsigned long long)length,
		              (unsigned long long)t->disk_size);
	uint64_t last = offset + length - 1;
	return mark_blocks(t, offset >> t->block_shift, last >> t->block_shift, offset, last);
}

SITEREC_API int siterec_tracker_mark_all(siterec_tracker *t)
{
	if (!t)
		return sr_err(SITEREC_EINVAL, "tracker_mark_all: tracker is NULL");
	if (atomic_load_explicit(&t->closed, memory_order_relaxed))
		return sr_err(SITEREC_ESTATE, "tracker_mark_all: tracker is closed");
	return mark_blocks(t, 0, t->nblocks - 1, 0, t->disk_size - 1);
}

/* ---- epochs --------------------------------------------------------------- */

static int check_ctl(siterec_tracker *t, const char *what)
{
	if (!t)
		return sr_err(SITEREC_EINVAL, "%s: tracker is NULL", what);
	if (atomic_load(&t->closed))
		return sr_err(SITEREC_ESTATE, "%s: tracker is closed", what);
	return 0;
}

SITEREC_API int siterec_tracker_switch(siterec_tracker *t, uint64_t *epoch_out)
{
	int rc = check_ctl(t, "tracker_switch");
	if (rc)
		return rc;
	if (t->frozen)
		return sr_err(SITEREC_ESTATE, "tracker_switch: epoch %llu is still frozen (commit or "
		              "roll it back first)", (unsigned long long)(t->epoch - 1));
	struct tset *old = atomic_exchange(&t->live, t->spare);
	drain(old->in); /* from here on no mark can touch old: it is stable */
	t->frozen = old;
	t->spare = NULL;
	if (epoch_out)
		*epoch_out = t->epoch;
	t->epoch++;
	return 0;
}

SITEREC_API int siterec_tracker_commit(siterec_tracker *t)
{
	int rc = check_ctl(t, "tracker_commit");
	if (rc)
		return rc;
	if (!t->frozen)
		return sr_err(SITEREC_ESTATE, "tracker_commit: nothing is frozen");
	set_clear(t, t->frozen);
	t->spare = t->frozen;
	t->frozen = NULL;
	return 0;
}

SITEREC_API int siterec_tracker_rollback(siterec_tracker *t)
{
	int rc = check_ctl(t, "tracker_rollback");
	if (rc)
		return rc;
	if (!t->frozen)
		return sr_err(SITEREC_ESTATE, "tracker_rollback: nothing is frozen");
	struct tset *f = t->frozen, *live = atomic_load(&t->live);
	for (uint64_t li = 0; li < t->nleaves; li++) {
		aword *fl = atomic_load_explicit(&f->dir[li], memory_order_relaxed);
		if (!fl)
			continue;
		/* Where the live set has no leaf yet, hand the frozen leaf over whole
		 * (no copy, cannot fail); otherwise OR it in, racing marks being fine. */
		aword *expected = NULL;
		if (!atomic_compare_exchange_strong_explicit(&live->dir[li], &expected, fl,
		                                             memory_order_acq_rel,
		                                             memory_order_acquire)) {
			for (unsigned w = 0; w < LEAF_WORDS; w++) {
				uint64_t v = atomic_load_explicit(&fl[w], memory_order_relaxed);
				if (v)
					or_word(&expected[w], v);
			}
			sr_free(fl);
			atomic_fetch_sub_explicit(&t->leaves, 1, memory_order_relaxed);
		}
		atomic_store_explicit(&f->dir[li], NULL, memory_order_relaxed);
	}
	t->spare = f;
	t->frozen = NULL;
	return 0;
}

SITEREC_API int siterec_tracker_foreach_frozen(siterec_tracker *t, siterec_extent_fn cb,
                                               void *payload)
{
	int rc = check_ctl(t, "tracker_foreach_frozen");
	if (rc)
		return rc;
	if (!cb)
		return sr_err(SITEREC_EINVAL, "tracker_foreach_frozen: callback is NULL");
	if (!t->frozen)
		return sr_err(SITEREC_ESTATE, "tracker_foreach_frozen: nothing is frozen");
	return set_foreach(t, t->frozen, cb, payload);
}

SITEREC_API int siterec_tracker_foreach_dirty(siterec_tracker *t, siterec_extent_fn cb,
                                              void *payload)
{
	int rc = check_ctl(t, "tracker_foreach_dirty");
	if (rc)
		return rc;
	if (!cb)
		return sr_err(SITEREC_EINVAL, "tracker_foreach_dirty: callback is NULL");
	return set_foreach(t, atomic_load(&t->live), cb, payload);
}

/* ---- save / close --------------------------------------------------------- */

/*
 * Why no mark is lost: a mark that returned either (a) belongs to the old
 * generation, which save waits for before it snapshots the sets, so its bits
 * are in the state file; or (b) belongs to the new generation, whose regions it
 * made durable in the activity record before returning, and every activity
 * write from the flip on contains the new generation's bits (and, until the
 * state file is in place, the old one's too). A crash at any point therefore
 * finds each returned mark in the state file or inside a recorded region.
 */
static int save_locked_out(siterec_tracker *t)
{
	/* 1. flip to the cleared generation */
	pthread_mutex_lock(&t->act_lock);
	struct actgen *old = atomic_load(&t->act_cur);
	struct actgen *nw = old == &t->gens[0] ? &t->gens[1] : &t->gens[0];
	t->act_pending = old;
	atomic_store(&t->act_cur, nw);
	pthread_mutex_unlock(&t->act_lock);

	/* 2. marks of the old generation finish (their regions are durable already) */
	drain(old->in);

	/* 3. the sets, now holding every old-generation mark, go to disk */
	int rc = state_write(t, false);

	/* 4. forget the old generation's regions. If this write fails, the newest
	 * slot is either the previous one or this one (whether a failed write landed
	 * is unknown): both hold the new generation's regions, which is all that is
	 * still needed, the old ones being in the state file now. */
	pthread_mutex_lock(&t->act_lock);
	if (rc == 0) {
		act_encode(t, t->act_seq + 1, 0, nw, NULL, 1, 0);
		rc = act_commit_slot(t);
	} else {
		/* No state file: the newest slot still holds the old regions, so the
		 * current generation may claim them (the lock-free check stays true). */
		for (size_t i = 0; i < t->act_words; i++) {
			uint64_t v = atomic_load_explicit(&old->bits[i], memory_order_relaxed);
			if (v)
				atomic_fetch_or_explicit(&nw->bits[i], v, memory_order_release);
		}
	}
	for (size_t i = 0; i < t->act_words; i++)
		atomic_store_explicit(&old->bits[i], 0, memory_order_relaxed);
	t->act_pending = NULL;
	pthread_mutex_unlock(&t->act_lock);
	return rc;
}

SITEREC_API int siterec_tracker_save(siterec_tracker *t)
{
	int rc = check_ctl(t, "tracker_save");
	if (rc)
		return rc;
	if (!t->state_path)
		return sr_err(SITEREC_EINVAL, "tracker_save: memory-only tracker (no state_path)");
	return save_locked_out(t);
}

SITEREC_API int siterec_tracker_close(siterec_tracker *t)
{
	int rc = check_ctl(t, "tracker_close");
	if (rc)
		return rc;
	if (t->state_path) {
		rc = save_locked_out(t);
		if (rc)
			return rc;
		/* No mark runs (contract), and save captured every earlier one. */
		pthread_mutex_lock(&t->act_lock);
		act_encode(t, t->act_seq + 1, ACT_FLAG_CLEAN, NULL, NULL, 1, 0);
		rc = act_commit_slot(t);
		if (rc) {
			/* The clean slot may have landed all the same: claim no region, so
			 * that marks after this failed close record theirs again. */
			struct actgen *cur = atomic_load(&t->act_cur);
			for (size_t i = 0; i < t->act_words; i++)
				atomic_store_explicit(&cur->bits[i], 0, memory_order_relaxed);
		}
		pthread_mutex_unlock(&t->act_lock);
		if (rc)
			return rc;
	}
	atomic_store(&t->closed, 1);
	return 0;
}

/* ---- stats ---------------------------------------------------------------- */

SITEREC_API int siterec_tracker_stats_get(siterec_tracker *t, siterec_tracker_stats *stats)
{
	if (!t || !stats)
		return sr_err(SITEREC_EINVAL, "tracker_stats_get: %s is NULL", t ? "stats" : "tracker");
	unsigned v = stats->version;
	if (v < 1 || v > SITEREC_TRACKER_STATS_VERSION)
		return sr_err(SITEREC_EVERSION, "tracker stats version %u not supported (1..%u)", v,
		              SITEREC_TRACKER_STATS_VERSION);
	siterec_tracker_stats s;
	memset(&s, 0, sizeof(s));
	s.version = v;
	s.block_size = t->block_size;
	s.disk_size = t->disk_size;
	s.epoch = t->epoch;
	s.dirty_bytes = set_bytes(t, atomic_load(&t->live));
	s.frozen_bytes = t->frozen ? set_bytes(t, t->frozen) : 0;
	uint64_t mem = 2 * t->nleaves * sizeof(void *) +
	               (uint64_t)atomic_load(&t->leaves) * LEAF_BYTES;
	if (t->state_path)
		mem += 2 * (uint64_t)t->act_words * 8 + t->slot_size;
	s.memory_bytes = mem;
	s.state = t->open_state;
	s.has_frozen = t->frozen != NULL;
	memcpy(stats, &s, stats_sizes[v]);
	return 0;
}
