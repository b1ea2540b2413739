/* Storage layer: the front end (store.c) and the backends it dispatches to.
 * The front end validates arguments and names, copies options and credentials,
 * and runs the writer queue (coalescing, zero detection, merging across gaps);
 * a backend only sees checked, aligned requests. A new target adds one
 * sr_store_ops table. */
#ifndef SITEREC_STORE_INTERNAL_H
#define SITEREC_STORE_INTERNAL_H

#include "internal.h"
#include "siterec/store.h"

/* Largest request the writer sends (page-blob Put Page limit). */
#define SR_STORE_MAX_REQUEST (4u << 20)

/* Zero runs amid data shorter than this are sent as data: a request saved is
 * worth more than the bytes. */
#define SR_STORE_ZERO_RUN_MIN (64u << 10)

typedef struct sr_store_ops sr_store_ops;

struct siterec_store {
	const sr_store_ops *ops;
	void *impl;                  /* backend state */
	siterec_store_options opts;  /* current version; string fields point to our copies */
	char *account_key;           /* wiped on free */
	char *sas_token;             /* wiped on free */
	char *ca_file;
	uint64_t bw_tat;             /* bandwidth limit: when the bytes granted so far are paid off (ns) */
};

/* Backend writer: the front end owns the queue, the backend writes through. */
typedef struct sr_store_bwriter sr_store_bwriter;

struct sr_store_ops {
	const char *name;
	void (*close)(void *impl);
	int (*disk_create)(siterec_store *st, const char *name, uint64_t size);
	int (*disk_size)(siterec_store *st, const char *name, const char *snap, uint64_t *size);
	int (*disk_delete)(siterec_store *st, const char *name, uint32_t flags, const char *lease);
	int (*read)(siterec_store *st, const char *name, const char *snap, void *buf, size_t len,
	            uint64_t off);
	int (*ranges)(siterec_store *st, const char *name, const char *snap, uint64_t off,
	              uint64_t len, siterec_extent_fn cb, void *payload);
	/* *size receives the disk size for the front end's range checks. */
	int (*writer_open)(siterec_store *st, const char *name, const char *lease,
	                   sr_store_bwriter **out, uint64_t *size);
	/* *buf holds len bytes in a buffer of SR_STORE_MAX_REQUEST bytes from sr_malloc:
	 * the backend may keep it (no copy) and leave in *buf another such buffer for
	 * the front end to fill next, or NULL on failure (the front end allocates). */
	int (*writer_write)(sr_store_bwriter *w, uint8_t **buf, size_t len, uint64_t off);
	int (*writer_zero)(sr_store_bwriter *w, uint64_t off, uint64_t len);
	int (*writer_sync)(sr_store_bwriter *w);  /* make everything written durable */
	void (*writer_close)(sr_store_bwriter *w);
	int (*snapshot)(siterec_store *st, const char *name, char *id_out, size_t cap);
	int (*snapshot_delete)(siterec_store *st, const char *name, const char *snap);
	int (*doc_put)(siterec_store *st, const char *name, const void *data, size_t len,
	               const char *if_match, char *etag_out, size_t cap);
	int (*doc_get)(siterec_store *st, const char *name, void **data, size_t *len,
	               char *etag_out, size_t cap);
	int (*doc_delete)(siterec_store *st, const char *name, const char *if_match);
	int (*lease_acquire)(siterec_store *st, const char *name, uint32_t duration,
	                     const char *proposed, char *out, size_t cap);
	int (*lease_renew)(siterec_store *st, const char *name, const char *id);
	int (*lease_release)(siterec_store *st, const char *name, const char *id);
	/* whoever holds it; 0 when the disk has no active lease */
	int (*lease_break)(siterec_store *st, const char *name);
	int (*list)(siterec_store *st, const char *prefix, siterec_store_list_fn cb, void *payload);
	/* The object's URL (no credentials: no SAS), from sr_malloc; NULL op: none. */
	int (*url)(siterec_store *st, const char *name, char **out);
};

/* file:// backend: path is the absolute directory. */
int sr_store_file_open(siterec_store *st, const char *path);
/* Azure Blob backend: url is https://ACCOUNT.blob.<suffix>/CONTAINER or path-style
 * http(s)://HOST:PORT/ACCOUNT/CONTAINER (scheme already checked by the front end). */
int sr_store_azure_open(siterec_store *st, const char *url);

/* The URL of object name (e.g. a disk blob a VM is created from), without
 * credentials, into *out (free with sr_free); SITEREC_EUNSUPPORTED on a target
 * whose objects have none (file://). */
int sr_store_object_url(siterec_store *st, const char *name, char **out);

/* Report progress through the options' callback; non-zero -> SITEREC_EABORTED. */
int sr_store_progress(siterec_store *st, uint64_t done, uint64_t total);

/* siterec_store_writer_finish() without progress reports, for callers that report
 * their own (an upload reports source offsets). */
int sr_store_writer_flush(siterec_store_writer *w);

/* Monotonic clock in nanoseconds. */
uint64_t sr_store_now_ns(void);

/* Bandwidth limit (opts.bandwidth_limit bytes/s over every request of the store):
 * charge `bytes` about to be sent and return the monotonic time (ns) at which
 * they may start; now or earlier when there is no limit or no backlog. */
uint64_t sr_store_bw_start(siterec_store *st, uint64_t bytes);

/* Sleep until the monotonic time t (ns). */
void sr_store_sleep_until(uint64_t t);

/* Checks of the front end, shared with backends that receive names from disk. */
int sr_store_name_ok(const char *name);
int sr_store_id_ok(const char *id);   /* snapshot and lease ids: [A-Za-z0-9._-], 1..63 */

#endif
