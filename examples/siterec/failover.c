/* siterec failover / cleanup-test / change-point / commit / cancel / resume /
 * failover-status: failover.h from the command line.
 *
 * The host side is a directory, --vm-dir (default: the current directory): the
 * start callback writes the target VM's description there as NAME.vm.json (and,
 * for Azure, the ARM template as NAME.arm.json), then runs --start-cmd if given
 * with SITEREC_VM_NAME, SITEREC_VM_JSON and SITEREC_ISOLATED in its environment;
 * the remove callback runs --remove-cmd and deletes both files; a planned
 * failover's shutdown runs --shutdown-cmd (SITEREC_VM_ID set). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define MAX_NICS 32
#define MAX_MAPS 32
#define MAX_SUBNETS 16

typedef struct fo_args {
	const char *verb, *url, *vm, *ca;
	const char *type, *point, *disk_dir, *format, *target, *name, *size, *os, *location;
	const char *test_network, *vm_dir, *start_cmd, *remove_cmd, *shutdown_cmd, *state_dir;
	const char *mode, *journal, *block, *onprem_name;
	int json;
	uint32_t n_back;                         /* failback: --disk (in place) or --to (new files) */
	int back_to;
	siterec_failback_disk back[MAX_NICS];
	uint32_t n_nics, n_maps;
	siterec_nic nics[MAX_NICS];
	siterec_network_map maps[MAX_MAPS];
	const char *subnets[MAX_MAPS][MAX_SUBNETS];
	char *owned[2 * MAX_NICS + MAX_MAPS + 2];   /* strings split off the arguments */
	uint32_t n_owned;
} fo_args;

static int fo_usage(void)
{
	fprintf(stderr,
	        "usage: siterec failover URL VM --type test|planned|unplanned [--point P] [TARGET] [HOST]\n"
	        "       siterec cleanup-test URL VM [HOST]\n"
	        "       siterec change-point URL VM --point P [HOST]\n"
	        "       siterec commit URL VM\n"
	        "       siterec cancel URL VM [HOST]\n"
	        "       siterec resume URL VM [HOST]\n"
	        "       siterec failover-status URL VM\n"
	        "       siterec failback URL VM --mode minimize-downtime|full (--disk ID:PATH... | --to ID:PATH...)\n"
	        "               [--journal DIR] [--block BYTES] [--onprem-name NAME] [HOST]\n"
	        "       siterec reprotect URL VM [--state-dir STATE_DIR [--to ID:PATH...]]\n"
	        "each with [--json] [--ca FILE].\n"
	        "P: latest (default), processed (the newest point the replicas hold), app (newest\n"
	        "   app-consistent), an id, or an instant: @MS (ms since the epoch) or an ISO-8601\n"
	        "   UTC time such as 2026-11-24T10:00:00Z (any point in time within the journal).\n"
	        "TARGET: [--disk-dir DIR [--format vhd|raw]] (required on a file:// target; on Azure\n"
	        "   the disks are otherwise fixed-VHD blobs) [--target azure|hyperv] [--name NAME]\n"
	        "   [--size VMSIZE] [--os Windows|Linux] [--location REGION]\n"
	        "   [--nic NETWORK[/SUBNET][@IP]]... [--map SOURCE=TARGET:SUBNET[,SUBNET...]]...\n"
	        "   [--test-network NETWORK[/SUBNET]]\n"
	        "HOST: [--vm-dir DIR] [--start-cmd CMD] [--remove-cmd CMD]; a planned failover also\n"
	        "   --state-dir STATE_DIR (the protection, on the source host) --shutdown-cmd CMD.\n"
	        "A failover runs until the target VM is started; commit deletes every other point;\n"
	        "cancel removes the VM and disks and lets replication go on; resume finishes what a\n"
	        "crash interrupted.\n"
	        "failback (after a committed failover): --disk the on-premises images, written in\n"
	        "   place, or --to new files (an alternate location; .vhd: a fixed VHD); --journal\n"
	        "   the failed-over VM's journal (its writes tracked: the downtime phase copies only\n"
	        "   them); --shutdown-cmd stops the failed-over VM (SITEREC_VM_ID: its name). commit\n"
	        "   and cancel then act on the failback. reprotect hands the VM back to replication;\n"
	        "   with --state-dir it also resyncs it there (only differing blocks are written;\n"
	        "   --to records the alternate location in the protection).\n");
	return 2;
}

static char *own(fo_args *a, const char *s)
{
	char *c = strdup(s);
	if (c && a->n_owned < sizeof(a->owned) / sizeof(a->owned[0]))
		a->owned[a->n_owned++] = c;
	return c;
}

/* NETWORK[/SUBNET][@IP] */
static int parse_nic(fo_args *a, const char *v)
{
	if (a->n_nics == MAX_NICS)
		return fo_usage();
	char *s = own(a, v), *at = strchr(s, '@'), *sl;
	if (at)
		*at++ = '\0';
	if ((sl = strchr(s, '/')))
		*sl++ = '\0';
	a->nics[a->n_nics++] = (siterec_nic){ .network = s, .subnet = sl, .ip = at };
	return 0;
}

/* SOURCE=TARGET:SUBNET[,SUBNET...] */
static int parse_map(fo_args *a, const char *v)
{
	if (a->n_maps == MAX_MAPS)
		return fo_usage();
	char *s = own(a, v), *eq = strchr(s, '='), *co = eq ? strchr(eq, ':') : NULL;
	if (!eq || !co) {
		fprintf(stderr, "siterec: --map '%s' is not SOURCE=TARGET:SUBNET[,SUBNET...]\n", v);
		return 2;
	}
	*eq++ = '\0';
	*co++ = '\0';
	siterec_network_map *m = &a->maps[a->n_maps];
	memset(m, 0, sizeof(*m));
	m->source_network = s;
	m->target_network = eq;
	for (char *t = strtok(co, ","); t && m->n_subnets < MAX_SUBNETS; t = strtok(NULL, ","))
		a->subnets[a->n_maps][m->n_subnets++] = t;
	m->subnets = a->subnets[a->n_maps];
	a->n_maps++;
	return 0;
}

static int parse(int argc, char **argv, fo_args *a)
{
	memset(a, 0, sizeof(*a));
	a->verb = argv[0];
	int pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strncmp(o, "--", 2) != 0) {
			if (pos == 0)
				a->url = o;
			else if (pos == 1)
				a->vm = o;
			else
				return fo_usage();
			pos++;
			continue;
		}
		if (!strcmp(o, "--json")) {
			a->json = 1;
			continue;
		}
		if (i + 1 >= argc)
			return fo_usage();
		const char *v = argv[++i];
		const struct { const char *opt; const char **dst; } opts[] = {
			{ "--ca", &a->ca }, { "--type", &a->type }, { "--point", &a->point },
			{ "--disk-dir", &a->disk_dir }, { "--format", &a->format }, { "--target", &a->target },
			{ "--name", &a->name }, { "--size", &a->size }, { "--os", &a->os },
			{ "--location", &a->location }, { "--test-network", &a->test_network },
			{ "--vm-dir", &a->vm_dir }, { "--start-cmd", &a->start_cmd },
			{ "--remove-cmd", &a->remove_cmd }, { "--shutdown-cmd", &a->shutdown_cmd },
			{ "--state-dir", &a->state_dir }, { "--mode", &a->mode }, { "--journal", &a->journal },
			{ "--block", &a->block }, { "--onprem-name", &a->onprem_name },
		};
		int done = 0;
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !done; k++)
			if (!strcmp(o, opts[k].opt)) {
				*opts[k].dst = v;
				done = 1;
			}
		if (!done && (!strcmp(o, "--disk") || !strcmp(o, "--to"))) {   /* ID:PATH */
			char *s = own(a, v), *c = s ? strchr(s, ':') : NULL;
			if (!c || c == s || !c[1] || a->n_back == MAX_NICS ||
			    (a->n_back && a->back_to != !strcmp(o, "--to"))) {
				fprintf(stderr, "siterec: %s '%s': ID:PATH, all --disk or all --to\n", o, v);
				return 2;
			}
			*c = '\0';
			a->back_to = !strcmp(o, "--to");
			a->back[a->n_back++] = (siterec_failback_disk){ s, c + 1 };
			done = 1;
		}
		if (!done && !strcmp(o, "--nic"))
			done = parse_nic(a, v) == 0 ? 1 : -1;
		else if (!done && !strcmp(o, "--map"))
			done = parse_map(a, v) == 0 ? 1 : -1;
		if (done != 1)
			return done ? 2 : fo_usage();
	}
	return pos == 2 ? 0 : fo_usage();
}

static void args_free(fo_args *a)
{
	for (uint32_t i = 0; i < a->n_owned; i++)
		free(a->owned[i]);
}

/* latest | processed | app | ID | @MS | ISO-8601 UTC */
static int parse_point(const char *p, siterec_point_choice *c)
{
	memset(c, 0, sizeof(*c));
	uint64_t v;
	if (!p || !strcmp(p, "latest")) {
		c->how = SITEREC_POINT_LATEST;
	} else if (!strcmp(p, "processed") || !strcmp(p, "latest-processed")) {
		c->how = SITEREC_POINT_LATEST_PROCESSED;
	} else if (!strcmp(p, "app") || !strcmp(p, "latest-app")) {
		c->how = SITEREC_POINT_LATEST_APP;
	} else if (p[0] == '@' && cli_parse_u64(p + 1, &v) == 0 && v > 0 && v < INT64_MAX) {
		c->how = SITEREC_POINT_TIME;
		c->time_ms = (int64_t)v;
	} else if (cli_parse_u64(p, &v) == 0) {
		c->how = SITEREC_POINT_ID;
		c->id = v;
	} else {
		struct tm tm;
		memset(&tm, 0, sizeof(tm));
		const char *end = strptime(p, "%Y-%m-%dT%H:%M:%S", &tm);
		unsigned ms = 0;
		if (end && *end == '.') {
			char *e2;
			ms = (unsigned)strtoul(end + 1, &e2, 10);
			end = e2;
		}
		if (!end || strcmp(end, "Z") != 0 || ms > 999) {
			fprintf(stderr, "siterec: --point '%s' is not latest, processed, app, an id, @MS or "
			        "YYYY-MM-DDTHH:MM:SS[.mmm]Z\n", p);
			return 2;
		}
		c->how = SITEREC_POINT_TIME;
		c->time_ms = (int64_t)timegm(&tm) * 1000 + ms;
	}
	return 0;
}

/* ---- the host side ---- */

static int run_cmd(const char *cmd, const char *what)
{
	fprintf(stderr, "siterec: running %s: %s\n", what, cmd);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "siterec: %s failed (status %d)\n", what, st == -1 ? -1 : WEXITSTATUS(st));
		return 1;
	}
	return 0;
}

static int host_start(const siterec_failover_vm *vm, void *payload)
{
	const fo_args *a = payload;
	char vj[4200], arm[4200];
	fprintf(stderr, "siterec: starting VM %s (generation %u, %s, %u disk(s)%s) from point %" PRIu64 "\n",
	        vm->name, vm->generation, vm->firmware == SITEREC_FIRMWARE_UEFI ? "UEFI" : "BIOS", vm->n_disks,
	        vm->isolated ? ", isolated network" : "", vm->point_id);
	int rc = cli_vm_files_write(a->vm_dir, vm, vj, arm, sizeof(vj));
	if (rc)
		fprintf(stderr, "siterec: cannot write %s: %s\n", vj, strerror(errno));
	if (rc == 0 && a->start_cmd) {
		setenv("SITEREC_VM_NAME", vm->name, 1);
		setenv("SITEREC_VM_JSON", vj, 1);
		setenv("SITEREC_ISOLATED", vm->isolated ? "1" : "0", 1);
		rc = run_cmd(a->start_cmd, "the start command");
	}
	return rc;
}

static int host_remove(const siterec_failover_vm *vm, void *payload)
{
	const fo_args *a = payload;
	char vj[4200], arm[4200];
	cli_vm_files(a->vm_dir, vm->name, vj, arm, sizeof(vj));
	fprintf(stderr, "siterec: removing VM %s\n", vm->name);
	if (a->remove_cmd) {
		setenv("SITEREC_VM_NAME", vm->name, 1);
		setenv("SITEREC_VM_JSON", vj, 1);
		if (run_cmd(a->remove_cmd, "the remove command"))
			return 1;
	}
	if ((unlink(vj) != 0 && errno != ENOENT) || (unlink(arm) != 0 && errno != ENOENT))
		return 1;
	return 0;
}

static int host_shutdown(const char *vm_id, void *payload)
{
	const fo_args *a = payload;
	fprintf(stderr, "siterec: shutting down VM %s\n", vm_id);
	setenv("SITEREC_VM_ID", vm_id, 1);
	return run_cmd(a->shutdown_cmd, "the shutdown command");
}

static int log_line(int level, const char *msg, void *payload)
{
	(void)payload;
	(void)level;
	fprintf(stderr, "siterec: %s\n", msg);
	return 0;
}

/* ---- the summary ---- */

static int summary(siterec_failover *fo, const fo_args *a, uint32_t type, double t0)
{
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	if (siterec_failover_status_get(fo, type, &s))
		return cli_fail("failover status");
	char when[40] = "";
	if (s.point_time_ms)
		cli_iso_time(s.point_time_ms, when, sizeof(when));
	int64_t downtime = s.shutdown_ms && s.vm_started_ms ? s.vm_started_ms - s.shutdown_ms : -1;
	double secs = cli_now() - t0;
	const char *phase = siterec_failover_phase_name(s.phase);
	static const char *const types[] = { "none", "test", "planned", "unplanned", "failback" };
	if (a->json) {
		printf("{\"vm\":\"%s\",\"type\":\"%s\",\"phase\":\"%s\",\"machines\":%u,\"vm_name\":\"%s\","
		       "\"point\":%" PRIu64 ",\"point_time\":\"%s\",\"bytes_written\":%" PRIu64 ","
		       "\"downtime_ms\":%" PRId64 ",\"duration_s\":%.3f,\"generation\":%" PRIu64 "}\n",
		       a->vm, types[s.type <= 4 ? s.type : 0], phase, s.type ? 1u : 0u, s.vm_name, s.point_id, when,
		       s.bytes_written, downtime, secs, s.generation);
	} else if (!s.type) {
		printf("%s: no %s\n", a->vm, type == SITEREC_FAILOVER_TEST ? "test failover"
		       : type == SITEREC_FAILOVER_FAILBACK ? "failback" : "failover");
	} else {
		int fb = s.type == SITEREC_FAILOVER_FAILBACK;
		printf("%s: %s%s %s: 1 machine (%s), point %" PRIu64 " at %s, %.1f MiB written", a->vm,
		       types[s.type], fb ? "" : " failover",
		       fb && s.phase == SITEREC_FO_FAILED_OVER ? "done (not committed)" : phase, s.vm_name,
		       s.point_id, when, (double)s.bytes_written / 1048576.0);
		if (s.type == SITEREC_FAILOVER_FAILBACK)
			printf(" (%.1f MiB differing by checksums, %.1f MiB in the downtime phase)",
			       (double)s.bytes_differing / 1048576.0, (double)s.bytes_delta / 1048576.0);
		if (downtime >= 0)
			printf(", downtime %.3f s", (double)downtime / 1000.0);
		printf(" (%.2f s)\n", secs);
	}
	return 0;
}

static int fill_request(const fo_args *a, uint32_t type, siterec_failover_request *q)
{
	siterec_failover_request_init(q, SITEREC_FAILOVER_REQUEST_VERSION);
	q->type = type;
	int rc = parse_point(a->point, &q->point);
	if (rc)
		return rc;
	q->disk_dir = a->disk_dir;
	if (a->format && strcmp(a->format, "vhd") != 0 && strcmp(a->format, "raw") != 0)
		return fo_usage();
	q->output = a->format && !strcmp(a->format, "raw") ? SITEREC_OUTPUT_RAW : SITEREC_OUTPUT_VHD;
	if (a->target && strcmp(a->target, "azure") != 0 && strcmp(a->target, "hyperv") != 0)
		return fo_usage();
	q->target = a->target && !strcmp(a->target, "hyperv") ? SITEREC_TARGET_HYPERV : SITEREC_TARGET_AZURE;
	q->vm_name = a->name;
	q->vm_size = a->size;
	q->os_type = a->os;
	q->location = a->location;
	q->n_nics = a->n_nics;
	q->nics = a->nics;
	q->n_networks = a->n_maps;
	q->networks = a->maps;
	return 0;
}

int cmd_failover(int argc, char **argv)
{
	fo_args a;
	int rc = parse(argc, argv, &a);
	if (rc) {
		args_free(&a);
		return rc;
	}
	const char *test_subnet = NULL;
	if (a.test_network) {   /* NETWORK[/SUBNET] */
		char *tn = own(&a, a.test_network), *sl = tn ? strchr(tn, '/') : NULL;
		if (sl) {
			*sl++ = '\0';
			test_subnet = sl;
		}
		a.test_network = tn;
	}
	siterec_set_log(log_line, SITEREC_LOG_INFO, NULL);
	double t0 = cli_now();
	siterec_store *st = NULL, *src_st = NULL;
	siterec_replication *r = NULL;
	siterec_failover *fo = NULL;
	uint32_t type = SITEREC_FAILOVER_UNPLANNED;
	if (!strcmp(a.verb, "failover")) {
		if (!a.type)
			rc = fo_usage();
		else if (!strcmp(a.type, "test"))
			type = SITEREC_FAILOVER_TEST;
		else if (!strcmp(a.type, "planned"))
			type = SITEREC_FAILOVER_PLANNED;
		else if (strcmp(a.type, "unplanned") != 0)
			rc = fo_usage();
	} else if (!strcmp(a.verb, "cleanup-test")) {
		type = SITEREC_FAILOVER_TEST;
	}
	if (rc == 0 && type == SITEREC_FAILOVER_PLANNED && (!a.state_dir || !a.shutdown_cmd)) {
		fprintf(stderr, "siterec: a planned failover needs --state-dir (the protection) and --shutdown-cmd\n");
		rc = 2;
	}
	if (rc == 0)
		rc = cli_open_store(&st, a.url, a.ca, 0, NULL, NULL);
	int reprotect = !strcmp(a.verb, "reprotect");
	if (rc == 0 && a.state_dir && !reprotect) {   /* the source side: its protection, for the last cycle */
		char vm_id[128];
		rc = cli_repl_open(a.state_dir, NULL, a.ca, &src_st, &r, vm_id, sizeof(vm_id));
		if (rc == 0 && strcmp(vm_id, a.vm) != 0) {
			fprintf(stderr, "siterec: %s protects %s, not %s\n", a.state_dir, vm_id, a.vm);
			rc = 2;
		}
	}
	if (rc == 0) {
		siterec_failover_options o = SITEREC_FAILOVER_OPTIONS_INIT;
		o.store = st;
		o.vm_id = a.vm;
		o.replication = r;
		o.start = host_start;
		o.remove = host_remove;
		o.shutdown = a.shutdown_cmd ? host_shutdown : NULL;
		o.payload = &a;
		if (siterec_failover_open(&fo, &o))
			rc = cli_fail(a.vm);
	}
	if (rc == 0) {
		int lrc = 0;
		siterec_failover_request q;
		siterec_point_choice ch;
		uint32_t n = 0;
		if (!strcmp(a.verb, "failover")) {
			if ((rc = fill_request(&a, type, &q)) == 0) {
				if (type == SITEREC_FAILOVER_TEST) {
					q.test_network = a.test_network;
					q.test_subnet = test_subnet;
					lrc = siterec_failover_test(fo, &q);
				} else {
					lrc = siterec_failover_run(fo, &q);
				}
			}
		} else if (!strcmp(a.verb, "cleanup-test")) {
			lrc = siterec_failover_test_cleanup(fo);
		} else if (!strcmp(a.verb, "change-point")) {
			if (!a.point)
				rc = fo_usage();
			else if ((rc = parse_point(a.point, &ch)) == 0)
				lrc = siterec_failover_change_point(fo, &ch);
		} else if (!strcmp(a.verb, "commit") || !strcmp(a.verb, "cancel")) {
			/* a failback under way is what commit and cancel are about */
			int commit = !strcmp(a.verb, "commit");
			siterec_failover_status fb = { .version = SITEREC_FAILOVER_STATUS_VERSION };
			lrc = siterec_failover_status_get(fo, SITEREC_FAILOVER_FAILBACK, &fb);
			int on_fb = lrc == 0 && fb.type && (commit ? fb.phase == SITEREC_FO_FAILED_OVER
			                                    : fb.phase != SITEREC_FO_COMMITTED && fb.phase != SITEREC_FO_REPROTECTING);
			if (on_fb)
				type = SITEREC_FAILOVER_FAILBACK;
			if (lrc == 0)
				lrc = commit ? (on_fb ? siterec_failback_commit(fo) : siterec_failover_commit(fo))
				             : (on_fb ? siterec_failback_cancel(fo) : siterec_failover_cancel(fo));
		} else if (!strcmp(a.verb, "failback")) {
			type = SITEREC_FAILOVER_FAILBACK;
			siterec_failback_request b;
			siterec_failback_request_init(&b, SITEREC_FAILBACK_REQUEST_VERSION);
			uint64_t block = 0;
			if (!a.mode || (strcmp(a.mode, "minimize-downtime") != 0 && strcmp(a.mode, "full") != 0) ||
			    !a.n_back || !a.shutdown_cmd || (a.block && (cli_parse_u64(a.block, &block) || block > UINT32_MAX))) {
				fprintf(stderr, "siterec: failback needs --mode minimize-downtime|full, --disk or --to for "
				        "every disk, and --shutdown-cmd (--block: bytes)\n");
				rc = 2;
			} else {
				b.mode = !strcmp(a.mode, "full") ? SITEREC_FAILBACK_FULL : SITEREC_FAILBACK_MINIMIZE_DOWNTIME;
				b.flags = a.back_to ? SITEREC_FAILBACK_ALTERNATE : 0;
				b.block_size = (uint32_t)block;
				b.n_disks = a.n_back;
				b.disks = a.back;
				b.journal_dir = a.journal;
				b.vm_name = a.onprem_name;
				lrc = siterec_failback_run(fo, &b);
			}
		} else if (reprotect) {
			lrc = siterec_failover_reprotect(fo);
			for (uint32_t i = 0; lrc == 0 && rc == 0 && a.state_dir && a.back_to && i < a.n_back; i++)
				rc = cli_repl_repath(a.state_dir, a.back[i].id, a.back[i].path);
			if (lrc == 0 && rc == 0 && a.state_dir) {   /* replication takes up: a resync */
				char vm_id[128];
				siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
				rc = cli_repl_open(a.state_dir, NULL, a.ca, &src_st, &r, vm_id, sizeof(vm_id));
				if (rc == 0 && (lrc = siterec_replication_resync(r, &res)) == 0)
					printf("%s: reprotected: resync point %" PRIu64 ", %" PRIu64 " differing bytes written\n",
					       a.vm, res.point_id, res.bytes_shipped);
			} else if (lrc == 0 && rc == 0) {
				printf("%s: reprotected: open its replication and resync it (siterec resync)\n", a.vm);
			}
		} else if (!strcmp(a.verb, "resume")) {
			lrc = siterec_failover_resume(fo, &n);
			if (lrc == 0 && !a.json)
				printf("%s: %u operation(s) resumed\n", a.vm, n);
		}
		if (lrc)
			rc = cli_fail(a.verb);
		if (rc == 0 && !reprotect) {
			if (!strcmp(a.verb, "resume") || !strcmp(a.verb, "failover-status")) {
				if (!a.json)
					rc = summary(fo, &a, SITEREC_FAILOVER_TEST, t0);
				if (rc == 0)
					rc = summary(fo, &a, SITEREC_FAILOVER_UNPLANNED, t0);
				if (rc == 0 && !a.json)
					rc = summary(fo, &a, SITEREC_FAILOVER_FAILBACK, t0);
			} else {
				rc = summary(fo, &a, type, t0);
			}
		}
	}
	siterec_failover_free(fo);
	siterec_replication_free(r);
	siterec_store_free(src_st);
	siterec_store_free(st);
	siterec_set_log(NULL, 0, NULL);
	args_free(&a);
	return rc;
}
