"""The event log's watermark functions (PostgreSQL; nothing elsewhere): see
system.eventlog.watermark for what they compute and why in this order."""

from django.db import migrations

# 1073741824 = 2^30: the high 32 bits of IN_FLIGHT (1 << 62); 2147483648 = 2^31.
WATERMARK = """
CREATE OR REPLACE FUNCTION eventlog_watermark() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v bigint;
    m bigint;
BEGIN
    -- 1. The sequence's last value, BEFORE
    v := COALESCE(pg_sequence_last_value(pg_get_serial_sequence('system_eventlogentry', 'event_id')), 0);
    -- 2. the smallest key of the other transactions of this database in flight.
    SELECT MIN(((l.classid::bigint - 1073741824) << 32) | l.objid::bigint) INTO m
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1
      AND l.classid::bigint >= 1073741824 AND l.classid::bigint < 2147483648
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid IS DISTINCT FROM pg_backend_pid();
    RETURN LEAST(v, m);  -- LEAST ignores a NULL m: nobody in flight
END $$;
"""

# The watermark (at most upto_id) on a first row of its own, then the entries in
# (after_id, watermark], read by a later statement (a new snapshot: the function is VOLATILE).
AFTER = """
CREATE OR REPLACE FUNCTION eventlog_after(after_id bigint, upto_id bigint, lim integer)
RETURNS TABLE (
    r_watermark bigint, r_event_id bigint, r_event_type varchar, r_payload jsonb,
    r_created_at timestamptz, r_agent_id uuid, r_channel_id uuid, r_session_id uuid,
    r_owner_id bigint
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    w bigint;
BEGIN
    w := LEAST(eventlog_watermark(), upto_id);
    r_watermark := w;
    RETURN NEXT;
    RETURN QUERY
        SELECT w, e.event_id, e.event_type::varchar, e.payload, e.created_at, e.agent_id,
               e.channel_id, e.session_id, e.owner_id
        FROM system_eventlogentry e
        WHERE e.event_id > after_id AND e.event_id <= w
        ORDER BY e.event_id
        LIMIT lim;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS eventlog_after(bigint, bigint, integer);
DROP FUNCTION IF EXISTS eventlog_watermark();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(WATERMARK)
        schema_editor.execute(AFTER)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("system", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
