"""派单 · 退单 · 接单 · 办单: the order in the departments' hands.

A grid worker dispatches it (or the routing did, at intake), the department returns a misrouted one or accepts it,
reports progress, asks for more time (approved or denied under 督单) and resolves it, which sends the resident the
survey (验单). The resident may add a photo, a location or a note ("补充:…") to an open order.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from orders import models
from orders.errors import InvalidInput, NotPermitted
from orders.evidence import attach_uploads, resident_media_rows
from orders.lifecycle import Action, Role, State
from orders.outbox_kinds import RESIDENT_PROGRESS
from orders.sql import insert_rows
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text, _Notice

RESIDENT_NOTE = "resident_note"
NOTE_CHARS = 1000


class Handling(UnitOfWork):
    # ------------------------------------------------------------------ 派单
    async def dispatch(
        self, number: str, actor: Actor, department_code: str, category: str | None = None, reason: str | None = None
    ) -> models.Order:
        department = await models.Department.get_or_none(code=department_code, active=True)
        if department is None:
            raise InvalidInput(f"没有这个部门:{department_code}")
        category = category or None

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            chosen = category or (
                order.predicted_category
                if order.predicted_category and self.taxonomy.allows(order.predicted_category, department_code)
                else self.taxonomy.default_category(department_code)
            )
            if chosen not in self.taxonomy.categories:
                raise InvalidInput(f"没有这个分类:{chosen}")
            if not self.taxonomy.allows(chosen, department_code):
                raise InvalidInput(f"“{chosen}”类事项不能派给{department.name}")
            change = self._dispatch_change(order, department, chosen, now, auto=False)
            corrected = (department_code, chosen) != (order.predicted_department, order.predicted_category)
            if corrected:
                change.after.append(
                    lambda c: models.Correction.create(
                        using_db=c, order_id=order.id, text=order.text, category=chosen, department=department_code,
                        source="redispatch", staff_id=actor.id, at=now,
                    )
                )
                if order.auto_dispatched:
                    change.fields["routing_corrected"] = True
            change.data["corrected"] = corrected
            return change

        return await self._apply(number, actor, Action.DISPATCH, plan, reason=reason)

    def _dispatch_change(
        self, order: models.Order, department: models.Department, category: str, now: datetime, auto: bool
    ) -> _Change:
        change = _Change(
            fields={
                "department_id": department.id,
                "category": category,
                "dispatched_at": now,
                "accept_deadline": self.deadlines.accept_deadline(now, order.urgency),
                "resolve_deadline": self.deadlines.resolve_deadline(
                    now, order.urgency, dispute=self.deadlines.is_dispute(category, department.code)),
                "overdue": False,
            },
            data={"department": department.code, "category": category, "auto": auto},
        )
        if auto:
            change.fields["auto_dispatched"] = True
        change.notices.append(self._department_notice(department, "dispatched"))
        return change

    # ------------------------------------------------------------------ 退单
    async def return_(
        self,
        number: str,
        actor: Actor,
        reason: str,
        suggested_category: str | None = None,
        suggested_department: str | None = None,
    ) -> models.Order:
        reason = _clean_text(reason, "退单理由", 500)
        if suggested_department and suggested_department not in self.taxonomy.departments:
            raise InvalidInput(f"没有这个部门:{suggested_department}")
        if suggested_category and suggested_category not in self.taxonomy.categories:
            raise InvalidInput(f"没有这个分类:{suggested_category}")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            # A pending request for more time goes with the department that asked.
            change = _Change(fields={"department_id": None, "returned_at": now, "accepted_by_id": None,
                                     "extension_days_requested": None})
            if suggested_department:
                category = suggested_category or self.taxonomy.default_category(suggested_department)
                if not self.taxonomy.allows(category, suggested_department):
                    raise InvalidInput(f"“{category}”类事项不能派给该部门")
                change.after.append(
                    lambda c: models.Correction.create(
                        using_db=c, order_id=order.id, text=order.text, category=category,
                        department=suggested_department, source="return", staff_id=actor.id, at=now,
                    )
                )
                change.data.update(suggested_department=suggested_department, suggested_category=category)
            if order.auto_dispatched:
                change.fields["routing_corrected"] = True
            change.after.append(lambda c: self._notify_grid_workers(c, order, now))
            return change

        return await self._apply(number, actor, Action.RETURN, plan, reason=reason)

    # ------------------------------------------------------------------ 接单
    async def accept(self, number: str, actor: Actor) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            within = order.accept_deadline is None or now <= order.accept_deadline
            change = _Change(fields={"accepted_at": now, "accepted_by_id": actor.id})
            if order.state == State.DISPATCHED:
                change.fields["accepted_within_deadline"] = within
            change.data["within_deadline"] = within
            if order.overdue and (order.resolve_deadline is None or now <= order.resolve_deadline):
                # Overdue only for want of acceptance: accepting ends it (the escalation level stays).
                change.fields["overdue"] = False
            department = await self._department_name(order, conn)
            change.after.append(lambda c: self._notify_resident(c, order, "accepted", now, {"department": department}))
            return change

        return await self._apply(number, actor, Action.ACCEPT, plan)

    # ------------------------------------------------------------------ 办单
    async def progress(self, number: str, actor: Actor, note: str, photos: Iterable[int] = (),
                       notify_resident: bool = False) -> models.Order:
        """A step of the work, with photos the member uploaded (POST /api/v1/media) as evidence. Internal unless
        `notify_resident`: then the resident is told the note through the outbox (and sees it in their timeline)."""
        note = _clean_text(note, "进展说明", 1000)
        if not isinstance(notify_resident, bool):
            raise InvalidInput("notify_resident 只能是 true 或 false", field="notify_resident")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            photos_attached = await attach_uploads(conn, order, actor, photos, "progress")
            change = _Change(data={"note": note, "photos": photos_attached, "notify_resident": notify_resident})
            if notify_resident:
                department = await self._department_name(order, conn)
                change.after.append(lambda c: self._notify_resident(c, order, RESIDENT_PROGRESS, now,
                                                                    {"note": note, "department": department}))
            return change

        return await self._apply(number, actor, Action.PROGRESS, plan, reason=note)

    async def request_extension(self, number: str, actor: Actor, days: int, reason: str) -> models.Order:
        reason = _clean_text(reason, "延期理由", 500)
        if not isinstance(days, int) or not 1 <= days <= 90:
            raise InvalidInput("延期天数应在 1 到 90 天之间")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"extension_days_requested": days}, data={"days": days})
            change.after.append(lambda c: self._notify_role(c, order, "supervisor", "extension_requested", now,
                                                            {"days": days, "reason": reason}))
            return change

        return await self._apply(number, actor, Action.REQUEST_EXTENSION, plan, reason=reason)

    async def resolve(self, number: str, actor: Actor, result: str, photos: Iterable[int] = ()) -> models.Order:
        result = _clean_text(result, "办理结果", 2000)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"resolved_at": now, "result": result, "overdue": False,
                                     "extension_days_requested": None})
            attached = await attach_uploads(conn, order, actor, photos, "resolve")
            if attached:
                change.data["photos"] = attached
            change.after.append(lambda c: self._notify_resident(
                c, order, "survey", now, {"result": result, "round": order.reopen_count},
                dedup=f"survey:{order.id}:{order.reopen_count}"))
            change.after.append(lambda c: self._resolve_followers(c, order, result, now))  # 合并工单
            return change

        return await self._apply(number, actor, Action.RESOLVE, plan, reason=result)

    # ------------------------------------------------------------------ additions from the resident
    async def add_photo(self, number: str, actor: Actor, media_id: str, url: str | None = None) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            photos = list(order.photos or [])
            if len(photos) >= 9:
                raise InvalidInput("每个工单最多 9 张照片")
            photo = {"media_id": media_id, "url": url, "at": now.isoformat()}
            photos.append(photo)
            change = _Change(fields={"photos": photos}, data={"media_id": media_id})
            change.after.append(lambda c: insert_rows(c, models.Media, resident_media_rows(order.id, [photo], None, now)))
            return change

        return await self._annotate(number, actor, "add_photo", plan)

    async def set_location(self, number: str, actor: Actor, latitude: float, longitude: float,
                           label: str | None = None) -> models.Order:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise InvalidInput("位置坐标无效")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            grid_id = await self._grid_for(latitude, longitude, conn)
            fields = {"latitude": latitude, "longitude": longitude, "location_label": (label or "")[:128] or None}
            if grid_id is not None:
                fields["grid_id"] = grid_id
            return _Change(fields=fields, data={"grid_id": grid_id, "label": label})

        return await self._annotate(number, actor, "set_location", plan)

    async def add_note(self, number: str, actor: Actor, text: str) -> models.Order:
        """The resident's own words added to their order ("补充:水管在老井旁边"): an event with the text, and a notice
        to whoever handles the order now — its department, or before dispatch the grid workers."""
        if actor.role != Role.RESIDENT:
            raise NotPermitted(actor.role, RESIDENT_NOTE)
        text = _clean_text(text, "补充内容", NOTE_CHARS)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(data={"text": text})
            if order.department_id is not None:
                department = await self._department(conn, id=order.department_id)
                change.notices.append(self._department_notice(department, RESIDENT_NOTE, order.department_id,
                                                              {"note": text}))
            else:
                change.notices.append(_Notice(f"notify_{RESIDENT_NOTE}", "grid_workers", payload={"note": text}))
            return change

        return await self._annotate(number, actor, RESIDENT_NOTE, plan, reason=text)
