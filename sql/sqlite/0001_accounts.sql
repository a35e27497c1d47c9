-- 0001: email accounts (SQLite). One row per POP3 mailbox popgate fetches.
-- Secrets are stored sealed (AES-256-GCM, see core/secretbox.h), never in clear.
-- Booleans are INTEGER 0/1 in both dialects so one binding serves both.
CREATE TABLE accounts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    type             TEXT    NOT NULL DEFAULT 'pop3' CHECK (type IN ('pop3')),
    auth             TEXT    NOT NULL CHECK (auth IN ('none', 'password', 'oauth', 'oauth2')),
    server           TEXT    NOT NULL,
    port             INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
    username         TEXT    NOT NULL DEFAULT '',
    secret           TEXT    NOT NULL DEFAULT '',
    security         TEXT    NOT NULL CHECK (security IN ('none', 'starttls', 'ssl-tls')),
    filter           TEXT    NOT NULL DEFAULT '',
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    provisioned      INTEGER NOT NULL DEFAULT 0 CHECK (provisioned IN (0, 1)),
    debug_logging    INTEGER NOT NULL DEFAULT 0 CHECK (debug_logging IN (0, 1)),
    mailbox          TEXT    NOT NULL DEFAULT '',
    deliver_to       TEXT    NOT NULL DEFAULT '',
    poll_interval    INTEGER NOT NULL DEFAULT 120,
    keep_on_server   INTEGER NOT NULL DEFAULT 0 CHECK (keep_on_server IN (0, 1)),
    max_message_size BIGINT  NOT NULL DEFAULT 0,
    tls_ca_file      TEXT    NOT NULL DEFAULT '',
    tls_pin          TEXT    NOT NULL DEFAULT '',
    oauth_profile    TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
