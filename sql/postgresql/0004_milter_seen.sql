-- 0004: the milter's duplicate backstop (postgresql). One row per reinjected copy
-- of (account, UIDL) that popgate-milter let through, with the MTA queue id.
-- A second copy while the ledger row still says 'injecting' is discarded;
-- popgated forgets the row when the MTA refused the copy (never a later discard).
CREATE TABLE milter_seen (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    uidl       TEXT    NOT NULL,
    queue_id   TEXT    NOT NULL DEFAULT '',
    seen_at    BIGINT  NOT NULL,
    PRIMARY KEY (account_id, uidl)
);
