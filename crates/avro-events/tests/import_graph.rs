//! The modules of `src/` import each other without a circle: children get the shared handle
//! (`shared.rs`), never the client, and lower modules (config, dlq, record, context, codec,
//! registry, auth) never reach back up to the clients built from them. How the graph is read
//! (edges are `crate::` paths, root re-exports count for their module, unit tests left out):
//! [`test_support::ImportGraph`].

#[test]
fn the_modules_import_each_other_without_a_circle() {
    let graph = test_support::ImportGraph::of_src(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
        .expect("reading src/");
    assert!(
        graph
            .edges
            .get("codec")
            .is_some_and(|t| t.contains("registry")),
        "the graph was read: {graph:?}"
    );
    graph.assert_no_circle();
}
