-- evproxy outbox schema, version 1. {{schema}} is replaced with the schema
-- name (a validated lower-case identifier) when the migration is loaded.

-- The outbox: rows wait here until the relay publishes them (then they are
-- deleted), retries them (attempts, next_attempt_at, last_error, blocks) or
-- moves them to dead_letter.
CREATE TABLE {{schema}}.outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ce_id           text        NOT NULL,
    topic           text        NOT NULL,
    partition       int         NOT NULL DEFAULT -1,
    key             bytea,
    value           bytea,
    -- Repeated [int32 BE name length][name][int32 BE value length, -1 for
    -- null][value]; NULL or empty: no headers.
    headers         bytea,
    -- The record timestamp (ms); NULL: the time of publishing.
    ts              timestamptz,
    deliver_at      timestamptz NOT NULL DEFAULT now(),
    priority        int         NOT NULL DEFAULT 0,
    processed       boolean     NOT NULL DEFAULT false,
    attempts        int         NOT NULL DEFAULT 0,
    -- '-infinity' until the first retry, so the partial index below holds
    -- only rows that were retried.
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    blocks          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- outbox.Lanes = 64 lanes, a hash of topic and key
    -- (outbox.LaneOf computes the same in Go).
    lane            smallint    NOT NULL GENERATED ALWAYS AS ((
        ('x' || substr(md5(topic || coalesce(encode(key, 'hex'), '')), 1, 8))::bit(32)::bigint % 64
    )::smallint) STORED,
    CONSTRAINT outbox_ce_id_key UNIQUE (ce_id)
) WITH (
    -- Rows are inserted and deleted at a high rate and the live table is
    -- small, so dead tuples quickly outnumber live ones: vacuum after 1%
    -- (plus 1000 rows) has changed instead of the default 20%, and without
    -- cost-based throttling (the table is small, a vacuum is cheap), so the
    -- heap and the claim index stay compact after a backlog drains.
    -- Likewise re-analyze after 2% so the planner sees the current size.
    -- No fillfactor: deletes, not updates, dominate, and a retry updates
    -- indexed columns (no HOT update) anyway.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02
);

-- Claim candidates are read in (priority, id) order with the lane and due
-- conditions as filters: the scan stops after Limit due rows.
CREATE INDEX outbox_claim_idx ON {{schema}}.outbox (priority, id);

-- Earlier rows of one (topic, key): the claim's per-key fence.
CREATE INDEX outbox_key_idx ON {{schema}}.outbox (topic, key, id) WHERE key IS NOT NULL;

-- Rows that were retried and block their key: few, probed for every claim
-- candidate.
CREATE INDEX outbox_blocking_retry_idx ON {{schema}}.outbox (topic, key, id)
    WHERE key IS NOT NULL AND blocks AND next_attempt_at > '-infinity';

-- OutboxNextDue.
CREATE INDEX outbox_due_idx ON {{schema}}.outbox (greatest(deliver_at, next_attempt_at));

-- Lane leases: one row per lane, owner and lease_until NULL when free.
CREATE TABLE {{schema}}.lane (
    lane        smallint PRIMARY KEY,
    owner       text,
    lease_until timestamptz
);
INSERT INTO {{schema}}.lane (lane) SELECT generate_series(0, 63);

-- Records that could not be published.
CREATE TABLE {{schema}}.dead_letter (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ce_id      text        NOT NULL,
    topic      text        NOT NULL,
    partition  int         NOT NULL DEFAULT -1,
    key        bytea,
    value      bytea,
    headers    bytea,
    ts         timestamptz,
    priority   int         NOT NULL DEFAULT 0,
    processed  boolean     NOT NULL DEFAULT false,
    attempts   int         NOT NULL DEFAULT 0,
    stage      text        NOT NULL,
    reason     text        NOT NULL,
    plugin     text,
    failed_at  timestamptz NOT NULL,
    published  boolean     NOT NULL DEFAULT false,
    -- created_at of the outbox row.
    created_at timestamptz NOT NULL
);
CREATE INDEX dead_letter_failed_at_idx ON {{schema}}.dead_letter (failed_at);
CREATE INDEX dead_letter_unpublished_idx ON {{schema}}.dead_letter (id) WHERE NOT published;

-- publish puts a record into the outbox from an application's own
-- transaction and returns its id. headers is a JSON object of header names
-- to string values or null (other JSON values are stored as their JSON
-- text), encoded in key order; its "ce_id" string, if any, is the event id,
-- else a random UUID is generated and added as a "ce_id" header (last), so
-- every record carries one. A NULL deliver_at is now; others are kept to
-- the millisecond, like the store's. Listeners are notified when the
-- transaction commits.
CREATE FUNCTION {{schema}}.publish(
    topic      text,
    key        bytea,
    value      bytea,
    headers    jsonb       DEFAULT NULL,
    deliver_at timestamptz DEFAULT NULL,
    priority   int         DEFAULT 0
) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_ce_id   text;
    v_headers bytea := ''::bytea;
    v_id      bigint;
    v_at      text;
    v_deliver timestamptz;
    h         record;
BEGIN
    IF publish.topic IS NULL OR publish.topic = '' THEN
        RAISE EXCEPTION '{{schema}}.publish: topic is required' USING ERRCODE = '22023';
    END IF;
    IF publish.headers IS NOT NULL AND jsonb_typeof(publish.headers) <> 'object' THEN
        RAISE EXCEPTION '{{schema}}.publish: headers must be a JSON object, not %', jsonb_typeof(publish.headers)
            USING ERRCODE = '22023';
    END IF;
    IF publish.headers IS NOT NULL AND jsonb_typeof(publish.headers -> 'ce_id') = 'string' THEN
        v_ce_id := publish.headers ->> 'ce_id';
    END IF;
    FOR h IN
        SELECT e.name, e.val #>> '{}' AS val
        FROM jsonb_each(coalesce(publish.headers, '{}'::jsonb)) WITH ORDINALITY AS e(name, val, ord)
        WHERE (v_ce_id IS NOT NULL OR e.name <> 'ce_id') AND e.name <> 'evproxy.deliver-at'
        ORDER BY e.ord
    LOOP
        v_headers := v_headers
            || int4send(octet_length(convert_to(h.name, 'UTF8'))) || convert_to(h.name, 'UTF8')
            || CASE WHEN h.val IS NULL THEN int4send(-1)
                    ELSE int4send(octet_length(convert_to(h.val, 'UTF8'))) || convert_to(h.val, 'UTF8') END;
    END LOOP;
    IF v_ce_id IS NULL THEN
        v_ce_id := gen_random_uuid()::text;
        v_headers := v_headers || int4send(5) || convert_to('ce_id', 'UTF8')
            || int4send(octet_length(convert_to(v_ce_id, 'UTF8'))) || convert_to(v_ce_id, 'UTF8');
    END IF;

    -- The evproxy.deliver-at header (RFC 3339 or Unix milliseconds), as on
    -- the produce path, when the deliver_at argument is not given; it is
    -- consumed, never published.
    IF publish.deliver_at IS NULL AND publish.headers IS NOT NULL
            AND jsonb_typeof(publish.headers -> 'evproxy.deliver-at') = 'string' THEN
        v_at := publish.headers ->> 'evproxy.deliver-at';
        v_deliver := CASE WHEN v_at ~ '^[0-9]+$' THEN to_timestamp(v_at::numeric / 1000)
                          ELSE v_at::timestamptz END;
    ELSE
        v_deliver := publish.deliver_at;
    END IF;

    -- A ce_id still in the outbox is absorbed: the call returns the pending
    -- row's id and inserts nothing (a retried transaction publishes once).
    INSERT INTO {{schema}}.outbox (ce_id, topic, key, value, headers, deliver_at, priority, processed)
    VALUES (v_ce_id, publish.topic, publish.key, publish.value, v_headers,
            coalesce(date_trunc('milliseconds', v_deliver), now()), coalesce(publish.priority, 0), false)
    ON CONFLICT (ce_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT o.id INTO v_id FROM {{schema}}.outbox o WHERE o.ce_id = v_ce_id;
        RETURN v_id;
    END IF;

    -- NOTIFY is delivered at commit and de-duplicated within a transaction.
    PERFORM pg_notify('{{schema}}_outbox', '');
    RETURN v_id;
END
$$;

-- publish with text key and value (stored as their UTF-8 bytes): what an
-- untyped literal call such as publish('orders', 'k1', '{"a":1}') resolves
-- to.
CREATE FUNCTION {{schema}}.publish(
    topic      text,
    key        text,
    value      text,
    headers    jsonb       DEFAULT NULL,
    deliver_at timestamptz DEFAULT NULL,
    priority   int         DEFAULT 0
) RETURNS bigint
LANGUAGE sql
AS $$
    SELECT {{schema}}.publish(topic, convert_to(key, 'UTF8'), convert_to(value, 'UTF8'), headers, deliver_at, priority)
$$;
