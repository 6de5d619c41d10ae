//! A few lines of HTTP for the system tests: send a request to a running service, read the
//! status and the JSON body.

use auth_skeleton::testing::TEST_PASSWORD;
use reqwest::Method;
use serde_json::{Value, json};

/// A reply's status and its body as JSON (`Null` when empty or not JSON).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The problem `code` of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Sends `method path` to `base_url`, with a bearer `token` and a JSON `body` when given.
pub async fn call(
    base_url: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = reqwest::Client::new().request(method, format!("{base_url}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Signs `email` up with [`TEST_PASSWORD`] and a bearer session; returns `(token, user id)`.
pub async fn signup(base_url: &str, email: &str) -> (String, String) {
    let body = json!({"email": email, "password": TEST_PASSWORD, "session": "bearer"});
    let reply = call(base_url, Method::POST, "/v1/auth/signup", None, Some(body)).await;
    assert_eq!(reply.status, 201, "signup on {base_url}: {:?}", reply.body);
    (
        reply.body["token"].as_str().expect("a token").to_owned(),
        reply.body["user"]["id"].as_str().expect("an id").to_owned(),
    )
}

/// Logs `email` in with `password` and a bearer session.
pub async fn login(base_url: &str, email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password, "session": "bearer"});
    call(base_url, Method::POST, "/v1/auth/login", None, Some(body)).await
}

/// `GET /v1/auth/me` with `token`.
pub async fn me(base_url: &str, token: &str) -> Reply {
    call(base_url, Method::GET, "/v1/auth/me", Some(token), None).await
}

/// A failed login through `url` from the local address `from`, for the unknown address
/// `nobody{n}@example.com`; the status.
pub async fn failed_login(url: &str, from: std::net::IpAddr, n: usize) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    client
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"email": format!("nobody{n}@example.com"), "password": "wrong-password-1"}))
        .send()
        .await
        .expect("the service answers")
        .status()
        .as_u16()
}

/// `PUT /v1/save` of `body` with one precondition header (`If-None-Match: *` or `If-Match`);
/// the status and the `ETag` (empty when none).
pub async fn put_save(
    base: &str,
    token: &str,
    precondition: (&str, &str),
    body: &[u8],
) -> (u16, String) {
    let response = reqwest::Client::new()
        .put(format!("{base}/v1/save"))
        .bearer_auth(token)
        .header(precondition.0, precondition.1)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("the service answers");
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), etag.unwrap_or_default())
}
