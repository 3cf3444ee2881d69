"""NBS-SECRET-001: hard-coded credentials (known token formats, secret-named literals)."""
import ast

from .. import secrets
from ..text import short


def _literal(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _target_name(target):
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript):
        return _literal(target.slice)
    return None


def _named(context, name, value_node, bandit):
    value = _literal(value_node)
    if value is not None and secrets.secret_name(name) and not secrets.is_placeholder(value):
        context.emit("NBS-SECRET-001", value_node, "hard-coded secret in " + repr(short(name)), bandit)


def on_constant(context, node, parent):
    if isinstance(node.value, str):
        kind = secrets.token_kind(node.value)
        if kind:
            context.emit("NBS-SECRET-001", node, "hard-coded " + kind, "B105")


def on_assign(context, node, parent):
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        _named(context, _target_name(target), node.value, "B105")


def on_keyword(context, node, parent):
    if node.arg:
        _named(context, node.arg, node.value, "B106")


def on_compare(context, node, parent):
    name = _target_name(node.left)
    for comparator in node.comparators:
        _named(context, name, comparator, "B105")


def on_dict(context, node, parent):
    for key, value in zip(node.keys, node.values):
        _named(context, _literal(key) if key is not None else None, value, "B105")


def on_arguments(context, node, parent):
    positional = node.posonlyargs + node.args
    for argument, default in zip(positional[len(positional) - len(node.defaults):], node.defaults):
        _named(context, argument.arg, default, "B107")
    for argument, default in zip(node.kwonlyargs, node.kw_defaults):
        if default is not None:
            _named(context, argument.arg, default, "B107")


HANDLERS = [
    (ast.Constant, on_constant),
    (ast.Assign, on_assign),
    (ast.AnnAssign, on_assign),
    (ast.keyword, on_keyword),
    (ast.Compare, on_compare),
    (ast.Dict, on_dict),
    (ast.arguments, on_arguments),
]
