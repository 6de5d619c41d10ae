//! Several instances of one app on one PostgreSQL database, behind HAProxy (Debian's package),
//! keep the contract's promises as one process would: the login limit counts across them, a
//! logout through one is refused by the others within 100 ms, a push through one wakes a pull
//! waiting on another within 100 ms, each mail goes out once, and killing one under load loses
//! no acknowledged write while the balancer routes around it. Three instances of `app-rows`,
//! two of `app-blob`, each app on its own database.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use auth_skeleton::testing::{Backend, ServiceProcess, SmtpSink, TEST_PASSWORD, TestDatabase};
use reqwest::Method;
use serde_json::{Value, json};
use system_tests::binary;

use crate::haproxy::{Haproxy, free_port};
use crate::http::{call, failed_login, login, me, put_save, signup};

/// Instances of one app on one database, and HAProxy in front of them.
pub struct Cluster {
    pub instances: Vec<ServiceProcess>,
    pub balancer: String,
    pub database: TestDatabase,
    _proxy: Haproxy,
}

/// What every instance of a test cluster is started with, besides the database.
fn common_vars(mail: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PUBLIC_URL", "http://127.0.0.1:8080".to_owned()),
        ("TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ("COOKIE_SECURE", "false".to_owned()),
        ("MAIL_TRANSPORT", mail.to_owned()),
    ]
}

impl Cluster {
    /// `n` instances of `app` on a fresh PostgreSQL database, with `vars`, behind a round-robin
    /// HAProxy that health-checks `/readyz`.
    pub async fn start(app: &str, n: usize, mail: &str, vars: &[(&str, &str)]) -> Self {
        let database = TestDatabase::new(Backend::Postgres).await;
        let exe = binary(app);
        let mut all: Vec<(&str, String)> = common_vars(mail);
        all.push(("DATABASE_URL", database.url.clone()));
        all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let instances: Vec<ServiceProcess> = (0..n)
            .map(|_| ServiceProcess::start(&exe, &borrowed))
            .collect();
        let port = free_port();
        let servers: String = instances
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let addr = s.base_url.trim_start_matches("http://");
                format!("    server i{i} {addr} check inter 200ms fall 1 rise 2\n")
            })
            .collect();
        let proxy = Haproxy::start(
            &format!(
                "frontend public\n    bind 127.0.0.1:{port}\n    option forwardfor\n    \
                 default_backend app\n\
                 backend app\n    balance roundrobin\n    timeout server 70s\n    \
                 option httpchk GET /readyz\n    http-check expect status 200\n    \
                 retries 3\n    option redispatch 1\n{servers}"
            ),
            port,
        );
        let cluster = Self {
            instances,
            balancer: format!("http://127.0.0.1:{port}"),
            database,
            _proxy: proxy,
        };
        cluster.wait_until_listening().await;
        cluster
    }

    /// Waits until every instance listens for the others' announcements (its session cache
    /// serves nothing before), and the balancer has them all up.
    async fn wait_until_listening(&self) {
        let instances = self.instances.len() as i64;
        auth_skeleton::testing::wait_for_listeners(&self.database.url, instances).await;
        // `rise 2` at 200 ms: every server is up within half a second of answering.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

#[actix_web::test]
async fn the_login_limit_counts_across_instances() {
    // The defaults: at most 20 attempts per IP in any 10 minutes, counted in the database.
    let cluster = Cluster::start("app-rows", 3, "log", &[]).await;
    let attacker: IpAddr = "127.0.0.2".parse().unwrap();
    let mut allowed = 0;
    for n in 0..20 {
        match failed_login(&cluster.balancer, attacker, n).await {
            401 => allowed += 1,
            429 => {}
            other => panic!("attempt {n}: {other}"),
        }
    }
    // Round robin gave each instance about seven; one process would have allowed them all.
    assert!(allowed <= 20, "{allowed}");
    assert_eq!(
        failed_login(&cluster.balancer, attacker, 20).await,
        429,
        "the 21st attempt is refused whichever instance serves it"
    );
    for instance in &cluster.instances {
        assert_eq!(
            failed_login(&instance.base_url, "127.0.0.1".parse().unwrap(), 21).await,
            401,
            "{}: the proxy's own address is another client",
            instance.base_url
        );
    }
    assert_eq!(
        failed_login(&cluster.balancer, "127.0.0.3".parse().unwrap(), 22).await,
        401,
        "another client is not limited with the attacker"
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// 200 tries: a session cached by instances 2 and 3 is logged out through instance 1; the time
/// until both refuse it.
#[actix_web::test]
async fn a_logout_through_one_instance_is_refused_by_the_others_within_100ms() {
    let cluster = Cluster::start(
        "app-rows",
        3,
        "log",
        &[
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    )
    .await;
    let [first, second, third] = &cluster.instances[..] else {
        unreachable!()
    };
    signup(&first.base_url, "ann@example.com").await;
    let client = reqwest::Client::new();
    let me_status = |base: &str, token: &str| {
        client
            .get(format!("{base}/v1/auth/me"))
            .bearer_auth(token)
            .send()
    };
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let reply = login(&first.base_url, "ann@example.com", TEST_PASSWORD).await;
        let token = reply.body["token"].as_str().unwrap().to_owned();
        for other in [second, third] {
            for _ in 0..2 {
                let status = me_status(&other.base_url, &token).await.unwrap().status();
                assert_eq!(status, 200);
            }
        }
        let logout = call(
            &first.base_url,
            Method::POST,
            "/v1/auth/logout",
            Some(&token),
            Some(json!({})),
        )
        .await;
        assert_eq!(logout.status, 204);
        let ended = Instant::now();
        let mut pending = vec![&second.base_url, &third.base_url];
        while !pending.is_empty() {
            let mut still = Vec::new();
            for base in pending {
                if me_status(base, &token).await.unwrap().status() != 401 {
                    still.push(base);
                }
            }
            pending = still;
            assert!(
                ended.elapsed() < Duration::from_secs(5),
                "a logged-out session still honoured after 5 s"
            );
        }
        latencies.push(ended.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("logout seen by every other instance: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
}

/// A pull waiting on instance 3 wakes for a push through instance 1.
#[actix_web::test]
async fn a_push_through_one_instance_wakes_a_pull_waiting_on_another_within_100ms() {
    let cluster = Cluster::start("app-rows", 3, "log", &[("RATE_LIMIT_PUSH_USER", "off")]).await;
    let (first, third) = (&cluster.instances[0], &cluster.instances[2]);
    let (token, _) = signup(&first.base_url, "ann@example.com").await;
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for i in 0..100 {
        let page = call(
            &third.base_url,
            Method::GET,
            "/v1/rows/pull",
            Some(&token),
            None,
        )
        .await;
        let cursor = page.body["cursor"].as_str().unwrap().to_owned();
        let waiting = client
            .get(format!("{}/v1/rows/pull?since={cursor}", third.base_url))
            .header("prefer", "wait=30")
            .bearer_auth(&token)
            .send();
        let pushed = async {
            // Long enough for the pull to be waiting.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let ts = now_ms();
            let change = json!({"collection": "c", "id": format!("r{i}"), "ts": ts, "counter": 0,
                                "node": "n", "deleted": false, "data": {}});
            let reply = call(
                &first.base_url,
                Method::POST,
                "/v1/rows/push",
                Some(&token),
                Some(json!({"changes": [change]})),
            )
            .await;
            assert_eq!(reply.body["results"][0]["status"], "applied");
            Instant::now()
        };
        let (woken, pushed_at) = tokio::join!(waiting, pushed);
        let woken = woken.unwrap();
        assert_eq!(woken.status(), 200);
        let body: Value = woken.json().await.unwrap();
        latencies.push(pushed_at.elapsed());
        assert_eq!(body["changes"].as_array().unwrap().len(), 1, "{body}");
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!("long-poll woken after a push through another instance: p50 {p50:?}, p99 {p99:?}");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sign-ups and reset requests through the balancer: each message is delivered once, whichever
/// instance's outbox worker sends it.
#[actix_web::test]
async fn each_mail_goes_out_once() {
    let sink = SmtpSink::start().await;
    let cluster = Cluster::start("app-rows", 3, &sink.url(), &[]).await;
    let people: Vec<String> = (0..6).map(|i| format!("p{i}@example.com")).collect();
    for person in &people {
        signup(&cluster.balancer, person).await;
        let forgot = call(
            &cluster.balancer,
            Method::POST,
            "/v1/auth/password/forgot",
            None,
            Some(json!({"email": person})),
        )
        .await;
        assert_eq!(forgot.status, 202);
    }
    for person in &people {
        sink.wait_for(person, 1).await;
    }
    // Every worker had time to send a message twice if it were going to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for person in &people {
        assert_eq!(
            sink.count_for(person),
            2,
            "{person}: one verification and one reset mail"
        );
    }
}

/// Four devices push through the balancer while one instance is killed: every acknowledged
/// change is stored, and pushes go on through the others.
#[actix_web::test]
async fn killing_an_instance_under_load_loses_no_acknowledged_write() {
    let mut cluster =
        Cluster::start("app-rows", 3, "log", &[("RATE_LIMIT_PUSH_USER", "off")]).await;
    let (token, _) = signup(&cluster.balancer, "ann@example.com").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let devices: Vec<_> = (0..4)
        .map(|d| {
            let (balancer, token, stop) = (cluster.balancer.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (mut acknowledged, mut failed) = (Vec::new(), 0);
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let change = json!({"collection": "c", "id": format!("d{d}-{}", n % 20),
                        "ts": now_ms(), "counter": n, "node": format!("d{d}"), "deleted": false,
                        "data": {"n": n}});
                    let sent = client
                        .post(format!("{balancer}/v1/rows/push"))
                        .bearer_auth(&token)
                        .json(&json!({"changes": [change.clone()]}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            let body: Value = r.json().await.unwrap();
                            if body["results"][0]["status"] == "applied" {
                                acknowledged.push((Instant::now(), change));
                            }
                        }
                        _ => failed += 1,
                    }
                }
                (acknowledged, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.instances[1].kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut latest: std::collections::BTreeMap<String, Value> = Default::default();
    let (mut after_kill, mut failures) = (0, 0);
    for device in devices {
        let (acknowledged, failed) = device.await.unwrap();
        failures += failed;
        for (at, change) in acknowledged {
            if at > killed_at + Duration::from_secs(1) {
                after_kill += 1;
            }
            latest.insert(change["id"].as_str().unwrap().to_owned(), change);
        }
    }
    assert!(
        after_kill > 20,
        "pushes went on after the kill: {after_kill}"
    );
    assert!(failures <= 8, "{failures} pushes failed around the kill");
    // Every acknowledged change is there, in its last acknowledged version.
    let survivor = &cluster.instances[0].base_url;
    let mut stored = std::collections::BTreeMap::new();
    let mut since = String::new();
    loop {
        let page = call(
            survivor,
            Method::GET,
            &format!("/v1/rows/pull?since={since}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(page.status, 200);
        for row in page.body["changes"].as_array().unwrap() {
            stored.insert(row["id"].as_str().unwrap().to_owned(), row.clone());
        }
        since = page.body["cursor"].as_str().unwrap().to_owned();
        if page.body["has_more"] == false {
            break;
        }
    }
    for (id, change) in &latest {
        let row = &stored[id];
        let version = |r: &Value| (r["ts"].as_i64(), r["counter"].as_i64());
        // A push whose answer was lost in the kill may have landed later still.
        assert!(version(row) >= version(change), "{id}: {row} < {change}");
        if version(row) == version(change) {
            assert_eq!(row, change);
        }
    }
    assert_eq!(me(survivor, &token).await.status, 200);
}

/// The example in `deploy/` is a configuration HAProxy accepts.
#[test]
fn the_deploy_example_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/haproxy/app-rows.cfg"
    );
    let checked = std::process::Command::new("haproxy")
        .args(["-c", "-f", example])
        .output()
        .expect("haproxy runs (.ci/run installs it)");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Two app-blob instances: of concurrent writers holding one ETag, through both instances,
/// exactly one wins; the save limit counts across them; a save through one wakes a meta read
/// waiting on the other.
#[actix_web::test]
async fn two_app_blob_instances_behave_as_one() {
    let cluster = Cluster::start(
        "app-blob",
        2,
        "log",
        &[("RATE_LIMIT_SAVE_USER", "30/minute")],
    )
    .await;
    let (first, second) = (&cluster.instances[0], &cluster.instances[1]);
    let (token, _) = signup(&cluster.balancer, "ann@example.com").await;
    let (status, mut current) =
        put_save(&cluster.balancer, &token, ("if-none-match", "*"), b"v0").await;
    assert_eq!(status, 201);
    let mut writes = 1;

    for round in 0..3 {
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let base = [&first.base_url, &second.base_url][w % 2].clone();
                let (token, current) = (token.clone(), current.clone());
                tokio::spawn(async move {
                    let body = format!("round {round} writer {w}");
                    put_save(&base, &token, ("if-match", &current), body.as_bytes()).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for writer in writers {
            let (status, etag) = writer.await.unwrap();
            writes += 1;
            match status {
                200 => winners.push(etag),
                412 => {}
                other => panic!("round {round}: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        current = winners.pop().unwrap();
    }

    // A meta read waiting on the second instance wakes for a save through the first.
    let client = reqwest::Client::new();
    let waiting = client
        .get(format!("{}/v1/save/meta", second.base_url))
        .bearer_auth(&token)
        .header("if-none-match", &current)
        .header("prefer", "wait=30")
        .send();
    let saved = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        writes += 1;
        let saved = put_save(&first.base_url, &token, ("if-match", &current), b"next").await;
        (saved, Instant::now())
    };
    let (woken, ((status, next), saved_at)) = tokio::join!(waiting, saved);
    assert_eq!(status, 200);
    let woken = woken.unwrap();
    assert_eq!(woken.status(), 200);
    assert!(saved_at.elapsed() < Duration::from_millis(500));
    assert_eq!(woken.headers()["etag"].to_str().unwrap(), next);

    // 30 writes a minute for the user, whichever instance takes them.
    let mut refused = 0;
    for i in writes..32 {
        let base = [&first.base_url, &second.base_url][i % 2];
        let response = reqwest::Client::new()
            .delete(format!("{base}/v1/save"))
            .bearer_auth(&token)
            .header("if-match", "\"not-the-version\"")
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 1, "the 31st write in a minute is refused");
}
