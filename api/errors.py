"""One error body for every door: {"error": {"code": stable, "message": Chinese, for people}}.

Whatever raised the error: a use case (DomainError), Sanic's router or HTTP parser before any handler ran
(SanicException: unknown route, wrong method, oversized or malformed request), or a bug (any other exception: a
500 that tells nothing of the code, and a log line with the traceback under the request's id)."""
from __future__ import annotations

import logging

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import JSONResponse, json

from orders.errors import DomainError

log = logging.getLogger("sidan.errors")

# status -> (code, message) for what Sanic raises itself
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式不正确"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限"),
    404: ("not_found", "没有找到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    408: ("request_timeout", "请求超时,请重试"),
    413: ("payload_too_large", "请求内容太大"),
    416: ("range_not_satisfiable", "请求的范围无效"),
    417: ("expectation_failed", "不支持该 Expect 请求头"),
    500: ("internal_error", "服务器内部错误,请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用,请稍后再试"),
}


def error_body(code: str, message: str, status: int, *, headers: dict | None = None, **details) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return json(body, status=status, headers=headers, ensure_ascii=False)


def install_error_handlers(app: Sanic) -> None:
    @app.exception(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        details = {k: v for k, v in exc.details.items() if isinstance(v, (str, int, float, bool))}
        return error_body(exc.code, exc.message, exc.status, **details)

    @app.exception(SanicException)
    async def http_error(request: Request, exc: SanicException) -> JSONResponse:
        status = getattr(exc, "status_code", 500) or 500
        headers = dict(getattr(exc, "headers", None) or {})
        if status >= 500:
            if not exc.quiet:
                log.error("%s %s answered %s", request.method, request.path, status, exc_info=exc)
            return server_error(request, status, headers)
        code, message = HTTP_ERRORS.get(status, ("http_error", "请求有误"))
        return error_body(code, message, status, headers=headers)

    @app.exception(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.path, exc_info=exc)
        return server_error(request, 500)


def server_error(request: Request, status: int, headers: dict | None = None) -> JSONResponse:
    """Nothing about the code; the request's id, under which the log has the rest."""
    code, message = HTTP_ERRORS.get(status, HTTP_ERRORS[500])
    request_id = getattr(getattr(request, "ctx", None), "request_id", None)
    return error_body(code, message, status, headers=headers, **({"request_id": request_id} if request_id else {}))
