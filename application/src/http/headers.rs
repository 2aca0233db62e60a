//! Header fields (RFC 9110 §5): names compare case-insensitively, values are bytes (RFC 9110
//! §5.5 allows obs-text), order is kept.

/// The header fields of a message, in the order received or added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, Vec<u8>)>,
}

impl Headers {
    /// No fields.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// The number of fields (a repeated name counts each time).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there is no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Adds a field after the others, keeping any with the same name.
    pub fn append(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.fields
            .push((name.to_string(), value.as_ref().to_vec()));
    }

    /// Replaces every field named `name` with one field.
    pub fn set(&mut self, name: &str, value: impl AsRef<[u8]>) {
        self.remove(name);
        self.append(name, value);
    }

    /// Removes every field named `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.fields.len()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// True when some field is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when a comma-separated list in any `name` field holds `token`, compared
    /// case-insensitively (RFC 9110 §5.6.1), as in `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The comma-separated list elements of every `name` field, trimmed, empty ones skipped.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| t.trim_ascii())
            .filter(|t| !t.is_empty())
    }

    /// Writes every field as a field line (`name: value` CRLF, RFC 9112 §5), in order.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Every field as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively_and_order_is_kept() {
        let mut h = Headers::new();
        h.append("Host", "a");
        h.append("X-One", "1");
        h.append("x-one", "2");
        assert_eq!(h.get("HOST"), Some(&b"a"[..]));
        assert_eq!(h.get_all("X-ONE").collect::<Vec<_>>(), vec![b"1", b"2"]);
        assert_eq!(h.count("x-One"), 2);
        h.set("X-One", "3");
        assert_eq!(h.get_all("x-one").collect::<Vec<_>>(), vec![b"3"]);
        assert_eq!(h.remove("host"), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn tokens_are_found_in_comma_lists_across_fields() {
        // RFC 9110 §5.6.1: list elements, optional whitespace, empty elements ignored.
        let mut h = Headers::new();
        h.append("Connection", "keep-alive , ,Upgrade");
        h.append("connection", "close");
        assert!(h.has_token("Connection", "upgrade"));
        assert!(h.has_token("connection", "CLOSE"));
        assert!(!h.has_token("Connection", "keep"));
    }
}
