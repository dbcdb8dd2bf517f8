/**
 * Draws a short upper-case notice into an I420 frame's luma plane (a 5×7
 * bitmap font, dark band behind it), so passthrough fallback video says why
 * it is not the reenacted face.
 */
const GLYPHS: Record<string, string> = {
  A: '01110100011000111111100011000110001',
  B: '11110100011000111110100011000111110',
  C: '01110100011000010000100001000101110',
  D: '11110100011000110001100011000111110',
  E: '11111100001000011110100001000011111',
  F: '11111100001000011110100001000010000',
  G: '01110100011000010111100011000101111',
  H: '10001100011000111111100011000110001',
  I: '01110001000010000100001000010001110',
  K: '10001100101010011000101001001010001',
  L: '10000100001000010000100001000011111',
  M: '10001110111010110101100011000110001',
  N: '10001110011010110011100011000110001',
  O: '01110100011000110001100011000101110',
  P: '11110100011000111110100001000010000',
  R: '11110100011000111110101001001010001',
  S: '01111100001000001110000010000111110',
  T: '11111001000010000100001000010000100',
  U: '10001100011000110001100011000101110',
  V: '10001100011000110001100010101000100',
  Y: '10001100010101000100001000010000100',
  '-': '00000000000000011111000000000000000',
  ' ': '00000000000000000000000000000000000',
};

export function drawNotice(y: Uint8Array, width: number, height: number, text: string): void {
  const scale = Math.max(1, Math.floor(width / 160));
  const charW = 6 * scale;
  const bandH = 11 * scale;
  const y0 = height - bandH - 2 * scale;
  if (y0 < 0) return;
  for (let row = y0; row < y0 + bandH; row++) y.fill(24, row * width, (row + 1) * width);
  const chars = text.toUpperCase().slice(0, Math.floor((width - 4 * scale) / charW));
  let x0 = Math.max(2 * scale, (width - chars.length * charW) >> 1);
  for (const ch of chars) {
    const g = GLYPHS[ch] ?? GLYPHS[' ']!;
    for (let gy = 0; gy < 7; gy++)
      for (let gx = 0; gx < 5; gx++) {
        if (g[gy * 5 + gx] !== '1') continue;
        for (let sy = 0; sy < scale; sy++) {
          const row = y0 + 2 * scale + gy * scale + sy;
          y.fill(235, row * width + x0 + gx * scale, row * width + x0 + (gx + 1) * scale);
        }
      }
    x0 += charW;
  }
}
