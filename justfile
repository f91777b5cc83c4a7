# ironquill tasks. `cargo run` and `cargo test` need none of these; they are shortcuts.
# Install just with `pip install rust-just` or `cargo install just`.

pg_url := "postgres://postgres@127.0.0.1:5432/postgres"
redis_url := "redis://127.0.0.1:6379"

# List the recipes.
default:
    @just --list

# Serve on the embedded defaults (SQLite under ./data, in-process store).
run:
    cargo run

# The test suite on the embedded defaults.
test:
    cargo test

# The same suite on PostgreSQL and Redis (a fresh database per test).
test-pg:
    DATABASE_URL={{pg_url}} REDIS_URL={{redis_url}} cargo test

# The pages in headless Chromium (Debian `chromium` and `chromium-driver`); `cargo test`
# lists these as ignored.
test-browser:
    cargo test --test browser -- --ignored

# Save the start page's screenshots (desktop and phone width) for the README.
screenshots:
    SCREENSHOTS=tests/browser/screenshots cargo test --test browser start_page -- --ignored

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply pending migrations to the configured database.
migrate:
    cargo run -- migrate

# Print the OpenAPI document.
openapi:
    cargo run --quiet -- openapi

# Build the code documentation (the API docs are served at /docs by the running server).
docs:
    cargo doc --workspace --no-deps

# Property-based tests of the running API against its own OpenAPI document (schemathesis,
# installed from PyPI if missing): no 5xx, no schema violation, no undocumented status.
fuzz-api seconds="120":
    .ci/api-fuzz {{seconds}}

# Check the Prometheus alert rules and run their tests (needs promtool: Debian `prometheus`).
alerts:
    promtool check rules config/alerts.yml
    promtool test rules tests/alerts/alerts.test.yml

# HTTP throughput of the release server with wrk (Debian `wrk`), as ratios taken in one run;
# also on PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set.
bench-http seconds="10":
    python3 tests/benches/bench_http.py {{seconds}}

# What CI runs.
ci:
    bash .ci/run

# Criterion benchmarks (API key and token verification, authorization, rate limiting; the Redis case
# runs when Redis answers at REDIS_URL or on 127.0.0.1:6379).
bench:
    cargo bench --bench api_keys --bench authz --bench tokens --bench rate_limit
