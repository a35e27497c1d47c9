-- 0002: what popgated knows about each message and account (postgresql).
-- messages: one row per (account, UIDL), the never-twice ledger. A message is
-- DELEted only when its row says injected (the MTA's 250 was recorded) or
-- ignored (quarantined); a row in 'injecting' is an uncertain outcome.
CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    uidl            TEXT    NOT NULL,
    state           TEXT    NOT NULL
                    CHECK (state IN ('injecting', 'injected', 'ignored', 'failed', 'deferred')),
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    message_id      TEXT    NOT NULL DEFAULT '',
    envelope_from   TEXT    NOT NULL DEFAULT '',
    header_from     TEXT    NOT NULL DEFAULT '',
    size            BIGINT  NOT NULL DEFAULT 0,
    queue_id        TEXT    NOT NULL DEFAULT '',
    reason          TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    retry_at        BIGINT  NOT NULL DEFAULT 0,
    quarantine_path TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (account_id, uidl)
);
CREATE INDEX messages_by_message_id ON messages (account_id, message_id);

-- message_log: one row per event an operator may ask about (popgatectl log).
CREATE TABLE message_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    account    TEXT    NOT NULL,
    uidl       TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',
    sender     TEXT    NOT NULL DEFAULT '',
    size       BIGINT  NOT NULL DEFAULT 0,
    status     TEXT    NOT NULL,
    relay      TEXT    NOT NULL DEFAULT '',
    queue_id   TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX message_log_by_account ON message_log (account, at);

-- account_status: the fetcher's view of each account (popgatectl status).
CREATE TABLE account_status (
    account_id           BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    last_poll_at         BIGINT  NOT NULL DEFAULT 0,
    last_success_at      BIGINT  NOT NULL DEFAULT 0,
    last_error           TEXT    NOT NULL DEFAULT '',
    last_error_at        BIGINT  NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    auth_failures        INTEGER NOT NULL DEFAULT 0,
    next_poll_at         BIGINT  NOT NULL DEFAULT 0,
    debug_until          BIGINT  NOT NULL DEFAULT 0
);

-- Per-account protocol choices the POP3 client honours.
ALTER TABLE accounts ADD COLUMN auth_mechanism TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE accounts ADD COLUMN plaintext_auth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN tls_min_version TEXT NOT NULL DEFAULT '1.2';
