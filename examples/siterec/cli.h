/* The siterec command: shared declarations of the subcommand files. */
#ifndef SITEREC_CLI_H
#define SITEREC_CLI_H

#include <stdint.h>
#include <siterec/siterec.h>

int cmd_demo(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_disk(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_workload(int argc, char **argv);
int cmd_points(int argc, char **argv);

/* Print "siterec: what: <last error>" to stderr and return exit status 2. */
int cli_fail(const char *what);
/* Parse a 64-character hex key into 32 bytes; 0 on success. */
int cli_parse_key(const char *hex, uint8_t key[32]);
/* Key from the environment variable SITEREC_LOG_KEY (hex), if set: returns 1 and fills key. */
int cli_env_key(uint8_t key[32]);
double cli_now(void);
/* Open a storage target with credentials from SITEREC_ACCOUNT_KEY / SITEREC_SAS and
 * ca_file (may be NULL); on failure prints the error and returns 2, else 0. */
int cli_open_store(siterec_store **st, const char *url, const char *ca_file, uint32_t flags,
                   siterec_progress_fn progress, void *payload);

#endif
