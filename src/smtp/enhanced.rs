//! What an enhanced status code means, in words: RFC 3463 §3 (every code it defines) and
//! the later entries of the IANA registry that RFC 5248 set up (RFC 4468, 4954, 5248,
//! 6531, 6710, 7293, 7372, 7505, 8617, 8689).
//!
//! Owns: the table and [`describe`], for the transcript (`5.1.1` → "bad destination mailbox
//! address") and for reports. Must not: decide anything. The dialogue branches on the reply
//! code's severity (RFC 5321 §4.2.1), never on these words, and an unknown code is not an
//! error: it falls back to the meaning of its subject ("other address status"), then of
//! its class.

use crate::smtp::reply::EnhancedCode;

/// (subject, detail, meaning). X.s.0 rows are also the fallback for their subject.
const DETAILS: &[(u16, u16, &str)] = &[
    // RFC 3463 §3.1
    (0, 0, "other undefined status"),
    // §3.2 addressing status
    (1, 0, "other address status"),
    (1, 1, "bad destination mailbox address"),
    (1, 2, "bad destination system address"),
    (1, 3, "bad destination mailbox address syntax"),
    (1, 4, "destination mailbox address ambiguous"),
    (1, 5, "destination address valid"),
    (1, 6, "destination mailbox has moved, no forwarding address"),
    (1, 7, "bad sender's mailbox address syntax"),
    (1, 8, "bad sender's system address"),
    (1, 9, "message relayed to non-compliant mailer"), // RFC 3886
    (1, 10, "recipient address has null MX"),          // RFC 7505
    // §3.3 mailbox status
    (2, 0, "other or undefined mailbox status"),
    (2, 1, "mailbox disabled, not accepting messages"),
    (2, 2, "mailbox full"),
    (2, 3, "message length exceeds administrative limit"),
    (2, 4, "mailing list expansion problem"),
    // §3.4 mail system status
    (3, 0, "other or undefined mail system status"),
    (3, 1, "mail system full"),
    (3, 2, "system not accepting network messages"),
    (3, 3, "system not capable of selected features"),
    (3, 4, "message too big for system"),
    (3, 5, "system incorrectly configured"),
    (3, 6, "requested priority was changed"), // RFC 6710
    // §3.5 network and routing status
    (4, 0, "other or undefined network or routing status"),
    (4, 1, "no answer from host"),
    (4, 2, "bad connection"),
    (4, 3, "directory server failure"),
    (4, 4, "unable to route"),
    (4, 5, "mail system congestion"),
    (4, 6, "routing loop detected"),
    (4, 7, "delivery time expired"),
    // §3.6 mail delivery protocol status
    (5, 0, "other or undefined protocol status"),
    (5, 1, "invalid command"),
    (5, 2, "syntax error"),
    (5, 3, "too many recipients"),
    (5, 4, "invalid command arguments"),
    (5, 5, "wrong protocol version"),
    (5, 6, "authentication exchange line is too long"), // RFC 4954
    // §3.7 message content or media status
    (6, 0, "other or undefined media error"),
    (6, 1, "media not supported"),
    (6, 2, "conversion required and prohibited"),
    (6, 3, "conversion required but not supported"),
    (6, 4, "conversion with loss performed"),
    (6, 5, "conversion failed"),
    (6, 6, "message content not available"), // RFC 4468
    (
        6,
        7,
        "non-ASCII addresses not permitted for that sender/recipient",
    ), // RFC 6531
    (
        6,
        8,
        "UTF-8 string reply is required, but not permitted by the SMTP client",
    ), // RFC 6531
    (
        6,
        9,
        "UTF-8 header message cannot be transferred to one or more recipients",
    ), // RFC 6531
    (
        6,
        10,
        "UTF-8 string reply is required, but not permitted by the SMTP client",
    ), // RFC 6531 erratum: same as X.6.8, deprecated
    // §3.8 security or policy status
    (7, 0, "other or undefined security status"),
    (7, 1, "delivery not authorized, message refused"),
    (7, 2, "mailing list expansion prohibited"),
    (7, 3, "security conversion required but not possible"),
    (7, 4, "security features not supported"),
    (7, 5, "cryptographic failure"),
    (7, 6, "cryptographic algorithm not supported"),
    (7, 7, "message integrity failure"),
    (7, 8, "authentication credentials invalid"), // RFC 4954
    (7, 9, "authentication mechanism is too weak"), // RFC 4954
    (7, 10, "encryption needed"),                 // RFC 5248
    (
        7,
        11,
        "encryption required for requested authentication mechanism",
    ), // RFC 4954
    (7, 12, "a password transition is needed"),   // RFC 4954
    (7, 13, "user account disabled"),             // RFC 5248
    (7, 14, "trust relationship required"),       // RFC 5248
    (7, 15, "priority level is too low"),         // RFC 6710
    (7, 16, "message is too big for the specified priority"), // RFC 6710
    (7, 17, "mailbox owner has changed"),         // RFC 7293
    (7, 18, "domain owner has changed"),          // RFC 7293
    (7, 19, "RRVS test cannot be completed"),     // RFC 7293
    (7, 20, "no passing DKIM signature found"),   // RFC 7372
    (7, 21, "no acceptable DKIM signature found"), // RFC 7372
    (7, 22, "no valid author-matched DKIM signature found"), // RFC 7372
    (7, 23, "SPF validation failed"),             // RFC 7372
    (7, 24, "SPF validation error"),              // RFC 7372
    (7, 25, "reverse DNS validation failed"),     // RFC 7372
    (7, 26, "multiple authentication checks failed"), // RFC 7372
    (7, 27, "sender address has null MX"),        // RFC 7505
    (7, 28, "mail flood detected"),               // IANA registry
    (7, 29, "ARC validation failure"),            // RFC 8617
    (7, 30, "REQUIRETLS support required"),       // RFC 8689
];

/// The class (first number), RFC 3463 §3.
pub fn class_meaning(class: u8) -> Option<&'static str> {
    match class {
        2 => Some("success"),
        4 => Some("persistent transient failure"),
        5 => Some("permanent failure"),
        _ => None,
    }
}

/// The subject (second number), RFC 3463 §3.
pub fn subject_meaning(subject: u16) -> Option<&'static str> {
    Some(match subject {
        0 => "other or undefined status",
        1 => "addressing status",
        2 => "mailbox status",
        3 => "mail system status",
        4 => "network and routing status",
        5 => "mail delivery protocol status",
        6 => "message content or media status",
        7 => "security or policy status",
        _ => return None,
    })
}

/// What `code` means: the registered subject.detail text ("5.1.1" → "bad destination
/// mailbox address"); for an unregistered detail the subject's general text ("5.1.99" →
/// "other address status"); for an unknown subject, the class ("permanent failure").
pub fn describe(code: &EnhancedCode) -> String {
    let lookup = |detail: u16| {
        DETAILS
            .iter()
            .find(|(s, d, _)| *s == code.subject && *d == detail)
            .map(|(_, _, text)| *text)
    };
    if let Some(text) = lookup(code.detail).or_else(|| lookup(0)) {
        return text.to_string();
    }
    match class_meaning(code.class) {
        Some(class) => format!("{class}, unknown subject {}", code.subject),
        None => format!("unknown status {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    #[test]
    fn registered_codes() {
        for ((c, s, d), text) in [
            ((5, 1, 1), "bad destination mailbox address"),
            ((4, 2, 2), "mailbox full"),
            ((5, 7, 8), "authentication credentials invalid"),
            ((2, 0, 0), "other undefined status"),
            ((2, 1, 5), "destination address valid"),
            ((5, 1, 10), "recipient address has null MX"),
            ((5, 3, 4), "message too big for system"),
            ((4, 4, 5), "mail system congestion"),
            ((5, 5, 1), "invalid command"),
            (
                (5, 6, 7),
                "non-ASCII addresses not permitted for that sender/recipient",
            ),
            ((4, 7, 0), "other or undefined security status"),
            ((5, 7, 1), "delivery not authorized, message refused"),
            ((5, 7, 30), "REQUIRETLS support required"),
        ] {
            assert_eq!(describe(&code(c, s, d)), text, "{c}.{s}.{d}");
        }
    }

    #[test]
    fn unregistered_details_fall_back_to_the_subject_then_the_class() {
        for ((c, s, d), text) in [
            ((5, 1, 99), "other address status"),
            ((4, 2, 9), "other or undefined mailbox status"),
            ((5, 7, 999), "other or undefined security status"),
            ((5, 8, 1), "permanent failure, unknown subject 8"),
            (
                (4, 999, 0),
                "persistent transient failure, unknown subject 999",
            ),
            ((3, 9, 9), "unknown status 3.9.9"),
        ] {
            assert_eq!(describe(&code(c, s, d)), text, "{c}.{s}.{d}");
        }
    }

    #[test]
    fn rfc_3463_is_covered_and_the_table_is_sane() {
        // RFC 3463 §3.1–§3.8: how many detail codes each subject defines (X.s.0 included).
        for (subject, count) in [
            (0, 1),
            (1, 9),
            (2, 5),
            (3, 6),
            (4, 8),
            (5, 6),
            (6, 6),
            (7, 8),
        ] {
            for detail in 0..count {
                let text = describe(&code(5, subject, detail));
                let fallback = describe(&code(5, subject, 60_000));
                assert!(
                    detail == 0 || text != fallback,
                    "5.{subject}.{detail} is not in the table"
                );
            }
            assert!(subject_meaning(subject).is_some());
        }
        for (i, (s, d, text)) in DETAILS.iter().enumerate() {
            assert!(!text.is_empty() && text.len() < 80, "{s}.{d}");
            assert!(
                !DETAILS[..i].iter().any(|(s2, d2, _)| s2 == s && d2 == d),
                "{s}.{d} twice"
            );
            assert!(
                DETAILS.iter().any(|(s2, d2, _)| s2 == s && *d2 == 0),
                "subject {s} has no X.{s}.0 row"
            );
        }
    }

    #[test]
    fn classes() {
        assert_eq!(class_meaning(2), Some("success"));
        assert_eq!(class_meaning(4), Some("persistent transient failure"));
        assert_eq!(class_meaning(5), Some("permanent failure"));
        assert_eq!(class_meaning(3), None);
        assert_eq!(subject_meaning(8), None);
    }
}
