/* Recovery points (include/siterec/rp.h): one JSON document per point,
 * "VM/points/ID", created with If-Match "" (create-only); the catalogue handle
 * caches the parsed points in id order. Built on the public store calls only.
 * The document format is in doc/formats.md ("Recovery point documents"):
 * nothing in a document is trusted; one the library cannot read fails the call
 * that reads it (SITEREC_ECORRUPT or SITEREC_EVERSION, naming it). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "rp_internal.h"
#include "siterec/dlog.h"
#include "siterec/rp.h"

#define RP_FORMAT "siterec-rp"
#define RP_VERSION_SNAP 1            /* documents of snapshot points */
#define RP_VERSION_LOGS 2            /* of log points: a version-1 reader would miss the logs */
#define RP_MAX_LOGS 100000u
#define RP_PIECE (4u << 20)          /* restore: largest read and write */
#define RP_POINT_V1_SIZE offsetof(siterec_rp_point, n_logs)
#define RP_VM_MAX 64
#define RP_NAME_MAX 200              /* store object names */
#define RP_MAX_DISKS 256
#define RP_DOC_MAX (4u << 20)        /* the store's document limit */
#define RP_MAX_EXTENTS 1000000u      /* of one disk in one document */
#define RP_ID_DIGITS 20              /* "VM/points/%020llu" */
#define RP_UNKNOWN UINT64_MAX        /* n_changed: the whole disk */

typedef struct rp_pt {
	uint64_t id;
	int64_t cut_time_ms;
	uint32_t kind, n_disks;
	siterec_rp_disk *disks;          /* strings and extent arrays owned (sr_malloc) */
	uint64_t n_logs;
	siterec_rp_log *logs;            /* object strings owned */
} rp_pt;

struct siterec_rp_catalog {
	siterec_store *store;
	char vm[RP_VM_MAX + 1];
	char prefix[RP_VM_MAX + 16];     /* "VM/points/" */
	char logs_prefix[RP_VM_MAX + 16];  /* "VM/logs/" */
	rp_pt *pts;                      /* ascending id */
	size_t n;
	/* the log point's disk siterec_rp_read() materialised last (mat_fd -1: none) */
	int mat_fd;
	uint32_t mat_disk;
	uint64_t mat_id, mat_size;
};

/* ---- names ---- */

static int name_char_ok(char c, int slash)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-' || (slash && c == '/');
}

/* 1..max of [A-Za-z0-9._-], not starting with '.': the store's rule for snapshot
 * ids; with slash also '/', not first, and no ".." or "//": its rule for names. */
static int name_ok(const char *s, size_t max, int slash)
{
	size_t n = 0;
	if (!s || s[0] == '.' || s[0] == '/')
		return 0;
	for (; s[n]; n++)
		if (n >= max || !name_char_ok(s[n], slash))
			return 0;
	return n > 0 && (!slash || (!strstr(s, "..") && !strstr(s, "//")));
}

/* A VM id begins store names ("VM/points/..."): no ".." either. */
static int vm_id_ok(const char *s)
{
	return name_ok(s, RP_VM_MAX, 0) && !strstr(s, "..");
}

static int disk_name_ok(const char *s)
{
	return name_ok(s, RP_NAME_MAX, 1);
}

static int snap_id_ok(const char *s)
{
	return name_ok(s, SITEREC_STORE_ID_MAX - 1, 0);
}

static void point_name(const siterec_rp_catalog *cat, uint64_t id, char *out, size_t cap)
{
	snprintf(out, cap, "%s%0*llu", cat->prefix, RP_ID_DIGITS, (unsigned long long)id);
}

/* The first 20 characters of s as 20 decimal digits (below 2^64). */
static int dec20(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < RP_ID_DIGITS; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* Strict decimal: 1..20 digits, no sign, no leading zero (except "0"), no overflow. */
static int dec_u64(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	size_t n = 0;
	if (!s || !s[0] || (s[0] == '0' && s[1]))
		return -1;
	for (; s[n]; n++) {
		unsigned d = (unsigned)(s[n] - '0');
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* ---- points in memory ---- */

static void pt_free(rp_pt *p)
{
	for (uint32_t i = 0; p->disks && i < p->n_disks; i++) {
		sr_free((void *)p->disks[i].disk);
		sr_free((void *)p->disks[i].snapshot);
		sr_free((void *)p->disks[i].changed);
	}
	sr_free(p->disks);
	for (uint64_t i = 0; p->logs && i < p->n_logs; i++)
		sr_free((void *)p->logs[i].object);
	sr_free(p->logs);
	memset(p, 0, sizeof(*p));
}

static void pts_free(rp_pt *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pt_free(&v[i]);
	sr_free(v);
}

/* Index of id in the cache, or -1. */
static long cat_index(const siterec_rp_catalog *cat, uint64_t id)
{
	size_t lo = 0, hi = cat->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cat->pts[mid].id == id)
			return (long)mid;
		if (cat->pts[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- changed extents: "G:L,G:L,..." (lowercase hex, G the gap after the
 * previous extent's end, the first one's from 0), or "all" ---- */

static size_t hex_len(uint64_t v)
{
	size_t n = 1;
	while (v >>= 4)
		n++;
	return n;
}

static char *hex_put(char *p, uint64_t v)
{
	size_t n = hex_len(v);
	for (size_t i = n; i-- > 0; v >>= 4)
		p[i] = "0123456789abcdef"[v & 15];
	return p + n;
}

/* The text of n extents (checked: ascending, not overlapping) into a new string. */
static char *ext_encode(const siterec_extent *e, uint64_t n, size_t *len_out)
{
	size_t len = 0;
	uint64_t end = 0;
	for (uint64_t i = 0; i < n; i++) {
		len += hex_len(e[i].offset - end) + 1 + hex_len(e[i].length) + (i ? 1 : 0);
		end = e[i].offset + e[i].length;
	}
	char *s = sr_malloc(len + 1), *p = s;
	if (!s)
		return NULL;
	end = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		p = hex_put(p, e[i].offset - end);
		*p++ = ':';
		p = hex_put(p, e[i].length);
		end = e[i].offset + e[i].length;
	}
	*p = 0;
	*len_out = len;
	return s;
}

static int hex_get(const char **pp, uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;
	size_t n = 0;
	for (;; n++) {
		unsigned c = (unsigned char)p[n], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		if (n == 16)
			return -1;
		x = x << 4 | d;
	}
	if (n == 0)
		return -1;
	*pp = p + n;
	*v = x;
	return 0;
}

/* Parse the extent text: 0, or -1 with *why set (-2: out of memory). */
static int ext_decode(const char *s, siterec_extent **out, uint64_t *n_out, const char **why)
{
	size_t n = 0;
	*out = NULL;
	*n_out = 0;
	if (!*s)
		return 0;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	n++;
	if (n > RP_MAX_EXTENTS) {
		*why = "more than 1000000 changed extents on one disk";
		return -1;
	}
	siterec_extent *e = sr_malloc(n * sizeof(*e));
	if (!e)
		return -2;
	const char *p = s;
	uint64_t end = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t gap, len;
		if (i && *p++ != ',') {
			*why = "extent list malformed";
			goto bad;
		}
		if (hex_get(&p, &gap) || *p++ != ':' || hex_get(&p, &len)) {
			*why = "extent list malformed (not GAP:LENGTH in lowercase hex of at most 16 digits)";
			goto bad;
		}
		if (len == 0 || gap > UINT64_MAX - end || len > UINT64_MAX - (end + gap)) {
			*why = "extent of length 0, or past 2^64";
			goto bad;
		}
		e[i].offset = end + gap;
		e[i].length = len;
		end = e[i].offset + len;
	}
	if (*p) {
		*why = "extent list malformed (trailing characters)";
		goto bad;
	}
	*out = e;
	*n_out = n;
	return 0;
bad:
	sr_free(e);
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* n extents (ascending, not overlapping) merged into k (1 <= k < n) by closing
 * the n - k smallest gaps (ties from the left): a superset of the bytes. */
static int ext_merge(const siterec_extent *in, uint64_t n, uint64_t k, siterec_extent **out)
{
	uint64_t need = n - k, *gaps = sr_malloc((size_t)(n - 1) * sizeof(*gaps));
	siterec_extent *o = sr_malloc((size_t)k * sizeof(*o));
	if (!gaps || !o) {
		sr_free(gaps);
		sr_free(o);
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory merging %llu extents",
		              (unsigned long long)n);
	}
	for (uint64_t i = 0; i + 1 < n; i++)
		gaps[i] = in[i + 1].offset - (in[i].offset + in[i].length);
	qsort(gaps, (size_t)(n - 1), sizeof(*gaps), cmp_u64);
	uint64_t t = gaps[need - 1], below = 0;
	for (uint64_t i = 0; i < need; i++)
		below += gaps[i] < t;
	uint64_t ties = need - below, m = 0;  /* gaps equal to t still to close */
	sr_free(gaps);
	o[0] = in[0];
	for (uint64_t i = 1; i < n; i++) {
		uint64_t end = o[m].offset + o[m].length, g = in[i].offset - end;
		if (g < t || (g == t && ties && ties--)) {
			o[m].length = in[i].offset + in[i].length - o[m].offset;
		} else {
			o[++m] = in[i];
		}
	}
	*out = o;
	return 0;
}

/* ---- logs (point version 2) ---- */

static int cmp_log_object(const void *a, const void *b)
{
	const siterec_rp_log *x = *(const siterec_rp_log *const *)a, *y = *(const siterec_rp_log *const *)b;
	return strcmp(x->object, y->object);
}

/* Check the n logs of a point of n_disks disks, for siterec_rp_add() (caller's
 * input) and the reader (a document) alike: 0, -1 with *why and *at (the log's
 * index) set, or -2 out of memory. */
static int logs_check(const siterec_rp_catalog *cat, const siterec_rp_log *l, uint64_t n,
                      uint32_t n_disks, const char **why, uint64_t *at)
{
	size_t plen = strlen(cat->logs_prefix);
	for (uint64_t i = 0; i < n; i++) {
		*at = i;
		if (l[i].reserved)
			*why = "its reserved field is not 0";
		else if (l[i].disk_index >= n_disks)
			*why = "its disk_index is not below the number of disks";
		else if (i && (l[i].disk_index < l[i - 1].disk_index ||
		               (l[i].disk_index == l[i - 1].disk_index && l[i].seq <= l[i - 1].seq)))
			*why = "not after the log before it by (disk_index, seq)";
		else if (!disk_name_ok(l[i].object) || strncmp(l[i].object, cat->logs_prefix, plen) ||
		         !l[i].object[plen])
			*why = "its object is not a store name under VM/logs/ (VM: the catalogue's)";
		else if (!l[i].length)
			*why = "its length is 0";
		else if (l[i].sealed_ms < 0)
			*why = "its sealed_ms is negative";
		else
			continue;
		return -1;
	}
	if (n < 2)
		return 0;
	/* each object once: sorted, neighbours differ */
	const siterec_rp_log **v = sr_malloc((size_t)n * sizeof(*v));
	if (!v)
		return -2;
	for (uint64_t i = 0; i < n; i++)
		v[i] = &l[i];
	qsort(v, (size_t)n, sizeof(*v), cmp_log_object);
	int rc = 0;
	for (uint64_t i = 1; !rc && i < n; i++) {
		if (strcmp(v[i - 1]->object, v[i]->object) == 0) {
			*at = (uint64_t)(v[i] - l);
			*why = "its object is named by another log too";
			rc = -1;
		}
	}
	sr_free(v);
	return rc;
}

/* First log of disk i in p's logs (ascending by disk), and how many. */
static void logs_of_disk(const rp_pt *p, uint32_t i, uint64_t *first, uint64_t *count)
{
	uint64_t a = 0, b;
	while (a < p->n_logs && p->logs[a].disk_index < i)
		a++;
	for (b = a; b < p->n_logs && p->logs[b].disk_index == i; b++)
		;
	*first = a;
	*count = b - a;
}

/* When log l of point p counts as sealed: its seal time; the point's cut when
 * that is unknown (0), or later than the cut (a clock stepped back: the cut
 * sealed it at the latest). */
static int64_t log_sealed(const rp_pt *p, const siterec_rp_log *l)
{
	return l->sealed_ms && l->sealed_ms < p->cut_time_ms ? l->sealed_ms : p->cut_time_ms;
}

/* How many of the nl logs of p from first make its content at until_ms: the
 * leading ones sealed by then. A prefix even if seal times go back in seq
 * order, since each log's writes go on top of those before it. */
static uint64_t logs_until(const rp_pt *p, uint64_t first, uint64_t nl, int64_t until_ms)
{
	uint64_t k = 0;
	while (k < nl && log_sealed(p, &p->logs[first + k]) <= until_ms)
		k++;
	return k;
}

/* ---- the document ---- */

/* The document of point p whose disk i has the extent text ext[i] ("all" for
 * unknown), logs its "logs" member (logs_encode()). Every string in it was
 * checked to need no JSON escape. */
#define DOC_DISK1 "{\"disk\":\""
#define DOC_DISK2 "\",\"snapshot\":\""
#define DOC_DISK3 "\",\"changed\":\""
#define DOC_DISK4 "\"}"
#define DOC_LOG "{\"disk_index\":%u,\"seq\":\"%llu\",\"object\":\"%s\",\"length\":\"%llu\"," \
                "\"sealed_ms\":\"%lld\"}"

/* The "logs" member of a checked point's document with its leading ',' ("" for
 * a snapshot point), in a new string. */
static char *logs_encode(const siterec_rp_point *p)
{
	size_t cap = sizeof(",\"logs\":[]");
	for (uint64_t i = 0; i < p->n_logs; i++)
		cap += sizeof(DOC_LOG) + 4 * 20 + strlen(p->logs[i].object);
	char *s = sr_malloc(cap), *t = s;
	if (!s)
		return NULL;
	*t = 0;
	if (!p->n_logs)
		return s;
	t = stpcpy(t, ",\"logs\":[");
	for (uint64_t i = 0; i < p->n_logs; i++) {
		const siterec_rp_log *l = &p->logs[i];
		t += snprintf(t, cap - (size_t)(t - s), "%s" DOC_LOG, i ? "," : "", l->disk_index,
		              (unsigned long long)l->seq, l->object, (unsigned long long)l->length,
		              (long long)l->sealed_ms);
	}
	stpcpy(t, "]");
	return s;
}

static char *doc_text(const siterec_rp_catalog *cat, const siterec_rp_point *p, uint64_t nonce,
                      char *const *ext, const char *logs, size_t *len_out)
{
	char head[256];
	int hn = snprintf(head, sizeof(head), "{\"format\":\"" RP_FORMAT "\",\"version\":%d,"
	                  "\"vm\":\"%s\",\"id\":\"%llu\",\"kind\":\"%s\",\"cut_time_ms\":\"%lld\","
	                  "\"nonce\":\"%016llx\",\"disks\":[",
	                  p->n_logs ? RP_VERSION_LOGS : RP_VERSION_SNAP, cat->vm,
	                  (unsigned long long)p->id, p->kind == SITEREC_RP_APP ? "app" : "crash",
	                  (long long)p->cut_time_ms, (unsigned long long)nonce);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return NULL;
	size_t len = (size_t)hn + strlen("]") + strlen(logs) + strlen("}");
	for (uint32_t i = 0; i < p->n_disks; i++)
		len += (i ? 1 : 0) + strlen(DOC_DISK1) + strlen(p->disks[i].disk) + strlen(DOC_DISK2) +
		       strlen(p->disks[i].snapshot) + strlen(DOC_DISK3) + strlen(ext[i]) +
		       strlen(DOC_DISK4);
	char *text = sr_malloc(len + 1), *t = text;
	if (!text)
		return NULL;
	t = stpcpy(t, head);
	for (uint32_t i = 0; i < p->n_disks; i++) {
		t = stpcpy(stpcpy(t, i ? "," : ""), DOC_DISK1);
		t = stpcpy(stpcpy(t, p->disks[i].disk), DOC_DISK2);
		t = stpcpy(stpcpy(t, p->disks[i].snapshot), DOC_DISK3);
		t = stpcpy(stpcpy(t, ext[i]), DOC_DISK4);
	}
	stpcpy(stpcpy(stpcpy(t, "]"), logs), "}");
	*len_out = len;
	return text;
}

/* Build the document of a checked point: extents merged until it fits in
 * RP_DOC_MAX (each disk to at most RP_MAX_EXTENTS first). */
static int doc_build(const siterec_rp_catalog *cat, const siterec_rp_point *p, uint64_t nonce,
                     char **text_out, size_t *len_out)
{
	uint32_t nd = p->n_disks;
	const siterec_extent **cur = sr_calloc(nd, sizeof(*cur));
	siterec_extent **own = sr_calloc(nd, sizeof(*own));
	uint64_t *cnt = sr_calloc(nd, sizeof(*cnt));
	char **ext = sr_calloc(nd, sizeof(*ext));
	size_t *elen = sr_calloc(nd, sizeof(*elen));
	char *text = NULL, *logs = logs_encode(p);
	int rc = 0;
	if (!cur || !own || !cnt || !ext || !elen || !logs) {
		rc = sr_err(SITEREC_ENOMEM, "recovery point: out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < nd; i++) {
		cur[i] = p->disks[i].changed;
		cnt[i] = p->disks[i].n_changed;
		if (cnt[i] != RP_UNKNOWN && cnt[i] > RP_MAX_EXTENTS) {
			if ((rc = ext_merge(cur[i], cnt[i], RP_MAX_EXTENTS, &own[i])))
				goto out;
			cur[i] = own[i];
			cnt[i] = RP_MAX_EXTENTS;
		}
	}
	for (;;) {
		size_t ext_bytes = 0, len = 0;
		for (uint32_t i = 0; i < nd; i++) {
			sr_free(ext[i]);
			ext[i] = cnt[i] == RP_UNKNOWN ? sr_strdup("all") : ext_encode(cur[i], cnt[i], &elen[i]);
			if (!ext[i]) {
				rc = sr_err(SITEREC_ENOMEM, "recovery point: out of memory");
				goto out;
			}
			ext_bytes += cnt[i] == RP_UNKNOWN ? 0 : elen[i];
		}
		if (!(text = doc_text(cat, p, nonce, ext, logs, &len))) {
			rc = sr_err(SITEREC_ENOMEM, "recovery point: out of memory");
			goto out;
		}
		if (len <= RP_DOC_MAX) {
			*text_out = text;
			*len_out = len;
			text = NULL;
			goto out;
		}
		sr_free(text);
		text = NULL;
		/* too large: cap the number of extents of every disk at the largest c
		 * for which the lists would fit at their current bytes per extent, with
		 * a margin (merged extents have longer numbers); short lists stay exact */
		size_t fixed = len - ext_bytes;
		double budget = fixed < RP_DOC_MAX ? (double)(RP_DOC_MAX - fixed) * 0.95 : 0;
		uint64_t lo = 1, hi = 1;
		for (uint32_t i = 0; i < nd; i++)
			if (cnt[i] != RP_UNKNOWN && cnt[i] > hi)
				hi = cnt[i];
		hi--;  /* at least the longest list shrinks */
		while (lo < hi) {
			uint64_t c = lo + (hi - lo + 1) / 2;
			double need = 0;
			for (uint32_t i = 0; i < nd; i++)
				if (cnt[i] != RP_UNKNOWN && cnt[i])
					need += (double)(cnt[i] < c ? cnt[i] : c) * (double)elen[i] / (double)cnt[i];
			if (need <= budget)
				lo = c;
			else
				hi = c - 1;
		}
		int progress = 0;
		for (uint32_t i = 0; i < nd; i++) {
			if (cnt[i] == RP_UNKNOWN || cnt[i] <= lo)
				continue;
			siterec_extent *m;
			if ((rc = ext_merge(cur[i], cnt[i], lo, &m)))
				goto out;
			sr_free(own[i]);
			cur[i] = own[i] = m;
			cnt[i] = lo;
			progress = 1;
		}
		if (!progress) {  /* what is left is names, ids and logs */
			rc = sr_err(SITEREC_EINVAL, "recovery point %llu: the document does not fit in 4 MiB "
			            "(%u disks, %llu logs)", (unsigned long long)p->id, nd,
			            (unsigned long long)p->n_logs);
			goto out;
		}
	}
out:
	for (uint32_t i = 0; own && ext && i < nd; i++) {
		sr_free(own[i]);
		sr_free(ext[i]);
	}
	sr_free(cur);
	sr_free(own);
	sr_free(cnt);
	sr_free(ext);
	sr_free(elen);
	sr_free(logs);
	return rc;
}

static int doc_damaged(const char *name, const char *why)
{
	return sr_err(SITEREC_ECORRUPT, "recovery point document %s is damaged: %s", name, why);
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(s) && s->valuestring ? s->valuestring : NULL;
}

/* One disk of a document into d (strings and extents allocated). */
static int disk_parse(const char *name, const cJSON *o, siterec_rp_disk *d)
{
	const char *disk = json_str(o, "disk"), *snap = json_str(o, "snapshot"),
	           *changed = json_str(o, "changed"), *why = NULL;
	if (!cJSON_IsObject(o) || !disk_name_ok(disk))
		return doc_damaged(name, "a disk without a valid \"disk\" name");
	if (!snap_id_ok(snap))
		return doc_damaged(name, "a disk without a valid \"snapshot\" id");
	if (!changed)
		return doc_damaged(name, "a disk without a string \"changed\"");
	if (!(d->disk = sr_strdup(disk)) || !(d->snapshot = sr_strdup(snap)))
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	if (strcmp(changed, "all") == 0) {
		d->n_changed = RP_UNKNOWN;
		return 0;
	}
	siterec_extent *e;
	int r = ext_decode(changed, &e, &d->n_changed, &why);
	if (r == -2)
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	if (r)
		return doc_damaged(name, why);
	d->changed = e;
	return 0;
}

/* One log of a document into l (object allocated); logs_check() does the rest. */
static int log_parse(const char *name, const cJSON *o, siterec_rp_log *l)
{
	const cJSON *di = cJSON_GetObjectItemCaseSensitive(o, "disk_index");
	const char *obj = json_str(o, "object");
	if (!cJSON_IsObject(o) || !cJSON_IsNumber(di) ||
	    !(di->valuedouble >= 0 && di->valuedouble < RP_MAX_DISKS) ||
	    (double)(uint32_t)di->valuedouble != di->valuedouble)
		return doc_damaged(name, "a log without a valid \"disk_index\" (an integer 0..255)");
	if (dec_u64(json_str(o, "seq"), &l->seq))
		return doc_damaged(name, "a log without a valid \"seq\" (a decimal string)");
	if (dec_u64(json_str(o, "length"), &l->length))
		return doc_damaged(name, "a log without a valid \"length\" (a decimal string)");
	if (!obj)
		return doc_damaged(name, "a log without a string \"object\"");
	/* absent in documents written before seal times were kept: unknown (0) */
	uint64_t sealed = 0;
	if (cJSON_GetObjectItemCaseSensitive(o, "sealed_ms") &&
	    (dec_u64(json_str(o, "sealed_ms"), &sealed) || sealed > INT64_MAX))
		return doc_damaged(name, "a log whose \"sealed_ms\" is not a decimal string 0..2^63-1");
	l->sealed_ms = (int64_t)sealed;
	l->disk_index = (uint32_t)di->valuedouble;
	if (!(l->object = sr_strdup(obj)))
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	return 0;
}

/* The "logs" of a document of this version into out (its disks parsed). */
static int logs_parse(const siterec_rp_catalog *cat, const char *name, const cJSON *o,
                      double version, rp_pt *out)
{
	const cJSON *logs = cJSON_GetObjectItemCaseSensitive(o, "logs"), *l;
	const char *why = NULL;
	uint64_t at;
	int n = 0, rc = 0;
	if (version < RP_VERSION_LOGS)  /* no writer makes one; an old reader would misread it */
		return logs ? doc_damaged(name, "\"logs\" in a version 1 document") : 0;
	if (!cJSON_IsArray(logs) || (n = cJSON_GetArraySize(logs)) < 1 || (unsigned)n > RP_MAX_LOGS)
		return doc_damaged(name, "\"logs\" is not an array of 1 to 100000 logs");
	if (!(out->logs = sr_calloc((size_t)n, sizeof(*out->logs))))
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	out->n_logs = (uint64_t)n;
	l = logs->child;
	for (int i = 0; !rc && i < n; i++, l = l->next)
		rc = log_parse(name, l, &out->logs[i]);
	if (rc)
		return rc;
	rc = logs_check(cat, out->logs, out->n_logs, out->n_disks, &why, &at);
	if (rc == -2)
		return sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	return rc ? doc_damaged(name, why) : 0;
}

/* Parse and check the document `name` (its id: want_id) into *out. */
static int doc_parse(const siterec_rp_catalog *cat, const char *name, uint64_t want_id,
                     const void *data, size_t len, rp_pt *out)
{
	memset(out, 0, sizeof(*out));
	if (len > RP_DOC_MAX)
		return doc_damaged(name, "larger than 4 MiB");
	cJSON *o = cJSON_ParseWithLength(data, len);
	const cJSON *disks = cJSON_GetObjectItemCaseSensitive(o, "disks"),
	            *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
	const char *s, *kind = json_str(o, "kind");
	uint64_t v = 0;
	int rc = 0, n = 0;
	if (!cJSON_IsObject(o))
		rc = doc_damaged(name, "not a JSON object");
	else if (!(s = json_str(o, "format")) || strcmp(s, RP_FORMAT) != 0)
		rc = doc_damaged(name, "\"format\" is not \"" RP_FORMAT "\"");
	else if (!cJSON_IsNumber(ver) || !(ver->valuedouble >= 1 && ver->valuedouble <= 0x1p53) ||
	         (double)(uint64_t)ver->valuedouble != ver->valuedouble)
		rc = doc_damaged(name, "no valid \"version\" (an integer 1..2^53)");
	else if (ver->valuedouble > RP_VERSION_LOGS)
		rc = sr_err(SITEREC_EVERSION, "recovery point document %s has version %.0f; this library "
		            "reads versions 1 to %d", name, ver->valuedouble, RP_VERSION_LOGS);
	else if (!(s = json_str(o, "vm")) || strcmp(s, cat->vm) != 0)
		rc = doc_damaged(name, "\"vm\" does not name this VM");
	else if (dec_u64(json_str(o, "id"), &out->id) || out->id != want_id)
		rc = doc_damaged(name, "\"id\" is not the decimal id of its name");
	else if (!kind || (strcmp(kind, "crash") != 0 && strcmp(kind, "app") != 0))
		rc = doc_damaged(name, "\"kind\" is not \"crash\" or \"app\"");
	else if (dec_u64(json_str(o, "cut_time_ms"), &v) || v > INT64_MAX)
		rc = doc_damaged(name, "\"cut_time_ms\" is not a decimal string 0..2^63-1");
	else if (!cJSON_IsArray(disks) || (n = cJSON_GetArraySize(disks)) < 1 || n > RP_MAX_DISKS)
		rc = doc_damaged(name, "\"disks\" is not an array of 1 to 256 disks");
	if (rc) {
		cJSON_Delete(o);
		return rc;
	}
	out->kind = strcmp(kind, "app") == 0 ? SITEREC_RP_APP : SITEREC_RP_CRASH;
	out->cut_time_ms = (int64_t)v;
	out->n_disks = (uint32_t)n;
	if (!(out->disks = sr_calloc((size_t)n, sizeof(*out->disks))))
		rc = sr_err(SITEREC_ENOMEM, "recovery point: out of memory reading %s", name);
	const cJSON *d = disks->child;
	for (int i = 0; !rc && i < n; i++, d = d->next) {
		rc = disk_parse(name, d, &out->disks[i]);
		for (int j = 0; !rc && j < i; j++)
			if (strcmp(out->disks[j].disk, out->disks[i].disk) == 0)
				rc = doc_damaged(name, "a disk named twice");
	}
	if (!rc)
		rc = logs_parse(cat, name, o, ver->valuedouble, out);
	cJSON_Delete(o);
	if (rc)
		pt_free(out);
	return rc;
}

/* ---- reading the catalogue ---- */

/* The id of a point document from its name's last part: exactly 20 digits. */
static int id_of_name(const char *s, uint64_t *id)
{
	return strlen(s) == RP_ID_DIGITS ? dec20(s, id) : -1;
}

/* The seq of a log object from its name's last part: "SEQ-TAG", SEQ 20 digits. */
static int seq_of_name(const char *s, uint64_t *seq)
{
	return strlen(s) > RP_ID_DIGITS + 1 && s[RP_ID_DIGITS] == '-' ? dec20(s, seq) : -1;
}

typedef struct id_list {
	const siterec_rp_catalog *cat;
	uint64_t *ids;
	size_t n, cap;
	char bad[256];      /* a document under the prefix that is not a point's */
	int oom;
} id_list;

static int list_ids_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	id_list *l = payload;
	const char *s = name + strlen(l->cat->prefix);
	uint64_t id;
	if (kind != SITEREC_STORE_KIND_DOC || strncmp(name, l->cat->prefix, strlen(l->cat->prefix)))
		return 0;
	if (id_of_name(s, &id)) {
		if (!l->bad[0])
			snprintf(l->bad, sizeof(l->bad), "%s", name);
		return 0;
	}
	uint64_t *nv = sr_grow(l->ids, &l->cap, l->n, sizeof(*nv), 64);
	if (!nv) {
		l->oom = 1;
		return 1;
	}
	l->ids = nv;
	l->ids[l->n++] = id;
	return 0;
}

/* Forget the materialised disk (siterec_rp_read()). */
static void mat_drop(siterec_rp_catalog *cat)
{
	if (cat->mat_fd >= 0)
		close(cat->mat_fd);
	cat->mat_fd = -1;
}

/* ... when its point is no longer in the catalogue. */
static void mat_forget_gone(siterec_rp_catalog *cat)
{
	if (cat->mat_fd >= 0 && cat_index(cat, cat->mat_id) < 0)
		mat_drop(cat);
}

/* Read the catalogue's list from the target: points already cached are kept
 * (points are immutable), new ones are read, gone ones dropped. On failure the
 * cache is unchanged. */
static int cat_refresh(siterec_rp_catalog *cat)
{
	id_list l = { .cat = cat };
	rp_pt *fresh = NULL, *all = NULL;
	size_t nf = 0;
	int rc = siterec_store_list(cat->store, cat->prefix, list_ids_cb, &l);
	if (l.oom)
		rc = sr_err(SITEREC_ENOMEM, "recovery points of %s: out of memory listing", cat->vm);
	else if (!rc && l.bad[0])
		rc = sr_err(SITEREC_ECORRUPT, "recovery point document %s is damaged: its name is not "
		            "%s followed by 20 digits", l.bad, cat->prefix);
	if (rc)
		goto out;
	if (l.n)
		qsort(l.ids, l.n, sizeof(*l.ids), cmp_u64);
	if (l.n && !(fresh = sr_calloc(l.n, sizeof(*fresh)))) {
		rc = sr_err(SITEREC_ENOMEM, "recovery points of %s: out of memory", cat->vm);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		char name[256];
		void *data = NULL;
		size_t len = 0;
		if (cat_index(cat, l.ids[i]) >= 0)
			continue;
		point_name(cat, l.ids[i], name, sizeof(name));
		rc = siterec_store_doc_get(cat->store, name, &data, &len, NULL, 0);
		if (rc == SITEREC_ENOTFOUND) {  /* pruned since the listing */
			rc = 0;
			continue;
		}
		if (!rc && !(rc = doc_parse(cat, name, l.ids[i], data, len, &fresh[nf])))
			nf++;
		siterec_free(data);
		if (rc)
			goto out;
	}
	/* merge the kept cached points with the fresh ones, both ascending */
	size_t kept = 0, a = 0, b = 0, k = 0;
	for (size_t i = 0; i < cat->n; i++)
		kept += bsearch(&cat->pts[i].id, l.ids, l.n, sizeof(*l.ids), cmp_u64) != NULL;
	if (kept + nf && !(all = sr_malloc((kept + nf) * sizeof(*all)))) {
		rc = sr_err(SITEREC_ENOMEM, "recovery points of %s: out of memory", cat->vm);
		goto out;
	}
	while (a < cat->n || b < nf) {
		if (a < cat->n && !bsearch(&cat->pts[a].id, l.ids, l.n, sizeof(*l.ids), cmp_u64)) {
			pt_free(&cat->pts[a++]);
			continue;
		}
		if (b >= nf || (a < cat->n && cat->pts[a].id < fresh[b].id))
			all[k++] = cat->pts[a++];
		else
			all[k++] = fresh[b++];
	}
	sr_free(cat->pts);
	cat->pts = all;
	cat->n = k;
	nf = 0;  /* moved */
	mat_forget_gone(cat);
out:
	pts_free(fresh, nf);
	sr_free(l.ids);
	return rc;
}

/* ---- the API ---- */

static int check_cat(const siterec_rp_catalog *cat, const char *what)
{
	if (!cat)
		return sr_err(SITEREC_EINVAL, "%s: catalogue is NULL", what);
	return 0;
}

static int check_point_version(const siterec_rp_point *p, const char *what)
{
	if (!p)
		return sr_err(SITEREC_EINVAL, "%s: point is NULL", what);
	if (p->version < 1 || p->version > SITEREC_RP_POINT_VERSION)
		return sr_err(SITEREC_EVERSION, "%s: point version %u not supported (1..%d)", what,
		              p->version, SITEREC_RP_POINT_VERSION);
	return 0;
}

SITEREC_API int siterec_rp_open(siterec_rp_catalog **out, siterec_store *store, const char *vm_id)
{
	if (out)
		*out = NULL;
	if (!out || !store)
		return sr_err(SITEREC_EINVAL, "recovery points open: out or store is NULL");
	if (!vm_id_ok(vm_id))
		return sr_err(SITEREC_EINVAL, "recovery points open: VM id '%.*s' invalid: 1..64 of "
		              "[A-Za-z0-9._-], not starting with '.', no \"..\"", 80,
		              vm_id ? vm_id : "(null)");
	siterec_rp_catalog *cat = sr_calloc(1, sizeof(*cat));
	if (!cat)
		return sr_err(SITEREC_ENOMEM, "recovery points open: out of memory");
	cat->store = store;
	cat->mat_fd = -1;
	snprintf(cat->vm, sizeof(cat->vm), "%s", vm_id);
	snprintf(cat->prefix, sizeof(cat->prefix), "%s/points/", vm_id);
	snprintf(cat->logs_prefix, sizeof(cat->logs_prefix), "%s/logs/", vm_id);
	int rc = cat_refresh(cat);
	if (rc) {
		siterec_rp_free(cat);
		return rc;
	}
	*out = cat;
	return 0;
}

SITEREC_API void siterec_rp_free(siterec_rp_catalog *cat)
{
	if (!cat)
		return;
	mat_drop(cat);
	pts_free(cat->pts, cat->n);
	sr_free(cat);
}

SITEREC_API int siterec_rp_refresh(siterec_rp_catalog *cat)
{
	int rc = check_cat(cat, "recovery points refresh");
	return rc ? rc : cat_refresh(cat);
}

/* The caller's point as a current one: of a version-1 struct (smaller) only its
 * fields are read, and it has no logs. */
static int point_in(const siterec_rp_point *in, siterec_rp_point *out, const char *what)
{
	int rc = check_point_version(in, what);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	memcpy(out, in, in->version >= 2 ? sizeof(*out) : RP_POINT_V1_SIZE);
	return 0;
}

/* Everything of a point to add (point_in()) that can be checked without the target. */
static int point_check(const siterec_rp_catalog *cat, const siterec_rp_point *p)
{
	const char *why = NULL;
	uint64_t at = 0;
	int rc;
	if (p->kind != SITEREC_RP_CRASH && p->kind != SITEREC_RP_APP)
		return sr_err(SITEREC_EINVAL, "recovery point %llu: kind %u is neither "
		              "SITEREC_RP_CRASH nor SITEREC_RP_APP", (unsigned long long)p->id, p->kind);
	if (p->cut_time_ms < 0)
		return sr_err(SITEREC_EINVAL, "recovery point %llu: cut time %lld is negative",
		              (unsigned long long)p->id, (long long)p->cut_time_ms);
	if (p->n_disks < 1 || p->n_disks > RP_MAX_DISKS || !p->disks)
		return sr_err(SITEREC_EINVAL, "recovery point %llu: %u disks (1..256, disks not NULL)",
		              (unsigned long long)p->id, p->n_disks);
	if (p->reserved)
		return sr_err(SITEREC_EINVAL, "recovery point %llu: reserved field is not 0",
		              (unsigned long long)p->id);
	for (uint32_t i = 0; i < p->n_disks; i++) {
		const siterec_rp_disk *d = &p->disks[i];
		if (!disk_name_ok(d->disk))
			return sr_err(SITEREC_EINVAL, "recovery point %llu: disk %u has no valid name",
			              (unsigned long long)p->id, i);
		if (!snap_id_ok(d->snapshot))
			return sr_err(SITEREC_EINVAL, "recovery point %llu: disk %s has no valid snapshot id",
			              (unsigned long long)p->id, d->disk);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(p->disks[j].disk, d->disk) == 0)
				return sr_err(SITEREC_EINVAL, "recovery point %llu: disk %s named twice",
				              (unsigned long long)p->id, d->disk);
		if (d->n_changed == RP_UNKNOWN)
			continue;
		if ((d->n_changed && !d->changed) || d->n_changed > SIZE_MAX / sizeof(siterec_extent))
			return sr_err(SITEREC_EINVAL, "recovery point %llu: disk %s: %llu changed extents "
			              "but no array", (unsigned long long)p->id, d->disk,
			              (unsigned long long)d->n_changed);
		uint64_t end = 0;
		for (uint64_t k = 0; k < d->n_changed; k++) {
			const siterec_extent *e = &d->changed[k];
			if (!e->length || e->length > UINT64_MAX - e->offset || (k && e->offset < end))
				return sr_err(SITEREC_EINVAL, "recovery point %llu: disk %s: changed extent %llu "
				              "(%llu+%llu) empty, past 2^64, or not after the one before",
				              (unsigned long long)p->id, d->disk, (unsigned long long)k,
				              (unsigned long long)e->offset, (unsigned long long)e->length);
			end = e->offset + e->length;
		}
	}
	if (p->n_logs > RP_MAX_LOGS || (p->n_logs && !p->logs))
		return sr_err(SITEREC_EINVAL, "recovery point %llu: %llu logs (at most 100000, logs not "
		              "NULL)", (unsigned long long)p->id, (unsigned long long)p->n_logs);
	if ((rc = logs_check(cat, p->logs, p->n_logs, p->n_disks, &why, &at)) == -2)
		return sr_err(SITEREC_ENOMEM, "recovery point add: out of memory");
	if (rc)
		return sr_err(SITEREC_EINVAL, "recovery point %llu: log %llu (object %.200s): %s",
		              (unsigned long long)p->id, (unsigned long long)at,
		              p->logs[at].object ? p->logs[at].object : "NULL", why);
	return 0;
}

SITEREC_API int siterec_rp_add(siterec_rp_catalog *cat, const siterec_rp_point *caller_point)
{
	siterec_rp_point in;
	const siterec_rp_point *point = &in;
	int rc;
	if ((rc = check_cat(cat, "recovery point add")) ||
	    (rc = point_in(caller_point, &in, "recovery point add")) || (rc = point_check(cat, point)) ||
	    (rc = cat_refresh(cat)))
		return rc;
	if (cat->n && point->id <= cat->pts[cat->n - 1].id)
		return sr_err(SITEREC_ECONFLICT, "recovery point %llu of %s: the catalogue already has "
		              "point %llu (ids must increase)", (unsigned long long)point->id, cat->vm,
		              (unsigned long long)cat->pts[cat->n - 1].id);
	/* the commit of a cycle: its snapshots exist before its document does, and
	 * so do its logs, whole. What the newest point names was checked when it was
	 * added and stays while it does (it is never pruned): a log point names every
	 * log since its base, so this keeps a cycle's requests to what is new. */
	const rp_pt *prev = cat->n ? &cat->pts[cat->n - 1] : NULL;
	for (uint32_t i = 0; i < point->n_disks; i++) {
		uint64_t size;
		if (prev && i < prev->n_disks && strcmp(prev->disks[i].disk, point->disks[i].disk) == 0 &&
		    strcmp(prev->disks[i].snapshot, point->disks[i].snapshot) == 0)
			continue;
		if ((rc = siterec_store_disk_size(cat->store, point->disks[i].disk,
		                                  point->disks[i].snapshot, &size)))
			return rc;
	}
	uint64_t k = 0;   /* both lists ascend by (disk_index, seq) */
	for (uint64_t i = 0; i < point->n_logs; i++) {
		const siterec_rp_log *l = &point->logs[i];
		while (prev && k < prev->n_logs &&
		       (prev->logs[k].disk_index < l->disk_index ||
		        (prev->logs[k].disk_index == l->disk_index && prev->logs[k].seq < l->seq)))
			k++;
		if (prev && k < prev->n_logs && prev->logs[k].disk_index == l->disk_index &&
		    prev->logs[k].seq == l->seq && prev->logs[k].length >= l->length &&
		    strcmp(prev->logs[k].object, l->object) == 0)
			continue;
		uint64_t size;
		if ((rc = siterec_store_disk_size(cat->store, l->object, NULL, &size)))
			return rc;
		if (size < l->length)
			return sr_err(SITEREC_ENOTFOUND, "recovery point %llu: log object %s has %llu bytes, "
			              "fewer than the log's %llu", (unsigned long long)point->id, l->object,
			              (unsigned long long)size, (unsigned long long)l->length);
	}
	char name[256], *text = NULL;
	size_t len = 0;
	uint64_t nonce;
	rp_pt pt;
	point_name(cat, point->id, name, sizeof(name));
	if ((rc = sr_random_bytes(&nonce, sizeof(nonce))) ||
	    (rc = doc_build(cat, point, nonce, &text, &len)))
		return rc;
	/* what is cached is what the document says: parsed back, before the put */
	if ((rc = doc_parse(cat, name, point->id, text, len, &pt))) {
		sr_free(text);
		return rc;
	}
	rp_pt *np = sr_realloc(cat->pts, (cat->n + 1) * sizeof(*np));
	if (!np) {
		rc = sr_err(SITEREC_ENOMEM, "recovery point add: out of memory");
		goto out;
	}
	cat->pts = np;
	rc = siterec_store_doc_put(cat->store, name, text, len, "", NULL, 0);
	if (rc == SITEREC_ECONFLICT) {
		/* a retry of a put whose answer was lost finds our own document:
		 * the nonce tells it from an equal point added by another host */
		void *got = NULL;
		size_t glen = 0;
		int ours = siterec_store_doc_get(cat->store, name, &got, &glen, NULL, 0) == 0 &&
		           glen == len && memcmp(got, text, len) == 0;
		siterec_free(got);
		rc = ours ? 0 : sr_err(SITEREC_ECONFLICT, "recovery point %llu of %s was added by "
		                       "another host first", (unsigned long long)point->id, cat->vm);
	}
	if (!rc) {
		cat->pts[cat->n++] = pt;
		memset(&pt, 0, sizeof(pt));
	}
out:
	pt_free(&pt);
	sr_free(text);
	return rc;
}

SITEREC_API int siterec_rp_count(siterec_rp_catalog *cat, uint64_t *count)
{
	int rc = check_cat(cat, "recovery points count");
	if (rc)
		return rc;
	if (!count)
		return sr_err(SITEREC_EINVAL, "recovery points count: count is NULL");
	*count = cat->n;
	return 0;
}

/* p into the caller's out (checked by check_point_version()): a version-1
 * struct has no room for logs, and a log point's snapshots alone are not its
 * content. */
static int point_out(const siterec_rp_catalog *cat, const rp_pt *p, siterec_rp_point *out,
                     const char *what)
{
	if (p->n_logs && out->version < 2)
		return sr_err(SITEREC_EVERSION, "%s: point %llu of %s has logs, which a siterec_rp_point "
		              "of version %u cannot hold: use version 2 or later", what,
		              (unsigned long long)p->id, cat->vm, out->version);
	if (out->version >= 2) {
		out->n_logs = p->n_logs;
		out->logs = p->logs;
	}
	out->kind = p->kind;
	out->id = p->id;
	out->cut_time_ms = p->cut_time_ms;
	out->n_disks = p->n_disks;
	out->reserved = 0;
	out->disks = p->disks;
	return 0;
}

SITEREC_API int siterec_rp_get(siterec_rp_catalog *cat, uint64_t index, siterec_rp_point *point)
{
	int rc;
	if ((rc = check_cat(cat, "recovery point get")) ||
	    (rc = check_point_version(point, "recovery point get")))
		return rc;
	if (index >= cat->n)
		return sr_err(SITEREC_ERANGE, "recovery point get: index %llu, the catalogue of %s has "
		              "%zu points", (unsigned long long)index, cat->vm, cat->n);
	return point_out(cat, &cat->pts[index], point, "recovery point get");
}

static int find_pt(siterec_rp_catalog *cat, uint64_t id, const rp_pt **p)
{
	long i = cat_index(cat, id);
	if (i < 0)
		return sr_err(SITEREC_ENOTFOUND, "recovery point %llu of %s not found",
		              (unsigned long long)id, cat->vm);
	*p = &cat->pts[i];
	return 0;
}

SITEREC_API int siterec_rp_find(siterec_rp_catalog *cat, uint64_t id, siterec_rp_point *point)
{
	const rp_pt *p;
	int rc;
	if ((rc = check_cat(cat, "recovery point find")) ||
	    (rc = check_point_version(point, "recovery point find")) || (rc = find_pt(cat, id, &p)))
		return rc;
	return point_out(cat, p, point, "recovery point find");
}

SITEREC_API int siterec_rp_select(siterec_rp_catalog *cat, uint32_t how, int64_t arg,
                                  uint64_t *id_out)
{
	int rc = check_cat(cat, "recovery point select");
	if (rc)
		return rc;
	if (!id_out)
		return sr_err(SITEREC_EINVAL, "recovery point select: id_out is NULL");
	if (how < SITEREC_RP_LATEST || how > SITEREC_RP_AT_OR_BEFORE)
		return sr_err(SITEREC_EINVAL, "recovery point select: unknown choice %u", how);
	if (how == SITEREC_RP_BY_ID) {
		const rp_pt *p;
		if ((rc = find_pt(cat, (uint64_t)arg, &p)))
			return rc;
		*id_out = p->id;
		return 0;
	}
	for (size_t i = cat->n; i-- > 0;) {
		const rp_pt *p = &cat->pts[i];
		if (how == SITEREC_RP_LATEST || (how == SITEREC_RP_LATEST_APP && p->kind == SITEREC_RP_APP) ||
		    (how == SITEREC_RP_AT_OR_BEFORE && p->cut_time_ms <= arg)) {
			*id_out = p->id;
			return 0;
		}
	}
	if (how == SITEREC_RP_AT_OR_BEFORE)
		return sr_err(SITEREC_ENOTFOUND, "recovery points of %s: none cut at or before %lld ms",
		              cat->vm, (long long)arg);
	return sr_err(SITEREC_ENOTFOUND, "recovery points of %s: no %spoint", cat->vm,
	              how == SITEREC_RP_LATEST_APP ? "app-consistent " : "");
}

/* ---- content: restore and read ---- */

static int disk_check(const siterec_rp_catalog *cat, const rp_pt *p, uint32_t disk_index)
{
	if (disk_index >= p->n_disks)
		return sr_err(SITEREC_ERANGE, "recovery point %llu of %s: disk index %u, it has %u disks",
		              (unsigned long long)p->id, cat->vm, disk_index, p->n_disks);
	return 0;
}

/* A new temporary file in TMPDIR (else /tmp), its name in path: an fd, or a
 * negative code. */
static int tmp_file(char *path, size_t cap)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !dir[0])
		dir = "/tmp";
	int n = snprintf(path, cap, "%s/siterec-rp-XXXXXX", dir);
	if (n < 0 || (size_t)n >= cap)
		return sr_err(SITEREC_EINVAL, "recovery point: TMPDIR %.200s is too long", dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "recovery point: cannot create a temporary file "
		                 "in %.200s", dir);
	}
	return fd;
}

typedef struct ext_vec {
	siterec_extent *e;
	size_t n, cap;
	int oom;
} ext_vec;

static int ext_collect_cb(uint64_t offset, uint64_t length, void *payload)
{
	ext_vec *v = payload;
	siterec_extent *ne = sr_grow(v->e, &v->cap, v->n, sizeof(*ne), 64);
	if (!ne) {
		v->oom = 1;
		return 1;
	}
	v->e = ne;
	v->e[v->n++] = (siterec_extent){ offset, length };
	return 0;
}

typedef struct rs_out {
	siterec_write_fn write;
	void *write_payload;
	siterec_progress_fn progress;
	void *progress_payload;
	uint64_t done, total;
} rs_out;

static int rs_advance(rs_out *o, uint64_t n)
{
	o->done += n;
	int rc = o->progress ? o->progress(o->done, o->total, o->progress_payload) : 0;
	return rc ? sr_err_callback(rc, "recovery point restore progress") : 0;
}

/* Write [off, off+len) of disk d's snapshot, or zeros (zeros set: buf holds
 * them), in pieces of at most RP_PIECE (buf holds min(len, RP_PIECE) bytes). */
static int rs_span(siterec_rp_catalog *cat, const siterec_rp_disk *d, int zeros, uint8_t *buf,
                   uint64_t off, uint64_t len, rs_out *o)
{
	while (len) {
		size_t n = len < RP_PIECE ? (size_t)len : RP_PIECE;
		int rc;
		if (!zeros && (rc = siterec_store_read(cat->store, d->disk, d->snapshot, buf, n, off)))
			return rc;
		if ((rc = o->write(buf, n, off, o->write_payload)))
			return sr_err_callback(rc, "recovery point restore write");
		if ((rc = rs_advance(o, n)))
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* The dlog's verdicts on a log, naming its object rather than the temporary file. */
static int log_damaged(int rc, const siterec_rp_log *l)
{
	char why[512];
	if (rc != SITEREC_ECORRUPT && rc != SITEREC_ESTATE && rc != SITEREC_ETRUNCATED)
		return rc;
	snprintf(why, sizeof(why), "%s", siterec_error_last()->message);
	return sr_err(SITEREC_ECORRUPT, "recovery point log %s (seq %llu) does not verify: %s",
	              l->object, (unsigned long long)l->seq, why);
}

/* Apply log l to a disk of size bytes through o: its first length bytes fetched
 * into a temporary file (siterec_dlog_apply() takes a path), which the dlog
 * verifies whole before the first write. buf: cap bytes of room. */
static int log_apply(siterec_rp_catalog *cat, const siterec_rp_log *l, uint64_t size,
                     uint8_t *buf, size_t cap, rs_out *o)
{
	char path[PATH_MAX];
	int fd = tmp_file(path, sizeof(path)), rc = 0;
	if (fd < 0)
		return fd;
	for (uint64_t off = 0; !rc && off < l->length; off += cap) {
		size_t n = l->length - off < cap ? (size_t)(l->length - off) : cap;
		if (!(rc = siterec_store_read(cat->store, l->object, NULL, buf, n, off)))
			rc = sr_pwrite_full(fd, buf, n, off);
	}
	if (close(fd) != 0 && !rc) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "recovery point: closing temporary file %s", path);
	}
	/* records stay inside the log's disk: that must not be larger than this one */
	siterec_dlog_reader *r = NULL;
	siterec_dlog_info info = { .version = SITEREC_DLOG_INFO_VERSION };
	if (!rc && !(rc = siterec_dlog_reader_open(&r, path, NULL)) &&
	    !(rc = siterec_dlog_reader_info(r, &info)) && info.disk_size > size)
		rc = sr_err(SITEREC_ECORRUPT, "recovery point log %s is of a disk of %llu bytes, larger "
		            "than the %llu of its snapshot", l->object, (unsigned long long)info.disk_size,
		            (unsigned long long)size);
	siterec_dlog_reader_free(r);
	if (!rc)
		rc = siterec_dlog_apply(path, NULL, SITEREC_DLOG_APPLY_REQUIRE_SEALED, o->write,
		                        o->write_payload, NULL);
	unlink(path);
	return log_damaged(rc, l);
}

/* Write the content of disk i of p at until_ms through o: its snapshot and the
 * logs logs_until() keeps (INT64_MAX: all, siterec_rp_restore()); *size_out
 * (may be NULL) gets the disk's size. */
static int restore_run(siterec_rp_catalog *cat, const rp_pt *p, uint32_t i, uint32_t flags,
                       int64_t until_ms, rs_out *o, uint64_t *size_out)
{
	const siterec_rp_disk *d = &p->disks[i];
	int zeros = (flags & SITEREC_RP_RESTORE_ZEROS) != 0;
	uint64_t size = 0, first, nl, data = 0, max_data = 0, max_gap = 0, pos = 0;
	ext_vec v = { 0 };
	uint8_t *buf = NULL, *zbuf = NULL;
	int rc = siterec_store_disk_size(cat->store, d->disk, d->snapshot, &size);
	if (!rc)
		rc = siterec_store_ranges(cat->store, d->disk, d->snapshot, 0, 0, ext_collect_cb, &v);
	if (v.oom)
		rc = sr_err(SITEREC_ENOMEM, "recovery point restore: out of memory listing %s", d->disk);
	if (rc)
		goto out;
	/* sizes of the pieces and the total, ranges kept inside the disk */
	for (size_t k = 0; k < v.n; k++) {
		siterec_extent *e = &v.e[k];
		if (e->offset >= size) {
			v.n = k;
			break;
		}
		if (e->length > size - e->offset)
			e->length = size - e->offset;
		data += e->length;
		max_data = e->length > max_data ? e->length : max_data;
		max_gap = e->offset - pos > max_gap ? e->offset - pos : max_gap;
		pos = e->offset + e->length;
	}
	max_gap = size - pos > max_gap ? size - pos : max_gap;
	logs_of_disk(p, i, &first, &nl);
	nl = logs_until(p, first, nl, until_ms);
	o->total = zeros ? size : data;
	for (uint64_t k = first; k < first + nl; k++) {
		o->total += p->logs[k].length;
		max_data = p->logs[k].length > max_data ? p->logs[k].length : max_data;
	}
	size_t cap = max_data < RP_PIECE ? (size_t)max_data : RP_PIECE;
	if (!(buf = sr_malloc(cap ? cap : 1)) ||
	    (zeros && max_gap && !(zbuf = sr_calloc(1, max_gap < RP_PIECE ? (size_t)max_gap : RP_PIECE)))) {
		rc = sr_err(SITEREC_ENOMEM, "recovery point restore: out of memory");
		goto out;
	}
	/* the snapshot, gaps as zeros when asked */
	pos = 0;
	for (size_t k = 0; !rc && k <= v.n; k++) {
		uint64_t off = k < v.n ? v.e[k].offset : size;
		if (zeros && off > pos)
			rc = rs_span(cat, d, 1, zbuf, pos, off - pos, o);
		if (!rc && k < v.n) {
			rc = rs_span(cat, d, 0, buf, off, v.e[k].length, o);
			pos = off + v.e[k].length;
		}
	}
	/* then its logs, in order */
	for (uint64_t k = first; !rc && k < first + nl; k++)
		if (!(rc = log_apply(cat, &p->logs[k], size, buf, cap, o)))
			rc = rs_advance(o, p->logs[k].length);
	if (!rc && size_out)
		*size_out = size;
out:
	sr_free(v.e);
	sr_free(buf);
	sr_free(zbuf);
	return rc;
}

/* The arguments both restores share. */
static int restore_args(const siterec_rp_catalog *cat, siterec_write_fn write, uint32_t flags,
                        const char *what)
{
	int rc;
	if ((rc = check_cat(cat, what)))
		return rc;
	if (!write)
		return sr_err(SITEREC_EINVAL, "%s: write is NULL", what);
	if (flags & ~SITEREC_RP_RESTORE_ZEROS)
		return sr_err(SITEREC_EINVAL, "%s: unknown flags 0x%x", what,
		              flags & ~SITEREC_RP_RESTORE_ZEROS);
	return 0;
}

SITEREC_API int siterec_rp_restore(siterec_rp_catalog *cat, uint64_t id, uint32_t disk_index,
                                   uint32_t flags, siterec_write_fn write, void *write_payload,
                                   siterec_progress_fn progress, void *progress_payload)
{
	const rp_pt *p;
	int rc;
	if ((rc = restore_args(cat, write, flags, "recovery point restore")) ||
	    (rc = find_pt(cat, id, &p)) || (rc = disk_check(cat, p, disk_index)))
		return rc;
	rs_out o = { write, write_payload, progress, progress_payload, 0, 0 };
	return restore_run(cat, p, disk_index, flags, INT64_MAX, &o, NULL);
}

int sr_rp_restore_snapshot(siterec_rp_catalog *cat, const char *disk, const char *snapshot,
                           siterec_write_fn write, void *write_payload, siterec_progress_fn progress,
                           void *progress_payload)
{
	int rc = restore_args(cat, write, 0, "snapshot restore");
	if (rc)
		return rc;
	/* a point of one disk and no logs: its content is the snapshot */
	siterec_rp_disk d = { disk, snapshot, NULL, UINT64_MAX };
	rp_pt p = { 0, 0, SITEREC_RP_CRASH, 1, &d, 0, NULL };
	rs_out o = { write, write_payload, progress, progress_payload, 0, 0 };
	return restore_run(cat, &p, 0, 0, INT64_MAX, &o, NULL);
}

SITEREC_API int siterec_rp_restore_at(siterec_rp_catalog *cat, int64_t time_ms, uint32_t disk_index,
                                      uint32_t flags, siterec_write_fn write, void *write_payload,
                                      int64_t *at_ms)
{
	uint64_t first, nl, k;
	size_t q = 0;
	int rc;
	if ((rc = restore_args(cat, write, flags, "recovery point restore at")))
		return rc;
	/* Q: the oldest point cut at or after time_ms; before the oldest cut nothing
	 * holds that instant (the oldest snapshot already has later writes) */
	while (q < cat->n && cat->pts[q].cut_time_ms < time_ms)
		q++;
	if (q == cat->n || time_ms < cat->pts[0].cut_time_ms)
		return sr_err(SITEREC_ENOTFOUND, "recovery points of %s: no point holds %lld ms (%s)",
		              cat->vm, (long long)time_ms,
		              !cat->n ? "there is none" : q == cat->n ? "after the newest cut"
		                                                      : "before the oldest cut");
	const rp_pt *p = &cat->pts[q];
	if ((rc = disk_check(cat, p, disk_index)))
		return rc;
	rs_out o = { write, write_payload, NULL, NULL, 0, 0 };
	if ((rc = restore_run(cat, p, disk_index, flags, time_ms, &o, NULL)))
		return rc;
	logs_of_disk(p, disk_index, &first, &nl);
	k = logs_until(p, first, nl, time_ms);
	if (at_ms)  /* q > 0 when time_ms < Q's cut: the oldest cut is at or before time_ms */
		*at_ms = k ? log_sealed(p, &p->logs[first + k - 1])
		           : time_ms >= p->cut_time_ms ? p->cut_time_ms : cat->pts[q - 1].cut_time_ms;
	return 0;
}

/* siterec_rp_read()'s sink: the temporary file, its first failure kept. */
typedef struct fd_sink {
	int fd, rc;
	char why[512];
} fd_sink;

static int fd_sink_write(const void *buf, size_t length, uint64_t offset, void *payload)
{
	fd_sink *s = payload;
	int rc = sr_pwrite_full(s->fd, buf, length, offset);
	if (rc && !s->rc) {
		s->rc = rc;
		snprintf(s->why, sizeof(s->why), "%s", siterec_error_last()->message);
	}
	return rc;
}

/* Materialise disk i of log point p into an unlinked temporary file (the file
 * starts sparse: zeros where the snapshot has none), unless it is so already. */
static int mat_open(siterec_rp_catalog *cat, const rp_pt *p, uint32_t i)
{
	if (cat->mat_fd >= 0 && cat->mat_id == p->id && cat->mat_disk == i)
		return 0;
	mat_drop(cat);
	char path[PATH_MAX];
	fd_sink s = { .fd = tmp_file(path, sizeof(path)) };
	uint64_t size = 0;
	if (s.fd < 0)
		return s.fd;
	unlink(path);  /* only this handle reads it */
	rs_out o = { fd_sink_write, &s, NULL, NULL, 0, 0 };
	int rc = restore_run(cat, p, i, 0, INT64_MAX, &o, &size);
	if (rc == SITEREC_EABORTED && s.rc)  /* the file's own error, not a caller's abort */
		rc = sr_err(s.rc, "recovery point %llu of %s: writing disk %u into a temporary file: %s",
		            (unsigned long long)p->id, cat->vm, i, s.why);
	if (!rc && ftruncate(s.fd, (off_t)size) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "recovery point: sizing a temporary file");
	}
	if (rc) {
		close(s.fd);
		return rc;
	}
	cat->mat_fd = s.fd;
	cat->mat_id = p->id;
	cat->mat_disk = i;
	cat->mat_size = size;
	return 0;
}

SITEREC_API int siterec_rp_read(siterec_rp_catalog *cat, uint64_t id, uint32_t disk_index,
                                void *buf, size_t length, uint64_t offset)
{
	const rp_pt *p;
	uint64_t first, nl;
	int rc;
	if ((rc = check_cat(cat, "recovery point read")) || (rc = find_pt(cat, id, &p)) ||
	    (rc = disk_check(cat, p, disk_index)))
		return rc;
	logs_of_disk(p, disk_index, &first, &nl);
	if (!nl)  /* the snapshot is the content */
		return siterec_store_read(cat->store, p->disks[disk_index].disk,
		                          p->disks[disk_index].snapshot, buf, length, offset);
	if (!buf)
		return sr_err(SITEREC_EINVAL, "recovery point read: buf is NULL");
	if ((rc = mat_open(cat, p, disk_index)))
		return rc;
	if (offset > cat->mat_size || length > cat->mat_size - offset)
		return sr_err(SITEREC_ERANGE, "recovery point %llu of %s: read of %zu bytes at %llu past "
		              "the end of disk %u (%llu bytes)", (unsigned long long)id, cat->vm, length,
		              (unsigned long long)offset, disk_index, (unsigned long long)cat->mat_size);
	return sr_pread_full(cat->mat_fd, buf, length, offset);
}

/* ---- pruning ---- */

/* A (disk, snapshot) the catalogue references, or a log object (snap ""), and
 * by how many points. */
typedef struct rp_ref {
	const char *disk, *snap;
	size_t count;
} rp_ref;

static int ref_cmp(const void *a, const void *b)
{
	const rp_ref *x = a, *y = b;
	int c = strcmp(x->disk, y->disk);
	return c ? c : strcmp(x->snap, y->snap);
}

static rp_ref *ref_find(rp_ref *refs, size_t n, const char *disk, const char *snap)
{
	rp_ref key = { disk, snap, 0 };
	return bsearch(&key, refs, n, sizeof(*refs), ref_cmp);
}

/* The snapshot references of every cached point (logs: the log objects),
 * sorted, each once with its count. */
static int refs_build(const siterec_rp_catalog *cat, int logs, rp_ref **out, size_t *n_out)
{
	size_t n = 0, m = 0;
	for (size_t i = 0; i < cat->n; i++)
		n += logs ? (size_t)cat->pts[i].n_logs : cat->pts[i].n_disks;
	rp_ref *r = sr_malloc((n ? n : 1) * sizeof(*r));
	if (!r)
		return sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory");
	for (size_t i = 0; i < cat->n; i++) {
		const rp_pt *p = &cat->pts[i];
		for (uint64_t j = 0; j < (logs ? p->n_logs : p->n_disks); j++)
			r[m++] = logs ? (rp_ref){ p->logs[j].object, "", 1 }
			              : (rp_ref){ p->disks[j].disk, p->disks[j].snapshot, 1 };
	}
	if (n)
		qsort(r, n, sizeof(*r), ref_cmp);
	m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && ref_cmp(&r[m - 1], &r[i]) == 0)
			r[m - 1].count++;
		else
			r[m++] = r[i];
	}
	*out = r;
	*n_out = m;
	return 0;
}

/* Names gathered by a listing callback. */
typedef struct str_list {
	char **v;
	size_t n, cap;
	int oom;
} str_list;

/* Add a copy of s: 0, or 1 (stop the listing) out of memory. */
static int str_list_add(str_list *l, const char *s)
{
	char **nv = sr_grow(l->v, &l->cap, l->n, sizeof(*nv), 32);
	if (!nv || !(nv[l->n] = sr_strdup(s))) {
		if (nv)
			l->v = nv;
		l->oom = 1;
		return 1;
	}
	l->v = nv;
	l->n++;
	return 0;
}

static void str_list_free(str_list *l)
{
	for (size_t j = 0; j < l->n; j++)
		sr_free(l->v[j]);
	sr_free(l->v);
}

typedef struct snap_list {
	const char *disk;
	str_list ids;        /* in listing order: oldest first */
} snap_list;

static int list_snaps_cb(const char *name, int kind, uint64_t size, const char *snap,
                         void *payload)
{
	snap_list *l = payload;
	if (kind != SITEREC_STORE_KIND_SNAPSHOT || !snap || strcmp(name, l->disk) != 0)
		return 0;
	return str_list_add(&l->ids, snap);
}

/* A delete's result: what is already gone is fine. */
static int gone_ok(int rc)
{
	return rc == SITEREC_ENOTFOUND ? 0 : rc;
}

static int snap_delete(siterec_store *st, const char *disk, const char *snap)
{
	return gone_ok(siterec_store_snapshot_delete(st, disk, snap));
}

static int log_delete(siterec_store *st, const char *object)
{
	return gone_ok(siterec_store_disk_delete(st, object, 0, NULL));
}

/* Delete the snapshots of disk that no point references and that were taken
 * before the newest one a point references (siterec_store_list() lists a disk's
 * snapshots oldest first). */
static int sweep_disk(siterec_rp_catalog *cat, rp_ref *refs, size_t nrefs, const char *disk)
{
	snap_list sl = { .disk = disk };
	int rc = siterec_store_list(cat->store, disk, list_snaps_cb, &sl);
	str_list *l = &sl.ids;
	if (l->oom)
		rc = sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory listing %s", disk);
	size_t newest = 0;  /* 1 + index of the newest referenced snapshot */
	for (size_t j = 0; !rc && j < l->n; j++) {
		rp_ref *r = ref_find(refs, nrefs, disk, l->v[j]);
		if (r && r->count)
			newest = j + 1;
	}
	for (size_t j = 0; !rc && j + 1 < newest; j++) {
		rp_ref *r = ref_find(refs, nrefs, disk, l->v[j]);
		if (!r || !r->count) {
			sr_log(SITEREC_LOG_INFO, "recovery points of %s: deleting unreferenced snapshot %s@%s",
			       cat->vm, disk, l->v[j]);
			rc = snap_delete(cat->store, disk, l->v[j]);
		}
	}
	str_list_free(l);
	return rc;
}

typedef struct log_list {
	rp_ref *refs;        /* of log objects */
	size_t nrefs;
	uint64_t below;      /* the newest seq a point references */
	str_list names;
} log_list;

/* Log objects no point references, their seq below l->below. */
static int list_logs_cb(const char *name, int kind, uint64_t size, const char *snap,
                        void *payload)
{
	log_list *l = payload;
	const char *last = strrchr(name, '/');
	uint64_t seq;
	rp_ref *r;
	if (kind != SITEREC_STORE_KIND_DISK || !last || seq_of_name(last + 1, &seq) ||
	    seq >= l->below || ((r = ref_find(l->refs, l->nrefs, name, "")) && r->count))
		return 0;
	return str_list_add(&l->names, name);
}

/* Delete the log objects under VM/logs/ that no point references and that are
 * older than the newest one a point references (left by a crash between
 * shipping a log and adding its point, or between a prune's two steps; a log
 * of a cycle not added yet is newer and left alone). */
static int sweep_logs(siterec_rp_catalog *cat, rp_ref *refs, size_t nrefs, uint64_t below)
{
	log_list ll = { .refs = refs, .nrefs = nrefs, .below = below };
	int rc = siterec_store_list(cat->store, cat->logs_prefix, list_logs_cb, &ll);
	str_list *l = &ll.names;
	if (l->oom)
		rc = sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory listing %s",
		            cat->logs_prefix);
	for (size_t j = 0; !rc && j < l->n; j++) {
		sr_log(SITEREC_LOG_INFO, "recovery points of %s: deleting unreferenced log %s", cat->vm,
		       l->v[j]);
		rc = log_delete(cat->store, l->v[j]);
	}
	str_list_free(l);
	return rc;
}

static int old_enough(int64_t cut, int64_t now, uint64_t retention)
{
	return cut < now && (uint64_t)now - (uint64_t)cut > retention;
}

static int id_listed(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t k = 0; k < n; k++)
		if (ids[k] == id)
			return 1;
	return 0;
}

/* Which points go: prune (retention, keep list, never the newest) or delete (a list). */
typedef struct doom {
	int by_list;
	int64_t now_ms;
	uint64_t retention_ms;
	const uint64_t *ids;   /* prune: keep; delete: the ones to go */
	size_t n_ids;
} doom;

static int doomed(const doom *d, const siterec_rp_catalog *cat, size_t i)
{
	const rp_pt *p = &cat->pts[i];
	if (d->by_list)
		return id_listed(d->ids, d->n_ids, p->id);
	return i + 1 < cat->n && !id_listed(d->ids, d->n_ids, p->id) &&
	       old_enough(p->cut_time_ms, d->now_ms, d->retention_ms);
}

static int points_drop(siterec_rp_catalog *cat, const doom *d, uint64_t *pruned)
{
	int rc;
	uint64_t done = 0, newest_seq = 0;
	rp_ref *refs = NULL, *lrefs = NULL;
	size_t nrefs = 0, nlrefs = 0;
	uint8_t *gone = NULL;
	if ((rc = cat_refresh(cat)) || (rc = refs_build(cat, 0, &refs, &nrefs)) ||
	    (rc = refs_build(cat, 1, &lrefs, &nlrefs)))
		goto out;
	if (cat->n && !(gone = sr_calloc(cat->n, 1))) {
		rc = sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory");
		goto out;
	}
	/* oldest first */
	for (size_t i = 0; !rc && i < cat->n; i++) {
		const rp_pt *p = &cat->pts[i];
		if (!doomed(d, cat, i))
			continue;
		char name[256];
		point_name(cat, p->id, name, sizeof(name));
		rc = siterec_store_doc_delete(cat->store, name, NULL);
		if (rc && rc != SITEREC_ENOTFOUND)
			break;
		rc = 0;
		gone[i] = 1;
		done++;
		sr_log(SITEREC_LOG_INFO, "recovery points of %s: pruned point %llu (cut at %lld ms)",
		       cat->vm, (unsigned long long)p->id, (long long)p->cut_time_ms);
		for (uint32_t j = 0; !rc && j < p->n_disks; j++) {
			rp_ref *r = ref_find(refs, nrefs, p->disks[j].disk, p->disks[j].snapshot);
			if (r && r->count && --r->count == 0)
				rc = snap_delete(cat->store, p->disks[j].disk, p->disks[j].snapshot);
		}
		for (uint64_t j = 0; !rc && j < p->n_logs; j++) {
			rp_ref *r = ref_find(lrefs, nlrefs, p->logs[j].object, "");
			if (r && r->count && --r->count == 0)
				rc = log_delete(cat->store, p->logs[j].object);
		}
	}
	/* leftovers of crashes, once per disk still referenced (refs sorted by disk) */
	for (size_t i = 0; !rc && i < nrefs; i++) {
		size_t j = i, live = 0;
		for (; j < nrefs && strcmp(refs[j].disk, refs[i].disk) == 0; j++)
			live += refs[j].count;
		if (live)
			rc = sweep_disk(cat, refs, nrefs, refs[i].disk);
		i = j - 1;
	}
	for (size_t i = 0; i < cat->n; i++)
		for (uint64_t j = 0; !gone[i] && j < cat->pts[i].n_logs; j++)
			newest_seq = cat->pts[i].logs[j].seq > newest_seq ? cat->pts[i].logs[j].seq : newest_seq;
	if (!rc && newest_seq)  /* no point has logs: none is below */
		rc = sweep_logs(cat, lrefs, nlrefs, newest_seq);
out:
	if (gone) {
		size_t m = 0;
		for (size_t i = 0; i < cat->n; i++) {
			if (gone[i])
				pt_free(&cat->pts[i]);
			else
				cat->pts[m++] = cat->pts[i];
		}
		cat->n = m;
		mat_forget_gone(cat);
	}
	sr_free(gone);
	sr_free(refs);
	sr_free(lrefs);
	if (pruned)
		*pruned = done;
	return rc;
}

SITEREC_API int siterec_rp_prune(siterec_rp_catalog *cat, int64_t now_ms, uint64_t retention_ms,
                                 const uint64_t *keep, size_t n_keep, uint64_t *pruned)
{
	int rc;
	if (pruned)
		*pruned = 0;
	if ((rc = check_cat(cat, "recovery points prune")))
		return rc;
	if (n_keep && !keep)
		return sr_err(SITEREC_EINVAL, "recovery points prune: keep is NULL with n_keep %zu", n_keep);
	doom d = { 0, now_ms, retention_ms, keep, n_keep };
	return points_drop(cat, &d, pruned);
}

SITEREC_API int siterec_rp_delete(siterec_rp_catalog *cat, const uint64_t *ids, size_t n_ids,
                                  uint64_t *deleted)
{
	int rc;
	if (deleted)
		*deleted = 0;
	if ((rc = check_cat(cat, "recovery points delete")))
		return rc;
	if (!ids || !n_ids)
		return sr_err(SITEREC_EINVAL, "recovery points delete: no ids given");
	doom d = { 1, 0, 0, ids, n_ids };
	return points_drop(cat, &d, deleted);
}
