"""Static checks of template.yaml (the SAM template).

Run from anywhere: ``pytest tests/template``. Needs PyYAML and cfn-lint in the environment,
nothing else (the standard library does the rest).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
API_MD = REPO.parent / "shared" / "API.md"

# The routes of API.md, kept here so the check works on a fresh clone without ../shared.
# (method, path, binary of the function that serves it)
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/connect/sessions", "connect"),
    ("GET", "/connect", "connect"),
    ("POST", "/connect", "connect"),
    ("GET", "/connect.js", "connect"),
    ("GET", "/oauth/callback", "callback"),
    ("GET", "/connections", "actions"),
    ("GET", "/connections/{id}", "actions"),
    ("DELETE", "/connections/{id}", "actions"),
    ("POST", "/connections/{id}/refresh", "actions"),
    ("GET", "/connections/{id}/zoom/me", "actions"),
    ("POST", "/connections/{id}/zoom/meetings", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}", "actions"),
    ("PATCH", "/connections/{id}/zoom/meetings/{meetingId}", "actions"),
    ("DELETE", "/connections/{id}/zoom/meetings/{meetingId}", "actions"),
    ("PATCH", "/connections/{id}/zoom/meetings/{meetingId}/livestream", "actions"),
    ("GET", "/connections/{id}/zoom/recordings", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}/recordings", "actions"),
    ("GET", "/connections/{id}/zoom/meetings", "actions"),
    ("PUT", "/connections/{id}/zoom/meetings/{meetingId}/status", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}/invitation", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}/livestream", "actions"),
    ("PATCH", "/connections/{id}/zoom/meetings/{meetingId}/livestream/status", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}/registrants", "actions"),
    ("POST", "/connections/{id}/zoom/meetings/{meetingId}/registrants", "actions"),
    ("PUT", "/connections/{id}/zoom/meetings/{meetingId}/registrants/status", "actions"),
    ("DELETE", "/connections/{id}/zoom/meetings/{meetingId}/registrants/{registrantId}", "actions"),
    ("GET", "/connections/{id}/zoom/past_meetings/{meetingId}", "actions"),
    ("GET", "/connections/{id}/zoom/past_meetings/{meetingId}/instances", "actions"),
    ("GET", "/connections/{id}/zoom/past_meetings/{meetingId}/participants", "actions"),
    ("DELETE", "/connections/{id}/zoom/meetings/{meetingId}/recordings", "actions"),
    ("DELETE", "/connections/{id}/zoom/meetings/{meetingId}/recordings/{recordingId}", "actions"),
    ("GET", "/connections/{id}/zoom/meetings/{meetingId}/meeting_summary", "actions"),
    ("GET", "/connections/{id}/zoom/webinars", "actions"),
    ("POST", "/connections/{id}/zoom/webinars", "actions"),
    ("GET", "/connections/{id}/zoom/webinars/{webinarId}", "actions"),
    ("PATCH", "/connections/{id}/zoom/webinars/{webinarId}", "actions"),
    ("DELETE", "/connections/{id}/zoom/webinars/{webinarId}", "actions"),
    ("GET", "/connections/{id}/zoom/webinars/{webinarId}/registrants", "actions"),
    ("POST", "/connections/{id}/zoom/webinars/{webinarId}/registrants", "actions"),
    ("ANY", "/connections/{id}/proxy/{proxy+}", "actions"),
    ("GET", "/healthz", "actions"),
    ("GET", "/openapi.json", "actions"),
    ("POST", "/webhooks/zoom", "webhooks"),
    ("POST", "/webhooks/zoom/apps/{client_id}", "webhooks"),
]

# Routes the template serves beyond API.md's contract, each documented in docs/api.md (a
# `### \`METHOD /path\`` heading): the contract does not forbid more, but nothing slips in unnoticed.
EXTRA_ROUTES: list[tuple[str, str, str]] = [
    # The outcome of a connect session, for the connect helper when the popup lost its opener.
    ("GET", "/connect/status", "connect"),
]

# Routes of API.md that no function serves yet, with the issue that builds each. The contract
# runs ahead of the code: a route listed here must not be in the template (building it means
# moving it into ROUTES), and a route of API.md in neither list fails.
NOT_YET_BUILT: dict[tuple[str, str], str] = {}

SENSITIVE_SERVICES = ("secretsmanager", "dynamodb", "events")

REQUIRED_ENV = [
    "CONNECTIONS_TABLE",
    "SECRETS_PREFIX",
    "EVENT_BUS_NAME",
    "PLATFORM_APP_SECRET_ID",
    "CONNECTOR_SECRET_ID",
    "CONNECTOR_PUBLIC_URL",
    "CONNECTOR_UI_ORIGINS",
    "REFRESH_AHEAD_SECS",
    "KEEPALIVE_HOURS",
    "REFRESH_MODE",
    "REFRESH_TPS",
    "RUST_LOG",
]


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags into their long form."""


def _construct_cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path = TEMPLATE) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def resources_of_type(template: dict, type_name: str) -> dict[str, dict]:
    return {
        name: res
        for name, res in template["Resources"].items()
        if res.get("Type") == type_name
    }


def functions(template: dict) -> dict[str, dict]:
    """Every AWS::Serverless::Function with Globals.Function merged under its Properties."""
    globals_fn = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, res in resources_of_type(template, "AWS::Serverless::Function").items():
        props = copy.deepcopy(globals_fn)
        _merge_maps(props, res.get("Properties", {}))
        out[name] = {**res, "Properties": props}
    return out


def _merge_maps(into: dict, value: dict) -> None:
    """SAM's Globals rule: maps merge key by key, recursively (a function's
    Environment.Variables adds to the global ones); anything else is replaced."""
    for key, v in value.items():
        if isinstance(v, dict) and isinstance(into.get(key), dict):
            merged = copy.deepcopy(into[key])
            _merge_maps(merged, v)
            into[key] = merged
        else:
            into[key] = copy.deepcopy(v)


def binary_of(function: dict) -> str:
    return function["Metadata"]["BuildProperties"]["Binary"]


def function_by_binary(template: dict) -> dict[str, tuple[str, dict]]:
    return {binary_of(fn): (name, fn) for name, fn in functions(template).items()}


def http_api_events(function: dict) -> list[tuple[str, str]]:
    events = function["Properties"].get("Events", {}) or {}
    return [
        (ev["Properties"]["Method"].upper(), ev["Properties"]["Path"])
        for ev in events.values()
        if ev.get("Type") == "HttpApi"
    ]


# ------------------------------------------------------------------------------------------
# 1. IAM: no wide grants for Secrets Manager, DynamoDB, EventBridge
# ------------------------------------------------------------------------------------------
_PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}
# Managed policies / SAM policy templates that grant these services wholesale (or on a
# table's every index, or any secret): never acceptable here.
_BROAD_POLICY_NAME = re.compile(
    r"(dynamodb|secretsmanager|eventbridge|cloudwatchevents|events)", re.IGNORECASE
)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _render(value, template: dict | None) -> list[str]:
    """Possible string values of a Resource entry. Resource attributes and references to
    resources become the placeholder NAMED (a specific resource); parameter references are
    substituted by their default (the operator could pass anything, the default is what we
    ship). Anything we cannot reason about renders as "*" so that it fails closed."""
    params = (template or {}).get("Parameters", {})
    resources = (template or {}).get("Resources", {})

    def sub_var(name: str, variables: dict) -> list[str]:
        if name in variables:
            return _render(variables[name], template)
        if name in _PSEUDO:
            return [_PSEUDO[name]]
        base = name.split(".")[0]
        if base in resources:
            return ["NAMED"]
        if name in params:
            return [str(params[name].get("Default", "*")) or "*"]
        return ["*"]

    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            if arg in _PSEUDO:
                return [_PSEUDO[arg]]
            if arg in resources:
                return ["NAMED"]
            if arg in params:
                return [str(params[arg].get("Default", "*")) or "*"]
            return ["*"]
        if key == "Fn::GetAtt":
            return ["NAMED"]
        if key == "Fn::If":
            return _render(arg[1], template) + _render(arg[2], template)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            results = [""]
            pos = 0
            for m in re.finditer(r"\$\{([^}]+)\}", text):
                literal = text[pos : m.start()]
                options = [literal] if m.group(1).startswith("!") else None
                if options is None:
                    options = [literal + v for v in sub_var(m.group(1), variables)]
                results = [r + o for r in results for o in options]
                pos = m.end()
            return [r + text[pos:] for r in results]
        if key == "Fn::Join":
            sep, parts = arg
            results = [""]
            for i, part in enumerate(parts):
                opts = _render(part, template)
                results = [r + (sep if i else "") + o for r in results for o in opts]
            return results
    return ["*"]


def _resource_is_wide(resource: str) -> bool:
    """True if an ARN (or "*") does not name a specific resource."""
    if resource.startswith("NAMED"):
        return False  # an attribute of a resource in this template, e.g. ${Table.Arn}/index/x
    if resource.strip() == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return True  # not an ARN we understand: fail closed
    _, _partition, _service, region, account, rest = parts
    if "*" in region or "*" in account:
        return True
    # Strip the resource type ("table/", "secret:", "event-bus/", "rule/") and require a name
    # that starts with literal characters.
    name = re.sub(r"^[A-Za-z-]+[/:]", "", rest)
    if name == rest and "/" not in rest and ":" not in rest:
        name = rest
    return name == "" or name.startswith("*") or name.startswith("?")


def check_statement(statement: dict, template: dict | None = None) -> list[str]:
    """Problems of one IAM statement for the sensitive services (empty list = fine)."""
    problems: list[str] = []
    if statement.get("Effect", "Allow") != "Allow":
        return problems
    if "NotAction" in statement:
        problems.append(f"Allow with NotAction grants everything else: {statement}")
    if "NotResource" in statement:
        problems.append(f"Allow with NotResource grants almost every resource: {statement}")
    actions = _as_list(statement.get("Action", []))
    sensitive = []
    for action in actions:
        if not isinstance(action, str):
            problems.append(f"non-literal action cannot be checked: {action!r}")
            continue
        service, _, name = action.partition(":")
        if action.strip() == "*":
            problems.append(f"wildcard action '*': {statement}")
            sensitive.append(action)
        elif service.lower() in SENSITIVE_SERVICES:
            sensitive.append(action)
            if "*" in name or "?" in name:
                problems.append(f"wildcard action {action}")
    if sensitive:
        for resource in _as_list(statement.get("Resource", [])):
            for rendered in _render(resource, template):
                if _resource_is_wide(rendered):
                    problems.append(
                        f"{sensitive} on a resource that names nothing specific: {rendered!r}"
                    )
    return problems


def _policy_documents(node, found: list):
    """Every dict carrying a "Statement" list, anywhere below node."""
    if isinstance(node, dict):
        if "Statement" in node:
            found.append(node)
        for value in node.values():
            _policy_documents(value, found)
    elif isinstance(node, list):
        for value in node:
            _policy_documents(value, found)


def iam_problems(template: dict) -> list[str]:
    problems: list[str] = []
    for name, res in template["Resources"].items():
        props = res.get("Properties", {}) or {}
        # SAM "Policies": managed policy names/ARNs (strings) and policy templates (one-key
        # dicts such as {DynamoDBCrudPolicy: {...}}) must not cover the sensitive services.
        if res.get("Type", "").startswith("AWS::Serverless::"):
            for entry in _as_list(props.get("Policies", [])):
                if isinstance(entry, str) and _BROAD_POLICY_NAME.search(entry):
                    problems.append(f"{name}: managed policy {entry} is too wide")
                elif isinstance(entry, dict) and "Statement" not in entry:
                    for key in entry:
                        if _BROAD_POLICY_NAME.search(key):
                            problems.append(f"{name}: SAM policy template {key} is too wide")
        for arn in _as_list(props.get("ManagedPolicyArns", [])):
            if isinstance(arn, str) and _BROAD_POLICY_NAME.search(arn):
                problems.append(f"{name}: managed policy {arn} is too wide")
        docs: list = []
        _policy_documents(props, docs)
        for doc in docs:
            for statement in _as_list(doc["Statement"]):
                for problem in check_statement(statement, template):
                    problems.append(f"{name}: {problem}")
    return problems


def count_statements(template: dict) -> int:
    docs: list = []
    _policy_documents(template["Resources"], docs)
    return sum(len(_as_list(d["Statement"])) for d in docs)


def test_iam_grants_are_narrow(template):
    assert count_statements(template) >= 20, "the walker found (almost) no IAM statements"
    assert iam_problems(template) == []


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "arn:aws:secretsmanager:us-east-1:1:secret:x"},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::GetAtt": ["ConnectionsTable", "Arn"]}},
        {"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": {"Fn::GetAtt": ["ConnectionsTable", "Arn"]}},
        {"Effect": "Allow", "Action": "events:PutEvents",
         "Resource": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/*"}},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*"}},
        {"Effect": "Allow", "Action": "dynamodb:Query",
         "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:*:*:table/zoom"}},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    ],
)
def test_iam_checker_catches_wide_statements(statement):
    assert check_statement(statement, {"Resources": {"ConnectionsTable": {}}}) != []


def test_iam_checker_catches_wide_grants_injected_into_the_template(template):
    """The walk over the real template must reach function policies, inline roles and SAM
    policy templates, or the clean result of test_iam_grants_are_narrow means nothing."""
    bad = copy.deepcopy(template)
    bad["Resources"]["ActionsFunction"]["Properties"]["Policies"][0]["Statement"].append(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
    )
    assert any("ActionsFunction" in p for p in iam_problems(bad))

    bad = copy.deepcopy(template)
    bad["Resources"]["ConnectFunction"]["Properties"]["Policies"].append(
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ConnectionsTable"}}}
    )
    assert any("DynamoDBCrudPolicy" in p for p in iam_problems(bad))

    bad = copy.deepcopy(template)
    bad["Resources"]["RefreshScheduleRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    assert any("RefreshScheduleRole" in p for p in iam_problems(bad))


def test_iam_checker_accepts_the_narrow_forms():
    tpl = {"Resources": {"ConnectionsTable": {}}, "Parameters": {"Stage": {"Default": "prod"}}}
    ok = [
        {"Effect": "Allow", "Action": "dynamodb:Query",
         "Resource": {"Fn::Sub": "${ConnectionsTable.Arn}/index/next-refresh-index"}},
        {"Effect": "Allow", "Action": "secretsmanager:CreateSecret",
         "Resource": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:zoom-connector/${Stage}/connections/*"}},
        {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]
    for statement in ok:
        assert check_statement(statement, tpl) == [], statement


# ------------------------------------------------------------------------------------------
# 2. Routes
# ------------------------------------------------------------------------------------------
_ROUTE_IN_MD = re.compile(r"`(GET|POST|PUT|PATCH|DELETE|ANY)\s+(/[^`\s?]*)[^`]*`")
_ROUTE_LIST_PREFIX = re.compile(r"^\s*[-*]\s*(`[^`]*`(\s*\(\d+\))?,\s*)*$")


def routes_from_api_md(text: str) -> set[tuple[str, str]]:
    """(method, path) of every route of API.md served on AWS: the routes that open a bullet
    item. Zoom's own endpoints mentioned in prose and the local stack's /local/** routes are
    left out; the Zoom actions section lists paths relative to /connections/{id}/zoom."""
    routes: set[tuple[str, str]] = set()
    prefix = ""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            prefix = "/connections/{id}/zoom" if heading.startswith("zoom actions") else ""
            continue
        for m in _ROUTE_IN_MD.finditer(line):
            # Only routes that open a bullet item or continue a list of routes count; a route
            # inside prose ("read `GET /users/me`", "Zoom `POST /users/me/meetings`") is Zoom's.
            if not _ROUTE_LIST_PREFIX.match(line[: m.start()]):
                continue
            method, path = m.group(1), m.group(2)
            if path.startswith("/local/"):
                continue
            if prefix and not path.startswith("/connections"):
                path = prefix + path
            # API.md writes the proxy's rest-of-path as {path}; API Gateway's greedy form.
            path = re.sub(r"/proxy/\{path\+?\}$", "/proxy/{proxy+}", path)
            routes.add((method, path))
    return routes


def template_routes(template: dict) -> dict[tuple[str, str], str]:
    """(method, path) -> binary of the function whose HttpApi event declares it."""
    out: dict[tuple[str, str], str] = {}
    for _name, fn in functions(template).items():
        for route in http_api_events(fn):
            assert route not in out, f"route {route} declared twice"
            out[route] = binary_of(fn)
    return out


def test_routes_match_the_committed_list(template):
    declared = template_routes(template)
    expected = {(m, p): b for m, p, b in ROUTES + EXTRA_ROUTES}
    assert declared == expected


def test_extra_routes_are_documented_and_not_in_the_contract():
    headings = {
        (m.group(1), m.group(2))
        for m in re.finditer(
            r"^### `(GET|POST|PUT|PATCH|DELETE)\s+(/[^`\s?]*)`", (REPO / "docs" / "api.md").read_text(encoding="utf-8"), re.M
        )
    }
    for method, path, _ in EXTRA_ROUTES:
        assert (method, path) in headings, f"{method} {path} has no heading in docs/api.md"
        assert (method, path) not in {(m, p) for m, p, _ in ROUTES}, f"{method} {path} is in ROUTES too"


def test_routes_of_api_md_are_all_served(template):
    if not API_MD.is_file():
        pytest.fail(f"{API_MD} is missing: the contract must sit beside the checkout as ../shared")
    from_md = routes_from_api_md(API_MD.read_text(encoding="utf-8"))
    assert len(from_md) >= 40, f"parsed too few routes from API.md: {sorted(from_md)}"
    # One route per bullet: every bullet of API.md that opens with a route is parsed.
    text = API_MD.read_text(encoding="utf-8")
    bullets = {
        (m.group(1), m.group(2))
        for m in re.finditer(r"^\s*-\s*`(GET|POST|PUT|PATCH|DELETE|ANY)\s+(/[^`\s?]*)", text, re.M)
        if not m.group(2).startswith("/local/")
    }
    unparsed = sorted(
        (m, p)
        for m, p in bullets
        if (m, re.sub(r"/proxy/\{path\}$", "/proxy/{proxy+}", p)) not in from_md
        and (m, "/connections/{id}/zoom" + p) not in from_md
    )
    assert unparsed == [], f"route bullets of API.md the parser missed: {unparsed}"
    declared = set(template_routes(template))
    unbuilt = set(NOT_YET_BUILT)
    assert unbuilt <= from_md, f"NOT_YET_BUILT lists routes API.md does not: {sorted(unbuilt - from_md)}"
    built_but_listed = sorted(unbuilt & declared)
    assert built_but_listed == [], f"built now: move them from NOT_YET_BUILT to ROUTES: {built_but_listed}"
    missing = sorted(from_md - unbuilt - declared)
    assert missing == [], f"routes of API.md without an HttpApi event: {missing}"
    # The committed list stays in step with API.md.
    assert from_md - unbuilt == {(m, p) for m, p, _ in ROUTES}


def test_http_events_use_the_explicit_api(template):
    for name, fn in functions(template).items():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev.get("Type") == "HttpApi":
                assert ev["Properties"].get("ApiId") == {"Ref": "HttpApi"}, name
                # Setting these would make SAM rewrite the shared $ref integration.
                assert "TimeoutInMillis" not in ev["Properties"], name
                assert "PayloadFormatVersion" not in ev["Properties"], name


def _method_key(method: str) -> str:
    return "x-amazon-apigateway-any-method" if method == "ANY" else method.lower()


def _references(node) -> set[str]:
    """Logical ids referenced by Ref / GetAtt / Sub anywhere below node."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    found |= _references(value[1])
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def test_api_does_not_depend_on_the_functions(template):
    """The cycle guard (see the note at the top of template.yaml): the API's body has an
    integration for every event route, pointing at the function that declares it by its fixed
    name, and the API references no function. A route missing here would make SAM add a
    GetAtt integration, and CloudFormation would reject the API <-> function cycle."""
    api = template["Resources"]["HttpApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    props = api["Properties"]
    fn_ids = set(resources_of_type(template, "AWS::Serverless::Function"))
    assert _references(props) & fn_ids == set()
    assert _references(api.get("DependsOn", [])) & fn_ids == set()

    body = props["DefinitionBody"]
    integrations = body["components"]["x-amazon-apigateway-integrations"]
    by_binary = function_by_binary(template)
    for (method, path), binary in template_routes(template).items():
        operation = body["paths"].get(path, {}).get(_method_key(method))
        assert operation, f"{method} {path} missing from DefinitionBody"
        ref = operation["x-amazon-apigateway-integration"]["$ref"]
        integration = integrations[ref.rsplit("/", 1)[-1]]
        assert integration["type"] == "aws_proxy"
        assert integration["payloadFormatVersion"] == "2.0"
        assert int(integration["timeoutInMillis"]) <= 30000
        uri = integration["uri"]["Fn::Sub"]
        fn_name = by_binary[binary][1]["Properties"]["FunctionName"]["Fn::Sub"]
        assert uri.endswith(f":function:{fn_name}/invocations"), (path, uri, fn_name)
    # No route in the body that no function declares (it would have no invoke permission).
    body_routes = {
        (("ANY" if m == "x-amazon-apigateway-any-method" else m.upper()), p)
        for p, ops in body["paths"].items()
        for m in ops
    }
    assert body_routes == set(template_routes(template))


def test_http_api_settings(template):
    props = template["Resources"]["HttpApi"]["Properties"]
    assert props["FailOnWarnings"] is True
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    log_group = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert "RetentionInDays" in template["Resources"][log_group]["Properties"]


# ------------------------------------------------------------------------------------------
# 3. Functions: build, runtime, binaries
# ------------------------------------------------------------------------------------------
def cargo_binaries() -> set[str]:
    names: set[str] = set()
    for manifest in (REPO / "functions").glob("*/Cargo.toml"):
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        bins = [b["name"] for b in data.get("bin", []) if "name" in b]
        names |= set(bins) if bins else {data["package"]["name"]}
    return names


def test_functions_build_with_cargo_lambda(template):
    fns = functions(template)
    assert len(fns) == 6
    binaries = cargo_binaries()
    seen = []
    for name, fn in fns.items():
        meta, props = fn["Metadata"], fn["Properties"]
        assert meta["BuildMethod"] == "rust-cargolambda", name
        assert binary_of(fn) in binaries, f"{name}: no [[bin]] {binary_of(fn)} in functions/*/Cargo.toml"
        assert props["CodeUri"] == ".", name
        assert props["Runtime"] == "provided.al2023", name
        assert props["Handler"] == "bootstrap", name
        assert props["Architectures"] == ["arm64"], name
        seen.append(binary_of(fn))
    assert sorted(seen) == sorted(
        ["connect", "callback", "actions", "refresh", "meeting-events", "webhooks"]
    )


def test_functions_environment_and_logging(template):
    for name, fn in functions(template).items():
        props = fn["Properties"]
        env = props["Environment"]["Variables"]
        missing = [v for v in REQUIRED_ENV if v not in env]
        assert missing == [], f"{name} lacks {missing}"
        logging = props["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        group = template["Resources"][logging["LogGroup"]["Ref"]]["Properties"]
        assert group["LogGroupName"]["Fn::Sub"] == "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_memory_and_timeouts(template):
    by_binary = function_by_binary(template)
    expected = {
        "actions": 29,
        "connect": 15,
        "callback": 29,
        "webhooks": 15,
        "meeting-events": 60,
        "refresh": 300,
    }
    for binary, timeout in expected.items():
        props = by_binary[binary][1]["Properties"]
        assert props["Timeout"] == timeout, binary
        assert props["MemorySize"] == 256, binary
    for binary in ("actions", "callback", "connect", "webhooks"):  # behind the HTTP API's 30 s
        assert by_binary[binary][1]["Properties"]["Timeout"] < 30, binary


def test_refresh_schedule(template):
    refresh_name, refresh = function_by_binary(template)["refresh"]
    assert refresh["Properties"]["ReservedConcurrentExecutions"] == 1
    (schedule,) = resources_of_type(template, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(10 minutes)"
    assert props["FlexibleTimeWindow"]["Mode"] == "OFF"
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [refresh_name, "Arn"]}
    role = template["Resources"][props["Target"]["RoleArn"]["Fn::GetAtt"][0]]
    statements = [
        s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": {"Fn::GetAtt": [refresh_name, "Arn"]}}
    ]


# ------------------------------------------------------------------------------------------
# 4. Table, queue, bus
# ------------------------------------------------------------------------------------------
def test_connections_table(template):
    (table,) = resources_of_type(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {
        "pk": "S",
        "sk": "S",
        "refresh_shard": "S",
        "next_refresh_at": "N",
        "id": "S",
        "list_shard": "S",
        "list_status": "S",
        "list_end_user": "S",
    }
    indexes = {
        g["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]]
        for g in props["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        # The sweep's due connections.
        "next-refresh-index": [("refresh_shard", "HASH"), ("next_refresh_at", "RANGE")],
        # GET /connections, and with ?status=: sharded, ordered by id.
        "list-index": [("list_shard", "HASH"), ("id", "RANGE")],
        "list-status-index": [("list_status", "HASH"), ("id", "RANGE")],
        # GET /connections?end_user_id=: sparse, one partition per end user, ordered by id.
        "list-end-user-index": [("list_end_user", "HASH"), ("id", "RANGE")],
    }
    for gsi in props["GlobalSecondaryIndexes"]:
        assert gsi["Projection"]["ProjectionType"] == "ALL"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_meeting_queue(template):
    resources = template["Resources"]
    _, meeting_fn = function_by_binary(template)["meeting-events"]
    (sqs_event,) = [e for e in meeting_fn["Properties"]["Events"].values() if e["Type"] == "SQS"]
    ev = sqs_event["Properties"]
    queue_id = ev["Queue"]["Fn::GetAtt"][0]
    queue = resources[queue_id]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * meeting_fn["Properties"]["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["SqsManagedSseEnabled"] is True
    dlq = resources[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["SqsManagedSseEnabled"] is True
    assert ev["BatchSize"] == 10
    assert ev["MaximumBatchingWindowInSeconds"] == 1
    assert ev["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ev["ScalingConfig"]["MaximumConcurrency"] >= 2

    # The rule on the bus feeds the queue, and only that rule may send to it.
    (rule_id, rule), = [
        (k, r) for k, r in resources_of_type(template, "AWS::Events::Rule").items()
        if r["Properties"]["EventPattern"].get("detail-type") == ["Create Zoom Meeting"]
    ]
    assert rule["Properties"]["EventBusName"] == {"Ref": "EventBus"}
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    (policy,) = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_secrets(template):
    secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
    by_name = {s["Properties"]["Name"]["Fn::Sub"]: s["Properties"] for s in secrets.values()}
    assert set(by_name) == {
        "zoom-connector/${Stage}/platform-app",
        "zoom-connector/${Stage}/connector",
    }
    generated = by_name["zoom-connector/${Stage}/connector"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "api_key"
    assert generated["ExcludePunctuation"] is True
    assert generated["PasswordLength"] == 48
    assert "webhook_secret_token" in generated["SecretStringTemplate"]


METRICS = json.loads((Path(__file__).with_name("metrics.json")).read_text())


def _namespace(props) -> str:
    ns = props.get("Namespace", "")
    return ns.get("Fn::Sub", "") if isinstance(ns, dict) else ns


def test_connector_alarms_use_metrics_the_code_emits(template):
    """Every alarm in the connector's namespace names a metric of the code's catalogue
    (tests/template/metrics.json, kept equal to shared/src/metrics.rs by a Rust test) or of a
    log metric filter in the template, with dimensions the code writes."""
    catalogue = {m["name"]: m for m in METRICS["metrics"]}
    filtered = {
        t["MetricName"]
        for mf in resources_of_type(template, "AWS::Logs::MetricFilter").values()
        for t in mf["Properties"]["MetricTransformations"]
    }
    ours = [
        (name, a["Properties"])
        for name, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if _namespace(a["Properties"]).startswith(METRICS["namespace_prefix"] + "/")
    ]
    assert ours, "the connector's own metrics alarm on something"
    for name, props in ours:
        assert props["Namespace"] == {"Fn::Sub": METRICS["namespace_prefix"] + "/${Stage}"}, name
        metric = props["MetricName"]
        assert metric in catalogue or metric in filtered, f"{name}: {metric} is emitted by nothing"
        if metric not in catalogue:
            continue
        allowed = {METRICS["function_dimension"], catalogue[metric]["dimension"]}
        for d in props.get("Dimensions", []):
            assert d["Name"] in allowed, f"{name}: dimension {d['Name']}"
            if d["Name"] == catalogue[metric]["dimension"]:
                assert d["Value"] in catalogue[metric]["values"], f"{name}: {d['Value']}"
    metrics = {p["MetricName"] for _, p in ours}
    assert {"Refreshes", "TokenWrites"} <= metrics
    # Every function knows its stage, which names the namespace.
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CONNECTOR_STAGE"] == {"Ref": "Stage"}


def test_outputs(template):
    assert {
        "ApiUrl",
        "CallbackUrl",
        "WebhookUrl",
        "MeetingQueueUrl",
        "MeetingDlqUrl",
        "EventBusName",
        "ConnectorSecretArn",
        "PlatformAppSecretArn",
    } <= set(template["Outputs"])


# ------------------------------------------------------------------------------------------
# 5. cfn-lint
# ------------------------------------------------------------------------------------------
def _cfn_lint_command() -> list[str]:
    beside = Path(sys.executable).with_name("cfn-lint")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("cfn-lint")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())"]


def test_cfn_lint_is_clean():
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result = subprocess.run(
        [*_cfn_lint_command(), str(TEMPLATE)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_the_generated_one_and_names_only_emitted_metrics(template):
    """The dashboard body is scripts/dashboard.py's (built from the code's metric catalogue),
    and every series in the connector's namespace is a metric and dimension value the code
    emits; the AWS series name this stack's functions, queues and API."""
    script = REPO / "scripts" / "dashboard.py"
    check = subprocess.run([sys.executable, str(script), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (dashboard,) = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    catalogue = {m["name"]: m for m in METRICS["metrics"]}
    functions_ = {f"zoom-connector-${{Stage}}-{b}" for b in function_by_binary(template)}
    queues = {
        q["Properties"]["QueueName"]["Fn::Sub"]
        for q in resources_of_type(template, "AWS::SQS::Queue").values()
    }
    seen = set()
    for w in body["widgets"]:
        for series in w["properties"]["metrics"]:
            names = [s for s in series if isinstance(s, str)]
            namespace, metric, dims = names[0], names[1], dict(zip(names[2::2], names[3::2]))
            seen.add((namespace, metric))
            if namespace == METRICS["namespace_prefix"] + "/${Stage}":
                assert metric in catalogue, f"{metric} is emitted by nothing"
                for name, value in dims.items():
                    assert name == catalogue[metric]["dimension"], (metric, name)
                    assert value in catalogue[metric]["values"], (metric, value)
            elif namespace == "AWS/Lambda":
                assert dims["FunctionName"] in functions_, dims
            elif namespace == "AWS/SQS":
                assert dims["QueueName"] in queues, dims
            elif namespace == "AWS/ApiGateway":
                assert dims == {"ApiId": "${HttpApi}", "Stage": "$default"}, dims
            else:
                raise AssertionError(f"unexpected namespace {namespace}")
    # What the issue asks the operator to see.
    for metric in catalogue:
        assert (METRICS["namespace_prefix"] + "/${Stage}", metric) in seen, metric
    for wanted in [("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"), ("AWS/Lambda", "Duration"),
                   ("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/ApiGateway", "5xx")]:
        assert wanted in seen, wanted
