"""One error body for every door: {"error": {"code": stable, "message": Chinese, for people}}."""
from __future__ import annotations

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import JSONResponse, json

from orders.errors import DomainError


def error_body(code: str, message: str, status: int, **details) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return json(body, status=status, ensure_ascii=False)


def install_error_handlers(app: Sanic) -> None:
    @app.exception(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        details = {k: v for k, v in exc.details.items() if isinstance(v, (str, int, float, bool))}
        return error_body(exc.code, exc.message, exc.status, **details)

    @app.exception(SanicException)
    async def http_error(request: Request, exc: SanicException) -> JSONResponse:
        status = getattr(exc, "status_code", 500) or 500
        messages = {404: "没有找到该资源", 405: "不支持该请求方法", 413: "请求内容太大", 400: "请求格式不正确",
                    401: "请先登录", 403: "没有权限"}
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request",
                401: "unauthorized", 403: "forbidden"}.get(status, "http_error")
        return error_body(code, messages.get(status, str(exc)), status)
