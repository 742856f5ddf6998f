#!/usr/bin/env bash
# Build the two Debian packages, postie and postie-mta, into target/debian/ (cargo-deb;
# the metadata is [package.metadata.deb] in Cargo.toml). Installs cargo-deb first when it
# is missing. Run from anywhere; the release binary is built once and shared by both.
#
#   pkg/build-debs.sh            # then: pkg/check-debs.sh target/debian/*.deb
#   apt install ./target/debian/postie_*.deb ./target/debian/postie-mta_*.deb
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
    echo "build-debs: installing cargo-deb"
    cargo install cargo-deb --locked
fi

out=target/debian
# Only this run's packages end up there, so a check of target/debian/*.deb sees no stale
# version.
rm -f "$out"/postie_*.deb "$out"/postie-mta_*.deb

# cargo-deb runs `cargo build --release` for postie (the binary), then packages; the
# variant only adds symlinks and the example configuration, so it needs no build.
cargo deb --locked --output "$out/"
cargo deb --locked --no-build --variant mta --output "$out/"

ls -l "$out"/postie_*.deb "$out"/postie-mta_*.deb
