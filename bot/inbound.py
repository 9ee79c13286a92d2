"""A WeChat message reduced to what the bot needs: its dedup key, its sender, what kind of message it is."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from wechatpy.messages import BaseMessage

PASSIVE_EVENTS = {"location", "templatesendjobfinish", "masssendjobfinish", "subscribe_msg_popup_event",
                  "subscribe_msg_change_event", "subscribe_msg_sent_event"}


@dataclass(frozen=True)
class Inbound:
    """A WeChat message reduced to what the dialog needs."""

    key: str | None  # dedup key; None for passive events (nothing to do, nothing to record)
    openid: str
    kind: str  # text | voice | image | location | event | other
    msg_type: str  # for InboundMessage.msg_type
    text: str | None = None
    media_id: str | None = None
    pic_url: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    label: str | None = None
    event: str | None = None
    event_key: str | None = None


def inbound_from(message: BaseMessage, fields: dict[str, Any]) -> Inbound:
    openid = message.source
    msg_type = str(fields.get("MsgType", "")).lower()
    if msg_type == "event":
        event = str(fields.get("Event", "")).lower()
        if event in PASSIVE_EVENTS:
            return Inbound(None, openid, "event", "ev_passive", event=event)
        event_key = fields.get("EventKey")
        # Events have no MsgId: WeChat's advice is sender + CreateTime; the event and its key tell two different
        # menu clicks in the same second apart (a double click on the same item is one click).
        which = hashlib.sha1(f"{event}|{event_key}".encode()).hexdigest()[:12]
        key = f"evt:{openid}:{fields['CreateTime']}:{which}"
        return Inbound(key, openid, "event", f"ev_{event}"[:16], event=event,
                       event_key=event_key.strip() if isinstance(event_key, str) else None)
    key = f"msg:{openid}:{fields['MsgId']}"  # the sender too: one resident can never replay into another's
    if msg_type == "text":
        return Inbound(key, openid, "text", "text", text=message.content or "")
    if msg_type == "voice":
        return Inbound(key, openid, "voice", "voice", text=(fields.get("Recognition") or "").strip() or None,
                       media_id=message.media_id or None)
    if msg_type == "image":
        return Inbound(key, openid, "image", "image", media_id=message.media_id, pic_url=message.image)
    if msg_type == "location":
        try:
            latitude, longitude = float(fields["Location_X"]), float(fields["Location_Y"])
        except (KeyError, TypeError, ValueError):
            return Inbound(key, openid, "other", "location")
        label = fields.get("Label") if isinstance(fields.get("Label"), str) else None
        return Inbound(key, openid, "location", "location", latitude=latitude, longitude=longitude, label=label)
    return Inbound(key, openid, "other", msg_type[:16] or "unknown")
