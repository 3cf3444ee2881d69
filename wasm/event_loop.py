"""An asyncio event loop for the sandbox, and top-level `await` in cells.

Pyodide's own loop runs on the JavaScript event loop, which the sandbox keeps out of Python's
reach, and asyncio's selector loop needs a socket pair, which the sandbox refuses. This loop has
timers and callbacks and no I/O: `asyncio.run`, `asyncio.sleep`, `gather`, tasks and queues work;
anything waiting for a socket or a file descriptor has nothing to wait on.
"""

import asyncio
import time
import warnings


class _TimerSelector:
    """The loop's "selector": waits out the time to the next timer."""

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError("the event loop would wait forever: nothing is scheduled and the sandbox has no I/O")
        if timeout > 0:
            time.sleep(timeout)
        return []

    def close(self):
        pass


class SandboxEventLoop(asyncio.BaseEventLoop):
    def __init__(self):
        super().__init__()
        self._selector = _TimerSelector()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


class _SandboxPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return SandboxEventLoop()


def install():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(_SandboxPolicy())
    # Pyodide registers its JavaScript loop as running and wraps asyncio.run to reach it.
    asyncio.events._set_running_loop(None)
    asyncio.run = asyncio.runners.run


_cell_loop = None


def run_awaitable(awaitable):
    """Runs top-level `await` of a cell on one loop shared by the run's cells."""
    global _cell_loop
    if _cell_loop is None or _cell_loop.is_closed():
        _cell_loop = SandboxEventLoop()
        asyncio.set_event_loop(_cell_loop)
    return _cell_loop.run_until_complete(awaitable)


install()
