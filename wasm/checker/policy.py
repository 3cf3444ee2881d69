"""The parts of a policy the checker reads, with defaults for anything left out."""
from .catalogue import RANK

DEFAULT_WRITABLE = ("/tmp", "/home/pyodide")


def _severity(value, default):
    return value if value in RANK else default


class Policy:
    def __init__(self, raw):
        raw = raw if isinstance(raw, dict) else {}
        magics = raw.get("magics") or {}
        imports = raw.get("imports") or {}
        verdict = raw.get("verdict") or {}
        self.magic_allow = frozenset(str(name) for name in magics.get("allow") or ())
        self.magic_deny = frozenset(str(name) for name in magics.get("deny") or ())
        self.magic_unknown = _severity(magics.get("unknown"), "low")
        self.magic_shell = _severity(magics.get("shell"), "medium")
        self.magic_pip = _severity(magics.get("pip"), "low")
        allow = imports.get("allow")
        self.import_allow = None if allow is None else frozenset(str(name) for name in allow)
        self.import_deny = frozenset(str(name) for name in imports.get("deny") or ())
        self.import_severity = _severity(imports.get("severity"), "high")
        self.rules = raw.get("rules") or {}
        self.deny_at = verdict.get("denyAt", "high")
        self.warn_at = verdict.get("warnAt", "low")
        self.unparsable = _severity(verdict.get("unparsable"), "high")
        paths = raw.get("writablePaths")
        self.writable_paths = tuple(str(path) for path in (DEFAULT_WRITABLE if paths is None else paths))

    def override(self, rule_id, severity):
        """The severity after the policy's rule override, or None when the rule is off."""
        setting = self.rules.get(rule_id)
        if setting is None:
            return severity
        if setting == "off" or setting is False:
            return None
        if isinstance(setting, str):
            return _severity(setting, severity)
        if isinstance(setting, dict):
            if setting.get("enabled") is False:
                return None
            return _severity(setting.get("severity"), severity)
        return severity

    def verdict(self, findings):
        worst = max((RANK[finding["severity"]] for finding in findings), default=-1)
        if self.deny_at in RANK and worst >= RANK[self.deny_at]:
            return "deny"
        if self.warn_at in RANK and worst >= RANK[self.warn_at]:
            return "warn"
        return "allow"
