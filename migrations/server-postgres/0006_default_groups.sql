-- Chef's two other default groups in every org: billing-admins (empty), and
-- public_key_read_access, holding the users and clients groups: its members may read the
-- public keys of the org's clients and users.
INSERT INTO groups (org_id, name) SELECT id, 'billing-admins' FROM orgs ON CONFLICT DO NOTHING;
INSERT INTO groups (org_id, name) SELECT id, 'public_key_read_access' FROM orgs ON CONFLICT DO NOTHING;
INSERT INTO group_members (org_id, group_name, member_kind, member_name)
    SELECT id, 'public_key_read_access', 'group', 'users' FROM orgs ON CONFLICT DO NOTHING;
INSERT INTO group_members (org_id, group_name, member_kind, member_name)
    SELECT id, 'public_key_read_access', 'group', 'clients' FROM orgs ON CONFLICT DO NOTHING;
