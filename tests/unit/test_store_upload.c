/* Resumable uploads (siterec_store_upload) through the public API, every case run
 * against two targets: a file:// directory and a real Azurite started by the group
 * setup. A source in memory with holes (its status callback reports them), zero
 * pages and an unaligned size; uploads read back equal; a cancel and a resume;
 * the record (NAME.upload) watched from a second handle at every checkpoint;
 * conflicts, a damaged record, racing uploaders, the VHD shape, bad arguments. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)


typedef struct target {
	const char *label;
	int azure;
} target;

static target file_target = { "file", 0 };
static target azure_target = { "azurite", 1 };

TH_AZURITE_GROUP(g, "test_store_upload")

/* The target's store for `container` (a directory or a container, created). */
static siterec_store *open_target(const target *t, const char *container, siterec_progress_fn fn,
                                  void *payload)
{
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.flags = SITEREC_STORE_CREATE;
	o.max_inflight = 3;
	o.progress = fn;
	o.progress_payload = payload;
	char url[4400];
	if (t->azure) {
		o.flags |= SITEREC_STORE_ALLOW_HTTP;
		o.account_key = TH_AZURITE_KEY;
		o.max_retries = 2;
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/devstoreaccount1/%s", g.port, container);
	} else {
		snprintf(url, sizeof(url), "file://%s/%s", g.dir, container);
	}
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url, &o);
	if (rc)
		fprintf(stderr, "%s open: %s\n", t->label, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return st;
}

/* ---- the source: data, holes its status callback reports, zero pages ---- */

#define SRC_SIZE (9 * MiB + 1000)   /* neither whole sectors nor whole MiB */

typedef struct src {
	uint8_t *data;                  /* round_up(size, 512) bytes, zero past size */
	uint64_t size;
	uint64_t holes[4][2];           /* unallocated (and zero) runs, sorted */
	size_t nholes;
	uint64_t hole_unit;             /* != 0: every other run of this many bytes is a hole */
	uint64_t read_bytes, read_calls, status_calls;
	int fail_read;                  /* read returns this from its first call */
	int bad_run;                    /* status reports a run of 0 bytes */
	int bad;                        /* a read touched a hole or passed the end */
} src;

static uint64_t up512(uint64_t v) { return (v + 511) & ~511ull; }

static void src_init(src *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->size = SRC_SIZE;
	s->data = calloc(1, up512(SRC_SIZE));
	assert_non_null(s->data);
	th_fill(s->data, SRC_SIZE, seed);
	s->holes[0][0] = 1 * MiB, s->holes[0][1] = 2 * MiB;
	s->holes[1][0] = 5 * MiB + 64 * KiB, s->holes[1][1] = 6 * MiB;
	s->nholes = 2;
	for (size_t i = 0; i < s->nholes; i++)
		memset(s->data + s->holes[i][0], 0, s->holes[i][1] - s->holes[i][0]);
	/* zero pages inside allocated runs: never sent */
	memset(s->data + 3 * MiB, 0, 192 * KiB);
	memset(s->data + 4 * MiB + 512, 0, 512);
	/* zero bytes that do not fill a sector: sent */
	memset(s->data + 7 * MiB + 100, 0, 4900);
}

static int in_hole(const src *s, uint64_t off, uint64_t *end)
{
	if (s->hole_unit) {
		uint64_t i = off / s->hole_unit;
		*end = (i + 1) * s->hole_unit;
		return (int)(i & 1);
	}
	for (size_t i = 0; i < s->nholes; i++) {
		if (off < s->holes[i][0]) {
			*end = s->holes[i][0];
			return 0;
		}
		if (off < s->holes[i][1]) {
			*end = s->holes[i][1];
			return 1;
		}
	}
	*end = UINT64_MAX;
	return 0;
}

static int src_read(void *buf, size_t len, uint64_t off, void *payload)
{
	src *s = payload;
	s->read_calls++;
	if (s->fail_read)
		return s->fail_read;
	if (off > s->size || len > s->size - off)
		s->bad = 1;
	/* only allocated runs are read (whole sectors around an unaligned run edge) */
	for (uint64_t p = off & ~511ull; !s->hole_unit && p < off + len; p += 512) {
		uint64_t e;
		if (in_hole(s, p, &e))
			s->bad = 1;
	}
	memcpy(buf, s->data + off, len);
	s->read_bytes += len;
	return 0;
}

static int src_status(uint64_t off, uint64_t len, uint64_t *run, int *allocated, void *payload)
{
	src *s = payload;
	s->status_calls++;
	uint64_t end;
	*allocated = !in_hole(s, off, &end);
	*run = s->bad_run ? 0 : end - off < len ? end - off : len;
	return 0;
}

/* Bytes a fresh upload sends: the sectors holding a non-zero byte. */
static uint64_t nonzero_bytes(const src *s)
{
	uint64_t n = 0;
	static const uint8_t zero[512];
	for (uint64_t p = 0; p < up512(s->size); p += 512)
		if (memcmp(s->data + p, zero, 512) != 0)
			n += 512;
	return n;
}

/* Bytes a fresh upload may send at most: short zero runs amid data ride along
 * (one request instead of three), runs of zero sectors of 64 KiB or more never. */
static uint64_t sendable_bytes(const src *s)
{
	uint64_t n = 0, run = 0, end = up512(s->size);
	static const uint8_t zero[512];
	for (uint64_t p = 0; p <= end; p += 512) {
		if (p < end && memcmp(s->data + p, zero, 512) == 0) {
			run += 512;
			continue;
		}
		if (run < 64 * 1024)
			n += run;
		run = 0;
		if (p < end)
			n += 512;
	}
	return n;
}

static uint64_t hole_bytes(const src *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->nholes; i++)
		n += s->holes[i][1] - s->holes[i][0];
	return n;
}

/* The disk's first `len` bytes equal the source, and zeros follow up to `upto`. */
static void assert_disk_equals(siterec_store *st, const char *name, const src *s, uint64_t upto)
{
	uint8_t *buf = malloc(MiB);
	assert_non_null(buf);
	for (uint64_t off = 0; off < upto; off += MiB) {
		size_t n = upto - off < MiB ? (size_t)(upto - off) : MiB;
		assert_int_equal(siterec_store_read(st, name, NULL, buf, n, off), 0);
		for (size_t i = 0; i < n; i++) {
			uint8_t want = off + i < s->size ? s->data[off + i] : 0;
			if (buf[i] != want) {
				fprintf(stderr, "%s differs at %llu\n", name, (unsigned long long)(off + i));
				fail();
			}
		}
	}
	free(buf);
}

/* Nothing was written into the holes or the whole zero pages. */
static void assert_not_written(siterec_store *st, const char *name, const src *s)
{
	th_extents e = { .n = 0 };
	assert_int_equal(siterec_store_ranges(st, name, NULL, 0, 0, th_extent_cb, &e), 0);
	assert_true(e.n > 0 && e.n <= TH_EXTENTS_MAX);
	uint64_t no[3][2] = { { s->holes[0][0], s->holes[0][1] }, { s->holes[1][0], s->holes[1][1] },
	                      { 3 * MiB, 3 * MiB + 192 * KiB } };
	for (size_t i = 0; i < e.n; i++)
		for (size_t j = 0; j < 3; j++)
			if (e.off[i] < no[j][1] && no[j][0] < e.off[i] + e.len[i]) {
				fprintf(stderr, "range [%llu, +%llu) overlaps [%llu, %llu)\n",
				        (unsigned long long)e.off[i], (unsigned long long)e.len[i],
				        (unsigned long long)no[j][0], (unsigned long long)no[j][1]);
				fail();
			}
}

/* ---- progress: offsets, a cancel, and the record seen from a second handle ---- */

typedef struct prog {
	uint64_t calls, last, total;
	int backwards;
	uint64_t cancel_at;             /* != 0: return cancel_code once done >= cancel_at */
	int cancel_code;
	siterec_store *peek;            /* != NULL: watch the record at every call */
	const char *name;
	const src *s;
	uint64_t dones[64];             /* distinct "done" values seen in the record */
	size_t ndones;
	int torn;                       /* a recorded offset whose data was not on the disk */
	int replace_at;                 /* != 0: replace the record behind the upload's back at this call */
} prog;

/* "done" and "complete" of a record text (the test reads JSON by hand). */
static int record_fields(const char *text, uint64_t *done, int *complete)
{
	const char *d = strstr(text, "\"done\":");
	if (!d)
		return -1;
	*done = strtoull(d + 7, NULL, 10);
	*complete = strstr(text, "\"complete\":true") != NULL;
	return 0;
}

static int get_record(siterec_store *st, const char *name, char *text, size_t cap, char *etag)
{
	char rec[256];
	snprintf(rec, sizeof(rec), "%s.upload", name);
	void *data = NULL;
	size_t len = 0;
	int rc = siterec_store_doc_get(st, rec, &data, &len, etag, etag ? SITEREC_STORE_ETAG_MAX : 0);
	if (rc)
		return rc;
	snprintf(text, cap, "%.*s", (int)len, (const char *)data);
	siterec_free(data);
	return 0;
}

static void watch_record(prog *p)
{
	char text[4096];
	uint64_t done;
	int complete;
	if (get_record(p->peek, p->name, text, sizeof(text), NULL) ||
	    record_fields(text, &done, &complete))
		return;
	if (p->ndones && p->dones[p->ndones - 1] == done)
		return;
	if (p->ndones < 64)
		p->dones[p->ndones++] = done;
	/* the invariant: everything below the recorded offset is on the disk */
	uint8_t *buf = malloc(done ? done : 1);
	if (!buf || (done && siterec_store_read(p->peek, p->name, NULL, buf, done, 0)) ||
	    memcmp(buf, p->s->data, done) != 0)
		p->torn = 1;
	free(buf);
}

static int prog_cb(uint64_t done, uint64_t total, void *payload)
{
	prog *p = payload;
	p->calls++;
	if (done < p->last)
		p->backwards = 1;
	p->last = done;
	p->total = total;
	if (p->peek)
		watch_record(p);
	if (p->replace_at && p->calls == (uint64_t)p->replace_at) {
		char rec[256], text[4096];
		snprintf(rec, sizeof(rec), "%s.upload", p->name);
		if (get_record(p->peek, p->name, text, sizeof(text), NULL) == 0)
			(void)siterec_store_doc_put(p->peek, rec, text, strlen(text), NULL, NULL, 0);
	}
	return p->cancel_at && done >= p->cancel_at ? p->cancel_code : 0;
}

static siterec_store_upload_options upload_opts(uint32_t flags, const char *source)
{
	siterec_store_upload_options o;
	assert_int_equal(siterec_store_upload_options_init(&o, SITEREC_STORE_UPLOAD_OPTIONS_VERSION), 0);
	o.flags = flags;
	o.source_id = source;
	o.checkpoint_bytes = MiB;
	return o;
}

static siterec_store_upload_stats new_stats(void)
{
	siterec_store_upload_stats s;
	memset(&s, 0xEE, sizeof(s));
	s.version = SITEREC_STORE_UPLOAD_STATS_VERSION;
	return s;
}

/* One case on one target: the source, the store (progress to prog_cb), a second
 * handle watching the record of `name` (NULL: none), the upload options. */
typedef struct ucase {
	const target *t;
	src s;
	prog p;
	siterec_store *st;
	siterec_store_upload_options o;
} ucase;

static void case_open(ucase *c, void **state, const char *container, const char *name,
                      uint64_t seed, uint32_t flags, const char *source)
{
	memset(c, 0, sizeof(*c));
	c->t = *state;
	src_init(&c->s, seed);
	c->p.name = name;
	c->p.s = &c->s;
	c->st = open_target(c->t, container, prog_cb, &c->p);
	c->p.peek = name ? open_target(c->t, container, NULL, NULL) : NULL;
	c->o = upload_opts(flags, source);
}

static void case_close(ucase *c)
{
	free(c->s.data);
	siterec_store_free(c->p.peek);
	siterec_store_free(c->st);
}

/* Upload c's source (size bytes of it) as `name` with c's options. */
static int up(ucase *c, const char *name, uint64_t size, siterec_block_status_fn status,
              siterec_store_upload_stats *stats)
{
	return siterec_store_upload(c->st, name, size, src_read, status, &c->s, &c->o, stats);
}

/* ---- cases ---- */

/* A whole upload: holes not read, zero pages not sent, content equal, records
 * moving forward with the data below them durable, the last one complete. */
static void test_full(void **state)
{
	ucase c;
	case_open(&c, state, "full", "vm1/disk0", 1, 0, "src-1");
	siterec_store_upload_stats stats = new_stats();
	int rc = up(&c, "vm1/disk0", c.s.size, src_status, &stats);
	if (rc)
		fprintf(stderr, "upload: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_false(c.s.bad);
	assert_int_equal(stats.already_complete, 0);
	assert_int_equal(stats.resumed_from, 0);
	assert_int_equal(stats.bytes_read, c.s.size - hole_bytes(&c.s));
	assert_in_range(stats.bytes_sent, nonzero_bytes(&c.s), sendable_bytes(&c.s));
	assert_true(c.s.status_calls >= 5);
	/* progress: offsets of the source, forward only, ending at its size */
	assert_false(c.p.backwards);
	assert_int_equal(c.p.last, c.s.size);
	assert_int_equal(c.p.total, c.s.size);
	/* several checkpoints (1 MiB), each durable below its offset */
	assert_true(c.p.ndones >= 3);
	assert_false(c.p.torn);
	for (size_t i = 1; i < c.p.ndones; i++)
		assert_true(c.p.dones[i] > c.p.dones[i - 1]);
	uint64_t size = 0;
	assert_int_equal(siterec_store_disk_size(c.st, "vm1/disk0", NULL, &size), 0);
	assert_int_equal(size, up512(c.s.size));
	assert_disk_equals(c.st, "vm1/disk0", &c.s, size);
	assert_not_written(c.st, "vm1/disk0", &c.s);
	char text[4096];
	uint64_t done = 0;
	int complete = 0;
	assert_int_equal(get_record(c.st, "vm1/disk0", text, sizeof(text), NULL), 0);
	assert_int_equal(record_fields(text, &done, &complete), 0);
	assert_int_equal(done, c.s.size);
	assert_true(complete);
	assert_non_null(strstr(text, "\"format\":\"siterec-upload\""));
	assert_non_null(strstr(text, "\"source\":\"src-1\""));

	/* again: already complete, nothing read or sent */
	c.s.read_calls = 0;
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;
	stats = new_stats();
	assert_int_equal(up(&c, "vm1/disk0", c.s.size, src_status, &stats), 0);
	assert_int_equal(stats.already_complete, 1);
	assert_int_equal(stats.bytes_read, 0);
	assert_int_equal(stats.bytes_sent, 0);
	assert_int_equal(c.s.read_calls, 0);
	/* without RESUME the disk is taken */
	c.o.flags = 0;
	th_assert_err(up(&c, "vm1/disk0", c.s.size, src_status, NULL), SITEREC_EEXISTS);
	/* a source with unaligned runs, and one without status (all read): equal too */
	free(c.s.data);
	src_init(&c.s, 2);
	c.s.nholes = 0;
	c.s.hole_unit = 1000;   /* runs of 1000 bytes, every other one a hole of zeros */
	for (uint64_t off = 1000; off < c.s.size; off += 2000)
		memset(c.s.data + off, 0, c.s.size - off < 1000 ? c.s.size - off : 1000);
	assert_int_equal(up(&c, "vm1/disk1", c.s.size, src_status, NULL), 0);
	assert_disk_equals(c.st, "vm1/disk1", &c.s, up512(c.s.size));
	free(c.s.data);
	src_init(&c.s, 3);
	stats = new_stats();
	assert_int_equal(up(&c, "vm1/disk2", c.s.size, NULL, &stats), 0);
	assert_int_equal(stats.bytes_read, c.s.size);
	assert_in_range(stats.bytes_sent, nonzero_bytes(&c.s), sendable_bytes(&c.s));
	assert_disk_equals(c.st, "vm1/disk2", &c.s, up512(c.s.size));
	case_close(&c);
}

/* Cancelled by the progress callback mid-way, then resumed from the record. */
static void test_cancel_resume(void **state)
{
	ucase c;
	case_open(&c, state, "cancel", "d", 4, 0, "src-4");
	const uint64_t full = nonzero_bytes(&c.s);
	c.p.cancel_at = 6 * MiB;
	c.p.cancel_code = 7;
	siterec_store_upload_stats stats = new_stats();
	th_assert_err(up(&c, "d", c.s.size, src_status, &stats), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 7);
	assert_true(stats.bytes_sent > 0 && stats.bytes_sent < full);
	assert_false(c.p.torn);
	char text[4096];
	uint64_t done = 0;
	int complete = 0;
	assert_int_equal(get_record(c.st, "d", text, sizeof(text), NULL), 0);
	assert_int_equal(record_fields(text, &done, &complete), 0);
	assert_false(complete);
	assert_true(done > 0 && done <= 6 * MiB && done % 512 == 0);

	/* without RESUME the record is in the way; another source or size conflicts */
	c.p.cancel_at = 0;
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_EEXISTS);
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;
	c.o.source_id = "src-other";
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, "src-other"));
	c.o.source_id = "src-4";
	th_assert_err(up(&c, "d", c.s.size - 512, src_status, NULL), SITEREC_ECONFLICT);
	c.o.flags |= SITEREC_STORE_UPLOAD_VHD;
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_ECONFLICT);
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;

	/* resume: only what is past the record is read and sent */
	c.s.read_bytes = 0;
	c.p.ndones = 0;
	stats = new_stats();
	int rc = up(&c, "d", c.s.size, src_status, &stats);
	if (rc)
		fprintf(stderr, "resume: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_false(c.s.bad);
	assert_false(c.p.torn);
	assert_int_equal(stats.already_complete, 0);
	assert_int_equal(stats.resumed_from, done);
	assert_true(stats.bytes_sent > 0 && stats.bytes_sent < full);
	assert_int_equal(stats.bytes_read, c.s.read_bytes);
	assert_true(stats.bytes_read < c.s.size - hole_bytes(&c.s));
	assert_disk_equals(c.st, "d", &c.s, up512(c.s.size));
	assert_not_written(c.st, "d", &c.s);

	/* a complete record for another source is still another upload's */
	c.o.source_id = "src-other";
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_ECONFLICT);
	case_close(&c);
}

/* A record without its disk (a crash between the two creations, or the disk was
 * deleted): RESUME starts over at 0 instead of trusting the record. */
static void test_record_without_disk(void **state)
{
	ucase c;
	case_open(&c, state, "nodisk", NULL, 5, 0, "src-5");
	c.p.cancel_at = 4 * MiB;
	c.p.cancel_code = 1;
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_EABORTED);
	assert_int_equal(siterec_store_disk_delete(c.st, "d", 0, NULL), 0);
	c.p.cancel_at = 0;
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;
	siterec_store_upload_stats stats = new_stats();
	assert_int_equal(up(&c, "d", c.s.size, src_status, &stats), 0);
	assert_int_equal(stats.resumed_from, 0);
	assert_in_range(stats.bytes_sent, nonzero_bytes(&c.s), sendable_bytes(&c.s));
	assert_disk_equals(c.st, "d", &c.s, up512(c.s.size));
	/* a complete record whose disk is gone is not silently "complete" */
	assert_int_equal(siterec_store_disk_delete(c.st, "d", 0, NULL), 0);
	th_assert_err(up(&c, "d", c.s.size, src_status, &stats), SITEREC_ENOTFOUND);
	case_close(&c);
}

/* Disks not made by an upload, and a second uploader racing. */
static void test_conflicts(void **state)
{
	ucase c;
	case_open(&c, state, "conflicts", "race", 6, 0, "src-6");
	assert_int_equal(siterec_store_disk_create(c.st, "plain", c.s.size), 0);
	th_assert_err(up(&c, "plain", c.s.size, src_status, NULL), SITEREC_EEXISTS);
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;
	th_assert_err(up(&c, "plain", c.s.size, src_status, NULL), SITEREC_EEXISTS);
	/* nothing was left behind by the refusals */
	char text[64];
	th_assert_err(get_record(c.st, "plain", text, sizeof(text), NULL), SITEREC_ENOTFOUND);
	/* the record replaced behind our back: the next checkpoint loses */
	c.p.replace_at = 2;
	th_assert_err(up(&c, "race", c.s.size, src_status, NULL), SITEREC_ECONFLICT);
	assert_non_null(strstr(siterec_error_last()->message, "another upload"));
	/* a record that someone else created first */
	c.o.flags = 0;
	assert_int_equal(siterec_store_doc_put(c.st, "taken.upload", "{}", 2, "", NULL, 0), 0);
	th_assert_err(up(&c, "taken", c.s.size, src_status, NULL), SITEREC_EEXISTS);
	case_close(&c);
}

/* A record of the upload "c" of `size` bytes (source "src", done 0), with up to two
 * fields given another raw JSON value (NULL: the field left out). */
typedef struct edit {
	const char *field, *value;
} edit;

static void make_record(char *out, size_t cap, uint64_t size, edit e1, edit e2)
{
	char sz[32];
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	const char *const fields[][2] = {
		{ "format", "\"siterec-upload\"" }, { "version", "1" }, { "disk", "\"c\"" },
		{ "source", "\"src\"" }, { "size", sz }, { "vhd", "false" }, { "done", "0" },
		{ "complete", "false" },
	};
	size_t n = snprintf(out, cap, "{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = fields[i][1];
		if (e1.field && !strcmp(e1.field, fields[i][0]))
			v = e1.value;
		else if (e2.field && !strcmp(e2.field, fields[i][0]))
			v = e2.value;
		if (v)
			n += snprintf(out + n, cap - n, "%s\"%s\":%s", n > 1 ? "," : "", fields[i][0], v);
	}
	snprintf(out + n, cap - n, "}");
}

static void put_record(ucase *c, const char *text)
{
	assert_int_equal(siterec_store_doc_put(c->st, "c.upload", text, strlen(text), NULL, NULL, 0), 0);
}

/* Damaged or hostile records are refused with ECORRUPT (a newer one EVERSION). */
static void test_corrupt_record(void **state)
{
	ucase c;
	case_open(&c, state, "corrupt", NULL, 7, SITEREC_STORE_UPLOAD_RESUME, "src");
	const char *const garbage[] = {
		"", "not json", "[]", "null", "{\"format\":\"siterec-upload\"", "{}",
	};
	char size_half[40];
	snprintf(size_half, sizeof(size_half), "%llu.5", (unsigned long long)c.s.size);
	const edit none = { NULL, NULL };
	const edit damage[][2] = {
		{ { "format", "\"other\"" }, none }, { { "format", NULL }, none },
		{ { "version", "\"1\"" }, none }, { { "version", "0" }, none },
		{ { "disk", "\"other\"" }, none }, { { "source", "7" }, none },
		{ { "size", "-1" }, none }, { { "size", "1e300" }, none }, { { "size", size_half }, none },
		{ { "size", "0" }, none }, { { "vhd", "0" }, none }, { { "done", NULL }, none },
		{ { "done", "100" }, none }, { { "done", "99999999999" }, none },
		{ { "done", "512" }, { "complete", "true" } }, { { "complete", "null" }, none },
	};
	const size_t ng = sizeof(garbage) / sizeof(garbage[0]);
	char text[1024];
	for (size_t i = 0; i < ng + sizeof(damage) / sizeof(damage[0]); i++) {
		if (i < ng)
			snprintf(text, sizeof(text), "%s", garbage[i]);
		else
			make_record(text, sizeof(text), c.s.size, damage[i - ng][0], damage[i - ng][1]);
		put_record(&c, text);
		int rc = up(&c, "c", c.s.size, src_status, NULL);
		if (rc != SITEREC_ECORRUPT)
			fprintf(stderr, "record %zu (%s): %d %s\n", i, text, rc, siterec_error_last()->message);
		th_assert_err(rc, SITEREC_ECORRUPT);
		assert_non_null(strstr(siterec_error_last()->message, "c.upload"));
	}
	/* deep nesting and a long string do not crash the parser */
	size_t n = 200000;
	char *deep = malloc(2 * n + 1);
	assert_non_null(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = 0;
	put_record(&c, deep);
	th_assert_err(up(&c, "c", c.s.size, src_status, NULL), SITEREC_ECORRUPT);
	memset(deep, 'x', 2 * n);
	memcpy(deep, "{\"format\":\"", 11);
	memcpy(deep + 2 * n - 2, "\"}", 2);
	put_record(&c, deep);
	th_assert_err(up(&c, "c", c.s.size, src_status, NULL), SITEREC_ECORRUPT);
	free(deep);
	/* a newer version: said so */
	make_record(text, sizeof(text), c.s.size, (edit){ "version", "2" }, none);
	put_record(&c, text);
	th_assert_err(up(&c, "c", c.s.size, src_status, NULL), SITEREC_EVERSION);
	/* a valid record of this upload written by hand is resumed (the disk is made) */
	make_record(text, sizeof(text), c.s.size, none, none);
	put_record(&c, text);
	assert_int_equal(up(&c, "c", c.s.size, src_status, NULL), 0);
	assert_disk_equals(c.st, "c", &c.s, up512(c.s.size));
	case_close(&c);
}

/* SITEREC_STORE_UPLOAD_VHD: data rounded up to a MiB, a fixed VHD footer after it;
 * the disk downloaded into a file opens as that VHD. */
static void test_vhd(void **state)
{
	ucase c;
	case_open(&c, state, "vhd", NULL, 8, SITEREC_STORE_UPLOAD_VHD, "src-8");
	c.p.cancel_at = 5 * MiB;
	c.p.cancel_code = 3;
	th_assert_err(up(&c, "v", c.s.size, src_status, NULL), SITEREC_EABORTED);
	uint64_t size = 0;
	assert_int_equal(siterec_store_disk_size(c.st, "v", NULL, &size), 0);
	assert_int_equal(size, 10 * MiB + 512);
	c.p.cancel_at = 0;
	c.o.flags |= SITEREC_STORE_UPLOAD_RESUME;
	siterec_store_upload_stats stats = new_stats();
	assert_int_equal(up(&c, "v", c.s.size, src_status, &stats), 0);
	assert_true(stats.resumed_from > 0);
	assert_int_equal(siterec_store_disk_size(c.st, "v", NULL, &size), 0);
	assert_int_equal(size, 10 * MiB + 512);
	assert_disk_equals(c.st, "v", &c.s, 10 * MiB);

	uint8_t *img = malloc(size);
	assert_non_null(img);
	assert_int_equal(siterec_store_read(c.st, "v", NULL, img, size, 0), 0);
	assert_memory_equal(img + size - 512, "conectix", 8);
	char *path = th_path(g.dir, c.t->azure ? "az.vhd" : "file.vhd");
	th_write_file(path, img, size);
	siterec_disk *d = NULL;
	assert_int_equal(siterec_disk_open(&d, path, NULL), 0);
	siterec_disk_info info;
	memset(&info, 0, sizeof(info));
	info.version = SITEREC_DISK_INFO_VERSION;
	assert_int_equal(siterec_disk_info_get(d, &info), 0);
	assert_int_equal(info.format, SITEREC_DISK_FORMAT_VHD);
	assert_int_equal(info.kind, SITEREC_DISK_KIND_FIXED);
	assert_int_equal(info.virtual_size, 10 * MiB);
	static const uint8_t zero_id[16];
	assert_memory_not_equal(info.disk_id, zero_id, 16);
	uint8_t id1[16];
	memcpy(id1, info.disk_id, 16);
	uint8_t *back = malloc(c.s.size);
	assert_non_null(back);
	assert_int_equal(siterec_disk_read(d, back, c.s.size, 0), 0);
	assert_memory_equal(back, c.s.data, c.s.size);
	siterec_disk_free(d);

	/* the footer's disk id comes from name, source and size: the same again */
	assert_int_equal(siterec_store_disk_delete(c.st, "v", 0, NULL), 0);
	assert_int_equal(siterec_store_doc_delete(c.st, "v.upload", NULL), 0);
	c.o.flags = SITEREC_STORE_UPLOAD_VHD;
	assert_int_equal(up(&c, "v", c.s.size, src_status, NULL), 0);
	assert_int_equal(siterec_store_read(c.st, "v", NULL, img, 512, size - 512), 0);
	assert_memory_equal(img, "conectix", 8);
	assert_memory_equal(img + 68, id1, 16);   /* the footer's unique id field */
	/* a MiB-sized source gets no padding */
	c.o.flags = SITEREC_STORE_UPLOAD_VHD;
	assert_int_equal(up(&c, "w", 2 * MiB, NULL, NULL), 0);
	assert_int_equal(siterec_store_disk_size(c.st, "w", NULL, &size), 0);
	assert_int_equal(size, 2 * MiB + 512);
	free(back);
	free(img);
	free(path);
	case_close(&c);
}

static int fail_status(uint64_t off, uint64_t len, uint64_t *run, int *allocated, void *payload)
{
	(void)off, (void)len, (void)run, (void)allocated, (void)payload;
	return 42;
}

/* Arguments refused before anything is done; failing callbacks. */
static void test_bad_args(void **state)
{
	ucase c;
	case_open(&c, state, "badargs", NULL, 9, 0, "x");
	siterec_store_upload_stats stats = new_stats();
	th_assert_err(siterec_store_upload(NULL, "d", c.s.size, src_read, NULL, &c.s, &c.o, NULL), SITEREC_EINVAL);
	th_assert_err(up(&c, NULL, c.s.size, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(up(&c, "/d", c.s.size, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(up(&c, "a/../b", c.s.size, NULL, NULL), SITEREC_EINVAL);
	char longname[202];
	memset(longname, 'n', sizeof(longname));
	longname[194] = 0;   /* 194 + ".upload" is 201 characters */
	th_assert_err(up(&c, longname, c.s.size, NULL, NULL), SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, ".upload"));
	th_assert_err(siterec_store_upload(c.st, "d", c.s.size, NULL, NULL, &c.s, &c.o, NULL), SITEREC_EINVAL);
	th_assert_err(up(&c, "d", 0, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(up(&c, "d", 1ull << 51, NULL, NULL), SITEREC_ERANGE);
	c.o.flags = 0x80;
	th_assert_err(up(&c, "d", c.s.size, NULL, NULL), SITEREC_EINVAL);
	c.o.flags = 0;
	c.o.version = 99;
	th_assert_err(up(&c, "d", c.s.size, NULL, NULL), SITEREC_EVERSION);
	c.o.version = SITEREC_STORE_UPLOAD_OPTIONS_VERSION;
	char *longid = malloc(2000);
	assert_non_null(longid);
	memset(longid, 'i', 1999);
	longid[1999] = 0;
	c.o.source_id = longid;
	th_assert_err(up(&c, "d", c.s.size, NULL, NULL), SITEREC_EINVAL);
	free(longid);
	c.o.source_id = NULL;   /* NULL is "" */
	stats.version = 0;
	th_assert_err(up(&c, "d", c.s.size, NULL, &stats), SITEREC_EVERSION);
	stats.version = 99;
	th_assert_err(up(&c, "d", c.s.size, NULL, &stats), SITEREC_EVERSION);
	th_assert_err(siterec_store_upload_options_init(NULL, 1), SITEREC_EINVAL);
	th_assert_err(siterec_store_upload_options_init(&c.o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_store_upload_options_init(&c.o, 99), SITEREC_EVERSION);
	/* none of that left a record or a disk */
	uint64_t size;
	th_assert_err(siterec_store_disk_size(c.st, "d", NULL, &size), SITEREC_ENOTFOUND);
	char text[64];
	th_assert_err(get_record(c.st, "d", text, sizeof(text), NULL), SITEREC_ENOTFOUND);

	/* failing callbacks abort with their code; the upload can be resumed */
	c.o = upload_opts(0, "cb");
	c.s.fail_read = 5;
	th_assert_err(up(&c, "d", c.s.size, NULL, NULL), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 5);
	assert_non_null(strstr(siterec_error_last()->message, "source read"));
	c.s.fail_read = 0;
	c.o.flags = SITEREC_STORE_UPLOAD_RESUME;
	th_assert_err(up(&c, "d", c.s.size, fail_status, NULL), SITEREC_EABORTED);
	assert_int_equal(siterec_error_last()->callback_code, 42);
	c.s.bad_run = 1;
	th_assert_err(up(&c, "d", c.s.size, src_status, NULL), SITEREC_EINVAL);
	c.s.bad_run = 0;
	/* NULL options: defaults (no RESUME) */
	th_assert_err(siterec_store_upload(c.st, "d", c.s.size, src_read, src_status, &c.s, NULL, NULL),
	              SITEREC_EEXISTS);
	assert_int_equal(up(&c, "d", c.s.size, src_status, NULL), 0);
	assert_disk_equals(c.st, "d", &c.s, up512(c.s.size));
	/* a name of 193 characters still has room for its record */
	longname[193] = 0;
	assert_int_equal(siterec_store_upload(c.st, longname, 4096, src_read, NULL, &c.s, NULL, NULL), 0);
	case_close(&c);
}

/* every case on both targets, named "case (target)" */
#define BOTH(fn) { #fn " (file)", fn, NULL, NULL, &file_target }, \
                 { #fn " (azurite)", fn, NULL, NULL, &azure_target }

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_full),
		BOTH(test_cancel_resume),
		BOTH(test_record_without_disk),
		BOTH(test_conflicts),
		BOTH(test_corrupt_record),
		BOTH(test_vhd),
		BOTH(test_bad_args),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
