/**
 * Coded errors of the render stage. The codes belong in the shared catalogue
 * (`shared/errors.ts`) once it exists; until then they live here so CLIs can
 * map them to exit code 2 and the server to a wire error.
 */
export type RenderErrorCode =
  /** The target image or clip has no trackable face. */
  | 'E_RENDER_NO_FACE'
  /** A bad argument (size, buffer length, option). */
  | 'E_RENDER_BAD_ARG'
  /** render() before enroll(). */
  | 'E_RENDER_NOT_ENROLLED'
  /** A learned renderer's model file is missing or has the wrong inputs. */
  | 'E_RENDER_MODEL';

export class RenderError extends Error {
  readonly code: RenderErrorCode;
  constructor(code: RenderErrorCode, message: string) {
    super(message);
    this.name = 'RenderError';
    this.code = code;
  }
}

/** Use after close(): one class for the whole project, from the shared catalogue. */
export { InvalidStateError } from '../../../shared/errors.ts';
