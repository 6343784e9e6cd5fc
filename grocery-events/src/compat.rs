//! Schema compatibility (placeholder, being written).
