//! A fake OAuth 2.0 authorization server for the tests: HTTPS on 127.0.0.1 with the test
//! PKI's leaf (give postie the test CA through the account's `ca_file`), answering every
//! request with a test's handler and recording what arrived (method, path, form fields,
//! arrival time).
//!
//! Owns: the server side of the token and device endpoints in tests. Must not: listen
//! beyond loopback, or run unbounded: every read has a timeout, and the server stops on
//! drop. Each connection is served on its own thread, so concurrent clients overlap.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::certs::pki;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The urlencoded body's fields.
    pub form: BTreeMap<String, String>,
    pub at: Instant,
}

impl Request {
    pub fn field(&self, k: &str) -> &str {
        self.form.get(k).map_or("", String::as_str)
    }
}

/// What the handler answers: a status and a JSON body.
pub type Answer = (u16, String);
type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

pub struct Idp {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The rustls server configuration with the test PKI's leaf, shared by the HTTPS test
/// servers (this one and MTA-STS's).
pub fn server_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let pki = pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
            )
            .unwrap();
        Arc::new(config)
    }))
}

impl Idp {
    pub fn start(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: a test that forgets to drop the server still ends with the process.
                let until = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    let tcp = match listener.accept() {
                        Ok((tcp, _)) => tcp,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    let (requests, handler) = (Arc::clone(&requests), Arc::clone(&handler));
                    std::thread::spawn(move || serve(tcp, &requests, &*handler));
                }
            })
        };
        Idp {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(tcp: std::net::TcpStream, requests: &Mutex<Vec<Request>>, handler: &Handler) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = ServerConnection::new(server_config()) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (method, path, body_at, length) = loop {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(at)) => {
                let length = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                break (
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                    at,
                    length,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => continue,
            _ => return,
        }
    };
    while buf.len() < body_at + length {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let form = form_urlencoded::parse(&buf[body_at..body_at + length])
        .into_owned()
        .collect();
    let request = Request {
        method,
        path,
        form,
        at: Instant::now(),
    };
    requests.lock().unwrap().push(request.clone());
    let (status, body) = handler(&request);
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(response.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// A token answer (RFC 6749 §5.1).
pub fn tokens(access: &str, refresh: Option<&str>, expires_in: u64) -> Answer {
    let refresh = refresh.map_or(String::new(), |r| format!(",\"refresh_token\":\"{r}\""));
    (
        200,
        format!(
            "{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":{expires_in},\
             \"scope\":\"https://outlook.office.com/SMTP.Send\"{refresh}}}"
        ),
    )
}

/// An error answer (RFC 6749 §5.2).
pub fn error(code: &str, description: &str) -> Answer {
    (
        400,
        format!("{{\"error\":\"{code}\",\"error_description\":\"{description}\"}}"),
    )
}
