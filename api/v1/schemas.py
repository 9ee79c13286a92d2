"""Request bodies and response shapes of /api/v1 as pydantic models.

Bodies are validated with these models; responses are built with them too, so the OpenAPI document generated
from them is the shape the server really sends.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from orders.lifecycle import INVALID_REASONS

STAFF_ROLES = ("grid_worker", "dept_staff", "supervisor", "admin")
ORDER_NUMBER_PATTERN = r"^[A-Z]{1,6}\d{8}-\d{4,6}$"


def _storable(value: str) -> str:
    # NUL and lone surrogates cannot be stored (PostgreSQL refuses them): refuse them here, clearly.
    if "\x00" in value:
        raise ValueError("包含无效字符")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("包含无效字符") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------------------------- bodies
class LoginBody(Body):
    code: Text = Field(min_length=1, max_length=128, description="wx.login 得到的 code")


class RefreshBody(Body):
    refresh_token: Text = Field(min_length=1, max_length=2048)


class BindBody(Body):
    """The WeChat to bind: the mini-program's (code) or the official account's that signed in to the workbench
    (openid_ticket); exactly one of them."""

    code: Text | None = Field(None, min_length=1, max_length=128, description="wx.login 得到的 code(小程序)")
    openid_ticket: Text | None = Field(None, min_length=1, max_length=2048,
                                       description="工作台网页授权登录后得到的 openid_ticket(公众号),10 分钟内有效")
    invitation: Text = Field(min_length=4, max_length=32, description="管理员发放的一次性邀请码")

    @model_validator(mode="after")
    def _one_identity(self) -> BindBody:
        if (self.code is None) == (self.openid_ticket is None):
            raise ValueError("code(小程序)和 openid_ticket(工作台)须填写其中一个")
        return self


class LinkBody(Body):
    code: Text = Field(min_length=1, max_length=16, description="在公众号发送“绑定小程序”得到的 6 位关联码")


class Linked(BaseModel):
    linked: bool = Field(description="公众号与小程序已是同一居民账号")
    orders_moved: int = Field(description="这次从小程序账号并入的工单数")
    message: str


class DispatchBody(Body):
    department: Text = Field(min_length=1, max_length=32, description="部门代码,如 jianshe")
    category: Text | None = Field(None, max_length=16, description="分类(五事共治),不填按部门默认")
    reason: Text | None = Field(None, max_length=500)


class AcceptBody(Body):
    pass


MediaId = Annotated[int, Field(ge=1, le=2_147_483_647)]  # the id POST /api/v1/media answered with


class ProgressBody(Body):
    note: Text = Field(min_length=1, max_length=1000)
    photos: list[MediaId] = Field(default_factory=list, max_length=9,
                                  description="先用 POST /api/v1/media 上传的照片 id,最多 9 张")
    notify_resident: bool = Field(False, description="true:这条进展告知群众(微信消息),群众的工单详情里也能看到;"
                                                     "false(默认):内部记录,群众看不到")


class ExtensionRequestBody(Body):
    days: int = Field(ge=1, le=90)
    reason: Text = Field(min_length=1, max_length=500)


class ExtensionApproveBody(Body):
    days: int | None = Field(None, ge=1, le=90, description="不填则按申请的天数批准")
    reason: Text | None = Field(None, max_length=500)


class ExtensionDenyBody(Body):
    reason: Text = Field(min_length=1, max_length=500)


class ReturnBody(Body):
    reason: Text = Field(min_length=1, max_length=500)
    suggested_department: Text | None = Field(None, max_length=32)
    suggested_category: Text | None = Field(None, max_length=16)


class InvalidateBody(Body):
    code: Literal[tuple(INVALID_REASONS)] = Field(  # type: ignore[valid-type]  # the domain's codes
        description="不予受理的原因:" + "、".join(f"{code} {label}" for code, label in INVALID_REASONS.items()))
    reason: Text = Field(min_length=1, max_length=500,
                         description="告诉群众的话:为什么不予受理,可以怎么办(例如该向哪里反映)")


class MergeBody(Body):
    into: Text = Field(min_length=1, max_length=24, description="主工单号:本工单合并到它,随它办理")
    reason: Text | None = Field(None, max_length=500, description="合并说明(会告诉群众);不填则为“与工单…反映同一事项”")


class ResolveBody(Body):
    result: Text = Field(min_length=1, max_length=2000)
    photos: list[MediaId] = Field(default_factory=list, max_length=9,
                                  description="办结现场照片:先用 POST /api/v1/media 上传的照片 id,最多 9 张")


class RateBody(Body):
    score: int = Field(ge=1, le=5)
    resolved: bool | None = Field(None, description="问题是否解决;不填时 3 分及以上算解决")
    comment: Text | None = Field(None, max_length=500)


class CancelBody(Body):
    reason: Text | None = Field(None, max_length=500)


class InvitationBody(Body):
    """Either staff_id (an existing member, e.g. a new phone) or the new member's name and role."""

    staff_id: int | None = Field(None, ge=1, le=2_147_483_647)
    name: Text | None = Field(None, min_length=1, max_length=32)
    role: Literal["grid_worker", "dept_staff", "supervisor", "admin"] | None = None
    department: Text | None = Field(None, max_length=32, description="部门代码(dept_staff 必填)")
    grid: Text | None = Field(None, max_length=32, description="网格代码(grid_worker 必填)")
    expires_hours: int = Field(72, ge=1, le=720)


class StaffUpdateBody(Body):
    active: bool


# ---------------------------------------------------------------------------------------------- query strings
class Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)  # unknown parameters are ignored


class OrderListQuery(Query):
    state: Text | None = Field(None, max_length=200, description="状态,多个用逗号分隔")
    category: Text | None = Field(None, max_length=16)
    department: Text | None = Field(None, max_length=32)
    grid: Text | None = Field(None, max_length=32)
    overdue: bool | None = None
    since: date | None = Field(None, description="提交日期起(含),YYYY-MM-DD")
    until: date | None = Field(None, description="提交日期止(含),YYYY-MM-DD")
    q: Text | None = Field(None, max_length=100)
    extension_pending: bool | None = Field(None, description="true:只看有待审批延期申请的工单;false:排除它们")
    due_soon: bool | None = Field(None, description="true:只看即将超期的工单(未逾期,接单或办结时限在提醒时间内);"
                                                    "false:排除它们")
    urgent: bool | None = Field(None, description="true:只看急难事;false:排除急难事")
    cursor: Text | None = Field(None, max_length=64)
    limit: int = Field(20, ge=1, le=100)


class PageQuery(Query):
    cursor: Text | None = Field(None, max_length=64)
    limit: int = Field(20, ge=1, le=100)


class GridQuery(Query):
    include_inactive: bool | None = Field(None, description="true:也列出已停用的网格(properties.active 为 false)")


class StaffListQuery(Query):
    role: Literal["grid_worker", "dept_staff", "supervisor", "admin"] | None = None
    department: Text | None = Field(None, max_length=32)
    active: bool | None = None


# ---------------------------------------------------------------------------------------------- responses
class ErrorDetail(BaseModel):
    code: str = Field(description="给程序用的稳定代码")
    message: str = Field(description="给人看的中文说明")
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Ref(BaseModel):
    code: str
    name: str


class UrgentUnattended(BaseModel):
    """An urgent report that reached nobody when it came in (nobody on duty, no supervisor bound)."""

    number: str
    urgency: str
    category: str | None
    grid: Ref | None
    submitted_at: datetime
    excerpt: str | None = Field(description="诉求摘要;只有可以查看这张工单的人才有")
    can_open: bool = Field(description="当前用户能否打开这张工单;打开或处理它即视为已接报")
    notice: str = Field(description="给工作人员的提示横幅")


class Profile(BaseModel):
    role: str
    role_label: str
    name: str
    department: Ref | None = None
    grid: Ref | None = None
    urgent_unattended: list[UrgentUnattended] = Field(
        default_factory=list, description="无人接报的急难事(仅工作人员):登录后请优先处理,有人打开或处理后消失")


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    role: str
    profile: Profile


class ReturnNoteOut(BaseModel):
    reason: str | None = Field(description="退单理由")
    suggested_department: Ref | None = Field(description="退单部门建议的承办部门")
    suggested_category: str | None
    returned_by: str
    returned_at: datetime


class Suggestion(BaseModel):
    category: str
    department: str = Field(description="部门代码")
    confidence: float = Field(description="这一分类与部门组合的概率(0–1)")


class OrderSummary(BaseModel):
    number: str
    state: str
    state_label: str
    excerpt: str
    category: str | None
    urgency: str
    department: Ref | None
    grid: Ref | None
    overdue: bool
    escalation_level: int
    auto_dispatched: bool
    extension_days_requested: int | None
    submitted_at: datetime
    dispatched_at: datetime | None
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    returned: ReturnNoteOut | None = Field(None, description="被退回的工单:退单理由和建议的部门(待派单队列)")
    suggestions: list[Suggestion] | None = Field(
        None, description="自动分类给出的前三个建议(分类、部门、概率),最可能的在前;仅工作人员可见")


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="下一页的 cursor;没有更多时为 null")


class Location(BaseModel):
    latitude: float | None
    longitude: float | None
    label: str | None


class Photo(BaseModel):
    """One piece of evidence of the order: a photo or a voice message, from the resident or from the staff."""

    id: int = Field(description="文件 id(GET /api/v1/media/{id})")
    source: Literal["resident", "progress", "resolve"] = Field(description="群众提交 / 办理进展 / 办结")
    kind: Literal["image", "voice"]
    status: Literal["pending", "stored", "failed"] = Field(description="保存中 / 已保存 / 未能保存")
    status_label: str = Field(description="如“照片未能保存”")
    url: str | None = Field(None, description="短时有效的签名地址(已保存时),由本系统提供文件内容")
    content_type: str | None = None
    size: int | None = None
    media_id: str = Field("", description="微信的 MediaId(群众发来的)")
    at: datetime


class MediaOut(BaseModel):
    id: int = Field(description="在办理进展、办结的 photos 里填这个 id")
    url: str = Field(description="短时有效的签名地址")
    content_type: str
    size: int
    sha256: str


class Person(BaseModel):
    role: str
    role_label: str
    name: str
    phone: str | None = Field(None, description="已打码的手机号")


class TimelineEntry(BaseModel):
    action: str = Field(description="操作名,与 actions 和接口路径同名(退单为 return)")
    action_label: str
    from_state: str | None
    to_state: str
    actor: Person
    reason: str | None
    data: dict[str, Any]
    at: datetime


class RatingOut(BaseModel):
    round: int
    score: int
    resolved: bool
    comment: str | None
    at: datetime


class Routing(BaseModel):
    predicted_category: str | None
    predicted_department: str | None
    confidence: float | None
    corrected: bool


class SimilarOut(BaseModel):
    number: str
    score: float = Field(description="文字相似度(0–1,基于分类模型的特征)")
    distance_m: float | None = Field(description="两处位置的距离(米);任一方没有位置时为空(同一网格)")


class OrderDetailOut(OrderSummary):
    text: str
    location: Location | None
    photos: list[Photo]
    progress_photos: list[str]
    result: str | None
    reopen_count: int
    accepted_by: Person | None
    resident: Person | None = Field(None, description="仅工作人员可见")
    contact_phone: str | None = Field(
        None, description="群众留下的联系电话:处理该工单的部门、督办员和群众本人看到完整号码,其他人看到打码号码")
    routing: Routing | None = Field(None, description="仅工作人员可见")
    timeline: list[TimelineEntry]
    ratings: list[RatingOut]
    actions: list[str] = Field(description="当前用户此刻可以执行的操作")
    similar: list[SimilarOut] = Field(default_factory=list,
                                      description="可能是同一事项的在办工单(仅工作人员可见;提交后由后台查找)")
    merged_into: str | None = Field(None, description="已合并时:跟随办理的主工单号")
    followers: list[str] = Field(default_factory=list, description="合并到本工单的工单号")


class DepartmentOut(BaseModel):
    code: str
    name: str
    duties: list[str]
    active: bool
    phone: str | None = Field(None, description="部门值班电话")


class DepartmentList(BaseModel):
    items: list[DepartmentOut]


class GridFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class GridCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[GridFeature]


class CategoryOut(BaseModel):
    name: str
    departments: list[str]


class UrgencyOut(BaseModel):
    name: str
    motto: str
    accept_hours: float
    resolve_days: float


class TaxonomyOut(BaseModel):
    categories: list[CategoryOut]
    departments: list[DepartmentOut]
    urgencies: list[UrgencyOut]
    confidence_threshold: float


class StaffOut(BaseModel):
    id: int
    name: str
    role: str
    role_label: str
    department: Ref | None
    grid: Ref | None
    phone: str | None
    active: bool
    bound: bool = Field(description="是否已绑定微信")


class StaffList(BaseModel):
    items: list[StaffOut]


class InvitationOut(BaseModel):
    code: str
    staff: StaffOut
    expires_at: datetime
    used_at: datetime | None
    created_at: datetime


class InvitationList(BaseModel):
    items: list[InvitationOut]
