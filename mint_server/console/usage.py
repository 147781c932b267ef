"""Usage over time by token, label, route or a declared attribute (department, …): credits or requests per slot,
the largest keys each their own series and the rest summed as "others", with the totals as a table."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from mint_server.console.charts import PALETTE, Series, stacked_bars
from mint_server.console.pages import PERIODS, period_of, slot_labels, slot_name
from mint_server.console.web import ADMIN_KEY, chrome_of, handler, page, refused_page, session

METRICS = {"credits": "credits", "requests": "requests"}
SERIES = len(PALETTE) - 1  # the largest keys; the last colour is for "others"
OTHERS, NONE = "others", "(none)"


def groupings(attribute_keys: frozenset[str]) -> list[str]:
    return ["token", "label", "route", *(f"attr:{key}" for key in sorted(attribute_keys))]


def chart_series(rows: list[dict[str, Any]], metric: str, starts: list[int], key: str | None) -> dict[str, Any]:
    """Per-key totals (largest first) and per-slot values for the largest SERIES keys plus "others"."""
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        name = NONE if row["key"] is None else str(row["key"])
        if key is not None and name != key:
            continue
        total = totals.setdefault(name, {"requests": 0, "allowed": 0, "denied": 0, "credits": 0})
        for field in total:
            total[field] += row[field]
    ranked = sorted(totals, key=lambda name: (-totals[name][metric], name))
    shown = ranked if len(ranked) <= SERIES + 1 else ranked[:SERIES]  # no "others" of a single key
    rest = [name for name in ranked if name not in shown]
    per_slot: dict[int, dict[str, int]] = {start: {} for start in starts}
    for row in rows:
        name = NONE if row["key"] is None else str(row["key"])
        if (key is not None and name != key) or row["start"] not in per_slot:
            continue
        series = name if name in shown else OTHERS
        slot = per_slot[row["start"]]
        slot[series] = slot.get(series, 0) + row[metric]
    names = shown + ([OTHERS] if rest else [])
    return {
        "series": [Series(n, PALETTE[i] if n != OTHERS else PALETTE[-1]) for i, n in enumerate(names)],
        "values": [per_slot[start] for start in starts],
        "totals": [(name, totals[name]) for name in ranked],
    }


@handler
async def usage_page(request: web.Request) -> web.StreamResponse:
    token = await session(request, "QueryUsage")
    admin = request.app[ADMIN_KEY]
    options = groupings(admin.managed.attribute_keys)
    by = request.query.get("by", "token")
    if by not in options:
        return refused_page(request, 400, f"by: one of {', '.join(options)}", token)
    metric = METRICS.get(request.query.get("metric", "credits"), "credits")
    key = request.query.get("key") or None
    if key is not None and not re.fullmatch(r"[\w.:/@()\- ]{1,200}", key):
        return refused_page(request, 400, "key: not a token id, label, route or attribute value", token)
    period, span, step = period_of(request)
    data = await admin.tokens.usage_timeline(token, by=by, since=period, step_seconds=step)
    first = int(data["start"]) // step * step
    starts = list(range(first, int(data["start"]) + span + 1, step))
    shaped = chart_series(data["rows"], metric, starts, key)
    title = f"{metric.capitalize()} per {slot_name(step)} by {by.removeprefix('attr:')} (UTC)"
    chart = stacked_bars(
        title, metric, slot_labels(starts, step), shaped["values"], series=shaped["series"], chart_id="usage"
    )
    return page(
        request,
        "usage.html",
        chart=chart,
        totals=shaped["totals"],
        by=by,
        options=options,
        metric=metric,
        metrics=list(METRICS),
        key=key or "",
        period=period,
        periods=list(PERIODS),
        **chrome_of(request, token),
    )
