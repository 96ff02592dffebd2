-- The files each stored cookbook version references, so that deleting or replacing a version
-- can tell which of its checksums no version of the org references any more: those leave
-- org_checksums (their download URLs answer 404, as Chef's do) and the sweep may then drop
-- the bytes.
CREATE TABLE cookbook_files (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    checksum TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (org_id, checksum, path)
);
CREATE INDEX cookbook_files_by_path ON cookbook_files (org_id, path);

-- Versions stored before this table: their manifests are read once at the next start
-- (Store::record_pending_cookbook_files) and their rows removed from here.
CREATE TABLE cookbook_files_pending (
    org_id BIGINT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (org_id, path)
);
INSERT INTO cookbook_files_pending (org_id, path)
    SELECT org_id, path FROM objects WHERE kind = 'cookbook_version';
