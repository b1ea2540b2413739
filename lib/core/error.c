/* Thread-local last error and error texts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SR_MSG_MAX 512
#define SR_SVC_MAX 96

struct sr_tls_error {
	siterec_error pub;
	char message[SR_MSG_MAX];
	char service_code[SR_SVC_MAX];
};

static _Thread_local struct sr_tls_error tls_err;
static const siterec_error no_error = { 0, 0, 0, 0, "no error", "" };

static const char *const texts[] = {
	"success",
	"error",
	"invalid argument",
	"out of memory",
	"I/O error",
	"not found",
	"already exists",
	"out of range",
	"misaligned offset or length",
	"corrupt data",
	"unsupported version",
	"authentication failed",
	"invalid state for this operation",
	"aborted by callback",
	"unsupported",
	"conflict",
	"lease conflict",
	"network error",
	"timed out",
	"resource busy",
	"no space left",
	"data truncated",
	"resync required",
	"disk image error",
	"storage service error",
	"critical state",
};

SITEREC_API const char *siterec_strerror(int code)
{
	if (code > 0 || (size_t)(-(long)code) >= sizeof(texts) / sizeof(texts[0]))
		return "unknown error";
	return texts[-code];
}

SITEREC_API const siterec_error *siterec_error_last(void)
{
	if (tls_err.pub.code == 0)
		return &no_error;
	return &tls_err.pub;
}

SITEREC_API void siterec_error_clear(void)
{
	memset(&tls_err.pub, 0, sizeof(tls_err.pub));
}

static int set_v(int code, int os_errno, int http, const char *svc, const char *fmt, va_list ap)
	SR_PRINTF(5, 0);
static int set_v(int code, int os_errno, int http, const char *svc, const char *fmt, va_list ap)
{
	struct sr_tls_error *e = &tls_err;
	int n = vsnprintf(e->message, sizeof(e->message), fmt, ap);
	if (n < 0)
		snprintf(e->message, sizeof(e->message), "%s", siterec_strerror(code));
	if (os_errno) {
		size_t used = strlen(e->message);
		char buf[128];
		/* GNU strerror_r may return a static string instead of filling buf */
		const char *s = strerror_r(os_errno, buf, sizeof(buf));
		snprintf(e->message + used, sizeof(e->message) - used, ": %s", s);
	}
	snprintf(e->service_code, sizeof(e->service_code), "%s", svc ? svc : "");
	e->pub.code = code;
	e->pub.os_error = os_errno;
	e->pub.http_status = http;
	e->pub.callback_code = 0;
	e->pub.message = e->message;
	e->pub.service_code = e->service_code;
	sr_log(SITEREC_LOG_DEBUG, "error %d: %s", code, e->message);
	return code;
}

int sr_err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_v(code, 0, 0, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int sr_err_os(int code, int os_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_v(code, os_errno, 0, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int sr_err_http(int code, int http_status, const char *service_code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_v(code, 0, http_status, service_code, fmt, ap);
	va_end(ap);
	return code;
}

int sr_err_callback(int cb_code, const char *what)
{
	sr_err(SITEREC_EABORTED, "%s callback aborted with %d", what, cb_code);
	tls_err.pub.callback_code = cb_code;
	return SITEREC_EABORTED;
}

int sr_errno_code(int os_errno)
{
	switch (os_errno) {
	case ENOENT: return SITEREC_ENOTFOUND;
	case EEXIST: return SITEREC_EEXISTS;
	case ENOSPC:
	case EDQUOT: return SITEREC_ENOSPC;
	case ENOMEM: return SITEREC_ENOMEM;
	case EINVAL: return SITEREC_EINVAL;
	case EBUSY: return SITEREC_EBUSY;
	default: return SITEREC_EIO;
	}
}
