/* Allocation through the caller's hook. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void *def_malloc(size_t n, void *p) { (void)p; return malloc(n); }
static void *def_realloc(void *q, size_t n, void *p) { (void)p; return realloc(q, n); }
static void def_free(void *q, void *p) { (void)p; free(q); }

static siterec_allocator cur = { SITEREC_ALLOCATOR_VERSION, def_malloc, def_realloc, def_free, NULL };

SITEREC_API int siterec_set_allocator(const siterec_allocator *a)
{
	if (!a) {
		cur.malloc_fn = def_malloc;
		cur.realloc_fn = def_realloc;
		cur.free_fn = def_free;
		cur.payload = NULL;
		return 0;
	}
	if (a->version < 1 || a->version > SITEREC_ALLOCATOR_VERSION)
		return sr_err(SITEREC_EVERSION, "allocator version %u not supported (1..%u)",
		              a->version, SITEREC_ALLOCATOR_VERSION);
	if (!a->malloc_fn || !a->realloc_fn || !a->free_fn)
		return sr_err(SITEREC_EINVAL, "allocator needs malloc_fn, realloc_fn and free_fn");
	cur = *a;
	cur.version = SITEREC_ALLOCATOR_VERSION;
	return 0;
}

void *sr_malloc(size_t n) { return cur.malloc_fn(n ? n : 1, cur.payload); }

void *sr_calloc(size_t count, size_t size)
{
	if (size && count > SIZE_MAX / size)
		return NULL;
	void *p = sr_malloc(count * size);
	if (p)
		memset(p, 0, count * size);
	return p;
}

void *sr_realloc(void *p, size_t n) { return cur.realloc_fn(p, n ? n : 1, cur.payload); }

void *sr_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (arr && n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : first;
	if (nc < *cap || nc > SIZE_MAX / elem)
		return NULL;
	void *nv = sr_realloc(arr, nc * elem);
	if (nv)
		*cap = nc;
	return nv;
}

void sr_free(void *p)
{
	if (p)
		cur.free_fn(p, cur.payload);
}

SITEREC_API void siterec_free(void *p)
{
	sr_free(p);
}

char *sr_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = sr_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

/* Over-allocate through the hook and keep the original pointer just below the
 * aligned block, so the caller's allocator sees every byte we use. */
#define SR_ALIGN 4096u
void *sr_malloc_aligned(size_t n)
{
	if (n > SIZE_MAX - SR_ALIGN - sizeof(void *))
		return NULL;
	uint8_t *raw = sr_malloc(n + SR_ALIGN + sizeof(void *));
	if (!raw)
		return NULL;
	uintptr_t a = ((uintptr_t)raw + sizeof(void *) + SR_ALIGN - 1) & ~(uintptr_t)(SR_ALIGN - 1);
	((void **)a)[-1] = raw;
	return (void *)a;
}

void sr_free_aligned(void *p)
{
	if (p)
		sr_free(((void **)p)[-1]);
}
