//! Shared helpers: the app on a test server, rows as JSON, and the client's HTTP remote.

use app_rows::Engine;
use auth_skeleton::config::Vars;
use auth_skeleton::service::EngineContext;
use auth_skeleton::testing::{Backend, Reply, TestServer};
use serde_json::{Value, json};

use crate::client::{Remote, Response};

/// The app on a fresh database, with extra configuration `vars`.
///
/// Unless `vars` say otherwise, tombstones are kept for a century, so that tests may write
/// small `ts` values (a change older than the retention is `too_old`), and pushes are not
/// limited per user (the system tests prove that limit on the real binary).
pub async fn start(backend: Backend, vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![
        ("TOMBSTONE_RETENTION", "36500d"),
        ("RATE_LIMIT_PUSH_USER", "off"),
    ];
    all.extend_from_slice(vars);
    TestServer::start(backend, app_rows::spec(), &all, app_rows::engine()).await
}

/// An engine over the test server's database and manual clock, to run the purge on demand.
pub fn engine(server: &TestServer, vars: &[(&str, &str)]) -> Engine {
    Engine::new(EngineContext {
        db: server.db.clone(),
        clock: server.clock.clone(),
        vars: Vars::from_pairs(vars.iter().copied()),
        keys: server.auth.config().keys.clone(),
    })
    .expect("valid configuration")
}

/// A user with a bearer token: `(server, token)`.
pub async fn start_signed_in(backend: Backend, vars: &[(&str, &str)]) -> (TestServer, String) {
    let server = start(backend, vars).await;
    let (token, _) = server.signup_bearer("ann@example.com").await;
    (server, token)
}

/// Signs ann@example.com up on a running binary at `base_url`; her bearer token.
pub async fn signup_at(base_url: &str) -> String {
    let reply: Value = reqwest::Client::new()
        .post(format!("{base_url}/v1/auth/signup"))
        .json(&json!({"email": "ann@example.com", "password": auth_skeleton::testing::TEST_PASSWORD, "session": "bearer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["token"].as_str().expect("a token").to_owned()
}

/// A live row at version `(ts, counter, node)`.
pub fn row(collection: &str, id: &str, ts: i64, counter: i64, node: &str, data: Value) -> Value {
    json!({"collection": collection, "id": id, "ts": ts, "counter": counter, "node": node, "deleted": false, "data": data})
}

/// A tombstone at version `(ts, counter, node)`.
pub fn tombstone(collection: &str, id: &str, ts: i64, counter: i64, node: &str) -> Value {
    json!({"collection": collection, "id": id, "ts": ts, "counter": counter, "node": node, "deleted": true, "data": null})
}

pub async fn push(server: &TestServer, token: &str, changes: &[Value]) -> Reply {
    server
        .send(
            server
                .post("/v1/rows/push", &json!({ "changes": changes }))
                .bearer_auth(token),
        )
        .await
}

pub async fn pull(server: &TestServer, token: &str, query: &str) -> Reply {
    server
        .send(
            server
                .get(&format!("/v1/rows/pull{query}"))
                .bearer_auth(token),
        )
        .await
}

/// Every row of the user, from the start, following the cursor.
pub async fn pull_all(server: &TestServer, token: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut since = String::new();
    loop {
        let reply = pull(server, token, &format!("?since={since}")).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        rows.extend(reply.body["changes"].as_array().unwrap().iter().cloned());
        since = reply.body["cursor"].as_str().unwrap().to_owned();
        if !reply.body["has_more"].as_bool().unwrap() {
            return rows;
        }
    }
}

/// The statuses of a push reply's results, in order.
pub fn statuses(reply: &Reply) -> Vec<&str> {
    reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect()
}

/// Asserts an error reply: status, problem+json and code.
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{:?}",
        reply.body
    );
    assert_eq!(reply.code(), code, "{:?}", reply.body);
    assert_eq!(reply.body["status"], status);
}

/// The client's way to the server over HTTP, as one signed-in user.
pub struct Http {
    pub base_url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base_url: &str, token: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    fn pull_request(&self, since: Option<&str>, limit: u32) -> reqwest::RequestBuilder {
        // Cursors are base64url: they go into a URL as they are.
        let since = since.map(|s| format!("&since={s}")).unwrap_or_default();
        self.client.get(format!(
            "{}/v1/rows/pull?limit={limit}{since}",
            self.base_url
        ))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Option<Response> {
        let response = request.bearer_auth(&self.token).send().await.ok()?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Some(Response { status, body })
    }
}

impl Remote for Http {
    async fn push(&self, body: Value) -> Option<Response> {
        self.send(
            self.client
                .post(format!("{}/v1/rows/push", self.base_url))
                .json(&body),
        )
        .await
    }

    async fn pull(&self, since: Option<&str>, limit: u32) -> Option<Response> {
        self.send(self.pull_request(since, limit)).await
    }

    async fn pull_waiting(
        &self,
        since: Option<&str>,
        limit: u32,
        wait_secs: u32,
    ) -> Option<Response> {
        let request = self.pull_request(since, limit);
        self.send(request.header("prefer", format!("wait={wait_secs}")))
            .await
    }
}
