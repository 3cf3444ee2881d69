"""The rule catalogue: what each rule id means, how severe it is by default, and its Bandit twin.

A severity of "policy" means the policy decides it (magics, imports, unparsable cells).
"""

RULESET_VERSION = "3"

SEVERITIES = ("info", "low", "medium", "high", "critical")
RANK = {name: position for position, name in enumerate(SEVERITIES)}


class Rule:
    __slots__ = ("id", "severity", "title", "why", "bandit")

    def __init__(self, rule_id, severity, title, why, bandit=None):
        self.id = rule_id
        self.severity = severity
        self.title = title
        self.why = why
        self.bandit = bandit

    def as_dict(self):
        return {"id": self.id, "severity": self.severity, "title": self.title, "why": self.why, "bandit": self.bandit}


_RULES = [
    Rule("NBS-EXEC-001", "low", "exec/eval/compile of non-literal code",
         "Runs code the checker cannot see; common in benign notebooks, so only flagged.", "B102"),
    Rule("NBS-EXEC-002", "critical", "code-execution trick",
         "Reaching eval/exec/__import__ through builtins, getattr with built strings, import_module "
         "of a computed or dangerous module name, or sys.modules hides what runs from static checks.", None),
    Rule("NBS-INTRO-001", "high", "interpreter introspection walk",
         "Dunder and frame walks (__subclasses__, __globals__, f_back, gc referrers) reach objects "
         "that were never imported, a classic sandbox escape.", None),
    Rule("NBS-PROC-001", "critical", "process spawn",
         "Starting processes or shells escapes the Python-level view of what a notebook does.", "B603"),
    Rule("NBS-NET-001", "high", "raw socket use",
         "Raw sockets bypass the HTTP-level network policy.", None),
    Rule("NBS-NET-002", "low", "HTTP request without timeout",
         "A request without a timeout can hang the run forever.", "B113"),
    Rule("NBS-FFI-001", "critical", "foreign function interface",
         "ctypes/cffi reach native memory and functions, outside every Python-level guard.", None),
    Rule("NBS-BRIDGE-001", "critical", "Pyodide/JavaScript bridge",
         "js, pyodide.ffi/code and micropip reach the host JavaScript runtime or install code.", None),
    Rule("NBS-DESER-001", "high", "unsafe deserialisation",
         "pickle-family loaders, torch.load without weights_only and unsafe YAML loaders run code "
         "embedded in the data.", "B301"),
    Rule("NBS-HUB-001", "low", "model hub download",
         "Downloads model files from a hub; the weights are data, but large and unvetted.", None),
    Rule("NBS-HUB-002", "high", "trust_remote_code=True",
         "Downloads and runs Python code shipped with a model repository.", None),
    Rule("NBS-SECRET-001", "high", "hard-coded secret",
         "Credentials in a notebook leak with every copy of it.", "B105"),
    Rule("NBS-FS-001", "medium", "write outside writable paths",
         "Writes or deletes a literal absolute path the policy does not let the run write.", None),
    Rule("NBS-IMPORT-001", "policy", "import refused by policy",
         "The policy's import lists refuse this module.", None),
    Rule("NBS-PARSE-001", "policy", "unparsable code",
         "Code the checker cannot parse cannot be vetted.", None),
    Rule("NBS-MARIMO-001", "high", "marimo unparsable cell",
         "marimo keeps code it could not parse as a string; it cannot be vetted.", None),
    Rule("NBS-MAGIC-001", "policy", "IPython line magic",
         "Line magics run IPython machinery outside plain Python.", None),
    Rule("NBS-MAGIC-002", "policy", "IPython cell magic",
         "Cell magics can run whole cells as another language.", None),
    Rule("NBS-SHELL-001", "policy", "shell escape",
         "!cmd runs a shell command.", "B605"),
    Rule("NBS-PIP-001", "policy", "package install",
         "pip/conda installs add code from a registry.", None),
]

RULES = {rule.id: rule for rule in _RULES}


def catalogue():
    """The catalogue as plain data, for documentation and the TypeScript side."""
    return [rule.as_dict() for rule in _RULES]
