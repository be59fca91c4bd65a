"""API keys and users' roles in the back office."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from system.auth import services
from system.kernel.roles import ROLES, user_roles
from system.models import ApiKey

# The request attribute that carries a new key from save_model to response_add.
_CREATED_KEY = "_371os_api_key_created"


class ApiKeyCreateForm(forms.ModelForm):
    """A staff user mints keys with roles they hold themselves, for themselves or for nobody
    (a key of its own); a superuser, any roles for anyone. `maker` is set per request."""

    maker: AbstractBaseUser | None = None
    role_choices = forms.MultipleChoiceField(
        label="Roles", choices=[(r, r) for r in ROLES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "owner", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        maker = self.maker
        assert maker is not None, "ApiKeyAdmin.get_form sets the maker"
        if not maker.is_superuser:
            held = user_roles(maker)
            self.fields["role_choices"].choices = [(r, r) for r in ROLES if r in held]
            self.fields["owner"].queryset = get_user_model().objects.filter(pk=maker.pk)
        self.fields["owner"].required = False
        self.fields["owner"].help_text = "Empty: the key acts for itself, not for a user."


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(r, r) for r in ROLES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        role = self.value()
        if role not in ROLES:
            return queryset
        return queryset.filter(
            Q(roles=role)
            | Q(roles__startswith=f"{role},")
            | Q(roles__endswith=f",{role}")
            | Q(roles__contains=f",{role},")
        )


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", "Revoked"), ("no", "Active")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made through the service (the secret is shown once, on the page that follows)
    and never edited: revoke and make a new one."""

    list_display = (
        "name",
        "prefix",
        "owner",
        "roles",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    list_filter = (RoleFilter, RevokedFilter, "owner")
    search_fields = ("name", "=prefix", "owner__username")
    list_select_related = ("owner",)
    actions = ["revoke"]
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name != "secret_hash"]
    exclude = ("secret_hash",)

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ["name", "owner", "expires_at"]
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            form = type(form.__name__, (form,), {"maker": request.user})
        return form

    def get_fieldsets(self, request: HttpRequest, obj: ApiKey | None = None) -> list:
        if obj is None:
            return [(None, {"fields": ["name", "owner", "role_choices", "expires_at"]})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list:
        return self.readonly_fields if obj is not None else []

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # The change page is a read-only detail view.
        return obj is None and super().has_change_permission(request)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.Form, change: bool) -> None:
        api_key, key = services.api_key_create(
            name=form.cleaned_data["name"],
            owner=form.cleaned_data["owner"],
            created_by=request.user,
            roles=form.cleaned_data["role_choices"],
            expires_at=form.cleaned_data.get("expires_at"),
        )
        obj.pk = api_key.pk
        # On the request, never on this ModelAdmin: one instance serves every request, so
        # two admins adding keys at once would be shown each other's secret.
        setattr(request, _CREATED_KEY, (api_key, key))

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        api_key, key = getattr(request, _CREATED_KEY)
        context = {
            **self.admin_site.each_context(request),
            "api_key": api_key,
            "key": key,
            "title": "API key created",
        }
        response = TemplateResponse(request, "admin/system/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected API keys", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class RolesUserAdmin(UserAdmin):
    list_display = (*UserAdmin.list_display, "roles")
    list_filter = (*UserAdmin.list_filter,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("groups")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        # Roles are groups: staff who may change users may not hand out roles (or superuser
        # status), their own account's included.
        return (*readonly, "is_superuser", "groups", "user_permissions")

    @admin.display(description="roles")
    def roles(self, user) -> str:
        names = sorted(g.name for g in user.groups.all() if g.name in ROLES)
        if user.is_superuser and "admin" not in names:
            names.insert(0, "admin (superuser)")
        return ", ".join(names) or "-"
