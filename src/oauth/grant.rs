//! The OAuth 2.0 grants postie runs against an authorization server: the device
//! authorization grant (RFC 8628), the authorization code grant with PKCE (RFC 7636) and a
//! loopback redirect (RFC 8252 §7.3), and the refresh grant (RFC 6749 §6); and how their
//! answers read (RFC 6749 §5.1 tokens, §5.2 errors).
//!
//! Must not: print a code, a token or a secret (only the user code and the addresses the
//! user must open are printed); accept a redirect whose `state` is not the one sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde_json::Value;

use super::store::Kept;
use super::{now, Registration};
use crate::error::Error;
use crate::http::{Client, Response};
use crate::secret::Secret;
use crate::settings::OAuthProvider;

/// How long the browser flow waits for the redirect.
const BROWSER_WAIT: Duration = Duration::from_secs(300);
/// Longest provider error text kept for a message.
const ERROR_TEXT_MAX: usize = 300;

/// A token endpoint's answer: tokens (RFC 6749 §5.1) or an error (§5.2).
enum Answer {
    Tokens(Kept),
    Refused { error: String, description: String },
}

/// Printable text from an answer, control characters dropped, cut at [`ERROR_TEXT_MAX`].
fn words(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(ERROR_TEXT_MAX) {
        Some((i, _)) => format!("{}...", &clean[..i]),
        None => clean,
    }
}

/// Read a token endpoint's answer. `previous_refresh` is kept when a refresh answer
/// brings no new refresh token (RFC 6749 §6: the server may keep the old one valid).
fn answer(
    reg: &Registration,
    response: &Response,
    previous_refresh: Option<&Secret>,
) -> Result<Answer> {
    let json: Value = serde_json::from_str(&response.body).map_err(|_| {
        Error::Protocol(format!(
            "the token endpoint {} answered HTTP {} without JSON",
            reg.token_url, response.status
        ))
    })?;
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(error) = text("error") {
        return Ok(Answer::Refused {
            error: words(&error),
            description: text("error_description")
                .map(|d| words(&d))
                .unwrap_or_default(),
        });
    }
    let Some(access) = text("access_token").filter(|t| !t.is_empty()) else {
        return Err(Error::Protocol(format!(
            "the token endpoint {} answered HTTP {} with neither a token nor an error",
            reg.token_url, response.status
        ))
        .into());
    };
    if !(200..300).contains(&response.status) {
        return Err(Error::Protocol(format!(
            "the token endpoint {} sent a token with HTTP {}",
            reg.token_url, response.status
        ))
        .into());
    }
    // Some servers send expires_in as a string.
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let refresh = text("refresh_token")
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .or_else(|| previous_refresh.cloned());
    let obtained = now();
    Ok(Answer::Tokens(Kept::new(
        &reg.account,
        reg.provider_name(),
        &reg.client_id,
        &Secret::new(access),
        refresh.as_ref(),
        expires_in.map(|s| obtained.saturating_add(s)),
        text("scope").unwrap_or_else(|| reg.scopes.join(" ")),
        obtained,
    )))
}

/// The refused answer of a login as an error: a denial is EX_NOPERM, anything else the
/// provider's words.
fn refused(reg: &Registration, what: &str, error: &str, description: &str) -> anyhow::Error {
    let detail = if description.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {description}")
    };
    Error::NoPerm(format!(
        "account {}: {} refused the {what} ({detail})",
        reg.account,
        reg.provider_name()
    ))
    .into()
}

/// The client's own parameters for a token request: its id, and its secret if it has one.
fn client_params<'a>(reg: &'a Registration, form: &mut Vec<(&'a str, &'a str)>) {
    form.push(("client_id", &reg.client_id));
    if let Some(s) = &reg.client_secret {
        form.push(("client_secret", s.expose()));
    }
}

/// Refresh the access token with the kept refresh token (RFC 6749 §6). A refresh token the
/// server no longer accepts is EX_NOPERM, naming the login to run.
pub fn refresh(reg: &Registration, http: &Client, kept: &Kept) -> Result<Kept> {
    let Some(refresh) = kept.refresh_token() else {
        return Err(Error::NoPerm(format!(
            "account {}: the access token has expired and no refresh token is kept: {}",
            reg.account,
            reg.login_hint()
        ))
        .into());
    };
    let scope = reg.scopes.join(" ");
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose()),
    ];
    client_params(reg, &mut form);
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let response = http.post_form(&reg.token_url, "the token endpoint", &form)?;
    match answer(reg, &response, Some(&refresh))? {
        Answer::Tokens(new) => Ok(new),
        Answer::Refused { error, description } => {
            let detail = if description.is_empty() {
                error.clone()
            } else {
                format!("{error}: {description}")
            };
            if error == "invalid_grant" {
                Err(Error::NoPerm(format!(
                    "account {}: {} no longer accepts the refresh token ({detail}): {}",
                    reg.account,
                    reg.provider_name(),
                    reg.login_hint()
                ))
                .into())
            } else if error == "invalid_client" || error == "unauthorized_client" {
                Err(Error::Config(format!(
                    "account {}: {} refused the client ({detail}): check client_id and \
                     client_secret",
                    reg.account,
                    reg.provider_name()
                ))
                .into())
            } else {
                Err(refused(reg, "token refresh", &error, &description))
            }
        }
    }
}

/// The device authorization grant (RFC 8628): ask for a user code, tell the user where to
/// enter it, and poll until they have signed in, declined, or the code expired. `say`
/// receives the lines for the user.
pub fn device(reg: &Registration, http: &Client, say: &mut dyn Write) -> Result<Kept> {
    if reg.provider == OAuthProvider::Google {
        return Err(Error::Config(format!(
            "account {}: Google does not allow its mail scope in the device flow: use \
             `postie oauth login {} --browser`",
            reg.account, reg.account
        ))
        .into());
    }
    let Some(device_url) = &reg.device_url else {
        return Err(Error::Config(format!(
            "account {}: [account.{}.oauth] needs device_url for the device flow (or use \
             --browser)",
            reg.account, reg.account
        ))
        .into());
    };
    let scope = reg.scopes.join(" ");
    let mut form = Vec::new();
    client_params(reg, &mut form);
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let response = http.post_form(device_url, "the device authorization endpoint", &form)?;
    let json: Value = serde_json::from_str(&response.body).map_err(|_| {
        Error::Protocol(format!(
            "the device authorization endpoint {device_url} answered HTTP {} without JSON",
            response.status
        ))
    })?;
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(error) = text("error") {
        let description = text("error_description")
            .map(|d| words(&d))
            .unwrap_or_default();
        return Err(refused(reg, "device login", &words(&error), &description));
    }
    let number = |k: &str| match json.get(k) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let (Some(device_code), Some(user_code), Some(verify)) = (
        text("device_code"),
        text("user_code"),
        // Google spells it verification_url.
        text("verification_uri").or_else(|| text("verification_url")),
    ) else {
        return Err(Error::Protocol(format!(
            "the device authorization endpoint {device_url} answered without device_code, \
             user_code and verification_uri"
        ))
        .into());
    };
    let device_code = Secret::new(device_code);
    let expires_in = number("expires_in").unwrap_or(600);
    // RFC 8628 §3.2: 5 s when not given; never faster than once a second.
    let mut interval = number("interval").unwrap_or(5).max(1);
    let _ = writeln!(
        say,
        "postie oauth: to sign in account {}, open {} and enter the code {} (valid for {} min)",
        reg.account,
        words(&verify),
        words(&user_code),
        expires_in.div_ceil(60)
    );
    let deadline = Instant::now() + Duration::from_secs(expires_in);
    loop {
        let pause = Duration::from_secs(interval);
        if Instant::now() + pause >= deadline {
            return Err(expired(reg));
        }
        std::thread::sleep(pause);
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.expose()),
        ];
        client_params(reg, &mut form);
        let response = http.post_form(&reg.token_url, "the token endpoint", &form)?;
        match answer(reg, &response, None)? {
            Answer::Tokens(kept) => return Ok(kept),
            Answer::Refused { error, description } => match error.as_str() {
                "authorization_pending" => {}
                // RFC 8628 §3.5: add 5 seconds to this and every later interval.
                "slow_down" => interval += 5,
                "access_denied" => {
                    return Err(Error::NoPerm(format!(
                        "account {}: the sign-in was declined",
                        reg.account
                    ))
                    .into())
                }
                "expired_token" => return Err(expired(reg)),
                _ => return Err(refused(reg, "device login", &error, &description)),
            },
        }
    }
}

fn expired(reg: &Registration) -> anyhow::Error {
    Error::NoPerm(format!(
        "account {}: the code expired before the sign-in was finished: {}",
        reg.account,
        reg.login_hint()
    ))
    .into()
}

/// `n` random bytes, base64url without padding.
fn random(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// PKCE's S256 challenge of a verifier (RFC 7636 §4.2).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// The authorization code grant with PKCE (RFC 7636) and a loopback redirect on
/// 127.0.0.1 at a free port (RFC 8252 §7.3): print the address to open, wait for the
/// browser's redirect, check `state`, and trade the code for tokens.
pub fn browser(reg: &Registration, http: &Client, say: &mut dyn Write) -> Result<Kept> {
    let Some(auth_url) = &reg.auth_url else {
        return Err(Error::Config(format!(
            "account {}: [account.{}.oauth] needs auth_url for the browser flow (or use \
             --device)",
            reg.account, reg.account
        ))
        .into());
    };
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| Error::Io(format!("cannot listen on 127.0.0.1 for the sign-in: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::Io(format!("cannot listen on 127.0.0.1 for the sign-in: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let verifier = Secret::new(random(32)?);
    let state = random(16)?;
    let scope = reg.scopes.join(" ");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &reg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge(verifier.expose()))
        .append_pair("code_challenge_method", "S256");
    if !scope.is_empty() {
        query.append_pair("scope", &scope);
    }
    if reg.provider == OAuthProvider::Google {
        // Google gives a refresh token only when asked this way.
        query
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent");
    }
    let separator = if auth_url.contains('?') { '&' } else { '?' };
    let _ = writeln!(
        say,
        "postie oauth: to sign in account {}, open this address in a browser on this machine:\n  \
         {auth_url}{separator}{}\npostie: waiting for the browser (up to {} min)...",
        reg.account,
        query.finish(),
        BROWSER_WAIT.as_secs() / 60
    );
    let code = wait_for_redirect(&listener, &state, reg)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", &redirect_uri),
        ("code_verifier", verifier.expose()),
    ];
    client_params(reg, &mut form);
    let response = http.post_form(&reg.token_url, "the token endpoint", &form)?;
    match answer(reg, &response, None)? {
        Answer::Tokens(kept) => Ok(kept),
        Answer::Refused { error, description } => {
            Err(refused(reg, "authorization code", &error, &description))
        }
    }
}

/// What one request to the loopback listener carried.
enum Redirect {
    Code(Secret),
    Denied {
        error: String,
        description: String,
    },
    /// Not the redirect (a favicon, a probe): answered 404, keep waiting.
    Other,
}

/// Accept connections until the redirect arrives or [`BROWSER_WAIT`] has passed.
fn wait_for_redirect(listener: &TcpListener, state: &str, reg: &Registration) -> Result<Secret> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Io(format!("loopback listener: {e}")))?;
    let deadline = Instant::now() + BROWSER_WAIT;
    while Instant::now() < deadline {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(Error::Io(format!("loopback listener: {e}")).into()),
        };
        match serve_one(stream, state) {
            Ok(Redirect::Code(code)) => return Ok(code),
            Ok(Redirect::Denied { error, description }) => {
                return Err(refused(reg, "sign-in", &error, &description))
            }
            Ok(Redirect::Other) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::NoPerm(format!(
        "account {}: no sign-in arrived from the browser within {} min: {}",
        reg.account,
        BROWSER_WAIT.as_secs() / 60,
        reg.login_hint()
    ))
    .into())
}

/// Read one HTTP request (its head, parsed by httparse), answer it, and say what it was.
/// A redirect whose `state` differs is refused: it did not come from this login.
fn serve_one(mut stream: TcpStream, state: &str) -> Result<Redirect> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    let target = loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Ok(Redirect::Other),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => break req.path.unwrap_or("").to_string(),
            Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => continue,
            _ => {
                respond(
                    &mut stream,
                    "400 Bad Request",
                    "postie oauth: not a request it understands.",
                );
                return Ok(Redirect::Other);
            }
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/" {
        respond(&mut stream, "404 Not Found", "postie oauth: nothing here.");
        return Ok(Redirect::Other);
    }
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    let mut description = String::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(Secret::new(v.into_owned())),
            "state" => got_state = Some(v.into_owned()),
            "error" => error = Some(words(&v)),
            "error_description" => description = words(&v),
            _ => {}
        }
    }
    if code.is_none() && error.is_none() {
        respond(&mut stream, "404 Not Found", "postie oauth: nothing here.");
        return Ok(Redirect::Other);
    }
    if got_state.as_deref() != Some(state) {
        respond(
            &mut stream,
            "400 Bad Request",
            "postie oauth: this sign-in answer is not for the login that is waiting (state differs).",
        );
        return Err(Error::NoPerm(
            "the browser's redirect carried a different state: it did not come from this \
             login (start it again)"
                .into(),
        )
        .into());
    }
    if let Some(error) = error {
        respond(
            &mut stream,
            "200 OK",
            "postie oauth: the sign-in failed; see the terminal.",
        );
        return Ok(Redirect::Denied { error, description });
    }
    respond(
        &mut stream,
        "200 OK",
        "postie oauth: signed in. You can close this window.",
    );
    Ok(code.map_or(Redirect::Other, Redirect::Code))
}

/// A fixed plain-text answer to the browser.
fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random(32).unwrap();
        assert_eq!(v.len(), 43, "{v}");
        assert_ne!(v, random(32).unwrap());
    }

    #[test]
    fn provider_words_are_printable_and_bounded() {
        assert_eq!(words("bad\r\n\x1b[31mred"), "bad[31mred");
        let long = "x".repeat(400);
        assert_eq!(words(&long).len(), ERROR_TEXT_MAX + 3);
    }
}
