using System;
using System.IO;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace SiteRec.Tests
{
    /// <summary>Where the sources and the module are; PowerShell hosted in-process.</summary>
    internal static class TestEnv
    {
        /// <summary>$SITEREC_SOURCE_ROOT, else the directory above the tests holding include/siterec.</summary>
        public static string SourceRoot
        {
            get
            {
                string env = Environment.GetEnvironmentVariable("SITEREC_SOURCE_ROOT");
                if (!string.IsNullOrEmpty(env))
                    return env;
                for (string d = AppContext.BaseDirectory; d != null; d = Path.GetDirectoryName(d))
                    if (Directory.Exists(Path.Combine(d, "include", "siterec")) && File.Exists(Path.Combine(d, "lib", "libsiterec.map")))
                        return d;
                throw new InvalidOperationException("set SITEREC_SOURCE_ROOT to the libsiterec source tree");
            }
        }

        /// <summary>The manifest next to SiteRec.dll in the test's output directory.</summary>
        public static string ModuleManifest => Path.Combine(AppContext.BaseDirectory, "SiteRec.psd1");

        /// <summary>A runspace with the default commands and the SiteRec module imported through its manifest.</summary>
        public static Runspace OpenRunspace(string location)
        {
            var iss = InitialSessionState.CreateDefault2();
            iss.ImportPSModule(new[] { ModuleManifest });
            var rs = RunspaceFactory.CreateRunspace(iss);
            rs.Open();
            rs.SessionStateProxy.Path.SetLocation(location);   // Set-Location's module is not in the SDK packages
            return rs;
        }
    }

    /// <summary>A temporary directory removed afterwards.</summary>
    internal sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "siterec-ps-" + Guid.NewGuid().ToString("N").Substring(0, 12));
        public TempDir() { Directory.CreateDirectory(Path); }
        public string this[string rel] => System.IO.Path.Combine(Path, rel);
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
