"""The authentication API: JWT pairs and API keys."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from system.auth import services
from system.auth.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListSerializer,
    ApiKeySerializer,
    TokenObtainInputSerializer,
    TokenPairSerializer,
    TokenRefreshInputSerializer,
    TokenRevokedSerializer,
)
from system.kernel.pagination import PagePagination
from system.kernel.permissions import count_login_attempt
from system.kernel.validation import validated
from system.models import ApiKey


# The token endpoints take their credentials in the body: no header authentication runs, so a
# stale Authorization header cannot fail a login, a refresh or a revocation. (A comment, not a
# docstring: drf-spectacular would publish it as each endpoint's description.)
class _TokenView(APIView):
    authentication_classes: list = []


class TokenObtainView(_TokenView):
    policy_action = "auth.token.obtain"

    @extend_schema(
        request=TokenObtainInputSerializer,
        responses={200: TokenPairSerializer},
        description="Exchange a username and password for an access token (send it as "
        "`Authorization: Bearer <access>`) and a refresh token. Attempts are counted per "
        "address and per username: past the limit, 429 with Retry-After.",
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenObtainInputSerializer, request.data)
        count_login_attempt(request, username=data["username"])  # 429 past the limits
        pair = services.token_obtain(
            username=data["username"], password=data["password"], request=request._request
        )
        return Response(pair)


class TokenRefreshView(_TokenView):
    policy_action = "auth.token.refresh"

    @extend_schema(
        request=TokenRefreshInputSerializer,
        responses={200: TokenPairSerializer},
        description="A new pair for a refresh token; the old refresh token is revoked "
        "(rotation), so each one works once.",
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenRefreshInputSerializer, request.data)
        return Response(services.token_refresh(refresh=data["refresh"]))


class TokenRevokeView(_TokenView):
    policy_action = "auth.token.revoke"

    @extend_schema(
        request=TokenRefreshInputSerializer,
        responses={200: TokenRevokedSerializer},
        description="Log out: the refresh token can no longer be used.",
    )
    def post(self, request: Request) -> Response:
        data = validated(TokenRefreshInputSerializer, request.data)
        services.token_revoke(refresh=data["refresh"])
        return Response({"revoked": True})


class ApiKeyListCreateView(APIView):
    policy_actions = {"get": "auth.api_keys.list", "post": "auth.api_keys.create"}

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="1-based page number"),
            OpenApiParameter("limit", int, description="page size, at most 100"),
        ],
        responses={200: ApiKeyListSerializer},
        description="Every API key, newest first, revoked ones included; never a secret.",
    )
    def get(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="api_keys")
        rows = pagination.slice(
            ApiKey.objects.select_related("owner", "created_by").order_by("-created_at", "-id")
        )
        return pagination.response(ApiKeySerializer(rows, many=True).data)

    @extend_schema(
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedSerializer},
        description="A new key with the given roles, acting for `owner` or as a principal of "
        "its own. The answer carries the full key once: it is stored only as a hash.",
    )
    def post(self, request: Request) -> Response:
        data = validated(ApiKeyCreateInputSerializer, request.data)
        owner = data.get("owner")
        api_key, key = services.api_key_create(
            name=data["name"],
            owner=services.api_key_owner_get(username=owner) if owner else None,
            # The caller's user: a person, or a standalone key's service user, whose roles
            # are that key's (a key made by a key answers to both makers).
            created_by=request.user,
            roles=data["roles"],
            expires_at=data.get("expires_at"),
        )
        body = ApiKeySerializer(api_key).data
        return Response({**body, "key": key}, status=201)


class ApiKeyRevokeView(APIView):
    policy_action = "auth.api_keys.revoke"

    @extend_schema(
        request=None,
        responses={200: ApiKeySerializer},
        description="Revoke a key: every request and WebSocket using it is refused from now on.",
    )
    def post(self, request: Request, key_id: int) -> Response:
        api_key = get_object_or_404(ApiKey.objects.select_related("owner"), pk=key_id)
        return Response(ApiKeySerializer(services.api_key_revoke(api_key=api_key)).data)
