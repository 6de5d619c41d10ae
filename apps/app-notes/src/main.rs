//! `app-notes`: the service binary. The library supplies all but the spec and the engine.

fn main() -> std::process::ExitCode {
    auth_skeleton::service::main(app_notes::spec(), app_notes::engine())
}
