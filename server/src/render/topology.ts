/**
 * MediaPipe face-mesh landmark index sets used by the renderer. The topology is
 * the public 468-point face mesh (plus 10 iris points in the 478-point model).
 * "Left"/"right" are the subject's: the subject's right eye is on the image's
 * left. Contours run from corner to corner so upper and lower halves pair up.
 */

export const FACE_OVAL: readonly number[] = [
  10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
  152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
];

/** Outer lip contour, upper half from the right corner (61) to the left corner (291). */
export const LIPS_UPPER_OUTER: readonly number[] = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291];
export const LIPS_LOWER_OUTER: readonly number[] = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291];
/** Inner lip contour, corner 78 to corner 308; index k of upper and lower face each other. */
export const LIPS_UPPER_INNER: readonly number[] = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
export const LIPS_LOWER_INNER: readonly number[] = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308];

export interface EyeTopology {
  /** Outer and inner corner. */
  outer: number;
  inner: number;
  /** Lid margins from the outer to the inner corner, corners included, same length, paired by index. */
  upper: readonly number[];
  lower: readonly number[];
  /** Rings above the upper lid (lid skin, then crease/brow side), outer to inner. */
  upper1: readonly number[];
  upper2: readonly number[];
  /** Iris centre in the 478-point model, and its 4 rim points. */
  iris: number;
  irisRim: readonly number[];
}

export const RIGHT_EYE: EyeTopology = {
  outer: 33,
  inner: 133,
  upper: [33, 246, 161, 160, 159, 158, 157, 173, 133],
  lower: [33, 7, 163, 144, 145, 153, 154, 155, 133],
  upper1: [247, 30, 29, 27, 28, 56, 190],
  upper2: [113, 225, 224, 223, 222, 221, 189],
  iris: 468,
  irisRim: [469, 470, 471, 472],
};

export const LEFT_EYE: EyeTopology = {
  outer: 263,
  inner: 362,
  upper: [263, 466, 388, 387, 386, 385, 384, 398, 362],
  lower: [263, 249, 390, 373, 374, 380, 381, 382, 362],
  upper1: [467, 260, 259, 257, 258, 286, 414],
  upper2: [342, 445, 444, 443, 442, 441, 413],
  iris: 473,
  irisRim: [474, 475, 476, 477],
};

export const EYES: readonly EyeTopology[] = [RIGHT_EYE, LEFT_EYE];

export const RIGHT_BROW: readonly number[] = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107];
export const LEFT_BROW: readonly number[] = [276, 283, 282, 295, 285, 300, 293, 334, 296, 336];

/**
 * Points that expressions barely move and that are anatomical (not on the
 * silhouette, whose points slide over the face as it turns): forehead, nose
 * bridge and tip, nose wings, eye corners, cheekbones. Rigid head motion is
 * fitted on these.
 */
export const STABLE_POINTS: readonly number[] = [
  151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 108, 337, 69, 299, 33, 133, 263, 362, 116, 345, 123, 352, 129, 358, 98, 327,
];

/** Mouth corners (outer contour) and lip centres. */
export const MOUTH_CORNER_RIGHT = 61;
export const MOUTH_CORNER_LEFT = 291;
export const UPPER_LIP_INNER_MID = 13;
export const LOWER_LIP_INNER_MID = 14;
export const FOREHEAD_TOP = 10;
export const CHIN = 152;
export const NOSE_TIP = 1;

export const MESH_POINTS = 468;
