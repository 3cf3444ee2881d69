"""Which module attributes are dangerous to use or even reference, and under which rule.

classify(qualified) answers for uses that are dangerous whatever the arguments; the argument-
dependent ones (torch.load, yaml.load, requests without timeout) live in uses.py.
"""

_SUBPROCESS_HARMLESS = frozenset({
    "PIPE", "DEVNULL", "STDOUT", "CalledProcessError", "TimeoutExpired", "CompletedProcess",
    "SubprocessError", "list2cmdline",
})
_SOCKET_HARMLESS = frozenset({"timeout", "error", "gaierror", "herror", "setdefaulttimeout", "getdefaulttimeout", "has_ipv6"})
_OS_SHELL = frozenset({"system", "popen", "popen2", "popen3", "popen4"})
_OS_SPAWN = frozenset({"startfile", "fork", "forkpty"})
_PICKLE_LIKE = frozenset({"pickle", "cPickle", "_pickle", "dill", "cloudpickle"})

# (module, attribute) -> (rule, bandit, what)
_EXACT = {
    ("pty", "spawn"): ("NBS-PROC-001", None, "pty.spawn"),
    ("pty", "fork"): ("NBS-PROC-001", None, "pty.fork"),
    ("multiprocessing", "Process"): ("NBS-PROC-001", None, "multiprocessing"),
    ("multiprocessing", "Pool"): ("NBS-PROC-001", None, "multiprocessing"),
    ("multiprocessing", "get_context"): ("NBS-PROC-001", None, "multiprocessing"),
    ("multiprocessing", "Manager"): ("NBS-PROC-001", None, "multiprocessing"),
    ("multiprocessing.pool", "Pool"): ("NBS-PROC-001", None, "multiprocessing"),
    ("concurrent.futures", "ProcessPoolExecutor"): ("NBS-PROC-001", None, "a process pool"),
    ("asyncio", "create_subprocess_exec"): ("NBS-PROC-001", "B603", "asyncio subprocess"),
    ("asyncio", "create_subprocess_shell"): ("NBS-PROC-001", "B602", "asyncio subprocess"),
    ("platform", "popen"): ("NBS-PROC-001", "B605", "platform.popen"),
    ("asyncio", "open_connection"): ("NBS-NET-001", None, "asyncio raw connection"),
    ("asyncio", "start_server"): ("NBS-NET-001", None, "asyncio raw server"),
    ("asyncio", "open_unix_connection"): ("NBS-NET-001", None, "asyncio raw connection"),
    ("asyncio", "start_unix_server"): ("NBS-NET-001", None, "asyncio raw server"),
    ("marshal", "load"): ("NBS-DESER-001", "B302", "marshal"),
    ("marshal", "loads"): ("NBS-DESER-001", "B302", "marshal"),
    ("shelve", "open"): ("NBS-DESER-001", "B301", "shelve"),
    ("jsonpickle", "decode"): ("NBS-DESER-001", "B301", "jsonpickle"),
    ("pandas", "read_pickle"): ("NBS-DESER-001", "B301", "pandas.read_pickle"),
    ("joblib", "load"): ("NBS-DESER-001", "B301", "joblib.load"),
    ("yaml", "unsafe_load"): ("NBS-DESER-001", "B506", "unsafe YAML loader"),
    ("yaml", "full_load"): ("NBS-DESER-001", "B506", "unsafe YAML loader"),
    ("yaml", "unsafe_load_all"): ("NBS-DESER-001", "B506", "unsafe YAML loader"),
    ("yaml", "full_load_all"): ("NBS-DESER-001", "B506", "unsafe YAML loader"),
    ("importlib", "import_module"): ("NBS-EXEC-002", None, "dynamic import"),
    ("importlib", "__import__"): ("NBS-EXEC-002", None, "dynamic import"),
    ("importlib.util", "spec_from_file_location"): ("NBS-EXEC-002", None, "module loading"),
    ("runpy", "run_path"): ("NBS-EXEC-002", None, "runpy"),
    ("runpy", "run_module"): ("NBS-EXEC-002", None, "runpy"),
    ("sys", "_getframe"): ("NBS-INTRO-001", None, "frame access"),
    ("sys", "_current_frames"): ("NBS-INTRO-001", None, "frame access"),
    ("inspect", "currentframe"): ("NBS-INTRO-001", None, "frame access"),
    ("inspect", "stack"): ("NBS-INTRO-001", None, "frame access"),
    ("inspect", "trace"): ("NBS-INTRO-001", None, "frame access"),
    ("gc", "get_objects"): ("NBS-INTRO-001", None, "gc object walk"),
    ("gc", "get_referrers"): ("NBS-INTRO-001", None, "gc object walk"),
    ("gc", "get_referents"): ("NBS-INTRO-001", None, "gc object walk"),
}


def classify(qualified):
    """(rule, bandit, what) for a dangerous module attribute, else None."""
    if not qualified or "." not in qualified:
        return None
    module, _, attribute = qualified.rpartition(".")
    found = _EXACT.get((module, attribute))
    if found:
        return found
    if module in ("os", "posix", "nt"):
        if attribute in _OS_SHELL:
            return ("NBS-PROC-001", "B605", module + "." + attribute)
        if attribute in _OS_SPAWN or attribute.startswith(("exec", "spawn", "posix_spawn")):
            return ("NBS-PROC-001", "B606", module + "." + attribute)
        return None
    if module == "subprocess" and attribute not in _SUBPROCESS_HARMLESS and not attribute.startswith("_"):
        return ("NBS-PROC-001", "B603", "subprocess." + attribute)
    if module in ("_posixsubprocess", "commands"):
        return ("NBS-PROC-001", None, module)
    if module in ("socket", "_socket"):
        if attribute in _SOCKET_HARMLESS or attribute.isupper():
            return None
        return ("NBS-NET-001", None, "socket." + attribute)
    if module in _PICKLE_LIKE and attribute in ("load", "loads", "Unpickler"):
        return ("NBS-DESER-001", "B301", module + "." + attribute)
    return None


def ffi_module(qualified):
    return bool(qualified) and qualified.split(".")[0] in ("ctypes", "_ctypes", "cffi")


def bridge_module(qualified):
    if not qualified:
        return False
    parts = qualified.split(".")
    if parts[0] in ("js", "pyodide_js", "micropip") or parts[0].startswith("_pyodide"):
        return True
    # pyodide.http is not a bridge here: the sandbox answers it through its network broker.
    return parts[0] == "pyodide" and len(parts) > 1 and parts[1] in ("ffi", "code", "webloop", "javascript")


# Modules that reach anything dangerous: getattr with a computed name on them, or importing them
# by a string, is a trick.
DANGEROUS_ROOTS = frozenset({
    "builtins", "os", "posix", "nt", "subprocess", "sys", "importlib", "socket", "_socket", "ctypes",
    "_ctypes", "cffi", "pty", "shutil", "pickle", "marshal", "gc", "inspect", "io", "js", "pyodide",
    "pyodide_js", "micropip", "multiprocessing", "runpy", "types", "code", "codeop", "_posixsubprocess",
})


_TRICK_BUILTINS = frozenset({"builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__"})


def prefer(qualified):
    """For alias resolution: is this binding one worth keeping over another?"""
    return (classify(qualified) is not None or qualified in _TRICK_BUILTINS
            or ffi_module(qualified) or bridge_module(qualified))
