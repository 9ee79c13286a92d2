import json
from datetime import datetime, timezone

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


async def keep_earlier_photos(apps, schema_editor) -> None:
    """The photos orders held before this table (Order.photos: [{media_id, url, at}]) become pending downloads like
    new ones: WeChat may have forgotten the media id by now, but the PicUrl is tried as well."""
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    having_photos = "jsonb_array_length(photos) > 0" if postgres else "photos NOT IN ('[]', '')"
    marks = ", ".join(f"${n}" for n in range(1, 6)) if postgres else "?, ?, ?, ?, ?"
    insert = ("INSERT INTO media (order_id, wechat_media_id, pic_url, next_attempt_at, created_at, source, kind, status, "
              f"attempts) VALUES ({marks}, 'resident', 'image', 'pending', 0)")

    def moment(value: datetime) -> datetime | str:
        value = value.astimezone(timezone.utc)
        return value if postgres else value.isoformat(sep=" ")  # SQLite keeps UTC text, as Tortoise writes it

    now = datetime.now(timezone.utc)
    rows = await conn.execute_query_dict(f"SELECT id, photos FROM orders WHERE photos IS NOT NULL AND {having_photos}")
    for order in rows:
        photos = json.loads(order["photos"]) if isinstance(order["photos"], str) else order["photos"]
        for photo in photos if isinstance(photos, list) else []:
            if not isinstance(photo, dict) or not (photo.get("media_id") or photo.get("url")):
                continue
            try:
                sent_at = datetime.fromisoformat(str(photo.get("at")))
            except ValueError:
                sent_at = now
            values = [order["id"], str(photo.get("media_id") or "")[:128] or None, photo.get("url") or None, moment(now),
                      moment(sent_at if sent_at.tzinfo else now)]
            await conn.execute_query(insert, values)


class Migration(migrations.Migration):
    dependencies = [('sidan', '0008_privacy')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Media',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('order', fields.ForeignKeyField('sidan.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='media', on_delete=OnDelete.RESTRICT)),
                ('source', fields.CharField(null=True, max_length=16)),
                ('kind', fields.CharField(max_length=8)),
                ('status', fields.CharField(default='pending', max_length=8)),
                ('sha256', fields.CharField(null=True, max_length=64)),
                ('content_type', fields.CharField(null=True, max_length=64)),
                ('size', fields.IntField(null=True)),
                ('storage_key', fields.CharField(null=True, max_length=80)),
                ('wechat_media_id', fields.CharField(null=True, max_length=128)),
                ('pic_url', fields.TextField(null=True, unique=False)),
                ('uploaded_by', fields.ForeignKeyField('sidan.Staff', source_field='uploaded_by_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.SET_NULL)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.CharField(null=True, max_length=64)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('stored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'media', 'app': 'sidan', 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['order_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One piece of evidence, a photo or a voice message, and its bytes in the media store (orders/media_store.py).'},
            bases=['Model'],
        ),
        ops.RunPython(keep_earlier_photos, ops.RunPython.noop),
    ]
