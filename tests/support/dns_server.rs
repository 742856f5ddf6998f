//! A tiny authoritative DNS server for tests, so that no test touches real DNS.
//!
//! It answers UDP queries on 127.0.0.1 (a free port) from a table built with [`Zone`]:
//! MX, A, AAAA and TXT records per name, or a name that is NXDOMAIN, SERVFAIL, or never
//! answered at all. A name not in the table is NXDOMAIN; a name in it without records of the type
//! asked for gets an empty NOERROR answer (NODATA). TLSA records ([`Zone::tlsa`]) are kept
//! apart: a TLSA question for a name that has some is answered with them whatever else the
//! table says about the name. [`Zone::authentic`] sets the AD bit in every answer, the way
//! a validating resolver marks DNSSEC-validated data (nothing is signed here). Messages are encoded and decoded with
//! hickory-proto; nothing here writes DNS wire format by hand. There is no TCP listener:
//! the answers are small enough never to be truncated.
//!
//! The server runs in a thread that checks a stop flag between reads (read timeout 20 ms)
//! and is joined when the [`DnsServer`] is dropped, so it ends with the test.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

const TTL: u32 = 300;

/// One TLSA record's fields: usage, selector, matching type, association data.
type TlsaFields = (u8, u8, u8, Vec<u8>);

/// The record lists of one name: MX, A, AAAA, TXT.
type Records<'a> = (
    &'a mut Vec<(u16, String)>,
    &'a mut Vec<Ipv4Addr>,
    &'a mut Vec<Ipv6Addr>,
    &'a mut Vec<String>,
);

#[derive(Debug, Clone)]
enum Entry {
    Records {
        mx: Vec<(u16, String)>,
        a: Vec<Ipv4Addr>,
        aaaa: Vec<Ipv6Addr>,
        txt: Vec<String>,
    },
    NxDomain,
    ServFail,
    /// Queries are read and never answered.
    Silent,
}

/// The table a [`DnsServer`] answers from. Names are case-insensitive, with or without the
/// final dot.
#[derive(Debug, Default, Clone)]
pub struct Zone {
    entries: HashMap<String, Entry>,
    /// TLSA records by owner name (`_25._tcp.mx.example`): usage, selector, matching, data.
    tlsa: HashMap<String, Vec<TlsaFields>>,
    /// The AD bit of every answer.
    authentic: bool,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    fn records(&mut self, name: &str) -> Records<'_> {
        let empty = || Entry::Records {
            mx: Vec::new(),
            a: Vec::new(),
            aaaa: Vec::new(),
            txt: Vec::new(),
        };
        let entry = self.entries.entry(key(name)).or_insert_with(empty);
        if !matches!(entry, Entry::Records { .. }) {
            *entry = empty();
        }
        match entry {
            Entry::Records { mx, a, aaaa, txt } => (mx, a, aaaa, txt),
            _ => unreachable!(),
        }
    }

    /// MX records of `domain`; an exchange of "." is the root (a null MX when alone).
    pub fn mx(mut self, domain: &str, list: &[(u16, &str)]) -> Zone {
        let (mx, ..) = self.records(domain);
        mx.extend(list.iter().map(|(p, h)| (*p, h.to_string())));
        self
    }

    /// `MX 0 .` (RFC 7505).
    pub fn null_mx(self, domain: &str) -> Zone {
        self.mx(domain, &[(0, ".")])
    }

    pub fn a(mut self, host: &str, ip: &str) -> Zone {
        let (_, a, ..) = self.records(host);
        a.push(ip.parse().expect("IPv4 address"));
        self
    }

    pub fn aaaa(mut self, host: &str, ip: &str) -> Zone {
        let (_, _, aaaa, _) = self.records(host);
        aaaa.push(ip.parse().expect("IPv6 address"));
        self
    }

    /// A TXT record of `name` (e.g. `_mta-sts.example.test`), sent as one character-string,
    /// or as several when longer than 255 bytes.
    pub fn txt(mut self, name: &str, text: &str) -> Zone {
        let (.., txt) = self.records(name);
        txt.push(text.to_string());
        self
    }

    /// A name that exists but has no records at all (every query gets NODATA).
    pub fn empty(mut self, name: &str) -> Zone {
        self.records(name);
        self
    }

    pub fn nxdomain(mut self, name: &str) -> Zone {
        self.entries.insert(key(name), Entry::NxDomain);
        self
    }

    pub fn servfail(mut self, name: &str) -> Zone {
        self.entries.insert(key(name), Entry::ServFail);
        self
    }

    /// Queries for `name` are never answered.
    pub fn silent(mut self, name: &str) -> Zone {
        self.entries.insert(key(name), Entry::Silent);
        self
    }

    /// A TLSA record (RFC 6698) at `name` (e.g. `_25._tcp.mx.example`); `hex` is the
    /// certificate association data in hex.
    pub fn tlsa(mut self, name: &str, usage: u8, selector: u8, matching: u8, hex: &str) -> Zone {
        let data = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex TLSA data"))
            .collect();
        self.tlsa
            .entry(key(name))
            .or_default()
            .push((usage, selector, matching, data));
        self
    }

    /// Set (true) or clear the AD ("authentic data") bit in every answer, as a validating
    /// resolver does for DNSSEC-validated answers (RFC 4035 §3.2.3). Clear by default.
    pub fn authentic(mut self, ad: bool) -> Zone {
        self.authentic = ad;
        self
    }

    pub fn start(self) -> DnsServer {
        DnsServer::start(self)
    }
}

/// A running server; stopped and joined on drop.
pub struct DnsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    dnssec_ok: Arc<Mutex<Vec<(String, RecordType)>>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    fn start(zone: Zone) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind test DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let dnssec_ok = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let queries = Arc::clone(&queries);
            let dnssec_ok = Arc::clone(&dnssec_ok);
            std::thread::spawn(move || serve(&socket, &zone, &stop, &queries, &dnssec_ok))
        };
        DnsServer {
            addr,
            stop,
            queries,
            dnssec_ok,
            thread: Some(thread),
        }
    }

    /// Where to point `--resolver` / `POSTIE_RESOLVER`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every question received so far: (name in lower case without the final dot, type).
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.queries.lock().expect("query log").clone()
    }

    /// The questions that came with the EDNS DO ("DNSSEC OK", RFC 3225) bit set.
    pub fn dnssec_ok_queries(&self) -> Vec<(String, RecordType)> {
        self.dnssec_ok.lock().expect("query log").clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    socket: &UdpSocket,
    zone: &Zone,
    stop: &AtomicBool,
    queries: &Mutex<Vec<(String, RecordType)>>,
    dnssec_ok: &Mutex<Vec<(String, RecordType)>>,
) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let Ok(request) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Some(q) = request.queries.first() {
            queries
                .lock()
                .expect("query log")
                .push((key(&q.name().to_ascii()), q.query_type()));
            if request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok) {
                dnssec_ok
                    .lock()
                    .expect("query log")
                    .push((key(&q.name().to_ascii()), q.query_type()));
            }
        }
        if let Some(reply) = answer(zone, &request) {
            let bytes = reply.to_vec().expect("encode DNS reply");
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

/// The reply to one query, or None to stay silent.
fn answer(zone: &Zone, request: &Message) -> Option<Message> {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authentic_data = zone.authentic;
    let Some(query) = request.queries.first() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return Some(reply);
    };
    reply.add_query(query.clone());
    let name = query.name().clone();
    if let (RecordType::TLSA, Some(list)) =
        (query.query_type(), zone.tlsa.get(&key(&name.to_ascii())))
    {
        for (usage, selector, matching, data) in list {
            let tlsa = TLSA::new(
                (*usage).into(),
                (*selector).into(),
                (*matching).into(),
                data.clone(),
            );
            reply.add_answer(Record::from_rdata(name.clone(), TTL, RData::TLSA(tlsa)));
        }
        return Some(reply);
    }
    match zone.entries.get(&key(&name.to_ascii())) {
        None | Some(Entry::NxDomain) => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(Entry::ServFail) => reply.metadata.response_code = ResponseCode::ServFail,
        Some(Entry::Silent) => return None,
        Some(Entry::Records { mx, a, aaaa, txt }) => {
            let records: Vec<RData> = match query.query_type() {
                RecordType::MX => mx
                    .iter()
                    .map(|(pref, host)| {
                        let exchange = if host == "." {
                            Name::root()
                        } else {
                            Name::from_ascii(format!("{}.", key(host))).expect("MX host name")
                        };
                        RData::MX(MX::new(*pref, exchange))
                    })
                    .collect(),
                RecordType::A => a.iter().map(|ip| RData::A(A(*ip))).collect(),
                RecordType::AAAA => aaaa.iter().map(|ip| RData::AAAA(AAAA(*ip))).collect(),
                RecordType::TXT => txt
                    .iter()
                    .map(|text| RData::TXT(TXT::from_bytes(text.as_bytes().chunks(255).collect())))
                    .collect(),
                _ => Vec::new(),
            };
            for data in records {
                reply.add_answer(Record::from_rdata(name.clone(), TTL, data));
            }
        }
    }
    Some(reply)
}
