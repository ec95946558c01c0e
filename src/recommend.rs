//! Recommendations: a site's catalogue ranked for one shopper, from the profile alone (no
//! network round trip). The browser ranks for `recommend()` and product slots; the server
//! ranks the products in its emails with the same code, so both agree.
//!
//! Four strategies, each leaving out products that are out of stock, in the cart or already
//! bought, and keeping to `category` when one is asked for:
//! - `for-you`: the shopper's category affinity (weighted by the category's stage: a
//!   category in `decision` counts most, one already bought counts less), brand and price
//!   band affinity, then popularity; products viewed in the last day count a little less,
//!   so that new ones come first;
//! - `similar` to a product: same category, same brand, a close price, then popularity;
//! - `complete-the-cart`: other categories than the cart's, the cart's brands, cheaper than
//!   its dearest line, then affinity and popularity (an empty cart gives `popular`);
//! - `popular`: the server's popularity count.
//!
//! Ties keep the catalogue's order. Each pick says why it was chosen, from its largest part
//! (`because you viewed TVs`).
//!
//! ```
//! use nudge::recommend::{rank, Catalog, Request, Strategy};
//! use nudge::config::Thresholds;
//! use nudge::profile::Profile;
//! let catalog = Catalog::read("tv-1\x1fBig TV\x1fTVs\x1fAcme\x1f499\x1f1\x1f20\x1e\
//!                              ph-1\x1fPhone\x1fPhones\x1fZed\x1f299\x1f1\x1f90");
//! let th = Thresholds::default();
//! let mut shopper = Profile::new("a".into());
//! shopper.affinities.categories.add("TVs", 5.0, 0, th.affinity_half_life());
//! let req = Request { strategy: Strategy::ForYou, count: 1, product_id: None, category: None };
//! let picks = rank(&catalog, &shopper, &req, 0, &th).unwrap();
//! assert_eq!(catalog.product(picks[0].index).id, "tv-1");
//! assert_eq!(picks[0].reason, "because you viewed TVs");
//! ```

use crate::affinity::{price_band, Scores};
use crate::codec::field;
use crate::config::Thresholds;
use crate::funnel::Stage;
use crate::json::pieces;
use crate::json_value::{parse, push_str, push_uint};
use crate::keyed::Keyed;
use crate::profile::Profile;
use crate::time::{Millis, DAY};

/// Most products one request returns.
pub const MAX_COUNT: usize = 50;
/// Products returned when a request names no count.
pub const DEFAULT_COUNT: usize = 4;

/// One product of the catalogue, as ranking needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// The site's product id.
    pub id: String,
    /// Display name (for reasons such as `similar to Big TV`).
    pub name: String,
    /// Category name, as events name it.
    pub category: String,
    /// Brand name (empty when none).
    pub brand: String,
    /// Unit price.
    pub price: f64,
    /// Whether it can be bought now.
    pub in_stock: bool,
    /// The server's weighted event count (see the server's catalogue feed).
    pub popularity: f64,
}

/// The catalogue: products in the site's order, with categories and brands numbered so
/// that ranking ten thousand products compares numbers, not text.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    products: Vec<Product>,
    /// Index into `names` of each product's category, brand and price band.
    category_of: Vec<u32>,
    brand_of: Vec<u32>,
    band_of: Vec<u32>,
    /// Distinct category, brand and price-band names.
    names: Vec<String>,
    /// Each name's index in `names`, to number ten thousand products quickly.
    index: Keyed<u64>,
    /// The largest popularity, for scaling.
    top_popularity: f64,
}

impl Catalog {
    /// A catalogue of these products, in this order.
    pub fn new(products: Vec<Product>) -> Catalog {
        let mut c = Catalog::default();
        for p in products {
            c.push(p);
        }
        c
    }

    /// Reads the compact text the SDK's wrapper makes from the server's feed: one product
    /// per record (separated by `\x1e`), fields separated by `\x1f` in the order id, name,
    /// category, brand, price, in stock (`1`/`0`), popularity. A record without an id or
    /// with too few fields is skipped; an unreadable number reads as 0.
    pub fn read(text: &str) -> Catalog {
        let mut c = Catalog::default();
        for record in pieces(text, 0x1e) {
            let mut f = [""; 7];
            let mut n = 0;
            for (i, field) in pieces(record, 0x1f).enumerate() {
                if i < 7 {
                    f[i] = field;
                    n += 1;
                }
            }
            if n < 7 || f[0].is_empty() {
                continue;
            }
            // The core's own JSON number reader: `str::parse::<f64>` would add ~18 KB to the Wasm.
            let num = |s: &str| parse(s, 1).ok().and_then(|v| v.as_f64()).filter(|v| *v >= 0.0).unwrap_or(0.0);
            c.push(Product {
                id: f[0].into(),
                name: f[1].into(),
                category: f[2].into(),
                brand: f[3].into(),
                price: num(f[4]),
                in_stock: f[5] == "1",
                popularity: num(f[6]),
            });
        }
        c
    }

    fn push(&mut self, p: Product) {
        let category = self.intern(&p.category);
        let brand = self.intern(&p.brand);
        let band = self.intern(price_band(p.price));
        self.category_of.push(category);
        self.brand_of.push(brand);
        self.band_of.push(band);
        self.top_popularity = self.top_popularity.max(p.popularity);
        self.products.push(p);
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i as u32;
        }
        self.names.push(name.into());
        self.index.insert(name.into(), self.names.len() as u64 - 1);
        self.names.len() as u32 - 1
    }

    /// The product at `index` (as a [`Pick`] names it).
    pub fn product(&self, index: usize) -> &Product {
        &self.products[index]
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// Whether the catalogue holds no products.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    fn find(&self, id: &str) -> Option<usize> {
        (0..self.products.len()).find(|&i| self.products[i].id == id)
    }
}

/// How to rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The shopper's own interests.
    ForYou,
    /// Like a given product.
    Similar,
    /// Goes with what is in the cart.
    CompleteTheCart,
    /// Most popular.
    Popular,
}

/// What `recommend({strategy, count, productId?, category?})` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The strategy.
    pub strategy: Strategy,
    /// How many products, 1 to [`MAX_COUNT`].
    pub count: usize,
    /// The product `similar` compares with.
    pub product_id: Option<String>,
    /// Only products of this category.
    pub category: Option<String>,
}

/// Why a request cannot be ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JSON object with a known `strategy`.
    BadRequest,
    /// `similar` without a `productId` the catalogue holds.
    UnknownProduct,
}

impl Refusal {
    /// A sentence a web developer can act on.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::BadRequest => {
                "recommend takes {strategy: 'for-you'|'similar'|'complete-the-cart'|'popular', count?, productId?, category?}"
            }
            Refusal::UnknownProduct => "similar needs the productId of a product in the catalogue",
        }
    }
}

impl Request {
    /// Reads the JSON the wrapper passes (`{"strategy":"similar","count":4,"productId":"tv-1"}`);
    /// `count` defaults to [`DEFAULT_COUNT`] and is held to 1..[`MAX_COUNT`].
    pub fn read(text: &str) -> Result<Request, Refusal> {
        let v = parse(text, 4).map_err(|_| Refusal::BadRequest)?;
        v.as_obj().ok_or(Refusal::BadRequest)?;
        let strategy = match field(&v, "strategy").as_str() {
            Some("for-you") | None => Strategy::ForYou,
            Some("similar") => Strategy::Similar,
            Some("complete-the-cart") => Strategy::CompleteTheCart,
            Some("popular") => Strategy::Popular,
            Some(_) => return Err(Refusal::BadRequest),
        };
        let count = field(&v, "count").as_f64().map_or(DEFAULT_COUNT as f64, |c| c.clamp(1.0, MAX_COUNT as f64));
        let text = |k: &str| field(&v, k).as_str().map(String::from);
        Ok(Request { strategy, count: count as usize, product_id: text("productId"), category: text("category") })
    }
}

/// One ranked product.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Its index in the catalogue.
    pub index: usize,
    /// Why it was chosen, for the shopper to read.
    pub reason: String,
}

/// The parts a product's score is made of, in the order of [`WEIGHTS`]' columns.
const PARTS: usize = 10;
/// Each strategy's weight for each part: the shopper's category (by stage), brand and
/// price-band affinity; popularity; the anchor product's category, brand and price
/// closeness (`similar`); a category not in the cart, a brand in it, cheaper than its
/// dearest line (`complete-the-cart`). One table rather than code per strategy keeps the
/// Wasm small.
const WEIGHTS: [[f64; PARTS]; 4] = [
    [3.0, 1.5, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], // for-you
    [0.0, 0.0, 0.0, 0.5, 3.0, 1.0, 2.0, 0.0, 0.0, 0.0], // similar
    [0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 2.0, 1.0, 1.0], // complete-the-cart
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], // popular
];

/// Ranks the catalogue for `profile` as of `now`: the best `request.count` products, best
/// first. Pure and bounded: one pass over the products, keeping only the best so far.
pub fn rank(
    catalog: &Catalog,
    profile: &Profile,
    request: &Request,
    now: Millis,
    th: &Thresholds,
) -> Result<Vec<Pick>, Refusal> {
    let hl = th.affinity_half_life();
    let aff = &profile.affinities;
    let cart = &profile.cart.lines;
    let mut strategy = request.strategy;
    if strategy == Strategy::CompleteTheCart && cart.is_empty() {
        strategy = Strategy::Popular;
    }
    let weights = &WEIGHTS[strategy as usize];

    // Scores per category, brand or price band, each scaled to 0..1 by the shopper's
    // strongest of its kind, indexed like the catalogue's names.
    let scaled = |scores: &Scores, by_stage: bool| -> Vec<f64> {
        let mut top = 0.0_f64;
        for d in scores.m.values() {
            top = top.max(d.at(now, hl));
        }
        let mut out = vec![0.0; catalog.names.len()];
        for (name, d) in scores.m.iter() {
            let score = d.at(now, hl);
            if let Some(&i) = catalog.index.get(name) {
                let i = i as usize;
                let stage = if by_stage { profile.categories.get(name).map(|e| e.stage(now, th)) } else { None };
                let weight = match stage {
                    Some(Stage::Decision) | None => 1.0,
                    Some(Stage::Consideration) => 0.85,
                    Some(Stage::Awareness) => 0.7,
                    Some(Stage::Loyalty) => 0.6,
                    Some(Stage::Purchase) => 0.4,
                };
                out[i] = if top > 0.0 { score / top * weight } else { 0.0 };
            }
        }
        out
    };
    let by_category = scaled(&aff.categories, true);
    let by_brand = scaled(&aff.brands, false);
    let by_band = scaled(&aff.price_bands, false);

    let anchor = match strategy {
        Strategy::Similar => {
            Some(request.product_id.as_deref().and_then(|id| catalog.find(id)).ok_or(Refusal::UnknownProduct)?)
        }
        _ => None,
    };
    // Never offered: what is in the cart or was bought, and the anchor itself.
    let excluded = |i: usize, id: &str| {
        Some(i) == anchor || profile.bought.contains_key(id) || cart.iter().any(|l| l.product_id == id)
    };
    let in_cart = |name: &str, brand: bool| {
        cart.iter().any(|l| if brand { &l.brand } else { &l.category }.as_deref() == Some(name))
    };
    let dearest = cart.iter().fold(0.0_f64, |m, l| m.max(l.price));
    let wanted = request.category.as_deref().map(|c| catalog.index.get(c).map(|&i| i as usize));
    let top_pop = catalog.top_popularity.max(1.0);
    let count = request.count.clamp(1, MAX_COUNT);

    // The score and its largest part's index.
    let total = |parts: &[f64; PARTS]| {
        let (mut score, mut why, mut largest) = (0.0, 3, 0.0);
        for (k, part) in parts.iter().enumerate() {
            let v = part * weights[k];
            score += v;
            if v > largest {
                (largest, why) = (v, k);
            }
        }
        (score, why)
    };
    let mut best: Vec<(f64, usize, usize)> = Vec::new();
    for (i, p) in catalog.products.iter().enumerate() {
        let (cat, brand, band) = (catalog.category_of[i], catalog.brand_of[i], catalog.band_of[i]);
        if !p.in_stock || wanted.is_some_and(|w| w != Some(cat as usize)) {
            continue;
        }
        let yes = |b: bool| if b { 1.0 } else { 0.0 };
        let mut parts = [0.0; PARTS];
        parts[0] = by_category[cat as usize];
        parts[1] = by_brand[brand as usize];
        parts[2] = by_band[band as usize];
        parts[3] = p.popularity / top_pop;
        if let Some(a) = anchor {
            let ap = catalog.products[a].price;
            parts[4] = yes(catalog.category_of[a] == cat);
            parts[5] = yes(catalog.brand_of[a] == brand);
            // The cheaper price over the dearer: 1 for the same price, 0.5 for twice it.
            parts[6] = if ap > 0.0 && p.price > 0.0 { p.price.min(ap) / p.price.max(ap) } else { 0.0 };
        }
        if dearest > 0.0 {
            parts[7] = yes(!in_cart(&p.category, false));
            parts[8] = yes(!p.brand.is_empty() && in_cart(&p.brand, true));
            parts[9] = (1.0 - p.price / dearest).max(0.0);
        }
        // Only a product that would make the list is looked up by id (text comparisons are
        // most of the cost): kept best first, an equal score behind the earlier product.
        let beaten = |score: f64, best: &Vec<(f64, usize, usize)>| best.len() == count && best[count - 1].0 >= score;
        let (mut score, mut why) = total(&parts);
        if beaten(score, &best) || excluded(i, &p.id) {
            continue;
        }
        // Products viewed in the last day count a little less for the shopper's interests.
        if profile.seen.get(&p.id).is_some_and(|t| now.saturating_sub(*t) < DAY) {
            for part in &mut parts[..3] {
                *part *= 0.7;
            }
            (score, why) = total(&parts);
            if beaten(score, &best) {
                continue;
            }
        }
        let at = best.partition_point(|b| b.0 >= score);
        best.insert(at, (score, i, why));
        best.truncate(count);
    }

    let anchor_name = match anchor {
        Some(a) => catalog.products[a].name.as_str(),
        None => cart.iter().rev().find_map(|l| l.name.as_deref()).unwrap_or("your cart"),
    };
    let mut picks = Vec::new();
    for (_, index, why) in best {
        let p = &catalog.products[index];
        let (lead, name) = match why {
            0 => ("because you viewed ", p.category.as_str()),
            1 => ("because you like ", p.brand.as_str()),
            2 => ("in your price range", ""),
            3 if request.category.is_some() => ("popular in ", p.category.as_str()),
            3 => ("popular now", ""),
            4..=6 => ("similar to ", anchor_name),
            _ => ("goes with ", anchor_name),
        };
        let mut reason = String::new();
        reason.push_str(lead);
        reason.push_str(name);
        picks.push(Pick { index, reason });
    }
    Ok(picks)
}

/// The picks as the wrapper reads them: `[[index,"reason"],...]`.
pub fn picks_json(picks: &[Pick]) -> String {
    let mut out = String::from("[");
    for (i, p) in picks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_uint(&mut out, p.index as u64);
        out.push(',');
        push_str(&mut out, &p.reason);
        out.push(']');
    }
    out.push(']');
    out
}
