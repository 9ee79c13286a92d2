# Issue #16: the township as data (sidan township apply): its identity, duty roster, department phones,
# grid radius and active flag, staff phones and whether the township file lists them. The two NOT NULL columns have a
# database default, so the grids and staff already there get a value (PostgreSQL and SQLite refuse them otherwise).
from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0006_spent_token')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DutyShift',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('sidan.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='duty_shifts', on_delete=OnDelete.CASCADE)),
                ('days', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('starts', fields.CharField(max_length=5)),
                ('ends', fields.CharField(max_length=5)),
                ('position', fields.SmallIntField(default=0)),
            ],
            options={'table': 'duty_shift', 'app': 'sidan', 'pk_attr': 'id', 'table_description': 'The duty roster for urgent alerts: who is on duty, which weekdays, which local hours.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Township',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=64)),
                ('order_prefix', fields.CharField(max_length=6)),
                ('duty_phone', fields.CharField(null=True, max_length=32)),
                ('villages', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'township', 'app': 'sidan', 'pk_attr': 'id', 'table_description': 'The township this deployment serves (one row), as `sidan township apply` last wrote it.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Department',
            name='phone',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='Grid',
            name='active',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='Grid',
            name='radius_m',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='Staff',
            name='from_file',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Staff',
            name='phone',
            field=fields.CharField(null=True, max_length=32),
        ),
    ]
