//! `Keyed<V>`: a small map from text keys to values, kept as a Vec sorted by key.
//!
//! The profile's maps are small (at most a few dozen categories, brands or tabs), so a
//! sorted Vec is as fast as a B-tree here and far smaller in the Wasm: each `BTreeMap<K, V>`
//! type brings about 5 KB of node code of its own. It stores and reads as a JSON object,
//! like the `BTreeMap` it replaces (see `codec`), so stored profiles keep their layout.
//!
//! ```
//! use nudge::keyed::Keyed;
//! let mut m: Keyed<u32> = Keyed::new();
//! *m.entry("TVs") += 2;
//! m.insert("Phones".into(), 1);
//! assert_eq!(m.keys().collect::<Vec<_>>(), ["Phones", "TVs"]);
//! assert_eq!(m["TVs"], 2);
//! ```

/// A map from text keys to values, iterated in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed<V> {
    items: Vec<(String, V)>,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Keyed::new()
    }
}

impl<V> IntoIterator for Keyed<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<V> Keyed<V> {
    /// An empty map.
    pub const fn new() -> Self {
        Keyed { items: Vec::new() }
    }

    fn find(&self, key: &str) -> std::result::Result<usize, usize> {
        self.items.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().map(|i| &self.items[i].1)
    }

    /// The value for `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        match self.find(key) {
            Ok(i) => Some(&mut self.items[i].1),
            Err(_) => None,
        }
    }

    /// True when `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets the value for `key`, returning the one it replaced.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, value)),
            Err(i) => {
                self.items.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.find(key).ok().map(|i| self.items.remove(i).1)
    }

    /// Removes the `i`-th entry in key order (nothing when there is none): for callers
    /// that found it by scanning [`Keyed::iter`].
    pub fn remove_at(&mut self, i: usize) {
        if i < self.items.len() {
            self.items.remove(i);
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Keys and values in key order.
    /// (The slice's own iterator, without an adapter: smaller in the Wasm.)
    pub fn iter(&self) -> std::slice::Iter<'_, (String, V)> {
        self.items.iter()
    }

    /// Keys and changeable values in key order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut V)> {
        self.items.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|(k, _)| k.as_str())
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.items.iter().map(|(_, v)| v)
    }
}

impl<V: Default> Keyed<V> {
    /// The value for `key`, made with `V::default()` when missing.
    pub fn entry(&mut self, key: &str) -> &mut V {
        let i = match self.find(key) {
            Ok(i) => i,
            Err(i) => {
                self.items.insert(i, (key.to_string(), V::default()));
                i
            }
        };
        &mut self.items[i].1
    }
}

impl<V> std::ops::Index<&str> for Keyed<V> {
    type Output = V;

    /// The value for `key`; panics when missing, like `BTreeMap` (tests only: the core
    /// itself uses `get`).
    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no such key"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_sorted_and_unique() {
        let mut m: Keyed<u32> = Keyed::new();
        for (k, v) in [("b", 1), ("a", 2), ("c", 3), ("b", 4)] {
            m.insert(k.into(), v);
        }
        assert_eq!(m.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(), [("a", 2), ("b", 4), ("c", 3)]);
        assert_eq!(m.remove("a"), Some(2));
        assert_eq!(m.len(), 2);
        assert!(m.get("a").is_none());
    }

    #[test]
    fn it_stores_as_a_json_object_and_reads_back() {
        use crate::codec::Json;
        let mut m: Keyed<u64> = Keyed::new();
        m.insert("TVs".into(), 3);
        m.insert("Phones".into(), 1);
        let text = m.to_json();
        assert_eq!(text, r#"{"Phones":1,"TVs":3}"#);
        assert_eq!(Keyed::<u64>::from_json(&text), Some(m));
        // Keys out of order or repeated in stored text still give a sorted map.
        let odd = Keyed::<u64>::from_json(r#"{"b":1,"a":2,"b":5}"#).unwrap();
        assert_eq!(odd.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(odd["b"], 5);
    }
}
