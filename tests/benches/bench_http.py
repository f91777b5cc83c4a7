#!/usr/bin/env python3
"""HTTP throughput of the release server, as a table of ratios taken in one run: `just bench-http`.

Starts the release binary on a fresh SQLite file (and, when DATABASE_URL and REDIS_URL are set,
again on PostgreSQL + Redis), seeds a tenant with 20 published posts, loads each route with wrk
(`wrk -t1 -c32`, Debian package `wrk`) in BENCH_ROUNDS rounds (default 5) and prints each
route's median requests per second with the ratios the performance goals are stated in, each
the median of the ratios taken round by round. Rate limits, the audit trail and metrics stay
on: they are part of the measured path (config/test.toml's limits are high enough not to trip).
Usage: tests/benches/bench_http.py [seconds per route, default 10]
"""
import base64
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "ironquill")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(key, base, user):
    """An access token as a login issues it (EdDSA, at+jwt), signed with the server's key."""
    now = int(time.time())
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": "bench"}
    claims = {"iss": base, "aud": f"{base}/api", "sub": user, "sid": str(uuid.uuid4()),
              "jti": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 3600}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def request(base, method, path, key, body=None, headers=None):
    req = urllib.request.Request(base + path, method=method)
    req.add_header("Authorization", f"apikey {key}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=10) as resp:
        return resp.headers, json.loads(resp.read() or b"null")


def wrk(url, headers):
    args = ["wrk", "-t1", "-c32", f"-d{SECONDS}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        sys.exit(f"{url}: {non_2xx.group(1)} failed responses; the figure would mean nothing")
    return rps


def start_and_idle(env, work, port):
    """Milliseconds from exec to a ready `/readyz` on a fresh SQLite file (migrations included),
    then the resident memory after two idle seconds."""
    env = dict(env, APP__DATABASE__URL=f"sqlite://{work}/fresh.db?mode=rwc")
    started = time.monotonic()
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except Exception:
                if time.monotonic() - started > 10:
                    sys.exit("the server did not become ready within 10 s")
                time.sleep(0.002)
        ready_ms = (time.monotonic() - started) * 1000
        time.sleep(2)
        with open(f"/proc/{server.pid}/status") as status:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))
    finally:
        server.terminate()
        server.wait()
    return ready_ms, rss_kb / 1024


def run(label, env_extra):
    work = tempfile.mkdtemp()
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    key_file = os.path.join(work, "jwt.pem")
    with open(key_file, "w") as f:
        f.write(pem)
    # APP_ENV=test: config/test.toml's rate limits are high enough for one loading client.
    env.update({
        "APP_ENV": "test", "PORT": str(port), "APP__LOG__FILTER": "warn",
        "APP__DATABASE__URL": f"sqlite://{work}/iq.db?mode=rwc",
        "APP__AUTH__SIGNING_KEYS": f'[{{kid="bench",private_key_file="{key_file}"}}]',
        "APP__METRICS__LISTEN": f"127.0.0.1:{free_port()}",
    })
    idle = None if env_extra else start_and_idle(env, work, port)
    env.update(env_extra)
    issued = json.loads(subprocess.run(
        [BIN, "admin", "bootstrap", "--tenant", "acme", "--email", "bench@example.com"],
        env=env, capture_output=True, text=True, check=True).stdout)
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        api_key = issued["api_key"]
        for n in range(20):
            body = {"title": f"Post {n}", "slug": f"post-{n}", "body": "Lorem ipsum " * 40}
            headers, post = request(base, "POST", "/api/v1/tenants/acme/posts", api_key, body)
            request(base, "POST", f"/api/v1/tenants/acme/posts/{post['id']}/publish", api_key,
                    headers={"If-Match": headers["ETag"]})
        token = access_token(key, base, issued["user_id"])
        routes = [
            ("GET /healthz", "/healthz", {}),
            ("GET /public/acme/posts (no auth)", "/public/acme/posts", {}),
            ("GET /api/v1/tenants/acme/posts, API key", "/api/v1/tenants/acme/posts",
             {"Authorization": f"apikey {api_key}"}),
            ("same, session JWT (Bearer)", "/api/v1/tenants/acme/posts",
             {"Authorization": f"Bearer {token}"}),
            ("GET /api/v1/me, API key", "/api/v1/me", {"Authorization": f"apikey {api_key}"}),
            # One row per page: the two pages are then alike in size, so their ratio is what
            # authentication, the limiters and the tenant check cost, apart from the body.
            ("public list, limit=1", "/public/acme/posts?limit=1", {}),
            ("tenant list, limit=1, API key", "/api/v1/tenants/acme/posts?limit=1",
             {"Authorization": f"apikey {api_key}"}),
        ]
        # Rounds over every route in turn, each route's median kept: a neighbour's burst on a
        # shared machine then moves one sample of a route, not the whole figure.
        samples = {name: [] for name, _, _ in routes}
        for _ in range(ROUNDS):
            for name, path, headers in routes:
                samples[name].append(wrk(base + path, headers))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    names = [name for name, _, _ in routes]
    healthz, public, one_public, one_key = names[0], names[1], names[-2], names[-1]

    def ratio(name, base):
        """The median of the round-by-round ratios: each pair was loaded seconds apart, so a
        machine that slows down for a minute moves both sides of a ratio, not one."""
        return statistics.median(a / b for a, b in zip(samples[name], samples[base]))

    print(f"\n{label}: wrk -t1 -c32 -d{SECONDS}s, median of {ROUNDS} rounds, "
          f"{os.cpu_count()} cores")
    print("| request | req/s | vs public | vs /healthz |")
    print("| --- | --- | --- | --- |")
    for name in names[:-2]:
        print(f"| `{name}` | {statistics.median(samples[name]):,.0f} | "
              f"{ratio(name, public):.2f} | {ratio(name, healthz):.3f} |")
    print(f"\npages of one post (alike in size): public "
          f"{statistics.median(samples[one_public]):,.0f}, tenant list by API key "
          f"{statistics.median(samples[one_key]):,.0f} req/s: {ratio(one_key, one_public):.2f}x")
    if idle:
        print(f"\nstart to ready on a fresh SQLite file: {idle[0]:.0f} ms; "
              f"idle resident memory: {idle[1]:.1f} MB")


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ironquill"],
                   cwd=ROOT, check=True)
    run("SQLite, in-process store", {})
    pg, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if pg and redis and pg.startswith("postgres"):
        name = f"iq_bench_{uuid.uuid4().hex}"
        subprocess.run(["psql", pg, "-qc", f'CREATE DATABASE "{name}"'], check=True)
        try:
            url = re.sub(r"/[^/]*$", f"/{name}", pg)
            run("PostgreSQL + Redis", {"APP__DATABASE__URL": url, "APP__REDIS__URL": redis,
                                       "APP__REDIS__KEY_PREFIX": f"{name}:"})
        finally:
            subprocess.run(["psql", pg, "-qc", f'DROP DATABASE "{name}"'], check=False)


if __name__ == "__main__":
    main()
