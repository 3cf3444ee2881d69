"""Calls and references of dangerous module attributes: process spawn, raw sockets, FFI, the JS
bridge, unsafe deserialisation, hub downloads and requests without timeouts.

A reference without a call (f = os.system) is reported too: aliasing is how checks are evaded.
"""
import ast

from ..resolve import fold_string
from ..text import short
from .table import DANGEROUS_ROOTS, bridge_module, classify, ffi_module

_SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
_HUB_DOWNLOADS = frozenset({"hf_hub_download", "snapshot_download"})


def _keyword(call, name):
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def _has_star_kwargs(call):
    return any(item.arg is None for item in call.keywords)


def _is_true(node):
    return isinstance(node, ast.Constant) and node.value is True


def _chain_root(node):
    for _ in range(10000):
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return node
    return None


def _report(context, node, qualified, verb):
    found = classify(qualified)
    if found:
        rule, bandit, what = found
        if rule == "NBS-PROC-001" and isinstance(node, ast.Call) and qualified.startswith("subprocess."):
            bandit = "B602" if _is_true(_keyword(node, "shell")) else "B603"
        context.emit(rule, node, verb + " " + short(what), bandit)
        return True
    if ffi_module(qualified) or bridge_module(qualified):
        # Uses through a plain import are covered by the finding on the import itself.
        root = _chain_root(node)
        if isinstance(root, ast.Name) and root.id in context.resolver.imported:
            bound = context.resolver.resolve(root)
            if ffi_module(bound) or bridge_module(bound):
                return False
        rule = "NBS-FFI-001" if ffi_module(qualified) else "NBS-BRIDGE-001"
        context.emit(rule, node, verb + " " + short(qualified))
        return True
    return False


_LITERAL_IMPORTERS = frozenset({"importlib.import_module", "importlib.__import__"})


def _imports_literal_module(call):
    """import_module("json") is a plain import (judged by the import rules), not a trick; a module
    that reaches the interpreter or the host, imported by a string, stays one."""
    if not call.args:
        return False
    name, built = fold_string(call.args[0])
    if name is None or built or name.startswith("."):
        return False
    return name.split(".")[0] not in DANGEROUS_ROOTS


def on_call(context, node, parent):
    qualified = context.resolve(node.func)
    literal_import = qualified in _LITERAL_IMPORTERS and _imports_literal_module(node)
    if qualified and not literal_import and not _report(context, node, qualified, "calls"):
        _conditional(context, node, qualified)
    _hub(context, node, qualified)


def _conditional(context, node, qualified):
    if qualified == "torch.load":
        if not _is_true(_keyword(node, "weights_only")):
            context.emit("NBS-DESER-001", node, "torch.load without weights_only=True", "B614")
    elif qualified in ("yaml.load", "yaml.load_all"):
        loader = node.args[1] if len(node.args) > 1 else _keyword(node, "Loader")
        loader_name = None
        if isinstance(loader, ast.Attribute):
            loader_name = loader.attr
        elif isinstance(loader, ast.Name):
            loader_name = loader.id
        if loader_name not in _SAFE_YAML_LOADERS:
            context.emit("NBS-DESER-001", node, "yaml.load without a safe loader", "B506")
    elif qualified in ("numpy.load",):
        if _is_true(_keyword(node, "allow_pickle")):
            context.emit("NBS-DESER-001", node, "numpy.load with allow_pickle=True", "B301")
    elif qualified.rpartition(".")[0] in ("requests", "httpx") and qualified.rpartition(".")[2] in _HTTP_VERBS:
        timeout = _keyword(node, "timeout")
        missing = timeout is None and not _has_star_kwargs(node)
        if missing or (isinstance(timeout, ast.Constant) and timeout.value is None):
            context.emit("NBS-NET-002", node, short(qualified) + " without a timeout", "B113")


def _hub(context, node, qualified):
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    if name == "from_pretrained" or name in _HUB_DOWNLOADS or (qualified or "").rpartition(".")[2] in _HUB_DOWNLOADS:
        context.emit("NBS-HUB-001", node, "downloads from a model hub (" + short(name or qualified) + ")")
    for item in node.keywords:
        if item.arg == "trust_remote_code" and _is_true(item.value):
            context.emit("NBS-HUB-002", item, "trust_remote_code runs code from the model repository")


def on_reference(context, node, parent):
    if not isinstance(getattr(node, "ctx", None), ast.Load) or context.is_call_target(node):
        return
    if context.resolver.assigned_alias(node):
        return
    qualified = context.resolve(node)
    if qualified:
        _report(context, node, qualified, "references")


HANDLERS = [
    (ast.Call, on_call),
    (ast.Name, on_reference),
    (ast.Attribute, on_reference),
    (ast.Subscript, on_reference),
]
