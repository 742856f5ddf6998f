//! DKIM (RFC 6376): signing the outgoing message, and `postie dkim keygen`.
//!
//! Owns the signing options (`--dkim-key`, `--dkim-selector`, `--dkim-domain`,
//! `--dkim-expire` and the account keys `dkim_key`, `dkim_selector`, `dkim_domain`), loading
//! the private key (rsa-sha256 or ed25519-sha256, RFC 8463, told apart by the PEM key
//! itself), and the small `postie dkim` command line. Canonicalisation, hashing and the
//! signature are the mail-auth crate's (RustCrypto back end); this module writes none of
//! them. Signing needs the whole message (the body hash goes into a header placed above the
//! body), so a message is held in memory for it, bounded by [`SIGN_LIMIT`]. The module does
//! no network I/O and sends nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done, Signature};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Exit};

/// The largest message postie signs: signing holds the whole message in memory.
pub const SIGN_LIMIT: u64 = 64 << 20;

/// Headers signed when the message has them (RFC 6376 §5.4.1's recommendations).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
];

/// What the configuration asks for; the key is read when the message is signed. A queue
/// entry records the options its message was signed with (`queue::spool::Meta`), so that
/// `queue run` can sign it again after converting it to 7-bit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// PEM private key: PKCS#8 (RSA or Ed25519) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub key: PathBuf,
    /// `s=`: the key is published at SELECTOR._domainkey.DOMAIN.
    pub selector: String,
    /// `d=`; `None`: the domain of the message's From: address.
    pub domain: Option<String>,
    /// `x=` this many seconds after `t=`.
    pub expire: Option<u64>,
}

impl Options {
    /// Combine the command line's and the account's settings; `None` when neither asks
    /// for signing.
    pub fn resolve(
        key: Option<PathBuf>,
        selector: Option<String>,
        domain: Option<String>,
        expire: Option<u64>,
    ) -> Result<Option<Options>> {
        match (key, selector) {
            (None, None) => {
                if domain.is_some() || expire.is_some() {
                    return Err(Error::Config(
                        "--dkim-domain and --dkim-expire need --dkim-key and --dkim-selector"
                            .into(),
                    )
                    .into());
                }
                Ok(None)
            }
            (Some(_), None) => Err(Error::Config(
                "a DKIM key needs a selector: --dkim-selector SEL (or dkim_selector)".into(),
            )
            .into()),
            (None, Some(_)) => Err(Error::Config(
                "a DKIM selector needs a key: --dkim-key FILE (or dkim_key)".into(),
            )
            .into()),
            (Some(key), Some(selector)) => {
                if !valid_selector(&selector) {
                    return Err(Error::Config(format!(
                        "DKIM selector {selector:?} is not a sequence of DNS labels"
                    ))
                    .into());
                }
                Ok(Some(Options {
                    key,
                    selector,
                    domain,
                    expire: expire.filter(|s| *s > 0),
                }))
            }
        }
    }
}

/// A selector is one or more DNS labels (RFC 6376 §3.1).
fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    Rsa,
    Ed25519,
}

/// A loaded key, ready to sign messages for one domain and selector.
pub struct Signer {
    /// The PEM, parsed again for each message (mail-auth's signer owns its key).
    pem: Vec<u8>,
    kind: KeyType,
    selector: String,
    domain: Option<String>,
    expire: Option<u64>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kind", &self.kind)
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Read the key file: refused (EX_CONFIG) when others may read it, like a password file.
    pub fn load(opts: &Options) -> Result<Signer> {
        check_private(&opts.key)?;
        let pem = std::fs::read(&opts.key).map_err(|source| Error::NoInput {
            what: "DKIM key file",
            path: opts.key.clone(),
            source,
        })?;
        let (_, kind) = parse_key(&pem)
            .map_err(|why| Error::Config(format!("DKIM key {}: {why}", opts.key.display())))?;
        Ok(Signer {
            pem,
            kind,
            selector: opts.selector.clone(),
            domain: opts.domain.clone(),
            expire: opts.expire,
        })
    }

    /// Which algorithm the key signs with.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The DKIM-Signature header (folded, ending in CRLF) for `message`. `from_domain` is
    /// `d=` when no domain was configured.
    pub fn signature(&self, message: &[u8], from_domain: Option<&str>) -> Result<String> {
        self.make(from_domain, |signer| signer.sign(message))
    }

    /// The same for the message `reader` gives: its header block is held, its body hashed
    /// as it is read (mail-auth's streaming signer), so a message of any size is signed in
    /// bounded memory. Reading it is the caller's first pass; sending it, the second.
    pub fn signature_streaming(
        &self,
        reader: &mut dyn Read,
        from_domain: Option<&str>,
    ) -> Result<String> {
        let mut failed = None;
        let header = self.make(from_domain, |signer| {
            let mut stream = signer.sign_streaming();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => stream.write(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            stream.finish()
        });
        match failed {
            Some(e) => Err(Error::Io(format!("reading the message to sign it: {e}")).into()),
            None => header,
        }
    }

    /// The signature `sign` makes with a signer set up from the options.
    fn make(
        &self,
        from_domain: Option<&str>,
        sign: impl FnOnce(&DkimSigner<DkimKey, Done>) -> mail_auth::Result<Signature>,
    ) -> Result<String> {
        let domain = match (&self.domain, from_domain) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) if !d.is_empty() => d.to_string(),
            _ => {
                return Err(Error::Config(
                    "DKIM: the message has no From: domain to sign for; give --dkim-domain".into(),
                )
                .into())
            }
        };
        let (key, _) = parse_key(&self.pem).map_err(|why| anyhow::anyhow!("DKIM key: {why}"))?;
        let mut signer = DkimSigner::from_key(key)
            .domain(domain.to_ascii_lowercase())
            .selector(self.selector.clone())
            .headers(SIGNED_HEADERS.iter().copied())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        if let Some(secs) = self.expire {
            signer = signer.expiration(secs);
        }
        let sig = sign(&signer).map_err(|e| match e {
            mail_auth::Error::NoHeadersFound => {
                Error::Data("DKIM: the message has none of the headers to sign (From:)".into())
                    .into()
            }
            other => anyhow::anyhow!("DKIM signing failed: {other}"),
        })?;
        Ok(sig.to_header())
    }

    /// `message` with its DKIM-Signature header prepended.
    pub fn sign(&self, message: &[u8], from_domain: Option<&str>) -> Result<Vec<u8>> {
        let header = self.signature(message, from_domain)?;
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(out)
    }
}

/// Read all of `reader` for signing, refusing (EX_DATAERR) more than [`SIGN_LIMIT`] bytes.
pub fn read_bounded(reader: &mut dyn Read, already: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let room = SIGN_LIMIT.saturating_sub(already as u64);
    reader
        .take(room.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::Io(format!("reading the message to sign it: {e}")))?;
    if buf.len() as u64 > room {
        return Err(too_large());
    }
    Ok(buf)
}

/// The refusal for a message over [`SIGN_LIMIT`].
pub fn too_large() -> anyhow::Error {
    Error::Data(format!(
        "the message is larger than {} MiB: too large to DKIM-sign (signing holds the whole \
         message in memory)",
        SIGN_LIMIT >> 20
    ))
    .into()
}

/// The domain part of an address, if it has one.
pub fn domain_of(addr: &str) -> Option<&str> {
    addr.rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// Tell the key type from the PEM and load it.
fn parse_key(pem: &[u8]) -> std::result::Result<(DkimKey, KeyType), String> {
    let der =
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key ({e})"))?;
    match der {
        PrivateKeyDer::Pkcs8(p8) => {
            if let Ok(k) = Ed25519Key::from_pkcs8_der(p8.secret_pkcs8_der()) {
                return Ok((DkimKey::Ed25519(k), KeyType::Ed25519));
            }
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(p8))
                .map(|k| (DkimKey::Rsa(k), KeyType::Rsa))
                .map_err(|e| format!("neither an RSA nor an Ed25519 PKCS#8 key ({e})"))
        }
        der @ PrivateKeyDer::Pkcs1(_) => RsaKey::<Sha256>::from_key_der(der)
            .map(|k| (DkimKey::Rsa(k), KeyType::Rsa))
            .map_err(|e| format!("not an RSA key ({e})")),
        _ => Err("an EC (SEC1) key: DKIM signs with RSA or Ed25519".into()),
    }
}

/// Refuse a key file that others may read (the same rule as password files).
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| Error::NoInput {
            what: "DKIM key file",
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "DKIM key {} must not be readable by others (mode {:04o}): chmod 600 {}",
                path.display(),
                mode & 0o7777,
                path.display()
            ))
            .into());
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A new key pair: the PKCS#8 PEM private key and the `p=` value (base64 of the
/// SubjectPublicKeyInfo for RSA, of the raw 32-byte key for Ed25519, RFC 8463 §4.2).
pub fn generate(kind: KeyType, bits: usize) -> Result<(String, String)> {
    match kind {
        KeyType::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            if !(1024..=8192).contains(&bits) {
                return Err(Error::Usage(format!(
                    "--bits {bits}: RSA keys for DKIM are 1024 to 8192 bits (2048 recommended)"
                ))
                .into());
            }
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|e| anyhow::anyhow!("generating an RSA key: {e}"))?;
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("encoding the RSA key: {e}"))?;
            let public = rsa::RsaPublicKey::from(&key)
                .to_public_key_der()
                .map_err(|e| anyhow::anyhow!("encoding the RSA public key: {e}"))?;
            let p = base64::engine::general_purpose::STANDARD.encode(public.as_bytes());
            Ok((pem.to_string(), p))
        }
        KeyType::Ed25519 => {
            let der = Ed25519Key::generate_pkcs8()
                .map_err(|e| anyhow::anyhow!("generating an Ed25519 key: {e}"))?;
            let key = Ed25519Key::from_pkcs8_der(&der)
                .map_err(|e| anyhow::anyhow!("reading the new Ed25519 key: {e}"))?;
            let p = base64::engine::general_purpose::STANDARD.encode(key.public_key());
            Ok((pem_encode("PRIVATE KEY", &der), p))
        }
    }
}

/// RFC 7468 text encoding: base64 in 64-column lines between the labels.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The TXT record to publish, in zone-file form.
pub fn txt_record(selector: &str, domain: &str, kind: KeyType, p: &str) -> String {
    let k = match kind {
        KeyType::Rsa => "rsa",
        KeyType::Ed25519 => "ed25519",
    };
    let value = format!("v=DKIM1; k={k}; p={p}");
    // A TXT character-string holds at most 255 octets (RFC 1035 §3.3.14).
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{}. IN TXT {}",
        domain.trim_end_matches('.'),
        strings.join(" ")
    )
}

/// `postie dkim ...`.
#[derive(Debug, Parser)]
#[command(name = "dkim", about = "DKIM key management")]
pub struct DkimArgs {
    #[command(subcommand)]
    pub command: DkimCommand,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Write a new private key (PKCS#8 PEM, mode 0600) and print the DNS TXT record.
    Keygen {
        /// The selector: the key is published at SEL._domainkey.DOMAIN.
        #[arg(long, value_name = "SEL")]
        selector: String,
        /// The signing domain (d=).
        #[arg(long, value_name = "DOMAIN")]
        domain: String,
        /// Key algorithm.
        #[arg(long = "type", value_enum, default_value = "rsa")]
        kind: KeyType,
        /// RSA key size.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Where to write the private key [default: SEL.DOMAIN.key in the current directory].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Run `postie dkim` (parsed by [`crate::cli::parse`]).
pub fn run(args: DkimArgs) -> Result<Exit> {
    match args.command {
        DkimCommand::Keygen {
            selector,
            domain,
            kind,
            bits,
            out,
        } => {
            if !valid_selector(&selector) {
                return Err(Error::Usage(format!(
                    "--selector {selector:?} is not a sequence of DNS labels"
                ))
                .into());
            }
            let (pem, p) = generate(kind, bits)?;
            let path = out.unwrap_or_else(|| PathBuf::from(format!("{selector}.{domain}.key")));
            write_private(&path, pem.as_bytes())?;
            eprintln!("postie: private key written to {}", path.display());
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", txt_record(&selector, &domain, kind, &p))
                .map_err(|e| Error::Io(format!("writing to stdout: {e}")))?;
            Ok(Exit::Ok)
        }
    }
}

/// Create `path` (never overwrite) with mode 0600 and write `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(path)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Io(format!("writing {}: {e}", path.display())).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(pem: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, pem).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (dir, path)
    }

    fn opts(key: PathBuf) -> Options {
        Options {
            key,
            selector: "sel".into(),
            domain: None,
            expire: None,
        }
    }

    const MSG: &[u8] =
        b"From: A <a@example.org>\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn resolve_table() {
        let k = || Some(PathBuf::from("/k"));
        let s = || Some("sel".to_string());
        type Case = (Option<PathBuf>, Option<String>, Option<String>, bool, bool);
        let cases: Vec<Case> = vec![
            (None, None, None, true, false),
            (k(), s(), None, true, true),
            (k(), None, None, false, false),
            (None, s(), None, false, false),
            (None, None, Some("d".into()), false, false),
            (k(), Some("bad sel".into()), None, false, false),
            (k(), Some("a.b-c".into()), None, true, true),
        ];
        for (key, sel, dom, ok, some) in cases {
            let r = Options::resolve(key.clone(), sel.clone(), dom.clone(), None);
            assert_eq!(r.is_ok(), ok, "{key:?} {sel:?} {dom:?}");
            if let Ok(o) = r {
                assert_eq!(o.is_some(), some);
            }
        }
    }

    #[test]
    fn a_streamed_message_gets_the_signature_of_the_whole_one() {
        let (pem, _) = generate(KeyType::Ed25519, 0).unwrap();
        let (_d, path) = key_file(&pem, 0o600);
        let signer = Signer::load(&opts(path)).unwrap();
        let mut message = MSG.to_vec();
        message.extend(b"more body  \r\n\r\n\r\n".repeat(10_000));
        let whole = signer.signature(&message, Some("example.org")).unwrap();
        // Read in small pieces, so the header block and the body come split.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let streamed = signer
            .signature_streaming(&mut Trickle(&message), Some("example.org"))
            .unwrap();
        let flat = |h: &str| h.split_whitespace().collect::<String>();
        let (whole, streamed) = (flat(&whole), flat(&streamed));
        for t in ["bh=", "h=", "d=", "s=", "a=", "c="] {
            assert_eq!(tag(&whole, t), tag(&streamed, t), "{t}");
        }
        // Ed25519 signs deterministically: same headers, same body hash, same t= (mostly).
        if tag(&whole, "t=") == tag(&streamed, "t=") {
            assert_eq!(tag(&whole, "b="), tag(&streamed, "b="));
        }
    }

    #[test]
    fn keygen_sign_both_types() {
        for (kind, algo) in [
            (KeyType::Ed25519, "ed25519-sha256"),
            (KeyType::Rsa, "rsa-sha256"),
        ] {
            let (pem, p) = generate(kind, 1024).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
            assert!(!p.is_empty());
            let (_d, path) = key_file(&pem, 0o600);
            let signer = Signer::load(&opts(path)).unwrap();
            assert_eq!(signer.kind(), kind);
            let header = signer.signature(MSG, Some("example.org")).unwrap();
            assert!(header.starts_with("DKIM-Signature: "), "{header}");
            assert!(header.ends_with("\r\n"));
            let flat: String = header.split_whitespace().collect();
            assert!(flat.contains(&format!("a={algo};")), "{flat}");
            assert!(flat.contains("c=relaxed/relaxed;"), "{flat}");
            assert!(flat.contains("d=example.org;"), "{flat}");
            assert!(flat.contains("s=sel;"), "{flat}");
            // Listed headers the message lacks are signed too (as absent: RFC 6376 §5.4).
            let h: Vec<&str> = tag(&flat, "h=").split(':').collect();
            for name in SIGNED_HEADERS {
                assert!(h.contains(name), "{name} in {flat}");
            }
            assert!(!flat.contains("x="), "{flat}");
            let signed = signer.sign(MSG, Some("example.org")).unwrap();
            assert!(signed.ends_with(MSG));
        }
    }

    #[test]
    fn expire_and_domain_override() {
        let (pem, _) = generate(KeyType::Ed25519, 0).unwrap();
        let (_d, path) = key_file(&pem, 0o600);
        let mut o = opts(path);
        o.domain = Some("Signer.Example".into());
        o.expire = Some(3600);
        let header = Signer::load(&o).unwrap().signature(MSG, None).unwrap();
        let flat: String = header.split_whitespace().collect();
        assert!(flat.contains("d=signer.example;"), "{flat}");
        let t: u64 = tag(&flat, "t=").parse().unwrap();
        let x: u64 = tag(&flat, "x=").parse().unwrap();
        assert_eq!(x - t, 3600);
    }

    fn tag<'a>(flat: &'a str, name: &str) -> &'a str {
        let start = flat.find(&format!(";{name}")).unwrap() + name.len() + 1;
        // DKIM-Signature:v=1;... the tag follows a ';'.
        flat[start..].split(';').next().unwrap()
    }

    #[test]
    fn refusals() {
        let (pem, _) = generate(KeyType::Ed25519, 0).unwrap();
        // Readable by the group: EX_CONFIG.
        let (_d, path) = key_file(&pem, 0o640);
        let err = Signer::load(&opts(path)).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), Exit::Config, "{err:#}");
        // Not a key.
        let (_d2, path) = key_file("hello\n", 0o600);
        let err = Signer::load(&opts(path)).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), Exit::Config, "{err:#}");
        // No domain to sign for.
        let (_d3, path) = key_file(&pem, 0o600);
        let s = Signer::load(&opts(path)).unwrap();
        let err = s.signature(MSG, None).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), Exit::Config);
        // Missing file: EX_NOINPUT.
        let err = Signer::load(&opts("/nonexistent/k.pem".into())).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), Exit::NoInput);
        // Bad RSA size.
        assert!(generate(KeyType::Rsa, 512).is_err());
    }

    #[test]
    fn bounded_read() {
        let mut small: &[u8] = b"abc";
        assert_eq!(read_bounded(&mut small, 10).unwrap(), b"abc");
        let mut big = std::io::repeat(b'x').take(SIGN_LIMIT + 1);
        let err = read_bounded(&mut big, 0).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), Exit::DataErr);
        let mut edge = std::io::repeat(b'x').take(4);
        assert!(read_bounded(&mut edge, (SIGN_LIMIT - 4) as usize).is_ok());
        let mut over = std::io::repeat(b'x').take(5);
        assert!(read_bounded(&mut over, (SIGN_LIMIT - 4) as usize).is_err());
    }

    #[test]
    fn txt_records() {
        let cases = [
            (
                KeyType::Rsa,
                "AAAA",
                "s1._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p=AAAA\"",
            ),
            (
                KeyType::Ed25519,
                "BB",
                "s1._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p=BB\"",
            ),
        ];
        for (kind, p, want) in cases {
            assert_eq!(txt_record("s1", "example.org.", kind, p), want);
        }
        let long = "A".repeat(400);
        let rec = txt_record("s", "d", KeyType::Rsa, &long);
        assert_eq!(rec.matches('"').count(), 4, "{rec}");
    }

    #[test]
    fn domains() {
        for (addr, want) in [("a@b.c", Some("b.c")), ("a", None), ("a@", None)] {
            assert_eq!(domain_of(addr), want);
        }
    }
}
