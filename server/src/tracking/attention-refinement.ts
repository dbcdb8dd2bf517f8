/** Placeholder until the attention model's refinement index maps are in. */
export function refineWithAttention(_outputs: Float32Array[], _out: Float32Array): void {
  throw new TypeError('attention refinement is not implemented');
}
