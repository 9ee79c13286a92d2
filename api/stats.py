"""Statistics for supervisors: /api/v1/stats/..., the monthly report (Excel and CSV), and the dashboard
"一屏总览" at /dashboard. The figures come from orders.stats; this module only reads requests and renders."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, JSONResponse, file, json, raw

from api.auth import AuthError, actor_from_claims, bearer_token, decode
from api.stats_schemas import (BREAKDOWN_BY, FEED_AFTER, FEED_LIMIT, FILTERS, HOTSPOT_HOURS, HOTSPOT_LIMIT,
                               HOTSPOT_MIN_REPORTS, OVERDUE_LIMIT, PERIOD, REPORT_FILENAME, SHEET, TREND_BY,
                               BreakdownOut, DashboardOut, DefinitionsOut, FeedOut, HotspotsOut, OverdueOut, SummaryOut,
                               TrendOut, report_doc, stats_doc)
from orders.errors import DomainError, InvalidInput
from orders.lifecycle import STATE_LABELS, Role
from orders.privacy_records import record_export
from orders.services import Actor
from orders.stats import (COUNT_DEFINITIONS, COUNT_LABELS, DIMENSION_LABELS, DURATION_LABELS, RATE_DEFINITIONS,
                          Figures, Filters, Period, Stats, parse_period)

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
READERS = (Role.SUPERVISOR, Role.ADMIN)
TOKEN_TYPES = ("access", "dashboard")  # the mini-program's login, or the signed dashboard link

bp = Blueprint("stats", url_prefix="/api/v1/stats")


class StatsForbidden(DomainError):
    code = "forbidden"
    status = 403


class NoSimilarity(DomainError):
    code = "unavailable"
    status = 503


# ------------------------------------------------------------------------------------------ helpers
async def reader(request: Request) -> Actor:
    """A supervisor or an admin, by a Bearer access token or a dashboard-link token."""
    token = bearer_token(request)
    if token is None:
        raise AuthError("请先登录")
    try:  # only to choose which type to verify; decode() checks the signature and everything else
        typ = jwt.decode(token, options={"verify_signature": False}).get("typ")
    except jwt.PyJWTError:
        raise AuthError("登录凭证无效") from None
    if typ not in TOKEN_TYPES:
        raise AuthError("登录凭证类型不对")
    actor = await actor_from_claims(decode(request.app.ctx.settings, token, typ))
    if actor.role not in READERS:
        raise StatsForbidden("只有督办员和管理员可以查看统计")
    request.ctx.wall_screen = typ == "dashboard"  # a link shown on a wall: figures only, no list of orders to take
    return actor


def stats_of(app: Sanic) -> Stats:
    if not hasattr(app.ctx, "stats"):
        app.ctx.stats = Stats(app.ctx.settings.app.timezone, clock=app.ctx.clock)
    return app.ctx.stats


def _period(request: Request, default: str = "30d") -> Period:
    return stats_of(request.app).period(PERIOD.read(request), default)


def _filters(request: Request) -> Filters:
    return Filters(**{param.name: param.read(request) for param in FILTERS})


def _json(body: dict[str, Any]) -> JSONResponse:
    return json(body, ensure_ascii=False, headers={"Cache-Control": "no-store"})


def definitions() -> dict[str, Any]:
    return {"rates": {name: {"name": n, "numerator": num, "denominator": den}
                      for name, (n, num, den) in RATE_DEFINITIONS.items()},
            "counts": COUNT_LABELS, "count_definitions": COUNT_DEFINITIONS, "durations": DURATION_LABELS}


# ------------------------------------------------------------------------------------------ JSON endpoints
@bp.get("/summary")
@stats_doc("全镇指标", SummaryOut, PERIOD, *FILTERS,
           description="时间段内受理的工单的三率、数量和用时,可按分类、部门、网格、紧急程度筛选。")
async def summary(request: Request) -> JSONResponse:
    await reader(request)
    period, filters = _period(request), _filters(request)
    figures = await stats_of(request.app).summary(period, filters)
    return _json({"period": period.to_dict(), "filters": filters.to_dict(), "figures": figures.to_dict()})


@bp.get("/breakdown")
@stats_doc("分组指标", BreakdownOut, PERIOD, *FILTERS, BREAKDOWN_BY)
async def breakdown(request: Request) -> JSONResponse:
    await reader(request)
    by = BREAKDOWN_BY.read(request)
    period, filters = _period(request), _filters(request)
    groups = await stats_of(request.app).figures(period, filters, by=by)
    return _json({"period": period.to_dict(), "filters": filters.to_dict(), "by": by,
                  "groups": [group.to_dict() for group in groups]})


@bp.get("/trend")
@stats_doc("趋势", TrendOut, PERIOD, *FILTERS, TREND_BY)
async def trend(request: Request) -> JSONResponse:
    await reader(request)
    by = TREND_BY.read(request)
    period, filters = _period(request), _filters(request)
    buckets = await stats_of(request.app).trend(period, filters, by=by)
    return _json({"period": period.to_dict(), "filters": filters.to_dict(), "by": by,
                  "buckets": [bucket.to_dict() for bucket in buckets]})


@bp.get("/overdue")
@stats_doc("超期工单", OverdueOut, OVERDUE_LIMIT, description="在办且已超过时限的工单,超期最久的在前。")
async def overdue(request: Request) -> JSONResponse:
    await reader(request)
    rows = await stats_of(request.app).overdue(OVERDUE_LIMIT.read(request))
    return _json({"orders": rows})


@bp.get("/feed")
@stats_doc("最新工单", FeedOut, FEED_AFTER, FEED_LIMIT, description="新的在前;轮询时把上次的 last_id 作为 after。")
async def feed(request: Request) -> JSONResponse:
    await reader(request)
    rows = await stats_of(request.app).feed(FEED_AFTER.read(request), FEED_LIMIT.read(request))
    return _json({"orders": rows, "last_id": max((row["id"] for row in rows), default=None)})


@bp.get("/hotspots")
@stats_doc("热点诉求", HotspotsOut, HOTSPOT_HOURS, HOTSPOT_MIN_REPORTS, HOTSPOT_LIMIT,
           description="最近几小时内同一个村、内容相近的反映(可能是同一件事),件数多的在前;每个热点列出村名、关键词、"
                       "件数、工单号和首末次反映时间,不含个人信息。达到配置的件数时督办员会收到一次提醒(alerted_at)。")
async def hotspots(request: Request) -> JSONResponse:
    await reader(request)
    cfg = request.app.ctx.settings.hotspots
    given = request.args
    hours = HOTSPOT_HOURS.read(request) if (given.get("hours") or "").strip() else cfg.window_hours
    least = HOTSPOT_MIN_REPORTS.read(request) if (given.get("min_reports") or "").strip() else cfg.min_reports
    limit = HOTSPOT_LIMIT.read(request)
    similarity = getattr(request.app.ctx, "similarity", None)
    if similarity is None:
        raise NoSimilarity("热点分析需要分类模型,请先运行 sidan classify train")
    stats = stats_of(request.app)
    now = stats.clock.now()
    spots = await stats.hotspots(similarity, hours=hours, min_reports=least, threshold=cfg.similarity,
                                 top_terms=cfg.top_terms, now=now)
    since = now - timedelta(hours=hours)
    return _json({"window_hours": hours, "min_reports": least, "since": stats._local_iso(since),
                  "until": stats._local_iso(now), "hotspots": await stats.hotspot_rows(spots[:limit])})


@bp.get("/definitions")
@stats_doc("指标口径", DefinitionsOut)
async def rate_definitions(request: Request) -> JSONResponse:
    await reader(request)
    return _json(definitions())


@bp.get("/dashboard")
@stats_doc("一屏总览数据", DashboardOut, PERIOD)
async def dashboard_data(request: Request) -> JSONResponse:
    """Everything the dashboard draws, in one round trip."""
    actor = await reader(request)
    stats = stats_of(request.app)
    period = _period(request)
    trend_by = "day" if period.days <= 62 else "week"
    body = {
        "township": (await request.app.ctx.orders.identity.get()).name,
        "viewer": actor.name,
        "generated_at": stats.clock.now().astimezone(stats.tz).isoformat(timespec="seconds"),
        "period": period.to_dict(),
        "summary": (await stats.summary(period)).to_dict(),
        # The charts and the grid table show no times: their medians are skipped.
        "trend": {"by": trend_by, "buckets": [b.to_dict() for b in
                                              await stats.trend(period, by=trend_by, durations=False)]},
        "by_category": [g.to_dict() for g in await stats.figures(period, by="category", durations=False)],
        "by_department": [g.to_dict() for g in await stats.figures(period, by="department", durations=False)],
        "by_grid": [g.to_dict() for g in await stats.figures(period, by="grid", durations=False)],
        "overdue": await stats.overdue(20),
        "feed": await stats.feed(limit=15),
        "definitions": definitions(),
        "can_export_orders": not request.ctx.wall_screen,
    }
    return _json(body)


# ------------------------------------------------------------------------------------------ the monthly report
@bp.get("/report/<filename:str>")
@report_doc
async def report(request: Request, filename: str) -> HTTPResponse:
    """/report/2026-03.xlsx (summary, groups and orders sheets) or /report/2026-03.csv[?sheet=orders]. The orders
    are masked (orders.stats); a dashboard link may not take them, a supervisor's own login may, and is recorded."""
    actor = await reader(request)
    match = re.fullmatch(REPORT_FILENAME, filename)
    if match is None:
        raise InvalidInput(f"月份格式应为 2026-03.xlsx 或 2026-03.csv:{filename[:40]}")
    month, kind = match.groups()
    sheet = SHEET.read(request)
    if kind == "xlsx" or sheet == "orders":
        if request.ctx.wall_screen:
            raise StatsForbidden("一屏总览链接不能下载工单明细,请督办员用本人账号登录后导出")
        await record_export(actor, filename, stats_of(request.app).clock.now())
    stats = stats_of(request.app)
    period = parse_period(month, stats.today(), stats.tz)
    if kind == "xlsx":
        content = await build_workbook(stats, period, (await request.app.ctx.orders.identity.get()).name)
        return _download(content, f"四单月报-{month}.xlsx",
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    if sheet == "summary":
        content = await build_summary_csv(stats, period)
    elif sheet == "orders":
        content = await build_orders_csv(stats, period)
    else:
        raise InvalidInput("sheet 只能是 summary(汇总)或 orders(工单明细)")
    suffix = "汇总" if sheet == "summary" else "工单"
    return _download(content, f"四单月报-{month}-{suffix}.csv", "text/csv; charset=utf-8")


def _download(content: bytes, filename: str, content_type: str) -> HTTPResponse:
    ascii_name = re.sub(r"[^A-Za-z0-9.-]", "_", filename)
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return raw(content, content_type=content_type,
               headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


RATE_ORDER = ("response", "completion", "resolution", "satisfaction", "auto_dispatch", "auto_corrected")
COUNT_ORDER = ("received", "matters", "merged", "dispatched", "accepted", "resolved", "closed_unresolved", "rated",
               "ratings", "unrated",
               "awaiting_rating", "closed_unrated", "cancelled", "invalid", "open", "awaiting_acceptance", "overdue",
               "resolved_late", "escalated", "reopened", "auto_dispatched")
ORDER_COLUMNS = [("number", "工单号"), ("submitted_at", "受理时间"), ("category", "分类"), ("urgency", "紧急程度"),
                 ("state", "状态"), ("department", "承办部门"), ("grid", "网格"), ("auto_dispatched", "自动派单"),
                 ("routing_corrected", "派单被纠正"), ("dispatched_at", "派单时间"), ("accepted_at", "接单时间"),
                 ("accepted_within_deadline", "按时接单"), ("resolved_at", "办结时间"), ("resolve_deadline", "办结时限"),
                 ("overdue", "超期"), ("escalation_level", "督办级别"), ("reopen_count", "重办次数"),
                 ("score", "最近评分"), ("rated_resolved", "评价已解决"), ("text", "诉求内容")]

TIME_COLUMNS = {"submitted_at", "dispatched_at", "accepted_at", "resolved_at", "resolve_deadline"}


def _figures_row(dimension: str, figures: Figures) -> list[Any]:
    row: list[Any] = [dimension, figures.label]
    row += [figures.counts[name] for name in COUNT_ORDER]
    for name in RATE_ORDER:
        rate = figures.rates[name]
        row += [rate.display, rate.numerator, rate.denominator]
    for name in DURATION_LABELS:
        spread = figures.durations[name]
        row += [spread.to_dict()["median_display"], spread.to_dict()["p90_display"]]
    return row


def _figures_header() -> list[str]:
    header = ["维度", "名称"] + [COUNT_LABELS[name] for name in COUNT_ORDER]
    for name in RATE_ORDER:
        label = RATE_DEFINITIONS[name][0]
        header += [label, f"{label}分子", f"{label}分母"]
    for label in DURATION_LABELS.values():
        header += [f"{label}中位数", f"{label}P90"]
    return header


async def _report_groups(stats: Stats, period: Period) -> list[tuple[str, Figures]]:
    groups = [("全镇", await stats.summary(period))]
    for by in ("category", "department", "grid"):
        groups += [(DIMENSION_LABELS[by], figures) for figures in await stats.figures(period, by=by)]
    return groups


def _cell(value: Any) -> Any:
    """Plain values for a sheet or CSV; text starting like a formula is quoted (residents write the text)."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _order_cells(stats: Stats, row: dict[str, Any]) -> list[Any]:
    cells = []
    for key, _ in ORDER_COLUMNS:
        value = row.get(key)
        if key in TIME_COLUMNS:
            moment = _moment(value)
            value = moment.astimezone(stats.tz).replace(tzinfo=None) if moment else None
        elif key == "state":
            value = STATE_LABELS.get(value, value)
        elif key in ("auto_dispatched", "routing_corrected", "accepted_within_deadline", "overdue", "rated_resolved"):
            value = None if value is None else bool(value)
        cells.append(_cell(value))
    return cells


def _moment(value: Any) -> datetime | None:
    from orders.stats.base import _as_datetime

    return _as_datetime(value)


async def build_workbook(stats: Stats, period: Period, township: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    summary = book.active
    summary.title = "汇总"
    whole = await stats.summary(period)
    summary.append([f"{township} 四单月报", period.label])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(["统计口径", "本期受理的工单,按当前状态统计;分母为 0 的比率记为“—”"])
    summary.append([])
    summary.append(["指标", "比率", "分子", "分母", "分子含义", "分母含义"])
    for name in RATE_ORDER:
        label, numerator, denominator = RATE_DEFINITIONS[name]
        rate = whole.rates[name]
        summary.append([label, rate.display, rate.numerator, rate.denominator, numerator, denominator])
    summary.append([])
    summary.append(["数量", "件数"])
    for name in COUNT_ORDER:
        summary.append([COUNT_LABELS[name], whole.counts[name]])
    summary.append([])
    summary.append(["用时", "中位数", "P90", "件数"])
    for name, label in DURATION_LABELS.items():
        spread = whole.durations[name].to_dict()
        summary.append([label, spread["median_display"], spread["p90_display"], spread["count"]])
    for column, width in zip("ABCDEF", (22, 12, 10, 10, 30, 40)):
        summary.column_dimensions[column].width = width

    groups = book.create_sheet("分组")
    groups.append(_figures_header())
    for dimension, figures in (await _report_groups(stats, period))[1:]:
        groups.append(_figures_row(dimension, figures))

    orders = book.create_sheet("工单")
    orders.append([label for _, label in ORDER_COLUMNS])
    async for batch in stats.orders_for_export(period):
        for row in batch:
            orders.append(_order_cells(stats, row))
    for index, (key, _) in enumerate(ORDER_COLUMNS):
        if key in TIME_COLUMNS:
            letter = orders.cell(row=1, column=index + 1).column_letter
            orders.column_dimensions[letter].width = 17
            for (cell,) in orders.iter_rows(min_row=2, min_col=index + 1, max_col=index + 1):
                cell.number_format = "yyyy-mm-dd hh:mm"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow(["" if value is None else
                         value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value for value in row])
    return "\ufeff".encode() + text.getvalue().encode("utf-8")  # the BOM: Excel then reads the Chinese right


async def build_summary_csv(stats: Stats, period: Period) -> bytes:
    rows = [_figures_header()] + [_figures_row(dimension, figures)
                                  for dimension, figures in await _report_groups(stats, period)]
    return _csv_bytes(rows)


async def build_orders_csv(stats: Stats, period: Period) -> bytes:
    rows: list[list[Any]] = [[label for _, label in ORDER_COLUMNS]]
    async for batch in stats.orders_for_export(period):
        rows += [_order_cells(stats, row) for row in batch]
    return _csv_bytes(rows)


# ------------------------------------------------------------------------------------------ the page
async def dashboard_page(request: Request) -> HTTPResponse:
    """The page itself holds no data: it reads the token from the link (#token=…) and asks the API."""
    return await file(DASHBOARD_DIR / "index.html", mime_type="text/html; charset=utf-8",
                      headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                               "X-Content-Type-Options": "nosniff"})


def register(app: Sanic) -> None:
    app.blueprint(bp)
    app.add_route(dashboard_page, "/dashboard", methods=["GET"], name="dashboard_page")
    app.static("/dashboard/static/", DASHBOARD_DIR / "static", name="dashboard_static")


def dashboard_url(settings, token: str, base: str | None = None) -> str:
    """The signed link `sidan dashboard-link` prints: the token rides in the fragment, never sent to servers."""
    host = settings.app.host if settings.app.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"{base or f'http://{host}:{settings.app.port}'}/dashboard#token={token}"
