"""Make an API key and print it, alone, on the last line of stdout (shown this once)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from system.auth import services
from system.kernel.exceptions import DomainError
from system.kernel.roles import ROLES


class Command(BaseCommand):
    help = "Create an API key. The key is printed once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", action="append", required=True, choices=ROLES, dest="roles")
        parser.add_argument(
            "--user",
            default="admin",
            help="owner's username; created without a usable password if missing (default: admin)",
        )
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        expires_days = options["expires_days"]
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        with transaction.atomic():
            owner, created = get_user_model().objects.get_or_create(username=options["user"])
            if created:
                owner.set_unusable_password()
                owner.save(update_fields=["password"])
            try:
                api_key, key = services.api_key_create(
                    name=options["name"], owner=owner, roles=options["roles"], expires_at=expires_at
                )
            except DomainError as exc:
                raise CommandError(f"{exc.message} {exc.details}") from None
        self.stderr.write(
            f"API key '{api_key.name}' (prefix {api_key.prefix}, owner {owner.get_username()}, "
            f"roles {api_key.roles}) created; it is shown once:"
        )
        self.stdout.write(key)
