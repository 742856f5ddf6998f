//! SASL mechanisms postie speaks, carried by SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN
//! (draft-murchison-sasl-login), SCRAM-SHA-256 (RFC 5802, RFC 7677; the arithmetic is in
//! [`super::scram`]), CRAM-MD5 (RFC 2195), XOAUTH2 (Google's and Microsoft's OAuth 2.0
//! bearer-token format) and OAUTHBEARER (RFC 7628); base64 per RFC 4648 §4.
//!
//! This module owns which mechanism to use ([`choose`]) and one exchange's messages
//! ([`Exchange`]): a pure state machine that turns the server's 334 challenges into the
//! lines to send and judges the final 235. It does no I/O: the session sends the returned
//! payloads inside sensitive [`Command`](crate::smtp::command::Command)s, which the
//! transcript masks. Nothing here may log or format a password, token or payload; the
//! server's own words (an OAuth error, a SCRAM `e=`) are shown escaped, never raw. Hashes
//! and MACs come from ring (SHA-256 family) and RustCrypto's `hmac` + `md-5` (CRAM-MD5
//! only); none is hand-rolled.
//!
//! Choice policy: without `--auth`, the strongest mechanism both sides support among
//! SCRAM-SHA-256 > PLAIN > LOGIN (SCRAM never sends the password, and proves the server
//! knows it). CRAM-MD5 (MD5, and the server must store the password in clear) and the
//! OAuth mechanisms (they need a token, not a password) are used only when asked for.

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};

use crate::error::Error;
use crate::secret::Secret;
use crate::smtp::scram::{self, Scram};

/// A SASL mechanism postie implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha256,
    CramMd5,
    XOAuth2,
    OAuthBearer,
}

/// What [`choose`] may pick on its own, strongest first.
const AUTOMATIC: [Mechanism; 3] = [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

/// Every mechanism, in the order error messages list them.
const ALL: [Mechanism; 6] = [
    Mechanism::ScramSha256,
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::CramMd5,
    Mechanism::XOAuth2,
    Mechanism::OAuthBearer,
];

/// Server challenges decoded with or without their padding: RFC 4954 asks for standard
/// padded base64, but being strict about '=' helps nobody.
const CHALLENGE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Longest server error text (OAuth JSON, SCRAM e=) kept for an error message.
const SERVER_ERROR_MAX: usize = 300;

impl Mechanism {
    /// The name as used on the wire ("PLAIN", "SCRAM-SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// True for the mechanisms that carry an OAuth 2.0 bearer token instead of a password.
    pub fn takes_token(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }
}

impl FromStr for Mechanism {
    type Err = String;

    /// Case-insensitive wire name ("scram-sha-256", "XOAUTH2").
    fn from_str(s: &str) -> Result<Mechanism, String> {
        ALL.into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unsupported AUTH mechanism {} (supported: {})",
                    quoted(s),
                    names(&ALL)
                )
            })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Picks the mechanism. `forced` (the user named one) must be offered. Otherwise the
/// strongest both sides support among SCRAM-SHA-256 > PLAIN > LOGIN; never CRAM-MD5,
/// XOAUTH2 or OAUTHBEARER, which must be named. Offered names compare case-insensitively.
/// The error names what the server offered (escaped: it is server text).
pub fn choose(offered: &[String], forced: Option<Mechanism>) -> Result<Mechanism, String> {
    let is_offered = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    match forced {
        Some(m) if is_offered(m) => Ok(m),
        Some(m) => Err(format!(
            "server does not offer AUTH {m} (offered: {})",
            list(offered)
        )),
        None => AUTOMATIC
            .into_iter()
            .find(|&m| is_offered(m))
            .ok_or_else(|| {
                let by_name: Vec<Mechanism> = ALL.into_iter().filter(|&m| is_offered(m)).collect();
                if by_name.is_empty() {
                    return format!(
                        "server offers no AUTH mechanism postie supports (offered: {})",
                        list(offered)
                    );
                }
                let token = if by_name.iter().any(|m| m.takes_token()) {
                    " (XOAUTH2 and OAUTHBEARER take an OAuth token as the password)"
                } else {
                    ""
                };
                format!(
                    "server offers no AUTH mechanism postie uses unasked (offered: {}); \
                 name one with --auth to use {}{token}",
                    list(offered),
                    names(&by_name)
                )
            }),
    }
}

/// Why an AUTH exchange cannot go on. `Display` is a sentence for the user; it never
/// contains a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A credential contains a character the mechanism uses as a separator.
    Credential {
        mechanism: Mechanism,
        field: &'static str,
        character: &'static str,
    },
    /// A challenge is not base64, or not what the mechanism defines. `detail` is our own
    /// words, never the server's bytes.
    Malformed {
        mechanism: Mechanism,
        detail: String,
    },
    /// A 334 challenge after the exchange had nothing left to say.
    UnexpectedChallenge { mechanism: Mechanism },
    /// SCRAM: the server's nonce does not extend ours (a replay, or not a SCRAM server).
    ScramNonce,
    /// SCRAM: the iteration count is outside [`scram::MIN_ITERATIONS`]..=[`scram::MAX_ITERATIONS`].
    ScramIterations(u32),
    /// SCRAM: the server's signature is wrong; it does not know the password.
    ScramSignature,
    /// SCRAM: the server said 235 without ever proving it knows the password.
    ScramUnverified,
    /// The system's random number generator failed (SCRAM nonce).
    Random,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Credential {
                mechanism,
                field,
                character,
            } => write!(
                f,
                "the {field} cannot be sent with AUTH {mechanism}: it contains {character}"
            ),
            AuthError::Malformed { mechanism, detail } => {
                write!(
                    f,
                    "the server's AUTH {mechanism} challenge is malformed: {detail}"
                )
            }
            AuthError::UnexpectedChallenge { mechanism } => write!(
                f,
                "the server sent another AUTH {mechanism} challenge after the exchange was complete"
            ),
            AuthError::ScramNonce => f.write_str(
                "the server's SCRAM nonce does not extend ours: refusing (a replayed exchange \
                 or an impostor)",
            ),
            AuthError::ScramIterations(n) => write!(
                f,
                "the server asks for {n} SCRAM iterations; postie accepts {} to {}: refusing",
                scram::MIN_ITERATIONS,
                scram::MAX_ITERATIONS
            ),
            AuthError::ScramSignature => f.write_str(
                "server's SCRAM signature is wrong: refusing (it does not know the password; \
                 possibly an impostor)",
            ),
            AuthError::ScramUnverified => f.write_str(
                "server accepted AUTH SCRAM-SHA-256 without proving it knows the password \
                 (no server signature): refusing",
            ),
            AuthError::Random => {
                f.write_str("the system's random number generator failed (SCRAM nonce)")
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// Exit codes (design.md §2): a bad credential is configuration (78); a challenge we
/// cannot read is the server speaking nonsense (76); a server that fails SCRAM's checks
/// makes safe authentication impossible (69), like a rejected certificate.
impl From<AuthError> for Error {
    fn from(e: AuthError) -> Error {
        let text = e.to_string();
        match e {
            AuthError::Credential { .. } => Error::Config(text),
            AuthError::Malformed { .. } | AuthError::UnexpectedChallenge { .. } => {
                Error::Protocol(text)
            }
            AuthError::ScramNonce
            | AuthError::ScramIterations(_)
            | AuthError::ScramSignature
            | AuthError::ScramUnverified => Error::Unavailable(text),
            AuthError::Random => Error::Io(text),
        }
    }
}

/// One SASL exchange: the initial response, an answer per 334 challenge, and the check of
/// the final 235. Each mechanism answers a fixed, small number of challenges and errors
/// after that, so a session loop driven by it always ends. No `Debug`: it holds the secret.
pub struct Exchange {
    mechanism: Mechanism,
    user: String,
    secret: Secret,
    host: String,
    port: u16,
    /// 334 challenges answered so far.
    answered: u8,
    /// SCRAM's state, created with the initial response.
    scram: Option<Scram>,
    /// A SCRAM nonce fixed in advance (tests); otherwise a random one.
    nonce: Option<String>,
    /// What the server said went wrong (OAuth JSON, SCRAM e=), escaped for display.
    server_error: Option<String>,
}

impl Exchange {
    /// `host` and `port` are the server's, for OAUTHBEARER's `host=` and `port=`.
    pub fn new(mech: Mechanism, user: &str, secret: &Secret, host: &str, port: u16) -> Exchange {
        Exchange {
            mechanism: mech,
            user: user.to_string(),
            secret: secret.clone(),
            host: host.to_string(),
            port,
            answered: 0,
            scram: None,
            nonce: None,
            server_error: None,
        }
    }

    /// Like [`Exchange::new`] with a fixed SCRAM client nonce, for the RFC test vectors.
    #[cfg(test)]
    pub(crate) fn with_nonce(
        mech: Mechanism,
        user: &str,
        secret: &Secret,
        nonce: &str,
    ) -> Exchange {
        let mut exchange = Exchange::new(mech, user, secret, "localhost", 587);
        exchange.nonce = Some(nonce.to_string());
        exchange
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The initial response for "AUTH MECH <ir>" (RFC 4954 §4), base64, or `None` when
    /// the mechanism starts with a server challenge (LOGIN, CRAM-MD5). Saves a round trip.
    pub fn initial_response(&mut self) -> Result<Option<String>, AuthError> {
        let message = match self.mechanism {
            Mechanism::Login | Mechanism::CramMd5 => return Ok(None),
            Mechanism::Plain => self.plain()?,
            Mechanism::XOAuth2 => self.xoauth2()?,
            Mechanism::OAuthBearer => self.oauthbearer()?,
            Mechanism::ScramSha256 => {
                let nonce = match &self.nonce {
                    Some(n) => n.clone(),
                    None => scram::random_nonce()?,
                };
                let scram = self
                    .scram
                    .get_or_insert_with(|| Scram::new(&self.user, &self.secret, nonce));
                scram.client_first()?.into_bytes()
            }
        };
        Ok(Some(STANDARD.encode(message)))
    }

    /// Answers a 334 challenge (the text after "334 ", base64) with the base64 line to
    /// send; "" is an empty response. SCRAM checks the server nonce and computes the proof,
    /// then checks the server signature in server-final (wrong: an error, whatever the
    /// server says next). An OAuth error challenge is recorded ([`Exchange::server_error`])
    /// and answered as its mechanism requires, so that the server sends its final 5xx.
    pub fn respond(&mut self, challenge_b64: &str) -> Result<String, AuthError> {
        let mechanism = self.mechanism;
        let unexpected = AuthError::UnexpectedChallenge { mechanism };
        if self.server_error.is_some() {
            return Err(unexpected);
        }
        let challenge =
            CHALLENGE
                .decode(challenge_b64.trim())
                .map_err(|_| AuthError::Malformed {
                    mechanism,
                    detail: "not base64".into(),
                })?;
        let step = self.answered;
        self.answered = self.answered.saturating_add(1);
        let message = match (mechanism, step) {
            // A server that ignored the initial response asks with an empty challenge.
            (Mechanism::Plain, 0) => self.plain()?,
            (Mechanism::Login, 0) => self.user.as_bytes().to_vec(),
            (Mechanism::Login, 1) => self.secret.expose().as_bytes().to_vec(),
            (Mechanism::CramMd5, 0) => self.cram_md5(&challenge)?,
            (Mechanism::XOAuth2 | Mechanism::OAuthBearer, _) => {
                return self.oauth_challenge(&challenge, step)
            }
            (Mechanism::ScramSha256, _) => return self.scram_challenge(&challenge, step),
            _ => return Err(unexpected),
        };
        Ok(STANDARD.encode(message))
    }

    /// Called on 235 with the reply text (enhanced code stripped). For SCRAM, the server's
    /// final message may ride in it (RFC 4954 §4, "additional data with success"): it is
    /// verified if present. SCRAM whose server signature was never verified is an error.
    pub fn finish(&mut self, success_text: Option<&str>) -> Result<(), AuthError> {
        let Some(scram) = self.scram.as_mut() else {
            return match self.mechanism {
                Mechanism::ScramSha256 => Err(AuthError::ScramUnverified),
                _ => Ok(()),
            };
        };
        if scram.is_verified() {
            return Ok(());
        }
        if scram.awaits_server_final() {
            // The text is human words or base64 of "v=..."; only the latter is SCRAM's.
            let server_final = success_text
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|word| CHALLENGE.decode(word).ok())
                .find(|bytes| bytes.starts_with(b"v="));
            if let Some(bytes) = server_final {
                scram.verify_server_final(&bytes)?;
            }
        }
        if scram.is_verified() {
            Ok(())
        } else {
            Err(AuthError::ScramUnverified)
        }
    }

    /// The server's own account of a failure seen during the exchange (the decoded OAuth
    /// JSON of RFC 7628 §3.2.2, or SCRAM's e=), escaped and shortened, for the error
    /// message that follows its 5xx.
    pub fn server_error(&self) -> Option<&str> {
        self.server_error.as_deref()
    }

    fn record_server_error(&mut self, text: &[u8]) {
        let shown: String = String::from_utf8_lossy(text)
            .escape_debug()
            .take(SERVER_ERROR_MAX)
            .collect();
        self.server_error = Some(shown);
    }

    /// "\0user\0password" (RFC 4616 §2; no authorization identity, so the server derives
    /// it from the user name).
    fn plain(&self) -> Result<Vec<u8>, AuthError> {
        self.refuse(
            &[
                ("user name", &self.user),
                ("password", self.secret.expose()),
            ],
            '\0',
        )?;
        Ok(plain_message(&self.user, self.secret.expose()))
    }

    /// "user=U\x01auth=Bearer T\x01\x01".
    fn xoauth2(&self) -> Result<Vec<u8>, AuthError> {
        self.refuse(
            &[("user name", &self.user), ("token", self.secret.expose())],
            '\x01',
        )?;
        Ok(format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.secret.expose()
        )
        .into_bytes())
    }

    /// "n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01" (RFC 7628 §3.1; the gs2
    /// header's user name escaped as a saslname, RFC 5801 §4).
    fn oauthbearer(&self) -> Result<Vec<u8>, AuthError> {
        self.refuse(
            &[
                ("user name", &self.user),
                ("server host name", &self.host),
                ("token", self.secret.expose()),
            ],
            '\x01',
        )?;
        let user = self.user.replace('=', "=3D").replace(',', "=2C");
        Ok(format!(
            "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
            self.host,
            self.port,
            self.secret.expose()
        )
        .into_bytes())
    }

    /// RFC 2195: "user " followed by the lowercase hex HMAC-MD5 of the challenge, keyed
    /// with the password.
    fn cram_md5(&self, challenge: &[u8]) -> Result<Vec<u8>, AuthError> {
        if challenge.is_empty() {
            return Err(AuthError::Malformed {
                mechanism: Mechanism::CramMd5,
                detail: "the challenge is empty".into(),
            });
        }
        Ok(cram_md5_message(
            &self.user,
            self.secret.expose(),
            challenge,
        ))
    }

    /// XOAUTH2 and OAUTHBEARER: an empty first challenge asks for the initial response
    /// again; anything else is the server's error report (JSON), answered with an empty
    /// line (XOAUTH2) or a lone ^A (OAUTHBEARER, RFC 7628 §3.2.3) so the server can end
    /// the exchange with its 5xx.
    fn oauth_challenge(&mut self, challenge: &[u8], step: u8) -> Result<String, AuthError> {
        let mechanism = self.mechanism;
        if challenge.is_empty() {
            if step != 0 {
                return Err(AuthError::UnexpectedChallenge { mechanism });
            }
            let message = match mechanism {
                Mechanism::XOAuth2 => self.xoauth2()?,
                _ => self.oauthbearer()?,
            };
            return Ok(STANDARD.encode(message));
        }
        self.record_server_error(challenge);
        Ok(match mechanism {
            Mechanism::XOAuth2 => String::new(),
            _ => STANDARD.encode(b"\x01"),
        })
    }

    /// SCRAM: server-first → client-final; server-final → empty response once verified.
    fn scram_challenge(&mut self, challenge: &[u8], step: u8) -> Result<String, AuthError> {
        let unexpected = AuthError::UnexpectedChallenge {
            mechanism: Mechanism::ScramSha256,
        };
        let Some(scram) = self.scram.as_mut() else {
            return Err(unexpected);
        };
        if scram.awaits_server_first() {
            let message = if challenge.is_empty() && step == 0 {
                // The server ignored the initial response: send client-first now.
                scram.client_first()?
            } else {
                scram.client_final(challenge)?
            };
            return Ok(STANDARD.encode(message));
        }
        if scram.awaits_server_final() {
            if let Some(error) = scram.verify_server_final(challenge)? {
                self.record_server_error(format!("e={error}").as_bytes());
            }
            return Ok(String::new());
        }
        Err(unexpected)
    }

    /// Error if any field holds `separator`.
    fn refuse(&self, fields: &[(&'static str, &str)], separator: char) -> Result<(), AuthError> {
        let character = match separator {
            '\0' => "a NUL character",
            _ => "a control character (^A)",
        };
        match fields.iter().find(|(_, value)| value.contains(separator)) {
            Some((field, _)) => Err(AuthError::Credential {
                mechanism: self.mechanism,
                field,
                character,
            }),
            None => Ok(()),
        }
    }
}

/// RFC 4616 message: "\0user\0password".
fn plain_message(user: &str, password: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(user.len() + password.len() + 2);
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.as_bytes());
    message
}

/// RFC 2195 response: "user hexdigest".
fn cram_md5_message(user: &str, password: &str, challenge: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail;
    // the fallback only keeps the code free of panics.
    let digest = match hmac::Hmac::<md5::Md5>::new_from_slice(password.as_bytes()) {
        Ok(mut mac) => {
            mac.update(challenge);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let mut message = format!("{user} ");
    for byte in digest {
        message.push_str(&format!("{byte:02x}"));
    }
    message.into_bytes()
}

fn names(mechanisms: &[Mechanism]) -> String {
    mechanisms
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Server- or user-supplied text in an error message: quoted, control characters escaped.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The offered list for an error message; server text, so control characters escaped.
fn list(offered: &[String]) -> String {
    if offered.is_empty() {
        return "none".to_string();
    }
    offered
        .iter()
        .map(|m| m.escape_debug().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mechanism::{CramMd5, Login, OAuthBearer, Plain, ScramSha256, XOAuth2};

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        STANDARD.encode(bytes)
    }

    fn exchange(mech: Mechanism, user: &str, secret: &str) -> Exchange {
        Exchange::new(mech, user, &Secret::new(secret), "smtp.example.test", 587)
    }

    #[test]
    fn rfc4616_plain_example() {
        // RFC 4616 §4: authcid "tim", password "tanstaaftanstaaf", no authzid.
        let mut ex = exchange(Plain, "tim", "tanstaaftanstaaf");
        assert_eq!(
            ex.initial_response().unwrap().as_deref(),
            Some("AHRpbQB0YW5zdGFhZnRhbnN0YWFm")
        );
        // A server that ignored it asks once with an empty challenge; never twice.
        assert_eq!(ex.respond("").unwrap(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(
            ex.respond(""),
            Err(AuthError::UnexpectedChallenge { mechanism: Plain })
        );
        assert_eq!(ex.finish(Some("2.7.0 Authentication successful")), Ok(()));
    }

    #[test]
    fn plain_and_login_payloads() {
        let cases = [
            ("", "", "AAA="),
            ("u", "p", "AHUAcA=="),
            (
                "user@example.test",
                "pässwörd",
                "AHVzZXJAZXhhbXBsZS50ZXN0AHDDpHNzd8O2cmQ=",
            ),
        ];
        for (user, password, expected) in cases {
            let mut ex = exchange(Plain, user, password);
            assert_eq!(ex.initial_response().unwrap().as_deref(), Some(expected));
            assert_eq!(
                STANDARD.decode(expected).unwrap(),
                format!("\0{user}\0{password}").into_bytes()
            );
        }
        let cases = [
            ("tim", "tanstaaf", "dGlt", "dGFuc3RhYWY="),
            (
                "user@example.test",
                "pass word!",
                "dXNlckBleGFtcGxlLnRlc3Q=",
                "cGFzcyB3b3JkIQ==",
            ),
            ("ü", "", "w7w=", ""),
        ];
        for (user, password, user_b64, password_b64) in cases {
            let mut ex = exchange(Login, user, password);
            assert_eq!(ex.initial_response().unwrap(), None);
            // The challenges' text does not matter (servers word them differently).
            assert_eq!(ex.respond("VXNlcm5hbWU6").unwrap(), user_b64);
            assert_eq!(ex.respond("UGFzc3dvcmQ6").unwrap(), password_b64);
            assert_eq!(
                ex.respond("UGFzc3dvcmQ6"),
                Err(AuthError::UnexpectedChallenge { mechanism: Login })
            );
            assert_eq!(ex.finish(None), Ok(()));
        }
    }

    /// RFC 7677 §3, the whole exchange as the session drives it.
    const RFC7677_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    /// One character of the signature changed.
    const WRONG_SERVER_FINAL: &str = "v=6sriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn scram_after_client_final() -> Exchange {
        let mut ex =
            Exchange::with_nonce(ScramSha256, "user", &Secret::new("pencil"), RFC7677_NONCE);
        assert_eq!(
            ex.initial_response().unwrap(),
            Some(b64(RFC7677_CLIENT_FIRST))
        );
        assert_eq!(
            ex.respond(&b64(RFC7677_SERVER_FIRST)).unwrap(),
            b64(RFC7677_CLIENT_FINAL)
        );
        ex
    }

    #[test]
    fn rfc7677_scram_sha256_exchange() {
        // Server-final in a 334, answered with an empty line, then 235.
        let mut ex = scram_after_client_final();
        assert_eq!(ex.respond(&b64(RFC7677_SERVER_FINAL)).unwrap(), "");
        assert_eq!(
            ex.respond(""),
            Err(AuthError::UnexpectedChallenge {
                mechanism: ScramSha256
            })
        );
        assert_eq!(ex.finish(Some("2.7.0 Authentication successful")), Ok(()));
    }

    #[test]
    fn scram_outcomes_at_235() {
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<(), AuthError>);
        let good = b64(RFC7677_SERVER_FINAL);
        let bad = b64(WRONG_SERVER_FINAL);
        let with_code = format!("2.7.0 {good}");
        let cases: Vec<Case> = vec![
            // (334 challenge after client-final, 235 text, outcome)
            (Some(&good), Some("2.7.0 Authentication successful"), Ok(())),
            (Some(&good), None, Ok(())),
            // Additional data with success: server-final in the 235 text.
            (None, Some(&good), Ok(())),
            (None, Some(&with_code), Ok(())),
            // Wrong signature: an error even though the server says 235.
            (None, Some(&bad), Err(AuthError::ScramSignature)),
            // No signature at all.
            (
                None,
                Some("2.7.0 Authentication successful"),
                Err(AuthError::ScramUnverified),
            ),
            (None, Some(""), Err(AuthError::ScramUnverified)),
            (None, None, Err(AuthError::ScramUnverified)),
        ];
        for (challenge, text, expected) in cases {
            let mut ex = scram_after_client_final();
            if let Some(challenge) = challenge {
                assert_eq!(ex.respond(challenge).unwrap(), "");
            }
            assert_eq!(ex.finish(text), expected, "{challenge:?} {text:?}");
        }
    }

    #[test]
    fn scram_wrong_server_signature_is_an_error() {
        let mut ex = scram_after_client_final();
        let err = ex.respond(&b64(WRONG_SERVER_FINAL)).unwrap_err();
        assert_eq!(err, AuthError::ScramSignature);
        assert_eq!(
            err.to_string(),
            "server's SCRAM signature is wrong: refusing (it does not know the password; \
             possibly an impostor)"
        );
        // Whatever the server says next, SCRAM is not verified.
        assert_eq!(ex.finish(Some("2.7.0 OK")), Err(AuthError::ScramUnverified));
    }

    #[test]
    fn scram_server_error_is_recorded_then_answered_empty() {
        let mut ex = scram_after_client_final();
        assert_eq!(ex.respond(&b64("e=invalid-proof")).unwrap(), "");
        assert_eq!(ex.server_error(), Some("e=invalid-proof"));
        assert!(ex.respond("").is_err());
        assert_eq!(ex.finish(Some("2.7.0 OK")), Err(AuthError::ScramUnverified));
    }

    #[test]
    fn scram_without_initial_response_taken() {
        // An empty first challenge: send client-first again, then go on as usual.
        let mut ex =
            Exchange::with_nonce(ScramSha256, "user", &Secret::new("pencil"), RFC7677_NONCE);
        ex.initial_response().unwrap();
        assert_eq!(ex.respond("").unwrap(), b64(RFC7677_CLIENT_FIRST));
        assert_eq!(
            ex.respond(&b64(RFC7677_SERVER_FIRST)).unwrap(),
            b64(RFC7677_CLIENT_FINAL)
        );
        assert_eq!(ex.respond(&b64(RFC7677_SERVER_FINAL)).unwrap(), "");
        assert_eq!(ex.finish(None), Ok(()));
        // Before any initial response there is no SCRAM state: 235 proves nothing.
        let mut ex = exchange(ScramSha256, "user", "pencil");
        assert_eq!(ex.finish(None), Err(AuthError::ScramUnverified));
    }

    #[test]
    fn scram_random_nonce_is_used() {
        let mut ex = exchange(ScramSha256, "user", "pencil");
        let first = STANDARD
            .decode(ex.initial_response().unwrap().unwrap())
            .unwrap();
        let first = String::from_utf8(first).unwrap();
        let nonce = first.strip_prefix("n,,n=user,r=").unwrap();
        assert_eq!(STANDARD.decode(nonce).unwrap().len(), scram::NONCE_BYTES);
        // The server must extend that nonce, not the RFC's.
        assert_eq!(
            ex.respond(&b64(RFC7677_SERVER_FIRST)),
            Err(AuthError::ScramNonce)
        );
    }

    #[test]
    fn rfc2195_cram_md5_example() {
        let mut ex = exchange(CramMd5, "tim", "tanstaaftanstaaf");
        assert_eq!(ex.initial_response().unwrap(), None);
        let challenge = b64("<1896.697170952@postoffice.reston.mci.net>");
        assert_eq!(
            challenge,
            "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
        );
        assert_eq!(
            ex.respond(&challenge).unwrap(),
            b64("tim b913a602c7eda7a495b4e6e7334d3890")
        );
        assert_eq!(
            ex.respond(&challenge),
            Err(AuthError::UnexpectedChallenge { mechanism: CramMd5 })
        );
        assert_eq!(ex.finish(None), Ok(()));
        // Unpadded base64 is read too; an empty challenge is refused.
        let mut ex = exchange(CramMd5, "tim", "tanstaaftanstaaf");
        assert_eq!(
            ex.respond(challenge.trim_end_matches('=')).unwrap(),
            b64("tim b913a602c7eda7a495b4e6e7334d3890")
        );
        let mut ex = exchange(CramMd5, "tim", "tanstaaftanstaaf");
        assert_eq!(
            ex.respond(""),
            Err(AuthError::Malformed {
                mechanism: CramMd5,
                detail: "the challenge is empty".into()
            })
        );
    }

    #[test]
    fn xoauth2_initial_response_and_error() {
        // Google's documented example: user=someuser@example.com, token ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg
        let mut ex = exchange(
            XOAuth2,
            "someuser@example.com",
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
        );
        assert_eq!(
            ex.initial_response().unwrap().unwrap(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        // Empty challenge: the server wants the response now.
        assert_eq!(
            STANDARD.decode(ex.respond("").unwrap()).unwrap(),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // Error JSON: answered with an empty line, remembered for the 5xx that follows.
        let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(ex.respond(&b64(json)).unwrap(), "");
        assert_eq!(
            ex.server_error(),
            Some(
                r#"{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"}"#
            )
        );
        assert_eq!(
            ex.respond(&b64(json)),
            Err(AuthError::UnexpectedChallenge { mechanism: XOAuth2 })
        );
    }

    #[test]
    fn rfc7628_oauthbearer_initial_response_and_error() {
        // RFC 7628 §4.1.
        let mut ex = Exchange::new(
            OAuthBearer,
            "user@example.com",
            &Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
            "server.example.com",
            143,
        );
        assert_eq!(
            ex.initial_response().unwrap().unwrap(),
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
        );
        // RFC 7628 §4.3: the error challenge, answered with a lone ^A ("AQ==").
        let error = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";
        assert_eq!(ex.respond(error).unwrap(), "AQ==");
        assert_eq!(
            ex.server_error(),
            Some(
                r#"{\"status\":\"invalid_token\",\"scope\":\"example_scope\",\"openid-configuration\":\"https://example.com/.well-known/openid-configuration\"}"#
            )
        );
        assert!(ex.respond(error).is_err());
        assert_eq!(ex.finish(None), Ok(()));
        // The gs2 user name is a saslname: '=' and ',' escaped.
        let mut ex = Exchange::new(OAuthBearer, "a,b=c", &Secret::new("t"), "h", 587);
        let ir = STANDARD
            .decode(ex.initial_response().unwrap().unwrap())
            .unwrap();
        assert_eq!(
            ir,
            b"n,a=a=2Cb=3Dc,\x01host=h\x01port=587\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn separators_in_credentials_are_refused() {
        let cases = [
            (Plain, "us\0er", "Zq9x", "the user name cannot be sent with AUTH PLAIN: it contains a NUL character"),
            (Plain, "user", "Zq\0x", "the password cannot be sent with AUTH PLAIN: it contains a NUL character"),
            (XOAuth2, "u\x01", "Zq9x", "the user name cannot be sent with AUTH XOAUTH2: it contains a control character (^A)"),
            (XOAuth2, "u", "Zq\x01auth=x", "the token cannot be sent with AUTH XOAUTH2: it contains a control character (^A)"),
            (OAuthBearer, "u", "Zq9\x01", "the token cannot be sent with AUTH OAUTHBEARER: it contains a control character (^A)"),
        ];
        for (mech, user, secret, message) in cases {
            let mut ex = exchange(mech, user, secret);
            let err = ex.initial_response().unwrap_err();
            assert_eq!(err.to_string(), message);
            assert!(!err.to_string().contains(secret));
            assert!(matches!(Error::from(err), Error::Config(_)));
        }
        let mut ex = Exchange::new(OAuthBearer, "u", &Secret::new("t"), "h\x01", 1);
        assert!(matches!(
            ex.initial_response(),
            Err(AuthError::Credential {
                field: "server host name",
                ..
            })
        ));
    }

    #[test]
    fn challenges_that_are_not_base64() {
        for mech in [Plain, Login, CramMd5, XOAuth2, OAuthBearer, ScramSha256] {
            let mut ex = Exchange::with_nonce(mech, "u", &Secret::new("p"), "N");
            ex.initial_response().unwrap();
            assert_eq!(
                ex.respond("not base64!"),
                Err(AuthError::Malformed {
                    mechanism: mech,
                    detail: "not base64".into()
                }),
                "{mech}"
            );
        }
    }

    #[test]
    fn every_exchange_ends() {
        // Whatever a server keeps sending, each mechanism errors after a few challenges,
        // so the session's loop cannot run forever.
        for mech in ALL {
            for challenge in ["", "dGVzdA==", &b64(RFC7677_SERVER_FIRST)] {
                let mut ex =
                    Exchange::with_nonce(mech, "user", &Secret::new("pencil"), RFC7677_NONCE);
                ex.initial_response().unwrap();
                let answered = (0..10)
                    .take_while(|_| ex.respond(challenge).is_ok())
                    .count();
                assert!(answered <= 3, "{mech} {challenge}: {answered}");
            }
        }
    }

    #[test]
    fn error_exit_codes() {
        use crate::error::Exit;
        let mal = AuthError::Malformed {
            mechanism: CramMd5,
            detail: "x".into(),
        };
        let cases = [
            (mal, Exit::Protocol),
            (
                AuthError::UnexpectedChallenge { mechanism: Login },
                Exit::Protocol,
            ),
            (AuthError::ScramNonce, Exit::Unavailable),
            (AuthError::ScramIterations(1), Exit::Unavailable),
            (AuthError::ScramSignature, Exit::Unavailable),
            (AuthError::ScramUnverified, Exit::Unavailable),
            (AuthError::Random, Exit::IoErr),
        ];
        for (err, exit) in cases {
            let text = err.to_string();
            let err = Error::from(err);
            assert_eq!(err.exit(), exit, "{text}");
            assert_eq!(err.to_string(), text);
        }
        assert_eq!(
            AuthError::ScramIterations(5).to_string(),
            "the server asks for 5 SCRAM iterations; postie accepts 4096 to 1000000: refusing"
        );
    }

    #[test]
    fn names_and_parsing() {
        for (text, expected) in [
            ("PLAIN", Plain),
            ("plain", Plain),
            ("Login", Login),
            ("SCRAM-SHA-256", ScramSha256),
            ("scram-sha-256", ScramSha256),
            ("cram-md5", CramMd5),
            ("CRAM-MD5", CramMd5),
            ("xoauth2", XOAuth2),
            ("OAuthBearer", OAuthBearer),
        ] {
            assert_eq!(text.parse::<Mechanism>(), Ok(expected));
            assert_eq!(expected.name().parse::<Mechanism>(), Ok(expected));
            assert_eq!(expected.to_string(), expected.name());
        }
        for bad in [
            "",
            "plain ",
            "SCRAM-SHA-1",
            "SCRAM-SHA-256-PLUS",
            "DIGEST-MD5",
            "XOAUTH",
        ] {
            assert_eq!(
                bad.parse::<Mechanism>(),
                Err(format!(
                    "unsupported AUTH mechanism \"{bad}\" (supported: SCRAM-SHA-256, PLAIN, \
                     LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER)"
                ))
            );
        }
    }

    #[test]
    fn choose_table() {
        type Case<'a> = (&'a [&'a str], Option<Mechanism>, Result<Mechanism, &'a str>);
        let cases: &[Case] = &[
            // Automatic: SCRAM-SHA-256 > PLAIN > LOGIN, whatever the server's order or case.
            (&["PLAIN", "LOGIN"], None, Ok(Plain)),
            (&["LOGIN", "PLAIN"], None, Ok(Plain)),
            (&["LOGIN"], None, Ok(Login)),
            (&["plain"], None, Ok(Plain)),
            (&["PLAIN", "LOGIN", "SCRAM-SHA-256"], None, Ok(ScramSha256)),
            (&["scram-sha-256", "login"], None, Ok(ScramSha256)),
            (
                &["SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "LOGIN"],
                None,
                Ok(Login),
            ),
            // Never CRAM-MD5 or the OAuth ones unasked, even when they are all there is
            // besides a weaker choice.
            (&["CRAM-MD5", "login"], None, Ok(Login)),
            (&["XOAUTH2", "OAUTHBEARER", "LOGIN"], None, Ok(Login)),
            (
                &["CRAM-MD5"],
                None,
                Err(
                    "server offers no AUTH mechanism postie uses unasked (offered: CRAM-MD5); \
                     name one with --auth to use CRAM-MD5",
                ),
            ),
            (
                &["XOAUTH2", "DIGEST-MD5", "OAUTHBEARER"],
                None,
                Err(
                    "server offers no AUTH mechanism postie uses unasked (offered: XOAUTH2, \
                     DIGEST-MD5, OAUTHBEARER); name one with --auth to use XOAUTH2, \
                     OAUTHBEARER (XOAUTH2 and OAUTHBEARER take an OAuth token as the password)",
                ),
            ),
            (
                &["DIGEST-MD5", "NTLM"],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: DIGEST-MD5, NTLM)"),
            ),
            (
                &[],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: none)"),
            ),
            (
                &["X\u{1b}[31m"],
                None,
                Err("server offers no AUTH mechanism postie supports (offered: X\\u{1b}[31m)"),
            ),
            // Forced: must be offered, whatever its strength.
            (&["PLAIN", "LOGIN", "SCRAM-SHA-256"], Some(Login), Ok(Login)),
            (&["PLAIN", "SCRAM-SHA-256"], Some(Plain), Ok(Plain)),
            (&["SCRAM-SHA-256", "CRAM-MD5"], Some(CramMd5), Ok(CramMd5)),
            (&["xoauth2"], Some(XOAuth2), Ok(XOAuth2)),
            (
                &["PLAIN", "OAUTHBEARER"],
                Some(OAuthBearer),
                Ok(OAuthBearer),
            ),
            (&["SCRAM-SHA-256"], Some(ScramSha256), Ok(ScramSha256)),
            (
                &["PLAIN"],
                Some(Login),
                Err("server does not offer AUTH LOGIN (offered: PLAIN)"),
            ),
            (
                &[],
                Some(Plain),
                Err("server does not offer AUTH PLAIN (offered: none)"),
            ),
            (
                &["PLAIN", "LOGIN"],
                Some(ScramSha256),
                Err("server does not offer AUTH SCRAM-SHA-256 (offered: PLAIN, LOGIN)"),
            ),
            (
                &["SCRAM-SHA-256-PLUS"],
                Some(ScramSha256),
                Err("server does not offer AUTH SCRAM-SHA-256 (offered: SCRAM-SHA-256-PLUS)"),
            ),
            (
                &["XOAUTH"],
                Some(XOAuth2),
                Err("server does not offer AUTH XOAUTH2 (offered: XOAUTH)"),
            ),
        ];
        for (offered, forced, expected) in cases {
            let offered: Vec<String> = offered.iter().map(|s| s.to_string()).collect();
            let expected = expected.map_err(str::to_string);
            assert_eq!(
                choose(&offered, *forced),
                expected,
                "{offered:?} {forced:?}"
            );
        }
    }
}
