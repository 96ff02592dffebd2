-- Files are deduplicated by SHA-256, not by MD5: two different files with one MD5 (a collision
-- anyone can compute) must never be served for one another across orgs. New blobs are stored
-- under their SHA-256; rows written before this migration keep sha256 NULL and go on reading
-- the blob stored under their MD5, so no data moves.
ALTER TABLE org_checksums ADD COLUMN sha256 TEXT;
ALTER TABLE sandbox_checksums ADD COLUMN sha256 TEXT;

-- When a database-stored blob was last written (ms since the epoch; NULL for legacy rows), so
-- the sweep spares content that is being uploaded again right now.
ALTER TABLE blobs ADD COLUMN stored_at BIGINT;

-- The sweep asks "does anything still reference this SHA-256?" and "which sandboxes expired?";
-- the (stored_at, checksum) index answers the blob side without reading the blob bytes.
CREATE INDEX org_checksums_by_sha256 ON org_checksums (sha256);
CREATE INDEX sandbox_checksums_by_sha256 ON sandbox_checksums (sha256);
CREATE INDEX sandboxes_by_created_at ON sandboxes (created_at);
CREATE INDEX blobs_by_stored_at ON blobs (stored_at, checksum);
