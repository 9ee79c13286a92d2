from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('sidan', '0001_initial')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['department_id', 'submitted_at']),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['grid_id', 'submitted_at']),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['state', 'submitted_at']),
        ),
    ]
