-- The search index: one row per (field, value) of every searchable document, so a query reads
-- the index entries it matches instead of every document. Filled in the same transaction as
-- the write it indexes; documents stored before this migration are indexed at the next start
-- (a document without a search_docs row is indexed then). A change to how documents are
-- expanded into terms ships as a migration that empties search_terms and search_docs, which
-- makes that start rebuild the index. Text compares in byte order (COLLATE "C"), as on
-- SQLite, so prefix and range reads use the b-tree and both backends sort alike.

-- One index per org and kind ('node', 'role', 'environment', 'client', 'data_bag' with its bag).
CREATE TABLE search_indexes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    bag TEXT COLLATE "C" NOT NULL DEFAULT '',
    UNIQUE (org_id, kind, bag)
);

CREATE TABLE search_docs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    index_id BIGINT NOT NULL REFERENCES search_indexes(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    UNIQUE (index_id, name)
);

-- Field names, shared by every index: the key path joined with '_' and its innermost key
-- (a query on `port` finds both `port` and `default_attributes_app_port`).
CREATE TABLE search_fields (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path TEXT COLLATE "C" NOT NULL,
    leaf TEXT COLLATE "C" NOT NULL,
    UNIQUE (path, leaf)
);
CREATE INDEX search_fields_by_leaf ON search_fields (leaf);

-- Exact and prefix matches are range reads of this key; values are at most 512 bytes.
CREATE TABLE search_terms (
    index_id BIGINT NOT NULL,
    field_id BIGINT NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    doc_id BIGINT NOT NULL,
    PRIMARY KEY (index_id, field_id, value, doc_id)
);
