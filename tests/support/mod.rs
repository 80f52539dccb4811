//! Shared by the end-to-end tests; each test binary uses a part of it.
#![allow(dead_code)]

pub(crate) mod browser;
pub(crate) mod client;
pub(crate) mod jaeger;
pub(crate) mod nginx;
pub(crate) mod prometheus;
pub(crate) mod python;
pub(crate) mod run;
pub(crate) mod scratch;

use std::path::PathBuf;

/// `program` from `PATH`, or `None` (the caller skips) with a note saying how to get it; panics
/// instead when `require_var=1` (set by `scripts/test`, so CI), which installs `package`.
pub(crate) fn tool(program: &str, test: &str, require_var: &str, package: &str) -> Option<PathBuf> {
    let found = find_on_path(program);
    if found.is_none() {
        if std::env::var(require_var).is_ok_and(|v| v == "1") {
            panic!(
                "{test}: `{program}` is not on PATH but {require_var}=1 requires it; \
                 scripts/test installs it with `apt-get install -y {package}`"
            );
        }
        eprintln!(
            "note: {test}: skipping the part that needs `{program}`, which is not on PATH \
             (install Debian's `{package}` package, or run scripts/test)"
        );
    }
    found
}

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
