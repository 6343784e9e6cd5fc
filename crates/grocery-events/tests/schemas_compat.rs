//! The project's schemas under the compatibility rules (moved from the compat tests, which
//! know nothing of groceries).

use apache_avro::Schema;
use avro_events::{compat::CompatibilityLevel, compat::check};

#[test]
fn project_schemas_are_compatible_with_themselves() {
    for text in [
        include_str!("../schemas/grocery.orders.v1.avsc"),
        include_str!("../schemas/grocery.picklist.v1.avsc"),
    ] {
        let schema = Schema::parse_str(text).expect("project schema");
        for level in CompatibilityLevel::ALL {
            assert!(check(level, &schema, &[schema.clone(), schema.clone()]).is_compatible());
        }
    }
}
