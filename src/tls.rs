//! TLS for every connection the harness opens (the load target, Jaeger, Prometheus, scrape URLs):
//! one rustls configuration built from what the scenario says to trust. No OpenSSL is needed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The most a certificate or key file may hold: PEM bundles are kilobytes.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// What a client trusts and presents. The default trusts the system's roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// A PEM file of CA certificates to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), for servers that ask for one.
    pub identity: Option<Identity>,
    /// Accept any server certificate. For test systems only; the summary warns about it.
    pub insecure: bool,
}

/// A client certificate chain and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a TLS configuration could not be built, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than any certificate bundle or key.
    #[error("{path}: larger than {MAX_PEM_BYTES} bytes; expected a PEM file")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A file holds no item of the expected kind, or malformed PEM.
    #[error("{path}: expected {expected} in PEM form: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        expected: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto provider every configuration uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration for `spec`, without ALPN (each client sets the protocols it speaks).
pub fn client_config(spec: &TlsSpec) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let check = |certificates| {
        Arc::new(Verifier {
            certificates,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let builder = match (&spec.ca, spec.insecure) {
        (_, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(check(Certificates::AcceptAny)),
        (Some(ca), false) => builder.with_root_certificates(ca_roots(ca)?),
        (None, false) => builder
            .dangerous()
            .with_custom_certificate_verifier(check(Certificates::SystemRoots)),
    };
    match &spec.identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => {
            let chain = certificates(&identity.cert)?;
            let key = private_key(&identity.key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Config)
        }
    }
}

/// An HTTP client for APIs (Jaeger, Prometheus, scrape URLs) that trusts what `spec` says and
/// sends `headers` (e.g. a bearer token) with every request.
pub fn api_client(
    spec: &TlsSpec,
    mut headers: reqwest::header::HeaderMap,
) -> Result<reqwest::ClientBuilder, TlsError> {
    for value in headers.values_mut() {
        value.set_sensitive(true);
    }
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(spec)?)
        .default_headers(headers))
}

/// The most the harness reads of one answer from an API (Jaeger, Prometheus, a metrics endpoint):
/// far above any trace or exposition it asks for, far below what would threaten its memory.
pub const MAX_API_BODY: usize = 16 * 1024 * 1024;

/// Why the body of an API answer was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The answer is larger than the limit; `start` is what came first, for the error message.
    #[error("the answer is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was passed.
        limit: usize,
        /// The first bytes of the body (at most 1 KiB).
        start: Vec<u8>,
    },
    /// The connection failed or timed out while the body was read.
    #[error("reading the body: {0}")]
    Read(#[source] reqwest::Error),
}

/// The body of `response`, read chunk by chunk and given up on as soon as it passes `limit`
/// bytes (or announces more), so that an oversized answer costs no more than the limit. The
/// request's own timeout still covers the read.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    const START: usize = 1024;
    let too_large = |body: &[u8]| BodyError::TooLarge {
        limit,
        start: body[..body.len().min(START)].to_vec(),
    };
    let announced = response.content_length().unwrap_or(0);
    if u64::try_from(limit).is_ok_and(|limit| announced > limit) {
        // Announced too large: only the start is read, for the message.
        let first = response.chunk().await.ok().flatten().unwrap_or_default();
        return Err(too_large(&first));
    }
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            let room = START.saturating_sub(body.len()).min(chunk.len());
            body.extend_from_slice(&chunk[..room]);
            return Err(too_large(&body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

fn ca_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(TlsError::Config)?;
    }
    Ok(roots)
}

/// The verifier of the system's roots, made when a TLS server is first met and kept for the
/// process: the store is a few hundred files, which a plain-http run never needs, and every
/// client of a run (the target, Jaeger, Prometheus, scrapes) shares one copy. `None` when the
/// system has no roots: an https server then fails its handshake with an unknown issuer.
fn system_roots() -> Option<&'static Arc<WebPkiServerVerifier>> {
    static VERIFIER: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .ok()
        })
        .as_ref()
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_bounded(path)?;
    let pem_error = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        expected: "certificates",
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE section".to_owned()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_bounded(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        expected: "a private key",
        reason: e.to_string(),
    })
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    crate::bounded::read_regular(path, MAX_PEM_BYTES).map_err(|source| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            TlsError::TooLarge {
                path: path.to_owned(),
            }
        } else {
            read_error(source)
        }
    })
}

/// Whose certificates a server may present.
#[derive(Debug)]
enum Certificates {
    /// Any: for test systems only.
    AcceptAny,
    /// One issued under the system's roots, read on first use.
    SystemRoots,
}

/// Checks a server's certificate as `certificates` says, and always that the handshake is
/// signed by the certificate's key.
#[derive(Debug)]
struct Verifier {
    certificates: Certificates,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.certificates {
            Certificates::AcceptAny => Ok(ServerCertVerified::assertion()),
            Certificates::SystemRoots => system_roots()
                .ok_or(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer,
                ))?
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    #[test]
    fn a_ca_file_without_certificates_is_named_in_the_error() {
        let scratch = crate::testing::Scratch::new("tls");
        let dir = scratch.path();
        let ca = write(dir, "ca.pem", "not a certificate\n");
        let spec = TlsSpec {
            ca: Some(ca.clone()),
            ..TlsSpec::default()
        };
        let error = client_config(&spec)
            .expect_err("no certificates")
            .to_string();
        assert!(error.starts_with(&ca.display().to_string()), "{error}");
        assert!(error.contains("expected certificates"), "{error}");
    }

    #[test]
    fn a_missing_key_file_is_named_in_the_error() {
        let scratch = crate::testing::Scratch::new("tls");
        let dir = scratch.path();
        let spec = TlsSpec {
            ca: None,
            identity: Some(Identity {
                cert: dir.join("client.pem"),
                key: dir.join("client.key"),
            }),
            insecure: true,
        };
        let error = client_config(&spec).expect_err("no files").to_string();
        assert!(error.contains("client.pem: cannot read"), "{error}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_parsing() {
        let scratch = crate::testing::Scratch::new("tls");
        let dir = scratch.path();
        let big = "x".repeat(usize::try_from(MAX_PEM_BYTES).expect("fits") + 1);
        let ca = write(dir, "big.pem", &big);
        let spec = TlsSpec {
            ca: Some(ca),
            ..TlsSpec::default()
        };
        let error = client_config(&spec).expect_err("too large").to_string();
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn the_insecure_switch_needs_no_roots() {
        let spec = TlsSpec {
            insecure: true,
            ..TlsSpec::default()
        };
        assert!(client_config(&spec).is_ok());
    }

    #[test]
    fn the_system_roots_refuse_a_self_signed_certificate() {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let verifier = Verifier {
            certificates: Certificates::SystemRoots,
            algorithms: provider().signature_verification_algorithms,
        };
        let name = ServerName::try_from("localhost").expect("a server name");
        let error = verifier
            .verify_server_cert(certified.cert.der(), &[], &name, &[], UnixTime::now())
            .expect_err("no system root issued it");
        assert_eq!(
            error,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }
}
