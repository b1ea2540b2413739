/* libFuzzer target: the upload record (NAME.upload, JSON) as a resumed
 * siterec_store_upload() reads it. A file:// store in a private directory (under
 * /dev/shm when there is one: the record's fsyncs then cost little, removed at
 * exit); each input is stored as the record of disk "d" and an upload of a 4 KiB
 * source ("src") resumes from it. Every call must return 0 or a negative code;
 * ASan/UBSan catch the rest. Whatever the upload made is removed for the next. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <siterec/siterec.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static siterec_store *st;
static char dir[64];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	siterec_store_free(st);
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int fill(void *buf, size_t len, uint64_t off, void *payload)
{
	(void)off, (void)payload;
	memset(buf, 0x5a, len);
	return 0;
}

static siterec_store *store(void)
{
	if (st)
		return st;
	snprintf(dir, sizeof(dir), "%s/siterec-fuzz-upload-XXXXXX",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir)) {
		dir[0] = 0;
		return NULL;
	}
	atexit(cleanup);
	char url[96];
	snprintf(url, sizeof(url), "file://%s", dir);
	return siterec_store_open(&st, url, NULL) == 0 ? st : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	siterec_store *s = store();
	if (!s || size > 65536 || siterec_store_doc_put(s, "d.upload", data, size, NULL, NULL, 0))
		return 0;
	siterec_store_upload_options o = SITEREC_STORE_UPLOAD_OPTIONS_INIT;
	o.flags = SITEREC_STORE_UPLOAD_RESUME;
	o.source_id = "src";
	o.checkpoint_bytes = 512;
	if (siterec_store_upload(s, "d", 4096, fill, NULL, NULL, &o, NULL) > 0)
		abort();
	o.flags |= SITEREC_STORE_UPLOAD_VHD;
	if (siterec_store_upload(s, "d", 4096, fill, NULL, NULL, &o, NULL) > 0)
		abort();
	siterec_store_disk_delete(s, "d", SITEREC_STORE_DELETE_SNAPSHOTS, NULL);
	return 0;
}
