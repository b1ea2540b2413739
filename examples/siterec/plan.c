/* siterec plan run|resume|status: recovery plans (failover.h) from the command
 * line.
 *
 * The host side follows `siterec failover`: the start callback writes the
 * target VM's description to VMDIR/NAME.vm.json (and an Azure VM's ARM
 * template to VMDIR/NAME.arm.json), then runs --start-cmd with SITEREC_VM_NAME,
 * SITEREC_VM_JSON and SITEREC_ISOLATED in its environment; remove runs
 * --remove-cmd and deletes both files; a planned failover's shutdown runs
 * --shutdown-cmd with SITEREC_VM_ID. A plan runs machines on several threads at
 * once, so the commands are started with posix_spawn and an environment of
 * their own (never setenv), and the output and the table of points are guarded
 * by one mutex. A planned failover opens each machine's protection from the
 * machine's "state_dir" field in the plan (cli_repl_open).
 *
 * Exit status: 0 done, 3 paused at a manual action (`siterec plan resume`
 * goes on), 2 failed or bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

extern char **environ;

#define EXIT_PAUSED 3
#define MAX_POINTS 1000
#define MAX_STORES 1000

static const char *const op_names[] = { NULL, "test", "cleanup", "planned", "unplanned",
	                                "commit", "failback", "cancel" };
static const char *const state_names[] = { "idle", "running", "paused", "done", "failed" };

typedef struct vm_point {
	char vm[72];
	uint64_t id;
	int64_t time_ms;
} vm_point;

typedef struct plan_cli {
	const char *verb, *plan_path, *url, *state, *op, *vm_dir, *start_cmd, *remove_cmd, *shutdown_cmd, *ca;
	uint32_t parallel;
	int json;
	cJSON *doc;                       /* the plan, for the machines' state_dir */
	pthread_mutex_t mu;               /* output, points, stores */
	vm_point points[MAX_POINTS];
	uint32_t n_points;
	siterec_store *stores[MAX_STORES];/* the planned failover's source stores, freed at the end */
	uint32_t n_stores;
	uint32_t groups_seen;
} plan_cli;

static int plan_usage(void)
{
	fprintf(stderr,
	        "usage: siterec plan run PLAN.json --url URL --state FILE --op OP [HOST] [--parallel N] [--json]\n"
	        "       siterec plan resume PLAN.json --url URL --state FILE [HOST] [--parallel N] [--json]\n"
	        "       siterec plan status PLAN.json --url URL --state FILE [--json]\n"
	        "each with [--ca FILE].\n"
	        "OP: test, cleanup, planned, unplanned, commit, failback or cancel.\n"
	        "HOST: [--vm-dir DIR] [--start-cmd CMD] [--remove-cmd CMD] [--shutdown-cmd CMD]\n"
	        "   (a planned failover needs --shutdown-cmd and a \"state_dir\" per machine).\n"
	        "The plan document: doc/formats.md, \"Recovery plan\". FILE records the run: a run\n"
	        "cut short (a crash, a failure, a manual action) goes on with `plan resume`.\n"
	        "Exit status: 0 done, 3 paused at a manual action, 2 failed.\n");
	return 2;
}

static int parse(int argc, char **argv, plan_cli *a)
{
	a->verb = argc > 1 ? argv[1] : NULL;
	if (!a->verb || (strcmp(a->verb, "run") && strcmp(a->verb, "resume") && strcmp(a->verb, "status")))
		return plan_usage();
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (strncmp(o, "--", 2) != 0) {
			if (a->plan_path)
				return plan_usage();
			a->plan_path = o;
			continue;
		}
		if (!strcmp(o, "--json")) {
			a->json = 1;
			continue;
		}
		if (i + 1 >= argc)
			return plan_usage();
		const char *v = argv[++i];
		const struct { const char *opt; const char **dst; } opts[] = {
			{ "--url", &a->url }, { "--state", &a->state }, { "--op", &a->op }, { "--vm-dir", &a->vm_dir },
			{ "--start-cmd", &a->start_cmd }, { "--remove-cmd", &a->remove_cmd },
			{ "--shutdown-cmd", &a->shutdown_cmd }, { "--ca", &a->ca },
		};
		int done = 0;
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !done; k++)
			if (!strcmp(o, opts[k].opt)) {
				*opts[k].dst = v;
				done = 1;
			}
		uint64_t n;
		if (!done && !strcmp(o, "--parallel")) {
			if (cli_parse_u64(v, &n) != 0 || n < 1 || n > 64) {
				fprintf(stderr, "siterec: --parallel takes 1..64\n");
				return 2;
			}
			a->parallel = (uint32_t)n;
			done = 1;
		}
		if (!done)
			return plan_usage();
	}
	if (!a->plan_path || !a->url || !a->state || (!strcmp(a->verb, "run") && !a->op))
		return plan_usage();
	return 0;
}

static uint32_t op_of(const char *s)
{
	for (uint32_t i = 1; s && i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(op_names[i], s))
			return i;
	return 0;
}

/* ---- the host side (thread-safe) ---- */

/* Run cmd with /bin/sh -c and the extra NAME=VALUE strings in its environment;
 * its output goes to our stderr. 0 when it exits 0. */
static int run_cmd(plan_cli *a, const char *cmd, const char *what, const char *const *extra, size_t n_extra)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = calloc(n + n_extra + 1, sizeof(*envp));
	if (!envp)
		return 1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < n_extra && !replaced; j++) {
			size_t l = strcspn(extra[j], "=");
			replaced = !strncmp(environ[i], extra[j], l + 1);
		}
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < n_extra; j++)
		envp[k++] = (char *)extra[j];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);   /* stdout is ours (--json): theirs to stderr */
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
	pid_t pid;
	int e = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp), st = 0;
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (e == 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	int bad = e != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	if (bad) {
		pthread_mutex_lock(&a->mu);
		fprintf(stderr, "siterec: %s failed (%s %d)\n", what, e ? "spawn error" : "status",
		        e ? e : WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		pthread_mutex_unlock(&a->mu);
	}
	return bad;
}

static int host_start(const siterec_failover_vm *vm, void *payload)
{
	plan_cli *a = payload;
	char vj[4200], arm[4200];
	pthread_mutex_lock(&a->mu);
	uint32_t i = 0;   /* remember the point for the machine's line */
	while (i < a->n_points && strcmp(a->points[i].vm, vm->vm_id))
		i++;
	if (i < MAX_POINTS) {
		snprintf(a->points[i].vm, sizeof(a->points[i].vm), "%s", vm->vm_id);
		a->points[i].id = vm->point_id;
		a->points[i].time_ms = vm->point_time_ms;
		if (i == a->n_points)
			a->n_points++;
	}
	pthread_mutex_unlock(&a->mu);
	int rc = cli_vm_files_write(a->vm_dir, vm, vj, arm, sizeof(vj));
	if (rc) {
		pthread_mutex_lock(&a->mu);
		fprintf(stderr, "siterec: cannot write %s: %s\n", vj, strerror(errno));
		pthread_mutex_unlock(&a->mu);
	}
	if (rc == 0 && a->start_cmd) {
		char e1[300], e2[4300];
		snprintf(e1, sizeof(e1), "SITEREC_VM_NAME=%s", vm->name);
		snprintf(e2, sizeof(e2), "SITEREC_VM_JSON=%s", vj);
		const char *env[] = { e1, e2, vm->isolated ? "SITEREC_ISOLATED=1" : "SITEREC_ISOLATED=0" };
		rc = run_cmd(a, a->start_cmd, "the start command", env, 3);
	}
	return rc;
}

static int host_remove(const siterec_failover_vm *vm, void *payload)
{
	plan_cli *a = payload;
	char vj[4200], arm[4200];
	cli_vm_files(a->vm_dir, vm->name, vj, arm, sizeof(vj));
	if (a->remove_cmd) {
		char e1[300], e2[4300];
		snprintf(e1, sizeof(e1), "SITEREC_VM_NAME=%s", vm->name);
		snprintf(e2, sizeof(e2), "SITEREC_VM_JSON=%s", vj);
		const char *env[] = { e1, e2 };
		if (run_cmd(a, a->remove_cmd, "the remove command", env, 2))
			return 1;
	}
	return (unlink(vj) != 0 && errno != ENOENT) || (unlink(arm) != 0 && errno != ENOENT);
}

static int host_shutdown(const char *vm_id, void *payload)
{
	plan_cli *a = payload;
	char e1[300];
	snprintf(e1, sizeof(e1), "SITEREC_VM_ID=%s", vm_id);
	const char *env[] = { e1 };
	return run_cmd(a, a->shutdown_cmd, "the shutdown command", env, 1);
}

/* The machine's "state_dir" in the plan (else the defaults'). */
static const char *state_dir_of(const plan_cli *a, const char *vm)
{
	const cJSON *gs = cJSON_GetObjectItemCaseSensitive(a->doc, "groups"), *g, *m;
	cJSON_ArrayForEach(g, gs)
	{
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(g, "machines"))
		{
			const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "vm");
			if (cJSON_IsString(id) && !strcmp(id->valuestring, vm)) {
				const cJSON *sd = cJSON_GetObjectItemCaseSensitive(m, "state_dir");
				if (!sd)
					sd = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->doc, "defaults"),
					                                      "state_dir");
				return cJSON_IsString(sd) ? sd->valuestring : NULL;
			}
		}
	}
	return NULL;
}

static int host_replication(const char *vm_id, siterec_replication **out, void *payload)
{
	plan_cli *a = payload;
	const char *sd = state_dir_of(a, vm_id);
	*out = NULL;
	pthread_mutex_lock(&a->mu);
	if (!sd) {
		fprintf(stderr, "siterec: machine %s has no \"state_dir\" (its protection on this host)\n", vm_id);
		pthread_mutex_unlock(&a->mu);
		return 1;
	}
	if (a->n_stores == MAX_STORES) {
		pthread_mutex_unlock(&a->mu);
		return 1;
	}
	/* cli_repl_open prints its errors: under the lock, one machine at a time */
	siterec_store *st = NULL;
	char id[128];
	int rc = cli_repl_open(sd, NULL, a->ca, &st, out, id, sizeof(id));
	if (rc == 0 && strcmp(id, vm_id) != 0) {
		fprintf(stderr, "siterec: %s protects %s, not %s\n", sd, id, vm_id);
		siterec_replication_free(*out);
		*out = NULL;
		rc = 2;
	}
	if (st && rc == 0)
		a->stores[a->n_stores++] = st;   /* must outlive the handle the plan frees */
	else
		siterec_store_free(st);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- what happens, as it happens ---- */

static int on_event(const siterec_plan_event *e, void *payload)
{
	plan_cli *a = payload;
	FILE *out = a->json ? stderr : stdout;   /* --json: stdout holds the summary alone */
	pthread_mutex_lock(&a->mu);
	switch (e->kind) {
	case SITEREC_PLAN_EV_GROUP:
		a->groups_seen++;
		fprintf(out, "group %u %s: %s\n", e->group + 1, e->group_name, op_names[e->op]);
		break;
	case SITEREC_PLAN_EV_MACHINE:
		if (e->error) {
			fprintf(out, "  %s: failed after %.1f s: %s\n", e->vm_id, (double)e->elapsed_ms / 1000.0,
			        siterec_error_last()->message);
		} else {
			const vm_point *p = NULL;
			for (uint32_t i = 0; i < a->n_points && !p; i++)
				if (!strcmp(a->points[i].vm, e->vm_id))
					p = &a->points[i];
			char when[40] = "";
			if (p && p->time_ms)
				cli_iso_time(p->time_ms, when, sizeof(when));
			if (p && (e->op == SITEREC_PLAN_TEST || e->op == SITEREC_PLAN_PLANNED ||
			          e->op == SITEREC_PLAN_UNPLANNED))
				fprintf(out, "  %s: done, point %" PRIu64 " at %s (%.1f s)\n", e->vm_id, p->id, when,
				        (double)e->elapsed_ms / 1000.0);
			else
				fprintf(out, "  %s: done (%.1f s)\n", e->vm_id, (double)e->elapsed_ms / 1000.0);
		}
		break;
	case SITEREC_PLAN_EV_ACTION:
		fprintf(out, "  action %s: %s", e->action, e->error ? "failed: " : "done");
		if (e->error)
			fprintf(out, "%s", siterec_error_last()->message);
		fprintf(out, " (%.1f s)\n", (double)e->elapsed_ms / 1000.0);
		if (e->output && e->output[0]) {   /* the script's output, indented */
			const char *s = e->output;
			while (*s) {
				size_t l = strcspn(s, "\n");
				fprintf(out, "    | %.*s\n", (int)l, s);
				s += l + (s[l] == '\n');
			}
		}
		break;
	case SITEREC_PLAN_EV_PAUSED:
		fprintf(out, "paused at %s: %s\n", e->action, e->message ? e->message : "");
		break;
	}
	fflush(out);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static int on_action(const char *action, uint32_t op, const char *group, void *payload)
{
	(void)payload;
	(void)op;
	fprintf(stderr, "siterec: callback action %s of group %s: the command line has no callbacks\n", action,
	        group);
	return 1;
}

static void json_str(const char *k, const char *v, int comma)
{
	printf("\"%s\":\"", k);
	for (const unsigned char *s = (const unsigned char *)v; *s; s++)
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if (*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	printf("\"%s", comma ? "," : "");
}

static void summary(siterec_plan *p, const plan_cli *a, const char *name, double t0)
{
	siterec_plan_status s = { .version = SITEREC_PLAN_STATUS_VERSION };
	if (siterec_plan_status_get(p, &s)) {
		cli_fail("plan status");
		return;
	}
	double secs = a->verb[0] == 's' ? 0.0 : cli_now() - t0;
	const char *op = s.op < 8 && s.op ? op_names[s.op] : "none";
	const char *state = s.state < 5 ? state_names[s.state] : "?";
	char when[40] = "", started[40] = "";
	if (s.common_time_ms)
		cli_iso_time(s.common_time_ms, when, sizeof(when));
	if (s.started_ms)
		cli_iso_time(s.started_ms, started, sizeof(started));
	if (a->json) {
		printf("{");
		json_str("plan", name, 1);
		json_str("op", op, 1);
		json_str("state", state, 1);
		printf("\"group\":%u,\"groups\":%u,\"machines\":%u,\"done\":%u,\"failed\":%u,", s.group + 1, s.n_groups,
		       s.n_machines, s.machines_done, s.machines_failed);
		json_str("started", started, 1);
		json_str("common_time", when, 1);
		json_str("paused_at", s.paused_at, 1);
		json_str("error", s.error, 1);
		printf("\"duration_s\":%.3f}\n", secs);
		return;
	}
	if (s.state == SITEREC_PLAN_IDLE) {
		printf("plan %s: no run recorded (%u machines in %u groups)\n", name, s.n_machines, s.n_groups);
		return;
	}
	printf("plan %s: %s %s: %u of %u machines done, %u failed, %u groups", name, op, state, s.machines_done,
	       s.n_machines, s.machines_failed, s.n_groups);
	if (a->verb[0] != 's')
		printf(", %.1f s", secs);
	else if (started[0])
		printf(", started %s", started);
	printf("\n");
	if (when[0])
		printf("  common cut: %s\n", when);
	if (s.state == SITEREC_PLAN_PAUSED)
		printf("  paused at %s (group %u): do what it says, then: siterec plan resume %s --url %s --state %s\n",
		       s.paused_at, s.group + 1, a->plan_path, a->url, a->state);
	if (s.state == SITEREC_PLAN_FAILED)
		printf("  failed: %s\n  fix it, then: siterec plan resume %s --url %s --state %s\n", s.error,
		       a->plan_path, a->url, a->state);
	if (s.state == SITEREC_PLAN_RUNNING)
		printf("  cut short: siterec plan resume %s --url %s --state %s\n", a->plan_path, a->url, a->state);
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "siterec: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	size_t r;
	while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			char *nb = cap < (64u << 20) ? realloc(b, cap * 2 + 1) : NULL;
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!b) {
		fprintf(stderr, "siterec: %s is too large\n", path);
		return 2;
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

static int log_line(int level, const char *msg, void *payload)
{
	plan_cli *a = payload;
	if (level <= SITEREC_LOG_WARN) {   /* the events say the rest */
		pthread_mutex_lock(&a->mu);
		fprintf(stderr, "siterec: %s\n", msg);
		pthread_mutex_unlock(&a->mu);
	}
	return 0;
}

int cmd_plan(int argc, char **argv)
{
	plan_cli *a = calloc(1, sizeof(*a));
	if (!a) {
		fprintf(stderr, "siterec: out of memory\n");
		return 2;
	}
	int rc = parse(argc, argv, a);
	uint32_t op = 0;
	if (rc == 0 && a->op && !(op = op_of(a->op))) {
		fprintf(stderr, "siterec: --op '%s' is not test, cleanup, planned, unplanned, commit, failback or "
		        "cancel\n", a->op);
		rc = 2;
	}
	char *text = NULL;
	size_t len = 0;
	if (rc == 0)
		rc = read_file(a->plan_path, &text, &len);
	if (rc == 0 && !(a->doc = cJSON_ParseWithLength(text, len)))
		a->doc = cJSON_CreateObject();   /* the library says what is wrong with it */
	pthread_mutex_init(&a->mu, NULL);
	siterec_set_log(log_line, SITEREC_LOG_WARN, a);
	siterec_plan *p = NULL;
	siterec_store_options so = SITEREC_STORE_OPTIONS_INIT;
	double t0 = cli_now();
	if (rc == 0) {
		so.account_key = getenv("SITEREC_ACCOUNT_KEY");
		so.sas_token = getenv("SITEREC_SAS");
		so.ca_file = a->ca;
		siterec_plan_options o;
		siterec_plan_options_init(&o, SITEREC_PLAN_OPTIONS_VERSION);
		o.url = a->url;
		o.store_opts = &so;
		o.state_path = a->state;
		o.max_parallel = a->parallel;
		o.start = host_start;
		o.remove = host_remove;
		o.shutdown = a->shutdown_cmd ? host_shutdown : NULL;
		o.payload = a;
		o.replication = host_replication;
		o.action = on_action;
		o.event = on_event;
		o.event_payload = a;
		if (siterec_plan_open(&p, text, len, &o))
			rc = cli_fail(a->plan_path);
	}
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a->doc, "name");
	const char *name = cJSON_IsString(nm) ? nm->valuestring : "?";
	uint32_t state = 0;
	if (rc == 0 && !strcmp(a->verb, "status")) {
		summary(p, a, name, t0);
	} else if (rc == 0) {
		siterec_plan_status s = { .version = SITEREC_PLAN_STATUS_VERSION };
		siterec_plan_status_get(p, &s);
		int lrc;
		if (!strcmp(a->verb, "run") && s.state == SITEREC_PLAN_PAUSED) {
			/* a run waits at a manual action: say so, and that resume goes on */
			fprintf(a->json ? stderr : stdout, "plan %s: the %s run is paused at %s\n", name,
			        op_names[s.op], s.paused_at);
			summary(p, a, name, t0);
			rc = EXIT_PAUSED;
		} else {
			lrc = !strcmp(a->verb, "run") ? siterec_plan_run(p, op, &state) : siterec_plan_resume(p, &state);
			if (lrc)
				cli_fail(a->verb);
			summary(p, a, name, t0);
			rc = lrc ? 2 : state == SITEREC_PLAN_PAUSED ? EXIT_PAUSED : state == SITEREC_PLAN_DONE ? 0 : 2;
		}
	}
	siterec_plan_free(p);
	siterec_set_log(NULL, 0, NULL);
	for (uint32_t i = 0; i < a->n_stores; i++)
		siterec_store_free(a->stores[i]);
	pthread_mutex_destroy(&a->mu);
	cJSON_Delete(a->doc);
	free(text);
	free(a);
	return rc;
}
