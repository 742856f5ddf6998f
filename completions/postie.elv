
use builtin;
use str;

set edit:completion:arg-completer[postie] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'postie'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'postie'= {
            cand --to 'Add a To: recipient (repeatable; a comma-separated list is allowed)'
            cand -c 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)'
            cand --cc 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)'
            cand -b 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers'
            cand --bcc 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers'
            cand -s 'Subject line. Non-ASCII text is encoded per RFC 2047'
            cand --subject 'Subject line. Non-ASCII text is encoded per RFC 2047'
            cand -f 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)'
            cand --from 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)'
            cand -H 'Add a header, "Name: value" (repeatable). CR and LF are refused'
            cand --header 'Add a header, "Name: value" (repeatable). CR and LF are refused'
            cand --body 'Message body text. Without --body or --body-file the body is read from stdin'
            cand --body-file 'Read the message body from FILE'
            cand -a 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a ''dump.bin;type=application/x-core'''
            cand --attach 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a ''dump.bin;type=application/x-core'''
            cand --message 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one'
            cand --messages 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)'
            cand --server 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit'
            cand --socket 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp'
            cand --protocol 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent'
            cand --tls 'Connection security [default: implicit on port 465, else starttls]'
            cand --tls-ca 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots'
            cand --helo 'Name to give in EHLO/HELO [default: this host''s name]'
            cand --timeout 'Time limit in seconds for every step (connect, each reply, each data block)'
            cand --resolver 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system''s resolvers. Also POSTIE_RESOLVER'
            cand --mta-sts-url-base 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)'
            cand --domain 'Qualify bare local recipients (root, www-data) with this domain'
            cand --aliases 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")'
            cand -C 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places'
            cand --config 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places'
            cand -A 'Use account NAME from the configuration file'
            cand --account 'Use account NAME from the configuration file'
            cand --log 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server''s last reply, exit code); "-" for stdout. Never a secret'
            cand --user 'Log in as NAME (SMTP AUTH)'
            cand --password-file 'Read the password from the first line of FILE'
            cand --dkim-key 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)'
            cand --dkim-selector 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN'
            cand --dkim-domain 'The DKIM signing domain (d=) [default: the From: address''s domain]'
            cand --dkim-expire 'Make the DKIM signature expire (x=) SECS after signing'
            cand --password-command 'Run CMD with sh -c and use the first line of its output as the password'
            cand --auth 'Use this AUTH mechanism [default: the best one the server offers]'
            cand --color 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never'
            cand --quit-after 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail'
            cand --port 'With --mx (or no server configured): the port to use on each MX host [default: 25]'
            cand --queue-dir 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]'
            cand --queue-max-age 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d'
            cand --tls-no-verify 'Do not verify the server''s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run'
            cand --no-mta-sts 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain''s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS'
            cand --no-pipelining 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks''s default; for interop and debugging)'
            cand --no-pipeline 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks''s default; for interop and debugging)'
            cand --no-chunking 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing'
            cand --require-tls 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)'
            cand --skip-empty 'Send nothing (and exit 0) when the body is empty (mailx -E)'
            cand -P 'Print the resolved settings (password masked) and exit (msmtp''s -P)'
            cand --show-config 'Print the resolved settings (password masked) and exit (msmtp''s -P)'
            cand --allow-plaintext-auth 'Allow AUTH over a connection that is not encrypted (the password travels in clear)'
            cand -v 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
            cand --verbose 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked'
            cand --syslog 'Send the --log line to syslog as well (facility mail), even without --log'
            cand --show-time 'With -v, show how long the server took to answer each command, and the total'
            cand --dry-run 'Print the envelope and the message that would be sent, and send nothing'
            cand --print-message 'Print the envelope and the message that would be sent, and send nothing'
            cand --probe 'Report what the server offers, and send nothing (msmtp''s --serverinfo)'
            cand --mx 'Deliver straight to each recipient domain''s mail exchangers (MX), on port 25'
            cand -4 'Connect over IPv4 only'
            cand --ipv4 'Connect over IPv4 only'
            cand -6 'Connect over IPv6 only'
            cand --ipv6 'Connect over IPv6 only'
            cand --queue 'When delivery fails temporarily, keep the message in the queue and exit 0'
            cand --json 'When done, print one JSON object on stdout describing the run, even when it failed'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
