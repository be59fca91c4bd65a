"""The OpenAPI schema as Swagger's users read it: a bare key pasted into "Authorize" works, every
operation sits under its area's tag with a summary, and every error status it can answer is
documented with the error envelope."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from system.kernel.schema_operations import OPERATIONS

pytestmark = pytest.mark.embedded

AREA_TAGS = {
    "agents",
    "channels",
    "sessions",
    "ElizaOS sessions",
    "system",
    "auth",
    "QuestFlow",
    "webhooks",
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def documents_the_envelope(operation: dict, status: str) -> bool:
    """The response for `status` is the error envelope (or, on the two routes that answer a
    failed validation in an upstream shape, may be)."""
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema == ERROR_REF or ERROR_REF in schema.get("anyOf", [])


def authenticated(operation: dict) -> bool:
    return any(operation.get("security", []))


def test_the_bare_key_header_is_a_security_scheme(api_schema):
    schemes = api_schema["components"]["securitySchemes"]

    assert schemes["X-API-KEY"]["type"] == "apiKey"
    assert schemes["X-API-KEY"]["in"] == "header"
    assert schemes["X-API-KEY"]["name"] == "X-API-KEY"
    assert schemes["ApiKey"]["name"] == "Authorization"
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer"}


def test_every_authenticated_operation_accepts_each_of_the_three_schemes(api_schema):
    for path, method, operation in operations(api_schema):
        if authenticated(operation):
            for scheme in ("X-API-KEY", "ApiKey", "Bearer"):
                assert {scheme: []} in operation["security"], (method, path, scheme)


@pytest.mark.django_db
def test_a_bare_key_in_the_x_api_key_header_authenticates(client, make_api_key):
    response = client.get("/api/v1/agents", HTTP_X_API_KEY=make_api_key(["admin"]))

    assert response.status_code == 200


def test_every_operation_is_tagged_with_its_area(api_schema):
    tagged = {(method, path): op["tags"] for path, method, op in operations(api_schema)}

    assert all(len(tags) == 1 and tags[0] in AREA_TAGS for tags in tagged.values()), tagged
    assert tagged[("post", "/api/v1/channels/{channel_id}/messages")] == ["channels"]
    assert tagged[("post", "/api/messaging/sessions/")] == ["ElizaOS sessions"]
    assert tagged[("post", "/api/agents/csuite/meeting")] == ["QuestFlow"]
    assert tagged[("post", "/api/v1/auth/token")] == ["auth"]


def test_every_area_tag_is_declared_with_a_description(api_schema):
    declared = {tag["name"]: tag["description"] for tag in api_schema["tags"]}

    assert set(declared) == AREA_TAGS
    assert all(declared.values())


def test_every_operation_has_a_summary_and_a_description(api_schema):
    missing = [
        (method, path)
        for path, method, op in operations(api_schema)
        if not op.get("summary") or not op.get("description")
    ]

    assert missing == []


def test_the_table_of_domain_statuses_names_only_real_operations(api_schema):
    operation_ids = {op["operationId"] for _path, _method, op in operations(api_schema)}

    assert set(OPERATIONS) <= operation_ids


def test_authenticated_operations_document_401_and_403_and_a_public_one_no_403(api_schema):
    for path, method, operation in operations(api_schema):
        if authenticated(operation):
            assert documents_the_envelope(operation, "401"), (method, path)
            assert documents_the_envelope(operation, "403"), (method, path)
    login = api_schema["paths"]["/api/v1/auth/token"]["post"]

    assert not authenticated(login)
    assert "403" not in login["responses"]


def test_every_operation_on_a_path_with_a_parameter_documents_404(api_schema):
    for path, method, operation in operations(api_schema):
        if "{" in path:
            assert documents_the_envelope(operation, "404"), (method, path)


def test_every_operation_with_a_body_documents_400_and_413(api_schema):
    for path, method, operation in operations(api_schema):
        if "requestBody" in operation:
            assert documents_the_envelope(operation, "400"), (method, path)
            assert documents_the_envelope(operation, "413"), (method, path)


def test_the_statuses_the_services_raise_are_documented_with_their_codes(api_schema):
    paths = api_schema["paths"]
    renew = paths["/api/v1/sessions/{session_id}/renew"]["post"]["responses"]
    start = paths["/api/v1/agents/{agent_id}/start"]["post"]["responses"]
    login = paths["/api/v1/auth/token"]["post"]["responses"]

    assert "`session_expired`" in renew["410"]["description"]
    assert "`session_renewal_limit`" in renew["422"]["description"]
    assert "`session_ended`" in renew["409"]["description"]
    assert "`agent_already_running`" in start["409"]["description"]
    assert "`invalid_credentials`" in login["401"]["description"]


def test_the_error_envelope_schema_requires_the_house_fields(api_schema):
    envelope = api_schema["components"]["schemas"]["Error"]

    assert envelope["required"] == ["error"]
    assert envelope["properties"]["error"]["required"] == [
        "code",
        "message",
        "details",
        "timestamp",
        "request_id",
    ]


def test_a_rate_limited_answer_is_documented_with_the_envelope(api_schema):
    limited = api_schema["components"]["responses"]["RateLimitExceeded"]

    assert limited["content"]["application/json"]["schema"] == ERROR_REF


# Regressions Schemathesis found against the live stack (tests/e2e/test_schemathesis.py).


def test_a_list_action_answers_one_page_object_not_an_array_of_them(api_schema):
    for path, component in (("/api/v1/agents", "AgentList"), ("/api/v1/channels", "ChannelList")):
        ok = api_schema["paths"][path]["get"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{component}"
        }


def test_page_and_limit_document_the_bounds_the_server_refuses_outside(api_schema):
    bounded = [
        parameter["schema"]
        for _path, _method, operation in operations(api_schema)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] in ("page", "limit")
    ]

    assert bounded
    assert all(schema["minimum"] == 1 for schema in bounded)


def test_a_required_text_field_of_a_request_may_not_be_blank(api_schema):
    login = api_schema["components"]["schemas"]["TokenObtainInputRequest"]["properties"]

    assert login["username"]["minLength"] == 1
    assert login["password"]["minLength"] == 1
    text = re.compile(login["username"]["pattern"])  # what DRF's CharField refuses
    assert text.search("admin")
    assert not text.search("\t")  # trimmed, then blank
    assert not text.search("\x1d\x1d")  # str.strip() trims it too (JSON Schema's \\s does not)
    assert not text.search("ad\x00min")


def test_routes_with_an_upstream_validation_shape_document_it(api_schema):
    paths = api_schema["paths"]
    akash = paths["/api/deploy/akash"]["post"]["responses"]["400"]
    submit = paths["/api/messaging/submit"]["post"]["responses"]["400"]

    akash_shape = akash["content"]["application/json"]["schema"]["anyOf"][1]
    submit_shape = submit["content"]["application/json"]["schema"]["anyOf"][1]
    assert akash_shape["properties"]["error"]["required"] == ["code", "details"]
    assert submit_shape["properties"]["error"]["type"] == "string"


def test_the_elizaos_session_create_body_requires_the_two_uuids(api_schema):
    body = api_schema["paths"]["/api/messaging/sessions/"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    shape = api_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]

    assert shape["required"] == ["agentId", "userId"]
    assert shape["properties"]["agentId"]["format"] == "uuid"


def test_an_empty_optional_query_parameter_is_documented_as_absent(api_schema):
    agents = api_schema["paths"]["/api/v1/agents"]["get"]["parameters"]
    events = api_schema["paths"]["/api/v1/system/events"]["get"]["parameters"]
    status = next(p for p in agents if p["name"] == "status")
    since = next(p for p in events if p["name"] == "since")

    assert status["allowEmptyValue"] is True
    assert since["allowEmptyValue"] is True
