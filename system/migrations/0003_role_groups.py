"""The spec's four roles as Django groups (system.roles.ROLES, frozen here as of this migration)."""

from django.db import migrations

ROLES = ("admin", "agent_manager", "messaging", "system_monitor")


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def delete_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("system", "0002_apikey"),
    ]

    operations = [migrations.RunPython(create_role_groups, delete_role_groups)]
