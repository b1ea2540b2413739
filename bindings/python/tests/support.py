"""Shared fixtures of the binding's tests (stdlib only)."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path
from typing import List, Optional, Tuple

HERE = Path(__file__).resolve().parent
try:
    import siterec  # noqa: F401
except ImportError:   # run from the source tree without PYTHONPATH
    sys.path.insert(0, str(HERE.parent))
    import siterec  # noqa: F401

SOURCE_ROOT = Path(os.environ.get("SITEREC_SOURCE_ROOT") or HERE.parents[2])
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")   # tests/unit/helpers.h TH_AZURITE_KEY


def tmpdir(case: unittest.TestCase) -> Path:
    d = Path(tempfile.mkdtemp(prefix="siterec-py-"))
    case.addCleanup(shutil.rmtree, d, True)
    return d


class Azurite:
    """scripts/azurite.sh start DIR -> "PORT PID"; stopped by PID only."""

    def __init__(self, data_dir: Path) -> None:
        script = SOURCE_ROOT / "scripts" / "azurite.sh"
        out = subprocess.run([str(script), "start", str(data_dir)], check=True, capture_output=True,
                             text=True, timeout=60)
        port, pid = out.stdout.split()
        self.port, self.pid = int(port), int(pid)

    def url(self, container: str) -> str:
        return f"http://127.0.0.1:{self.port}/devstoreaccount1/{container}"

    def store(self, container: str, **kw) -> "siterec.Store":
        return siterec.Store(self.url(container), account_key=AZURITE_KEY, allow_http=True,
                             create=True, max_retries=2, **kw)

    def stop(self) -> None:
        subprocess.run([str(SOURCE_ROOT / "scripts" / "azurite.sh"), "stop", str(self.pid)],
                       check=False, timeout=60)


_azurite: Optional[Azurite] = None
_azurite_dir: Optional[str] = None
_azurite_lock = threading.Lock()


def azurite() -> Azurite:
    """One Azurite for the whole test run (started on first use, stopped at exit)."""
    global _azurite, _azurite_dir
    with _azurite_lock:
        if _azurite is None:
            import atexit
            _azurite_dir = tempfile.mkdtemp(prefix="siterec-py-az-")
            _azurite = Azurite(Path(_azurite_dir))
            atexit.register(_stop_azurite)
        return _azurite


def _stop_azurite() -> None:
    if _azurite is not None:
        _azurite.stop()
    if _azurite_dir:
        shutil.rmtree(_azurite_dir, True)


class Poller:
    """The writer's idle loop: journal.poll() until stopped, so that a replicator's rotation
    request (another handle of this process) is served while the VM does not write."""

    def __init__(self, journal: "siterec.Journal") -> None:
        self.journal = journal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.journal.poll()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RawDisk:
    """A raw image file of the VM, written through its journal."""

    def __init__(self, path: Path, size: int, seed: int) -> None:
        self.path, self.size = path, size
        with open(path, "wb") as f:
            f.truncate(size)
            f.write(random.Random(seed).randbytes(256 * 1024))
        self.fd = os.open(path, os.O_RDWR)

    def write(self, data: bytes, offset: int) -> None:
        os.pwrite(self.fd, data, offset)

    def content(self) -> bytes:
        return os.pread(self.fd, self.size, 0)

    def close(self) -> None:
        os.close(self.fd)


def random_writes(journal: "siterec.Journal", sizes: List[int], n: int, rng: random.Random) -> None:
    """n writes of 512 B .. 32 KiB at random 512-aligned offsets of random disks."""
    for _ in range(n):
        d = rng.randrange(len(sizes))
        length = 512 * rng.randint(1, 64)
        offset = 512 * rng.randrange((sizes[d] - length) // 512 + 1)
        journal.write(d, rng.randbytes(length), offset)
