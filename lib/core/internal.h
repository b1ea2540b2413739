/* Internal helpers shared by every layer. Not installed. */
#ifndef SITEREC_INTERNAL_H
#define SITEREC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "siterec/common.h"

#if defined(__GNUC__)
#define SR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SR_LIKELY(x) __builtin_expect(!!(x), 1)
#define SR_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SR_PRINTF(a, b)
#define SR_LIKELY(x) (x)
#define SR_UNLIKELY(x) (x)
#endif

/* ---- errors: every failing public call sets the thread's last error ---- */

/* Set the last error and return code (so: `return sr_err(SITEREC_EINVAL, "...")`). */
int sr_err(int code, const char *fmt, ...) SR_PRINTF(2, 3);
/* Same, recording errno (saved before formatting) as os_error and appending strerror. */
int sr_err_os(int code, int os_errno, const char *fmt, ...) SR_PRINTF(3, 4);
/* A callback returned cb_code != 0: SITEREC_EABORTED with the code kept. */
int sr_err_callback(int cb_code, const char *what);
/* Storage errors (HTTP status and service error code). */
int sr_err_http(int code, int http_status, const char *service_code, const char *fmt, ...)
	SR_PRINTF(4, 5);
/* Map an errno from a failed I/O call to a code (ENOSPC -> SITEREC_ENOSPC, ...). */
int sr_errno_code(int os_errno);

/* ---- memory through the caller's allocator ---- */
void *sr_malloc(size_t n);
void *sr_calloc(size_t count, size_t size);   /* overflow-checked, zeroed */
void *sr_realloc(void *p, size_t n);
/* Room for one more element in array arr of n elements of elem bytes with
 * capacity *cap: doubles it (from `first`) when full. Returns the array (maybe
 * moved; assign it back), or NULL out of memory with arr and *cap unchanged (no
 * error set: callers say what was growing). */
void *sr_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first);
void sr_free(void *p);
char *sr_strdup(const char *s);
/* Page-aligned allocation of n bytes (for O_DIRECT-friendly and SIMD buffers); free with sr_free_aligned. */
void *sr_malloc_aligned(size_t n);
void sr_free_aligned(void *p);

/* ---- logging ---- */
void sr_log(int level, const char *fmt, ...) SR_PRINTF(2, 3);

/* ---- options versioning ----
 * Copy a caller's options struct of any version 1..current into a full current
 * one (`out`, already holding defaults): only the caller's known prefix is copied.
 * sizes[v] is the struct size of version v (index 0 unused). Returns 0 or
 * SITEREC_EVERSION / SITEREC_EINVAL with the error set. */
int sr_options_copy(void *out, const void *in, const size_t *sizes, unsigned int current,
                    const char *what);
/* For *_options_init: zero the struct of that version and set the version field. */
int sr_options_init(void *opts, unsigned int version, const size_t *sizes, unsigned int current,
                    const char *what);

/* ---- growable strings ---- */
/* A string that grows as it is appended to (always NUL-terminated once written);
 * a failed allocation sets oom and later appends do nothing: check oom once at
 * the end. Zero-initialise it; sr_buf_free wipes it (it may hold credentials). */
typedef struct sr_buf {
	char *p;
	size_t len, cap;
	int oom;
} sr_buf;
void sr_buf_put(sr_buf *b, const char *s, size_t n);
void sr_buf_puts(sr_buf *b, const char *s);
void sr_buf_printf(sr_buf *b, const char *fmt, ...) SR_PRINTF(2, 3);
void sr_buf_free(sr_buf *b);

/* ---- files ---- */
/* Durable replace (DESIGN rule 12): write data to path.tmp, fsync, rename over
 * path, fsync the directory. */
int sr_file_replace(const char *path, const void *data, size_t len);
/* Read a whole file (up to max_len bytes) into a new buffer. ENOTFOUND if absent. */
int sr_file_read_all(const char *path, size_t max_len, void **data_out, size_t *len_out);
/* fsync the directory containing path. */
int sr_fsync_dir_of(const char *path);
/* pread/pwrite until done (EINTR and short transfers handled). Set the error on failure. */
int sr_pread_full(int fd, void *buf, size_t len, uint64_t off);
int sr_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* True when buf (len bytes) is all zero. Fast (word-wise). */
int sr_is_zero(const void *buf, size_t len);

/* ---- little-endian encode/decode for on-disk formats ---- */
static inline void sr_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void sr_put_le32(uint8_t *p, uint32_t v) {
	for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void sr_put_le64(uint8_t *p, uint64_t v) {
	for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t sr_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sr_get_le32(const uint8_t *p) {
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}
static inline uint64_t sr_get_le64(const uint8_t *p) {
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}

/* ---- hashing (XXH3 through the runtime CPU dispatch: AVX2/AVX-512 when present) ---- */
uint64_t sr_hash64(const void *data, size_t len);
void sr_hash128(const void *data, size_t len, uint8_t out[16]);

/* ---- disk formats shared across layers (implemented in lib/disk) ---- */
/* The 512-byte footer of a fixed VHD whose data part is size bytes (a multiple of
 * 512): Hyper-V creator, geometry, checksum, the given unique id, the time now.
 * SITEREC_EINVAL for a size that is not whole sectors. Used by the image writer
 * and by siterec_store_upload(), so both make the same footer. */
int sr_vhd_fixed_footer(uint64_t size, const uint8_t disk_id[16], uint8_t out[512]);

/* ---- misc ---- */
static inline int sr_is_pow2(uint64_t v) { return v && !(v & (v - 1)); }
int sr_cpu_count(void);
/* len bytes from the kernel's CSPRNG (getrandom); sets the error on failure. */
int sr_random_bytes(void *buf, size_t len);

#endif
