/* Shared fixtures for the unit tests (test-only code). */
#ifndef SITEREC_TEST_HELPERS_H
#define SITEREC_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <siterec/siterec.h>

/* A fresh empty directory under $TMPDIR (or /tmp); removed by th_tmpdir_remove. */
char *th_tmpdir(void);
void th_tmpdir_remove(char *dir);
/* dir + "/" + name, malloc'd. */
char *th_path(const char *dir, const char *name);
/* Deterministic pseudo-random bytes (xorshift) from seed. */
void th_fill(void *buf, size_t len, uint64_t seed);
uint64_t th_rand(uint64_t *state);
/* Create a file of `size` bytes (sparse) and return an O_RDWR fd. */
int th_make_file(const char *path, uint64_t size);
/* Whole-file compare: 0 when equal. */
int th_files_equal(const char *a, const char *b);
/* Whole file into a new malloc'd buffer (one spare byte); asserts on failure. */
void *th_read_file(const char *path, size_t *len);
/* Create or truncate path and write data; asserts on failure. */
void th_write_file(const char *path, const void *data, size_t len);
/* Size of a file, or -1. */
long long th_file_size(const char *path);
/* Flip one bit of a file at byte offset off. */
void th_flip_bit(const char *path, uint64_t off, int bit);
/* Truncate a file to len bytes. */
void th_truncate(const char *path, uint64_t len);
/* Run a shell command made from fmt (qemu-img, qemu-io, ...); asserts it exits 0. */
void th_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The source tree: $SITEREC_SOURCE_ROOT (set by meson), else from an absolute
 * __FILE__. 0, or -1 with a message naming `who`. */
int th_source_root(char *out, size_t cap, const char *who);
/* Start Azurite (scripts/azurite.sh under root) with its data in dir, over HTTPS
 * when cert and key are given; fills port and pid. 0, or -1 with a message on
 * stderr naming who (`who`) could not start it. */
int th_azurite_start(const char *who, const char *root, const char *dir, const char *cert,
                     const char *key, int *port, long *pid);
/* Stop it by PID (never by name). */
void th_azurite_stop(const char *root, long pid);
/* The emulator's well-known account (devstoreaccount1) key. */
#define TH_AZURITE_KEY \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* Azurite over HTTP for a whole test group: a fresh th_tmpdir() (dir; Azurite's
 * data in dir/az, the rest free for the tests), the source root, port and pid.
 * th_azurite_group_start returns 0 or -1 (message naming who) for a cmocka group
 * setup; th_azurite_group_stop stops it and removes dir. */
typedef struct th_azurite {
	char *dir;
	char root[4096];
	int port;
	long pid;
} th_azurite;
int th_azurite_group_start(th_azurite *az, const char *who);
void th_azurite_group_stop(th_azurite *az);
/* Defines `static th_azurite var` and the cmocka group_setup/group_teardown that
 * start and stop it for the test program `who`. */
#define TH_AZURITE_GROUP(var, who) \
	static th_azurite var; \
	static int group_setup(void **state) \
	{ \
		(void)state; \
		return th_azurite_group_start(&var, who); \
	} \
	static int group_teardown(void **state) \
	{ \
		(void)state; \
		th_azurite_group_stop(&var); \
		return 0; \
	}
/* A store of a group's target, created if missing: container `name` on its
 * Azurite (azure != 0; max_retries 2) or the directory az->dir/name (file://).
 * Asserts on failure. */
siterec_store *th_store_open(const th_azurite *az, int azure, const char *name);
/* Lease expiry, for any store target: on its unleased disk "d" (16 KiB or more), a
 * 15 s lease taken as `first` keeps `second` out; after it ran out (a sleep of
 * sleep_s seconds) `second` takes it, and `first` can no longer renew, release,
 * delete or write (a writer opened before the expiry fails its finish and every
 * write after, and none of its data lands), while `second` can. Leaves "d"
 * unleased. */
void th_lease_expiry(siterec_store *st, const char *first, const char *second, unsigned sleep_s);
/* Extents gathered by th_extent_cb (a siterec_extent_fn, payload a th_extents
 * zeroed first): n counts every call, the first TH_EXTENTS_MAX are kept. */
#define TH_EXTENTS_MAX 256
typedef struct th_extents {
	uint64_t off[TH_EXTENTS_MAX], len[TH_EXTENTS_MAX];
	size_t n;
} th_extents;
int th_extent_cb(uint64_t off, uint64_t len, void *payload);

/* The merge test's pattern (64 writes of 4 KiB every 64 KiB, in two groups of
 * 32 at 0 and 3 MiB) left 2 data extents when merged, 64 when not. */
void th_check_merged(siterec_store *st, const char *name, int merged);
/* Assert a call failed with code and left an error message. */
#define th_assert_err(expr, want) do { \
	int th_rc_ = (expr); \
	assert_int_equal(th_rc_, (want)); \
	assert_int_equal(siterec_error_last()->code, (want)); \
	assert_non_null(siterec_error_last()->message); \
	assert_true(siterec_error_last()->message[0] != '\0'); \
} while (0)

#endif
