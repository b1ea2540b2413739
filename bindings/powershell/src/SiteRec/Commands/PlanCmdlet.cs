using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Runtime.InteropServices;
using SiteRec.Native;

namespace SiteRec.Commands
{
    /// <summary>
    /// Run a recovery plan (doc/formats.md, "Recovery plan"; siterec_plan_run) for one
    /// operation over its machines, group by group, or -Resume the recorded run. The
    /// host callbacks are those of the failover cmdlets (they run on the plan's worker
    /// threads); "callback" actions succeed (-FailAction names ones to fail); a planned
    /// failover needs -StateDirectory @{ VM = STATE_DIR } (the protections on this host).
    /// Events are written to the verbose stream and returned in the result's Events.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "SiteRecRecoveryPlan", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(SiteRecPlanResult))]
    public sealed class StartSiteRecRecoveryPlanCommand : SiteRecCmdlet
    {
        static readonly string[] Ops = { "None", "Test", "Cleanup", "Planned", "Unplanned", "Commit", "Failback", "Cancel" };
        static readonly string[] States = { "Idle", "Running", "Paused", "Done", "Failed" };
        static readonly string[] Kinds = { "None", "Group", "Machine", "Action", "Paused" };

        [Parameter(Mandatory = true, Position = 0)]
        public string Url { get; set; }

        /// <summary>The plan document (JSON file).</summary>
        [Parameter(Mandatory = true, Position = 1)]
        public string Path { get; set; }

        [Parameter(Position = 2), ValidateSet("Test", "Cleanup", "Planned", "Unplanned", "Commit", "Failback", "Cancel")]
        public string Operation { get; set; }

        /// <summary>Local file of the run's state (required).</summary>
        [Parameter(Mandatory = true)]
        public string StatePath { get; set; }

        [Parameter]
        public SwitchParameter Resume { get; set; }

        [Parameter, ValidateRange(0, 64)]
        public uint MaxParallel { get; set; }

        [Parameter] public string VmDirectory { get; set; }
        [Parameter] public string StartCommand { get; set; }
        [Parameter] public string RemoveCommand { get; set; }
        [Parameter] public string ShutdownCommand { get; set; }
        [Parameter] public Hashtable StateDirectory { get; set; }
        [Parameter] public string[] FailAction { get; set; }

        protected override void ProcessRecord()
        {
            if (!Resume && Operation == null)
            {
                Fail(new ArgumentException("give -Operation, or -Resume"), Path);
                return;
            }
            if (!ShouldProcess(Path, Resume ? "Resume the recovery plan run" : $"Run the recovery plan: {Operation}"))
                return;
            var host = new VmHost
            {
                Directory = FullPath(VmDirectory ?? "."), StartCommand = StartCommand, RemoveCommand = RemoveCommand,
                ShutdownCommand = ShutdownCommand,
            };
            var events = new List<SiteRecPlanEvent>();
            var stores = new List<StoreHandle>();
            var sdirs = new Dictionary<string, string>();
            if (StateDirectory != null)
                foreach (DictionaryEntry e in StateDirectory)
                    sdirs[e.Key.ToString()] = FullPath(e.Value?.ToString());
            Guarded(Path, () =>
            {
                byte[] json = File.ReadAllBytes(FullPath(Path));
                using var scope = new CallbackScope();
                using var arena = new NativeArena();
                var so = new StoreOptions();
                SiteRecException.Check(NativeMethods.siterec_store_options_init(ref so, 1), "siterec_store_options_init");
                so.account_key = arena.Str(Environment.GetEnvironmentVariable("SITEREC_ACCOUNT_KEY"));
                so.sas_token = arena.Str(Environment.GetEnvironmentVariable("SITEREC_SAS"));
                so.ca_file = arena.Str(FullPath(CaFile));
                IntPtr soPtr = arena.Array(new[] { so });
                var o = new PlanOptions();
                SiteRecException.Check(NativeMethods.siterec_plan_options_init(ref o, 1), "siterec_plan_options_init");
                o.url = arena.Str(Url);
                o.store_opts = soPtr;
                o.state_path = arena.Str(FullPath(StatePath));
                o.max_parallel = MaxParallel;
                o.start = scope.Vm(host.Start);
                o.remove = scope.Vm(host.Remove);
                o.shutdown = scope.Shutdown(host.Shutdown);
                o.replication = scope.Ptr<PlanReplicationFn>((vmId, outHandle, _) => scope.Guard(() =>
                {
                    string vm = NativeArena.Text(vmId);
                    if (!sdirs.TryGetValue(vm, out string dir))
                        throw new ArgumentException($"a planned failover of {vm} needs its protection: -StateDirectory @{{ '{vm}' = STATE_DIR }}");
                    var p = Protection.Load(dir);
                    var st = Session.OpenStore(p.Url, p.Ca);
                    lock (stores) stores.Add(st);   // must outlive the replication handle: freed after the run
                    var r = Session.OpenReplication(p, dir, st, protect: false, scope, null);
                    Marshal.WriteIntPtr(outHandle, r.Detach());   // the plan frees it
                    return 0;
                }));
                var fail = new HashSet<string>(FailAction ?? Array.Empty<string>());
                o.action = scope.Ptr<PlanActionFn>((action, op, group, _) => scope.Guard(() =>
                    fail.Contains(NativeArena.Text(action)) ? 1 : 0));
                o.@event = scope.Ptr<PlanEventFn>((ev, _) => scope.Guard(() =>
                {
                    var e = Marshal.PtrToStructure<PlanEvent>(ev);
                    var pe = new SiteRecPlanEvent
                    {
                        Kind = e.kind < Kinds.Length ? Kinds[e.kind] : e.kind.ToString(),
                        Operation = e.op < Ops.Length ? Ops[e.op] : e.op.ToString(), Group = e.group,
                        GroupName = NativeArena.Text(e.group_name), VmId = NativeArena.Text(e.vm_id),
                        Action = NativeArena.Text(e.action), Error = e.error, Output = NativeArena.Text(e.output),
                        Message = NativeArena.Text(e.message), ElapsedMs = e.elapsed_ms,
                    };
                    events.Add(pe);   // reported on the calling thread
                    WriteVerbose($"plan: {pe.Kind} {pe.GroupName} {pe.VmId}{pe.Action} error {pe.Error}");
                    return 0;
                }));
                int rc = NativeMethods.siterec_plan_open(out PlanHandle plan, json, (nuint)json.Length, in o);
                scope.Check(rc, "siterec_plan_open");
                using (plan)
                {
                    uint state;
                    if (Resume)
                        rc = NativeMethods.siterec_plan_resume(plan, out state);
                    else
                        rc = NativeMethods.siterec_plan_run(plan, (uint)Array.IndexOf(Ops, Operation), out state);
                    DrainHost(host);
                    var s = new PlanStatus { version = 1 };
                    SiteRecException.Check(NativeMethods.siterec_plan_status_get(plan, ref s), "siterec_plan_status_get");
                    string pausedAt, error;
                    unsafe { pausedAt = NativeArena.Text(s.paused_at, 128); error = NativeArena.Text(s.error, 256); }
                    var result = new SiteRecPlanResult
                    {
                        Plan = FullPath(Path), State = s.state < States.Length ? States[s.state] : s.state.ToString(),
                        Operation = s.op < Ops.Length ? Ops[s.op] : s.op.ToString(), Group = s.group, Groups = s.n_groups,
                        Machines = s.n_machines, MachinesDone = s.machines_done, MachinesFailed = s.machines_failed,
                        Started = Time.FromMs(s.started_ms), CommonTime = Time.FromMs(s.common_time_ms),
                        PausedAt = pausedAt, Error = error, Events = events.ToArray(),
                    };
                    WriteObject(result);
                    scope.Check(rc, Resume ? "siterec_plan_resume" : "siterec_plan_run");
                }
            });
            DrainHost(host);
            foreach (var st in stores)
                st.Dispose();
        }

        void DrainHost(VmHost host)
        {
            while (host.Log.TryDequeue(out string line))
                WriteVerbose(line);
        }
    }
}
