mod dns;
mod generated;
mod logging;
mod postfix;
mod probe;
mod sendmail;
mod submission;
mod transcript;
