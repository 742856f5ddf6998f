#!/usr/bin/env bash
# Check the two packages pkg/build-debs.sh wrote: control fields (dpkg-deb -f), file lists
# (dpkg-deb -c), maintainer scripts (dpkg-deb -e), and, unpacked into a temporary root
# (dpkg-deb -x; nothing is installed), that postie-mta's links reach postie's binary and
# that the binary answers to those names. Every failed check is printed; the script exits
# 1 if there was any.
#
#   pkg/check-debs.sh [POSTIE_DEB POSTIE_MTA_DEB]    # default: target/debian/*.deb
set -uo pipefail

cd "$(dirname "$0")/.."

failures=0
fail() {
    printf 'check-debs: FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}
ok() { printf 'check-debs: ok: %s\n' "$*"; }

# Exactly one match of a glob, or a failure that says so.
one() {
    local matches=("$@")
    if [[ ${#matches[@]} -ne 1 || ! -f ${matches[0]} ]]; then
        echo "check-debs: want exactly one file, found: ${matches[*]}" >&2
        exit 1
    fi
    printf '%s\n' "${matches[0]}"
}

if (($# == 2)); then
    main_deb=$1
    mta_deb=$2
elif (($# == 0)); then
    shopt -s nullglob
    main_deb=$(one target/debian/postie_*.deb) || exit 1
    mta_deb=$(one target/debian/postie-mta_*.deb) || exit 1
    shopt -u nullglob
else
    echo "usage: $0 [POSTIE_DEB POSTIE_MTA_DEB]" >&2
    exit 2
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || { echo "check-debs: no version in Cargo.toml" >&2; exit 1; }

# field DEB NAME WANT: the control field is exactly WANT.
field() {
    local have
    have=$(dpkg-deb -f "$1" "$2")
    if [[ $have == "$3" ]]; then
        ok "$(basename "$1"): $2: $have"
    else
        fail "$(basename "$1"): $2 is '$have', want '$3'"
    fi
}

# has_field DEB NAME REGEX: the control field matches the extended regex.
has_field() {
    local have
    have=$(dpkg-deb -f "$1" "$2")
    if [[ $have =~ $3 ]]; then
        ok "$(basename "$1"): $2: $have"
    else
        fail "$(basename "$1"): $2 is '$have', want a match for /$3/"
    fi
}

# listed LISTING MODE PATH [TARGET]: the file list has PATH with that mode string (and,
# for a symlink, pointing at TARGET).
listed() {
    local listing=$1 mode=$2 path=$3 target=${4:-}
    local line
    line=$(awk -v p="./$path" '$6 == p { print; exit }' <<<"$listing")
    if [[ -z $line ]]; then
        fail "$path is not in the package"
        return
    fi
    if [[ $(awk '{ print $1 }' <<<"$line") != "$mode" ]]; then
        fail "$path: mode $(awk '{ print $1 }' <<<"$line"), want $mode"
        return
    fi
    if [[ -n $target && $(awk '{ print $8 }' <<<"$line") != "$target" ]]; then
        fail "$path points at '$(awk '{ print $8 }' <<<"$line")', want '$target'"
        return
    fi
    ok "$path ($mode${target:+ -> $target})"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "=== $main_deb"
field "$main_deb" Package postie
field "$main_deb" Version "$version"
field "$main_deb" Section mail
has_field "$main_deb" Architecture '^[a-z0-9-]+$'
has_field "$main_deb" Depends '(^|, )libc6( |,|$)'
has_field "$main_deb" Maintainer '^.+ <[^ >]+@[^ >]+>$'
# The synopsis is the Description's first line: one line, under 80 characters (Debian
# policy 3.4.1); cargo-deb wraps a longer crate description into the extended part.
synopsis=$(dpkg-deb -f "$main_deb" Description | head -n 1)
if ((${#synopsis} > 0 && ${#synopsis} < 80)); then
    ok "synopsis: $synopsis"
else
    fail "synopsis '$synopsis' is empty or 80 characters or more"
fi
for f in Provides Conflicts Replaces; do
    [[ -z $(dpkg-deb -f "$main_deb" "$f") ]] || fail "postie must not have $f"
done

main_list=$(dpkg-deb -c "$main_deb")
listed "$main_list" -rwxr-xr-x usr/bin/postie
for page in man/*.1; do
    listed "$main_list" -rw-r--r-- "usr/share/man/man1/$(basename "$page").gz"
done
listed "$main_list" -rw-r--r-- usr/share/bash-completion/completions/postie
listed "$main_list" -rw-r--r-- usr/share/zsh/vendor-completions/_postie
listed "$main_list" -rw-r--r-- usr/share/fish/vendor_completions.d/postie.fish
for schema in schema/*.schema.json; do
    listed "$main_list" -rw-r--r-- "usr/share/postie/$(basename "$schema")"
done
listed "$main_list" -rw-r--r-- usr/lib/systemd/system/postie-queue.service
listed "$main_list" -rw-r--r-- usr/lib/systemd/system/postie-queue.timer
listed "$main_list" -rw-r--r-- usr/share/doc/postie/copyright
listed "$main_list" -rw-r--r-- usr/share/doc/postie/changelog.gz
listed "$main_list" -rw-r--r-- usr/share/doc/postie/README.md.gz
listed "$main_list" -rw-r--r-- usr/share/doc/postie/GUIDE.md.gz
# Debian policy 12.3 and 12.5: every document gzipped, except the copyright file.
uncompressed=$(awk '$1 ~ /^-/ && $6 ~ /^\.\/usr\/share\/doc\// && $6 !~ /\.gz$/ && $6 !~ /\/copyright$/ { print $6 }' \
    <<<"$main_list")
if [[ -z $uncompressed ]]; then
    ok "every file in /usr/share/doc/postie but copyright is gzipped"
else
    fail "not gzipped: $uncompressed"
fi
if grep -qE ' \./(etc|usr/sbin)/' <<<"$main_list"; then
    fail "postie ships files in /etc or /usr/sbin (those are postie-mta's)"
fi

dpkg-deb -e "$main_deb" "$work/main-control"
postinst=$work/main-control/postinst
prerm=$work/main-control/prerm
if grep -q 'update-alternatives --install /usr/bin/mailx mailx /usr/bin/postie' "$postinst"; then
    ok "postinst registers the mailx alternative"
else
    fail "postinst does not register /usr/bin/postie as the mailx alternative"
fi
priority=$(sed -n 's|.*--install /usr/bin/mailx mailx /usr/bin/postie \([0-9]*\).*|\1|p' "$postinst")
# Debian's own: bsd-mailx 50, mailutils 30. postie must never win over them.
if [[ -n $priority ]] && ((priority < 30)); then
    ok "mailx priority $priority (below mailutils 30 and bsd-mailx 50)"
else
    fail "mailx priority '$priority' must be below 30"
fi
if grep -q 'update-alternatives --remove mailx /usr/bin/postie' "$prerm"; then
    ok "prerm removes the mailx alternative"
else
    fail "prerm does not remove the mailx alternative"
fi
# The timer stays off until the admin enables it: the scripts may only re-enable a unit
# that was enabled before (deb-systemd-helper was-enabled), never start one.
if grep -E 'systemctl( --system)? (enable|start)|deb-systemd-invoke (start|restart)' \
    "$postinst"; then
    fail "postinst enables or starts a unit"
else
    ok "postinst neither enables nor starts the queue timer"
fi
for script in "$work"/main-control/{postinst,prerm,postrm}; do
    sh -n "$script" || fail "$(basename "$script") is not valid sh"
done

echo "=== $mta_deb"
field "$mta_deb" Package postie-mta
field "$mta_deb" Version "$version"
field "$mta_deb" Depends "postie (= $(dpkg-deb -f "$main_deb" Version))"
field "$mta_deb" Architecture "$(dpkg-deb -f "$main_deb" Architecture)"
for f in Provides Conflicts Replaces; do
    field "$mta_deb" "$f" mail-transport-agent
done

mta_list=$(dpkg-deb -c "$mta_deb")
listed "$mta_list" lrwxrwxrwx usr/sbin/sendmail ../bin/postie
listed "$mta_list" lrwxrwxrwx usr/lib/sendmail ../bin/postie
listed "$mta_list" lrwxrwxrwx usr/bin/mailq postie
listed "$mta_list" lrwxrwxrwx usr/bin/newaliases postie
listed "$mta_list" -rw-r--r-- etc/postie.toml
listed "$mta_list" -rw-r--r-- usr/share/doc/postie-mta/copyright
listed "$mta_list" -rw-r--r-- usr/share/doc/postie-mta/changelog.gz
uncompressed=$(awk '$1 ~ /^-/ && $6 ~ /^\.\/usr\/share\/doc\// && $6 !~ /\.gz$/ && $6 !~ /\/copyright$/ { print $6 }' \
    <<<"$mta_list")
[[ -z $uncompressed ]] || fail "postie-mta: not gzipped: $uncompressed"
if grep -q ' \./usr/bin/postie$' <<<"$mta_list"; then
    fail "postie-mta ships the binary itself (it belongs to postie)"
fi

dpkg-deb -e "$mta_deb" "$work/mta-control"
if grep -qx /etc/postie.toml "$work/mta-control/conffiles" 2>/dev/null; then
    ok "/etc/postie.toml is a conffile"
else
    fail "/etc/postie.toml is not listed in conffiles"
fi

# Unpack both into one root, as dpkg would lay them out, without installing anything.
root=$work/root
dpkg-deb -x "$main_deb" "$root"
dpkg-deb -x "$mta_deb" "$root"
binary=$root/usr/bin/postie
for link in usr/sbin/sendmail usr/lib/sendmail usr/bin/mailq usr/bin/newaliases; do
    resolved=$(readlink -f "$root/$link")
    if [[ $resolved == "$binary" && -x $resolved ]]; then
        ok "/$link resolves to /usr/bin/postie"
    else
        fail "/$link resolves to '$resolved', not the packaged /usr/bin/postie"
    fi
done
# As shipped, the example configuration sets nothing.
if grep -vnE '^[[:space:]]*(#.*)?$' "$root/etc/postie.toml"; then
    fail "/etc/postie.toml has a line that is not a comment"
else
    ok "/etc/postie.toml is all comments"
fi

# The gzipped documents are the source tree's; the changelog's first entry is this version.
doc=$root/usr/share/doc/postie
for f in README.md GUIDE.md; do
    if gzip -dc "$doc/$f.gz" | cmp -s - "$f"; then
        ok "/usr/share/doc/postie/$f.gz is $f"
    else
        fail "/usr/share/doc/postie/$f.gz does not unpack to the source's $f"
    fi
done
for pkg in postie postie-mta; do
    first=$(gzip -dc "$root/usr/share/doc/$pkg/changelog.gz" | head -n 1)
    if [[ $first == "postie ($version) "* ]]; then
        ok "$pkg changelog.gz: $first"
    else
        fail "$pkg changelog.gz starts '$first', want an entry for postie ($version)"
    fi
done

# The copyright file (the same in both packages) names every crate linked into the
# binary, with the licence expression its Cargo.toml gives ("A/B" is "A OR B"). The list
# to check against is cargo tree's, which resolves features as the build does (the file
# is written from cargo metadata, a superset).
copyright=$doc/copyright
cmp -s "$copyright" "$root/usr/share/doc/postie-mta/copyright" ||
    fail "postie-mta's copyright differs from postie's"
if grep -q '^Files: \*$' "$copyright" && grep -q '^License: MIT or Apache-2.0$' "$copyright"; then
    ok "copyright: postie's own paragraph"
else
    fail "copyright: no 'Files: *' paragraph with postie's licence"
fi
# NAME-VERSION|LICENCE for each crate paragraph of the file.
in_file=$(awk '/^Files: vendor\// { sub(/^Files: vendor\//, ""); sub(/\/\*$/, ""); crate = $0 }
    /^License: / && crate != "" { sub(/^License: /, ""); print crate "|" $0; crate = "" }' "$copyright")
if ! linked=$(cargo tree --locked -e normal,no-proc-macro --prefix none --format '{p}|{l}' 2>"$work/tree.err"); then
    fail "cargo tree failed: $(cat "$work/tree.err")"
fi
missing=0 count=0
while IFS='|' read -r p l; do
    read -r name ver _ <<<"$p"
    [[ $name == postie ]] && continue
    want="$name-${ver#v}|${l//\// OR }"
    count=$((count + 1))
    if ! grep -qxF "$want" <<<"$in_file"; then
        fail "copyright: no paragraph 'vendor/${want%%|*}' with License: ${want#*|}"
        missing=$((missing + 1))
    fi
done < <(sed 's/ (\*)$//' <<<"$linked" | sort -u)
if ((count > 0 && missing == 0)); then
    ok "copyright: all $count linked crates, each with its licence expression ($(wc -l <<<"$in_file") listed)"
elif ((count == 0)); then
    fail "copyright: cargo tree named no linked crate"
fi

# The links make the binary act as what they name (persona from argv[0]). A private queue
# directory and an empty configuration home keep the host's files out of it.
export POSTIE_QUEUE_DIR=$work/queue HOME=$work/home XDG_CONFIG_HOME=$work/home/.config
mkdir -p "$HOME"
if out=$("$root/usr/bin/mailq" 2>&1) && [[ $out == "Mail queue is empty" ]]; then
    ok "mailq lists the (empty) queue"
else
    fail "mailq printed '$out'"
fi
if "$root/usr/bin/newaliases" </dev/null; then
    ok "newaliases exits 0"
else
    fail "newaliases exited $?"
fi
if out=$("$root/usr/sbin/sendmail" -bp 2>&1) && [[ $out == "Mail queue is empty" ]]; then
    ok "sendmail -bp lists the (empty) queue"
else
    fail "sendmail -bp printed '$out'"
fi
if out=$("$binary" --version) && [[ $out == "postie $version" ]]; then
    ok "postie --version: $out"
else
    fail "postie --version printed '$out', want 'postie $version'"
fi

if ((failures)); then
    echo "check-debs: $failures check(s) failed" >&2
    exit 1
fi
echo "check-debs: all checks passed"
