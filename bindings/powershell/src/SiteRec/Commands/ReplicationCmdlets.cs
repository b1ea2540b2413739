using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using SiteRec.Native;

namespace SiteRec.Commands
{
    /// <summary>
    /// Protect a VM (siterec_replication_open with SITEREC_REPLICATION_PROTECT) and run its
    /// initial replication; records the VM's description in STATE_DIR/cli-vm.json.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Enable, "SiteRecReplication")]
    [OutputType(typeof(SiteRecReplication))]
    public sealed class EnableSiteRecReplicationCommand : SiteRecCmdlet
    {
        /// <summary>The target: file:///DIR (created when missing) or an Azure container URL.</summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Url { get; set; }

        [Parameter(Mandatory = true, Position = 1)]
        public string VmId { get; set; }

        /// <summary>Local state directory (journal and state copy); created.</summary>
        [Parameter(Mandatory = true, Position = 2)]
        public string StateDirectory { get; set; }

        /// <summary>
        /// The disks, in the VM's order: strings ID:PATH[:os|:data|:exclude] or hashtables
        /// @{Id=..; Path=..; Role='Os'|'Data'; Exclude=$true}. Without any os role, the first disk is the OS disk.
        /// </summary>
        [Parameter(Mandatory = true)]
        public object[] Disk { get; set; }

        [Parameter, ValidateSet("1", "2")]
        public string Generation { get; set; } = "2";

        /// <summary>Copy frequency: 30, 300 or 900 seconds, or 0 (continuous).</summary>
        [Parameter, ValidateSet("0", "30", "300", "900")]
        public string IntervalSeconds { get; set; } = "300";

        [Parameter]
        public ulong RetentionSeconds { get; set; }

        /// <summary>Record the protection only; Start-SiteRecReplicationCycle runs the initial replication.</summary>
        [Parameter]
        public SwitchParameter NoInitialReplication { get; set; }

        protected override void ProcessRecord()
        {
            Guarded(VmId, () =>
            {
                string state = FullPath(StateDirectory);
                var p = new Protection
                {
                    Url = Url, Ca = FullPath(CaFile), VmId = VmId, Generation = uint.Parse(Generation),
                    IntervalSeconds = uint.Parse(IntervalSeconds), RetentionSeconds = RetentionSeconds,
                };
                foreach (object o in Disk)
                    p.Disks.Add(ParseDisk(o is PSObject pso ? pso.BaseObject : o));
                if (!p.Disks.Any(d => d.Role == "os"))
                    p.Disks[0].Role = "os";
                if (Url.StartsWith("file://", StringComparison.Ordinal))
                    Directory.CreateDirectory(Url.Substring("file://".Length));
                using var st = Session.OpenStore(Url, p.Ca, create: true);
                using var scope = new CallbackScope();
                using var r = Session.OpenReplication(p, state, st, protect: true, scope, null);
                p.Save(state);
                if (!NoInitialReplication)
                {
                    WriteVerbose($"{VmId}: initial replication of {p.Disks.Count} disk(s)");
                    scope.Check(NativeMethods.siterec_replication_initial(r), "siterec_replication_initial");
                }
                WriteObject(Session.ReplicationStatus(r, p, state));
            });
        }

        ProtectedDisk ParseDisk(object o)
        {
            if (o is IDictionary h)
            {
                string Get(string k) { foreach (DictionaryEntry e in h) if (string.Equals(e.Key?.ToString(), k, StringComparison.OrdinalIgnoreCase)) return e.Value?.ToString(); return null; }
                string id = Get("Id"), path = Get("Path"), role = (Get("Role") ?? "data").ToLowerInvariant();
                if (id == null || path == null || (role != "os" && role != "data"))
                    throw new ArgumentException("-Disk: a hashtable needs Id and Path, and Role 'Os' or 'Data'");
                return new ProtectedDisk { Id = id, Path = FullPath(path), Role = role, Exclude = LanguagePrimitives.IsTrue(Get("Exclude")) };
            }
            string s = o?.ToString() ?? "";
            int c = s.IndexOf(':');
            if (c <= 0 || c == s.Length - 1)
                throw new ArgumentException($"-Disk '{s}': not ID:PATH[:os|:data|:exclude]");
            string rest = s.Substring(c + 1), flag = null;
            int c2 = rest.LastIndexOf(':');
            if (c2 > 0 && new[] { "os", "data", "exclude" }.Contains(rest.Substring(c2 + 1)))
            {
                flag = rest.Substring(c2 + 1);
                rest = rest.Substring(0, c2);
            }
            return new ProtectedDisk { Id = s.Substring(0, c), Path = FullPath(rest), Role = flag == "os" ? "os" : "data", Exclude = flag == "exclude" };
        }
    }

    /// <summary>
    /// Run replication cycles of a protected VM (siterec_replication_cycle): the initial
    /// replication first when it is pending, then -Count cycles, each adding a recovery
    /// point; -Apply then applies the shipped logs to the replicas at once.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "SiteRecReplicationCycle")]
    [OutputType(typeof(SiteRecCycleResult))]
    public sealed class StartSiteRecReplicationCycleCommand : SiteRecCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        public string StateDirectory { get; set; }

        [Parameter, ValidateRange(1, 1000000)]
        public int Count { get; set; } = 1;

        [Parameter]
        public SwitchParameter Apply { get; set; }

        protected override void ProcessRecord()
        {
            Guarded(StateDirectory, () =>
            {
                string state = FullPath(StateDirectory);
                var p = Protection.Load(state);
                using var st = Session.OpenStore(p.Url, p.Ca ?? FullPath(CaFile));
                using var scope = new CallbackScope();
                using var r = Session.OpenReplication(p, state, st, protect: false, scope, null);
                scope.Check(NativeMethods.siterec_replication_initial(r), "siterec_replication_initial");
                for (int i = 0; i < Count; i++)
                {
                    var c = new CycleResult { version = 1 };
                    scope.Check(NativeMethods.siterec_replication_cycle(r, ref c), "siterec_replication_cycle");
                    var result = Session.Cycle(c, p, state);
                    if (Apply && i == Count - 1)
                    {
                        scope.Check(NativeMethods.siterec_replication_apply(r, 0, 1, out ulong waiting), "siterec_replication_apply");
                        result.WaitingBytes = waiting;
                    }
                    WriteObject(result);
                }
            });
        }
    }

    /// <summary>The recovery points of a VM (rp.h), oldest first; -Latest / -LatestApp / -Id choose one.</summary>
    [Cmdlet(VerbsCommon.Get, "SiteRecRecoveryPoint", DefaultParameterSetName = "All")]
    [OutputType(typeof(SiteRecRecoveryPoint))]
    public sealed class GetSiteRecRecoveryPointCommand : SiteRecCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        public string Url { get; set; }

        [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
        public string VmId { get; set; }

        [Parameter(ParameterSetName = "Id")]
        public ulong Id { get; set; }

        [Parameter(ParameterSetName = "Latest")]
        public SwitchParameter Latest { get; set; }

        [Parameter(ParameterSetName = "LatestApp")]
        public SwitchParameter LatestApp { get; set; }

        protected override void ProcessRecord()
        {
            Guarded(VmId, () =>
            {
                using var st = Session.OpenStore(Url, FullPath(CaFile));
                SiteRecException.Check(NativeMethods.siterec_rp_open(out RpCatalogHandle cat, st, VmId), "siterec_rp_open");
                using (cat)
                {
                    if (ParameterSetName == "All")
                    {
                        SiteRecException.Check(NativeMethods.siterec_rp_count(cat, out ulong n), "siterec_rp_count");
                        for (ulong i = 0; i < n; i++)
                        {
                            var pt = new RpPoint { version = 2 };
                            SiteRecException.Check(NativeMethods.siterec_rp_get(cat, i, ref pt), "siterec_rp_get");
                            WriteObject(Session.Point(pt, Url, VmId));
                        }
                        return;
                    }
                    ulong id = Id;
                    if (ParameterSetName != "Id")
                        SiteRecException.Check(NativeMethods.siterec_rp_select(cat, Latest ? 1u : 2u, 0, out id), "siterec_rp_select");
                    var p = new RpPoint { version = 2 };
                    SiteRecException.Check(NativeMethods.siterec_rp_find(cat, id, ref p), "siterec_rp_find");
                    WriteObject(Session.Point(p, Url, VmId));
                }
            });
        }
    }

    /// <summary>
    /// Where a VM stands: its replication state document, its recovery points and its
    /// test failover, failover and failback slots. -StateDirectory reads -Url and -VmId
    /// from a protection made by Enable-SiteRecReplication.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "SiteRecStatus", DefaultParameterSetName = "Vm")]
    [OutputType(typeof(SiteRecStatus))]
    public sealed class GetSiteRecStatusCommand : SiteRecCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Vm", ValueFromPipelineByPropertyName = true)]
        public string Url { get; set; }

        [Parameter(Mandatory = true, Position = 1, ParameterSetName = "Vm", ValueFromPipelineByPropertyName = true)]
        public string VmId { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = "State")]
        public string StateDirectory { get; set; }

        protected override void ProcessRecord()
        {
            Guarded(VmId ?? StateDirectory, () =>
            {
                string url = Url, vm = VmId, ca = FullPath(CaFile);
                if (ParameterSetName == "State")
                {
                    var p = Protection.Load(FullPath(StateDirectory));
                    url = p.Url; vm = p.VmId; ca = p.Ca ?? ca;
                }
                using var st = Session.OpenStore(url, ca);
                var s = new SiteRecStatus { Url = url, VmId = vm };
                SiteRecException.Check(NativeMethods.siterec_store_doc_get(st, vm + "/replication", out IntPtr data, out nuint len, IntPtr.Zero, 0),
                                       "siterec_store_doc_get");
                try
                {
                    var doc = System.Text.Json.Nodes.JsonNode.Parse(System.Runtime.InteropServices.Marshal.PtrToStringUTF8(data, (int)len));
                    s.ReplicationState = (string)doc?["state"];
                    s.Reason = (string)doc?["reason"];
                    ulong.TryParse((string)doc?["generation"], out ulong g);
                    s.ReplicationGeneration = g;
                }
                finally { NativeMethods.siterec_free(data); }
                var points = Session.Points(st, url, vm);
                s.Points = (ulong)points.Count;
                s.LatestPoint = points.LastOrDefault();
                using var scope = new CallbackScope();
                var o = new FailoverOptions();
                SiteRecException.Check(NativeMethods.siterec_failover_options_init(ref o, 1), "siterec_failover_options_init");
                using var arena = new NativeArena();
                var host = new VmHost { Directory = "." };   // never called: status only
                o.store = st.DangerousGetHandle();
                o.vm_id = arena.Str(vm);
                o.start = scope.Vm(host.Start);
                o.remove = scope.Vm(host.Remove);
                SiteRecException.Check(NativeMethods.siterec_failover_open(out FailoverHandle f, in o), "siterec_failover_open");
                using (f)
                {
                    s.TestFailover = Session.FailoverStatus(f, 1, url, vm);
                    s.Failover = Session.FailoverStatus(f, 3, url, vm);
                    s.Failback = Session.FailoverStatus(f, 4, url, vm);
                }
                WriteObject(s);
            });
        }
    }
}
