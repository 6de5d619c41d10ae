//! Client addresses behind a real reverse proxy: with the service on a dual-stack `[::]`
//! listener, the proxy's IPv4 address arrives as `::ffff:127.0.0.1`; it must still be the
//! trusted proxy, so that each client behind it gets its own per-IP limit instead of all
//! clients sharing one bucket (which lets one attacker lock everyone out).

use std::net::IpAddr;

use auth_skeleton::testing::{Backend, ServiceProcess, TestDatabase};
use system_tests::binary;

use crate::haproxy::{Haproxy, free_port};
use crate::http::failed_login;

async fn each_client_behind_a_proxy_has_its_own_ip_limit(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let service = ServiceProcess::start(
        &binary("app-rows"),
        &[
            ("DATABASE_URL", &database.url),
            ("BIND", "[::]:0"),
            ("PUBLIC_URL", "http://127.0.0.1:8080"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_LOGIN_IP", "3/hour"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    );
    let service_port = service.base_url.rsplit(':').next().unwrap();
    let (v4, v6) = (free_port(), free_port());
    let _proxy = Haproxy::start(
        &format!(
            "frontend public\n    bind 127.0.0.1:{v4}\n    bind [::1]:{v6}\n    \
             option forwardfor\n    default_backend app\n\
             backend app\n    server app 127.0.0.1:{service_port}\n"
        ),
        v4,
    );
    let via_v4 = format!("http://127.0.0.1:{v4}");
    let via_v6 = format!("http://[::1]:{v6}");
    let attacker: IpAddr = "127.0.0.2".parse().unwrap();

    for n in 0..3 {
        assert_eq!(failed_login(&via_v4, attacker, n).await, 401);
    }
    assert_eq!(
        failed_login(&via_v4, attacker, 3).await,
        429,
        "the attacker's own limit holds behind the proxy"
    );
    assert_eq!(
        failed_login(&via_v4, "127.0.0.3".parse().unwrap(), 4).await,
        401,
        "another IPv4 client behind the same proxy is not limited with the attacker"
    );
    assert_eq!(
        failed_login(&via_v6, "::1".parse().unwrap(), 5).await,
        401,
        "an IPv6 client is not limited with the attacker"
    );
}

auth_skeleton::both_backends!(each_client_behind_a_proxy_has_its_own_ip_limit);
