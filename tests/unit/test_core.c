/* Core: version, errors, allocator and log hooks, init refcount, options versioning. */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

static void test_version(void **state)
{
	(void)state;
	int ma = -1, mi = -1, pa = -1;
	const char *s = siterec_version(&ma, &mi, &pa);
	assert_string_equal(s, SITEREC_VERSION_STRING);
	assert_int_equal(ma, SITEREC_VERSION_MAJOR);
	assert_int_equal(mi, SITEREC_VERSION_MINOR);
	assert_int_equal(pa, SITEREC_VERSION_PATCH);
	assert_string_equal(siterec_version(NULL, NULL, NULL), SITEREC_VERSION_STRING);
	assert_int_equal(SITEREC_VERSION_NUMBER, ma * 10000 + mi * 100 + pa);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(siterec_strerror(SITEREC_OK), "success");
	assert_string_equal(siterec_strerror(SITEREC_EINVAL), "invalid argument");
	assert_string_equal(siterec_strerror(SITEREC_ECORRUPT), "corrupt data");
	assert_string_equal(siterec_strerror(SITEREC_ECRITICAL), "critical state");
	assert_string_equal(siterec_strerror(-1000), "unknown error");
	assert_string_equal(siterec_strerror(5), "unknown error");
	/* every code in the enum has its own text */
	for (int c = SITEREC_ERROR; c >= SITEREC_ECRITICAL; c--)
		assert_string_not_equal(siterec_strerror(c), "unknown error");
}

static void test_error_last(void **state)
{
	(void)state;
	siterec_error_clear();
	assert_int_equal(siterec_error_last()->code, 0);
	assert_string_equal(siterec_error_last()->message, "no error");
	th_assert_err(siterec_tracker_open(NULL, 4096, NULL), SITEREC_EINVAL);
	assert_string_equal(siterec_error_last()->service_code, "");
	assert_int_equal(siterec_error_last()->http_status, 0);
	siterec_error_clear();
	assert_int_equal(siterec_error_last()->code, 0);
}

static void *thread_err(void *arg)
{
	(void)arg;
	/* a fresh thread has no error even if another thread has one */
	return (void *)(intptr_t)siterec_error_last()->code;
}

#include <pthread.h>
static void test_error_thread_local(void **state)
{
	(void)state;
	th_assert_err(siterec_tracker_open(NULL, 4096, NULL), SITEREC_EINVAL);
	pthread_t th;
	void *ret = (void *)1;
	assert_int_equal(pthread_create(&th, NULL, thread_err, NULL), 0);
	pthread_join(th, &ret);
	assert_int_equal((intptr_t)ret, 0);
	assert_int_equal(siterec_error_last()->code, SITEREC_EINVAL);
}

static int n_malloc, n_free;
static void *cnt_malloc(size_t n, void *p) { (*(int *)p)++; n_malloc++; return malloc(n); }
static void *cnt_realloc(void *q, size_t n, void *p) { (*(int *)p)++; if (!q) n_malloc++; return realloc(q, n); }
static void cnt_free(void *q, void *p) { (void)p; if (q) n_free++; free(q); }

static void test_allocator(void **state)
{
	(void)state;
	int calls = 0;
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, cnt_malloc, cnt_realloc, cnt_free, &calls };
	assert_int_equal(siterec_set_allocator(&a), 0);
	n_malloc = n_free = 0;
	siterec_tracker *t = NULL;
	assert_int_equal(siterec_tracker_open(&t, 1ull << 30, NULL), 0);
	assert_int_equal(siterec_tracker_mark(t, 0, 4096), 0);
	siterec_tracker_free(t);
	assert_true(calls > 0);
	assert_int_equal(n_malloc, n_free);
	assert_int_equal(siterec_set_allocator(NULL), 0);

	siterec_allocator bad = a;
	bad.free_fn = NULL;
	th_assert_err(siterec_set_allocator(&bad), SITEREC_EINVAL);
	bad = a;
	bad.version = 99;
	th_assert_err(siterec_set_allocator(&bad), SITEREC_EVERSION);
}

static void *fail_malloc(size_t n, void *p) { (void)n; (void)p; return NULL; }
static void *fail_realloc(void *q, size_t n, void *p) { (void)q; (void)n; (void)p; return NULL; }

static void test_allocator_failure(void **state)
{
	(void)state;
	siterec_allocator a = { SITEREC_ALLOCATOR_VERSION, fail_malloc, fail_realloc, cnt_free, NULL };
	assert_int_equal(siterec_set_allocator(&a), 0);
	siterec_tracker *t = (siterec_tracker *)0x1;
	int rc = siterec_tracker_open(&t, 1ull << 30, NULL);
	assert_int_equal(siterec_set_allocator(NULL), 0);
	assert_int_equal(rc, SITEREC_ENOMEM);
	assert_null(t);
}

struct logcap { int n; int max_seen; char last[256]; };
static int cap_log(int level, const char *msg, void *p)
{
	struct logcap *c = p;
	c->n++;
	if (level > c->max_seen)
		c->max_seen = level;
	strncpy(c->last, msg, sizeof(c->last) - 1);
	return 0;
}

static void test_log_hook(void **state)
{
	(void)state;
	struct logcap c = { 0, 0, "" };
	assert_int_equal(siterec_set_log(cap_log, SITEREC_LOG_DEBUG, &c), 0);
	/* errors are logged at debug level */
	th_assert_err(siterec_tracker_open(NULL, 4096, NULL), SITEREC_EINVAL);
	assert_true(c.n >= 1);
	assert_true(c.max_seen <= SITEREC_LOG_DEBUG);
	assert_non_null(strstr(c.last, siterec_error_last()->message));
	int before = c.n;
	assert_int_equal(siterec_set_log(cap_log, SITEREC_LOG_ERROR, &c), 0);
	th_assert_err(siterec_tracker_open(NULL, 4096, NULL), SITEREC_EINVAL);
	assert_int_equal(c.n, before);
	th_assert_err(siterec_set_log(cap_log, 9, &c), SITEREC_EINVAL);
	assert_int_equal(siterec_set_log(NULL, 0, NULL), 0);
}

static void test_init_refcount(void **state)
{
	(void)state;
	int a = siterec_init();
	int b = siterec_init();
	assert_true(a >= 1);
	assert_int_equal(b, a + 1);
	assert_int_equal(siterec_shutdown(), a);
	assert_int_equal(siterec_shutdown(), a - 1);
}

static void test_options_versioning(void **state)
{
	(void)state;
	siterec_tracker_options to;
	assert_int_equal(siterec_tracker_options_init(&to, SITEREC_TRACKER_OPTIONS_VERSION), 0);
	assert_int_equal(to.version, SITEREC_TRACKER_OPTIONS_VERSION);
	assert_int_equal(to.block_size, 0);
	assert_null(to.state_path);
	th_assert_err(siterec_tracker_options_init(&to, 0), SITEREC_EVERSION);
	th_assert_err(siterec_tracker_options_init(&to, SITEREC_TRACKER_OPTIONS_VERSION + 1),
	              SITEREC_EVERSION);
	th_assert_err(siterec_tracker_options_init(NULL, 1), SITEREC_EINVAL);

	siterec_tracker_options future = SITEREC_TRACKER_OPTIONS_INIT;
	future.version = 1000;
	siterec_tracker *t = NULL;
	th_assert_err(siterec_tracker_open(&t, 1 << 20, &future), SITEREC_EVERSION);
	assert_null(t);

	siterec_dlog_options dopt;
	assert_int_equal(siterec_dlog_options_init(&dopt, SITEREC_DLOG_OPTIONS_VERSION), 0);
	assert_int_equal(dopt.version, SITEREC_DLOG_OPTIONS_VERSION);
	siterec_hashscan_options hopt;
	assert_int_equal(siterec_hashscan_options_init(&hopt, SITEREC_HASHSCAN_OPTIONS_VERSION), 0);
	assert_int_equal(hopt.version, SITEREC_HASHSCAN_OPTIONS_VERSION);
	th_assert_err(siterec_dlog_options_init(&dopt, 7), SITEREC_EVERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_error_last),
		cmocka_unit_test(test_error_thread_local),
		cmocka_unit_test(test_allocator),
		cmocka_unit_test(test_allocator_failure),
		cmocka_unit_test(test_log_hook),
		cmocka_unit_test(test_init_refcount),
		cmocka_unit_test(test_options_versioning),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
