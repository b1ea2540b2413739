/** @file
 * libsiterec — disaster-recovery replication for virtual machine disks.
 * The umbrella header: includes every layer. See README.md and doc/api.md.
 */
#ifndef SITEREC_H
#define SITEREC_H

#include "common.h"
#include "tracker.h"
#include "dlog.h"
#include "disk.h"
#include "store.h"
#include "rp.h"
#include "journal.h"
#include "replication.h"
#include "failover.h"
#include "planner.h"

#endif /* SITEREC_H */
