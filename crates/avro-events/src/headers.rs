//! Kafka record headers: sent with [`Producer::send_with`](crate::Producer::send_with) and
//! read from [`Received::headers`](crate::Received::headers).

/// One header: a key and an optional value (Kafka allows a header without a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value, `None` for a null value.
    pub value: Option<Vec<u8>>,
}

/// The headers of a Kafka record, in order. A key may occur more than once, as in Kafka.
///
/// ```
/// use avro_events::Headers;
///
/// let headers = Headers::new()
///     .with("trace-id", "4bf92f3577b34da6")
///     .with("source", "checkout");
/// assert_eq!(headers.get_str("source"), Some("checkout"));
/// assert_eq!(headers.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header with `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.push(key, Some(value.as_ref().to_vec()));
        self
    }

    /// Adds a header; `None` is a header with a null value.
    pub fn push(&mut self, key: impl Into<String>, value: Option<Vec<u8>>) {
        self.0.push(Header {
            key: key.into(),
            value,
        });
    }

    /// The value of the last header named `key` (Kafka's `lastHeader`); `None` when there is
    /// none or its value is null.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// [`Headers::get`] as UTF-8 text; `None` also when the value is not UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Keeps only the headers for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&Header) -> bool) {
        self.0.retain(keep);
    }

    /// Every header, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'h> IntoIterator for &'h Headers {
    type Item = &'h Header;
    type IntoIter = std::slice::Iter<'h, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<K: Into<String>, V: AsRef<[u8]>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Self::new(), |headers, (k, v)| headers.with(k, v))
    }
}

#[cfg(feature = "kafka")]
impl Headers {
    /// rdkafka's headers for a record to produce.
    pub(crate) fn to_rdkafka(&self) -> rdkafka::message::OwnedHeaders {
        self.0.iter().fold(
            rdkafka::message::OwnedHeaders::new_with_capacity(self.0.len()),
            |headers, h| {
                headers.insert(rdkafka::message::Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                })
            },
        )
    }

    /// The headers of a received record (keys that are not UTF-8 are read lossily).
    pub(crate) fn from_rdkafka(headers: Option<&rdkafka::message::OwnedHeaders>) -> Self {
        use rdkafka::message::Headers as _;
        let Some(headers) = headers else {
            return Self::new();
        };
        Self(
            headers
                .iter()
                .map(|h| Header {
                    key: h.key.to_owned(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_header_wins_and_null_values_read_as_none() {
        let mut headers: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        headers.push("n", None);
        assert_eq!(headers.get_str("a"), Some("3"));
        assert_eq!(headers.get("n"), None);
        assert_eq!(headers.get("missing"), None);
        assert_eq!(headers.len(), 4);
        let keys: Vec<_> = headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a", "n"]);
    }
}
