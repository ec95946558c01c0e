-- Phase 2: identities, folded profiles, erasures and site config.

-- Secret keys are looked up on every secret-key API request.
CREATE UNIQUE INDEX sites_by_secret_key ON sites (secret_key);

-- An anonymous id (one browser) belongs to the user it was first identified as (identify
-- with both ids, or alias previousId -> userId). Its anonymous-only events fold into that
-- user's profile.
CREATE TABLE identities (
    site_id       TEXT NOT NULL,
    anonymous_id  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (site_id, anonymous_id)
);
CREATE INDEX identities_by_user ON identities (site_id, user_id);

-- One folded profile per person: person_id is 'u:' || userId, or 'a:' || anonymousId for a
-- browser not yet identified. `state` is the core's stored profile; (last_at,
-- last_message_id) is the last event folded, so later events fold incrementally and earlier
-- ones cause a fold of the whole history. `config_tag` names the thresholds it was folded
-- with. The rest is kept in columns for segment listings.
CREATE TABLE profiles (
    site_id          TEXT NOT NULL,
    person_id        TEXT NOT NULL,
    user_id          TEXT,
    anonymous_id     TEXT,
    state            TEXT NOT NULL,
    last_at          INTEGER NOT NULL,
    last_message_id  TEXT NOT NULL,
    first_seen_ms    INTEGER NOT NULL,
    events           INTEGER NOT NULL,
    cart_value       REAL NOT NULL,
    config_tag       TEXT NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (site_id, person_id)
);

-- People erased through the secret-key API or the SDK's forget(): kind 'user' or
-- 'anonymous'. Late events naming them are dropped and never rebuild a profile.
CREATE TABLE erasures (
    site_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    erased_ms  INTEGER NOT NULL,
    PRIMARY KEY (site_id, kind, id)
);

-- A site's public config: stage threshold overrides (JSON object; the rest default).
CREATE TABLE site_config (
    site_id     TEXT PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    thresholds  TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL
);
