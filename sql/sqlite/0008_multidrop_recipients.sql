-- 0008: domain ("multidrop") mailboxes (sqlite); core/recipients.h.
-- accounts: where a message's recipients come from. 'fixed' is deliver-to
-- (every account before 0008); 'envelope' reads envelope_header (the
-- envelope_header_skip-th field from the top), keeps local_domains, rewrites
-- by recipient_map ("ADDRESS=RECIPIENT, ...") and sends the rest to
-- fallback_recipient ('' = refuse it; no header at all = quarantine).
ALTER TABLE accounts ADD COLUMN recipients TEXT NOT NULL DEFAULT 'fixed';
ALTER TABLE accounts ADD COLUMN envelope_header TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN envelope_header_skip INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN local_domains TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN recipient_map TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN fallback_recipient TEXT NOT NULL DEFAULT '';

-- message_recipients: the ledger per recipient, for envelope accounts only (a
-- fixed account's message is one row of messages, as before). A recipient that
-- says 'delivered' is never handed the message again, whatever happens to the
-- message row (a 4xx for another recipient, a crash, a retry); 'refused' is
-- popgate's own rule (outside local-domains), 'failed' the MTA's 5xx to its RCPT.
-- message_id is copied here so that the same Message-ID arriving once per
-- recipient is delivered once to each (one query, no join).
CREATE TABLE message_recipients (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    uidl       TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    state      TEXT    NOT NULL
               CHECK (state IN ('pending', 'delivered', 'deferred', 'failed', 'refused')),
    message_id TEXT    NOT NULL DEFAULT '',
    queue_id   TEXT    NOT NULL DEFAULT '',
    reason     TEXT    NOT NULL DEFAULT '',
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (account_id, uidl, recipient)
);
CREATE INDEX message_recipients_by_message_id ON message_recipients (account_id, message_id);
