/* libFuzzer target: a tracker opening damaged saved state (state file only; the
 * activity record is made fresh), which must come back as untrusted or an error. */
#include <siterec/siterec.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* tmpfs: the tracker fsyncs, and a disk-backed directory would make each run slow */
	char dir[] = "/dev/shm/siterec-fuzz-trk-XXXXXX";
	if (!mkdtemp(dir))
		return 0;
	char state[128], act[160];
	snprintf(state, sizeof(state), "%s/s.trk", dir);
	snprintf(act, sizeof(act), "%s.act", state);
	FILE *f = fopen(state, "wb");
	if (f) {
		fwrite(data, 1, size, f);
		fclose(f);
		siterec_tracker_options o = SITEREC_TRACKER_OPTIONS_INIT;
		o.state_path = state;
		siterec_tracker *t = NULL;
		if (siterec_tracker_open(&t, 1ull << 30, &o) == 0) {
			siterec_tracker_stats st = { .version = SITEREC_TRACKER_STATS_VERSION };
			siterec_tracker_stats_get(t, &st);
			siterec_tracker_free(t);
		}
	}
	char tmp[200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", state);
	unlink(tmp);
	unlink(act);
	unlink(state);
	rmdir(dir);
	return 0;
}
