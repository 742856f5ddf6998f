//! DANE (RFC 7672): TLSA lookups against the test DNS server with and without the AD bit,
//! certificate checks against the test PKI, and a TLS handshake through the DANE verifier.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use postie::dane::{self, Lookup, Tlsa};
use postie::error::Error;
use ring::digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::support::certs::{other_ca_pem, pki};
use crate::support::dns_server::Zone;

const TIMEOUT: Duration = Duration::from_secs(5);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

fn sha512(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA512, bytes).as_ref().to_vec()
}

fn spki(cert: &[u8]) -> Vec<u8> {
    let (_, parsed) = X509Certificate::from_der(cert).unwrap();
    parsed.tbs_certificate.subject_pki.raw.to_vec()
}

fn pem_cert(path: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

fn leaf() -> CertificateDer<'static> {
    CertificateDer::from(pki().cert_der.clone())
}

fn ca() -> CertificateDer<'static> {
    pem_cert(&pki().ca_pem)
}

fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
    Tlsa {
        usage,
        selector,
        matching,
        data,
    }
}

// ---- lookup ---------------------------------------------------------------------------

#[test]
fn validated_tlsa_records_are_returned_and_asked_for_with_do() {
    let ee = sha256(&spki(&pki().cert_der));
    let server = Zone::new()
        .tlsa("_25._tcp.mx.example", 3, 1, 1, &hex(&ee))
        .tlsa("_25._tcp.mx.example", 2, 0, 1, &hex(&sha256(&ca())))
        .authentic(true)
        .start();
    let got = dane::lookup(server.addr(), "mx.example", 25, TIMEOUT).unwrap();
    assert_eq!(
        got,
        Lookup::Records(vec![tlsa(3, 1, 1, ee), tlsa(2, 0, 1, sha256(&ca()))])
    );
    let asked = vec![("_25._tcp.mx.example".to_string(), RecordType::TLSA)];
    assert_eq!(server.queries(), asked);
    assert_eq!(
        server.dnssec_ok_queries(),
        asked,
        "the query lacks the DO bit"
    );
}

#[test]
fn lookup_outcomes_by_ad_bit_and_answer() {
    let data = hex(&[0x5a; 32]);
    // (zone, host, port, expected)
    let table: Vec<(Zone, &str, u16, &str)> = vec![
        // Records, but not validated: DANE does not apply.
        (
            Zone::new().tlsa("_25._tcp.mx.example", 3, 1, 1, &data),
            "mx.example",
            25,
            "not available",
        ),
        // Validated NXDOMAIN and NODATA: no TLSA records.
        (Zone::new().authentic(true), "mx.example", 25, "no records"),
        (
            Zone::new().authentic(true).empty("_25._tcp.mx.example"),
            "mx.example",
            25,
            "no records",
        ),
        (
            Zone::new().authentic(true).a("mx.example", "192.0.2.1"),
            "mx.example",
            25,
            "no records",
        ),
        // NXDOMAIN without AD: not available either.
        (Zone::new(), "mx.example", 25, "not available"),
        // Only PKIX usages (and a digest of the wrong length): validated, none usable.
        (
            Zone::new()
                .authentic(true)
                .tlsa("_25._tcp.mx.example", 0, 0, 1, &data)
                .tlsa("_25._tcp.mx.example", 1, 1, 1, &data)
                .tlsa("_25._tcp.mx.example", 3, 1, 2, &data),
            "mx.example",
            25,
            "unusable 3",
        ),
        // The port is part of the name; a final dot on the host changes nothing.
        (
            Zone::new()
                .authentic(true)
                .tlsa("_2525._tcp.mx.example", 3, 1, 1, &data),
            "mx.example.",
            2525,
            "records 1",
        ),
        (
            Zone::new()
                .authentic(true)
                .tlsa("_2525._tcp.mx.example", 3, 1, 1, &data),
            "mx.example",
            25,
            "no records",
        ),
    ];
    for (i, (zone, host, port, want)) in table.into_iter().enumerate() {
        let server = zone.start();
        let got = dane::lookup(server.addr(), host, port, TIMEOUT).unwrap();
        let kind = match &got {
            Lookup::NotAvailable(why) => {
                assert!(why.contains("AD bit clear"), "row {i}: {why}");
                "not available".to_string()
            }
            Lookup::NoRecords => "no records".to_string(),
            Lookup::Unusable(n) => format!("unusable {n}"),
            Lookup::Records(r) => format!("records {}", r.len()),
        };
        assert_eq!(kind, want, "row {i}: {got:?}");
    }
}

#[test]
fn servfail_and_silence_are_temporary() {
    let server = Zone::new()
        .authentic(true)
        .servfail("_25._tcp.bogus.example")
        .silent("_25._tcp.slow.example")
        .start();
    for (host, want) in [("bogus.example", "SERVFAIL"), ("slow.example", "no answer")] {
        let err = dane::lookup(server.addr(), host, 25, Duration::from_millis(400)).unwrap_err();
        match err.downcast_ref::<Error>() {
            Some(Error::DnsTemporary(msg)) => assert!(msg.contains(want), "{host}: {msg}"),
            _ => panic!("{host}: not DnsTemporary: {err:#}"),
        }
    }
}

// ---- verify -----------------------------------------------------------------------------

/// (what, records, chain, MX host, Ok or Err(substring of the message))
type VerifyRow<'a> = (
    &'a str,
    Vec<Tlsa>,
    &'a Vec<CertificateDer<'static>>,
    &'a str,
    Result<(), &'a str>,
);

#[test]
fn verify_table() {
    let leaf = leaf();
    let ca = ca();
    let other = pem_cert(other_ca_pem());
    let good = vec![leaf.clone(), ca.clone()];
    let leaf_only = vec![leaf.clone()];
    let wrong_ca = vec![leaf.clone(), other.clone()];
    let l = pki().cert_der.as_slice();
    let table: Vec<VerifyRow> = vec![
        (
            "3 0 1",
            vec![tlsa(3, 0, 1, sha256(l))],
            &leaf_only,
            "mx.example",
            Ok(()),
        ),
        (
            "3 1 1",
            vec![tlsa(3, 1, 1, sha256(&spki(l)))],
            &good,
            "mx.example",
            Ok(()),
        ),
        (
            "3 1 2",
            vec![tlsa(3, 1, 2, sha512(&spki(l)))],
            &good,
            "mx.example",
            Ok(()),
        ),
        (
            "3 0 0",
            vec![tlsa(3, 0, 0, l.to_vec())],
            &good,
            "mx.example",
            Ok(()),
        ),
        (
            "3 1 0",
            vec![tlsa(3, 1, 0, spki(l))],
            &good,
            "localhost",
            Ok(()),
        ),
        (
            "3 0 1 wrong",
            vec![tlsa(3, 0, 1, sha256(&ca))],
            &good,
            "localhost",
            Err("matches none"),
        ),
        (
            "3 1 1 wrong",
            vec![tlsa(3, 1, 1, sha256(l))],
            &good,
            "localhost",
            Err("matches none"),
        ),
        (
            "3 1 2 wrong",
            vec![tlsa(3, 1, 2, sha512(l))],
            &good,
            "localhost",
            Err("matches none"),
        ),
        (
            "3 0 0 wrong",
            vec![tlsa(3, 0, 0, ca.to_vec())],
            &good,
            "localhost",
            Err("matches none"),
        ),
        // DANE-EE never matches an issuer.
        (
            "3 0 1 of the CA",
            vec![tlsa(3, 0, 1, sha256(&ca))],
            &good,
            "mx.example",
            Err("matches none"),
        ),
        // DANE-TA: the chain must lead to the matched CA and carry the MX host's name.
        (
            "2 0 1",
            vec![tlsa(2, 0, 1, sha256(&ca))],
            &good,
            "localhost",
            Ok(()),
        ),
        (
            "2 1 1",
            vec![tlsa(2, 1, 1, sha256(&spki(&ca)))],
            &good,
            "localhost",
            Ok(()),
        ),
        (
            "2 0 1 wrong name",
            vec![tlsa(2, 0, 1, sha256(&ca))],
            &good,
            "mx.example",
            Err("DANE-TA"),
        ),
        (
            "2 0 1 TA not sent",
            vec![tlsa(2, 0, 1, sha256(&ca))],
            &leaf_only,
            "localhost",
            Err("matches none"),
        ),
        (
            "2 0 1 of the leaf",
            vec![tlsa(2, 0, 1, sha256(l))],
            &good,
            "localhost",
            Err("matches none"),
        ),
        (
            "2 0 1 unrelated CA",
            vec![tlsa(2, 0, 1, sha256(&other))],
            &wrong_ca,
            "localhost",
            Err("DANE-TA"),
        ),
        // PKIX usages are not for SMTP (RFC 7672 §3.1.3): ignored even when they match.
        (
            "0 0 1",
            vec![tlsa(0, 0, 1, sha256(&ca))],
            &good,
            "localhost",
            Err("no usable"),
        ),
        (
            "1 0 1",
            vec![tlsa(1, 0, 1, sha256(l))],
            &good,
            "localhost",
            Err("no usable"),
        ),
        (
            "ignored, wrong, right",
            vec![
                tlsa(1, 0, 1, sha256(l)),
                tlsa(3, 1, 1, vec![0; 32]),
                tlsa(3, 1, 1, sha256(&spki(l))),
            ],
            &good,
            "mx.example",
            Ok(()),
        ),
        (
            "wrong EE, right TA",
            vec![tlsa(3, 1, 1, vec![0; 32]), tlsa(2, 0, 1, sha256(&ca))],
            &good,
            "localhost",
            Ok(()),
        ),
    ];
    for (what, records, chain, host, want) in table {
        let got = dane::verify(&records, chain, host);
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(w), Err(e)) => assert!(e.contains(w), "{what}: {e}"),
            _ => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }
}

// ---- handshake --------------------------------------------------------------------------

fn server_config() -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki().key_der.clone()));
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf(), ca()], key)
            .unwrap(),
    )
}

/// Run a handshake in memory; the client's error when it fails.
fn handshake(client: Arc<ClientConfig>, name: &str) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = ClientConnection::new(client, name).unwrap();
    let mut server = ServerConnection::new(server_config()).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        server.read_tls(&mut buf.as_slice()).unwrap();
        if server.process_new_packets().is_err() {
            // The client's alert tells the server why; what matters is the client's view.
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets()?;
        if !client.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn dane_client(records: Vec<Tlsa>, mx_host: &str) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(dane::verifier(records, mx_host))
            .with_no_client_auth(),
    )
}

#[test]
fn handshake_through_the_dane_verifier() {
    let l = pki().cert_der.as_slice();
    // The test certificate is not WebPKI-trusted: postie's usual verifier refuses it.
    let webpki = postie::net::tls::client_config(None, true).unwrap();
    assert!(handshake(webpki, "localhost").is_err());

    // DANE-EE: a matching record is enough, whatever the name.
    let matching = vec![tlsa(3, 1, 1, sha256(&spki(l)))];
    handshake(dane_client(matching, "mx.example"), "mx.example").unwrap();
    // DANE-TA with the test CA as trust anchor, for the leaf's own name.
    let anchor = vec![tlsa(2, 0, 1, sha256(&ca()))];
    handshake(dane_client(anchor, "localhost"), "localhost").unwrap();

    // A wrong record fails the handshake, and the error says why.
    let wrong = vec![tlsa(3, 1, 1, sha256(l))];
    let err = handshake(dane_client(wrong, "mx.example"), "mx.example").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("matches none"), "{err}");
}
