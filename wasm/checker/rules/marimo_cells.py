"""NBS-MARIMO-001: code marimo kept as a string because it could not parse it."""
import ast


def on_call(context, node, parent):
    if context.marimo and isinstance(node.func, ast.Attribute) and node.func.attr == "_unparsable_cell":
        context.emit("NBS-MARIMO-001", node, "marimo cell that could not be parsed")


HANDLERS = [(ast.Call, on_call)]
