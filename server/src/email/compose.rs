//! The words of each email: a subject, a text part and an HTML part. Every value that came
//! from events (product names, codes, URLs, the shop's name) is HTML-escaped in the HTML
//! part; URLs are only ever http(s) (see `products::web_url`).

use serde_json::Value;

use super::products::{self, Product};

/// A composed email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The subject line.
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// The `text/html` part.
    pub html: String,
}

/// What every email shares.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// The shop's name (the site's name).
    pub shop: &'a str,
    /// The one-click unsubscribe link.
    pub unsubscribe_url: &'a str,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A single line (no line breaks, for a subject).
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A price with its currency.
fn money(v: f64, currency: Option<&str>) -> String {
    match currency {
        Some(c) => format!("{v:.2} {c}"),
        None => format!("{v:.2}"),
    }
}

/// A coupon as `Coupon Issued` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    /// The code.
    pub code: String,
    /// Percent off, if a percent offer.
    pub percent: Option<f64>,
    /// Amount off, if an amount offer.
    pub amount: Option<f64>,
    /// The amount's currency.
    pub currency: Option<String>,
    /// Expiry (ISO 8601), if any.
    pub expires_at: Option<String>,
}

impl Coupon {
    /// Reads `Coupon Issued` properties; `None` without a code.
    pub fn from_props(p: &Value) -> Option<Coupon> {
        let text =
            |k: &str| p.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        Some(Coupon {
            code: text("coupon")?,
            percent: p.get("percent").and_then(Value::as_f64),
            amount: p.get("amount").and_then(Value::as_f64),
            currency: text("currency"),
            expires_at: text("expires_at"),
        })
    }

    /// "10% off" or "20.00 USD off".
    pub fn offer(&self) -> String {
        match (self.percent, self.amount) {
            (Some(p), _) => format!("{p}% off"),
            (None, Some(a)) => format!("{} off", money(a, self.currency.as_deref())),
            (None, None) => "a discount".into(),
        }
    }

    fn until(&self) -> String {
        self.expires_at.as_deref().map(|e| format!(", valid until {}", e.get(..10).unwrap_or(e))).unwrap_or_default()
    }
}

/// A product line: name, price, link.
fn product_text(p: &Product, quantity: Option<f64>) -> String {
    let mut line = format!("- {}", one_line(&p.name));
    if let Some(q) = quantity.filter(|q| *q > 1.0) {
        line.push_str(&format!(" x {q}"));
    }
    if let Some(price) = p.price {
        line.push_str(&format!(", {}", money(price, p.currency.as_deref())));
    }
    if let Some(url) = &p.url {
        line.push_str(&format!(": {url}"));
    }
    line
}

fn product_html(p: &Product, quantity: Option<f64>) -> String {
    let mut cell = String::new();
    if let Some(img) = &p.image_url {
        cell.push_str(&format!(
            r#"<img src="{}" alt="" width="120" style="display:block;max-width:120px"> "#,
            escape(img)
        ));
    }
    let name = escape(&p.name);
    match &p.url {
        Some(url) => cell.push_str(&format!(r#"<a href="{}">{name}</a>"#, escape(url))),
        None => cell.push_str(&name),
    }
    if let Some(q) = quantity.filter(|q| *q > 1.0) {
        cell.push_str(&format!(" &times; {q}"));
    }
    if let Some(price) = p.price {
        cell.push_str(&format!(" &mdash; {}", escape(&money(price, p.currency.as_deref()))));
    }
    format!("<li style=\"margin:0 0 12px\">{cell}</li>")
}

fn list(title: &str, products: &[(Product, Option<f64>)]) -> (String, String) {
    if products.is_empty() {
        return (String::new(), String::new());
    }
    let text: Vec<String> = products.iter().map(|(p, q)| product_text(p, *q)).collect();
    let html: Vec<String> = products.iter().map(|(p, q)| product_html(p, *q)).collect();
    (
        format!("\n{title}\n{}\n", text.join("\n")),
        format!(
            "<h2 style=\"font-size:16px\">{}</h2><ul style=\"padding-left:18px\">{}</ul>",
            escape(title),
            html.join("")
        ),
    )
}

fn wrap(frame: &Frame<'_>, subject: String, text_body: String, html_body: String) -> Email {
    let shop = one_line(frame.shop);
    let text = format!(
        "{text_body}\n--\n{shop}\nYou get this email because you agreed to hear from {shop}.\nUnsubscribe: {}\n",
        frame.unsubscribe_url
    );
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;line-height:1.4;color:#222\">{html_body}\
         <hr><p style=\"font-size:12px;color:#666\">{shop_html}. You get this email because you agreed to hear \
         from {shop_html}. <a href=\"{unsub}\">Unsubscribe</a></p></body></html>",
        title = escape(&subject),
        shop_html = escape(&shop),
        unsub = escape(frame.unsubscribe_url),
    );
    Email { subject: one_line(&subject), text, html }
}

fn plain(products: &[Product]) -> Vec<(Product, Option<f64>)> {
    products.iter().map(|p| (p.clone(), None)).collect()
}

/// The coupon email (or its reminder), with recommended products.
pub fn coupon(frame: &Frame<'_>, c: &Coupon, recommended: &[Product], reminder: bool) -> Email {
    let subject = if reminder {
        format!("Your {} coupon is still waiting: {}", c.offer(), c.code)
    } else {
        format!("Your coupon from {}: {}", frame.shop, c.code)
    };
    let lead = if reminder { "A reminder: your coupon has not been used yet." } else { "Thanks for signing up!" };
    let (picks_text, picks_html) = list("Picked for you", &plain(recommended));
    let text = format!("{lead}\n\nYour code: {}\n{}{}.\n{picks_text}", c.code, c.offer(), c.until());
    let html = format!(
        "<p>{}</p><p>Your code:</p><p style=\"font-size:24px;font-weight:bold;letter-spacing:2px\">{}</p>\
         <p>{}{}.</p>{picks_html}",
        escape(lead),
        escape(&c.code),
        escape(&c.offer()),
        escape(&c.until()),
    );
    wrap(frame, subject, text, html)
}

/// The cart reminder after `Cart Abandoned`, listing the cart.
pub fn cart(
    frame: &Frame<'_>,
    lines: &[(Product, Option<f64>)],
    total: Option<(f64, Option<&str>)>,
    recommended: &[Product],
) -> Email {
    let subject = format!("You left something in your cart at {}", frame.shop);
    let (cart_text, cart_html) = list("Your cart", lines);
    let total_text = total.map(|(v, c)| format!("Total: {}\n", money(v, c))).unwrap_or_default();
    let (picks_text, picks_html) = list("You may also like", &plain(recommended));
    let text = format!("Your cart is saved and waiting for you.\n{cart_text}{total_text}{picks_text}");
    let html = format!(
        "<p>Your cart is saved and waiting for you.</p>{cart_html}<p>{}</p>{picks_html}",
        escape(total_text.trim())
    );
    wrap(frame, subject, text, html)
}

/// The evaluation email after an order: a review invitation and similar products.
pub fn evaluation(frame: &Frame<'_>, bought: &[Product], similar: &[Product]) -> Email {
    let subject = format!("How do you like your order from {}?", frame.shop);
    let review: Vec<Product> = bought
        .iter()
        .map(|p| Product {
            url: p.url.as_ref().map(|u| format!("{}#reviews", u.split('#').next().unwrap_or(u))),
            ..p.clone()
        })
        .collect();
    let (bought_text, bought_html) = list("Write a review", &plain(&review));
    let (similar_text, similar_html) = list("Similar products", &plain(similar));
    let lead = "Thank you for your order! We would love to hear what you think: a short review helps other shoppers.";
    let text = format!("{lead}\n{bought_text}{similar_text}");
    let html = format!("<p>{}</p>{bought_html}{similar_html}", escape(lead));
    wrap(frame, subject, text, html)
}

/// The products of an event (`products` list), with their quantities, completed from
/// what the person's events say about them.
pub fn lines(props: &Value, known: &std::collections::HashMap<String, Product>) -> Vec<(Product, Option<f64>)> {
    props
        .get("products")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|item| {
                    let p = products::from_props(item)?;
                    let fuller = known.get(&p.id).map_or(p.clone(), |k| Product {
                        url: p.url.clone().or(k.url.clone()),
                        image_url: p.image_url.clone().or(k.image_url.clone()),
                        price: p.price.or(k.price),
                        name: if p.name != p.id { p.name.clone() } else { k.name.clone() },
                        ..p.clone()
                    });
                    Some((fuller, item.get("quantity").and_then(Value::as_f64)))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_events_are_escaped_in_html_and_kept_in_text() {
        let frame = Frame { shop: "Tom & Jerry's", unsubscribe_url: "https://n.example/v1/unsubscribe?token=a.b.c" };
        let c = Coupon { code: "<b>X</b>".into(), percent: Some(10.0), amount: None, currency: None, expires_at: None };
        let p = Product {
            id: "p1".into(),
            name: "<img src=x onerror=alert(1)>".into(),
            category: None,
            price: Some(5.0),
            currency: Some("EUR".into()),
            url: Some("https://shop.example/p?a=1&b=\"2\"".into()),
            image_url: None,
        };
        let e = coupon(&frame, &c, &[p], false);
        assert!(!e.html.contains("<img src=x") && e.html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(e.html.contains("&lt;b&gt;X&lt;/b&gt;") && e.html.contains("Tom &amp; Jerry&#39;s"));
        assert!(e.html.contains("a=1&amp;b=&quot;2&quot;"));
        assert!(e.text.contains("Your code: <b>X</b>") && e.text.contains("10% off"));
        assert!(e.text.contains("Unsubscribe: https://n.example/v1/unsubscribe?token=a.b.c"));
    }
}
