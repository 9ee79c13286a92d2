from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0007_township')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PersonalDataAccess',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('sidan.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name='personal_data_accesses', on_delete=OnDelete.RESTRICT)),
                ('order', fields.ForeignKeyField('sidan.Order', source_field='order_id', null=True, db_constraint=True, to_field='id', related_name='personal_data_accesses', on_delete=OnDelete.RESTRICT)),
                ('what', fields.CharField(max_length=16)),
                ('detail', fields.CharField(null=True, max_length=64)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'personal_data_access', 'app': 'sidan', 'pk_attr': 'id', 'table_description': "Who read an order's personal data unmasked, and when (个人信息保护法)."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Order',
            name='purged_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
