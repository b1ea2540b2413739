/* libFuzzer target: the delta log reader and verifier on arbitrary bytes. */
#include <siterec/siterec.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	static const uint8_t key[32] = { 1, 2, 3 };
	for (int k = 0; k < 2; k++) {
		siterec_dlog_options o = SITEREC_DLOG_OPTIONS_INIT;
		if (k) {
			o.key = key;
			o.key_size = sizeof(key);
		}
		siterec_dlog_reader *r = NULL;
		if (siterec_dlog_reader_open(&r, path, &o) == 0) {
			siterec_dlog_record rec;
			uint64_t sum = 0;
			while (siterec_dlog_reader_next(r, &rec) == 1)
				if (rec.data && rec.length)
					sum += ((const uint8_t *)rec.data)[rec.length - 1];
			siterec_dlog_info in = { .version = SITEREC_DLOG_INFO_VERSION };
			siterec_dlog_reader_info(r, &in);
			siterec_dlog_reader_free(r);
			(void)sum;
		}
	}
	siterec_dlog_info in = { .version = SITEREC_DLOG_INFO_VERSION };
	siterec_dlog_verify(path, NULL, &in);
	close(fd);
	return 0;
}
