/* Resumable upload of a source as a new replica disk (siterec_store_upload).
 * Built on the public store calls only: the disk through a store writer, the
 * progress record as the document NAME.upload (JSON, doc/formats.md "Upload
 * record") replaced with If-Match, so that two uploaders of one disk cannot both
 * move it on. Invariant: everything of the source below the record's "done" is
 * durable on the disk (the writer was finished before the record was replaced). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "store_internal.h"

static const size_t upload_opt_sizes[] = { 0, sizeof(siterec_store_upload_options) };
static const size_t upload_stats_sizes[] = { 0, sizeof(siterec_store_upload_stats) };

#define MiB (1ull << 20)
#define CHUNK SR_STORE_MAX_REQUEST          /* read from the source at a time */
#define DEFAULT_CHECKPOINT (256 * MiB)
/* The record's numbers are JSON numbers (doubles, exact up to 2^53); 1 PiB is far
 * above any page blob and the largest image siterec_disk_create() makes. */
#define MAX_SIZE (1ull << 50)
#define SOURCE_ID_MAX 1024
#define RECORD_SUFFIX ".upload"
#define RECORD_FORMAT "siterec-upload"
#define RECORD_VERSION 1
#define FLAGS_KNOWN (SITEREC_STORE_UPLOAD_RESUME | SITEREC_STORE_UPLOAD_VHD)

SITEREC_API int siterec_store_upload_options_init(siterec_store_upload_options *opts,
                                                  unsigned int version)
{
	return sr_options_init(opts, version, upload_opt_sizes, SITEREC_STORE_UPLOAD_OPTIONS_VERSION,
	                       "store upload");
}

struct upload {
	siterec_store *st;
	const char *name;
	char record[256];               /* NAME.upload */
	char etag[SITEREC_STORE_ETAG_MAX];  /* of the record as we last wrote or read it */
	const char *source;
	uint64_t size;                  /* of the source */
	uint64_t data_end;              /* VHD: size rounded up to a MiB (the footer's offset) */
	uint64_t disk_size;             /* what the disk is created with */
	int vhd;
	siterec_store_upload_stats stats;  /* current version, copied out at the end */
};

static uint64_t round_up(uint64_t v, uint64_t unit)
{
	return (v + unit - 1) / unit * unit;
}

/* ---- the record ---- */

/* Replace (or with if_match "" create) the record. `when` names the step for the
 * message of a lost compare-and-swap. */
static int record_put(struct upload *u, uint64_t done, int complete, const char *when)
{
	char if_match[SITEREC_STORE_ETAG_MAX];
	snprintf(if_match, sizeof(if_match), "%s", u->etag);
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	if (!o || !cJSON_AddStringToObject(o, "format", RECORD_FORMAT) ||
	    !cJSON_AddNumberToObject(o, "version", RECORD_VERSION) ||
	    !cJSON_AddStringToObject(o, "disk", u->name) ||
	    !cJSON_AddStringToObject(o, "source", u->source) ||
	    !cJSON_AddNumberToObject(o, "size", (double)u->size) ||
	    !cJSON_AddBoolToObject(o, "vhd", u->vhd) ||
	    !cJSON_AddNumberToObject(o, "done", (double)done) ||
	    !cJSON_AddBoolToObject(o, "complete", complete) || !(text = cJSON_PrintUnformatted(o))) {
		cJSON_Delete(o);
		return sr_err(SITEREC_ENOMEM, "upload %s: out of memory building the record", u->name);
	}
	cJSON_Delete(o);
	int rc = siterec_store_doc_put(u->st, u->record, text, strlen(text), if_match, u->etag,
	                               sizeof(u->etag));
	cJSON_free(text);
	if (rc == SITEREC_ECONFLICT)
		return sr_err(SITEREC_ECONFLICT, "upload %s: %s: the record %s was %s by someone else: "
		              "another upload of this disk is running", u->name, when, u->record,
		              if_match[0] ? "replaced" : "created");
	return rc;
}

static int record_damaged(const struct upload *u, const char *why)
{
	return sr_err(SITEREC_ECORRUPT, "upload %s: the record %s is damaged (%s); delete it to "
	              "start the upload over", u->name, u->record, why);
}

/* A JSON number that is an integer in 0..2^53 (exact in a double). */
static int json_u64(const cJSON *o, const char *key, uint64_t *v)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(n))
		return -1;
	double d = n->valuedouble;
	if (!(d >= 0 && d <= 9007199254740992.0) || (double)(uint64_t)d != d)
		return -1;
	*v = (uint64_t)d;
	return 0;
}

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(s) && s->valuestring ? s->valuestring : NULL;
}

static int json_bool(const cJSON *o, const char *key, int *v)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsBool(b))
		return -1;
	*v = cJSON_IsTrue(b);
	return 0;
}

/* Check a record read from the store and whether it is this upload's: *done and
 * *complete from it. Nothing in it is trusted. */
static int record_check(struct upload *u, const char *text, size_t len, uint64_t *done,
                        int *complete)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	int rc = 0;
	uint64_t version = 0, size = 0;
	int vhd = 0;
	const char *s, *source;
	if (!cJSON_IsObject(o))
		rc = record_damaged(u, "not a JSON object");
	else if (!(s = json_str(o, "format")) || strcmp(s, RECORD_FORMAT) != 0)
		rc = record_damaged(u, "\"format\" is not \"" RECORD_FORMAT "\"");
	else if (json_u64(o, "version", &version) || version < 1)
		rc = record_damaged(u, "no valid \"version\"");
	else if (version > RECORD_VERSION)
		rc = sr_err(SITEREC_EVERSION, "upload %s: the record %s has version %llu; this library "
		            "reads version %d", u->name, u->record, (unsigned long long)version,
		            RECORD_VERSION);
	else if (!(s = json_str(o, "disk")) || strcmp(s, u->name) != 0)
		rc = record_damaged(u, "\"disk\" does not name this disk");
	else if (!(source = json_str(o, "source")))
		rc = record_damaged(u, "no string \"source\"");
	else if (json_u64(o, "size", &size) || size == 0 || size > MAX_SIZE)
		rc = record_damaged(u, "no valid \"size\"");
	else if (json_bool(o, "vhd", &vhd) || json_bool(o, "complete", complete))
		rc = record_damaged(u, "\"vhd\" or \"complete\" is not true or false");
	else if (json_u64(o, "done", done) || *done > size || (*done % 512 && *done != size))
		rc = record_damaged(u, "\"done\" is not a multiple of 512 up to the size");
	else if (*complete && *done != size)
		rc = record_damaged(u, "\"complete\" before \"done\" reached the size");
	else if (strcmp(source, u->source) != 0 || size != u->size || vhd != u->vhd)
		rc = sr_err(SITEREC_ECONFLICT, "upload %s: the record %s is of another upload (source "
		            "\"%.120s\", %llu bytes%s), not of this one (source \"%.120s\", %llu bytes%s)",
		            u->name, u->record, source, (unsigned long long)size, vhd ? ", VHD" : "",
		            u->source, (unsigned long long)u->size, u->vhd ? ", VHD" : "");
	cJSON_Delete(o);
	return rc;
}

/* ---- the disk ---- */

/* A fresh upload: no record yet. The record is created first (if_match ""), so of
 * two uploaders racing only one goes on; then the disk. */
static int begin_fresh(struct upload *u)
{
	uint64_t have;
	int rc = siterec_store_disk_size(u->st, u->name, NULL, &have);
	if (rc == 0)
		return sr_err(SITEREC_EEXISTS, "upload %s: the disk exists and has no upload record "
		              "%s (it was not made by an upload that can be resumed)", u->name, u->record);
	if (rc != SITEREC_ENOTFOUND)
		return rc;
	u->etag[0] = 0;
	if ((rc = record_put(u, 0, 0, "starting")))
		return rc;
	rc = siterec_store_disk_create(u->st, u->name, u->disk_size);
	if (rc == SITEREC_EEXISTS) {
		/* made by someone else since the check: not ours; take our record back */
		(void)siterec_store_doc_delete(u->st, u->record, u->etag);
		return sr_err(SITEREC_EEXISTS, "upload %s: the disk was created by someone else "
		              "while this upload started", u->name);
	}
	return rc;
}

/* Resuming: the disk must be there with the upload's size; a record without a disk
 * (a crash between the two creations, or a deleted disk) starts over at 0, and
 * says so in the record before the new disk exists. */
static int resume_disk(struct upload *u, uint64_t *done, int complete)
{
	uint64_t have = 0;
	int rc = siterec_store_disk_size(u->st, u->name, NULL, &have);
	if (rc == SITEREC_ENOTFOUND) {
		if (complete)
			return sr_err(SITEREC_ENOTFOUND, "upload %s: the record %s says complete but the "
			              "disk is gone (delete the record to upload again)", u->name, u->record);
		if (*done && (rc = record_put(u, 0, 0, "starting over without a disk")))
			return rc;
		*done = 0;
		rc = siterec_store_disk_create(u->st, u->name, u->disk_size);
		if (rc != SITEREC_EEXISTS)
			return rc;
		rc = siterec_store_disk_size(u->st, u->name, NULL, &have);
	}
	if (rc)
		return rc;
	if (have != u->disk_size)
		return sr_err(SITEREC_ECONFLICT, "upload %s: the disk has %llu bytes but this upload "
		              "makes %llu", u->name, (unsigned long long)have,
		              (unsigned long long)u->disk_size);
	return 0;
}

/* ---- sending ---- */

/* A callback of the caller failed: SITEREC_EABORTED with its code, the message
 * naming the step and what the callback said if it set an error (the library's
 * adaptors do). The caller cleared the error before calling it. */
static int callback_failed(int cb, const char *what, uint64_t off)
{
	char ctx[400];
	const siterec_error *e = siterec_error_last();
	if (e->code)
		snprintf(ctx, sizeof(ctx), "upload %s at %llu (%s)", what, (unsigned long long)off,
		         e->message);
	else
		snprintf(ctx, sizeof(ctx), "upload %s at %llu", what, (unsigned long long)off);
	return sr_err_callback(cb, ctx);
}

/* Hand the non-zero 512-byte sectors of buf (len a multiple of 512, placed at off)
 * to the writer: the disk is fresh, so zeros need not even be cleared. */
static int send_nonzero(struct upload *u, siterec_store_writer *w, const uint8_t *buf, size_t len,
                        uint64_t off)
{
	/* zero runs of SR_STORE_ZERO_RUN_MIN or more are skipped (the fresh disk reads
	 * zeros there); shorter ones amid data ride along: one request, not three */
	size_t i = 0;
	while (i < len) {
		while (i < len && sr_is_zero(buf + i, 512))
			i += 512;
		size_t j = i, k = i;
		while (k < len) {
			if (!sr_is_zero(buf + k, 512)) {
				k += 512;
				j = k;
				continue;
			}
			size_t e = k;
			while (e < len && sr_is_zero(buf + e, 512))
				e += 512;
			if (e - k >= SR_STORE_ZERO_RUN_MIN || e == len)
				break;
			k = e;
		}
		if (j > i) {
			int rc = siterec_store_writer_write(w, buf + i, j - i, off + i);
			if (rc)
				return rc;
			u->stats.bytes_sent += j - i;
		}
		i = j;
	}
	return 0;
}

/* Disk id of the VHD footer: derived from the disk name, the source id and the size
 * (XXH3-128), so that every run of one upload writes the same footer. */
static void vhd_disk_id(const struct upload *u, uint8_t id[16])
{
	static const char tag[] = "siterec-upload";
	uint8_t b[sizeof(tag) + 256 + SOURCE_ID_MAX + 1 + 8];
	size_t n = 0, ln = strlen(u->name) + 1, ls = strlen(u->source) + 1;
	memcpy(b, tag, sizeof(tag));
	n += sizeof(tag);
	memcpy(b + n, u->name, ln);
	n += ln;
	memcpy(b + n, u->source, ls);
	n += ls;
	sr_put_le64(b + n, u->size);
	n += 8;
	sr_hash128(b, n, id);
}

/* Send the source from `done` on, recording progress every checkpoint bytes read;
 * then the VHD footer and the complete record. */
static int transfer(struct upload *u, uint64_t done, siterec_read_fn read,
                    siterec_block_status_fn status, void *payload, const char *lease,
                    uint64_t checkpoint)
{
	siterec_store_writer *w = NULL;
	int rc = siterec_store_writer_open(&w, u->st, u->name, lease);
	if (rc)
		return rc;
	uint8_t *buf = sr_malloc(CHUNK);
	if (!buf) {
		siterec_store_writer_free(w);
		return sr_err(SITEREC_ENOMEM, "upload %s: out of memory for a read buffer", u->name);
	}
	uint64_t off = done, run_end = done, since = 0;
	int allocated = 0;
	while (off < u->size) {
		if (off == run_end) {
			uint64_t run = u->size - off;
			allocated = 1;
			if (status) {
				siterec_error_clear();
				int cb = status(off, u->size - off, &run, &allocated, payload);
				if (cb) {
					rc = callback_failed(cb, "block status", off);
					break;
				}
				if (run == 0 || run > u->size - off) {
					rc = sr_err(SITEREC_EINVAL, "upload %s: the block status callback gave a "
					            "run of %llu bytes at %llu (1..%llu allowed)", u->name,
					            (unsigned long long)run, (unsigned long long)off,
					            (unsigned long long)(u->size - off));
					break;
				}
			}
			run_end = off + run;
		}
		if (!allocated) {
			off = run_end;   /* a hole: the fresh disk reads zeros there */
		} else {
			/* whole sectors [a, wend); the source may end (or a run start) mid-sector */
			uint64_t a = off & ~511ull;
			uint64_t end = run_end - a < CHUNK ? run_end : a + CHUNK;
			uint64_t wend = round_up(end, 512), rend = wend < u->size ? wend : u->size;
			size_t rlen = (size_t)(rend - a), wlen = (size_t)(wend - a);
			memset(buf + rlen, 0, wlen - rlen);
			siterec_error_clear();
			int cb = read(buf, rlen, a, payload);
			if (cb) {
				rc = callback_failed(cb, "source read", a);
				break;
			}
			u->stats.bytes_read += rlen;
			since += rlen;
			if ((rc = send_nonzero(u, w, buf, wlen, a)))
				break;
			off = end;
		}
		if ((rc = sr_store_progress(u->st, off, u->size)))
			break;
		if (since >= checkpoint && off < u->size) {
			if ((rc = sr_store_writer_flush(w)) ||
			    (rc = record_put(u, off & ~511ull, 0, "checkpoint")))
				break;
			since = 0;
		}
	}
	if (!rc && u->vhd) {
		uint8_t id[16], footer[512];
		vhd_disk_id(u, id);
		if (!(rc = sr_vhd_fixed_footer(u->data_end, id, footer)))
			rc = siterec_store_writer_write(w, footer, sizeof(footer), u->data_end);
	}
	if (!rc && !(rc = sr_store_writer_flush(w)))
		rc = record_put(u, u->size, 1, "completing");
	sr_free(buf);
	siterec_store_writer_free(w);   /* after a failure: abandons what is queued */
	return rc;
}

/* ---- the call ---- */

static int check_args(siterec_store *st, const char *name, uint64_t size, siterec_read_fn read,
                      const siterec_store_upload_options *o, const siterec_store_upload_stats *stats)
{
	if (!st)
		return sr_err(SITEREC_EINVAL, "store upload: store is NULL");
	if (!name || !sr_store_name_ok(name))
		return sr_err(SITEREC_EINVAL, "store upload: disk name '%.*s' invalid: 1..200 of "
		              "[A-Za-z0-9._-/], not starting with '/' or '.', no \"..\" or \"//\"", 220,
		              name ? name : "(NULL)");
	if (strlen(name) + strlen(RECORD_SUFFIX) > 200)
		return sr_err(SITEREC_EINVAL, "store upload %s: name too long for its record "
		              "NAME" RECORD_SUFFIX " (names are at most 200 characters)", name);
	if (!read)
		return sr_err(SITEREC_EINVAL, "store upload %s: read callback is NULL", name);
	if (size == 0)
		return sr_err(SITEREC_EINVAL, "store upload %s: size is 0", name);
	if (size > MAX_SIZE)
		return sr_err(SITEREC_ERANGE, "store upload %s: size %llu larger than 1 PiB", name,
		              (unsigned long long)size);
	if (o->flags & ~FLAGS_KNOWN)
		return sr_err(SITEREC_EINVAL, "store upload %s: unknown flags 0x%x", name,
		              (unsigned)(o->flags & ~FLAGS_KNOWN));
	if (o->source_id && strlen(o->source_id) > SOURCE_ID_MAX)
		return sr_err(SITEREC_EINVAL, "store upload %s: source id longer than %d bytes", name,
		              SOURCE_ID_MAX);
	if (stats && (stats->version < 1 || stats->version > SITEREC_STORE_UPLOAD_STATS_VERSION))
		return sr_err(SITEREC_EVERSION, "store upload stats version %u not supported (1..%u)",
		              stats->version, SITEREC_STORE_UPLOAD_STATS_VERSION);
	return 0;
}

SITEREC_API int siterec_store_upload(siterec_store *store, const char *name, uint64_t size,
                                     siterec_read_fn read, siterec_block_status_fn status,
                                     void *payload, const siterec_store_upload_options *opts,
                                     siterec_store_upload_stats *stats)
{
	siterec_store_upload_options o = SITEREC_STORE_UPLOAD_OPTIONS_INIT;
	int rc = sr_options_copy(&o, opts, upload_opt_sizes, SITEREC_STORE_UPLOAD_OPTIONS_VERSION,
	                         "store upload");
	if (rc || (rc = check_args(store, name, size, read, &o, stats)))
		return rc;

	struct upload u;
	memset(&u, 0, sizeof(u));
	u.st = store;
	u.name = name;
	snprintf(u.record, sizeof(u.record), "%s" RECORD_SUFFIX, name);
	u.source = o.source_id ? o.source_id : "";
	u.size = size;
	u.vhd = (o.flags & SITEREC_STORE_UPLOAD_VHD) != 0;
	u.data_end = u.vhd ? round_up(size, MiB) : round_up(size, 512);
	u.disk_size = u.data_end + (u.vhd ? 512 : 0);
	u.stats.version = SITEREC_STORE_UPLOAD_STATS_VERSION;

	void *doc = NULL;
	size_t len = 0;
	uint64_t done = 0;
	int complete = 0;
	rc = siterec_store_doc_get(store, u.record, &doc, &len, u.etag, sizeof(u.etag));
	if (rc == SITEREC_ENOTFOUND) {
		rc = begin_fresh(&u);
	} else if (rc == 0) {
		if (!(o.flags & SITEREC_STORE_UPLOAD_RESUME))
			rc = sr_err(SITEREC_EEXISTS, "upload %s: an upload record %s exists (resume it "
			            "with SITEREC_STORE_UPLOAD_RESUME, or delete it)", name, u.record);
		else if (!(rc = record_check(&u, doc, len, &done, &complete)))
			rc = resume_disk(&u, &done, complete);
		siterec_free(doc);
	}
	if (!rc && complete)
		u.stats.already_complete = 1;
	else if (!rc) {
		u.stats.resumed_from = done;
		rc = transfer(&u, done, read, status, payload, o.lease_id,
		              o.checkpoint_bytes ? o.checkpoint_bytes : DEFAULT_CHECKPOINT);
	}
	if (stats) {
		unsigned int v = stats->version;
		u.stats.version = v;
		memcpy(stats, &u.stats, upload_stats_sizes[v]);
	}
	return rc;
}
