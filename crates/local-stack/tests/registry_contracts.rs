//! The local Schema Registry's schema references, schema GUIDs, metadata and rule sets over
//! HTTP: what is stored, what is served back, and Confluent's error codes.

use local_stack::registry::{RegistryHandle, SchemaRegistry};
use serde_json::{Value, json};

mod common;

use common::Api;

impl Api {
    /// Registers `body` under `subject`, expecting success; returns the response.
    async fn register(&self, subject: &str, body: Value) -> Value {
        let (status, response) = self
            .post(&format!("/subjects/{subject}/versions"), body)
            .await;
        assert_eq!(status, 200, "register {subject}: {response}");
        response
    }
}

async fn start(persist: Option<std::path::PathBuf>) -> (RegistryHandle, Api) {
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), persist)
        .await
        .expect("start registry");
    let api = Api::new(&registry);
    (registry, api)
}

fn assert_error(response: &(u16, Value), status: u16, code: u64) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_eq!(response.1["error_code"], json!(code), "{}", response.1);
}

const PRODUCT: &str = r#"{"type":"record","name":"Product","namespace":"shop","fields":[{"name":"sku","type":"string"},{"name":"unit","type":{"type":"enum","name":"Unit","symbols":["EACH","KG"]}}]}"#;
/// Uses `shop.Product` twice and `shop.Unit` (defined inside Product) once.
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"main","type":"Product"},{"name":"extra","type":["null","shop.Product"],"default":null},{"name":"unit","type":"Unit"}]}"#;

fn order_request(version: i64) -> Value {
    json!({
        "schema": ORDER,
        "references": [{"name": "shop.Product", "subject": "product", "version": version}],
    })
}

#[tokio::test]
async fn references_are_resolved_stored_and_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("registry.json");
    let (registry, api) = start(Some(file.clone())).await;
    let product = api.register("product", json!({ "schema": PRODUCT })).await;

    // A reference to a subject or version that does not exist: 42201, as Confluent answers.
    for (subject, version, shown) in [
        ("nope", 1, "\"nope\" and version 1"),
        ("product", 7, "\"product\" and version 7"),
    ] {
        let response = api
            .post(
                "/subjects/order-value/versions",
                json!({"schema": ORDER, "references": [{"name": "shop.Product", "subject": subject, "version": version}]}),
            )
            .await;
        assert_error(&response, 422, 42201);
        let message = response.1["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("No schema reference found for subject {shown}")),
            "{message}"
        );
    }
    // Without its reference the schema names an unknown type: 42201 too.
    let (status, body) = api
        .post("/subjects/order-value/versions", json!({ "schema": ORDER }))
        .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (422, json!(42201)),
        "{body}"
    );

    // Version -1 is the latest, stored as its number.
    let order = api.register("order-value", order_request(-1)).await;
    let references = json!([{"name": "shop.Product", "subject": "product", "version": 1}]);
    assert_eq!(order["references"], references, "{order}");
    assert_eq!(order["version"], json!(1));
    // Served in canonical form, as Java Avro writes it after its references (what Confluent
    // stores): the referenced type by its name, short in its own namespace; `Unit`, defined
    // inside `Product` rather than referenced itself, written out where first used.
    let canonical = ORDER.replace("shop.Product", "Product").replace(
        r#""type":"Unit""#,
        r#""type":{"type":"enum","name":"Unit","symbols":["EACH","KG"]}"#,
    );
    assert_eq!(order["schema"], json!(canonical));
    assert_ne!(order["id"], product["id"]);
    let id = order["id"].as_u64().expect("id");

    let (status, by_id) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(
        (&by_id["schema"], &by_id["references"]),
        (&json!(canonical), &references)
    );
    let (_, version) = api.get("/subjects/order-value/versions/1").await;
    assert_eq!(
        (&version["id"], &version["references"]),
        (&json!(id), &references)
    );
    let (status, found) = api.post("/subjects/order-value", order_request(1)).await;
    assert_eq!(
        (status, &found["id"], &found["version"]),
        (200, &json!(id), &json!(1)),
        "{found}"
    );
    // Registering again: same id, no new version.
    assert_eq!(
        api.register("order-value", order_request(1)).await["id"],
        json!(id)
    );
    // The schema sent with its references written out (as a producer holding the whole schema
    // sends it) finds the version with references, as Confluent's registry finds it; and
    // registering it adds no version.
    let whole = ORDER.replace(
        r#"{"name":"main","type":"Product"}"#,
        &format!(r#"{{"name":"main","type":{PRODUCT}}}"#),
    );
    let (status, found) = api
        .post("/subjects/order-value", json!({ "schema": whole }))
        .await;
    assert_eq!(
        (status, &found["id"], &found["version"]),
        (200, &json!(id), &json!(1)),
        "{found}"
    );
    let again = api
        .register("order-value", json!({ "schema": whole }))
        .await;
    assert_eq!(
        (&again["id"], &again["version"]),
        (&json!(id), &json!(1)),
        "{again}"
    );
    // Not under another subject, where nothing has references.
    api.register("whole-value", json!({ "schema": whole }))
        .await;
    let (_, found) = api.post("/subjects/whole-value", order_request(1)).await;
    assert_eq!(found["error_code"], json!(40403), "{found}");

    // Compatibility runs on the schema with its references written out: a new field with a
    // default of the referenced type is BACKWARD-compatible.
    let v2 = ORDER.replace(
        r#"{"name":"unit","type":"Unit"}"#,
        r#"{"name":"unit","type":"Unit"},{"name":"spare","type":["null","Product"],"default":null}"#,
    );
    let (status, compat) = api
        .post(
            "/compatibility/subjects/order-value/versions/latest?verbose=true",
            json!({"schema": v2, "references": references}),
        )
        .await;
    assert_eq!(
        (status, &compat["is_compatible"]),
        (200, &json!(true)),
        "{compat}"
    );
    let breaking = ORDER.replace(
        r#""type":"Unit"}"#,
        r#""type":"Unit"},{"name":"x","type":"Product"}"#,
    );
    let (_, compat) = api
        .post(
            "/compatibility/subjects/order-value/versions/latest",
            json!({"schema": breaking, "references": references}),
        )
        .await;
    assert_eq!(compat["is_compatible"], json!(false), "{compat}");

    // Who refers to product version 1.
    assert_eq!(
        api.get("/subjects/product/versions/1/referencedby").await,
        (200, json!([id]))
    );
    assert_eq!(
        api.get("/subjects/product/versions/latest/referencedby")
            .await,
        (200, json!([id]))
    );
    assert_eq!(
        api.get("/subjects/order-value/versions/1/referencedby")
            .await,
        (200, json!([]))
    );

    // The state survives a restart (the referring schema is parsed again from the file).
    registry.shutdown().await.expect("shutdown");
    let (registry, api) = start(Some(file)).await;
    let (_, by_id) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(by_id["references"], references, "{by_id}");

    // A referenced version cannot be deleted while a live schema refers to it (42206), nor
    // permanently while any schema, soft-deleted too, does.
    let refused = api.delete("/subjects/product/versions/1").await;
    assert_error(&refused, 422, 42206);
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("subject=product,version=1"),
        "{}",
        refused.1
    );
    assert_error(&api.delete("/subjects/product").await, 422, 42206);
    assert_eq!(api.delete("/subjects/order-value").await, (200, json!([1])));
    assert_eq!(
        api.get("/subjects/product/versions/1/referencedby").await,
        (200, json!([]))
    );
    assert_eq!(
        api.get("/subjects/product/versions/1/referencedby?deleted=true")
            .await,
        (200, json!([id]))
    );
    assert_eq!(
        api.delete("/subjects/product/versions/1").await,
        (200, json!(1))
    );
    assert_error(
        &api.delete("/subjects/product/versions/1?permanent=true")
            .await,
        422,
        42206,
    );
    // Once the referring schema is gone for good, so can the referenced one be.
    assert_eq!(
        api.delete("/subjects/order-value?permanent=true").await,
        (200, json!([1]))
    );
    assert_eq!(
        api.delete("/subjects/product/versions/1?permanent=true")
            .await,
        (200, json!(1))
    );
    registry.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn every_schema_has_a_guid() {
    let (registry, api) = start(None).await;
    let first = api
        .register("a", json!({ "schema": "{\"type\": \"string\"}" }))
        .await;
    // Confluent's GUID: the MD5 of the canonical text (and contract), as a UUID. MD5 of the
    // 8 bytes `"string"` is 095d71cf12556b9d5e330ad575b3df5d.
    assert_eq!(
        first["guid"],
        json!("095d71cf-1255-6b9d-5e33-0ad575b3df5d"),
        "{first}"
    );
    let again = api.register("b", json!({ "schema": "\"string\"" })).await;
    assert_eq!(
        (&again["id"], &again["guid"]),
        (&first["id"], &first["guid"])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{}/subjects", first["id"]))
            .await,
        (200, json!(["a", "b"]))
    );
    let other = api.register("c", json!({ "schema": "\"long\"" })).await;
    assert_ne!(other["guid"], first["guid"]);

    let guid = first["guid"].as_str().expect("guid");
    let (status, body) = api.get(&format!("/schemas/guids/{guid}")).await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"schema": "\"string\"", "guid": guid}))
    );
    let (_, by_id) = api.get(&format!("/schemas/ids/{}", first["id"])).await;
    assert_eq!(by_id["guid"], json!(guid));
    let (_, latest) = api.get("/subjects/a/versions/latest").await;
    assert_eq!(latest["guid"], json!(guid));
    let (_, found) = api
        .post("/subjects/b", json!({ "schema": "\"string\"" }))
        .await;
    assert_eq!(found["guid"], json!(guid));

    assert_error(
        &api.get("/schemas/guids/00000000-0000-0000-0000-000000000000")
            .await,
        404,
        40403,
    );
    assert_error(&api.get("/schemas/guids/not-a-guid").await, 404, 40403);
    registry.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn metadata_and_rule_sets_are_part_of_a_schema() {
    let (registry, api) = start(None).await;
    let schema = r#"{"type":"record","name":"Line","fields":[{"name":"qty","type":"int"}]}"#;
    let rules = json!({"domainRules": [{
        "name": "positiveQty", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
        "expr": "message.qty > 0", "onFailure": "DLQ", "params": {"dlq.topic": "dlq", "a": "b"},
    }]});
    let with = json!({
        "schema": schema,
        "metadata": {
            "properties": {"owner": "picking", "major": "1"},
            "tags": {"qty": ["PII", "A"]},
            "sensitive": ["qty", "b"],
        },
        "ruleSet": rules,
    });
    let v1 = api.register("line", with.clone()).await;
    // Served back normalized, as Confluent serves them.
    assert_eq!(
        v1["metadata"],
        json!({
            "properties": {"major": "1", "owner": "picking"},
            "tags": {"qty": ["A", "PII"]},
            "sensitive": ["b", "qty"],
        })
    );
    assert_eq!(
        v1["ruleSet"],
        json!({"domainRules": [{
            "name": "positiveQty", "kind": "CONDITION", "mode": "WRITE", "type": "CEL",
            "expr": "message.qty > 0", "onFailure": "DLQ",
            "params": {"a": "b", "dlq.topic": "dlq"}, "disabled": false,
        }]})
    );
    let id = v1["id"].clone();
    let (_, by_id) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(
        (&by_id["metadata"], &by_id["ruleSet"]),
        (&v1["metadata"], &v1["ruleSet"])
    );

    // Without metadata and rules, a registration takes the latest version's: the same schema.
    let inherited = api.register("line", json!({ "schema": schema })).await;
    assert_eq!(
        (&inherited["id"], &inherited["version"]),
        (&id, &json!(1)),
        "{inherited}"
    );
    let (status, found) = api
        .post("/subjects/line", json!({ "schema": schema }))
        .await;
    assert_eq!((status, &found["id"]), (200, &id), "{found}");
    // Other metadata: another schema (new id, new GUID, new version).
    let mut other = with.clone();
    other["metadata"]["properties"]["major"] = json!("2");
    let v2 = api.register("line", other).await;
    assert_ne!(v2["id"], id);
    assert_ne!(v2["guid"], v1["guid"]);
    assert_eq!(v2["version"], json!(2));
    assert_eq!(v2["ruleSet"], v1["ruleSet"], "rules given again");

    // The latest version with given properties.
    let (status, latest) = api.get("/subjects/line/metadata?key=major&value=1").await;
    assert_eq!(
        (status, &latest["version"], &latest["id"]),
        (200, &json!(1), &id),
        "{latest}"
    );
    let (_, latest) = api
        .get("/subjects/line/metadata?key=owner&value=picking")
        .await;
    assert_eq!(latest["version"], json!(2));
    let (_, latest) = api
        .get("/subjects/line/metadata?key=owner&key=major&value=picking&value=2")
        .await;
    assert_eq!(latest["version"], json!(2));
    assert_error(
        &api.get("/subjects/line/metadata?key=major&value=3").await,
        404,
        40403,
    );
    assert_error(
        &api.get("/subjects/nothing/metadata?key=a&value=b").await,
        404,
        40401,
    );

    // A malformed rule set: 42210.
    for bad in [
        json!({"domainRules": [{"name": "r", "type": "CEL", "mode": "UPGRADE"}]}),
        json!({"domainRules": [{"name": "r", "type": "CEL"}, {"name": "r", "type": "CEL"}]}),
        json!({"migrationRules": [{"name": "1r", "type": "JSONATA", "mode": "UPGRADE"}]}),
        json!({"domainRules": [{"name": "r"}]}),
    ] {
        let response = api
            .post(
                "/subjects/line/versions",
                json!({"schema": schema, "ruleSet": bad}),
            )
            .await;
        assert_error(&response, 422, 42210);
        // Only registrations check rules: a lookup with them finds nothing (40403).
        let response = api
            .post("/subjects/line", json!({"schema": schema, "ruleSet": bad}))
            .await;
        assert_error(&response, 404, 40403);
    }
    registry.shutdown().await.expect("shutdown");
}
