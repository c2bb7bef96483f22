"""The PostgreSQL storage schema: its migrations, in order (component ``storage`` of
``chatmgmt_schema_version``; :func:`~chatmgmt.storage._pg.migrate_op` applies the missing ones
and refuses a newer database), and the rank columns the rankings' indexes are built from."""

from __future__ import annotations

__all__ = ["CENSUS_STRIPES", "MIGRATIONS"]


#: The parameters of the write function of versions 6 and 7
_PARAMS_6 = """        p_ns bytea, p_chat_id text,
        a_ids text[], a_versions bigint[], a_data text[], a_texts text[], a_nums float8[],
        p_remove bytea[], p_push_queue bytea, p_push_score float8,
        p_cancel bytea[], t_keys bytea[], t_due float8[], t_data text[],
        p_chat_mode integer, p_chat_version bigint, p_chat_state text, p_chat_agent text,
        p_chat_data text, p_retain_from float8,
        p_message text, p_sticky_partner text, p_sticky_data text, p_events text[]
"""

#: The end of the write function (versions 6 and 7): the outbox rows
_OUTBOX_ROWS = """        IF cardinality(p_events) > 0 THEN
            INSERT INTO chatmgmt_outbox (ns, data)
            SELECT p_ns, e.data FROM unnest(p_events) WITH ORDINALITY AS e(data, n)
            ORDER BY e.n;
        END IF;
    END
    $$
    """

#: The statements of the write function (versions 5 and 6) after the agents' rows: queue
#: entries, timers, the chat, its message and the sticky mark, each row by its whole key
_STORE_ROWS = """        IF cardinality(p_remove) > 0 THEN
            FOREACH k IN ARRAY p_remove LOOP
                DELETE FROM chatmgmt_queue_entries
                WHERE ns = p_ns AND queue = k AND chat_id = p_chat_id;
            END LOOP;
        END IF;
        IF p_push_queue IS NOT NULL THEN
            INSERT INTO chatmgmt_queue_entries (ns, queue, chat_id, score)
            VALUES (p_ns, p_push_queue, p_chat_id, p_push_score) ON CONFLICT DO NOTHING;
        END IF;
        IF cardinality(p_cancel) > 0 THEN
            FOREACH k IN ARRAY p_cancel LOOP
                DELETE FROM chatmgmt_timers WHERE ns = p_ns AND key = k;
            END LOOP;
        END IF;
        IF cardinality(t_keys) > 0 THEN
            INSERT INTO chatmgmt_timers (ns, key, due_at, data)
            SELECT p_ns, t.key, t.due, t.data
            FROM unnest(t_keys, t_due, t_data) WITH ORDINALITY AS t(key, due, data, n)
            ORDER BY t.n
            ON CONFLICT (ns, key) DO UPDATE SET due_at = excluded.due_at,
                data = excluded.data, seq = excluded.seq;
        END IF;
        IF p_chat_mode = 1 THEN
            INSERT INTO chatmgmt_chats (ns, id, version, state, agent_id, data, retain_from)
            VALUES (p_ns, p_chat_id, p_chat_version, p_chat_state, p_chat_agent, p_chat_data,
                p_retain_from);
        ELSIF p_chat_mode = 2 THEN
            UPDATE chatmgmt_chats SET version = p_chat_version, state = p_chat_state,
                agent_id = p_chat_agent, data = p_chat_data, retain_from = p_retain_from
            WHERE ns = p_ns AND id = p_chat_id;
        END IF;
        IF p_message IS NOT NULL THEN
            INSERT INTO chatmgmt_messages (ns, chat_id, data) VALUES (p_ns, p_chat_id, p_message);
        END IF;
        IF p_sticky_partner IS NOT NULL THEN
            INSERT INTO chatmgmt_sticky (ns, partner_id, data)
            VALUES (p_ns, p_sticky_partner, p_sticky_data)
            ON CONFLICT (ns, partner_id) DO UPDATE SET data = excluded.data;
        END IF;
"""

#: The stripes of a group's census rows (schema 7): a transaction adds its changes to the row of
#: its stripe, ``mod(txid_current(), CENSUS_STRIPES)``
CENSUS_STRIPES = 16

#: The census columns of ``chatmgmt_agent_census`` and the change each rank row ``d`` (signed
#: ``d.sign``: +1 for a new row, -1 for an old one) brings to them: the agents per census
#: category, and the limits and active chats of the ONLINE ones (what the aggregate of
#: schema 6 summed over the group's rank rows)
_CENSUS_SUMS = (
    ("n_eligible", "sum(d.sign) FILTER (WHERE d.category = 'eligible')"),
    ("n_full", "sum(d.sign) FILTER (WHERE d.category = 'full')"),
    ("n_busy", "sum(d.sign) FILTER (WHERE d.category = 'busy')"),
    ("n_away", "sum(d.sign) FILTER (WHERE d.category = 'away')"),
    ("n_offline", "sum(d.sign) FILTER (WHERE d.category = 'offline')"),
    ("lim", "sum(d.sign * d.lim) FILTER (WHERE d.status = 'online')"),
    ("active", "sum(d.sign * d.active) FILTER (WHERE d.status = 'online')"),
)


def _census_add(rows: str, stripe: str) -> str:
    """The statement that adds the signed rank rows ``rows`` (a FROM item with ``ns, grp,
    sign, category, status, lim, active``) to the census rows of ``stripe``: one row per
    group, locked in (ns, grp) order -- ``""`` (every agent has a rank row there) first"""
    columns = ", ".join(name for name, _sum in _CENSUS_SUMS)
    sums = ", ".join(f"COALESCE({expr}, 0)" for _name, expr in _CENSUS_SUMS)
    sets = ", ".join(f"{name} = c.{name} + excluded.{name}" for name, _sum in _CENSUS_SUMS)
    return (
        f"INSERT INTO chatmgmt_agent_census AS c (ns, grp, stripe, {columns}) "
        f"SELECT d.ns, d.grp, {stripe}, {sums} FROM {rows} AS d "
        "GROUP BY d.ns, d.grp ORDER BY d.ns, d.grp "
        f"ON CONFLICT (ns, grp, stripe) DO UPDATE SET {sets}"
    )


_SIGNED = "(SELECT ns, grp, {sign} AS sign, category, status, lim, active FROM {table})"
_STRIPE = f"mod(txid_current(), {CENSUS_STRIPES})::integer"

#: The triggers' condition: not inside a write function that keeps the census itself
#: (``chatmgmt_write_unit7`` runs with ``chatmgmt.census = 'kept'``)
_NOT_KEPT = "current_setting('chatmgmt.census', true) IS DISTINCT FROM 'kept'"

#: Version 7's agent rows (``a_nums`` holds 18 values per agent: version 6's 10, then 1 when
#: the agent's census changes and the 7 changes, in the order of _CENSUS_SUMS): the agent,
#: its rank rows and the census rows of its groups in one statement
_AGENT_ROWS_7 = (
    """        FOR i IN 1 .. COALESCE(cardinality(a_ids), 0) LOOP
            o := (i - 1) * 18;
            IF a_nums[o + 11] <> 0 THEN
                WITH a AS (
                    UPDATE chatmgmt_agents SET version = a_versions[i], data = a_data[i]
                    WHERE ns = p_ns AND id = a_ids[i]
                ), r AS (
                    UPDATE chatmgmt_agent_ranks SET RANK_VALUES
                    WHERE ns = p_ns AND agent_id = a_ids[i] RETURNING grp
                )
                INSERT INTO chatmgmt_agent_census AS c (ns, grp, stripe, CENSUS_COLUMNS)
                SELECT p_ns, r.grp, s, CENSUS_VALUES FROM r ORDER BY r.grp
                ON CONFLICT (ns, grp, stripe) DO UPDATE SET CENSUS_SETS;
            ELSE
                WITH a AS (
                    UPDATE chatmgmt_agents SET version = a_versions[i], data = a_data[i]
                    WHERE ns = p_ns AND id = a_ids[i]
                )
                UPDATE chatmgmt_agent_ranks SET RANK_VALUES
                WHERE ns = p_ns AND agent_id = a_ids[i];
            END IF;
        END LOOP;
""".replace(
        "RANK_VALUES",
        """eligible = a_nums[o + 1] <> 0,
                        status = a_texts[2 * i - 1], category = a_texts[2 * i],
                        lim = a_nums[o + 2]::integer, active = a_nums[o + 3],
                        saturation = a_nums[o + 4], free = a_nums[o + 5],
                        last_assigned_at = a_nums[o + 6], idle_since = a_nums[o + 7],
                        tier = a_nums[o + 8], account_order = a_nums[o + 9],
                        tiebreak = a_nums[o + 10]""",
    )
    .replace("CENSUS_COLUMNS", ", ".join(name for name, _sum in _CENSUS_SUMS))
    .replace(
        "CENSUS_VALUES",
        ", ".join(
            f"a_nums[o + {12 + n}]" + ("" if name == "active" else "::integer")
            for n, (name, _sum) in enumerate(_CENSUS_SUMS)
        ),
    )
    .replace(
        "CENSUS_SETS",
        ", ".join(f"{name} = c.{name} + excluded.{name}" for name, _sum in _CENSUS_SUMS),
    )
)

#: Schema 7: the census of every skill group kept as it changes (see MIGRATIONS[6])
_CENSUS_KEPT = (
    """
    CREATE TABLE chatmgmt_agent_census (
        ns bytea NOT NULL, grp text NOT NULL, stripe integer NOT NULL,
        n_eligible integer NOT NULL, n_full integer NOT NULL, n_busy integer NOT NULL,
        n_away integer NOT NULL, n_offline integer NOT NULL,
        lim integer NOT NULL, active float8 NOT NULL,
        PRIMARY KEY (ns, grp, stripe)
    )
    """,
    f"""
    CREATE FUNCTION chatmgmt_census_kept() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            {
        _census_add(
            "("
            + _SIGNED.format(sign=-1, table="old_rows")
            + " UNION ALL "
            + _SIGNED.format(sign=1, table="new_rows")
            + ")",
            _STRIPE,
        )
    };
        ELSIF TG_OP = 'INSERT' THEN
            {_census_add(_SIGNED.format(sign=1, table="new_rows"), _STRIPE)};
        ELSE
            {_census_add(_SIGNED.format(sign=-1, table="old_rows"), _STRIPE)};
        END IF;
        RETURN NULL;
    END
    $$
    """,
    # the triggers first: they lock the rank rows' table against writers until the census
    # below, summed from its rows, has committed with them
    "CREATE TRIGGER chatmgmt_census_update AFTER UPDATE ON chatmgmt_agent_ranks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    f"WHEN ({_NOT_KEPT}) EXECUTE FUNCTION chatmgmt_census_kept()",
    "CREATE TRIGGER chatmgmt_census_insert AFTER INSERT ON chatmgmt_agent_ranks "
    f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT WHEN ({_NOT_KEPT}) "
    "EXECUTE FUNCTION chatmgmt_census_kept()",
    "CREATE TRIGGER chatmgmt_census_delete AFTER DELETE ON chatmgmt_agent_ranks "
    f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT WHEN ({_NOT_KEPT}) "
    "EXECUTE FUNCTION chatmgmt_census_kept()",
    _census_add(_SIGNED.format(sign=1, table="chatmgmt_agent_ranks"), "0"),
    # the write function of this release: version 6's, keeping the census itself (the
    # triggers stand aside while it runs)
    """
    CREATE FUNCTION chatmgmt_write_unit7(
"""
    + _PARAMS_6
    + """    ) RETURNS void LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan SET chatmgmt.census = 'kept' AS $$
    DECLARE
        i integer;
        o integer;
        k bytea;
        s integer := """
    + _STRIPE
    + """;
    BEGIN
"""
    + _AGENT_ROWS_7
    + _STORE_ROWS
    + _OUTBOX_ROWS,
)

MIGRATIONS: tuple[str | tuple[str, ...], ...] = (
    # 1: the initial schema
    """
    CREATE TABLE chatmgmt_customers (
        ns bytea NOT NULL, partner_id text NOT NULL, version bigint NOT NULL, data text NOT NULL,
        PRIMARY KEY (ns, partner_id)
    );
    CREATE TABLE chatmgmt_agents (
        ns bytea NOT NULL, id text NOT NULL, version bigint NOT NULL, data text NOT NULL,
        PRIMARY KEY (ns, id)
    );
    CREATE TABLE chatmgmt_agent_ranks (
        ns bytea NOT NULL, grp text NOT NULL, agent_id text NOT NULL,
        eligible boolean NOT NULL, status text NOT NULL, category text NOT NULL,
        lim integer NOT NULL,
        active float8 NOT NULL, saturation float8 NOT NULL, free float8 NOT NULL,
        last_assigned_at float8 NOT NULL, idle_since float8 NOT NULL, tier float8 NOT NULL,
        account_order float8 NOT NULL, tiebreak float8 NOT NULL,
        PRIMARY KEY (ns, grp, agent_id)
    );
    CREATE INDEX chatmgmt_agent_ranks_by_agent ON chatmgmt_agent_ranks (ns, agent_id);
    CREATE TABLE chatmgmt_chats (
        ns bytea NOT NULL, id text NOT NULL, seq bigserial NOT NULL, version bigint NOT NULL,
        state text NOT NULL, agent_id text, data text NOT NULL,
        PRIMARY KEY (ns, id)
    );
    CREATE INDEX chatmgmt_chats_by_state ON chatmgmt_chats (ns, state, seq);
    CREATE INDEX chatmgmt_chats_by_agent ON chatmgmt_chats (ns, agent_id, seq);
    CREATE TABLE chatmgmt_messages (
        seq bigserial PRIMARY KEY, ns bytea NOT NULL, chat_id text NOT NULL, data text NOT NULL
    );
    CREATE INDEX chatmgmt_messages_by_chat ON chatmgmt_messages (ns, chat_id, seq);
    CREATE TABLE chatmgmt_sticky (
        ns bytea NOT NULL, partner_id text NOT NULL, data text NOT NULL,
        PRIMARY KEY (ns, partner_id)
    );
    CREATE TABLE chatmgmt_queue_entries (
        ns bytea NOT NULL, queue bytea NOT NULL, chat_id text NOT NULL,
        score float8 NOT NULL, seq bigserial NOT NULL,
        PRIMARY KEY (ns, queue, chat_id)
    );
    CREATE INDEX chatmgmt_queue_order ON chatmgmt_queue_entries (ns, queue, score, seq);
    CREATE TABLE chatmgmt_outbox (
        seq bigserial PRIMARY KEY, ns bytea NOT NULL, data text NOT NULL,
        lease_until float8 NOT NULL DEFAULT 0, deliveries integer NOT NULL DEFAULT 0
    );
    CREATE INDEX chatmgmt_outbox_by_ns ON chatmgmt_outbox (ns, seq);
    CREATE TABLE chatmgmt_timers (
        ns bytea NOT NULL, key bytea NOT NULL, due_at float8 NOT NULL, data text NOT NULL,
        seq bigserial NOT NULL,
        PRIMARY KEY (ns, key)
    );
    CREATE INDEX chatmgmt_timers_due ON chatmgmt_timers (ns, due_at, seq);
    CREATE TABLE chatmgmt_hits (
        seq bigserial PRIMARY KEY, ns bytea NOT NULL, key bytea NOT NULL, t float8 NOT NULL
    );
    CREATE INDEX chatmgmt_hits_by_key ON chatmgmt_hits (ns, key, t)
    """,
    # 2: retention. ``retain_from`` is ports.retention_start of the stored chat (NULL while the
    # chat must be kept), indexed so that a purge finds the oldest first
    """
    ALTER TABLE chatmgmt_chats ADD COLUMN retain_from float8;
    UPDATE chatmgmt_chats SET retain_from = (data::json ->> 'updated_at')::float8
    WHERE state IN ('ended', 'abandoned')
        OR (state = 'left_message' AND (data::json ->> 'last_agent_message_at') IS NOT NULL);
    CREATE INDEX chatmgmt_chats_retention ON chatmgmt_chats (ns, retain_from)
        WHERE retain_from IS NOT NULL
    """,
    # 3: the writes of a unit of work in one statement (see _WRITE)
    (
        """
    CREATE OR REPLACE FUNCTION chatmgmt_write_unit(
        p_ns bytea, p_chat_id text,
        a_ids text[], a_versions bigint[], a_data text[],
        a_eligible boolean[], a_status text[], a_category text[], a_lim integer[],
        a_active float8[], a_saturation float8[], a_free float8[], a_last_assigned_at float8[],
        a_idle_since float8[], a_tier float8[], a_account_order float8[], a_tiebreak float8[],
        p_remove bytea[], p_push_queue bytea, p_push_score float8,
        p_cancel bytea[], t_keys bytea[], t_due float8[], t_data text[],
        p_chat_mode integer, p_chat_version bigint, p_chat_state text, p_chat_agent text,
        p_chat_data text, p_retain_from float8,
        p_message text, p_sticky_partner text, p_sticky_data text,
        p_events text[], p_channel text, p_tag text
    ) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF cardinality(a_ids) > 0 THEN
            UPDATE chatmgmt_agents AS a SET version = u.version, data = u.data
            FROM unnest(a_ids, a_versions, a_data) AS u(id, version, data)
            WHERE a.ns = p_ns AND a.id = u.id;
            UPDATE chatmgmt_agent_ranks AS r SET eligible = u.eligible, status = u.status,
                category = u.category, lim = u.lim, active = u.active,
                saturation = u.saturation, free = u.free,
                last_assigned_at = u.last_assigned_at, idle_since = u.idle_since,
                tier = u.tier, account_order = u.account_order, tiebreak = u.tiebreak
            FROM unnest(a_ids, a_eligible, a_status, a_category, a_lim, a_active,
                a_saturation, a_free, a_last_assigned_at, a_idle_since, a_tier,
                a_account_order, a_tiebreak)
                AS u(id, eligible, status, category, lim, active, saturation, free,
                    last_assigned_at, idle_since, tier, account_order, tiebreak)
            WHERE r.ns = p_ns AND r.agent_id = u.id;
        END IF;
        IF cardinality(p_remove) > 0 THEN
            DELETE FROM chatmgmt_queue_entries
            WHERE ns = p_ns AND queue = ANY(p_remove) AND chat_id = p_chat_id;
        END IF;
        IF p_push_queue IS NOT NULL THEN
            INSERT INTO chatmgmt_queue_entries (ns, queue, chat_id, score)
            VALUES (p_ns, p_push_queue, p_chat_id, p_push_score) ON CONFLICT DO NOTHING;
        END IF;
        IF cardinality(p_cancel) > 0 THEN
            DELETE FROM chatmgmt_timers WHERE ns = p_ns AND key = ANY(p_cancel);
        END IF;
        IF cardinality(t_keys) > 0 THEN
            INSERT INTO chatmgmt_timers (ns, key, due_at, data)
            SELECT p_ns, t.key, t.due, t.data
            FROM unnest(t_keys, t_due, t_data) WITH ORDINALITY AS t(key, due, data, n)
            ORDER BY t.n
            ON CONFLICT (ns, key) DO UPDATE SET due_at = excluded.due_at,
                data = excluded.data, seq = excluded.seq;
        END IF;
        IF p_chat_mode = 1 THEN
            INSERT INTO chatmgmt_chats (ns, id, version, state, agent_id, data, retain_from)
            VALUES (p_ns, p_chat_id, p_chat_version, p_chat_state, p_chat_agent, p_chat_data,
                p_retain_from);
        ELSIF p_chat_mode = 2 THEN
            UPDATE chatmgmt_chats SET version = p_chat_version, state = p_chat_state,
                agent_id = p_chat_agent, data = p_chat_data, retain_from = p_retain_from
            WHERE ns = p_ns AND id = p_chat_id;
        END IF;
        IF p_message IS NOT NULL THEN
            INSERT INTO chatmgmt_messages (ns, chat_id, data) VALUES (p_ns, p_chat_id, p_message);
        END IF;
        IF p_sticky_partner IS NOT NULL THEN
            INSERT INTO chatmgmt_sticky (ns, partner_id, data)
            VALUES (p_ns, p_sticky_partner, p_sticky_data)
            ON CONFLICT (ns, partner_id) DO UPDATE SET data = excluded.data;
        END IF;
        IF cardinality(p_events) > 0 THEN
            INSERT INTO chatmgmt_outbox (ns, data)
            SELECT p_ns, e.data FROM unnest(p_events) WITH ORDINALITY AS e(data, n)
            ORDER BY e.n;
            IF p_tag IS NOT NULL THEN
                PERFORM pg_notify(p_channel, p_tag);
            END IF;
        END IF;
    END
    $$
    """,
    ),
    # 4: capacity per channel and the fairness cap. An agent's record (``data``) may hold
    # ``agent.channel_limits``/``channel_weights`` and the load's ``channels``/``recent``; rows
    # without them read as before, so nothing is rewritten: the step only makes an older
    # release refuse a database whose agents it would misread (it would ignore channel costs)
    "",
    # 5: the same writes, each row reached by its whole key. Version 3 joined the agent and
    # rank rows to unnest(...) and deleted timers and queue entries with ``= ANY(...)``:
    # planned with only ``ns`` as index condition (a new namespace is estimated at one row),
    # every unit scanned all the namespace's agents, rank rows and timers. One statement per
    # row, with every key column an equality, cannot be planned that way; and its statements
    # keep their generic plans (the default re-planned the rank rows' UPDATE on every call)
    (
        """
    CREATE OR REPLACE FUNCTION chatmgmt_write_unit(
        p_ns bytea, p_chat_id text,
        a_ids text[], a_versions bigint[], a_data text[],
        a_eligible boolean[], a_status text[], a_category text[], a_lim integer[],
        a_active float8[], a_saturation float8[], a_free float8[], a_last_assigned_at float8[],
        a_idle_since float8[], a_tier float8[], a_account_order float8[], a_tiebreak float8[],
        p_remove bytea[], p_push_queue bytea, p_push_score float8,
        p_cancel bytea[], t_keys bytea[], t_due float8[], t_data text[],
        p_chat_mode integer, p_chat_version bigint, p_chat_state text, p_chat_agent text,
        p_chat_data text, p_retain_from float8,
        p_message text, p_sticky_partner text, p_sticky_data text,
        p_events text[], p_channel text, p_tag text
    ) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
    DECLARE
        i integer;
        k bytea;
    BEGIN
        FOR i IN 1 .. COALESCE(cardinality(a_ids), 0) LOOP
            UPDATE chatmgmt_agents SET version = a_versions[i], data = a_data[i]
            WHERE ns = p_ns AND id = a_ids[i];
            UPDATE chatmgmt_agent_ranks SET eligible = a_eligible[i], status = a_status[i],
                category = a_category[i], lim = a_lim[i], active = a_active[i],
                saturation = a_saturation[i], free = a_free[i],
                last_assigned_at = a_last_assigned_at[i], idle_since = a_idle_since[i],
                tier = a_tier[i], account_order = a_account_order[i],
                tiebreak = a_tiebreak[i]
            WHERE ns = p_ns AND agent_id = a_ids[i];
        END LOOP;
"""
        + _STORE_ROWS
        + """        IF cardinality(p_events) > 0 THEN
            INSERT INTO chatmgmt_outbox (ns, data)
            SELECT p_ns, e.data FROM unnest(p_events) WITH ORDINALITY AS e(data, n)
            ORDER BY e.n;
            IF p_tag IS NOT NULL THEN
                PERFORM pg_notify(p_channel, p_tag);
            END IF;
        END IF;
    END
    $$
    """,
    ),
    # 6: the same writes with fewer, flatter parameters: each agent's rank values in one
    # float8[] (10 per agent: eligible as 0/1, the limit, then the rank columns in the order of
    # _RANK_COLUMNS) and its status and category in one text[] (2 per agent), and no NOTIFY
    # arguments (the NOTIFY follows the COMMIT since version 5's release). 24 parameters and 9
    # arrays instead of 36 and 22: each array and parameter is dumped by the client and
    # received by the server on every call. Version 5's function stays (a process of the
    # previous release still calls it during an upgrade)
    (
        """
    CREATE OR REPLACE FUNCTION chatmgmt_write_unit6(
"""
        + _PARAMS_6
        + """    ) RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
    DECLARE
        i integer;
        o integer;
        k bytea;
    BEGIN
        FOR i IN 1 .. COALESCE(cardinality(a_ids), 0) LOOP
            o := (i - 1) * 10;
            UPDATE chatmgmt_agents SET version = a_versions[i], data = a_data[i]
            WHERE ns = p_ns AND id = a_ids[i];
            UPDATE chatmgmt_agent_ranks SET eligible = a_nums[o + 1] <> 0,
                status = a_texts[2 * i - 1], category = a_texts[2 * i],
                lim = a_nums[o + 2]::integer, active = a_nums[o + 3],
                saturation = a_nums[o + 4], free = a_nums[o + 5],
                last_assigned_at = a_nums[o + 6], idle_since = a_nums[o + 7],
                tier = a_nums[o + 8], account_order = a_nums[o + 9], tiebreak = a_nums[o + 10]
            WHERE ns = p_ns AND agent_id = a_ids[i];
        END LOOP;
"""
        + _STORE_ROWS
        + _OUTBOX_ROWS,
    ),
    # 7: the census of every skill group kept as it changes: per (group, stripe) the agents of
    # each census category, and the limits and active chats of the ONLINE ones, summed by
    # triggers on ``chatmgmt_agent_ranks`` (so every rank row written, by any release, counts:
    # a process of the previous release keeps writing through version 6's function). A census
    # read sums at most CENSUS_STRIPES rows instead of aggregating every agent of the group. A
    # transaction adds to the rows of one stripe, its own (``txid_current()``), so concurrent
    # units of one group rarely wait for each other, and one that does waits for the
    # group's ``""`` row first (every agent has a rank row there; the rows are locked in
    # (ns, grp) order): no deadlock
    _CENSUS_KEPT,
)
