/**
 * Decoding of the BlazeFace short-range detector (MediaPipe face_detection_short_range):
 * SSD anchors, box/keypoint regression and weighted non-maximum suppression, with the
 * parameters of MediaPipe's face_detection_short_range graph.
 */

export const DETECTOR_SIZE = 128;
export const NUM_ANCHORS = 896;
const NUM_COORDS = 16;
const SCORE_CLIP = 100;
const NMS_IOU = 0.3;

/** One detected face in normalised image coordinates (0..1). */
export interface Detection {
  score: number;
  xMin: number;
  yMin: number;
  width: number;
  height: number;
  /** 6 keypoints × [x, y]: right eye, left eye, nose tip, mouth centre, right ear, left ear (subject's sides). */
  keypoints: Float32Array;
}

/** SSD anchors (x, y centres) for strides [8, 16, 16, 16], 2 anchors per cell per layer, fixed size. */
export function generateAnchors(): Float32Array {
  const out = new Float32Array(NUM_ANCHORS * 2);
  let k = 0;
  for (const [stride, perCell] of [
    [8, 2],
    [16, 6],
  ] as const) {
    const n = Math.ceil(DETECTOR_SIZE / stride);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        for (let a = 0; a < perCell; a++) {
          out[k++] = (x + 0.5) / n;
          out[k++] = (y + 0.5) / n;
        }
      }
    }
  }
  return out;
}

/** Where the image sits inside the square detector input (letterbox, aspect kept). */
export interface Letterbox {
  /** Detector pixels per image pixel. */
  scale: number;
  /** Offset of the image inside the detector input, in detector pixels. */
  padX: number;
  padY: number;
}

export function letterbox(width: number, height: number): Letterbox {
  const scale = DETECTOR_SIZE / Math.max(width, height);
  return { scale, padX: (DETECTOR_SIZE - width * scale) / 2, padY: (DETECTOR_SIZE - height * scale) / 2 };
}

function iou(a: Detection, b: Detection): number {
  const x0 = Math.max(a.xMin, b.xMin);
  const y0 = Math.max(a.yMin, b.yMin);
  const x1 = Math.min(a.xMin + a.width, b.xMin + b.width);
  const y1 = Math.min(a.yMin + a.height, b.yMin + b.height);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/** MediaPipe's WEIGHTED non-maximum suppression: overlapping boxes are averaged by score. */
function weightedNms(candidates: Detection[]): Detection[] {
  const remaining = [...candidates].sort((a, b) => b.score - a.score);
  const out: Detection[] = [];
  while (remaining.length > 0) {
    const top = remaining[0];
    if (!top) break;
    const cluster: Detection[] = [];
    const rest: Detection[] = [];
    for (const d of remaining) (iou(top, d) > NMS_IOU ? cluster : rest).push(d);
    let total = 0;
    let xMin = 0;
    let yMin = 0;
    let xMax = 0;
    let yMax = 0;
    const kp = new Float32Array(top.keypoints.length);
    for (const d of cluster) {
      total += d.score;
      xMin += d.xMin * d.score;
      yMin += d.yMin * d.score;
      xMax += (d.xMin + d.width) * d.score;
      yMax += (d.yMin + d.height) * d.score;
      for (let i = 0; i < kp.length; i++) kp[i] = (kp[i] ?? 0) + (d.keypoints[i] ?? 0) * d.score;
    }
    for (let i = 0; i < kp.length; i++) kp[i] = (kp[i] ?? 0) / total;
    out.push({ score: top.score, xMin: xMin / total, yMin: yMin / total, width: (xMax - xMin) / total, height: (yMax - yMin) / total, keypoints: kp });
    remaining.length = 0;
    remaining.push(...rest);
  }
  return out;
}

/**
 * Turns raw detector outputs into detections in normalised image coordinates, strongest first.
 * `regressors` is 896×16, `scores` 896 logits.
 */
export function decodeDetections(
  regressors: Float32Array,
  scores: Float32Array,
  anchors: Float32Array,
  box: Letterbox,
  imageWidth: number,
  imageHeight: number,
  minScore: number,
): Detection[] {
  const minLogit = Math.log(minScore / (1 - minScore));
  const candidates: Detection[] = [];
  const toX = (v: number): number => (v * DETECTOR_SIZE - box.padX) / box.scale / imageWidth;
  const toY = (v: number): number => (v * DETECTOR_SIZE - box.padY) / box.scale / imageHeight;
  for (let i = 0; i < NUM_ANCHORS; i++) {
    const logit = Math.max(-SCORE_CLIP, Math.min(SCORE_CLIP, scores[i] ?? -SCORE_CLIP));
    if (logit < minLogit) continue;
    const r = i * NUM_COORDS;
    const ax = anchors[2 * i] ?? 0;
    const ay = anchors[2 * i + 1] ?? 0;
    const cx = (regressors[r] ?? 0) / DETECTOR_SIZE + ax;
    const cy = (regressors[r + 1] ?? 0) / DETECTOR_SIZE + ay;
    const w = (regressors[r + 2] ?? 0) / DETECTOR_SIZE;
    const h = (regressors[r + 3] ?? 0) / DETECTOR_SIZE;
    const keypoints = new Float32Array(12);
    for (let k = 0; k < 6; k++) {
      keypoints[2 * k] = toX((regressors[r + 4 + 2 * k] ?? 0) / DETECTOR_SIZE + ax);
      keypoints[2 * k + 1] = toY((regressors[r + 5 + 2 * k] ?? 0) / DETECTOR_SIZE + ay);
    }
    const xMin = toX(cx - w / 2);
    const yMin = toY(cy - h / 2);
    candidates.push({
      score: 1 / (1 + Math.exp(-logit)),
      xMin,
      yMin,
      width: toX(cx + w / 2) - xMin,
      height: toY(cy + h / 2) - yMin,
      keypoints,
    });
  }
  return weightedNms(candidates);
}
