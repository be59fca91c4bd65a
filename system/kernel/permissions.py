"""The one DRF permission class: authenticate, count the request, then authorise its action.

Every API view names the action it performs (`policy_action`, or `policy_actions` keyed by
viewset action or HTTP method); the policy in config/routing_rules.yaml says who may perform
it. An action the policy does not know is denied.
"""

import hashlib
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from system.kernel.policy import get_policy
from system.kernel.principal import client_ip, principal_from_request
from system.kernel.ratelimit import RateLimitExceeded, rate_limit_hit

if TYPE_CHECKING:  # rest_framework.views imports this module through its settings
    from rest_framework.views import APIView


def policy_action_of(view: "APIView", request: Request) -> str | None:
    """The view's `policy_action`, or from `policy_actions` the entry for
    "<viewset action or method>:<method>" (one route, several methods), else "<action>"."""
    single = getattr(view, "policy_action", None)
    if single:
        return single
    mapping: dict[str, str] = getattr(view, "policy_actions", {})
    method = request.method.lower()
    if method == "head":
        method = "get"
    key = getattr(view, "action", None) or method
    return mapping.get(f"{key}:{method}") or mapping.get(key)


# Set on a request whose rate-limit round trip also counted it for the status API
# (system.ops.middleware then only adds a 5xx).
COUNTED = "_371os_counted"


def count_request(request: Request, bucket: str, limit: int) -> None:
    """Count the request against `bucket` and in the status API's per-minute total, in one
    round trip; the state is kept for the response headers."""
    django_request = request._request
    try:
        state = rate_limit_hit(
            bucket, limit, count_request=not django_request.__dict__.get(COUNTED)
        )
    except RateLimitExceeded as exc:
        django_request.rate_limit = exc.rate_limit
        django_request.__dict__[COUNTED] = True
        raise
    django_request.rate_limit = state
    if state is not None:
        django_request.__dict__[COUNTED] = True


def failed_authentication_bucket(ip: str) -> tuple[str, int]:
    """The bucket and limit a failed authentication from `ip` counts against, over REST and
    WebSocket alike: the address's anonymous one."""
    return f"ip:{ip}", get_policy().anonymous_limit


def count_failed_authentication(request: Request) -> None:
    """Bad credentials count against the caller's address, so guessing is rate limited."""
    count_request(request, *failed_authentication_bucket(client_ip(request)))


def count_login_attempt(request: Request | HttpRequest, *, username: str) -> None:
    """A password attempt (the token endpoint, the admin login), counted per client address
    and per username. Refused while Redis is unreachable (fail closed): password guessing is
    never unmetered. Raises RateLimitExceeded, with Retry-After."""
    ip = client_ip(request)
    rate_limit_hit(f"login:ip:{ip}", settings.LOGIN_RATE_PER_IP, fail_closed=True)
    # Hashed: the bucket name neither stores the username nor depends on its characters.
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    rate_limit_hit(f"login:user:{name}", settings.LOGIN_RATE_PER_USERNAME, fail_closed=True)


class PolicyPermission(BasePermission):
    def has_permission(self, request: Request, view: "APIView") -> bool:
        policy = get_policy()
        action = policy_action_of(view, request)
        ip = client_ip(request)
        authenticated = request.user.is_authenticated
        principal = principal_from_request(request) if authenticated else None
        roles = principal.roles if principal is not None else frozenset()
        if action in policy.action_limits:
            count_request(request, f"ip:{ip}:{action}", policy.action_limits[action])
        elif principal is not None:
            count_request(request, principal.id, policy.limit_for(roles))
        else:
            count_request(request, f"ip:{ip}", policy.anonymous_limit)

        if not hasattr(view, request.method.lower()):
            return True  # no handler: the view answers 405, which reveals nothing
        rule = policy.actions.get(action) if action else None
        if rule is not None and rule.public:
            return True
        if not authenticated:
            raise exceptions.NotAuthenticated()
        if rule is not None and roles & rule.roles:
            return True
        raise exceptions.PermissionDenied(
            {
                "action": action or "undeclared",
                "required_roles": sorted(rule.roles) if rule else [],
            }
        )
