//! The cart as the shopper's own events describe it: lines, value, last change, and whether
//! checkout has started. Later issues detect abandonment from `updated` and `checkout`.

use crate::json::Object;
use crate::json::{get_num, get_objects, get_str, product_id};
use crate::json_value::storable;
use crate::time::Millis;

/// Most lines kept in a cart; past it the oldest line is dropped (storage stays bounded).
pub const MAX_LINES: usize = 30;

/// One product line in the cart (Segment e-commerce property names).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `product_id` (or `sku` when no id is given).
    pub product_id: String,
    /// Product name, if given.
    pub name: Option<String>,
    /// Category, if given.
    pub category: Option<String>,
    /// Brand, if given.
    pub brand: Option<String>,
    /// Unit price (0 when not given).
    pub price: f64,
    /// Units, at least 1.
    pub quantity: f64,
}
crate::json_struct!(Line {
    product_id: "product_id",
    name: "name",
    category: "category",
    brand: "brand",
    price: "price",
    quantity: "quantity"
});

impl Line {
    /// Reads a product from e-commerce properties; `None` without `product_id` or `sku`.
    pub fn from_props(p: &Object) -> Option<Line> {
        let product_id = product_id(p)?;
        let quantity = get_num(p, "quantity").filter(|q| *q > 0.0).unwrap_or(1.0).min(10_000.0);
        Some(Line {
            product_id,
            name: get_str(p, "name"),
            category: get_str(p, "category"),
            brand: get_str(p, "brand"),
            price: get_num(p, "price").filter(|v| *v >= 0.0).map_or(0.0, storable),
            quantity: quantity.round().max(1.0),
        })
    }
}

/// The cart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cart {
    /// Lines in the order they were first added.
    pub lines: Vec<Line>,
    /// Currency of the latest event that named one.
    pub currency: Option<String>,
    /// When the cart last changed (0: never).
    pub updated: Millis,
    /// When checkout started for the current contents (0: not started).
    pub checkout: Millis,
}
crate::json_struct!(Cart { lines: "lines", currency: "currency", updated: "updated", checkout: "checkout" });

impl Cart {
    /// Total value: the sum of price × quantity.
    pub fn value(&self) -> f64 {
        self.lines.iter().map(|l| l.price * l.quantity).sum()
    }

    /// `Product Added`: adds the quantity to the line, or a new line.
    pub fn add(&mut self, line: Line, now: Millis) {
        match self.lines.iter_mut().find(|l| l.product_id == line.product_id) {
            Some(l) => {
                l.quantity = (l.quantity + line.quantity).min(10_000.0);
                if line.price > 0.0 {
                    l.price = line.price;
                }
            }
            None => {
                self.lines.push(line);
                if self.lines.len() > MAX_LINES {
                    self.lines.remove(0);
                }
            }
        }
        self.touch(now);
    }

    /// `Product Removed`: removes the quantity given, or the whole line.
    pub fn remove(&mut self, product_id: &str, quantity: Option<f64>, now: Millis) {
        if let Some(i) = self.lines.iter().position(|l| l.product_id == product_id) {
            let left = quantity.map(|q| self.lines[i].quantity - q.max(1.0).round()).unwrap_or(0.0);
            if left >= 1.0 {
                self.lines[i].quantity = left;
            } else {
                self.lines.remove(i);
            }
            self.touch(now);
        }
    }

    /// `Cart Viewed` / `Checkout Started` with a `products` list: the list is the cart.
    pub fn replace(&mut self, props: &Object, now: Millis) -> bool {
        let mut lines: Vec<Line> = Vec::new();
        for p in get_objects(props, "products") {
            if lines.len() >= MAX_LINES {
                break;
            }
            if let Some(l) = Line::from_props(p) {
                lines.push(l);
            }
        }
        if lines.is_empty() {
            return false;
        }
        if lines != self.lines {
            self.lines = lines;
            self.touch(now);
        }
        true
    }

    /// `Checkout Started`.
    pub fn start_checkout(&mut self, now: Millis) {
        self.checkout = now;
    }

    /// `Order Completed`: the cart is bought and empty.
    pub fn clear(&mut self, now: Millis) {
        self.lines.clear();
        self.checkout = 0;
        self.updated = now;
    }

    fn touch(&mut self, now: Millis) {
        self.updated = now;
        self.checkout = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_props;

    fn line(json: &str) -> Line {
        Line::from_props(&parse_props(Some(json)).unwrap()).unwrap()
    }

    #[test]
    fn adds_and_removes_change_lines_and_value() {
        let mut c = <Cart as Default>::default();
        c.add(line(r#"{"product_id":"tv-1","price":499.5,"quantity":2}"#), 10);
        c.add(line(r#"{"product_id":"tv-1","price":499.5}"#), 20);
        c.add(line(r#"{"sku":"cable","price":"9.99"}"#), 30);
        assert_eq!(c.lines.len(), 2);
        assert!((c.value() - (3.0 * 499.5 + 9.99)).abs() < 1e-9);
        c.remove("tv-1", Some(1.0), 40);
        assert_eq!(c.lines[0].quantity, 2.0);
        c.remove("tv-1", None, 50);
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.updated, 50);
    }

    #[test]
    fn a_product_without_an_id_is_not_a_cart_line() {
        assert!(Line::from_props(&parse_props(Some(r#"{"price":5}"#)).unwrap()).is_none());
    }

    #[test]
    fn the_cart_is_bounded() {
        let mut c = <Cart as Default>::default();
        for i in 0..100 {
            c.add(line(&format!(r#"{{"product_id":"p{i}"}}"#)), i);
        }
        assert_eq!(c.lines.len(), MAX_LINES);
        assert_eq!(c.lines.last().unwrap().product_id, "p99");
    }
}
