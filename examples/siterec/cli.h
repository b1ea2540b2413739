/* The siterec command: shared declarations of the subcommand files. */
#ifndef SITEREC_CLI_H
#define SITEREC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <siterec/siterec.h>

int cmd_demo(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_disk(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_workload(int argc, char **argv);
int cmd_points(int argc, char **argv);
/* protect, replicate, status, verify (argv[0] names which) */
int cmd_replication(int argc, char **argv);

/* failover, cleanup-test, change-point, commit, cancel, resume, failover-status */
int cmd_failover(int argc, char **argv);
/* plan run|resume|status: recovery plans (exit 3: paused at a manual action) */
int cmd_plan(int argc, char **argv);
/* planner --csv FILE ...: the deployment planner over a churn profile */
int cmd_planner(int argc, char **argv);
/* Open the protection recorded by `siterec protect` in state_dir (url, ca: NULL
 * or overrides): its store, replication handle and VM id. 0, or prints and 2. */
int cli_repl_open(const char *state_dir, const char *url, const char *ca, siterec_store **st,
                  siterec_replication **r, char *vm_id, size_t cap);

/* Record that disk id of the protection in state_dir is now the image at path
 * (a failback to an alternate location). 0, or prints and 2. */
int cli_repl_repath(const char *state_dir, const char *id, const char *path);

/* The host side of the failover and plan commands: a target VM is a file
 * DIR/NAME.vm.json (DIR NULL: the current directory), its ARM template
 * DIR/NAME.arm.json. cli_vm_files gives the paths; cli_vm_files_write also
 * writes them: 0, or -1 with errno. */
void cli_vm_files(const char *dir, const char *name, char *vm_json, char *arm, size_t cap);
int cli_vm_files_write(const char *dir, const siterec_failover_vm *vm, char *vm_json, char *arm, size_t cap);

/* Print "siterec: what: <last error>" to stderr and return exit status 2. */
int cli_fail(const char *what);
/* Parse a 64-character hex key into 32 bytes; 0 on success. */
int cli_parse_key(const char *hex, uint8_t key[32]);
/* Key from the environment variable SITEREC_LOG_KEY (hex), if set: returns 1 and fills key. */
int cli_env_key(uint8_t key[32]);
/* Strict unsigned decimal (no sign, no junk): 0 on success. */
int cli_parse_u64(const char *s, uint64_t *out);
double cli_now(void);
/* ms since the epoch as ISO-8601 UTC with milliseconds. */
void cli_iso_time(int64_t ms, char *out, size_t cap);
/* "crash", "app" or "unknown" for a siterec_rp_kind. */
const char *cli_rp_kind_name(uint32_t kind);
/* Open a storage target with credentials from SITEREC_ACCOUNT_KEY / SITEREC_SAS and
 * ca_file (may be NULL); on failure prints the error and returns 2, else 0. */
int cli_open_store(siterec_store **st, const char *url, const char *ca_file, uint32_t flags,
                   siterec_progress_fn progress, void *payload);

#endif
