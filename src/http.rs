//! HTTPS requests besides SMTP: the OAuth 2.0 authorization server's token and device
//! endpoints (RFC 6749, RFC 8628), through ureq over rustls with ring.
//!
//! Owns: the client's settings (https only, no redirects, one overall timeout, WebPKI roots
//! plus an optional extra CA file, answers capped at [`MAX_BODY`]) and what a failed request
//! means: an unusable certificate is EX_UNAVAILABLE, an unreachable or failing endpoint
//! (transport errors, 5xx) is temporary ([`Error::Temporary`], EX_TEMPFAIL, so a queued
//! message waits for it). Any other status comes back to the caller with its body: an
//! OAuth error answer is the caller's to read.
//!
//! Must not: print or log a request or an answer (both carry secrets: client secrets,
//! codes, tokens); build URLs or form bodies by hand (ureq encodes the form).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::Error;

/// The longest answer read: token answers are a few KiB.
pub const MAX_BODY: u64 = 64 * 1024;

/// An HTTPS client for one authorization server.
pub struct Client {
    agent: ureq::Agent,
}

/// An answer that arrived: its status and body (any status but 5xx).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Client {
    /// A client that trusts the Mozilla roots plus the certificates in `extra_ca` (PEM),
    /// and gives up on any request after `timeout`.
    pub fn new(extra_ca: Option<&Path>, timeout: Duration) -> Result<Client> {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if let Some(path) = extra_ca {
            let bytes = std::fs::read(path).map_err(|source| Error::NoInput {
                what: "CA file",
                path: path.to_path_buf(),
                source,
            })?;
            let before = roots.len();
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| {
                    Error::Config(format!(
                        "ca_file {}: not PEM certificates: {e}",
                        path.display()
                    ))
                })?;
                roots.push(Certificate::from_der(cert.as_ref()).to_owned());
            }
            if roots.len() == before {
                return Err(Error::Config(format!(
                    "ca_file {}: no PEM certificate in the file",
                    path.display()
                ))
                .into());
            }
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent = ureq::Agent::config_builder()
            .https_only(true)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("postie/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client { agent })
    }

    /// POST an `application/x-www-form-urlencoded` form to `url`. `what` names the
    /// endpoint in errors ("the token endpoint").
    pub fn post_form(&self, url: &str, what: &str, form: &[(&str, &str)]) -> Result<Response> {
        let answer = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .send_form(form.iter().copied());
        let mut answer = answer.map_err(|e| failure(what, url, e))?;
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| failure(what, url, e))?;
        if status >= 500 {
            return Err(Error::Temporary(format!(
                "{what} {url} failed: HTTP {status} (a server error: try again later)"
            ))
            .into());
        }
        Ok(Response { status, body })
    }
}

/// A request that got no usable answer, in words and with its exit code.
fn failure(what: &str, url: &str, e: ureq::Error) -> anyhow::Error {
    let host = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', ':', '?']).next())
        .unwrap_or(url);
    match e {
        ureq::Error::Rustls(err) => {
            let why = crate::net::tls::handshake_error(host, &err);
            Error::Unavailable(format!("{what} {url}: {why}")).into()
        }
        ureq::Error::BodyExceedsLimit(_) => Error::Protocol(format!(
            "{what} {url} answered with more than {} KiB",
            MAX_BODY / 1024
        ))
        .into(),
        ureq::Error::RequireHttpsOnly(_) | ureq::Error::BadUri(_) => {
            Error::Config(format!("{what} {url}: not an https:// address")).into()
        }
        ureq::Error::Timeout(_) => {
            Error::Temporary(format!("{what} {url} did not answer in time")).into()
        }
        ureq::Error::HostNotFound => {
            Error::Temporary(format!("{what} {url}: cannot resolve {host}")).into()
        }
        other => Error::Temporary(format!("{what} {url} cannot be reached: {other}")).into(),
    }
}
