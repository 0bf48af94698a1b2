//! The `calendar` skill (being written).
