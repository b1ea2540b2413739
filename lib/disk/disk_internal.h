/* Disk layer internals: one handle, a backend per format. Not installed. */
#ifndef SITEREC_DISK_INTERNAL_H
#define SITEREC_DISK_INTERNAL_H

#include "internal.h"
#include "siterec/disk.h"

/* A backend. The front end (disk.c) validates arguments (NULL, ranges inside
 * virtual_size, writability) before calling, so backends see only valid requests. */
struct sr_disk_ops {
	const char *name;
	/* Read [off, off+len) of the virtual disk. */
	int (*read)(siterec_disk *d, void *buf, size_t len, uint64_t off);
	/* Allocation status of the run at off (len > 0): see siterec_disk_block_status. */
	int (*status)(siterec_disk *d, uint64_t off, uint64_t len, uint64_t *run, int *allocated);
	/* Write; NULL for read-only formats. */
	int (*write)(siterec_disk *d, const void *buf, size_t len, uint64_t off);
	/* Release backend state (priv); the front end closes fd and frees the rest. */
	void (*close)(siterec_disk *d);
};

struct siterec_disk {
	const struct sr_disk_ops *ops;
	int fd;
	char *path;
	siterec_disk_info info;   /* version field unused internally */
	siterec_disk *parent;     /* differencing: the opened parent (owned) */
	void *priv;               /* backend state */
};

/* Backend openers: the front end has opened d->fd (read-only unless
 * SITEREC_DISK_OPEN_WRITE) and set d->path and d->info.file_size; the opener
 * checks the file and fills d->ops, d->info and d->priv. `depth` counts how many
 * children are above this image (for differencing chains); `opts` is the full
 * current-version options. On failure the opener frees what it allocated. */
int sr_disk_open_raw(siterec_disk *d, const siterec_disk_options *opts);
int sr_disk_open_vhd(siterec_disk *d, const siterec_disk_options *opts);
int sr_disk_open_vhdx(siterec_disk *d, const siterec_disk_options *opts, uint32_t depth);

/* Open another image as a parent (VHDX differencing): same options, read only,
 * format detected; depth is the child's depth + 1 and is checked against
 * max_chain. Sets SITEREC_EDISK on any failure with the chain in the message. */
int sr_disk_open_parent(siterec_disk **out, const char *path, const siterec_disk_options *opts,
                        uint32_t depth);

/* Create a fixed VHD of `size` bytes (already rounded to a whole MiB) on an empty
 * fd: extend the file and write the footer (sr_vhd_fixed_footer, internal.h). */
int sr_disk_create_vhd_fixed(int fd, uint64_t size, const uint8_t disk_id[16]);

/* Detect the format from the file's first bytes and its last 512 (VHD footer). */
int sr_disk_detect(int fd, uint64_t file_size, uint32_t *format);

/* Generation hint from the first 2 sectors of the virtual disk: 2 for a
 * protective MBR + GPT header, 1 for an MBR with a partition, 0 otherwise. */
uint32_t sr_disk_generation_hint(siterec_disk *d);


#endif
