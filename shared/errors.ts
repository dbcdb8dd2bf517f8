/**
 * The coded error catalogue shared by server and clients. Clients switch on
 * `code`, never on message text.
 */
export const ErrorCodes = {
  /** The payload failed schema validation (wrong types, missing fields, too large). */
  BAD_REQUEST: 'E_BAD_REQUEST',
  /** The method name is not part of the protocol. */
  UNKNOWN_METHOD: 'E_UNKNOWN_METHOD',
  /** Missing, forged, malformed or expired token. */
  UNAUTHORIZED: 'E_UNAUTHORIZED',
  /** The token's role does not allow this method (e.g. a viewer producing). */
  FORBIDDEN: 'E_FORBIDDEN',
  /** The request needs `join` first, or names an object this peer does not own. */
  INVALID_STATE: 'E_INVALID_STATE',
  NOT_FOUND: 'E_NOT_FOUND',
  /** The server is over its load threshold. */
  BUSY: 'E_BUSY',
  /** The server's disk is full: nothing was stored. */
  STORAGE_FULL: 'E_STORAGE_FULL',
  /** Too many requests from this client (address, room or connection): try again after the time given. */
  RATE_LIMITED: 'E_RATE_LIMITED',
  /** The server is shutting down (draining): join again later, or on another instance. */
  DRAINING: 'E_DRAINING',
  /** The mediasoup worker carrying the room died; the room was closed. */
  WORKER_DIED: 'E_WORKER_DIED',
  /** The reenactor process serving this room is restarting. */
  REENACTOR_RESTARTING: 'E_REENACTOR_RESTARTING',
  /** Media (upload or file) could not be decoded, is too large, or has no face. */
  MEDIA_INVALID: 'E_MEDIA_INVALID',
  MEDIA_TOO_LARGE: 'E_MEDIA_TOO_LARGE',
  NO_FACE: 'E_NO_FACE',
  /** The room already has an actor; one actor per room. */
  ROOM_TAKEN: 'E_ROOM_TAKEN',
  /** The room was closed by the server (idle, shutdown). */
  ROOM_CLOSED: 'E_ROOM_CLOSED',
  /** The configured inference provider (REENACT_PROVIDER=webgpu|cuda) cannot start on this machine; the message says what to install. */
  PROVIDER_UNAVAILABLE: 'E_PROVIDER_UNAVAILABLE',
  INTERNAL: 'E_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error that carries a catalogue code across the wire. */
export class CodedError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'CodedError';
    this.code = code;
  }
}

/** Thrown when an object is used after close(). */
export class InvalidStateError extends Error {
  readonly code = 'E_INVALID_STATE';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStateError';
  }
}
