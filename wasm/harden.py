"""Python-level hardening applied once, after start-up and before any user code.

This is one layer of several and not a boundary on its own: Python code can undo much of what
is done here. The process runs under Deno with no permission beyond reading the runtime's own
files, which is what holds when this layer is bypassed. What this layer adds is that the
common routes fail early with a clear Python exception instead of reaching the host runtime.
"""

import builtins
import gc
import os
import posix
import sys

import _imp
from importlib.machinery import BuiltinImporter

BLOCKED_MODULES = frozenset(
    {
        "js",
        "pyodide_js",
        "pyodide",
        "_pyodide",
        "_pyodide_core",
        "micropip",
        "ctypes",
        "_ctypes",
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testmultiphase",
        "_testsinglephase",
        "_testimportmultiple",
        "_testlimitedcapi",
        "_testexternalinspection",
        "_xxtestfuzz",
    }
)


def _is_blocked(name):
    return isinstance(name, str) and name.partition(".")[0] in BLOCKED_MODULES


def _refuse(name):
    return ModuleNotFoundError(f"No module named {name!r} (not available in nbsandbox)", name=name)


class _BlockedModuleFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if _is_blocked(name):
            raise _refuse(name)
        return None


def _harden_imports():
    for name in list(sys.modules):
        if _is_blocked(name):
            del sys.modules[name]
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if "Js" not in getattr(finder, "__name__", type(finder).__name__)
    ]
    sys.meta_path.insert(0, _BlockedModuleFinder)
    sys.path_importer_cache.clear()

    builtin_find_spec = BuiltinImporter.find_spec

    def find_spec(name, path=None, target=None):
        if _is_blocked(name):
            raise _refuse(name)
        return builtin_find_spec(name, path, target)

    BuiltinImporter.find_spec = staticmethod(find_spec)

    create_builtin = _imp.create_builtin

    def guarded_create_builtin(spec):
        if _is_blocked(getattr(spec, "name", None)):
            raise _refuse(spec.name)
        return create_builtin(spec)

    _imp.create_builtin = guarded_create_builtin


PROCESS_FUNCTIONS = (
    "system",
    "popen",
    "fork",
    "forkpty",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnv",
    "spawnve",
    "spawnvp",
    "spawnvpe",
    "posix_spawn",
    "posix_spawnp",
)


def _remove_process_functions():
    for module in (os, posix):
        for name in PROCESS_FUNCTIONS:
            if hasattr(module, name):
                delattr(module, name)


def _remove_object_walks():
    for name in ("get_objects", "get_referrers", "get_referents"):
        if hasattr(gc, name):
            delattr(gc, name)


def _reset_environment():
    os.environ.clear()
    os.environ.update({"HOME": "/home/pyodide", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PWD": "/home/pyodide"})
    os.chdir("/home/pyodide")
    sys.executable = ""
    sys.argv = [""]
    sys.setrecursionlimit(1000)


def _clean_main_namespace():
    namespace = sys.modules["__main__"].__dict__
    for name in list(namespace):
        if not (name.startswith("__") and name.endswith("__")):
            del namespace[name]


_harden_imports()
_clean_main_namespace()
_remove_process_functions()
_remove_object_walks()
_reset_environment()
builtins.__dict__.pop("_", None)
