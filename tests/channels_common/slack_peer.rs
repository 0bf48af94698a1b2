//! The slack stand-in and a person on it (being built).
