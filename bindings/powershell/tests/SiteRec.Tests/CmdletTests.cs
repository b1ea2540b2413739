// The module end to end, hosted in-process: a VM with two raw disks protected into
// a file:// target, a write through its journal (P/Invoke), a cycle, a drill, an
// unplanned failover (-WhatIf first), commit, failback, reverse replication.
using System;
using System.Collections;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.InteropServices;
using SiteRec.Commands;
using SiteRec.Native;
using Xunit;
using Xunit.Abstractions;

namespace SiteRec.Tests
{
    public class CmdletTests
    {
        readonly ITestOutputHelper output;
        public CmdletTests(ITestOutputHelper output) { this.output = output; }

        Collection<PSObject> Run(Runspace rs, string script, bool errorsExpected = false)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript(script);
            var result = ps.Invoke();
            foreach (var v in ps.Streams.Verbose)
                output.WriteLine("VERBOSE: " + v.Message);
            if (!errorsExpected)
                Assert.True(ps.Streams.Error.Count == 0, script + ": " + string.Join("\n", ps.Streams.Error.Select(e => e.ToString() + " " + e.Exception)));
            return result;
        }

        ErrorRecord RunError(Runspace rs, string script)
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript(script);
            ps.Invoke();
            Assert.True(ps.Streams.Error.Count > 0, script + ": no error");
            return ps.Streams.Error[0];
        }

        static T One<T>(Collection<PSObject> r)
        {
            Assert.Single(r);
            return Assert.IsType<T>(r[0].BaseObject);
        }

        static byte[] Pattern(int n, byte seed)
        {
            var b = new byte[n];
            for (int i = 0; i < n; i++)
                b[i] = (byte)(seed + i * 7);
            return b;
        }

        static byte[] ReadAt(string path, long offset, int n)
        {
            using var f = File.OpenRead(path);
            f.Position = offset;
            var b = new byte[n];
            f.ReadExactly(b);
            return b;
        }

        /// <summary>The VM's write path: a write of data at offset of disk index, through the journal into the image.</summary>
        static void JournalWrite(string stateDir, (string id, string path)[] disks, uint index, byte[] data, ulong offset)
        {
            var opened = disks.Select(d =>
            {
                var o = new DiskOptions();
                SiteRecException.Check(NativeMethods.siterec_disk_options_init(ref o, 1), "init");
                o.flags = 1;   // SITEREC_DISK_OPEN_WRITE
                SiteRecException.Check(NativeMethods.siterec_disk_open(out DiskHandle h, d.path, in o), "siterec_disk_open");
                return h;
            }).ToArray();
            try
            {
                using var arena = new NativeArena();
                IntPtr writeCb = LibraryResolver.Export("siterec_disk_write_cb");
                var jd = disks.Select((d, i) => new JournalDisk
                {
                    id = arena.Str(d.id), size = (ulong)new FileInfo(d.path).Length, write = writeCb, write_payload = opened[i].DangerousGetHandle(),
                }).ToList();
                var jo = new JournalOptions();
                SiteRecException.Check(NativeMethods.siterec_journal_options_init(ref jo, 1), "init");
                jo.flags = 1;   // SITEREC_JOURNAL_WRITER
                jo.n_disks = (uint)jd.Count;
                jo.disks = arena.Array(jd);
                SiteRecException.Check(NativeMethods.siterec_journal_open(out JournalHandle j, Path.Combine(stateDir, "journal"), in jo), "siterec_journal_open");
                using (j)
                {
                    IntPtr buf = arena.Alloc(data.Length);
                    Marshal.Copy(data, 0, buf, data.Length);
                    SiteRecException.Check(NativeMethods.siterec_journal_write(j, index, buf, (nuint)data.Length, offset), "siterec_journal_write");
                    SiteRecException.Check(NativeMethods.siterec_journal_flush(j), "siterec_journal_flush");
                }
            }
            finally
            {
                foreach (var h in opened)
                    h.Dispose();
            }
        }

        [Fact]
        public void ModuleExportsTheCmdlets()
        {
            using var tmp = new TempDir();
            using var rs = TestEnv.OpenRunspace(tmp.Path);
            var names = Run(rs, "Get-Command -Module SiteRec | ForEach-Object Name").Select(o => o.ToString()).OrderBy(x => x).ToArray();
            Assert.Equal(new[] {
                "Complete-SiteRecFailover", "Enable-SiteRecReplication", "Enable-SiteRecReverseReplication", "Get-SiteRecRecoveryPoint",
                "Get-SiteRecStatus", "Start-SiteRecFailback", "Start-SiteRecFailover", "Start-SiteRecRecoveryPlan",
                "Start-SiteRecReplicationCycle", "Start-SiteRecTestFailover", "Stop-SiteRecFailover", "Stop-SiteRecTestFailover" }, names);
            // approved verbs only
            var verbs = new[] { typeof(VerbsCommon), typeof(VerbsLifecycle), typeof(VerbsData), typeof(VerbsDiagnostic) }
                .SelectMany(t => t.GetFields()).Select(f => (string)f.GetValue(null)).ToHashSet();
            Assert.All(names, n => Assert.Contains(n.Split('-')[0], verbs));
            // ShouldProcess on the failover and commit cmdlets
            foreach (string c in new[] { "Start-SiteRecFailover", "Complete-SiteRecFailover", "Start-SiteRecFailback" })
                Assert.True((bool)Run(rs, $"(Get-Command {c}).Parameters.ContainsKey('WhatIf')")[0].BaseObject, c);
        }

        [Fact]
        public void ErrorsCarryTheLibrarysCode()
        {
            using var tmp = new TempDir();
            using var rs = TestEnv.OpenRunspace(tmp.Path);
            var e = RunError(rs, $"Get-SiteRecRecoveryPoint -Url 'file://{tmp["missing"]}' -VmId vm1");
            var ex = Assert.IsType<SiteRecException>(e.Exception);
            Assert.Equal(SiteRecErrorCode.ENOTFOUND, ex.ErrorCode);
            Assert.Equal(-5, ex.Code);
            Assert.Equal(0, ex.HttpStatus);
            Assert.Equal("", ex.ServiceCode);
            Assert.StartsWith("SITEREC_ENOTFOUND", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
            Assert.Contains("siterec_store_open", ex.Message);
            // -ErrorAction Stop: a terminating error, the same exception inside
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddScript($"try {{ Get-SiteRecStatus -Url 'file://{tmp["missing"]}' -VmId vm1 -ErrorAction Stop; 'not reached' }} catch {{ $_.Exception.Code; $_.Exception.GetType().Name }}");
            var r = ps.Invoke();
            Assert.Equal(new object[] { -5, "SiteRecException" }, r.Select(o => o.BaseObject).ToArray());
        }

        [Fact]
        public void ProtectDrillFailoverCommitFailbackReprotect()
        {
            using var tmp = new TempDir();
            string os = tmp["os.img"], a = tmp["a.img"], state = tmp["state"], url = "file://" + tmp["target"], hv = tmp["hv"];
            File.WriteAllBytes(os, new byte[8 << 20]);
            File.WriteAllBytes(a, new byte[4 << 20]);
            using (var f = File.OpenWrite(os)) { f.Position = 0; f.Write(Pattern(65536, 1)); }
            using (var f = File.OpenWrite(a)) { f.Position = 2 << 20; f.Write(Pattern(65536, 2)); }
            using var rs = TestEnv.OpenRunspace(tmp.Path);
            Run(rs, $"$url = '{url}'; $state = '{state}'; $hv = '{hv}'");

            // protect: initial replication and the first point
            var rep = One<SiteRecReplication>(Run(rs, "Enable-SiteRecReplication -Url $url -VmId vm1 -StateDirectory $state " +
                                                       "-Disk 'os:os.img:os', @{ Id = 'a'; Path = 'a.img' } -IntervalSeconds 30"));
            Assert.Equal("protected", rep.State);
            Assert.True(rep.LastPointId > 0);
            Assert.True(File.Exists(Path.Combine(state, "cli-vm.json")));

            // the VM writes 64 KiB at 1 MiB of disk a, through its journal; a cycle ships it
            byte[] w = Pattern(65536, 9);
            JournalWrite(state, new[] { ("os", os), ("a", a) }, 1, w, 1 << 20);
            Assert.Equal(w, ReadAt(a, 1 << 20, w.Length));
            var again = RunError(rs, "Enable-SiteRecReplication -Url $url -VmId vm1 -StateDirectory $state -Disk 'os:os.img:os','a:a.img'");
            Assert.Equal(SiteRecErrorCode.EEXISTS, Assert.IsType<SiteRecException>(again.Exception).ErrorCode);
            var cyc = One<SiteRecCycleResult>(Run(rs, "[pscustomobject]@{ StateDirectory = $state } | Start-SiteRecReplicationCycle -Apply"));
            Assert.True(cyc.PointId > rep.LastPointId);
            Assert.Equal("Crash", cyc.Kind);
            Assert.True(cyc.BytesShipped >= 65536);
            var points = Run(rs, "Get-SiteRecRecoveryPoint $url vm1").Select(p => (SiteRecRecoveryPoint)p.BaseObject).ToList();
            Assert.True(points.Count >= 2);
            Assert.Equal(cyc.PointId, points.Last().Id);
            Assert.Equal(new[] { "vm1/disks/os", "vm1/disks/a" }.Length, points.Last().Disks.Length);

            // a drill whose start command fails: the command's failure reaches the caller (not EABORTED)
            var err = RunError(rs, "Get-SiteRecRecoveryPoint $url vm1 -Latest | Start-SiteRecTestFailover -DiskDirectory test -Format Raw -VmDirectory $hv -StartCommand 'exit 3'");
            Assert.IsType<VmHostException>(err.Exception);
            Assert.Contains("exit status 3", err.Exception.Message);
            Run(rs, "Stop-SiteRecTestFailover -Url $url -VmId vm1 -VmDirectory $hv");

            // the drill: the latest point piped in, disks isolated, replication undisturbed
            var test = One<SiteRecFailoverStatus>(Run(rs, "Get-SiteRecRecoveryPoint $url vm1 -Latest | " +
                "Start-SiteRecTestFailover -DiskDirectory test -Format Raw -VmDirectory $hv -Nic corp/back@10.0.0.5 -NetworkMap 'corp=vnet-dr:front,back' -TestNetwork drill/sn1"));
            Assert.Equal("Test", test.Type);
            Assert.Equal("failed-over", test.Phase);
            Assert.Equal(cyc.PointId, test.PointId);
            Assert.Equal("vm1-test", test.VmName);
            string vmJson = Path.Combine(hv, "vm1-test.vm.json");
            Assert.True(File.Exists(vmJson));
            var j = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(vmJson));
            Assert.True((bool)j["isolated"]);
            Assert.Equal("drill", (string)j["nics"][0]["network"]);
            string testA = tmp["test/a-test.raw"];
            Assert.Equal(w, ReadAt(testA, 1 << 20, w.Length));
            Assert.Equal(Pattern(65536, 2), ReadAt(testA, 2 << 20, 65536));
            Assert.Equal("Test", One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus $url vm1")).TestFailover.Type);
            Run(rs, "Start-SiteRecReplicationCycle $state | Out-Null");   // replication goes on during the drill
            Assert.Empty(Run(rs, "Stop-SiteRecTestFailover -Url $url -VmId vm1 -VmDirectory $hv"));
            Assert.False(File.Exists(vmJson));
            Assert.False(File.Exists(testA));

            // -WhatIf: nothing happens
            Assert.Empty(Run(rs, "Get-SiteRecRecoveryPoint $url vm1 -Latest | Start-SiteRecFailover -Type Unplanned -DiskDirectory fo -Format Raw -VmDirectory $hv -WhatIf"));
            var st = One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus $url vm1"));
            Assert.Equal("None", st.Failover.Type);
            Assert.Equal("protected", st.ReplicationState);
            Assert.False(Directory.Exists(tmp["fo"]));

            // unplanned failover from the point of the cycle (piped), for real
            var fo = One<SiteRecFailoverStatus>(Run(rs, $"Get-SiteRecRecoveryPoint $url vm1 -Id {cyc.PointId} | " +
                "Start-SiteRecFailover -Type Unplanned -DiskDirectory fo -Format Raw -VmDirectory $hv -Confirm:$false"));
            Assert.Equal("Unplanned", fo.Type);
            Assert.Equal("failed-over", fo.Phase);
            Assert.Equal(cyc.PointId, fo.PointId);
            Assert.True(File.Exists(Path.Combine(hv, "vm1.vm.json")));
            Assert.Equal(w, ReadAt(tmp["fo/a.raw"], 1 << 20, w.Length));
            Assert.Equal("failed-over", One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus $url vm1")).ReplicationState);

            // commit (-WhatIf first: still not committed)
            Run(rs, "Complete-SiteRecFailover -Url $url -VmId vm1 -VmDirectory $hv -WhatIf");
            Assert.Equal("failed-over", One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus $url vm1")).Failover.Phase);
            var committed = One<SiteRecFailoverStatus>(Run(rs, "Complete-SiteRecFailover -Url $url -VmId vm1 -VmDirectory $hv -Confirm:$false"));
            Assert.Equal("committed", committed.Phase);

            // the failed-over VM writes; fail back (full) into the on-premises images
            byte[] w2 = Pattern(4096, 77);
            using (var f = File.OpenWrite(tmp["fo/os.raw"])) { f.Position = 3 << 20; f.Write(w2); }
            var fb = One<SiteRecFailoverStatus>(Run(rs, "Start-SiteRecFailback -Url $url -VmId vm1 -Mode Full -Disk @{ os = 'os.img'; a = 'a.img' } " +
                                                        "-VmDirectory $hv -ShutdownCommand 'true' -Confirm:$false"));
            Assert.Equal("Failback", fb.Type);
            Assert.Equal("failed-over", fb.Phase);
            Assert.Equal(w2, ReadAt(os, 3 << 20, w2.Length));
            var fbc = One<SiteRecFailoverStatus>(Run(rs, "Complete-SiteRecFailover -Url $url -VmId vm1 -VmDirectory $hv -Confirm:$false"));
            Assert.Equal("Failback", fbc.Type);
            Assert.Equal("committed", fbc.Phase);

            // reverse replication: reprotect and resync, then cycles again
            var rr = One<SiteRecCycleResult>(Run(rs, "Enable-SiteRecReverseReplication -Url $url -VmId vm1 -StateDirectory $state -VmDirectory $hv"));
            Assert.True(rr.PointId > cyc.PointId);
            Assert.True(rr.BytesShipped >= 4096);   // the block the failed-over VM wrote
            var after = One<SiteRecCycleResult>(Run(rs, "Start-SiteRecReplicationCycle $state"));
            Assert.True(after.PointId > rr.PointId);
            var final = One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus -StateDirectory $state"));
            Assert.Equal("protected", final.ReplicationState);
            Assert.Equal(after.PointId, final.LatestPoint.Id);
            Assert.Equal("None", final.Failover.Type);
        }

        [Fact]
        public void PlannedFailoverAndMinimizeDowntimeFailback()
        {
            using var tmp = new TempDir();
            string os = tmp["os.img"], a = tmp["a.img"], state = tmp["state"], url = "file://" + tmp["target"], hv = tmp["hv"];
            File.WriteAllBytes(os, new byte[8 << 20]);
            File.WriteAllBytes(a, new byte[4 << 20]);
            using var rs = TestEnv.OpenRunspace(tmp.Path);
            Run(rs, $"$url = '{url}'; $state = '{state}'; $hv = '{hv}'");
            One<SiteRecReplication>(Run(rs, "Enable-SiteRecReplication -Url $url -VmId vm1 -StateDirectory $state " +
                                             "-Disk 'os:os.img:os','a:a.img' -IntervalSeconds 30"));
            // the last write before the shutdown: the planned failover's final cycle ships it
            byte[] w = Pattern(65536, 5);
            JournalWrite(state, new[] { ("os", os), ("a", a) }, 1, w, 3 << 20);
            var fo = One<SiteRecFailoverStatus>(Run(rs, "Start-SiteRecFailover -Url $url -VmId vm1 -Type Planned -StateDirectory $state " +
                "-ShutdownCommand 'true' -DiskDirectory fo -Format Raw -VmDirectory $hv -Confirm:$false"));
            Assert.Equal("Planned", fo.Type);
            Assert.Equal("failed-over", fo.Phase);
            Assert.Equal(fo.FenceId, fo.PointId);
            Assert.NotNull(fo.Downtime);
            Assert.Equal(w, ReadAt(tmp["fo/a.raw"], 3 << 20, w.Length));   // nothing lost
            One<SiteRecFailoverStatus>(Run(rs, "Complete-SiteRecFailover -Url $url -VmId vm1 -VmDirectory $hv -Confirm:$false"));
            // the failed-over VM writes 8 KiB; minimize downtime copies only what differs
            byte[] w2 = Pattern(8192, 6);
            using (var f = File.OpenWrite(tmp["fo/os.raw"])) { f.Position = 5 << 20; f.Write(w2); }
            var fb = One<SiteRecFailoverStatus>(Run(rs, "Start-SiteRecFailback -Url $url -VmId vm1 -Mode MinimizeDowntime " +
                "-Disk @{ os = 'os.img'; a = 'a.img' } -VmDirectory $hv -ShutdownCommand 'true' -Confirm:$false"));
            Assert.Equal("Failback", fb.Type);
            Assert.Equal(8192UL, fb.BytesDiffering);
            Assert.Equal(w2, ReadAt(os, 5 << 20, w2.Length));
            Assert.Equal(w, ReadAt(a, 3 << 20, w.Length));
            var fbc = One<SiteRecFailoverStatus>(Run(rs, "Complete-SiteRecFailover -Url $url -VmId vm1 -VmDirectory $hv -Confirm:$false"));
            Assert.Equal("committed", fbc.Phase);
        }

        [Fact]
        public void RecoveryPlanDrillAndCleanup()
        {
            using var tmp = new TempDir();
            File.WriteAllBytes(tmp["os.img"], Pattern(1 << 20, 5));
            File.WriteAllBytes(tmp["d.img"], new byte[1 << 20]);
            using var rs = TestEnv.OpenRunspace(tmp.Path);
            Run(rs, $"$url = 'file://{tmp["target"]}'");
            One<SiteRecReplication>(Run(rs, "Enable-SiteRecReplication $url web1 state -Disk 'os:os.img:os','d:d.img' -IntervalSeconds 30"));
            File.WriteAllText(tmp["plan.json"], @"{""format"":""siterec-plan"",""version"":1,""name"":""drill"",
              ""defaults"":{""os"":""Linux"",""format"":""raw""},
              ""groups"":[{""name"":""web"",""machines"":[{""vm"":""web1"",""disk_dir"":""" + tmp["disks-web1"] + @"""}],
                ""after"":[{""type"":""callback"",""name"":""check"",""ops"":[""test""]}]}]}");
            var run = One<SiteRecPlanResult>(Run(rs, "Start-SiteRecRecoveryPlan $url plan.json Test -StatePath plan.state -VmDirectory hv -Confirm:$false"));
            Assert.Equal("Done", run.State);
            Assert.Equal(1u, run.MachinesDone);
            Assert.Contains(run.Events, e => e.Kind == "Machine" && e.VmId == "web1" && e.Error == 0);
            Assert.Contains(run.Events, e => e.Kind == "Action" && e.Action == "check" && e.Error == 0);
            Assert.True(File.Exists(tmp["hv/web1-test.vm.json"]));
            Assert.Equal("failed-over", One<SiteRecStatus>(Run(rs, "Get-SiteRecStatus $url web1")).TestFailover.Phase);
            var clean = One<SiteRecPlanResult>(Run(rs, "Start-SiteRecRecoveryPlan $url plan.json Cleanup -StatePath plan.state -VmDirectory hv -Confirm:$false"));
            Assert.Equal("Done", clean.State);
            Assert.False(File.Exists(tmp["hv/web1-test.vm.json"]));
        }
    }
}