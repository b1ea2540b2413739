/* The replicating side of a journal, for cli_workload.sh: open the journal at DIR
 * (not as the writer) with the given disks, ask for a rotation, wait for it (done
 * by the running writer, or here when there is none) and print the sealed
 * sequence. Exit 0 on success, 1 on an error (printed).
 *
 *   journal_rotate DIR ID:SIZE_MiB...
 */
#include <siterec/siterec.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > 64) {
		fprintf(stderr, "usage: journal_rotate DIR ID:SIZE_MiB...\n");
		return 1;
	}
	siterec_journal_disk disks[64];
	memset(disks, 0, sizeof(disks));
	for (int i = 2; i < argc; i++) {
		char *colon = strrchr(argv[i], ':');
		if (!colon) {
			fprintf(stderr, "journal_rotate: '%s' is not ID:SIZE_MiB\n", argv[i]);
			return 1;
		}
		*colon = 0;
		disks[i - 2].id = argv[i];
		disks[i - 2].size = strtoull(colon + 1, NULL, 10) << 20;
	}
	siterec_init();
	siterec_journal_options o;
	siterec_journal_options_init(&o, SITEREC_JOURNAL_OPTIONS_VERSION);
	o.n_disks = (uint32_t)(argc - 2);
	o.disks = disks;
	siterec_journal *j = NULL;
	uint64_t seq = 0;
	int rc = siterec_journal_open(&j, argv[1], &o);
	if (!rc)
		rc = siterec_journal_request_rotate(j, 10000, &seq);
	if (rc)
		fprintf(stderr, "journal_rotate: %s (%s)\n", siterec_error_last()->message,
		        siterec_strerror(rc));
	else
		printf("%" PRIu64 "\n", seq);
	siterec_journal_free(j);
	siterec_shutdown();
	return rc ? 1 : 0;
}
