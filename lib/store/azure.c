/* Azure Blob backend: disks are page blobs, snapshots blob snapshots, documents
 * block blobs, leases blob leases. Requests go through one reused libcurl easy
 * handle (keep-alive), signed with Shared Key (HMAC-SHA256) or carrying a SAS.
 * Writes are synchronous: each backend write is one Put Page (the front end
 * coalesces to at most SR_STORE_MAX_REQUEST), so writer_sync has nothing left.
 * The URL and SAS never go into messages: a SAS is a credential. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* memmem */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/platform_util.h>

#include "store_internal.h"

/* A service version Azurite 3.37 accepts without --skipApiVersionCheck. */
#define AZ_VERSION "2025-11-05"
#define AZ_MAX_HDR 12
#define AZ_MAX_Q 8
#define AZ_ERRBODY_MAX 4096
#define AZ_LIST_MAX (16u << 20)       /* cap of one listing / page-range answer */
#define AZ_RANGE_STEP (1ull << 30)    /* Get Page Ranges in 1 GiB slices: big blobs time out */
#define AZ_CLEAR_STEP (1ull << 30)
#define AZ_UPLOAD_BUF (1l << 20)       /* curl's send buffer for large bodies */

typedef struct az {
	char *base;        /* scheme://host[:port] */
	char *prefix;      /* "/account/container" (path-style) or "/container" */
	char *account;
	char *sas;         /* without leading '?', or NULL */
	unsigned char key[128];
	size_t key_len;    /* 0: no Shared Key */
	CURL *easy;
} az;

typedef struct az_req {
	const char *verb;
	const char *name;           /* blob, or NULL for the container */
	const char *qn[AZ_MAX_Q], *qv[AZ_MAX_Q];
	int nq;
	const char *hn[AZ_MAX_HDR], *hv[AZ_MAX_HDR];  /* x-ms-* (lowercase) */
	int nh;
	const char *if_match, *if_none_match, *content_md5;
	const uint8_t *body;
	size_t body_len, body_pos;
	/* response body sink: fixed (out_grow 0) or growing up to out_max */
	uint8_t *out;
	size_t out_len, out_cap, out_max;
	int out_grow, out_over;
	/* response */
	int status;
	char code[96], req_id[80], etag[SITEREC_STORE_ETAG_MAX], snap[80], lease[80], btype[24];
	uint64_t clen;
	int have_clen;
	long retry_after;
	char err[AZ_ERRBODY_MAX];
	size_t err_len;
} az_req;

static pthread_once_t az_once = PTHREAD_ONCE_INIT;
static CURLcode az_init_rc;

static void az_global_init(void)
{
	az_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static void q_add(az_req *r, const char *n, const char *v)
{
	if (r->nq < AZ_MAX_Q) {
		r->qn[r->nq] = n;
		r->qv[r->nq++] = v;
	}
}

static void h_add(az_req *r, const char *n, const char *v)
{
	if (r->nh < AZ_MAX_HDR) {
		r->hn[r->nh] = n;
		r->hv[r->nh++] = v;
	}
}

/* Azure snapshot ids are timestamps with ':', which store ids may not hold: swap with '_'. */
static void snap_to_azure(char *dst, size_t cap, const char *id)
{
	size_t i = 0;
	for (; id[i] && i + 1 < cap; i++)
		dst[i] = id[i] == '_' ? ':' : id[i];
	dst[i] = 0;
}

static void snap_from_azure(char *dst, size_t cap, const char *id)
{
	size_t i = 0;
	for (; id[i] && i + 1 < cap; i++)
		dst[i] = id[i] == ':' ? '_' : id[i];
	dst[i] = 0;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void sb_enc(sr_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (is_unreserved(c) || c == '/') {
			sr_buf_put(b, (const char *)&c, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			sr_buf_put(b, e, 3);
		}
	}
}

static void http_date(char *out, size_t cap)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
	         mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int cmp_idx_names(const char *const *names, int a, int b)
{
	return strcmp(names[a], names[b]);
}

/* Order of indexes by name (tiny arrays: insertion sort). */
static void sort_idx(const char *const *names, int n, int *idx)
{
	for (int i = 0; i < n; i++)
		idx[i] = i;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && cmp_idx_names(names, idx[j - 1], idx[j]) > 0; j--) {
			int t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
}

/* Shared Key for the Blob service (version 2009-09-19 and later). */
static int sign(const az *a, const az_req *r, const char *path, const char *date, char *auth,
                size_t cap)
{
	sr_buf s = { 0 };
	char clen[32] = "";
	if (r->body_len)
		snprintf(clen, sizeof(clen), "%zu", r->body_len);
	sr_buf_puts(&s, r->verb);
	sr_buf_puts(&s, "\n\n\n");      /* Content-Encoding, Content-Language */
	sr_buf_puts(&s, clen);
	sr_buf_puts(&s, "\n");
	sr_buf_puts(&s, r->content_md5 ? r->content_md5 : "");
	sr_buf_puts(&s, "\n\n\n\n");    /* Content-Type, Date (x-ms-date is used), If-Modified-Since */
	sr_buf_puts(&s, r->if_match ? r->if_match : "");
	sr_buf_puts(&s, "\n");
	sr_buf_puts(&s, r->if_none_match ? r->if_none_match : "");
	sr_buf_puts(&s, "\n\n\n");      /* If-Unmodified-Since, Range */
	const char *hn[AZ_MAX_HDR + 2], *hv[AZ_MAX_HDR + 2];
	int nh = 0, idx[AZ_MAX_HDR + 2];
	for (int i = 0; i < r->nh; i++, nh++) {
		hn[nh] = r->hn[i];
		hv[nh] = r->hv[i];
	}
	hn[nh] = "x-ms-date";
	hv[nh++] = date;
	hn[nh] = "x-ms-version";
	hv[nh++] = AZ_VERSION;
	sort_idx(hn, nh, idx);
	for (int i = 0; i < nh; i++) {
		sr_buf_puts(&s, hn[idx[i]]);
		sr_buf_puts(&s, ":");
		sr_buf_puts(&s, hv[idx[i]]);
		sr_buf_puts(&s, "\n");
	}
	sr_buf_puts(&s, "/");
	sr_buf_puts(&s, a->account);
	sr_buf_puts(&s, path);
	int qi[AZ_MAX_Q];
	sort_idx(r->qn, r->nq, qi);
	for (int i = 0; i < r->nq; i++) {
		sr_buf_puts(&s, "\n");
		sr_buf_puts(&s, r->qn[qi[i]]);
		sr_buf_puts(&s, ":");
		sr_buf_puts(&s, r->qv[qi[i]]);
	}
	if (s.oom) {
		sr_buf_free(&s);
		return sr_err(SITEREC_ENOMEM, "azure: out of memory signing a request");
	}
	unsigned char mac[32], b64[64];
	size_t olen = 0;
	int rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), a->key, a->key_len,
	                         (const unsigned char *)s.p, s.len, mac);
	sr_buf_free(&s);
	if (rc == 0)
		rc = mbedtls_base64_encode(b64, sizeof(b64), &olen, mac, sizeof(mac));
	if (rc == 0) {
		b64[olen] = 0;
		snprintf(auth, cap, "Authorization: SharedKey %s:%s", a->account, (const char *)b64);
	}
	mbedtls_platform_zeroize(mac, sizeof(mac));
	mbedtls_platform_zeroize(b64, sizeof(b64));
	return rc ? sr_err(SITEREC_ERROR, "azure: signing failed") : 0;
}

/* ---- curl callbacks ---- */

static size_t cb_read(char *buf, size_t size, size_t n, void *p)
{
	az_req *r = p;
	size_t want = size * n, left = r->body_len - r->body_pos;
	if (want > left)
		want = left;
	memcpy(buf, r->body + r->body_pos, want);
	r->body_pos += want;
	return want;
}

static size_t cb_write(char *data, size_t size, size_t n, void *p)
{
	az_req *r = p;
	size_t len = size * n;
	if (r->status < 200 || r->status >= 300) {
		size_t room = sizeof(r->err) - 1 - r->err_len;
		size_t take = len < room ? len : room;
		memcpy(r->err + r->err_len, data, take);
		r->err_len += take;
		r->err[r->err_len] = 0;
		return len;
	}
	if (r->out_len + len > r->out_cap) {
		if (!r->out_grow || r->out_len + len > r->out_max) {
			r->out_over = 1;
			return 0;  /* aborts the transfer: more data than asked for */
		}
		size_t nc = r->out_cap ? r->out_cap * 2 : 65536;
		while (nc < r->out_len + len + 1)
			nc *= 2;
		uint8_t *np = sr_realloc(r->out, nc);
		if (!np) {
			r->out_over = 1;
			return 0;
		}
		r->out = np;
		r->out_cap = nc;
	}
	memcpy(r->out + r->out_len, data, len);
	r->out_len += len;
	return len;
}

static void copy_val(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

static size_t cb_header(char *data, size_t size, size_t n, void *p)
{
	az_req *r = p;
	size_t len = size * n;
	if (len > 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* a new response (also after 100 Continue): forget the previous one's headers */
		const char *sp = memchr(data, ' ', len);
		r->status = sp && sp + 4 <= data + len ? atoi(sp + 1) : 0;
		r->code[0] = r->req_id[0] = r->etag[0] = r->snap[0] = r->lease[0] = r->btype[0] = 0;
		r->have_clen = 0;
		r->retry_after = -1;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1, *e = data + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
		e--;
	size_t vlen = (size_t)(e - v);
#define HDR_IS(s) (nlen == sizeof(s) - 1 && strncasecmp(data, s, nlen) == 0)
	if (HDR_IS("x-ms-error-code"))
		copy_val(r->code, sizeof(r->code), v, vlen);
	else if (HDR_IS("x-ms-request-id"))
		copy_val(r->req_id, sizeof(r->req_id), v, vlen);
	else if (HDR_IS("etag"))
		copy_val(r->etag, sizeof(r->etag), v, vlen);
	else if (HDR_IS("x-ms-snapshot"))
		copy_val(r->snap, sizeof(r->snap), v, vlen);
	else if (HDR_IS("x-ms-lease-id"))
		copy_val(r->lease, sizeof(r->lease), v, vlen);
	else if (HDR_IS("x-ms-blob-type"))
		copy_val(r->btype, sizeof(r->btype), v, vlen);
	else if (HDR_IS("content-length")) {
		char tmp[32];
		copy_val(tmp, sizeof(tmp), v, vlen);
		r->clen = strtoull(tmp, NULL, 10);
		r->have_clen = 1;
	} else if (HDR_IS("retry-after")) {
		char tmp[32];
		copy_val(tmp, sizeof(tmp), v, vlen);
		r->retry_after = strtol(tmp, NULL, 10);
	}
#undef HDR_IS
	return len;
}

/* ---- bounded XML scanning: [p, end) is never left, whatever the input ---- */

/* Finds <tag>value</tag> in [p, end): value span to *vs and *ve; returns just past the close tag, or NULL. */
static const char *xml_find(const char *p, const char *end, const char *tag, const char **vs,
                            const char **ve)
{
	char open[64], close[64];
	int no = snprintf(open, sizeof(open), "<%s>", tag);
	int nc = snprintf(close, sizeof(close), "</%s>", tag);
	if (p >= end)
		return NULL;
	const char *o = memmem(p, (size_t)(end - p), open, (size_t)no);
	if (!o)
		return NULL;
	const char *s = o + no;
	const char *c = memmem(s, (size_t)(end - s), close, (size_t)nc);
	if (!c)
		return NULL;
	*vs = s;
	*ve = c;
	return c + nc;
}

static int xml_u64(const char *p, const char *end, const char *tag, uint64_t *out)
{
	const char *vs, *ve;
	if (!xml_find(p, end, tag, &vs, &ve) || vs == ve || ve - vs > 20)
		return 0;
	uint64_t v = 0;
	for (const char *q = vs; q < ve; q++) {
		if (*q < '0' || *q > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	*out = v;
	return 1;
}

/* Copy a text value, decoding the five XML entities; 0 if it does not fit. */
static int xml_text(const char *vs, const char *ve, char *out, size_t cap)
{
	static const struct { const char *e; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
	size_t o = 0;
	while (vs < ve) {
		char c = *vs++;
		if (c == '&') {
			size_t k, left = (size_t)(ve - vs) + 1;
			for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
				size_t el = strlen(ents[k].e);
				if (el <= left && memcmp(vs - 1, ents[k].e, el) == 0) {
					c = ents[k].c;
					vs += el - 1;
					break;
				}
			}
			if (k == sizeof(ents) / sizeof(ents[0]))
				return 0;
		}
		if (o + 1 >= cap)
			return 0;
		out[o++] = c;
	}
	out[o] = 0;
	return 1;
}

/* ---- requests ---- */

static int retryable_status(int s)
{
	return s == 408 || s == 429 || s == 500 || s == 503;
}

/* Back-off before retry number attempt+1, in ms: exponential from 200 ms, capped
 * at 30 s, half of it random (jitter spreads clients apart); a longer Retry-After
 * (capped at 60 s) wins. */
static uint64_t backoff_ms(unsigned attempt, long retry_after)
{
	uint64_t ms = 200ull << (attempt < 8 ? attempt : 8);
	if (ms > 30000)
		ms = 30000;
	uint32_t rnd = 0;
	sr_random_bytes(&rnd, sizeof(rnd));
	ms = ms / 2 + rnd % (ms / 2 + 1);
	if (retry_after > 0 && (uint64_t)retry_after * 1000 > ms)
		ms = (uint64_t)(retry_after > 60 ? 60 : retry_after) * 1000;
	return ms;
}

/* What one transfer owns until it is done: the headers list and the URL (a SAS rides in it). */
typedef struct az_xfer {
	struct curl_slist *hl;
	sr_buf url;
} az_xfer;

static void xfer_done(CURL *c, az_xfer *x)
{
	/* nothing of this request (URL with a SAS, headers) may outlive it in the handle */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(x->hl);
	x->hl = NULL;
	sr_buf_free(&x->url);
}

/* Set handle c up for request r (fresh date and signature); 0 or an error (set). */
static int setup(siterec_store *st, const az *a, CURL *c, az_req *r, az_xfer *x)
{
	sr_buf path = { 0 };
	char date[64], line[512], auth[256];
	int rc = 0;
	memset(x, 0, sizeof(*x));
	sr_buf_puts(&path, a->prefix);
	if (r->name) {
		sr_buf_puts(&path, "/");
		sb_enc(&path, r->name);
	}
	sr_buf_puts(&x->url, a->base);
	sr_buf_puts(&x->url, path.p ? path.p : "");
	for (int i = 0; i < r->nq; i++) {
		sr_buf_puts(&x->url, i ? "&" : "?");
		sr_buf_puts(&x->url, r->qn[i]);
		sr_buf_puts(&x->url, "=");
		sb_enc(&x->url, r->qv[i]);
	}
	if (a->sas) {
		sr_buf_puts(&x->url, r->nq ? "&" : "?");
		sr_buf_puts(&x->url, a->sas);
	}
	if (x->url.oom || path.oom) {
		rc = sr_err(SITEREC_ENOMEM, "azure: out of memory building a request");
		goto out;
	}
	http_date(date, sizeof(date));
	snprintf(line, sizeof(line), "x-ms-date: %s", date);
	x->hl = curl_slist_append(x->hl, line);
	x->hl = curl_slist_append(x->hl, "x-ms-version: " AZ_VERSION);
	x->hl = curl_slist_append(x->hl, "Expect:");       /* no 100-continue round trip */
	x->hl = curl_slist_append(x->hl, "Content-Type:"); /* nothing curl adds on its own */
	for (int i = 0; i < r->nh; i++) {
		snprintf(line, sizeof(line), "%s: %s", r->hn[i], r->hv[i]);
		x->hl = curl_slist_append(x->hl, line);
	}
	if (r->if_match) {
		snprintf(line, sizeof(line), "If-Match: %s", r->if_match);
		x->hl = curl_slist_append(x->hl, line);
	}
	if (r->if_none_match) {
		snprintf(line, sizeof(line), "If-None-Match: %s", r->if_none_match);
		x->hl = curl_slist_append(x->hl, line);
	}
	if (r->content_md5) {
		snprintf(line, sizeof(line), "Content-MD5: %s", r->content_md5);
		x->hl = curl_slist_append(x->hl, line);
	}
	if (a->key_len) {
		if ((rc = sign(a, r, path.p, date, auth, sizeof(auth))))
			goto out;
		x->hl = curl_slist_append(x->hl, auth);
		mbedtls_platform_zeroize(auth, sizeof(auth));
	}
	if (!x->hl) {
		rc = sr_err(SITEREC_ENOMEM, "azure: out of memory building headers");
		goto out;
	}

	curl_easy_reset(c);  /* keeps the connection cache: keep-alive across requests */
	curl_easy_setopt(c, CURLOPT_URL, x->url.p);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)st->opts.timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)st->opts.timeout_ms);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (st->opts.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, st->opts.ca_file);
	if (st->opts.bandwidth_limit)
		curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)st->opts.bandwidth_limit);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, cb_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cb_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_PRIVATE, r);
	if (strcmp(r->verb, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, cb_read);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		/* curl's 64 KiB default means a read callback and a send() per 64 KiB:
		 * 1 MiB halves the client's CPU per byte on large page writes */
		if (r->body_len > AZ_UPLOAD_BUF / 4)
			curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, (long)AZ_UPLOAD_BUF);
	} else if (strcmp(r->verb, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->verb, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->verb);
	}
	r->body_pos = 0;
	r->out_len = 0;
	r->out_over = 0;
	r->err_len = 0;
	r->err[0] = 0;
	r->status = 0;
	r->retry_after = -1;
out:
	sr_buf_free(&path);
	if (rc)
		xfer_done(c, x);
	return rc;
}

/* Map a failed answer to a code. what: the operation, for the message. */
static int fail(const az_req *r, const char *what, const char *name)
{
	char code[96];
	const char *vs, *ve;
	snprintf(code, sizeof(code), "%s", r->code);
	if (!code[0] && xml_find(r->err, r->err + r->err_len, "Code", &vs, &ve) &&
	    !xml_text(vs, ve, code, sizeof(code)))
		code[0] = 0;
	int s = r->status, rc;
	int lease = strncmp(code, "Lease", 5) == 0;
	if (s == 403)
		return sr_err_http(SITEREC_EAUTH, s, code,
		                   "azure %s %s: authentication failed (check the account key or SAS): "
		                   "HTTP 403 %s (request id %s)", what, name ? name : "", code, r->req_id);
	if (s == 404)
		rc = SITEREC_ENOTFOUND;
	else if ((s == 409 || s == 412) && lease)
		rc = SITEREC_ELEASE;
	else if (s == 409 && strcmp(code, "SnapshotsPresent") == 0)
		rc = SITEREC_EBUSY;
	else if (s == 409 && strcmp(code, "BlobAlreadyExists") == 0)
		rc = SITEREC_EEXISTS;
	else if (s == 409 || s == 412)
		rc = SITEREC_ECONFLICT;
	else if (s == 416)
		rc = SITEREC_ERANGE;
	else
		rc = SITEREC_ESTORAGE;
	return sr_err_http(rc, s, code, "azure %s %s: HTTP %d %s (request id %s)", what,
	                   name ? name : "", s, code[0] ? code : "(no error code)", r->req_id);
}

/* The server's certificate was not trusted, or the CA file unusable: a setup
 * problem (ca_file), not a passing network failure. */
static int tls_trust_error(CURLcode cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_ISSUER_ERROR ||
	       cc == CURLE_SSL_CACERT_BADFILE;
}

/* After a transfer: 0 done (2xx), 1 worth another try, 2 failed for good. */
static int classify(const az_req *r, CURLcode cc)
{
	if (cc == CURLE_OK)
		return r->status >= 200 && r->status < 300 ? 0 : retryable_status(r->status) ? 1 : 2;
	if (cc == CURLE_WRITE_ERROR && r->out_over)
		return 2;
	if (tls_trust_error(cc))
		return 2;  /* the same certificate fails again: do not retry */
	return 1;
}

/* The error (set) of a transfer that failed for good after tries attempts. */
static int final_err(const az_req *r, CURLcode cc, const char *what, unsigned tries)
{
	const char *n = r->name ? r->name : "";
	if (cc == CURLE_OK)
		return fail(r, what, r->name);
	if (cc == CURLE_WRITE_ERROR && r->out_over)
		return sr_err(SITEREC_ECORRUPT, "azure %s %s: the answer is larger than expected", what, n);
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return sr_err(SITEREC_ETIMEOUT, "azure %s %s: timed out after %u tries", what, n, tries);
	if (cc == CURLE_SSL_CACERT_BADFILE)
		return sr_err(SITEREC_ENETWORK, "azure %s %s: TLS certificate verification failed: "
		              "the CA file could not be used (check ca_file)", what, n);
	if (tls_trust_error(cc))
		return sr_err(SITEREC_ENETWORK, "azure %s %s: TLS certificate verification failed: "
		              "%s (give the CA in ca_file?)", what, n, curl_easy_strerror(cc));
	return sr_err(SITEREC_ENETWORK, "azure %s %s: %s (after %u tries)", what, n,
	              curl_easy_strerror(cc), tries);
}

/* Run a request with retries on the store's handle. 0 on 2xx, else the mapped error (set). */
static int run(siterec_store *st, az_req *r, const char *what)
{
	az *a = st->impl;
	for (unsigned att = 0;; att++) {
		az_xfer x;
		int rc = setup(st, a, a->easy, r, &x);
		if (rc)
			return rc;
		if (r->body_len)
			sr_store_sleep_until(sr_store_bw_start(st, r->body_len));
		CURLcode cc = curl_easy_perform(a->easy);
		xfer_done(a->easy, &x);
		int k = classify(r, cc);
		if (k == 0)
			return 0;
		if (k == 2 || att >= st->opts.max_retries)
			return final_err(r, cc, what, att + 1);
		sr_store_sleep_until(sr_store_now_ns() +
		                     backoff_ms(att, cc == CURLE_OK ? r->retry_after : -1) * 1000000ull);
	}
}

static void req_free(az_req *r)
{
	if (r->out_grow)
		sr_free(r->out);
	r->out = NULL;
}

static void snap_query(az_req *r, char *buf, size_t cap, const char *snap)
{
	if (snap) {
		snap_to_azure(buf, cap, snap);
		q_add(r, "snapshot", buf);
	}
}

/* ---- disks ---- */

static int az_disk_create(siterec_store *st, const char *name, uint64_t size)
{
	char sz[32];
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	az_req r = { .verb = "PUT", .name = name, .if_none_match = "*" };
	h_add(&r, "x-ms-blob-type", "PageBlob");
	h_add(&r, "x-ms-blob-content-length", sz);
	int rc = run(st, &r, "disk create");
	if (rc && (r.status == 409 || r.status == 412))
		return sr_err_http(SITEREC_EEXISTS, r.status, r.code, "disk create %s: the name is taken",
		                   name);
	return rc;
}

/* Properties of a blob (or snapshot): size and type. */
static int head(siterec_store *st, const char *name, const char *snap, const char *what,
                uint64_t *size, char *btype, size_t cap)
{
	char sb[80];
	az_req r = { .verb = "HEAD", .name = name };
	snap_query(&r, sb, sizeof(sb), snap);
	int rc = run(st, &r, what);
	if (rc)
		return rc;
	if (!r.have_clen)
		return sr_err(SITEREC_ESTORAGE, "azure %s %s: no Content-Length in the answer", what, name);
	*size = r.clen;
	if (btype)
		snprintf(btype, cap, "%s", r.btype);
	return 0;
}

static int az_disk_size(siterec_store *st, const char *name, const char *snap, uint64_t *size)
{
	return head(st, name, snap, "disk size", size, NULL, 0);
}

static int az_disk_delete(siterec_store *st, const char *name, uint32_t flags, const char *lease)
{
	az_req r = { .verb = "DELETE", .name = name };
	if (flags & SITEREC_STORE_DELETE_SNAPSHOTS)
		h_add(&r, "x-ms-delete-snapshots", "include");
	if (lease)
		h_add(&r, "x-ms-lease-id", lease);
	return run(st, &r, "disk delete");
}

static int az_read(siterec_store *st, const char *name, const char *snap, void *buf, size_t len,
                   uint64_t off)
{
	uint64_t size;
	int rc;
	if (!len) {
		if ((rc = az_disk_size(st, name, snap, &size)))
			return rc;
		return off > size ? sr_err(SITEREC_ERANGE, "read %s: offset past the end", name) : 0;
	}
	char range[80], sb[80];
	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1));
	az_req r = { .verb = "GET", .name = name, .out = buf, .out_cap = len };
	h_add(&r, "x-ms-range", range);
	snap_query(&r, sb, sizeof(sb), snap);
	rc = run(st, &r, "read");
	if (rc == SITEREC_ERANGE || (!rc && r.out_len != len))
		return sr_err_http(SITEREC_ERANGE, r.status, r.code,
		                   "read %s: [%llu, +%zu) past the end of the disk", name,
		                   (unsigned long long)off, len);
	return rc;
}

/* Page ranges come back sorted but maybe adjacent and unmerged (Azurite): merge here. */
typedef struct ext_acc {
	uint64_t s, e;  /* pending [s, e) */
	int have;
	siterec_extent_fn cb;
	void *payload;
} ext_acc;

static int ext_add(ext_acc *x, uint64_t s, uint64_t e)
{
	if (s >= e)
		return 0;
	if (x->have && s <= x->e) {
		if (e > x->e)
			x->e = e;
		return 0;
	}
	if (x->have) {
		int rc = x->cb(x->s, x->e - x->s, x->payload);
		if (rc)
			return sr_err_callback(rc, "store ranges callback");
	}
	x->s = s;
	x->e = e;
	x->have = 1;
	return 0;
}

static int az_ranges(siterec_store *st, const char *name, const char *snap, uint64_t off,
                     uint64_t len, siterec_extent_fn cb, void *payload)
{
	uint64_t size;
	int rc = az_disk_size(st, name, snap, &size);
	if (rc)
		return rc;
	if (off > size || (len && len > size - off))
		return sr_err(SITEREC_ERANGE, "ranges %s: past the end of the disk", name);
	uint64_t end = len ? off + len : size;
	ext_acc x = { .cb = cb, .payload = payload };
	char marker[1024] = "";
	for (uint64_t pos = off & ~511ull; pos < end;) {
		uint64_t step_end = end - pos > AZ_RANGE_STEP ? pos + AZ_RANGE_STEP : end;
		step_end = (step_end + 511) & ~511ull;
		if (step_end > size)
			step_end = size;
		char range[80], sb[80];
		snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)pos,
		         (unsigned long long)(step_end - 1));
		az_req r = { .verb = "GET", .name = name, .out_grow = 1, .out_max = AZ_LIST_MAX };
		q_add(&r, "comp", "pagelist");
		snap_query(&r, sb, sizeof(sb), snap);
		if (marker[0])
			q_add(&r, "marker", marker);
		h_add(&r, "x-ms-range", range);
		if ((rc = run(st, &r, "ranges"))) {
			req_free(&r);
			return rc;
		}
		const char *p = (const char *)r.out, *e = p + r.out_len, *vs, *ve, *nx;
		while (p && (nx = xml_find(p, e, "PageRange", &vs, &ve))) {
			uint64_t a, b;
			if (!xml_u64(vs, ve, "Start", &a) || !xml_u64(vs, ve, "End", &b) || b < a ||
			    b == UINT64_MAX) {
				req_free(&r);
				return sr_err(SITEREC_ECORRUPT, "ranges %s: malformed page range in the answer",
				              name);
			}
			/* clip to the asked span */
			uint64_t s = a > off ? a : off, t = b + 1 < end ? b + 1 : end;
			if ((rc = ext_add(&x, s, t))) {
				req_free(&r);
				return rc;
			}
			p = nx;
		}
		marker[0] = 0;
		if (r.out && xml_find((const char *)r.out, e, "NextMarker", &vs, &ve) && vs < ve &&
		    !xml_text(vs, ve, marker, sizeof(marker))) {
			req_free(&r);
			return sr_err(SITEREC_ECORRUPT, "ranges %s: continuation marker too long", name);
		}
		req_free(&r);
		if (!marker[0])
			pos = step_end;
		if ((rc = sr_store_progress(st, pos - off, end - off)))
			return rc;
	}
	if (x.have && (rc = cb(x.s, x.e - x.s, payload)))
		return sr_err_callback(rc, "store ranges callback");
	return 0;
}

/* ---- writer: up to max_inflight Put Page requests in flight (curl multi) ----
 * Each slot owns an easy handle (its own kept-alive connection), its request and
 * the data buffer the front end handed over (no copy). A slot is busy from its
 * request until its answer; in between it may wait, outside the multi handle,
 * for a retry's back-off or the bandwidth limit, while the other slots go on.
 * writer_write returns once a slot is free; a failure is kept and returned by
 * the next call. */

typedef struct az_slot {
	CURL *easy;
	az_req r;
	az_xfer x;
	uint8_t *buf;          /* SR_STORE_MAX_REQUEST bytes, from the front end */
	char range[80], md5[32];
	uint64_t off, len;     /* the span, to keep overlapping requests in order */
	uint64_t not_before;   /* waiting: monotonic ns at which to (re)start */
	unsigned tries;
	int busy;              /* a request is assigned (waiting or in the multi handle) */
	int waiting;           /* busy, not yet started */
} az_slot;

struct sr_store_bwriter {
	siterec_store *st;
	CURLM *multi;
	az_slot *slots;
	uint32_t nslots;
	uint32_t busy;
	uint32_t waiting;
	char *name;
	char lease[SITEREC_STORE_LEASE_MAX];
	int has_lease;
	/* first failure, replayed into the thread's last error when reported */
	int failed, failed_status;
	char failed_code[96], failed_msg[512];
};

static int w_failed(sr_store_bwriter *w)
{
	return sr_err_http(w->failed, w->failed_status, w->failed_code, "%s", w->failed_msg);
}

static void w_record(sr_store_bwriter *w, int rc)
{
	if (w->failed)
		return;
	const siterec_error *e = siterec_error_last();
	w->failed = rc;
	w->failed_status = e->http_status;
	snprintf(w->failed_code, sizeof(w->failed_code), "%s", e->service_code ? e->service_code : "");
	snprintf(w->failed_msg, sizeof(w->failed_msg), "%s", e->message ? e->message : "");
}

static void az_writer_close(sr_store_bwriter *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; w->slots && i < w->nslots; i++) {
		az_slot *sl = &w->slots[i];
		if (sl->easy) {
			if (sl->busy && !sl->waiting) {
				curl_multi_remove_handle(w->multi, sl->easy);
				xfer_done(sl->easy, &sl->x);
			}
			curl_easy_cleanup(sl->easy);
		}
		sr_free(sl->buf);
	}
	sr_free(w->slots);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	sr_free(w->name);
	mbedtls_platform_zeroize(w, sizeof(*w));
	sr_free(w);
}

static int az_writer_open(siterec_store *st, const char *name, const char *lease,
                          sr_store_bwriter **out, uint64_t *size)
{
	char bt[24];
	int rc = head(st, name, NULL, "writer open", size, bt, sizeof(bt));
	if (rc)
		return rc;
	if (strcmp(bt, "PageBlob") != 0)
		return sr_err(SITEREC_EINVAL, "writer open %s: not a disk (a %s)", name, bt);
	sr_store_bwriter *w = sr_calloc(1, sizeof(*w));
	uint32_t n = st->opts.max_inflight ? st->opts.max_inflight : 1;
	if (n > 64)
		n = 64;
	if (!w || !(w->name = sr_strdup(name)) || !(w->slots = sr_calloc(n, sizeof(az_slot))) ||
	    !(w->multi = curl_multi_init())) {
		az_writer_close(w);
		return sr_err(SITEREC_ENOMEM, "writer open %s: out of memory", name);
	}
	w->nslots = n;
	w->st = st;
	if (lease) {
		snprintf(w->lease, sizeof(w->lease), "%s", lease);
		w->has_lease = 1;
	}
	*out = w;
	return 0;
}

/* Start the slot's transfer now (fresh date and signature). */
static int slot_start(sr_store_bwriter *w, az_slot *sl)
{
	int rc = setup(w->st, w->st->impl, sl->easy, &sl->r, &sl->x);
	if (rc)
		return rc;
	if (curl_multi_add_handle(w->multi, sl->easy) != CURLM_OK) {
		xfer_done(sl->easy, &sl->x);
		return sr_err(SITEREC_ERROR, "writer %s: curl_multi_add_handle failed", w->name);
	}
	return 0;
}

/* Give the slot its (next) attempt: at once, or waiting until not_before. The
 * slot is busy from here until slot_end takes the final answer. */
static void slot_launch(sr_store_bwriter *w, az_slot *sl, uint64_t not_before)
{
	if (!sl->busy) {
		sl->busy = 1;
		w->busy++;
	}
	if (sl->r.body_len) {
		/* the bytes are charged at launch: the limit spaces the requests apart */
		uint64_t bw = sr_store_bw_start(w->st, sl->r.body_len);
		if (bw > not_before)
			not_before = bw;
	}
	if (not_before > sr_store_now_ns()) {
		sl->not_before = not_before;
		sl->waiting = 1;
		w->waiting++;
		return;
	}
	int rc = slot_start(w, sl);
	if (rc) {
		w_record(w, rc);
		sl->busy = 0;
		w->busy--;
	}
}

/* A transfer ended: free the slot, schedule its retry, or record the failure. */
static void slot_end(sr_store_bwriter *w, az_slot *sl, CURLcode cc)
{
	curl_multi_remove_handle(w->multi, sl->easy);
	xfer_done(sl->easy, &sl->x);
	int k = classify(&sl->r, cc);
	const char *what = sl->r.body ? "write" : "clear";
	if (k == 1 && sl->tries < w->st->opts.max_retries && !w->failed) {
		uint64_t ms = backoff_ms(sl->tries++, cc == CURLE_OK ? sl->r.retry_after : -1);
		slot_launch(w, sl, sr_store_now_ns() + ms * 1000000ull);
		return;
	}
	sl->busy = 0;
	w->busy--;
	if (k != 0)
		w_record(w, final_err(&sl->r, cc, what, sl->tries + 1));
}

/* Start the waiting slots whose time has come; returns the earliest time still
 * waited for (UINT64_MAX: none). After a failure the waiting ones are dropped. */
static uint64_t start_due(sr_store_bwriter *w)
{
	uint64_t now = sr_store_now_ns(), next = UINT64_MAX;
	for (uint32_t i = 0; w->waiting && i < w->nslots; i++) {
		az_slot *sl = &w->slots[i];
		if (!sl->waiting)
			continue;
		if (!w->failed && sl->not_before > now) {
			if (sl->not_before < next)
				next = sl->not_before;
			continue;
		}
		sl->waiting = 0;
		w->waiting--;
		int rc = w->failed ? w->failed : slot_start(w, sl);
		if (rc) {
			if (!w->failed)
				w_record(w, rc);
			sl->busy = 0;
			w->busy--;
		}
	}
	return next;
}

/* One round of driving the transfers: due starts, progress, completions, then
 * wait for activity or for the next due start. */
static int pump_step(sr_store_bwriter *w)
{
	uint64_t next = start_due(w);
	int running = 0, left;
	CURLMcode mc = curl_multi_perform(w->multi, &running);
	if (mc != CURLM_OK)
		return sr_err(SITEREC_ERROR, "writer %s: curl_multi_perform: %s", w->name,
		              curl_multi_strerror(mc));
	CURLMsg *m;
	int ended = 0;
	while ((m = curl_multi_info_read(w->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		for (uint32_t i = 0; i < w->nslots; i++)
			if (w->slots[i].busy && !w->slots[i].waiting && w->slots[i].easy == m->easy_handle) {
				slot_end(w, &w->slots[i], m->data.result);
				ended = 1;
				break;
			}
	}
	if (ended || !w->busy)
		return 0;
	long ms = 1000;
	if (next != UINT64_MAX) {
		uint64_t now = sr_store_now_ns();
		uint64_t d = next > now ? (next - now + 999999) / 1000000 : 0;
		if (d < (uint64_t)ms)
			ms = (long)d;
	}
	if (w->busy == w->waiting) {
		/* nothing in the multi handle: only the clock can bring progress */
		sr_store_sleep_until(sr_store_now_ns() + (uint64_t)ms * 1000000ull);
		return 0;
	}
	if ((mc = curl_multi_poll(w->multi, NULL, 0, (int)ms, NULL)) != CURLM_OK)
		return sr_err(SITEREC_ERROR, "writer %s: curl_multi_poll: %s", w->name,
		              curl_multi_strerror(mc));
	return 0;
}

/* Drive the transfers until at most `until` slots are busy. */
static int pump(sr_store_bwriter *w, uint32_t until)
{
	int rc = 0;
	while (!rc && w->busy > until)
		rc = pump_step(w);
	return rc;
}

static int slot_overlaps(const sr_store_bwriter *w, uint64_t off, uint64_t len)
{
	for (uint32_t i = 0; i < w->nslots; i++) {
		const az_slot *sl = &w->slots[i];
		if (sl->busy && sl->off < off + len && off < sl->off + sl->len)
			return 1;
	}
	return 0;
}

/* Queue one Put Page (bufp NULL: clear; else the data buffer is taken and a free
 * one left in *bufp) and return once fewer than max_inflight are busy. */
static int put_page(sr_store_bwriter *w, uint8_t **bufp, size_t len, uint64_t off)
{
	if (w->failed)
		return w_failed(w);
	/* a request that overlaps one in flight waits for it: Azure applies them in any order */
	int rc = 0;
	while (!rc && slot_overlaps(w, off, len))
		rc = pump_step(w);
	if (!rc)
		rc = pump(w, w->nslots - 1);
	if (rc)
		return rc;
	if (w->failed)
		return w_failed(w);
	az_slot *sl = NULL;
	for (uint32_t i = 0; i < w->nslots && !sl; i++)
		if (!w->slots[i].busy)
			sl = &w->slots[i];
	if (!sl->easy && !(sl->easy = curl_easy_init()))
		return sr_err(SITEREC_ENOMEM, "writer %s: out of memory", w->name);
	memset(&sl->r, 0, sizeof(sl->r));
	sl->tries = 0;
	sl->off = off;
	sl->len = len;
	snprintf(sl->range, sizeof(sl->range), "bytes=%llu-%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1));
	sl->r.verb = "PUT";
	sl->r.name = w->name;
	q_add(&sl->r, "comp", "page");
	h_add(&sl->r, "x-ms-page-write", bufp ? "update" : "clear");
	h_add(&sl->r, "x-ms-range", sl->range);
	if (w->has_lease)
		h_add(&sl->r, "x-ms-lease-id", w->lease);
	if (bufp) {
		/* take the caller's buffer, leave ours (a spare, or a new one) */
		uint8_t *spare = sl->buf ? sl->buf : sr_malloc(SR_STORE_MAX_REQUEST);
		sl->buf = *bufp;
		*bufp = spare;
		sl->r.body = sl->buf;
		sl->r.body_len = len;
		if (w->st->opts.flags & SITEREC_STORE_CONTENT_MD5) {
			unsigned char md5[16];
			size_t olen = 0;
			if (mbedtls_md5_ret(sl->buf, len, md5) ||
			    mbedtls_base64_encode((unsigned char *)sl->md5, sizeof(sl->md5), &olen, md5, 16))
				return sr_err(SITEREC_ERROR, "writer %s: MD5 failed", w->name);
			sl->md5[olen] = 0;
			sl->r.content_md5 = sl->md5;
		}
	}
	slot_launch(w, sl, 0);
	if (w->failed)
		return w_failed(w);
	/* get the request going before returning to the caller */
	int running;
	curl_multi_perform(w->multi, &running);
	return 0;
}

static int az_writer_write(sr_store_bwriter *w, uint8_t **buf, size_t len, uint64_t off)
{
	/* the front end never sends more than one Put Page may carry; hold the line anyway */
	if (len > SR_STORE_MAX_REQUEST || ((off | len) & 511) || !len)
		return sr_err(SITEREC_EINVAL, "writer %s: request of %zu bytes at %llu not a valid page write",
		              w->name, len, (unsigned long long)off);
	return put_page(w, buf, len, off);
}

static int az_writer_zero(sr_store_bwriter *w, uint64_t off, uint64_t len)
{
	if ((off | len) & 511)
		return sr_err(SITEREC_EALIGN, "writer %s: clear not aligned", w->name);
	while (len) {
		uint64_t n = len > AZ_CLEAR_STEP ? AZ_CLEAR_STEP : len;
		int rc = put_page(w, NULL, (size_t)n, off);
		if (rc)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* Every acknowledged Put Page is durable on the service: waiting for all is enough. */
static int az_writer_sync(sr_store_bwriter *w)
{
	int rc = pump(w, 0);
	if (rc)
		return rc;
	return w->failed ? w_failed(w) : 0;
}

/* ---- snapshots ---- */

static int az_snapshot(siterec_store *st, const char *name, char *id_out, size_t cap)
{
	az_req r = { .verb = "PUT", .name = name };
	q_add(&r, "comp", "snapshot");
	int rc = run(st, &r, "snapshot");
	if (rc)
		return rc;
	char id[SITEREC_STORE_ID_MAX];
	snap_from_azure(id, sizeof(id), r.snap);
	if (!sr_store_id_ok(id) || strlen(r.snap) >= cap)
		return sr_err(SITEREC_ESTORAGE, "snapshot %s: the service answered no usable snapshot id",
		              name);
	snprintf(id_out, cap, "%s", id);
	return 0;
}

static int az_snapshot_delete(siterec_store *st, const char *name, const char *snap)
{
	char sb[80];
	az_req r = { .verb = "DELETE", .name = name };
	snap_query(&r, sb, sizeof(sb), snap);
	return run(st, &r, "snapshot delete");
}

/* ---- documents ---- */

static int etag_out_copy(const char *etag, char *out, size_t cap, const char *name)
{
	if (!out)
		return 0;
	if (strlen(etag) >= cap)
		return sr_err(SITEREC_EINVAL, "doc %s: ETag buffer too small", name);
	snprintf(out, cap, "%s", etag);
	return 0;
}

static int az_doc_put(siterec_store *st, const char *name, const void *data, size_t len,
                      const char *if_match, char *etag_out, size_t cap)
{
	az_req r = { .verb = "PUT", .name = name, .body = data, .body_len = len };
	h_add(&r, "x-ms-blob-type", "BlockBlob");
	if (if_match && !*if_match)
		r.if_none_match = "*";
	else if (if_match)
		r.if_match = if_match;
	int rc = run(st, &r, "doc put");
	/* as on file://: a condition on a missing document is a conflict, not "not found" */
	if (rc && if_match && (r.status == 409 || r.status == 412 || r.status == 404))
		return sr_err_http(SITEREC_ECONFLICT, r.status, r.code,
		                   "doc put %s: %s", name, *if_match ? "the document changed (ETag mismatch)"
		                                                     : "the document exists");
	return rc ? rc : etag_out_copy(r.etag, etag_out, cap, name);
}

static int az_doc_get(siterec_store *st, const char *name, void **data, size_t *len,
                      char *etag_out, size_t cap)
{
	az_req r = { .verb = "GET", .name = name, .out_grow = 1, .out_max = (4u << 20) + 1 };
	int rc = run(st, &r, "doc get");
	if (rc) {
		req_free(&r);
		return rc;
	}
	if (!r.out && !(r.out = sr_malloc(1))) {
		return sr_err(SITEREC_ENOMEM, "doc get %s: out of memory", name);
	}
	if ((rc = etag_out_copy(r.etag, etag_out, cap, name))) {
		req_free(&r);
		return rc;
	}
	*data = r.out;
	*len = r.out_len;
	return 0;
}

static int az_doc_delete(siterec_store *st, const char *name, const char *if_match)
{
	az_req r = { .verb = "DELETE", .name = name };
	/* "": only when absent, so an existing one conflicts and a missing one is not found.
	 * Checked with a HEAD: Azurite ignores If-None-Match on Delete Blob and deletes. */
	if (if_match && !*if_match) {
		uint64_t size;
		int hrc = head(st, name, NULL, "doc delete", &size, NULL, 0);
		return hrc ? hrc : sr_err(SITEREC_ECONFLICT, "doc delete %s: the document exists", name);
	}
	r.if_match = if_match;
	int rc = run(st, &r, "doc delete");
	if (rc && if_match && (r.status == 412 || (r.status == 404 && *if_match)))
		return sr_err_http(SITEREC_ECONFLICT, r.status, r.code,
		                   "doc delete %s: the document changed (ETag mismatch)", name);
	return rc;
}

/* ---- leases ---- */

static int is_guid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		if (i == 8 || i == 13 || i == 18 || i == 23 ? c != '-' : !hex)
			return 0;
	}
	return 1;
}

/* Leases fence disk writers; documents use If-Match (as on file://): EINVAL for
 * anything but a page blob, ENOTFOUND when there is no blob. */
static int lease_disk_check(siterec_store *st, const char *name, const char *what)
{
	char bt[24];
	uint64_t size;
	int rc = head(st, name, NULL, what, &size, bt, sizeof(bt));
	if (rc)
		return rc;
	if (strcmp(bt, "PageBlob") != 0)
		return sr_err(SITEREC_EINVAL, "%s %s: not a disk (documents use If-Match)", what, name);
	return 0;
}

static int az_lease_acquire(siterec_store *st, const char *name, uint32_t duration,
                            const char *proposed, char *out, size_t cap)
{
	char guid[40], dur[16];
	if (proposed && !is_guid(proposed))
		return sr_err(SITEREC_EINVAL, "lease acquire %s: Azure lease ids are GUIDs "
		                              "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", name);
	int rc = lease_disk_check(st, name, "lease acquire");
	if (rc)
		return rc;
	if (!proposed) {
		unsigned char b[16];
		if ((rc = sr_random_bytes(b, sizeof(b))))
			return rc;
		b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
		b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
		snprintf(guid, sizeof(guid),
		         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		         b[15]);
		proposed = guid;
	}
	if (cap <= strlen(proposed))
		return sr_err(SITEREC_EINVAL, "lease acquire %s: output buffer too small", name);
	snprintf(dur, sizeof(dur), "%d", duration ? (int)duration : -1);
	az_req r = { .verb = "PUT", .name = name };
	q_add(&r, "comp", "lease");
	h_add(&r, "x-ms-lease-action", "acquire");
	h_add(&r, "x-ms-lease-duration", dur);
	h_add(&r, "x-ms-proposed-lease-id", proposed);
	rc = run(st, &r, "lease acquire");
	if (rc && r.status == 409)
		return sr_err_http(SITEREC_ELEASE, r.status, r.code,
		                   "lease acquire %s: someone else holds a lease", name);
	if (rc)
		return rc;
	snprintf(out, cap, "%s", r.lease[0] ? r.lease : proposed);
	return 0;
}

/* Renew or release the lease id, or (id NULL) break whoever's lease at once. */
static int lease_op(siterec_store *st, const char *name, const char *id, const char *action,
                    const char *what)
{
	az_req r = { .verb = "PUT", .name = name };
	q_add(&r, "comp", "lease");
	h_add(&r, "x-ms-lease-action", action);
	if (id)
		h_add(&r, "x-ms-lease-id", id);
	else
		h_add(&r, "x-ms-lease-break-period", "0");
	int rc = run(st, &r, what);
	if (rc && !id && r.status == 409 && strcmp(r.code, "LeaseNotPresentWithLeaseOperation") == 0) {
		siterec_error_clear();  /* no lease (never taken, released, expired): nothing to break */
		return 0;
	}
	if (rc && (r.status == 409 || r.status == 412))
		return sr_err_http(SITEREC_ELEASE, r.status, r.code, "%s %s: the lease is not held", what,
		                   name);
	return rc;
}

static int az_lease_renew(siterec_store *st, const char *name, const char *id)
{
	return lease_op(st, name, id, "renew", "lease renew");
}

static int az_lease_release(siterec_store *st, const char *name, const char *id)
{
	/* the service releases a broken lease (Broken -> Available) but does not renew
	 * one: renewing first tells a holder whose lease was broken that it lost it */
	int rc = lease_op(st, name, id, "renew", "lease release");
	return rc ? rc : lease_op(st, name, id, "release", "lease release");
}

/* Break period 0: the lease is broken at once (202), the holder's id no longer
 * writes or renews, and anyone may acquire it. */
static int az_lease_break(siterec_store *st, const char *name)
{
	int rc = lease_disk_check(st, name, "lease break");
	return rc ? rc : lease_op(st, name, NULL, "break", "lease break");
}

/* ---- listing ---- */

static int az_list(siterec_store *st, const char *prefix, siterec_store_list_fn cb, void *payload)
{
	char marker[1024] = "";
	int rc;
	do {
		az_req r = { .verb = "GET", .out_grow = 1, .out_max = AZ_LIST_MAX };
		q_add(&r, "restype", "container");
		q_add(&r, "comp", "list");
		q_add(&r, "include", "snapshots");
		if (*prefix)
			q_add(&r, "prefix", prefix);
		if (marker[0])
			q_add(&r, "marker", marker);
		if ((rc = run(st, &r, "list"))) {
			req_free(&r);
			return rc;
		}
		const char *p = (const char *)r.out, *e = p + r.out_len, *vs, *ve, *nx, *bs, *be;
		while (p && (nx = xml_find(p, e, "Blob", &bs, &be))) {
			char name[256], snap[80] = "", id[SITEREC_STORE_ID_MAX] = "", type[24] = "";
			uint64_t size = 0;
			p = nx;
			if (!xml_find(bs, be, "Name", &vs, &ve) || !xml_text(vs, ve, name, sizeof(name)) ||
			    !sr_store_name_ok(name))
				continue;  /* not an object of ours */
			if (xml_find(bs, be, "Snapshot", &vs, &ve) && !xml_text(vs, ve, snap, sizeof(snap)))
				continue;
			if (xml_find(bs, be, "BlobType", &vs, &ve))
				xml_text(vs, ve, type, sizeof(type));
			xml_u64(bs, be, "Content-Length", &size);
			int kind;
			if (strcmp(type, "PageBlob") == 0) {
				kind = snap[0] ? SITEREC_STORE_KIND_SNAPSHOT : SITEREC_STORE_KIND_DISK;
				if (snap[0]) {
					snap_from_azure(id, sizeof(id), snap);
					if (!sr_store_id_ok(id))
						continue;
				}
			} else if (strcmp(type, "BlockBlob") == 0 && !snap[0]) {
				kind = SITEREC_STORE_KIND_DOC;
			} else {
				continue;
			}
			int crc = cb(name, kind, size, snap[0] ? id : NULL, payload);
			if (crc) {
				req_free(&r);
				return sr_err_callback(crc, "store list callback");
			}
		}
		marker[0] = 0;
		if (r.out && xml_find((const char *)r.out, e, "NextMarker", &vs, &ve) && vs < ve &&
		    !xml_text(vs, ve, marker, sizeof(marker))) {
			req_free(&r);
			return sr_err(SITEREC_ECORRUPT, "list: continuation marker too long");
		}
		req_free(&r);
	} while (marker[0]);
	return 0;
}

/* ---- open / close ---- */

static void az_close(void *impl)
{
	az *a = impl;
	if (!a)
		return;
	if (a->easy)
		curl_easy_cleanup(a->easy);
	sr_free(a->base);
	sr_free(a->prefix);
	sr_free(a->account);
	if (a->sas) {
		mbedtls_platform_zeroize(a->sas, strlen(a->sas));
		sr_free(a->sas);
	}
	mbedtls_platform_zeroize(a, sizeof(*a));
	sr_free(a);
}

static int az_url(siterec_store *st, const char *name, char **out)
{
	const az *a = st->impl;
	sr_buf u = { 0 };
	sr_buf_puts(&u, a->base);
	sr_buf_puts(&u, a->prefix);
	sr_buf_puts(&u, "/");
	sb_enc(&u, name);
	if (u.oom) {
		sr_free(u.p);
		return sr_err(SITEREC_ENOMEM, "store: out of memory");
	}
	*out = u.p;
	return 0;
}

static const sr_store_ops az_ops = {
	.name = "azure",
	.close = az_close,
	.disk_create = az_disk_create,
	.disk_size = az_disk_size,
	.disk_delete = az_disk_delete,
	.read = az_read,
	.ranges = az_ranges,
	.writer_open = az_writer_open,
	.writer_write = az_writer_write,
	.writer_zero = az_writer_zero,
	.writer_sync = az_writer_sync,
	.writer_close = az_writer_close,
	.snapshot = az_snapshot,
	.snapshot_delete = az_snapshot_delete,
	.doc_put = az_doc_put,
	.doc_get = az_doc_get,
	.doc_delete = az_doc_delete,
	.lease_acquire = az_lease_acquire,
	.lease_renew = az_lease_renew,
	.lease_release = az_lease_release,
	.lease_break = az_lease_break,
	.list = az_list,
	.url = az_url,
};

static char *dup_n(const char *s, size_t n)
{
	char *d = sr_malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static int seg_ok(const char *s, size_t n, size_t min, size_t max, int dash)
{
	if (n < min || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (dash && c == '-')))
			return 0;
	}
	return 1;
}

/* Host is an IP address or localhost: the account is the first path segment. */
static int path_style(const char *host, size_t n)
{
	if (n >= 9 && strncmp(host, "localhost", 9) == 0 && (n == 9 || host[9] == ':'))
		return 1;
	if (host[0] == '[')
		return 1;
	for (size_t i = 0; i < n && host[i] != ':'; i++)
		if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.'))
			return 0;
	return 1;
}

int sr_store_azure_open(siterec_store *st, const char *url)
{
	pthread_once(&az_once, az_global_init);
	if (az_init_rc != CURLE_OK)
		return sr_err(SITEREC_ERROR, "azure: curl_global_init failed");
	const char *hs = strstr(url, "://");
	if (!hs)
		return sr_err(SITEREC_EINVAL, "store open: malformed Azure URL");
	hs += 3;
	const char *he = strchr(hs, '/');
	if (!he || he == hs)
		return sr_err(SITEREC_EINVAL, "store open: Azure URL needs /CONTAINER after the host");
	if (strpbrk(url, "?#%@"))
		return sr_err(SITEREC_EINVAL, "store open: Azure URL must not contain '?', '#', '%%' or "
		                              "'@' (give a SAS in the options)");
	const char *path = he + 1, *acc, *cont;
	size_t acc_n, cont_n;
	if (path_style(hs, (size_t)(he - hs))) {
		const char *sl = strchr(path, '/');
		if (!sl)
			return sr_err(SITEREC_EINVAL, "store open: path-style Azure URL needs /ACCOUNT/CONTAINER");
		acc = path;
		acc_n = (size_t)(sl - path);
		cont = sl + 1;
	} else {
		const char *dot = memchr(hs, '.', (size_t)(he - hs));
		if (!dot)
			return sr_err(SITEREC_EINVAL, "store open: Azure host must be ACCOUNT.blob.<suffix>");
		acc = hs;
		acc_n = (size_t)(dot - hs);
		cont = path;
	}
	cont_n = strlen(cont);
	if (cont_n && cont[cont_n - 1] == '/')
		cont_n--;
	if (!seg_ok(acc, acc_n, 3, 24, 0))
		return sr_err(SITEREC_EINVAL, "store open: Azure account name must be 3..24 of [a-z0-9]");
	if (!seg_ok(cont, cont_n, 3, 63, 1) || cont[0] == '-')
		return sr_err(SITEREC_EINVAL, "store open: Azure container name must be 3..63 of [a-z0-9-]");

	az *a = sr_calloc(1, sizeof(*a));
	if (!a)
		return sr_err(SITEREC_ENOMEM, "store open: out of memory");
	st->impl = a;
	st->ops = &az_ops;  /* from here, siterec_store_free cleans up */
	a->base = dup_n(url, (size_t)(he - url));
	a->account = dup_n(acc, acc_n);
	a->prefix = dup_n(he, (size_t)(cont + cont_n - he));
	a->easy = curl_easy_init();
	if (!a->base || !a->account || !a->prefix || !a->easy)
		return sr_err(SITEREC_ENOMEM, "store open: out of memory");
	if (st->sas_token) {
		const char *s = st->sas_token[0] == '?' ? st->sas_token + 1 : st->sas_token;
		if (!(a->sas = sr_strdup(s)))
			return sr_err(SITEREC_ENOMEM, "store open: out of memory");
	} else if (st->account_key) {
		if (mbedtls_base64_decode(a->key, sizeof(a->key), &a->key_len,
		                          (const unsigned char *)st->account_key, strlen(st->account_key)) ||
		    !a->key_len)
			return sr_err(SITEREC_EINVAL, "store open: the account key is not valid base64");
	}
	if (st->opts.flags & SITEREC_STORE_CREATE) {
		az_req r = { .verb = "PUT" };
		q_add(&r, "restype", "container");
		int rc = run(st, &r, "create container");
		if (rc && !(r.status == 409 && strcmp(r.code, "ContainerAlreadyExists") == 0))
			return rc;
		return 0;
	}
	/* the container must exist; this also checks the credentials before any real work */
	az_req r = { .verb = "HEAD" };
	q_add(&r, "restype", "container");
	return run(st, &r, "open container");
}
