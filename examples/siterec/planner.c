/* siterec planner: the deployment planner over planner.h (a thin wrapper). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int planner_usage(void)
{
	fprintf(stderr, "usage: siterec planner --csv FILE [--bandwidth MBPS] [--retention HOURS] "
	                "[--json] [--html OUT.html]\n"
	                "  FILE: timestamp,vm,disk,disk_size_bytes,bytes_written rows (doc/formats.md)\n"
	                "  --bandwidth  available bandwidth in Mbps (default 100)\n"
	                "  --retention  recovery-point retention window in hours (default 24)\n"
	                "  --json       print the JSON report instead of the table\n"
	                "  --html       also write the HTML report (with its SVG chart) to OUT.html\n");
	return 2;
}

static int parse_pos(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !isfinite(v) || v <= 0)
		return -1;
	*out = v;
	return 0;
}

static void fmt_bytes(uint64_t v, char *buf, size_t cap)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)v;
	int i = 0;
	while (x >= 1024 && i < 6) {
		x /= 1024;
		i++;
	}
	snprintf(buf, cap, i ? "%.1f%s" : "%.0f%s", x, u[i]);
}

static void fmt_dur(double s, char *buf, size_t cap)
{
	if (s < 60)
		snprintf(buf, cap, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, cap, "%.1fmin", s / 60);
	else if (s < 172800)
		snprintf(buf, cap, "%.1fh", s / 3600);
	else
		snprintf(buf, cap, "%.1fd", s / 86400);
}

static void print_row(const siterec_planner_vm *v)
{
	char fits[64] = "yes", rep[16], ret[16], ir[16], cf[16];
	if (!v->fits) {
		static const char *const names[4] = { "disk-churn", "vm-churn", "disk-size", "disk-count" };
		strcpy(fits, "no:");
		int first = 1;
		for (int i = 0; i < 4; i++)
			if (v->failed & (1u << i)) {
				strcat(fits, first ? "" : ",");
				strcat(fits, names[i]);
				first = 0;
			}
	}
	fmt_bytes(v->replica_bytes, rep, sizeof(rep));
	fmt_bytes(v->retention_bytes, ret, sizeof(ret));
	fmt_dur(v->initial_replication_s, ir, sizeof(ir));
	if (v->copy_frequency_s)
		snprintf(cf, sizeof(cf), "%us", v->copy_frequency_s);
	else
		strcpy(cf, "none");
	printf("%-16s %-22s %9.3f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %9s %9s %8s %5s\n", v->name, fits,
	       v->churn_percentile / 1e6, v->rpo15_p90_mbps, v->rpo15_p100_mbps, v->rpo30_p90_mbps,
	       v->rpo30_p100_mbps, v->rpo60_p90_mbps, v->rpo60_p100_mbps, rep, ret, ir, cf);
}

int cmd_planner(int argc, char **argv)
{
	const char *csv = NULL, *html_out = NULL;
	int json = 0;
	siterec_planner_options o;
	siterec_planner_options_init(&o, SITEREC_PLANNER_OPTIONS_VERSION);
	for (int i = 1; i < argc; i++) {
		double v;
		if (!strcmp(argv[i], "--csv") && i + 1 < argc)
			csv = argv[++i];
		else if (!strcmp(argv[i], "--html") && i + 1 < argc)
			html_out = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--bandwidth") && i + 1 < argc) {
			if (parse_pos(argv[++i], &o.bandwidth_mbps)) {
				fprintf(stderr, "siterec planner: --bandwidth wants a positive number of Mbps\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "--retention") && i + 1 < argc) {
			if (parse_pos(argv[++i], &v) || v * 3600 > 1e15) {
				fprintf(stderr, "siterec planner: --retention wants a positive number of hours\n");
				return 2;
			}
			o.retention_s = (uint64_t)(v * 3600 + 0.5);
			if (!o.retention_s)
				o.retention_s = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			planner_usage();
			return 0;
		} else {
			fprintf(stderr, "siterec planner: unexpected argument '%s'\n", argv[i]);
			return planner_usage();
		}
	}
	if (!csv)
		return planner_usage();
	siterec_planner *p;
	if (siterec_planner_open(&p, &o))
		return cli_fail("planner");
	int rc = 0;
	if (siterec_planner_load_csv(p, csv)) {
		rc = cli_fail(csv);
		goto out;
	}
	if (html_out) {
		char *h;
		size_t n;
		if (siterec_planner_report_html(p, &h, &n)) {
			rc = cli_fail(csv);
			goto out;
		}
		FILE *f = fopen(html_out, "w");
		int bad = !f || fwrite(h, 1, n, f) != n;
		if (f && fclose(f))
			bad = 1;
		siterec_free(h);
		if (bad) {
			perror(html_out);
			rc = 2;
			goto out;
		}
	}
	if (json) {
		char *j;
		size_t n;
		if (siterec_planner_report_json(p, &j, &n)) {
			rc = cli_fail(csv);
			goto out;
		}
		fwrite(j, 1, n, stdout);
		siterec_free(j);
		goto out;
	}
	uint32_t count = 0;
	siterec_planner_vm_count(p, &count);
	siterec_planner_vm tot = { .version = SITEREC_PLANNER_VM_VERSION };
	if (siterec_planner_vm_get(p, SITEREC_PLANNER_TOTALS, &tot)) {
		rc = cli_fail(csv);
		goto out;
	}
	printf("%-16s %-22s %9s %8s %8s %8s %8s %8s %8s %9s %9s %8s %5s\n", "VM", "fits", "p95 MB/s",
	       "15m 90%", "15m 100%", "30m 90%", "30m 100%", "60m 90%", "60m 100%", "replica",
	       "retention", "initial", "copy");
	for (uint32_t i = 0; i <= count; i++) {
		siterec_planner_vm v = { .version = SITEREC_PLANNER_VM_VERSION };
		if (siterec_planner_vm_get(p, i == count ? SITEREC_PLANNER_TOTALS : i, &v)) {
			rc = cli_fail(csv);
			goto out;
		}
		if (i == count)
			v.name = "TOTAL";
		print_row(&v);
	}
	printf("bandwidth columns: Mbps to meet the RPO 90%%/100%% of the time (95th percentile of "
	       "churn + 30%% growth); initial replication and copy frequency at %.3f Mbps\n",
	       o.bandwidth_mbps ? o.bandwidth_mbps : 100.0);
out:
	siterec_planner_free(p);
	return rc;
}
