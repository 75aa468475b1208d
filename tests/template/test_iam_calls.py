"""The checker of recorded AWS calls against the functions' IAM policies (iam_calls.py)."""

import json

from iam_calls import check


def run(tmp_path, calls):
    path = tmp_path / "calls.json"
    path.write_text(json.dumps({"runs": [{"stage": "it1", "table": "tbl-1", "calls": calls}]}))
    return check(path)


def test_calls_the_policies_allow_pass(tmp_path):
    refused, unused = run(
        tmp_path,
        {
            "actions": [
                {"action": "dynamodb:GetItem", "resource": "tbl-1"},
                {"action": "secretsmanager:GetSecretValue", "resource": "zoom-connector/it1/connections/conn_1"},
                {"action": "events:PutEvents", "resource": "zoom-connector-it1"},
            ],
            "refresh": [
                {"action": "dynamodb:Query", "resource": "tbl-1/index/next-refresh-index"},
                {"action": "secretsmanager:PutSecretValue", "resource": "zoom-connector/it1/connections/c"},
            ],
        },
    )
    assert refused == []
    assert any(line.startswith("actions: dynamodb:PutItem") for line in unused)


def test_calls_aws_would_refuse_fail(tmp_path):
    refused, _ = run(
        tmp_path,
        {
            "refresh": [{"action": "secretsmanager:CreateSecret", "resource": "zoom-connector/it1/connections/c"}],
            "callback": [{"action": "secretsmanager:GetSecretValue", "resource": "zoom-connector/it1/connector"}],
            "webhooks": [{"action": "dynamodb:Scan", "resource": "tbl-1"}],
            "actions": [{"action": "dynamodb:GetItem", "resource": "another-table"}],
            "connect": [{"action": "secretsmanager:GetSecretValue", "resource": "zoom-connector/other/connector"}],
        },
    )
    assert len(refused) == 5, refused
