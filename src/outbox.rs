//! The outbox: messages waiting to be sent, as Segment-shaped JSON lines. It is bounded
//! (oldest dropped first, and the drop counted) so that a server that never answers cannot
//! fill a shopper's storage. When and how messages are sent is `delivery`'s concern.

/// Most messages kept.
pub const MAX_MESSAGES: usize = 500;
/// Most bytes of JSON kept.
pub const MAX_BYTES: usize = 256 * 1024;

/// Messages in the order they were made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    items: Vec<String>,
    /// A hash of each item's `messageId`, so the duplicate check compares numbers.
    ids: Vec<u64>,
    bytes: usize,
    /// Messages dropped to keep the bound, since this outbox was created or loaded.
    pub dropped: u64,
}

impl Outbox {
    /// Adds a message, unless one with the same `messageId` is already waiting.
    pub fn push(&mut self, message: String) {
        let id = message_id(&message);
        let h = id.map_or(0, hash);
        // The hashes first (a tight loop over numbers); the ids only when one matches.
        if id.is_some()
            && crate::time::has(&self.ids, h)
            && self.ids.iter().zip(&self.items).any(|(x, m)| *x == h && message_id(m) == id)
        {
            return;
        }
        self.bytes += message.len();
        self.items.push(message);
        self.ids.push(h);
        let mut over = 0;
        let mut bytes = self.bytes;
        while self.items.len() - over > MAX_MESSAGES || (bytes > MAX_BYTES && self.items.len() - over > 1) {
            bytes -= self.items[over].len();
            over += 1;
        }
        if over > 0 {
            // One shift for the whole drop, not one per message.
            self.items.drain(..over);
            self.ids.drain(..over);
            self.bytes = bytes;
            self.dropped += over as u64;
        }
    }

    /// The waiting messages, oldest first.
    pub fn messages(&self) -> &[String] {
        &self.items
    }

    /// Removes the messages with these ids (delivered ones).
    pub fn remove_ids(&mut self, ids: &[String]) {
        let mut i = 0;
        while i < self.items.len() {
            let id = message_id(&self.items[i]).unwrap_or_default();
            if ids.iter().any(|x| x == id) {
                self.bytes -= self.items[i].len();
                self.items.remove(i);
                self.ids.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Forgets every message.
    pub fn clear(&mut self) {
        self.items.clear();
        self.ids.clear();
        self.bytes = 0;
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The stored form: one message per line (JSON text never holds a raw newline).
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(self.bytes + self.items.len());
        join_into(&mut s, &self.items, '\n');
        s
    }

    /// Reads the stored form; lines that are not a message are skipped.
    pub fn decode(text: &str) -> Outbox {
        let mut o = Outbox::default();
        for line in crate::json::pieces(text, b'\n').filter(|l| message_id(l).is_some()) {
            o.push(line.to_string());
        }
        o.dropped = 0;
        o
    }

    /// The messages as one JSON array.
    pub fn to_json_array(&self) -> String {
        let mut s = String::with_capacity(self.bytes + self.items.len() + 2);
        s.push('[');
        join_into(&mut s, &self.items, ',');
        s.push(']');
        s
    }
}

/// Appends `items` with `sep` between them (a loop: smaller in the Wasm than `join`).
pub fn join_into(out: &mut String, items: &[String], sep: char) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(item);
    }
}

/// FNV-1a: a cheap, stable hash of a message id.
fn hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// The `messageId` of a message written by [`crate::message`], which puts it first.
pub fn message_id(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("{\"messageId\":\"")?;
    rest.get(..36).filter(|id| rest.as_bytes().get(36) == Some(&b'"') && crate::json::find_byte(id, b'"').is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> String {
        format!("{{\"messageId\":\"{:036}\",\"type\":\"track\"}}", i)
    }

    #[test]
    fn a_repeated_message_id_is_kept_once() {
        let mut o = Outbox::default();
        o.push(msg(1));
        o.push(msg(1));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn the_oldest_messages_are_dropped_and_counted_past_the_bound() {
        let mut o = Outbox::default();
        for i in 0..MAX_MESSAGES + 7 {
            o.push(msg(i));
        }
        assert_eq!(o.len(), MAX_MESSAGES);
        assert_eq!(o.dropped, 7);
        assert_eq!(message_id(&o.messages()[0]), Some(format!("{:036}", 7).as_str()));
    }

    #[test]
    fn the_stored_form_round_trips_and_skips_garbage() {
        let mut o = Outbox::default();
        o.push(msg(1));
        o.push(msg(2));
        let text = o.encode() + "\nnot a message\n";
        assert_eq!(Outbox::decode(&text).messages(), o.messages());
    }
}
