"""The published OpenAPI document covers every route the collector serves, with the same methods."""

import re

from collector.app import create_app
from collector.config import CollectorConfig
from collector.openapi import DOCUMENT


def test_every_route_is_documented():
    app = create_app(CollectorConfig(), node=object())  # type: ignore[arg-type]
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule).replace("{job_id}", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method.lower()))
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item
                  if method != "parameters"}
    assert served == documented
