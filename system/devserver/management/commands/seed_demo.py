"""Leave a working demo behind, idempotently: run it as often as you like.

Each app adds its step to SEED_STEPS as it lands (agents, the `general` channel, an admin key).
Secrets are printed once, when they are made, and stored nowhere in plain text.
"""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import BaseCommand
from django.db import transaction

from agents.models import Agent
from agents.roster import DEMO_AGENT_NAMES
from agents.services import agent_create, agent_start, agent_update
from messaging.models import Channel
from messaging.services import channel_create
from system.auth import services
from system.kernel.roles import ADMIN
from system.models import ApiKey

DEMO_KEY_NAME = "demo-admin"
# Alerts need an address: under `make run` (console email) they print in the stack's log.
DEMO_ADMIN_EMAIL = "admin@localhost"


class Command(BaseCommand):
    help = "Create the demo data (admin user, executive agents, channels, API key) if missing."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            admin = self._seed_admin()
            self._seed_admin_key(admin)
            self._seed_executives(admin)
            self._seed_general_channel(admin)

    def _seed_admin(self) -> AbstractBaseUser:
        User = get_user_model()  # noqa: N806
        admin = User.objects.filter(username="admin").first()
        if admin is not None:
            self.stdout.write("admin user: exists (password unchanged)")
            return admin
        password = secrets.token_urlsafe(18)
        admin = User.objects.create_superuser(
            username="admin", email=DEMO_ADMIN_EMAIL, password=password
        )
        self.stdout.write(f"admin user: created, password {password}  (shown once)")
        return admin

    def _seed_admin_key(self, admin: AbstractBaseUser) -> None:
        existing = ApiKey.objects.filter(name=DEMO_KEY_NAME, owner=admin, revoked_at__isnull=True)
        if existing.exists():
            self.stdout.write(f"admin API key: exists (prefix {existing.first().prefix})")
            return
        _, key = services.api_key_create(
            name=DEMO_KEY_NAME, owner=admin, created_by=admin, roles=[ADMIN]
        )
        self.stdout.write(f"admin API key: created, {key}  (shown once)")

    def _seed_executives(self, admin: AbstractBaseUser) -> None:
        created, renamed, started = [], [], []
        for agent_type, name in DEMO_AGENT_NAMES.items():
            agent = self._executive(agent_type, name)
            if agent is None:
                agent = agent_create(name=name, type=agent_type, actor=admin)
                created.append(name)
            elif agent.name != name:
                agent = agent_update(agent=agent, data={"name": name})
                renamed.append(name)
            if agent.status != Agent.Status.RUNNING:
                agent_start(agent=agent)
                started.append(name)
        self.stdout.write(
            f"executive agents: {len(DEMO_AGENT_NAMES)} present "
            f"({len(created)} created, {len(renamed)} renamed, {len(started)} started)"
        )

    @staticmethod
    def _executive(agent_type: str, name: str) -> Agent | None:
        """The demo's agent of this type: by its spec name, else by the name earlier demos
        gave it (the type itself), which the caller then renames."""
        return (
            Agent.objects.filter(name=name).first()
            or Agent.objects.filter(name=agent_type, type=agent_type).first()
        )

    def _seed_general_channel(self, admin: AbstractBaseUser) -> None:
        """A public `general` channel where the CEO answers, to try messaging at once."""
        if Channel.objects.filter(name="general", type=Channel.Type.PUBLIC).exists():
            self.stdout.write("general channel: exists")
            return
        channel = channel_create(
            name="general", type="public", members=[DEMO_AGENT_NAMES["ceo_mimi"]], actor=admin
        )
        self.stdout.write(f"general channel: created ({channel.channel_id})")
