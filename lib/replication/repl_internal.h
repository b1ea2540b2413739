/* What the failover layer reads and changes in a VM's replication state
 * document without a replication handle (it may run on another host). */
#ifndef SITEREC_REPL_INTERNAL_H
#define SITEREC_REPL_INTERNAL_H

#include "siterec/replication.h"
#include "siterec/store.h"

typedef struct sr_repl_disk {
	char id[72];
	char replica[160];      /* "VM/disks/DISK" */
	uint64_t size;          /* protected size (a multiple of 512) */
	uint32_t role;          /* siterec_vm_disk_role */
	char base[SITEREC_STORE_ID_MAX];  /* its snapshot holding applied_point's content, or "" */
} sr_repl_disk;

typedef struct sr_repl_view {
	uint32_t state;         /* siterec_replication_state */
	uint64_t generation;
	uint32_t vm_generation; /* 1 or 2 */
	char vm_name[256];
	char reason[256];
	uint64_t applied_point; /* the newest point the replicas hold */
	uint32_t n_disks;       /* protected disks (excluded ones left out), state order */
	sr_repl_disk disks[64];
	char etag[SITEREC_STORE_ETAG_MAX];
} sr_repl_view;

/* Read VM vm_id's replication state document. SITEREC_ENOTFOUND when the VM is
 * not protected there. */
int sr_repl_view_read(siterec_store *st, const char *vm_id, sr_repl_view *v);

/* Move the state to state (reason may be NULL) if the document is still at
 * generation (SITEREC_ECONFLICT otherwise): generation + 1, so a replicator
 * holding the old one fails its next write. */
int sr_repl_view_set_state(siterec_store *st, const char *vm_id, uint64_t generation, uint32_t state,
                           const char *reason);

#endif
