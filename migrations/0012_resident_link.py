# Issue #16 part 5, one resident, two doors: the unionid fetched in the background (unionid_lookup), the two rows of
# one person merged and recorded (resident_link, resident.merged_into_id, resident.miniapp_openid), the contact phone.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0011_staff_oa_openid')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ResidentLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('sidan.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='links', on_delete=OnDelete.RESTRICT)),
                ('merged_id', fields.IntField(null=True)),
                ('from_openid', fields.CharField(max_length=64)),
                ('to_openid', fields.CharField(max_length=64)),
                ('via', fields.CharField(max_length=16)),
                ('actor', fields.CharField(max_length=64)),
                ('reason', fields.TextField(unique=False)),
                ('orders_moved', fields.IntField(default=0)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'resident_link', 'app': 'sidan', 'pk_attr': 'id', 'table_description': 'The record of two resident rows made one: who (the door that asked), when, from (the merged row and its'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UnionidLookup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.OneToOneField('sidan.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='unionid_lookup', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharField(default='pending', max_length=8)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('claimed_by', fields.CharField(null=True, max_length=64)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'unionid_lookup', 'app': 'sidan', 'indexes': [Index(fields=['status', 'next_attempt_at'])], 'pk_attr': 'id', 'table_description': "The background fetch of a resident's unionid (cgi-bin/user/info), one row per resident: a job like a Media row"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Resident',
            name='contact_phone',
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name='Resident',
            name='merged_into_id',
            field=fields.IntField(null=True, db_index=True),
        ),
        ops.AddField(
            model_name='Resident',
            name='miniapp_openid',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
