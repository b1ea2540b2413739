/* siterec protect / replicate / status / verify: replication (replication.h) of a
 * VM's disk images into a storage target, driven from the command line.
 *
 * The library keeps no VM description: every siterec_replication_open() must be
 * given the same one. As a convenience of this command only (not a library
 * format), protect writes the description it was given (URL, VM id, --ca, policy
 * and the --disk list, paths made absolute) to STATE_DIR/cli-vm.json, and the
 * other commands read it from there. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define MAX_DISKS 64
#define VERIFY_BLOCK (1u << 20)
#define CLI_VM_FILE "cli-vm.json"
#define CLI_VM_FORMAT 1

typedef struct vm_desc {
	char *url, *ca, *vm_id;
	uint32_t generation, interval_s, checkpoint_s, apply_delay_s;
	uint64_t retention_s;
	uint32_t n_disks;
	siterec_vm_disk disks[MAX_DISKS];
	char *ids[MAX_DISKS], *paths[MAX_DISKS]; /* owned */
} vm_desc;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int repl_usage(void)
{
	fprintf(stderr,
	        "usage: siterec protect URL VM STATE_DIR --disk ID:PATH[:os|data][:exclude] [--disk ...]\n"
	        "                       [--interval 30|300|900|0] [--retention SECONDS] [--generation 1|2]\n"
	        "                       [--checkpoint SECONDS] [--apply-delay SECONDS]\n"
	        "                       [--ca FILE]\n"
	        "       siterec replicate STATE_DIR [--cycles N [--apply] | --follow] [--url URL] [--ca FILE]\n"
	        "       siterec status STATE_DIR [--url URL] [--ca FILE]\n"
	        "       siterec resync STATE_DIR [--url URL] [--ca FILE]\n"
	        "       siterec verify STATE_DIR [--point ID] [--url URL] [--ca FILE]\n"
	        "PATH: a disk image (raw, VHD, VHDX), role data unless :os (exactly one OS disk);\n"
	        "the VM's writes must go through the journal STATE_DIR/journal (its disks: the\n"
	        "protected ones, in this order, as protect prints them). protect records the\n"
	        "description in STATE_DIR/cli-vm.json for the other commands (a CLI convenience).\n"
	        "replicate: the initial replication when pending, then N cycles (default 1), or with\n"
	        "--follow one per interval (every second when continuous) until SIGINT/SIGTERM,\n"
	        "which end it after the running step; a line per point on stdout. Cycles ship\n"
	        "logs; between them --follow applies shipped logs to the replicas in batches\n"
	        "(the policy's apply delay), retries failures with back-off and resyncs when a\n"
	        "log was lost; --apply applies all of them after the N cycles. resync compares\n"
	        "each replica with its source (64 KiB block hashes) and writes what differs.\n"
	        "verify compares each replica at a point (default: the newest) with its source\n"
	        "image: meant for a stopped workload (the source moves on after the cut).\n");
	return 2;
}

static void desc_free(vm_desc *d)
{
	free(d->url);
	free(d->ca);
	free(d->vm_id);
	for (uint32_t k = 0; k < d->n_disks; k++) {
		free(d->ids[k]);
		free(d->paths[k]);
	}
	memset(d, 0, sizeof(*d));
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Add a disk; path is made absolute (realpath). Excluded disks are never read by
 * the library, which takes their size from the caller: read it here. */
static int desc_add_disk(vm_desc *d, const char *id, const char *path, uint32_t role, int excluded)
{
	if (d->n_disks == MAX_DISKS) {
		fprintf(stderr, "siterec: at most %d disks\n", MAX_DISKS);
		return 2;
	}
	char abs[PATH_MAX];
	if (!realpath(path, abs)) {
		fprintf(stderr, "siterec: %s: %s\n", path, strerror(errno));
		return 2;
	}
	uint32_t k = d->n_disks++;
	d->ids[k] = strdup(id);
	d->paths[k] = strdup(abs);
	siterec_vm_disk *vd = &d->disks[k];
	memset(vd, 0, sizeof(*vd));
	vd->id = d->ids[k];
	vd->path = d->paths[k];
	vd->role = role;
	vd->flags = excluded ? SITEREC_VM_DISK_EXCLUDED : 0;
	if (excluded) {
		siterec_disk *img;
		siterec_disk_info info = { .version = SITEREC_DISK_INFO_VERSION };
		if (siterec_disk_open(&img, abs, NULL))
			return cli_fail(abs);
		int rc = siterec_disk_info_get(img, &info);
		siterec_disk_free(img);
		if (rc)
			return cli_fail(abs);
		vd->size = info.virtual_size;
	}
	return 0;
}

/* ID:PATH[:os|data][:exclude] (PATH may hold ':'; the suffixes are taken from the end). */
static int parse_disk_arg(vm_desc *d, const char *arg)
{
	char *s = strdup(arg), *c = strchr(s, ':'), *t;
	uint32_t role = SITEREC_DISK_ROLE_DATA;
	int excluded = 0, rc;
	if (!c || c == s || !c[1]) {
		fprintf(stderr, "siterec: --disk '%s' is not ID:PATH[:os|data][:exclude]\n", arg);
		free(s);
		return -1;
	}
	*c = 0;
	char *path = c + 1;
	if ((t = strrchr(path, ':')) && !strcmp(t, ":exclude")) {
		excluded = 1;
		*t = 0;
	}
	if ((t = strrchr(path, ':')) && (!strcmp(t, ":os") || !strcmp(t, ":data"))) {
		role = !strcmp(t, ":os") ? SITEREC_DISK_ROLE_OS : SITEREC_DISK_ROLE_DATA;
		*t = 0;
	}
	if (!*path) {
		fprintf(stderr, "siterec: --disk '%s' has no PATH\n", arg);
		free(s);
		return -1;
	}
	rc = desc_add_disk(d, s, path, role, excluded);
	free(s);
	return rc;
}

static void state_file(char *out, size_t cap, const char *state_dir)
{
	snprintf(out, cap, "%s/%s", state_dir, CLI_VM_FILE);
}

static int desc_save(const vm_desc *d, const char *state_dir)
{
	cJSON *o = cJSON_CreateObject(), *disks = cJSON_CreateArray();
	cJSON_AddStringToObject(o, "comment", "siterec CLI convenience: the VM description given to protect");
	cJSON_AddNumberToObject(o, "format", CLI_VM_FORMAT);
	cJSON_AddStringToObject(o, "url", d->url);
	if (d->ca)
		cJSON_AddStringToObject(o, "ca", d->ca);
	cJSON_AddStringToObject(o, "vm", d->vm_id);
	cJSON_AddNumberToObject(o, "generation", d->generation);
	cJSON_AddNumberToObject(o, "interval_s", d->interval_s);
	cJSON_AddNumberToObject(o, "retention_s", (double)d->retention_s);
	cJSON_AddNumberToObject(o, "checkpoint_s", d->checkpoint_s);
	cJSON_AddNumberToObject(o, "apply_delay_s", d->apply_delay_s);
	for (uint32_t k = 0; k < d->n_disks; k++) {
		const siterec_vm_disk *vd = &d->disks[k];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "id", vd->id);
		cJSON_AddStringToObject(e, "path", vd->path);
		cJSON_AddStringToObject(e, "role", vd->role == SITEREC_DISK_ROLE_OS ? "os" : "data");
		cJSON_AddBoolToObject(e, "exclude", (vd->flags & SITEREC_VM_DISK_EXCLUDED) != 0);
		cJSON_AddItemToArray(disks, e);
	}
	cJSON_AddItemToObject(o, "disks", disks);
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	state_file(path, sizeof(path), state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int ok = f && fprintf(f, "%s\n", text) > 0;
	ok = f && fclose(f) == 0 && ok && rename(tmp, path) == 0;
	free(text);
	if (!ok) {
		fprintf(stderr, "siterec: %s: %s\n", path, strerror(errno));
		return 2;
	}
	return 0;
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int desc_load(vm_desc *d, const char *state_dir)
{
	char path[PATH_MAX];
	state_file(path, sizeof(path), state_dir);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "siterec: %s: %s (not a state directory made by siterec protect)\n", path,
		        strerror(errno));
		return 2;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, m);
	fclose(f);
	fclose(m);
	cJSON *o = cJSON_Parse(text);
	free(text);
	const cJSON *disks = o ? cJSON_GetObjectItemCaseSensitive(o, "disks") : NULL;
	int rc = 0;
	memset(d, 0, sizeof(*d));
	if (!o || json_num(o, "format", 0) != CLI_VM_FORMAT || !json_str(o, "url") || !json_str(o, "vm") ||
	    !cJSON_IsArray(disks)) {
		fprintf(stderr, "siterec: %s: not a description written by siterec protect\n", path);
		rc = 2;
	} else {
		d->url = strdup(json_str(o, "url"));
		d->ca = dup_or_null(json_str(o, "ca"));
		d->vm_id = strdup(json_str(o, "vm"));
		d->generation = (uint32_t)json_num(o, "generation", 2);
		d->interval_s = (uint32_t)json_num(o, "interval_s", 300);
		d->retention_s = (uint64_t)json_num(o, "retention_s", 0);
		d->checkpoint_s = (uint32_t)json_num(o, "checkpoint_s", 0);
		d->apply_delay_s = (uint32_t)json_num(o, "apply_delay_s", 0);
		const cJSON *e;
		cJSON_ArrayForEach(e, disks) {
			const char *id = json_str(e, "id"), *p = json_str(e, "path"), *role = json_str(e, "role");
			if (!id || !p || !role) {
				fprintf(stderr, "siterec: %s: a disk lacks id, path or role\n", path);
				rc = 2;
				break;
			}
			if ((rc = desc_add_disk(d, id, p, !strcmp(role, "os") ? SITEREC_DISK_ROLE_OS :
			                        SITEREC_DISK_ROLE_DATA,
			                        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "exclude")))))
				break;
		}
	}
	cJSON_Delete(o);
	if (rc)
		desc_free(d);
	return rc;
}

static int progress(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	fprintf(stderr, "\r%" PRIu64 " / %" PRIu64 " MiB ", done >> 20, total >> 20);
	return 0;
}

static void progress_end(void)
{
	if (isatty(2))
		fprintf(stderr, "\r\033[K");
}

/* Arguments of the commands after protect: STATE_DIR and the options in allowed
 * (all take a value but --follow). */
typedef struct common_args {
	const char *state_dir, *url, *ca;
	const char *cycles, *point;
	int follow, apply;
} common_args;

static int parse_common(int argc, char **argv, common_args *a, const char *const *allowed)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strncmp(o, "--", 2) != 0) {
			if (a->state_dir)
				return repl_usage();
			a->state_dir = o;
			continue;
		}
		int ok = 0;
		for (const char *const *p = allowed; *p; p++)
			ok |= !strcmp(*p, o);
		if (!ok)
			return repl_usage();
		if (!strcmp(o, "--follow") || !strcmp(o, "--apply")) {
			*(!strcmp(o, "--follow") ? &a->follow : &a->apply) = 1;
			continue;
		}
		if (i + 1 >= argc)
			return repl_usage();
		const char *v = argv[++i];
		if (!strcmp(o, "--url"))
			a->url = v;
		else if (!strcmp(o, "--ca"))
			a->ca = v;
		else if (!strcmp(o, "--cycles"))
			a->cycles = v;
		else if (!strcmp(o, "--point"))
			a->point = v;
	}
	return a->state_dir ? 0 : repl_usage();
}

/* The description of STATE_DIR and its store (--url / --ca override the recorded ones). */
static int open_desc_store(const common_args *a, vm_desc *d, siterec_store **st)
{
	int rc = desc_load(d, a->state_dir);
	if (rc)
		return rc;
	rc = cli_open_store(st, a->url ? a->url : d->url, a->ca ? a->ca : d->ca, 0, NULL, NULL);
	if (rc)
		desc_free(d);
	return rc;
}

static void fill_vm(const vm_desc *d, siterec_vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->version = SITEREC_VM_VERSION;
	vm->generation = d->generation;
	vm->id = d->vm_id;
	vm->n_disks = d->n_disks;
	vm->disks = d->disks;
}

static void fill_opts(const vm_desc *d, const char *state_dir, siterec_store *st,
                      siterec_replication_options *o)
{
	siterec_replication_options_init(o, SITEREC_REPLICATION_OPTIONS_VERSION);
	o->state_dir = state_dir;
	o->store = st;
	o->interval_s = d->interval_s;
	o->retention_s = d->retention_s;
	o->checkpoint_s = d->checkpoint_s;
	o->apply_delay_s = d->apply_delay_s;
	if (isatty(2))
		o->progress = progress;
}

/* Open the protection of STATE_DIR (not protecting). */
static int open_repl(const common_args *a, vm_desc *d, siterec_store **st, siterec_replication **r)
{
	int rc = open_desc_store(a, d, st);
	if (rc)
		return rc;
	siterec_vm vm;
	siterec_replication_options o;
	fill_vm(d, &vm);
	fill_opts(d, a->state_dir, *st, &o);
	if (siterec_replication_open(r, &vm, &o)) {
		rc = cli_fail(a->state_dir);
		siterec_store_free(*st);
		desc_free(d);
	}
	return rc;
}

int cli_repl_open(const char *state_dir, const char *url, const char *ca, siterec_store **st,
                  siterec_replication **r, char *vm_id, size_t cap)
{
	common_args a = { .state_dir = state_dir, .url = url, .ca = ca };
	vm_desc d;
	int rc = open_repl(&a, &d, st, r);
	if (rc == 0) {
		snprintf(vm_id, cap, "%s", d.vm_id);
		desc_free(&d);
	}
	return rc;
}

int cli_repl_repath(const char *state_dir, const char *id, const char *path)
{
	vm_desc d;
	int rc = desc_load(&d, state_dir);
	if (rc)
		return rc;
	char abs[PATH_MAX];
	uint32_t k = 0;
	while (k < d.n_disks && strcmp(d.ids[k], id) != 0)
		k++;
	if (k == d.n_disks) {
		fprintf(stderr, "siterec: %s protects no disk %s\n", state_dir, id);
		rc = 2;
	} else if (!realpath(path, abs)) {
		fprintf(stderr, "siterec: %s: %s\n", path, strerror(errno));
		rc = 2;
	} else {
		free(d.paths[k]);
		d.paths[k] = strdup(abs);
		d.disks[k].path = d.paths[k];
		rc = desc_save(&d, state_dir);
	}
	desc_free(&d);
	return rc;
}

static int cmd_protect(int argc, char **argv)
{
	const char *pos[3];
	int n = 0;
	vm_desc d;
	memset(&d, 0, sizeof(d));
	d.generation = 2;
	d.interval_s = 300;
	int rc = 0;
	for (int i = 1; i < argc && !rc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;
		if (strncmp(o, "--", 2) != 0) {
			if (n == 3)
				rc = repl_usage();
			else
				pos[n++] = o;
			continue;
		}
		if (!v) {
			rc = repl_usage();
			break;
		}
		i++;
		int r;
		if (!strcmp(o, "--disk"))
			rc = (r = parse_disk_arg(&d, v)) < 0 ? repl_usage() : r;
		else if (!strcmp(o, "--interval") && !cli_parse_u64(v, &x) && (x == 0 || x == 30 || x == 300 || x == 900))
			d.interval_s = (uint32_t)x;
		else if (!strcmp(o, "--retention") && !cli_parse_u64(v, &x) && x > 0)
			d.retention_s = x;
		else if (!strcmp(o, "--checkpoint") && !cli_parse_u64(v, &x) && x <= 86400)
			d.checkpoint_s = (uint32_t)x;
		else if (!strcmp(o, "--apply-delay") && !cli_parse_u64(v, &x) && x <= 86400)
			d.apply_delay_s = (uint32_t)x;
		else if (!strcmp(o, "--generation") && !cli_parse_u64(v, &x) && (x == 1 || x == 2))
			d.generation = (uint32_t)x;
		else if (!strcmp(o, "--ca") && !d.ca)
			d.ca = realpath(v, NULL); /* recorded: absolute (NULL if missing: the open says so) */
		else
			rc = repl_usage();
	}
	if (!rc && (n != 3 || !d.n_disks))
		rc = repl_usage();
	for (int i = 1; !rc && i + 1 < argc; i++)
		if (!strcmp(argv[i], "--ca") && !d.ca) {
			fprintf(stderr, "siterec: --ca %s: cannot resolve the path\n", argv[i + 1]);
			rc = 2;
		}
	if (rc) {
		desc_free(&d);
		return rc;
	}
	const char *state_dir = pos[2];
	char path[PATH_MAX];
	state_file(path, sizeof(path), state_dir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "siterec: %s is already protected (%s exists); replicate it, or remove "
		        "the directory to protect again\n", state_dir, path);
		desc_free(&d);
		return 2;
	}
	d.url = strdup(pos[0]);
	d.vm_id = strdup(pos[1]);
	siterec_store *st = NULL;
	siterec_replication *r = NULL;
	if ((rc = cli_open_store(&st, d.url, d.ca, SITEREC_STORE_CREATE, NULL, NULL))) {
		desc_free(&d);
		return rc;
	}
	siterec_vm vm;
	siterec_replication_options o;
	fill_vm(&d, &vm);
	fill_opts(&d, state_dir, st, &o);
	o.flags = SITEREC_REPLICATION_PROTECT;
	if (siterec_replication_open(&r, &vm, &o)) {
		if (siterec_error_last()->code == SITEREC_EEXISTS)
			fprintf(stderr, "siterec: VM %s is already protected into %s\n", d.vm_id, d.url);
		rc = cli_fail(d.vm_id);
	} else if (!(rc = desc_save(&d, state_dir))) {
		printf("protected %s into %s; state %s\n", d.vm_id, d.url, state_dir);
		printf("journal %s/journal disks:", state_dir);
		for (uint32_t k = 0; k < d.n_disks; k++)
			if (!(d.disks[k].flags & SITEREC_VM_DISK_EXCLUDED))
				printf(" %s", d.disks[k].id);
		printf("\n");
	}
	siterec_replication_free(r);
	siterec_store_free(st);
	desc_free(&d);
	return rc;
}

static void print_point(const char *what, uint64_t id, uint32_t kind, uint64_t bytes, int64_t cut_ms,
                        double seconds)
{
	char when[48];
	cli_iso_time(cut_ms, when, sizeof(when));
	printf("%s: point %" PRIu64 " %s shipped %" PRIu64 " bytes cut %s in %.2f s\n", what, id,
	       cli_rp_kind_name(kind), bytes, when, seconds);
	fflush(stdout);
}

/* siterec_replication_follow() events: a line per point, applied batch, retry
 * or resync; a signal stops it at the next event. */
static int follow_event(const siterec_follow_event *ev, void *payload)
{
	(void)payload;
	switch (ev->kind) {
	case SITEREC_FOLLOW_POINT: {
		/* "in": from the cut to now (wall clock, as the cut) */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
		progress_end();
		print_point("cycle", ev->point_id, ev->cycle.kind, ev->cycle.bytes_shipped, ev->cycle.cut_time_ms,
		            wall - (double)ev->cycle.cut_time_ms / 1000.0);
		break;
	}
	case SITEREC_FOLLOW_APPLIED:
		progress_end();
		printf("applied: the replicas hold point %" PRIu64 "\n", ev->point_id);
		fflush(stdout);
		break;
	case SITEREC_FOLLOW_RETRY:
		progress_end();
		fprintf(stderr, "siterec: retry in %.1f s: %s (%s)\n", ev->delay_ms / 1000.0,
		        siterec_error_last()->message, siterec_strerror(ev->error));
		break;
	case SITEREC_FOLLOW_RESYNC:
		progress_end();
		printf("resync: %s\n", siterec_error_last()->message);
		fflush(stdout);
		break;
	default:
		break;
	}
	return stop;
}

static int cmd_replicate(int argc, char **argv)
{
	static const char *const allowed[] = { "--url", "--ca", "--cycles", "--follow", "--apply", NULL };
	common_args a;
	uint64_t cycles = 1;
	int rc = parse_common(argc, argv, &a, allowed);
	if (rc)
		return rc;
	if ((a.cycles && a.follow) || (a.apply && a.follow) || (a.cycles && cli_parse_u64(a.cycles, &cycles)))
		return repl_usage();
	vm_desc d;
	siterec_store *st;
	siterec_replication *r;
	if ((rc = open_repl(&a, &d, &st, &r)))
		return rc;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	double t0 = cli_now();
	if (siterec_replication_status_get(r, &s)) {
		rc = cli_fail(a.state_dir);
		goto out;
	}
	int initial = s.state == SITEREC_REPL_INITIAL;
	if (initial) {
		if (siterec_replication_initial(r) || siterec_replication_status_get(r, &s)) {
			progress_end();
			rc = cli_fail("initial replication");
			goto out;
		}
		progress_end();
		print_point("initial", s.last_point_id, SITEREC_RP_CRASH, s.bytes_shipped, s.last_point_time_ms,
		            cli_now() - t0);
	}
	if (a.follow) {
		/* the policy loop: cycles on the tick, batches applied between, retries, resyncs */
		if (siterec_replication_follow(r, follow_event, NULL)) {
			progress_end();
			rc = cli_fail("replication");
		}
		goto out;
	}
	for (uint64_t i = 0; !stop && i < cycles; i++) {
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		t0 = cli_now();
		if (siterec_replication_cycle(r, &res)) {
			progress_end();
			rc = cli_fail("cycle");
			goto out;
		}
		progress_end();
		if (res.point_id)
			print_point("cycle", res.point_id, res.kind, res.bytes_shipped, res.cut_time_ms,
			            cli_now() - t0);
		else
			printf("cycle: nothing written, no point\n");
	}
	if (a.apply && !stop) {
		uint64_t waiting = 0;
		t0 = cli_now();
		if (siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, &waiting)) {
			rc = cli_fail("apply");
			goto out;
		}
		siterec_replication_status_get(r, &s);
		printf("apply: the replicas hold point %" PRIu64 " (%.2f s)\n", s.applied_point_id, cli_now() - t0);
	}
out:
	siterec_replication_free(r);
	siterec_store_free(st);
	desc_free(&d);
	return rc;
}

static const char *state_name(uint32_t s)
{
	const char *n = siterec_replication_state_name(s);
	return n ? n : "unknown";
}

static void print_status(const char *vm_id, const siterec_replication_status *s)
{
	printf("vm %s\n", vm_id);
	printf("state %s%s%s\n", state_name(s->state), s->reason[0] ? ": " : "", s->reason);
	if (s->last_point_id) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
		char when[48];
		cli_iso_time(s->last_point_time_ms, when, sizeof(when));
		printf("last point %" PRIu64 " at %s, age %.1f s\n", s->last_point_id, when,
		       (double)(now_ms - s->last_point_time_ms) / 1000.0);
	} else {
		printf("last point none\n");
	}
	printf("points %" PRIu64 "\n", s->points);
	printf("bytes shipped %" PRIu64 "\n", s->bytes_shipped);
	printf("pending bytes %" PRIu64 "\n", s->pending_bytes);
	printf("applied point %" PRIu64 "\n", s->applied_point_id);
	printf("waiting bytes %" PRIu64 "\n", s->waiting_bytes);
	printf("generation %" PRIu64 "\n", s->generation);
}

static uint64_t json_dec(const cJSON *o, const char *key)
{
	const char *v = json_str(o, key);
	uint64_t x = 0;
	return v && !cli_parse_u64(v, &x) ? x : 0;
}

static int count_doc(const char *name, int kind, uint64_t size, const char *snapshot, void *payload)
{
	(void)name;
	(void)size;
	(void)snapshot;
	if (kind == SITEREC_STORE_KIND_DOC)
		++*(uint64_t *)payload;
	return 0;
}

/* While a replicator runs, it holds the VM's leases and an open here would fail
 * (SITEREC_ELEASE): read the state document (doc/formats.md, "Replication
 * state") and the catalogue instead, and sum the journal's logs not yet applied
 * (STATE_DIR/journal/DISK/SEQ.dlog, SEQ > last_applied_seq), as status_get does. */
static int status_from_target(const vm_desc *d, const char *state_dir, siterec_store *st,
                              siterec_replication_status *s)
{
	char name[128];
	void *data = NULL;
	size_t len = 0;
	snprintf(name, sizeof(name), "%s/replication", d->vm_id);
	if (siterec_store_doc_get(st, name, &data, &len, NULL, 0))
		return cli_fail(name);
	cJSON *o = cJSON_ParseWithLength(data, len);
	siterec_free(data);
	const char *state = o ? json_str(o, "state") : NULL;
	if (!state) {
		cJSON_Delete(o);
		fprintf(stderr, "siterec: %s: not a replication state document\n", name);
		return 2;
	}
	for (uint32_t k = SITEREC_REPL_INITIAL; k <= SITEREC_REPL_CRITICAL; k++)
		if (!strcmp(state, state_name(k)))
			s->state = k;
	snprintf(s->reason, sizeof(s->reason), "%s", json_str(o, "reason") ? json_str(o, "reason") : "");
	s->generation = json_dec(o, "generation");
	s->last_point_id = json_dec(o, "cycle");
	s->last_point_time_ms = (int64_t)json_dec(o, "last_cut_ms");
	s->bytes_shipped = json_dec(o, "bytes_shipped");
	s->applied_point_id = json_dec(o, "applied_point");
	uint64_t applied = json_dec(o, "last_applied_seq");
	cJSON_Delete(o);
	/* the points counted from one listing: opening the catalogue would read every
	 * point's document, each time (a status a second would load the target) */
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s/points/", d->vm_id);
	s->points = 0;
	if (siterec_store_list(st, prefix, count_doc, &s->points))
		return cli_fail(d->vm_id);
	for (uint32_t k = 0; k < d->n_disks; k++) {
		if (d->disks[k].flags & SITEREC_VM_DISK_EXCLUDED)
			continue;
		for (uint64_t seq = applied + 1;; seq++) {
			char path[PATH_MAX];
			struct stat sb;
			snprintf(path, sizeof(path), "%s/journal/%s/%020" PRIu64 ".dlog", state_dir,
			         d->disks[k].id, seq);
			if (stat(path, &sb) != 0)
				break;
			s->pending_bytes += (uint64_t)sb.st_size;
		}
	}
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const char *const allowed[] = { "--url", "--ca", NULL };
	common_args a;
	int rc = parse_common(argc, argv, &a, allowed);
	if (rc)
		return rc;
	vm_desc d;
	siterec_store *st;
	siterec_replication *r = NULL;
	if ((rc = open_desc_store(&a, &d, &st)))
		return rc;
	siterec_vm vm;
	siterec_replication_options o;
	siterec_replication_status s = { .version = SITEREC_REPLICATION_STATUS_VERSION };
	fill_vm(&d, &vm);
	fill_opts(&d, a.state_dir, st, &o);
	if (siterec_replication_open(&r, &vm, &o) == 0) {
		if (siterec_replication_status_get(r, &s))
			rc = cli_fail(a.state_dir);
	} else if (siterec_error_last()->code == SITEREC_ELEASE) {
		rc = status_from_target(&d, a.state_dir, st, &s);
		if (!rc)
			printf("replicator another process holds the VM (status read from the target)\n");
	} else {
		rc = cli_fail(a.state_dir);
	}
	if (!rc)
		print_status(d.vm_id, &s);
	siterec_replication_free(r);
	siterec_store_free(st);
	desc_free(&d);
	return rc;
}

/* Compare disk k of the point with its source image; 0 equal, 1 differing, 2 error. */
static int verify_disk(siterec_rp_catalog *cat, const siterec_rp_point *p, uint32_t index,
                       const siterec_vm_disk *vd, uint8_t *a, uint8_t *b)
{
	siterec_disk *img;
	siterec_disk_info info = { .version = SITEREC_DISK_INFO_VERSION };
	if (siterec_disk_open(&img, vd->path, NULL))
		return cli_fail(vd->path);
	if (siterec_disk_info_get(img, &info)) {
		siterec_disk_free(img);
		return cli_fail(vd->path);
	}
	int rc = 0;
	uint64_t run_off = 0, run_len = 0, n_diff = 0;
	for (uint64_t off = 0; off < info.virtual_size; off += VERIFY_BLOCK) {
		size_t len = info.virtual_size - off < VERIFY_BLOCK ? (size_t)(info.virtual_size - off) : VERIFY_BLOCK;
		if (siterec_disk_read(img, a, len, off)) {
			rc = cli_fail(vd->path);
			break;
		}
		if (siterec_rp_read(cat, p->id, index, b, len, off)) {
			rc = cli_fail(p->disks[index].disk);
			break;
		}
		int same = memcmp(a, b, len) == 0;
		if (!same && run_len && run_off + run_len == off) {
			run_len += len;
		} else if (!same) {
			if (run_len)
				printf("%s: differs at %" PRIu64 " +%" PRIu64 "\n", vd->id, run_off, run_len);
			run_off = off;
			run_len = len;
			n_diff++;
		}
	}
	if (!rc && run_len)
		printf("%s: differs at %" PRIu64 " +%" PRIu64 "\n", vd->id, run_off, run_len);
	if (!rc)
		printf("%s: %s (%" PRIu64 " bytes, point %" PRIu64 ")\n", vd->id,
		       n_diff ? "DIFFERS" : "equal", info.virtual_size, p->id);
	siterec_disk_free(img);
	return rc ? rc : n_diff ? 1 : 0;
}

static int cmd_verify(int argc, char **argv)
{
	static const char *const allowed[] = { "--url", "--ca", "--point", NULL };
	common_args a;
	uint64_t want = 0;
	int rc = parse_common(argc, argv, &a, allowed);
	if (rc)
		return rc;
	if (a.point && (cli_parse_u64(a.point, &want) || !want))
		return repl_usage();
	vm_desc d;
	siterec_store *st;
	if ((rc = open_desc_store(&a, &d, &st)))
		return rc;
	siterec_rp_catalog *cat = NULL;
	uint8_t *ba = malloc(VERIFY_BLOCK), *bb = malloc(VERIFY_BLOCK);
	siterec_rp_point p = SITEREC_RP_POINT_INIT;
	if (!ba || !bb) {
		fprintf(stderr, "siterec: out of memory\n");
		rc = 2;
	} else if (siterec_rp_open(&cat, st, d.vm_id) ||
	           (!a.point && siterec_rp_select(cat, SITEREC_RP_LATEST, 0, &want)) ||
	           siterec_rp_find(cat, want, &p)) {
		rc = cli_fail(d.vm_id);
	}
	for (uint32_t k = 0; k < d.n_disks && rc != 2; k++) {
		const siterec_vm_disk *vd = &d.disks[k];
		if (vd->flags & SITEREC_VM_DISK_EXCLUDED)
			continue;
		char name[200];
		snprintf(name, sizeof(name), "%s/disks/%s", d.vm_id, vd->id);
		uint32_t idx = 0;
		while (idx < p.n_disks && strcmp(p.disks[idx].disk, name) != 0)
			idx++;
		if (idx == p.n_disks) {
			fprintf(stderr, "siterec: point %" PRIu64 " has no disk %s\n", p.id, name);
			rc = 2;
			break;
		}
		int r = verify_disk(cat, &p, idx, vd, ba, bb);
		if (r > rc)
			rc = r;
	}
	free(ba);
	free(bb);
	siterec_rp_free(cat);
	siterec_store_free(st);
	desc_free(&d);
	return rc;
}

/* siterec resync STATE_DIR: compare every replica with its source, write what differs. */
static int cmd_resync(int argc, char **argv)
{
	static const char *const allowed[] = { "--url", "--ca", NULL };
	common_args a;
	int rc = parse_common(argc, argv, &a, allowed);
	if (rc)
		return rc;
	vm_desc d;
	siterec_store *st;
	siterec_replication *r;
	if ((rc = open_repl(&a, &d, &st, &r)))
		return rc;
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	double t0 = cli_now();
	if (siterec_replication_resync(r, &res)) {
		progress_end();
		rc = cli_fail("resync");
	} else {
		progress_end();
		print_point("resync", res.point_id, res.kind, res.bytes_shipped, res.cut_time_ms, cli_now() - t0);
	}
	siterec_replication_free(r);
	siterec_store_free(st);
	desc_free(&d);
	return rc;
}

int cmd_replication(int argc, char **argv)
{
	if (!strcmp(argv[0], "resync"))
		return cmd_resync(argc, argv);
	if (!strcmp(argv[0], "protect"))
		return cmd_protect(argc, argv);
	if (!strcmp(argv[0], "replicate"))
		return cmd_replicate(argc, argv);
	if (!strcmp(argv[0], "status"))
		return cmd_status(argc, argv);
	return cmd_verify(argc, argv);
}
