/* siterec store put|get|ls|snapshot|rm: thin wrappers over store.h.
 * An object is addressed as URL/NAME: the target URL is everything up to the last
 * '/', NAME the last path component (so names with '/' cannot be given here);
 * get takes URL/NAME@SNAPSHOT for a snapshot. Credentials come from the
 * environment (SITEREC_ACCOUNT_KEY, SITEREC_SAS), never from the command line.
 * put is a resumable upload (siterec_store_upload): its record NAME.upload stays
 * next to the disk, and rm removes both. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define CHUNK (4u << 20)

static const char *ca_file;

static int store_usage(void)
{
	fprintf(stderr,
	        "usage: siterec store [--ca FILE] put [--resume] [--raw] [--checkpoint MiB] IMAGE URL/NAME\n"
	        "       siterec store [--ca FILE] get URL/NAME[@SNAPSHOT] FILE\n"
	        "       siterec store [--ca FILE] ls URL\n"
	        "       siterec store [--ca FILE] snapshot URL/NAME\n"
	        "       siterec store [--ca FILE] rm URL/NAME\n"
	        "URL: file:///DIR or https://ACCOUNT.blob.core.windows.net/CONTAINER;\n"
	        "credentials from SITEREC_ACCOUNT_KEY or SITEREC_SAS\n"
	        "put: creates the directory or container if missing; --resume continues an\n"
	        "interrupted put of the same image (same path, size and mtime); on Azure the\n"
	        "disk is a fixed VHD (data rounded up to a MiB + footer) unless --raw;\n"
	        "--checkpoint: record progress every MiB read (default 256)\n");
	return 1;
}

static int open_url(siterec_store **st, const char *url, uint32_t flags, siterec_progress_fn progress,
                    void *payload)
{
	return cli_open_store(st, url, ca_file, flags, progress, payload);
}

/* Where NAME begins in an http(s) URL: after /ACCOUNT/CONTAINER on a path-style
 * host (an IP address, localhost: the emulator), after /CONTAINER otherwise; so
 * names may hold '/' ("vm1/disks/os"). NULL: not http(s), or too short. */
static char *name_slash(char *arg)
{
	char *h = strstr(arg, "://");
	if (!h || (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0))
		return NULL;
	h += 3;
	char *p = strchr(h, '/');
	if (!p)
		return NULL;
	int path_style = strncmp(h, "localhost", 9) == 0 || h[0] == '[';
	if (!path_style) {
		path_style = 1;
		for (char *c = h; c < p && *c != ':'; c++)
			path_style &= (*c >= '0' && *c <= '9') || *c == '.';
	}
	for (int seg = path_style ? 2 : 1; p && seg > 0; seg--)
		p = strchr(p + 1, '/');
	return p;
}

/* Split URL/NAME[@SNAP] in place: *url, *name, *snap (NULL when absent). On
 * file:// the last '/' separates them. */
static int split(char *arg, char **url, char **name, char **snap)
{
	char *slash = name_slash(arg);
	if (!slash)
		slash = strrchr(arg, '/');
	if (!slash || !slash[1] || slash == arg) {
		fprintf(stderr, "siterec: '%s' is not URL/NAME\n", arg);
		return -1;
	}
	*slash = 0;
	*url = arg;
	*name = slash + 1;
	if (snap) {
		char *at = strchr(*name, '@');
		*snap = NULL;
		if (at) {
			*at = 0;
			*snap = at + 1;
		}
	}
	return 0;
}

static int progress_line(uint64_t done, uint64_t total, double t0)
{
	double s = cli_now() - t0;
	fprintf(stderr, "\r%" PRIu64 " / %" PRIu64 " MiB  %.0f MiB/s ", done >> 20, total >> 20,
	        s > 0 ? (double)done / 1048576.0 / s : 0.0);
	return 0;
}

static int put_progress(uint64_t done, uint64_t total, void *t0)
{
	return progress_line(done, total, *(double *)t0);
}

/* The image's identity for --resume: its absolute path, size and mtime. */
static int source_id(const char *image, char *out, size_t cap)
{
	char *abs = realpath(image, NULL);
	struct stat sb;
	if (!abs || stat(abs, &sb) != 0) {
		fprintf(stderr, "siterec: %s: %s\n", image, strerror(errno));
		free(abs);
		return -1;
	}
	/* source ids are at most 1024 bytes: a very long path keeps its tail */
	size_t n = strlen(abs);
	snprintf(out, cap, "%s%s size=%lld mtime=%lld.%09ld", n > 900 ? "..." : "",
	         n > 900 ? abs + n - 900 : abs, (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
	         (long)sb.st_mtim.tv_nsec);
	free(abs);
	return 0;
}

static int store_put(int resume, int raw, uint64_t checkpoint_mib, const char *image, char *target)
{
	char *url, *name;
	if (split(target, &url, &name, NULL))
		return 1;
	/* Azure disks are attached as fixed VHDs; a directory target keeps the raw bytes */
	int azure = strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
	char id[1024];
	if (source_id(image, id, sizeof(id)))
		return 2;
	siterec_disk *d = NULL;
	siterec_store *st = NULL;
	int rc = 0;
	if (siterec_disk_open(&d, image, NULL))
		return cli_fail(image);
	siterec_disk_info info;
	memset(&info, 0, sizeof(info));
	info.version = SITEREC_DISK_INFO_VERSION;
	if (siterec_disk_info_get(d, &info)) {
		rc = cli_fail(image);
		goto out;
	}
	double t0 = cli_now();
	if ((rc = open_url(&st, url, SITEREC_STORE_CREATE, put_progress, &t0)))
		goto out;
	siterec_store_upload_options o;
	siterec_store_upload_options_init(&o, SITEREC_STORE_UPLOAD_OPTIONS_VERSION);
	o.flags = (resume ? SITEREC_STORE_UPLOAD_RESUME : 0) |
	          (azure && !raw ? SITEREC_STORE_UPLOAD_VHD : 0);
	o.source_id = id;
	o.checkpoint_bytes = checkpoint_mib << 20;
	siterec_store_upload_stats stats;
	memset(&stats, 0, sizeof(stats));
	stats.version = SITEREC_STORE_UPLOAD_STATS_VERSION;
	if (siterec_store_upload(st, name, info.virtual_size, siterec_disk_read_cb,
	                         siterec_disk_block_status_cb, d, &o, &stats)) {
		fprintf(stderr, "\n");
		rc = cli_fail(name);
		goto out;
	}
	if (stats.already_complete)
		fprintf(stderr, "%s: already complete, nothing sent\n", name);
	else if (stats.resumed_from)
		fprintf(stderr, "\n%s: resumed at %" PRIu64 ": %" PRIu64 " bytes of data sent\n", name,
		        stats.resumed_from, stats.bytes_sent);
	else
		fprintf(stderr, "\n%s: %" PRIu64 " bytes of data sent\n", name, stats.bytes_sent);
out:
	siterec_store_free(st);
	siterec_disk_free(d);
	return rc;
}

typedef struct get_ctx {
	siterec_store *st;
	const char *name, *snap;
	int fd;
	uint8_t *buf;
	uint64_t size;
	double t0;
} get_ctx;

static int get_extent(uint64_t off, uint64_t len, void *payload)
{
	get_ctx *g = payload;
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		if (siterec_store_read(g->st, g->name, g->snap, g->buf, n, off))
			return cli_fail(g->name);
		if (pwrite(g->fd, g->buf, n, (off_t)off) != (ssize_t)n) {
			perror("siterec: write");
			return 2;
		}
		off += n;
		len -= n;
		progress_line(off, g->size, g->t0);
	}
	return 0;
}

static int store_get(char *source, const char *file)
{
	get_ctx g = { 0 };
	char *url, *name, *snap;
	if (split(source, &url, &name, &snap))
		return 1;
	int rc = open_url(&g.st, url, 0, NULL, NULL);
	if (rc)
		return rc;
	g.name = name;
	g.snap = snap;
	g.fd = -1;
	if (siterec_store_disk_size(g.st, name, snap, &g.size)) {
		rc = cli_fail(name);
		goto out;
	}
	g.fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (g.fd < 0 || ftruncate(g.fd, (off_t)g.size) != 0) {
		perror(file);
		rc = 2;
		goto out;
	}
	g.buf = malloc(CHUNK);
	g.t0 = cli_now();
	if (!g.buf) {
		rc = 2;
		goto out;
	}
	int r = siterec_store_ranges(g.st, name, snap, 0, 0, get_extent, &g);
	if (r) {
		rc = siterec_error_last()->callback_code ? siterec_error_last()->callback_code
		                                         : cli_fail(name);
		goto out;
	}
	if (fsync(g.fd) != 0) {
		perror(file);
		rc = 2;
		goto out;
	}
	fprintf(stderr, "\n");
out:
	if (g.fd >= 0)
		close(g.fd);
	free(g.buf);
	siterec_store_free(g.st);
	return rc;
}

static int ls_cb(const char *name, int kind, uint64_t size, const char *snap, void *payload)
{
	(void)payload;
	const char *k = kind == SITEREC_STORE_KIND_DISK ? "disk"
	                : kind == SITEREC_STORE_KIND_SNAPSHOT ? "snapshot" : "doc";
	printf("%-8s %14" PRIu64 "  %s%s%s\n", k, size, name, snap ? "@" : "", snap ? snap : "");
	return 0;
}

/* Delete a disk, its snapshots and its upload record (absent is fine). */
static int store_rm(siterec_store *st, const char *name)
{
	char rec[512];
	snprintf(rec, sizeof(rec), "%s.upload", name);
	if (siterec_store_disk_delete(st, name, SITEREC_STORE_DELETE_SNAPSHOTS, NULL))
		return cli_fail(name);
	if (siterec_store_doc_delete(st, rec, NULL) && siterec_error_last()->code != SITEREC_ENOTFOUND)
		return cli_fail(rec);
	return 0;
}

int cmd_store(int argc, char **argv)
{
	int i = 1;
	ca_file = NULL;
	if (i + 1 < argc && strcmp(argv[i], "--ca") == 0) {
		ca_file = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		return store_usage();
	const char *cmd = argv[i++];
	if (strcmp(cmd, "put") == 0) {
		int resume = 0, raw = 0;
		uint64_t checkpoint = 256;
		for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
			char *end;
			if (strcmp(argv[i], "--resume") == 0)
				resume = 1;
			else if (strcmp(argv[i], "--raw") == 0)
				raw = 1;
			else if (strcmp(argv[i], "--checkpoint") == 0 && i + 1 < argc &&
			         (checkpoint = strtoull(argv[i + 1], &end, 10)) > 0 && !*end &&
			         checkpoint < (1ull << 40))
				i++;
			else
				return store_usage();
		}
		if (argc - i != 2)
			return store_usage();
		return store_put(resume, raw, checkpoint, argv[i], argv[i + 1]);
	}
	int n = argc - i;
	char **a = argv + i;
	if (strcmp(cmd, "get") == 0 && n == 2)
		return store_get(a[0], a[1]);
	if (strcmp(cmd, "ls") == 0 && n == 1) {
		siterec_store *st;
		int rc = open_url(&st, a[0], 0, NULL, NULL);
		if (rc)
			return rc;
		if (siterec_store_list(st, NULL, ls_cb, NULL))
			rc = cli_fail("store ls");
		siterec_store_free(st);
		return rc;
	}
	if ((strcmp(cmd, "snapshot") == 0 || strcmp(cmd, "rm") == 0) && n == 1) {
		char *url, *name;
		siterec_store *st;
		if (split(a[0], &url, &name, NULL))
			return 1;
		int rc = open_url(&st, url, 0, NULL, NULL);
		if (rc)
			return rc;
		if (cmd[0] == 's') {
			char id[SITEREC_STORE_ID_MAX];
			if (siterec_store_snapshot(st, name, id, sizeof(id)))
				rc = cli_fail(name);
			else
				printf("%s\n", id);
		} else {
			rc = store_rm(st, name);
		}
		siterec_store_free(st);
		return rc;
	}
	return store_usage();
}
