/**
 * A deterministic tar writer (POSIX ustar) for image layers and the image archive: entries in the
 * order given, every header field fixed by the entry (no host mtime, owner name or umask), so the
 * same entries give the same bytes and the same digest on any machine.
 */

export type TarEntry =
  | {
      readonly type: 'dir';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly type: 'file';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly data: Uint8Array;
    }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

const block = 512;
const typeFlags = { file: '0', symlink: '2', dir: '5' } as const;

function octal(value: number, width: number, field: string, path: string): string {
  const text = value.toString(8);
  if (text.length > width - 1)
    throw new Error(`tar: ${path}: ${field} ${value} does not fit in a ustar header`);
  return `${text.padStart(width - 1, '0')}\0`;
}

/** ustar keeps a path in name (100 bytes) or prefix (155) + '/' + name; longer paths are refused. */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const name = path.slice(cut + 1);
    const prefix = path.slice(0, cut);
    if (Buffer.byteLength(name) <= 100 && Buffer.byteLength(prefix) <= 155) return { name, prefix };
  }
  throw new Error(`tar: ${path}: path too long for a ustar header`);
}

function header(entry: TarEntry, size: number): Buffer {
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const { name, prefix } = splitPath(path);
  const mode = entry.type === 'symlink' ? 0o777 : entry.mode;
  const uid = entry.type === 'symlink' ? 0 : entry.uid;
  const gid = entry.type === 'symlink' ? 0 : entry.gid;
  const linkname = entry.type === 'symlink' ? entry.target : '';
  if (Buffer.byteLength(linkname) > 100) throw new Error(`tar: ${path}: link target too long`);
  const buffer = Buffer.alloc(block);
  buffer.write(name, 0, 100, 'utf8');
  buffer.write(octal(mode, 8, 'mode', path), 100, 'ascii');
  buffer.write(octal(uid, 8, 'uid', path), 108, 'ascii');
  buffer.write(octal(gid, 8, 'gid', path), 116, 'ascii');
  buffer.write(octal(size, 12, 'size', path), 124, 'ascii');
  buffer.write(octal(0, 12, 'mtime', path), 136, 'ascii');
  buffer.write('        ', 148, 'ascii');
  buffer.write(typeFlags[entry.type], 156, 'ascii');
  buffer.write(linkname, 157, 100, 'utf8');
  buffer.write('ustar\0', 257, 'ascii');
  buffer.write('00', 263, 'ascii');
  buffer.write(octal(0, 8, 'devmajor', path), 329, 'ascii');
  buffer.write(octal(0, 8, 'devminor', path), 337, 'ascii');
  buffer.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of buffer) sum += byte;
  buffer.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return buffer;
}

/** The archive as chunks (headers, contents, padding, the two closing zero blocks). */
export function* tarChunks(entries: Iterable<TarEntry>): Generator<Uint8Array> {
  for (const entry of entries) {
    const data = entry.type === 'file' ? entry.data : undefined;
    yield header(entry, data?.byteLength ?? 0);
    if (data === undefined || data.byteLength === 0) continue;
    yield data;
    const padding = (block - (data.byteLength % block)) % block;
    if (padding > 0) yield Buffer.alloc(padding);
  }
  yield Buffer.alloc(block * 2);
}
