//! The local Schema Registry over HTTP: endpoints, Confluent shapes and error codes.

use local_stack::registry::{RegistryHandle, SchemaRegistry};
use reqwest::Method;
use serde_json::{Value, json};

mod common;

use common::Api;

impl Api {
    /// Registers and returns (status, body).
    async fn register(&self, subject: &str, schema: &str) -> (u16, Value) {
        self.post(
            &format!("/subjects/{subject}/versions"),
            json!({ "schema": schema }),
        )
        .await
    }

    /// Registers and expects success; returns the id.
    async fn register_ok(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, 200, "register {subject}: {body}");
        body["id"].as_u64().expect("id")
    }

    async fn set_level(&self, subject: &str, level: &str) {
        let (status, body) = self
            .put(
                &format!("/config/{subject}"),
                json!({ "compatibility": level }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({ "compatibility": level }));
    }
}

async fn start() -> (RegistryHandle, Api) {
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let api = Api::new(&registry);
    (registry, api)
}

fn assert_error(response: &(u16, Value), status: u16, code: u64) {
    assert_eq!(response.0, status, "{}", response.1);
    assert_eq!(response.1["error_code"], json!(code), "{}", response.1);
    assert!(
        response.1["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

/// A record `R` with the given fields.
fn rec(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"R","namespace":"io.test","fields":[{fields}]}}"#)
}

const ID: &str = r#"{"name":"id","type":"string"}"#;

#[tokio::test]
async fn register_fetch_and_ids() {
    let (_registry, api) = start().await;
    let v1 = rec(ID);
    let id = api.register_ok("orders-value", &v1).await;
    // Same schema again (other whitespace and key order): same id, no new version.
    let reordered = r#"{ "namespace": "io.test", "name": "R", "type": "record",
        "fields": [ { "type": "string", "name": "id" } ] }"#;
    assert_eq!(api.register_ok("orders-value", reordered).await, id);
    assert_eq!(
        api.get("/subjects/orders-value/versions").await,
        (200, json!([1]))
    );

    let v2 = rec(&format!(r#"{ID},{{"name":"n","type":"int","default":0}}"#));
    let id2 = api.register_ok("orders-value", &v2).await;
    assert_ne!(id2, id);
    assert_eq!(
        api.get("/subjects/orders-value/versions").await,
        (200, json!([1, 2]))
    );
    assert_eq!(api.get("/subjects").await, (200, json!(["orders-value"])));

    let (status, body) = api.get("/subjects/orders-value/versions/1").await;
    assert_eq!(status, 200);
    assert_eq!(body["subject"], "orders-value");
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], id);
    let served: Value = serde_json::from_str(body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(served, serde_json::from_str::<Value>(&v1).unwrap());
    for latest in ["latest", "-1"] {
        let (status, body) = api
            .get(&format!("/subjects/orders-value/versions/{latest}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            (body["version"].clone(), body["id"].clone()),
            (json!(2), json!(id2))
        );
    }
    let (status, raw) = api.get("/subjects/orders-value/versions/2/schema").await;
    assert_eq!(status, 200);
    assert_eq!(raw, serde_json::from_str::<Value>(&v2).unwrap());
    assert_eq!(
        api.get("/subjects/orders-value/versions/2/referencedby")
            .await,
        (200, json!([]))
    );

    let (status, body) = api.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(body["schema"].as_str().unwrap()).unwrap(),
        serde_json::from_str::<Value>(&v1).unwrap()
    );
    let (status, raw) = api.get(&format!("/schemas/ids/{id2}/schema")).await;
    assert_eq!(
        (status, raw),
        (200, serde_json::from_str::<Value>(&v2).unwrap())
    );
    assert_eq!(api.get("/schemas/types").await, (200, json!(["AVRO"])));

    // Subject names with URL-special characters (percent-encoded by clients).
    assert_eq!(api.register_ok("ns%3Aorders.v1%2Fvalue", &v1).await, id);
    assert_eq!(
        api.get("/subjects/ns%3Aorders.v1%2Fvalue/versions").await,
        (200, json!([1]))
    );
    let (_, subjects) = api.get("/subjects").await;
    assert!(
        subjects
            .as_array()
            .unwrap()
            .contains(&json!("ns:orders.v1/value"))
    );
    assert_eq!(api.delete("/subjects/ns:orders.v1%2Fvalue").await.0, 200);
    assert_eq!(
        api.delete("/subjects/ns:orders.v1%2Fvalue?permanent=true")
            .await
            .0,
        200
    );

    // Ids are global: the same schema under a second subject gets the same id.
    assert_eq!(api.register_ok("other-value", &v1).await, id);
    let (status, body) = api.get(&format!("/schemas/ids/{id}/versions")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            {"subject": "orders-value", "version": 1},
            {"subject": "other-value", "version": 1}
        ])
    );
    assert_eq!(
        api.get("/subjects").await,
        (200, json!(["orders-value", "other-value"]))
    );
}

#[tokio::test]
async fn content_types() {
    let (registry, _api) = start().await;
    let http = reqwest::Client::new();
    // Plain application/json is accepted too.
    let response = http
        .post(format!("{}/subjects/s/versions", registry.url()))
        .header("Content-Type", "application/json")
        .body(json!({"schema": "\"string\""}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    let response = http
        .get(format!("{}/subjects/nope/versions", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
}

#[tokio::test]
async fn lookup_and_normalize() {
    let (_registry, api) = start().await;
    let long_form = r#"{"type":"string"}"#;
    let id = api.register_ok("s", long_form).await;

    let (status, body) = api.post("/subjects/s", json!({"schema": long_form})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["subject"].clone(),
            body["id"].clone(),
            body["version"].clone()
        ),
        (json!("s"), json!(id), json!(1))
    );
    assert!(body["schema"].is_string());

    // "string" is the same schema: Java Avro writes both as "string", and Confluent's registry
    // identifies a schema by that text. Registering it again adds nothing.
    let (status, body) = api
        .post("/subjects/s", json!({"schema": "\"string\""}))
        .await;
    assert_eq!((status, body["id"].clone()), (200, json!(id)), "{body}");
    assert_eq!(api.register_ok("s", "\"string\"").await, id);
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([1])));
    assert_eq!(
        api.get(&format!("/schemas/ids/{id}")).await.1["schema"],
        json!("\"string\"")
    );

    // Properties in another order are another text (Java Avro keeps their order), but the same
    // normalized schema (normalization sorts them).
    let decimal = r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#;
    let reordered = r#"{"type":"bytes","scale":2,"precision":4,"logicalType":"decimal"}"#;
    let id = api.register_ok("d", decimal).await;
    assert_error(
        &api.post("/subjects/d", json!({"schema": reordered})).await,
        404,
        40403,
    );
    let (status, body) = api
        .post("/subjects/d?normalize=true", json!({"schema": reordered}))
        .await;
    assert_eq!((status, body["id"].clone()), (200, json!(id)), "{body}");
    // The body flag works as the query flag does; registering with it adds no version.
    let (status, body) = api
        .post(
            "/subjects/d/versions",
            json!({"schema": reordered, "normalize": true}),
        )
        .await;
    assert_eq!(
        (status, body["id"].clone(), body["version"].clone()),
        (200, json!(id), json!(1)),
        "{body}"
    );
    assert_eq!(api.get("/subjects/d/versions").await, (200, json!([1])));
    // Without normalize, the other text is a new schema (compatible, so a new version).
    let other = api.register_ok("d", reordered).await;
    assert_ne!(other, id);
    assert_eq!(api.get("/subjects/d/versions").await, (200, json!([1, 2])));

    assert_error(
        &api.post("/subjects/missing", json!({"schema": long_form}))
            .await,
        404,
        40401,
    );
}

#[tokio::test]
async fn errors_have_confluent_codes() {
    let (_registry, api) = start().await;
    api.register_ok("s", &rec(ID)).await;
    // Invalid schemas.
    assert_error(&api.register("s", "{not json").await, 422, 42201);
    assert_error(
        &api.register("s", r#"{"type":"record","name":"R"}"#).await,
        422,
        42201,
    );
    assert_error(
        &api.register("s", r#"{"type":"nonsense"}"#).await,
        422,
        42201,
    );
    assert_error(
        &api.post(
            "/subjects/s/versions",
            json!({"schema": "\"string\"", "schemaType": "PROTOBUF"}),
        )
        .await,
        422,
        42201,
    );
    assert_error(
        &api.post("/subjects/s/versions", json!({"nothing": 1}))
            .await,
        422,
        42201,
    );
    // A body that is not JSON at all.
    let (status, body) = api.call(Method::POST, "/subjects/s/versions", None).await;
    assert_eq!((status, body["error_code"].clone()), (400, json!(400)));
    // Versions.
    for bad in ["abc", "0", "-2", "2147483648"] {
        assert_error(
            &api.get(&format!("/subjects/s/versions/{bad}")).await,
            422,
            42202,
        );
    }
    assert_error(&api.get("/subjects/s/versions/9").await, 404, 40402);
    assert_error(&api.get("/subjects/nope/versions/1").await, 404, 40401);
    assert_error(&api.get("/subjects/nope/versions").await, 404, 40401);
    // Schema ids.
    assert_error(&api.get("/schemas/ids/999").await, 404, 40403);
    assert_error(&api.get("/schemas/ids/abc").await, 404, 40403);
    assert_error(&api.get("/schemas/ids/999/versions").await, 404, 40403);
    // Unknown paths.
    assert_error(&api.get("/no/such/path").await, 404, 404);
}

#[tokio::test]
async fn config_and_mode() {
    let (_registry, api) = start().await;
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        api.put("/config", json!({"compatibility": "FULL"})).await,
        (200, json!({"compatibility": "FULL"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    assert_error(
        &api.put("/config", json!({"compatibility": "SIDEWAYS"}))
            .await,
        422,
        42203,
    );
    assert_error(
        &api.put("/config/s", json!({"compatibility": "nope"})).await,
        422,
        42203,
    );

    assert_error(&api.get("/config/s").await, 404, 40408);
    assert_eq!(
        api.get("/config/s?defaultToGlobal=true").await,
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    // Lower case is accepted; the answer echoes the request, as Confluent's does.
    assert_eq!(
        api.put("/config/s", json!({"compatibility": "none"})).await,
        (200, json!({"compatibility": "none"}))
    );
    assert_eq!(
        api.get("/config/s").await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_eq!(
        api.delete("/config/s").await,
        (200, json!({"compatibilityLevel": "NONE"}))
    );
    assert_error(&api.get("/config/s").await, 404, 40408);
    assert_error(&api.delete("/config/s").await, 404, 40401);

    assert_eq!(
        api.delete("/config").await,
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    assert_eq!(
        api.get("/config").await,
        (200, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(api.get("/mode").await, (200, json!({"mode": "READWRITE"})));
}

/// READONLY mode, as a deployment whose clients may not write subjects: a registration (even
/// of a schema already registered) and a deletion are refused with 42205; lookups and reads
/// go on; READWRITE again lets them through.
#[tokio::test]
async fn read_only_mode_refuses_registrations_and_deletions() {
    let (_registry, api) = start().await;
    let schema = rec(r#"{"name":"a","type":"int"}"#);
    let id = api.register_ok("s-value", &schema).await;
    assert_eq!(
        api.put("/mode", json!({"mode": "READONLY"})).await,
        (200, json!({"mode": "READONLY"}))
    );
    assert_eq!(api.get("/mode").await, (200, json!({"mode": "READONLY"})));
    assert_error(&api.register("s-value", &schema).await, 422, 42205);
    assert_error(
        &api.register("t-value", &rec(r#"{"name":"b","type":"int"}"#))
            .await,
        422,
        42205,
    );
    assert_error(&api.delete("/subjects/s-value").await, 422, 42205);
    assert_error(
        &api.delete("/subjects/s-value/versions/1").await,
        422,
        42205,
    );
    let (status, found) = api
        .post("/subjects/s-value", json!({ "schema": schema }))
        .await;
    assert_eq!((status, &found["id"]), (200, &json!(id)), "{found}");
    assert_eq!(api.get(&format!("/schemas/ids/{id}")).await.0, 200);
    assert_error(
        &api.put("/mode", json!({"mode": "IMPORT"})).await,
        422,
        42204,
    );
    assert_eq!(
        api.put("/mode", json!({"mode": "READWRITE"})).await,
        (200, json!({"mode": "READWRITE"}))
    );
    assert_eq!(
        api.register_ok("t-value", &rec(r#"{"name":"b","type":"int"}"#))
            .await,
        id + 1
    );
}

/// Registers `history` under `level`, then checks that `rejected` is refused (409 40901,
/// naming `field`) and `accepted` is registered.
async fn level_case(
    api: &Api,
    level: &str,
    history: &[String],
    rejected: &str,
    field: &str,
    accepted: &str,
) {
    let subject = format!("level-{}", level.to_lowercase());
    api.set_level(&subject, level).await;
    for schema in history {
        api.register_ok(&subject, schema).await;
    }
    let response = api.register(&subject, rejected).await;
    assert_error(&response, 409, 40901);
    let message = response.1["message"].as_str().unwrap();
    assert!(message.contains(field), "{level}: {message}");
    assert!(message.contains(level), "{level}: {message}");
    // The verbose check says the same.
    let (status, body) = api
        .post(
            &format!("/compatibility/subjects/{subject}/versions?verbose=true"),
            json!({"schema": rejected}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["is_compatible"], false, "{body}");
    assert!(
        body["messages"][0].as_str().unwrap().contains(field),
        "{body}"
    );

    let versions_before = api.get(&format!("/subjects/{subject}/versions")).await.1;
    api.register_ok(&subject, accepted).await;
    let versions_after = api.get(&format!("/subjects/{subject}/versions")).await.1;
    assert_eq!(
        versions_after.as_array().unwrap().len(),
        versions_before.as_array().unwrap().len() + 1,
        "{level}"
    );
}

#[tokio::test]
async fn every_compatibility_level() {
    let (_registry, api) = start().await;
    let with = |extra: &str| rec(&format!("{ID},{extra}"));
    let b_default = r#"{"name":"b","type":"int","default":0}"#;
    let b_required = r#"{"name":"b","type":"int"}"#;
    let c_required = r#"{"name":"c","type":"int"}"#;
    let c_default = r#"{"name":"c","type":"int","default":0}"#;
    let d_default = r#"{"name":"d","type":"int","default":0}"#;
    let d_required = r#"{"name":"d","type":"int"}"#;

    // BACKWARD: a new field needs a default.
    level_case(
        &api,
        "BACKWARD",
        &[rec(ID)],
        &with(b_required),
        "'b'",
        &with(b_default),
    )
    .await;
    // FORWARD: old readers need the fields they require; new fields need no default.
    level_case(
        &api,
        "FORWARD",
        &[with(c_required)],
        &rec(ID),
        "'c'",
        &with(&format!("{c_required},{d_required}")),
    )
    .await;
    // FULL: both.
    level_case(
        &api,
        "FULL",
        &[rec(ID)],
        &with(b_required),
        "'b'",
        &with(b_default),
    )
    .await;
    // Transitive levels: the rejected schema is fine against the latest version only.
    level_case(
        &api,
        "BACKWARD_TRANSITIVE",
        &[rec(ID), with(b_default)],
        &with(b_required),
        "'b'",
        &with(&format!("{b_default},{d_default}")),
    )
    .await;
    level_case(
        &api,
        "FORWARD_TRANSITIVE",
        &[with(c_required), with(c_default)],
        &rec(ID),
        "'c'",
        &with(&format!("{c_default},{d_required}")),
    )
    .await;
    level_case(
        &api,
        "FULL_TRANSITIVE",
        &[with(c_required), with(c_default)],
        &rec(ID),
        "'c'",
        &with(&format!("{c_default},{d_default}")),
    )
    .await;
    // NONE: anything goes, even a type change.
    api.set_level("level-none", "NONE").await;
    api.register_ok("level-none", &rec(ID)).await;
    api.register_ok("level-none", &rec(r#"{"name":"id","type":"int"}"#))
        .await;
    assert_eq!(
        api.get("/subjects/level-none/versions").await,
        (200, json!([1, 2]))
    );

    // The non-transitive levels accept what their transitive siblings refused.
    api.set_level("non-transitive", "FULL").await;
    api.register_ok("non-transitive", &with(c_required)).await;
    api.register_ok("non-transitive", &with(c_default)).await;
    api.register_ok("non-transitive", &rec(ID)).await;
}

#[tokio::test]
async fn compatibility_endpoints() {
    let (_registry, api) = start().await;
    api.register_ok("s", &rec(ID)).await;
    api.register_ok(
        "s",
        &rec(&format!(r#"{ID},{{"name":"b","type":"int","default":0}}"#)),
    )
    .await;
    let breaking = rec(&format!(r#"{ID},{{"name":"c","type":"int"}}"#));
    let fine = rec(&format!(r#"{ID},{{"name":"c","type":"int","default":1}}"#));

    for path in [
        "/compatibility/subjects/s/versions/latest",
        "/compatibility/subjects/s/versions/1",
        "/compatibility/subjects/s/versions",
    ] {
        let (status, body) = api.post(path, json!({"schema": breaking})).await;
        assert_eq!(
            (status, body),
            (200, json!({"is_compatible": false})),
            "{path}"
        );
        let (status, body) = api
            .post(&format!("{path}?verbose=true"), json!({"schema": breaking}))
            .await;
        assert_eq!(status, 200);
        let messages = body["messages"].as_array().unwrap();
        assert!(messages[0].as_str().unwrap().contains("'c'"), "{body}");
        let (status, body) = api.post(path, json!({"schema": fine})).await;
        assert_eq!(
            (status, body),
            (200, json!({"is_compatible": true})),
            "{path}"
        );
    }
    // Against version 1 only, a field `b` without default is a break; against latest not.
    let b_required = rec(&format!(r#"{ID},{{"name":"b","type":"int"}}"#));
    let against = |v: &str| format!("/compatibility/subjects/s/versions/{v}");
    assert_eq!(
        api.post(&against("1"), json!({"schema": b_required}))
            .await
            .1,
        json!({"is_compatible": false})
    );
    assert_eq!(
        api.post(&against("2"), json!({"schema": b_required}))
            .await
            .1,
        json!({"is_compatible": true})
    );
    assert_error(
        &api.post(&against("7"), json!({"schema": fine})).await,
        404,
        40402,
    );
    assert_error(
        &api.post(&against("x"), json!({"schema": fine})).await,
        422,
        42202,
    );
    assert_error(
        &api.post(
            "/compatibility/subjects/nope/versions/1",
            json!({"schema": fine}),
        )
        .await,
        404,
        40401,
    );
    assert_error(
        &api.post(&against("1"), json!({"schema": "{"})).await,
        422,
        42201,
    );
}

#[tokio::test]
async fn edge_cases_through_the_registry() {
    let (_registry, api) = start().await;
    // Logical types: long -> timestamp-millis, and a decimal precision change, under FULL.
    api.set_level("logical", "FULL").await;
    api.register_ok("logical", &rec(r#"{"name":"at","type":"long"}"#))
        .await;
    api.register_ok(
        "logical",
        &rec(r#"{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}"#),
    )
    .await;
    api.register_ok(
        "decimal",
        &rec(r#"{"name":"p","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}"#),
    )
    .await;
    api.register_ok(
        "decimal",
        &rec(r#"{"name":"p","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":4}}"#),
    )
    .await;
    api.register_ok("uuid", &rec(r#"{"name":"u","type":"string"}"#))
        .await;
    api.register_ok(
        "uuid",
        &rec(r#"{"name":"u","type":{"type":"string","logicalType":"uuid"}}"#),
    )
    .await;

    // A named type used twice, its definition moved to the other field.
    let address =
        r#"{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}]}"#;
    api.set_level("named", "FULL_TRANSITIVE").await;
    api.register_ok(
        "named",
        &rec(&format!(
            r#"{{"name":"home","type":{address}}},{{"name":"work","type":"Address"}}"#
        )),
    )
    .await;
    api.register_ok(
        "named",
        &rec(&format!(
            r#"{{"name":"work","type":{address}}},{{"name":"home","type":"Address"}}"#
        )),
    )
    .await;
    assert_eq!(api.get("/subjects/named/versions").await.1, json!([1, 2]));

    // A renamed record is refused unless the new name aliases the old one.
    api.register_ok(
        "renamed",
        r#"{"type":"record","name":"Order","namespace":"io.a","fields":[]}"#,
    )
    .await;
    let response = api
        .register(
            "renamed",
            r#"{"type":"record","name":"Purchase","namespace":"io.a","fields":[]}"#,
        )
        .await;
    assert_error(&response, 409, 40901);
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("NAME_MISMATCH")
    );
    api.register_ok(
        "renamed",
        r#"{"type":"record","name":"Purchase","namespace":"io.a","aliases":["Order"],"fields":[]}"#,
    )
    .await;

    // Removing a field: fine BACKWARD, refused FORWARD unless it had a default.
    let two = rec(&format!(r#"{ID},{{"name":"q","type":"int"}}"#));
    api.register_ok("removed", &two).await;
    api.register_ok("removed", &rec(ID)).await;
    api.set_level("removed-fwd", "FORWARD").await;
    api.register_ok("removed-fwd", &two).await;
    assert_error(&api.register("removed-fwd", &rec(ID)).await, 409, 40901);

    // Enums: adding a symbol is BACKWARD-compatible, removing one is not (without default).
    let status = |symbols: &str| {
        rec(&format!(
            r#"{{"name":"s","type":{{"type":"enum","name":"S","symbols":[{symbols}]}}}}"#
        ))
    };
    api.register_ok("enum", &status(r#""A","B""#)).await;
    api.register_ok("enum", &status(r#""A","B","C""#)).await;
    let response = api.register("enum", &status(r#""A","C""#)).await;
    assert_error(&response, 409, 40901);
    assert!(
        response.1["message"]
            .as_str()
            .unwrap()
            .contains("MISSING_ENUM_SYMBOLS")
    );
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let (_registry, api) = start().await;
    let v1 = rec(ID);
    let v2 = rec(&format!(r#"{ID},{{"name":"b","type":"int","default":0}}"#));
    let id1 = api.register_ok("s", &v1).await;
    let id2 = api.register_ok("s", &v2).await;

    // Versions: permanent only after soft.
    assert_error(
        &api.delete("/subjects/s/versions/1?permanent=true").await,
        404,
        40407,
    );
    assert_eq!(api.delete("/subjects/s/versions/1").await, (200, json!(1)));
    assert_error(&api.delete("/subjects/s/versions/1").await, 404, 40406);
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([2])));
    assert_eq!(
        api.get("/subjects/s/versions?deleted=true").await,
        (200, json!([1, 2]))
    );
    assert_error(&api.get("/subjects/s/versions/1").await, 404, 40402);
    let (status, body) = api.get("/subjects/s/versions/1?deleted=true").await;
    assert_eq!((status, body["id"].clone()), (200, json!(id1)));
    // A soft-deleted schema is still served by id.
    assert_eq!(api.get(&format!("/schemas/ids/{id1}")).await.0, 200);
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}/versions")).await.1,
        json!([])
    );
    assert_eq!(
        api.get(&format!("/schemas/ids/{id1}/versions?deleted=true"))
            .await
            .1,
        json!([{"subject": "s", "version": 1}])
    );
    assert_eq!(
        api.delete("/subjects/s/versions/1?permanent=true").await,
        (200, json!(1))
    );
    assert_eq!(
        api.get("/subjects/s/versions?deleted=true").await,
        (200, json!([2]))
    );
    assert_error(&api.get(&format!("/schemas/ids/{id1}")).await, 404, 40403);

    // Subjects: permanent only after soft.
    assert_error(&api.delete("/subjects/s?permanent=true").await, 404, 40405);
    assert_eq!(api.delete("/subjects/s").await, (200, json!([2])));
    assert_error(&api.delete("/subjects/s").await, 404, 40404);
    assert_eq!(api.get("/subjects").await, (200, json!([])));
    assert_eq!(api.get("/subjects?deleted=true").await, (200, json!(["s"])));
    api.register_ok("t", &v1).await;
    assert_eq!(
        api.get("/subjects?deleted=true").await,
        (200, json!(["s", "t"]))
    );
    assert_eq!(
        api.get("/subjects?deletedOnly=true").await,
        (200, json!(["s"]))
    );
    assert_eq!(
        api.get("/subjects?subjectPrefix=t").await,
        (200, json!(["t"]))
    );
    assert_eq!(
        api.get("/subjects?deleted=true&offset=1&limit=1").await,
        (200, json!(["t"]))
    );
    assert_error(&api.get("/subjects/s/versions").await, 404, 40401);
    assert_error(&api.get("/subjects/s/versions/latest").await, 404, 40401);
    assert_error(
        &api.post("/subjects/s", json!({"schema": v2})).await,
        404,
        40401,
    );
    let (status, body) = api
        .post("/subjects/s?deleted=true", json!({"schema": v2}))
        .await;
    assert_eq!((status, body["version"].clone()), (200, json!(2)));

    // Re-registering a soft-deleted schema: same id, a new version number, and (as in
    // Confluent) the soft-deleted version of the same schema is gone for good.
    assert_eq!(api.register_ok("s", &v2).await, id2);
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([3])));
    assert_eq!(
        api.get("/subjects/s/versions?deleted=true").await,
        (200, json!([3]))
    );
    // A different schema after that keeps counting versions.
    let v4 = rec(&format!(r#"{ID},{{"name":"e","type":"int","default":0}}"#));
    api.register_ok("s", &v4).await;
    assert_eq!(
        api.delete("/subjects/s/versions/latest").await,
        (200, json!(4))
    );
    assert_eq!(
        api.delete("/subjects/s/versions/latest").await,
        (200, json!(3))
    );
    assert_eq!(
        api.delete("/subjects/s?permanent=true").await,
        (200, json!([3, 4]))
    );
    assert_eq!(api.get("/subjects?deleted=true").await, (200, json!(["t"])));
    assert_error(&api.delete("/subjects/s").await, 404, 40401);
    assert_error(&api.get(&format!("/schemas/ids/{id2}")).await, 404, 40403);
    // Ids are not reused after a permanent delete.
    let id3 = api.register_ok("s", &v1).await;
    assert!(id3 > id2, "{id3} after {id2}");
    assert_eq!(api.get("/subjects/s/versions").await, (200, json!([1])));
}

fn temp_file(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir()
        .join(format!("registry-test-{}-{nanos}", std::process::id()))
        .join(name)
}

#[tokio::test]
async fn persistence_across_restart() {
    let file = temp_file("registry.json");
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file.clone()))
        .await
        .unwrap();
    let api = Api::new(&registry);
    let v1 = rec(ID);
    let v2 = rec(&format!(r#"{ID},{{"name":"b","type":"int","default":0}}"#));
    let id1 = api.register_ok("a", &v1).await;
    let id2 = api.register_ok("a", &v2).await;
    api.set_level("a", "FULL").await;
    assert_eq!(api.delete("/subjects/a/versions/1").await.0, 200);
    registry.shutdown().await.unwrap();
    assert!(file.exists());

    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file.clone()))
        .await
        .unwrap();
    let api = Api::new(&registry);
    assert_eq!(api.get("/subjects/a/versions").await, (200, json!([2])));
    assert_eq!(
        api.get("/subjects/a/versions?deleted=true").await,
        (200, json!([1, 2]))
    );
    assert_eq!(
        api.get("/config/a").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    let (status, body) = api.get(&format!("/schemas/ids/{id2}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(body["schema"].as_str().unwrap()).unwrap(),
        serde_json::from_str::<Value>(&v2).unwrap()
    );
    // The same schema keeps its id; a new one continues the numbering.
    assert_eq!(api.register_ok("b", &v1).await, id1);
    let v3 = rec(&format!(r#"{ID},{{"name":"c","type":"int","default":0}}"#));
    assert_eq!(api.register_ok("a", &v3).await, id2 + 1);
    // FULL still applies after the restart.
    assert_error(
        &api.register("a", &rec(&format!(r#"{ID},{{"name":"z","type":"int"}}"#)))
            .await,
        409,
        40901,
    );
    registry.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// A store written before schemas were identified by their canonical text can hold two
/// spellings of one schema under two ids; registering that schema again reuses the oldest.
/// (The map's order is random: on the code before, this failed about every other run.)
#[tokio::test]
async fn a_store_with_two_spellings_of_one_schema_reuses_the_oldest_id() {
    let file = temp_file("two-spellings.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let versions = |id: u32| json!({"versions": [{"version": 1, "id": id}]});
    let mut schemas = serde_json::Map::new();
    let mut subjects = serde_json::Map::new();
    for id in 1..=16u32 {
        let text = if id == 1 {
            "{\"type\":\"string\"}"
        } else {
            "\"string\""
        };
        schemas.insert(id.to_string(), json!(text));
        subjects.insert(format!("s{id}"), versions(id));
    }
    let store = json!({"next_id": 17, "schemas": schemas, "subjects": subjects});
    std::fs::write(&file, store.to_string()).unwrap();
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file.clone()))
        .await
        .unwrap();
    let api = Api::new(&registry);
    assert_eq!(api.register_ok("new", "\"string\"").await, 1);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[tokio::test]
async fn corrupt_persistence_file_is_an_error_not_a_panic() {
    let file = temp_file("broken.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{ not json").unwrap();
    let err = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() {
    for graceful in [true, false] {
        let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
            .await
            .unwrap();
        let addr = registry.addr();
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        if graceful {
            registry.shutdown().await.unwrap();
        } else {
            drop(registry);
        }
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            refused,
            "still listening after shutdown (graceful: {graceful})"
        );
    }
}
