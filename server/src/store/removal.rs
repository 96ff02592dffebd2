//! Removing whole users and orgs (the `user-delete` and `org-delete` admin commands). Keys and
//! group memberships name their owner without a foreign key, so they go explicitly, in the
//! same transaction as the row whose cascade takes the rest.

use super::{OrgRow, Store, StoreResult, UserRow};

impl Store {
    /// Deletes a user with its keys, its org memberships and every group membership.
    pub async fn delete_user(&self, user: &UserRow) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM keys WHERE owner_kind = 'user' AND owner_id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM group_members WHERE member_kind = 'user' AND member_name = $1")
            .bind(&user.username)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an org with everything in it: objects, change log, clients and their keys,
    /// groups, sandboxes and file references (files no other org references are removed by
    /// the next sweep).
    pub async fn delete_org(&self, org: &OrgRow) -> StoreResult<()> {
        self.actors_changed();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM keys WHERE owner_kind = 'client' \
             AND owner_id IN (SELECT id FROM clients WHERE org_id = $1)",
        )
        .bind(org.id)
        .execute(&mut *tx)
        .await?;
        Store::drop_org_index(&mut tx, org.id).await?;
        sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(org.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
