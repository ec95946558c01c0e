//! Checking a catalogue before it is stored: every row, every field, with the first mistake
//! named by its row (1-based, and the CSV line) and field, e.g.
//! `row 3 (line 4, id "tv-55").price: must be a number of at least 0`. Unknown fields and
//! columns are refused too, so that a typo (`catgory`) is an error rather than a product
//! without a category.

use std::collections::HashMap;

use serde_json::Value;

use super::csv;

/// Most products a site may have.
pub const MAX_PRODUCTS: usize = 50_000;
/// Longest product id.
pub const MAX_ID: usize = 128;
/// Longest product name.
pub const MAX_NAME: usize = 300;
/// Longest category (and brand).
pub const MAX_CATEGORY: usize = 100;
/// Longest URL or path (`image`, `url`).
pub const MAX_URL: usize = 2_048;

/// The fields of a product, as a JSON object names them or a CSV header row does. Also read:
/// `product_id` for `id`, `image_url` for `image`, `inStock` for `in_stock`.
pub const FIELDS: [&str; 9] = ["id", "name", "category", "brand", "price", "currency", "image", "url", "in_stock"];

/// A checked product.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// The site's product id (what events carry as `product_id`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Brand, if given.
    pub brand: Option<String>,
    /// Price, finite and at least 0.
    pub price: f64,
    /// ISO 4217 code, if given.
    pub currency: Option<String>,
    /// Image URL (`http(s)://` or a path on the site), if given.
    pub image: Option<String>,
    /// Product page URL (`http(s)://` or a path on the site), if given.
    pub url: Option<String>,
    /// Whether it can be bought now (default true).
    pub in_stock: bool,
}

/// The field a name stands for (`product_id` → `id`), if it is one.
fn canonical(name: &str) -> Option<&'static str> {
    match name {
        "product_id" => Some("id"),
        "image_url" => Some("image"),
        "inStock" => Some("in_stock"),
        _ => FIELDS.iter().copied().find(|f| *f == name),
    }
}

/// Reads a JSON catalogue: an array of product objects, or `{"products": [...]}`.
pub fn from_json(document: &Value) -> Result<Vec<Product>, String> {
    let list = match document {
        Value::Array(list) => list,
        Value::Object(m) => match m.get("products") {
            Some(Value::Array(list)) if m.len() == 1 => list,
            _ => return Err("expected a JSON array of products (or {\"products\": [...]})".into()),
        },
        _ => return Err("expected a JSON array of products (or {\"products\": [...]})".into()),
    };
    check_count(list.len())?;
    let mut products = Vec::with_capacity(list.len());
    let mut ids = HashMap::new();
    for (i, item) in list.iter().enumerate() {
        let row = Row { number: i + 1, line: None, id: item.get("id").or_else(|| item.get("product_id")) };
        let Value::Object(map) = item else { return Err(format!("{}: must be an object", row.place())) };
        let mut fields: HashMap<&'static str, Cell<'_>> = HashMap::new();
        for (name, value) in map {
            let Some(field) = canonical(name) else {
                return Err(row.err(name, format!("unknown field (known: {})", FIELDS.join(", "))));
            };
            if fields.insert(field, Cell::Json(value)).is_some() {
                return Err(row.err(name, format!("is given twice (as {field} and another name)")));
            }
        }
        products.push(check_unique(check_row(&row, &fields)?, &row, &mut ids)?);
    }
    Ok(products)
}

/// Reads a CSV catalogue: a header row naming the columns (any order; `id`, `name`,
/// `category` and `price` are required), then one product per row. Empty cells are absent
/// values; `in_stock` is true/false, 1/0, yes/no (empty: true).
pub fn from_csv(text: &str) -> Result<Vec<Product>, String> {
    let records = csv::records(text)?;
    let Some((header, rows)) = records.split_first() else {
        return Err(
            "the CSV is empty: expected a header row such as id,name,category,brand,price,image,url,in_stock".into()
        );
    };
    let mut columns = Vec::with_capacity(header.fields.len());
    for name in &header.fields {
        let name = name.trim();
        let Some(field) = canonical(name).or_else(|| canonical(&name.to_ascii_lowercase())) else {
            return Err(format!("header: unknown column {name:?} (known: {})", FIELDS.join(", ")));
        };
        if columns.contains(&field) {
            return Err(format!("header: column {field} is given twice"));
        }
        columns.push(field);
    }
    for required in ["id", "name", "category", "price"] {
        if !columns.contains(&required) {
            return Err(format!("header: the column {required} is required"));
        }
    }
    check_count(rows.len())?;
    let id_column = columns.iter().position(|c| *c == "id");
    let mut products = Vec::with_capacity(rows.len());
    let mut ids = HashMap::new();
    for (i, record) in rows.iter().enumerate() {
        let id = id_column.and_then(|c| record.fields.get(c)).map(|s| Value::String(s.trim().to_string()));
        let row = Row { number: i + 1, line: Some(record.line), id: id.as_ref() };
        if record.fields.len() != columns.len() {
            return Err(format!(
                "{}: has {} fields, the header has {} (a field with a comma must be in double quotes)",
                row.place(),
                record.fields.len(),
                columns.len()
            ));
        }
        let fields: HashMap<&'static str, Cell<'_>> =
            columns.iter().zip(&record.fields).map(|(c, v)| (*c, Cell::Text(v.as_str()))).collect();
        products.push(check_unique(check_row(&row, &fields)?, &row, &mut ids)?);
    }
    Ok(products)
}

fn check_count(n: usize) -> Result<(), String> {
    if n > MAX_PRODUCTS {
        return Err(format!("at most {MAX_PRODUCTS} products per site, not {n}"));
    }
    Ok(())
}

fn check_unique(product: Product, row: &Row<'_>, ids: &mut HashMap<String, usize>) -> Result<Product, String> {
    if let Some(first) = ids.insert(product.id.clone(), row.number) {
        return Err(row.err("id", format!("{:?} is also the id of row {first} (ids are unique per site)", product.id)));
    }
    Ok(product)
}

/// Where a row is, for errors.
struct Row<'a> {
    number: usize,
    line: Option<usize>,
    id: Option<&'a Value>,
}

impl Row<'_> {
    fn place(&self) -> String {
        let id = match self.id {
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ID => Some(format!("id {s:?}")),
            Some(Value::Number(n)) => Some(format!("id \"{n}\"")),
            _ => None,
        };
        match (self.line, id) {
            (Some(line), Some(id)) => format!("row {} (line {line}, {id})", self.number),
            (Some(line), None) => format!("row {} (line {line})", self.number),
            (None, Some(id)) => format!("row {} ({id})", self.number),
            (None, None) => format!("row {}", self.number),
        }
    }

    fn err(&self, field: &str, message: impl std::fmt::Display) -> String {
        format!("{}.{field}: {message}", self.place())
    }
}

/// A value as read: from JSON, or the text of a CSV cell.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Json(&'a Value),
    Text(&'a str),
}

fn check_row(row: &Row<'_>, fields: &HashMap<&'static str, Cell<'_>>) -> Result<Product, String> {
    let text = |field: &str, max: usize, required: bool| -> Result<Option<String>, String> {
        let value = match fields.get(field) {
            None | Some(Cell::Json(Value::Null)) => None,
            Some(Cell::Text(s)) => Some(s.trim().to_string()),
            Some(Cell::Json(Value::String(s))) => Some(s.trim().to_string()),
            Some(Cell::Json(Value::Number(n))) if field == "id" && (n.is_u64() || n.is_i64()) => Some(n.to_string()),
            Some(Cell::Json(_)) => return Err(row.err(field, "must be a string")),
        };
        match value {
            Some(s) if s.is_empty() && required => Err(row.err(field, "is required and may not be empty")),
            Some(s) if s.is_empty() => Ok(None),
            None if required => Err(row.err(field, "is required")),
            Some(s) if s.chars().count() > max => Err(row.err(field, format!("must be at most {max} characters"))),
            Some(s) if s.chars().any(char::is_control) => Err(row.err(field, "must not contain control characters")),
            v => Ok(v),
        }
    };
    let id = text("id", MAX_ID, true)?.unwrap_or_default();
    let name = text("name", MAX_NAME, true)?.unwrap_or_default();
    let category = text("category", MAX_CATEGORY, true)?.unwrap_or_default();
    let brand = text("brand", MAX_CATEGORY, false)?;
    let price = match fields.get("price") {
        Some(Cell::Json(Value::Number(n))) => n.as_f64(),
        Some(Cell::Text(s)) if !s.trim().is_empty() => s.trim().parse::<f64>().ok(),
        None | Some(Cell::Json(Value::Null)) | Some(Cell::Text(_)) => return Err(row.err("price", "is required")),
        Some(Cell::Json(_)) => None,
    };
    let price = match price {
        Some(p) if p.is_finite() && p >= 0.0 => p,
        _ => return Err(row.err("price", "must be a number of at least 0")),
    };
    let currency = text("currency", 3, false)?;
    if let Some(c) = &currency {
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(row.err("currency", "must be an ISO 4217 code such as \"USD\""));
        }
    }
    let image = text("image", MAX_URL, false)?;
    let url = text("url", MAX_URL, false)?;
    for (field, value) in [("image", &image), ("url", &url)] {
        if value.as_deref().is_some_and(|u| !is_link(u)) {
            return Err(row.err(field, "must be an http:// or https:// URL, or a path on the site (starting with /)"));
        }
    }
    let in_stock = match fields.get("in_stock") {
        None | Some(Cell::Json(Value::Null)) => true,
        Some(Cell::Json(Value::Bool(b))) => *b,
        Some(Cell::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "true" | "1" | "yes" | "y" => true,
            "false" | "0" | "no" | "n" => false,
            _ => return Err(row.err("in_stock", "must be true or false (or 1/0, yes/no)")),
        },
        Some(Cell::Json(_)) => return Err(row.err("in_stock", "must be true or false")),
    };
    Ok(Product { id, name, category, brand, price, currency, image, url, in_stock })
}

/// Whether `s` is an `http://` or `https://` URL, or a path on the site (`/...` but not
/// `//host`), without spaces.
pub fn is_link(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let absolute = (lower.starts_with("https://") && s.len() > 8) || (lower.starts_with("http://") && s.len() > 7);
    let path = s.starts_with('/') && !s.starts_with("//");
    (absolute || path) && !s.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_rows_are_read_with_defaults_and_aliases() {
        let products = from_json(&json!([
            {"id": "tv-1", "name": " Big TV ", "category": "TVs", "brand": "Acme", "price": 499, "currency": "EUR",
             "image": "https://cdn.example/tv.png", "url": "/p/tv-1", "in_stock": false},
            {"product_id": 7, "name": "Cable", "category": "Home", "price": 0.5, "image_url": "/img/7.svg", "inStock": true}
        ]))
        .unwrap();
        assert_eq!(products[0].name, "Big TV");
        assert_eq!((products[0].price, products[0].in_stock), (499.0, false));
        assert_eq!(products[1].id, "7");
        assert_eq!((products[1].brand.as_deref(), products[1].image.as_deref()), (None, Some("/img/7.svg")));
        assert!(products[1].in_stock);
        assert_eq!(from_json(&json!({"products": []})).unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_row_and_field() {
        let good = json!({"id": "tv-1", "name": "TV", "category": "TVs", "price": 1});
        let cases = [
            (json!({"price": -1}), "row 2 (id \"tv-1\").price: must be a number of at least 0"),
            (json!({"price": "10"}), ".price: must be a number"),
            (json!({"id": ""}), "row 2.id: is required"),
            (json!({"id": "x".repeat(129)}), "row 2.id: must be at most 128"),
            (json!({"name": "n".repeat(301)}), ".name: must be at most 300"),
            (json!({"category": "c".repeat(101)}), ".category: must be at most 100"),
            (json!({"url": "javascript:alert(1)"}), ".url: must be an http"),
            (json!({"image": "//evil.example/x.png"}), ".image: must be an http"),
            (json!({"currency": "usd"}), ".currency: must be an ISO 4217"),
            (json!({"catgory": "x"}), ".catgory: unknown field"),
            (json!({"in_stock": "yes"}), ".in_stock: must be true or false"),
        ];
        for (change, expected) in cases {
            let mut bad = json!({"id": "tv-1", "name": "TV", "category": "TVs", "price": 1});
            for (k, v) in change.as_object().unwrap() {
                bad[k] = v.clone();
            }
            let first = json!({"id": "ok", "name": "OK", "category": "TVs", "price": 1});
            let e = from_json(&json!([first, bad])).unwrap_err();
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
        let e = from_json(&json!([good.clone(), good])).unwrap_err();
        assert_eq!(e, "row 2 (id \"tv-1\").id: \"tv-1\" is also the id of row 1 (ids are unique per site)");
        let missing = json!([{"id": "a", "name": "A", "category": "C"}]);
        assert_eq!(from_json(&missing).unwrap_err(), "row 1 (id \"a\").price: is required");
        assert!(from_json(&json!({"items": []})).is_err());
        let many: Vec<Value> = (0..=MAX_PRODUCTS).map(|i| json!({"id": i})).collect();
        assert!(from_json(&Value::Array(many)).unwrap_err().contains("at most 50000"));
    }

    #[test]
    fn csv_rows_with_quotes_commas_and_named_errors() {
        let text = "id,name,category,brand,price,image,url,in_stock\n\
                    tv-1,\"TV 55\"\", 4K, \"\"Smart\"\"\",TVs,Acme,499.99,/img/tv.svg,https://shop.example/tv-1,true\n\
                    cam-2,Camera,Cameras,,120,,,0\n";
        let products = from_csv(text).unwrap();
        assert_eq!(products[0].name, "TV 55\", 4K, \"Smart\"");
        assert_eq!(products[0].price, 499.99);
        assert_eq!(
            (products[1].brand.as_deref(), products[1].in_stock, products[1].url.as_deref()),
            (None, false, None)
        );
        let e = from_csv("id,name,category,price\na,A,C,1\nb,B,C,free\n").unwrap_err();
        assert_eq!(e, "row 2 (line 3, id \"b\").price: must be a number of at least 0");
        let e = from_csv("id,name,category,price\na,A,C,1\nb,B, with comma,C,1\n").unwrap_err();
        assert!(e.starts_with("row 2 (line 3, id \"b\"): has 5 fields, the header has 4"), "{e}");
        assert!(from_csv("id,name,price\n").unwrap_err().contains("category is required"));
        assert!(from_csv("id,name,category,price,colour\n").unwrap_err().contains("unknown column \"colour\""));
        assert!(from_csv("").is_err());
        assert_eq!(from_csv("ID,Name,Category,Price,Image_URL\n").unwrap(), vec![]);
    }

    #[test]
    fn links() {
        for ok in ["https://a.example/x", "HTTP://a.example", "/p/1", "/"] {
            assert!(is_link(ok), "{ok}");
        }
        for bad in ["https://", "//a.example", "javascript:x", "p/1", "/a b", "ftp://a"] {
            assert!(!is_link(bad), "{bad}");
        }
    }
}
