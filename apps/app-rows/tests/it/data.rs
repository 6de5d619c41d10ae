//! A row's `data` comes back as it was sent: its keys in their order, every number as written;
//! only whitespace between tokens may differ. An object with a duplicate key is refused, and so
//! is a value that strict JSON parsers cannot read back (a number beyond the range of a double,
//! a lone UTF-16 surrogate), which would make every page that holds the row unreadable to them.

use auth_skeleton::testing::{Backend, Reply, TestServer};
use serde_json::json;

use crate::support::*;

async fn push_text(server: &TestServer, token: &str, data: &str) -> Reply {
    push_text_as(server, token, "r", data).await
}

async fn push_text_as(server: &TestServer, token: &str, id: &str, data: &str) -> Reply {
    let body = format!(
        r#"{{"changes": [{{"collection": "c", "id": "{id}", "ts": 1000, "counter": 0, "node": "n",
            "deleted": false, "data": {data}}}]}}"#
    );
    server
        .send(
            server
                .request(reqwest::Method::POST, "/v1/rows/push")
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
}

async fn data_comes_back_as_it_was_sent(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    let sent = r#"{ "zeta": 1, "alpha": [1.0, 2.50, 1e3, -0, 1E-7,
        123456789012345678901234567890, 12345678901234567890, 0.1000000000000000055511151231257827],
        "mid": {"y": null, "x": "a b\u00e9\n\"\\ \/", "": true, "nested": [{"b": {}, "a": []}]} }"#;
    let compact = r#"{"zeta":1,"alpha":[1.0,2.50,1e3,-0,1E-7,123456789012345678901234567890,12345678901234567890,0.1000000000000000055511151231257827],"mid":{"y":null,"x":"a b\u00e9\n\"\\ \/","":true,"nested":[{"b":{},"a":[]}]}}"#;
    let reply = push_text(&server, &token, sent).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(statuses(&reply), ["applied"]);
    let reply = pull(&server, &token, "").await;
    let text = String::from_utf8(reply.bytes.clone()).unwrap();
    assert!(
        text.contains(&format!(r#""data":{compact}"#)),
        "sent {sent}\ngot {text}"
    );
}

async fn an_object_with_a_duplicate_key_is_400(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    for data in [
        r#"{"a": 1, "a": 2}"#,
        r#"{"a": 1, "b": {"c": 1, "c": 1}}"#,
        r#"{"list": [{"x": 1}, {"x": 1, "y": 2, "x": 3}]}"#,
        r#"{"a": 1, "\u0061": 2}"#,
    ] {
        let reply = push_text(&server, &token, data).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains("changes[0].data"), "{data}: {detail}");
    }
    // The same key in different objects is fine.
    let reply = push_text(
        &server,
        &token,
        r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        pull_all(&server, &token).await[0]["data"],
        json!({"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]})
    );
}

async fn deeply_nested_data_is_refused_or_returned_never_a_500(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    for depth in [100, 127, 128, 129, 200, 5_000] {
        let data = format!(r#"{{"d": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let reply = push_text_as(&server, &token, &format!("r{depth}"), &data).await;
        assert!(
            reply.status == 200 || reply.status == 400,
            "depth {depth}: {:?}",
            reply.body
        );
        if reply.status == 400 {
            assert_problem(&reply, 400, "invalid_request");
            continue;
        }
        assert_eq!(statuses(&reply), ["applied"], "depth {depth}");
        let pulled = pull(&server, &token, "").await;
        assert_eq!(pulled.status, 200, "depth {depth}: {:?}", pulled.body);
        let text = String::from_utf8(pulled.bytes.clone()).unwrap();
        assert!(text.contains(&data.replace(' ', "")), "depth {depth}");
    }
}

async fn values_strict_parsers_cannot_read_are_400(backend: Backend) {
    let (server, token) = start_signed_in(backend, &[]).await;
    for data in [
        r#"{"x": 1E400}"#,
        r#"{"x": [-1e309]}"#,
        r#"{"s": "\udc00"}"#,
        r#"{"s": "a\ud800b"}"#,
        r#"{"\ud800": 1}"#,
    ] {
        let reply = push_text(&server, &token, data).await;
        assert_problem(&reply, 400, "invalid_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains("changes[0].data"), "{data}: {detail}");
    }
    assert!(pull_all(&server, &token).await.is_empty());
    // Their neighbours are fine: huge integers and tiny or precise numbers as written, a
    // surrogate pair, escapes.
    let data = r#"{"n":123456789012345678901234567890,"t":1e-400,"m":1.7976931348623157e308,"s":"\ud83d\ude00\u00e9"}"#;
    let reply = push_text(&server, &token, data).await;
    assert_eq!(statuses(&reply), ["applied"], "{:?}", reply.body);
    let text = String::from_utf8(pull(&server, &token, "").await.bytes).unwrap();
    assert!(text.contains(data), "{text}");
    // Every page a strict parser reads.
    let _: serde_json::Value = serde_json::from_str(&text).expect("a readable page");
}

auth_skeleton::both_backends!(
    deeply_nested_data_is_refused_or_returned_never_a_500,
    data_comes_back_as_it_was_sent,
    an_object_with_a_duplicate_key_is_400,
    values_strict_parsers_cannot_read_are_400,
);
