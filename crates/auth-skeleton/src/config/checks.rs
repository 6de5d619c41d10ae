//! Checks a running service needs beyond each variable's own syntax: settings that parse but
//! cannot work together, and names that look right but mean nothing.
//!
//! [`check_service`] runs them all; `APP serve` and `APP check-config` call it before anything
//! else, so a mistake stops the service at start with a message that says how to fix it.

use std::path::Path;

use super::{ConfigError, Settings, Vars};
use crate::accounts::AuthConfig;
use crate::private_files::{self, Exposure};

/// Refuses `COOKIE_SECURE=true` with a plain-HTTP `PUBLIC_URL` on a host other than the local
/// machine: browsers would store the `Secure` cookie and never send it back, so every web
/// sign-in would seem to work and then fail.
pub fn cookie_security(auth: &AuthConfig) -> Result<(), ConfigError> {
    let url = &auth.public_url;
    if auth.cookie_secure && url.scheme() == "http" && !crate::web_origin::is_loopback(url) {
        return Err(ConfigError::new(
            "COOKIE_SECURE",
            format!(
                "is true but PUBLIC_URL ({}) is plain http: browsers never send a Secure cookie \
                 back over http, so web sign-ins would not stick. Serve the public URL over https \
                 (PUBLIC_URL=https://...), or, for local development only, set COOKIE_SECURE=false",
                crate::web_origin::origin_of(url)
            ),
        ));
    }
    Ok(())
}

/// Refuses mail settings that would leak secrets in production (see
/// [`crate::mail::transport_risk`]): live links in the log, or mail in cleartext over a network.
pub fn mail_safety(auth: &AuthConfig) -> Result<(), ConfigError> {
    match crate::mail::transport_risk(&auth.mail.transport, &auth.public_url) {
        Some(why) => Err(ConfigError::new("MAIL_TRANSPORT", why)),
        None => Ok(()),
    }
}

/// Every check a service runs at start, after [`Settings::from_vars`] has parsed each variable.
pub fn check_service(settings: &Settings, vars: &Vars) -> Result<(), ConfigError> {
    cookie_security(&settings.auth)?;
    mail_safety(&settings.auth)?;
    // Also refuses RATE_LIMIT_* names that mean nothing (a typo would silently keep a default).
    crate::rate_limit::RateLimitConfig::from_vars(vars)?;
    Ok(())
}

/// The files and directories of the service that users other than its own may read, write or
/// enter: the SQLite database, its `-wal` and `-shm` files, and the directory that holds them
/// (unless it is shared by design, with the sticky bit, as `/tmp` is). They hold password and
/// session hashes that whoever copies them can attack offline.
///
/// `serve` and `migrate` log a warning for each at start and `check-config` prints them, with
/// the `chmod` that fixes it ([`exposure_warning`]); nothing is changed behind the operator's
/// back. The files secrets are read from (`*_FILE`, and the key generated beside the database)
/// are in the list too, on every backend. Files the service creates itself are private from the start (see
/// [`crate::private_files`]).
pub fn exposed_files(settings: &Settings) -> Vec<Exposure> {
    let mut exposed = Vec::new();
    let mut secrets: Vec<&Path> = settings.secret_files.iter().map(|p| p.as_path()).collect();
    secrets.extend(settings.secret_key.file());
    secrets.dedup();
    for file in secrets {
        if let Ok(Some(e)) = private_files::exposure(file)
            && !exposed.iter().any(|x: &Exposure| x.path == e.path)
        {
            exposed.push(e);
        }
    }
    let Some(db) = settings.database_url.sqlite_file() else {
        return exposed;
    };
    let dir = db.parent().map(|d| match d.as_os_str().is_empty() {
        true => Path::new("."),
        false => d,
    });
    if let Some(dir) = dir.filter(|d| *d != Path::new("/"))
        && let Ok(Some(e)) = private_files::exposure(dir)
        && e.mode & 0o1000 == 0
    {
        exposed.push(e);
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        if let Ok(Some(e)) = private_files::exposure(Path::new(&path)) {
            exposed.push(e);
        }
    }
    exposed
}

/// The warning for one of [`exposed_files`]: what is open, and the command that closes it.
pub fn exposure_warning(exposed: &Exposure) -> String {
    format!(
        "{exposed}, and it holds secrets (password or session hashes, a key or credentials); run `{}`",
        exposed.fix()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(public_url: &str, secure: &str) -> AuthConfig {
        let vars = Vars::from_pairs([("PUBLIC_URL", public_url), ("COOKIE_SECURE", secure)]);
        AuthConfig::from_vars("app-rows", "http://127.0.0.1:8080", &vars).unwrap()
    }

    #[test]
    fn secure_cookies_need_https_except_on_the_local_machine() {
        let err = cookie_security(&auth("http://rows.example.com", "true")).unwrap_err();
        assert_eq!(err.var, "COOKIE_SECURE");
        assert!(err.message.contains("https"), "{err}");
        for ok in [
            ("https://rows.example.com", "true"),
            ("http://rows.example.com", "false"),
            ("http://localhost:8080", "true"),
            ("http://127.0.0.1:8080", "true"),
            ("http://[::1]:8080", "true"),
        ] {
            assert!(cookie_security(&auth(ok.0, ok.1)).is_ok(), "{ok:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_database_open_to_others_is_reported_but_not_a_shared_directory() {
        use std::os::unix::fs::PermissionsExt as _;
        let chmod = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("app.db");
        let url = format!("sqlite://{}", db.display());
        let settings = |url: &str| {
            Settings::from_vars("app-rows", 8080, &Vars::from_pairs([("DATABASE_URL", url)]))
                .unwrap()
        };
        chmod(tmp.path(), 0o700);
        assert!(
            exposed_files(&settings(&url)).is_empty(),
            "nothing exists yet"
        );

        std::fs::write(&db, "").unwrap();
        chmod(&db, 0o644);
        std::fs::write(tmp.path().join("app.db-wal"), "").unwrap();
        chmod(&tmp.path().join("app.db-wal"), 0o600);
        chmod(tmp.path(), 0o1777);
        let exposed = exposed_files(&settings(&url));
        let paths: Vec<&Path> = exposed.iter().map(|e| e.path.as_path()).collect();
        assert_eq!(
            paths,
            [db.as_path()],
            "a sticky directory such as /tmp is shared by design"
        );
        let warning = exposure_warning(&exposed[0]);
        assert!(
            warning.contains(&format!("chmod 600 {}", db.display())),
            "{warning}"
        );

        chmod(tmp.path(), 0o755);
        chmod(&db, 0o600);
        let exposed = exposed_files(&settings(&url));
        assert_eq!(exposed.len(), 1);
        assert!(exposed[0].is_dir && exposed[0].fix().starts_with("chmod 700 "));
        chmod(tmp.path(), 0o700);
        assert!(exposed_files(&settings(&url)).is_empty());
        assert!(exposed_files(&settings("postgres://db/app")).is_empty());
    }
}
