import fs from 'node:fs';

/**
 * The local addresses of the TCP sockets listening on `port`, read from the kernel's socket table
 * (/proc/net/tcp and tcp6): which interfaces a server accepts connections on, proven without
 * sending a single packet. IPv4 as dotted quads, IPv6 in the kernel's hex form.
 */
export function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    let table: string;
    try {
      table = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = TCP_LISTEN
      const [hexAddr, hexPort] = cols[1]!.split(':');
      if (parseInt(hexPort!, 16) !== port) continue;
      out.push(v6 ? hexAddr! : ipv4(hexAddr!));
    }
  }
  return out.sort();
}

/** The kernel prints an IPv4 address as one little-endian 32-bit hex number. */
function ipv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}
