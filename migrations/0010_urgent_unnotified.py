# Issue #16: an urgent report that reached nobody is flagged for the first staff member who logs in (a database
# default: the orders already there are not).
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0009_media')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='urgent_unnotified',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['urgent_unnotified']),
        ),
    ]
