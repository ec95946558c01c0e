-- Sites and their keys. The secret key is kept (not only a hash) because the server must
-- verify userHash = HMAC-SHA256(secret key, userId); it is compared in constant time.
CREATE TABLE sites (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    write_key   TEXT NOT NULL UNIQUE,
    secret_key  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- Browser origins allowed to send with a site's write key ('*' allows any).
CREATE TABLE site_origins (
    site_id  TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    origin   TEXT NOT NULL,
    PRIMARY KEY (site_id, origin)
);
CREATE INDEX site_origins_by_origin ON site_origins (origin);

-- Every accepted message, once per (site, messageId). `seq` only grows (AUTOINCREMENT never
-- reuses a value, even after erasure deletes rows), and SQLite has one writer at a time, so
-- seq order is commit order: a change feed can use `seq > cursor` directly.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id       TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    type          TEXT NOT NULL,
    event         TEXT,
    user_id       TEXT,
    anonymous_id  TEXT,
    timestamp_ms  INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    UNIQUE (site_id, message_id)
);
CREATE INDEX events_by_user ON events (site_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX events_by_anonymous ON events (site_id, anonymous_id) WHERE anonymous_id IS NOT NULL;
CREATE INDEX events_by_site_seq ON events (site_id, seq);
