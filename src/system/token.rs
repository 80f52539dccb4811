//! The metrics token of a run with `system.managed.metrics_auth`: fresh and random for each run,
//! written to a private file in a private temporary directory (never the output directory, which
//! is kept and shared), handed to both services, and removed with the directory when dropped.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use engine::metrics_token::MetricsToken;
use rand::Rng as _;

/// Random bytes in a token: 256 bits, written as 64 hex digits.
const TOKEN_BYTES: usize = 32;

/// A token file that exists as long as this value does. `Debug` shows the path, not the token.
#[derive(Debug)]
pub struct MetricsTokenFile {
    dir: PathBuf,
    path: PathBuf,
    token: MetricsToken,
}

impl MetricsTokenFile {
    /// Makes a token and writes it to `token` in a new directory of mode 0700 below `parent`, the
    /// file of mode 0600. Both are created anew, so nothing planted there beforehand is used.
    pub fn create(parent: &Path) -> std::io::Result<MetricsTokenFile> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill(&mut bytes[..]);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let token = MetricsToken::parse(hex.as_bytes())
            .map_err(|problem| std::io::Error::other(format!("a generated token: {problem:?}")))?;
        let mut suffix = [0u8; 8];
        rand::rng().fill(&mut suffix[..]);
        let dir = parent.join(format!(
            "harness-metrics-token-{}-{:016x}",
            std::process::id(),
            u64::from_ne_bytes(suffix)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        // From here on, dropping removes the directory whatever fails.
        let file = MetricsTokenFile {
            path: dir.join("token"),
            dir,
            token,
        };
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)?;
        handle.write_all(file.token.expose().as_bytes())?;
        handle.sync_all()?;
        Ok(file)
    }

    /// The file the services read (`--metrics-token-file`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Bearer <token>`, marked sensitive so that HTTP clients keep it out of their logs.
    pub fn authorization(&self) -> reqwest::header::HeaderValue {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
                .unwrap_or_else(|_| unreachable!("a token is visible ASCII"));
        value.set_sensitive(true);
        value
    }

    /// The token itself, for tests that must search outputs for it.
    pub fn token(&self) -> &MetricsToken {
        &self.token
    }
}

impl Drop for MetricsTokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_private_file_with_a_fresh_token_is_removed_when_dropped() {
        let parent = std::env::temp_dir();
        let first = MetricsTokenFile::create(&parent).expect("created");
        let second = MetricsTokenFile::create(&parent).expect("created");
        assert_ne!(first.token(), second.token(), "a fresh token each time");
        let read = MetricsToken::read(first.path()).expect("the services can read it");
        assert_eq!(&read, first.token());
        assert_eq!(read.expose().len(), 2 * TOKEN_BYTES);
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(first.path()), 0o600);
        let dir = first.path().parent().expect("a directory").to_owned();
        assert_eq!(mode(&dir), 0o700);
        assert!(dir.starts_with(&parent));
        let header = first.authorization();
        assert!(header.is_sensitive());
        assert_eq!(
            header.to_str().expect("ascii"),
            format!("Bearer {}", first.token().expose())
        );
        let shown = format!("{first:?}");
        assert!(!shown.contains(first.token().expose()), "{shown}");
        drop(first);
        assert!(!dir.exists(), "removed with its directory");
        drop(second);
    }

    #[test]
    fn a_parent_that_cannot_hold_it_is_an_error() {
        let error = MetricsTokenFile::create(Path::new("/nonexistent/parent")).expect_err("no dir");
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
