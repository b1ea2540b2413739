// The library keeps no description of the VM's disks (the caller gives it at each
// open), so the module records it where the siterec CLI does: STATE_DIR/cli-vm.json
// (format 1, the same file: a VM protected by `siterec protect` can be driven by
// these cmdlets and the other way round). Credentials never go there: the store's
// account key or SAS come from $env:SITEREC_ACCOUNT_KEY / $env:SITEREC_SAS, as in the CLI.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using SiteRec.Native;

namespace SiteRec.Commands
{
    public sealed class ProtectedDisk
    {
        public string Id { get; set; }
        public string Path { get; set; }
        /// <summary>"os" or "data".</summary>
        public string Role { get; set; }
        public bool Exclude { get; set; }
    }

    public sealed class Protection
    {
        public const string FileName = "cli-vm.json";
        public string Url { get; set; }
        public string Ca { get; set; }
        public string VmId { get; set; }
        public uint Generation { get; set; } = 2;
        public uint IntervalSeconds { get; set; } = 300;
        public ulong RetentionSeconds { get; set; }
        public uint CheckpointSeconds { get; set; }
        public uint ApplyDelaySeconds { get; set; }
        public List<ProtectedDisk> Disks { get; set; } = new List<ProtectedDisk>();

        public static string PathIn(string stateDir) => System.IO.Path.Combine(stateDir, FileName);

        public static Protection Load(string stateDir)
        {
            string path = PathIn(stateDir);
            JsonNode o;
            try { o = JsonNode.Parse(File.ReadAllText(path)); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new FileNotFoundException($"{path}: {e.Message} (not a state directory made by Enable-SiteRecReplication or siterec protect)", path, e);
            }
            if (o == null || (int?)o["format"] != 1 || o["url"] == null || o["vm"] == null || !(o["disks"] is JsonArray disks))
                throw new InvalidDataException($"{path}: not a VM description written by Enable-SiteRecReplication or siterec protect");
            var p = new Protection
            {
                Url = (string)o["url"], Ca = (string)o["ca"], VmId = (string)o["vm"],
                Generation = (uint)((double?)o["generation"] ?? 2), IntervalSeconds = (uint)((double?)o["interval_s"] ?? 300),
                RetentionSeconds = (ulong)((double?)o["retention_s"] ?? 0), CheckpointSeconds = (uint)((double?)o["checkpoint_s"] ?? 0),
                ApplyDelaySeconds = (uint)((double?)o["apply_delay_s"] ?? 0),
            };
            foreach (JsonNode d in disks)
                p.Disks.Add(new ProtectedDisk { Id = (string)d["id"], Path = (string)d["path"], Role = (string)d["role"], Exclude = (bool?)d["exclude"] ?? false });
            return p;
        }

        public void Save(string stateDir)
        {
            var o = new JsonObject
            {
                ["comment"] = "siterec CLI convenience: the VM description given to protect",
                ["format"] = 1, ["url"] = Url,
            };
            if (Ca != null)
                o["ca"] = Ca;
            o["vm"] = VmId;
            o["generation"] = Generation;
            o["interval_s"] = IntervalSeconds;
            o["retention_s"] = RetentionSeconds;
            o["checkpoint_s"] = CheckpointSeconds;
            o["apply_delay_s"] = ApplyDelaySeconds;
            var a = new JsonArray();
            foreach (var d in Disks)
                a.Add(new JsonObject { ["id"] = d.Id, ["path"] = d.Path, ["role"] = d.Role, ["exclude"] = d.Exclude });
            o["disks"] = a;
            string path = PathIn(stateDir), tmp = path + ".tmp";
            File.WriteAllText(tmp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            File.Move(tmp, path, true);
        }
    }

    /// <summary>Opening stores, protections, catalogues; converting the library's structs.</summary>
    internal static class Session
    {
        public static StoreHandle OpenStore(string url, string caFile, bool create = false)
        {
            using var arena = new NativeArena();
            var o = new StoreOptions();
            SiteRecException.Check(NativeMethods.siterec_store_options_init(ref o, 1), "siterec_store_options_init");
            o.flags = create ? 0x4u : 0u;
            o.account_key = arena.Str(Environment.GetEnvironmentVariable("SITEREC_ACCOUNT_KEY"));
            o.sas_token = arena.Str(Environment.GetEnvironmentVariable("SITEREC_SAS"));
            o.ca_file = arena.Str(caFile);
            SiteRecException.Check(NativeMethods.siterec_store_open(out StoreHandle st, url, in o), "siterec_store_open");
            return st;
        }

        /// <summary>Open (or with protect, create) the replication of a VM; the store must outlive it.</summary>
        public static ReplicationHandle OpenReplication(Protection p, string stateDir, StoreHandle store, bool protect,
                                                        CallbackScope scope, Action<ulong, ulong> progress)
        {
            using var arena = new NativeArena();
            var disks = p.Disks.Select(d => new VmDisk
            {
                id = arena.Str(d.Id), path = arena.Str(d.Path),
                role = d.Role == "os" ? 1u : 2u, flags = d.Exclude ? 1u : 0u,
            }).ToList();
            var vm = new Vm { version = 1, generation = p.Generation, id = arena.Str(p.VmId), name = IntPtr.Zero,
                              n_disks = (uint)disks.Count, disks = arena.Array(disks) };
            var o = new ReplicationOptions();
            SiteRecException.Check(NativeMethods.siterec_replication_options_init(ref o, 2), "siterec_replication_options_init");
            o.flags = protect ? 1u : 0u;
            o.state_dir = arena.Str(stateDir);
            bool added = false;
            store.DangerousAddRef(ref added);   // for the call; the caller frees the replication before the store
            try
            {
                o.store = store.DangerousGetHandle();
                o.interval_s = p.IntervalSeconds;
                o.retention_s = p.RetentionSeconds;
                o.checkpoint_s = p.CheckpointSeconds;
                o.apply_delay_s = p.ApplyDelaySeconds;
                o.progress = scope.Progress(progress);
                int rc = NativeMethods.siterec_replication_open(out ReplicationHandle r, in vm, in o);
                scope.Check(rc, "siterec_replication_open");
                return r;
            }
            finally
            {
                if (added)
                    store.DangerousRelease();
            }
        }

        public static SiteRecReplication ReplicationStatus(ReplicationHandle r, Protection p, string stateDir)
        {
            var s = new ReplicationStatus { version = 2 };
            SiteRecException.Check(NativeMethods.siterec_replication_status_get(r, ref s), "siterec_replication_status_get");
            string reason;
            unsafe { reason = NativeArena.Text(s.reason, 256); }
            return new SiteRecReplication
            {
                VmId = p.VmId, Url = p.Url, StateDirectory = stateDir,
                State = NativeArena.Text(NativeMethods.siterec_replication_state_name(s.state)) ?? s.state.ToString(),
                Generation = s.generation, LastPointId = s.last_point_id, LastPointTime = Time.FromMs(s.last_point_time_ms),
                Points = s.points, BytesShipped = s.bytes_shipped, PendingBytes = s.pending_bytes,
                AppliedPointId = s.applied_point_id, WaitingBytes = s.waiting_bytes, Reason = reason,
            };
        }

        public static string KindName(uint kind) => kind == 1 ? "Crash" : kind == 2 ? "App" : null;

        public static SiteRecCycleResult Cycle(CycleResult c, Protection p, string stateDir) => new SiteRecCycleResult
        {
            VmId = p.VmId, Url = p.Url, StateDirectory = stateDir, Kind = KindName(c.kind), PointId = c.point_id,
            CutTime = Time.FromMs(c.cut_time_ms), BytesShipped = c.bytes_shipped, PointsPruned = c.points_pruned,
        };

        public static SiteRecRecoveryPoint Point(in RpPoint pt, string url, string vmId)
        {
            var disks = new string[pt.n_disks];
            int size = System.Runtime.InteropServices.Marshal.SizeOf<RpDisk>();
            for (int i = 0; i < disks.Length; i++)
                disks[i] = NativeArena.Text(System.Runtime.InteropServices.Marshal.PtrToStructure<RpDisk>(pt.disks + i * size).disk);
            return new SiteRecRecoveryPoint
            {
                Url = url, VmId = vmId, Id = pt.id, Kind = KindName(pt.kind), CutTimeMs = pt.cut_time_ms,
                CutTime = DateTimeOffset.FromUnixTimeMilliseconds(pt.cut_time_ms), Disks = disks, Logs = pt.n_logs,
            };
        }

        public static List<SiteRecRecoveryPoint> Points(StoreHandle st, string url, string vmId)
        {
            SiteRecException.Check(NativeMethods.siterec_rp_open(out RpCatalogHandle cat, st, vmId), "siterec_rp_open");
            using (cat)
            {
                SiteRecException.Check(NativeMethods.siterec_rp_count(cat, out ulong n), "siterec_rp_count");
                var list = new List<SiteRecRecoveryPoint>();
                for (ulong i = 0; i < n; i++)
                {
                    var pt = new RpPoint { version = 2 };
                    SiteRecException.Check(NativeMethods.siterec_rp_get(cat, i, ref pt), "siterec_rp_get");
                    list.Add(Point(pt, url, vmId));
                }
                return list;
            }
        }

        static readonly string[] TypeNames = { "None", "Test", "Planned", "Unplanned", "Failback" };

        public static SiteRecFailoverStatus FailoverStatus(FailoverHandle f, uint type, string url, string vmId)
        {
            var s = new FailoverStatus { version = 1 };
            SiteRecException.Check(NativeMethods.siterec_failover_status_get(f, type, ref s), "siterec_failover_status_get");
            string name;
            unsafe { name = NativeArena.Text(s.vm_name, 128); }
            return new SiteRecFailoverStatus
            {
                Url = url, VmId = vmId, Type = s.type < TypeNames.Length ? TypeNames[s.type] : s.type.ToString(),
                Phase = NativeArena.Text(NativeMethods.siterec_failover_phase_name(s.phase)) ?? s.phase.ToString(),
                VmName = name, PointId = s.point_id, PointTime = Time.FromMs(s.point_time_ms), FenceId = s.fence_id,
                Disks = s.n_disks, BytesWritten = s.bytes_written, BytesDiffering = s.bytes_differing, BytesDelta = s.bytes_delta,
                Started = Time.FromMs(s.started_ms), Shutdown = Time.FromMs(s.shutdown_ms), VmStarted = Time.FromMs(s.vm_started_ms),
                Downtime = s.shutdown_ms != 0 && s.vm_started_ms != 0 ? TimeSpan.FromMilliseconds(s.vm_started_ms - s.shutdown_ms) : (TimeSpan?)null,
                Generation = s.generation,
            };
        }
    }
}
