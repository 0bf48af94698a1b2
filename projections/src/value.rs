//! Rows as plain values, so the same projection code can write SQLite tables or in-memory
//! tables (used by time travel and by the tests that compare the two).

use serde::Serialize;

/// One SQLite value. The derived order matches SQLite's (NULL < INTEGER < TEXT < BLOB,
/// text by bytes), so sorted dumps compare equal across both stores.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// NULL.
    Null,
    /// INTEGER.
    Int(i64),
    /// TEXT.
    Text(String),
    /// BLOB.
    Blob(Vec<u8>),
}

/// A row: values in the table's column order.
pub type Row = Vec<Value>;

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v as i64)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// The shape of a projection table: its name, its columns in order, and how many leading
/// columns form the primary key.
#[derive(Debug)]
pub struct Table {
    /// SQL table name.
    pub name: &'static str,
    /// Column names, primary key first.
    pub columns: &'static [&'static str],
    /// Number of leading primary-key columns.
    pub key_len: usize,
}

impl Table {
    /// The key part of a row.
    pub fn key_of(&self, row: &[Value]) -> Row {
        row[..self.key_len.min(row.len())].to_vec()
    }
}

/// Build a row from values of mixed types.
#[macro_export]
macro_rules! row {
    ($($v:expr),* $(,)?) => { vec![$($crate::Value::from($v)),*] };
}
