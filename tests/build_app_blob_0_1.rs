//! `cargo build-app-blob-0-1`: builds `app-blob` as it was on the 0.1 line of auth-skeleton (the
//! commit in `release/moves/app-blob-0.1.toml`) in a scratch copy under the target directory
//! (`system_tests::app_blob_0_1`), for the mixed-fleet system tests. Exits non-zero, with the
//! reason or cargo's output, when the commit is missing or the build fails.

use std::path::Path;
use std::process::ExitCode;

use system_tests::app_blob_0_1::OldAppBlob;

fn main() -> ExitCode {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let steps = || -> Result<(), String> {
        let old = OldAppBlob::prepare(&workspace)?;
        let record = &old.record;
        println!(
            "{} (auth-skeleton {}) as of {} in {}",
            record.app,
            record.auth_skeleton,
            &record.rev[..12],
            old.root.display()
        );
        let binary = old.build()?;
        println!("built {}", binary.display());
        Ok(())
    };
    match steps() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("build-app-blob-0-1: {e}");
            ExitCode::FAILURE
        }
    }
}
