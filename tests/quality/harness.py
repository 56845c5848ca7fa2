"""GhostTrack detection quality harness (issue 4, item 6). Entry point: tests/quality/run.

Starts a real `ghosttrack serve` (SQLite, fresh data dir) and a fake Shopify, serves a fixture storefront, drives
real clients no one here wrote against it, and reads every verdict back from the server:

- tracked browser sessions: `GET /v1/verdict?subject=session:ID` for every session the server recorded;
- access-log clients: `ghosttrack ingest-log --format combined --json` over the storefront's log;
- card testing: `GET /v1/recent` (pixel path) and the `threats` table (webhook path, Shopify shops).

The harness labels the ground truth (one site per class, one /24 per session) and counts; it never judges.
Prints a table and writes results.json; `--write-doc` puts the table into docs/DETECTION.md.
"""

import argparse
import datetime
import json
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import clients
import storefront

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SAPIMOUSE = os.path.join(ROOT, "tests", "data", "sapimouse", "sapimouse_ABS_dx_dy_1min.csv")
CRAWLERS = os.path.join(ROOT, "backend", "rules", "data", "crawler-user-agents.json")
API_KEY, API_SECRET = "quality-harness", "quality-harness-secret"
CHROME_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FLAGGED = ("CHALLENGE", "BLOCK")


def held_out(user):
    """SapiMouse users replayed by the harness; the rule calibration (detect::tests::calibration) skips them."""
    return user % 5 == 0


# Browser classes are tracked sessions; the others are judged from the access log.
CLASSES = [
    # name, kind, ground truth, (full n, quick n)
    ("curl", "http", "bot", (100, 3)),
    ("python-requests", "http", "bot", (100, 3)),
    ("scrapy", "http", "bot", (100, 3)),
    ("crawler", "http", "crawler", (60, 3)),
    ("naive-headless", "browser", "bot", (100, 3)),
    ("stealth-headless", "browser", "bot", (100, 3)),
    ("stealth-tuned", "browser", "bot", (100, 3)),
    ("human", "browser", "human", (100, 4)),
    ("human-headless-control", "browser", "control", (20, 0)),
]


def log(msg):
    print(f"[quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_ip(class_index, n):
    """A distinct /24 per session: 10.<16·class + n/256>.<n mod 256>.<host>."""
    return f"10.{16 * class_index + n // 256}.{n % 256}.{1 + (n * 37) % 250}"


class Server:
    """`ghosttrack serve` on SQLite in a fresh data dir, plus `fake-shopify serve` for the webhook path."""

    def __init__(self, bin_dir, data_dir):
        self.bin_dir, self.data_dir = bin_dir, data_dir
        self.procs = []
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "GHOSTTRACK_DATA_DIR": data_dir,
            "GHOSTTRACK_DEMO_SITE": "false",
            "GHOSTTRACK_TRUSTED_PROXIES": "127.0.0.1/32",
            # Detection is measured here, not the collect rate limits (bots share /24s).
            "GHOSTTRACK_RATE_LIMIT__ENABLED": "false",
            "GHOSTTRACK_SHOPIFY_API_KEY": API_KEY,
            "GHOSTTRACK_SHOPIFY_API_SECRET": API_SECRET,
            "GHOSTTRACK_SECRET_KEY": secrets.token_hex(32),
            "GHOSTTRACK_APP_URL": "https://ghosttrack.test",
            # The embedded app load (install) serves the panel; a stand-in build, as the e2e tests use.
            "GHOSTTRACK_PANEL__DIST_DIR": os.path.join(ROOT, "tests", "fixtures", "panel-dist"),
            "RUST_LOG": "warn",
        }

    def bin(self, name):
        return os.path.join(self.bin_dir, name)

    def cli(self, *args):
        out = subprocess.run([self.bin("ghosttrack"), *args], env=self.env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"ghosttrack {' '.join(args)}: {out.stderr[-2000:]}")
        return out.stdout

    def add_site(self, domain):
        site = json.loads(self.cli("site", "add", "--domain", domain, "--json"))
        return {"key": site["site_key"], "token": site["api_token"]}

    def start(self):
        fake_port, port = free_port(), free_port()
        self.procs.append(subprocess.Popen([self.bin("fake-shopify"), "serve", "--listen", f"127.0.0.1:{fake_port}"],
                                           env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.env["GHOSTTRACK_SHOPIFY_API_BASE"] = f"http://127.0.0.1:{fake_port}/{{shop}}"
        self.env["GHOSTTRACK_LISTEN"] = f"127.0.0.1:{port}"
        proc = subprocess.Popen([self.bin("ghosttrack"), "serve"], env=self.env, stdout=subprocess.PIPE,
                                stderr=open(os.path.join(self.data_dir, "server.log"), "w"), text=True)
        self.procs.append(proc)
        for line in proc.stdout:
            if line.startswith("GhostTrack is serving on "):
                self.url = line.split(" on ", 1)[1].strip()
                break
        else:
            raise RuntimeError("ghosttrack serve did not start; see server.log in the data dir")
        log(f"ghosttrack serving on {self.url}")

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()

    def get(self, path, token):
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def post(self, path, body, headers):
        req = urllib.request.Request(self.url + path, data=body.encode(), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def db(self):
        """Read-only view of the server's SQLite: ground-truth bookkeeping (which sessions exist), never verdicts
        except the webhook path's threat records."""
        conn = sqlite3.connect(f"file:{os.path.join(self.data_dir, 'ghosttrack.db')}?mode=ro", uri=True, timeout=30)
        return conn

    def query(self, sql, args=()):
        with self.db() as conn:
            return conn.execute(sql, args).fetchall()


def run_browsers(mode, base, sessions, xvfb):
    """Runs browse.mjs for a list of sessions; returns its per-session results."""
    plan = {"mode": mode, "base": base, "sessions": sessions, "sapimouse": SAPIMOUSE,
            "heldOut": sorted({u for u in range(1, 200) if held_out(u)})}
    cmd = ["node", os.path.join(HERE, "browse.mjs"), json.dumps(plan)]
    if xvfb:
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1366x900x24", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE, timeout=7200)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or len(results) != len(sessions):
        raise RuntimeError(f"browse.mjs {mode} failed ({out.returncode}): {out.stderr[-3000:]}")
    return results


def session_verdicts(server, site):
    """Every session the server recorded for a site, with the verdict `/v1/verdict` gives it."""
    rows = server.query("SELECT s.id, s.ip_prefix FROM sessions s JOIN sites t ON t.id = s.site_id WHERE t.public_key = ?",
                        (site["key"],))
    verdicts = []
    for sid, prefix in rows:
        status, body = server.get(f"/v1/verdict?site={site['key']}&subject=session:{sid}", site["token"])
        if status == 404:
            body = {"decision": "ALLOW", "score": 0, "reasons": []}
        elif status != 200:
            raise RuntimeError(f"/v1/verdict session:{sid}: {status} {body}")
        verdicts.append({"session": sid, "ip_prefix": prefix, "decision": body["decision"], "score": body["score"],
                         "rules": [r["rule"] for r in body.get("reasons", [])],
                         "sentences": [r["sentence"] for r in body.get("reasons", [])]})
    return verdicts


def wait_quiet(server, site, expected):
    """Waits until the collector has stored `expected` sessions for the site (beacons arrive late)."""
    for _ in range(100):
        n = server.query("SELECT COUNT(*) FROM sessions s JOIN sites t ON t.id = s.site_id WHERE t.public_key = ?",
                         (site["key"],))[0][0]
        if n >= expected:
            break
        time.sleep(0.2)
    time.sleep(2)  # the last beacons and the recorder's asynchronous writes


# ---- Card testing ---------------------------------------------------------------------------------------------
def pixel_batch(site, events):
    return json.dumps({"k": site["key"], "v": 1, "s": int(time.time() * 1000),
                       "u": "https://fixture-store.myshopify.com/checkouts/cn/harness", "c": 1, "e": events})


def flagged_recent(server, site):
    status, body = server.get(f"/v1/recent?site={site['key']}&limit=500", site["token"])
    assert status == 200, body
    return [i for i in body["items"] if i["decision"] in FLAGGED]


def card_pixel(server, site, ip, steps, gap_ms):
    """Sends checkout pixel events as the web pixel would: `co`, then per step `pi` and either `al` PAYMENT_ERROR
    ("decline") or `cc` ("success"), `gap_ms` after the previous step (a card tester's script: ~1.5 s; a person
    typing or correcting card details: tens of seconds). The pacing is played through the events' own times
    (`ts`, within the collector's accepted age), not by waiting. Returns, per attempt, the rules of the site's
    CHALLENGE/BLOCK verdicts after it (from /v1/recent; empty = not flagged)."""
    headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": CHROME_UA, "X-Forwarded-For": ip}
    ck = secrets.token_hex(8)
    t = int(time.time() * 1000) - gap_ms * len(steps) - 60_000
    assert server.post("/collect", pixel_batch(site, [{"t": "co", "ts": t, "ck": ck}]), headers) == 202
    after = []
    for step in steps:
        t += gap_ms
        events = [{"t": "pi", "ts": t, "ck": ck}]
        events.append({"t": "al", "ts": t + 1000, "at": "PAYMENT_ERROR", "ck": ck} if step == "decline"
                      else {"t": "cc", "ts": t + 2000, "ck": ck})
        assert server.post("/collect", pixel_batch(site, events), headers) == 202
        time.sleep(1.0)  # the recorder writes threat records asynchronously
        after.append(sorted({r["rule"] for i in flagged_recent(server, site) for r in i["reasons"]}))
    return after


def install_shop(server, shop):
    url = subprocess.run([server.bin("fake-shopify"), "app-load-url", "--app-url", server.url + "/app", "--shop", shop],
                         env=server.env, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as r:
        assert r.status == 200, r.status
    site_id = server.query("SELECT site_id FROM shops WHERE domain = ?", (shop,))[0][0]
    return site_id


def send_webhook(server, topic, shop, body):
    subprocess.run([server.bin("fake-shopify"), "send-webhook", "--url", server.url + "/webhooks/shopify", "--topic", topic,
                    "--shop", shop, "--body", json.dumps(body), "--backoff-ms", "100"],
                   env=server.env, capture_output=True, text=True, check=True)
    for _ in range(200):
        if server.query("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'")[0][0] == 0:
            return
        time.sleep(0.05)
    raise RuntimeError("the webhook inbox was not processed")


def card_webhooks(server, shop, ip, cards):
    """A guest order, then one `order_transactions/create` per attempt: `cards` lists (card number, "decline" or
    "success"). Returns, per attempt, the rules of the shop's CHALLENGE/BLOCK threat records after it."""
    site_id = install_shop(server, shop)
    order_id = 5_000_000_000 + secrets.randbelow(10**9)
    iso = lambda: datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    send_webhook(server, "orders/create", shop, {
        "id": order_id, "cart_token": secrets.token_hex(8), "checkout_token": secrets.token_hex(8), "customer": None,
        "total_price": "1.00", "currency": "USD", "browser_ip": ip,
        "client_details": {"browser_ip": ip, "user_agent": CHROME_UA}, "email": "guest@example.com",
        "created_at": iso(), "updated_at": iso()})
    after = []
    for i, (card, outcome) in enumerate(cards):
        send_webhook(server, "order_transactions/create", shop, {
            "id": order_id + 1 + i, "order_id": order_id, "kind": "sale", "gateway": "shopify_payments",
            "status": "failure" if outcome == "decline" else "success",
            "error_code": "card_declined" if outcome == "decline" else None, "amount": "1.00", "currency": "USD",
            "test": False, "created_at": iso(),
            "payment_details": {"credit_card_bin": f"4{card:05d}", "credit_card_number": f"•••• •••• •••• {1000 + card}",
                                "avs_result_code": "N", "cvv_result_code": "N"}})
        time.sleep(0.5)
        rows = server.query("SELECT reasons FROM threats WHERE site_id = ? AND decision IN ('CHALLENGE', 'BLOCK')",
                            (site_id,))
        after.append(sorted({r["rule"] for (reasons,) in rows for r in json.loads(reasons)}))
    return after


def first_flag(after):
    return next((i + 1 for i, rules in enumerate(after) if rules), None)



# ---- Main -------------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", help="directory holding the ghosttrack and fake-shopify binaries")
    ap.add_argument("--quick", action="store_true", help="a few sessions per class (CI)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the full-mode session counts")
    ap.add_argument("--only", help="comma-separated class names to run (default: all)")
    ap.add_argument("--out", default=None, help="results JSON (default: <data dir>/results.json)")
    ap.add_argument("--write-doc", action="store_true", help="write the table into docs/DETECTION.md")
    ap.add_argument("--assert-targets", action="store_true", help="exit 1 when a deterministic target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--disable", action="append", default=[], metavar="RULE",
                    help="disable a rule for every site through a tenant policy (to measure what it adds)")
    ap.add_argument("--from-results", metavar="FILE", help="render (and with --write-doc, write) a saved results.json")
    args = ap.parse_args()

    if args.from_results:
        with open(args.from_results) as f:
            table = render(json.load(f))
        print(table)
        if args.write_doc:
            write_doc(table)
        return

    if not args.bin_dir:
        ap.error("--bin-dir is required to run (tests/quality/run passes it)")
    data_dir = tempfile.mkdtemp(prefix="gt-quality-")
    server = Server(args.bin_dir, data_dir)
    only = set(args.only.split(",")) if args.only else None
    started = time.time()
    results = {"classes": {}, "access_log": {}, "card_testing": {}}
    try:
        sites = {name: server.add_site(f"{name}.quality.test") for name, *_ in CLASSES}
        sites["card-pixel"] = server.add_site("card-pixel.quality.test")
        sites["card-pixel-control"] = server.add_site("card-pixel-control.quality.test")
        if args.disable:
            policies = os.path.join(data_dir, "policies")
            os.makedirs(policies)
            for site in sites.values():
                with open(os.path.join(policies, f"{site['key']}.toml"), "w") as f:
                    f.writelines(f'[rules."{rule}"]\nenabled = false\n' for rule in args.disable)
            server.env["GHOSTTRACK_DETECT__POLICIES_DIR"] = policies
        server.start()
        access_log = storefront.AccessLog(os.path.join(data_dir, "access.log"))
        truth = {}  # ip -> class, for the access-log path
        for ci, (name, kind, label, sizes) in enumerate(CLASSES):
            n = sizes[1] if args.quick else round(sizes[0] * args.scale)
            if n == 0 or (only and name not in only):
                continue
            store = storefront.Store(sites[name]["key"], server.url, server.url + "/t.js", access_log)
            _, base = storefront.serve(store)
            sessions = [{"ip": session_ip(ci, i), "seed": 1000 * ci + i} for i in range(n)]
            for s in sessions:
                truth[s["ip"]] = name
            log(f"{name}: {n} sessions")
            t0 = time.time()
            if name == "curl":
                runs = [clients.curl_session(base, s["ip"], s["seed"]) for s in sessions]
            elif name == "python-requests":
                runs = [clients.requests_session(base, s["ip"], s["seed"]) for s in sessions]
            elif name == "scrapy":
                runs = clients.scrapy_sessions(base, sessions)
            elif name == "crawler":
                uas = clients.crawler_user_agents(CRAWLERS)
                # Search-engine crawlers pace themselves (a few requests per second at most); a crawler user agent
                # at scraper speed meets rate/burst, by design, since the user agent is not verified.
                runs = [clients.requests_session(base, s["ip"], s["seed"], uas[i % len(uas)], delay=0.3)
                        for i, s in enumerate(sessions)]
            else:
                mode = {"naive-headless": "naive", "stealth-headless": "stealth", "stealth-tuned": "stealth-tuned", "human": "human",
                        "human-headless-control": "human-headless"}[name]
                runs = run_browsers(mode, base, sessions, xvfb=(mode == "human"))
            failed = [r for r in runs if not r.get("ok")]
            entry = {"kind": kind, "label": label, "n": n, "client_failures": failed, "seconds": round(time.time() - t0, 1)}
            if kind == "browser":
                wait_quiet(server, sites[name], n)
                verdicts = session_verdicts(server, sites[name])
                entry["sessions"] = len(verdicts)
                entry["verdicts"] = verdicts
                entry["flagged"] = sum(v["decision"] in FLAGGED for v in verdicts)
                entry["blocked"] = sum(v["decision"] == "BLOCK" for v in verdicts)
                entry["rules"] = rule_counts(verdicts)
            results["classes"][name] = entry
            log(f"{name}: done in {entry['seconds']} s" + (f", {len(failed)} client failures" if failed else ""))

        # The access-log path: every client of the storefront, judged from its log lines.
        out = server.cli("ingest-log", "--site", sites["curl"]["key"], "--format", "combined",
                         os.path.join(data_dir, "access.log"), "--json")
        by_ip = {}
        for line in out.splitlines():
            v = json.loads(line)
            ip = v["client_key"].split(":", 1)[1]
            best = by_ip.setdefault(ip, {"decision": "ALLOW", "rules": set(), "labels": set()})
            if rank(v["decision"]) > rank(best["decision"]):
                best["decision"] = v["decision"]
            best["rules"].update(r["rule"] for r in v.get("reasons", []))
        with open(os.path.join(data_dir, "access.log"), encoding="utf-8") as f:
            seen = {line.split(" ", 1)[0] for line in f}
        for ip, name in truth.items():
            e = results["access_log"].setdefault(name, {"n": 0, "seen": 0, "flagged": 0, "blocked": 0,
                                                         "labelled_crawler": 0, "rules": {}})
            v = by_ip.get(ip, {"decision": "ALLOW", "rules": set()})
            e["n"] += 1
            e["seen"] += ip in seen
            e["flagged"] += v["decision"] in FLAGGED
            e["blocked"] += v["decision"] == "BLOCK"
            e["labelled_crawler"] += "ua/crawler" in v["rules"]
            for r in v["rules"]:
                e["rules"][r] = e["rules"].get(r, 0) + 1

        # Card testing through the pixel path and the webhook path.
        if not only or "card" in only:
            attempts = 6 if args.quick else 12
            ct = results["card_testing"]
            control = sites["card-pixel-control"]
            ct["pixel burst (card tester)"] = card_pixel(server, sites["card-pixel"], "10.250.1.9",
                                                         ["decline"] * attempts, gap_ms=1_500)
            ct["pixel 1 decline then success"] = card_pixel(server, control, "10.250.2.9", ["decline", "success"],
                                                            gap_ms=40_000)
            ct["pixel 2 declines then success"] = card_pixel(server, control, "10.250.3.9",
                                                             ["decline", "decline", "success"], gap_ms=40_000)
            ct["pixel express checkout (pays 3 s after starting)"] = card_pixel(
                server, control, "10.250.4.9", ["success"], gap_ms=3_000)
            ct["webhook burst (a new card each time)"] = card_webhooks(
                server, "card-burst.myshopify.com", "10.251.1.9", [(i, "decline") for i in range(attempts)])
            ct["webhook 2 declines then success (cards A, A, B)"] = card_webhooks(
                server, "card-ok.myshopify.com", "10.251.2.9", [(1, "decline"), (1, "decline"), (2, "success")])
    finally:
        server.stop()

    results["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": ("quick" if args.quick else f"full ×{args.scale}") + "".join(f", {r} disabled" for r in args.disable),
        "machine": machine(),
        "chromium": subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip(),
        "seconds": round(time.time() - started),
    }
    table = render(results)
    print(table)
    out_path = args.out or os.path.join(data_dir, "results.json")
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1, default=sorted)
    log(f"results: {out_path}")
    if args.write_doc:
        write_doc(table)
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.assert_targets:
        problems = check_targets(results)
        for p in problems:
            log(f"TARGET MISSED: {p}")
        sys.exit(1 if problems else 0)


def rank(decision):
    return {"ALLOW": 0, "CHALLENGE": 1, "BLOCK": 2}[decision]


def rule_counts(verdicts):
    counts = {}
    for v in verdicts:
        for r in v["rules"]:
            counts[r] = counts.get(r, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def machine():
    cpus = os.cpu_count()
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpus} vCPU {model} ({platform.system()} {platform.release()}), shared with other jobs"


def pct(a, b):
    return f"{100 * a / b:.1f} %" if b else "–"


def render(results):
    """The markdown table for docs/DETECTION.md."""
    classes = results["classes"]
    al = results["access_log"]
    lines = []
    m = results["meta"]
    lines.append(f"Run: {m['date']}, {m['mode']}, {m['machine']}, {m['chromium']}, {m['seconds']} s.\n")
    # Tracked sessions (tracker + /v1/verdict).
    humans_flagged = classes.get("human", {}).get("flagged", 0)
    humans_n = classes.get("human", {}).get("sessions", 0)
    bot_flagged = sum(c["flagged"] for c in classes.values() if c["kind"] == "browser" and c["label"] == "bot")
    lines.append("Tracked sessions (tracker → `/collect`, verdict from `GET /v1/verdict?subject=session:ID`):\n")
    lines.append("| class | client | n (sessions recorded) | flagged | BLOCK | recall | precision vs humans | top rules |")
    lines.append("|---|---|---|---|---|---|---|---|")
    clients_of = {"naive-headless": "playwright-core 1.65.1, headless", "stealth-headless":
                  "puppeteer-extra 3.3.6 + stealth 2.11.2 over puppeteer-core 24.43.1, headless",
                  "stealth-tuned": "the same, WebGL evasion set to a Windows Intel GPU",
                  "human": "playwright-core, headed under Xvfb, SapiMouse pointer",
                  "human-headless-control": "the human script in naive headless"}
    for name, c in classes.items():
        if c["kind"] != "browser":
            continue
        top = ", ".join(f"`{r}` {k}" for r, k in list(c["rules"].items())[:4]) or "–"
        if c["label"] == "bot":
            prec = pct(c["flagged"], c["flagged"] + humans_flagged)
            rec = pct(c["flagged"], c["sessions"])
        else:
            prec, rec = "–", f"FPR {pct(c['flagged'], c['sessions'])}" if c["label"] == "human" else pct(c["flagged"], c["sessions"])
        lines.append(f"| {name} | {clients_of.get(name, '')} | {c['n']} ({c['sessions']}) | {c['flagged']} | {c['blocked']} | "
                     f"{rec} | {prec} | {top} |")
    if humans_n:
        lines.append(f"\nOver all tracked sessions: precision {pct(bot_flagged, bot_flagged + humans_flagged)} "
                     f"({bot_flagged} bot sessions and {humans_flagged} human sessions flagged); human false-positive "
                     f"rate {pct(humans_flagged, humans_n)} ({humans_flagged}/{humans_n}).\n")
    # Access log.
    lines.append("Access-log path (`ghosttrack ingest-log --format combined --json` over the storefront's log, one "
                 "client per session):\n")
    lines.append("| class | n (clients in the log) | flagged | BLOCK | labelled crawler | recall / FPR | top rules |")
    lines.append("|---|---|---|---|---|---|---|")
    log_h_flag = al.get("human", {}).get("flagged", 0)
    for name, e in al.items():
        label = next(c[2] for c in CLASSES if c[0] == name)
        top = ", ".join(f"`{r}` {k}" for r, k in sorted(e["rules"].items(), key=lambda kv: -kv[1])[:3]) or "–"
        what = {"bot": f"recall {pct(e['flagged'], e['n'])}", "human": f"FPR {pct(e['flagged'], e['n'])}",
                "crawler": f"attack verdicts {pct(e['flagged'], e['n'])}", "control": pct(e["flagged"], e["n"])}[label]
        lines.append(f"| {name} | {e['n']} ({e['seen']}) | {e['flagged']} | {e['blocked']} | {e['labelled_crawler']} | {what} | {top} |")
    log_bots = sum(e["flagged"] for n_, e in al.items() if next(c[2] for c in CLASSES if c[0] == n_) == "bot")
    if al:
        lines.append(f"\nAccess-log precision over all flagged clients: {pct(log_bots, log_bots + log_h_flag)}.\n")
    ct = results["card_testing"]
    if ct:
        lines.append("Card testing (flagged = a CHALLENGE/BLOCK verdict exists after that attempt):\n")
        lines.append("| scenario | attempts | flagged at attempt | after each attempt (F = flagged) | rules when first flagged |")
        lines.append("|---|---|---|---|---|")
        for k, after in ct.items():
            first = first_flag(after)
            rules = ", ".join(f"`{r}`" for r in after[first - 1]) if first else "–"
            lines.append(f"| {k} | {len(after)} | {first or 'never'} | {' '.join('F' if a else '·' for a in after)} | {rules} |")
    return "\n".join(lines) + "\n"


def check_targets(results):
    """The targets that are deterministic enough to assert (scripts/test runs --quick with this)."""
    problems = []
    c, al, ct = results["classes"], results["access_log"], results["card_testing"]
    for name, e in al.items():
        if e["seen"] != e["n"]:
            problems.append(f"{name}: {e['seen']} of {e['n']} clients reached the access log")
    for name in ("curl", "python-requests", "scrapy"):
        if name in al and al[name]["flagged"] < al[name]["n"]:
            problems.append(f"{name}: {al[name]['flagged']}/{al[name]['n']} flagged through the access log")
    if "crawler" in al and (al["crawler"]["flagged"] or al["crawler"]["labelled_crawler"] < al["crawler"]["n"]):
        problems.append(f"crawler: {al['crawler']}")
    if "naive-headless" in c and c["naive-headless"]["flagged"] < c["naive-headless"]["n"]:
        problems.append(f"naive-headless: {c['naive-headless']['flagged']}/{c['naive-headless']['n']} flagged")
    # Stealth sessions may be split in two by the server (see README.md), so only these must match.
    for name in ("naive-headless", "human"):
        if name in c and c[name]["sessions"] != c[name]["n"]:
            problems.append(f"{name}: {c[name]['sessions']} sessions recorded for {c[name]['n']} run")
    if "human" in c and c["human"]["flagged"]:
        problems.append(f"human: {c['human']['flagged']} false positives: "
                        f"{[v for v in c['human']['verdicts'] if v['decision'] in FLAGGED]}")
    if "human" in al and al["human"]["flagged"]:
        problems.append(f"human (access log): {al['human']['flagged']} false positives")
    for k, after in ct.items():
        if "burst" in k and (first_flag(after) or 99) > 5:
            problems.append(f"{k}: flagged at {first_flag(after)}")
        if "then success" in k and any(after):
            problems.append(f"{k}: flagged {after}")
    return problems


def write_doc(table):
    path = os.path.join(ROOT, "docs", "DETECTION.md")
    text = open(path, encoding="utf-8").read()
    begin, end = "<!-- quality:begin -->", "<!-- quality:end -->"
    if begin not in text:
        raise RuntimeError(f"{path} has no {begin} … {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, "w", encoding="utf-8").write(f"{head}{begin}\n{table}{end}{tail}")
    log(f"wrote the table into {path}")


if __name__ == "__main__":
    main()
