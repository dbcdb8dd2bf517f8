/**
 * Camera access for the actor page: open a camera (by device id), list the
 * cameras, and turn getUserMedia failures into states a person can act on.
 */
export type CameraProblem = 'insecure' | 'denied' | 'not-found' | 'in-use' | 'other';

export class CameraError extends Error {
  readonly problem: CameraProblem;
  constructor(problem: CameraProblem, message: string) {
    super(message);
    this.name = 'CameraError';
    this.problem = problem;
  }
}

export const cameraAdvice: Record<CameraProblem, string> = {
  insecure:
    'Cameras only work on https:// pages (or http://localhost). Open the page on localhost, or run the server with REENACT_TLS_CERT and REENACT_TLS_KEY.',
  denied: 'Camera permission was denied. Allow camera access for this site (the camera icon in the address bar), then press "Try again".',
  'not-found': 'No camera was found. Plug one in, then press "Try again".',
  'in-use': 'The camera is in use by another application or could not start. Close the other application, then press "Try again".',
  other: 'The camera could not be opened.',
};

const CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30, max: 30 } };

export async function openCamera(deviceId?: string): Promise<MediaStream> {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    throw new CameraError('insecure', 'camera API unavailable outside a secure context');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { ...CONSTRAINTS, deviceId: { exact: deviceId } } : CONSTRAINTS,
      audio: false,
    });
  } catch (err) {
    const name = err instanceof DOMException ? err.name : '';
    const message = err instanceof Error ? err.message : String(err);
    switch (name) {
      case 'NotAllowedError':
      case 'SecurityError':
        throw new CameraError('denied', message);
      case 'NotFoundError':
      case 'OverconstrainedError':
        throw new CameraError('not-found', message);
      case 'NotReadableError':
      case 'AbortError':
        throw new CameraError('in-use', message);
      default:
        throw new CameraError('other', message);
    }
  }
}

export async function listCameras(): Promise<MediaDeviceInfo[]> {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === 'videoinput');
}
