//! `app-blob`: the service binary. Everything but the sync engine comes from `auth-skeleton`.

fn main() -> std::process::ExitCode {
    auth_skeleton::service::main(app_blob::spec(), app_blob::engine())
}
