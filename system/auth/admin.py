"""API keys and users' roles in the back office."""

import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from system.auth import services
from system.kernel.roles import ROLES, user_roles
from system.models import ApiKey

# The session entry that carries a new key (by its pk) from the add form's POST to the one
# GET that shows it: popped by that GET, so a reload finds nothing and re-submits nothing.
_SHOW_ONCE = "371os_api_key_show_once"
# ... and only this soon after: a key nobody came to read does not wait in the session store.
_SHOW_WITHIN_SECONDS = 300


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
        "state",
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

    def get_urls(self) -> list:
        shown_once = path(
            "<int:object_id>/created/",
            self.admin_site.admin_view(self.created_view),
            name="system_apikey_created",
        )
        return [shown_once, *super().get_urls()]

    def get_actions(self, request: HttpRequest) -> dict:
        # A revoked key stays listed as the record of who could get in: the list revokes,
        # it never deletes.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="state")
    def state(self, api_key: ApiKey) -> str:
        if api_key.revoked_at is not None:
            label, colour = "revoked", "#ba2121"
        elif api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            label, colour = "expired", "#8a6d3b"
        else:
            label, colour = "active", "#2e7d32"
        return format_html(
            '<span class="apikey-state apikey-{}" style="color:#fff;background:{};'
            'padding:1px 6px;border-radius:8px;font-size:.85em">{}</span>',
            label,
            colour,
            label,
        )

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
        # In this user's session, never on this ModelAdmin (one instance serves every
        # request): the page after the redirect reads it once and drops it.
        pending = _fresh(request.session.get(_SHOW_ONCE, {}))
        request.session[_SHOW_ONCE] = {**pending, str(api_key.pk): [key, time.time()]}

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:system_apikey_created", args=[obj.pk]))

    def created_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The one GET that shows a new key: later ones say it is gone."""
        api_key = get_object_or_404(ApiKey.objects.select_related("owner"), pk=object_id)
        if not (self.has_add_permission(request) or self.has_view_permission(request, api_key)):
            raise PermissionDenied
        stored = request.session.get(_SHOW_ONCE, {})
        pending = _fresh(stored)
        key = (pending.pop(str(api_key.pk), None) or [None])[0]
        if pending != stored:
            if pending:
                request.session[_SHOW_ONCE] = pending
            else:
                del request.session[_SHOW_ONCE]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "api_key": api_key,
            "key": key,
            "title": f"API key “{api_key.name}”" + (" created" if key else ""),
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


def _fresh(pending: dict) -> dict:
    """The keys waiting to be shown that were made within _SHOW_WITHIN_SECONDS."""
    now = time.time()
    return {pk: v for pk, v in pending.items() if now - v[1] <= _SHOW_WITHIN_SECONDS}
