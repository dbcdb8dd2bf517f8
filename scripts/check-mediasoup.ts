// End-to-end check of the installed mediasoup-worker: a real WebRTC client
// (libwebrtc through @roamhq/wrtc, driven by mediasoup-client) completes ICE
// and a DTLS handshake with the worker and sends it VP8 video over SRTP.
//
// Usage: node --import tsx scripts/check-mediasoup.ts
// Prints OK and exits 0 when the server side sees DTLS connected and the
// producer receives RTP within the deadline; exits 1 otherwise.
//
// This covers exactly what a worker built against Debian's OpenSSL and
// libsrtp can get wrong while still passing a start-up probe: the DTLS
// handshake (the kTLS crash fixed by build-mediasoup-worker.sh) and SRTP
// decryption (the libsrtp 3 -> 2 compatibility layer).

import { createRequire } from 'node:module';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import { Device } from 'mediasoup-client';
import type { types as msc } from 'mediasoup-client';
import wrtc from '@roamhq/wrtc';

// How long DTLS + first RTP may take once the client starts connecting.
const MEDIA_DEADLINE_MS = 10_000;
// Hard cap for the whole run, so a wedged worker or peer never hangs CI.
const OVERALL_DEADLINE_MS = 30_000;
const WIDTH = 320;
const HEIGHT = 240;

// mediasoup-client's Chrome111 handler uses the browser globals.
Object.assign(globalThis, {
  RTCPeerConnection: wrtc.RTCPeerConnection,
  RTCSessionDescription: wrtc.RTCSessionDescription,
  RTCIceCandidate: wrtc.RTCIceCandidate,
  MediaStream: wrtc.MediaStream,
  MediaStreamTrack: wrtc.MediaStreamTrack,
  RTCRtpSender: wrtc.RTCRtpSender,
  RTCRtpReceiver: wrtc.RTCRtpReceiver,
  RTCRtpTransceiver: wrtc.RTCRtpTransceiver,
});

function log(message: string): void {
  console.log(`[check-mediasoup] ${message}`);
}

// Resolves when `predicate` holds, polling; rejects after `ms`.
async function waitFor(what: string, ms: number, predicate: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function describeWorkerBin(): string {
  if (process.env.MEDIASOUP_WORKER_BIN) {
    return `${process.env.MEDIASOUP_WORKER_BIN} (from MEDIASOUP_WORKER_BIN)`;
  }
  const require = createRequire(import.meta.url);
  // mediasoup's main entry is node/lib/index.js; the worker lives beside it.
  return require.resolve('mediasoup').replace(/node\/lib\/index\.js$/, 'worker/out/Release/mediasoup-worker');
}

async function main(): Promise<void> {
  log(`mediasoup ${mediasoup.version}, worker binary ${describeWorkerBin()}`);

  const worker = await mediasoup.createWorker({ logLevel: 'warn' });
  // Without this, a crashing worker (e.g. the DTLS SIGSEGV) would only show
  // up as a timeout.
  const workerDied = new Promise<never>((_resolve, reject) => {
    worker.on('died', (error) => reject(new Error(`mediasoup-worker died: ${error.message}`)));
  });

  const frameSource = new wrtc.nonstandard.RTCVideoSource();
  const track = frameSource.createTrack();
  let frameTimer: NodeJS.Timeout | undefined;
  let sendTransport: msc.Transport | undefined;

  try {
    const router = await worker.createRouter({
      mediaCodecs: [
        // VP8 first: it is the codec the wrtc peer will send.
        { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
        { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
      ],
    });
    const serverTransport = await router.createWebRtcTransport({
      listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }],
    });

    const device = new Device({ handlerName: 'Chrome111' });
    // The server and client packages declare structurally different (but wire
    // compatible) capability types.
    await device.load({ routerRtpCapabilities: router.rtpCapabilities as msc.RtpCapabilities });
    if (!device.canProduce('video')) {
      throw new Error('the wrtc device cannot produce video with the router capabilities');
    }

    const transport = device.createSendTransport({
      id: serverTransport.id,
      iceParameters: serverTransport.iceParameters,
      iceCandidates: serverTransport.iceCandidates,
      dtlsParameters: serverTransport.dtlsParameters,
      sctpParameters: serverTransport.sctpParameters,
    });
    sendTransport = transport;

    let producer: ms.Producer | undefined;
    let score = 0;

    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      serverTransport.connect({ dtlsParameters }).then(callback, errback);
    });
    transport.on('produce', ({ kind, rtpParameters }, callback, errback) => {
      serverTransport
        .produce({ kind, rtpParameters })
        .then((created) => {
          producer = created;
          producer.on('score', (scores) => {
            score = Math.max(score, ...scores.map((s) => s.score));
          });
          callback({ id: created.id });
        }, errback);
    });

    // A moving gray-scale gradient in I420 (chroma planes neutral), so the
    // VP8 encoder always has fresh input to encode.
    const frame = new Uint8Array((WIDTH * HEIGHT * 3) / 2);
    let tick = 0;
    const sendFrame = (): void => {
      for (let i = 0; i < WIDTH * HEIGHT; i++) {
        frame[i] = (i + tick * 4) & 0xff;
      }
      frame.fill(128, WIDTH * HEIGHT);
      frameSource.onFrame({ width: WIDTH, height: HEIGHT, data: frame });
      tick++;
    };
    sendFrame();
    frameTimer = setInterval(sendFrame, 33);

    const started = Date.now();
    log('producing a VP8 track from wrtc');
    await Promise.race([
      workerDied,
      (async () => {
        // Encoding limits go in sendEncodings: wrtc rejects every
        // sender.setParameters() call.
        await transport.produce({ track, encodings: [{ maxBitrate: 500_000 }] });
        await waitFor('DTLS connected', MEDIA_DEADLINE_MS, () => serverTransport.dtlsState === 'connected');
        log(`DTLS connected after ${Date.now() - started} ms`);
        await waitFor('RTP at the producer', MEDIA_DEADLINE_MS - (Date.now() - started), async () => {
          if (!producer) {
            return false;
          }
          const stats = await producer.getStats();
          return score > 0 || stats.some((s) => s.byteCount > 0);
        });
      })(),
    ]);

    const stats = producer ? await producer.getStats() : [];
    const bytes = stats.reduce((sum, s) => sum + s.byteCount, 0);
    log(`producer received ${bytes} bytes of RTP (score ${score}) after ${Date.now() - started} ms`);
  } finally {
    // wrtc keeps the process alive until every track and peer connection
    // is closed.
    clearInterval(frameTimer);
    track.stop();
    sendTransport?.close();
    worker.close();
  }
}

const overall = setTimeout(() => {
  log(`FAILED: no result within ${OVERALL_DEADLINE_MS} ms`);
  process.exit(1);
}, OVERALL_DEADLINE_MS);

main().then(
  () => {
    clearTimeout(overall);
    log('OK');
    process.exit(0);
  },
  (error: unknown) => {
    clearTimeout(overall);
    log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
