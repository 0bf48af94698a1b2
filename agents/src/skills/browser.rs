//! The `browser` skill (being written).
