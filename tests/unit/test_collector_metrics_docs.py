"""The collector's metrics, their docstring (mev_assets/ingest/metrics.py) and docs/collector.md agree."""

from __future__ import annotations

import re

from mev_assets.ingest import metrics as metrics_module
from mev_assets.ingest.metrics import PREFIX, CollectorMetrics
from mev_assets.settings import PROJECT_ROOT


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name (without prefix and _total) -> (type, labels) of every metric family the collector registers."""
    m = CollectorMetrics()
    m.source("a").quarantined("x")  # materialise the labelled children
    families = {}
    for family in m.registry.collect():
        labels = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        families[family.name.removeprefix(PREFIX + "_")] = (family.type, tuple(sorted(labels)))
    return families


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = (PROJECT_ROOT / "docs" / "collector.md").read_text()
    section = text[text.index("## Metrics"):text.index("### Heartbeat")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            labels = tuple(sorted(x.strip() for x in cells[2].split(",") if x.strip()))
            rows[cells[0].strip("`").removesuffix("_total")] = (cells[1], labels)
    return rows


def in_docstring() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = {}
    for m in re.finditer(r"^``(\w+)(?:\{([\w,]+)\})?``\s+(counter|gauge|histogram)", metrics_module.__doc__, re.M):
        labels = tuple(sorted(m.group(2).split(","))) if m.group(2) else ()
        rows[m.group(1).removesuffix("_total")] = (m.group(3), labels)
    return rows


def test_docs_docstring_and_registry_list_the_same_metrics():
    code = registered()
    assert len(code) == 22
    assert documented() == code
    assert in_docstring() == code
