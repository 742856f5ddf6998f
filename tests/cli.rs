//! The one integration-test binary: runs the built `postie` against a scripted fake SMTP
//! server in this process and against a real Postfix on loopback (skipped with a printed
//! reason where Postfix is not installed, unless POSTIE_REQUIRE_POSTFIX=1).

mod cases;
mod support;
