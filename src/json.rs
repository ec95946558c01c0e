//! Small helpers over miniserde's JSON value: reading the e-commerce fields out of
//! properties, and writing JSON text by hand where a derive would cost more.

use miniserde::json::{Number, Object, Value};

/// The string at `key`, if it is a non-empty string (numbers are accepted as ids).
pub fn get_str(obj: &Object, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(clip(s.trim(), 100)),
        Value::Number(n) => Some(number_text(n)),
        _ => None,
    }
}

/// The number at `key`, if it is a finite number (numeric strings such as `"19.99"` too).
pub fn get_num(obj: &Object, key: &str) -> Option<f64> {
    match obj.get(key)? {
        Value::Number(n) => Some(as_f64(n)),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    }
}

/// The objects in the array at `key` (other elements are skipped).
pub fn get_objects<'a>(obj: &'a Object, key: &str) -> impl Iterator<Item = &'a Object> {
    let arr = match obj.get(key) {
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    };
    arr.iter().filter_map(|v| match v {
        Value::Object(o) => Some(o),
        _ => None,
    })
}

/// A number as a double.
pub fn as_f64(n: &Number) -> f64 {
    match *n {
        Number::U64(v) => v as f64,
        Number::I64(v) => v as f64,
        Number::F64(v) => v,
    }
}

fn number_text(n: &Number) -> String {
    miniserde::json::to_string(&Value::Number(n.clone()))
}

/// `s` cut to at most `max` characters, on a character boundary.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push_str(&miniserde::json::to_string(s));
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

/// Appends a number rounded to three decimals, written without `core::fmt`'s float code.
pub fn push_num(out: &mut String, v: f64) {
    let scaled = (v * 1000.0).round();
    if !scaled.is_finite() || scaled.abs() >= 9.0e15 {
        out.push('0');
        return;
    }
    let neg = scaled < 0.0;
    let scaled = scaled.abs() as u64;
    if neg && scaled != 0 {
        out.push('-');
    }
    push_uint(out, scaled / 1000);
    let frac = scaled % 1000;
    if frac != 0 {
        out.push('.');
        let digits = [frac / 100, frac / 10 % 10, frac % 10];
        let keep = if frac % 100 == 0 { 1 } else if frac % 10 == 0 { 2 } else { 3 };
        for d in &digits[..keep] {
            out.push((b'0' + *d as u8) as char);
        }
    }
}

/// Appends an unsigned integer in decimal.
pub fn push_uint(out: &mut String, v: u64) {
    let mut buf = itoa_buf(v);
    out.push_str(buf.as_str());
    buf.clear();
}

fn itoa_buf(mut v: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    digits[i..].iter().map(|&d| d as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_with_at_most_three_decimals() {
        let cases = [(0.0, "0"), (1.5, "1.5"), (1299.999, "1299.999"), (0.1234, "0.123"), (-2.25, "-2.25"), (f64::NAN, "0")];
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
