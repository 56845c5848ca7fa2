"""A Shopify-like fixture storefront for the quality harness.

Serves product, collection, cart and home pages that carry exactly the markup GhostTrack's theme app embed
renders (the `ghosttrack-config` JSON block, the deferred tracker, the no-JS pixel), Shopify's JSON endpoints
(`/products/<handle>.json`, `/products/<handle>.js`, `/collections/all/products.json`, `/cart.js`,
`/cart/add.js`, `/cart/change.js`), a same-origin app-proxy path that forwards tracker batches to the collector
(as Shopify's app proxy does), and writes an access log in combined format.

Every visitor of the harness has its own address (one /24 per session): HTTP clients send it as
`X-Forwarded-For`, browsers visit it as a host name (see `Handler.client`). The storefront logs that address,
like a reverse proxy logging the real client, and forwards it to the collector.
"""

import datetime
import html
import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRODUCTS = [
    {"handle": f"ghost-{kind}-{i:02d}", "title": f"Ghost {kind.title()} {i}", "id": 7000 + n, "variant": 42000 + n,
     "price": 1900 + 250 * (n % 17)}
    for n, (kind, i) in enumerate((k, i) for k in ("hoodie", "cap", "tee", "mug", "sock") for i in range(1, 13))
]
BY_HANDLE = {p["handle"]: p for p in PRODUCTS}
PAGE_SIZE = 30

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Fixture Store</title><link rel="icon" href="data:,">
<style>
 body {{ margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #222; }}
 header, footer {{ display: flex; gap: 24px; align-items: center; padding: 16px 32px; background: #f4f4f4; }}
 main {{ max-width: 1000px; margin: 0 auto; padding: 32px; }}
 .grid {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 24px; }}
 .card {{ display: block; padding: 16px; border: 1px solid #ddd; min-height: 180px; }}
 .product {{ display: grid; grid-template-columns: 1fr 1fr; gap: 32px; }}
 .product__media {{ height: 640px; background: linear-gradient(135deg, #ccd, #eef); }}
 .btn {{ padding: 12px 24px; border: 1px solid #222; background: #fff; cursor: pointer; }}
 .btn--primary {{ background: #222; color: #fff; }}
 .section {{ min-height: 800px; padding-top: 32px; border-top: 1px solid #ddd; }}
</style>
<script>window.Shopify = {{ shop: 'fixture-store.myshopify.com', routes: {{ root: '/' }} }};</script>
<script id="ghosttrack-config" type="application/json">
  {{"siteKey":"{key}","shop":"fixture-store.myshopify.com","pageType":"{page_type}","endpoint":"/apps/ghosttrack/collect","sampleRate":100,"privacy":"balanced"}}
</script>
<script src="{script}" defer></script><noscript><img src="/apps/ghosttrack/collect.gif?k={key}" width="1" height="1" alt="" style="display:none"></noscript>
</head><body>
<header>
 <a id="logo" class="header__logo link" href="/">Fixture Store</a>
 <a id="nav-catalog" class="header__menu-item link" href="/collections/all">Catalog</a>
 <a id="cart-icon" class="header__icon header__icon--cart" href="/cart">Cart (<span id="cart-count">{cart_count}</span>)</a>
</header>
<main>{body}</main>
<footer><a class="footer__link link" href="/policies/privacy-policy">Privacy policy</a></footer>
</body></html>
"""

PRODUCT_BODY = """
<section class="product">
 <div class="product__media" role="img" aria-label="{title}"></div>
 <div class="product__info">
  <h1 class="product__title">{title}</h1>
  <p class="price">€{price}</p>
  <form id="product-form" action="/cart/add" method="post" class="form product-form">
   <input type="hidden" name="id" value="{variant}">
   <label for="quantity">Quantity</label>
   <input id="quantity" class="quantity__input" type="number" name="quantity" value="1" min="1">
   <p><button id="add-to-cart" type="submit" class="btn btn--primary product-form__submit">Add to cart</button></p>
  </form>
  <p id="cart-status" aria-live="polite"></p>
 </div>
</section>
<section class="section product__description"><h2>Description</h2>
 <p>Soft, heavyweight, with a faint ghost print. Brushed inside, ribbed cuffs.</p></section>
<section class="section related-products"><h2>You may also like</h2>
 <a id="related-1" class="card__link" href="/products/{related}">{related_title}</a></section>
<script>
 // Like Dawn's product-form.js: intercept the submit and add through the Ajax cart API.
 document.getElementById('add-to-cart').addEventListener('click', function (event) {{
  event.preventDefault();
  var qty = +document.getElementById('quantity').value || 1;
  fetch('/cart/add.js', {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }},
    body: JSON.stringify({{ items: [{{ id: {variant}, quantity: qty }}] }}) }})
   .then(function (r) {{ return r.json(); }})
   .then(function (cart) {{
     document.getElementById('cart-count').textContent = String(cart.item_count);
     document.getElementById('cart-status').textContent = 'Added to cart';
   }});
 }});
</script>
"""


class Store:
    """Shared state: carts by visitor address, the access log, the upstream collector."""

    def __init__(self, site_key, collector, script_url, access_log):
        self.site_key = site_key
        self.collector = collector.rstrip("/")
        self.script_url = script_url
        self.log = access_log
        self.lock = threading.Lock()
        self.carts = {}

    def cart(self, client):
        with self.lock:
            return self.carts.setdefault(client, {"token": f"c1-{abs(hash(client)) % 10**12:012d}", "items": {}})



class AccessLog:
    """One combined-format access log shared by every storefront of a run (the web server's log)."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1, encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, ip, method, target, status, size, referer, ua):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
        esc = lambda s: (s or "-").replace("\\", "\\\\").replace('"', '\\"')
        line = f'{ip} - - [{now}] "{method} {esc(target)} HTTP/1.1" {status} {size} "{esc(referer)}" "{esc(ua)}"\n'
        with self.lock:
            self.file.write(line)


def cart_json(cart):
    items = [{"id": int(v), "variant_id": int(v), "quantity": q} for v, q in cart["items"].items() if q > 0]
    return {"token": cart["token"], "items": items, "item_count": sum(i["quantity"] for i in items)}


def product_json(p):
    return {"id": p["id"], "title": p["title"], "handle": p["handle"],
            "variants": [{"id": p["variant"], "price": f"{p['price'] / 100:.2f}", "available": True}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store = None  # set by serve()

    def log_message(self, *args):  # the access log is ours
        pass

    def client(self):
        """The visitor's address: X-Forwarded-For from HTTP clients; browsers visit `http://10-1-2-3.shop.test:PORT`
        (mapped to loopback by Chromium's host resolver rules), because Chromium sends keepalive fetches and
        beacons (the tracker's batches) without the extra headers a driver sets."""
        xff = self.headers.get("X-Forwarded-For")
        if xff:
            return xff.split(",")[-1].strip()
        m = re.match(r"(\d+)-(\d+)-(\d+)-(\d+)\.shop\.test(:\d+)?$", self.headers.get("Host") or "")
        return ".".join(m.groups()[:4]) if m else self.client_address[0]

    def answer(self, status, body, ctype="text/html; charset=utf-8", log=True):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser navigated away (e.g. the tracker's /cart.js read during a page change)
        if log:
            self.store.log.write(self.client(), self.command, self.path, status, len(data),
                                 self.headers.get("Referer"), self.headers.get("User-Agent"))

    def page(self, title, page_type, body):
        cart = self.store.cart(self.client())
        return LAYOUT.format(title=html.escape(title), page_type=page_type, key=self.store.site_key,
                             script=self.store.script_url, body=body, cart_count=cart_json(cart)["item_count"])

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        s = self.store
        if path == "/":
            cards = "".join(f'<a class="card" href="/products/{p["handle"]}">{p["title"]}</a>' for p in PRODUCTS[:6])
            return self.answer(200, self.page("Home", "index", f'<h1>Fixture Store</h1><div class="grid">{cards}</div>'
                                              '<section class="section"><h2>About</h2><p>Ghostly goods.</p></section>'))
        if path == "/collections/all":
            page = max(1, int(params.get("page", "1") or 1)) if params.get("page", "1").isdigit() else 1
            chunk = PRODUCTS[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
            cards = "".join(
                f'<a id="p-{p["handle"]}" class="card card__link" href="/products/{p["handle"]}">{p["title"]}'
                f'<br>€{p["price"] / 100:.2f}</a>' for p in chunk)
            nxt = f'<a id="next-page" href="/collections/all?page={page + 1}">Next</a>' if len(chunk) == PAGE_SIZE else ""
            return self.answer(200, self.page("Catalog", "collection", f'<h1>Catalog</h1><div class="grid">{cards}</div>{nxt}'))
        if path == "/collections/all/products.json":
            page = int(params.get("page", "1")) if params.get("page", "1").isdigit() else 1
            chunk = PRODUCTS[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
            return self.answer(200, json.dumps({"products": [product_json(p) for p in chunk]}), "application/json")
        m = re.fullmatch(r"/products/([a-z0-9-]+)(\.json|\.js)?", path)
        if m and m.group(1) in BY_HANDLE:
            p = BY_HANDLE[m.group(1)]
            if m.group(2) == ".json":
                return self.answer(200, json.dumps({"product": product_json(p)}), "application/json")
            if m.group(2) == ".js":
                return self.answer(200, json.dumps(product_json(p)), "application/javascript")
            rel = PRODUCTS[(PRODUCTS.index(p) + 7) % len(PRODUCTS)]
            body = PRODUCT_BODY.format(title=html.escape(p["title"]), price=f"{p['price'] / 100:.2f}", variant=p["variant"],
                                       related=rel["handle"], related_title=html.escape(rel["title"]))
            return self.answer(200, self.page(p["title"], "product", body))
        if path == "/cart":
            cart = cart_json(s.cart(self.client()))
            rows = "".join(f"<li>variant {i['id']} × {i['quantity']}</li>" for i in cart["items"]) or "<li>empty</li>"
            return self.answer(200, self.page("Cart", "cart", f'<h1>Your cart</h1><ul id="cart-items">{rows}</ul>'
                                              '<button id="checkout" class="btn btn--primary" type="button">Check out</button>'))
        if path == "/cart.js":
            return self.answer(200, json.dumps(cart_json(s.cart(self.client()))), "application/json")
        if path == "/apps/ghosttrack/collect.gif":
            return self.answer(200, b"GIF89a", "image/gif", log=False)
        if path in ("/robots.txt", "/policies/privacy-policy"):
            return self.answer(200, "ok", "text/plain")
        return self.answer(404, self.page("Not found", "404", "<h1>Not found</h1>"))

    def do_POST(self):
        path = self.path.partition("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        cart = self.store.cart(self.client())
        if path == "/apps/ghosttrack/collect":
            return self.proxy_collect(raw)
        if path in ("/cart/add.js", "/cart/add"):
            try:
                body = json.loads(raw or b"{}")
                items = body.get("items") or [body]
                for it in items:
                    vid, qty = str(int(it["id"])), int(it.get("quantity", 1))
                    if qty > 10:  # like a shop with little stock: 422
                        return self.answer(422, json.dumps({"status": 422, "description": "sold out"}), "application/json")
                    with self.store.lock:
                        cart["items"][vid] = cart["items"].get(vid, 0) + qty
            except (ValueError, KeyError, TypeError, AttributeError):
                return self.answer(400, json.dumps({"status": 400}), "application/json")
            return self.answer(200, json.dumps(cart_json(cart)), "application/json")
        if path == "/cart/change.js":
            try:
                body = json.loads(raw or b"{}")
                with self.store.lock:
                    cart["items"][str(int(body["id"]))] = int(body["quantity"])
            except (ValueError, KeyError, TypeError):
                return self.answer(400, json.dumps({"status": 400}), "application/json")
            return self.answer(200, json.dumps(cart_json(cart)), "application/json")
        return self.answer(404, "not found", "text/plain")

    def proxy_collect(self, raw):
        """Forwards a tracker batch to the collector with the visitor's address, like Shopify's app proxy."""
        req = urllib.request.Request(self.store.collector + "/collect", data=raw, method="POST", headers={
            "Content-Type": self.headers.get("Content-Type") or "text/plain;charset=UTF-8",
            "User-Agent": self.headers.get("User-Agent") or "",
            "X-Forwarded-For": self.client(),
        })
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except OSError:
            status, body = 502, b"{}"
        self.answer(status, body, "application/json", log=False)


def serve(store):
    """Starts a storefront for `store` on a free loopback port; returns (server, base URL)."""
    handler = type("StoreHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
