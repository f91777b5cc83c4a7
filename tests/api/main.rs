//! The integration suite: one binary, the real application on a random port, a fresh database
//! per test. SQLite in memory by default; PostgreSQL when `DATABASE_URL` is set, Redis when
//! `REDIS_URL` is set. Set `TEST_LOG=1` to see the application's logs.
mod api_keys;
mod api_keys_allowed_ips;
mod audit;
mod authentication;
mod authorization;
mod browser_logout;
mod browser_sessions;
mod cli;
mod client_address;
mod comments;
mod config_files;
mod database;
mod docs;
mod errors;
mod fakes;
mod health;
mod helpers;
mod invitations;
mod login;
mod logout;
mod me;
mod members;
mod metrics;
mod pages;
mod posts;
mod public_posts;
mod rate_limits;
mod role_matrix;
mod security_headers;
mod sessions;
mod slow_clients;
mod store;
mod team;
mod tenants;
mod x_api_key;
