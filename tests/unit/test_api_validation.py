"""The API's pure parts: Chinese validation messages, the OpenAPI 3.0 translation, cursors (masking personal data:
tests/unit/test_privacy.py)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.v1 import schemas
from api.v1.auth_routes import normalize_invitation
from api.v1.docs import oas30, schema_of
from api.v1.http import explain, order_number
from api.v1.orders_routes import parse_states
from orders.errors import InvalidInput, NotFound
from orders.lifecycle import State
from orders.queries import decode_cursor, encode_cursor


def problem(model, data) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return explain(caught.value).message


@pytest.mark.parametrize(("model", "data", "message"), [
    (schemas.ProgressBody, {}, "请求内容有误:note 必须填写"),
    (schemas.ProgressBody, {"note": "   "}, "请求内容有误:note 不能为空"),
    (schemas.ProgressBody, {"note": "x" * 1001}, "请求内容有误:note 太长了(最多 1000 字)"),
    (schemas.ProgressBody, {"note": "好", "photos": ["p"] * 10}, "请求内容有误:photos 最多 9 项"),
    (schemas.ProgressBody, {"note": "好", "photos": [""]}, "请求内容有误:photos.0 不能为空"),
    (schemas.ProgressBody, {"note": "好", "extra": 1}, "请求内容有误:extra 是不认识的字段"),
    (schemas.ProgressBody, {"note": "a\x00b"}, "请求内容有误:note 包含无效字符"),
    (schemas.ProgressBody, {"note": "\ud800"}, "请求内容有误:note 包含无效字符"),
    (schemas.RateBody, {"score": 0}, "请求内容有误:score 不能小于 1"),
    (schemas.RateBody, {"score": 2.5}, "请求内容有误:score 应为整数"),
    (schemas.RateBody, {"score": 5, "resolved": "maybe"}, "请求内容有误:resolved 应为 true 或 false"),
    (schemas.InvitationBody, {"role": "king"}, "请求内容有误:role 只能是 'grid_worker', 'dept_staff', 'supervisor' 或 'admin'"),
    (schemas.ProgressBody, [], "请求内容有误:应为 JSON 对象"),
    # optional texts count characters too, not items (their length is checked after the storable check)
    (schemas.DispatchBody, {"department": "jianshe", "category": "分" * 17}, "请求内容有误:category 太长了(最多 16 字)"),
    (schemas.ReturnBody, {"reason": "错派", "suggested_category": "分" * 17},
     "请求内容有误:suggested_category 太长了(最多 16 字)"),
    (schemas.InvitationBody, {"name": " "}, "请求内容有误:name 不能为空"),
])
def test_validation_problems_are_explained_in_chinese_naming_the_field(model, data, message):
    assert problem(model, data) == message


def test_a_body_that_is_not_json_is_explained():
    with pytest.raises(ValidationError) as caught:
        schemas.ProgressBody.model_validate_json(b"{oops")
    error = explain(caught.value)
    assert isinstance(error, InvalidInput) and "不是有效的 JSON" in error.message and error.status == 422


def test_query_problems_say_they_are_in_the_query():
    with pytest.raises(ValidationError) as caught:
        schemas.OrderListQuery.model_validate({"since": "yesterday"})
    assert explain(caught.value, "查询参数").message == "查询参数有误:since 应为日期,格式 YYYY-MM-DD"


def test_an_over_long_category_filter_counts_characters():
    with pytest.raises(ValidationError) as caught:
        schemas.OrderListQuery.model_validate({"category": "分" * 17})
    assert explain(caught.value, "查询参数").message == "查询参数有误:category 太长了(最多 16 字)"


def test_the_openapi_schema_speaks_openapi_3_0():
    schema = schema_of(schemas.RateBody)
    assert schema["properties"]["resolved"] == {"type": "boolean", "nullable": True, "default": None,
                                                "description": "问题是否解决;不填时 3 分及以上算解决"}
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["required"] == ["score"] and schema["additionalProperties"] is False
    detail = oas30(schemas.OrderDetailOut.model_json_schema(mode="serialization"))
    assert "$defs" not in str(detail) and "$ref" not in str(detail) and "'null'" not in str(detail)
    assert detail["properties"]["department"]["nullable"] is True
    assert detail["properties"]["department"]["properties"]["code"] == {"type": "string"}
    assert oas30({"const": "Feature"}) == {"enum": ["Feature"]}
    assert oas30({"type": "integer", "exclusiveMinimum": 0}) == {"type": "integer", "minimum": 0,
                                                                 "exclusiveMinimum": True}


def test_cursors_round_trip_and_refuse_anything_else():
    assert decode_cursor(encode_cursor(12345)) == 12345
    for broken in ("", "abc", encode_cursor(1) + "x", "bzE6LTE", "bzE6MTIzNDU2Nzg5MDEyMzQ1"):
        with pytest.raises(InvalidInput):
            decode_cursor(broken)


def test_states_invitations_and_numbers_are_read_strictly():
    assert parse_states("submitted, returned") == (State.SUBMITTED, State.RETURNED)
    assert parse_states(None) == ()
    with pytest.raises(InvalidInput, match="flying"):
        parse_states("submitted,flying")
    assert normalize_invitation(" ab3d-ef7h ") == "AB3DEF7H"
    assert order_number("YK20261124-0001") == "YK20261124-0001"
    for bad in ("YK2026-1", "yk20261124-0001", "YK20261124-0001/x", "../etc", "YK20261124-0001\x00"):
        with pytest.raises(NotFound):
            order_number(bad)
