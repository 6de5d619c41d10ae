//! `app-rows`: the service binary. Everything but the sync engine comes from `auth-skeleton`.

fn main() -> std::process::ExitCode {
    auth_skeleton::service::main(app_rows::spec(), app_rows::engine())
}
