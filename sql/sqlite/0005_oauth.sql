-- 0005: OAuth (sqlite). oauth_profiles: one row per OAuth client registration
-- (provider endpoints, client id, SEALED client secret, scope, grant).
-- oauth_tokens: one row per account, its SEALED refresh and access tokens and
-- the access token's expiry; plaintext tokens are never stored.
CREATE TABLE oauth_profiles (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    name                     TEXT    NOT NULL UNIQUE,
    provider                 TEXT    NOT NULL DEFAULT 'generic'
                             CHECK (provider IN ('generic', 'google', 'microsoft')),
    client_id                TEXT    NOT NULL DEFAULT '',
    client_secret            TEXT    NOT NULL DEFAULT '',
    authorization_url        TEXT    NOT NULL DEFAULT '',
    token_url                TEXT    NOT NULL DEFAULT '',
    device_authorization_url TEXT    NOT NULL DEFAULT '',
    scope                    TEXT    NOT NULL DEFAULT '',
    tenant                   TEXT    NOT NULL DEFAULT '',
    grant_type               TEXT    NOT NULL DEFAULT 'authorization_code'
                             CHECK (grant_type IN ('authorization_code', 'device_code', 'client_credentials')),
    created_at               BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL
);

CREATE TABLE oauth_tokens (
    account_id      INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    refresh_token   TEXT    NOT NULL DEFAULT '',
    access_token    TEXT    NOT NULL DEFAULT '',
    expires_at      BIGINT  NOT NULL DEFAULT 0,
    last_refresh_at BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_error_at   BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL
);
