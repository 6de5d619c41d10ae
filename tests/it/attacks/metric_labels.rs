//! Unauthenticated memory exhaustion through metric labels: every made-up method or path a
//! client sends must land in a label that already exists, so `/metrics` and the process's
//! memory stay the size they were.

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use futures_util::StreamExt as _;
use reqwest::Method;
use system_tests::binary;

/// Sends `count` requests, `start..start + count`, each with its own method and path.
async fn made_up_requests(base: &str, start: usize, count: usize) {
    let client = reqwest::Client::new();
    futures_util::stream::iter(start..start + count)
        .for_each_concurrent(16, |i| {
            let client = client.clone();
            async move {
                let method = Method::from_bytes(format!("M{i:08}").as_bytes()).unwrap();
                // Half at a route that exists, half at paths that match none.
                let path = if i.is_multiple_of(2) {
                    "/v1/auth/me".to_owned()
                } else {
                    format!("/no/such/{i}")
                };
                let response = client
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .expect("the service answers");
                assert!(response.status().is_client_error(), "{}", response.status());
            }
        })
        .await;
}

async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The resident set of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn made_up_methods_and_paths_add_no_metric_series(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(&binary("app-rows"), &[("DATABASE_URL", &database.url)]);
    let base = service.base_url.as_str();

    // Warm up: the `OTHER` and `unmatched` series exist, the allocator has its pools.
    made_up_requests(base, 0, 1_000).await;
    metrics_text(base).await; // `/metrics` itself gets its series
    let before = metrics_text(base).await;
    let rss_before = rss_kib(service.pid());

    made_up_requests(base, 1_000, 10_000).await;
    let after = metrics_text(base).await;
    let rss_after = rss_kib(service.pid());

    let series = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
            .collect()
    };
    let new: Vec<String> = series(&after)
        .difference(&series(&before))
        .cloned()
        .collect();
    assert!(new.is_empty(), "new series appeared: {new:#?}");
    // Counters grow by a few digits; nothing else may.
    assert!(
        after.len() < before.len() + 1024,
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(!after.contains("M0000"), "a made-up method became a label");
    assert!(!after.contains("/no/such/"), "a raw path became a label");
    let grown_mib = rss_after.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!("RSS {rss_before} KiB -> {rss_after} KiB after 10,000 made-up requests");
    assert!(grown_mib < 8.0, "RSS grew by {grown_mib:.1} MiB");
}

auth_skeleton::both_backends!(made_up_methods_and_paths_add_no_metric_series);
