"""The whole path through the binding, on file:// and on Azurite: protect -> replicate
(the VM writing through its journal) -> test failover + cleanup -> unplanned failover ->
change of point -> commit -> failback (minimize downtime, the failed-over VM journaled) ->
commit -> reprotect -> resync -> replicate again. Also a start callback that fails."""
import os
import random
import unittest

import siterec
from siterec import FailoverType, Phase, PointChoice
from support import Poller, RawDisk, azurite, random_writes, tmpdir

MiB = 1 << 20
IDS = ["os", "data"]
SIZES = [2 * MiB, 4 * MiB]


class Hypervisor:
    """The callbacks: VMs are marker files in a directory."""

    def __init__(self, directory, on_shutdown=None):
        self.dir = directory
        self.started = []
        self.removed = []
        self.shutdowns = []
        self.on_shutdown = on_shutdown
        self.fail_start = None

    def marker(self, vm):
        suffix = "@onprem" if vm.type == FailoverType.FAILBACK else ""
        return self.dir / (vm.name + suffix)

    def start(self, vm):
        if self.fail_start is not None:
            return self.fail_start
        self.started.append(vm)
        self.marker(vm).touch()

    def remove(self, vm):
        self.removed.append(vm.name)
        self.marker(vm).unlink(missing_ok=True)

    def shutdown(self, vm_id):
        self.shutdowns.append(vm_id)
        if self.on_shutdown:
            self.on_shutdown(vm_id)


class FailedOverVM:
    """The VM running on the failover's disks, writing through its own journal."""

    def __init__(self, flow, jdir):
        self.flow, self.jdir = flow, jdir
        self.disks, self.writers = [], []
        jdisks = []
        for i, d in enumerate(IDS):
            if flow.azure:
                w = flow.store.writer(f"vm-1/failover-disks/{d}")
                self.writers.append(w)
                jdisks.append(siterec.JournalDisk(d, SIZES[i], self._blob_write(w)))
            else:
                disk = siterec.Disk(flow.out / f"{d}.vhd", write=True)
                self.disks.append(disk)
                jdisks.append(siterec.JournalDisk(d, SIZES[i], disk.write))
        self.journal = siterec.Journal(jdir, jdisks, writer=True, create=True)
        self.poller = Poller(self.journal)

    @staticmethod
    def _blob_write(w):
        def write(data, offset):
            w.write(data, offset)
            w.finish()
        return write

    def stop(self):
        if self.journal is None:
            return
        self.poller.stop()
        self.journal.close()
        self.journal = None
        for w in self.writers:
            w.finish()
            w.close()
        for d in self.disks:
            d.close()


class FlowBase:
    azure = False

    def open_store(self, name):
        if self.azure:
            return azurite().store(name)
        return siterec.Store(f"file://{self.dir}/target", create=True)

    def setUp(self):
        self.dir = tmpdir(self)
        self.rng = random.Random(7)
        self.out = self.dir / "out"
        (self.dir / "hv").mkdir()
        self.state_dir = self.dir / "state"
        self.container = f"flow{os.getpid()}{'az' if self.azure else ''}{self.id().split('.')[-1][-6:].lower()}"
        self.store = self.open_store(self.container.replace("_", ""))
        self.addCleanup(self.store.close)
        self.src = [RawDisk(self.dir / f"{d}.raw", SIZES[i], 10 + i) for i, d in enumerate(IDS)]
        for s in self.src:
            self.addCleanup(s.close)
        self.vm = siterec.VM("vm-1", name="web", generation=2, disks=[
            siterec.VMDisk("os", self.src[0].path, siterec.DiskRole.OS),
            siterec.VMDisk("data", self.src[1].path)])
        self.journal = None

    # ---- the protected VM
    def open_journal(self):
        disks = [siterec.JournalDisk(d, SIZES[i], self.src[i].write) for i, d in enumerate(IDS)]
        self.journal = siterec.Journal(self.state_dir / "journal", disks, writer=True)
        self.poller = Poller(self.journal)

    def close_journal(self):
        if self.journal is not None:
            self.poller.stop()
            self.journal.close()
            self.journal = None

    def writes(self, n):
        random_writes(self.journal, SIZES, n, self.rng)

    def sources(self):
        return [s.content() for s in self.src]

    def request(self, type_, point):
        return siterec.FailoverRequest(
            type=type_, point=point, disk_dir=None if self.azure else self.out,
            nics=[siterec.Nic("corp", "back", "10.0.0.5")],
            networks=[siterec.NetworkMap("corp", "vnet-dr", ["front", "back"])],
            test_network="vnet-drill" if type_ == FailoverType.TEST else None, os_type="Linux")

    def outputs(self, test):
        got = []
        for i, d in enumerate(IDS):
            if self.azure:
                got.append(self.store.read(f"vm-1/{'test-disks' if test else 'failover-disks'}/{d}", SIZES[i]))
            else:
                p = self.out / f"{d}{'-test' if test else ''}.vhd"
                self.assertEqual(p.stat().st_size, SIZES[i] + 512)   # a fixed VHD: data + footer
                with open(p, "rb") as f:
                    got.append(f.read(SIZES[i]))
        return got

    def outputs_gone(self, test):
        for d in IDS:
            if self.azure:
                with self.assertRaises(siterec.NotFoundError):
                    self.store.disk_size(f"vm-1/{'test-disks' if test else 'failover-disks'}/{d}")
            else:
                self.assertFalse((self.out / f"{d}{'-test' if test else ''}.vhd").exists())

    def assertSame(self, got, want, what):
        for i, d in enumerate(IDS):
            self.assertTrue(got[i] == want[i], f"{what}: disk {d} differs")

    # ---- the path
    def test_whole_path(self):
        repl = siterec.Replication(self.vm, self.store, self.state_dir, protect=True, interval_s=30)
        self.open_journal()
        self.addCleanup(self.close_journal)
        repl.initial()
        self.assertEqual(repl.status().state, siterec.ReplicationState.PROTECTED)
        self.writes(30)
        p1 = repl.cycle()
        c1 = self.sources()
        self.writes(30)
        p2 = repl.cycle()
        c2 = self.sources()
        self.assertGreater(p2.point_id, p1.point_id)
        self.assertGreater(p2.bytes_shipped, 0)
        with siterec.Catalog(self.store, "vm-1") as cat:
            points = list(cat)
            self.assertEqual(points[-1].id, p2.point_id)
            self.assertEqual(cat.select(siterec.Select.LATEST), p2.point_id)
            self.assertEqual(cat.read(p2.point_id, 1, SIZES[1]), c2[1])
            restored = bytearray(SIZES[0])

            def put(data, offset):
                restored[offset:offset + len(data)] = data
            cat.restore(p1.point_id, 0, put)
            if self.azure:   # the replica is a fixed VHD: its footer is restored too
                self.assertEqual(len(restored), SIZES[0] + 512)
            self.assertTrue(bytes(restored[:SIZES[0]]) == c1[0])

        hv = Hypervisor(self.dir / "hv")
        fo = siterec.Failover(self.store, "vm-1", start=hv.start, remove=hv.remove, shutdown=hv.shutdown)
        self.addCleanup(fo.close)

        # a drill beside replication
        fo.test(self.request(FailoverType.TEST, PointChoice.latest()))
        vm = hv.started[-1]
        self.assertEqual((vm.name, vm.isolated, vm.generation, vm.point_id), ("web-test", True, 1, p2.point_id))
        self.assertEqual(vm.nics[0].network, "vnet-drill")
        self.assertEqual(fo.status(FailoverType.TEST).phase, Phase.FAILED_OVER)
        self.assertSame(self.outputs(True), c2, "test failover")
        if self.azure:
            self.assertIn("/vm-1/test-disks/os", fo.arm_template(FailoverType.TEST))
        with self.assertRaises(siterec.ExistsError):
            fo.test(self.request(FailoverType.TEST, PointChoice.latest()))
        self.writes(10)
        p3 = repl.cycle()   # replication goes on undisturbed
        c3 = self.sources()
        self.assertGreater(p3.point_id, p2.point_id)
        fo.test_cleanup()
        self.assertIn("web-test", hv.removed)
        self.outputs_gone(True)
        self.assertEqual(fo.status(FailoverType.TEST).phase, Phase.NONE)

        # the disaster: unplanned failover to an older point, changed to the latest, committed
        fo.run(self.request(FailoverType.UNPLANNED, PointChoice.by_id(p1.point_id)))
        self.assertEqual((hv.started[-1].name, hv.started[-1].isolated), ("web", False))
        self.assertEqual(hv.started[-1].nics[0], siterec.Nic("vnet-dr", "back", "10.0.0.5"))
        self.assertSame(self.outputs(False), c1, "failover to p1")
        with self.assertRaises(siterec.ConflictError):   # the old primary is fenced
            self.writes(5)
            repl.cycle()
        repl.close()
        self.close_journal()   # the primary site is down
        fo.change_point(PointChoice.latest())
        self.assertEqual(hv.started[-1].point_id, p3.point_id)
        self.assertSame(self.outputs(False), c3, "failover changed to p3")
        fo.commit()
        self.assertEqual(fo.status(FailoverType.UNPLANNED).phase, Phase.COMMITTED)
        with siterec.Catalog(self.store, "vm-1") as cat:
            self.assertEqual([p.id for p in cat], [p3.point_id])
        with self.assertRaises(siterec.StateError):
            fo.cancel()

        # the failed-over VM works; failback with minimize downtime
        side = FailedOverVM(self, self.dir / "fojournal")
        self.addCleanup(side.stop)
        random_writes(side.journal, SIZES, 60, random.Random(3))
        hv.on_shutdown = lambda vm_id: side.stop() if vm_id != "vm-1" else None
        fo.failback(siterec.FailbackRequest({"data": self.src[1].path, "os": self.src[0].path},
                                            journal_dir=side.jdir))
        self.assertEqual(hv.shutdowns, ["web"])
        failed_over = self.outputs(False)
        self.assertSame(self.sources(), failed_over, "failback")
        vm = hv.started[-1]
        self.assertEqual((vm.type, vm.generation, vm.firmware), (FailoverType.FAILBACK, 2, 2))
        st = fo.status(FailoverType.FAILBACK)
        self.assertEqual(st.phase, Phase.FAILED_OVER)
        self.assertGreater(st.bytes_differing, 0)
        self.assertLess(st.bytes_differing, sum(SIZES))
        with self.assertRaises(siterec.StateError):
            fo.reprotect()
        fo.failback_commit()
        self.outputs_gone(False)

        # reprotect: replication takes up again, resync writes only what differs
        fo.reprotect()
        self.assertEqual(fo.status(FailoverType.UNPLANNED).phase, Phase.NONE)
        repl = siterec.Replication(self.vm, self.store, self.state_dir, interval_s=30)
        self.addCleanup(repl.close)
        self.open_journal()
        self.assertEqual(repl.status().state, siterec.ReplicationState.RESYNC)
        res = repl.resync()
        self.assertGreater(res.bytes_shipped, 0)
        self.assertLess(res.bytes_shipped, sum(SIZES))
        self.writes(20)
        p4 = repl.cycle()
        c4 = self.sources()
        with siterec.Catalog(self.store, "vm-1") as cat:
            self.assertEqual(cat[-1].id, p4.point_id)
            for i in range(len(IDS)):
                self.assertTrue(cat.read(p4.point_id, i, SIZES[i]) == c4[i], f"replica {IDS[i]} after resync")
        self.assertEqual(repl.status().state, siterec.ReplicationState.PROTECTED)

    def test_failing_start_callback(self):
        repl = siterec.Replication(self.vm, self.store, self.state_dir, protect=True, interval_s=30)
        self.addCleanup(repl.close)
        self.open_journal()
        self.addCleanup(self.close_journal)
        repl.initial()
        hv = Hypervisor(self.dir / "hv")
        hv.fail_start = 7
        with siterec.Failover(self.store, "vm-1", start=hv.start, remove=hv.remove) as fo:
            with self.assertRaises(siterec.SiteRecError) as cm:
                fo.test(self.request(FailoverType.TEST, PointChoice.latest()))
            self.assertEqual(cm.exception.code, siterec.errors.EABORTED)
            self.assertEqual(cm.exception.callback_code, 7)
            # the operation stays recorded; an exception raised by the callback is re-raised
            hv.fail_start = None
            boom = RuntimeError("hypervisor unreachable")

            def start(vm):
                raise boom
            with siterec.Failover(self.store, "vm-1", start=start, remove=hv.remove) as fo2:
                with self.assertRaises(RuntimeError) as cm2:
                    fo2.resume()
                self.assertIs(cm2.exception, boom)
                self.assertEqual(cm2.exception.__cause__.code, -13)
            fo.resume()
            self.assertEqual(fo.status(FailoverType.TEST).phase, Phase.FAILED_OVER)
            fo.test_cleanup()


class FileFlow(FlowBase, unittest.TestCase):
    azure = False


class AzureFlow(FlowBase, unittest.TestCase):
    azure = True


if __name__ == "__main__":
    unittest.main()
