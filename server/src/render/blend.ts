/**
 * Compositing in a small region of interest: Laplacian-pyramid blending of a
 * patch into an image under a soft mask (low frequencies blend over a wide
 * seam, fine detail over a narrow one), and per-channel colour matching.
 * Buffers are owned by a PyramidBlender sized once for the largest ROI:
 * blending allocates nothing.
 */

export class PyramidBlender {
  readonly #levels: number;
  readonly #cap: number;
  // Per level: image A (dst), B (patch), M (mask), scratch.
  readonly #a: Float32Array[] = [];
  readonly #b: Float32Array[] = [];
  readonly #m: Float32Array[] = [];
  // The blended result, ping-ponged between levels.
  readonly #r: [Float32Array, Float32Array];

  constructor(maxPixels: number, levels = 3) {
    this.#levels = levels;
    this.#cap = maxPixels;
    let n = maxPixels;
    for (let l = 0; l < levels; l++) {
      this.#a.push(new Float32Array(n * 3));
      this.#b.push(new Float32Array(n * 3));
      this.#m.push(new Float32Array(n));
      n = Math.ceil(n / 4) + 64;
    }
    this.#r = [new Float32Array(maxPixels * 3), new Float32Array(maxPixels * 3)];
  }

  /**
   * Blends patch (RGB float, w×h) into dst RGBA at (x0, y0) under mask (0..1, w×h).
   * Pixels outside dst are skipped.
   */
  blend(dst: Uint8Array, dstW: number, dstH: number, x0: number, y0: number, w: number, h: number, patch: Float32Array, mask: Float32Array): void {
    if (w * h > this.#cap || w < 2 || h < 2) return;
    const A0 = this.#a[0]!, B0 = this.#b[0]!, M0 = this.#m[0]!;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const gx = Math.min(dstW - 1, Math.max(0, x0 + x)), gy = Math.min(dstH - 1, Math.max(0, y0 + y));
        const o = (gy * dstW + gx) * 4, i = y * w + x;
        A0[i * 3] = dst[o]!; A0[i * 3 + 1] = dst[o + 1]!; A0[i * 3 + 2] = dst[o + 2]!;
        B0[i * 3] = patch[i * 3]!; B0[i * 3 + 1] = patch[i * 3 + 1]!; B0[i * 3 + 2] = patch[i * 3 + 2]!;
        M0[i] = mask[i]!;
      }
    }
    // Gaussian pyramids.
    const ws = [w], hs = [h];
    let levels = 1;
    for (let l = 1; l < this.#levels; l++) {
      const pw = ws[l - 1]!, ph = hs[l - 1]!;
      if (pw < 6 || ph < 6) break;
      const nw = (pw + 1) >> 1, nh = (ph + 1) >> 1;
      down(this.#a[l - 1]!, pw, ph, this.#a[l]!, nw, nh, 3);
      down(this.#b[l - 1]!, pw, ph, this.#b[l]!, nw, nh, 3);
      down(this.#m[l - 1]!, pw, ph, this.#m[l]!, nw, nh, 1);
      ws.push(nw);
      hs.push(nh);
      levels++;
    }
    // Blend from the coarsest level up: result_l = up(result_{l+1}) + blend of the Laplacian bands,
    // where a band is X_l - up(X_{l+1}) (X_{l+1} is down(X_l), already in the Gaussian pyramid).
    const top = levels - 1;
    let r = this.#r[top % 2]!;
    {
      const A = this.#a[top]!, B = this.#b[top]!, M = this.#m[top]!, n = ws[top]! * hs[top]!;
      for (let i = 0; i < n; i++) {
        const m = M[i]!;
        for (let c = 0; c < 3; c++) r[i * 3 + c] = A[i * 3 + c]! + (B[i * 3 + c]! - A[i * 3 + c]!) * m;
      }
    }
    for (let l = top - 1; l >= 0; l--) {
      const next = this.#r[l % 2]!;
      collapseLevel(this.#a[l]!, this.#b[l]!, this.#m[l]!, ws[l]!, hs[l]!, this.#a[l + 1]!, this.#b[l + 1]!, r, ws[l + 1]!, hs[l + 1]!, next);
      r = next;
    }
    for (let y = 0; y < h; y++) {
      const gy = y0 + y;
      if (gy < 0 || gy >= dstH) continue;
      for (let x = 0; x < w; x++) {
        const gx = x0 + x;
        if (gx < 0 || gx >= dstW) continue;
        const i = y * w + x;
        if (M0[i]! <= 0 && this.#m[Math.min(1, levels - 1)]![((y >> 1) * ws[Math.min(1, levels - 1)]!) + (x >> 1)]! <= 0) continue;
        const o = (gy * dstW + gx) * 4;
        for (let c = 0; c < 3; c++) {
          const v = r[i * 3 + c]!;
          dst[o + c] = v < 0 ? 0 : v > 255 ? 255 : v + 0.5;
        }
      }
    }
  }
}

/**
 * One step of collapsing the blended pyramid, w×h from the coarse cw×ch level:
 * out = up(coarse result) + (A - up(A')) + ((B - up(B')) - (A - up(A'))) * M, where A' and B'
 * are the next Gaussian level. The three upsamplings share their bilinear taps, in one pass.
 */
function collapseLevel(
  A: Float32Array, B: Float32Array, M: Float32Array, w: number, h: number,
  A1: Float32Array, B1: Float32Array, R1: Float32Array, cw: number, ch: number, out: Float32Array,
): void {
  for (let y = 0; y < h; y++) {
    const fy = Math.min(ch - 1, Math.max(0, (y - 0.5) / 2 + 0.25));
    const y0 = Math.floor(fy), y1 = Math.min(ch - 1, y0 + 1), ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(cw - 1, Math.max(0, (x - 0.5) / 2 + 0.25));
      const x0 = Math.floor(fx), x1 = Math.min(cw - 1, x0 + 1), tx = fx - x0;
      const p00 = (y0 * cw + x0) * 3, p01 = (y0 * cw + x1) * 3, p10 = (y1 * cw + x0) * 3, p11 = (y1 * cw + x1) * 3;
      const i = y * w + x, m = M[i]!;
      for (let c = 0; c < 3; c++) {
        const uA = (A1[p00 + c]! + (A1[p01 + c]! - A1[p00 + c]!) * tx) * (1 - ty) + (A1[p10 + c]! + (A1[p11 + c]! - A1[p10 + c]!) * tx) * ty;
        const uB = (B1[p00 + c]! + (B1[p01 + c]! - B1[p00 + c]!) * tx) * (1 - ty) + (B1[p10 + c]! + (B1[p11 + c]! - B1[p10 + c]!) * tx) * ty;
        const uR = (R1[p00 + c]! + (R1[p01 + c]! - R1[p00 + c]!) * tx) * (1 - ty) + (R1[p10 + c]! + (R1[p11 + c]! - R1[p10 + c]!) * tx) * ty;
        const k = i * 3 + c;
        const la = A[k]! - uA, lb = B[k]! - uB;
        out[k] = uR + la + (lb - la) * m;
      }
    }
  }
}

/** 2x downsample with a [1 2 1]/4 separable filter (edge clamped). */
function down(src: Float32Array, w: number, h: number, dst: Float32Array, nw: number, nh: number, ch: number): void {
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      for (let c = 0; c < ch; c++) {
        let s = 0, ws = 0;
        for (let dy = -1; dy <= 1; dy++) {
          const sy = Math.min(h - 1, Math.max(0, 2 * y + dy));
          const wy = dy === 0 ? 2 : 1;
          for (let dx = -1; dx <= 1; dx++) {
            const sx = Math.min(w - 1, Math.max(0, 2 * x + dx));
            const wgt = wy * (dx === 0 ? 2 : 1);
            s += src[(sy * w + sx) * ch + c]! * wgt;
            ws += wgt;
          }
        }
        dst[(y * nw + x) * ch + c] = s / ws;
      }
    }
  }
}
