// Unmanaged memory for the strings and arrays an options struct points to, freed
// together when the call is over (using var arena = new NativeArena()).
using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace SiteRec.Native
{
    public sealed class NativeArena : IDisposable
    {
        readonly List<IntPtr> blocks = new List<IntPtr>();

        /// <summary>A NUL-terminated UTF-8 copy of s, or IntPtr.Zero for null.</summary>
        public IntPtr Str(string s)
        {
            if (s == null)
                return IntPtr.Zero;
            IntPtr p = Marshal.StringToCoTaskMemUTF8(s);
            blocks.Add(p);
            return p;
        }

        /// <summary>A C array of the structs (IntPtr.Zero when empty).</summary>
        public IntPtr Array<T>(IReadOnlyList<T> items) where T : struct
        {
            if (items == null || items.Count == 0)
                return IntPtr.Zero;
            int size = Marshal.SizeOf<T>();
            IntPtr p = Alloc(size * items.Count);
            for (int i = 0; i < items.Count; i++)
                Marshal.StructureToPtr(items[i], p + i * size, false);
            return p;
        }

        /// <summary>A C array of strings (const char *const *).</summary>
        public IntPtr StrArray(IReadOnlyList<string> items)
        {
            var ptrs = new IntPtr[items.Count];
            for (int i = 0; i < items.Count; i++)
                ptrs[i] = Str(items[i]);
            IntPtr p = Alloc(IntPtr.Size * Math.Max(1, items.Count));
            Marshal.Copy(ptrs, 0, p, ptrs.Length);
            return p;
        }

        public IntPtr Alloc(int bytes)
        {
            IntPtr p = Marshal.AllocCoTaskMem(Math.Max(1, bytes));
            blocks.Add(p);
            return p;
        }

        public void Dispose()
        {
            foreach (IntPtr p in blocks)
                Marshal.FreeCoTaskMem(p);
            blocks.Clear();
        }

        /// <summary>A C string at p (UTF-8), or null.</summary>
        public static string Text(IntPtr p) => p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);

        /// <summary>The text of a fixed char array of a struct.</summary>
        public static unsafe string Text(byte* p, int cap)
        {
            int n = 0;
            while (n < cap && p[n] != 0)
                n++;
            return Encoding.UTF8.GetString(p, n);
        }
    }
}
