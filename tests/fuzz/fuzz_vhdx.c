/*
 * libFuzzer target for the VHDX reader. The input becomes a file that is opened
 * as VHDX (with and without SITEREC_DISK_REPLAY_LOG), read and status-walked.
 *
 * A VHDX is at least ~4 MiB (1 MiB-aligned regions), which a mutator explores
 * badly, so besides raw files the input may be a sparse image:
 *   "SPRS" u32 file_pages, then records { u32 page, u16 len, len bytes }
 * placing bytes at page * 4096 of a file of file_pages * 4096 bytes (size capped
 * at 64 MiB). The .sprs seeds in corpus/vhdx are qemu-img images (dynamic 1 MiB
 * and 2 MiB blocks, fixed, and one with a crafted unapplied log entry) with
 * their all-zero pages left out; head-raw.vhdx is a raw truncated image.
 * Run with TMPDIR on a tmpfs (/dev/shm) for speed.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <siterec/siterec.h>

#define PAGE 4096u
#define MAX_PAGES (64u * 256u) /* 64 MiB */

static char path[4096];

static int setup(void)
{
	if (path[0])
		return 0;
	const char *t = getenv("TMPDIR");
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/fuzz-vhdx-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/f.vhdx", dir);
	return 0;
}

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	int rc = 0;
	if (size >= 8 && memcmp(data, "SPRS", 4) == 0) {
		uint32_t pages = le32(data + 4);
		if (pages > MAX_PAGES)
			pages = MAX_PAGES;
		if (ftruncate(fd, (off_t)pages * PAGE) != 0)
			rc = -1;
		size_t i = 8;
		while (rc == 0 && i + 6 <= size) {
			uint32_t pg = le32(data + i);
			size_t len = (size_t)(data[i + 4] | data[i + 5] << 8);
			i += 6;
			if (len > size - i)
				len = size - i;
			if (pg < MAX_PAGES && pwrite(fd, data + i, len, (off_t)pg * PAGE) != (ssize_t)len)
				rc = -1;
			i += len;
		}
	} else if (size && pwrite(fd, data, size, 0) != (ssize_t)size) {
		rc = -1;
	}
	close(fd);
	return rc;
}

static void exercise(uint32_t flags)
{
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.format = SITEREC_DISK_FORMAT_VHDX;
	o.flags = flags;
	o.max_chain = 4;
	siterec_disk *d = NULL;
	if (siterec_disk_open(&d, path, &o) != 0)
		return;
	siterec_disk_info in;
	memset(&in, 0, sizeof(in));
	in.version = SITEREC_DISK_INFO_VERSION;
	if (siterec_disk_info_get(d, &in) == 0 && in.virtual_size) {
		static uint8_t buf[256u << 10];
		uint64_t vs = in.virtual_size;
		uint64_t offs[4] = { 0, vs / 3, vs / 2 + 511, vs > sizeof(buf) ? vs - sizeof(buf) : 0 };
		for (int i = 0; i < 4; i++) {
			uint64_t off = offs[i] < vs ? offs[i] : 0;
			size_t n = vs - off < sizeof(buf) ? (size_t)(vs - off) : sizeof(buf);
			(void)siterec_disk_read(d, buf, n, off);
		}
		uint64_t off = 0;
		for (int i = 0; i < 32 && off < vs; i++) {
			uint64_t run = 0;
			int a = 0;
			if (siterec_disk_block_status(d, off, vs - off, &run, &a) != 0 || run == 0)
				break;
			off += run;
		}
	}
	siterec_disk_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (setup() != 0 || write_input(data, size) != 0)
		return 0;
	exercise(0);
	exercise(SITEREC_DISK_REPLAY_LOG);
	return 0;
}
