//! `cargo move-app-blob`: moves `app-blob` to the current release in a scratch copy of the
//! workspace, builds it and runs its tests there (`system_tests::moves`). Exits non-zero, with
//! cargo's output, when a patch no longer applies, the build fails or a test fails.

use std::path::Path;
use std::process::ExitCode;

use system_tests::moves::{Moved, PATCHES};

fn main() -> ExitCode {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let steps = || -> Result<(), String> {
        let moved = Moved::prepare(&workspace)?;
        println!("applied {} in {}", PATCHES.join(", "), moved.root.display());
        let binary = moved.build()?;
        println!("built {}", binary.display());
        let output = moved.test()?;
        let passed = output.lines().filter(|l| l.starts_with("test result: ok"));
        println!(
            "tests of the moved app-blob passed ({} binaries)",
            passed.count()
        );
        Ok(())
    };
    match steps() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("move-app-blob: {e}");
            ExitCode::FAILURE
        }
    }
}
