dnl popgate-milter.m4 - popgate's milter for Sendmail (installed as
dnl /etc/mail/m4/popgate-milter.m4). Add to /etc/mail/sendmail.mc, after the
dnl FEATURE lines and before the MAILER lines:
dnl   include(`/etc/mail/m4/popgate-milter.m4')dnl
dnl then rebuild and restart: sendmailconfig (or `make` in /etc/mail and
dnl restart sendmail). See docs/mta-integration.md.
dnl
dnl S= the socket popgate-milter listens on: local:/run/popgate/milter.sock
dnl    (Sendmail is not chrooted and its MTA runs as root, so the 0770 socket
dnl    needs no group change) or inet:PORT@127.0.0.1. It must match the
dnl    milter's own socket setting.
dnl F=T tempfail (4xx) while the milter is unavailable, so that senders and
dnl    popgated retry later instead of mail passing unfiltered.
dnl T= timeouts, the same as Postfix's milter_*_timeout defaults: C connect,
dnl    S sending to the milter, R waiting for its reply, E end of message.
dnl INPUT_MAIL_FILTER also appends `popgate' to confINPUT_MAIL_FILTERS;
dnl defining that variable after this include would drop it again.
INPUT_MAIL_FILTER(`popgate', `S=local:/run/popgate/milter.sock, F=T, T=C:30s;S:30s;R:30s;E:5m')dnl
dnl
dnl Optional dedicated listener for popgated's reinjection (the Sendmail
dnl counterpart of conf/postfix/master.cf.popgate): the milter then sees
dnl {daemon_name}=POPGATE for fetched mail. Uncomment (remove the leading
dnl "dnl ") and point popgated's reinjection at 127.0.0.1:10026.
dnl DAEMON_OPTIONS(`Family=inet, Name=POPGATE, Port=10026, Addr=127.0.0.1')dnl
