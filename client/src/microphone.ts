/**
 * The actor's microphone: open one (by device id) with echo cancellation,
 * noise suppression and gain control on, list them, and show its level.
 * A microphone that cannot be opened never stops the camera: the page goes
 * on with video only and says why.
 */
export async function openMicrophone(deviceId?: string): Promise<MediaStream> {
  const audio: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
  if (deviceId) audio.deviceId = { exact: deviceId };
  return navigator.mediaDevices.getUserMedia({ audio, video: false });
}

export async function listMicrophones(): Promise<MediaDeviceInfo[]> {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === 'audioinput');
}

/** Why a microphone failed, in words a person can act on. */
export function microphoneAdvice(err: unknown): string {
  const name = err instanceof DOMException ? err.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'Microphone permission was denied: the room gets your face without your voice. Allow the microphone for this site to be heard.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found: the room gets your face without your voice.';
  if (name === 'NotReadableError' || name === 'AbortError') return 'The microphone is in use by another application: the room gets your face without your voice.';
  return `The microphone could not be opened (${err instanceof Error ? err.message : String(err)}).`;
}

/**
 * A level meter: the RMS of the track, as a fraction of full scale on a
 * −60…0 dBFS scale, written to a <meter> about 15 times a second.
 */
export class LevelMeter {
  readonly #ctx: AudioContext;
  readonly #analyser: AnalyserNode;
  readonly #source: MediaStreamAudioSourceNode;
  readonly #buf: Float32Array<ArrayBuffer>;
  readonly #timer: ReturnType<typeof setInterval>;
  /** The last level, 0…1, and its peak over about the last two seconds (tests read data-level and data-peak). */
  level = 0;
  peak = 0;

  constructor(track: MediaStreamTrack, meter: HTMLMeterElement) {
    this.#ctx = new AudioContext();
    this.#analyser = this.#ctx.createAnalyser();
    this.#analyser.fftSize = 1024;
    this.#buf = new Float32Array(this.#analyser.fftSize);
    this.#source = this.#ctx.createMediaStreamSource(new MediaStream([track]));
    this.#source.connect(this.#analyser);
    this.#timer = setInterval(() => {
      this.#analyser.getFloatTimeDomainData(this.#buf);
      let sum = 0;
      for (const v of this.#buf) sum += v * v;
      const db = 10 * Math.log10(sum / this.#buf.length + 1e-12);
      this.level = Math.max(0, Math.min(1, (db + 60) / 60));
      this.peak = Math.max(this.level, this.peak - 0.015);
      meter.value = this.level;
      meter.dataset['level'] = this.level.toFixed(3);
      meter.dataset['peak'] = this.peak.toFixed(3);
    }, 66);
    // A context made without a user gesture may start suspended; the meter is silent until then.
    void this.#ctx.resume().catch(() => undefined);
  }

  close(): void {
    clearInterval(this.#timer);
    this.#source.disconnect();
    void this.#ctx.close().catch(() => undefined);
  }
}
