"""Checks the AWS calls each function made against that function's IAM policy in template.yaml.

The deployed-path tests (tests/e2e/deployed.rs) run the functions' real binaries, record every
AWS call each one makes (through a proxy in front of moto) and call this script with them:

    python tests/template/iam_calls.py CALLS.json [--quiet]

CALLS.json: {"runs": [{"stage": "it1", "table": "<table name>",
                       "calls": {"<binary>": [{"action": "dynamodb:PutItem",
                                               "resource": "<table>[/index/<name>] | <secret id>
                                                            | <bus name>"}]}}]}
(one run per deployed stack; each stack names its resources for a stage of its own).

A call the function's policy does not allow (as AWS would refuse it) fails (exit 1); grants
that no call of any run used are listed (unless --quiet), so the policy can be trimmed or the
gap in the tests seen.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_template import _as_list, binary_of, functions, load_template  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"
# Secrets Manager appends six random characters to a secret's name in its ARN.
SECRET_SUFFIX = "-AbCdEf"


def _sub(text: str, stage: str, arns: dict[str, str]) -> str:
    def value(m: re.Match) -> str:
        name = m.group(1)
        fixed = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "Stage": stage,
        }
        if name in fixed:
            return fixed[name]
        return arns.get(name.split(".")[0], f"unresolved:{name}")

    return re.sub(r"\$\{([^}]+)\}", value, text)


def resource_arns(template: dict, stage: str, table: str) -> dict[str, str]:
    """The ARN each referenced resource has in the test run."""
    arns: dict[str, str] = {}
    for name, res in template["Resources"].items():
        kind = res.get("Type")
        props = res.get("Properties", {}) or {}
        if kind == "AWS::DynamoDB::Table":
            arns[name] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
        elif kind == "AWS::SecretsManager::Secret":
            secret = _sub(props["Name"]["Fn::Sub"], stage, {})
            arns[name] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}{SECRET_SUFFIX}"
        elif kind == "AWS::Events::EventBus":
            bus = _sub(props["Name"]["Fn::Sub"], stage, {})
            arns[name] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{bus}"
    return arns


def _render(value, stage: str, arns: dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    (key, arg), = value.items()
    if key == "Ref":
        return arns.get(arg, f"unresolved:{arg}")
    if key == "Fn::GetAtt":
        return arns.get(arg[0], f"unresolved:{arg[0]}")
    if key == "Fn::Sub":
        return _sub(arg if isinstance(arg, str) else arg[0], stage, arns)
    return f"unresolved:{value}"


def call_arn(call: dict) -> str:
    service = call["action"].split(":")[0]
    name = call["resource"]
    if name.startswith("arn:"):
        return name
    if service == "dynamodb":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    if service == "secretsmanager":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}{SECRET_SUFFIX}"
    if service == "events":
        return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"


def grants(function: dict, stage: str, arns: dict[str, str]) -> list[tuple[str, str, str]]:
    """(action, resource pattern, the resource as written) of every Allow statement of the
    function's inline policies."""
    out = []
    for policy in function["Properties"].get("Policies", []) or []:
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement", []):
            if statement.get("Effect", "Allow") != "Allow":
                continue
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    out.append((action, _render(resource, stage, arns), json.dumps(resource)))
    return out


def check(calls_file: Path, template_path: Path | None = None) -> tuple[list[str], list[str]]:
    """(refused calls, unused grants)."""
    data = json.loads(calls_file.read_text(encoding="utf-8"))
    template = load_template(template_path) if template_path else load_template()
    by_binary = {binary_of(fn): fn for fn in functions(template).values()}
    refused, used = [], set()
    for run in data["runs"]:
        arns = resource_arns(template, run["stage"], run["table"])
        for binary, calls in sorted(run["calls"].items()):
            allowed = grants(by_binary[binary], run["stage"], arns)
            for call in calls:
                arn = call_arn(call)
                match = [
                    (binary, a, written)
                    for a, r, written in allowed
                    if fnmatch.fnmatchcase(call["action"], a) and fnmatch.fnmatchcase(arn, r)
                ]
                if not match:
                    refused.append(f"{binary}: {call['action']} on {arn}")
                used.update(match)
    unused = [
        f"{binary}: {a} on {written}"
        for binary, fn in sorted(by_binary.items())
        for a, _, written in grants(fn, "STAGE", resource_arns(template, "STAGE", "TABLE"))
        if (binary, a, written) not in used
    ]
    return sorted(set(refused)), unused


def main() -> int:
    refused, unused = check(Path(sys.argv[1]))
    if "--quiet" not in sys.argv:
        for line in unused:
            print(f"granted, not used by any test: {line}")
    for line in refused:
        print(f"REFUSED by the function's IAM policy: {line}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
