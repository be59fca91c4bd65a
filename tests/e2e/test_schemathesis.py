"""The OpenAPI schema as a contract: Schemathesis generates requests for every operation the
schema documents, valid (positive) and invalid (negative), sends them to a live stack with the
demo admin's API key in the bare `X-API-KEY` header, and checks the answers.

- `test_every_answer_keeps_the_schema_contract`: no server error, only documented statuses,
  bodies and headers that match the schema for their status, invalid input refused, and each
  authenticated operation refusing a request without the key or with a wrong one.
- `test_every_schema_valid_request_is_accepted`: no request the schema calls valid is refused
  as invalid (400/422), i.e. the request schemas are as strict as the server.

The stack is this module's own, started as `make run` starts it but with the rate limits
raised: Schemathesis sends thousands of requests, many without valid credentials, and the
per-address limit for those (60 a minute) would answer its authentication probes 429
(documented, but not the 401 the probe checks for).

A bounded number of examples per operation and mode, derandomized, keeps each test to a
couple of minutes and reproducible. Every operation runs even when an earlier one fails; a
failure lists each broken operation with the request (as a curl command) that broke it.
(Schemathesis's lazy pytest fixture does not run under pytest 9, so each test walks the
operations through its Python API.)
"""

import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from django.conf import settings as django_settings
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.e2e.conftest import LiveStack, run_stack

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

EXAMPLES_PER_OPERATION = 20
GENEROUS_LIMIT = 1_000_000
REVOKE_KEY_PATH = "/api/v1/auth/api-keys/{key_id}/revoke"
API_KEYS_PATH = "/api/v1/auth/api-keys"
BOTH_MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture(scope="module")
def contract_stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveStack]:
    tmp_path = tmp_path_factory.mktemp("contract")
    rules = yaml.safe_load(Path(django_settings.ROUTING_RULES_PATH).read_text())
    limits = rules["rate_limits"]
    limits["per_role"] = dict.fromkeys(limits["per_role"], GENEROUS_LIMIT)
    limits["no_role"] = limits["anonymous"] = GENEROUS_LIMIT
    limits["per_action"] = dict.fromkeys(limits["per_action"], GENEROUS_LIMIT)
    rules_path = tmp_path / "routing_rules.yaml"
    rules_path.write_text(yaml.safe_dump(rules))
    with (
        django_db_blocker.unblock(),
        run_stack(
            tmp_path,
            ROUTING_RULES_PATH=str(rules_path),
            LOGIN_RATE_PER_IP=str(GENEROUS_LIMIT),
            LOGIN_RATE_PER_USERNAME=str(GENEROUS_LIMIT),
        ) as stack,
    ):
        yield stack


@pytest.fixture
def admin_key(contract_stack, transactional_db) -> str:
    """The demo `make run` seeds (running executives, a channel: the lists have real rows) and
    the key it prints once for its admin."""
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return re.search(r"admin API key: created, (371os_\S+)", out.getvalue()).group(1)


@pytest.fixture
def operations(contract_stack, admin_key) -> list:
    """Every documented operation, authenticated with `admin_key` where Swagger's Authorize
    puts a pasted key (naming the scheme lets the authentication check probe each operation
    without it and with a wrong one). Revoking keys by guessed ids may hit the admin key,
    after which every answer would be a (documented) 401: that operation comes last."""
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"X-API-KEY": {"api_key": admin_key}}}}
    )
    schema = schemathesis.openapi.from_url(
        f"{contract_stack.api_url}/api/schema/?format=json", config=config
    )
    schema.config.update(base_url=contract_stack.api_url)
    ordered = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda operation: operation.path == REVOKE_KEY_PATH,
    )
    assert len(ordered) > 50
    assert ordered[-1].path == REVOKE_KEY_PATH
    return ordered


# Refusals that are correct behaviour no schema can express, by operation and field: whether
# an API key's `owner` names an active user, or an explicit `agent:<ref>` member names an
# agent, is the database's to say (any string is a valid name); whether `expires_at` is in
# the future depends on when the request arrives.
_UNKNOWN_AGENT = {"members": "Unknown agent: "}
_WEBHOOK_URL = {"url": ""}
REFUSALS_NO_SCHEMA_EXPRESSES = {
    ("POST", API_KEYS_PATH): {
        "owner": "No active user named",
        "expires_at": "Must be in the future.",
    },
    ("POST", "/api/v1/channels"): _UNKNOWN_AGENT,
    # Whether a webhook URL may receive deliveries is for DNS (public addresses only) and the
    # server's WEBHOOK_ALLOW_HTTP / WEBHOOK_ALLOW_PRIVATE to say: any refusal of the url.
    ("POST", "/api/v1/webhooks"): _WEBHOOK_URL,
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): _WEBHOOK_URL,
    ("POST", "/api/v1/channels/{channel_id}/members"): _UNKNOWN_AGENT,
}


def _refused_as_no_schema_can_say(response, case) -> bool:
    """A 400 of one of those operations whose every detail is one of its refusals."""
    refusals = REFUSALS_NO_SCHEMA_EXPRESSES.get(
        (case.operation.method.upper(), case.operation.path)
    )
    if refusals is None or response.status_code != 400:
        return False
    details = response.json().get("error", {}).get("details") or {}
    return bool(details) and all(
        field in refusals and all(m.startswith(refusals[field]) for m in messages)
        for field, messages in details.items()
    )


def schema_valid_request_accepted(ctx, response, case):
    """Schemathesis's positive_data_acceptance, except the refusals above."""
    if _refused_as_no_schema_can_say(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


def _failures(operations: list, modes, **checks) -> list[str]:
    """Run each operation in each mode; the failures, each naming the request that broke it."""
    found = []
    for operation in operations:
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case) -> None:
                case.call_and_validate(**checks)

            try:
                check()
            except (AssertionError, BaseExceptionGroup) as exc:
                found.append(f"{mode.value} {operation.method.upper()} {operation.path}:\n{exc}")
    return found


def _key_works(stack: LiveStack, key: str) -> bool:
    response = httpx.get(f"{stack.api_url}/api/v1/agents", headers={"X-API-KEY": key})
    return response.status_code == 200


def _report(failures: list[str]) -> str:
    return f"{len(failures)} broken:\n\n" + "\n\n".join(failures)


def test_every_answer_keeps_the_schema_contract(contract_stack, admin_key, operations):
    checks = {"excluded_checks": [positive_data_acceptance]}

    failures = _failures(operations[:-1], BOTH_MODES, **checks)
    assert _key_works(contract_stack, admin_key)
    failures += _failures(operations[-1:], BOTH_MODES, **checks)

    assert not failures, _report(failures)


def test_every_schema_valid_request_is_accepted(contract_stack, admin_key, operations):
    checks = {"checks": [schema_valid_request_accepted]}

    failures = _failures(operations[:-1], [GenerationMode.POSITIVE], **checks)
    assert _key_works(contract_stack, admin_key)
    failures += _failures(operations[-1:], [GenerationMode.POSITIVE], **checks)

    assert not failures, _report(failures)
