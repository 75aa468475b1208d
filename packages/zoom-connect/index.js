// @zoom-connector/connect: the browser helper for the Zoom connector's connect popup.
// The connector serves this very file at GET /connect.js. No dependencies, no eval, no
// inline anything: it works under a strict Content-Security-Policy (script-src the connector).

export const VERSION = "0.1.0";

const MESSAGE_TYPE = "zoom-connector";

const MESSAGES = {
  popup_blocked: "The browser blocked the Zoom window. Allow popups for this site and try again.",
  closed: "The Zoom window was closed before connecting finished.",
  timeout: "Connecting to Zoom took too long.",
  aborted: "Connecting to Zoom was cancelled.",
  invalid_connect_url: "The connect URL is not an absolute http(s) URL.",
  session_invalid: "The connect link is unknown, expired or already used.",
  access_denied: "Access to Zoom was not allowed.",
  admin_preapproval_required: "A Zoom admin of the account must pre-approve the app first.",
};

/** The rejection of `open`: `code` is the result page's error code or one of the helper's own. */
export class ZoomConnectError extends Error {
  constructor(code, message) {
    super(message || MESSAGES[code] || "Connecting to Zoom failed (" + code + ").");
    this.name = "ZoomConnectError";
    this.code = code;
  }
}

function failure(code) {
  return new ZoomConnectError(code);
}

/** `GET {connect path}/status?session=T` beside the connect URL's own path. */
function statusUrlOf(connect, session) {
  const status = new URL(connect.href);
  status.pathname = connect.pathname.replace(/\/+$/, "") + "/status";
  status.search = "?session=" + encodeURIComponent(session);
  status.hash = "";
  return status.href;
}

/**
 * Opens the connect URL in a popup and settles with its outcome. Call it straight from a click
 * handler (no `await` before it): the popup opens synchronously, so popup blockers allow it.
 */
export function open(options) {
  const {
    connectUrl,
    timeoutMs = 10 * 60 * 1000,
    closedGraceMs = 60 * 1000,
    pollIntervalMs = 1000,
    openPollIntervalMs = 5000,
    signal,
    popupName = "zoom-connect",
    popupFeatures = "popup,width=600,height=720",
  } = options || {};
  let connect;
  try {
    const base = typeof location === "undefined" ? undefined : location.href;
    connect = new URL(String(connectUrl), base);
  } catch (_) {
    return Promise.reject(failure("invalid_connect_url"));
  }
  if (connect.protocol !== "https:" && connect.protocol !== "http:") {
    return Promise.reject(failure("invalid_connect_url"));
  }
  if (signal && signal.aborted) {
    return Promise.reject(failure("aborted"));
  }
  const popup = window.open(connect.href, popupName, popupFeatures);
  if (!popup) {
    return Promise.reject(failure("popup_blocked"));
  }
  const origin = connect.origin;
  const session = connect.searchParams.get("session");
  const statusUrl = session ? statusUrlOf(connect, session) : null;

  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    let settled = false;
    let closedAt = null;
    let lastPoll = 0;
    let polling = false;
    let timer = null;

    function closePopup() {
      try {
        if (!popup.closed) popup.close();
      } catch (_) {
        // A severed popup can no longer be reached: nothing to close.
      }
    }

    function settle(error, value) {
      if (settled) return;
      settled = true;
      if (timer !== null) clearInterval(timer);
      window.removeEventListener("message", onMessage);
      if (signal) signal.removeEventListener("abort", onAbort);
      if (error) reject(error);
      else resolve(value);
    }

    // A result of the connector: the result page's message or the status route's answer.
    function settleWith(result) {
      if (result.status === "success" && typeof result.connection_id === "string" && result.connection_id) {
        closePopup();
        settle(null, { connectionId: result.connection_id });
        return true;
      }
      if (result.status === "error") {
        settle(failure(typeof result.error === "string" && result.error ? result.error : "unknown_error"));
        return true;
      }
      return false;
    }

    function onMessage(event) {
      // Only the connector's own pages speak for it: any other origin (the page itself
      // included) is ignored, whatever it posts.
      if (event.origin !== origin) return;
      const data = event.data;
      if (!data || typeof data !== "object" || data.type !== MESSAGE_TYPE) return;
      settleWith(data);
    }

    function onAbort() {
      closePopup();
      settle(failure("aborted"));
    }

    async function poll() {
      if (!statusUrl || polling) return;
      polling = true;
      lastPoll = Date.now();
      try {
        const response = await fetch(statusUrl, {
          mode: "cors",
          credentials: "omit",
          cache: "no-store",
          referrerPolicy: "no-referrer",
        });
        if (settled) return;
        if (response.status === 404) {
          // Unknown or expired session (the popup shows why); final once the popup is gone.
          if (closedAt !== null) settle(failure("session_invalid"));
          return;
        }
        if (!response.ok) return;
        const status = await response.json();
        if (settled || settleWith(status)) return;
        // Closed before the flow even reached Zoom: nothing can come any more.
        if (closedAt !== null && status.started === false) settle(failure("closed"));
      } catch (_) {
        // Offline for a moment: the next tick asks again.
      } finally {
        polling = false;
      }
    }

    function tick() {
      if (settled) return;
      const now = Date.now();
      if (now - startedAt >= timeoutMs) {
        closePopup();
        settle(failure("timeout"));
        return;
      }
      let closed = true;
      try {
        closed = popup.closed;
      } catch (_) {
        closed = true;
      }
      if (closed && closedAt === null) {
        // Closed by the person, or severed from us by Zoom's Cross-Origin-Opener-Policy (which
        // looks the same from here): ask the connector what happened.
        closedAt = now;
        if (!statusUrl) {
          settle(failure("closed"));
          return;
        }
        poll();
        return;
      }
      if (closedAt !== null) {
        if (now - closedAt >= closedGraceMs) {
          settle(failure("closed"));
          return;
        }
        if (now - lastPoll >= pollIntervalMs) poll();
      } else if (now - lastPoll >= openPollIntervalMs) {
        poll();
      }
    }

    window.addEventListener("message", onMessage);
    if (signal) signal.addEventListener("abort", onAbort);
    lastPoll = startedAt;
    timer = setInterval(tick, Math.max(100, Math.min(500, pollIntervalMs)));
  });
}

const ZoomConnect = { open, VERSION, ZoomConnectError };
export default ZoomConnect;
