//! Row changes produced by projections, and the in-memory tables they can be applied to.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::value::{Row, Table};

/// Changes to a set of tables, last write wins per key. Projections write here; the runner
/// flushes it to SQLite in one transaction, and time travel applies it to [`MemoryTables`].
#[derive(Default)]
pub struct Changes {
    tables: BTreeMap<&'static str, (&'static Table, BTreeMap<Row, Option<Row>>)>,
}

impl Changes {
    /// Insert or replace a full row.
    pub fn upsert(&mut self, table: &'static Table, row: Row) {
        debug_assert_eq!(
            row.len(),
            table.columns.len(),
            "row shape of {}",
            table.name
        );
        let key = table.key_of(&row);
        self.entry(table).insert(key, Some(row));
    }

    /// Delete the row with this key.
    pub fn delete(&mut self, table: &'static Table, key: Row) {
        self.entry(table).insert(key, None);
    }

    fn entry(&mut self, table: &'static Table) -> &mut BTreeMap<Row, Option<Row>> {
        &mut self
            .tables
            .entry(table.name)
            .or_insert_with(|| (table, BTreeMap::new()))
            .1
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|(_, rows)| rows.is_empty())
    }

    /// Number of row changes.
    pub fn len(&self) -> usize {
        self.tables.values().map(|(_, rows)| rows.len()).sum()
    }

    /// Take the changes, table by table.
    pub fn drain(&mut self) -> Vec<(&'static Table, BTreeMap<Row, Option<Row>>)> {
        std::mem::take(&mut self.tables).into_values().collect()
    }
}

/// Tables held in memory: table name -> key -> row.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryTables {
    /// The rows of every table, sorted by key.
    pub tables: BTreeMap<String, BTreeMap<Row, Row>>,
}

impl MemoryTables {
    /// Apply (and empty) a change set.
    pub fn apply(&mut self, changes: &mut Changes) {
        for (table, rows) in changes.drain() {
            let t = self.tables.entry(table.name.to_string()).or_default();
            for (key, row) in rows {
                match row {
                    Some(row) => {
                        t.insert(key, row);
                    }
                    None => {
                        t.remove(&key);
                    }
                }
            }
        }
    }

    /// Rows of one table in key order (empty when the table has none).
    pub fn rows(&self, table: &str) -> Vec<Row> {
        self.tables
            .get(table)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }
}
