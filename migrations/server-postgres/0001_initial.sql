-- Actors, organizations and membership.
CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    superuser BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE orgs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    guid TEXT NOT NULL,
    -- Highest change-log id handed out; bumped under the write lock with each change.
    last_seq BIGINT NOT NULL DEFAULT 0,
    -- Entries with seq <= pruned_through may be gone; readers asking for them get 410.
    pruned_through BIGINT NOT NULL DEFAULT 0,
    replica BIGINT NOT NULL DEFAULT 0,
    sync_user TEXT
);

CREATE TABLE org_users (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE clients (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    validator BIGINT NOT NULL DEFAULT 0,
    UNIQUE (org_id, name)
);

-- Group members are (kind, name) pairs: kind is 'user' or 'client'.
CREATE TABLE group_members (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_name TEXT NOT NULL,
    PRIMARY KEY (org_id, group_name, member_kind, member_name)
);

-- Public keys of users (owner_kind 'user', owner_id users.id) and clients ('client', clients.id).
CREATE TABLE keys (
    owner_kind TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    -- NULL means "infinity".
    expires_at TEXT,
    PRIMARY KEY (owner_kind, owner_id, name)
);

-- Replicated objects, keyed by their org-relative path (/roles/R, /data/B/I, ...).
CREATE TABLE objects (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- The containing object's name: the bag of an item, the cookbook of a version.
    parent TEXT,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    v_major BIGINT,
    v_minor BIGINT,
    v_patch BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, path)
);
CREATE INDEX objects_by_kind ON objects (org_id, kind, parent, name);

CREATE TABLE change_log (
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    action TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
