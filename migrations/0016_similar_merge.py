# Issue #17 item 3 (合并工单): an order merged into its primary (merged_into, merged_at) and the open orders likely the
# same matter, found after the intake's commit (similar: null until looked for).
from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0015_reference_edits')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='merged_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Order',
            name='merged_into',
            field=fields.ForeignKeyField('sidan.Order', source_field='merged_into_id', null=True, db_constraint=True, to_field='id', related_name='followers', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Order',
            name='similar',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['merged_into_id']),
        ),
    ]
