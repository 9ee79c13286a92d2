from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0003_outbox_claim')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Rating',
            index=Index(fields=['at']),
        ),
    ]
