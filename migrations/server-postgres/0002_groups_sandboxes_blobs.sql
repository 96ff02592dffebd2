-- Groups as objects of their own, so an empty custom group exists and can be listed.
CREATE TABLE groups (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);
INSERT INTO groups (org_id, name) SELECT id, 'admins' FROM orgs;
INSERT INTO groups (org_id, name) SELECT id, 'users' FROM orgs;
INSERT INTO groups (org_id, name) SELECT id, 'clients' FROM orgs;

-- Checksums an org may reference from cookbook manifests: those it uploaded and committed.
-- The bytes themselves are shared between orgs (filesystem or `blobs`).
CREATE TABLE org_checksums (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    checksum TEXT NOT NULL,
    PRIMARY KEY (org_id, checksum)
);

CREATE TABLE sandboxes (
    id TEXT PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    completed BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sandbox_checksums (
    sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    checksum TEXT NOT NULL,
    -- 1 once the file arrived through this sandbox's upload URL.
    uploaded BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sandbox_id, checksum)
);

-- File content for blob_store = "database" (several server processes over one database).
CREATE TABLE blobs (
    checksum TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);

-- Secrets every server process over this database shares (the key that signs file URLs).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
