"""Unit tests of the static checker (wasm/checker). Run: python3 -m unittest discover -s test/python -v"""
import collections
import glob
import json
import os
import random
import sys
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.environ.get("NBS_CHECKER_PARENT") or os.path.join(ROOT, "wasm"))

import checker  # noqa: E402
from checker import magics  # noqa: E402
from checker.rules.files import outside  # noqa: E402

CORPUS = os.environ.get("NBS_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus", "benign")
POLICY = {
    "magics": {"allow": ["matplotlib", "time", "timeit", "capture", "config", "load_ext", "autoreload", "xmode"],
               "deny": [], "unknown": "low", "shell": "medium", "pip": "low"},
    "imports": {"allow": None, "deny": ["ctypes", "_ctypes", "_posixsubprocess", "pty", "js", "pyodide_js", "_pyodide", "micropip"],
                "severity": "high"},
    "rules": {},
    "verdict": {"denyAt": "high", "warnAt": "low", "unparsable": "high"},
    "writablePaths": ["/tmp", "/home/pyodide"],
}


def check(*sources, policy=None, **overrides):
    merged = json.loads(json.dumps(POLICY))
    merged.update(overrides)
    if policy:
        merged.update(policy)
    request = {"kind": "cells", "cells": [{"index": i, "id": "c%d" % i, "source": s} for i, s in enumerate(sources)],
               "policy": merged}
    # Through the JSON entry point, as the TypeScript side calls it.
    return json.loads(checker.check(json.dumps(request)))


def rules(result, at_least="info"):
    order = ["info", "low", "medium", "high", "critical"]
    return [f["ruleId"] for f in result["findings"] if order.index(f["severity"]) >= order.index(at_least)]


class Evasions(unittest.TestCase):
    CASES = [
        ("import os as o\no.system('x')", "NBS-PROC-001"),
        ("from os import system\nsystem('x')", "NBS-PROC-001"),
        ("from os import *\nsystem('x')", "NBS-PROC-001"),
        ("import os\ns = os.system\ns('x')", "NBS-PROC-001"),
        ("import subprocess as sp\nsp.check_output(['id'])", "NBS-PROC-001"),
        ("import os\nos.execv('/bin/sh', [])", "NBS-PROC-001"),
        ("import os\nos.posix_spawn('/bin/sh', [], {})", "NBS-PROC-001"),
        ("import pty\npty.spawn('/bin/sh')", "NBS-PROC-001"),
        ("import multiprocessing\nmultiprocessing.Process(target=f).start()", "NBS-PROC-001"),
        ("import builtins\nbuiltins.eval(x)", "NBS-EXEC-002"),
        ("__builtins__['exec'](x)", "NBS-EXEC-002"),
        ("__builtins__.exec(x)", "NBS-EXEC-002"),
        ("import os\ngetattr(os, 'sys' + 'tem')('x')", "NBS-EXEC-002"),
        ("import builtins\ngetattr(builtins, name)(x)", "NBS-EXEC-002"),
        ("import importlib\nimportlib.import_module('subprocess')", "NBS-EXEC-002"),
        ("import importlib\nimportlib.__import__('os')", "NBS-EXEC-002"),
        ("__import__(name)", "NBS-EXEC-002"),
        ("__import__('os').system('ls')", "NBS-PROC-001"),
        ("exec(compile(src, 'x', 'exec'))", "NBS-EXEC-002"),
        ("import sys\nsys.modules['os'].system('x')", "NBS-EXEC-002"),
        ("import sys\nsys.modules['os'].system('x')", "NBS-PROC-001"),
        ("import sys\nm = sys.modules.get('os')", "NBS-EXEC-002"),
        ("globals()['__builtins__']", "NBS-EXEC-002"),
        ("e = eval\ne(x)", "NBS-EXEC-002"),
        ("from builtins import exec as run\nrun(x)", "NBS-EXEC-002"),
        ("().__class__.__mro__[1].__subclasses__()", "NBS-INTRO-001"),
        ("f.gi_frame.f_back.f_globals", "NBS-INTRO-001"),
        ("g = fn.__globals__['__builtins__']", "NBS-INTRO-001"),
        ("import sys\nsys._getframe(1)", "NBS-INTRO-001"),
        ("import gc\ngc.get_referrers(x)", "NBS-INTRO-001"),
        ("getattr(fn, '__globals__')", "NBS-INTRO-001"),
        ("import socket\ns = socket.socket()", "NBS-NET-001"),
        ("from socket import create_connection\ncreate_connection(('h', 1))", "NBS-NET-001"),
        ("import ctypes", "NBS-FFI-001"),
        ("from cffi import FFI", "NBS-FFI-001"),
        ("__import__('ctypes')", "NBS-FFI-001"),
        ("import js", "NBS-BRIDGE-001"),
        ("from pyodide.ffi import create_proxy", "NBS-BRIDGE-001"),
        ("from pyodide.code import run_js", "NBS-BRIDGE-001"),
        ("import pyodide\npyodide.code.run_js('1')", "NBS-BRIDGE-001"),
        ("import micropip", "NBS-BRIDGE-001"),
        ("import pickle\npickle.loads(b)", "NBS-DESER-001"),
        ("import marshal\nmarshal.loads(b)", "NBS-DESER-001"),
        ("import dill\ndill.load(f)", "NBS-DESER-001"),
        ("import shelve\nshelve.open('x')", "NBS-DESER-001"),
        ("import pandas as pd\npd.read_pickle('x')", "NBS-DESER-001"),
        ("import torch\ntorch.load(p)", "NBS-DESER-001"),
        ("import yaml\nyaml.load(s)", "NBS-DESER-001"),
        ("import yaml\nyaml.unsafe_load(s)", "NBS-DESER-001"),
        ("m = AutoModel.from_pretrained('x', trust_remote_code=True)", "NBS-HUB-002"),
        ("open('/etc/passwd', 'w')", "NBS-FS-001"),
        ("import shutil\nshutil.rmtree('/home/other')", "NBS-FS-001"),
        ("import pathlib\npathlib.Path('/etc/x').write_text('y')", "NBS-FS-001"),
        ("import os\nos.remove('/tmp/../etc/passwd')", "NBS-FS-001"),
    ]

    def test_every_form_is_detected(self):
        for source, rule in self.CASES:
            with self.subTest(source=source):
                self.assertIn(rule, rules(check(source)))

    def test_plain_exec_stays_low(self):
        result = check("exec(code, mod.__dict__)")
        self.assertEqual([(f["ruleId"], f["severity"], f["bandit"]) for f in result["findings"]],
                         [("NBS-EXEC-001", "low", "B102")])
        self.assertEqual(result["verdict"], "warn")
        self.assertEqual(rules(check("eval('1 + 1')")), [])

    def test_reference_without_call_is_reported(self):
        self.assertIn("NBS-PROC-001", rules(check("import os\nf = os.system")))

    def test_aliases_carry_across_cells(self):
        result = check("import os as o", "o.popen('id')")
        self.assertEqual([(f["cell"], f["ruleId"]) for f in result["findings"]], [(1, "NBS-PROC-001")])

    def test_harmless_rebinding_does_not_hide_alias(self):
        self.assertIn("NBS-PROC-001", rules(check("import os\nrun = os.system\nrun('x')\nrun = print")))

    def test_one_finding_per_use(self):
        result = check("().__class__.__mro__[1].__subclasses__()")
        self.assertEqual(rules(result), ["NBS-INTRO-001"])
        self.assertEqual(len(check("f.gi_frame.f_back.f_globals")["findings"]), 1)

    def test_positions(self):
        finding = check("x = 1\nimport os\nif x:\n    os.system('ls')")["findings"][0]
        self.assertEqual((finding["line"], finding["column"], finding["endLine"], finding["endColumn"]), (4, 5, 4, 20))
        # Columns count characters, not UTF-8 bytes.
        finding = check("import os\ns = 'é'; os.system('ls')")["findings"][0]
        self.assertEqual(finding["column"], 10)

    def test_import_policy(self):
        self.assertEqual(rules(check("import subprocess.foo", imports={"deny": ["subprocess"], "severity": "high"})),
                         ["NBS-IMPORT-001"])
        allow = {"allow": ["numpy"], "deny": [], "severity": "medium"}
        result = check("import numpy.linalg\nimport json, os.path\nimport pandas\n__import__('scipy')", imports=allow)
        self.assertEqual([(f["line"], f["severity"]) for f in result["findings"]], [(3, "medium"), (4, "medium")])
        deny_wins = {"allow": ["requests"], "deny": ["requests"], "severity": "high"}
        self.assertEqual(rules(check("from requests import get", imports=deny_wins)), ["NBS-IMPORT-001"])

    def test_rule_overrides_and_verdict(self):
        self.assertEqual(check("import os\nos.system('x')")["verdict"], "deny")
        off = check("import os\nos.system('x')", rules={"NBS-PROC-001": "off"})
        self.assertEqual((off["findings"], off["verdict"]), ([], "allow"))
        lowered = check("import os\nos.system('x')", rules={"NBS-PROC-001": {"enabled": True, "severity": "low"}})
        self.assertEqual((lowered["findings"][0]["severity"], lowered["verdict"]), ("low", "warn"))
        disabled = check("import os\nos.system('x')", rules={"NBS-PROC-001": {"enabled": False}})
        self.assertEqual(disabled["findings"], [])
        never = check("import os\nos.system('x')", verdict={"denyAt": "never", "warnAt": "low", "unparsable": "high"})
        self.assertEqual(never["verdict"], "warn")

    def test_findings_sorted(self):
        result = check("import os\nos.popen('b'); os.system('a')", "x = 1", "import pickle\npickle.loads(b)")
        keys = [(f["cell"], f["line"], f["column"]) for f in result["findings"]]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(result["rulesetVersion"], checker.RULESET_VERSION)


class Benign(unittest.TestCase):
    SOURCES = [
        "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'a': np.arange(10)})\ndf.plot()\nplt.show()\n",
        "import requests\nr = requests.get(url, timeout=5)\nrequests.post(url, json=data, timeout=(1, 5))",
        "import torch\nstate = torch.load(p, weights_only=True)",
        "import yaml\nconf = yaml.safe_load(s)\nother = yaml.load(s, Loader=yaml.SafeLoader)",
        "with open('out.txt', 'w') as f:\n    f.write('x')\nopen('/tmp/x', 'a')\nopen('/home/pyodide/y', 'w')\nopen('/etc/hosts')",
        "import os\ntoken = os.environ['HF_TOKEN']\napi_key = os.getenv('OPENAI_API_KEY')",
        'password = "<your password>"\napi_key = "YOUR_API_KEY"\nsecret = "changeme"\ntoken = "xxxxxxxxxxxx"\n'
        'hf_token = "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"\npassword = ""\npad_token = "<|endoftext|>"',
        "from transformers import AutoTokenizer\ntok = AutoTokenizer.from_pretrained('bert-base-uncased')\n"
        "tokenizer = Tokenizer(models.WordPiece(unk_token='[UNK]'))",
        "import sys\nsys.modules[name] = mod\nif name in sys.modules:\n    pass",
        "import subprocess\ntry:\n    pass\nexcept subprocess.CalledProcessError:\n    pass",
        "class A(B):\n    def __init__(self):\n        super().__init__()\n        print(type(self).__name__, self.__class__, self.__dict__)",
        "import os\nos.makedirs('results', exist_ok=True)\nos.remove('tmp.pt')\nos.path.join('a', 'b')",
    ]

    def test_nothing_medium_or_worse(self):
        for source in self.SOURCES:
            with self.subTest(source=source):
                self.assertEqual(rules(check(source), "medium"), [])

    def test_writable_prefixes(self):
        writable = ("/tmp", "/home/pyodide")
        self.assertTrue(outside("/tmpfoo/x", writable))
        self.assertFalse(outside("/tmp", writable))
        self.assertFalse(outside("/tmp/a/b", writable))
        self.assertTrue(outside("/tmp/../etc", writable))
        self.assertFalse(outside("relative/../../x", writable))
        self.assertFalse(outside("/anything", ("/",)))


class Secrets(unittest.TestCase):
    SECRETS = {
        "aws": "AKIAIOSFODNN7ABCDEFG",
        "github": "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5",
        "hf": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
        "openai": "sk-" + "proj1234567890abcdefABCDEF",
        "slack": "xoxb-" + "123456789012-abcdefghijkl",
    }

    def test_detected_and_never_echoed(self):
        for name, value in self.SECRETS.items():
            with self.subTest(kind=name):
                result = check("client.login(%r)" % value)
                self.assertEqual(rules(result), ["NBS-SECRET-001"])
                self.assertNotIn(value, json.dumps(result["findings"]))
                self.assertNotIn(value[4:14], json.dumps(result["findings"]))

    def test_named_secrets(self):
        value = "Tr0ub4dor&3-zebra"
        for source in ("db_password = %r", "connect(password=%r)", "config['api_key'] = %r", "{'client_secret': %r}",
                       "def login(passwd=%r): pass", "if token == %r: pass"):
            with self.subTest(source=source):
                result = check(source % value)
                self.assertEqual(rules(result), ["NBS-SECRET-001"])
                self.assertNotIn(value, json.dumps(result))

    def test_private_key(self):
        result = check('KEY = """-----BEGIN RSA PRIVATE KEY-----\nMIIEow..."""')
        self.assertEqual(rules(result), ["NBS-SECRET-001"])
        self.assertNotIn("MIIEow", json.dumps(result))


class Magics(unittest.TestCase):
    def transform(self, source):
        python, facts = magics.transform(source)
        self.assertEqual(len(python.split("\n")), len(source.split("\n")))
        return python, facts

    def test_line_forms(self):
        source = ("%matplotlib inline\nfiles = !ls\nx = %env HOME\n!echo hi\nobj?\nos.path??\n?len\n"
                  "for i in range(3):\n    %time f(i)\n    !echo {i} \\\n      more\n    print(i)\n")
        python, facts = self.transform(source)
        self.assertEqual(python.split("\n")[:10],
                         ["pass", "files = None", "x = None", "pass", "pass", "pass", "pass",
                          "for i in range(3):", "    pass", "    pass"])
        self.assertEqual(python.split("\n")[10], "")
        self.assertEqual([(m["kind"], m["name"], m["line"]) for m in facts["magics"]],
                         [("line", "matplotlib", 1), ("shell", "ls", 2), ("line", "env", 3), ("shell", "echo", 4),
                          ("line", "pinfo", 5), ("line", "pinfo2", 6), ("line", "pinfo", 7), ("line", "time", 9),
                          ("shell", "echo", 10)])

    def test_strings_are_not_magics(self):
        source = 's = """\n%notmagic\n!not shell\n"""\nt = (1,\n%2)\nu = \'a\' \\\n  "b"\n'
        python, facts = self.transform(source)
        self.assertEqual(python, source)
        self.assertEqual(facts["magics"], [])

    def test_cell_magics(self):
        python, facts = self.transform("\n%%bash\nrm -rf /\nimport os\n")
        self.assertEqual(python, "\n\n\n\n")
        self.assertEqual(facts["magics"], [{"kind": "cell", "name": "bash", "line": 2, "column": 1, "endLine": 2, "endColumn": 7}])
        python, facts = self.transform("%%time\nimport os\nos.system('x')\n%timeit y")
        self.assertEqual(python, "\nimport os\nos.system('x')\npass")
        result = check("%%time\nimport os\nos.system('x')")
        self.assertEqual([(f["ruleId"], f["line"]) for f in result["findings"]],
                         [("NBS-MAGIC-002", 1), ("NBS-PROC-001", 3)])

    def test_pip_dependencies(self):
        source = ("%pip install -q numpy==1.26 'pandas[all]>=2' --index-url https://x scipy\n"
                  "!pip install -U git+https://github.com/a/b.git transformers datasets\n"
                  "!python -m pip install torch -f https://download\n"
                  "%conda install -c conda-forge matplotlib\n!{sys.executable} -m pip install onnx\n")
        result = check(source)
        self.assertEqual(result["cells"][0]["dependencies"],
                         ["numpy", "pandas", "scipy", "transformers", "datasets", "torch", "matplotlib", "onnx"])
        self.assertEqual(set(rules(result)), {"NBS-PIP-001"})

    def test_magic_policy(self):
        magic_policy = {"allow": ["matplotlib", "%time", "%%capture"], "deny": ["bash"], "unknown": "low",
                        "shell": "medium", "pip": "low"}
        source_severity = [("%matplotlib inline", "info"), ("%%matplotlib\n", "info"), ("%time x", "info"),
                           ("%%time\nx", "low"), ("%%capture\nx", "info"), ("%capture", "low"),
                           ("%%bash\nls", "critical"), ("%bash", "critical"), ("!ls", "medium"),
                           ("%who", "low"), ("%pip install x", "low"), ("%%ruby\nputs 1", "medium")]
        for source, severity in source_severity:
            with self.subTest(source=source):
                result = check(source, magics=magic_policy)
                self.assertEqual([f["severity"] for f in result["findings"]], [severity])

    def test_ipython_cleanup(self):
        self.assertEqual(check(">>> a = 1\n... b = 2\n>>> if a:\n...     print(b)")["findings"], [])
        self.assertEqual(check("   x = 1\n   y = 2")["findings"], [])
        self.assertEqual(rules(check("ls nbpackage")), ["NBS-SHELL-001"])
        self.assertEqual(check("ls")["findings"], [])


class Robustness(unittest.TestCase):
    def test_deep_nesting(self):
        for source in ("not " * 100000 + "x", "(" * 100000, "[" * 5000 + "]" * 5000, "-" * 100000 + "1",
                       "x = " + "+".join(["'a'"] * 50000), "a" + ".b" * 100000):
            with self.subTest(source=source[:20]):
                result = check(source)
                for finding in result["findings"]:
                    self.assertEqual(finding["ruleId"], "NBS-PARSE-001")

    def test_deep_nesting_is_unparsable(self):
        for source in ("not " * 100000 + "x", "(" * 100000):
            result = check(source)
            self.assertEqual(rules(result), ["NBS-PARSE-001"])
            self.assertEqual(result["verdict"], "deny")

    def test_syntax_error_position(self):
        finding = check("x = 1\ny = (\n")["findings"][0]
        self.assertEqual((finding["ruleId"], finding["severity"], finding["line"]), ("NBS-PARSE-001", "high", 2))

    def test_null_bytes_and_garbage(self):
        generator = random.Random(1234)
        alphabet = "\x00\t\n\r ()[]{}'\"\\%!?#:;.,=+-*/@<>abcxyz019_é\u2028\ufeff"
        for _ in range(300):
            source = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 200)))
            check(source)
            checker.check_request({"kind": "marimo", "source": source, "policy": {}})
        check("x = 1\x00")
        check("\ud800")

    def test_defaults_without_policy(self):
        result = checker.check_request({"kind": "cells", "cells": [{"index": 0, "source": "import os"}]})
        self.assertEqual((result["verdict"], result["cells"][0]["id"]), ("allow", None))


MARIMO = '''import marimo

__generated_with = "0.9.0"
app = marimo.App(width="medium")


@app.cell
def _():
    import os
    return (os,)


@app.cell(hide_code=True)
def _(os):
    os.system("id")
    return


with app.setup:
    import pickle


@app.function
def load(b):
    return pickle.loads(b)


app._unparsable_cell(
    r"""
    x = (
    """,
    name="_"
)


if __name__ == "__main__":
    app.run()
'''


class Marimo(unittest.TestCase):
    def test_cells_and_real_lines(self):
        result = checker.check_request({"kind": "marimo", "source": MARIMO, "policy": POLICY})
        self.assertEqual([c["index"] for c in result["cells"]], [0, 1, 2, 3, 4])
        self.assertEqual([(f["ruleId"], f["cell"], f["line"]) for f in result["findings"]],
                         [("NBS-PROC-001", 1, 15), ("NBS-DESER-001", 3, 25), ("NBS-MARIMO-001", 4, 28)])
        self.assertEqual(result["verdict"], "deny")

    def test_marimo_unparsable_file(self):
        result = checker.check_request({"kind": "marimo", "source": "import marimo\napp = marimo.App(\n", "policy": POLICY})
        self.assertEqual(rules(result), ["NBS-PARSE-001"])


def _checker_patterns():
    """Every compiled regular expression at module level in the checker's Python."""
    import importlib
    import pkgutil
    import re
    found = []
    package_dir = os.path.dirname(checker.__file__)
    names = ["checker"] + ["checker." + info.name for info in pkgutil.walk_packages([package_dir], "")]
    for name in names:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                for part in (item if isinstance(item, tuple) else (item,)):
                    if isinstance(part, re.Pattern):
                        found.append(("%s.%s" % (name, attribute), part))
    return found


def _adversarial(pattern, size):
    """Inputs that make backtracking patterns work hardest: their own literals, repeated and mixed."""
    import re
    literals = [piece for piece in re.findall(r"[A-Za-z0-9_]{2,}|[-_.,:=!%?>$]", pattern.pattern) if piece]
    # The literal text a match starts with ("sk-" for r"\bsk-..."): repeated, it makes every
    # position a candidate start.
    prefix = re.match(r"(?:\\b|\^)*((?:[A-Za-z0-9_ ,:=!%>-]|\\.)+)", pattern.pattern)
    if prefix:
        literals.insert(0, re.sub(r"\\(.)", r"\1", prefix.group(1)))
    alphabet = ["a", "A", "0", "-", "_", ".", ",", " ", "=", "%", "!", "?", "x", "(", ")", "\t", "'", '"', "["]
    inputs = []
    for piece in (literals[:12] or ["a"]):
        inputs.append(piece * (size // len(piece) + 1))
        inputs.append(piece + "a" * size)
        inputs.append((piece + " ") * (size // (len(piece) + 1) + 1))
    inputs.append("".join(random.Random(7).choice(alphabet + literals[:6]) for _ in range(size)))
    inputs.append("a" * size + "!")
    inputs.append(", a" * (size // 3) + " x")
    return [text[:size] for text in inputs]


class LinearPatterns(unittest.TestCase):
    """Every pattern the checker applies to source text runs in linear time (issue 10, ReDoS).

    Not a timing threshold: the growth from n to 8n characters is compared, which is about 8 for
    linear work and about 64 for quadratic, whatever the speed of the machine.
    """

    def _seconds(self, pattern, text):
        import time
        best = None
        for _ in range(3):
            started = time.perf_counter()
            for _ in pattern.finditer(text):
                pass
            pattern.match(text)
            elapsed = time.perf_counter() - started
            best = elapsed if best is None else min(best, elapsed)
        return best

    def test_every_pattern_grows_linearly(self):
        patterns = _checker_patterns()
        self.assertGreaterEqual(len(patterns), 15)
        small, large = 4000, 32000
        worst = []
        for name, pattern in patterns:
            for short, long in zip(_adversarial(pattern, small), _adversarial(pattern, large)):
                base = self._seconds(pattern, short)
                grown = self._seconds(pattern, long)
                if grown < 0.02:
                    continue  # too fast to be anything but linear here
                ratio = grown / max(base, 1e-6)
                worst.append((ratio, name, short[:20]))
                self.assertLess(ratio, 30, "%s grows %.0fx from %d to %d characters on %r..." % (name, ratio, small, large, short[:20]))

    def test_the_openai_key_pattern_on_repeated_prefixes(self):
        import time
        started = time.perf_counter()
        self.assertIsNone(checker.secrets.token_kind("sk-" * 20000))
        small = time.perf_counter() - started
        started = time.perf_counter()
        self.assertIsNone(checker.secrets.token_kind("sk-" * 160000))
        large = time.perf_counter() - started
        self.assertLess(large / max(small, 1e-4), 30)


class Corpus(unittest.TestCase):
    def test_benign_corpus_is_never_denied(self):
        paths = sorted(glob.glob(os.path.join(CORPUS, "**", "*.ipynb"), recursive=True))
        if not paths:
            self.skipTest("no corpus at " + CORPUS)
        verdicts = collections.Counter()
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                notebook = json.load(handle)
            cells = []
            for index, cell in enumerate(notebook.get("cells", [])):
                if cell.get("cell_type") == "code":
                    source = cell.get("source", "")
                    cells.append({"index": index, "id": cell.get("id"),
                                  "source": "".join(source) if isinstance(source, list) else source})
            result = json.loads(checker.check(json.dumps({"kind": "cells", "cells": cells, "policy": POLICY})))
            verdicts[result["verdict"]] += 1
            with self.subTest(path=os.path.relpath(path, CORPUS)):
                self.assertNotEqual(result["verdict"], "deny", [f for f in result["findings"] if f["severity"] in ("high", "critical")])
        print("\ncorpus verdicts (%d notebooks): %s" % (len(paths), dict(sorted(verdicts.items()))), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
