/* For the failover layer: a replica snapshot's content written out as
 * siterec_rp_restore() writes a point's (the "latest processed" point is the
 * replicas' base snapshot: no log to apply). */
#ifndef SITEREC_RP_INTERNAL_H
#define SITEREC_RP_INTERNAL_H

#include "siterec/rp.h"

int sr_rp_restore_snapshot(siterec_rp_catalog *cat, const char *disk, const char *snapshot,
                           siterec_write_fn write, void *write_payload, siterec_progress_fn progress,
                           void *progress_payload);

#endif
