//! Cheap targeted lockout: a few wrong logins an hour for someone's address kept its owner out,
//! even after a reset. Clients that signed in before hold a device token and are held to its
//! own failure count instead of the address's limit; everyone else still waits.

use auth_skeleton::testing::{Backend, TEST_PASSWORD};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use super::MailedService;
use crate::http::{Reply, call, login, signup};

const OWNER: &str = "ann@example.com";
const NEW_PASSWORD: &str = "taken-back-for-good";

/// A bearer login of `email` that presents `device_token`.
async fn login_with_device(base: &str, email: &str, password: &str, device_token: &str) -> Reply {
    let body = json!({"email": email, "password": password, "session": "bearer",
                      "device_token": device_token});
    call(base, Method::POST, "/v1/auth/login", None, Some(body)).await
}

fn device_token(reply: &Reply) -> String {
    reply.body["device_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no device_token in {}", reply.body))
        .to_owned()
}

/// A cookie login (no `session` field) that sends `cookie`; returns the status and the
/// `Set-Cookie` headers.
async fn cookie_login(base: &str, password: &str, cookie: Option<&str>) -> (u16, Vec<String>) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": OWNER, "password": password}));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.expect("the service answers");
    let set_cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (response.status().as_u16(), set_cookies)
}

/// The owner takes the address back: forgot, the mailed link, a new password.
async fn reset_password(svc: &MailedService) {
    let reset = svc.reset_link(OWNER, 1).await;
    let body = json!({"token": reset, "new_password": NEW_PASSWORD});
    let reply = call(
        svc.base(),
        Method::POST,
        "/v1/auth/password/reset",
        None,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
}

/// The same service on the same database with the default per-email login limit (limits live
/// in memory), as after tokens were collected with it off.
fn restart_with_the_default_email_limit(svc: &mut MailedService) {
    let vars: Vec<(&str, String)> = svc
        .vars()
        .into_iter()
        .filter(|(k, _)| *k != "RATE_LIMIT_LOGIN_EMAIL")
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    svc.service =
        auth_skeleton::testing::ServiceProcess::start(&system_tests::binary("app-rows"), &pairs);
}

/// Wrong passwords for the owner's address until the service refuses; how many it took.
async fn lock_out(base: &str) -> usize {
    for n in 0..30 {
        let reply = login(base, OWNER, &format!("attacker-guess-{n}")).await;
        match (reply.status, reply.code()) {
            (401, "invalid_credentials") => {}
            (429, "rate_limited") => return n,
            other => panic!("guess {n}: {other:?} {}", reply.body),
        }
    }
    panic!("30 wrong logins and the address was never limited");
}

async fn the_owners_devices_get_past_an_attackers_lockout(backend: Backend) {
    // The attacker uses many addresses: the per-IP limit is not what this is about.
    let svc = MailedService::start(backend, &[("RATE_LIMIT_LOGIN_IP", "off")]).await;
    let base = svc.base();
    signup(base, OWNER).await;
    let phone = login(base, OWNER, TEST_PASSWORD).await;
    assert_eq!(phone.status, 200, "{}", phone.body);
    let phone_token = device_token(&phone);
    let (status, set_cookies) = cookie_login(base, TEST_PASSWORD, None).await;
    assert_eq!(status, 200);
    let device_cookie = set_cookies
        .iter()
        .find(|c| c.starts_with("device="))
        .unwrap_or_else(|| panic!("no device cookie in {set_cookies:?}"));
    for attribute in [
        "HttpOnly",
        "Path=/v1/auth/login",
        "SameSite=Strict",
        "Max-Age=31536000",
    ] {
        assert!(device_cookie.contains(attribute), "{device_cookie}");
    }
    assert!(
        !set_cookies.iter().any(|c| c.contains(&phone_token)),
        "each sign-in has a device token of its own"
    );
    let browser_cookie = device_cookie.split(';').next().unwrap().to_owned();
    // The attacker's own account and its device token.
    signup(base, "mallory@example.com").await;
    let mallory = device_token(&login(base, "mallory@example.com", TEST_PASSWORD).await);

    let guesses = lock_out(base).await;
    assert!(guesses <= 10, "locked only after {guesses} wrong logins");
    // The owner takes the account back (which lifts the address's lockout), and the attacker
    // locks it again at once: unknown clients wait, even with the new password.
    reset_password(&svc).await;
    lock_out(base).await;
    let stranger = login(base, OWNER, NEW_PASSWORD).await;
    assert_eq!((stranger.status, stranger.code()), (429, "rate_limited"));
    let foreign = login_with_device(base, OWNER, NEW_PASSWORD, &mallory).await;
    assert_eq!(
        (foreign.status, foreign.code()),
        (429, "rate_limited"),
        "another account's device token does not lift the lockout"
    );
    let garbage = login_with_device(base, OWNER, NEW_PASSWORD, "not-a-device-token").await;
    assert_eq!(garbage.status, 429);

    // The owner's phone and browser sign in all the same.
    let again = login_with_device(base, OWNER, NEW_PASSWORD, &phone_token).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        device_token(&again),
        phone_token,
        "the phone keeps its device token"
    );
    let (status, _) = cookie_login(base, NEW_PASSWORD, Some(&browser_cookie)).await;
    assert_eq!(status, 200, "the browser's device cookie lifts the lockout");
    // A wrong password with the device token is still just wrong.
    let wrong = login_with_device(base, OWNER, "attacker-guess-x", &phone_token).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
}

async fn a_stolen_device_token_buys_only_a_few_guesses(backend: Backend) {
    // Each token's own count is what this is about; the account's budget for all of its tokens
    // together has a test of its own below.
    let svc = MailedService::start(
        backend,
        &[
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_DEVICE_USER", "off"),
        ],
    )
    .await;
    let base = svc.base();
    signup(base, OWNER).await;
    let stolen = device_token(&login(base, OWNER, TEST_PASSWORD).await);
    let kept = device_token(&login(base, OWNER, TEST_PASSWORD).await);
    lock_out(base).await;

    // Guesses sent all at once: each is counted before its password is checked.
    let guesses = (0..20).map(|n| {
        let stolen = stolen.clone();
        async move { login_with_device(base, OWNER, &format!("thief-guess-{n}"), &stolen).await }
    });
    let replies = join_all(guesses).await;
    let statuses: Vec<(u16, String)> = replies
        .iter()
        .map(|r| (r.status, r.code().to_owned()))
        .collect();
    let wrong = statuses.iter().filter(|(s, _)| *s == 401).count();
    let limited = statuses
        .iter()
        .filter(|(s, c)| *s == 429 && c == "rate_limited")
        .count();
    assert_eq!(
        wrong,
        auth_skeleton::accounts::DEVICE_TOKEN_MAX_FAILURES as usize,
        "{statuses:?}"
    );
    assert_eq!(wrong + limited, 20, "{statuses:?}");
    // Spent: even the right password with it now meets the address's lockout.
    let spent = login_with_device(base, OWNER, TEST_PASSWORD, &stolen).await;
    assert_eq!(
        (spent.status, spent.code()),
        (429, "rate_limited"),
        "{}",
        spent.body
    );
    // The owner's other device is untouched, and a success starts its count again.
    for round in 0..3 {
        for n in 0..4 {
            let reply = login_with_device(base, OWNER, &format!("typo-{round}-{n}"), &kept).await;
            assert_eq!(reply.status, 401, "{}", reply.body);
        }
        let reply = login_with_device(base, OWNER, TEST_PASSWORD, &kept).await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
    }
}

/// Whoever once held the password (a sign-up before the owner came, a stolen password) signs
/// in again and again to keep device tokens for later. The pile pushes out none of the owner's
/// devices, and after the owner's reset all of it together buys the few guesses of
/// `RATE_LIMIT_LOGIN_DEVICE_USER`, not five per token.
async fn a_pile_of_kept_device_tokens_buys_few_guesses(backend: Backend) {
    let mut svc = MailedService::start(
        backend,
        &[
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    )
    .await;
    signup(svc.base(), OWNER).await;
    let phone = device_token(&login(svc.base(), OWNER, TEST_PASSWORD).await);
    let mut pile = Vec::new();
    for _ in 0..30 {
        let reply = login(svc.base(), OWNER, TEST_PASSWORD).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        pile.extend(reply.body["device_token"].as_str().map(str::to_owned));
    }
    // The sign-up's and the phone's, then the pile up to the account's 20.
    assert_eq!(pile.len(), 18, "the account keeps at most 20 device tokens");

    // The same database with the default login limits (they live in memory).
    restart_with_the_default_email_limit(&mut svc);
    let base = svc.base().to_owned();
    reset_password(&svc).await;
    lock_out(&base).await;
    let again = login_with_device(&base, OWNER, NEW_PASSWORD, &phone).await;
    assert_eq!(
        again.status, 200,
        "the phone's token was not pushed out: {}",
        again.body
    );

    let mut checked = 0;
    for (n, token) in pile.iter().enumerate() {
        for guess in 0..6 {
            let reply =
                login_with_device(&base, OWNER, &format!("pile-guess-{n}-{guess}"), token).await;
            match (reply.status, reply.code()) {
                (401, "invalid_credentials") => checked += 1,
                (429, "rate_limited") => {}
                other => panic!("{other:?} {}", reply.body),
            }
        }
    }
    assert!(
        checked <= 10,
        "{checked} guesses were checked with {} kept tokens",
        pile.len()
    );
}

/// A spent device token is like no token at all: trying it again does not use up the budget
/// the account's live tokens sign in with.
async fn a_spent_token_does_not_use_up_the_owners_budget(backend: Backend) {
    let svc = MailedService::start(backend, &[("RATE_LIMIT_LOGIN_IP", "off")]).await;
    let base = svc.base();
    signup(base, OWNER).await;
    let own = device_token(&login(base, OWNER, TEST_PASSWORD).await);
    let stolen = device_token(&login(base, OWNER, TEST_PASSWORD).await);
    lock_out(base).await;
    for n in 0..5 {
        let reply = login_with_device(base, OWNER, &format!("thief-{n}"), &stolen).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    for n in 0..20 {
        let reply = login_with_device(base, OWNER, &format!("spent-{n}"), &stolen).await;
        assert_eq!(reply.status, 429, "{}", reply.body);
    }
    // 5 of the hour's 10 went to the stolen token's real guesses; the rest are the owner's.
    for n in 0..5 {
        let reply = login_with_device(base, OWNER, TEST_PASSWORD, &own).await;
        assert_eq!(reply.status, 200, "sign-in {n}: {}", reply.body);
    }
}

/// Someone registers the owner's address first and keeps the account's 20 device tokens. Once
/// the owner takes the address back with a reset, those tokens no longer fill the account:
/// the owner's devices get tokens of their own, and the pile's guesses come out of a budget of
/// its own, so the owner's new device signs in through the lockout.
async fn a_pile_from_before_a_reset_neither_fills_the_account_nor_spends_the_owners_budget(
    backend: Backend,
) {
    let mut svc = MailedService::start(
        backend,
        &[
            ("RATE_LIMIT_LOGIN_IP", "off"),
            ("RATE_LIMIT_LOGIN_EMAIL", "off"),
        ],
    )
    .await;
    let squatter = device_token(&{
        let body = json!({"email": OWNER, "password": TEST_PASSWORD, "session": "bearer"});
        call(
            svc.base(),
            Method::POST,
            "/v1/auth/signup",
            None,
            Some(body),
        )
        .await
    });
    let mut pile = vec![squatter];
    for _ in 0..25 {
        let reply = login(svc.base(), OWNER, TEST_PASSWORD).await;
        pile.extend(reply.body["device_token"].as_str().map(str::to_owned));
    }
    assert_eq!(pile.len(), 20);
    restart_with_the_default_email_limit(&mut svc);
    let base = svc.base().to_owned();
    // The owner takes the address back and signs in on a phone: it gets a device token.
    reset_password(&svc).await;
    let phone = device_token(&login(&base, OWNER, NEW_PASSWORD).await);

    lock_out(&base).await;
    let mut checked = 0;
    for (n, token) in pile.iter().enumerate() {
        let reply = login_with_device(&base, OWNER, &format!("squat-{n}"), token).await;
        checked += usize::from(reply.status == 401);
    }
    assert!(checked <= 10, "{checked} guesses checked with the pile");
    let reply = login_with_device(&base, OWNER, NEW_PASSWORD, &phone).await;
    assert_eq!(reply.status, 200, "the owner's phone: {}", reply.body);
}

auth_skeleton::both_backends!(
    the_owners_devices_get_past_an_attackers_lockout,
    a_stolen_device_token_buys_only_a_few_guesses,
    a_pile_of_kept_device_tokens_buys_few_guesses,
    a_spent_token_does_not_use_up_the_owners_budget,
    a_pile_from_before_a_reset_neither_fills_the_account_nor_spends_the_owners_budget,
);
