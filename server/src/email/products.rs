//! Products for emails. When the site has a catalogue, [`ranked`] ranks it for the person
//! with the core's recommendations (`nudge::recommend`, the ranking their browser uses for
//! slots), from the profile their events fold into. Without one, products come from the
//! person's own events: what they viewed (`Product Viewed`, `Product Clicked`,
//! `Product Added`), with the name, price, URL and image URL those events carried;
//! recommended products are the ones viewed in the person's top categories, similar
//! products after an order the ones viewed in the order's categories ([`recommend`]).
//! Purchased and in-cart products are left out either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use nudge::config::Thresholds;
use nudge::profile::Profile;
use nudge::recommend::{rank, Catalog, Request, Strategy};

use super::person::Message;
use crate::catalog;

/// Events that show a product to the person.
const VIEWS: [&str; 3] = ["Product Viewed", "Product Clicked", "Product Added"];
/// Most products an email lists.
pub const MAX: usize = 4;
/// Categories that count as the person's top ones.
const TOP_CATEGORIES: usize = 3;

/// A product as events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// `product_id` (or `sku`).
    pub id: String,
    /// Its name (the id when no event named it).
    pub name: String,
    /// Its category, if given.
    pub category: Option<String>,
    /// Its price, if given.
    pub price: Option<f64>,
    /// Its currency, if given.
    pub currency: Option<String>,
    /// Its page (http or https only).
    pub url: Option<String>,
    /// Its image (http or https only).
    pub image_url: Option<String>,
}

/// An `http(s)` URL, else `None` (no `javascript:` or `data:` links in an email).
pub fn web_url(v: Option<&Value>) -> Option<String> {
    let text = v?.as_str()?.trim();
    let url = reqwest::Url::parse(text).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

fn id_of(p: &Value) -> Option<String> {
    let id = p.get("product_id").or_else(|| p.get("sku"))?;
    match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A product from e-commerce properties (a product object or an event's properties).
pub fn from_props(p: &Value) -> Option<Product> {
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let id = id_of(p)?;
    Some(Product {
        name: text("name").unwrap_or_else(|| id.clone()),
        id,
        category: text("category"),
        price: p.get("price").and_then(Value::as_f64).filter(|v| v.is_finite() && *v >= 0.0),
        currency: text("currency"),
        url: web_url(p.get("url")),
        image_url: web_url(p.get("image_url")),
    })
}

/// Every product the person's events describe, the latest description of each (missing
/// fields filled from earlier ones).
pub fn known(messages: &[Message]) -> HashMap<String, Product> {
    let mut out: HashMap<String, Product> = HashMap::new();
    for m in messages {
        let props = m.props();
        let mut found: Vec<Product> = from_props(props).into_iter().collect();
        if let Some(list) = props.get("products").and_then(Value::as_array) {
            found.extend(list.iter().filter_map(from_props));
        }
        for p in found {
            match out.get_mut(&p.id) {
                None => {
                    out.insert(p.id.clone(), p);
                }
                Some(old) => {
                    let keep = old.clone();
                    *old = Product {
                        name: if p.name != p.id { p.name } else { keep.name },
                        category: p.category.or(keep.category),
                        price: p.price.or(keep.price),
                        currency: p.currency.or(keep.currency),
                        url: p.url.or(keep.url),
                        image_url: p.image_url.or(keep.image_url),
                        id: keep.id,
                    };
                }
            }
        }
    }
    out
}

/// Ids of the products in the person's orders.
pub fn purchased(messages: &[Message]) -> BTreeSet<String> {
    messages
        .iter()
        .filter(|m| m.track() == Some("Order Completed"))
        .flat_map(|m| m.props().get("products").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|p| id_of(&p))
        .collect()
}

/// Products the person viewed in `categories` (their top ones when `None`), most recent
/// first, without those in `exclude`; at most [`MAX`].
pub fn recommend(
    messages: &[Message],
    categories: Option<&BTreeSet<String>>,
    exclude: &BTreeSet<String>,
) -> Vec<Product> {
    let catalogue = known(messages);
    let viewed: Vec<&Message> = messages.iter().filter(|m| m.track().is_some_and(|t| VIEWS.contains(&t))).collect();
    let top: BTreeSet<String> = match categories {
        Some(c) => c.clone(),
        None => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for m in &viewed {
                if let Some(c) = m.props().get("category").and_then(Value::as_str) {
                    *counts.entry(c.to_string()).or_default() += 1;
                }
            }
            let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.into_iter().take(TOP_CATEGORIES).map(|(c, _)| c).collect()
        }
    };
    let mut out: Vec<Product> = Vec::new();
    for m in viewed.iter().rev() {
        let Some(id) = id_of(m.props()) else { continue };
        let Some(p) = catalogue.get(&id) else { continue };
        let in_top = p.category.as_ref().is_some_and(|c| top.contains(c));
        if in_top && !exclude.contains(&id) && !out.iter().any(|o| o.id == id) {
            out.push(p.clone());
            if out.len() == MAX {
                break;
            }
        }
    }
    out
}

/// The product with its link tagged for attribution: `utm_source=nudge`,
/// `utm_medium=email` and `utm_campaign` (the email's kind, `cart-reminder`, say), replacing
/// any `utm_` parameters it had. The SDK reads them into the session's campaign, so a visit
/// from an email shows as one.
pub fn with_utm(mut p: Product, campaign: &str) -> Product {
    p.url = p.url.map(|u| match reqwest::Url::parse(&u) {
        Ok(mut url) => {
            let kept: Vec<(String, String)> =
                url.query_pairs().filter(|(k, _)| !k.starts_with("utm_")).map(|(k, v)| (k.into(), v.into())).collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair("utm_source", "nudge")
                .append_pair("utm_medium", "email")
                .append_pair("utm_campaign", campaign);
            url.to_string()
        }
        Err(_) => u,
    });
    p
}

/// A site's catalogue as emails use it: the stored products, and the core's ranking form of
/// them. Made once per site in a worker round, not once per email.
pub struct SiteCatalogue {
    /// The stored products, in the site's order.
    pub products: Vec<catalog::Product>,
    core: Catalog,
}

impl SiteCatalogue {
    /// The ranking form of `products` (the emails have no popularity counts).
    pub fn new(products: Vec<catalog::Product>) -> SiteCatalogue {
        let core = Catalog::new(
            products
                .iter()
                .map(|p| nudge::recommend::Product {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    category: p.category.clone(),
                    brand: p.brand.clone().unwrap_or_default(),
                    price: p.price,
                    in_stock: p.in_stock,
                    popularity: 0.0,
                })
                .collect(),
        );
        SiteCatalogue { products, core }
    }
}

/// The site's catalogue ranked for the person (their folded `profile`) by `strategy`
/// (`similar` to `anchor`, the first product the person bought in the order, say), at most
/// [`MAX`]. Catalogue paths (`/p/tv-1`) become absolute against the page the person was
/// last seen on (from their `messages`); a product whose link cannot be made an http(s)
/// URL is listed without it.
pub fn ranked(
    site: &SiteCatalogue,
    profile: &Profile,
    messages: &[Message],
    th: &Thresholds,
    strategy: Strategy,
    anchor: Option<&str>,
    now_ms: i64,
) -> Vec<Product> {
    let catalogue = &site.products;
    let request = Request { strategy, count: MAX, product_id: anchor.map(str::to_string), category: None };
    let Ok(picks) = rank(&site.core, profile, &request, now_ms.max(0) as u64, th) else { return Vec::new() };
    let base = messages
        .iter()
        .rev()
        .find_map(|m| m.body.pointer("/context/page/url").and_then(Value::as_str))
        .and_then(|u| reqwest::Url::parse(u).ok());
    let absolute = |link: &Option<String>| {
        let link = link.as_deref()?;
        let url = match &base {
            Some(b) => b.join(link).ok()?,
            None => reqwest::Url::parse(link).ok()?,
        };
        matches!(url.scheme(), "http" | "https").then(|| url.to_string())
    };
    picks
        .iter()
        .map(|pick| {
            let p = &catalogue[pick.index];
            Product {
                id: p.id.clone(),
                name: p.name.clone(),
                category: Some(p.category.clone()),
                price: Some(p.price),
                currency: p.currency.clone(),
                url: absolute(&p.url),
                image_url: absolute(&p.image),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewEvent, StoredEvent};
    use serde_json::json;

    fn track(event: &str, props: Value, at: i64) -> Message {
        Message::new(StoredEvent {
            seq: at,
            event: NewEvent {
                message_id: format!("m{at}"),
                kind: "track",
                event: Some(event.into()),
                user_id: None,
                anonymous_id: Some("a".into()),
                timestamp_ms: at,
                received_ms: at,
                body: json!({ "properties": props }).to_string(),
            },
        })
    }

    #[test]
    fn links_are_tagged_for_attribution_keeping_their_own_parameters() {
        let p = from_props(
            &json!({"product_id": "tv1", "url": "https://shop.example/p/tv1?color=black&utm_source=ads#top"}),
        )
        .unwrap();
        let tagged = with_utm(p, "cart-reminder").url.unwrap();
        assert_eq!(
            tagged,
            "https://shop.example/p/tv1?color=black&utm_source=nudge&utm_medium=email&utm_campaign=cart-reminder#top"
        );
        let none = from_props(&json!({"product_id": "x"})).unwrap();
        assert_eq!(with_utm(none, "coupon").url, None);
    }

    #[test]
    fn recommends_recent_views_in_top_categories_without_bought_or_cart_ones() {
        let view = |id: &str, cat: &str, at| {
            track(
                "Product Viewed",
                json!({"product_id": id, "category": cat, "name": format!("N{id}"),
                "price": 10.0, "url": format!("https://shop.example/{id}"), "image_url": "javascript:alert(1)"}),
                at,
            )
        };
        let ms = vec![
            view("tv1", "TVs", 1),
            view("tv2", "TVs", 2),
            view("tv3", "TVs", 3),
            view("l1", "Laptops", 4),
            view("c1", "Cables", 5),
            view("c1", "Cables", 6),
            view("s1", "Sofas", 7),
            track("Order Completed", json!({"products": [{"product_id": "tv2"}]}), 8),
        ];
        let bought = purchased(&ms);
        let mut exclude = bought.clone();
        exclude.insert("tv3".into());
        let got: Vec<String> = recommend(&ms, None, &exclude).into_iter().map(|p| p.id).collect();
        assert_eq!(got, ["c1", "l1", "tv1"], "top three categories: TVs, Cables, then Laptops before Sofas");
        let tvs: BTreeSet<String> = ["TVs".to_string()].into();
        let similar = recommend(&ms, Some(&tvs), &bought);
        assert_eq!(similar.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["tv3", "tv1"]);
        assert_eq!(similar[0].url.as_deref(), Some("https://shop.example/tv3"));
        assert_eq!(similar[0].image_url, None, "only http(s) images");
    }
}
