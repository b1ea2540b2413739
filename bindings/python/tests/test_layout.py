"""Every ctypes Structure mirrors its C struct: sizes and field offsets equal the pins of
tests/abi/test_layout.c (x86-64 LP64), and every public struct is pinned and mirrored."""
import ctypes
import re
import unittest

from support import SOURCE_ROOT
from siterec import _c


def pins():
    text = (SOURCE_ROOT / "tests" / "abi" / "test_layout.c").read_text()
    sizes = {m[0]: int(m[1]) for m in re.findall(r"\bS\((\w+),\s*(\d+)\)", text)}
    offsets = {(m[0], m[1]): int(m[2]) for m in re.findall(r"\bF\((\w+),\s*(\w+),\s*(\d+)\)", text)}
    return sizes, offsets


class Layout(unittest.TestCase):
    @unittest.skipUnless(ctypes.sizeof(ctypes.c_void_p) == 8, "the pins are LP64 values")
    def test_sizes_and_offsets(self):
        sizes, offsets = pins()
        self.assertGreater(len(sizes), 30)
        for name, size in sizes.items():
            with self.subTest(struct=name):
                self.assertIn(name, _c.STRUCTS, "pinned struct without a ctypes mirror")
                self.assertEqual(ctypes.sizeof(_c.STRUCTS[name]), size)
        for (name, fld), off in offsets.items():
            with self.subTest(field=f"{name}.{fld}"):
                self.assertEqual(getattr(_c.STRUCTS[name], fld).offset, off)

    def test_every_mirror_pinned_field_by_field(self):
        sizes, offsets = pins()
        self.assertEqual(sorted(set(_c.STRUCTS) - set(sizes)), [], "mirrors not pinned")
        for name, cls in _c.STRUCTS.items():
            with self.subTest(struct=name):
                mirrored = [f[0] for f in cls._fields_]
                pinned = [f for (s, f) in offsets if s == name]
                self.assertEqual(sorted(mirrored), sorted(pinned))

    def test_versioned_structs_start_with_version(self):
        for name, cls in _c.STRUCTS.items():
            first = cls._fields_[0]
            if first[0] == "version":
                self.assertIs(first[1], ctypes.c_uint, name)


if __name__ == "__main__":
    unittest.main()
