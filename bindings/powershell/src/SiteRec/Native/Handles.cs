// One SafeHandle per opaque handle type of the library: ReleaseHandle calls its
// siterec_*_free, exactly once, also when the object is finalised. A handle the
// library took over (e.g. a replication handle given to a recovery plan, which
// frees it) is released from the SafeHandle with Detach().
using System;
using System.Runtime.InteropServices;

namespace SiteRec.Native
{
    public abstract class SiteRecHandle : SafeHandle
    {
        protected SiteRecHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;

        /// <summary>Give up ownership: the caller (or the library) frees the pointer returned.</summary>
        public IntPtr Detach()
        {
            IntPtr p = handle;
            SetHandleAsInvalid();
            return p;
        }
    }

    public sealed class StoreHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_store_free(handle); return true; } }

    public sealed class StoreWriterHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_store_writer_free(handle); return true; } }

    public sealed class DiskHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_disk_free(handle); return true; } }

    public sealed class TrackerHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_tracker_free(handle); return true; } }

    public sealed class HashmapHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_hashmap_free(handle); return true; } }

    public sealed class DlogHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_dlog_free(handle); return true; } }

    public sealed class DlogReaderHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_dlog_reader_free(handle); return true; } }

    public sealed class JournalHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_journal_free(handle); return true; } }

    public sealed class RpCatalogHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_rp_free(handle); return true; } }

    public sealed class ReplicationHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_replication_free(handle); return true; } }

    public sealed class FailoverHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_failover_free(handle); return true; } }

    public sealed class PlanHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_plan_free(handle); return true; } }

    public sealed class PlannerHandle : SiteRecHandle
    { protected override bool ReleaseHandle() { NativeMethods.siterec_planner_free(handle); return true; } }
}
