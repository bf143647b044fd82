-- Live relays: every LaneAcquire records its owner here until its lease
-- would expire, so that a replica that holds no lane yet still counts when
-- the others compute their fair share of the lanes (and give some up).
CREATE TABLE {{schema}}.relay (
    owner      text PRIMARY KEY,
    seen_until timestamptz NOT NULL
);
