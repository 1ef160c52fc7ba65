//! [`RedemptionStore`] in SQL through sqlx (behind the `sql` feature): SQLite as the embedded
//! default (`sqlite://redemptions.db?mode=rwc`), Postgres by URL (`postgres://…`). The schema is
//! created by numbered migrations recorded in `hashpass_migrations`; redeeming is one
//! `INSERT … ON CONFLICT DO NOTHING`, so one row — one account — per code, even under races
//! and across processes.

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::error::StoreError;
use crate::redemption::{CodeState, RedeemOutcome, Redemption, RedemptionStore};

/// The schema, in order; each runs once.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS hashpass_redemptions (
        code_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        user_id TEXT,
        used_at DOUBLE PRECISION
    )",
)];

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Redemptions in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlRedemptionStore {
    pool: AnyPool,
}

impl SqlRedemptionStore {
    /// Connects to `url` and applies the migrations not applied yet.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS hashpass_migrations (version BIGINT PRIMARY KEY)")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        for (version, sql) in MIGRATIONS {
            let applied = sqlx::query("SELECT version FROM hashpass_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
            if applied.is_none() {
                let mut tx = self.pool.begin().await.map_err(unavailable)?;
                sqlx::query(*sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                sqlx::query("INSERT INTO hashpass_migrations (version) VALUES ($1)")
                    .bind(*version)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                tx.commit().await.map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn load(&self, code_id: &str) -> Result<CodeState, StoreError> {
        let row = sqlx::query(
            "SELECT state, user_id, used_at FROM hashpass_redemptions WHERE code_id = $1",
        )
        .bind(code_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(match row {
            None => CodeState::Unused,
            Some(row) => state_of(code_id, &row)?,
        })
    }
}

fn state_of(code_id: &str, row: &sqlx::any::AnyRow) -> Result<CodeState, StoreError> {
    let state: String = row.try_get("state").map_err(unavailable)?;
    Ok(match state.as_str() {
        "revoked" => CodeState::Revoked,
        _ => CodeState::Used(Redemption {
            code_id: code_id.to_string(),
            user_id: row
                .try_get::<Option<String>, _>("user_id")
                .map_err(unavailable)?
                .unwrap_or_default(),
            used_at: row
                .try_get::<Option<f64>, _>("used_at")
                .map_err(unavailable)?
                .unwrap_or_default(),
        }),
    })
}

#[async_trait]
impl RedemptionStore for SqlRedemptionStore {
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO hashpass_redemptions (code_id, state, user_id, used_at) VALUES ($1, 'used', $2, $3) \
             ON CONFLICT (code_id) DO NOTHING",
        )
        .bind(code_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 1 {
            return Ok(RedeemOutcome::Redeemed(Redemption {
                code_id: code_id.into(),
                user_id: user_id.into(),
                used_at: now,
            }));
        }
        Ok(match self.load(code_id).await? {
            CodeState::Used(earlier) => RedeemOutcome::AlreadyUsed(earlier),
            CodeState::Revoked => RedeemOutcome::Revoked,
            CodeState::Unused => {
                return Err(StoreError::Corrupt(format!(
                    "code {code_id} neither inserted nor present"
                )));
            }
        })
    }

    async fn state(&self, code_id: &str) -> Result<CodeState, StoreError> {
        self.load(code_id).await
    }

    async fn revoke(&self, code_id: &str) -> Result<bool, StoreError> {
        let inserted = sqlx::query("INSERT INTO hashpass_redemptions (code_id, state) VALUES ($1, 'revoked') ON CONFLICT (code_id) DO NOTHING")
            .bind(code_id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn list(&self) -> Result<Vec<(String, CodeState)>, StoreError> {
        let rows = sqlx::query(
            "SELECT code_id, state, user_id, used_at FROM hashpass_redemptions ORDER BY code_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let code_id: String = row.try_get("code_id").map_err(unavailable)?;
                let state = state_of(&code_id, row)?;
                Ok((code_id, state))
            })
            .collect()
    }
}
