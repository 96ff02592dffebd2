-- Policyfiles: policies (a name, whose revisions are immutable documents), policy groups
-- (created by assigning a policy revision to them) and their assignments, and cookbook
-- artifacts (immutable cookbooks addressed by an identifier). Deleting a policy deletes its
-- revisions and their assignments; deleting a revision or a group deletes its assignments.
CREATE TABLE policies (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE policy_revisions (
    org_id INTEGER NOT NULL,
    policy TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (org_id, policy, revision_id),
    FOREIGN KEY (org_id, policy) REFERENCES policies (org_id, name) ON DELETE CASCADE
);

CREATE TABLE policy_groups (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

-- One revision of a policy per group. `assigned` orders a revision's groups by when they were
-- last assigned it (Chef lists them in that order).
CREATE TABLE policy_assignments (
    org_id INTEGER NOT NULL,
    policy_group TEXT NOT NULL,
    policy TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    assigned INTEGER NOT NULL,
    PRIMARY KEY (org_id, policy_group, policy),
    FOREIGN KEY (org_id, policy_group) REFERENCES policy_groups (org_id, name) ON DELETE CASCADE,
    FOREIGN KEY (org_id, policy, revision_id)
        REFERENCES policy_revisions (org_id, policy, revision_id) ON DELETE CASCADE
);
CREATE INDEX policy_assignments_by_revision ON policy_assignments (org_id, policy, revision_id);

CREATE TABLE cookbook_artifacts (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (org_id, name, identifier)
);
