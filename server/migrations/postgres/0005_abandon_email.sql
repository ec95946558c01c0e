-- Issue 5: cart abandonment timers and email jobs.

-- How far a server-side consumer ('abandon', 'email') has followed a site's change feed
-- (see crate::follow): moved in the same transaction that records what the page brought.
CREATE TABLE feed_cursors (
    consumer    TEXT NOT NULL,
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    cursor_tx   BIGINT NOT NULL,
    cursor_seq  BIGINT NOT NULL,
    PRIMARY KEY (consumer, site_id)
);

-- One timer per person with a non-empty cart: due at the last cart activity plus the
-- site's cart_abandon_minutes. status is 'pending' or 'fired' (a fired cart stays fired
-- until an order or an emptied cart deletes the row: once per cart). claims counts the
-- times the row was claimed; it fences a node whose lease ran out.
CREATE TABLE cart_timers (
    site_id           TEXT NOT NULL,
    person_key        TEXT NOT NULL,
    last_activity_ms  BIGINT NOT NULL,
    due_ms            BIGINT NOT NULL,
    status            TEXT NOT NULL,
    claims            BIGINT NOT NULL,
    PRIMARY KEY (site_id, person_key)
);
CREATE INDEX cart_timers_due ON cart_timers (due_ms) WHERE status = 'pending';

-- Emails to send: one per (site, kind, message that caused it), never two. status is
-- 'pending', 'sent', 'skipped' (no consent, no address, no longer relevant) or 'failed';
-- a claimed row's next_attempt_ms is its lease and attempts its fencing token.
CREATE TABLE email_jobs (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id            TEXT NOT NULL,
    kind               TEXT NOT NULL,
    source_message_id  TEXT NOT NULL,
    person_key         TEXT NOT NULL,
    status             TEXT NOT NULL,
    attempts           BIGINT NOT NULL,
    created_ms         BIGINT NOT NULL,
    first_attempt_ms   BIGINT,
    next_attempt_ms    BIGINT NOT NULL,
    recipient          TEXT,
    last_error         TEXT,
    done_ms            BIGINT,
    UNIQUE (site_id, kind, source_message_id)
);
CREATE INDEX email_jobs_due ON email_jobs (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX email_jobs_by_person ON email_jobs (site_id, person_key);
