-- Nodes: saved by the chef-clients of this server, local to it and never in the change log
-- (the replicated types live in `objects`). Searchable through the search index.
CREATE TABLE nodes (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
);
