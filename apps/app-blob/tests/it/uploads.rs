//! Bodies: large binary round trips, the size cap, and Content-Digest.

use std::time::Duration;

use auth_skeleton::testing::{Backend, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

const MIB: usize = 1024 * 1024;

async fn multi_mib_binary_saves_round_trip_byte_for_byte(backend: Backend) {
    let server = start_with(backend, &[("MAX_SAVE_BYTES", "8388608")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let mut current: Option<String> = None;
    for size in [3 * MIB + 17, 6 * MIB, 8 * MIB] {
        let body = random_bytes(size);
        let digest = content_digest(&body);
        let reply = match &current {
            None => {
                ann.put(
                    &body,
                    &[("If-None-Match", "*"), ("Content-Digest", &digest)],
                )
                .await
            }
            Some(v) => {
                ann.put(&body, &[("If-Match", v), ("Content-Digest", &digest)])
                    .await
            }
        };
        assert!(
            reply.status == 200 || reply.status == 201,
            "{:?}",
            reply.body
        );
        assert_eq!(reply.body["size"], size);
        assert_eq!(reply.body["sha256"], sha256_hex(&body).as_str());
        current = Some(etag(&reply));

        let read = ann.get("/v1/save").await;
        assert_eq!(read.status, 200);
        assert!(
            read.bytes == body,
            "the {size}-byte save came back different"
        );
        assert_eq!(sha256_hex(&read.bytes), sha256_hex(&body));
    }
}

async fn a_body_one_byte_over_the_limit_is_refused(backend: Backend) {
    let server = start_with(backend, &[("MAX_SAVE_BYTES", "1024")]).await;
    let ann = User::signup(&server, "ann@example.com").await;

    let reply = ann.put(&[7; 1025], &[("If-None-Match", "*")]).await;
    assert_problem(&reply, 413, "payload_too_large");
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
    assert_eq!(rows_of(&server, "blob_saves", &ann.id).await, 0);

    let v1 = ann.create(&[1; 1024]).await;
    let reply = ann.put(&[2; 1025], &[("If-Match", &v1)]).await;
    assert_problem(&reply, 413, "payload_too_large");
    let read = ann.get("/v1/save").await;
    assert_eq!((etag(&read), read.bytes), (v1, vec![1; 1024]));
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 0);
}

/// Sends a chunked `PUT` (no `Content-Length`) of `chunks` without ending the body, and
/// returns the status line of the answer.
async fn unfinished_chunked_put(server: &TestServer, token: &str, chunks: &[Vec<u8>]) -> String {
    let addr = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/save HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         If-None-Match: *\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // The body never ends, so an answer can only come from refusing it early.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server answers before the body ends");
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

async fn a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(backend: Backend) {
    let server = start_with(backend, &[("MAX_SAVE_BYTES", "1024")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let status = unfinished_chunked_put(&server, &ann.token, &[vec![1; 600], vec![2; 600]]).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");
}

async fn a_content_length_over_the_limit_is_refused_before_reading(backend: Backend) {
    let server = start_with(backend, &[("MAX_SAVE_BYTES", "1024")]).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let addr = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Announces a huge body and sends none of it.
    let head = format!(
        "PUT /v1/save HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         If-None-Match: *\r\nContent-Length: 1000000000\r\n\r\n",
        ann.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
}

async fn content_digest_is_checked(backend: Backend) {
    let server = start(backend).await;
    let ann = User::signup(&server, "ann@example.com").await;
    let body = random_bytes(4096);

    let wrong = content_digest(b"something else");
    let reply = ann
        .put(&body, &[("If-None-Match", "*"), ("Content-Digest", &wrong)])
        .await;
    assert_problem(&reply, 400, "digest_mismatch");
    assert_problem(&ann.get("/v1/save").await, 404, "no_save");

    let right = content_digest(&body);
    let reply = ann
        .put(&body, &[("If-None-Match", "*"), ("Content-Digest", &right)])
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let v1 = etag(&reply);

    // A mismatch on a replace leaves the current version and the history alone.
    let other = random_bytes(4096);
    let reply = ann
        .put(&other, &[("If-Match", &v1), ("Content-Digest", &right)])
        .await;
    assert_problem(&reply, 400, "digest_mismatch");
    let read = ann.get("/v1/save").await;
    assert_eq!((etag(&read), read.bytes == body), (v1, true));
    assert_eq!(rows_of(&server, "blob_history", &ann.id).await, 0);
}

auth_skeleton::both_backends!(
    multi_mib_binary_saves_round_trip_byte_for_byte,
    a_body_one_byte_over_the_limit_is_refused,
    a_streamed_body_is_refused_as_soon_as_it_passes_the_limit,
    a_content_length_over_the_limit_is_refused_before_reading,
    content_digest_is_checked,
);
