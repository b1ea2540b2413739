/* file:// backend: a directory holding replica disks, their snapshots, documents
 * and leases. Layout and record formats: doc/formats-store.md, "Directory target".
 * Object names map to one flat directory entry each ('/' becomes '%', which names
 * cannot contain), so "a" and "a/b" never collide and no parent directories come
 * and go. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

#define CHUNK 65536u
#define REC_HDR 56u          /* state and snapshot index header */
#define DOC_HDR 40u
#define LEASE_SIZE 160u
#define DOC_MAX_FILE ((4u << 20) + DOC_HDR + 8)

typedef struct fstore {
	char *root;
} fstore;

/* A state file (per disk: changed chunks, next snapshot id) or a snapshot index. */
typedef struct bmrec {
	uint64_t disk_size;
	uint64_t a;        /* state: next snapshot id; snapshot: its id */
	uint64_t b;        /* snapshot: parent id (0 = none) */
	uint32_t flags;    /* snapshot: SNAP_FULL */
	uint64_t nbits;
	uint8_t *bits;
} bmrec;

#define SNAP_FULL 0x1u
static const char MAGIC_STATE[8] = "SRSTATE1";
static const char MAGIC_SNAP[8] = "SRSNAP01";
static const char MAGIC_DOC[8] = "SRDOC001";
static const char MAGIC_LEASE[8] = "SRLEASE1";

static uint64_t nchunks(uint64_t size) { return (size + CHUNK - 1) / CHUNK; }
static int bit_get(const uint8_t *b, uint64_t i) { return (b[i >> 3] >> (i & 7)) & 1; }
static void bit_set(uint8_t *b, uint64_t i) { b[i >> 3] |= (uint8_t)(1u << (i & 7)); }

/* ---- paths ---- */

/* dir + "/" + leaf into out (PATH_MAX). The root is at most PATH_MAX - 512 long
 * and encoded names at most 200, so every path of the layout fits. */
static void join(char *out, const char *dir, const char *leaf)
{
	size_t a = strlen(dir), b = strlen(leaf);
	if (a + b + 2 > PATH_MAX) {
		out[0] = 0;
		return;
	}
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, leaf, b + 1);
}

/* ROOT/top/ENC[/leaf] into out (PATH_MAX). */
static int opath(const fstore *fs, char *out, const char *top, const char *name, const char *leaf)
{
	char enc[256];
	size_t n = strlen(name);
	if (n >= sizeof(enc))
		return sr_err(SITEREC_EINVAL, "store name too long");
	for (size_t i = 0; i <= n; i++)
		enc[i] = name[i] == '/' ? '%' : name[i];
	int len = snprintf(out, PATH_MAX, "%s/%s/%s%s%s", fs->root, top, enc, leaf ? "/" : "",
	                   leaf ? leaf : "");
	if (len < 0 || len >= PATH_MAX)
		return sr_err(SITEREC_EINVAL, "store path for %s too long", name);
	return 0;
}

static int exists(const char *p)
{
	struct stat s;
	return stat(p, &s) == 0;
}

static int is_doc(const fstore *fs, const char *name)
{
	char p[PATH_MAX];
	return opath(fs, p, "docs", name, "doc") == 0 && exists(p);
}

static int is_disk(const fstore *fs, const char *name)
{
	char p[PATH_MAX];
	return opath(fs, p, "disks", name, "data") == 0 && exists(p);
}

/* Exclusive flock on dir/lock (created if missing): serialises the object's state
 * changes between handles and processes. Returns the fd or a negative code. */
static int lock_obj(const char *dir, const char *name)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s/lock", dir) >= (int)sizeof(p))
		return sr_err(SITEREC_EINVAL, "store path for %s too long", name);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : sr_errno_code(e), e,
		                 "store object %s: cannot open its lock file", name);
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return sr_err_os(SITEREC_EIO, e, "store object %s: cannot lock", name);
		}
	}
	return fd;
}

static void unlock_obj(int fd)
{
	if (fd >= 0)
		close(fd); /* closing drops the flock */
}

/* ---- bitmap records (state and snapshot index) ---- */

static void bm_free(bmrec *r)
{
	sr_free(r->bits);
	r->bits = NULL;
}

static int bm_alloc(bmrec *r, uint64_t size)
{
	r->disk_size = size;
	r->nbits = nchunks(size);
	r->bits = sr_calloc(1, (size_t)((r->nbits + 7) / 8) + 1);
	return r->bits ? 0 : sr_err(SITEREC_ENOMEM, "store: out of memory for a chunk map");
}

static int bm_save(const char *path, const char *magic, const bmrec *r)
{
	size_t nb = (size_t)((r->nbits + 7) / 8);
	size_t len = REC_HDR + nb + 8;
	uint8_t *b = sr_calloc(1, len);
	if (!b)
		return sr_err(SITEREC_ENOMEM, "store: out of memory writing %s", path);
	memcpy(b, magic, 8);
	sr_put_le32(b + 8, 1);
	sr_put_le32(b + 12, CHUNK);
	sr_put_le64(b + 16, r->disk_size);
	sr_put_le64(b + 24, r->a);
	sr_put_le64(b + 32, r->b);
	sr_put_le32(b + 40, r->flags);
	sr_put_le64(b + 48, r->nbits);
	memcpy(b + REC_HDR, r->bits, nb);
	sr_put_le64(b + REC_HDR + nb, sr_hash64(b, REC_HDR + nb));
	int rc = sr_file_replace(path, b, len);
	sr_free(b);
	return rc;
}

static int bm_load(const char *path, const char *magic, bmrec *r)
{
	void *data;
	size_t len;
	memset(r, 0, sizeof(*r));
	int rc = sr_file_read_all(path, (size_t)1 << 40, &data, &len);
	if (rc)
		return rc;
	const uint8_t *b = data;
	rc = SITEREC_ECORRUPT;  /* the message is set at out: only if it stays a failure */
	if (len < REC_HDR + 8 || memcmp(b, magic, 8) != 0)
		goto out;
	if (sr_get_le32(b + 8) != 1 || sr_get_le32(b + 12) != CHUNK) {
		rc = sr_err(SITEREC_EVERSION, "store record %s: version %u / chunk size %u not supported",
		            path, sr_get_le32(b + 8), sr_get_le32(b + 12));
		goto out;
	}
	r->disk_size = sr_get_le64(b + 16);
	r->a = sr_get_le64(b + 24);
	r->b = sr_get_le64(b + 32);
	r->flags = sr_get_le32(b + 40);
	r->nbits = sr_get_le64(b + 48);
	if (r->nbits != nchunks(r->disk_size) || len != REC_HDR + (r->nbits + 7) / 8 + 8)
		goto out;
	size_t nb = (size_t)((r->nbits + 7) / 8);
	if (sr_get_le64(b + REC_HDR + nb) != sr_hash64(b, REC_HDR + nb))
		goto out;
	r->bits = sr_malloc(nb + 1);
	if (!r->bits) {
		rc = sr_err(SITEREC_ENOMEM, "store: out of memory reading %s", path);
		goto out;
	}
	memcpy(r->bits, b + REC_HDR, nb);
	rc = 0;
out:
	if (rc == SITEREC_ECORRUPT)
		rc = sr_err(SITEREC_ECORRUPT, "store record %s is damaged or not a %.8s record", path,
		            magic);
	sr_free(data);
	return rc;
}

/* ---- snapshots on disk: DISK/snapshots/ID.idx + ID.data ---- */

static int parse_id(const char *s, uint64_t *id)
{
	if (!*s || *s == '0' || strlen(s) > 19)
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*id = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Ids of the disk's snapshots (those whose index exists), ascending. */
static int snap_ids(const char *diskdir, uint64_t **ids, size_t *n)
{
	char p[PATH_MAX];
	*ids = NULL;
	*n = 0;
	join(p, diskdir, "snapshots");
	DIR *d = opendir(p);
	if (!d) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "store: cannot list snapshots in %s", p);
	}
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char tmp[32];
		uint64_t id;
		if (l < 5 || l > 24 || strcmp(de->d_name + l - 4, ".idx") != 0)
			continue;
		memcpy(tmp, de->d_name, l - 4);
		tmp[l - 4] = 0;
		if (parse_id(tmp, &id))
			continue;
		uint64_t *nv = sr_grow(*ids, &cap, *n, sizeof(*nv), 16);
		if (!nv) {
			rc = sr_err(SITEREC_ENOMEM, "store: out of memory listing snapshots");
			break;
		}
		*ids = nv;
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (rc) {
		sr_free(*ids);
		*ids = NULL;
		*n = 0;
		return rc;
	}
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return 0;
}

static void snap_path(char *out, const char *diskdir, uint64_t id, const char *ext)
{
	char leaf[48];
	snprintf(leaf, sizeof(leaf), "snapshots/%llu.%s", (unsigned long long)id, ext);
	join(out, diskdir, leaf);
}

/* A snapshot and the older ones it resolves through: chain[0] is the one asked for. */
#define CHAIN_MAX 64

typedef struct chain {
	size_t n;
	bmrec rec[CHAIN_MAX];
	int fd[CHAIN_MAX];
	uint8_t *alloc[CHAIN_MAX];   /* for ranges(): chunks of each data file that hold data */
} chain;

static void chain_free(chain *c)
{
	for (size_t i = 0; i < c->n; i++) {
		bm_free(&c->rec[i]);
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		sr_free(c->alloc[i]);
	}
	c->n = 0;
}

static int chain_load(const char *diskdir, const char *name, const char *snap, chain *c)
{
	memset(c, 0, sizeof(*c));
	uint64_t id;
	if (parse_id(snap, &id))
		return sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snap);
	while (id) {
		char p[PATH_MAX];
		if (c->n == CHAIN_MAX) {
			chain_free(c);
			return sr_err(SITEREC_ECORRUPT, "disk %s: snapshot chain longer than %d or looping",
			              name, CHAIN_MAX);
		}
		snap_path(p, diskdir, id, "idx");
		bmrec *r = &c->rec[c->n];
		c->fd[c->n] = -1;
		int rc = bm_load(p, MAGIC_SNAP, r);
		if (rc == SITEREC_ENOTFOUND)
			rc = c->n ? sr_err(SITEREC_ECORRUPT, "disk %s: snapshot %llu missing from a chain",
			                   name, (unsigned long long)id)
			          : sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snap);
		if (rc) {
			chain_free(c);
			return rc;
		}
		c->n++;
		snap_path(p, diskdir, id, "data");
		c->fd[c->n - 1] = open(p, O_RDONLY | O_CLOEXEC);
		if (c->fd[c->n - 1] < 0 || r->a != id || r->b >= id ||
		    r->disk_size != c->rec[0].disk_size) {
			int e = errno;
			chain_free(c);
			return sr_err_os(SITEREC_ECORRUPT, e, "disk %s: snapshot %llu damaged", name,
			                 (unsigned long long)id);
		}
		id = r->b;
	}
	return 0;
}

/* Number of snapshots a read of snapshot id resolves through (itself included). */
static int chain_depth(const char *diskdir, const char *name, uint64_t id, size_t *depth)
{
	char p[PATH_MAX];
	*depth = 0;
	while (id && *depth < CHAIN_MAX) {
		bmrec r;
		snap_path(p, diskdir, id, "idx");
		int rc = bm_load(p, MAGIC_SNAP, &r);
		if (rc)
			return rc == SITEREC_ENOTFOUND
			           ? sr_err(SITEREC_ECORRUPT, "disk %s: snapshot %llu missing from a chain",
			                    name, (unsigned long long)id)
			           : rc;
		bm_free(&r);
		if (r.b >= id)
			return sr_err(SITEREC_ECORRUPT, "disk %s: snapshot %llu damaged", name,
			              (unsigned long long)id);
		id = r.b;
		(*depth)++;
	}
	return 0;
}

/* Index in the chain holding chunk ci, or -1 (zeros). */
static int chain_find(const chain *c, uint64_t ci)
{
	for (size_t i = 0; i < c->n; i++)
		if (bit_get(c->rec[i].bits, ci))
			return (int)i;
	return -1;
}

/* Chunks of fd's file that hold data (SEEK_DATA/SEEK_HOLE), as a bitmap. */
static int alloc_map(int fd, uint64_t size, uint8_t *bits, const char *what)
{
	off_t pos = 0;
	while ((uint64_t)pos < size) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				break;
			int e = errno;
			return sr_err_os(SITEREC_EIO, e, "store: SEEK_DATA on %s failed", what);
		}
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) {
			int e = errno;
			return sr_err_os(SITEREC_EIO, e, "store: SEEK_HOLE on %s failed", what);
		}
		if ((uint64_t)h > size)
			h = (off_t)size;
		for (uint64_t ci = (uint64_t)d / CHUNK; ci * CHUNK < (uint64_t)h; ci++)
			bit_set(bits, ci);
		pos = h;
	}
	return 0;
}

/* ---- leases: OBJ/lease ---- */

typedef struct lease {
	uint32_t duration;
	uint64_t expiry;
	char id[64];
	char owner[64];
} lease;

/* 1 when a lease file exists (filled in), 0 when none, negative on error. */
static int lease_read(const char *objdir, const char *name, lease *l)
{
	char p[PATH_MAX];
	join(p, objdir, "lease");
	void *data;
	size_t len;
	int rc = sr_file_read_all(p, LEASE_SIZE, &data, &len);
	if (rc == SITEREC_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	const uint8_t *b = data;
	if (len != LEASE_SIZE || memcmp(b, MAGIC_LEASE, 8) != 0 || sr_get_le32(b + 8) != 1 ||
	    sr_get_le64(b + 152) != sr_hash64(b, 152) || b[24 + 63] || b[88 + 63]) {
		sr_free(data);
		return sr_err(SITEREC_ECORRUPT, "lease file of %s is damaged", name);
	}
	l->duration = sr_get_le32(b + 12);
	l->expiry = sr_get_le64(b + 16);
	memcpy(l->id, b + 24, 64);
	memcpy(l->owner, b + 88, 64);
	sr_free(data);
	return 1;
}

static int lease_write(const char *objdir, const lease *l)
{
	char p[PATH_MAX];
	uint8_t b[LEASE_SIZE];
	memset(b, 0, sizeof(b));
	memcpy(b, MAGIC_LEASE, 8);
	sr_put_le32(b + 8, 1);
	sr_put_le32(b + 12, l->duration);
	sr_put_le64(b + 16, l->expiry);
	memcpy(b + 24, l->id, 63);
	memcpy(b + 88, l->owner, 63);
	sr_put_le64(b + 152, sr_hash64(b, 152));
	join(p, objdir, "lease");
	return sr_file_replace(p, b, sizeof(b));
}

static int lease_active(const lease *l)
{
	return l->expiry == 0 || l->expiry > (uint64_t)time(NULL);
}

/* A write or delete of a (possibly) leased object: the lease id must match an
 * active lease; a lease id given for an unleased object is refused too (as Azure). */
static int lease_check(const char *objdir, const char *name, const char *lease_id)
{
	lease l;
	int rc = lease_read(objdir, name, &l);
	if (rc < 0)
		return rc;
	int active = rc == 1 && lease_active(&l);
	if (active && (!lease_id || strcmp(lease_id, l.id) != 0))
		return sr_err(SITEREC_ELEASE, "%s is leased by %s and the request %s", name, l.owner,
		              lease_id ? "names another lease" : "names no lease");
	if (!active && lease_id)
		return sr_err(SITEREC_ELEASE, "%s has no active lease (the given one expired or was released)",
		              name);
	return 0;
}

/* ---- open / close ---- */

static int mkdir_p(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			int r = mkdir(path, 0755);
			int e = errno;
			*p = c;
			if (r != 0 && e != EEXIST)
				return sr_err_os(sr_errno_code(e), e, "store: cannot create directory %s", path);
			if (!c)
				return 0;
		}
	}
}

static void file_close(void *impl)
{
	fstore *fs = impl;
	if (!fs)
		return;
	sr_free(fs->root);
	sr_free(fs);
}

static const sr_store_ops file_ops;

int sr_store_file_open(siterec_store *st, const char *path)
{
	fstore *fs = sr_calloc(1, sizeof(*fs));
	if (!fs || !(fs->root = sr_strdup(path))) {
		sr_free(fs);
		return sr_err(SITEREC_ENOMEM, "store open: out of memory");
	}
	size_t l = strlen(fs->root);
	while (l > 1 && fs->root[l - 1] == '/')
		fs->root[--l] = 0;
	int rc = 0;
	struct stat s;
	if (l + 512 >= PATH_MAX) {
		rc = sr_err(SITEREC_EINVAL, "store open: directory path too long");
	} else if (stat(fs->root, &s) != 0) {
		int e = errno;
		if (e == ENOENT && (st->opts.flags & SITEREC_STORE_CREATE))
			rc = mkdir_p(fs->root);
		else
			rc = sr_err_os(e == ENOENT ? SITEREC_ENOTFOUND : sr_errno_code(e), e,
			               "store open: directory %s not accessible", fs->root);
	} else if (!S_ISDIR(s.st_mode)) {
		rc = sr_err(SITEREC_EINVAL, "store open: %s is not a directory", fs->root);
	}
	static const char *const subs[] = { "disks", "docs", "tmp" };
	for (size_t i = 0; !rc && i < 3; i++) {
		char p[PATH_MAX];
		join(p, fs->root, subs[i]);
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			rc = sr_err_os(sr_errno_code(e), e, "store open: cannot create %s", p);
		}
	}
	if (rc) {
		file_close(fs);
		return rc;
	}
	st->impl = fs;
	st->ops = &file_ops;
	return 0;
}

/* ---- disks ---- */

static int rm_cb(const char *p, const struct stat *s, int flag, struct FTW *f)
{
	(void)s; (void)flag; (void)f;
	return remove(p);
}

static int file_disk_create(siterec_store *st, const char *name, uint64_t size)
{
	fstore *fs = st->impl;
	char dst[PATH_MAX], tmp[PATH_MAX], p[PATH_MAX];
	int rc = opath(fs, dst, "disks", name, NULL);
	if (rc)
		return rc;
	if (is_doc(fs, name) || exists(dst))
		return sr_err(SITEREC_EEXISTS, "disk create %s: the name is taken", name);
	/* built aside and renamed in: a crash leaves no half-made disk under the name */
	snprintf(tmp, sizeof(tmp), "%s/tmp/new-XXXXXX", fs->root);
	if (!mkdtemp(tmp)) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "disk create %s: cannot make a temporary directory",
		                 name);
	}
	join(p, tmp, "data");
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0 || fsync(fd) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "disk create %s: cannot create its %llu-byte file",
		               name, (unsigned long long)size);
	}
	if (fd >= 0)
		close(fd);
	bmrec r = { 0 };
	if (!rc)
		rc = bm_alloc(&r, size);
	r.a = 1;
	if (!rc) {
		join(p, tmp, "state");
		rc = bm_save(p, MAGIC_STATE, &r);
	}
	bm_free(&r);
	join(p, tmp, "snapshots");
	if (!rc && mkdir(p, 0755) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "disk create %s: cannot create its snapshot directory", name);
	}
	if (!rc && (rc = sr_fsync_dir_of(p)) == 0 && rename(tmp, dst) != 0) {
		int e = errno;
		rc = (e == ENOTEMPTY || e == EEXIST)
		             ? sr_err(SITEREC_EEXISTS, "disk create %s: the name is taken", name)
		             : sr_err_os(sr_errno_code(e), e, "disk create %s: cannot rename into place", name);
	}
	if (rc) {
		nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		return rc;
	}
	return sr_fsync_dir_of(dst);
}

static int no_disk(const char *name)
{
	return sr_err(SITEREC_ENOTFOUND, "disk %s does not exist", name);
}

static int file_disk_size(siterec_store *st, const char *name, const char *snap, uint64_t *size)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX];
	int rc = opath(fs, dir, "disks", name, NULL);
	if (rc)
		return rc;
	if (!snap) {
		struct stat s;
		join(p, dir, "data");
		if (stat(p, &s) != 0)
			return no_disk(name);
		*size = (uint64_t)s.st_size;
		return 0;
	}
	uint64_t id;
	bmrec r;
	if (parse_id(snap, &id))
		return sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snap);
	snap_path(p, dir, id, "idx");
	rc = bm_load(p, MAGIC_SNAP, &r);
	if (rc == SITEREC_ENOTFOUND)
		return exists(dir) ? sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snap)
		                   : no_disk(name);
	if (!rc)
		*size = r.disk_size;
	bm_free(&r);
	return rc;
}

/* The directory of an existing disk, locked: the lock fd, or a negative code. */
static int disk_lock(fstore *fs, const char *name, char *dir)
{
	int rc = opath(fs, dir, "disks", name, NULL);
	if (rc)
		return rc;
	if (!is_disk(fs, name))
		return no_disk(name);
	return lock_obj(dir, name);
}

static int file_disk_delete(siterec_store *st, const char *name, uint32_t flags, const char *lease_id)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], tmp[PATH_MAX];
	int rc = 0;
	int lk = disk_lock(fs, name, dir);
	if (lk < 0)
		return lk;
	uint64_t *ids = NULL;
	size_t n = 0;
	if ((rc = lease_check(dir, name, lease_id)) || (rc = snap_ids(dir, &ids, &n)))
		goto out;
	if (n && !(flags & SITEREC_STORE_DELETE_SNAPSHOTS)) {
		rc = sr_err(SITEREC_EBUSY, "disk delete %s: it has %zu snapshot(s); "
		            "SITEREC_STORE_DELETE_SNAPSHOTS deletes them too", name, n);
		goto out;
	}
	/* one rename takes the whole disk away atomically; the removal is clean-up */
	snprintf(tmp, sizeof(tmp), "%s/tmp/del-XXXXXX", fs->root);
	if (!mkdtemp(tmp) || rename(dir, tmp) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "disk delete %s: cannot move it aside", name);
		goto out;
	}
	sr_fsync_dir_of(dir);
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
out:
	sr_free(ids);
	unlock_obj(lk);
	return rc;
}

static int range_err(const char *name, uint64_t off, uint64_t len, uint64_t size)
{
	return sr_err(SITEREC_ERANGE, "disk %s: [%llu, +%llu) past the end %llu", name,
	              (unsigned long long)off, (unsigned long long)len, (unsigned long long)size);
}

static int file_read(siterec_store *st, const char *name, const char *snap, void *buf, size_t len,
                     uint64_t off)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX];
	int rc = opath(fs, dir, "disks", name, NULL);
	if (rc)
		return rc;
	if (!snap) {
		join(p, dir, "data");
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return no_disk(name);
		struct stat s;
		if (fstat(fd, &s) != 0 || off > (uint64_t)s.st_size || len > (uint64_t)s.st_size - off)
			rc = range_err(name, off, len, (uint64_t)s.st_size);
		else
			rc = sr_pread_full(fd, buf, len, off);
		close(fd);
		return rc;
	}
	if (!exists(dir))
		return no_disk(name);
	chain c;
	if ((rc = chain_load(dir, name, snap, &c)))
		return rc;
	uint64_t size = c.rec[0].disk_size;
	if (off > size || len > size - off) {
		chain_free(&c);
		return range_err(name, off, len, size);
	}
	uint8_t *out = buf;
	while (len && !rc) {
		uint64_t ci = off / CHUNK;
		size_t n = (size_t)((ci + 1) * CHUNK - off);
		if (n > len)
			n = len;
		int k = chain_find(&c, ci);
		if (k < 0)
			memset(out, 0, n);
		else
			rc = sr_pread_full(c.fd[k], out, n, off);
		out += n;
		off += n;
		len -= n;
	}
	chain_free(&c);
	return rc;
}

/* Emit [s, e) clipped to [lo, hi), merging with the pending extent. */
typedef struct emitter {
	uint64_t lo, hi, pend_off, pend_len;
	siterec_extent_fn cb;
	void *payload;
} emitter;

static int emit_flush(emitter *em)
{
	if (!em->pend_len)
		return 0;
	int r = em->cb(em->pend_off, em->pend_len, em->payload);
	em->pend_len = 0;
	return r ? sr_err_callback(r, "store ranges callback") : 0;
}

static int emit(emitter *em, uint64_t s, uint64_t e)
{
	if (s < em->lo) s = em->lo;
	if (e > em->hi) e = em->hi;
	if (s >= e)
		return 0;
	if (em->pend_len && em->pend_off + em->pend_len == s) {
		em->pend_len += e - s;
		return 0;
	}
	int rc = emit_flush(em);
	em->pend_off = s;
	em->pend_len = e - s;
	return rc;
}

static int file_ranges(siterec_store *st, const char *name, const char *snap, uint64_t off,
                       uint64_t len, siterec_extent_fn cb, void *payload)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX];
	int rc = opath(fs, dir, "disks", name, NULL);
	if (rc)
		return rc;
	emitter em = { off, 0, 0, 0, cb, payload };
	if (!snap) {
		join(p, dir, "data");
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return no_disk(name);
		struct stat s;
		if (fstat(fd, &s) != 0) {
			close(fd);
			return no_disk(name);
		}
		uint64_t size = (uint64_t)s.st_size;
		em.hi = len ? off + len : size;
		if (off > size || em.hi > size) {
			close(fd);
			return range_err(name, off, len, size);
		}
		off_t pos = (off_t)off;
		while (!rc && (uint64_t)pos < em.hi) {
			off_t d = lseek(fd, pos, SEEK_DATA);
			if (d < 0) {
				if (errno != ENXIO) {
					int e = errno;
					rc = sr_err_os(SITEREC_EIO, e, "ranges %s: SEEK_DATA failed", name);
				}
				break;
			}
			off_t h = lseek(fd, d, SEEK_HOLE);
			if (h < 0) {
				int e = errno;
				rc = sr_err_os(SITEREC_EIO, e, "ranges %s: SEEK_HOLE failed", name);
				break;
			}
			rc = emit(&em, (uint64_t)d, (uint64_t)h);
			pos = h;
		}
		close(fd);
		return rc ? rc : emit_flush(&em);
	}
	if (!exists(dir))
		return no_disk(name);
	chain c;
	if ((rc = chain_load(dir, name, snap, &c)))
		return rc;
	uint64_t size = c.rec[0].disk_size;
	em.hi = len ? off + len : size;
	if (off > size || em.hi > size) {
		chain_free(&c);
		return range_err(name, off, len, size);
	}
	for (size_t i = 0; i < c.n && !rc; i++) {
		c.alloc[i] = sr_calloc(1, (size_t)((c.rec[i].nbits + 7) / 8) + 1);
		rc = c.alloc[i] ? alloc_map(c.fd[i], size, c.alloc[i], name)
		                : sr_err(SITEREC_ENOMEM, "ranges %s: out of memory", name);
	}
	for (uint64_t ci = off / CHUNK; !rc && ci * CHUNK < em.hi; ci++) {
		int k = chain_find(&c, ci);
		if (k >= 0 && bit_get(c.alloc[k], ci)) {
			uint64_t e = (ci + 1) * CHUNK;
			rc = emit(&em, ci * CHUNK, e > size ? size : e);
		}
	}
	chain_free(&c);
	return rc ? rc : emit_flush(&em);
}

/* ---- writer ---- */

struct sr_store_bwriter {
	siterec_store *st;
	char name[256];
	char dir[PATH_MAX];
	int fd;
	uint64_t size;
	bmrec state;        /* the changed-chunk record as last read or written */
	/* state.b is the record's generation, +1 at each replacement under the disk
	 * lock: a header read tells whether a snapshot or another writer replaced it
	 * (an inode number cannot: file systems reuse a freed one at once) */
	char *lease;
	uint8_t *zeros;     /* fallback for file systems without hole punching */
};

static int state_path(char *out, const char *dir)
{
	join(out, dir, "state");
	return 0;
}

/* The generation of the record at path (its header only), or 0 with an error set. */
static int state_generation(const char *path, const char *name, uint64_t *gen)
{
	uint8_t h[40];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "disk %s: its state record is missing", name);
	}
	int rc = sr_pread_full(fd, h, sizeof(h), 0);
	close(fd);
	if (rc)
		return rc;
	*gen = sr_get_le64(h + 32);
	return 0;
}

static int state_reload(sr_store_bwriter *w)
{
	char p[PATH_MAX];
	uint64_t gen = 0;
	state_path(p, w->dir);
	int rc = state_generation(p, w->name, &gen);
	if (rc)
		return rc;
	if (w->state.bits && gen == w->state.b)
		return 0;
	bm_free(&w->state);
	rc = bm_load(p, MAGIC_STATE, &w->state);
	if (!rc && w->state.disk_size != w->size)
		rc = sr_err(SITEREC_ECORRUPT, "disk %s: state record does not match the disk", w->name);
	if (rc)
		bm_free(&w->state);
	return rc;
}

/* Write-ahead: the chunks about to change are recorded durably before the data
 * lands, so a crash can never leave a change the next snapshot would miss. Runs
 * under the disk's lock, which the snapshot takes as well. */
static int mark_changed(sr_store_bwriter *w, uint64_t off, uint64_t len)
{
	int rc = state_reload(w);
	if (rc)
		return rc;
	int added = 0;
	for (uint64_t ci = off / CHUNK; ci * CHUNK < off + len; ci++)
		if (!bit_get(w->state.bits, ci)) {
			bit_set(w->state.bits, ci);
			added = 1;
		}
	if (!added)
		return 0;
	char p[PATH_MAX];
	state_path(p, w->dir);
	w->state.b++;
	rc = bm_save(p, MAGIC_STATE, &w->state);
	if (rc) {
		bm_free(&w->state); /* unknown what is on disk now: reload next time */
	}
	return rc;
}

/* Under the disk's lock, before data lands: a writer whose lease expired or was
 * taken over is refused at each write, as Azure refuses each Put Page, so a
 * stale writer never lands a byte after the new holder took the disk. */
static int fenced_mark(sr_store_bwriter *w, uint64_t off, uint64_t len)
{
	int rc = lease_check(w->dir, w->name, w->lease);
	return rc ? rc : mark_changed(w, off, len);
}

static int file_writer_open(siterec_store *st, const char *name, const char *lease_id,
                            sr_store_bwriter **out, uint64_t *size)
{
	fstore *fs = st->impl;
	sr_store_bwriter *w = sr_calloc(1, sizeof(*w));
	if (!w)
		return sr_err(SITEREC_ENOMEM, "store writer %s: out of memory", name);
	w->fd = -1;
	w->st = st;
	snprintf(w->name, sizeof(w->name), "%s", name);
	int rc = opath(fs, w->dir, "disks", name, NULL);
	char p[PATH_MAX];
	if (!rc) {
		join(p, w->dir, "data");
		w->fd = open(p, O_RDWR | O_CLOEXEC);
		if (w->fd < 0)
			rc = no_disk(name);
	}
	struct stat s;
	if (!rc && fstat(w->fd, &s) != 0)
		rc = no_disk(name);
	if (!rc) {
		w->size = (uint64_t)s.st_size;
		rc = lease_check(w->dir, name, lease_id);
	}
	if (!rc && lease_id && !(w->lease = sr_strdup(lease_id)))
		rc = sr_err(SITEREC_ENOMEM, "store writer %s: out of memory", name);
	if (!rc)
		rc = state_reload(w);
	if (rc) {
		if (w->fd >= 0)
			close(w->fd);
		bm_free(&w->state);
		sr_free(w->lease);
		sr_free(w);
		return rc;
	}
	*size = w->size;
	*out = w;
	return 0;
}

static int file_writer_write(sr_store_bwriter *w, uint8_t **buf, size_t len, uint64_t off)
{
	sr_store_sleep_until(sr_store_bw_start(w->st, len));
	int lk = lock_obj(w->dir, w->name);
	if (lk < 0)
		return lk;
	int rc = fenced_mark(w, off, len);
	if (!rc)
		rc = sr_pwrite_full(w->fd, *buf, len, off);
	unlock_obj(lk);
	return rc;
}

static int file_writer_zero(sr_store_bwriter *w, uint64_t off, uint64_t len)
{
	int lk = lock_obj(w->dir, w->name);
	if (lk < 0)
		return lk;
	int rc = fenced_mark(w, off, len);
	if (!rc && fallocate(w->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
	                     (off_t)len) != 0) {
		/* no hole punching here: write zeros, a megabyte at a time */
		if (!w->zeros && !(w->zeros = sr_calloc(1, 1u << 20)))
			rc = sr_err(SITEREC_ENOMEM, "store writer %s: out of memory", w->name);
		while (!rc && len) {
			size_t n = len < (1u << 20) ? (size_t)len : (1u << 20);
			rc = sr_pwrite_full(w->fd, w->zeros, n, off);
			off += n;
			len -= n;
		}
	}
	unlock_obj(lk);
	return rc;
}

static int file_writer_sync(sr_store_bwriter *w)
{
	if (fdatasync(w->fd) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "store writer %s: fdatasync failed", w->name);
	}
	/* a lease lost while writing turns the batch into a failure the caller sees */
	return lease_check(w->dir, w->name, w->lease);
}

static void file_writer_close(sr_store_bwriter *w)
{
	if (!w)
		return;
	close(w->fd);
	bm_free(&w->state);
	if (w->lease) {
		explicit_bzero(w->lease, strlen(w->lease));
		sr_free(w->lease);
	}
	sr_free(w->zeros);
	sr_free(w);
}

/* ---- snapshots ---- */

static uint64_t popcount_bits(const bmrec *r)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < r->nbits; i++)
		n += (uint64_t)bit_get(r->bits, i);
	return n;
}

/* Copy the chunks set in want (and not in skip, when given) from src to dst at the
 * same offsets; all-zero chunks stay holes. Progress counts chunks copied. */
static int copy_chunks(siterec_store *st, const char *name, int src, int dst, uint64_t size,
                       const uint8_t *want, const uint8_t *skip, uint64_t total, uint8_t *mark)
{
	uint8_t *buf = sr_malloc(CHUNK);
	if (!buf)
		return sr_err(SITEREC_ENOMEM, "snapshot %s: out of memory", name);
	int rc = sr_store_progress(st, 0, total);
	uint64_t done = 0;
	for (uint64_t ci = 0; !rc && ci < nchunks(size); ci++) {
		if (!bit_get(want, ci) || (skip && bit_get(skip, ci)))
			continue;
		uint64_t off = ci * CHUNK;
		size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
		rc = sr_pread_full(src, buf, n, off);
		if (!rc && !sr_is_zero(buf, n))
			rc = sr_pwrite_full(dst, buf, n, off);
		if (mark)
			bit_set(mark, ci);
		done += n;
		if (!rc)
			rc = sr_store_progress(st, done, total);
	}
	sr_free(buf);
	return rc;
}

static int file_snapshot(siterec_store *st, const char *name, char *id_out, size_t cap)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX], idx[PATH_MAX], dpath[PATH_MAX];
	int rc = 0;
	int lk = disk_lock(fs, name, dir);
	if (lk < 0)
		return lk;
	bmrec state = { 0 }, snap = { 0 };
	uint64_t *ids = NULL;
	size_t n = 0, depth = 0;
	int src = -1, dst = -1;
	state_path(p, dir);
	if ((rc = bm_load(p, MAGIC_STATE, &state)) || (rc = snap_ids(dir, &ids, &n)))
		goto out;
	uint64_t newest = n ? ids[n - 1] : 0, parent = newest;
	/* a delta resolves through its parents; before the chain would outgrow what
	 * a read follows, start a new one with a snapshot of every chunk with data */
	if (parent && (rc = chain_depth(dir, name, parent, &depth)))
		goto out;
	if (depth >= CHAIN_MAX - 1)
		parent = 0;
	uint64_t id = state.a > newest ? state.a : newest + 1;
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)id);
	if (strlen(idbuf) + 1 > cap) {
		rc = sr_err(SITEREC_EINVAL, "snapshot %s: id buffer of %zu bytes too small", name, cap);
		goto out;
	}
	snap_path(idx, dir, id, "idx");
	snap_path(dpath, dir, id, "data");
	join(p, dir, "data");
	src = open(p, O_RDONLY | O_CLOEXEC);
	unlink(dpath); /* left by an interrupted earlier attempt: its index was never written */
	dst = open(dpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (src < 0 || dst < 0 || ftruncate(dst, (off_t)state.disk_size) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "snapshot %s: cannot create the snapshot file", name);
		goto out;
	}
	if ((rc = bm_alloc(&snap, state.disk_size)))
		goto out;
	snap.a = id;
	if (ioctl(dst, FICLONE, src) == 0) {
		/* a reflink shares every block: a complete, independent snapshot */
		snap.flags = SNAP_FULL;
		memset(snap.bits, 0xff, (size_t)((snap.nbits + 7) / 8));
		rc = sr_store_progress(st, state.disk_size, state.disk_size);
	} else {
		/* delta: the chunks changed since the parent; the first one takes every
		 * chunk that holds data */
		snap.b = parent;
		uint8_t *want = state.bits;
		if (!parent && (rc = alloc_map(src, state.disk_size, state.bits, name)))
			goto out;
		rc = copy_chunks(st, name, src, dst, state.disk_size, want, NULL,
		                 popcount_bits(&state) * CHUNK, snap.bits);
	}
	if (!rc && fdatasync(dst) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "snapshot %s: fdatasync failed", name);
	}
	/* the index is the commit point: before it the snapshot does not exist */
	if (!rc)
		rc = bm_save(idx, MAGIC_SNAP, &snap);
	if (rc)
		goto out;
	memset(state.bits, 0, (size_t)((state.nbits + 7) / 8));
	state.a = id + 1;
	state.b++;
	state_path(p, dir);
	/* a crash before this only makes the next snapshot copy some chunks again */
	rc = bm_save(p, MAGIC_STATE, &state);
	if (!rc)
		memcpy(id_out, idbuf, strlen(idbuf) + 1);
out:
	if (rc && dst >= 0 && !exists(idx))
		unlink(dpath);
	if (src >= 0) close(src);
	if (dst >= 0) close(dst);
	bm_free(&state);
	bm_free(&snap);
	sr_free(ids);
	unlock_obj(lk);
	return rc;
}

static int file_snapshot_delete(siterec_store *st, const char *name, const char *snapname)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	uint64_t id;
	if (parse_id(snapname, &id))
		return sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snapname);
	int rc = 0;
	int lk = disk_lock(fs, name, dir);
	if (lk < 0)
		return lk;
	bmrec victim = { 0 }, child = { 0 }, r = { 0 };
	uint64_t *ids = NULL;
	size_t n = 0;
	int vfd = -1, cfd = -1;
	snap_path(p, dir, id, "idx");
	rc = bm_load(p, MAGIC_SNAP, &victim);
	if (rc == SITEREC_ENOTFOUND)
		rc = sr_err(SITEREC_ENOTFOUND, "disk %s has no snapshot %s", name, snapname);
	if (rc || (rc = snap_ids(dir, &ids, &n)))
		goto out;
	/* the newer snapshot resolving through this one inherits its chunks */
	for (size_t i = 0; i < n && !child.bits; i++) {
		if (ids[i] <= id)
			continue;
		snap_path(q, dir, ids[i], "idx");
		if ((rc = bm_load(q, MAGIC_SNAP, &r)))
			goto out;
		if (r.b == id)
			child = r;
		else
			bm_free(&r);
	}
	if (child.bits) {
		snap_path(p, dir, id, "data");
		snap_path(q, dir, child.a, "data");
		vfd = open(p, O_RDONLY | O_CLOEXEC);
		cfd = open(q, O_RDWR | O_CLOEXEC);
		if (vfd < 0 || cfd < 0) {
			int e = errno;
			rc = sr_err_os(SITEREC_ECORRUPT, e, "snapshot delete %s@%s: a data file is missing",
			               name, snapname);
			goto out;
		}
		uint64_t total = 0;
		for (uint64_t ci = 0; ci < victim.nbits; ci++)
			if (bit_get(victim.bits, ci) && !bit_get(child.bits, ci))
				total += CHUNK;
		/* chunks land in the child's file first (invisible until its index says
		 * so), then the index is replaced: a crash leaves both snapshots whole */
		rc = copy_chunks(st, name, vfd, cfd, victim.disk_size, victim.bits, child.bits, total,
		                 child.bits);
		if (!rc && fdatasync(cfd) != 0) {
			int e = errno;
			rc = sr_err_os(sr_errno_code(e), e, "snapshot delete %s: fdatasync failed", name);
		}
		if (rc)
			goto out;
		child.b = victim.b;
		snap_path(q, dir, child.a, "idx");
		if ((rc = bm_save(q, MAGIC_SNAP, &child)))
			goto out;
	} else if (n && ids[n - 1] == id) {
		/* the newest: its changes count again as changes since its parent */
		bmrec state;
		state_path(q, dir);
		if ((rc = bm_load(q, MAGIC_STATE, &state)))
			goto out;
		for (size_t i = 0; i < (size_t)((state.nbits + 7) / 8); i++)
			state.bits[i] |= victim.bits[i];
		rc = bm_save(q, MAGIC_STATE, &state);
		bm_free(&state);
		if (rc)
			goto out;
	}
	snap_path(p, dir, id, "idx");
	if (unlink(p) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "snapshot delete %s@%s: cannot remove", name, snapname);
		goto out;
	}
	sr_fsync_dir_of(p);
	snap_path(p, dir, id, "data");
	unlink(p);
out:
	if (vfd >= 0) close(vfd);
	if (cfd >= 0) close(cfd);
	bm_free(&victim);
	bm_free(&child);
	sr_free(ids);
	unlock_obj(lk);
	return rc;
}

/* ---- documents: docs/ENC/doc ---- */

typedef struct docrec {
	uint64_t counter, tag;
	void *data;       /* whole file; content at DOC_HDR */
	size_t len;       /* content length */
} docrec;

static void etag_of(const docrec *d, char *out, size_t cap)
{
	snprintf(out, cap, "%llu-%016llx", (unsigned long long)d->counter, (unsigned long long)d->tag);
}

/* 1 found, 0 absent, negative error. */
static int doc_load(const char *dir, const char *name, docrec *d)
{
	char p[PATH_MAX];
	size_t len;
	memset(d, 0, sizeof(*d));
	join(p, dir, "doc");
	int rc = sr_file_read_all(p, DOC_MAX_FILE, &d->data, &len);
	if (rc == SITEREC_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	const uint8_t *b = d->data;
	if (len < DOC_HDR + 8 || memcmp(b, MAGIC_DOC, 8) != 0 || sr_get_le32(b + 8) != 1 ||
	    sr_get_le64(b + 32) != len - DOC_HDR - 8 ||
	    sr_get_le64(b + len - 8) != sr_hash64(b, len - 8)) {
		sr_free(d->data);
		d->data = NULL;
		return sr_err(SITEREC_ECORRUPT, "document %s is damaged", name);
	}
	d->counter = sr_get_le64(b + 16);
	d->tag = sr_get_le64(b + 24);
	d->len = len - DOC_HDR - 8;
	return 1;
}

static int match_check(const char *name, int found, const docrec *d, const char *if_match)
{
	if (!if_match)
		return 0;
	if (!*if_match)
		return found ? sr_err(SITEREC_ECONFLICT, "document %s already exists", name) : 0;
	char et[SITEREC_STORE_ETAG_MAX];
	if (!found)
		return sr_err(SITEREC_ECONFLICT, "document %s does not exist (ETag %.*s expected)", name,
		              SITEREC_STORE_ETAG_MAX, if_match);
	etag_of(d, et, sizeof(et));
	if (strcmp(et, if_match) != 0)
		return sr_err(SITEREC_ECONFLICT, "document %s changed: ETag is %s, not %.*s", name, et,
		              SITEREC_STORE_ETAG_MAX, if_match);
	return 0;
}

/* Puts and deletes of documents run under the document's lock: check and replace
 * are one step against other handles and processes. */
static int doc_begin(fstore *fs, const char *name, char *dir, int create)
{
	int rc = opath(fs, dir, "docs", name, NULL);
	if (rc)
		return rc;
	if (is_disk(fs, name))
		return sr_err(SITEREC_EEXISTS, "%s is a disk, not a document", name);
	if (create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "document %s: cannot create its directory", name);
	}
	if (!create && !exists(dir))
		return sr_err(SITEREC_ENOTFOUND, "document %s does not exist", name);
	return lock_obj(dir, name);
}

static int file_doc_put(siterec_store *st, const char *name, const void *data, size_t len,
                        const char *if_match, char *etag_out, size_t cap)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX];
	int lk = doc_begin(fs, name, dir, 1);
	if (lk < 0)
		return lk;
	docrec old, nd = { 0 };
	int found = doc_load(dir, name, &old);
	int rc = found < 0 ? found : match_check(name, found, &old, if_match);
	if (!rc)
		rc = lease_check(dir, name, NULL);
	if (rc == SITEREC_ELEASE)
		rc = sr_err(SITEREC_ELEASE, "document %s is leased: use the lease (not supported for "
		            "documents in this release)", name);
	/* a fresh random tag besides the counter: an ETag never repeats, even after a
	 * delete and re-create with the same content */
	if (!rc)
		rc = sr_random_bytes(&nd.tag, sizeof(nd.tag));
	uint8_t *b = NULL;
	if (!rc && !(b = sr_malloc(DOC_HDR + len + 8)))
		rc = sr_err(SITEREC_ENOMEM, "document %s: out of memory", name);
	if (!rc) {
		nd.counter = (found == 1 ? old.counter : 0) + 1;
		memcpy(b, MAGIC_DOC, 8);
		sr_put_le32(b + 8, 1);
		sr_put_le32(b + 12, 0);
		sr_put_le64(b + 16, nd.counter);
		sr_put_le64(b + 24, nd.tag);
		sr_put_le64(b + 32, len);
		if (len)
			memcpy(b + DOC_HDR, data, len);
		sr_put_le64(b + DOC_HDR + len, sr_hash64(b, DOC_HDR + len));
		join(p, dir, "doc");
		rc = sr_file_replace(p, b, DOC_HDR + len + 8);
	}
	if (!rc && etag_out) {
		char et[SITEREC_STORE_ETAG_MAX];
		etag_of(&nd, et, sizeof(et));
		if (strlen(et) >= cap)
			rc = sr_err(SITEREC_EINVAL, "document %s stored, but its ETag does not fit %zu bytes",
			            name, cap);
		else
			memcpy(etag_out, et, strlen(et) + 1);
	}
	sr_free(b);
	if (found == 1)
		sr_free(old.data);
	unlock_obj(lk);
	return rc;
}

static int file_doc_get(siterec_store *st, const char *name, void **data, size_t *len,
                        char *etag_out, size_t cap)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX];
	int rc = opath(fs, dir, "docs", name, NULL);
	if (rc)
		return rc;
	docrec d;
	int found = doc_load(dir, name, &d);
	if (found < 0)
		return found;
	if (!found)
		return sr_err(SITEREC_ENOTFOUND, "document %s does not exist", name);
	char et[SITEREC_STORE_ETAG_MAX];
	etag_of(&d, et, sizeof(et));
	if (etag_out && strlen(et) >= cap) {
		sr_free(d.data);
		return sr_err(SITEREC_EINVAL, "document %s: ETag buffer of %zu bytes too small", name, cap);
	}
	/* hand back the content alone, in its own allocation */
	uint8_t *out = sr_malloc(d.len ? d.len : 1);
	if (!out) {
		sr_free(d.data);
		return sr_err(SITEREC_ENOMEM, "document %s: out of memory", name);
	}
	memcpy(out, (uint8_t *)d.data + DOC_HDR, d.len);
	*data = out;
	*len = d.len;
	if (etag_out)
		memcpy(etag_out, et, strlen(et) + 1);
	sr_free(d.data);
	return 0;
}

static int file_doc_delete(siterec_store *st, const char *name, const char *if_match)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX], p[PATH_MAX];
	int lk = doc_begin(fs, name, dir, 0);
	if (lk < 0)
		return lk;
	docrec d;
	int found = doc_load(dir, name, &d);
	int rc = found < 0 ? found : 0;
	if (!rc && !found)
		rc = sr_err(SITEREC_ENOTFOUND, "document %s does not exist", name);
	if (!rc)
		rc = match_check(name, found, &d, if_match);
	if (!rc)
		rc = lease_check(dir, name, NULL);
	if (!rc) {
		/* the lease goes with the document; the directory and its lock stay */
		join(p, dir, "lease");
		unlink(p);
		join(p, dir, "doc");
		if (unlink(p) != 0) {
			int e = errno;
			rc = sr_err_os(sr_errno_code(e), e, "document %s: cannot delete", name);
		} else {
			rc = sr_fsync_dir_of(p);
		}
	}
	if (found == 1)
		sr_free(d.data);
	unlock_obj(lk);
	return rc;
}

/* ---- leases ---- */

/* The disk's directory, locked; leases fence disk writers only (documents have
 * If-Match), EINVAL for a document, ENOTFOUND when neither exists. */
static int lease_begin(fstore *fs, const char *name, char *dir)
{
	int rc;
	if (is_disk(fs, name))
		rc = opath(fs, dir, "disks", name, NULL);
	else if (is_doc(fs, name))
		return sr_err(SITEREC_EINVAL, "lease: %s is a document: leases are for disks, "
		                              "documents are guarded by If-Match", name);
	else
		return sr_err(SITEREC_ENOTFOUND, "lease: no disk %s", name);
	return rc ? rc : lock_obj(dir, name);
}

static int file_lease_acquire(siterec_store *st, const char *name, uint32_t duration,
                              const char *proposed, char *out, size_t cap)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX];
	int lk = lease_begin(fs, name, dir);
	if (lk < 0)
		return lk;
	lease cur, nl;
	memset(&nl, 0, sizeof(nl));
	int rc = lease_read(dir, name, &cur);
	if (rc == 1) {
		/* the holder may acquire again with its own id (extends it, as Azure does) */
		if (lease_active(&cur) && (!proposed || strcmp(proposed, cur.id) != 0))
			rc = sr_err(SITEREC_ELEASE, "%s is leased by %s", name, cur.owner);
		else
			rc = 0;
	}
	if (!rc) {
		if (proposed) {
			snprintf(nl.id, sizeof(nl.id), "%s", proposed);
		} else {
			uint8_t r[16];
			if ((rc = sr_random_bytes(r, sizeof(r))) == 0)
				snprintf(nl.id, sizeof(nl.id),
				         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
				         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
				         r[12], r[13], r[14], r[15]);
		}
	}
	if (!rc && strlen(nl.id) >= cap)
		rc = sr_err(SITEREC_EINVAL, "lease acquire %s: output buffer of %zu bytes too small", name,
		            cap);
	if (!rc) {
		char host[40] = "?";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = 0;
		snprintf(nl.owner, sizeof(nl.owner), "%s:%ld", host, (long)getpid());
		nl.duration = duration;
		nl.expiry = duration ? (uint64_t)time(NULL) + duration : 0;
		rc = lease_write(dir, &nl);
	}
	if (!rc)
		memcpy(out, nl.id, strlen(nl.id) + 1);
	unlock_obj(lk);
	return rc;
}

/* Remove the lease record of a locked disk directory (release, break). */
static int lease_remove(const char *dir, const char *name, const char *what)
{
	char p[PATH_MAX];
	join(p, dir, "lease");
	if (unlink(p) != 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "lease %s %s: cannot remove", what, name);
	}
	return sr_fsync_dir_of(p);
}

/* Renew or release: both need the lease held by this id. */
static int lease_change(siterec_store *st, const char *name, const char *id, int release)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX];
	const char *what = release ? "release" : "renew";
	int lk = lease_begin(fs, name, dir);
	if (lk < 0)
		return lk;
	lease cur;
	int rc = lease_read(dir, name, &cur);
	if (rc == 0 || (rc == 1 && strcmp(cur.id, id) != 0)) {
		rc = sr_err(SITEREC_ELEASE, "lease %s %s: the lease is not held by this id", what, name);
	} else if (rc == 1 && !release) {
		/* an expired lease nobody took since may be renewed (as Azure allows) */
		cur.expiry = cur.duration ? (uint64_t)time(NULL) + cur.duration : 0;
		rc = lease_write(dir, &cur);
	} else if (rc == 1) {
		rc = lease_remove(dir, name, what);
	}
	unlock_obj(lk);
	return rc;
}

static int file_lease_renew(siterec_store *st, const char *name, const char *id)
{
	return lease_change(st, name, id, 0);
}

static int file_lease_release(siterec_store *st, const char *name, const char *id)
{
	return lease_change(st, name, id, 1);
}

/* Break: the record goes whatever its id (active or expired), under the disk's
 * lock, so the holder's next write, renewal or release finds no lease. */
static int file_lease_break(siterec_store *st, const char *name)
{
	fstore *fs = st->impl;
	char dir[PATH_MAX];
	int lk = lease_begin(fs, name, dir);
	if (lk < 0)
		return lk;
	lease cur;
	int rc = lease_read(dir, name, &cur);
	if (rc == 1)
		rc = lease_remove(dir, name, "break");
	unlock_obj(lk);
	return rc;
}

/* ---- listing ---- */

typedef struct litem {
	char name[256];
	int kind;
	uint64_t size, snap;
} litem;

typedef struct lvec {
	litem *v;
	size_t n, cap;
} lvec;

static int lpush(lvec *l, const char *name, int kind, uint64_t size, uint64_t snap)
{
	litem *nv = sr_grow(l->v, &l->cap, l->n, sizeof(*nv), 64);
	if (!nv)
		return sr_err(SITEREC_ENOMEM, "store list: out of memory");
	l->v = nv;
	litem *it = &l->v[l->n++];
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->kind = kind;
	it->size = size;
	it->snap = snap;
	return 0;
}

static int litem_cmp(const void *a, const void *b)
{
	const litem *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	return x->snap < y->snap ? -1 : x->snap > y->snap;
}

static int list_top(fstore *fs, const char *top, const char *prefix, lvec *l)
{
	char p[PATH_MAX];
	join(p, fs->root, top);
	DIR *d = opendir(p);
	if (!d) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "store list: cannot read %s", p);
	}
	int rc = 0;
	struct dirent *de;
	int disks = strcmp(top, "disks") == 0;
	while (!rc && (de = readdir(d))) {
		char name[256], dir[PATH_MAX];
		struct stat s;
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n >= sizeof(name))
			continue;
		for (size_t i = 0; i <= n; i++)
			name[i] = de->d_name[i] == '%' ? '/' : de->d_name[i];
		if (!sr_store_name_ok(name) || strncmp(name, prefix, strlen(prefix)) != 0)
			continue;
		if (opath(fs, dir, top, name, NULL))
			continue;
		join(p, dir, disks ? "data" : "doc");
		if (stat(p, &s) != 0)
			continue;
		if (!disks) {
			rc = lpush(l, name, SITEREC_STORE_KIND_DOC,
			           (uint64_t)s.st_size >= DOC_HDR + 8 ? (uint64_t)s.st_size - DOC_HDR - 8 : 0,
			           0);
			continue;
		}
		rc = lpush(l, name, SITEREC_STORE_KIND_DISK, (uint64_t)s.st_size, 0);
		uint64_t *ids = NULL;
		size_t k = 0;
		if (!rc && snap_ids(dir, &ids, &k) == 0) {
			for (size_t i = 0; i < k && !rc; i++) {
				bmrec r;
				snap_path(p, dir, ids[i], "idx");
				if (bm_load(p, MAGIC_SNAP, &r) == 0) {
					rc = lpush(l, name, SITEREC_STORE_KIND_SNAPSHOT, r.disk_size, ids[i]);
					bm_free(&r);
				}
			}
			sr_free(ids);
		}
	}
	closedir(d);
	return rc;
}

static int file_list(siterec_store *st, const char *prefix, siterec_store_list_fn cb, void *payload)
{
	fstore *fs = st->impl;
	lvec l = { 0 };
	int rc = list_top(fs, "disks", prefix, &l);
	if (!rc)
		rc = list_top(fs, "docs", prefix, &l);
	if (!rc && l.n)
		qsort(l.v, l.n, sizeof(*l.v), litem_cmp);
	siterec_error_clear(); /* snapshot damage skipped above is not this call's failure */
	for (size_t i = 0; !rc && i < l.n; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%llu", (unsigned long long)l.v[i].snap);
		int r = cb(l.v[i].name, l.v[i].kind, l.v[i].size,
		           l.v[i].kind == SITEREC_STORE_KIND_SNAPSHOT ? id : NULL, payload);
		if (r)
			rc = sr_err_callback(r, "store list callback");
	}
	sr_free(l.v);
	return rc;
}

static const sr_store_ops file_ops = {
	.name = "file",
	.close = file_close,
	.disk_create = file_disk_create,
	.disk_size = file_disk_size,
	.disk_delete = file_disk_delete,
	.read = file_read,
	.ranges = file_ranges,
	.writer_open = file_writer_open,
	.writer_write = file_writer_write,
	.writer_zero = file_writer_zero,
	.writer_sync = file_writer_sync,
	.writer_close = file_writer_close,
	.snapshot = file_snapshot,
	.snapshot_delete = file_snapshot_delete,
	.doc_put = file_doc_put,
	.doc_get = file_doc_get,
	.doc_delete = file_doc_delete,
	.lease_acquire = file_lease_acquire,
	.lease_renew = file_lease_renew,
	.lease_release = file_lease_release,
	.lease_break = file_lease_break,
	.list = file_list,
};
