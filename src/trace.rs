//! What a run observed on the wire, kept for the reports that come after it: `--json`,
//! `--show-time` totals and `--probe`. The connection and the session record into it as
//! they go; it outlives them, so a failed run can still say how far it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::net::timeout::Phase;
use crate::smtp::auth::Mechanism;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;

/// One connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub addr: SocketAddr,
    /// Why it failed; `None` for the one that connected.
    pub error: Option<String>,
}

/// How long postie waited for one reply in a phase: from the later of the command's write
/// and the previous reply, so pipelined replies to one write are not counted twice and
/// the waits add up to no more than the dialogue took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub phase: Phase,
    pub elapsed: Duration,
}

/// The TLS session as negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLSv1.3"
    pub version: String,
    /// "TLS13_AES_256_GCM_SHA384"
    pub cipher: String,
    /// Key exchange group, e.g. "X25519".
    pub group: Option<String>,
    /// Whether the certificate chain and name were verified.
    pub verified: bool,
    /// The server's end-entity certificate (DER), when it sent one.
    pub peer_certificate: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub attempts: Vec<Attempt>,
    pub peer: Option<SocketAddr>,
    pub tls: Option<TlsInfo>,
    pub greeting: Option<Reply>,
    /// Capabilities from each EHLO, in order (before TLS, then inside TLS).
    pub ehlo: Vec<(bool, Capabilities)>,
    pub auth: Option<Mechanism>,
    pub timings: Vec<Timing>,
    /// The last reply received, whatever it was.
    pub last_reply: Option<Reply>,
    /// The phase of the last wire operation other than QUIT: where a failure that carries no
    /// phase of its own happened (a refused certificate, a malformed reply).
    pub phase: Option<Phase>,
}

/// A handle the connection, the session and the caller share.
#[derive(Debug, Clone, Default)]
pub struct SharedTrace(Arc<Mutex<Trace>>);

impl SharedTrace {
    /// Change the trace. A panic elsewhere cannot make the trace unusable.
    pub fn record(&self, f: impl FnOnce(&mut Trace)) {
        let mut t = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut t);
    }

    /// A copy of what was observed so far.
    pub fn snapshot(&self) -> Trace {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_trace() {
        let a = SharedTrace::default();
        let b = a.clone();
        b.record(|t| {
            t.timings.push(Timing {
                phase: Phase::Greeting,
                elapsed: Duration::from_millis(5),
            })
        });
        assert_eq!(a.snapshot().timings.len(), 1);
    }
}
