//! The event model: what a `page`, `track` or `identify` call may carry, checked before
//! anything changes. Names follow the Segment e-commerce spec v2; properties arrive as JSON
//! text (made by `JSON.stringify` in the JS wrapper) and must be a bounded plain object.

use crate::error::Error;
use crate::json::{Object, Value};
use crate::json_value::{parse, ParseError};

/// Longest event name or user id, in characters.
pub const MAX_NAME: usize = 200;
/// Largest properties or traits object, in bytes of JSON.
pub const MAX_PROPS_BYTES: usize = 32 * 1024;
/// Deepest nesting of objects and arrays inside properties.
pub const MAX_DEPTH: usize = 16;

/// Checks an event name (`"Product Viewed"`): 1..=200 characters, not only spaces.
pub fn check_name(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.trim_ascii().is_empty() {
        return Err(Error::EventName);
    }
    Ok(())
}

/// Parses and checks properties: absent means `{}`; otherwise a JSON object of at most
/// 32 KB, nested at most 16 deep, with finite numbers.
///
/// ```
/// use nudge::event::parse_props;
/// assert!(parse_props(Some(r#"{"category":"TVs","price":499}"#)).is_ok());
/// assert!(parse_props(Some("[1,2]")).is_err());
/// ```
pub fn parse_props(text: Option<&str>) -> Result<Object, Error> {
    let text = match text.unwrap_or("").trim_ascii() {
        "" | "null" => return Ok(Object::new()),
        t => t,
    };
    if text.len() > MAX_PROPS_BYTES {
        return Err(Error::TooLarge);
    }
    if !text.starts_with('{') {
        return Err(Error::NotAnObject);
    }
    match parse(text, MAX_DEPTH) {
        Ok(Value::Obj(obj)) => Ok(obj),
        Ok(_) => Err(Error::NotAnObject),
        Err(ParseError::TooDeep) => Err(Error::TooDeep),
        Err(ParseError::NotFinite) => Err(Error::NotFinite),
        Err(ParseError::Syntax) => Err(Error::BadJson),
    }
}

/// Serialises an object back to compact JSON text.
pub fn to_text(obj: &Object) -> String {
    let mut s = String::new();
    crate::json_value::write_obj(&mut s, obj);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_one_to_two_hundred_characters() {
        assert_eq!(check_name(""), Err(Error::EventName));
        assert_eq!(check_name("   "), Err(Error::EventName));
        assert_eq!(check_name(&"x".repeat(201)), Err(Error::EventName));
        assert_eq!(check_name(&"é".repeat(200)), Ok(()));
        assert_eq!(check_name("Product Viewed"), Ok(()));
    }

    #[test]
    fn properties_must_be_a_small_shallow_object_of_finite_numbers() {
        assert!(parse_props(None).unwrap().is_empty());
        assert_eq!(parse_props(Some("42")).err(), Some(Error::NotAnObject));
        assert_eq!(parse_props(Some("{\"a\":")).err(), Some(Error::BadJson));
        let big = format!("{{\"s\":\"{}\"}}", "x".repeat(MAX_PROPS_BYTES));
        assert_eq!(parse_props(Some(&big)).err(), Some(Error::TooLarge));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20));
        assert_eq!(parse_props(Some(&deep)).err(), Some(Error::TooDeep));
        let braces_in_strings = format!("{{\"a\":\"{}\"}}", "[".repeat(40));
        assert!(parse_props(Some(&braces_in_strings)).is_ok());
    }

    #[test]
    fn huge_exponents_are_refused_not_stored_as_infinity() {
        let err = parse_props(Some("{\"n\":1e999}")).err();
        assert!(matches!(err, Some(Error::NotFinite) | Some(Error::BadJson)), "{err:?}");
    }
}
