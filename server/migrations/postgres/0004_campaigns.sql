-- Issue 5: campaigns and coupons.

-- A site's campaigns, each as the JSON object the site sent (validated), in the order it
-- sent them (`position`). They go out in the public site config; changing them does not
-- change the thresholds tag, so profiles are not folded again.
CREATE TABLE campaigns (
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    position    BIGINT NOT NULL,
    body        TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (site_id, id)
);

-- Unique single-use codes issued for campaigns whose offer is {"unique": true}: one per
-- (site, campaign, email lowercased), so asking again gives the same code. Redeemed by the
-- first stored `Order Completed` naming it before it expires (redeemed_* columns).
CREATE TABLE coupons (
    site_id              TEXT NOT NULL,
    code                 TEXT NOT NULL,
    campaign_id          TEXT NOT NULL,
    email                TEXT NOT NULL,
    user_id              TEXT,
    anonymous_id         TEXT,
    percent              DOUBLE PRECISION,
    amount               DOUBLE PRECISION,
    currency             TEXT,
    issued_ms            BIGINT NOT NULL,
    expires_ms           BIGINT NOT NULL,
    redeemed_ms          BIGINT,
    redeemed_message_id  TEXT,
    order_id             TEXT,
    revenue              DOUBLE PRECISION,
    PRIMARY KEY (site_id, code),
    UNIQUE (site_id, campaign_id, email)
);
CREATE INDEX coupons_by_user ON coupons (site_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX coupons_by_anonymous ON coupons (site_id, anonymous_id) WHERE anonymous_id IS NOT NULL;

-- The events a campaign report reads, without scanning the whole log of a site.
CREATE INDEX events_for_campaign_reports ON events (site_id, event, timestamp_ms)
    WHERE event IN ('Popup Shown', 'Popup Dismissed', 'Popup Converted', 'Popup Held Out',
                    'Coupon Reused', 'Coupon Expired Used');
