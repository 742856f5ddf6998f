
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'postie' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'postie'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'postie' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Add a To: recipient (repeatable; a comma-separated list is allowed)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)')
            [CompletionResult]::new('--cc', '--cc', [CompletionResultType]::ParameterName, 'Add a Cc: recipient (repeatable; a comma-separated list is allowed)')
            [CompletionResult]::new('-b', '-b', [CompletionResultType]::ParameterName, 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers')
            [CompletionResult]::new('--bcc', '--bcc', [CompletionResultType]::ParameterName, 'Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Subject line. Non-ASCII text is encoded per RFC 2047')
            [CompletionResult]::new('--subject', '--subject', [CompletionResultType]::ParameterName, 'Subject line. Non-ASCII text is encoded per RFC 2047')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM)')
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Add a header, "Name: value" (repeatable). CR and LF are refused')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Add a header, "Name: value" (repeatable). CR and LF are refused')
            [CompletionResult]::new('--body', '--body', [CompletionResultType]::ParameterName, 'Message body text. Without --body or --body-file the body is read from stdin')
            [CompletionResult]::new('--body-file', '--body-file', [CompletionResultType]::ParameterName, 'Read the message body from FILE')
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a ''dump.bin;type=application/x-core''')
            [CompletionResult]::new('--attach', '--attach', [CompletionResultType]::ParameterName, 'Attach FILE (repeatable). The content type is guessed from the file name; append ";type=MIME/TYPE" to set it, e.g. -a ''dump.bin;type=application/x-core''')
            [CompletionResult]::new('--message', '--message', [CompletionResultType]::ParameterName, 'Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one')
            [CompletionResult]::new('--messages', '--messages', [CompletionResultType]::ParameterName, 'Send many messages over one connection: each PATH is a directory of .eml files, an mbox file or a JSON-lines file (also written `postie batch PATH...`)')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465 with --tls implicit')
            [CompletionResult]::new('--socket', '--socket', [CompletionResultType]::ParameterName, 'Connect to the unix domain socket PATH instead of a TCP server, e.g. /run/dovecot/lmtp with --protocol lmtp')
            [CompletionResult]::new('--protocol', '--protocol', [CompletionResultType]::ParameterName, 'Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent')
            [CompletionResult]::new('--tls', '--tls', [CompletionResultType]::ParameterName, 'Connection security [default: implicit on port 465, else starttls]')
            [CompletionResult]::new('--tls-ca', '--tls-ca', [CompletionResultType]::ParameterName, 'Trust the CA certificates in FILE (PEM) as well as the built-in web roots')
            [CompletionResult]::new('--helo', '--helo', [CompletionResultType]::ParameterName, 'Name to give in EHLO/HELO [default: this host''s name]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Time limit in seconds for every step (connect, each reply, each data block)')
            [CompletionResult]::new('--resolver', '--resolver', [CompletionResultType]::ParameterName, 'Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of the system''s resolvers. Also POSTIE_RESOLVER')
            [CompletionResult]::new('--mta-sts-url-base', '--mta-sts-url-base', [CompletionResultType]::ParameterName, 'For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback test server whose CA is given with --tls-ca)')
            [CompletionResult]::new('--domain', '--domain', [CompletionResultType]::ParameterName, 'Qualify bare local recipients (root, www-data) with this domain')
            [CompletionResult]::new('--aliases', '--aliases', [CompletionResultType]::ParameterName, 'Map bare local recipients through this aliases(5)-style file ("root: ops@example.com", "default: admin@example.com")')
            [CompletionResult]::new('-C', '-C ', [CompletionResultType]::ParameterName, 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Use account NAME from the configuration file')
            [CompletionResult]::new('--account', '--account', [CompletionResultType]::ParameterName, 'Use account NAME from the configuration file')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Append one line per message to FILE (time, server, TLS, sender, recipients, size, the server''s last reply, exit code); "-" for stdout. Never a secret')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as NAME (SMTP AUTH)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--dkim-key', '--dkim-key', [CompletionResultType]::ParameterName, 'Sign the message with DKIM using this private key (PEM: RSA or Ed25519)')
            [CompletionResult]::new('--dkim-selector', '--dkim-selector', [CompletionResultType]::ParameterName, 'The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN')
            [CompletionResult]::new('--dkim-domain', '--dkim-domain', [CompletionResultType]::ParameterName, 'The DKIM signing domain (d=) [default: the From: address''s domain]')
            [CompletionResult]::new('--dkim-expire', '--dkim-expire', [CompletionResultType]::ParameterName, 'Make the DKIM signature expire (x=) SECS after signing')
            [CompletionResult]::new('--password-command', '--password-command', [CompletionResultType]::ParameterName, 'Run CMD with sh -c and use the first line of its output as the password')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Use this AUTH mechanism [default: the best one the server offers]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set), always or never')
            [CompletionResult]::new('--quit-after', '--quit-after', [CompletionResultType]::ParameterName, 'Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a server without sending mail')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'With --mx (or no server configured): the port to use on each MX host [default: 25]')
            [CompletionResult]::new('--queue-dir', '--queue-dir', [CompletionResultType]::ParameterName, 'The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue or ~/.local/state/postie/queue; /var/spool/postie for root]')
            [CompletionResult]::new('--queue-max-age', '--queue-max-age', [CompletionResultType]::ParameterName, 'Give up on a queued message this old and report it to its sender [default: 5d]: seconds, or a number with s, m, h or d')
            [CompletionResult]::new('--tls-no-verify', '--tls-no-verify', [CompletionResultType]::ParameterName, 'Do not verify the server''s TLS certificate. DANGEROUS: anyone on the path can read the mail and the password. For testing only; postie warns on every run')
            [CompletionResult]::new('--no-mta-sts', '--no-mta-sts', [CompletionResultType]::ParameterName, 'Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain''s published policy is fetched over HTTPS, cached, and in enforce mode restricts delivery to its listed MX hosts over verified TLS')
            [CompletionResult]::new('--no-pipelining', '--no-pipelining', [CompletionResultType]::ParameterName, 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks''s default; for interop and debugging)')
            [CompletionResult]::new('--no-pipeline', '--no-pipeline', [CompletionResultType]::ParameterName, 'Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send each command and wait for its reply (swaks''s default; for interop and debugging)')
            [CompletionResult]::new('--no-chunking', '--no-chunking', [CompletionResultType]::ParameterName, 'Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the message with DATA and dot-stuffing')
            [CompletionResult]::new('--require-tls', '--require-tls', [CompletionResultType]::ParameterName, 'Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS)')
            [CompletionResult]::new('--skip-empty', '--skip-empty', [CompletionResultType]::ParameterName, 'Send nothing (and exit 0) when the body is empty (mailx -E)')
            [CompletionResult]::new('-P', '-P ', [CompletionResultType]::ParameterName, 'Print the resolved settings (password masked) and exit (msmtp''s -P)')
            [CompletionResult]::new('--show-config', '--show-config', [CompletionResultType]::ParameterName, 'Print the resolved settings (password masked) and exit (msmtp''s -P)')
            [CompletionResult]::new('--allow-plaintext-auth', '--allow-plaintext-auth', [CompletionResultType]::ParameterName, 'Allow AUTH over a connection that is not encrypted (the password travels in clear)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked')
            [CompletionResult]::new('--syslog', '--syslog', [CompletionResultType]::ParameterName, 'Send the --log line to syslog as well (facility mail), even without --log')
            [CompletionResult]::new('--show-time', '--show-time', [CompletionResultType]::ParameterName, 'With -v, show how long the server took to answer each command, and the total')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the envelope and the message that would be sent, and send nothing')
            [CompletionResult]::new('--print-message', '--print-message', [CompletionResultType]::ParameterName, 'Print the envelope and the message that would be sent, and send nothing')
            [CompletionResult]::new('--probe', '--probe', [CompletionResultType]::ParameterName, 'Report what the server offers, and send nothing (msmtp''s --serverinfo)')
            [CompletionResult]::new('--mx', '--mx', [CompletionResultType]::ParameterName, 'Deliver straight to each recipient domain''s mail exchangers (MX), on port 25')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Connect over IPv4 only')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Connect over IPv4 only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Connect over IPv6 only')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Connect over IPv6 only')
            [CompletionResult]::new('--queue', '--queue', [CompletionResultType]::ParameterName, 'When delivery fails temporarily, keep the message in the queue and exit 0')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'When done, print one JSON object on stdout describing the run, even when it failed')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
