"""The binding declares every function of the public headers, with as many argtypes as
the C declaration has parameters, and exactly the exported symbols of lib/libsiterec.map."""
import ctypes
import re
import unittest

from support import SOURCE_ROOT
from siterec import _c  # noqa: F401  (declares everything)
from siterec._loader import DECLARED


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", " ", re.sub(r"/\*.*?\*/", " ", text, flags=re.S))


def header_functions():
    """name -> (return type, parameter count) of every SITEREC_API declaration."""
    found = {}
    for h in sorted((SOURCE_ROOT / "include" / "siterec").glob("*.h")):
        text = strip_comments(h.read_text())
        for m in re.finditer(r"^SITEREC_API[ \t]+([^;()#]*?)\s*\b(siterec_\w+)\s*\(([^;]*?)\)\s*;",
                             text, re.M | re.S):
            params = " ".join(m.group(3).split())
            # a parameter list of function pointer types written inline would hold commas
            # inside parentheses: count top-level commas only
            depth, count = 0, 0 if params in ("", "void") else 1
            for ch in params:
                depth += ch == "("
                depth -= ch == ")"
                count += ch == "," and depth == 0
            found[m.group(2)] = (" ".join(m.group(1).split()), count)
    return found


def map_globals():
    text = strip_comments((SOURCE_ROOT / "lib" / "libsiterec.map").read_text())
    names = set()
    for block in re.findall(r"global:(.*?)(?:local:|\})", text, re.S):
        names |= set(re.findall(r"\b(siterec_\w+)\s*;", block))
    return names


class Drift(unittest.TestCase):
    def test_headers_parsed(self):
        funcs = header_functions()
        self.assertGreater(len(funcs), 100)
        self.assertEqual(funcs["siterec_error_last"], ("const siterec_error *", 0))
        self.assertEqual(funcs["siterec_store_upload"][1], 8)

    def test_every_header_function_declared_with_its_arity(self):
        funcs = header_functions()
        missing = sorted(set(funcs) - set(DECLARED))
        self.assertEqual(missing, [], "functions of the headers the binding does not declare")
        wrong = {n: (len(DECLARED[n].argtypes), c) for n, (_, c) in funcs.items()
                 if len(DECLARED[n].argtypes) != c}
        self.assertEqual(wrong, {}, "name: (binding argtypes, header parameters)")

    def test_return_types(self):
        for name, (ret, _) in header_functions().items():
            fn = DECLARED[name]
            with self.subTest(name=name):
                if ret == "int":
                    self.assertIs(fn.restype, ctypes.c_int)
                    self.assertIsNotNone(fn.errcheck)
                elif ret == "void":
                    self.assertIsNone(fn.restype)
                elif ret == "uint64_t":
                    self.assertIs(fn.restype, ctypes.c_uint64)
                else:
                    self.assertTrue(ret.endswith("*"), ret)
                    self.assertTrue(fn.restype is ctypes.c_char_p or
                                    issubclass(fn.restype, ctypes._Pointer), (ret, fn.restype))

    def test_declared_set_equals_map_and_headers(self):
        exported = map_globals()
        self.assertGreater(len(exported), 100)
        self.assertEqual(sorted(exported ^ set(DECLARED)), [],
                         "symbols in only one of lib/libsiterec.map and the binding")
        self.assertEqual(sorted(exported ^ set(header_functions())), [],
                         "symbols in only one of lib/libsiterec.map and the headers")


if __name__ == "__main__":
    unittest.main()
