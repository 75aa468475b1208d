/** The version of this helper (also the file the connector serves at `GET /connect.js`). */
export declare const VERSION: string;

/** Codes of the helper itself; any other code is the result page's (`access_denied`, ...). */
export type ZoomConnectHelperCode =
  | "popup_blocked"
  | "closed"
  | "timeout"
  | "aborted"
  | "invalid_connect_url"
  | "session_invalid"
  | "unknown_error";

/** Error codes of the connector's result page (docs/api.md, `GET /oauth/callback`). */
export type ZoomConnectPageCode =
  | "state_invalid"
  | "access_denied"
  | "admin_preapproval_required"
  | "invalid_client"
  | "invalid_grant"
  | "redirect_uri_mismatch"
  | "reconnect_user_mismatch"
  | "zoom_unavailable"
  | "zoom_error"
  | "temporarily_unavailable"
  | "internal_error";

export declare class ZoomConnectError extends Error {
  constructor(code: string, message?: string);
  readonly name: "ZoomConnectError";
  readonly code: ZoomConnectHelperCode | ZoomConnectPageCode | (string & {});
}

export interface OpenOptions {
  /** The `connect_url` of `POST /connect/sessions` (made by your backend). */
  connectUrl: string;
  /** Give up (and close the popup) after this long; default 10 minutes. */
  timeoutMs?: number;
  /**
   * After the popup reads as closed, keep asking the connector for the outcome this long before
   * rejecting with `closed` (a popup severed by Zoom's Cross-Origin-Opener-Policy reads as
   * closed while the person is still signing in); default 60 s. Closed before the flow reached
   * Zoom rejects at once.
   */
  closedGraceMs?: number;
  /** How often to ask `GET /connect/status` once the popup reads as closed; default 1 s. */
  pollIntervalMs?: number;
  /** How often to ask while the popup is open (a message normally arrives first); default 5 s. */
  openPollIntervalMs?: number;
  /** Cancels: closes the popup and rejects with `aborted`. */
  signal?: AbortSignal;
  /** `window.open`'s target name; default `zoom-connect`. */
  popupName?: string;
  /** `window.open`'s features; default `popup,width=600,height=720`. */
  popupFeatures?: string;
}

export interface ConnectResult {
  connectionId: string;
}

/**
 * Opens the connect popup (synchronously: call it from a click handler) and resolves with the
 * connection id, or rejects with a {@link ZoomConnectError}.
 */
export declare function open(options: OpenOptions): Promise<ConnectResult>;

declare const ZoomConnect: {
  open: typeof open;
  VERSION: typeof VERSION;
  ZoomConnectError: typeof ZoomConnectError;
};
export default ZoomConnect;
