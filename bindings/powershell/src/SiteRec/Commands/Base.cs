// Shared parts of the cmdlets: error records, recovery point arguments, the
// failover handle with the host callbacks.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using SiteRec.Native;

namespace SiteRec.Commands
{
    public abstract class SiteRecCmdlet : PSCmdlet
    {
        /// <summary>PEM bundle of trusted CAs for an https:// target.</summary>
        [Parameter]
        public string CaFile { get; set; }

        protected string FullPath(string path) =>
            path == null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

        static ErrorCategory Category(SiteRecErrorCode c)
        {
            switch (c)
            {
                case SiteRecErrorCode.ENOTFOUND: return ErrorCategory.ObjectNotFound;
                case SiteRecErrorCode.EEXISTS: return ErrorCategory.ResourceExists;
                case SiteRecErrorCode.EINVAL: case SiteRecErrorCode.ERANGE: case SiteRecErrorCode.EALIGN: return ErrorCategory.InvalidArgument;
                case SiteRecErrorCode.ESTATE: return ErrorCategory.InvalidOperation;
                case SiteRecErrorCode.EAUTH: return ErrorCategory.AuthenticationError;
                case SiteRecErrorCode.ELEASE: case SiteRecErrorCode.EBUSY: case SiteRecErrorCode.ECONFLICT: return ErrorCategory.ResourceBusy;
                case SiteRecErrorCode.ETIMEOUT: return ErrorCategory.OperationTimeout;
                case SiteRecErrorCode.ECORRUPT: case SiteRecErrorCode.EVERSION: case SiteRecErrorCode.ETRUNCATED: return ErrorCategory.InvalidData;
                case SiteRecErrorCode.ENETWORK: case SiteRecErrorCode.ESTORAGE: return ErrorCategory.ConnectionError;
                case SiteRecErrorCode.EUNSUPPORTED: return ErrorCategory.NotImplemented;
                case SiteRecErrorCode.EABORTED: return ErrorCategory.OperationStopped;
                default: return ErrorCategory.NotSpecified;
            }
        }

        /// <summary>A non-terminating error for this input (-ErrorAction Stop makes it terminating).</summary>
        protected void Fail(Exception e, object target)
        {
            if (e is PipelineStoppedException || e is ActionPreferenceStopException)
                throw e;
            ErrorRecord rec;
            if (e is SiteRecException s)
                rec = new ErrorRecord(s, "SITEREC_" + s.ErrorCode, Category(s.ErrorCode), target);
            else if (e is VmHostException)
                rec = new ErrorRecord(e, "SiteRecHostCallback", ErrorCategory.OperationStopped, target);
            else if (e is System.IO.IOException || e is UnauthorizedAccessException || e is System.IO.InvalidDataException)
                rec = new ErrorRecord(e, "SiteRecStateFile", ErrorCategory.ReadError, target);
            else if (e is ArgumentException)
                rec = new ErrorRecord(e, "SiteRecArgument", ErrorCategory.InvalidArgument, target);
            else
                rec = new ErrorRecord(e, "SiteRecCallback", ErrorCategory.NotSpecified, target);
            WriteError(rec);
        }

        /// <summary>Run body for one input; errors become error records.</summary>
        protected void Guarded(object target, Action body)
        {
            try { body(); }
            catch (Exception e) when (!(e is PipelineStoppedException) && !(e is ActionPreferenceStopException) && !(e is HaltCommandException))
            { Fail(e, target); }
        }

        /// <summary>
        /// A recovery point choice: a SiteRecRecoveryPoint (piped), a point id (number),
        /// a DateTime/DateTimeOffset (any point in time), or one of the strings Latest,
        /// LatestProcessed, LatestApp, an id, an ISO-8601 time. Null: Latest.
        /// </summary>
        internal static PointChoice ParsePoint(object point)
        {
            if (point is PSObject pso)
                point = pso.BaseObject;
            var c = new PointChoice();
            switch (point)
            {
                case null: c.how = 1; break;
                case SiteRecRecoveryPoint rp: c.how = 4; c.id = rp.Id; break;
                case DateTimeOffset t: c.how = 5; c.time_ms = t.ToUnixTimeMilliseconds(); break;
                case DateTime t: c.how = 5; c.time_ms = new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t).ToUnixTimeMilliseconds(); break;
                case int i when i >= 0: c.how = 4; c.id = (ulong)i; break;
                case long l when l >= 0: c.how = 4; c.id = (ulong)l; break;
                case ulong u: c.how = 4; c.id = u; break;
                case uint u: c.how = 4; c.id = u; break;
                case string s:
                    switch (s.ToLowerInvariant())
                    {
                        case "latest": c.how = 1; break;
                        case "latestprocessed": case "processed": c.how = 2; break;
                        case "latestapp": case "app": c.how = 3; break;
                        default:
                            if (ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong id)) { c.how = 4; c.id = id; }
                            else if (DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset t))
                            { c.how = 5; c.time_ms = t.ToUnixTimeMilliseconds(); }
                            else throw new ArgumentException($"-Point '{s}': not Latest, LatestProcessed, LatestApp, a point id or a time");
                            break;
                    }
                    break;
                default:
                    throw new ArgumentException($"-Point: a {point.GetType().Name} is not a recovery point, an id, a time or Latest/LatestProcessed/LatestApp");
            }
            return c;
        }
    }

    /// <summary>Cmdlets that drive failover.h for one VM in one target: -Url, -VmId and the host side.</summary>
    public abstract class FailoverCmdlet : SiteRecCmdlet
    {
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        public string Url { get; set; }

        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        public string VmId { get; set; }

        /// <summary>Where the target VMs' descriptions NAME.vm.json are written (default: the current location).</summary>
        [Parameter]
        public string VmDirectory { get; set; }

        /// <summary>/bin/sh command run after NAME.vm.json is written (SITEREC_VM_NAME, SITEREC_VM_JSON, SITEREC_ISOLATED set).</summary>
        [Parameter]
        public string StartCommand { get; set; }

        /// <summary>/bin/sh command run before NAME.vm.json is deleted (SITEREC_VM_NAME, SITEREC_VM_JSON set).</summary>
        [Parameter]
        public string RemoveCommand { get; set; }

        /// <summary>/bin/sh command that shuts a VM down (SITEREC_VM_ID set); without it the VM counts as off already.</summary>
        [Parameter]
        public string ShutdownCommand { get; set; }

        internal VmHost NewHost() => new VmHost
        {
            Directory = FullPath(VmDirectory ?? "."), StartCommand = StartCommand, RemoveCommand = RemoveCommand,
            ShutdownCommand = ShutdownCommand,
        };

        internal void DrainLog(VmHost host)
        {
            while (host.Log.TryDequeue(out string line))
                WriteVerbose(line);
        }

        /// <summary>Open the failover handle with the host callbacks of scope (replication: a planned failover's source).</summary>
        internal FailoverHandle OpenFailover(StoreHandle st, VmHost host, CallbackScope scope, ReplicationHandle replication = null)
        {
            var o = new FailoverOptions();
            SiteRecException.Check(NativeMethods.siterec_failover_options_init(ref o, 1), "siterec_failover_options_init");
            using var arena = new NativeArena();
            o.store = st.DangerousGetHandle();
            o.vm_id = arena.Str(VmId);
            o.replication = replication == null ? IntPtr.Zero : replication.DangerousGetHandle();
            o.start = scope.Vm(host.Start);
            o.remove = scope.Vm(host.Remove);
            o.shutdown = scope.Shutdown(host.Shutdown);
            var progress = ProgressReporter("Materialising disks");
            o.progress = scope.Progress(progress);
            int rc = NativeMethods.siterec_failover_open(out FailoverHandle f, in o);
            scope.Check(rc, "siterec_failover_open");
            return f;
        }

        /// <summary>Progress records (bytes done of total), on the calling thread only.</summary>
        internal Action<ulong, ulong> ProgressReporter(string activity)
        {
            int thread = Environment.CurrentManagedThreadId;
            return (done, total) =>
            {
                if (Environment.CurrentManagedThreadId != thread || total == 0)
                    return;
                var pr = new ProgressRecord(1, activity, $"{done} of {total} bytes")
                { PercentComplete = (int)Math.Min(100, done * 100 / total) };
                WriteProgress(pr);
            };
        }
    }

    /// <summary>The target description options of Start-SiteRecTestFailover and Start-SiteRecFailover.</summary>
    public abstract class FailoverRequestCmdlet : FailoverCmdlet
    {
        /// <summary>The recovery point: a SiteRecRecoveryPoint (piped), an id, a time, Latest (default), LatestProcessed, LatestApp.</summary>
        [Parameter(ValueFromPipeline = true)]
        public object Point { get; set; }

        /// <summary>Directory for the failover's disk files (required on a file:// target).</summary>
        [Parameter]
        public string DiskDirectory { get; set; }

        [Parameter, ValidateSet("Vhd", "Raw")]
        public string Format { get; set; } = "Vhd";

        [Parameter, ValidateSet("Azure", "HyperV")]
        public string Target { get; set; } = "Azure";

        /// <summary>Target VM name (default: the VM's name or id; "-test" appended for a test failover).</summary>
        [Parameter]
        public string Name { get; set; }

        [Parameter]
        public string Size { get; set; }

        [Parameter, ValidateSet("Windows", "Linux")]
        public string OsType { get; set; }

        [Parameter]
        public string Location { get; set; }

        /// <summary>NICs of the source VM: NETWORK[/SUBNET][@IP].</summary>
        [Parameter]
        public string[] Nic { get; set; }

        /// <summary>Network mappings: SOURCE=TARGET:SUBNET[,SUBNET...].</summary>
        [Parameter]
        public string[] NetworkMap { get; set; }

        internal FailoverRequest Request(NativeArena arena, uint type)
        {
            var q = new FailoverRequest();
            SiteRecException.Check(NativeMethods.siterec_failover_request_init(ref q, 1), "siterec_failover_request_init");
            q.type = type;
            q.point = ParsePoint(Point);
            q.target = Target == "HyperV" ? 2u : 1u;
            q.output = Format == "Raw" ? 1u : 2u;
            q.disk_dir = arena.Str(FullPath(DiskDirectory));
            q.vm_name = arena.Str(Name);
            q.vm_size = arena.Str(Size);
            q.os_type = arena.Str(OsType);
            q.location = arena.Str(Location);
            var nics = new List<Native.Nic>();
            foreach (string n in Nic ?? Array.Empty<string>())
            {
                string s = n, ip = null, subnet = null;
                int at = s.IndexOf('@');
                if (at >= 0) { ip = s.Substring(at + 1); s = s.Substring(0, at); }
                int sl = s.IndexOf('/');
                if (sl >= 0) { subnet = s.Substring(sl + 1); s = s.Substring(0, sl); }
                nics.Add(new Native.Nic { network = arena.Str(s), subnet = arena.Str(subnet), ip = arena.Str(ip) });
            }
            var maps = new List<NetworkMap>();
            foreach (string m in NetworkMap ?? Array.Empty<string>())
            {
                int eq = m.IndexOf('='), co = eq < 0 ? -1 : m.IndexOf(':', eq);
                if (eq <= 0 || co < 0)
                    throw new ArgumentException($"-NetworkMap '{m}' is not SOURCE=TARGET:SUBNET[,SUBNET...]");
                var subnets = m.Substring(co + 1).Split(',', StringSplitOptions.RemoveEmptyEntries);
                maps.Add(new NetworkMap
                {
                    source_network = arena.Str(m.Substring(0, eq)), target_network = arena.Str(m.Substring(eq + 1, co - eq - 1)),
                    n_subnets = (uint)subnets.Length, subnets = arena.StrArray(subnets),
                });
            }
            q.n_nics = (uint)nics.Count;
            q.nics = arena.Array(nics);
            q.n_networks = (uint)maps.Count;
            q.networks = arena.Array(maps);
            return q;
        }
    }
}
