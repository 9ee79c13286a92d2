"""The statistics endpoints' parameters (each read and documented from one declaration) and response shapes, for
/docs/openapi.json: what a client may send, what it gets back, and that a bearer token is needed."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sanic import Request
from sanic_ext import openapi

from api.v1.docs import RawSchema, doc, response_schema_of
from api.v1.schemas import ErrorBody
from orders.errors import InvalidInput
from orders.stats import DIMENSIONS, PERIOD_HELP, TREND_DIMENSIONS
from orders.taxonomy import load_taxonomy

TAG = "统计"
MAX_TEXT = 64
REPORT_FILENAME = r"^(\d{4}-\d{2})\.(xlsx|csv)$"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"


# ---------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class TextParam:
    name: str
    description: str
    choices: tuple[str, ...] = ()  # documented; the statistics check the value and name the ones allowed
    default: str | None = None

    def read(self, request: Request) -> str | None:
        value = request.args.get(self.name)
        if value is None or not value.strip():
            return self.default
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"参数 {self.name} 太长")
        return value.strip()

    def documented(self, handler):
        schema: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT}
        if self.choices:
            schema = {"type": "string", "enum": list(self.choices)}
        if self.default is not None:
            schema["default"] = self.default
        return openapi.parameter(self.name, RawSchema(schema), "query", required=False,
                                 description=self.description)(handler)


@dataclass(frozen=True)
class IntParam:
    name: str
    description: str
    default: int
    low: int
    high: int

    def read(self, request: Request) -> int:
        value = request.args.get(self.name)
        if value is None or not value.strip():
            return self.default
        if not re.fullmatch(r"\d{1,10}", value.strip()):
            raise InvalidInput(f"参数 {self.name} 应为整数")
        number = int(value)
        if not self.low <= number <= self.high:
            raise InvalidInput(f"参数 {self.name} 应在 {self.low} 到 {self.high} 之间")
        return number

    def documented(self, handler):
        schema = {"type": "integer", "minimum": self.low, "maximum": self.high, "default": self.default}
        return openapi.parameter(self.name, RawSchema(schema), "query", required=False,
                                 description=self.description)(handler)


_taxonomy = load_taxonomy()
PERIOD = TextParam("period", f"时间段,默认最近 30 天。可用:{PERIOD_HELP}")
CATEGORY = TextParam("category", "只看这个分类(五事共治)", tuple(_taxonomy.categories))
DEPARTMENT = TextParam("department", "只看这个部门,部门代码,如 jianshe")
GRID = TextParam("grid", "只看这个网格,网格代码,如 XJB-01")
URGENCY = TextParam("urgency", "只看这个紧急程度(五事五办)", tuple(_taxonomy.urgencies))
FILTERS = (CATEGORY, DEPARTMENT, GRID, URGENCY)
BREAKDOWN_BY = TextParam("by", "按什么分组", DIMENSIONS, "department")
TREND_BY = TextParam("by", "按日或按周", TREND_DIMENSIONS, "day")
OVERDUE_LIMIT = IntParam("limit", "最多几条", 50, 1, 500)
FEED_AFTER = IntParam("after", "只要编号大于它的工单(轮询时传上次的 last_id)", 0, 0, 2**31 - 1)
FEED_LIMIT = IntParam("limit", "最多几条", 20, 1, 200)
HOTSPOT_HOURS = IntParam("hours", "看最近几小时的反映,默认取配置 hotspots.window_hours", 6, 1, 168)
HOTSPOT_MIN_REPORTS = IntParam("min_reports", "同村相近的反映至少几件算热点,默认取配置 hotspots.min_reports", 3, 2, 100)
HOTSPOT_LIMIT = IntParam("limit", "最多几个热点", 20, 1, 100)
SHEET = TextParam("sheet", "CSV 的内容:汇总(summary)或工单明细(orders);Excel 两者都有", ("summary", "orders"),
                  "summary")


def stats_doc(summary: str, response: type[BaseModel], *params, description: str | None = None):
    """A statistics operation: the bearer scheme, its parameters, its JSON answer and the error body."""

    def decorate(handler):
        for param in params:
            handler = param.documented(handler)
        return doc(summary, tag=TAG, response=response, description=description)(handler)

    return decorate


def report_doc(handler):
    """The monthly report is a file: Excel, or CSV."""
    decorators = [
        openapi.summary("月报下载"), openapi.tag(TAG), openapi.secured("bearer"),
        openapi.description("/report/2026-03.xlsx(汇总、分组、工单三张表)或 /report/2026-03.csv。工单明细隐去电话、"
                            "身份证号和银行卡号;一屏总览链接不能下载工单明细(403),督办员用本人账号登录可以。"),
        openapi.parameter("filename", RawSchema({"type": "string", "pattern": REPORT_FILENAME}), "path",
                          required=True, description="月份和格式,如 2026-03.xlsx 或 2026-03.csv"),
        SHEET.documented,
        openapi.response(200, {XLSX: RawSchema({"type": "string", "format": "binary"}),
                               CSV: RawSchema({"type": "string"})}, "月报文件"),
        openapi.response("default", {"application/json": RawSchema(response_schema_of(ErrorBody))},
                         "错误:{error: {code, message}}"),
    ]
    for decorator in decorators:
        handler = decorator(handler)
    return handler


# ---------------------------------------------------------------------------------------------- answers
class PeriodOut(BaseModel):
    label: str
    start: str
    end: str
    days: int


class RateOut(BaseModel):
    numerator: int
    denominator: int
    value: float | None
    display: str


class SpreadOut(BaseModel):
    count: int
    median_seconds: int | None
    p90_seconds: int | None
    median_display: str
    p90_display: str


class FiguresOut(BaseModel):
    key: Any = None
    label: str
    counts: dict[str, int]
    rates: dict[str, RateOut]
    durations: dict[str, SpreadOut]


class SummaryOut(BaseModel):
    period: PeriodOut
    filters: dict[str, str]
    figures: FiguresOut


class BreakdownOut(BaseModel):
    period: PeriodOut
    filters: dict[str, str]
    by: str
    groups: list[FiguresOut]


class TrendOut(BaseModel):
    period: PeriodOut
    filters: dict[str, str]
    by: str
    buckets: list[FiguresOut]


class OrderRow(BaseModel):
    id: int
    number: str
    category: str
    urgency: str
    state: str
    state_label: str
    escalation_level: int
    department: str
    grid: str
    summary: str
    submitted_at: str | None
    resolve_deadline: str | None
    overdue_seconds: int | None = None
    overdue_display: str | None = None


class OverdueOut(BaseModel):
    orders: list[OrderRow]


class FeedOut(BaseModel):
    orders: list[OrderRow]
    last_id: int | None


class RateDefinition(BaseModel):
    name: str
    numerator: str
    denominator: str


class DefinitionsOut(BaseModel):
    rates: dict[str, RateDefinition]
    counts: dict[str, str]
    durations: dict[str, str]


class TrendPart(BaseModel):
    by: str
    buckets: list[FiguresOut]


class DashboardOut(BaseModel):
    township: str
    viewer: str
    generated_at: str
    period: PeriodOut
    summary: FiguresOut
    trend: TrendPart
    by_category: list[FiguresOut]
    by_department: list[FiguresOut]
    by_grid: list[FiguresOut]
    overdue: list[OrderRow]
    feed: list[OrderRow]
    definitions: DefinitionsOut
    can_export_orders: bool  # false for a dashboard link: it may not download the per-order exports


class HotspotOut(BaseModel):
    place: str  # the village
    terms: list[str]  # the words its reports share, strongest first
    count: int
    numbers: list[str]  # its orders, oldest first
    first_reported_at: str
    last_reported_at: str
    summary: str  # the newest report, personal data masked, cut short
    alerted_at: str | None  # when the supervisors were told (None: not yet, or below the alert's threshold)


class HotspotsOut(BaseModel):
    window_hours: int
    min_reports: int
    since: str
    until: str
    hotspots: list[HotspotOut]
