/* Shared by the libFuzzer targets: put the input in a memory file and give its path. */
#ifndef SITEREC_FUZZ_COMMON_H
#define SITEREC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns an fd of a memfd holding data (caller closes) and fills path with
 * /proc/self/fd/N so path-based APIs read it. -1 on failure. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
	int fd = memfd_create("siterec-fuzz", 0);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
