from django.utils import timezone
from rest_framework import serializers

from system.kernel.roles import ROLES
from system.models import ApiKey


class TokenObtainInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TokenRefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class TokenRevokedSerializer(serializers.Serializer):
    revoked = serializers.BooleanField()


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=ROLES), min_length=1, max_length=len(ROLES)
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    owner = serializers.CharField(
        max_length=150,
        required=False,
        help_text="A username: the key acts for that user. Without it the key is a principal "
        "of its own (a service user `key:<prefix>`).",
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: never the secret, never its hash."""

    owner = serializers.CharField(source="owner.get_username", read_only=True)
    created_by = serializers.CharField(
        source="created_by.get_username", read_only=True, allow_null=True, default=None
    )
    roles = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "owner",
            "created_by",
            "roles",
            "prefix",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]

    def get_roles(self, api_key: ApiKey) -> list[str]:
        return sorted(api_key.role_set)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The full key. Shown in this response only.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyListSerializer(serializers.Serializer):
    api_keys = ApiKeySerializer(many=True)
    pagination = serializers.DictField()
