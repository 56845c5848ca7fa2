// GhostTrack storefront tracker.
//
// Observes how a visitor behaves on a page (pageview, clicks, scroll depth, a sampled pointer path,
// key/touch/wheel counts, visibility, automation probes, add-to-cart) and sends it in batches to the
// collector. The wire format is docs/COLLECT-PROTOCOL.md; keep the two in step.
//
// Plain ES2017 in one IIFE, no dependencies. The backend minifies it (served at /t.js and copied to the
// theme extension as assets/ghosttrack.js) and CI holds it to a gzip budget of 3,000 bytes, so: short wire
// keys, no abstractions in advance, browser globals used directly. It must never throw into the host page
// and must leave the page's own fetch/XHR behaviour untouched.
//
// Privacy: no cookies, no storage, no identifier. Key values and text content are never read.
(function () {
  'use strict';

  var w = window;
  var d = document;
  var n = navigator;
  // Only valid while the script first runs, so read it before anything asynchronous.
  var script = d.currentScript;

  var noop = function () {};

  // Wraps a callback so an exception in the tracker never reaches the page's error handlers.
  function safe(fn) {
    return function (a, b) {
      try {
        return fn(a, b);
      } catch (e) {}
    };
  }

  try {
    // Config: the theme app embed renders a JSON block; the standalone snippet uses data attributes:
    //   <script defer src="https://HOST/t.js" data-site="gt_…" data-endpoint="…" data-privacy="strict">
    var el = d.getElementById('ghosttrack-config');
    var cfg = el ? JSON.parse(el.textContent) : {};
    var data = (script && script.dataset) || {};
    // undefined (not null) so JSON.stringify leaves k out when the embed has no key.
    var key = cfg.siteKey || data.site || undefined;
    if (!key && !el) return;
    // Embed and snippet on the same page would double-count everything (and wrap fetch twice).
    if (w.__gt) return;
    w.__gt = 1;
    // Without a site key the request must come through the Shopify app proxy, which signs it.
    var endpoint = cfg.endpoint || data.endpoint ||
      (el ? '/apps/ghosttrack/collect' : new URL(script.src).origin + '/collect');
    // Sample whole page loads, so every sampled page is complete.
    var rate = cfg.sampleRate;
    if (rate != null && Math.random() * 100 >= rate) return;

    // Security-only mode (c:0): DNT, GPC and privacy "strict" fix it for the page; on Shopify, consent starts
    // at 0 and becomes 1 only once the Customer Privacy API allows analytics. In this mode cl/pp/sc are never
    // recorded and analytics-only fields are stripped at send time (see flush).
    var locked = cfg.privacy == 'strict' || data.privacy == 'strict' ||
      n.doNotTrack == '1' || n.globalPrivacyControl === true;
    var consent = locked ? 0 : 1;
    var shopify = w.Shopify;
    if (!locked && shopify && shopify.loadFeatures) {
      consent = 0;
      on(d, 'visitorConsentCollected', function (e) {
        consent = e.detail.analyticsAllowed ? 1 : 0;
      });
      try {
        shopify.loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], safe(function (err) {
          if (!err) consent = shopify.customerPrivacy.analyticsProcessingAllowed() ? 1 : 0;
        }));
      } catch (e) {}
    }

    var realFetch = w.fetch;
    var root = d.documentElement;
    var queue = [];

    // Pointer path chunk [dt,dx,dy,…]; prevT/prevX/prevY are 0 at the start of each chunk, so its first
    // triple is (ms since page load, absolute page x, absolute page y).
    var path = [];
    var samples = 0; // per page, capped at 300
    var prevT = 0;
    var prevX = 0;
    var prevY = 0;
    var lastSample = -99;
    var lastMove = -1e4;
    var counts = zeroCounts();
    var depth = 0;
    var sentDepth = 0;
    // Visibility: time the page became visible and visible ms accumulated before that.
    var visState = d.hidden ? 'h' : 'v';
    var shownAt = 0;
    var activeMs = 0;

    // Listens in the capture phase (the page can't hide events from us with stopPropagation), passively,
    // and flushes when the queue reaches 25 events.
    function on(target, type, fn) {
      target.addEventListener(type, safe(function (e) {
        fn(e);
        if (queue.length >= 25) flush();
      }), { capture: true, passive: true });
    }

    // ms since page load (navigation start), the time base of pp and vi.
    function now() {
      return Math.round(performance.now());
    }

    function push(ev) {
      ev.ts = Date.now();
      queue.push(ev);
    }

    function zeroCounts() {
      return { t: 'ix', kc: 0, tc: 0, mc: 0, wc: 0 };
    }

    // Sends the queue: beacon when the page is going away, else fetch. The body is a string so it goes as
    // text/plain, a CORS "simple" request without preflight.
    function flush(leaving) {
      try {
        // Turn the accumulators into events.
        if (path.length) {
          push({ t: 'pp', p: path });
          path = [];
          prevT = prevX = prevY = 0;
        }
        // The outer window size is read at send time, not when the page starts: Chromium can report 0×0 to a
        // script that runs while a navigation commits, which is also what old headless Chrome reports for good.
        if (env) {
          env.ow = outerWidth;
          env.oh = outerHeight;
        }
        measureDepth();
        if (depth > sentDepth) {
          push({ t: 'sc', d: depth, ph: root.scrollHeight });
          sentDepth = depth;
        }
        if (counts.kc + counts.tc + counts.mc + counts.wc) {
          push(counts);
          counts = zeroCounts();
        }
        var events = queue.splice(0, 50).filter(function (ev) {
          return consent || !/^(cl|pp|sc)$/.test(ev.t);
        });
        if (!events.length) return;
        var body = JSON.stringify(
          { k: key, v: 1, s: Date.now(), u: location.href, c: consent, e: events },
          // Security-only: no referrer, title, canvas hash or GPU string.
          function (k, v) {
            return consent || !/^(r|ti|cv|gl)$/.test(k) ? v : undefined;
          }
        );
        if (!(leaving && n.sendBeacon && n.sendBeacon(endpoint, body))) post(body, 1);
      } catch (e) {}
    }

    // On 503 the collector is saturated: retry once, after Retry-After (if exposed) or 5 s.
    function post(body, retry) {
      realFetch(endpoint, { method: 'POST', body: body, keepalive: true, credentials: 'omit' })
        .then(function (r) {
          if (r.status == 503 && retry) setTimeout(post, 1e3 * (+r.headers.get('Retry-After') || 5), body);
        })
        .catch(noop);
    }

    function measureDepth() {
      var pct = Math.round((scrollY + innerHeight) * 100 / root.scrollHeight);
      if (!locked && pct > depth) depth = pct > 100 ? 100 : pct;
    }

    // tag#id.class1.class2 — structure only, never text content.
    function selector(t) {
      var s = t.tagName.toLowerCase();
      var cls = (t.getAttribute('class') || '').match(/\S+/g);
      if (t.id) s += '#' + t.id;
      if (cls) s += '.' + cls.slice(0, 2).join('.');
      return s.slice(0, 100);
    }

    function setVisibility(state) {
      var t = now();
      if (state == visState) return;
      if (state == 'h') activeMs += t - shownAt;
      else shownAt = t;
      visState = state;
      push({ t: 'vi', vs: state, tp: t, at: activeMs });
    }

    // ---- Add to cart -------------------------------------------------------------------------------------
    // Shopify's Ajax cart: POST /cart/add, /cart/add.js or /cart/add.json (with an optional locale prefix).
    var CART_ADD = /\/cart\/add(\.js(on)?)?([?#]|$)/;

    // Records an add, then reads the cart token (the join key to Shopify's carts/checkouts/orders) and sends.
    function added(src, body) {
      var vid;
      var qty;
      if (body && body.get) {
        // FormData or URLSearchParams
        vid = body.get('id');
        qty = body.get('quantity');
      } else if (typeof body == 'string') {
        // JSON ({"id":…} or {"items":[{"id":…}]}) or urlencoded (id=…, items[0][id]=…). A regex on the
        // text keeps variant ids exact (they may exceed 2^53 as JSON numbers).
        try {
          body = decodeURIComponent(body);
        } catch (e) {}
        vid = (/\bid\W{1,6}(\d+)/.exec(body) || [])[1];
        qty = (/\bquantity\W{1,6}(\d+)/.exec(body) || [])[1];
      }
      var ev = { t: 'ac', src: src, ct: '', vid: String(vid || ''), q: +qty || 1 };
      if (src == 'form') {
        // The page is navigating away with the form post: send now, the token can't be read in time.
        push(ev);
        return flush(1);
      }
      realFetch(((shopify && shopify.routes && shopify.routes.root) || '/') + 'cart.js')
        .then(function (r) {
          return r.json();
        })
        .then(function (cart) {
          ev.ct = cart.token || '';
        })
        .catch(noop)
        .then(function () {
          push(ev);
          flush();
        });
    }

    if (realFetch) {
      w.fetch = function (input, init) {
        var p = realFetch.apply(this, arguments);
        try {
          // input: URL string, URL object or Request
          if (CART_ADD.test((input && input.url) || input)) {
            p.then(safe(function (r) {
              if (r.ok) added('fetch', init && init.body);
            }), noop);
          }
        } catch (e) {}
        // The page gets its own promise back, untouched.
        return p;
      };
    }

    var xhr = w.XMLHttpRequest && XMLHttpRequest.prototype;
    if (xhr) {
      var open = xhr.open;
      var send = xhr.send;
      xhr.open = function (method, url) {
        this.__gt = url;
        return open.apply(this, arguments);
      };
      xhr.send = function (body) {
        var x = this;
        try {
          if (CART_ADD.test(x.__gt)) {
            x.addEventListener('load', safe(function () {
              if (x.status < 300) added('xhr', body);
            }));
          }
        } catch (e) {}
        return send.apply(this, arguments);
      };
    }

    // A plain form post. If a theme handler prevents it, the theme adds through fetch/XHR (counted above);
    // defaultPrevented is only final once the event has been dispatched, hence the timeout.
    on(d, 'submit', function (e) {
      var form = e.target;
      if (CART_ADD.test(form.getAttribute('action'))) {
        setTimeout(safe(function () {
          if (!e.defaultPrevented) added('form', new FormData(form));
        }));
      }
    });

    // ---- Behaviour -------------------------------------------------------------------------------------
    on(d, 'mousemove', function (e) {
      var t = now();
      // 2 px quantization: enough for replay and bot heuristics, less precise than the raw stream.
      var x = Math.round(e.pageX / 2) * 2;
      var y = Math.round(e.pageY / 2) * 2;
      counts.mc++;
      lastMove = t;
      if (locked || samples >= 300 || t - lastSample < 16 || (x == prevX && y == prevY)) return;
      path.push(t - prevT, x - prevX, y - prevY);
      prevT = lastSample = t;
      prevX = x;
      prevY = y;
      samples++;
    });

    on(d, 'click', function (e) {
      var t = e.target;
      if (!locked) {
        push({
          t: 'cl',
          x: Math.round(e.pageX),
          y: Math.round(e.pageY),
          pw: root.scrollWidth,
          ph: root.scrollHeight,
          tg: t.tagName.toLowerCase(),
          sel: selector(t),
          // Humans move to a target before clicking it; scripted clicks usually don't.
          ap: now() - lastMove < 500 ? 1 : 0
        });
      }
    });

    on(w, 'scroll', measureDepth);
    // Counts only: the key itself is never read.
    on(d, 'keydown', function () {
      counts.kc++;
    });
    on(d, 'touchstart', function () {
      counts.tc++;
    });
    on(d, 'wheel', function () {
      counts.wc++;
    });

    on(d, 'visibilitychange', function () {
      setVisibility(d.hidden ? 'h' : 'v');
      if (d.hidden) flush(1);
    });
    on(w, 'pagehide', function () {
      setVisibility('h');
      flush(1);
    });

    // ---- Page view and environment probes ----------------------------------------------------------------
    push({ t: 'pv', r: d.referrer, ti: d.title.slice(0, 200), pt: cfg.pageType || '' });

    var env = {
      t: 'en',
      wd: n.webdriver ? 1 : 0,
      hl: /HeadlessChrome/.test(n.userAgent) ? 1 : 0,
      pl: (n.plugins || []).length,
      lg: (n.languages || []).length,
      pi: 0,
      iw: innerWidth,
      ih: innerHeight,
      sw: screen.width,
      sh: screen.height,
      dpr: devicePixelRatio,
      hc: n.hardwareConcurrency,
      dm: n.deviceMemory,
      mt: n.maxTouchPoints
    };
    try {
      env.tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    } catch (e) {}
    if (!locked) {
      try {
        var gl = d.createElement('canvas').getContext('webgl');
        var info = gl.getExtension('WEBGL_debug_renderer_info');
        // UNMASKED_RENDERER_WEBGL, or plain RENDERER where the extension is gone (Firefox).
        env.gl = String(gl.getParameter(info ? 0x9246 : 0x1f01)).slice(0, 100);
      } catch (e) {}
      try {
        var canvas = d.createElement('canvas');
        canvas.width = 160;
        canvas.height = 24;
        var g = canvas.getContext('2d');
        g.textBaseline = 'top';
        g.font = '14px Arial';
        g.fillStyle = '#f60';
        g.fillRect(90, 2, 60, 18);
        g.fillStyle = '#069';
        g.fillText('GhostTrack \ud83d\udc7b 2.0', 2, 4);
        // 32-bit FNV-1a of the rendered image: differs by GPU, driver, fonts and anti-aliasing.
        var png = canvas.toDataURL();
        var h = 0x811c9dc5;
        for (var i = 0; i < png.length; i++) h = Math.imul(h ^ png.charCodeAt(i), 16777619);
        env.cv = (h >>> 0).toString(16).padStart(8, '0');
      } catch (e) {}
    }
    // Stealth tools patch navigator in the page but not in workers: a dedicated worker that reports another
    // hardwareConcurrency (1), platform (2) or user agent (4) than the page is a patched page. Only the bits
    // are sent; like pi, the answer lands on the queued event long before the first flush.
    try {
      var wk = new Worker(URL.createObjectURL(new Blob(['postMessage([navigator.hardwareConcurrency,navigator.platform,navigator.userAgent])'])));
      wk.onmessage = safe(function (e) {
        var v = e.data;
        env.wk = (v[0] != n.hardwareConcurrency) + 2 * (v[1] != n.platform) + 4 * (v[2] != n.userAgent);
        wk.terminate();
      });
    } catch (e) {}
    // Old headless Chrome: Notification.permission says "denied" while the Permissions API says "prompt".
    // Resolves long before the first flush, so setting it on the queued event is enough.
    try {
      n.permissions.query({ name: 'notifications' }).then(safe(function (p) {
        env.pi = Notification.permission == 'denied' && p.state == 'prompt' ? 1 : 0;
      }), noop);
    } catch (e) {}
    push(env);

    setInterval(safe(flush), 5e3);
  } catch (e) {}
})();
