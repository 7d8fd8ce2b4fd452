//! JSON read as leniently as Go's `encoding/json`, which daprd decodes its
//! HTTP bodies with, so that what daprd accepts plughost accepts too:
//!
//! * object keys match struct fields **case-insensitively** (an exact match
//!   wins; `"Key"` fills `key`, `"entryID"` fills `entryId`); when two keys
//!   name the same field the exact one wins (Go takes the last one, but a
//!   parsed object no longer has an order);
//! * `null` means "leave it empty" for every field type: an empty string,
//!   list or map, `0`, `false`, `None`, or a struct of defaults (so a field
//!   that must be present still has to be present); only an untyped field
//!   ([`serde_json::Value`]) keeps the `null`;
//! * unknown keys are ignored (serde's default too).
//!
//! It is one generic place: the JSON is parsed into a [`Value`], then
//! deserialized through [`Lenient`], a deserializer that wraps every value and
//! renames object keys against the field names serde hands to
//! `deserialize_struct`. Targets that serde buffers (`#[serde(flatten)]`,
//! untagged enums) fall back to serde's strict rules; none are used here.
//! Case folding is ASCII (Go also folds `K`/`ſ` to the Kelvin and long-s
//! signs; nothing Dapr sends needs that).

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Error, Value};

/// `bytes` parsed as JSON into `T` with Go's leniency.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    from_value(serde_json::from_slice(bytes)?)
}

/// `value` read into `T` with Go's leniency.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Lenient(value))
}

/// A JSON value deserialized the Go way (see the module docs).
struct Lenient(Value);

impl IntoDeserializer<'_, Error> for Lenient {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// The field `key` fills: itself if a field has exactly that name, else the
/// first field equal to it ignoring ASCII case, else itself (unknown).
fn field_name(key: String, fields: &[&str]) -> String {
    if fields.contains(&key.as_str()) {
        return key;
    }
    fields.iter().find(|f| f.eq_ignore_ascii_case(&key)).map_or(key, |f| (*f).to_owned())
}

fn visit_object<'de, V: Visitor<'de>>(
    object: serde_json::Map<String, Value>,
    fields: Option<&[&str]>,
    visitor: V,
) -> Result<V::Value, Error> {
    // (field, value, whether the key was the exact field name)
    let mut entries: Vec<(String, Lenient, bool)> = Vec::with_capacity(object.len());
    for (key, value) in object {
        let (key, exact) = match fields {
            Some(fields) => {
                let field = field_name(key.clone(), fields);
                let exact = field == key;
                (field, exact)
            }
            None => (key, true),
        };
        // Two keys for one field: the exact one wins (Go: the last one; the
        // parsed object no longer knows the order).
        match entries.iter_mut().find(|(k, _, _)| *k == key) {
            Some(entry) if exact || !entry.2 => *entry = (key, Lenient(value), exact),
            Some(_) => {}
            None => entries.push((key, Lenient(value), exact)),
        }
    }
    let mut map = MapDeserializer::new(entries.into_iter().map(|(k, v, _)| (k, v)));
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::new(items.into_iter().map(Lenient));
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

/// Numbers and booleans: `null` is zero / `false`, anything else as serde_json reads it.
macro_rules! zero_on_null {
    ($($method:ident => $visit:ident($zero:expr)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.$visit($zero),
                other => other.$method(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = Error;

    zero_on_null! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0), deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0), deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_str(""), deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]), deserialize_byte_buf => visit_bytes(&[]),
    }

    /// Untyped targets (`Value`) get the value as it is, `null` included.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visit_array(Vec::new(), visitor),
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visit_object(serde_json::Map::new(), None, visitor),
            Value::Object(object) => visit_object(object, None, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visit_object(serde_json::Map::new(), Some(fields), visitor),
            Value::Object(object) => visit_object(object, Some(fields), visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char unit unit_struct tuple tuple_struct identifier
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        entry_id: String,
        #[serde(default)]
        event: Value,
        #[serde(default)]
        content_type: String,
        #[serde(default)]
        metadata: BTreeMap<String, String>,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        enabled: bool,
        #[serde(default)]
        tags: Vec<String>,
        options: Option<Options>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    struct Options {
        concurrency: Option<String>,
    }

    fn entry(id: &str) -> Entry {
        Entry { entry_id: id.into(), ..Entry::default() }
    }

    /// What Go's `encoding/json` does with each input, for a struct shaped
    /// like daprd's bulk publish entry.
    #[test]
    fn decodes_like_go() {
        let metadata = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let cases: Vec<(Value, Entry)> = vec![
            (json!({"entryId": "a"}), entry("a")),
            // Field names match case-insensitively.
            (json!({"entryID": "a"}), entry("a")),
            (
                json!({"ENTRYID": "a", "ContentType": "text/plain"}),
                Entry { content_type: "text/plain".into(), ..entry("a") },
            ),
            // Two keys for one field: the exact one wins, whatever the order
            // (Go takes the last one; a parsed object has no order).
            (json!({"entryId": "exact", "ENTRYID": "folded"}), entry("exact")),
            (json!({"ENTRYID": "folded", "entryId": "exact"}), entry("exact")),
            // `null` leaves any typed field empty.
            (
                json!({"entryId": "a", "contentType": null, "metadata": null, "count": null, "enabled": null, "tags": null, "options": null}),
                entry("a"),
            ),
            (
                json!({"entryId": "a", "tags": ["x", null]}),
                Entry { tags: vec!["x".into(), String::new()], ..entry("a") },
            ),
            (json!({"entryId": "a", "metadata": {"k": null}}), Entry { metadata: metadata("k", ""), ..entry("a") }),
            // ...but an untyped field keeps it.
            (json!({"entryId": "a", "event": null}), Entry { event: Value::Null, ..entry("a") }),
            // Map keys are data: not folded.
            (json!({"entryId": "a", "Metadata": {"TTL": "1"}}), Entry { metadata: metadata("TTL", "1"), ..entry("a") }),
            // Nested structs too; unknown keys are ignored.
            (
                json!({"entryId": "a", "OPTIONS": {"Concurrency": "first-write"}, "other": 1}),
                Entry { options: Some(Options { concurrency: Some("first-write".into()) }), ..entry("a") },
            ),
        ];
        for (input, expected) in cases {
            let decoded: Entry = from_value(input.clone()).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(decoded, expected, "{input}");
        }
    }

    #[test]
    fn wrong_types_still_fail() {
        for input in [
            json!({"entryId": 1}),
            json!({"entryId": "a", "tags": "x"}),
            json!({"entryId": "a", "count": -1}),
            json!([1]),
        ] {
            assert!(from_value::<Entry>(input.clone()).is_err(), "{input} must not decode");
        }
        // A struct given `null` is a struct of defaults: a required field is still missing.
        assert!(from_value::<Entry>(Value::Null).is_err());
        assert_eq!(from_value::<Options>(Value::Null).unwrap(), Options::default());
    }

    #[test]
    fn top_level_null_is_empty() {
        assert_eq!(from_slice::<Vec<Entry>>(b"null").unwrap(), Vec::new());
        assert_eq!(from_slice::<BTreeMap<String, String>>(b"null").unwrap(), BTreeMap::new());
        assert!(from_slice::<Vec<Entry>>(b"[{").is_err());
    }
}
