//! PostgreSQL through ringpool: `tokio-postgres` clients over ringpool's
//! io_uring dials, from many tasks at once.
//!
//! There is no embedded PostgreSQL; give a server:
//!     cargo run --example postgres --features postgres -- postgresql://postgres@127.0.0.1:5432/postgres
//! (a throwaway one: `initdb -D /tmp/pg -A trust -U postgres && postgres -D /tmp/pg -p 5432`,
//! as a user other than root).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::clients::postgres::PostgresManager;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!(
            "usage: cargo run --example postgres --features postgres -- postgresql://user@host:port/db"
        );
        std::process::exit(2);
    };
    let pool = Arc::new(
        Pool::builder(PostgresManager::from_url(&url)?)
            .max_size(8)
            .acquire_timeout(Duration::from_secs(5))
            .build()?,
    );
    tokio::spawn(pool.maintenance());

    // A transaction, committed: the connection goes back to the pool.
    {
        let mut conn = pool.get().await?;
        let transaction = conn.transaction().await?;
        transaction
            .batch_execute("CREATE TEMP TABLE IF NOT EXISTS visits (n int)")
            .await?;
        transaction.commit().await?;
    }

    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                for i in 0..100 {
                    let conn = pool.get().await?;
                    let row = conn
                        .query_one("SELECT $1::int + 1", &[&(task * 100 + i)])
                        .await?;
                    assert_eq!(row.get::<_, i32>(0), task * 100 + i + 1);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|error| error.to_string())?;
    }
    let stats = pool.stats();
    println!(
        "3200 queries from 32 tasks in {:?} over {} connections ({} reused checkouts, {} closed mid-transaction)",
        started.elapsed(),
        stats.connects,
        stats.reused,
        stats.closed.abandoned
    );
    pool.close();
    Ok(())
}
