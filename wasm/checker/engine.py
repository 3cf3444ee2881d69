"""The check itself: cells (or a marimo file) and a policy in, findings and a verdict out.

Only parses: user code is never imported, executed or compiled to run. Anything a hostile
source does to the parser or the walk becomes an NBS-PARSE-001 finding, never an exception.
"""
import ast
import re

from . import magics as magic_syntax
from . import marimo
from .catalogue import RANK, RULES, RULESET_VERSION
from .policy import Policy
from .resolve import Resolver
from .rules import Context, analyse, preorder
from .text import short
from .rules.table import prefer

# Cell magics that hand the cell to a shell or another interpreter.
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "system", "sx", "perl", "ruby", "python", "python2",
                                "python3", "pypy", "!"})
_MAGIC_RULES = {"line": "NBS-MAGIC-001", "cell": "NBS-MAGIC-002", "shell": "NBS-SHELL-001", "pip": "NBS-PIP-001"}
TOO_DEEP = "too deeply nested to analyse"
# A cell of bare dotted names (`collections.`, a tab-completion demo) fails to compile and so
# cannot run anything: reported, but not as a reason to refuse the notebook.
_INERT_LINE = re.compile(r"^\s*(?:#.*|[A-Za-z_][\w.]*\s*)?$")


class _Unit:
    """One stretch of Python to analyse, with what is needed to place findings in it."""

    def __init__(self, index, cell_id, statements, lines):
        self.index = index
        self.cell_id = cell_id
        self.statements = statements
        self.lines = lines
        self._encoded = {}

    def column(self, line, offset):
        """ast offsets count UTF-8 bytes; findings count characters, from 1."""
        if offset is None:
            return 1
        if line not in self._encoded:
            text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
            self._encoded[line] = text.encode("utf-8", "surrogatepass")
        return len(self._encoded[line][:offset].decode("utf-8", "ignore")) + 1


class _Findings:
    def __init__(self, policy):
        self.policy = policy
        self.items = []

    def add(self, rule_id, severity, message, cell, cell_id, line, column, end_line, end_column, bandit=None):
        severity = self.policy.override(rule_id, severity)
        if severity is None:
            return
        self.items.append({
            "ruleId": rule_id, "severity": severity, "message": message, "cell": cell, "cellId": cell_id,
            "line": line, "column": column, "endLine": end_line, "endColumn": end_column,
            "bandit": bandit if bandit is not None else RULES[rule_id].bandit,
        })

    def at_node(self, unit, rule_id, node, message, bandit=None, severity=None):
        line = getattr(node, "lineno", None) or 1
        end_line = getattr(node, "end_lineno", None) or line
        column = unit.column(line, getattr(node, "col_offset", None))
        end_column = unit.column(end_line, getattr(node, "end_col_offset", None))
        self.add(rule_id, severity or RULES[rule_id].severity, message, unit.index, unit.cell_id,
                 line, column, end_line, end_column, bandit)

    def unparsable(self, cell, cell_id, message, line=1, column=1, end_line=None, end_column=None, severity=None):
        line = max(1, line or 1)
        column = max(1, column or 1)
        self.add("NBS-PARSE-001", severity or self.policy.unparsable, message, cell, cell_id, line, column,
                 max(line, end_line or line), end_column or column)


def _parse(source):
    """(tree, None) or (None, (message, line, column, end_line, end_column))."""
    try:
        return ast.parse(source, "<cell>", "exec"), None
    except SyntaxError as error:
        message = "cannot parse: " + short(error.msg or "invalid syntax")
        return None, (message, error.lineno, error.offset, getattr(error, "end_lineno", None),
                      getattr(error, "end_offset", None))
    except (RecursionError, MemoryError, ValueError, OverflowError):
        return None, (TOO_DEEP, 1, 1, None, None)


def magic_severity(policy, kind, name):
    key = ("%%" if kind == "cell" else "%") + name
    if kind == "shell" and name not in ("sx", "system"):
        if "!" in policy.magic_deny:
            return "critical"
        return "info" if "!" in policy.magic_allow else policy.magic_shell
    if name in policy.magic_deny or key in policy.magic_deny:
        return "critical"
    if name in policy.magic_allow or key in policy.magic_allow:
        return "info"
    if kind == "pip":
        return policy.magic_pip
    if kind == "shell" or (kind == "cell" and name in _SHELL_CELL_MAGICS):
        return max(policy.magic_unknown, policy.magic_shell, key=RANK.__getitem__)
    return policy.magic_unknown


def _magic_message(kind, name):
    if kind == "cell":
        return "cell magic %%" + short(name)
    if kind == "line":
        return "line magic %" + short(name)
    if kind == "pip":
        return "package install with " + short(name)
    return "shell command " + repr(short(name))


def _cell_units(request, policy, findings, facts):
    units = []
    for position, cell in enumerate(request.get("cells") or ()):
        cell = cell if isinstance(cell, dict) else {}
        index = cell.get("index", position)
        cell_id = cell.get("id")
        source = cell.get("source") or ""
        if isinstance(source, list):
            source = "".join(str(part) for part in source)
        python, cell_facts = magic_syntax.transform(str(source))
        facts.append({
            "index": index, "id": cell_id,
            "magics": [{"kind": m["kind"], "name": m["name"], "line": m["line"]} for m in cell_facts["magics"]],
            "dependencies": cell_facts["dependencies"],
        })
        for fact in cell_facts["magics"]:
            findings.add(_MAGIC_RULES[fact["kind"]], magic_severity(policy, fact["kind"], fact["name"]),
                         _magic_message(fact["kind"], fact["name"]), index, cell_id, fact["line"],
                         fact["column"], fact["endLine"], fact["endColumn"])
        tree, problem = _parse(python)
        if tree is None:
            inert = problem[0] != TOO_DEEP and all(_INERT_LINE.match(text) for text in python.split("\n"))
            findings.unparsable(index, cell_id, *problem, severity="info" if inert else None)
            continue
        units.append(_Unit(index, cell_id, tree.body, python.split("\n")))
    return units


def _marimo_units(request, findings, facts):
    source = str(request.get("source") or "").replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    tree, problem = _parse(source)
    if tree is None:
        findings.unparsable(0, None, *problem)
        return []
    if not marimo.is_marimo(tree):
        facts.append({"index": 0, "id": None, "magics": [], "dependencies": []})
        return [_Unit(0, None, tree.body, lines)]
    cells, rest = marimo.split(tree)
    units = [_Unit(cell.index, None, cell.statements, lines) for cell in cells]
    facts.extend({"index": cell.index, "id": None, "magics": [], "dependencies": []} for cell in cells)
    # Code between cells still runs when the file is loaded: analyse it with the cell before it.
    by_cell = {}
    for statement in rest:
        owner = max((cell.index for cell in cells if cell.line <= statement.lineno), default=0)
        by_cell.setdefault(owner, []).append(statement)
    units.extend(_Unit(owner, None, statements, lines) for owner, statements in sorted(by_cell.items()))
    return units


def _deduplicated(items):
    """One finding per node: the most severe rule, plus NBS-EXEC-002 which may accompany it."""
    groups = {}
    for item in items:
        key = (item["cell"], item["line"], item["column"], item["endLine"], item["endColumn"])
        groups.setdefault(key, []).append(item)
    kept = []
    for group in groups.values():
        tricks = [item for item in group if item["ruleId"] == "NBS-EXEC-002"][:1]
        others = [item for item in group if item["ruleId"] != "NBS-EXEC-002"]
        if others:
            tricks.append(max(others, key=lambda item: RANK[item["severity"]]))
        kept.extend(tricks)
    kept.sort(key=lambda item: (item["cell"], item["line"], item["column"], item["endLine"],
                                item["endColumn"], item["ruleId"]))
    return kept


def run(request):
    if not isinstance(request, dict):
        raise ValueError("a check request must be a JSON object")
    policy = Policy(request.get("policy"))
    findings = _Findings(policy)
    facts = []
    is_marimo = request.get("kind") == "marimo"
    units = _marimo_units(request, findings, facts) if is_marimo else _cell_units(request, policy, findings, facts)

    resolver = Resolver(prefer)
    orders = []  # per unit its walk, or None when it could not be made (the analysis reports it)
    for unit in units:
        try:
            order = preorder(unit.statements)
            resolver.collect(order)
        except (RecursionError, MemoryError):
            order = None
        orders.append(order)
    for unit, order in zip(units, orders):
        context = Context(resolver, policy,
                          lambda rule_id, node, message, bandit, severity, unit=unit:
                          findings.at_node(unit, rule_id, node, message, bandit, severity),
                          marimo=is_marimo)
        try:
            analyse(unit.statements, context, order)
        except (RecursionError, MemoryError):
            findings.unparsable(unit.index, unit.cell_id, TOO_DEEP)
        except Exception:  # fail closed: what cannot be analysed is treated as unparsable
            findings.unparsable(unit.index, unit.cell_id, "the checker could not analyse this cell")

    kept = _deduplicated(findings.items)
    return {
        "verdict": policy.verdict(kept),
        "findings": kept,
        "cells": facts,
        "rulesetVersion": RULESET_VERSION,
    }
