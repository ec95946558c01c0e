-- Sites and their keys. The secret key is kept (not only a hash) because the server must
-- verify userHash = HMAC-SHA256(secret key, userId); it is compared in constant time.
CREATE TABLE sites (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    write_key   TEXT NOT NULL UNIQUE,
    secret_key  TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Browser origins allowed to send with a site's write key ('*' allows any).
CREATE TABLE site_origins (
    site_id  TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    origin   TEXT NOT NULL,
    PRIMARY KEY (site_id, origin)
);
CREATE INDEX site_origins_by_origin ON site_origins (origin);

-- Every accepted message, once per (site, messageId). Keys start with site_id so the table
-- can be distributed by site (Citus) later.
--
-- `seq` is assigned at insert, but concurrent transactions commit in any order, so on
-- PostgreSQL `seq > cursor` alone would skip rows that commit late. `tx` records the
-- inserting transaction: a change feed reads only rows with
-- `tx < pg_snapshot_xmin(pg_current_snapshot())` (every such transaction has finished) and
-- orders by (tx, seq); its cursor is the (tx, seq) pair of the last row returned.
CREATE TABLE events (
    site_id       TEXT NOT NULL,
    seq           BIGINT GENERATED ALWAYS AS IDENTITY,
    tx            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    message_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    event         TEXT,
    user_id       TEXT,
    anonymous_id  TEXT,
    timestamp_ms  BIGINT NOT NULL,
    received_ms   BIGINT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (site_id, seq),
    UNIQUE (site_id, message_id)
);
CREATE INDEX events_by_user ON events (site_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anonymous ON events (site_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_by_feed ON events (site_id, tx, seq);
