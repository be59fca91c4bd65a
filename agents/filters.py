import django_filters

from agents.models import Agent
from agents.roster import AGENT_TYPES


class AgentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Agent.Status.choices)
    type = django_filters.ChoiceFilter(choices=[(t, t) for t in AGENT_TYPES])

    class Meta:
        model = Agent
        fields = ["status", "type"]
