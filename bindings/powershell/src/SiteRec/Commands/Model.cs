// The objects the cmdlets write to the pipeline.
using System;

namespace SiteRec.Commands
{
    internal static class Time
    {
        public static DateTimeOffset? FromMs(long ms) => ms == 0 ? (DateTimeOffset?)null : DateTimeOffset.FromUnixTimeMilliseconds(ms);
    }

    /// <summary>A protected VM and where its replication stands (replication.h siterec_replication_status).</summary>
    public sealed class SiteRecReplication
    {
        public string VmId { get; set; }
        public string Url { get; set; }
        public string StateDirectory { get; set; }
        public string State { get; set; }
        public ulong Generation { get; set; }
        public ulong LastPointId { get; set; }
        public DateTimeOffset? LastPointTime { get; set; }
        public ulong Points { get; set; }
        public ulong BytesShipped { get; set; }
        public ulong PendingBytes { get; set; }
        public ulong AppliedPointId { get; set; }
        public ulong WaitingBytes { get; set; }
        public string Reason { get; set; }
    }

    /// <summary>What a replication cycle (or a resync) did.</summary>
    public sealed class SiteRecCycleResult
    {
        public string VmId { get; set; }
        public string Url { get; set; }
        public string StateDirectory { get; set; }
        /// <summary>Crash, App, or null when no point was added.</summary>
        public string Kind { get; set; }
        public ulong PointId { get; set; }
        public DateTimeOffset? CutTime { get; set; }
        public ulong BytesShipped { get; set; }
        public ulong PointsPruned { get; set; }
        /// <summary>With -Apply: shipped log bytes still not applied to the replicas.</summary>
        public ulong WaitingBytes { get; set; }
    }

    /// <summary>A recovery point (rp.h). Pipe it into Start-SiteRecFailover / Start-SiteRecTestFailover.</summary>
    public sealed class SiteRecRecoveryPoint
    {
        public string Url { get; set; }
        public string VmId { get; set; }
        public ulong Id { get; set; }
        public string Kind { get; set; }
        public DateTimeOffset CutTime { get; set; }
        public long CutTimeMs { get; set; }
        public string[] Disks { get; set; }
        /// <summary>Logs applied on top of the snapshots (0: a snapshot point).</summary>
        public ulong Logs { get; set; }
        public override string ToString() => $"{VmId}:{Id}";
    }

    /// <summary>One slot of a VM's failover state (failover.h siterec_failover_status).</summary>
    public sealed class SiteRecFailoverStatus
    {
        public string Url { get; set; }
        public string VmId { get; set; }
        /// <summary>None, Test, Planned, Unplanned or Failback.</summary>
        public string Type { get; set; }
        /// <summary>none, starting, materialising, starting-vm, failed-over, ..., committed (as the library names it).</summary>
        public string Phase { get; set; }
        public string VmName { get; set; }
        public ulong PointId { get; set; }
        public DateTimeOffset? PointTime { get; set; }
        public ulong FenceId { get; set; }
        public uint Disks { get; set; }
        public ulong BytesWritten { get; set; }
        public ulong BytesDiffering { get; set; }
        public ulong BytesDelta { get; set; }
        public DateTimeOffset? Started { get; set; }
        public DateTimeOffset? Shutdown { get; set; }
        public DateTimeOffset? VmStarted { get; set; }
        /// <summary>Planned failover and failback: from the shutdown to the VM started.</summary>
        public TimeSpan? Downtime { get; set; }
        public ulong Generation { get; set; }
    }

    /// <summary>Get-SiteRecStatus: replication state, recovery points and the three failover slots.</summary>
    public sealed class SiteRecStatus
    {
        public string Url { get; set; }
        public string VmId { get; set; }
        /// <summary>initial, protected, resync, critical, failed-over (the state document's name).</summary>
        public string ReplicationState { get; set; }
        public ulong ReplicationGeneration { get; set; }
        public string Reason { get; set; }
        public ulong Points { get; set; }
        public SiteRecRecoveryPoint LatestPoint { get; set; }
        public SiteRecFailoverStatus TestFailover { get; set; }
        public SiteRecFailoverStatus Failover { get; set; }
        public SiteRecFailoverStatus Failback { get; set; }
    }

    /// <summary>One event of a recovery plan run.</summary>
    public sealed class SiteRecPlanEvent
    {
        public string Kind { get; set; }
        public string Operation { get; set; }
        public uint Group { get; set; }
        public string GroupName { get; set; }
        public string VmId { get; set; }
        public string Action { get; set; }
        public int Error { get; set; }
        public string Output { get; set; }
        public string Message { get; set; }
        public ulong ElapsedMs { get; set; }
    }

    /// <summary>Where a recovery plan run stopped (failover.h siterec_plan_status) and what it reported.</summary>
    public sealed class SiteRecPlanResult
    {
        public string Plan { get; set; }
        public string State { get; set; }
        public string Operation { get; set; }
        public uint Group { get; set; }
        public uint Groups { get; set; }
        public uint Machines { get; set; }
        public uint MachinesDone { get; set; }
        public uint MachinesFailed { get; set; }
        public DateTimeOffset? Started { get; set; }
        public DateTimeOffset? CommonTime { get; set; }
        public string PausedAt { get; set; }
        public string Error { get; set; }
        public SiteRecPlanEvent[] Events { get; set; }
    }
}
