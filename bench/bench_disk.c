/*
 * Sequential read of a whole disk image through the library, written to an fd
 * (default /dev/null): the library's side of bench/disk.sh, whose peer is
 * `qemu-img convert -O raw` of the same image to the same place.
 *   bench_disk IMAGE [OUT]
 * Prints "seconds bytes" of the best of 3 runs.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <siterec/siterec.h>

#define CHUNK (8u << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_disk IMAGE [OUT]\n");
		return 2;
	}
	const char *outp = argc > 2 ? argv[2] : "/dev/null";
	uint8_t *buf = aligned_alloc(4096, CHUNK);
	double best = 1e30;
	uint64_t size = 0;
	for (int rep = 0; rep < 3; rep++) {
		int out = open(outp, O_WRONLY | O_CREAT, 0644);
		if (out < 0) {
			perror(outp);
			return 2;
		}
		double t0 = now();
		siterec_disk *d;
		if (siterec_disk_open(&d, argv[1], NULL)) {
			fprintf(stderr, "open: %s\n", siterec_error_last()->message);
			return 2;
		}
		siterec_disk_info in = { .version = SITEREC_DISK_INFO_VERSION };
		siterec_disk_info_get(d, &in);
		size = in.virtual_size;
		for (uint64_t off = 0; off < size; off += CHUNK) {
			size_t n = (size_t)(size - off < CHUNK ? size - off : CHUNK);
			if (siterec_disk_read(d, buf, n, off)) {
				fprintf(stderr, "read: %s\n", siterec_error_last()->message);
				return 2;
			}
			if (pwrite(out, buf, n, (off_t)off) != (ssize_t)n) {
				perror("write");
				return 2;
			}
		}
		siterec_disk_free(d);
		close(out);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	printf("%.4f %llu\n", best, (unsigned long long)size);
	free(buf);
	return 0;
}
