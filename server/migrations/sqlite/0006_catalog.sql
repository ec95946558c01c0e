-- Issue 6: the product catalogue.

-- A site's products, replaced as a whole by `PUT /v1/catalog` or `nudge-server catalog
-- load` (validated first). `position` keeps the site's order, which the feed keeps.
-- in_stock is 0 or 1.
CREATE TABLE products (
    site_id     TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    product_id  TEXT NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    brand       TEXT,
    price       REAL NOT NULL,
    currency    TEXT,
    image_url   TEXT,
    url         TEXT,
    in_stock    INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (site_id, product_id)
);

-- One row per site that loaded a catalogue: `version` changes with every load, so a node
-- knows with one lookup whether the feed it built is still the catalogue's.
CREATE TABLE catalogs (
    site_id     TEXT PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    products    INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- The events product popularity counts, without scanning the whole log of a site.
CREATE INDEX events_for_popularity ON events (site_id, event, timestamp_ms)
    WHERE event IN ('Product Viewed', 'Product Added', 'Order Completed');
