-- 0007: the receiving switch (sqlite); popgatectl(8) receiving.
-- settings: gateway-wide switches every popgated host obeys, one row each,
-- read by primary key once a second. changed_at is Unix seconds of the
-- host that wrote it; changed_by names that host and user.
CREATE TABLE settings (
    name       TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    changed_at BIGINT NOT NULL DEFAULT 0,
    changed_by TEXT   NOT NULL DEFAULT ''
);
INSERT INTO settings (name, value) VALUES ('receiving', 'on');
-- The hosts table (0006) carries popgated's heartbeat with either database
-- now; with SQLite the row is written by the one popgated of the file.
