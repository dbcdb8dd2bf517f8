/**
 * The renderer's piecewise-affine warp on the GPU (issue 16), through WebGPU (Dawn, the npm
 * `webgpu` package; on a machine without a GPU, Mesa's llvmpipe Vulkan driver).
 *
 * The GPU's own rasterizer does what raster.ts does on the CPU: each mesh triangle is drawn at
 * its destination points with the source points as texture coordinates, sampled bilinearly
 * with clamp to edge, in painter's order (Vulkan writes a pixel in primitive order, so the
 * later triangle wins, as on the CPU). The target's picture is uploaded once per target; per
 * frame only the vertices (about 600 × 16 bytes) go up and the warped square comes back.
 * Results match the CPU warp within one grey level except on the rare pixel whose centre lies
 * on a shared edge (test/gpu.test.ts measures both).
 *
 * One warp runs at a time per GpuWarp; calls queue in order.
 */
import { ProviderUnavailableError } from '../inference/ort-session.ts';
import { SerialQueues } from '../util/serial.ts';
import type { RgbaImage } from './raster.ts';

// The npm `webgpu` package (Dawn) is loaded on first use, so a CPU-only server never loads it.
interface Usage {
  texture: typeof GPUTextureUsage;
  buffer: typeof GPUBufferUsage;
  map: typeof GPUMapMode;
}

const SHADER = /* wgsl */ `
struct Sizes { dst: vec2f, src: vec2f };
@group(0) @binding(0) var<uniform> sizes: Sizes;
@group(0) @binding(1) var picture: texture_2d<f32>;
@group(0) @binding(2) var bilinear: sampler;
struct Varying { @builtin(position) pos: vec4f, @location(0) uv: vec2f };
@vertex fn vs(@location(0) dst: vec2f, @location(1) src: vec2f) -> Varying {
  var o: Varying;
  o.pos = vec4f(dst.x / sizes.dst.x * 2.0 - 1.0, 1.0 - dst.y / sizes.dst.y * 2.0, 0.0, 1.0);
  o.uv = src / sizes.src;
  return o;
}
@fragment fn fs(v: Varying) -> @location(0) vec4f {
  return vec4f(textureSampleLevel(picture, bilinear, v.uv, 0.0).rgb, 1.0);
}
`;

interface Target {
  texture: GPUTexture;
  width: number;
  height: number;
  bind: Map<number, GPUBindGroup>;
}

interface Canvas {
  width: number;
  height: number;
  texture: GPUTexture;
  readback: GPUBuffer;
  /** Bytes per row of the readback buffer (a multiple of 256). */
  stride: number;
  uniform: GPUBuffer;
}

let gpuModule: Promise<{ gpu: GPU; usage: Usage }> | undefined;

function loadGpu(): Promise<{ gpu: GPU; usage: Usage }> {
  gpuModule ??= import('webgpu').then((m) => {
    const g = m.globals as { GPUTextureUsage: typeof GPUTextureUsage; GPUBufferUsage: typeof GPUBufferUsage; GPUMapMode: typeof GPUMapMode };
    return { gpu: m.create([]), usage: { texture: g.GPUTextureUsage, buffer: g.GPUBufferUsage, map: g.GPUMapMode } };
  });
  return gpuModule;
}

export class GpuWarp {
  readonly #device: GPUDevice;
  readonly #usage: Usage;
  readonly #pipeline: GPURenderPipeline;
  readonly #sampler: GPUSampler;
  readonly #targets = new WeakMap<Uint8Array, Target>();
  readonly #canvases = new Map<string, Canvas>();
  readonly #serial = new SerialQueues<'warp'>();
  #vertices: GPUBuffer | null = null;
  #indices: GPUBuffer | null = null;
  #vertexData = new Float32Array(0);
  #indexData = new Uint32Array(0);
  readonly #sizes = new Float32Array(4);
  #closed = false;
  /** The adapter, in words (vendor, architecture, description). */
  readonly adapter: string;

  private constructor(device: GPUDevice, usage: Usage, adapter: string) {
    this.#device = device;
    this.#usage = usage;
    this.adapter = adapter;
    const module = device.createShaderModule({ code: SHADER });
    this.#pipeline = device.createRenderPipeline({
      layout: 'auto',
      vertex: {
        module,
        entryPoint: 'vs',
        buffers: [{ arrayStride: 16, attributes: [{ shaderLocation: 0, offset: 0, format: 'float32x2' }, { shaderLocation: 1, offset: 8, format: 'float32x2' }] }],
      },
      fragment: { module, entryPoint: 'fs', targets: [{ format: 'rgba8unorm' }] },
      primitive: { topology: 'triangle-list', cullMode: 'none' },
    });
    this.#sampler = device.createSampler({ magFilter: 'linear', minFilter: 'linear', addressModeU: 'clamp-to-edge', addressModeV: 'clamp-to-edge' });
  }

  /** Opens the first adapter; E_PROVIDER_UNAVAILABLE (webgpu) when there is none. */
  static async create(): Promise<GpuWarp> {
    let mod: Awaited<ReturnType<typeof loadGpu>>;
    try {
      mod = await loadGpu();
    } catch (err) {
      throw new ProviderUnavailableError('webgpu', `the webgpu package cannot load (${err instanceof Error ? err.message : String(err)})`);
    }
    const adapter = await mod.gpu.requestAdapter();
    if (!adapter) throw new ProviderUnavailableError('webgpu', 'no WebGPU adapter');
    const device = await adapter.requestDevice();
    const info = adapter.info;
    return new GpuWarp(device, mod.usage, [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown');
  }

  /**
   * Warps `src` into `dst` (the same contract as raster.ts warpTriangles): srcPts/dstPts are
   * interleaved x, y in pixels (centres at i + 0.5), tris vertex triples, order the painter's
   * order of triangle indices (null: 0..n−1). Every dst pixel is written: the mesh covers the
   * square, and a pixel no triangle covers is transparent black.
   */
  warp(src: RgbaImage, srcPts: ArrayLike<number>, dst: RgbaImage, dstPts: ArrayLike<number>, tris: ArrayLike<number>, order: ArrayLike<number> | null): Promise<void> {
    return this.#serial.run('warp', () => this.#warp(src, srcPts, dst, dstPts, tris, order));
  }

  async #warp(src: RgbaImage, srcPts: ArrayLike<number>, dst: RgbaImage, dstPts: ArrayLike<number>, tris: ArrayLike<number>, order: ArrayLike<number> | null): Promise<void> {
    if (this.#closed) throw new Error('GpuWarp is closed');
    const dev = this.#device;
    const target = this.#target(src);
    const canvas = this.#canvas(dst.width, dst.height);
    const nv = Math.min(srcPts.length, dstPts.length) >> 1;
    if (this.#vertexData.length < nv * 4) this.#vertexData = new Float32Array(nv * 4);
    for (let i = 0; i < nv; i++) {
      this.#vertexData[i * 4] = dstPts[i * 2]!;
      this.#vertexData[i * 4 + 1] = dstPts[i * 2 + 1]!;
      this.#vertexData[i * 4 + 2] = srcPts[i * 2]!;
      this.#vertexData[i * 4 + 3] = srcPts[i * 2 + 1]!;
    }
    const count = order ? order.length : tris.length / 3;
    if (this.#indexData.length < count * 3) this.#indexData = new Uint32Array(count * 3);
    for (let k = 0; k < count; k++) {
      const t = order ? order[k]! : k;
      this.#indexData[k * 3] = tris[t * 3]!;
      this.#indexData[k * 3 + 1] = tris[t * 3 + 1]!;
      this.#indexData[k * 3 + 2] = tris[t * 3 + 2]!;
    }
    const vbytes = nv * 16, ibytes = count * 12;
    if (!this.#vertices || this.#vertices.size < vbytes) {
      this.#vertices?.destroy();
      this.#vertices = dev.createBuffer({ size: Math.max(256, vbytes), usage: this.#usage.buffer.VERTEX | this.#usage.buffer.COPY_DST });
    }
    if (!this.#indices || this.#indices.size < ibytes) {
      this.#indices?.destroy();
      this.#indices = dev.createBuffer({ size: Math.max(256, ibytes), usage: this.#usage.buffer.INDEX | this.#usage.buffer.COPY_DST });
    }
    dev.queue.writeBuffer(this.#vertices, 0, this.#vertexData, 0, nv * 4);
    dev.queue.writeBuffer(this.#indices, 0, this.#indexData, 0, count * 3);
    this.#sizes.set([dst.width, dst.height, target.width, target.height]);
    dev.queue.writeBuffer(canvas.uniform, 0, this.#sizes);
    let bind = target.bind.get(dst.width * 65536 + dst.height);
    if (!bind) {
      bind = dev.createBindGroup({
        layout: this.#pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: canvas.uniform } }, { binding: 1, resource: target.texture.createView() }, { binding: 2, resource: this.#sampler }],
      });
      target.bind.set(dst.width * 65536 + dst.height, bind);
    }
    const enc = dev.createCommandEncoder();
    const pass = enc.beginRenderPass({ colorAttachments: [{ view: canvas.texture.createView(), loadOp: 'clear', storeOp: 'store', clearValue: { r: 0, g: 0, b: 0, a: 0 } }] });
    pass.setPipeline(this.#pipeline);
    pass.setBindGroup(0, bind);
    pass.setVertexBuffer(0, this.#vertices);
    pass.setIndexBuffer(this.#indices, 'uint32');
    pass.drawIndexed(count * 3);
    pass.end();
    enc.copyTextureToBuffer({ texture: canvas.texture }, { buffer: canvas.readback, bytesPerRow: canvas.stride }, [dst.width, dst.height]);
    dev.queue.submit([enc.finish()]);
    await canvas.readback.mapAsync(this.#usage.map.READ);
    try {
      const bytes = new Uint8Array(canvas.readback.getMappedRange());
      const row = dst.width * 4;
      if (canvas.stride === row) dst.data.set(bytes.subarray(0, row * dst.height));
      else for (let y = 0; y < dst.height; y++) dst.data.set(bytes.subarray(y * canvas.stride, y * canvas.stride + row), y * row);
    } finally {
      canvas.readback.unmap();
    }
  }

  /** The source picture's texture, uploaded on first use (keyed by its pixel buffer). */
  #target(src: RgbaImage): Target {
    let t = this.#targets.get(src.data);
    if (t && t.width === src.width && t.height === src.height) return t;
    const texture = this.#device.createTexture({ size: [src.width, src.height], format: 'rgba8unorm', usage: this.#usage.texture.TEXTURE_BINDING | this.#usage.texture.COPY_DST });
    this.#device.queue.writeTexture({ texture }, src.data as Uint8Array<ArrayBuffer>, { bytesPerRow: src.width * 4, rowsPerImage: src.height }, [src.width, src.height]);
    t = { texture, width: src.width, height: src.height, bind: new Map() };
    this.#targets.set(src.data, t);
    return t;
  }

  #canvas(width: number, height: number): Canvas {
    const key = `${width}x${height}`;
    let c = this.#canvases.get(key);
    if (c) return c;
    const stride = Math.ceil((width * 4) / 256) * 256;
    c = {
      width,
      height,
      stride,
      texture: this.#device.createTexture({ size: [width, height], format: 'rgba8unorm', usage: this.#usage.texture.RENDER_ATTACHMENT | this.#usage.texture.COPY_SRC }),
      readback: this.#device.createBuffer({ size: stride * height, usage: this.#usage.buffer.MAP_READ | this.#usage.buffer.COPY_DST }),
      uniform: this.#device.createBuffer({ size: 16, usage: this.#usage.buffer.UNIFORM | this.#usage.buffer.COPY_DST }),
    };
    this.#canvases.set(key, c);
    return c;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#canvases.values()) {
      c.texture.destroy();
      c.readback.destroy();
      c.uniform.destroy();
    }
    this.#canvases.clear();
    this.#vertices?.destroy();
    this.#indices?.destroy();
    this.#device.destroy();
  }
}
