mod generated;
mod postfix;
mod sendmail;
mod submission;
