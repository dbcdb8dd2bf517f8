/**
 * Loads @roamhq/wrtc and installs the WebRTC globals mediasoup-client expects.
 * wrtc must live on the main thread of its process: it aborts the process
 * when a worker thread that used it exits. Import this only from process
 * entry points' main threads (reenactor child, CLIs, tests).
 */
import { isMainThread } from 'node:worker_threads';
import wrtc from '@roamhq/wrtc';

if (!isMainThread) throw new Error('wrtc must not be loaded in a worker thread');

const g = globalThis as Record<string, unknown>;
for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream', 'MediaStreamTrack', 'RTCRtpSender', 'RTCRtpReceiver', 'RTCRtpTransceiver'] as const) {
  if (g[name] === undefined) g[name] = (wrtc as Record<string, unknown>)[name];
}

/*
 * wrtc's N-API finalizers crash (SIGSEGV or a V8 "node->IsInUse()" abort) when
 * Node frees the environment at a natural exit, even after every track, sink
 * and peer connection was closed. process.exit() skips that teardown, so turn
 * every natural exit of a process that loaded wrtc into an explicit one with
 * the same exit code. (Inside an 'exit' listener, process.exit() goes straight
 * to the final exit without emitting 'exit' again.)
 */
process.once('exit', (code) => process.exit(code));

export const { RTCVideoSource, RTCVideoSink, RTCAudioSource, RTCAudioSink } = wrtc.nonstandard;
export type I420Frame = { width: number; height: number; data: Uint8Array };
export { wrtc };
