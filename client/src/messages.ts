/**
 * What the pages tell people for each coded error (shared/errors.ts). The
 * pages switch on codes, never on server message text; the server's message
 * is shown only as a detail.
 */
import { CodedError, ErrorCodes, type ErrorCode } from '../../shared/errors.ts';

const text: Partial<Record<ErrorCode, string>> = {
  [ErrorCodes.STORAGE_FULL]: "The server's disk is full, so the upload was not kept. Try again later.",
  [ErrorCodes.RATE_LIMITED]: 'Too many requests from here in a short time. Retrying automatically.',
  [ErrorCodes.DRAINING]: 'The server is restarting. Retrying automatically.',
  [ErrorCodes.BUSY]: 'The server is busy (all reenactment slots are in use). Retrying automatically.',
  [ErrorCodes.UNAUTHORIZED]: 'Your access token was refused or has expired. Reload the page.',
  [ErrorCodes.FORBIDDEN]: 'This server does not hand out tokens to pages (REENACT_AUTO_TOKENS=0). Open the page through your own backend.',
  [ErrorCodes.MEDIA_INVALID]: 'That file is not an image the server can read. Use a JPEG, PNG or WebP photo.',
  [ErrorCodes.MEDIA_TOO_LARGE]: 'That file is too large (the limit is 10 MB).',
  [ErrorCodes.NO_FACE]: 'No face was found in that image. Use a photo with one clear, frontal face.',
  [ErrorCodes.REENACTOR_RESTARTING]: 'The reenactor is restarting; the output resumes in a moment.',
  [ErrorCodes.WORKER_DIED]: 'The media server restarted this room. Reconnecting.',
  [ErrorCodes.ROOM_CLOSED]: 'The room was closed.',
  [ErrorCodes.ROOM_TAKEN]: 'Someone is already acting in this room. Pick another room (?room=…) or wait for them to leave.',
  [ErrorCodes.NOT_FOUND]: 'Not available on this server.',
  [ErrorCodes.INTERNAL]: 'Something went wrong on the server.',
};

/** A person-readable sentence for a code. */
export function describeCode(code: string): string {
  return text[code as ErrorCode] ?? 'Something went wrong.';
}

/** Any thrown value as {code, message}; non-coded errors become E_INTERNAL. */
export function toCoded(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof CodedError) return { code: err.code, message: err.message };
  return { code: ErrorCodes.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}

/** Reads the `{error: {code, message}}` body the HTTP API answers with on failure. */
export async function httpError(res: Response): Promise<CodedError> {
  let code: string | undefined;
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code;
    message = body.error?.message ?? message;
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status.
  }
  const known = Object.values(ErrorCodes) as string[];
  if (code && known.includes(code)) return new CodedError(code as ErrorCode, message);
  if (res.status === 503 || res.status === 429) return new CodedError(ErrorCodes.BUSY, message);
  if (res.status === 401) return new CodedError(ErrorCodes.UNAUTHORIZED, message);
  if (res.status === 413) return new CodedError(ErrorCodes.MEDIA_TOO_LARGE, message);
  if (res.status === 404) return new CodedError(ErrorCodes.NOT_FOUND, message);
  return new CodedError(ErrorCodes.INTERNAL, message);
}
