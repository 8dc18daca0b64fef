//! Redis through ringpool: `redis` crate connections over ringpool's
//! io_uring dials, with `PING` as the health check.
//!
//! Run against an embedded loopback stand-in (it knows `SET`, `GET`,
//! `INCR` and `PING`):
//!     cargo run --example redis --features redis
//! or against a real server:
//!     cargo run --example redis --features redis -- redis://127.0.0.1:6379/0

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ringpool::Pool;
use ringpool::clients::redis::RedisManager;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => embedded_redis()?,
    };
    let pool = Arc::new(
        Pool::builder(RedisManager::from_url(&url)?)
            .max_size(8)
            .build()?,
    );
    tokio::spawn(pool.maintenance());

    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                for _ in 0..100 {
                    let mut conn = pool.get().await?;
                    let _: i64 = redis::cmd("INCR")
                        .arg("visits")
                        .query_async(&mut *conn)
                        .await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|error| error.to_string())?;
    }
    let mut conn = pool.get().await?;
    let visits: i64 = redis::cmd("GET")
        .arg("visits")
        .query_async(&mut *conn)
        .await?;
    drop(conn);
    let stats = pool.stats();
    println!(
        "visits = {visits} after 3200 INCR from 32 tasks in {:?}, over {} connections ({} reused checkouts)",
        started.elapsed(),
        stats.connects,
        stats.reused
    );
    pool.close();
    Ok(())
}

/// A minimal Redis stand-in on loopback: `PING`, `SET`, `GET`, `INCR`,
/// `+OK` to anything else; returns its URL.
fn embedded_redis() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("redis://{}/0", listener.local_addr()?);
    let data: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let data = Arc::clone(&data);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                while let Some(args) = read_command(&mut reader) {
                    let reply = answer(&args, &data);
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// One RESP array of bulk strings, or `None` at end of stream.
fn read_command(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0u8; len + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(String::from_utf8_lossy(&arg).into_owned());
    }
    Some(args)
}

fn answer(args: &[String], data: &Mutex<HashMap<String, String>>) -> String {
    let mut data = data.lock().unwrap();
    match args
        .first()
        .map(|name| name.to_ascii_uppercase())
        .as_deref()
    {
        Some("PING") => "+PONG\r\n".into(),
        Some("SET") if args.len() >= 3 => {
            data.insert(args[1].clone(), args[2].clone());
            "+OK\r\n".into()
        }
        Some("GET") if args.len() >= 2 => match data.get(&args[1]) {
            Some(value) => format!("${}\r\n{value}\r\n", value.len()),
            None => "$-1\r\n".into(),
        },
        Some("INCR") if args.len() >= 2 => {
            let value = data.entry(args[1].clone()).or_insert_with(|| "0".into());
            let next = value.parse::<i64>().unwrap_or(0) + 1;
            *value = next.to_string();
            format!(":{next}\r\n")
        }
        _ => "+OK\r\n".into(),
    }
}
