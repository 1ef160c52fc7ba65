//! Managed databases speak TLS: the SQL redemption store reaches PostgreSQL with
//! `sslmode=require` through rustls (no OpenSSL in the tree), and the connection is encrypted.

use hashpass::redemption::{RedeemOutcome, RedemptionStore};
use hashpass::sql::SqlRedemptionStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_sslmode_require() {
    let Some(server) = hashpass_tests::postgres_server::shared() else {
        return;
    };
    let url = hashpass_tests::postgres_server::fresh_database(&server, "tls").await;
    let url = format!("{url}?sslmode=require");

    let pool = sqlx::PgPool::connect(&url).await.expect("a TLS connection");
    let (encrypted,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require gave an unencrypted connection");

    let store = SqlRedemptionStore::connect(&url)
        .await
        .expect("the store connects with sslmode=require");
    assert!(matches!(
        store.redeem("code-over-tls", "alice", 1.0).await.unwrap(),
        RedeemOutcome::Redeemed(_)
    ));
    assert!(matches!(
        store.redeem("code-over-tls", "bob", 2.0).await.unwrap(),
        RedeemOutcome::UsedUp
    ));
}
