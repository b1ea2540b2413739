"""The deployment planner through Python: known answers, a tracker-recorded profile,
the reports, errors."""
import os
import tempfile
import unittest

import siterec

GiB = 1 << 30


class PlannerTest(unittest.TestCase):
    def test_constant_profile(self):
        # 2 disks x 1e6 B/s for 2 h: planned 2.6e6 B/s = 20.8 Mbps for every RPO
        with siterec.Planner(bandwidth_mbps=100, interval_s=60) as p:
            for k in range(120):
                for d in ("os", "data"):
                    p.add_sample(1700000000 + 60 * k, "vm1", d, 10 * GiB, 60000000)
            (vm,) = p.vms()
            self.assertEqual(vm.name, "vm1")
            self.assertTrue(vm.fits)
            self.assertEqual(vm.disks, 2)
            self.assertAlmostEqual(vm.churn_mean, 2e6)
            self.assertAlmostEqual(vm.churn_planned, 2.6e6)
            for rpo in (15, 30, 60):
                self.assertAlmostEqual(vm.rpo_mbps[rpo][100], 20.8)
            self.assertEqual(vm.replica_bytes, 20 * GiB)
            self.assertEqual(vm.copy_frequency_s, 30)
            self.assertEqual(p.totals().name, "*")
            report = p.report_json()
            self.assertIn("vms", report)
            self.assertIn("<svg", p.report_html())

    def test_tracker_recorded(self):
        with siterec.Tracker(GiB) as t, siterec.Planner(interval_s=60) as p:
            t.mark(0, 4096)
            t.mark(1 << 20, 4096)
            p.record_tracker(1700000060, "vm1", "os", t)
            p.record_tracker(1700000120, "vm1", "os", t)
            (vm,) = p.vms()
            self.assertAlmostEqual(vm.churn_peak, 8192 / 60)
            self.assertAlmostEqual(vm.churn_mean, 8192 / 2 / 60)

    def test_errors(self):
        with siterec.Planner() as p:
            with self.assertRaises(siterec.InvalidArgumentError):
                p.add_sample(1700000000, "bad,vm", "os", GiB, 1)
            with tempfile.TemporaryDirectory() as d:
                bad = os.path.join(d, "churn.csv")
                with open(bad, "w") as f:
                    f.write("timestamp,vm,disk,disk_size_bytes,bytes_written\n1700000000,vm1,os,x,1\n")
                with self.assertRaises(siterec.InvalidArgumentError) as e:
                    p.load_csv(bad)
                self.assertIn("churn.csv:2:", e.exception.message)
                with self.assertRaises(siterec.NotFoundError):
                    p.load_csv(os.path.join(d, "none.csv"))


if __name__ == "__main__":
    unittest.main()
