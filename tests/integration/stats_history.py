"""A small fixed history through the real use cases, shared by the statistics tests.

Every figure the tests expect is worked out by hand in the comments below (times are Asia/Shanghai).
"""
from __future__ import annotations

from datetime import datetime

from api.demo.township import load_demo_data
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.lifecycle import Role
from orders.services import Actor, OrderService

# The moment the statistics are asked for.
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=SHANGHAI)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


async def staff(openid: str) -> Actor:
    return Actor.of_staff(await models.Staff.get(openid=openid))


async def resident(openid: str) -> Actor:
    return Actor.of_resident(await models.Resident.get(openid=openid))


class Chronicle:
    """A history written through the use cases, each step at its own moment: orders known by letter, each from
    its own resident (resident-<letter>)."""

    def __init__(self, settings, classifier, start: datetime) -> None:
        self.clock = FrozenClock(start)
        self.service = OrderService(settings, classifier, clock=self.clock)
        self.numbers: dict[str, str] = {}

    async def submit(self, letter: str, when: datetime, text: str, **report) -> str:
        self.clock.set(when)
        submission = await self.service.submit(openid=f"resident-{letter}", text=text, **report)
        self.numbers[letter] = submission.order.number
        return self.numbers[letter]

    def step(self, when: datetime) -> None:
        self.clock.set(when)


async def build_history(settings, classifier) -> dict[str, str]:
    """Orders A–I (G in February, outside the month); returns letter -> order number."""
    await load_demo_data()
    chronicle = Chronicle(settings, classifier, at(3, 1, 0))
    service, submit, step, numbers = chronicle.service, chronicle.submit, chronicle.step, chronicle.numbers
    grid_worker, supervisor = await staff("demo-grid_worker"), await staff("demo-supervisor")
    jianshe, minzheng = await staff("demo-dept_staff-jianshe"), await staff("demo-dept_staff-minzheng")
    weijian, anjian = await staff("demo-dept_staff-weijian"), await staff("demo-dept_staff-anjian")

    # A: auto → jianshe; accepted after 30 min (on time); resolved 2 days later; rated 5.
    a = await submit("A", at(3, 2, 9), "路灯坏了")
    step(at(3, 2, 9, 30)); await service.accept(a, jianshe)
    step(at(3, 4, 9, 30)); await service.resolve(a, jianshe, "已更换灯泡")
    step(at(3, 4, 12)); await service.rate(a, await resident("resident-A"), 5)
    # B: auto → minzheng; accepted after 2 h (late); resolved; rated 2 → reopened; re-accepted 20 min later, open.
    b = await submit("B", at(3, 2, 10), "低保申请材料")
    step(at(3, 2, 12)); await service.accept(b, minzheng)
    step(at(3, 3, 12)); await service.resolve(b, minzheng, "已告知材料")
    step(at(3, 3, 15)); await service.rate(b, await resident("resident-B"), 2)
    step(at(3, 3, 15, 20)); await service.accept(b, minzheng)
    # C: unsure → the grid worker dispatches to weijian after 1 h; accepted 10 min later; resolved after 5 days
    # (late: 3-day deadline); never rated → closed unrated.
    c = await submit("C", at(3, 3, 9), "卫生院排队太久")
    step(at(3, 3, 10)); await service.dispatch(c, grid_worker, "weijian", "社会民生")
    step(at(3, 3, 10, 10)); await service.accept(c, weijian)
    step(at(3, 8, 10, 10)); await service.resolve(c, weijian, "已增开窗口")
    step(at(3, 15, 10, 10)); await service.close_unrated(c)
    # D: auto → jianshe, returned (a routing correction), redispatched to zhifa, never accepted → overdue.
    d = await submit("D", at(3, 3, 11), "路灯下面有人占道摆摊")
    step(at(3, 3, 11, 30)); await service.return_(d, jianshe, "不是路灯问题,是占道经营", "平安建设", "zhifa")
    step(at(3, 3, 12)); await service.dispatch(d, grid_worker, "zhifa", "平安建设")
    # E: 急难事 auto → anjian; accepted after 8 min; past its 1-day deadline; escalated by the supervisor.
    e = await submit("E", at(3, 5, 9), "仓库着火了")
    step(at(3, 5, 9, 8)); await service.accept(e, anjian)
    step(at(3, 6, 10)); await service.escalate(e, supervisor, "超期未办结")
    # F: submitted 07:30 on 1 March local (still 28 February in UTC); unsure; cancelled by the resident.
    f = await submit("F", at(3, 1, 7, 30), "问个事情")
    step(at(3, 1, 8)); await service.cancel(f, await resident("resident-F"))
    # G: 23:30 on 28 February local: outside March; auto → jianshe, never accepted (overdue, in the list).
    await submit("G", datetime(2026, 2, 28, 23, 30, tzinfo=SHANGHAI), "路灯闪")
    # H: auto → jianshe; accepted after 5 min; resolved 1 day later; rated 3 (resolved, not satisfied).
    h = await submit("H", at(3, 6, 9), "路灯又坏了")
    step(at(3, 6, 9, 5)); await service.accept(h, jianshe)
    step(at(3, 7, 9, 5)); await service.resolve(h, jianshe, "已修")
    step(at(3, 7, 10)); await service.rate(h, await resident("resident-H"), 3)
    # I: auto → minzheng; accepted after 15 min; resolved; rated 1 → reopened; re-accepted after 25 min;
    # resolved a day later; rated 4.
    i = await submit("I", at(3, 9, 9), "低保卡问题")
    step(at(3, 9, 9, 15)); await service.accept(i, minzheng)
    step(at(3, 11, 9, 15)); await service.resolve(i, minzheng, "已补办")
    step(at(3, 11, 10, 15)); await service.rate(i, await resident("resident-I"), 1)
    step(at(3, 11, 10, 40)); await service.accept(i, minzheng)
    step(at(3, 12, 10, 40)); await service.resolve(i, minzheng, "已重新补办")
    step(at(3, 12, 11)); await service.rate(i, await resident("resident-I"), 4)
    assert Role.DEPT_STAFF == jianshe.role
    return numbers
