//! rustls client configuration (RFC 3207 STARTTLS and RFC 8314 implicit TLS), and what
//! the handshake showed, for the transcript and the trace.
//!
//! The crypto provider is chosen explicitly (ring), the trust anchors are the Mozilla roots
//! from webpki-roots plus any CA given with `--tls-ca`, and certificates are always
//! verified against the server's name (SNI and hostname or IP address; RFC 6125 via
//! webpki). The verifier is rustls's own WebPkiServerVerifier, wrapped so that it also
//! records the server's certificate and the verdict ([`Tls::last_certificate`]): a failed
//! handshake can then still show the certificate and say why it was refused, in plain
//! words. With `--tls-no-verify` the same check runs and is recorded but not enforced.
//! Failures become EX_UNAVAILABLE here. The TLS lines of the transcript are chosen here;
//! how a line looks (markers, colour, escaping) is [`crate::transcript`]'s business.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::certinfo::{self, CertInfo};
use crate::error::Error;
use crate::transcript::Transcript;

/// The TLS client set-up for a run: rustls's configuration and whether it verifies.
/// Clones share the record of the last certificate seen.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub verify: bool,
    /// Why certificates are not enforced when `verify` is false, for the transcript:
    /// "--tls-no-verify", or the policy that makes TLS unauthenticated.
    unverified_because: &'static str,
    seen: Slot,
}

/// The server certificate of a handshake and what verification said about it.
#[derive(Debug, Clone)]
pub struct SeenCertificate {
    /// DER of the end-entity certificate.
    pub der: Vec<u8>,
    /// Why verification failed (with --tls-no-verify: why it would have); `None` when it
    /// passed.
    pub error: Option<rustls::Error>,
}

type Slot = Arc<Mutex<Option<SeenCertificate>>>;

impl Tls {
    pub fn new(ca_file: Option<&Path>, verify: bool) -> Result<Tls> {
        let seen = Slot::default();
        Ok(Tls {
            config: build(ca_file, verify, Arc::clone(&seen))?,
            verify,
            unverified_because: "--tls-no-verify",
            seen,
        })
    }

    /// Unauthenticated TLS because a policy says so (opportunistic STARTTLS, RFC 7435; DANE
    /// with no usable record): the certificate is checked and shown, not enforced, and the
    /// transcript names `because` rather than --tls-no-verify.
    pub fn unauthenticated(ca_file: Option<&Path>, because: &'static str) -> Result<Tls> {
        let mut tls = Tls::new(ca_file, false)?;
        tls.unverified_because = because;
        Ok(tls)
    }

    /// TLS whose certificate check is `verifier` (DANE for an MX host), still recorded for
    /// the transcript and enforced.
    pub fn with_verifier(verifier: Arc<dyn ServerCertVerifier>) -> Result<Tls> {
        let seen = Slot::default();
        Ok(Tls {
            config: config_with(verifier, true, Arc::clone(&seen))?,
            verify: true,
            unverified_because: "--tls-no-verify",
            seen,
        })
    }

    /// The certificate the latest handshake presented, if it got that far.
    pub fn last_certificate(&self) -> Option<SeenCertificate> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// [`handshake_error`], naming the certificate's issuer, names or dates when the
    /// handshake got as far as recording one.
    pub fn handshake_error(&self, host: &str, err: &rustls::Error) -> Error {
        let cert = self
            .last_certificate()
            .and_then(|seen| CertInfo::from_der(&seen.der));
        certificate_error(host, err, cert.as_ref())
    }

    /// [`Tls::last_certificate`], forgetting it, so that the next handshake starts clean.
    pub fn take_certificate(&self) -> Option<SeenCertificate> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Build the client configuration once per run. `verify: false` (--tls-no-verify) accepts
/// any certificate chain and name; the handshake signatures are still checked.
pub fn client_config(ca_file: Option<&Path>, verify: bool) -> Result<Arc<ClientConfig>> {
    build(ca_file, verify, Slot::default())
}

fn build(ca_file: Option<&Path>, verify: bool, seen: Slot) -> Result<Arc<ClientConfig>> {
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
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?;
    config_with(webpki, verify, seen)
}

/// A client configuration whose certificate check is `inner`, recorded for the transcript.
fn config_with(
    inner: Arc<dyn ServerCertVerifier>,
    enforce: bool,
    seen: Slot,
) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recording {
            inner,
            enforce,
            seen,
        }))
        .with_no_client_auth();
    // One message per connection: every handshake is a full one, so the certificate is
    // always shown and checked.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// rustls's WebPKI verifier, recording each end-entity certificate and its verdict. With
/// `enforce: false` (--tls-no-verify) it accepts every chain and name, but the server must
/// still prove it holds the key of the certificate it showed (handshake signatures).
#[derive(Debug)]
struct Recording {
    /// WebPKI normally; DANE's verifier for an MX host with usable TLSA records.
    inner: Arc<dyn ServerCertVerifier>,
    enforce: bool,
    seen: Slot,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(SeenCertificate {
            der: end_entity.as_ref().to_vec(),
            error: verdict.as_ref().err().cloned(),
        });
        if self.enforce {
            verdict
        } else {
            Ok(ServerCertVerified::assertion())
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The name the certificate must match: a DNS name or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::Usage(format!("not a valid TLS server name: {host:?}")).into())
}

/// The negotiated session, for the trace, with the certificate rustls kept (the reports
/// below put in the one the verifier saw, which a failed handshake also has).
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

/// "TLSv1.3, TLS13_AES_256_GCM_SHA384, key exchange X25519" for the transcript.
fn summary(info: &crate::trace::TlsInfo) -> String {
    match &info.group {
        Some(group) => format!("{}, {}, key exchange {group}", info.version, info.cipher),
        None => format!("{}, {}", info.version, info.cipher),
    }
}

/// After a completed handshake: the session and certificate lines of the transcript, and
/// the session in the trace.
///
/// ```text
/// === TLS established: TLSv1.3, TLS13_AES_256_GCM_SHA384, key exchange X25519
/// === Certificate: CN=localhost
/// ===   issuer: CN=postie test CA
/// ===   names: DNS:localhost, IP:127.0.0.1, IP:::1
/// ===   valid: 2026-11-23T10:00:00Z to 2027-11-23T10:00:00Z (365 days left)
/// ===   SHA-256: AB:CD:...
/// ===   verified for localhost          (or "NOT verified: --tls-no-verify")
/// ```
pub fn report_established(
    conn: &ClientConnection,
    tls: &Tls,
    host: &str,
    transcript: &mut Transcript,
) {
    let mut info = info(conn, tls.verify);
    let seen = tls.take_certificate();
    if let Some(seen) = &seen {
        info.peer_certificate = Some(seen.der.clone());
    }
    transcript.info(&format!("TLS established: {}", summary(&info)));
    let cert = info
        .peer_certificate
        .as_deref()
        .map(|der| show(der, transcript));
    let would_fail = seen.and_then(|s| s.error);
    let verdict = match (tls.verify, would_fail) {
        (true, _) => format!("  verified for {host}"),
        (false, None) => format!(
            "  NOT verified: {} (it would have passed)",
            tls.unverified_because
        ),
        (false, Some(e)) => format!(
            "  NOT verified: {} (it would have been rejected: {})",
            tls.unverified_because,
            rejection(&e, host, cert.flatten().as_ref())
        ),
    };
    transcript.info(&verdict);
    transcript.trace().record(|t| t.tls = Some(info));
}

/// After a failed handshake (`error` is what the caller reports): the certificate and why
/// it was refused when verification failed, otherwise the error line. A certificate seen
/// goes into the trace as an unverified session, so `--json` can report it.
pub fn report_failure(
    conn: &ClientConnection,
    tls: &Tls,
    host: &str,
    error: &str,
    transcript: &mut Transcript,
) {
    let Some(seen) = tls.take_certificate() else {
        transcript.error(error);
        return;
    };
    let cert = show(&seen.der, transcript);
    match &seen.error {
        Some(e) => transcript.error(&format!(
            "certificate rejected: {}",
            rejection(e, host, cert.as_ref())
        )),
        None => transcript.error(error),
    }
    let mut info = info(conn, false);
    info.peer_certificate = Some(seen.der);
    transcript.trace().record(|t| t.tls = Some(info));
}

/// Print the certificate's facts; a certificate x509-parser cannot read is shown by size
/// and fingerprint.
fn show(der: &[u8], transcript: &mut Transcript) -> Option<CertInfo> {
    let cert = CertInfo::from_der(der);
    match &cert {
        Some(c) => transcript.certificate(c),
        None => transcript.info(&format!(
            "Certificate: unreadable ({} bytes, SHA-256 {})",
            der.len(),
            certinfo::fingerprint(der)
        )),
    }
    cert
}

/// A handshake failure in words, as an EX_UNAVAILABLE error.
pub fn handshake_error(host: &str, err: &rustls::Error) -> Error {
    certificate_error(host, err, None)
}

fn certificate_error(host: &str, err: &rustls::Error, cert: Option<&CertInfo>) -> Error {
    match err {
        rustls::Error::InvalidCertificate(_) => Error::Unavailable(format!(
            "TLS certificate of {host} rejected: {}",
            rejection(err, host, cert)
        )),
        // Plain text where a TLS record belongs: the port speaks SMTP, not implicit TLS.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            Error::Unavailable(format!(
                "TLS handshake with {host} failed: the server answered in plain text, not TLS: \
                 this port speaks plain SMTP or STARTTLS (--tls starttls)"
            ))
        }
        rustls::Error::InvalidMessage(_) => Error::Unavailable(format!(
            "TLS handshake with {host} failed: the server sent something that is not TLS"
        )),
        rustls::Error::AlertReceived(alert) => Error::Unavailable(format!(
            "TLS handshake with {host} failed: the server refused it ({})",
            alert_words(*alert)
        )),
        other => Error::Unavailable(format!("TLS handshake with {host} failed: {other}")),
    }
}

/// A name rustls reports a certificate presenting, as the name: rustls gives them in its
/// Debug form (`DnsName("a.example")`).
fn presented_name(p: &str) -> &str {
    p.strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .unwrap_or(p)
}

/// A TLS alert the server sent, in words where it is a common one.
fn alert_words(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::HandshakeFailure => "no TLS version or cipher in common".into(),
        A::ProtocolVersion => "no TLS version in common".into(),
        A::UnrecognisedName => "it does not know the name asked for (SNI)".into(),
        A::CertificateRequired => "it wants a client certificate".into(),
        A::InternalError => "an internal error on the server".into(),
        other => format!("alert {}", u8::from(other)),
    }
}

/// What webpki (the certificate verifier) refused, in words.
fn webpki_words(e: &webpki::Error) -> &'static str {
    use webpki::Error as W;
    match e {
        W::CaUsedAsEndEntity => {
            "it is a CA certificate used as the server's own certificate: the server must \
             present a certificate issued by a CA, not the CA itself"
        }
        W::EndEntityUsedAsCa => "its chain uses a server certificate as a CA",
        W::UnsupportedCertVersion => "it is not an X.509 version 3 certificate",
        W::BadDer | W::BadDerTime | W::MalformedExtensions | W::ExtensionValueInvalid => {
            "it is malformed"
        }
        W::MaximumPathDepthExceeded | W::MaximumPathBuildCallsExceeded => {
            "its chain of CAs is too long"
        }
        W::NameConstraintViolation => "its CA is not allowed to issue it (name constraints)",
        W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "it is signed with an algorithm that is not accepted"
        }
        _ => "it could not be verified as a server certificate",
    }
}

/// Why a certificate was refused, in plain words, with the certificate's own facts when
/// known: whom it names, when it expired, which CA issued it.
pub fn rejection(err: &rustls::Error, host: &str, cert: Option<&CertInfo>) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(why) = err else {
        return err.to_string();
    };
    let date = |t: &UnixTime| certinfo::rfc3339(i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    match why {
        C::UnknownIssuer => match cert {
            Some(c) if !c.issuer.is_empty() => format!(
                "issued by an unknown CA ({}); use --tls-ca FILE to trust a private CA",
                c.issuer
            ),
            _ => "issued by an unknown CA; use --tls-ca FILE to trust a private CA".into(),
        },
        C::ExpiredContext { not_after, .. } => format!("expired on {}", date(not_after)),
        C::Expired => match cert {
            Some(c) => format!("expired on {}", c.not_after),
            None => "expired".into(),
        },
        C::NotValidYetContext { not_before, .. } => {
            format!("not yet valid: valid from {}", date(not_before))
        }
        C::NotValidYet => match cert {
            Some(c) => format!("not yet valid: valid from {}", c.not_before),
            None => "not yet valid".into(),
        },
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let names = match (cert, why) {
                (Some(c), _) => c.sans.join(", "),
                (None, C::NotValidForNameContext { presented, .. }) => presented
                    .iter()
                    .map(|p| presented_name(p))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            if names.is_empty() {
                format!("not valid for {host} (it names no host)")
            } else {
                format!("not valid for {host} (valid for: {names})")
            }
        }
        C::Revoked => "revoked by its CA".into(),
        C::BadSignature => "its signature does not verify".into(),
        C::BadEncoding => "malformed (cannot be decoded)".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "not issued for TLS servers (extended key usage)".into()
        }
        // rustls passes the verifier's own error on unnamed; DANE's are already words.
        C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(e) => webpki_words(e).into(),
            None => other.0.to_string(),
        },
        other => other.to_string(),
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

    /// A CA called `ca_name` and a leaf for `names` it signed, valid `from`..`to`.
    struct Pki {
        ca_pem: String,
        leaf_der: Vec<u8>,
        key_der: Vec<u8>,
    }

    fn pki(ca_name: &str, names: &[&str], from: (i32, u8, u8), to: (i32, u8, u8)) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "leaf");
        leaf.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        leaf.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        Pki {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf.signed_by(&key, &issuer).unwrap().der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Handshake in memory between `tls` (for `host`) and a rustls server showing `pki`'s
    /// leaf; the client's error, if any.
    fn handshake(tls: &Tls, host: &str, pki: &Pki) -> Result<(), rustls::Error> {
        handshake_conn(tls, host, pki).1
    }

    fn handshake_conn(
        tls: &Tls,
        host: &str,
        pki: &Pki,
    ) -> (ClientConnection, Result<(), rustls::Error>) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
            )
            .unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut client =
            ClientConnection::new(Arc::clone(&tls.config), server_name(host).unwrap()).unwrap();
        for _ in 0..20 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            server.read_tls(&mut wire.as_slice()).unwrap();
            // The server's view of a failure is not what these tests are about.
            let _ = server.process_new_packets();
            let mut wire = Vec::new();
            server.write_tls(&mut wire).unwrap();
            client.read_tls(&mut wire.as_slice()).unwrap();
            if let Err(e) = client.process_new_packets() {
                return (client, Err(e));
            }
            if !client.is_handshaking() {
                return (client, Ok(()));
            }
        }
        panic!("handshake did not finish");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The certificate block the transcript prints for `der`.
    fn cert_block(der: &[u8]) -> String {
        let c = CertInfo::from_der(der).unwrap();
        format!(
            "=== Certificate: CN=leaf\n===   issuer: {}\n===   names: {}\n\
             ===   valid: {} to {} ({})\n===   SHA-256: {}\n",
            c.issuer,
            c.sans.join(", "),
            c.not_before,
            c.not_after,
            c.remaining(),
            c.sha256
        )
    }

    #[test]
    fn transcript_and_trace_after_a_handshake() {
        let good = pki("unit CA", &["localhost"], (2000, 1, 1), (2099, 1, 1));
        let stranger = pki("unit CA two", &["localhost"], (2000, 1, 1), (2099, 1, 1));
        let (strict, _d1) = tls_trusting(&good, true);
        let (lax, _d2) = tls_trusting(&good, false);
        let unknown = "issued by an unknown CA (CN=unit CA two); use --tls-ca FILE to trust a \
                       private CA";
        // (client, server, established?, verdict line or rejection line)
        let cases = [
            (
                &strict,
                &good,
                true,
                "===   verified for localhost\n".to_string(),
            ),
            (
                &lax,
                &good,
                true,
                "===   NOT verified: --tls-no-verify (it would have passed)\n".to_string(),
            ),
            (
                &lax,
                &stranger,
                true,
                format!(
                    "===   NOT verified: --tls-no-verify (it would have been rejected: {unknown})\n"
                ),
            ),
            (
                &strict,
                &stranger,
                false,
                format!("*** certificate rejected: {unknown}\n"),
            ),
        ];
        for (tls, server, established, last) in cases {
            let out = Captured::default();
            let mut transcript = Transcript::new(1, Box::new(out.clone()));
            let (conn, result) = handshake_conn(tls, "localhost", server);
            assert_eq!(result.is_ok(), established, "{result:?}");
            if established {
                report_established(&conn, tls, "localhost", &mut transcript);
            } else {
                report_failure(&conn, tls, "localhost", "unused", &mut transcript);
            }
            let text = out.text();
            let session = if established {
                let info = info(&conn, tls.verify);
                format!("=== TLS established: {}\n", summary(&info))
            } else {
                String::new()
            };
            assert_eq!(
                text,
                format!("{session}{}{last}", cert_block(&server.leaf_der))
            );
            let traced = transcript.trace().snapshot().tls.expect("TLS in the trace");
            assert_eq!(
                traced.peer_certificate.as_deref(),
                Some(&server.leaf_der[..])
            );
            assert_eq!(traced.verified, established && tls.verify);
            assert_eq!(traced.version, "TLSv1.3");
            assert!(tls.last_certificate().is_none(), "the report takes it");
        }
    }

    #[test]
    fn a_failure_before_any_certificate_prints_the_error_and_records_nothing() {
        let (tls, _d) = tls_trusting(
            &pki("unit CA", &["localhost"], (2000, 1, 1), (2099, 1, 1)),
            true,
        );
        let conn =
            ClientConnection::new(Arc::clone(&tls.config), server_name("localhost").unwrap())
                .unwrap();
        let out = Captured::default();
        let mut transcript = Transcript::new(1, Box::new(out.clone()));
        report_failure(
            &conn,
            &tls,
            "localhost",
            "TLS handshake with localhost failed: x",
            &mut transcript,
        );
        assert_eq!(out.text(), "*** TLS handshake with localhost failed: x\n");
        assert!(transcript.trace().snapshot().tls.is_none());
    }

    fn tls_trusting(pki: &Pki, verify: bool) -> (Tls, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        (Tls::new(Some(&ca), verify).unwrap(), dir)
    }

    /// A server showing its CA certificate as its own (a common self-signed set-up): the
    /// verifier's reason in words, never rustls's Debug text.
    #[test]
    fn a_ca_used_as_the_server_certificate_is_said_in_words() {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "self-signed CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let pki = Pki {
            ca_pem: cert.pem(),
            leaf_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        };
        let (tls, _dir) = tls_trusting(&pki, true);
        let err = handshake(&tls, "localhost", &pki).expect_err("a CA is no server certificate");
        let msg = handshake_error("localhost", &err).to_string();
        assert_eq!(
            msg,
            "TLS certificate of localhost rejected: it is a CA certificate used as the \
             server's own certificate: the server must present a certificate issued by a CA, \
             not the CA itself"
        );
        assert!(
            !msg.contains("Other") && !msg.contains("CaUsedAsEndEntity"),
            "{msg}"
        );
    }

    #[test]
    fn the_certificate_is_recorded_whether_or_not_it_passes() {
        let good = pki(
            "unit CA",
            &["localhost", "127.0.0.1"],
            (2000, 1, 1),
            (2099, 1, 1),
        );
        let expired = pki("unit CA", &["localhost"], (2000, 1, 1), (2001, 1, 1));
        let stranger = pki("other CA", &["localhost"], (2000, 1, 1), (2099, 1, 1));
        let (trusting_good, _d1) = tls_trusting(&good, true);
        let (trusting_expired, _d2) = tls_trusting(&expired, true);
        let (lax, _d3) = tls_trusting(&good, false);
        // (client, host, server's pki, handshake ok, recorded verdict in words)
        let cases: [(&Tls, &str, &Pki, bool, Option<&str>); 6] = [
            (&trusting_good, "localhost", &good, true, None),
            (&trusting_good, "127.0.0.1", &good, true, None),
            (
                &trusting_good,
                "mail.example.test",
                &good,
                false,
                Some("not valid for mail.example.test (valid for: DNS:localhost, IP:127.0.0.1)"),
            ),
            (
                &trusting_expired,
                "localhost",
                &expired,
                false,
                Some("expired on 2001-01-01T00:00:00Z"),
            ),
            (
                &trusting_good,
                "localhost",
                &stranger,
                false,
                Some("issued by an unknown CA (CN=other CA); use --tls-ca FILE to trust a private CA"),
            ),
            // --tls-no-verify: the handshake goes on, the verdict is still recorded.
            (
                &lax,
                "localhost",
                &stranger,
                true,
                Some("issued by an unknown CA (CN=other CA); use --tls-ca FILE to trust a private CA"),
            ),
        ];
        for (tls, host, server, ok, words) in cases {
            let result = handshake(tls, host, server);
            assert_eq!(result.is_ok(), ok, "{host}: {result:?}");
            let seen = tls.last_certificate().expect("certificate recorded");
            assert_eq!(seen.der, server.leaf_der);
            let info = CertInfo::from_der(&seen.der);
            let got = seen
                .error
                .as_ref()
                .map(|e| rejection(e, host, info.as_ref()));
            assert_eq!(got.as_deref(), words, "{host}");
            if let Err(e) = &result {
                assert_eq!(Some(e), seen.error.as_ref());
            }
            assert!(tls.take_certificate().is_some());
            assert!(tls.last_certificate().is_none(), "taken");
        }
    }

    #[test]
    fn rejections_without_the_certificate_use_rustls_context() {
        use rustls::CertificateError as C;
        let t = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let cases: Vec<(C, &str)> = vec![
            (
                C::UnknownIssuer,
                "issued by an unknown CA; use --tls-ca FILE to trust a private CA",
            ),
            (
                C::ExpiredContext {
                    time: t(1_800_000_000),
                    not_after: t(1_735_689_600),
                },
                "expired on 2025-01-01T00:00:00Z",
            ),
            (C::Expired, "expired"),
            (
                C::NotValidYetContext {
                    time: t(0),
                    not_before: t(1_735_689_600),
                },
                "not yet valid: valid from 2025-01-01T00:00:00Z",
            ),
            (
                C::NotValidForNameContext {
                    expected: server_name("mx.example").unwrap(),
                    presented: vec!["DnsName(\"a.example\")".into()],
                },
                "not valid for mx.example (valid for: a.example)",
            ),
            (
                C::NotValidForName,
                "not valid for mx.example (it names no host)",
            ),
            (C::Revoked, "revoked by its CA"),
        ];
        for (why, words) in cases {
            let err = rustls::Error::InvalidCertificate(why);
            assert_eq!(rejection(&err, "mx.example", None), words);
            let msg = handshake_error("mx.example", &err).to_string();
            assert_eq!(
                msg,
                format!("TLS certificate of mx.example rejected: {words}")
            );
        }
        // Plain SMTP where implicit TLS was expected: a hint, not rustls's variant name.
        let plain = handshake_error(
            "mx.example",
            &rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        );
        assert_eq!(
            plain.to_string(),
            "TLS handshake with mx.example failed: the server answered in plain text, not \
             TLS: this port speaks plain SMTP or STARTTLS (--tls starttls)"
        );
        let other = handshake_error("mx.example", &rustls::Error::HandshakeNotComplete);
        assert!(other
            .to_string()
            .starts_with("TLS handshake with mx.example failed"));
    }

    #[test]
    fn server_names() {
        assert!(server_name("mail.example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
        assert!(server_name("bad name").is_err());
    }
}
