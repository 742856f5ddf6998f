mod generated;
mod postfix;
mod submission;
