//! `HEAD /v1/save` answers from the metadata: the status and headers of a `GET`, no body, and
//! none of the bytes read.

use auth_skeleton::execute_db;
use auth_skeleton::testing::{Backend, Reply};
use reqwest::Method;

use crate::support::*;

/// The same request as `GET` and as `HEAD`.
async fn get_and_head(user: &User<'_>, headers: &[(&str, &str)]) -> (Reply, Reply) {
    let send = |method: Method| {
        let mut request = user.request(method, "/v1/save");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        user.send(request)
    };
    (send(Method::GET).await, send(Method::HEAD).await)
}

/// `head` has `get`'s status and representation headers, and no body.
#[track_caller]
fn assert_same_answer(get: &Reply, head: &Reply, case: &str) {
    assert_eq!(head.status, get.status, "{case}");
    for name in ["etag", "content-type", "content-length", "cache-control"] {
        assert_eq!(head.header(name), get.header(name), "{case}: {name}");
    }
    assert!(head.bytes.is_empty(), "{case}: HEAD sent a body");
}

async fn head_answers_like_get_without_the_body(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;

    let (get, head) = get_and_head(&ann, &[]).await;
    assert_problem(&get, 404, "no_save");
    assert_same_answer(&get, &head, "no save");

    let body = random_bytes(70_001);
    let v1 = ann.create(&body).await;
    let (get, head) = get_and_head(&ann, &[]).await;
    assert_eq!(get.status, 200);
    assert!(get.bytes == body);
    assert_same_answer(&get, &head, "the save");
    assert_eq!(head.header("etag"), Some(v1.as_str()));
    assert_eq!(head.header("content-length"), Some("70001"));
    assert_eq!(
        head.header("content-type"),
        Some("application/octet-stream")
    );

    let weak = format!("W/{v1}");
    let listed = format!("\"g0-00000000\", {v1}");
    for (case, headers) in [
        (
            "If-None-Match matches",
            vec![("If-None-Match", v1.as_str())],
        ),
        (
            "If-None-Match matches weakly",
            vec![("If-None-Match", &*weak)],
        ),
        ("If-None-Match lists it", vec![("If-None-Match", &*listed)]),
        ("If-None-Match: *", vec![("If-None-Match", "*")]),
    ] {
        let (get, head) = get_and_head(&ann, &headers).await;
        assert_eq!(get.status, 304, "{case}");
        assert_same_answer(&get, &head, case);
    }
    for (case, headers, status) in [
        (
            "If-None-Match does not match",
            vec![("If-None-Match", "\"g0-00000000\"")],
            200,
        ),
        ("If-Match holds", vec![("If-Match", v1.as_str())], 200),
        ("If-Match fails", vec![("If-Match", "\"g0-00000000\"")], 412),
        (
            "malformed If-None-Match",
            vec![("If-None-Match", "nope")],
            400,
        ),
    ] {
        let (get, head) = get_and_head(&ann, &headers).await;
        assert_eq!(get.status, status, "{case}");
        assert_same_answer(&get, &head, case);
    }

    // An empty save has a length too.
    let v2 = ann.replace(&v1, b"").await;
    let (get, head) = get_and_head(&ann, &[]).await;
    assert_same_answer(&get, &head, "an empty save");
    assert_eq!(head.header("content-length"), Some("0"));
    assert_eq!(head.header("etag"), Some(v2.as_str()));

    // Signed out: the same 401.
    let (get, head) = {
        let anon = |method| server.send(server.request(method, "/v1/save"));
        (anon(Method::GET).await, anon(Method::HEAD).await)
    };
    assert_problem(&get, 401, "unauthenticated");
    assert_same_answer(&get, &head, "signed out");
}

/// The bytes are taken out of the database's reach (their column dropped): a route that read
/// them would fail, and `GET` does. `HEAD` still answers in full, so it reads none of them.
async fn head_reads_none_of_the_bytes(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(&random_bytes(300_000)).await;
    let meta = ann.get("/v1/save/meta").await.body;

    execute_db!(
        server.db,
        sqlx::query("ALTER TABLE blob_data DROP COLUMN data")
    )
    .expect("the bytes' column dropped");
    assert_eq!(
        ann.get("/v1/save").await.status,
        500,
        "GET cannot answer without the bytes"
    );

    let head = ann.send(ann.request(Method::HEAD, "/v1/save")).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(v1.as_str()));
    assert_eq!(head.header("content-length"), Some("300000"));
    assert_eq!(
        head.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(ann.get("/v1/save/meta").await.body, meta);

    let not_modified = ann
        .send(
            ann.request(Method::HEAD, "/v1/save")
                .header("If-None-Match", &v1),
        )
        .await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(v1.as_str()));
}

auth_skeleton::both_backends!(
    head_answers_like_get_without_the_body,
    head_reads_none_of_the_bytes,
);
