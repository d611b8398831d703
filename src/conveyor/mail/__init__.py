"""Email: the templates mails are rendered from (:mod:`conveyor.mail.rendering`) and
the SMTP transport that sends them (:mod:`conveyor.mail.smtp`)."""
