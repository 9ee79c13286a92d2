# Issue #18: the router's top three suggestions kept with each order (the workbench's dispatch queue shows them).
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0013_hotspot_alerts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='suggestions',
            field=fields.JSONField(null=True),
        ),
    ]
