/* siterec: command line over libsiterec. One file per subcommand group. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: siterec COMMAND [ARGS]\n"
	        "\n"
	        "commands:\n"
	        "  demo [--dir DIR] [--size MiB] [--writes N] [--encrypt]\n"
	        "                        tracked writes -> delta logs -> replica, verified\n"
	        "  disk info IMAGE [--json]   format, sizes, id, generation hint of a disk image\n"
	        "  disk convert SRC DST --format raw|vhd\n"
	        "                        copy a disk image into a raw or fixed VHD image\n"
	        "  disk compare A B      exit 0 when equal, 1 listing the first differing extents\n"
	        "  store put [--resume] [--raw] [--checkpoint MiB] IMAGE URL/NAME\n"
	        "                        upload a disk image as a replica disk (resumable; a\n"
	        "                        fixed VHD on Azure unless --raw)\n"
	        "  store get URL/NAME[@SNAPSHOT] FILE\n"
	        "                        download a replica disk (or a snapshot) into a file\n"
	        "                        (raw, or the fixed VHD an Azure put made)\n"
	        "  store ls URL          list disks, snapshots and documents\n"
	        "  store snapshot URL/NAME   snapshot a replica disk (prints the id)\n"
	        "  store rm URL/NAME     delete a replica disk, its snapshots and upload record\n"
	        "  log info LOG          header and records of a delta log\n"
	        "  log verify LOG        check every checksum (exit 0 whole, 1 torn tail, 2 error)\n"
	        "  log apply LOG IMAGE [--allow-torn]\n"
	        "                        apply a delta log to a raw replica image\n"
	        "  log coalesce OUT LOG...  merge logs: each changed block once, final content\n"
	        "  workload DIR --disk ID:PATH:SIZE_MiB [--disk ...] [--rate MBPS]\n"
	        "           [--seconds N | --writes N] [--block KiB] [--seed S] [--create]\n"
	        "                        a simulated VM: random writes into raw images through\n"
	        "                        the journal at DIR, serving rotations, until done or\n"
	        "                        SIGINT/SIGTERM\n"
	        "  points URL VM [--json]   a VM's recovery points (id, time, kind, snapshots)\n"
	        "  version               library version\n"
	        "\n"
	        "Encrypted logs: the key comes from SITEREC_LOG_KEY (64 hex digits).\n"
	        "Storage URLs: file:///DIR, https://ACCOUNT.blob.core.windows.net/CONTAINER;\n"
	        "credentials from SITEREC_ACCOUNT_KEY or SITEREC_SAS; --ca FILE before the verb.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	siterec_init();
	int rc;
	if (!strcmp(argv[1], "demo"))
		rc = cmd_demo(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "disk"))
		rc = cmd_disk(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "store"))
		rc = cmd_store(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "log"))
		rc = cmd_log(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "workload"))
		rc = cmd_workload(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "points"))
		rc = cmd_points(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "version")) {
		printf("libsiterec %s\n", siterec_version(NULL, NULL, NULL));
		rc = 0;
	} else {
		fprintf(stderr, "siterec: unknown command '%s'\n", argv[1]);
		usage(stderr);
		rc = 2;
	}
	siterec_shutdown();
	return rc;
}
