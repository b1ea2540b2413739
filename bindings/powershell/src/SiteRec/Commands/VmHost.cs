// The host side of a failover, as in the siterec CLI (examples/siterec/failover.c,
// host.c): a target VM is a description file VM_DIRECTORY/NAME.vm.json (plus
// NAME.arm.json, the ARM template, for an Azure target), written by the start
// callback, which then runs the -StartCommand, if any, with /bin/sh -c and
// SITEREC_VM_NAME, SITEREC_VM_JSON, SITEREC_ISOLATED in its environment. The
// remove callback runs -RemoveCommand and deletes both files; the shutdown
// callback runs -ShutdownCommand with SITEREC_VM_ID (without one, the VM counts
// as already off). A command that exits non-zero fails the callback, so the
// library aborts (SITEREC_EABORTED) and the cmdlet reports the command's failure.
// Thread-safe: a recovery plan calls these from several worker threads at once.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using SiteRec.Native;

namespace SiteRec.Commands
{
    public sealed class VmHostException : Exception
    {
        public VmHostException(string message) : base(message) { }
    }

    internal sealed class VmHost
    {
        public string Directory;
        public string StartCommand, RemoveCommand, ShutdownCommand;
        /// <summary>Lines for the cmdlet's verbose stream (drained on the cmdlet's thread).</summary>
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Log = new System.Collections.Concurrent.ConcurrentQueue<string>();

        public string VmJsonPath(string name) => Path.Combine(Directory, name + ".vm.json");
        public string ArmPath(string name) => Path.Combine(Directory, name + ".arm.json");

        static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'");

        public static string VmJson(in FailoverVm vm)
        {
            var disks = new JsonArray();
            int ds = Marshal.SizeOf<FailoverDisk>(), ns = Marshal.SizeOf<FailoverNic>();
            for (int i = 0; i < vm.n_disks; i++)
            {
                var d = Marshal.PtrToStructure<FailoverDisk>(vm.disks + i * ds);
                disks.Add(new JsonObject
                {
                    ["id"] = NativeArena.Text(d.id), ["location"] = NativeArena.Text(d.location), ["size"] = d.size,
                    ["role"] = d.role == 1 ? "os" : "data", ["lun"] = d.lun,
                });
            }
            var nics = new JsonArray();
            for (int i = 0; i < vm.n_nics; i++)
            {
                var n = Marshal.PtrToStructure<FailoverNic>(vm.nics + i * ns);
                var o = new JsonObject { ["network"] = NativeArena.Text(n.network), ["subnet"] = NativeArena.Text(n.subnet) };
                if (n.ip != IntPtr.Zero)
                    o["ip"] = NativeArena.Text(n.ip);
                nics.Add(o);
            }
            var j = new JsonObject
            {
                ["name"] = NativeArena.Text(vm.name), ["vm"] = NativeArena.Text(vm.vm_id), ["generation"] = vm.generation,
                ["source_generation"] = vm.source_generation, ["firmware"] = vm.firmware == 2 ? "uefi" : "bios",
                ["isolated"] = vm.isolated != 0, ["point"] = vm.point_id, ["point_time"] = Iso(vm.point_time_ms),
                ["size"] = NativeArena.Text(vm.vm_size), ["os"] = NativeArena.Text(vm.os_type),
                ["disks"] = disks, ["nics"] = nics,
            };
            return j.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        }

        int Run(string cmd, string what, IDictionary<string, string> env)
        {
            Log.Enqueue($"running {what}: {cmd}");
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(cmd);
            foreach (var kv in env)
                psi.Environment[kv.Key] = kv.Value;
            using var p = Process.Start(psi);
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            string text = (output + err.Result).Trim();
            if (text.Length > 0)
                Log.Enqueue($"{what}: {text}");
            if (p.ExitCode != 0)
                throw new VmHostException($"{what} failed (exit status {p.ExitCode}): {cmd}" + (text.Length > 0 ? ": " + text : ""));
            return 0;
        }

        public int Start(IntPtr vmPtr)
        {
            var vm = Marshal.PtrToStructure<FailoverVm>(vmPtr);
            string name = NativeArena.Text(vm.name), vj = VmJsonPath(name);
            Log.Enqueue($"starting VM {name} (generation {vm.generation}, {(vm.firmware == 2 ? "UEFI" : "BIOS")}, {vm.n_disks} disk(s){(vm.isolated != 0 ? ", isolated network" : "")}) from point {vm.point_id}");
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllText(vj, VmJson(vm) + "\n");
            if (vm.arm_template != IntPtr.Zero)
                File.WriteAllText(ArmPath(name), NativeArena.Text(vm.arm_template) + "\n");
            if (StartCommand != null)
                return Run(StartCommand, "the start command", new Dictionary<string, string>
                { ["SITEREC_VM_NAME"] = name, ["SITEREC_VM_JSON"] = vj, ["SITEREC_ISOLATED"] = vm.isolated != 0 ? "1" : "0" });
            return 0;
        }

        public int Remove(IntPtr vmPtr)
        {
            var vm = Marshal.PtrToStructure<FailoverVm>(vmPtr);
            string name = NativeArena.Text(vm.name), vj = VmJsonPath(name);
            Log.Enqueue($"removing VM {name}");
            if (RemoveCommand != null)
                Run(RemoveCommand, "the remove command", new Dictionary<string, string> { ["SITEREC_VM_NAME"] = name, ["SITEREC_VM_JSON"] = vj });
            File.Delete(vj);
            File.Delete(ArmPath(name));
            return 0;
        }

        public int Shutdown(string vmId)
        {
            Log.Enqueue($"shutting down VM {vmId}");
            if (ShutdownCommand != null)
                return Run(ShutdownCommand, "the shutdown command", new Dictionary<string, string> { ["SITEREC_VM_ID"] = vmId });
            return 0;
        }
    }
}
