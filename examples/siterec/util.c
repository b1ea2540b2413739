#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_fail(const char *what)
{
	const siterec_error *e = siterec_error_last();
	fprintf(stderr, "siterec: %s: %s (%s)\n", what, e->message, siterec_strerror(e->code));
	return 2;
}

int cli_parse_key(const char *hex, uint8_t key[32])
{
	if (strlen(hex) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned int v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		key[i] = (uint8_t)v;
	}
	return 0;
}

int cli_env_key(uint8_t key[32])
{
	const char *k = getenv("SITEREC_LOG_KEY");
	if (!k || !*k)
		return 0;
	if (cli_parse_key(k, key) != 0) {
		fprintf(stderr, "siterec: SITEREC_LOG_KEY must be 64 hex digits\n");
		return -1;
	}
	return 1;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_open_store(siterec_store **st, const char *url, const char *ca_file, uint32_t flags,
                   siterec_progress_fn progress, void *payload)
{
	siterec_store_options o;
	siterec_store_options_init(&o, SITEREC_STORE_OPTIONS_VERSION);
	o.flags = flags;
	o.account_key = getenv("SITEREC_ACCOUNT_KEY");
	o.sas_token = getenv("SITEREC_SAS");
	o.ca_file = ca_file;
	o.progress = progress;
	o.progress_payload = payload;
	if (siterec_store_open(st, url, &o))
		return cli_fail("store open");
	return 0;
}

void cli_iso_time(int64_t ms, char *out, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];
	if (!gmtime_r(&s, &tm) || !strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, cap, "%" PRId64 "ms", ms);
		return;
	}
	snprintf(out, cap, "%s.%03dZ", base, (int)(ms % 1000));
}

const char *cli_rp_kind_name(uint32_t kind)
{
	return kind == SITEREC_RP_CRASH ? "crash" : kind == SITEREC_RP_APP ? "app" : "unknown";
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}
