//! rustls client configuration (RFC 3207 STARTTLS and RFC 8314 implicit TLS).
//!
//! The crypto provider is chosen explicitly (ring), the trust anchors are the Mozilla roots
//! from webpki-roots plus any CA given with `--tls-ca`, and certificates are always
//! verified against the server's name (SNI and hostname or IP address). Failures are turned
//! into plain words and EX_UNAVAILABLE here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::error::Error;

/// The TLS client set-up for a run: rustls's configuration and whether it verifies.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub verify: bool,
}

impl Tls {
    pub fn new(ca_file: Option<&Path>, verify: bool) -> Result<Tls> {
        Ok(Tls {
            config: client_config(ca_file, verify)?,
            verify,
        })
    }
}

/// Build the client configuration once per run. `verify: false` (--tls-no-verify) accepts
/// any certificate; the handshake signatures are still checked.
pub fn client_config(ca_file: Option<&Path>, verify: bool) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let bytes = std::fs::read(path).map_err(|source| Error::NoInput {
            what: "CA file",
            path: path.to_path_buf(),
            source,
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| {
                Error::Config(format!(
                    "--tls-ca {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            roots.add(cert).map_err(|e| {
                Error::Config(format!(
                    "--tls-ca {}: unusable certificate: {e}",
                    path.display()
                ))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::Config(format!(
                "--tls-ca {}: no PEM certificate in the file",
                path.display()
            ))
            .into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?;
    let config = if verify {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedCertificates(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// --tls-no-verify: accepts every certificate chain and name, but still checks that the
/// server holds the key of the certificate it showed (handshake signatures).
#[derive(Debug)]
struct UnverifiedCertificates(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for UnverifiedCertificates {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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

/// The name the certificate must match: a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::Usage(format!("not a valid TLS server name: {host:?}")).into())
}

/// "TLSv1.3, TLS13_AES_256_GCM_SHA384" for the transcript.
pub fn describe(conn: &ClientConnection) -> String {
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("TLS")
        .replace('_', ".");
    let suite = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("unknown cipher suite");
    format!("{version}, {suite}")
}

/// The negotiated session, for the trace.
pub fn info(conn: &ClientConnection, verified: bool) -> crate::trace::TlsInfo {
    crate::trace::TlsInfo {
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("TLS")
            .replace('_', "."),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string(),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        verified,
        peer_certificate: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec()),
    }
}

/// A handshake failure in words, as an EX_UNAVAILABLE error.
pub fn handshake_error(host: &str, err: &rustls::Error) -> Error {
    match err {
        rustls::Error::InvalidCertificate(why) => Error::Unavailable(format!(
            "TLS certificate of {host} rejected: {}",
            certificate_problem(why)
        )),
        other => Error::Unavailable(format!("TLS handshake with {host} failed: {other}")),
    }
}

fn certificate_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer => "issued by an unknown CA (use --tls-ca FILE for a private CA)".into(),
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for this host name".into()
        }
        C::Revoked => "revoked".into(),
        C::BadSignature => "bad signature".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_builds_with_web_roots_only() {
        assert!(client_config(None, true).is_ok());
        assert!(client_config(None, false).is_ok());
    }

    #[test]
    fn bad_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = client_config(Some(&junk), true).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::Config);
        let err = client_config(Some(&dir.path().join("missing.pem")), true).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::NoInput);
    }

    #[test]
    fn server_names() {
        assert!(server_name("mail.example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
