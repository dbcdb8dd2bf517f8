import type { types } from 'mediasoup';

/**
 * VP8 first: Chromium publishes the first video codec the router offers, and
 * the reenactor's libwebrtc (wrtc M106) has no H264. With H264 first Chromium
 * picks it and the reenactor cannot consume.
 */
export const mediaCodecs: types.RouterRtpCodecCapability[] = [
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 800 } },
  { kind: 'video', mimeType: 'video/VP9', clockRate: 90000, parameters: { 'profile-id': 0 } },
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
];
