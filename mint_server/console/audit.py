"""The audit log: filters, export as JSON lines or CSV, and whether the retained chain verifies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from mint_server.console.web import ADMIN_KEY, SERVICE_KEY, chrome_of, handler, page, session
from mint_server.exchange.service import ExchangeDenied
from satgate.audit import CATEGORIES, audit_csv, category_of
from satgate.audit.retention import verify_retained
from satgate.tokens.verify import VerifiedToken

SHOWN = 500  # the newest records on the page; the export has all


async def _records(
    request: web.Request, token: VerifiedToken, chain: list[Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tenant's records, filtered by type, category and age as the API's ExportAudit filters them."""
    filters = {k: request.query.get(k, "").strip() for k in ("type", "category", "since")}
    if filters["category"] and filters["category"] not in CATEGORIES:
        raise ExchangeDenied(400, "bad_request", f"category must be one of {', '.join(CATEGORIES)}")
    records = await request.app[ADMIN_KEY].audit_records(
        token,
        since=filters["since"] or None,
        event_type=filters["type"] or None,
        category=filters["category"] or None,
        chain=chain,
    )
    return records, filters


@handler
async def audit_page(request: web.Request) -> web.StreamResponse:
    token = await session(request, "ExportAudit")
    service = request.app[SERVICE_KEY]
    broken, chain = await verify_retained(service.audit, service.keyring.current)  # one read serves both
    records, filters = await _records(request, token, chain)
    return page(
        request,
        "audit.html",
        records=list(reversed(records))[:SHOWN],
        total=len(records),
        shown=SHOWN,
        filters=filters,
        categories=CATEGORIES,
        category_of=category_of,
        chain={"broken_at": broken, "records": len(chain)},
        export_query=urlencode({k: v for k, v in filters.items() if v}),
        **chrome_of(request, token),
    )


@handler
async def audit_export(request: web.Request) -> web.StreamResponse:
    token = await session(request, "ExportAudit")
    records, _filters = await _records(request, token)
    if request.query.get("format") == "csv":
        body, content_type, suffix = audit_csv(records), "text/csv", "csv"
    else:
        body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        content_type, suffix = "application/x-ndjson", "jsonl"
    disposition = f'attachment; filename="satgate-audit-{token.tenant}.{suffix}"'
    return web.Response(text=body, content_type=content_type, headers={"Content-Disposition": disposition})
