"""nbsandbox static checker: parses notebook cells and marimo files with `ast`, never runs them.

check(request_json) -> response_json; check_request(dict) -> dict. Standard library only, so it
runs the same under Pyodide and native CPython 3.11+.
"""
import json

from .catalogue import RULESET_VERSION, catalogue
from .engine import run as check_request

__all__ = ["check", "check_request", "catalogue", "RULESET_VERSION"]


def check(request_json):
    return json.dumps(check_request(json.loads(request_json)))
