"""Tortoise models. The schema lives in migrations/ (Tortoise's own migration tool)."""
from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Department(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    duties = fields.JSONField(default=list)
    active = fields.BooleanField(default=True)
    phone = fields.CharField(max_length=32, null=True)  # the department's duty phone (township file)

    class Meta:
        table = "department"


class Grid(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    village = fields.CharField(max_length=64)
    polygon = fields.JSONField(null=True)  # GeoJSON Polygon geometry, [lng, lat] order
    center_lat = fields.FloatField(null=True)
    center_lng = fields.FloatField(null=True)
    radius_m = fields.FloatField(null=True)  # a round grid: its centre and this radius, when it has no polygon
    # removed from the township file but orders refer to it; a database default: the grids there before it was added
    active = fields.BooleanField(default=True, db_default=True)
    # The grid's worker is the active Staff with role grid_worker and this grid (no FK back: no cycle).

    class Meta:
        table = "grid"


class Township(Model):
    """The township this deployment serves (one row), as `sidan township apply` last wrote it.

    Its name and order prefix win over config's app.township / app.order_prefix (orders.township.identity)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    order_prefix = fields.CharField(max_length=6)
    duty_phone = fields.CharField(max_length=32, null=True)
    villages = fields.JSONField(default=list)  # names, in the file's order; grids name theirs
    updated_at = fields.DatetimeField()

    class Meta:
        table = "township"


class DutyShift(Model):
    """The duty roster for urgent alerts: who is on duty, which weekdays, which local hours.

    A shift whose end comes before its start runs past midnight. Each `sidan township apply` replaces the roster."""

    id = fields.IntField(primary_key=True)
    staff = fields.ForeignKeyField("sidan.Staff", related_name="duty_shifts", on_delete=fields.CASCADE)
    days = fields.JSONField(default=list)  # ["mon", "tue", …]
    starts = fields.CharField(max_length=5)  # "08:00", Asia/Shanghai
    ends = fields.CharField(max_length=5)  # "20:00"; "24:00" is the end of the day
    position = fields.SmallIntField(default=0)  # the file's order

    class Meta:
        table = "duty_shift"


class ReferenceEdit(Model):
    """An admin's edit of a department or a grid in the workbench: who, when, field → [before, after].

    `sidan township apply` reads them to say which of them the file overrides (orders/township/apply.py)."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=16)  # department | grid
    code = fields.CharField(max_length=32)
    action = fields.CharField(max_length=8)  # create | update
    changes = fields.JSONField(default=dict)
    staff = fields.ForeignKeyField("sidan.Staff", related_name="reference_edits", null=True, on_delete=fields.SET_NULL)
    staff_name = fields.CharField(max_length=64)
    at = fields.DatetimeField()

    class Meta:
        table = "reference_edit"
        indexes = (("kind", "code"),)


class Resident(Model):
    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True)
    phone_masked = fields.CharField(max_length=16, null=True)
    last_message_at = fields.DatetimeField(null=True)  # WeChat's 48-hour customer-service window
    subscribed = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # One person, two doors (orders/residents.py): `openid` is the door that made the row (the official account's for
    # a row the bot made). The mini-program's openid of the same person, once linked (unionid or link code):
    miniapp_openid = fields.CharField(max_length=64, unique=True, null=True)
    # A mini-program row merged into the official account's: its orders moved there, its openid logs in there.
    merged_into_id = fields.IntField(null=True, db_index=True)
    contact_phone = fields.CharField(max_length=32, null=True)  # the number the resident left, in full

    class Meta:
        table = "resident"


class UnionidLookup(Model):
    """The background fetch of a resident's unionid (cgi-bin/user/info), one row per resident: a job like a Media row
    (orders/polling.py), `done` once WeChat answered (with a unionid or without), `failed` after its attempts."""

    id = fields.IntField(primary_key=True)
    resident = fields.OneToOneField("sidan.Resident", related_name="unionid_lookup", on_delete=fields.CASCADE)
    status = fields.CharField(max_length=8, default="pending")  # pending | done | failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "unionid_lookup"
        indexes = (("status", "next_attempt_at"),)


class ResidentLink(Model):
    """The record of two resident rows made one: who (the door that asked), when, from (the merged row and its
    openid), to (the row kept), why (unionid | code), and how many orders moved."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("sidan.Resident", related_name="links", on_delete=fields.RESTRICT)
    merged_id = fields.IntField(null=True)  # None: no row to merge, the openid was only recorded
    from_openid = fields.CharField(max_length=64)
    to_openid = fields.CharField(max_length=64)
    via = fields.CharField(max_length=16)  # unionid | code
    actor = fields.CharField(max_length=64)
    reason = fields.TextField()
    orders_moved = fields.IntField(default=0)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "resident_link"


class Staff(Model):
    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True, null=True)  # the mini-program's, bound by invitation
    # the official account's openid (another one for the same person), bound by sending "绑定 <邀请码>" to it:
    # notices go there as template messages
    oa_openid = fields.CharField(max_length=64, unique=True, null=True)
    name = fields.CharField(max_length=32)
    role = fields.CharField(max_length=16)  # grid_worker | dept_staff | supervisor | admin
    department = fields.ForeignKeyField("sidan.Department", related_name="staff", null=True, on_delete=fields.RESTRICT)
    grid = fields.ForeignKeyField("sidan.Grid", related_name="staff", null=True, on_delete=fields.SET_NULL)
    phone_masked = fields.CharField(max_length=16, null=True)
    phone = fields.CharField(max_length=32, null=True)  # in full, for the duty roster: never shown by the API
    # listed in the township file: removed from it, deactivated (a database default: those there before are not)
    from_file = fields.BooleanField(default=False, db_default=False)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff"


class Invitation(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    staff = fields.ForeignKeyField("sidan.Staff", related_name="invitations", on_delete=fields.CASCADE)
    created_by = fields.ForeignKeyField("sidan.Staff", related_name="invitations_created", null=True, on_delete=fields.SET_NULL)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "invitation"


class Order(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=24, unique=True)
    resident = fields.ForeignKeyField("sidan.Resident", related_name="orders", null=True, on_delete=fields.RESTRICT)
    text = fields.TextField()
    normalized_text = fields.TextField()
    photos = fields.JSONField(default=list)  # [{"media_id": …, "url": …, "at": …}]; their bytes: Media rows
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    location_label = fields.CharField(max_length=128, null=True)
    grid = fields.ForeignKeyField("sidan.Grid", related_name="orders", null=True, on_delete=fields.SET_NULL)
    category = fields.CharField(max_length=16, null=True, db_index=True)
    department = fields.ForeignKeyField("sidan.Department", related_name="orders", null=True, on_delete=fields.RESTRICT)
    urgency = fields.CharField(max_length=8, db_index=True)
    confidence = fields.FloatField(null=True)
    predicted_category = fields.CharField(max_length=16, null=True)
    predicted_department = fields.CharField(max_length=32, null=True)
    # the router's best three: [{"category", "department", "confidence"}], best first (None: routed before they were
    # kept, the predicted pair stands in)
    suggestions = fields.JSONField(null=True)
    auto_dispatched = fields.BooleanField(default=False)
    routing_corrected = fields.BooleanField(default=False)  # an automatic dispatch later corrected by a person
    state = fields.CharField(max_length=16, db_index=True)
    escalation_level = fields.SmallIntField(default=0)  # 0 村(网格), 1 村委, 2 乡镇
    overdue = fields.BooleanField(default=False, db_index=True)
    reopen_count = fields.SmallIntField(default=0)
    accept_deadline = fields.DatetimeField(null=True)
    resolve_deadline = fields.DatetimeField(null=True)
    accepted_within_deadline = fields.BooleanField(null=True)
    accepted_by = fields.ForeignKeyField("sidan.Staff", related_name="accepted_orders", null=True, on_delete=fields.SET_NULL)
    extension_days_requested = fields.SmallIntField(null=True)
    result = fields.TextField(null=True)
    submitted_at = fields.DatetimeField(db_index=True)
    dispatched_at = fields.DatetimeField(null=True)
    accepted_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    rated_at = fields.DatetimeField(null=True)
    returned_at = fields.DatetimeField(null=True)
    reopened_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    purged_at = fields.DatetimeField(null=True)  # personal data removed (sidan privacy purge)
    updated_at = fields.DatetimeField()
    version = fields.IntField(default=0)  # optimistic concurrency: every change bumps it
    # An urgent report that reached nobody (no one on duty, no supervisor bound): shown to the first staff member who
    # logs in, until one opens it or acts on it. A database default too: the orders already there when the column is
    # added, and rows written by plain SQL (the bulk demo history), are not flagged.
    urgent_unnotified = fields.BooleanField(default=False, db_default=False)
    # 合并工单: the primary this order follows (state merged until the primary is resolved; kept afterwards, so the
    # statistics count the matter once), and when it was merged.
    merged_into = fields.ForeignKeyField("sidan.Order", related_name="followers", null=True,
                                         on_delete=fields.RESTRICT)
    merged_at = fields.DatetimeField(null=True)
    # Open orders likely the same matter, found after the intake's commit (orders/duplicates.py):
    # [{"number", "score", "distance_m"}]; None: not looked for yet.
    similar = fields.JSONField(null=True)

    class Meta:
        table = "orders"
        indexes = (("department_id", "submitted_at"), ("grid_id", "submitted_at"), ("state", "submitted_at"),
                   ("urgent_unnotified",),  # every staff login asks for the flagged few
                   ("merged_into_id",))  # a primary's followers, read whenever the primary tells its resident


class OrderEvent(Model):
    """The audit trail: every state change and every action, who, when, from, to, why."""

    id = fields.BigIntField(primary_key=True)
    order = fields.ForeignKeyField("sidan.Order", related_name="events", on_delete=fields.RESTRICT)
    action = fields.CharField(max_length=24)
    from_state = fields.CharField(max_length=16, null=True)
    to_state = fields.CharField(max_length=16)
    actor_role = fields.CharField(max_length=16)
    actor_id = fields.IntField(null=True)
    actor_name = fields.CharField(max_length=64)
    reason = fields.TextField(null=True)
    data = fields.JSONField(default=dict)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "order_event"


class PersonalDataAccess(Model):
    """Who read an order's personal data unmasked, and when (个人信息保护法).

    Also who took orders out in an export (masked: order empty, detail names the file)."""

    id = fields.BigIntField(primary_key=True)
    staff = fields.ForeignKeyField("sidan.Staff", related_name="personal_data_accesses", on_delete=fields.RESTRICT)
    order = fields.ForeignKeyField("sidan.Order", related_name="personal_data_accesses", null=True,
                                   on_delete=fields.RESTRICT)
    what = fields.CharField(max_length=16)  # view | export
    detail = fields.CharField(max_length=64, null=True)
    at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "personal_data_access"


class Rating(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("sidan.Order", related_name="ratings", on_delete=fields.RESTRICT)
    round = fields.SmallIntField(default=0)  # 0 for the first resolution, +1 per reopen
    score = fields.SmallIntField()
    resolved = fields.BooleanField()
    comment = fields.TextField(null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "rating"
        unique_together = (("order", "round"),)
        # The statistics find a window's ratings by time (a rating follows its order's submission).
        indexes = (("at",),)


class Outbox(Model):
    """Durable pending side effects, written in the same transaction as the change that causes them."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    order = fields.ForeignKeyField("sidan.Order", related_name="outbox", null=True, on_delete=fields.RESTRICT)
    recipient = fields.CharField(max_length=64, null=True)  # openid
    payload = fields.JSONField(default=dict)
    dedup_key = fields.CharField(max_length=128, unique=True, null=True)
    status = fields.CharField(max_length=8, default="pending", db_index=True)  # pending | sent | dead
    attempts = fields.IntField(default=0)
    # Due when pending and next_attempt_at has passed. A dispatcher's claim sets claimed_by and moves
    # next_attempt_at to the end of its lease, so a crashed dispatcher's rows become due again by themselves.
    next_attempt_at = fields.DatetimeField(db_index=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (("status", "next_attempt_at"),)


class Correction(Model):
    """A person's corrected routing: a labelled example for the next classifier training."""

    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("sidan.Order", related_name="corrections", on_delete=fields.RESTRICT)
    text = fields.TextField()
    category = fields.CharField(max_length=16)
    department = fields.CharField(max_length=32)
    source = fields.CharField(max_length=16)  # redispatch | return
    staff = fields.ForeignKeyField("sidan.Staff", related_name="corrections", null=True, on_delete=fields.SET_NULL)
    at = fields.DatetimeField()

    class Meta:
        table = "correction"


class InboundMessage(Model):
    """One row per WeChat message (MsgId, or FromUserName+CreateTime for events): retries never repeat work."""

    id = fields.BigIntField(primary_key=True)
    msg_key = fields.CharField(max_length=96, unique=True)
    openid = fields.CharField(max_length=64, db_index=True)
    msg_type = fields.CharField(max_length=16)
    order = fields.ForeignKeyField("sidan.Order", related_name="messages", null=True, on_delete=fields.SET_NULL)
    reply = fields.TextField(null=True)
    received_at = fields.DatetimeField()

    class Meta:
        table = "inbound_message"


class IdempotencyRecord(Model):
    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=128, unique=True)  # principal + Idempotency-Key
    request_hash = fields.CharField(max_length=64)
    status = fields.SmallIntField()
    body = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_record"


class DailyCounter(Model):
    """Per-day sequence behind public order numbers (YK20261124-0001)."""

    day = fields.CharField(max_length=8, primary_key=True)
    value = fields.IntField(default=0)

    class Meta:
        table = "daily_counter"


class SpentToken(Model):
    """A refresh token already exchanged (its jti), kept until the token itself expires.

    A copy used again is refused whatever the store remembers (the in-process store after a restart, Redis down)."""

    jti = fields.CharField(max_length=64, primary_key=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "spent_token"


class Media(Model):
    """One piece of evidence, a photo or a voice message, and its bytes in the media store (orders/media_store.py).

    A resident's arrives as a WeChat media id that WeChat forgets in about three days: the row is written pending
    with the message and doubles as its download job (orders/media_fetch.py: due at next_attempt_at, claimed by
    one worker for a lease, retried with backoff), stored once the bytes are kept, failed when they cannot be had.
    A staff member's upload is stored at once and belongs to no order until progress or resolve names it."""

    id = fields.BigIntField(primary_key=True)
    order = fields.ForeignKeyField("sidan.Order", related_name="media", null=True, on_delete=fields.RESTRICT)
    source = fields.CharField(max_length=16, null=True)  # resident | progress | resolve; None: uploaded, unused yet
    kind = fields.CharField(max_length=8)  # image | voice
    status = fields.CharField(max_length=8, default="pending")  # pending | stored | failed
    sha256 = fields.CharField(max_length=64, null=True)
    content_type = fields.CharField(max_length=64, null=True)
    size = fields.IntField(null=True)
    storage_key = fields.CharField(max_length=80, null=True)
    wechat_media_id = fields.CharField(max_length=128, null=True)
    pic_url = fields.TextField(null=True)  # WeChat's PicUrl of a photo: the download when the media id is gone
    uploaded_by = fields.ForeignKeyField("sidan.Staff", related_name="uploads", null=True, on_delete=fields.SET_NULL)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    stored_at = fields.DatetimeField(null=True)

    class Meta:
        table = "media"
        indexes = (("status", "next_attempt_at"), ("order_id", "id"))


class HotspotAlert(Model):
    """A hot spot (热点诉求) the supervisors were told of (orders/hotspot_alerts.py): once, whichever worker saw it
    first, however long it goes on (its later reports join it, see HotspotAlertOrder)."""

    id = fields.IntField(primary_key=True)
    village = fields.CharField(max_length=64)
    terms = fields.JSONField(default=list)  # the words its reports share, when alerted
    reports = fields.SmallIntField()  # how many reports it had when alerted
    first_reported_at = fields.DatetimeField()
    notified = fields.SmallIntField(default=0)  # the supervisors an alert was queued for (0: none reachable)
    alerted_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "hotspot_alert"


class HotspotAlertOrder(Model):
    """An order of an alerted hot spot. An order belongs to one at most (unique): two workers that see the same hot
    spot, or one that sees it again grown, cannot alert twice."""

    id = fields.BigIntField(primary_key=True)
    alert = fields.ForeignKeyField("sidan.HotspotAlert", related_name="orders", on_delete=fields.CASCADE)
    order = fields.OneToOneField("sidan.Order", related_name="hotspot_alert_order", on_delete=fields.CASCADE)

    class Meta:
        table = "hotspot_alert_order"
