mod dns;
mod generated;
mod logging;
mod postfix;
mod sendmail;
mod submission;
mod transcript;
