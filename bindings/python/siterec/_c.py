# Generated from include/siterec/*.h by the binding's maintainer, then reviewed;
# tests/test_drift.py and tests/test_layout.py keep it equal to the C headers.
# flake8: noqa
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_int, c_int64, c_size_t,
                    c_uint, c_uint8, c_uint32, c_uint64, c_void_p)
from ._loader import ffi

# ---- constants (enum values and #define numbers) ----
SITEREC_PLANNER_OPTIONS_VERSION = 1
SITEREC_PLANNER_VM_VERSION = 1
SITEREC_PLANNER_TOTALS = 0xFFFFFFFF
SITEREC_PLANNER_GROWTH_NONE = 0xFFFFFFFF
SITEREC_PLANNER_LIMIT_DISK_CHURN = 0x1
SITEREC_PLANNER_LIMIT_VM_CHURN = 0x2
SITEREC_PLANNER_LIMIT_DISK_SIZE = 0x4
SITEREC_PLANNER_LIMIT_DISK_COUNT = 0x8
SITEREC_VERSION_MAJOR = 0
SITEREC_VERSION_MINOR = 1
SITEREC_VERSION_PATCH = 0
SITEREC_ALLOCATOR_VERSION = 1
SITEREC_OK = 0
SITEREC_ERROR = -1
SITEREC_EINVAL = -2
SITEREC_ENOMEM = -3
SITEREC_EIO = -4
SITEREC_ENOTFOUND = -5
SITEREC_EEXISTS = -6
SITEREC_ERANGE = -7
SITEREC_EALIGN = -8
SITEREC_ECORRUPT = -9
SITEREC_EVERSION = -10
SITEREC_EAUTH = -11
SITEREC_ESTATE = -12
SITEREC_EABORTED = -13
SITEREC_EUNSUPPORTED = -14
SITEREC_ECONFLICT = -15
SITEREC_ELEASE = -16
SITEREC_ENETWORK = -17
SITEREC_ETIMEOUT = -18
SITEREC_EBUSY = -19
SITEREC_ENOSPC = -20
SITEREC_ETRUNCATED = -21
SITEREC_ERESYNC = -22
SITEREC_EDISK = -23
SITEREC_ESTORAGE = -24
SITEREC_ECRITICAL = -25
SITEREC_LOG_NONE = 0
SITEREC_LOG_ERROR = 1
SITEREC_LOG_WARN = 2
SITEREC_LOG_INFO = 3
SITEREC_LOG_DEBUG = 4
SITEREC_LOG_TRACE = 5
SITEREC_TRACKER_BLOCK_MIN = 512
SITEREC_TRACKER_BLOCK_DEFAULT = 4096
SITEREC_TRACKER_BLOCK_MAX = 1048576
SITEREC_TRACKER_ACTIVITY_DEFAULT = 67108864
SITEREC_TRACKER_OPTIONS_VERSION = 1
SITEREC_TRACKER_STATS_VERSION = 1
SITEREC_HASHSCAN_UPDATE = 0x1
SITEREC_HASHSCAN_OPTIONS_VERSION = 1
SITEREC_TRACKER_FRESH = 1
SITEREC_TRACKER_CLEAN = 2
SITEREC_TRACKER_RECOVERED = 3
SITEREC_TRACKER_UNTRUSTED = 4
SITEREC_DLOG_SECTOR = 512
SITEREC_DLOG_MAX_RECORD = 4194304
SITEREC_DLOG_KEY_SIZE = 32
SITEREC_DLOG_SYNC_EACH = 0x1
SITEREC_DLOG_DETECT_ZERO = 0x2
SITEREC_DLOG_OPTIONS_VERSION = 1
SITEREC_DLOG_INFO_VERSION = 1
SITEREC_DLOG_APPLY_ALLOW_TORN = 0x1
SITEREC_DLOG_APPLY_REQUIRE_SEALED = 0x2
SITEREC_DLOG_APPLY_NO_SYNC = 0x4
SITEREC_DISK_OPEN_WRITE = 0x1
SITEREC_DISK_REPLAY_LOG = 0x2
SITEREC_DISK_OPTIONS_VERSION = 1
SITEREC_DISK_INFO_VERSION = 1
SITEREC_DISK_CREATE_OPTIONS_VERSION = 1
SITEREC_DISK_FORMAT_AUTO = 0
SITEREC_DISK_FORMAT_RAW = 1
SITEREC_DISK_FORMAT_VHD = 2
SITEREC_DISK_FORMAT_VHDX = 3
SITEREC_DISK_KIND_FIXED = 1
SITEREC_DISK_KIND_DYNAMIC = 2
SITEREC_DISK_KIND_DIFFERENCING = 3
SITEREC_STORE_ALLOW_HTTP = 0x1
SITEREC_STORE_CONTENT_MD5 = 0x2
SITEREC_STORE_CREATE = 0x4
SITEREC_STORE_OPTIONS_VERSION = 1
SITEREC_STORE_DELETE_SNAPSHOTS = 0x1
SITEREC_STORE_UPLOAD_RESUME = 0x1
SITEREC_STORE_UPLOAD_VHD = 0x2
SITEREC_STORE_UPLOAD_OPTIONS_VERSION = 1
SITEREC_STORE_UPLOAD_STATS_VERSION = 1
SITEREC_STORE_ID_MAX = 64
SITEREC_STORE_ETAG_MAX = 96
SITEREC_STORE_LEASE_MAX = 64
SITEREC_STORE_KIND_DISK = 1
SITEREC_STORE_KIND_SNAPSHOT = 2
SITEREC_STORE_KIND_DOC = 3
SITEREC_RP_POINT_VERSION = 2
SITEREC_RP_RESTORE_ZEROS = 0x1
SITEREC_RP_CRASH = 1
SITEREC_RP_APP = 2
SITEREC_RP_LATEST = 1
SITEREC_RP_LATEST_APP = 2
SITEREC_RP_BY_ID = 3
SITEREC_RP_AT_OR_BEFORE = 4
SITEREC_JOURNAL_WRITER = 0x1
SITEREC_JOURNAL_CREATE = 0x2
SITEREC_JOURNAL_SYNC_EACH = 0x4
SITEREC_JOURNAL_ADD_DISKS = 0x8
SITEREC_JOURNAL_OPTIONS_VERSION = 1
SITEREC_VM_DISK_EXCLUDED = 0x1
SITEREC_VM_VERSION = 1
SITEREC_POLICY_CONTINUOUS = 0
SITEREC_REPLICATION_PROTECT = 0x1
SITEREC_REPLICATION_OPTIONS_VERSION = 2
SITEREC_CYCLE_RESULT_VERSION = 1
SITEREC_APPLY_NOW = 0x1
SITEREC_FOLLOW_EVENT_VERSION = 1
SITEREC_REPLICATION_STATUS_VERSION = 2
SITEREC_DISK_ROLE_OS = 1
SITEREC_DISK_ROLE_DATA = 2
SITEREC_REPL_INITIAL = 1
SITEREC_REPL_PROTECTED = 2
SITEREC_REPL_RESYNC = 3
SITEREC_REPL_CRITICAL = 4
SITEREC_REPL_FAILED_OVER = 5
SITEREC_FOLLOW_TICK = 1
SITEREC_FOLLOW_POINT = 2
SITEREC_FOLLOW_APPLIED = 3
SITEREC_FOLLOW_RETRY = 4
SITEREC_FOLLOW_RESYNC = 5
SITEREC_FAILOVER_REQUEST_VERSION = 1
SITEREC_FIRMWARE_BIOS = 1
SITEREC_FIRMWARE_UEFI = 2
SITEREC_FAILOVER_OPTIONS_VERSION = 1
SITEREC_FAILOVER_STATUS_VERSION = 1
SITEREC_FAILBACK_ALTERNATE = 0x1
SITEREC_FAILBACK_REQUEST_VERSION = 1
SITEREC_PLAN_EVENT_VERSION = 1
SITEREC_PLAN_OPTIONS_VERSION = 1
SITEREC_PLAN_STATUS_VERSION = 1
SITEREC_FAILOVER_TEST = 1
SITEREC_FAILOVER_PLANNED = 2
SITEREC_FAILOVER_UNPLANNED = 3
SITEREC_FAILOVER_FAILBACK = 4
SITEREC_POINT_LATEST = 1
SITEREC_POINT_LATEST_PROCESSED = 2
SITEREC_POINT_LATEST_APP = 3
SITEREC_POINT_ID = 4
SITEREC_POINT_TIME = 5
SITEREC_TARGET_AZURE = 1
SITEREC_TARGET_HYPERV = 2
SITEREC_OUTPUT_RAW = 1
SITEREC_OUTPUT_VHD = 2
SITEREC_FO_NONE = 0
SITEREC_FO_STARTING = 1
SITEREC_FO_MATERIALISING = 2
SITEREC_FO_STARTING_VM = 3
SITEREC_FO_FAILED_OVER = 4
SITEREC_FO_CHANGING = 5
SITEREC_FO_COMMITTING = 6
SITEREC_FO_COMMITTED = 7
SITEREC_FO_CANCELLING = 8
SITEREC_FO_SYNCING = 9
SITEREC_FO_SHUTTING_DOWN = 10
SITEREC_FO_DELTA = 11
SITEREC_FO_REPROTECTING = 12
SITEREC_FAILBACK_MINIMIZE_DOWNTIME = 1
SITEREC_FAILBACK_FULL = 2
SITEREC_PLAN_TEST = 1
SITEREC_PLAN_CLEANUP = 2
SITEREC_PLAN_PLANNED = 3
SITEREC_PLAN_UNPLANNED = 4
SITEREC_PLAN_COMMIT = 5
SITEREC_PLAN_FAILBACK = 6
SITEREC_PLAN_CANCEL = 7
SITEREC_PLAN_IDLE = 0
SITEREC_PLAN_RUNNING = 1
SITEREC_PLAN_PAUSED = 2
SITEREC_PLAN_DONE = 3
SITEREC_PLAN_FAILED = 4
SITEREC_PLAN_EV_GROUP = 1
SITEREC_PLAN_EV_MACHINE = 2
SITEREC_PLAN_EV_ACTION = 3
SITEREC_PLAN_EV_PAUSED = 4

# ---- opaque handles ----
class siterec_tracker(Structure):
    pass

class siterec_hashmap(Structure):
    pass

class siterec_dlog(Structure):
    pass

class siterec_dlog_reader(Structure):
    pass

class siterec_disk(Structure):
    pass

class siterec_store(Structure):
    pass

class siterec_store_writer(Structure):
    pass

class siterec_rp_catalog(Structure):
    pass

class siterec_journal(Structure):
    pass

class siterec_replication(Structure):
    pass

class siterec_failover(Structure):
    pass

class siterec_plan(Structure):
    pass

class siterec_planner(Structure):
    pass

# ---- structs (forward declared: callbacks refer to them) ----
class siterec_error(Structure):
    pass

class siterec_allocator(Structure):
    pass

class siterec_extent(Structure):
    pass

class siterec_tracker_options(Structure):
    pass

class siterec_tracker_stats(Structure):
    pass

class siterec_hashscan_options(Structure):
    pass

class siterec_dlog_options(Structure):
    pass

class siterec_dlog_info(Structure):
    pass

class siterec_dlog_record(Structure):
    pass

class siterec_disk_options(Structure):
    pass

class siterec_disk_info(Structure):
    pass

class siterec_disk_create_options(Structure):
    pass

class siterec_store_options(Structure):
    pass

class siterec_store_upload_options(Structure):
    pass

class siterec_store_upload_stats(Structure):
    pass

class siterec_rp_disk(Structure):
    pass

class siterec_rp_log(Structure):
    pass

class siterec_rp_point(Structure):
    pass

class siterec_journal_disk(Structure):
    pass

class siterec_journal_options(Structure):
    pass

class siterec_vm_disk(Structure):
    pass

class siterec_vm(Structure):
    pass

class siterec_replication_options(Structure):
    pass

class siterec_cycle_result(Structure):
    pass

class siterec_follow_event(Structure):
    pass

class siterec_replication_status(Structure):
    pass

class siterec_point_choice(Structure):
    pass

class siterec_nic(Structure):
    pass

class siterec_network_map(Structure):
    pass

class siterec_failover_request(Structure):
    pass

class siterec_failover_disk(Structure):
    pass

class siterec_failover_nic(Structure):
    pass

class siterec_failover_vm(Structure):
    pass

class siterec_failover_options(Structure):
    pass

class siterec_failover_status(Structure):
    pass

class siterec_failback_disk(Structure):
    pass

class siterec_failback_request(Structure):
    pass

class siterec_plan_event(Structure):
    pass

class siterec_plan_options(Structure):
    pass

class siterec_plan_status(Structure):
    pass

# ---- callback types ----
siterec_log_fn = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
siterec_extent_fn = CFUNCTYPE(c_int, c_uint64, c_uint64, c_void_p)
siterec_read_fn = CFUNCTYPE(c_int, c_void_p, c_size_t, c_uint64, c_void_p)
siterec_write_fn = CFUNCTYPE(c_int, c_void_p, c_size_t, c_uint64, c_void_p)
siterec_progress_fn = CFUNCTYPE(c_int, c_uint64, c_uint64, c_void_p)
siterec_block_status_fn = CFUNCTYPE(c_int, c_uint64, c_uint64, POINTER(c_uint64), POINTER(c_int), c_void_p)
siterec_store_list_fn = CFUNCTYPE(c_int, c_char_p, c_int, c_uint64, c_char_p, c_void_p)
siterec_quiesce_fn = CFUNCTYPE(c_int, c_int, c_void_p)
siterec_follow_fn = CFUNCTYPE(c_int, POINTER(siterec_follow_event), c_void_p)
siterec_vm_start_fn = CFUNCTYPE(c_int, POINTER(siterec_failover_vm), c_void_p)
siterec_vm_remove_fn = CFUNCTYPE(c_int, POINTER(siterec_failover_vm), c_void_p)
siterec_vm_shutdown_fn = CFUNCTYPE(c_int, c_char_p, c_void_p)
siterec_plan_event_fn = CFUNCTYPE(c_int, POINTER(siterec_plan_event), c_void_p)
siterec_plan_action_fn = CFUNCTYPE(c_int, c_char_p, c_uint32, c_char_p, c_void_p)
siterec_plan_replication_fn = CFUNCTYPE(c_int, c_char_p, POINTER(POINTER(siterec_replication)), c_void_p)

# ---- struct fields ----
siterec_error._fields_ = [
    ('code', c_int),
    ('http_status', c_int),
    ('os_error', c_int),
    ('callback_code', c_int),
    ('message', c_char_p),
    ('service_code', c_char_p),
]

siterec_allocator._fields_ = [
    ('version', c_uint),
    ('malloc_fn', CFUNCTYPE(c_void_p, c_size_t, c_void_p)),
    ('realloc_fn', CFUNCTYPE(c_void_p, c_void_p, c_size_t, c_void_p)),
    ('free_fn', CFUNCTYPE(None, c_void_p, c_void_p)),
    ('payload', c_void_p),
]

siterec_extent._fields_ = [
    ('offset', c_uint64),
    ('length', c_uint64),
]

siterec_tracker_options._fields_ = [
    ('version', c_uint),
    ('block_size', c_uint32),
    ('activity_region', c_uint64),
    ('state_path', c_char_p),
    ('flags', c_uint32),
    ('reserved', c_uint32),
]

siterec_tracker_stats._fields_ = [
    ('version', c_uint),
    ('block_size', c_uint32),
    ('disk_size', c_uint64),
    ('epoch', c_uint64),
    ('dirty_bytes', c_uint64),
    ('frozen_bytes', c_uint64),
    ('memory_bytes', c_uint64),
    ('state', c_uint32),
    ('has_frozen', c_uint32),
]

siterec_hashscan_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('threads', c_uint32),
    ('reserved', c_uint32),
    ('progress', siterec_progress_fn),
    ('progress_payload', c_void_p),
]

siterec_dlog_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('disk_size', c_uint64),
    ('disk_id', c_uint8 * 16),
    ('block_size', c_uint32),
    ('buffer_size', c_uint32),
    ('first_seq', c_uint64),
    ('key', POINTER(c_uint8)),
    ('key_size', c_size_t),
]

siterec_dlog_info._fields_ = [
    ('version', c_uint),
    ('format_version', c_uint32),
    ('disk_size', c_uint64),
    ('disk_id', c_uint8 * 16),
    ('block_size', c_uint32),
    ('encrypted', c_uint32),
    ('first_seq', c_uint64),
    ('last_seq', c_uint64),
    ('records', c_uint64),
    ('data_bytes', c_uint64),
    ('file_bytes', c_uint64),
    ('sealed', c_uint32),
    ('torn', c_uint32),
]

siterec_dlog_record._fields_ = [
    ('seq', c_uint64),
    ('offset', c_uint64),
    ('length', c_uint64),
    ('zero', c_uint32),
    ('reserved', c_uint32),
    ('data', c_void_p),
]

siterec_disk_options._fields_ = [
    ('version', c_uint),
    ('format', c_uint32),
    ('flags', c_uint32),
    ('max_chain', c_uint32),
]

siterec_disk_info._fields_ = [
    ('version', c_uint),
    ('format', c_uint32),
    ('kind', c_uint32),
    ('logical_sector', c_uint32),
    ('physical_sector', c_uint32),
    ('block_size', c_uint32),
    ('virtual_size', c_uint64),
    ('file_size', c_uint64),
    ('disk_id', c_uint8 * 16),
    ('generation_hint', c_uint32),
    ('chain_depth', c_uint32),
    ('log_replayed', c_uint32),
    ('writable', c_uint32),
]

siterec_disk_create_options._fields_ = [
    ('version', c_uint),
    ('format', c_uint32),
    ('disk_id', c_uint8 * 16),
    ('flags', c_uint32),
    ('reserved', c_uint32),
]

siterec_store_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('account_key', c_char_p),
    ('sas_token', c_char_p),
    ('ca_file', c_char_p),
    ('max_inflight', c_uint32),
    ('timeout_ms', c_uint32),
    ('bandwidth_limit', c_uint64),
    ('max_retries', c_uint32),
    ('reserved', c_uint32),
    ('progress', siterec_progress_fn),
    ('progress_payload', c_void_p),
]

siterec_store_upload_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('source_id', c_char_p),
    ('lease_id', c_char_p),
    ('checkpoint_bytes', c_uint64),
]

siterec_store_upload_stats._fields_ = [
    ('version', c_uint),
    ('already_complete', c_uint32),
    ('resumed_from', c_uint64),
    ('bytes_read', c_uint64),
    ('bytes_sent', c_uint64),
]

siterec_rp_disk._fields_ = [
    ('disk', c_char_p),
    ('snapshot', c_char_p),
    ('changed', POINTER(siterec_extent)),
    ('n_changed', c_uint64),
]

siterec_rp_log._fields_ = [
    ('disk_index', c_uint32),
    ('reserved', c_uint32),
    ('seq', c_uint64),
    ('object', c_char_p),
    ('length', c_uint64),
    ('sealed_ms', c_int64),
]

siterec_rp_point._fields_ = [
    ('version', c_uint),
    ('kind', c_uint32),
    ('id', c_uint64),
    ('cut_time_ms', c_int64),
    ('n_disks', c_uint32),
    ('reserved', c_uint32),
    ('disks', POINTER(siterec_rp_disk)),
    ('n_logs', c_uint64),
    ('logs', POINTER(siterec_rp_log)),
]

siterec_journal_disk._fields_ = [
    ('id', c_char_p),
    ('size', c_uint64),
    ('write', siterec_write_fn),
    ('write_payload', c_void_p),
]

siterec_journal_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('n_disks', c_uint32),
    ('reserved', c_uint32),
    ('disks', POINTER(siterec_journal_disk)),
]

siterec_vm_disk._fields_ = [
    ('id', c_char_p),
    ('path', c_char_p),
    ('read', siterec_read_fn),
    ('read_payload', c_void_p),
    ('size', c_uint64),
    ('role', c_uint32),
    ('flags', c_uint32),
]

siterec_vm._fields_ = [
    ('version', c_uint),
    ('generation', c_uint32),
    ('id', c_char_p),
    ('name', c_char_p),
    ('n_disks', c_uint32),
    ('reserved', c_uint32),
    ('disks', POINTER(siterec_vm_disk)),
]

siterec_replication_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('state_dir', c_char_p),
    ('store', POINTER(siterec_store)),
    ('interval_s', c_uint32),
    ('app_every_s', c_uint32),
    ('retention_s', c_uint64),
    ('quiesce', siterec_quiesce_fn),
    ('quiesce_payload', c_void_p),
    ('progress', siterec_progress_fn),
    ('progress_payload', c_void_p),
    ('apply_delay_s', c_uint32),
    ('checkpoint_s', c_uint32),
]

siterec_cycle_result._fields_ = [
    ('version', c_uint),
    ('kind', c_uint32),
    ('point_id', c_uint64),
    ('cut_time_ms', c_int64),
    ('bytes_shipped', c_uint64),
    ('points_pruned', c_uint64),
]

siterec_follow_event._fields_ = [
    ('version', c_uint),
    ('kind', c_uint32),
    ('error', c_int),
    ('delay_ms', c_uint32),
    ('point_id', c_uint64),
    ('cycle', siterec_cycle_result),
]

siterec_replication_status._fields_ = [
    ('version', c_uint),
    ('state', c_uint32),
    ('generation', c_uint64),
    ('last_point_id', c_uint64),
    ('last_point_time_ms', c_int64),
    ('points', c_uint64),
    ('bytes_shipped', c_uint64),
    ('pending_bytes', c_uint64),
    ('reason', c_char * 256),
    ('applied_point_id', c_uint64),
    ('waiting_bytes', c_uint64),
]

siterec_point_choice._fields_ = [
    ('how', c_uint32),
    ('reserved', c_uint32),
    ('id', c_uint64),
    ('time_ms', c_int64),
]

siterec_nic._fields_ = [
    ('network', c_char_p),
    ('subnet', c_char_p),
    ('ip', c_char_p),
]

siterec_network_map._fields_ = [
    ('source_network', c_char_p),
    ('target_network', c_char_p),
    ('n_subnets', c_uint32),
    ('reserved', c_uint32),
    ('subnets', POINTER(c_char_p)),
]

siterec_failover_request._fields_ = [
    ('version', c_uint),
    ('type', c_uint32),
    ('point', siterec_point_choice),
    ('target', c_uint32),
    ('output', c_uint32),
    ('disk_dir', c_char_p),
    ('vm_name', c_char_p),
    ('vm_size', c_char_p),
    ('os_type', c_char_p),
    ('location', c_char_p),
    ('n_nics', c_uint32),
    ('n_networks', c_uint32),
    ('nics', POINTER(siterec_nic)),
    ('networks', POINTER(siterec_network_map)),
    ('test_network', c_char_p),
    ('test_subnet', c_char_p),
]

siterec_failover_disk._fields_ = [
    ('id', c_char_p),
    ('location', c_char_p),
    ('size', c_uint64),
    ('role', c_uint32),
    ('lun', c_uint32),
]

siterec_failover_nic._fields_ = [
    ('network', c_char_p),
    ('subnet', c_char_p),
    ('ip', c_char_p),
]

siterec_failover_vm._fields_ = [
    ('version', c_uint),
    ('type', c_uint32),
    ('vm_id', c_char_p),
    ('name', c_char_p),
    ('generation', c_uint32),
    ('source_generation', c_uint32),
    ('firmware', c_uint32),
    ('isolated', c_uint32),
    ('point_id', c_uint64),
    ('point_time_ms', c_int64),
    ('n_disks', c_uint32),
    ('n_nics', c_uint32),
    ('disks', POINTER(siterec_failover_disk)),
    ('nics', POINTER(siterec_failover_nic)),
    ('vm_size', c_char_p),
    ('os_type', c_char_p),
    ('arm_template', c_char_p),
]

siterec_failover_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('store', POINTER(siterec_store)),
    ('vm_id', c_char_p),
    ('replication', POINTER(siterec_replication)),
    ('start', siterec_vm_start_fn),
    ('remove', siterec_vm_remove_fn),
    ('shutdown', siterec_vm_shutdown_fn),
    ('payload', c_void_p),
    ('progress', siterec_progress_fn),
    ('progress_payload', c_void_p),
]

siterec_failover_status._fields_ = [
    ('version', c_uint),
    ('type', c_uint32),
    ('phase', c_uint32),
    ('n_disks', c_uint32),
    ('generation', c_uint64),
    ('point_id', c_uint64),
    ('point_time_ms', c_int64),
    ('fence_id', c_uint64),
    ('bytes_written', c_uint64),
    ('started_ms', c_int64),
    ('shutdown_ms', c_int64),
    ('vm_started_ms', c_int64),
    ('vm_name', c_char * 128),
    ('bytes_differing', c_uint64),
    ('bytes_delta', c_uint64),
]

siterec_failback_disk._fields_ = [
    ('id', c_char_p),
    ('path', c_char_p),
]

siterec_failback_request._fields_ = [
    ('version', c_uint),
    ('mode', c_uint32),
    ('flags', c_uint32),
    ('block_size', c_uint32),
    ('n_disks', c_uint32),
    ('reserved', c_uint32),
    ('disks', POINTER(siterec_failback_disk)),
    ('journal_dir', c_char_p),
    ('vm_name', c_char_p),
]

siterec_plan_event._fields_ = [
    ('version', c_uint),
    ('kind', c_uint32),
    ('op', c_uint32),
    ('group', c_uint32),
    ('error', c_int),
    ('reserved', c_uint32),
    ('group_name', c_char_p),
    ('vm_id', c_char_p),
    ('action', c_char_p),
    ('output', c_char_p),
    ('message', c_char_p),
    ('elapsed_ms', c_uint64),
]

siterec_plan_options._fields_ = [
    ('version', c_uint),
    ('flags', c_uint32),
    ('url', c_char_p),
    ('store_opts', POINTER(siterec_store_options)),
    ('state_path', c_char_p),
    ('max_parallel', c_uint32),
    ('reserved', c_uint32),
    ('start', siterec_vm_start_fn),
    ('remove', siterec_vm_remove_fn),
    ('shutdown', siterec_vm_shutdown_fn),
    ('payload', c_void_p),
    ('replication', siterec_plan_replication_fn),
    ('action', siterec_plan_action_fn),
    ('event', siterec_plan_event_fn),
    ('event_payload', c_void_p),
]

siterec_plan_status._fields_ = [
    ('version', c_uint),
    ('state', c_uint32),
    ('op', c_uint32),
    ('group', c_uint32),
    ('n_groups', c_uint32),
    ('n_machines', c_uint32),
    ('machines_done', c_uint32),
    ('machines_failed', c_uint32),
    ('started_ms', c_int64),
    ('common_time_ms', c_int64),
    ('paused_at', c_char * 128),
    ('error', c_char * 256),
]

class siterec_planner_options(Structure):
    _fields_ = [
        ('version', c_uint),
        ('percentile', c_uint32),
        ('growth_percent', c_uint32),
        ('interval_s', c_uint32),
        ('bandwidth_mbps', c_double),
        ('retention_s', c_uint64),
        ('disk_churn_limit', c_uint64),
        ('vm_churn_limit', c_uint64),
        ('disk_size_limit', c_uint64),
        ('disk_count_limit', c_uint32),
        ('reserved', c_uint32),
    ]

class siterec_planner_vm(Structure):
    _fields_ = [
        ('version', c_uint),
        ('fits', c_uint32),
        ('failed', c_uint32),
        ('disks', c_uint32),
        ('name', c_char_p),
        ('churn_mean', c_double),
        ('churn_peak', c_double),
        ('churn_percentile', c_double),
        ('churn_planned', c_double),
        ('rpo15_p90_mbps', c_double),
        ('rpo15_p100_mbps', c_double),
        ('rpo30_p90_mbps', c_double),
        ('rpo30_p100_mbps', c_double),
        ('rpo60_p90_mbps', c_double),
        ('rpo60_p100_mbps', c_double),
        ('replica_bytes', c_uint64),
        ('retention_bytes', c_uint64),
        ('initial_replication_s', c_double),
        ('copy_frequency_s', c_uint32),
        ('reserved', c_uint32),
    ]

STRUCTS = {'siterec_error': siterec_error, 'siterec_allocator': siterec_allocator, 'siterec_extent': siterec_extent, 'siterec_tracker_options': siterec_tracker_options, 'siterec_tracker_stats': siterec_tracker_stats, 'siterec_hashscan_options': siterec_hashscan_options, 'siterec_dlog_options': siterec_dlog_options, 'siterec_dlog_info': siterec_dlog_info, 'siterec_dlog_record': siterec_dlog_record, 'siterec_disk_options': siterec_disk_options, 'siterec_disk_info': siterec_disk_info, 'siterec_disk_create_options': siterec_disk_create_options, 'siterec_store_options': siterec_store_options, 'siterec_store_upload_options': siterec_store_upload_options, 'siterec_store_upload_stats': siterec_store_upload_stats, 'siterec_rp_disk': siterec_rp_disk, 'siterec_rp_log': siterec_rp_log, 'siterec_rp_point': siterec_rp_point, 'siterec_journal_disk': siterec_journal_disk, 'siterec_journal_options': siterec_journal_options, 'siterec_vm_disk': siterec_vm_disk, 'siterec_vm': siterec_vm, 'siterec_replication_options': siterec_replication_options, 'siterec_cycle_result': siterec_cycle_result, 'siterec_follow_event': siterec_follow_event, 'siterec_replication_status': siterec_replication_status, 'siterec_point_choice': siterec_point_choice, 'siterec_nic': siterec_nic, 'siterec_network_map': siterec_network_map, 'siterec_failover_request': siterec_failover_request, 'siterec_failover_disk': siterec_failover_disk, 'siterec_failover_nic': siterec_failover_nic, 'siterec_failover_vm': siterec_failover_vm, 'siterec_failover_options': siterec_failover_options, 'siterec_failover_status': siterec_failover_status, 'siterec_failback_disk': siterec_failback_disk, 'siterec_failback_request': siterec_failback_request, 'siterec_plan_event': siterec_plan_event, 'siterec_plan_options': siterec_plan_options, 'siterec_plan_status': siterec_plan_status, 'siterec_planner_options': siterec_planner_options, 'siterec_planner_vm': siterec_planner_vm}

# ---- functions: every exported symbol, through the one ffi() helper ----
siterec_version = ffi('siterec_version', [POINTER(c_int), POINTER(c_int), POINTER(c_int)], c_char_p)
siterec_error_last = ffi('siterec_error_last', [], POINTER(siterec_error))
siterec_error_clear = ffi('siterec_error_clear', [], None)
siterec_strerror = ffi('siterec_strerror', [c_int], c_char_p)
siterec_init = ffi('siterec_init', [], c_int)
siterec_shutdown = ffi('siterec_shutdown', [], c_int)
siterec_set_allocator = ffi('siterec_set_allocator', [POINTER(siterec_allocator)], c_int)
siterec_free = ffi('siterec_free', [c_void_p], None)
siterec_set_log = ffi('siterec_set_log', [siterec_log_fn, c_int, c_void_p], c_int)
siterec_tracker_options_init = ffi('siterec_tracker_options_init', [POINTER(siterec_tracker_options), c_uint], c_int)
siterec_tracker_open = ffi('siterec_tracker_open', [POINTER(POINTER(siterec_tracker)), c_uint64, POINTER(siterec_tracker_options)], c_int)
siterec_tracker_free = ffi('siterec_tracker_free', [POINTER(siterec_tracker)], None)
siterec_tracker_mark = ffi('siterec_tracker_mark', [POINTER(siterec_tracker), c_uint64, c_uint64], c_int)
siterec_tracker_switch = ffi('siterec_tracker_switch', [POINTER(siterec_tracker), POINTER(c_uint64)], c_int)
siterec_tracker_foreach_frozen = ffi('siterec_tracker_foreach_frozen', [POINTER(siterec_tracker), siterec_extent_fn, c_void_p], c_int)
siterec_tracker_foreach_dirty = ffi('siterec_tracker_foreach_dirty', [POINTER(siterec_tracker), siterec_extent_fn, c_void_p], c_int)
siterec_tracker_commit = ffi('siterec_tracker_commit', [POINTER(siterec_tracker)], c_int)
siterec_tracker_rollback = ffi('siterec_tracker_rollback', [POINTER(siterec_tracker)], c_int)
siterec_tracker_mark_all = ffi('siterec_tracker_mark_all', [POINTER(siterec_tracker)], c_int)
siterec_tracker_save = ffi('siterec_tracker_save', [POINTER(siterec_tracker)], c_int)
siterec_tracker_close = ffi('siterec_tracker_close', [POINTER(siterec_tracker)], c_int)
siterec_tracker_stats_get = ffi('siterec_tracker_stats_get', [POINTER(siterec_tracker), POINTER(siterec_tracker_stats)], c_int)
siterec_hashmap_new = ffi('siterec_hashmap_new', [POINTER(POINTER(siterec_hashmap)), c_uint64, c_uint32], c_int)
siterec_hashmap_load = ffi('siterec_hashmap_load', [POINTER(POINTER(siterec_hashmap)), c_char_p], c_int)
siterec_hashmap_save = ffi('siterec_hashmap_save', [POINTER(siterec_hashmap), c_char_p], c_int)
siterec_hashmap_free = ffi('siterec_hashmap_free', [POINTER(siterec_hashmap)], None)
siterec_hashmap_info = ffi('siterec_hashmap_info', [POINTER(siterec_hashmap), POINTER(c_uint64), POINTER(c_uint32), POINTER(c_uint64)], c_int)
siterec_hashscan_options_init = ffi('siterec_hashscan_options_init', [POINTER(siterec_hashscan_options), c_uint], c_int)
siterec_hashmap_scan = ffi('siterec_hashmap_scan', [POINTER(siterec_hashmap), siterec_read_fn, c_void_p, POINTER(siterec_hashscan_options), siterec_extent_fn, c_void_p], c_int)
siterec_hashmap_scan_fd = ffi('siterec_hashmap_scan_fd', [POINTER(siterec_hashmap), c_int, POINTER(siterec_hashscan_options), siterec_extent_fn, c_void_p], c_int)
siterec_hashmap_diff = ffi('siterec_hashmap_diff', [POINTER(siterec_hashmap), POINTER(siterec_hashmap), siterec_extent_fn, c_void_p], c_int)
siterec_dlog_options_init = ffi('siterec_dlog_options_init', [POINTER(siterec_dlog_options), c_uint], c_int)
siterec_dlog_create = ffi('siterec_dlog_create', [POINTER(POINTER(siterec_dlog)), c_char_p, POINTER(siterec_dlog_options)], c_int)
siterec_dlog_reopen = ffi('siterec_dlog_reopen', [POINTER(POINTER(siterec_dlog)), c_char_p, POINTER(siterec_dlog_options), POINTER(c_int)], c_int)
siterec_dlog_append = ffi('siterec_dlog_append', [POINTER(siterec_dlog), c_uint64, c_void_p, c_size_t, POINTER(c_uint64)], c_int)
siterec_dlog_append_zero = ffi('siterec_dlog_append_zero', [POINTER(siterec_dlog), c_uint64, c_uint64, POINTER(c_uint64)], c_int)
siterec_dlog_append_frozen = ffi('siterec_dlog_append_frozen', [POINTER(siterec_dlog), POINTER(siterec_tracker), siterec_read_fn, c_void_p], c_int)
siterec_dlog_append_frozen_fd = ffi('siterec_dlog_append_frozen_fd', [POINTER(siterec_dlog), POINTER(siterec_tracker), c_int], c_int)
siterec_dlog_sync = ffi('siterec_dlog_sync', [POINTER(siterec_dlog)], c_int)
siterec_dlog_seal = ffi('siterec_dlog_seal', [POINTER(siterec_dlog)], c_int)
siterec_dlog_rotate = ffi('siterec_dlog_rotate', [POINTER(siterec_dlog), c_char_p], c_int)
siterec_dlog_next_seq = ffi('siterec_dlog_next_seq', [POINTER(siterec_dlog)], c_uint64)
siterec_dlog_free = ffi('siterec_dlog_free', [POINTER(siterec_dlog)], None)
siterec_dlog_reader_open = ffi('siterec_dlog_reader_open', [POINTER(POINTER(siterec_dlog_reader)), c_char_p, POINTER(siterec_dlog_options)], c_int)
siterec_dlog_reader_next = ffi('siterec_dlog_reader_next', [POINTER(siterec_dlog_reader), POINTER(siterec_dlog_record)], c_int)
siterec_dlog_reader_info = ffi('siterec_dlog_reader_info', [POINTER(siterec_dlog_reader), POINTER(siterec_dlog_info)], c_int)
siterec_dlog_reader_free = ffi('siterec_dlog_reader_free', [POINTER(siterec_dlog_reader)], None)
siterec_dlog_verify = ffi('siterec_dlog_verify', [c_char_p, POINTER(siterec_dlog_options), POINTER(siterec_dlog_info)], c_int)
siterec_dlog_coalesce = ffi('siterec_dlog_coalesce', [POINTER(c_char_p), c_size_t, c_char_p, POINTER(siterec_dlog_options), POINTER(siterec_dlog_options)], c_int)
siterec_dlog_apply = ffi('siterec_dlog_apply', [c_char_p, POINTER(siterec_dlog_options), c_uint32, siterec_write_fn, c_void_p, POINTER(c_uint64)], c_int)
siterec_dlog_apply_fd = ffi('siterec_dlog_apply_fd', [c_char_p, POINTER(siterec_dlog_options), c_uint32, c_int, POINTER(c_uint64)], c_int)
siterec_disk_options_init = ffi('siterec_disk_options_init', [POINTER(siterec_disk_options), c_uint], c_int)
siterec_disk_open = ffi('siterec_disk_open', [POINTER(POINTER(siterec_disk)), c_char_p, POINTER(siterec_disk_options)], c_int)
siterec_disk_free = ffi('siterec_disk_free', [POINTER(siterec_disk)], None)
siterec_disk_info_get = ffi('siterec_disk_info_get', [POINTER(siterec_disk), POINTER(siterec_disk_info)], c_int)
siterec_disk_read = ffi('siterec_disk_read', [POINTER(siterec_disk), c_void_p, c_size_t, c_uint64], c_int)
siterec_disk_read_cb = ffi('siterec_disk_read_cb', [c_void_p, c_size_t, c_uint64, c_void_p], c_int)
siterec_disk_block_status = ffi('siterec_disk_block_status', [POINTER(siterec_disk), c_uint64, c_uint64, POINTER(c_uint64), POINTER(c_int)], c_int)
siterec_disk_block_status_cb = ffi('siterec_disk_block_status_cb', [c_uint64, c_uint64, POINTER(c_uint64), POINTER(c_int), c_void_p], c_int)
siterec_disk_write = ffi('siterec_disk_write', [POINTER(siterec_disk), c_void_p, c_size_t, c_uint64], c_int)
siterec_disk_write_cb = ffi('siterec_disk_write_cb', [c_void_p, c_size_t, c_uint64, c_void_p], c_int)
siterec_disk_flush = ffi('siterec_disk_flush', [POINTER(siterec_disk)], c_int)
siterec_disk_create_options_init = ffi('siterec_disk_create_options_init', [POINTER(siterec_disk_create_options), c_uint], c_int)
siterec_disk_create = ffi('siterec_disk_create', [POINTER(POINTER(siterec_disk)), c_char_p, c_uint64, POINTER(siterec_disk_create_options)], c_int)
siterec_store_options_init = ffi('siterec_store_options_init', [POINTER(siterec_store_options), c_uint], c_int)
siterec_store_open = ffi('siterec_store_open', [POINTER(POINTER(siterec_store)), c_char_p, POINTER(siterec_store_options)], c_int)
siterec_store_free = ffi('siterec_store_free', [POINTER(siterec_store)], None)
siterec_store_disk_create = ffi('siterec_store_disk_create', [POINTER(siterec_store), c_char_p, c_uint64], c_int)
siterec_store_disk_size = ffi('siterec_store_disk_size', [POINTER(siterec_store), c_char_p, c_char_p, POINTER(c_uint64)], c_int)
siterec_store_disk_delete = ffi('siterec_store_disk_delete', [POINTER(siterec_store), c_char_p, c_uint32, c_char_p], c_int)
siterec_store_read = ffi('siterec_store_read', [POINTER(siterec_store), c_char_p, c_char_p, c_void_p, c_size_t, c_uint64], c_int)
siterec_store_ranges = ffi('siterec_store_ranges', [POINTER(siterec_store), c_char_p, c_char_p, c_uint64, c_uint64, siterec_extent_fn, c_void_p], c_int)
siterec_store_writer_open = ffi('siterec_store_writer_open', [POINTER(POINTER(siterec_store_writer)), POINTER(siterec_store), c_char_p, c_char_p], c_int)
siterec_store_writer_write = ffi('siterec_store_writer_write', [POINTER(siterec_store_writer), c_void_p, c_size_t, c_uint64], c_int)
siterec_store_writer_write_cb = ffi('siterec_store_writer_write_cb', [c_void_p, c_size_t, c_uint64, c_void_p], c_int)
siterec_store_writer_zero = ffi('siterec_store_writer_zero', [POINTER(siterec_store_writer), c_uint64, c_uint64], c_int)
siterec_store_writer_finish = ffi('siterec_store_writer_finish', [POINTER(siterec_store_writer)], c_int)
siterec_store_writer_set_merge = ffi('siterec_store_writer_set_merge', [POINTER(siterec_store_writer), c_uint64], c_int)
siterec_store_writer_free = ffi('siterec_store_writer_free', [POINTER(siterec_store_writer)], None)
siterec_store_upload_options_init = ffi('siterec_store_upload_options_init', [POINTER(siterec_store_upload_options), c_uint], c_int)
siterec_store_upload = ffi('siterec_store_upload', [POINTER(siterec_store), c_char_p, c_uint64, siterec_read_fn, siterec_block_status_fn, c_void_p, POINTER(siterec_store_upload_options), POINTER(siterec_store_upload_stats)], c_int)
siterec_store_snapshot = ffi('siterec_store_snapshot', [POINTER(siterec_store), c_char_p, POINTER(c_char), c_size_t], c_int)
siterec_store_snapshot_delete = ffi('siterec_store_snapshot_delete', [POINTER(siterec_store), c_char_p, c_char_p], c_int)
siterec_store_doc_put = ffi('siterec_store_doc_put', [POINTER(siterec_store), c_char_p, c_void_p, c_size_t, c_char_p, POINTER(c_char), c_size_t], c_int)
siterec_store_doc_get = ffi('siterec_store_doc_get', [POINTER(siterec_store), c_char_p, POINTER(c_void_p), POINTER(c_size_t), POINTER(c_char), c_size_t], c_int)
siterec_store_doc_delete = ffi('siterec_store_doc_delete', [POINTER(siterec_store), c_char_p, c_char_p], c_int)
siterec_store_lease_acquire = ffi('siterec_store_lease_acquire', [POINTER(siterec_store), c_char_p, c_uint32, c_char_p, POINTER(c_char), c_size_t], c_int)
siterec_store_lease_renew = ffi('siterec_store_lease_renew', [POINTER(siterec_store), c_char_p, c_char_p], c_int)
siterec_store_lease_release = ffi('siterec_store_lease_release', [POINTER(siterec_store), c_char_p, c_char_p], c_int)
siterec_store_lease_break = ffi('siterec_store_lease_break', [POINTER(siterec_store), c_char_p], c_int)
siterec_store_list = ffi('siterec_store_list', [POINTER(siterec_store), c_char_p, siterec_store_list_fn, c_void_p], c_int)
siterec_rp_open = ffi('siterec_rp_open', [POINTER(POINTER(siterec_rp_catalog)), POINTER(siterec_store), c_char_p], c_int)
siterec_rp_free = ffi('siterec_rp_free', [POINTER(siterec_rp_catalog)], None)
siterec_rp_refresh = ffi('siterec_rp_refresh', [POINTER(siterec_rp_catalog)], c_int)
siterec_rp_add = ffi('siterec_rp_add', [POINTER(siterec_rp_catalog), POINTER(siterec_rp_point)], c_int)
siterec_rp_count = ffi('siterec_rp_count', [POINTER(siterec_rp_catalog), POINTER(c_uint64)], c_int)
siterec_rp_get = ffi('siterec_rp_get', [POINTER(siterec_rp_catalog), c_uint64, POINTER(siterec_rp_point)], c_int)
siterec_rp_find = ffi('siterec_rp_find', [POINTER(siterec_rp_catalog), c_uint64, POINTER(siterec_rp_point)], c_int)
siterec_rp_select = ffi('siterec_rp_select', [POINTER(siterec_rp_catalog), c_uint32, c_int64, POINTER(c_uint64)], c_int)
siterec_rp_read = ffi('siterec_rp_read', [POINTER(siterec_rp_catalog), c_uint64, c_uint32, c_void_p, c_size_t, c_uint64], c_int)
siterec_rp_restore = ffi('siterec_rp_restore', [POINTER(siterec_rp_catalog), c_uint64, c_uint32, c_uint32, siterec_write_fn, c_void_p, siterec_progress_fn, c_void_p], c_int)
siterec_rp_restore_at = ffi('siterec_rp_restore_at', [POINTER(siterec_rp_catalog), c_int64, c_uint32, c_uint32, siterec_write_fn, c_void_p, POINTER(c_int64)], c_int)
siterec_rp_prune = ffi('siterec_rp_prune', [POINTER(siterec_rp_catalog), c_int64, c_uint64, POINTER(c_uint64), c_size_t, POINTER(c_uint64)], c_int)
siterec_rp_delete = ffi('siterec_rp_delete', [POINTER(siterec_rp_catalog), POINTER(c_uint64), c_size_t, POINTER(c_uint64)], c_int)
siterec_journal_options_init = ffi('siterec_journal_options_init', [POINTER(siterec_journal_options), c_uint], c_int)
siterec_journal_open = ffi('siterec_journal_open', [POINTER(POINTER(siterec_journal)), c_char_p, POINTER(siterec_journal_options)], c_int)
siterec_journal_free = ffi('siterec_journal_free', [POINTER(siterec_journal)], None)
siterec_journal_write = ffi('siterec_journal_write', [POINTER(siterec_journal), c_uint32, c_void_p, c_size_t, c_uint64], c_int)
siterec_journal_flush = ffi('siterec_journal_flush', [POINTER(siterec_journal)], c_int)
siterec_journal_poll = ffi('siterec_journal_poll', [POINTER(siterec_journal), POINTER(c_int)], c_int)
siterec_journal_request_rotate = ffi('siterec_journal_request_rotate', [POINTER(siterec_journal), c_uint32, POINTER(c_uint64)], c_int)
siterec_journal_log_path = ffi('siterec_journal_log_path', [POINTER(siterec_journal), c_uint32, c_uint64, POINTER(c_char), c_size_t], c_int)
siterec_journal_seqs = ffi('siterec_journal_seqs', [POINTER(siterec_journal), POINTER(c_uint64), POINTER(c_uint64)], c_int)
siterec_journal_release = ffi('siterec_journal_release', [POINTER(siterec_journal), c_uint64], c_int)
siterec_replication_options_init = ffi('siterec_replication_options_init', [POINTER(siterec_replication_options), c_uint], c_int)
siterec_replication_open = ffi('siterec_replication_open', [POINTER(POINTER(siterec_replication)), POINTER(siterec_vm), POINTER(siterec_replication_options)], c_int)
siterec_replication_free = ffi('siterec_replication_free', [POINTER(siterec_replication)], None)
siterec_replication_keepalive = ffi('siterec_replication_keepalive', [POINTER(siterec_replication)], c_int)
siterec_replication_initial = ffi('siterec_replication_initial', [POINTER(siterec_replication)], c_int)
siterec_replication_state_name = ffi('siterec_replication_state_name', [c_uint32], c_char_p)
siterec_replication_cycle = ffi('siterec_replication_cycle', [POINTER(siterec_replication), POINTER(siterec_cycle_result)], c_int)
siterec_replication_checkpoint = ffi('siterec_replication_checkpoint', [POINTER(siterec_replication), POINTER(c_uint64)], c_int)
siterec_replication_apply = ffi('siterec_replication_apply', [POINTER(siterec_replication), c_uint32, c_uint32, POINTER(c_uint64)], c_int)
siterec_replication_resync = ffi('siterec_replication_resync', [POINTER(siterec_replication), POINTER(siterec_cycle_result)], c_int)
siterec_replication_follow = ffi('siterec_replication_follow', [POINTER(siterec_replication), siterec_follow_fn, c_void_p], c_int)
siterec_replication_status_get = ffi('siterec_replication_status_get', [POINTER(siterec_replication), POINTER(siterec_replication_status)], c_int)
siterec_failover_request_init = ffi('siterec_failover_request_init', [POINTER(siterec_failover_request), c_uint], c_int)
siterec_failover_options_init = ffi('siterec_failover_options_init', [POINTER(siterec_failover_options), c_uint], c_int)
siterec_failover_open = ffi('siterec_failover_open', [POINTER(POINTER(siterec_failover)), POINTER(siterec_failover_options)], c_int)
siterec_failover_free = ffi('siterec_failover_free', [POINTER(siterec_failover)], None)
siterec_failover_test = ffi('siterec_failover_test', [POINTER(siterec_failover), POINTER(siterec_failover_request)], c_int)
siterec_failover_test_cleanup = ffi('siterec_failover_test_cleanup', [POINTER(siterec_failover)], c_int)
siterec_failover_run = ffi('siterec_failover_run', [POINTER(siterec_failover), POINTER(siterec_failover_request)], c_int)
siterec_failover_change_point = ffi('siterec_failover_change_point', [POINTER(siterec_failover), POINTER(siterec_point_choice)], c_int)
siterec_failover_commit = ffi('siterec_failover_commit', [POINTER(siterec_failover)], c_int)
siterec_failover_cancel = ffi('siterec_failover_cancel', [POINTER(siterec_failover)], c_int)
siterec_failover_resume = ffi('siterec_failover_resume', [POINTER(siterec_failover), POINTER(c_uint32)], c_int)
siterec_failover_phase_name = ffi('siterec_failover_phase_name', [c_uint32], c_char_p)
siterec_failover_status_get = ffi('siterec_failover_status_get', [POINTER(siterec_failover), c_uint32, POINTER(siterec_failover_status)], c_int)
siterec_failover_arm_template = ffi('siterec_failover_arm_template', [POINTER(siterec_failover), c_uint32, POINTER(POINTER(c_char))], c_int)
siterec_failback_request_init = ffi('siterec_failback_request_init', [POINTER(siterec_failback_request), c_uint], c_int)
siterec_failback_run = ffi('siterec_failback_run', [POINTER(siterec_failover), POINTER(siterec_failback_request)], c_int)
siterec_failback_commit = ffi('siterec_failback_commit', [POINTER(siterec_failover)], c_int)
siterec_failback_cancel = ffi('siterec_failback_cancel', [POINTER(siterec_failover)], c_int)
siterec_failover_reprotect = ffi('siterec_failover_reprotect', [POINTER(siterec_failover)], c_int)
siterec_plan_options_init = ffi('siterec_plan_options_init', [POINTER(siterec_plan_options), c_uint], c_int)
siterec_plan_open = ffi('siterec_plan_open', [POINTER(POINTER(siterec_plan)), c_char_p, c_size_t, POINTER(siterec_plan_options)], c_int)
siterec_plan_free = ffi('siterec_plan_free', [POINTER(siterec_plan)], None)
siterec_plan_run = ffi('siterec_plan_run', [POINTER(siterec_plan), c_uint32, POINTER(c_uint32)], c_int)
siterec_plan_resume = ffi('siterec_plan_resume', [POINTER(siterec_plan), POINTER(c_uint32)], c_int)
siterec_plan_status_get = ffi('siterec_plan_status_get', [POINTER(siterec_plan), POINTER(siterec_plan_status)], c_int)
siterec_planner_options_init = ffi('siterec_planner_options_init', [POINTER(siterec_planner_options), c_uint], c_int)
siterec_planner_open = ffi('siterec_planner_open', [POINTER(POINTER(siterec_planner)), POINTER(siterec_planner_options)], c_int)
siterec_planner_free = ffi('siterec_planner_free', [POINTER(siterec_planner)], None)
siterec_planner_add_sample = ffi('siterec_planner_add_sample', [POINTER(siterec_planner), c_int64, c_char_p, c_char_p, c_uint64, c_uint64], c_int)
siterec_planner_load_csv = ffi('siterec_planner_load_csv', [POINTER(siterec_planner), c_char_p], c_int)
siterec_planner_vm_count = ffi('siterec_planner_vm_count', [POINTER(siterec_planner), POINTER(c_uint32)], c_int)
siterec_planner_vm_get = ffi('siterec_planner_vm_get', [POINTER(siterec_planner), c_uint32, POINTER(siterec_planner_vm)], c_int)
siterec_planner_report_json = ffi('siterec_planner_report_json', [POINTER(siterec_planner), POINTER(POINTER(c_char)), POINTER(c_size_t)], c_int)
siterec_planner_report_html = ffi('siterec_planner_report_html', [POINTER(siterec_planner), POINTER(POINTER(c_char)), POINTER(c_size_t)], c_int)
siterec_planner_record_tracker = ffi('siterec_planner_record_tracker', [POINTER(siterec_planner), c_int64, c_char_p, c_char_p, POINTER(siterec_tracker)], c_int)
