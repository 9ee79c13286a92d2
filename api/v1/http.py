"""What every /api/v1 handler shares: the route table, body and query validation with Chinese messages,
JSON responses from the response models, and Idempotency-Key handling."""
from __future__ import annotations

import functools
import hashlib
import json as jsonlib
import re
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, JSONResponse, json
from sanic_ext import openapi
from tortoise.exceptions import IntegrityError

from api.v1.schemas import ORDER_NUMBER_PATTERN
from orders import models
from orders.errors import Conflict, InvalidInput, NotFound

M = TypeVar("M", bound=BaseModel)

PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IN_PROGRESS = 0  # IdempotencyRecord.status while the first request is still running
STALE_CLAIM = timedelta(seconds=60)  # a claim this old belongs to a request that died: it may be taken over
MAX_INT = 2_147_483_647


# ---------------------------------------------------------------------------------------------- routes
class RouteTable:
    """Handlers are declared once at import; each app gets its own blueprint built from the table."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, str, str]] = []

    def route(self, method: str, uri: str):
        def decorate(handler):
            if "<number:str>" in uri:
                from api.v1.docs import RawSchema

                handler = openapi.parameter("number", RawSchema({"type": "string", "pattern": ORDER_NUMBER_PATTERN}),
                                            "path", required=True, description="工单编号,如 YK20261124-0001")(handler)
            self.entries.append((handler, uri, method))
            return handler

        return decorate

    def get(self, uri: str):
        return self.route("GET", uri)

    def post(self, uri: str):
        return self.route("POST", uri)

    def patch(self, uri: str):
        return self.route("PATCH", uri)

    def blueprint(self, name: str) -> Blueprint:
        bp = Blueprint(name, url_prefix=PREFIX)
        for handler, uri, method in self.entries:
            bp.add_route(handler, uri, methods=[method], name=handler.__name__)
        return bp


routes = RouteTable()


# ---------------------------------------------------------------------------------------------- validation
_REASONS = {
    "missing": "必须填写",
    "extra_forbidden": "是不认识的字段",
    "string_type": "应为文字",
    "string_unicode": "包含无效字符",
    "string_too_short": "不能为空",
    "string_too_long": "太长了(最多 {max_length} 字)",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "too_long": "最多 {max_length} 项",
    "too_short": "至少 {min_length} 项",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
    "literal_error": "只能是 {expected}",
    "date_type": "应为日期,格式 YYYY-MM-DD",
    "date_parsing": "应为日期,格式 YYYY-MM-DD",
    "date_from_datetime_parsing": "应为日期,格式 YYYY-MM-DD",
    "date_from_datetime_inexact": "应为日期,格式 YYYY-MM-DD",
}


TOO_DEEP = "JSON 嵌套太深"


def explain(exc: ValidationError, what: str = "请求内容") -> InvalidInput:
    """The first problem, in Chinese, naming the field."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"] if part != "__root__")
    kind = error["type"]
    if kind in ("too_long", "too_short") and isinstance(error.get("input"), str):
        kind = f"string_{kind}"  # an optional text's length is checked as a value's: it counts characters
    if kind == "json_invalid" and "recursion limit" in str((error.get("ctx") or {}).get("error", "")):
        return InvalidInput(f"{what}有误:{TOO_DEEP}", field=what)
    template = _REASONS.get(kind)
    if template is None:
        reason = str((error.get("ctx") or {}).get("error", "")) or "格式不对"
    else:
        context = {k: str(v).replace(" or ", " 或 ") for k, v in (error.get("ctx") or {}).items()}
        reason = template.format(**context)
    message = f"{what}有误:{field} {reason}" if field else f"{what}有误:{reason}"
    return InvalidInput(message, field=field or what)


def parse_body(request: Request, model: type[M]) -> M:
    raw = request.body or b""
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        raise explain(exc) from None


def parse_query(request: Request, model: type[M]) -> M:
    values = {name: request.args.get(name) for name in model.model_fields if name in request.args}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise explain(exc, "查询参数") from None


def order_number(number: str) -> str:
    """A path's order number; anything not shaped like one cannot exist (404, like an unknown number)."""
    if not re.fullmatch(ORDER_NUMBER_PATTERN, number):
        raise NotFound(f"没有找到工单 {number[:32]}")
    return number


def record_id(value: int, what: str = "记录") -> int:
    if not 1 <= value <= MAX_INT:
        raise NotFound(f"没有找到该{what}")
    return value


def respond(model: BaseModel, status: int = 200) -> JSONResponse:
    return json(model.model_dump(mode="json"), status=status, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- idempotency
class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


def _principal(request: Request) -> str:
    actor = request.ctx.actor
    return f"{actor.role}:{actor.id}"


def _fingerprint(request: Request) -> str:
    raw = request.body or b""
    try:
        canonical = jsonlib.dumps(jsonlib.loads(raw), sort_keys=True, ensure_ascii=False).encode() if raw.strip() else b""
    except ValueError:
        canonical = raw
    except RecursionError:  # deeper than the interpreter's stack: no body parse_body would accept either
        raise InvalidInput(f"请求内容有误:{TOO_DEEP}", field="请求内容") from None
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + canonical).hexdigest()


def idempotent(handler):
    """A repeated Idempotency-Key (same caller, same request) gets the first success again and changes nothing.

    The first request claims the key with a row (unique), so two workers or hosts cannot both run it; a
    failed first attempt releases the claim, because it changed nothing and may be retried."""

    @functools.wraps(handler)
    async def wrapper(request: Request, *args, **kwargs) -> HTTPResponse:
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if not key:
            return await handler(request, *args, **kwargs)
        if len(key) > 200 or not key.isprintable():
            raise InvalidInput("Idempotency-Key 应为 1–200 个可见字符", field=IDEMPOTENCY_HEADER)
        record_key = hashlib.sha256(f"{_principal(request)}\n{key}".encode()).hexdigest()
        fingerprint = _fingerprint(request)
        replay = await _claim(request, record_key, fingerprint)
        if replay is not None:
            return replay
        try:
            response = await handler(request, *args, **kwargs)
        except BaseException:
            await models.IdempotencyRecord.filter(key=record_key, status=IN_PROGRESS).delete()
            raise
        if 200 <= response.status < 300:
            await models.IdempotencyRecord.filter(key=record_key).update(
                status=response.status, body=jsonlib.loads(response.body or b"null"))
        else:
            await models.IdempotencyRecord.filter(key=record_key, status=IN_PROGRESS).delete()
        return response

    return wrapper


async def _claim(request: Request, record_key: str, fingerprint: str) -> HTTPResponse | None:
    now = request.app.ctx.clock.now()
    for _ in range(3):  # a claim released between our insert and our read: try again
        try:
            await models.IdempotencyRecord.create(key=record_key, request_hash=fingerprint, status=IN_PROGRESS,
                                                  body={}, created_at=now)
            return None
        except IntegrityError:
            existing = await models.IdempotencyRecord.get_or_none(key=record_key)
        if existing is None:
            continue
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused("这个 Idempotency-Key 已用于另一个请求,请换一个新的键", field=IDEMPOTENCY_HEADER)
        if existing.status != IN_PROGRESS:
            return json(existing.body, status=existing.status, ensure_ascii=False,
                        headers={"Idempotent-Replayed": "true"})
        if existing.created_at < now - STALE_CLAIM:
            taken = await models.IdempotencyRecord.filter(
                id=existing.id, status=IN_PROGRESS, created_at=existing.created_at).update(created_at=now)
            if taken:
                return None
        raise Conflict("同一请求正在处理中,请稍后再试")
    raise Conflict("同一请求正在处理中,请稍后再试")
