"""The run's permissions as Python sees them: file access, imports, the environment and HTTP.

The host decides what a run may have and copies only that into the interpreter: granted host
files, granted environment variables, and network answers from its broker. This module makes
the rest fail early with a PermissionError that names the missing permission, the way Deno's
NotCapable does, and records each denial for the host's audit log. It is a layer, not the
boundary: code that tampers with the interpreter can get around it, and then finds only what
the host put in the virtual file system and a broker that checks every request itself.
"""

import base64
import json
import os
import posixpath
import sys

# The interpreter's own files and scratch space: never host data, always usable.
RUNTIME_READ = ("/lib", "/usr/lib", "/dev", "/proc", "/tmp", "/home/pyodide")
SCRATCH_WRITE = ("/tmp", "/home/pyodide")
BROKER_DEVICE = "/dev/nbsandbox-net"
_MAX_EVENTS = 1000

_state = {"read": ((), ()), "write": ((), ()), "imports": (None, ()), "stdlib": frozenset(), "events": []}


def _normal(path):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or "\0" in path:
        return None
    return posixpath.normpath(posixpath.join(os.getcwd(), path))


def _under(path, prefixes):
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def _granted(kind, path):
    allow, deny = _state[kind]
    return _under(path, allow) and not _under(path, deny)


def _record(kind, value, allowed, reason=None):
    events = _state["events"]
    if len(events) < _MAX_EVENTS:
        event = {"kind": kind, "value": str(value)[:512], "allowed": allowed}
        if reason:
            event["reason"] = reason
        events.append(event)


def take_events():
    """The events recorded since the last call, as JSON (the interpreter forwards them)."""
    events, _state["events"] = _state["events"], []
    return json.dumps(events)


def _deny(kind, value, flag):
    _record(kind, value, False)
    raise PermissionError(f'Requires {kind} access to "{value}", run again with {flag}')


def _check_read(path):
    normal = _normal(path)
    if normal is None:
        return
    if _under(normal, _state["read"][1]):
        _deny("read", normal, "--allow-read")
    if _under(normal, RUNTIME_READ) or _granted("read", normal) or _granted("write", normal):
        return
    _deny("read", normal, "--allow-read")


def _check_write(path):
    normal = _normal(path)
    if normal is None:
        return
    if normal == BROKER_DEVICE or _granted("write", normal):
        return
    # Host data copied in through a read grant stays read-only, even inside scratch space.
    host_data = _under(normal, _state["read"][0])
    if _under(normal, SCRATCH_WRITE) and not host_data and not _under(normal, _state["write"][1]):
        return
    _deny("write", normal, "--allow-write")


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITE_EVENTS = {
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.symlink": (1,),
    "os.link": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.move": (0, 1),
}
_READ_EVENTS = {"os.listdir": (0,), "os.scandir": (0,), "shutil.copyfile": (0,)}


def _audit(event, args):
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int):
            return
        writes = (isinstance(mode, str) and any(char in mode for char in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        (_check_write if writes else _check_read)(path)
        return
    for position in _READ_EVENTS.get(event, ()):
        if position < len(args) and not isinstance(args[position], int):
            _check_read(args[position] if args[position] is not None else ".")
    for position in _WRITE_EVENTS.get(event, ()):
        if position < len(args) and isinstance(args[position], (str, bytes)):
            _check_write(args[position])


def _prefixes(name):
    """"a.b.c" -> ["a.b.c", "a.b", "a"]: a rule for a package covers its submodules."""
    return [name.rsplit(".", depth)[0] for depth in range(name.count(".") + 1)]


class _ImportPolicy:
    """Refuses modules the run's import permission does not grant.

    Denied modules (and their submodules) are refused by name. Beyond the standard library, only
    granted packages may be imported; one that is not installed stays a ModuleNotFoundError, so
    optional imports keep working.
    """

    @staticmethod
    def find_spec(name, path=None, target=None):
        allow, deny = _state["imports"]
        top = name.partition(".")[0]
        prefixes = _prefixes(name)
        if any(prefix in deny for prefix in prefixes):
            _deny("import", name, "--allow-import")
        if allow is None or top in _state["stdlib"] or any(prefix in allow for prefix in prefixes):
            return None
        if path is None and _installed(name):
            _deny("import", name, "--allow-import")
        return None


def _forget_denied_modules(deny):
    """Denied modules the runtime already loaded must not import from sys.modules either.

    The runtime's own code keeps the references it took at start-up; user code that asks for
    the module goes through the import system again and meets the policy.
    """
    for name in list(sys.modules):
        if any(prefix in deny for prefix in _prefixes(name)):
            del sys.modules[name]


def _installed(name):
    for finder in sys.meta_path:
        if finder is _ImportPolicy or not hasattr(finder, "find_spec"):
            continue
        try:
            if finder.find_spec(name, None) is not None:
                return True
        except ImportError:
            return False
    return False


def apply(config_json):
    """Installs the run's permissions; called once, before the first cell."""
    config = json.loads(config_json)
    for kind in ("read", "write"):
        rules = config.get(kind) or {}
        _state[kind] = (tuple(rules.get("allow") or ()), tuple(rules.get("deny") or ()))
    imports = config.get("imports") or {}
    allow = imports.get("allow")
    deny = frozenset(imports.get("deny") or ())
    _state["imports"] = (None if allow is None else frozenset(allow), deny)
    _forget_denied_modules(deny)
    _state["stdlib"] = frozenset(getattr(sys, "stdlib_module_names", ()))
    for name, value in (config.get("env") or {}).items():
        os.environ[name] = value
    sys.meta_path.insert(0, _ImportPolicy)
    sys.addaudithook(_audit)
    _install_pyodide_http()


def prepare():
    """Start-up work, done while the process waits warm so that runs do not pay for it."""
    _install_http()


# HTTP through the host's broker -------------------------------------------------------------


def broker_request(method, url, headers, body):
    """Sends one request to the host's broker and returns (status, reason, final_url, headers, body)."""
    request = json.dumps({
        "method": method,
        "url": url,
        "headers": [[str(key), str(value)] for key, value in headers],
        "body": base64.b64encode(body or b"").decode("ascii"),
    }).encode("utf-8")
    descriptor = os.open(BROKER_DEVICE, os.O_RDWR)
    try:
        view = memoryview(request)
        while view:
            view = view[os.write(descriptor, view):]
        chunks = []
        while True:
            chunk = os.read(descriptor, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    answer = json.loads(b"".join(chunks))
    if not answer.get("ok"):
        reason = answer.get("reason")
        message = answer.get("message") or "the request failed"
        if reason == "denied":
            raise PermissionError(message)
        if reason == "timeout":
            raise TimeoutError(message)
        raise ConnectionError(message)
    return (answer["status"], answer.get("statusText", ""), answer.get("url", url), answer.get("headers", []),
            base64.b64decode(answer.get("body", "")))


def _install_http():
    import email.message
    import io
    import urllib.error
    import urllib.request
    import urllib.response

    def brokered_open(handler, request):
        body = request.data
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = b"".join(bytes(part) for part in body)
        headers = list(request.header_items())
        try:
            status, reason, final_url, answer_headers, data = broker_request(
                request.get_method(), request.full_url, headers, body)
        except PermissionError:
            raise
        except (ConnectionError, TimeoutError) as error:
            raise urllib.error.URLError(error) from None
        message = email.message.Message()
        for key, value in answer_headers:
            message[key] = value
        response = urllib.response.addinfourl(io.BytesIO(data), message, final_url, status)
        response.msg = reason
        return response

    urllib.request.HTTPHandler.http_open = brokered_open
    urllib.request.HTTPSHandler.https_open = brokered_open


class FetchResponse:
    """What `pyodide.http.pyfetch` returns, answered by the host's broker."""

    def __init__(self, status, status_text, url, headers, body):
        self.status = status
        self.status_text = status_text
        self.url = url
        self.headers = {key.lower(): value for key, value in headers}
        self.ok = 200 <= status < 300
        self.redirected = url is not None
        self.type = "basic"
        self._body = body

    def raise_for_status(self):
        if not self.ok:
            raise OSError(f"{self.status} {self.status_text} for url: {self.url}")

    async def bytes(self):
        return self._body

    async def buffer(self):
        return memoryview(self._body)

    async def string(self):
        return self._body.decode("utf-8", "replace")

    async def text(self):
        return self._body.decode("utf-8", "replace")

    async def json(self, **kwargs):
        return json.loads(self._body, **kwargs)

    def clone(self):
        return FetchResponse(self.status, self.status_text, self.url, list(self.headers.items()), self._body)


async def pyfetch(url, **kwargs):
    """`pyodide.http.pyfetch` through the broker: method, headers and body as in fetch()."""
    body = kwargs.get("body")
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = kwargs.get("headers") or {}
    status, reason, final_url, answer_headers, data = broker_request(
        str(kwargs.get("method", "GET")), str(url), list(dict(headers).items()), body)
    return FetchResponse(status, reason, final_url, answer_headers, data)


def open_url(url):
    """`pyodide.http.open_url`: the body of a GET as a text stream."""
    import io

    status, reason, final_url, answer_headers, data = broker_request("GET", str(url), [], None)
    return io.StringIO(data.decode("utf-8", "replace"))


def _install_pyodide_http():
    """`pyodide.http` for notebooks written for JupyterLite; the rest of `pyodide` stays blocked."""
    import types

    package = types.ModuleType("pyodide", "nbsandbox: only pyodide.http is available")
    package.__path__ = []
    http = types.ModuleType("pyodide.http", "pyfetch and open_url through the nbsandbox network broker")
    http.pyfetch = pyfetch
    http.open_url = open_url
    http.FetchResponse = FetchResponse
    package.http = http
    sys.modules["pyodide"] = package
    sys.modules["pyodide.http"] = http
