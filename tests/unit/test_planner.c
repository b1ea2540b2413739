/* The deployment planner (planner.h) through the public API: known answers
 * computed by hand (constant churn, spiky churn where the percentile matters,
 * VMs over each limit, a disk too big), CSV parsing and its errors, the JSON
 * (parsed with cJSON) and HTML reports, and every error path, including each
 * allocation failing in turn. */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GiB (1024ull * 1024 * 1024)

static void must(int rc, const char *what)
{
	if (rc)
		fprintf(stderr, "%s: %s\n", what, siterec_error_last()->message);
	assert_int_equal(rc, 0);
}

static void near(double got, double want)
{
	double tol = 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
	if (fabs(got - want) > tol)
		fprintf(stderr, "got %.12g, want %.12g\n", got, want);
	assert_true(fabs(got - want) <= tol);
}

static siterec_planner *open_with(double mbps, uint32_t interval_s)
{
	siterec_planner_options o;
	must(siterec_planner_options_init(&o, SITEREC_PLANNER_OPTIONS_VERSION), "options");
	o.bandwidth_mbps = mbps;
	o.interval_s = interval_s;
	siterec_planner *p;
	must(siterec_planner_open(&p, &o), "open");
	return p;
}

static siterec_planner_vm get(siterec_planner *p, uint32_t i)
{
	siterec_planner_vm v = { .version = SITEREC_PLANNER_VM_VERSION };
	must(siterec_planner_vm_get(p, i, &v), "vm_get");
	return v;
}

/* vm1: disks os and data of 10 GiB, each 60,000,000 bytes per 60 s for 2 h:
 * 1e6 B/s per disk, 2e6 B/s for the VM, planned 2.6e6 B/s = 20.8 Mbps for every
 * RPO; retention 2.6e6 * 86400; initial copy 20 GiB * 8 / 100e6 s. */
static void add_constant(siterec_planner *p, const char *vm)
{
	for (int k = 0; k < 120; k++) {
		must(siterec_planner_add_sample(p, 1700000000 + 60 * k, vm, "os", 10 * GiB, 60000000), "add");
		must(siterec_planner_add_sample(p, 1700000000 + 60 * k, vm, "data", 10 * GiB, 60000000), "add");
	}
}

static void test_constant(void **state)
{
	(void)state;
	siterec_planner *p = open_with(0, 0); /* defaults: 100 Mbps, 24 h, 30%, p95 */
	add_constant(p, "vm1");
	uint32_t n = 0;
	must(siterec_planner_vm_count(p, &n), "count");
	assert_int_equal(n, 1);
	siterec_planner_vm v = get(p, 0);
	assert_string_equal(v.name, "vm1");
	assert_int_equal(v.fits, 1);
	assert_int_equal(v.failed, 0);
	assert_int_equal(v.disks, 2);
	near(v.churn_mean, 2e6);
	near(v.churn_peak, 2e6);
	near(v.churn_percentile, 2e6);
	near(v.churn_planned, 2.6e6);
	near(v.rpo15_p90_mbps, 20.8);
	near(v.rpo15_p100_mbps, 20.8);
	near(v.rpo30_p90_mbps, 20.8);
	near(v.rpo30_p100_mbps, 20.8);
	near(v.rpo60_p90_mbps, 20.8);
	near(v.rpo60_p100_mbps, 20.8);
	assert_int_equal(v.replica_bytes, 20 * GiB);
	assert_int_equal(v.retention_bytes, 224640000000ull);
	near(v.initial_replication_s, 20.0 * GiB * 8 / 100e6);
	assert_int_equal(v.copy_frequency_s, 30);
	siterec_planner_vm t = get(p, SITEREC_PLANNER_TOTALS);
	assert_string_equal(t.name, "*");
	near(t.rpo60_p100_mbps, 20.8);
	assert_int_equal(t.replica_bytes, 20 * GiB);
	siterec_planner_free(p);

	/* 10 Mbps: no copy frequency keeps up with 20.8 Mbps of steady churn */
	p = open_with(10, 0);
	add_constant(p, "vm1");
	v = get(p, 0);
	assert_int_equal(v.copy_frequency_s, 0);
	near(v.initial_replication_s, 20.0 * GiB * 8 / 10e6);
	siterec_planner_free(p);

	/* no growth, 2 h retention, 50th percentile */
	siterec_planner_options o = SITEREC_PLANNER_OPTIONS_INIT;
	o.growth_percent = SITEREC_PLANNER_GROWTH_NONE;
	o.retention_s = 7200;
	o.percentile = 50;
	must(siterec_planner_open(&p, &o), "open");
	add_constant(p, "vm1");
	v = get(p, 0);
	near(v.churn_planned, 2e6);
	near(v.rpo15_p100_mbps, 16);
	assert_int_equal(v.retention_bytes, 2000000ull * 7200);
	siterec_planner_free(p);
}

/* 20 intervals of 900 s: 18 at a = 1e6 B/s, b = 3e6 at interval 5, d = 50e6 at
 * interval 12. p95 (rank 19 of 20) = b: d is lowered to b. Planned series
 * (x1.3): a' = 1.3e6, b' = 3.9e6.
 *  RPO 15 min (1 interval): 100% = b' = 31.2 Mbps; 90% = rank 18 of 20 = a' = 10.4.
 *  RPO 30 min (2 intervals, 19 windows, 4 of them (a'+b')/2): 100% = 90% (rank
 *  18 of 19) = 2.6e6 B/s = 20.8 Mbps.
 *  RPO 60 min (4 intervals, 17 windows, 8 of them (3a'+b')/4): 15.6 Mbps both.
 *  Retention: mean 71e6/20 = 3.55e6 B/s * 1.3 * 86400 = 398,736,000,000.
 *  Copy frequency: every window <= one interval here, so 31.2 Mbps is needed. */
static void add_spiky(siterec_planner *p)
{
	for (int k = 0; k < 20; k++) {
		uint64_t rate = k == 5 ? 3000000 : k == 12 ? 50000000 : 1000000;
		must(siterec_planner_add_sample(p, 900 * k, "db", "d0", 100 * GiB, rate * 900), "add");
	}
}

static void test_spiky(void **state)
{
	(void)state;
	siterec_planner *p = open_with(25, 0);
	add_spiky(p);
	siterec_planner_vm v = get(p, 0);
	assert_int_equal(v.fits, 1); /* the 50e6 B/s (65e6 grown) spike is above p95 */
	near(v.churn_peak, 50e6);
	near(v.churn_percentile, 3e6);
	near(v.churn_planned, 3.9e6);
	near(v.rpo15_p100_mbps, 31.2);
	near(v.rpo15_p90_mbps, 10.4);
	near(v.rpo30_p100_mbps, 20.8);
	near(v.rpo30_p90_mbps, 20.8);
	near(v.rpo60_p100_mbps, 15.6);
	near(v.rpo60_p90_mbps, 15.6);
	assert_int_equal(v.retention_bytes, 398736000000ull);
	assert_int_equal(v.copy_frequency_s, 0);
	siterec_planner_free(p);
	p = open_with(40, 0);
	add_spiky(p);
	assert_int_equal(get(p, 0).copy_frequency_s, 30);
	siterec_planner_free(p);

	/* 60 intervals of 60 s, spikes of 60e6 bytes (1e6 B/s): with 3 of them the
	 * p95 (rank 57) is 0 and no bandwidth is needed; with 4 (at 10, 11, 30, 50)
	 * it is 1e6. Then RPO 15 (15 intervals): 2 spikes in a window at most:
	 * 2 * 1.3e6 / 15 B/s; RPO 30: 3 spikes (10, 11, 30): 3 * 1.3e6 / 30; RPO 60:
	 * one window of all 60: 4 * 1.3e6 / 60. */
	for (int spikes = 3; spikes <= 4; spikes++) {
		p = open_with(0, 0);
		static const int at[4] = { 10, 11, 30, 50 };
		for (int k = 0; k < 60; k++) {
			uint64_t b = 0;
			for (int s = 0; s < spikes; s++)
				if (at[s] == k)
					b = 60000000;
			must(siterec_planner_add_sample(p, 60 * k, "web", "d", GiB, b), "add");
		}
		v = get(p, 0);
		near(v.churn_mean, spikes * 1e6 / 60);
		if (spikes == 3) {
			near(v.churn_percentile, 0);
			near(v.rpo15_p100_mbps, 0);
			near(v.rpo60_p100_mbps, 0);
			assert_int_equal(v.copy_frequency_s, 30);
		} else {
			near(v.churn_percentile, 1e6);
			near(v.rpo15_p100_mbps, 2 * 1.3e6 / 15 * 8 / 1e6);
			near(v.rpo15_p90_mbps, 2 * 1.3e6 / 15 * 8 / 1e6); /* rank 42 of 46: 11 windows hold 2 */
			near(v.rpo30_p100_mbps, 3 * 1.3e6 / 30 * 8 / 1e6);
			near(v.rpo60_p100_mbps, 4 * 1.3e6 / 60 * 8 / 1e6);
			near(v.rpo60_p90_mbps, 4 * 1.3e6 / 60 * 8 / 1e6);
		}
		/* retention follows the mean, spikes included */
		assert_int_equal(v.retention_bytes, (uint64_t)(spikes * 1e6 / 60 * 1.3 * 86400 + 0.5));
		siterec_planner_free(p);
	}
}

static void test_limits(void **state)
{
	(void)state;
	siterec_planner *p = open_with(0, 60);
	for (int k = 0; k < 10; k++) {
		/* ok: 10 MB/s planned on one disk */
		must(siterec_planner_add_sample(p, 60 * k, "ok", "a", GiB, 60ull * 7692307), "add");
		/* busy: 3 disks of 8e6 B/s: 10.4e6 each (fine), 31.2e6 for the VM (over) */
		for (int d = 0; d < 3; d++) {
			char name[8];
			snprintf(name, sizeof(name), "d%d", d);
			must(siterec_planner_add_sample(p, 60 * k, "busy", name, GiB, 60ull * 8000000), "add");
		}
		/* hot: one disk of 16e6 B/s: 20.8e6 planned, over both limits */
		must(siterec_planner_add_sample(p, 60 * k, "hot", "d", GiB, 60ull * 16000000), "add");
		/* wide: 18 idle disks */
		for (int d = 0; d < 18; d++) {
			char name[8];
			snprintf(name, sizeof(name), "d%d", d);
			must(siterec_planner_add_sample(p, 60 * k, "wide", name, GiB, 0), "add");
		}
		/* big: a 4,096 GiB disk; a 4,095 GiB one is fine */
		must(siterec_planner_add_sample(p, 60 * k, "big", "huge", 4096 * GiB, 0), "add");
		must(siterec_planner_add_sample(p, 60 * k, "big", "max", 4095 * GiB, 0), "add");
	}
	uint32_t n;
	must(siterec_planner_vm_count(p, &n), "count");
	assert_int_equal(n, 5);
	siterec_planner_vm v = get(p, 0);
	assert_string_equal(v.name, "ok");
	assert_int_equal(v.fits, 1);
	v = get(p, 1);
	assert_string_equal(v.name, "busy");
	assert_int_equal(v.fits, 0);
	assert_int_equal(v.failed, SITEREC_PLANNER_LIMIT_VM_CHURN);
	v = get(p, 2);
	assert_int_equal(v.failed, SITEREC_PLANNER_LIMIT_VM_CHURN | SITEREC_PLANNER_LIMIT_DISK_CHURN);
	v = get(p, 3);
	assert_int_equal(v.disks, 18);
	assert_int_equal(v.failed, SITEREC_PLANNER_LIMIT_DISK_COUNT);
	v = get(p, 4);
	assert_int_equal(v.failed, SITEREC_PLANNER_LIMIT_DISK_SIZE);
	assert_int_equal(v.replica_bytes, 8191 * GiB);
	siterec_planner_vm t = get(p, SITEREC_PLANNER_TOTALS);
	assert_int_equal(t.fits, 0);
	assert_int_equal(t.failed, 0xf);
	assert_int_equal(t.disks, 1 + 3 + 1 + 18 + 2);
	near(t.churn_percentile, 7692307 + 24e6 + 16e6);

	/* the JSON names them, per VM and per disk */
	char *json;
	must(siterec_planner_report_json(p, &json, NULL), "json");
	cJSON *doc = cJSON_Parse(json);
	assert_non_null(doc);
	cJSON *vms = cJSON_GetObjectItem(doc, "vms");
	assert_int_equal(cJSON_GetArraySize(vms), 5);
	cJSON *hot = cJSON_GetArrayItem(vms, 2);
	assert_string_equal(cJSON_GetObjectItem(hot, "name")->valuestring, "hot");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(hot, "fits")));
	cJSON *fl = cJSON_GetObjectItem(hot, "failed_limits");
	assert_int_equal(cJSON_GetArraySize(fl), 2);
	assert_string_equal(cJSON_GetArrayItem(fl, 0)->valuestring, "disk_churn");
	assert_string_equal(cJSON_GetArrayItem(fl, 1)->valuestring, "vm_churn");
	cJSON *big = cJSON_GetArrayItem(vms, 4);
	cJSON *bd = cJSON_GetObjectItem(big, "disks");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(bd, 0),
	                    "failed_limits"), 0)->valuestring, "disk_size");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(bd, 1),
	                 "failed_limits")), 0);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(vms, 3),
	                    "failed_limits"), 0)->valuestring, "disk_count");
	cJSON_Delete(doc);
	siterec_free(json);
	siterec_planner_free(p);

	/* limits given in the options */
	siterec_planner_options o = SITEREC_PLANNER_OPTIONS_INIT;
	o.vm_churn_limit = 1000;
	o.disk_churn_limit = 2000;
	o.disk_size_limit = GiB;
	o.disk_count_limit = 1;
	must(siterec_planner_open(&p, &o), "open");
	must(siterec_planner_add_sample(p, 0, "v", "a", GiB, 60 * 1000), "add"); /* 1300 B/s planned */
	must(siterec_planner_add_sample(p, 60, "v", "b", GiB + 1, 0), "add");
	assert_int_equal(get(p, 0).failed, SITEREC_PLANNER_LIMIT_VM_CHURN |
	                 SITEREC_PLANNER_LIMIT_DISK_SIZE | SITEREC_PLANNER_LIMIT_DISK_COUNT);
	siterec_planner_free(p);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
	char *path = th_path(dir, name);
	th_write_file(path, text, strlen(text));
	return path;
}

static void test_csv(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	/* header, comment, blank line, CRLF, spaces, ISO and epoch timestamps */
	char *good = write_tmp(dir, "good.csv",
	                       "timestamp,vm,disk,disk_size_bytes,bytes_written\r\n"
	                       "# a comment\n"
	                       "\n"
	                       "2023-11-14T22:13:20Z,vm1,os,10737418240,60000000\r\n"
	                       " 1700000060 , vm1 , os , 10737418240 , 60000000 \n"
	                       "2023-11-14T22:15:20Z,vm 2,d,1073741824,0");
	siterec_planner *p = open_with(0, 0);
	must(siterec_planner_load_csv(p, good), "load");
	uint32_t n;
	must(siterec_planner_vm_count(p, &n), "count");
	assert_int_equal(n, 2);
	siterec_planner_vm v = get(p, 0);
	assert_string_equal(v.name, "vm1");
	near(v.churn_mean, 1e6 * 2 / 3); /* 3 intervals of 60 s from 1700000000 */
	assert_string_equal(get(p, 1).name, "vm 2");
	char *json;
	must(siterec_planner_report_json(p, &json, NULL), "json");
	cJSON *doc = cJSON_Parse(json);
	assert_non_null(doc);
	cJSON *prof = cJSON_GetObjectItem(doc, "profile");
	assert_int_equal((int64_t)cJSON_GetObjectItem(prof, "start")->valuedouble, 1700000000);
	assert_int_equal(cJSON_GetObjectItem(prof, "intervals")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "parameters"), "interval_s")->valueint, 60);
	cJSON_Delete(doc);
	siterec_free(json);

	/* malformed rows: EINVAL naming the line; nothing of the file is kept */
	static const struct {
		const char *text, *line;
	} bad[] = {
		{ "0,vm,d,512,1\n0,vm,d,512\n", ":2:" },
		{ "0,vm,d,512,1,9\n", ":1:" },
		{ "# c\nx,vm,d,512,1\n", ":2:" },
		{ "-5,vm,d,512,1\n", ":1:" },
		{ "2023-02-29T00:00:00Z,vm,d,512,1\n", ":1:" },
		{ "2023-01-01 00:00:00,vm,d,512,1\n", ":1:" },
		{ "0,vm,d,0,1\n", ":1:" },
		{ "0,vm,d,512,-1\n", ":1:" },
		{ "0,vm,d,512,18446744073709551616\n", ":1:" },
		{ "0,vm,d,51x,1\n", ":1:" },
		{ "0,,d,512,1\n", ":1:" },
		{ "0,vm,,512,1\n", ":1:" },
		{ "0,\"vm\",d,512,1\n", ":1:" },
		{ "0,vm,d,512,1\n60,vm,d,1024,1\n", ":2:" },
		{ "timestamp,vm,disk,disk_size_bytes,bytes_written\n0,vm,d,512,1\n"
		  "timestamp,vm,disk,disk_size_bytes,bytes_written\n", ":3:" },
		{ "0,vm,d,512,1\n0,vm,d,512,1\n0,vm,d\x01,512,1\n", ":3:" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = write_tmp(dir, "bad.csv", bad[i].text);
		th_assert_err(siterec_planner_load_csv(p, path), SITEREC_EINVAL);
		if (!strstr(siterec_error_last()->message, bad[i].line))
			fprintf(stderr, "case %zu: %s\n", i, siterec_error_last()->message);
		assert_non_null(strstr(siterec_error_last()->message, bad[i].line));
		assert_non_null(strstr(siterec_error_last()->message, "bad.csv"));
		must(siterec_planner_vm_count(p, &n), "count");
		assert_int_equal(n, 2);
		near(get(p, 0).churn_mean, 1e6 * 2 / 3);
		free(path);
	}
	/* a NUL byte inside a line */
	char *nul = th_path(dir, "nul.csv");
	th_write_file(nul, "0,vm1,os,10737418240,1\n0,v\0m,d,512,1\n", 37);
	th_assert_err(siterec_planner_load_csv(p, nul), SITEREC_EINVAL);
	assert_non_null(strstr(siterec_error_last()->message, ":2:"));
	near(get(p, 0).churn_mean, 1e6 * 2 / 3);
	/* a line longer than a name allows */
	char longline[400];
	memset(longline, 'v', sizeof(longline));
	memcpy(longline, "0,", 2);
	strcpy(longline + 300, ",d,512,1\n");
	char *lp = write_tmp(dir, "long.csv", longline);
	th_assert_err(siterec_planner_load_csv(p, lp), SITEREC_EINVAL);
	/* missing file; empty file adds nothing */
	char *missing = th_path(dir, "none.csv");
	th_assert_err(siterec_planner_load_csv(p, missing), SITEREC_ENOTFOUND);
	char *empty = write_tmp(dir, "empty.csv", "");
	must(siterec_planner_load_csv(p, empty), "empty");
	siterec_planner_free(p);
	p = open_with(0, 0);
	must(siterec_planner_load_csv(p, empty), "empty");
	siterec_planner_vm e = { .version = SITEREC_PLANNER_VM_VERSION };
	th_assert_err(siterec_planner_vm_get(p, SITEREC_PLANNER_TOTALS, &e), SITEREC_ESTATE);
	siterec_planner_free(p);
	free(good);
	free(nul);
	free(lp);
	free(missing);
	free(empty);
	th_tmpdir_remove(dir);
}

static void test_reports(void **state)
{
	(void)state;
	siterec_planner *p = open_with(0, 0);
	add_constant(p, "vm<1>&'x'");
	for (int k = 0; k < 8; k++) /* another VM, every 15 min over the same hours */
		must(siterec_planner_add_sample(p, 1700000000 + 900 * k, "db", "d0", 100 * GiB,
		                                900ull * 1000000), "add");
	char *json, *html;
	size_t jl, hl;
	must(siterec_planner_report_json(p, &json, &jl), "json");
	assert_int_equal(strlen(json), jl);
	cJSON *doc = cJSON_Parse(json);
	assert_non_null(doc);
	cJSON *vms = cJSON_GetObjectItem(doc, "vms");
	assert_int_equal(cJSON_GetArraySize(vms), 2);
	cJSON *v0 = cJSON_GetArrayItem(vms, 0);
	assert_string_equal(cJSON_GetObjectItem(v0, "name")->valuestring, "vm<1>&'x'");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v0, "fits")));
	cJSON *bw = cJSON_GetObjectItem(cJSON_GetObjectItem(v0, "bandwidth_mbps"), "rpo_60_min");
	assert_non_null(cJSON_GetObjectItem(bw, "p90"));
	assert_non_null(cJSON_GetObjectItem(bw, "p100"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(v0, "disks")), 2);
	cJSON *tot = cJSON_GetObjectItem(doc, "totals");
	assert_non_null(tot);
	assert_int_equal(cJSON_GetObjectItem(tot, "vm_count")->valueint, 2);
	assert_int_equal((uint64_t)cJSON_GetObjectItem(tot, "replica_storage_bytes")->valuedouble,
	                 120 * GiB);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "parameters"), "percentile")->valueint, 95);
	cJSON_Delete(doc);
	siterec_free(json);

	must(siterec_planner_report_html(p, &html, &hl), "html");
	assert_int_equal(strlen(html), hl);
	assert_true(!strncmp(html, "<!DOCTYPE html>", 15));
	assert_non_null(strstr(html, "<svg"));
	assert_non_null(strstr(html, "</svg>"));
	assert_non_null(strstr(html, "<polyline"));
	assert_non_null(strstr(html, "class=\"bandwidth\""));
	assert_non_null(strstr(html, "vm&lt;1&gt;&amp;&#39;x&#39;"));
	assert_null(strstr(html, "vm<1>"));
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "href="));
	assert_null(strstr(html, "https://"));
	assert_non_null(strstr(html, "</html>"));
	/* balanced tags that matter */
	size_t open = 0, close = 0;
	for (const char *c = html; (c = strstr(c, "<table")); c++)
		open++;
	for (const char *c = html; (c = strstr(c, "</table>")); c++)
		close++;
	assert_int_equal(open, close);
	siterec_free(html);

	/* adding a sample invalidates the results */
	must(siterec_planner_add_sample(p, 1700000000, "late", "d", GiB, 0), "add");
	uint32_t n;
	must(siterec_planner_vm_count(p, &n), "count");
	assert_int_equal(n, 3);
	assert_string_equal(get(p, 2).name, "late");
	siterec_planner_free(p);
}

static void test_errors(void **state)
{
	(void)state;
	siterec_planner_free(NULL);
	siterec_planner *p = NULL;
	siterec_planner_options o;
	th_assert_err(siterec_planner_options_init(NULL, 1), SITEREC_EINVAL);
	th_assert_err(siterec_planner_options_init(&o, 0), SITEREC_EVERSION);
	th_assert_err(siterec_planner_options_init(&o, SITEREC_PLANNER_OPTIONS_VERSION + 1), SITEREC_EVERSION);
	th_assert_err(siterec_planner_open(NULL, NULL), SITEREC_EINVAL);
	siterec_planner_options_init(&o, SITEREC_PLANNER_OPTIONS_VERSION);
	o.version = 0;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EVERSION);
	assert_null(p);
	o.version = 99;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EVERSION);
	siterec_planner_options_init(&o, SITEREC_PLANNER_OPTIONS_VERSION);
	o.percentile = 101;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	o.percentile = 0;
	o.growth_percent = 1001;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	o.growth_percent = 0;
	o.bandwidth_mbps = -1;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	o.bandwidth_mbps = NAN;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	o.bandwidth_mbps = INFINITY;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	o.bandwidth_mbps = 0;
	o.reserved = 1;
	th_assert_err(siterec_planner_open(&p, &o), SITEREC_EINVAL);
	assert_null(p);
	must(siterec_planner_open(&p, NULL), "open");

	char *s = (char *)"x";
	size_t len = 7;
	uint32_t n;
	siterec_planner_vm v = { .version = SITEREC_PLANNER_VM_VERSION };
	th_assert_err(siterec_planner_report_json(p, &s, &len), SITEREC_ESTATE);
	assert_null(s);
	assert_int_equal(len, 0);
	th_assert_err(siterec_planner_report_html(p, &s, NULL), SITEREC_ESTATE);
	th_assert_err(siterec_planner_vm_get(p, SITEREC_PLANNER_TOTALS, &v), SITEREC_ESTATE);
	th_assert_err(siterec_planner_vm_get(p, 0, &v), SITEREC_ERANGE);
	th_assert_err(siterec_planner_report_json(NULL, &s, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_report_json(p, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_report_html(NULL, &s, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_report_html(p, NULL, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_vm_count(NULL, &n), SITEREC_EINVAL);
	th_assert_err(siterec_planner_vm_count(p, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_vm_get(NULL, 0, &v), SITEREC_EINVAL);
	th_assert_err(siterec_planner_vm_get(p, 0, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_load_csv(NULL, "x"), SITEREC_EINVAL);
	th_assert_err(siterec_planner_load_csv(p, NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(NULL, 0, "v", "d", 512, 0), SITEREC_EINVAL);

	/* bad samples */
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	th_assert_err(siterec_planner_add_sample(p, 0, NULL, "d", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "v", NULL, 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "", "d", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "v", "", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "a,b", "d", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "v", "a\"b", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "v", "a\nb", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, longname, "d", 512, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, 0, "v", "d", 0, 0), SITEREC_EINVAL);
	th_assert_err(siterec_planner_add_sample(p, -1, "v", "d", 512, 0), SITEREC_EINVAL);
	must(siterec_planner_add_sample(p, 0, "v", "d", 512, 0), "add");
	th_assert_err(siterec_planner_add_sample(p, 60, "v", "d", 1024, 0), SITEREC_EINVAL);
	must(siterec_planner_vm_count(p, &n), "count");
	assert_int_equal(n, 1);
	v.version = 0;
	th_assert_err(siterec_planner_vm_get(p, 0, &v), SITEREC_EVERSION);
	v.version = SITEREC_PLANNER_VM_VERSION;
	th_assert_err(siterec_planner_vm_get(p, 1, &v), SITEREC_ERANGE);
	/* a single timestamp: 60 s intervals */
	must(siterec_planner_vm_get(p, 0, &v), "vm_get");
	siterec_planner_free(p);

	/* a profile too long for its interval */
	p = open_with(0, 1);
	must(siterec_planner_add_sample(p, 0, "v", "d", 512, 0), "add");
	must(siterec_planner_add_sample(p, 20000000, "v", "d", 512, 0), "add");
	th_assert_err(siterec_planner_vm_get(p, 0, &v), SITEREC_EINVAL);
	th_assert_err(siterec_planner_report_json(p, &s, NULL), SITEREC_EINVAL);
	siterec_planner_free(p);
}

/* ---- every allocation failing in turn ---- */

static long fail_at = -1, allocs;

static void *f_malloc(size_t n, void *pl)
{
	(void)pl;
	if (fail_at >= 0 && allocs++ == fail_at)
		return NULL;
	return malloc(n ? n : 1);
}

static void *f_realloc(void *ptr, size_t n, void *pl)
{
	(void)pl;
	if (fail_at >= 0 && allocs++ == fail_at)
		return NULL;
	return realloc(ptr, n ? n : 1);
}

static void f_free(void *ptr, void *pl)
{
	(void)pl;
	free(ptr);
}

/* Open, load the CSV, add samples, make both reports; 0 when all worked. */
static int scenario(const char *csv)
{
	siterec_planner *p;
	int rc = siterec_planner_open(&p, NULL);
	if (rc)
		return rc;
	if ((rc = siterec_planner_load_csv(p, csv)) == 0) {
		for (int k = 0; k < 40 && !rc; k++)
			rc = siterec_planner_add_sample(p, 60 * k, k % 2 ? "x" : "y", k % 3 ? "a" : "b", GiB,
			                                (uint64_t)k * 1000);
	}
	char *j = NULL, *h = NULL;
	if (!rc)
		rc = siterec_planner_report_json(p, &j, NULL);
	if (!rc)
		rc = siterec_planner_report_html(p, &h, NULL);
	siterec_planner_vm v = { .version = SITEREC_PLANNER_VM_VERSION };
	if (!rc)
		rc = siterec_planner_vm_get(p, 0, &v);
	siterec_free(j);
	siterec_free(h);
	siterec_planner_free(p);
	return rc;
}

static void test_alloc_failures(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	char *csv = write_tmp(dir, "p.csv", "0,vm1,os,1073741824,100\n60,vm1,os,1073741824,200\n"
	                                    "0,vm2,d,1073741824,5\n120,vm2,e,1073741824,5\n");
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, f_malloc, f_realloc, f_free, NULL };
	must(siterec_set_allocator(&a), "allocator");
	int done = 0;
	for (fail_at = 0; fail_at < 100000 && !done; fail_at++) {
		allocs = 0;
		int rc = scenario(csv);
		if (rc == 0)
			done = 1;
		else
			assert_int_equal(rc, SITEREC_ENOMEM);
	}
	fail_at = -1;
	must(siterec_set_allocator(NULL), "allocator");
	assert_true(done);
	free(csv);
	th_tmpdir_remove(dir);
}

/* A profile recorded by a tracker: each interval's distinct written bytes. */
static void test_tracker(void **state)
{
	(void)state;
	siterec_planner *p = open_with(0, 60);
	siterec_tracker *t = NULL;
	must(siterec_tracker_open(&t, 1 * GiB, NULL), "tracker open");   /* 4 KiB blocks */
	/* interval 1: 3 writes, two of them on the same 4 KiB block: 8 KiB changed */
	must(siterec_tracker_mark(t, 0, 4096), "mark");
	must(siterec_tracker_mark(t, 512, 512), "mark");
	must(siterec_tracker_mark(t, 1 << 20, 4096), "mark");
	must(siterec_planner_record_tracker(p, 1700000060, "vm1", "os", t), "record");
	/* interval 2: 6 MB in one run */
	must(siterec_tracker_mark(t, 8 << 20, 6000000), "mark");
	must(siterec_planner_record_tracker(p, 1700000120, "vm1", "os", t), "record");
	/* interval 3: nothing */
	must(siterec_planner_record_tracker(p, 1700000180, "vm1", "os", t), "record");
	siterec_planner_vm v = get(p, 0);
	assert_string_equal(v.name, "vm1");
	assert_int_equal(v.disks, 1);
	assert_int_equal(v.replica_bytes, 1 * GiB);
	/* 6,000,000 bytes marked from 8 MiB: 1465 blocks of 4 KiB (the last one partial) */
	near(v.churn_peak, 1465.0 * 4096 / 60);
	near(v.churn_mean, (8192.0 + 1465.0 * 4096 + 0) / 3 / 60);
	/* the frozen sets were dropped: a tracker with a pending frozen set is refused */
	siterec_tracker_stats st = { .version = SITEREC_TRACKER_STATS_VERSION };
	must(siterec_tracker_stats_get(t, &st), "stats");
	assert_int_equal(st.has_frozen, 0);
	must(siterec_tracker_switch(t, NULL), "switch");
	th_assert_err(siterec_planner_record_tracker(p, 1700000240, "vm1", "os", t), SITEREC_ESTATE);
	must(siterec_tracker_rollback(t), "rollback");
	/* a bad sample keeps the interval's changes tracked */
	must(siterec_tracker_mark(t, 0, 4096), "mark");
	th_assert_err(siterec_planner_record_tracker(p, 1700000240, "vm1", "bad,disk", t), SITEREC_EINVAL);
	must(siterec_tracker_stats_get(t, &st), "stats");
	assert_int_equal(st.has_frozen, 0);
	assert_int_equal(st.dirty_bytes, 4096);
	th_assert_err(siterec_planner_record_tracker(p, 1700000240, "vm1", "os", NULL), SITEREC_EINVAL);
	th_assert_err(siterec_planner_record_tracker(NULL, 1700000240, "vm1", "os", t), SITEREC_EINVAL);
	siterec_tracker_free(t);
	siterec_planner_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tracker),
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_spiky),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
