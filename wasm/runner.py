"""Runs notebook cells inside the sandbox interpreter.

The interpreter worker loads this file into a private namespace and calls ``run_cell`` once per
cell. Output leaves as it is written: stream text through file descriptors 1 and 2, results and
errors as JSON lines to the output device; the worker passes both on to the host in order. This
module returns plain JSON strings and never holds a JavaScript object, because user code can
reach its globals through frame walks. Its limits are a courtesy for a clean error message:
the host counts and caps everything again.
"""

import ast
import errno
import io
import json
import linecache
import os
import sys
import traceback


class OutputLimitExceeded(BaseException):
    """Raised into user code once it has written more output than the run allows.

    A BaseException so that ``except Exception`` in user code does not swallow it.
    """


_limits = {"maxOutputBytes": 1 << 20, "maxResultBytes": 1 << 16}
_cell = {"index": 0, "truncated": False}
_output = {"fd": None}
_STREAM_FD = {"stdout": 1, "stderr": 2}


def _write_stream(name, text):
    data = memoryview(text.encode("utf-8", "backslashreplace"))
    try:
        while data:
            data = data[os.write(_STREAM_FD[name], data):]
    except OSError as error:
        if error.errno != errno.EFBIG:
            raise
        _cell["truncated"] = True
        raise OutputLimitExceeded(f"{name} exceeded {_limits['maxOutputBytes']} bytes; the run was stopped") from None


def _emit(output):
    """Sends one result or error output of the running cell to the host."""
    line = json.dumps({"t": "output", "index": _cell["index"], "output": output}).encode("utf-8")
    os.write(_output["fd"], line)


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
        _write_stream(self._stream_name, text)
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
        _write_stream(
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
            _emit(_result_output(value, execution_count))


def configure(config_json):
    """Takes the run's limits and opens the output device; called once, before any user code."""
    config = json.loads(config_json)
    _limits.update({key: config[key] for key in ("maxOutputBytes", "maxResultBytes")})
    _output["fd"] = os.open(config["outputDevice"], os.O_WRONLY)


def _report(exc):
    try:
        _emit(_error_output(exc))
    except MemoryError:
        # Formatting the error needed memory the run no longer has: report its type alone.
        _emit({"output_type": "error", "ename": type(exc).__name__, "evalue": "", "traceback": []})


def run_cell(index, source, execution_count):
    _cell["index"] = index
    _cell["truncated"] = False
    namespace = sys.modules["__main__"].__dict__
    status = "ok"
    try:
        _execute(source, _cell_filename(index), namespace, execution_count)
    except BaseException as exc:  # noqa: BLE001 - every failure of user code becomes an error output
        status = "error"
        _report(exc)
        exc.__traceback__ = None
    finally:
        sys.last_exc = sys.last_type = sys.last_value = sys.last_traceback = None
    return json.dumps({"status": status, "truncated": _cell["truncated"]})


sys.stdout = _CellStream("stdout")
sys.stderr = _CellStream("stderr")
