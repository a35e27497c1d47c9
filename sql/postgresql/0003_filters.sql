-- 0003: system address filters (postgresql). A system filter is an ordered list of
-- email address filters (allow/deny lists of domain and exception patterns);
-- accounts name theirs in accounts.filter (TEXT), or get the active default.
-- Booleans are INTEGER 0/1 in both dialects so one binding serves both.
CREATE TABLE system_filters (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    direction   TEXT    NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    is_default  INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    description TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
-- At most one active default per direction, whoever writes the row.
CREATE UNIQUE INDEX system_filters_one_default ON system_filters (direction)
    WHERE is_default = 1 AND active = 1;

CREATE TABLE address_filters (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    type       TEXT    NOT NULL CHECK (type IN ('allow', 'deny')),
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- The domain and exception patterns of an address filter, as configured, in order.
CREATE TABLE address_filter_patterns (
    id                BIGSERIAL PRIMARY KEY,
    address_filter_id BIGINT NOT NULL REFERENCES address_filters (id) ON DELETE CASCADE,
    kind              TEXT    NOT NULL CHECK (kind IN ('domain', 'exception')),
    position          INTEGER NOT NULL,
    pattern           TEXT    NOT NULL,
    UNIQUE (address_filter_id, kind, pattern)
);

-- Which address filters a system filter holds, in evaluation order. An
-- address filter still attached somewhere cannot be deleted.
CREATE TABLE system_filter_members (
    system_filter_id  BIGINT NOT NULL REFERENCES system_filters (id) ON DELETE CASCADE,
    address_filter_id BIGINT NOT NULL REFERENCES address_filters (id),
    position          INTEGER NOT NULL,
    PRIMARY KEY (system_filter_id, address_filter_id)
);
CREATE INDEX system_filter_members_by_address_filter ON system_filter_members (address_filter_id);

-- One row; every filter change increments it in the same transaction, so a
-- running daemon that sees a new value reloads its filters without a restart.
CREATE TABLE config_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
INSERT INTO config_generation (id, generation, updated_at) VALUES (1, 1, 0);
