/* Delta log: AES-256-GCM of record payloads (mbedTLS), key check, random bytes.
 * The nonce is prefix(8) || le32(index): the prefix is random per writing session
 * and the index is the record's position in its file, so no nonce repeats under a
 * key unless 64 random bits collide. The raw key is never stored: mbedTLS keeps
 * the expanded key in the context and wipes it in mbedtls_gcm_free(). */
#include <string.h>

#include <mbedtls/platform_util.h>

#include "dlog_internal.h"

int sr_dlog_crypto_init(struct dl_crypto *c, const uint8_t *key)
{
	memset(c, 0, sizeof(*c));
	if (!key)
		return 0;
	mbedtls_gcm_init(&c->gcm);
	int mrc = mbedtls_gcm_setkey(&c->gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
	if (mrc != 0) {
		mbedtls_gcm_free(&c->gcm);
		return sr_err(SITEREC_ERROR, "AES-256-GCM key setup failed (mbedTLS -0x%04x)",
		              (unsigned)-mrc);
	}
	c->on = 1;
	return 0;
}

void sr_dlog_crypto_free(struct dl_crypto *c)
{
	if (c->on)
		mbedtls_gcm_free(&c->gcm);
	mbedtls_platform_zeroize(c, sizeof(*c));
}

void sr_dlog_crypto_bind(struct dl_crypto *c, const uint8_t disk_id[16], const uint8_t salt[8])
{
	memcpy(c->bind, disk_id, 16);
	memcpy(c->bind + 16, salt, 8);
}

/* AAD of a record: its header bytes 0..47, then the file binding. */
static void make_aad(uint8_t out[72], const struct dl_crypto *c, const uint8_t aad[48])
{
	memcpy(out, aad, 48);
	memcpy(out + 48, c->bind, 24);
}

static void make_iv(uint8_t iv[12], const uint8_t prefix[8], uint32_t index)
{
	memcpy(iv, prefix, 8);
	sr_put_le32(iv + 8, index);
}

int sr_dlog_encrypt(struct dl_crypto *c, const uint8_t prefix[8], uint32_t index,
                    const uint8_t aad[48], const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t iv[12], full[72];
	make_iv(iv, prefix, index);
	make_aad(full, c, aad);
	int mrc = mbedtls_gcm_crypt_and_tag(&c->gcm, MBEDTLS_GCM_ENCRYPT, len, iv, sizeof(iv), full,
	                                    sizeof(full), in, out, DL_TAG, out + len);
	if (mrc != 0)
		return sr_err(SITEREC_ERROR, "AES-256-GCM encryption failed (mbedTLS -0x%04x)",
		              (unsigned)-mrc);
	return 0;
}

int sr_dlog_decrypt(struct dl_crypto *c, const uint8_t prefix[8], uint32_t index,
                    const uint8_t aad[48], const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t iv[12], full[72];
	make_iv(iv, prefix, index);
	make_aad(full, c, aad);
	int mrc = mbedtls_gcm_auth_decrypt(&c->gcm, len, iv, sizeof(iv), full, sizeof(full), in + len,
	                                   DL_TAG, in, out);
	if (mrc == MBEDTLS_ERR_GCM_AUTH_FAILED)
		return SITEREC_EAUTH; /* the caller words the message: it knows the record */
	if (mrc != 0)
		return sr_err(SITEREC_ERROR, "AES-256-GCM decryption failed (mbedTLS -0x%04x)",
		              (unsigned)-mrc);
	return 0;
}

/* GMAC of a fixed label and the header's first 72 bytes (everything before the key
 * check): a wrong key fails here, at open, instead of at the first record. */
int sr_dlog_key_check(struct dl_crypto *c, const uint8_t *hdr, uint8_t out[16])
{
	static const char label[24] = "siterec-dlog-keycheck-v1"; /* 24 bytes, no NUL */
	uint8_t aad[sizeof(label) + 72];
	memcpy(aad, label, sizeof(label));
	memcpy(aad + sizeof(label), hdr, 72);
	uint8_t iv[12];
	make_iv(iv, hdr + 64, DL_KEYCHECK_INDEX);
	uint8_t dummy[1] = { 0 };
	int mrc = mbedtls_gcm_crypt_and_tag(&c->gcm, MBEDTLS_GCM_ENCRYPT, 0, iv, sizeof(iv), aad,
	                                    sizeof(aad), dummy, dummy, 16, out);
	if (mrc != 0)
		return sr_err(SITEREC_ERROR, "AES-256-GCM key check failed (mbedTLS -0x%04x)",
		              (unsigned)-mrc);
	return 0;
}

int sr_dlog_ct_cmp(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= a[i] ^ b[i];
	return d != 0;
}
