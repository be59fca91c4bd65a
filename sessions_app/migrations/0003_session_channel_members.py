"""Session channels name their ElizaOS user as an `external` member (it grants nothing to a
local account of the same name) and hold the session's owner, who reads the conversation."""

from django.db import migrations


def forwards(apps, schema_editor):
    Session = apps.get_model("sessions_app", "Session")
    ChannelMember = apps.get_model("messaging", "ChannelMember")
    for session in Session.objects.select_related("owner").iterator():
        ChannelMember.objects.filter(
            channel_id=session.channel_id, member_type="user", member_id=session.user_id
        ).update(member_type="external")
        username = session.owner.username
        ChannelMember.objects.get_or_create(
            channel_id=session.channel_id,
            member_id=username,
            member_type="api_key" if username.startswith("key:") else "user",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0002_fewer_write_indexes"),
        ("messaging", "0002_member_kinds"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
