-- Actors, organizations and membership.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    superuser INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE orgs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    guid TEXT NOT NULL,
    -- Highest change-log id handed out; bumped under the write lock with each change.
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- Entries with seq <= pruned_through may be gone; readers asking for them get 410.
    pruned_through INTEGER NOT NULL DEFAULT 0,
    replica INTEGER NOT NULL DEFAULT 0,
    sync_user TEXT
);

CREATE TABLE org_users (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    validator INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, name)
);

-- Group members are (kind, name) pairs: kind is 'user' or 'client'.
CREATE TABLE group_members (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_name TEXT NOT NULL,
    PRIMARY KEY (org_id, group_name, member_kind, member_name)
);

-- Public keys of users (owner_kind 'user', owner_id users.id) and clients ('client', clients.id).
CREATE TABLE keys (
    owner_kind TEXT NOT NULL,
    owner_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    -- NULL means "infinity".
    expires_at TEXT,
    PRIMARY KEY (owner_kind, owner_id, name)
);

-- Replicated objects, keyed by their org-relative path (/roles/R, /data/B/I, ...).
CREATE TABLE objects (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- The containing object's name: the bag of an item, the cookbook of a version.
    parent TEXT,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    v_major INTEGER,
    v_minor INTEGER,
    v_patch INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, path)
);
CREATE INDEX objects_by_kind ON objects (org_id, kind, parent, name);

CREATE TABLE change_log (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, seq)
);
