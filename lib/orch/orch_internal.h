/* Shared inside lib/orch: the failover handle, its slots' documents and the
 * steps failback reuses (failover.c), the failback steps (failback.c). */
#ifndef SITEREC_ORCH_INTERNAL_H
#define SITEREC_ORCH_INTERNAL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "siterec/failover.h"
#include "siterec/rp.h"

#define FO_FORMAT 1
#define FO_DOC_MAX (4u << 20)
#define FO_MAX_NICS 32
#define FO_MAX_NETWORKS 256
#define FO_MAX_SUBNETS 256

enum { SLOT_TEST = 0, SLOT_FO = 1, SLOT_FB = 2 };


typedef struct slot {
	cJSON *doc;                          /* NULL: the slot is empty */
	char etag[SITEREC_STORE_ETAG_MAX];
	char name[96];
} slot;

struct siterec_failover {
	siterec_failover_options o;
	char vm[72];
	int file_target;                     /* a file:// store: disk files only */
	siterec_rp_catalog *cat;
	slot s[3];
};

static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON fields (64-bit values as decimal strings, as in every state document) ---- */

static inline uint64_t j_u64(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(n) ? strtoull(n->valuestring, NULL, 10) : 0;
}

static inline int64_t j_i64(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(n) ? strtoll(n->valuestring, NULL, 10) : 0;
}

static const char *j_str(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

static inline uint32_t j_num(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble <= UINT32_MAX ? (uint32_t)n->valuedouble : 0;
}

static inline int j_true(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* The setters replace or add; a failed allocation leaves the old value and is
 * caught when the document is printed (cJSON returns NULL on any hole). */
static inline void j_put(cJSON *o, const char *k, cJSON *v)
{
	if (!v)
		return;
	if (cJSON_GetObjectItemCaseSensitive(o, k))
		cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
	else
		cJSON_AddItemToObject(o, k, v);
}

static inline void j_set_u64(cJSON *o, const char *k, uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "%" PRIu64, v);
	j_put(o, k, cJSON_CreateString(b));
}

static inline void j_set_i64(cJSON *o, const char *k, int64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "%" PRId64, v);
	j_put(o, k, cJSON_CreateString(b));
}

static inline void j_set_str(cJSON *o, const char *k, const char *v)
{
	j_put(o, k, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

static inline void j_set_num(cJSON *o, const char *k, uint32_t v)
{
	j_put(o, k, cJSON_CreateNumber(v));
}

static inline void j_set_bool(cJSON *o, const char *k, int v)
{
	j_put(o, k, cJSON_CreateBool(v));
}

extern const char *const fo_phase_names[];
extern const char *const fo_type_names[];

uint32_t phase_of(const cJSON *doc);
uint32_t type_of(const cJSON *doc);
void set_phase(cJSON *doc, uint32_t phase);
int name_ok(const char *s);
void guid(char *out, size_t cap);
int check_f(const siterec_failover *f, const char *what);
/* Read slot k's document (doc NULL when empty); write it (generation + 1, If-Match). */
int slot_load(siterec_failover *f, int k);
int slot_save(siterec_failover *f, int k);
/* A new slot document of type (phase starting), or NULL (out of memory). */
cJSON *doc_new(const siterec_failover *f, uint32_t type);
/* Make doc (owned from here) slot k's document, created only if absent (SITEREC_EEXISTS). */
int slot_create(siterec_failover *f, int k, cJSON *doc);
/* The callback's failure as SITEREC_EABORTED, logged. */
int cb_fail(int cb, const char *what, const siterec_failover *f);
/* The start (start != 0) or remove callback with slot k's VM (failover slots). */
int vm_call(siterec_failover *f, int k, int start);
/* Remove slot k's VM when one may exist and delete its disk outputs (failover slots). */
int undo_outputs(siterec_failover *f, int k);
/* Run failback phase ph one step; *stable = 1 when ph needs no step. (failback.c) */
int fb_step(siterec_failover *f, uint32_t ph, int *stable);

#endif
