"""/api/v1/webhooks: the caller's webhook endpoints (an admin's: everyone's), their secret
rotation, a test event, and their delivery log with retry. Others' endpoints are 404.

Each action looks the endpoint up before it reads the body, so a caller who may not see it
gets 404 whatever it sends."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from system.kernel.pagination import PAGE_PARAMETERS, PagePagination
from system.kernel.principal import principal_from_request
from system.kernel.validation import validated
from system.models import WebhookEndpoint
from system.notify import webhooks
from system.notify.webhook_serializers import (
    DELIVERY_MAX_LIMIT,
    DeliveryQuerySerializer,
    WebhookCreatedSerializer,
    WebhookCreateInputSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliveryPageSerializer,
    WebhookDeliverySerializer,
    WebhookListSerializer,
    WebhookSerializer,
    WebhookUpdateInputSerializer,
)

_ERROR = {"$ref": "#/components/schemas/Error"}
_NOT_FOUND = OpenApiResponse(_ERROR, "Not found, or not the caller's: `webhook_not_found`.")
_DELIVERY_NOT_FOUND = OpenApiResponse(
    _ERROR, "Not found, or not the caller's: `webhook_not_found`, `delivery_not_found`."
)
_INVALID = OpenApiResponse(
    _ERROR,
    "Invalid input: `validation_error` (unknown event types list the valid ones in "
    "`details.valid_event_types`), `invalid_webhook_url` (not https, or not a public address).",
)
_LIMIT = OpenApiResponse(
    _ERROR, "`webhook_limit_reached`: the owner has WEBHOOK_MAX_ENDPOINTS_PER_OWNER endpoints."
)
_SCHEDULED = OpenApiResponse(
    _ERROR, "`delivery_already_scheduled`: the delivery is pending (it will be sent)."
)
_SHOWN_ONCE = "The answer carries the signing secret: it is shown this once, never again."


class WebhookViewSet(viewsets.ViewSet):
    """Webhook endpoints: create, list, read, change, delete, rotate the secret, test, and
    read or retry their deliveries."""

    lookup_field = "webhook_id"
    lookup_value_regex = "[^/]+"
    policy_actions = {
        "list": "webhooks.list",
        "create": "webhooks.create",
        "retrieve": "webhooks.read",
        "partial_update": "webhooks.update",
        "destroy": "webhooks.delete",
        "rotate_secret": "webhooks.rotate_secret",
        "send_test": "webhooks.test",
        "deliveries": "webhooks.deliveries.read",
        "delivery": "webhooks.deliveries.read",
        "delivery_retry": "webhooks.deliveries.retry",
    }

    def _endpoint(self, request: Request, webhook_id: Any) -> WebhookEndpoint:
        return webhooks.webhook_get(
            principal=principal_from_request(request), webhook_id=webhook_id
        )

    @extend_schema(
        summary="List the caller's webhook endpoints",
        description="The caller's endpoints, newest first (an admin's list holds everyone's). "
        "Never a secret.",
        parameters=PAGE_PARAMETERS,
        responses={200: extend_schema_serializer(many=False)(WebhookListSerializer)},
    )
    def list(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="webhooks")
        rows = pagination.slice(
            webhooks.webhooks_visible(principal=principal_from_request(request))
        )
        return pagination.response(WebhookSerializer(rows, many=True).data)

    @extend_schema(
        summary="Create a webhook endpoint (the secret is shown once)",
        description="An endpoint that receives, signed (Standard Webhooks), every event of "
        "`event_types` the caller may see and that matches `filter`. The URL must be https "
        "and resolve to public addresses only. " + _SHOWN_ONCE,
        request=WebhookCreateInputSerializer,
        responses={201: WebhookCreatedSerializer, 400: _INVALID, 422: _LIMIT},
    )
    def create(self, request: Request) -> Response:
        data = validated(WebhookCreateInputSerializer, request.data)
        endpoint, _secret = webhooks.webhook_create(
            principal=principal_from_request(request), **data
        )
        return Response(WebhookCreatedSerializer(endpoint).data, status=201)

    @extend_schema(
        summary="Get a webhook endpoint",
        description="One endpoint, without its secret.",
        responses={200: WebhookSerializer, 404: _NOT_FOUND},
    )
    def retrieve(self, request: Request, webhook_id: str) -> Response:
        return Response(WebhookSerializer(self._endpoint(request, webhook_id)).data)

    @extend_schema(
        summary="Change a webhook endpoint",
        description="Change what is given: the URL (checked again), event types, filter, "
        "description, `enabled`. Re-enabling clears `disabled_reason` and `failing_since`.",
        request=WebhookUpdateInputSerializer,
        responses={200: WebhookSerializer, 400: _INVALID, 404: _NOT_FOUND},
    )
    def partial_update(self, request: Request, webhook_id: str) -> Response:
        endpoint = self._endpoint(request, webhook_id)
        data = validated(WebhookUpdateInputSerializer, request.data)
        endpoint = webhooks.webhook_update(endpoint=endpoint, **data)
        return Response(WebhookSerializer(endpoint).data)

    @extend_schema(
        summary="Delete a webhook endpoint",
        description="The endpoint and its delivery log; nothing more is sent to it.",
        responses={204: None, 404: _NOT_FOUND},
    )
    def destroy(self, request: Request, webhook_id: str) -> Response:
        webhooks.webhook_delete(endpoint=self._endpoint(request, webhook_id))
        return Response(status=204)

    @extend_schema(
        summary="Rotate a webhook endpoint's signing secret",
        description="A new secret signs from now on; the previous one also signs, beside it, "
        "until `previous_secret_expires_at` (WEBHOOK_SECRET_GRACE, 24 h). " + _SHOWN_ONCE,
        request=None,
        responses={200: WebhookCreatedSerializer, 404: _NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, webhook_id: str) -> Response:
        endpoint, _secret = webhooks.webhook_secret_rotate(
            endpoint=self._endpoint(request, webhook_id)
        )
        return Response(WebhookCreatedSerializer(endpoint).data)

    @extend_schema(
        summary="Send a webhook.test event to an endpoint",
        description="Queues a `webhook.test` delivery (after the endpoint's pending ones); "
        "follow it in the deliveries. A disabled endpoint's deliveries wait until it is enabled.",
        request=None,
        responses={202: WebhookDeliverySerializer, 404: _NOT_FOUND},
        operation_id="v1_webhooks_test_create",
    )
    @action(detail=True, methods=["post"], url_path="test")
    def send_test(self, request: Request, webhook_id: str) -> Response:
        delivery = webhooks.webhook_test_send(endpoint=self._endpoint(request, webhook_id))
        return Response(WebhookDeliverySerializer(delivery).data, status=202)

    @extend_schema(
        summary="Read an endpoint's deliveries, one page at a time",
        description="Keyset pages by delivery id. No cursor or `before=X`: newest first, "
        "continue with `next_before` while `has_more`. `after=X`: oldest first, newer than "
        "X, continue with `next_after`. Optional `status`.",
        parameters=[DeliveryQuerySerializer],
        responses={200: WebhookDeliveryPageSerializer, 404: _NOT_FOUND},
        operation_id="v1_webhooks_deliveries_list",
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, webhook_id: str) -> Response:
        endpoint = self._endpoint(request, webhook_id)
        query = validated(DeliveryQuerySerializer, request.query_params)
        limit = min(query["limit"], DELIVERY_MAX_LIMIT)
        rows = webhooks.deliveries_of(endpoint=endpoint)
        if query.get("status"):
            rows = rows.filter(status=query["status"])
        if "after" in query:
            rows = rows.filter(pk__gt=query["after"])
        if "before" in query:
            rows = rows.filter(pk__lt=query["before"])
        forward = "after" in query
        page = list(rows.order_by("pk" if forward else "-pk")[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        if forward:
            next_after, next_before = (page[-1].pk if page else query["after"]), None
        else:
            next_after, next_before = None, (page[-1].pk if page and has_more else None)
        return Response(
            {
                "deliveries": WebhookDeliverySerializer(page, many=True).data,
                "pagination": {
                    "limit": limit,
                    "has_more": has_more,
                    "next_after": next_after,
                    "next_before": next_before,
                },
            }
        )

    @extend_schema(
        summary="Get a delivery with its attempts",
        description="One delivery of the endpoint and the log of its attempts.",
        responses={200: WebhookDeliveryDetailSerializer, 404: _DELIVERY_NOT_FOUND},
        operation_id="v1_webhooks_delivery_retrieve",
    )
    @action(detail=True, methods=["get"], url_path=r"deliveries/(?P<delivery_id>[^/]+)")
    def delivery(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        endpoint = self._endpoint(request, webhook_id)
        found = webhooks.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        return Response(WebhookDeliveryDetailSerializer(found).data)

    @extend_schema(
        summary="Send a delivery again",
        description="A failed (or succeeded) delivery goes out again now, its attempts kept; "
        "a pending one is already scheduled (409).",
        request=None,
        responses={202: WebhookDeliverySerializer, 404: _DELIVERY_NOT_FOUND, 409: _SCHEDULED},
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/]+)/retry")
    def delivery_retry(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        endpoint = self._endpoint(request, webhook_id)
        found = webhooks.delivery_get(endpoint=endpoint, delivery_id=delivery_id)
        delivery = webhooks.webhook_delivery_retry(delivery=found)
        return Response(WebhookDeliverySerializer(delivery).data, status=202)
