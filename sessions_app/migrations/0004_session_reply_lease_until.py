from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0003_session_channel_members"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="reply_lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
