/* Recovery points for cli_points.sh, through the public API: in the storage
 * target URL (created if missing), two 1 MiB replica disks VM-d0 and VM-d1, each
 * written and snapshotted twice, and after each round a point of VM with both
 * snapshots: id 41 (crash-consistent, cut at 2023-11-14T22:13:20.123Z, one
 * changed extent per disk) and id 42 (app-consistent, one second later, changed
 * extents unknown). Prints "ID DISK SNAPSHOT" for each disk of each point.
 * Exit 0 on success, 1 on an error (printed).
 *
 *   make_points URL VM
 */
#include <siterec/siterec.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DISK_SIZE (1u << 20)

static int fail(const char *what)
{
	fprintf(stderr, "make_points: %s: %s (%s)\n", what, siterec_error_last()->message,
	        siterec_strerror(siterec_error_last()->code));
	return 1;
}

/* Write 64 KiB of fill at offset into disk name, then snapshot it into snap. */
static int write_and_snapshot(siterec_store *st, const char *name, uint8_t fill, uint64_t offset,
                              char *snap)
{
	static uint8_t buf[64 << 10];
	siterec_store_writer *w = NULL;
	memset(buf, fill, sizeof(buf));
	if (siterec_store_writer_open(&w, st, name, NULL) ||
	    siterec_store_writer_write(w, buf, sizeof(buf), offset) || siterec_store_writer_finish(w)) {
		siterec_store_writer_free(w);
		return fail(name);
	}
	siterec_store_writer_free(w);
	if (siterec_store_snapshot(st, name, snap, SITEREC_STORE_ID_MAX))
		return fail(name);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: make_points URL VM\n");
		return 1;
	}
	const char *vm = argv[2];
	siterec_init();
	siterec_store_options so;
	siterec_store_options_init(&so, SITEREC_STORE_OPTIONS_VERSION);
	so.flags = SITEREC_STORE_CREATE;
	siterec_store *st = NULL;
	siterec_rp_catalog *cat = NULL;
	char names[2][80], snaps[2][SITEREC_STORE_ID_MAX];
	int rc = 0;
	if (siterec_store_open(&st, argv[1], &so)) {
		rc = fail(argv[1]);
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		snprintf(names[k], sizeof(names[k]), "%s-d%d", vm, k);
		if (siterec_store_disk_create(st, names[k], DISK_SIZE)) {
			rc = fail(names[k]);
			goto out;
		}
	}
	if (siterec_rp_open(&cat, st, vm)) {
		rc = fail(vm);
		goto out;
	}
	for (int round = 0; round < 2; round++) {
		siterec_extent changed[2];
		siterec_rp_disk disks[2];
		for (int k = 0; k < 2; k++) {
			uint64_t off = (uint64_t)(round * 2 + k) << 16;
			if ((rc = write_and_snapshot(st, names[k], (uint8_t)(0x11 * (round + 1) + k), off,
			                             snaps[k])))
				goto out;
			changed[k] = (siterec_extent){ off, 64 << 10 };
			disks[k] = (siterec_rp_disk){ names[k], snaps[k], &changed[k],
			                              round ? UINT64_MAX : 1 };
		}
		siterec_rp_point p = SITEREC_RP_POINT_INIT;
		p.kind = round ? SITEREC_RP_APP : SITEREC_RP_CRASH;
		p.id = 41 + (uint64_t)round;
		p.cut_time_ms = 1700000000123 + round * 1000;
		p.n_disks = 2;
		p.disks = disks;
		if (siterec_rp_add(cat, &p)) {
			rc = fail("rp add");
			goto out;
		}
		for (int k = 0; k < 2; k++)
			printf("%" PRIu64 " %s %s\n", p.id, names[k], snaps[k]);
	}
out:
	siterec_rp_free(cat);
	siterec_store_free(st);
	siterec_shutdown();
	return rc;
}
