"""The OpenAPI document: sanic-ext's decorators, fed with the pydantic models' JSON schemas.

sanic-ext writes OpenAPI 3.0.3; pydantic writes JSON Schema 2020-12. `oas30` translates the few differences
(nullable instead of a null type, enum instead of const, inlined $defs) so validators and schemathesis read
the document as the server means it.
"""
from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import Definition, Schema

from api.v1.schemas import ErrorBody

BEARER = "bearer"


class RawSchema(Schema):
    """A JSON schema dict passed through sanic-ext untouched."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Definition.__init__(self, **schema)

    def guard(self, fields: dict[str, Any]) -> dict[str, Any]:
        return fields


def oas30(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    if isinstance(schema, list):
        return [oas30(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if defs is None:
        defs = schema.get("$defs", {})
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        return oas30({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("$defs", "title"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = oas30(value, defs)
    for combinator in ("anyOf", "oneOf"):
        options = out.get(combinator)
        if options and any(option.get("type") == "null" for option in options):
            rest = [option for option in options if option.get("type") != "null"]
            del out[combinator]
            out["nullable"] = True
            if len(rest) == 1:
                out = {**rest[0], **out}
            else:
                out[combinator] = rest
    return out


@functools.cache
def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return oas30(model.model_json_schema(mode="validation"))


@functools.cache
def response_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return oas30(model.model_json_schema(mode="serialization"))


def query_parameters(model: type[BaseModel]):
    """One documented query parameter per field of a query model."""
    schema = schema_of(model)
    required = set(schema.get("required", ()))
    for name, prop in schema["properties"].items():
        prop = dict(prop)  # the cached schema stays whole
        description = prop.pop("description", None)
        prop.pop("nullable", None)  # an absent parameter is the null; "null" in a query string is not
        if prop.get("default", 0) is None:
            del prop["default"]
        yield openapi.parameter(name, RawSchema(dict(prop)), "query", required=name in required,
                                description=description)


def doc(
    summary: str,
    *,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel],
    status: int = 200,
    secured: bool = True,
    idempotent: bool = False,
    description: str | None = None,
):
    """Describe one operation: its body, query parameters, responses, the bearer scheme, Idempotency-Key."""

    def decorate(handler):
        decorators = [openapi.summary(summary), openapi.tag(tag)]
        if description:
            decorators.append(openapi.description(description))
        if body is not None:
            decorators.append(openapi.body({"application/json": RawSchema(schema_of(body))}, required=True))
        if query is not None:
            decorators.extend(query_parameters(query))
        if secured:
            decorators.append(openapi.secured(BEARER))
        if idempotent:
            decorators.append(openapi.parameter(
                "Idempotency-Key", RawSchema({"type": "string", "minLength": 1, "maxLength": 200}), "header",
                required=False, description="重复提交同一个键,返回第一次的结果,不会重复执行"))
        decorators.append(openapi.response(status, {"application/json": RawSchema(response_schema_of(response))},
                                           "成功"))
        decorators.append(openapi.response(
            "default", {"application/json": RawSchema(response_schema_of(ErrorBody))},
            "错误:{error: {code, message}}"))
        for decorator in decorators:
            handler = decorator(handler)
        return handler

    return decorate


def install(app) -> None:
    """Document settings; sanic-ext itself is configured in api.v1.register."""
    app.config.API_TITLE = "sidan 四单 API"
    app.config.API_VERSION = "1.0.0"
    app.config.API_DESCRIPTION = "小程序后端:工作人员派单、接单、办单,居民查单、评价,管理员维护人员与网格。"
    app.ext.openapi.add_security_scheme(BEARER, "http", scheme="bearer", bearer_format="JWT")
