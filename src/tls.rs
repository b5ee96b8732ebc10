//! The one TLS set-up of kiln (registries, the model gateway's upstream): rustls with
//! the ring provider (which kube already compiles), trusting
//!
//! - the system's roots (`rustls-native-certs`: the OS store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`);
//! - `--ca-bundle FILE` / `KILN_CA_BUNDLE` (the same bundle builds get as a secret);
//! - docker's per-host convention `/etc/docker/certs.d/<host[:port]>/`: every `*.crt`
//!   is a CA, and a `*.cert` with the `*.key` of the same stem is the client
//!   certificate for mutual TLS. `KILN_DOCKER_CERTS_D` moves that root (tests).
//!
//! [`explain`] turns a handshake failure into a sentence naming the host and the reason
//! (unknown issuer, expired, name mismatch), because rustls' own text is buried under
//! hyper's and tokio's wrappers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// Where docker keeps per-registry certificates.
pub const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

/// What to trust beyond the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `--ca-bundle FILE` (PEM, one or more certificates).
    pub ca_bundle: Option<PathBuf>,
}

impl Trust {
    /// `--ca-bundle` when given, else `KILN_CA_BUNDLE` when set.
    pub fn new(ca_bundle: Option<PathBuf>) -> Trust {
        let ca_bundle = ca_bundle.or_else(|| crate::env::CA_BUNDLE.path());
        Trust { ca_bundle }
    }
}

/// The certs.d root in use.
pub fn certs_d_root() -> PathBuf {
    crate::env::DOCKER_CERTS_D
        .path()
        .unwrap_or_else(|| PathBuf::from(DOCKER_CERTS_D))
}

/// What docker's certs.d holds for one `host[:port]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostCerts {
    /// The `*.crt` files (CAs), sorted.
    pub cas: Vec<PathBuf>,
    /// A `*.cert` and its `*.key` (mutual TLS).
    pub client: Option<(PathBuf, PathBuf)>,
}

impl HostCerts {
    /// Reads `<root>/<host>/`; a missing directory is an empty answer.
    pub fn read(root: &Path, host: &str) -> anyhow::Result<HostCerts> {
        let dir = root.join(host);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HostCerts::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        let mut out = HostCerts::default();
        for f in &files {
            match f.extension().and_then(|e| e.to_str()) {
                Some("crt") => out.cas.push(f.clone()),
                Some("cert") => {
                    let key = f.with_extension("key");
                    if !key.is_file() {
                        bail!(
                            "{}: client certificate without its key {}",
                            f.display(),
                            key.display()
                        );
                    }
                    out.client = Some((f.clone(), key));
                }
                Some("key") if !f.with_extension("cert").is_file() => bail!(
                    "{}: client key without its certificate {}",
                    f.display(),
                    f.with_extension("cert").display()
                ),
                _ => {}
            }
        }
        Ok(out)
    }

    /// True when certs.d has something for this host.
    pub fn any(&self) -> bool {
        !self.cas.is_empty() || self.client.is_some()
    }
}

/// The certificates of a PEM file, at least one.
pub fn read_pem_certs(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{}: not a PEM certificate file ({e})", file.display()))?;
    if certs.is_empty() {
        bail!("{}: holds no PEM certificate", file.display());
    }
    Ok(certs)
}

/// One PEM bundle of everything `trust` adds to nothing: the system's roots and the
/// CA bundle — for a process that runs where the system's roots are not (the gateway
/// sidecar container of `kiln run --record`).
pub fn bundle_pem(trust: &Trust) -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut certs: Vec<CertificateDer<'static>> = rustls_native_certs::load_native_certs().certs;
    if let Some(bundle) = &trust.ca_bundle {
        certs.extend(read_pem_certs(bundle).context("--ca-bundle / KILN_CA_BUNDLE")?);
    }
    let mut out = String::new();
    for c in &certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(out)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for talking to `host` (`host[:port]`, the certs.d key):
/// system roots, the CA bundle, and certs.d's CAs and client certificate for that host.
pub fn client_config(trust: &Trust, host: &str) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped, as every TLS client does.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(bundle) = &trust.ca_bundle {
        let certs = read_pem_certs(bundle).context("--ca-bundle / KILN_CA_BUNDLE")?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            bail!("--ca-bundle {}: no usable CA certificate", bundle.display());
        }
    }
    let root = certs_d_root();
    let host_certs = HostCerts::read(&root, host)?;
    for ca in &host_certs.cas {
        let (added, _) = roots.add_parsable_certificates(read_pem_certs(ca)?);
        if added == 0 {
            bail!("{}: no usable CA certificate", ca.display());
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match &host_certs.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_pem_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| anyhow!("{}: not a PEM private key ({e})", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .with_context(|| format!("client certificate {}", cert.display()))?
        }
    };
    Ok(Arc::new(config))
}

/// A configuration that accepts any server certificate: only for hosts the user lists
/// as insecure (`--insecure-registry`, the engine's `insecure-registries`), as docker does.
pub fn unverified_config() -> anyhow::Result<Arc<ClientConfig>> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in `err`'s chain (tokio-rustls hides it inside an
/// `io::Error`, whose `source()` skips it).
pub fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = rustls_error(inner) {
                return Some(r);
            }
        }
        cur = e.source();
    }
    None
}

/// A sentence for a TLS failure with `host`, or `None` when `err` is not one.
pub fn explain(host: &str, err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let e = rustls_error(err)?;
    Some(match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                CertificateError::UnknownIssuer => {
                    "it is signed by an unknown authority (give its CA with --ca-bundle, \
                     KILN_CA_BUNDLE, or certs.d/<host[:port]>/ca.crt)"
                        .to_string()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_string()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "it is not valid yet (check the clock)".to_string()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!(
                        "it is not valid for the name {host} (check its subject alternative names)"
                    )
                }
                CertificateError::Revoked => "it has been revoked".to_string(),
                other => format!("{other:?}"),
            };
            format!("the TLS certificate of {host} does not verify: {why}")
        }
        rustls::Error::InvalidMessage(_) => format!(
            "{host} does not speak TLS (a plain-HTTP server? kiln uses plain HTTP only for \
             loopback and insecure registries)"
        ),
        rustls::Error::AlertReceived(a) => {
            format!(
                "{host} refused the TLS handshake ({a:?}; a client certificate missing or wrong?)"
            )
        }
        other => format!("TLS with {host} failed: {other}"),
    })
}

/// True when `err` says the server answered a TLS hello in plain HTTP.
pub fn is_plain_http_answer(err: &(dyn std::error::Error + 'static)) -> bool {
    matches!(rustls_error(err), Some(rustls::Error::InvalidMessage(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            HostCerts::read(dir.path(), "r.example:5000").unwrap(),
            HostCerts::default()
        );
        let host = dir.path().join("r.example:5000");
        std::fs::create_dir(&host).unwrap();
        for f in ["ca.crt", "extra.crt", "client.cert", "client.key", "README"] {
            std::fs::write(host.join(f), "x").unwrap();
        }
        let got = HostCerts::read(dir.path(), "r.example:5000").unwrap();
        assert_eq!(got.cas, vec![host.join("ca.crt"), host.join("extra.crt")]);
        assert_eq!(
            got.client,
            Some((host.join("client.cert"), host.join("client.key")))
        );
        std::fs::remove_file(host.join("client.key")).unwrap();
        let err = HostCerts::read(dir.path(), "r.example:5000").unwrap_err();
        assert!(err.to_string().contains("client.key"), "{err}");
    }

    #[test]
    fn bundle_pem_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("all.pem");
        std::fs::write(&f, bundle_pem(&Trust::default()).unwrap()).unwrap();
        let n = rustls_native_certs::load_native_certs().certs.len();
        if n > 0 {
            assert_eq!(read_pem_certs(&f).unwrap().len(), n);
        }
    }

    #[test]
    fn bad_bundles_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bundle.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let err = read_pem_certs(&f).unwrap_err().to_string();
        assert!(err.contains("bundle.pem"), "{err}");
        let trust = Trust {
            ca_bundle: Some(dir.path().join("missing.pem")),
        };
        let err = format!("{:#}", client_config(&trust, "h:1").unwrap_err());
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn explains_rustls_errors_through_io_wrappers() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let wrapped = anyhow::Error::new(io).context("connecting");
        let text = explain("r.example:443", wrapped.as_ref()).unwrap();
        assert!(
            text.contains("r.example:443") && text.contains("unknown authority"),
            "{text}"
        );
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(explain("h", &expired).unwrap().contains("expired"));
        let plain = std::io::Error::other("refused");
        assert!(explain("h", &plain).is_none());
        assert!(is_plain_http_answer(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        )));
    }
}
