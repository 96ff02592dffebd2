-- One row rewritten by every readiness check (/readyz): proves the state database takes writes.
CREATE TABLE readiness_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
);
