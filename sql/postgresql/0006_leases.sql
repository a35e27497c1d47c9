-- 0006: several gateway hosts on one database (postgresql); docs/scale-out.md.
-- hosts: one row per host id; instance is random per process start, so a
-- restart is told from a second live process with the same id. Times are
-- the database's clock in Unix milliseconds (never a host's clock).
CREATE TABLE hosts (
    host_id      TEXT   PRIMARY KEY,
    instance     TEXT   NOT NULL,
    hostname     TEXT   NOT NULL DEFAULT '',
    pid          BIGINT NOT NULL DEFAULT 0,
    version      TEXT   NOT NULL DEFAULT '',
    started_at   BIGINT NOT NULL DEFAULT 0,
    heartbeat_at BIGINT NOT NULL DEFAULT 0
);

-- account_leases: at most one host fetches an account. A host takes an
-- expired (or never held) lease with SELECT ... FOR UPDATE SKIP LOCKED and
-- bumps epoch; it renews what it holds while it runs. Every ledger write and
-- every DELE checks (instance, epoch, expires_at) in the same transaction: the
-- fencing token.
CREATE TABLE account_leases (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    holder      TEXT   NOT NULL DEFAULT '',
    instance    TEXT   NOT NULL DEFAULT '',
    epoch       BIGINT NOT NULL DEFAULT 0,
    acquired_at BIGINT NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX account_leases_by_holder ON account_leases (holder, instance);
