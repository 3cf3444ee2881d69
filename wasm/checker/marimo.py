"""Splitting a marimo notebook file into its cells, from the AST only (never imported).

Cells: functions decorated with @app.cell / @app.function / @app.class_definition (plain or
called), the body of `with app.setup:` and `app._unparsable_cell(...)` statements, in file
order. Nodes keep the file's own line numbers.
"""
import ast

_CELL_DECORATORS = frozenset({"cell", "function", "class_definition"})


class MarimoCell:
    __slots__ = ("index", "name", "statements", "line")

    def __init__(self, index, name, statements, line):
        self.index = index
        self.name = name
        self.statements = statements
        self.line = line


def is_marimo(tree):
    """`import marimo` (any alias) plus a call of <that alias>.App(...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.asname or alias.name for alias in node.names if alias.name == "marimo")
    if not names:
        return False
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "App"
        and isinstance(node.func.value, ast.Name) and node.func.value.id in names
        for node in ast.walk(tree)
    )


def _app_attribute(node):
    """'cell' for app.cell or app.cell(...), else None (any app variable name)."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr
    return None


def split(tree):
    """(cells, rest): the cells in file order and the top-level statements outside any cell."""
    cells = []
    rest = []
    for statement in tree.body:
        kind = _kind(statement)
        if kind == "body":
            cells.append(MarimoCell(len(cells), statement.name, list(statement.body), statement.lineno))
        elif kind == "whole":
            cells.append(MarimoCell(len(cells), statement.name, [statement], statement.lineno))
        elif kind == "setup":
            cells.append(MarimoCell(len(cells), "setup", list(statement.body), statement.lineno))
        elif kind == "unparsable":
            cells.append(MarimoCell(len(cells), None, [statement], statement.lineno))
        else:
            rest.append(statement)
    return cells, rest


def _kind(statement):
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        for decorator in statement.decorator_list:
            attribute = _app_attribute(decorator)
            if attribute == "cell" and not isinstance(statement, ast.ClassDef):
                return "body"
            if attribute in _CELL_DECORATORS:
                return "whole"
        return None
    if isinstance(statement, ast.With) and len(statement.items) == 1:
        if _app_attribute(statement.items[0].context_expr) == "setup":
            return "setup"
        return None
    if (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr == "_unparsable_cell"):
        return "unparsable"
    return None
