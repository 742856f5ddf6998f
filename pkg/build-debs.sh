#!/usr/bin/env bash
# Build the two Debian packages, postie and postie-mta, into target/debian/ (cargo-deb;
# the metadata is [package.metadata.deb] in Cargo.toml). Installs cargo-deb first when it
# is missing. Run from anywhere; the release binary is built once and shared by both.
# Also needs python3 (pkg/copyright.py) and gzip.
#
#   pkg/build-debs.sh            # then: pkg/check-debs.sh target/debian/*.deb
#   apt install ./target/debian/postie_*.deb ./target/debian/postie-mta_*.deb
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
    echo "build-debs: installing cargo-deb"
    cargo install cargo-deb --locked
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [[ $(head -n 1 pkg/debian/changelog) != "postie ($version) "* ]]; then
    echo "build-debs: pkg/debian/changelog's first entry is not for $version" >&2
    exit 1
fi

# What the packages take from target/debian-assets/ ([package.metadata.deb] assets): the
# copyright file with every bundled crate's licence, and the documents gzipped as Debian
# policy 12.3 wants (-n: no name or time stamp inside, so the bytes are reproducible).
assets=target/debian-assets
rm -rf "$assets"
mkdir -p "$assets"
python3 pkg/copyright.py >"$assets/copyright"
for doc in README.md GUIDE.md; do
    gzip -9n <"$doc" >"$assets/$doc.gz"
done
gzip -9n <pkg/debian/changelog >"$assets/changelog.gz"

out=target/debian
# Only this run's packages end up there, so a check of target/debian/*.deb sees no stale
# version.
rm -f "$out"/postie_*.deb "$out"/postie-mta_*.deb

# cargo-deb runs `cargo build --release` for postie (the binary), then packages; the
# variant only adds symlinks and the example configuration, so it needs no build.
cargo deb --locked --output "$out/"
cargo deb --locked --no-build --variant mta --output "$out/"

ls -l "$out"/postie_*.deb "$out"/postie-mta_*.deb
