//! `/openapi.json` documents the save routes as they are served.

use auth_skeleton::testing::Backend;
use auth_skeleton::testing::{
    schema_properties as properties, schema_required as required, sorted_keys as keys,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[actix_web::test]
async fn the_document_lists_every_route_the_service_mounts_and_no_other() {
    let result = auth_skeleton::testing::check_document(app_blob::spec(), app_blob::engine()).await;
    assert_eq!(result, Ok(()));
}

/// The names of an operation's parameters that are in `place`, in order.
fn params<'a>(op: &'a Value, place: &str) -> Vec<&'a str> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == place)
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn the_served_document_describes_the_save_routes() {
    let server = start(Backend::Sqlite).await;
    let reply = server.send(server.get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    let doc = &reply.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{doc}"
    );
    assert_eq!(doc["info"]["title"], "app-blob");
    // The library's routes are still there beside the app's.
    assert!(doc["paths"]["/v1/auth/login"]["post"].is_object());

    let paths = &doc["paths"];
    let save = &paths["/v1/save"];
    for (path, methods) in [
        ("/v1/save", &["get", "head", "put", "delete"][..]),
        ("/v1/save/meta", &["get", "head"]),
        ("/v1/save/limits", &["get", "head"]),
        ("/v1/save/history", &["get", "head"]),
        ("/v1/save/history/{version}", &["get", "head"]),
    ] {
        let mut documented = keys(&paths[path]);
        documented.retain(|k| k != "parameters");
        let mut expected: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
        expected.sort();
        assert_eq!(documented, expected, "{path}");
        for method in methods {
            let op = &paths[path][method];
            let security = &op["security"];
            if path == "/v1/save/limits" {
                assert!(security.is_null(), "limits need no sign-in: {op}");
            } else {
                assert_eq!(security, &json!([{"bearer": []}, {"cookie": []}]), "{path}");
                assert!(op["responses"]["401"].is_object(), "{path}: {op}");
            }
        }
    }
    // Other methods answer 405 and are no operations of the document.
    let post = server.send(server.request(Method::POST, "/v1/save")).await;
    assert_problem(&post, 405, "method_not_allowed");

    let get = &save["get"];
    // Bytes, as a generator must see them to produce a download (and an upload below).
    let bytes = serde_json::json!({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"});
    assert_eq!(
        get["responses"]["200"]["content"]["application/octet-stream"]["schema"],
        bytes
    );
    assert!(get["responses"]["200"]["headers"]["ETag"].is_object());
    for status in ["206", "304", "404", "412", "416"] {
        assert!(get["responses"][status].is_object(), "{status}: {get}");
    }
    assert_eq!(
        params(get, "header"),
        ["If-None-Match", "If-Match", "Range", "If-Range"]
    );

    let put = &save["put"];
    assert_eq!(
        put["requestBody"]["content"]["application/octet-stream"]["schema"],
        bytes
    );
    assert_eq!(
        params(put, "header"),
        [
            "If-Match",
            "If-None-Match",
            "Content-Digest",
            "Idempotency-Key"
        ]
    );
    for status in ["200", "201", "400", "401", "412", "413", "422", "428"] {
        assert!(put["responses"][status].is_object(), "{status}: {put}");
    }
    assert_eq!(
        put["responses"]["412"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/VersionConflict"
    );
    let head = &save["head"];
    assert_eq!(params(head, "header"), ["If-None-Match", "If-Match"]);
    assert!(head["responses"]["412"].is_object(), "{head}");
    for header in ["ETag", "Content-Length", "Content-Type"] {
        assert!(
            head["responses"]["200"]["headers"][header].is_object(),
            "{header}: {head}"
        );
    }
    assert!(head["responses"]["200"]["content"].is_null(), "{head}");
    for status in ["304", "404"] {
        assert!(head["responses"][status].is_object(), "{status}: {head}");
    }

    let delete = &save["delete"];
    assert_eq!(params(delete, "header"), ["If-Match", "Idempotency-Key"]);
    for status in ["204", "404", "412", "422", "428"] {
        assert!(
            delete["responses"][status].is_object(),
            "{status}: {delete}"
        );
    }
    assert_eq!(
        params(&paths["/v1/save/history/{version}"]["get"], "path"),
        ["version"]
    );

    // The schemas have the fields real answers have.
    let limits = server.send(server.get("/v1/save/limits")).await;
    assert_eq!(properties(doc, "Limits"), keys(&limits.body));
    let ann = User::signup(&server, "ann@example.com").await;
    let first = ann.put(b"one", &[("If-None-Match", "*")]).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(properties(doc, "Meta"), keys(&first.body));
    // Every field is always sent, `device_name` too (null when the session had none).
    assert_eq!(required(doc, "Meta"), keys(&first.body));
    let conflict = ann.put(b"two", &[("If-None-Match", "*")]).await;
    assert_problem(&conflict, 412, "version_conflict");
    assert_eq!(properties(doc, "VersionConflict"), keys(&conflict.body));
    assert_eq!(required(doc, "VersionConflict"), keys(&conflict.body));
    ann.replace(&etag(&first), b"two").await;
    let history = ann.get("/v1/save/history").await;
    assert_eq!(properties(doc, "History"), keys(&history.body));
    assert_eq!(
        doc["components"]["schemas"]["History"]["properties"]["versions"]["items"]["$ref"],
        "#/components/schemas/Meta"
    );
}
