import pytest

from agents.services import agent_create, agent_start


@pytest.fixture
def mimi():
    """The CEO agent, running."""
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
