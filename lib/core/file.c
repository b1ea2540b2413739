/* Durable file helpers (DESIGN.md rule 12) and full-length pread/pwrite. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int sr_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return sr_err_os(sr_errno_code(e), e, "read of %zu bytes at %llu failed", len,
			                 (unsigned long long)off);
		}
		if (n == 0)
			return sr_err(SITEREC_ETRUNCATED, "unexpected end of file at %llu",
			              (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int sr_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			return sr_err_os(sr_errno_code(e), e, "write of %zu bytes at %llu failed", len,
			                 (unsigned long long)off);
		}
		if (n == 0) /* never seen on files, but looping on it would hang forever */
			return sr_err(SITEREC_EIO, "write of %zu bytes at %llu made no progress", len,
			              (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int sr_fsync_dir_of(const char *path)
{
	char *copy = sr_strdup(path);
	if (!copy)
		return sr_err(SITEREC_ENOMEM, "out of memory");
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		sr_free(copy);
		return sr_err_os(sr_errno_code(e), e, "cannot open directory of %s", path);
	}
	int rc = 0;
	if (fsync(fd) != 0 && errno != EINVAL) {
		int e = errno;
		rc = sr_err_os(SITEREC_EIO, e, "fsync of directory of %s failed", path);
	}
	close(fd);
	sr_free(copy);
	return rc;
}

int sr_file_replace(const char *path, const void *data, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = sr_malloc(plen + 5);
	if (!tmp)
		return sr_err(SITEREC_ENOMEM, "out of memory");
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	int rc;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot create %s", tmp);
		goto out;
	}
	rc = sr_pwrite_full(fd, data, len, 0);
	if (rc == 0 && fsync(fd) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "fsync of %s failed", tmp);
	}
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0) {
		int e = errno;
		rc = sr_err_os(sr_errno_code(e), e, "cannot rename %s over %s", tmp, path);
	}
	if (rc != 0)
		unlink(tmp);
	else
		rc = sr_fsync_dir_of(path);
out:
	sr_free(tmp);
	return rc;
}

int sr_file_read_all(const char *path, size_t max_len, void **data_out, size_t *len_out)
{
	*data_out = NULL;
	*len_out = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return sr_err_os(sr_errno_code(e), e, "cannot open %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return sr_err_os(SITEREC_EIO, e, "cannot stat %s", path);
	}
	if ((uint64_t)st.st_size > max_len) {
		close(fd);
		return sr_err(SITEREC_ECORRUPT, "%s is %lld bytes, more than the %zu expected", path,
		              (long long)st.st_size, max_len);
	}
	size_t len = (size_t)st.st_size;
	void *buf = sr_malloc(len);
	if (!buf) {
		close(fd);
		return sr_err(SITEREC_ENOMEM, "out of memory reading %s", path);
	}
	int rc = sr_pread_full(fd, buf, len, 0);
	close(fd);
	if (rc) {
		sr_free(buf);
		return rc;
	}
	*data_out = buf;
	*len_out = len;
	return 0;
}

int sr_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len && ((uintptr_t)p & 7)) {
		if (*p)
			return 0;
		p++;
		len--;
	}
	/* OR 64 bytes at a time: branch once per cache line */
	while (len >= 64) {
		const uint64_t *w = (const uint64_t *)(const void *)p;
		if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
			return 0;
		p += 64;
		len -= 64;
	}
	while (len) {
		if (*p)
			return 0;
		p++;
		len--;
	}
	return 1;
}
