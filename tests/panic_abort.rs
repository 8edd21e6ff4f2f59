//! Under `panic = "abort"` kill and timeouts cannot unwind a greenlet: the first one
//! that would fails loudly with a message saying why (docs/troubleshooting.md). Builds
//! the small program in tests/panic-abort with that profile (into target/panic-abort).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

fn run(arg: &str) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| Path::new(&d).join("panic-abort"))
        .unwrap_or_else(|| root.join("target/panic-abort"));
    Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(root.join("tests/panic-abort/Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .arg("--")
        .arg(arg)
        .output()
        .expect("cargo runs")
}

#[test]
fn kill_and_timeout_under_panic_abort_fail_loudly_saying_why() {
    let fine = run("none");
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));
    for what in ["kill", "timeout"] {
        let out = run(what);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("ok so far") && !stdout.contains("not reached"), "{what}: {stdout}");
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{what}: {stderr}");
        assert!(stderr.contains("needs panic = \"unwind\""), "{what}: {stderr}");
    }
}
