"""Request bodies and response shapes the workbench added to /api/v1: PC login by QR code, and the admin's edits of
departments and grids (the township file stays the bulk path)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.v1.schemas import Body, Query, Text, Tokens

QR_TICKET_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


# ---------------------------------------------------------------------------------------------- PC login by QR
class QrTicketOut(BaseModel):
    ticket: str = Field(description="二维码票据")
    poll_secret: str = Field(description="查询登录结果时带上(只有发起登录的电脑知道)")
    confirm_url: str = Field(description="二维码内容:用微信扫码后在手机上确认")
    expires_at: datetime


class QrPollQuery(Query):
    poll_secret: Text = Field(min_length=1, max_length=128, description="创建二维码时得到的 poll_secret")


class QrStatusOut(BaseModel):
    status: Literal["pending", "granted", "expired"] = Field(description="等待扫码确认 / 已确认 / 已过期")
    tokens: Tokens | None = Field(None, description="确认后第一次查询时给出登录凭证(只给一次)")


class QrInfoOut(BaseModel):
    address: str = Field(description="电脑的网络地址")
    device: str = Field(description="电脑浏览器的 User-Agent")
    requested_at: datetime = Field(description="电脑生成二维码的时间")


class QrConfirmOut(BaseModel):
    status: Literal["granted"]
    message: str


# ---------------------------------------------------------------------------------------------- admin edits
class DepartmentUpdateBody(Body):
    name: Text | None = Field(None, min_length=1, max_length=64)
    duties: list[Text] | None = Field(None, max_length=50, description="职责(用于说明和分类提示)")
    phone: Text | None = Field(None, max_length=32, description="部门值班电话;空字符串表示清除")
    active: bool | None = Field(None, description="停用后不再派单给该部门")


class Centre(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class GridBody(Body):
    """A grid's fields; a new grid needs code, name and village, and either polygon or centre (with radius_m)."""

    code: Text | None = Field(None, min_length=1, max_length=32, pattern=CODE_PATTERN,
                              description="网格代码(新建时必填,之后不能改)")
    name: Text | None = Field(None, min_length=1, max_length=64)
    village: Text | None = Field(None, min_length=1, max_length=64)
    active: bool | None = None
    polygon: dict[str, Any] | None = Field(None, description="GeoJSON Polygon,坐标 [经度, 纬度]")
    centre: Centre | None = Field(None, description="中心点(圆形网格,配合 radius_m)")
    radius_m: float | None = Field(None, gt=0, le=20_000, description="圆形网格的半径(米)")


class GridOut(BaseModel):
    code: str
    name: str
    village: str
    active: bool
    polygon: dict[str, Any] | None
    centre: Centre | None
    radius_m: float | None


class DepartmentEdited(BaseModel):
    code: str
    name: str
    duties: list[str]
    phone: str | None
    active: bool
    changed: dict[str, list[Any]] = Field(description="这次修改了什么:字段 → [原值, 新值]")


class GridEdited(GridOut):
    changed: dict[str, list[Any]] = Field(description="这次修改了什么:字段 → [原值, 新值]")
