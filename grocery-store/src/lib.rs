//! Store domain logic (being written).
