"""NBS-FS-001: writes and deletions of literal absolute paths outside the writable paths.

Only literal paths are judged: a computed path is unknown here, and the runtime file system
guards decide about it. Relative paths stay inside the working directory the run is given.
"""
import ast
import posixpath

from ..resolve import fold_string
from ..text import short

_WRITE_MODE = frozenset("wax+")
_OPENERS = frozenset({"builtins.open", "io.open", "codecs.open"})
# qualified name -> positions of the path arguments it writes or deletes
_PATH_ARGUMENTS = {
    "os.remove": (0,), "os.unlink": (0,), "os.rmdir": (0,), "os.removedirs": (0,),
    "os.rename": (0, 1), "os.renames": (0, 1), "os.replace": (0, 1), "os.mkdir": (0,), "os.makedirs": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.lchown": (0,), "os.truncate": (0,), "os.symlink": (1,),
    "os.link": (1,), "shutil.rmtree": (0,), "shutil.copy": (1,), "shutil.copy2": (1,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (0, 1), "shutil.copymode": (1,), "shutil.copystat": (1,),
    "shutil.chown": (0,),
}
_PATH_METHODS = frozenset({
    "write_text", "write_bytes", "unlink", "rmdir", "mkdir", "touch", "rename", "replace", "chmod",
    "symlink_to", "hardlink_to",
})
_PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PosixPath", "pathlib.PurePath", "pathlib.PurePosixPath"})


def outside(path, writable):
    """True when a literal absolute path is not under any writable prefix."""
    if not path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    for prefix in writable:
        prefix = posixpath.normpath(prefix) if prefix else ""
        if prefix == "/" or normal == prefix or normal.startswith(prefix.rstrip("/") + "/"):
            return False
    return True


def _argument(call, position, names=()):
    if position < len(call.args):
        return call.args[position]
    for item in call.keywords:
        if item.arg in names:
            return item.value
    return None


def _check(context, node, path_node):
    path, _ = fold_string(path_node)
    if path is not None and outside(path, context.policy.writable_paths):
        context.emit("NBS-FS-001", node, "writes " + repr(short(path)) + " outside the writable paths")
        return True
    return False


def _write_mode(mode_node):
    mode, _ = fold_string(mode_node)
    return mode is not None and bool(_WRITE_MODE & set(mode))


def on_call(context, node, parent):
    function = node.func
    qualified = context.resolve(function)
    if qualified in _OPENERS:
        if _write_mode(_argument(node, 1, ("mode",))):
            _check(context, node, _argument(node, 0, ("file", "filename")))
        return
    if qualified in _PATH_ARGUMENTS:
        for position in _PATH_ARGUMENTS[qualified]:
            if _check(context, node, _argument(node, position, ("src", "dst", "path", "name"))):
                return
        return
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Call):
        receiver = function.value
        if context.resolve(receiver.func) not in _PATH_CLASSES or not receiver.args:
            return
        writes = function.attr in _PATH_METHODS or (function.attr == "open" and _write_mode(_argument(node, 0, ("mode",))))
        if writes:
            _check(context, node, receiver.args[0])


HANDLERS = [(ast.Call, on_call)]
