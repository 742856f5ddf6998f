//! The client side of SCRAM-SHA-256 (RFC 5802 §3, §5, §7; RFC 7677): the three messages,
//! the key derivation and the check of the server's signature.
//!
//! This module owns the SCRAM arithmetic and the parsing of the server's messages; the
//! SASL framing (base64, which SMTP reply carries what) belongs to [`super::auth`]. It does
//! no I/O and never formats the password, a derived key or a proof into a string that
//! could be shown. All hashing is ring's (PBKDF2-HMAC-SHA-256, HMAC-SHA-256, SHA-256);
//! nothing is hand-rolled. Everything the server sends is untrusted: the nonce must extend
//! ours, the iteration count is bounded, and a wrong or missing server signature is an
//! error even when the server then says 235, because only the signature proves that the
//! server knows the password (RFC 5802 §9: a server without it is an impostor).
//!
//! Not supported: channel binding (the gs2 header is always "n,,", RFC 5802 §6), an
//! authorization identity, and SASLprep of the user name (sent as typed, escaped per
//! RFC 5802 §5.1; servers such as Dovecot and Cyrus look the name up as sent).

use std::borrow::Cow;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

use crate::secret::Secret;
use crate::smtp::auth::{AuthError, Mechanism};

/// The gs2 header: no channel binding, no authorization identity (RFC 5802 §7).
const GS2_HEADER: &str = "n,,";

/// Fewest iterations accepted: RFC 7677 §4 says the count SHOULD be at least 4096, and a
/// lower one lets whoever records the exchange guess the password cheaply.
pub(super) const MIN_ITERATIONS: u32 = 4096;

/// Most iterations accepted. Each iteration is one HMAC-SHA-256 on our CPU before we know
/// whether the server is genuine, so an unbounded count lets a hostile or broken server
/// hang postie (four billion iterations take hours). Real servers use 4096 to ~100 000.
pub(super) const MAX_ITERATIONS: u32 = 1_000_000;

/// Length of the random part of our nonce, in bytes, before base64 (RFC 5802 §5.1 asks
/// for enough randomness; 24 bytes give 32 printable characters).
pub(super) const NONCE_BYTES: usize = 24;

/// Where the exchange stands.
enum Step {
    /// client-first not yet built.
    Start,
    /// client-first sent; waiting for server-first.
    SentFirst,
    /// client-final sent; waiting for server-final, which must carry this signature.
    SentFinal {
        server_key: hmac::Key,
        auth_message: String,
    },
    /// The server proved it knows the password.
    Verified,
}

/// One SCRAM-SHA-256 exchange as a client. No `Debug`: it holds the password.
pub(super) struct Scram {
    /// The user name, escaped for the `n=` attribute.
    user: String,
    password: Secret,
    /// Our nonce (printable, no comma).
    nonce: String,
    step: Step,
}

impl Scram {
    /// `nonce` must be printable ASCII without commas (see [`random_nonce`]).
    pub(super) fn new(user: &str, password: &Secret, nonce: String) -> Scram {
        Scram {
            user: escape_username(user),
            password: password.clone(),
            nonce,
            step: Step::Start,
        }
    }

    /// "n=user,r=nonce": the part of client-first that enters the AuthMessage.
    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// client-first-message (RFC 5802 §7): "n,,n=user,r=nonce". Asking again before the
    /// server answered gives the same message (a server that ignored the initial response).
    pub(super) fn client_first(&mut self) -> Result<String, AuthError> {
        match self.step {
            Step::Start | Step::SentFirst => {
                self.step = Step::SentFirst;
                Ok(format!("{GS2_HEADER}{}", self.client_first_bare()))
            }
            _ => Err(unexpected()),
        }
    }

    /// True once client-first was produced and server-first has not arrived yet.
    pub(super) fn awaits_server_first(&self) -> bool {
        matches!(self.step, Step::SentFirst)
    }

    /// Takes server-first-message, returns client-final-message with the proof.
    pub(super) fn client_final(&mut self, server_first: &[u8]) -> Result<String, AuthError> {
        if !self.awaits_server_first() {
            return Err(unexpected());
        }
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| malformed("server-first-message is not UTF-8"))?;
        let first = ServerFirst::parse(server_first)?;
        if !first.nonce.starts_with(&self.nonce) || first.nonce.len() <= self.nonce.len() {
            return Err(AuthError::ScramNonce);
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&first.iterations) {
            return Err(AuthError::ScramIterations(first.iterations));
        }
        let iterations = NonZeroU32::new(first.iterations).ok_or_else(|| malformed("i=0"))?;

        let password = normalize(self.password.expose());
        let mut salted = [0u8; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &first.salt,
            password.as_bytes(),
            &mut salted,
        );
        let salted = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let server_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&salted, b"Server Key").as_ref(),
        );

        let without_proof = format!("c={},r={}", STANDARD.encode(GS2_HEADER), first.nonce);
        let auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();

        self.step = Step::SentFinal {
            server_key,
            auth_message,
        };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// True while server-final-message is awaited.
    pub(super) fn awaits_server_final(&self) -> bool {
        matches!(self.step, Step::SentFinal { .. })
    }

    /// Checks server-final-message. `Ok(None)`: the signature is right. `Ok(Some(e))`: the
    /// server reported an error (`e=...`, RFC 5802 §7), which is not verification; the
    /// caller lets the server finish with its negative reply. `Err`: wrong signature or
    /// nonsense.
    pub(super) fn verify_server_final(
        &mut self,
        server_final: &[u8],
    ) -> Result<Option<String>, AuthError> {
        let Step::SentFinal {
            server_key,
            auth_message,
        } = &self.step
        else {
            return Err(unexpected());
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| malformed("server-final-message is not UTF-8"))?;
        // server-final-message = (server-error / verifier) ["," extensions]
        let first = text.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Ok(Some(error.to_string()));
        }
        let verifier = first
            .strip_prefix("v=")
            .ok_or_else(|| malformed("server-final-message has neither v= nor e="))?;
        let signature = STANDARD
            .decode(verifier)
            .map_err(|_| malformed("the server signature is not base64"))?;
        hmac::verify(server_key, auth_message.as_bytes(), &signature)
            .map_err(|_| AuthError::ScramSignature)?;
        self.step = Step::Verified;
        Ok(None)
    }

    /// True once the server's signature was checked and found right.
    pub(super) fn is_verified(&self) -> bool {
        matches!(self.step, Step::Verified)
    }
}

/// A fresh nonce: [`NONCE_BYTES`] from the system's CSPRNG, base64 (printable, no comma).
pub(super) fn random_nonce() -> Result<String, AuthError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; NONCE_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Random)?;
    Ok(STANDARD.encode(bytes))
}

/// server-first-message, parsed (RFC 5802 §7).
#[derive(Debug, PartialEq, Eq)]
struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

impl ServerFirst {
    /// `[m=ext,]r=nonce,s=salt,i=count[,extensions]`, attributes in that order.
    fn parse(text: &str) -> Result<ServerFirst, AuthError> {
        let mut attrs = text.split(',');
        let mut next = |name: &str| -> Result<&str, AuthError> {
            let attr = attrs.next().unwrap_or_default();
            if attr.starts_with("m=") {
                return Err(malformed(
                    "the server demands a SCRAM extension postie does not know (m=)",
                ));
            }
            attr.strip_prefix(name)
                .ok_or_else(|| malformed(format!("server-first-message lacks {name}")))
        };
        let nonce = next("r=")?;
        let salt = next("s=")?;
        let iterations = next("i=")?;
        // printable = %x21-2B / %x2D-7E (RFC 5802 §7): no comma, no space, ASCII.
        if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(malformed("the server nonce has characters SCRAM forbids"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| malformed("the salt is not base64"))?;
        if salt.is_empty() {
            return Err(malformed("the salt is empty"));
        }
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("the iteration count is not a number"));
        }
        // Digits only, so the only failure left is overflow: beyond any bound we accept.
        let iterations = iterations.parse::<u32>().unwrap_or(u32::MAX);
        Ok(ServerFirst {
            nonce: nonce.to_string(),
            salt,
            iterations,
        })
    }
}

/// The user name as a SCRAM saslname: "=" becomes "=3D" and "," becomes "=2C"
/// (RFC 5802 §5.1), so it cannot end the attribute early.
fn escape_username(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Normalize(password) of RFC 5802 §2.2: SASLprep (RFC 4013) via the `stringprep` crate.
/// ASCII passwords without control characters come back unchanged. A password that
/// SASLprep refuses (control characters, unassigned code points) is used as typed, as
/// PostgreSQL's libpq does: many servers (Dovecot among them) never SASLprep the stored
/// password, so refusing would lock out a user whose password works there.
fn normalize(password: &str) -> Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password))
}

fn malformed(detail: impl Into<String>) -> AuthError {
    AuthError::Malformed {
        mechanism: Mechanism::ScramSha256,
        detail: detail.into(),
    }
}

fn unexpected() -> AuthError {
    AuthError::UnexpectedChallenge {
        mechanism: Mechanism::ScramSha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil", client nonce "rOprNGfwEbeRWgbNEkqO".
    const RFC7677_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677() -> Scram {
        Scram::new("user", &Secret::new("pencil"), RFC7677_NONCE.into())
    }

    #[test]
    fn rfc7677_exchange() {
        let mut scram = rfc7677();
        assert_eq!(
            scram.client_first().unwrap(),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        // Asked again before server-first: the same bytes.
        assert_eq!(
            scram.client_first().unwrap(),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        assert_eq!(
            scram.client_final(RFC7677_SERVER_FIRST.as_bytes()).unwrap(),
            RFC7677_CLIENT_FINAL
        );
        assert!(scram.awaits_server_final() && !scram.is_verified());
        assert_eq!(
            scram.verify_server_final(RFC7677_SERVER_FINAL.as_bytes()),
            Ok(None)
        );
        assert!(scram.is_verified());
        // Nothing more is expected.
        assert!(scram.client_first().is_err());
        assert!(scram.client_final(RFC7677_SERVER_FIRST.as_bytes()).is_err());
        assert!(scram
            .verify_server_final(RFC7677_SERVER_FINAL.as_bytes())
            .is_err());
    }

    #[test]
    fn server_final_outcomes() {
        // Same length, one bit off; another key's signature; garbage; an error report.
        let cases: &[(&str, Result<Option<String>, AuthError>)] = &[
            (RFC7677_SERVER_FINAL, Ok(None)),
            (
                "v=6sriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                Err(AuthError::ScramSignature),
            ),
            (
                "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                Err(AuthError::ScramSignature),
            ),
            ("v=", Err(AuthError::ScramSignature)),
            (
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=ext",
                Ok(None),
            ),
            ("e=invalid-proof", Ok(Some("invalid-proof".into()))),
            ("e=other-error,x=1", Ok(Some("other-error".into()))),
            (
                "v=!!!",
                Err(malformed("the server signature is not base64")),
            ),
            (
                "",
                Err(malformed("server-final-message has neither v= nor e=")),
            ),
            (
                RFC7677_SERVER_FIRST,
                Err(malformed("server-final-message has neither v= nor e=")),
            ),
        ];
        for (server_final, expected) in cases {
            let mut scram = rfc7677();
            scram.client_first().unwrap();
            scram.client_final(RFC7677_SERVER_FIRST.as_bytes()).unwrap();
            assert_eq!(
                &scram.verify_server_final(server_final.as_bytes()),
                expected,
                "{server_final}"
            );
            assert_eq!(scram.is_verified(), expected == &Ok(None), "{server_final}");
        }
    }

    #[test]
    fn server_first_is_checked() {
        let m = |s: &str| Err(malformed(s));
        let cases: &[(&str, Result<(), AuthError>)] = &[
            (RFC7677_SERVER_FIRST, Ok(())),
            // Extensions after i= are ignored.
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=4096,x=y",
                Ok(()),
            ),
            // The nonce must extend ours, strictly.
            (
                "r=rOprNGfwEbeRWgbNEkqO,s=QSXCR+Q6sek8bf92,i=4096",
                Err(AuthError::ScramNonce),
            ),
            (
                "r=XOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=4096",
                Err(AuthError::ScramNonce),
            ),
            (
                "r=srv,s=QSXCR+Q6sek8bf92,i=4096",
                Err(AuthError::ScramNonce),
            ),
            // Iteration bounds.
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=4095",
                Err(AuthError::ScramIterations(4095)),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=1000001",
                Err(AuthError::ScramIterations(1_000_001)),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=99999999999",
                Err(AuthError::ScramIterations(u32::MAX)),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=0",
                Err(AuthError::ScramIterations(0)),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=-1",
                m("the iteration count is not a number"),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=",
                m("the iteration count is not a number"),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=+4096",
                m("the iteration count is not a number"),
            ),
            // Malformed messages.
            (
                "m=ext,r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92,i=4096",
                m("the server demands a SCRAM extension postie does not know (m=)"),
            ),
            ("", m("server-first-message lacks r=")),
            (
                "s=QSXCR+Q6sek8bf92,r=rOprNGfwEbeRWgbNEkqOsrv,i=4096",
                m("server-first-message lacks r="),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,i=4096",
                m("server-first-message lacks s="),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=QSXCR+Q6sek8bf92",
                m("server-first-message lacks i="),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqO s,s=QSXCR+Q6sek8bf92,i=4096",
                m("the server nonce has characters SCRAM forbids"),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOé,s=QSXCR+Q6sek8bf92,i=4096",
                m("the server nonce has characters SCRAM forbids"),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=not base64,i=4096",
                m("the salt is not base64"),
            ),
            (
                "r=rOprNGfwEbeRWgbNEkqOsrv,s=,i=4096",
                m("the salt is empty"),
            ),
        ];
        for (server_first, expected) in cases {
            let mut scram = rfc7677();
            scram.client_first().unwrap();
            let got = scram.client_final(server_first.as_bytes()).map(drop);
            assert_eq!(&got, expected, "{server_first}");
            // A refused server-first leaves nothing to verify.
            assert!(!scram.is_verified());
        }
        let mut scram = rfc7677();
        scram.client_first().unwrap();
        assert_eq!(
            scram.client_final(b"r=\xff,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(malformed("server-first-message is not UTF-8"))
        );
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut scram = rfc7677();
        assert_eq!(
            scram.client_final(RFC7677_SERVER_FIRST.as_bytes()),
            Err(unexpected())
        );
        assert_eq!(
            scram.verify_server_final(RFC7677_SERVER_FINAL.as_bytes()),
            Err(unexpected())
        );
        scram.client_first().unwrap();
        assert_eq!(
            scram.verify_server_final(RFC7677_SERVER_FINAL.as_bytes()),
            Err(unexpected())
        );
    }

    #[test]
    fn user_names_are_escaped() {
        for (user, expected) in [
            ("user", "n,,n=user,r=N"),
            ("a=b", "n,,n=a=3Db,r=N"),
            ("a,b", "n,,n=a=2Cb,r=N"),
            ("=,=", "n,,n==3D=2C=3D,r=N"),
            ("=2C", "n,,n==3D2C,r=N"),
            ("jürgen@example.test", "n,,n=jürgen@example.test,r=N"),
        ] {
            let mut scram = Scram::new(user, &Secret::new("p"), "N".into());
            assert_eq!(scram.client_first().unwrap(), expected, "{user}");
        }
    }

    #[test]
    fn passwords_are_saslprepped() {
        for (password, expected) in [
            ("pencil", "pencil"),
            ("pass word!", "pass word!"),
            // RFC 4013 §3 examples: soft hyphen mapped to nothing, NBSP to space,
            // ROMAN NUMERAL NINE (NFKC) to "IX".
            ("I\u{00AD}X", "IX"),
            ("a\u{00A0}b", "a b"),
            ("\u{2168}", "IX"),
            ("\u{00AA}", "a"),
            // Refused by SASLprep (control character): used as typed.
            ("tab\there", "tab\there"),
            ("bell\u{7}", "bell\u{7}"),
        ] {
            assert_eq!(normalize(password), expected, "{password:?}");
        }
    }

    #[test]
    fn normalized_password_changes_the_proof() {
        // "I\u{AD}X" and "IX" are the same password after SASLprep; "IY" is not.
        let proof = |password: &str| {
            let mut scram = Scram::new("user", &Secret::new(password), RFC7677_NONCE.into());
            scram.client_first().unwrap();
            scram.client_final(RFC7677_SERVER_FIRST.as_bytes()).unwrap()
        };
        assert_eq!(proof("I\u{00AD}X"), proof("IX"));
        assert_ne!(proof("IY"), proof("IX"));
    }

    #[test]
    fn random_nonces_are_long_printable_and_fresh() {
        let a = random_nonce().unwrap();
        let b = random_nonce().unwrap();
        assert_ne!(a, b);
        for nonce in [&a, &b] {
            assert_eq!(nonce.len(), 32);
            assert_eq!(STANDARD.decode(nonce).unwrap().len(), NONCE_BYTES);
            assert!(nonce
                .bytes()
                .all(|c| (0x21..=0x7e).contains(&c) && c != b','));
        }
    }
}
