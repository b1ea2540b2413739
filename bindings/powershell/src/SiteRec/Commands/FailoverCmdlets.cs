using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using SiteRec.Native;

namespace SiteRec.Commands
{
    /// <summary>A test failover (a DR drill): isolated, replication undisturbed (siterec_failover_test).</summary>
    [Cmdlet(VerbsLifecycle.Start, "SiteRecTestFailover")]
    [OutputType(typeof(SiteRecFailoverStatus))]
    public sealed class StartSiteRecTestFailoverCommand : FailoverRequestCmdlet
    {
        /// <summary>The isolated network (NETWORK[/SUBNET]) every NIC is connected to.</summary>
        [Parameter]
        public string TestNetwork { get; set; }

        protected override void ProcessRecord()
        {
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using var f = OpenFailover(st, host, scope);
                using var arena = new NativeArena();
                var q = Request(arena, 1);
                if (TestNetwork != null)
                {
                    int sl = TestNetwork.IndexOf('/');
                    q.test_network = arena.Str(sl < 0 ? TestNetwork : TestNetwork.Substring(0, sl));
                    q.test_subnet = arena.Str(sl < 0 ? null : TestNetwork.Substring(sl + 1));
                }
                int rc = NativeMethods.siterec_failover_test(f, in q);
                DrainLog(host);
                scope.Check(rc, "siterec_failover_test");
                WriteObject(Session.FailoverStatus(f, 1, Url, VmId));
            });
            DrainLog(host);
        }
    }

    /// <summary>Clean up a test failover: its VM (remove callback) and its disks (siterec_failover_test_cleanup).</summary>
    [Cmdlet(VerbsLifecycle.Stop, "SiteRecTestFailover", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(SiteRecFailoverStatus))]
    public sealed class StopSiteRecTestFailoverCommand : FailoverCmdlet
    {
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            if (!ShouldProcess(VmId, "Clean up the test failover"))
                return;
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using var f = OpenFailover(st, host, scope);
                int rc = NativeMethods.siterec_failover_test_cleanup(f);
                DrainLog(host);
                scope.Check(rc, "siterec_failover_test_cleanup");
                if (PassThru)
                    WriteObject(Session.FailoverStatus(f, 1, Url, VmId));
            });
            DrainLog(host);
        }
    }

    /// <summary>
    /// Planned or unplanned failover (siterec_failover_run), until the target VM is
    /// started; not committed: Complete-SiteRecFailover commits, Stop-SiteRecFailover cancels.
    /// A planned failover runs on the source host: -StateDirectory (its protection) and
    /// -ShutdownCommand (stops the source VM; a last cycle then ships every write).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "SiteRecFailover", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(SiteRecFailoverStatus))]
    public sealed class StartSiteRecFailoverCommand : FailoverRequestCmdlet
    {
        [Parameter(Mandatory = true), ValidateSet("Planned", "Unplanned")]
        public string Type { get; set; }

        /// <summary>Planned failover: the source's state directory (its protection).</summary>
        [Parameter]
        public string StateDirectory { get; set; }

        protected override void ProcessRecord()
        {
            bool planned = Type == "Planned";
            string what = planned ? "Planned failover" : $"Unplanned failover to point {DescribePoint()}";
            if (!ShouldProcess(VmId, what))
                return;
            var host = NewHost();
            Guarded(VmId, () =>
            {
                if (planned && StateDirectory == null)
                    throw new ArgumentException("a planned failover needs -StateDirectory (the protection on this source host)");
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                StoreHandle srcStore = null;
                ReplicationHandle r = null;
                try
                {
                    if (planned)
                    {
                        string state = FullPath(StateDirectory);
                        var p = Protection.Load(state);
                        if (p.VmId != VmId)
                            throw new ArgumentException($"{state} protects {p.VmId}, not {VmId}");
                        srcStore = Session.OpenStore(p.Url, p.Ca ?? FullPath(CaFile));
                        r = Session.OpenReplication(p, state, srcStore, protect: false, scope, null);
                    }
                    using var f = OpenFailover(st, host, scope, r);
                    using var arena = new NativeArena();
                    var q = Request(arena, planned ? 2u : 3u);
                    int rc = NativeMethods.siterec_failover_run(f, in q);
                    DrainLog(host);
                    scope.Check(rc, "siterec_failover_run");
                    WriteObject(Session.FailoverStatus(f, planned ? 2u : 3u, Url, VmId));
                }
                finally
                {
                    r?.Dispose();
                    srcStore?.Dispose();
                }
            });
            DrainLog(host);
        }

        string DescribePoint()
        {
            object p = Point is PSObject o ? o.BaseObject : Point;
            return p == null ? "Latest" : p.ToString();
        }
    }

    /// <summary>
    /// Commit: the failback when one ran and is not committed (the failed-over VM and its
    /// disks deleted), else the failover (every other recovery point deleted).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Complete, "SiteRecFailover", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(SiteRecFailoverStatus))]
    public sealed class CompleteSiteRecFailoverCommand : FailoverCmdlet
    {
        protected override void ProcessRecord()
        {
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using var f = OpenFailover(st, host, scope);
                var fb = Session.FailoverStatus(f, 4, Url, VmId);
                bool onFailback = fb.Type == "Failback" && fb.Phase == "failed-over";
                if (!ShouldProcess(VmId, onFailback ? "Commit the failback (delete the failed-over VM and its disks)"
                                                    : "Commit the failover (delete every other recovery point)"))
                    return;
                int rc = onFailback ? NativeMethods.siterec_failback_commit(f) : NativeMethods.siterec_failover_commit(f);
                DrainLog(host);
                scope.Check(rc, onFailback ? "siterec_failback_commit" : "siterec_failover_commit");
                WriteObject(Session.FailoverStatus(f, onFailback ? 4u : 3u, Url, VmId));
            });
            DrainLog(host);
        }
    }

    /// <summary>
    /// Cancel a failover (or a failback) not committed: its VM and disks removed, replication
    /// back where it stood (siterec_failover_cancel / siterec_failback_cancel).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Stop, "SiteRecFailover", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    public sealed class StopSiteRecFailoverCommand : FailoverCmdlet
    {
        protected override void ProcessRecord()
        {
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using var f = OpenFailover(st, host, scope);
                var fb = Session.FailoverStatus(f, 4, Url, VmId);
                bool onFailback = fb.Type == "Failback" && fb.Phase != "committed" && fb.Phase != "reprotecting";
                if (!ShouldProcess(VmId, onFailback ? "Cancel the failback" : "Cancel the failover"))
                    return;
                int rc = onFailback ? NativeMethods.siterec_failback_cancel(f) : NativeMethods.siterec_failover_cancel(f);
                DrainLog(host);
                scope.Check(rc, onFailback ? "siterec_failback_cancel" : "siterec_failover_cancel");
            });
            DrainLog(host);
        }
    }

    /// <summary>
    /// Fail back a committed failover into the on-premises disks (-Disk @{ID = PATH}), in
    /// place or, with -Alternate, into new files; the failed-over VM is shut down
    /// (-ShutdownCommand) and the on-premises VM started (-StartCommand). Then
    /// Complete-SiteRecFailover commits it and Enable-SiteRecReverseReplication protects again.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "SiteRecFailback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(SiteRecFailoverStatus))]
    public sealed class StartSiteRecFailbackCommand : FailoverCmdlet
    {
        [Parameter, ValidateSet("MinimizeDowntime", "Full")]
        public string Mode { get; set; } = "MinimizeDowntime";

        /// <summary>Every disk of the failover: @{ ID = PATH; ... } (the on-premises images).</summary>
        [Parameter(Mandatory = true)]
        public Hashtable Disk { get; set; }

        /// <summary>The paths are new files (a fixed VHD when the name ends in .vhd, else raw).</summary>
        [Parameter]
        public SwitchParameter Alternate { get; set; }

        /// <summary>The failed-over VM's journal (its writes tracked), else the downtime phase scans.</summary>
        [Parameter]
        public string JournalDirectory { get; set; }

        [Parameter]
        public uint BlockSize { get; set; }

        /// <summary>The on-premises VM's name (default: the protected VM's name).</summary>
        [Parameter]
        public string OnPremisesName { get; set; }

        protected override void ProcessRecord()
        {
            if (!ShouldProcess(VmId, $"Fail back ({Mode}): shut the failed-over VM down and start the on-premises VM"))
                return;
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using var f = OpenFailover(st, host, scope);
                using var arena = new NativeArena();
                var b = new FailbackRequest();
                SiteRecException.Check(NativeMethods.siterec_failback_request_init(ref b, 1), "siterec_failback_request_init");
                b.mode = Mode == "Full" ? 2u : 1u;
                b.flags = Alternate ? 1u : 0u;
                b.block_size = BlockSize;
                var disks = new List<FailbackDisk>();
                foreach (DictionaryEntry e in Disk)
                    disks.Add(new FailbackDisk { id = arena.Str(e.Key.ToString()), path = arena.Str(FullPath(e.Value?.ToString())) });
                b.n_disks = (uint)disks.Count;
                b.disks = arena.Array(disks);
                b.journal_dir = arena.Str(FullPath(JournalDirectory));
                b.vm_name = arena.Str(OnPremisesName);
                int rc = NativeMethods.siterec_failback_run(f, in b);
                DrainLog(host);
                scope.Check(rc, "siterec_failback_run");
                WriteObject(Session.FailoverStatus(f, 4, Url, VmId));
            });
            DrainLog(host);
        }
    }

    /// <summary>
    /// After a committed failback: give the VM back to replication (siterec_failover_reprotect)
    /// and, with -StateDirectory, resync it there at once (siterec_replication_resync: only
    /// the blocks that differ are written). -Disk @{ID = PATH} records disks that failed
    /// back to an alternate location in the protection first.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Enable, "SiteRecReverseReplication", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(SiteRecCycleResult))]
    public sealed class EnableSiteRecReverseReplicationCommand : FailoverCmdlet
    {
        [Parameter]
        public string StateDirectory { get; set; }

        [Parameter]
        public Hashtable Disk { get; set; }

        protected override void ProcessRecord()
        {
            if (!ShouldProcess(VmId, "Reprotect" + (StateDirectory != null ? " and resync" : "")))
                return;
            var host = NewHost();
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                using var scope = new CallbackScope();
                using (var f = OpenFailover(st, host, scope))
                {
                    int rc = NativeMethods.siterec_failover_reprotect(f);
                    DrainLog(host);
                    scope.Check(rc, "siterec_failover_reprotect");
                }
                if (StateDirectory == null)
                {
                    WriteVerbose($"{VmId}: reprotected: run Start-SiteRecReplicationCycle on its state directory to resync it");
                    return;
                }
                string state = FullPath(StateDirectory);
                var p = Protection.Load(state);
                if (Disk != null)
                {
                    foreach (DictionaryEntry e in Disk)
                    {
                        var d = p.Disks.Find(x => x.Id == e.Key.ToString())
                                ?? throw new ArgumentException($"{state} protects no disk {e.Key}");
                        d.Path = FullPath(e.Value?.ToString());
                    }
                    p.Save(state);
                }
                using var src = Session.OpenStore(p.Url, p.Ca ?? FullPath(CaFile));
                using var r = Session.OpenReplication(p, state, src, protect: false, scope, null);
                var c = new CycleResult { version = 1 };
                scope.Check(NativeMethods.siterec_replication_resync(r, ref c), "siterec_replication_resync");
                WriteObject(Session.Cycle(c, p, state));
            });
            DrainLog(host);
        }
    }
}
