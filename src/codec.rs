//! How the core's types are stored and sent as JSON: the [`Json`] trait, its impls for
//! the building blocks, and [`json_struct!`](crate::json_struct) to write both directions
//! for a struct from one list of fields.
//!
//! Hand-made rather than derived: a derive framework's generic visitors cost the Wasm
//! kilobytes per type, where these are a few straight-line calls.
//!
//! ```
//! use nudge::codec::Json;
//! #[derive(Debug, PartialEq)]
//! struct Point { x: u64, label: Option<String> }
//! nudge::json_struct!(Point { x: "x", label: "label" });
//! let p = Point { x: 3, label: None };
//! assert_eq!(p.to_json(), r#"{"x":3,"label":null}"#);
//! assert_eq!(Point::from_json(r#"{"x":3}"#), Some(p));
//! ```

use crate::json_value::{parse, push_fixed, push_str, push_uint, Value};
use crate::keyed::Keyed;

/// Deepest nesting accepted when reading stored or forwarded state.
pub const MAX_STATE_DEPTH: usize = 12;

/// A type that is written as JSON and read back from it.
pub trait Json: Sized {
    /// Appends the JSON of `self`.
    fn write(&self, out: &mut String);

    /// Reads a value; `None` when it does not have this type's shape.
    fn read(v: &Value) -> Option<Self>;

    /// The JSON text of `self`.
    fn to_json(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    /// Reads JSON text; `None` when it is not JSON or not of this shape.
    fn from_json(text: &str) -> Option<Self> {
        Self::read(&parse(text, MAX_STATE_DEPTH).ok()?)
    }
}

impl Json for bool {
    fn write(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
    fn read(v: &Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Json for u64 {
    fn write(&self, out: &mut String) {
        push_uint(out, *self);
    }
    fn read(v: &Value) -> Option<Self> {
        v.as_u64()
    }
}

impl Json for u32 {
    fn write(&self, out: &mut String) {
        push_uint(out, u64::from(*self));
    }
    fn read(v: &Value) -> Option<Self> {
        v.as_u64().and_then(|n| u32::try_from(n).ok())
    }
}

/// Doubles keep nine decimals: enough for prices and scores, and no float printing code.
impl Json for f64 {
    fn write(&self, out: &mut String) {
        push_fixed(out, *self, 9);
    }
    fn read(v: &Value) -> Option<Self> {
        v.as_f64()
    }
}

impl Json for String {
    fn write(&self, out: &mut String) {
        push_str(out, self);
    }
    fn read(v: &Value) -> Option<Self> {
        v.as_str().map(str::to_string)
    }
}

/// `null` (or a missing field) is `None`.
impl<T: Json> Json for Option<T> {
    fn write(&self, out: &mut String) {
        match self {
            Some(v) => v.write(out),
            None => out.push_str("null"),
        }
    }
    fn read(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::read(v).map(Some),
        }
    }
}

impl<T: Json> Json for Vec<T> {
    fn write(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write(out);
        }
        out.push(']');
    }
    fn read(v: &Value) -> Option<Self> {
        match v {
            Value::Arr(items) => {
                // A plain loop: smaller in the Wasm than `collect` into an `Option<Vec<T>>`.
                let mut out = Vec::new();
                for item in items {
                    out.push(T::read(item)?);
                }
                Some(out)
            }
            _ => None,
        }
    }
}

/// A [`Keyed`] map is a JSON object.
impl<T: Json> Json for Keyed<T> {
    fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, k);
            out.push(':');
            v.write(out);
        }
        out.push('}');
    }
    fn read(v: &Value) -> Option<Self> {
        let mut m = Keyed::new();
        for (k, item) in v.as_obj()? {
            m.insert(k.clone(), T::read(item)?);
        }
        Some(m)
    }
}

/// The field `key` of an object, `null` when missing (so optional fields may be left out).
pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    const NULL: &Value = &Value::Null;
    v.get(key).unwrap_or(NULL)
}

/// Reads one optional field on its own, so that one mistyped option does not cost the
/// others: `Ok(None)` when missing or null, `Err(())` when present with the wrong type.
#[allow(clippy::result_unit_err)]
pub fn optional<T: Json>(v: &Value, key: &str) -> Result<Option<T>, ()> {
    match field(v, key) {
        Value::Null => Ok(None),
        f => T::read(f).map(Some).ok_or(()),
    }
}

/// Implements [`Json`] for a struct as a JSON object with the given keys:
/// `json_struct!(Session { id: "id", last: "last" })`. Every field must be listed.
#[macro_export]
macro_rules! json_struct {
    // `json_struct!(T (init) { ... })`: read by filling in `init` field by field (one value
    // to drop when a field is unreadable, rather than every field read so far): smaller in
    // the Wasm for a big struct.
    ($t:ident ($init:expr) { $($f:ident : $k:literal),* $(,)? }) => {
        impl $crate::codec::Json for $t {
            $crate::json_struct!(@write $($f: $k),*);
            fn read(v: &$crate::json_value::Value) -> Option<Self> {
                v.as_obj()?;
                let mut out: $t = $init;
                $(out.$f = $crate::codec::Json::read($crate::codec::field(v, $k))?;)*
                Some(out)
            }
        }
    };
    ($t:ident { $($f:ident : $k:literal),* $(,)? }) => {
        impl $crate::codec::Json for $t {
            $crate::json_struct!(@write $($f: $k),*);
            fn read(v: &$crate::json_value::Value) -> Option<Self> {
                v.as_obj()?;
                Some($t { $($f: $crate::codec::Json::read($crate::codec::field(v, $k))?,)* })
            }
        }
    };
    // The writer both forms share: the fields in the given order.
    (@write $($f:ident : $k:literal),*) => {
        fn write(&self, out: &mut String) {
            out.push('{');
            let mut _first = true;
            $(
                if !_first {
                    out.push(',');
                }
                _first = false;
                $crate::json_value::push_str(out, $k);
                out.push(':');
                $crate::codec::Json::write(&self.$f, out);
            )*
            out.push('}');
        }
    };
}

/// Implements [`Json`] for a field-less enum as one of the given strings:
/// `json_enum!(Stage { Awareness: "awareness", Decision: "decision" })`.
#[macro_export]
macro_rules! json_enum {
    ($t:ident { $($variant:ident : $k:literal),* $(,)? }) => {
        impl $crate::codec::Json for $t {
            fn write(&self, out: &mut String) {
                $crate::json_value::push_str(out, match self { $($t::$variant => $k,)* });
            }
            fn read(v: &$crate::json_value::Value) -> Option<Self> {
                match v.as_str()? {
                    $($k => Some($t::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Mood {
        Glad,
        Sad,
    }
    crate::json_enum!(Mood { Glad: "glad", Sad: "sad" });

    #[derive(Debug, PartialEq)]
    struct Note {
        at: u64,
        text: String,
        mood: Option<Mood>,
        tags: Vec<String>,
        scores: Keyed<f64>,
    }
    crate::json_struct!(Note { at: "at", text: "text", mood: "mood", tags: "tags", scores: "scores" });

    #[test]
    fn a_struct_round_trips_and_optional_fields_may_be_missing() {
        let mut scores = Keyed::new();
        scores.insert("TVs".to_string(), 2.5);
        let n = Note { at: 7, text: "hi \"you\"".into(), mood: Some(Mood::Sad), tags: vec!["a".into()], scores };
        let text = n.to_json();
        assert_eq!(text, r#"{"at":7,"text":"hi \"you\"","mood":"sad","tags":["a"],"scores":{"TVs":2.5}}"#);
        assert_eq!(Note::from_json(&text), Some(n));
        let short = Note::from_json(r#"{"at":1,"text":"","tags":[],"scores":{}}"#).unwrap();
        assert_eq!(short.mood, None);
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for text in [r#"{"text":"","tags":[],"scores":{}}"#, r#"{"at":"1","text":"","tags":[],"scores":{}}"#, "[]", "x"]
        {
            assert_eq!(Note::from_json(text), None, "{text}");
        }
        assert_eq!(Mood::from_json(r#""glad""#), Some(Mood::Glad));
        assert_eq!(Mood::from_json(r#""meh""#), None);
    }
}
