//! The facts a person checks on a server certificate — subject, issuer, names, validity,
//! fingerprint — read from its DER for the `-v` transcript, `--json` and `--probe`.
//!
//! Owns: turning one end-entity certificate (RFC 5280 §4.1) into [`CertInfo`], with names
//! from subjectAltName (RFC 5280 §4.2.1.6) written as `DNS:host` / `IP:addr`, dates as
//! RFC 3339 UTC and the SHA-256 fingerprint as colon-separated upper-case hex.
//! Must not: decide whether the certificate is trusted (rustls/webpki do that in
//! [`super::tls`]), or parse ASN.1 by hand: `x509-parser` reads the DER. A certificate it
//! cannot read gives `None`, never a panic; its strings are the server's and still have to
//! go through [`crate::transcript::printable`] before they reach a terminal.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const DAY: i64 = 86_400;

/// What the transcript shows about a server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject distinguished name, e.g. "CN=localhost" (empty when the subject is).
    pub subject: String,
    /// Issuer distinguished name, e.g. "CN=postie test CA, O=postie tests".
    pub issuer: String,
    /// subjectAltName entries: "DNS:x", "IP:1.2.3.4", "IP:::1", "email:x", "URI:x".
    pub sans: Vec<String>,
    /// notBefore, RFC 3339 UTC, e.g. "2026-11-23T10:00:00Z".
    pub not_before: String,
    /// notAfter, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days from now until notAfter (negative once expired).
    pub days_left: i64,
    /// SHA-256 of the DER, "AB:CD:...".
    pub sha256: String,
}

impl CertInfo {
    /// Read a DER certificate, counting `days_left` from the current time.
    pub fn from_der(der: &[u8]) -> Option<CertInfo> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        CertInfo::from_der_at(der, now)
    }

    /// Read a DER certificate, counting `days_left` from `now_unix` (seconds since 1970).
    pub fn from_der_at(der: &[u8], now_unix: i64) -> Option<CertInfo> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let validity = cert.validity();
        let not_before = validity.not_before.timestamp();
        let not_after = validity.not_after.timestamp();
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.iter().filter_map(san).collect(),
            _ => Vec::new(),
        };
        Some(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
            days_left: not_after.saturating_sub(now_unix).div_euclid(DAY),
            sha256: fingerprint(der),
        })
    }

    /// "365 days left", "1 day left", "expired 3 days ago".
    pub fn remaining(&self) -> String {
        match self.days_left {
            1 => "1 day left".to_string(),
            n if n >= 0 => format!("{n} days left"),
            -1 => "expired 1 day ago".to_string(),
            n => format!("expired {} days ago", n.unsigned_abs()),
        }
    }
}

/// One subjectAltName entry in OpenSSL's spelling; kinds nobody checks are left out.
fn san(name: &GeneralName<'_>) -> Option<String> {
    Some(match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(bytes) => format!("IP:{}", ip(bytes)),
        GeneralName::RFC822Name(m) => format!("email:{m}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        _ => return None,
    })
}

/// An iPAddress SAN: 4 or 16 octets; anything else shown as hex.
fn ip(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ipv6Addr::from(v6).to_string()
    } else {
        bytes.iter().fold(String::from("0x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// "AB:CD:..." of SHA-256(der).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Seconds since 1970 as RFC 3339 UTC, e.g. "2027-11-23T10:00:00Z" (proleptic Gregorian).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(DAY);
    let secs = unix.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month, day of the day `days` after 1970-01-01: count in 400-year eras that start
/// on 1 March, so the leap day is the last day of its year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };

    /// A CA like the integration tests' and a leaf it signed, valid `from`..`to`.
    fn leaf(sans: Vec<SanType>, from: (i32, u8, u8), to: (i32, u8, u8)) -> Vec<u8> {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "postie test CA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "postie tests");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    fn test_leaf() -> Vec<u8> {
        leaf(
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
                SanType::IpAddress("::1".parse().unwrap()),
            ],
            (2000, 1, 1),
            (2099, 12, 31),
        )
    }

    #[test]
    fn reads_the_test_leaf() {
        let der = test_leaf();
        // 2026-01-01T00:00:00Z
        let info = CertInfo::from_der_at(&der, 1_767_225_600).unwrap();
        assert_eq!(info.subject, "CN=localhost");
        assert_eq!(info.issuer, "CN=postie test CA, O=postie tests");
        assert_eq!(info.sans, ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
        assert_eq!(info.not_before, "2000-01-01T00:00:00Z");
        assert_eq!(info.not_after, "2099-12-31T00:00:00Z");
        // 2026-01-01 to 2099-12-31: 74 years with 18 leap days, less one day.
        assert_eq!(info.days_left, 74 * 365 + 18 - 1);
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(info.sha256, hex.join(":"));
        assert_eq!(info.sha256.len(), 32 * 3 - 1);
        assert_eq!(CertInfo::from_der(&der).unwrap().sha256, info.sha256);
    }

    #[test]
    fn days_left_counts_whole_days_and_goes_negative() {
        let der = leaf(Vec::new(), (2020, 1, 1), (2021, 1, 1));
        let end = 1_609_459_200; // 2021-01-01T00:00:00Z
        for (now, days, words) in [
            (end - 10 * DAY, 10, "10 days left"),
            (end - DAY - 1, 1, "1 day left"),
            (end - 1, 0, "0 days left"),
            (end, 0, "0 days left"),
            (end + 1, -1, "expired 1 day ago"),
            (end + 3 * DAY, -3, "expired 3 days ago"),
            (end + 3 * DAY + 1, -4, "expired 4 days ago"),
        ] {
            let info = CertInfo::from_der_at(&der, now).unwrap();
            assert_eq!(info.days_left, days, "now {now}");
            assert_eq!(info.remaining(), words, "now {now}");
        }
        let info = CertInfo::from_der_at(&der, end).unwrap();
        assert!(info.sans.is_empty());
        assert_eq!(info.not_after, "2021-01-01T00:00:00Z");
    }

    #[test]
    fn other_san_kinds() {
        let der = leaf(
            vec![
                SanType::Rfc822Name("postmaster@example.test".try_into().unwrap()),
                SanType::URI("https://example.test/".try_into().unwrap()),
                SanType::IpAddress("2001:db8::25".parse().unwrap()),
            ],
            (2020, 1, 1),
            (2030, 1, 1),
        );
        let info = CertInfo::from_der_at(&der, 0).unwrap();
        assert_eq!(
            info.sans,
            [
                "email:postmaster@example.test",
                "URI:https://example.test/",
                "IP:2001:db8::25"
            ]
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            &b""[..],
            b"\x30",
            b"not a certificate",
            &[0x30, 0x82, 0xff, 0xff, 0],
        ] {
            assert_eq!(CertInfo::from_der_at(bad, 0), None, "{bad:?}");
        }
        let mut cut = test_leaf();
        cut.truncate(cut.len() / 2);
        assert_eq!(CertInfo::from_der_at(&cut, 0), None);
    }

    #[test]
    fn dates() {
        for (unix, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_164_799, "2024-02-28T23:59:59Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_735_689_600, "2025-01-01T00:00:00Z"),
            (1_826_963_999, "2027-11-23T09:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-2_208_988_800, "1900-01-01T00:00:00Z"),
        ] {
            assert_eq!(rfc3339(unix), text, "{unix}");
        }
    }

    #[test]
    fn odd_ip_lengths_are_hex() {
        assert_eq!(ip(&[1, 2, 3]), "0x010203");
        assert_eq!(ip(&[192, 0, 2, 1]), "192.0.2.1");
    }
}
