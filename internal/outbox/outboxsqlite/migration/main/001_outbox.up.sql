-- The outbox: records committed before the producer is acknowledged, deleted
-- once published. Times are Unix milliseconds. The logical schema matches
-- outboxpgx's; see the outboxsqlite package doc for the encodings.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
    ce_id           TEXT UNIQUE,                       -- NULL: no event id, never deduplicated
    topic           TEXT    NOT NULL,
    partition       INTEGER NOT NULL DEFAULT -1,
    key             BLOB,
    value           BLOB,
    headers         BLOB,                              -- NULL: no headers
    ts              INTEGER,                           -- NULL: time of publishing
    deliver_at      INTEGER NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    processed       INTEGER NOT NULL DEFAULT 0 CHECK (processed IN (0, 1)),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,        -- 0: never retried
    last_error      TEXT    NOT NULL DEFAULT '',
    blocks          INTEGER NOT NULL DEFAULT 0 CHECK (blocks IN (0, 1)), -- set by a retry
    created_at      INTEGER NOT NULL,
    lane            INTEGER NOT NULL CHECK (lane >= 0 AND lane < 64)
) STRICT;

-- Claims walk this in (priority, id) order and stop after the batch.
CREATE INDEX outbox_claim ON outbox (priority);
-- The earlier rows of one (topic, key), in id order.
CREATE INDEX outbox_topic_key ON outbox (topic, key);
-- Rows retried with blocks set, which hold their key back: few.
CREATE INDEX outbox_blocking ON outbox (topic, key) WHERE blocks = 1;
-- When each row becomes due (OutboxNextDue).
CREATE INDEX outbox_due ON outbox (max(deliver_at, next_attempt_at));

-- Lane leases: one row per lane (outbox.Lanes = 64); owner NULL is free.
CREATE TABLE lane (
    lane       INTEGER PRIMARY KEY CHECK (lane >= 0 AND lane < 64),
    owner      TEXT,
    expires_at INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO lane (lane)
WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 63)
SELECT i FROM n;

-- Records that could not be published, with the message fields of their
-- outbox row except deliver_at.
CREATE TABLE dead_letter (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ce_id      TEXT,
    topic      TEXT    NOT NULL,
    partition  INTEGER NOT NULL DEFAULT -1,
    key        BLOB,
    value      BLOB,
    headers    BLOB,
    ts         INTEGER,
    priority   INTEGER NOT NULL DEFAULT 0,
    processed  INTEGER NOT NULL DEFAULT 0 CHECK (processed IN (0, 1)),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,                        -- of the outbox row
    stage      TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    plugin     TEXT    NOT NULL DEFAULT '',
    failed_at  INTEGER NOT NULL,
    published  INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1))
) STRICT;

CREATE INDEX dead_letter_failed_at ON dead_letter (failed_at);
CREATE INDEX dead_letter_topic ON dead_letter (topic);
CREATE INDEX dead_letter_unpublished ON dead_letter (id) WHERE published = 0;
