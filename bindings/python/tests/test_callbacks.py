"""Python callables as callbacks: results, exceptions carried back to the caller,
non-zero returns aborting with SITEREC_EABORTED."""
import random
import unittest

import siterec
from siterec import errors
from support import tmpdir


class Boom(Exception):
    pass


class Callbacks(unittest.TestCase):
    def setUp(self):
        self.dir = tmpdir(self)
        self.store = siterec.Store(f"file://{self.dir}/target", create=True)
        self.addCleanup(self.store.close)
        self.data = random.Random(1).randbytes(1 << 20)

    def read(self, length, offset):
        return self.data[offset:offset + length]

    def test_upload_from_python_reader_and_extents(self):
        seen = []
        with siterec.Store(f"file://{self.dir}/target", progress=lambda d, t: seen.append((d, t))) as st:
            stats = st.upload("disk", len(self.data), self.read)
            self.assertEqual(stats.bytes_read, len(self.data))
            self.assertEqual(st.read("disk", 4096, 8192), self.data[8192:12288])
            self.assertTrue(seen)
            self.assertEqual(seen[-1], (len(self.data), len(self.data)))
            ranges = list(st.ranges("disk"))
            self.assertEqual(sum(e.length for e in ranges), len(self.data))
            names = {(e.name, e.kind) for e in st.list()}
            self.assertIn(("disk", "disk"), names)

    def test_progress_exception_propagates(self):
        raised = []

        def progress(done, total):
            if not raised:
                raised.append(done)
                raise Boom("stop here")
        with siterec.Store(f"file://{self.dir}/target", progress=progress) as st:
            with self.assertRaises(Boom) as cm:
                st.upload("disk", len(self.data), self.read)
            cause = cm.exception.__cause__
            self.assertIsInstance(cause, siterec.AbortedError)
            self.assertEqual(cause.code, errors.EABORTED)
            # the upload can be resumed afterwards: the exception left nothing pending
            stats = st.upload("disk", len(self.data), self.read, resume=True)
            self.assertFalse(stats.already_complete)
            self.assertEqual(st.read("disk", len(self.data)), self.data)

    def test_progress_returning_nonzero_cancels(self):
        with siterec.Store(f"file://{self.dir}/target", progress=lambda d, t: 5) as st:
            with self.assertRaises(siterec.AbortedError) as cm:
                st.upload("disk", len(self.data), self.read)
            self.assertEqual(cm.exception.code, -13)
            self.assertEqual(cm.exception.callback_code, 5)

    def test_read_callback_exception_and_short_read(self):
        def bad(length, offset):
            raise KeyError("no such block")
        with self.assertRaises(KeyError):
            self.store.upload("d1", 65536, bad)
        with self.assertRaises(ValueError) as cm:
            self.store.upload("d2", 65536, lambda n, off: b"short")
        self.assertIn("5 bytes", str(cm.exception))

    def test_tracker_extents(self):
        with siterec.Tracker(1 << 20, block_size=4096) as t:
            t.mark(0, 100)
            t.mark(8192, 8192)
            t.mark(4096, 1)
            self.assertEqual(t.switch(), 1)
            self.assertEqual(list(t.frozen()), [siterec.Extent(0, 16384)])
            t.mark(65536, 512)
            self.assertEqual(list(t.dirty()), [siterec.Extent(65536, 4096)])
            self.assertTrue(t.stats().has_frozen)
            t.commit()
            self.assertFalse(t.stats().has_frozen)

    def test_journal_write_callback_exception(self):
        calls = []

        def write(data, offset):
            calls.append(offset)
            if offset == 4096:
                raise Boom("disk full")
        j = siterec.Journal(self.dir / "j", [siterec.JournalDisk("os", 1 << 20, write)],
                            writer=True, create=True)
        with j:
            j.write(0, b"\0" * 512, 0)
            with self.assertRaises(Boom):
                j.write(0, b"\1" * 512, 4096)
            j.write(0, b"\2" * 512, 8192)   # nothing left pending from the failed write
            self.assertEqual(calls, [0, 4096, 8192])

    def test_dlog_apply_writer(self):
        path = self.dir / "a.dlog"
        with siterec.DeltaLog.create(path, 1 << 20) as log:
            log.append(512, b"\7" * 1024)
            log.append_zero(4096, 512)
            log.seal()
        got = []
        self.assertEqual(siterec.dlog_apply(path, lambda d, off: got.append((off, d))), 2)
        self.assertEqual(got[0], (512, b"\7" * 1024))
        with self.assertRaises(Boom):
            siterec.dlog_apply(path, lambda d, off: (_ for _ in ()).throw(Boom()))


if __name__ == "__main__":
    unittest.main()
