//! The modules of `src/` import each other without a circle (how the graph is read:
//! [`test_support::ImportGraph`]): a service's `src/` is parsing, wiring and its HTTP routes,
//! each module using the ones below it, none reaching back up.

#[test]
fn the_modules_import_each_other_without_a_circle() {
    test_support::ImportGraph::of_src(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
        .expect("reading src/")
        .assert_no_circle();
}
