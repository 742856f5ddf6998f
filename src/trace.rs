//! What a run observed on the wire, kept for the reports that come after it: `--json`,
//! `--show-time` totals and `--probe`. The connection and the session record into their
//! transcript's [`Recorder`] as they go; when the connection ends (however it ends, so a
//! failed run can still say how far it got) the trace is handed back by value to the
//! engine, which gives it to the one observer ([`crate::report::Observer::connection`]).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::mpsc;
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

/// How long postie waited for the replies of a phase, summed over the connection: each
/// wait from the later of the command's write and the previous reply, so pipelined replies
/// to one write are not counted twice and the waits add up to no more than the dialogue
/// took.
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
    /// One entry per phase, in the order the phases first occurred ([`Trace::waited`]):
    /// as long as a session of a thousand messages as of one.
    pub timings: Vec<Timing>,
    /// The last reply received, whatever it was.
    pub last_reply: Option<Reply>,
    /// The phase of the last wire operation other than QUIT: where a failure that carries no
    /// phase of its own happened (a refused certificate, a malformed reply).
    pub phase: Option<Phase>,
}

impl Trace {
    /// Postie waited `elapsed` for a reply in `phase`: added to that phase's sum.
    pub fn waited(&mut self, phase: Phase, elapsed: Duration) {
        match self.timings.iter_mut().find(|t| t.phase == phase) {
            Some(t) => t.elapsed += elapsed,
            None => self.timings.push(Timing { phase, elapsed }),
        }
    }
}

/// The trace of one connection, kept by its [`crate::transcript::Transcript`] (which the
/// connection owns): the connection, the TLS set-up and the session record into it as
/// they go, and when the transcript ends — with the connection, or with a connection that
/// never opened — it hands the trace to whoever asked for it ([`Recorder::handing_back`]),
/// once, by value. Nothing else holds it, so nothing else can change it.
#[derive(Debug, Default)]
pub struct Recorder {
    trace: RefCell<Trace>,
    back: Option<mpsc::Sender<Trace>>,
}

impl Recorder {
    /// A recorder that sends what it recorded to `back` when it ends.
    pub fn handing_back(back: mpsc::Sender<Trace>) -> Recorder {
        Recorder {
            trace: RefCell::default(),
            back: Some(back),
        }
    }

    /// Change the trace.
    pub fn record(&self, f: impl FnOnce(&mut Trace)) {
        f(&mut self.trace.borrow_mut());
    }

    /// A copy of what was observed so far.
    pub fn snapshot(&self) -> Trace {
        self.trace.borrow().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(back) = self.back.take() {
            // The receiver may be gone (the caller stopped listening): nothing to tell.
            let _ = back.send(std::mem::take(self.trace.get_mut()));
        }
    }
}

/// What the connection that was given `back`'s sender recorded, once it has ended (an
/// empty trace if it never reported).
pub fn handed_back(back: &mpsc::Receiver<Trace>) -> Trace {
    back.try_recv().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_hands_its_trace_back_when_it_ends() {
        let (tx, rx) = mpsc::channel();
        let recorder = Recorder::handing_back(tx);
        recorder.record(|t| t.waited(Phase::Greeting, Duration::from_millis(5)));
        assert_eq!(recorder.snapshot().timings.len(), 1);
        assert!(rx.try_recv().is_err(), "nothing before it ends");
        drop(recorder);
        assert_eq!(handed_back(&rx).timings.len(), 1);
        assert!(rx.try_recv().is_err(), "handed back once");
        // Never asked for: dropping sends nothing, and nobody listening is no error.
        drop(Recorder::default());
        let (tx, rx) = mpsc::channel();
        drop(rx);
        drop(Recorder::handing_back(tx));
    }

    #[test]
    fn waits_are_summed_per_phase_in_the_order_phases_first_came() {
        let mut t = Trace::default();
        for (phase, ms) in [
            (Phase::Greeting, 5),
            (Phase::Mail, 2),
            (Phase::Rcpt, 3),
            (Phase::Mail, 4),
            (Phase::Rcpt, 1),
        ] {
            t.waited(phase, Duration::from_millis(ms));
        }
        let sums: Vec<(Phase, u128)> = t
            .timings
            .iter()
            .map(|t| (t.phase, t.elapsed.as_millis()))
            .collect();
        assert_eq!(
            sums,
            [(Phase::Greeting, 5), (Phase::Mail, 6), (Phase::Rcpt, 4)]
        );
    }
}
