-- The search index: one row per (field, value) of every searchable document, so a query reads
-- the index entries it matches instead of every document. Filled in the same transaction as
-- the write it indexes; documents stored before this migration are indexed at the next start
-- (a document without a search_docs row is indexed then). A change to how documents are
-- expanded into terms ships as a migration that empties search_terms and search_docs, which
-- makes that start rebuild the index.

-- One index per org and kind ('node', 'role', 'environment', 'client', 'data_bag' with its bag).
CREATE TABLE search_indexes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    bag TEXT NOT NULL DEFAULT '',
    UNIQUE (org_id, kind, bag)
);

CREATE TABLE search_docs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    index_id INTEGER NOT NULL REFERENCES search_indexes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (index_id, name)
);

-- Field names, shared by every index: the key path joined with '_' and its innermost key
-- (a query on `port` finds both `port` and `default_attributes_app_port`).
CREATE TABLE search_fields (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    leaf TEXT NOT NULL,
    UNIQUE (path, leaf)
);
CREATE INDEX search_fields_by_leaf ON search_fields (leaf);

-- Exact and prefix matches are range reads of this key; values are at most 512 bytes.
CREATE TABLE search_terms (
    index_id INTEGER NOT NULL,
    field_id INTEGER NOT NULL,
    value TEXT NOT NULL,
    doc_id INTEGER NOT NULL,
    PRIMARY KEY (index_id, field_id, value, doc_id)
) WITHOUT ROWID;
