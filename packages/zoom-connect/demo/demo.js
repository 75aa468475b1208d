// The demo page's script: imports the helper from the connector's origin and wires the button.
// Query parameters (for tests): timeout_ms, closed_grace_ms, open_poll_ms.
const body = document.body;
const connector = body.dataset.connector.replace(/\/+$/, "");
const { default: ZoomConnect } = await import(connector + "/connect.js");

const params = new URLSearchParams(location.search);
const number = (name) => (params.has(name) ? Number(params.get(name)) : undefined);
const result = document.getElementById("result");

document.getElementById("connect").addEventListener("click", () => {
  result.textContent = "connecting";
  // Straight from the click: the popup opens synchronously inside open().
  ZoomConnect.open({
    connectUrl: body.dataset.connectUrl,
    timeoutMs: number("timeout_ms"),
    closedGraceMs: number("closed_grace_ms"),
    openPollIntervalMs: number("open_poll_ms"),
  }).then(
    ({ connectionId }) => {
      result.textContent = JSON.stringify({ ok: true, connectionId });
    },
    (error) => {
      result.textContent = JSON.stringify({ ok: false, code: error.code, message: error.message });
    },
  );
});
body.dataset.ready = "true";
