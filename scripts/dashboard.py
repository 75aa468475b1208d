#!/usr/bin/env python3
"""The operator's CloudWatch dashboard, as data.

    scripts/dashboard.py body          prints the DashboardBody JSON (with ${Stage},
                                       ${AWS::Region} and ${HttpApi} for CloudFormation's !Sub)
    scripts/dashboard.py check         fails unless template.yaml holds exactly that body
    scripts/dashboard.py render OUT.html [METRICS.json]
                                       an HTML picture of the dashboard (widget titles and
                                       series; with a `GET /local/metrics` answer, its counts),
                                       for docs/operations.md when no AWS account is at hand

The connector's own metrics come from tests/template/metrics.json (the code's catalogue, kept
equal to shared/src/metrics.rs by a Rust test), so the dashboard names only what the code emits.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = json.loads((REPO / "tests/template/metrics.json").read_text(encoding="utf-8"))
NAMESPACE = CATALOGUE["namespace_prefix"] + "/${Stage}"
FUNCTIONS = ["connect", "callback", "actions", "refresh", "meeting-events", "webhooks"]
QUEUES = ["zoom-connector-${Stage}-meetings", "zoom-connector-${Stage}-meetings-dlq"]


def catalogue(name: str) -> dict:
    (metric,) = [m for m in CATALOGUE["metrics"] if m["name"] == name]
    return metric


def by_outcome(name: str) -> list[list[str]]:
    """One series per value of the metric's own dimension, across functions."""
    metric = catalogue(name)
    if not metric["dimension"]:
        return [[NAMESPACE, name]]
    return [[NAMESPACE, name, metric["dimension"], value] for value in metric["values"]]


def widget(title: str, metrics: list, x: int, y: int, stat: str = "Sum", w: int = 8) -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": w,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stacked": False,
            "stat": stat,
            "period": 300,
            "metrics": metrics,
        },
    }


def body() -> dict:
    fn = lambda name: f"zoom-connector-${{Stage}}-{name}"  # noqa: E731
    lambda_metric = lambda metric: [  # noqa: E731
        ["AWS/Lambda", metric, "FunctionName", fn(f)] for f in FUNCTIONS
    ]
    latency = [NAMESPACE, "ActionLatency"]
    widgets = [
        widget("Token refreshes by outcome", by_outcome("Refreshes"), 0, 0),
        widget("Token writes (failed = only in one container's memory)", by_outcome("TokenWrites"), 8, 0),
        widget("Zoom answers by status class, and 429s", by_outcome("ZoomResponses") + by_outcome("ZoomRateLimited"), 16, 0),
        widget(
            "Action latency (ms)",
            [latency + [{"stat": "p50", "label": "p50"}], latency + [{"stat": "p99", "label": "p99"}]],
            0,
            6,
            stat="p50",
        ),
        widget("Events published on the bus", by_outcome("EventsPublished"), 8, 6),
        widget("Zoom webhook deliveries by outcome", by_outcome("WebhookDeliveries"), 16, 6),
        widget("Meeting events by outcome", by_outcome("MeetingEvents"), 0, 12),
        widget(
            "Meeting queue and DLQ depth",
            [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in QUEUES],
            8,
            12,
            stat="Maximum",
        ),
        widget(
            "API Gateway 4xx / 5xx",
            [
                ["AWS/ApiGateway", code, "ApiId", "${HttpApi}", "Stage", "$default"]
                for code in ("4xx", "5xx")
            ],
            16,
            12,
        ),
        widget("Lambda errors by function", lambda_metric("Errors"), 0, 18),
        widget("Lambda throttles by function", lambda_metric("Throttles"), 8, 18),
        widget("Lambda duration (p99, ms) by function", lambda_metric("Duration"), 16, 18, stat="p99"),
    ]
    return {"widgets": widgets}


def body_json() -> str:
    return json.dumps(body(), indent=1)


def template_body() -> str:
    sys.path.insert(0, str(REPO / "tests/template"))
    from test_template import load_template  # noqa: PLC0415

    (dashboard,) = [
        r for r in load_template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    return dashboard["Properties"]["DashboardBody"]["Fn::Sub"]


def render(out: Path, counts: dict | None) -> None:
    def count(series: list) -> str:
        if not counts or series[0] != NAMESPACE:
            return ""
        name = series[1]
        value = series[3] if len(series) > 3 and isinstance(series[3], str) else None
        total = sum(
            m.get("count", 0)
            for m in counts.get("metrics", [])
            if m.get("name") == name and m.get("value") == value
        )
        return f" <b>{total:g}</b>"

    cells = []
    for w in body()["widgets"]:
        p = w["properties"]
        rows = "".join(
            f"<li>{html.escape(' · '.join(str(s) for s in series if isinstance(s, str)))}{count(series)}</li>"
            for series in p["metrics"]
        )
        cells.append(
            f'<div class="w" style="grid-column:{w["x"] // 8 + 1};grid-row:{w["y"] // 6 + 1}">'
            f'<h3>{html.escape(p["title"])}</h3><p class="s">{p["stat"]}, 5 min</p><ul>{rows}</ul></div>'
        )
    page = (
        "<!doctype html><meta charset=utf-8><title>zoom-connector dashboard</title><style>"
        "body{font:13px sans-serif;margin:16px;background:#f4f5f7}"
        ".g{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}"
        ".w{background:#fff;border:1px solid #d5dbdb;padding:8px 12px;min-height:150px}"
        "h3{margin:0 0 2px;font-size:14px}.s{margin:0 0 6px;color:#687078}ul{margin:0;padding-left:18px}"
        "li{color:#16191f}b{color:#0972d3}</style>"
        "<h2>zoom-connector-${Stage} (CloudWatch dashboard, rendered from template.yaml)</h2>"
        f'<div class="g">{"".join(cells)}</div>'
    )
    out.write_text(page, encoding="utf-8")


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "body"
    if command == "body":
        print(body_json())
        return 0
    if command == "check":
        if json.loads(template_body()) != body():
            print("template.yaml's DashboardBody differs from scripts/dashboard.py body: paste its output")
            return 1
        return 0
    if command == "render":
        counts = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else None
        render(Path(sys.argv[2]), counts)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
