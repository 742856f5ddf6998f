# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_postie_global_optspecs
    string join \n to= c/cc= b/bcc= s/subject= f/from= envelope-from= reply-to= H/header= body= body-file= html= html-body= a/attach= message= messages= server= socket= protocol= tls= tls-ca= helo= timeout= tls-no-verify resolver= no-mta-sts mta-sts-url-base= no-pipelining no-chunking window= connections= require-tls all-or-nothing domain= aliases= skip-empty C/config= A/account= P/show-config log= user= password-file= dkim-key= dkim-selector= dkim-domain= dkim-expire= password-command= auth= allow-plaintext-auth v/verbose syslog color= show-time dry-run quit-after= probe mx port= 4/ipv4 6/ipv6 queue queue-dir= queue-max-age= json h/help V/version
end

function __fish_postie_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_postie_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_postie_using_subcommand
    set -l cmd (__fish_postie_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c postie -n "__fish_postie_needs_command" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_needs_command" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_needs_command" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_needs_command" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_needs_command" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_needs_command" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_needs_command" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_needs_command" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_needs_command" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_needs_command" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_needs_command" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_needs_command" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_needs_command" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_needs_command" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_needs_command" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_needs_command" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_needs_command" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_needs_command" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_needs_command" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_needs_command" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_needs_command" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_needs_command" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_needs_command" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_needs_command" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_needs_command" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_needs_command" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_needs_command" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_needs_command" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_needs_command" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_needs_command" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_needs_command" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_needs_command" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_needs_command" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_needs_command" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_needs_command" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_needs_command" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_needs_command" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_needs_command" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_needs_command" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_needs_command" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_needs_command" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_needs_command" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_needs_command" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_needs_command" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_needs_command" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_needs_command" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_needs_command" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_needs_command" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_needs_command" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_needs_command" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_needs_command" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_needs_command" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_needs_command" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_needs_command" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_needs_command" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_needs_command" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_needs_command" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_needs_command" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_needs_command" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_needs_command" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_needs_command" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_needs_command" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_needs_command" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_needs_command" -s V -l version -d 'Print version'
complete -c postie -n "__fish_postie_needs_command" -a "batch" -d 'Send many messages over one connection (same as postie --messages PATH...)'
complete -c postie -n "__fish_postie_needs_command" -a "queue" -d 'Look at and run the queue of messages kept by --queue'
complete -c postie -n "__fish_postie_needs_command" -a "dkim" -d 'DKIM key management'
complete -c postie -n "__fish_postie_needs_command" -a "check" -d 'Lint a message before sending it: headers, line lengths and endings, and (with DNS) SPF, DKIM and DMARC'
complete -c postie -n "__fish_postie_needs_command" -a "oauth" -d 'Sign in to Microsoft 365, Gmail or another OAuth 2.0 provider and keep the token'
complete -c postie -n "__fish_postie_using_subcommand batch" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_using_subcommand batch" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_using_subcommand batch" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_using_subcommand batch" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_using_subcommand batch" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_using_subcommand batch" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_using_subcommand batch" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_using_subcommand batch" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_using_subcommand batch" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_using_subcommand batch" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_using_subcommand batch" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_using_subcommand batch" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_using_subcommand batch" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_using_subcommand batch" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_using_subcommand batch" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_using_subcommand batch" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_using_subcommand batch" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_using_subcommand batch" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_using_subcommand batch" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_using_subcommand batch" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_using_subcommand batch" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_using_subcommand batch" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_using_subcommand batch" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_using_subcommand batch" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_using_subcommand batch" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_using_subcommand batch" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_using_subcommand batch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand queue; and not __fish_seen_subcommand_from list run flush remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand queue; and not __fish_seen_subcommand_from list run flush remove" -f -a "list" -d 'List the queue: id, age, size, sender, recipients, attempts, last error'
complete -c postie -n "__fish_postie_using_subcommand queue; and not __fish_seen_subcommand_from list run flush remove" -f -a "run" -d 'Try every entry that is due; give up on those older than --queue-max-age'
complete -c postie -n "__fish_postie_using_subcommand queue; and not __fish_seen_subcommand_from list run flush remove" -f -a "flush" -d 'Try every entry now, whatever its backoff says'
complete -c postie -n "__fish_postie_using_subcommand queue; and not __fish_seen_subcommand_from list run flush remove" -f -a "remove" -d 'Remove the entries named'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from flush" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l to -d 'Add a To: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s c -l cc -d 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s b -l bcc -d 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s s -l subject -d 'Subject line. Non-ASCII text is encoded per RFC 2047' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s f -l from -d 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l envelope-from -d 'The envelope sender (MAIL FROM) alone, when it must differ from the From: header: bounces go there (sendmail\'s -f meaning; "<>" is the null sender)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l reply-to -d 'A Reply-To: header for a composed message (repeatable; a comma-separated list is allowed)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s H -l header -d 'Add a header, "Name: value" (repeatable). CR and LF are refused' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l body -d 'Message body text. Without --body or --body-file the body is read from stdin' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l body-file -d 'Read the message body from FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l html -d 'HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file), the message is multipart/alternative: the text for plain readers, the HTML for the rest' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l html-body -d 'HTML body text (as --html, from the command line)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s a -l attach -d 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a \'dump.bin;type=application/x-core\'' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l message -d 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l messages -d 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l server -d 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l socket -d 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l protocol -d 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent' -r -f -a "smtp\t'SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients'
lmtp\t'LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus: LHLO, and one reply per accepted recipient after the end of data'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l tls -d 'Connection security [default: implicit on port 465, else starttls]' -r -f -a "starttls\t'Plain connection upgraded with STARTTLS; the upgrade is required'
implicit\t'TLS from the first byte (SMTPS, port 465)'
none\t'No TLS at all. AUTH then also needs --allow-plaintext-auth'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l tls-ca -d 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l helo -d 'Name to give in EHLO/HELO [default: this host\'s name]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l timeout -d 'Time limit in seconds for every step (connect, each reply, each data block)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l resolver -d 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system\'s resolvers. Also POSTIE_RESOLVER' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l mta-sts-url-base -d 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l window -d 'postie batch and postie queue run/flush: how many messages may be in flight at once, sent before the replies to the earlier ones are in (1: one at a time)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l connections -d 'postie batch and postie queue run: how many sessions send in parallel, spread over the server list (1: one connection)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l domain -d 'Qualify bare local recipients (root, www-data) with this domain' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l aliases -d 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s C -l config -d 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s A -l account -d 'Use account NAME from the configuration file' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l log -d 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server\'s last reply, exit code); "-" for stdout. Never a secret' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l user -d 'Log in as NAME (SMTP AUTH)' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l dkim-key -d 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l dkim-selector -d 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l dkim-domain -d 'The DKIM signing domain (d=) [default: the From: address\'s domain]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l dkim-expire -d 'Make the DKIM signature expire (x=) SECS after signing' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l password-command -d 'Run CMD with sh -c and use the first line of its output as the password' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l auth -d 'Use this AUTH mechanism [default: the best one the server offers]' -r -f -a "PLAIN\t'RFC 4616: user and password in one base64 line'
LOGIN\t'The legacy two-prompt exchange'
SCRAM-SHA-256\t'RFC 7677: proves knowledge of the password without sending it, and checks that the server knows it too. Chosen first when the server offers it'
CRAM-MD5\t'RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named'
XOAUTH2\t'Google\'s and Microsoft\'s OAuth 2.0 format: the password source gives the access token'
OAUTHBEARER\t'RFC 7628 OAuth 2.0 bearer token: the password source gives the access token'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l color -d 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never' -r -f -a "auto\t'When stderr is a terminal and NO_COLOR is not set'
always\t'Always, even into a pipe or with NO_COLOR set'
never\t'Never'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l quit-after -d 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail' -r -f -a "connect\t'Close as soon as the connection is up (with implicit TLS: after the handshake)'
greeting\t'After the server\'s greeting'
ehlo\t'After the first EHLO (or HELO)'
starttls\t'After the 220 to STARTTLS and the TLS handshake (needs --tls starttls)'
tls\t'After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO)'
auth\t'After a successful AUTH (needs --user)'
mail\t'After MAIL FROM is accepted'
rcpt\t'After every RCPT TO is answered (needs a recipient)'
data\t'After DATA\'s 354: the connection is closed without the end-of-data mark, so nothing is delivered'"
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l port -d 'With --mx (or no server configured): the port to use on each MX host [default: 25]' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l queue-dir -d 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]' -r -F
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l queue-max-age -d 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d' -r
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l tls-no-verify -d 'Do not verify the server\'s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l no-mta-sts -d 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain\'s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l no-pipelining -l no-pipeline -d 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks\'s default; for interop and debugging)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l no-chunking -d 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l require-tls -d 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l all-or-nothing -d 'Send to nobody if the server refuses any recipient (msmtp\'s behaviour; also the config key `all_or_nothing = true`)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l skip-empty -d 'Send nothing (and exit 0) when the body is empty (mailx -E)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s P -l show-config -d 'Print the resolved settings (password masked) and exit (msmtp\'s -P)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l allow-plaintext-auth -d 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l syslog -d 'Send the --log line to syslog as well (facility mail), even without --log'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l show-time -d 'With -v, show how long the server took to answer each command, and the total'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l dry-run -l print-message -d 'Print the envelope and the message that would be sent, and send nothing'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l probe -d 'Report what the server offers, and send nothing (msmtp\'s --serverinfo)'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l mx -d 'Deliver straight to each recipient domain\'s mail exchangers (MX), on port 25'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s 4 -l ipv4 -d 'Connect over IPv4 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s 6 -l ipv6 -d 'Connect over IPv6 only'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l queue -d 'When delivery fails temporarily, keep the message in the queue and exit 0'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -l json -d 'When done, print one JSON object on stdout describing the run, even when it failed'
complete -c postie -n "__fish_postie_using_subcommand queue; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand dkim; and not __fish_seen_subcommand_from keygen" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand dkim; and not __fish_seen_subcommand_from keygen" -f -a "keygen" -d 'Write a new private key (PKCS#8 PEM, mode 0600) and print the DNS TXT record'
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l selector -d 'The selector: the key is published at SEL._domainkey.DOMAIN' -r
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l domain -d 'The signing domain (d=)' -r
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l type -d 'Key algorithm' -r -f -a "rsa\t''
ed25519\t''"
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l bits -d 'RSA key size' -r
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l out -d 'Where to write the private key [default: SEL.DOMAIN.key in the current directory]' -r -F
complete -c postie -n "__fish_postie_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand check" -s f -l from -d 'The envelope sender the message will be sent with (as `postie -f`)' -r
complete -c postie -n "__fish_postie_using_subcommand check" -l resolver -d 'Ask only this DNS server (port 53 unless given)' -r
complete -c postie -n "__fish_postie_using_subcommand check" -l helo -d 'The HELO name SPF is evaluated with (default: the envelope domain)' -r
complete -c postie -n "__fish_postie_using_subcommand check" -l ip -d 'The address the message will leave from, for an SPF verdict' -r
complete -c postie -n "__fish_postie_using_subcommand check" -l json -d 'One JSON object on stdout instead of lines'
complete -c postie -n "__fish_postie_using_subcommand check" -l no-dns -d 'Lint the message only; ask DNS nothing'
complete -c postie -n "__fish_postie_using_subcommand check" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -s C -l config -d 'The configuration file [default: the first of postie\'s and msmtp\'s usual files]' -r -F
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -f -a "login" -d 'Sign the account in (once): device code, or browser with a loopback redirect'
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -f -a "token" -d 'Print a valid access token (refreshed if needed) on standard output'
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -f -a "status" -d 'Say which accounts are signed in, until when, with which scopes, and where the token file is (never the token)'
complete -c postie -n "__fish_postie_using_subcommand oauth; and not __fish_seen_subcommand_from login token status logout" -f -a "logout" -d 'Forget the account\'s tokens (removes the token file)'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from login" -s C -l config -d 'The configuration file [default: the first of postie\'s and msmtp\'s usual files]' -r -F
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from login" -l device -d 'Show a code to enter on any device (the default without a display)'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from login" -l browser -d 'Open an address in a browser on this machine, which returns to 127.0.0.1 (the default with a display, and always for Google)'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from token" -s C -l config -d 'The configuration file [default: the first of postie\'s and msmtp\'s usual files]' -r -F
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from status" -s C -l config -d 'The configuration file [default: the first of postie\'s and msmtp\'s usual files]' -r -F
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from logout" -s C -l config -d 'The configuration file [default: the first of postie\'s and msmtp\'s usual files]' -r -F
complete -c postie -n "__fish_postie_using_subcommand oauth; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help'
