// Callback types of the headers, and CallbackScope: it makes the function
// pointers for one library call, keeps their delegates alive until it is
// disposed (after the call returned), and turns an exception thrown inside a
// callback into a non-zero return (the library then aborts with
// SITEREC_EABORTED); Check() rethrows that exception, the original one, to the
// caller instead of the library's EABORTED. Callbacks a recovery plan runs on
// its worker threads may throw concurrently: the first exception wins.
using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace SiteRec.Native
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int ProgressFn(ulong done, ulong total, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int LogFn(int level, IntPtr message, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int ExtentFn(ulong offset, ulong length, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int ReadFn(IntPtr buf, nuint length, ulong offset, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int WriteFn(IntPtr buf, nuint length, ulong offset, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int QuiesceFn(int freeze, IntPtr payload);
    /// <summary>siterec_vm_start_fn / siterec_vm_remove_fn: vm is a const siterec_failover_vm *.</summary>
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int VmFn(IntPtr vm, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int VmShutdownFn(IntPtr vmId, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int FollowFn(IntPtr ev, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int PlanEventFn(IntPtr ev, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int PlanActionFn(IntPtr action, uint op, IntPtr group, IntPtr payload);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int PlanReplicationFn(IntPtr vmId, IntPtr outHandle, IntPtr payload);

    public sealed class CallbackScope : IDisposable
    {
        readonly List<Delegate> alive = new List<Delegate>();
        Exception captured;

        /// <summary>The exception a callback threw, if any.</summary>
        public Exception Captured => captured;

        /// <summary>Return code a callback gives the library when it threw.</summary>
        public const int ExceptionReturn = -1000;

        void Capture(Exception e) => Interlocked.CompareExchange(ref captured, e, null);

        /// <summary>Run a callback body: exceptions become ExceptionReturn.</summary>
        public int Guard(Func<int> body)
        {
            try { return body(); }
            catch (Exception e) { Capture(e); return ExceptionReturn; }
        }

        /// <summary>A function pointer for d, valid until Dispose(); IntPtr.Zero for null.</summary>
        public IntPtr Ptr<T>(T d) where T : Delegate
        {
            if (d == null)
                return IntPtr.Zero;
            alive.Add(d);
            return Marshal.GetFunctionPointerForDelegate(d);
        }

        public IntPtr Progress(Action<ulong, ulong> report) =>
            report == null ? IntPtr.Zero : Ptr<ProgressFn>((done, total, _) => Guard(() => { report(done, total); return 0; }));

        public IntPtr Vm(Func<IntPtr, int> fn) => Ptr<VmFn>((vm, _) => Guard(() => fn(vm)));

        public IntPtr Shutdown(Func<string, int> fn) =>
            fn == null ? IntPtr.Zero : Ptr<VmShutdownFn>((id, _) => Guard(() => fn(NativeArena.Text(id))));

        /// <summary>
        /// After the call: rethrow the callback's exception when one was captured (whatever
        /// the library returned), else SiteRecException.Check(rc).
        /// </summary>
        public int Check(int rc, string function)
        {
            if (captured != null)
                ExceptionDispatchInfo.Capture(captured).Throw();
            return SiteRecException.Check(rc, function);
        }

        public void Dispose()
        {
            GC.KeepAlive(alive);
            alive.Clear();
        }
    }
}
