# Issue #18: admins edit departments and grids in the workbench; each edit is recorded (who, when, before, after).
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0014_order_suggestions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ReferenceEdit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=16)),
                ('code', fields.CharField(max_length=32)),
                ('action', fields.CharField(max_length=8)),
                ('changes', fields.JSONField(default=dict)),
                ('staff', fields.ForeignKeyField('sidan.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='reference_edits', on_delete=OnDelete.SET_NULL)),
                ('staff_name', fields.CharField(max_length=64)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'reference_edit', 'app': 'sidan', 'indexes': [Index(fields=['kind', 'code'])], 'pk_attr': 'id', 'table_description': "An admin's edit of a department or a grid in the workbench: who, when, field → [before, after]."},
            bases=['Model'],
        ),
    ]
