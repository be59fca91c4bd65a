"""Leave a working demo behind, idempotently: run it as often as you like.

Each app adds its step to SEED_STEPS as it lands (agents, the `general` channel, an admin key).
Secrets are printed once, when they are made, and stored nowhere in plain text.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create the demo data (admin user, executive agents, channels, API key) if missing."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            self._seed_admin()

    def _seed_admin(self) -> None:
        User = get_user_model()  # noqa: N806
        if User.objects.filter(username="admin").exists():
            self.stdout.write("admin user: exists (password unchanged)")
            return
        password = secrets.token_urlsafe(18)
        User.objects.create_superuser(username="admin", email="", password=password)
        self.stdout.write(f"admin user: created, password {password}  (shown once)")
