"""The timeout policy's arithmetic, on a frozen clock."""

from datetime import UTC, datetime, timedelta

import pytest

from sessions_app import timeouts
from sessions_app.timeouts import InvalidTimeoutConfig, TimeoutConfig

pytestmark = pytest.mark.embedded

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def config(**overrides) -> TimeoutConfig:
    base = {
        "timeout_minutes": 30,
        "auto_renew": True,
        "max_duration_minutes": 120,
        "warning_threshold_minutes": 5,
    }
    return TimeoutConfig(**{**base, **overrides})


def test_auto_renew_measures_from_the_last_activity():
    expires = timeouts.expires_at(
        created_at=T0,
        last_activity=T0 + timedelta(minutes=20),
        config=config(),
        now=T0 + timedelta(minutes=20),
    )

    assert expires == T0 + timedelta(minutes=50)


def test_without_auto_renew_expiry_is_fixed_from_creation():
    expires = timeouts.expires_at(
        created_at=T0,
        last_activity=T0 + timedelta(minutes=20),
        config=config(auto_renew=False),
        now=T0 + timedelta(minutes=20),
    )

    assert expires == T0 + timedelta(minutes=30)


def test_expiry_never_passes_the_max_duration():
    now = T0 + timedelta(minutes=100)

    expires = timeouts.expires_at(created_at=T0, last_activity=now, config=config(), now=now)

    assert expires == T0 + timedelta(minutes=120)


def test_renewal_needs_room_for_a_whole_timeout_before_the_max_duration():
    assert timeouts.can_renew(created_at=T0, config=config(), now=T0 + timedelta(minutes=90))
    assert not timeouts.can_renew(created_at=T0, config=config(), now=T0 + timedelta(minutes=91))


def test_near_expiration_is_within_the_warning_threshold_only():
    expires = T0 + timedelta(minutes=30)

    assert not timeouts.is_near_expiration(
        expires=expires, config=config(), now=T0 + timedelta(minutes=24)
    )
    assert timeouts.is_near_expiration(
        expires=expires, config=config(), now=T0 + timedelta(minutes=26)
    )
    assert not timeouts.is_near_expiration(expires=expires, config=config(), now=expires)


def test_clamp_merges_over_defaults_and_clamps_like_elizaos(settings):
    settings.SESSION_MAX_TIMEOUT_MINUTES = 1440
    settings.SESSION_MIN_TIMEOUT_MINUTES = 5

    clamped = timeouts.clamp(
        {"timeoutMinutes": 1, "maxDurationMinutes": 99999, "warningThresholdMinutes": 0}
    )

    assert clamped.timeout_minutes == 5
    assert clamped.max_duration_minutes == 2880
    assert clamped.warning_threshold_minutes == 1
    assert clamped.auto_renew is True


def test_clamp_keeps_max_duration_at_least_the_timeout():
    assert (
        timeouts.clamp({"timeoutMinutes": 600, "maxDurationMinutes": 10}).max_duration_minutes
        == 600
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"timeoutMinutes": 4}, "timeoutMinutes"),
        ({"timeoutMinutes": 1441}, "timeoutMinutes"),
        ({"timeoutMinutes": "30"}, "timeoutMinutes"),
        ({"autoRenew": "yes"}, "autoRenew"),
        ({"maxDurationMinutes": 10}, "maxDurationMinutes"),
        ({"warningThresholdMinutes": 0}, "warningThresholdMinutes"),
        ({"colour": 1}, "colour"),
    ],
)
def test_validate_rejects_out_of_range_values_naming_field_and_range(raw, field):
    with pytest.raises(InvalidTimeoutConfig) as error:
        timeouts.validate(raw, base=timeouts.defaults())

    assert field in error.value.details


def test_validate_names_the_allowed_range_of_the_timeout():
    with pytest.raises(InvalidTimeoutConfig) as error:
        timeouts.validate({"timeoutMinutes": 2}, base=timeouts.defaults())

    assert error.value.details["allowed"]["timeoutMinutes"] == [5, 1440]


def test_validate_merges_over_the_given_base():
    merged = timeouts.validate({"autoRenew": False}, base=config())

    assert merged == config(auto_renew=False)
