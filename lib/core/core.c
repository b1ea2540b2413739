/* Version, global init, logging, options versioning, hashing. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <xxh_x86dispatch.h>
#include <xxhash.h>

#include "internal.h"

SITEREC_API const char *siterec_version(int *major, int *minor, int *patch)
{
	if (major) *major = SITEREC_VERSION_MAJOR;
	if (minor) *minor = SITEREC_VERSION_MINOR;
	if (patch) *patch = SITEREC_VERSION_PATCH;
	return SITEREC_VERSION_STRING;
}

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;

SITEREC_API int siterec_init(void)
{
	pthread_mutex_lock(&init_lock);
	int n = ++init_count;
	pthread_mutex_unlock(&init_lock);
	return n;
}

SITEREC_API int siterec_shutdown(void)
{
	pthread_mutex_lock(&init_lock);
	if (init_count > 0)
		init_count--;
	int n = init_count;
	pthread_mutex_unlock(&init_lock);
	return n;
}

/* The log hook is read on every sr_log; the lock keeps fn/payload/level coherent. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static siterec_log_fn log_fn;
static void *log_payload;
static atomic_int log_level;

SITEREC_API int siterec_set_log(siterec_log_fn fn, int max_level, void *payload)
{
	if (fn && (max_level < SITEREC_LOG_NONE || max_level > SITEREC_LOG_TRACE))
		return sr_err(SITEREC_EINVAL, "log level %d out of range 0..5", max_level);
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_payload = payload;
	atomic_store(&log_level, fn ? max_level : SITEREC_LOG_NONE);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void sr_log(int level, const char *fmt, ...)
{
	if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	siterec_log_fn fn = log_fn;
	void *payload = log_payload;
	pthread_mutex_unlock(&log_lock);
	if (fn)
		(void)fn(level, buf, payload);
}

int sr_options_copy(void *out, const void *in, const size_t *sizes, unsigned int current,
                    const char *what)
{
	if (!in)
		return 0;
	unsigned int v = *(const unsigned int *)in;
	if (v < 1 || v > current)
		return sr_err(SITEREC_EVERSION, "%s options version %u not supported (1..%u)", what, v,
		              current);
	memcpy(out, in, sizes[v]);
	*(unsigned int *)out = current;
	return 0;
}

int sr_options_init(void *opts, unsigned int version, const size_t *sizes, unsigned int current,
                    const char *what)
{
	if (!opts)
		return sr_err(SITEREC_EINVAL, "%s options pointer is NULL", what);
	if (version < 1 || version > current)
		return sr_err(SITEREC_EVERSION, "%s options version %u not supported (1..%u)", what,
		              version, current);
	memset(opts, 0, sizes[version]);
	*(unsigned int *)opts = version;
	return 0;
}

uint64_t sr_hash64(const void *data, size_t len)
{
	return XXH3_64bits_dispatch(data, len);
}

void sr_hash128(const void *data, size_t len, uint8_t out[16])
{
	XXH128_hash_t h = XXH3_128bits_dispatch(data, len);
	sr_put_le64(out, h.low64);
	sr_put_le64(out + 8, h.high64);
}

int sr_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

int sr_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return sr_err_os(SITEREC_EIO, e, "no random bytes from the kernel");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
