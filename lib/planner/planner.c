/* The deployment planner: churn profile -> fit, bandwidth, storage, copy
 * frequency (formulas and sources in include/siterec/planner.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "siterec/planner.h"

#define PL_NAME_MAX 128
#define PL_MAX_INTERVALS 10000000ull
#define PL_CSV_MAX (1ull << 30)
#define PL_CHART_POINTS 720
#define PL_HEADER "timestamp,vm,disk,disk_size_bytes,bytes_written"

static const size_t pl_opt_sizes[] = { 0, sizeof(siterec_planner_options) };
static const uint32_t pl_rpo_s[3] = { 900, 1800, 3600 };
static const uint32_t pl_freq_s[3] = { 30, 300, 900 };

typedef struct pl_sample {
	int64_t t;
	uint64_t bytes;
} pl_sample;

typedef struct pl_disk {
	char *name;
	uint32_t vm;
	uint64_t size;
	pl_sample *s;
	size_t n, cap;
	/* results */
	double peak, pct, planned;
	uint32_t failed;
} pl_disk;

/* Results of one series (a VM or all VMs). */
typedef struct pl_res {
	double mean, peak, pct, planned;
	double bw[3][2]; /* [rpo][0: 90%, 1: 100%], Mbps */
	uint64_t replica, retention;
	double ir_s;
	uint32_t copy_s, failed, disks, fits;
	float *chart;    /* PL_CHART_POINTS max values, Mbps (raw churn) */
} pl_res;

typedef struct pl_vm {
	char *name;
} pl_vm;

struct siterec_planner {
	siterec_planner_options o; /* resolved: no zero defaults left */
	double growth;             /* 1 + g/100 */
	pl_vm *vms;
	size_t nvm, capvm;
	pl_disk *disks;
	size_t nd, capd;
	size_t last;               /* disk of the last sample (lookup cache) */
	uint64_t nsamples;
	/* computed; valid until the next change */
	int valid;
	pl_res *res;               /* nvm + 1 (totals last) */
	int64_t t0;
	uint64_t delta, n;         /* interval, number of intervals */
	size_t npts, per_pt;       /* chart points, intervals per point */
};

/* ---- string builder ---- */

#define SB_LIT(s, lit) sr_buf_put((s), (lit), sizeof(lit) - 1)

static void sb_json_str(sr_buf *s, const char *str)
{
	SB_LIT(s, "\"");
	for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			sr_buf_put(s, e, 2);
		} else if (*c < 0x20 || *c == 0x7f) {
			sr_buf_printf(s, "\\u%04x", *c);
		} else {
			sr_buf_put(s, (const char *)c, 1);
		}
	}
	SB_LIT(s, "\"");
}

static void sb_html_str(sr_buf *s, const char *str)
{
	for (const char *c = str; *c; c++) {
		switch (*c) {
		case '&': SB_LIT(s, "&amp;"); break;
		case '<': SB_LIT(s, "&lt;"); break;
		case '>': SB_LIT(s, "&gt;"); break;
		case '"': SB_LIT(s, "&quot;"); break;
		case '\'': SB_LIT(s, "&#39;"); break;
		default: sr_buf_put(s, c, 1);
		}
	}
}

/* A double as JSON (finite by construction; rounded to 6 decimals). */
static void sb_num(sr_buf *s, double v)
{
	if (!isfinite(v))
		v = 0;
	if (v > -9e15 && v < 9e15 && v == (double)(int64_t)v)
		sr_buf_printf(s, "%.0f", v);
	else
		sr_buf_printf(s, "%.6f", v);
}

/* ---- options, open, free ---- */

SITEREC_API int siterec_planner_options_init(siterec_planner_options *opts, unsigned int version)
{
	return sr_options_init(opts, version, pl_opt_sizes, SITEREC_PLANNER_OPTIONS_VERSION, "planner");
}

SITEREC_API int siterec_planner_open(siterec_planner **out, const siterec_planner_options *opts)
{
	if (!out)
		return sr_err(SITEREC_EINVAL, "planner: out is NULL");
	*out = NULL;
	siterec_planner_options o;
	memset(&o, 0, sizeof(o));
	o.version = SITEREC_PLANNER_OPTIONS_VERSION;
	int rc = sr_options_copy(&o, opts, pl_opt_sizes, SITEREC_PLANNER_OPTIONS_VERSION, "planner");
	if (rc)
		return rc;
	if (o.percentile > 100)
		return sr_err(SITEREC_EINVAL, "planner: percentile %u is over 100", o.percentile);
	if (o.growth_percent > 1000 && o.growth_percent != SITEREC_PLANNER_GROWTH_NONE)
		return sr_err(SITEREC_EINVAL, "planner: growth %u%% is over 1000%%", o.growth_percent);
	if (!isfinite(o.bandwidth_mbps) || o.bandwidth_mbps < 0)
		return sr_err(SITEREC_EINVAL, "planner: bandwidth must be a positive number of Mbps");
	if (o.reserved)
		return sr_err(SITEREC_EINVAL, "planner: reserved option field is not 0");
	if (!o.percentile)
		o.percentile = 95;
	if (!o.growth_percent)
		o.growth_percent = 30;
	else if (o.growth_percent == SITEREC_PLANNER_GROWTH_NONE)
		o.growth_percent = 0;
	if (o.bandwidth_mbps == 0)
		o.bandwidth_mbps = 100;
	if (!o.retention_s)
		o.retention_s = 86400;
	if (!o.disk_churn_limit)
		o.disk_churn_limit = SITEREC_PLANNER_DISK_CHURN_LIMIT;
	if (!o.vm_churn_limit)
		o.vm_churn_limit = SITEREC_PLANNER_VM_CHURN_LIMIT;
	if (!o.disk_size_limit)
		o.disk_size_limit = SITEREC_PLANNER_DISK_SIZE_LIMIT;
	if (!o.disk_count_limit)
		o.disk_count_limit = SITEREC_PLANNER_DISK_COUNT_LIMIT;
	siterec_planner *p = sr_calloc(1, sizeof(*p));
	if (!p)
		return sr_err(SITEREC_ENOMEM, "planner: out of memory");
	p->o = o;
	p->growth = 1.0 + o.growth_percent / 100.0;
	*out = p;
	return 0;
}

static void pl_invalidate(siterec_planner *p)
{
	if (p->res)
		for (size_t i = 0; i <= p->nvm; i++)
			sr_free(p->res[i].chart);
	sr_free(p->res);
	p->res = NULL;
	p->valid = 0;
}

SITEREC_API void siterec_planner_free(siterec_planner *p)
{
	if (!p)
		return;
	pl_invalidate(p);
	for (size_t i = 0; i < p->nd; i++) {
		sr_free(p->disks[i].name);
		sr_free(p->disks[i].s);
	}
	for (size_t i = 0; i < p->nvm; i++)
		sr_free(p->vms[i].name);
	sr_free(p->disks);
	sr_free(p->vms);
	sr_free(p);
}

/* ---- samples ---- */

/* NULL when name is acceptable, else why not. */
static const char *pl_bad_name(const char *name)
{
	if (!name)
		return "is NULL";
	size_t len = strlen(name);
	if (len == 0)
		return "is empty";
	if (len > PL_NAME_MAX)
		return "is longer than 128 bytes";
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		if (*c < 0x20 || *c == 0x7f || *c == ',' || *c == '"')
			return "holds a control character, a comma or a double quote";
	return NULL;
}

static int pl_add(siterec_planner *p, int64_t t, const char *vm, const char *disk, uint64_t size,
                  uint64_t bytes, const char *where)
{
	const char *why;
	if ((why = pl_bad_name(vm)) != NULL)
		return sr_err(SITEREC_EINVAL, "%sVM name %s", where, why);
	if ((why = pl_bad_name(disk)) != NULL)
		return sr_err(SITEREC_EINVAL, "%sdisk name %s", where, why);
	if (size == 0)
		return sr_err(SITEREC_EINVAL, "%sdisk size is 0", where);
	if (t < 0)
		return sr_err(SITEREC_EINVAL, "%stimestamp is before 1970", where);
	/* find the disk: the cached one first, then every disk */
	size_t d = p->nd;
	if (p->last < p->nd && !strcmp(p->disks[p->last].name, disk) &&
	    !strcmp(p->vms[p->disks[p->last].vm].name, vm))
		d = p->last;
	for (size_t i = 0; d == p->nd && i < p->nd; i++)
		if (!strcmp(p->disks[i].name, disk) && !strcmp(p->vms[p->disks[i].vm].name, vm))
			d = i;
	if (d < p->nd && p->disks[d].size != size)
		return sr_err(SITEREC_EINVAL, "%sdisk %s of VM %s has size %" PRIu64 ", not %" PRIu64,
		              where, disk, vm, p->disks[d].size, size);
	int new_vm = 0;
	if (d == p->nd) {
		size_t v = p->nvm;
		for (size_t i = 0; i < p->nvm; i++)
			if (!strcmp(p->vms[i].name, vm))
				v = i;
		if (v == p->nvm) {
			pl_vm *nv = sr_grow(p->vms, &p->capvm, p->nvm, sizeof(*nv), 8);
			if (!nv)
				return sr_err(SITEREC_ENOMEM, "planner: out of memory");
			p->vms = nv;
			if (!(nv[v].name = sr_strdup(vm)))
				return sr_err(SITEREC_ENOMEM, "planner: out of memory");
			p->nvm++;
			new_vm = 1;
		}
		pl_disk *nd = sr_grow(p->disks, &p->capd, p->nd, sizeof(*nd), 8);
		char *dn = nd ? sr_strdup(disk) : NULL;
		if (!dn) {
			if (nd)
				p->disks = nd;
			if (new_vm)
				sr_free(p->vms[--p->nvm].name);
			return sr_err(SITEREC_ENOMEM, "planner: out of memory");
		}
		p->disks = nd;
		memset(&nd[d], 0, sizeof(nd[d]));
		nd[d].name = dn;
		nd[d].vm = (uint32_t)v;
		nd[d].size = size;
		p->nd++;
	}
	pl_disk *k = &p->disks[d];
	pl_sample *ns = sr_grow(k->s, &k->cap, k->n, sizeof(*ns), 64);
	if (!ns) {
		if (k->n == 0) { /* the disk was just made: take it back */
			sr_free(k->name);
			p->nd--;
			if (new_vm)
				sr_free(p->vms[--p->nvm].name);
		}
		return sr_err(SITEREC_ENOMEM, "planner: out of memory");
	}
	k->s = ns;
	ns[k->n].t = t;
	ns[k->n].bytes = bytes;
	k->n++;
	p->last = d;
	p->nsamples++;
	return 0;
}

SITEREC_API int siterec_planner_add_sample(siterec_planner *p, int64_t timestamp, const char *vm,
                                           const char *disk, uint64_t disk_size,
                                           uint64_t bytes_written)
{
	if (!p)
		return sr_err(SITEREC_EINVAL, "planner: handle is NULL");
	pl_invalidate(p);
	return pl_add(p, timestamp, vm, disk, disk_size, bytes_written, "planner sample: ");
}

SITEREC_API int siterec_planner_record_tracker(siterec_planner *p, int64_t timestamp, const char *vm,
                                               const char *disk, siterec_tracker *tracker)
{
	if (!p || !tracker)
		return sr_err(SITEREC_EINVAL, "planner record: handle or tracker is NULL");
	int rc = siterec_tracker_switch(tracker, NULL);
	if (rc)
		return rc;
	siterec_tracker_stats st = { .version = SITEREC_TRACKER_STATS_VERSION };
	if ((rc = siterec_tracker_stats_get(tracker, &st)) == 0)
		rc = siterec_planner_add_sample(p, timestamp, vm, disk, st.disk_size, st.frozen_bytes);
	if (rc) {   /* the interval's changes stay tracked */
		int err = rc;
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", siterec_error_last()->message);
		siterec_tracker_rollback(tracker);
		return sr_err(err, "%s", msg);
	}
	return siterec_tracker_commit(tracker);
}

/* ---- CSV ---- */

static char *pl_trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

static int pl_parse_u64(const char *s, uint64_t *out)
{
	if (!*s)
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int pl_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t pl_days(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Seconds since the epoch, or ISO-8601 UTC YYYY-MM-DDTHH:MM:SSZ. */
static int pl_parse_time(const char *s, int64_t *out)
{
	uint64_t u;
	if (pl_parse_u64(s, &u) == 0) {
		if (u > (uint64_t)INT64_MAX)
			return -1;
		*out = (int64_t)u;
		return 0;
	}
	int y, mo, d, h, mi, se;
	if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z' || pl_digits(s, 4, &y) || pl_digits(s + 5, 2, &mo) ||
	    pl_digits(s + 8, 2, &d) || pl_digits(s + 11, 2, &h) || pl_digits(s + 14, 2, &mi) ||
	    pl_digits(s + 17, 2, &se))
		return -1;
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	*out = pl_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

static int pl_read_file(const char *path, char **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "planner: cannot open %s", path);
	}
	size_t n = 0, cap = 0;
	char *b = NULL;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			size_t nc = cap ? cap * 2 : 65536 * 2;
			char *nb = sr_realloc(b, nc);
			if (!nb) {
				sr_free(b);
				close(fd);
				return sr_err(SITEREC_ENOMEM, "planner: out of memory reading %s", path);
			}
			b = nb;
			cap = nc;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			sr_free(b);
			close(fd);
			return sr_err_os(SITEREC_EIO, e, "planner: cannot read %s", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > PL_CSV_MAX) {
			sr_free(b);
			close(fd);
			return sr_err(SITEREC_EINVAL, "planner: %s is larger than 1 GiB", path);
		}
	}
	close(fd);
	b[n] = '\0';
	*data = b;
	*len = n;
	return 0;
}

/* Drop every sample added since the state (nvm, nd, disk sample counts). */
static void pl_rollback(siterec_planner *p, size_t nvm, size_t nd, const size_t *counts)
{
	for (size_t i = nd; i < p->nd; i++) {
		sr_free(p->disks[i].name);
		sr_free(p->disks[i].s);
	}
	p->nd = nd;
	for (size_t i = 0; i < nd; i++)
		p->disks[i].n = counts[i];
	for (size_t i = nvm; i < p->nvm; i++)
		sr_free(p->vms[i].name);
	p->nvm = nvm;
	p->last = 0;
}

SITEREC_API int siterec_planner_load_csv(siterec_planner *p, const char *path)
{
	if (!p || !path)
		return sr_err(SITEREC_EINVAL, "planner: handle or path is NULL");
	pl_invalidate(p);
	char *data = NULL;
	size_t len = 0;
	int rc = pl_read_file(path, &data, &len);
	if (rc)
		return rc;
	size_t nvm = p->nvm, nd = p->nd;
	uint64_t nsamples = p->nsamples;
	size_t *counts = sr_malloc((nd ? nd : 1) * sizeof(*counts));
	if (!counts) {
		sr_free(data);
		return sr_err(SITEREC_ENOMEM, "planner: out of memory");
	}
	for (size_t i = 0; i < nd; i++)
		counts[i] = p->disks[i].n;
	size_t line = 0;
	int seen_row = 0;
	char *pos = data, *end = data + len;
	while (pos < end && !rc) {
		line++;
		char *nl = memchr(pos, '\n', (size_t)(end - pos));
		char *le = nl ? nl : end;
		char *next = nl ? nl + 1 : end;
		if (le > pos && le[-1] == '\r')
			le--;
		char where[4200];
		snprintf(where, sizeof(where), "%s:%zu: ", path, line);
		if (memchr(pos, '\0', (size_t)(le - pos))) {
			rc = sr_err(SITEREC_EINVAL, "%sNUL byte in the line", where);
			break;
		}
		char *s = pl_trim(pos, le);
		pos = next;
		if (!*s || *s == '#')
			continue;
		if (!seen_row) {
			seen_row = 1;
			if (!strcmp(s, PL_HEADER))
				continue;
		}
		char *f[5];
		int nf = 0;
		char *q = s;
		for (;;) {
			char *c = strchr(q, ',');
			if (nf == 5) {
				nf = 6;
				break;
			}
			if (!c) {
				f[nf++] = pl_trim(q, q + strlen(q));
				break;
			}
			f[nf++] = pl_trim(q, c);
			q = c + 1;
		}
		if (nf != 5) {
			rc = sr_err(SITEREC_EINVAL, "%sexpected 5 comma-separated fields "
			            "(timestamp,vm,disk,disk_size_bytes,bytes_written)", where);
			break;
		}
		int64_t t;
		uint64_t size, bytes;
		if (pl_parse_time(f[0], &t))
			rc = sr_err(SITEREC_EINVAL, "%stimestamp '%.40s' is neither seconds since 1970 nor "
			            "YYYY-MM-DDTHH:MM:SSZ", where, f[0]);
		else if (pl_parse_u64(f[3], &size))
			rc = sr_err(SITEREC_EINVAL, "%sdisk_size_bytes '%.40s' is not an unsigned integer",
			            where, f[3]);
		else if (pl_parse_u64(f[4], &bytes))
			rc = sr_err(SITEREC_EINVAL, "%sbytes_written '%.40s' is not an unsigned integer",
			            where, f[4]);
		else
			rc = pl_add(p, t, f[1], f[2], size, bytes, where);
	}
	if (rc) {
		pl_rollback(p, nvm, nd, counts);
		p->nsamples = nsamples;
	}
	sr_free(counts);
	sr_free(data);
	return rc;
}

SITEREC_API int siterec_planner_vm_count(siterec_planner *p, uint32_t *count)
{
	if (!p || !count)
		return sr_err(SITEREC_EINVAL, "planner: handle or count is NULL");
	*count = (uint32_t)p->nvm;
	return 0;
}

/* ---- computation ---- */

static int pl_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int pl_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile pct of v[0..n-1] (n >= 1); sorts v. */
static double pl_rank(double *v, size_t n, uint32_t pct)
{
	qsort(v, n, sizeof(*v), pl_cmp_double);
	uint64_t r = ((uint64_t)pct * n + 99) / 100;
	if (r < 1)
		r = 1;
	return v[r - 1];
}

static uint64_t pl_u64(double v)
{
	if (!(v > 0))
		return 0;
	if (v >= 18446744073709551615.0)
		return UINT64_MAX;
	return (uint64_t)(v + 0.5);
}

typedef struct pl_work {
	double *tmp, *pre, *win;
} pl_work;

/* Bandwidth (Mbps) for windows of R seconds over the planned series in w->pre
 * (prefix sums); *p90 gets the 90th percentile. */
static double pl_window(const siterec_planner *p, pl_work *w, uint32_t r_s, double *p90)
{
	uint64_t n = p->n;
	uint64_t m = (r_s + p->delta - 1) / p->delta;
	if (m < 1)
		m = 1;
	if (m > n)
		m = n;
	uint64_t cnt = n - m + 1;
	double mx = 0;
	for (uint64_t j = 0; j < cnt; j++) {
		double a = (w->pre[j + m] - w->pre[j]) / (double)m;
		if (a < 0)
			a = 0; /* rounding of the prefix sums */
		w->win[j] = a;
		if (a > mx)
			mx = a;
	}
	if (p90)
		*p90 = pl_rank(w->win, cnt, 90) * 8 / 1e6;
	return mx * 8 / 1e6;
}

/* Figures of series c (n values, bytes/s) into r (mean, peak, percentile,
 * planned, bandwidths, copy frequency, retention, chart). */
static int pl_series(const siterec_planner *p, const double *c, pl_work *w, pl_res *r)
{
	uint64_t n = p->n;
	double sum = 0, peak = 0;
	for (uint64_t k = 0; k < n; k++) {
		sum += c[k];
		if (c[k] > peak)
			peak = c[k];
	}
	r->mean = sum / (double)n;
	r->peak = peak;
	memcpy(w->tmp, c, n * sizeof(double));
	r->pct = pl_rank(w->tmp, n, p->o.percentile);
	r->planned = r->pct * p->growth;
	w->pre[0] = 0;
	for (uint64_t k = 0; k < n; k++)
		w->pre[k + 1] = w->pre[k] + (c[k] < r->pct ? c[k] : r->pct) * p->growth;
	for (int i = 0; i < 3; i++)
		r->bw[i][1] = pl_window(p, w, pl_rpo_s[i], &r->bw[i][0]);
	r->copy_s = 0;
	for (int i = 0; i < 3 && !r->copy_s; i++)
		if (pl_window(p, w, pl_freq_s[i], NULL) <= p->o.bandwidth_mbps * (1 + 1e-12))
			r->copy_s = pl_freq_s[i];
	r->retention = pl_u64(r->mean * p->growth * (double)p->o.retention_s);
	r->chart = sr_calloc(p->npts, sizeof(float));
	if (!r->chart)
		return sr_err(SITEREC_ENOMEM, "planner: out of memory");
	for (uint64_t k = 0; k < n; k++) {
		size_t i = (size_t)(k / p->per_pt);
		float v = (float)(c[k] * 8 / 1e6);
		if (v > r->chart[i])
			r->chart[i] = v;
	}
	return 0;
}

static int pl_compute(siterec_planner *p)
{
	if (p->valid)
		return 0;
	if (!p->nsamples)
		return sr_err(SITEREC_ESTATE, "planner: no samples");
	/* the time grid */
	int64_t *ts = sr_malloc(p->nsamples * sizeof(*ts));
	if (!ts)
		return sr_err(SITEREC_ENOMEM, "planner: out of memory");
	size_t nt = 0;
	for (size_t d = 0; d < p->nd; d++)
		for (size_t i = 0; i < p->disks[d].n; i++)
			ts[nt++] = p->disks[d].s[i].t;
	qsort(ts, nt, sizeof(*ts), pl_cmp_i64);
	int64_t t0 = ts[0], t1 = ts[nt - 1];
	uint64_t gap = 0;
	for (size_t i = 1; i < nt; i++)
		if (ts[i] != ts[i - 1] && (!gap || (uint64_t)(ts[i] - ts[i - 1]) < gap))
			gap = (uint64_t)(ts[i] - ts[i - 1]);
	sr_free(ts);
	uint64_t delta = p->o.interval_s ? p->o.interval_s : gap ? gap : 60;
	uint64_t n = (uint64_t)(t1 - t0) / delta + 1;
	if (n > PL_MAX_INTERVALS)
		return sr_err(SITEREC_EINVAL, "planner: the profile spans %" PRIu64 " intervals of %" PRIu64
		              " s, more than %llu", n, delta, (unsigned long long)PL_MAX_INTERVALS);
	p->t0 = t0;
	p->delta = delta;
	p->n = n;
	p->per_pt = (size_t)((n + PL_CHART_POINTS - 1) / PL_CHART_POINTS);
	p->npts = (size_t)((n + p->per_pt - 1) / p->per_pt);

	pl_work w = { 0 };
	double *disk = sr_malloc(n * sizeof(double)), *vm = sr_malloc(n * sizeof(double)),
	       *all = sr_calloc(n, sizeof(double));
	w.tmp = sr_malloc(n * sizeof(double));
	w.pre = sr_malloc((n + 1) * sizeof(double));
	w.win = sr_malloc(n * sizeof(double));
	p->res = sr_calloc(p->nvm + 1, sizeof(pl_res));
	int rc = 0;
	if (!disk || !vm || !all || !w.tmp || !w.pre || !w.win || !p->res) {
		rc = sr_err(SITEREC_ENOMEM, "planner: out of memory for %" PRIu64 " intervals", n);
		goto out;
	}
	pl_res *tot = &p->res[p->nvm];
	tot->fits = 1;
	for (size_t v = 0; v < p->nvm && !rc; v++) {
		pl_res *r = &p->res[v];
		memset(vm, 0, n * sizeof(double));
		uint64_t replica = 0;
		for (size_t d = 0; d < p->nd; d++) {
			pl_disk *k = &p->disks[d];
			if (k->vm != v)
				continue;
			memset(disk, 0, n * sizeof(double));
			for (size_t i = 0; i < k->n; i++)
				disk[(uint64_t)(k->s[i].t - t0) / delta] += (double)k->s[i].bytes / (double)delta;
			k->peak = 0;
			for (uint64_t i = 0; i < n; i++) {
				vm[i] += disk[i];
				if (disk[i] > k->peak)
					k->peak = disk[i];
			}
			k->pct = pl_rank(disk, n, p->o.percentile);
			k->planned = k->pct * p->growth;
			k->failed = 0;
			if (k->planned > (double)p->o.disk_churn_limit)
				k->failed |= SITEREC_PLANNER_LIMIT_DISK_CHURN;
			if (k->size > p->o.disk_size_limit)
				k->failed |= SITEREC_PLANNER_LIMIT_DISK_SIZE;
			r->failed |= k->failed;
			r->disks++;
			replica = replica + k->size < replica ? UINT64_MAX : replica + k->size;
		}
		for (uint64_t i = 0; i < n; i++)
			all[i] += vm[i];
		if ((rc = pl_series(p, vm, &w, r)) != 0)
			break;
		if (r->planned > (double)p->o.vm_churn_limit)
			r->failed |= SITEREC_PLANNER_LIMIT_VM_CHURN;
		if (r->disks > p->o.disk_count_limit)
			r->failed |= SITEREC_PLANNER_LIMIT_DISK_COUNT;
		r->fits = !r->failed;
		r->replica = replica;
		r->ir_s = (double)replica * 8 / (p->o.bandwidth_mbps * 1e6);
		tot->failed |= r->failed;
		tot->fits &= r->fits;
		tot->disks += r->disks;
		tot->replica = tot->replica + replica < tot->replica ? UINT64_MAX : tot->replica + replica;
	}
	if (!rc && (rc = pl_series(p, all, &w, tot)) == 0) {
		tot->ir_s = (double)tot->replica * 8 / (p->o.bandwidth_mbps * 1e6);
		p->valid = 1;
	}
out:
	sr_free(disk);
	sr_free(vm);
	sr_free(all);
	sr_free(w.tmp);
	sr_free(w.pre);
	sr_free(w.win);
	if (rc)
		pl_invalidate(p);
	return rc;
}

SITEREC_API int siterec_planner_vm_get(siterec_planner *p, uint32_t index, siterec_planner_vm *out)
{
	if (!p || !out)
		return sr_err(SITEREC_EINVAL, "planner: handle or out is NULL");
	if (out->version < 1)
		return sr_err(SITEREC_EVERSION, "planner VM version %u not supported (1..%u)", out->version,
		              SITEREC_PLANNER_VM_VERSION);
	if (index != SITEREC_PLANNER_TOTALS && index >= p->nvm)
		return sr_err(SITEREC_ERANGE, "planner: no VM %u (%zu VMs)", index, p->nvm);
	int rc = pl_compute(p);
	if (rc)
		return rc;
	const pl_res *r = &p->res[index == SITEREC_PLANNER_TOTALS ? p->nvm : index];
	/* Version 1 is every field; a newer caller's extra fields are left alone. */
	out->fits = r->fits;
	out->failed = r->failed;
	out->disks = r->disks;
	out->name = index == SITEREC_PLANNER_TOTALS ? "*" : p->vms[index].name;
	out->churn_mean = r->mean;
	out->churn_peak = r->peak;
	out->churn_percentile = r->pct;
	out->churn_planned = r->planned;
	out->rpo15_p90_mbps = r->bw[0][0];
	out->rpo15_p100_mbps = r->bw[0][1];
	out->rpo30_p90_mbps = r->bw[1][0];
	out->rpo30_p100_mbps = r->bw[1][1];
	out->rpo60_p90_mbps = r->bw[2][0];
	out->rpo60_p100_mbps = r->bw[2][1];
	out->replica_bytes = r->replica;
	out->retention_bytes = r->retention;
	out->initial_replication_s = r->ir_s;
	out->copy_frequency_s = r->copy_s;
	out->reserved = 0;
	return 0;
}

/* ---- reports ---- */

static const char *const pl_limit_names[4] = { "disk_churn", "vm_churn", "disk_size", "disk_count" };

static void pl_iso(int64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, cap, "%" PRId64, t);
}

static void pl_json_limits(sr_buf *s, uint32_t failed)
{
	SB_LIT(s, "[");
	int first = 1;
	for (int i = 0; i < 4; i++)
		if (failed & (1u << i)) {
			sr_buf_printf(s, "%s\"%s\"", first ? "" : ",", pl_limit_names[i]);
			first = 0;
		}
	SB_LIT(s, "]");
}

static void pl_json_res(sr_buf *s, const siterec_planner *p, const pl_res *r)
{
	sr_buf_printf(s, "\"fits\":%s,\"failed_limits\":", r->fits ? "true" : "false");
	pl_json_limits(s, r->failed);
	sr_buf_printf(s, ",\"disk_count\":%u,\"churn_mean_bytes_per_s\":", r->disks);
	sb_num(s, r->mean);
	SB_LIT(s, ",\"churn_peak_bytes_per_s\":");
	sb_num(s, r->peak);
	SB_LIT(s, ",\"churn_percentile_bytes_per_s\":");
	sb_num(s, r->pct);
	SB_LIT(s, ",\"churn_planned_bytes_per_s\":");
	sb_num(s, r->planned);
	SB_LIT(s, ",\"bandwidth_mbps\":{");
	for (int i = 0; i < 3; i++) {
		sr_buf_printf(s, "%s\"rpo_%u_min\":{\"p90\":", i ? "," : "", pl_rpo_s[i] / 60);
		sb_num(s, r->bw[i][0]);
		SB_LIT(s, ",\"p100\":");
		sb_num(s, r->bw[i][1]);
		SB_LIT(s, "}");
	}
	sr_buf_printf(s, "},\"replica_storage_bytes\":%" PRIu64 ",\"retention_storage_bytes\":%" PRIu64
	          ",\"initial_replication_s\":", r->replica, r->retention);
	sb_num(s, r->ir_s);
	sr_buf_printf(s, ",\"copy_frequency_s\":%u", r->copy_s);
	(void)p;
}

/* The start both reports share: arguments, outputs cleared, the figures computed,
 * the profile's first and last instants (ISO-8601) into a and b. */
static int report_start(siterec_planner *p, char **out, size_t *len, const char *what, char *a, char *b)
{
	if (!p || !out)
		return sr_err(SITEREC_EINVAL, "planner: handle or %s is NULL", what);
	*out = NULL;
	if (len)
		*len = 0;
	int rc = pl_compute(p);
	if (rc == 0) {
		pl_iso(p->t0, a, 40);
		pl_iso(p->t0 + (int64_t)((p->n - 1) * p->delta), b, 40);
	}
	return rc;
}

SITEREC_API int siterec_planner_report_json(siterec_planner *p, char **json, size_t *len)
{
	char a[40], b[40];
	int rc = report_start(p, json, len, "json", a, b);
	if (rc)
		return rc;
	sr_buf s = { 0 };
	sr_buf_printf(&s, "{\"version\":1,\"parameters\":{\"bandwidth_mbps\":");
	sb_num(&s, p->o.bandwidth_mbps);
	sr_buf_printf(&s, ",\"retention_s\":%" PRIu64 ",\"growth_percent\":%u,\"percentile\":%u,"
	          "\"interval_s\":%" PRIu64 "},", p->o.retention_s, p->o.growth_percent,
	          p->o.percentile, p->delta);
	sr_buf_printf(&s, "\"limits\":{\"disk_churn_bytes_per_s\":%" PRIu64 ",\"vm_churn_bytes_per_s\":%"
	          PRIu64 ",\"disk_size_bytes\":%" PRIu64 ",\"disk_count\":%u},",
	          p->o.disk_churn_limit, p->o.vm_churn_limit, p->o.disk_size_limit,
	          p->o.disk_count_limit);
	sr_buf_printf(&s, "\"profile\":{\"start\":%" PRId64 ",\"start_utc\":\"%s\",\"last\":%" PRId64
	          ",\"last_utc\":\"%s\",\"intervals\":%" PRIu64 ",\"samples\":%" PRIu64 "},\"vms\":[",
	          p->t0, a, p->t0 + (int64_t)((p->n - 1) * p->delta), b, p->n, p->nsamples);
	for (size_t v = 0; v < p->nvm; v++) {
		sr_buf_printf(&s, "%s{\"name\":", v ? "," : "");
		sb_json_str(&s, p->vms[v].name);
		SB_LIT(&s, ",");
		pl_json_res(&s, p, &p->res[v]);
		SB_LIT(&s, ",\"disks\":[");
		int first = 1;
		for (size_t d = 0; d < p->nd; d++) {
			const pl_disk *k = &p->disks[d];
			if (k->vm != v)
				continue;
			sr_buf_printf(&s, "%s{\"name\":", first ? "" : ",");
			first = 0;
			sb_json_str(&s, k->name);
			sr_buf_printf(&s, ",\"size_bytes\":%" PRIu64 ",\"churn_peak_bytes_per_s\":", k->size);
			sb_num(&s, k->peak);
			SB_LIT(&s, ",\"churn_percentile_bytes_per_s\":");
			sb_num(&s, k->pct);
			SB_LIT(&s, ",\"churn_planned_bytes_per_s\":");
			sb_num(&s, k->planned);
			SB_LIT(&s, ",\"failed_limits\":");
			pl_json_limits(&s, k->failed);
			SB_LIT(&s, "}");
		}
		SB_LIT(&s, "]}");
	}
	SB_LIT(&s, "],\"totals\":{");
	pl_json_res(&s, p, &p->res[p->nvm]);
	sr_buf_printf(&s, ",\"vm_count\":%zu}}\n", p->nvm);
	if (s.oom) {
		sr_buf_free(&s);
		return sr_err(SITEREC_ENOMEM, "planner: out of memory for the JSON report");
	}
	*json = s.p;
	if (len)
		*len = s.len;
	return 0;
}

static void pl_fmt_bytes(uint64_t v, char *buf, size_t cap)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)v;
	int i = 0;
	while (x >= 1024 && i < 6) {
		x /= 1024;
		i++;
	}
	snprintf(buf, cap, i ? "%.2f %s" : "%.0f %s", x, u[i]);
}

static void pl_fmt_dur(double s, char *buf, size_t cap)
{
	if (s < 60)
		snprintf(buf, cap, "%.0f s", s);
	else if (s < 3600)
		snprintf(buf, cap, "%.1f min", s / 60);
	else if (s < 172800)
		snprintf(buf, cap, "%.1f h", s / 3600);
	else
		snprintf(buf, cap, "%.1f d", s / 86400);
}

static void pl_html_row(sr_buf *s, const siterec_planner *p, const char *name, const pl_res *r, int total)
{
	char rep[32], ret[32], ir[32];
	pl_fmt_bytes(r->replica, rep, sizeof(rep));
	pl_fmt_bytes(r->retention, ret, sizeof(ret));
	pl_fmt_dur(r->ir_s, ir, sizeof(ir));
	sr_buf_printf(s, "<tr%s><td>", total ? " class=\"total\"" : "");
	sb_html_str(s, name);
	sr_buf_printf(s, "</td><td class=\"%s\">%s", r->fits ? "ok" : "bad", r->fits ? "yes" : "no");
	for (int i = 0; i < 4; i++)
		if (r->failed & (1u << i))
			sr_buf_printf(s, " <span class=\"lim\">%s</span>", pl_limit_names[i]);
	sr_buf_printf(s, "</td><td>%u</td><td>%.3f</td><td>%.3f</td>", r->disks, r->pct * 8 / 1e6,
	          r->planned * 8 / 1e6);
	for (int i = 0; i < 3; i++)
		sr_buf_printf(s, "<td>%.3f</td><td>%.3f</td>", r->bw[i][0], r->bw[i][1]);
	sr_buf_printf(s, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", rep, ret, ir,
	          r->copy_s ? (r->copy_s == 30 ? "30 s" : r->copy_s == 300 ? "5 min" : "15 min")
	                    : "none");
	(void)p;
}

static const char *const pl_colors[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
	                                 "#8c564b", "#e377c2", "#17becf", "#bcbd22" };

static void pl_svg(sr_buf *s, const siterec_planner *p)
{
	const double W = 900, H = 360, L = 70, R = 20, T = 20, B = 50;
	double ymax = p->o.bandwidth_mbps;
	const pl_res *tot = &p->res[p->nvm];
	for (size_t i = 0; i < p->npts; i++)
		if (tot->chart[i] > ymax)
			ymax = tot->chart[i];
	ymax *= 1.1;
	if (!(ymax > 0))
		ymax = 1;
	double pw = W - L - R, ph = H - T - B;
	double dx = p->npts > 1 ? pw / (double)(p->npts - 1) : 0;
	sr_buf_printf(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	          "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"churn over time\">\n",
	          W, H, W, H);
	sr_buf_printf(s, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
	          "stroke=\"#999\"/>\n", L, T, pw, ph);
	for (int i = 0; i <= 4; i++) {
		double y = T + ph - ph * i / 4.0;
		sr_buf_printf(s, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
		          "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.2f</text>\n",
		          L, y, L + pw, y, L - 6, y + 4, ymax * i / 4.0);
	}
	char a[40], b[40];
	pl_iso(p->t0, a, sizeof(a));
	pl_iso(p->t0 + (int64_t)((p->n - 1) * p->delta), b, sizeof(b));
	sr_buf_printf(s, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>"
	          "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n"
	          "<text x=\"14\" y=\"%.0f\" font-size=\"11\" transform=\"rotate(-90 14 %.0f)\" "
	          "text-anchor=\"middle\">Mbps</text>\n",
	          L, T + ph + 18, a, L + pw, T + ph + 18, b, T + ph / 2, T + ph / 2);
	for (size_t v = 0; v <= p->nvm; v++) {
		const pl_res *r = &p->res[v];
		int total = v == p->nvm;
		sr_buf_printf(s, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"",
		          total ? "#000" : pl_colors[v % 8], total ? "2" : "1");
		for (size_t i = 0; i < p->npts; i++)
			sr_buf_printf(s, "%s%.1f,%.1f", i ? " " : "", L + dx * (double)i,
			          T + ph - ph * r->chart[i] / ymax);
		if (p->npts == 1)
			sr_buf_printf(s, " %.1f,%.1f", L + pw, T + ph - ph * r->chart[0] / ymax);
		SB_LIT(s, "\"><title>");
		sb_html_str(s, total ? "all VMs" : p->vms[v].name);
		SB_LIT(s, "</title></polyline>\n");
	}
	double yb = T + ph - ph * p->o.bandwidth_mbps / ymax;
	sr_buf_printf(s, "<line class=\"bandwidth\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
	          "stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"
	          "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" fill=\"#d62728\" text-anchor=\"end\">"
	          "bandwidth %.3f Mbps</text>\n</svg>\n",
	          L, yb, L + pw, yb, L + pw - 4, yb - 4, p->o.bandwidth_mbps);
}

SITEREC_API int siterec_planner_report_html(siterec_planner *p, char **html, size_t *len)
{
	char a[40], b[40];
	int rc = report_start(p, html, len, "html", a, b);
	if (rc)
		return rc;
	sr_buf s = { 0 };
	sr_buf_printf(&s, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	          "<title>Deployment planner report</title>\n<style>\n"
	          "body{font-family:sans-serif;margin:2em;color:#222}"
	          "table{border-collapse:collapse;margin:1em 0}"
	          "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}"
	          "td:first-child,th:first-child{text-align:left}"
	          ".ok{color:#2a7d2a}.bad{color:#c62828;font-weight:bold}"
	          ".lim{font-size:smaller;font-weight:normal}"
	          "tr.total{font-weight:bold;background:#f0f0f0}\n</style>\n</head>\n<body>\n"
	          "<h1>Deployment planner report (Hyper-V to Azure)</h1>\n");
	sr_buf_printf(&s, "<p>Profile %s to %s: %" PRIu64 " intervals of %" PRIu64 " s, %zu VMs. "
	          "Bandwidth %.3f Mbps, retention %" PRIu64 " s, growth %u%%, percentile %u.</p>\n",
	          a, b, p->n, p->delta, p->nvm, p->o.bandwidth_mbps, p->o.retention_s,
	          p->o.growth_percent, p->o.percentile);
	sr_buf_printf(&s, "<p>Limits: churn %.3f MB/s per disk and %.3f MB/s per VM (percentile with "
	          "growth), disk size %" PRIu64 " bytes, %u disks per VM.</p>\n",
	          (double)p->o.disk_churn_limit / 1e6, (double)p->o.vm_churn_limit / 1e6,
	          p->o.disk_size_limit, p->o.disk_count_limit);
	SB_LIT(&s, "<h2>Churn over time</h2>\n");
	pl_svg(&s, p);
	sr_buf_printf(&s, "<h2>Virtual machines</h2>\n<table>\n<tr><th rowspan=\"2\">VM</th>"
	          "<th rowspan=\"2\">fits</th><th rowspan=\"2\">disks</th>"
	          "<th rowspan=\"2\">churn p%u (Mbps)</th><th rowspan=\"2\">planned (Mbps)</th>"
	          "<th colspan=\"2\">RPO 15 min (Mbps)</th><th colspan=\"2\">RPO 30 min (Mbps)</th>"
	          "<th colspan=\"2\">RPO 60 min (Mbps)</th><th rowspan=\"2\">replica storage</th>"
	          "<th rowspan=\"2\">retention storage</th><th rowspan=\"2\">initial replication</th>"
	          "<th rowspan=\"2\">copy frequency</th></tr>\n<tr><th>90%%</th><th>100%%</th>"
	          "<th>90%%</th><th>100%%</th><th>90%%</th><th>100%%</th></tr>\n", p->o.percentile);
	for (size_t v = 0; v < p->nvm; v++)
		pl_html_row(&s, p, p->vms[v].name, &p->res[v], 0);
	pl_html_row(&s, p, "all VMs", &p->res[p->nvm], 1);
	SB_LIT(&s, "</table>\n<h2>Disks</h2>\n<table>\n<tr><th>VM</th><th>disk</th><th>size</th>"
	       "<th>churn peak (MB/s)</th><th>churn percentile (MB/s)</th><th>planned (MB/s)</th>"
	       "<th>failed limits</th></tr>\n");
	for (size_t d = 0; d < p->nd; d++) {
		const pl_disk *k = &p->disks[d];
		char sz[32];
		pl_fmt_bytes(k->size, sz, sizeof(sz));
		SB_LIT(&s, "<tr><td>");
		sb_html_str(&s, p->vms[k->vm].name);
		SB_LIT(&s, "</td><td>");
		sb_html_str(&s, k->name);
		sr_buf_printf(&s, "</td><td>%s</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>", sz,
		          k->peak / 1e6, k->pct / 1e6, k->planned / 1e6);
		for (int i = 0; i < 4; i++)
			if (k->failed & (1u << i))
				sr_buf_printf(&s, "%s ", pl_limit_names[i]);
		SB_LIT(&s, "</td></tr>\n");
	}
	SB_LIT(&s, "</table>\n<p>Bandwidth to meet an RPO R: with the churn above the percentile "
	       "lowered to it and the growth added, the highest (100%) and the 90th percentile (90%) "
	       "of the average churn over every window of R. See include/siterec/planner.h.</p>\n"
	       "</body>\n</html>\n");
	if (s.oom) {
		sr_buf_free(&s);
		return sr_err(SITEREC_ENOMEM, "planner: out of memory for the HTML report");
	}
	*html = s.p;
	if (len)
		*len = s.len;
	return 0;
}
