/* Security of the Azure Blob target, through the public API, against a real
 * Azurite served over HTTPS with a self-signed certificate made here: trust
 * (no ca_file / ca_file / unusable ca_file), account SAS tokens made here
 * (read-only ones are refused writes, read-write ones work), and error messages
 * that never carry the account key or a SAS signature. */
#include "helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/md.h>

#define KiB 1024ull
#define MiB (1024ull * 1024)

/* Azurite's well-known devstoreaccount1 key (public, emulator only). */
static const char *const KEY =
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/* A different, valid base64 key: signatures made with it must be refused. */
static const char *const WRONG_KEY = "c2VjcmV0LWtleS1tdXN0LW5vdC1sZWFrLXNlY3JldC1rZXk=";

/* The account SAS version: 2020-12-06 and later sign the encryption scope too. */
#define SAS_VERSION "2020-12-06"

static struct {
	char *dir;
	char root[4096];
	char cert[4200], key[4200];
	int port;
	long pid;
} az;

static int group_setup(void **state)
{
	(void)state;
	if (th_source_root(az.root, sizeof(az.root), "test_store_azure_sec") != 0)
		return -1;
	char cmd[16384];
	az.dir = th_tmpdir();
	snprintf(az.cert, sizeof(az.cert), "%s/cert.pem", az.dir);
	snprintf(az.key, sizeof(az.key), "%s/key.pem", az.dir);
	/* self-signed, so the certificate is its own CA: the ca_file of the tests */
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
	         "-addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' >/dev/null 2>&1",
	         az.key, az.cert);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_store_azure_sec: openssl could not make a certificate\n");
		return -1;
	}
	char azdir[4200];
	snprintf(azdir, sizeof(azdir), "%s/az", az.dir);
	return th_azurite_start("test_store_azure_sec", az.root, azdir, az.cert, az.key, &az.port,
	                        &az.pid);
}

static int group_teardown(void **state)
{
	(void)state;
	th_azurite_stop(az.root, az.pid);
	if (az.dir)
		th_tmpdir_remove(az.dir);
	return 0;
}

static char *url_of(const char *container)
{
	static char u[256];
	snprintf(u, sizeof(u), "https://127.0.0.1:%d/devstoreaccount1/%s", az.port, container);
	return u;
}

/* Options trusting the test's certificate; one credential of the two. */
static siterec_store_options opts_of(const char *key, const char *sas)
{
	siterec_store_options o = SITEREC_STORE_OPTIONS_INIT;
	o.account_key = key;
	o.sas_token = sas;
	o.ca_file = az.cert;
	o.max_retries = 1;
	return o;
}

static siterec_store *open_ok(const char *container, const siterec_store_options *o)
{
	siterec_store *st = NULL;
	int rc = siterec_store_open(&st, url_of(container), o);
	if (rc)
		fprintf(stderr, "open: %s\n", siterec_error_last()->message);
	assert_int_equal(rc, 0);
	assert_non_null(st);
	return st;
}

/* The last error's message names neither a key nor a SAS signature. */
static void assert_no_secret(const char *sig)
{
	const char *m = siterec_error_last()->message;
	assert_non_null(m);
	assert_null(strstr(m, KEY));
	assert_null(strstr(m, "Eby8vdM0"));
	assert_null(strstr(m, WRONG_KEY));
	assert_null(strstr(m, "c2VjcmV0"));
	assert_null(strstr(m, "sig="));
	if (sig && *sig)
		assert_null(strstr(m, sig));
}

/* ---- account SAS, made as a customer would (Create an account SAS) ---- */

/* Percent-encode everything but unreserved characters: the library sends the
 * token as given, so it must already be a valid query string. */
static void qenc(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
}

/* An account SAS for the blob service, all resource types, permissions sp,
 * expiring in an hour, signed with key (base64). The raw signature (base64)
 * goes to sig_out so that messages can be checked for it. */
static void make_sas(char *out, size_t cap, const char *key, const char *sp, char *sig_out,
                     size_t sig_cap)
{
	unsigned char k[128], mac[32], b64[64];
	size_t klen = 0, blen = 0;
	assert_int_equal(mbedtls_base64_decode(k, sizeof(k), &klen, (const unsigned char *)key,
	                                       strlen(key)), 0);
	char se[32];
	time_t t = time(NULL) + 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(se, sizeof(se), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* account, sp, ss, srt, st, se, sip, spr, sv, ses, and a final newline */
	char sts[512];
	snprintf(sts, sizeof(sts), "devstoreaccount1\n%s\nb\nsco\n\n%s\n\n\n%s\n\n", sp, se, SAS_VERSION);
	assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), k, klen,
	                                 (const unsigned char *)sts, strlen(sts), mac), 0);
	assert_int_equal(mbedtls_base64_encode(b64, sizeof(b64), &blen, mac, sizeof(mac)), 0);
	b64[blen] = 0;
	snprintf(sig_out, sig_cap, "%s", (const char *)b64);
	char se_enc[96], sig_enc[160];
	qenc(se_enc, sizeof(se_enc), se);
	qenc(sig_enc, sizeof(sig_enc), (const char *)b64);
	snprintf(out, cap, "sv=%s&ss=b&srt=sco&sp=%s&se=%s&sig=%s", SAS_VERSION, sp, se_enc, sig_enc);
}

/* ---- TLS ---- */

/* Without ca_file the self-signed certificate is not trusted: a clear error at
 * once (not retried: the same certificate would fail again). */
static void test_tls_untrusted(void **state)
{
	(void)state;
	siterec_store_options o = opts_of(KEY, NULL);
	o.ca_file = NULL;
	o.flags = SITEREC_STORE_CREATE;
	o.max_retries = 8;  /* retried, the back-off alone would sleep over 25 s */
	siterec_store *st = NULL;
	time_t t0 = time(NULL);
	th_assert_err(siterec_store_open(&st, url_of("tls1"), &o), SITEREC_ENETWORK);
	assert_null(st);
	assert_int_equal(siterec_error_last()->http_status, 0);
	assert_non_null(strstr(siterec_error_last()->message, "TLS certificate verification failed"));
	assert_no_secret(NULL);
	/* no retry was made (a generous bound: one handshake under valgrind is slow) */
	assert_true(time(NULL) - t0 < 20);
	/* nothing was created behind the failure */
	o.ca_file = az.cert;
	o.flags = 0;
	th_assert_err(siterec_store_open(&st, url_of("tls1"), &o), SITEREC_ENOTFOUND);
}

/* A ca_file that cannot be read is a setup error, said as such. */
static void test_tls_bad_ca_file(void **state)
{
	(void)state;
	char bad[4300];
	snprintf(bad, sizeof(bad), "%s/no-such-ca.pem", az.dir);
	siterec_store_options o = opts_of(KEY, NULL);
	o.ca_file = bad;
	o.flags = SITEREC_STORE_CREATE;
	siterec_store *st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("tls2"), &o), SITEREC_ENETWORK);
	assert_null(st);
	assert_non_null(strstr(siterec_error_last()->message, "TLS certificate verification failed"));
}

/* With the certificate as ca_file everything works over HTTPS. */
static void test_tls_trusted(void **state)
{
	(void)state;
	siterec_store_options o = opts_of(KEY, NULL);
	o.flags = SITEREC_STORE_CREATE | SITEREC_STORE_CONTENT_MD5;
	siterec_store *st = open_ok("tls3", &o);
	const uint64_t size = 8 * MiB;
	assert_int_equal(siterec_store_disk_create(st, "d", size), 0);
	uint8_t *data = malloc(5 * MiB), *got = malloc(5 * MiB);
	assert_non_null(data);
	assert_non_null(got);
	th_fill(data, 5 * MiB, 42);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "d", NULL), 0);
	/* more than one 4 MiB request, so several transfers go over TLS at once */
	assert_int_equal(siterec_store_writer_write(w, data, 5 * MiB, MiB), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "d", NULL, got, 5 * MiB, MiB), 0);
	assert_memory_equal(got, data, 5 * MiB);
	free(data);
	free(got);
	char etag[SITEREC_STORE_ETAG_MAX];
	assert_int_equal(siterec_store_doc_put(st, "doc", "hello", 5, "", etag, sizeof(etag)), 0);
	void *doc = NULL;
	size_t len = 0;
	assert_int_equal(siterec_store_doc_get(st, "doc", &doc, &len, NULL, 0), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(doc, "hello", 5);
	siterec_free(doc);
	siterec_store_free(st);
}

/* ---- SAS ---- */

static int count_cb(const char *name, int kind, uint64_t size, const char *snapshot, void *p)
{
	(void)name;
	(void)kind;
	(void)size;
	(void)snapshot;
	(*(int *)p)++;
	return 0;
}

/* Content made with the Shared Key for the SAS tests to read. */
static void sas_fixture(void)
{
	siterec_store_options o = opts_of(KEY, NULL);
	o.flags = SITEREC_STORE_CREATE;
	siterec_store *st = open_ok("sas", &o);
	int rc = siterec_store_disk_create(st, "ro/disk", MiB);
	assert_true(rc == 0 || rc == SITEREC_EEXISTS);
	uint8_t buf[4096];
	th_fill(buf, sizeof(buf), 7);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "ro/disk", NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, buf, sizeof(buf), 0), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_doc_put(st, "ro/doc", "ro", 2, NULL, NULL, 0), 0);
	siterec_store_free(st);
}

/* Read-only SAS (sp=rl): reads and listing work, every write is refused. */
static void test_sas_read_only(void **state)
{
	(void)state;
	sas_fixture();
	char sas[1024], sig[64];
	make_sas(sas, sizeof(sas), KEY, "rl", sig, sizeof(sig));
	siterec_store_options o = opts_of(NULL, sas);
	siterec_store *st = open_ok("sas", &o);

	uint8_t buf[4096], want[4096];
	th_fill(want, sizeof(want), 7);
	assert_int_equal(siterec_store_read(st, "ro/disk", NULL, buf, sizeof(buf), 0), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	void *doc = NULL;
	size_t len = 0;
	assert_int_equal(siterec_store_doc_get(st, "ro/doc", &doc, &len, NULL, 0), 0);
	assert_int_equal(len, 2);
	siterec_free(doc);
	int n = 0;
	assert_int_equal(siterec_store_list(st, "ro/", count_cb, &n), 0);
	assert_int_equal(n, 2);

	th_assert_err(siterec_store_disk_create(st, "ro/new", MiB), SITEREC_EAUTH);
	assert_int_equal(siterec_error_last()->http_status, 403);
	assert_no_secret(sig);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "ro/disk", NULL), 0);
	memset(buf, 0x5A, sizeof(buf));
	int rc = siterec_store_writer_write(w, buf, sizeof(buf), 0);
	if (rc == 0)
		rc = siterec_store_writer_finish(w);
	th_assert_err(rc, SITEREC_EAUTH);
	assert_int_equal(siterec_error_last()->http_status, 403);
	assert_no_secret(sig);
	siterec_store_writer_free(w);
	th_assert_err(siterec_store_doc_put(st, "ro/doc", "rw", 2, NULL, NULL, 0), SITEREC_EAUTH);
	assert_no_secret(sig);
	th_assert_err(siterec_store_doc_put(st, "ro/doc2", "rw", 2, "", NULL, 0), SITEREC_EAUTH);
	th_assert_err(siterec_store_doc_delete(st, "ro/doc", NULL), SITEREC_EAUTH);
	th_assert_err(siterec_store_disk_delete(st, "ro/disk", 0, NULL), SITEREC_EAUTH);
	assert_no_secret(sig);
	/* nothing changed */
	assert_int_equal(siterec_store_read(st, "ro/disk", NULL, buf, sizeof(buf), 0), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	n = 0;
	assert_int_equal(siterec_store_list(st, "ro/", count_cb, &n), 0);
	assert_int_equal(n, 2);
	siterec_store_free(st);

	/* nor may it create the container */
	o.flags = SITEREC_STORE_CREATE;
	st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("sasnew"), &o), SITEREC_EAUTH);
	assert_null(st);
	assert_no_secret(sig);
}

/* Read-write SAS (sp=racwdl): create, write, read, documents, delete. */
static void test_sas_read_write(void **state)
{
	(void)state;
	sas_fixture();
	char sas[1024], sig[64];
	make_sas(sas, sizeof(sas), KEY, "racwdl", sig, sizeof(sig));
	/* a leading '?' is accepted as copied from a portal */
	char qsas[1100];
	snprintf(qsas, sizeof(qsas), "?%s", sas);
	siterec_store_options o = opts_of(NULL, qsas);
	o.flags = SITEREC_STORE_CREATE;
	siterec_store *st = open_ok("sasrw", &o);
	assert_int_equal(siterec_store_disk_create(st, "rw/disk", 2 * MiB), 0);
	uint8_t *data = malloc(MiB), *got = malloc(MiB);
	assert_non_null(data);
	assert_non_null(got);
	th_fill(data, MiB, 11);
	siterec_store_writer *w = NULL;
	assert_int_equal(siterec_store_writer_open(&w, st, "rw/disk", NULL), 0);
	assert_int_equal(siterec_store_writer_write(w, data, MiB, 512), 0);
	assert_int_equal(siterec_store_writer_finish(w), 0);
	siterec_store_writer_free(w);
	assert_int_equal(siterec_store_read(st, "rw/disk", NULL, got, MiB, 512), 0);
	assert_memory_equal(got, data, MiB);
	free(data);
	free(got);
	char etag[SITEREC_STORE_ETAG_MAX];
	assert_int_equal(siterec_store_doc_put(st, "rw/doc", "v1", 2, "", etag, sizeof(etag)), 0);
	assert_int_equal(siterec_store_doc_put(st, "rw/doc", "v2", 2, etag, etag, sizeof(etag)), 0);
	void *doc = NULL;
	size_t len = 0;
	assert_int_equal(siterec_store_doc_get(st, "rw/doc", &doc, &len, NULL, 0), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(doc, "v2", 2);
	siterec_free(doc);
	assert_int_equal(siterec_store_doc_delete(st, "rw/doc", NULL), 0);
	assert_int_equal(siterec_store_disk_delete(st, "rw/disk", 0, NULL), 0);
	siterec_store_free(st);

	/* the same token reaches the other container too (account SAS) */
	o.flags = 0;
	st = open_ok("sas", &o);
	uint8_t buf[512];
	assert_int_equal(siterec_store_read(st, "ro/disk", NULL, buf, sizeof(buf), 0), 0);
	siterec_store_free(st);
}

/* A SAS signed with another key, or expired: refused, and the message shows
 * neither the key nor the signature. */
static void test_sas_bad(void **state)
{
	(void)state;
	sas_fixture();
	char sas[1024], sig[64];
	make_sas(sas, sizeof(sas), WRONG_KEY, "racwdl", sig, sizeof(sig));
	siterec_store_options o = opts_of(NULL, sas);
	siterec_store *st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("sas"), &o), SITEREC_EAUTH);
	assert_null(st);
	assert_int_equal(siterec_error_last()->http_status, 403);
	assert_non_null(strstr(siterec_error_last()->message, "authentication failed"));
	assert_no_secret(sig);
	/* a token with its signature cut off */
	o.sas_token = "sv=" SAS_VERSION "&ss=b&srt=sco&sp=rl&se=2099-01-01T00%3A00%3A00Z";
	th_assert_err(siterec_store_open(&st, url_of("sas"), &o), SITEREC_EAUTH);
	assert_null(st);
	assert_no_secret(NULL);
}

/* Shared Key with a wrong key: refused without the key in the message. */
static void test_wrong_key(void **state)
{
	(void)state;
	sas_fixture();
	siterec_store_options o = opts_of(WRONG_KEY, NULL);
	siterec_store *st = NULL;
	th_assert_err(siterec_store_open(&st, url_of("sas"), &o), SITEREC_EAUTH);
	assert_null(st);
	assert_int_equal(siterec_error_last()->http_status, 403);
	assert_no_secret(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_untrusted),
		cmocka_unit_test(test_tls_bad_ca_file),
		cmocka_unit_test(test_tls_trusted),
		cmocka_unit_test(test_sas_read_only),
		cmocka_unit_test(test_sas_read_write),
		cmocka_unit_test(test_sas_bad),
		cmocka_unit_test(test_wrong_key),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
