# Issue #16: staff reached through the official account: its openid, bound by "绑定 <邀请码>" sent to it.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('sidan', '0010_urgent_unnotified')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Staff',
            name='oa_openid',
            field=fields.CharField(null=True, unique=True, max_length=64),
        ),
    ]
