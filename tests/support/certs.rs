//! Test PKI: one CA ("postie test CA") and a server leaf for `localhost`, `127.0.0.1` and
//! `::1`, generated once per test process with rcgen and written as PEM files, plus a second,
//! unrelated CA for "certificate not trusted" scenarios.
//!
//! Owns: key and certificate generation for tests, and the files under
//! `$CARGO_TARGET_TMPDIR/pki-<pid>/` (directory 0755, files 0644, so that an MTA started by
//! another harness — e.g. Postfix's smtpd running as its own user — can read them).
//! Must not: touch anything outside that directory, or be used by postie itself.
//! The leaf carries the names in subjectAltName, as RFC 6125 §6.4 / RFC 5280 §4.2.1.6
//! clients (rustls/webpki) require; the CN is informational only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Files and DER blobs of the process-wide test PKI.
pub struct TestPki {
    /// PEM of the CA certificate ("postie test CA"): give it to postie as `--tls-ca`.
    pub ca_pem: PathBuf,
    /// PEM of the server leaf (localhost, 127.0.0.1, ::1), signed by the CA.
    pub cert_pem: PathBuf,
    /// PEM (PKCS#8) of the leaf's private key.
    pub key_pem: PathBuf,
    /// DER of the server leaf.
    pub cert_der: Vec<u8>,
    /// DER (PKCS#8) of the leaf's private key.
    pub key_der: Vec<u8>,
}

/// The test PKI, made on first use and shared by every test in the process.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

/// PEM file of a second CA ("postie other test CA") that signed nothing the fake server
/// presents: trusting only it must make certificate verification fail.
pub fn other_ca_pem() -> &'static PathBuf {
    static OTHER: OnceLock<PathBuf> = OnceLock::new();
    OTHER.get_or_init(|| {
        let (params, key) = ca_params("postie other test CA");
        let cert = params.self_signed(&key).expect("self-sign other CA");
        write_file(&pki_dir().join("other-ca.pem"), cert.pem().as_bytes())
    })
}

fn pki_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
        dir
    })
    .clone()
}

fn ca_params(cn: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().expect("generate CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "postie tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    (params, key)
}

fn make_pki() -> TestPki {
    let dir = pki_dir();
    let (ca_params, ca_key) = ca_params("postie test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    // Kept for `bad_leaf`, which signs more leaves with the same CA.
    let _ = CA.set((ca_params.clone(), ca_key.serialize_der()));
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("generate leaf key");
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let mut leaf = CertificateParams::new(names).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(2000, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("sign leaf");

    TestPki {
        ca_pem: write_file(&dir.join("ca.pem"), ca_cert.pem().as_bytes()),
        cert_pem: write_file(&dir.join("cert.pem"), leaf_cert.pem().as_bytes()),
        key_pem: write_file(&dir.join("key.pem"), leaf_key.serialize_pem().as_bytes()),
        cert_der: leaf_cert.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> PathBuf {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path.to_path_buf()
}

/// The test CA's parameters and PKCS#8 key, set by `make_pki` for [`bad_leaf`].
static CA: OnceLock<(CertificateParams, Vec<u8>)> = OnceLock::new();

/// A server certificate postie must refuse even when it trusts the test CA (`--tls-ca`
/// [`TestPki::ca_pem`]): for the hostile-server tests (RFC 6125 name checks, RFC 5280
/// §4.1.2.5 validity, an unanchored chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadCert {
    /// Signed by the test CA, valid, but only for `wrong-name.example.test`.
    WrongName,
    /// Signed by the test CA, for the right names, but expired in 2001.
    Expired,
    /// For the right names and valid, but self-signed: no chain to the test CA.
    SelfSigned,
}

/// DER of a certificate and DER (PKCS#8) of its key.
pub type Leaf = (Vec<u8>, Vec<u8>);

/// The [`Leaf`] for `kind`, made once per process.
pub fn bad_leaf(kind: BadCert) -> &'static Leaf {
    type Made = Vec<(BadCert, &'static Leaf)>;
    static LEAVES: OnceLock<std::sync::Mutex<Made>> = OnceLock::new();
    let leaves = LEAVES.get_or_init(Default::default);
    let mut leaves = leaves.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, leaf)) = leaves.iter().find(|(k, _)| *k == kind) {
        return leaf;
    }
    let leaf: &'static Leaf = Box::leak(Box::new(make_bad_leaf(kind)));
    leaves.push((kind, leaf));
    leaf
}

fn make_bad_leaf(kind: BadCert) -> Leaf {
    pki();
    let (ca_params, ca_key_der) = CA.get().expect("make_pki set the CA");
    let ca_key = KeyPair::try_from(ca_key_der.as_slice()).expect("CA key");
    let issuer = Issuer::from_params(ca_params, ca_key);
    let names = match kind {
        BadCert::WrongName => vec!["wrong-name.example.test".to_string()],
        BadCert::Expired | BadCert::SelfSigned => {
            ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
        }
    };
    let key = KeyPair::generate().expect("generate leaf key");
    let mut leaf = CertificateParams::new(names).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, format!("postie bad leaf {kind:?}"));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(2000, 1, 1);
    leaf.not_after = match kind {
        BadCert::Expired => rcgen::date_time_ymd(2001, 1, 1),
        BadCert::WrongName | BadCert::SelfSigned => rcgen::date_time_ymd(2099, 12, 31),
    };
    let cert = match kind {
        BadCert::SelfSigned => leaf.self_signed(&key).expect("self-sign leaf"),
        BadCert::WrongName | BadCert::Expired => {
            leaf.use_authority_key_identifier_extension = true;
            leaf.signed_by(&key, &issuer).expect("sign leaf")
        }
    };
    (cert.der().to_vec(), key.serialize_der())
}
