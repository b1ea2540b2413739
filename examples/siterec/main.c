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
	        "  protect URL VM STATE_DIR --disk ID:PATH[:os|data][:exclude] [--disk ...]\n"
	        "          [--interval 30|300|900|0] [--retention SECONDS] [--generation 1|2]\n"
	        "                        protect a VM's disk images (raw, VHD, VHDX) into URL; its\n"
	        "                        writes must go through the journal STATE_DIR/journal; the\n"
	        "                        description is kept in STATE_DIR/cli-vm.json (CLI only)\n"
	        "  replicate STATE_DIR [--cycles N [--apply] | --follow] [--url URL]\n"
	        "                        initial replication if pending, then N cycles (default 1)\n"
	        "                        or one per interval until SIGINT/SIGTERM (applying shipped\n"
	        "                        logs between, retrying, resyncing); a line per point\n"
	        "  resync STATE_DIR      compare each replica with its source, write what differs\n"
	        "  status STATE_DIR      state, last point and its age (RPO lag), points, bytes\n"
	        "  verify STATE_DIR [--point ID]\n"
	        "                        compare each replica at a point (default newest) with its\n"
	        "                        source image: exit 0 equal, 1 differing extents listed;\n"
	        "                        for a stopped workload (the source moves on after a cut)\n"
	        "  failover URL VM --type test|planned|unplanned [--point P] [--disk-dir DIR]\n"
	        "           [--nic NET[/SUBNET][@IP]] [--map SRC=TGT:SUBNET,...] [--vm-dir DIR] ...\n"
	        "                        bring the VM up on the target side from a recovery point\n"
	        "                        (test: isolated, replication untouched); see --help of it\n"
	        "  cleanup-test URL VM   delete a test failover's VM and disks\n"
	        "  change-point URL VM --point P   remake a failover not committed from another point\n"
	        "  commit URL VM         make a failover final (every other point is deleted)\n"
	        "  cancel URL VM         undo a failover not committed; replication may go on\n"
	        "  resume URL VM         finish what a crash interrupted\n"
	        "  failover-status URL VM [--json]   both failover slots of a VM\n"
	        "  failback URL VM --mode minimize-downtime|full --disk ID:PATH... | --to ID:PATH...\n"
	        "                        back to the on-premises disks after a committed failover\n"
	        "  reprotect URL VM [--state-dir DIR]   replication again after a committed failback\n"
	        "  plan run|resume|status PLAN.json --url URL --state FILE [--op OP] [--vm-dir DIR] ...\n"
	        "                        a recovery plan: groups of VMs in order, with scripts and\n"
	        "                        manual steps between (exit 3: paused); see --help of it\n"
	        "  planner --csv FILE [--bandwidth MBPS] [--retention HOURS] [--json] [--html OUT.html]\n"
	        "                        deployment planner: from a churn profile (CSV), per VM the\n"
	        "                        limits it fails, bandwidth for an RPO of 15/30/60 min,\n"
	        "                        storage, initial replication time, copy frequency\n"
	        "  version               library version\n"
	        "\n"
	        "Encrypted logs: the key comes from SITEREC_LOG_KEY (64 hex digits).\n"
	        "Storage URLs: file:///DIR, https://ACCOUNT.blob.core.windows.net/CONTAINER;\n"
	        "credentials from SITEREC_ACCOUNT_KEY or SITEREC_SAS; --ca FILE before the verb\n"
	        "(store) or among the options (points, protect, replicate, resync, status, verify).\n");
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
	else if (!strcmp(argv[1], "protect") || !strcmp(argv[1], "replicate") ||
	         !strcmp(argv[1], "status") || !strcmp(argv[1], "verify") || !strcmp(argv[1], "resync"))
		rc = cmd_replication(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "failover") || !strcmp(argv[1], "cleanup-test") ||
	         !strcmp(argv[1], "change-point") || !strcmp(argv[1], "commit") || !strcmp(argv[1], "cancel") ||
	         !strcmp(argv[1], "resume") || !strcmp(argv[1], "failover-status") ||
	         !strcmp(argv[1], "failback") || !strcmp(argv[1], "reprotect"))
		rc = cmd_failover(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "plan"))
		rc = cmd_plan(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "planner"))
		rc = cmd_planner(argc - 1, argv + 1);
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
