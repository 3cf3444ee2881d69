"""Hard-coded secret detection: known token formats, and secret-looking names bound to literal
strings. Placeholder-aware. Callers get a description of the kind of secret, never its text.

Every pattern here sees attacker-controlled text, so each must run in linear time: bounded
repetitions, no lookahead over an unbounded run, nothing nested that can match the same text
two ways. What a regular expression cannot say cheaply (a token must contain a digit) is
checked in Python on the match. test_checker.py measures the growth of every pattern.
"""
import re

# Real tokens are far shorter; the bound keeps the work per match position constant.
_MAX_TOKEN = 255

_TOKENS = [
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), None),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,%d}" % _MAX_TOKEN), None),
    ("GitHub token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,%d}" % _MAX_TOKEN), None),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z]{30,%d}" % _MAX_TOKEN), None),
    ("OpenAI API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,%d}" % _MAX_TOKEN), str.isdigit),
    ("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,%d}" % _MAX_TOKEN), None),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,%d}" % _MAX_TOKEN), None),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), None),
    ("Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,%d}" % _MAX_TOKEN), None),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"), None),
]

_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "token", "apikey", "passphrase", "credential", "credentials"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_PLACEHOLDER_WORDS = re.compile(
    r"your|placeholder|changeme|change_me|example|dummy|replace|insert|redacted|xxxx|here|todo|"
    r"fixme|sample|<|>|\{|\}|\$|\.\.\.|\*\*\*|%s",
    re.IGNORECASE,
)
_FILLER_ONLY = re.compile(r"^[xX*.\-_ ]*$")
_IDENTIFIER_UPPER = re.compile(r"^[A-Z_]+$")
MIN_LENGTH = 8


def token_kind(text):
    """The kind of known credential format the string contains ('AWS access key'), else None."""
    if len(text) < 16:
        return None
    for kind, pattern, needs in _TOKENS:
        for match in pattern.finditer(text):
            token = match.group(0)
            if needs is not None and not any(map(needs, token)):
                continue
            if kind == "private key" or not _looks_filled_in(token):
                return kind
    return None


def _looks_filled_in(token):
    """hf_xxxxxxxx... and similar made-up values have a handful of distinct characters."""
    body = token.split("_", 1)[-1] if "_" in token[:12] else token.split("-", 1)[-1]
    return len(set(body.lower())) < 6 or "xxxx" in body.lower()


def secret_name(name):
    """True for names like db_password, HF_TOKEN, apiKey, client_secret (the name ends with it)."""
    if not name:
        return False
    words = [word.lower() for word in _WORD.findall(name)]
    if not words:
        return False
    last = words[-1]
    if last in _SECRET_WORDS:
        return True
    return last == "key" and len(words) >= 2 and words[-2] in ("api", "secret", "access", "private", "auth")


def is_placeholder(value):
    if len(value) < MIN_LENGTH or any(char.isspace() for char in value):
        return True
    if _FILLER_ONLY.match(value) or _IDENTIFIER_UPPER.match(value):
        return True
    if value.lower() in ("password", "changeme", "secret", "token", "none", "null"):
        return True
    return bool(_PLACEHOLDER_WORDS.search(value))
