//! The gate every system test passes first: root, `/dev/net/tun`, `ip` and the named tools.
//!
//! Without them a test reports itself skipped, loudly, on stderr and returns early. Under
//! `NETSTACK_REQUIRE_SYSTEM_TESTS=1` (set by `.ci/run`) a missing piece is a failure instead, so
//! CI can never pass these tests quietly.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable under which a missing privilege or tool fails a system test.
pub const REQUIRE_VAR: &str = "NETSTACK_REQUIRE_SYSTEM_TESTS";

/// What the system tier always needs, whatever the test: root, the TUN/TAP device and `ip`.
pub fn missing_requirements(tools: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (euid 0) to create network namespaces and TAP devices".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun (the tun kernel module)".to_string());
    }
    for tool in std::iter::once(&"ip").chain(tools) {
        if find_on_path(tool).is_none() {
            missing.push(format!("`{tool}` on PATH"));
        }
    }
    missing
}

/// Returns true when the system tests may run. Otherwise prints `SKIPPED: <test>: needs …` to
/// stderr and returns false, or panics naming what is missing when [`REQUIRE_VAR`] is `1`.
///
/// The test's name is the current thread's: libtest names each test's thread after the test.
pub fn require_system(tools: &[&str]) -> bool {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("system test");
    let required = std::env::var(REQUIRE_VAR).as_deref() == Ok("1");
    match gate(test, &missing_requirements(tools), required) {
        Gate::Run => true,
        Gate::Skip(line) => {
            // Straight to the process's stderr in one write: libtest captures `eprintln!` of
            // passing tests, and a skip must never be quiet nor split by parallel output.
            let _ = std::io::stderr().write_all(line.as_bytes());
            false
        }
        Gate::Fail(message) => panic!("{message}"),
    }
}

/// What the gate decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// The line to print.
    Skip(String),
    /// The panic message.
    Fail(String),
}

/// The decision, apart from the machine: run when nothing is missing, else fail if the
/// variable requires the system tests, else skip.
pub fn gate(test: &str, missing: &[String], required: bool) -> Gate {
    if missing.is_empty() {
        return Gate::Run;
    }
    let needs = missing.join(", ");
    if required {
        Gate::Fail(format!(
            "{test}: {REQUIRE_VAR}=1 but this machine lacks: {needs}"
        ))
    } else {
        Gate::Skip(format!(
            "SKIPPED: {test}: needs {needs} (set {REQUIRE_VAR}=1 to fail instead)\n"
        ))
    }
}

/// The first executable file called `name` in the directories of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds one of the workspace's binaries: the path in env `var` if set, else `name` in the
/// nearest ancestor directory of the running executable that has it (a test runs from
/// `target/<profile>/deps/`, a tool from `target/<profile>/`).
pub fn find_workspace_binary(name: &str, var: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!("{var}={} is not an executable file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            format!(
                "`{name}` not found next to {} or above it, and {var} is not set: \
                 run `cargo build --workspace --bins` first (with the same CARGO_TARGET_DIR and \
                 profile as the tests), or set {var} to its path",
                exe.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_that_does_not_exist_is_reported_missing() {
        let missing = missing_requirements(&["no-such-tool-nst"]);
        assert!(
            missing.iter().any(|m| m == "`no-such-tool-nst` on PATH"),
            "{missing:?}"
        );
    }

    #[test]
    fn nothing_missing_runs_whatever_the_variable() {
        assert_eq!(gate("t", &[], false), Gate::Run);
        assert_eq!(gate("t", &[], true), Gate::Run);
    }

    #[test]
    fn something_missing_skips_loudly_naming_the_test_and_what_is_missing() {
        let missing = ["root".to_string(), "`tshark` on PATH".to_string()];
        assert_eq!(
            gate("ping_56", &missing, false),
            Gate::Skip(format!(
                "SKIPPED: ping_56: needs root, `tshark` on PATH (set {REQUIRE_VAR}=1 to fail \
                 instead)\n"
            ))
        );
    }

    #[test]
    fn something_missing_fails_when_the_variable_requires_system_tests() {
        let missing = ["`arping` on PATH".to_string()];
        assert_eq!(
            gate("arping_gets_replies", &missing, true),
            Gate::Fail(format!(
                "arping_gets_replies: {REQUIRE_VAR}=1 but this machine lacks: `arping` on PATH"
            ))
        );
    }

    #[test]
    fn sh_is_found_on_path() {
        assert!(find_on_path("sh").is_some());
    }

    #[test]
    fn a_missing_workspace_binary_names_the_build_command() {
        let err = find_workspace_binary("no-such-binary-nst", "NST_NO_SUCH_VAR").unwrap_err();
        assert!(err.contains("cargo build --workspace --bins"), "{err}");
    }
}

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `<tmp>/<label>-<pid>-<n>`.
    pub fn new(label: &str) -> ScratchDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
