-- Live relays: every LaneAcquire records its owner here until its lease
-- would expire (unix ms), so that a relay holding no lane yet still counts
-- in the others' fair share.
CREATE TABLE relay (
    owner      TEXT PRIMARY KEY,
    seen_until INTEGER NOT NULL
);
