//! `--probe --json`: the probe's findings as one JSON object on stdout, for scripts that
//! watch mail servers (certificate expiry, STARTTLS, AUTH before TLS) without scraping the
//! text report. Its shape is documented field by field by the JSON Schema
//! `schema/postie-probe.schema.json` (draft 2020-12), which the tests validate real output
//! against; a field added here must be added there (the schema forbids others).
//!
//! Owns: [`ProbeJson`], built up while the probe runs ([`ProbeJson::domain`] for each
//! `--mx` domain and its MX hosts, [`ProbeJson::host`] for each host probed) and finished
//! with the run's outcome ([`ProbeJson::finish`]: exit code and error, as for the process
//! status). The warnings are [`super::warnings`], the same sentences the text report
//! shows. Must not: decide anything (the exit code comes from [`exit_code`]), or hold a
//! secret (a probe never authenticates; the login name is not in it either). Server text
//! and certificate names are untrusted: they go out as JSON strings, which escape every
//! control character, never raw.

use serde::Serialize;

use super::{Findings, TlsFailure, TlsMode, Verification};
use crate::error::{exit_code, Exit};
use crate::json::{AttemptJson, CertificateJson, ExitJson, ReplyJson};
use crate::smtp::ehlo::Capabilities;

/// The whole `--probe --json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeJson {
    /// postie's version.
    pub version: &'static str,
    /// `--probe --mx`: each domain, with its MX hosts as DNS gave them; empty when probing
    /// `--server`.
    pub domains: Vec<DomainJson>,
    /// Every host probed, in order (for --mx: domain by domain, by MX preference).
    pub hosts: Vec<HostJson>,
    /// The process's exit status: the most urgent of the hosts' and domains'.
    pub exit: ExitJson,
    /// Why the run failed as a whole (no server to probe, a domain's DNS, a bad option).
    pub error: Option<ErrorJson>,
}

impl Default for ProbeJson {
    fn default() -> ProbeJson {
        ProbeJson {
            version: env!("CARGO_PKG_VERSION"),
            domains: Vec::new(),
            hosts: Vec::new(),
            exit: Exit::Ok.into(),
            error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainJson {
    pub domain: String,
    /// The MX hosts in preference order; empty when the lookup failed.
    pub mx: Vec<MxJson>,
    /// Why the MX lookup failed, when it did.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxJson {
    pub preference: u16,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorJson {
    pub message: String,
}

/// What one host's probe learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostJson {
    pub host: String,
    pub port: u16,
    /// --mx: the domain whose MX host this is, and its preference.
    pub domain: Option<String>,
    pub preference: Option<u16>,
    /// How TLS was tried: "starttls", "implicit" or "none" (--tls none).
    pub tls_mode: &'static str,
    /// The address that answered.
    pub address: Option<String>,
    /// Addresses that did not answer before it, each with why.
    pub failed_attempts: Vec<AttemptJson>,
    pub greeting: Option<ReplyJson>,
    /// The server's name from the first EHLO reply.
    pub ehlo_name: Option<String>,
    /// EHLO before TLS (none with implicit TLS).
    pub before_tls: Option<ExtensionsJson>,
    /// EHLO inside TLS.
    pub inside_tls: Option<ExtensionsJson>,
    pub tls: Option<TlsJson>,
    /// STARTTLS refused, or no TLS session possible even without verification.
    pub tls_error: Option<TlsErrorJson>,
    /// What a mail admin should fix, most important first (as in the text report).
    pub warnings: Vec<String>,
    /// Why the probe of this host stopped early, when it did.
    pub error: Option<String>,
    /// This host's outcome as an exit code (0 when the probe completed).
    pub exit: ExitJson,
}

/// One EHLO reply's extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionsJson {
    pub starttls: bool,
    /// AUTH mechanisms, upper case, in the order offered; empty when AUTH is not.
    pub auth: Vec<String>,
    /// SIZE (RFC 1870) in bytes; 0 when offered without a limit; null when not offered.
    pub size: Option<u64>,
    pub pipelining: bool,
    pub chunking: bool,
    pub binarymime: bool,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub enhanced_status_codes: bool,
    pub requiretls: bool,
    /// Every extension line as sent, known or not.
    pub keywords: Vec<KeywordJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordJson {
    /// Upper case, e.g. "SIZE", "X-EXPERIMENT".
    pub keyword: String,
    /// Its parameters joined by single spaces; "" when it has none.
    pub params: String,
}

impl From<&Capabilities> for ExtensionsJson {
    fn from(c: &Capabilities) -> ExtensionsJson {
        ExtensionsJson {
            starttls: c.starttls,
            auth: c.auth.clone(),
            size: c.size,
            pipelining: c.pipelining,
            chunking: c.chunking,
            binarymime: c.binarymime,
            eightbitmime: c.eightbitmime,
            smtputf8: c.smtputf8,
            dsn: c.dsn,
            enhanced_status_codes: c.enhanced_status_codes,
            requiretls: c.requiretls,
            keywords: c
                .extensions
                .iter()
                .map(|(keyword, params)| KeywordJson {
                    keyword: keyword.clone(),
                    params: params.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsJson {
    /// "TLSv1.3", ...
    pub version: String,
    pub cipher: String,
    pub group: Option<String>,
    /// "verified" (chain and name), "disabled" (--tls-no-verify), "failed" (what is shown
    /// was learned from a second, unverified connection), or null when the handshake
    /// failed altogether (see tls_error).
    pub verification: Option<&'static str>,
    /// Why verification failed, when it did.
    pub verification_error: Option<String>,
    pub certificate: Option<CertificateJson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsErrorJson {
    /// "refused": STARTTLS answered negatively; "handshake": no TLS session came up.
    pub kind: &'static str,
    /// The reply (for "refused") or the handshake's error.
    pub message: String,
}

impl HostJson {
    /// The document's entry for one probed host; `result` is how its probe ended.
    pub fn new(f: &Findings, result: &anyhow::Result<()>) -> HostJson {
        let first_ehlo = f.plain.as_ref().or(f.secured.as_ref());
        HostJson {
            host: f.target.host.clone(),
            port: f.target.port,
            domain: None,
            preference: f.target.preference,
            tls_mode: match f.mode {
                TlsMode::StartTls => "starttls",
                TlsMode::Implicit => "implicit",
                TlsMode::Off => "none",
            },
            address: f.peer.map(|a| a.ip().to_string()),
            failed_attempts: f
                .failed_attempts
                .iter()
                .map(|a| AttemptJson {
                    address: a.addr.ip().to_string(),
                    port: a.addr.port(),
                    error: a.error.clone(),
                })
                .collect(),
            greeting: f.greeting.as_ref().map(ReplyJson::from),
            ehlo_name: first_ehlo
                .map(|c| c.domain.clone())
                .filter(|d| !d.is_empty()),
            before_tls: f.plain.as_ref().map(ExtensionsJson::from),
            inside_tls: f.secured.as_ref().map(ExtensionsJson::from),
            tls: f.tls.as_ref().map(|t| {
                let (verification, verification_error) = match &f.verification {
                    Some(Verification::Verified) => (Some("verified"), None),
                    Some(Verification::Disabled) => (Some("disabled"), None),
                    Some(Verification::Failed(why)) => (Some("failed"), Some(why.clone())),
                    None => (None, None),
                };
                TlsJson {
                    version: t.version.clone(),
                    cipher: t.cipher.clone(),
                    group: t.group.clone(),
                    verification,
                    verification_error,
                    certificate: f.cert.clone().map(CertificateJson::from),
                }
            }),
            tls_error: f.tls_error.as_ref().map(|e| match e {
                TlsFailure::Refused(reply) => TlsErrorJson {
                    kind: "refused",
                    message: reply.clone(),
                },
                TlsFailure::Handshake(why) => TlsErrorJson {
                    kind: "handshake",
                    message: why.clone(),
                },
            }),
            warnings: super::warnings(f),
            error: f.error.clone(),
            exit: match result {
                Ok(()) => Exit::Ok.into(),
                Err(e) => exit_code(e).into(),
            },
        }
    }
}

impl ProbeJson {
    /// Start a `--mx` domain's entry (its MX hosts are added when the lookup answered).
    pub fn domain(&mut self, domain: &str, lookup: Result<&[(u16, String)], String>) {
        let (mx, error) = match lookup {
            Ok(hosts) => (
                hosts
                    .iter()
                    .map(|(preference, host)| MxJson {
                        preference: *preference,
                        host: host.clone(),
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e)),
        };
        self.domains.push(DomainJson {
            domain: domain.to_string(),
            mx,
            error,
        });
    }

    /// Add one probed host; `domain` is the --mx domain it serves.
    pub fn host(&mut self, f: &Findings, result: &anyhow::Result<()>, domain: Option<&str>) {
        let mut host = HostJson::new(f, result);
        host.domain = domain.map(str::to_string);
        self.hosts.push(host);
    }

    /// The document for a run that ended with `outcome`.
    pub fn finish(mut self, outcome: &anyhow::Result<Exit>) -> ProbeJson {
        match outcome {
            Ok(exit) => self.exit = (*exit).into(),
            Err(e) => {
                self.exit = exit_code(e).into();
                self.error = Some(ErrorJson {
                    message: format!("{e:#}"),
                });
            }
        }
        self
    }

    /// The document as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        // Plain structs with string keys always serialize; still, never panic.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"version\":\"{}\",\"domains\":[],\"hosts\":[],\
                 \"exit\":{{\"code\":70,\"name\":\"EX_SOFTWARE\"}},\
                 \"error\":{{\"message\":\"cannot serialize the probe\"}}}}",
                env!("CARGO_PKG_VERSION")
            )
        })
    }

    /// Write the document and a newline to stdout. A closed stdout is not an error; any
    /// other failure is a warning on stderr, since the outcome stands either way.
    pub fn print(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let result = writeln!(out, "{}", self.to_json()).and_then(|()| out.flush());
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("postie: warning: cannot write the JSON result to stdout: {e}");
            }
        }
    }
}

/// Whether a command line asks for `--probe --json` (for a usage error clap refused, so
/// that it can still be reported in the probe's own shape). Arguments after `--` are
/// operands.
pub fn requested(argv: &[std::ffi::OsString]) -> bool {
    let options = || argv.iter().skip(1).take_while(|a| a.as_os_str() != "--");
    options().any(|a| a.as_os_str() == "--json") && options().any(|a| a.as_os_str() == "--probe")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Target;
    use crate::smtp::reply::parse;

    fn findings() -> Findings {
        let mut f = Findings::new(
            Target {
                host: "mx.example.test".into(),
                port: 25,
                preference: Some(10),
            },
            TlsMode::StartTls,
        );
        let ehlo =
            parse(b"250-mx.example.test hi\r\n250-SIZE 0\r\n250-AUTH PLAIN\r\n250 X-A b  c\r\n")
                .unwrap()
                .unwrap()
                .0;
        f.plain = Some(Capabilities::from_ehlo(&ehlo));
        f.tls_error = Some(TlsFailure::Refused("454 4.7.0 not now".into()));
        f
    }

    #[test]
    fn a_host_entry_carries_extensions_warnings_and_its_exit() {
        let f = findings();
        let host = HostJson::new(&f, &Ok(()));
        assert_eq!(host.ehlo_name.as_deref(), Some("mx.example.test"));
        let before = host.before_tls.expect("EHLO before TLS");
        assert_eq!(before.size, Some(0), "SIZE 0: no fixed limit");
        assert_eq!(before.auth, ["PLAIN"]);
        assert!(!before.starttls);
        assert_eq!(
            before.keywords.last(),
            Some(&KeywordJson {
                keyword: "X-A".into(),
                params: "b c".into()
            })
        );
        assert_eq!(host.inside_tls, None);
        assert_eq!(host.tls, None);
        assert_eq!(host.tls_error.map(|e| e.kind), Some("refused"));
        assert_eq!(host.warnings, crate::probe::warnings(&f));
        assert!(host.warnings[0].starts_with("AUTH (PLAIN) is offered before TLS"));
        assert_eq!(host.exit.code, 0);
        let failed = HostJson::new(
            &f,
            &Err(crate::error::Error::Connect("connection refused".into()).into()),
        );
        assert_eq!((failed.exit.code, failed.exit.name), (75, "EX_TEMPFAIL"));
    }

    #[test]
    fn finish_takes_the_outcome() {
        let mut doc = ProbeJson::default();
        doc.domain("example.test", Ok(&[(10, "mx.example.test".into())]));
        doc.domain("broken.test", Err("SERVFAIL".into()));
        doc.host(&findings(), &Ok(()), Some("example.test"));
        let done = doc.clone().finish(&Ok(Exit::TempFail));
        assert_eq!(done.exit.code, 75);
        assert_eq!(done.error, None);
        assert_eq!(done.hosts[0].domain.as_deref(), Some("example.test"));
        assert_eq!(done.domains[1].error.as_deref(), Some("SERVFAIL"));
        let failed = doc.finish(&Err(crate::error::Error::Config("no server".into()).into()));
        assert_eq!(failed.exit.code, 78);
        assert_eq!(failed.error.map(|e| e.message), Some("no server".into()));
        let text = ProbeJson::default().to_json();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["exit"]["name"], "EX_OK");
    }

    #[test]
    fn requested_needs_both_flags_before_the_operands() {
        let argv = |a: &[&str]| -> Vec<std::ffi::OsString> {
            a.iter().map(std::ffi::OsString::from).collect()
        };
        assert!(requested(&argv(&["postie", "--json", "--probe"])));
        assert!(!requested(&argv(&["postie", "--json"])));
        assert!(!requested(&argv(&["postie", "--probe", "--", "--json"])));
    }
}
