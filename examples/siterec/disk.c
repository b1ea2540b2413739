/* siterec disk info|convert|compare: thin wrappers over disk.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define CHUNK (4u << 20)

static const char *format_name(uint32_t f)
{
	switch (f) {
	case SITEREC_DISK_FORMAT_RAW: return "raw";
	case SITEREC_DISK_FORMAT_VHD: return "vhd";
	case SITEREC_DISK_FORMAT_VHDX: return "vhdx";
	default: return "unknown";
	}
}

static const char *kind_name(uint32_t k)
{
	switch (k) {
	case SITEREC_DISK_KIND_FIXED: return "fixed";
	case SITEREC_DISK_KIND_DYNAMIC: return "dynamic";
	case SITEREC_DISK_KIND_DIFFERENCING: return "differencing";
	default: return "unknown";
	}
}

static int open_ro(siterec_disk **d, const char *path)
{
	if (siterec_disk_open(d, path, NULL))
		return cli_fail(path);
	return 0;
}

/* Bytes of [off, off+len) that hold data (allocated), for the info summary. */
static int allocated_bytes(siterec_disk *d, uint64_t size, uint64_t *out)
{
	uint64_t off = 0, total = 0;
	while (off < size) {
		uint64_t run;
		int alloc;
		if (siterec_disk_block_status(d, off, size - off, &run, &alloc))
			return -1;
		if (alloc)
			total += run;
		off += run;
	}
	*out = total;
	return 0;
}

static int disk_info(const char *path, int json)
{
	siterec_disk *d;
	int rc = open_ro(&d, path);
	if (rc)
		return rc;
	siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
	uint64_t alloc = 0;
	if (siterec_disk_info_get(d, &in) || allocated_bytes(d, in.virtual_size, &alloc)) {
		rc = cli_fail(path);
		siterec_disk_free(d);
		return rc;
	}
	char id[33];
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", in.disk_id[i]);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "path", path);
		cJSON_AddStringToObject(o, "format", format_name(in.format));
		cJSON_AddStringToObject(o, "kind", kind_name(in.kind));
		cJSON_AddNumberToObject(o, "virtual_size", (double)in.virtual_size);
		cJSON_AddNumberToObject(o, "file_size", (double)in.file_size);
		cJSON_AddNumberToObject(o, "allocated_bytes", (double)alloc);
		cJSON_AddNumberToObject(o, "logical_sector", in.logical_sector);
		cJSON_AddNumberToObject(o, "physical_sector", in.physical_sector);
		cJSON_AddNumberToObject(o, "block_size", in.block_size);
		cJSON_AddStringToObject(o, "disk_id", id);
		cJSON_AddNumberToObject(o, "generation_hint", in.generation_hint);
		cJSON_AddNumberToObject(o, "chain_depth", in.chain_depth);
		cJSON_AddBoolToObject(o, "log_replayed", in.log_replayed != 0);
		char *s = cJSON_Print(o);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(o);
	} else {
		printf("image           %s\n", path);
		printf("format          %s %s\n", format_name(in.format), kind_name(in.kind));
		printf("virtual size    %" PRIu64 " (%.2f GiB)\n", in.virtual_size,
		       (double)in.virtual_size / (1 << 30));
		printf("file size       %" PRIu64 "\n", in.file_size);
		printf("allocated       %" PRIu64 "\n", alloc);
		printf("sectors         %u logical, %u physical\n", in.logical_sector, in.physical_sector);
		if (in.block_size)
			printf("block size      %u\n", in.block_size);
		printf("disk id         %s\n", id);
		printf("generation      %s\n", in.generation_hint == 2   ? "2 (GPT layout)"
		                               : in.generation_hint == 1 ? "1 (MBR layout)"
		                                                         : "unknown");
		if (in.chain_depth)
			printf("parents         %u\n", in.chain_depth);
		if (in.log_replayed)
			printf("log             replayed into the view (file unchanged)\n");
	}
	siterec_disk_free(d);
	return 0;
}

static int is_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

static int disk_convert(const char *src, const char *dst, const char *fmt)
{
	siterec_disk_create_options co;
	siterec_disk_create_options_init(&co, SITEREC_DISK_CREATE_OPTIONS_VERSION);
	if (!strcmp(fmt, "raw"))
		co.format = SITEREC_DISK_FORMAT_RAW;
	else if (!strcmp(fmt, "vhd"))
		co.format = SITEREC_DISK_FORMAT_VHD;
	else {
		fprintf(stderr, "siterec: --format must be raw or vhd\n");
		return 2;
	}
	siterec_disk *s, *d;
	int rc = open_ro(&s, src);
	if (rc)
		return rc;
	siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
	siterec_disk_info_get(s, &in);
	if (siterec_disk_create(&d, dst, in.virtual_size, &co)) {
		rc = cli_fail(dst);
		siterec_disk_free(s);
		return rc;
	}
	uint8_t *buf = malloc(CHUNK);
	uint64_t off = 0, copied = 0;
	rc = buf ? 0 : 2;
	while (rc == 0 && off < in.virtual_size) {
		uint64_t want = in.virtual_size - off < CHUNK ? in.virtual_size - off : CHUNK;
		uint64_t run;
		int alloc;
		if (siterec_disk_block_status(s, off, want, &run, &alloc)) {
			rc = cli_fail(src);
			break;
		}
		/* unallocated and all-zero ranges stay holes in the new image */
		if (alloc) {
			if (siterec_disk_read(s, buf, run, off)) {
				rc = cli_fail(src);
				break;
			}
			if (!is_zero(buf, run)) {
				if (siterec_disk_write(d, buf, run, off)) {
					rc = cli_fail(dst);
					break;
				}
				copied += run;
			}
		}
		off += run;
	}
	if (rc == 0 && siterec_disk_flush(d))
		rc = cli_fail(dst);
	free(buf);
	siterec_disk_free(s);
	siterec_disk_free(d);
	if (rc == 0)
		printf("converted %s -> %s (%s, %" PRIu64 " data bytes)\n", src, dst, fmt, copied);
	return rc;
}

/* Equal when the common part is equal and the longer disk's tail reads zeros
 * (the rule of qemu-img compare). Lists the first differing extents. */
static int disk_compare(const char *pa, const char *pb)
{
	siterec_disk *a, *b;
	int rc = open_ro(&a, pa);
	if (rc)
		return rc;
	if ((rc = open_ro(&b, pb))) {
		siterec_disk_free(a);
		return rc;
	}
	siterec_disk_info ia = { .version = SITEREC_DISK_INFO_VERSION }, ib = ia;
	siterec_disk_info_get(a, &ia);
	siterec_disk_info_get(b, &ib);
	uint64_t size = ia.virtual_size > ib.virtual_size ? ia.virtual_size : ib.virtual_size;
	uint8_t *ba = malloc(CHUNK), *bb = malloc(CHUNK);
	int shown = 0;
	uint64_t diff_start = 0, diff_len = 0, ndiff = 0;
	rc = (ba && bb) ? 0 : 2;
	for (uint64_t off = 0; rc == 0 && off < size; off += CHUNK) {
		size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
		memset(ba, 0, n);
		memset(bb, 0, n);
		if (off < ia.virtual_size &&
		    siterec_disk_read(a, ba, (size_t)(ia.virtual_size - off < n ? ia.virtual_size - off : n), off))
			rc = cli_fail(pa);
		else if (off < ib.virtual_size &&
		         siterec_disk_read(b, bb, (size_t)(ib.virtual_size - off < n ? ib.virtual_size - off : n), off))
			rc = cli_fail(pb);
		if (rc || memcmp(ba, bb, n) == 0)
			continue;
		for (size_t s = 0; s < n; s += 512) {
			size_t m = n - s < 512 ? n - s : 512;
			if (memcmp(ba + s, bb + s, m) == 0)
				continue;
			if (diff_len && diff_start + diff_len == off + s) {
				diff_len += m;
				continue;
			}
			if (diff_len && shown++ < 10)
				printf("differ: offset %" PRIu64 " length %" PRIu64 "\n", diff_start, diff_len);
			ndiff++;
			diff_start = off + s;
			diff_len = m;
		}
	}
	if (rc == 0 && diff_len && shown++ < 10)
		printf("differ: offset %" PRIu64 " length %" PRIu64 "\n", diff_start, diff_len);
	free(ba);
	free(bb);
	siterec_disk_free(a);
	siterec_disk_free(b);
	if (rc)
		return rc;
	if (ndiff) {
		if (ndiff > 10)
			printf("... %" PRIu64 " differing extents in all\n", ndiff);
		printf("%s and %s differ\n", pa, pb);
		return 1;
	}
	printf("images are identical\n");
	return 0;
}

int cmd_disk(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "info"))
		return disk_info(argv[2], argc > 3 && !strcmp(argv[3], "--json"));
	if (argc == 6 && !strcmp(argv[1], "convert") && !strcmp(argv[4], "--format"))
		return disk_convert(argv[2], argv[3], argv[5]);
	if (argc == 4 && !strcmp(argv[1], "compare"))
		return disk_compare(argv[2], argv[3]);
	fprintf(stderr, "usage: siterec disk info IMAGE [--json] | convert SRC DST --format raw|vhd | "
	                "compare A B\n");
	return 2;
}
