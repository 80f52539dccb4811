//! A bearer token in front of the metrics endpoints (`--metrics-token-file`), shared by both
//! services. The metrics expose request counts, latencies and process details that need not be
//! public; health and the API stay as they are.
//!
//! The token is read once at start from a file, so that it never sits in the command line or the
//! environment (both visible in `/proc`), and is kept in a type whose `Debug` prints no secret.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

/// The longest token accepted, in bytes: far beyond any real token, small enough that a wrong
/// file (a log, a binary) is refused instead of read whole.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// What a refused scrape is told to send.
pub const WWW_AUTHENTICATE: &str = r#"Bearer realm="metrics""#;

/// A metrics token: visible ASCII, 1 to [`MAX_TOKEN_BYTES`] bytes. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(Box<str>);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// Why a token file was refused. Every message names the file and never the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be opened or read.
    #[error("metrics token file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory, device or FIFO: opening one could block or never end.
    #[error("metrics token file {path}: not a regular file")]
    NotAFile { path: PathBuf },
    /// Nothing but whitespace.
    #[error("metrics token file {path}: empty (the token is the file's content)")]
    Empty { path: PathBuf },
    /// Over [`MAX_TOKEN_BYTES`].
    #[error("metrics token file {path}: longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong { path: PathBuf },
    /// A byte that cannot go in an `Authorization` header as written.
    #[error(
        "metrics token file {path}: byte {position} of the token is not visible ASCII \
         (only the characters ! to ~ may appear)"
    )]
    NotVisibleAscii { path: PathBuf, position: usize },
}

impl MetricsToken {
    /// The token in `path`: its content without surrounding whitespace (a trailing newline is
    /// what editors and `echo` leave).
    pub fn read(path: &Path) -> Result<MetricsToken, TokenError> {
        let unreadable = |source| TokenError::Unreadable {
            path: path.to_owned(),
            source,
        };
        if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
            return Err(TokenError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(unreadable)?
            // Room for surrounding whitespace; a file longer than this is no token file.
            .take(2 * MAX_TOKEN_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() > 2 * MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong {
                path: path.to_owned(),
            });
        }
        Self::parse(&bytes).map_err(|problem| problem.at(path))
    }

    /// The token of a file's content, without surrounding whitespace.
    pub fn parse(content: &[u8]) -> Result<MetricsToken, Problem> {
        let token = content.trim_ascii();
        if token.is_empty() {
            return Err(Problem::Empty);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Problem::TooLong);
        }
        if let Some(position) = token.iter().position(|b| !b.is_ascii_graphic()) {
            return Err(Problem::NotVisibleAscii(position + 1));
        }
        // Visible ASCII is UTF-8.
        let text = String::from_utf8_lossy(token);
        Ok(MetricsToken(text.into()))
    }

    /// The secret itself, for whoever must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value carries this token: the `Bearer` scheme in any
    /// case, then the token, compared in time that does not depend on where they differ.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        let Some(space) = authorization.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = authorization.split_at(space);
        scheme.eq_ignore_ascii_case(b"bearer")
            && constant_time_eq(rest.trim_ascii_start(), self.0.as_bytes())
    }
}

/// What is wrong with a token, before the file is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong,
    /// The 1-based position of the first byte that is not visible ASCII.
    NotVisibleAscii(usize),
}

impl Problem {
    fn at(self, path: &Path) -> TokenError {
        let path = path.to_owned();
        match self {
            Problem::Empty => TokenError::Empty { path },
            Problem::TooLong => TokenError::TooLong { path },
            Problem::NotVisibleAscii(position) => TokenError::NotVisibleAscii { path, position },
        }
    }
}

/// Equality whose time depends on the lengths only: every byte of `expected` is compared, and
/// no early return tells how much of a guess was right.
fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(presented.len() != expected.len());
    for (i, &byte) in expected.iter().enumerate() {
        difference |= byte ^ presented.get(i).copied().unwrap_or(!byte);
    }
    std::hint::black_box(difference) == 0
}

/// The token of `--metrics-token-file`, if one is given.
pub fn load(path: Option<&Path>) -> Result<Option<Arc<MetricsToken>>, TokenError> {
    path.map(|path| MetricsToken::read(path).map(Arc::new))
        .transpose()
}

/// `route` behind the token when there is one; unchanged otherwise.
pub fn guard<S>(route: MethodRouter<S>, token: Option<Arc<MetricsToken>>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    match token {
        Some(token) => route.layer(axum::middleware::from_fn_with_state(token, require)),
        None => route,
    }
}

/// Passes a request with exactly one `Authorization` header that carries the token; answers
/// anything else 401 with a `WWW-Authenticate` challenge.
async fn require(State(token): State<Arc<MetricsToken>>, request: Request, next: Next) -> Response {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let admitted = match (values.next(), values.next()) {
        (Some(value), None) => token.admits(value.as_bytes()),
        _ => false,
    };
    if admitted {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        )],
        Body::from("the metrics need Authorization: Bearer <token>\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> MetricsToken {
        MetricsToken::parse(text.as_bytes()).expect("a valid token")
    }

    #[test]
    fn the_token_is_the_content_without_surrounding_whitespace() {
        assert_eq!(token("  s3cr3t-T0ken~\n").expose(), "s3cr3t-T0ken~");
        assert_eq!(token("\r\n\tx\r\n").expose(), "x");
        let longest = "a".repeat(MAX_TOKEN_BYTES);
        assert_eq!(token(&longest).expose(), longest);
    }

    #[test]
    fn empty_long_and_invisible_tokens_are_refused() {
        for (content, problem) in [
            ("", Problem::Empty),
            (" \n\t\n", Problem::Empty),
            (&"a".repeat(MAX_TOKEN_BYTES + 1), Problem::TooLong),
            ("two words", Problem::NotVisibleAscii(4)),
            ("tab\there", Problem::NotVisibleAscii(4)),
            ("caf\u{e9}", Problem::NotVisibleAscii(4)),
            ("nul\0", Problem::NotVisibleAscii(4)),
        ] {
            assert_eq!(
                MetricsToken::parse(content.as_bytes()),
                Err(problem),
                "{content:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", Some(Arc::new(token("hunter2-very-secret"))));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn only_the_bearer_scheme_with_the_exact_token_is_admitted() {
        let t = token("abc123");
        for good in [
            "Bearer abc123",
            "bearer abc123",
            "BEARER abc123",
            "bEaReR  abc123",
        ] {
            assert!(t.admits(good.as_bytes()), "{good}");
        }
        for bad in [
            "Bearer abc1234",
            "Bearer abc12",
            "Bearer ABC123",
            "Bearer",
            "Bearer ",
            "abc123",
            "Basic abc123",
            "Bearerabc123",
            "Token abc123",
            "Bearer abc123 ",
            "",
        ] {
            assert!(!t.admits(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn comparison_catches_every_differing_position_and_length() {
        let expected = b"0123456789";
        assert!(constant_time_eq(expected, expected));
        for i in 0..expected.len() {
            let mut guess = *expected;
            guess[i] ^= 1;
            assert!(!constant_time_eq(&guess, expected), "position {i}");
        }
        assert!(!constant_time_eq(b"012345678", expected));
        assert!(!constant_time_eq(b"0123456789\0", expected));
        assert!(!constant_time_eq(b"", expected));
    }

    #[test]
    fn files_are_refused_naming_them_and_never_the_token() {
        let dir = std::env::temp_dir().join(format!("engine-metrics-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let write = |name: &str, content: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, content).expect("written");
            path
        };
        let good = write("good", b"right-token\n");
        assert_eq!(
            MetricsToken::read(&good).expect("read").expose(),
            "right-token"
        );
        let cases = [
            (dir.join("missing"), "No such file"),
            (dir.clone(), "not a regular file"),
            (write("empty", b"\n"), "empty"),
            (
                write("long", "x".repeat(3 * MAX_TOKEN_BYTES).as_bytes()),
                "longer than 4096 bytes",
            ),
            (
                write("spaced", b"secret-part other-part"),
                "byte 12 of the token is not visible ASCII",
            ),
        ];
        for (path, expected) in cases {
            let message = MetricsToken::read(&path).expect_err("refused").to_string();
            assert!(
                message.starts_with(&format!("metrics token file {}: ", path.display()))
                    && message.contains(expected),
                "{message}"
            );
            assert!(!message.contains("secret-part"), "{message}");
        }
        assert!(matches!(
            MetricsToken::read(Path::new("/dev/zero")),
            Err(TokenError::NotAFile { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
