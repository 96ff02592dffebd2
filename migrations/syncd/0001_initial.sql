-- chef-syncd state: one row per destination org, and the objects parked after failing.
CREATE TABLE org_state (
    destination TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    -- sync-start / sync-stop; survives restarts.
    started INTEGER NOT NULL DEFAULT 0,
    -- stopped | bootstrapping | syncing | synced | error
    status TEXT NOT NULL DEFAULT 'stopped',
    -- Highest feed id whose writes all succeeded (or were parked). NULL: no valid checkpoint.
    applied_seq INTEGER,
    -- The primary this checkpoint belongs to: the source org's guid and the URL it came from.
    primary_guid TEXT,
    primary_url TEXT,
    -- The primary's newest feed id when last seen.
    primary_seq INTEGER,
    -- feed | reconcile (the primary has no usable updated_since)
    mode TEXT,
    last_sync TEXT,
    next_sync TEXT,
    last_error TEXT,
    last_reconcile TEXT
);

CREATE TABLE parked (
    destination TEXT NOT NULL,
    path TEXT NOT NULL,
    action TEXT NOT NULL,
    seq INTEGER,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    next_retry TEXT NOT NULL,
    PRIMARY KEY (destination, path)
);
