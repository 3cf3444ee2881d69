"""Import events (import, from-import, literal __import__/import_module): the policy's import
lists (NBS-IMPORT-001) and modules whose mere import is the danger (FFI, the JS bridge)."""
import ast
import sys

from ..resolve import imported_name
from ..text import short
from .table import bridge_module, classify, ffi_module

_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
_IMPORT_FUNCTIONS = frozenset({"builtins.__import__", "importlib.import_module", "importlib.__import__"})


def _prefixes(module):
    parts = module.split(".")
    return [".".join(parts[: index + 1]) for index in range(len(parts))]


def _denied(module, policy):
    return any(prefix in policy.import_deny for prefix in _prefixes(module))


def _allowed(module, policy):
    if policy.import_allow is None:
        return True
    if module.split(".")[0] in _STDLIB:
        return True
    return any(prefix in policy.import_allow for prefix in _prefixes(module))


def _event(context, node, module, check_allow=True):
    """One imported module at node; returns True when something was reported."""
    if ffi_module(module):
        context.emit("NBS-FFI-001", node, "imports " + short(module))
    elif bridge_module(module):
        context.emit("NBS-BRIDGE-001", node, "imports " + short(module))
    policy = context.policy
    if _denied(module, policy) or (check_allow and not _allowed(module, policy)):
        context.emit("NBS-IMPORT-001", node, "import of " + short(module) + " is refused by the policy",
                     severity=policy.import_severity)


def on_import(context, node, parent):
    for alias in node.names:
        _event(context, alias, alias.name)


def on_import_from(context, node, parent):
    if node.level or not node.module:
        return
    _event(context, node, node.module)
    for alias in node.names:
        if alias.name != "*":
            qualified = node.module + "." + alias.name
            # Only what the module import itself did not already cover.
            if not (ffi_module(node.module) or bridge_module(node.module)) and (ffi_module(qualified) or bridge_module(qualified)):
                _event(context, alias, qualified, check_allow=False)
            elif not _denied(node.module, context.policy) and _denied(qualified, context.policy):
                _event(context, alias, qualified, check_allow=False)
            found = classify(qualified)
            if found:
                context.emit(found[0], alias, "imports " + short(found[2]), found[1])


def on_call(context, node, parent):
    if context.resolve(node.func) in _IMPORT_FUNCTIONS:
        module = imported_name(node)
        if module and not module.startswith("."):
            _event(context, node, module)


HANDLERS = [
    (ast.Import, on_import),
    (ast.ImportFrom, on_import_from),
    (ast.Call, on_call),
]
