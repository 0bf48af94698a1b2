//! (De)serializes a map as a list of `[key, value]` pairs, for keys JSON objects can't
//! hold (byte strings, tuples): the linked session's file uses it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Write the map as `[[key, value], ...]`.
pub fn serialize<K, V, S>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    K: Serialize,
    V: Serialize,
    S: Serializer,
{
    s.collect_seq(map)
}

/// Read a map written by [`serialize`].
pub fn deserialize<'de, K: Ord, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    (K, V): Deserialize<'de>,
    D: Deserializer<'de>,
{
    Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
}
