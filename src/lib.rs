//! ironquill: a secure multi-tenant REST service starter.
pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod authz;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod ratelimit;
pub mod state;
pub mod store;
pub mod telemetry;
