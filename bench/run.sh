#!/usr/bin/env bash
# postie benchmarks (issue 7): wall per message vs msmtp and curl at 0 and 40 ms RTT
# (plain, and STARTTLS + AUTH PLAIN), a 100 MB message (wall, peak RSS), a 1 GB raw message
# from stdin (peak RSS must stay under 16 MiB), a 10 000-message batch vs smtp-source, and
# the peak RSS of a message with a 50 MB attachment vs s-nail (must stay under 32 MiB).
#
#   bench/run.sh                 # full run (a few minutes); needs root for the Postfix rows
#   QUICK=1 bench/run.sh         # quick: 5 runs, 10 MB, 256 MB, 1000-message batch
#   ONLY=latency REPS=50 bench/run.sh
#   POSTIE=/path/to/postie bench/run.sh   # skip the build, bench that binary
#
# Knobs (see bench/bench.py): QUICK REPS RTT_MS BIG_MB HUGE_MB BATCH_N ATTACH_MB ONLY
# TRANSCRIPT POSTIE.
# Needs: python3, smtp-sink/smtp-source/postfix (apt: postfix), sasl2-bin, libsasl2-modules,
# msmtp, curl, openssl, time. Loopback only; every run is time-limited; servers are
# stopped and temporary files removed on exit. Not part of `cargo test` or .ci/run.
# Exit status: 0 all targets met (or skipped), 1 a target missed, 2 the bench itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${POSTIE:-}" ]; then
    cargo build --release --quiet
    POSTIE="${CARGO_TARGET_DIR:-$PWD/target}/release/postie"
fi
export POSTIE
exec python3 bench/bench.py
