// GhostTrack checkout web pixel. Runs in Shopify's strict sandbox (a web worker): only the
// register() API, fetch, timers and Date are used; no DOM, window, cookies or storage.
//
// Sends, in the collect wire format (docs/COLLECT-PROTOCOL.md, "Web pixel"):
//   checkout_started        -> {t:"co", ts, ck}
//   payment_info_submitted  -> {t:"pi", ts, ck}
//   alert_displayed         -> {t:"al", ts, ck, at}   (PAYMENT_ERROR and CHECKOUT_ERROR only)
//   checkout_completed      -> {t:"cc", ts, ck}
// `ck` is the checkout token (for alerts: the last one seen; alerts carry no checkout). Nothing
// else of the checkout is read: no email, phone, names, addresses, line items, amounts or alert
// messages (they can hold what the shopper typed).
import {register} from '@shopify/web-pixels-extension';

const MAX_BATCH = 25;
const FLUSH_DELAY_MS = 1000;
const KEPT_ALERTS = ['PAYMENT_ERROR', 'CHECKOUT_ERROR'];

register(({analytics, init, settings, customerPrivacy}) => {
  const siteKey = settings && settings.accountID;
  const endpoint = settings && settings.collectorUrl;
  if (!siteKey || !endpoint || !/^https:\/\//.test(endpoint)) return;

  let consent = init && init.customerPrivacy && init.customerPrivacy.analyticsProcessingAllowed ? 1 : 0;
  if (customerPrivacy && customerPrivacy.subscribe) {
    customerPrivacy.subscribe('visitorConsentCollected', (e) => {
      consent = e && e.customerPrivacy && e.customerPrivacy.analyticsProcessingAllowed ? 1 : 0;
    });
  }

  let queue = [];
  let pageUrl = '';
  let timer = null;
  // alert_displayed carries no checkout: it is tied to the last checkout seen by this pixel.
  let lastToken;

  const flush = () => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (!queue.length) return;
    const body = JSON.stringify({k: siteKey, v: 1, s: Date.now(), u: pageUrl, c: consent, e: queue});
    queue = [];
    try {
      fetch(endpoint, {
        method: 'POST',
        keepalive: true,
        credentials: 'omit',
        headers: {'Content-Type': 'text/plain;charset=UTF-8'},
        body,
      }).catch(() => {});
    } catch (_) {
      // Never throw into the pixel manager.
    }
  };

  const timeOf = (event) => {
    const ms = Date.parse(event && event.timestamp);
    return Number.isFinite(ms) ? ms : Date.now();
  };

  const tokenOf = (event) => {
    const checkout = event && event.data && event.data.checkout;
    const token = checkout && checkout.token;
    if (typeof token === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(token)) lastToken = token;
    return lastToken;
  };

  const push = (event, fields, now) => {
    const loc = event && event.context && event.context.document && event.context.document.location;
    // Origin + path only: the collector keeps the path, and the query may hold checkout ids.
    if (loc && loc.origin && loc.pathname) pageUrl = loc.origin + loc.pathname;
    queue.push(Object.assign({ts: timeOf(event)}, fields));
    if (now || queue.length >= MAX_BATCH) flush();
    else if (timer === null) timer = setTimeout(flush, FLUSH_DELAY_MS);
  };

  analytics.subscribe('checkout_started', (event) => push(event, {t: 'co', ck: tokenOf(event)}, false));
  analytics.subscribe('payment_info_submitted', (event) => push(event, {t: 'pi', ck: tokenOf(event)}, false));
  analytics.subscribe('alert_displayed', (event) => {
    const alert = event && event.data && event.data.alert;
    const type = alert && typeof alert.type === 'string' ? alert.type : '';
    if (KEPT_ALERTS.indexOf(type) < 0) return;
    push(event, {t: 'al', ck: tokenOf(event), at: type}, true);
  });
  analytics.subscribe('checkout_completed', (event) => push(event, {t: 'cc', ck: tokenOf(event)}, true));
});
