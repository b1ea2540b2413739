/* Delta log coalesce: merge logs of one disk into one sealed log holding each
 * changed byte once, with the content of the record of highest sequence number.
 *
 * All inputs are verified first while their records are listed; a sweep over
 * record boundaries with a max-heap on seq (O(n log n)) finds, for every
 * elementary range, the record that wins; the winners' data is then re-read
 * (checksum and tag checked again) and written in ascending offset order. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlog_internal.h"

struct co_rec {
	uint64_t seq;
	uint64_t off;
	uint64_t len;
	uint64_t pos;        /* file offset of the record in its input */
	uint32_t input;
	uint32_t zero;
};

struct co_input {
	int fd;
	const char *path;
	struct dl_header h;
	uint64_t cover_last; /* last seq the input covers (its seal's, or last record's) */
};

struct co_seg {
	uint64_t off;
	uint64_t end;
	uint32_t rec;
};

#define CO_SLOTS 4
struct co_slot {
	uint8_t *buf;
	const uint8_t *plain;
	uint32_t rec;
	uint64_t used;       /* LRU stamp; 0 = empty */
};

struct co {
	struct co_input *in;
	size_t n_in;
	int encrypted;
	struct dl_crypto crypto;   /* inputs' key */
	struct co_rec *recs;
	size_t n_recs, cap_recs;
	struct co_seg *segs;
	size_t n_segs;
	struct co_slot slot[CO_SLOTS];
	uint64_t stamp;
	siterec_dlog *w;
	uint8_t *dbuf;             /* pending data record */
	uint64_t doff, dlen;
	uint64_t zoff, zlen;       /* pending zero run */
};

static int add_rec(struct co *c, const struct co_rec *r)
{
	if (c->n_recs == c->cap_recs) {
		size_t ncap = c->cap_recs ? c->cap_recs * 2 : 1024;
		if (ncap > SIZE_MAX / sizeof(*c->recs))
			return sr_err(SITEREC_ENOMEM, "too many records to coalesce");
		struct co_rec *n = sr_realloc(c->recs, ncap * sizeof(*n));
		if (!n)
			return sr_err(SITEREC_ENOMEM, "out of memory listing records to coalesce");
		c->recs = n;
		c->cap_recs = ncap;
	}
	c->recs[c->n_recs++] = *r;
	return 0;
}

/* Verify one input completely and list its records. */
static int scan_input(struct co *c, uint32_t idx, const siterec_dlog_options *in_opts)
{
	struct co_input *in = &c->in[idx];
	in->fd = open(in->path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0) {
		int e = errno;
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : SITEREC_EIO, e,
		                 "cannot open delta log %s", in->path);
	}
	siterec_dlog_reader *r;
	int rc = sr_dlog_reader_open_fd(&r, in->fd, 0, in->path, in_opts);
	if (rc)
		return rc;
	siterec_dlog_record rec;
	while ((rc = siterec_dlog_reader_next(r, &rec)) == 1) {
		struct co_rec cr = { rec.seq, rec.offset, rec.length, r->rec_pos, idx, rec.zero };
		if ((rc = add_rec(c, &cr)) != 0)
			break;
	}
	if (rc == 0 && r->torn)
		rc = sr_err(SITEREC_ETRUNCATED, "%s: input has a torn tail at offset %llu", in->path,
		            (unsigned long long)r->pos);
	if (rc == 0) {
		in->h = r->h;
		in->cover_last = r->sealed ? r->seal_seq : r->last_seq;
		c->encrypted = r->encrypted;
	}
	siterec_dlog_reader_free(r);
	return rc;
}

static int cmp_in_first(const void *a, const void *b, void *arg)
{
	const struct co_input *in = arg;
	uint64_t x = in[*(const size_t *)a].h.first_seq, y = in[*(const size_t *)b].h.first_seq;
	return x < y ? -1 : x > y;
}

static int check_inputs(struct co *c)
{
	const struct co_input *a = &c->in[0];
	for (size_t i = 1; i < c->n_in; i++) {
		const struct co_input *b = &c->in[i];
		if (b->h.disk_size != a->h.disk_size || memcmp(b->h.disk_id, a->h.disk_id, 16) != 0 ||
		    b->h.block_size != a->h.block_size)
			return sr_err(SITEREC_EINVAL,
			              "%s and %s belong to different disks (id, size or block size differ)",
			              a->path, b->path);
	}
	size_t *order = sr_calloc(c->n_in, sizeof(*order));
	if (!order)
		return sr_err(SITEREC_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_in; i++)
		order[i] = i;
	qsort_r(order, c->n_in, sizeof(*order), cmp_in_first, c->in);
	int rc = 0;
	const struct co_input *prev = &c->in[order[0]];
	uint64_t hi = prev->cover_last;
	for (size_t i = 1; i < c->n_in; i++) {
		const struct co_input *cur = &c->in[order[i]];
		if (cur->h.first_seq <= hi) {
			rc = sr_err(SITEREC_EINVAL,
			            "%s (from seq %llu) overlaps %s in sequence numbers (up to %llu)",
			            cur->path, (unsigned long long)cur->h.first_seq, prev->path,
			            (unsigned long long)hi);
			break;
		}
		if (cur->cover_last > hi) {
			hi = cur->cover_last;
			prev = cur;
		}
	}
	sr_free(order);
	return rc;
}

static int cmp_rec_off(const void *a, const void *b)
{
	const struct co_rec *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void heap_push(uint32_t *heap, size_t *n, const struct co_rec *recs, uint32_t v)
{
	size_t i = (*n)++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (recs[heap[p]].seq >= recs[v].seq)
			break;
		heap[i] = heap[p];
		i = p;
	}
	heap[i] = v;
}

static void heap_pop(uint32_t *heap, size_t *n, const struct co_rec *recs)
{
	uint32_t v = heap[--(*n)];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, big = i;
		uint64_t best = recs[v].seq;
		if (l < *n && recs[heap[l]].seq > best) {
			big = l;
			best = recs[heap[l]].seq;
		}
		if (l + 1 < *n && recs[heap[l + 1]].seq > best)
			big = l + 1;
		if (big == i)
			break;
		heap[i] = heap[big];
		i = big;
	}
	if (*n)
		heap[i] = v;
}

/* For every elementary range between record boundaries, the covering record of
 * highest seq; adjacent ranges of the same record joined. */
static int build_map(struct co *c)
{
	size_t n = c->n_recs;
	if (n == 0)
		return 0;
	if (n > UINT32_MAX)
		return sr_err(SITEREC_EINVAL, "too many records to coalesce");
	qsort(c->recs, n, sizeof(*c->recs), cmp_rec_off);
	uint64_t *pos = sr_calloc(2 * n, sizeof(*pos));
	uint32_t *heap = sr_calloc(n, sizeof(*heap));
	c->segs = sr_calloc(2 * n, sizeof(*c->segs));
	if (!pos || !heap || !c->segs) {
		sr_free(pos);
		sr_free(heap);
		return sr_err(SITEREC_ENOMEM, "out of memory for the coalesce map");
	}
	for (size_t i = 0; i < n; i++) {
		pos[2 * i] = c->recs[i].off;
		pos[2 * i + 1] = c->recs[i].off + c->recs[i].len;
	}
	qsort(pos, 2 * n, sizeof(*pos), cmp_u64);
	size_t np = 0;
	for (size_t i = 0; i < 2 * n; i++)
		if (np == 0 || pos[np - 1] != pos[i])
			pos[np++] = pos[i];
	size_t ri = 0, hn = 0;
	for (size_t k = 0; k + 1 < np; k++) {
		uint64_t p = pos[k], q = pos[k + 1];
		while (ri < n && c->recs[ri].off <= p)
			heap_push(heap, &hn, c->recs, (uint32_t)ri++);
		/* lazily drop records that ended: only the top matters */
		while (hn && c->recs[heap[0]].off + c->recs[heap[0]].len <= p)
			heap_pop(heap, &hn, c->recs);
		if (!hn)
			continue;
		uint32_t top = heap[0];
		struct co_seg *last = c->n_segs ? &c->segs[c->n_segs - 1] : NULL;
		if (last && last->rec == top && last->end == p)
			last->end = q;
		else
			c->segs[c->n_segs++] = (struct co_seg){ p, q, top };
	}
	sr_free(pos);
	sr_free(heap);
	return 0;
}

/* The plaintext of record ri, re-read and re-checked (the inputs may have changed
 * since they were verified). A few records are cached: a long record cut by later
 * small writes is needed once per piece. */
static int fetch(struct co *c, uint32_t ri, const uint8_t **plain)
{
	struct co_slot *s = NULL;
	for (int i = 0; i < CO_SLOTS; i++)
		if (c->slot[i].used && c->slot[i].rec == ri) {
			s = &c->slot[i];
			s->used = ++c->stamp;
			*plain = s->plain;
			return 0;
		}
	s = &c->slot[0];
	for (int i = 1; i < CO_SLOTS; i++)
		if (c->slot[i].used < s->used)
			s = &c->slot[i];
	s->used = 0;
	if (!s->buf && !(s->buf = sr_malloc_aligned(DL_REC_HDR + SITEREC_DLOG_MAX_RECORD + DL_TAG)))
		return sr_err(SITEREC_ENOMEM, "out of memory for coalesce buffers");
	const struct co_rec *r = &c->recs[ri];
	const struct co_input *in = &c->in[r->input];
	size_t size = DL_REC_HDR + (size_t)r->len + (c->encrypted ? DL_TAG : 0);
	int rc = sr_pread_full(in->fd, s->buf, size, r->pos);
	if (rc)
		return rc == SITEREC_ETRUNCATED
		               ? sr_err(SITEREC_ECORRUPT, "%s changed while being coalesced", in->path)
		               : rc;
	struct dl_rec h;
	if (sr_dlog_rec_decode(s->buf, in->h.disk_size, c->encrypted, &h) != NULL ||
	    h.type != DL_TYPE_DATA || h.seq != r->seq || h.offset != r->off || h.length != r->len ||
	    sr_dlog_rec_checksum(h.hcheck, s->buf + DL_REC_HDR, h.payload_len) != h.checksum)
		return sr_err(SITEREC_ECORRUPT, "%s: record at offset %llu changed while being coalesced",
		              in->path, (unsigned long long)r->pos);
	sr_dlog_crypto_bind(&c->crypto, in->h.disk_id, in->h.salt);
	if ((rc = sr_dlog_open_payload(&c->crypto, c->encrypted, (uint32_t)(h.seq - in->h.first_seq),
	                               s->buf, &h, &s->plain, in->path, r->pos)) != 0)
		return rc;
	s->rec = ri;
	s->used = ++c->stamp;
	*plain = s->plain;
	return 0;
}

static int flush_zero(struct co *c)
{
	if (!c->zlen)
		return 0;
	int rc = sr_dlog_emit(c->w, DL_TYPE_ZERO, c->zoff, c->zlen, NULL);
	c->zlen = 0;
	return rc;
}

static int add_zero(struct co *c, uint64_t off, uint64_t len)
{
	if (c->zlen && c->zoff + c->zlen == off) {
		c->zlen += len;
		return 0;
	}
	int rc = flush_zero(c);
	c->zoff = off;
	c->zlen = len;
	return rc;
}

static int flush_data(struct co *c)
{
	if (!c->dlen)
		return 0;
	uint64_t off = c->doff, len = c->dlen;
	c->dlen = 0;
	if (sr_is_zero(c->dbuf, (size_t)len))
		return add_zero(c, off, len);
	return sr_dlog_emit(c->w, DL_TYPE_DATA, off, len, c->dbuf);
}

static int write_output(struct co *c)
{
	int rc;
	for (size_t i = 0; i < c->n_segs; i++) {
		const struct co_seg *s = &c->segs[i];
		const struct co_rec *r = &c->recs[s->rec];
		if (r->zero) {
			if ((rc = flush_data(c)) != 0 || (rc = add_zero(c, s->off, s->end - s->off)) != 0)
				return rc;
			continue;
		}
		for (uint64_t off = s->off; off < s->end;) {
			if (c->dlen && (c->doff + c->dlen != off || c->dlen == SITEREC_DLOG_MAX_RECORD) &&
			    (rc = flush_data(c)) != 0)
				return rc;
			if (c->dlen == 0) {
				if ((rc = flush_zero(c)) != 0)
					return rc;
				c->doff = off;
			}
			uint64_t n = s->end - off;
			if (n > SITEREC_DLOG_MAX_RECORD - c->dlen)
				n = SITEREC_DLOG_MAX_RECORD - c->dlen;
			const uint8_t *plain = NULL;
			if ((rc = fetch(c, s->rec, &plain)) != 0)
				return rc;
			memcpy(c->dbuf + c->dlen, plain + (off - r->off), (size_t)n);
			c->dlen += n;
			off += n;
		}
	}
	if ((rc = flush_data(c)) != 0)
		return rc;
	return flush_zero(c);
}

SITEREC_API int siterec_dlog_coalesce(const char *const *input_paths, size_t n_inputs,
                                      const char *output_path,
                                      const siterec_dlog_options *in_opts,
                                      const siterec_dlog_options *out_opts)
{
	if (!input_paths || n_inputs == 0 || !output_path)
		return sr_err(SITEREC_EINVAL, "delta log coalesce needs inputs and an output path");
	for (size_t i = 0; i < n_inputs; i++)
		if (!input_paths[i])
			return sr_err(SITEREC_EINVAL, "delta log coalesce input %zu is NULL", i);
	if (n_inputs > UINT32_MAX)
		return sr_err(SITEREC_EINVAL, "too many delta logs to coalesce");
	siterec_dlog_options ino, outo;
	int rc = sr_dlog_opts_copy(&ino, in_opts);
	if (rc || (rc = sr_dlog_opts_copy(&outo, out_opts)) != 0)
		return rc;
	struct co c;
	memset(&c, 0, sizeof(c));
	c.in = sr_calloc(n_inputs, sizeof(*c.in));
	if (!c.in)
		return sr_err(SITEREC_ENOMEM, "out of memory");
	c.n_in = n_inputs;
	for (size_t i = 0; i < n_inputs; i++) {
		c.in[i].fd = -1;
		c.in[i].path = input_paths[i];
	}
	int created = 0;
	for (size_t i = 0; i < n_inputs; i++)
		if ((rc = scan_input(&c, (uint32_t)i, &ino)) != 0)
			goto out;
	if ((rc = check_inputs(&c)) != 0 || (rc = build_map(&c)) != 0 ||
	    (rc = sr_dlog_crypto_init(&c.crypto, ino.key)) != 0)
		goto out;
	c.dbuf = sr_malloc_aligned(SITEREC_DLOG_MAX_RECORD);
	if (!c.dbuf) {
		rc = sr_err(SITEREC_ENOMEM, "out of memory for coalesce buffers");
		goto out;
	}
	struct dl_geom g;
	g.disk_size = c.in[0].h.disk_size;
	memcpy(g.disk_id, c.in[0].h.disk_id, 16);
	g.block_size = c.in[0].h.block_size;
	g.first_seq = c.in[0].h.first_seq;
	uint64_t cover = c.in[0].cover_last;
	for (size_t i = 1; i < n_inputs; i++) {
		if (c.in[i].h.first_seq < g.first_seq)
			g.first_seq = c.in[i].h.first_seq;
		if (c.in[i].cover_last > cover)
			cover = c.in[i].cover_last;
	}
	if ((rc = sr_dlog_create_geom(&c.w, output_path, &g, &outo)) != 0)
		goto out;
	created = 1;
	c.w->seal_seq = cover; /* the output stands for the inputs' whole range */
	if ((rc = write_output(&c)) != 0 || (rc = siterec_dlog_seal(c.w)) != 0)
		goto out;
out:
	if (c.w) {
		if (rc)
			c.w->state = DL_W_BROKEN; /* nothing more to write */
		siterec_dlog_free(c.w);
	}
	if (rc && created)
		unlink(output_path);
	for (size_t i = 0; i < n_inputs; i++)
		if (c.in[i].fd >= 0)
			close(c.in[i].fd);
	for (int i = 0; i < CO_SLOTS; i++)
		sr_free_aligned(c.slot[i].buf);
	sr_free_aligned(c.dbuf);
	sr_dlog_crypto_free(&c.crypto);
	sr_free(c.recs);
	sr_free(c.segs);
	sr_free(c.in);
	return rc;
}
