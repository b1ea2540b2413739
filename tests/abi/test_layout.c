/*
 * ABI guard: the size and field offsets of every public struct are pinned (x86-64
 * LP64 values). A failure here means a public struct changed layout, which breaks
 * every caller built against an earlier header. New fields go only at the end of
 * versioned structs, and then the pinned table is extended in the same commit.
 * tests/abi/gen_layout.sh prints the table from the headers.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <siterec/siterec.h>

struct pin {
	const char *what;
	size_t actual, pinned;
};

#define S(type, size) { #type " size", sizeof(type), size }
#define F(type, field, off) { #type "." #field, offsetof(type, field), off }

static const struct pin pins[] = {
	S(siterec_error, 32),
	F(siterec_error, code, 0),
	F(siterec_error, http_status, 4),
	F(siterec_error, os_error, 8),
	F(siterec_error, callback_code, 12),
	F(siterec_error, message, 16),
	F(siterec_error, service_code, 24),
	S(siterec_allocator, 40),
	F(siterec_allocator, version, 0),
	F(siterec_allocator, malloc_fn, 8),
	F(siterec_allocator, realloc_fn, 16),
	F(siterec_allocator, free_fn, 24),
	F(siterec_allocator, payload, 32),
	S(siterec_extent, 16),
	F(siterec_extent, offset, 0),
	F(siterec_extent, length, 8),
	S(siterec_tracker_options, 32),
	F(siterec_tracker_options, version, 0),
	F(siterec_tracker_options, block_size, 4),
	F(siterec_tracker_options, activity_region, 8),
	F(siterec_tracker_options, state_path, 16),
	F(siterec_tracker_options, flags, 24),
	F(siterec_tracker_options, reserved, 28),
	S(siterec_tracker_stats, 56),
	F(siterec_tracker_stats, version, 0),
	F(siterec_tracker_stats, block_size, 4),
	F(siterec_tracker_stats, disk_size, 8),
	F(siterec_tracker_stats, epoch, 16),
	F(siterec_tracker_stats, dirty_bytes, 24),
	F(siterec_tracker_stats, frozen_bytes, 32),
	F(siterec_tracker_stats, memory_bytes, 40),
	F(siterec_tracker_stats, state, 48),
	F(siterec_tracker_stats, has_frozen, 52),
	S(siterec_hashscan_options, 32),
	F(siterec_hashscan_options, version, 0),
	F(siterec_hashscan_options, flags, 4),
	F(siterec_hashscan_options, threads, 8),
	F(siterec_hashscan_options, reserved, 12),
	F(siterec_hashscan_options, progress, 16),
	F(siterec_hashscan_options, progress_payload, 24),
	S(siterec_dlog_options, 64),
	F(siterec_dlog_options, version, 0),
	F(siterec_dlog_options, flags, 4),
	F(siterec_dlog_options, disk_size, 8),
	F(siterec_dlog_options, disk_id, 16),
	F(siterec_dlog_options, block_size, 32),
	F(siterec_dlog_options, buffer_size, 36),
	F(siterec_dlog_options, first_seq, 40),
	F(siterec_dlog_options, key, 48),
	F(siterec_dlog_options, key_size, 56),
	S(siterec_dlog_info, 88),
	F(siterec_dlog_info, version, 0),
	F(siterec_dlog_info, format_version, 4),
	F(siterec_dlog_info, disk_size, 8),
	F(siterec_dlog_info, disk_id, 16),
	F(siterec_dlog_info, block_size, 32),
	F(siterec_dlog_info, encrypted, 36),
	F(siterec_dlog_info, first_seq, 40),
	F(siterec_dlog_info, last_seq, 48),
	F(siterec_dlog_info, records, 56),
	F(siterec_dlog_info, data_bytes, 64),
	F(siterec_dlog_info, file_bytes, 72),
	F(siterec_dlog_info, sealed, 80),
	F(siterec_dlog_info, torn, 84),
	S(siterec_dlog_record, 40),
	F(siterec_dlog_record, seq, 0),
	F(siterec_dlog_record, offset, 8),
	F(siterec_dlog_record, length, 16),
	F(siterec_dlog_record, zero, 24),
	F(siterec_dlog_record, reserved, 28),
	F(siterec_dlog_record, data, 32),
	S(siterec_disk_options, 16),
	F(siterec_disk_options, version, 0),
	F(siterec_disk_options, format, 4),
	F(siterec_disk_options, flags, 8),
	F(siterec_disk_options, max_chain, 12),
	S(siterec_disk_info, 72),
	F(siterec_disk_info, version, 0),
	F(siterec_disk_info, format, 4),
	F(siterec_disk_info, kind, 8),
	F(siterec_disk_info, logical_sector, 12),
	F(siterec_disk_info, physical_sector, 16),
	F(siterec_disk_info, block_size, 20),
	F(siterec_disk_info, virtual_size, 24),
	F(siterec_disk_info, file_size, 32),
	F(siterec_disk_info, disk_id, 40),
	F(siterec_disk_info, generation_hint, 56),
	F(siterec_disk_info, chain_depth, 60),
	F(siterec_disk_info, log_replayed, 64),
	F(siterec_disk_info, writable, 68),
	S(siterec_disk_create_options, 32),
	F(siterec_disk_create_options, version, 0),
	F(siterec_disk_create_options, format, 4),
	F(siterec_disk_create_options, disk_id, 8),
	F(siterec_disk_create_options, flags, 24),
	F(siterec_disk_create_options, reserved, 28),
	S(siterec_store_options, 72),
	F(siterec_store_options, version, 0),
	F(siterec_store_options, flags, 4),
	F(siterec_store_options, account_key, 8),
	F(siterec_store_options, sas_token, 16),
	F(siterec_store_options, ca_file, 24),
	F(siterec_store_options, max_inflight, 32),
	F(siterec_store_options, timeout_ms, 36),
	F(siterec_store_options, bandwidth_limit, 40),
	F(siterec_store_options, max_retries, 48),
	F(siterec_store_options, reserved, 52),
	F(siterec_store_options, progress, 56),
	F(siterec_store_options, progress_payload, 64),
	S(siterec_store_upload_options, 32),
	F(siterec_store_upload_options, version, 0),
	F(siterec_store_upload_options, flags, 4),
	F(siterec_store_upload_options, source_id, 8),
	F(siterec_store_upload_options, lease_id, 16),
	F(siterec_store_upload_options, checkpoint_bytes, 24),
	S(siterec_store_upload_stats, 32),
	F(siterec_store_upload_stats, version, 0),
	F(siterec_store_upload_stats, already_complete, 4),
	F(siterec_store_upload_stats, resumed_from, 8),
	F(siterec_store_upload_stats, bytes_read, 16),
	F(siterec_store_upload_stats, bytes_sent, 24),
	S(siterec_rp_disk, 32),
	F(siterec_rp_disk, disk, 0),
	F(siterec_rp_disk, snapshot, 8),
	F(siterec_rp_disk, changed, 16),
	F(siterec_rp_disk, n_changed, 24),
	S(siterec_rp_point, 40),
	F(siterec_rp_point, version, 0),
	F(siterec_rp_point, kind, 4),
	F(siterec_rp_point, id, 8),
	F(siterec_rp_point, cut_time_ms, 16),
	F(siterec_rp_point, n_disks, 24),
	F(siterec_rp_point, reserved, 28),
	F(siterec_rp_point, disks, 32),
	S(siterec_journal_disk, 32),
	F(siterec_journal_disk, id, 0),
	F(siterec_journal_disk, size, 8),
	F(siterec_journal_disk, write, 16),
	F(siterec_journal_disk, write_payload, 24),
	S(siterec_journal_options, 24),
	F(siterec_journal_options, version, 0),
	F(siterec_journal_options, flags, 4),
	F(siterec_journal_options, n_disks, 8),
	F(siterec_journal_options, reserved, 12),
	F(siterec_journal_options, disks, 16),
	S(siterec_vm_disk, 48),
	F(siterec_vm_disk, id, 0),
	F(siterec_vm_disk, path, 8),
	F(siterec_vm_disk, read, 16),
	F(siterec_vm_disk, read_payload, 24),
	F(siterec_vm_disk, size, 32),
	F(siterec_vm_disk, role, 40),
	F(siterec_vm_disk, flags, 44),
	S(siterec_vm, 40),
	F(siterec_vm, version, 0),
	F(siterec_vm, generation, 4),
	F(siterec_vm, id, 8),
	F(siterec_vm, name, 16),
	F(siterec_vm, n_disks, 24),
	F(siterec_vm, reserved, 28),
	F(siterec_vm, disks, 32),
	S(siterec_replication_options, 72),
	F(siterec_replication_options, version, 0),
	F(siterec_replication_options, flags, 4),
	F(siterec_replication_options, state_dir, 8),
	F(siterec_replication_options, store, 16),
	F(siterec_replication_options, interval_s, 24),
	F(siterec_replication_options, app_every_s, 28),
	F(siterec_replication_options, retention_s, 32),
	F(siterec_replication_options, quiesce, 40),
	F(siterec_replication_options, quiesce_payload, 48),
	F(siterec_replication_options, progress, 56),
	F(siterec_replication_options, progress_payload, 64),
	S(siterec_cycle_result, 40),
	F(siterec_cycle_result, version, 0),
	F(siterec_cycle_result, kind, 4),
	F(siterec_cycle_result, point_id, 8),
	F(siterec_cycle_result, cut_time_ms, 16),
	F(siterec_cycle_result, bytes_shipped, 24),
	F(siterec_cycle_result, points_pruned, 32),
	S(siterec_replication_status, 312),
	F(siterec_replication_status, version, 0),
	F(siterec_replication_status, state, 4),
	F(siterec_replication_status, generation, 8),
	F(siterec_replication_status, last_point_id, 16),
	F(siterec_replication_status, last_point_time_ms, 24),
	F(siterec_replication_status, points, 32),
	F(siterec_replication_status, bytes_shipped, 40),
	F(siterec_replication_status, pending_bytes, 48),
	F(siterec_replication_status, reason, 56),
};

int main(void)
{
	int fail = 0;
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		if (pins[i].actual != pins[i].pinned) {
			printf("layout changed: %s is %zu, pinned %zu\n", pins[i].what, pins[i].actual,
			       pins[i].pinned);
			fail = 1;
		}
	}
	/* Linking a call of each layer proves the library (static or shared) resolves
	 * its own dependencies. */
	siterec_tracker *t = NULL;
	siterec_dlog_reader *r = NULL;
	siterec_hashmap *m = NULL;
	if (strcmp(siterec_version(NULL, NULL, NULL), SITEREC_VERSION_STRING) != 0 ||
	    siterec_tracker_open(&t, 0, NULL) != SITEREC_EINVAL ||
	    siterec_hashmap_new(&m, 0, 4096) != SITEREC_EINVAL ||
	    siterec_dlog_reader_open(&r, "/nonexistent/siterec.log", NULL) != SITEREC_ENOTFOUND) {
		printf("library calls did not behave: %s\n", siterec_error_last()->message);
		fail = 1;
	}
	printf("%s: %zu pinned layout facts\n", fail ? "FAIL" : "ok", sizeof(pins) / sizeof(pins[0]));
	return fail;
}
