-- When the daemon last heard the primary's newest feed id (primary_seq): sync-status labels a
-- PRIMARY it cannot vouch for now (org stopped or failing, daemon not running) with this time.
ALTER TABLE org_state ADD COLUMN primary_seq_at TEXT;
