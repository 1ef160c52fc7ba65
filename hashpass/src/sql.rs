//! [`RedemptionStore`] in SQL through sqlx (behind the `sql` feature): SQLite as the embedded
//! default (`sqlite://redemptions.db?mode=rwc`), Postgres by URL (`postgres://…`). The schema is
//! created by numbered migrations recorded in `hashpass_migrations`. A code's row counts its
//! uses; a use is one transaction whose conditional `UPDATE … use_count = use_count + 1 WHERE
//! use_count < max_uses` the database serialises, so no more accounts than allowed, even under
//! races and across processes.

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::error::StoreError;
use crate::redemption::{CodeStatus, DEFAULT_MAX_USES, RedeemOutcome, Redemption, RedemptionStore};

/// The schema, in order; each migration's statements run once, in one transaction.
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS hashpass_invites (
            code_id TEXT PRIMARY KEY,
            max_uses BIGINT NOT NULL,
            use_count BIGINT NOT NULL,
            revoked_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS hashpass_invite_uses (
            code_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            user_id TEXT NOT NULL,
            used_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (code_id, seq)
        )",
    ],
)];

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The PostgreSQL advisory lock key migrations hold (`hashpass` in ASCII).
const MIGRATION_LOCK: i64 = 0x6861_7368_7061_7373;

/// Runs of the migrations after the first that a start may make when it races another.
const MIGRATION_ATTEMPTS: u64 = 10;

/// Tightens the files of a SQLite database at `url` (`sqlite://PATH?…`; the database and its
/// `-wal`, `-shm` and `-journal` files) to 0600 ([`crate::private_files`]): they name the
/// accounts that used each code. Any other URL (PostgreSQL, an in-memory SQLite) has none.
pub fn tighten_sqlite_files(url: &str) -> std::io::Result<()> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        crate::private_files::tighten_file(std::path::Path::new(&format!("{path}{suffix}")))?;
    }
    Ok(())
}

/// Redemptions in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlRedemptionStore {
    pool: AnyPool,
    /// PostgreSQL (else SQLite): whether migrations take an advisory lock.
    postgres: bool,
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
        let store = Self {
            pool,
            postgres: url.starts_with("postgres"),
        };
        store.migrate().await?;
        tighten_sqlite_files(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(store)
    }

    /// Applies the migrations not applied yet. Instances starting together on a fresh database
    /// take turns: on PostgreSQL each run holds an advisory lock for its transaction; SQLite
    /// serialises writers itself, and a run that lost a race to another (a busy database, a
    /// version recorded meanwhile) is run again and finds the work done.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match self.migrate_once().await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= MIGRATION_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::info!(error = %e, "schema migration raced another instance; retrying");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
            }
        }
    }

    /// One run of the migrations, in one transaction.
    async fn migrate_once(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS hashpass_migrations (version BIGINT PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (version, statements) in MIGRATIONS {
            let applied = sqlx::query("SELECT version FROM hashpass_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            if applied.is_some() {
                continue;
            }
            for statement in *statements {
                sqlx::query(*statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            sqlx::query("INSERT INTO hashpass_migrations (version) VALUES ($1)")
                .bind(*version)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// The versions of the migrations applied, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT version FROM hashpass_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(unavailable))
            .collect()
    }

    /// Makes sure `code_id` has a row (default: one use, none made) inside `tx`.
    async fn ensure_row(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        code_id: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO hashpass_invites (code_id, max_uses, use_count, revoked_at, updated_at) \
             VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (code_id) DO NOTHING",
        )
        .bind(code_id)
        .bind(i64::from(DEFAULT_MAX_USES))
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Runs one conditional `UPDATE` of `code_id`'s row (`$1` the id, `$2` now, `$3` `extra`)
    /// in a transaction that first makes sure the row exists; commits if the row changed, else
    /// rolls back, leaving no default row behind. Whether it changed.
    async fn change_row(
        &self,
        code_id: &str,
        now: f64,
        update: &'static str,
        extra: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        Self::ensure_row(&mut tx, code_id, now).await?;
        let mut query = sqlx::query(update).bind(code_id).bind(now);
        if let Some(extra) = extra {
            query = query.bind(extra);
        }
        let changed = query
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected()
            == 1;
        if changed {
            tx.commit().await.map_err(unavailable)?;
        } else {
            tx.rollback().await.map_err(unavailable)?;
        }
        Ok(changed)
    }

    async fn uses(&self, code_id: &str) -> Result<Vec<Redemption>, StoreError> {
        let rows = sqlx::query(
            "SELECT code_id, user_id, used_at FROM hashpass_invite_uses \
             WHERE code_id = $1 ORDER BY seq",
        )
        .bind(code_id)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(redemption_of).collect()
    }
}

/// A use, from a row of `hashpass_invite_uses`.
fn redemption_of(row: &sqlx::any::AnyRow) -> Result<Redemption, StoreError> {
    Ok(Redemption {
        code_id: row.try_get("code_id").map_err(unavailable)?,
        user_id: row.try_get("user_id").map_err(unavailable)?,
        used_at: row.try_get("used_at").map_err(unavailable)?,
    })
}

/// A code's row, without its uses.
fn status_of(row: &sqlx::any::AnyRow) -> Result<CodeStatus, StoreError> {
    let code_id: String = row.try_get("code_id").map_err(unavailable)?;
    let max_uses: i64 = row.try_get("max_uses").map_err(unavailable)?;
    Ok(CodeStatus {
        max_uses: u32::try_from(max_uses)
            .map_err(|_| StoreError::Corrupt(format!("code {code_id}: max_uses {max_uses}")))?,
        uses: Vec::new(),
        revoked_at: row.try_get("revoked_at").map_err(unavailable)?,
        updated_at: row.try_get("updated_at").map_err(unavailable)?,
        code_id,
    })
}

const STATUS_COLUMNS: &str = "code_id, max_uses, revoked_at, updated_at";

#[async_trait]
impl RedemptionStore for SqlRedemptionStore {
    async fn redeem(
        &self,
        code_id: &str,
        user_id: &str,
        now: f64,
    ) -> Result<RedeemOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        Self::ensure_row(&mut tx, code_id, now).await?;
        let counted = sqlx::query(
            "UPDATE hashpass_invites SET use_count = use_count + 1, updated_at = $2 \
             WHERE code_id = $1 AND revoked_at IS NULL AND use_count < max_uses \
             RETURNING use_count",
        )
        .bind(code_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(counted) = counted else {
            let revoked_at: Option<f64> =
                sqlx::query_scalar("SELECT revoked_at FROM hashpass_invites WHERE code_id = $1")
                    .bind(code_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            tx.rollback().await.map_err(unavailable)?;
            return Ok(match revoked_at {
                Some(_) => RedeemOutcome::Revoked,
                None => RedeemOutcome::UsedUp,
            });
        };
        let _: i64 = counted.try_get("use_count").map_err(unavailable)?;
        // After the last use (a released use leaves a gap, so not the count).
        sqlx::query(
            "INSERT INTO hashpass_invite_uses (code_id, seq, user_id, used_at) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM hashpass_invite_uses \
             WHERE code_id = $1",
        )
        .bind(code_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(RedeemOutcome::Redeemed(Redemption {
            code_id: code_id.into(),
            user_id: user_id.into(),
            used_at: now,
        }))
    }

    async fn release(&self, code_id: &str, user_id: &str, now: f64) -> Result<bool, StoreError> {
        // The write comes first, so that SQLite takes its write lock at once (a read first
        // could not be upgraded under a concurrent writer); of concurrent releases of one use,
        // one deletes it.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let removed = sqlx::query(
            "DELETE FROM hashpass_invite_uses WHERE code_id = $1 AND seq = \
             (SELECT MAX(seq) FROM hashpass_invite_uses WHERE code_id = $1 AND user_id = $2)",
        )
        .bind(code_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if removed != 1 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE hashpass_invites SET use_count = use_count - 1, updated_at = $2 \
             WHERE code_id = $1",
        )
        .bind(code_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn status(&self, code_id: &str) -> Result<CodeStatus, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM hashpass_invites WHERE code_id = $1"
        )))
        .bind(code_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(CodeStatus::new(code_id));
        };
        let mut status = status_of(&row)?;
        status.uses = self.uses(code_id).await?;
        Ok(status)
    }

    async fn revoke(&self, code_id: &str, now: f64) -> Result<bool, StoreError> {
        self.change_row(
            code_id,
            now,
            "UPDATE hashpass_invites SET revoked_at = $2, updated_at = $2 \
             WHERE code_id = $1 AND revoked_at IS NULL AND use_count < max_uses",
            None,
        )
        .await
    }

    async fn set_max_uses(
        &self,
        code_id: &str,
        max_uses: u32,
        now: f64,
    ) -> Result<Option<CodeStatus>, StoreError> {
        let changed = max_uses > 0
            && self
                .change_row(
                    code_id,
                    now,
                    "UPDATE hashpass_invites SET max_uses = $3, updated_at = $2 \
                     WHERE code_id = $1 AND use_count <= $3",
                    Some(i64::from(max_uses)),
                )
                .await?;
        Ok(if changed {
            Some(self.status(code_id).await?)
        } else {
            None
        })
    }

    async fn list(&self) -> Result<Vec<CodeStatus>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM hashpass_invites ORDER BY updated_at DESC"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut codes: Vec<CodeStatus> = rows.iter().map(status_of).collect::<Result<_, _>>()?;
        let uses = sqlx::query(
            "SELECT code_id, user_id, used_at FROM hashpass_invite_uses ORDER BY code_id, seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut by_code: std::collections::HashMap<String, Vec<Redemption>> = Default::default();
        for row in &uses {
            let redemption = redemption_of(row)?;
            by_code
                .entry(redemption.code_id.clone())
                .or_default()
                .push(redemption);
        }
        for code in &mut codes {
            code.uses = by_code.remove(&code.code_id).unwrap_or_default();
        }
        Ok(codes)
    }
}
