/** Stage harness: runs frames through a stage in order and collects its outputs (copied). */
import type { FrameMeta, I420, Stage, StageOutput } from '../../server/src/reenactor/stage.ts';

export async function runStage(stage: Stage, frames: I420[]): Promise<StageOutput[]> {
  const out: StageOutput[] = [];
  let seq = 0;
  for (const frame of frames) {
    const meta: FrameMeta = { seq: seq++, arrivalMs: performance.now() };
    const r = await stage.process(frame, meta);
    if ('dropped' in r) throw new Error(`stage dropped frame ${meta.seq}: ${r.dropped}`);
    out.push({ ...r, frame: { ...r.frame, data: new Uint8Array(r.frame.data) } });
  }
  return out;
}
