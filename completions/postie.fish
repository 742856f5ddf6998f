complete -c postie -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -s V -l version -d 'Print version'
