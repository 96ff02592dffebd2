-- A release that replicates more kinds of objects than the one that bootstrapped an org
-- (this one adds Policyfiles) owes that org one full reconcile pass, whatever
-- reconcile_interval says: the feed never listed what was already on the primary. The pass
-- copies only what is missing; replication resumes from its feed position.
ALTER TABLE org_state ADD COLUMN reconcile_owed INTEGER NOT NULL DEFAULT 0;
UPDATE org_state SET reconcile_owed = 1 WHERE applied_seq IS NOT NULL OR last_reconcile IS NOT NULL;
