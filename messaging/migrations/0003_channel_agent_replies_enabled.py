from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_member_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="agent_replies_enabled",
            field=models.BooleanField(default=False),
        ),
    ]
