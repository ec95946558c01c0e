-- Phase 3: webhooks.

-- A site's webhook: a URL, the messages it wants (a JSON array of track event names, or
-- ["*"] for every message) and the secret its deliveries are signed with. (cursor_tx,
-- cursor_seq) is how far into the site's change feed deliveries have been enqueued; it
-- moves in the same transaction that inserts them (cursor_tx is 0 on SQLite).
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    cursor_tx   INTEGER NOT NULL,
    cursor_seq  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_site ON webhooks (site_id);

-- The delivery queue: one row per (webhook, message), never two (the unique key is what
-- makes enqueueing exactly-once). The payload is built from the stored message when it is
-- sent, so erasing a person also empties their pending deliveries. status is 'pending',
-- 'delivered' or 'failed'; a claimed row's next_attempt_ms is its lease.
CREATE TABLE webhook_deliveries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    site_id           TEXT NOT NULL,
    message_id        TEXT NOT NULL,
    event             TEXT,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    created_ms        INTEGER NOT NULL,
    first_attempt_ms  INTEGER,
    last_attempt_ms   INTEGER,
    next_attempt_ms   INTEGER NOT NULL,
    last_status       INTEGER,
    last_error        TEXT,
    done_ms           INTEGER,
    UNIQUE (webhook_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (webhook_id, status, id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (done_ms) WHERE status <> 'pending';
