//! History: replaced and deleted versions, pruned to SAVE_HISTORY, and restoring from it.

use auth_skeleton::testing::Backend;
use serde_json::Value;

use crate::support::*;

fn versions(reply: &auth_skeleton::testing::Reply) -> Vec<String> {
    reply.body["versions"]
        .as_array()
        .expect("a versions array")
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_owned())
        .collect()
}

fn history_path(etag: &str) -> String {
    format!("/v1/save/history/{}", etag.trim_matches('"'))
}

async fn history_keeps_the_newest_replaced_and_deleted_versions(backend: Backend) {
    let server = start_with(backend, &[("SAVE_HISTORY", "3")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    assert_eq!(
        ann.get("/v1/save/history").await.body["versions"],
        Value::Array(vec![])
    );

    let mut etags = vec![ann.create(b"v0").await];
    let mut metas = vec![ann.get("/v1/save/meta").await.body];
    for i in 1..5 {
        server.clock.advance(std::time::Duration::from_secs(1));
        let next = ann
            .replace(etags.last().unwrap(), format!("v{i}").as_bytes())
            .await;
        etags.push(next);
        metas.push(ann.get("/v1/save/meta").await.body);
    }
    assert_eq!(
        ann.delete(&[("If-Match", etags.last().unwrap())])
            .await
            .status,
        204
    );

    // v0..v4 were written; v4 was deleted. The newest three of the five kept versions remain.
    let history = ann.get("/v1/save/history").await;
    assert_eq!(history.status, 200);
    assert_eq!(history.header("cache-control"), Some("no-store"));
    assert_eq!(
        versions(&history),
        vec![etags[4].clone(), etags[3].clone(), etags[2].clone()]
    );
    assert_eq!(history.body["versions"][0], metas[4]);
    assert_eq!(history.body["versions"][2], metas[2]);
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 3);

    for (i, version) in etags.iter().enumerate().skip(2) {
        let reply = ann.get(&history_path(version)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.bytes, format!("v{i}").as_bytes());
        assert_eq!(
            reply.header("content-type"),
            Some("application/octet-stream")
        );
    }
    for pruned in &etags[..2] {
        assert_problem(&ann.get(&history_path(pruned)).await, 404, "not_found");
    }
    assert_problem(
        &ann.get("/v1/save/history/nonsense").await,
        404,
        "not_found",
    );
}

async fn history_versions_are_addressed_percent_encoded(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"first").await;
    ann.replace(&v1, b"second").await;
    let encoded: String = v1
        .trim_matches('"')
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    let reply = ann.get(&format!("/v1/save/history/{encoded}")).await;
    assert_eq!(reply.status, 200, "{encoded}");
    assert_eq!(reply.bytes, b"first");
    // No tag holds a NUL (PostgreSQL text cannot): such a version is not found, not a fault.
    for odd in ["%00", "g1-%00"] {
        let reply = ann.get(&format!("/v1/save/history/{odd}")).await;
        assert_eq!(reply.status, 404, "{odd}");
    }
}

async fn an_old_version_is_restored_by_writing_it_back(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let body_a = random_bytes(10_000);
    let a = ann.create(&body_a).await;
    let b = ann.replace(&a, b"a bad merge").await;

    let old = ann.get(&history_path(&a)).await;
    assert_eq!(old.status, 200);
    let restored = ann.replace(&b, &old.bytes).await;
    assert!(restored != a && restored != b);

    let read = ann.get("/v1/save").await;
    assert!(read.bytes == body_a);
    let meta = ann.get("/v1/save/meta").await;
    assert_eq!(meta.body["sha256"], sha256_hex(&body_a).as_str());
    // Nothing was lost on the way: both earlier versions are in the history.
    assert_eq!(versions(&ann.get("/v1/save/history").await), vec![b, a]);
}

async fn no_history_is_kept_when_save_history_is_zero(backend: Backend) {
    let server = start_with(backend, &[("SAVE_HISTORY", "0")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let v1 = ann.create(b"one").await;
    let v2 = ann.replace(&v1, b"two").await;
    assert_eq!(ann.delete(&[("If-Match", &v2)]).await.status, 204);
    assert_eq!(
        versions(&ann.get("/v1/save/history").await),
        Vec::<String>::new()
    );
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 0);
}

auth_skeleton::both_backends!(
    history_keeps_the_newest_replaced_and_deleted_versions,
    history_versions_are_addressed_percent_encoded,
    an_old_version_is_restored_by_writing_it_back,
    no_history_is_kept_when_save_history_is_zero,
);
