/**
 * A minimal synchronous PNG encoder for live previews. sharp runs on libuv's thread pool, which
 * the inference engine keeps busy; a preview encoded there waits behind model steps (measured:
 * hundreds of ms). Small previews (<= 256 px) encode here on the main thread in well under a
 * millisecond with zlib level 1, so they reach subscribers at once.
 */
import { deflateSync } from "node:zlib";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** RGB [height, width, 3] -> PNG bytes, scaled by nearest neighbour to `size` x `size` when given. */
export function encodePngSync(rgb: Uint8Array, width: number, height: number, size?: number): Uint8Array {
  const w = size ?? width;
  const h = size ?? height;
  const raw = Buffer.alloc(h * (1 + w * 3)); // each row: filter byte 0 (none), then RGB
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.floor((y * height) / h));
    const row = y * (1 + w * 3);
    for (let x = 0; x < w; x++) {
      const sx = Math.min(width - 1, Math.floor((x * width) / w));
      const s = (sy * width + sx) * 3;
      raw[row + 1 + x * 3] = rgb[s]!;
      raw[row + 2 + x * 3] = rgb[s + 1]!;
      raw[row + 3 + x * 3] = rgb[s + 2]!;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, no filter method, no interlace
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([signature, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw, { level: 1 })), chunk("IEND", new Uint8Array(0))]);
}
