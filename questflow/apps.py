from django.apps import AppConfig


class QuestflowConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "questflow"
    verbose_name = "QuestFlow"
