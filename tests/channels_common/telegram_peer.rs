//! The telegram stand-in and a person on it (being built).
