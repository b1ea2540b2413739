/* Recovery points (include/siterec/rp.h): one JSON document per point,
 * "VM/points/ID", created with If-Match "" (create-only); the catalogue handle
 * caches the parsed points in id order. Built on the public store calls only.
 * The document format is in doc/formats.md ("Recovery point documents"):
 * nothing in a document is trusted; one the library cannot read fails the call
 * that reads it (SITEREC_ECORRUPT or SITEREC_EVERSION, naming it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "siterec/rp.h"

#define RP_FORMAT "siterec-rp"
#define RP_VERSION 1
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
} rp_pt;

struct siterec_rp_catalog {
	siterec_store *store;
	char vm[RP_VM_MAX + 1];
	char prefix[RP_VM_MAX + 16];     /* "VM/points/" */
	rp_pt *pts;                      /* ascending id */
	size_t n;
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

/* ---- the document ---- */

/* The document of point p whose disk i has the extent text ext[i] ("all" for
 * unknown). Every string in it was checked to need no JSON escape. */
#define DOC_DISK1 "{\"disk\":\""
#define DOC_DISK2 "\",\"snapshot\":\""
#define DOC_DISK3 "\",\"changed\":\""
#define DOC_DISK4 "\"}"
#define DOC_END "]}"

static char *doc_text(const siterec_rp_catalog *cat, const siterec_rp_point *p, uint64_t nonce,
                      char *const *ext, size_t *len_out)
{
	char head[256];
	int hn = snprintf(head, sizeof(head), "{\"format\":\"" RP_FORMAT "\",\"version\":%d,"
	                  "\"vm\":\"%s\",\"id\":\"%llu\",\"kind\":\"%s\",\"cut_time_ms\":\"%lld\","
	                  "\"nonce\":\"%016llx\",\"disks\":[", RP_VERSION, cat->vm,
	                  (unsigned long long)p->id, p->kind == SITEREC_RP_APP ? "app" : "crash",
	                  (long long)p->cut_time_ms, (unsigned long long)nonce);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return NULL;
	size_t len = (size_t)hn + strlen(DOC_END);
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
	stpcpy(t, DOC_END);
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
	char *text = NULL;
	int rc = 0;
	if (!cur || !own || !cnt || !ext || !elen) {
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
		if (!(text = doc_text(cat, p, nonce, ext, &len))) {
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
		if (!progress) {  /* cannot happen: names and ids are bounded */
			rc = sr_err(SITEREC_ERROR, "recovery point %llu: the document does not fit in 4 MiB",
			            (unsigned long long)p->id);
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
	else if (ver->valuedouble > RP_VERSION)
		rc = sr_err(SITEREC_EVERSION, "recovery point document %s has version %.0f; this library "
		            "reads version %d", name, ver->valuedouble, RP_VERSION);
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
	cJSON_Delete(o);
	if (rc)
		pt_free(out);
	return rc;
}

/* ---- reading the catalogue ---- */

/* The id of a point document from its name's last part: exactly 20 digits. */
static int id_of_name(const char *s, uint64_t *id)
{
	uint64_t x = 0;
	if (strlen(s) != RP_ID_DIGITS)
		return -1;
	for (size_t i = 0; i < RP_ID_DIGITS; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	*id = x;
	return 0;
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
	snprintf(cat->vm, sizeof(cat->vm), "%s", vm_id);
	snprintf(cat->prefix, sizeof(cat->prefix), "%s/points/", vm_id);
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
	pts_free(cat->pts, cat->n);
	sr_free(cat);
}

SITEREC_API int siterec_rp_refresh(siterec_rp_catalog *cat)
{
	int rc = check_cat(cat, "recovery points refresh");
	return rc ? rc : cat_refresh(cat);
}

/* Everything of a point to add that can be checked without the target. */
static int point_check(const siterec_rp_point *p)
{
	int rc = check_point_version(p, "recovery point add");
	if (rc)
		return rc;
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
	return 0;
}

SITEREC_API int siterec_rp_add(siterec_rp_catalog *cat, const siterec_rp_point *point)
{
	int rc;
	if ((rc = check_cat(cat, "recovery point add")) || (rc = point_check(point)) ||
	    (rc = cat_refresh(cat)))
		return rc;
	if (cat->n && point->id <= cat->pts[cat->n - 1].id)
		return sr_err(SITEREC_ECONFLICT, "recovery point %llu of %s: the catalogue already has "
		              "point %llu (ids must increase)", (unsigned long long)point->id, cat->vm,
		              (unsigned long long)cat->pts[cat->n - 1].id);
	/* the commit of a cycle: its snapshots exist before its document does */
	for (uint32_t i = 0; i < point->n_disks; i++) {
		uint64_t size;
		if ((rc = siterec_store_disk_size(cat->store, point->disks[i].disk,
		                                  point->disks[i].snapshot, &size)))
			return rc;
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

static void point_out(const rp_pt *p, siterec_rp_point *out)
{
	out->kind = p->kind;
	out->id = p->id;
	out->cut_time_ms = p->cut_time_ms;
	out->n_disks = p->n_disks;
	out->reserved = 0;
	out->disks = p->disks;
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
	point_out(&cat->pts[index], point);
	return 0;
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
	point_out(p, point);
	return 0;
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

SITEREC_API int siterec_rp_read(siterec_rp_catalog *cat, uint64_t id, uint32_t disk_index,
                                void *buf, size_t length, uint64_t offset)
{
	const rp_pt *p;
	int rc;
	if ((rc = check_cat(cat, "recovery point read")) || (rc = find_pt(cat, id, &p)))
		return rc;
	if (disk_index >= p->n_disks)
		return sr_err(SITEREC_ERANGE, "recovery point %llu of %s: disk index %u, it has %u disks",
		              (unsigned long long)id, cat->vm, disk_index, p->n_disks);
	return siterec_store_read(cat->store, p->disks[disk_index].disk, p->disks[disk_index].snapshot,
	                          buf, length, offset);
}

/* ---- pruning ---- */

/* A (disk, snapshot) the catalogue references, and by how many points. */
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

/* The references of every cached point, sorted, each once with its count. */
static int refs_build(const siterec_rp_catalog *cat, rp_ref **out, size_t *n_out)
{
	size_t n = 0, m = 0;
	for (size_t i = 0; i < cat->n; i++)
		n += cat->pts[i].n_disks;
	rp_ref *r = sr_malloc((n ? n : 1) * sizeof(*r));
	if (!r)
		return sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory");
	for (size_t i = 0; i < cat->n; i++)
		for (uint32_t j = 0; j < cat->pts[i].n_disks; j++)
			r[m++] = (rp_ref){ cat->pts[i].disks[j].disk, cat->pts[i].disks[j].snapshot, 1 };
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

typedef struct snap_list {
	const char *disk;
	char **ids;          /* in listing order: oldest first */
	size_t n, cap;
	int oom;
} snap_list;

static int list_snaps_cb(const char *name, int kind, uint64_t size, const char *snap,
                         void *payload)
{
	snap_list *l = payload;
	if (kind != SITEREC_STORE_KIND_SNAPSHOT || !snap || strcmp(name, l->disk) != 0)
		return 0;
	char **nv = sr_grow(l->ids, &l->cap, l->n, sizeof(*nv), 32);
	if (!nv) {
		l->oom = 1;
		return 1;
	}
	l->ids = nv;
	if (!(l->ids[l->n] = sr_strdup(snap))) {
		l->oom = 1;
		return 1;
	}
	l->n++;
	return 0;
}

/* Delete a snapshot; one already gone is fine. */
static int snap_delete(siterec_store *st, const char *disk, const char *snap)
{
	int rc = siterec_store_snapshot_delete(st, disk, snap);
	return rc == SITEREC_ENOTFOUND ? 0 : rc;
}

/* Delete the snapshots of disk that no point references and that were taken
 * before the newest one a point references (siterec_store_list() lists a disk's
 * snapshots oldest first). */
static int sweep_disk(siterec_rp_catalog *cat, rp_ref *refs, size_t nrefs, const char *disk)
{
	snap_list l = { .disk = disk };
	int rc = siterec_store_list(cat->store, disk, list_snaps_cb, &l);
	if (l.oom)
		rc = sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory listing %s", disk);
	size_t newest = 0;  /* 1 + index of the newest referenced snapshot */
	for (size_t j = 0; !rc && j < l.n; j++) {
		rp_ref *r = ref_find(refs, nrefs, disk, l.ids[j]);
		if (r && r->count)
			newest = j + 1;
	}
	for (size_t j = 0; !rc && j + 1 < newest; j++) {
		rp_ref *r = ref_find(refs, nrefs, disk, l.ids[j]);
		if (!r || !r->count) {
			sr_log(SITEREC_LOG_INFO, "recovery points of %s: deleting unreferenced snapshot %s@%s",
			       cat->vm, disk, l.ids[j]);
			rc = snap_delete(cat->store, disk, l.ids[j]);
		}
	}
	for (size_t j = 0; j < l.n; j++)
		sr_free(l.ids[j]);
	sr_free(l.ids);
	return rc;
}

static int old_enough(int64_t cut, int64_t now, uint64_t retention)
{
	return cut < now && (uint64_t)now - (uint64_t)cut > retention;
}

SITEREC_API int siterec_rp_prune(siterec_rp_catalog *cat, int64_t now_ms, uint64_t retention_ms,
                                 const uint64_t *keep, size_t n_keep, uint64_t *pruned)
{
	int rc;
	uint64_t done = 0;
	rp_ref *refs = NULL;
	size_t nrefs = 0;
	uint8_t *gone = NULL;
	if (pruned)
		*pruned = 0;
	if ((rc = check_cat(cat, "recovery points prune")))
		return rc;
	if (n_keep && !keep)
		return sr_err(SITEREC_EINVAL, "recovery points prune: keep is NULL with n_keep %zu", n_keep);
	if ((rc = cat_refresh(cat)) || (rc = refs_build(cat, &refs, &nrefs)))
		return rc;
	if (cat->n && !(gone = sr_calloc(cat->n, 1))) {
		rc = sr_err(SITEREC_ENOMEM, "recovery points prune: out of memory");
		goto out;
	}
	/* oldest first; the newest point always stays */
	for (size_t i = 0; !rc && i + 1 < cat->n; i++) {
		const rp_pt *p = &cat->pts[i];
		size_t k = 0;
		while (k < n_keep && keep[k] != p->id)
			k++;
		if (k < n_keep || !old_enough(p->cut_time_ms, now_ms, retention_ms))
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
	}
	sr_free(gone);
	sr_free(refs);
	if (pruned)
		*pruned = done;
	return rc;
}
