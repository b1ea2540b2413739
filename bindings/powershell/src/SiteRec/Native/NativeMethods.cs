// The P/Invoke layer: one declaration per function libsiterec exports
// (lib/libsiterec.map), in header order, with the C names and parameter lists
// of include/siterec/*.h. Conventions:
//  - handles are SafeHandle subclasses (Handles.cs); out-parameters first, as in C;
//  - the *_free functions take IntPtr: only the SafeHandles' ReleaseHandle calls them;
//  - const char * is a UTF-8 string; other pointers (buffers, callbacks, arrays of
//    structs, char ** outputs) are IntPtr, built with NativeArena / CallbackScope;
//  - an options struct is passed with `in` (never NULL from here: always initialised
//    with its siterec_X_options_init), a struct the library fills with `ref`;
//  - int results: 0 or a negative SITEREC_E* code; SiteRecException.Check() turns a
//    negative one into an exception carrying siterec_error_last().
// The test DriftTests parses the headers and checks that every exported function is
// declared here with the same number of parameters.
using System;
using System.Runtime.InteropServices;

namespace SiteRec.Native
{
    public static partial class NativeMethods
    {
        /// <summary>The library name the resolver (LibraryResolver) maps to libsiterec.so.1.</summary>
        public const string Lib = "siterec";

        static NativeMethods() { LibraryResolver.Register(); }

        [DllImport(Lib, ExactSpelling = true)] public static extern IntPtr siterec_version(out int major, out int minor, out int patch);
        [DllImport(Lib, ExactSpelling = true)] public static extern IntPtr siterec_error_last();
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_error_clear();
        [DllImport(Lib, ExactSpelling = true)] public static extern IntPtr siterec_strerror(int code);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_init();
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_shutdown();
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_set_allocator(in Allocator allocator);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_free(IntPtr ptr);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_set_log(IntPtr fn, int max_level, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_options_init(ref DiskOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_open(out DiskHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DiskOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_disk_free(IntPtr disk);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_info_get(DiskHandle disk, ref DiskInfo info);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_read(DiskHandle disk, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_read_cb(IntPtr buf, nuint length, ulong offset, IntPtr disk);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_block_status(DiskHandle disk, ulong offset, ulong length, out ulong run_length, out int allocated);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_block_status_cb(ulong offset, ulong length, out ulong run_length, out int allocated, IntPtr disk);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_write(DiskHandle disk, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_write_cb(IntPtr buf, nuint length, ulong offset, IntPtr disk);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_flush(DiskHandle disk);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_create_options_init(ref DiskCreateOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_disk_create(out DiskHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, ulong size, in DiskCreateOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_options_init(ref DlogOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_create(out DlogHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_reopen(out DlogHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts, out int torn_out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_append(DlogHandle log, ulong offset, IntPtr data, nuint length, out ulong seq_out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_append_zero(DlogHandle log, ulong offset, ulong length, out ulong seq_out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_append_frozen(DlogHandle log, TrackerHandle tracker, IntPtr read, IntPtr read_payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_append_frozen_fd(DlogHandle log, TrackerHandle tracker, int fd);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_sync(DlogHandle log);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_seal(DlogHandle log);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_rotate(DlogHandle log, [MarshalAs(UnmanagedType.LPUTF8Str)] string next_path);
        [DllImport(Lib, ExactSpelling = true)] public static extern ulong siterec_dlog_next_seq(DlogHandle log);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_dlog_free(IntPtr log);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_reader_open(out DlogReaderHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_reader_next(DlogReaderHandle r, ref DlogRecord rec);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_reader_info(DlogReaderHandle r, ref DlogInfo info);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_dlog_reader_free(IntPtr r);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_verify([MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts, ref DlogInfo info);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_coalesce(IntPtr input_paths, nuint n_inputs, [MarshalAs(UnmanagedType.LPUTF8Str)] string output_path, in DlogOptions in_opts, in DlogOptions out_opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_apply([MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts, uint flags, IntPtr write, IntPtr write_payload, out ulong applied_seq);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_dlog_apply_fd([MarshalAs(UnmanagedType.LPUTF8Str)] string path, in DlogOptions opts, uint flags, int fd, out ulong applied_seq);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_request_init(ref FailoverRequest req, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_options_init(ref FailoverOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_open(out FailoverHandle @out, in FailoverOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_failover_free(IntPtr f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_test(FailoverHandle f, in FailoverRequest req);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_test_cleanup(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_run(FailoverHandle f, in FailoverRequest req);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_change_point(FailoverHandle f, in PointChoice point);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_commit(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_cancel(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_resume(FailoverHandle f, out uint resumed);
        [DllImport(Lib, ExactSpelling = true)] public static extern IntPtr siterec_failover_phase_name(uint phase);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_status_get(FailoverHandle f, uint type, ref FailoverStatus status);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_arm_template(FailoverHandle f, uint type, out IntPtr json);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failback_request_init(ref FailbackRequest req, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failback_run(FailoverHandle f, in FailbackRequest req);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failback_commit(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failback_cancel(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_failover_reprotect(FailoverHandle f);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_plan_options_init(ref PlanOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_plan_open(out PlanHandle @out, byte[] json, nuint len, in PlanOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_plan_free(IntPtr p);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_plan_run(PlanHandle p, uint op, out uint state);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_plan_resume(PlanHandle p, out uint state);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_plan_status_get(PlanHandle p, ref PlanStatus status);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_options_init(ref PlannerOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_open(out PlannerHandle @out, in PlannerOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_planner_free(IntPtr p);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_add_sample(PlannerHandle p, long timestamp, [MarshalAs(UnmanagedType.LPUTF8Str)] string vm, [MarshalAs(UnmanagedType.LPUTF8Str)] string disk, ulong disk_size, ulong bytes_written);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_record_tracker(PlannerHandle p, long timestamp, [MarshalAs(UnmanagedType.LPUTF8Str)] string vm, [MarshalAs(UnmanagedType.LPUTF8Str)] string disk, TrackerHandle tracker);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_load_csv(PlannerHandle p, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_vm_count(PlannerHandle p, out uint count);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_vm_get(PlannerHandle p, uint index, ref PlannerVm @out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_report_json(PlannerHandle p, out IntPtr json, out nuint len);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_planner_report_html(PlannerHandle p, out IntPtr html, out nuint len);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_options_init(ref JournalOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_open(out JournalHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string dir, in JournalOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_journal_free(IntPtr j);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_write(JournalHandle j, uint disk_index, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_flush(JournalHandle j);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_poll(JournalHandle j, out int rotated);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_request_rotate(JournalHandle j, uint timeout_ms, out ulong sealed_seq);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_log_path(JournalHandle j, uint disk_index, ulong seq, IntPtr buf, nuint cap);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_seqs(JournalHandle j, out ulong active_seq, out ulong oldest_seq);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_journal_release(JournalHandle j, ulong seq);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_options_init(ref ReplicationOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_open(out ReplicationHandle @out, in Vm vm, in ReplicationOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_replication_free(IntPtr r);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_keepalive(ReplicationHandle r);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_initial(ReplicationHandle r);
        [DllImport(Lib, ExactSpelling = true)] public static extern IntPtr siterec_replication_state_name(uint state);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_cycle(ReplicationHandle r, ref CycleResult result);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_checkpoint(ReplicationHandle r, out ulong bytes_shipped);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_apply(ReplicationHandle r, uint budget_ms, uint flags, out ulong waiting);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_resync(ReplicationHandle r, ref CycleResult result);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_follow(ReplicationHandle r, IntPtr fn, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_replication_status_get(ReplicationHandle r, ref ReplicationStatus status);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_open(out RpCatalogHandle @out, StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string vm_id);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_rp_free(IntPtr cat);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_refresh(RpCatalogHandle cat);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_add(RpCatalogHandle cat, in RpPoint point);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_count(RpCatalogHandle cat, out ulong count);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_get(RpCatalogHandle cat, ulong index, ref RpPoint point);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_find(RpCatalogHandle cat, ulong id, ref RpPoint point);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_select(RpCatalogHandle cat, uint how, long arg, out ulong id_out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_read(RpCatalogHandle cat, ulong id, uint disk_index, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_restore(RpCatalogHandle cat, ulong id, uint disk_index, uint flags, IntPtr write, IntPtr write_payload, IntPtr progress, IntPtr progress_payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_restore_at(RpCatalogHandle cat, long time_ms, uint disk_index, uint flags, IntPtr write, IntPtr write_payload, out long at_ms);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_prune(RpCatalogHandle cat, long now_ms, ulong retention_ms, IntPtr keep, nuint n_keep, out ulong pruned);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_rp_delete(RpCatalogHandle cat, IntPtr ids, nuint n_ids, out ulong deleted);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_options_init(ref StoreOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_open(out StoreHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string url, in StoreOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_store_free(IntPtr store);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_disk_create(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, ulong size);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_disk_size(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string snapshot, out ulong size);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_disk_delete(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint flags, [MarshalAs(UnmanagedType.LPUTF8Str)] string lease_id);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_read(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string snapshot, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_ranges(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string snapshot, ulong offset, ulong length, IntPtr cb, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_open(out StoreWriterHandle @out, StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string lease_id);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_write(StoreWriterHandle w, IntPtr buf, nuint length, ulong offset);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_write_cb(IntPtr buf, nuint length, ulong offset, IntPtr writer);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_zero(StoreWriterHandle w, ulong offset, ulong length);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_finish(StoreWriterHandle w);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_writer_set_merge(StoreWriterHandle w, ulong max_gap);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_store_writer_free(IntPtr w);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_upload_options_init(ref StoreUploadOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_upload(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, ulong size, IntPtr read, IntPtr status, IntPtr payload, in StoreUploadOptions opts, ref StoreUploadStats stats);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_snapshot(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, IntPtr snapshot_out, nuint cap);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_snapshot_delete(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string snapshot);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_doc_put(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, IntPtr data, nuint length, [MarshalAs(UnmanagedType.LPUTF8Str)] string if_match, IntPtr etag_out, nuint etag_cap);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_doc_get(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, out IntPtr data, out nuint length, IntPtr etag_out, nuint etag_cap);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_doc_delete(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string if_match);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_lease_acquire(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint duration_s, [MarshalAs(UnmanagedType.LPUTF8Str)] string proposed_id, IntPtr lease_out, nuint cap);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_lease_renew(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string lease_id);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_lease_release(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string lease_id);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_lease_break(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_store_list(StoreHandle store, [MarshalAs(UnmanagedType.LPUTF8Str)] string prefix, IntPtr cb, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_options_init(ref TrackerOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_open(out TrackerHandle @out, ulong disk_size, in TrackerOptions opts);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_tracker_free(IntPtr t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_mark(TrackerHandle t, ulong offset, ulong length);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_switch(TrackerHandle t, out ulong epoch_out);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_foreach_frozen(TrackerHandle t, IntPtr cb, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_foreach_dirty(TrackerHandle t, IntPtr cb, IntPtr payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_commit(TrackerHandle t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_rollback(TrackerHandle t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_mark_all(TrackerHandle t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_save(TrackerHandle t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_close(TrackerHandle t);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_tracker_stats_get(TrackerHandle t, ref TrackerStats stats);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_new(out HashmapHandle @out, ulong disk_size, uint block_size);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_load(out HashmapHandle @out, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_save(HashmapHandle map, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);
        [DllImport(Lib, ExactSpelling = true)] public static extern void siterec_hashmap_free(IntPtr map);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_info(HashmapHandle map, out ulong disk_size, out uint block_size, out ulong known_blocks);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashscan_options_init(ref HashscanOptions opts, uint version);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_scan(HashmapHandle map, IntPtr read, IntPtr read_payload, in HashscanOptions opts, IntPtr changed, IntPtr changed_payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_scan_fd(HashmapHandle map, int fd, in HashscanOptions opts, IntPtr changed, IntPtr changed_payload);
        [DllImport(Lib, ExactSpelling = true)] public static extern int siterec_hashmap_diff(HashmapHandle a, HashmapHandle b, IntPtr changed, IntPtr payload);
    }
}
