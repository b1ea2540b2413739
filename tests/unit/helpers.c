#include "helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *th_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/siterec-test-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static int rm_cb(const char *p, const struct stat *s, int flag, struct FTW *f)
{
	(void)s; (void)flag; (void)f;
	return remove(p);
}

void th_tmpdir_remove(char *dir)
{
	if (!dir)
		return;
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

char *th_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

uint64_t th_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void th_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	uint8_t *p = buf;
	while (len >= 8) {
		uint64_t v = th_rand(&s);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	while (len--)
		*p++ = (uint8_t)th_rand(&s);
}

int th_make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

int th_files_equal(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	assert_non_null(fa);
	assert_non_null(fb);
	static char ba[65536], bb[65536];
	int diff = 0;
	for (;;) {
		size_t na = fread(ba, 1, sizeof(ba), fa);
		size_t nb = fread(bb, 1, sizeof(bb), fb);
		if (na != nb || memcmp(ba, bb, na) != 0) {
			diff = 1;
			break;
		}
		if (na == 0)
			break;
	}
	fclose(fa);
	fclose(fb);
	return diff;
}

long long th_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	return (long long)st.st_size;
}

void th_flip_bit(const char *path, uint64_t off, int bit)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

void th_truncate(const char *path, uint64_t len)
{
	assert_int_equal(truncate(path, (off_t)len), 0);
}

void th_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	assert_int_equal(rc, 0);
}

void *th_read_file(const char *path, size_t *len)
{
	long long n = th_file_size(path);
	assert_true(n >= 0);
	uint8_t *b = malloc((size_t)n + 1);
	assert_non_null(b);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, (size_t)n, 0), n);
	close(fd);
	*len = (size_t)n;
	return b;
}

void th_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

int th_azurite_start(const char *who, const char *root, const char *dir, const char *cert,
                     const char *key, int *port, long *pid)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "%s/scripts/azurite.sh", root);
	if (access(cmd, X_OK) != 0) {
		fprintf(stderr, "%s: %s missing\n", who, cmd);
		return -1;
	}
	if (cert && key)
		snprintf(cmd, sizeof(cmd), "'%s/scripts/azurite.sh' start '%s' '%s' '%s'", root, dir, cert,
		         key);
	else
		snprintf(cmd, sizeof(cmd), "'%s/scripts/azurite.sh' start '%s'", root, dir);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	int n = fscanf(f, "%d %ld", port, pid);
	int st = pclose(f);
	if (n != 2 || st != 0) {
		fprintf(stderr, "%s: Azurite did not start (installed by scripts/setup.sh?)\n", who);
		return -1;
	}
	return 0;
}

void th_azurite_stop(const char *root, long pid)
{
	if (pid <= 0)
		return;
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s/scripts/azurite.sh' stop %ld", root, pid);
	if (system(cmd) != 0)
		kill((pid_t)pid, SIGTERM);
}

int th_extent_cb(uint64_t off, uint64_t len, void *payload)
{
	th_extents *e = payload;
	if (e->n < TH_EXTENTS_MAX) {
		e->off[e->n] = off;
		e->len[e->n] = len;
	}
	e->n++;
	return 0;
}

int th_azurite_group_start(th_azurite *az, const char *who)
{
	if (th_source_root(az->root, sizeof(az->root), who) != 0)
		return -1;
	az->dir = th_tmpdir();
	char azdir[4200];
	snprintf(azdir, sizeof(azdir), "%s/az", az->dir);
	return th_azurite_start(who, az->root, azdir, NULL, NULL, &az->port, &az->pid);
}

void th_azurite_group_stop(th_azurite *az)
{
	th_azurite_stop(az->root, az->pid);
	if (az->dir)
		th_tmpdir_remove(az->dir);
	az->dir = NULL;
	az->pid = 0;
}

siterec_store *th_store_open(const th_azurite *az, int azure, const char *name)
{
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	char url[4400];
	o.flags = SITEREC_STORE_CREATE;
	if (azure) {
		o.flags |= SITEREC_STORE_ALLOW_HTTP;
		o.account_key = TH_AZURITE_KEY;
		o.max_retries = 2;
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/devstoreaccount1/%s", az->port, name);
	} else {
		snprintf(url, sizeof(url), "file://%s/%s", az->dir, name);
	}
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url, &o);
	if (rc)
		fprintf(stderr, "open %s: %s\n", url, siterec_error_last()->message);
	assert_int_equal(rc, 0);
	return st;
}

int th_source_root(char *out, size_t cap, const char *who)
{
	const char *root = getenv("SITEREC_SOURCE_ROOT");
	if (root && *root) {
		snprintf(out, cap, "%s", root);
		return 0;
	}
	/* __FILE__ may be relative to the build dir: only usable when absolute */
	snprintf(out, cap, "%s", __FILE__);
	char *p = strstr(out, "/tests/unit/");
	if (out[0] != '/' || !p) {
		fprintf(stderr, "%s: set SITEREC_SOURCE_ROOT to the source tree\n", who);
		return -1;
	}
	*p = 0;
	return 0;
}

void th_lease_expiry(siterec_store *st, const char *first, const char *second, unsigned sleep_s)
{
	char l1[SITEREC_STORE_LEASE_MAX], l2[SITEREC_STORE_LEASE_MAX];
	uint8_t a[4096], b[4096], got[4096];
	th_fill(a, sizeof(a), 21);
	th_fill(b, sizeof(b), 22);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 15, first, l1, sizeof(l1)), 0);
	assert_string_equal(l1, first);
	th_assert_err(siterec_store_lease_acquire(st, "d", 15, second, l2, sizeof(l2)), SITEREC_ELEASE);
	siterec_store_writer *old = NULL, *w = NULL;
	assert_int_equal(siterec_store_writer_open(&old, st, "d", l1), 0);
	assert_int_equal(siterec_store_writer_write(old, a, sizeof(a), 0), 0);
	assert_int_equal(siterec_store_writer_finish(old), 0);

	sleep(sleep_s);
	assert_int_equal(siterec_store_lease_acquire(st, "d", 15, second, l2, sizeof(l2)), 0);
	assert_string_equal(l2, second);
	th_assert_err(siterec_store_lease_renew(st, "d", l1), SITEREC_ELEASE);
	th_assert_err(siterec_store_lease_release(st, "d", l1), SITEREC_ELEASE);
	th_assert_err(siterec_store_disk_delete(st, "d", 0, l1), SITEREC_ELEASE);
	/* the old id's writer: its batch fails, and every write after that */
	assert_int_equal(siterec_store_writer_write(old, b, sizeof(b), 8192), 0); /* only queued */
	th_assert_err(siterec_store_writer_finish(old), SITEREC_ELEASE);
	th_assert_err(siterec_store_writer_write(old, b, sizeof(b), 8192), SITEREC_ELEASE);
	siterec_store_writer_free(old);
	/* a writer opened now with the old id: refused at once or at its finish */
	int rc = siterec_store_writer_open(&w, st, "d", l1);
	if (rc == 0) {
		assert_int_equal(siterec_store_writer_write(w, b, sizeof(b), 8192), 0);
		th_assert_err(siterec_store_writer_finish(w), SITEREC_ELEASE);
		siterec_store_writer_free(w);
	} else {
		th_assert_err(rc, SITEREC_ELEASE);
	}
	/* fenced: the stale writer's data never landed */
	memset(a, 0, sizeof(a));
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 8192), 0);
	assert_memory_equal(got, a, sizeof(got));
	/* the new id works */
	assert_int_equal(siterec_store_writer_open(&w, st, "d", l2), 0);
	assert_int_equal(siterec_store_writer_write(w, b, sizeof(b), 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "d", NULL, got, sizeof(got), 0), 0);
	assert_memory_equal(got, b, sizeof(b));
	assert_int_equal(siterec_store_lease_renew(st, "d", l2), 0);
	assert_int_equal(siterec_store_lease_release(st, "d", l2), 0);
}

void th_check_merged(siterec_store *st, const char *name, int merged)
{
	th_extents ex;
	memset(&ex, 0, sizeof(ex));
	assert_int_equal(siterec_store_ranges(st, name, NULL, 0, 0, th_extent_cb, &ex), 0);
	if (!merged) {
		assert_int_equal(ex.n, 64);
		return;
	}
	assert_int_equal(ex.n, 2);
	assert_int_equal(ex.off[0], 0);
	assert_int_equal(ex.len[0], 31 * 64 * 1024 + 4096);
	assert_int_equal(ex.off[1], 3 << 20);
	assert_int_equal(ex.len[1], 31 * 64 * 1024 + 4096);
}
