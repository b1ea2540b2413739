// The C# mirrors of the public structs have the layout tests/abi/test_layout.c pins:
// every S(type, size) and F(type, field, offset) of that file is checked against
// Marshal.SizeOf / Marshal.OffsetOf of the struct of the same name in SiteRec.Native.
using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Xunit;

namespace SiteRec.Tests
{
    public class LayoutTests
    {
        internal static string CsName(string c) =>
            string.Concat(c.Substring("siterec_".Length).Split('_').Select(p => char.ToUpperInvariant(p[0]) + p.Substring(1)));

        [Fact]
        public void StructsMatchThePinnedLayout()
        {
            string text = File.ReadAllText(Path.Combine(TestEnv.SourceRoot, "tests", "abi", "test_layout.c"));
            var asm = typeof(SiteRec.Native.NativeMethods).Assembly;
            int sizes = 0, fields = 0;
            var problems = new System.Collections.Generic.List<string>();
            foreach (Match m in Regex.Matches(text, @"^\s*S\((siterec_\w+),\s*(\d+)\)", RegexOptions.Multiline))
            {
                Type t = asm.GetType("SiteRec.Native." + CsName(m.Groups[1].Value));
                if (t == null) { problems.Add($"{m.Groups[1].Value}: no struct {CsName(m.Groups[1].Value)}"); continue; }
                int size = Marshal.SizeOf(t);
                if (size != int.Parse(m.Groups[2].Value))
                    problems.Add($"{m.Groups[1].Value}: size {size}, pinned {m.Groups[2].Value}");
                sizes++;
            }
            foreach (Match m in Regex.Matches(text, @"^\s*F\((siterec_\w+),\s*(\w+),\s*(\d+)\)", RegexOptions.Multiline))
            {
                Type t = asm.GetType("SiteRec.Native." + CsName(m.Groups[1].Value));
                if (t == null) continue;
                long off;
                try { off = Marshal.OffsetOf(t, m.Groups[2].Value).ToInt64(); }
                catch (ArgumentException) { problems.Add($"{m.Groups[1].Value}.{m.Groups[2].Value}: no such field"); continue; }
                if (off != long.Parse(m.Groups[3].Value))
                    problems.Add($"{m.Groups[1].Value}.{m.Groups[2].Value}: offset {off}, pinned {m.Groups[3].Value}");
                fields++;
            }
            Assert.True(sizes >= 39 && fields > 300, $"only {sizes} sizes and {fields} offsets parsed");
            Assert.True(problems.Count == 0, string.Join("\n", problems));
            // and the C# side declares no struct the pins do not know
            var pinned = Regex.Matches(text, @"^\s*S\((siterec_\w+),", RegexOptions.Multiline).Select(x => CsName(x.Groups[1].Value)).ToHashSet();
            var extra = asm.GetTypes().Where(x => x.Namespace == "SiteRec.Native" && x.IsValueType && !x.IsEnum && x.IsPublic && !pinned.Contains(x.Name));
            Assert.Empty(extra.Select(x => x.Name));
        }
    }
}
