"""IPython syntax to plain Python of the same shape.

`transform(source)` returns Python source with exactly as many lines as the input, every magic,
shell escape and help line replaced by something that parses at the same indentation, and the
facts about what was replaced. Line numbers of anything found later in the Python stay right.
Self-contained (standard library only): the runner reuses it.
"""
import re
import shlex

# Cell magics whose body is still Python: only their first line is IPython syntax.
PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})

_NAME = re.compile(r"[A-Za-z_][\w.]*")
_ASSIGN = re.compile(r"^([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*([!%])")
_HELP_AFTER = re.compile(r"^[A-Za-z_*][\w.*]*(?:\(\))?\s*(\?{1,2})\s*$")
_HELP_BEFORE = re.compile(r"^(\?{1,2})\s*(?:[A-Za-z_*%][\w.*%]*(?:\(\))?)?\s*$")
_CLASSIC_FIRST = re.compile(r"^>>>( |$)")
_CLASSIC_PROMPT = re.compile(r"^(?:>>>|\.\.\.)( |$)")
_IPYTHON_FIRST = re.compile(r"^In \[\d+\]: ")
_IPYTHON_PROMPT = re.compile(r"^(?:In \[\d+\]: |\s*\.\.\.+: ?)")
# Automagic is only taken where the line cannot be Python: a magic or alias name followed by a
# word (`ls nbpackage`); a bare `ls` or `ls -l` stays Python.
_AUTOMAGIC = re.compile(r"^([A-Za-z_]\w*)\s+(?=[A-Za-z_/~$\d{\"'])(?!(?:and|or|if|else|in|is|not|for|async|await|lambda)\b)")
_ALIASES = frozenset({"cat", "cp", "ls", "mkdir", "mv", "rm", "rmdir", "ldir", "lf", "lk", "lx", "ll",
                      "clear", "less", "man", "more"})
_AUTOMAGICS = _ALIASES | frozenset({
    "alias", "alias_magic", "autoawait", "autocall", "automagic", "bookmark", "cd", "colors", "conda",
    "config", "dhist", "dirs", "doctest_mode", "ed", "edit", "env", "gui", "hist", "history",
    "killbgscripts", "load", "load_ext", "loadpy", "logoff", "logon", "logstart", "logstate", "logstop",
    "lsmagic", "macro", "magic", "matplotlib", "notebook", "page", "pastebin", "pdb", "pdef", "pdoc",
    "pfile", "pinfo", "pinfo2", "pip", "popd", "pprint", "precision", "prun", "psearch", "psource",
    "pushd", "pwd", "pycat", "pylab", "quickref", "recall", "rehashx", "reload_ext", "rerun", "reset",
    "reset_selective", "run", "save", "sc", "set_env", "store", "sx", "system", "tb", "time", "timeit",
    "unalias", "unload_ext", "who", "who_ls", "whos", "xdel", "xmode",
})
_SHELL_SPLIT = re.compile(r"&&|\|\||;|\|")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_]\w*=")
_PYTHON = re.compile(r"^(?:python[\d.]*|\{sys\.executable\}|\$\{?sys\.executable\}?|[\w/.-]*/python[\d.]*)$")
_PIP = re.compile(r"^(?:[\w/.-]*/)?pip[\d.]*$")
_CONDA = frozenset({"conda", "mamba", "micromamba"})
# Install options that take a value: the value is not a package.
_VALUE_FLAGS = frozenset({
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
    "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi",
    "--only-binary", "--no-binary", "--trusted-host", "--cache-dir", "--src", "--progress-bar",
    "--channel", "-n", "--name", "-p", "--config-settings", "-C", "--report", "--python",
})
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 60


def transform(source):
    """Returns (python_source, facts); facts = {"magics": [...], "dependencies": [...]}.

    Each magic fact has kind (line|cell|shell|pip), name, line, and for locating findings
    column, endLine and endColumn (1-based).
    """
    lines = _cleanup(source.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    out = list(lines)
    magics = []
    dependencies = []
    start = 0

    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        text = lines[first]
        body = text.lstrip()[2:]
        name = _magic_name(body)
        indent = len(text) - len(text.lstrip())
        magics.append(_fact("cell", name, first, indent, first, len(text)))
        if name in PYTHON_BODY_CELL_MAGICS:
            out[first] = ""
            start = first + 1
        else:
            # Not Python (bash, writefile, html, ...): nothing below may be read as code.
            for i in range(first, len(lines)):
                out[i] = ""
            return "\n".join(out), {"magics": magics, "dependencies": dependencies}

    triple = None  # the closing delimiter of an open triple-quoted string
    single = None  # the quote of a single-quoted string continued by a backslash
    depth = 0
    continued = False
    i = start
    while i < len(lines):
        text = lines[i]
        if triple is None and single is None and depth == 0 and not continued:
            found = _statement_magic(text)
            if found is not None:
                end = i
                while lines[end].endswith("\\") and end + 1 < len(lines):
                    end += 1
                kind, name, replacement, packages = found
                indent = len(text) - len(text.lstrip())
                magics.append(_fact(kind, name, i, indent, end, len(lines[end])))
                for package in packages:
                    if package not in dependencies:
                        dependencies.append(package)
                out[i] = text[:indent] + replacement
                for j in range(i + 1, end + 1):
                    out[j] = ""
                i = end + 1
                continue
        triple, single, depth, continued = _scan(text, triple, single, depth)
        i += 1
    return "\n".join(out), {"magics": magics, "dependencies": dependencies}


def _cleanup(lines):
    """IPython's own clean-up before anything else: a common leading indent and pasted
    `>>> ` / `In [1]: ` prompts are removed (lines stay where they are)."""
    first = next((text for text in lines if text.strip()), None)
    if first is None:
        return lines
    indent = first[: len(first) - len(first.lstrip())]
    if indent:
        lines = [text[len(indent):] if text.startswith(indent) else text for text in lines]
        first = first[len(indent):]
    for opener, prompt in ((_CLASSIC_FIRST, _CLASSIC_PROMPT), (_IPYTHON_FIRST, _IPYTHON_PROMPT)):
        if opener.match(first):
            return [prompt.sub("", text, count=1) for text in lines]
    return lines


def _fact(kind, name, line, indent, end_line, end_length):
    return {"kind": kind, "name": name[:MAX_NAME], "line": line + 1, "column": indent + 1,
            "endLine": end_line + 1, "endColumn": end_length + 1}


def _magic_name(text):
    match = _NAME.match(text)
    if match:
        return match.group(0)
    return "!" if text.startswith("!") else ""


def _statement_magic(text):
    """(kind, name, replacement, packages) when the line starts with IPython syntax, else None."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("%%"):
        # A cell magic below the first line is an IPython error; still not Python.
        return ("cell", _magic_name(stripped[2:]), "pass", [])
    if stripped.startswith("%"):
        return _line_magic(stripped[1:], "pass")
    if stripped.startswith("!"):
        return _shell(stripped[1:], "pass")
    match = _HELP_AFTER.match(stripped)
    if match:
        return ("line", "pinfo2" if match.group(1) == "??" else "pinfo", "pass", [])
    match = _HELP_BEFORE.match(stripped)
    if match:
        return ("line", "pinfo2" if match.group(1) == "??" else "pinfo", "pass", [])
    match = _AUTOMAGIC.match(stripped)
    if match and match.group(1) in _AUTOMAGICS:
        if match.group(1) in _ALIASES:
            return _shell(stripped, "pass")
        return _line_magic(stripped, "pass")
    match = _ASSIGN.match(stripped)
    if match:
        targets = match.group(1)
        rest = stripped[match.end():]
        replacement = targets + " = None"
        if match.group(2) == "%":
            return _line_magic(rest, replacement)
        return _shell(rest, replacement)
    return None


def _line_magic(text, replacement):
    name = _magic_name(text)
    args = text[len(name):]
    if name in ("pip", "conda", "mamba", "micromamba", "uv"):
        words = _words(args)
        if name == "uv" and words[:1] == ["pip"]:
            words = words[1:]
        return ("pip", name, replacement, _install_packages(words))
    if name in ("sx", "system"):
        return ("shell", name, replacement, [])
    return ("line", name, replacement, [])


def _shell(command, replacement):
    parts = [part for part in _SHELL_SPLIT.split(command) if part.strip()]
    packages = []
    all_installs = bool(parts)
    first_word = ""
    for part in parts:
        words = _words(part)
        while words and _ENV_ASSIGN.match(words[0]):
            words = words[1:]
        if not first_word and words:
            first_word = words[0]
        tool, rest = _installer(words)
        if tool is None:
            all_installs = False
        else:
            packages.extend(_install_packages(rest))
    if all_installs:
        return ("pip", first_word if first_word in _CONDA else "pip", replacement, packages)
    return ("shell", first_word.rsplit("/", 1)[-1] or "!", replacement, packages)


def _installer(words):
    """(tool, arguments after the tool) when the words run pip or conda, else (None, [])."""
    if not words:
        return None, []
    head = words[0]
    if _PIP.match(head):
        return "pip", words[1:]
    if head in _CONDA:
        return head, words[1:]
    if head == "uv" and words[1:2] == ["pip"]:
        return "pip", words[2:]
    if _PYTHON.match(head) and len(words) >= 3 and words[1] == "-m" and _PIP.match(words[2]):
        return "pip", words[3:]
    return None, []


def _words(text):
    text = text.replace("\\\n", " ")
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def _install_packages(words):
    """Package names of an install command (flags, versions, URLs and paths dropped)."""
    position = 0
    while position < len(words) and words[position].startswith("-"):
        position += 2 if words[position] in _VALUE_FLAGS else 1
    if position >= len(words) or words[position] not in ("install", "add"):
        return []
    packages = []
    skip = False
    for word in words[position + 1:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word in _VALUE_FLAGS
            continue
        if "::" in word:
            word = word.split("::", 1)[1]
        if "://" in word or word.startswith(("git+", ".", "/", "~", "{", "$")) or "/" in word:
            continue
        match = _PACKAGE.match(word)
        if match:
            name = match.group(0)[:MAX_NAME]
            if name not in packages:
                packages.append(name)
    return packages


def _scan(text, triple, single, depth):
    """Carries string/bracket/continuation state across one line of Python."""
    position = 0
    length = len(text)
    escaped_end = False
    while position < length:
        char = text[position]
        quote = triple or single
        if quote:
            if char == "\\":
                escaped_end = position == length - 1
                position += 2
                continue
            if text.startswith(quote, position):
                position += len(quote)
                triple = single = None
                continue
            position += 1
            continue
        if char == "#":
            break
        if char in "\"'":
            if text.startswith(char * 3, position):
                triple = char * 3
                position += 3
            else:
                single = char
                position += 1
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "\\" and position == length - 1:
            return triple, single, depth, True
        position += 1
    if single is not None and not escaped_end:
        single = None  # unterminated: a syntax error the parser will report
    return triple, single, depth, False
