/**
 * Security headers. Pages get a content security policy that allows only this origin's scripts,
 * styles, workers and connections (socket.io over WebSocket included), WebAssembly compilation
 * for the face tracker in the browser, and images from this origin, data: (the empty favicon)
 * and blob: (upload previews). The actor page, which holds the camera and microphone, may not be
 * framed; the viewer and OBS pages may, so they can be embedded. Every answer is nosniff, sends
 * no referrer (a `?token=` in a page's address must not leak to other sites), and over TLS
 * tells browsers to stay on HTTPS.
 */
export type PageKind = 'actor' | 'viewer';

const POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/** Headers on every answer. */
export function commonHeaders(tls: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  };
  if (tls) h['strict-transport-security'] = 'max-age=15552000';
  return h;
}

/** Headers on an HTML page. */
export function pageHeaders(kind: PageKind, tls: boolean): Record<string, string> {
  return {
    ...commonHeaders(tls),
    'content-security-policy': `${POLICY}; frame-ancestors ${kind === 'actor' ? "'none'" : '*'}`,
    ...(kind === 'actor' ? { 'x-frame-options': 'DENY' } : {}),
    'permissions-policy': kind === 'actor' ? 'camera=(self), microphone=(self), geolocation=(), usb=()' : 'camera=(), microphone=(), geolocation=(), usb=()',
    'cross-origin-opener-policy': 'same-origin',
  };
}
