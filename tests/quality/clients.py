"""HTTP clients of the quality harness that are not browsers: curl, python-requests, Scrapy, and declared
crawlers (python-requests sending a crawler's user agent). Each session poses as its own visitor with an
`X-Forwarded-For` address; the storefront logs it in its access log, which `ghosttrack ingest-log` judges."""

import json
import os
import random
import subprocess
import sys
import time

import requests

from storefront import PRODUCTS

HERE = os.path.dirname(os.path.abspath(__file__))


def _plan(seed):
    """What one scraping session fetches: the catalog JSON, then some products (JSON or HTML)."""
    rnd = random.Random(seed)
    paths = ["/collections/all/products.json"]
    if rnd.random() < 0.5:
        paths.append("/collections/all/products.json?page=2")
    for p in rnd.sample(PRODUCTS, rnd.randint(2, 25)):
        paths.append(f"/products/{p['handle']}" + rnd.choice([".json", ".json", ".js", ""]))
    return paths


def curl_session(base, ip, seed):
    """One curl process fetching the session's URLs over one connection, as a shell loop would."""
    urls = [base + p for p in _plan(seed)]
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"X-Forwarded-For: {ip}", *urls],
                         capture_output=True, timeout=60)
    return {"ip": ip, "ok": out.returncode == 0, "requests": len(urls)}


def requests_session(base, ip, seed, user_agent=None, delay=0.0):
    """python-requests with its own user agent, as fast as it goes; or a crawler's user agent with a crawler's
    politeness (`delay` seconds between requests)."""
    s = requests.Session()
    s.headers["X-Forwarded-For"] = ip
    if user_agent:
        s.headers["User-Agent"] = user_agent
    n = 0
    for p in _plan(seed):
        time.sleep(delay)
        r = s.get(base + p, timeout=10)
        n += 1
        if r.status_code != 200:
            return {"ip": ip, "ok": False, "requests": n, "error": f"{p}: {r.status_code}"}
    return {"ip": ip, "ok": True, "requests": n}


def scrapy_sessions(base, sessions):
    """One Scrapy process (its default settings and user agent) crawling for every session."""
    plan = json.dumps({"base": base, "sessions": sessions})
    out = subprocess.run([sys.executable, "-m", "scrapy", "runspider", "-L", "WARNING", os.path.join(HERE, "spider.py"),
                          "-a", f"plan={plan}"], capture_output=True, text=True, timeout=600, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"scrapy failed: {out.stderr[-2000:]}")
    return [{"ip": s["ip"], "ok": True} for s in sessions]


def crawler_user_agents(path):
    """Googlebot and Bingbot user agents from the crawler-user-agents list (its `instances`)."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    uas = []
    for e in entries:
        if e["pattern"] in ("Googlebot\\/", "bingbot"):
            uas.extend(e.get("instances", []))
    if not uas:
        raise RuntimeError("no Googlebot/Bingbot instances in the crawler list")
    return uas
