/*
 * Test-only VHDX writer ([MS-VHDX]): builds dynamic, fixed and differencing
 * images (qemu cannot make differencing ones), and patches existing files
 * (headers with recomputed checksums, a crafted log entry). Not the library's
 * code: an independent implementation so the reader is checked against it.
 */
#ifndef SITEREC_TEST_VHDX_WRITER_H
#define SITEREC_TEST_VHDX_WRITER_H

#include <stddef.h>
#include <stdint.h>

enum {
	VW_NOT_PRESENT = 0,
	VW_UNDEFINED = 1,
	VW_ZERO = 2,
	VW_UNMAPPED = 3,
	VW_FULLY_PRESENT = 6,
	VW_PARTIALLY_PRESENT = 7,
};

struct vw_params {
	uint64_t virtual_size;
	uint32_t block_size;          /* 0: 1 MiB */
	uint32_t logical_sector;      /* 0: 512 */
	uint32_t physical_sector;     /* 0: 4096 */
	int fixed;                    /* LeaveBlocksAllocated: every block present */
	/* differencing when parent_linkage is set (16 bytes, on-disk GUID order) */
	const uint8_t *parent_linkage;
	const char *relative_path;    /* written as given (use '\\' like Windows) */
	const char *absolute_win32_path;
	const uint8_t *data_write_guid; /* NULL: derived from virtual_size and a counter */
};

typedef struct vw vw;

vw *vw_new(const struct vw_params *p);
/* Write len bytes at off (both multiples of the logical sector): these sectors
 * become present in this file. */
void vw_write(vw *w, uint64_t off, const void *data, size_t len);
/* Force the BAT state of a block that has no sector written (ZERO, UNMAPPED...). */
void vw_set_block_state(vw *w, uint64_t blk, int state);
/* Lay the image out and write it to path (replacing it). */
void vw_save(vw *w, const char *path);
/* The DataWriteGuid this writer put (or will put) in the headers. */
const uint8_t *vw_guid(const vw *w);
void vw_free(vw *w);

uint32_t vw_crc32c(const void *buf, size_t len);

/* Facts of an existing VHDX read from its current header and region table. */
struct vw_layout {
	uint64_t log_off, bat_off, meta_off;
	uint32_t log_len, bat_len, meta_len;
	uint8_t data_write_guid[16];
	int current;                  /* 0 or 1: which header is current */
};
void vw_layout(const char *path, struct vw_layout *l);
/* Patch n bytes at field_off of header `which` (0, 1) and fix its checksum. */
void vw_patch_header(const char *path, int which, size_t field_off, const void *bytes, size_t n);

/* One log descriptor: data (4096 bytes written at file_offset) or, with data
 * NULL, zero_length zero bytes at file_offset. */
struct vw_log_desc {
	uint64_t file_offset;
	const uint8_t *data;
	uint64_t zero_length;
};
/* Write one log entry (sequence number seq, tail = itself) at log offset
 * entry_off with these descriptors, and set log_guid in both headers. */
void vw_add_log_entry(const char *path, const uint8_t log_guid[16], uint64_t seq,
                      uint32_t entry_off, const struct vw_log_desc *d, int n);

#endif
