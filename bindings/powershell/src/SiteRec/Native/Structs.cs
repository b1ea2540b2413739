// Mirrors of the public structs of include/siterec/*.h, field for field, in C
// order and with C names: [StructLayout(LayoutKind.Sequential)] gives the same
// layout as the x86-64 LP64 C compiler (tests/abi/test_layout.c pins it; the
// test LayoutTests compares these with those pins). Pointers are IntPtr (strings
// are allocated by NativeArena), callbacks are IntPtr from
// Marshal.GetFunctionPointerForDelegate (the delegates kept alive by the caller
// for the duration of the call), char arrays are fixed buffers (see Text()).
// New fields go at the end, as in C, with the version bumped.
using System;
using System.Runtime.InteropServices;

namespace SiteRec.Native
{
    [StructLayout(LayoutKind.Sequential)]
    public struct Error
    {
        public int code;
        public int http_status;
        public int os_error;
        public int callback_code;
        public IntPtr message;
        public IntPtr service_code;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Allocator
    {
        public uint version;
        public IntPtr malloc_fn;
        public IntPtr realloc_fn;
        public IntPtr free_fn;
        public IntPtr payload;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Extent
    {
        public ulong offset;
        public ulong length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct DiskOptions
    {
        public uint version;
        public uint format;
        public uint flags;
        public uint max_chain;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct DiskInfo
    {
        public uint version;
        public uint format;
        public uint kind;
        public uint logical_sector;
        public uint physical_sector;
        public uint block_size;
        public ulong virtual_size;
        public ulong file_size;
        public fixed byte disk_id[16];
        public uint generation_hint;
        public uint chain_depth;
        public uint log_replayed;
        public uint writable;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct DiskCreateOptions
    {
        public uint version;
        public uint format;
        public fixed byte disk_id[16];
        public uint flags;
        public uint reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct DlogOptions
    {
        public uint version;
        public uint flags;
        public ulong disk_size;
        public fixed byte disk_id[16];
        public uint block_size;
        public uint buffer_size;
        public ulong first_seq;
        public IntPtr key;
        public nuint key_size;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct DlogInfo
    {
        public uint version;
        public uint format_version;
        public ulong disk_size;
        public fixed byte disk_id[16];
        public uint block_size;
        public uint encrypted;
        public ulong first_seq;
        public ulong last_seq;
        public ulong records;
        public ulong data_bytes;
        public ulong file_bytes;
        public uint @sealed;
        public uint torn;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct DlogRecord
    {
        public ulong seq;
        public ulong offset;
        public ulong length;
        public uint zero;
        public uint reserved;
        public IntPtr data;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PointChoice
    {
        public uint how;
        public uint reserved;
        public ulong id;
        public long time_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Nic
    {
        public IntPtr network;
        public IntPtr subnet;
        public IntPtr ip;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct NetworkMap
    {
        public IntPtr source_network;
        public IntPtr target_network;
        public uint n_subnets;
        public uint reserved;
        public IntPtr subnets;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailoverRequest
    {
        public uint version;
        public uint type;
        public PointChoice point;
        public uint target;
        public uint output;
        public IntPtr disk_dir;
        public IntPtr vm_name;
        public IntPtr vm_size;
        public IntPtr os_type;
        public IntPtr location;
        public uint n_nics;
        public uint n_networks;
        public IntPtr nics;
        public IntPtr networks;
        public IntPtr test_network;
        public IntPtr test_subnet;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailoverDisk
    {
        public IntPtr id;
        public IntPtr location;
        public ulong size;
        public uint role;
        public uint lun;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailoverNic
    {
        public IntPtr network;
        public IntPtr subnet;
        public IntPtr ip;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailoverVm
    {
        public uint version;
        public uint type;
        public IntPtr vm_id;
        public IntPtr name;
        public uint generation;
        public uint source_generation;
        public uint firmware;
        public uint isolated;
        public ulong point_id;
        public long point_time_ms;
        public uint n_disks;
        public uint n_nics;
        public IntPtr disks;
        public IntPtr nics;
        public IntPtr vm_size;
        public IntPtr os_type;
        public IntPtr arm_template;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailoverOptions
    {
        public uint version;
        public uint flags;
        public IntPtr store;
        public IntPtr vm_id;
        public IntPtr replication;
        public IntPtr start;
        public IntPtr remove;
        public IntPtr shutdown;
        public IntPtr payload;
        public IntPtr progress;
        public IntPtr progress_payload;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct FailoverStatus
    {
        public uint version;
        public uint type;
        public uint phase;
        public uint n_disks;
        public ulong generation;
        public ulong point_id;
        public long point_time_ms;
        public ulong fence_id;
        public ulong bytes_written;
        public long started_ms;
        public long shutdown_ms;
        public long vm_started_ms;
        public fixed byte vm_name[128];
        public ulong bytes_differing;
        public ulong bytes_delta;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailbackDisk
    {
        public IntPtr id;
        public IntPtr path;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FailbackRequest
    {
        public uint version;
        public uint mode;
        public uint flags;
        public uint block_size;
        public uint n_disks;
        public uint reserved;
        public IntPtr disks;
        public IntPtr journal_dir;
        public IntPtr vm_name;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PlanEvent
    {
        public uint version;
        public uint kind;
        public uint op;
        public uint group;
        public int error;
        public uint reserved;
        public IntPtr group_name;
        public IntPtr vm_id;
        public IntPtr action;
        public IntPtr output;
        public IntPtr message;
        public ulong elapsed_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PlanOptions
    {
        public uint version;
        public uint flags;
        public IntPtr url;
        public IntPtr store_opts;
        public IntPtr state_path;
        public uint max_parallel;
        public uint reserved;
        public IntPtr start;
        public IntPtr remove;
        public IntPtr shutdown;
        public IntPtr payload;
        public IntPtr replication;
        public IntPtr action;
        public IntPtr @event;
        public IntPtr event_payload;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct PlanStatus
    {
        public uint version;
        public uint state;
        public uint op;
        public uint group;
        public uint n_groups;
        public uint n_machines;
        public uint machines_done;
        public uint machines_failed;
        public long started_ms;
        public long common_time_ms;
        public fixed byte paused_at[128];
        public fixed byte error[256];
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PlannerOptions
    {
        public uint version;
        public uint percentile;
        public uint growth_percent;
        public uint interval_s;
        public double bandwidth_mbps;
        public ulong retention_s;
        public ulong disk_churn_limit;
        public ulong vm_churn_limit;
        public ulong disk_size_limit;
        public uint disk_count_limit;
        public uint reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PlannerVm
    {
        public uint version;
        public uint fits;
        public uint failed;
        public uint disks;
        public IntPtr name;
        public double churn_mean;
        public double churn_peak;
        public double churn_percentile;
        public double churn_planned;
        public double rpo15_p90_mbps;
        public double rpo15_p100_mbps;
        public double rpo30_p90_mbps;
        public double rpo30_p100_mbps;
        public double rpo60_p90_mbps;
        public double rpo60_p100_mbps;
        public ulong replica_bytes;
        public ulong retention_bytes;
        public double initial_replication_s;
        public uint copy_frequency_s;
        public uint reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct JournalDisk
    {
        public IntPtr id;
        public ulong size;
        public IntPtr write;
        public IntPtr write_payload;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct JournalOptions
    {
        public uint version;
        public uint flags;
        public uint n_disks;
        public uint reserved;
        public IntPtr disks;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct VmDisk
    {
        public IntPtr id;
        public IntPtr path;
        public IntPtr read;
        public IntPtr read_payload;
        public ulong size;
        public uint role;
        public uint flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Vm
    {
        public uint version;
        public uint generation;
        public IntPtr id;
        public IntPtr name;
        public uint n_disks;
        public uint reserved;
        public IntPtr disks;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ReplicationOptions
    {
        public uint version;
        public uint flags;
        public IntPtr state_dir;
        public IntPtr store;
        public uint interval_s;
        public uint app_every_s;
        public ulong retention_s;
        public IntPtr quiesce;
        public IntPtr quiesce_payload;
        public IntPtr progress;
        public IntPtr progress_payload;
        public uint apply_delay_s;
        public uint checkpoint_s;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CycleResult
    {
        public uint version;
        public uint kind;
        public ulong point_id;
        public long cut_time_ms;
        public ulong bytes_shipped;
        public ulong points_pruned;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct FollowEvent
    {
        public uint version;
        public uint kind;
        public int error;
        public uint delay_ms;
        public ulong point_id;
        public CycleResult cycle;
    }

    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct ReplicationStatus
    {
        public uint version;
        public uint state;
        public ulong generation;
        public ulong last_point_id;
        public long last_point_time_ms;
        public ulong points;
        public ulong bytes_shipped;
        public ulong pending_bytes;
        public fixed byte reason[256];
        public ulong applied_point_id;
        public ulong waiting_bytes;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct RpDisk
    {
        public IntPtr disk;
        public IntPtr snapshot;
        public IntPtr changed;
        public ulong n_changed;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct RpLog
    {
        public uint disk_index;
        public uint reserved;
        public ulong seq;
        public IntPtr @object;
        public ulong length;
        public long sealed_ms;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct RpPoint
    {
        public uint version;
        public uint kind;
        public ulong id;
        public long cut_time_ms;
        public uint n_disks;
        public uint reserved;
        public IntPtr disks;
        public ulong n_logs;
        public IntPtr logs;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct StoreOptions
    {
        public uint version;
        public uint flags;
        public IntPtr account_key;
        public IntPtr sas_token;
        public IntPtr ca_file;
        public uint max_inflight;
        public uint timeout_ms;
        public ulong bandwidth_limit;
        public uint max_retries;
        public uint reserved;
        public IntPtr progress;
        public IntPtr progress_payload;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct StoreUploadOptions
    {
        public uint version;
        public uint flags;
        public IntPtr source_id;
        public IntPtr lease_id;
        public ulong checkpoint_bytes;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct StoreUploadStats
    {
        public uint version;
        public uint already_complete;
        public ulong resumed_from;
        public ulong bytes_read;
        public ulong bytes_sent;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TrackerOptions
    {
        public uint version;
        public uint block_size;
        public ulong activity_region;
        public IntPtr state_path;
        public uint flags;
        public uint reserved;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TrackerStats
    {
        public uint version;
        public uint block_size;
        public ulong disk_size;
        public ulong epoch;
        public ulong dirty_bytes;
        public ulong frozen_bytes;
        public ulong memory_bytes;
        public uint state;
        public uint has_frozen;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct HashscanOptions
    {
        public uint version;
        public uint flags;
        public uint threads;
        public uint reserved;
        public IntPtr progress;
        public IntPtr progress_payload;
    }
}
