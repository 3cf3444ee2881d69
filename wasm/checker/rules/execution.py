"""NBS-EXEC-001/002 and NBS-INTRO-001: running hidden code and walking the interpreter."""
import ast

from ..resolve import GLOBALS, fold_string
from ..text import short
from .table import DANGEROUS_ROOTS

_CODE_RUNNERS = {"builtins.exec": "B102", "builtins.eval": "B307", "builtins.compile": None}
_IMPORTERS = frozenset({"builtins.__import__"})
INTRO_ATTRIBUTES = frozenset({
    "__subclasses__", "__globals__", "__mro__", "__bases__", "__base__", "__code__", "__closure__",
    "__builtins__", "func_globals", "gi_frame", "gi_code", "cr_frame", "ag_frame", "tb_frame",
    "f_back", "f_globals", "f_builtins", "f_locals",
})
_SYS_MODULES_READS = frozenset({"get", "values", "items", "setdefault", "__getitem__", "copy", "pop", "keys"})
_CODE_BUILDERS = frozenset({"types.FunctionType", "types.CodeType", "types.LambdaType"})


def _first_argument(call, keyword):
    if call.args:
        return call.args[0]
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    return None


def _dangerous_target(qualified):
    return qualified == GLOBALS or (qualified is not None and qualified.split(".")[0] in DANGEROUS_ROOTS)


def on_call(context, node, parent):
    qualified = context.resolve(node.func)
    if qualified is None:
        return
    plain = context.resolver.is_plain_builtin(node.func)
    name = qualified.rpartition(".")[2]
    if qualified in _CODE_RUNNERS:
        if not plain:
            context.emit("NBS-EXEC-002", node, name + " reached through an alias or builtins", _CODE_RUNNERS[qualified])
            return
        code = _first_argument(node, "source")
        if name in ("exec", "eval") and isinstance(code, ast.Call) and context.resolve(code.func) == "builtins.compile":
            context.emit("NBS-EXEC-002", node, name + " of freshly compiled code", _CODE_RUNNERS[qualified])
            return
        text, built = fold_string(code)
        if text is None or built:
            context.emit("NBS-EXEC-001", node, name + " of code the checker cannot see", _CODE_RUNNERS[qualified])
        elif not context.analyse_literal_code(text, node):
            context.emit("NBS-EXEC-001", node, name + " of code the checker cannot analyse", _CODE_RUNNERS[qualified])
        return
    if qualified in _IMPORTERS:
        module, built = fold_string(_first_argument(node, "name"))
        if not plain or module is None or built:
            context.emit("NBS-EXEC-002", node, "__import__ of a computed or hidden name")
        return
    if qualified == "builtins.getattr" and len(node.args) >= 2:
        attribute, built = fold_string(node.args[1])
        target = context.resolve(node.args[0])
        if _dangerous_target(target) and (attribute is None or built):
            context.emit("NBS-EXEC-002", node, "getattr on " + short(target.split(".")[0]) + " with a computed name")
        elif attribute in INTRO_ATTRIBUTES:
            context.emit("NBS-INTRO-001", node, "introspection through " + attribute)
        return
    if qualified.startswith("sys.modules.") and name in _SYS_MODULES_READS:
        context.emit("NBS-EXEC-002", node, "module lookup through sys.modules")
        return
    if qualified in _CODE_BUILDERS:
        context.emit("NBS-EXEC-002", node, "function built from a code object")


def on_reference(context, node, parent):
    if not isinstance(getattr(node, "ctx", None), ast.Load) or context.is_call_target(node):
        return
    if context.resolver.assigned_alias(node):
        return
    qualified = context.resolve(node)
    if qualified in _CODE_RUNNERS or qualified in _IMPORTERS:
        name = qualified.rpartition(".")[2]
        if context.resolver.is_plain_builtin(node):
            context.emit("NBS-EXEC-001", node, "reference to " + name, _CODE_RUNNERS.get(qualified))
        else:
            context.emit("NBS-EXEC-002", node, name + " reached through an alias or builtins", _CODE_RUNNERS.get(qualified))


def on_subscript(context, node, parent):
    if not isinstance(node.ctx, ast.Load):
        return
    base = context.resolve(node.value)
    if base is None:
        return
    key, built = fold_string(node.slice)
    if base == "sys.modules":
        context.emit("NBS-EXEC-002", node, "module lookup through sys.modules")
    elif base == GLOBALS and key == "__builtins__":
        context.emit("NBS-EXEC-002", node, "builtins reached through globals()")
    elif (base == "builtins" or base.endswith(".__dict__")) and _dangerous_target(base) and (key is None or built):
        context.emit("NBS-EXEC-002", node, "lookup in " + short(base.split(".")[0]) + " with a computed name")
    else:
        on_reference(context, node, parent)


def on_attribute(context, node, parent):
    if node.attr in INTRO_ATTRIBUTES:
        context.emit("NBS-INTRO-001", node, "introspection through " + node.attr)
    on_reference(context, node, parent)


HANDLERS = [
    (ast.Call, on_call),
    (ast.Name, on_reference),
    (ast.Attribute, on_attribute),
    (ast.Subscript, on_subscript),
]
