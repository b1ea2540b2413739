// Drift check: every function the headers declare with SITEREC_API is exported by
// the version script (lib/libsiterec.map) and declared in SiteRec.Native.NativeMethods
// with the same number of parameters, and NativeMethods declares nothing else.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Xunit;

namespace SiteRec.Tests
{
    public class DriftTests
    {
        static int CountParams(string list)
        {
            list = list.Trim();
            if (list == "void" || list.Length == 0)
                return 0;
            int depth = 0, n = 1;
            foreach (char c in list)
            {
                if (c == '(') depth++;
                else if (c == ')') depth--;
                else if (c == ',' && depth == 0) n++;
            }
            return n;
        }

        internal static Dictionary<string, int> HeaderFunctions()
        {
            var fns = new Dictionary<string, int>();
            foreach (string h in Directory.GetFiles(Path.Combine(TestEnv.SourceRoot, "include", "siterec"), "*.h"))
            {
                string text = Regex.Replace(File.ReadAllText(h), @"/\*.*?\*/", " ", RegexOptions.Singleline);
                text = Regex.Replace(text, @"#define SITEREC_API.*", "");
                foreach (Match m in Regex.Matches(text, @"SITEREC_API\s+[^;{]*?\b(siterec_\w+)\s*\(((?:[^()]|\([^()]*\))*)\)\s*;"))
                    fns.Add(m.Groups[1].Value, CountParams(m.Groups[2].Value));
            }
            return fns;
        }

        internal static HashSet<string> MapGlobals()
        {
            string map = Regex.Replace(File.ReadAllText(Path.Combine(TestEnv.SourceRoot, "lib", "libsiterec.map")), @"/\*.*?\*/", " ", RegexOptions.Singleline);
            var names = new HashSet<string>();
            foreach (Match node in Regex.Matches(map, @"global:(.*?)(?:local:|\})", RegexOptions.Singleline))
                foreach (Match s in Regex.Matches(node.Groups[1].Value, @"(\w+)\s*;"))
                    names.Add(s.Groups[1].Value);
            return names;
        }

        [Fact]
        public void EveryExportedFunctionIsDeclaredWithItsParameters()
        {
            var headers = HeaderFunctions();
            var map = MapGlobals();
            Assert.True(headers.Count > 100, $"only {headers.Count} functions parsed from the headers");
            Assert.Equal(map.OrderBy(x => x), headers.Keys.OrderBy(x => x));   // headers and version script agree

            var declared = typeof(SiteRec.Native.NativeMethods)
                .GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                .Where(m => (m.Attributes & MethodAttributes.PinvokeImpl) != 0)
                .ToDictionary(m => m.GetCustomAttribute<DllImportAttribute>()?.EntryPoint ?? m.Name, m => m.GetParameters().Length);
            var problems = new List<string>();
            foreach (var kv in headers)
            {
                if (!declared.TryGetValue(kv.Key, out int n))
                    problems.Add($"{kv.Key}: not declared in NativeMethods");
                else if (n != kv.Value)
                    problems.Add($"{kv.Key}: {n} parameters in NativeMethods, {kv.Value} in the header");
            }
            foreach (string name in declared.Keys.Where(k => !headers.ContainsKey(k)))
                problems.Add($"{name}: declared in NativeMethods, not in the headers");
            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }

        [Fact]
        public void EveryDeclaredFunctionResolvesInTheLibrary()
        {
            IntPtr lib = SiteRec.Native.LibraryResolver.Load();
            foreach (string name in MapGlobals())
                Assert.True(NativeLibrary.TryGetExport(lib, name, out _), $"{name} not exported by {SiteRec.Native.LibraryResolver.LoadedFrom}");
            string v = Marshal.PtrToStringUTF8(SiteRec.Native.NativeMethods.siterec_version(out int major, out int minor, out int patch));
            Assert.Equal($"{major}.{minor}.{patch}", v);
        }
    }
}
