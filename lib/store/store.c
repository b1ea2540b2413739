/* Storage front end: URL parsing, options, name checks, the writer queue, and
 * dispatch to the backend of the URL's scheme (store_internal.h). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <mbedtls/platform_util.h>

#include "store_internal.h"

static const size_t store_opt_sizes[] = { 0, sizeof(siterec_store_options) };

#define NAME_MAX_LEN 200

SITEREC_API int siterec_store_options_init(siterec_store_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, store_opt_sizes, SITEREC_STORE_OPTIONS_VERSION,
	                       "store");
}

int sr_store_progress(siterec_store *st, uint64_t done, uint64_t total)
{
	if (!st->opts.progress)
		return 0;
	int rc = st->opts.progress(done, total, st->opts.progress_payload);
	return rc ? sr_err_callback(rc, "store progress callback") : 0;
}

uint64_t sr_store_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sr_store_sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
	}
}

/* A token bucket without a burst allowance, kept as the time at which everything
 * granted so far has been paid for at the limit: a request may start then, and
 * its bytes push that time further. Idle time earns nothing, so the average rate
 * over any stretch of activity stays at or under the limit, across all the
 * writers and requests of the store. */
uint64_t sr_store_bw_start(siterec_store *st, uint64_t bytes)
{
	uint64_t now = sr_store_now_ns(), limit = st->opts.bandwidth_limit;
	if (!limit || !bytes)
		return now;
	uint64_t start = st->bw_tat > now ? st->bw_tat : now;
	/* bytes * 1e9 / limit without overflow for any request size this layer sends */
	uint64_t cost = bytes / limit * 1000000000ull + bytes % limit * 1000000000ull / limit;
	st->bw_tat = start + cost;
	return start;
}

static int name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || c == '/';
}

/* Returns 1 when name follows the rules of store.h; no error set. */
int sr_store_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > NAME_MAX_LEN || name[0] == '/' || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(name[i]))
			return 0;
	return !strstr(name, "..") && !strstr(name, "//");
}

int sr_store_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n >= SITEREC_STORE_ID_MAX || id[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(id[i]) || id[i] == '/')
			return 0;
	return 1;
}

static int check_name(const char *name)
{
	if (!name)
		return sr_err(SITEREC_EINVAL, "store object name is NULL");
	if (!sr_store_name_ok(name))
		return sr_err(SITEREC_EINVAL,
		              "store object name '%.*s' invalid: 1..200 of [A-Za-z0-9._-/], not starting "
		              "with '/' or '.', no \"..\" or \"//\"", 220, name);
	return 0;
}

static int check_snap(const char *snap)
{
	if (snap && !sr_store_id_ok(snap))
		return sr_err(SITEREC_EINVAL, "snapshot id '%.*s' invalid", 80, snap);
	return 0;
}

static int check_store(const siterec_store *st, const char *what)
{
	if (!st)
		return sr_err(SITEREC_EINVAL, "%s: store is NULL", what);
	return 0;
}

static void wipe_free(char *s)
{
	if (s) {
		mbedtls_platform_zeroize(s, strlen(s));
		sr_free(s);
	}
}

SITEREC_API void siterec_store_free(siterec_store *st)
{
	if (!st)
		return;
	if (st->ops)
		st->ops->close(st->impl);
	wipe_free(st->account_key);
	wipe_free(st->sas_token);
	sr_free(st->ca_file);
	mbedtls_platform_zeroize(st, sizeof(*st));
	sr_free(st);
}

static int dup_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = sr_strdup(src);
	return *dst ? 0 : sr_err(SITEREC_ENOMEM, "store open: out of memory copying options");
}

/* The URL itself is never put into messages whole: a SAS token may ride in its query. */
SITEREC_API int siterec_store_open(siterec_store **out, const char *url,
                                   const siterec_store_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "store open: out is NULL");
	*out = NULL;
	if (!url || !*url)
		return sr_err(SITEREC_EINVAL, "store open: URL is NULL or empty");
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	int rc = sr_options_copy(&o, opts, store_opt_sizes, SITEREC_STORE_OPTIONS_VERSION, "store");
	if (rc)
		return rc;
	if (o.flags & ~(SITEREC_STORE_ALLOW_HTTP | SITEREC_STORE_CONTENT_MD5 | SITEREC_STORE_CREATE))
		return sr_err(SITEREC_EINVAL, "store open: unknown flags 0x%x", (unsigned)o.flags);

	const char *path = NULL;
	int azure = 0;
	if (strncmp(url, "file://", 7) == 0) {
		const char *rest = url + 7;
		if (strncmp(rest, "localhost/", 10) == 0)
			rest += 9;
		if (rest[0] != '/')
			return sr_err(SITEREC_EINVAL,
			              "store open: file URL needs an absolute path (file:///DIR)");
		if (strchr(rest, '%') || strchr(rest, '?') || strchr(rest, '#'))
			return sr_err(SITEREC_EINVAL,
			              "store open: file URL must not contain '%%', '?' or '#'");
		path = rest;
	} else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
		if (url[4] == ':' && !(o.flags & SITEREC_STORE_ALLOW_HTTP))
			return sr_err(SITEREC_EINVAL,
			              "store open: plain http needs SITEREC_STORE_ALLOW_HTTP");
		azure = 1;
	} else {
		return sr_err(SITEREC_EINVAL, "store open: URL scheme not recognised (file://, https://)");
	}

	siterec_store *st = sr_calloc(1, sizeof(*st));
	if (!st)
		return sr_err(SITEREC_ENOMEM, "store open: out of memory");
	st->opts = o;
	if ((rc = dup_opt(&st->account_key, o.account_key)) || (rc = dup_opt(&st->sas_token, o.sas_token)) ||
	    (rc = dup_opt(&st->ca_file, o.ca_file))) {
		siterec_store_free(st);
		return rc;
	}
	st->opts.account_key = st->account_key;
	st->opts.sas_token = st->sas_token;
	st->opts.ca_file = st->ca_file;
	if (!st->opts.max_inflight) st->opts.max_inflight = 8;
	if (!st->opts.timeout_ms) st->opts.timeout_ms = 60000;
	if (!st->opts.max_retries) st->opts.max_retries = 6;
	rc = azure ? sr_store_azure_open(st, url) : sr_store_file_open(st, path);
	if (rc) {
		siterec_store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* ---- disks ---- */

SITEREC_API int siterec_store_disk_create(siterec_store *st, const char *name, uint64_t size)
{
	int rc;
	if ((rc = check_store(st, "disk create")) || (rc = check_name(name)))
		return rc;
	if (size == 0)
		return sr_err(SITEREC_EINVAL, "disk create %s: size is 0", name);
	/* 2^62 keeps every offset + length computation far from overflow */
	if (size > (1ull << 62))
		return sr_err(SITEREC_ERANGE, "disk create %s: size %llu too large", name,
		              (unsigned long long)size);
	size = (size + 511) & ~511ull;
	return st->ops->disk_create(st, name, size);
}

SITEREC_API int siterec_store_disk_size(siterec_store *st, const char *name, const char *snapshot,
                                        uint64_t *size)
{
	int rc;
	if ((rc = check_store(st, "disk size")) || (rc = check_name(name)) || (rc = check_snap(snapshot)))
		return rc;
	if (!size)
		return sr_err(SITEREC_EINVAL, "disk size %s: size pointer is NULL", name);
	return st->ops->disk_size(st, name, snapshot, size);
}

SITEREC_API int siterec_store_disk_delete(siterec_store *st, const char *name, uint32_t flags,
                                          const char *lease_id)
{
	int rc;
	if ((rc = check_store(st, "disk delete")) || (rc = check_name(name)))
		return rc;
	if (flags & ~SITEREC_STORE_DELETE_SNAPSHOTS)
		return sr_err(SITEREC_EINVAL, "disk delete %s: unknown flags 0x%x", name, (unsigned)flags);
	return st->ops->disk_delete(st, name, flags, lease_id);
}

SITEREC_API int siterec_store_read(siterec_store *st, const char *name, const char *snapshot,
                                   void *buf, size_t length, uint64_t offset)
{
	int rc;
	if ((rc = check_store(st, "read")) || (rc = check_name(name)) || (rc = check_snap(snapshot)))
		return rc;
	if (!buf && length)
		return sr_err(SITEREC_EINVAL, "read %s: buffer is NULL", name);
	if (offset + length < offset)
		return sr_err(SITEREC_ERANGE, "read %s: offset + length overflows", name);
	return st->ops->read(st, name, snapshot, buf, length, offset);
}

SITEREC_API int siterec_store_ranges(siterec_store *st, const char *name, const char *snapshot,
                                     uint64_t offset, uint64_t length, siterec_extent_fn cb,
                                     void *payload)
{
	int rc;
	if ((rc = check_store(st, "ranges")) || (rc = check_name(name)) || (rc = check_snap(snapshot)))
		return rc;
	if (!cb)
		return sr_err(SITEREC_EINVAL, "ranges %s: callback is NULL", name);
	if (offset + length < offset)
		return sr_err(SITEREC_ERANGE, "ranges %s: offset + length overflows", name);
	return st->ops->ranges(st, name, snapshot, offset, length, cb, payload);
}

/* ---- writer: a queue of one contiguous run, sent when it cannot grow ----
 * With merging on (set_merge), the run may also hold gaps: stretches between
 * writes left unfilled until the run is sent, then filled from one read of the
 * disk. Writes then come in ascending order, so a gap lies above everything
 * sent before it and the read cannot race a request in flight. */

/* A gap of the pending run, relative to run_off. */
typedef struct run_gap {
	uint32_t off, len;
} run_gap;

/* Gaps and data pieces are 512 bytes or more each, so a run holds fewer than this. */
#define RUN_GAPS_MAX (SR_STORE_MAX_REQUEST / 1024 + 1)

struct siterec_store_writer {
	siterec_store *st;
	sr_store_bwriter *bw;
	char *name;
	uint64_t size;
	uint8_t *buf;        /* SR_STORE_MAX_REQUEST bytes: the pending data run */
	uint64_t run_off;    /* pending run: [run_off, run_off + run_len) */
	uint64_t run_len;
	int run_zero;        /* the run is a clear (no data in buf) */
	int failed;          /* first error of an earlier request, kept and returned */
	uint64_t queued;     /* bytes accepted since the last finish (progress) */
	int started;         /* a write or zero was accepted: too late for set_merge */
	uint64_t max_gap;    /* merging: largest gap filled from the disk; 0 = off */
	uint64_t last_end;   /* merging: end of the last write or zero since the last finish */
	run_gap *gaps;       /* merging: the pending run's gaps, in order */
	size_t ngaps;
	uint8_t *rbuf;       /* merging: SR_STORE_MAX_REQUEST bytes for the gap read */
};

SITEREC_API int siterec_store_writer_open(siterec_store_writer **out, siterec_store *st,
                                          const char *name, const char *lease_id)
{
	int rc;
	if (!out)
		return sr_err(SITEREC_EINVAL, "store writer open: out is NULL");
	*out = NULL;
	if ((rc = check_store(st, "writer open")) || (rc = check_name(name)))
		return rc;
	siterec_store_writer *w = sr_calloc(1, sizeof(*w));
	if (!w || !(w->name = sr_strdup(name)) || !(w->buf = sr_malloc(SR_STORE_MAX_REQUEST))) {
		if (w) {
			sr_free(w->name);
			sr_free(w);
		}
		return sr_err(SITEREC_ENOMEM, "store writer open %s: out of memory", name);
	}
	w->st = st;
	rc = st->ops->writer_open(st, name, lease_id, &w->bw, &w->size);
	if (rc) {
		sr_free(w->buf);
		sr_free(w->name);
		sr_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Fill the pending run's gaps with the disk's current content: one read from the
 * first gap's start to the last gap's end. */
static int fill_gaps(siterec_store_writer *w)
{
	uint64_t lo = w->gaps[0].off, hi = w->gaps[w->ngaps - 1].off + w->gaps[w->ngaps - 1].len;
	int rc = w->st->ops->read(w->st, w->name, NULL, w->rbuf + lo, (size_t)(hi - lo),
	                          w->run_off + lo);
	if (rc)
		return rc;
	for (size_t i = 0; i < w->ngaps; i++)
		memcpy(w->buf + w->gaps[i].off, w->rbuf + w->gaps[i].off, w->gaps[i].len);
	return 0;
}

static int send_run(siterec_store_writer *w)
{
	if (!w->run_len)
		return 0;
	int rc = 0;
	if (w->ngaps)
		rc = fill_gaps(w);
	w->ngaps = 0;
	if (!rc)
		rc = w->run_zero ? w->st->ops->writer_zero(w->bw, w->run_off, w->run_len)
		                 : w->st->ops->writer_write(w->bw, &w->buf, (size_t)w->run_len, w->run_off);
	w->run_len = 0;
	if (!w->buf && !(w->buf = sr_malloc(SR_STORE_MAX_REQUEST)) && !rc)
		rc = sr_err(SITEREC_ENOMEM, "store writer %s: out of memory", w->name);
	if (rc && !w->failed)
		w->failed = rc;
	return rc;
}

static int check_span(siterec_store_writer *w, uint64_t off, uint64_t len, const char *what)
{
	if (w->failed)
		return sr_err(w->failed, "store writer %s: an earlier write failed (%s)", w->name,
		              siterec_strerror(w->failed));
	if ((off | len) & 511)
		return sr_err(SITEREC_EALIGN, "store %s %s: offset %llu / length %llu not multiples of 512",
		              what, w->name, (unsigned long long)off, (unsigned long long)len);
	if (off > w->size || len > w->size - off)
		return sr_err(SITEREC_ERANGE, "store %s %s: [%llu, +%llu) past the disk end %llu", what,
		              w->name, (unsigned long long)off, (unsigned long long)len,
		              (unsigned long long)w->size);
	return 0;
}

/* Merging: can [off, off + len) join the pending run's buffer, past a gap of at
 * most max_gap? A pending clear longer than 2 x max_gap stays a clear (sending
 * its zeros would cost more than the request saved). */
static int merge_fits(const siterec_store_writer *w, uint64_t off, uint64_t len)
{
	if (!w->max_gap || !w->run_len || (w->run_zero && w->run_len > 2 * w->max_gap))
		return 0;
	uint64_t end = w->run_off + w->run_len;
	if (off > end && w->ngaps == RUN_GAPS_MAX)
		return 0;  /* cannot happen with pieces of 512 or more; keeps the array safe */
	return off >= end && off - end <= w->max_gap && off + len - w->run_off <= SR_STORE_MAX_REQUEST;
}

/* Put len bytes of src (NULL: zeros) at off into the pending data run, recording
 * the gap before them, if any. The caller checked that they fit. */
static void run_place(siterec_store_writer *w, uint64_t off, const uint8_t *src, size_t len)
{
	size_t at = (size_t)(off - w->run_off);
	if (at > w->run_len) {
		w->gaps[w->ngaps].off = (uint32_t)w->run_len;
		w->gaps[w->ngaps].len = (uint32_t)(at - w->run_len);
		w->ngaps++;
	}
	if (src)
		memcpy(w->buf + at, src, len);
	else
		memset(w->buf + at, 0, len);
	w->run_len = at + len;
}

/* Merging needs writes in ascending order (a gap must lie above everything sent,
 * and is never filled over data queued before); mark the writer started. */
static int check_order(siterec_store_writer *w, uint64_t off, uint64_t len, const char *what)
{
	if (!len)
		return 0;
	if (w->max_gap && off < w->last_end)
		return sr_err(SITEREC_EINVAL,
		              "store %s %s: offset %llu goes back before %llu, the end of the previous "
		              "one; a merging writer needs ascending writes without overlap (until a "
		              "finish)", what, w->name, (unsigned long long)off,
		              (unsigned long long)w->last_end);
	w->last_end = off + len;
	w->started = 1;
	return 0;
}

/* Queue a zero run, merging with a pending adjacent one (clears have no size limit),
 * or, merging, into a pending data run as zeros when short. */
static int queue_zero(siterec_store_writer *w, uint64_t off, uint64_t len)
{
	if (w->run_len && w->run_zero && w->run_off + w->run_len == off) {
		w->run_len += len;
		return 0;
	}
	if (!w->run_zero && len <= 2 * w->max_gap && merge_fits(w, off, len)) {
		run_place(w, off, NULL, (size_t)len);
		return 0;
	}
	int rc = send_run(w);
	if (rc)
		return rc;
	w->run_off = off;
	w->run_len = len;
	w->run_zero = 1;
	return 0;
}

SITEREC_API int siterec_store_writer_write(siterec_store_writer *w, const void *buf, size_t length,
                                           uint64_t offset)
{
	if (!w)
		return sr_err(SITEREC_EINVAL, "store writer write: writer is NULL");
	if (!buf && length)
		return sr_err(SITEREC_EINVAL, "store writer write %s: buffer is NULL", w->name);
	int rc = check_span(w, offset, length, "write");
	if (rc || (rc = check_order(w, offset, length, "write")))
		return rc;
	w->queued += length;
	const uint8_t *p = buf;
	/* 512-byte sectors: all-zero runs become clears, the rest data runs. A short
	 * zero run amid data goes as data: a request saved is worth more than a few
	 * KiB not sent (a write that is all zeros is always a clear). */
	int all_zero = sr_is_zero(p, length);
	while (length) {
		size_t n = 512;
		int zero = all_zero || sr_is_zero(p, n);
		while (n < length && (all_zero || sr_is_zero(p + n, 512) == zero))
			n += 512;
		if (zero && !all_zero && n < SR_STORE_ZERO_RUN_MIN)
			zero = 0;
		if (zero) {
			if ((rc = queue_zero(w, offset, n)))
				return rc;
		} else {
			size_t done = 0;
			while (done < n) {
				uint64_t at = offset + done;
				int join = w->run_len && !w->run_zero && w->run_off + w->run_len == at &&
				           w->run_len < SR_STORE_MAX_REQUEST;
				/* merging: the rest of the piece goes whole past a gap, or not at all */
				if (!join && merge_fits(w, at, n - done)) {
					join = 1;
					if (w->run_zero) {
						memset(w->buf, 0, (size_t)w->run_len);
						w->run_zero = 0;
					}
				}
				if (!join) {
					if ((rc = send_run(w)))
						return rc;
					w->run_off = at;
					w->run_zero = 0;
				}
				size_t room = SR_STORE_MAX_REQUEST - (size_t)(at - w->run_off);
				size_t take = n - done < room ? n - done : room;
				run_place(w, at, p + done, take);
				done += take;
			}
		}
		p += n;
		offset += n;
		length -= n;
	}
	return 0;
}

SITEREC_API int siterec_store_writer_write_cb(const void *buf, size_t length, uint64_t offset,
                                              void *writer)
{
	return siterec_store_writer_write(writer, buf, length, offset);
}

SITEREC_API int siterec_store_writer_zero(siterec_store_writer *w, uint64_t offset, uint64_t length)
{
	if (!w)
		return sr_err(SITEREC_EINVAL, "store writer zero: writer is NULL");
	int rc = check_span(w, offset, length, "zero");
	if (rc || !length || (rc = check_order(w, offset, length, "zero")))
		return rc;
	w->queued += length;
	return queue_zero(w, offset, length);
}

/* Finish, reporting progress (bytes queued since the last finish) or not. */
static int writer_finish(siterec_store_writer *w, int report)
{
	if (!w)
		return sr_err(SITEREC_EINVAL, "store writer finish: writer is NULL");
	if (w->failed)
		return sr_err(w->failed, "store writer %s: an earlier write failed (%s)", w->name,
		              siterec_strerror(w->failed));
	int rc = send_run(w);
	if (rc)
		return rc;
	if (report && (rc = sr_store_progress(w->st, w->queued / 2, w->queued)))
		return rc;
	rc = w->st->ops->writer_sync(w->bw);
	if (rc) {
		w->failed = rc;
		return rc;
	}
	w->last_end = 0;  /* all durable: later writes may go anywhere again */
	if (report)
		rc = sr_store_progress(w->st, w->queued, w->queued);
	w->queued = 0;
	return rc;
}

SITEREC_API int siterec_store_writer_finish(siterec_store_writer *w)
{
	return writer_finish(w, 1);
}

int sr_store_writer_flush(siterec_store_writer *w)
{
	return writer_finish(w, 0);
}

SITEREC_API int siterec_store_writer_set_merge(siterec_store_writer *w, uint64_t max_gap)
{
	if (!w)
		return sr_err(SITEREC_EINVAL, "store writer set merge: writer is NULL");
	if (w->started)
		return sr_err(SITEREC_EINVAL, "store writer %s: set merge after the first write", w->name);
	if ((max_gap & 511) || max_gap > SR_STORE_MAX_REQUEST)
		return sr_err(SITEREC_EINVAL,
		              "store writer %s: merge gap %llu not a multiple of 512 of at most 4 MiB",
		              w->name, (unsigned long long)max_gap);
	if (max_gap && !w->gaps) {
		if (!(w->gaps = sr_calloc(RUN_GAPS_MAX, sizeof(*w->gaps))) ||
		    !(w->rbuf = sr_malloc(SR_STORE_MAX_REQUEST))) {
			sr_free(w->gaps);
			w->gaps = NULL;
			return sr_err(SITEREC_ENOMEM, "store writer %s: out of memory", w->name);
		}
	}
	w->max_gap = max_gap;
	return 0;
}

SITEREC_API void siterec_store_writer_free(siterec_store_writer *w)
{
	if (!w)
		return;
	w->st->ops->writer_close(w->bw);
	sr_free(w->rbuf);
	sr_free(w->gaps);
	sr_free(w->buf);
	sr_free(w->name);
	sr_free(w);
}

/* ---- snapshots ---- */

SITEREC_API int siterec_store_snapshot(siterec_store *st, const char *name, char *snapshot_out,
                                       size_t cap)
{
	int rc;
	if ((rc = check_store(st, "snapshot")) || (rc = check_name(name)))
		return rc;
	if (!snapshot_out || cap < SITEREC_STORE_ID_MAX)
		return sr_err(SITEREC_EINVAL, "snapshot %s: output buffer NULL or smaller than "
		                              "SITEREC_STORE_ID_MAX", name);
	return st->ops->snapshot(st, name, snapshot_out, cap);
}

SITEREC_API int siterec_store_snapshot_delete(siterec_store *st, const char *name,
                                              const char *snapshot)
{
	int rc;
	if ((rc = check_store(st, "snapshot delete")) || (rc = check_name(name)))
		return rc;
	if (!snapshot)
		return sr_err(SITEREC_EINVAL, "snapshot delete %s: snapshot id is NULL", name);
	if ((rc = check_snap(snapshot)))
		return rc;
	return st->ops->snapshot_delete(st, name, snapshot);
}

/* ---- documents ---- */

#define DOC_MAX (4u << 20)

SITEREC_API int siterec_store_doc_put(siterec_store *st, const char *name, const void *data,
                                      size_t length, const char *if_match, char *etag_out,
                                      size_t etag_cap)
{
	int rc;
	if ((rc = check_store(st, "doc put")) || (rc = check_name(name)))
		return rc;
	if (!data && length)
		return sr_err(SITEREC_EINVAL, "doc put %s: data is NULL", name);
	if (length > DOC_MAX)
		return sr_err(SITEREC_EINVAL, "doc put %s: %zu bytes, more than 4 MiB", name, length);
	if (etag_out && !etag_cap)
		return sr_err(SITEREC_EINVAL, "doc put %s: ETag buffer of size 0", name);
	return st->ops->doc_put(st, name, data, length, if_match, etag_out, etag_cap);
}

SITEREC_API int siterec_store_doc_get(siterec_store *st, const char *name, void **data,
                                      size_t *length, char *etag_out, size_t etag_cap)
{
	int rc;
	if (data)
		*data = NULL;
	if ((rc = check_store(st, "doc get")) || (rc = check_name(name)))
		return rc;
	if (!data || !length)
		return sr_err(SITEREC_EINVAL, "doc get %s: data or length pointer is NULL", name);
	if (etag_out && !etag_cap)
		return sr_err(SITEREC_EINVAL, "doc get %s: ETag buffer of size 0", name);
	return st->ops->doc_get(st, name, data, length, etag_out, etag_cap);
}

SITEREC_API int siterec_store_doc_delete(siterec_store *st, const char *name, const char *if_match)
{
	int rc;
	if ((rc = check_store(st, "doc delete")) || (rc = check_name(name)))
		return rc;
	return st->ops->doc_delete(st, name, if_match);
}

/* ---- leases ---- */

SITEREC_API int siterec_store_lease_acquire(siterec_store *st, const char *name,
                                            uint32_t duration_s, const char *proposed_id,
                                            char *lease_out, size_t cap)
{
	int rc;
	if ((rc = check_store(st, "lease acquire")) || (rc = check_name(name)))
		return rc;
	if (duration_s && (duration_s < 15 || duration_s > 60))
		return sr_err(SITEREC_EINVAL, "lease acquire %s: duration %u s not 0 or 15..60", name,
		              (unsigned)duration_s);
	if (proposed_id && !sr_store_id_ok(proposed_id))
		return sr_err(SITEREC_EINVAL, "lease acquire %s: proposed id invalid ([A-Za-z0-9._-], 1..63)",
		              name);
	if (!lease_out || !cap)
		return sr_err(SITEREC_EINVAL, "lease acquire %s: output buffer is NULL or empty", name);
	return st->ops->lease_acquire(st, name, duration_s, proposed_id, lease_out, cap);
}

SITEREC_API int siterec_store_lease_renew(siterec_store *st, const char *name, const char *lease_id)
{
	int rc;
	if ((rc = check_store(st, "lease renew")) || (rc = check_name(name)))
		return rc;
	if (!lease_id || !sr_store_id_ok(lease_id))
		return sr_err(SITEREC_EINVAL, "lease renew %s: lease id NULL or invalid", name);
	return st->ops->lease_renew(st, name, lease_id);
}

SITEREC_API int siterec_store_lease_release(siterec_store *st, const char *name,
                                            const char *lease_id)
{
	int rc;
	if ((rc = check_store(st, "lease release")) || (rc = check_name(name)))
		return rc;
	if (!lease_id || !sr_store_id_ok(lease_id))
		return sr_err(SITEREC_EINVAL, "lease release %s: lease id NULL or invalid", name);
	return st->ops->lease_release(st, name, lease_id);
}

SITEREC_API int siterec_store_lease_break(siterec_store *st, const char *name)
{
	int rc;
	if ((rc = check_store(st, "lease break")) || (rc = check_name(name)))
		return rc;
	return st->ops->lease_break(st, name);
}

/* ---- listing ---- */

SITEREC_API int siterec_store_list(siterec_store *st, const char *prefix, siterec_store_list_fn cb,
                                   void *payload)
{
	int rc;
	if ((rc = check_store(st, "list")))
		return rc;
	if (!cb)
		return sr_err(SITEREC_EINVAL, "store list: callback is NULL");
	return st->ops->list(st, prefix ? prefix : "", cb, payload);
}

int sr_store_object_url(siterec_store *st, const char *name, char **out)
{
	int rc;
	*out = NULL;
	if ((rc = check_store(st, "object url")) || (rc = check_name(name)))
		return rc;
	if (!st->ops->url)
		return sr_err(SITEREC_EUNSUPPORTED, "store: objects of a %s target have no URL", st->ops->name);
	return st->ops->url(st, name, out);
}
