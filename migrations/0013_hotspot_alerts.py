# Issue #17 (热点诉求): the hot spots the supervisors were told of, and their orders (one hot spot per order: told once).
from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0012_resident_link')]

    initial = False

    operations = [
        ops.CreateModel(
            name='HotspotAlert',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('village', fields.CharField(max_length=64)),
                ('terms', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reports', fields.SmallIntField()),
                ('first_reported_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('notified', fields.SmallIntField(default=0)),
                ('alerted_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'hotspot_alert', 'app': 'sidan', 'pk_attr': 'id', 'table_description': 'A hot spot (热点诉求) the supervisors were told of (orders/hotspot_alerts.py): once, whichever worker saw it'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HotspotAlertOrder',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('alert', fields.ForeignKeyField('sidan.HotspotAlert', source_field='alert_id', db_constraint=True, to_field='id', related_name='orders', on_delete=OnDelete.CASCADE)),
                ('order', fields.OneToOneField('sidan.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='hotspot_alert_order', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'hotspot_alert_order', 'app': 'sidan', 'pk_attr': 'id', 'table_description': 'An order of an alerted hot spot. An order belongs to one at most (unique): two workers that see the same hot'},
            bases=['Model'],
        ),
    ]
