"""Orders, staff and reference data as the API shows them: Chinese labels, personal data masked (orders.privacy),
and only what the reader's role may know (staff see routing and the resident's masked contact; residents see
neither)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tortoise.models import Model

from api.auth import ROLE_NAMES
from api.v1 import schemas
from orders import models
from orders.evidence import status_label
from orders.lifecycle import ACTION_LABELS, STATE_LABELS, Role, offered_actions, public_action
from orders.privacy import redact, redact_all, sees_personal_data
from orders.queries import OrderDetail, ReturnNote
from orders.services import Actor, OrderService

EXCERPT_CHARS = 60

ROLE_LABELS = {**{str(role): name for role, name in ROLE_NAMES.items()}, "system": "系统"}
EXTRA_ACTION_LABELS = {"resident_note": "群众补充", "add_photo": "补充照片", "set_location": "补充位置",
                       "survey_reminder": "回访提醒", "privacy_purge": "个人信息清除", "attend_urgent": "急难事已接报",
                       "merged_in": "合并进来"}


def _ref(obj: Any) -> schemas.Ref | None:
    return schemas.Ref(code=obj.code, name=obj.name) if obj is not None else None


def _related(order: models.Order, name: str) -> Any:
    """A relation loaded with select_related, or None; an unloaded one is a lazy query, never run here."""
    value = getattr(order, name)
    return value if isinstance(value, Model) else None


def _as_written(text: Any) -> Any:
    return text


def _shown(viewer: Actor, order: models.Order, opened: bool) -> Callable[[Any], Any]:
    """As written, or with personal data masked (orders.privacy decides); lists are not opening the order."""
    return _as_written if sees_personal_data(viewer, order, opened=opened) else redact_all


def summary_fields(order: models.Order, viewer: Actor, shown: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    text = (shown or _shown(viewer, order, opened=False))(order.text) or ""
    return {
        "number": order.number,
        "state": order.state,
        "state_label": STATE_LABELS.get(order.state, order.state),
        "excerpt": text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else ""),
        "category": order.category,
        "urgency": order.urgency,
        "department": _ref(_related(order, "department")),
        "grid": _ref(_related(order, "grid")),
        "overdue": order.overdue,
        "escalation_level": order.escalation_level,
        "auto_dispatched": order.auto_dispatched,
        "extension_days_requested": order.extension_days_requested,
        "submitted_at": order.submitted_at,
        "dispatched_at": order.dispatched_at,
        "accept_deadline": order.accept_deadline,
        "resolve_deadline": order.resolve_deadline,
        "accepted_at": order.accepted_at,
        "resolved_at": order.resolved_at,
        "suggestions": suggestions(order) if viewer.role != Role.RESIDENT else None,
    }


def suggestions(order: models.Order) -> list[schemas.Suggestion]:
    """The router's best three kept with the order; an order routed before they were kept: its predicted pair."""
    stored = order.suggestions
    if stored is None:
        known = order.predicted_category and order.predicted_department
        stored = [{"category": order.predicted_category, "department": order.predicted_department,
                   "confidence": order.confidence or 0.0}] if known else []
    return [schemas.Suggestion(**item) for item in stored]


def order_summary(order: models.Order, viewer: Actor, returned: ReturnNote | None = None) -> schemas.OrderSummary:
    shown = _shown(viewer, order, opened=False)
    note = None if returned is None else schemas.ReturnNoteOut(
        reason=shown(returned.reason), suggested_department=_ref(returned.suggested_department),
        suggested_category=returned.suggested_category, returned_by=redact(returned.returned_by) or "",
        returned_at=returned.returned_at)
    return schemas.OrderSummary(**summary_fields(order, viewer, shown), returned=note)


def order_page(orders: list[models.Order], next_cursor: str | None, viewer: Actor,
               returns: dict[int, ReturnNote] | None = None) -> schemas.OrderPage:
    returns = returns or {}
    return schemas.OrderPage(items=[order_summary(order, viewer, returns.get(order.id)) for order in orders],
                             next_cursor=next_cursor)


def staff_person(staff: models.Staff) -> schemas.Person:
    return schemas.Person(role=staff.role, role_label=ROLE_LABELS.get(staff.role, staff.role), name=staff.name,
                          phone=redact(staff.phone_masked))


def _actor_of(event: models.OrderEvent) -> schemas.Person:
    return schemas.Person(role=event.actor_role, role_label=ROLE_LABELS.get(event.actor_role, event.actor_role),
                          name=redact(event.actor_name) or "")


def _event_data(event: models.OrderEvent, viewer: Actor, shown: Callable[[Any], Any]) -> dict[str, Any]:
    data = dict(event.data or {})
    if viewer.role == Role.RESIDENT:
        data.pop("terms", None)  # the classifier's internals are for staff
        data.pop("confidence", None)
    return shown(data)


def _action_label(event: models.OrderEvent, staff_view: bool) -> str:
    label = ACTION_LABELS.get(event.action) or EXTRA_ACTION_LABELS.get(event.action, event.action)
    if staff_view and event.action == "progress":  # staff see which notes the resident was told
        label += "(已告知群众)" if (event.data or {}).get("notify_resident") else "(内部)"
    return label


def photo(media: models.Media, link: Callable[[int], str] | None) -> schemas.Photo:
    """A medium of the order; its url (a signed link, made by `link`) once its bytes are kept."""
    stored = media.status == "stored"
    return schemas.Photo(id=media.id, source=media.source, kind=media.kind, status=media.status,
                         status_label=status_label(media), url=link(media.id) if stored and link else None,
                         content_type=media.content_type if stored else None, size=media.size if stored else None,
                         media_id=media.wechat_media_id or "", at=media.created_at)


def media_out(media: models.Media, link: Callable[[int], str]) -> schemas.MediaOut:
    return schemas.MediaOut(id=media.id, url=link(media.id), content_type=media.content_type or "",
                            size=media.size or 0, sha256=media.sha256 or "")


def order_detail(detail: OrderDetail, viewer: Actor,
                 link: Callable[[int], str] | None = None) -> schemas.OrderDetailOut:
    order = detail.order
    staff_view = viewer.role != Role.RESIDENT
    shown = _shown(viewer, order, opened=True)
    resident = _related(order, "resident")
    accepted_by = _related(order, "accepted_by")
    photos = [photo(media, link) for media in detail.media if media.source]
    progress_photos = [str(media_id) for event in detail.events if event.action == "progress"
                       for media_id in (event.data or {}).get("photos", [])]
    timeline = [
        schemas.TimelineEntry(
            action=public_action(event.action),
            action_label=_action_label(event, staff_view),
            from_state=event.from_state, to_state=event.to_state, actor=_actor_of(event),
            reason=shown(event.reason), data=_event_data(event, viewer, shown), at=event.at,
        )
        for event in detail.events
    ]
    has_location = order.latitude is not None or order.location_label
    return schemas.OrderDetailOut(
        **summary_fields(order, viewer, shown),
        text=shown(order.text) or "",
        location=schemas.Location(latitude=order.latitude, longitude=order.longitude,
                                  label=shown(order.location_label)) if has_location else None,
        photos=photos,
        progress_photos=progress_photos,
        result=shown(order.result),
        reopen_count=order.reopen_count,
        accepted_by=staff_person(accepted_by) if accepted_by is not None else None,
        resident=schemas.Person(role="resident", role_label=ROLE_LABELS["resident"],
                                name=f"居民{resident.openid[-4:]}", phone=redact(resident.phone_masked))
        if staff_view and resident is not None else None,
        contact_phone=shown(resident.contact_phone) if resident is not None else None,
        routing=schemas.Routing(predicted_category=order.predicted_category,
                                predicted_department=order.predicted_department, confidence=order.confidence,
                                corrected=order.routing_corrected) if staff_view else None,
        timeline=timeline,
        ratings=[schemas.RatingOut(round=r.round, score=r.score, resolved=r.resolved, comment=shown(r.comment),
                                   at=r.at) for r in detail.ratings],
        actions=[public_action(action) for action in offered_actions(
            order.state, viewer.role, extension_pending=order.extension_days_requested is not None)],
        similar=[schemas.SimilarOut(**entry) for entry in detail.similar],
        merged_into=detail.merged_into,
        followers=detail.followers,
    )


def staff_out(staff: models.Staff, department: models.Department | None, grid: models.Grid | None) -> schemas.StaffOut:
    return schemas.StaffOut(id=staff.id, name=staff.name, role=staff.role,
                            role_label=ROLE_LABELS.get(staff.role, staff.role), department=_ref(department),
                            grid=_ref(grid), phone=redact(staff.phone_masked), active=staff.active,
                            bound=staff.openid is not None or staff.oa_openid is not None)


def urgent_unattended(order: models.Order, viewer: Actor, duty_phone: str | None) -> schemas.UrgentUnattended:
    """An urgent report nobody was told of, as a banner for whichever staff member logs in first; its text only for
    those who may open it, the others are asked to pass it on."""
    can_open = OrderService.can_see(viewer, order)
    call = f"乡镇值班电话 {duty_phone}" if duty_phone else "乡镇值班室"
    notice = (f"急难事 {order.number} 报告时没有值班人员可通知,请立即打开处置。" if can_open else
              f"急难事 {order.number} 报告时没有值班人员可通知,请立即转告督办员或联系{call}。")
    return schemas.UrgentUnattended(
        number=order.number, urgency=order.urgency, category=order.category, grid=_ref(_related(order, "grid")),
        submitted_at=order.submitted_at, excerpt=summary_fields(order, viewer)["excerpt"] if can_open else None,
        can_open=can_open, notice=notice)


def profile(actor: Actor, department: models.Department | None = None, grid: models.Grid | None = None,
            urgent: list[schemas.UrgentUnattended] | None = None) -> schemas.Profile:
    return schemas.Profile(role=str(actor.role), role_label=ROLE_LABELS.get(str(actor.role), str(actor.role)),
                           name=actor.name, department=_ref(department), grid=_ref(grid),
                           urgent_unattended=urgent or [])
