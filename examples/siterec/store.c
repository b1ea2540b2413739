/* siterec store put|get|ls|snapshot|rm: thin wrappers over store.h.
 * An object is addressed as URL/NAME: the target URL is everything up to the last
 * '/', NAME the last path component (so names with '/' cannot be given here);
 * get takes URL/NAME@SNAPSHOT for a snapshot. Credentials come from the
 * environment (SITEREC_ACCOUNT_KEY, SITEREC_SAS), never from the command line. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CHUNK (4u << 20)

static const char *ca_file;

static int store_usage(void)
{
	fprintf(stderr,
	        "usage: siterec store [--ca FILE] put IMAGE URL/NAME\n"
	        "       siterec store [--ca FILE] get URL/NAME[@SNAPSHOT] FILE\n"
	        "       siterec store [--ca FILE] ls URL\n"
	        "       siterec store [--ca FILE] snapshot URL/NAME\n"
	        "       siterec store [--ca FILE] rm URL/NAME\n"
	        "URL: file:///DIR or https://ACCOUNT.blob.core.windows.net/CONTAINER;\n"
	        "credentials from SITEREC_ACCOUNT_KEY or SITEREC_SAS\n");
	return 1;
}

static int open_url(siterec_store **st, const char *url, uint32_t flags)
{
	siterec_store_options o;
	siterec_store_options_init(&o, SITEREC_STORE_OPTIONS_VERSION);
	o.flags = flags;
	o.account_key = getenv("SITEREC_ACCOUNT_KEY");
	o.sas_token = getenv("SITEREC_SAS");
	o.ca_file = ca_file;
	if (siterec_store_open(st, url, &o))
		return cli_fail("store open");
	return 0;
}

/* Split URL/NAME[@SNAP] in place: *url, *name, *snap (NULL when absent). */
static int split(char *arg, char **url, char **name, char **snap)
{
	char *slash = strrchr(arg, '/');
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

static int store_put(const char *image, char *target)
{
	char *url, *name;
	if (split(target, &url, &name, NULL))
		return 1;
	siterec_disk *d = NULL;
	siterec_store *st = NULL;
	siterec_store_writer *w = NULL;
	uint8_t *buf = NULL;
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
	if ((rc = open_url(&st, url, 0)))
		goto out;
	if (siterec_store_disk_create(st, name, info.virtual_size) ||
	    siterec_store_writer_open(&w, st, name, NULL)) {
		rc = cli_fail(name);
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		fprintf(stderr, "siterec: out of memory\n");
		rc = 2;
		goto out;
	}
	uint64_t size = info.virtual_size, off = 0, sent = 0;
	double t0 = cli_now();
	while (off < size) {
		uint64_t run;
		int alloc;
		if (siterec_disk_block_status(d, off, size - off, &run, &alloc)) {
			rc = cli_fail(image);
			goto out;
		}
		/* unallocated runs stay holes of the fresh remote disk */
		for (uint64_t p = off; alloc && p < off + run;) {
			size_t n = off + run - p < CHUNK ? (size_t)(off + run - p) : CHUNK;
			size_t wn = (n + 511) & ~(size_t)511;   /* the virtual size may end mid-sector */
			memset(buf + n, 0, wn - n);
			if (siterec_disk_read(d, buf, n, p)) {
				rc = cli_fail(image);
				goto out;
			}
			if (siterec_store_writer_write(w, buf, wn, p)) {
				rc = cli_fail(name);
				goto out;
			}
			p += n;
			sent += n;
			progress_line(p, size, t0);
		}
		off += run;
	}
	if (siterec_store_writer_finish(w)) {
		rc = cli_fail(name);
		goto out;
	}
	fprintf(stderr, "\n%s: %" PRIu64 " bytes of data sent\n", name, sent);
out:
	free(buf);
	siterec_store_writer_free(w);
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
	int rc = open_url(&g.st, url, 0);
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
	int n = argc - i;
	char **a = argv + i;
	if (strcmp(cmd, "put") == 0 && n == 2)
		return store_put(a[0], a[1]);
	if (strcmp(cmd, "get") == 0 && n == 2)
		return store_get(a[0], a[1]);
	if (strcmp(cmd, "ls") == 0 && n == 1) {
		siterec_store *st;
		int rc = open_url(&st, a[0], 0);
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
		int rc = open_url(&st, url, 0);
		if (rc)
			return rc;
		if (cmd[0] == 's') {
			char id[SITEREC_STORE_ID_MAX];
			if (siterec_store_snapshot(st, name, id, sizeof(id)))
				rc = cli_fail(name);
			else
				printf("%s\n", id);
		} else if (siterec_store_disk_delete(st, name, SITEREC_STORE_DELETE_SNAPSHOTS, NULL)) {
			rc = cli_fail(name);
		}
		siterec_store_free(st);
		return rc;
	}
	return store_usage();
}
