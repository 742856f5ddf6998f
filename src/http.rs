//! HTTPS requests besides SMTP, through ureq over rustls with ring: the OAuth 2.0
//! authorization server's token and device endpoints (RFC 6749, RFC 8628; [`Client::new`],
//! [`Client::post_form`]) and the MTA-STS policy (RFC 8461 §3.3; [`Client::pinned`],
//! [`Client::get`]).
//!
//! Owns: the client's settings (https only, no redirects, one overall timeout, WebPKI roots
//! plus an optional extra CA file, answers capped at [`MAX_BODY`]) and what a failed request
//! means: an unusable certificate is EX_UNAVAILABLE, an unreachable or failing endpoint
//! (transport errors, 5xx to a form) is temporary ([`Error::Temporary`], EX_TEMPFAIL, so a
//! queued message waits for it). Any other status comes back to the caller with its body:
//! an OAuth error answer or a policy's 404 is the caller's to read.
//!
//! Must not: print or log a request or an answer (both carry secrets: client secrets,
//! codes, tokens); build URLs or form bodies by hand (ureq encodes the form).

use std::net::SocketAddr;
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

/// An answer that arrived: its status, the headers a caller checks, and the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// Where a redirect points (never followed).
    pub location: Option<String>,
    pub body: String,
}

/// Connects only to addresses looked up beforehand (postie's own resolver, which tests
/// point at their DNS server): ureq's resolver hook.
#[derive(Debug)]
struct Pinned(Vec<SocketAddr>);

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = ureq::unversioned::resolver::ResolvedSocketAddrs::from_fn(|_| {
            SocketAddr::from(([0, 0, 0, 0], 0))
        });
        for a in self.0.iter().take(16) {
            addrs.push(*a);
        }
        if self.0.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}

impl Client {
    /// A client that trusts the Mozilla roots plus the certificates in `extra_ca` (PEM),
    /// and gives up on any request after `timeout`.
    pub fn new(extra_ca: Option<&Path>, timeout: Duration) -> Result<Client> {
        let config = config(extra_ca, timeout)?
            .proxy(ureq::Proxy::try_from_env())
            .build();
        Ok(Client {
            agent: config.new_agent(),
        })
    }

    /// A client that connects only to `addrs` whatever the URL's host (still the name
    /// the certificate must carry), and never through a proxy.
    pub fn pinned(
        extra_ca: Option<&Path>,
        timeout: Duration,
        addrs: Vec<SocketAddr>,
    ) -> Result<Client> {
        let config = config(extra_ca, timeout)?.proxy(None).build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            Pinned(addrs),
        );
        Ok(Client { agent })
    }

    /// POST an `application/x-www-form-urlencoded` form to `url`. `what` names the
    /// endpoint in errors ("the token endpoint"). A 5xx answer is temporary.
    pub fn post_form(&self, url: &str, what: &str, form: &[(&str, &str)]) -> Result<Response> {
        let answer = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .send_form(form.iter().copied());
        let response = read(answer, what, url)?;
        if response.status >= 500 {
            return Err(Error::Temporary(format!(
                "{what} {url} failed: HTTP {} (a server error: try again later)",
                response.status
            ))
            .into());
        }
        Ok(response)
    }

    /// GET `url`, accepting `accept`; any status comes back.
    pub fn get(&self, url: &str, what: &str, accept: &str) -> Result<Response> {
        read(
            self.agent.get(url).header("Accept", accept).call(),
            what,
            url,
        )
    }
}

/// The answer's status, headers and body (at most [`MAX_BODY`]).
fn read(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    what: &str,
    url: &str,
) -> Result<Response> {
    let mut answer = answer.map_err(|e| failure(what, url, e))?;
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (content_type, location) = (header("content-type"), header("location"));
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| failure(what, url, e))?;
    Ok(Response {
        status,
        content_type,
        location,
        body,
    })
}

/// The settings every client shares.
fn config(
    extra_ca: Option<&Path>,
    timeout: Duration,
) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>> {
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
                    "CA file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            roots.push(Certificate::from_der(cert.as_ref()).to_owned());
        }
        if roots.len() == before {
            return Err(Error::Config(format!(
                "CA file {}: no PEM certificate in the file",
                path.display()
            ))
            .into());
        }
    }
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build();
    Ok(ureq::Agent::config_builder()
        .https_only(true)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("postie/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls))
}

/// A request that got no usable answer, in words and with its exit code.
fn failure(what: &str, url: &str, e: ureq::Error) -> anyhow::Error {
    let host = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', ':', '?']).next())
        .unwrap_or(url);
    // rustls's refusal arrives as such or inside the I/O error of the handshake.
    let tls = match &e {
        ureq::Error::Rustls(err) => Some(err),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    if let Some(err) = tls {
        let why = crate::net::tls::handshake_error(host, err);
        return Error::Unavailable(format!("{what} {url}: {why}")).into();
    }
    match e {
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
