/* The life of one protected VM, through the C API (doc/tutorial.md walks through
 * it): protect, write through the journal, replicate, drill, fail over, fail
 * back, protect again. Built and run by the test suite, so it cannot rot.
 *
 *   lifecycle DIR        everything under DIR (a file:// target, the VM's disks)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <siterec/siterec.h>

#define MiB (1024u * 1024u)

static int check(int rc, const char *what)
{
	if (rc) {
		const siterec_error *e = siterec_error_last();
		fprintf(stderr, "lifecycle: %s: %s (%s)\n", what, e->message, siterec_strerror(rc));
		exit(1);
	}
	return rc;
}

/* ---- the host: our stand-in hypervisor only prints ---- */

static int start_vm(const siterec_failover_vm *vm, void *payload)
{
	(void)payload;
	printf("  [host] start VM %s: generation %u, %u disk(s) from point %llu%s\n", vm->name,
	       vm->generation, vm->n_disks, (unsigned long long)vm->point_id,
	       vm->isolated ? ", isolated network" : "");
	return 0;
}

static int remove_vm(const siterec_failover_vm *vm, void *payload)
{
	(void)payload;
	printf("  [host] remove VM %s\n", vm->name);
	return 0;
}

static int shutdown_vm(const char *vm, void *payload)
{
	(void)payload;
	printf("  [host] shut VM %s down\n", vm);
	return 0;
}

/* The VM's disks are plain files; its writes go through the journal, which
 * logs each one, then calls this to write the disk. */
static int disk_write(const void *buf, size_t len, uint64_t off, void *payload)
{
	return pwrite(*(int *)payload, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

/* A VM's I/O loop serves rotations between writes: siterec_journal_poll() when idle. */
static int stop_poll;   /* atomic */

static void *poller(void *j)
{
	while (!__atomic_load_n(&stop_poll, __ATOMIC_ACQUIRE)) {
		siterec_journal_poll(j, NULL);
		usleep(1000);
	}
	return NULL;
}

static void vm_writes(siterec_journal *j, unsigned n, unsigned seed)
{
	static char block[4096];
	for (unsigned i = 0; i < n; i++) {
		memset(block, (int)(seed + i), sizeof(block));
		uint32_t disk = i % 2;
		uint64_t off = (uint64_t)((seed * 7919u + i * 104729u) % (disk ? 1024u : 2048u)) * 4096u;
		check(siterec_journal_write(j, disk, block, sizeof(block), off), "journal write");
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: lifecycle DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	char url[4200], state[4200], os[4200], data[4200], out[4200], jdir[4200];
	snprintf(url, sizeof(url), "file://%s/target", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(os, sizeof(os), "%s/os.img", dir);
	snprintf(data, sizeof(data), "%s/data.img", dir);
	snprintf(out, sizeof(out), "%s/failover", dir);
	snprintf(jdir, sizeof(jdir), "%s/state/journal", dir);
	mkdir(dir, 0755);
	int fd[2] = { open(os, O_CREAT | O_RDWR, 0644), open(data, O_CREAT | O_RDWR, 0644) };
	if (fd[0] < 0 || fd[1] < 0 || ftruncate(fd[0], 8 * MiB) || ftruncate(fd[1], 4 * MiB)) {
		perror("lifecycle: disks");
		return 1;
	}
	siterec_init();

	/* 1. a target, and the VM to protect */
	siterec_store *st;
	siterec_store_options so = SITEREC_STORE_OPTIONS_INIT;
	so.flags = SITEREC_STORE_CREATE;
	check(siterec_store_open(&st, url, &so), "store");
	siterec_vm_disk disks[] = {
		{ .id = "os", .path = os, .role = SITEREC_DISK_ROLE_OS },
		{ .id = "data", .path = data, .role = SITEREC_DISK_ROLE_DATA },
	};
	siterec_vm vm = { .version = SITEREC_VM_VERSION, .generation = 2, .id = "web1", .name = "web1",
	                  .n_disks = 2, .disks = disks };
	siterec_replication_options ro = SITEREC_REPLICATION_OPTIONS_INIT;
	ro.flags = SITEREC_REPLICATION_PROTECT;
	ro.state_dir = state;
	ro.store = st;
	ro.interval_s = 30;
	siterec_replication *r;
	check(siterec_replication_open(&r, &vm, &ro), "protect");
	printf("1. protected web1\n");

	/* 2. the VM's write path: every write through the journal */
	siterec_journal_disk jd[] = {
		{ .id = "os", .size = 8 * MiB, .write = disk_write, .write_payload = &fd[0] },
		{ .id = "data", .size = 4 * MiB, .write = disk_write, .write_payload = &fd[1] },
	};
	siterec_journal_options jo = SITEREC_JOURNAL_OPTIONS_INIT;
	jo.flags = SITEREC_JOURNAL_WRITER;
	jo.n_disks = 2;
	jo.disks = jd;
	siterec_journal *j;
	check(siterec_journal_open(&j, jdir, &jo), "journal");
	pthread_t io;
	pthread_create(&io, NULL, poller, j);

	/* 3. initial replication, then cycles: each ships the writes and adds a point */
	check(siterec_replication_initial(r), "initial replication");
	for (unsigned c = 0; c < 3; c++) {
		vm_writes(j, 50, c + 1);
		siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
		/* the cut: the writer rotates at its next write or poll */
		check(siterec_replication_cycle(r, &res), "cycle");
		printf("3. point %llu: %llu bytes shipped\n", (unsigned long long)res.point_id,
		       (unsigned long long)res.bytes_shipped);
	}
	/* shipped logs reach the replicas later, in batches; NOW: at once */
	uint64_t waiting = 0;
	check(siterec_replication_apply(r, 0, SITEREC_APPLY_NOW, &waiting), "apply");
	printf("3. the replicas hold the newest point (%llu bytes waiting)\n", (unsigned long long)waiting);

	/* 4. a drill: test failover (isolated, replication undisturbed), then cleanup */
	siterec_failover_options fo = SITEREC_FAILOVER_OPTIONS_INIT;
	fo.store = st;
	fo.vm_id = "web1";
	fo.start = start_vm;
	fo.remove = remove_vm;
	fo.shutdown = shutdown_vm;
	siterec_failover *f;
	check(siterec_failover_open(&f, &fo), "failover open");
	siterec_failover_request q = SITEREC_FAILOVER_REQUEST_INIT;
	q.point.how = SITEREC_POINT_LATEST;
	q.disk_dir = out;
	check(siterec_failover_test(f, &q), "test failover");
	check(siterec_failover_test_cleanup(f), "test cleanup");
	printf("4. drill done and cleaned up\n");

	/* 5. disaster: unplanned failover from the latest point, committed */
	__atomic_store_n(&stop_poll, 1, __ATOMIC_RELEASE);
	pthread_join(io, NULL);
	siterec_journal_free(j);          /* the primary site is gone */
	siterec_replication_free(r);
	q.type = SITEREC_FAILOVER_UNPLANNED;
	check(siterec_failover_run(f, &q), "failover");
	check(siterec_failover_commit(f), "commit");
	printf("5. failed over and committed\n");

	/* 6. back home: failback into the original disks, minimize downtime */
	siterec_failback_disk back[] = { { "os", os }, { "data", data } };
	siterec_failback_request b = SITEREC_FAILBACK_REQUEST_INIT;
	b.mode = SITEREC_FAILBACK_MINIMIZE_DOWNTIME;
	b.n_disks = 2;
	b.disks = back;
	check(siterec_failback_run(f, &b), "failback");
	siterec_failover_status s = { .version = SITEREC_FAILOVER_STATUS_VERSION };
	check(siterec_failover_status_get(f, SITEREC_FAILOVER_FAILBACK, &s), "status");
	check(siterec_failback_commit(f), "failback commit");
	printf("6. failed back: %llu bytes differed, downtime %lld ms\n", (unsigned long long)s.bytes_differing,
	       (long long)(s.vm_started_ms - s.shutdown_ms));

	/* 7. protect again: only what differs is written to the replicas */
	check(siterec_failover_reprotect(f), "reprotect");
	ro.flags = 0;
	check(siterec_replication_open(&r, &vm, &ro), "replication open");
	check(siterec_journal_open(&j, jdir, &jo), "journal");
	__atomic_store_n(&stop_poll, 0, __ATOMIC_RELEASE);
	pthread_create(&io, NULL, poller, j);
	siterec_cycle_result res = { .version = SITEREC_CYCLE_RESULT_VERSION };
	check(siterec_replication_resync(r, &res), "resync");
	printf("7. protected again: point %llu, %llu differing bytes written\n", (unsigned long long)res.point_id,
	       (unsigned long long)res.bytes_shipped);

	__atomic_store_n(&stop_poll, 1, __ATOMIC_RELEASE);
	pthread_join(io, NULL);
	siterec_journal_free(j);
	siterec_replication_free(r);
	siterec_failover_free(f);
	siterec_store_free(st);
	siterec_shutdown();
	close(fd[0]);
	close(fd[1]);
	return 0;
}
