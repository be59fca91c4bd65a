from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "system.auth"
    label = "system_auth"  # not "auth": that is django.contrib.auth's
    verbose_name = "Authentication"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from system.auth.keycache import key_cache_clear
        from system.kernel.sockets import sockets_recheck_principal
        from system.models import ApiKey

        user_model = get_user_model()

        # A user is deactivated, made (or unmade) superuser, or deleted from any path (the
        # back office, a shell, a command), or their role groups change: their open sockets
        # re-check their credentials now rather than at the next periodic re-check. Not for
        # the last_login stamp that every password login writes.
        def user_saved(sender, instance, update_fields=None, **kwargs) -> None:
            if update_fields is not None and set(update_fields) <= {"last_login"}:
                return
            if not kwargs.get("created"):
                sockets_recheck_principal(user_id=instance.pk)

        def user_deleted(sender, instance, **kwargs) -> None:
            sockets_recheck_principal(user_id=instance.pk)

        def groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
            if action not in ("post_add", "post_remove", "post_clear"):
                return
            if not reverse:
                sockets_recheck_principal(user_id=instance.pk)
            else:  # group.user_set changed: pk_set names the users (None after a clear)
                for user_id in pk_set or ():
                    sockets_recheck_principal(user_id=user_id)

        post_save.connect(user_saved, sender=user_model, weak=False)
        post_delete.connect(user_deleted, sender=user_model, weak=False)
        m2m_changed.connect(groups_changed, sender=user_model.groups.through, weak=False)

        # Keys verified in the last second (system.auth.keycache) are forgotten in this
        # process as soon as a key, a user or a user's groups change here.
        for signal, sender in (
            (post_save, ApiKey),
            (post_delete, ApiKey),
            (post_save, user_model),
            (post_delete, user_model),
            (m2m_changed, user_model.groups.through),
        ):
            signal.connect(key_cache_clear, sender=sender, weak=False)
