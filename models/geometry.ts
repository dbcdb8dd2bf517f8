/**
 * Decodes MediaPipe's geometry_pipeline_metadata_landmarks.binarypb (face_geometry/proto,
 * Apache-2.0): GeometryPipelineMetadata { canonical_mesh = 1 (Mesh3d), procrustes_landmark_basis
 * = 2 (repeated WeightedLandmarkRef), input_source = 3 }. Mesh3d { vertex_type = 1, primitive_type
 * = 2, vertex_buffer = 3 (x y z u v per vertex), index_buffer = 4 }.
 */
import protobuf from 'protobufjs';
import type { CanonicalMesh } from './manifest.ts';

const root = protobuf.Root.fromJSON({
  nested: {
    Mesh3d: {
      fields: {
        vertexType: { type: 'int32', id: 1 },
        primitiveType: { type: 'int32', id: 2 },
        vertexBuffer: { rule: 'repeated', type: 'float', id: 3 },
        indexBuffer: { rule: 'repeated', type: 'uint32', id: 4 },
      },
    },
    WeightedLandmarkRef: { fields: { landmarkId: { type: 'uint32', id: 1 }, weight: { type: 'float', id: 2 } } },
    GeometryPipelineMetadata: {
      fields: {
        canonicalMesh: { type: 'Mesh3d', id: 1 },
        procrustesLandmarkBasis: { rule: 'repeated', type: 'WeightedLandmarkRef', id: 2 },
        inputSource: { type: 'int32', id: 3 },
      },
    },
  },
});

interface Decoded {
  canonicalMesh?: { vertexType?: number; primitiveType?: number; vertexBuffer?: number[]; indexBuffer?: number[] };
  procrustesLandmarkBasis?: { landmarkId?: number; weight?: number }[];
}

export function decodeGeometryMetadata(data: Uint8Array): CanonicalMesh {
  const type = root.lookupType('GeometryPipelineMetadata');
  const msg = type.toObject(type.decode(data), { defaults: true }) as Decoded;
  const mesh = msg.canonicalMesh;
  const vb = mesh?.vertexBuffer ?? [];
  const ib = mesh?.indexBuffer ?? [];
  if (mesh?.vertexType !== 0 || mesh.primitiveType !== 0) throw new TypeError('canonical mesh is not VERTEX_PT triangles');
  if (vb.length !== 468 * 5 || ib.length % 3 !== 0) throw new TypeError(`canonical mesh has ${vb.length / 5} vertices, expected 468`);
  const vertices: number[] = [];
  const uv: number[] = [];
  for (let i = 0; i < 468; i++) {
    vertices.push(vb[5 * i] ?? 0, vb[5 * i + 1] ?? 0, vb[5 * i + 2] ?? 0);
    uv.push(vb[5 * i + 3] ?? 0, vb[5 * i + 4] ?? 0);
  }
  const basis = msg.procrustesLandmarkBasis ?? [];
  return {
    vertices,
    uv,
    triangles: ib,
    procrustes: { landmarks: basis.map((b) => b.landmarkId ?? 0), weights: basis.map((b) => b.weight ?? 0) },
  };
}
