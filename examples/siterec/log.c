/* siterec log info|verify|apply|coalesce: thin wrappers over dlog.h. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Options carrying the key from SITEREC_LOG_KEY, if set. */
static int key_opts(siterec_dlog_options *o, uint8_t key[32])
{
	siterec_dlog_options_init(o, SITEREC_DLOG_OPTIONS_VERSION);
	int k = cli_env_key(key);
	if (k < 0)
		return -1;
	if (k) {
		o->key = key;
		o->key_size = SITEREC_DLOG_KEY_SIZE;
	}
	return 0;
}

static void print_info(const siterec_dlog_info *in)
{
	printf("format version  %u\n", in->format_version);
	printf("disk size       %llu\n", (unsigned long long)in->disk_size);
	printf("disk id         ");
	for (int i = 0; i < 16; i++)
		printf("%02x", in->disk_id[i]);
	printf("\nblock size      %u\n", in->block_size);
	printf("encrypted       %s\n", in->encrypted ? "yes" : "no");
	printf("sequence        %llu..%llu\n", (unsigned long long)in->first_seq,
	       (unsigned long long)in->last_seq);
	printf("records         %llu\n", (unsigned long long)in->records);
	printf("data bytes      %llu\n", (unsigned long long)in->data_bytes);
	printf("valid bytes     %llu\n", (unsigned long long)in->file_bytes);
	printf("state           %s\n", in->sealed ? "sealed" : in->torn ? "torn tail" : "open");
}

static int log_info(const char *path, int list)
{
	uint8_t key[32];
	siterec_dlog_options o;
	if (key_opts(&o, key))
		return 2;
	siterec_dlog_reader *r;
	if (siterec_dlog_reader_open(&r, path, &o))
		return cli_fail(path);
	siterec_dlog_record rec;
	int rc;
	while ((rc = siterec_dlog_reader_next(r, &rec)) == 1)
		if (list)
			printf("seq %-10llu offset %-14llu length %-9llu%s\n",
			       (unsigned long long)rec.seq, (unsigned long long)rec.offset,
			       (unsigned long long)rec.length, rec.zero ? " zero" : "");
	if (rc < 0) {
		rc = cli_fail(path);
		siterec_dlog_reader_free(r);
		return rc;
	}
	siterec_dlog_info in = { .version = SITEREC_DLOG_INFO_VERSION };
	siterec_dlog_reader_info(r, &in);
	print_info(&in);
	siterec_dlog_reader_free(r);
	return 0;
}

static int log_verify(const char *path)
{
	uint8_t key[32];
	siterec_dlog_options o;
	if (key_opts(&o, key))
		return 2;
	siterec_dlog_info in = { .version = SITEREC_DLOG_INFO_VERSION };
	int rc = siterec_dlog_verify(path, &o, &in);
	if (rc == SITEREC_ETRUNCATED) {
		printf("%s: torn tail after %llu whole records (%llu valid bytes)\n", path,
		       (unsigned long long)in.records, (unsigned long long)in.file_bytes);
		return 1;
	}
	if (rc)
		return cli_fail(path);
	printf("%s: ok, %llu records, %s\n", path, (unsigned long long)in.records,
	       in.sealed ? "sealed" : "open");
	return 0;
}

static int log_apply(const char *path, const char *image, uint32_t flags)
{
	uint8_t key[32];
	siterec_dlog_options o;
	if (key_opts(&o, key))
		return 2;
	int fd = open(image, O_RDWR);
	if (fd < 0) {
		perror(image);
		return 2;
	}
	uint64_t seq = 0;
	int rc = siterec_dlog_apply_fd(path, &o, flags, fd, &seq);
	close(fd);
	if (rc)
		return cli_fail(path);
	printf("applied %s to %s up to sequence %llu\n", path, image, (unsigned long long)seq);
	return 0;
}

static int log_coalesce(const char *out, int n, char **inputs)
{
	uint8_t key[32];
	siterec_dlog_options o;
	if (key_opts(&o, key))
		return 2;
	if (siterec_dlog_coalesce((const char *const *)inputs, (size_t)n, out, &o, &o))
		return cli_fail(out);
	return log_info(out, 0);
}

int cmd_log(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "info"))
		return log_info(argv[2], argc > 3 && !strcmp(argv[3], "--records"));
	if (argc == 3 && !strcmp(argv[1], "verify"))
		return log_verify(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "apply"))
		return log_apply(argv[2], argv[3], 0);
	/* the active log of a writer that crashed: its whole records up to the tear */
	if (argc == 5 && !strcmp(argv[1], "apply") && !strcmp(argv[4], "--allow-torn"))
		return log_apply(argv[2], argv[3], SITEREC_DLOG_APPLY_ALLOW_TORN);
	if (argc >= 4 && !strcmp(argv[1], "coalesce"))
		return log_coalesce(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: siterec log info LOG [--records] | verify LOG | apply LOG IMAGE [--allow-torn] | "
	                "coalesce OUT LOG...\n");
	return 2;
}
