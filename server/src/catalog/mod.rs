//! The product catalogue: what a site sells, for recommendations in the browser. A site
//! replaces its whole catalogue at once, from a JSON array of products or a CSV file with a
//! header row (checked by [`validate`]): `PUT /v1/catalog` with the secret key, or
//! `nudge-server catalog load --site ID --file F` ([`api`]). Pages read it as a compact,
//! cached feed with the products' popularity ([`feed`], `GET /v1/catalog/feed`).

pub mod api;
pub mod csv;
pub mod feed;
pub mod validate;

use serde_json::Value;

pub use validate::Product;

use crate::store::{on_db, Db, StoreError};

/// How a catalogue document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of product objects (or `{"products": [...]}`).
    Json,
    /// CSV with a header row.
    Csv,
    /// Not said: JSON when the text starts with `[` or `{`, else CSV.
    Unknown,
}

impl Format {
    /// The format a file name's extension names.
    pub fn of_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Format::Csv
        } else if lower.ends_with(".json") {
            Format::Json
        } else {
            Format::Unknown
        }
    }
}

/// Reads and checks a catalogue document: the products, or the first mistake (the line of
/// a syntax error; the row and field of a bad value).
pub fn parse_document(text: &str, format: Format) -> Result<Vec<Product>, String> {
    let format = match format {
        Format::Unknown if text.trim_start_matches('\u{feff}').trim_start().starts_with(['[', '{']) => Format::Json,
        Format::Unknown => Format::Csv,
        f => f,
    };
    match format {
        Format::Json => {
            let document: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            validate::from_json(&document)
        }
        _ => validate::from_csv(text),
    }
}

/// Rows per `INSERT` when a catalogue is stored (each statement takes them as one JSON text).
const INSERT_CHUNK: usize = 1_000;

/// Replaces a site's catalogue with `products` (already checked), in the caller's
/// transaction; returns the catalogue's new version.
pub async fn replace(db: &mut Db<'_>, site_id: &str, products: &[Product], now_ms: i64) -> Result<String, StoreError> {
    let version = format!("{now_ms:x}-{}", crate::sites::random_hex(6).unwrap_or_default());
    on_db!(db, |c, _d| {
        sqlx::query("DELETE FROM products WHERE site_id = $1").bind(site_id).execute(&mut *c).await?;
    });
    for (chunk_index, chunk) in products.chunks(INSERT_CHUNK).enumerate() {
        let rows: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!([
                    p.id,
                    (chunk_index * INSERT_CHUNK + i) as i64,
                    p.name,
                    p.category,
                    p.brand,
                    p.price,
                    p.currency,
                    p.image,
                    p.url,
                    p.in_stock
                ])
            })
            .collect();
        let rows = Value::Array(rows).to_string();
        on_db!(db, |c, d| {
            let sql = match d {
                crate::store::Dialect::Sqlite => {
                    "INSERT INTO products (site_id, product_id, position, name, category, brand, price, currency, \
                     image_url, url, in_stock, updated_ms) \
                     SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
                     json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), \
                     json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'), \
                     json_extract(value, '$[9]'), $3 FROM json_each($2)"
                }
                crate::store::Dialect::Postgres => {
                    "INSERT INTO products (site_id, product_id, position, name, category, brand, price, currency, \
                     image_url, url, in_stock, updated_ms) \
                     SELECT $1, r->>0, (r->>1)::bigint, r->>2, r->>3, r->>4, (r->>5)::double precision, r->>6, \
                     r->>7, r->>8, (r->>9)::boolean, $3 FROM jsonb_array_elements($2::jsonb) AS r"
                }
            };
            sqlx::query(sql).bind(site_id).bind(&rows).bind(now_ms).execute(&mut *c).await?;
        });
    }
    on_db!(db, |c, _d| {
        sqlx::query(
            "INSERT INTO catalogs (site_id, version, products, updated_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (site_id) DO UPDATE SET version = excluded.version, products = excluded.products, \
             updated_ms = excluded.updated_ms",
        )
        .bind(site_id)
        .bind(&version)
        .bind(products.len() as i64)
        .bind(now_ms)
        .execute(&mut *c)
        .await?;
    });
    Ok(version)
}

/// The version of a site's catalogue (`""` when it never loaded one); it changes with every
/// load.
pub async fn version(db: &mut Db<'_>, site_id: &str) -> Result<String, StoreError> {
    let v: Option<String> = on_db!(db, |c, _d| {
        sqlx::query_scalar("SELECT version FROM catalogs WHERE site_id = $1")
            .bind(site_id)
            .fetch_optional(&mut *c)
            .await?
    });
    Ok(v.unwrap_or_default())
}

/// A site's products, in the order the site gave them.
pub async fn load(db: &mut Db<'_>, site_id: &str) -> Result<Vec<Product>, StoreError> {
    type Row = (String, String, String, Option<String>, f64, Option<String>, Option<String>, Option<String>, bool);
    let rows: Vec<Row> = on_db!(db, |c, _d| {
        sqlx::query_as(
            "SELECT product_id, name, category, brand, price, currency, image_url, url, in_stock \
             FROM products WHERE site_id = $1 ORDER BY position",
        )
        .bind(site_id)
        .fetch_all(&mut *c)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, name, category, brand, price, currency, image, url, in_stock)| Product {
            id,
            name,
            category,
            brand,
            price,
            currency,
            image,
            url,
            in_stock,
        })
        .collect())
}
