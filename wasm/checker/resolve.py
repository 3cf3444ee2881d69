"""Name resolution: which module attribute an expression stands for, through import aliases,
assignment aliases, builtins, literal __import__/import_module/getattr and module __dict__s.

Flow-insensitive over a whole notebook (cells share one namespace and run in any order); when a
name is bound to several things, the dangerous binding wins, since hiding a dangerous alias
behind a later harmless rebinding is an evasion.
"""
import ast
import builtins

BUILTIN_NAMES = frozenset(dir(builtins))
GLOBALS = "<globals>"  # what globals()/locals()/vars() stand for
MAX_DEPTH = 60


def fold_string(node, depth=0):
    """(value, built) for a string the code spells out literally, else (None, False).

    built is True when the string was assembled ('sys' + 'tem', f-strings, join, [::-1]):
    assembling a name is itself a sign of evasion.
    """
    if depth > MAX_DEPTH or node is None:
        return None, False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, _ = fold_string(node.left, depth + 1)
        right, _ = fold_string(node.right, depth + 1)
        if left is not None and right is not None:
            return left + right, True
        return None, False
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            text, _ = fold_string(value, depth + 1)
            if text is None:
                return None, False
            parts.append(text)
        return "".join(parts), True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        piece = node.slice
        reverse = (piece.lower is None and piece.upper is None and isinstance(piece.step, ast.UnaryOp)
                   and isinstance(piece.step.op, ast.USub) and isinstance(piece.step.operand, ast.Constant)
                   and piece.step.operand.value == 1)
        if reverse:
            text, _ = fold_string(node.value, depth + 1)
            if text is not None:
                return text[::-1], True
        return None, False
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], (ast.List, ast.Tuple))):
        glue, _ = fold_string(node.func.value, depth + 1)
        items = [fold_string(item, depth + 1)[0] for item in node.args[0].elts]
        if glue is not None and all(item is not None for item in items):
            return glue.join(items), True
    return None, False


# The only nodes that bind names the resolver follows.
_BINDINGS = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.NamedExpr)


class Resolver:
    def __init__(self, prefer=lambda qualified: False):
        self.prefer = prefer
        self.aliases = {}
        self.imported = set()  # names bound by an import statement
        self.star_modules = []

    # -- collecting bindings -------------------------------------------------------------
    def collect(self, order):
        """Bindings among the (node, parent) pairs of a walk (`rules.preorder`, which the analysis
        then uses too)."""
        nodes = [node for node, _ in order if isinstance(node, _BINDINGS)]
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self._bind(alias.asname, alias.name, imported=True)
                    else:
                        top = alias.name.split(".")[0]
                        self._bind(top, top, imported=True)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        if node.module not in self.star_modules:
                            self.star_modules.append(node.module)
                    else:
                        self._bind(alias.asname or alias.name, node.module + "." + alias.name, imported=True)
        # Twice, so that an alias of an alias defined later in the notebook still resolves.
        for _ in range(2):
            for node in nodes:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        self._bind_target(target, node.value)
                elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    self._bind_target(node.target, node.value)

    def _bind_target(self, target, value):
        if isinstance(target, ast.Name):
            qualified = self.resolve(value)
            if qualified:
                self._bind(target.id, qualified)
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for one, other in zip(target.elts, value.elts):
                self._bind_target(one, other)

    def _bind(self, name, qualified, imported=False):
        if imported:
            self.imported.add(name)
        old = self.aliases.get(name)
        if old is None or (self.prefer(qualified) and not self.prefer(old)):
            self.aliases[name] = qualified

    # -- resolving ----------------------------------------------------------------------
    def is_plain_builtin(self, node):
        """A bare builtin name as written (eval, exec): not reached through any alias."""
        return isinstance(node, ast.Name) and node.id in BUILTIN_NAMES and node.id not in self.aliases

    def assigned_alias(self, node):
        """A bare name bound by assignment: the assignment itself was the reported reference."""
        return isinstance(node, ast.Name) and node.id in self.aliases and node.id not in self.imported

    def resolve(self, node, depth=0):
        """The dotted name node stands for ('os.system', 'builtins.eval'), or None."""
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, depth + 1)
            if base is None or base == GLOBALS:
                return None
            return base + "." + node.attr
        if isinstance(node, ast.Subscript):
            key, _ = fold_string(node.slice)
            if key is None:
                return None
            return self.item(self.resolve(node.value, depth + 1), key)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value, depth + 1)
        return None

    def item(self, base, key):
        """What base[key] stands for, for namespaces indexed by a literal name."""
        if base is None:
            return None
        if base == GLOBALS:
            return "builtins" if key == "__builtins__" else self._name(key)
        if base == "sys.modules":
            return key
        if base == "builtins":
            return "builtins." + key
        if base.endswith(".__dict__"):
            return base[: -len(".__dict__")] + "." + key
        return None

    def _name(self, name):
        if name in self.aliases:
            return self.aliases[name]
        if name == "__builtins__":
            return "builtins"
        if name in BUILTIN_NAMES:
            return "builtins." + name
        for module in self.star_modules:
            if self.prefer(module + "." + name):
                return module + "." + name
        return None

    def _call(self, node, depth):
        function = self.resolve(node.func, depth + 1)
        if function is None:
            return None
        if function in ("builtins.globals", "builtins.locals") or (function == "builtins.vars" and not node.args):
            return GLOBALS
        if function == "builtins.vars" and len(node.args) == 1:
            base = self.resolve(node.args[0], depth + 1)
            return None if base is None else base + ".__dict__"
        if function in ("builtins.__import__", "importlib.__import__", "importlib.import_module"):
            name = imported_name(node)
            if name is None:
                return None
            if function == "importlib.import_module":
                return name
            fromlist = node.args[3] if len(node.args) > 3 else _keyword(node, "fromlist")
            return name if fromlist is not None and _truthy(fromlist) else name.split(".")[0]
        if function == "builtins.getattr" and len(node.args) >= 2:
            name, _ = fold_string(node.args[1])
            base = self.resolve(node.args[0], depth + 1)
            if name is None or base is None or base == GLOBALS:
                return None
            return base + "." + name
        return None


def imported_name(call):
    """The literal module name of __import__('x') / import_module('x'), else None."""
    argument = call.args[0] if call.args else _keyword(call, "name")
    name, _ = fold_string(argument)
    return name


def _keyword(call, name):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _truthy(node):
    if isinstance(node, ast.Constant):
        return bool(node.value)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return bool(node.elts)
    return True
