"""Runs notebook cells inside the sandbox interpreter.

The interpreter worker loads this file into a private namespace and calls ``run_cell`` once per
cell. It returns plain JSON strings and never holds a JavaScript object, because user code can
reach this module's globals through frame walks.
"""

import ast
import io
import json
import linecache
import sys
import traceback


class OutputLimitExceeded(BaseException):
    """Raised into user code once it has written more output than the run allows.

    A BaseException so that ``except Exception`` in user code does not swallow it.
    """


_limits = {"maxOutputBytes": 1 << 20, "maxResultBytes": 1 << 16}
_used = {"stdout": 0, "stderr": 0}
_cell = {"outputs": [], "truncated": False}


def _append_stream(name, text):
    limit = _limits["maxOutputBytes"]
    size = len(text.encode("utf-8", "surrogatepass"))
    if _used[name] + size > limit:
        room = max(0, limit - _used[name])
        text = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
        _used[name] = limit
        _cell["truncated"] = True
        _add_stream_output(name, text)
        raise OutputLimitExceeded(f"{name} exceeded {limit} bytes; the run was stopped")
    _used[name] += size
    _add_stream_output(name, text)


def _add_stream_output(name, text):
    if not text:
        return
    outputs = _cell["outputs"]
    last = outputs[-1] if outputs else None
    if last is not None and last["output_type"] == "stream" and last["name"] == name:
        last["text"] += text
    else:
        outputs.append({"output_type": "stream", "name": name, "text": text})


class _CellStream(io.TextIOBase):
    def __init__(self, name):
        self._stream_name = name

    @property
    def name(self):
        return f"<{self._stream_name}>"

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        _append_stream(self._stream_name, text)
        return len(text)

    def flush(self):
        pass


def _cell_filename(index):
    return f"<cell {index}>"


def _user_frames(exc):
    """Frames of the user's cells, with runs of the same frame folded as Python does."""
    lines, previous, repeats = [], None, 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.startswith("<cell "):
            continue
        key = (frame.filename, frame.lineno, frame.name)
        if key == previous:
            repeats += 1
            if repeats >= 3:
                continue
        else:
            if repeats >= 3:
                lines.append(f"  [Previous line repeated {repeats - 2} more times]\n")
            previous, repeats = key, 0
        cell = frame.filename[len("<cell "):-1]
        lines.append(f"  Cell [{cell}], line {frame.lineno}, in {frame.name}\n")
        if frame.line:
            lines.append(f"    {frame.line.strip()}\n")
    if repeats >= 3:
        lines.append(f"  [Previous line repeated {repeats - 2} more times]\n")
    return lines


def _format_traceback(exc):
    frames = _user_frames(exc)
    if len(frames) > 64:
        frames = frames[:8] + ["  ...\n"] + frames[-54:]
    lines = (["Traceback (most recent call last):\n"] + frames) if frames else []
    lines.extend(traceback.format_exception_only(type(exc), exc))
    limit = _limits["maxResultBytes"]
    lines = [line[:limit] for line in lines]
    # The whole traceback stays within two result caps: keep its head line and as much of the
    # end (where the exception is) as fits.
    if sum(map(len, lines)) > 2 * limit:
        kept, room = [], 2 * limit - len(lines[0]) - 8
        for line in reversed(lines[1:]):
            if len(line) > room:
                break
            kept.append(line)
            room -= len(line)
        lines = [lines[0], "  ...\n"] + kept[::-1]
    return lines


def _error_output(exc):
    return {
        "output_type": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc)[: _limits["maxResultBytes"]],
        "traceback": _format_traceback(exc),
    }


def _result_output(value, execution_count):
    text = repr(value)
    limit = _limits["maxResultBytes"]
    if len(text) > limit:
        text = text[:limit] + "…"
        _cell["truncated"] = True
    return {
        "output_type": "execute_result",
        "execution_count": execution_count,
        "data": {"text/plain": text},
        "metadata": {},
    }


# IPython syntax to Python of the same lines (wasm/checker/magics.py), set by the interpreter.
_transform_magics = None
_MAGIC_LABEL = {"line": "%{}", "cell": "%%{}", "shell": "!{}", "pip": "{} install"}


def _without_magics(source):
    """Magics and shell lines do not run here: each becomes a no-op and a note on stderr."""
    if _transform_magics is None:
        return source
    python, facts = _transform_magics(source)
    for fact in facts["magics"]:
        label = _MAGIC_LABEL[fact["kind"]].format(fact["name"])
        _append_stream(
            "stderr",
            f"nbsandbox: line {fact['line']}: {label} skipped"
            " (IPython magics and shell commands do not run in the sandbox)\n",
        )
    return python


# Runs a coroutine to completion (wasm/event_loop.py), set by the interpreter.
_run_awaitable = None
_CO_COROUTINE = 0x0080


def _run_code(code, namespace):
    """Evaluates compiled cell code; code with top-level `await` runs on the sandbox's loop."""
    result = eval(code, namespace)
    if code.co_flags & _CO_COROUTINE:
        return _run_awaitable(result)
    return result


def _execute(source, filename, namespace, execution_count):
    lines = source.splitlines(keepends=True)
    # Tracebacks quote the cell as written, magics included.
    linecache.cache[filename] = (len(source), None, lines, filename)
    tree = ast.parse(_without_magics(source), filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    _run_code(compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
    if last is not None:
        value = _run_code(compile(last, filename, "eval", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
        if value is not None:
            namespace["_"] = value
            _cell["outputs"].append(_result_output(value, execution_count))


def configure(limits_json):
    _limits.update(json.loads(limits_json))


def run_cell(index, source, execution_count):
    _cell["outputs"] = []
    _cell["truncated"] = False
    namespace = sys.modules["__main__"].__dict__
    status, ename = "ok", None
    try:
        _execute(source, _cell_filename(index), namespace, execution_count)
    except BaseException as exc:  # noqa: BLE001 - every failure of user code becomes an error output
        status, ename = "error", type(exc).__name__
        _cell["outputs"].append(_error_output(exc))
        exc.__traceback__ = None
    finally:
        sys.last_exc = sys.last_type = sys.last_value = sys.last_traceback = None
    return json.dumps(
        {"status": status, "ename": ename, "outputs": _cell["outputs"], "truncated": _cell["truncated"]}
    )


sys.stdout = _CellStream("stdout")
sys.stderr = _CellStream("stderr")
