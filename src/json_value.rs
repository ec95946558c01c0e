//! JSON values and a small parser and writer for them, written for the Wasm's size.
//!
//! A general JSON library brings a number parser with big tables, float printing and
//! panicking string slicing into the Wasm (tens of kilobytes). The SDK needs much less:
//! objects keep their keys in a Vec, numbers are read with the exact fast path for the
//! values a store sends (prices, quantities, times), and nothing here can panic.
//!
//! ```
//! use nudge::json_value::{parse, Value};
//! let v = parse(r#"{"price":499.99,"tags":["a","b"],"ok":true}"#, 16).unwrap();
//! assert_eq!(v.get("price").and_then(Value::as_f64), Some(499.99));
//! assert_eq!(nudge::json_value::to_text(&v), r#"{"price":499.99,"tags":["a","b"],"ok":true}"#);
//! ```

/// A JSON object: keys in the order they came, as `JSON.stringify` wrote them.
pub type Obj = Vec<(String, Value)>;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A whole number from 0 to `u64::MAX` written without fraction or exponent (times,
    /// ids and counts keep every digit).
    UInt(u64),
    /// Any other number.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object.
    Obj(Obj),
}

/// Why text was not read as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON.
    Syntax,
    /// Nested deeper than allowed.
    TooDeep,
    /// A number too large to be finite.
    NotFinite,
}

impl Value {
    /// The value at `key` of an object (the last one when a key repeats, as in JS).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Obj(o) => get(o, key),
            _ => None,
        }
    }

    /// The number, as a double.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::UInt(n) => Some(n as f64),
            Value::Num(n) => Some(n),
            _ => None,
        }
    }

    /// The number, when it is a whole number from 0 to `u64::MAX`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(n) => Some(n),
            Value::Num(n) if n >= 0.0 && n.fract() == 0.0 && n < 1.8e19 => Some(n as u64),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The members of an object.
    pub fn as_obj(&self) -> Option<&Obj> {
        match self {
            Value::Obj(o) => Some(o),
            _ => None,
        }
    }
}

/// The value at `key` of an object's members (the last one when a key repeats).
pub fn get<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Reads JSON text, allowing at most `max_depth` nested arrays and objects.
pub fn parse(text: &str, max_depth: usize) -> Result<Value, ParseError> {
    let mut p = Parser { s: text, b: text.as_bytes(), i: 0, depth: 0, max_depth };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(ParseError::Syntax);
    }
    Ok(v)
}

struct Parser<'a> {
    /// The text, and its bytes.
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
    max_depth: usize,
}

const SYNTAX: ParseError = ParseError::Syntax;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> Result<(), ParseError> {
        match self.b.get(self.i..self.i + word.len()) {
            Some(w) if w == word => {
                self.i += word.len();
                Ok(())
            }
            _ => Err(SYNTAX),
        }
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.ws();
        match self.peek().ok_or(SYNTAX)? {
            b'n' => self.eat(b"null").map(|_| Value::Null),
            b't' => self.eat(b"true").map(|_| Value::Bool(true)),
            b'f' => self.eat(b"false").map(|_| Value::Bool(false)),
            b'"' => self.string().map(Value::Str),
            b'[' => {
                self.enter()?;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(SYNTAX),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Arr(items))
            }
            b'{' => {
                self.enter()?;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.peek() != Some(b'"') {
                            return Err(SYNTAX);
                        }
                        let k = self.string()?;
                        self.ws();
                        self.eat(b":")?;
                        let v = self.value()?;
                        members.push((k, v));
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(SYNTAX),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Obj(members))
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(SYNTAX),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.i += 1;
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError::TooDeep);
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek().ok_or(SYNTAX)? {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(SYNTAX),
            };
            v = v * 16 + u32::from(d);
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1; // the opening quote
        let mut out = String::new();
        loop {
            // The run up to the next quote, backslash or control character is copied whole:
            // most strings are one run. Cut at an ASCII byte, it is whole UTF-8 characters.
            let rest = self.s.get(self.i..).ok_or(SYNTAX)?;
            let n = rest.bytes().position(|c| c == b'"' || c == b'\\' || c < 0x20).ok_or(SYNTAX)?;
            out.push_str(rest.get(..n).ok_or(SYNTAX)?);
            let c = self.b.get(self.i + n).copied();
            self.i += n + 1;
            if c == Some(b'"') {
                return Ok(out);
            }
            if c != Some(b'\\') {
                return Err(SYNTAX);
            }
            let e = self.peek().ok_or(SYNTAX)?;
            self.i += 1;
            let ch = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = self.hex4()?;
                    let code = if (0xD800..0xDC00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
                        let save = self.i;
                        self.i += 2;
                        let lo = self.hex4()?;
                        if (0xDC00..0xE000).contains(&lo) {
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            self.i = save;
                            0xFFFD
                        }
                    } else {
                        hi
                    };
                    // A lone surrogate (valid in JS strings, not in UTF-8) becomes U+FFFD.
                    char::from_u32(code).unwrap_or('\u{FFFD}')
                }
                _ => return Err(SYNTAX),
            };
            out.push(ch);
        }
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let mut mantissa: u64 = 0;
        let mut exp: i32 = 0; // decimal exponent to apply to `mantissa`
        let mut int_digits = 0usize;
        let first = self.peek();
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.i += 1;
            int_digits += 1;
            match mantissa.checked_mul(10).and_then(|m| m.checked_add(u64::from(c - b'0'))) {
                Some(m) => mantissa = m,
                None => exp = exp.saturating_add(1),
            }
        }
        // JSON wants at least one digit, and no leading zeros ("01").
        if int_digits == 0 || (first == Some(b'0') && int_digits > 1) {
            return Err(SYNTAX);
        }
        let mut whole = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            whole = false;
            let mut frac = false;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                self.i += 1;
                frac = true;
                // Digits past what 64 bits hold are below a double's precision.
                if let Some(m) = mantissa.checked_mul(10).and_then(|m| m.checked_add(u64::from(c - b'0'))) {
                    mantissa = m;
                    exp = exp.saturating_sub(1);
                }
            }
            if !frac {
                return Err(SYNTAX);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            whole = false;
            let eneg = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let mut e: i32 = 0;
            let mut edigits = false;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                self.i += 1;
                edigits = true;
                e = e.saturating_mul(10).saturating_add(i32::from(c - b'0'));
            }
            if !edigits {
                return Err(SYNTAX);
            }
            exp = exp.saturating_add(if eneg { -e } else { e });
        }
        if whole && !neg && exp == 0 {
            return Ok(Value::UInt(mantissa));
        }
        let v = to_f64(mantissa, exp);
        if !v.is_finite() {
            return Err(ParseError::NotFinite);
        }
        Ok(Value::Num(if neg { -v } else { v }))
    }
}

/// Exact powers of ten that a double holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `mantissa × 10^exp`. Exact (correctly rounded) when the mantissa fits 53 bits and
/// |exp| ≤ 22, which covers every price, quantity and time a page sends; otherwise
/// within a few units in the last place.
fn to_f64(mantissa: u64, exp: i32) -> f64 {
    let m = mantissa as f64;
    if mantissa == 0 {
        return 0.0;
    }
    if mantissa < (1 << 53) && (-22..=22).contains(&exp) {
        let p = POW10[exp.unsigned_abs() as usize];
        return if exp < 0 { m / p } else { m * p };
    }
    let mut v = m;
    let mut e = exp;
    while e > 22 {
        v *= 1e22;
        e -= 22;
        if !v.is_finite() {
            return v;
        }
    }
    while e < -22 {
        v /= 1e22;
        e += 22;
        if v == 0.0 {
            return 0.0;
        }
    }
    let p = POW10[e.unsigned_abs() as usize];
    if e < 0 {
        v / p
    } else {
        v * p
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    // Most strings need no escape: one copy, no per-byte work.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or(""));
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or(""));
    out.push('"');
}

/// Appends an unsigned integer in decimal.
pub fn push_uint(out: &mut String, mut v: u64) {
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
    for &d in digits.get(i..).unwrap_or(&[]) {
        out.push(d as char);
    }
}

/// Largest digits (as an integer) written by [`push_fixed`]: 2^51, small enough that the
/// number read back, written again, gives the same digits.
const MAX_DIGITS: f64 = 2_251_799_813_685_248.0;

/// `v` with as many of `decimals` (at most 9) digits after the point as fit in
/// [`MAX_DIGITS`] (fewer for large numbers, so that a price of 12,500,000 keeps its
/// digits), as `(scaled, scale)`: `v ≈ scaled / scale`.
fn fixed(v: f64, decimals: u32) -> (f64, f64) {
    let mut d = decimals.min(9) as usize;
    while d > 0 && (v * POW10[d]).round().abs() >= MAX_DIGITS {
        d -= 1;
    }
    ((v * POW10[d]).round(), POW10[d])
}

/// `v` as it reads back after [`push_fixed`] with nine decimals. Numbers the profile
/// keeps are kept in this form, so that a stored profile reads back exactly as it was.
pub fn storable(v: f64) -> f64 {
    let (scaled, scale) = fixed(v, 9);
    if !scaled.is_finite() || scaled.abs() >= MAX_DIGITS {
        return 0.0;
    }
    // `+ 0.0` turns -0 (written as "0") into 0.
    scaled / scale + 0.0
}

/// Appends a number with up to `decimals` (at most 9) digits after the point, trailing
/// zeros left out; written without `core::fmt`'s float code. Large numbers keep fewer
/// decimals; non-finite numbers and numbers beyond ±2^51 are written as 0 (they cannot be
/// JSON, or lose their digits).
pub fn push_fixed(out: &mut String, v: f64, decimals: u32) {
    let (scaled, scale) = fixed(v, decimals);
    if !scaled.is_finite() || scaled.abs() >= MAX_DIGITS {
        out.push('0');
        return;
    }
    let neg = scaled < 0.0;
    let n = scaled.abs() as u64;
    if neg && n != 0 {
        out.push('-');
    }
    let unit = scale as u64;
    push_uint(out, n / unit);
    let mut frac = n % unit;
    if frac == 0 {
        return;
    }
    out.push('.');
    let mut width = unit.ilog10();
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    let mut digits = [b'0'; 9];
    for k in (0..width as usize).rev() {
        digits[k] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    for &d in digits.get(..width as usize).unwrap_or(&[]) {
        out.push(d as char);
    }
}

/// Appends a value as compact JSON.
pub fn write(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::UInt(n) => push_uint(out, *n),
        Value::Num(n) => push_fixed(out, *n, 9),
        Value::Str(s) => push_str(out, s),
        Value::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item);
            }
            out.push(']');
        }
        Value::Obj(members) => write_obj(out, members),
    }
}

/// Appends an object's JSON (without copying it into a [`Value`] first).
pub fn write_obj(out: &mut String, members: &Obj) {
    out.push('{');
    for (i, (k, item)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, k);
        out.push(':');
        write(out, item);
    }
    out.push('}');
}

/// A value as compact JSON text.
pub fn to_text(v: &Value) -> String {
    let mut s = String::new();
    write(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_value() {
        let v = parse(r#" {"a":null,"b":[true,false],"c":-1.5e2,"d":"x\"\u00e9\ud83d\ude00","e":{},"f":[],"g":0} "#, 4)
            .unwrap();
        assert_eq!(v.get("a"), Some(&Value::Null));
        assert_eq!(v.get("b"), Some(&Value::Arr(vec![Value::Bool(true), Value::Bool(false)])));
        assert_eq!(v.get("c").and_then(Value::as_f64), Some(-150.0));
        assert_eq!(v.get("d").and_then(Value::as_str), Some("x\"é😀"));
        assert_eq!(v.get("g"), Some(&Value::UInt(0)));
    }

    #[test]
    fn prices_and_times_are_read_exactly() {
        for (text, want) in [("499.99", 499.99), ("0.1", 0.1), ("19.95", 19.95), ("1e3", 1000.0), ("-0.5", -0.5)] {
            assert_eq!(parse(text, 1).unwrap().as_f64(), Some(want), "{text}");
        }
        assert_eq!(parse("1764000000000", 1).unwrap(), Value::UInt(1_764_000_000_000));
        assert_eq!(parse("18446744073709551615", 1).unwrap(), Value::UInt(u64::MAX));
        let big = parse("1.5e300", 1).unwrap().as_f64().unwrap();
        assert!((big / 1.5e300 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        for text in ["", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "1e", "\"\\x\"", "\"a\n\"", "tru", "{} x", "1e400"] {
            assert!(parse(text, 8).is_err(), "{text:?}");
        }
        assert_eq!(parse("[[[1]]]", 2), Err(ParseError::TooDeep));
    }

    #[test]
    fn values_write_back_as_compact_json() {
        let text = r#"{"name":"<b>\"TV\"</b>\n","price":1299.5,"n":3,"list":[null,true,-2.25],"o":{}}"#;
        assert_eq!(to_text(&parse(text, 8).unwrap()), text);
        let mut s = String::new();
        push_str(&mut s, "a\u{1}b");
        assert_eq!(s, r#""a\u0001b""#);
    }

    #[test]
    fn fixed_numbers_drop_trailing_zeros() {
        for (v, d, want) in [
            (0.0, 3, "0"),
            (1.5, 3, "1.5"),
            (0.1234, 3, "0.123"),
            (-2.25, 3, "-2.25"),
            (0.05, 9, "0.05"),
            (12_500_000.5, 9, "12500000.5"),
        ] {
            let mut s = String::new();
            push_fixed(&mut s, v, d);
            assert_eq!(s, want);
        }
    }
}
