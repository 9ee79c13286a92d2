from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0004_rating_at_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SpentToken',
            fields=[
                ('jti', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'spent_token', 'app': 'sidan', 'pk_attr': 'jti', 'table_description': 'A refresh token already exchanged (its jti), kept until the token itself expires.'},
            bases=['Model'],
        ),
    ]
