/* siterec points: list a VM's recovery points (rp.h) in a storage target, as a
 * table or as JSON (an array of points, oldest first). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"

static int points_usage(void)
{
	fprintf(stderr, "usage: siterec points [--ca FILE] URL VM [--json]\n"
	                "URL: file:///DIR or https://ACCOUNT.blob.core.windows.net/CONTAINER;\n"
	                "credentials from SITEREC_ACCOUNT_KEY or SITEREC_SAS\n");
	return 2;
}

static cJSON *point_json(const siterec_rp_point *p, const char *when)
{
	cJSON *o = cJSON_CreateObject(), *disks = cJSON_CreateArray();
	cJSON_AddNumberToObject(o, "id", (double)p->id);
	cJSON_AddStringToObject(o, "time", when);
	cJSON_AddNumberToObject(o, "time_ms", (double)p->cut_time_ms);
	cJSON_AddStringToObject(o, "kind", cli_rp_kind_name(p->kind));
	for (uint32_t k = 0; k < p->n_disks; k++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "disk", p->disks[k].disk);
		cJSON_AddStringToObject(d, "snapshot", p->disks[k].snapshot);
		if (p->disks[k].n_changed == UINT64_MAX)
			cJSON_AddNullToObject(d, "changed_extents");
		else
			cJSON_AddNumberToObject(d, "changed_extents", (double)p->disks[k].n_changed);
		cJSON_AddItemToArray(disks, d);
	}
	cJSON_AddItemToObject(o, "disks", disks);
	return o;
}

static void point_row(const siterec_rp_point *p, const char *when)
{
	printf("%-20" PRIu64 "  %-24s  %-5s  %5u ", p->id, when, cli_rp_kind_name(p->kind), p->n_disks);
	for (uint32_t k = 0; k < p->n_disks; k++)
		printf(" %s@%s", p->disks[k].disk, p->disks[k].snapshot);
	printf("\n");
}

static int list_points(siterec_rp_catalog *cat, const char *vm, int json)
{
	uint64_t n = 0;
	if (siterec_rp_count(cat, &n))
		return cli_fail(vm);
	if (!n && !json) {
		printf("%s: no recovery points\n", vm);
		return 0;
	}
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	if (!json)
		printf("%-20s  %-24s  %-5s  %5s  %s\n", "ID", "TIME (UTC)", "KIND", "DISKS",
		       "DISK@SNAPSHOT...");
	for (uint64_t i = 0; i < n; i++) {
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		if (siterec_rp_get(cat, i, &p)) {
			cJSON_Delete(arr);
			return cli_fail(vm);
		}
		char when[48];
		cli_iso_time(p.cut_time_ms, when, sizeof(when));
		if (json)
			cJSON_AddItemToArray(arr, point_json(&p, when));
		else
			point_row(&p, when);
	}
	if (json) {
		char *s = cJSON_Print(arr);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(arr);
	}
	return 0;
}

int cmd_points(int argc, char **argv)
{
	const char *ca = NULL, *pos[2];
	int json = 0, n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
			ca = argv[++i];
		else if (strncmp(argv[i], "--", 2) == 0 || n == 2)
			return points_usage();
		else
			pos[n++] = argv[i];
	}
	if (n != 2)
		return points_usage();
	siterec_store *st;
	int rc = cli_open_store(&st, pos[0], ca, 0, NULL, NULL);
	if (rc)
		return rc;
	siterec_rp_catalog *cat;
	if (siterec_rp_open(&cat, st, pos[1])) {
		rc = cli_fail(pos[1]);
	} else {
		rc = list_points(cat, pos[1], json);
		siterec_rp_free(cat);
	}
	siterec_store_free(st);
	return rc;
}
