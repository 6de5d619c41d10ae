//! `/openapi.json` documents the row sync routes as they are served.

use auth_skeleton::testing::Backend;
use auth_skeleton::testing::{
    schema_properties as properties, schema_required as required, sorted_keys as keys,
};
use serde_json::json;

use crate::support::*;

#[actix_web::test]
async fn the_document_lists_every_route_the_service_mounts_and_no_other() {
    let result = auth_skeleton::testing::check_document(app_rows::spec(), app_rows::engine()).await;
    assert_eq!(result, Ok(()));
}

#[actix_web::test]
async fn the_served_document_describes_push_and_pull() {
    let (server, token) = start_signed_in(Backend::Sqlite, &[]).await;
    let reply = server.send(server.get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    let doc = &reply.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{doc}"
    );
    assert_eq!(doc["info"]["title"], "app-rows");
    // The library's routes are still there beside the app's.
    assert!(doc["paths"]["/v1/auth/login"]["post"].is_object());

    let push_op = &doc["paths"]["/v1/rows/push"]["post"];
    let pull_op = &doc["paths"]["/v1/rows/pull"]["get"];
    for (op, errors) in [
        (push_op, ["400", "401", "413"]),
        (pull_op, ["400", "401", "410"]),
    ] {
        assert!(op["responses"]["200"].is_object(), "{op}");
        for status in errors {
            let content = &op["responses"][status]["content"]["application/problem+json"];
            assert_eq!(
                content["schema"]["$ref"], "#/components/schemas/Problem",
                "{status}: {op}"
            );
        }
        assert_eq!(
            op["security"],
            json!([{"bearer": []}, {"cookie": []}]),
            "{op}"
        );
    }
    assert_eq!(
        push_op["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PushRequest"
    );
    let params: Vec<&str> = pull_op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["since", "limit", "Prefer"]);

    // The schemas have the fields real requests and answers have.
    let sent = row("notes", "n1", 1, 0, "a", json!({"t": 1}));
    assert_eq!(properties(doc, "PushedRow"), keys(&sent));
    assert_eq!(properties(doc, "PushRequest"), ["changes"]);
    let pushed = push(&server, &token, &[sent]).await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    assert_eq!(properties(doc, "PushResponse"), keys(&pushed.body));
    assert_eq!(required(doc, "PushResponse"), keys(&pushed.body));
    // `reason` appears only on rejected changes, `current` on stale and rejected ones.
    assert_eq!(
        properties(doc, "ChangeResult"),
        ["collection", "current", "id", "reason", "status"]
    );
    let pulled = pull(&server, &token, "").await;
    assert_eq!(pulled.status, 200, "{:?}", pulled.body);
    assert_eq!(properties(doc, "PullResponse"), keys(&pulled.body));
    assert_eq!(required(doc, "PullResponse"), keys(&pulled.body));
    // Every field of a pulled row is always sent, `data` too (null for a tombstone).
    assert_eq!(properties(doc, "Row"), keys(&pulled.body["changes"][0]));
    assert_eq!(required(doc, "Row"), keys(&pulled.body["changes"][0]));
    assert_eq!(
        doc["components"]["schemas"]["Status"]["enum"],
        json!(["applied", "stale", "rejected"])
    );
    assert_eq!(
        doc["components"]["schemas"]["Rejection"]["enum"],
        json!(["clock_skew", "row_too_large", "quota_exceeded", "too_old"])
    );
}
