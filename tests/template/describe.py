"""Prints what the deployed-path tests need from template.yaml, as JSON, per function binary:
its Timeout and MemorySize (Globals merged), its Environment variable names, and its HttpApi
routes. Reuses the loader of test_template.py so both read the template the same way.

Run by tests/src/deployed.rs with the project's Python (.venv): python tests/template/describe.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_template import function_by_binary, http_api_events, load_template  # noqa: E402


def describe() -> dict:
    out = {}
    for binary, (name, function) in sorted(function_by_binary(load_template()).items()):
        props = function["Properties"]
        variables = (props.get("Environment") or {}).get("Variables") or {}
        out[binary] = {
            "resource": name,
            "timeout": props.get("Timeout", 3),
            "memory": props.get("MemorySize", 128),
            "environment": sorted(variables),
            "routes": [[method, path] for method, path in http_api_events(function)],
        }
    return out


if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=1)
    print()
