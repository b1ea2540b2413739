// Where libsiterec.so.1 comes from: $SITEREC_LIBRARY (a path to the library;
// a failure to load it is an error, not a fallback), then the meson build tree
// the module was built into (build.sh puts the assembly under BUILD/bindings/
// powershell/, so the first parent directory holding libsiterec.so.1 is the
// build directory), then the default loader (LD_LIBRARY_PATH, ld.so.cache:
// an installed libsiterec.so.1).
using System;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SiteRec.Native
{
    public static class LibraryResolver
    {
        public const string EnvironmentVariable = "SITEREC_LIBRARY";
        public const string FileName = "libsiterec.so.1";

        static int registered;
        static IntPtr loaded;

        /// <summary>The path the library was loaded from, or the file name when the default loader found it.</summary>
        public static string LoadedFrom { get; private set; }

#pragma warning disable CA2255 // a library module: the resolver must be in place before any P/Invoke
        [ModuleInitializer]
        internal static void Init() => Register();
#pragma warning restore CA2255

        /// <summary>Install the resolver for this assembly (idempotent).</summary>
        public static void Register()
        {
            if (System.Threading.Interlocked.Exchange(ref registered, 1) == 0)
                NativeLibrary.SetDllImportResolver(typeof(LibraryResolver).Assembly, Resolve);
        }

        static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
        {
            if (name != NativeMethods.Lib)
                return IntPtr.Zero;
            return Load();
        }

        /// <summary>Load (once) and return the library's handle; throws DllNotFoundException with every place tried.</summary>
        public static IntPtr Load()
        {
            lock (typeof(LibraryResolver))
            {
                if (loaded != IntPtr.Zero)
                    return loaded;
                string env = Environment.GetEnvironmentVariable(EnvironmentVariable);
                if (!string.IsNullOrEmpty(env))
                {
                    try { loaded = NativeLibrary.Load(env); }
                    catch (Exception e)
                    {
                        throw new DllNotFoundException($"{EnvironmentVariable}={env}: cannot load it: {e.Message}", e);
                    }
                    LoadedFrom = env;
                    return loaded;
                }
                string tried = "";
                string dir = Path.GetDirectoryName(typeof(LibraryResolver).Assembly.Location);
                for (int i = 0; i < 8 && !string.IsNullOrEmpty(dir); i++, dir = Path.GetDirectoryName(dir))
                {
                    string candidate = Path.Combine(dir, FileName);
                    if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out loaded))
                    {
                        LoadedFrom = candidate;
                        return loaded;
                    }
                }
                tried += "the directories above the module; ";
                foreach (string n in new[] { FileName, "libsiterec.so" })
                {
                    if (NativeLibrary.TryLoad(n, out loaded))
                    {
                        LoadedFrom = n;
                        return loaded;
                    }
                }
                throw new DllNotFoundException($"libsiterec not found: set {EnvironmentVariable} to the path of {FileName} " +
                                               $"(tried {tried}then the default loader)");
            }
        }

        /// <summary>The address of an exported function (e.g. siterec_disk_write_cb, to pass as a callback).</summary>
        public static IntPtr Export(string symbol) => NativeLibrary.GetExport(Load(), symbol);
    }
}
