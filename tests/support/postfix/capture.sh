# pipe(8) command of the test Postfix: store one delivered message (stdin) as
# DIR/<recipient>, or DIR/<recipient>.N if that exists. Written to a temporary name
# first and renamed, so a reader never sees a partial file. Exit 75 = try again later.
umask 022
dir=$1
rcpt=$(printf '%s' "$2" | tr -c 'a-z0-9@._+-' '_')
tmp=$dir/.tmp.$$
cat >"$tmp" || { rm -f "$tmp"; exit 75; }
f=$dir/$rcpt
n=0
while [ -e "$f" ] && [ "$n" -lt 1000 ]; do n=$((n + 1)); f=$dir/$rcpt.$n; done
mv "$tmp" "$f" || exit 75
