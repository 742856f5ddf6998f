//! DANE for SMTP (RFC 7672): the TLSA records of an MX host, trusted only when a validating
//! resolver vouches for them, and the certificate check they call for.
//!
//! Owns: the TLSA query (`_25._tcp.MXHOST`, RFC 7672 §2.2.3) sent with the EDNS DO bit
//! (RFC 3225) to one resolver the user trusts, the reading of the AD bit in its answer
//! (RFC 4035 §3.2.3, RFC 6840 §5.7), the choice of usable records (RFC 7672 §3.1: only
//! DANE-TA(2) and DANE-EE(3); PKIX-TA(0) and PKIX-EE(1) are ignored), and the matching of a
//! presented chain against them (RFC 6698 §2.1, RFC 7671 §5). The query is built and read
//! with hickory-proto and sent over std UDP sockets, with TCP when the answer is truncated
//! (RFC 7766): hickory-resolver's lookups do not show the DNS header, and the AD bit lives
//! there. Every exchange is bounded by one deadline.
//!
//! Must not: decide routing or TLS policy (the caller does: Records → TLS required and this
//! verifier; NoRecords → the usual opportunistic/MTA-STS behaviour; NotAvailable → say so),
//! validate DNSSEC itself (it trusts the resolver's AD bit, so the path to that resolver must
//! be trusted: RFC 7672 §2.1.1 / RFC 4035 §4.9.3), or pretend: without an AD bit the answer
//! is [`Lookup::NotAvailable`], never records.
//!
//! Certificate checks: DANE-EE(3) matches the end-entity certificate (selector 0) or its
//! SubjectPublicKeyInfo (selector 1), with no name, issuer or expiry checks (RFC 7672
//! §3.1.1). DANE-TA(2) matches a certificate the server sent after its end-entity
//! certificate; the end-entity certificate must then chain up to it (through the
//! certificates in between) and carry the MX host name, checked by webpki (RFC 7672 §3.1.2,
//! §3.2.2). Handshake signatures are always checked with the ring provider.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::Error;

/// The port whose TLSA records direct delivery asks for (RFC 7672 §2.2.3).
pub const SMTP_PORT: u16 = 25;
/// EDNS UDP payload size we announce (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;
/// UDP sends per lookup; the deadline is shared between them.
const UDP_TRIES: u32 = 3;

/// The certificate usages RFC 7672 §3.1 lets SMTP use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// DANE-TA(2): a trust anchor the server's chain must lead to.
    DaneTa = 2,
    /// DANE-EE(3): the server's own certificate or key.
    DaneEe = 3,
}

/// One TLSA record (RFC 6698 §2.1), as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 exact bytes, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data.
    pub data: Vec<u8>,
}

impl Tlsa {
    /// The usage, when it is one SMTP may use.
    pub fn dane_usage(&self) -> Option<Usage> {
        match self.usage {
            2 => Some(Usage::DaneTa),
            3 => Some(Usage::DaneEe),
            _ => None,
        }
    }

    /// Whether postie can use this record (RFC 7672 §3.1, RFC 6698 §2.1): a DANE usage, a
    /// known selector, and a known matching type whose data has the digest's length.
    pub fn usable(&self) -> bool {
        let data_ok = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == digest::SHA256_OUTPUT_LEN,
            2 => self.data.len() == digest::SHA512_OUTPUT_LEN,
            _ => false,
        };
        self.dane_usage().is_some() && self.selector <= 1 && data_ok
    }

    /// Whether `cert` (DER) matches this record's selector and matching type. A certificate
    /// whose SPKI cannot be found matches no selector-1 record.
    pub fn matches(&self, cert: &[u8]) -> bool {
        let selected = match self.selector {
            0 => cert,
            1 => match X509Certificate::from_der(cert) {
                Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw,
                Err(_) => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => digest::digest(&digest::SHA256, selected).as_ref() == self.data.as_slice(),
            2 => digest::digest(&digest::SHA512, selected).as_ref() == self.data.as_slice(),
            _ => false,
        }
    }
}

/// Presentation form, as in a zone file: `3 1 1 0123abcd…`.
impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.usage, self.selector, self.matching)?;
        for b in &self.data {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What a TLSA lookup established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No DNSSEC-validated answer: the AD bit was clear (the resolver does not validate, or
    /// the zone is unsigned), or the resolver cannot do EDNS. DANE does not apply; the
    /// string says why, for "dane: not available (...)".
    NotAvailable(String),
    /// Validated: the name has no TLSA records (NODATA or NXDOMAIN). DANE does not apply.
    NoRecords,
    /// Validated: TLSA records exist but none is usable (RFC 7672 §3.1, e.g. only PKIX
    /// usages). RFC 7672 §2.2 still requires TLS, without authentication. The count of
    /// records seen.
    Unusable(usize),
    /// Validated usable records (never empty): TLS is required and the certificate must
    /// pass [`verify`].
    Records(Vec<Tlsa>),
}

/// Ask `resolver` (a validating resolver the user trusts, e.g. a local unbound) for TLSA
/// `_PORT._tcp.HOST` with the DO bit set, and trust the answer only when the AD bit is set.
///
/// Errors are [`Error::DnsTemporary`] (EX_TEMPFAIL): no answer within `timeout`, the
/// resolver unreachable, SERVFAIL (which a validating resolver returns for a bogus answer:
/// RFC 7672 §2.2 says not to deliver to this MX then) or REFUSED. A host name that cannot be
/// a DNS name is [`Error::Data`].
pub fn lookup(resolver: SocketAddr, host: &str, port: u16, timeout: Duration) -> Result<Lookup> {
    let deadline = Instant::now() + timeout;
    let qname = tlsa_name(host, port)?;
    let shown = qname.to_ascii();
    let (query, id) = build_query(&qname)?;
    let temporary = |why: String| Error::DnsTemporary(format!("TLSA {shown}: {why}"));

    let mut reply =
        udp_exchange(resolver, &query, id, &qname, deadline, timeout).map_err(&temporary)?;
    if reply.metadata.truncation {
        reply = tcp_exchange(resolver, &query, id, &qname, deadline, timeout)
            .map_err(|why| temporary(format!("{why} (over TCP, after a truncated UDP answer)")))?;
    }
    classify(&reply, resolver).map_err(|why| temporary(why).into())
}

/// `_PORT._tcp.HOST.` as a DNS name.
fn tlsa_name(host: &str, port: u16) -> Result<Name> {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return Err(Error::Data("TLSA lookup: empty host name".into()).into());
    }
    Name::from_ascii(format!("_{port}._tcp.{host}."))
        .map_err(|e| Error::Data(format!("TLSA lookup: {host:?} is not a DNS name: {e}")).into())
}

/// The query message (RD, AD, EDNS with DO) and its id.
fn build_query(qname: &Name) -> Result<(Vec<u8>, u16)> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    // RFC 6840 §5.7: asking with AD set tells the resolver we understand the AD bit.
    msg.metadata.authentic_data = true;
    msg.add_query(Query::query(qname.clone(), RecordType::TLSA));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    let bytes = msg
        .to_vec()
        .map_err(|e| anyhow::anyhow!("encoding the TLSA query: {e}"))?;
    Ok((bytes, msg.metadata.id))
}

/// Whether `bytes` is the answer to our query: a response with our id and our question.
/// Anything else (late answers to an earlier try, garbage) is skipped.
fn our_answer(bytes: &[u8], id: u16, qname: &Name) -> Option<Message> {
    let msg = Message::from_vec(bytes).ok()?;
    let ours = msg.metadata.id == id
        && msg.metadata.message_type == MessageType::Response
        && msg
            .queries
            .first()
            .is_some_and(|q| q.name() == qname && q.query_type() == RecordType::TLSA);
    ours.then_some(msg)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn no_answer(resolver: SocketAddr, timeout: Duration) -> String {
    format!(
        "no answer from {resolver} within {} ms",
        timeout.as_millis()
    )
}

fn udp_exchange(
    resolver: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &Name,
    deadline: Instant,
    timeout: Duration,
) -> Result<Message, String> {
    let local: SocketAddr = if resolver.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("UDP socket: {e}"))?;
    socket
        .connect(resolver)
        .map_err(|e| format!("resolver {resolver}: {e}"))?;
    let mut buf = vec![0u8; 65535];
    for try_no in 0..UDP_TRIES {
        let Some(left) = remaining(deadline) else {
            break;
        };
        // The time left, shared between the tries still to come.
        let try_deadline = Instant::now() + left / (UDP_TRIES - try_no);
        socket
            .send(query)
            .map_err(|e| format!("sending to {resolver}: {e}"))?;
        while let Some(wait) = remaining(try_deadline) {
            socket
                .set_read_timeout(Some(wait))
                .map_err(|e| format!("UDP socket: {e}"))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if let Some(msg) = buf.get(..n).and_then(|got| our_answer(got, id, qname)) {
                        return Ok(msg);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("resolver {resolver}: {e}")),
            }
        }
    }
    Err(no_answer(resolver, timeout))
}

/// One query over TCP (RFC 1035 §4.2.2: two-byte length prefix), within the deadline.
fn tcp_exchange(
    resolver: SocketAddr,
    query: &[u8],
    id: u16,
    qname: &Name,
    deadline: Instant,
    timeout: Duration,
) -> Result<Message, String> {
    let io_err = |e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            no_answer(resolver, timeout)
        } else {
            format!("resolver {resolver}: {e}")
        }
    };
    let left = remaining(deadline).ok_or_else(|| no_answer(resolver, timeout))?;
    let mut stream = TcpStream::connect_timeout(&resolver, left).map_err(io_err)?;
    let len = u16::try_from(query.len()).map_err(|_| "query too long for TCP".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    let left = remaining(deadline).ok_or_else(|| no_answer(resolver, timeout))?;
    stream.set_write_timeout(Some(left)).map_err(io_err)?;
    stream.write_all(&framed).map_err(io_err)?;
    let mut prefix = [0u8; 2];
    read_full(&mut stream, &mut prefix, deadline).map_err(io_err)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    read_full(&mut stream, &mut answer, deadline).map_err(io_err)?;
    our_answer(&answer, id, qname)
        .ok_or_else(|| format!("resolver {resolver} sent an unreadable answer over TCP"))
}

/// read_exact, with the socket's read timeout lowered to what is left before each read.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let left = remaining(deadline).ok_or(ErrorKind::TimedOut)?;
        stream.set_read_timeout(Some(left))?;
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match stream.read(rest) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What an answer means. Err is a reason to give up on this lookup for now.
fn classify(reply: &Message, resolver: SocketAddr) -> Result<Lookup, String> {
    let code = reply.metadata.response_code;
    match code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        // A resolver that does not understand EDNS: it cannot tell us about DNSSEC.
        ResponseCode::FormErr | ResponseCode::NotImp => {
            return Ok(Lookup::NotAvailable(format!(
                "resolver {resolver} answered {code} to an EDNS (DNSSEC OK) query"
            )))
        }
        ResponseCode::ServFail => {
            return Err(format!(
                "SERVFAIL from {resolver} (a validating resolver's answer for bogus \
                 DNSSEC data, or trouble upstream)"
            ))
        }
        _ => return Err(format!("{code} from {resolver}")),
    }
    if !reply.metadata.authentic_data {
        return Ok(Lookup::NotAvailable(format!(
            "the answer from {resolver} is not DNSSEC-validated (AD bit clear)"
        )));
    }
    let all: Vec<Tlsa> = reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::TLSA(t) => Some(Tlsa {
                usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching: t.matching.into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .collect();
    if all.is_empty() {
        return Ok(Lookup::NoRecords);
    }
    let seen = all.len();
    let usable: Vec<Tlsa> = all.into_iter().filter(Tlsa::usable).collect();
    Ok(if usable.is_empty() {
        Lookup::Unusable(seen)
    } else {
        Lookup::Records(usable)
    })
}

/// Check a presented chain (end-entity first, as rustls gives it) against TLSA records;
/// records that are not [usable](Tlsa::usable) are ignored. DANE-EE(3): the end-entity
/// certificate or its SPKI matches, nothing else is checked. DANE-TA(2): a later certificate
/// in the chain matches, and webpki verifies the end-entity certificate up to it, with the
/// name `mx_host` and the validity dates of the certificates below the anchor.
pub fn verify(records: &[Tlsa], chain: &[CertificateDer<'_>], mx_host: &str) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    verify_at(records, chain, mx_host, UnixTime::now(), &provider)
}

fn verify_at(
    records: &[Tlsa],
    chain: &[CertificateDer<'_>],
    mx_host: &str,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> Result<(), String> {
    let Some(ee) = chain.first() else {
        return Err("DANE: the server presented no certificate".into());
    };
    let usable: Vec<&Tlsa> = records.iter().filter(|r| r.usable()).collect();
    if usable.is_empty() {
        return Err(format!("DANE: no usable TLSA records for {mx_host}"));
    }
    let of_usage = |u: Usage| usable.iter().filter(move |r| r.dane_usage() == Some(u));
    if of_usage(Usage::DaneEe).any(|r| r.matches(ee)) {
        return Ok(());
    }
    let mut problems = Vec::new();
    for (at, cert) in chain.iter().enumerate().skip(1) {
        if of_usage(Usage::DaneTa).any(|r| r.matches(cert)) {
            match chain_to_anchor(chain, at, mx_host, now, provider) {
                Ok(()) => return Ok(()),
                Err(e) => problems.push(format!("trust anchor at chain position {at}: {e}")),
            }
        }
    }
    if problems.is_empty() {
        Err(format!(
            "DANE: the certificate chain of {mx_host} matches none of its {} usable TLSA \
             record(s)",
            usable.len()
        ))
    } else {
        Err(format!("DANE-TA: {}", problems.join("; ")))
    }
}

/// webpki path validation of chain[0] through chain[1..at] to chain[at] as the only trust
/// anchor, for the name `mx_host`.
fn chain_to_anchor(
    chain: &[CertificateDer<'_>],
    at: usize,
    mx_host: &str,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> Result<(), String> {
    let (Some(ee), Some(anchor), Some(between)) = (chain.first(), chain.get(at), chain.get(1..at))
    else {
        return Err("no such certificate in the chain".into());
    };
    let mut roots = RootCertStore::empty();
    roots
        .add(anchor.clone().into_owned())
        .map_err(|e| format!("unusable as a trust anchor: {e}"))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| format!("verifier set-up: {e}"))?;
    let name = ServerName::try_from(mx_host.trim_end_matches('.').to_string())
        .map_err(|_| format!("{mx_host:?} is not a valid TLS server name"))?;
    webpki
        .verify_server_cert(ee, between, &name, &[], now)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A rustls ServerCertVerifier that applies [`verify`] (signatures still checked with the
/// ring provider), for the MX connection when [`Lookup::Records`].
pub fn verifier(records: Vec<Tlsa>, mx_host: &str) -> Arc<dyn ServerCertVerifier> {
    Arc::new(DaneVerifier {
        records,
        mx_host: mx_host.to_string(),
        provider: Arc::new(rustls::crypto::ring::default_provider()),
    })
}

#[derive(Debug)]
struct DaneVerifier {
    records: Vec<Tlsa>,
    mx_host: String,
    provider: Arc<CryptoProvider>,
}

impl DaneVerifier {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = Vec::with_capacity(1 + intermediates.len());
        chain.push(end_entity.clone());
        chain.extend(intermediates.iter().cloned());
        verify_at(&self.records, &chain, &self.mx_host, now, &self.provider)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|why| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    std::io::Error::other(why),
                ))))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::TLSA;
    use hickory_proto::rr::Record;
    use std::net::TcpListener;

    fn rec(usage: u8, selector: u8, matching: u8, len: usize) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data: vec![0xab; len],
        }
    }

    #[test]
    fn usable_records() {
        let table = [
            (rec(3, 1, 1, 32), true),
            (rec(3, 0, 1, 32), true),
            (rec(3, 1, 2, 64), true),
            (rec(3, 0, 0, 100), true),
            (rec(2, 0, 1, 32), true),
            (rec(2, 1, 2, 64), true),
            (rec(0, 0, 1, 32), false), // PKIX-TA: not for SMTP
            (rec(1, 1, 1, 32), false), // PKIX-EE: not for SMTP
            (rec(4, 1, 1, 32), false),
            (rec(3, 2, 1, 32), false), // unknown selector
            (rec(3, 1, 3, 32), false), // unknown matching type
            (rec(3, 1, 1, 31), false), // SHA-256 of the wrong length
            (rec(3, 1, 2, 32), false), // SHA-512 of the wrong length
            (rec(3, 0, 0, 0), false),
        ];
        for (record, want) in table {
            assert_eq!(record.usable(), want, "{record}");
        }
        assert_eq!(rec(2, 0, 1, 1).dane_usage(), Some(Usage::DaneTa));
        assert_eq!(rec(3, 0, 1, 1).dane_usage(), Some(Usage::DaneEe));
        assert_eq!(rec(1, 0, 1, 1).dane_usage(), None);
    }

    #[test]
    fn matching_on_bytes_that_are_not_a_certificate() {
        let blob = b"not a certificate";
        let sha256 = digest::digest(&digest::SHA256, blob).as_ref().to_vec();
        let sha512 = digest::digest(&digest::SHA512, blob).as_ref().to_vec();
        let table = [
            (0, 0, blob.to_vec(), true),
            (0, 1, sha256.clone(), true),
            (0, 2, sha512, true),
            (0, 1, vec![0; 32], false),
            (0, 2, sha256.clone(), false),
            // Selector 1 needs a parsable certificate.
            (1, 1, sha256, false),
            (2, 0, blob.to_vec(), false),
        ];
        for (selector, matching, data, want) in table {
            let t = Tlsa {
                usage: 3,
                selector,
                matching,
                data,
            };
            assert_eq!(t.matches(blob), want, "{t}");
        }
    }

    #[test]
    fn presentation_form() {
        let t = Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0x01, 0xab, 0xff],
        };
        assert_eq!(t.to_string(), "3 1 1 01abff");
    }

    #[test]
    fn tlsa_names() {
        for (host, port, want) in [
            ("mx.example.org", 25, "_25._tcp.mx.example.org."),
            ("MX.example.org.", 25, "_25._tcp.MX.example.org."),
            ("mail.example", 2525, "_2525._tcp.mail.example."),
        ] {
            assert_eq!(tlsa_name(host, port).unwrap().to_ascii(), want);
        }
        for bad in ["", ".", "a..b"] {
            let err = tlsa_name(bad, 25).unwrap_err();
            assert!(
                matches!(err.downcast_ref::<Error>(), Some(Error::Data(_))),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn query_asks_for_tlsa_with_the_do_bit() {
        let name = tlsa_name("mx.example", 25).unwrap();
        let (bytes, id) = build_query(&name).unwrap();
        let msg = Message::from_vec(&bytes).unwrap();
        assert_eq!(msg.metadata.id, id);
        assert!(msg.metadata.recursion_desired);
        let q = msg.queries.first().unwrap();
        assert_eq!(q.name(), &name);
        assert_eq!(q.query_type(), RecordType::TLSA);
        let edns = msg.edns.as_ref().expect("EDNS");
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), EDNS_PAYLOAD);
    }

    fn answer(
        query: &Message,
        code: ResponseCode,
        ad: bool,
        tc: bool,
        records: &[(u8, u8, u8)],
    ) -> Message {
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.response_code = code;
        reply.metadata.authentic_data = ad;
        reply.metadata.truncation = tc;
        let q = query.queries.first().unwrap().clone();
        let name = q.name().clone();
        reply.add_query(q);
        for &(u, s, m) in records {
            let len = if m == 2 { 64 } else { 32 };
            let tlsa = TLSA::new(u.into(), s.into(), m.into(), vec![7; len]);
            reply.add_answer(Record::from_rdata(name.clone(), 300, RData::TLSA(tlsa)));
        }
        reply
    }

    /// (rcode, AD, records as usage/selector/matching, Ok(kind) or Err(substring))
    type ClassifyRow<'a> = (
        ResponseCode,
        bool,
        &'a [(u8, u8, u8)],
        Result<&'a str, &'a str>,
    );

    #[test]
    fn classify_table() {
        let resolver: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let (bytes, _) = build_query(&tlsa_name("mx.example", 25).unwrap()).unwrap();
        let query = Message::from_vec(&bytes).unwrap();
        use ResponseCode::*;
        let table: &[ClassifyRow] = &[
            (NoError, true, &[(3, 1, 1)], Ok("records 1")),
            (
                NoError,
                true,
                &[(3, 1, 1), (2, 0, 2), (1, 1, 1)],
                Ok("records 2"),
            ),
            (NoError, true, &[(0, 0, 1), (1, 1, 1)], Ok("unusable 2")),
            (NoError, true, &[], Ok("none")),
            (NXDomain, true, &[], Ok("none")),
            (NoError, false, &[(3, 1, 1)], Ok("n/a")),
            (NXDomain, false, &[], Ok("n/a")),
            (FormErr, false, &[], Ok("n/a")),
            (NotImp, true, &[], Ok("n/a")),
            (ServFail, false, &[], Err("SERVFAIL")),
            (Refused, false, &[], Err("Refused")),
        ];
        for (code, ad, records, want) in table {
            let reply = answer(&query, *code, *ad, false, records);
            let got = classify(&reply, resolver);
            let kind = got.as_ref().map(|l| match l {
                Lookup::Records(r) => format!("records {}", r.len()),
                Lookup::Unusable(n) => format!("unusable {n}"),
                Lookup::NoRecords => "none".into(),
                Lookup::NotAvailable(_) => "n/a".into(),
            });
            match (want, &kind) {
                (Ok(w), Ok(k)) => assert_eq!(w, k, "{code} AD={ad} {records:?}"),
                (Err(w), Err(e)) => assert!(e.contains(w), "{code}: {e}"),
                _ => panic!("{code} AD={ad} {records:?}: got {kind:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn not_available_says_why() {
        let resolver: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let (bytes, _) = build_query(&tlsa_name("mx.example", 25).unwrap()).unwrap();
        let query = Message::from_vec(&bytes).unwrap();
        let reply = answer(&query, ResponseCode::NoError, false, false, &[(3, 1, 1)]);
        match classify(&reply, resolver) {
            Ok(Lookup::NotAvailable(why)) => assert!(why.contains("AD bit clear"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_answers_are_skipped() {
        let name = tlsa_name("mx.example", 25).unwrap();
        let (bytes, id) = build_query(&name).unwrap();
        let query = Message::from_vec(&bytes).unwrap();
        let good = answer(&query, ResponseCode::NoError, true, false, &[]);
        assert!(our_answer(&good.to_vec().unwrap(), id, &name).is_some());
        assert!(our_answer(&good.to_vec().unwrap(), id.wrapping_add(1), &name).is_none());
        let other = tlsa_name("other.example", 25).unwrap();
        assert!(our_answer(&good.to_vec().unwrap(), id, &other).is_none());
        // The query itself is not an answer.
        assert!(our_answer(&bytes, id, &name).is_none());
        assert!(our_answer(b"\x00\x01garbage", id, &name).is_none());
    }

    /// A resolver on one loopback port: UDP answers are truncated, TCP ones complete.
    fn truncating_resolver() -> (SocketAddr, std::thread::JoinHandle<bool>) {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = UdpSocket::bind(addr).unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, peer) = udp.recv_from(&mut buf).unwrap();
            let query = Message::from_vec(&buf[..n]).unwrap();
            let tc = answer(&query, ResponseCode::NoError, true, true, &[]);
            udp.send_to(&tc.to_vec().unwrap(), peer).unwrap();
            let (mut conn, _) = tcp.accept().unwrap();
            let mut len = [0u8; 2];
            conn.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            conn.read_exact(&mut q).unwrap();
            let query = Message::from_vec(&q).unwrap();
            let full = answer(&query, ResponseCode::NoError, true, false, &[(3, 1, 1)]);
            let bytes = full.to_vec().unwrap();
            conn.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
            conn.write_all(&bytes).unwrap();
            query.edns.is_some_and(|e| e.flags().dnssec_ok)
        });
        (addr, thread)
    }

    #[test]
    fn truncated_udp_answer_is_asked_again_over_tcp() {
        let (addr, server) = truncating_resolver();
        let got = lookup(addr, "mx.example", 25, Duration::from_secs(5)).unwrap();
        assert_eq!(
            got,
            Lookup::Records(vec![Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![7; 32]
            }])
        );
        assert!(server.join().unwrap(), "TCP query without the DO bit");
    }

    #[test]
    fn silent_resolver_times_out_within_the_budget() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let started = Instant::now();
        let err = lookup(addr, "mx.example", 25, Duration::from_millis(300)).unwrap_err();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::DnsTemporary(m)) if m.contains("no answer")),
            "{err:#}"
        );
        // Every try was sent (the budget is shared, not spent on the first).
        let mut buf = [0u8; 512];
        silent
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut seen = 0;
        while silent.recv(&mut buf).is_ok() {
            seen += 1;
        }
        assert_eq!(seen, UDP_TRIES);
    }

    #[test]
    fn verify_needs_a_certificate_and_usable_records() {
        let cert = CertificateDer::from(b"not a certificate".to_vec());
        let sha = digest::digest(&digest::SHA256, cert.as_ref())
            .as_ref()
            .to_vec();
        let ee = Tlsa {
            usage: 3,
            selector: 0,
            matching: 1,
            data: sha.clone(),
        };
        assert!(verify(std::slice::from_ref(&ee), &[], "mx.example")
            .unwrap_err()
            .contains("no certificate"));
        let pkix = Tlsa {
            usage: 1,
            ..ee.clone()
        };
        assert!(verify(&[pkix], std::slice::from_ref(&cert), "mx.example")
            .unwrap_err()
            .contains("no usable"));
        // DANE-EE(3) 0 1 checks only the bytes: even this "certificate" passes.
        assert_eq!(
            verify(&[ee], std::slice::from_ref(&cert), "mx.example"),
            Ok(())
        );
    }
}
