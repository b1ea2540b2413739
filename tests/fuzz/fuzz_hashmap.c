/* libFuzzer target: loading a saved hash map, then using it. */
#include <siterec/siterec.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(uint64_t off, uint64_t len, void *p)
{
	(void)off;
	*(uint64_t *)p += len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	siterec_hashmap *m = NULL;
	if (siterec_hashmap_load(&m, path) == 0) {
		uint64_t disk = 0, known = 0, total = 0;
		uint32_t bs = 0;
		siterec_hashmap_info(m, &disk, &bs, &known);
		siterec_hashmap_diff(m, m, count, &total);
		siterec_hashmap_free(m);
	}
	close(fd);
	return 0;
}
