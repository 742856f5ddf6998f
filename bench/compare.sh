#!/usr/bin/env bash
# Side-by-side benchmark: postie against msmtp, curl and Postfix's smtp-source, all sending
# to one smtp-sink on loopback. Prints times, peak memory and ratios (postie / anchor).
#
#   bench/compare.sh            # needs: smtp-sink smtp-source msmtp curl /usr/bin/time
#   N=100 SIZE_MB=20 bench/compare.sh
#
# Bounded: N sequential small messages and one SIZE_MB message per tool; the sink is
# stopped on exit. Traffic goes only to 127.0.0.1.
set -euo pipefail
N=${N:-200}
SIZE_MB=${SIZE_MB:-50}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
cd "$(dirname "$0")/.."

for tool in smtp-sink smtp-source msmtp curl /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install postfix msmtp curl time)"; exit 1; }
done
cargo build --release --quiet
POSTIE=$PWD/target/release/postie

work=$(mktemp -d)
sink_pid=
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
smtp-sink -u nobody 127.0.0.1:"$PORT" 256 &
sink_pid=$!
sleep 0.5

printf 'From: a@example.test\nTo: b@example.test\nSubject: bench\n\nhello\n' > "$work/small.eml"
{ printf 'From: a@example.test\nTo: b@example.test\nSubject: big\n\n'
  head -c $((SIZE_MB * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76; } > "$work/big.eml"
cat > "$work/msmtprc" <<CONF
account bench
host 127.0.0.1
port $PORT
tls off
auth off
from a@example.test
account default : bench
CONF
chmod 600 "$work/msmtprc"

# One small script per tool, so every tool is timed the same way.
printf '#!/bin/sh\nexec %s --server 127.0.0.1:%s --tls none --message "$1" b@example.test\n' \
    "$POSTIE" "$PORT" > "$work/postie.sh"
printf '#!/bin/sh\nexec msmtp -C %s b@example.test < "$1"\n' "$work/msmtprc" > "$work/msmtp.sh"
printf '#!/bin/sh\nexec curl -s smtp://127.0.0.1:%s --mail-from a@example.test --mail-rcpt b@example.test -T "$1"\n' \
    "$PORT" > "$work/curl.sh"
chmod +x "$work"/*.sh

# seconds for N sequential sends of the small message
loop_time() {
    local start end
    start=$(date +%s.%N)
    for _ in $(seq "$N"); do "$work/$1.sh" "$work/small.eml"; done
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
# "seconds maxrss_kb" for one send of the big message
big() {
    /usr/bin/time -f '%e %M' -o "$work/time" "$work/$1.sh" "$work/big.eml"
    cat "$work/time"
}

echo "== $N small messages, one connection each (seconds)"
p=$(loop_time postie); m=$(loop_time msmtp); c=$(loop_time curl)
start=$(date +%s.%N); smtp-source -s 1 -m "$N" -f a@example.test -t b@example.test 127.0.0.1:"$PORT"; end=$(date +%s.%N)
s=$(echo "$end - $start" | bc -l)
printf 'postie %.3f  msmtp %.3f  curl %.3f  smtp-source %.3f\n' "$p" "$m" "$c" "$s"
printf 'ratio postie/msmtp %.2f  postie/curl %.2f  postie/smtp-source %.2f\n' \
    "$(echo "$p/$m" | bc -l)" "$(echo "$p/$c" | bc -l)" "$(echo "$p/$s" | bc -l)"

echo "== one ${SIZE_MB} MB message (seconds, peak RSS KiB)"
read -r pt pm < <(big postie); read -r mt mm < <(big msmtp); read -r ct cm < <(big curl)
printf 'postie %s s %s KiB  msmtp %s s %s KiB  curl %s s %s KiB\n' "$pt" "$pm" "$mt" "$mm" "$ct" "$cm"
printf 'ratio time postie/msmtp %.2f  postie/curl %.2f;  memory postie/msmtp %.2f  postie/curl %.2f\n' \
    "$(echo "$pt/$mt" | bc -l)" "$(echo "$pt/$ct" | bc -l)" "$(echo "$pm/$mm" | bc -l)" "$(echo "$pm/$cm" | bc -l)"
