using System;
using System.Runtime.InteropServices;

namespace SiteRec.Native
{
    /// <summary>The library's error codes (common.h); values are ABI.</summary>
    public enum SiteRecErrorCode
    {
        OK = 0, ERROR = -1, EINVAL = -2, ENOMEM = -3, EIO = -4, ENOTFOUND = -5, EEXISTS = -6,
        ERANGE = -7, EALIGN = -8, ECORRUPT = -9, EVERSION = -10, EAUTH = -11, ESTATE = -12,
        EABORTED = -13, EUNSUPPORTED = -14, ECONFLICT = -15, ELEASE = -16, ENETWORK = -17,
        ETIMEOUT = -18, EBUSY = -19, ENOSPC = -20, ETRUNCATED = -21, ERESYNC = -22, EDISK = -23,
        ESTORAGE = -24, ECRITICAL = -25
    }

    /// <summary>
    /// A libsiterec call failed: Code is the SITEREC_E* value it returned, the rest comes
    /// from siterec_error_last() of the calling thread at that moment.
    /// </summary>
    public class SiteRecException : Exception
    {
        public int Code { get; }
        public SiteRecErrorCode ErrorCode => (SiteRecErrorCode)Code;
        /// <summary>Storage errors: the HTTP status, else 0.</summary>
        public int HttpStatus { get; }
        /// <summary>Storage errors: the service's error code, else "".</summary>
        public string ServiceCode { get; }
        public int OsError { get; }
        /// <summary>SITEREC_EABORTED: what the callback returned.</summary>
        public int CallbackCode { get; }
        /// <summary>The function that failed.</summary>
        public string Function { get; }

        public SiteRecException(string function, int code, string message, int httpStatus, string serviceCode,
                                int osError, int callbackCode, Exception inner = null)
            : base(message, inner)
        {
            Function = function;
            Code = code;
            HttpStatus = httpStatus;
            ServiceCode = serviceCode ?? "";
            OsError = osError;
            CallbackCode = callbackCode;
        }

        /// <summary>Returns rc when it is not negative, else throws with the thread's last error.</summary>
        public static int Check(int rc, string function)
        {
            if (rc >= 0)
                return rc;
            throw FromLast(rc, function);
        }

        public static SiteRecException FromLast(int rc, string function)
        {
            IntPtr p = NativeMethods.siterec_error_last();
            var e = Marshal.PtrToStructure<Error>(p);
            string msg = Marshal.PtrToStringUTF8(e.message) ?? "";
            if (e.code != rc || msg.Length == 0)   // no record of this failure: say what the code means
                msg = Marshal.PtrToStringUTF8(NativeMethods.siterec_strerror(rc));
            string name = Enum.IsDefined(typeof(SiteRecErrorCode), rc) ? "SITEREC_" + (SiteRecErrorCode)rc : rc.ToString();
            return new SiteRecException(function, rc, $"{function}: {msg} ({name})",
                                        e.code == rc ? e.http_status : 0,
                                        e.code == rc ? Marshal.PtrToStringUTF8(e.service_code) : "",
                                        e.code == rc ? e.os_error : 0, e.code == rc ? e.callback_code : 0);
        }
    }
}
