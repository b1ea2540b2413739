"""Negative codes become SiteRecError subclasses carrying siterec_error_last()'s details."""
import unittest

import siterec
from siterec import errors
from support import azurite, tmpdir


class ErrorMapping(unittest.TestCase):
    def setUp(self):
        self.dir = tmpdir(self)
        self.store = siterec.Store(f"file://{self.dir}/target", create=True)
        self.addCleanup(self.store.close)

    def test_missing_document_is_not_found(self):
        with self.assertRaises(siterec.NotFoundError) as cm:
            self.store.doc_get("vm-1/nothing-here")
        e = cm.exception
        self.assertEqual(e.code, -5)
        self.assertEqual(e.code, errors.ENOTFOUND)
        self.assertIsInstance(e, siterec.SiteRecError)
        self.assertIsInstance(e, LookupError)
        self.assertTrue(e.message)
        self.assertEqual(e.function, "siterec_store_doc_get")
        self.assertIn(e.message, str(e))
        self.assertEqual(e.http_status, 0)

    def test_missing_disk_read_is_not_found(self):
        with self.assertRaises(siterec.NotFoundError):
            self.store.read("vm-1/disks/none", 512, 0)

    def test_bad_argument_is_invalid_argument(self):
        with self.assertRaises(siterec.InvalidArgumentError) as cm:
            siterec.Tracker(0)
        self.assertEqual(cm.exception.code, errors.EINVAL)
        self.assertIsInstance(cm.exception, ValueError)
        with self.assertRaises(siterec.InvalidArgumentError):
            self.store.doc_put("../escape", b"x")
        with self.assertRaises(siterec.InvalidArgumentError):
            siterec.Store("file://relative/dir")

    def test_conflict_and_exists(self):
        etag = self.store.doc_put("doc", b"one", if_match="")
        with self.assertRaises(siterec.ConflictError) as cm:
            self.store.doc_put("doc", b"two", if_match="")   # create-only
        self.assertEqual(cm.exception.code, errors.ECONFLICT)
        self.assertEqual(self.store.doc_get("doc"), siterec.Document(b"one", etag))
        self.store.disk_create("d", 65536)
        with self.assertRaises(siterec.ExistsError):
            self.store.disk_create("d", 65536)

    def test_lease_error_is_a_conflict(self):
        self.store.disk_create("d", 65536)
        lease = self.store.lease_acquire("d", 0)
        with self.assertRaises(siterec.LeaseError) as cm:
            self.store.lease_acquire("d", 0)
        self.assertIsInstance(cm.exception, siterec.ConflictError)
        self.assertEqual(cm.exception.code, errors.ELEASE)
        self.store.lease_release("d", lease)

    def test_corrupt_and_truncated_logs(self):
        path = self.dir / "a.dlog"
        with siterec.DeltaLog.create(path, 1 << 20) as log:
            log.append(0, b"\1" * 4096)
            log.append(8192, b"\2" * 4096)
            log.sync()
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size - 100)   # a torn tail
        with self.assertRaises(siterec.TruncatedError) as cm:
            siterec.dlog_verify(path)
        self.assertIsInstance(cm.exception, siterec.CorruptError)
        self.assertEqual(cm.exception.code, errors.ETRUNCATED)
        with open(path, "r+b") as f:
            f.write(b"garbage!")   # the header
        with self.assertRaises(siterec.CorruptError) as cm:
            siterec.dlog_verify(path)
        self.assertEqual(cm.exception.code, errors.ECORRUPT)

    def test_auth_error(self):
        path = self.dir / "enc.dlog"
        with siterec.DeltaLog.create(path, 1 << 20, key=b"k" * 32) as log:
            log.append(0, b"\1" * 512)
            log.seal()
        with self.assertRaises(siterec.AuthError) as cm:
            siterec.DeltaLogReader(path, key=b"x" * 32)
        self.assertEqual(cm.exception.code, errors.EAUTH)
        with siterec.DeltaLogReader(path, key=b"k" * 32) as r:
            self.assertEqual([(x.offset, x.data) for x in r], [(0, b"\1" * 512)])

    def test_every_code_has_a_class(self):
        for code in range(-2, -26, -1):
            cls = errors.error_class(code)
            self.assertIsNot(cls, siterec.SiteRecError, code)
            self.assertNotEqual(siterec.strerror(code), "unknown error")
        self.assertIs(errors.error_class(-1), siterec.SiteRecError)
        self.assertIs(errors.error_class(-999), siterec.SiteRecError)

    def test_closed_handle(self):
        self.store.close()
        self.store.close()   # idempotent
        with self.assertRaises(ValueError):
            self.store.doc_get("x")


class AzureErrors(unittest.TestCase):
    def test_http_status_and_service_code(self):
        st = azurite().store("errors")
        self.addCleanup(st.close)
        with self.assertRaises(siterec.NotFoundError) as cm:
            st.doc_get("vm-1/missing")
        self.assertEqual(cm.exception.code, -5)
        self.assertEqual(cm.exception.http_status, 404)
        self.assertEqual(cm.exception.service_code, "BlobNotFound")
        self.assertIn("HTTP 404", str(cm.exception))

    def test_wrong_key_is_auth(self):
        az = azurite()
        with self.assertRaises(siterec.AuthError) as cm:   # open checks the container
            siterec.Store(az.url("errors-auth"), account_key="QUJD" * 22, allow_http=True,
                          max_retries=1)
        self.assertEqual(cm.exception.code, -11)
        self.assertEqual(cm.exception.http_status, 403)
        self.assertNotIn("QUJD", str(cm.exception))   # the key never reaches a message

if __name__ == "__main__":
    unittest.main()
