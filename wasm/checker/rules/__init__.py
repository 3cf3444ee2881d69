"""The AST rules: one pre-order walk per cell, dispatching each node to the rule modules.

Handlers receive (context, node, parent). Outer nodes are seen before inner ones, so a finding
on a whole chain (a.__mro__[1].__subclasses__) can silence the same rule on its inner links.
"""
import ast


from . import execution, files, imports, marimo_cells, secret_rules, uses

_MODULES = (imports, execution, uses, files, secret_rules, marimo_cells)
_HANDLERS = {}
for _module in _MODULES:
    for _type, _handler in _module.HANDLERS:
        _HANDLERS.setdefault(_type, []).append(_handler)

MAX_LITERAL_NESTING = 8


class Context:
    """What handlers share while walking one cell."""

    def __init__(self, resolver, policy, emit, marimo=False, nesting=0):
        self.resolver = resolver
        self.nesting = nesting
        self.policy = policy
        self._emit = emit
        self.marimo = marimo
        self.parents = {}
        self._silenced = set()

    def resolve(self, node):
        return self.resolver.resolve(node)

    def emit(self, rule_id, node, message, bandit=None, severity=None):
        if (id(node), rule_id) in self._silenced:
            return
        self._emit(rule_id, node, message, bandit, severity)
        self.silence_chain(node, rule_id)

    def silence_chain(self, node, rule_id):
        """The links inside a reported chain are part of the same use: report it once."""
        current = node
        for _ in range(10000):
            if isinstance(current, (ast.Attribute, ast.Subscript)):
                current = current.value
            elif isinstance(current, ast.Call):
                current = current.func
            else:
                return
            self._silenced.add((id(current), rule_id))

    def analyse_literal_code(self, text, at):
        """Code written as a string literal and run by exec/eval/compile is checked like any other,
        its findings placed on the call that runs it. False when it cannot be analysed."""
        if self.nesting >= MAX_LITERAL_NESTING:
            return False
        try:
            statements = ast.parse(text, "<literal>", "exec").body
            order = preorder(statements)
            self.resolver.collect(order)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False

        def emit_at_call(rule_id, node, message, bandit, severity):
            self._emit(rule_id, at, message + " (in code run from a string)", bandit, severity)

        inner = Context(self.resolver, self.policy, emit_at_call, self.marimo, self.nesting + 1)
        analyse(statements, inner, order)
        return True

    def is_call_target(self, node):
        parent = self.parents.get(id(node))
        return isinstance(parent, ast.Call) and parent.func is node


def preorder(statements):
    """Every node under the statements with its parent, depth first in source order: one walk
    that both the binding collection and the analysis use."""
    order = []
    append = order.append
    stack = [(statement, None) for statement in reversed(statements)]
    pop, push = stack.pop, stack.append
    node_type = ast.AST
    while stack:
        item = pop()
        append(item)
        node = item[0]
        # ast.iter_child_nodes, inlined and pushed in reverse so that children pop in order.
        for name in reversed(node._fields):
            value = getattr(node, name, None)
            if isinstance(value, node_type):
                push((value, node))
            elif isinstance(value, list):
                for child in reversed(value):
                    if isinstance(child, node_type):
                        push((child, node))
    return order


def analyse(statements, context, order=None):
    parents = context.parents
    handlers = _HANDLERS
    for node, parent in preorder(statements) if order is None else order:
        parents[id(node)] = parent
        for handler in handlers.get(type(node), ()):
            handler(context, node, parent)
