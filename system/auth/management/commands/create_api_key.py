"""Make an API key and print it, alone, on the last line of stdout (shown this once).

Run at the shell, by whoever runs the platform: the key keeps the roles it is given (no maker
bounds them). `--user` makes it act for that user; without it, it is a principal of its own."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from system.auth import services
from system.kernel.exceptions import DomainError
from system.kernel.principal import is_service_username
from system.kernel.roles import ROLES


class Command(BaseCommand):
    help = "Create an API key. The key is printed once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", action="append", required=True, choices=ROLES, dest="roles")
        parser.add_argument(
            "--user",
            default=None,
            help="the key acts for this user (created without a usable password if missing); "
            "without it the key is a principal of its own (a service user `key:<prefix>`)",
        )
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        expires_days = options["expires_days"]
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        with transaction.atomic():
            owner = None
            if options["user"] is not None:
                if is_service_username(options["user"]):
                    raise CommandError("--user names a person, not another key's service user")
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
            f"API key '{api_key.name}' (prefix {api_key.prefix}, owner {api_key.owner}, "
            f"roles {api_key.roles}) created; it is shown once:"
        )
        self.stdout.write(key)
