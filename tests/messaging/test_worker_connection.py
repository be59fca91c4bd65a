"""The worker's database connection across tasks, on a server connection that can break: not
marked `embedded` (SQLite opens a file; there is nothing to break), so CI runs it on
PostgreSQL."""

import pytest
from celery import signals
from django.db import connection

from messaging.models import Message
from messaging.tasks import agent_reply


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_broke_between_tasks_is_replaced_before_the_next_one():
    if connection.vendor != "postgresql":
        pytest.skip("needs a server connection (PostgreSQL): SQLite opens a file")
    connection.ensure_connection()
    broken = connection.connection
    broken.close()  # as if the database had restarted while the worker was idle

    signals.task_prerun.send(sender=agent_reply, task_id="t", task=agent_reply)

    assert not Message.objects.exists()
    assert connection.connection is not broken
