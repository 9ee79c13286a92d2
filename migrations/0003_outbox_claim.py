from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0002_order_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Outbox',
            name='claimed_by',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
