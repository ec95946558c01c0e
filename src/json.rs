//! Reading the e-commerce fields out of properties, and writing JSON text by hand where
//! building a value first would cost more. The value type and parser are in
//! [`crate::json_value`].

use crate::json_value::{get, push_fixed};
pub use crate::json_value::{push_str, push_uint, Obj as Object, Value};

/// The string at `key`, if it is a non-empty string (numbers are accepted as ids).
pub fn get_str(obj: &Object, key: &str) -> Option<String> {
    match get(obj, key)? {
        Value::Str(s) if !s.trim_ascii().is_empty() => Some(clip(s.trim_ascii(), 100)),
        n @ (Value::UInt(_) | Value::Num(_)) => Some(crate::json_value::to_text(n)),
        _ => None,
    }
}

/// A product's id in e-commerce properties: `product_id`, or `sku` when it has none.
pub fn product_id(obj: &Object) -> Option<String> {
    get_str(obj, "product_id").or_else(|| get_str(obj, "sku"))
}

/// The number at `key`, if it is a finite number (numeric strings such as `"19.99"` too).
pub fn get_num(obj: &Object, key: &str) -> Option<f64> {
    match get(obj, key)? {
        Value::Str(s) => match crate::json_value::parse(s.trim_ascii(), 0) {
            Ok(v) => v.as_f64(),
            Err(_) => None,
        },
        v => v.as_f64(),
    }
}

/// The objects in the array at `key` (other elements are skipped).
pub fn get_objects<'a>(obj: &'a Object, key: &str) -> impl Iterator<Item = &'a Object> {
    let arr = match get(obj, key) {
        Some(Value::Arr(a)) => a.as_slice(),
        _ => &[],
    };
    arr.iter().filter_map(Value::as_obj)
}

/// `s` cut to at most `max` characters, on a character boundary.
pub fn clip(s: &str, max: usize) -> String {
    // No more bytes than `max` means no more characters: nothing to count.
    if s.len() <= max {
        return s.to_string();
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s).to_string(),
        None => s.to_string(),
    }
}

/// Where the ASCII byte `b` first occurs in `s`. Searches for one ASCII character go
/// through here and [`split_byte`]/[`pieces`] rather than `str`'s char patterns: a plain
/// loop instead of the pattern searchers in the Wasm. (An ASCII byte in UTF-8 is always
/// that character, so the results are the same.)
pub fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// `s` cut at the first ASCII byte `b`: what is before and after it (`str::split_once`).
pub fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s` up to the first ASCII byte `b`, or all of it.
pub fn before_byte(s: &str, b: u8) -> &str {
    split_byte(s, b).map_or(s, |(head, _)| head)
}

/// The parts of `s` between the ASCII bytes `b` (`str::split`).
pub fn pieces(s: &str, b: u8) -> Pieces<'_> {
    Pieces { rest: Some(s), b }
}

/// The iterator of [`pieces`].
pub struct Pieces<'a> {
    rest: Option<&'a str>,
    b: u8,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match split_byte(s, self.b) {
            Some((head, tail)) => {
                self.rest = Some(tail);
                Some(head)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// Appends `"key":` to an object being written.
pub fn push_key(out: &mut String, key: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    push_str(out, key);
    out.push(':');
}

/// Appends `"key":"value"` to an object being written.
pub fn push_field(out: &mut String, key: &str, value: &str) {
    push_key(out, key);
    push_str(out, value);
}

/// Appends a number rounded to three decimals (prices, scores in `profile()`).
pub fn push_num(out: &mut String, v: f64) {
    push_fixed(out, v, 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_with_at_most_three_decimals() {
        let cases =
            [(0.0, "0"), (1.5, "1.5"), (1299.999, "1299.999"), (0.1234, "0.123"), (-2.25, "-2.25"), (f64::NAN, "0")];
        for (v, want) in cases {
            let mut s = String::new();
            push_num(&mut s, v);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::from("{");
        push_field(&mut s, "a\"b", "<img src=x onerror=\"1\">\n");
        s.push('}');
        assert_eq!(s, r#"{"a\"b":"<img src=x onerror=\"1\">\n"}"#);
    }
}
