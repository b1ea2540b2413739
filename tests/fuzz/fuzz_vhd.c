/* libFuzzer target: any bytes opened as a VHD (format forced, so the parser sees
 * everything, not only files that pass detection), then a status walk and reads at
 * the start, the end and places the input picks. Open and every call must return
 * 0 or a negative code; ASan/UBSan catch the rest. Each input runs twice: as given,
 * and with the footer and dynamic header checksums made right, so mutations of the
 * checksummed fields reach the checks behind the checksum. */
#include <siterec/siterec.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* reads are bounded: a tiny file can describe a disk of terabytes */
#define MAX_READ (256u * 1024)

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void set_csum(uint8_t *p, size_t len, size_t at)
{
	uint32_t s = 0;
	for (size_t i = 0; i < len; i++)
		if (i < at || i >= at + 4)
			s += p[i];
	s = ~s;
	for (int i = 0; i < 4; i++)
		p[at + (size_t)i] = (uint8_t)(s >> (24 - 8 * i));
}

static void run_one(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0)
		return;
	siterec_disk_options o = SITEREC_DISK_OPTIONS_INIT;
	o.format = SITEREC_DISK_FORMAT_VHD;
	siterec_disk *d = NULL;
	int rc = siterec_disk_open(&d, path, &o);
	if (rc > 0)
		abort();
	if (rc == 0) {
		siterec_disk_info info = { .version = SITEREC_DISK_INFO_VERSION };
		if (siterec_disk_info_get(d, &info) != 0)
			abort();
		uint64_t vs = info.virtual_size;
		uint8_t *buf = malloc(MAX_READ);
		if (buf && vs) {
			/* allocation runs from the start, a bounded number of them */
			uint64_t off = 0;
			for (int i = 0; i < 256 && off < vs; i++) {
				uint64_t run = 0;
				int alloc = -1;
				rc = siterec_disk_block_status(d, off, vs - off, &run, &alloc);
				if (rc > 0 || (rc == 0 && (run == 0 || run > vs - off || (alloc != 0 && alloc != 1))))
					abort();
				if (rc)
					break;
				off += run;
			}
			/* reads: start, end, middle, and offsets taken from the input's first bytes */
			uint64_t seeds[4] = { 0, vs, vs / 2, 0 };
			for (size_t i = 0; i < 8 && i < size; i++)
				seeds[3] = (seeds[3] << 8) | data[i];
			for (int i = 0; i < 4; i++) {
				uint64_t len = vs < MAX_READ ? vs : MAX_READ;
				if (i == 3)
					len = 1 + (seeds[3] >> 40) % len;
				uint64_t at = seeds[i] % (vs - len + 1);
				if (i == 1)
					at = vs - len;
				rc = siterec_disk_read(d, buf, (size_t)len, at);
				if (rc > 0)
					abort();
			}
		}
		free(buf);
		siterec_disk_free(d);
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size);
	if (size < 512)
		return 0;
	uint8_t *c = malloc(size);
	if (!c)
		return 0;
	memcpy(c, data, size);
	set_csum(c + size - 512, 512, 64);
	if (size >= 1024)
		set_csum(c, 512, 64);
	/* the dynamic header where the end footer's data offset points */
	uint64_t h = ((uint64_t)be32(c + size - 512 + 16) << 32) | be32(c + size - 512 + 20);
	if (h < size && size - h >= 1024)
		set_csum(c + h, 1024, 36);
	run_one(c, size);
	free(c);
	return 0;
}
